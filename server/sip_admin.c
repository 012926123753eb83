/*
 * sip_admin: SipLoginSave, SipLoginList and SipLoginRemove, the
 * administrator's view of the SIP2 logins (docs/SIP2.md). The rows and their
 * admin_audit entries are written by sql/rules/sip_login.sql, one
 * transaction each; the route's PERM_SIP_LOGINS (administrators) is checked
 * before the handlers run.
 */
#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "log.h"
#include "pgtext.h"
#include "reply.h"
#include "sip.h"

/* The columns of sip_login_list() and sip_login_save(). */
enum {
    SL_USERNAME,
    SL_WORKSTATION,
    SL_BRANCH_CODE,
    SL_INSTITUTION,
    SL_ALWAYS_CT,
    SL_CV_00,
    SL_HIDE,
    SL_HELD_BLOCKED,
    SL_PIN_REQUIRED,
    SL_DISABLED,
    SL_LAST_LOGIN,
    SL_VERSION,
    SL_NCOLS
};
#define SL_COLUMNS                                                                                 \
    "username, workstation, branch_code, institution, always_send_ct, cv_00_on_success,"           \
    " hide_fields, held_checkin_blocked, pin_required, disabled,"                                  \
    " to_char(last_login_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), version"

static const reply_stmt_t stmt_sip_login_save = REPLY_STMT(
    "sip_admin_save", SL_NCOLS,
    "SELECT " SL_COLUMNS " FROM sip_login_save($1, $2, $3, $4, $5, $6::boolean, $7::boolean, $8,"
    " $9::boolean, $10::boolean, $11::int)");
static const reply_stmt_t stmt_sip_login_list =
    REPLY_STMT("sip_admin_list", SL_NCOLS, "SELECT " SL_COLUMNS " FROM sip_login_list()");
static const reply_stmt_t stmt_sip_login_remove =
    REPLY_STMT("sip_admin_remove", 1, "SELECT sip_login_remove($1, $2, $3)");

void sip_admin_register_statements(void)
{
    db_stmt_register(&stmt_sip_login_save.db);
    db_stmt_register(&stmt_sip_login_list.db);
    db_stmt_register(&stmt_sip_login_remove.db);
}

static Carrel__SipLogin *sip_login_from_row(request_t *req, const PGresult *res, int row)
{
    Carrel__SipLogin *l = arena_new(&req->arena, Carrel__SipLogin, 1);
    carrel__sip_login__init(l);
    l->username = reply_text(req, res, row, SL_USERNAME);
    l->workstation = reply_text(req, res, row, SL_WORKSTATION);
    l->branch_code = reply_text(req, res, row, SL_BRANCH_CODE);
    l->institution = reply_text_opt(req, res, row, SL_INSTITUTION);
    reply_bool_opt(res, row, SL_ALWAYS_CT, &l->has_always_send_ct, &l->always_send_ct);
    reply_bool_opt(res, row, SL_CV_00, &l->has_cv_00_on_success, &l->cv_00_on_success);
    l->hide_fields = reply_text(req, res, row, SL_HIDE);
    reply_bool_opt(res, row, SL_HELD_BLOCKED, &l->has_held_checkin_blocked,
                   &l->held_checkin_blocked);
    reply_bool_opt(res, row, SL_PIN_REQUIRED, &l->has_pin_required, &l->pin_required);
    reply_bool_opt(res, row, SL_DISABLED, &l->has_disabled, &l->disabled);
    l->last_login_at = reply_text_opt(req, res, row, SL_LAST_LOGIN);
    reply_int32_opt(res, row, SL_VERSION, &l->has_version, &l->version);
    return l;
}

/* "AV,BK": two-character field ids, comma-separated (the column's CHECK, said earlier). */
static bool sip_hide_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return true;
    if (n >= 128 || (n + 1) % 3 != 0)
        return false;
    for (size_t i = 0; i < n; i += 3) {
        if (s[i] < 'A' || s[i] > 'Z')
            return false;
        char c = s[i + 1];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
        if (i + 2 < n && s[i + 2] != ',')
            return false;
    }
    return true;
}

static const char *sip_bool_param(protobuf_c_boolean has, protobuf_c_boolean v)
{
    return has ? (v ? "true" : "false") : NULL;
}

static void sip_login_saved(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                     "The SIP2 login was saved but could not be read back.");
        return;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_SIP_LOGIN;
    req->resp.sip_login = sip_login_from_row(req, res, 0);
    log_info(req->conn->id, "%s saved the SIP2 login %s (workstation %s)",
             request_session(req)->username, req->resp.sip_login->username,
             req->resp.sip_login->workstation);
    /* A kiosk's options are copied at its 93: it logs in again to see these. */
    sip_end_sessions_named(req->srv, req->resp.sip_login->username, "SIP2 login changed");
    request_ok(req);
}

void handle_sip_login_save(request_t *req)
{
    Carrel__SipLogin *l = req->msg->sip_login_save->login;
    if (request_bad_field(req, l == NULL || l->username == NULL || !l->username[0], "username",
                          "A SIP2 login names its staff account (username)."))
        return;
    if (REQUEST_TEXTS(req, {l->username, 32, "username"}, {l->workstation, 63, "workstation"},
                      {l->institution, 63, "institution"}, {l->hide_fields, 127, "hide_fields"}))
        return;
    if (request_bad_field(req, l->hide_fields && !sip_hide_ok(l->hide_fields), "hide_fields",
                          "hide_fields is a list of two-character field ids, e.g. AV,BK."))
        return;
    const char *actor, *ws;
    reply_actor(req, &actor, &ws);
    const char *values[11] = {
        actor,
        ws,
        l->username,
        reply_opt(l->workstation),
        l->institution, /* "" clears it (the branch code is sent) */
        sip_bool_param(l->has_always_send_ct, l->always_send_ct),
        sip_bool_param(l->has_cv_00_on_success, l->cv_00_on_success),
        l->hide_fields,
        sip_bool_param(l->has_held_checkin_blocked, l->held_checkin_blocked),
        sip_bool_param(l->has_pin_required, l->pin_required),
        l->has_version ? pgtext_int(&req->arena, l->version) : NULL,
    };
    reply_query(req, &stmt_sip_login_save, 11, values, sip_login_saved);
}

static void sip_login_listed(request_t *req, const PGresult *res)
{
    int n = PQntuples(res);
    Carrel__SipLoginListReply *reply = arena_new(&req->arena, Carrel__SipLoginListReply, 1);
    carrel__sip_login_list_reply__init(reply);
    reply->logins = REQUEST_LIST(req, Carrel__SipLogin, n);
    for (int i = 0; i < n; i++)
        reply->logins[reply->n_logins++] = sip_login_from_row(req, res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_SIP_LOGINS;
    req->resp.sip_logins = reply;
    request_ok(req);
}

void handle_sip_login_list(request_t *req)
{
    reply_query(req, &stmt_sip_login_list, 0, NULL, sip_login_listed);
}

static void sip_login_removed(request_t *req, const PGresult *res)
{
    Carrel__SipLoginRemoveReply *reply = arena_new(&req->arena, Carrel__SipLoginRemoveReply, 1);
    carrel__sip_login_remove_reply__init(reply);
    reply->username = reply_text(req, res, 0, 0);
    log_info(req->conn->id, "%s removed the SIP2 login %s", request_session(req)->username,
             reply->username);
    sip_end_sessions_named(req->srv, reply->username, "SIP2 login removed");
    req->resp.body_case = CARREL__RESPONSE__BODY_SIP_LOGIN_REMOVED;
    req->resp.sip_login_removed = reply;
    request_ok(req);
}

void handle_sip_login_remove(request_t *req)
{
    Carrel__SipLoginRemove *m = req->msg->sip_login_remove;
    if (request_bad_field(req, m->username == NULL || !m->username[0], "username",
                          "Name the SIP2 login to remove (username)."))
        return;
    if (REQUEST_TEXTS(req, {m->username, 32, "username"}))
        return;
    const char *actor, *ws;
    reply_actor(req, &actor, &ws);
    const char *values[3] = {actor, ws, m->username};
    reply_query(req, &stmt_sip_login_remove, 3, values, sip_login_removed);
}
