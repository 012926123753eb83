/*
 * cmd_server: commands about the daemon itself (administrators):
 * `carrel admin reload` (the Reload request: the daemon reads its
 * configuration file again, as SIGHUP does; docs/OPERATIONS.md, "Reload").
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "json.h"
#include "util.h"

static int build_reload(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    (void)argv;
    if (argc > 1)
        return cli_fail(cli, EXIT_USAGE, "usage: admin reload");
    CMD_BODY(call, reload, RELOAD, carrel__reload__init);
    return EXIT_OK;
}

static void print_setting_list(const char *title, char **names, size_t n)
{
    printf("%s:", title);
    if (n == 0)
        printf(" none");
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i ? ", " : " ", names[i]);
    printf("\n");
}

static void print_reload(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__ReloadReply *m = r->reload;
    printf("reloaded %s\n", m->config_file ? m->config_file : "(no configuration file)");
    print_setting_list("applied", m->applied, m->n_applied);
    print_setting_list("needs restart", m->needs_restart, m->n_needs_restart);
    if (m->n_needs_restart > 0)
        printf("the settings that need a restart keep their running values until carreld is "
               "restarted\n");
}

/* Both lists always present (empty when nothing changed), so a script reads them as they
 * are. */
static void print_reload_json(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__ReloadReply *m = r->reload;
    json_t j;
    json_init(&j);
    json_object_begin(&j);
    json_key(&j, "config_file");
    if (m->config_file)
        json_string(&j, m->config_file);
    else
        json_null(&j);
    json_key(&j, "applied");
    json_array_begin(&j);
    for (size_t i = 0; i < m->n_applied; i++)
        json_string(&j, m->applied[i]);
    json_array_end(&j);
    json_key(&j, "needs_restart");
    json_array_begin(&j);
    for (size_t i = 0; i < m->n_needs_restart; i++)
        json_string(&j, m->needs_restart[i]);
    json_array_end(&j);
    json_object_end(&j);
    json_print(&j, stdout);
    json_free(&j);
}

const command_t server_commands[] = {
    {.path = "admin reload",
     .build = build_reload,
     .send = CMD_SEND_ONCE,
     .print_text = print_reload,
     .print_json = print_reload_json,
     .needs_login = true,
     .usage = "",
     .summary = "make the daemon read its configuration file again, as SIGHUP does "
                "(administrators): prints the settings applied and those that need a restart"},
    {.path = NULL},
};
