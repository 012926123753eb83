#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "handlers.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "util.h"

/* The next tab-separated field of *p (NULL once there is none). */
static char *events_field(char **p)
{
    char *field = *p;
    if (field == NULL)
        return NULL;
    char *tab = strchr(field, '\t');
    if (tab)
        *tab++ = '\0';
    *p = tab;
    return field;
}

/* A positive id, or an empty field (has stays false); false if malformed. */
static bool events_id(const char *field, bool *has, int64_t *out)
{
    *has = false;
    if (field == NULL || field[0] == '\0')
        return true;
    if (!util_parse_int(field, 1, INT64_MAX, out))
        return false;
    *has = true;
    return true;
}

/* Comma-separated user names into out->usernames; false if too many or one is empty. */
static bool events_usernames(char *list, events_payload_t *out)
{
    out->n_usernames = 0;
    if (list == NULL || list[0] == '\0')
        return true;
    for (char *name = list; name;) {
        char *comma = strchr(name, ',');
        if (comma)
            *comma++ = '\0';
        if (name[0] == '\0' || out->n_usernames == EVENTS_USERNAMES_MAX)
            return false;
        out->usernames[out->n_usernames++] = name;
        name = comma;
    }
    return true;
}

bool events_payload_parse(char *payload, events_payload_t *out)
{
    memset(out, 0, sizeof(*out));
    char *p = payload;
    char *f[7];
    int n = 0;
    while (p && n < 7)
        f[n++] = events_field(&p);
    if (n < 5 || p != NULL) /* too few fields, or an eighth */
        return false;
    out->branch_code = f[0];
    out->kind = f[1];
    out->item_barcode = f[2][0] ? f[2] : NULL;
    out->text = f[4];
    if (!events_id(f[3], &out->has_bib_id, &out->bib_id))
        return false;
    if (n > 5 && !events_id(f[5], &out->has_ticket_id, &out->ticket_id))
        return false;
    return n < 7 || events_usernames(f[6], out);
}

bool events_payload_for(const events_payload_t *p, const char *username)
{
    if (p->n_usernames == 0)
        return true;
    for (size_t i = 0; i < p->n_usernames; i++)
        if (strcmp(p->usernames[i], username) == 0)
            return true;
    return false;
}

bool events_payload_reaches(const events_payload_t *p, const session_t *s, bool all_branches)
{
    if (p->n_usernames)
        return all_branches || s->role == CARREL__ROLE__ROLE_COORDINATOR ||
               s->role == CARREL__ROLE__ROLE_ADMIN || events_payload_for(p, s->username);
    return all_branches || strcmp(s->branch_code, p->branch_code) == 0;
}

/* A stored event as the tab-separated payload events_payload_parse reads: seven fields. */
#define EVENTS_PAYLOAD_SQL                                                                         \
    "concat_ws(E'\\t', e.branch_code, e.kind, coalesce(e.item_barcode, ''),"                       \
    " coalesce(e.bib_id::text, ''), e.text, coalesce(e.ticket_id::text, ''),"                      \
    " array_to_string(e.usernames, ','))"
#define EVENTS_AT_MS_SQL "(extract(epoch FROM e.at) * 1000)::bigint"

/*
 * The poll. Its snapshot S_k (the statement's: a plain SELECT has one, and
 * pg_current_snapshot() returns it) gives xip_k (the transactions running
 * then, below xmax_k) and xmax_k; it returns the rows visible in S_k whose
 * xid is >= xmax_{k-1} or in xip_{k-1}, the previous poll's snapshot.
 *
 * Proof that every committed row is delivered exactly once. A row R of
 * transaction T (xid x, T's top-level id: pg_current_xact_id()) becomes
 * visible in the first snapshot taken after T commits, and stays visible.
 * Let S_k be the first poll snapshot in which R is visible (polls run one at
 * a time, so S_{k-1} was taken before S_k). In S_{k-1} R was invisible while
 * T, which commits, was not aborted: T was running or had no xid yet. A
 * snapshot counts as running exactly the xids in its xip and every xid >=
 * its xmax (xids >= xmax are not listed in xip); an xid assigned after the
 * snapshot is >= its xmax. So x is in xip_{k-1} or x >= xmax_{k-1}: poll k
 * returns R. Poll k+1 does not: R visible in S_k means T had committed,
 * so x < xmax_k and x is not in xip_k. No later poll does either (xmax only
 * grows, and a finished transaction is never running again).
 *
 * Why not `id > max_seen OR xid = ANY(xip_prev)`, although ids are drawn
 * after xids: a snapshot's xmax is the latest *completed* xid + 1, not the
 * next xid to assign, and its xip lists only the running xids below xmax.
 * T' gets xid 100, T gets 101; T draws id 5, T' draws id 6 and commits. A
 * snapshot now has xmax 101 and an empty xip: it sees id 6, and T (id 5 < 6,
 * xid 101 not in xip) would be missed when it commits. xid >= xmax finds it.
 *
 * The first poll (xip and xmax NULL) takes the snapshot to start from and
 * delivers the rows of transactions that began since the daemon started
 * (at >= now() - its uptime + 1 s, on the database's clock): a daemon that
 * starts replays no history, and an event committed before its first poll
 * (a checkin just after start) is not lost. A poll that fails changes
 * nothing; the next one starts from the same snapshot, however long the
 * database was away.
 */
#define EVENTS_POLL_SQL(on)                                                                        \
    "SELECT s.xip::text, s.xmax::text, e.id, " EVENTS_AT_MS_SQL ", " EVENTS_PAYLOAD_SQL            \
    " FROM (SELECT ARRAY(SELECT pg_snapshot_xip(c.snap)) AS xip, pg_snapshot_xmax(c.snap) AS"      \
    " xmax FROM (SELECT pg_current_snapshot() AS snap) c) s LEFT JOIN desk_event e ON " on         \
    " ORDER BY e.id LIMIT " EVENTS_POLL_PAGE_SQL
/*
 * A poll returns at most EVENTS_POLL_PAGE rows, lowest ids first, so that
 * one delivery (rows x connections) never holds the loop long after an
 * outage or a batch of thousands. A full page leaves the snapshot S_1 it
 * read unadopted: the next pages ask, with the same previous snapshot, for
 * the rows visible in S_1 ($4/$5 or $3/$4: invisible there is excluded) with
 * an id above the last delivered; the page that comes back short adopts S_1.
 * The pages partition exactly the rows the single poll would have returned.
 */
#define EVENTS_POLL_PAGE     500
#define EVENTS_POLL_PAGE_SQL "500"
#define EVENTS_POLL_NEW      "(e.xid >= $2::xid8 OR e.xid = ANY($1::xid8[]))"
#define EVENTS_POLL_FIRST    "e.at >= now() - make_interval(secs => $1::double precision)"
static const db_stmt_t stmt_poll = {"events_poll", EVENTS_POLL_SQL(EVENTS_POLL_NEW)};
static const db_stmt_t stmt_poll_first = {"events_poll_first", EVENTS_POLL_SQL(EVENTS_POLL_FIRST)};
static const db_stmt_t stmt_poll_page = {
    "events_poll_page",
    EVENTS_POLL_SQL(EVENTS_POLL_NEW " AND e.id > $3::bigint AND NOT (e.xid >= $5::xid8 OR"
                                    " e.xid = ANY($4::xid8[]))")};
static const db_stmt_t stmt_poll_first_page = {
    "events_poll_first_page",
    EVENTS_POLL_SQL(EVENTS_POLL_FIRST " AND e.id > $2::bigint AND NOT (e.xid >= $4::xid8 OR"
                                      " e.xid = ANY($3::xid8[]))")};
enum { POLL_XIP, POLL_XMAX, POLL_ID, POLL_AT_MS, POLL_PAYLOAD, POLL_NCOLS };

/*
 * The replay of Subscribe.since_event_id: the stored events the connection
 * hears (the rule of events_payload_reaches: addressed ones to their users,
 * coordinators and administrators; the rest to their branch; all to an
 * all-branches subscriber), the newest EVENTS_REPLAY_MAX + 1 (one more
 * tells that the cap cut), oldest first. Which events ($1 the lowest id
 * taken by id, $7/$8 a mark's snapshot, $9/$10 the poller's current one,
 * each NULL when not used): those with an id above $1 or invisible in the
 * mark's snapshot (handle_subscribe says why that is complete), and, when
 * the poller has a snapshot, only those visible in it: every event the
 * replay sends has then been pushed live already, so an id a desk took
 * from a replay is one a poll delivered (the mark lookup relies on it);
 * the newer ones come live to this connection, subscribed already.
 */
static const db_stmt_t stmt_replay = {
    "events_replay",
    "SELECT r.id, r.at_ms, r.payload FROM (SELECT e.id, " EVENTS_AT_MS_SQL
    " AS at_ms, " EVENTS_PAYLOAD_SQL
    " AS payload FROM desk_event e WHERE (e.id > $1::bigint OR e.xid >= $7::xid8"
    " OR e.xid = ANY($8::xid8[])) AND ($9::xid8 IS NULL OR NOT (e.xid >= $9::xid8"
    " OR e.xid = ANY($10::xid8[]))) AND CASE WHEN"
    " cardinality(e.usernames) > 0 THEN $2::boolean OR $4::boolean OR $5::text = ANY(e.usernames)"
    " ELSE $2::boolean OR e.branch_code = $3::text END ORDER BY e.id DESC LIMIT $6::integer) r"
    " ORDER BY r.id"};
enum { REPLAY_ID, REPLAY_AT_MS, REPLAY_PAYLOAD, REPLAY_NCOLS };

static const db_stmt_t stmt_prune = {"events_prune", "SELECT desk_event_prune($1::integer)"};
enum { PRUNE_DELETED, PRUNE_NCOLS };

void events_register_statements(void)
{
    db_stmt_register(&stmt_poll);
    db_stmt_register(&stmt_poll_first);
    db_stmt_register(&stmt_poll_page);
    db_stmt_register(&stmt_poll_first_page);
    db_stmt_register(&stmt_replay);
    db_stmt_register(&stmt_prune);
}

/* Fill ev from a parsed payload (pointers into p). */
static void events_fill(Carrel__Event *ev, const events_payload_t *p, int64_t id, int64_t at_ms)
{
    ev->branch_code = p->branch_code;
    ev->kind = p->kind;
    ev->item_barcode = p->item_barcode;
    ev->has_bib_id = p->has_bib_id;
    ev->bib_id = p->bib_id;
    ev->text = p->text;
    ev->has_ticket_id = p->has_ticket_id;
    ev->ticket_id = p->ticket_id;
    ev->has_time_ms = 1;
    ev->time_ms = at_ms;
    ev->has_id = 1;
    ev->id = id;
}

/* True when c is subscribed, logged in, open and hears p. */
static bool events_conn_hears(const conn_t *c, const events_payload_t *p)
{
    return c->subscribed && c->session.authenticated && !c->closed &&
           events_payload_reaches(p, &c->session, c->all_branches);
}

/*
 * Push one stored event to the subscribed, logged-in connections it is for:
 * by branch (the connection's session branch, or every branch for
 * all_branches); an event addressed to user names (a ticket's staff) goes to
 * their connections wherever they are logged in, and to every coordinator
 * and administrator (events_payload_reaches), not to the rest of the branch.
 */
void events_deliver(server_t *srv, int64_t id, int64_t at_ms, const char *payload)
{
    char *copy = util_xstrdup(payload);
    events_payload_t *p = util_xcalloc(1, sizeof(*p));
    if (!events_payload_parse(copy, p)) {
        log_warn(0, "malformed desk event %lld ignored", (long long)id);
        free(p);
        free(copy);
        return;
    }
    Carrel__Event ev = CARREL__EVENT__INIT;
    events_fill(&ev, p, id, at_ms);
    int sent = 0;
    for (conn_t *c = srv->conns; c; c = c->next) {
        if (!events_conn_hears(c, p))
            continue;
        conn_push_event(c, &ev);
        metrics_event_pushed(ev.kind);
        sent++;
    }
    log_debug(0, "event %lld %s for %s to %d desk(s)", (long long)id, ev.kind, ev.branch_code,
              sent);
    free(p);
    free(copy);
}

/* ---- the poller ---- */

#define EVENTS_PRUNE_EVERY_MS (3600 * 1000)
/*
 * A poll woken by a write starts at least this long after the previous one
 * started: under load (1,800 writes a second) polls stay at most 200 a
 * second, each a few index probes, while an event still reaches its desks
 * within a few milliseconds of its commit.
 */
#define EVENTS_WAKE_SPACING_MS 5

/*
 * A mark: poll k's snapshot S_k (xmax, xip) and the highest id delivered by
 * polls up to k. Two rings: every poll that delivered rows, the last
 * EVENTS_MARKS_FINE (so a desk that left a moment ago is replayed little
 * more than it missed, even under load), and one a second, the last
 * EVENTS_MARKS_COARSE (an hour: a desk away longer replays by the window).
 */
#define EVENTS_MARKS_FINE      256
#define EVENTS_MARKS_COARSE    3600
#define EVENTS_MARK_SPACING_MS 1000
typedef struct events_mark {
    int64_t max_id;
    uint64_t seq; /* the poll's number: which of two marks is newer */
    char xmax[24];
    char *xip;
} events_mark_t;

typedef struct events_marks {
    events_mark_t *m;
    size_t cap, next, n;
    uint64_t at; /* uv_now() of the newest */
} events_marks_t;

struct events {
    server_t *srv;
    uv_timer_t timer; /* every event_poll_ms: polls, and the hourly retention */
    uv_timer_t soon;  /* a woken poll held back by EVENTS_WAKE_SPACING_MS */
    int handles_open;
    bool soon_armed;
    uint64_t polled_at; /* uv_now() when the last poll was sent */
    bool polling;       /* a poll is out (one at a time) */
    bool again;         /* woken while polling: one more poll after it */
    bool pruning;       /* a retention run is out */
    bool stopping;      /* draining: no new statement */
    bool aborted;       /* shutdown no longer waits for what is out */
    bool closing;       /* free once the timer is closed and nothing is out */
    bool trouble;       /* a poll failure said once, until one succeeds */
    /* The previous poll's snapshot (its xip as a text array, its xmax);
     * based false until the first poll took one. */
    bool based;
    char *xip;
    char xmax[24];
    /* The highest id any poll delivered (0: none), and the marks: a poll's
     * snapshot with that highest id after it (handle_subscribe's replay
     * starts from one). */
    int64_t delivered_max;
    events_mark_t fine_m[EVENTS_MARKS_FINE], coarse_m[EVENTS_MARKS_COARSE];
    events_marks_t fine, coarse;
    uint64_t polls;         /* polls that adopted a snapshot: the marks' seq */
    uint64_t last_ok_ms;    /* uv_now() of the last poll that succeeded, 0: none */
    uint64_t lookback_from; /* uv_now() the first poll after a rebase looks back to */
    /* Paging (EVENTS_POLL_PAGE): the snapshot S_1 of the poll whose first page was
     * full, not adopted until the last page, and the last id delivered. */
    bool paging;
    char *page_xip;
    char page_xmax[24];
    char page_last[24];
    uint64_t pruned_at; /* uv_now() of the last retention run started, 0: never */
};

bool events_prune_due(uint64_t last_ms, uint64_t now_ms)
{
    return last_ms == 0 || now_ms - last_ms >= EVENTS_PRUNE_EVERY_MS;
}

static void events_ring_clear(events_marks_t *r)
{
    for (size_t i = 0; i < r->cap; i++) {
        free(r->m[i].xip);
        r->m[i].xip = NULL;
    }
    r->next = r->n = 0;
}

static void events_marks_clear(events_t *e)
{
    events_ring_clear(&e->fine);
    events_ring_clear(&e->coarse);
}

static void events_ring_push(events_t *e, events_marks_t *r, uint64_t now)
{
    events_mark_t *m = &r->m[r->next];
    free(m->xip);
    m->xip = util_xstrdup(e->xip);
    util_strlcpy(m->xmax, e->xmax, sizeof(m->xmax));
    m->max_id = e->delivered_max;
    m->seq = e->polls;
    r->next = (r->next + 1) % r->cap;
    if (r->n < r->cap)
        r->n++;
    r->at = now;
}

/* Keep the snapshot just adopted as a mark, when its poll delivered rows. */
static void events_mark(events_t *e, uint64_t now, bool delivered)
{
    e->polls++;
    if (!delivered || e->delivered_max == 0)
        return;
    events_ring_push(e, &e->fine, now);
    if (e->coarse.n == 0 || now - e->coarse.at >= EVENTS_MARK_SPACING_MS)
        events_ring_push(e, &e->coarse, now);
}

/* The newest mark of r whose highest id is below since; NULL when none. */
static const events_mark_t *events_ring_before(const events_marks_t *r, int64_t since)
{
    for (size_t i = 0; i < r->n; i++) {
        const events_mark_t *m = &r->m[(r->next + r->cap - 1 - i) % r->cap];
        if (m->max_id < since)
            return m;
    }
    return NULL;
}

/* The newest mark whose highest id is below since; NULL when none is kept. */
static const events_mark_t *events_mark_before(const events_t *e, int64_t since)
{
    const events_mark_t *f = events_ring_before(&e->fine, since);
    const events_mark_t *c = events_ring_before(&e->coarse, since);
    if (f == NULL || (c != NULL && c->seq > f->seq))
        return c;
    return f;
}

bool events_xmax_went_back(const char *kept, const char *now)
{
    int64_t k, n;
    if (kept == NULL || now == NULL || !util_parse_int(kept, 0, INT64_MAX, &k) ||
        !util_parse_int(now, 0, INT64_MAX, &n))
        return false;
    return n < k;
}

static void events_maybe_free(events_t *e)
{
    if (!e->closing || e->handles_open > 0 || e->polling || e->pruning)
        return;
    events_marks_clear(e);
    free(e->page_xip);
    free(e->xip);
    free(e);
}

/* Something out came back: a drain waiting for it may finish. */
static void events_came_back(events_t *e)
{
    if (e->stopping && !e->aborted && !e->polling && !e->pruning && !e->closing)
        server_jobs_gone(e->srv);
    events_maybe_free(e);
}

static void events_poll(events_t *e);

/* The snapshot the next poll starts from (copied). */
static void events_adopt(events_t *e, const char *xip, const char *xmax)
{
    char *copy = util_xstrdup(xip);
    free(e->xip);
    e->xip = copy;
    util_strlcpy(e->xmax, xmax, sizeof(e->xmax));
    e->based = true;
}

/*
 * Keep the poll's snapshot for the next one (every row carries it). An xmax
 * below the kept one means the xids went back (a failover to a replica that
 * lagged, a restore): the kept snapshot would hide every new row until the
 * xids pass it again, so the poller starts over as at start, looking back
 * in time to the last poll that succeeded, and forgets its marks.
 */
static void events_keep_snapshot(events_t *e, const PGresult *res)
{
    const char *xmax = db_text(res, 0, POLL_XMAX);
    if (e->based && events_xmax_went_back(e->xmax, xmax)) {
        log_warn(0,
                 "events: the database's transaction ids went back (xmax %s, was %s: a "
                 "failover or a restore?); polling again from the time of the last poll",
                 xmax, e->xmax);
        e->based = false;
        e->lookback_from = e->last_ok_ms;
        events_marks_clear(e);
        e->delivered_max = 0; /* the ids may have gone back too (a restore) */
        e->again = true;
        return;
    }
    events_adopt(e, db_text(res, 0, POLL_XIP), xmax);
}

/* Deliver a poll's rows; returns how many (the LEFT JOIN's empty row is none). */
static int events_poll_deliver(events_t *e, const PGresult *res)
{
    int n = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        if (db_null(res, i, POLL_ID))
            continue;
        int64_t id = db_int64(res, i, POLL_ID);
        events_deliver(e->srv, id, db_int64(res, i, POLL_AT_MS), db_text(res, i, POLL_PAYLOAD));
        if (id > e->delivered_max)
            e->delivered_max = id;
        snprintf(e->page_last, sizeof(e->page_last), "%lld", (long long)id);
        n++;
    }
    return n;
}

static void events_poll_done(const db_result_t *r, void *arg)
{
    events_t *e = arg;
    db_result_t fit;
    r = db_fit(r, POLL_NCOLS, &fit);
    e->polling = false;
    if (r->status != DB_OK) {
        /* Nothing changes: the next poll (the next event_poll_ms tick, or a
         * write's wake once the database is back) starts from the same
         * snapshot, and delivers the backlog then. */
        if (!e->trouble && !e->stopping)
            log_warn(0, "events: the poll failed: %s; it runs again (no event is lost)",
                     r->message ? r->message : "database unavailable");
        e->trouble = true;
    } else if (!e->closing && PQntuples(r->res) > 0) {
        if (e->trouble)
            log_info(0, "events: the poll runs again");
        e->trouble = false;
        uint64_t now = uv_now(e->srv->loop);
        const char *xmax = db_text(r->res, 0, POLL_XMAX);
        if (!e->paging && e->based && events_xmax_went_back(e->xmax, xmax)) {
            events_keep_snapshot(e, r->res); /* rebases */
        } else {
            int n = events_poll_deliver(e, r->res);
            bool was_paging = e->paging;
            if (!e->paging && n == EVENTS_POLL_PAGE) {
                /* More may follow: page on from this snapshot. */
                e->paging = true;
                free(e->page_xip);
                e->page_xip = util_xstrdup(db_text(r->res, 0, POLL_XIP));
                util_strlcpy(e->page_xmax, xmax, sizeof(e->page_xmax));
                e->again = true;
            } else if (e->paging && n == EVENTS_POLL_PAGE) {
                e->again = true;
            } else if (e->paging) {
                events_adopt(e, e->page_xip, e->page_xmax);
                e->paging = false;
            } else {
                events_keep_snapshot(e, r->res);
            }
            e->last_ok_ms = now;
            if (e->based && !e->paging)
                events_mark(e, now, n > 0 || was_paging);
        }
    }
    if (e->again && !e->stopping && r->status == DB_OK) {
        e->again = false;
        events_wake(e);
    }
    events_came_back(e);
}

static void events_poll(events_t *e)
{
    if (e->stopping || e->closing)
        return;
    if (e->polling) {
        e->again = true;
        return;
    }
    int rc;
    char uptime[32];
    snprintf(uptime, sizeof(uptime), "%.3f",
             (double)(uv_now(e->srv->loop) - e->lookback_from) / 1000.0 + 1.0);
    if (e->based && e->paging) {
        const char *values[5] = {e->xip, e->xmax, e->page_last, e->page_xip, e->page_xmax};
        rc = db_exec_short(e->srv->db, &stmt_poll_page, 5, values, NULL, NULL, events_poll_done, e);
    } else if (e->based) {
        const char *values[2] = {e->xip, e->xmax};
        rc = db_exec_short(e->srv->db, &stmt_poll, 2, values, NULL, NULL, events_poll_done, e);
    } else if (e->paging) {
        /* The lookback recomputed from the same start: the same instant, give or take. */
        const char *values[4] = {uptime, e->page_last, e->page_xip, e->page_xmax};
        rc = db_exec_short(e->srv->db, &stmt_poll_first_page, 4, values, NULL, NULL,
                           events_poll_done, e);
    } else {
        const char *values[1] = {uptime};
        rc =
            db_exec_short(e->srv->db, &stmt_poll_first, 1, values, NULL, NULL, events_poll_done, e);
    }
    if (rc != 0) {
        /* The database is away or the queue full: the timer tries again. */
        e->again = false;
        return;
    }
    e->polling = true;
    e->polled_at = uv_now(e->srv->loop);
}

static void events_soon_cb(uv_timer_t *t)
{
    events_t *e = t->data;
    e->soon_armed = false;
    events_poll(e);
}

void events_wake(void *events)
{
    events_t *e = events;
    if (e->stopping || e->closing || e->soon_armed)
        return;
    if (e->polling) {
        e->again = true;
        return;
    }
    uint64_t since = uv_now(e->srv->loop) - e->polled_at;
    if (since >= EVENTS_WAKE_SPACING_MS) {
        events_poll(e);
        return;
    }
    uv_timer_start(&e->soon, events_soon_cb, EVENTS_WAKE_SPACING_MS - since, 0);
    e->soon_armed = true;
}

static void events_prune_done(const db_result_t *r, void *arg)
{
    events_t *e = arg;
    db_result_t fit;
    r = db_fit(r, PRUNE_NCOLS, &fit);
    e->pruning = false;
    if (r->status != DB_OK)
        log_warn(0, "desk_event retention: %s", r->message ? r->message : "?");
    else if (db_int64(r->res, 0, PRUNE_DELETED) > 0)
        log_info(0, "desk_event retention: %lld old event(s) deleted",
                 (long long)db_int64(r->res, 0, PRUNE_DELETED));
    events_came_back(e);
}

/* Deletes stored events past event_retention_hours, once an hour. */
static void events_prune(events_t *e)
{
    uint64_t now = uv_now(e->srv->loop);
    if (e->pruning || !events_prune_due(e->pruned_at, now))
        return;
    char hours[24];
    snprintf(hours, sizeof(hours), "%ld", e->srv->cfg.event_retention_hours);
    const char *values[1] = {hours};
    if (db_exec_long(e->srv->db, &stmt_prune, 1, values, NULL, NULL, events_prune_done, e) != 0)
        return; /* the database is down; try at the next tick */
    e->pruning = true;
    e->pruned_at = now;
}

static void events_tick(uv_timer_t *t)
{
    events_t *e = t->data;
    if (e->stopping)
        return;
    events_poll(e);
    events_prune(e);
}

events_t *events_start(server_t *srv)
{
    events_t *e = util_xcalloc(1, sizeof(*e));
    e->srv = srv;
    e->fine = (events_marks_t){.m = e->fine_m, .cap = EVENTS_MARKS_FINE};
    e->coarse = (events_marks_t){.m = e->coarse_m, .cap = EVENTS_MARKS_COARSE};
    e->lookback_from = uv_now(srv->loop);
    uv_timer_init(srv->loop, &e->timer);
    e->timer.data = e;
    uv_timer_init(srv->loop, &e->soon);
    e->soon.data = e;
    e->handles_open = 2;
    uint64_t every = (uint64_t)srv->cfg.event_poll_ms;
    uv_timer_start(&e->timer, events_tick, every, every);
    events_poll(e); /* the snapshot to start from (fails quietly while the pool connects) */
    return e;
}

void events_stop(events_t *e)
{
    if (e == NULL || e->stopping)
        return;
    e->stopping = true;
    e->again = false;
    uv_timer_stop(&e->timer);
    uv_timer_stop(&e->soon);
    e->soon_armed = false;
}

bool events_gone(const events_t *e)
{
    return e == NULL || (e->stopping && (e->aborted || (!e->polling && !e->pruning)));
}

void events_abort(events_t *e)
{
    if (e == NULL)
        return;
    events_stop(e);
    if (e->aborted || (!e->polling && !e->pruning))
        return;
    log_warn(0, "events: shutdown timeout: not waiting for the poll");
    e->aborted = true;
    server_jobs_gone(e->srv);
}

static void events_timer_closed(uv_handle_t *h)
{
    events_t *e = h->data;
    e->handles_open--;
    events_maybe_free(e);
}

void events_close(events_t *e)
{
    if (e == NULL || e->closing)
        return;
    events_stop(e);
    e->closing = true;
    uv_close((uv_handle_t *)&e->timer, events_timer_closed);
    uv_close((uv_handle_t *)&e->soon, events_timer_closed);
}

/* ---- Subscribe ---- */

typedef struct events_replay {
    request_t *req;
    int64_t since;
    bool by_window; /* no mark covered since: the replay could not be proved complete */
} events_replay_t;

/* Tell the connection that some events it missed are not in the replay (no id: always shown). */
static void events_push_missed(conn_t *c, bool by_window)
{
    Carrel__Event ev = CARREL__EVENT__INIT;
    ev.kind = "events_missed";
    ev.branch_code = c->session.branch_code;
    ev.text = by_window ? "Some branch events from while this desk was away may not have been "
                          "fetched (the server restarted since): check the lists."
                        : "Some branch events from while this desk was away were not fetched "
                          "(more than 1,000): check the lists.";
    conn_push_event(c, &ev);
    metrics_event_pushed(ev.kind);
}

/* Push the replayed rows the connection (still) hears, then answer. */
static void events_replay_done(const db_result_t *r, void *arg)
{
    events_replay_t *st = arg;
    request_t *req = st->req;
    conn_t *c = req->conn;
    db_result_t fit;
    r = db_fit(r, REPLAY_NCOLS, &fit);
    if (r->status != DB_OK) {
        /* Still subscribed: live events keep coming; the desk is told what it may have missed. */
        request_fail_db(req, r);
        return;
    }
    int n = PQntuples(r->res);
    /* One row more than EVENTS_REPLAY_MAX: the cap cut, the oldest (row 0) goes. */
    bool cut = n > EVENTS_REPLAY_MAX;
    int sent = 0;
    for (int i = cut ? n - EVENTS_REPLAY_MAX : 0; i < n; i++) {
        char *copy = util_xstrdup(db_text(r->res, i, REPLAY_PAYLOAD));
        events_payload_t *p = util_xcalloc(1, sizeof(*p));
        if (events_payload_parse(copy, p) && events_conn_hears(c, p)) {
            Carrel__Event ev = CARREL__EVENT__INIT;
            events_fill(&ev, p, db_int64(r->res, i, REPLAY_ID), db_int64(r->res, i, REPLAY_AT_MS));
            conn_push_event(c, &ev);
            metrics_event_pushed(ev.kind);
            sent++;
        }
        free(p);
        free(copy);
    }
    if (cut || st->by_window)
        events_push_missed(c, !cut);
    log_debug(c->id, "replayed %d stored event(s) after %lld%s%s", sent, (long long)st->since,
              st->by_window ? " (by the id window)" : "", cut ? " (cut at the cap)" : "");
    request_ok(req);
}

/*
 * Subscribe: the connection hears events from now on (set first, so that an
 * event committed while the replay runs is pushed live: one the replay's
 * snapshot missed is first seen by a poll that ends after this point).
 *
 * With since_event_id (the highest id the desk saw), the replay sends what
 * the desk missed while away. Events are pushed in commit order, not id
 * order, so "id > since" is not enough. Let j be the poll that delivered
 * since (an id from a replay was delivered by a poll before it: the replay
 * sends only rows visible in the poller's snapshot), and k the newest mark
 * whose highest id is below since: k < j, as the highest id only grows. The
 * desk had every row visible in S_j (live, frames in order, or replayed
 * earlier, by induction), so it lacks only rows invisible in S_j, hence
 * invisible in the older S_k: xid >= xmax_k or in xip_k. The replay sends
 * those and the ids above since, visible in the poller's current snapshot
 * (the later ones come live): complete. The rows delivered between k and j
 * may come again; the desk drops the ids it showed (PROTOCOL.md, "Events").
 * When no mark covers since (the daemon restarted: its first poll's
 * lookback may have re-delivered ids the desk had from the previous run,
 * while rows of the gap were visible already; or the desk was away longer
 * than the marks reach), the replay falls back to the ids above
 * since - EVENTS_REPLAY_WINDOW and says that some may be missing, as it says
 * when the cap cut. An event live and replayed at once may come twice;
 * Event.id tells.
 */
void handle_subscribe(request_t *req)
{
    Carrel__Subscribe *m = req->msg->subscribe;
    conn_t *c = req->conn;
    bool all = m->has_all_branches && m->all_branches;
    if (all && perm_role_is_branch_bound(request_session(req)->role)) {
        request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "role",
                     "Only coordinators and administrators hear every branch's events.");
        return;
    }
    c->subscribed = true;
    c->all_branches = all;
    /* 0 is no id a desk saw: like no since (the desk never sends it). */
    if (!m->has_since_event_id || m->since_event_id <= 0) {
        request_ok(req);
        return;
    }
    const session_t *s = request_session(req);
    const events_t *e = req->srv->events;
    events_replay_t *st = arena_alloc(&req->arena, sizeof(*st));
    st->req = req;
    st->since = m->since_event_id;
    /* An id above any this run delivered came from another run (or nowhere): no mark is
     * known to precede its delivery. The oldest mark is this run's first poll or later, so
     * a mark below since means since came from a later poll of this run. */
    const events_mark_t *mark = e && e->based && m->since_event_id <= e->delivered_max
                                    ? events_mark_before(e, m->since_event_id)
                                    : NULL;
    st->by_window = mark == NULL;
    char from[24], limit[16];
    int64_t low = m->since_event_id;
    if (mark == NULL)
        low = low > EVENTS_REPLAY_WINDOW ? low - EVENTS_REPLAY_WINDOW : 0;
    snprintf(from, sizeof(from), "%lld", (long long)low);
    snprintf(limit, sizeof(limit), "%d", EVENTS_REPLAY_MAX + 1);
    bool staff_all =
        s->role == CARREL__ROLE__ROLE_COORDINATOR || s->role == CARREL__ROLE__ROLE_ADMIN;
    bool based = e && e->based;
    /* While paging, the rows visible in the page's snapshot are delivered or will be
     * (live, to this connection, subscribed now): that is the poller's snapshot. */
    const char *cur_xmax = based ? (e->paging ? e->page_xmax : e->xmax) : NULL;
    const char *cur_xip = based ? (e->paging ? e->page_xip : e->xip) : NULL;
    const char *values[10] = {
        from,        all ? "t" : "f", s->branch_code,           staff_all ? "t" : "f",
        s->username, limit,           mark ? mark->xmax : NULL, mark ? mark->xip : NULL,
        cur_xmax,    cur_xip};
    int rc =
        db_exec_short(req->srv->db, &stmt_replay, 10, values, NULL, NULL, events_replay_done, st);
    if (rc != 0)
        request_fail_exec(req, rc);
}
