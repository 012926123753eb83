/*
 * pgcpu.h: PostgreSQL's CPU time over a measured window, for the benchmarks'
 * pg_cpu_ms_per_op (carrel-bench and raw-desk, -C).
 *
 * PostgreSQL runs one process per connection, all children of the
 * postmaster, as are its WAL writer, checkpointer and other helpers. The
 * CPU the database spent in a window is the sum over those children of
 * utime + stime (/proc/PID/stat, clock ticks) at the window's end less at
 * its start. Each child is matched by pid and start time, so a pid reused
 * in between is not mistaken for the old process: a child born inside the
 * window counts whole, one that exits inside the window loses what it spent
 * after the first sample (the benchmarks keep their connections open across
 * both samples, so the backends doing the work are all counted). The
 * resolution is one clock tick (10 ms) per process, small against a window
 * of thousands of operations.
 */
#ifndef CARREL_BENCH_PGCPU_H
#define CARREL_BENCH_PGCPU_H

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct pgcpu_proc {
    long pid;
    unsigned long long started; /* field 22: clock ticks after boot */
    unsigned long long ticks;   /* utime + stime */
} pgcpu_proc_t;

typedef struct pgcpu {
    long postmaster;     /* 0: not measuring */
    pgcpu_proc_t *procs; /* the children at the first sample */
    size_t n, cap;
} pgcpu_t;

/* The postmaster's pid from -C: ARG itself when it is a number, else the
 * first line of ARG/postmaster.pid (ARG a data directory). -1 (said why). */
static inline long pgcpu_postmaster(const char *arg)
{
    char *end;
    long pid = strtol(arg, &end, 10);
    if (*arg != '\0' && *end == '\0')
        return pid > 0 ? pid : -1;
    char path[4096];
    snprintf(path, sizeof(path), "%s/postmaster.pid", arg);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    pid = -1;
    if (fscanf(f, "%ld", &pid) != 1 || pid <= 0) {
        fprintf(stderr, "%s: no pid on its first line\n", path);
        pid = -1;
    }
    fclose(f);
    return pid;
}

/* One process's parent, start time and CPU ticks; -1 when it is gone or unreadable. */
static inline int pgcpu_read_stat(long pid, long *ppid, pgcpu_proc_t *p)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    /* The command name may hold spaces and parentheses: fields go on after the last ')'. */
    char *rest = strrchr(line, ')');
    unsigned long long utime, stime, started;
    if (rest == NULL ||
        sscanf(
            rest + 1,
            " %*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu",
            ppid, &utime, &stime, &started) != 4)
        return -1;
    p->pid = pid;
    p->started = started;
    p->ticks = utime + stime;
    return 0;
}

/*
 * Visit every child of the postmaster: fn(ctx, child). 0, or -1 when /proc
 * cannot be read.
 */
static inline int pgcpu_each_child(long postmaster, void (*fn)(void *, const pgcpu_proc_t *),
                                   void *ctx)
{
    DIR *d = opendir("/proc");
    if (d == NULL) {
        perror("/proc");
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        long ppid;
        pgcpu_proc_t p;
        if (pgcpu_read_stat(atol(e->d_name), &ppid, &p) == 0 && ppid == postmaster)
            fn(ctx, &p);
    }
    closedir(d);
    return 0;
}

static inline void pgcpu_keep(void *ctx, const pgcpu_proc_t *p)
{
    pgcpu_t *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        pgcpu_proc_t *grown = realloc(c->procs, c->cap * sizeof(*grown));
        if (grown == NULL)
            abort();
        c->procs = grown;
    }
    c->procs[c->n++] = *p;
}

/* The window starts: remember every child's ticks. 0, or -1 (said why). */
static inline int pgcpu_start(pgcpu_t *c)
{
    c->n = 0;
    if (c->postmaster <= 0)
        return 0;
    long ppid;
    pgcpu_proc_t self;
    if (pgcpu_read_stat(c->postmaster, &ppid, &self) != 0) {
        fprintf(stderr, "pgcpu: no process %ld in /proc\n", c->postmaster);
        return -1;
    }
    return pgcpu_each_child(c->postmaster, pgcpu_keep, c);
}

typedef struct pgcpu_sum {
    const pgcpu_t *start;
    unsigned long long ticks;
} pgcpu_sum_t;

static inline void pgcpu_add(void *ctx, const pgcpu_proc_t *p)
{
    pgcpu_sum_t *s = ctx;
    unsigned long long before = 0;
    for (size_t i = 0; i < s->start->n; i++)
        if (s->start->procs[i].pid == p->pid && s->start->procs[i].started == p->started)
            before = s->start->procs[i].ticks;
    s->ticks += p->ticks >= before ? p->ticks - before : 0;
}

/* The window ends: the children's CPU since pgcpu_start, in ms; -1 when not
 * measuring or /proc could not be read. */
static inline double pgcpu_end_ms(pgcpu_t *c)
{
    if (c->postmaster <= 0)
        return -1;
    pgcpu_sum_t s = {.start = c};
    if (pgcpu_each_child(c->postmaster, pgcpu_add, &s) != 0)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (double)s.ticks * 1000.0 / (double)(hz > 0 ? hz : 100);
}

static inline void pgcpu_free(pgcpu_t *c)
{
    free(c->procs);
    c->procs = NULL;
    c->n = c->cap = 0;
}

#endif
