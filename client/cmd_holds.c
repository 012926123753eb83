/*
 * Hold commands: place and change holds, queues, pull lists, hold shelves,
 * transits, and listening to a branch's events.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "listen.h"
#include "util.h"

/* Changes are keyed and retried with their key (cli_call_keyed); reads go once. */
static int holds_send(cli_t *cli, Carrel__Request *req, Carrel__Response **resp, bool keyed)
{
    return keyed ? cli_call_keyed(cli, req, resp) : cli_call(cli, req, resp);
}

static void holds_print(const Carrel__Hold *h)
{
    char where[160];
    output_hold_where(where, sizeof(where), h, true);
    /* A hold on one copy says so: only that copy can fill it. */
    char copy[96] = "";
    if (h->item_barcode && h->item_barcode[0])
        snprintf(copy, sizeof(copy), " [copy %s only]", h->item_barcode);
    printf("hold %lld  %s  %s  %s%s  pickup %s  %s  %s\n", (long long)h->id, h->card,
           h->patron_name, h->title, copy, h->pickup_branch, output_hold_status(h->status), where);
}

static void print_hold(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    holds_print(r->hold);
}

static void print_holds(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    if (r->holds->n_holds == 0)
        printf("No holds.\n");
    for (size_t i = 0; i < r->holds->n_holds; i++)
        holds_print(r->holds->holds[i]);
}

static int build_hold_place(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__HoldPlace *p = CMD_BODY(call, hold_place, HOLD_PLACE, carrel__hold_place__init);
    static const struct option opts[] = {
        {"bib", required_argument, NULL, 'b'},
        {"item", required_argument, NULL, 'i'},
        {"pickup", required_argument, NULL, 'p'},
        {"not-after", required_argument, NULL, 'n'},
        {"suspend-until", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "b:i:p:n:s:", opts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            p->has_bib_id = 1;
            if (cli_int_arg(cli, "--bib", optarg, 1, INT64_MAX, &p->bib_id) != EXIT_OK)
                return EXIT_USAGE;
            break;
        case 'i':
            p->item_barcode = optarg;
            break;
        case 'p':
            p->pickup_branch = optarg;
            break;
        case 'n':
            p->not_needed_after = optarg;
            break;
        case 's':
            p->suspended_until = optarg;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || (!p->has_bib_id && !p->item_barcode))
        return cli_fail(cli, EXIT_USAGE,
                        "usage: hold place CARD (--bib ID | --item BARCODE) [--pickup CODE] "
                        "[--not-after DATE] [--suspend-until DATE]");
    p->card = argv[optind];
    return EXIT_OK;
}

static int build_hold_list(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__HoldList *l = CMD_BODY(call, hold_list, HOLD_LIST, carrel__hold_list__init);
    static const struct option opts[] = {{"all", no_argument, NULL, 'a'}, {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "a", opts, NULL)) != -1) {
        if (ch == 'a')
            l->has_include_closed = l->include_closed = 1;
        else
            return EXIT_USAGE;
    }
    if (optind != argc - 1)
        return cli_fail(cli, EXIT_USAGE, "usage: hold list CARD [--all]");
    l->card = argv[optind];
    return EXIT_OK;
}

static int holds_change(cli_t *cli, int argc, char **argv, cmd_call_t *call, const char *action)
{
    Carrel__HoldChange *c = CMD_BODY(call, hold_change, HOLD_CHANGE, carrel__hold_change__init);
    c->action = (char *)action;
    static const struct option opts[] = {{"reason", required_argument, NULL, 'r'},
                                         {"until", required_argument, NULL, 'u'},
                                         {"pickup", required_argument, NULL, 'p'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "r:u:p:", opts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            c->reason = optarg;
            break;
        case 'u':
            c->until = optarg;
            break;
        case 'p':
            c->pickup_branch = optarg;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1)
        return cli_fail(cli, EXIT_USAGE, "usage: hold %s HOLD_ID%s", action,
                        !strcmp(action, "cancel")    ? " --reason TEXT"
                        : !strcmp(action, "suspend") ? " --until DATE"
                        : !strcmp(action, "pickup")  ? " --pickup CODE"
                                                     : "");
    c->has_hold_id = 1;
    if (cli_int_arg(cli, "HOLD_ID", argv[optind], 1, INT64_MAX, &c->hold_id) != EXIT_OK)
        return EXIT_USAGE;
    /* Refuse here what the server would refuse anyway, with the usage line. */
    if ((!strcmp(action, "cancel") && c->reason == NULL) ||
        (!strcmp(action, "pickup") && c->pickup_branch == NULL))
        return cli_fail(cli, EXIT_USAGE, "usage: hold %s HOLD_ID %s", action,
                        c->reason == NULL && !strcmp(action, "cancel") ? "--reason TEXT"
                                                                       : "--pickup CODE");
    return EXIT_OK;
}

static int build_hold_cancel(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return holds_change(cli, argc, argv, call, "cancel");
}

static int build_hold_suspend(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return holds_change(cli, argc, argv, call, "suspend");
}

static int build_hold_activate(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return holds_change(cli, argc, argv, call, "activate");
}

static int build_hold_pickup(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return holds_change(cli, argc, argv, call, "pickup");
}

static int build_holds_queue(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc != 2)
        return cli_fail(cli, EXIT_USAGE, "usage: holds queue BIB");
    Carrel__HoldQueue *q = CMD_BODY(call, hold_queue, HOLD_QUEUE, carrel__hold_queue__init);
    q->has_bib_id = 1;
    if (cli_int_arg(cli, "BIB", argv[1], 1, INT64_MAX, &q->bib_id) != EXIT_OK)
        return EXIT_USAGE;
    return EXIT_OK;
}

/*
 * Parse the options of pull-list and holds-shelf: --branch CODE, and
 * --clearing only where `clearing` is not NULL. Anything else (another
 * option, a stray argument) prints `usage` and returns EXIT_USAGE.
 */
static int holds_branch_args(cli_t *cli, int argc, char **argv, const char *usage, char **branch,
                             bool *clearing)
{
    static const struct option branch_only[] = {{"branch", required_argument, NULL, 'b'},
                                                {NULL, 0, NULL, 0}};
    static const struct option with_clearing[] = {{"branch", required_argument, NULL, 'b'},
                                                  {"clearing", no_argument, NULL, 'c'},
                                                  {NULL, 0, NULL, 0}};
    const struct option *opts = clearing ? with_clearing : branch_only;
    int ch;
    while ((ch = getopt_long(argc, argv, clearing ? "b:c" : "b:", opts, NULL)) != -1) {
        if (ch == 'b')
            *branch = optarg;
        else if (ch == 'c' && clearing)
            *clearing = true;
        else
            return cli_fail(cli, EXIT_USAGE, "%s", usage);
    }
    if (optind != argc)
        return cli_fail(cli, EXIT_USAGE, "%s", usage);
    return EXIT_OK;
}

static int build_pull_list(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__PullList *p = CMD_BODY(call, pull_list, PULL_LIST, carrel__pull_list__init);
    if (holds_branch_args(cli, argc, argv, "usage: pull-list [--branch CODE]", &p->branch, NULL) !=
        EXIT_OK)
        return EXIT_USAGE;
    return EXIT_OK;
}

static void print_pull_list(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    static const char *const headers[] = {"Location", "Call number",   "Barcode",
                                          "Title",    "For pickup at", "Hold"};
    table_t *t = table_new(6, headers);
    for (size_t i = 0; i < r->pull_list->n_entries; i++) {
        const Carrel__PullEntry *e = r->pull_list->entries[i];
        char hold[24], title[OUTPUT_TITLE_COLUMNS * 4 + 8];
        snprintf(hold, sizeof(hold), "%lld", (long long)e->hold_id);
        output_cut(title, sizeof(title), e->title, OUTPUT_TITLE_COLUMNS);
        const char *row[] = {e->location, e->call_number,   e->barcode,
                             title,       e->pickup_branch, hold};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

static int build_item_not_found(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc != 2 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    Carrel__ItemNotFound *n =
        CMD_BODY(call, item_not_found, ITEM_NOT_FOUND, carrel__item_not_found__init);
    n->barcode = argv[1];
    call->subject = argv[1];
    return EXIT_OK;
}

static void print_item_not_found(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)r;
    printf("%s marked missing; its holds look for another copy\n", call->subject);
}

static int build_holds_shelf(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__HoldShelf *s = CMD_BODY(call, hold_shelf, HOLD_SHELF, carrel__hold_shelf__init);
    bool clearing = false;
    if (holds_branch_args(cli, argc, argv, "usage: holds-shelf [--branch CODE] [--clearing]",
                          &s->branch, &clearing) != EXIT_OK)
        return EXIT_USAGE;
    if (clearing)
        s->has_clearing = s->clearing = 1;
    call->number = clearing;
    return EXIT_OK;
}

static void print_holds_shelf(const cmd_call_t *call, const Carrel__Response *r)
{
    static const char *const headers[] = {"Barcode", "Title", "Patron", "Card", "Until", "Status"};
    table_t *t = table_new(6, headers);
    for (size_t i = 0; i < r->hold_shelf->n_entries; i++) {
        const Carrel__ShelfEntry *e = r->hold_shelf->entries[i];
        char title[OUTPUT_TITLE_COLUMNS * 4 + 8];
        const char *status = output_hold_status(e->status);
        output_cut(title, sizeof(title), e->title, OUTPUT_TITLE_COLUMNS);
        const char *row[] = {e->barcode,          title, e->patron_name, e->card_last4,
                             e->shelf_expires_on, status};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
    if (call->number && r->hold_shelf->n_entries)
        printf("Pull these off the hold shelf and check each in.\n");
}

static int build_transit_list(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    static const char usage[] =
        "usage: transit list [--incoming|--outgoing|--overdue] [--branch CODE]";
    Carrel__TransitList *l = CMD_BODY(call, transit_list, TRANSIT_LIST, carrel__transit_list__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, 'b'},
                                         {"incoming", no_argument, NULL, 'i'},
                                         {"outgoing", no_argument, NULL, 'o'},
                                         {"overdue", no_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "b:iov", opts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            l->branch = optarg;
            break;
        case 'i':
            l->which = "incoming";
            break;
        case 'o':
            l->which = "outgoing";
            break;
        case 'v':
            l->which = "overdue";
            break;
        default:
            return cli_fail(cli, EXIT_USAGE, "%s", usage);
        }
    }
    if (optind != argc)
        return cli_fail(cli, EXIT_USAGE, "%s", usage);
    return EXIT_OK;
}

static void print_transit_list(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    static const char *const headers[] = {"Barcode", "Title", "From", "To", "Why", "Sent", ""};
    table_t *t = table_new(7, headers);
    for (size_t i = 0; i < r->transits->n_transits; i++) {
        const Carrel__Transit *x = r->transits->transits[i];
        char title[OUTPUT_TITLE_COLUMNS * 4 + 8], sent[20];
        output_cut(title, sizeof(title), x->title, OUTPUT_TITLE_COLUMNS);
        output_date(sent, sizeof(sent), x->sent_at);
        const char *row[] = {x->barcode,
                             title,
                             x->from_branch,
                             x->to_branch,
                             x->reason,
                             sent,
                             x->overdue ? "OVERDUE" : ""};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

static int cmd_transit_receive(cli_t *cli, int argc, char **argv)
{
    /* Receiving is checking in at the destination: the same request. */
    return cmd_checkin(cli, argc, argv);
}

static int build_transit_cancel(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc != 2 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    Carrel__TransitChange *c =
        CMD_BODY(call, transit_change, TRANSIT_CHANGE, carrel__transit_change__init);
    c->barcode = argv[1];
    c->action = "cancel";
    call->subject = argv[1];
    return EXIT_OK;
}

static void print_transit_cancel(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)r;
    printf("transit of %s cancelled; it is back on the shelf where it was last scanned\n",
           call->subject);
}

/* ---- events ---- */

/*
 * `carrel events` listens on the connection's own loop with the listening
 * loop it shares with desk mode (listen.c): a tick, SIGINT and SIGTERM
 * (which end the listening at once), and a keepalive Ping on a quiet
 * connection, whose Pong overdue by the profile's timeout drops it.
 */
typedef struct holds_listener {
    cli_t *cli;
    listen_t listen;
    bool all_branches; /* --all */
} holds_listener_t;

static void holds_print_event(const Carrel__Event *ev, void *arg)
{
    cli_t *cli = arg;
    if (cli->json) {
        output_json_event(stdout, ev);
    } else {
        /* A ticket's event names the ticket; a system-wide queue's has no branch. */
        const char *branch = ev->branch_code && ev->branch_code[0] ? ev->branch_code : "-";
        if (ev->has_ticket_id)
            printf("[%s] %s ticket %lld: %s\n", branch, ev->kind, (long long)ev->ticket_id,
                   ev->text ? ev->text : "");
        else
            printf("[%s] %s: %s\n", ev->branch_code ? ev->branch_code : "?", ev->kind,
                   ev->text ? ev->text : "");
    }
    fflush(stdout);
}

static int holds_listen(holds_listener_t *l)
{
    cli_t *cli = l->cli;
    Carrel__Subscribe s = CARREL__SUBSCRIBE__INIT;
    if (l->all_branches)
        s.has_all_branches = s.all_branches = 1;
    Carrel__Request req = CARREL__REQUEST__INIT;
    req.body_case = CARREL__REQUEST__BODY_SUBSCRIBE;
    req.subscribe = &s;
    Carrel__Response *r = NULL;
    cli->conn.on_event = holds_print_event;
    cli->conn.event_arg = cli;
    int code = holds_send(cli, &req, &r, false);
    if (code != EXIT_OK)
        return code;
    carrel__response__free_unpacked(r, NULL);
    if (!cli->json)
        printf("Listening for events; Ctrl-C to stop.\n");
    fflush(stdout);
    l->listen.ping_sent_ms = listen_now_ms(); /* the Subscribe just now counts as traffic */
    while (!l->listen.stop && !cli->conn.closed) {
        code = listen_keepalive(&l->listen, cli);
        if (code != EXIT_OK)
            return code;
        client_run_once(&cli->conn);
    }
    if (l->listen.stop)
        return EXIT_OK;
    return cli_fail(cli, EXIT_NETWORK, "%s", cli->conn.error);
}

static int holds_events_usage(cli_t *cli)
{
    return cli_fail(cli, EXIT_USAGE, "usage: events [--all] [--keepalive SECONDS]");
}

static int cmd_events(cli_t *cli, int argc, char **argv)
{
    holds_listener_t l = {.cli = cli};
    uint64_t keepalive_ms = LISTEN_KEEPALIVE_S * 1000u;
    static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
                                         {"keepalive", required_argument, NULL, 'k'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "ak:", opts, NULL)) != -1) {
        if (ch == 'a') {
            l.all_branches = true;
        } else if (ch == 'k') {
            int64_t seconds;
            if (cli_int_arg(cli, "--keepalive", optarg, 1, 3600, &seconds) != EXIT_OK)
                return EXIT_USAGE;
            keepalive_ms = (uint64_t)seconds * 1000u;
        } else {
            return holds_events_usage(cli);
        }
    }
    if (optind != argc)
        return holds_events_usage(cli);
    /* Signals are watched before anything is printed, so that one sent as soon
     * as "Listening" shows is not missed. */
    static const int signals[] = {SIGINT, SIGTERM};
    listen_init(&l.listen, cli, keepalive_ms);
    listen_start(&l.listen, signals, 2);
    int code = holds_listen(&l);
    listen_stop_wait(&l.listen);
    cli->conn.on_event = NULL;
    return code;
}

const command_t holds_commands[] = {
    {.path = "hold place",
     .build = build_hold_place,
     .send = CMD_SEND_KEYED,
     .print_text = print_hold,
     .needs_login = true,
     .usage = "CARD (--bib ID | --item BARCODE) [--pickup CODE] [--not-after DATE] "
              "[--suspend-until DATE]",
     .summary = "place a hold on a title or a copy (pickup: this branch unless given)"},
    {.path = "hold list",
     .build = build_hold_list,
     .send = CMD_SEND_READ,
     .print_text = print_holds,
     .needs_login = true,
     .usage = "CARD [--all]",
     .summary = "a patron's holds with queue position and status"},
    {.path = "hold cancel",
     .build = build_hold_cancel,
     .send = CMD_SEND_KEYED,
     .print_text = print_hold,
     .needs_login = true,
     .usage = "HOLD_ID --reason TEXT",
     .summary = "cancel a hold"},
    {.path = "hold suspend",
     .build = build_hold_suspend,
     .send = CMD_SEND_KEYED,
     .print_text = print_hold,
     .needs_login = true,
     .usage = "HOLD_ID --until DATE",
     .summary = "suspend a hold until a date (it keeps its place)"},
    {.path = "hold activate",
     .build = build_hold_activate,
     .send = CMD_SEND_KEYED,
     .print_text = print_hold,
     .needs_login = true,
     .usage = "HOLD_ID",
     .summary = "end a suspension"},
    {.path = "hold pickup",
     .build = build_hold_pickup,
     .send = CMD_SEND_KEYED,
     .print_text = print_hold,
     .needs_login = true,
     .usage = "HOLD_ID --pickup CODE",
     .summary = "change the pickup branch"},
    {.path = "holds queue",
     .build = build_holds_queue,
     .send = CMD_SEND_READ,
     .print_text = print_holds,
     .needs_login = true,
     .usage = "BIB",
     .summary = "a title's holds in queue order"},
    {.path = "pull-list",
     .build = build_pull_list,
     .send = CMD_SEND_READ,
     .print_text = print_pull_list,
     .needs_login = true,
     .usage = "[--branch CODE]",
     .summary = "copies to take from the shelves for holds"},
    {.path = "item not-found",
     .build = build_item_not_found,
     .send = CMD_SEND_KEYED,
     .print_text = print_item_not_found,
     .needs_login = true,
     .usage = "BARCODE",
     .summary = "a pull-list copy was not on the shelf: mark it missing, ask another copy"},
    {.path = "holds-shelf",
     .build = build_holds_shelf,
     .send = CMD_SEND_READ,
     .print_text = print_holds_shelf,
     .needs_login = true,
     .usage = "[--branch CODE] [--clearing]",
     .summary = "what is on the hold shelf; --clearing: expired holds to pull off it"},
    {.path = "transit list",
     .build = build_transit_list,
     .send = CMD_SEND_READ,
     .print_text = print_transit_list,
     .needs_login = true,
     .usage = "[--incoming|--outgoing|--overdue] [--branch CODE]",
     .summary = "items travelling to or from a branch"},
    {.path = "transit receive",
     .run = cmd_transit_receive,
     .needs_login = true,
     .usage = "ITEM...",
     .summary = "receive items at this branch (a checkin)"},
    {.path = "transit cancel",
     .build = build_transit_cancel,
     .send = CMD_SEND_KEYED,
     .print_text = print_transit_cancel,
     .needs_login = true,
     .usage = "BARCODE",
     .summary = "cancel a transit: the item goes on the shelf of the branch that last scanned it"},
    {.path = "events",
     .run = cmd_events,
     .needs_login = true,
     .usage = "[--all] [--keepalive SECONDS]",
     .summary = "print this branch's live events (captures, transits, holds; tickets flagged "
                "or escalated in one's queues, with the ticket number) until Ctrl-C; "
                "a keepalive Ping every 60 s unless --keepalive says otherwise"},
    {.path = NULL},
};
