/*
 * Core commands: ping, whoami, branches.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static void core_print_event(const Carrel__Event *ev, void *arg)
{
    cli_t *cli = arg;
    if (cli->json) {
        json_t j;
        json_init(&j);
        json_object_begin(&j);
        json_key(&j, "event");
        json_message(&j, &ev->base);
        json_object_end(&j);
        json_print(&j, stdout);
        json_free(&j);
    } else {
        printf("event %s: %s\n", ev->kind ? ev->kind : "?", ev->text ? ev->text : "");
    }
}

static int cmd_ping(cli_t *cli, int argc, char **argv)
{
    int count = 1;
    int event = 0;
    static const struct option opts[] = {{"count", required_argument, NULL, 'n'},
                                         {"event", no_argument, NULL, 'e'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:e", opts, NULL)) != -1) {
        if (ch == 'n') {
            if (cli_int32_arg(cli, "--count", optarg, 1, 1000000, &count) != EXIT_OK)
                return EXIT_USAGE;
        } else if (ch == 'e')
            event = 1;
        else
            return EXIT_USAGE;
    }
    if (count < 1 || count > 1000000)
        return cli_fail(cli, EXIT_USAGE, "--count must be 1 to 1000000");
    int code = cli_connect(cli, false);
    if (code != EXIT_OK)
        return code;
    cli->conn.on_event = core_print_event;
    cli->conn.event_arg = cli;
    for (int i = 0; i < count; i++) {
        Carrel__Request req = CARREL__REQUEST__INIT;
        Carrel__Ping ping = CARREL__PING__INIT;
        char payload[32];
        snprintf(payload, sizeof(payload), "ping-%d", i + 1);
        ping.payload = payload;
        if (event) {
            ping.has_push_event = 1;
            ping.push_event = 1;
        }
        req.body_case = CARREL__REQUEST__BODY_PING;
        req.ping = &ping;
        uint64_t t0 = util_mono_ns();
        Carrel__Response *r = NULL;
        code = cli_call(cli, &req, &r);
        if (code != EXIT_OK)
            return code;
        double ms = (double)(util_mono_ns() - t0) / 1e6;
        if (cli->json) {
            json_t j;
            json_init(&j);
            json_object_begin(&j);
            json_key(&j, "payload");
            json_string(&j, r->pong->payload);
            json_key(&j, "server_time_ms");
            json_int(&j, r->pong->server_time_ms);
            json_key(&j, "round_trip_ms");
            json_double(&j, ms);
            json_object_end(&j);
            json_print(&j, stdout);
            json_free(&j);
        } else {
            printf("pong from %s:%ld: %s in %.2f ms\n", cli->profile.host, cli->profile.port,
                   r->pong->payload ? r->pong->payload : "", ms);
        }
        carrel__response__free_unpacked(r, NULL);
    }
    return EXIT_OK;
}

static int build_whoami(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    (void)cli;
    (void)argc;
    (void)argv;
    CMD_BODY(call, whoami, WHOAMI, carrel__who_am_i__init);
    return EXIT_OK;
}

static void print_whoami(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__LoginReply *me = r->whoami;
    printf("%s (%s), %s\n", me->staff->display_name, me->staff->username,
           json_enum_name(&carrel__role__descriptor, me->staff->role));
    printf("workstation %s at %s (%s)\n", me->workstation->name, me->branch->name,
           me->branch->code);
    printf("assigned to:");
    for (size_t i = 0; i < me->staff->n_branch_codes; i++)
        printf(" %s", me->staff->branch_codes[i]);
    printf("\n");
}

static int build_branches(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    (void)cli;
    (void)argc;
    (void)argv;
    CMD_BODY(call, branch_list, BRANCH_LIST, carrel__branch_list__init);
    return EXIT_OK;
}

static void print_branches(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    static const char *const headers[] = {"Code", "Branch", "Address", "Phone", "Hours"};
    table_t *t = table_new(5, headers);
    for (size_t i = 0; i < r->branches->n_branches; i++) {
        const Carrel__Branch *br = r->branches->branches[i];
        const char *row[] = {br->code, br->name, br->address, br->phone, br->open_hours};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

const command_t core_commands[] = {
    {.path = "ping",
     .run = cmd_ping,
     .needs_login = false,
     .usage = "[-n COUNT] [--event]",
     .summary = "check the server answers (no login); --event asks for a test event"},
    {.path = "whoami",
     .build = build_whoami,
     .print_text = print_whoami,
     .needs_login = true,
     .usage = "",
     .summary = "show the logged-in staff member, workstation and branch"},
    {.path = "branches",
     .build = build_branches,
     .print_text = print_branches,
     .needs_login = true,
     .usage = "",
     .summary = "list the branches with addresses and hours"},
    {.path = NULL},
};
