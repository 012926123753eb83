/*
 * jobtimer: a periodic SQL job, one run at a time (see jobtimer.h).
 */
#include "jobtimer.h"

#include <stdlib.h>
#include <uv.h>

#include "log.h"
#include "server.h"
#include "util.h"

struct jobtimer {
    server_t *srv;
    jobtimer_def_t def;
    uv_timer_t timer;
    bool running;  /* a run is out (one at a time) */
    bool stopping; /* no new run */
    bool aborted;  /* shutdown no longer waits for the run out */
    bool closing;  /* the timer is closing; free once closed and no run is out */
    bool timer_open;
    bool trouble; /* a failure said once, until a run succeeds */
    void (*closed)(void *arg);
    void *closed_arg;
};

static void jobtimer_maybe_free(jobtimer_t *j)
{
    if (!j->closing || j->timer_open || j->running)
        return;
    void (*closed)(void *arg) = j->closed;
    void *arg = j->closed_arg;
    free(j);
    if (closed)
        closed(arg);
}

static void jobtimer_timer_closed(uv_handle_t *h)
{
    jobtimer_t *j = h->data;
    j->timer_open = false;
    jobtimer_maybe_free(j);
}

static void jobtimer_run(jobtimer_t *j);

static void jobtimer_done(const db_result_t *r, void *arg)
{
    jobtimer_t *j = arg;
    db_result_t fit;
    r = db_fit(r, j->def.ncols, &fit);
    j->running = false;
    bool again = false;
    if (r->status != DB_OK) {
        if (!j->trouble && !j->stopping)
            log_warn(0, "%s: %s failed: %s (%s); it runs again in %ld s", j->def.module, j->def.job,
                     r->message ? r->message : "database unavailable",
                     r->sqlstate ? r->sqlstate : "-", j->def.interval_s);
        j->trouble = true;
    } else {
        if (j->trouble)
            log_info(0, "%s: %s runs again", j->def.module, j->def.job);
        j->trouble = false;
        again = j->def.done(j->def.arg, r->res) && !j->stopping;
    }
    /* A full batch: more wait; the next one is queued now, behind whatever the desks
     * queued meanwhile (the queue is first come, first served). */
    if (again)
        jobtimer_run(j);
    if (j->stopping && !j->running && !j->aborted && !j->closing)
        server_jobs_gone(j->srv);
    jobtimer_maybe_free(j);
}

static void jobtimer_run(jobtimer_t *j)
{
    const jobtimer_def_t *d = &j->def;
    int rc =
        d->long_statement
            ? db_exec_long(j->srv->db, d->stmt, d->nparams, d->values, NULL, NULL, jobtimer_done, j)
            : db_exec(j->srv->db, d->stmt, d->nparams, d->values, NULL, NULL, jobtimer_done, j);
    if (rc != 0) {
        if (!j->trouble && rc != DB_EXEC_CLOSING)
            log_warn(0, "%s: %s did not start (%s)", d->module, d->job,
                     rc == DB_EXEC_OVERLOADED ? "overloaded" : "database unavailable");
        j->trouble = rc != DB_EXEC_CLOSING;
        return;
    }
    j->running = true;
}

static void jobtimer_tick(uv_timer_t *t)
{
    jobtimer_t *j = t->data;
    if (j->stopping || j->running)
        return; /* one run at a time */
    if (j->def.tick)
        j->def.tick(j->def.arg);
    jobtimer_run(j);
}

jobtimer_t *jobtimer_start(server_t *srv, const jobtimer_def_t *def)
{
    jobtimer_t *j = util_xcalloc(1, sizeof(*j));
    j->srv = srv;
    j->def = *def;
    uv_timer_init(srv->loop, &j->timer);
    j->timer.data = j;
    j->timer_open = true;
    if (def->interval_s > 0) {
        uint64_t every = (uint64_t)def->interval_s * 1000;
        uv_timer_start(&j->timer, jobtimer_tick, every, every);
    }
    return j;
}

void jobtimer_stop(jobtimer_t *j)
{
    if (j == NULL || j->stopping)
        return;
    j->stopping = true;
    uv_timer_stop(&j->timer);
}

bool jobtimer_abort(jobtimer_t *j)
{
    if (j == NULL)
        return false;
    jobtimer_stop(j);
    if (j->aborted || !j->running)
        return false;
    log_warn(0, "%s: shutdown timeout: not waiting for %s", j->def.module, j->def.job);
    j->aborted = true;
    server_jobs_gone(j->srv);
    return true;
}

bool jobtimer_gone(const jobtimer_t *j)
{
    return j == NULL || (j->stopping && (!j->running || j->aborted));
}

bool jobtimer_running(const jobtimer_t *j)
{
    return j != NULL && j->running;
}

void jobtimer_close(jobtimer_t *j, void (*closed)(void *arg), void *arg)
{
    if (j == NULL || j->closing)
        return;
    jobtimer_stop(j);
    j->closing = true;
    j->closed = closed;
    j->closed_arg = arg;
    uv_close((uv_handle_t *)&j->timer, jobtimer_timer_closed);
}
