#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs.h"
#include "check.h"
#include "log.h"
#include "password.h"
#include "request.h"
#include "server.h"

static void conn_on_open(channel_t *ch);
static void conn_on_frame(channel_t *ch, const uint8_t *payload, size_t len);
static void conn_on_frame_too_large(channel_t *ch, uint32_t declared);
static void conn_on_close(channel_t *ch, const char *reason);
static void conn_on_output(channel_t *ch);

static const channel_ops_t conn_channel_ops = {
    .on_open = conn_on_open,
    .on_frame = conn_on_frame,
    .on_frame_too_large = conn_on_frame_too_large,
    .on_close = conn_on_close,
    .on_output = conn_on_output,
};

void conn_ref(conn_t *c)
{
    CHECK(c->refs > 0); /* nobody may take a reference to a freed connection */
    c->refs++;
}

void conn_unref(conn_t *c)
{
    CHECK(c->refs > 0);
    if (--c->refs == 0) {
        /* Every request holds a reference until it ends, and the channel
         * one until it has closed: the last one out finds neither. */
        CHECK(c->inflight == 0 && c->closed);
        free(c);
    }
}

static void conn_timer_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

/*
 * The connection's one timer ticks at a fraction of the shortest deadline and
 * checks them all from timestamps, so activity costs a store, not a timer
 * reset: a client that stopped reading what we send is dropped, one that has
 * not finished its TLS handshake and Hello within handshake_timeout_s is
 * dropped (so idle sockets cannot hold slots for the whole login deadline),
 * one that has not logged in within login_timeout_s is closed, and one idle
 * (nothing in flight, no request) for idle_timeout_s is closed.
 */
static void conn_tick_cb(uv_timer_t *t)
{
    conn_t *c = t->data;
    const struct server_config *cfg = &c->srv->cfg;
    uint64_t now = uv_now(c->srv->loop);
    bool stuck = c->ch.paused_by_backpressure || (c->ch.close_when_flushed && c->ch.writing);
    if (stuck && c->stuck_seen) {
        log_warn(c->id, "%s is not reading what we send; dropping it", c->peer);
        conn_close(c, "client not reading");
        return;
    }
    c->stuck_seen = stuck;
    if (!c->session.hello_done &&
        now - c->accepted_at >= (uint64_t)cfg->handshake_timeout_s * 1000) {
        log_info(c->id, "closing %s: no handshake and Hello within %ld s", c->peer,
                 cfg->handshake_timeout_s);
        conn_close(c, "handshake timeout");
        return;
    }
    /* A login refused with retry_after_ms has a new deadline from the time it was told
     * to come back (login_from), within a bounded lifetime (conn_login_deadline); one whose
     * password is being checked keeps its connection until the answer: it was admitted to finish in
     * time, and the work is half done (auth.c, login_queue_refuse). */
    if (!c->session.authenticated && c->login_work == NULL && now >= conn_login_deadline(c)) {
        log_info(c->id, "closing %s: no login within %ld s", c->peer, cfg->login_timeout_s);
        conn_close_after_flush(c, "login timeout");
        return;
    }
    if (c->inflight == 0 && now - c->last_active_at >= (uint64_t)cfg->idle_timeout_s * 1000) {
        log_info(c->id, "closing idle connection (%s)", c->peer);
        conn_close_after_flush(c, "idle timeout");
    }
}

static uint64_t conn_tick_ms(const struct server_config *cfg)
{
    long shortest =
        cfg->idle_timeout_s < cfg->login_timeout_s ? cfg->idle_timeout_s : cfg->login_timeout_s;
    if (cfg->handshake_timeout_s < shortest)
        shortest = cfg->handshake_timeout_s;
    uint64_t ms = (uint64_t)shortest * 1000 / 4;
    return ms < 250 ? 250 : ms > 60000 ? 60000 : ms;
}

/* The peer address without its port ("::1" from "::1:5000"), as the
 * per-address limits count it (an IPv6 address by its /64: see
 * throttle_address_key). */
static void conn_peer_address(conn_t *c)
{
    char host[sizeof(c->peer)];
    snprintf(host, sizeof(host), "%s", c->peer);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    throttle_address_key(host, c->addr, sizeof(c->addr));
}

/* Open connections from c's address, c included. A walk of the list: it is
 * bounded by max_connections and runs once per accept. */
static long conn_count_address(const server_t *srv, const conn_t *c)
{
    long n = 0;
    for (const conn_t *o = srv->conns; o; o = o->next)
        if (!o->closed && !o->refused && strcmp(o->addr, c->addr) == 0)
            n++;
    return n;
}

/* Close a connection just accepted over a limit; it stops counting at once. */
static void conn_refuse(conn_t *c, const char *why)
{
    c->refused = true;
    c->srv->nrefused++;
    channel_close(&c->ch, why);
}

void conn_accept(server_t *srv)
{
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_error(0, "out of memory accepting a connection");
        return;
    }
    c->srv = srv;
    c->id = ++srv->next_conn_id;
    c->refs = 2; /* the channel and the idle timer each hold one */
    uv_timer_init(srv->loop, &c->idle_timer);
    c->idle_timer.data = c;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;

    int rc = channel_accept(&c->ch, srv->loop, (uv_stream_t *)&srv->listener, srv->tls,
                            &conn_channel_ops, (size_t)srv->cfg.max_frame_bytes_login,
                            (size_t)srv->cfg.write_high_water, c);
    if (rc < 0) {
        log_warn(c->id, "accept failed: %s", uv_strerror(rc));
        if (!c->ch.tcp_ready)
            conn_on_close(&c->ch, "accept failed"); /* no handle to close: clean up now */
        return; /* otherwise the channel is closing and conn_on_close will run */
    }
    channel_peer_name(&c->ch, c->peer, sizeof(c->peer));
    conn_peer_address(c);
    channel_set_output_total(&c->ch, &srv->output_total);
    /* Connections refused a moment ago are still closing: they hold no slot. */
    if (srv->nconns - srv->nrefused > srv->cfg.max_connections) {
        log_warn(c->id, "refusing %s: %d connections is the limit", c->peer,
                 (int)srv->cfg.max_connections);
        conn_refuse(c, "connection limit reached");
        return;
    }
    if (conn_count_address(srv, c) > srv->cfg.max_connections_per_address) {
        log_warn(c->id, "refusing %s: %d connections from one address is the limit", c->peer,
                 (int)srv->cfg.max_connections_per_address);
        conn_refuse(c, "per-address connection limit reached");
        return;
    }
    c->accepted_at = c->last_active_at = uv_now(srv->loop);
    uint64_t tick = conn_tick_ms(&srv->cfg);
    uv_timer_start(&c->idle_timer, conn_tick_cb, tick, tick);
    log_debug(c->id, "accepted %s", c->peer);
}

static void conn_on_open(channel_t *ch)
{
    conn_t *c = ch->data;
    int cn = tlsio_peer_cn(&ch->tls, c->cert_cn, sizeof(c->cert_cn));
    /* "resumed": the client offered a session of ours (tls.c): no certificates sent. */
    const char *resumed = tlsio_resumed(&ch->tls) ? ", resumed" : "";
    if (cn > 0 && tlsio_peer_serial(&ch->tls, c->cert_serial, sizeof(c->cert_serial)) < 0) {
        /* Never one of ours (carreld issues 16 bytes): cannot be looked up, so not taken. */
        log_warn(c->id, "closing %s: its client certificate's serial is too long", c->peer);
        conn_close(c, "client certificate serial too long");
        return;
    }
    /* The verify hook refused revoked certificates at the handshake; a resumed
     * session skips it, so the serial is checked here too (certs.c). */
    if (cn > 0 && certs_is_revoked(c->srv, c->cert_serial)) {
        log_warn(c->id, "closing %s: its client certificate %s (%s) is revoked%s", c->peer,
                 c->cert_serial, c->cert_cn, resumed);
        conn_close(c, "client certificate revoked");
        return;
    }
    /* Nor was the CRL asked about a resumed session: its ticket may predate a
     * reload that brought a renewed CRL. */
    if (cn > 0 && tlsio_resumed(&ch->tls) && certs_conn_crl_revoked(c->srv, c)) {
        log_warn(c->id,
                 "closing %s: its client certificate %s (%s) is revoked by the revocation "
                 "list, resumed",
                 c->peer, c->cert_serial, c->cert_cn);
        conn_close(c, "client certificate revoked");
        return;
    }
    if (cn > 0) {
        log_info(c->id, "TLS from %s (%s, client certificate %s%s)", c->peer,
                 tlsio_version(&ch->tls), c->cert_cn, resumed);
    } else if (cn < 0) {
        /* Taken as no certificate, it would let the client name any workstation. */
        log_warn(c->id, "closing %s: its client certificate has no usable common name", c->peer);
        conn_close(c, "client certificate without a usable common name");
    } else {
        log_info(c->id, "TLS from %s (%s%s)", c->peer, tlsio_version(&ch->tls), resumed);
    }
}

static void conn_on_frame(channel_t *ch, const uint8_t *payload, size_t len)
{
    conn_t *c = ch->data;
    c->last_active_at = uv_now(c->srv->loop);
    request_start(c, payload, len);
}

static void conn_on_frame_too_large(channel_t *ch, uint32_t declared)
{
    conn_t *c = ch->data;
    char msg[160];
    snprintf(msg, sizeof(msg), "A frame of %u bytes exceeds the limit of %zu bytes.", declared,
             ch->frames.max_frame);
    log_warn(c->id, "%s: %s Closing.", c->peer, msg);
    Carrel__Response r = CARREL__RESPONSE__INIT;
    r.status = CARREL__STATUS__STATUS_FRAME_TOO_LARGE;
    r.message = msg;
    r.reason = "frame_too_large";
    (void)conn_send(c, 0, &r); /* best effort: we close either way */
}

static void conn_on_close(channel_t *ch, const char *reason)
{
    conn_t *c = ch->data;
    server_t *srv = c->srv;
    c->closed = true;
    if (c->login_work) /* nobody will read the answer: spare the thread pool */
        password_cancel(c->login_work);
    if (c->login_unqueued) { /* no longer a login ahead of others (auth.c) */
        c->login_unqueued = false;
        srv->passwords.logins_unqueued--;
    }
    if (c->login_retry_at != 0) { /* it will not come back on this connection */
        c->login_retry_at = 0;
        srv->passwords.told--;
    }
    if (c->session.authenticated)
        log_info(c->id, "closed (%s, user %s): %s", c->peer, c->session.username, reason);
    else
        log_info(c->id, "closed (%s): %s", c->peer, reason);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    if (c->refused)
        srv->nrefused--;
    uv_timer_stop(&c->idle_timer);
    uv_close((uv_handle_t *)&c->idle_timer, conn_timer_closed);
    server_conn_gone(srv, c);
    conn_unref(c);
}

/*
 * The connection to drop first when the output held for all clients is over
 * max_output_total_bytes: the slowest reader. Output that has waited a
 * second or more marks a client that is not keeping up; among those, and
 * failing any, among all, the one with the most unsent output frees most.
 */
static conn_t *conn_slowest_reader(server_t *srv)
{
    conn_t *best = NULL;
    bool best_old = false;
    size_t best_bytes = 0;
    for (conn_t *c = srv->conns; c; c = c->next) {
        size_t bytes = c->ch.output_counted;
        if (c->ch.closing || bytes == 0)
            continue;
        bool old = channel_output_age_ms(&c->ch) >= 1000;
        if (best == NULL || (old && !best_old) || (old == best_old && bytes > best_bytes)) {
            best = c;
            best_old = old;
            best_bytes = bytes;
        }
    }
    return best;
}

/* A connection's unsent output grew: keep the total for all under its cap. */
static void conn_on_output(channel_t *ch)
{
    conn_t *c = ch->data;
    server_t *srv = c->srv;
    size_t cap = (size_t)srv->cfg.max_output_total_bytes;
    while (srv->output_total > cap) {
        conn_t *victim = conn_slowest_reader(srv);
        if (victim == NULL)
            break;
        log_warn(victim->id,
                 "dropping %s: %zu bytes unsent for %llu ms; the output held for all clients "
                 "(%zu bytes) is over max_output_total_bytes (%zu)",
                 victim->peer, victim->ch.output_counted,
                 (unsigned long long)channel_output_age_ms(&victim->ch), srv->output_total, cap);
        conn_close(victim, "output limit for all clients reached");
    }
}

uint64_t conn_login_lifetime_end(const conn_t *c)
{
    uint64_t life = (uint64_t)c->srv->cfg.login_timeout_s * 1000 * LOGIN_LIFETIME_WINDOWS;
    return c->accepted_at + (life > LOGIN_LIFETIME_MIN_MS ? life : LOGIN_LIFETIME_MIN_MS);
}

uint64_t conn_login_deadline(const conn_t *c)
{
    uint64_t window = (uint64_t)c->srv->cfg.login_timeout_s * 1000;
    uint64_t from = c->login_from > c->accepted_at ? c->login_from : c->accepted_at;
    uint64_t cap = conn_login_lifetime_end(c);
    return from + window < cap ? from + window : cap;
}

void conn_close(conn_t *c, const char *why)
{
    channel_close(&c->ch, why);
}

void conn_close_after_flush(conn_t *c, const char *why)
{
    channel_close_after_flush(&c->ch, why);
}

int conn_send(conn_t *c, uint64_t id, Carrel__Response *r)
{
    r->has_id = 1;
    r->id = id;
    r->has_status = 1;
    if (c->closed || channel_send(&c->ch, &r->base) != 0) {
        log_debug(c->id, "frame for request %llu dropped: connection closing",
                  (unsigned long long)id);
        return -1;
    }
    return 0;
}

void conn_push_event(conn_t *c, Carrel__Event *event)
{
    Carrel__Response r = CARREL__RESPONSE__INIT;
    r.status = CARREL__STATUS__STATUS_OK;
    r.body_case = CARREL__RESPONSE__BODY_EVENT;
    r.event = event;
    (void)conn_send(c, 0, &r); /* an event for a desk that is leaving is not missed */
}

void conn_drain(conn_t *c)
{
    if (c->closed)
        return;
    channel_pause(&c->ch);
    if (c->inflight == 0)
        conn_close_after_flush(c, "server shutting down");
}

perm_subject_t conn_subject(const conn_t *c)
{
    perm_subject_t s = {.role = c->session.role, .branch_id = c->session.branch_id};
    return s;
}
