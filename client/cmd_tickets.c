/*
 * Ticket commands (proto/tickets.proto): the list of tickets one works,
 * opening a ticket (from a tally at the desk: --inquiry), a ticket with its
 * history, replies to the patron and internal notes, the changes (claim,
 * assign, transfer, status, close, reopen, kb), and the queues. Opening,
 * changes and posts are keyed (sent again with the same key after a lost
 * answer). Times are the library's local time as the server sends them;
 * --json prints each reply as it is.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

/* A question, reply or note: 8000 characters of up to four bytes each. */
#define TICKET_TEXT_MAX_BYTES 32000
#define TICKET_MEMBERS_MAX    500

enum {
    OPT_QUEUE = 256,
    OPT_MINE,
    OPT_OVERDUE,
    OPT_FLAGGED,
    OPT_STATUS,
    OPT_BRANCH,
    OPT_LIMIT,
    OPT_BEFORE,
    OPT_SUBJECT,
    OPT_QUESTION,
    OPT_CARD,
    OPT_EMAIL,
    OPT_PHONE,
    OPT_REPLY_BY,
    OPT_CHANNEL,
    OPT_INQUIRY,
    OPT_KEEP_OPEN,
    OPT_NOTE,
    OPT_KB,
    OPT_NAME,
    OPT_HOURS_BRANCH,
    OPT_TARGET_HOURS,
    OPT_MEMBERS,
    OPT_ACTIVE,
    OPT_INACTIVE,
    OPT_NO_MEMBERS,
};

static const char *tix_or(const char *s, const char *otherwise)
{
    return s && s[0] ? s : otherwise;
}

/* A ticket number from the command line. */
static int tix_id(cli_t *cli, const char *text, int64_t *out)
{
    return cli_int_arg(cli, "ticket number", text, 1, INT64_MAX, out);
}

/* ---------------------------------------------------------------- text from stdin */

/* Where prepare puts text read from standard input ("-", or a question left out). */
typedef struct tix_stdin {
    char **target; /* the request's field */
} tix_stdin_t;

/* Read the text the command line left to standard input, once (up to 8000 characters). */
static int prepare_stdin(cli_t *cli, cmd_call_t *call)
{
    tix_stdin_t *in = call->data;
    if (in == NULL || in->target == NULL || *in->target != NULL)
        return EXIT_OK;
    char *text = util_read_file("/dev/stdin", TICKET_TEXT_MAX_BYTES);
    if (text == NULL)
        return cli_fail(cli, EXIT_LOCAL, "cannot read the text from standard input: %s",
                        errno == EFBIG ? "more than 32000 bytes" : strerror(errno));
    util_chomp(text);
    size_t len = strlen(text);
    char *kept = cmd_part(call, len + 1);
    memcpy(kept, text, len + 1);
    free(text);
    if (kept[0] == '\0')
        return cli_fail(cli, EXIT_USAGE, "the text from standard input is empty");
    *in->target = kept;
    return EXIT_OK;
}

/* Ask prepare to fill *target from standard input. */
static void tix_read_stdin(cmd_call_t *call, char **target)
{
    tix_stdin_t *in = cmd_part(call, sizeof(*in));
    in->target = target;
    call->data = in;
}

/* ---------------------------------------------------------------- printing */

/* "40% used", "flagged", "ESCALATED" as one short cell. */
static void tix_urgency(char *out, size_t n, const Carrel__Ticket *t)
{
    const char *flag = t->escalated ? "ESCALATED" : t->flagged ? "flagged" : "";
    if (t->has_used_pct)
        snprintf(out, n, "%d%%%s%s", t->used_pct, flag[0] ? " " : "", flag);
    else
        snprintf(out, n, "%s", flag);
}

static void tix_print_list(Carrel__Ticket *const *tickets, size_t n)
{
    if (n == 0) {
        printf("No tickets.\n");
        return;
    }
    static const char *const headers[] = {"Ticket", "Queue", "Status", "Owner",
                                          "Due",    "Used",  "Subject"};
    table_t *t = table_new(7, headers);
    for (size_t i = 0; i < n; i++) {
        const Carrel__Ticket *k = tickets[i];
        char id[24], used[40], subject[256];
        snprintf(id, sizeof(id), "%lld", (long long)k->id);
        tix_urgency(used, sizeof(used), k);
        output_cut(subject, sizeof(subject), tix_or(k->subject, ""), OUTPUT_TITLE_COLUMNS);
        const char *row[] = {id,
                             tix_or(k->queue, ""),
                             tix_or(k->status, ""),
                             tix_or(k->owner, "-"),
                             tix_or(k->due_at, ""),
                             used,
                             subject};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

/* Who the replies go to: the patron, or the contact given. */
static void tix_print_patron(const Carrel__Ticket *t)
{
    if (t->anonymised) {
        printf("Patron:   (anonymised)\n");
        return;
    }
    if (t->card && t->card[0])
        printf("Patron:   %s %s\n", t->card, tix_or(t->patron_name, ""));
    if (t->contact_email && t->contact_email[0])
        printf("Email:    %s\n", t->contact_email);
    if (t->contact_phone && t->contact_phone[0])
        printf("Phone:    %s\n", t->contact_phone);
    printf("Reply by: %s\n", tix_or(t->reply_channel, "none"));
}

static void tix_print_message(const Carrel__TicketMessage *m)
{
    printf("  %s  %-6s %s", tix_or(m->at, ""), tix_or(m->kind, ""), tix_or(m->username, "(timer)"));
    if (m->sent_to && m->sent_to[0])
        printf(" -> %s (%s)", m->sent_to, tix_or(m->delivery, "pending"));
    printf("\n");
    /* Notes and replies on lines of their own, indented; events are one line. */
    const char *text = tix_or(m->text, "");
    if (m->kind && strcmp(m->kind, "event") == 0) {
        printf("      %s\n", text);
        return;
    }
    while (*text) {
        const char *nl = strchr(text, '\n');
        int len = nl ? (int)(nl - text) : (int)strlen(text);
        printf("      %.*s\n", len, text);
        text += len + (nl != NULL);
    }
}

static void tix_print_ticket(const Carrel__TicketShowReply *r)
{
    const Carrel__Ticket *t = r->ticket;
    if (t == NULL) {
        printf("No ticket.\n");
        return;
    }
    printf("Ticket %lld [%s] in %s%s%s%s\n", (long long)t->id, tix_or(t->status, "?"),
           tix_or(t->queue, "?"), t->branch_code && t->branch_code[0] ? " (" : "",
           tix_or(t->branch_code, ""), t->branch_code && t->branch_code[0] ? ")" : "");
    printf("Subject:  %s\n", tix_or(t->subject, ""));
    printf("Owner:    %s\n", tix_or(t->owner, "(unclaimed)"));
    printf("Opened:   %s by %s (%s)\n", tix_or(t->created_at, "?"), tix_or(t->created_by, "?"),
           tix_or(t->channel, "?"));
    if (t->closed_at && t->closed_at[0])
        printf("Closed:   %s\n", t->closed_at);
    char used[40];
    tix_urgency(used, sizeof(used), t);
    if (t->due_at && t->due_at[0])
        printf("Due:      %s (%s)\n", t->due_at, used);
    else if (used[0])
        printf("Target:   %s\n", used);
    tix_print_patron(t);
    if (t->has_inquiry_id)
        printf("Inquiry:  %lld\n", (long long)t->inquiry_id);
    if (t->kb)
        printf("Kept for the knowledge base.\n");
    printf("Question:\n");
    const char *q = tix_or(t->question, "");
    while (*q) {
        const char *nl = strchr(q, '\n');
        int len = nl ? (int)(nl - q) : (int)strlen(q);
        printf("  %.*s\n", len, q);
        q += len + (nl != NULL);
    }
    if (r->n_messages)
        printf("History:\n");
    for (size_t i = 0; i < r->n_messages; i++)
        tix_print_message(r->messages[i]);
}

/* ---------------------------------------------------------------- tickets */

static int tix_list_option(cli_t *cli, int ch, Carrel__TicketList *l)
{
    switch (ch) {
    case OPT_QUEUE:
        l->queue = optarg;
        return EXIT_OK;
    case OPT_MINE:
        l->has_mine = l->mine = 1;
        return EXIT_OK;
    case OPT_OVERDUE:
        l->has_overdue = l->overdue = 1;
        return EXIT_OK;
    case OPT_FLAGGED:
        l->has_flagged = l->flagged = 1;
        return EXIT_OK;
    case OPT_STATUS:
        l->status = optarg;
        return EXIT_OK;
    case OPT_BRANCH:
        l->branch = optarg;
        return EXIT_OK;
    case OPT_LIMIT:
        l->has_limit = 1;
        return cli_int32_arg(cli, "--limit", optarg, 1, 500, &l->limit);
    case OPT_BEFORE:
        l->has_before_id = 1;
        return tix_id(cli, optarg, &l->before_id);
    default:
        return EXIT_USAGE;
    }
}

static int build_tickets(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__TicketList *l = CMD_BODY(call, ticket_list, TICKET_LIST, carrel__ticket_list__init);
    static const struct option opts[] = {{"queue", required_argument, NULL, OPT_QUEUE},
                                         {"mine", no_argument, NULL, OPT_MINE},
                                         {"overdue", no_argument, NULL, OPT_OVERDUE},
                                         {"flagged", no_argument, NULL, OPT_FLAGGED},
                                         {"status", required_argument, NULL, OPT_STATUS},
                                         {"branch", required_argument, NULL, OPT_BRANCH},
                                         {"limit", required_argument, NULL, OPT_LIMIT},
                                         {"before", required_argument, NULL, OPT_BEFORE},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int code = tix_list_option(cli, ch, l);
        if (code == EXIT_USAGE && ch != OPT_LIMIT && ch != OPT_BEFORE)
            return cmd_usage(cli, call);
        if (code != EXIT_OK)
            return code;
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static void print_tickets(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    tix_print_list(r->tickets->tickets, r->tickets->n_tickets);
}

/* ---------------------------------------------------------------- ticket open */

static int tix_open_option(cli_t *cli, int ch, Carrel__Ticket *t)
{
    switch (ch) {
    case OPT_QUEUE:
        t->queue = optarg;
        break;
    case OPT_SUBJECT:
        t->subject = optarg;
        break;
    case OPT_QUESTION:
        t->question = optarg;
        break;
    case OPT_CARD:
        t->card = optarg;
        break;
    case OPT_EMAIL:
        t->contact_email = optarg;
        break;
    case OPT_PHONE:
        t->contact_phone = optarg;
        break;
    case OPT_REPLY_BY:
        t->reply_channel = optarg;
        break;
    case OPT_CHANNEL:
        t->channel = optarg;
        break;
    case OPT_INQUIRY:
        t->has_inquiry_id = 1;
        return cli_int_arg(cli, "--inquiry", optarg, 1, INT64_MAX, &t->inquiry_id);
    default:
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int build_ticket_open(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__TicketOpen *o = CMD_BODY(call, ticket_open, TICKET_OPEN, carrel__ticket_open__init);
    Carrel__Ticket *t = cmd_part(call, sizeof(*t));
    carrel__ticket__init(t);
    o->ticket = t;
    static const struct option opts[] = {{"queue", required_argument, NULL, OPT_QUEUE},
                                         {"subject", required_argument, NULL, OPT_SUBJECT},
                                         {"question", required_argument, NULL, OPT_QUESTION},
                                         {"card", required_argument, NULL, OPT_CARD},
                                         {"email", required_argument, NULL, OPT_EMAIL},
                                         {"phone", required_argument, NULL, OPT_PHONE},
                                         {"reply-by", required_argument, NULL, OPT_REPLY_BY},
                                         {"channel", required_argument, NULL, OPT_CHANNEL},
                                         {"inquiry", required_argument, NULL, OPT_INQUIRY},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int code = tix_open_option(cli, ch, t);
        if (code == EXIT_USAGE && ch != OPT_INQUIRY)
            return cmd_usage(cli, call);
        if (code != EXIT_OK)
            return code;
    }
    if (optind != argc || t->queue == NULL || t->subject == NULL)
        return cmd_usage(cli, call);
    if (t->question == NULL)
        tix_read_stdin(call, &t->question);
    return EXIT_OK;
}

static void print_ticket_opened(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__TicketShowReply *s = r->ticket_opened;
    if (s->ticket)
        printf("opened ticket %lld in %s\n", (long long)s->ticket->id,
               tix_or(s->ticket->queue, "?"));
    tix_print_ticket(s);
}

/* ---------------------------------------------------------------- ticket show */

static int build_ticket_show(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__TicketShow *s = CMD_BODY(call, ticket_show, TICKET_SHOW, carrel__ticket_show__init);
    if (argc != 2 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    s->has_id = 1;
    return tix_id(cli, argv[1], &s->id);
}

static void print_ticket(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    tix_print_ticket(r->ticket);
}

/* ---------------------------------------------------------------- reply, note */

/* ticket reply|note ID (TEXT | -) [--keep-open]: "-" (or no text) reads standard input. */
static int tix_build_post(cli_t *cli, int argc, char **argv, cmd_call_t *call, const char *kind)
{
    Carrel__TicketPost *p = CMD_BODY(call, ticket_post, TICKET_POST, carrel__ticket_post__init);
    p->kind = (char *)kind;
    bool reply = strcmp(kind, "reply") == 0;
    static const struct option reply_opts[] = {{"keep-open", no_argument, NULL, OPT_KEEP_OPEN},
                                               {NULL, 0, NULL, 0}};
    static const struct option note_opts[] = {{NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", reply ? reply_opts : note_opts, NULL)) != -1) {
        if (ch != OPT_KEEP_OPEN)
            return cmd_usage(cli, call);
        p->has_keep_open = p->keep_open = 1;
    }
    int rest = argc - optind;
    if (rest < 1 || rest > 2)
        return cmd_usage(cli, call);
    p->has_id = 1;
    if (tix_id(cli, argv[optind], &p->id) != EXIT_OK)
        return EXIT_USAGE;
    if (rest == 2 && strcmp(argv[optind + 1], "-") != 0)
        p->text = argv[optind + 1];
    else
        tix_read_stdin(call, &p->text);
    return EXIT_OK;
}

static int build_ticket_reply(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return tix_build_post(cli, argc, argv, call, "reply");
}

static int build_ticket_note(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return tix_build_post(cli, argc, argv, call, "note");
}

static void print_ticket_posted(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__TicketShowReply *s = r->ticket_posted;
    const Carrel__TicketMessage *last = s->n_messages ? s->messages[s->n_messages - 1] : NULL;
    if (strcmp(call->req.ticket_post->kind, "reply") == 0 && last && last->sent_to)
        printf("reply to %s queued (%s); ticket %lld is %s\n", last->sent_to,
               tix_or(last->delivery, "pending"), (long long)call->req.ticket_post->id,
               s->ticket ? tix_or(s->ticket->status, "?") : "?");
    else
        printf("%s added to ticket %lld\n", call->req.ticket_post->kind,
               (long long)call->req.ticket_post->id);
}

/* ---------------------------------------------------------------- changes */

/*
 * ticket ACTION ID [ARG] [--note T] (and --kb for close): the positional
 * argument the action takes is named by `arg` ("USER", "QUEUE", ...; NULL:
 * none).
 */
static int tix_build_change(cli_t *cli, int argc, char **argv, cmd_call_t *call, const char *action,
                            const char *arg)
{
    Carrel__TicketChange *c =
        CMD_BODY(call, ticket_change, TICKET_CHANGE, carrel__ticket_change__init);
    c->action = (char *)action;
    static const struct option opts[] = {{"note", required_argument, NULL, OPT_NOTE},
                                         {"kb", no_argument, NULL, OPT_KB},
                                         {NULL, 0, NULL, 0}};
    bool close = strcmp(action, "close") == 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_NOTE)
            c->note = optarg;
        else if (ch == OPT_KB && close)
            c->has_kb = c->kb = 1;
        else
            return cmd_usage(cli, call);
    }
    if (argc - optind != (arg ? 2 : 1))
        return cmd_usage(cli, call);
    c->has_id = 1;
    if (tix_id(cli, argv[optind], &c->id) != EXIT_OK)
        return EXIT_USAGE;
    call->number = c->id;
    if (arg == NULL)
        return EXIT_OK;
    char *value = argv[optind + 1];
    call->subject = value;
    if (strcmp(action, "assign") == 0) {
        c->to_username = value;
    } else if (strcmp(action, "transfer") == 0) {
        c->to_queue = value;
    } else if (strcmp(action, "status") == 0) {
        if (strcmp(value, "open") != 0 && strcmp(value, "waiting") != 0)
            return cmd_usage(cli, call);
        c->status = value;
    } else if (strcmp(action, "kb") == 0) {
        if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0)
            return cmd_usage(cli, call);
        c->has_kb = 1;
        c->kb = strcmp(value, "on") == 0;
    }
    return EXIT_OK;
}

#define TIX_CHANGE(name, action, arg)                                                              \
    static int build_ticket_##name(cli_t *cli, int argc, char **argv, cmd_call_t *call)            \
    {                                                                                              \
        return tix_build_change(cli, argc, argv, call, action, arg);                               \
    }
TIX_CHANGE(claim, "claim", NULL)
TIX_CHANGE(assign, "assign", "USER")
TIX_CHANGE(transfer, "transfer", "QUEUE")
TIX_CHANGE(status, "status", "STATUS")
TIX_CHANGE(close, "close", NULL)
TIX_CHANGE(reopen, "reopen", NULL)
TIX_CHANGE(kb, "kb", "on|off")

static void print_ticket_changed(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__Ticket *t = r->ticket_changed->ticket;
    printf("ticket %lld: %s", (long long)call->number, call->req.ticket_change->action);
    if (t)
        printf(" (now %s in %s, %s%s)", tix_or(t->status, "?"), tix_or(t->queue, "?"),
               t->owner && t->owner[0] ? "owner " : "", tix_or(t->owner, "unclaimed"));
    printf("\n");
}

/* ---------------------------------------------------------------- queues */

static int build_queues(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc != 1 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    CMD_BODY(call, ticket_queue_list, TICKET_QUEUE_LIST, carrel__ticket_queue_list__init);
    return EXIT_OK;
}

static void tix_print_queues(Carrel__TicketQueue *const *queues, size_t n)
{
    static const char *const headers[] = {"Queue",  "Name", "Branch",  "Hours of",
                                          "Target", "Open", "Overdue", "Members"};
    table_t *t = table_new(8, headers);
    for (size_t i = 0; i < n; i++) {
        const Carrel__TicketQueue *q = queues[i];
        char target[24], open[16], overdue[16], members[1024], code[80];
        snprintf(code, sizeof(code), "%s%s", tix_or(q->code, ""),
                 q->has_active && !q->active ? " (inactive)" : "");
        snprintf(target, sizeof(target), "%d h", q->target_hours);
        snprintf(open, sizeof(open), "%d", q->open_count);
        snprintf(overdue, sizeof(overdue), "%d", q->overdue_count);
        size_t len = 0;
        members[0] = '\0';
        for (size_t m = 0; m < q->n_members && len < sizeof(members); m++)
            len += (size_t)snprintf(members + len, sizeof(members) - len, "%s%s", m ? "," : "",
                                    q->members[m]);
        const char *row[] = {code,
                             tix_or(q->name, ""),
                             tix_or(q->branch_code, "(all)"),
                             tix_or(q->hours_branch_code, "(any)"),
                             target,
                             open,
                             overdue,
                             members};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

static void print_queues(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    tix_print_queues(r->ticket_queues->queues, r->ticket_queues->n_queues);
}

static int tix_queue_option(cli_t *cli, cmd_call_t *call, int ch, Carrel__TicketQueueSave *s)
{
    Carrel__TicketQueue *q = s->queue;
    switch (ch) {
    case OPT_NAME:
        q->name = optarg;
        return EXIT_OK;
    case OPT_BRANCH:
        q->branch_code = optarg;
        return EXIT_OK;
    case OPT_HOURS_BRANCH:
        q->hours_branch_code = optarg;
        return EXIT_OK;
    case OPT_TARGET_HOURS:
        q->has_target_hours = 1;
        return cli_int32_arg(cli, "--target-hours", optarg, 1, 2000, &q->target_hours);
    case OPT_MEMBERS:
        if (q->n_members ||
            !cmd_split(call, optarg, TICKET_MEMBERS_MAX, &q->members, &q->n_members))
            return cli_fail(cli, EXIT_USAGE,
                            "--members takes user names separated by commas, once");
        return EXIT_OK;
    case OPT_NO_MEMBERS:
        s->has_clear_members = s->clear_members = 1;
        return EXIT_OK;
    case OPT_ACTIVE:
    case OPT_INACTIVE:
        q->has_active = 1;
        q->active = ch == OPT_ACTIVE;
        return EXIT_OK;
    default:
        return cmd_usage(cli, call);
    }
}

static int build_queue_save(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__TicketQueueSave *s =
        CMD_BODY(call, ticket_queue_save, TICKET_QUEUE_SAVE, carrel__ticket_queue_save__init);
    Carrel__TicketQueue *q = cmd_part(call, sizeof(*q));
    carrel__ticket_queue__init(q);
    s->queue = q;
    static const struct option opts[] = {
        {"name", required_argument, NULL, OPT_NAME},
        {"branch", required_argument, NULL, OPT_BRANCH},
        {"hours-branch", required_argument, NULL, OPT_HOURS_BRANCH},
        {"target-hours", required_argument, NULL, OPT_TARGET_HOURS},
        {"members", required_argument, NULL, OPT_MEMBERS},
        {"active", no_argument, NULL, OPT_ACTIVE},
        {"inactive", no_argument, NULL, OPT_INACTIVE},
        {"no-members", no_argument, NULL, OPT_NO_MEMBERS},
        {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int code = tix_queue_option(cli, call, ch, s);
        if (code != EXIT_OK)
            return code;
    }
    if (argc - optind != 1 || (s->clear_members && q->n_members))
        return cmd_usage(cli, call);
    q->code = argv[optind];
    return EXIT_OK;
}

static void print_queue_saved(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    printf("saved ticket queue %s\n", tix_or(r->ticket_queue->code, "?"));
    tix_print_queues(&r->ticket_queue, 1);
}

/* ---------------------------------------------------------------- the table */

#define TIX_CHANGE_ENTRY(words, fn, args, what)                                                    \
    {                                                                                              \
        .path = "ticket " words, .build = build_ticket_##fn, .send = CMD_SEND_KEYED,               \
        .print_text = print_ticket_changed, .needs_login = true,                                   \
        .usage = "ID " args "[--note TEXT]", .summary = what                                       \
    }

const command_t tickets_commands[] = {
    {.path = "tickets",
     .build = build_tickets,
     .print_text = print_tickets,
     .needs_login = true,
     .usage = "[--queue Q] [--mine] [--overdue] [--flagged] [--status S|all] [--branch B] "
              "[--limit N] [--before ID]",
     .summary = "the tickets of the queues one works, most urgent first (--before ID pages the "
                "closed list only, --status closed: the tickets numbered below ID)"},
    {.path = "ticket open",
     .build = build_ticket_open,
     .prepare = prepare_stdin,
     .send = CMD_SEND_KEYED,
     .print_text = print_ticket_opened,
     .needs_login = true,
     .usage = "--queue Q --subject S [--question TEXT] [--card C | --email E | --phone P] "
              "[--reply-by email|sms|none] [--channel C] [--inquiry ID]",
     .summary = "open a follow-up ticket (the question from standard input without --question)"},
    {.path = "ticket show",
     .build = build_ticket_show,
     .print_text = print_ticket,
     .needs_login = true,
     .usage = "ID",
     .summary = "a ticket with its replies, notes and history"},
    {.path = "ticket reply",
     .build = build_ticket_reply,
     .prepare = prepare_stdin,
     .send = CMD_SEND_KEYED,
     .print_text = print_ticket_posted,
     .needs_login = true,
     .usage = "ID (TEXT | -) [--keep-open]",
     .summary = "reply to the patron (email, or the SMS export); the ticket waits for them "
                "unless --keep-open; - reads the text from standard input"},
    {.path = "ticket note",
     .build = build_ticket_note,
     .prepare = prepare_stdin,
     .send = CMD_SEND_KEYED,
     .print_text = print_ticket_posted,
     .needs_login = true,
     .usage = "ID (TEXT | -)",
     .summary = "add an internal note (never sent to the patron)"},
    TIX_CHANGE_ENTRY("claim", claim, "", "take a ticket (it must be unclaimed)"),
    TIX_CHANGE_ENTRY("assign", assign, "USER ", "give a ticket to someone who works its queue"),
    TIX_CHANGE_ENTRY("transfer", transfer, "QUEUE ",
                     "move a ticket to another queue (unclaimed again)"),
    TIX_CHANGE_ENTRY("status", status, "open|waiting ",
                     "waiting stops the clock until the patron answers; open restarts it"),
    TIX_CHANGE_ENTRY("close", close, "[--kb] ",
                     "close a ticket; --kb keeps the question for the knowledge base"),
    TIX_CHANGE_ENTRY("reopen", reopen, "", "reopen a closed ticket"),
    TIX_CHANGE_ENTRY("kb", kb, "on|off ", "mark or unmark a ticket for the knowledge base"),
    {.path = "ticket queues",
     .build = build_queues,
     .print_text = print_queues,
     .needs_login = true,
     .usage = "",
     .summary = "the ticket queues: target, open and overdue tickets, members"},
    {.path = "ticket queue save",
     .build = build_queue_save,
     .send = CMD_SEND_ONCE,
     .print_text = print_queue_saved,
     .needs_login = true,
     .usage = "CODE [--name N] [--branch B] [--hours-branch B] [--target-hours N] "
              "[--members a,b | --no-members] [--active|--inactive]",
     .summary = "create or change a ticket queue (coordinators; --members replaces the list)"},
    {.path = NULL},
};
