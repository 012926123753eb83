/*
 * auth: Hello, Login, Logout, WhoAmI and Ping.
 *
 * Login looks up the staff account and the workstation in one statement,
 * verifies the password with Argon2id on the thread pool, and binds the
 * session to the workstation's branch. Unknown users are verified against a
 * dummy hash so the answer takes as long as for a real one. Failures are
 * throttled per user name and per peer address, logged, and recorded in
 * login_event. A client may ask for a session token at login and log in
 * with it instead of the password later (no Argon2), until it expires or is
 * revoked (Logout, password change, disabled account).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "certs.h"
#include "handlers.h"
#include "log.h"
#include "metrics.h"
#include "pgtext.h"
#include "reply.h"
#include "util.h"

/*
 * One row, always ("FROM (SELECT 1) LEFT JOIN"): the staff row, the
 * workstation and its branch, whether the staff member is assigned there,
 * and, for a login with a session token ($3, the hex SHA-256 of the token),
 * whether that token is live for this staff member at this workstation.
 */
/* stmt_login_lookup's columns. Login's callbacks keep their own failure
 * paths (a login holds a place in the password queue until it ends), so
 * they take the raw db result rather than reply_query's. */
enum {
    LOOKUP_STAFF_ID,
    LOOKUP_USERNAME,
    LOOKUP_DISPLAY_NAME,
    LOOKUP_ROLE,
    LOOKUP_PASSWORD_HASH,
    LOOKUP_DISABLED,
    LOOKUP_BRANCH_CODES,
    LOOKUP_WORKSTATION_ID,
    LOOKUP_WORKSTATION,
    LOOKUP_BRANCH_ID,
    LOOKUP_BRANCH_CODE,
    LOOKUP_BRANCH_NAME,
    LOOKUP_ASSIGNED,
    LOOKUP_TOKEN_OK,
    LOOKUP_HAS_CERT,
    LOOKUP_NCOLS
};
static const db_stmt_t stmt_login_lookup = {
    "auth_login_lookup",
    "SELECT s.id, s.username, s.display_name, s.role::text, s.password_hash, s.disabled,"
    "       staff_branch_codes(s.id), w.id, w.name, b.id, b.code, b.name,"
    "       EXISTS (SELECT 1 FROM staff_branch sb"
    "               WHERE sb.staff_id = s.id AND sb.branch_id = w.branch_id),"
    "       coalesce(staff_session_valid($3::text, s.id, w.id), false),"
    "       EXISTS (SELECT 1 FROM workstation_cert wc WHERE wc.workstation_id = w.id)"
    "  FROM (SELECT 1) AS one"
    "  LEFT JOIN staff s ON s.username = $1"
    "  LEFT JOIN workstation w ON w.name = $2"
    "  LEFT JOIN branch b ON b.id = w.branch_id",
};

static const db_stmt_t stmt_login_record = {
    "auth_login_record",
    "INSERT INTO login_event (username, workstation, peer, success, reason)"
    " VALUES ($1, $2, $3, $4, $5)",
};

/* One row for many attempts refused by the throttle (see auth_report_refused). */
static const db_stmt_t stmt_login_record_refused = {
    "auth_login_record_refused",
    "INSERT INTO login_event (username, workstation, peer, success, reason, attempts)"
    " VALUES ($1, $2, $3, false, 'throttled', $4)",
};

/*
 * Only while the account is as the login found it: enabled, with the
 * password hash the password was checked against ($5). A password change or
 * a disable (even by hand in SQL) that commits while the login is being
 * checked deletes the account's tokens in its own transaction (the trigger
 * staff_session_revoke), so a token inserted after it would outlive it. FOR
 * SHARE waits for such a change still running and then sees its result; one
 * that comes later waits for this insert and deletes the token. No row: no
 * token.
 */
enum { SESSION_EXPIRES_MS, SESSION_NCOLS };
static const db_stmt_t stmt_session_insert = {
    "auth_session_insert",
    "INSERT INTO staff_session (token_hash, staff_id, workstation_id, expires_at)"
    " SELECT decode($1::text, 'hex'), s.id, $3, now() + make_interval(secs => $4::int)"
    "   FROM staff s WHERE s.id = $2 AND NOT s.disabled AND s.password_hash = $5"
    "    FOR SHARE"
    " RETURNING (extract(epoch FROM expires_at) * 1000)::bigint",
};

static const db_stmt_t stmt_session_delete = {
    "auth_session_delete",
    "DELETE FROM staff_session WHERE token_hash = decode($1::text, 'hex')",
};

enum { PRUNE_DELETED, PRUNE_NCOLS };
static const db_stmt_t stmt_prune = {
    "auth_prune",
    "SELECT login_event_prune($1::int)",
};

void auth_register_statements(void)
{
    db_stmt_register(&stmt_login_lookup);
    db_stmt_register(&stmt_login_record);
    db_stmt_register(&stmt_login_record_refused);
    db_stmt_register(&stmt_session_insert);
    db_stmt_register(&stmt_session_delete);
    db_stmt_register(&stmt_prune);
}

/* ---- Hello ---- */

void handle_hello(request_t *req)
{
    session_t *s = &req->conn->session;
    Carrel__Hello *h = req->msg->hello;
    if (s->hello_done) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "hello_repeated",
                     "Hello was already sent on this connection.");
        return;
    }
    if (!h->has_protocol_version ||
        h->protocol_version != CARREL__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT) {
        conn_t *c = req->conn;
        log_warn(c->id, "%s: unsupported protocol version %u", c->peer,
                 h->has_protocol_version ? h->protocol_version : 0);
        request_fail(req, CARREL__STATUS__STATUS_UNSUPPORTED_VERSION, "protocol_version",
                     "This server speaks protocol version %d; the client uses version %u. "
                     "Update the client.",
                     CARREL__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT,
                     h->has_protocol_version ? h->protocol_version : 0);
        conn_close_after_flush(c, "unsupported protocol version");
        return;
    }
    s->hello_done = true;
    Carrel__HelloReply *r = arena_new(&req->arena, Carrel__HelloReply, 1);
    carrel__hello_reply__init(r);
    r->has_protocol_version = 1;
    r->protocol_version = CARREL__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    r->server_name = req->srv->cfg.server_name;
    r->has_max_frame_bytes = 1;
    r->max_frame_bytes = (uint32_t)req->srv->cfg.max_frame_bytes;
    r->has_server_time_ms = 1;
    r->server_time_ms = util_now_ms();
    req->resp.body_case = CARREL__RESPONSE__BODY_HELLO;
    req->resp.hello = r;
    request_ok(req);
}

/* ---- Login ---- */

/*
 * A login is counted as a failure on both throttle keys when it arrives,
 * before anything slow happens, and the count is taken back when the attempt
 * turns out not to be a guess (success, an unknown workstation for the user
 * key, a disabled account, ...). So logins sent at once cannot all reach the
 * password check: the throttle sees each as soon as it arrives. Each also
 * holds a pending slot of its user name and of its address until it ends.
 */
typedef struct login_state {
    request_t *req;
    struct login_state *next_waiting; /* in srv->login_waiting */
    char user_key[THROTTLE_KEY_MAX];
    char addr_key[THROTTLE_KEY_MAX];
    bool counted_user, counted_addr;             /* a failure counted ahead on the key */
    bool pending_user, pending_addr;             /* holds one of the key's pending slots */
    bool by_token;                               /* presented a session token, not a password */
    char token_hash[SESSION_TOKEN_HASH_HEX + 1]; /* presented or issued token's SHA-256 */
    char token[SESSION_TOKEN_HEX + 1];           /* an issued token, for the reply */
    uint64_t revoked_seq;                        /* srv->revoked_seq when the lookup was sent */
    bool user_exists;
    bool disabled;
    bool assigned;
    bool token_ok;
    int64_t staff_id;
    role_t role;
    char *username, *display_name, *branch_codes, *workstation, *branch_code, *branch_name;
    char *password_hash; /* the stored hash the password was checked against */
    int64_t workstation_id;
    int branch_id;
} login_state_t;

static void login_record_done(const db_result_t *r, void *arg)
{
    (void)arg;
    if (r->status != DB_OK)
        log_warn(0, "cannot record login event: %s", r->message ? r->message : "?");
}

static void login_record(request_t *req, bool success, const char *reason)
{
    Carrel__Login *l = req->msg->login;
    if (!success)
        metrics_login_failed(reason);
    const char *values[5] = {l->username, l->workstation, req->conn->peer,
                             success ? "true" : "false", reason};
    int rc = db_exec_short(req->srv->db, &stmt_login_record, 5, values, NULL, NULL,
                           login_record_done, NULL);
    if (rc != 0)
        log_warn(req->conn->id, "login event not recorded: database unavailable");
}

static void login_admit_waiting(server_t *srv);
static void login_refuse_busy(request_t *req, uint64_t wait_ms, const char *why);

/* Keep srv->passwords.logins_unqueued, the password logins admitted or waiting
 * for admission whose check is not queued yet (REVIEW15C 5: a counter, not a
 * walk over every connection per Login). Called wherever those flags change. */
static void login_unqueued_sync(server_t *srv, conn_t *c)
{
    bool want =
        !c->closed && c->session.login_pending && c->login_password && c->login_work == NULL;
    if (want != c->login_unqueued) {
        c->login_unqueued = want;
        srv->passwords.logins_unqueued += want ? 1 : -1;
    }
}

/*
 * The login is over, one way or another: give back its pending slots, take
 * back the failures counted ahead unless `keep_user` / `keep_addr` (the
 * attempt did fail on that key), and let the connection log in again.
 */
static void login_end(request_t *req, bool keep_user, bool keep_addr)
{
    login_state_t *st = req->state;
    server_t *srv = req->srv;
    if (st->pending_user)
        throttle_pending_done(&srv->throttle_users, st->user_key);
    if (st->pending_addr)
        throttle_pending_done(&srv->throttle_addresses, st->addr_key);
    if (st->counted_user && !keep_user)
        throttle_unfail(&srv->throttle_users, st->user_key);
    if (st->counted_addr && !keep_addr)
        throttle_unfail(&srv->throttle_addresses, st->addr_key);
    bool freed = st->pending_user || st->pending_addr;
    st->pending_user = st->pending_addr = st->counted_user = st->counted_addr = false;
    req->conn->session.login_pending = false;
    req->conn->login_work = NULL;
    login_unqueued_sync(srv, req->conn);
    if (freed && srv->login_waiting) /* a slot and perhaps a verdict: the waiting may go */
        login_admit_waiting(srv);
}

/* A wrong password or an unknown user: the failures counted ahead stay. */
static void login_failed(request_t *req, const char *reason)
{
    login_state_t *st = req->state;
    server_t *srv = req->srv;
    int64_t now = util_now_ms();
    int n1 = throttle_failures(&srv->throttle_users, st->user_key, now);
    int n2 = throttle_failures(&srv->throttle_addresses, st->addr_key, now);
    if (n1 >= srv->cfg.login_throttle_after || n2 >= srv->cfg.login_throttle_after_address)
        log_warn(req->conn->id,
                 "failed login for %s from %s (%s): %d in a row for the user, %d from the "
                 "address; slowing down",
                 req->msg->login->username, req->conn->peer, reason, n1, n2);
    else
        log_warn(req->conn->id, "failed login for %s from %s (%s)", req->msg->login->username,
                 req->conn->peer, reason);
    login_record(req, false, reason);
    login_end(req, true, true);
    request_fail(req, CARREL__STATUS__STATUS_UNAUTHENTICATED, "bad_credentials",
                 "Wrong user name or password.");
}

/*
 * An attempt refused by the throttle before any work: one log line for the first refusal of the key
 * since the last report, and no login_event row of its own; the housekeeping timer writes one
 * summary row per key and interval (auth_report_refused), so a flood of attempts costs a bounded
 * number of rows and log lines.
 */
static void login_refused(request_t *req, throttle_t *table, const char *key, const char *what)
{
    Carrel__Login *l = req->msg->login;
    int n = throttle_refused(table, key, l->username, l->workstation, req->conn->peer);
    if (n == 1)
        log_warn(req->conn->id,
                 "login for %s from %s refused: %s (further refusals for %s are summed up "
                 "every %ld s)",
                 l->username, req->conn->peer, what, key, req->srv->cfg.login_throttle_report_s);
}

/* Build the LoginReply describing a session (also used by WhoAmI). */
static Carrel__LoginReply *session_reply(request_t *req, const session_t *s)
{
    arena_t *a = &req->arena;
    Carrel__LoginReply *r = arena_new(a, Carrel__LoginReply, 1);
    carrel__login_reply__init(r);
    Carrel__Staff *staff = arena_new(a, Carrel__Staff, 1);
    carrel__staff__init(staff);
    staff->has_id = 1;
    staff->id = s->staff_id;
    staff->username = arena_strdup(a, s->username);
    staff->display_name = arena_strdup(a, s->display_name);
    staff->has_role = 1;
    staff->role = s->role;
    /* A session exists only while its account is enabled: disabling one ends its sessions. */
    staff->has_disabled = 1;
    staff->disabled = 0;
    char *codes = arena_strdup(a, s->branch_codes);
    size_t n = 0;
    for (char *p = codes; *p; p++)
        if (*p == ',')
            n++;
    staff->branch_codes = arena_new(a, char *, n + 1);
    char *save = NULL;
    for (char *tok = strtok_r(codes, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        staff->branch_codes[staff->n_branch_codes++] = tok;
    Carrel__Workstation *w = arena_new(a, Carrel__Workstation, 1);
    carrel__workstation__init(w);
    w->has_id = 1;
    w->id = s->workstation_id;
    w->name = arena_strdup(a, s->workstation);
    w->branch_code = arena_strdup(a, s->branch_code);
    Carrel__Branch *b = arena_new(a, Carrel__Branch, 1);
    carrel__branch__init(b);
    b->has_id = 1;
    b->id = s->branch_id;
    b->code = arena_strdup(a, s->branch_code);
    b->name = arena_strdup(a, s->branch_name);
    r->staff = staff;
    r->workstation = w;
    r->branch = b;
    return r;
}

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
static void auth_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The SHA-256 (hex) a token is stored and looked up by; the token itself is never stored. */
static void auth_token_hash(const char *token, char out[SESSION_TOKEN_HASH_HEX + 1])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), digest);
    auth_hex(digest, sizeof(digest), out);
}

static bool auth_token_well_formed(const char *t)
{
    if (strlen(t) != SESSION_TOKEN_HEX)
        return false;
    for (const char *p = t; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* Send the LoginReply of the session just established. */
static void login_reply(request_t *req, int64_t token_expires_ms)
{
    login_state_t *st = req->state;
    session_t *s = &req->conn->session;
    log_info(req->conn->id, "login: %s (%s) at %s, %s%s", s->username, role_name(s->role),
             s->workstation, s->branch_code, st->by_token ? " (session token)" : "");
    req->resp.body_case = CARREL__RESPONSE__BODY_LOGIN;
    req->resp.login = session_reply(req, s);
    if (st->token[0] && token_expires_ms > 0) {
        req->resp.login->session_token = arena_strdup(&req->arena, st->token);
        req->resp.login->has_session_expires_ms = 1;
        req->resp.login->session_expires_ms = token_expires_ms;
    }
    OPENSSL_cleanse(st->token, sizeof(st->token));
    request_ok(req);
}

static void login_token_stored(const db_result_t *r, void *arg)
{
    db_result_t fit;
    r = db_fit(r, SESSION_NCOLS, &fit);
    request_t *req = arg;
    login_state_t *st = req->state;
    session_t *s = &req->conn->session;
    if (r->status != DB_OK || PQntuples(r->res) != 1) {
        /* Logged in all the same; the client just asks for the password next time. */
        if (r->status != DB_OK)
            log_warn(req->conn->id, "session token not stored: %s", r->message ? r->message : "?");
        else
            log_warn(req->conn->id, "no session token: the account %s changed while logging in",
                     s->username);
        st->token[0] = '\0';
        s->has_token = false;
        login_reply(req, 0);
        return;
    }
    login_reply(req, db_int64(r->res, 0, SESSION_EXPIRES_MS));
}

/*
 * A client that asked for a session token gets a new random one (256 bits,
 * sent once, stored only as its SHA-256 with the staff member, the
 * workstation and an expiry). The reply waits until it is stored.
 */
static void login_issue_token(request_t *req)
{
    login_state_t *st = req->state;
    session_t *s = &req->conn->session;
    unsigned char raw[SESSION_TOKEN_HEX / 2];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        log_warn(req->conn->id, "no randomness for a session token");
        login_reply(req, 0);
        return;
    }
    auth_hex(raw, sizeof(raw), st->token);
    OPENSSL_cleanse(raw, sizeof(raw));
    auth_token_hash(st->token, st->token_hash);
    util_strlcpy(s->token_hash, st->token_hash, sizeof(s->token_hash));
    s->has_token = true;
    const char *values[5] = {st->token_hash, pgtext_int(&req->arena, st->staff_id),
                             pgtext_int(&req->arena, st->workstation_id),
                             pgtext_int(&req->arena, req->srv->cfg.session_token_ttl_s),
                             st->password_hash};
    int rc = db_exec_short(req->srv->db, &stmt_session_insert, 5, values, NULL, NULL,
                           login_token_stored, req);
    if (rc != 0) {
        log_warn(req->conn->id, "session token not stored: database unavailable");
        st->token[0] = '\0';
        s->has_token = false;
        login_reply(req, 0);
    }
}

/* Refuse a login whose account is known; none of these counts as a failure. */
static bool login_refuse_account(request_t *req)
{
    login_state_t *st = req->state;
    if (server_sessions_ended_since(req->srv, st->staff_id, st->revoked_seq)) {
        login_record(req, false, "account_changed");
        login_end(req, false, false);
        request_fail(req, CARREL__STATUS__STATUS_UNAUTHENTICATED, "account_changed",
                     "The account %s was changed while logging in; log in again.", st->username);
        return true;
    }
    if (st->disabled) {
        login_record(req, false, "disabled");
        login_end(req, false, false);
        request_fail(req, CARREL__STATUS__STATUS_UNAUTHENTICATED, "account_disabled",
                     "The account %s is disabled; ask a branch manager or administrator.",
                     st->username);
        return true;
    }
    if (st->role == CARREL__ROLE__ROLE_SELFCHECK) {
        /* A kiosk's account, right password and all: it logs in only on the SIP2 port. */
        login_record(req, false, "selfcheck_account");
        login_end(req, false, false);
        request_fail_reason(req, REASON_SELFCHECK_ACCOUNT);
        return true;
    }
    if (perm_role_is_branch_bound(st->role) && !st->assigned) {
        login_record(req, false, "not_assigned");
        login_end(req, false, false);
        log_info(req->conn->id, "%s is not assigned to %s", st->username, st->branch_name);
        request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "branch",
                     "%s is not assigned to %s; this workstation belongs to that branch.",
                     st->username, st->branch_name);
        return true;
    }
    return false;
}

/* The password (or token) is right: check the account, then open the session. */
static void login_accept(request_t *req)
{
    login_state_t *st = req->state;
    if (login_refuse_account(req))
        return;
    session_t *s = &req->conn->session;
    /* Events were asked for by whoever was logged in before: not this person. */
    req->conn->subscribed = req->conn->all_branches = false;
    req->conn->stats_live = false;
    s->authenticated = true;
    s->staff_id = st->staff_id;
    s->role = st->role;
    s->branch_id = st->branch_id;
    s->workstation_id = st->workstation_id;
    s->login_ms = util_now_ms(); /* an offline replay is dated before it */
    util_strlcpy(s->username, st->username, sizeof(s->username));
    util_strlcpy(s->display_name, st->display_name, sizeof(s->display_name));
    util_strlcpy(s->branch_code, st->branch_code, sizeof(s->branch_code));
    util_strlcpy(s->branch_name, st->branch_name, sizeof(s->branch_name));
    util_strlcpy(s->workstation, st->workstation, sizeof(s->workstation));
    util_strlcpy(s->branch_codes, st->branch_codes, sizeof(s->branch_codes));
    if (st->by_token) { /* Logout ends the saved session it came with */
        util_strlcpy(s->token_hash, st->token_hash, sizeof(s->token_hash));
        s->has_token = true;
    }
    login_end(req, false, false);
    throttle_success(&req->srv->throttle_users, st->user_key);
    channel_set_max_frame(&req->conn->ch, (size_t)req->srv->cfg.max_frame_bytes);
    login_record(req, true, st->by_token ? "ok_token" : "ok");
    Carrel__Login *l = req->msg->login;
    if (!st->by_token && l->has_want_session_token && l->want_session_token)
        login_issue_token(req);
    else
        login_reply(req, 0);
}

static void login_verified(int ok, const char *hash, void *arg)
{
    (void)hash;
    request_t *req = arg;
    login_state_t *st = req->state;
    req->conn->login_work = NULL;
    login_unqueued_sync(req->srv, req->conn);
    if (ok == PASSWORD_CANCELLED || req->conn->closed) {
        /* The client went away: its attempt still counts, its check was skipped. */
        login_record(req, false, "abandoned");
        login_end(req, true, true);
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "closed", "Connection closed.");
        return;
    }
    if (ok < 0 && st->user_exists) {
        log_error(req->conn->id, "stored password hash for %s is unusable", st->username);
        login_failed(req, "bad_hash");
        return;
    }
    if (ok != PASSWORD_MATCH || !st->user_exists) {
        login_failed(req, st->user_exists ? "wrong_password" : "unknown_user");
        return;
    }
    login_accept(req);
}

/* Turn "{DWN,PRK}" into "DWN,PRK". */
static char *login_codes_csv(arena_t *a, const char *literal)
{
    size_t n = 0;
    char **codes = pgtext_array_parse(a, literal, &n);
    char *out = arena_strdup(a, "");
    for (size_t i = 0; i < n; i++)
        out = arena_printf(a, "%s%s%s", out, i ? "," : "", codes[i] ? codes[i] : "");
    return out;
}

/* Workstation and certificate checks; true if the login was answered. */
static bool login_refuse_workstation(request_t *req, const PGresult *res)
{
    Carrel__Login *l = req->msg->login;
    if (db_null(res, 0, LOOKUP_WORKSTATION_ID)) {
        /* Not a password guess, but guessing workstation names is: it stays
         * counted against the address (not the user, who may simply be
         * misconfigured). */
        login_record(req, false, "unknown_workstation");
        login_end(req, false, true);
        log_warn(req->conn->id, "login from %s at unregistered workstation %s", req->conn->peer,
                 l->workstation);
        request_fail(req, CARREL__STATUS__STATUS_UNAUTHENTICATED, "unknown_workstation",
                     "The workstation %s is not registered; ask an administrator to register "
                     "it.",
                     l->workstation);
        return true;
    }
    /* A workstation with certificates on record is certificate-managed: without
     * mandatory client certificates, a desk that connects without one (a stolen
     * laptop whose certificate was revoked) must not log in naming it. */
    if (req->conn->cert_cn[0] == '\0' && db_bool(res, 0, LOOKUP_HAS_CERT)) {
        login_record(req, false, "certificate_required");
        login_end(req, false, true);
        log_warn(req->conn->id, "login from %s at workstation %s without its client certificate",
                 req->conn->peer, l->workstation);
        request_fail(req, CARREL__STATUS__STATUS_UNAUTHENTICATED, "certificate_mismatch",
                     "Workstation %s logs in with its client certificate; this connection has "
                     "none.",
                     l->workstation);
        return true;
    }
    if (req->conn->cert_cn[0] && strcmp(req->conn->cert_cn, l->workstation) != 0) {
        login_record(req, false, "certificate_mismatch");
        login_end(req, false, true);
        request_fail(req, CARREL__STATUS__STATUS_UNAUTHENTICATED, "certificate_mismatch",
                     "This client certificate belongs to workstation %s, not %s.",
                     req->conn->cert_cn, l->workstation);
        return true;
    }
    return false;
}

/* Queue the Argon2 check; the connection can cancel it if it closes first. */
static void login_check_password(request_t *req, const char *hash)
{
    Carrel__Login *l = req->msg->login;
    int rc = password_verify_async(&req->srv->passwords, hash, l->password, login_verified, req,
                                   &req->conn->login_work);
    login_unqueued_sync(req->srv, req->conn);
    if (rc == 0) /* the queue's order, for tests and for tracing a storm */
        log_debug(req->conn->id, "password check for %s queued, %d ahead", l->username,
                  password_queue_ahead(&req->srv->passwords) - 1);
    if (rc == PASSWORD_QUEUE_FULL) {
        login_end(req, false, false);
        password_queue_t *q = &req->srv->passwords;
        login_refuse_busy(req,
                          password_wait_ms(password_queue_ahead(q), q->workers, password_job_ms(q)),
                          "password checks queue full");
    } else if (rc != 0) {
        login_end(req, false, false);
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                     "Cannot check the password right now.");
    }
}

static void login_looked_up(const db_result_t *r, void *arg)
{
    db_result_t fit;
    r = db_fit(r, LOOKUP_NCOLS, &fit);
    request_t *req = arg;
    login_state_t *st = req->state;
    if (r->status != DB_OK) {
        login_end(req, false, false);
        request_fail_db(req, r);
        return;
    }
    if (req->conn->closed) { /* gone while we looked: no password check for nobody */
        login_record(req, false, "abandoned");
        login_end(req, true, true);
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "closed", "Connection closed.");
        return;
    }
    const PGresult *res = r->res;
    arena_t *a = &req->arena;
    st->user_exists = !db_null(res, 0, LOOKUP_STAFF_ID);
    if (login_refuse_workstation(req, res))
        return;
    st->staff_id = db_int64(res, 0, LOOKUP_STAFF_ID);
    st->username = arena_strdup(a, COL(res, 0, LOOKUP_USERNAME));
    st->display_name = arena_strdup(a, COL(res, 0, LOOKUP_DISPLAY_NAME));
    st->role = role_from_name(COL(res, 0, LOOKUP_ROLE));
    st->disabled = db_bool(res, 0, LOOKUP_DISABLED);
    st->branch_codes = login_codes_csv(a, COL(res, 0, LOOKUP_BRANCH_CODES));
    st->workstation_id = db_int64(res, 0, LOOKUP_WORKSTATION_ID);
    st->workstation = arena_strdup(a, COL(res, 0, LOOKUP_WORKSTATION));
    st->branch_id = db_int32(res, 0, LOOKUP_BRANCH_ID);
    st->branch_code = arena_strdup(a, COL(res, 0, LOOKUP_BRANCH_CODE));
    st->branch_name = arena_strdup(a, COL(res, 0, LOOKUP_BRANCH_NAME));
    st->assigned = db_bool(res, 0, LOOKUP_ASSIGNED);
    st->token_ok = db_bool(res, 0, LOOKUP_TOKEN_OK);
    st->password_hash = arena_strdup(a, COL(res, 0, LOOKUP_PASSWORD_HASH));

    if (st->by_token) {
        if (!st->user_exists || !st->token_ok) {
            /* Tokens are too long to guess; an ended one is routine (expired,
             * revoked), so it counts against the address only. */
            login_record(req, false, "session_ended");
            login_end(req, false, true);
            request_fail(req, CARREL__STATUS__STATUS_UNAUTHENTICATED, "session_ended",
                         "The saved session has ended; log in with the password.");
            return;
        }
        login_accept(req);
        return;
    }
    login_check_password(req, st->user_exists ? COL(res, 0, LOOKUP_PASSWORD_HASH)
                                              : req->srv->dummy_hash);
}

static bool login_field_ok(const char *s, size_t max)
{
    return s && s[0] && strlen(s) <= max;
}

/* Field checks; false if the login was answered. */
static bool login_fields_ok(request_t *req)
{
    Carrel__Login *l = req->msg->login;
    bool has_password = l->password && l->password[0];
    bool has_token = l->session_token && l->session_token[0];
    if (!login_field_ok(l->workstation, 63) || !login_field_ok(l->username, 32) ||
        has_password == has_token || (has_password && !login_field_ok(l->password, 1024))) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:login",
                     "Login needs a workstation name, a user name and a password (or a session "
                     "token instead of the password).");
        return false;
    }
    if (has_token && !auth_token_well_formed(l->session_token)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:session_token",
                     "A session token is %d lower-case hexadecimal digits.", SESSION_TOKEN_HEX);
        return false;
    }
    return true;
}

/*
 * The password queue's answer to a crowd. A password login is refused at once,
 * UNAVAILABLE `password_queue` with retry_after_ms, when the password queue is
 * full or when its expected wait (the checks queued or running, and the password
 * logins ahead of it still waiting for admission or being looked up, divided
 * among the workers, times one check's measured duration) would pass its
 * connection's login deadline, instead of letting the deadline close the
 * connection after it waited for nothing. The refusal moves the connection's
 * login deadline: it counts login_timeout_s again from retry_after_ms and a
 * fifth later (or from the retry's arrival, if later), so a client that retries
 * on the same connection when told, with its jitter, has a whole window.
 * Refusals are spaced (password_retry_after): logins refused together come back
 * one after another at the rate the queue drains.
 */
static int login_password_logins_ahead(const server_t *srv)
{
    return srv->passwords.logins_unqueued;
}

/* The connection no longer holds a retry time (it came back, or logs in another way). */
static void login_told_clear(server_t *srv, conn_t *c)
{
    if (c->login_retry_at != 0) {
        c->login_retry_at = 0;
        srv->passwords.told--;
    }
}

/* Answer UNAVAILABLE password_queue: come back in `after` ms. */
static void login_answer_busy(request_t *req, uint32_t after)
{
    req->resp.has_retry_after_ms = 1;
    req->resp.retry_after_ms = after;
    request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "password_queue",
                 "The server is busy checking other logins; trying again in %u.%u s is expected "
                 "to succeed.",
                 after / 1000, after % 1000 / 100);
}

static void login_refuse_busy(request_t *req, uint64_t wait_ms, const char *why)
{
    server_t *srv = req->srv;
    conn_t *c = req->conn;
    uint64_t window = (uint64_t)srv->cfg.login_timeout_s * 1000;
    uint64_t now = uv_now(srv->loop);
    uint32_t after = password_retry_after(&srv->passwords, wait_ms, window);
    /* One retry time per connection at once (REVIEW15C 1, 2): counted once in
     * `told`, which bounds how far refusals can push everyone's slot. */
    if (c->login_retry_at == 0)
        srv->passwords.told++;
    c->login_retry_at = now + after;
    /* A fifth more: room for the client's jitter (PROTOCOL.md, "Retrying"). */
    c->login_from = now + after + after / 5;
    /* A connection that has not logged in has a bounded lifetime (REVIEW15C 3,
     * conn_login_lifetime_end): a retry time whose window would end past it is
     * given and the connection closed; the client reopens (a resumed TLS
     * session makes that cheap). */
    bool last = c->login_from + window > conn_login_lifetime_end(c);
    log_info(c->id, "login for %s from %s refused: %s (about %llu ms); retry in %u ms%s",
             req->msg->login->username, c->peer, why, (unsigned long long)wait_ms, after,
             last ? " on a new connection" : "");
    conn_ref(c);
    login_answer_busy(req, after);
    if (last) {
        login_told_clear(srv, c);
        conn_close_after_flush(c, "login lifetime");
    }
    conn_unref(c);
}

/* True (and answered) when a new password login would wait past its deadline. */
static bool login_queue_refuse(request_t *req)
{
    server_t *srv = req->srv;
    conn_t *c = req->conn;
    password_queue_t *q = &srv->passwords;
    uint64_t now = uv_now(srv->loop);
    if (c->login_retry_at != 0) {
        /* Earlier than told (REVIEW15C 1): the same time again, what is left of
         * it; no new slot, no new deadline, no place in the queue. Not logged:
         * a client that pipelines Logins would fill the log. */
        if (now + LOGIN_EARLY_SLACK_MS < c->login_retry_at) {
            login_answer_busy(req, (uint32_t)(c->login_retry_at - now));
            return true;
        }
        /* On time: a whole window from the time it was told (or its arrival,
         * if later), so the client's jitter does not eat into it. */
        c->login_from = now > c->login_retry_at ? now : c->login_retry_at;
        login_told_clear(srv, c);
    }
    int ahead = password_queue_ahead(q) + login_password_logins_ahead(srv);
    uint64_t wait = password_wait_ms(ahead, q->workers, password_job_ms(q));
    uint64_t deadline = conn_login_deadline(c);
    if (password_queue_full(q)) {
        login_refuse_busy(req, wait, "password checks queue full");
        return true;
    }
    /* One that would start at once goes ahead whatever its check costs: when one
     * check takes longer than the login window (a loaded machine), retrying could
     * never help, and once queued its check keeps the connection (conn.c). */
    if (now + wait <= deadline || ahead < q->workers)
        return false;
    login_refuse_busy(req, wait, "expected to wait past the login deadline");
    return true;
}

/*
 * Admission. A login goes ahead when neither key is locked out and both
 * have a free pending slot. It is refused at once when a key is locked out
 * by failures that are all known (nothing pending on it). Otherwise (locked
 * out only by failures counted ahead, or no free slot) it waits in
 * srv->login_waiting until a login of its keys ends, since that answer
 * decides: right passwords clear the count, wrong ones lock the key. So a
 * desk's burst of right logins all succeed, a few at a time, while a burst
 * of guesses gets `login_throttle_after` checks and then refusals.
 */
typedef enum { LOGIN_ADMIT_GO, LOGIN_ADMIT_WAIT, LOGIN_ADMIT_ANSWERED } login_admit_t;

static login_admit_t login_admit(request_t *req)
{
    login_state_t *st = req->state;
    server_t *srv = req->srv;
    /* Fail closed: until the revoked certificates are read from the database a
     * client certificate cannot be told good from revoked, so its login waits
     * (auth_certs_loaded; the login deadline still applies). */
    if (req->conn->cert_serial[0] && !certs_loaded(srv))
        return LOGIN_ADMIT_WAIT;
    int64_t now = util_now_ms();
    int64_t wait1 = throttle_wait_ms(&srv->throttle_users, st->user_key, now);
    int64_t wait2 = throttle_wait_ms(&srv->throttle_addresses, st->addr_key, now);
    int pend1 = throttle_pending(&srv->throttle_users, st->user_key);
    int pend2 = throttle_pending(&srv->throttle_addresses, st->addr_key);
    if ((wait1 > 0 && pend1 == 0) || (wait2 > 0 && pend2 == 0)) {
        int64_t wait = wait1 > wait2 ? wait1 : wait2;
        bool by_user = wait1 > 0 && pend1 == 0;
        if (by_user)
            login_refused(req, &srv->throttle_users, st->user_key, "throttled");
        else
            login_refused(req, &srv->throttle_addresses, st->addr_key, "throttled");
        metrics_login_throttled(by_user ? "user" : "address");
        request_fail(req, CARREL__STATUS__STATUS_TOO_MANY_REQUESTS, "login_throttled",
                     "Too many failed logins; try again in %lld seconds.",
                     (long long)(wait + 999) / 1000);
        return LOGIN_ADMIT_ANSWERED;
    }
    if (wait1 > 0 || wait2 > 0 || pend1 >= srv->cfg.login_pending_per_user ||
        pend2 >= srv->cfg.login_pending_per_address)
        return LOGIN_ADMIT_WAIT;
    if (!st->by_token && password_queue_full(&srv->passwords)) {
        password_queue_t *q = &srv->passwords;
        login_refuse_busy(req,
                          password_wait_ms(password_queue_ahead(q), q->workers, password_job_ms(q)),
                          "password checks queue full");
        return LOGIN_ADMIT_ANSWERED;
    }
    st->pending_user = throttle_pending_add(&srv->throttle_users, st->user_key,
                                            (int)srv->cfg.login_pending_per_user);
    st->pending_addr = throttle_pending_add(&srv->throttle_addresses, st->addr_key,
                                            (int)srv->cfg.login_pending_per_address);
    if (!st->pending_user || !st->pending_addr) { /* no room left in a table */
        login_end(req, false, false);
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "overloaded",
                     "The server is busy checking other logins; try again in a few seconds.");
        return LOGIN_ADMIT_ANSWERED;
    }
    st->counted_user = throttle_fail(&srv->throttle_users, st->user_key, now) > 0;
    st->counted_addr = throttle_fail(&srv->throttle_addresses, st->addr_key, now) > 0;
    return LOGIN_ADMIT_GO;
}

/* Look the account up (the login was admitted). */
static void login_start(request_t *req)
{
    login_state_t *st = req->state;
    Carrel__Login *l = req->msg->login;
    st->revoked_seq = req->srv->revoked_seq;
    const char *values[3] = {l->username, l->workstation, st->by_token ? st->token_hash : NULL};
    int rc = db_exec_short(req->srv->db, &stmt_login_lookup, 3, values, NULL, NULL, login_looked_up,
                           req);
    if (rc != 0) {
        login_end(req, false, false);
        request_fail_exec(req, rc);
    }
}

/* Append a login to srv->login_waiting (oldest first). */
static void login_wait(request_t *req)
{
    login_state_t *st = req->state;
    login_state_t **p = &req->srv->login_waiting;
    while (*p)
        p = &(*p)->next_waiting;
    st->next_waiting = NULL;
    *p = st;
    req->conn->session.login_pending = true;
    login_unqueued_sync(req->srv, req->conn);
}

/*
 * Try the waiting logins again, oldest first (a login ended, so a slot or a
 * verdict may have come free). The list is taken whole and those still
 * waiting are put back in order. Answering a login frees its state, so
 * nothing of it is touched after. Re-entered from login_start's failure
 * path, so a flag makes the outer call go round again instead.
 */
static void login_admit_waiting(server_t *srv)
{
    if (srv->login_admitting) {
        srv->login_admit_again = true;
        return;
    }
    srv->login_admitting = true;
    do {
        srv->login_admit_again = false;
        login_state_t *list = srv->login_waiting, *next;
        srv->login_waiting = NULL;
        for (login_state_t *st = list; st; st = next) {
            next = st->next_waiting;
            request_t *req = st->req;
            conn_t *c = req->conn;
            c->session.login_pending = false;
            login_unqueued_sync(srv, c);
            if (c->closed) {
                request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "closed",
                             "Connection closed.");
                continue;
            }
            login_admit_t a = login_admit(req);
            if (a == LOGIN_ADMIT_WAIT) {
                login_wait(req);
            } else if (a == LOGIN_ADMIT_GO) {
                c->session.login_pending = true;
                login_unqueued_sync(srv, c);
                login_start(req);
            }
        }
    } while (srv->login_admit_again);
    srv->login_admitting = false;
}

void auth_certs_loaded(server_t *srv)
{
    login_admit_waiting(srv);
}

void auth_conn_gone(server_t *srv, conn_t *c)
{
    for (login_state_t *st = srv->login_waiting; st; st = st->next_waiting)
        if (st->req->conn == c) {
            login_admit_waiting(srv); /* ends it, as its connection is closed */
            return;
        }
}

void handle_login(request_t *req)
{
    Carrel__Login *l = req->msg->login;
    session_t *s = &req->conn->session;
    if (s->authenticated || s->login_pending) {
        request_fail(req, CARREL__STATUS__STATUS_CONFLICT, "already_logged_in",
                     "This connection is already logged in; log out first.");
        return;
    }
    if (!login_fields_ok(req))
        return;
    login_state_t *st = arena_new(&req->arena, login_state_t, 1);
    req->state = st;
    st->req = req;
    snprintf(st->user_key, sizeof(st->user_key), "user:%s", l->username);
    /* Throttle by address without the port, which changes per connection. */
    snprintf(st->addr_key, sizeof(st->addr_key), "addr:%s", req->conn->addr);
    st->by_token = l->session_token && l->session_token[0];
    if (st->by_token) {
        auth_token_hash(l->session_token, st->token_hash);
        login_told_clear(req->srv, req->conn);
    } else if (login_queue_refuse(req))
        return;
    req->conn->login_password = !st->by_token;
    login_admit_t a = login_admit(req);
    if (a == LOGIN_ADMIT_WAIT) {
        if (req->conn->cert_serial[0] && !certs_loaded(req->srv))
            log_info(req->conn->id, "login at %s waits until the revoked certificates are read",
                     l->workstation);
        login_wait(req);
    } else if (a == LOGIN_ADMIT_GO) {
        s->login_pending = true;
        login_unqueued_sync(req->srv, req->conn);
        login_start(req);
    }
}

/* ---- Logout ---- */

static void logout_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        log_warn(req->conn->id, "session token not revoked: %s", r->message ? r->message : "?");
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "database",
                     "Logged out here, but the saved session could not be ended now (the "
                     "database is unavailable); it expires by itself.");
        return;
    }
    request_ok(req);
}

/* Logout ends the session here and the saved session (token) it used or got. */
void handle_logout(request_t *req)
{
    session_t *s = &req->conn->session;
    if (s->login_pending) {
        request_fail(req, CARREL__STATUS__STATUS_CONFLICT, "login_pending",
                     "A login is still being checked; wait for its answer.");
        return;
    }
    if (s->authenticated)
        log_info(req->conn->id, "logout: %s", s->username);
    char token_hash[sizeof(s->token_hash)];
    bool had_token = s->authenticated && s->has_token;
    util_strlcpy(token_hash, s->token_hash, sizeof(token_hash));
    bool hello = s->hello_done;
    memset(s, 0, sizeof(*s));
    /* The next person on this connection asks for events for themselves. */
    req->conn->subscribed = req->conn->all_branches = false;
    req->conn->stats_live = false;
    s->hello_done = hello;
    req->conn->accepted_at = uv_now(req->srv->loop); /* a fresh login deadline */
    req->conn->login_from = 0;                       /* not an old refusal's */
    channel_set_max_frame(&req->conn->ch, (size_t)req->srv->cfg.max_frame_bytes_login);
    if (!had_token) {
        request_ok(req);
        return;
    }
    const char *values[1] = {token_hash};
    request_db(req, &stmt_session_delete, 1, values, logout_done);
}

void handle_whoami(request_t *req)
{
    req->resp.body_case = CARREL__RESPONSE__BODY_WHOAMI;
    req->resp.whoami = session_reply(req, &req->conn->session);
    request_ok(req);
}

/* ---- Ping ---- */

void handle_ping(request_t *req)
{
    Carrel__Ping *p = req->msg->ping;
    if (p->has_push_event && p->push_event) {
        Carrel__Event ev = CARREL__EVENT__INIT;
        ev.kind = "test";
        ev.branch_code = req->conn->session.branch_code;
        ev.text = "Test event: pushed by the server on request.";
        ev.has_time_ms = 1;
        ev.time_ms = util_now_ms();
        conn_push_event(req->conn, &ev);
        metrics_event_pushed(ev.kind);
    }
    Carrel__Pong *pong = arena_new(&req->arena, Carrel__Pong, 1);
    carrel__pong__init(pong);
    pong->payload = p->payload;
    pong->has_server_time_ms = 1;
    pong->server_time_ms = util_now_ms();
    req->resp.body_case = CARREL__RESPONSE__BODY_PONG;
    req->resp.pong = pong;
    request_ok(req);
}

/* ---- housekeeping ---- */

static void auth_report_one(const throttle_entry_t *e, void *arg)
{
    server_t *srv = arg;
    log_warn(0, "%d login attempt(s) for %s refused in the last %ld s (the last: %s at %s from %s)",
             e->refused, e->key, srv->cfg.login_throttle_report_s, e->user, e->workstation,
             e->peer);
    char attempts[16];
    snprintf(attempts, sizeof(attempts), "%d", e->refused);
    const char *values[4] = {e->user, e->workstation, e->peer, attempts};
    if (srv->db == NULL || db_exec(srv->db, &stmt_login_record_refused, 4, values, NULL, NULL,
                                   login_record_done, NULL) != 0)
        log_warn(0, "refused logins not recorded: database unavailable");
}

/* One log line and one login_event row per key with refused attempts. */
static void auth_report_refused(server_t *srv)
{
    throttle_report(&srv->throttle_users, auth_report_one, srv);
    throttle_report(&srv->throttle_addresses, auth_report_one, srv);
}

static void auth_prune_done(const db_result_t *r, void *arg)
{
    db_result_t fit;
    r = db_fit(r, PRUNE_NCOLS, &fit);
    (void)arg;
    if (r->status != DB_OK)
        log_warn(0, "login_event retention: %s", r->message ? r->message : "?");
    else if (db_int64(r->res, 0, PRUNE_DELETED) > 0)
        log_info(0, "login_event retention: %lld old row(s) and expired session(s) deleted",
                 (long long)db_int64(r->res, 0, PRUNE_DELETED));
}

#define AUTH_PRUNE_EVERY_MS (3600 * 1000)

/* Deletes login_event rows past login_event_retention_days and expired session tokens. */
static void auth_prune(server_t *srv)
{
    uint64_t now = uv_now(srv->loop);
    if (srv->auth_pruned_at != 0 && now - srv->auth_pruned_at < AUTH_PRUNE_EVERY_MS)
        return;
    char days[24];
    snprintf(days, sizeof(days), "%ld", srv->cfg.login_event_retention_days);
    const char *values[1] = {days};
    if (db_exec_long(srv->db, &stmt_prune, 1, values, NULL, NULL, auth_prune_done, NULL) == 0)
        srv->auth_pruned_at = now; /* else: the database is down; try at the next tick */
}

static void auth_tick(uv_timer_t *t)
{
    server_t *srv = t->data;
    auth_report_refused(srv);
    auth_prune(srv);
}

void auth_jobs_start(server_t *srv)
{
    uint64_t ms = (uint64_t)srv->cfg.login_throttle_report_s * 1000;
    uv_timer_init(srv->loop, &srv->auth_timer);
    srv->auth_timer.data = srv;
    uv_timer_start(&srv->auth_timer, auth_tick, ms, ms);
    srv->auth_timer_started = true;
}

/* A reload may have changed login_throttle_report_s: the timer takes the new period. */
void auth_jobs_reload(server_t *srv)
{
    uint64_t ms = (uint64_t)srv->cfg.login_throttle_report_s * 1000;
    if (srv->auth_timer_started && uv_timer_get_repeat(&srv->auth_timer) != ms)
        uv_timer_start(&srv->auth_timer, auth_tick, ms, ms);
}

/* On drain: a last summary while the pool still takes work, then the timer goes. */
void auth_jobs_stop(server_t *srv)
{
    if (!srv->auth_timer_started)
        return;
    srv->auth_timer_started = false;
    auth_report_refused(srv);
    uv_timer_stop(&srv->auth_timer);
    uv_close((uv_handle_t *)&srv->auth_timer, NULL);
}

int auth_logins_waiting(const server_t *srv)
{
    int n = 0;
    for (const login_state_t *st = srv->login_waiting; st; st = st->next_waiting)
        n++;
    return n;
}
