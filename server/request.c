#include "request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "admission.h"
#include "check.h"
#include "log.h"
#include "metrics.h"
#include "reason.h"
#include "status.h"
#include "text.h"
#include "util.h"
#include "wirecheck.h"

/* Wipe secrets carried by a request before its memory is released. */
static void request_wipe_secrets(request_t *req)
{
    Carrel__Request *m = req->msg;
    if (m == NULL)
        return;
    const char *secret = NULL, *secret2 = NULL;
    if (m->body_case == CARREL__REQUEST__BODY_LOGIN && m->login) {
        secret = m->login->password;
        secret2 = m->login->session_token;
    } else if (m->body_case == CARREL__REQUEST__BODY_STAFF_ADD && m->staff_add) {
        secret = m->staff_add->password;
    } else if (m->body_case == CARREL__REQUEST__BODY_STAFF_SET_PASSWORD && m->staff_set_password) {
        secret = m->staff_set_password->password;
        secret2 = m->staff_set_password->current_password;
    } else if (m->body_case == CARREL__REQUEST__BODY_PATRON_PIN_SET && m->patron_pin_set) {
        secret = m->patron_pin_set->pin;
    }
    if (secret)
        OPENSSL_cleanse((void *)secret, strlen(secret));
    if (secret2)
        OPENSSL_cleanse((void *)secret2, strlen(secret2));
}

/* Send the response (unless the connection is gone) and release the request. */
static void request_end(request_t *req)
{
    CHECK(req->live == REQUEST_LIVE); /* a request ends exactly once */
    req->live = REQUEST_ENDED;
    conn_t *c = req->conn;
    (void)conn_send(c, req->id, &req->resp); /* a closing connection drops it */
    uint64_t elapsed_ns = util_mono_ns() - req->started_ns;
    metrics_request_done(req->route, (int)req->resp.status, elapsed_ns);
    uint64_t us = elapsed_ns / 1000;
    log_debug(c->id, "%s id=%llu -> %s (%llu us)", req->route ? req->route->name : "?",
              (unsigned long long)req->id, status_name(req->resp.status), (unsigned long long)us);
    CHECK(c->inflight > 0);
    c->inflight--;
    if (c->srv->draining && c->inflight == 0 && !c->closed)
        conn_close_after_flush(c, "server shutting down");
    request_wipe_secrets(req);
    arena_free(&req->arena);
    free(req);
    conn_unref(c);
}

void request_ok(request_t *req)
{
    req->resp.status = CARREL__STATUS__STATUS_OK;
    request_end(req);
}

static void request_vfail(request_t *req, Carrel__Status status, const char *reason, bool keep_body,
                          const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* Messages quote names and database errors; a long one may be cut in the
     * middle of a character. Whatever happened, what we send is clean UTF-8. */
    text_sanitize(msg, true);
    /* A failure carries no body unless asked: not whatever a handler had started. */
    if (!keep_body)
        req->resp.body_case = CARREL__RESPONSE__BODY__NOT_SET;
    req->resp.status = status;
    req->resp.message = arena_strdup(&req->arena, msg);
    req->resp.reason = reason ? arena_strdup(&req->arena, reason) : NULL;
    if (req->resp.reason)
        text_sanitize(req->resp.reason, false); /* from SQL's DETAIL, usually */
    /* test_reason checks the names written in C and SQL; this, the ones made
     * as the program runs. The answer goes out as it is: a client may know it. */
    if (req->resp.reason && reason_from_name(req->resp.reason) == REASON_NONE)
        log_warn(req->conn->id, "%s: reason %s is not in common/reason.h",
                 req->route ? req->route->name : "?", req->resp.reason);
    request_end(req);
}

void request_fail(request_t *req, Carrel__Status status, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    request_vfail(req, status, reason, false, fmt, ap);
    va_end(ap);
}

void request_fail_body(request_t *req, Carrel__Status status, const char *reason, const char *fmt,
                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    request_vfail(req, status, reason, true, fmt, ap);
    va_end(ap);
}

/* Fail and close the connection once the answer is out: the stream can't be trusted. */
static void request_fail_fatal(request_t *req, Carrel__Status status, const char *reason,
                               const char *message)
{
    conn_t *c = req->conn;
    log_warn(c->id, "%s: %s Closing.", c->peer, message);
    request_fail(req, status, reason, "%s", message);
    conn_close_after_flush(c, reason);
}

void request_fail_reason(request_t *req, reason_t reason)
{
    request_fail(req, (Carrel__Status)reason_status(reason), reason_name(reason), "%s",
                 reason_sentence(reason));
}

void request_fail_exec(request_t *req, int exec_rc)
{
    switch (exec_rc) {
    case DB_EXEC_OVERLOADED:
        request_fail_reason(req, REASON_OVERLOADED);
        break;
    case DB_EXEC_CLOSING:
        request_fail_reason(req, REASON_SHUTTING_DOWN);
        break;
    default:
        request_fail_reason(req, REASON_DATABASE);
        break;
    }
}

static bool sqlstate_is(const char *s, const char *code)
{
    return s && strcmp(s, code) == 0;
}

/*
 * The status of a refusal SQL raised: the reason's, from the table. The
 * SQLSTATE's (CR400 ... CR422) counts only for a reason whose status varies
 * (not_on_loan), and for a reason missing from the table (request_vfail logs
 * it): tests/unit/test_reason.c keeps both in step, so that is a last resort.
 */
static Carrel__Status request_refusal_status(const char *detail, Carrel__Status by_sqlstate)
{
    reason_t reason = reason_from_name(detail);
    if (reason == REASON_NONE || (reason_flags(reason) & REASON_STATUS_VARIES))
        return by_sqlstate;
    return (Carrel__Status)reason_status(reason);
}

void request_fail_db(request_t *req, const db_result_t *r)
{
    if (r->status == DB_UNAVAILABLE && r->queue_timeout) {
        request_fail_reason(req, REASON_OVERLOADED);
        return;
    }
    if (r->status == DB_UNAVAILABLE) {
        request_fail_reason(req, REASON_DATABASE);
        return;
    }
    const char *s = r->sqlstate;
    const char *msg = r->message ? r->message : "database error";
    const char *detail = r->detail;
    static const struct {
        const char *code;
        Carrel__Status status;
    } ours[] = {
        {"CR400", CARREL__STATUS__STATUS_BAD_REQUEST}, {"CR403", CARREL__STATUS__STATUS_FORBIDDEN},
        {"CR404", CARREL__STATUS__STATUS_NOT_FOUND},   {"CR409", CARREL__STATUS__STATUS_CONFLICT},
        {"CR422", CARREL__STATUS__STATUS_REFUSED},
    };
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        if (sqlstate_is(s, ours[i].code)) {
            if (r->hint && strcmp(r->hint, "overridable") == 0) {
                req->resp.has_overridable = 1;
                req->resp.overridable = 1;
            }
            request_fail(req, request_refusal_status(detail, ours[i].status), detail, "%s", msg);
            return;
        }
    }
    conn_t *c = req->conn;
    /* A lock or statement timeout rolled the statement back: nothing was
     * done, so a retry with the same request key is safe. db.c has logged it. */
    if (sqlstate_is(s, "55P03")) {
        request_fail_reason(req, REASON_BUSY);
    } else if (sqlstate_is(s, "57014")) {
        request_fail(req, (Carrel__Status)reason_status(REASON_BUSY), reason_name(REASON_BUSY),
                     "The database took too long to answer; try again.");
    } else if (s && (!strncmp(s, "08", 2) || !strncmp(s, "57", 2))) {
        request_fail_reason(req, REASON_DATABASE);
    } else if (sqlstate_is(s, "40001") || sqlstate_is(s, "40P01")) {
        request_fail_reason(req, REASON_CONTENTION);
    } else if (sqlstate_is(s, "23505")) {
        log_info(c->id, "%s: unique violation: %s", req->route->name, msg);
        request_fail_reason(req, REASON_DUPLICATE);
    } else if (s && !strncmp(s, "23", 2)) {
        log_info(c->id, "%s: constraint: %s", req->route->name, msg);
        request_fail(req, (Carrel__Status)reason_status(REASON_CONSTRAINT),
                     reason_name(REASON_CONSTRAINT), "A value was not accepted: %s.", msg);
    } else if (s && !strncmp(s, "22", 2)) {
        request_fail(req, (Carrel__Status)reason_status(REASON_INVALID_VALUE),
                     reason_name(REASON_INVALID_VALUE), "A value was not accepted: %s.", msg);
    } else {
        /* db.c logged the statement, SQLSTATE and message (rate-limited). */
        log_error(c->id, "%s failed: %s", req->route ? req->route->name : "?", s ? s : "?");
        request_fail_reason(req, REASON_INTERNAL);
    }
}

bool request_limit(request_t *req, bool has, int64_t value, int def, int max, const char *reason,
                   int *out)
{
    if (!has) {
        *out = def;
        return true;
    }
    if (value >= 1 && value <= max) {
        *out = (int)value;
        return true;
    }
    request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, reason,
                 "Ask for 1 to %d at a time (leave it out for %d), not %lld.", max, def,
                 (long long)value);
    return false;
}

bool request_fail_text(request_t *req, const char *s, size_t max, const char *field)
{
    if (s == NULL)
        return false;
    size_t n = strlen(s);
    bool bad = n > max;
    for (size_t i = 0; i < n && !bad; i++)
        bad = (unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t';
    if (!bad)
        return false;
    request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST,
                 arena_printf(&req->arena, "field:%s", field),
                 "%s must be at most %zu characters of text.", field, max);
    return true;
}

bool request_bad_field(request_t *req, bool bad, const char *field, const char *why)
{
    if (!bad)
        return false;
    request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST,
                 arena_printf(&req->arena, "field:%s", field), "%s", why);
    return true;
}

bool request_fail_texts(request_t *req, const request_text_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (request_fail_text(req, t[i].s, t[i].max, t[i].field))
            return true;
    return false;
}

bool request_one_of(const char *s, const char *const *words)
{
    for (size_t i = 0; s && words[i]; i++)
        if (strcmp(s, words[i]) == 0)
            return true;
    return false;
}

int request_db_exec(request_t *req, const db_stmt_t *stmt, int nparams, const char *const *values,
                    const int *lengths, const int *formats, db_done_cb cb, void *arg)
{
    /* A request that changes nothing takes no row lock: it may use the
     * connections reserved for short jobs, so reads are served while writes
     * wait for a locked row (db.h). */
    bool changes = req->route && (req->route->flags & (ROUTE_MUTATING | ROUTE_KEYED));
    return changes ? db_exec(req->srv->db, stmt, nparams, values, lengths, formats, cb, arg)
                   : db_exec_short(req->srv->db, stmt, nparams, values, lengths, formats, cb, arg);
}

void request_db(request_t *req, const db_stmt_t *stmt, int nparams, const char *const *values,
                db_done_cb cb)
{
    int rc = request_db_exec(req, stmt, nparams, values, NULL, NULL, cb, req);
    if (rc != 0)
        request_fail_exec(req, rc);
}

/*
 * Answer a request whose string fields are not clean text (see text.h):
 * protobuf-c would hand us "secret\0junk" as "secret", and invalid UTF-8 or
 * escape sequences would reach the database, other desks' screens and our
 * own messages. admission.c found it on the frame's bytes, every string at
 * every depth; bytes fields (MARC records) are not text.
 */
static void request_refuse_text(request_t *req, const wirecheck_error_t *err)
{
    const char *name = err->field->name; /* from our descriptors, never the client's bytes */
    bool key = err->depth == 0 && err->field->id == 2; /* Request.request_key */
    char reason[80];
    snprintf(reason, sizeof(reason), "field:%s", name);
    log_info(req->conn->id, "refused a request: field %s %s", name,
             text_problem_describe(err->problem));
    if (err->problem == TEXT_CONTROL)
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, key ? "request_key" : reason,
                     "The field %s contains the control character U+%04X; text may hold only "
                     "printable characters, tabs and line breaks.",
                     name, (unsigned)err->cp);
    else
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, key ? "request_key" : reason,
                     "The field %s %s; text must be UTF-8 without NUL or control characters.", name,
                     text_problem_describe(err->problem));
}

/*
 * Checks every request passes before its handler runs: admission.c decides,
 * this answers a refusal. False if it was answered.
 */
static bool request_admit(request_t *req, const uint8_t *payload, size_t len)
{
    conn_t *c = req->conn;
    /* The actor is fixed now: Logout and Login change only the live session. */
    req->actor = c->session;
    const session_t *s = &req->actor;
    admission_facts_t facts = {
        .hello_done = s->hello_done,
        .authenticated = s->authenticated,
        .subject = request_subject(req),
        .inflight = c->inflight,
        .max_inflight = c->srv->cfg.max_inflight,
    };
    admission_t a;
    admission_refusal_t refusal = admission_decide(req->msg, payload, len, &facts, &a);
    req->route = a.route;
    switch (refusal) {
    case ADMISSION_OK:
        return true;
    case ADMISSION_HELLO_REQUIRED:
        request_fail_fatal(req, CARREL__STATUS__STATUS_BAD_REQUEST, "hello_required",
                           "The first request on a connection must be Hello.");
        break;
    case ADMISSION_UNDECODABLE:
        request_fail_fatal(req, CARREL__STATUS__STATUS_BAD_REQUEST, "undecodable",
                           "The frame does not hold a valid Request message.");
        break;
    case ADMISSION_TEXT:
        request_refuse_text(req, &a.text);
        break;
    case ADMISSION_UNKNOWN_REQUEST:
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "unknown_request",
                     "This server does not know that kind of request.");
        break;
    case ADMISSION_INFLIGHT_LIMIT:
        request_fail(req, CARREL__STATUS__STATUS_TOO_MANY_REQUESTS, "inflight_limit",
                     "Too many requests in flight on this connection (limit %ld).",
                     c->srv->cfg.max_inflight);
        break;
    case ADMISSION_LOGIN_REQUIRED:
        request_fail(req, CARREL__STATUS__STATUS_UNAUTHENTICATED, "login_required",
                     "Log in first.");
        break;
    case ADMISSION_ROLE: {
        char why[200];
        perm_explain(a.perm, (perm_action_t)req->route->perm, s->role, why, sizeof(why));
        log_info(c->id, "forbidden: %s tried %s", s->username, req->route->name);
        request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "role", "%s", why);
        break;
    }
    case ADMISSION_KEY_MISSING:
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "request_key",
                     "This request changes data and needs a request key (a UUID), so that a "
                     "retry cannot apply it twice.");
        break;
    case ADMISSION_KEY_NOT_UUID:
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "request_key",
                     "The request key must be a UUID.");
        break;
    }
    return false;
}

void request_start(conn_t *c, const uint8_t *payload, size_t len)
{
    request_t *req = calloc(1, sizeof(*req));
    if (req == NULL) {
        conn_close(c, "out of memory");
        return;
    }
    arena_init(&req->arena);
    req->conn = c;
    req->srv = c->srv;
    req->started_ns = util_mono_ns();
    req->live = REQUEST_LIVE;
    conn_ref(c);
    c->inflight++;
    carrel__response__init(&req->resp);

    req->msg = carrel__request__unpack(&req->arena.pb, len, payload);
    if (req->msg == NULL) {
        request_fail_fatal(req, CARREL__STATUS__STATUS_BAD_REQUEST, "undecodable",
                           "The frame does not hold a valid Request message.");
        return;
    }
    req->id = req->msg->has_id ? req->msg->id : 0;
    if (req->id == 0) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "request_id",
                     "Every request needs a non-zero id (0 is reserved for events).");
        return;
    }
    if (request_admit(req, payload, len))
        req->route->handler(req);
}
