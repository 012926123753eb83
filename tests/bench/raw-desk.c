/*
 * raw-desk: the raw-SQL baseline for the desk benchmarks. N threads, each
 * with its own blocking libpq connection, do exactly the database work
 * carreld does for a desk (the same SQL calls with the same arguments), so
 * that carrel-bench's figures can be set against the cost of the database
 * alone.
 *
 *   raw-desk [-C PG_DATADIR|PID] CONNINFO CONNECTIONS SECONDS WARMUP circ STAFF_ID
 *            WORKSTATION_ID BRANCH_ID
 *   raw-desk [-C PG_DATADIR|PID] CONNINFO CONNECTIONS SECONDS WARMUP tally DESK [DESK...]
 *
 * circ: desk i checks out and in (circ_checkout, circ_checkin) patron
 * BENCH-P-(i+32)'s items BENCH-I-(i+32)-00..09 (scripts/bench creates them;
 * carrel-bench's desks use 0-31).
 * tally: desk i records inquiries with inquiry_add, keyed, a fresh key each,
 * the tallies of tally.h, as DESK[i % count], each
 * STAFF_ID:WORKSTATION_ID:SCOPE:BRANCH_CODE:DESK_CODE (SCOPE empty: every
 * branch) -- what carreld passes for a desk logged in there.
 * Prints one line like carrel-bench's. With -C (the cluster's data directory,
 * or its postmaster's pid), the line adds pg_cpu_ms_per_op: the CPU all of
 * PostgreSQL's processes spent in the measured window (tests/bench/pgcpu.h)
 * over the operations done, and for circ pg_cpu_ms_per_pair (a checkout and
 * its checkin).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "lat.h"
#include "pgcpu.h"
#include "tally.h"
#include "util.h"

typedef struct raw_desk raw_desk_t;
typedef void (*raw_workload_fn)(raw_desk_t *d, PGconn *pg);

struct raw_desk {
    pthread_t thread;
    int index;
    const char *conninfo;
    raw_workload_fn run;
    const char *arg;                 /* tally: this desk's DESK */
    const char *staff, *ws, *branch; /* circ */
    lat_t lat;
    uint64_t errors;
    int failed;
};

static volatile int raw_measuring;
static volatile int raw_stop;

static void raw_record(raw_desk_t *d, uint64_t ns)
{
    if (raw_measuring)
        lat_add(&d->lat, ns);
}

static int raw_call(raw_desk_t *d, PGconn *pg, const char *stmt, int n, const char *const *values)
{
    uint64_t t0 = util_mono_ns();
    PGresult *r = PQexecPrepared(pg, stmt, n, values, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) {
        d->errors++;
        if (d->errors < 3)
            fprintf(stderr, "desk %d: %s", d->index, PQresultErrorMessage(r));
    }
    PQclear(r);
    raw_record(d, util_mono_ns() - t0);
    return ok ? 0 : -1;
}

static int raw_prepare(raw_desk_t *d, PGconn *pg, const char *name, const char *sql)
{
    PGresult *p = PQprepare(pg, name, sql, 0, NULL);
    int ok = PQresultStatus(p) == PGRES_COMMAND_OK;
    if (!ok) {
        fprintf(stderr, "prepare %s: %s", name, PQerrorMessage(pg));
        d->failed = 1;
    }
    PQclear(p);
    return ok ? 0 : -1;
}

static void raw_circ(raw_desk_t *d, PGconn *pg)
{
    if (raw_prepare(d, pg, "checkout",
                    "SELECT * FROM circ_checkout($1::uuid, $2, $3, $4, $5, $6, false, "
                    "NULL, false)") != 0 ||
        raw_prepare(d, pg, "checkin",
                    "SELECT * FROM circ_checkin($1::uuid, $2, $3, $4, $5, NULL)") != 0)
        return;
    char card[32];
    snprintf(card, sizeof(card), "BENCH-P-%05d", d->index + 32);
    for (int k = 0; !raw_stop && !d->failed; k = (k + 1) % 10) {
        char item[32], key1[37], key2[37];
        snprintf(item, sizeof(item), "BENCH-I-%05d-%02d", d->index + 32, k);
        if (util_uuid7(key1) != 0 || util_uuid7(key2) != 0)
            break;
        const char *co[6] = {key1, d->staff, d->ws, d->branch, card, item};
        const char *ci[5] = {key2, d->staff, d->ws, d->branch, item};
        raw_call(d, pg, "checkout", 6, co);
        raw_call(d, pg, "checkin", 5, ci);
    }
}

/* tally: inquiry_add as carreld calls it for a desk (see the top). */
static void raw_tally(raw_desk_t *d, PGconn *pg)
{
    char spec[256];
    util_strlcpy(spec, d->arg, sizeof(spec));
    char *rest = spec, *f[5];
    for (int i = 0; i < 5; i++)
        f[i] = strsep(&rest, ":");
    if (f[4] == NULL || rest != NULL) {
        fprintf(stderr, "desk %d: bad DESK %s (STAFF:WS:SCOPE:BRANCH:DESK)\n", d->index, d->arg);
        d->failed = 1;
        return;
    }
    if (raw_prepare(d, pg, "tally", "SELECT * FROM inquiry_add($1::uuid, $2, $3, $4, $5::jsonb)") !=
        0)
        return;
    for (uint64_t n = 0; !raw_stop && !d->failed; n++) {
        const tally_shape_t *t = tally_shape(d->index, n);
        char doc[256], key[37];
        snprintf(doc, sizeof(doc),
                 "{\"branch_code\": \"%s\", \"desk_code\": \"%s\", \"channel\": \"%s\", "
                 "\"kind\": \"%s\", \"read_level\": %d}",
                 f[3], f[4], t->channel, t->kind, t->read_level);
        if (util_uuid7(key) != 0)
            break;
        const char *values[5] = {key, f[0], f[1], f[2][0] ? f[2] : NULL, doc};
        raw_call(d, pg, "tally", 5, values);
    }
}

static void *raw_desk_main(void *arg)
{
    raw_desk_t *d = arg;
    PGconn *pg = PQconnectdb(d->conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "desk %d: %s", d->index, PQerrorMessage(pg));
        d->failed = 1;
    } else {
        d->run(d, pg);
    }
    PQfinish(pg);
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: raw-desk [-C PG_DATADIR|PID] CONNINFO CONNECTIONS SECONDS WARMUP "
                    "circ STAFF WS BRANCH\n"
                    "       raw-desk [-C PG_DATADIR|PID] CONNINFO CONNECTIONS SECONDS WARMUP "
                    "tally STAFF:WS:SCOPE:BRANCH:DESK...\n");
    return 2;
}

int main(int argc, char **argv)
{
    pgcpu_t cpu = {0};
    int opt;
    while ((opt = getopt(argc, argv, "+C:")) != -1) {
        if (opt != 'C' || (cpu.postmaster = pgcpu_postmaster(optarg)) <= 0)
            return usage();
    }
    /* The positional arguments as before: argv[1] is CONNINFO. */
    argc -= optind - 1;
    argv += optind - 1;
    if (argc < 7)
        return usage();
    const char *workload = argv[5];
    bool circ = strcmp(workload, "circ") == 0;
    if (circ ? argc != 9 : strcmp(workload, "tally") != 0)
        return usage();
    int n = atoi(argv[2]);
    double secs = atof(argv[3]), warm = atof(argv[4]);
    if (n < 1)
        return usage();
    raw_desk_t *desks = calloc((size_t)n, sizeof(*desks));
    if (desks == NULL)
        abort();
    for (int i = 0; i < n; i++) {
        desks[i].index = i;
        desks[i].conninfo = argv[1];
        if (circ) {
            desks[i].run = raw_circ;
            desks[i].staff = argv[6];
            desks[i].ws = argv[7];
            desks[i].branch = argv[8];
        } else {
            desks[i].run = raw_tally;
            desks[i].arg = argv[6 + i % (argc - 6)];
        }
        pthread_create(&desks[i].thread, NULL, raw_desk_main, &desks[i]);
    }
    struct timespec w = {(time_t)warm, (long)((warm - (time_t)warm) * 1e9)};
    nanosleep(&w, NULL);
    /* Every desk's connection is open by now (or has failed) and stays open
     * until raw_stop: both CPU samples see the backends doing the work. */
    int cpu_failed = pgcpu_start(&cpu);
    raw_measuring = 1;
    uint64_t t0 = util_mono_ns();
    struct timespec s = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};
    nanosleep(&s, NULL);
    raw_measuring = 0;
    uint64_t t1 = util_mono_ns();
    double cpu_ms = cpu_failed ? -1 : pgcpu_end_ms(&cpu);
    raw_stop = 1;
    size_t total = 0;
    uint64_t errors = 0;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(desks[i].thread, NULL);
        total += desks[i].lat.n;
        errors += desks[i].errors;
        failed |= desks[i].failed;
    }
    lat_t all = {.us = malloc((total + 1) * sizeof(uint32_t)), .n = total, .cap = total + 1};
    if (all.us == NULL)
        abort();
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (desks[i].lat.n > 0)
            memcpy(all.us + k, desks[i].lat.us, desks[i].lat.n * sizeof(uint32_t));
        k += desks[i].lat.n;
        free(desks[i].lat.us);
    }
    lat_sort(&all);
    double elapsed = (double)(t1 - t0) / 1e9;
    printf("workload=raw-%s connections=%d depth=1 seconds=%.1f ops=%zu errors=%llu "
           "ops_per_s=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f",
           workload, n, elapsed, total, (unsigned long long)errors, (double)total / elapsed,
           lat_pct(all.us, total, 0.50), lat_pct(all.us, total, 0.99), lat_max(all.us, total));
    if (cpu.postmaster > 0 && cpu_ms >= 0 && total > 0) {
        printf(" pg_cpu_ms=%.0f pg_cpu_ms_per_op=%.3f", cpu_ms, cpu_ms / (double)total);
        if (circ)
            printf(" pg_cpu_ms_per_pair=%.3f", 2 * cpu_ms / (double)total);
    } else if (cpu.postmaster > 0) {
        fprintf(stderr, "raw-desk: PostgreSQL's CPU could not be measured\n");
        failed = 1;
    }
    printf("\n");
    pgcpu_free(&cpu);
    free(all.us);
    free(desks);
    return failed ? 1 : 0;
}
