/*
 * cmd_report: `carrel report monthly`, the director's report as one HTML
 * file. It asks the server several StatsQuery questions (headline figures
 * against a year earlier, circulation by branch, by month over the year or
 * the twelve months ending with the month, and desk activity by hour of the
 * week and branch), draws them with report_html, and writes the file
 * atomically (a temporary file beside it, renamed when whole).
 *
 * The figures are exactly what `carrel stats MEASURE ... --json` answers for
 * the same range: nothing is computed here but sums of desk rows.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "report_html.h"

/* Headline measures, in the order shown. */
static const char *const report_headline_measures[] = {
    "circulation", "checkouts", "renewals", "checkins", "holds_filled", "registrations",
};
#define REPORT_HEADLINES (sizeof(report_headline_measures) / sizeof(report_headline_measures[0]))

/* The heat map's measures: summed per cell, desk rows only (see report_heat_via). */
static const char *const report_heat_measures[] = {"circulation", "checkins"};
#define REPORT_HEAT_MEASURES (sizeof(report_heat_measures) / sizeof(report_heat_measures[0]))
static const char report_heat_via[] = "desk";

/* Answers kept until the report is drawn (their strings are in it): the stats and the branches. */
#define REPORT_ANSWERS (REPORT_HEADLINES + 2 + REPORT_HEAT_MEASURES + 2)

typedef struct report_args {
    char period[24]; /* "2026-11" or "2026" */
    char from[24], to[24];
    char months_from[24], months_to[24];
    const char *html;
    char *branch_arg; /* --branch, split in place at its commas */
    char *branches[64];
    size_t n_branches;
} report_args_t;

typedef struct report_run {
    cli_t *cli;
    const report_args_t *args;
    Carrel__Response *answers[REPORT_ANSWERS];
    size_t n_answers;
    const char *served_by;
    const Carrel__BranchListReply *branch_list; /* for the branches' names */
    const char *today;                          /* the library's today */
} report_run_t;

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* True when text has the form of `shape`, where '9' stands for any digit ("9999-99"). */
static bool report_shaped(const char *text, const char *shape)
{
    for (; *shape; text++, shape++)
        if (*shape == '9' ? (*text < '0' || *text > '9') : *text != *shape)
            return false;
    return *text == '\0';
}

/* --month YYYY-MM: that month, and the twelve months ending with it. */
static bool report_month(report_args_t *a, const char *text)
{
    int y, m;
    if (!report_shaped(text, "9999-99") || sscanf(text, "%4d-%2d", &y, &m) != 2 || y < 1900 ||
        m < 1 || m > 12)
        return false;
    snprintf(a->period, sizeof(a->period), "%04d-%02d", y, m);
    snprintf(a->from, sizeof(a->from), "%04d-%02d-01", y, m);
    snprintf(a->to, sizeof(a->to), "%04d-%02d-%02d", y, m, days_in_month(y, m));
    int fy = m == 12 ? y : y - 1, fm = m == 12 ? 1 : m + 1;
    snprintf(a->months_from, sizeof(a->months_from), "%04d-%02d-01", fy, fm);
    snprintf(a->months_to, sizeof(a->months_to), "%s", a->to);
    return true;
}

/* --year YYYY: the calendar year, month by month. */
static bool report_year(report_args_t *a, const char *text)
{
    int y;
    if (!report_shaped(text, "9999") || sscanf(text, "%4d", &y) != 1 || y < 1900)
        return false;
    snprintf(a->period, sizeof(a->period), "%04d", y);
    snprintf(a->from, sizeof(a->from), "%04d-01-01", y);
    snprintf(a->to, sizeof(a->to), "%04d-12-31", y);
    snprintf(a->months_from, sizeof(a->months_from), "%s", a->from);
    snprintf(a->months_to, sizeof(a->months_to), "%s", a->to);
    return true;
}

static const char report_usage[] =
    "usage: report monthly --month YYYY-MM | --year YYYY --html FILE [--branch CODE[,CODE]]";

static int report_parse(cli_t *cli, int argc, char **argv, report_args_t *a)
{
    static const struct option opts[] = {{"month", required_argument, NULL, 'm'},
                                         {"year", required_argument, NULL, 'y'},
                                         {"html", required_argument, NULL, 'o'},
                                         {"branch", required_argument, NULL, 'b'},
                                         {NULL, 0, NULL, 0}};
    const char *month = NULL, *year = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'm')
            month = optarg;
        else if (ch == 'y')
            year = optarg;
        else if (ch == 'o')
            a->html = optarg;
        else if (ch == 'b')
            a->branch_arg = optarg;
        else
            return cli_fail(cli, EXIT_USAGE, "%s", report_usage);
    }
    if (optind < argc || (month == NULL) == (year == NULL) || a->html == NULL || !a->html[0])
        return cli_fail(cli, EXIT_USAGE, "%s", report_usage);
    if (month && !report_month(a, month))
        return cli_fail(cli, EXIT_USAGE, "--month: a month is YYYY-MM, e.g. 2026-11");
    if (year && !report_year(a, year))
        return cli_fail(cli, EXIT_USAGE, "--year: a year is YYYY, e.g. 2026");
    char *save = NULL;
    for (char *code = a->branch_arg ? strtok_r(a->branch_arg, ",", &save) : NULL; code;
         code = strtok_r(NULL, ",", &save)) {
        if (a->n_branches == sizeof(a->branches) / sizeof(a->branches[0]))
            return cli_fail(cli, EXIT_USAGE, "--branch: at most %zu branches",
                            sizeof(a->branches) / sizeof(a->branches[0]));
        a->branches[a->n_branches++] = code;
    }
    return EXIT_OK;
}

/*
 * Send req and keep the answer in run (freed by report_run_free). *out is the answer, or
 * NULL when it was not of the body case want (or run holds no more answers).
 */
static int report_send(report_run_t *run, Carrel__Request *req, Carrel__Response__BodyCase want,
                       Carrel__Response **out)
{
    *out = NULL;
    Carrel__Response *r = NULL;
    int code = cli_call(run->cli, req, &r);
    if (code != EXIT_OK)
        return code;
    if (r->body_case != want || run->n_answers == REPORT_ANSWERS) {
        carrel__response__free_unpacked(r, NULL);
        return EXIT_OK;
    }
    run->answers[run->n_answers++] = r;
    *out = r;
    return EXIT_OK;
}

/*
 * Ask one StatsQuery; on success the answer is kept in run (freed by
 * report_run_free) and its reply returned in *out.
 */
static int report_ask(report_run_t *run, const char *measure, const char *from, const char *to,
                      const char *time, const char *const *by, size_t n_by, bool compare,
                      const Carrel__StatsReply **out)
{
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__StatsQuery q = CARREL__STATS_QUERY__INIT;
    q.measure = (char *)measure;
    q.from = (char *)from;
    q.to = (char *)to;
    q.time = (char *)time;
    q.by = (char **)by;
    q.n_by = n_by;
    q.branch = (char **)run->args->branches;
    q.n_branch = run->args->n_branches;
    q.has_compare = compare;
    q.compare = compare;
    req.body_case = CARREL__REQUEST__BODY_STATS_QUERY;
    req.stats_query = &q;
    Carrel__Response *r = NULL;
    int code = report_send(run, &req, CARREL__RESPONSE__BODY_STATS, &r);
    if (code != EXIT_OK)
        return code;
    if (r == NULL)
        return cli_fail(run->cli, EXIT_SERVER, "the server's answer to %s was not statistics",
                        measure);
    if (r->stats->served_by)
        run->served_by = r->stats->served_by;
    *out = r->stats;
    return EXIT_OK;
}

/* The branches' names, from BranchList (kept in run like the stats answers). */
static int report_branch_names(report_run_t *run)
{
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__BranchList l = CARREL__BRANCH_LIST__INIT;
    req.body_case = CARREL__REQUEST__BODY_BRANCH_LIST;
    req.branch_list = &l;
    Carrel__Response *r = NULL;
    int code = report_send(run, &req, CARREL__RESPONSE__BODY_BRANCHES, &r);
    if (code != EXIT_OK)
        return code;
    if (r == NULL)
        return cli_fail(run->cli, EXIT_SERVER, "the server's answer was not the branch list");
    run->branch_list = r->branches;
    return EXIT_OK;
}

/* The name of the branch with this code, or NULL. */
static const char *report_branch_name(const report_run_t *run, const char *code)
{
    for (size_t i = 0; run->branch_list && i < run->branch_list->n_branches; i++) {
        const Carrel__Branch *b = run->branch_list->branches[i];
        if (b->code && strcmp(b->code, code) == 0)
            return b->name;
    }
    return NULL;
}

static void report_run_free(report_run_t *run)
{
    for (size_t i = 0; i < run->n_answers; i++)
        carrel__response__free_unpacked(run->answers[i], NULL);
    run->n_answers = 0;
}

/*
 * The library's today, in its own time zone (not this machine's): the range
 * the server states for a question without dates.
 */
static int report_today(report_run_t *run)
{
    const Carrel__StatsReply *x;
    int code = report_ask(run, "checkouts", NULL, NULL, "none", NULL, 0, false, &x);
    if (code == EXIT_OK)
        run->today = x->from;
    return code;
}

/* Each headline measure over the period, against a year earlier. */
static int report_headlines(report_run_t *run, report_data_t *d, report_headline_t *out)
{
    const report_args_t *a = run->args;
    for (size_t i = 0; i < REPORT_HEADLINES; i++) {
        const Carrel__StatsReply *x;
        int code =
            report_ask(run, report_headline_measures[i], a->from, a->to, "none", NULL, 0, true, &x);
        if (code != EXIT_OK)
            return code;
        out[i] = (report_headline_t){.measure = report_headline_measures[i], .title = x->title};
        /* The server says which days "a year earlier" are (leap days, weeks). */
        if (i == 0 && x->previous_from && x->previous_to) {
            d->previous_from = x->previous_from;
            d->previous_to = x->previous_to;
        }
        /* Time none: one row, or none when nothing happened (0). */
        if (x->n_rows > 0) {
            out[i].value = x->rows[0]->value;
            out[i].has_previous = x->rows[0]->has_previous;
            out[i].previous = x->rows[0]->previous;
        }
    }
    return EXIT_OK;
}

/* Circulation by branch over the period (branches in the server's order: by code). */
static int report_branches(report_run_t *run, report_data_t *d)
{
    static const char *const by[] = {"branch"};
    const Carrel__StatsReply *x;
    int code =
        report_ask(run, "circulation", run->args->from, run->args->to, "none", by, 1, true, &x);
    if (code != EXIT_OK)
        return code;
    d->branch_measure = "circulation";
    d->branch_title = x->title;
    d->branches = calloc(x->n_rows ? x->n_rows : 1, sizeof(*d->branches));
    if (d->branches == NULL)
        return cli_fail(run->cli, EXIT_LOCAL, "out of memory");
    for (size_t i = 0; i < x->n_rows; i++) {
        const Carrel__StatsRow *row = x->rows[i];
        if (row->n_key < 1)
            continue;
        d->branches[d->n_branches++] =
            (report_branch_value_t){.branch = row->key[0],
                                    .name = report_branch_name(run, row->key[0]),
                                    .value = row->value,
                                    .has_previous = row->has_previous,
                                    .previous = row->previous};
    }
    return EXIT_OK;
}

/* Circulation month by month: every month of the range, 0 where the server has no row. */
static int report_months(report_run_t *run, report_data_t *d, char (*labels)[8])
{
    const report_args_t *a = run->args;
    const Carrel__StatsReply *x;
    int code =
        report_ask(run, "circulation", a->months_from, a->months_to, "month", NULL, 0, true, &x);
    if (code != EXIT_OK)
        return code;
    d->month_measure = "circulation";
    d->month_title = x->title;
    d->months_from = a->months_from;
    d->months_to = a->months_to;
    int y, m;
    if (sscanf(a->months_from, "%4d-%2d", &y, &m) != 2)
        return cli_fail(run->cli, EXIT_LOCAL, "bad month %s", a->months_from);
    for (size_t i = 0; i < 12; i++) {
        snprintf(labels[i], 8, "%04d-%02d", y, m);
        d->months[i] = (report_month_value_t){.period = labels[i]};
        for (size_t k = 0; k < x->n_rows; k++) {
            const Carrel__StatsRow *row = x->rows[k];
            if (row->period && strcmp(row->period, labels[i]) == 0) {
                d->months[i].value = row->value;
                d->months[i].has_previous = row->has_previous;
                d->months[i].previous = row->previous;
            }
        }
        if (++m > 12) {
            m = 1;
            y++;
        }
    }
    d->n_months = 12;
    return EXIT_OK;
}

/* The heat map of `code`, added (zeroed) when new; NULL when out of memory. */
static report_heat_t *report_heat_of(const report_run_t *run, report_data_t *d, size_t *cap,
                                     const char *code)
{
    for (size_t i = 0; i < d->n_heat; i++)
        if (strcmp(d->heat[i].branch, code) == 0)
            return &d->heat[i];
    if (d->n_heat == *cap) {
        size_t n = *cap ? *cap * 2 : 8;
        report_heat_t *grown = realloc(d->heat, n * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        d->heat = grown;
        *cap = n;
    }
    report_heat_t *h = &d->heat[d->n_heat++];
    memset(h, 0, sizeof(*h));
    h->branch = code;
    h->name = report_branch_name(run, code);
    return h;
}

/*
 * Desk activity by hour of the week and branch: circulation and checkins
 * made at a desk (not self-check, not automatic renewals), summed per cell.
 * Every branch of the bar chart gets a map, even a quiet one.
 */
static int report_heat(report_run_t *run, report_data_t *d)
{
    static const char *const by[] = {"branch", "via"};
    size_t cap = 0;
    for (size_t i = 0; i < d->n_branches; i++)
        if (report_heat_of(run, d, &cap, d->branches[i].branch) == NULL)
            return cli_fail(run->cli, EXIT_LOCAL, "out of memory");
    for (size_t k = 0; k < REPORT_HEAT_MEASURES; k++) {
        const Carrel__StatsReply *x;
        int code = report_ask(run, report_heat_measures[k], run->args->from, run->args->to,
                              "hour_of_week", by, 2, false, &x);
        if (code != EXIT_OK)
            return code;
        for (size_t i = 0; i < x->n_rows; i++) {
            const Carrel__StatsRow *row = x->rows[i];
            int w, h;
            char tail;
            if (row->n_key < 2 || strcmp(row->key[1], report_heat_via) != 0 || !row->period ||
                sscanf(row->period, "%d-%d%c", &w, &h, &tail) != 2 || w < 1 ||
                w > REPORT_WEEKDAYS || h < 0 || h >= REPORT_HOURS)
                continue;
            report_heat_t *m = report_heat_of(run, d, &cap, row->key[0]);
            if (m == NULL)
                return cli_fail(run->cli, EXIT_LOCAL, "out of memory");
            m->cells[w - 1][h] += row->value;
        }
    }
    d->heat_measure = "desk_transactions";
    d->heat_title = "Desk transactions";
    d->heat_description = "Checkouts, renewals and checkins made at a staff desk "
                          "(not self-check, not automatic renewals).";
    return EXIT_OK;
}

/*
 * Write the document to a temporary file beside `path` and rename it over
 * `path`, so that a reader never sees half a report. Returns an exit code.
 */
static int report_write(cli_t *cli, const char *path, const struct buf *doc)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (tmp == NULL)
        return cli_fail(cli, EXIT_LOCAL, "out of memory");
    snprintf(tmp, n, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int code = cli_fail(cli, EXIT_LOCAL, "cannot write %s: %s", path, strerror(errno));
        free(tmp);
        return code;
    }
    /* mkstemp makes it private; a report is for reading, as any file made with the umask. */
    mode_t mask = umask(0);
    umask(mask);
    bool bad = fchmod(fd, 0666 & ~mask) != 0;
    for (size_t done = 0; !bad && done < doc->len;) {
        ssize_t w = write(fd, doc->data + done, doc->len - done);
        if (w < 0 && errno == EINTR)
            continue;
        bad = w <= 0;
        if (!bad)
            done += (size_t)w;
    }
    bad = bad || fsync(fd) != 0;
    int saved = errno;
    bad = (close(fd) != 0) || bad;
    if (!bad && rename(tmp, path) != 0) {
        saved = errno;
        bad = true;
    }
    int code = EXIT_OK;
    if (bad) {
        unlink(tmp);
        code = cli_fail(cli, EXIT_LOCAL, "cannot write %s: %s", path, strerror(saved));
    }
    free(tmp);
    return code;
}

/* Where the report went, and for which range. */
static void report_done(cli_t *cli, const report_data_t *d, const char *path)
{
    if (!cli->json) {
        printf("wrote %s: report for %s to %s\n", path, d->from, d->to);
        return;
    }
    json_t j;
    json_init(&j);
    json_object_begin(&j);
    json_key(&j, "file");
    json_string(&j, path);
    json_key(&j, "from");
    json_string(&j, d->from);
    json_key(&j, "to");
    json_string(&j, d->to);
    json_key(&j, "months_from");
    json_string(&j, d->months_from);
    json_key(&j, "months_to");
    json_string(&j, d->months_to);
    if (d->served_by) {
        json_key(&j, "served_by");
        json_string(&j, d->served_by);
    }
    json_object_end(&j);
    json_print(&j, stdout);
    json_free(&j);
}

static int report_gather(report_run_t *run, report_data_t *d, report_headline_t *headlines,
                         char (*labels)[8])
{
    int code = report_branch_names(run);
    if (code == EXIT_OK)
        code = report_today(run);
    if (code == EXIT_OK)
        code = report_headlines(run, d, headlines);
    if (code == EXIT_OK)
        code = report_branches(run, d);
    if (code == EXIT_OK)
        code = report_months(run, d, labels);
    if (code == EXIT_OK)
        code = report_heat(run, d);
    return code;
}

static int cmd_report_monthly(cli_t *cli, int argc, char **argv)
{
    report_args_t args;
    memset(&args, 0, sizeof(args));
    int code = report_parse(cli, argc, argv, &args);
    if (code != EXIT_OK)
        return code;
    char generated[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(generated, sizeof(generated), "%Y-%m-%d %H:%M", localtime_r(&now, &tm));

    report_run_t run = {.cli = cli, .args = &args};
    report_headline_t headlines[REPORT_HEADLINES];
    report_month_value_t months[12];
    char labels[12][8];
    report_data_t d = {
        .title = strlen(args.period) == 4 ? "Yearly report" : "Monthly report",
        .period = args.period,
        .from = args.from,
        .to = args.to,
        .generated = generated,
        .headlines = headlines,
        .n_headlines = REPORT_HEADLINES,
        .months = months,
    };
    code = report_gather(&run, &d, headlines, labels);
    struct buf doc = BUF_INIT;
    if (code == EXIT_OK) {
        d.served_by = run.served_by;
        d.today = run.today;
        if (report_html_render(&d, &doc) != 0)
            code = cli_fail(cli, EXIT_LOCAL, "out of memory");
    }
    if (code == EXIT_OK)
        code = report_write(cli, args.html, &doc);
    if (code == EXIT_OK)
        report_done(cli, &d, args.html);
    buf_free(&doc);
    free(d.branches);
    free(d.heat);
    report_run_free(&run);
    return code;
}

const command_t report_commands[] = {
    {.path = "report monthly",
     .run = cmd_report_monthly,
     .needs_login = true,
     .usage = "--month YYYY-MM | --year YYYY --html FILE [--branch CODE[,CODE]]",
     .summary = "the director's report (headline figures, circulation by branch and by month, "
                "desk activity by hour) as one HTML file that prints well"},
    {.path = NULL},
};
