/*
 * command: running the commands of the tables (see command.h), finding a
 * command by its words, and every command's own help.
 */
#include "command.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "manpage.h"
#include "password.h"
#include "util.h"

static const command_t *const command_tables[] = {
    core_commands,     admin_commands,    catalog_commands, patron_commands,  circ_commands,
    holds_commands,    notices_commands,  desk_commands,    stats_commands,   report_commands,
    rooms_commands,    schedule_commands, service_commands, tickets_commands, weeding_commands,
    displays_commands, offline_commands,  status_commands,  cert_commands,    server_commands};

#define COMMAND_TABLES (sizeof(command_tables) / sizeof(command_tables[0]))

void *cmd_part(cmd_call_t *call, size_t size)
{
    if (call->nparts >= CMD_CALL_PARTS)
        abort(); /* a builder asking for more parts than a call holds is a bug */
    void *p = calloc(1, size ? size : 1);
    if (p == NULL)
        abort();
    call->parts[call->nparts++] = p;
    return p;
}

bool cmd_split(cmd_call_t *call, const char *text, size_t max, char ***out, size_t *n)
{
    if (call->nparts + 2 > CMD_CALL_PARTS)
        return false;
    char *copy = cmd_part(call, strlen(text) + 1);
    memcpy(copy, text, strlen(text) + 1);
    char **items = cmd_part(call, max * sizeof(char *));
    size_t k = 0;
    for (char *p = copy;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (*p == '\0' || k == max)
            return false;
        items[k++] = p;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = items;
    *n = k;
    return true;
}

void cmd_secret(cmd_call_t *call, char *password)
{
    if (call->nsecrets >= sizeof(call->secrets) / sizeof(call->secrets[0]))
        abort(); /* a builder keeping more secrets than a call holds is a bug */
    call->secrets[call->nsecrets++] = password;
}

void cmd_hold(cmd_call_t *call, Carrel__Response *r)
{
    if (call->nheld >= sizeof(call->held) / sizeof(call->held[0]))
        abort();
    call->held[call->nheld++] = r;
}

int cmd_usage(cli_t *cli, const cmd_call_t *call)
{
    const command_t *c = call->cmd;
    return cli_fail(cli, EXIT_USAGE, "usage: %s%s%s", c->path, c->usage[0] ? " " : "", c->usage);
}

int cmd_branch_week(cli_t *cli, int argc, char **argv, const cmd_call_t *call, char **branch,
                    char **week)
{
    enum { OPT_BRANCH = 256, OPT_WEEK };
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"week", required_argument, NULL, OPT_WEEK},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_BRANCH)
            *branch = optarg;
        else if (ch == OPT_WEEK)
            *week = optarg;
        else
            return cmd_usage(cli, call);
    }
    return optind == argc ? EXIT_OK : cmd_usage(cli, call);
}

void cmd_print_body_json(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const ProtobufCMessage *body = cli_response_body(r, NULL);
    if (body)
        cli_print_json(body);
    else
        printf("{\"status\":\"ok\"}\n");
}

/*
 * Send the call's request the way the command says; the answer in *r. A
 * command that prints a refusal's body keeps the answer to a refusal too
 * (*r set, the exit code not EXIT_OK).
 */
static int command_send(cli_t *cli, cmd_call_t *call, Carrel__Response **r)
{
    char key[37];
    if (call->cmd->send == CMD_SEND_KEYED)
        return cli_call_keyed(cli, &call->req, r);
    if (call->cmd->send == CMD_SEND_ONCE)
        cli_set_request_key(&call->req, key);
    if (call->cmd->print_refused)
        return cli_call_keep(cli, &call->req, r);
    return cli_call(cli, &call->req, r);
}

/* Print the answer (NULL when there was nothing to send) in the output mode. */
static void command_print(cli_t *cli, const cmd_call_t *call, const Carrel__Response *r)
{
    if (cli->json)
        (call->cmd->print_json ? call->cmd->print_json : cmd_print_body_json)(call, r);
    else
        call->cmd->print_text(call, r);
}

/* One round: prepare, send, print. Returns an exit code. */
static int command_round(cli_t *cli, cmd_call_t *call)
{
    const command_t *cmd = call->cmd;
    int code = cmd->prepare ? cmd->prepare(cli, call) : EXIT_OK;
    if (code != EXIT_OK)
        return code;
    if (call->nothing_to_send) {
        command_print(cli, call, NULL);
        return EXIT_OK;
    }
    if (!cli->connected && (code = cli_connect(cli, false)) != EXIT_OK)
        return code;
    Carrel__Response *r = NULL;
    call->sent_ns = util_mono_ns();
    code = command_send(cli, call, &r);
    call->answered_ns = util_mono_ns();
    if (code == EXIT_OK)
        command_print(cli, call, r);
    else if (r && !cli->json && cmd->print_refused)
        cmd->print_refused(call, r);
    if (r)
        carrel__response__free_unpacked(r, NULL);
    return code;
}

int command_run(cli_t *cli, const command_t *cmd, int argc, char **argv)
{
    if (cmd->run)
        return cmd->run(cli, argc, argv);
    cmd_call_t call;
    memset(&call, 0, sizeof(call));
    carrel__request__init(&call.req);
    call.cmd = cmd;
    call.argc = argc;
    call.argv = argv;
    int code = cmd->build(cli, argc, argv, &call);
    bool built = code == EXIT_OK;
    for (call.round = 0; code == EXIT_OK && call.round < (call.repeat > 0 ? call.repeat : 1);
         call.round++)
        code = command_round(cli, &call);
    if (built && cmd->finish)
        code = cmd->finish(cli, &call, code);
    for (size_t i = 0; i < call.nsecrets; i++)
        password_free(call.secrets[i]);
    for (size_t i = 0; i < call.nheld; i++)
        carrel__response__free_unpacked(call.held[i], NULL);
    for (size_t i = 0; i < call.nparts; i++)
        free(call.parts[i]);
    return code;
}

/* True when the words of `path` are the leading arguments; their count in *n. */
static bool command_matches(const char *path, int argc, char **argv, int *n)
{
    *n = 0;
    const char *p = path;
    while (*p) {
        size_t len = strcspn(p, " ");
        if (*n >= argc || strlen(argv[*n]) != len || strncmp(argv[*n], p, len) != 0)
            return false;
        (*n)++;
        p += len;
        p += strspn(p, " ");
    }
    return true;
}

const command_t *command_find(int argc, char **argv, int *words)
{
    const command_t *best = NULL;
    int best_words = 0;
    for (size_t t = 0; t < COMMAND_TABLES; t++) {
        for (const command_t *c = command_tables[t]; c->path; c++) {
            int n = 0;
            if (command_matches(c->path, argc, argv, &n) && n > best_words) {
                best = c;
                best_words = n;
            }
        }
    }
    *words = best_words;
    return best;
}

void command_list(FILE *out)
{
    for (size_t t = 0; t < COMMAND_TABLES; t++)
        for (const command_t *c = command_tables[t]; c->path; c++)
            fprintf(out, "  %s%s%s\n      %s\n", c->path, c->usage[0] ? " " : "", c->usage,
                    c->summary);
}

void command_man(FILE *out)
{
    for (size_t t = 0; t < COMMAND_TABLES; t++)
        for (const command_t *c = command_tables[t]; c->path; c++) {
            fputs(".TP\n\\fB", out);
            man_escape_inline(out, c->path);
            fputs("\\fR", out);
            if (c->usage[0]) {
                fputc(' ', out);
                man_escape_inline(out, c->usage);
            }
            fputc('\n', out);
            man_escape(out, c->summary);
        }
}

void command_help(FILE *out, const command_t *cmd)
{
    fprintf(out, "usage: carrel [-c PROFILE] [--json] %s%s%s\n\n%s\n", cmd->path,
            cmd->usage[0] ? " " : "", cmd->usage, cmd->summary);
    if (cmd->needs_login)
        fprintf(out, "\nLogs in as the profile's user at its workstation.\n");
    if (cmd->help) {
        fputc('\n', out);
        cmd->help(out);
    }
}

bool command_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}
