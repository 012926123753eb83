/*
 * Core commands: ping, whoami, branches.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static void core_print_event(const Carrel__Event *ev, void *arg)
{
    cli_t *cli = arg;
    if (cli->json) {
        output_json_event(stdout, ev);
    } else {
        printf("event %s: %s\n", ev->kind ? ev->kind : "?", ev->text ? ev->text : "");
    }
}

/* Ping's command line, for its prepare step and printers. */
typedef struct core_ping {
    bool event;       /* --event: ask for a test event too */
    char payload[32]; /* "ping-N" */
    char server[300]; /* "host:port", for the text line */
} core_ping_t;

static int build_ping(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    int count = 1;
    core_ping_t *ping = call->data = cmd_part(call, sizeof(*ping));
    static const struct option opts[] = {{"count", required_argument, NULL, 'n'},
                                         {"event", no_argument, NULL, 'e'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:e", opts, NULL)) != -1) {
        if (ch == 'n') {
            if (cli_int32_arg(cli, "--count", optarg, 1, 1000000, &count) != EXIT_OK)
                return EXIT_USAGE;
        } else if (ch == 'e')
            ping->event = true;
        else
            return EXIT_USAGE;
    }
    if (count < 1 || count > 1000000)
        return cli_fail(cli, EXIT_USAGE, "--count must be 1 to 1000000");
    call->repeat = count;
    Carrel__Ping *p = CMD_BODY(call, ping, PING, carrel__ping__init);
    p->payload = ping->payload;
    if (ping->event) {
        p->has_push_event = 1;
        p->push_event = 1;
    }
    snprintf(ping->server, sizeof(ping->server), "%s:%ld", cli->profile.host, cli->profile.port);
    return EXIT_OK;
}

/* Before each Ping: the connection (no login) with its event printer, and the round's payload. */
static int prepare_ping(cli_t *cli, cmd_call_t *call)
{
    core_ping_t *ping = call->data;
    if (call->round == 0) {
        int code = cli_connect(cli, false);
        if (code != EXIT_OK)
            return code;
        cli->conn.on_event = core_print_event;
        cli->conn.event_arg = cli;
    }
    snprintf(ping->payload, sizeof(ping->payload), "ping-%d", call->round + 1);
    return EXIT_OK;
}

static double core_round_trip_ms(const cmd_call_t *call)
{
    return (double)(call->answered_ns - call->sent_ns) / 1e6;
}

static void print_ping(const cmd_call_t *call, const Carrel__Response *r)
{
    const core_ping_t *ping = call->data;
    printf("pong from %s: %s in %.2f ms\n", ping->server, r->pong->payload ? r->pong->payload : "",
           core_round_trip_ms(call));
}

static void print_ping_json(const cmd_call_t *call, const Carrel__Response *r)
{
    json_t j;
    json_init(&j);
    json_object_begin(&j);
    json_key(&j, "payload");
    json_string(&j, r->pong->payload);
    json_key(&j, "server_time_ms");
    json_int(&j, r->pong->server_time_ms);
    json_key(&j, "round_trip_ms");
    json_double(&j, core_round_trip_ms(call));
    json_object_end(&j);
    json_print(&j, stdout);
    json_free(&j);
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
     .build = build_ping,
     .prepare = prepare_ping,
     .print_text = print_ping,
     .print_json = print_ping_json,
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
