/*
 * gen-circ: fill circ_event with years of a library's circulation for the
 * statistics benchmark (scripts/bench stats), through COPY on one libpq
 * connection.
 *
 *   gen-circ CONNINFO EVENTS [YEARS [SEED]]
 *
 * The events fall in the YEARS (default 3) before the library's today, only
 * in the branches' opening hours (branch_hours; closed on Christmas Day, New
 * Year's Day and the Fourth of July), shaped like a real public library:
 * afternoons busier than mornings, Saturdays busiest, summer reading in June
 * and July, a December dip, a little growth year on year, Downtown three
 * times a neighbourhood branch, and noise on every hour. Each event uses an
 * item of the catalog (mostly one owned by the branch where it happens),
 * with that item's type and shelving location; the patron category follows
 * a typical mix. Exactly EVENTS rows are written (rounding carries over from
 * one hour to the next). Times are written as local wall-clock times in the
 * library's time zone (library_setting 'timezone'), set as the session's.
 *
 * The session sets session_replication_role = replica (so the connection
 * must be a superuser's): neither foreign-key checks nor the statistics
 * queue trigger run for the load; scripts/bench rebuilds the rollups from
 * the raw events afterwards. The columns via and location are filled when
 * circ_event has them.
 *
 * Progress goes to stderr; one "key=value" line to stdout at the end.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "util.h"

#define GEN_MAX_BRANCHES 64
#define GEN_BUF          (1 << 20)

typedef struct gen_item {
    long long id;
    int branch;        /* index into branches */
    char type[40];     /* item_type code */
    char location[64]; /* COPY-escaped shelving location (ours: no special characters) */
} gen_item_t;

typedef struct gen_branch {
    int id;
    char code[16];
    double size;  /* relative business */
    int opens[8]; /* ISO weekday 1-7: minutes after midnight, -1 closed */
    int closes[8];
    size_t first, nitems; /* its items in gen_t.items */
} gen_branch_t;

typedef struct gen {
    PGconn *pg;
    gen_branch_t branches[GEN_MAX_BRANCHES];
    int nbranches;
    gen_item_t *items;
    size_t nitems;
    bool has_via, has_location;
    int first_jd, ndays; /* day numbers (days since 1970-01-01) */
    uint64_t rng;
    char *buf;
    size_t used;
    long long written;
} gen_t;

static void die(gen_t *g, const char *what)
{
    fprintf(stderr, "gen-circ: %s: %s", what, g->pg ? PQerrorMessage(g->pg) : "\n");
    exit(1);
}

/* xorshift64*: reproducible from the seed, fast. */
static double gen_rand(gen_t *g)
{
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return (double)((g->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static PGresult *gen_query(gen_t *g, const char *sql, ExecStatusType want)
{
    PGresult *r = PQexec(g->pg, sql);
    if (PQresultStatus(r) != want) {
        fprintf(stderr, "gen-circ: %s\n", sql);
        die(g, "query failed");
    }
    return r;
}

static int cmp_branch_id(const void *a, const void *b)
{
    return ((const gen_branch_t *)a)->id - ((const gen_branch_t *)b)->id;
}

static int gen_branch_index(const gen_t *g, int id)
{
    for (int i = 0; i < g->nbranches; i++)
        if (g->branches[i].id == id)
            return i;
    return -1;
}

/* Branches, their hours, and how busy each is: Downtown (the central library) most. */
static void gen_load_branches(gen_t *g)
{
    PGresult *r = gen_query(g, "SELECT id, code FROM branch ORDER BY id", PGRES_TUPLES_OK);
    static const double sizes[] = {1.0, 0.9, 0.8, 1.1, 0.7, 0.85, 0.95};
    for (int i = 0; i < PQntuples(r) && i < GEN_MAX_BRANCHES; i++) {
        gen_branch_t *b = &g->branches[g->nbranches++];
        b->id = atoi(PQgetvalue(r, i, 0));
        snprintf(b->code, sizeof(b->code), "%s", PQgetvalue(r, i, 1));
        b->size = strcmp(b->code, "DWN") == 0 ? 3.0 : sizes[i % 7];
        for (int d = 0; d < 8; d++)
            b->opens[d] = b->closes[d] = -1;
    }
    PQclear(r);
    qsort(g->branches, (size_t)g->nbranches, sizeof(gen_branch_t), cmp_branch_id);
    r = gen_query(g,
                  "SELECT branch_id, weekday, extract(epoch FROM opens)::int / 60, "
                  "extract(epoch FROM closes)::int / 60 FROM branch_hours",
                  PGRES_TUPLES_OK);
    for (int i = 0; i < PQntuples(r); i++) {
        int b = gen_branch_index(g, atoi(PQgetvalue(r, i, 0)));
        int d = atoi(PQgetvalue(r, i, 1));
        if (b < 0 || d < 1 || d > 7)
            continue;
        g->branches[b].opens[d] = atoi(PQgetvalue(r, i, 2));
        g->branches[b].closes[d] = atoi(PQgetvalue(r, i, 3));
    }
    PQclear(r);
}

/* Every item, grouped by owning branch (ordered so each branch's are together). */
static void gen_load_items(gen_t *g)
{
    PGresult *r = gen_query(g,
                            "SELECT id, owning_branch_id, item_type, location FROM item "
                            "ORDER BY owning_branch_id, id",
                            PGRES_TUPLES_OK);
    g->nitems = (size_t)PQntuples(r);
    if (g->nitems == 0) {
        fprintf(stderr, "gen-circ: the catalog has no items\n");
        exit(1);
    }
    g->items = calloc(g->nitems, sizeof(gen_item_t));
    if (g->items == NULL)
        abort();
    for (size_t i = 0; i < g->nitems; i++) {
        gen_item_t *it = &g->items[i];
        it->id = atoll(PQgetvalue(r, (int)i, 0));
        it->branch = gen_branch_index(g, atoi(PQgetvalue(r, (int)i, 1)));
        snprintf(it->type, sizeof(it->type), "%s", PQgetvalue(r, (int)i, 2));
        snprintf(it->location, sizeof(it->location), "%s", PQgetvalue(r, (int)i, 3));
        if (strpbrk(it->location, "\\\t\n\r") != NULL)
            it->location[0] = '\0'; /* never ours; keeps the COPY text simple */
        gen_branch_t *b = &g->branches[it->branch];
        if (b->nitems == 0)
            b->first = i;
        b->nitems++;
    }
    PQclear(r);
}

/* The session: superuser tricks for the load, the library's clock, the range. */
static void gen_prepare(gen_t *g, int years)
{
    PQclear(gen_query(g, "SET session_replication_role = replica", PGRES_COMMAND_OK));
    PQclear(gen_query(g, "SELECT set_config('TimeZone', library_setting_text('timezone'), false)",
                      PGRES_TUPLES_OK));
    PGresult *r = gen_query(g,
                            "SELECT count(*) FILTER (WHERE column_name = 'via'), "
                            "count(*) FILTER (WHERE column_name = 'location') "
                            "FROM information_schema.columns WHERE table_name = 'circ_event'",
                            PGRES_TUPLES_OK);
    g->has_via = atoi(PQgetvalue(r, 0, 0)) > 0;
    g->has_location = atoi(PQgetvalue(r, 0, 1)) > 0;
    PQclear(r);
    char sql[200];
    snprintf(sql, sizeof(sql),
             "SELECT (library_today() - interval '%d years')::date - '1970-01-01'::date, "
             "library_today() - (library_today() - interval '%d years')::date",
             years, years);
    r = gen_query(g, sql, PGRES_TUPLES_OK);
    g->first_jd = atoi(PQgetvalue(r, 0, 0));
    g->ndays = atoi(PQgetvalue(r, 0, 1)); /* up to yesterday */
    PQclear(r);
}

/* Relative business: by month (summer reading, December dip), weekday, clock hour. */
static double gen_season(int month)
{
    static const double m[12] = {1.05, 1.0, 1.0, 0.95, 0.95, 1.2, 1.3, 1.15, 0.95, 1.0, 0.95, 0.8};
    return m[month];
}

static double gen_weekday(int isodow)
{
    static const double w[8] = {0, 1.0, 1.05, 1.0, 1.0, 0.9, 1.5, 0.8};
    return w[isodow];
}

static double gen_hour(int hour)
{
    static const double h[24] = {0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.3, 0.4,  0.5, 0.6, 0.65, 0.8,
                                 1.0, 1.0, 1.1, 1.3, 1.4, 1.3, 1.0, 0.75, 0.6, 0.4, 0.3,  0.2};
    return h[hour];
}

static bool gen_holiday(const struct tm *t)
{
    return (t->tm_mon == 11 && t->tm_mday == 25) || (t->tm_mon == 0 && t->tm_mday == 1) ||
           (t->tm_mon == 6 && t->tm_mday == 4);
}

/* Noise of one (day, branch, hour), 0.8-1.2: a hash, so both passes see the same. */
static double gen_noise(uint64_t seed, int d, int b, int h)
{
    uint64_t x = seed + ((uint64_t)d * 131 + (uint64_t)b) * 31 + (uint64_t)h;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return 0.8 + 0.4 * (double)(x >> 11) / 9007199254740992.0;
}

/* Calls fn (if any) for each open (day, branch, hour) with its weight; returns the sum. */
typedef void (*gen_bucket_fn)(gen_t *g, const struct tm *day, int branch, int hour, int from_min,
                              int to_min, double weight, void *arg);

static double gen_buckets(gen_t *g, gen_bucket_fn fn, void *arg)
{
    uint64_t seed = g->rng;
    double total = 0;
    for (int d = 0; d < g->ndays; d++) {
        time_t secs = (time_t)(g->first_jd + d) * 86400;
        struct tm day;
        gmtime_r(&secs, &day);
        if (gen_holiday(&day))
            continue;
        int isodow = day.tm_wday == 0 ? 7 : day.tm_wday;
        double growth = 1.0 + 0.04 * (double)d / 365.0;
        double dayw = gen_season(day.tm_mon) * gen_weekday(isodow) * growth;
        for (int b = 0; b < g->nbranches; b++) {
            const gen_branch_t *br = &g->branches[b];
            if (br->opens[isodow] < 0 || br->nitems == 0)
                continue;
            for (int h = br->opens[isodow] / 60; h * 60 < br->closes[isodow]; h++) {
                int from = h * 60 < br->opens[isodow] ? br->opens[isodow] - h * 60 : 0;
                int to = (h + 1) * 60 > br->closes[isodow] ? br->closes[isodow] - h * 60 : 60;
                double w =
                    dayw * br->size * gen_hour(h) * (to - from) / 60.0 * gen_noise(seed, d, b, h);
                total += w;
                if (fn)
                    fn(g, &day, b, h, from, to, w, arg);
            }
        }
    }
    return total;
}

static void gen_flush(gen_t *g)
{
    if (g->used && PQputCopyData(g->pg, g->buf, (int)g->used) != 1)
        die(g, "COPY data");
    g->used = 0;
}

static const char *gen_pick(gen_t *g, const char *const *names, const double *p, int n)
{
    double x = gen_rand(g);
    for (int i = 0; i < n - 1; i++) {
        if (x < p[i])
            return names[i];
        x -= p[i];
    }
    return names[n - 1];
}

/* One event as a COPY text line. */
static void gen_event(gen_t *g, const struct tm *day, int branch, int hour, int from_min,
                      int to_min)
{
    static const char *const actions[] = {"checkout", "checkin", "renew",   "in_house_use",
                                          "lost",     "damaged", "missing", "found"};
    static const double action_p[] = {0.40, 0.41, 0.14, 0.04, 0.003, 0.002, 0.003, 0.002};
    static const char *const cats[] = {"adult", "juvenile",  "senior",       "nonresident",
                                       "staff", "homebound", "institutional"};
    static const double cat_p[] = {0.62, 0.22, 0.10, 0.03, 0.02, 0.005, 0.005};
    const gen_branch_t *br = &g->branches[branch];
    const char *action = gen_pick(g, actions, action_p, 8);
    const gen_item_t *it = gen_rand(g) < 0.92
                               ? &g->items[br->first + (size_t)(gen_rand(g) * (double)br->nitems)]
                               : &g->items[(size_t)(gen_rand(g) * (double)g->nitems)];
    /* Self-check machines: Downtown's are used more; renewals mostly online. */
    const char *via = "desk";
    double self = strcmp(br->code, "DWN") == 0 ? 0.5 : 0.3;
    if ((!strcmp(action, "checkout") && gen_rand(g) < self) ||
        (!strcmp(action, "renew") && gen_rand(g) < 0.6))
        via = "selfcheck";
    bool has_patron =
        strcmp(action, "in_house_use") && strcmp(action, "found") && strcmp(action, "missing");
    int sec = from_min * 60 + (int)(gen_rand(g) * (double)((to_min - from_min) * 60));
    if (g->used > GEN_BUF - 512)
        gen_flush(g);
    char *p = g->buf + g->used;
    int n =
        snprintf(p, 512, "%04d-%02d-%02d %02d:%02d:%02d\t%s\t%d\t%lld\t%s\t%s", day->tm_year + 1900,
                 day->tm_mon + 1, day->tm_mday, hour, sec / 60, sec % 60, action, br->id, it->id,
                 it->type, has_patron ? gen_pick(g, cats, cat_p, 7) : "\\N");
    if (g->has_via)
        n += snprintf(p + n, (size_t)(512 - n), "\t%s", via);
    if (g->has_location)
        n += snprintf(p + n, (size_t)(512 - n), "\t%s", it->location);
    p[n++] = '\n';
    g->used += (size_t)n;
    g->written++;
}

typedef struct gen_plan {
    double scale, carry;
    long long target;
    uint64_t t0;
    long long next_report;
    struct tm last_day; /* the last open hour seen, for what rounding leaves over */
    int last_branch, last_hour, last_from, last_to;
} gen_plan_t;

static void gen_bucket(gen_t *g, const struct tm *day, int branch, int hour, int from_min,
                       int to_min, double weight, void *arg)
{
    gen_plan_t *plan = arg;
    double want = weight * plan->scale + plan->carry;
    long long k = (long long)floor(want);
    plan->carry = want - (double)k;
    if (g->written + k > plan->target)
        k = plan->target - g->written;
    plan->last_day = *day;
    plan->last_branch = branch;
    plan->last_hour = hour;
    plan->last_from = from_min;
    plan->last_to = to_min;
    for (long long i = 0; i < k; i++)
        gen_event(g, day, branch, hour, from_min, to_min);
    if (g->written >= plan->next_report) {
        fprintf(stderr, "gen-circ: %lld of %lld events (%04d-%02d), %.0f s\n", g->written,
                plan->target, day->tm_year + 1900, day->tm_mon + 1,
                (double)(util_mono_ns() - plan->t0) / 1e9);
        plan->next_report += plan->target / 10 > 0 ? plan->target / 10 : 1;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: gen-circ CONNINFO EVENTS [YEARS [SEED]]\n");
        return 2;
    }
    gen_t g = {.rng = 0x9E3779B97F4A7C15ULL};
    long long events = atoll(argv[2]);
    int years = argc > 3 ? atoi(argv[3]) : 3;
    if (argc > 4)
        g.rng ^= strtoull(argv[4], NULL, 10) * 0x2545F4914F6CDD1DULL;
    if (events < 1 || years < 1 || years > 10) {
        fprintf(stderr, "gen-circ: EVENTS must be positive and YEARS 1-10\n");
        return 2;
    }
    g.pg = PQconnectdb(argv[1]);
    if (PQstatus(g.pg) != CONNECTION_OK)
        die(&g, "connect");
    gen_prepare(&g, years);
    gen_load_branches(&g);
    gen_load_items(&g);
    g.buf = malloc(GEN_BUF);
    if (g.buf == NULL)
        abort();

    /* A first pass sums the weights, the second writes. */
    gen_plan_t plan = {.target = events, .t0 = util_mono_ns()};
    plan.scale = (double)events / gen_buckets(&g, NULL, NULL);
    plan.next_report = events / 10 > 0 ? events / 10 : 1;
    char copy[200];
    snprintf(copy, sizeof(copy),
             "COPY circ_event (at, action, branch_id, item_id, item_type, patron_category%s%s) "
             "FROM STDIN",
             g.has_via ? ", via" : "", g.has_location ? ", location" : "");
    PQclear(gen_query(&g, copy, PGRES_COPY_IN));
    gen_buckets(&g, gen_bucket, &plan);
    /* Floating-point rounding may leave an event or two: in the last open hour. */
    while (g.written < events)
        gen_event(&g, &plan.last_day, plan.last_branch, plan.last_hour, plan.last_from,
                  plan.last_to);
    gen_flush(&g);
    if (PQputCopyEnd(g.pg, NULL) != 1)
        die(&g, "COPY end");
    PGresult *r = PQgetResult(g.pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die(&g, "COPY");
    PQclear(r);
    double secs = (double)(util_mono_ns() - plan.t0) / 1e9;
    printf("generated events=%lld days=%d branches=%d items=%zu seconds=%.1f rows_per_s=%.0f\n",
           g.written, g.ndays, g.nbranches, g.nitems, secs, (double)g.written / secs);
    free(g.items);
    free(g.buf);
    PQfinish(g.pg);
    return 0;
}
