/*
 * db: a pool of asynchronous PostgreSQL connections driven by the loop.
 *
 * Every connection runs in libpq's nonblocking mode with a uv_poll on its
 * socket; no call here ever waits for the server. Statements are registered
 * once at start (db_stmt_register) and prepared on every new connection, so a
 * request costs one round trip: Bind/Execute of a prepared statement, which
 * is one implicit transaction unless the statement says otherwise.
 *
 * While no connection is up, db_exec() fails at once (the caller answers
 * "unavailable"); a timer keeps reconnecting, and service resumes by itself.
 * A statement that fails with a serialization failure or deadlock is retried
 * up to retry_limit times before its error is reported.
 *
 * Every wait is bounded (db_pool_set_limits): each connection runs with a
 * lock_timeout and a statement_timeout (long_statement_timeout_ms for the
 * bulk and background work of db_exec_long), and a job that waits in the queue
 * longer than queue_timeout_ms fails as DB_UNAVAILABLE with queue_timeout
 * set. Jobs go in one of two lanes: short jobs (db_exec_short: reads, and
 * inserts into log tables, which wait for no row lock) may use every
 * connection, other jobs (db_exec: writes, which may wait for row locks) at
 * most all but `reserved_short` of them, so that logins
 * and reads are served while writes wait for a row locked elsewhere.
 */
#ifndef CARREL_DB_H
#define CARREL_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "check.h"

typedef enum {
    DB_OK = 0,
    DB_QUERY_ERROR, /* the server reported an error; sqlstate/message say which */
    DB_UNAVAILABLE, /* the connection broke before an answer arrived */
} db_status_t;

typedef struct db_result {
    db_status_t status;
    const PGresult *res; /* DB_OK: the statement's result, valid during the callback */
    const char *sqlstate;
    const char *message;
    const char *detail;
    const char *hint;
    bool queue_timeout; /* DB_UNAVAILABLE: it waited too long for a connection; never ran */
} db_result_t;

typedef void (*db_done_cb)(const db_result_t *r, void *arg);

/*
 * r as it is when it failed or its rows have ncols columns (the count of the
 * statement's column enum); otherwise *scratch filled as a DB_QUERY_ERROR
 * that says so (and logged once per call): a statement whose SQL and code
 * disagree is answered as an error, never read out of line. The callbacks
 * that do not go through reply.c start with r = db_fit(r, X_NCOLS, &fit).
 */
const db_result_t *db_fit(const db_result_t *r, int ncols, db_result_t *scratch);

typedef struct db_stmt {
    const char *name;
    const char *sql;
} db_stmt_t;

typedef struct db_limits {
    int lock_timeout_ms;           /* each connection's lock_timeout; 0: none */
    int statement_timeout_ms;      /* each connection's statement_timeout; 0: none */
    int long_statement_timeout_ms; /* statement_timeout for db_exec_long; 0: none */
    int queue_timeout_ms;          /* longest wait for a connection; 0: none */
    int reserved_short;            /* connections other jobs may not use */
    bool quiet_errors;             /* ask PostgreSQL not to log our sessions' errors */
    /*
     * A client-side deadline, for a pool whose server may hang (a standby
     * behind a cut network, a host that accepts TCP and never answers);
     * 0: none. A connection still connecting or setting up after
     * statement_timeout_ms + deadline_margin_ms, or a statement running
     * that much past its own statement_timeout, is dropped: its job fails
     * DB_UNAVAILABLE and the connection is made again. With it, the
     * connections also ask for TCP keepalives and a tcp_user_timeout (the
     * conninfo's own settings win).
     */
    int deadline_margin_ms;
} db_limits_t;

typedef struct db_pool db_pool_t;

/* Exec errors (no callback will be made): */
#define DB_EXEC_UNAVAILABLE (-1) /* no connection to the database */
#define DB_EXEC_OVERLOADED  (-2) /* the wait queue is full */
#define DB_EXEC_CLOSING     (-3) /* the pool is shutting down */

/* Register a statement to prepare on every connection. Call before db_pool_start. */
void db_stmt_register(const db_stmt_t *stmt);

CARREL_MUST_USE db_pool_t *db_pool_new(uv_loop_t *loop, const char *conninfo, int size,
                                       int max_queue, int reconnect_ms, int retry_limit);
/* Set the limits above (before db_pool_start; the defaults are all 0/false). A reload sets
 * them again on a running pool, reserved_short and quiet_errors unchanged. */
void db_pool_set_limits(db_pool_t *pool, const db_limits_t *limits);
/* Times a transaction is retried after a serialization failure or deadlock (a reload). */
void db_pool_set_retry_limit(db_pool_t *pool, int retry_limit);
void db_pool_start(db_pool_t *pool);
/*
 * cb(arg) after every job of the write lane (db_exec, db_exec_long) that
 * succeeded, once its own callback has run: the desk events poll (events.c)
 * looks for what the change stored.
 */
void db_pool_on_write_done(db_pool_t *pool, void (*cb)(void *arg), void *arg);
/*
 * Prepare only `stmts` (n of them, registered or not; the array must outlive
 * the pool) on this pool's connections instead of every registered statement:
 * for a pool with one purpose, such as the statistics standby (before
 * db_pool_start).
 */
void db_pool_set_statements(db_pool_t *pool, const db_stmt_t *const *stmts, int n);
/* What the pool's log lines call it ("database" unless set; a constant string). */
void db_pool_set_label(db_pool_t *pool, const char *label);
/* Called once if the pool cannot serve at all (a statement fails to prepare). */
void db_pool_on_fatal(db_pool_t *pool, void (*cb)(void *arg, const char *why), void *arg);
/* A pool's connections by state and its waiting jobs, for the metrics. */
typedef struct db_pool_counts {
    int busy, idle;
    int connecting;                   /* connecting, setting up or preparing statements */
    int down;                         /* broken: waiting for the reconnect timer */
    int waiting_write, waiting_short; /* jobs queued in each lane */
} db_pool_counts_t;
void db_pool_counts(const db_pool_t *pool, db_pool_counts_t *out);
/* True when at least one connection is ready or busy. */
bool db_pool_available(const db_pool_t *pool);
/*
 * Queue a prepared statement. values[i] NULL means SQL NULL; lengths/formats
 * may be NULL (all text). Parameters are copied. Returns 0 and later calls
 * cb exactly once, or returns a DB_EXEC_* error and never calls cb.
 */
__attribute__((warn_unused_result)) int db_exec(db_pool_t *pool, const db_stmt_t *stmt, int nparams,
                                                const char *const *values, const int *lengths,
                                                const int *formats, db_done_cb cb, void *arg);
/* Like db_exec, in the short lane: for statements that take no row lock
 * another session may hold (reads, inserts into log tables). */
__attribute__((warn_unused_result)) int db_exec_short(db_pool_t *pool, const db_stmt_t *stmt,
                                                      int nparams, const char *const *values,
                                                      const int *lengths, const int *formats,
                                                      db_done_cb cb, void *arg);
/*
 * Like db_exec, under long_statement_timeout_ms instead of statement_timeout:
 * for bulk or background work whose time grows with the size of the library
 * (an import batch, the hourly jobs). It is set on the connection just
 * before (a SET inside the statement could not lengthen the statement itself).
 */
__attribute__((warn_unused_result)) int db_exec_long(db_pool_t *pool, const db_stmt_t *stmt,
                                                     int nparams, const char *const *values,
                                                     const int *lengths, const int *formats,
                                                     db_done_cb cb, void *arg);
/*
 * Close every connection; queued statements fail with DB_UNAVAILABLE.
 * on_closed runs once all handles are closed and the pool is freed.
 */
void db_pool_close(db_pool_t *pool, void (*on_closed)(void *), void *arg);

/* Result accessors: row r, column c of a DB_OK result. */
const char *db_text(const PGresult *res, int r, int c); /* "" for NULL */
bool db_null(const PGresult *res, int r, int c);
int64_t db_int64(const PGresult *res, int r, int c);
int32_t db_int32(const PGresult *res, int r, int c);
bool db_bool(const PGresult *res, int r, int c);
double db_double(const PGresult *res, int r, int c);

/* ---- pure parts, exposed for unit tests ---- */

/* How many connections jobs of the write lane may hold when `usable` are up. */
int db_write_limit(int usable, int reserved_short);
/* True when a statement failed to prepare because the schema does not match
 * the code (the pool then stops), false for a passing failure (retried). */
bool db_prepare_error_is_fatal(const char *sqlstate);
/*
 * For a read-only session on a hot standby: true when its statement was
 * cancelled because the standby had to apply changes it conflicted with
 * (40001, or 57014 with the message "... conflict with recovery"; plain
 * 57014 is a statement_timeout). Trying again may work.
 */
bool db_is_recovery_conflict(const char *sqlstate, const char *message);
/*
 * Does connecting with this conninfo need a DNS lookup? libpq resolves host
 * names inside PQconnectStart, synchronously, on the loop. True (and a
 * sentence in why) when some host is a name and no hostaddr is given; false
 * for Unix sockets, numeric addresses, hostaddr set, or a conninfo that does
 * not parse (libpq says so when connecting).
 */
bool db_conninfo_needs_dns(const char *conninfo, char *why, size_t whylen);
/* True for our own refusals (SQLSTATE class CR): answers, not errors. */
bool db_sqlstate_is_refusal(const char *sqlstate);

/*
 * A log-line limiter: at most `burst` lines per `window_ms`; the lines
 * suppressed are counted and reported once the next window opens.
 */
typedef struct db_log_limit {
    bool started;
    uint64_t window_start_ms;
    int burst;
    uint64_t window_ms;
    int logged;     /* lines logged in the current window */
    int suppressed; /* lines dropped in the current window */
} db_log_limit_t;

/* May a line be logged at now_ms? *report_suppressed gets the number dropped
 * in the window that just ended (to be logged first), else 0. */
bool db_log_limit_take(db_log_limit_t *l, uint64_t now_ms, int *report_suppressed);

#endif
