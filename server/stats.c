/*
 * stats: statistics requests (StatsQuery, StatsMeasureList, StatsLiveSubscribe,
 * PlsReport, StatsBuyMore, StatsRebuild), the stats pool, the rollup job and
 * the live pushes (see stats.h). Every figure comes from a function of
 * sql/rules/stats.sql; nothing here names or counts a patron.
 *
 * Scope, checked here before SQL runs: coordinators and administrators see
 * every branch; branch-bound roles only their session's branch (asking for
 * another is FORBIDDEN `branch`); clerks and librarians only today, the
 * library's local day, which the statement itself checks (library_today())
 * before the measure runs, answered FORBIDDEN `role`.
 */
#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "jobtimer.h"
#include "log.h"
#include "pgtext.h"
#include "reply.h"
#include "server.h"
#include "util.h"

#define STATS_ROLLUP_BATCH      10000
#define STATS_LIVE_TICK_MS      1000
#define STATS_LIVE_DEFAULT_S    5
#define STATS_LIVE_MAX_S        5
#define STATS_POOL_RETRY_MS     60000 /* a standby without our schema: try a new pool this often */
#define STATS_MAX_BRANCHES      64
#define STATS_MAX_BY            4
#define STATS_LIVE_MAX_BRANCHES 20 /* conn_t.stats_branches holds this many codes */
#define STATS_BUY_MORE_DEFAULT  50
#define STATS_BUY_MORE_MAX      1000
#define STATS_PRIMARY_WAIT_MAX  200 /* statistics requests waiting for the primary */
#define STATS_PER_CONN_MAX      2   /* statistics requests in flight per connection */
#define STATS_WAIT_CHECK_MS     500 /* how often waiting requests are checked */
/* How long past its statement_timeout a statement on the standby may stay unanswered
 * (a network cut, a hung host) before its connection is dropped and it fails. */
#define STATS_DEADLINE_MARGIN_MS 5000
/* PLS report years: what pls_report() accepts. */
#define STATS_PLS_YEAR_MIN 1990
#define STATS_PLS_YEAR_MAX 2199

/* ---------------------------------------------------------------- statements */

/*
 * The scope every statistics statement starts from, one row: which server
 * answers (pg_is_in_recovery(): "standby" or "primary"), the branch codes
 * asked for that no branch has (NULL when all are known), and their ids for
 * the SQL functions (NULL: every branch). $CODES is the text[] of codes.
 * The measure runs only when every code is known: `WHERE s.unknown IS NULL`
 * in its LATERAL subquery refers to the outer row only, and `OFFSET 0` keeps
 * the subquery from being merged into the join (where the condition would
 * be a join filter, checked after the function ran), so it is a one-time
 * filter, checked before the function scan: a refused request costs no scan.
 */
#define STATS_SCOPE(CODES)                                                                         \
    "(SELECT pg_is_in_recovery() AS rec, library_today() AS today,"                                \
    "        (SELECT string_agg(c, ', ') FROM unnest(" CODES "::text[]) c"                         \
    "          WHERE NOT EXISTS (SELECT 1 FROM branch b WHERE b.code = c)) AS unknown,"            \
    "        (SELECT array_agg(b.id ORDER BY b.id) FROM branch b"                                  \
    "          WHERE b.code = ANY (" CODES "::text[])) AS ids) s"

/* StatsQuery. $1 measure, $2 from, $3 to (NULL: today; to NULL: from), $4 time,
 * $5 by (text[]), $6 branch codes, $7 compare, $8 arg, $9 today only (clerks). */
enum {
    QUERY_REC,
    QUERY_UNKNOWN,
    QUERY_TODAY,
    QUERY_FROM,
    QUERY_TO,
    QUERY_PREV_FROM,
    QUERY_PREV_TO,
    QUERY_TITLE,
    QUERY_UNIT,
    QUERY_KIND,
    QUERY_N,
    QUERY_PERIOD,
    QUERY_KEYS,
    QUERY_VALUE,
    QUERY_PREVIOUS,
    QUERY_NCOLS
};
/* clang-format off */
static const reply_stmt_t stmt_query = REPLY_STMT(
    "stats_query", QUERY_NCOLS,
    "SELECT s.rec, s.unknown, s.today::text, d.f::text, d.t::text,"
    "       (d.f - CASE WHEN $4 = 'week' THEN interval '364 days' ELSE interval '1 year' END)"
    "         ::date::text,"
    "       (d.t - CASE WHEN $4 = 'week' THEN interval '364 days' ELSE interval '1 year' END)"
    "         ::date::text,"
    "       m.title, m.unit, m.kind, q.n, q.period, q.keys, q.value, q.previous"
    "  FROM " STATS_SCOPE("$6") " CROSS JOIN LATERAL"
    "       (SELECT coalesce($2::date, s.today) AS f,"
    "               coalesce($3::date, $2::date, s.today) AS t) d"
    "  LEFT JOIN (SELECT name, title, unit, kind FROM stats_measures()) m ON m.name = $1"
    "  LEFT JOIN LATERAL"
    "       (SELECT * FROM stats_query($1, d.f, d.t, $4, $5::text[], s.ids, $7::boolean,"
    "                                  $8::integer)"
    "                 WITH ORDINALITY AS x(period, keys, value, previous, n)"
    "         WHERE s.unknown IS NULL"
    "           AND ($9::boolean IS NOT TRUE OR (d.f = s.today AND d.t = s.today))"
    "        OFFSET 0) q ON true"
    " ORDER BY q.n");
/* clang-format on */

enum {
    MEASURE_REC,
    MEASURE_NAME,
    MEASURE_TITLE,
    MEASURE_UNIT,
    MEASURE_DIMS,
    MEASURE_TIMES,
    MEASURE_KIND,
    MEASURE_DESCRIPTION,
    MEASURE_NCOLS
};
static const reply_stmt_t stmt_measures =
    REPLY_STMT("stats_measures", MEASURE_NCOLS,
               "SELECT pg_is_in_recovery(), name, title, unit, dims, times, kind, description"
               "  FROM stats_measures() ORDER BY name");

/* Every branch, once per live tick; the subscribers' scopes are applied here in C. */
enum {
    LIVE_REC,
    LIVE_BRANCH_ID,
    LIVE_BRANCH_CODE,
    LIVE_BRANCH_NAME,
    LIVE_HOUR,
    LIVE_CIRC_THIS_HOUR,
    LIVE_CIRC_HOUR_AVERAGE,
    LIVE_HOLDS_ON_SHELF,
    LIVE_HOLDS_WAITING,
    LIVE_TRANSITS_OVERDUE,
    LIVE_NOTICES_FAILING,
    LIVE_NCOLS
};
static const reply_stmt_t stmt_live = REPLY_STMT(
    "stats_live", LIVE_NCOLS,
    "SELECT pg_is_in_recovery(), branch_id, branch_code, branch_name, hour, circ_this_hour,"
    "       circ_hour_average, holds_on_shelf, holds_waiting, transits_overdue, notices_failing"
    "  FROM stats_live(NULL) ORDER BY branch_code");

/* PlsReport. $1 year, $2 branch codes. */
enum {
    PLS_REC,
    PLS_UNKNOWN,
    PLS_N,
    PLS_CODE,
    PLS_BRANCH_CODE,
    PLS_VALUE,
    PLS_BASIS,
    PLS_HOW,
    PLS_NCOLS
};
/* clang-format off */
static const reply_stmt_t stmt_pls = REPLY_STMT(
    "stats_pls_report", PLS_NCOLS,
    "SELECT s.rec, s.unknown, q.n, q.code, q.branch_code, q.value, q.basis, q.how"
    "  FROM " STATS_SCOPE("$2") " LEFT JOIN LATERAL"
    "       (SELECT * FROM pls_report($1::integer, s.ids)"
    "                 WITH ORDINALITY AS x(code, branch_code, value, basis, how, n)"
    "         WHERE s.unknown IS NULL OFFSET 0) q ON true"
    " ORDER BY q.n");
/* clang-format on */

/* StatsBuyMore. $1 branch codes, $2 threshold (NULL: the setting), $3 limit. */
enum {
    BUY_REC,
    BUY_UNKNOWN,
    BUY_THRESHOLD,
    BUY_N,
    BUY_BIB_ID,
    BUY_TITLE,
    BUY_AUTHOR,
    BUY_HOLDS,
    BUY_COPIES,
    BUY_RATIO,
    BUY_NCOLS
};
/* clang-format off */
static const reply_stmt_t stmt_buy_more = REPLY_STMT(
    "stats_buy_more", BUY_NCOLS,
    "SELECT s.rec, s.unknown, t.threshold, q.n, q.bib_id, q.title, q.author, q.holds,"
    "       q.copies, q.ratio"
    "  FROM " STATS_SCOPE("$1") " CROSS JOIN LATERAL"
    "       (SELECT coalesce($2::numeric,"
    "                        library_setting_text('buy_more_holds_per_copy')::numeric)"
    "                 AS threshold) t"
    "  LEFT JOIN LATERAL"
    "       (SELECT * FROM stats_buy_more(s.ids, t.threshold, $3::integer)"
    "                 WITH ORDINALITY AS x(bib_id, title, author, holds, copies, ratio, n)"
    "         WHERE s.unknown IS NULL OFFSET 0) q ON true"
    " ORDER BY q.n");
/* clang-format on */

/* On the primary only: both write. */
enum { REBUILD_EVENTS, REBUILD_ROWS, REBUILD_NCOLS };
static const reply_stmt_t stmt_rebuild =
    REPLY_STMT("stats_rebuild", REBUILD_NCOLS, "SELECT events, rows FROM stats_rollup_rebuild()");

enum { ROLLUP_FOLDED, ROLLUP_NCOLS };
static const db_stmt_t stmt_rollup = {"stats_rollup_run", "SELECT stats_rollup_run($1::integer)"};

/* The replica lag for the metrics, in two steps: where the primary's WAL is now (on the
 * primary pool), then how far the standby's replay is behind that position. The standby's
 * own receive position would not do: a standby cut off from the primary replays all it
 * received and then looks up to date forever. Bytes: the primary's position (sampled
 * first) minus the replay position, 0 when there is nothing left to replay (and on a
 * server that is not in recovery). Seconds: 0 when the bytes are 0, else the age of the
 * last transaction replayed (0 while none was replayed since the standby started). */
static const db_stmt_t stmt_primary_lsn = {"stats_primary_lsn",
                                           "SELECT pg_current_wal_lsn()::text"};
enum { LAG_BYTES, LAG_SECONDS, LAG_NCOLS };
static const db_stmt_t stmt_lag = {
    "stats_replica_lag",
    "SELECT b::float8, CASE WHEN b <= 0 THEN 0 ELSE greatest(0, COALESCE(extract(epoch FROM"
    " now() - pg_last_xact_replay_timestamp()), 0)) END::float8"
    "  FROM (SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0"
    "               ELSE greatest(0, pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn()))"
    "               END AS b) x"};

/* What the stats pool prepares: the reads, never the writes. */
static const db_stmt_t *const stats_pool_statements[] = {
    &stmt_query.db, &stmt_measures.db, &stmt_live.db, &stmt_pls.db, &stmt_buy_more.db, &stmt_lag,
};

/* How often the replica lag is sampled (ms). */
#define STATS_LAG_INTERVAL_MS 10000

void stats_register_statements(void)
{
    for (size_t i = 0; i < sizeof(stats_pool_statements) / sizeof(stats_pool_statements[0]); i++)
        db_stmt_register(stats_pool_statements[i]);
    db_stmt_register(&stmt_rebuild.db);
    db_stmt_register(&stmt_rollup);
    db_stmt_register(&stmt_primary_lsn);
}

/* ---------------------------------------------------------------- state */

struct stats {
    server_t *srv;
    db_pool_t *pool; /* the standby's, or NULL (none configured, or being replaced) */
    bool standby;    /* stats_conninfo is set */
    int pools_open;  /* stats pools not yet closed (one being replaced, the current) */
    uv_timer_t live_timer, retry_timer, wait_timer;
    uv_timer_t lag_timer; /* samples the standby's replay lag (with stats_conninfo) */
    bool lag_running;     /* a sample is on the standby */
    bool lag_known;       /* lag_s and lag_bytes hold the last sample, which succeeded */
    double lag_s, lag_bytes;
    char lag_lsn[32]; /* the primary's WAL position, the standby step's parameter */
    const char *lag_values[1];
    jobtimer_t *rollup;
    int open_timers; /* the three timers and the rollup job */
    bool stopping, aborted, closing;
    int primary_jobs; /* our jobs on the primary pool: shutdown waits for them */
    int standby_jobs; /* our jobs on the stats pool */
    const char *rollup_values[1];
    char rollup_batch[16]; /* stats_rollup_run's parameter */
    int64_t rollup_folded; /* in the current run, for the log */
    bool live_running;
    bool live_trouble;
    bool said_down;
    /* Requests' statistics statements on the primary: at most stats_pool_size at once,
     * the others wait here, first come first served, so that reports never hold more of
     * the primary's connections than a standby pool would. */
    int primary_reports;
    struct stats_call *wait_head, *wait_tail;
    int waiting;
};

static const char *stats_served_by(const PGresult *res, int col)
{
    return PQntuples(res) > 0 && db_bool(res, 0, col) ? "standby" : "primary";
}

/* Free s once nothing of it is open or running (only from callbacks of handles closing). */
static void stats_maybe_free(stats_t *s)
{
    if (!s->closing || s->open_timers > 0 || s->pools_open > 0 || s->primary_jobs > 0 ||
        s->standby_jobs > 0)
        return;
    s->srv->stats = NULL;
    free(s);
}

static void stats_pool_closed(void *arg)
{
    stats_t *s = arg;
    s->pools_open--;
    stats_maybe_free(s);
}

static void stats_timer_closed(uv_handle_t *h)
{
    stats_t *s = h->data;
    s->open_timers--;
    stats_maybe_free(s);
}

static void stats_rollup_closed(void *arg)
{
    stats_t *s = arg;
    s->open_timers--;
    stats_maybe_free(s);
}

/* A job of ours on the primary is back; at shutdown the last one lets the pool close. */
static void stats_primary_back(stats_t *s)
{
    s->primary_jobs--;
    if (s->stopping && s->primary_jobs == 0 && !s->aborted && !s->closing)
        server_jobs_gone(s->srv);
    stats_maybe_free(s); /* frees nothing before the timers' close callbacks have run */
}

/* ---------------------------------------------------------------- the stats pool */

static void stats_pool_fatal(void *arg, const char *why);

/* The standby pool's limits from cfg: when it opens, and after a reload. */
static void stats_pool_limits(db_pool_t *p, const struct server_config *cfg)
{
    db_limits_t limits = {
        .lock_timeout_ms = (int)cfg->db_lock_timeout_ms,
        .statement_timeout_ms = (int)cfg->db_statement_timeout_ms,
        .long_statement_timeout_ms = (int)cfg->db_long_statement_timeout_ms,
        .queue_timeout_ms = (int)cfg->db_queue_timeout_ms,
        .reserved_short = 0, /* only reads run here */
        .quiet_errors = cfg->db_quiet_refusals != 0,
        .deadline_margin_ms = STATS_DEADLINE_MARGIN_MS,
    };
    db_pool_set_limits(p, &limits);
}

void stats_limits_apply(stats_t *s)
{
    if (s && s->pool)
        stats_pool_limits(s->pool, &s->srv->cfg);
}

static int stats_pool_open(stats_t *s)
{
    const struct server_config *cfg = &s->srv->cfg;
    /* No retries in the pool: a recovery conflict (40001) is tried once more by
     * stats_call_done, then answered stats_unavailable. */
    db_pool_t *p = db_pool_new(s->srv->loop, cfg->stats_conninfo, (int)cfg->stats_pool_size,
                               (int)cfg->db_max_queue, (int)cfg->db_reconnect_ms, 0);
    if (p == NULL)
        return -1;
    stats_pool_limits(p, cfg);
    db_pool_set_label(p, "stats standby");
    db_pool_set_statements(p, stats_pool_statements,
                           (int)(sizeof(stats_pool_statements) / sizeof(stats_pool_statements[0])));
    db_pool_on_fatal(p, stats_pool_fatal, s);
    db_pool_start(p);
    s->pool = p;
    s->pools_open++;
    return 0;
}

static void stats_retry_tick(uv_timer_t *t)
{
    stats_t *s = t->data;
    if (s->stopping || s->pool)
        return;
    if (stats_pool_open(s) != 0)
        log_error(0, "stats: cannot make a new pool for the standby; retrying later");
    else
        uv_timer_stop(t);
}

/*
 * The standby cannot prepare our statements (a schema behind the
 * primary's, a wrong database): unlike the primary's, this stops nothing.
 * The pool is closed (its waiting statements fail, and their requests are
 * answered), and a new one is tried every minute.
 */
static void stats_pool_fatal(void *arg, const char *why)
{
    stats_t *s = arg;
    log_error(0,
              "stats: the standby (stats_conninfo) cannot serve statistics: %s; statistics %s "
              "until it can (tried again every %d s)",
              why, s->srv->cfg.stats_fallback_primary ? "use the primary" : "answer unavailable",
              STATS_POOL_RETRY_MS / 1000);
    db_pool_t *p = s->pool;
    s->pool = NULL;
    if (p)
        db_pool_close(p, stats_pool_closed, s);
    if (!s->stopping)
        uv_timer_start(&s->retry_timer, stats_retry_tick, STATS_POOL_RETRY_MS, STATS_POOL_RETRY_MS);
}

/* ---------------------------------------------------------------- running a statistics statement
 */

/* A statement run for a request on the stats pool, or the primary's read lane. */
typedef struct stats_call {
    request_t *req;
    const reply_stmt_t *stmt;
    int nparams;
    const char **values; /* in the arena: a try on the primary may follow one on the standby */
    reply_rows_fn fn;
    bool on_standby;
    bool on_primary;         /* counted in primary_reports while it runs */
    bool counted;            /* counted in its connection's stats_calls until answered */
    bool retried;            /* tried again on the standby after a recovery conflict */
    uint64_t queued_at;      /* uv_now() when it began waiting for the primary */
    struct stats_call *next; /* waiting for its turn on the primary */
} stats_call_t;

static void stats_call_done(const db_result_t *r, void *arg);

/* The call is about to be answered: it no longer counts against its connection. */
static void stats_call_end(stats_call_t *call)
{
    if (!call->counted)
        return;
    call->counted = false;
    CHECK(call->req->conn->stats_calls > 0);
    call->req->conn->stats_calls--;
}

/* Statistics on the primary: always the short lane, so that they never wait behind (or
 * hold up) a desk's change waiting for a row lock. */
static void stats_call_primary_run(stats_call_t *call)
{
    stats_t *s = call->req->srv->stats;
    call->on_standby = false;
    int rc = db_exec_short(call->req->srv->db, &call->stmt->db, call->nparams, call->values, NULL,
                           NULL, stats_call_done, call);
    if (rc != 0) {
        stats_call_end(call);
        request_fail_exec(call->req, rc);
        return;
    }
    call->on_primary = true;
    s->primary_reports++;
}

static void stats_wait_tick(uv_timer_t *t);

/* Run it now if fewer than stats_pool_size statistics statements are running on the
 * primary, else when one ends: however many reports are asked for at once, the desks
 * keep the rest of the pool. */
static void stats_call_primary(stats_call_t *call)
{
    stats_t *s = call->req->srv->stats;
    if (s->primary_reports < s->srv->cfg.stats_pool_size) {
        stats_call_primary_run(call);
        return;
    }
    if (s->waiting >= STATS_PRIMARY_WAIT_MAX) {
        stats_call_end(call);
        request_fail_exec(call->req, DB_EXEC_OVERLOADED);
        return;
    }
    call->next = NULL;
    call->queued_at = uv_now(s->srv->loop);
    if (s->wait_tail)
        s->wait_tail->next = call;
    else
        s->wait_head = call;
    s->wait_tail = call;
    s->waiting++;
    if (s->srv->cfg.db_queue_timeout_ms > 0 && !uv_is_active((uv_handle_t *)&s->wait_timer))
        uv_timer_start(&s->wait_timer, stats_wait_tick, STATS_WAIT_CHECK_MS, STATS_WAIT_CHECK_MS);
}

/* Take call out of the wait queue (prev: the one before it, or NULL for the head). */
static void stats_wait_unlink(stats_t *s, stats_call_t *prev, stats_call_t *call)
{
    if (prev)
        prev->next = call->next;
    else
        s->wait_head = call->next;
    if (s->wait_tail == call)
        s->wait_tail = prev;
    call->next = NULL;
    s->waiting--;
}

/* A waiting call whose client has gone: nobody reads its answer, so it never runs (the
 * request is finished; its answer is dropped with the connection). */
static bool stats_call_orphan(stats_call_t *call)
{
    if (!call->req->conn->closed)
        return false;
    stats_call_end(call);
    request_fail_reason(call->req, REASON_SHUTTING_DOWN);
    return true;
}

/* A statistics statement on the primary ended: the next waiting one, if any, goes. */
static void stats_primary_next(stats_t *s)
{
    while (s->primary_reports < s->srv->cfg.stats_pool_size && s->wait_head) {
        stats_call_t *call = s->wait_head;
        stats_wait_unlink(s, NULL, call);
        if (!stats_call_orphan(call))
            stats_call_primary_run(call);
    }
    if (s->wait_head == NULL)
        uv_timer_stop(&s->wait_timer);
}

/* Every STATS_WAIT_CHECK_MS while calls wait: those of closed connections are dropped,
 * those waiting over db_queue_timeout_ms answered overloaded (as a desk's would be). */
static void stats_wait_tick(uv_timer_t *t)
{
    stats_t *s = t->data;
    uint64_t now = uv_now(s->srv->loop);
    uint64_t limit = (uint64_t)s->srv->cfg.db_queue_timeout_ms;
    stats_call_t *prev = NULL, *call = s->wait_head;
    while (call) {
        stats_call_t *next = call->next;
        /* limit 0 (a reload set "no limit"): only the orphans go. */
        if (call->req->conn->closed || (limit > 0 && now - call->queued_at >= limit)) {
            stats_wait_unlink(s, prev, call);
            if (!stats_call_orphan(call)) {
                stats_call_end(call);
                request_fail(
                    call->req, CARREL__STATUS__STATUS_UNAVAILABLE, reason_name(REASON_OVERLOADED),
                    "Statistics take turns on the database (%ld at once) and this one "
                    "waited over %ld ms for its turn; try again in a moment.",
                    (long)s->srv->cfg.stats_pool_size, (long)s->srv->cfg.db_queue_timeout_ms);
            }
        } else {
            prev = call;
        }
        call = next;
    }
    if (s->wait_head == NULL)
        uv_timer_stop(t);
}

/* The standby cannot answer now: the primary, if the settings allow it, else a clear no. */
static void stats_call_standby_down(stats_call_t *call, const char *why, bool conflict)
{
    stats_t *s = call->req->srv->stats;
    if (!s->said_down) {
        log_warn(call->req->conn->id, "stats: the standby cannot answer (%s); %s", why,
                 s->srv->cfg.stats_fallback_primary ? "using the primary"
                                                    : "answering unavailable");
        s->said_down = true;
    }
    if (s->srv->cfg.stats_fallback_primary) {
        stats_call_primary(call);
        return;
    }
    stats_call_end(call);
    if (conflict) {
        request_fail(call->req, CARREL__STATUS__STATUS_UNAVAILABLE, "stats_unavailable",
                     "The standby database that answers statistics cancelled this one twice "
                     "to apply the primary's changes (a recovery conflict); the desks are not "
                     "affected. Try again in a moment; if it keeps happening, ask IT about the "
                     "standby's max_standby_streaming_delay.");
        return;
    }
    request_fail(call->req, CARREL__STATUS__STATUS_UNAVAILABLE, "stats_unavailable",
                 "Statistics are answered by the standby database, which cannot be reached now; "
                 "the desks are not affected. Try again later, or ask IT to check the standby "
                 "(setting stats_conninfo).");
}

/* The standby's trouble, not the request's: lost with its connection (a deadline
 * included), or refused by a standby that is shutting down or still starting (57P0x,
 * 08xxx). A queue timeout is the pool being busy: answered as overloaded. */
static bool stats_standby_down(const db_result_t *r)
{
    if (r->status == DB_UNAVAILABLE)
        return !r->queue_timeout;
    return r->status == DB_QUERY_ERROR && r->sqlstate &&
           (!strncmp(r->sqlstate, "08", 2) || !strncmp(r->sqlstate, "57P", 3));
}

static bool stats_standby_conflict(const db_result_t *r)
{
    return r->status == DB_QUERY_ERROR && db_is_recovery_conflict(r->sqlstate, r->message);
}

/* Run call on the stats pool: 0, or the DB_EXEC_* error (then nothing was queued). */
static int stats_call_standby_run(stats_call_t *call)
{
    stats_t *s = call->req->srv->stats;
    call->on_standby = true;
    int rc = db_exec_short(s->pool, &call->stmt->db, call->nparams, call->values, NULL, NULL,
                           stats_call_done, call);
    if (rc == 0)
        s->standby_jobs++;
    else
        call->on_standby = false;
    return rc;
}

static void stats_call_done(const db_result_t *r, void *arg)
{
    stats_call_t *call = arg;
    request_t *req = call->req;
    stats_t *s = req->srv->stats;
    if (call->on_primary) {
        call->on_primary = false;
        s->primary_reports--;
        stats_primary_next(s);
    }
    if (call->on_standby) {
        call->on_standby = false;
        s->standby_jobs--;
        bool conflict = stats_standby_conflict(r);
        /* A recovery conflict: once more, on the standby (it may have caught up). */
        if (conflict && !call->retried && !s->closing && s->pool && !req->conn->closed) {
            call->retried = true;
            log_info(req->conn->id, "stats: %s cancelled by a recovery conflict; trying again",
                     call->stmt->db.name);
            if (stats_call_standby_run(call) == 0)
                return;
        }
        if ((conflict || stats_standby_down(r)) && !s->closing) {
            stats_call_standby_down(call, r->message ? r->message : "connection lost", conflict);
            return;
        }
        if (r->status == DB_OK)
            s->said_down = false;
    }
    stats_call_end(call);
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    if (!reply_fits(call->stmt, r->res)) {
        log_error(req->conn->id, "statement %s returned %d columns; its declaration says %d",
                  call->stmt->db.name, PQnfields(r->res), call->stmt->ncols);
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    call->fn(req, r->res);
}

/*
 * Run a statistics statement for req: the standby when there is one, else the primary.
 * At most STATS_PER_CONN_MAX per connection at once, so that one client cannot fill the
 * queue that every desk's statistics wait in.
 */
static void stats_call(request_t *req, const reply_stmt_t *stmt, int nparams,
                       const char *const *values, reply_rows_fn fn)
{
    stats_t *s = req->srv->stats;
    if (req->conn->stats_calls >= STATS_PER_CONN_MAX) {
        request_fail(req, CARREL__STATUS__STATUS_TOO_MANY_REQUESTS, "inflight_limit",
                     "A connection may have at most %d statistics requests running at once; "
                     "wait for an answer before asking the next.",
                     STATS_PER_CONN_MAX);
        return;
    }
    stats_call_t *call = arena_new(&req->arena, stats_call_t, 1);
    *call = (stats_call_t){.req = req, .stmt = stmt, .nparams = nparams, .fn = fn};
    call->values = arena_new(&req->arena, const char *, nparams > 0 ? nparams : 1);
    for (int i = 0; i < nparams; i++)
        call->values[i] = values[i] ? arena_strdup(&req->arena, values[i]) : NULL;
    call->counted = true;
    req->conn->stats_calls++;
    if (!s->standby) {
        stats_call_primary(call);
        return;
    }
    if (s->pool == NULL) {
        stats_call_standby_down(call, "its pool is being replaced", false);
        return;
    }
    int rc = stats_call_standby_run(call);
    if (rc == 0)
        return;
    if (rc == DB_EXEC_UNAVAILABLE) {
        stats_call_standby_down(call, "no connection", false);
        return;
    }
    stats_call_end(call);
    request_fail_exec(req, rc);
}

/* ---------------------------------------------------------------- scope and fields */

/* A date as YYYY-MM-DD that exists (1900-9999): PostgreSQL would take other forms. */
static bool stats_date_ok(const char *s)
{
    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[m - 1] + (m == 2 && leap ? 1 : 0);
}

/* An optional date field (NULL or "": none) must be a day. False when the request was answered. */
static bool stats_date_field(request_t *req, const char *field, const char *value)
{
    if (value == NULL || value[0] == '\0' || stats_date_ok(value))
        return true;
    request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, field,
                 "The date '%s' is not a day as YYYY-MM-DD (e.g. 2026-11-30).", value);
    return false;
}

/*
 * The branches a request covers, as a text[] literal of codes for the
 * statement (NULL: every branch). A branch-bound role gets its session's
 * branch; naming another is refused. False when the request was answered.
 */
static bool stats_scope(request_t *req, char **codes, size_t n, const char **literal)
{
    const session_t *who = request_session(req);
    if (n > STATS_MAX_BRANCHES) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:branch",
                     "Name at most %d branches.", STATS_MAX_BRANCHES);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (codes[i] == NULL || codes[i][0] == '\0') {
            request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:branch",
                         "A branch code is empty.");
            return false;
        }
    }
    if (perm_role_is_branch_bound(who->role)) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(codes[i], who->branch_code) != 0) {
                request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "branch",
                             "A %s sees the statistics of this workstation's branch (%s) only, "
                             "not of %s.",
                             role_label(who->role), who->branch_code, codes[i]);
                return false;
            }
        }
        char *own = arena_strdup(&req->arena, who->branch_code);
        *literal = pgtext_array_build(&req->arena, &own, 1);
        return true;
    }
    *literal = n > 0 ? pgtext_array_build(&req->arena, codes, n) : NULL;
    return true;
}

/* The scope row said some codes are unknown: answer so. False when it did. */
static bool stats_codes_known(request_t *req, const PGresult *res, int col)
{
    if (PQntuples(res) == 0 || db_null(res, 0, col))
        return true;
    request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:branch",
                 "No branch has the code %s.", COL(res, 0, col));
    return false;
}

static bool stats_today_only(const request_t *req)
{
    role_t r = request_session(req)->role;
    return r == CARREL__ROLE__ROLE_CLERK || r == CARREL__ROLE__ROLE_LIBRARIAN;
}

/* ---------------------------------------------------------------- StatsQuery */

static void query_rows(request_t *req, const PGresult *res)
{
    const Carrel__StatsQuery *m = req->msg->stats_query;
    int n = PQntuples(res);
    if (n == 0) { /* the scope subquery always gives a row */
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    if (!stats_codes_known(req, res, QUERY_UNKNOWN))
        return;
    if (stats_today_only(req) && (strcmp(COL(res, 0, QUERY_FROM), COL(res, 0, QUERY_TODAY)) ||
                                  strcmp(COL(res, 0, QUERY_TO), COL(res, 0, QUERY_TODAY)))) {
        const char *from = COL(res, 0, QUERY_FROM), *to = COL(res, 0, QUERY_TO);
        bool one_day = strcmp(from, to) == 0;
        request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "role",
                     "A %s sees today's statistics (%s) only, not %s%s%s; branch managers and "
                     "the coordinator see other days.",
                     role_label(request_session(req)->role), COL(res, 0, QUERY_TODAY), from,
                     one_day ? "" : " to ", one_day ? "" : to);
        return;
    }
    Carrel__StatsReply *x = arena_new(&req->arena, Carrel__StatsReply, 1);
    carrel__stats_reply__init(x);
    x->measure = arena_strdup(&req->arena, m->measure);
    x->title = reply_text_opt(req, res, 0, QUERY_TITLE);
    x->unit = reply_text_opt(req, res, 0, QUERY_UNIT);
    x->kind = reply_text_opt(req, res, 0, QUERY_KIND);
    x->from = reply_text(req, res, 0, QUERY_FROM);
    x->to = reply_text(req, res, 0, QUERY_TO);
    bool compare = m->has_compare && m->compare;
    if (compare) {
        x->previous_from = reply_text(req, res, 0, QUERY_PREV_FROM);
        x->previous_to = reply_text(req, res, 0, QUERY_PREV_TO);
    }
    x->time = arena_strdup(&req->arena, m->time && m->time[0] ? m->time : "none");
    x->n_by = m->n_by;
    x->by = m->by; /* the request's, in the same arena */
    x->served_by = (char *)stats_served_by(res, QUERY_REC);
    x->rows = arena_new(&req->arena, Carrel__StatsRow *, (size_t)n);
    for (int i = 0; i < n; i++) {
        if (db_null(res, i, QUERY_N)) /* no rows: the scope row alone */
            continue;
        Carrel__StatsRow *row = arena_new(&req->arena, Carrel__StatsRow, 1);
        carrel__stats_row__init(row);
        row->period = reply_text(req, res, i, QUERY_PERIOD);
        row->key = pgtext_array_strings(&req->arena, COL(res, i, QUERY_KEYS), &row->n_key);
        reply_double_opt(res, i, QUERY_VALUE, &row->has_value, &row->value);
        if (compare)
            reply_double_opt(res, i, QUERY_PREVIOUS, &row->has_previous, &row->previous);
        if (row->has_value && row->has_previous && row->previous != 0) {
            row->has_change_pct = 1;
            row->change_pct = (row->value - row->previous) / fabs(row->previous) * 100.0;
        }
        x->rows[x->n_rows++] = row;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_STATS;
    req->resp.stats = x;
    request_ok(req);
}

void handle_stats_query(request_t *req)
{
    const Carrel__StatsQuery *m = req->msg->stats_query;
    if (m->measure == NULL || m->measure[0] == '\0') {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:measure",
                     "Name a measure; StatsMeasureList (carrel stats measures) lists them.");
        return;
    }
    if (!stats_date_field(req, "field:from", m->from) || !stats_date_field(req, "field:to", m->to))
        return;
    if (m->n_by > STATS_MAX_BY) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:by",
                     "Split a measure by at most %d dimensions.", STATS_MAX_BY);
        return;
    }
    for (size_t i = 0; i < m->n_by; i++) {
        if (m->by[i] == NULL || m->by[i][0] == '\0') {
            request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:by",
                         "A dimension is empty.");
            return;
        }
    }
    const char *codes = NULL;
    if (!stats_scope(req, m->branch, m->n_branch, &codes))
        return;
    const char *values[9] = {
        m->measure,
        m->from && m->from[0] ? m->from : NULL,
        m->to && m->to[0] ? m->to : NULL,
        m->time && m->time[0] ? m->time : "none",
        pgtext_array_build(&req->arena, m->by, m->n_by),
        codes,
        m->has_compare && m->compare ? "true" : "false",
        m->has_arg ? pgtext_int(&req->arena, m->arg) : NULL,
        stats_today_only(req) ? "true" : "false",
    };
    stats_call(req, &stmt_query, 9, values, query_rows);
}

/* ---------------------------------------------------------------- StatsMeasureList */

static void measures_rows(request_t *req, const PGresult *res)
{
    int n = PQntuples(res);
    Carrel__StatsMeasureListReply *x = arena_new(&req->arena, Carrel__StatsMeasureListReply, 1);
    carrel__stats_measure_list_reply__init(x);
    x->measures = arena_new(&req->arena, Carrel__StatsMeasure *, n > 0 ? (size_t)n : 1);
    for (int i = 0; i < n; i++) {
        Carrel__StatsMeasure *e = arena_new(&req->arena, Carrel__StatsMeasure, 1);
        carrel__stats_measure__init(e);
        e->name = reply_text(req, res, i, MEASURE_NAME);
        e->title = reply_text_opt(req, res, i, MEASURE_TITLE);
        e->unit = reply_text_opt(req, res, i, MEASURE_UNIT);
        e->dims = pgtext_array_strings(&req->arena, COL(res, i, MEASURE_DIMS), &e->n_dims);
        e->times = pgtext_array_strings(&req->arena, COL(res, i, MEASURE_TIMES), &e->n_times);
        e->kind = reply_text_opt(req, res, i, MEASURE_KIND);
        e->description = reply_text_opt(req, res, i, MEASURE_DESCRIPTION);
        x->measures[x->n_measures++] = e;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_STATS_MEASURES;
    req->resp.stats_measures = x;
    request_ok(req);
}

void handle_stats_measures(request_t *req)
{
    stats_call(req, &stmt_measures, 0, NULL, measures_rows);
}

/* ---------------------------------------------------------------- PlsReport */

static void pls_rows(request_t *req, const PGresult *res)
{
    const Carrel__PlsReport *m = req->msg->pls_report;
    int n = PQntuples(res);
    if (!stats_codes_known(req, res, PLS_UNKNOWN))
        return;
    Carrel__PlsReportReply *x = arena_new(&req->arena, Carrel__PlsReportReply, 1);
    carrel__pls_report_reply__init(x);
    x->has_year = 1;
    x->year = m->year;
    x->from = arena_printf(&req->arena, "%04d-01-01", m->year);
    x->to = arena_printf(&req->arena, "%04d-12-31", m->year);
    x->served_by = (char *)stats_served_by(res, PLS_REC);
    x->lines = arena_new(&req->arena, Carrel__PlsLine *, n > 0 ? (size_t)n : 1);
    for (int i = 0; i < n; i++) {
        if (db_null(res, i, PLS_N))
            continue;
        Carrel__PlsLine *l = arena_new(&req->arena, Carrel__PlsLine, 1);
        carrel__pls_line__init(l);
        l->code = reply_text(req, res, i, PLS_CODE);
        l->branch_code = reply_text(req, res, i, PLS_BRANCH_CODE); /* "" for the system */
        reply_double_opt(res, i, PLS_VALUE, &l->has_value, &l->value);
        l->basis = reply_text_opt(req, res, i, PLS_BASIS);
        l->how = reply_text_opt(req, res, i, PLS_HOW);
        x->lines[x->n_lines++] = l;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_PLS_REPORT;
    req->resp.pls_report = x;
    request_ok(req);
}

void handle_pls_report(request_t *req)
{
    const Carrel__PlsReport *m = req->msg->pls_report;
    if (!m->has_year || m->year < STATS_PLS_YEAR_MIN || m->year > STATS_PLS_YEAR_MAX) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:year",
                     "Name the report's year, from %d to %d (e.g. 2026).", STATS_PLS_YEAR_MIN,
                     STATS_PLS_YEAR_MAX);
        return;
    }
    const char *codes = NULL;
    if (!stats_scope(req, m->branch, m->n_branch, &codes))
        return;
    const char *values[2] = {pgtext_int(&req->arena, m->year), codes};
    stats_call(req, &stmt_pls, 2, values, pls_rows);
}

/* ---------------------------------------------------------------- StatsBuyMore */

static void buy_more_rows(request_t *req, const PGresult *res)
{
    int n = PQntuples(res);
    if (!stats_codes_known(req, res, BUY_UNKNOWN))
        return;
    Carrel__StatsBuyMoreReply *x = arena_new(&req->arena, Carrel__StatsBuyMoreReply, 1);
    carrel__stats_buy_more_reply__init(x);
    if (n > 0)
        reply_double_opt(res, 0, BUY_THRESHOLD, &x->has_threshold, &x->threshold);
    x->served_by = (char *)stats_served_by(res, BUY_REC);
    x->titles = arena_new(&req->arena, Carrel__StatsTitle *, n > 0 ? (size_t)n : 1);
    for (int i = 0; i < n; i++) {
        if (db_null(res, i, BUY_N))
            continue;
        Carrel__StatsTitle *t = arena_new(&req->arena, Carrel__StatsTitle, 1);
        carrel__stats_title__init(t);
        t->has_bib_id = t->has_holds = t->has_copies = 1;
        t->bib_id = db_int64(res, i, BUY_BIB_ID);
        t->title = reply_text_opt(req, res, i, BUY_TITLE);
        t->author = reply_text_opt(req, res, i, BUY_AUTHOR);
        t->holds = db_int64(res, i, BUY_HOLDS);
        t->copies = db_int64(res, i, BUY_COPIES);
        reply_double_opt(res, i, BUY_RATIO, &t->has_ratio, &t->ratio);
        x->titles[x->n_titles++] = t;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_STATS_BUY_MORE;
    req->resp.stats_buy_more = x;
    request_ok(req);
}

void handle_stats_buy_more(request_t *req)
{
    const Carrel__StatsBuyMore *m = req->msg->stats_buy_more;
    int limit;
    if (!request_limit(req, m->has_limit, m->limit, STATS_BUY_MORE_DEFAULT, STATS_BUY_MORE_MAX,
                       "field:limit", &limit))
        return;
    const char *threshold = NULL;
    if (m->has_threshold) {
        if (!isfinite(m->threshold) || m->threshold <= 0 || m->threshold > 1e6) {
            request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:threshold",
                         "The threshold is holds per copy, a number above 0 (e.g. 4).");
            return;
        }
        threshold = arena_printf(&req->arena, "%.17g", m->threshold);
    }
    const char *codes = NULL;
    if (!stats_scope(req, m->branch, m->n_branch, &codes))
        return;
    const char *values[3] = {codes, threshold, pgtext_int(&req->arena, limit)};
    stats_call(req, &stmt_buy_more, 3, values, buy_more_rows);
}

/* ---------------------------------------------------------------- StatsRebuild */

/* Rebuilding reads every event: the long statement timeout, on the primary (it writes). */
static void rebuild_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    db_result_t fit;
    r = db_fit(r, REBUILD_NCOLS, &fit);
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    Carrel__StatsRebuildReply *x = arena_new(&req->arena, Carrel__StatsRebuildReply, 1);
    carrel__stats_rebuild_reply__init(x);
    if (PQntuples(r->res) > 0) {
        x->has_events = x->has_rows = 1;
        x->events = db_int64(r->res, 0, REBUILD_EVENTS);
        x->rows = db_int64(r->res, 0, REBUILD_ROWS);
    }
    x->has_ms = 1;
    x->ms = (int64_t)((util_mono_ns() - req->started_ns) / 1000000u);
    log_info(req->conn->id, "stats: %s rebuilt the rollups from %lld events in %lld ms",
             request_session(req)->username, (long long)x->events, (long long)x->ms);
    req->resp.body_case = CARREL__RESPONSE__BODY_STATS_REBUILD;
    req->resp.stats_rebuild = x;
    request_ok(req);
}

void handle_stats_rebuild(request_t *req)
{
    int rc = db_exec_long(req->srv->db, &stmt_rebuild.db, 0, NULL, NULL, NULL, rebuild_done, req);
    if (rc != 0)
        request_fail_exec(req, rc);
}

/* ---------------------------------------------------------------- live */

/* Is the branch with this code in the connection's live scope? */
/* Is the branch with this code in a live scope: all, or the comma-separated codes? */
static bool live_in_scope(bool all, const char *branches, const char *code)
{
    if (all)
        return true;
    size_t n = strlen(code);
    for (const char *p = branches; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && memcmp(p, code, n) == 0)
            return true;
        p = comma ? comma + 1 : p + len;
    }
    return false;
}

/* A branch's count of workstations logged in, or one open session's (branch, workstation). */
typedef struct live_ws {
    int branch_id;
    int64_t n; /* workstations, or the workstation's id */
} live_ws_t;

static int live_ws_cmp(const void *a, const void *b)
{
    const live_ws_t *x = a, *y = b;
    if (x->branch_id != y->branch_id)
        return x->branch_id < y->branch_id ? -1 : 1;
    return x->n < y->n ? -1 : x->n > y->n;
}

/*
 * Workstations logged in now, per branch: distinct workstations of the open sessions,
 * counted once per tick (one pass over the connections, a sort), not once per branch.
 * *nbranches entries (branch_id, count), in a.
 */
static live_ws_t *live_workstations(arena_t *a, const server_t *srv, size_t *nbranches)
{
    size_t n = 0;
    for (const conn_t *c = srv->conns; c; c = c->next)
        n++;
    live_ws_t *v = arena_new(a, live_ws_t, n > 0 ? n : 1);
    size_t k = 0;
    for (const conn_t *c = srv->conns; c && k < n; c = c->next)
        if (!c->closed && c->session.authenticated && c->session.workstation_id != 0)
            v[k++] = (live_ws_t){c->session.branch_id, c->session.workstation_id};
    qsort(v, k, sizeof(*v), live_ws_cmp);
    size_t out = 0;
    for (size_t i = 0; i < k; i++) {
        if (i > 0 && v[i].branch_id == v[i - 1].branch_id && v[i].n == v[i - 1].n)
            continue; /* another session of the same workstation */
        if (out > 0 && v[out - 1].branch_id == v[i].branch_id) {
            v[out - 1].n++;
        } else {
            int branch = v[i].branch_id;
            v[out++] = (live_ws_t){branch, 1};
        }
    }
    *nbranches = out;
    return v;
}

static int64_t live_ws_at(const live_ws_t *v, size_t n, int branch_id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].branch_id == branch_id)
            return v[i].n;
    return 0;
}

/* Every branch's live figures from a stats_live() result, in arena a (once per tick). */
static Carrel__StatsLive *live_build_all(arena_t *a, const server_t *srv, const PGresult *res)
{
    int n = PQntuples(res);
    Carrel__StatsLive *x = arena_new(a, Carrel__StatsLive, 1);
    carrel__stats_live__init(x);
    x->has_time_ms = 1;
    x->time_ms = util_now_ms();
    x->served_by = (char *)stats_served_by(res, LIVE_REC);
    x->branches = arena_new(a, Carrel__StatsLiveBranch *, n > 0 ? (size_t)n : 1);
    size_t nws = 0;
    const live_ws_t *ws = live_workstations(a, srv, &nws);
    for (int i = 0; i < n; i++) {
        if (x->hour == NULL)
            x->hour = arena_strdup(a, COL(res, i, LIVE_HOUR));
        Carrel__StatsLiveBranch *b = arena_new(a, Carrel__StatsLiveBranch, 1);
        carrel__stats_live_branch__init(b);
        b->branch_code = arena_strdup(a, COL(res, i, LIVE_BRANCH_CODE));
        b->branch_name = arena_strdup(a, COL(res, i, LIVE_BRANCH_NAME));
        b->has_circ_this_hour = b->has_holds_on_shelf = b->has_holds_waiting = 1;
        b->has_transits_overdue = b->has_workstations_connected = b->has_notices_failing = 1;
        b->circ_this_hour = db_int64(res, i, LIVE_CIRC_THIS_HOUR);
        reply_double_opt(res, i, LIVE_CIRC_HOUR_AVERAGE, &b->has_circ_hour_average,
                         &b->circ_hour_average);
        b->holds_on_shelf = db_int64(res, i, LIVE_HOLDS_ON_SHELF);
        b->holds_waiting = db_int64(res, i, LIVE_HOLDS_WAITING);
        b->transits_overdue = db_int64(res, i, LIVE_TRANSITS_OVERDUE);
        b->notices_failing = db_int64(res, i, LIVE_NOTICES_FAILING);
        b->workstations_connected = live_ws_at(ws, nws, db_int32(res, i, LIVE_BRANCH_ID));
        x->branches[x->n_branches++] = b;
    }
    return x;
}

/* The same for one scope: a copy whose branches are those in scope (shared, not copied). */
static Carrel__StatsLive *live_for_scope(arena_t *a, const Carrel__StatsLive *every, bool all,
                                         const char *branches)
{
    Carrel__StatsLive *x = arena_new(a, Carrel__StatsLive, 1);
    *x = *every;
    x->n_branches = 0;
    x->branches =
        arena_new(a, Carrel__StatsLiveBranch *, every->n_branches ? every->n_branches : 1);
    for (size_t i = 0; i < every->n_branches; i++)
        if (live_in_scope(all, branches, every->branches[i]->branch_code))
            x->branches[x->n_branches++] = every->branches[i];
    return x;
}

static bool live_subscriber(const conn_t *c)
{
    return c->stats_live && !c->closed && c->session.authenticated;
}

/*
 * Due: the push cannot wait for the next tick without coming late. Pushing while
 * now + tick > next, and keeping the schedule anchored (next += interval, not now +
 * interval), the gap between two pushes stays within the interval, whatever the
 * query took.
 */
static bool live_due(const conn_t *c, uint64_t now)
{
    return now + STATS_LIVE_TICK_MS > c->stats_next_ms;
}

static void live_pushed(conn_t *c, uint64_t now)
{
    c->stats_next_ms += (uint64_t)c->stats_interval_ms;
    if (c->stats_next_ms <= now) /* far behind (a stalled loop): start again from now */
        c->stats_next_ms = now + (uint64_t)c->stats_interval_ms;
}

/* One stats_live() result for every subscriber that is due. */
static void live_push_all(stats_t *s, const PGresult *res)
{
    uint64_t now = uv_now(s->srv->loop);
    arena_t a;
    arena_init(&a);
    const Carrel__StatsLive *every = live_build_all(&a, s->srv, res);
    for (conn_t *c = s->srv->conns; c; c = c->next) {
        if (!live_subscriber(c) || !live_due(c, now))
            continue;
        Carrel__Response r = CARREL__RESPONSE__INIT;
        r.status = CARREL__STATUS__STATUS_OK;
        r.body_case = CARREL__RESPONSE__BODY_STATS_LIVE;
        r.stats_live = live_for_scope(&a, every, c->stats_all, c->stats_branches);
        (void)conn_send(c, 0, &r); /* a connection that is leaving misses nothing */
        live_pushed(c, now);
    }
    arena_free(&a);
}

/* The tick's figures cannot be had: every subscriber that is due hears so, on time,
 * instead of nothing (a screen that stops changing would look like a quiet hour). */
static void live_push_unavailable(stats_t *s, const char *why)
{
    uint64_t now = uv_now(s->srv->loop);
    Carrel__StatsLive x = CARREL__STATS_LIVE__INIT;
    x.has_time_ms = 1;
    x.time_ms = util_now_ms();
    x.unavailable = (char *)why;
    for (conn_t *c = s->srv->conns; c; c = c->next) {
        if (!live_subscriber(c) || !live_due(c, now))
            continue;
        Carrel__Response r = CARREL__RESPONSE__INIT;
        r.status = CARREL__STATUS__STATUS_OK;
        r.body_case = CARREL__RESPONSE__BODY_STATS_LIVE;
        r.stats_live = &x;
        (void)conn_send(c, 0, &r);
        live_pushed(c, now);
    }
}

#define LIVE_STANDBY_DOWN                                                                          \
    "The live figures come from the standby database, which cannot be reached now; the desks "     \
    "are not affected. They come back by themselves once it answers."

static void live_done(const db_result_t *r, void *arg)
{
    stats_t *s = arg;
    s->live_running = false;
    db_result_t fit;
    r = db_fit(r, LIVE_NCOLS, &fit);
    if (r->status == DB_OK && !s->stopping) {
        if (s->live_trouble)
            log_info(0, "stats: the live figures are back");
        s->live_trouble = false;
        live_push_all(s, r->res);
    } else if (r->status != DB_OK && !s->stopping) {
        if (!s->live_trouble)
            log_warn(0, "stats: live figures not pushed: %s", r->message ? r->message : "?");
        s->live_trouble = true;
        live_push_unavailable(s, s->standby && !s->srv->cfg.stats_fallback_primary
                                     ? LIVE_STANDBY_DOWN
                                     : "The live figures cannot be had from the database now; "
                                       "they come back by themselves.");
    }
}

static void live_done_primary(const db_result_t *r, void *arg)
{
    stats_t *s = arg;
    live_done(r, s);
    stats_primary_back(s);
}

static void live_done_standby(const db_result_t *r, void *arg)
{
    stats_t *s = arg;
    bool down = stats_standby_down(r) || stats_standby_conflict(r);
    s->standby_jobs--;
    if (down && s->srv->cfg.stats_fallback_primary && !s->stopping) {
        s->primary_jobs++; /* live_running stays set: the tick's query goes on */
        if (db_exec_short(s->srv->db, &stmt_live.db, 0, NULL, NULL, NULL, live_done_primary, s) !=
            0) {
            s->primary_jobs--;
            s->live_running = false;
            live_push_unavailable(s, "The live figures cannot be had from the database now; "
                                     "they come back by themselves.");
        }
        return;
    }
    live_done(r, s);
    stats_maybe_free(s);
}

/* Run the one stats_live() query of a tick, where statistics run. */
static void live_query(stats_t *s)
{
    s->live_running = true;
    if (s->standby && s->pool) {
        s->standby_jobs++;
        if (db_exec_short(s->pool, &stmt_live.db, 0, NULL, NULL, NULL, live_done_standby, s) == 0)
            return;
        s->standby_jobs--;
        if (!s->srv->cfg.stats_fallback_primary) {
            s->live_running = false;
            live_push_unavailable(s, LIVE_STANDBY_DOWN);
            return;
        }
    } else if (s->standby && !s->srv->cfg.stats_fallback_primary) {
        s->live_running = false;
        live_push_unavailable(s, LIVE_STANDBY_DOWN);
        return;
    }
    s->primary_jobs++;
    if (db_exec_short(s->srv->db, &stmt_live.db, 0, NULL, NULL, NULL, live_done_primary, s) != 0) {
        s->primary_jobs--;
        s->live_running = false;
        live_push_unavailable(s, "The live figures cannot be had from the database now; they "
                                 "come back by themselves.");
    }
}

static void live_tick(uv_timer_t *t)
{
    stats_t *s = t->data;
    if (s->stopping || s->live_running)
        return;
    uint64_t now = uv_now(s->srv->loop);
    int subscribers = 0;
    bool due = false;
    for (const conn_t *c = s->srv->conns; c; c = c->next) {
        if (!live_subscriber(c))
            continue;
        subscribers++;
        due |= live_due(c, now);
    }
    if (subscribers == 0) {
        uv_timer_stop(t); /* the next subscription starts it again */
        return;
    }
    if (due)
        live_query(s);
}

/* The answer to a subscription: this connection's first StatsLive, then the pushes. */
static void live_subscribe_rows(request_t *req, const PGresult *res)
{
    const Carrel__StatsLiveSubscribe *m = req->msg->stats_live;
    conn_t *c = req->conn;
    /* Every branch named must exist (a subscription that never shows one would puzzle). */
    for (size_t i = 0; i < m->n_branch; i++) {
        bool found = false;
        for (int r = 0; r < PQntuples(res) && !found; r++)
            found = strcmp(COL(res, r, LIVE_BRANCH_CODE), m->branch[i]) == 0;
        if (!found) {
            request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:branch",
                         "No branch has the code %s.", m->branch[i]);
            return;
        }
    }
    /* The scope: the session's branch for branch-bound roles, else those named or all. */
    const session_t *who = request_session(req);
    bool all = !perm_role_is_branch_bound(who->role) && m->n_branch == 0;
    char branches[sizeof(c->stats_branches)] = "";
    if (perm_role_is_branch_bound(who->role)) {
        util_strlcpy(branches, who->branch_code, sizeof(branches));
    } else {
        for (size_t i = 0; i < m->n_branch; i++) {
            size_t len = strlen(branches);
            snprintf(branches + len, sizeof(branches) - len, "%s%s", len ? "," : "", m->branch[i]);
        }
    }
    /* Pipelined behind a Logout and a Login, the connection is someone else's now: they
     * subscribe for themselves (this answer, which was asked for, still goes out). */
    if (c->session.authenticated && c->session.staff_id == who->staff_id) {
        c->stats_all = all;
        memcpy(c->stats_branches, branches, sizeof(branches));
        c->stats_interval_ms = (m->has_interval_s ? m->interval_s : STATS_LIVE_DEFAULT_S) * 1000;
        c->stats_next_ms = uv_now(req->srv->loop) + (uint64_t)c->stats_interval_ms;
        c->stats_live = true;
        stats_t *s = req->srv->stats;
        if (s && !s->stopping && !uv_is_active((uv_handle_t *)&s->live_timer))
            uv_timer_start(&s->live_timer, live_tick, STATS_LIVE_TICK_MS, STATS_LIVE_TICK_MS);
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_STATS_LIVE;
    req->resp.stats_live =
        live_for_scope(&req->arena, live_build_all(&req->arena, req->srv, res), all, branches);
    request_ok(req);
}

void handle_stats_live(request_t *req)
{
    const Carrel__StatsLiveSubscribe *m = req->msg->stats_live;
    conn_t *c = req->conn;
    if (m->has_stop && m->stop) {
        c->stats_live = false;
        Carrel__StatsLive *x = arena_new(&req->arena, Carrel__StatsLive, 1);
        carrel__stats_live__init(x);
        x->has_time_ms = 1;
        x->time_ms = util_now_ms();
        req->resp.body_case = CARREL__RESPONSE__BODY_STATS_LIVE;
        req->resp.stats_live = x;
        request_ok(req);
        return;
    }
    if (m->has_interval_s && (m->interval_s < 1 || m->interval_s > STATS_LIVE_MAX_S)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:interval_s",
                     "Live figures come every 1 to %d seconds, not %d.", STATS_LIVE_MAX_S,
                     m->interval_s);
        return;
    }
    if (m->n_branch > STATS_LIVE_MAX_BRANCHES) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:branch",
                     "Name at most %d branches (or none, for all).", STATS_LIVE_MAX_BRANCHES);
        return;
    }
    const char *codes = NULL; /* checks the scope; the codes are checked against the rows */
    if (!stats_scope(req, m->branch, m->n_branch, &codes))
        return;
    stats_call(req, &stmt_live, 0, NULL, live_subscribe_rows);
}

/* ---------------------------------------------------------------- the rollup job */

/* A timer tick starts a run: it may take several batches. */
static void rollup_tick(void *arg)
{
    stats_t *s = arg;
    s->rollup_folded = 0;
}

/* A full batch: more wait, run again at once (the jobtimer queues it behind the desks). */
static bool rollup_done(void *arg, const PGresult *res)
{
    stats_t *s = arg;
    int64_t folded = PQntuples(res) > 0 ? db_int64(res, 0, ROLLUP_FOLDED) : 0;
    s->rollup_folded += folded;
    bool again = folded >= STATS_ROLLUP_BATCH && !s->stopping;
    if (!again && s->rollup_folded >= STATS_ROLLUP_BATCH)
        log_info(0, "stats: %lld event(s) folded into the rollups", (long long)s->rollup_folded);
    return again;
}

static jobtimer_t *rollup_start(stats_t *s)
{
    snprintf(s->rollup_batch, sizeof(s->rollup_batch), "%d", STATS_ROLLUP_BATCH);
    s->rollup_values[0] = s->rollup_batch;
    const jobtimer_def_t def = {.module = "stats",
                                .job = "the rollup job",
                                .stmt = &stmt_rollup,
                                .nparams = 1,
                                .values = s->rollup_values,
                                .ncols = ROLLUP_NCOLS,
                                .long_statement = true,
                                .interval_s = s->srv->cfg.stats_rollup_interval_s,
                                .tick = rollup_tick,
                                .done = rollup_done,
                                .arg = s};
    return jobtimer_start(s->srv, &def);
}

/* ---------------------------------------------------------------- replica lag */

static void stats_lag_done(const db_result_t *r, void *arg)
{
    stats_t *s = arg;
    s->standby_jobs--;
    s->lag_running = false;
    db_result_t fit;
    r = db_fit(r, LAG_NCOLS, &fit);
    s->lag_known = r->status == DB_OK && PQntuples(r->res) == 1 && !db_null(r->res, 0, LAG_BYTES) &&
                   !db_null(r->res, 0, LAG_SECONDS);
    if (s->lag_known) {
        s->lag_bytes = db_double(r->res, 0, LAG_BYTES);
        s->lag_s = db_double(r->res, 0, LAG_SECONDS);
    }
    stats_maybe_free(s);
}

/* The primary's position is back: now the standby's replay against it. */
static void stats_lag_primary_done(const db_result_t *r, void *arg)
{
    stats_t *s = arg;
    db_result_t fit;
    r = db_fit(r, 1, &fit);
    bool ok = r->status == DB_OK && PQntuples(r->res) == 1 && !db_null(r->res, 0, 0);
    s->lag_running = false;
    if (!ok || s->stopping || s->pool == NULL) {
        s->lag_known = false; /* no primary to measure against: no lag to tell */
    } else {
        snprintf(s->lag_lsn, sizeof(s->lag_lsn), "%s", db_text(r->res, 0, 0));
        s->lag_values[0] = s->lag_lsn;
        s->standby_jobs++;
        s->lag_running = true;
        if (db_exec_short(s->pool, &stmt_lag, 1, s->lag_values, NULL, NULL, stats_lag_done, s) !=
            0) {
            s->standby_jobs--;
            s->lag_running = false;
            s->lag_known = false;
        }
    }
    stats_primary_back(s); /* last: it may free s */
}

/* Every STATS_LAG_INTERVAL_MS: one sample at a time (the primary's position, then the
 * standby's replay). A standby that is down leaves the lag unknown: the metrics
 * disappear, which an alert on absent() can catch. */
static void stats_lag_tick(uv_timer_t *t)
{
    stats_t *s = t->data;
    if (s->stopping || s->lag_running)
        return;
    if (s->pool == NULL) {
        s->lag_known = false;
        return;
    }
    s->primary_jobs++;
    s->lag_running = true;
    if (db_exec_short(s->srv->db, &stmt_primary_lsn, 0, NULL, NULL, NULL, stats_lag_primary_done,
                      s) != 0) {
        s->primary_jobs--;
        s->lag_running = false;
        s->lag_known = false;
    }
}

bool stats_replica_lag(const stats_t *s, double *seconds, double *bytes)
{
    if (s == NULL || !s->standby || !s->lag_known)
        return false;
    *seconds = s->lag_s;
    *bytes = s->lag_bytes;
    return true;
}

const db_pool_t *stats_pool_of(const stats_t *s)
{
    return s ? s->pool : NULL;
}

/* ---------------------------------------------------------------- lifecycle */

int stats_start(server_t *srv)
{
    const struct server_config *cfg = &srv->cfg;
    stats_t *s = util_xcalloc(1, sizeof(*s));
    s->srv = srv;
    srv->stats = s;
    uv_timer_init(srv->loop, &s->live_timer);
    uv_timer_init(srv->loop, &s->retry_timer);
    uv_timer_init(srv->loop, &s->wait_timer);
    uv_timer_init(srv->loop, &s->lag_timer);
    s->live_timer.data = s->retry_timer.data = s->wait_timer.data = s->lag_timer.data = s;
    s->rollup = rollup_start(s); /* by the timer every stats_rollup_interval_s (0: never) */
    s->open_timers = 5;
    s->standby = cfg->stats_conninfo && cfg->stats_conninfo[0];
    char why[300];
    if (s->standby && db_conninfo_needs_dns(cfg->stats_conninfo, why, sizeof(why))) {
        /* libpq would resolve it inside PQconnectStart, on the loop, at every reconnect:
         * a standby whose DNS hangs would stall every desk. */
        log_error(0, "stats_conninfo: %s", why);
        return -1;
    }
    if (s->standby && stats_pool_open(s) != 0) {
        log_error(0, "stats: cannot create the standby pool");
        return -1;
    }
    if (s->standby)
        uv_timer_start(&s->lag_timer, stats_lag_tick, 0, STATS_LAG_INTERVAL_MS);
    log_info(0, "stats: %s; rollups folded %s",
             s->standby ? (cfg->stats_fallback_primary
                               ? "statistics on the standby (the primary while it is down)"
                               : "statistics on the standby")
                        : "statistics on the primary's read connections",
             cfg->stats_rollup_interval_s > 0 ? "by the timer"
                                              : "never (stats_rollup_interval_s 0)");
    return 0;
}

void stats_stop(stats_t *s)
{
    if (s == NULL || s->stopping)
        return;
    s->stopping = true;
    jobtimer_stop(s->rollup);
    uv_timer_stop(&s->live_timer);
    uv_timer_stop(&s->retry_timer);
    uv_timer_stop(&s->wait_timer);
    uv_timer_stop(&s->lag_timer);
}

void stats_abort(stats_t *s)
{
    if (s == NULL)
        return;
    stats_stop(s);
    bool said = jobtimer_abort(s->rollup); /* a rollup run out: it says so itself */
    if (s->aborted || s->primary_jobs == 0)
        return;
    if (!said)
        log_warn(0, "stats: shutdown timeout: not waiting for the rollup job");
    s->aborted = true;
    server_jobs_gone(s->srv);
}

bool stats_gone(const stats_t *s)
{
    return s == NULL ||
           (s->stopping && (s->primary_jobs == 0 || s->aborted) && jobtimer_gone(s->rollup));
}

void stats_close(stats_t *s)
{
    if (s == NULL || s->closing)
        return;
    stats_stop(s);
    s->closing = true;
    jobtimer_close(s->rollup, stats_rollup_closed, s);
    s->rollup = NULL;
    uv_close((uv_handle_t *)&s->live_timer, stats_timer_closed);
    uv_close((uv_handle_t *)&s->retry_timer, stats_timer_closed);
    uv_close((uv_handle_t *)&s->wait_timer, stats_timer_closed);
    uv_close((uv_handle_t *)&s->lag_timer, stats_timer_closed);
    db_pool_t *p = s->pool;
    s->pool = NULL;
    if (p)
        db_pool_close(p, stats_pool_closed, s);
}
