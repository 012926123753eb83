#include "db.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"

#define DB_MAX_STATEMENTS 512

static const db_stmt_t *db_statements[DB_MAX_STATEMENTS];
static int db_statement_count;

typedef enum {
    DBC_DOWN = 0,   /* no connection; the reconnect timer will try */
    DBC_CONNECTING, /* PQconnectPoll in progress */
    DBC_SETUP,      /* setting the session's timeouts and logging */
    DBC_PREPARING,  /* preparing registered statements */
    DBC_IDLE,
    DBC_BUSY,
} db_conn_state_t;

typedef struct db_job {
    struct db_job *next;
    const db_stmt_t *stmt;
    int nparams;
    char **values;
    int *lengths;
    int *formats;
    db_done_cb cb;
    void *arg;
    int attempts;
    bool short_lane;    /* takes no row lock: may use the reserved connections */
    bool long_running;  /* runs under long_statement_timeout_ms */
    uint64_t queued_at; /* uv_now() when db_exec queued it */
} db_job_t;

/* The two lanes (see db.h): FIFO queues of jobs waiting for a connection. */
enum { DB_LANE_WRITE = 0, DB_LANE_SHORT = 1, DB_LANES = 2 };

typedef struct db_queue {
    db_job_t *head, *tail;
} db_queue_t;

typedef struct db_conn {
    db_pool_t *pool;
    int index;
    db_conn_state_t state;
    PGconn *pg;
    uv_poll_t *poll; /* separately allocated: replaced when the socket changes */
    int poll_fd;
    int prepare_next;
    int setup_step; /* DBC_SETUP: which db_setup_send step is running */
    db_job_t *job;
    PGresult *result;         /* the result being collected for job (or a prepare) */
    int statement_timeout_ms; /* the session's statement_timeout now */
    int lock_timeout_ms;      /* the session's lock_timeout now (a reload may change it) */
    bool setting_timeout;     /* DBC_BUSY: a set_config for job runs before it */
    int job_timeout_ms;       /* DBC_BUSY: the statement_timeout job runs under (a reload
                                 may change the pool's limits meanwhile) */
    uint64_t since;           /* uv_now() when it began connecting, or began its job */
} db_conn_t;

struct db_pool {
    uv_loop_t *loop;
    char *conninfo;
    int size;
    int max_queue;
    int reconnect_ms;
    int retry_limit;
    db_conn_t *conns;
    db_queue_t lanes[DB_LANES];
    int queued; /* in both lanes */
    db_limits_t limits;
    uv_timer_t reconnect_timer;
    uv_timer_t queue_timer;   /* runs while jobs wait: fails those past queue_timeout_ms */
    db_log_limit_t error_log; /* unexpected database errors we log */
    bool quiet_warned;        /* said once that the server will log refusals */
    bool was_available;       /* for logging transitions once */
    bool closing;
    int open_handles;
    void (*on_closed)(void *);
    void *on_closed_arg;
    void (*on_fatal)(void *, const char *);
    void *on_fatal_arg;
    void (*on_write_done)(void *); /* db_pool_on_write_done */
    void *write_done_arg;
    bool fatal;                    /* a statement cannot be prepared: the pool refuses all work */
    const db_stmt_t *const *stmts; /* db_pool_set_statements: prepare only these */
    int nstmts;
    const char *label; /* "database", or what db_pool_set_label named the pool */
    /* With deadline_margin_ms: drops the connections that hang. */
    uv_timer_t deadline_timer;
};

static void db_conn_connect(db_conn_t *c);
static void db_conn_fail(db_conn_t *c, const char *why);
static void db_pool_dispatch(db_pool_t *pool);
static void db_poll_cb(uv_poll_t *handle, int status, int events);
static void db_reconnect_cb(uv_timer_t *t);

const db_result_t *db_fit(const db_result_t *r, int ncols, db_result_t *scratch)
{
    if (r->status != DB_OK || PQnfields(r->res) == ncols)
        return r;
    log_error(0, "a result has %d columns where the code reads %d: the SQL and the code disagree",
              PQnfields(r->res), ncols);
    *scratch = (db_result_t){.status = DB_QUERY_ERROR,
                             .sqlstate = "XX000",
                             .message = "the result does not have the columns the code reads"};
    return scratch;
}

void db_stmt_register(const db_stmt_t *stmt)
{
    for (int i = 0; i < db_statement_count; i++)
        if (db_statements[i] == stmt)
            return;
    if (db_statement_count == DB_MAX_STATEMENTS) {
        log_error(0, "too many prepared statements; raise DB_MAX_STATEMENTS");
        abort();
    }
    db_statements[db_statement_count++] = stmt;
}

/* ---- pool bookkeeping ---- */

static void db_pool_maybe_free(db_pool_t *pool)
{
    if (!pool->closing || pool->open_handles > 0)
        return;
    void (*cb)(void *) = pool->on_closed;
    void *arg = pool->on_closed_arg;
    free(pool->conns);
    free(pool->conninfo);
    free(pool);
    if (cb)
        cb(arg);
}

static void db_handle_closed(uv_handle_t *h)
{
    db_pool_t *pool = h->data;
    if ((uv_handle_t *)&pool->reconnect_timer != h && (uv_handle_t *)&pool->queue_timer != h &&
        (uv_handle_t *)&pool->deadline_timer != h)
        free(h);
    CHECK(pool->open_handles > 0);
    pool->open_handles--;
    db_pool_maybe_free(pool);
}

void db_pool_counts(const db_pool_t *pool, db_pool_counts_t *out)
{
    *out = (db_pool_counts_t){0};
    for (int i = 0; i < pool->size; i++) {
        switch (pool->conns[i].state) {
        case DBC_BUSY:
            out->busy++;
            break;
        case DBC_IDLE:
            out->idle++;
            break;
        case DBC_DOWN:
            out->down++;
            break;
        case DBC_CONNECTING:
        case DBC_SETUP:
        case DBC_PREPARING:
            out->connecting++;
            break;
        }
    }
    for (int lane = 0; lane < DB_LANES; lane++) {
        int n = 0;
        for (const db_job_t *j = pool->lanes[lane].head; j; j = j->next)
            n++;
        if (lane == DB_LANE_WRITE)
            out->waiting_write = n;
        else
            out->waiting_short = n;
    }
}

bool db_pool_available(const db_pool_t *pool)
{
    if (pool->fatal)
        return false;
    for (int i = 0; i < pool->size; i++) {
        db_conn_state_t s = pool->conns[i].state;
        if (s == DBC_IDLE || s == DBC_BUSY || s == DBC_PREPARING || s == DBC_SETUP)
            return true;
    }
    return false;
}

static void db_job_free(db_job_t *job)
{
    free(job);
}

static void db_job_finish(db_job_t *job, const db_result_t *r)
{
    job->cb(r, job->arg);
    db_job_free(job);
}

static void db_job_unavailable(db_job_t *job, const char *why)
{
    db_result_t r = {.status = DB_UNAVAILABLE, .message = why};
    db_job_finish(job, &r);
}

static void db_queue_timer_cb(uv_timer_t *t);

/* Queue a job in its lane; `front` for one given back (a retry, a broken send). */
static void db_queue_push(db_pool_t *pool, db_job_t *job, bool front)
{
    db_queue_t *q = &pool->lanes[job->short_lane ? DB_LANE_SHORT : DB_LANE_WRITE];
    if (front) {
        job->next = q->head;
        q->head = job;
        if (q->tail == NULL)
            q->tail = job;
    } else {
        job->next = NULL;
        if (q->tail)
            q->tail->next = job;
        else
            q->head = job;
        q->tail = job;
    }
    pool->queued++;
}

/* The deadline check runs only while something waits (after a dispatch). */
static void db_queue_watch(db_pool_t *pool)
{
    if (pool->queued == 0 || pool->limits.queue_timeout_ms <= 0 || pool->closing ||
        uv_is_active((uv_handle_t *)&pool->queue_timer))
        return;
    uint64_t tick = (uint64_t)pool->limits.queue_timeout_ms / 4;
    tick = tick < 20 ? 20 : tick > 1000 ? 1000 : tick;
    uv_timer_start(&pool->queue_timer, db_queue_timer_cb, tick, tick);
}

static db_job_t *db_queue_pop(db_pool_t *pool, int lane)
{
    db_queue_t *q = &pool->lanes[lane];
    db_job_t *job = q->head;
    if (job) {
        CHECK(pool->queued > 0); /* the count covers both lanes */
        q->head = job->next;
        if (q->head == NULL)
            q->tail = NULL;
        pool->queued--;
        job->next = NULL;
    }
    return job;
}

/* Fail everything waiting: called when the last connection goes down. */
static void db_queue_fail_all(db_pool_t *pool, const char *why)
{
    for (int lane = 0; lane < DB_LANES; lane++) {
        db_job_t *job;
        while ((job = db_queue_pop(pool, lane)) != NULL)
            db_job_unavailable(job, why);
    }
}

/*
 * Fail the jobs that have waited queue_timeout_ms for a connection. They
 * never ran, so the caller may safely retry them. The expired jobs are taken
 * out first and called back after, since a callback may queue new work.
 */
static void db_queue_timer_cb(uv_timer_t *t)
{
    db_pool_t *pool = t->data;
    uint64_t now = uv_now(pool->loop);
    if (pool->limits.queue_timeout_ms <= 0) {
        /* A reload set "no limit": nothing waiting expires. */
        uv_timer_stop(t);
        return;
    }
    uint64_t limit = (uint64_t)pool->limits.queue_timeout_ms;
    db_job_t *expired = NULL, **expired_tail = &expired;
    for (int lane = 0; lane < DB_LANES; lane++) {
        db_queue_t *q = &pool->lanes[lane];
        db_job_t **link = &q->head, *prev = NULL;
        while (*link) {
            db_job_t *job = *link;
            if (now - job->queued_at < limit) {
                prev = job;
                link = &job->next;
                continue;
            }
            *link = job->next;
            if (q->tail == job)
                q->tail = prev;
            CHECK(pool->queued > 0);
            pool->queued--;
            job->next = NULL;
            *expired_tail = job;
            expired_tail = &job->next;
        }
    }
    if (pool->queued == 0)
        uv_timer_stop(t);
    /* Logged before the answers go out, so the log already says why when a desk
     * hears "overloaded". */
    int n = 0;
    for (db_job_t *job = expired; job; job = job->next)
        n++;
    if (n > 0)
        log_warn(0,
                 "%d database job(s) (first %s) waited over %d ms for a connection; answered "
                 "unavailable",
                 n, expired->stmt->name, pool->limits.queue_timeout_ms);
    while (expired) {
        db_job_t *job = expired;
        expired = job->next;
        db_result_t r = {.status = DB_UNAVAILABLE,
                         .message = "waited too long for a database connection",
                         .queue_timeout = true};
        db_job_finish(job, &r);
    }
}

static void db_note_availability(db_pool_t *pool)
{
    bool now = db_pool_available(pool);
    if (now && !pool->was_available)
        log_info(0, "%s connection established", pool->label);
    else if (!now && pool->was_available)
        log_warn(0, "%s unavailable: requests fail with 'unavailable' until it returns",
                 pool->label);
    pool->was_available = now;
}

/* ---- socket watching ---- */

static void db_conn_unwatch(db_conn_t *c)
{
    if (c->poll == NULL)
        return;
    uv_poll_stop(c->poll);
    uv_close((uv_handle_t *)c->poll, db_handle_closed);
    c->poll = NULL;
    c->poll_fd = -1;
}

/* Watch PQsocket for `events`, replacing the handle if libpq changed socket. */
static int db_conn_watch(db_conn_t *c, int events)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -1;
    if (c->poll && c->poll_fd != fd)
        db_conn_unwatch(c);
    if (c->poll == NULL) {
        c->poll = malloc(sizeof(*c->poll));
        if (c->poll == NULL)
            return -1;
        if (uv_poll_init(c->pool->loop, c->poll, fd) != 0) {
            free(c->poll);
            c->poll = NULL;
            return -1;
        }
        c->poll->data = c->pool;
        c->pool->open_handles++;
        c->poll_fd = fd;
    }
    /* The handle's data is the pool (for close accounting); find the conn by fd. */
    return uv_poll_start(c->poll, events, db_poll_cb);
}

static db_conn_t *db_conn_for_handle(db_pool_t *pool, uv_poll_t *h)
{
    for (int i = 0; i < pool->size; i++)
        if (pool->conns[i].poll == h)
            return &pool->conns[i];
    return NULL;
}

/* ---- connection lifecycle ---- */

static void db_conn_reset(db_conn_t *c)
{
    db_conn_unwatch(c);
    if (c->result) {
        PQclear(c->result);
        c->result = NULL;
    }
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->state = DBC_DOWN;
}

static void db_conn_fail(db_conn_t *c, const char *why)
{
    db_pool_t *pool = c->pool;
    db_job_t *job = c->job;
    c->job = NULL;
    bool was_up = c->state != DBC_CONNECTING;
    if (was_up || pool->was_available)
        log_warn(0, "%s connection %d lost: %s", pool->label, c->index, why);
    db_conn_reset(c);
    if (job)
        db_job_unavailable(job, "the database connection was lost");
    db_note_availability(pool);
    if (!db_pool_available(pool))
        db_queue_fail_all(pool, "the database is unavailable");
    if (!pool->closing && !uv_is_active((uv_handle_t *)&pool->reconnect_timer))
        uv_timer_start(&pool->reconnect_timer, db_reconnect_cb, (uint64_t)pool->reconnect_ms,
                       (uint64_t)pool->reconnect_ms);
}

/* The statements prepared on the pool's connections: its own, or every registered one. */
static int db_pool_stmt_count(const db_pool_t *pool)
{
    return pool->stmts ? pool->nstmts : db_statement_count;
}

static const db_stmt_t *db_pool_stmt(const db_pool_t *pool, int i)
{
    return pool->stmts ? pool->stmts[i] : db_statements[i];
}

static void db_send_next_prepare(db_conn_t *c)
{
    while (c->prepare_next < db_pool_stmt_count(c->pool)) {
        const db_stmt_t *st = db_pool_stmt(c->pool, c->prepare_next);
        if (PQsendPrepare(c->pg, st->name, st->sql, 0, NULL) != 1) {
            db_conn_fail(c, PQerrorMessage(c->pg));
            return;
        }
        int f = PQflush(c->pg);
        if (f < 0) {
            db_conn_fail(c, PQerrorMessage(c->pg));
            return;
        }
        db_conn_watch(c, UV_READABLE | (f == 1 ? UV_WRITABLE : 0));
        return;
    }
    c->state = DBC_IDLE;
    db_conn_watch(c, UV_READABLE);
    db_note_availability(c->pool);
    db_pool_dispatch(c->pool);
}

/* After the session is set up: prepare statements. */
static void db_conn_after_setup(db_conn_t *c)
{
    c->state = DBC_PREPARING;
    c->prepare_next = 0;
    db_send_next_prepare(c);
}

/*
 * Session setup, one statement per step, before anything else runs on the
 * connection:
 *   0. lock_timeout and statement_timeout, so that no statement waits
 *      unbounded for a row another session holds (a failure fails the
 *      connection: the values are ours and always valid);
 *   1. with quiet_errors, log_min_messages = log: the errors our functions
 *      raise are answers to the desk (CR4xx refusals), which PostgreSQL would
 *      otherwise log with their statement, each time. We log the unexpected
 *      ones ourselves (db_log_unexpected). Setting it needs
 *      `GRANT SET ON PARAMETER log_min_messages` (scripts/pg-cluster,
 *      sql/migrations/011): without it we warn once and go on.
 * Returns true when a step was sent, false when setup is complete.
 */
static bool db_setup_send(db_conn_t *c)
{
    db_pool_t *pool = c->pool;
    int rc = 1;
    if (c->setup_step == 0) {
        char lock[16], statement[16];
        snprintf(lock, sizeof(lock), "%d", pool->limits.lock_timeout_ms);
        snprintf(statement, sizeof(statement), "%d", pool->limits.statement_timeout_ms);
        const char *values[2] = {lock, statement};
        rc = PQsendQueryParams(c->pg,
                               "SELECT set_config('lock_timeout', $1, false),"
                               "       set_config('statement_timeout', $2, false)",
                               2, NULL, values, NULL, NULL, 0);
    } else if (c->setup_step == 1 && pool->limits.quiet_errors) {
        rc = PQsendQuery(c->pg, "SELECT set_config('log_min_messages', 'log', false)");
    } else {
        return false;
    }
    int f;
    if (rc != 1 || (f = PQflush(c->pg)) < 0) {
        db_conn_fail(c, PQerrorMessage(c->pg));
        return true;
    }
    db_conn_watch(c, UV_READABLE | (f == 1 ? UV_WRITABLE : 0));
    return true;
}

/* One setup step is complete: check it and go on to the next. */
static void db_setup_done(db_conn_t *c, PGresult *res)
{
    db_pool_t *pool = c->pool;
    bool ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok && c->setup_step == 0) {
        char why[300];
        snprintf(why, sizeof(why), "cannot set the session's timeouts: %s",
                 res ? PQresultErrorMessage(res) : "no result");
        PQclear(res);
        db_conn_fail(c, why);
        return;
    }
    if (!ok && !pool->quiet_warned) {
        pool->quiet_warned = true;
        log_warn(0,
                 "cannot set log_min_messages on database sessions (%s); PostgreSQL will log "
                 "every refusal as an ERROR. Grant it once as a superuser: GRANT SET ON "
                 "PARAMETER log_min_messages TO <carreld's role>",
                 res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "no result");
    }
    PQclear(res);
    c->setup_step++;
    if (!db_setup_send(c))
        db_conn_after_setup(c);
}

static void db_conn_connected(db_conn_t *c)
{
    if (PQsetnonblocking(c->pg, 1) != 0) {
        db_conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    c->state = DBC_SETUP;
    c->setup_step = 0;
    c->statement_timeout_ms = c->pool->limits.statement_timeout_ms; /* set by step 0 */
    c->lock_timeout_ms = c->pool->limits.lock_timeout_ms;
    c->setting_timeout = false;
    if (!db_setup_send(c))
        db_conn_after_setup(c);
}

/*
 * Start connecting. With a deadline (a pool whose server may hang), the
 * connection asks for TCP keepalives and a tcp_user_timeout, so that a cut
 * network shows as an error rather than silence; they come before the
 * conninfo (expanded from dbname), so the conninfo's own settings win.
 */
static PGconn *db_conn_start(const db_pool_t *pool)
{
    if (pool->limits.deadline_margin_ms <= 0)
        return PQconnectStart(pool->conninfo);
    char user_timeout[16];
    snprintf(user_timeout, sizeof(user_timeout), "%d",
             pool->limits.statement_timeout_ms + pool->limits.deadline_margin_ms);
    const char *const keys[] = {
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "dbname",
        NULL,
    };
    const char *const values[] = {"1", "10", "5", "3", user_timeout, pool->conninfo, NULL};
    return PQconnectStartParams(keys, values, 1);
}

static void db_conn_connect(db_conn_t *c)
{
    c->since = uv_now(c->pool->loop);
    c->pg = db_conn_start(c->pool);
    if (c->pg == NULL) {
        c->state = DBC_DOWN;
        return;
    }
    c->state = DBC_CONNECTING;
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        db_conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    /* libpq's contract: behave as if PQconnectPoll had asked for writability. */
    if (db_conn_watch(c, UV_WRITABLE) != 0)
        db_conn_fail(c, "cannot watch the database socket");
}

static void db_conn_step_connect(db_conn_t *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (db_conn_watch(c, UV_READABLE) != 0)
            db_conn_fail(c, "cannot watch the database socket");
        break;
    case PGRES_POLLING_WRITING:
        if (db_conn_watch(c, UV_WRITABLE) != 0)
            db_conn_fail(c, "cannot watch the database socket");
        break;
    case PGRES_POLLING_OK:
        db_conn_connected(c);
        break;
    default:
        db_conn_fail(c, PQerrorMessage(c->pg));
        break;
    }
}

/* ---- running statements ---- */

static bool db_is_transient(const char *sqlstate)
{
    return sqlstate && (!strcmp(sqlstate, "40001") || !strcmp(sqlstate, "40P01"));
}

/* The statement_timeout a job runs under. */
static int db_job_timeout_ms(const db_pool_t *pool, const db_job_t *job)
{
    return job->long_running ? pool->limits.long_statement_timeout_ms
                             : pool->limits.statement_timeout_ms;
}

/* A job could not be sent on c: it never ran, so another connection may take it. */
static void db_conn_send_failed(db_conn_t *c)
{
    db_job_t *job = c->job;
    c->job = NULL;
    c->setting_timeout = false;
    db_queue_push(c->pool, job, true);
    db_conn_fail(c, PQerrorMessage(c->pg));
}

/* Flush what was sent and watch for the answer (and for room to write more). */
static void db_conn_flush_sent(db_conn_t *c)
{
    int f = PQflush(c->pg);
    if (f < 0) {
        db_conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    db_conn_watch(c, UV_READABLE | (f == 1 ? UV_WRITABLE : 0));
}

static void db_conn_send_prepared(db_conn_t *c)
{
    db_job_t *job = c->job;
    job->attempts++;
    if (PQsendQueryPrepared(c->pg, job->stmt->name, job->nparams, (const char *const *)job->values,
                            job->lengths, job->formats, 0) != 1) {
        job->attempts--;
        db_conn_send_failed(c); /* the connection is unusable */
        return;
    }
    db_conn_flush_sent(c);
}

/*
 * Run job on c. The statement_timeout is a session setting read when a
 * statement starts (a SET inside a function cannot lengthen its own
 * statement), so a job that needs another one than the session has gets a
 * set_config first; the session keeps it until a job needs the other.
 */
static void db_conn_send_job(db_conn_t *c, db_job_t *job)
{
    /* One job at a time, on a connection that is up and idle. */
    CHECK(c->state == DBC_IDLE && c->job == NULL);
    c->job = job;
    c->state = DBC_BUSY;
    c->since = uv_now(c->pool->loop);
    int want = db_job_timeout_ms(c->pool, job);
    int lock = c->pool->limits.lock_timeout_ms;
    c->job_timeout_ms = want;
    if (want == c->statement_timeout_ms && lock == c->lock_timeout_ms) {
        db_conn_send_prepared(c);
        return;
    }
    /* The lock_timeout differs only after a reload changed it: set both at once. */
    char value[16], lock_value[16];
    snprintf(value, sizeof(value), "%d", want);
    snprintf(lock_value, sizeof(lock_value), "%d", lock);
    const char *values[2] = {value, lock_value};
    c->setting_timeout = true;
    if (PQsendQueryParams(c->pg,
                          "SELECT set_config('statement_timeout', $1, false),"
                          "       set_config('lock_timeout', $2, false)",
                          2, NULL, values, NULL, NULL, 0) != 1) {
        db_conn_send_failed(c);
        return;
    }
    db_conn_flush_sent(c);
}

/* The set_config before c->job is done: run the job, or give it to another connection. */
static void db_conn_timeout_set(db_conn_t *c, PGresult *res)
{
    bool ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    c->setting_timeout = false;
    if (!ok) {
        /* Our own valid value: only a broken session refuses it. */
        db_conn_send_failed(c);
        return;
    }
    c->statement_timeout_ms = c->job_timeout_ms; /* what was sent, whatever a reload did since */
    c->lock_timeout_ms = c->pool->limits.lock_timeout_ms;
    db_conn_send_prepared(c);
}

int db_write_limit(int usable, int reserved_short)
{
    int limit = usable - reserved_short;
    return limit < 1 ? 1 : limit; /* writes always get at least one */
}

/*
 * Give idle connections work: short jobs first (they are quick, and they are
 * what the reserved connections are for), then writes while fewer than
 * db_write_limit() connections run one. A write waiting for a row lock thus
 * never takes the last `reserved_short` connections.
 */
static void db_pool_dispatch(db_pool_t *pool)
{
    int usable = 0, writing = 0;
    for (int i = 0; i < pool->size; i++) {
        const db_conn_t *c = &pool->conns[i];
        if (c->state != DBC_IDLE && c->state != DBC_BUSY)
            continue;
        CHECK((c->state == DBC_BUSY) == (c->job != NULL)); /* busy means running a job */
        usable++;
        if (c->job && !c->job->short_lane)
            writing++;
    }
    CHECK(writing <= usable);
    int write_limit = db_write_limit(usable, pool->limits.reserved_short);
    for (int i = 0; i < pool->size && pool->queued > 0; i++) {
        db_conn_t *c = &pool->conns[i];
        if (c->state != DBC_IDLE)
            continue;
        db_job_t *job = db_queue_pop(pool, DB_LANE_SHORT);
        if (job == NULL && writing < write_limit) {
            job = db_queue_pop(pool, DB_LANE_WRITE);
            if (job)
                writing++;
        }
        if (job == NULL)
            break;
        db_conn_send_job(c, job);
    }
    db_queue_watch(pool);
}

bool db_prepare_error_is_fatal(const char *sqlstate)
{
    /* Class 42 (an undefined table, column or function, a type mismatch, no
     * privilege): the statement will never prepare on this schema. Anything
     * else (55P03 lock_timeout, 57014 statement_timeout, 53xxx, 08xxx) passes. */
    return sqlstate && sqlstate[0] == '4' && sqlstate[1] == '2';
}

bool db_sqlstate_is_refusal(const char *sqlstate)
{
    return sqlstate && sqlstate[0] == 'C' && sqlstate[1] == 'R';
}

bool db_log_limit_take(db_log_limit_t *l, uint64_t now_ms, int *report_suppressed)
{
    *report_suppressed = 0;
    if (!l->started || now_ms - l->window_start_ms >= l->window_ms) {
        *report_suppressed = l->suppressed;
        l->started = true;
        l->window_start_ms = now_ms;
        l->logged = 0;
        l->suppressed = 0;
    }
    if (l->logged >= l->burst) {
        l->suppressed++;
        return false;
    }
    l->logged++;
    return true;
}

/*
 * Log a database error that is not one of our refusals (CR4xx are answers:
 * the caller turns them into a reply and nobody needs a log line). Since our
 * sessions ask PostgreSQL not to log errors (quiet_errors), this is where
 * the unexpected ones stay visible; rate-limited so a storm cannot fill the
 * disk.
 */
static void db_log_unexpected(db_pool_t *pool, const db_job_t *job, const db_result_t *r)
{
    if (db_sqlstate_is_refusal(r->sqlstate))
        return;
    int dropped;
    bool take = db_log_limit_take(&pool->error_log, uv_now(pool->loop), &dropped);
    if (dropped > 0)
        log_warn(0, "%d more database errors were not logged", dropped);
    if (!take)
        return;
    log_warn(0, "database error in %s: %s %s%s%s", job->stmt->name, r->sqlstate,
             r->message ? r->message : "?", r->detail ? " DETAIL: " : "",
             r->detail ? r->detail : "");
}

/* A statement's results are complete (PQgetResult returned NULL). */
static void db_conn_complete(db_conn_t *c)
{
    db_pool_t *pool = c->pool;
    PGresult *res = c->result;
    c->result = NULL;

    if (c->state == DBC_SETUP) {
        db_setup_done(c, res);
        return;
    }
    if (c->state == DBC_PREPARING) {
        if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
            char why[512];
            snprintf(why, sizeof(why), "cannot prepare statement %s: %s",
                     db_pool_stmt(pool, c->prepare_next)->name,
                     res ? PQresultErrorMessage(res) : "no result");
            bool schema =
                res && db_prepare_error_is_fatal(PQresultErrorField(res, PG_DIAG_SQLSTATE));
            PQclear(res);
            if (!schema) {
                /* A table locked elsewhere past lock_timeout, a cancel, a broken
                 * connection: this connection tries again later. */
                db_conn_fail(c, why);
                return;
            }
            /* The code and the schema disagree: serving on would fail requests
             * one by one, so say so once and let the owner stop. */
            bool first = !pool->fatal;
            pool->fatal = true;
            db_conn_fail(c, why);
            if (first && pool->on_fatal)
                pool->on_fatal(pool->on_fatal_arg, why);
            return;
        }
        PQclear(res);
        c->prepare_next++;
        db_send_next_prepare(c);
        return;
    }

    if (c->setting_timeout && c->job) {
        db_conn_timeout_set(c, res);
        return;
    }
    db_job_t *job = c->job;
    CHECK(c->state == DBC_BUSY); /* db_conn_read completes nothing else */
    c->job = NULL;
    c->state = DBC_IDLE;
    if (job == NULL) {
        PQclear(res);
        return;
    }
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
        const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (db_is_transient(sqlstate) && job->attempts <= pool->retry_limit) {
            log_debug(0, "retrying %s after %s (attempt %d)", job->stmt->name, sqlstate,
                      job->attempts);
            PQclear(res);
            db_queue_push(pool, job, true);
            db_pool_dispatch(pool);
            return;
        }
        db_result_t r = {
            .status = DB_QUERY_ERROR,
            .sqlstate = sqlstate ? sqlstate : "XX000",
            .message = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL,
            .detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL,
            .hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL,
        };
        if (r.message == NULL)
            r.message = PQerrorMessage(c->pg);
        db_log_unexpected(pool, job, &r);
        db_job_finish(job, &r);
    } else {
        bool write = !job->short_lane;
        db_result_t r = {.status = DB_OK, .res = res};
        db_job_finish(job, &r);
        if (write && pool->on_write_done)
            pool->on_write_done(pool->write_done_arg);
    }
    PQclear(res);
    db_pool_dispatch(pool);
}

/* Read whatever arrived and finish the statement when libpq has it all. */
static void db_conn_read(db_conn_t *c)
{
    if (PQconsumeInput(c->pg) != 1) {
        db_conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->pg)) != NULL) /* none is asked for; freed if one comes */
        PQfreemem(n);
    if (c->state != DBC_BUSY && c->state != DBC_PREPARING && c->state != DBC_SETUP) {
        if (PQstatus(c->pg) != CONNECTION_OK)
            db_conn_fail(c, "connection closed by the server");
        return;
    }
    while (!PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (res == NULL) {
            db_conn_complete(c);
            return;
        }
        /* Keep the first error, otherwise the last result. */
        if (c->result && PQresultStatus(c->result) == PGRES_FATAL_ERROR) {
            PQclear(res);
        } else {
            PQclear(c->result);
            c->result = res;
        }
    }
}

static void db_poll_cb(uv_poll_t *handle, int status, int events)
{
    db_pool_t *pool = handle->data;
    db_conn_t *c = db_conn_for_handle(pool, handle);
    if (c == NULL)
        return;
    if (status < 0) {
        db_conn_fail(c, uv_strerror(status));
        return;
    }
    if (c->state == DBC_CONNECTING) {
        db_conn_step_connect(c);
        return;
    }
    if (events & UV_WRITABLE) {
        int f = PQflush(c->pg);
        if (f < 0) {
            db_conn_fail(c, PQerrorMessage(c->pg));
            return;
        }
        if (f == 0)
            db_conn_watch(c, UV_READABLE);
    }
    if ((events & UV_READABLE) && c->pg)
        db_conn_read(c);
}

static void db_reconnect_cb(uv_timer_t *t)
{
    db_pool_t *pool = t->data;
    if (pool->closing || pool->fatal)
        return;
    bool any_down = false;
    for (int i = 0; i < pool->size; i++) {
        db_conn_t *c = &pool->conns[i];
        if (c->state == DBC_DOWN) {
            db_conn_connect(c);
            if (c->state == DBC_DOWN)
                any_down = true;
        }
    }
    if (!any_down)
        uv_timer_stop(t);
}

/*
 * With deadline_margin_ms: drop a connection whose server stopped answering.
 * The server's own statement_timeout ends a statement it is running; this
 * catches what it cannot: a network cut mid-statement, a host that accepted
 * the connection and never answers. The job fails DB_UNAVAILABLE (the
 * connection was lost), so its caller answers at once instead of never, and
 * the reconnect timer makes the connection again.
 */
static void db_deadline_cb(uv_timer_t *t)
{
    db_pool_t *pool = t->data;
    if (pool->closing)
        return;
    uint64_t now = uv_now(pool->loop);
    uint64_t margin = (uint64_t)pool->limits.deadline_margin_ms;
    for (int i = 0; i < pool->size; i++) {
        db_conn_t *c = &pool->conns[i];
        uint64_t limit;
        if (c->state == DBC_CONNECTING || c->state == DBC_SETUP || c->state == DBC_PREPARING)
            limit = (uint64_t)pool->limits.statement_timeout_ms + margin;
        else if (c->state == DBC_BUSY && c->job && c->job_timeout_ms > 0)
            /* The timeout the statement was sent under, not the pool's current one. */
            limit = (uint64_t)c->job_timeout_ms + margin;
        else
            continue; /* idle, down, or a statement allowed to run as long as it takes */
        if (now - c->since <= limit)
            continue;
        char why[128];
        snprintf(why, sizeof(why), "no answer from the server within %llu ms (%s)",
                 (unsigned long long)limit,
                 c->state == DBC_BUSY ? "running a statement" : "connecting");
        db_conn_fail(c, why);
    }
}

bool db_is_recovery_conflict(const char *sqlstate, const char *message)
{
    if (sqlstate == NULL)
        return false;
    /* A read-only session on a standby takes part in no serializable write: its 40001
     * is a recovery conflict, whatever the message says. */
    if (!strcmp(sqlstate, "40001"))
        return true;
    return !strcmp(sqlstate, "57014") && message && strstr(message, "conflict with recovery");
}

/* Is h (one host of a comma-separated list, length n) a name that needs DNS? */
static bool db_host_is_name(const char *h, size_t n)
{
    if (n == 0 || h[0] == '/' || h[0] == '@')
        return false; /* the default, a Unix socket directory, an abstract socket */
    char buf[256];
    if (n >= sizeof(buf))
        return true;
    memcpy(buf, h, n);
    buf[n] = '\0';
    unsigned char addr[16];
    return inet_pton(AF_INET, buf, addr) != 1 && inet_pton(AF_INET6, buf, addr) != 1;
}

bool db_conninfo_needs_dns(const char *conninfo, char *why, size_t whylen)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (opts == NULL)
        return false;
    const char *host = NULL, *hostaddr = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!strcmp(o->keyword, "host"))
            host = o->val;
        else if (!strcmp(o->keyword, "hostaddr"))
            hostaddr = o->val;
    }
    bool name = false;
    if (host && !(hostaddr && hostaddr[0])) {
        for (const char *p = host; !name;) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            if (db_host_is_name(p, n)) {
                name = true;
                snprintf(why, whylen,
                         "the host '%.*s' is a name, which libpq would look up in DNS while "
                         "the server waits; add hostaddr=<its IP address> (host stays for TLS "
                         "verification)",
                         (int)(n > 100 ? 100 : n), p);
            }
            if (comma == NULL)
                break;
            p = comma + 1;
        }
    }
    PQconninfoFree(opts);
    return name;
}

/* ---- public API ---- */

db_pool_t *db_pool_new(uv_loop_t *loop, const char *conninfo, int size, int max_queue,
                       int reconnect_ms, int retry_limit)
{
    db_pool_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return NULL;
    pool->conns = calloc((size_t)size, sizeof(db_conn_t));
    pool->conninfo = strdup(conninfo);
    if (pool->conns == NULL || pool->conninfo == NULL) {
        free(pool->conns);
        free(pool->conninfo);
        free(pool);
        return NULL;
    }
    pool->loop = loop;
    pool->size = size;
    pool->max_queue = max_queue;
    pool->reconnect_ms = reconnect_ms;
    pool->retry_limit = retry_limit;
    for (int i = 0; i < size; i++) {
        pool->conns[i].pool = pool;
        pool->conns[i].index = i;
        pool->conns[i].poll_fd = -1;
    }
    uv_timer_init(loop, &pool->reconnect_timer);
    pool->reconnect_timer.data = pool;
    uv_timer_init(loop, &pool->queue_timer);
    pool->queue_timer.data = pool;
    uv_timer_init(loop, &pool->deadline_timer);
    pool->deadline_timer.data = pool;
    pool->open_handles = 3;
    pool->error_log.burst = 20;
    pool->error_log.window_ms = 60 * 1000;
    pool->label = "database";
    return pool;
}

void db_pool_set_limits(db_pool_t *pool, const db_limits_t *limits)
{
    bool changed = pool->limits.queue_timeout_ms != limits->queue_timeout_ms;
    pool->limits = *limits;
    /* A reload: the check's tick came from the old queue timeout. */
    if (changed && !pool->closing) {
        uv_timer_stop(&pool->queue_timer);
        db_queue_watch(pool);
    }
}

void db_pool_set_retry_limit(db_pool_t *pool, int retry_limit)
{
    pool->retry_limit = retry_limit;
}

void db_pool_set_statements(db_pool_t *pool, const db_stmt_t *const *stmts, int n)
{
    pool->stmts = stmts;
    pool->nstmts = n;
}

void db_pool_set_label(db_pool_t *pool, const char *label)
{
    pool->label = label;
}

void db_pool_on_fatal(db_pool_t *pool, void (*cb)(void *, const char *), void *arg)
{
    pool->on_fatal = cb;
    pool->on_fatal_arg = arg;
}

void db_pool_on_write_done(db_pool_t *pool, void (*cb)(void *arg), void *arg)
{
    pool->on_write_done = cb;
    pool->write_done_arg = arg;
}

void db_pool_start(db_pool_t *pool)
{
    pool->was_available = true; /* so the first failure is logged */
    for (int i = 0; i < pool->size; i++)
        db_conn_connect(&pool->conns[i]);
    uv_timer_start(&pool->reconnect_timer, db_reconnect_cb, (uint64_t)pool->reconnect_ms,
                   (uint64_t)pool->reconnect_ms);
    if (pool->limits.deadline_margin_ms > 0)
        uv_timer_start(&pool->deadline_timer, db_deadline_cb, 500, 500);
}

static int db_exec_in(db_pool_t *pool, bool short_lane, bool long_running, const db_stmt_t *stmt,
                      int nparams, const char *const *values, const int *lengths,
                      const int *formats, db_done_cb cb, void *arg)
{
    if (pool->closing)
        return DB_EXEC_CLOSING;
    if (!db_pool_available(pool))
        return DB_EXEC_UNAVAILABLE;
    if (pool->queued >= pool->max_queue)
        return DB_EXEC_OVERLOADED;

    /* One allocation: the job, the arrays, then the parameter bytes. */
    size_t bytes = sizeof(db_job_t) + (size_t)nparams * (sizeof(char *) + 2 * sizeof(int));
    for (int i = 0; i < nparams; i++)
        if (values[i])
            bytes +=
                (lengths && formats && formats[i] ? (size_t)lengths[i] : strlen(values[i])) + 1;
    db_job_t *job = calloc(1, bytes);
    if (job == NULL)
        return DB_EXEC_OVERLOADED;
    job->stmt = stmt;
    job->short_lane = short_lane;
    job->long_running = long_running;
    job->queued_at = uv_now(pool->loop);
    job->nparams = nparams;
    job->cb = cb;
    job->arg = arg;
    job->values = (char **)(job + 1);
    job->lengths = (int *)(job->values + nparams);
    job->formats = job->lengths + nparams;
    char *p = (char *)(job->formats + nparams);
    for (int i = 0; i < nparams; i++) {
        job->formats[i] = formats ? formats[i] : 0;
        if (values[i] == NULL)
            continue;
        size_t n = job->formats[i] && lengths ? (size_t)lengths[i] : strlen(values[i]);
        memcpy(p, values[i], n);
        p[n] = '\0';
        job->values[i] = p;
        job->lengths[i] = (int)n;
        p += n + 1;
    }
    db_queue_push(pool, job, false);
    db_pool_dispatch(pool);
    return 0;
}

int db_exec(db_pool_t *pool, const db_stmt_t *stmt, int nparams, const char *const *values,
            const int *lengths, const int *formats, db_done_cb cb, void *arg)
{
    return db_exec_in(pool, false, false, stmt, nparams, values, lengths, formats, cb, arg);
}

int db_exec_short(db_pool_t *pool, const db_stmt_t *stmt, int nparams, const char *const *values,
                  const int *lengths, const int *formats, db_done_cb cb, void *arg)
{
    return db_exec_in(pool, true, false, stmt, nparams, values, lengths, formats, cb, arg);
}

int db_exec_long(db_pool_t *pool, const db_stmt_t *stmt, int nparams, const char *const *values,
                 const int *lengths, const int *formats, db_done_cb cb, void *arg)
{
    return db_exec_in(pool, false, true, stmt, nparams, values, lengths, formats, cb, arg);
}

void db_pool_close(db_pool_t *pool, void (*on_closed)(void *), void *arg)
{
    pool->closing = true;
    pool->on_closed = on_closed;
    pool->on_closed_arg = arg;
    db_queue_fail_all(pool, "the server is shutting down");
    for (int i = 0; i < pool->size; i++) {
        db_conn_t *c = &pool->conns[i];
        db_job_t *job = c->job;
        c->job = NULL;
        db_conn_reset(c);
        if (job)
            db_job_unavailable(job, "the server is shutting down");
    }
    uv_timer_stop(&pool->reconnect_timer);
    uv_close((uv_handle_t *)&pool->reconnect_timer, db_handle_closed);
    uv_timer_stop(&pool->queue_timer);
    uv_close((uv_handle_t *)&pool->queue_timer, db_handle_closed);
    uv_timer_stop(&pool->deadline_timer);
    uv_close((uv_handle_t *)&pool->deadline_timer, db_handle_closed);
}

/* ---- result accessors ---- */

const char *db_text(const PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? "" : PQgetvalue(res, r, c);
}

bool db_null(const PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c);
}

int64_t db_int64(const PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? 0 : strtoll(PQgetvalue(res, r, c), NULL, 10);
}

int32_t db_int32(const PGresult *res, int r, int c)
{
    return (int32_t)db_int64(res, r, c);
}

bool db_bool(const PGresult *res, int r, int c)
{
    return !PQgetisnull(res, r, c) && PQgetvalue(res, r, c)[0] == 't';
}

double db_double(const PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? 0.0 : strtod(PQgetvalue(res, r, c), NULL);
}
