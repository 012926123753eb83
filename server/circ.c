/*
 * circ: checkout, checkin, renewals, item marks, in-house use, the patron's
 * account and ledger, loan rules and branch calendars.
 *
 * Every change is one call of a function in sql/rules/circulation.sql, run as
 * one statement (one transaction) with the request key, the staff member,
 * the workstation and its branch: the rules, limits, routing and the
 * idempotency record all happen there. This file checks the shape of
 * requests and turns result rows into messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "handlers.h"
#include "log.h"
#include "pgtext.h"
#include "reply.h"

/* Timestamps travel as ISO 8601 in UTC (api_time, sql/rules/foundation.sql). */
#define TS(x) "api_time(" x ")"

enum {
    CHECKOUT_LOAN_ID,
    CHECKOUT_BARCODE,
    CHECKOUT_TITLE,
    CHECKOUT_DUE_AT,
    CHECKOUT_DUE_DATE,
    CHECKOUT_PATRON_NAME,
    CHECKOUT_SLIP,
    CHECKOUT_OVERRIDDEN,
    CHECKOUT_LOANS_OUT,
    CHECKOUT_FILLED_HOLD_ID,
    CHECKOUT_NCOLS
};
static const reply_stmt_t stmt_checkout =
    REPLY_STMT("circ_checkout", CHECKOUT_NCOLS,
               "SELECT loan_id, barcode, title, " TS(
                   "due_at") ", due_date, patron_name, slip, overridden,"
                             "       loans_out, filled_hold_id"
                             "  FROM circ_checkout($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9)");

enum {
    CHECKIN_BARCODE,
    CHECKIN_TITLE,
    CHECKIN_WAS_ON_LOAN,
    CHECKIN_ROUTE,
    CHECKIN_DESTINATION_CODE,
    CHECKIN_DESTINATION_NAME,
    CHECKIN_FINE_CENTS,
    CHECKIN_MESSAGE,
    CHECKIN_SLIP,
    CHECKIN_PREVIOUS_STATUS,
    CHECKIN_PATRON_NAME,
    CHECKIN_HOLD_ID,
    CHECKIN_DISPLAY,
    CHECKIN_NCOLS
};
static const reply_stmt_t stmt_checkin = REPLY_STMT(
    "circ_checkin", CHECKIN_NCOLS,
    "SELECT barcode, title, was_on_loan, route, destination_code, destination_name, fine_cents,"
    "       message, slip, previous_status, patron_name, hold_id, display"
    "  FROM circ_checkin($1::uuid, $2, $3, $4, $5, $6::timestamptz)");

enum {
    RENEW_BARCODE,
    RENEW_TITLE,
    RENEW_RENEWED,
    RENEW_DUE_AT,
    RENEW_DUE_DATE,
    RENEW_REASON,
    RENEW_MESSAGE,
    RENEW_RENEWALS,
    RENEW_NCOLS
};
static const reply_stmt_t stmt_renew =
    REPLY_STMT("circ_renew", RENEW_NCOLS,
               "SELECT barcode, title, renewed, " TS(
                   "due_at") ", due_date, reason, message, renewals"
                             "  FROM circ_renew($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9)");

enum { MARK_BARCODE, MARK_CHARGED_CENTS, MARK_MESSAGE, MARK_NCOLS };
static const reply_stmt_t stmt_item_mark = REPLY_STMT(
    "circ_item_mark", MARK_NCOLS,
    "SELECT barcode, charged_cents, message FROM circ_item_mark($1::uuid, $2, $3, $4, $5, $6, $7)");

enum { IN_HOUSE_ITEM_ID, IN_HOUSE_NCOLS };
static const reply_stmt_t stmt_in_house = REPLY_STMT(
    "circ_in_house_use", IN_HOUSE_NCOLS, "SELECT circ_in_house_use($1::uuid, $2, $3, $4)");

/*
 * AccountGet in one statement, so one snapshot: account_get()
 * (sql/rules/account.sql) returns the patron, their open loans, the newest
 * ledger entries ($2 of them) and their live holds as rows of one result
 * told apart by ACCOUNT_KIND. A row of each kind carries its columns first,
 * as text, in the order of its enum (ACCOUNT_PATRON_*, ACCOUNT_LOAN_*,
 * LEDGER_*, HOLD_*), padded with NULLs to ACCOUNT_WIDTH; ACCOUNT_N keeps
 * each kind's own order. $1: the card.
 */
enum {
    ACCOUNT_PATRON_ID,
    ACCOUNT_PATRON_CARD,
    ACCOUNT_PATRON_NAME,
    ACCOUNT_PATRON_CATEGORY,
    ACCOUNT_PATRON_EXPIRES_ON,
    ACCOUNT_PATRON_EXPIRED,
    ACCOUNT_PATRON_BLOCKED,
    ACCOUNT_PATRON_DESK_ALERT,
    ACCOUNT_PATRON_BALANCE_CENTS,
    ACCOUNT_PATRON_LOANS_OUT,
    ACCOUNT_PATRON_OVERDUE,
    ACCOUNT_PATRON_BLOCK_THRESHOLD_CENTS,
    ACCOUNT_PATRON_NCOLS
};

/* The columns of a ledger entry, as circ_ledger_post returns them too. */
enum {
    LEDGER_ID,
    LEDGER_AT,
    LEDGER_KIND,
    LEDGER_AMOUNT_CENTS,
    LEDGER_BARCODE,
    LEDGER_NOTE,
    LEDGER_STAFF,
    LEDGER_NCOLS
};

enum {
    ACCOUNT_LOAN_ID,
    ACCOUNT_LOAN_BARCODE,
    ACCOUNT_LOAN_TITLE,
    ACCOUNT_LOAN_CHECKOUT_AT,
    ACCOUNT_LOAN_CHECKOUT_BRANCH,
    ACCOUNT_LOAN_DUE_AT,
    ACCOUNT_LOAN_DUE_DATE,
    ACCOUNT_LOAN_OVERDUE,
    ACCOUNT_LOAN_RENEWALS,
    ACCOUNT_LOAN_RENEWALS_ALLOWED,
    ACCOUNT_LOAN_ITEM_TYPE,
    ACCOUNT_LOAN_NCOLS
};
enum { ACCOUNT_WIDTH = HOLD_NCOLS, ACCOUNT_KIND = ACCOUNT_WIDTH, ACCOUNT_N, ACCOUNT_NCOLS };
_Static_assert(ACCOUNT_PATRON_NCOLS + 5 == ACCOUNT_WIDTH &&
                   ACCOUNT_LOAN_NCOLS + 6 == ACCOUNT_WIDTH && LEDGER_NCOLS + 10 == ACCOUNT_WIDTH,
               "each kind of account row is padded to ACCOUNT_WIDTH columns in account_get()");

static const reply_stmt_t stmt_account_get =
    REPLY_STMT("circ_account_get", ACCOUNT_NCOLS, "SELECT * FROM account_get($1, $2::integer)");

static const reply_stmt_t stmt_ledger_post =
    REPLY_STMT("circ_ledger_post", LEDGER_NCOLS /* the ledger columns of account_get() */,
               "SELECT * FROM circ_ledger_post($1::uuid, $2, $3, $4, $5, $6, $7)");

#define POLICY_COLUMNS                                                                             \
    "p.id, coalesce(p.patron_category, ''), coalesce(p.item_type, ''), coalesce(b.code, ''),"      \
    " p.loan_days, p.loan_hours, p.renewals, p.circulates, p.max_loans, p.max_loans_of_type,"      \
    " p.fine_cents_per_day, p.fine_max_cents, p.grace_days, p.hold_blocks_renewal, p.charge_lost"

/* POLICY_COLUMNS by name, in their order; circ_policy_save returns the same. */
enum {
    POLICY_ID,
    POLICY_PATRON_CATEGORY,
    POLICY_ITEM_TYPE,
    POLICY_BRANCH,
    POLICY_LOAN_DAYS,
    POLICY_LOAN_HOURS,
    POLICY_RENEWALS,
    POLICY_CIRCULATES,
    POLICY_MAX_LOANS,
    POLICY_MAX_LOANS_OF_TYPE,
    POLICY_FINE_CENTS_PER_DAY,
    POLICY_FINE_MAX_CENTS,
    POLICY_GRACE_DAYS,
    POLICY_HOLD_BLOCKS_RENEWAL,
    POLICY_CHARGE_LOST,
    POLICY_NCOLS
};
static const reply_stmt_t stmt_policy_list = REPLY_STMT(
    "circ_policy_list", POLICY_NCOLS,
    "SELECT " POLICY_COLUMNS " FROM circ_policy p LEFT JOIN branch b ON b.id = p.branch_id"
    " ORDER BY (p.branch_id IS NOT NULL)::int * 4 + (p.patron_category IS NOT NULL)::int * 2"
    "          + (p.item_type IS NOT NULL)::int, b.code NULLS FIRST, p.patron_category NULLS FIRST,"
    "          p.item_type NULLS FIRST");

static const reply_stmt_t stmt_policy_save = REPLY_STMT(
    "circ_policy_save", POLICY_NCOLS,
    "SELECT * FROM circ_policy_save($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
    "                               $15, $16)");

enum { CAL_KIND, CAL_WEEKDAY, CAL_OPENS_OR_DAY, CAL_CLOSES, CAL_REASON, CAL_NCOLS };
static const reply_stmt_t stmt_calendar_get = REPLY_STMT(
    "circ_calendar_get", CAL_NCOLS,
    "SELECT 'h', h.weekday, to_char(h.opens, 'HH24:MI'), to_char(h.closes, 'HH24:MI'), ''"
    "  FROM branch_hours h JOIN branch b ON b.id = h.branch_id WHERE b.code = $1"
    " UNION ALL "
    "SELECT 'c', 0, c.day::text, '', c.reason"
    "  FROM branch_closed c JOIN branch b ON b.id = c.branch_id"
    " WHERE b.code = $1 AND c.day >= library_today()"
    " ORDER BY 1 DESC, 2, 3");

static const reply_stmt_t stmt_calendar_save = REPLY_STMT(
    "circ_calendar_save", 1,
    "SELECT calendar_save($1, $2, $3::int[], $4::time[], $5::time[], $6::date[], $7::text[],"
    "                     $8::date[])");

void circ_register_statements(void)
{
    static const reply_stmt_t *const all[] = {
        &stmt_checkout,    &stmt_checkin,      &stmt_renew,         &stmt_item_mark,
        &stmt_in_house,    &stmt_account_get,  &stmt_ledger_post,   &stmt_policy_list,
        &stmt_policy_save, &stmt_calendar_get, &stmt_calendar_save,
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        db_stmt_register(&all[i]->db);
}

/* ---- shared ---- */

static const char *circ_opt(const char *s)
{
    return s && s[0] ? s : NULL;
}

static bool circ_required(request_t *req, const char *value, const char *field, const char *what)
{
    if (value && value[0] && strlen(value) <= 64)
        return true;
    request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, field, "%s is required.", what);
    return false;
}

/* The session's staff, workstation and branch as the first parameters. */
static void circ_actor(request_t *req, const char **staff, const char **ws, const char **branch)
{
    const session_t *s = request_session(req);
    *staff = pgtext_int(&req->arena, s->staff_id);
    *ws = pgtext_int(&req->arena, s->workstation_id);
    *branch = pgtext_int(&req->arena, s->branch_id);
}

static const char *circ_may(request_t *req, perm_action_t action)
{
    perm_subject_t who = request_subject(req);
    return perm_check(&who, action, 0) == PERM_OK ? "true" : "false";
}

/* True when s has something besides blanks. */
static bool circ_has_text(const char *s)
{
    for (; s && *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return true;
    return false;
}

/*
 * The one rule for the `override` flag of every request that has one
 * (Checkout, Renew; PROTOCOL.md, "Overrides"): only a role with the override
 * permission may set it, whether or not anything would be refused, and only
 * with a reason. A clerk's override is answered FORBIDDEN `override` here,
 * before the database is asked, so that it is never silently ignored nor
 * honoured. Returns false when req was answered.
 */
static bool circ_override_allowed(request_t *req, protobuf_c_boolean has, protobuf_c_boolean set,
                                  const char *reason)
{
    if (!(has && set))
        return true;
    perm_subject_t who = request_subject(req);
    if (perm_check(&who, PERM_CIRC_OVERRIDE, 0) != PERM_OK) {
        log_info(req->conn->id, "forbidden: %s sent an override", request_session(req)->username);
        request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "override",
                     "Only librarians and above may override a refusal.");
        return false;
    }
    if (!circ_has_text(reason)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:override_reason",
                     "An override needs a reason.");
        return false;
    }
    return true;
}

/* ---- checkout ---- */

static void checkout_done(request_t *req, const PGresult *res)
{
    arena_t *a = &req->arena;
    Carrel__CheckoutReply *c = arena_new(a, Carrel__CheckoutReply, 1);
    carrel__checkout_reply__init(c);
    c->has_loan_id = 1;
    c->loan_id = db_int64(res, 0, CHECKOUT_LOAN_ID);
    c->barcode = reply_text_opt(req, res, 0, CHECKOUT_BARCODE);
    c->title = reply_text_opt(req, res, 0, CHECKOUT_TITLE);
    c->due_at = reply_text_opt(req, res, 0, CHECKOUT_DUE_AT);
    c->due_date = reply_text_opt(req, res, 0, CHECKOUT_DUE_DATE);
    c->patron_name = reply_text_opt(req, res, 0, CHECKOUT_PATRON_NAME);
    c->slip = reply_text_opt(req, res, 0, CHECKOUT_SLIP);
    c->overridden = pgtext_array_parse(a, COL(res, 0, CHECKOUT_OVERRIDDEN), &c->n_overridden);
    c->has_loans_out = 1;
    c->loans_out = db_int32(res, 0, CHECKOUT_LOANS_OUT);
    if (!db_null(res, 0, CHECKOUT_FILLED_HOLD_ID)) {
        c->has_filled_hold_id = 1;
        c->filled_hold_id = db_int64(res, 0, CHECKOUT_FILLED_HOLD_ID);
    }
    if (c->n_overridden)
        log_info(req->conn->id, "%s overrode %s for item %s", request_session(req)->username,
                 c->overridden[0], c->barcode);
    req->resp.body_case = CARREL__RESPONSE__BODY_CHECKOUT;
    req->resp.checkout = c;
    request_ok(req);
}

void handle_checkout(request_t *req)
{
    Carrel__Checkout *m = req->msg->checkout;
    if (!circ_required(req, m->card, "field:card", "A library card") ||
        !circ_required(req, m->barcode, "field:barcode", "An item barcode") ||
        !circ_override_allowed(req, m->has_override, m->override, m->override_reason))
        return;
    const char *staff, *ws, *branch;
    circ_actor(req, &staff, &ws, &branch);
    const char *values[9] = {
        req->msg->request_key,
        staff,
        ws,
        branch,
        m->card,
        m->barcode,
        m->has_override && m->override ? "true" : "false",
        circ_opt(m->override_reason),
        circ_may(req, PERM_CIRC_OVERRIDE),
    };
    reply_query(req, &stmt_checkout, 9, values, checkout_done);
}

/* ---- checkin ---- */

static void checkin_done(request_t *req, const PGresult *res)
{
    Carrel__CheckinReply *c = arena_new(&req->arena, Carrel__CheckinReply, 1);
    carrel__checkin_reply__init(c);
    c->barcode = reply_text_opt(req, res, 0, CHECKIN_BARCODE);
    c->title = reply_text_opt(req, res, 0, CHECKIN_TITLE);
    c->has_was_on_loan = 1;
    c->was_on_loan = db_bool(res, 0, CHECKIN_WAS_ON_LOAN);
    c->route = reply_text_opt(req, res, 0, CHECKIN_ROUTE);
    c->destination_branch = reply_text_opt(req, res, 0, CHECKIN_DESTINATION_CODE);
    c->destination_name = reply_text_opt(req, res, 0, CHECKIN_DESTINATION_NAME);
    c->has_fine_cents = 1;
    c->fine_cents = db_int64(res, 0, CHECKIN_FINE_CENTS);
    c->message = reply_text_opt(req, res, 0, CHECKIN_MESSAGE);
    c->slip = reply_text_opt(req, res, 0, CHECKIN_SLIP);
    c->previous_status = reply_text_opt(req, res, 0, CHECKIN_PREVIOUS_STATUS);
    c->patron_name = reply_text_opt(req, res, 0, CHECKIN_PATRON_NAME);
    if (!db_null(res, 0, CHECKIN_HOLD_ID)) {
        c->has_hold_id = 1;
        c->hold_id = db_int64(res, 0, CHECKIN_HOLD_ID);
    }
    c->display = reply_text_opt(req, res, 0, CHECKIN_DISPLAY);
    req->resp.body_case = CARREL__RESPONSE__BODY_CHECKIN;
    req->resp.checkin = c;
    request_ok(req);
}

void handle_checkin(request_t *req)
{
    Carrel__Checkin *m = req->msg->checkin;
    if (!circ_required(req, m->barcode, "field:barcode", "An item barcode"))
        return;
    const char *staff, *ws, *branch;
    circ_actor(req, &staff, &ws, &branch);
    const char *values[6] = {req->msg->request_key,   staff, ws, branch, m->barcode,
                             circ_opt(m->returned_at)};
    reply_query(req, &stmt_checkin, 6, values, checkin_done);
}

/* ---- renew ---- */

static void renew_done(request_t *req, const PGresult *res)
{
    arena_t *a = &req->arena;
    int n = PQntuples(res);
    Carrel__RenewReply *reply = arena_new(a, Carrel__RenewReply, 1);
    carrel__renew_reply__init(reply);
    reply->results = arena_new(a, Carrel__RenewResult *, n + 1);
    reply->has_renewed = reply->has_refused = 1;
    for (int i = 0; i < n; i++) {
        Carrel__RenewResult *x = arena_new(a, Carrel__RenewResult, 1);
        carrel__renew_result__init(x);
        x->barcode = reply_text_opt(req, res, i, RENEW_BARCODE);
        x->title = reply_text_opt(req, res, i, RENEW_TITLE);
        x->has_renewed = 1;
        x->renewed = db_bool(res, i, RENEW_RENEWED);
        x->due_at = reply_text_opt(req, res, i, RENEW_DUE_AT);
        x->due_date = reply_text_opt(req, res, i, RENEW_DUE_DATE);
        x->reason = reply_text_opt(req, res, i, RENEW_REASON);
        x->message = reply_text_opt(req, res, i, RENEW_MESSAGE);
        x->has_renewals = 1;
        x->renewals = db_int32(res, i, RENEW_RENEWALS);
        if (x->renewed)
            reply->renewed++;
        else
            reply->refused++;
        reply->results[reply->n_results++] = x;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_RENEW;
    req->resp.renew = reply;
    request_ok(req);
}

void handle_renew(request_t *req)
{
    Carrel__Renew *m = req->msg->renew;
    if (!circ_required(req, m->card, "field:card", "A library card") ||
        !circ_override_allowed(req, m->has_override, m->override, m->override_reason))
        return;
    const char *staff, *ws, *branch;
    circ_actor(req, &staff, &ws, &branch);
    const char *values[9] = {
        req->msg->request_key,
        staff,
        ws,
        branch,
        m->card,
        circ_opt(m->barcode),
        m->has_override && m->override ? "true" : "false",
        circ_opt(m->override_reason),
        circ_may(req, PERM_CIRC_OVERRIDE),
    };
    reply_query(req, &stmt_renew, 9, values, renew_done);
}

/* ---- item marks and in-house use: answer with the item as it is now ---- */

typedef struct mark_state {
    Carrel__ItemMarkReply *reply;
} mark_state_t;

static void mark_item_loaded(request_t *req, Carrel__Item *item, void *arg)
{
    mark_state_t *st = arg;
    if (st) {
        st->reply->item = item;
        req->resp.body_case = CARREL__RESPONSE__BODY_ITEM_MARK;
        req->resp.item_mark = st->reply;
    } else {
        req->resp.body_case = CARREL__RESPONSE__BODY_IN_HOUSE_USE;
        req->resp.in_house_use = item;
    }
    request_ok(req);
}

static void mark_done(request_t *req, const PGresult *res)
{
    mark_state_t *st = arena_new(&req->arena, mark_state_t, 1);
    st->reply = arena_new(&req->arena, Carrel__ItemMarkReply, 1);
    carrel__item_mark_reply__init(st->reply);
    st->reply->has_charged_cents = 1;
    st->reply->charged_cents = db_int64(res, 0, MARK_CHARGED_CENTS);
    st->reply->message = reply_text_opt(req, res, 0, MARK_MESSAGE);
    catalog_item_now(req, reply_text_opt(req, res, 0, MARK_BARCODE), NULL, mark_item_loaded, st);
}

void handle_item_mark(request_t *req)
{
    Carrel__ItemMark *m = req->msg->item_mark;
    if (!circ_required(req, m->barcode, "field:barcode", "An item barcode") ||
        !circ_required(req, m->mark, "field:mark", "A mark (lost, missing, ...)"))
        return;
    const char *staff, *ws, *branch;
    circ_actor(req, &staff, &ws, &branch);
    const char *values[7] = {req->msg->request_key, staff, ws, branch, m->barcode, m->mark,
                             circ_opt(m->note)};
    reply_query(req, &stmt_item_mark, 7, values, mark_done);
}

static void in_house_done(request_t *req, const PGresult *res)
{
    catalog_item_now(req, NULL, reply_text_opt(req, res, 0, IN_HOUSE_ITEM_ID), mark_item_loaded,
                     NULL);
}

void handle_in_house_use(request_t *req)
{
    Carrel__InHouseUse *m = req->msg->in_house_use;
    if (!circ_required(req, m->barcode, "field:barcode", "An item barcode"))
        return;
    const char *staff, *ws, *branch;
    circ_actor(req, &staff, &ws, &branch);
    const char *values[4] = {req->msg->request_key, staff, branch, m->barcode};
    reply_query(req, &stmt_in_house, 4, values, in_house_done);
}

/* ---- account: the patron, their loans, their ledger, their holds ---- */

static Carrel__LedgerEntry *circ_ledger_row(request_t *req, const PGresult *res, int i)
{
    Carrel__LedgerEntry *e = arena_new(&req->arena, Carrel__LedgerEntry, 1);
    carrel__ledger_entry__init(e);
    e->has_id = 1;
    e->id = db_int64(res, i, LEDGER_ID);
    e->at = reply_text_opt(req, res, i, LEDGER_AT);
    e->kind = reply_text_opt(req, res, i, LEDGER_KIND);
    e->has_amount_cents = 1;
    e->amount_cents = db_int64(res, i, LEDGER_AMOUNT_CENTS);
    e->barcode = reply_text_opt(req, res, i, LEDGER_BARCODE);
    e->note = reply_text_opt(req, res, i, LEDGER_NOTE);
    e->staff = reply_text_opt(req, res, i, LEDGER_STAFF);
    return e;
}

static Carrel__Loan *circ_account_loan_row(request_t *req, const PGresult *res, int i)
{
    Carrel__Loan *l = arena_new(&req->arena, Carrel__Loan, 1);
    carrel__loan__init(l);
    l->has_id = 1;
    l->id = db_int64(res, i, ACCOUNT_LOAN_ID);
    l->barcode = reply_text_opt(req, res, i, ACCOUNT_LOAN_BARCODE);
    l->title = reply_text_opt(req, res, i, ACCOUNT_LOAN_TITLE);
    l->checkout_at = reply_text_opt(req, res, i, ACCOUNT_LOAN_CHECKOUT_AT);
    l->checkout_branch = reply_text_opt(req, res, i, ACCOUNT_LOAN_CHECKOUT_BRANCH);
    l->due_at = reply_text_opt(req, res, i, ACCOUNT_LOAN_DUE_AT);
    l->due_date = reply_text_opt(req, res, i, ACCOUNT_LOAN_DUE_DATE);
    l->has_overdue = 1;
    l->overdue = db_bool(res, i, ACCOUNT_LOAN_OVERDUE);
    l->has_renewals = l->has_renewals_allowed = 1;
    l->renewals = db_int32(res, i, ACCOUNT_LOAN_RENEWALS);
    l->renewals_allowed = db_int32(res, i, ACCOUNT_LOAN_RENEWALS_ALLOWED);
    l->item_type = reply_text_opt(req, res, i, ACCOUNT_LOAN_ITEM_TYPE);
    return l;
}

static void circ_account_patron_row(request_t *req, Carrel__Account *acc, const PGresult *res,
                                    int i)
{
    acc->card = reply_text_opt(req, res, i, ACCOUNT_PATRON_CARD);
    acc->name = reply_text_opt(req, res, i, ACCOUNT_PATRON_NAME);
    acc->category = reply_text_opt(req, res, i, ACCOUNT_PATRON_CATEGORY);
    acc->expires_on = reply_text_opt(req, res, i, ACCOUNT_PATRON_EXPIRES_ON);
    acc->has_expired = acc->has_blocked = acc->has_balance_cents = acc->has_loans_out = 1;
    acc->has_overdue = acc->has_block_threshold_cents = 1;
    acc->expired = db_bool(res, i, ACCOUNT_PATRON_EXPIRED);
    acc->blocked = db_bool(res, i, ACCOUNT_PATRON_BLOCKED);
    acc->desk_alert = reply_text_opt(req, res, i, ACCOUNT_PATRON_DESK_ALERT);
    acc->balance_cents = db_int64(res, i, ACCOUNT_PATRON_BALANCE_CENTS);
    acc->loans_out = db_int32(res, i, ACCOUNT_PATRON_LOANS_OUT);
    acc->overdue = db_int32(res, i, ACCOUNT_PATRON_OVERDUE);
    acc->block_threshold_cents = db_int64(res, i, ACCOUNT_PATRON_BLOCK_THRESHOLD_CENTS);
}

/* The rows of stmt_account_get, sorted by kind: 'a' patron, 'g' ledger, 'h' holds, 'l' loans. */
static void account_done(request_t *req, const PGresult *res)
{
    arena_t *a = &req->arena;
    int n = PQntuples(res);
    if (n == 0 || COL(res, 0, ACCOUNT_KIND)[0] != 'a') {
        request_fail(req, CARREL__STATUS__STATUS_NOT_FOUND, "patron_not_found",
                     "No patron has card %s.", req->msg->account_get->card);
        return;
    }
    Carrel__Account *acc = arena_new(a, Carrel__Account, 1);
    carrel__account__init(acc);
    acc->loans = arena_new(a, Carrel__Loan *, n + 1);
    acc->ledger = arena_new(a, Carrel__LedgerEntry *, n + 1);
    acc->holds = arena_new(a, Carrel__Hold *, n + 1);
    for (int i = 0; i < n; i++) {
        switch (COL(res, i, ACCOUNT_KIND)[0]) {
        case 'a':
            circ_account_patron_row(req, acc, res, i);
            break;
        case 'l':
            acc->loans[acc->n_loans++] = circ_account_loan_row(req, res, i);
            break;
        case 'g':
            acc->ledger[acc->n_ledger++] = circ_ledger_row(req, res, i);
            break;
        case 'h':
            acc->holds[acc->n_holds++] = holds_from_row(req, res, i);
            break;
        }
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_ACCOUNT;
    req->resp.account = acc;
    request_ok(req);
}

void handle_account_get(request_t *req)
{
    Carrel__AccountGet *m = req->msg->account_get;
    if (!circ_required(req, m->card, "field:card", "A library card"))
        return;
    int ledger_limit;
    if (!request_limit(req, m->has_ledger_limit, m->ledger_limit, 50, 1000, "field:ledger_limit",
                       &ledger_limit))
        return;
    const char *values[2] = {m->card, pgtext_int(&req->arena, ledger_limit)};
    reply_query(req, &stmt_account_get, 2, values, account_done);
}

static void ledger_post_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal", "Nothing was recorded.");
        return;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_LEDGER_ENTRY;
    req->resp.ledger_entry = circ_ledger_row(req, res, 0);
    log_info(req->conn->id, "%s recorded a %s of %lld cents", request_session(req)->username,
             req->resp.ledger_entry->kind, (long long)req->resp.ledger_entry->amount_cents);
    request_ok(req);
}

void handle_ledger_post(request_t *req)
{
    Carrel__LedgerPost *m = req->msg->ledger_post;
    if (!circ_required(req, m->card, "field:card", "A library card") ||
        !circ_required(req, m->kind, "field:kind", "A kind (payment, waiver, charge)"))
        return;
    const char *staff, *ws, *branch;
    circ_actor(req, &staff, &ws, &branch);
    const char *values[7] = {
        req->msg->request_key,
        staff,
        m->card,
        m->kind,
        m->has_amount_cents ? pgtext_int(&req->arena, m->amount_cents) : NULL,
        circ_opt(m->note),
        circ_may(req, PERM_LEDGER_ADJUST),
    };
    reply_query(req, &stmt_ledger_post, 7, values, ledger_post_done);
}

/* ---- loan rules ---- */

static Carrel__Policy *circ_policy_row(request_t *req, const PGresult *res, int i)
{
    Carrel__Policy *p = arena_new(&req->arena, Carrel__Policy, 1);
    carrel__policy__init(p);
    p->has_id = 1;
    p->id = db_int64(res, i, POLICY_ID);
    p->patron_category = reply_text_opt(req, res, i, POLICY_PATRON_CATEGORY);
    p->item_type = reply_text_opt(req, res, i, POLICY_ITEM_TYPE);
    p->branch = reply_text_opt(req, res, i, POLICY_BRANCH);
    p->has_loan_days = p->has_loan_hours = p->has_renewals = p->has_circulates = 1;
    p->loan_days = db_int32(res, i, POLICY_LOAN_DAYS);
    p->loan_hours = db_int32(res, i, POLICY_LOAN_HOURS);
    p->renewals = db_int32(res, i, POLICY_RENEWALS);
    p->circulates = db_bool(res, i, POLICY_CIRCULATES);
    if (!db_null(res, i, POLICY_MAX_LOANS)) {
        p->has_max_loans = 1;
        p->max_loans = db_int32(res, i, POLICY_MAX_LOANS);
    }
    if (!db_null(res, i, POLICY_MAX_LOANS_OF_TYPE)) {
        p->has_max_loans_of_type = 1;
        p->max_loans_of_type = db_int32(res, i, POLICY_MAX_LOANS_OF_TYPE);
    }
    p->has_fine_cents_per_day = p->has_fine_max_cents = p->has_grace_days = 1;
    p->fine_cents_per_day = db_int64(res, i, POLICY_FINE_CENTS_PER_DAY);
    p->fine_max_cents = db_int64(res, i, POLICY_FINE_MAX_CENTS);
    p->grace_days = db_int32(res, i, POLICY_GRACE_DAYS);
    p->has_hold_blocks_renewal = p->has_charge_lost = 1;
    p->hold_blocks_renewal = db_bool(res, i, POLICY_HOLD_BLOCKS_RENEWAL);
    p->charge_lost = db_bool(res, i, POLICY_CHARGE_LOST);
    return p;
}

static void policy_list_done(request_t *req, const PGresult *res)
{
    int n = PQntuples(res);
    Carrel__PolicyListReply *reply = arena_new(&req->arena, Carrel__PolicyListReply, 1);
    carrel__policy_list_reply__init(reply);
    reply->policies = arena_new(&req->arena, Carrel__Policy *, n + 1);
    for (int i = 0; i < n; i++)
        reply->policies[reply->n_policies++] = circ_policy_row(req, res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_POLICIES;
    req->resp.policies = reply;
    request_ok(req);
}

void handle_policy_list(request_t *req)
{
    reply_query(req, &stmt_policy_list, 0, NULL, policy_list_done);
}

static void policy_save_done(request_t *req, const PGresult *res)
{
    const Carrel__Policy *m = req->msg->policy_save->policy;
    if (m->has_remove && m->remove) {
        log_info(req->conn->id, "%s removed loan rule %lld", request_session(req)->username,
                 (long long)m->id);
        request_ok(req);
        return;
    }
    if (PQntuples(res) != 1) {
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal", "The rule was not saved.");
        return;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_POLICY;
    req->resp.policy = circ_policy_row(req, res, 0);
    log_info(req->conn->id, "%s saved loan rule %lld", request_session(req)->username,
             (long long)req->resp.policy->id);
    request_ok(req);
}

static const char *circ_int_or_null(request_t *req, protobuf_c_boolean has, int64_t v)
{
    return has ? pgtext_int(&req->arena, v) : NULL;
}

void handle_policy_save(request_t *req)
{
    const Carrel__Policy *p = req->msg->policy_save->policy;
    if (p == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:policy",
                     "PolicySave needs a policy.");
        return;
    }
    bool remove = p->has_remove && p->remove;
    if (remove && !p->has_id) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:id",
                     "Name the rule to remove by its id.");
        return;
    }
    const char *values[16] = {
        circ_int_or_null(req, p->has_id, p->id),
        remove ? "true" : "false",
        circ_opt(p->patron_category),
        circ_opt(p->item_type),
        circ_opt(p->branch),
        pgtext_int(&req->arena, p->has_loan_days ? p->loan_days : 21),
        pgtext_int(&req->arena, p->has_loan_hours ? p->loan_hours : 0),
        pgtext_int(&req->arena, p->has_renewals ? p->renewals : 2),
        p->has_circulates && !p->circulates ? "false" : "true",
        circ_int_or_null(req, p->has_max_loans, p->max_loans),
        circ_int_or_null(req, p->has_max_loans_of_type, p->max_loans_of_type),
        pgtext_int(&req->arena, p->has_fine_cents_per_day ? p->fine_cents_per_day : 0),
        pgtext_int(&req->arena, p->has_fine_max_cents ? p->fine_max_cents : 0),
        pgtext_int(&req->arena, p->has_grace_days ? p->grace_days : 0),
        p->has_hold_blocks_renewal && !p->hold_blocks_renewal ? "false" : "true",
        p->has_charge_lost && !p->charge_lost ? "false" : "true",
    };
    reply_query(req, &stmt_policy_save, 16, values, policy_save_done);
}

/* ---- calendars ---- */

static void calendar_done(request_t *req, const PGresult *res)
{
    arena_t *a = &req->arena;
    int n = PQntuples(res);
    Carrel__Calendar *cal = arena_new(a, Carrel__Calendar, 1);
    carrel__calendar__init(cal);
    cal->branch = (char *)req->state;
    cal->hours = arena_new(a, Carrel__OpenHours *, n + 1);
    cal->closed = arena_new(a, Carrel__ClosedDay *, n + 1);
    for (int i = 0; i < n; i++) {
        if (COL(res, i, CAL_KIND)[0] == 'h') {
            Carrel__OpenHours *h = arena_new(a, Carrel__OpenHours, 1);
            carrel__open_hours__init(h);
            h->has_weekday = 1;
            h->weekday = db_int32(res, i, CAL_WEEKDAY);
            h->opens = reply_text_opt(req, res, i, CAL_OPENS_OR_DAY);
            h->closes = reply_text_opt(req, res, i, CAL_CLOSES);
            cal->hours[cal->n_hours++] = h;
        } else {
            Carrel__ClosedDay *c = arena_new(a, Carrel__ClosedDay, 1);
            carrel__closed_day__init(c);
            c->day = reply_text_opt(req, res, i, CAL_OPENS_OR_DAY);
            c->reason = reply_text_opt(req, res, i, CAL_REASON);
            cal->closed[cal->n_closed++] = c;
        }
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_CALENDAR;
    req->resp.calendar = cal;
    request_ok(req);
}

static void calendar_load(request_t *req, const char *branch)
{
    req->state = arena_strdup(&req->arena, branch);
    const char *values[1] = {branch};
    reply_query(req, &stmt_calendar_get, 1, values, calendar_done);
}

void handle_calendar_get(request_t *req)
{
    const char *branch = circ_opt(req->msg->calendar_get->branch);
    calendar_load(req, branch ? branch : request_session(req)->branch_code);
}

static void calendar_saved(request_t *req, const PGresult *res)
{
    (void)res;
    log_info(req->conn->id, "%s changed the calendar of %s", request_session(req)->username,
             req->msg->calendar_save->branch);
    calendar_load(req, req->msg->calendar_save->branch);
}

void handle_calendar_save(request_t *req)
{
    Carrel__CalendarSave *m = req->msg->calendar_save;
    arena_t *a = &req->arena;
    if (!circ_required(req, m->branch, "field:branch", "A branch code"))
        return;
    /* Branch managers change their own branch's calendar only. */
    perm_subject_t who = request_subject(req);
    int target = strcmp(m->branch, request_session(req)->branch_code) == 0
                     ? request_session(req)->branch_id
                     : -1;
    if (perm_check(&who, PERM_CALENDAR_EDIT, target) != PERM_OK) {
        request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "branch",
                     "A branch manager may change only the calendar of this workstation's "
                     "branch.");
        return;
    }
    char **days = arena_new(a, char *, m->n_hours + 1);
    char **opens = arena_new(a, char *, m->n_hours + 1);
    char **closes = arena_new(a, char *, m->n_hours + 1);
    for (size_t i = 0; i < m->n_hours; i++) {
        const Carrel__OpenHours *h = m->hours[i];
        if (!h->has_weekday || h->weekday < 1 || h->weekday > 7 || !h->opens || !h->closes) {
            request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:hours",
                         "Each day of hours needs a weekday (1-7), an opening and a closing "
                         "time.");
            return;
        }
        days[i] = pgtext_int(a, h->weekday);
        opens[i] = h->opens;
        closes[i] = h->closes;
    }
    char **add_days = arena_new(a, char *, m->n_add_closed + 1);
    char **add_reasons = arena_new(a, char *, m->n_add_closed + 1);
    for (size_t i = 0; i < m->n_add_closed; i++) {
        add_days[i] = m->add_closed[i]->day;
        add_reasons[i] = m->add_closed[i]->reason ? m->add_closed[i]->reason : "";
    }
    const char *values[8] = {
        m->branch,
        m->has_hours_set && m->hours_set ? "true" : "false",
        pgtext_array_build(a, days, m->n_hours),
        pgtext_array_build(a, opens, m->n_hours),
        pgtext_array_build(a, closes, m->n_hours),
        pgtext_array_build(a, add_days, m->n_add_closed),
        pgtext_array_build(a, add_reasons, m->n_add_closed),
        pgtext_array_build(a, m->remove_closed, m->n_remove_closed),
    };
    reply_query(req, &stmt_calendar_save, 8, values, calendar_saved);
}
