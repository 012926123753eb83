/*
 * reload: SIGHUP and the Reload request (see reload.h).
 *
 *   SIGHUP / Reload ─► reload_start ─► [thread pool] reload_read: file, overrides,
 *        checks, new TLS contexts, relay password ─► [loop] reload_after:
 *        refused (log, config_invalid) | diff and apply ─► done(outcome)
 *
 * Settings are swapped so that nothing keeps a pointer into freed strings:
 * an unchanged setting, and a changed one that needs a restart, moves its
 * running string into the new struct (conf_entry_move: same address); only
 * the strings of the changed RELOAD settings are new, and their old copies
 * are freed after the swap. Of those (tls_*, log_level, smtp_*), the code
 * reads them where it uses them on the loop and copies what it keeps
 * (smtp.c copies the relay settings when a send pass opens its client; the
 * TLS contexts hold what they read), so no pointer into them outlives the
 * swap. One exception is harmless: notices.c reads smtp_from per message
 * for the Message-ID's domain, so a pass under way during a reload may take
 * that domain from the new value while its envelope keeps the old sender.
 */
#include "reload.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "certs.h"
#include "handlers.h"
#include "log.h"
#include "notices.h"
#include "notify.h"
#include "pgtext.h"
#include "reply.h"
#include "sip.h"
#include "stats.h"
#include "tls.h"
#include "util.h"

struct reload {
    uv_work_t work;
    server_t *srv;
    char by[64]; /* who asked: a user name or "SIGHUP" */
    reload_done_fn done;
    void *arg;
    bool again;    /* a SIGHUP came while this one was being read: read once more */
    bool notified; /* RELOADING=1 was sent: READY=1 ends it unless the drain began */
    /* Filled in on the thread pool; the loop does not touch them until reload_after. */
    bool want_sip_tls;
    struct server_config cfg;
    SSL_CTX *tls;
    SSL_CTX *sip_tls;
    char *smtp_password;
    bool failed;
    char err[768];
    /* The outcome's lists: at most one entry per setting. */
    const char **applied;
    const char **needs_restart;
};

/*
 * What the service manager is told (server/notify.c): RELOADING=1 (with
 * MONOTONIC_USEC) when a reload begins and READY=1 when it is over, whether
 * it was applied or refused, as systemd >= 253's Type=notify-reload expects
 * (the unit is Type=notify, for Debian 12's systemd 252, which logs them).
 * Only while serving: before server_dummy_hash_done, READY=1 would tell
 * systemd the start is over; once draining, STOPPING=1 was sent.
 */
static void reload_notify_reloading(struct reload *r)
{
    if (!r->srv->ready || r->srv->draining)
        return;
    r->notified = true;
    notify_reloading();
}

/* READY=1 whether the reload was applied or refused (else the unit stays "reloading"),
 * then the status line again, which READY=1's own status replaced. */
static void reload_notify_ready(struct reload *r)
{
    server_t *srv = r->srv;
    if (!r->notified || !srv->ready || srv->draining)
        return;
    notify_ready();
    notify_status("serving desks on port %d", srv->port);
}

static int reload_table_size(void)
{
    int n = 0;
    for (const conf_entry_t *e = server_config_table; e->name; e++)
        n++;
    return n;
}

static void reload_fail(struct reload *r, const char *fmt, const char *detail)
{
    r->failed = true;
    snprintf(r->err, sizeof(r->err), fmt, detail);
}

/*
 * On the thread pool: everything that reads files or parses keys. Reads
 * srv->config_file and srv->config_overrides (set once by main, never
 * changed) and nothing else of srv that the loop changes.
 */
static void reload_read(uv_work_t *w)
{
    struct reload *r = w->data;
    server_t *srv = r->srv;
    struct server_config *cfg = &r->cfg;
    char err[600];
    if (conf_defaults(server_config_table, cfg) != 0) {
        reload_fail(r, "%s", "out of memory");
        return;
    }
    if (srv->config_file &&
        conf_load_file(server_config_table, cfg, srv->config_file, err, sizeof(err)) != 0) {
        reload_fail(r, "%s", err);
        return;
    }
    for (int i = 0; i < srv->config_noverrides; i++)
        if (conf_set_pair(server_config_table, cfg, srv->config_overrides[i], err, sizeof(err)) !=
            0) {
            reload_fail(r, "command line: %s", err);
            return;
        }
    if (server_config_validate(cfg, err, sizeof(err)) != 0) {
        reload_fail(r, "%s", err);
        return;
    }
    r->tls = server_tls_ctx_build(srv, cfg, err, sizeof(err));
    if (r->tls == NULL) {
        reload_fail(r, "%s", err);
        return;
    }
    if (r->want_sip_tls) {
        r->sip_tls = tls_server_ctx_new(cfg->tls_cert, cfg->tls_key, NULL, false, err, sizeof(err));
        if (r->sip_tls == NULL) {
            reload_fail(r, "SIP2 TLS: %s", err);
            return;
        }
    }
    if (notices_check_settings(cfg, &r->smtp_password, err, sizeof(err)) != 0)
        reload_fail(r, "%s", err);
}

static void reload_free(struct reload *r)
{
    conf_free(server_config_table, &r->cfg);
    if (r->tls)
        SSL_CTX_free(r->tls);
    if (r->sip_tls)
        SSL_CTX_free(r->sip_tls);
    if (r->smtp_password) {
        OPENSSL_cleanse(r->smtp_password, strlen(r->smtp_password));
        free(r->smtp_password);
    }
    free(r->applied);
    free(r->needs_restart);
    free(r);
}

/*
 * The dummy hash (server.c) at the new Argon2 cost, so that a login for an unknown name
 * takes as long as one for an account hashed since the reload. The latest reload's wins.
 */
static uint64_t reload_dummy_gen;

struct reload_dummy {
    server_t *srv;
    uint64_t gen;
};

static void reload_dummy_done(int ok, const char *hash, void *arg)
{
    struct reload_dummy *d = arg;
    server_t *srv = d->srv;
    if (ok != 1)
        log_error(0, "reload: cannot prepare the dummy hash at the new cost; the old one stays");
    else if (d->gen == reload_dummy_gen) {
        char *copy = strdup(hash);
        if (copy == NULL) {
            log_error(0, "reload: out of memory for the dummy hash; the old one stays");
        } else {
            free(srv->dummy_hash);
            srv->dummy_hash = copy;
            log_info(0, "reload: unknown user names are now checked at the new Argon2 cost");
        }
    }
    free(d);
}

static void reload_dummy_rehash(server_t *srv)
{
    /* Before the start's own dummy hash exists, that one is being made. */
    if (srv->dummy_hash == NULL || srv->draining)
        return;
    unsigned char secret[24];
    char secret_text[49];
    if (RAND_bytes(secret, sizeof(secret)) != 1) {
        log_error(0, "reload: no random bytes for the dummy hash; the old one stays");
        return;
    }
    for (size_t i = 0; i < sizeof(secret); i++)
        snprintf(secret_text + 2 * i, 3, "%02x", secret[i]);
    struct reload_dummy *d = util_xcalloc(1, sizeof(*d));
    d->srv = srv;
    d->gen = ++reload_dummy_gen;
    if (password_hash_async(&srv->passwords, &srv->password_params, secret_text, reload_dummy_done,
                            d) != 0) {
        log_error(0, "reload: cannot queue the dummy hash at the new cost; the old one stays");
        free(d);
    }
    OPENSSL_cleanse(secret_text, sizeof(secret_text));
}

/* The modules that copied a setting at start take the new values. Those
 * that read srv->cfg where they use it (connection limits and timeouts,
 * SIP2 timeouts, retention periods, the relay settings) need nothing. */
static void reload_apply_modules(struct reload *r)
{
    server_t *srv = r->srv;
    const struct server_config *cfg = &srv->cfg;
    int level = log_level_parse(cfg->log_level);
    if (level >= 0) /* checked by server_config_validate */
        log_set_level((log_level_t)level);
    /* New desk connections get the new context; open ones keep theirs (each SSL holds a
     * reference to its SSL_CTX). */
    SSL_CTX_free(srv->tls);
    srv->tls = r->tls;
    r->tls = NULL;
    certs_after_reload(srv); /* a renewed CRL closes the open desks it revokes (certs.c) */
    sip_tls_replace(srv, r->sip_tls);
    r->sip_tls = NULL;
    if (cfg->tls_client_ca && *cfg->tls_client_ca && !cfg->tls_require_client_cert)
        log_warn(0, "tls_require_client_cert = false: a desk without a client certificate may "
                    "log in naming any workstation");
    throttle_set_limits(&srv->throttle_users, (int)cfg->login_throttle_after,
                        cfg->login_throttle_max_s * 1000);
    throttle_set_limits(&srv->throttle_addresses, (int)cfg->login_throttle_after_address,
                        cfg->login_throttle_max_s * 1000);
    password_params_t was = srv->password_params;
    srv->password_params.time_cost = (unsigned)cfg->password_time_cost;
    srv->password_params.memory_kib = (unsigned)cfg->password_memory_kib;
    srv->password_params.parallelism = (unsigned)cfg->password_parallelism;
    if (was.time_cost != srv->password_params.time_cost ||
        was.memory_kib != srv->password_params.memory_kib ||
        was.parallelism != srv->password_params.parallelism)
        reload_dummy_rehash(srv);
    password_queue_set_max(&srv->passwords, (int)cfg->password_queue_max);
    server_db_limits_apply(srv);
    notices_reload(srv->notices, r->smtp_password);
    r->smtp_password = NULL;
    auth_jobs_reload(srv);
}

/* On the loop, after a clean read: diff, swap, apply. */
static void reload_apply(struct reload *r, reload_outcome_t *o)
{
    server_t *srv = r->srv;
    int n = reload_table_size();
    r->applied = util_xcalloc((size_t)n + 1, sizeof(*r->applied));
    r->needs_restart = util_xcalloc((size_t)n + 1, sizeof(*r->needs_restart));
    int na = 0, nr = 0;
    for (const conf_entry_t *e = server_config_table; e->name; e++) {
        if (conf_entry_equal(e, &srv->cfg, &r->cfg)) {
            conf_entry_move(e, &r->cfg, &srv->cfg); /* the running string stays where it is */
            continue;
        }
        char was[160], now[160];
        conf_entry_format(e, &srv->cfg, was, sizeof(was));
        conf_entry_format(e, &r->cfg, now, sizeof(now));
        if (e->flags & CONF_RELOADABLE) {
            r->applied[na++] = e->name;
            log_info(0, "reload: %s = %s (was %s)", e->name, now, was);
        } else {
            /* Values not logged: a connection string may hold a password. */
            r->needs_restart[nr++] = e->name;
            log_warn(0,
                     "reload: %s changed, but takes effect only at the next start; the "
                     "running value is kept",
                     e->name);
            conf_entry_move(e, &r->cfg, &srv->cfg);
        }
    }
    struct server_config old = srv->cfg;
    srv->cfg = r->cfg;
    r->cfg = old; /* the replaced values of the applied settings, freed with r */
    reload_apply_modules(r);
    log_info(0, "reload (%s) of %s: %d setting(s) applied, %d need a restart", r->by,
             srv->config_file ? srv->config_file : "the command line", na, nr);
    o->status = RELOAD_APPLIED;
    o->applied = r->applied;
    o->napplied = na;
    o->needs_restart = r->needs_restart;
    o->nneeds_restart = nr;
}

static void reload_sighup_done(const reload_outcome_t *o, void *arg)
{
    (void)o; /* logged by reload_after */
    (void)arg;
}

static void reload_after(uv_work_t *w, int status)
{
    struct reload *r = w->data;
    server_t *srv = r->srv;
    srv->reload = NULL;
    reload_outcome_t o = {.config_file = srv->config_file};
    if (status != 0 || srv->draining) {
        o.status = RELOAD_STOPPING;
        log_info(0, "reload (%s) dropped: shutting down", r->by);
    } else if (r->failed) {
        o.status = RELOAD_INVALID;
        o.error = r->err;
        log_error(0, "reload (%s) refused, the running settings are kept: %s", r->by, r->err);
    } else {
        reload_apply(r, &o);
    }
    reload_notify_ready(r);
    r->done(&o, r->arg);
    bool again = r->again && !srv->draining;
    reload_free(r);
    if (srv->draining)
        server_jobs_gone(srv); /* server_finish waited for this reload */
    else if (again && reload_start(srv, "SIGHUP", reload_sighup_done, NULL) != 0)
        log_warn(0, "SIGHUP: cannot start the reload");
}

int reload_start(server_t *srv, const char *by, reload_done_fn done, void *arg)
{
    if (srv->reload || srv->draining)
        return -1;
    struct reload *r = util_xcalloc(1, sizeof(*r));
    r->srv = srv;
    snprintf(r->by, sizeof(r->by), "%s", by);
    r->done = done;
    r->arg = arg;
    r->want_sip_tls = sip_tls_wanted(srv);
    r->work.data = r;
    int rc = uv_queue_work(srv->loop, &r->work, reload_read, reload_after);
    if (rc != 0) {
        log_error(0, "reload (%s): cannot queue: %s", by, uv_strerror(rc));
        free(r);
        return -1;
    }
    srv->reload = r;
    log_info(0, "reload (%s): reading %s", by,
             srv->config_file ? srv->config_file : "the command line");
    reload_notify_reloading(r);
    return 0;
}

void reload_cancel(server_t *srv)
{
    if (srv->reload == NULL)
        return;
    /* UV_EBUSY: the read is under way and cannot be stopped; reload_after still comes,
     * sees the drain and drops it. 0: reload_after comes with UV_ECANCELED. */
    int rc = uv_cancel((uv_req_t *)&srv->reload->work);
    if (rc != 0 && rc != UV_EBUSY)
        log_warn(0, "reload: cannot cancel: %s", uv_strerror(rc));
}

static void reload_on_sighup(uv_signal_t *sig, int signum)
{
    (void)signum;
    server_t *srv = sig->data;
    if (srv->draining)
        return;
    if (srv->reload) {
        /* The file may have changed after the running reload read it: read it once more
         * when that one is over (several SIGHUPs meanwhile make one more). */
        srv->reload->again = true;
        log_info(0, "SIGHUP: a reload is running; reading again when it is over");
        return;
    }
    if (reload_start(srv, "SIGHUP", reload_sighup_done, NULL) != 0)
        log_warn(0, "SIGHUP: cannot start the reload");
}

void reload_signal_start(server_t *srv)
{
    uv_signal_init(srv->loop, &srv->sig_hup);
    srv->sig_hup.data = srv;
    uv_signal_start(&srv->sig_hup, reload_on_sighup, SIGHUP);
}

void reload_signal_close(server_t *srv)
{
    uv_close((uv_handle_t *)&srv->sig_hup, NULL);
    /* libuv put back the default action, which ends the process: a SIGHUP while the
     * pools close must not turn a clean exit into a kill. */
    signal(SIGHUP, SIG_IGN);
}

/* ---- the Reload request ---- */

enum { AUDIT_ID, AUDIT_NCOLS };
static const reply_stmt_t stmt_reload_audit =
    REPLY_STMT("reload_audit", AUDIT_NCOLS,
               "INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail) "
               "VALUES ($1, $2, 'reload', $3, "
               "        jsonb_build_object('applied', $4::text[], 'needs_restart', $5::text[])) "
               "RETURNING id");

/* A refused reload is audited too: who tried which file, and why it was refused. */
static const reply_stmt_t stmt_reload_refused_audit =
    REPLY_STMT("reload_refused_audit", AUDIT_NCOLS,
               "INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail) "
               "VALUES ($1, $2, 'reload', $3, jsonb_build_object('refused', $4::text)) "
               "RETURNING id");

void reload_register_statements(void)
{
    db_stmt_register(&stmt_reload_audit.db);
    db_stmt_register(&stmt_reload_refused_audit.db);
}

struct reload_refusal {
    request_t *req;
    const char *error;
};

static void reload_refusal_answer(struct reload_refusal *f)
{
    request_fail(f->req, CARREL__STATUS__STATUS_REFUSED, "config_invalid",
                 "%s; the running settings are kept.", f->error);
}

static void reload_refused_audit_done(const db_result_t *r, void *arg)
{
    struct reload_refusal *f = arg;
    if (r->status != DB_OK)
        log_error(f->req->conn->id, "reload by %s refused; its audit row was not written: %s",
                  request_session(f->req)->username, r->message ? r->message : "?");
    reload_refusal_answer(f);
}

/* The reload is applied whatever the audit's fate: the answer says what happened, and a
 * failed audit row is logged (the daemon's log names the user too). */
static void reload_audit_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK)
        log_error(req->conn->id, "reload by %s applied, but its audit row was not written: %s",
                  request_session(req)->username, r->message ? r->message : "?");
    request_ok(req);
}

static void reload_request_done(const reload_outcome_t *o, void *arg)
{
    request_t *req = arg;
    if (o->status == RELOAD_STOPPING) {
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "shutting_down",
                     "The server is shutting down.");
        return;
    }
    if (o->status == RELOAD_INVALID) {
        struct reload_refusal *f = arena_new(&req->arena, struct reload_refusal, 1);
        f->req = req;
        f->error = arena_strdup(&req->arena, o->error); /* o->error is freed on return */
        const char *staff, *workstation;
        reply_actor(req, &staff, &workstation);
        const char *values[4] = {staff, workstation, o->config_file ? o->config_file : "",
                                 f->error};
        if (request_db_exec(req, &stmt_reload_refused_audit.db, 4, values, NULL, NULL,
                            reload_refused_audit_done, f) != 0) {
            log_error(req->conn->id, "reload by %s refused; its audit row could not be queued",
                      request_session(req)->username);
            reload_refusal_answer(f);
        }
        return;
    }
    Carrel__ReloadReply *reply = arena_new(&req->arena, Carrel__ReloadReply, 1);
    carrel__reload_reply__init(reply);
    char **applied = REQUEST_LIST(req, char, o->napplied);
    char **restart = REQUEST_LIST(req, char, o->nneeds_restart);
    for (int i = 0; i < o->napplied; i++)
        applied[i] = arena_strdup(&req->arena, o->applied[i]);
    for (int i = 0; i < o->nneeds_restart; i++)
        restart[i] = arena_strdup(&req->arena, o->needs_restart[i]);
    reply->applied = applied;
    reply->n_applied = (size_t)o->napplied;
    reply->needs_restart = restart;
    reply->n_needs_restart = (size_t)o->nneeds_restart;
    reply->config_file = o->config_file ? arena_strdup(&req->arena, o->config_file) : NULL;
    req->resp.body_case = CARREL__RESPONSE__BODY_RELOAD;
    req->resp.reload = reply;
    log_info(req->conn->id, "reload by %s: %d applied, %d need a restart",
             request_session(req)->username, o->napplied, o->nneeds_restart);
    const char *staff, *workstation;
    reply_actor(req, &staff, &workstation);
    const char *values[5] = {staff, workstation, o->config_file ? o->config_file : "",
                             pgtext_array_build(&req->arena, applied, (size_t)o->napplied),
                             pgtext_array_build(&req->arena, restart, (size_t)o->nneeds_restart)};
    int rc =
        request_db_exec(req, &stmt_reload_audit.db, 5, values, NULL, NULL, reload_audit_done, req);
    if (rc != 0) {
        log_error(req->conn->id, "reload by %s applied, but its audit row could not be queued",
                  request_session(req)->username);
        request_ok(req);
    }
}

void handle_reload(request_t *req)
{
    if (reload_start(req->srv, request_session(req)->username, reload_request_done, req) != 0) {
        if (req->srv->draining)
            request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "shutting_down",
                         "The server is shutting down.");
        else if (req->srv->reload)
            request_fail_reason(req, REASON_RELOAD_RUNNING);
        else
            request_fail_reason(req, REASON_INTERNAL); /* could not queue: logged */
    }
}
