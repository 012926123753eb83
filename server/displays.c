/*
 * displays: copies on a theme at a place in a branch for a while
 * (proto/collections.proto, Request fields 335-339): setting a display up,
 * editing and ending it, the list, copies scanned on and off, one display
 * with its copies, and its report (lift against the same copies before and
 * against a control group).
 *
 * Every rule is in sql/rules/displays.sql: each request is one statement.
 * A save hands its Display to SQL as jsonb (json_message, field names as in
 * the .proto); rows come back in proto order (Display, DisplayItem) and are
 * read by position through the enums below. What C does itself: the sizes
 * of fields, the defaults of a new display (the session's branch, the
 * caller as curator), and the scope of the caller (perm_scope_param: NULL
 * for coordinators and admins, else the session branch, which SQL enforces
 * with CR403 branch). Scanning a copy on or off is keyed (the route requires
 * the request key), so a scanner's retry applies once.
 *
 * The item rows of catalog.c carry the display a copy is on
 * (item_display_text), and checkin's route "display" comes from circ.c: a
 * display needs nothing from this file to be seen at the desks.
 */
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "log.h"
#include "perm.h"
#include "pgtext.h"
#include "reply.h"

/* Bounds of text fields before SQL (request_fail_text), in bytes: place and
 * theme are 100 characters, a note 500, each up to four bytes; codes, user
 * names, days and barcodes are short. */
#define DISPLAY_SHORT_MAX 64
#define DISPLAY_NAME_MAX  400
#define DISPLAY_NOTE_MAX  2000

/* display_save / display_list / display_get: Display in proto order. */
enum {
    DSP_ID,
    DSP_BRANCH,
    DSP_PLACE,
    DSP_THEME,
    DSP_CURATOR,
    DSP_STARTS_ON,
    DSP_ENDS_ON,
    DSP_STATUS,
    DSP_COPIES,
    DSP_NOTE,
    DSP_VERSION,
    DSP_NCOLS
};
static const reply_stmt_t stmt_save =
    REPLY_STMT("display_save", DSP_NCOLS,
               "SELECT * FROM display_save($1, $2, $3::integer, $4::jsonb, $5::boolean)");
static const reply_stmt_t stmt_list =
    REPLY_STMT("display_list", DSP_NCOLS, "SELECT * FROM display_list($1, $2::boolean)");

/* display_items: DisplayItem in proto order, starting at column c0. */
enum {
    DI_BARCODE,
    DI_TITLE,
    DI_CALL_NUMBER,
    DI_ADDED_ON,
    DI_REMOVED_ON,
    DI_STATUS,
    DI_CHECKOUTS,
    DI_NCOLS
};

/* display_item_add: the display's id, the copy (DisplayItem), the copies now, a message. */
enum { ADD_DISPLAY_ID, ADD_ITEM, ADD_COPIES = ADD_ITEM + DI_NCOLS, ADD_MESSAGE, ADD_NCOLS };
static const reply_stmt_t stmt_item_add = REPLY_STMT(
    "display_item_add", ADD_NCOLS,
    "SELECT * FROM display_item_add($1::uuid, $2, $3, $4::integer, $5::bigint, $6, $7::boolean)");

/* DisplayShow in one statement (one snapshot): the display on every row, then
 * one of its copies (none: the copy's columns NULL). An unknown display gives
 * no row. */
enum { SHOW_DISPLAY, SHOW_ITEM = SHOW_DISPLAY + DSP_NCOLS, SHOW_NCOLS = SHOW_ITEM + DI_NCOLS };
static const reply_stmt_t stmt_show =
    REPLY_STMT("display_show", SHOW_NCOLS,
               "SELECT d.*, i.* FROM display_get($1::bigint) d"
               " LEFT JOIN LATERAL display_items($1::bigint) i ON true");

/* display_report: the display, the periods and counts, the ratios, its
 * strata as jsonb (unpacked here into one stratum a row, so C reads no
 * JSON), and the note. An unknown display gives no row. */
enum {
    REP_DISPLAY,
    REP_DURING_FROM = REP_DISPLAY + DSP_NCOLS,
    REP_DURING_TO,
    REP_BEFORE_FROM,
    REP_BEFORE_TO,
    REP_DAYS,
    REP_COPIES,
    REP_USES_DURING,
    REP_USES_BEFORE,
    REP_CONTROL_COPIES,
    REP_CONTROL_DURING,
    REP_CONTROL_BEFORE,
    REP_LIFT_VS_BEFORE,
    REP_LIFT_VS_CONTROL,
    REP_CONTROL_CHANGE,
    REP_NET_LIFT,
    REP_STRATA,
    REP_NOTE,
    REP_S_COLLECTION,
    REP_S_AGE_BAND,
    REP_S_COPIES,
    REP_S_CONTROL_COPIES,
    REP_NCOLS
};
static const reply_stmt_t stmt_report = REPLY_STMT(
    "display_report", REP_NCOLS,
    "SELECT r.*, s.collection, s.age_band, s.copies, s.control_copies"
    "  FROM display_report($1::bigint) r"
    "  LEFT JOIN LATERAL jsonb_to_recordset(coalesce(r.strata, '[]'::jsonb))"
    "       AS s(collection text, age_band text, copies integer, control_copies integer) ON true");

void displays_register_statements(void)
{
    static const reply_stmt_t *const all[] = {&stmt_save, &stmt_list, &stmt_item_add, &stmt_show,
                                              &stmt_report};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        db_stmt_register(&all[i]->db);
}

/* ---------------------------------------------------------------- shared */

/* A display's id: 1 or more; true if answered (BAD_REQUEST field:<field>). */
static bool display_fail_id(request_t *req, bool has, int64_t id, const char *field)
{
    return request_bad_field(req, !has || id < 1, field,
                             "Name the display by its number (1 or more).");
}

/* A Display from the columns starting at c0. */
static Carrel__Display *display_from_row(request_t *req, const PGresult *res, int i, int c0)
{
    Carrel__Display *d = arena_new(&req->arena, Carrel__Display, 1);
    carrel__display__init(d);
    reply_int64_opt(res, i, c0 + DSP_ID, &d->has_id, &d->id);
    d->branch_code = reply_text_opt(req, res, i, c0 + DSP_BRANCH);
    d->place = reply_text_opt(req, res, i, c0 + DSP_PLACE);
    d->theme = reply_text_opt(req, res, i, c0 + DSP_THEME);
    d->curator = reply_text_opt(req, res, i, c0 + DSP_CURATOR);
    d->starts_on = reply_text_opt(req, res, i, c0 + DSP_STARTS_ON);
    d->ends_on = reply_text_opt(req, res, i, c0 + DSP_ENDS_ON);
    d->status = reply_text_opt(req, res, i, c0 + DSP_STATUS);
    reply_int32_opt(res, i, c0 + DSP_COPIES, &d->has_copies, &d->copies);
    d->note = reply_text_opt(req, res, i, c0 + DSP_NOTE);
    reply_int32_opt(res, i, c0 + DSP_VERSION, &d->has_version, &d->version);
    return d;
}

/* A DisplayItem from the columns starting at c0. */
static Carrel__DisplayItem *display_item_from_row(request_t *req, const PGresult *res, int i,
                                                  int c0)
{
    Carrel__DisplayItem *it = arena_new(&req->arena, Carrel__DisplayItem, 1);
    carrel__display_item__init(it);
    it->barcode = reply_text_opt(req, res, i, c0 + DI_BARCODE);
    it->title = reply_text_opt(req, res, i, c0 + DI_TITLE);
    it->call_number = reply_text_opt(req, res, i, c0 + DI_CALL_NUMBER);
    it->added_on = reply_text_opt(req, res, i, c0 + DI_ADDED_ON);
    it->removed_on = reply_text_opt(req, res, i, c0 + DI_REMOVED_ON);
    it->status = reply_text_opt(req, res, i, c0 + DI_STATUS);
    reply_int32_opt(res, i, c0 + DI_CHECKOUTS, &it->has_checkouts, &it->checkouts);
    return it;
}

/* ---------------------------------------------------------------- save */

static void save_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        log_error(req->conn->id, "display_save returned %d rows", PQntuples(res));
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    Carrel__Display *d = display_from_row(req, res, 0, 0);
    const Carrel__DisplaySave *m = req->msg->display_save;
    log_info(req->conn->id, "%s %s display %lld at %s (%s)", request_session(req)->username,
             m->has_end_now && m->end_now ? "ended"
             : m->display->has_id         ? "changed"
                                          : "set up",
             (long long)d->id, d->branch_code ? d->branch_code : "?", d->status ? d->status : "?");
    req->resp.body_case = CARREL__RESPONSE__BODY_DISPLAY;
    req->resp.display = d;
    request_ok(req);
}

/*
 * Create (no id) or edit a display; end_now ends it today. Librarians and up
 * (the route's PERM_DISPLAY_MANAGE), of the display's branch (SQL, by scope).
 * A new display without a branch is at the session's branch, and without a
 * curator it is the caller's; an edit leaves what it does not name to SQL
 * (the branch is never filled in: a coordinator editing another branch's
 * display must not move it).
 */
void handle_display_save(request_t *req)
{
    Carrel__DisplaySave *m = req->msg->display_save;
    Carrel__Display *d = m->display;
    if (d == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:display",
                     "Send the display to save.");
        return;
    }
    if (d->has_id && display_fail_id(req, true, d->id, "id"))
        return;
    if (m->has_end_now && m->end_now && !d->has_id) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:id",
                     "Name the display to end by its number.");
        return;
    }
    if (REQUEST_TEXTS(req, {d->branch_code, DISPLAY_SHORT_MAX, "branch_code"},
                      {d->place, DISPLAY_NAME_MAX, "place"}, {d->theme, DISPLAY_NAME_MAX, "theme"},
                      {d->curator, DISPLAY_SHORT_MAX, "curator"},
                      {d->starts_on, DISPLAY_SHORT_MAX, "starts_on"},
                      {d->ends_on, DISPLAY_SHORT_MAX, "ends_on"},
                      {d->note, DISPLAY_NOTE_MAX, "note"}))
        return;
    /* What the server sets is not the caller's to send. */
    d->status = NULL;
    d->has_copies = 0;
    if (!d->has_id) {
        const session_t *s = request_session(req);
        if (!reply_opt(d->branch_code))
            d->branch_code = (char *)s->branch_code;
        if (!reply_opt(d->curator))
            d->curator = (char *)s->username;
    }
    perm_subject_t who = request_subject(req);
    const char *values[5];
    reply_actor(req, &values[0], &values[1]);
    values[2] = perm_scope_param(&req->arena, &who);
    values[3] = reply_json(req, &d->base);
    values[4] = pgtext_bool(m->has_end_now && m->end_now);
    reply_query(req, &stmt_save, 5, values, save_done);
}

/* ---------------------------------------------------------------- list */

static void list_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    Carrel__DisplayListReply *reply = arena_new(&req->arena, Carrel__DisplayListReply, 1);
    carrel__display_list_reply__init(reply);
    reply->displays = REQUEST_LIST(req, Carrel__Display, rows);
    for (int i = 0; i < rows; i++)
        reply->displays[reply->n_displays++] = display_from_row(req, res, i, 0);
    req->resp.body_case = CARREL__RESPONSE__BODY_DISPLAYS;
    req->resp.displays = reply;
    request_ok(req);
}

/* Every branch's displays unless one is named (PERM_DISPLAY_READ is system-wide). */
void handle_display_list(request_t *req)
{
    Carrel__DisplayList *m = req->msg->display_list;
    if (REQUEST_TEXTS(req, {m->branch_code, DISPLAY_SHORT_MAX, "branch_code"}))
        return;
    const char *values[2] = {reply_opt(m->branch_code),
                             pgtext_bool(m->has_include_ended && m->include_ended)};
    reply_query(req, &stmt_list, 2, values, list_done);
}

/* ---------------------------------------------------------------- copies */

static void item_add_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        log_error(req->conn->id, "display_item_add returned %d rows", PQntuples(res));
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    Carrel__DisplayItemReply *reply = arena_new(&req->arena, Carrel__DisplayItemReply, 1);
    carrel__display_item_reply__init(reply);
    reply_int64_opt(res, 0, ADD_DISPLAY_ID, &reply->has_display_id, &reply->display_id);
    reply->item = display_item_from_row(req, res, 0, ADD_ITEM);
    reply_int32_opt(res, 0, ADD_COPIES, &reply->has_copies, &reply->copies);
    reply->message = reply_text_opt(req, res, 0, ADD_MESSAGE);
    const Carrel__DisplayItemAdd *m = req->msg->display_item_add;
    log_info(req->conn->id, "%s %s %s display %lld", request_session(req)->username,
             m->has_remove && m->remove ? "took off" : "put on",
             reply->item->barcode ? reply->item->barcode : "?", (long long)m->display_id);
    req->resp.body_case = CARREL__RESPONSE__BODY_DISPLAY_ITEM;
    req->resp.display_item = reply;
    request_ok(req);
}

/*
 * One copy scanned onto a display, or taken off it (remove). Anyone at the
 * display's branch (PERM_DISPLAY_ITEMS; the branch by scope in SQL); keyed.
 */
void handle_display_item_add(request_t *req)
{
    Carrel__DisplayItemAdd *m = req->msg->display_item_add;
    if (display_fail_id(req, m->has_display_id, m->display_id, "display_id"))
        return;
    if (!reply_opt(m->barcode)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:barcode",
                     "Scan the copy's barcode.");
        return;
    }
    if (REQUEST_TEXTS(req, {m->barcode, DISPLAY_SHORT_MAX, "barcode"}))
        return;
    perm_subject_t who = request_subject(req);
    const char *values[7];
    values[0] = req->msg->request_key;
    reply_actor(req, &values[1], &values[2]);
    values[3] = perm_scope_param(&req->arena, &who);
    values[4] = pgtext_int(&req->arena, m->display_id);
    values[5] = m->barcode;
    values[6] = pgtext_bool(m->has_remove && m->remove);
    reply_query(req, &stmt_item_add, 7, values, item_add_done);
}

/* ---------------------------------------------------------------- show */

static void show_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    if (rows == 0) {
        request_fail_reason(req, REASON_DISPLAY);
        return;
    }
    Carrel__DisplayShowReply *reply = arena_new(&req->arena, Carrel__DisplayShowReply, 1);
    carrel__display_show_reply__init(reply);
    reply->display = display_from_row(req, res, 0, SHOW_DISPLAY);
    reply->items = REQUEST_LIST(req, Carrel__DisplayItem, rows);
    for (int i = 0; i < rows; i++)
        if (!db_null(res, i, SHOW_ITEM + DI_BARCODE))
            reply->items[reply->n_items++] = display_item_from_row(req, res, i, SHOW_ITEM);
    req->resp.body_case = CARREL__RESPONSE__BODY_DISPLAY_SHOW;
    req->resp.display_show = reply;
    request_ok(req);
}

void handle_display_show(request_t *req)
{
    Carrel__DisplayShow *m = req->msg->display_show;
    if (display_fail_id(req, m->has_id, m->id, "id"))
        return;
    const char *values[1] = {pgtext_int(&req->arena, m->id)};
    reply_query(req, &stmt_show, 1, values, show_done);
}

/* ---------------------------------------------------------------- report */

static void report_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    if (rows == 0) {
        request_fail_reason(req, REASON_DISPLAY);
        return;
    }
    Carrel__DisplayReportReply *r = arena_new(&req->arena, Carrel__DisplayReportReply, 1);
    carrel__display_report_reply__init(r);
    r->display = display_from_row(req, res, 0, REP_DISPLAY);
    r->during_from = reply_text_opt(req, res, 0, REP_DURING_FROM);
    r->during_to = reply_text_opt(req, res, 0, REP_DURING_TO);
    r->before_from = reply_text_opt(req, res, 0, REP_BEFORE_FROM);
    r->before_to = reply_text_opt(req, res, 0, REP_BEFORE_TO);
    reply_int32_opt(res, 0, REP_DAYS, &r->has_days, &r->days);
    reply_int32_opt(res, 0, REP_COPIES, &r->has_copies, &r->copies);
    reply_int32_opt(res, 0, REP_USES_DURING, &r->has_uses_during, &r->uses_during);
    reply_int32_opt(res, 0, REP_USES_BEFORE, &r->has_uses_before, &r->uses_before);
    reply_int32_opt(res, 0, REP_CONTROL_COPIES, &r->has_control_copies, &r->control_copies);
    reply_int32_opt(res, 0, REP_CONTROL_DURING, &r->has_control_during, &r->control_during);
    reply_int32_opt(res, 0, REP_CONTROL_BEFORE, &r->has_control_before, &r->control_before);
    reply_double_opt(res, 0, REP_LIFT_VS_BEFORE, &r->has_lift_vs_before, &r->lift_vs_before);
    reply_double_opt(res, 0, REP_LIFT_VS_CONTROL, &r->has_lift_vs_control, &r->lift_vs_control);
    reply_double_opt(res, 0, REP_CONTROL_CHANGE, &r->has_control_change, &r->control_change);
    reply_double_opt(res, 0, REP_NET_LIFT, &r->has_net_lift, &r->net_lift);
    r->note = reply_text_opt(req, res, 0, REP_NOTE);
    r->strata = REQUEST_LIST(req, Carrel__DisplayStratum, rows);
    for (int i = 0; i < rows; i++) {
        if (db_null(res, i, REP_S_AGE_BAND) && db_null(res, i, REP_S_COLLECTION) &&
            db_null(res, i, REP_S_COPIES))
            continue; /* no strata: the one row of the report */
        Carrel__DisplayStratum *s = arena_new(&req->arena, Carrel__DisplayStratum, 1);
        carrel__display_stratum__init(s);
        s->collection = reply_text_opt(req, res, i, REP_S_COLLECTION);
        s->age_band = reply_text_opt(req, res, i, REP_S_AGE_BAND);
        reply_int32_opt(res, i, REP_S_COPIES, &s->has_copies, &s->copies);
        reply_int32_opt(res, i, REP_S_CONTROL_COPIES, &s->has_control_copies, &s->control_copies);
        r->strata[r->n_strata++] = s;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_DISPLAY_REPORT;
    req->resp.display_report = r;
    request_ok(req);
}

void handle_display_report(request_t *req)
{
    Carrel__DisplayReport *m = req->msg->display_report;
    if (display_fail_id(req, m->has_id, m->id, "id"))
        return;
    const char *values[1] = {pgtext_int(&req->arena, m->id)};
    reply_query(req, &stmt_report, 1, values, report_done);
}
