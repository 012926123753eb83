/*
 * reply: the statement -> reply layer (reply.h): one failure path and one
 * column check for every handler's statements.
 */
#include "reply.h"

#include "json.h"
#include "log.h"
#include "pgtext.h"

/* What a queued statement will hand its rows to; in the request's arena. */
typedef struct reply_call {
    request_t *req;
    const reply_stmt_t *stmt;
    reply_rows_fn fn;
    reply_rows_arg_fn fn_arg;
    void *arg;
} reply_call_t;

static void reply_done(const db_result_t *r, void *arg)
{
    reply_call_t *call = arg;
    request_t *req = call->req;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    if (!reply_fits(call->stmt, r->res)) {
        /* The SELECT list and the column enum beside it disagree: the code
         * would read the wrong columns, so nothing is read at all. */
        log_error(req->conn->id, "statement %s returned %d columns; its declaration says %d",
                  call->stmt->db.name, PQnfields(r->res), call->stmt->ncols);
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                     "Internal error; it has been logged.");
        return;
    }
    if (call->fn_arg)
        call->fn_arg(req, r->res, call->arg);
    else
        call->fn(req, r->res);
}

static void reply_start(request_t *req, const reply_stmt_t *stmt, int nparams,
                        const char *const *values, const int *lengths, const int *formats,
                        reply_call_t *call)
{
    int rc = request_db_exec(req, &stmt->db, nparams, values, lengths, formats, reply_done, call);
    if (rc != 0)
        request_fail_exec(req, rc);
}

static reply_call_t *reply_call_new(request_t *req, const reply_stmt_t *stmt)
{
    reply_call_t *call = arena_new(&req->arena, reply_call_t, 1);
    *call = (reply_call_t){.req = req, .stmt = stmt};
    return call;
}

void reply_query(request_t *req, const reply_stmt_t *stmt, int nparams, const char *const *values,
                 reply_rows_fn fn)
{
    reply_call_t *call = reply_call_new(req, stmt);
    call->fn = fn;
    reply_start(req, stmt, nparams, values, NULL, NULL, call);
}

void reply_query_bin(request_t *req, const reply_stmt_t *stmt, int nparams,
                     const char *const *values, const int *lengths, const int *formats,
                     reply_rows_fn fn)
{
    reply_call_t *call = reply_call_new(req, stmt);
    call->fn = fn;
    reply_start(req, stmt, nparams, values, lengths, formats, call);
}

void reply_query_arg(request_t *req, const reply_stmt_t *stmt, int nparams,
                     const char *const *values, reply_rows_arg_fn fn, void *arg)
{
    reply_call_t *call = reply_call_new(req, stmt);
    call->fn_arg = fn;
    call->arg = arg;
    reply_start(req, stmt, nparams, values, NULL, NULL, call);
}

bool reply_fits(const reply_stmt_t *stmt, const PGresult *res)
{
    return PQnfields(res) == stmt->ncols;
}

char *reply_text(request_t *req, const PGresult *res, int row, int col)
{
    return arena_strdup(&req->arena, db_text(res, row, col));
}

char *reply_text_opt(request_t *req, const PGresult *res, int row, int col)
{
    return db_null(res, row, col) ? NULL : arena_strdup(&req->arena, db_text(res, row, col));
}

void reply_int32_opt(const PGresult *res, int row, int col, protobuf_c_boolean *has, int32_t *out)
{
    if (db_null(res, row, col))
        return;
    *has = 1;
    *out = db_int32(res, row, col);
}

void reply_int64_opt(const PGresult *res, int row, int col, protobuf_c_boolean *has, int64_t *out)
{
    if (db_null(res, row, col))
        return;
    *has = 1;
    *out = db_int64(res, row, col);
}

void reply_bool_opt(const PGresult *res, int row, int col, protobuf_c_boolean *has,
                    protobuf_c_boolean *out)
{
    if (db_null(res, row, col))
        return;
    *has = 1;
    *out = db_bool(res, row, col);
}

void reply_double_opt(const PGresult *res, int row, int col, protobuf_c_boolean *has, double *out)
{
    if (db_null(res, row, col))
        return;
    *has = 1;
    *out = db_double(res, row, col);
}

const char *reply_opt(const char *s)
{
    return s && s[0] ? s : NULL;
}

char *reply_json(request_t *req, const ProtobufCMessage *msg)
{
    json_t j;
    json_init(&j);
    json_message(&j, msg);
    char *doc = arena_strndup(&req->arena, (const char *)j.out.data, j.out.len);
    json_free(&j);
    return doc;
}

void reply_actor(request_t *req, const char **staff, const char **workstation)
{
    const session_t *s = request_session(req);
    *staff = pgtext_int(&req->arena, s->staff_id);
    *workstation = pgtext_int(&req->arena, s->workstation_id);
}
