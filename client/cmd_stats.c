/*
 * Statistics commands: one measure over a range (`stats MEASURE`), the
 * measures there are, the live view the daemon pushes, the buy-more list,
 * the annual Public Libraries Survey report and the rebuild of the rollups.
 *
 * Every output states the range it covers: the text's heading, the JSON
 * reply's from/to, the CSV's from/to columns. The figures are counts only;
 * no reply carries a patron's card or name.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "listen.h"
#include "util.h"

#define STATS_MAX_LIST 64 /* --by and --branch items */

/* What a builder leaves for its printer. */
typedef struct stats_opts {
    bool csv;
} stats_opts_t;

/* --branch CODE[,CODE] into the request's list: EXIT_OK, or EXIT_USAGE (said) when malformed. */
static int stats_branches(cli_t *cli, cmd_call_t *call, const char *text, char ***out, size_t *n)
{
    if (cmd_split(call, text, STATS_MAX_LIST, out, n))
        return EXIT_OK;
    return cli_fail(cli, EXIT_USAGE, "--branch takes branch codes separated by commas");
}

/* A figure for CSV: every digit a double holds, "" when there is none. */
static void stats_csv_figure(char *out, size_t n, bool has, double v)
{
    if (has)
        snprintf(out, n, "%.15g", v);
    else
        snprintf(out, n, "%s", "");
}

/* --csv and --json are output modes; both at once is a usage error. */
static int stats_output_mode(cli_t *cli, cmd_call_t *call, bool csv, bool json)
{
    if (csv && (json || cli->json))
        return cli_fail(cli, EXIT_USAGE, "choose --csv or --json, not both");
    if (json)
        cli->json = true;
    stats_opts_t *o = cmd_part(call, sizeof(*o));
    o->csv = csv;
    call->data = o;
    return EXIT_OK;
}

static bool stats_csv(const cmd_call_t *call)
{
    const stats_opts_t *o = call->data;
    return o && o->csv;
}

static const char *stats_or(const char *s, const char *otherwise)
{
    return s && s[0] ? s : otherwise;
}

/* ---- stats MEASURE ---- */

enum {
    OPT_FROM = 256,
    OPT_TO,
    OPT_BY,
    OPT_TIME,
    OPT_BRANCH,
    OPT_COMPARE,
    OPT_ARG,
    OPT_JSON,
    OPT_CSV,
    OPT_UPDATES,
    OPT_INTERVAL,
    OPT_YEAR,
    OPT_LIMIT,
    OPT_THRESHOLD
};

static int build_stats(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    static const struct option opts[] = {{"from", required_argument, NULL, OPT_FROM},
                                         {"to", required_argument, NULL, OPT_TO},
                                         {"by", required_argument, NULL, OPT_BY},
                                         {"time", required_argument, NULL, OPT_TIME},
                                         {"branch", required_argument, NULL, OPT_BRANCH},
                                         {"compare", no_argument, NULL, OPT_COMPARE},
                                         {"arg", required_argument, NULL, OPT_ARG},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {"csv", no_argument, NULL, OPT_CSV},
                                         {NULL, 0, NULL, 0}};
    Carrel__StatsQuery *q = CMD_BODY(call, stats_query, STATS_QUERY, carrel__stats_query__init);
    bool csv = false, json = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_FROM:
            q->from = optarg;
            break;
        case OPT_TO:
            q->to = optarg;
            break;
        case OPT_TIME:
            q->time = optarg;
            break;
        case OPT_BY:
            if (!cmd_split(call, optarg, STATS_MAX_LIST, &q->by, &q->n_by))
                return cli_fail(cli, EXIT_USAGE, "--by takes dimensions separated by commas");
            break;
        case OPT_BRANCH:
            if (stats_branches(cli, call, optarg, &q->branch, &q->n_branch) != EXIT_OK)
                return EXIT_USAGE;
            break;
        case OPT_COMPARE:
            q->has_compare = q->compare = 1;
            break;
        case OPT_ARG:
            if (cli_int32_arg(cli, "--arg", optarg, 0, 1000000, &q->arg) != EXIT_OK)
                return EXIT_USAGE;
            q->has_arg = 1;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_CSV:
            csv = true;
            break;
        default:
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc - 1)
        return cmd_usage(cli, call);
    q->measure = argv[optind];
    return stats_output_mode(cli, call, csv, json);
}

/* "2026-11-01 to 2026-11-30" or "2026-11-01" for one day. */
static void stats_range(char *out, size_t n, const char *from, const char *to)
{
    if (from && to && strcmp(from, to) != 0)
        snprintf(out, n, "%s to %s", from, to);
    else
        snprintf(out, n, "%s", stats_or(from, "?"));
}

static void print_stats_csv(const Carrel__StatsReply *x)
{
    bool compare = x->previous_from != NULL;
    size_t ncols = 4 + x->n_by + 1 + (compare ? 4 : 0);
    const char **f = util_xcalloc(ncols, sizeof(char *));
    size_t k = 0;
    f[k++] = "measure";
    f[k++] = "from";
    f[k++] = "to";
    f[k++] = "period";
    for (size_t i = 0; i < x->n_by; i++)
        f[k++] = x->by[i];
    f[k++] = "value";
    if (compare) {
        f[k++] = "previous_from";
        f[k++] = "previous_to";
        f[k++] = "previous";
        f[k++] = "change_pct";
    }
    output_csv_row(stdout, f, ncols);
    for (size_t r = 0; r < x->n_rows; r++) {
        const Carrel__StatsRow *row = x->rows[r];
        char value[40], previous[40], change[40];
        stats_csv_figure(value, sizeof(value), row->has_value, row->value);
        stats_csv_figure(previous, sizeof(previous), row->has_previous, row->previous);
        snprintf(change, sizeof(change), "%s", "");
        if (row->has_change_pct)
            snprintf(change, sizeof(change), "%.1f", row->change_pct);
        k = 0;
        f[k++] = x->measure;
        f[k++] = x->from;
        f[k++] = x->to;
        f[k++] = row->period;
        for (size_t i = 0; i < x->n_by; i++)
            f[k++] = i < row->n_key ? row->key[i] : "";
        f[k++] = value;
        if (compare) {
            f[k++] = x->previous_from;
            f[k++] = x->previous_to;
            f[k++] = previous;
            f[k++] = change;
        }
        output_csv_row(stdout, f, ncols);
    }
    free(f);
}

static void print_stats(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__StatsReply *x = r->stats;
    if (stats_csv(call)) {
        print_stats_csv(x);
        return;
    }
    char range[64], previous[64];
    if (x->kind && strcmp(x->kind, "now") == 0) /* a state as of a day, not a count over days */
        snprintf(range, sizeof(range), "as of %s", stats_or(x->to, "?"));
    else
        stats_range(range, sizeof(range), x->from, x->to);
    printf("%s (%s, %s): %s", stats_or(x->title, x->measure), x->measure,
           stats_or(x->unit, "count"), range);
    bool timed = x->time && strcmp(x->time, "none") != 0;
    if (timed)
        printf(", per %s", x->time);
    for (size_t i = 0; i < x->n_by; i++)
        printf("%s%s", i == 0 ? ", by " : " and ", x->by[i]);
    printf("\n");
    bool compare = x->previous_from != NULL;
    if (compare) {
        stats_range(previous, sizeof(previous), x->previous_from, x->previous_to);
        printf("compared with %s\n", previous);
    }
    if (x->n_rows == 0) {
        printf("No figures for this range.\n");
        return;
    }
    int ncols = (timed ? 1 : 0) + (int)x->n_by + 1 + (compare ? 2 : 0);
    char heads[8][40]; /* "item_type" -> "Item type" */
    for (size_t i = 0; i < x->n_by && i < 8; i++) {
        snprintf(heads[i], sizeof(heads[i]), "%s", x->by[i]);
        for (char *c = heads[i]; *c; c++)
            if (*c == '_')
                *c = ' ';
        if (heads[i][0] >= 'a' && heads[i][0] <= 'z')
            heads[i][0] = (char)(heads[i][0] - 'a' + 'A');
    }
    const char **h = util_xcalloc((size_t)ncols, sizeof(char *));
    const char **cells = util_xcalloc((size_t)ncols, sizeof(char *));
    int k = 0;
    if (timed)
        h[k++] = "Period";
    for (size_t i = 0; i < x->n_by; i++)
        h[k++] = i < 8 ? heads[i] : x->by[i];
    h[k++] = "Value";
    if (compare) {
        h[k++] = "Year before";
        h[k++] = "Change";
    }
    table_t *t = table_new(ncols, h);
    for (size_t r = 0; r < x->n_rows; r++) {
        const Carrel__StatsRow *row = x->rows[r];
        char value[40], prev[40], change[40];
        output_figure(value, sizeof(value), row->has_value, row->value);
        output_figure(prev, sizeof(prev), row->has_previous, row->previous);
        output_change_pct(change, sizeof(change), row->has_change_pct, row->change_pct);
        k = 0;
        if (timed)
            cells[k++] = row->period;
        for (size_t i = 0; i < x->n_by; i++)
            cells[k++] = i < row->n_key ? row->key[i] : "";
        cells[k++] = value;
        if (compare) {
            cells[k++] = prev;
            cells[k++] = change;
        }
        table_add(t, cells);
    }
    table_print(t, stdout);
    table_free(t);
    free(h);
    free(cells);
    if (x->served_by && strcmp(x->served_by, "standby") == 0)
        printf("(answered by the standby)\n");
}

/* ---- stats measures ---- */

static int build_stats_measures(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    static const struct option opts[] = {{"json", no_argument, NULL, OPT_JSON},
                                         {"csv", no_argument, NULL, OPT_CSV},
                                         {NULL, 0, NULL, 0}};
    CMD_BODY(call, stats_measures, STATS_MEASURES, carrel__stats_measure_list__init);
    bool csv = false, json = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_JSON)
            json = true;
        else if (ch == OPT_CSV)
            csv = true;
        else
            return cmd_usage(cli, call);
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    return stats_output_mode(cli, call, csv, json);
}

static void stats_join(char *out, size_t n, char **items, size_t k)
{
    out[0] = '\0';
    for (size_t i = 0; i < k; i++) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s%s", i ? "," : "", items[i]);
    }
}

/* The list as CSV: one row per measure, the lists joined with commas inside their field. */
static void print_stats_measures_csv(const Carrel__StatsMeasureListReply *x)
{
    static const char *const h[] = {"name", "title", "unit",       "kind",
                                    "dims", "times", "description"};
    output_csv_row(stdout, h, 7);
    for (size_t i = 0; i < x->n_measures; i++) {
        const Carrel__StatsMeasure *m = x->measures[i];
        char dims[256], times[256];
        stats_join(dims, sizeof(dims), m->dims, m->n_dims);
        stats_join(times, sizeof(times), m->times, m->n_times);
        const char *row[] = {m->name,
                             stats_or(m->title, ""),
                             stats_or(m->unit, ""),
                             stats_or(m->kind, ""),
                             dims,
                             times,
                             stats_or(m->description, "")};
        output_csv_row(stdout, row, 7);
    }
}

static void print_stats_measures(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__StatsMeasureListReply *x = r->stats_measures;
    if (stats_csv(call)) {
        print_stats_measures_csv(x);
        return;
    }
    static const char *const headers[] = {"Measure", "Unit", "Kind", "Split by", "Times", "Title"};
    table_t *t = table_new(6, headers);
    for (size_t i = 0; i < x->n_measures; i++) {
        const Carrel__StatsMeasure *m = x->measures[i];
        char dims[256], times[256];
        stats_join(dims, sizeof(dims), m->dims, m->n_dims);
        stats_join(times, sizeof(times), m->times, m->n_times);
        const char *row[] = {m->name, m->unit, m->kind, dims, times, m->title};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

/* ---- stats live ---- */

/*
 * `carrel stats live` subscribes and shows every StatsLive the daemon
 * pushes (the first is the answer to the subscription), on the listening
 * loop `carrel events` uses: signals end it, a keepalive Ping keeps a quiet
 * connection open. On a terminal each update redraws the screen; otherwise
 * updates follow each other (with --json, one document per line).
 */
typedef struct stats_live_view {
    cli_t *cli;
    listen_t listen;
    int shown;
    int updates; /* stop after this many; 0: until a signal */
    bool redraw; /* a terminal, text output */
} stats_live_view_t;

static void stats_live_text(const Carrel__StatsLive *x, bool redraw)
{
    if (redraw)
        fputs("\033[H\033[2J", stdout); /* home, clear: our own sequence, never the server's */
    char when[16] = "";
    time_t now = (time_t)(x->time_ms / 1000);
    struct tm tm;
    if (localtime_r(&now, &tm))
        strftime(when, sizeof(when), "%H:%M:%S", &tm);
    if (x->unavailable) { /* an update without figures: says why, in place of the table */
        char *why = out_safe_line(x->unavailable);
        printf("Live service levels (updated %s)\nunavailable: %s\n", when, why);
        free(why);
        if (!redraw)
            putchar('\n');
        return;
    }
    char *hour = out_safe_line(stats_or(x->hour, "?"));
    printf("Live service levels, the hour from %s (updated %s%s)\n", hour, when,
           x->served_by && strcmp(x->served_by, "standby") == 0 ? ", by the standby" : "");
    free(hour);
    static const char *const headers[] = {"Branch",   "Circ this hour", "Usual (4 wks)",
                                          "On shelf", "Waiting",        "Transits late",
                                          "Desks",    "Notices failing"};
    table_t *t = table_new(8, headers);
    for (size_t i = 0; i < x->n_branches; i++) {
        const Carrel__StatsLiveBranch *b = x->branches[i];
        char circ[24], avg[24], shelf[24], waiting[24], transits[24], desks[24], notices[24];
        snprintf(circ, sizeof(circ), "%lld", (long long)b->circ_this_hour);
        output_figure(avg, sizeof(avg), b->has_circ_hour_average, b->circ_hour_average);
        snprintf(shelf, sizeof(shelf), "%lld", (long long)b->holds_on_shelf);
        snprintf(waiting, sizeof(waiting), "%lld", (long long)b->holds_waiting);
        snprintf(transits, sizeof(transits), "%lld", (long long)b->transits_overdue);
        snprintf(desks, sizeof(desks), "%lld", (long long)b->workstations_connected);
        snprintf(notices, sizeof(notices), "%lld", (long long)b->notices_failing);
        const char *row[] = {b->branch_code, circ, avg, shelf, waiting, transits, desks, notices};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
    if (!redraw)
        putchar('\n');
}

static void stats_live_show(stats_live_view_t *v, const Carrel__StatsLive *x)
{
    if (v->cli->json)
        cli_print_json(&x->base);
    else
        stats_live_text(x, v->redraw);
    fflush(stdout);
    v->shown++;
    if (v->updates > 0 && v->shown >= v->updates)
        v->listen.stop = true;
}

static void stats_live_on_push(const Carrel__Response *r, void *arg)
{
    stats_live_view_t *v = arg;
    if (r->body_case == CARREL__RESPONSE__BODY_STATS_LIVE && !v->listen.stop)
        stats_live_show(v, r->stats_live);
}

static int stats_live_usage(cli_t *cli)
{
    return cli_fail(
        cli, EXIT_USAGE,
        "usage: stats live [--json] [--updates N] [--interval S] [--branch CODE[,...]]");
}

static int cmd_stats_live(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, OPT_JSON},
                                         {"updates", required_argument, NULL, OPT_UPDATES},
                                         {"interval", required_argument, NULL, OPT_INTERVAL},
                                         {"branch", required_argument, NULL, OPT_BRANCH},
                                         {NULL, 0, NULL, 0}};
    stats_live_view_t v = {.cli = cli};
    Carrel__StatsLiveSubscribe s = CARREL__STATS_LIVE_SUBSCRIBE__INIT;
    cmd_call_t parts; /* the --branch list's memory */
    memset(&parts, 0, sizeof(parts));
    int code = EXIT_OK, ch;
    while (code == EXIT_OK && (ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int64_t n = 0;
        if (ch == OPT_JSON) {
            cli->json = true;
        } else if (ch == OPT_UPDATES) {
            code = cli_int_arg(cli, "--updates", optarg, 1, 1000000, &n);
            v.updates = (int)n;
        } else if (ch == OPT_INTERVAL) {
            code = cli_int32_arg(cli, "--interval", optarg, 1, 5, &s.interval_s);
            s.has_interval_s = 1;
        } else if (ch == OPT_BRANCH) {
            if (!cmd_split(&parts, optarg, STATS_MAX_LIST, &s.branch, &s.n_branch))
                code = stats_live_usage(cli);
        } else {
            code = stats_live_usage(cli);
        }
    }
    if (code == EXIT_OK && optind != argc)
        code = stats_live_usage(cli);
    if (code == EXIT_OK) {
        v.redraw = !cli->json && isatty(STDOUT_FILENO);
        static const int signals[] = {SIGINT, SIGTERM};
        listen_init(&v.listen, cli, 0);
        listen_start(&v.listen, signals, 2);
        cli->conn.on_push = stats_live_on_push;
        cli->conn.push_arg = &v;
        Carrel__Request req = CARREL__REQUEST__INIT;
        req.body_case = CARREL__REQUEST__BODY_STATS_LIVE;
        req.stats_live = &s;
        Carrel__Response *r = NULL;
        code = cli_call(cli, &req, &r);
        if (code == EXIT_OK) {
            stats_live_show(&v, r->stats_live);
            carrel__response__free_unpacked(r, NULL);
            v.listen.ping_sent_ms = listen_now_ms(); /* the subscription counts as traffic */
            while (code == EXIT_OK && !v.listen.stop && !cli->conn.closed) {
                code = listen_keepalive(&v.listen, cli);
                if (code == EXIT_OK)
                    client_run_once(&cli->conn);
            }
            if (code == EXIT_OK && !v.listen.stop)
                code = cli_fail(cli, EXIT_NETWORK, "%s", cli->conn.error);
        }
        listen_stop_wait(&v.listen);
        cli->conn.on_push = NULL;
    }
    for (size_t i = 0; i < parts.nparts; i++)
        free(parts.parts[i]);
    return code;
}

/* ---- stats buy-more ---- */

static int build_stats_buy_more(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"limit", required_argument, NULL, OPT_LIMIT},
                                         {"threshold", required_argument, NULL, OPT_THRESHOLD},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {"csv", no_argument, NULL, OPT_CSV},
                                         {NULL, 0, NULL, 0}};
    Carrel__StatsBuyMore *b =
        CMD_BODY(call, stats_buy_more, STATS_BUY_MORE, carrel__stats_buy_more__init);
    bool csv = false, json = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_BRANCH) {
            if (stats_branches(cli, call, optarg, &b->branch, &b->n_branch) != EXIT_OK)
                return EXIT_USAGE;
        } else if (ch == OPT_LIMIT) {
            if (cli_int32_arg(cli, "--limit", optarg, 1, 1000, &b->limit) != EXIT_OK)
                return EXIT_USAGE;
            b->has_limit = 1;
        } else if (ch == OPT_THRESHOLD) {
            char *end = NULL;
            b->threshold = strtod(optarg, &end);
            if (end == optarg || *end || !(b->threshold > 0) || b->threshold > 1e6)
                return cli_fail(cli, EXIT_USAGE, "--threshold is holds per copy, above 0 (e.g. 4)");
            b->has_threshold = 1;
        } else if (ch == OPT_JSON) {
            json = true;
        } else if (ch == OPT_CSV) {
            csv = true;
        } else {
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    return stats_output_mode(cli, call, csv, json);
}

static void print_stats_buy_more(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__StatsBuyMoreReply *x = r->stats_buy_more;
    char threshold[40];
    output_figure(threshold, sizeof(threshold), x->has_threshold, x->threshold);
    if (stats_csv(call)) {
        static const char *const h[] = {"threshold", "bib_id", "title", "author",
                                        "holds",     "copies", "ratio"};
        output_csv_row(stdout, h, 7);
    } else {
        printf("Titles with at least %s holds per copy, as of now:\n", threshold);
        if (x->n_titles == 0) {
            printf("None.\n");
            return;
        }
    }
    static const char *const headers[] = {"Bib", "Title", "Author", "Holds", "Copies", "Per copy"};
    table_t *t = stats_csv(call) ? NULL : table_new(6, headers);
    for (size_t i = 0; i < x->n_titles; i++) {
        const Carrel__StatsTitle *e = x->titles[i];
        char bib[24], holds[24], copies[24], ratio[40], title[256];
        snprintf(bib, sizeof(bib), "%lld", (long long)e->bib_id);
        snprintf(holds, sizeof(holds), "%lld", (long long)e->holds);
        snprintf(copies, sizeof(copies), "%lld", (long long)e->copies);
        output_figure(ratio, sizeof(ratio), e->has_ratio, e->ratio);
        if (t == NULL) {
            const char *row[] = {threshold, bib, e->title, e->author, holds, copies, ratio};
            output_csv_row(stdout, row, 7);
            continue;
        }
        output_cut(title, sizeof(title), e->title, OUTPUT_TITLE_COLUMNS);
        const char *row[] = {bib, title, e->author, holds, copies, ratio};
        table_add(t, row);
    }
    if (t) {
        table_print(t, stdout);
        table_free(t);
    }
}

/* ---- report pls ---- */

static int build_report_pls(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    static const struct option opts[] = {{"year", required_argument, NULL, OPT_YEAR},
                                         {"branch", required_argument, NULL, OPT_BRANCH},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {"csv", no_argument, NULL, OPT_CSV},
                                         {NULL, 0, NULL, 0}};
    Carrel__PlsReport *p = CMD_BODY(call, pls_report, PLS_REPORT, carrel__pls_report__init);
    bool csv = false, json = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_YEAR) {
            if (cli_int32_arg(cli, "--year", optarg, 1900, 9998, &p->year) != EXIT_OK)
                return EXIT_USAGE;
            p->has_year = 1;
        } else if (ch == OPT_BRANCH) {
            if (stats_branches(cli, call, optarg, &p->branch, &p->n_branch) != EXIT_OK)
                return EXIT_USAGE;
        } else if (ch == OPT_JSON) {
            json = true;
        } else if (ch == OPT_CSV) {
            csv = true;
        } else {
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc || !p->has_year)
        return cmd_usage(cli, call);
    return stats_output_mode(cli, call, csv, json);
}

static void print_report_pls(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__PlsReportReply *x = r->pls_report;
    char year[16];
    snprintf(year, sizeof(year), "%d", x->year);
    if (stats_csv(call)) {
        static const char *const h[] = {"year",   "from",  "to",    "code",
                                        "branch", "value", "basis", "how"};
        output_csv_row(stdout, h, 8);
    } else {
        printf("Public Libraries Survey %s: %s to %s\n", year, stats_or(x->from, "?"),
               stats_or(x->to, "?"));
    }
    static const char *const headers[] = {"Line", "Outlet", "Value", "Basis", "How"};
    table_t *t = stats_csv(call) ? NULL : table_new(5, headers);
    for (size_t i = 0; i < x->n_lines; i++) {
        const Carrel__PlsLine *l = x->lines[i];
        char value[40];
        if (t == NULL) {
            stats_csv_figure(value, sizeof(value), l->has_value, l->value);
            const char *row[] = {year,           x->from, x->to,    l->code,
                                 l->branch_code, value,   l->basis, l->how};
            output_csv_row(stdout, row, 8);
            continue;
        }
        output_figure(value, sizeof(value), l->has_value, l->value);
        const char *row[] = {l->code, stats_or(l->branch_code, "(system)"),
                             l->has_value ? value : "not recorded", l->basis, l->how};
        table_add(t, row);
    }
    if (t) {
        table_print(t, stdout);
        table_free(t);
    }
}

/* ---- admin stats rebuild ---- */

static int build_stats_rebuild(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    (void)argv;
    if (argc > 1)
        return cmd_usage(cli, call);
    CMD_BODY(call, stats_rebuild, STATS_REBUILD, carrel__stats_rebuild__init);
    return EXIT_OK;
}

static void print_stats_rebuild(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__StatsRebuildReply *x = r->stats_rebuild;
    printf("statistics rebuilt from %lld event(s) into %lld rollup row(s) in %lld ms\n",
           (long long)x->events, (long long)x->rows, (long long)x->ms);
}

const command_t stats_commands[] = {
    {.path = "stats",
     .build = build_stats,
     .print_text = print_stats,
     .needs_login = true,
     .usage = "MEASURE [--from DATE] [--to DATE] [--by DIM[,DIM]] [--time GRAIN] "
              "[--branch CODE[,CODE]] [--compare] [--arg N] [--json|--csv]",
     .summary = "one measure (see stats measures) over a range of days (default today), split by "
                "dimensions and time (day, week, month, year, hour, weekday, hour_of_week); "
                "--compare adds the same range a year earlier"},
    {.path = "stats measures",
     .build = build_stats_measures,
     .print_text = print_stats_measures,
     .needs_login = true,
     .usage = "[--json|--csv]",
     .summary = "the measures there are: what each can be split by, its time groupings, "
                "whether it counts over a range or is a state as of a day"},
    {.path = "stats live",
     .run = cmd_stats_live,
     .needs_login = true,
     .usage = "[--json] [--updates N] [--interval S] [--branch CODE[,CODE]]",
     .summary = "live service levels per branch, pushed by the server every S seconds (1-5, "
                "default 5) until Ctrl-C or N updates (the first is the answer to the "
                "subscription)"},
    {.path = "stats buy-more",
     .build = build_stats_buy_more,
     .print_text = print_stats_buy_more,
     .needs_login = true,
     .usage = "[--branch CODE[,CODE]] [--limit N] [--threshold HOLDS_PER_COPY] [--json|--csv]",
     .summary = "titles with the most holds per copy (branch managers and up)"},
    {.path = "report pls",
     .build = build_report_pls,
     .print_text = print_report_pls,
     .needs_login = true,
     .usage = "--year YEAR [--branch CODE[,CODE]] [--json|--csv]",
     .summary = "the IMLS Public Libraries Survey figures the system can know, per outlet and "
                "for the system (branch managers and up)"},
    {.path = "admin stats rebuild",
     .build = build_stats_rebuild,
     .send = CMD_SEND_ONCE,
     .print_text = print_stats_rebuild,
     .needs_login = true,
     .usage = "",
     .summary = "rebuild the statistics rollups from the raw events (administrators)"},
    {.path = NULL},
};
