/*
 * metrics: counters, the collector, the text format and ServerStatus.
 *
 * Request counters are dense arrays indexed by route (dispatch.c's table,
 * plus one slot for requests refused before a route was known) and status,
 * allocated once at metrics_init; only the series that moved are shown.
 * The labelled counters (login failures by reason, events by kind, notices by
 * channel) keep at most METRICS_MAX_SERIES label values each; the labels
 * come from our own code or tables, but a cap keeps a surprise from growing
 * the scrape without bound.
 */
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "events.h"
#include "handlers.h"
#include "log.h"
#include "request.h"
#include "server.h"
#include "stats.h"
#include "status.h"
#include "util.h"

/* Upper bounds of the latency buckets (seconds): 1 ms ... 10 s. */
static const double bucket_bounds[METRICS_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                      0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
static const char *const bucket_names[METRICS_BUCKETS] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};

/* Statuses 0 .. METRICS_STATUSES - 2 by value; the last slot: any other value. */
#define METRICS_STATUSES                         13
#define METRICS_COUNT_STATUS(suffix, name, exit) +1
_Static_assert(METRICS_STATUSES - 1 == 0 CARREL_STATUS_TABLE(METRICS_COUNT_STATUS),
               "one slot per status of CARREL_STATUS_TABLE, and one for any other value");

/* The name of a labelled counter's overflow series: no kind, reason or channel of ours. */
#define METRICS_OVERFLOW "_other"

typedef struct route_metrics {
    uint64_t by_status[METRICS_STATUSES];
    uint64_t buckets[METRICS_BUCKETS]; /* not cumulative: the text is */
    uint64_t count;
    double sum;
} route_metrics_t;

typedef struct labelled {
    int n;
    bool overflowed;
    char values[METRICS_MAX_SERIES][48];
    uint64_t counts[METRICS_MAX_SERIES];
} labelled_t;

static struct {
    bool ready;
    int64_t started_ms;
    const char *version;
    size_t nroutes;
    route_metrics_t *routes; /* nroutes + 1: the last is "unknown" */
    labelled_t login_failed, login_dropped, login_throttled, events, notices_sent, notices_failed,
        relay_failures;
    bool pending_known;
    int64_t notices_pending; /* email, as counted at the start of the last send pass */
} m;

static void metrics_touch_known(void);

void metrics_init(const char *version)
{
    if (m.ready)
        return;
    m.started_ms = util_now_ms();
    m.version = version;
    m.nroutes = dispatch_route_count();
    m.routes = util_xcalloc(m.nroutes + 1, sizeof(*m.routes));
    m.ready = true;
    metrics_touch_known();
}

static void labelled_touch(labelled_t *l, const char *value);

/* Login endings that are no failed credentials: counted apart (carrel_logins_dropped_total). */
static const char *const login_dropped_reasons[] = {"abandoned", "session_ended"};

/* The series every daemon has, at 0 from the start, so that increase() sees the first
 * event (the text format has no _created: a series first scraped at 1 shows no increase). */
static void metrics_touch_known(void)
{
    static const char *const failed[] = {"wrong_password", "unknown_user", "disabled", "bad_hash"};
    for (size_t i = 0; i < sizeof(failed) / sizeof(failed[0]); i++)
        labelled_touch(&m.login_failed, failed[i]);
    for (size_t i = 0; i < sizeof(login_dropped_reasons) / sizeof(login_dropped_reasons[0]); i++)
        labelled_touch(&m.login_dropped, login_dropped_reasons[i]);
    labelled_touch(&m.login_throttled, "user");
    labelled_touch(&m.login_throttled, "address");
    labelled_touch(&m.notices_sent, "email");
    labelled_touch(&m.notices_failed, "email");
    labelled_touch(&m.relay_failures, "email");
}

int64_t metrics_started_ms(void)
{
    return m.started_ms;
}

const char *metrics_version(void)
{
    return m.version ? m.version : "unknown";
}

void metrics_request_done(const route_t *route, int status, uint64_t elapsed_ns)
{
    if (!m.ready)
        return;
    size_t i = route ? dispatch_route_index(route) : m.nroutes;
    if (i > m.nroutes)
        i = m.nroutes;
    route_metrics_t *r = &m.routes[i];
    int s = status >= 0 && status < METRICS_STATUSES - 1 ? status : METRICS_STATUSES - 1;
    r->by_status[s]++;
    double seconds = (double)elapsed_ns / 1e9;
    r->count++;
    r->sum += seconds;
    for (int b = 0; b < METRICS_BUCKETS; b++)
        if (seconds <= bucket_bounds[b]) {
            r->buckets[b]++;
            break;
        }
}

/* Count one under `value` (truncated to the slot's size); METRICS_OVERFLOW once full. */
static void labelled_add(labelled_t *l, const char *value)
{
    if (value == NULL || *value == '\0')
        value = "unknown";
    if (strcmp(value, METRICS_OVERFLOW) == 0)
        value = "unknown"; /* never a second series of that name */
    for (int i = 0; i < l->n; i++)
        if (strncmp(l->values[i], value, sizeof(l->values[i]) - 1) == 0) {
            l->counts[i]++;
            return;
        }
    if (l->n == METRICS_MAX_SERIES - 1 && !l->overflowed) {
        /* The last slot is the overflow's for good. */
        l->overflowed = true;
        snprintf(l->values[l->n], sizeof(l->values[0]), "%s", METRICS_OVERFLOW);
        l->counts[l->n++] = 1;
        return;
    }
    if (l->n == METRICS_MAX_SERIES) {
        l->counts[l->n - 1]++;
        return;
    }
    snprintf(l->values[l->n], sizeof(l->values[0]), "%s", value);
    l->counts[l->n++] = 1;
}

/* Make a series exist at 0, so that rate() sees the first one. */
static void labelled_touch(labelled_t *l, const char *value)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->values[i], value) == 0)
            return;
    if (l->n < METRICS_MAX_SERIES - 1) {
        snprintf(l->values[l->n], sizeof(l->values[0]), "%s", value);
        l->counts[l->n++] = 0;
    }
}

void metrics_login_failed(const char *reason)
{
    for (size_t i = 0; i < sizeof(login_dropped_reasons) / sizeof(login_dropped_reasons[0]); i++)
        if (reason && strcmp(reason, login_dropped_reasons[i]) == 0) {
            labelled_add(&m.login_dropped, reason);
            return;
        }
    labelled_add(&m.login_failed, reason);
}

void metrics_login_throttled(const char *key)
{
    labelled_add(&m.login_throttled, key);
}

void metrics_event_pushed(const char *kind)
{
    labelled_add(&m.events, kind);
}

void metrics_notice(const char *channel, bool sent)
{
    labelled_add(sent ? &m.notices_sent : &m.notices_failed, channel);
}

void metrics_notice_relay_failed(const char *channel)
{
    labelled_add(&m.relay_failures, channel);
}

void metrics_notices_pending(int64_t pending)
{
    m.pending_known = true;
    m.notices_pending = pending;
}

/* ---------------------------------------------------------------- the collector */

static void family(const metrics_sink_t *k, const char *name, const char *type, const char *help)
{
    k->family(k->arg, name, type, help);
}

static void sample0(const metrics_sink_t *k, const char *name, double v)
{
    k->sample(k->arg, name, 0, NULL, NULL, v);
}

static void sample1(const metrics_sink_t *k, const char *name, const char *label, const char *value,
                    double v)
{
    const char *n[1] = {label}, *val[1] = {value};
    k->sample(k->arg, name, 1, n, val, v);
}

static void labelled_collect(const metrics_sink_t *k, const labelled_t *l, const char *name,
                             const char *label, const char *help)
{
    family(k, name, "counter", help);
    for (int i = 0; i < l->n; i++)
        sample1(k, name, label, l->values[i], (double)l->counts[i]);
}

static void collect_connections(server_t *srv, const metrics_sink_t *k)
{
    enum { C_HANDSHAKE, C_HELLO, C_LOGIN, C_SESSION, C_DRAINING, C_STATES };
    static const char *const names[C_STATES] = {"handshake", "hello", "login", "session",
                                                "draining"};
    int counts[C_STATES] = {0};
    int inflight = 0;
    for (const conn_t *c = srv->conns; c; c = c->next) {
        inflight += c->inflight;
        int s;
        if (srv->draining || c->closed || c->refused || c->ch.closing)
            s = C_DRAINING;
        else if (!c->ch.plain && !c->ch.tls_ready)
            s = C_HANDSHAKE;
        else if (!c->session.hello_done)
            s = C_HELLO;
        else if (!c->session.authenticated)
            s = C_LOGIN;
        else
            s = C_SESSION;
        counts[s]++;
    }
    family(k, "carrel_connections", "gauge",
           "Desk connections open, by state (handshake, hello, login, session, draining).");
    for (int i = 0; i < C_STATES; i++)
        sample1(k, "carrel_connections", "state", names[i], counts[i]);
    family(k, "carrel_requests_in_flight", "gauge",
           "Requests admitted and not yet answered, over all connections.");
    sample0(k, "carrel_requests_in_flight", inflight);
    int waiting = auth_logins_waiting(srv);
    family(k, "carrel_logins_waiting", "gauge",
           "Logins queued for admission behind the password checks.");
    sample0(k, "carrel_logins_waiting", waiting);
}

static void collect_requests(const metrics_sink_t *k)
{
    /* Every status at 0 from the start: what alerts on a status should use. */
    family(k, "carrel_responses_total", "counter",
           "Requests answered, by status only (every status present from the start).");
    for (int s = 0; s < METRICS_STATUSES; s++) {
        uint64_t sum = 0;
        for (size_t i = 0; i <= m.nroutes; i++)
            sum += m.routes[i].by_status[s];
        if (s == METRICS_STATUSES - 1 && sum == 0)
            continue; /* "other": only if something ever fell there */
        sample1(k, "carrel_responses_total", "status",
                s < METRICS_STATUSES - 1 ? status_name(s) : "other", (double)sum);
    }
    const char *lnames[2] = {"type", "status"};
    family(k, "carrel_requests_total", "counter",
           "Requests answered, by type (the route name) and status.");
    for (size_t i = 0; i <= m.nroutes; i++) {
        const char *type = i < m.nroutes ? dispatch_route_at(i)->name : "unknown";
        for (int s = 0; s < METRICS_STATUSES; s++) {
            if (m.routes[i].by_status[s] == 0)
                continue;
            const char *values[2] = {type, s < METRICS_STATUSES - 1 ? status_name(s) : "other"};
            k->sample(k->arg, "carrel_requests_total", 2, lnames, values,
                      (double)m.routes[i].by_status[s]);
        }
    }
    family(k, "carrel_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer being queued, by type.");
    for (size_t i = 0; i <= m.nroutes; i++) {
        const route_metrics_t *r = &m.routes[i];
        if (r->count == 0)
            continue;
        const char *type = i < m.nroutes ? dispatch_route_at(i)->name : "unknown";
        const char *bn[2] = {"type", "le"};
        uint64_t cum = 0;
        for (int b = 0; b < METRICS_BUCKETS; b++) {
            cum += r->buckets[b];
            const char *bv[2] = {type, bucket_names[b]};
            k->sample(k->arg, "carrel_request_duration_seconds_bucket", 2, bn, bv, (double)cum);
        }
        const char *inf[2] = {type, "+Inf"};
        k->sample(k->arg, "carrel_request_duration_seconds_bucket", 2, bn, inf, (double)r->count);
        sample1(k, "carrel_request_duration_seconds_sum", "type", type, r->sum);
        sample1(k, "carrel_request_duration_seconds_count", "type", type, (double)r->count);
    }
}

static void collect_db(const char *label, const db_pool_t *pool, const metrics_sink_t *k,
                       bool header)
{
    db_pool_counts_t n = {0};
    if (pool)
        db_pool_counts(pool, &n);
    const char *ln[2] = {"pool", "state"};
    if (header)
        family(k, "carrel_db_connections", "gauge",
               "Database connections of a pool (primary, stats) by state: busy, idle, "
               "connecting (or preparing), broken (down, waiting to reconnect).");
    static const char *const states[4] = {"busy", "idle", "connecting", "broken"};
    int values[4] = {n.busy, n.idle, n.connecting, n.down};
    for (int i = 0; i < 4 && pool; i++) {
        const char *lv[2] = {label, states[i]};
        k->sample(k->arg, "carrel_db_connections", 2, ln, lv, values[i]);
    }
}

static void collect_db_waiting(const char *label, const db_pool_t *pool, const metrics_sink_t *k)
{
    if (pool == NULL)
        return;
    db_pool_counts_t n = {0};
    db_pool_counts(pool, &n);
    const char *ln[2] = {"pool", "lane"};
    const char *w[2] = {label, "write"}, *s[2] = {label, "read"};
    k->sample(k->arg, "carrel_db_queries_waiting", 2, ln, w, n.waiting_write);
    k->sample(k->arg, "carrel_db_queries_waiting", 2, ln, s, n.waiting_short);
}

void metrics_collect(server_t *srv, const metrics_sink_t *k)
{
    char version[64];
    snprintf(version, sizeof(version), "%s", metrics_version());
    family(k, "carrel_build_info", "gauge", "Always 1; the version of carreld in its label.");
    sample1(k, "carrel_build_info", "version", version, 1);
    family(k, "carrel_start_time_seconds", "gauge",
           "When this carreld process started, seconds since the Unix epoch.");
    sample0(k, "carrel_start_time_seconds", (double)m.started_ms / 1000.0);

    collect_connections(srv, k);
    if (m.ready)
        collect_requests(k);

    const db_pool_t *stats_pool = stats_pool_of(srv->stats);
    collect_db("primary", srv->db, k, true);
    collect_db("stats", stats_pool, k, false);
    family(k, "carrel_db_queries_waiting", "gauge",
           "Statements queued for a database connection, by pool and lane (write, read).");
    collect_db_waiting("primary", srv->db, k);
    collect_db_waiting("stats", stats_pool, k);

    const password_queue_t *q = &srv->passwords;
    int ahead = q->loop ? password_queue_ahead(q) : 0;
    int queued = ahead - q->running;
    family(k, "carrel_password_checks", "gauge",
           "Argon2 password checks and hashes on the thread pool: queued (waiting for a worker) "
           "and running.");
    sample1(k, "carrel_password_checks", "state", "queued", queued > 0 ? queued : 0);
    sample1(k, "carrel_password_checks", "state", "running", q->running);

    labelled_collect(k, &m.login_failed, "carrel_logins_failed_total", "reason",
                     "Logins whose credentials were refused after their checks, by reason.");
    labelled_collect(k, &m.login_dropped, "carrel_logins_dropped_total", "reason",
                     "Logins that ended without a verdict on credentials: abandoned (the client "
                     "left), session_ended (a saved session expired or was revoked).");
    labelled_collect(k, &m.login_throttled, "carrel_logins_throttled_total", "key",
                     "Logins refused by the failed-login throttle, by key (user, address).");
    labelled_collect(k, &m.events, "carrel_events_pushed_total", "kind",
                     "Event frames pushed to desk connections, by kind.");
    labelled_collect(k, &m.notices_sent, "carrel_notices_sent_total", "channel",
                     "Notices handed over to their channel (email: accepted by the relay).");
    labelled_collect(k, &m.notices_failed, "carrel_notices_failed_total", "channel",
                     "Notices their channel refused or that could not be sent.");
    labelled_collect(k, &m.relay_failures, "carrel_notice_relay_failures_total", "channel",
                     "Send attempts that could not reach the relay (no connection, TLS or "
                     "login failure); the notices stay pending.");
    family(k, "carrel_notices_pending", "gauge",
           "Email notices waiting to be sent, as counted at the start of the last send pass.");
    if (m.pending_known)
        sample1(k, "carrel_notices_pending", "channel", "email", (double)m.notices_pending);

    double lag, lag_bytes;
    if (stats_replica_lag(srv->stats, &lag, &lag_bytes)) {
        family(k, "carrel_replica_lag_seconds", "gauge",
               "How far the statistics standby (stats_conninfo) is behind the primary's current "
               "WAL position: 0 when it has replayed all of it, else the age of the last "
               "transaction it replayed.");
        sample0(k, "carrel_replica_lag_seconds", lag);
        family(k, "carrel_replica_lag_bytes", "gauge",
               "WAL bytes the statistics standby has still to replay to reach the primary's "
               "current position.");
        sample0(k, "carrel_replica_lag_bytes", lag_bytes);
    }
}

/* ---------------------------------------------------------------- the text format */

/* The escaped form of *p: the character itself, or its two-character escape. */
static const char *escape_one(const char *p, char one[2])
{
    if (*p == '\\')
        return "\\\\";
    if (*p == '"')
        return "\\\"";
    if (*p == '\n')
        return "\\n";
    one[0] = *p;
    one[1] = '\0';
    return one;
}

size_t metrics_escape(const char *value, char *out, size_t outlen)
{
    size_t n = 0, kept = 0; /* kept: what fits, whole escapes only */
    for (const char *p = value; *p; p++) {
        char one[2];
        size_t len = strlen(escape_one(p, one));
        if (kept == n && n + len < outlen) {
            memcpy(out + n, escape_one(p, one), len);
            kept += len;
        }
        n += len;
    }
    if (outlen > 0)
        out[kept] = '\0';
    return n;
}

/* value escaped, appended to out whole. 0, or -1 when out of memory. */
static int escape_append(struct buf *out, const char *value)
{
    for (const char *p = value; *p; p++) {
        char one[2];
        const char *e = escape_one(p, one);
        if (buf_append(out, e, strlen(e)) != 0)
            return -1;
    }
    return 0;
}

typedef struct text_sink {
    struct buf *out;
    int rc;
} text_sink_t;

static void text_family(void *arg, const char *name, const char *type, const char *help)
{
    text_sink_t *t = arg;
    if (t->rc == 0)
        t->rc = buf_printf(t->out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void text_value(char *out, size_t len, double v)
{
    if (isinf(v))
        snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        snprintf(out, len, "NaN");
    else if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v)
        snprintf(out, len, "%.0f", v);
    else if (snprintf(out, len, "%.15g", v) > 0 && strtod(out, NULL) != v)
        snprintf(out, len, "%.17g", v); /* the shortest of the two that reads back the same */
}

static void text_sample(void *arg, const char *name, int nlabels, const char *const *ln,
                        const char *const *lv, double v)
{
    text_sink_t *t = arg;
    if (t->rc != 0)
        return;
    t->rc = buf_printf(t->out, "%s", name);
    for (int i = 0; i < nlabels && t->rc == 0; i++) {
        t->rc = buf_printf(t->out, "%s%s=\"", i == 0 ? "{" : ",", ln[i]);
        if (t->rc == 0)
            t->rc = escape_append(t->out, lv[i]);
        if (t->rc == 0)
            t->rc = buf_append(t->out, "\"", 1);
    }
    char value[40];
    text_value(value, sizeof(value), v);
    if (t->rc == 0)
        t->rc = buf_printf(t->out, "%s %s\n", nlabels > 0 ? "}" : "", value);
}

int metrics_text(server_t *srv, struct buf *out)
{
    text_sink_t t = {out, 0};
    metrics_sink_t k = {text_family, text_sample, &t};
    metrics_collect(srv, &k);
    return t.rc;
}

/* ---------------------------------------------------------------- ServerStatus */

typedef struct status_sink {
    request_t *req;
    size_t n;                /* samples so far */
    struct buf samples;      /* Carrel__MetricSample * of each, in the arena */
    int rc;                  /* -1 once out of memory */
    const char *help, *type; /* of the family whose first sample is next */
} status_sink_t;

static void status_family(void *arg, const char *name, const char *type, const char *help)
{
    (void)name;
    status_sink_t *s = arg;
    s->help = help;
    s->type = type;
}

static void status_sample(void *arg, const char *name, int nlabels, const char *const *ln,
                          const char *const *lv, double v)
{
    status_sink_t *s = arg;
    if (s->rc == 0) {
        arena_t *a = &s->req->arena;
        Carrel__MetricSample *x = arena_new(a, Carrel__MetricSample, 1);
        carrel__metric_sample__init(x);
        x->name = arena_strdup(a, name);
        x->n_label_names = x->n_label_values = (size_t)nlabels;
        x->label_names = arena_new(a, char *, (size_t)nlabels + 1);
        x->label_values = arena_new(a, char *, (size_t)nlabels + 1);
        for (int i = 0; i < nlabels; i++) {
            x->label_names[i] = arena_strdup(a, ln[i]);
            x->label_values[i] = arena_strdup(a, lv[i]);
        }
        x->has_value = 1;
        x->value = v;
        if (s->help) {
            x->help = arena_strdup(a, s->help);
            x->type = arena_strdup(a, s->type);
        }
        s->rc = buf_append(&s->samples, &x, sizeof(x));
        if (s->rc == 0)
            s->n++;
    }
    s->help = s->type = NULL;
}

void handle_server_status(request_t *req)
{
    /* One walk into a growing list, then copied into the arena: two walks could disagree
     * as soon as a gauge reads something that moves. */
    status_sink_t s = {.req = req, .samples = BUF_INIT};
    metrics_sink_t k = {status_family, status_sample, &s};
    metrics_collect(req->srv, &k);
    if (s.rc != 0) {
        buf_free(&s.samples);
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                     "Out of memory while collecting the metrics.");
        return;
    }
    size_t n = s.n;
    Carrel__MetricSample **samples = REQUEST_LIST(req, Carrel__MetricSample, n);
    if (n > 0)
        memcpy(samples, s.samples.data, n * sizeof(*samples));
    buf_free(&s.samples);

    Carrel__ServerStatusReply *r = arena_new(&req->arena, Carrel__ServerStatusReply, 1);
    carrel__server_status_reply__init(r);
    r->server_name = req->srv->cfg.server_name;
    r->version = (char *)metrics_version();
    r->has_started_ms = 1;
    r->started_ms = m.started_ms;
    r->n_samples = n;
    r->samples = samples;
    req->resp.body_case = CARREL__RESPONSE__BODY_SERVER_STATUS;
    req->resp.server_status = r;
    request_ok(req);
}
