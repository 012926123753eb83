/*
 * lat.h: latencies and their percentiles, shared by the benchmark tools
 * (carrel-bench, raw-desk) so that their p50/p99 mean the same thing.
 */
#ifndef CARREL_BENCH_LAT_H
#define CARREL_BENCH_LAT_H

#include <stdint.h>
#include <stdlib.h>

/* Latencies in microseconds (an hour fits in 32 bits). */
typedef struct lat {
    uint32_t *us;
    size_t n, cap;
} lat_t;

static inline void lat_add(lat_t *l, uint64_t ns)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1 << 16;
        l->us = realloc(l->us, l->cap * sizeof(uint32_t));
        if (l->us == NULL)
            abort();
    }
    l->us[l->n++] = (uint32_t)(ns / 1000);
}

static inline int lat_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static inline void lat_sort(lat_t *l)
{
    if (l->n > 0) /* us may be NULL then, which qsort must not be given */
        qsort(l->us, l->n, sizeof(uint32_t), lat_cmp_u32);
}

/* The p-quantile (0..1) of sorted v, nearest rank, in ms; 0 when empty. */
static inline double lat_pct(const uint32_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i] / 1000.0;
}

/* The largest of sorted v, in ms; 0 when empty. */
static inline double lat_max(const uint32_t *v, size_t n)
{
    return n ? v[n - 1] / 1000.0 : 0.0;
}

#endif
