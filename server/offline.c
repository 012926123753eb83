/*
 * offline: the server side of offline circulation at the desk
 * (proto/offline.proto, Request fields 360-363; docs/OFFLINE.md):
 * OfflineCacheGet (what a desk needs to keep lending while the daemon is
 * unreachable), OfflineReplay (one journaled transaction, keyed by the
 * journal entry's key), OfflineExceptionList and OfflineExceptionResolve
 * (the exceptions report of the branch manager).
 *
 * Every rule is in sql/rules/offline.sql: each request is one statement.
 * C checks the shapes and sizes of fields, binds the session's staff,
 * workstation and branch (a desk replays at the branch it is logged in at;
 * the route's PERM_OFFLINE_CIRC is branch-scoped, so the session's branch is
 * always the caller's own) and the caller's scope for the report
 * (perm_scope_param: NULL for system-wide roles, else the session branch,
 * which SQL enforces with CR403 branch).
 */
#include <ctype.h>
#include <string.h>

#include "handlers.h"
#include "log.h"
#include "perm.h"
#include "pgtext.h"
#include "reply.h"

#define OFFLINE_CODE_MAX 64 /* cards, barcodes, branch codes */
/* A journaled card or barcode up to this long is answered skipped (bad_entry)
 * when over OFFLINE_CODE_MAX (a desk journals up to 127 bytes); longer is no
 * journal entry at all, refused. */
#define OFFLINE_SCAN_MAX  256
#define OFFLINE_CLERK_MAX 100  /* a username as the desk journaled it */
#define OFFLINE_NOTE_MAX  2000 /* 500 characters, each up to four bytes */
#define OFFLINE_LIST_DEF  200
#define OFFLINE_LIST_MAX  1000
/* Times in ms since the epoch: after 2001-09-09 and before 2100 (a desk's
 * clock reading anything else is broken, not offline). */
#define OFFLINE_MS_MIN 1000000000000LL
#define OFFLINE_MS_MAX 4102444800000LL

/* ---------------------------------------------------------------- statements */

/* offline_cache: rows told apart by kind (offline.sql). */
enum { CACHE_KIND, CACHE_A, CACHE_B, CACHE_N, CACHE_MS, CACHE_NCOLS };
static const reply_stmt_t stmt_cache = REPLY_STMT(
    "offline_cache", CACHE_NCOLS, "SELECT kind, a, b, n, ms FROM offline_cache($1::integer)");

enum {
    REPLAY_OUTCOME,
    REPLAY_REASON,
    REPLAY_MESSAGE,
    REPLAY_ROUTE,
    REPLAY_EXCEPTION,
    REPLAY_NCOLS
};
static const reply_stmt_t stmt_replay = REPLY_STMT(
    "offline_replay", REPLAY_NCOLS,
    "SELECT outcome, reason, message, route, exception_id FROM offline_replay($1::uuid,"
    " $2::bigint, $3::bigint, $4::integer, $5, $6, $7, to_timestamp($8::bigint / 1000.0),"
    " to_timestamp($9::bigint / 1000.0), $10::bigint, $11::date, $12,"
    " to_timestamp($13::bigint / 1000.0), $14)");

/* OfflineException in proto order (offline_exception_out). */
enum {
    EXC_ID,
    EXC_BRANCH,
    EXC_WORKSTATION,
    EXC_CLERK,
    EXC_OP,
    EXC_CARD,
    EXC_BARCODE,
    EXC_TITLE,
    EXC_OFFLINE_AT,
    EXC_UPLOADED_AT,
    EXC_OUTCOME,
    EXC_REASON,
    EXC_MESSAGE,
    EXC_RESOLVED_AT,
    EXC_RESOLVED_BY,
    EXC_RESOLUTION,
    EXC_NCOLS
};
static const reply_stmt_t stmt_list =
    REPLY_STMT("offline_exception_list", EXC_NCOLS,
               "SELECT * FROM offline_exception_list($1::integer, $2, $3::date, $4::boolean,"
               " $5::integer)");
static const reply_stmt_t stmt_resolve =
    REPLY_STMT("offline_exception_resolve", EXC_NCOLS,
               "SELECT * FROM offline_exception_resolve($1::bigint, $2::integer, $3::bigint, $4)");

void offline_register_statements(void)
{
    db_stmt_register(&stmt_cache.db);
    db_stmt_register(&stmt_replay.db);
    db_stmt_register(&stmt_list.db);
    db_stmt_register(&stmt_resolve.db);
}

/* ---------------------------------------------------------------- helpers */

/* YYYY-MM-DD in shape (the calendar is PostgreSQL's to check: a 31st of
 * February is answered invalid_value). NULL and "" are absent, so fine. */
static bool offline_date_ok(const char *s)
{
    if (s == NULL || *s == '\0')
        return true;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool offline_ms_ok(int64_t ms)
{
    return ms >= OFFLINE_MS_MIN && ms <= OFFLINE_MS_MAX;
}

/* ---------------------------------------------------------------- cache */

static void cache_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    size_t nblocked = 0, nrules = 0, nclosed = 0;
    for (int i = 0; i < rows; i++) {
        const char *kind = COL(res, i, CACHE_KIND);
        nblocked += strcmp(kind, "blocked") == 0;
        nrules += strcmp(kind, "rule") == 0;
        nclosed += strcmp(kind, "closed") == 0;
    }
    Carrel__OfflineCache *c = arena_new(&req->arena, Carrel__OfflineCache, 1);
    carrel__offline_cache__init(c);
    c->blocked = REQUEST_LIST(req, Carrel__OfflineBlockedCard, nblocked);
    c->rules = REQUEST_LIST(req, Carrel__OfflineDueRule, nrules);
    c->closed_days = arena_new(&req->arena, char *, nclosed + 1);
    for (int i = 0; i < rows; i++) {
        const char *kind = COL(res, i, CACHE_KIND);
        if (strcmp(kind, "head") == 0) {
            c->branch_code = reply_text_opt(req, res, i, CACHE_A);
            c->generated_at = reply_text_opt(req, res, i, CACHE_B);
            reply_int32_opt(res, i, CACHE_N, &c->has_default_loan_days, &c->default_loan_days);
            reply_int64_opt(res, i, CACHE_MS, &c->has_server_time_ms, &c->server_time_ms);
        } else if (strcmp(kind, "blocked") == 0) {
            Carrel__OfflineBlockedCard *b = arena_new(&req->arena, Carrel__OfflineBlockedCard, 1);
            carrel__offline_blocked_card__init(b);
            b->card = reply_text_opt(req, res, i, CACHE_A);
            b->reason = reply_text_opt(req, res, i, CACHE_B);
            c->blocked[c->n_blocked++] = b;
        } else if (strcmp(kind, "rule") == 0) {
            Carrel__OfflineDueRule *r = arena_new(&req->arena, Carrel__OfflineDueRule, 1);
            carrel__offline_due_rule__init(r);
            r->category = reply_text_opt(req, res, i, CACHE_A);
            r->item_type = reply_text_opt(req, res, i, CACHE_B);
            reply_int32_opt(res, i, CACHE_N, &r->has_loan_days, &r->loan_days);
            c->rules[c->n_rules++] = r;
        } else if (strcmp(kind, "closed") == 0) {
            c->closed_days[c->n_closed_days++] = reply_text(req, res, i, CACHE_A);
        }
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_OFFLINE_CACHE;
    req->resp.offline_cache = c;
    request_ok(req);
}

/* The cache for the session's branch: the desk keeps it to lend offline. */
void handle_offline_cache_get(request_t *req)
{
    const char *values[1] = {pgtext_int(&req->arena, request_session(req)->branch_id)};
    reply_query(req, &stmt_cache, 1, values, cache_done);
}

/* ---------------------------------------------------------------- replay */

static void replay_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        log_error(req->conn->id, "offline_replay returned %d rows", PQntuples(res));
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    Carrel__OfflineReplayReply *r = arena_new(&req->arena, Carrel__OfflineReplayReply, 1);
    carrel__offline_replay_reply__init(r);
    r->outcome = reply_text_opt(req, res, 0, REPLAY_OUTCOME);
    r->reason = reply_text_opt(req, res, 0, REPLAY_REASON);
    r->message = reply_text_opt(req, res, 0, REPLAY_MESSAGE);
    r->route = reply_text_opt(req, res, 0, REPLAY_ROUTE);
    reply_int64_opt(res, 0, REPLAY_EXCEPTION, &r->has_exception_id, &r->exception_id);
    req->resp.body_case = CARREL__RESPONSE__BODY_OFFLINE_REPLAYED;
    req->resp.offline_replayed = r;
    request_ok(req);
}

static const char *const offline_ops[] = {"checkout", "checkin", "renew", NULL};

/*
 * Why a well-formed journal entry can never be applied (a card or barcode
 * longer than any, a clock before 2001 or after 2099), as words for the
 * report; NULL when it can. Such an entry is answered skipped (bad_entry) and
 * listed, never refused: a refusal would leave it first in the journal, ahead
 * of every later scan, for ever.
 */
static const char *replay_bad_entry(request_t *req, const Carrel__OfflineReplay *m)
{
    if (m->barcode && strlen(m->barcode) > OFFLINE_CODE_MAX)
        return arena_printf(&req->arena,
                            "the barcode scanned is %zu bytes long, more than any (%d)",
                            strlen(m->barcode), OFFLINE_CODE_MAX);
    if (m->card && strlen(m->card) > OFFLINE_CODE_MAX)
        return arena_printf(&req->arena, "the card scanned is %zu bytes long, more than any (%d)",
                            strlen(m->card), OFFLINE_CODE_MAX);
    if (!offline_ms_ok(m->at_ms))
        return "the workstation's clock was wrong (a time before 2001 or after 2099)";
    return NULL;
}

/*
 * One journaled transaction, at the session's branch, as the session's staff
 * and workstation (the clerk who scanned it is kept as the desk wrote it).
 * Keyed (ROUTE_KEYED): the journal entry's key, so a resent upload gets the
 * stored answer. A refusal here is a malformed request (an entry that can never
 * be applied is answered skipped, bad_entry: replay_bad_entry); what the library's
 * rules say comes back as the outcome (applied, warning, skipped).
 */
void handle_offline_replay(request_t *req)
{
    Carrel__OfflineReplay *m = req->msg->offline_replay;
    if (request_bad_field(req, !request_one_of(m->op, offline_ops), "op",
                          "The op is checkout, checkin or renew.") ||
        request_bad_field(req, !reply_opt(m->barcode), "barcode", "The item barcode is needed.") ||
        request_bad_field(req, strcmp(m->op, "checkin") != 0 && !reply_opt(m->card), "card",
                          "A checkout or renewal needs the patron's card.") ||
        REQUEST_TEXTS(req, {m->barcode, OFFLINE_SCAN_MAX, "barcode"},
                      {m->card, OFFLINE_SCAN_MAX, "card"}, {m->clerk, OFFLINE_CLERK_MAX, "clerk"},
                      {m->due, OFFLINE_CODE_MAX, "due"}) ||
        request_bad_field(req, !m->has_at_ms, "at_ms",
                          "The time of the transaction (ms since the epoch) is needed.") ||
        request_bad_field(req, !offline_date_ok(m->due), "due", "The due date is YYYY-MM-DD."))
        return;
    const char *bad = replay_bad_entry(req, m);
    const session_t *s = request_session(req);
    const char *values[14];
    values[0] = req->msg->request_key;
    reply_actor(req, &values[1], &values[2]);
    values[3] = pgtext_int(&req->arena, request_session(req)->branch_id);
    values[4] = m->op;
    values[5] = reply_opt(m->card);
    values[6] = m->barcode;
    /* A time out of range is not bound (to_timestamp would fail on it). The
     * workstation's own reading is for the report only: dropped when wrong. */
    values[7] = offline_ms_ok(m->at_ms) ? pgtext_int(&req->arena, m->at_ms) : NULL;
    values[8] = m->has_workstation_ms && offline_ms_ok(m->workstation_ms)
                    ? pgtext_int(&req->arena, m->workstation_ms)
                    : NULL;
    values[9] = m->has_offset_ms ? pgtext_int(&req->arena, m->offset_ms) : NULL;
    values[10] = reply_opt(m->due);
    values[11] = reply_opt(m->clerk);
    /* Entries dated after this session logged in are refused (while_online). */
    values[12] = s->login_ms > 0 ? pgtext_int(&req->arena, s->login_ms) : NULL;
    values[13] = bad;
    reply_query(req, &stmt_replay, 14, values, replay_done);
}

/* ---------------------------------------------------------------- report */

static Carrel__OfflineException *exception_from_row(request_t *req, const PGresult *res, int i)
{
    Carrel__OfflineException *e = arena_new(&req->arena, Carrel__OfflineException, 1);
    carrel__offline_exception__init(e);
    reply_int64_opt(res, i, EXC_ID, &e->has_id, &e->id);
    e->branch_code = reply_text_opt(req, res, i, EXC_BRANCH);
    e->workstation = reply_text_opt(req, res, i, EXC_WORKSTATION);
    e->clerk = reply_text_opt(req, res, i, EXC_CLERK);
    e->op = reply_text_opt(req, res, i, EXC_OP);
    e->card = reply_text_opt(req, res, i, EXC_CARD);
    e->barcode = reply_text_opt(req, res, i, EXC_BARCODE);
    e->title = reply_text_opt(req, res, i, EXC_TITLE);
    e->offline_at = reply_text_opt(req, res, i, EXC_OFFLINE_AT);
    e->uploaded_at = reply_text_opt(req, res, i, EXC_UPLOADED_AT);
    e->outcome = reply_text_opt(req, res, i, EXC_OUTCOME);
    e->reason = reply_text_opt(req, res, i, EXC_REASON);
    e->message = reply_text_opt(req, res, i, EXC_MESSAGE);
    e->resolved_at = reply_text_opt(req, res, i, EXC_RESOLVED_AT);
    e->resolved_by = reply_text_opt(req, res, i, EXC_RESOLVED_BY);
    e->resolution = reply_text_opt(req, res, i, EXC_RESOLUTION);
    return e;
}

static void list_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    Carrel__OfflineExceptionListReply *reply =
        arena_new(&req->arena, Carrel__OfflineExceptionListReply, 1);
    carrel__offline_exception_list_reply__init(reply);
    reply->exceptions = REQUEST_LIST(req, Carrel__OfflineException, rows);
    for (int i = 0; i < rows; i++)
        reply->exceptions[reply->n_exceptions++] = exception_from_row(req, res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_OFFLINE_EXCEPTIONS;
    req->resp.offline_exceptions = reply;
    request_ok(req);
}

/* The exceptions of a branch (the session's by default), newest first. */
void handle_offline_exception_list(request_t *req)
{
    Carrel__OfflineExceptionList *m = req->msg->offline_exception_list;
    int limit;
    if (REQUEST_TEXTS(req, {m->branch_code, OFFLINE_CODE_MAX, "branch_code"},
                      {m->since, OFFLINE_CODE_MAX, "since"}) ||
        request_bad_field(req, !offline_date_ok(m->since), "since", "Since is YYYY-MM-DD.") ||
        !request_limit(req, m->has_limit, m->limit, OFFLINE_LIST_DEF, OFFLINE_LIST_MAX,
                       "field:limit", &limit))
        return;
    perm_subject_t who = request_subject(req);
    const char *branch = reply_opt(m->branch_code);
    const char *values[5] = {
        perm_scope_param(&req->arena, &who), branch ? branch : request_session(req)->branch_code,
        reply_opt(m->since), pgtext_bool(m->has_include_resolved && m->include_resolved),
        pgtext_int(&req->arena, limit)};
    reply_query(req, &stmt_list, 5, values, list_done);
}

static void resolve_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        log_error(req->conn->id, "offline_exception_resolve returned %d rows", PQntuples(res));
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_OFFLINE_EXCEPTION_RESOLVED;
    req->resp.offline_exception_resolved = exception_from_row(req, res, 0);
    request_ok(req);
}

/* Mark an exception of the caller's branch dealt with, with a note. */
void handle_offline_exception_resolve(request_t *req)
{
    Carrel__OfflineExceptionResolve *m = req->msg->offline_exception_resolve;
    if (request_bad_field(req, !m->has_id || m->id <= 0, "id", "Name the exception by its id.") ||
        request_bad_field(req, !reply_opt(m->note), "note",
                          "Say in 1 to 500 characters how it was dealt with.") ||
        REQUEST_TEXTS(req, {m->note, OFFLINE_NOTE_MAX, "note"}))
        return;
    perm_subject_t who = request_subject(req);
    const char *staff, *ws;
    reply_actor(req, &staff, &ws);
    const char *values[4] = {staff, perm_scope_param(&req->arena, &who),
                             pgtext_int(&req->arena, m->id), m->note};
    reply_query(req, &stmt_resolve, 4, values, resolve_done);
}
