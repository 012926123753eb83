/*
 * request: one decoded Request on its way to a Response.
 *
 * Everything a request allocates (the unpacked message, the response and
 * its submessages, strings copied from query results) lives in req->arena
 * and is released in one go when the response has been sent. A handler ends
 * a request exactly once, with request_ok() or one of the request_fail*()
 * calls; after that it must not touch req again.
 */
#ifndef CARREL_REQUEST_H
#define CARREL_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "carrel.pb-c.h"
#include "conn.h"
#include "db.h"
#include "reason.h"
#include "server.h"

typedef struct request request_t;
typedef void (*handler_fn)(request_t *req);

typedef struct route {
    Carrel__Request__BodyCase body;
    const char *name;
    handler_fn handler;
    unsigned flags;
    int perm; /* perm_action_t checked before the handler, or -1 */
} route_t;

#define ROUTE_BEFORE_LOGIN 1u /* may be used after Hello, before Login */
#define ROUTE_MUTATING     2u /* changes data: may carry an idempotency key (see PROTOCOL.md) */
#define ROUTE_KEYED        4u /* changes data and must carry a request key (circulation) */

/* request_t.live: set when a request starts, changed when it ends, so that
 * ending one twice is caught (CHECK) rather than answered twice. */
#define REQUEST_LIVE  0x4c495645u /* "LIVE" */
#define REQUEST_ENDED 0x454e4444u /* "ENDD" */

struct request {
    uint32_t live; /* REQUEST_LIVE until the request ends */
    conn_t *conn;
    server_t *srv;
    uint64_t id;
    arena_t arena;
    Carrel__Request *msg;
    Carrel__Response resp;
    const route_t *route;
    uint64_t started_ns;
    void *state; /* the handler's, usually arena-allocated */
    /* Who is acting: the connection's session as it was when the request was
     * admitted. A request still running when its connection logs out and in
     * again keeps acting (and is audited) as the person who sent it. */
    session_t actor;
};

/* Decode and dispatch one frame from a connection. */
void request_start(conn_t *c, const uint8_t *payload, size_t len);

void request_ok(request_t *req);
void request_fail(request_t *req, Carrel__Status status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Like request_fail, but keeps the body the handler set (e.g. the current
 * record with a stale-version conflict, or the look-alikes of a duplicate). */
void request_fail_body(request_t *req, Carrel__Status status, const char *reason, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
/* End the request with a reason's status, name and sentence from the table
 * (common/reason.h). */
void request_fail_reason(request_t *req, reason_t reason);
/* Map a failed database result to a status and message and end the request;
 * the status of a reason SQL raised comes from the reason table. */
void request_fail_db(request_t *req, const db_result_t *r);
/* End the request after db_exec() refused to queue (DB_EXEC_*). */
void request_fail_exec(request_t *req, int exec_rc);
/*
 * The size of a list a request asks for, by the one rule of every list
 * request (docs/PROTOCOL.md, "Limits"): absent means `def`; 1 to `max` is
 * taken as it is; anything else (0, negative, over `max`) is answered
 * BAD_REQUEST with `reason` ("field:limit", "field:ledger_limit") and false
 * is returned, after which req must not be touched.
 */
__attribute__((warn_unused_result)) bool request_limit(request_t *req, bool has, int64_t value,
                                                       int def, int max, const char *reason,
                                                       int *out);
/*
 * Bound a text field before it reaches SQL: absent (NULL) passes; more than
 * `max` bytes, or a control character other than newline and tab, is
 * answered BAD_REQUEST `field:<field>` and true is returned, after which req
 * must not be touched.
 */
__attribute__((warn_unused_result)) bool request_fail_text(request_t *req, const char *s,
                                                           size_t max, const char *field);
/*
 * When `bad`: answer BAD_REQUEST `field:<field>` with the message `why` and
 * return true, after which req must not be touched; else false.
 */
__attribute__((warn_unused_result)) bool request_bad_field(request_t *req, bool bad,
                                                           const char *field, const char *why);
/* An arena array for up to n pointers of a reply's repeated field (one more,
 * so that n may be 0). */
#define REQUEST_LIST(req, T, n) arena_new(&(req)->arena, T *, (size_t)(n) + 1)
/* Text fields of a request and their bounds, for request_fail_texts. */
typedef struct request_text {
    const char *s;
    size_t max;
    const char *field;
} request_text_t;
/* request_fail_text for each field in turn: true when one was answered. */
__attribute__((warn_unused_result)) bool request_fail_texts(request_t *req, const request_text_t *t,
                                                            size_t n);
/* REQUEST_TEXTS(req, {m->branch, 64, "branch"}, {m->note, 800, "note"}) */
#define REQUEST_TEXTS(req, ...)                                                                    \
    request_fail_texts((req), (const request_text_t[]){__VA_ARGS__},                               \
                       sizeof((const request_text_t[]){__VA_ARGS__}) / sizeof(request_text_t))
/* True when s is one of the words of a NULL-terminated list; false for NULL s. */
bool request_one_of(const char *s, const char *const *words);
/* Queue a prepared statement for req on the lane its route calls for: a
 * request that changes nothing may use the connections reserved for short
 * jobs (db.h). 0, or db_exec's error (the request is not ended). */
CARREL_MUST_USE int request_db_exec(request_t *req, const db_stmt_t *stmt, int nparams,
                                    const char *const *values, const int *lengths,
                                    const int *formats, db_done_cb cb, void *arg);
/* Run a prepared statement for req; failures to queue end the request. */
void request_db(request_t *req, const db_stmt_t *stmt, int nparams, const char *const *values,
                db_done_cb cb);

/* The session the request was admitted in (not the connection's live one:
 * only Login and Logout, in auth.c, change that). */
static inline const session_t *request_session(const request_t *req)
{
    return &req->actor;
}

/* The actor's role and branch, for permission checks. */
static inline perm_subject_t request_subject(const request_t *req)
{
    perm_subject_t s = {.role = req->actor.role, .branch_id = req->actor.branch_id};
    return s;
}

/* dispatch.c */
const route_t *dispatch_find(Carrel__Request__BodyCase body);
void dispatch_register_statements(void);
/* The route table, for the metrics: its size, the i-th route, a route's index. */
size_t dispatch_route_count(void);
const route_t *dispatch_route_at(size_t i);
size_t dispatch_route_index(const route_t *route);

#endif
