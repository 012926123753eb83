/*
 * rooms: rooms, room categories, bookings and programs (Request fields
 * 200-213), and the rooms timer.
 *
 * Every rule lives in sql/rules/rooms.sql and programs.sql: each change is
 * one call of a function there, each list one SELECT of one. Saves hand
 * the proto message to SQL as JSON (json_message, field names as in
 * rooms.proto), like PatronSave. The functions return rows in proto field
 * order (room_out, booking_out, session_out, program_out), read here by
 * position through one enum per row type.
 *
 * Permissions: the route checks the action with no target; branch-bound
 * roles then act for their session branch only, which SQL enforces with
 * p_scope (NULL: every branch). What C checks itself is what needs no
 * database: the shapes and sizes of fields, overrides and recurring
 * bookings (librarians and up), the actions of RoomChange.
 *
 * The rooms timer runs rooms_tick() on the primary every
 * rooms_tick_interval_s: no-shows released, ended bookings completed,
 * reminders queued, old bookings anonymised: a jobtimer (one run at a
 * time; the server stops and closes it as the other jobs).
 */
#include "rooms.h"

#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "log.h"
#include "pgtext.h"
#include "reply.h"
#include "util.h"

#define ROOMS_FEATURES_MAX     32  /* features of a room or asked for */
#define ROOMS_FEATURE_LEN      40  /* bytes of one feature word */
#define ROOMS_PARTS_MAX        16  /* parts of a split room */
#define ROOMS_TEXT_MAX         200 /* a name, purpose, group, reason, branch or card */
#define ROOMS_DESCRIPTION_MAX  4000
#define ROOMS_CAPACITY_MAX     100000
#define ROOMS_DAYS_MAX         90
#define ROOMS_ATTENDANCE_MAX   100000
#define ROOMS_BOOKINGS_DEFAULT 200
#define ROOMS_BOOKINGS_MAX     2000

/* ---------------------------------------------------------------- row types */

/* room_out (sql/rules/rooms.sql), Room's field order. */
enum {
    ROOM_ID,
    ROOM_BRANCH_CODE,
    ROOM_NAME,
    ROOM_CAPACITY,
    ROOM_FEATURES,
    ROOM_BOOKABLE_BY,
    ROOM_CATEGORY,
    ROOM_PART_IDS,
    ROOM_ACTIVE,
    ROOM_PART_NAMES,
    ROOM_WHOLE_NAMES,
    ROOM_BOOKINGS_TODAY,
    ROOM_BOOKED_MINUTES_TODAY,
    ROOM_OPEN_MINUTES_TODAY,
    ROOM_NOW,
    ROOM_SLOT_MINUTES,
    ROOM_NCOLS
};

/* booking_out, RoomBooking's field order. */
enum {
    BK_ID,
    BK_ROOM_ID,
    BK_ROOM_NAME,
    BK_BRANCH_CODE,
    BK_START,
    BK_END,
    BK_STATUS,
    BK_CARD,
    BK_PATRON_NAME,
    BK_GROUP_NAME,
    BK_GROUP_CONTACT,
    BK_PROGRAM_SESSION_ID,
    BK_PROGRAM_TITLE,
    BK_PURPOSE,
    BK_ATTENDEES,
    BK_BLOCKED_FROM,
    BK_BLOCKED_TO,
    BK_CANCEL_REASON,
    BK_SERIES_ID,
    BK_CHECKED_IN_AT,
    BK_CREATED_AT,
    BK_CREATED_BY,
    BK_OVERRIDDEN,
    BK_NCOLS
};

/* room_category, RoomCategory's field order. */
enum {
    CAT_CODE,
    CAT_NAME,
    CAT_MIN_MINUTES,
    CAT_MAX_MINUTES,
    CAT_SLOT_MINUTES,
    CAT_DAYS_AHEAD,
    CAT_MAX_BOOKINGS,
    CAT_MAX_HOURS_WEEK,
    CAT_MAX_HOURS_MONTH,
    CAT_GAP_MINUTES,
    CAT_SETUP_MINUTES,
    CAT_CLEANUP_MINUTES,
    CAT_NEEDS_APPROVAL,
    CAT_CHECKIN_MINUTES,
    CAT_NCOLS
};

/* program_out, Program's field order without sessions. */
enum {
    PRG_ID,
    PRG_TITLE,
    PRG_DESCRIPTION,
    PRG_AUDIENCE,
    PRG_VENUE,
    PRG_BRANCH_CODE,
    PRG_LOCATION,
    PRG_PRESENTER,
    PRG_STAFF_USERNAME,
    PRG_CATEGORY,
    PRG_CANCELLED,
    PRG_NCOLS
};

/* session_out, ProgramSession's field order. */
enum {
    SES_ID,
    SES_PROGRAM_ID,
    SES_START,
    SES_END,
    SES_ROOM_ID,
    SES_BOOKING_ID,
    SES_ROOM_NAME,
    SES_ATTENDANCE,
    SES_CANCELLED,
    SES_STAFF_USERNAME,
    SES_STAFF_SCHEDULED,
    SES_NCOLS
};

/* The outcome columns in front of a made-or-refused row (room_book, program_session_save). */
enum { OUT_MADE, OUT_REASON, OUT_MESSAGE, OUT_NCOLS };

/* ---------------------------------------------------------------- statements */

/* RoomList: the day first, so that an empty list still says which day it is. */
enum { LIST_DAY, LIST_ROOM, LIST_NCOLS = LIST_ROOM + ROOM_NCOLS };
static const reply_stmt_t stmt_room_list =
    REPLY_STMT("room_list", LIST_NCOLS,
               "SELECT d.day::text, r.* FROM (SELECT local_day($2, 'date', library_today()) AS day)"
               " d LEFT JOIN LATERAL room_list($1, $2, $3) r ON true");

/* $5: the document's keys to leave out (lists sent empty: "unchanged" on an edit). */
static const reply_stmt_t stmt_room_save = REPLY_STMT(
    "room_save", ROOM_NCOLS, "SELECT * FROM room_save($1, $2, $3, $4::jsonb - $5::text[])");

static const reply_stmt_t stmt_category_list =
    REPLY_STMT("room_category_list", CAT_NCOLS, "SELECT * FROM room_category_list()");

static const reply_stmt_t stmt_category_save = REPLY_STMT(
    "room_category_save", CAT_NCOLS, "SELECT * FROM room_category_save($1, $2, $3::jsonb)");

/* RoomFree in one statement: a row per room, room order — the room (room_free_rooms: the
 * same filters, the first day's occupancy) and its days as array elements
 * (room_free_grid; 30 rows instead of 2,700 cost the database and this loop much less). */
enum { FREE_DAYS = ROOM_NCOLS, FREE_OPENS, FREE_CLOSES, FREE_FREE, FREE_CLOSED, FREE_NCOLS };
#define FREE_NPARAMS 7
static const reply_stmt_t stmt_room_free =
    REPLY_STMT("room_free_grid", FREE_NCOLS,
               "SELECT o.*, g.days, g.opens, g.closes, g.free, g.closed"
               " FROM room_free_grid($1, $2, $3, $4, $5, $6::text[], $7)"
               "      WITH ORDINALITY g (room_id, days, opens, closes, free, closed, n)"
               " JOIN room_free_rooms($1, $2, $4, $5, $6::text[], $7) o ON o.id = g.room_id"
               " ORDER BY g.n");

enum { BOOK_NCOLS = OUT_NCOLS + BK_NCOLS };
static const reply_stmt_t stmt_room_book =
    REPLY_STMT("room_book", BOOK_NCOLS, "SELECT * FROM room_book($1::uuid, $2, $3, $4, $5::jsonb)");

static const reply_stmt_t stmt_room_change = REPLY_STMT(
    "room_change", BK_NCOLS, "SELECT * FROM room_change($1::uuid, $2, $3, $4, $5, $6, $7, $8)");

/* RoomBookings: the no-show count first, so that it comes with no bookings too. */
enum { BKS_NO_SHOWS, BKS_BOOKING, BKS_NCOLS = BKS_BOOKING + BK_NCOLS };
static const reply_stmt_t stmt_room_bookings =
    REPLY_STMT("room_bookings", BKS_NCOLS,
               "SELECT n.no_shows, b.* FROM (SELECT CASE WHEN coalesce($1, '') <> ''"
               " THEN room_patron_no_shows($1) END AS no_shows) n"
               " LEFT JOIN LATERAL room_bookings($1, $2, $3, $4, $5, $6, $7) b ON true");

static const reply_stmt_t stmt_program_save =
    REPLY_STMT("program_save", PRG_NCOLS, "SELECT * FROM program_save($1, $2, $3, $4::jsonb)");

enum { SESSION_SAVE_NCOLS = OUT_NCOLS + SES_NCOLS };
static const reply_stmt_t stmt_session_save =
    REPLY_STMT("program_session_save", SESSION_SAVE_NCOLS,
               "SELECT * FROM program_session_save($1::uuid, $2, $3, $4, $5, $6::jsonb)");

static const reply_stmt_t stmt_attendance = REPLY_STMT(
    "program_attendance", SES_NCOLS, "SELECT * FROM program_attendance($1, $2, $3, $4, $5)");

/* ProgramList: kind ('program' | 'session'), a program_out, a session_out. */
enum {
    PL_KIND,
    PL_PROGRAM,
    PL_SESSION = PL_PROGRAM + PRG_NCOLS,
    PL_NCOLS = PL_SESSION + SES_NCOLS
};
static const reply_stmt_t stmt_program_list =
    REPLY_STMT("program_list", PL_NCOLS, "SELECT * FROM program_list($1, $2, $3, $4, $5)");

enum { TICK_RELEASED, TICK_COMPLETED, TICK_REMINDED, TICK_ANONYMISED, TICK_NCOLS };
static const db_stmt_t stmt_tick = {"rooms_tick", "SELECT released, completed, reminded,"
                                                  " anonymised FROM rooms_tick()"};

void rooms_register_statements(void)
{
    db_stmt_register(&stmt_room_list.db);
    db_stmt_register(&stmt_room_save.db);
    db_stmt_register(&stmt_category_list.db);
    db_stmt_register(&stmt_category_save.db);
    db_stmt_register(&stmt_room_free.db);
    db_stmt_register(&stmt_room_book.db);
    db_stmt_register(&stmt_room_change.db);
    db_stmt_register(&stmt_room_bookings.db);
    db_stmt_register(&stmt_program_save.db);
    db_stmt_register(&stmt_session_save.db);
    db_stmt_register(&stmt_attendance.db);
    db_stmt_register(&stmt_program_list.db);
    db_stmt_register(&stmt_tick);
}

/* ---------------------------------------------------------------- shared helpers */

/* May the caller do `action` at all? Else FORBIDDEN with perm.c's sentence; true if answered. */
static bool rooms_fail_perm(request_t *req, perm_action_t action, const char *what)
{
    perm_subject_t who = request_subject(req);
    perm_result_t r = perm_check(&who, action, 0);
    if (r == PERM_OK)
        return false;
    char why[200];
    perm_explain(r, action, request_session(req)->role, why, sizeof(why));
    log_info(req->conn->id, "forbidden: %s tried %s", request_session(req)->username, what);
    request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, what, "%s", why);
    return true;
}

static bool rooms_may(request_t *req, perm_action_t action)
{
    perm_subject_t who = request_subject(req);
    return perm_check(&who, action, 0) == PERM_OK;
}

/* A count that must lie in [min, max] when present; true if answered. */
static bool rooms_fail_range(request_t *req, bool has, int64_t v, int64_t min, int64_t max,
                             const char *field)
{
    if (!has || (v >= min && v <= max))
        return false;
    const char *reason = arena_printf(&req->arena, "field:%s", field);
    if (max == INT64_MAX)
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, reason,
                     "%s must be an id of %lld or more (not %lld).", field, (long long)min,
                     (long long)v);
    else
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, reason,
                     "%s must be from %lld to %lld (not %lld).", field, (long long)min,
                     (long long)max, (long long)v);
    return true;
}

/* A list of feature words: at most ROOMS_FEATURES_MAX, each a short word; true if answered. */
static bool rooms_fail_features(request_t *req, char **features, size_t n)
{
    if (n > ROOMS_FEATURES_MAX) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:features",
                     "At most %d features may be given (not %zu).", ROOMS_FEATURES_MAX, n);
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        if (features[i] == NULL || features[i][0] == '\0') {
            request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:features",
                         "A feature may not be empty.");
            return true;
        }
        if (request_fail_text(req, features[i], ROOMS_FEATURE_LEN, "features"))
            return true;
    }
    return false;
}

/* A bigint[] column as an arena list. */
static int64_t *rooms_ids(request_t *req, const PGresult *res, int row, int col, size_t *n)
{
    size_t k = 0;
    char **items = pgtext_array_parse(&req->arena, COL(res, row, col), &k);
    int64_t *ids = k ? arena_new(&req->arena, int64_t, k) : NULL;
    *n = 0;
    for (size_t i = 0; i < k; i++)
        if (items[i])
            ids[(*n)++] = strtoll(items[i], NULL, 10);
    return ids;
}

/* A Room from the room_out columns starting at column c0. */
static Carrel__Room *room_from_row(request_t *req, const PGresult *res, int i, int c0)
{
    Carrel__Room *r = arena_new(&req->arena, Carrel__Room, 1);
    carrel__room__init(r);
    reply_int64_opt(res, i, c0 + ROOM_ID, &r->has_id, &r->id);
    r->branch_code = reply_text_opt(req, res, i, c0 + ROOM_BRANCH_CODE);
    r->name = reply_text_opt(req, res, i, c0 + ROOM_NAME);
    reply_int32_opt(res, i, c0 + ROOM_CAPACITY, &r->has_capacity, &r->capacity);
    r->features =
        pgtext_array_strings(&req->arena, COL(res, i, c0 + ROOM_FEATURES), &r->n_features);
    r->bookable_by = reply_text_opt(req, res, i, c0 + ROOM_BOOKABLE_BY);
    r->category = reply_text_opt(req, res, i, c0 + ROOM_CATEGORY);
    r->part_ids = rooms_ids(req, res, i, c0 + ROOM_PART_IDS, &r->n_part_ids);
    reply_bool_opt(res, i, c0 + ROOM_ACTIVE, &r->has_active, &r->active);
    r->part_names =
        pgtext_array_strings(&req->arena, COL(res, i, c0 + ROOM_PART_NAMES), &r->n_part_names);
    r->whole_names =
        pgtext_array_strings(&req->arena, COL(res, i, c0 + ROOM_WHOLE_NAMES), &r->n_whole_names);
    reply_int32_opt(res, i, c0 + ROOM_BOOKINGS_TODAY, &r->has_bookings_today, &r->bookings_today);
    reply_int32_opt(res, i, c0 + ROOM_BOOKED_MINUTES_TODAY, &r->has_booked_minutes_today,
                    &r->booked_minutes_today);
    reply_int32_opt(res, i, c0 + ROOM_OPEN_MINUTES_TODAY, &r->has_open_minutes_today,
                    &r->open_minutes_today);
    r->now = reply_text_opt(req, res, i, c0 + ROOM_NOW);
    reply_int32_opt(res, i, c0 + ROOM_SLOT_MINUTES, &r->has_slot_minutes, &r->slot_minutes);
    return r;
}

/* A RoomBooking from the booking_out columns starting at column c0. */
static Carrel__RoomBooking *booking_from_row(request_t *req, const PGresult *res, int i, int c0)
{
    Carrel__RoomBooking *b = arena_new(&req->arena, Carrel__RoomBooking, 1);
    carrel__room_booking__init(b);
    reply_int64_opt(res, i, c0 + BK_ID, &b->has_id, &b->id);
    reply_int64_opt(res, i, c0 + BK_ROOM_ID, &b->has_room_id, &b->room_id);
    b->room_name = reply_text_opt(req, res, i, c0 + BK_ROOM_NAME);
    b->branch_code = reply_text_opt(req, res, i, c0 + BK_BRANCH_CODE);
    b->start = reply_text_opt(req, res, i, c0 + BK_START);
    b->end = reply_text_opt(req, res, i, c0 + BK_END);
    b->status = reply_text_opt(req, res, i, c0 + BK_STATUS);
    b->card = reply_text_opt(req, res, i, c0 + BK_CARD);
    b->patron_name = reply_text_opt(req, res, i, c0 + BK_PATRON_NAME);
    b->group_name = reply_text_opt(req, res, i, c0 + BK_GROUP_NAME);
    b->group_contact = reply_text_opt(req, res, i, c0 + BK_GROUP_CONTACT);
    reply_int64_opt(res, i, c0 + BK_PROGRAM_SESSION_ID, &b->has_program_session_id,
                    &b->program_session_id);
    b->program_title = reply_text_opt(req, res, i, c0 + BK_PROGRAM_TITLE);
    b->purpose = reply_text_opt(req, res, i, c0 + BK_PURPOSE);
    reply_int32_opt(res, i, c0 + BK_ATTENDEES, &b->has_attendees, &b->attendees);
    b->blocked_from = reply_text_opt(req, res, i, c0 + BK_BLOCKED_FROM);
    b->blocked_to = reply_text_opt(req, res, i, c0 + BK_BLOCKED_TO);
    b->cancel_reason = reply_text_opt(req, res, i, c0 + BK_CANCEL_REASON);
    reply_int64_opt(res, i, c0 + BK_SERIES_ID, &b->has_series_id, &b->series_id);
    b->checked_in_at = reply_text_opt(req, res, i, c0 + BK_CHECKED_IN_AT);
    b->created_at = reply_text_opt(req, res, i, c0 + BK_CREATED_AT);
    b->created_by = reply_text_opt(req, res, i, c0 + BK_CREATED_BY);
    reply_bool_opt(res, i, c0 + BK_OVERRIDDEN, &b->has_overridden, &b->overridden);
    return b;
}

static Carrel__RoomCategory *category_from_row(request_t *req, const PGresult *res, int i)
{
    Carrel__RoomCategory *c = arena_new(&req->arena, Carrel__RoomCategory, 1);
    carrel__room_category__init(c);
    c->code = reply_text_opt(req, res, i, CAT_CODE);
    c->name = reply_text_opt(req, res, i, CAT_NAME);
    reply_int32_opt(res, i, CAT_MIN_MINUTES, &c->has_min_minutes, &c->min_minutes);
    reply_int32_opt(res, i, CAT_MAX_MINUTES, &c->has_max_minutes, &c->max_minutes);
    reply_int32_opt(res, i, CAT_SLOT_MINUTES, &c->has_slot_minutes, &c->slot_minutes);
    reply_int32_opt(res, i, CAT_DAYS_AHEAD, &c->has_days_ahead, &c->days_ahead);
    reply_int32_opt(res, i, CAT_MAX_BOOKINGS, &c->has_max_bookings, &c->max_bookings);
    reply_int32_opt(res, i, CAT_MAX_HOURS_WEEK, &c->has_max_hours_week, &c->max_hours_week);
    reply_int32_opt(res, i, CAT_MAX_HOURS_MONTH, &c->has_max_hours_month, &c->max_hours_month);
    reply_int32_opt(res, i, CAT_GAP_MINUTES, &c->has_gap_minutes, &c->gap_minutes);
    reply_int32_opt(res, i, CAT_SETUP_MINUTES, &c->has_setup_minutes, &c->setup_minutes);
    reply_int32_opt(res, i, CAT_CLEANUP_MINUTES, &c->has_cleanup_minutes, &c->cleanup_minutes);
    reply_bool_opt(res, i, CAT_NEEDS_APPROVAL, &c->has_needs_approval, &c->needs_approval);
    reply_int32_opt(res, i, CAT_CHECKIN_MINUTES, &c->has_checkin_minutes, &c->checkin_minutes);
    return c;
}

/* A Program (no sessions) from the program_out columns starting at c0. */
static Carrel__Program *program_from_row(request_t *req, const PGresult *res, int i, int c0)
{
    Carrel__Program *p = arena_new(&req->arena, Carrel__Program, 1);
    carrel__program__init(p);
    reply_int64_opt(res, i, c0 + PRG_ID, &p->has_id, &p->id);
    p->title = reply_text_opt(req, res, i, c0 + PRG_TITLE);
    p->description = reply_text_opt(req, res, i, c0 + PRG_DESCRIPTION);
    p->audience = reply_text_opt(req, res, i, c0 + PRG_AUDIENCE);
    p->venue = reply_text_opt(req, res, i, c0 + PRG_VENUE);
    p->branch_code = reply_text_opt(req, res, i, c0 + PRG_BRANCH_CODE);
    p->location = reply_text_opt(req, res, i, c0 + PRG_LOCATION);
    p->presenter = reply_text_opt(req, res, i, c0 + PRG_PRESENTER);
    p->staff_username = reply_text_opt(req, res, i, c0 + PRG_STAFF_USERNAME);
    p->category = reply_text_opt(req, res, i, c0 + PRG_CATEGORY);
    reply_bool_opt(res, i, c0 + PRG_CANCELLED, &p->has_cancelled, &p->cancelled);
    return p;
}

/* A ProgramSession from the session_out columns starting at c0. */
static Carrel__ProgramSession *session_from_row(request_t *req, const PGresult *res, int i, int c0)
{
    Carrel__ProgramSession *s = arena_new(&req->arena, Carrel__ProgramSession, 1);
    carrel__program_session__init(s);
    reply_int64_opt(res, i, c0 + SES_ID, &s->has_id, &s->id);
    reply_int64_opt(res, i, c0 + SES_PROGRAM_ID, &s->has_program_id, &s->program_id);
    s->start = reply_text_opt(req, res, i, c0 + SES_START);
    s->end = reply_text_opt(req, res, i, c0 + SES_END);
    reply_int64_opt(res, i, c0 + SES_ROOM_ID, &s->has_room_id, &s->room_id);
    reply_int64_opt(res, i, c0 + SES_BOOKING_ID, &s->has_booking_id, &s->booking_id);
    s->room_name = reply_text_opt(req, res, i, c0 + SES_ROOM_NAME);
    reply_int32_opt(res, i, c0 + SES_ATTENDANCE, &s->has_attendance, &s->attendance);
    reply_bool_opt(res, i, c0 + SES_CANCELLED, &s->has_cancelled, &s->cancelled);
    s->staff_username = reply_text_opt(req, res, i, c0 + SES_STAFF_USERNAME);
    reply_bool_opt(res, i, c0 + SES_STAFF_SCHEDULED, &s->has_staff_scheduled, &s->staff_scheduled);
    return s;
}

/* A refused occurrence of a recurring booking: its start and end are at start_col, end_col. */
static Carrel__RoomBookRefusal *refusal_from_row(request_t *req, const PGresult *res, int i,
                                                 int start_col, int end_col)
{
    Carrel__RoomBookRefusal *f = arena_new(&req->arena, Carrel__RoomBookRefusal, 1);
    carrel__room_book_refusal__init(f);
    f->start = reply_text_opt(req, res, i, start_col);
    f->end = reply_text_opt(req, res, i, end_col);
    f->reason = reply_text_opt(req, res, i, OUT_REASON);
    f->message = reply_text_opt(req, res, i, OUT_MESSAGE);
    return f;
}

/* A statement that returned no row where one was due: INTERNAL, logged. */
static bool rooms_fail_empty(request_t *req, const PGresult *res, const char *fn)
{
    if (PQntuples(res) > 0)
        return false;
    log_error(req->conn->id, "%s returned no row", fn);
    request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                 "Nothing came back from %s; see the server log.", fn);
    return true;
}

/* Recurring requests (repeat set) and overrides are for librarians and up; true if answered. */
static bool rooms_fail_staff_only(request_t *req, bool override, const char *repeat)
{
    if (override && !rooms_may(req, PERM_ROOM_OVERRIDE)) {
        log_info(req->conn->id, "forbidden: %s sent a room override",
                 request_session(req)->username);
        request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "override",
                     "Only librarians and above may book beyond the room rules.");
        return true;
    }
    if (repeat && repeat[0] && !rooms_may(req, PERM_ROOM_OVERRIDE)) {
        request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "role",
                     "Only librarians and above may make recurring bookings.");
        return true;
    }
    if (repeat && repeat[0] && strcmp(repeat, "weekly") != 0 && strcmp(repeat, "monthly") != 0) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:repeat",
                     "repeat is \"weekly\" or \"monthly\".");
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------- RoomList, RoomSave */

static void room_list_rows(request_t *req, const PGresult *res)
{
    Carrel__RoomListReply *reply = arena_new(&req->arena, Carrel__RoomListReply, 1);
    carrel__room_list_reply__init(reply);
    int n = PQntuples(res);
    reply->rooms = arena_new(&req->arena, Carrel__Room *, n ? n : 1);
    for (int i = 0; i < n; i++) {
        if (i == 0)
            reply->date = reply_text_opt(req, res, 0, LIST_DAY);
        if (!db_null(res, i, LIST_ROOM + ROOM_ID))
            reply->rooms[reply->n_rooms++] = room_from_row(req, res, i, LIST_ROOM);
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_ROOMS;
    req->resp.rooms = reply;
    request_ok(req);
}

void handle_room_list(request_t *req)
{
    Carrel__RoomList *m = req->msg->room_list;
    if (request_fail_text(req, m->branch, ROOMS_TEXT_MAX, "branch") ||
        request_fail_text(req, m->date, ROOMS_TEXT_MAX, "date"))
        return;
    const char *values[3] = {reply_opt(m->branch), reply_opt(m->date),
                             m->has_include_inactive && m->include_inactive ? "true" : "false"};
    reply_query(req, &stmt_room_list, 3, values, room_list_rows);
}

static void room_save_rows(request_t *req, const PGresult *res)
{
    if (rooms_fail_empty(req, res, "room_save"))
        return;
    req->resp.body_case = CARREL__RESPONSE__BODY_ROOM;
    req->resp.room = room_from_row(req, res, 0, 0);
    log_info(req->conn->id, "%s saved room %lld (%s)", request_session(req)->username,
             (long long)req->resp.room->id, req->resp.room->name ? req->resp.room->name : "");
    request_ok(req);
}

void handle_room_save(request_t *req)
{
    Carrel__RoomSave *m = req->msg->room_save;
    Carrel__Room *r = m->room;
    if (r == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:room", "The room is missing.");
        return;
    }
    bool clear_features = m->has_clear_features && m->clear_features;
    bool clear_parts = m->has_clear_parts && m->clear_parts;
    if ((clear_features && r->n_features > 0) || (clear_parts && r->n_part_ids > 0)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST,
                     clear_parts && r->n_part_ids > 0 ? "field:clear_parts"
                                                      : "field:clear_features",
                     "Clear a list or give it, not both.");
        return;
    }
    if (request_fail_text(req, r->name, ROOMS_TEXT_MAX, "name") ||
        request_fail_text(req, r->branch_code, ROOMS_TEXT_MAX, "branch_code") ||
        request_fail_text(req, r->category, ROOMS_TEXT_MAX, "category") ||
        request_fail_text(req, r->bookable_by, ROOMS_TEXT_MAX, "bookable_by") ||
        rooms_fail_range(req, r->has_capacity, r->capacity, 1, ROOMS_CAPACITY_MAX, "capacity") ||
        rooms_fail_range(req, r->has_id, r->id, 0, INT64_MAX, "id") ||
        rooms_fail_features(req, r->features, r->n_features))
        return;
    if (r->n_part_ids > ROOMS_PARTS_MAX) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:part_ids",
                     "A split room has at most %d parts (not %zu).", ROOMS_PARTS_MAX,
                     r->n_part_ids);
        return;
    }
    /* What the server fills in is not the client's to send. */
    r->n_part_names = r->n_whole_names = 0;
    r->has_bookings_today = r->has_booked_minutes_today = r->has_open_minutes_today = 0;
    r->has_slot_minutes = 0;
    r->now = NULL;
    perm_subject_t who = request_subject(req);
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    /* JSON has every list, empty or not; an edit that leaves features or parts out keeps
     * them (json_message cannot tell "absent" from "empty" for a repeated field), unless
     * clear_features / clear_parts say the empty list is meant. */
    char *omit[4] = {"part_names", "whole_names", NULL, NULL};
    size_t nomit = 2;
    if (r->n_features == 0 && !clear_features)
        omit[nomit++] = "features";
    if (r->n_part_ids == 0 && !clear_parts)
        omit[nomit++] = "part_ids";
    const char *values[5] = {staff, ws, perm_scope_param(&req->arena, &who),
                             reply_json(req, &r->base),
                             pgtext_array_build(&req->arena, omit, nomit)};
    reply_query(req, &stmt_room_save, 5, values, room_save_rows);
}

/* ---------------------------------------------------------------- categories */

static void category_list_rows(request_t *req, const PGresult *res)
{
    Carrel__RoomCategoryListReply *reply = arena_new(&req->arena, Carrel__RoomCategoryListReply, 1);
    carrel__room_category_list_reply__init(reply);
    int n = PQntuples(res);
    reply->categories = arena_new(&req->arena, Carrel__RoomCategory *, n ? n : 1);
    for (int i = 0; i < n; i++)
        reply->categories[reply->n_categories++] = category_from_row(req, res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_ROOM_CATEGORIES;
    req->resp.room_categories = reply;
    request_ok(req);
}

void handle_room_category_list(request_t *req)
{
    reply_query(req, &stmt_category_list, 0, NULL, category_list_rows);
}

static void category_save_rows(request_t *req, const PGresult *res)
{
    if (rooms_fail_empty(req, res, "room_category_save"))
        return;
    req->resp.body_case = CARREL__RESPONSE__BODY_ROOM_CATEGORY;
    req->resp.room_category = category_from_row(req, res, 0);
    log_info(req->conn->id, "%s saved room category %s", request_session(req)->username,
             req->resp.room_category->code ? req->resp.room_category->code : "");
    request_ok(req);
}

void handle_room_category_save(request_t *req)
{
    Carrel__RoomCategory *c = req->msg->room_category_save->category;
    if (c == NULL || c->code == NULL || c->code[0] == '\0') {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:code",
                     "A room category needs its code.");
        return;
    }
    if (request_fail_text(req, c->code, ROOMS_TEXT_MAX, "code") ||
        request_fail_text(req, c->name, ROOMS_TEXT_MAX, "name"))
        return;
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[3] = {staff, ws, reply_json(req, &c->base)};
    reply_query(req, &stmt_category_save, 3, values, category_save_rows);
}

/* ---------------------------------------------------------------- RoomFree */

/* room_free's parameters; room_free_rooms takes the same ones but the number of days. */
static const char **room_free_values(request_t *req)
{
    Carrel__RoomFree *m = req->msg->room_free;
    arena_t *a = &req->arena;
    const char **v = arena_new(a, const char *, FREE_NPARAMS);
    v[0] = reply_opt(m->branch);
    v[1] = reply_opt(m->date);
    v[2] = pgtext_int(a, m->has_days ? m->days : 1);
    v[3] = m->has_capacity && m->capacity > 0 ? pgtext_int(a, m->capacity) : NULL;
    v[4] = m->has_room_id ? pgtext_int(a, m->room_id) : NULL;
    v[5] = m->n_features ? pgtext_array_build(a, m->features, m->n_features) : NULL;
    v[6] = m->has_staff && m->staff ? "true" : "false";
    return v;
}

/* The array column col of row i, n elements expected (NULL elements stay NULL). */
static char **room_free_column(request_t *req, const PGresult *res, int i, int col, size_t n)
{
    size_t k = 0;
    char **items =
        db_null(res, i, col) ? NULL : pgtext_array_parse(&req->arena, COL(res, i, col), &k);
    return k == n ? items : NULL;
}

/* One day's free periods: the element joined by ';' ("" for none). */
static char **room_free_periods(request_t *req, const char *joined, size_t *n)
{
    *n = 0;
    if (!joined || !*joined)
        return NULL;
    size_t cap = 1;
    for (const char *p = joined; *p; p++)
        cap += *p == ';';
    char **out = arena_new(&req->arena, char *, cap);
    const char *p = joined;
    for (;;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        out[(*n)++] = arena_strndup(&req->arena, p, len);
        if (!end)
            break;
        p = end + 1;
    }
    return out;
}

static void room_free_rows(request_t *req, const PGresult *res)
{
    Carrel__RoomFreeReply *reply = arena_new(&req->arena, Carrel__RoomFreeReply, 1);
    carrel__room_free_reply__init(reply);
    int n = PQntuples(res);
    size_t total = 0, *ndays = arena_new(&req->arena, size_t, n ? n : 1);
    char ***dates = arena_new(&req->arena, char **, n ? n : 1);
    for (int i = 0; i < n; i++) {
        dates[i] = db_null(res, i, FREE_DAYS)
                       ? NULL
                       : pgtext_array_parse(&req->arena, COL(res, i, FREE_DAYS), &ndays[i]);
        if (!dates[i])
            ndays[i] = 0;
        total += ndays[i];
    }
    reply->days = arena_new(&req->arena, Carrel__RoomFreeDay *, total ? total : 1);
    reply->rooms = arena_new(&req->arena, Carrel__Room *, n ? n : 1);
    for (int i = 0; i < n; i++) {
        reply->rooms[reply->n_rooms++] = room_from_row(req, res, i, 0);
        size_t k = ndays[i];
        char **opens = room_free_column(req, res, i, FREE_OPENS, k);
        char **closes = room_free_column(req, res, i, FREE_CLOSES, k);
        char **free = room_free_column(req, res, i, FREE_FREE, k);
        char **closed = room_free_column(req, res, i, FREE_CLOSED, k);
        for (size_t j = 0; j < k; j++) {
            Carrel__RoomFreeDay *d = arena_new(&req->arena, Carrel__RoomFreeDay, 1);
            carrel__room_free_day__init(d);
            reply_int64_opt(res, i, ROOM_ID, &d->has_room_id, &d->room_id);
            d->date = dates[i][j];
            d->opens = opens ? opens[j] : NULL;
            d->closes = closes ? closes[j] : NULL;
            d->free = room_free_periods(req, free ? free[j] : NULL, &d->n_free);
            if (closed && closed[j]) {
                d->has_closed = 1;
                d->closed = closed[j][0] == 't';
            }
            reply->days[reply->n_days++] = d;
        }
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_ROOM_FREE;
    req->resp.room_free = reply;
    request_ok(req);
}

void handle_room_free(request_t *req)
{
    Carrel__RoomFree *m = req->msg->room_free;
    if (request_fail_text(req, m->branch, ROOMS_TEXT_MAX, "branch") ||
        request_fail_text(req, m->date, ROOMS_TEXT_MAX, "date") ||
        rooms_fail_range(req, m->has_days, m->days, 1, ROOMS_DAYS_MAX, "days") ||
        rooms_fail_range(req, m->has_capacity, m->capacity, 0, ROOMS_CAPACITY_MAX, "capacity") ||
        rooms_fail_range(req, m->has_room_id, m->room_id, 1, INT64_MAX, "room_id") ||
        rooms_fail_features(req, m->features, m->n_features))
        return;
    reply_query(req, &stmt_room_free, FREE_NPARAMS, room_free_values(req), room_free_rows);
}

/* ---------------------------------------------------------------- RoomBook */

static void room_book_rows(request_t *req, const PGresult *res)
{
    Carrel__RoomBookReply *reply = arena_new(&req->arena, Carrel__RoomBookReply, 1);
    carrel__room_book_reply__init(reply);
    int n = PQntuples(res);
    reply->made = arena_new(&req->arena, Carrel__RoomBooking *, n ? n : 1);
    reply->refused = arena_new(&req->arena, Carrel__RoomBookRefusal *, n ? n : 1);
    for (int i = 0; i < n; i++) {
        if (db_bool(res, i, OUT_MADE))
            reply->made[reply->n_made++] = booking_from_row(req, res, i, OUT_NCOLS);
        else
            reply->refused[reply->n_refused++] =
                refusal_from_row(req, res, i, OUT_NCOLS + BK_START, OUT_NCOLS + BK_END);
    }
    log_info(req->conn->id, "%s booked room %lld: %zu made, %zu refused",
             request_session(req)->username, (long long)req->msg->room_book->room_id, reply->n_made,
             reply->n_refused);
    req->resp.body_case = CARREL__RESPONSE__BODY_ROOM_BOOK;
    req->resp.room_book = reply;
    request_ok(req);
}

void handle_room_book(request_t *req)
{
    Carrel__RoomBook *m = req->msg->room_book;
    if (rooms_fail_range(req, true, m->room_id, 1, INT64_MAX, "room_id") ||
        request_fail_text(req, m->start, ROOMS_TEXT_MAX, "start") ||
        request_fail_text(req, m->end, ROOMS_TEXT_MAX, "end") ||
        request_fail_text(req, m->card, ROOMS_TEXT_MAX, "card") ||
        request_fail_text(req, m->group_name, ROOMS_TEXT_MAX, "group_name") ||
        request_fail_text(req, m->group_contact, ROOMS_TEXT_MAX, "group_contact") ||
        request_fail_text(req, m->purpose, ROOMS_TEXT_MAX, "purpose") ||
        request_fail_text(req, m->until, ROOMS_TEXT_MAX, "until") ||
        rooms_fail_range(req, m->has_attendees, m->attendees, 1, ROOMS_CAPACITY_MAX, "attendees") ||
        rooms_fail_staff_only(req, m->has_override && m->override, m->repeat))
        return;
    if (m->start == NULL || m->start[0] == '\0' || m->end == NULL || m->end[0] == '\0') {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST,
                     m->start && m->start[0] ? "field:end" : "field:start",
                     "A booking needs its start and end (local \"YYYY-MM-DD HH:MM\").");
        return;
    }
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[5] = {req->msg->request_key, staff, ws,
                             rooms_may(req, PERM_ROOM_OVERRIDE) ? "true" : "false",
                             reply_json(req, &m->base)};
    reply_query(req, &stmt_room_book, 5, values, room_book_rows);
}

/* ---------------------------------------------------------------- RoomChange */

static void room_change_rows(request_t *req, const PGresult *res)
{
    Carrel__RoomChangeReply *reply = arena_new(&req->arena, Carrel__RoomChangeReply, 1);
    carrel__room_change_reply__init(reply);
    int n = PQntuples(res);
    reply->bookings = arena_new(&req->arena, Carrel__RoomBooking *, n ? n : 1);
    for (int i = 0; i < n; i++)
        reply->bookings[reply->n_bookings++] = booking_from_row(req, res, i, 0);
    Carrel__RoomChange *m = req->msg->room_change;
    log_info(req->conn->id, "%s: %s of room booking %lld (%zu changed)",
             request_session(req)->username, m->action, (long long)m->booking_id,
             reply->n_bookings);
    req->resp.body_case = CARREL__RESPONSE__BODY_ROOM_CHANGE;
    req->resp.room_change = reply;
    request_ok(req);
}

void handle_room_change(request_t *req)
{
    Carrel__RoomChange *m = req->msg->room_change;
    static const char *const actions[] = {"cancel", "checkin", "approve", "deny"};
    bool known = false;
    for (size_t i = 0; m->action && i < sizeof(actions) / sizeof(actions[0]); i++)
        known = known || strcmp(m->action, actions[i]) == 0;
    if (!known) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:action",
                     "The action is cancel, checkin, approve or deny.");
        return;
    }
    if (rooms_fail_range(req, true, m->booking_id, 1, INT64_MAX, "booking_id") ||
        request_fail_text(req, m->reason, ROOMS_TEXT_MAX, "reason"))
        return;
    /* Desks cancel and check in bookings at any branch; approving and denying is the
     * managers' of the room's branch (p_scope, checked in SQL against the room). */
    bool decide = strcmp(m->action, "approve") == 0 || strcmp(m->action, "deny") == 0;
    if (decide && rooms_fail_perm(req, PERM_ROOM_MANAGE, "role"))
        return;
    perm_subject_t who = request_subject(req);
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[8] = {req->msg->request_key,
                             staff,
                             ws,
                             decide ? perm_scope_param(&req->arena, &who) : NULL,
                             pgtext_int(&req->arena, m->booking_id),
                             m->action,
                             reply_opt(m->reason),
                             m->has_series && m->series ? "true" : "false"};
    reply_query(req, &stmt_room_change, 8, values, room_change_rows);
}

/* ---------------------------------------------------------------- RoomBookings */

static void room_bookings_rows(request_t *req, const PGresult *res)
{
    Carrel__RoomBookingList *reply = arena_new(&req->arena, Carrel__RoomBookingList, 1);
    carrel__room_booking_list__init(reply);
    int n = PQntuples(res);
    reply->bookings = arena_new(&req->arena, Carrel__RoomBooking *, n ? n : 1);
    for (int i = 0; i < n; i++) {
        if (i == 0)
            reply_int32_opt(res, 0, BKS_NO_SHOWS, &reply->has_no_shows, &reply->no_shows);
        if (!db_null(res, i, BKS_BOOKING + BK_ID))
            reply->bookings[reply->n_bookings++] = booking_from_row(req, res, i, BKS_BOOKING);
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_ROOM_BOOKINGS;
    req->resp.room_bookings = reply;
    request_ok(req);
}

void handle_room_bookings(request_t *req)
{
    Carrel__RoomBookings *m = req->msg->room_bookings;
    int limit;
    if (request_fail_text(req, m->card, ROOMS_TEXT_MAX, "card") ||
        request_fail_text(req, m->branch, ROOMS_TEXT_MAX, "branch") ||
        request_fail_text(req, m->from, ROOMS_TEXT_MAX, "from") ||
        request_fail_text(req, m->to, ROOMS_TEXT_MAX, "to") ||
        rooms_fail_range(req, m->has_room_id, m->room_id, 1, INT64_MAX, "room_id") ||
        !request_limit(req, m->has_limit, m->limit, ROOMS_BOOKINGS_DEFAULT, ROOMS_BOOKINGS_MAX,
                       "field:limit", &limit))
        return;
    arena_t *a = &req->arena;
    const char *values[7] = {
        reply_opt(m->card),   m->has_room_id ? pgtext_int(a, m->room_id) : NULL,
        reply_opt(m->branch), reply_opt(m->from),
        reply_opt(m->to),     m->has_all && m->all ? "true" : "false",
        pgtext_int(a, limit)};
    reply_query(req, &stmt_room_bookings, 7, values, room_bookings_rows);
}

/* ---------------------------------------------------------------- programs */

static void program_save_rows(request_t *req, const PGresult *res)
{
    if (rooms_fail_empty(req, res, "program_save"))
        return;
    req->resp.body_case = CARREL__RESPONSE__BODY_PROGRAM;
    req->resp.program = program_from_row(req, res, 0, 0);
    log_info(req->conn->id, "%s saved program %lld", request_session(req)->username,
             (long long)req->resp.program->id);
    request_ok(req);
}

void handle_program_save(request_t *req)
{
    Carrel__Program *p = req->msg->program_save->program;
    if (p == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:program",
                     "The program is missing.");
        return;
    }
    if (request_fail_text(req, p->title, ROOMS_TEXT_MAX, "title") ||
        request_fail_text(req, p->description, ROOMS_DESCRIPTION_MAX, "description") ||
        request_fail_text(req, p->audience, ROOMS_TEXT_MAX, "audience") ||
        request_fail_text(req, p->venue, ROOMS_TEXT_MAX, "venue") ||
        request_fail_text(req, p->branch_code, ROOMS_TEXT_MAX, "branch_code") ||
        request_fail_text(req, p->location, ROOMS_TEXT_MAX, "location") ||
        request_fail_text(req, p->presenter, ROOMS_TEXT_MAX, "presenter") ||
        request_fail_text(req, p->staff_username, ROOMS_TEXT_MAX, "staff_username") ||
        request_fail_text(req, p->category, ROOMS_TEXT_MAX, "category") ||
        rooms_fail_range(req, p->has_id, p->id, 0, INT64_MAX, "id"))
        return;
    p->n_sessions = 0; /* sessions are ProgramSessionSave's */
    perm_subject_t who = request_subject(req);
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[4] = {staff, ws, perm_scope_param(&req->arena, &who),
                             reply_json(req, &p->base)};
    reply_query(req, &stmt_program_save, 4, values, program_save_rows);
}

static void session_save_rows(request_t *req, const PGresult *res)
{
    Carrel__ProgramSessionReply *reply = arena_new(&req->arena, Carrel__ProgramSessionReply, 1);
    carrel__program_session_reply__init(reply);
    int n = PQntuples(res);
    reply->made = arena_new(&req->arena, Carrel__ProgramSession *, n ? n : 1);
    reply->refused = arena_new(&req->arena, Carrel__RoomBookRefusal *, n ? n : 1);
    for (int i = 0; i < n; i++) {
        if (db_bool(res, i, OUT_MADE))
            reply->made[reply->n_made++] = session_from_row(req, res, i, OUT_NCOLS);
        else
            reply->refused[reply->n_refused++] =
                refusal_from_row(req, res, i, OUT_NCOLS + SES_START, OUT_NCOLS + SES_END);
    }
    log_info(req->conn->id, "%s saved program sessions: %zu made, %zu refused",
             request_session(req)->username, reply->n_made, reply->n_refused);
    req->resp.body_case = CARREL__RESPONSE__BODY_PROGRAM_SESSIONS;
    req->resp.program_sessions = reply;
    request_ok(req);
}

void handle_program_session_save(request_t *req)
{
    Carrel__ProgramSessionSave *m = req->msg->program_session_save;
    Carrel__ProgramSession *s = m->session;
    if (s == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:session",
                     "The session is missing.");
        return;
    }
    if (request_fail_text(req, s->start, ROOMS_TEXT_MAX, "start") ||
        request_fail_text(req, s->end, ROOMS_TEXT_MAX, "end") ||
        request_fail_text(req, s->staff_username, ROOMS_TEXT_MAX, "staff_username") ||
        request_fail_text(req, m->until, ROOMS_TEXT_MAX, "until") ||
        rooms_fail_range(req, s->has_id, s->id, 0, INT64_MAX, "id") ||
        rooms_fail_range(req, s->has_room_id, s->room_id, 0, INT64_MAX, "room_id") ||
        rooms_fail_staff_only(req, m->has_override && m->override, m->repeat))
        return;
    /* What the server fills in is not the client's to send. */
    s->has_booking_id = s->has_attendance = s->has_staff_scheduled = 0;
    s->room_name = NULL;
    perm_subject_t who = request_subject(req);
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[6] = {req->msg->request_key,
                             staff,
                             ws,
                             perm_scope_param(&req->arena, &who),
                             rooms_may(req, PERM_ROOM_OVERRIDE) ? "true" : "false",
                             reply_json(req, &m->base)};
    reply_query(req, &stmt_session_save, 6, values, session_save_rows);
}

static void attendance_rows(request_t *req, const PGresult *res)
{
    if (rooms_fail_empty(req, res, "program_attendance"))
        return;
    req->resp.body_case = CARREL__RESPONSE__BODY_PROGRAM_SESSION;
    req->resp.program_session = session_from_row(req, res, 0, 0);
    log_info(req->conn->id, "%s recorded attendance %d at program session %lld",
             request_session(req)->username, req->msg->program_attendance->attendance,
             (long long)req->msg->program_attendance->session_id);
    request_ok(req);
}

void handle_program_attendance(request_t *req)
{
    Carrel__ProgramAttendance *m = req->msg->program_attendance;
    if (!m->has_attendance) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:attendance",
                     "The attendance (a number of people) is missing.");
        return;
    }
    if (rooms_fail_range(req, true, m->session_id, 1, INT64_MAX, "session_id") ||
        rooms_fail_range(req, true, m->attendance, 0, ROOMS_ATTENDANCE_MAX, "attendance"))
        return;
    perm_subject_t who = request_subject(req);
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[5] = {staff, ws, perm_scope_param(&req->arena, &who),
                             pgtext_int(&req->arena, m->session_id),
                             pgtext_int(&req->arena, m->attendance)};
    reply_query(req, &stmt_attendance, 5, values, attendance_rows);
}

static void program_list_rows(request_t *req, const PGresult *res)
{
    Carrel__ProgramListReply *reply = arena_new(&req->arena, Carrel__ProgramListReply, 1);
    carrel__program_list_reply__init(reply);
    int n = PQntuples(res);
    reply->programs = arena_new(&req->arena, Carrel__Program *, n ? n : 1);
    /* Each program row is followed by its sessions; count them first to size the lists. */
    Carrel__Program *cur = NULL;
    for (int i = 0; i < n; i++) {
        if (strcmp(COL(res, i, PL_KIND), "program") == 0) {
            cur = program_from_row(req, res, i, PL_PROGRAM);
            int k = 0;
            while (i + 1 + k < n && strcmp(COL(res, i + 1 + k, PL_KIND), "session") == 0)
                k++;
            cur->sessions = arena_new(&req->arena, Carrel__ProgramSession *, k ? k : 1);
            reply->programs[reply->n_programs++] = cur;
        } else if (cur) {
            cur->sessions[cur->n_sessions++] = session_from_row(req, res, i, PL_SESSION);
        }
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_PROGRAMS;
    req->resp.programs = reply;
    request_ok(req);
}

void handle_program_list(request_t *req)
{
    Carrel__ProgramList *m = req->msg->program_list;
    if (request_fail_text(req, m->branch, ROOMS_TEXT_MAX, "branch") ||
        request_fail_text(req, m->from, ROOMS_TEXT_MAX, "from") ||
        request_fail_text(req, m->to, ROOMS_TEXT_MAX, "to") ||
        request_fail_text(req, m->audience, ROOMS_TEXT_MAX, "audience") ||
        rooms_fail_range(req, m->has_id, m->id, 1, INT64_MAX, "id"))
        return;
    const char *values[5] = {reply_opt(m->branch), reply_opt(m->from), reply_opt(m->to),
                             reply_opt(m->audience),
                             m->has_id ? pgtext_int(&req->arena, m->id) : NULL};
    reply_query(req, &stmt_program_list, 5, values, program_list_rows);
}

/* ---------------------------------------------------------------- the rooms timer */

static bool rooms_tick_done(void *arg, const PGresult *res)
{
    (void)arg;
    if (PQntuples(res) > 0) {
        int64_t released = db_int64(res, 0, TICK_RELEASED);
        int64_t completed = db_int64(res, 0, TICK_COMPLETED);
        int64_t reminded = db_int64(res, 0, TICK_REMINDED);
        int64_t anonymised = db_int64(res, 0, TICK_ANONYMISED);
        if (released || completed || reminded || anonymised)
            log_info(0,
                     "rooms: %lld no-show(s) released, %lld booking(s) completed, %lld "
                     "reminder(s) queued, %lld anonymised",
                     (long long)released, (long long)completed, (long long)reminded,
                     (long long)anonymised);
    }
    return false;
}

void rooms_start(server_t *srv)
{
    long every_s = srv->cfg.rooms_tick_interval_s;
    const jobtimer_def_t def = {.module = "rooms",
                                .job = "the rooms job",
                                .stmt = &stmt_tick,
                                .ncols = TICK_NCOLS,
                                .interval_s = every_s,
                                .done = rooms_tick_done};
    srv->rooms = jobtimer_start(srv, &def);
    if (every_s > 0)
        log_info(0, "rooms: no-shows released and reminders queued every %ld s", every_s);
    else
        log_info(0, "rooms: the rooms job is off (rooms_tick_interval_s 0)");
}
