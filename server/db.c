#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define DB_MAX_STATEMENTS 512

static const db_stmt_t *db_statements[DB_MAX_STATEMENTS];
static int db_statement_count;

typedef enum {
    DBC_DOWN = 0,   /* no connection; the reconnect timer will try */
    DBC_CONNECTING, /* PQconnectPoll in progress */
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
} db_job_t;

typedef struct db_conn {
    db_pool_t *pool;
    int index;
    db_conn_state_t state;
    PGconn *pg;
    uv_poll_t *poll; /* separately allocated: replaced when the socket changes */
    int poll_fd;
    int prepare_next;
    db_job_t *job;
    PGresult *result; /* the result being collected for job (or a prepare) */
    bool listener;    /* runs LISTEN and delivers notifications; takes no jobs */
} db_conn_t;

struct db_pool {
    uv_loop_t *loop;
    char *conninfo;
    int size;
    int max_queue;
    int reconnect_ms;
    int retry_limit;
    db_conn_t *conns;
    db_job_t *queue_head, *queue_tail;
    int queued;
    uv_timer_t reconnect_timer;
    bool was_available; /* for logging transitions once */
    bool closing;
    int open_handles;
    void (*on_closed)(void *);
    void *on_closed_arg;
    void (*on_fatal)(void *, const char *);
    void *on_fatal_arg;
    char *listen_channel;
    void (*on_notify)(void *, const char *payload);
    void *notify_arg;
    bool fatal; /* a statement cannot be prepared: the pool refuses all work */
};

static void db_conn_connect(db_conn_t *c);
static void db_conn_fail(db_conn_t *c, const char *why);
static void db_pool_dispatch(db_pool_t *pool);
static void db_poll_cb(uv_poll_t *handle, int status, int events);
static void db_reconnect_cb(uv_timer_t *t);

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
    free(pool->listen_channel);
    free(pool->conns);
    free(pool->conninfo);
    free(pool);
    if (cb)
        cb(arg);
}

static void db_handle_closed(uv_handle_t *h)
{
    db_pool_t *pool = h->data;
    if ((uv_handle_t *)&pool->reconnect_timer != h)
        free(h);
    pool->open_handles--;
    db_pool_maybe_free(pool);
}

bool db_pool_available(const db_pool_t *pool)
{
    if (pool->fatal)
        return false;
    for (int i = 0; i < pool->size; i++) {
        if (pool->conns[i].listener)
            continue;
        db_conn_state_t s = pool->conns[i].state;
        if (s == DBC_IDLE || s == DBC_BUSY || s == DBC_PREPARING)
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

static void db_queue_push(db_pool_t *pool, db_job_t *job, bool front)
{
    if (front) {
        job->next = pool->queue_head;
        pool->queue_head = job;
        if (pool->queue_tail == NULL)
            pool->queue_tail = job;
    } else {
        job->next = NULL;
        if (pool->queue_tail)
            pool->queue_tail->next = job;
        else
            pool->queue_head = job;
        pool->queue_tail = job;
    }
    pool->queued++;
}

static db_job_t *db_queue_pop(db_pool_t *pool)
{
    db_job_t *job = pool->queue_head;
    if (job) {
        pool->queue_head = job->next;
        if (pool->queue_head == NULL)
            pool->queue_tail = NULL;
        pool->queued--;
        job->next = NULL;
    }
    return job;
}

/* Fail everything waiting: called when the last connection goes down. */
static void db_queue_fail_all(db_pool_t *pool, const char *why)
{
    db_job_t *job;
    while ((job = db_queue_pop(pool)) != NULL)
        db_job_unavailable(job, why);
}

static void db_note_availability(db_pool_t *pool)
{
    bool now = db_pool_available(pool);
    if (now && !pool->was_available)
        log_info(0, "database connection established");
    else if (!now && pool->was_available)
        log_warn(0, "database unavailable: requests fail with 'unavailable' until it returns");
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
        log_warn(0, "database connection %d lost: %s", c->index, why);
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

static void db_send_next_prepare(db_conn_t *c)
{
    while (c->prepare_next < db_statement_count) {
        const db_stmt_t *st = db_statements[c->prepare_next];
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

static void db_conn_connected(db_conn_t *c)
{
    if (PQsetnonblocking(c->pg, 1) != 0) {
        db_conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    c->state = DBC_PREPARING;
    c->prepare_next = 0;
    if (c->listener) {
        /* The channel name is ours (a constant), never a request's. */
        char sql[96];
        snprintf(sql, sizeof(sql), "LISTEN %s", c->pool->listen_channel);
        int f;
        if (PQsendQuery(c->pg, sql) != 1 || (f = PQflush(c->pg)) < 0) {
            db_conn_fail(c, PQerrorMessage(c->pg));
            return;
        }
        db_conn_watch(c, UV_READABLE | (f == 1 ? UV_WRITABLE : 0));
        return;
    }
    db_send_next_prepare(c);
}

static void db_conn_connect(db_conn_t *c)
{
    c->pg = PQconnectStart(c->pool->conninfo);
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

static void db_conn_send_job(db_conn_t *c, db_job_t *job)
{
    c->job = job;
    c->state = DBC_BUSY;
    job->attempts++;
    if (PQsendQueryPrepared(c->pg, job->stmt->name, job->nparams, (const char *const *)job->values,
                            job->lengths, job->formats, 0) != 1) {
        /* The connection is unusable; give the job to another one. */
        c->job = NULL;
        job->attempts--;
        db_queue_push(c->pool, job, true);
        db_conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    int f = PQflush(c->pg);
    if (f < 0) {
        db_conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    db_conn_watch(c, UV_READABLE | (f == 1 ? UV_WRITABLE : 0));
}

static void db_pool_dispatch(db_pool_t *pool)
{
    for (int i = 0; i < pool->size && pool->queue_head; i++) {
        db_conn_t *c = &pool->conns[i];
        if (c->state == DBC_IDLE && !c->listener)
            db_conn_send_job(c, db_queue_pop(pool));
    }
}

/* A statement's results are complete (PQgetResult returned NULL). */
static void db_conn_complete(db_conn_t *c)
{
    db_pool_t *pool = c->pool;
    PGresult *res = c->result;
    c->result = NULL;

    if (c->state == DBC_PREPARING && c->listener) {
        bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
        char why[256];
        snprintf(why, sizeof(why), "LISTEN failed: %s", res ? PQresultErrorMessage(res) : "?");
        PQclear(res);
        if (!ok) {
            db_conn_fail(c, why);
            return;
        }
        c->state = DBC_IDLE;
        db_conn_watch(c, UV_READABLE);
        log_info(0, "listening for database events on %s", pool->listen_channel);
        return;
    }
    if (c->state == DBC_PREPARING) {
        if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
            /* The code and the schema disagree: serving on would fail requests
             * one by one, so say so once and let the owner stop. */
            char why[512];
            snprintf(why, sizeof(why), "cannot prepare statement %s: %s",
                     db_statements[c->prepare_next]->name,
                     res ? PQresultErrorMessage(res) : "no result");
            PQclear(res);
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

    db_job_t *job = c->job;
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
        db_job_finish(job, &r);
    } else {
        db_result_t r = {.status = DB_OK, .res = res};
        db_job_finish(job, &r);
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
    while ((n = PQnotifies(c->pg)) != NULL) {
        if (c->listener && c->pool->on_notify)
            c->pool->on_notify(c->pool->notify_arg, n->extra);
        PQfreemem(n);
    }
    if (c->state != DBC_BUSY && c->state != DBC_PREPARING) {
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
    pool->open_handles = 1;
    return pool;
}

void db_pool_on_fatal(db_pool_t *pool, void (*cb)(void *, const char *), void *arg)
{
    pool->on_fatal = cb;
    pool->on_fatal_arg = arg;
}

int db_pool_listen(db_pool_t *pool, const char *channel, void (*cb)(void *, const char *),
                   void *arg)
{
    db_conn_t *conns = realloc(pool->conns, (size_t)(pool->size + 1) * sizeof(db_conn_t));
    if (conns == NULL)
        return -1;
    pool->conns = conns;
    for (int i = 0; i < pool->size; i++) /* the array moved */
        pool->conns[i].pool = pool;
    db_conn_t *c = &pool->conns[pool->size];
    memset(c, 0, sizeof(*c));
    c->pool = pool;
    c->index = pool->size;
    c->poll_fd = -1;
    c->listener = true;
    pool->size++;
    pool->listen_channel = strdup(channel);
    pool->on_notify = cb;
    pool->notify_arg = arg;
    return pool->listen_channel ? 0 : -1;
}

void db_pool_start(db_pool_t *pool)
{
    pool->was_available = true; /* so the first failure is logged */
    for (int i = 0; i < pool->size; i++)
        db_conn_connect(&pool->conns[i]);
    uv_timer_start(&pool->reconnect_timer, db_reconnect_cb, (uint64_t)pool->reconnect_ms,
                   (uint64_t)pool->reconnect_ms);
}

int db_exec(db_pool_t *pool, const db_stmt_t *stmt, int nparams, const char *const *values,
            const int *lengths, const int *formats, db_done_cb cb, void *arg)
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
