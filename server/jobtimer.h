/*
 * jobtimer: a periodic SQL job on the primary, one run at a time, on the
 * loop (never blocking), stopped cleanly at shutdown. The rooms timer
 * (rooms_tick()) and the statistics rollup (stats_rollup_run()) are two.
 *
 * Every interval_s (0: never) a tick runs the statement unless a run is
 * still out; done() sees each successful result and may ask for another run
 * at once (a batch that came back full), queued behind whatever the desks
 * queued meanwhile. A failure is logged once ("MODULE: JOB failed: ...")
 * until a run succeeds again ("MODULE: JOB runs again").
 *
 * Shutdown as the other jobs: jobtimer_stop() stops the timer;
 * jobtimer_gone() is true once no run is out (server_jobs_gone() is called
 * when the last one comes back), jobtimer_abort() stops waiting for it;
 * jobtimer_close() closes the timer and frees the job once nothing is out,
 * then calls its closed callback.
 */
#ifndef CARREL_JOBTIMER_H
#define CARREL_JOBTIMER_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "db.h"

typedef struct server server_t;
typedef struct jobtimer jobtimer_t;

typedef struct jobtimer_def {
    const char *module;    /* the log lines' prefix: "rooms" */
    const char *job;       /* in the log lines: "the rooms job" */
    const db_stmt_t *stmt; /* registered by its module */
    int nparams;           /* values must outlive the job */
    const char *const *values;
    int ncols;               /* the result's columns (db_fit) */
    bool long_statement;     /* db_exec_long: its time grows with the library */
    long interval_s;         /* 0: the timer never runs */
    void (*tick)(void *arg); /* a tick starts a run (may be NULL) */
    /* A run succeeded: report it; true runs the job again at once (not once stopping). */
    bool (*done)(void *arg, const PGresult *res);
    void *arg;
} jobtimer_def_t;

/* Start the timer (after the primary pool); def is copied. */
jobtimer_t *jobtimer_start(server_t *srv, const jobtimer_def_t *def);
void jobtimer_stop(jobtimer_t *j);
/* Stop waiting for a run out: says so and returns true, once; false if none was out. */
bool jobtimer_abort(jobtimer_t *j);
/* True once stopped and no run is out (or it was aborted). */
bool jobtimer_gone(const jobtimer_t *j);
/* True while a run is out. */
bool jobtimer_running(const jobtimer_t *j);
/* After jobtimer_stop: close the timer, free j once nothing is out, then closed(arg)
 * (closed may be NULL). j must not be used after this call. */
void jobtimer_close(jobtimer_t *j, void (*closed)(void *arg), void *arg);

#endif
