/*
 * schedule: staff schedules (proto/schedule.proto, Request fields 230-241):
 * service desks and their minimums, shifts, the week grid, coverage gaps,
 * time off, sick calls, open shifts and swaps, and a person's scheduling
 * facts. Every rule is in sql/rules/schedule.sql; each request is one
 * statement. Saves hand their message to SQL as jsonb (json_message, field
 * names as in the .proto). Changes that act on a branch get the caller's
 * scope: NULL for coordinators and admins (every branch), else the session
 * branch (perm_scope_param). The sick call's events reach the desks through
 * desk_event in SQL and events.c, like every other desk event.
 *
 * SQL functions return their columns in proto order and are read by
 * position (SELECT *), so the enums below are the contract: a shift is
 * SHIFT_NCOLS columns starting at some offset, a gap GAP_NCOLS.
 */
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "log.h"
#include "perm.h"
#include "pgtext.h"
#include "reply.h"

/* ScheduleGaps names at most this many branches (there are seven). */
#define SCHEDULE_MAX_BRANCHES 64
/* A branch code longer than this is no branch (codes are short). */
#define SCHEDULE_CODE_MAX 32
/* Bounds of text fields before SQL (request_fail_text), in bytes: user
 * names, codes, dates and actions are short; names, notes and reasons
 * (SQL: at most 100 / 200 characters) may be four bytes a character. */
#define SCHEDULE_SHORT_MAX 64
#define SCHEDULE_NAME_MAX  400
#define SCHEDULE_NOTE_MAX  800

/* shift_out, in proto order: the columns of a Shift, from an offset. */
enum {
    SHIFT_ID,
    SHIFT_USERNAME,
    SHIFT_STAFF_NAME,
    SHIFT_BRANCH,
    SHIFT_DESK,
    SHIFT_START,
    SHIFT_END,
    SHIFT_MIC,
    SHIFT_STATUS,
    SHIFT_NOTE,
    SHIFT_SWAP_ID,
    SHIFT_NCOLS
};

/* schedule_gaps' columns, in ScheduleGap order, from an offset. */
enum {
    GAP_BRANCH,
    GAP_DAY,
    GAP_START,
    GAP_END,
    GAP_KIND,
    GAP_DESK,
    GAP_NEEDED,
    GAP_SCHEDULED,
    GAP_TEXT,
    GAP_SESSION,
    GAP_NCOLS
};

/* desk_list / desk_save: one row per need of a desk (NULL needs: none). */
enum {
    DESK_ID,
    DESK_BRANCH,
    DESK_CODE,
    DESK_NAME,
    DESK_ACTIVE,
    DESK_NEED_WEEKDAYS,
    DESK_NEED_FROM,
    DESK_NEED_TO,
    DESK_NEED_STAFF,
    DESK_NCOLS
};
static const reply_stmt_t stmt_desk_list =
    REPLY_STMT("schedule_desk_list", DESK_NCOLS, "SELECT * FROM desk_list($1)");
static const reply_stmt_t stmt_desk_save = REPLY_STMT(
    "schedule_desk_save", DESK_NCOLS, "SELECT * FROM desk_save($1, $2, $3::integer, $4::jsonb)");

/* shift_save: made (or refused: reason and message), then the shift. */
enum { SAVE_MADE, SAVE_REASON, SAVE_MESSAGE, SAVE_SHIFT, SAVE_NCOLS = SAVE_SHIFT + SHIFT_NCOLS };
static const reply_stmt_t stmt_shift_save =
    REPLY_STMT("schedule_shift_save", SAVE_NCOLS,
               "SELECT * FROM shift_save($1::uuid, $2, $3, $4::integer, $5::boolean, $6::jsonb)");

/* shift_list, and each shift's length in hours for the reply's total. The
 * "mine" list looks 14 days ahead unless told ($6). */
enum { LIST_HOURS = SHIFT_NCOLS, LIST_NCOLS };
static const reply_stmt_t stmt_shift_list = REPLY_STMT(
    "schedule_shift_list", LIST_NCOLS,
    "SELECT s.*, (SELECT extract(epoch FROM upper(x.during) - lower(x.during)) / 3600.0"
    "               FROM shift x WHERE x.id = s.id)::float8"
    "  FROM shift_list($1, $2, $3,"
    "                  coalesce($4, CASE WHEN $6::boolean"
    "                                    THEN (local_day($3, 'from', library_today()) + 13)::text"
    "                               END),"
    "                  $5::boolean) s");

/* The branch, its week's Monday, then the grid's cells in order (none: a
 * row of NULLs, so an unknown branch is told from a closed week). */
enum {
    WEEK_BRANCH,
    WEEK_START,
    WEEK_DAY,
    WEEK_TIME,
    WEEK_DESK,
    WEEK_NEEDED,
    WEEK_NAMES,
    WEEK_DESK_NAME,
    WEEK_END,
    WEEK_NCOLS
};
static const reply_stmt_t stmt_week = REPLY_STMT(
    "schedule_week", WEEK_NCOLS,
    "SELECT b.code, schedule_week_start($2)::text, w.day::text, w.\"time\", w.desk_code, w.needed,"
    "       w.names, d.name, w.\"end\""
    "  FROM branch b"
    "  LEFT JOIN LATERAL schedule_week(b.code, $2) WITH ORDINALITY"
    "         AS w(day, \"time\", desk_code, needed, names, \"end\", n) ON true"
    "  LEFT JOIN service_desk d ON d.branch_id = b.id AND d.code = w.desk_code"
    " WHERE b.code = $1"
    " ORDER BY w.n");

/* The range (a week, or from/to), the first code that is no branch, then
 * the gaps (none: one row whose gap columns are NULL). With an unknown code
 * schedule_gaps is not called at all (a one-time filter). */
enum { GAPS_FROM, GAPS_TO, GAPS_UNKNOWN, GAPS_GAP, GAPS_NCOLS = GAPS_GAP + GAP_NCOLS };
static const reply_stmt_t stmt_gaps = REPLY_STMT(
    "schedule_gaps", GAPS_NCOLS,
    "WITH f AS (SELECT CASE WHEN $3::text IS NULL THEN schedule_week_start($2)"
    "                       ELSE local_day($3, 'from', NULL) END AS d_from),"
    "     r AS (SELECT d_from, CASE WHEN $3::text IS NULL THEN d_from + 6"
    "                               ELSE local_day($4, 'to', d_from + 6) END AS d_to FROM f),"
    "     b AS (SELECT (SELECT array_agg(id ORDER BY code) FROM branch"
    "                    WHERE $1::text[] IS NULL OR code = ANY ($1::text[])) AS ids,"
    "                  (SELECT min(c) FROM unnest($1::text[]) c"
    "                    WHERE NOT EXISTS (SELECT 1 FROM branch WHERE code = c)) AS unknown)"
    "SELECT r.d_from::text, r.d_to::text, b.unknown, g.branch_code, g.day::text, g.start,"
    "       g.\"end\", g.kind, g.desk_code, g.needed, g.scheduled, g.text, g.program_session_id"
    "  FROM r CROSS JOIN b"
    "  LEFT JOIN LATERAL (SELECT x.* FROM schedule_gaps(b.ids, r.d_from, r.d_to) WITH ORDINALITY"
    "                      AS x(branch_code, day, start, \"end\", kind, desk_code, needed,"
    "                           scheduled, text, program_session_id, n)"
    "                     WHERE b.unknown IS NULL) g ON true"
    " ORDER BY g.n");

/* time_off_save / time_off_list: TimeOff in proto order. */
enum {
    TIME_OFF_ID,
    TIME_OFF_USERNAME,
    TIME_OFF_START,
    TIME_OFF_END,
    TIME_OFF_STATUS,
    TIME_OFF_REASON,
    TIME_OFF_DECIDED_BY,
    TIME_OFF_DECISION_REASON,
    TIME_OFF_NCOLS
};
static const reply_stmt_t stmt_time_off_save =
    REPLY_STMT("schedule_time_off_save", TIME_OFF_NCOLS,
               "SELECT * FROM time_off_save($1, $2, $3::integer, $4::jsonb)");
static const reply_stmt_t stmt_time_off_list =
    REPLY_STMT("schedule_time_off_list", TIME_OFF_NCOLS,
               "SELECT * FROM time_off_list($1, $2, $3, $4, $5::boolean)");

/* schedule_absent: 'opened' rows carry a shift, 'gap' rows a gap. */
enum {
    ABSENT_KIND,
    ABSENT_SHIFT,
    ABSENT_GAP = ABSENT_SHIFT + SHIFT_NCOLS,
    ABSENT_NCOLS = ABSENT_GAP + GAP_NCOLS
};
static const reply_stmt_t stmt_absent =
    REPLY_STMT("schedule_absent", ABSENT_NCOLS,
               "SELECT * FROM schedule_absent($1::uuid, $2, $3, $4::integer, $5, $6, $7)");

/* shift_change and swap_list: 'shift' rows a shift, 'swap' rows a swap
 * (its shift, then the swap's own columns). */
enum {
    SWAP_KIND,
    SWAP_SHIFT,
    SWAP_ID = SWAP_SHIFT + SHIFT_NCOLS,
    SWAP_STATUS,
    SWAP_TO,
    SWAP_REQUESTED_BY,
    SWAP_DECIDED_BY,
    SWAP_WITH_SHIFT,
    SWAP_NCOLS
};
static const reply_stmt_t stmt_shift_change = REPLY_STMT(
    "schedule_shift_change", SWAP_NCOLS,
    "SELECT * FROM shift_change($1::uuid, $2, $3, $4::integer, $5::bigint, $6, $7, $8::bigint,"
    "                           $9::bigint)");
static const reply_stmt_t stmt_swap_list =
    REPLY_STMT("schedule_swap_list", SWAP_NCOLS, "SELECT * FROM swap_list($1, $2::boolean)");

enum {
    STAFF_USERNAME,
    STAFF_DISPLAY_NAME,
    STAFF_MIC,
    STAFF_MAX_HOURS,
    STAFF_BRANCHES,
    STAFF_NCOLS
};
static const reply_stmt_t stmt_staff_set =
    REPLY_STMT("schedule_staff_set", STAFF_NCOLS,
               "SELECT * FROM staff_schedule_set($1, $2, $3::integer, $4, $5::boolean,"
               "                                 $6::integer)");

void schedule_register_statements(void)
{
    static const reply_stmt_t *const all[] = {
        &stmt_desk_list, &stmt_desk_save,    &stmt_shift_save,    &stmt_shift_list,
        &stmt_week,      &stmt_gaps,         &stmt_time_off_save, &stmt_time_off_list,
        &stmt_absent,    &stmt_shift_change, &stmt_swap_list,     &stmt_staff_set,
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        db_stmt_register(&all[i]->db);
}

/* ---------------------------------------------------------------- shared */

static const char *schedule_bool(bool v)
{
    return v ? "true" : "false";
}

/* May the caller manage schedules (of their branch, for branch managers)? */
static bool schedule_may_manage(const request_t *req)
{
    perm_subject_t who = request_subject(req);
    return perm_check(&who, PERM_SCHEDULE_MANAGE, 0) == PERM_OK;
}

/* Answer FORBIDDEN role for a manager's action asked by another role. */
static void schedule_fail_manage(request_t *req, const char *what)
{
    request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "role",
                 "A %s may not %s; branch managers (for their branch), the coordinator and "
                 "administrators may.",
                 role_label(request_session(req)->role), what);
}

/* Text fields and their bounds, checked at once (request.h). */
#define SCHEDULE_TEXTS(req, ...) REQUEST_TEXTS(req, __VA_ARGS__)

/* The Shift whose SHIFT_NCOLS columns start at column `at` of row i. */
static Carrel__Shift *schedule_shift(request_t *req, const PGresult *res, int i, int at)
{
    Carrel__Shift *s = arena_new(&req->arena, Carrel__Shift, 1);
    carrel__shift__init(s);
    reply_int64_opt(res, i, at + SHIFT_ID, &s->has_id, &s->id);
    s->username = reply_text_opt(req, res, i, at + SHIFT_USERNAME);
    s->staff_name = reply_text_opt(req, res, i, at + SHIFT_STAFF_NAME);
    s->branch_code = reply_text_opt(req, res, i, at + SHIFT_BRANCH);
    s->desk_code = reply_text_opt(req, res, i, at + SHIFT_DESK);
    s->start = reply_text_opt(req, res, i, at + SHIFT_START);
    s->end = reply_text_opt(req, res, i, at + SHIFT_END);
    if (!db_null(res, i, at + SHIFT_MIC)) {
        s->has_mic = 1;
        s->mic = db_bool(res, i, at + SHIFT_MIC);
    }
    s->status = reply_text_opt(req, res, i, at + SHIFT_STATUS);
    s->note = reply_text_opt(req, res, i, at + SHIFT_NOTE);
    reply_int64_opt(res, i, at + SHIFT_SWAP_ID, &s->has_swap_id, &s->swap_id);
    return s;
}

/* The ScheduleGap whose GAP_NCOLS columns start at column `at` of row i. */
static Carrel__ScheduleGap *schedule_gap(request_t *req, const PGresult *res, int i, int at)
{
    Carrel__ScheduleGap *g = arena_new(&req->arena, Carrel__ScheduleGap, 1);
    carrel__schedule_gap__init(g);
    g->branch_code = reply_text_opt(req, res, i, at + GAP_BRANCH);
    g->date = reply_text_opt(req, res, i, at + GAP_DAY);
    g->start = reply_text_opt(req, res, i, at + GAP_START);
    g->end = reply_text_opt(req, res, i, at + GAP_END);
    g->kind = reply_text_opt(req, res, i, at + GAP_KIND);
    g->desk_code = reply_text_opt(req, res, i, at + GAP_DESK);
    reply_int32_opt(res, i, at + GAP_NEEDED, &g->has_needed, &g->needed);
    reply_int32_opt(res, i, at + GAP_SCHEDULED, &g->has_scheduled, &g->scheduled);
    g->text = reply_text_opt(req, res, i, at + GAP_TEXT);
    reply_int64_opt(res, i, at + GAP_SESSION, &g->has_program_session_id, &g->program_session_id);
    return g;
}

/* An arena array for up to n pointers (one more, so n may be 0). */
#define SCHEDULE_LIST(req, T, n) arena_new(&(req)->arena, T *, (size_t)(n) + 1)

/* ---------------------------------------------------------------- desks */

static Carrel__DeskNeed *desk_need(request_t *req, const PGresult *res, int i)
{
    Carrel__DeskNeed *n = arena_new(&req->arena, Carrel__DeskNeed, 1);
    carrel__desk_need__init(n);
    size_t nd = 0;
    char **days = pgtext_array_strings(&req->arena, COL(res, i, DESK_NEED_WEEKDAYS), &nd);
    n->weekdays = arena_new(&req->arena, int32_t, nd + 1);
    for (size_t k = 0; k < nd; k++)
        n->weekdays[n->n_weekdays++] = (int32_t)strtol(days[k], NULL, 10);
    n->from = reply_text_opt(req, res, i, DESK_NEED_FROM);
    n->to = reply_text_opt(req, res, i, DESK_NEED_TO);
    reply_int32_opt(res, i, DESK_NEED_STAFF, &n->has_staff, &n->staff);
    return n;
}

/* The desks of rows that come one row per need, a desk's rows together. */
static Carrel__ServiceDesk **desk_rows(request_t *req, const PGresult *res, size_t *count)
{
    int rows = PQntuples(res);
    Carrel__ServiceDesk **list = SCHEDULE_LIST(req, Carrel__ServiceDesk, rows);
    *count = 0;
    Carrel__ServiceDesk *d = NULL;
    for (int i = 0; i < rows; i++) {
        int64_t id = db_int64(res, i, DESK_ID);
        if (d == NULL || d->id != id) {
            d = arena_new(&req->arena, Carrel__ServiceDesk, 1);
            carrel__service_desk__init(d);
            d->has_id = 1;
            d->id = id;
            d->branch_code = reply_text_opt(req, res, i, DESK_BRANCH);
            d->code = reply_text_opt(req, res, i, DESK_CODE);
            d->name = reply_text_opt(req, res, i, DESK_NAME);
            d->has_active = 1;
            d->active = db_bool(res, i, DESK_ACTIVE);
            d->needs = SCHEDULE_LIST(req, Carrel__DeskNeed, rows - i);
            list[(*count)++] = d;
        }
        if (!db_null(res, i, DESK_NEED_STAFF))
            d->needs[d->n_needs++] = desk_need(req, res, i);
    }
    return list;
}

static void desk_list_done(request_t *req, const PGresult *res)
{
    Carrel__DeskListReply *reply = arena_new(&req->arena, Carrel__DeskListReply, 1);
    carrel__desk_list_reply__init(reply);
    reply->desks = desk_rows(req, res, &reply->n_desks);
    req->resp.body_case = CARREL__RESPONSE__BODY_DESKS;
    req->resp.desks = reply;
    request_ok(req);
}

void handle_desk_list(request_t *req)
{
    if (SCHEDULE_TEXTS(req, {req->msg->desk_list->branch, SCHEDULE_SHORT_MAX, "branch"}))
        return;
    const char *values[1] = {reply_opt(req->msg->desk_list->branch)};
    reply_query(req, &stmt_desk_list, 1, values, desk_list_done);
}

static void desk_save_done(request_t *req, const PGresult *res)
{
    size_t n = 0;
    Carrel__ServiceDesk **desks = desk_rows(req, res, &n);
    if (n != 1) {
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    log_info(req->conn->id, "%s saved desk %s at %s", request_session(req)->username,
             desks[0]->code, desks[0]->branch_code);
    req->resp.body_case = CARREL__RESPONSE__BODY_DESK;
    req->resp.desk = desks[0];
    request_ok(req);
}

void handle_desk_save(request_t *req)
{
    Carrel__DeskSave *m = req->msg->desk_save;
    if (m->desk == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:desk",
                     "The desk to save is missing.");
        return;
    }
    Carrel__ServiceDesk *d = m->desk;
    if (SCHEDULE_TEXTS(req, {d->branch_code, SCHEDULE_SHORT_MAX, "branch_code"},
                       {d->code, SCHEDULE_SHORT_MAX, "code"}, {d->name, SCHEDULE_NAME_MAX, "name"}))
        return;
    for (size_t i = 0; i < d->n_needs; i++)
        if (d->needs[i] && SCHEDULE_TEXTS(req, {d->needs[i]->from, SCHEDULE_SHORT_MAX, "needs"},
                                          {d->needs[i]->to, SCHEDULE_SHORT_MAX, "needs"}))
            return;
    perm_subject_t who = request_subject(req);
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[4] = {staff, ws, perm_scope_param(&req->arena, &who),
                             reply_json(req, &m->desk->base)};
    reply_query(req, &stmt_desk_save, 4, values, desk_save_done);
}

/* ---------------------------------------------------------------- shifts */

static void shift_save_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    Carrel__ShiftSaveReply *reply = arena_new(&req->arena, Carrel__ShiftSaveReply, 1);
    carrel__shift_save_reply__init(reply);
    reply->shifts = SCHEDULE_LIST(req, Carrel__Shift, rows);
    reply->refused = SCHEDULE_LIST(req, Carrel__ShiftRefusal, rows);
    for (int i = 0; i < rows; i++) {
        if (db_bool(res, i, SAVE_MADE)) {
            reply->shifts[reply->n_shifts++] = schedule_shift(req, res, i, SAVE_SHIFT);
            continue;
        }
        Carrel__ShiftRefusal *r = arena_new(&req->arena, Carrel__ShiftRefusal, 1);
        carrel__shift_refusal__init(r);
        r->start = reply_text_opt(req, res, i, SAVE_SHIFT + SHIFT_START);
        r->end = reply_text_opt(req, res, i, SAVE_SHIFT + SHIFT_END);
        r->reason = reply_text_opt(req, res, i, SAVE_REASON);
        r->message = reply_text_opt(req, res, i, SAVE_MESSAGE);
        reply->refused[reply->n_refused++] = r;
    }
    log_info(req->conn->id, "%s %s %zu shift(s), %zu refused", request_session(req)->username,
             req->msg->shift_save->remove ? "removed" : "saved", reply->n_shifts, reply->n_refused);
    req->resp.body_case = CARREL__RESPONSE__BODY_SHIFT_SAVE;
    req->resp.shift_save = reply;
    request_ok(req);
}

void handle_shift_save(request_t *req)
{
    Carrel__ShiftSave *m = req->msg->shift_save;
    if (m->shift == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:shift",
                     "The shift to save is missing.");
        return;
    }
    Carrel__Shift *sh = m->shift;
    if (SCHEDULE_TEXTS(req, {sh->username, SCHEDULE_SHORT_MAX, "username"},
                       {sh->branch_code, SCHEDULE_SHORT_MAX, "branch_code"},
                       {sh->desk_code, SCHEDULE_SHORT_MAX, "desk_code"},
                       {sh->start, SCHEDULE_SHORT_MAX, "start"},
                       {sh->end, SCHEDULE_SHORT_MAX, "end"}, {sh->note, SCHEDULE_NOTE_MAX, "note"},
                       {m->repeat, SCHEDULE_SHORT_MAX, "repeat"},
                       {m->until, SCHEDULE_SHORT_MAX, "until"}))
        return;
    /* What the server fills in is not the client's to send. */
    m->shift->staff_name = m->shift->status = NULL;
    m->shift->has_swap_id = 0;
    perm_subject_t who = request_subject(req);
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    /* Whoever may save shifts (the route: managers) may go beyond weekly
     * hours when the save says `override`. The request key, when sent,
     * makes the save once-only (a retried add makes no second shift). */
    const char *values[6] = {reply_opt(req->msg->request_key),
                             staff,
                             ws,
                             perm_scope_param(&req->arena, &who),
                             schedule_bool(schedule_may_manage(req)),
                             reply_json(req, &m->base)};
    reply_query(req, &stmt_shift_save, 6, values, shift_save_done);
}

static void shift_list_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    Carrel__ShiftListReply *reply = arena_new(&req->arena, Carrel__ShiftListReply, 1);
    carrel__shift_list_reply__init(reply);
    reply->shifts = SCHEDULE_LIST(req, Carrel__Shift, rows);
    reply->has_hours = 1;
    for (int i = 0; i < rows; i++) {
        Carrel__Shift *s = schedule_shift(req, res, i, 0);
        reply->shifts[reply->n_shifts++] = s;
        if (s->username && !db_null(res, i, LIST_HOURS))
            reply->hours += db_double(res, i, LIST_HOURS);
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_SHIFTS;
    req->resp.shifts = reply;
    request_ok(req);
}

void handle_shift_list(request_t *req)
{
    Carrel__ShiftList *m = req->msg->shift_list;
    bool mine = m->has_mine && m->mine;
    bool open_only = m->has_open_only && m->open_only;
    if (mine && reply_opt(m->username) &&
        strcmp(m->username, request_session(req)->username) != 0) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:username",
                     "Ask for your own shifts (mine) or for someone's (username), not both.");
        return;
    }
    if (SCHEDULE_TEXTS(req, {m->branch, SCHEDULE_SHORT_MAX, "branch"},
                       {m->username, SCHEDULE_SHORT_MAX, "username"},
                       {m->from, SCHEDULE_SHORT_MAX, "from"}, {m->to, SCHEDULE_SHORT_MAX, "to"}))
        return;
    const char *values[6] = {
        reply_opt(m->branch),
        /* Open shifts have nobody's name: "mine" with open_only lists them all. */
        mine ? (open_only ? NULL : request_session(req)->username) : reply_opt(m->username),
        reply_opt(m->from),
        reply_opt(m->to),
        schedule_bool(open_only),
        schedule_bool(mine),
    };
    reply_query(req, &stmt_shift_list, 6, values, shift_list_done);
}

/* ---------------------------------------------------------------- week and gaps */

/* The grid's rows: each desk code in the order the cells first name it. */
static void week_add_desk(request_t *req, Carrel__ScheduleWeekReply *reply, const PGresult *res,
                          int i)
{
    const char *code = COL(res, i, WEEK_DESK);
    for (size_t k = 0; k < reply->n_desks; k++)
        if (strcmp(reply->desks[k]->code, code) == 0)
            return;
    Carrel__ServiceDesk *d = arena_new(&req->arena, Carrel__ServiceDesk, 1);
    carrel__service_desk__init(d);
    d->branch_code = reply->branch_code;
    d->code = reply_text(req, res, i, WEEK_DESK);
    if (strcmp(code, "MIC") == 0)
        d->name = "Manager in charge";
    else if (code[0] == '\0')
        d->name = "Off desk";
    else
        d->name = reply_text_opt(req, res, i, WEEK_DESK_NAME);
    reply->desks[reply->n_desks++] = d;
}

/* The branch of a ScheduleWeek: the one named, else the session's. */
static const char *week_branch(request_t *req)
{
    const char *branch = reply_opt(req->msg->schedule_week->branch);
    return branch ? branch : request_session(req)->branch_code;
}

static void week_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    if (rows == 0) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:branch",
                     "No branch has the code %s.", week_branch(req));
        return;
    }
    Carrel__ScheduleWeekReply *reply = arena_new(&req->arena, Carrel__ScheduleWeekReply, 1);
    carrel__schedule_week_reply__init(reply);
    reply->branch_code = reply_text(req, res, 0, WEEK_BRANCH);
    reply->week_start = reply_text_opt(req, res, 0, WEEK_START);
    reply->desks = SCHEDULE_LIST(req, Carrel__ServiceDesk, rows);
    reply->cells = SCHEDULE_LIST(req, Carrel__ScheduleCell, rows);
    for (int i = 0; i < rows; i++) {
        if (db_null(res, i, WEEK_DAY)) /* a week the branch is closed */
            continue;
        week_add_desk(req, reply, res, i);
        Carrel__ScheduleCell *c = arena_new(&req->arena, Carrel__ScheduleCell, 1);
        carrel__schedule_cell__init(c);
        c->date = reply_text(req, res, i, WEEK_DAY);
        c->time = reply_text(req, res, i, WEEK_TIME);
        c->desk_code = reply_text(req, res, i, WEEK_DESK);
        reply_int32_opt(res, i, WEEK_NEEDED, &c->has_needed, &c->needed);
        c->names = pgtext_array_strings(&req->arena, COL(res, i, WEEK_NAMES), &c->n_names);
        c->end = reply_text_opt(req, res, i, WEEK_END);
        reply->cells[reply->n_cells++] = c;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_SCHEDULE_WEEK;
    req->resp.schedule_week = reply;
    request_ok(req);
}

void handle_schedule_week(request_t *req)
{
    Carrel__ScheduleWeek *m = req->msg->schedule_week;
    if (SCHEDULE_TEXTS(req, {m->branch, SCHEDULE_SHORT_MAX, "branch"},
                       {m->week, SCHEDULE_SHORT_MAX, "week"}))
        return;
    const char *values[2] = {week_branch(req), reply_opt(req->msg->schedule_week->week)};
    reply_query(req, &stmt_week, 2, values, week_done);
}

static void gaps_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    if (rows == 0) { /* the range row is always there */
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    if (!db_null(res, 0, GAPS_UNKNOWN)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:branch",
                     "No branch has the code %s.", COL(res, 0, GAPS_UNKNOWN));
        return;
    }
    Carrel__ScheduleGapsReply *reply = arena_new(&req->arena, Carrel__ScheduleGapsReply, 1);
    carrel__schedule_gaps_reply__init(reply);
    reply->from = reply_text_opt(req, res, 0, GAPS_FROM);
    reply->to = reply_text_opt(req, res, 0, GAPS_TO);
    reply->gaps = SCHEDULE_LIST(req, Carrel__ScheduleGap, rows);
    for (int i = 0; i < rows; i++)
        if (!db_null(res, i, GAPS_GAP + GAP_BRANCH))
            reply->gaps[reply->n_gaps++] = schedule_gap(req, res, i, GAPS_GAP);
    req->resp.body_case = CARREL__RESPONSE__BODY_SCHEDULE_GAPS;
    req->resp.schedule_gaps = reply;
    request_ok(req);
}

/*
 * The branches of a gap report, as a text[] literal (NULL: every branch).
 * Named codes are taken as they are (every role sees schedules); none
 * means every branch for the coordinator and administrators and the
 * session's branch for branch-bound roles. False when answered.
 */
static bool gaps_branches(request_t *req, char **codes, size_t n, const char **literal)
{
    if (n > SCHEDULE_MAX_BRANCHES) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:branch",
                     "Name at most %d branches (%zu were named).", SCHEDULE_MAX_BRANCHES, n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (codes[i] == NULL || codes[i][0] == '\0' || strlen(codes[i]) > SCHEDULE_CODE_MAX) {
            request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:branch",
                         "A branch code is empty or too long.");
            return false;
        }
    }
    const session_t *s = request_session(req);
    if (n == 0 && perm_role_is_branch_bound(s->role)) {
        char *own = arena_strdup(&req->arena, s->branch_code);
        *literal = pgtext_array_build(&req->arena, &own, 1);
        return true;
    }
    *literal = n > 0 ? pgtext_array_build(&req->arena, codes, n) : NULL;
    return true;
}

void handle_schedule_gaps(request_t *req)
{
    Carrel__ScheduleGaps *m = req->msg->schedule_gaps;
    if (SCHEDULE_TEXTS(req, {m->week, SCHEDULE_SHORT_MAX, "week"},
                       {m->from, SCHEDULE_SHORT_MAX, "from"}, {m->to, SCHEDULE_SHORT_MAX, "to"}))
        return;
    if (reply_opt(m->week) && (reply_opt(m->from) || reply_opt(m->to))) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:week",
                     "Give a week or a range of dates (from, to), not both.");
        return;
    }
    if (reply_opt(m->to) && !reply_opt(m->from)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:from",
                     "A range of dates needs its first day (from).");
        return;
    }
    const char *codes = NULL;
    if (!gaps_branches(req, m->branch, m->n_branch, &codes))
        return;
    const char *values[4] = {codes, reply_opt(m->week), reply_opt(m->from), reply_opt(m->to)};
    reply_query(req, &stmt_gaps, 4, values, gaps_done);
}

/* ---------------------------------------------------------------- time off */

static Carrel__TimeOff *time_off_row(request_t *req, const PGresult *res, int i)
{
    Carrel__TimeOff *t = arena_new(&req->arena, Carrel__TimeOff, 1);
    carrel__time_off__init(t);
    reply_int64_opt(res, i, TIME_OFF_ID, &t->has_id, &t->id);
    t->username = reply_text_opt(req, res, i, TIME_OFF_USERNAME);
    t->start = reply_text_opt(req, res, i, TIME_OFF_START);
    t->end = reply_text_opt(req, res, i, TIME_OFF_END);
    t->status = reply_text_opt(req, res, i, TIME_OFF_STATUS);
    t->reason = reply_text_opt(req, res, i, TIME_OFF_REASON);
    t->decided_by = reply_text_opt(req, res, i, TIME_OFF_DECIDED_BY);
    t->decision_reason = reply_text_opt(req, res, i, TIME_OFF_DECISION_REASON);
    return t;
}

static void time_off_save_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_TIME_OFF;
    req->resp.time_off = time_off_row(req, res, 0);
    log_info(req->conn->id, "%s: time off %lld of %s is %s", request_session(req)->username,
             (long long)req->resp.time_off->id, req->resp.time_off->username,
             req->resp.time_off->status);
    request_ok(req);
}

/*
 * Anyone asks for time off for themself and withdraws their own request;
 * asking for someone else, approving and denying are a manager's (SQL then
 * checks that the person works at a branch the manager may act for).
 */
void handle_time_off_save(request_t *req)
{
    Carrel__TimeOffSave *m = req->msg->time_off_save;
    if (m->time_off == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:time_off",
                     "The time off is missing.");
        return;
    }
    if (SCHEDULE_TEXTS(req, {m->action, SCHEDULE_SHORT_MAX, "action"},
                       {m->time_off->username, SCHEDULE_SHORT_MAX, "username"},
                       {m->time_off->start, SCHEDULE_SHORT_MAX, "start"},
                       {m->time_off->end, SCHEDULE_SHORT_MAX, "end"},
                       {m->time_off->reason, SCHEDULE_NOTE_MAX, "reason"}))
        return;
    const char *action = reply_opt(m->action) ? m->action : "request";
    const char *self = request_session(req)->username;
    bool for_other = reply_opt(m->time_off->username) && strcmp(m->time_off->username, self) != 0;
    bool decides = strcmp(action, "approve") == 0 || strcmp(action, "deny") == 0;
    if ((for_other || decides) && !schedule_may_manage(req)) {
        schedule_fail_manage(req, decides ? "approve or deny time off"
                                          : "ask for time off for someone else");
        return;
    }
    m->time_off->status = m->time_off->decided_by = m->time_off->decision_reason = NULL;
    if (!reply_opt(m->time_off->username) && strcmp(action, "request") == 0)
        m->time_off->username = (char *)self;
    perm_subject_t who = request_subject(req);
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[4] = {staff, ws, perm_scope_param(&req->arena, &who),
                             reply_json(req, &m->base)};
    reply_query(req, &stmt_time_off_save, 4, values, time_off_save_done);
}

static void time_off_list_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    Carrel__TimeOffListReply *reply = arena_new(&req->arena, Carrel__TimeOffListReply, 1);
    carrel__time_off_list_reply__init(reply);
    reply->entries = SCHEDULE_LIST(req, Carrel__TimeOff, rows);
    /* Why someone is away is theirs and their managers' to read. */
    bool manager = schedule_may_manage(req);
    const char *self = request_session(req)->username;
    for (int i = 0; i < rows; i++) {
        Carrel__TimeOff *t = time_off_row(req, res, i);
        if (!manager && (t->username == NULL || strcmp(t->username, self) != 0))
            t->reason = t->decision_reason = NULL;
        reply->entries[reply->n_entries++] = t;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_TIME_OFF_LIST;
    req->resp.time_off_list = reply;
    request_ok(req);
}

void handle_time_off_list(request_t *req)
{
    Carrel__TimeOffList *m = req->msg->time_off_list;
    if (SCHEDULE_TEXTS(req, {m->branch, SCHEDULE_SHORT_MAX, "branch"},
                       {m->username, SCHEDULE_SHORT_MAX, "username"},
                       {m->from, SCHEDULE_SHORT_MAX, "from"}, {m->to, SCHEDULE_SHORT_MAX, "to"}))
        return;
    const char *values[5] = {reply_opt(m->branch), reply_opt(m->username), reply_opt(m->from),
                             reply_opt(m->to), schedule_bool(m->has_pending && m->pending)};
    reply_query(req, &stmt_time_off_list, 5, values, time_off_list_done);
}

/* ---------------------------------------------------------------- sick call */

static void absent_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    Carrel__ScheduleAbsentReply *reply = arena_new(&req->arena, Carrel__ScheduleAbsentReply, 1);
    carrel__schedule_absent_reply__init(reply);
    reply->opened = SCHEDULE_LIST(req, Carrel__Shift, rows);
    reply->gaps = SCHEDULE_LIST(req, Carrel__ScheduleGap, rows);
    for (int i = 0; i < rows; i++) {
        const char *kind = COL(res, i, ABSENT_KIND);
        if (strcmp(kind, "opened") == 0)
            reply->opened[reply->n_opened++] = schedule_shift(req, res, i, ABSENT_SHIFT);
        else if (strcmp(kind, "gap") == 0)
            reply->gaps[reply->n_gaps++] = schedule_gap(req, res, i, ABSENT_GAP);
    }
    log_info(req->conn->id, "%s: sick call for %s: %zu shift(s) opened, %zu gap(s)",
             request_session(req)->username, req->msg->schedule_absent->username, reply->n_opened,
             reply->n_gaps);
    req->resp.body_case = CARREL__RESPONSE__BODY_SCHEDULE_ABSENT;
    req->resp.schedule_absent = reply;
    request_ok(req);
}

void handle_schedule_absent(request_t *req)
{
    Carrel__ScheduleAbsent *m = req->msg->schedule_absent;
    if (!reply_opt(m->username)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:username",
                     "Name the staff member who is absent.");
        return;
    }
    if (SCHEDULE_TEXTS(req, {m->username, SCHEDULE_SHORT_MAX, "username"},
                       {m->date, SCHEDULE_SHORT_MAX, "date"},
                       {m->reason, SCHEDULE_NOTE_MAX, "reason"}))
        return;
    perm_subject_t who = request_subject(req);
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[7] = {req->msg->request_key,
                             staff,
                             ws,
                             perm_scope_param(&req->arena, &who),
                             m->username,
                             reply_opt(m->date),
                             reply_opt(m->reason)};
    reply_query(req, &stmt_absent, 7, values, absent_done);
}

/* ---------------------------------------------------------------- offers and swaps */

/* The SwapRequest of a 'swap' row (its shift, then the swap's columns). */
static Carrel__SwapRequest *swap_row(request_t *req, const PGresult *res, int i)
{
    Carrel__SwapRequest *w = arena_new(&req->arena, Carrel__SwapRequest, 1);
    carrel__swap_request__init(w);
    reply_int64_opt(res, i, SWAP_ID, &w->has_id, &w->id);
    if (!db_null(res, i, SWAP_SHIFT + SHIFT_ID))
        w->shift = schedule_shift(req, res, i, SWAP_SHIFT);
    if (!db_null(res, i, SWAP_WITH_SHIFT)) {
        w->with_shift = arena_new(&req->arena, Carrel__Shift, 1);
        carrel__shift__init(w->with_shift);
        w->with_shift->has_id = 1;
        w->with_shift->id = db_int64(res, i, SWAP_WITH_SHIFT);
    }
    w->to_username = reply_text_opt(req, res, i, SWAP_TO);
    w->status = reply_text_opt(req, res, i, SWAP_STATUS);
    w->requested_by = reply_text_opt(req, res, i, SWAP_REQUESTED_BY);
    w->decided_by = reply_text_opt(req, res, i, SWAP_DECIDED_BY);
    return w;
}

static bool swap_is_swap_row(const PGresult *res, int i)
{
    return strcmp(COL(res, i, SWAP_KIND), "swap") == 0;
}

static void shift_change_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    Carrel__ShiftChangeReply *reply = arena_new(&req->arena, Carrel__ShiftChangeReply, 1);
    carrel__shift_change_reply__init(reply);
    reply->shifts = SCHEDULE_LIST(req, Carrel__Shift, rows);
    for (int i = 0; i < rows; i++) {
        if (swap_is_swap_row(res, i))
            reply->swap = swap_row(req, res, i);
        else
            reply->shifts[reply->n_shifts++] = schedule_shift(req, res, i, SWAP_SHIFT);
    }
    Carrel__ShiftChange *m = req->msg->shift_change;
    log_info(req->conn->id, "%s: %s shift %lld swap %lld", request_session(req)->username,
             m->action, (long long)m->shift_id, (long long)m->swap_id);
    req->resp.body_case = CARREL__RESPONSE__BODY_SHIFT_CHANGE;
    req->resp.shift_change = reply;
    request_ok(req);
}

static const char *const shift_actions[] = {"offer", "claim", "swap", "approve_swap", "deny_swap"};

/*
 * offer, claim and swap are everyone's (SQL: the owner or a manager of the
 * branch offers; an eligible person claims; the owner proposes a swap);
 * deciding a swap is a manager's. Each action names what it acts on.
 */
void handle_shift_change(request_t *req)
{
    Carrel__ShiftChange *m = req->msg->shift_change;
    if (SCHEDULE_TEXTS(req, {m->action, SCHEDULE_SHORT_MAX, "action"},
                       {m->to_username, SCHEDULE_SHORT_MAX, "to_username"}))
        return;
    bool known = false;
    for (size_t i = 0; m->action && i < sizeof(shift_actions) / sizeof(shift_actions[0]); i++)
        known = known || strcmp(m->action, shift_actions[i]) == 0;
    if (!known) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:action",
                     "The action must be offer, claim, swap, approve_swap or deny_swap.");
        return;
    }
    bool decides = strcmp(m->action, "approve_swap") == 0 || strcmp(m->action, "deny_swap") == 0;
    if (decides && !m->has_swap_id) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:swap_id",
                     "Name the swap request to %s.", m->action[0] == 'a' ? "approve" : "deny");
        return;
    }
    if (!decides && !m->has_shift_id) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:shift_id",
                     "Name the shift to %s.", m->action);
        return;
    }
    if (strcmp(m->action, "swap") == 0 && !reply_opt(m->to_username)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:to_username",
                     "Name the person to swap the shift with.");
        return;
    }
    if (decides && !schedule_may_manage(req)) {
        schedule_fail_manage(req, "approve or deny shift swaps");
        return;
    }
    arena_t *a = &req->arena;
    perm_subject_t who = request_subject(req);
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[9] = {
        req->msg->request_key,
        staff,
        ws,
        perm_scope_param(&req->arena, &who),
        m->has_shift_id ? pgtext_int(a, m->shift_id) : NULL,
        m->action,
        reply_opt(m->to_username),
        m->has_with_shift_id ? pgtext_int(a, m->with_shift_id) : NULL,
        m->has_swap_id ? pgtext_int(a, m->swap_id) : NULL,
    };
    reply_query(req, &stmt_shift_change, 9, values, shift_change_done);
}

static void swap_list_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    Carrel__SwapListReply *reply = arena_new(&req->arena, Carrel__SwapListReply, 1);
    carrel__swap_list_reply__init(reply);
    reply->swaps = SCHEDULE_LIST(req, Carrel__SwapRequest, rows);
    for (int i = 0; i < rows; i++)
        reply->swaps[reply->n_swaps++] = swap_row(req, res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_SWAPS;
    req->resp.swaps = reply;
    request_ok(req);
}

void handle_swap_list(request_t *req)
{
    Carrel__SwapList *m = req->msg->swap_list;
    if (SCHEDULE_TEXTS(req, {m->branch, SCHEDULE_SHORT_MAX, "branch"}))
        return;
    const char *values[2] = {reply_opt(m->branch), schedule_bool(m->has_pending && m->pending)};
    reply_query(req, &stmt_swap_list, 2, values, swap_list_done);
}

/* ---------------------------------------------------------------- a person's facts */

static void staff_set_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    Carrel__StaffScheduleInfo *s = arena_new(&req->arena, Carrel__StaffScheduleInfo, 1);
    carrel__staff_schedule_info__init(s);
    s->username = reply_text_opt(req, res, 0, STAFF_USERNAME);
    s->display_name = reply_text_opt(req, res, 0, STAFF_DISPLAY_NAME);
    s->has_mic_eligible = 1;
    s->mic_eligible = db_bool(res, 0, STAFF_MIC);
    reply_int32_opt(res, 0, STAFF_MAX_HOURS, &s->has_max_week_hours, &s->max_week_hours);
    s->branches = pgtext_array_strings(&req->arena, COL(res, 0, STAFF_BRANCHES), &s->n_branches);
    log_info(req->conn->id, "%s set %s: MIC %s, %d hours a week", request_session(req)->username,
             s->username, s->mic_eligible ? "yes" : "no", s->max_week_hours);
    req->resp.body_case = CARREL__RESPONSE__BODY_STAFF_SCHEDULE;
    req->resp.staff_schedule = s;
    request_ok(req);
}

void handle_staff_schedule_set(request_t *req)
{
    Carrel__StaffScheduleSet *m = req->msg->staff_schedule_set;
    if (!reply_opt(m->username)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:username",
                     "Name the staff member.");
        return;
    }
    if (SCHEDULE_TEXTS(req, {m->username, SCHEDULE_SHORT_MAX, "username"}))
        return;
    arena_t *a = &req->arena;
    perm_subject_t who = request_subject(req);
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[6] = {
        staff,
        ws,
        perm_scope_param(&req->arena, &who),
        m->username,
        m->has_mic_eligible ? schedule_bool(m->mic_eligible) : NULL,
        m->has_max_week_hours ? pgtext_int(a, m->max_week_hours) : NULL,
    };
    reply_query(req, &stmt_staff_set, 6, values, staff_set_done);
}
