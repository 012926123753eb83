/*
 * reply: from a statement to a reply, for request handlers.
 *
 * A handler says three things: which statement to run with which values,
 * what its columns are, and how rows become the reply. Everything else is
 * here, once:
 *
 *  - reply_query() runs the statement in the request's lane (request_db)
 *    and calls the handler's rows function only when it succeeded: a
 *    database error, a refusal raised in SQL (SQLSTATE class CR) or a queue
 *    that is full ends the request through request_fail_db/_exec, and the
 *    rows function is never called.
 *  - Each statement declares its columns once, next to its SQL: an enum in
 *    the order of the SELECT list whose last member is the count, stored
 *    with the statement (reply_stmt_t). A result of any other width is a
 *    mismatch between the code and the SQL: logged, answered INTERNAL, and
 *    the rows function is not called. Rows are read by name:
 *    COL(res, row, ITEM_BARCODE), db_int64(res, row, ITEM_ID), ...
 *  - reply_text/reply_text_opt copy a text column into the request's arena
 *    (the one copy of the nullable-column helper).
 *
 *      enum { SHELF_BARCODE, SHELF_TITLE, SHELF_NCOLS };
 *      static const reply_stmt_t stmt_shelf = REPLY_STMT("shelf", SHELF_NCOLS,
 *          "SELECT barcode, title FROM shelf WHERE branch = $1");
 *
 *      static void shelf_rows(request_t *req, const PGresult *res) { ... request_ok(req); }
 *      ... reply_query(req, &stmt_shelf, 1, values, shelf_rows);
 */
#ifndef CARREL_REPLY_H
#define CARREL_REPLY_H

#include "request.h"

/* A statement and the number of columns of its rows (its column enum's count). */
typedef struct reply_stmt {
    db_stmt_t db; /* registered with db_stmt_register(&stmt.db) */
    int ncols;
} reply_stmt_t;

/* A reply_stmt_t: its prepared name, its column count, its SQL. */
#define REPLY_STMT(name, ncols, sql)                                                               \
    {                                                                                              \
        {(name), (sql)}, (ncols)                                                                   \
    }

/* The rows of a statement that succeeded with its declared columns. It must
 * end the request or start the next statement (which then ends it). */
typedef void (*reply_rows_fn)(request_t *req, const PGresult *res);
/* The same, with the caller's argument (for helpers other modules call). */
typedef void (*reply_rows_arg_fn)(request_t *req, const PGresult *res, void *arg);

/* Run stmt for req in the request's lane (request_db); fn gets the rows. */
void reply_query(request_t *req, const reply_stmt_t *stmt, int nparams, const char *const *values,
                 reply_rows_fn fn);
/* Like reply_query, with parameter lengths and formats (binary parameters). */
void reply_query_bin(request_t *req, const reply_stmt_t *stmt, int nparams,
                     const char *const *values, const int *lengths, const int *formats,
                     reply_rows_fn fn);
/* Like reply_query, handing `arg` to fn. */
void reply_query_arg(request_t *req, const reply_stmt_t *stmt, int nparams,
                     const char *const *values, reply_rows_arg_fn fn, void *arg);

/* True when res has the columns stmt declares (reply_query checks every result). */
bool reply_fits(const reply_stmt_t *stmt, const PGresult *res);

/* A text column: "" for SQL NULL; valid while res is. */
#define COL(res, row, col) db_text((res), (row), (col))
/* A text column copied into the request's arena; "" for SQL NULL. */
char *reply_text(request_t *req, const PGresult *res, int row, int col);
/* A text column copied into the request's arena; NULL (absent from the
 * reply) for SQL NULL. */
char *reply_text_opt(request_t *req, const PGresult *res, int row, int col);
/* Optional integer columns: *has set and *out read unless SQL NULL, so the
 * field stays absent from the reply for NULL (one copy for every handler). */
void reply_int32_opt(const PGresult *res, int row, int col, protobuf_c_boolean *has, int32_t *out);
void reply_int64_opt(const PGresult *res, int row, int col, protobuf_c_boolean *has, int64_t *out);
void reply_double_opt(const PGresult *res, int row, int col, protobuf_c_boolean *has, double *out);
/* The same for an optional boolean column. */
void reply_bool_opt(const PGresult *res, int row, int col, protobuf_c_boolean *has,
                    protobuf_c_boolean *out);

/* Parameters handlers share, so each is written once:
 * an optional text field: NULL (SQL NULL) when absent or empty; */
const char *reply_opt(const char *s);
/* a message as the jsonb document a save function takes (json_message), in the arena; */
char *reply_json(request_t *req, const ProtobufCMessage *msg);
/* the acting staff id and workstation id, as text, in the arena. */
void reply_actor(request_t *req, const char **staff, const char **workstation);

#endif
