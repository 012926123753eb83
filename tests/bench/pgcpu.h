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
 * window counts whole. A child that exits inside the window (an autovacuum
 * or parallel worker, a backend that reconnects) is no longer in /proc at
 * the end, but the postmaster has reaped it, and a process's cutime + cstime
 * (fields 16-17) are the whole CPU of its reaped children: so the total is
 *   sum over the children alive at the end of (end - start, or end if born since)
 *   + the postmaster's cutime + cstime at the end less at the start
 *   - the start ticks of the children alive at the start and gone at the end.
 * The postmaster is read before and after each scan of the children, and
 * the scan is made again if it reaped a child in between. Autovacuum is real
 * cost, but noise against per-operation figures: scripts/bench says how many
 * autovacuum runs each measured window saw. The resolution is one clock
 * tick (10 ms) per process, small against a window of thousands of
 * operations. The postmaster's own CPU (it forks the backends) is not counted.
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
    unsigned long long reaped;  /* cutime + cstime: its reaped children's whole CPU */
    int seen;                   /* pgcpu_end_ms: still there at the end */
} pgcpu_proc_t;

typedef struct pgcpu {
    long postmaster;     /* 0: not measuring */
    pgcpu_proc_t self;   /* the postmaster at the first sample */
    pgcpu_proc_t *procs; /* the children at the first sample */
    size_t n, cap;
} pgcpu_t;

/* How often a scan is made again because the postmaster reaped a child during it. */
#define PGCPU_SCAN_TRIES 5

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
    long long cutime, cstime;
    if (rest == NULL ||
        sscanf(rest + 1,
               " %*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld %*d %*d %*d %*d "
               "%llu",
               ppid, &utime, &stime, &cutime, &cstime, &started) != 6)
        return -1;
    p->pid = pid;
    p->started = started;
    p->ticks = utime + stime;
    p->reaped = (unsigned long long)(cutime > 0 ? cutime : 0) +
                (unsigned long long)(cstime > 0 ? cstime : 0);
    p->seen = 0;
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

/* The postmaster now, if it is still the process of the first sample
 * (start 0: any). 0, or -1 (said why). */
static inline int pgcpu_self(const pgcpu_t *c, unsigned long long started, pgcpu_proc_t *self)
{
    long ppid;
    if (pgcpu_read_stat(c->postmaster, &ppid, self) != 0 ||
        (started != 0 && self->started != started)) {
        fprintf(stderr, "pgcpu: the postmaster (pid %ld) is gone\n", c->postmaster);
        return -1;
    }
    return 0;
}

/*
 * Scan the children with fn, between two reads of the postmaster that agree
 * on its reaped CPU (a child reaped during the scan would be counted twice
 * or not at all); *self gets the postmaster. reset(ctx) runs before each
 * try. 0, or -1 (said why).
 */
static inline int pgcpu_scan(const pgcpu_t *c, unsigned long long started, pgcpu_proc_t *self,
                             void (*reset)(void *), void (*fn)(void *, const pgcpu_proc_t *),
                             void *ctx)
{
    for (int i = 0; i < PGCPU_SCAN_TRIES; i++) {
        pgcpu_proc_t after;
        reset(ctx);
        if (pgcpu_self(c, started, self) != 0 || pgcpu_each_child(c->postmaster, fn, ctx) != 0 ||
            pgcpu_self(c, started, &after) != 0)
            return -1;
        if (after.reaped == self->reaped)
            return 0;
    }
    fprintf(stderr, "pgcpu: children kept exiting during %d scans\n", PGCPU_SCAN_TRIES);
    return -1;
}

static inline void pgcpu_forget(void *ctx)
{
    ((pgcpu_t *)ctx)->n = 0;
}

/* The window starts: remember the postmaster's reaped CPU and every child's
 * ticks. 0, or -1 (said why). */
static inline int pgcpu_start(pgcpu_t *c)
{
    c->n = 0;
    if (c->postmaster <= 0)
        return 0;
    return pgcpu_scan(c, 0, &c->self, pgcpu_forget, pgcpu_keep, c);
}

typedef struct pgcpu_sum {
    pgcpu_t *start;
    unsigned long long ticks;
} pgcpu_sum_t;

static inline void pgcpu_sum_reset(void *ctx)
{
    pgcpu_sum_t *s = ctx;
    s->ticks = 0;
    for (size_t i = 0; i < s->start->n; i++)
        s->start->procs[i].seen = 0;
}

static inline void pgcpu_add(void *ctx, const pgcpu_proc_t *p)
{
    pgcpu_sum_t *s = ctx;
    unsigned long long before = 0;
    for (size_t i = 0; i < s->start->n; i++) {
        pgcpu_proc_t *was = &s->start->procs[i];
        if (was->pid == p->pid && was->started == p->started) {
            before = was->ticks;
            was->seen = 1;
        }
    }
    s->ticks += p->ticks >= before ? p->ticks - before : 0;
}

/* The window ends: PostgreSQL's CPU since pgcpu_start (see the top), in ms;
 * -1 when not measuring, /proc could not be read or the postmaster is not
 * the one of the start (the run must then fail: no figure is better than a
 * wrong one). */
static inline double pgcpu_end_ms(pgcpu_t *c)
{
    if (c->postmaster <= 0 || c->self.started == 0)
        return -1;
    pgcpu_sum_t s = {.start = c};
    pgcpu_proc_t self;
    if (pgcpu_scan(c, c->self.started, &self, pgcpu_sum_reset, pgcpu_add, &s) != 0)
        return -1;
    /* The children gone since the start: the postmaster reaped them whole. */
    unsigned long long ticks =
        s.ticks + (self.reaped >= c->self.reaped ? self.reaped - c->self.reaped : 0);
    for (size_t i = 0; i < c->n; i++)
        if (!c->procs[i].seen)
            ticks = ticks >= c->procs[i].ticks ? ticks - c->procs[i].ticks : 0;
    long hz = sysconf(_SC_CLK_TCK);
    return (double)ticks * 1000.0 / (double)(hz > 0 ? hz : 100);
}

static inline void pgcpu_free(pgcpu_t *c)
{
    free(c->procs);
    c->procs = NULL;
    c->n = c->cap = 0;
}

#endif
