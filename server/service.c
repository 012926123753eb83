/*
 * service: public service at the desks (proto/service.proto, Request fields
 * 260-270): the configurable lists (inquiry kinds, floor areas, floor
 * activities), inquiry tallies, door counts entered or imported, public
 * computer sessions, floor sweeps and the service levels of a week.
 *
 * Every rule is in sql/rules/service.sql; each request is one statement.
 * Saves hand their message to SQL as jsonb (json_message, field names as in
 * the .proto); rows come back in proto order and are read by position
 * through the enums below. What C does itself needs no database: the sizes
 * of fields, the session's branch filled in where a request leaves it out,
 * the scope of the caller (perm_scope_param: NULL for coordinators and
 * admins, else the session branch, which SQL enforces with CR403 branch),
 * the roles that only some lists and removals need, and the structure of an
 * imported CSV file (common/countcsv.c), whose good lines go to SQL as
 * arrays in one call.
 */
#include <stdlib.h>
#include <string.h>

#include "countcsv.h"
#include "handlers.h"
#include "log.h"
#include "perm.h"
#include "pgtext.h"
#include "reply.h"

/* Bounds of text fields before SQL (request_fail_text), in bytes: codes,
 * days and times are short; names are 100 characters, questions 2000 and
 * answers 4000, each up to four bytes. */
#define SERVICE_SHORT_MAX    64
#define SERVICE_NAME_MAX     400
#define SERVICE_QUESTION_MAX 8000
#define SERVICE_ANSWER_MAX   16000
/* An imported file travels whole in one request. */
#define SERVICE_CSV_MAX (4u * 1024u * 1024u)
/* Bad lines an import answers with, at most (all are counted). */
#define SERVICE_IMPORT_BAD_MAX 1000
/* Counts one sweep carries, at most (areas times activities). */
#define SERVICE_SWEEP_COUNTS_MAX 1000
#define SERVICE_LIST_DEFAULT     50
#define SERVICE_LIST_MAX         1000

/* service_code_list / service_code_save: ServiceCode in proto order. */
enum {
    CODE_LIST,
    CODE_BRANCH,
    CODE_CODE,
    CODE_NAME,
    CODE_REFERENCE,
    CODE_ACTIVE,
    CODE_ORD,
    CODE_NCOLS
};
static const reply_stmt_t stmt_code_list = REPLY_STMT(
    "service_code_list", CODE_NCOLS, "SELECT * FROM service_code_list($1, $2, $3::boolean)");
static const reply_stmt_t stmt_code_save =
    REPLY_STMT("service_code_save", CODE_NCOLS,
               "SELECT * FROM service_code_save($1, $2, $3::integer, $4::jsonb)");

/* inquiry_out: Inquiry in proto order; inquiry_add adds today's counts. */
enum {
    INQ_ID,
    INQ_BRANCH,
    INQ_DESK,
    INQ_CHANNEL,
    INQ_KIND,
    INQ_READ_LEVEL,
    INQ_MINUTES,
    INQ_AT,
    INQ_QUESTION,
    INQ_ANSWER,
    INQ_USERNAME,
    INQ_TICKET,
    INQ_NCOLS
};
enum { ADD_TODAY_BRANCH = INQ_NCOLS, ADD_TODAY_DESK, ADD_NCOLS };
static const reply_stmt_t stmt_inquiry_add =
    REPLY_STMT("service_inquiry_add", ADD_NCOLS,
               "SELECT * FROM inquiry_add($1::uuid, $2, $3, $4::integer, $5::jsonb)");
static const reply_stmt_t stmt_inquiry_remove =
    REPLY_STMT("service_inquiry_remove", INQ_NCOLS,
               "SELECT * FROM inquiry_remove($1, $2, $3::integer, $4::boolean, $5::bigint)");
static const reply_stmt_t stmt_inquiry_list = REPLY_STMT(
    "service_inquiry_list", INQ_NCOLS, "SELECT * FROM inquiry_list($1, $2, $3, $4::integer)");

/* gate_count_add: GateCountAddReply in proto order. */
enum { GATE_BRANCH, GATE_COUNTER, GATE_FROM, GATE_TO, GATE_CROSSINGS, GATE_VISITS, GATE_NCOLS };
static const reply_stmt_t stmt_gate_add =
    REPLY_STMT("service_gate_count_add", GATE_NCOLS,
               "SELECT * FROM gate_count_add($1, $2, $3::integer, $4::jsonb)");

/* count_import: a 'bad' row per bad line, then one 'summary' row. */
enum {
    IMP_KIND,
    IMP_LINE,
    IMP_REASON,
    IMP_MESSAGE,
    IMP_LINES,
    IMP_IMPORTED,
    IMP_REPLACED,
    IMP_UNCHANGED,
    IMP_APPLIED,
    IMP_NCOLS
};
static const reply_stmt_t stmt_import = REPLY_STMT(
    "service_count_import", IMP_NCOLS,
    "SELECT * FROM count_import($1, $2, $3::integer, $4, $5, $6, $7::integer, $8::boolean,"
    "                           $9::boolean, $10::integer[], $11::text[], $12::text[],"
    "                           $13::text[], $14::bigint[], $15::integer[])");

/* computer_sessions_set: ComputerSessionsSetReply in proto order. */
enum { PC_BRANCH, PC_DAY, PC_SESSIONS, PC_MINUTES, PC_NCOLS };
static const reply_stmt_t stmt_computers = REPLY_STMT(
    "service_computer_sessions_set", PC_NCOLS,
    "SELECT * FROM computer_sessions_set($1, $2, $3::integer, $4, $5, $6::integer, $7::integer)");

/* sweep_save / sweep_list: one row per count, a sweep's rows together. */
enum {
    SW_ID,
    SW_BRANCH,
    SW_AT,
    SW_USERNAME,
    SW_TOTAL,
    SW_AREA,
    SW_ACTIVITY,
    SW_HEADCOUNT,
    SW_NCOLS
};
static const reply_stmt_t stmt_sweep_save =
    REPLY_STMT("service_sweep_save", SW_NCOLS,
               "SELECT * FROM sweep_save($1::uuid, $2, $3, $4::integer, $5::jsonb)");
static const reply_stmt_t stmt_sweep_list =
    REPLY_STMT("service_sweep_list", SW_NCOLS, "SELECT * FROM sweep_list($1, $2, $3)");

/* The week's Monday, whether the branch asked for is unknown, then the
 * half hours (none: one row whose other columns are NULL, so an unknown
 * branch is told from a closed week, and the week is known either way). */
enum {
    LVL_WEEK,
    LVL_UNKNOWN,
    LVL_BRANCH,
    LVL_DAY,
    LVL_TIME,
    LVL_ON_DESK,
    LVL_NEEDED,
    LVL_CIRCULATION,
    LVL_INQUIRIES,
    LVL_HEADCOUNT,
    LVL_PER_STAFF,
    LVL_HEAVY,
    LVL_NCOLS
};
static const reply_stmt_t stmt_levels = REPLY_STMT(
    "service_levels", LVL_NCOLS,
    "WITH b AS (SELECT CASE WHEN $1::text IS NULL THEN NULL::integer[]"
    "                       ELSE ARRAY(SELECT id FROM branch WHERE code = $1) END AS ids)"
    "SELECT schedule_week_start($2)::text, coalesce(b.ids = '{}'::integer[], false),"
    "       l.branch_code, l.day::text, l.\"time\", l.staff_on_desk, l.staff_needed,"
    "       l.circulation, l.inquiries, l.headcount, l.per_staff, l.heavy"
    "  FROM b"
    "  LEFT JOIN LATERAL (SELECT x.* FROM service_levels(b.ids, $2) WITH ORDINALITY"
    "                      AS x(week, branch_code, day, \"time\", staff_on_desk, staff_needed,"
    "                           circulation, inquiries, headcount, per_staff, heavy, n)"
    "                     WHERE b.ids IS DISTINCT FROM '{}'::integer[]) l ON true"
    " ORDER BY l.n");

void service_register_statements(void)
{
    static const reply_stmt_t *const all[] = {
        &stmt_code_list,    &stmt_code_save,  &stmt_inquiry_add, &stmt_inquiry_remove,
        &stmt_inquiry_list, &stmt_gate_add,   &stmt_import,      &stmt_computers,
        &stmt_sweep_save,   &stmt_sweep_list, &stmt_levels,
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        db_stmt_register(&all[i]->db);
}

/* ---------------------------------------------------------------- shared */

/* The branch a request names, or the session's when it names none. */
static char *service_branch(request_t *req, char *code)
{
    return reply_opt(code) ? code : (char *)request_session(req)->branch_code;
}

/* May the caller do `action` (on no branch in particular)? */
static bool service_may(const request_t *req, perm_action_t action)
{
    perm_subject_t who = request_subject(req);
    return perm_check(&who, action, 0) == PERM_OK;
}

/* Answer FORBIDDEN with perm.c's sentence for `action`. */
static void service_fail_perm(request_t *req, perm_result_t r, perm_action_t action)
{
    char why[200];
    perm_explain(r, action, request_session(req)->role, why, sizeof(why));
    log_info(req->conn->id, "forbidden: %s tried %s", request_session(req)->username,
             req->route->name);
    request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, r == PERM_DENIED_BRANCH ? "branch" : "role",
                 "%s", why);
}

/* The acting staff, workstation and scope: the first three values of every change. */
static void service_actor(request_t *req, const char **values)
{
    perm_subject_t who = request_subject(req);
    reply_actor(req, &values[0], &values[1]);
    values[2] = perm_scope_param(&req->arena, &who);
}

/* An arena array for up to n pointers (one more, so n may be 0). */
#define SERVICE_LIST(req, T, n) arena_new(&(req)->arena, T *, (size_t)(n) + 1)

/* ---------------------------------------------------------------- lists */

static Carrel__ServiceCode *code_row(request_t *req, const PGresult *res, int i)
{
    Carrel__ServiceCode *c = arena_new(&req->arena, Carrel__ServiceCode, 1);
    carrel__service_code__init(c);
    c->list = reply_text_opt(req, res, i, CODE_LIST);
    c->branch_code = reply_text_opt(req, res, i, CODE_BRANCH);
    c->code = reply_text_opt(req, res, i, CODE_CODE);
    c->name = reply_text_opt(req, res, i, CODE_NAME);
    if (!db_null(res, i, CODE_REFERENCE)) {
        c->has_reference = 1;
        c->reference = db_bool(res, i, CODE_REFERENCE);
    }
    if (!db_null(res, i, CODE_ACTIVE)) {
        c->has_active = 1;
        c->active = db_bool(res, i, CODE_ACTIVE);
    }
    reply_int32_opt(res, i, CODE_ORD, &c->has_ord, &c->ord);
    return c;
}

static void code_list_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    Carrel__ServiceCodeListReply *reply = arena_new(&req->arena, Carrel__ServiceCodeListReply, 1);
    carrel__service_code_list_reply__init(reply);
    reply->codes = SERVICE_LIST(req, Carrel__ServiceCode, rows);
    for (int i = 0; i < rows; i++)
        reply->codes[reply->n_codes++] = code_row(req, res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_SERVICE_CODES;
    req->resp.service_codes = reply;
    request_ok(req);
}

static bool service_is_floor_area(const char *list)
{
    return list != NULL && strcmp(list, "floor_area") == 0;
}

void handle_service_code_list(request_t *req)
{
    Carrel__ServiceCodeList *m = req->msg->service_code_list;
    if (!reply_opt(m->list)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:list",
                     "Name the list: inquiry_kind, floor_area or floor_activity.");
        return;
    }
    if (REQUEST_TEXTS(req, {m->list, SERVICE_SHORT_MAX, "list"},
                      {m->branch, SERVICE_SHORT_MAX, "branch"}))
        return;
    /* Floor areas are a branch's: the session's unless another is named. */
    const char *branch =
        service_is_floor_area(m->list) ? service_branch(req, m->branch) : reply_opt(m->branch);
    const char *values[3] = {m->list, branch,
                             pgtext_bool(m->has_include_inactive && m->include_inactive)};
    reply_query(req, &stmt_code_list, 3, values, code_list_done);
}

static void code_save_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    Carrel__ServiceCode *c = code_row(req, res, 0);
    log_info(req->conn->id, "%s saved %s %s%s%s (%s)", request_session(req)->username, c->list,
             c->branch_code ? c->branch_code : "", c->branch_code ? " " : "", c->code,
             c->active ? "active" : "inactive");
    req->resp.body_case = CARREL__RESPONSE__BODY_SERVICE_CODE;
    req->resp.service_code = c;
    request_ok(req);
}

/*
 * Floor areas are the branch's managers' (the route's PERM_INQUIRY_MANAGE,
 * the branch by scope in SQL); inquiry kinds and floor activities are
 * system-wide, the coordinator's.
 */
void handle_service_code_save(request_t *req)
{
    Carrel__ServiceCode *c = req->msg->service_code_save->code;
    if (c == NULL || !reply_opt(c->list) || !reply_opt(c->code)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST,
                     c && c->list ? "field:code" : "field:list",
                     "Name the list and the code to save.");
        return;
    }
    if (REQUEST_TEXTS(req, {c->list, SERVICE_SHORT_MAX, "list"},
                      {c->branch_code, SERVICE_SHORT_MAX, "branch_code"},
                      {c->code, SERVICE_SHORT_MAX, "code"}, {c->name, SERVICE_NAME_MAX, "name"}))
        return;
    if (service_is_floor_area(c->list)) {
        c->branch_code = service_branch(req, c->branch_code);
    } else if (!service_may(req, PERM_SERVICE_CONFIG)) {
        service_fail_perm(req, PERM_DENIED_ROLE, PERM_SERVICE_CONFIG);
        return;
    }
    const char *values[4];
    service_actor(req, values);
    values[3] = reply_json(req, &c->base);
    reply_query(req, &stmt_code_save, 4, values, code_save_done);
}

/* ---------------------------------------------------------------- inquiries */

static Carrel__Inquiry *inquiry_row(request_t *req, const PGresult *res, int i)
{
    Carrel__Inquiry *q = arena_new(&req->arena, Carrel__Inquiry, 1);
    carrel__inquiry__init(q);
    reply_int64_opt(res, i, INQ_ID, &q->has_id, &q->id);
    q->branch_code = reply_text_opt(req, res, i, INQ_BRANCH);
    q->desk_code = reply_text_opt(req, res, i, INQ_DESK);
    q->channel = reply_text_opt(req, res, i, INQ_CHANNEL);
    q->kind = reply_text_opt(req, res, i, INQ_KIND);
    reply_int32_opt(res, i, INQ_READ_LEVEL, &q->has_read_level, &q->read_level);
    reply_int32_opt(res, i, INQ_MINUTES, &q->has_minutes, &q->minutes);
    q->at = reply_text_opt(req, res, i, INQ_AT);
    q->question = reply_text_opt(req, res, i, INQ_QUESTION);
    q->answer = reply_text_opt(req, res, i, INQ_ANSWER);
    q->username = reply_text_opt(req, res, i, INQ_USERNAME);
    reply_int64_opt(res, i, INQ_TICKET, &q->has_ticket_id, &q->ticket_id);
    return q;
}

static void inquiry_add_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    Carrel__InquiryAddReply *reply = arena_new(&req->arena, Carrel__InquiryAddReply, 1);
    carrel__inquiry_add_reply__init(reply);
    reply->inquiry = inquiry_row(req, res, 0);
    reply_int64_opt(res, 0, ADD_TODAY_BRANCH, &reply->has_today_branch, &reply->today_branch);
    reply_int64_opt(res, 0, ADD_TODAY_DESK, &reply->has_today_desk, &reply->today_desk);
    req->resp.body_case = CARREL__RESPONSE__BODY_INQUIRY_ADD;
    req->resp.inquiry_add = reply;
    request_ok(req);
}

/* One tally: keyed (the route requires the key), so a retry records nothing more. */
void handle_inquiry_add(request_t *req)
{
    Carrel__Inquiry *q = req->msg->inquiry_add->inquiry;
    if (q == NULL || !reply_opt(q->kind)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:kind",
                     "Name the kind of question (an inquiry kind code).");
        return;
    }
    if (!q->has_read_level) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:read_level",
                     "Give the effort on the READ scale, 1 to 6.");
        return;
    }
    if (REQUEST_TEXTS(req, {q->branch_code, SERVICE_SHORT_MAX, "branch_code"},
                      {q->desk_code, SERVICE_SHORT_MAX, "desk_code"},
                      {q->channel, SERVICE_SHORT_MAX, "channel"},
                      {q->kind, SERVICE_SHORT_MAX, "kind"}, {q->at, SERVICE_SHORT_MAX, "at"},
                      {q->question, SERVICE_QUESTION_MAX, "question"},
                      {q->answer, SERVICE_ANSWER_MAX, "answer"}))
        return;
    /* What the server says back is not the client's to set. */
    q->has_id = q->has_ticket_id = 0;
    q->username = NULL;
    q->branch_code = service_branch(req, q->branch_code);
    const char *values[5];
    values[0] = req->msg->request_key;
    service_actor(req, values + 1);
    values[4] = reply_json(req, &q->base);
    reply_query(req, &stmt_inquiry_add, 5, values, inquiry_add_done);
}

static void inquiry_remove_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    Carrel__Inquiry *q = inquiry_row(req, res, 0);
    log_info(req->conn->id, "%s took back tally %lld of %s at %s", request_session(req)->username,
             (long long)q->id, q->username ? q->username : "?",
             q->branch_code ? q->branch_code : "?");
    req->resp.body_case = CARREL__RESPONSE__BODY_INQUIRY_REMOVED;
    req->resp.inquiry_removed = q;
    request_ok(req);
}

/* The recorder takes back their own tally the same day; a manager of the branch anyone's. */
void handle_inquiry_remove(request_t *req)
{
    Carrel__InquiryRemove *m = req->msg->inquiry_remove;
    if (!m->has_id) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:id",
                     "Name the tally to take back (its id).");
        return;
    }
    const char *values[5];
    service_actor(req, values);
    values[3] = pgtext_bool(service_may(req, PERM_INQUIRY_MANAGE));
    values[4] = pgtext_int(&req->arena, m->id);
    reply_query(req, &stmt_inquiry_remove, 5, values, inquiry_remove_done);
}

static void inquiry_list_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    Carrel__InquiryListReply *reply = arena_new(&req->arena, Carrel__InquiryListReply, 1);
    carrel__inquiry_list_reply__init(reply);
    reply->inquiries = SERVICE_LIST(req, Carrel__Inquiry, rows);
    for (int i = 0; i < rows; i++)
        reply->inquiries[reply->n_inquiries++] = inquiry_row(req, res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_INQUIRIES;
    req->resp.inquiries = reply;
    request_ok(req);
}

/* Tallies carry no patron: anyone who records them may read any branch's. */
void handle_inquiry_list(request_t *req)
{
    Carrel__InquiryList *m = req->msg->inquiry_list;
    int limit;
    if (REQUEST_TEXTS(req, {m->branch, SERVICE_SHORT_MAX, "branch"},
                      {m->day, SERVICE_SHORT_MAX, "day"}, {m->desk, SERVICE_SHORT_MAX, "desk"}) ||
        !request_limit(req, m->has_limit, m->limit, SERVICE_LIST_DEFAULT, SERVICE_LIST_MAX,
                       "field:limit", &limit))
        return;
    const char *values[4] = {service_branch(req, m->branch), reply_opt(m->day), reply_opt(m->desk),
                             pgtext_int(&req->arena, limit)};
    reply_query(req, &stmt_inquiry_list, 4, values, inquiry_list_done);
}

/* ---------------------------------------------------------------- door counts */

static void gate_add_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    Carrel__GateCountAddReply *g = arena_new(&req->arena, Carrel__GateCountAddReply, 1);
    carrel__gate_count_add_reply__init(g);
    g->branch_code = reply_text_opt(req, res, 0, GATE_BRANCH);
    g->counter = reply_text_opt(req, res, 0, GATE_COUNTER);
    g->from = reply_text_opt(req, res, 0, GATE_FROM);
    g->to = reply_text_opt(req, res, 0, GATE_TO);
    reply_int64_opt(res, 0, GATE_CROSSINGS, &g->has_crossings, &g->crossings);
    reply_int64_opt(res, 0, GATE_VISITS, &g->has_visits_today, &g->visits_today);
    log_info(req->conn->id, "%s counted %lld crossings at %s/%s", request_session(req)->username,
             (long long)g->crossings, g->branch_code ? g->branch_code : "?",
             g->counter ? g->counter : "?");
    req->resp.body_case = CARREL__RESPONSE__BODY_GATE_COUNT;
    req->resp.gate_count = g;
    request_ok(req);
}

void handle_gate_count_add(request_t *req)
{
    Carrel__GateCountAdd *m = req->msg->gate_count_add;
    if (REQUEST_TEXTS(req, {m->branch_code, SERVICE_SHORT_MAX, "branch_code"},
                      {m->counter, SERVICE_SHORT_MAX, "counter"},
                      {m->day, SERVICE_SHORT_MAX, "day"}, {m->at, SERVICE_SHORT_MAX, "at"}))
        return;
    m->branch_code = service_branch(req, m->branch_code);
    const char *values[4];
    service_actor(req, values);
    values[3] = reply_json(req, &m->base);
    reply_query(req, &stmt_gate_add, 4, values, gate_add_done);
}

/* ---------------------------------------------------------------- imports */

/* What the parser found, kept for the answer (the rows went to SQL). */
typedef struct import_state {
    countcsv_t csv;
    bool apply;
} import_state_t;

static Carrel__CountImportLine *import_line(request_t *req, int line, const char *reason,
                                            const char *message)
{
    Carrel__CountImportLine *l = arena_new(&req->arena, Carrel__CountImportLine, 1);
    carrel__count_import_line__init(l);
    l->has_line = 1;
    l->line = line;
    l->reason = (char *)reason;
    l->message = (char *)message;
    return l;
}

static int import_line_cmp(const void *a, const void *b)
{
    const Carrel__CountImportLine *x = *(Carrel__CountImportLine *const *)a;
    const Carrel__CountImportLine *y = *(Carrel__CountImportLine *const *)b;
    return (x->line > y->line) - (x->line < y->line);
}

/* The answer: the parser's bad lines and SQL's, by line, at most SERVICE_IMPORT_BAD_MAX. */
static void import_answer(request_t *req, const import_state_t *st, const PGresult *res)
{
    int rows = res ? PQntuples(res) : 0;
    Carrel__CountImportReply *reply = arena_new(&req->arena, Carrel__CountImportReply, 1);
    carrel__count_import_reply__init(reply);
    reply->bad = SERVICE_LIST(req, Carrel__CountImportLine, st->csv.n_bad + (size_t)rows);
    for (size_t i = 0; i < st->csv.n_bad; i++)
        reply->bad[reply->n_bad++] =
            import_line(req, st->csv.bad[i].line, st->csv.bad[i].reason, st->csv.bad[i].message);
    reply->has_lines = reply->has_imported = reply->has_replaced = reply->has_unchanged = 1;
    reply->has_applied = 1;
    reply->lines = (int32_t)st->csv.lines;
    for (int i = 0; i < rows; i++) {
        if (strcmp(COL(res, i, IMP_KIND), "bad") == 0) {
            reply->bad[reply->n_bad++] =
                import_line(req, db_int32(res, i, IMP_LINE), reply_text(req, res, i, IMP_REASON),
                            reply_text(req, res, i, IMP_MESSAGE));
        } else {
            reply->imported = db_int32(res, i, IMP_IMPORTED);
            reply->replaced = db_int32(res, i, IMP_REPLACED);
            reply->unchanged = db_int32(res, i, IMP_UNCHANGED);
            reply->applied = db_bool(res, i, IMP_APPLIED);
        }
    }
    qsort(reply->bad, reply->n_bad, sizeof(*reply->bad), import_line_cmp);
    if (reply->n_bad > SERVICE_IMPORT_BAD_MAX)
        reply->n_bad = SERVICE_IMPORT_BAD_MAX;
    Carrel__CountImport *m = req->msg->count_import;
    log_info(req->conn->id,
             "%s imported %s counts for %s: %d lines, %zu bad, %d added, %d replaced, "
             "%d unchanged, %s",
             request_session(req)->username, m->kind, m->branch_code, reply->lines,
             st->csv.bad_total + (size_t)(rows > 0 ? rows - 1 : 0), reply->imported,
             reply->replaced, reply->unchanged, reply->applied ? "applied" : "nothing applied");
    req->resp.body_case = CARREL__RESPONSE__BODY_COUNT_IMPORT;
    req->resp.count_import = reply;
    request_ok(req);
}

static void import_done(request_t *req, const PGresult *res)
{
    import_answer(req, req->state, res);
}

/* The good rows as the arrays count_import takes: values[9..14]. */
static void import_arrays(request_t *req, const countcsv_t *csv, const char **values)
{
    arena_t *a = &req->arena;
    size_t n = csv->n_rows;
    int64_t *lines = arena_new(a, int64_t, n + 1), *counts = arena_new(a, int64_t, n + 1),
            *minutes = arena_new(a, int64_t, n + 1);
    bool *has_minutes = arena_new(a, bool, n + 1);
    char **counters = arena_new(a, char *, n + 1), **days = arena_new(a, char *, n + 1),
         **times = arena_new(a, char *, n + 1);
    for (size_t i = 0; i < n; i++) {
        countcsv_row_t *r = &csv->rows[i];
        lines[i] = r->line;
        counters[i] = r->counter;
        days[i] = r->day;
        times[i] = r->time;
        counts[i] = r->count;
        minutes[i] = r->minutes;
        has_minutes[i] = r->has_minutes;
    }
    values[9] = pgtext_int_array(a, lines, NULL, n);
    values[10] = pgtext_array_build(a, counters, n);
    values[11] = pgtext_array_build(a, days, n);
    values[12] = pgtext_array_build(a, times, n);
    values[13] = pgtext_int_array(a, counts, NULL, n);
    values[14] = pgtext_int_array(a, minutes, has_minutes, n);
}

/*
 * The file is read here (its structure, each line's fields and shapes) and
 * its good lines go to SQL in one call, which checks what needs the
 * database (days and times that exist locally, overlaps, the scope) and
 * applies them set-based. With bad lines and no skip_bad SQL only checks:
 * nothing is applied, every bad line is told.
 */
void handle_count_import(request_t *req)
{
    Carrel__CountImport *m = req->msg->count_import;
    if (m->kind == NULL || (strcmp(m->kind, "gate") != 0 && strcmp(m->kind, "computers") != 0)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:kind",
                     "The kind of file is gate (door counter) or computers (sessions).");
        return;
    }
    if (m->csv == NULL || m->csv[0] == '\0' || strlen(m->csv) > SERVICE_CSV_MAX) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:csv",
                     "Send the file's text (at most %u MB) in csv.", SERVICE_CSV_MAX >> 20);
        return;
    }
    if (REQUEST_TEXTS(req, {m->branch_code, SERVICE_SHORT_MAX, "branch_code"},
                      {m->counter, SERVICE_SHORT_MAX, "counter"}))
        return;
    bool gate = strcmp(m->kind, "gate") == 0;
    m->branch_code = service_branch(req, m->branch_code);
    import_state_t *st = arena_new(&req->arena, import_state_t, 1);
    req->state = st;
    countcsv_parse(&req->arena, gate ? COUNTCSV_GATE : COUNTCSV_COMPUTERS, m->csv, strlen(m->csv),
                   SERVICE_IMPORT_BAD_MAX, &st->csv);
    if (st->csv.header_bad) {
        import_answer(req, st, NULL); /* no rows: nothing for SQL to check */
        return;
    }
    bool skip_bad = m->has_skip_bad && m->skip_bad;
    st->apply = st->csv.bad_total == 0 || skip_bad;
    const char *values[15];
    service_actor(req, values);
    values[3] = m->kind;
    values[4] = m->branch_code;
    values[5] = gate ? (reply_opt(m->counter) ? m->counter : "main") : NULL;
    values[6] =
        gate ? pgtext_int(&req->arena, m->has_period_minutes ? m->period_minutes : 60) : NULL;
    values[7] = pgtext_bool(skip_bad);
    values[8] = pgtext_bool(st->apply);
    import_arrays(req, &st->csv, values);
    reply_query(req, &stmt_import, 15, values, import_done);
}

/* ---------------------------------------------------------------- computer sessions */

static void computers_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    Carrel__ComputerSessionsSetReply *c =
        arena_new(&req->arena, Carrel__ComputerSessionsSetReply, 1);
    carrel__computer_sessions_set_reply__init(c);
    c->branch_code = reply_text_opt(req, res, 0, PC_BRANCH);
    c->day = reply_text_opt(req, res, 0, PC_DAY);
    reply_int32_opt(res, 0, PC_SESSIONS, &c->has_sessions, &c->sessions);
    reply_int32_opt(res, 0, PC_MINUTES, &c->has_minutes, &c->minutes);
    log_info(req->conn->id, "%s set %d computer sessions at %s on %s",
             request_session(req)->username, c->sessions, c->branch_code ? c->branch_code : "?",
             c->day ? c->day : "?");
    req->resp.body_case = CARREL__RESPONSE__BODY_COMPUTER_SESSIONS;
    req->resp.computer_sessions = c;
    request_ok(req);
}

void handle_computer_sessions_set(request_t *req)
{
    Carrel__ComputerSessionsSet *m = req->msg->computer_sessions_set;
    if (!m->has_sessions) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:sessions",
                     "Give the number of computer sessions.");
        return;
    }
    if (REQUEST_TEXTS(req, {m->branch_code, SERVICE_SHORT_MAX, "branch_code"},
                      {m->day, SERVICE_SHORT_MAX, "day"}))
        return;
    arena_t *a = &req->arena;
    const char *values[7];
    service_actor(req, values);
    values[3] = service_branch(req, m->branch_code);
    values[4] = reply_opt(m->day);
    values[5] = pgtext_int(a, m->sessions);
    values[6] = m->has_minutes ? pgtext_int(a, m->minutes) : NULL;
    reply_query(req, &stmt_computers, 7, values, computers_done);
}

/* ---------------------------------------------------------------- sweeps */

/* The sweeps of rows that come one row per count, a sweep's rows together. */
static Carrel__Sweep **sweep_rows(request_t *req, const PGresult *res, size_t *count)
{
    int rows = PQntuples(res);
    Carrel__Sweep **list = SERVICE_LIST(req, Carrel__Sweep, rows);
    *count = 0;
    Carrel__Sweep *s = NULL;
    for (int i = 0; i < rows; i++) {
        int64_t id = db_int64(res, i, SW_ID);
        if (s == NULL || s->id != id) {
            s = arena_new(&req->arena, Carrel__Sweep, 1);
            carrel__sweep__init(s);
            s->has_id = 1;
            s->id = id;
            s->branch_code = reply_text_opt(req, res, i, SW_BRANCH);
            s->at = reply_text_opt(req, res, i, SW_AT);
            s->username = reply_text_opt(req, res, i, SW_USERNAME);
            reply_int32_opt(res, i, SW_TOTAL, &s->has_total, &s->total);
            s->counts = SERVICE_LIST(req, Carrel__SweepCount, rows - i);
            list[(*count)++] = s;
        }
        if (db_null(res, i, SW_AREA))
            continue;
        Carrel__SweepCount *c = arena_new(&req->arena, Carrel__SweepCount, 1);
        carrel__sweep_count__init(c);
        c->area = reply_text_opt(req, res, i, SW_AREA);
        c->activity = reply_text_opt(req, res, i, SW_ACTIVITY);
        reply_int32_opt(res, i, SW_HEADCOUNT, &c->has_headcount, &c->headcount);
        s->counts[s->n_counts++] = c;
    }
    return list;
}

static void sweep_save_done(request_t *req, const PGresult *res)
{
    size_t n = 0;
    Carrel__Sweep **sweeps = sweep_rows(req, res, &n);
    if (n != 1) {
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    log_info(req->conn->id, "%s swept %s: %d people in %zu counts", request_session(req)->username,
             sweeps[0]->branch_code ? sweeps[0]->branch_code : "?", sweeps[0]->total,
             sweeps[0]->n_counts);
    req->resp.body_case = CARREL__RESPONSE__BODY_SWEEP;
    req->resp.sweep = sweeps[0];
    request_ok(req);
}

/* A sweep counts every area of the branch (SQL names the missing ones); keyed. */
void handle_sweep_save(request_t *req)
{
    Carrel__Sweep *s = req->msg->sweep_save->sweep;
    if (s == NULL || s->n_counts == 0 || s->n_counts > SERVICE_SWEEP_COUNTS_MAX) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:counts",
                     "A sweep has a count for every area of the branch (at most %d counts).",
                     SERVICE_SWEEP_COUNTS_MAX);
        return;
    }
    if (REQUEST_TEXTS(req, {s->branch_code, SERVICE_SHORT_MAX, "branch_code"},
                      {s->at, SERVICE_SHORT_MAX, "at"}))
        return;
    for (size_t i = 0; i < s->n_counts; i++)
        if (s->counts[i] == NULL ||
            REQUEST_TEXTS(req, {s->counts[i]->area, SERVICE_SHORT_MAX, "area"},
                          {s->counts[i]->activity, SERVICE_SHORT_MAX, "activity"}))
            return;
    s->has_id = s->has_total = 0;
    s->username = NULL;
    s->branch_code = service_branch(req, s->branch_code);
    const char *values[5];
    values[0] = req->msg->request_key;
    service_actor(req, values + 1);
    values[4] = reply_json(req, &s->base);
    reply_query(req, &stmt_sweep_save, 5, values, sweep_save_done);
}

static void sweep_list_done(request_t *req, const PGresult *res)
{
    Carrel__SweepListReply *reply = arena_new(&req->arena, Carrel__SweepListReply, 1);
    carrel__sweep_list_reply__init(reply);
    reply->sweeps = sweep_rows(req, res, &reply->n_sweeps);
    req->resp.body_case = CARREL__RESPONSE__BODY_SWEEPS;
    req->resp.sweeps = reply;
    request_ok(req);
}

void handle_sweep_list(request_t *req)
{
    Carrel__SweepList *m = req->msg->sweep_list;
    if (REQUEST_TEXTS(req, {m->branch, SERVICE_SHORT_MAX, "branch"},
                      {m->from, SERVICE_SHORT_MAX, "from"}, {m->to, SERVICE_SHORT_MAX, "to"}))
        return;
    const char *values[3] = {service_branch(req, m->branch), reply_opt(m->from), reply_opt(m->to)};
    reply_query(req, &stmt_sweep_list, 3, values, sweep_list_done);
}

/* ---------------------------------------------------------------- service levels */

static Carrel__ServiceLevelRow *level_row(request_t *req, const PGresult *res, int i)
{
    Carrel__ServiceLevelRow *r = arena_new(&req->arena, Carrel__ServiceLevelRow, 1);
    carrel__service_level_row__init(r);
    r->branch_code = reply_text_opt(req, res, i, LVL_BRANCH);
    r->day = reply_text_opt(req, res, i, LVL_DAY);
    r->time = reply_text_opt(req, res, i, LVL_TIME);
    reply_int32_opt(res, i, LVL_ON_DESK, &r->has_staff_on_desk, &r->staff_on_desk);
    reply_int32_opt(res, i, LVL_NEEDED, &r->has_staff_needed, &r->staff_needed);
    reply_int32_opt(res, i, LVL_CIRCULATION, &r->has_circulation, &r->circulation);
    reply_int32_opt(res, i, LVL_INQUIRIES, &r->has_inquiries, &r->inquiries);
    reply_int32_opt(res, i, LVL_HEADCOUNT, &r->has_headcount, &r->headcount);
    reply_double_opt(res, i, LVL_PER_STAFF, &r->has_per_staff, &r->per_staff);
    if (!db_null(res, i, LVL_HEAVY)) {
        r->has_heavy = 1;
        r->heavy = db_bool(res, i, LVL_HEAVY);
    }
    return r;
}

static void levels_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    if (rows > 0 && db_bool(res, 0, LVL_UNKNOWN)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:branch",
                     "No branch has the code %s.", req->msg->service_levels->branch);
        return;
    }
    Carrel__ServiceLevelsReply *reply = arena_new(&req->arena, Carrel__ServiceLevelsReply, 1);
    carrel__service_levels_reply__init(reply);
    reply->rows = SERVICE_LIST(req, Carrel__ServiceLevelRow, rows);
    for (int i = 0; i < rows; i++) {
        if (i == 0)
            reply->week = reply_text_opt(req, res, i, LVL_WEEK);
        if (!db_null(res, i, LVL_BRANCH))
            reply->rows[reply->n_rows++] = level_row(req, res, i);
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_SERVICE_LEVELS;
    req->resp.service_levels = reply;
    request_ok(req);
}

/*
 * One branch, or every branch side by side (coordinators and admins). A
 * branch-bound role sees its session branch: asking for no branch means
 * that one, another branch is refused.
 */
void handle_service_levels(request_t *req)
{
    Carrel__ServiceLevels *m = req->msg->service_levels;
    if (REQUEST_TEXTS(req, {m->branch, SERVICE_SHORT_MAX, "branch"},
                      {m->week, SERVICE_SHORT_MAX, "week"}))
        return;
    const session_t *s = request_session(req);
    if (perm_role_is_branch_bound(s->role)) {
        if (!reply_opt(m->branch))
            m->branch = (char *)s->branch_code;
        else if (strcmp(m->branch, s->branch_code) != 0) {
            service_fail_perm(req, PERM_DENIED_BRANCH, PERM_SERVICE_LEVELS);
            return;
        }
    }
    const char *values[2] = {reply_opt(m->branch), reply_opt(m->week)};
    reply_query(req, &stmt_levels, 2, values, levels_done);
}
