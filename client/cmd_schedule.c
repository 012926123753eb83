/*
 * Staff schedule commands (proto/schedule.proto): the week as a grid of
 * desks and half hours, coverage gaps, one's own shifts, sick calls, desks
 * and their minimums, shifts (one or weekly), open shifts offered and
 * claimed, swaps and their approval, time off, and a person's scheduling
 * facts. Times are the library's local time as the server sends them
 * ("YYYY-MM-DD HH:MM"); --json prints each reply as it is.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"
#include "reason.h"
#include "util.h"

/* Needs a desk save carries at most (a desk has a few rules). */
#define SCHED_MAX_NEEDS 16
#define SCHED_MAX_BRANCHES 64 /* --branch codes of schedule gaps (the server takes 64) */

enum {
    OPT_BRANCH = 256,
    OPT_WEEK,
    OPT_FROM,
    OPT_TO,
    OPT_DATE,
    OPT_REASON,
    OPT_OPEN,
    OPT_USER,
    OPT_PENDING,
    OPT_CODE,
    OPT_NAME,
    OPT_NEED,
    OPT_INACTIVE,
    OPT_ID,
    OPT_DESK,
    OPT_START,
    OPT_END,
    OPT_MIC,
    OPT_NOTE,
    OPT_REPEAT,
    OPT_UNTIL,
    OPT_OVERRIDE,
    OPT_WITH,
    OPT_MAX_HOURS,
};

static const char *sched_or(const char *s, const char *otherwise)
{
    return s && s[0] ? s : otherwise;
}

/* ---------------------------------------------------------------- dates */

/* A "YYYY-MM-DD" day as a count of days (UTC arithmetic: days only). */
static bool sched_day_parse(const char *s, time_t *out)
{
    int y, m, d;
    char tail;
    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12};
    *out = timegm(&tm);
    struct tm back;
    gmtime_r(out, &back);
    return back.tm_mday == d && back.tm_mon == m - 1; /* 2026-02-31 is no day */
}

/* "Monday" for a "YYYY-MM-DD" day; "" when it is none. */
static const char *sched_weekday(const char *day)
{
    static const char *const names[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};
    time_t t;
    if (day == NULL || !sched_day_parse(day, &t))
        return "";
    struct tm tm;
    gmtime_r(&t, &tm);
    return names[tm.tm_wday];
}

/*
 * A time-off bound from the command line: "YYYY-MM-DD HH:MM" as it is, or a
 * day alone, which means its start (from) or the start of the next day
 * (to: the day is included). Written into out (18 bytes at least).
 */
static bool sched_bound(const char *arg, bool is_end, char *out, size_t n)
{
    time_t t;
    if (strlen(arg) != 10) {
        snprintf(out, n, "%s", arg);
        return true;
    }
    if (!sched_day_parse(arg, &t))
        return false;
    if (is_end)
        t += 24 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    return snprintf(out, n, "%04d-%02d-%02d 00:00", tm.tm_year + 1900, tm.tm_mon + 1,
                    tm.tm_mday) < (int)n;
}

/* "HH:MM" plus 30 minutes ("23:30" gives "24:00", the end of the day). */
static void sched_half_hour_after(const char *hhmm, char *out, size_t n)
{
    int h = 0, m = 0;
    if (sscanf(hhmm, "%d:%d", &h, &m) != 2) {
        snprintf(out, n, "%s", hhmm);
        return;
    }
    int minutes = h * 60 + m + 30;
    snprintf(out, n, "%02d:%02d", (minutes / 60) % 100, minutes % 60);
}

/* ---------------------------------------------------------------- shared printing */

/* "Ann Lee (ann)", or "(open)" for an open shift. */
static void sched_who(char *out, size_t n, const Carrel__Shift *s)
{
    if (s->username == NULL || s->username[0] == '\0')
        snprintf(out, n, "(open)");
    else if (s->staff_name && s->staff_name[0])
        snprintf(out, n, "%s (%s)", s->staff_name, s->username);
    else
        snprintf(out, n, "%s", s->username);
}

static const char *const shift_headers[] = {"Shift", "Who", "Branch", "Desk", "Start",
                                            "End",   "MIC", "Status", "Note"};
#define SHIFT_TABLE_COLS 9

static void sched_shift_row(table_t *t, const Carrel__Shift *s)
{
    char id[24], who[512], status[64];
    snprintf(id, sizeof(id), "%lld", (long long)s->id);
    sched_who(who, sizeof(who), s);
    if (s->has_swap_id && s->swap_id)
        snprintf(status, sizeof(status), "%s, swap %lld pending", sched_or(s->status, ""),
                 (long long)s->swap_id);
    else
        snprintf(status, sizeof(status), "%s", sched_or(s->status, ""));
    const char *row[] = {
        id,       who,    s->branch_code,      sched_or(s->desk_code, "(off desk)"),
        s->start, s->end, s->mic ? "MIC" : "", status,
        s->note};
    table_add(t, row);
}

static void sched_print_shifts(Carrel__Shift *const *shifts, size_t n)
{
    table_t *t = table_new(SHIFT_TABLE_COLS, shift_headers);
    for (size_t i = 0; i < n; i++)
        sched_shift_row(t, shifts[i]);
    table_print(t, stdout);
    table_free(t);
}

static void sched_print_gaps(Carrel__ScheduleGap *const *gaps, size_t n)
{
    if (n == 0) {
        printf("No gaps: every desk has its minimum and a manager is in charge whenever open.\n");
        return;
    }
    static const char *const headers[] = {"Branch", "Date",    "Time",   "Gap",
                                          "Desk",   "Staffed", "Details"};
    table_t *t = table_new(7, headers);
    for (size_t i = 0; i < n; i++) {
        const Carrel__ScheduleGap *g = gaps[i];
        char when[32], staffed[32];
        snprintf(when, sizeof(when), "%s-%s", sched_or(g->start, ""), sched_or(g->end, ""));
        if (g->has_needed)
            snprintf(staffed, sizeof(staffed), "%d of %d", g->scheduled, g->needed);
        else
            staffed[0] = '\0';
        const char *kind = g->kind;
        if (kind && strcmp(kind, "under_minimum") == 0)
            kind = "under minimum";
        else if (kind && strcmp(kind, "no_mic") == 0)
            kind = "no manager in charge";
        else if (kind && strcmp(kind, "program_unstaffed") == 0)
            kind = "program unstaffed";
        const char *row[] = {g->branch_code, g->date, when, kind, g->desk_code, staffed, g->text};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

/* ---------------------------------------------------------------- week */

static int build_week(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ScheduleWeek *w =
        CMD_BODY(call, schedule_week, SCHEDULE_WEEK, carrel__schedule_week__init);
    return cmd_branch_week(cli, argc, argv, call, &w->branch, &w->week);
}

/* The text of one grid cell: the names, and "(1 of 2)" when under the minimum. */
static void week_cell_text(char *out, size_t n, const Carrel__ScheduleCell *c)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < c->n_names && len < n; i++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? ", " : "", c->names[i]);
    if (c->needed > 0 && (size_t)c->needed > c->n_names && len < n)
        snprintf(out + len, n - len, "%s(%zu of %d)", len ? " " : "", c->n_names, c->needed);
}

/* The cells of one half hour of one day, a column per desk, as texts. */
static void week_row_texts(const Carrel__ScheduleWeekReply *w, size_t first, size_t last,
                           char **texts, size_t cell_size)
{
    for (size_t d = 0; d < w->n_desks; d++)
        texts[d][0] = '\0';
    for (size_t i = first; i < last; i++)
        for (size_t d = 0; d < w->n_desks; d++)
            if (strcmp(w->cells[i]->desk_code, w->desks[d]->code) == 0)
                week_cell_text(texts[d], cell_size, w->cells[i]);
}

/*
 * One block per day: a row per period in which nothing changes (consecutive
 * half hours with the same people are one row), a column per desk, the MIC
 * and off-desk work.
 */
static void print_week(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__ScheduleWeekReply *w = r->schedule_week;
    printf("Week of %s at %s\n", sched_or(w->week_start, "?"), sched_or(w->branch_code, "?"));
    if (w->n_cells == 0 || w->n_desks == 0) {
        printf("The branch is closed all week (no open half hours).\n");
        return;
    }
    enum { CELL = 2048 };
    size_t ncols = w->n_desks + 1;
    const char **headers = util_xcalloc(ncols, sizeof(char *));
    char **now = util_xcalloc(w->n_desks, sizeof(char *)),
         **next = util_xcalloc(w->n_desks, sizeof(char *));
    for (size_t d = 0; d < w->n_desks; d++) {
        now[d] = util_xcalloc(1, CELL);
        next[d] = util_xcalloc(1, CELL);
    }
    headers[0] = "Time";
    for (size_t d = 0; d < w->n_desks; d++)
        headers[d + 1] = w->desks[d]->code[0] ? w->desks[d]->code : "off desk";
    const char **row = util_xcalloc(ncols, sizeof(char *));
    size_t i = 0;
    while (i < w->n_cells) {
        const char *day = w->cells[i]->date;
        printf("\n%s %s\n", sched_weekday(day), day);
        table_t *t = table_new((int)ncols, headers);
        while (i < w->n_cells && strcmp(w->cells[i]->date, day) == 0) {
            /* One period: half hours whose cells read the same. */
            const char *from = w->cells[i]->time;
            size_t j = i;
            while (j < w->n_cells && !strcmp(w->cells[j]->date, day) &&
                   !strcmp(w->cells[j]->time, from))
                j++;
            week_row_texts(w, i, j, now, CELL);
            const char *last = from;
            size_t k = j;
            while (k < w->n_cells && !strcmp(w->cells[k]->date, day)) {
                const char *t2 = w->cells[k]->time;
                char expected[8];
                sched_half_hour_after(last, expected, sizeof(expected));
                size_t e = k;
                while (e < w->n_cells && !strcmp(w->cells[e]->date, day) &&
                       !strcmp(w->cells[e]->time, t2))
                    e++;
                week_row_texts(w, k, e, next, CELL);
                bool same = strcmp(t2, expected) == 0;
                for (size_t d = 0; same && d < w->n_desks; d++)
                    same = strcmp(now[d], next[d]) == 0;
                if (!same)
                    break;
                last = t2;
                k = e;
            }
            /* The period ends where its last half hour does: the server
             * says (the closing time may be 17:45); older servers do not. */
            char until[8], when[24];
            const char *cell_end = w->cells[k - 1]->end;
            if (cell_end && cell_end[0])
                snprintf(until, sizeof(until), "%s", cell_end);
            else
                sched_half_hour_after(last, until, sizeof(until));
            snprintf(when, sizeof(when), "%s-%s", from, until);
            row[0] = when;
            for (size_t d = 0; d < w->n_desks; d++)
                row[d + 1] = now[d];
            table_add(t, row);
            i = k;
        }
        table_print(t, stdout);
        table_free(t);
    }
    for (size_t d = 0; d < w->n_desks; d++) {
        free(now[d]);
        free(next[d]);
    }
    free(now);
    free(next);
    free(row);
    free(headers);
}

/* ---------------------------------------------------------------- gaps */

static int build_gaps(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ScheduleGaps *g =
        CMD_BODY(call, schedule_gaps, SCHEDULE_GAPS, carrel__schedule_gaps__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"week", required_argument, NULL, OPT_WEEK},
                                         {"from", required_argument, NULL, OPT_FROM},
                                         {"to", required_argument, NULL, OPT_TO},
                                         {NULL, 0, NULL, 0}};
    int ch;
    bool branches = false;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_BRANCH:
            if (branches || !cmd_split(call, optarg, SCHED_MAX_BRANCHES, &g->branch, &g->n_branch))
                return cli_fail(cli, EXIT_USAGE,
                                "--branch takes branch codes separated by commas, once");
            branches = true;
            break;
        case OPT_WEEK:
            g->week = optarg;
            break;
        case OPT_FROM:
            g->from = optarg;
            break;
        case OPT_TO:
            g->to = optarg;
            break;
        default:
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc || (g->week && (g->from || g->to)) || (g->to && !g->from))
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static void print_gaps(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__ScheduleGapsReply *g = r->schedule_gaps;
    printf("Coverage gaps from %s to %s\n", sched_or(g->from, "?"), sched_or(g->to, "?"));
    sched_print_gaps(g->gaps, g->n_gaps);
}

/* ---------------------------------------------------------------- shift lists */

static int sched_shift_list_args(cli_t *cli, int argc, char **argv, cmd_call_t *call,
                                 Carrel__ShiftList *l, bool mine)
{
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"user", required_argument, NULL, OPT_USER},
                                         {"from", required_argument, NULL, OPT_FROM},
                                         {"to", required_argument, NULL, OPT_TO},
                                         {"open", no_argument, NULL, OPT_OPEN},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_BRANCH:
            l->branch = optarg;
            break;
        case OPT_USER:
            if (mine)
                return cmd_usage(cli, call);
            l->username = optarg;
            break;
        case OPT_FROM:
            l->from = optarg;
            break;
        case OPT_TO:
            l->to = optarg;
            break;
        case OPT_OPEN:
            l->has_open_only = l->open_only = 1;
            break;
        default:
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static int build_shifts(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ShiftList *l = CMD_BODY(call, shift_list, SHIFT_LIST, carrel__shift_list__init);
    return sched_shift_list_args(cli, argc, argv, call, l, false);
}

static int build_mine(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ShiftList *l = CMD_BODY(call, shift_list, SHIFT_LIST, carrel__shift_list__init);
    l->has_mine = l->mine = 1;
    return sched_shift_list_args(cli, argc, argv, call, l, true);
}

static void print_shifts(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__ShiftListReply *l = r->shifts;
    if (l->n_shifts == 0) {
        printf("No shifts.\n");
        return;
    }
    sched_print_shifts(l->shifts, l->n_shifts);
    printf("%.2f hours of assigned shifts\n", l->hours);
}

/* ---------------------------------------------------------------- sick call */

static int build_absent(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ScheduleAbsent *a =
        CMD_BODY(call, schedule_absent, SCHEDULE_ABSENT, carrel__schedule_absent__init);
    static const struct option opts[] = {{"date", required_argument, NULL, OPT_DATE},
                                         {"reason", required_argument, NULL, OPT_REASON},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_DATE)
            a->date = optarg;
        else if (ch == OPT_REASON)
            a->reason = optarg;
        else
            return cmd_usage(cli, call);
    }
    if (optind != argc - 1)
        return cmd_usage(cli, call);
    a->username = argv[optind];
    call->subject = argv[optind];
    return EXIT_OK;
}

static void print_absent(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__ScheduleAbsentReply *a = r->schedule_absent;
    if (a->n_opened == 0) {
        printf("%s had no shifts that day; nothing opened.\n", call->subject);
    } else {
        printf("%s: %zu shift%s now open:\n", call->subject, a->n_opened,
               a->n_opened == 1 ? "" : "s");
        sched_print_shifts(a->opened, a->n_opened);
    }
    printf("\nGaps that day (pushed to the desks of the branch and to the coordinator):\n");
    sched_print_gaps(a->gaps, a->n_gaps);
}

/* ---------------------------------------------------------------- desks */

static int build_desks(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__DeskList *l = CMD_BODY(call, desk_list, DESK_LIST, carrel__desk_list__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_BRANCH)
            l->branch = optarg;
        else
            return cmd_usage(cli, call);
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static const char *const weekday_short[] = {"", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

/* "3 Sat 12:00-close", "2 open-close": a need for people. */
static void desk_need_text(char *out, size_t n, const Carrel__DeskNeed *d)
{
    size_t len = (size_t)snprintf(out, n, "%d", d->staff);
    for (size_t i = 0; i < d->n_weekdays && len < n; i++) {
        int w = d->weekdays[i];
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? "," : " ",
                                w >= 1 && w <= 7 ? weekday_short[w] : "?");
    }
    if (len < n)
        snprintf(out + len, n - len, " %s-%s", sched_or(d->from, "open"), sched_or(d->to, "close"));
}

static void sched_desk_row(table_t *t, const Carrel__ServiceDesk *d)
{
    char needs[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < d->n_needs && len < sizeof(needs); i++) {
        char one[128];
        desk_need_text(one, sizeof(one), d->needs[i]);
        len += (size_t)snprintf(needs + len, sizeof(needs) - len, "%s%s", i ? "; " : "", one);
    }
    const char *row[] = {d->branch_code, d->code, d->name, d->active ? "yes" : "no",
                         needs[0] ? needs : "(none)"};
    table_add(t, row);
}

static const char *const desk_headers[] = {"Branch", "Desk", "Name", "Active",
                                           "Staff needed (highest rule applies)"};

static void print_desks(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    if (r->desks->n_desks == 0) {
        printf("No service desks.\n");
        return;
    }
    table_t *t = table_new(5, desk_headers);
    for (size_t i = 0; i < r->desks->n_desks; i++)
        sched_desk_row(t, r->desks->desks[i]);
    table_print(t, stdout);
    table_free(t);
}

static void print_desk(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    table_t *t = table_new(5, desk_headers);
    sched_desk_row(t, r->desk);
    table_print(t, stdout);
    table_free(t);
}

/* Everything a desk save builds, in one allocation. */
typedef struct desk_build {
    Carrel__ServiceDesk desk;
    Carrel__DeskNeed needs[SCHED_MAX_NEEDS];
    Carrel__DeskNeed *need_ptrs[SCHED_MAX_NEEDS];
    int32_t weekdays[SCHED_MAX_NEEDS][7];
    char times[SCHED_MAX_NEEDS][2][8];
} desk_build_t;

/* A weekday word (mon ... sun) or digit (1 ... 7): 1 ... 7, or 0. */
static int desk_weekday(const char *s, size_t len)
{
    if (len == 1 && s[0] >= '1' && s[0] <= '7')
        return s[0] - '0';
    for (int w = 1; w <= 7; w++)
        if (len == 3 && strncasecmp(s, weekday_short[w], 3) == 0)
            return w;
    return 0;
}

/* "mon-fri", "sat,sun", "6": weekdays into the need. False when malformed. */
static bool desk_parse_days(const char *s, Carrel__DeskNeed *need, int32_t *days)
{
    need->weekdays = days;
    while (*s) {
        size_t len = strcspn(s, ",");
        const char *dash = memchr(s, '-', len);
        int a = desk_weekday(s, dash ? (size_t)(dash - s) : len);
        int b = dash ? desk_weekday(dash + 1, len - (size_t)(dash - s) - 1) : a;
        if (a == 0 || b == 0 || b < a)
            return false;
        for (int w = a; w <= b; w++) {
            if (need->n_weekdays == 7)
                return false;
            days[need->n_weekdays++] = w;
        }
        s += len;
        if (*s == ',')
            s++;
    }
    return need->n_weekdays > 0;
}

/* "12:00-", "-14:00", "09:00-12:00": the hours of the need. False when malformed. */
static bool desk_parse_times(const char *s, Carrel__DeskNeed *need, char times[2][8])
{
    const char *dash = strchr(s, '-');
    if (dash == NULL || dash - s > 5 || strlen(dash + 1) > 5)
        return false;
    memcpy(times[0], s, (size_t)(dash - s));
    times[0][dash - s] = '\0';
    snprintf(times[1], 8, "%s", dash + 1);
    need->from = times[0][0] ? times[0] : NULL;
    need->to = times[1][0] ? times[1] : NULL;
    return true;
}

/* "N [DAYS] [FROM-TO]" (e.g. "2", "3 sat 12:00-", "1 mon-fri 09:00-12:00") into need k. */
static bool desk_parse_need(desk_build_t *b, size_t k, const char *spec)
{
    Carrel__DeskNeed *need = &b->needs[k];
    carrel__desk_need__init(need);
    char copy[128];
    if (strlen(spec) >= sizeof(copy))
        return false;
    snprintf(copy, sizeof(copy), "%s", spec);
    char *save = NULL;
    char *word = strtok_r(copy, " ", &save);
    char *end = NULL;
    long staff = word ? strtol(word, &end, 10) : -1;
    if (word == NULL || *end != '\0' || staff < 0 || staff > 50)
        return false;
    need->has_staff = 1;
    need->staff = (int32_t)staff;
    while ((word = strtok_r(NULL, " ", &save)) != NULL) {
        bool ok = strchr(word, ':') ? desk_parse_times(word, need, b->times[k])
                                    : desk_parse_days(word, need, b->weekdays[k]);
        if (!ok)
            return false;
    }
    return true;
}

static int build_desk_save(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__DeskSave *s = CMD_BODY(call, desk_save, DESK_SAVE, carrel__desk_save__init);
    desk_build_t *b = cmd_part(call, sizeof(*b));
    carrel__service_desk__init(&b->desk);
    b->desk.needs = b->need_ptrs;
    b->desk.has_active = b->desk.active = 1;
    s->desk = &b->desk;
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"code", required_argument, NULL, OPT_CODE},
                                         {"name", required_argument, NULL, OPT_NAME},
                                         {"need", required_argument, NULL, OPT_NEED},
                                         {"inactive", no_argument, NULL, OPT_INACTIVE},
                                         {"id", required_argument, NULL, OPT_ID},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_BRANCH:
            b->desk.branch_code = optarg;
            break;
        case OPT_CODE:
            b->desk.code = optarg;
            break;
        case OPT_NAME:
            b->desk.name = optarg;
            break;
        case OPT_NEED:
            if (b->desk.n_needs == SCHED_MAX_NEEDS || !desk_parse_need(b, b->desk.n_needs, optarg))
                return cli_fail(cli, EXIT_USAGE,
                                "--need takes \"STAFF [DAYS] [FROM-TO]\", e.g. \"2\", "
                                "\"3 sat 12:00-\", \"1 mon-fri 09:00-12:00\" (at most %d)",
                                SCHED_MAX_NEEDS);
            b->need_ptrs[b->desk.n_needs] = &b->needs[b->desk.n_needs];
            b->desk.n_needs++;
            break;
        case OPT_INACTIVE:
            b->desk.active = 0;
            break;
        case OPT_ID:
            b->desk.has_id = 1;
            if (cli_int_arg(cli, "--id", optarg, 1, INT64_MAX, &b->desk.id) != EXIT_OK)
                return EXIT_USAGE;
            break;
        default:
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc || (!b->desk.has_id && (!b->desk.branch_code || !b->desk.code)))
        return cmd_usage(cli, call);
    return EXIT_OK;
}

/* ---------------------------------------------------------------- shift add / remove */

static int build_shift_add(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ShiftSave *s = CMD_BODY(call, shift_save, SHIFT_SAVE, carrel__shift_save__init);
    Carrel__Shift *sh = cmd_part(call, sizeof(*sh));
    carrel__shift__init(sh);
    s->shift = sh;
    char *end_text = cmd_part(call, 24);
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"desk", required_argument, NULL, OPT_DESK},
                                         {"start", required_argument, NULL, OPT_START},
                                         {"end", required_argument, NULL, OPT_END},
                                         {"mic", no_argument, NULL, OPT_MIC},
                                         {"note", required_argument, NULL, OPT_NOTE},
                                         {"repeat", required_argument, NULL, OPT_REPEAT},
                                         {"until", required_argument, NULL, OPT_UNTIL},
                                         {"override", no_argument, NULL, OPT_OVERRIDE},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_BRANCH:
            sh->branch_code = optarg;
            break;
        case OPT_DESK:
            sh->desk_code = optarg;
            break;
        case OPT_START:
            sh->start = optarg;
            break;
        case OPT_END:
            sh->end = optarg;
            break;
        case OPT_MIC:
            sh->has_mic = sh->mic = 1;
            break;
        case OPT_NOTE:
            sh->note = optarg;
            break;
        case OPT_REPEAT:
            s->repeat = optarg;
            break;
        case OPT_UNTIL:
            s->until = optarg;
            break;
        case OPT_OVERRIDE:
            s->has_override = s->override = 1;
            break;
        default:
            return cmd_usage(cli, call);
        }
    }
    if (optind < argc - 1 || !sh->branch_code || !sh->start || !sh->end || (s->until && !s->repeat))
        return cmd_usage(cli, call);
    if (optind == argc - 1)
        sh->username = argv[optind]; /* none: an open shift */
    /* --end HH:MM: the same day as the start. */
    if (strlen(sh->end) == 5 && strlen(sh->start) >= 11) {
        snprintf(end_text, 24, "%.11s%s", sh->start, sh->end);
        sh->end = end_text;
    }
    call->data = cli_outcome_new(call); /* weekly: 0 when one was made (cli_outcome_finish) */
    return EXIT_OK;
}

static int build_shift_remove(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc != 2 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    Carrel__ShiftSave *s = CMD_BODY(call, shift_save, SHIFT_SAVE, carrel__shift_save__init);
    Carrel__Shift *sh = cmd_part(call, sizeof(*sh));
    carrel__shift__init(sh);
    s->shift = sh;
    s->has_remove = s->remove = 1;
    sh->has_id = 1;
    if (cli_int_arg(cli, "SHIFT", argv[1], 1, INT64_MAX, &sh->id) != EXIT_OK)
        return EXIT_USAGE;
    return EXIT_OK;
}

/* Made shifts and refused occurrences; the outcome for the exit code. */
static void sched_shift_save_outcome(const cmd_call_t *call, const Carrel__ShiftSaveReply *s)
{
    cli_outcome_note(call, s->n_shifts, s->n_refused,
                     s->n_refused > 0 ? s->refused[0]->reason : NULL);
}

static void print_shift_save(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__ShiftSaveReply *s = r->shift_save;
    sched_shift_save_outcome(call, s);
    bool removed = call->req.shift_save->remove;
    if (s->n_shifts > 0) {
        printf("%s %zu shift%s:\n", removed ? "Removed" : "Made", s->n_shifts,
               s->n_shifts == 1 ? "" : "s");
        sched_print_shifts(s->shifts, s->n_shifts);
    }
    for (size_t i = 0; i < s->n_refused; i++) {
        const Carrel__ShiftRefusal *x = s->refused[i];
        printf("refused %s-%s: %s (%s)\n", sched_or(x->start, "?"), sched_or(x->end, "?"),
               sched_or(x->message, ""), sched_or(x->reason, ""));
    }
}

static void print_shift_save_json(const cmd_call_t *call, const Carrel__Response *r)
{
    sched_shift_save_outcome(call, r->shift_save);
    cmd_print_body_json(call, r);
}

/* ---------------------------------------------------------------- offers and swaps */

static Carrel__ShiftChange *sched_change(cmd_call_t *call, const char *action)
{
    Carrel__ShiftChange *c = CMD_BODY(call, shift_change, SHIFT_CHANGE, carrel__shift_change__init);
    c->action = (char *)action;
    return c;
}

/* `schedule offer|claim SHIFT`. */
static int sched_shift_action(cli_t *cli, int argc, char **argv, cmd_call_t *call,
                              const char *action)
{
    if (argc != 2 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    Carrel__ShiftChange *c = sched_change(call, action);
    c->has_shift_id = 1;
    return cli_int_arg(cli, "SHIFT", argv[1], 1, INT64_MAX, &c->shift_id) == EXIT_OK ? EXIT_OK
                                                                                     : EXIT_USAGE;
}

static int build_offer(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return sched_shift_action(cli, argc, argv, call, "offer");
}

static int build_claim(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return sched_shift_action(cli, argc, argv, call, "claim");
}

/* `schedule approve-swap|deny-swap SWAP`. */
static int sched_swap_decision(cli_t *cli, int argc, char **argv, cmd_call_t *call,
                               const char *action)
{
    if (argc != 2 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    Carrel__ShiftChange *c = sched_change(call, action);
    c->has_swap_id = 1;
    return cli_int_arg(cli, "SWAP", argv[1], 1, INT64_MAX, &c->swap_id) == EXIT_OK ? EXIT_OK
                                                                                   : EXIT_USAGE;
}

static int build_approve_swap(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return sched_swap_decision(cli, argc, argv, call, "approve_swap");
}

static int build_deny_swap(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return sched_swap_decision(cli, argc, argv, call, "deny_swap");
}

static int build_swap(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__ShiftChange *c = sched_change(call, "swap");
    static const struct option opts[] = {{"to", required_argument, NULL, OPT_TO},
                                         {"with", required_argument, NULL, OPT_WITH},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_TO) {
            c->to_username = optarg;
        } else if (ch == OPT_WITH) {
            c->has_with_shift_id = 1;
            if (cli_int_arg(cli, "--with", optarg, 1, INT64_MAX, &c->with_shift_id) != EXIT_OK)
                return EXIT_USAGE;
        } else {
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc - 1 || c->to_username == NULL)
        return cmd_usage(cli, call);
    c->has_shift_id = 1;
    return cli_int_arg(cli, "SHIFT", argv[optind], 1, INT64_MAX, &c->shift_id) == EXIT_OK
               ? EXIT_OK
               : EXIT_USAGE;
}

static const char *const swap_headers[] = {"Swap",      "Shift",  "When",     "Owner",     "To",
                                           "For shift", "Status", "Asked by", "Decided by"};

static void sched_swap_row(table_t *t, const Carrel__SwapRequest *w)
{
    char id[24], shift[24] = "", when[64] = "", owner[512] = "", with[24] = "";
    snprintf(id, sizeof(id), "%lld", (long long)w->id);
    if (w->shift) {
        snprintf(shift, sizeof(shift), "%lld", (long long)w->shift->id);
        snprintf(when, sizeof(when), "%s-%s", sched_or(w->shift->start, ""),
                 sched_or(w->shift->end, ""));
        sched_who(owner, sizeof(owner), w->shift);
    }
    if (w->with_shift)
        snprintf(with, sizeof(with), "%lld", (long long)w->with_shift->id);
    const char *row[] = {id,        shift,           when,         owner, w->to_username, with,
                         w->status, w->requested_by, w->decided_by};
    table_add(t, row);
}

static void print_shift_change(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__ShiftChangeReply *c = r->shift_change;
    if (c->n_shifts > 0)
        sched_print_shifts(c->shifts, c->n_shifts);
    if (c->swap) {
        table_t *t = table_new(9, swap_headers);
        sched_swap_row(t, c->swap);
        table_print(t, stdout);
        table_free(t);
    }
}

static int build_swaps(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__SwapList *l = CMD_BODY(call, swap_list, SWAP_LIST, carrel__swap_list__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"pending", no_argument, NULL, OPT_PENDING},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_BRANCH)
            l->branch = optarg;
        else if (ch == OPT_PENDING)
            l->has_pending = l->pending = 1;
        else
            return cmd_usage(cli, call);
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static void print_swaps(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    if (r->swaps->n_swaps == 0) {
        printf("No swap requests.\n");
        return;
    }
    table_t *t = table_new(9, swap_headers);
    for (size_t i = 0; i < r->swaps->n_swaps; i++)
        sched_swap_row(t, r->swaps->swaps[i]);
    table_print(t, stdout);
    table_free(t);
}

/* ---------------------------------------------------------------- time off */

static const char *const time_off_headers[] = {"Id",     "Who",    "From",       "To",
                                               "Status", "Reason", "Decided by", "Why"};

static void sched_time_off_row(table_t *t, const Carrel__TimeOff *x)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)x->id);
    const char *row[] = {id,        x->username, x->start,      x->end,
                         x->status, x->reason,   x->decided_by, x->decision_reason};
    table_add(t, row);
}

static void print_time_off(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    table_t *t = table_new(8, time_off_headers);
    sched_time_off_row(t, r->time_off);
    table_print(t, stdout);
    table_free(t);
}

static void print_time_off_list(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    if (r->time_off_list->n_entries == 0) {
        printf("No time off.\n");
        return;
    }
    table_t *t = table_new(8, time_off_headers);
    for (size_t i = 0; i < r->time_off_list->n_entries; i++)
        sched_time_off_row(t, r->time_off_list->entries[i]);
    table_print(t, stdout);
    table_free(t);
}

/* What a time-off request builds. */
typedef struct time_off_build {
    Carrel__TimeOff entry;
    char start[24], end[24];
} time_off_build_t;

static Carrel__TimeOffSave *sched_time_off(cmd_call_t *call, const char *action)
{
    Carrel__TimeOffSave *s =
        CMD_BODY(call, time_off_save, TIME_OFF_SAVE, carrel__time_off_save__init);
    time_off_build_t *b = cmd_part(call, sizeof(*b));
    carrel__time_off__init(&b->entry);
    s->time_off = &b->entry;
    s->action = (char *)action;
    return s;
}

static int build_time_off_request(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__TimeOffSave *s = sched_time_off(call, "request");
    time_off_build_t *b = (time_off_build_t *)s->time_off;
    static const struct option opts[] = {{"from", required_argument, NULL, OPT_FROM},
                                         {"to", required_argument, NULL, OPT_TO},
                                         {"reason", required_argument, NULL, OPT_REASON},
                                         {NULL, 0, NULL, 0}};
    const char *from = NULL, *to = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_FROM)
            from = optarg;
        else if (ch == OPT_TO)
            to = optarg;
        else if (ch == OPT_REASON)
            b->entry.reason = optarg;
        else
            return cmd_usage(cli, call);
    }
    if (optind < argc - 1 || from == NULL || to == NULL)
        return cmd_usage(cli, call);
    if (optind == argc - 1)
        b->entry.username = argv[optind]; /* none: oneself */
    if (!sched_bound(from, false, b->start, sizeof(b->start)) ||
        !sched_bound(to, true, b->end, sizeof(b->end)))
        return cli_fail(cli, EXIT_USAGE,
                        "--from and --to take a day (YYYY-MM-DD) or a local "
                        "time (\"YYYY-MM-DD HH:MM\")");
    b->entry.start = b->start;
    b->entry.end = b->end;
    return EXIT_OK;
}

/* `schedule timeoff approve|deny|withdraw ID [--reason TEXT]`. */
static int sched_time_off_decision(cli_t *cli, int argc, char **argv, cmd_call_t *call,
                                   const char *action)
{
    Carrel__TimeOffSave *s = sched_time_off(call, action);
    static const struct option opts[] = {{"reason", required_argument, NULL, OPT_REASON},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_REASON)
            s->time_off->reason = optarg;
        else
            return cmd_usage(cli, call);
    }
    if (optind != argc - 1)
        return cmd_usage(cli, call);
    s->time_off->has_id = 1;
    return cli_int_arg(cli, "ID", argv[optind], 1, INT64_MAX, &s->time_off->id) == EXIT_OK
               ? EXIT_OK
               : EXIT_USAGE;
}

static int build_time_off_approve(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return sched_time_off_decision(cli, argc, argv, call, "approve");
}

static int build_time_off_deny(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return sched_time_off_decision(cli, argc, argv, call, "deny");
}

static int build_time_off_withdraw(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return sched_time_off_decision(cli, argc, argv, call, "withdraw");
}

static int build_time_off_list(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__TimeOffList *l =
        CMD_BODY(call, time_off_list, TIME_OFF_LIST, carrel__time_off_list__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"user", required_argument, NULL, OPT_USER},
                                         {"from", required_argument, NULL, OPT_FROM},
                                         {"to", required_argument, NULL, OPT_TO},
                                         {"pending", no_argument, NULL, OPT_PENDING},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_BRANCH:
            l->branch = optarg;
            break;
        case OPT_USER:
            l->username = optarg;
            break;
        case OPT_FROM:
            l->from = optarg;
            break;
        case OPT_TO:
            l->to = optarg;
            break;
        case OPT_PENDING:
            l->has_pending = l->pending = 1;
            break;
        default:
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    return EXIT_OK;
}

/* ---------------------------------------------------------------- a person's facts */

static int build_staff_set(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__StaffScheduleSet *s =
        CMD_BODY(call, staff_schedule_set, STAFF_SCHEDULE_SET, carrel__staff_schedule_set__init);
    static const struct option opts[] = {{"mic", required_argument, NULL, OPT_MIC},
                                         {"max-hours", required_argument, NULL, OPT_MAX_HOURS},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_MIC) {
            if (strcmp(optarg, "yes") && strcmp(optarg, "no"))
                return cli_fail(cli, EXIT_USAGE, "--mic takes yes or no");
            s->has_mic_eligible = 1;
            s->mic_eligible = strcmp(optarg, "yes") == 0;
        } else if (ch == OPT_MAX_HOURS) {
            s->has_max_week_hours = 1;
            if (cli_int32_arg(cli, "--max-hours", optarg, 0, 80, &s->max_week_hours) != EXIT_OK)
                return EXIT_USAGE;
        } else {
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc - 1)
        return cmd_usage(cli, call);
    s->username = argv[optind];
    return EXIT_OK;
}

static void print_staff_schedule(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__StaffScheduleInfo *s = r->staff_schedule;
    char hours[48];
    if (s->max_week_hours > 0)
        snprintf(hours, sizeof(hours), "at most %d hours a week", s->max_week_hours);
    else
        snprintf(hours, sizeof(hours), "no weekly limit");
    printf("%s (%s): manager in charge: %s; %s; works at", sched_or(s->username, "?"),
           sched_or(s->display_name, ""), s->mic_eligible ? "yes" : "no", hours);
    for (size_t i = 0; i < s->n_branches; i++)
        printf("%s %s", i ? "," : "", s->branches[i]);
    printf("%s\n", s->n_branches ? "" : " any branch");
}

/* ---------------------------------------------------------------- help */

static void help_week(FILE *out)
{
    fprintf(out, "One block per day: a row per period in which nobody changes desk, a column\n"
                 "per service desk, then MIC (the manager in charge) and off-desk work. A\n"
                 "cell under its minimum says so: \"Ann Lee (1 of 2)\". --week takes any date\n"
                 "in the week (default: this week); --branch defaults to this workstation's.\n");
}

static void help_gaps(FILE *out)
{
    fprintf(out, "Every half hour, merged into periods, where a desk is under its minimum, the\n"
                 "branch is open without a manager in charge, or a program session's staff\n"
                 "member is not scheduled. Branch managers, librarians and clerks see their\n"
                 "branch unless --branch names others; the coordinator and administrators see\n"
                 "every branch. A range is at most 92 days.\n");
}

static void help_desk_save(FILE *out)
{
    fprintf(out, "--need \"STAFF [DAYS] [FROM-TO]\" may be given again and again; the highest\n"
                 "rule that applies counts. DAYS: mon ... sun or 1 ... 7, ranges and lists\n"
                 "(mon-fri, sat,sun); FROM-TO: local \"HH:MM\", either side may be left out\n"
                 "(opening, closing). Example: --need 2 --need \"3 sat 12:00-\". The needs\n"
                 "given replace the desk's; --id names a desk to change.\n");
}

static void help_shift_add(FILE *out)
{
    fprintf(out, "Without USER the shift is open, for eligible staff to claim. --start and\n"
                 "--end are local \"YYYY-MM-DD HH:MM\" (--end may be \"HH:MM\", the same day).\n"
                 "--repeat weekly --until DATE makes one shift a week (at most 26); occurrences\n"
                 "that conflict are listed as refused and the others made (exit 0 when any was\n"
                 "made). --override goes beyond the person's weekly hours.\n");
}

static void help_time_off(FILE *out)
{
    fprintf(out, "--from and --to take a local \"YYYY-MM-DD HH:MM\" or a day: --from DAY starts\n"
                 "at its midnight, --to DAY includes the whole day. Without USER the time off\n"
                 "is your own; for someone else, a manager of a branch they work at.\n");
}

const command_t schedule_commands[] = {
    {.path = "schedule week",
     .build = build_week,
     .send = CMD_SEND_READ,
     .print_text = print_week,
     .help = help_week,
     .needs_login = true,
     .usage = "[--branch CODE] [--week DATE]",
     .summary = "a branch's week as a grid: desks by half hours, with who is on each"},
    {.path = "schedule gaps",
     .build = build_gaps,
     .send = CMD_SEND_READ,
     .print_text = print_gaps,
     .help = help_gaps,
     .needs_login = true,
     .usage = "[--branch CODE[,CODE...]] [--week DATE | --from DATE [--to DATE]]",
     .summary = "where desks are under their minimum or no manager is in charge"},
    {.path = "schedule mine",
     .build = build_mine,
     .send = CMD_SEND_READ,
     .print_text = print_shifts,
     .needs_login = true,
     .usage = "[--from DATE] [--to DATE] [--open] [--branch CODE]",
     .summary = "your shifts (the next 14 days); --open: open shifts you may claim"},
    {.path = "schedule absent",
     .build = build_absent,
     .send = CMD_SEND_KEYED,
     .print_text = print_absent,
     .needs_login = true,
     .usage = "USER [--date DATE] [--reason TEXT]",
     .summary = "sick call: the person's shifts that day become open; the gaps go to the desks"},
    {.path = "schedule desks",
     .build = build_desks,
     .send = CMD_SEND_READ,
     .print_text = print_desks,
     .needs_login = true,
     .usage = "[--branch CODE]",
     .summary = "service desks and the staff they need"},
    {.path = "schedule desk save",
     .build = build_desk_save,
     .send = CMD_SEND_ONCE,
     .print_text = print_desk,
     .help = help_desk_save,
     .needs_login = true,
     .usage = "--branch CODE --code CODE --name NAME [--need \"STAFF [DAYS] [FROM-TO]\"]... "
              "[--inactive] [--id ID]",
     .summary = "create or change a service desk and its minimums (managers)"},
    {.path = "schedule shift add",
     .build = build_shift_add,
     /* Retried with its key: the server saves a keyed ShiftSave once. */
     .send = CMD_SEND_KEYED,
     .print_text = print_shift_save,
     .print_json = print_shift_save_json,
     .finish = cli_outcome_finish,
     .help = help_shift_add,
     .needs_login = true,
     .usage = "[USER] --branch CODE --start TIME --end TIME [--desk CODE] [--mic] [--note TEXT] "
              "[--repeat weekly --until DATE] [--override]",
     .summary = "schedule a shift, or an open shift without USER (managers)"},
    {.path = "schedule shift remove",
     .build = build_shift_remove,
     .send = CMD_SEND_ONCE,
     .print_text = print_shift_save,
     .needs_login = true,
     .usage = "SHIFT",
     .summary = "remove a shift (managers)"},
    {.path = "schedule shifts",
     .build = build_shifts,
     .send = CMD_SEND_READ,
     .print_text = print_shifts,
     .needs_login = true,
     .usage = "[--branch CODE] [--user USER] [--from DATE] [--to DATE] [--open]",
     .summary = "shifts in a range (default: the next 7 days), with their hours"},
    {.path = "schedule offer",
     .build = build_offer,
     .send = CMD_SEND_KEYED,
     .print_text = print_shift_change,
     .needs_login = true,
     .usage = "SHIFT",
     .summary = "offer your shift (managers: anyone's) to eligible staff: it becomes open"},
    {.path = "schedule claim",
     .build = build_claim,
     .send = CMD_SEND_KEYED,
     .print_text = print_shift_change,
     .needs_login = true,
     .usage = "SHIFT",
     .summary = "take an open shift"},
    {.path = "schedule swap",
     .build = build_swap,
     .send = CMD_SEND_KEYED,
     .print_text = print_shift_change,
     .needs_login = true,
     .usage = "SHIFT --to USER [--with SHIFT]",
     .summary = "ask to give your shift to someone (for one of theirs); a manager decides"},
    {.path = "schedule approve-swap",
     .build = build_approve_swap,
     .send = CMD_SEND_KEYED,
     .print_text = print_shift_change,
     .needs_login = true,
     .usage = "SWAP",
     .summary = "approve a swap request (managers of the branch)"},
    {.path = "schedule deny-swap",
     .build = build_deny_swap,
     .send = CMD_SEND_KEYED,
     .print_text = print_shift_change,
     .needs_login = true,
     .usage = "SWAP",
     .summary = "deny a swap request (managers of the branch)"},
    {.path = "schedule swaps",
     .build = build_swaps,
     .send = CMD_SEND_READ,
     .print_text = print_swaps,
     .needs_login = true,
     .usage = "[--branch CODE] [--pending]",
     .summary = "swap requests"},
    {.path = "schedule timeoff request",
     .build = build_time_off_request,
     .send = CMD_SEND_ONCE,
     .print_text = print_time_off,
     .help = help_time_off,
     .needs_login = true,
     .usage = "[USER] --from TIME|DATE --to TIME|DATE [--reason TEXT]",
     .summary = "ask for time off (your own, or a manager for someone)"},
    {.path = "schedule timeoff approve",
     .build = build_time_off_approve,
     .send = CMD_SEND_ONCE,
     .print_text = print_time_off,
     .needs_login = true,
     .usage = "ID",
     .summary = "approve time off (managers); refused while the person has shifts then"},
    {.path = "schedule timeoff deny",
     .build = build_time_off_deny,
     .send = CMD_SEND_ONCE,
     .print_text = print_time_off,
     .needs_login = true,
     .usage = "ID [--reason TEXT]",
     .summary = "deny time off (managers)"},
    {.path = "schedule timeoff withdraw",
     .build = build_time_off_withdraw,
     .send = CMD_SEND_ONCE,
     .print_text = print_time_off,
     .needs_login = true,
     .usage = "ID",
     .summary = "withdraw your own time-off request"},
    {.path = "schedule timeoff list",
     .build = build_time_off_list,
     .send = CMD_SEND_READ,
     .print_text = print_time_off_list,
     .needs_login = true,
     .usage = "[--branch CODE] [--user USER] [--from DATE] [--to DATE] [--pending]",
     .summary = "time off, requested and decided"},
    {.path = "schedule staff set",
     .build = build_staff_set,
     .send = CMD_SEND_ONCE,
     .print_text = print_staff_schedule,
     .needs_login = true,
     .usage = "USER [--mic yes|no] [--max-hours N]",
     .summary = "whether a person may be manager in charge, and their weekly hours (0: no limit)"},
    {.path = NULL},
};
