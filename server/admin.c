/*
 * admin: branches, staff accounts and workstations.
 *
 * Branch managers manage clerks and librarians of their own branch and
 * register workstations there; administrators manage everything. The checks
 * are in perm.c; the changes and their audit rows are SQL functions in
 * sql/rules/foundation.sql, so each is one transaction.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs.h"
#include "handlers.h"
#include "log.h"
#include "pgtext.h"
#include "reply.h"
#include "util.h"

enum {
    BRANCH_ID,
    BRANCH_CODE,
    BRANCH_NAME,
    BRANCH_ADDRESS,
    BRANCH_PHONE,
    BRANCH_OPEN_HOURS,
    BRANCH_NCOLS
};
static const reply_stmt_t stmt_branch_list =
    REPLY_STMT("admin_branch_list", BRANCH_NCOLS,
               "SELECT b.id, b.code, b.name, b.address, b.phone,"
               "       coalesce(string_agg(format('%s %s-%s',"
               "           (ARRAY['Mon','Tue','Wed','Thu','Fri','Sat','Sun'])[h.weekday],"
               "           to_char(h.opens, 'HH24:MI'), to_char(h.closes, 'HH24:MI')), '; '"
               "           ORDER BY h.weekday), '')"
               "  FROM branch b LEFT JOIN branch_hours h ON h.branch_id = b.id"
               " GROUP BY b.id ORDER BY b.code");

/* The columns of a staff account, as admin_staff_from_row reads them. */
enum {
    STAFF_ID,
    STAFF_USERNAME,
    STAFF_DISPLAY_NAME,
    STAFF_ROLE,
    STAFF_BRANCH_CODES,
    STAFF_DISABLED,
    STAFF_NCOLS
};
static const reply_stmt_t stmt_staff_add =
    REPLY_STMT("admin_staff_add", STAFF_NCOLS,
               "SELECT id, username, display_name, role::text, branch_codes, disabled"
               "  FROM staff_add($1, $2, $3, $4, $5::staff_role, $6::text[], $7)");

static const reply_stmt_t stmt_staff_list = REPLY_STMT(
    "admin_staff_list", STAFF_NCOLS,
    "SELECT s.id, s.username, s.display_name, s.role::text, staff_branch_codes(s.id), s.disabled"
    "  FROM staff s"
    " WHERE $1::int IS NULL OR EXISTS (SELECT 1 FROM staff_branch sb"
    "                                   WHERE sb.staff_id = s.id AND sb.branch_id = $1)"
    " ORDER BY s.username");

enum { TARGET_ID, TARGET_ROLE, TARGET_BRANCH_IDS, TARGET_PASSWORD_HASH, TARGET_NCOLS };
static const reply_stmt_t stmt_staff_target = REPLY_STMT(
    "admin_staff_target", TARGET_NCOLS,
    "SELECT s.id, s.role::text, array_remove(array_agg(sb.branch_id), NULL), s.password_hash"
    "  FROM staff s LEFT JOIN staff_branch sb ON sb.staff_id = s.id"
    " WHERE s.username = $1 GROUP BY s.id");

static const reply_stmt_t stmt_staff_set_password =
    REPLY_STMT("admin_staff_set_password", 1, "SELECT staff_set_password($1, $2, $3, $4)");

static const reply_stmt_t stmt_staff_set_disabled =
    REPLY_STMT("admin_staff_set_disabled", 1, "SELECT staff_set_disabled($1, $2, $3, $4)");

/* The columns of a workstation, as admin_workstation_from_row reads them. */
enum { WORKSTATION_ID, WORKSTATION_NAME, WORKSTATION_BRANCH_CODE, WORKSTATION_NCOLS };
static const reply_stmt_t stmt_workstation_add =
    REPLY_STMT("admin_workstation_add", WORKSTATION_NCOLS,
               "SELECT id, name, branch_code FROM workstation_add($1, $2, $3, $4)");

/* The list adds each workstation's newest certificate (migration 035): its serial,
 * expiry, whether it is revoked and whether it expires within $2 days. */
enum {
    WORKSTATION_CERT_SERIAL = WORKSTATION_NCOLS,
    WORKSTATION_CERT_NOT_AFTER_MS,
    WORKSTATION_CERT_REVOKED,
    WORKSTATION_CERT_EXPIRING,
    WORKSTATION_LIST_NCOLS
};
static const reply_stmt_t stmt_workstation_list = REPLY_STMT(
    "admin_workstation_list", WORKSTATION_LIST_NCOLS,
    "SELECT w.id, w.name, b.code, c.serial, (extract(epoch FROM c.not_after) * 1000)::bigint,"
    "       c.revoked_at IS NOT NULL, c.not_after < now() + make_interval(days => $2::int)"
    "  FROM workstation w JOIN branch b ON b.id = w.branch_id"
    "  LEFT JOIN LATERAL (SELECT wc.serial, wc.not_after, wc.revoked_at FROM workstation_cert wc"
    "                      WHERE wc.workstation_id = w.id"
    "                      ORDER BY wc.issued_at DESC, wc.id DESC LIMIT 1) c ON true"
    " WHERE $1::int IS NULL OR w.branch_id = $1 ORDER BY b.code, w.name");

/* The workstation a revocation names: its branch decides who may. */
enum { REVOKE_TARGET_ID, REVOKE_TARGET_BRANCH_CODE, REVOKE_TARGET_NCOLS };
static const reply_stmt_t stmt_workstation_target =
    REPLY_STMT("admin_workstation_target", REVOKE_TARGET_NCOLS,
               "SELECT w.id, b.code FROM workstation w JOIN branch b ON b.id = w.branch_id"
               " WHERE w.name = $1");

enum {
    REVOKE_ID,
    REVOKE_NAME,
    REVOKE_BRANCH_CODE,
    REVOKE_SERIALS,
    REVOKE_NOT_AFTER_MS,
    REVOKE_NCOLS
};
static const reply_stmt_t stmt_workstation_revoke =
    REPLY_STMT("admin_workstation_revoke", REVOKE_NCOLS,
               "SELECT id, name, branch_code, serials, not_after_ms"
               "  FROM workstation_revoke($1, $2, $3, $4, $5, $6)");

void admin_register_statements(void)
{
    db_stmt_register(&stmt_branch_list.db);
    db_stmt_register(&stmt_staff_add.db);
    db_stmt_register(&stmt_staff_list.db);
    db_stmt_register(&stmt_staff_target.db);
    db_stmt_register(&stmt_staff_set_password.db);
    db_stmt_register(&stmt_staff_set_disabled.db);
    db_stmt_register(&stmt_workstation_add.db);
    db_stmt_register(&stmt_workstation_list.db);
    db_stmt_register(&stmt_workstation_target.db);
    db_stmt_register(&stmt_workstation_revoke.db);
    certs_register_statements();
}

/* The session's staff id and workstation id as statement parameters. */
static void admin_actor(request_t *req, const char **staff, const char **workstation)
{
    const session_t *s = request_session(req);
    *staff = pgtext_int(&req->arena, s->staff_id);
    *workstation = pgtext_int(&req->arena, s->workstation_id);
}

/* NULL (all branches) for system-wide roles, else the session's branch id. */
static const char *admin_branch_filter(request_t *req)
{
    const session_t *s = request_session(req);
    return perm_role_is_branch_bound(s->role) ? pgtext_int(&req->arena, s->branch_id) : NULL;
}

static bool admin_fail_perm(request_t *req, perm_result_t r, perm_action_t action)
{
    if (r == PERM_OK)
        return false;
    char why[200];
    perm_explain(r, action, request_session(req)->role, why, sizeof(why));
    if (r == PERM_DENIED_ROLE && action == PERM_STAFF_MANAGE &&
        request_session(req)->role == CARREL__ROLE__ROLE_BRANCH_MANAGER)
        snprintf(why, sizeof(why), "A %s may manage only clerks and librarians.",
                 role_label(request_session(req)->role));
    log_info(req->conn->id, "forbidden: %s tried %s", request_session(req)->username,
             req->route->name);
    request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, r == PERM_DENIED_BRANCH ? "branch" : "role",
                 "%s", why);
    return true;
}

/* Branch ids the session knows: its own branch code maps to its id, others to -1. */
static int admin_code_to_branch(request_t *req, const char *code)
{
    const session_t *s = request_session(req);
    return strcmp(code, s->branch_code) == 0 ? s->branch_id : -1;
}

static bool admin_valid_branch_code(const char *code)
{
    size_t n = code ? strlen(code) : 0;
    if (n < 2 || n > 8 || !isupper((unsigned char)code[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isupper((unsigned char)code[i]) && !isdigit((unsigned char)code[i]))
            return false;
    return true;
}

static bool admin_valid_password(request_t *req, const char *password)
{
    size_t n = password ? strlen(password) : 0;
    if (n < 10 || n > 1024) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:password",
                     "A password must be 10 to 1024 characters long.");
        return false;
    }
    return true;
}

static Carrel__Staff *admin_staff_from_row(request_t *req, const PGresult *res, int row)
{
    arena_t *a = &req->arena;
    Carrel__Staff *s = arena_new(a, Carrel__Staff, 1);
    carrel__staff__init(s);
    s->has_id = 1;
    s->id = db_int64(res, row, STAFF_ID);
    s->username = arena_strdup(a, COL(res, row, STAFF_USERNAME));
    s->display_name = arena_strdup(a, COL(res, row, STAFF_DISPLAY_NAME));
    s->has_role = 1;
    s->role = role_from_name(COL(res, row, STAFF_ROLE));
    s->branch_codes = pgtext_array_parse(a, COL(res, row, STAFF_BRANCH_CODES), &s->n_branch_codes);
    s->has_disabled = 1;
    s->disabled = db_bool(res, row, STAFF_DISABLED);
    return s;
}

/* ---- branches ---- */

static void branch_list_done(request_t *req, const PGresult *res)
{
    arena_t *a = &req->arena;
    int n = PQntuples(res);
    Carrel__BranchListReply *reply = arena_new(a, Carrel__BranchListReply, 1);
    carrel__branch_list_reply__init(reply);
    reply->branches = arena_new(a, Carrel__Branch *, n);
    for (int i = 0; i < n; i++) {
        Carrel__Branch *b = arena_new(a, Carrel__Branch, 1);
        carrel__branch__init(b);
        b->has_id = 1;
        b->id = db_int32(res, i, BRANCH_ID);
        b->code = arena_strdup(a, COL(res, i, BRANCH_CODE));
        b->name = arena_strdup(a, COL(res, i, BRANCH_NAME));
        b->address = arena_strdup(a, COL(res, i, BRANCH_ADDRESS));
        b->phone = arena_strdup(a, COL(res, i, BRANCH_PHONE));
        b->open_hours = arena_strdup(a, COL(res, i, BRANCH_OPEN_HOURS));
        reply->branches[reply->n_branches++] = b;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_BRANCHES;
    req->resp.branches = reply;
    request_ok(req);
}

void handle_branch_list(request_t *req)
{
    reply_query(req, &stmt_branch_list, 0, NULL, branch_list_done);
}

/* ---- staff ---- */

static void staff_reply_done(request_t *req, const PGresult *res)
{
    req->resp.body_case = CARREL__RESPONSE__BODY_STAFF;
    req->resp.staff = admin_staff_from_row(req, res, 0);
    log_info(req->conn->id, "%s added staff account %s", request_session(req)->username,
             req->resp.staff->username);
    request_ok(req);
}

/*
 * New passwords are hashed on the thread pool, in the queue logins' checks
 * use. One connection may pipeline dozens of StaffAdd requests, so each may
 * have only ADMIN_HASHES_PER_CONN hashes queued, and password.c bounds all
 * hashes to half the queue: the rest are answered `password_queue` at once
 * and logins always keep their share.
 */
#define ADMIN_HASHES_PER_CONN 2

/* Queue the hash, or answer the request. */
void admin_hash_password(request_t *req, const char *password, password_cb done)
{
    conn_t *c = req->conn;
    int rc = c->hashing >= ADMIN_HASHES_PER_CONN
                 ? PASSWORD_QUEUE_FULL
                 : password_hash_async(&req->srv->passwords, &req->srv->password_params, password,
                                       done, req);
    if (rc == 0)
        c->hashing++;
    else if (rc == PASSWORD_QUEUE_FULL)
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "password_queue",
                     "The server is busy hashing other new passwords (at most %d at once per "
                     "connection, %d in all); try again in a few seconds.",
                     ADMIN_HASHES_PER_CONN, req->srv->passwords.max_hash);
    else
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                     "Cannot hash the password right now.");
}

static void staff_add_hashed(int ok, const char *hash, void *arg)
{
    request_t *req = arg;
    req->conn->hashing--;
    if (ok != 1) {
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                     "Cannot hash the password; see the server log.");
        return;
    }
    Carrel__StaffAdd *m = req->msg->staff_add;
    const char *actor, *ws;
    admin_actor(req, &actor, &ws);
    const char *values[7] = {
        actor,
        ws,
        m->username,
        m->display_name,
        role_name(m->role),
        pgtext_array_build(&req->arena, m->branch_codes, m->n_branch_codes),
        hash,
    };
    reply_query(req, &stmt_staff_add, 7, values, staff_reply_done);
}

static bool staff_valid_username(const char *u)
{
    size_t n = u ? strlen(u) : 0;
    if (n < 2 || n > 32 || !islower((unsigned char)u[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!islower((unsigned char)u[i]) && !isdigit((unsigned char)u[i]) && !strchr("._-", u[i]))
            return false;
    return true;
}

void handle_staff_add(request_t *req)
{
    Carrel__StaffAdd *m = req->msg->staff_add;
    if (!staff_valid_username(m->username)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:username",
                     "A user name is 2-32 characters: lower-case letters, digits, '.', '_' or "
                     "'-', starting with a letter.");
        return;
    }
    if (m->display_name == NULL || m->display_name[0] == '\0' || strlen(m->display_name) > 100) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:display_name",
                     "A display name of 1-100 characters is required.");
        return;
    }
    if (!m->has_role || role_from_name(role_name(m->role)) == CARREL__ROLE__ROLE_UNSPECIFIED) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:role",
                     "A role is required: clerk, librarian, branch_manager, coordinator or "
                     "admin.");
        return;
    }
    if (m->n_branch_codes == 0 || m->n_branch_codes > 16) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:branch",
                     "A staff account needs one to sixteen branches.");
        return;
    }
    int *branches = arena_new(&req->arena, int, m->n_branch_codes);
    for (size_t i = 0; i < m->n_branch_codes; i++) {
        if (!admin_valid_branch_code(m->branch_codes[i])) {
            request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:branch",
                         "'%s' is not a branch code.", m->branch_codes[i]);
            return;
        }
        branches[i] = admin_code_to_branch(req, m->branch_codes[i]);
    }
    if (!admin_valid_password(req, m->password))
        return;
    perm_subject_t who = request_subject(req);
    if (admin_fail_perm(req, perm_check_staff_target(&who, m->role, branches, m->n_branch_codes),
                        PERM_STAFF_MANAGE))
        return;
    admin_hash_password(req, m->password, staff_add_hashed);
}

static void staff_list_done(request_t *req, const PGresult *res)
{
    int n = PQntuples(res);
    Carrel__StaffListReply *reply = arena_new(&req->arena, Carrel__StaffListReply, 1);
    carrel__staff_list_reply__init(reply);
    reply->staff = arena_new(&req->arena, Carrel__Staff *, n);
    for (int i = 0; i < n; i++)
        reply->staff[reply->n_staff++] = admin_staff_from_row(req, res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_STAFF_LIST;
    req->resp.staff_list = reply;
    request_ok(req);
}

void handle_staff_list(request_t *req)
{
    const char *values[1] = {admin_branch_filter(req)};
    reply_query(req, &stmt_staff_list, 1, values, staff_list_done);
}

/*
 * Password and disable changes first read the target's role and branches so
 * perm.c can decide; then they run the change. Changing one's own password
 * needs the current one, checked with Argon2 (and throttled like a login), so
 * that a desk left logged in is not enough to take over the account. Once a
 * change is made, the account's other sessions end (server_end_sessions) and
 * its session tokens are revoked (a trigger in sql/rules/foundation.sql).
 */
typedef struct staff_change {
    const char *username;
    bool set_password;
    const char *password;
    const char *current_password;
    bool disabled;
    bool self;
    int64_t staff_id;
    char user_key[THROTTLE_KEY_MAX];
} staff_change_t;

static void staff_change_done(request_t *req, const PGresult *res)
{
    (void)res;
    staff_change_t *ch = req->state;
    log_info(req->conn->id, "%s %s for %s", request_session(req)->username,
             ch->set_password ? "set the password"
             : ch->disabled   ? "disabled the account"
                              : "enabled the account",
             ch->username);
    /* A new password ends the other sessions; the one that set its own stays. */
    if (ch->set_password)
        server_end_sessions(req->srv, ch->staff_id, req->conn, "password changed");
    else if (ch->disabled)
        server_end_sessions(req->srv, ch->staff_id, NULL, "account disabled");
    request_ok(req);
}

static void staff_password_hashed(int ok, const char *hash, void *arg)
{
    request_t *req = arg;
    req->conn->hashing--;
    if (ok != 1) {
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                     "Cannot hash the password; see the server log.");
        return;
    }
    staff_change_t *ch = req->state;
    const char *actor, *ws;
    admin_actor(req, &actor, &ws);
    const char *values[4] = {actor, ws, ch->username, hash};
    reply_query(req, &stmt_staff_set_password, 4, values, staff_change_done);
}

static void staff_password_hash_new(request_t *req)
{
    staff_change_t *ch = req->state;
    admin_hash_password(req, ch->password, staff_password_hashed);
}

static void staff_current_verified(int ok, const char *hash, void *arg)
{
    (void)hash;
    request_t *req = arg;
    staff_change_t *ch = req->state;
    if (ok != PASSWORD_MATCH) { /* the failure counted ahead stays */
        int n = throttle_failures(&req->srv->throttle_users, ch->user_key, util_now_ms());
        log_warn(req->conn->id, "%s gave a wrong current password to change it (%d in a row)",
                 ch->username, n);
        request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "current_password",
                     "The current password is not right; the password was not changed.");
        return;
    }
    throttle_unfail(&req->srv->throttle_users, ch->user_key); /* it was no guess */
    staff_password_hash_new(req);
}

/*
 * One's own password: check the current one first. As for a login, the
 * attempt is counted as a failure of the user name before the check and
 * taken back if the password is right, so that changes sent at once (a
 * connection may pipeline 64 requests) cannot all reach the check.
 */
static void staff_password_check_current(request_t *req, const char *stored_hash)
{
    staff_change_t *ch = req->state;
    if (ch->current_password == NULL || ch->current_password[0] == '\0') {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:current_password",
                     "To change your own password, give the current one too.");
        return;
    }
    snprintf(ch->user_key, sizeof(ch->user_key), "user:%s", ch->username);
    int64_t wait = throttle_wait_ms(&req->srv->throttle_users, ch->user_key, util_now_ms());
    if (wait > 0) {
        request_fail(req, CARREL__STATUS__STATUS_TOO_MANY_REQUESTS, "login_throttled",
                     "Too many wrong passwords; try again in %lld seconds.",
                     (long long)(wait + 999) / 1000);
        return;
    }
    if (throttle_fail(&req->srv->throttle_users, ch->user_key, util_now_ms()) == 0) {
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "overloaded",
                     "The server is busy checking other passwords; try again in a few seconds.");
        return;
    }
    int rc = password_verify_async(&req->srv->passwords, stored_hash, ch->current_password,
                                   staff_current_verified, req, NULL);
    if (rc != 0) /* nothing was checked */
        throttle_unfail(&req->srv->throttle_users, ch->user_key);
    if (rc == PASSWORD_QUEUE_FULL)
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "password_queue",
                     "The server is busy checking passwords; try again in a few seconds.");
    else if (rc != 0)
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                     "Cannot check the password right now.");
}

static void staff_target_loaded(request_t *req, const PGresult *res)
{
    staff_change_t *ch = req->state;
    if (PQntuples(res) == 0) {
        request_fail(req, CARREL__STATUS__STATUS_NOT_FOUND, "staff",
                     "There is no staff account %s.", ch->username);
        return;
    }
    const session_t *s = request_session(req);
    ch->staff_id = db_int64(res, 0, TARGET_ID);
    ch->self = ch->staff_id == s->staff_id;
    if (ch->self && !ch->set_password) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "self",
                     "You cannot disable your own account.");
        return;
    }
    if (!ch->self) {
        size_t n = 0;
        char **ids = pgtext_array_parse(&req->arena, COL(res, 0, TARGET_BRANCH_IDS), &n);
        int *branches = arena_new(&req->arena, int, n + 1);
        for (size_t i = 0; i < n; i++)
            branches[i] = ids[i] ? atoi(ids[i]) : -1;
        perm_subject_t who = request_subject(req);
        role_t target = role_from_name(COL(res, 0, TARGET_ROLE));
        if (admin_fail_perm(req, perm_check_staff_target(&who, target, branches, n),
                            PERM_STAFF_MANAGE))
            return;
    }
    if (ch->set_password && ch->self) {
        staff_password_check_current(req, COL(res, 0, TARGET_PASSWORD_HASH));
        return;
    }
    if (ch->set_password) {
        staff_password_hash_new(req);
        return;
    }
    const char *actor, *ws;
    admin_actor(req, &actor, &ws);
    const char *values[4] = {actor, ws, ch->username, ch->disabled ? "true" : "false"};
    reply_query(req, &stmt_staff_set_disabled, 4, values, staff_change_done);
}

static void staff_change_start(request_t *req, staff_change_t *ch)
{
    if (ch->username == NULL || ch->username[0] == '\0') {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:username",
                     "Name the staff account.");
        return;
    }
    req->state = ch;
    const char *values[1] = {ch->username};
    reply_query(req, &stmt_staff_target, 1, values, staff_target_loaded);
}

void handle_staff_set_password(request_t *req)
{
    Carrel__StaffSetPassword *m = req->msg->staff_set_password;
    if (!admin_valid_password(req, m->password))
        return;
    staff_change_t *ch = arena_new(&req->arena, staff_change_t, 1);
    ch->username = m->username;
    ch->set_password = true;
    ch->password = m->password;
    ch->current_password = m->current_password;
    staff_change_start(req, ch);
}

void handle_staff_set_disabled(request_t *req)
{
    Carrel__StaffSetDisabled *m = req->msg->staff_set_disabled;
    staff_change_t *ch = arena_new(&req->arena, staff_change_t, 1);
    ch->username = m->username;
    ch->disabled = m->has_disabled ? m->disabled : true;
    staff_change_start(req, ch);
}

/* ---- workstations ---- */

static Carrel__Workstation *admin_workstation_from_row(request_t *req, const PGresult *res, int row)
{
    arena_t *a = &req->arena;
    Carrel__Workstation *w = arena_new(a, Carrel__Workstation, 1);
    carrel__workstation__init(w);
    w->has_id = 1;
    w->id = db_int64(res, row, WORKSTATION_ID);
    w->name = arena_strdup(a, COL(res, row, WORKSTATION_NAME));
    w->branch_code = arena_strdup(a, COL(res, row, WORKSTATION_BRANCH_CODE));
    /* The list's certificate columns; none when it has no certificate on record. */
    if (PQnfields(res) >= WORKSTATION_LIST_NCOLS && !db_null(res, row, WORKSTATION_CERT_SERIAL)) {
        w->cert_serial = arena_strdup(a, COL(res, row, WORKSTATION_CERT_SERIAL));
        w->has_cert_not_after_ms = 1;
        w->cert_not_after_ms = db_int64(res, row, WORKSTATION_CERT_NOT_AFTER_MS);
        w->has_cert_revoked = 1;
        w->cert_revoked = db_bool(res, row, WORKSTATION_CERT_REVOKED);
        w->has_cert_expiring = 1;
        w->cert_expiring = db_bool(res, row, WORKSTATION_CERT_EXPIRING);
    }
    return w;
}

static void workstation_add_done(request_t *req, const PGresult *res)
{
    req->resp.body_case = CARREL__RESPONSE__BODY_WORKSTATION;
    req->resp.workstation = admin_workstation_from_row(req, res, 0);
    log_info(req->conn->id, "%s registered workstation %s at %s", request_session(req)->username,
             req->resp.workstation->name, req->resp.workstation->branch_code);
    request_ok(req);
}

void handle_workstation_add(request_t *req)
{
    Carrel__WorkstationAdd *m = req->msg->workstation_add;
    if (m->name == NULL || strlen(m->name) < 2 || strlen(m->name) > 63) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:name",
                     "A workstation name of 2-63 characters is required.");
        return;
    }
    if (!admin_valid_branch_code(m->branch_code)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:branch",
                     "A branch code is required.");
        return;
    }
    perm_subject_t who = request_subject(req);
    int target = admin_code_to_branch(req, m->branch_code);
    if (admin_fail_perm(req, perm_check(&who, PERM_WORKSTATION_MANAGE, target),
                        PERM_WORKSTATION_MANAGE))
        return;
    const char *actor, *ws;
    admin_actor(req, &actor, &ws);
    const char *values[4] = {actor, ws, m->name, m->branch_code};
    reply_query(req, &stmt_workstation_add, 4, values, workstation_add_done);
}

static void workstation_list_done(request_t *req, const PGresult *res)
{
    int n = PQntuples(res);
    Carrel__WorkstationListReply *reply = arena_new(&req->arena, Carrel__WorkstationListReply, 1);
    carrel__workstation_list_reply__init(reply);
    reply->workstations = arena_new(&req->arena, Carrel__Workstation *, n);
    for (int i = 0; i < n; i++)
        reply->workstations[reply->n_workstations++] = admin_workstation_from_row(req, res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_WORKSTATIONS;
    req->resp.workstations = reply;
    request_ok(req);
}

void handle_workstation_list(request_t *req)
{
    const char *values[2] = {admin_branch_filter(req),
                             pgtext_int(&req->arena, req->srv->cfg.cert_warn_days)};
    reply_query(req, &stmt_workstation_list, 2, values, workstation_list_done);
}

/*
 * WorkstationRevoke: every certificate of the workstation not revoked yet
 * (a stolen laptop). Once the change is committed this daemon adds the
 * serials to its revoked set, answers, and closes the connections that use
 * them: at once, except the caller's own (a manager revoking the desk they
 * sit at), which gets the answer first. Other daemons follow within
 * revocation_poll_s (certs.c).
 */
static void workstation_revoke_done(request_t *req, const PGresult *res)
{
    arena_t *a = &req->arena;
    server_t *srv = req->srv;
    const conn_t *self = req->conn;
    size_t n = 0;
    char **serials = pgtext_array_parse(a, COL(res, 0, REVOKE_SERIALS), &n);
    bool added = true;
    for (size_t i = 0; i < n; i++)
        if (serials[i] && certs_revoked_add(srv, serials[i]) != 0)
            added = false;
    if (!added) /* the next poll reads them from the database */
        log_error(req->conn->id, "out of memory adding revoked serials; the next poll adds them");
    Carrel__Workstation *w = arena_new(a, Carrel__Workstation, 1);
    carrel__workstation__init(w);
    w->has_id = 1;
    w->id = db_int64(res, 0, REVOKE_ID);
    w->name = arena_strdup(a, COL(res, 0, REVOKE_NAME));
    w->branch_code = arena_strdup(a, COL(res, 0, REVOKE_BRANCH_CODE));
    w->cert_serial = n > 0 && serials[0] ? serials[0] : NULL;
    w->has_cert_not_after_ms = 1;
    w->cert_not_after_ms = db_int64(res, 0, REVOKE_NOT_AFTER_MS);
    w->has_cert_revoked = 1;
    w->cert_revoked = true;
    log_info(req->conn->id, "%s revoked %zu certificate(s) of workstation %s: %s",
             request_session(req)->username, n, w->name, req->msg->workstation_revoke->reason);
    req->resp.body_case = CARREL__RESPONSE__BODY_WORKSTATION;
    req->resp.workstation = w;
    /* Without mandatory client certificates a desk may come back without one;
     * Login refuses that for a workstation with certificates on record (auth.c),
     * but IT should know the handshake does not. */
    const struct server_config *cfg = &srv->cfg;
    if (cfg->tls_client_ca == NULL || *cfg->tls_client_ca == '\0' ||
        !cfg->tls_require_client_cert) {
        log_warn(req->conn->id,
                 "workstation %s revoked, but this daemon does not require client "
                 "certificates (tls_client_ca, tls_require_client_cert): only Login refuses it",
                 w->name);
        req->resp.message = "Revoked; this server does not require client certificates, so the "
                            "desk is refused at login rather than at the connection.";
    }
    request_ok(req);
    int closed = certs_close_revoked(srv, self); /* self: compared, never read */
    if (closed > 0)
        log_info(0, "closed %d connection(s) using the revoked certificate(s)", closed);
}

static void workstation_revoke_target(request_t *req, const PGresult *res)
{
    Carrel__WorkstationRevoke *m = req->msg->workstation_revoke;
    if (PQntuples(res) == 0) {
        request_fail(req, CARREL__STATUS__STATUS_NOT_FOUND, "workstation",
                     "There is no workstation %s.", m->name);
        return;
    }
    perm_subject_t who = request_subject(req);
    int target = admin_code_to_branch(req, COL(res, 0, REVOKE_TARGET_BRANCH_CODE));
    if (admin_fail_perm(req, perm_check(&who, PERM_WORKSTATION_MANAGE, target),
                        PERM_WORKSTATION_MANAGE))
        return;
    const char *actor, *ws;
    admin_actor(req, &actor, &ws);
    /* The id and branch read here are checked again where the revocation is made. */
    const char *values[6] = {actor,
                             ws,
                             arena_strdup(&req->arena, COL(res, 0, REVOKE_TARGET_ID)),
                             arena_strdup(&req->arena, COL(res, 0, REVOKE_TARGET_BRANCH_CODE)),
                             m->name,
                             m->reason};
    reply_query(req, &stmt_workstation_revoke, 6, values, workstation_revoke_done);
}

void handle_workstation_revoke(request_t *req)
{
    Carrel__WorkstationRevoke *m = req->msg->workstation_revoke;
    if (m->name == NULL || strlen(m->name) < 2 || strlen(m->name) > 63) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:name",
                     "Name the workstation (2-63 characters).");
        return;
    }
    if (m->reason == NULL || m->reason[0] == '\0') {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:reason",
                     "Say why the certificates are revoked (--reason): it is kept in the audit.");
        return;
    }
    if (REQUEST_TEXTS(req, {m->name, 63, "name"}, {m->reason, 500, "reason"}))
        return;
    const char *values[1] = {m->name};
    reply_query(req, &stmt_workstation_target, 1, values, workstation_revoke_target);
}
