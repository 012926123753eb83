/*
 * server: listener, signals, and the orderly shutdown.
 *
 * Shutdown (SIGTERM or SIGINT): stop accepting, stop reading new requests,
 * let in-flight requests finish and their answers go out, close each
 * connection as it becomes idle; after shutdown_timeout_s close whatever is
 * left. Then the database pool closes and the loop runs out of handles.
 * A second signal skips the wait.
 */
#include "server.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "certs.h"
#include "conn.h"
#include "events.h"
#include "handlers.h"
#include "log.h"
#include "metrics.h"
#include "notices.h"
#include "notify.h"
#include "reload.h"
#include "rooms.h"
#include "sip.h"
#include "tickets.h"
#include "stats.h"
#include "tls.h"

static void server_finish(server_t *srv);
static void server_passwords_idle(void *arg);

/*
 * The desks' TLS context from the settings in cfg: at start, and again on a
 * reload that changes the certificate, key or revocation list (connections
 * open on the old context keep it; OpenSSL counts its references).
 */
SSL_CTX *server_tls_ctx_build(server_t *srv, const struct server_config *cfg, char *err,
                              size_t errlen)
{
    SSL_CTX *ctx = tls_server_ctx_new(cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca,
                                      cfg->tls_require_client_cert, err, errlen);
    /* The revoked set (read on the loop only) and the CRL file (certs.c). */
    if (ctx && certs_tls_setup(srv, ctx, cfg, err, errlen) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/*
 * The primary pool's limits from srv->cfg; the stats standby's follow
 * (stats_limits_apply). A reload calls this again: statement and lock
 * timeouts reach each connection before its next statement (db.c), the
 * queue timeout and retry limit apply to the next job.
 */
void server_db_limits_apply(server_t *srv)
{
    if (srv->db == NULL)
        return;
    db_limits_t limits = {
        .lock_timeout_ms = (int)srv->cfg.db_lock_timeout_ms,
        .statement_timeout_ms = (int)srv->cfg.db_statement_timeout_ms,
        .long_statement_timeout_ms = (int)srv->cfg.db_long_statement_timeout_ms,
        .queue_timeout_ms = (int)srv->cfg.db_queue_timeout_ms,
        .reserved_short = (int)srv->cfg.db_pool_reserved_reads,
        .quiet_errors = srv->cfg.db_quiet_refusals != 0,
    };
    db_pool_set_limits(srv->db, &limits);
    db_pool_set_retry_limit(srv->db, (int)srv->cfg.db_retry_limit);
    stats_limits_apply(srv->stats);
}

static void server_on_connection(uv_stream_t *listener, int status)
{
    server_t *srv = listener->data;
    if (status < 0) {
        log_warn(0, "accept: %s", uv_strerror(status));
        return;
    }
    if (srv->draining)
        return;
    conn_accept(srv);
}

static int server_listen(server_t *srv);

/*
 * The listener opens only once the dummy hash exists: until then a login for
 * an unknown user could not take as long as one for a real user.
 */
static void server_dummy_hash_done(int ok, const char *hash, void *arg)
{
    server_t *srv = arg;
    if (srv->draining)
        return;
    if (ok != 1 || (srv->dummy_hash = strdup(hash)) == NULL) {
        log_error(0, "cannot prepare the dummy password hash");
        srv->exit_code = 1;
        server_drain(srv, "startup failure");
        return;
    }
    /* The SIP2 port after the desks' (its login needs the dummy hash too). */
    if (server_listen(srv) != 0 || sip_start(srv) != 0) {
        srv->exit_code = 1;
        server_drain(srv, "startup failure");
        return;
    }
    /* Both ports accept: systemd may start what comes after carreld.service. */
    srv->ready = true;
    notify_ready();
    notify_status("serving desks on port %d", srv->port);
}

static void server_on_signal(uv_signal_t *sig, int signum)
{
    server_t *srv = sig->data;
    if (srv->draining) {
        log_warn(0, "second signal: closing all connections now");
        for (conn_t *c = srv->conns; c; c = c->next)
            conn_close(c, "forced shutdown");
        sip_abort(srv);
        if (srv->notices)
            notices_abort(srv->notices);
        stats_abort(srv->stats);
        jobtimer_abort(srv->rooms);
        jobtimer_abort(srv->tickets);
        events_abort(srv->events);
        return;
    }
    server_drain(srv, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static int server_listen(server_t *srv)
{
    struct sockaddr_storage addr;
    const char *host = srv->cfg.listen_host;
    int port = (int)srv->cfg.listen_port;
    int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                               : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc != 0) {
        log_error(0, "listen_host '%s' is not an IP address", host);
        return -1;
    }
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    srv->listening = true;
    rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 511, server_on_connection);
    if (rc != 0) {
        log_error(0, "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
        return -1;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len);
    srv->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    log_info(0, "listening on %s port %d", host, srv->port);
    return 0;
}

static void server_db_fatal(void *arg, const char *why)
{
    server_t *srv = arg;
    log_error(0, "%s", why);
    srv->exit_code = 1;
    server_drain(srv, "database schema mismatch");
}

int server_start(server_t *srv)
{
    char err[512];
    /* A fixed threshold keeps large blocks (Argon2's memory, a MARC batch)
     * in their own mappings, returned to the system when freed. glibc's
     * default raises it after the first such free, and each worker thread's
     * arena then keeps ~8 MiB for good (issue 8, item 28). */
    if (mallopt(M_MMAP_THRESHOLD, 256 * 1024) != 1)
        log_warn(0, "cannot set malloc's mmap threshold; large allocations may stay resident");
    /* Signals and the drain timer first: every later failure drains through them. */
    uv_signal_init(srv->loop, &srv->sig_term);
    uv_signal_init(srv->loop, &srv->sig_int);
    srv->sig_term.data = srv->sig_int.data = srv;
    uv_signal_start(&srv->sig_term, server_on_signal, SIGTERM);
    uv_signal_start(&srv->sig_int, server_on_signal, SIGINT);
    reload_signal_start(srv);
    uv_timer_init(srv->loop, &srv->drain_timer);
    srv->drain_timer.data = srv;
    /* Pings from the loop itself: a loop that is stuck stops them. */
    if (notify_watchdog_start(srv->loop) != 0)
        goto fail;

    /* The metrics endpoint first: it shows a pool still connecting (the migrations, run
     * before the loop, needed the database once; not necessarily now). */
    if (metrics_http_start(srv) != 0)
        goto fail;
    srv->tls = server_tls_ctx_build(srv, &srv->cfg, err, sizeof(err));
    if (srv->tls == NULL) {
        log_error(0, "%s", err);
        goto fail;
    }
    if (srv->cfg.tls_client_ca && *srv->cfg.tls_client_ca && !srv->cfg.tls_require_client_cert)
        log_warn(0, "tls_require_client_cert = false: a desk without a client certificate may "
                    "log in naming any workstation");
    if (throttle_init(&srv->throttle_users, 4096, (int)srv->cfg.login_throttle_after,
                      srv->cfg.login_throttle_max_s * 1000) != 0 ||
        throttle_init(&srv->throttle_addresses, 4096, (int)srv->cfg.login_throttle_after_address,
                      srv->cfg.login_throttle_max_s * 1000) != 0)
        goto fail;
    srv->password_params.time_cost = (unsigned)srv->cfg.password_time_cost;
    srv->password_params.memory_kib = (unsigned)srv->cfg.password_memory_kib;
    srv->password_params.parallelism = (unsigned)srv->cfg.password_parallelism;
    int workers =
        srv->cfg.password_workers > 0 ? (int)srv->cfg.password_workers : password_default_workers();
    password_queue_init(&srv->passwords, srv->loop, (int)srv->cfg.password_queue_max, workers);
    log_info(0, "password checks: %d at once", workers);
    srv->passwords.on_idle = server_passwords_idle;
    srv->passwords.idle_arg = srv;

    srv->db = db_pool_new(srv->loop, srv->cfg.db_conninfo, (int)srv->cfg.db_pool_size,
                          (int)srv->cfg.db_max_queue, (int)srv->cfg.db_reconnect_ms,
                          (int)srv->cfg.db_retry_limit);
    if (srv->db == NULL)
        goto fail;
    db_pool_on_fatal(srv->db, server_db_fatal, srv);
    server_db_limits_apply(srv);
    db_pool_start(srv->db);
    /* Every change through the write lane may have stored a desk event: poll. */
    srv->events = events_start(srv);
    db_pool_on_write_done(srv->db, events_wake, srv->events);
    if (notices_start(srv) != 0)
        goto fail;
    if (stats_start(srv) != 0)
        goto fail;
    auth_jobs_start(srv);
    if (certs_start(srv) != 0)
        goto fail;
    rooms_start(srv);
    tickets_start(srv);

    /* A hash of random bytes nobody knows, to verify unknown users against. */
    unsigned char secret[24];
    char secret_text[49];
    RAND_bytes(secret, sizeof(secret));
    for (size_t i = 0; i < sizeof(secret); i++)
        snprintf(secret_text + 2 * i, 3, "%02x", secret[i]);
    if (password_hash_async(&srv->passwords, &srv->password_params, secret_text,
                            server_dummy_hash_done, srv) != 0)
        goto fail;
    return 0;
fail:
    srv->exit_code = 1;
    server_drain(srv, "startup failure");
    return -1;
}

static void server_drain_timeout(uv_timer_t *t)
{
    server_t *srv = t->data;
    log_warn(0, "shutdown timeout: closing %d connection(s) with requests still running",
             srv->nconns);
    for (conn_t *c = srv->conns; c; c = c->next)
        conn_close(c, "shutdown timeout");
    sip_abort(srv);
    if (srv->notices)
        notices_abort(srv->notices);
    stats_abort(srv->stats);
    jobtimer_abort(srv->rooms);
    jobtimer_abort(srv->tickets);
    events_abort(srv->events);
}

void server_drain(server_t *srv, const char *why)
{
    if (srv->draining)
        return;
    srv->draining = true;
    log_info(0, "%s: shutting down; %d connection(s) open", why, srv->nconns);
    notify_stopping();
    if (srv->listening) {
        uv_close((uv_handle_t *)&srv->listener, NULL);
        srv->listening = false;
    }
    conn_t *next;
    for (conn_t *c = srv->conns; c; c = next) {
        next = c->next; /* conn_drain may close c synchronously in the future */
        conn_drain(c);
    }
    sip_stop(srv);
    metrics_http_stop(srv);
    reload_cancel(srv);
    uv_timer_start(&srv->drain_timer, server_drain_timeout,
                   (uint64_t)srv->cfg.shutdown_timeout_s * 1000, 0);
    if (srv->notices)
        notices_stop(srv->notices);
    stats_stop(srv->stats);
    jobtimer_stop(srv->rooms);
    jobtimer_stop(srv->tickets);
    events_stop(srv->events);
    auth_jobs_stop(srv);
    certs_stop(srv);
    server_finish(srv);
}

static void server_pool_closed(void *arg)
{
    server_t *srv = arg;
    srv->db = NULL;
    log_info(0, "stopped");
}

/* Once draining, with no connection left, no password work whose callback
 * may still use the database (a login records itself), and the notice and
 * statistics jobs done with the database, release the remaining handles. */
static void server_finish(server_t *srv)
{
    if (!srv->draining || srv->nconns > 0 || !sip_gone(srv) || srv->finishing ||
        srv->reload != NULL || srv->passwords.pending > 0 || !notices_gone(srv->notices) ||
        !stats_gone(srv->stats) || !jobtimer_gone(srv->rooms) || !jobtimer_gone(srv->tickets) ||
        !events_gone(srv->events))
        return;
    srv->finishing = true;
    uv_timer_stop(&srv->drain_timer);
    uv_close((uv_handle_t *)&srv->drain_timer, NULL);
    uv_close((uv_handle_t *)&srv->sig_term, NULL);
    uv_close((uv_handle_t *)&srv->sig_int, NULL);
    notify_watchdog_stop();
    reload_signal_close(srv);
    stats_close(srv->stats); /* the standby pool; frees the rest once its handles are closed */
    jobtimer_close(srv->rooms, NULL, NULL);
    srv->rooms = NULL;
    jobtimer_close(srv->tickets, NULL, NULL);
    srv->tickets = NULL;
    if (srv->db) /* the hook must not outlive events_t, whatever completes after this */
        db_pool_on_write_done(srv->db, NULL, NULL);
    events_close(srv->events);
    srv->events = NULL;
    if (srv->db)
        db_pool_close(srv->db, server_pool_closed, srv);
}

void server_conn_gone(server_t *srv, conn_t *c)
{
    auth_conn_gone(srv, c); /* a login waiting for admission ends with it */
    if (srv->draining)
        server_finish(srv);
}

void server_jobs_gone(server_t *srv)
{
    if (srv->draining)
        server_finish(srv);
}

static void server_passwords_idle(void *arg)
{
    server_t *srv = arg;
    if (srv->draining)
        server_finish(srv);
}

void server_end_sessions(server_t *srv, int64_t staff_id, const conn_t *except, const char *why)
{
    srv->revoked_seq++;
    srv->revoked[srv->revoked_seq % SERVER_REVOKED_RING] = staff_id;
    conn_t *next;
    for (conn_t *c = srv->conns; c; c = next) {
        next = c->next;
        if (c == except || c->closed || !c->session.authenticated ||
            c->session.staff_id != staff_id)
            continue;
        log_info(c->id, "ending the session of %s on %s: %s", c->session.username, c->peer, why);
        conn_close_after_flush(c, why);
    }
    sip_end_sessions(srv, staff_id, why); /* a self-check account's kiosks */
}

bool server_sessions_ended_since(const server_t *srv, int64_t staff_id, uint64_t since)
{
    if (srv->revoked_seq - since >= SERVER_REVOKED_RING)
        return srv->revoked_seq != since; /* too many changes meanwhile to tell: assume so */
    for (uint64_t s = since + 1; s <= srv->revoked_seq; s++)
        if (srv->revoked[s % SERVER_REVOKED_RING] == staff_id)
            return true;
    return false;
}
