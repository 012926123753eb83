/*
 * Public service commands (proto/service.proto): inquiry tallies from a
 * script (desk mode's :q is in desk.c), the configurable lists, door counts
 * entered or imported from a counter's CSV file, public computer sessions,
 * floor sweeps and the service levels of a week. `inquiry stats` and
 * `visits` are `stats inquiries` and `stats visits` with the same options.
 * Times are the library's local time as the server sends them; --json
 * prints each reply as it is.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "util.h"

/* The server takes a file of at most 4 MB in one request. */
#define SERVICE_CSV_MAX   (4u * 1024u * 1024u)
#define SERVICE_SWEEP_MAX 1000 /* counts of one sweep */

enum {
    OPT_BRANCH = 256,
    OPT_CHANNEL,
    OPT_MINUTES,
    OPT_DESK,
    OPT_AT,
    OPT_QUESTION,
    OPT_ANSWER,
    OPT_DAY,
    OPT_LIMIT,
    OPT_ALL,
    OPT_NAME,
    OPT_REFERENCE,
    OPT_INACTIVE,
    OPT_ORDER,
    OPT_READING,
    OPT_CROSSINGS,
    OPT_COUNTER,
    OPT_PERIOD,
    OPT_SKIP_BAD,
    OPT_FROM,
    OPT_TO,
};

static const char *svc_or(const char *s, const char *otherwise)
{
    return s && s[0] ? s : otherwise;
}

/*
 * A time from the command line: "HH:MM" means today (this computer's date),
 * "YYYY-MM-DD HH:MM" is taken as it is. The result is kept with the call.
 */
static const char *svc_at(cmd_call_t *call, const char *arg)
{
    if (strlen(arg) != 5 || arg[2] != ':')
        return arg;
    char *out = cmd_part(call, 20);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char day[12];
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    snprintf(out, 20, "%s %s", day, arg);
    return out;
}

/* "in_person" -> "in person" for people. */
static const char *svc_channel_label(const char *channel)
{
    return channel && strcmp(channel, "in_person") == 0 ? "in person" : svc_or(channel, "?");
}

/* ---------------------------------------------------------------- inquiry add */

static int build_inquiry_add(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__InquiryAdd *a = CMD_BODY(call, inquiry_add, INQUIRY_ADD, carrel__inquiry_add__init);
    a->inquiry = cmd_part(call, sizeof(*a->inquiry));
    Carrel__Inquiry *q = a->inquiry;
    carrel__inquiry__init(q);
    static const struct option opts[] = {{"channel", required_argument, NULL, OPT_CHANNEL},
                                         {"minutes", required_argument, NULL, OPT_MINUTES},
                                         {"desk", required_argument, NULL, OPT_DESK},
                                         {"at", required_argument, NULL, OPT_AT},
                                         {"question", required_argument, NULL, OPT_QUESTION},
                                         {"answer", required_argument, NULL, OPT_ANSWER},
                                         {"branch", required_argument, NULL, OPT_BRANCH},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_CHANNEL:
            q->channel = optarg;
            break;
        case OPT_MINUTES:
            if (cli_int32_arg(cli, "--minutes", optarg, 0, 480, &q->minutes) != EXIT_OK)
                return EXIT_USAGE;
            q->has_minutes = 1;
            break;
        case OPT_DESK:
            q->desk_code = optarg;
            break;
        case OPT_AT:
            q->at = (char *)svc_at(call, optarg);
            break;
        case OPT_QUESTION:
            q->question = optarg;
            break;
        case OPT_ANSWER:
            q->answer = optarg;
            break;
        case OPT_BRANCH:
            q->branch_code = optarg;
            break;
        default:
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc - 2)
        return cmd_usage(cli, call);
    q->kind = argv[optind];
    if (cli_int32_arg(cli, "READ", argv[optind + 1], 1, 6, &q->read_level) != EXIT_OK)
        return EXIT_USAGE;
    q->has_read_level = 1;
    return EXIT_OK;
}

static void print_inquiry_add(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__InquiryAddReply *a = r->inquiry_add;
    const Carrel__Inquiry *q = a->inquiry;
    if (q == NULL)
        return;
    printf("Recorded inquiry %lld: %s, READ %d, %s, %d min at %s", (long long)q->id,
           svc_or(q->kind, "?"), q->read_level, svc_channel_label(q->channel), q->minutes,
           svc_or(q->at, "?"));
    if (q->desk_code && q->desk_code[0])
        printf(" (desk %s)", q->desk_code);
    printf(".\nToday: %lld at %s", (long long)a->today_branch, svc_or(q->branch_code, "?"));
    if (q->desk_code && q->desk_code[0])
        printf(", %lld at this desk", (long long)a->today_desk);
    printf(".\n");
}

/* ---------------------------------------------------------------- inquiry list / remove */

static int build_inquiry_list(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__InquiryList *l = CMD_BODY(call, inquiry_list, INQUIRY_LIST, carrel__inquiry_list__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"day", required_argument, NULL, OPT_DAY},
                                         {"desk", required_argument, NULL, OPT_DESK},
                                         {"limit", required_argument, NULL, OPT_LIMIT},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_BRANCH:
            l->branch = optarg;
            break;
        case OPT_DAY:
            l->day = optarg;
            break;
        case OPT_DESK:
            l->desk = optarg;
            break;
        case OPT_LIMIT:
            if (cli_int32_arg(cli, "--limit", optarg, 1, 1000, &l->limit) != EXIT_OK)
                return EXIT_USAGE;
            l->has_limit = 1;
            break;
        default:
            return cmd_usage(cli, call);
        }
    }
    return optind == argc ? EXIT_OK : cmd_usage(cli, call);
}

static void print_inquiry_list(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__InquiryListReply *l = r->inquiries;
    if (l->n_inquiries == 0) {
        printf("No tallies.\n");
        return;
    }
    static const char *const headers[] = {"Id",   "At",  "Desk", "Channel", "Kind",
                                          "READ", "Min", "By",   "Ticket",  "Question"};
    table_t *t = table_new(10, headers);
    for (size_t i = 0; i < l->n_inquiries; i++) {
        const Carrel__Inquiry *q = l->inquiries[i];
        char id[24], read[8], minutes[8], ticket[24], question[64];
        snprintf(id, sizeof(id), "%lld", (long long)q->id);
        snprintf(read, sizeof(read), "%d", q->read_level);
        snprintf(minutes, sizeof(minutes), "%d", q->minutes);
        snprintf(ticket, sizeof(ticket), "%s", "");
        if (q->has_ticket_id)
            snprintf(ticket, sizeof(ticket), "%lld", (long long)q->ticket_id);
        output_cut(question, sizeof(question), svc_or(q->question, ""), 40);
        const char *row[] = {id,      q->at,   q->desk_code, svc_channel_label(q->channel),
                             q->kind, read,    minutes,      q->username,
                             ticket,  question};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

static int build_inquiry_remove(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__InquiryRemove *m =
        CMD_BODY(call, inquiry_remove, INQUIRY_REMOVE, carrel__inquiry_remove__init);
    if (argc != 2 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    if (cli_int_arg(cli, "ID", argv[1], 1, INT64_MAX, &m->id) != EXIT_OK)
        return EXIT_USAGE;
    m->has_id = 1;
    return EXIT_OK;
}

static void print_inquiry_removed(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__Inquiry *q = r->inquiry_removed;
    printf("Took back inquiry %lld (%s, READ %d, %s, recorded by %s).\n", (long long)q->id,
           svc_or(q->kind, "?"), q->read_level, svc_or(q->at, "?"), svc_or(q->username, "?"));
}

/* ---------------------------------------------------------------- stats shortcuts */

/* `inquiry stats ...` and `visits ...`: the `stats` command with the measure put first. */
static int svc_stats(cli_t *cli, int argc, char **argv, const char *measure)
{
    int words = 0;
    char *path[] = {"stats"};
    const command_t *stats = command_find(1, path, &words);
    if (stats == NULL)
        return cli_fail(cli, EXIT_LOCAL, "no stats command");
    char **args = util_xcalloc((size_t)argc + 2, sizeof(char *));
    args[0] = "stats";
    args[1] = (char *)measure;
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    /* getopt skips args[1] (the measure is not an option) and leaves it last. */
    optind = 0;
    int code = command_run(cli, stats, argc + 1, args);
    free(args);
    return code;
}

static int cmd_inquiry_stats(cli_t *cli, int argc, char **argv)
{
    return svc_stats(cli, argc, argv, "inquiries");
}

static int cmd_visits(cli_t *cli, int argc, char **argv)
{
    return svc_stats(cli, argc, argv, "visits");
}

/* ---------------------------------------------------------------- codes */

static int build_codes(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ServiceCodeList *l =
        CMD_BODY(call, service_code_list, SERVICE_CODE_LIST, carrel__service_code_list__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"all", no_argument, NULL, OPT_ALL},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_BRANCH)
            l->branch = optarg;
        else if (ch == OPT_ALL)
            l->has_include_inactive = l->include_inactive = 1;
        else
            return cmd_usage(cli, call);
    }
    if (optind != argc - 1)
        return cmd_usage(cli, call);
    l->list = argv[optind];
    return EXIT_OK;
}

static void print_codes(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__ServiceCodeListReply *l = r->service_codes;
    if (l->n_codes == 0) {
        printf("The list is empty.\n");
        return;
    }
    static const char *const headers[] = {"#", "Code", "Name", "Branch", "Reference", "Active"};
    table_t *t = table_new(6, headers);
    for (size_t i = 0; i < l->n_codes; i++) {
        const Carrel__ServiceCode *c = l->codes[i];
        char n[24];
        snprintf(n, sizeof(n), "%zu", i + 1);
        const char *row[] = {n,
                             c->code,
                             c->name,
                             c->branch_code,
                             c->has_reference ? (c->reference ? "yes" : "no") : "",
                             c->active ? "yes" : "no"};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

static int build_code_save(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ServiceCodeSave *s =
        CMD_BODY(call, service_code_save, SERVICE_CODE_SAVE, carrel__service_code_save__init);
    s->code = cmd_part(call, sizeof(*s->code));
    Carrel__ServiceCode *c = s->code;
    carrel__service_code__init(c);
    c->has_active = c->active = 1;
    static const struct option opts[] = {{"name", required_argument, NULL, OPT_NAME},
                                         {"branch", required_argument, NULL, OPT_BRANCH},
                                         {"reference", required_argument, NULL, OPT_REFERENCE},
                                         {"inactive", no_argument, NULL, OPT_INACTIVE},
                                         {"order", required_argument, NULL, OPT_ORDER},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_NAME:
            c->name = optarg;
            break;
        case OPT_BRANCH:
            c->branch_code = optarg;
            break;
        case OPT_REFERENCE:
            if (strcmp(optarg, "yes") != 0 && strcmp(optarg, "no") != 0)
                return cli_fail(cli, EXIT_USAGE, "--reference takes yes or no");
            c->has_reference = 1;
            c->reference = strcmp(optarg, "yes") == 0;
            break;
        case OPT_INACTIVE:
            c->active = 0;
            break;
        case OPT_ORDER:
            if (cli_int32_arg(cli, "--order", optarg, 0, 10000, &c->ord) != EXIT_OK)
                return EXIT_USAGE;
            c->has_ord = 1;
            break;
        default:
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc - 2)
        return cmd_usage(cli, call);
    c->list = argv[optind];
    c->code = argv[optind + 1];
    return EXIT_OK;
}

static void print_code_save(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__ServiceCode *c = r->service_code;
    printf("Saved %s %s%s%s: %s%s.\n", svc_or(c->list, "?"), svc_or(c->branch_code, ""),
           c->branch_code && c->branch_code[0] ? " " : "", svc_or(c->code, "?"),
           svc_or(c->name, ""), c->active ? "" : " (inactive)");
}

/* ---------------------------------------------------------------- door counts */

static int build_visits_add(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__GateCountAdd *g =
        CMD_BODY(call, gate_count_add, GATE_COUNT_ADD, carrel__gate_count_add__init);
    static const struct option opts[] = {{"reading", required_argument, NULL, OPT_READING},
                                         {"crossings", required_argument, NULL, OPT_CROSSINGS},
                                         {"day", required_argument, NULL, OPT_DAY},
                                         {"at", required_argument, NULL, OPT_AT},
                                         {"counter", required_argument, NULL, OPT_COUNTER},
                                         {"branch", required_argument, NULL, OPT_BRANCH},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_READING:
            if (cli_int_arg(cli, "--reading", optarg, 0, INT64_MAX / 2, &g->reading) != EXIT_OK)
                return EXIT_USAGE;
            g->has_reading = 1;
            break;
        case OPT_CROSSINGS:
            if (cli_int_arg(cli, "--crossings", optarg, 0, INT64_MAX / 2, &g->crossings) != EXIT_OK)
                return EXIT_USAGE;
            g->has_crossings = 1;
            break;
        case OPT_DAY:
            g->day = optarg;
            break;
        case OPT_AT:
            g->at = (char *)svc_at(call, optarg);
            break;
        case OPT_COUNTER:
            g->counter = optarg;
            break;
        case OPT_BRANCH:
            g->branch_code = optarg;
            break;
        default:
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc || g->has_reading == g->has_crossings || (g->day && !g->has_crossings) ||
        (g->at && !g->has_reading))
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static void print_visits_add(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__GateCountAddReply *g = r->gate_count;
    printf("Counter %s at %s: %lld crossings from %s to %s. Visits today: %lld.\n",
           svc_or(g->counter, "?"), svc_or(g->branch_code, "?"), (long long)g->crossings,
           svc_or(g->from, "?"), svc_or(g->to, "?"), (long long)g->visits_today);
}

/* ---------------------------------------------------------------- imports */

/*
 * The file's text for the request, kept with the call: line ends become LF
 * (CR is a control character the server refuses in text; CR LF and a lone
 * CR each end one line, so line numbers stay as an editor shows them).
 */
static int svc_read_csv(cli_t *cli, cmd_call_t *call, const char *path, char **out)
{
    size_t len = 0;
    uint8_t *bytes = util_read_all(path, &len);
    if (bytes == NULL)
        return cli_fail(cli, EXIT_LOCAL, "cannot read %s", path);
    if (memchr(bytes, '\0', len) != NULL) {
        free(bytes);
        return cli_fail(cli, EXIT_LOCAL,
                        "%s has a NUL byte (is it UTF-16? save it as CSV in UTF-8)", path);
    }
    if (len > SERVICE_CSV_MAX) {
        free(bytes);
        return cli_fail(cli, EXIT_LOCAL, "%s is over 4 MB: split it (by month, say)", path);
    }
    char *text = cmd_part(call, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (bytes[i] == '\r') {
            text[n++] = '\n';
            if (i + 1 < len && bytes[i + 1] == '\n')
                i++;
        } else {
            text[n++] = (char)bytes[i];
        }
    }
    text[n] = '\0';
    free(bytes);
    *out = text;
    return EXIT_OK;
}

static int build_import(cli_t *cli, int argc, char **argv, cmd_call_t *call, bool gate)
{
    Carrel__CountImport *m = CMD_BODY(call, count_import, COUNT_IMPORT, carrel__count_import__init);
    m->kind = gate ? "gate" : "computers";
    call->data = cli_outcome_new(call);
    static const struct option gate_opts[] = {{"counter", required_argument, NULL, OPT_COUNTER},
                                              {"period", required_argument, NULL, OPT_PERIOD},
                                              {"skip-bad", no_argument, NULL, OPT_SKIP_BAD},
                                              {"branch", required_argument, NULL, OPT_BRANCH},
                                              {NULL, 0, NULL, 0}};
    /* Computer files have no counter and no period. */
    const struct option *opts = gate ? gate_opts : gate_opts + 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_COUNTER:
            m->counter = optarg;
            break;
        case OPT_PERIOD:
            if (cli_int32_arg(cli, "--period", optarg, 5, 1440, &m->period_minutes) != EXIT_OK)
                return EXIT_USAGE;
            m->has_period_minutes = 1;
            break;
        case OPT_SKIP_BAD:
            m->has_skip_bad = m->skip_bad = 1;
            break;
        case OPT_BRANCH:
            m->branch_code = optarg;
            break;
        default:
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc - 1)
        return cmd_usage(cli, call);
    call->subject = argv[optind];
    return svc_read_csv(cli, call, argv[optind], &m->csv);
}

static int build_visits_import(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return build_import(cli, argc, argv, call, true);
}

static int build_computers_import(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return build_import(cli, argc, argv, call, false);
}

/* Nothing applied is a refusal for scripts: exit 4 (cli_outcome_finish). */
static void import_outcome(const cmd_call_t *call, const Carrel__CountImportReply *x)
{
    cli_outcome_t *o = call->data;
    if (o)
        o->code = x->applied ? EXIT_OK : EXIT_SERVER;
}

static void print_import(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__CountImportReply *x = r->count_import;
    import_outcome(call, x);
    for (size_t i = 0; i < x->n_bad; i++) {
        const Carrel__CountImportLine *l = x->bad[i];
        printf("line %d: %s: %s\n", l->line, svc_or(l->reason, "?"), svc_or(l->message, ""));
    }
    /* The server lists at most 1000 bad lines. */
    printf("%s: %d lines read, %s%zu bad. ", svc_or(call->subject, "?"), x->lines,
           x->n_bad >= 1000 ? "at least " : "", x->n_bad);
    if (x->applied)
        printf("Imported: %d added, %d replaced, %d unchanged.\n", x->imported, x->replaced,
               x->unchanged);
    else
        printf("Nothing was imported%s.\n",
               x->n_bad ? ": correct the bad lines, or import the good ones with --skip-bad" : "");
}

static void print_import_json(const cmd_call_t *call, const Carrel__Response *r)
{
    import_outcome(call, r->count_import);
    cmd_print_body_json(call, r);
}

/* ---------------------------------------------------------------- computers */

static int build_computers_set(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ComputerSessionsSet *c = CMD_BODY(call, computer_sessions_set, COMPUTER_SESSIONS_SET,
                                              carrel__computer_sessions_set__init);
    static const struct option opts[] = {{"day", required_argument, NULL, OPT_DAY},
                                         {"minutes", required_argument, NULL, OPT_MINUTES},
                                         {"branch", required_argument, NULL, OPT_BRANCH},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_DAY:
            c->day = optarg;
            break;
        case OPT_MINUTES:
            if (cli_int32_arg(cli, "--minutes", optarg, 0, 100000000, &c->minutes) != EXIT_OK)
                return EXIT_USAGE;
            c->has_minutes = 1;
            break;
        case OPT_BRANCH:
            c->branch_code = optarg;
            break;
        default:
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc - 1)
        return cmd_usage(cli, call);
    if (cli_int32_arg(cli, "N", argv[optind], 0, 100000, &c->sessions) != EXIT_OK)
        return EXIT_USAGE;
    c->has_sessions = 1;
    return EXIT_OK;
}

static void print_computers_set(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__ComputerSessionsSetReply *c = r->computer_sessions;
    printf("%s on %s: %d computer sessions", svc_or(c->branch_code, "?"), svc_or(c->day, "?"),
           c->sessions);
    if (c->has_minutes)
        printf(", %d minutes", c->minutes);
    printf(".\n");
}

/* ---------------------------------------------------------------- sweeps */

/* "AREA=N" or "AREA=N/ACTIVITY" into a count (strings point into arg, which is split). */
static bool svc_sweep_count(cli_t *cli, char *arg, Carrel__SweepCount *c)
{
    char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg)
        return false;
    *eq = '\0';
    char *slash = strchr(eq + 1, '/');
    if (slash) {
        *slash = '\0';
        if (slash[1] == '\0')
            return false;
        c->activity = slash + 1;
    }
    c->area = arg;
    if (cli_int32_arg(cli, "a headcount", eq + 1, 0, 10000, &c->headcount) != EXIT_OK)
        return false;
    c->has_headcount = 1;
    return true;
}

static int build_sweep_add(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__SweepSave *s = CMD_BODY(call, sweep_save, SWEEP_SAVE, carrel__sweep_save__init);
    s->sweep = cmd_part(call, sizeof(*s->sweep));
    carrel__sweep__init(s->sweep);
    static const struct option opts[] = {{"at", required_argument, NULL, OPT_AT},
                                         {"branch", required_argument, NULL, OPT_BRANCH},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_AT)
            s->sweep->at = (char *)svc_at(call, optarg);
        else if (ch == OPT_BRANCH)
            s->sweep->branch_code = optarg;
        else
            return cmd_usage(cli, call);
    }
    size_t n = (size_t)(argc - optind);
    if (n == 0 || n > SERVICE_SWEEP_MAX)
        return cmd_usage(cli, call);
    s->sweep->counts = cmd_part(call, n * sizeof(*s->sweep->counts));
    Carrel__SweepCount *counts = cmd_part(call, n * sizeof(*counts));
    for (size_t i = 0; i < n; i++) {
        carrel__sweep_count__init(&counts[i]);
        if (!svc_sweep_count(cli, argv[optind + (int)i], &counts[i]))
            return cli_fail(cli, EXIT_USAGE, "each count is AREA=N or AREA=N/ACTIVITY, not %s",
                            argv[optind + (int)i]);
        s->sweep->counts[s->sweep->n_counts++] = &counts[i];
    }
    return EXIT_OK;
}

static void svc_print_sweep(const Carrel__Sweep *s)
{
    printf("Sweep %lld at %s, %s, by %s: %d people\n", (long long)s->id,
           svc_or(s->branch_code, "?"), svc_or(s->at, "?"), svc_or(s->username, "?"), s->total);
    for (size_t i = 0; i < s->n_counts; i++) {
        const Carrel__SweepCount *c = s->counts[i];
        printf("  %-16s %-14s %d\n", svc_or(c->area, "?"), svc_or(c->activity, ""), c->headcount);
    }
}

static void print_sweep_add(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    svc_print_sweep(r->sweep);
}

static int build_sweep_list(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__SweepList *l = CMD_BODY(call, sweep_list, SWEEP_LIST, carrel__sweep_list__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"from", required_argument, NULL, OPT_FROM},
                                         {"to", required_argument, NULL, OPT_TO},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_BRANCH)
            l->branch = optarg;
        else if (ch == OPT_FROM)
            l->from = optarg;
        else if (ch == OPT_TO)
            l->to = optarg;
        else
            return cmd_usage(cli, call);
    }
    return optind == argc ? EXIT_OK : cmd_usage(cli, call);
}

static void print_sweep_list(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__SweepListReply *l = r->sweeps;
    if (l->n_sweeps == 0)
        printf("No sweeps.\n");
    for (size_t i = 0; i < l->n_sweeps; i++)
        svc_print_sweep(l->sweeps[i]);
}

/* ---------------------------------------------------------------- service levels */

static int build_levels(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ServiceLevels *l =
        CMD_BODY(call, service_levels, SERVICE_LEVELS, carrel__service_levels__init);
    return cmd_branch_week(cli, argc, argv, call, &l->branch, &l->week);
}

/* "12/2 (6.0)*": activity of the half hour, staff on desk, per staff, heavy marked. */
static void level_cell(char *out, size_t n, const Carrel__ServiceLevelRow *x)
{
    char per[16] = "-";
    if (x->has_per_staff)
        snprintf(per, sizeof(per), "%.1f", x->per_staff);
    snprintf(out, n, "%d/%d %s%s", x->circulation + x->inquiries, x->staff_on_desk, per,
             x->heavy ? " *" : "");
}

/* One branch: a row per half hour, the measures as columns. */
static void levels_one_branch(const Carrel__ServiceLevelsReply *l)
{
    static const char *const headers[] = {"Day",       "Time",      "On desk",   "Needed", "Circ",
                                          "Inquiries", "Headcount", "Per staff", "Heavy"};
    table_t *t = table_new(9, headers);
    for (size_t i = 0; i < l->n_rows; i++) {
        const Carrel__ServiceLevelRow *x = l->rows[i];
        char on[12], need[12], circ[12], inq[12], head[12], per[16];
        snprintf(on, sizeof(on), "%d", x->staff_on_desk);
        snprintf(need, sizeof(need), "%d", x->staff_needed);
        snprintf(circ, sizeof(circ), "%d", x->circulation);
        snprintf(inq, sizeof(inq), "%d", x->inquiries);
        snprintf(head, sizeof(head), "%s", "");
        if (x->has_headcount)
            snprintf(head, sizeof(head), "%d", x->headcount);
        snprintf(per, sizeof(per), "%s", "-");
        if (x->has_per_staff)
            snprintf(per, sizeof(per), "%.1f", x->per_staff);
        const char *row[] = {
            x->day, x->time, on, need, circ, inq, head, per, x->heavy ? "HEAVY" : ""};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

/* Rows by day and time (branches open at different hours: slots interleave). */
static int level_slot_cmp(const void *a, const void *b)
{
    const Carrel__ServiceLevelRow *x = *(Carrel__ServiceLevelRow *const *)a;
    const Carrel__ServiceLevelRow *y = *(Carrel__ServiceLevelRow *const *)b;
    int c = strcmp(svc_or(x->day, ""), svc_or(y->day, ""));
    return c ? c : strcmp(svc_or(x->time, ""), svc_or(y->time, ""));
}

/* Every branch side by side: a row per day and half hour, a column per branch. */
static void levels_all_branches(const Carrel__ServiceLevelsReply *l)
{
    const char **branches = util_xcalloc(l->n_rows + 1, sizeof(char *));
    size_t nb = 0;
    for (size_t i = 0; i < l->n_rows; i++) {
        size_t b = 0;
        while (b < nb && strcmp(branches[b], l->rows[i]->branch_code) != 0)
            b++;
        if (b == nb)
            branches[nb++] = l->rows[i]->branch_code;
    }
    /* The rows in slot order (a copy: the reply is the caller's). */
    const Carrel__ServiceLevelRow **rows = util_xcalloc(l->n_rows + 1, sizeof(*rows));
    memcpy(rows, l->rows, l->n_rows * sizeof(*rows));
    qsort(rows, l->n_rows, sizeof(*rows), level_slot_cmp);
    size_t ncells = nb + 2;
    const char **headers = util_xcalloc(ncells, sizeof(char *));
    headers[0] = "Day";
    headers[1] = "Time";
    for (size_t b = 0; b < nb; b++)
        headers[b + 2] = branches[b];
    char(*cells)[40] = util_xcalloc(ncells, sizeof(*cells));
    const char **row = util_xcalloc(ncells, sizeof(char *));
    table_t *t = table_new((int)ncells, headers);
    size_t i = 0;
    while (i < l->n_rows) {
        for (size_t c = 0; c < ncells; c++)
            cells[c][0] = '\0';
        size_t k = i;
        for (; k < l->n_rows && level_slot_cmp(&rows[i], &rows[k]) == 0; k++)
            for (size_t b = 0; b < nb; b++)
                if (strcmp(branches[b], rows[k]->branch_code) == 0)
                    level_cell(cells[b + 2], sizeof(cells[b + 2]), rows[k]);
        row[0] = rows[i]->day;
        row[1] = rows[i]->time;
        for (size_t b = 0; b < nb; b++)
            row[b + 2] = cells[b + 2];
        table_add(t, row);
        i = k;
    }
    table_print(t, stdout);
    table_free(t);
    printf("Each cell: activity (circulation + inquiries) / staff on desk, activity per staff "
           "member; * marks the branch's heaviest half hours of the week.\n");
    free(row);
    free(cells);
    free(headers);
    free(rows);
    free(branches);
}

static void print_levels(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__ServiceLevelsReply *l = r->service_levels;
    printf("Service levels, week of %s\n", svc_or(l->week, "?"));
    if (l->n_rows == 0) {
        printf("No open half hours that week.\n");
        return;
    }
    bool one = true;
    for (size_t i = 1; i < l->n_rows && one; i++)
        one = strcmp(l->rows[i]->branch_code, l->rows[0]->branch_code) == 0;
    if (one)
        levels_one_branch(l);
    else
        levels_all_branches(l);
}

/* ---------------------------------------------------------------- the table */

const command_t service_commands[] = {
    {.path = "inquiry add",
     .build = build_inquiry_add,
     /* Retried with its key: the server records a keyed tally once. */
     .send = CMD_SEND_KEYED,
     .print_text = print_inquiry_add,
     .needs_login = true,
     .usage = "KIND READ [--channel in_person|phone|email|chat|text] [--minutes N] [--desk CODE] "
              "[--at HH:MM|'YYYY-MM-DD HH:MM'] [--question TEXT] [--answer TEXT] [--branch CODE]",
     .summary = "record one question answered (a tally): its kind and effort on the READ scale "
                "1-6; --at backdates it within the day"},
    {.path = "inquiry list",
     .build = build_inquiry_list,
     .send = CMD_SEND_READ,
     .print_text = print_inquiry_list,
     .needs_login = true,
     .usage = "[--branch CODE] [--day DATE] [--desk CODE] [--limit N]",
     .summary = "the latest tallies of a branch (today by default), newest first"},
    {.path = "inquiry remove",
     .build = build_inquiry_remove,
     .send = CMD_SEND_ONCE,
     .print_text = print_inquiry_removed,
     .needs_login = true,
     .usage = "ID",
     .summary = "take back a tally recorded by mistake (yours, the same day; managers: anyone's)"},
    {.path = "inquiry stats",
     .run = cmd_inquiry_stats,
     .needs_login = true,
     .usage = "[--from DATE] [--to DATE] [--by branch,desk,channel,kind,read_level] "
              "[--time hour|day|week|month|weekday|hour_of_week] [--branch CODE[,CODE]] "
              "[--compare] [--json|--csv]",
     .summary = "inquiries counted (the statistics measure inquiries)"},
    {.path = "codes",
     .build = build_codes,
     .send = CMD_SEND_READ,
     .print_text = print_codes,
     .needs_login = true,
     .usage = "inquiry_kind|floor_area|floor_activity [--branch CODE] [--all]",
     .summary = "a configurable list: inquiry kinds, a branch's floor areas, floor activities "
                "(--all: inactive ones too)"},
    {.path = "code save",
     .build = build_code_save,
     .send = CMD_SEND_ONCE,
     .print_text = print_code_save,
     .needs_login = true,
     .usage = "LIST CODE --name NAME [--branch CODE] [--reference yes|no] [--order N] "
              "[--inactive]",
     .summary = "create or change an entry of a list (floor areas: branch managers; kinds and "
                "activities: the coordinator)"},
    {.path = "visits add",
     .build = build_visits_add,
     .send = CMD_SEND_ONCE,
     .print_text = print_visits_add,
     .needs_login = true,
     .usage = "(--reading N [--at TIME] | --crossings N [--day DATE]) [--counter NAME] "
              "[--branch CODE]",
     .summary = "a gate counter's reading (its running total) or a day's crossings"},
    {.path = "visits import",
     .build = build_visits_import,
     .send = CMD_SEND_ONCE,
     .print_text = print_import,
     .print_json = print_import_json,
     .finish = cli_outcome_finish,
     .needs_login = true,
     .usage = "FILE [--counter NAME] [--period MINUTES] [--skip-bad] [--branch CODE]",
     .summary = "import a gate counter's CSV export (date, time, count or in/out); bad lines "
                "are listed by number and nothing is imported unless --skip-bad (exit 4)"},
    {.path = "visits",
     .run = cmd_visits,
     .needs_login = true,
     .usage = "[--from DATE] [--to DATE] [--by branch,counter] [--time day|week|month] "
              "[--branch CODE[,CODE]] [--json|--csv]",
     .summary = "visits counted (the statistics measure visits: crossings / the divisor)"},
    {.path = "computers set",
     .build = build_computers_set,
     .send = CMD_SEND_ONCE,
     .print_text = print_computers_set,
     .needs_login = true,
     .usage = "N [--day DATE] [--minutes M] [--branch CODE]",
     .summary = "a day's public computer sessions at the branch (replaces that day's figure)"},
    {.path = "computers import",
     .build = build_computers_import,
     .send = CMD_SEND_ONCE,
     .print_text = print_import,
     .print_json = print_import_json,
     .finish = cli_outcome_finish,
     .needs_login = true,
     .usage = "FILE [--skip-bad] [--branch CODE]",
     .summary = "import daily computer sessions from a CSV file (date, sessions, minutes)"},
    {.path = "sweep add",
     .build = build_sweep_add,
     .send = CMD_SEND_KEYED,
     .print_text = print_sweep_add,
     .needs_login = true,
     .usage = "AREA=N[/ACTIVITY]... [--at TIME] [--branch CODE]",
     .summary = "a floor sweep: a headcount for every area of the branch, zeros included"},
    {.path = "sweep list",
     .build = build_sweep_list,
     .send = CMD_SEND_READ,
     .print_text = print_sweep_list,
     .needs_login = true,
     .usage = "[--branch CODE] [--from DATE] [--to DATE]",
     .summary = "the floor sweeps of a branch (today by default)"},
    {.path = "service-levels",
     .build = build_levels,
     .send = CMD_SEND_READ,
     .print_text = print_levels,
     .needs_login = true,
     .usage = "[--branch CODE] [--week DATE]",
     .summary = "per half hour of a week: staff on desk, circulation, inquiries, headcount, "
                "activity per staff member, the heavy hours (all branches: the coordinator)"},
    {.path = NULL},
};
