/*
 * holds: placing and changing holds, queues, pull lists, hold shelves and
 * their clearing lists, transit lists. The rules are in sql/rules/: holds.sql
 * (place, change, list), hold_lists.sql (pull list, hold shelf, clearing
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

#define HOLD_COLUMNS                                                                               \
    "id, card, patron_name, bib_id, title, item_barcode, pickup_branch, placed_at,"                \
    " not_needed_after, suspended_until, status, queue_position, captured_barcode,"                \
    " shelf_expires_on, target_barcode, target_branch, cancel_reason"

static const db_stmt_t stmt_place = {
    "holds_place",
    "SELECT " HOLD_COLUMNS
    "  FROM hold_place($1::uuid, $2, $3, $4, $5, $6, $7, $8::date, $9::date)",
};

static const db_stmt_t stmt_list = {
    "holds_list",
    "SELECT " HOLD_COLUMNS " FROM hold_list($1, $2::boolean)",
};

static const db_stmt_t stmt_change = {
    "holds_change",
    "SELECT " HOLD_COLUMNS " FROM hold_change($1::uuid, $2, $3, $4, $5, $6::date, $7)",
};

static const db_stmt_t stmt_queue = {
    "holds_queue",
    "SELECT " HOLD_COLUMNS " FROM bib_hold_queue($1)",
};

static const db_stmt_t stmt_pull = {
    "holds_pull_list",
    "SELECT barcode, title, call_number, location, hold_id, pickup_branch, placed_at"
    "  FROM pull_list($1)",
};

static const db_stmt_t stmt_not_found = {
    "holds_item_not_found",
    "SELECT hold_item_not_found($1::uuid, $2, $3, $4)",
};

static const db_stmt_t stmt_shelf = {
    "holds_shelf",
    "SELECT barcode, title, hold_id, patron_name, card_end, shelf_expires_on, status"
    "  FROM hold_shelf($1)",
};

/* Copies on the hold shelf whose hold is over: pull them and check them in. */
static const db_stmt_t stmt_clearing = {
    "holds_clearing",
    "SELECT barcode, title, hold_id, patron_name, card_end, shelf_expires_on, status"
    "  FROM hold_clearing_list($1)",
};

#define TRANSIT_COLUMNS "id, barcode, title, from_branch, to_branch, reason, sent_at, overdue"

static const db_stmt_t stmt_transits = {
    "holds_transits",
    "SELECT " TRANSIT_COLUMNS " FROM transit_list($1, $2)",
};

static const db_stmt_t stmt_transit_cancel = {
    "holds_transit_cancel",
    "SELECT " TRANSIT_COLUMNS " FROM transit_out(ARRAY[$1::bigint])",
};

static const db_stmt_t stmt_transit_cancel_do = {
    "holds_transit_cancel_do",
    "SELECT transit_cancel($1::uuid, $2, $3)",
};

static const db_stmt_t stmt_patron_holds = {
    "holds_of_patron",
    "SELECT " HOLD_COLUMNS " FROM hold_out(ARRAY(SELECT h.id FROM hold h"
    " WHERE h.patron_id = $1 AND h.status IN ('waiting', 'in_transit', 'ready')"
    " ORDER BY h.placed_at, h.id))",
};

void holds_register_statements(void)
{
    static const db_stmt_t *const all[] = {
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
        &stmt_patron_holds,
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        db_stmt_register(all[i]);
}

/* ---- rows ---- */

static char *holds_str(request_t *req, const PGresult *res, int row, int col)
{
    return db_null(res, row, col) ? NULL : arena_strdup(&req->arena, db_text(res, row, col));
}

static Carrel__Hold *holds_row(request_t *req, const PGresult *res, int i)
{
    Carrel__Hold *h = arena_new(&req->arena, Carrel__Hold, 1);
    carrel__hold__init(h);
    h->has_id = 1;
    h->id = db_int64(res, i, 0);
    h->card = holds_str(req, res, i, 1);
    h->patron_name = holds_str(req, res, i, 2);
    h->has_bib_id = 1;
    h->bib_id = db_int64(res, i, 3);
    h->title = holds_str(req, res, i, 4);
    h->item_barcode = holds_str(req, res, i, 5);
    h->pickup_branch = holds_str(req, res, i, 6);
    h->placed_at = holds_str(req, res, i, 7);
    h->not_needed_after = holds_str(req, res, i, 8);
    h->suspended_until = holds_str(req, res, i, 9);
    h->status = holds_str(req, res, i, 10);
    if (!db_null(res, i, 11)) {
        h->has_position = 1;
        h->position = db_int32(res, i, 11);
    }
    h->captured_barcode = holds_str(req, res, i, 12);
    h->shelf_expires_on = holds_str(req, res, i, 13);
    h->target_barcode = holds_str(req, res, i, 14);
    h->target_branch = holds_str(req, res, i, 15);
    h->cancel_reason = holds_str(req, res, i, 16);
    return h;
}

Carrel__Hold **holds_rows(request_t *req, const PGresult *res, size_t *n)
{
    int rows = PQntuples(res);
    Carrel__Hold **list = arena_new(&req->arena, Carrel__Hold *, rows + 1);
    *n = 0;
    for (int i = 0; i < rows; i++)
        list[(*n)++] = holds_row(req, res, i);
    return list;
}

static void holds_one_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    if (PQntuples(r->res) != 1) {
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal", "The hold was not found.");
        return;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_HOLD;
    req->resp.hold = holds_row(req, r->res, 0);
    request_ok(req);
}

static void holds_many_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    Carrel__HoldListReply *reply = arena_new(&req->arena, Carrel__HoldListReply, 1);
    carrel__hold_list_reply__init(reply);
    reply->holds = holds_rows(req, r->res, &reply->n_holds);
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
    request_db(req, &stmt_place, 9, values, holds_one_done);
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
    request_db(req, &stmt_list, 2, values, holds_many_done);
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
    request_db(req, &stmt_change, 7, values, holds_one_done);
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
    request_db(req, &stmt_queue, 1, values, holds_many_done);
}

/* ---- pull list and not found ---- */

static void pull_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    arena_t *a = &req->arena;
    int n = PQntuples(r->res);
    Carrel__PullListReply *reply = arena_new(a, Carrel__PullListReply, 1);
    carrel__pull_list_reply__init(reply);
    reply->entries = arena_new(a, Carrel__PullEntry *, n + 1);
    for (int i = 0; i < n; i++) {
        Carrel__PullEntry *e = arena_new(a, Carrel__PullEntry, 1);
        carrel__pull_entry__init(e);
        e->barcode = holds_str(req, r->res, i, 0);
        e->title = holds_str(req, r->res, i, 1);
        e->call_number = holds_str(req, r->res, i, 2);
        e->location = holds_str(req, r->res, i, 3);
        e->has_hold_id = 1;
        e->hold_id = db_int64(r->res, i, 4);
        e->pickup_branch = holds_str(req, r->res, i, 5);
        e->placed_at = holds_str(req, r->res, i, 6);
        reply->entries[reply->n_entries++] = e;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_PULL_LIST;
    req->resp.pull_list = reply;
    request_ok(req);
}

void handle_pull_list(request_t *req)
{
    const char *values[1] = {holds_branch(req, req->msg->pull_list->branch)};
    request_db(req, &stmt_pull, 1, values, pull_done);
}

static void not_found_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    log_info(req->conn->id, "%s: %s not found on the shelf; marked missing",
             request_session(req)->username, req->msg->item_not_found->barcode);
    /* The item the function marked: on a repeated key, the first request's. */
    catalog_reply_item(req, arena_strdup(&req->arena, db_text(r->res, 0, 0)));
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
    request_db(req, &stmt_not_found, 4, values, not_found_done);
}

/* ---- hold shelf and clearing list ---- */

static void shelf_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    arena_t *a = &req->arena;
    int n = PQntuples(r->res);
    Carrel__HoldShelfReply *reply = arena_new(a, Carrel__HoldShelfReply, 1);
    carrel__hold_shelf_reply__init(reply);
    reply->entries = arena_new(a, Carrel__ShelfEntry *, n + 1);
    for (int i = 0; i < n; i++) {
        Carrel__ShelfEntry *e = arena_new(a, Carrel__ShelfEntry, 1);
        carrel__shelf_entry__init(e);
        e->barcode = holds_str(req, r->res, i, 0);
        e->title = holds_str(req, r->res, i, 1);
        if (!db_null(r->res, i, 2)) {
            e->has_hold_id = 1;
            e->hold_id = db_int64(r->res, i, 2);
        }
        e->patron_name = holds_str(req, r->res, i, 3);
        e->card_last4 = holds_str(req, r->res, i, 4);
        e->shelf_expires_on = holds_str(req, r->res, i, 5);
        e->status = holds_str(req, r->res, i, 6);
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
    request_db(req, m->has_clearing && m->clearing ? &stmt_clearing : &stmt_shelf, 1, values,
               shelf_done);
}

/* ---- transits ---- */

static Carrel__Transit *transit_row(request_t *req, const PGresult *res, int i)
{
    Carrel__Transit *t = arena_new(&req->arena, Carrel__Transit, 1);
    carrel__transit__init(t);
    t->has_id = 1;
    t->id = db_int64(res, i, 0);
    t->barcode = holds_str(req, res, i, 1);
    t->title = holds_str(req, res, i, 2);
    t->from_branch = holds_str(req, res, i, 3);
    t->to_branch = holds_str(req, res, i, 4);
    t->reason = holds_str(req, res, i, 5);
    t->sent_at = holds_str(req, res, i, 6);
    t->has_overdue = 1;
    t->overdue = db_bool(res, i, 7);
    return t;
}

static void transits_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    int n = PQntuples(r->res);
    Carrel__TransitListReply *reply = arena_new(&req->arena, Carrel__TransitListReply, 1);
    carrel__transit_list_reply__init(reply);
    reply->transits = arena_new(&req->arena, Carrel__Transit *, n + 1);
    for (int i = 0; i < n; i++)
        reply->transits[reply->n_transits++] = transit_row(req, r->res, i);
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
    request_db(req, &stmt_transits, 2, values, transits_done);
}

static void transit_cancelled_row(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_TRANSIT;
    req->resp.transit = PQntuples(r->res) ? transit_row(req, r->res, 0) : NULL;
    request_ok(req);
}

static void transit_cancelled(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    const char *values[1] = {holds_str(req, r->res, 0, 0)};
    request_db(req, &stmt_transit_cancel, 1, values, transit_cancelled_row);
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
    request_db(req, &stmt_transit_cancel_do, 3, values, transit_cancelled);
}

/* ---- for the account view (circ.c) ---- */

const db_stmt_t *holds_of_patron_statement(void)
{
    return &stmt_patron_holds;
}
