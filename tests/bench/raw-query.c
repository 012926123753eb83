/*
 * raw-query: the raw-SQL baseline for a report: one blocking libpq
 * connection runs one statement again and again, so that carrel-bench's
 * figures for the same question asked through carreld can be set against a
 * plain query of the raw events (scripts/bench stats).
 *
 *   raw-query CONNINFO SECONDS WARMUP MIN_RUNS NAME SQL
 *
 * Runs SQL for WARMUP seconds (at least once), then measures for SECONDS and
 * at least MIN_RUNS runs. Prints one line like carrel-bench's, with the rows
 * the statement returned and the sum of its last column (to compare with the
 * daemon's answer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "util.h"

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i] / 1000.0;
}

/* One run: its time in microseconds, or -1 on failure (printed). */
static long long run_once(PGconn *pg, const char *sql, int *rows, double *sum)
{
    uint64_t t0 = util_mono_ns();
    PGresult *r = PQexec(pg, sql);
    uint64_t t1 = util_mono_ns();
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "raw-query: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    *rows = PQntuples(r);
    *sum = 0;
    int last = PQnfields(r) - 1;
    for (int i = 0; i < *rows && last >= 0; i++)
        *sum += atof(PQgetvalue(r, i, last));
    PQclear(r);
    return (long long)((t1 - t0) / 1000);
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: raw-query CONNINFO SECONDS WARMUP MIN_RUNS NAME SQL\n");
        return 2;
    }
    double seconds = atof(argv[2]), warmup = atof(argv[3]);
    int min_runs = atoi(argv[4]);
    const char *name = argv[5], *sql = argv[6];
    PGconn *pg = PQconnectdb(argv[1]);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "raw-query: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return 1;
    }
    int rows = 0;
    double sum = 0;
    uint64_t start = util_mono_ns();
    do {
        if (run_once(pg, sql, &rows, &sum) < 0) {
            PQfinish(pg);
            return 1;
        }
    } while ((double)(util_mono_ns() - start) / 1e9 < warmup);

    size_t n = 0, cap = 64;
    uint32_t *us = malloc(cap * sizeof(uint32_t));
    if (us == NULL)
        abort();
    start = util_mono_ns();
    double secs;
    do {
        long long t = run_once(pg, sql, &rows, &sum);
        if (t < 0) {
            free(us);
            PQfinish(pg);
            return 1;
        }
        if (n == cap) {
            cap *= 2;
            us = realloc(us, cap * sizeof(uint32_t));
            if (us == NULL)
                abort();
        }
        us[n++] = (uint32_t)t;
        secs = (double)(util_mono_ns() - start) / 1e9;
    } while (secs < seconds || n < (size_t)min_runs);
    qsort(us, n, sizeof(uint32_t), cmp_u32);
    printf("workload=%s connections=1 depth=1 seconds=%.1f ops=%zu errors=0 ops_per_s=%.2f "
           "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f rows=%d sum=%.0f\n",
           name, secs, n, (double)n / secs, pct(us, n, 0.50), pct(us, n, 0.99), us[n - 1] / 1000.0,
           rows, sum);
    free(us);
    PQfinish(pg);
    return 0;
}
