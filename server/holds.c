/*
 * holds: placing and changing holds, queues, pull lists, hold shelves and
 * their clearing lists, transit lists. The rules are in sql/rules/: holds.sql
 * (place, change, list), pull_list_and_shelf.sql (pull list, hold shelf, clearing
 * list, queue order), hold_targeting.sql, transits.sql (transit lists);
 * capture itself happens inside checkin (circ.c -> circ_checkin ->
 * circ_checkin_route, transits.sql -> hold_capture.sql).
 */
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "handlers.h"
#include "log.h"
#include "pgtext.h"
#include "reply.h"

static const reply_stmt_t stmt_place =
    REPLY_STMT("holds_place", HOLD_NCOLS,
               "SELECT " HOLD_COLUMNS
               "  FROM hold_place($1::uuid, $2, $3, $4, $5, $6, $7, $8::date, $9::date)");

static const reply_stmt_t stmt_list =
    REPLY_STMT("holds_list", HOLD_NCOLS, "SELECT " HOLD_COLUMNS " FROM hold_list($1, $2::boolean)");

static const reply_stmt_t stmt_change =
    REPLY_STMT("holds_change", HOLD_NCOLS,
               "SELECT " HOLD_COLUMNS " FROM hold_change($1::uuid, $2, $3, $4, $5, $6::date, $7)");

static const reply_stmt_t stmt_queue =
    REPLY_STMT("holds_queue", HOLD_NCOLS, "SELECT " HOLD_COLUMNS " FROM bib_hold_queue($1)");

enum {
    PULL_BARCODE,
    PULL_TITLE,
    PULL_CALL_NUMBER,
    PULL_LOCATION,
    PULL_HOLD_ID,
    PULL_PICKUP_BRANCH,
    PULL_PLACED_AT,
    PULL_NCOLS
};
static const reply_stmt_t stmt_pull =
    REPLY_STMT("holds_pull_list", PULL_NCOLS,
               "SELECT barcode, title, call_number, location, hold_id, pickup_branch, placed_at"
               "  FROM pull_list($1)");

enum { NOT_FOUND_ITEM_ID, NOT_FOUND_NCOLS };
static const reply_stmt_t stmt_not_found = REPLY_STMT(
    "holds_item_not_found", NOT_FOUND_NCOLS, "SELECT hold_item_not_found($1::uuid, $2, $3, $4)");

/* The columns of the hold shelf and of its clearing list. */
enum {
    SHELF_BARCODE,
    SHELF_TITLE,
    SHELF_HOLD_ID,
    SHELF_PATRON_NAME,
    SHELF_CARD_LAST4,
    SHELF_EXPIRES_ON,
    SHELF_STATUS,
    SHELF_NCOLS
};
static const reply_stmt_t stmt_shelf =
    REPLY_STMT("holds_shelf", SHELF_NCOLS,
               "SELECT barcode, title, hold_id, patron_name, card_end, shelf_expires_on, status"
               "  FROM hold_shelf($1)");

/* Copies on the hold shelf whose hold is over: pull them and check them in. */
static const reply_stmt_t stmt_clearing =
    REPLY_STMT("holds_clearing", SHELF_NCOLS,
               "SELECT barcode, title, hold_id, patron_name, card_end, shelf_expires_on, status"
               "  FROM hold_clearing_list($1)");

/* TRANSIT_COLUMNS by name, in their order. */
enum {
    TRANSIT_ID,
    TRANSIT_BARCODE,
    TRANSIT_TITLE,
    TRANSIT_FROM,
    TRANSIT_TO,
    TRANSIT_REASON,
    TRANSIT_SENT_AT,
    TRANSIT_OVERDUE,
    TRANSIT_NCOLS
};
#define TRANSIT_COLUMNS "id, barcode, title, from_branch, to_branch, reason, sent_at, overdue"

static const reply_stmt_t stmt_transits = REPLY_STMT(
    "holds_transits", TRANSIT_NCOLS, "SELECT " TRANSIT_COLUMNS " FROM transit_list($1, $2)");

static const reply_stmt_t stmt_transit_cancel =
    REPLY_STMT("holds_transit_cancel", TRANSIT_NCOLS,
               "SELECT " TRANSIT_COLUMNS " FROM transit_out(ARRAY[$1::bigint])");

enum { CANCEL_ITEM_ID, CANCEL_NCOLS };
static const reply_stmt_t stmt_transit_cancel_do =
    REPLY_STMT("holds_transit_cancel_do", CANCEL_NCOLS, "SELECT transit_cancel($1::uuid, $2, $3)");

void holds_register_statements(void)
{
    static const reply_stmt_t *const all[] = {
        &stmt_place,
        &stmt_list,
        &stmt_change,
        &stmt_queue,
        &stmt_pull,
        &stmt_not_found,
        &stmt_shelf,
        &stmt_clearing,
        &stmt_transits,
        &stmt_transit_cancel,
        &stmt_transit_cancel_do,
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        db_stmt_register(&all[i]->db);
}

/* ---- rows ---- */

Carrel__Hold *holds_from_row(request_t *req, const PGresult *res, int i)
{
    Carrel__Hold *h = arena_new(&req->arena, Carrel__Hold, 1);
    carrel__hold__init(h);
    h->has_id = 1;
    h->id = db_int64(res, i, HOLD_ID);
    h->card = reply_text_opt(req, res, i, HOLD_CARD);
    h->patron_name = reply_text_opt(req, res, i, HOLD_PATRON_NAME);
    h->has_bib_id = 1;
    h->bib_id = db_int64(res, i, HOLD_BIB_ID);
    h->title = reply_text_opt(req, res, i, HOLD_TITLE);
    h->item_barcode = reply_text_opt(req, res, i, HOLD_ITEM_BARCODE);
    h->pickup_branch = reply_text_opt(req, res, i, HOLD_PICKUP_BRANCH);
    h->placed_at = reply_text_opt(req, res, i, HOLD_PLACED_AT);
    h->not_needed_after = reply_text_opt(req, res, i, HOLD_NOT_NEEDED_AFTER);
    h->suspended_until = reply_text_opt(req, res, i, HOLD_SUSPENDED_UNTIL);
    h->status = reply_text_opt(req, res, i, HOLD_STATUS);
    if (!db_null(res, i, HOLD_QUEUE_POSITION)) {
        h->has_position = 1;
        h->position = db_int32(res, i, HOLD_QUEUE_POSITION);
    }
    h->captured_barcode = reply_text_opt(req, res, i, HOLD_CAPTURED_BARCODE);
    h->shelf_expires_on = reply_text_opt(req, res, i, HOLD_SHELF_EXPIRES_ON);
    h->target_barcode = reply_text_opt(req, res, i, HOLD_TARGET_BARCODE);
    h->target_branch = reply_text_opt(req, res, i, HOLD_TARGET_BRANCH);
    h->cancel_reason = reply_text_opt(req, res, i, HOLD_CANCEL_REASON);
    return h;
}

static Carrel__Hold **holds_rows(request_t *req, const PGresult *res, size_t *n)
{
    int rows = PQntuples(res);
    Carrel__Hold **list = arena_new(&req->arena, Carrel__Hold *, rows + 1);
    *n = 0;
    for (int i = 0; i < rows; i++)
        list[(*n)++] = holds_from_row(req, res, i);
    return list;
}

static void holds_one_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal", "The hold was not found.");
        return;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_HOLD;
    req->resp.hold = holds_from_row(req, res, 0);
    request_ok(req);
}

static void holds_many_done(request_t *req, const PGresult *res)
{
    Carrel__HoldListReply *reply = arena_new(&req->arena, Carrel__HoldListReply, 1);
    carrel__hold_list_reply__init(reply);
    reply->holds = holds_rows(req, res, &reply->n_holds);
    req->resp.body_case = CARREL__RESPONSE__BODY_HOLDS;
    req->resp.holds = reply;
    request_ok(req);
}

static const char *holds_opt(const char *s)
{
    return s && s[0] ? s : NULL;
}

static const char *holds_branch(request_t *req, const char *code)
{
    return holds_opt(code) ? code : request_session(req)->branch_code;
}

/* ---- place, list, change, queue ---- */

void handle_hold_place(request_t *req)
{
    Carrel__HoldPlace *m = req->msg->hold_place;
    arena_t *a = &req->arena;
    if (!holds_opt(m->card)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:card",
                     "A library card is required.");
        return;
    }
    if (!m->has_bib_id == !holds_opt(m->item_barcode)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:bib_id",
                     "Hold a title (its number) or one copy (its barcode), not both.");
        return;
    }
    const session_t *s = request_session(req);
    const char *values[9] = {
        req->msg->request_key,
        pgtext_int(a, s->staff_id),
        pgtext_int(a, s->branch_id),
        m->card,
        m->has_bib_id ? pgtext_int(a, m->bib_id) : NULL,
        holds_opt(m->item_barcode),
        holds_opt(m->pickup_branch),
        holds_opt(m->not_needed_after),
        holds_opt(m->suspended_until),
    };
    reply_query(req, &stmt_place, 9, values, holds_one_done);
}

void handle_hold_list(request_t *req)
{
    Carrel__HoldList *m = req->msg->hold_list;
    if (!holds_opt(m->card)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:card",
                     "A library card is required.");
        return;
    }
    const char *values[2] = {m->card,
                             m->has_include_closed && m->include_closed ? "true" : "false"};
    reply_query(req, &stmt_list, 2, values, holds_many_done);
}

void handle_hold_change(request_t *req)
{
    Carrel__HoldChange *m = req->msg->hold_change;
    arena_t *a = &req->arena;
    if (!m->has_hold_id || !holds_opt(m->action)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:hold_id",
                     "Name the hold and what to do with it.");
        return;
    }
    const char *values[7] = {
        req->msg->request_key,       pgtext_int(a, request_session(req)->staff_id),
        pgtext_int(a, m->hold_id),   m->action,
        holds_opt(m->reason),        holds_opt(m->until),
        holds_opt(m->pickup_branch),
    };
    reply_query(req, &stmt_change, 7, values, holds_one_done);
}

void handle_hold_queue(request_t *req)
{
    Carrel__HoldQueue *m = req->msg->hold_queue;
    if (!m->has_bib_id) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:bib_id",
                     "Name the title by its number.");
        return;
    }
    const char *values[1] = {pgtext_int(&req->arena, m->bib_id)};
    reply_query(req, &stmt_queue, 1, values, holds_many_done);
}

/* ---- pull list and not found ---- */

static void pull_done(request_t *req, const PGresult *res)
{
    arena_t *a = &req->arena;
    int n = PQntuples(res);
    Carrel__PullListReply *reply = arena_new(a, Carrel__PullListReply, 1);
    carrel__pull_list_reply__init(reply);
    reply->entries = arena_new(a, Carrel__PullEntry *, n + 1);
    for (int i = 0; i < n; i++) {
        Carrel__PullEntry *e = arena_new(a, Carrel__PullEntry, 1);
        carrel__pull_entry__init(e);
        e->barcode = reply_text_opt(req, res, i, PULL_BARCODE);
        e->title = reply_text_opt(req, res, i, PULL_TITLE);
        e->call_number = reply_text_opt(req, res, i, PULL_CALL_NUMBER);
        e->location = reply_text_opt(req, res, i, PULL_LOCATION);
        e->has_hold_id = 1;
        e->hold_id = db_int64(res, i, PULL_HOLD_ID);
        e->pickup_branch = reply_text_opt(req, res, i, PULL_PICKUP_BRANCH);
        e->placed_at = reply_text_opt(req, res, i, PULL_PLACED_AT);
        reply->entries[reply->n_entries++] = e;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_PULL_LIST;
    req->resp.pull_list = reply;
    request_ok(req);
}

void handle_pull_list(request_t *req)
{
    const char *values[1] = {holds_branch(req, req->msg->pull_list->branch)};
    reply_query(req, &stmt_pull, 1, values, pull_done);
}

static void not_found_done(request_t *req, const PGresult *res)
{
    log_info(req->conn->id, "%s: %s not found on the shelf; marked missing",
             request_session(req)->username, req->msg->item_not_found->barcode);
    /* The item the function marked: on a repeated key, the first request's. */
    catalog_reply_item(req, reply_text(req, res, 0, NOT_FOUND_ITEM_ID));
}

void handle_item_not_found(request_t *req)
{
    Carrel__ItemNotFound *m = req->msg->item_not_found;
    arena_t *a = &req->arena;
    if (!holds_opt(m->barcode)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:barcode",
                     "An item barcode is required.");
        return;
    }
    const session_t *s = request_session(req);
    const char *values[4] = {req->msg->request_key, pgtext_int(a, s->staff_id),
                             pgtext_int(a, s->branch_id), m->barcode};
    reply_query(req, &stmt_not_found, 4, values, not_found_done);
}

/* ---- hold shelf and clearing list ---- */

static void shelf_done(request_t *req, const PGresult *res)
{
    arena_t *a = &req->arena;
    int n = PQntuples(res);
    Carrel__HoldShelfReply *reply = arena_new(a, Carrel__HoldShelfReply, 1);
    carrel__hold_shelf_reply__init(reply);
    reply->entries = arena_new(a, Carrel__ShelfEntry *, n + 1);
    for (int i = 0; i < n; i++) {
        Carrel__ShelfEntry *e = arena_new(a, Carrel__ShelfEntry, 1);
        carrel__shelf_entry__init(e);
        e->barcode = reply_text_opt(req, res, i, SHELF_BARCODE);
        e->title = reply_text_opt(req, res, i, SHELF_TITLE);
        if (!db_null(res, i, SHELF_HOLD_ID)) {
            e->has_hold_id = 1;
            e->hold_id = db_int64(res, i, SHELF_HOLD_ID);
        }
        e->patron_name = reply_text_opt(req, res, i, SHELF_PATRON_NAME);
        e->card_last4 = reply_text_opt(req, res, i, SHELF_CARD_LAST4);
        e->shelf_expires_on = reply_text_opt(req, res, i, SHELF_EXPIRES_ON);
        e->status = reply_text_opt(req, res, i, SHELF_STATUS);
        reply->entries[reply->n_entries++] = e;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_HOLD_SHELF;
    req->resp.hold_shelf = reply;
    request_ok(req);
}

void handle_hold_shelf(request_t *req)
{
    Carrel__HoldShelf *m = req->msg->hold_shelf;
    const char *values[1] = {holds_branch(req, m->branch)};
    reply_query(req, m->has_clearing && m->clearing ? &stmt_clearing : &stmt_shelf, 1, values,
                shelf_done);
}

/* ---- transits ---- */

static Carrel__Transit *transit_row(request_t *req, const PGresult *res, int i)
{
    Carrel__Transit *t = arena_new(&req->arena, Carrel__Transit, 1);
    carrel__transit__init(t);
    t->has_id = 1;
    t->id = db_int64(res, i, TRANSIT_ID);
    t->barcode = reply_text_opt(req, res, i, TRANSIT_BARCODE);
    t->title = reply_text_opt(req, res, i, TRANSIT_TITLE);
    t->from_branch = reply_text_opt(req, res, i, TRANSIT_FROM);
    t->to_branch = reply_text_opt(req, res, i, TRANSIT_TO);
    t->reason = reply_text_opt(req, res, i, TRANSIT_REASON);
    t->sent_at = reply_text_opt(req, res, i, TRANSIT_SENT_AT);
    t->has_overdue = 1;
    t->overdue = db_bool(res, i, TRANSIT_OVERDUE);
    return t;
}

static void transits_done(request_t *req, const PGresult *res)
{
    int n = PQntuples(res);
    Carrel__TransitListReply *reply = arena_new(&req->arena, Carrel__TransitListReply, 1);
    carrel__transit_list_reply__init(reply);
    reply->transits = arena_new(&req->arena, Carrel__Transit *, n + 1);
    for (int i = 0; i < n; i++)
        reply->transits[reply->n_transits++] = transit_row(req, res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_TRANSITS;
    req->resp.transits = reply;
    request_ok(req);
}

void handle_transit_list(request_t *req)
{
    Carrel__TransitList *m = req->msg->transit_list;
    const char *which = holds_opt(m->which) ? m->which : "incoming";
    if (strcmp(which, "incoming") && strcmp(which, "outgoing") && strcmp(which, "overdue")) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:which",
                     "List incoming, outgoing or overdue transits.");
        return;
    }
    const char *values[2] = {holds_branch(req, m->branch), which};
    reply_query(req, &stmt_transits, 2, values, transits_done);
}

static void transit_cancelled_row(request_t *req, const PGresult *res)
{
    req->resp.body_case = CARREL__RESPONSE__BODY_TRANSIT;
    req->resp.transit = PQntuples(res) ? transit_row(req, res, 0) : NULL;
    request_ok(req);
}

static void transit_cancelled(request_t *req, const PGresult *res)
{
    const char *values[1] = {reply_text_opt(req, res, 0, CANCEL_ITEM_ID)};
    reply_query(req, &stmt_transit_cancel, 1, values, transit_cancelled_row);
}

void handle_transit_change(request_t *req)
{
    Carrel__TransitChange *m = req->msg->transit_change;
    if (!holds_opt(m->barcode) || !m->action || strcmp(m->action, "cancel") != 0) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:action",
                     "Cancel a transit by the item's barcode (receiving it is a checkin).");
        return;
    }
    const char *values[3] = {req->msg->request_key,
                             pgtext_int(&req->arena, request_session(req)->staff_id), m->barcode};
    reply_query(req, &stmt_transit_cancel_do, 3, values, transit_cancelled);
}
