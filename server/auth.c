/*
 * auth: Hello, Login, Logout, WhoAmI and Ping.
 *
 * Login looks up the staff account and the workstation in one statement,
 * verifies the password with Argon2id on the thread pool, and binds the
 * session to the workstation's branch. Unknown users are verified against a
 * dummy hash so the answer takes as long as for a real one. Failures are
 * throttled per user name and per peer address, logged, and recorded in
 * login_event.
 */
#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "log.h"
#include "pgtext.h"
#include "util.h"

static const db_stmt_t stmt_login_lookup = {
    "auth_login_lookup",
    "SELECT s.id, s.username, s.display_name, s.role::text, s.password_hash, s.disabled,"
    "       staff_branch_codes(s.id), w.id, w.name, b.id, b.code, b.name,"
    "       EXISTS (SELECT 1 FROM staff_branch sb"
    "               WHERE sb.staff_id = s.id AND sb.branch_id = w.branch_id)"
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

void auth_register_statements(void)
{
    db_stmt_register(&stmt_login_lookup);
    db_stmt_register(&stmt_login_record);
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

typedef struct login_state {
    char user_key[THROTTLE_KEY_MAX];
    char addr_key[THROTTLE_KEY_MAX];
    bool user_exists;
    bool disabled;
    bool assigned;
    int64_t staff_id;
    role_t role;
    char *username, *display_name, *branch_codes, *workstation, *branch_code, *branch_name;
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
    const char *values[5] = {l->username, l->workstation, req->conn->peer,
                             success ? "true" : "false", reason};
    int rc = db_exec_short(req->srv->db, &stmt_login_record, 5, values, NULL, NULL,
                           login_record_done, NULL);
    if (rc != 0)
        log_warn(req->conn->id, "login event not recorded: database unavailable");
}

static void login_end_pending(request_t *req)
{
    req->conn->session.login_pending = false;
}

static void login_failed(request_t *req, const char *reason)
{
    login_state_t *st = req->state;
    server_t *srv = req->srv;
    int64_t now = util_now_ms();
    int n1 = throttle_fail(&srv->throttle_users, st->user_key, now);
    int n2 = throttle_fail(&srv->throttle_addresses, st->addr_key, now);
    if (n1 >= srv->cfg.login_throttle_after || n2 >= srv->cfg.login_throttle_after_address)
        log_warn(req->conn->id,
                 "failed login for %s from %s (%s): %d in a row for the user, %d from the "
                 "address; slowing down",
                 req->msg->login->username, req->conn->peer, reason, n1, n2);
    else
        log_warn(req->conn->id, "failed login for %s from %s (%s)", req->msg->login->username,
                 req->conn->peer, reason);
    login_record(req, false, reason);
    login_end_pending(req);
    request_fail(req, CARREL__STATUS__STATUS_UNAUTHENTICATED, "bad_credentials",
                 "Wrong user name or password.");
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

static void login_verified(int ok, const char *hash, void *arg)
{
    (void)hash;
    request_t *req = arg;
    login_state_t *st = req->state;
    if (ok < 0 && st->user_exists) {
        log_error(req->conn->id, "stored password hash for %s is unusable", st->username);
        login_failed(req, "bad_hash");
        return;
    }
    if (ok != 1 || !st->user_exists) {
        login_failed(req, st->user_exists ? "wrong_password" : "unknown_user");
        return;
    }
    if (st->disabled) {
        login_record(req, false, "disabled");
        login_end_pending(req);
        request_fail(req, CARREL__STATUS__STATUS_UNAUTHENTICATED, "account_disabled",
                     "The account %s is disabled; ask a branch manager or administrator.",
                     st->username);
        return;
    }
    if (perm_role_is_branch_bound(st->role) && !st->assigned) {
        login_record(req, false, "not_assigned");
        login_end_pending(req);
        log_info(req->conn->id, "%s is not assigned to %s", st->username, st->branch_name);
        request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "branch",
                     "%s is not assigned to %s; this workstation belongs to that branch.",
                     st->username, st->branch_name);
        return;
    }
    session_t *s = &req->conn->session;
    /* Events were asked for by whoever was logged in before: not this person. */
    req->conn->subscribed = req->conn->all_branches = false;
    s->authenticated = true;
    s->login_pending = false;
    s->staff_id = st->staff_id;
    s->role = st->role;
    s->branch_id = st->branch_id;
    s->workstation_id = st->workstation_id;
    util_strlcpy(s->username, st->username, sizeof(s->username));
    util_strlcpy(s->display_name, st->display_name, sizeof(s->display_name));
    util_strlcpy(s->branch_code, st->branch_code, sizeof(s->branch_code));
    util_strlcpy(s->branch_name, st->branch_name, sizeof(s->branch_name));
    util_strlcpy(s->workstation, st->workstation, sizeof(s->workstation));
    util_strlcpy(s->branch_codes, st->branch_codes, sizeof(s->branch_codes));
    throttle_success(&req->srv->throttle_users, st->user_key);
    channel_set_max_frame(&req->conn->ch, (size_t)req->srv->cfg.max_frame_bytes);
    login_record(req, true, "ok");
    log_info(req->conn->id, "login: %s (%s) at %s, %s", s->username, role_name(s->role),
             s->workstation, s->branch_code);
    req->resp.body_case = CARREL__RESPONSE__BODY_LOGIN;
    req->resp.login = session_reply(req, s);
    request_ok(req);
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

static void login_looked_up(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    login_state_t *st = req->state;
    Carrel__Login *l = req->msg->login;
    if (r->status != DB_OK) {
        login_end_pending(req);
        request_fail_db(req, r);
        return;
    }
    const PGresult *res = r->res;
    arena_t *a = &req->arena;
    st->user_exists = !db_null(res, 0, 0);
    if (db_null(res, 0, 7)) {
        /* Not a password guess, but guessing workstation names is: count it
         * against the address (not the user, who may simply be misconfigured). */
        throttle_fail(&req->srv->throttle_addresses, st->addr_key, util_now_ms());
        login_record(req, false, "unknown_workstation");
        login_end_pending(req);
        log_warn(req->conn->id, "login from %s at unregistered workstation %s", req->conn->peer,
                 l->workstation);
        request_fail(req, CARREL__STATUS__STATUS_UNAUTHENTICATED, "unknown_workstation",
                     "The workstation %s is not registered; ask an administrator to register "
                     "it.",
                     l->workstation);
        return;
    }
    if (req->conn->cert_cn[0] && strcmp(req->conn->cert_cn, l->workstation) != 0) {
        throttle_fail(&req->srv->throttle_addresses, st->addr_key, util_now_ms());
        login_record(req, false, "certificate_mismatch");
        login_end_pending(req);
        request_fail(req, CARREL__STATUS__STATUS_UNAUTHENTICATED, "certificate_mismatch",
                     "This client certificate belongs to workstation %s, not %s.",
                     req->conn->cert_cn, l->workstation);
        return;
    }
    st->staff_id = db_int64(res, 0, 0);
    st->username = arena_strdup(a, db_text(res, 0, 1));
    st->display_name = arena_strdup(a, db_text(res, 0, 2));
    st->role = role_from_name(db_text(res, 0, 3));
    st->disabled = db_bool(res, 0, 5);
    st->branch_codes = login_codes_csv(a, db_text(res, 0, 6));
    st->workstation_id = db_int64(res, 0, 7);
    st->workstation = arena_strdup(a, db_text(res, 0, 8));
    st->branch_id = db_int32(res, 0, 9);
    st->branch_code = arena_strdup(a, db_text(res, 0, 10));
    st->branch_name = arena_strdup(a, db_text(res, 0, 11));
    st->assigned = db_bool(res, 0, 12);

    const char *hash = st->user_exists ? db_text(res, 0, 4) : req->srv->dummy_hash;
    if (password_verify_async(req->srv->loop, hash, l->password, login_verified, req) != 0) {
        login_end_pending(req);
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                     "Cannot check the password right now.");
    }
}

static bool login_field_ok(const char *s, size_t max)
{
    return s && s[0] && strlen(s) <= max;
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
    if (!login_field_ok(l->workstation, 63) || !login_field_ok(l->username, 32) ||
        !login_field_ok(l->password, 1024)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:login",
                     "Login needs a workstation name, a user name and a password.");
        return;
    }
    login_state_t *st = arena_new(&req->arena, login_state_t, 1);
    req->state = st;
    snprintf(st->user_key, sizeof(st->user_key), "user:%s", l->username);
    /* Throttle by address without the port, which changes per connection. */
    char addr[64];
    util_strlcpy(addr, req->conn->peer, sizeof(addr));
    char *colon = strrchr(addr, ':');
    if (colon)
        *colon = '\0';
    snprintf(st->addr_key, sizeof(st->addr_key), "addr:%s", addr);

    int64_t now = util_now_ms();
    int64_t wait1 = throttle_wait_ms(&req->srv->throttle_users, st->user_key, now);
    int64_t wait2 = throttle_wait_ms(&req->srv->throttle_addresses, st->addr_key, now);
    int64_t wait = wait1 > wait2 ? wait1 : wait2;
    if (wait > 0) {
        log_warn(req->conn->id, "login for %s from %s refused: throttled for %lld ms", l->username,
                 req->conn->peer, (long long)wait);
        login_record(req, false, "throttled");
        request_fail(req, CARREL__STATUS__STATUS_TOO_MANY_REQUESTS, "login_throttled",
                     "Too many failed logins; try again in %lld seconds.",
                     (long long)(wait + 999) / 1000);
        return;
    }
    const char *values[2] = {l->username, l->workstation};
    int rc = db_exec_short(req->srv->db, &stmt_login_lookup, 2, values, NULL, NULL, login_looked_up,
                           req);
    if (rc != 0) {
        request_fail_exec(req, rc);
        return;
    }
    s->login_pending = true;
}

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
    bool hello = s->hello_done;
    memset(s, 0, sizeof(*s));
    /* The next person on this connection asks for events for themselves. */
    req->conn->subscribed = req->conn->all_branches = false;
    s->hello_done = hello;
    req->conn->accepted_at = uv_now(req->srv->loop); /* a fresh login deadline */
    channel_set_max_frame(&req->conn->ch, (size_t)req->srv->cfg.max_frame_bytes_login);
    request_ok(req);
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
