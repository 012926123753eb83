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
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "handlers.h"
#include "log.h"
#include "pgtext.h"

/* Timestamps travel as ISO 8601 in UTC (api_time, sql/rules/foundation.sql). */
#define TS(x) "api_time(" x ")"

static const db_stmt_t stmt_checkout = {
    "circ_checkout",
    "SELECT loan_id, barcode, title, " TS(
        "due_at") ", due_date, patron_name, slip, overridden,"
                  "       loans_out, filled_hold_id"
                  "  FROM circ_checkout($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9)",
};

static const db_stmt_t stmt_checkin = {
    "circ_checkin",
    "SELECT barcode, title, was_on_loan, route, destination_code, destination_name, fine_cents,"
    "       message, slip, previous_status, patron_name, hold_id"
    "  FROM circ_checkin($1::uuid, $2, $3, $4, $5, $6::timestamptz)",
};

static const db_stmt_t stmt_renew = {
    "circ_renew",
    "SELECT barcode, title, renewed, " TS(
        "due_at") ", due_date, reason, message, renewals"
                  "  FROM circ_renew($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9)",
};

static const db_stmt_t stmt_item_mark = {
    "circ_item_mark",
    "SELECT barcode, charged_cents, message FROM circ_item_mark($1::uuid, $2, $3, $4, $5, $6, $7)",
};

static const db_stmt_t stmt_in_house = {
    "circ_in_house_use",
    "SELECT circ_in_house_use($1::uuid, $2, $3, $4)",
};

static const db_stmt_t stmt_item_by_id = {
    "circ_item_by_id",
    "SELECT " CATALOG_ITEM_COLUMNS " WHERE i.barcode = $1 OR i.id = $2",
};

static const db_stmt_t stmt_account = {
    "circ_account",
    "SELECT p.id, p.card, p.first_name || ' ' || p.last_name, p.category, p.expires_on::text,"
    "       s.expired, s.blocked, coalesce(p.desk_alert, ''), s.balance_cents, s.loans_out,"
    "       (SELECT count(*) FROM loan l WHERE l.patron_id = p.id AND l.returned_at IS NULL"
    "                                      AND l.due_at < now()),"
    "       s.block_threshold_cents"
    "  FROM patron p CROSS JOIN LATERAL patron_standing(p.id) s"
    " WHERE p.id = patron_resolve($1, NULL)",
};

static const db_stmt_t stmt_account_loans = {
    "circ_account_loans",
    "SELECT l.id, i.barcode, b.title, " TS("l.checkout_at") ", cb.code, " TS(
        "l.due_at") ","
                    "       library_local_date(l.due_at)::text, l.due_at < now(), l.renewals,"
                    "       (circ_rule(l.patron_category, l.item_type, "
                    "l.checkout_branch_id)).renewals,"
                    "       l.item_type"
                    "  FROM loan l JOIN item i ON i.id = l.item_id JOIN bib b ON b.id = i.bib_id"
                    "  JOIN branch cb ON cb.id = l.checkout_branch_id"
                    " WHERE l.patron_id = $1 AND l.returned_at IS NULL ORDER BY l.due_at, l.id",
};

static const db_stmt_t stmt_account_ledger = {
    "circ_account_ledger",
    "SELECT x.id, " TS("x.at") ", x.kind, x.amount_cents, coalesce(i.barcode, ''), x.note,"
                               "       coalesce(s.username, '')"
                               "  FROM patron_ledger x LEFT JOIN item i ON i.id = x.item_id"
                               "  LEFT JOIN staff s ON s.id = x.staff_id"
                               " WHERE x.patron_id = $1 ORDER BY x.at DESC, x.id DESC LIMIT $2",
};

static const db_stmt_t stmt_ledger_post = {
    "circ_ledger_post",
    "SELECT * FROM circ_ledger_post($1::uuid, $2, $3, $4, $5, $6, $7)",
};

#define POLICY_COLUMNS                                                                             \
    "p.id, coalesce(p.patron_category, ''), coalesce(p.item_type, ''), coalesce(b.code, ''),"      \
    " p.loan_days, p.loan_hours, p.renewals, p.circulates, p.max_loans, p.max_loans_of_type,"      \
    " p.fine_cents_per_day, p.fine_max_cents, p.grace_days, p.hold_blocks_renewal, p.charge_lost"

static const db_stmt_t stmt_policy_list = {
    "circ_policy_list",
    "SELECT " POLICY_COLUMNS " FROM circ_policy p LEFT JOIN branch b ON b.id = p.branch_id"
    " ORDER BY (p.branch_id IS NOT NULL)::int * 4 + (p.patron_category IS NOT NULL)::int * 2"
    "          + (p.item_type IS NOT NULL)::int, b.code NULLS FIRST, p.patron_category NULLS FIRST,"
    "          p.item_type NULLS FIRST",
};

static const db_stmt_t stmt_policy_save = {
    "circ_policy_save",
    "SELECT * FROM circ_policy_save($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
    "                               $15, $16)",
};

static const db_stmt_t stmt_calendar_get = {
    "circ_calendar_get",
    "SELECT 'h', h.weekday, to_char(h.opens, 'HH24:MI'), to_char(h.closes, 'HH24:MI'), ''"
    "  FROM branch_hours h JOIN branch b ON b.id = h.branch_id WHERE b.code = $1"
    " UNION ALL "
    "SELECT 'c', 0, c.day::text, '', c.reason"
    "  FROM branch_closed c JOIN branch b ON b.id = c.branch_id"
    " WHERE b.code = $1 AND c.day >= library_today()"
    " ORDER BY 1 DESC, 2, 3",
};

static const db_stmt_t stmt_calendar_save = {
    "circ_calendar_save",
    "SELECT calendar_save($1, $2, $3::int[], $4::time[], $5::time[], $6::date[], $7::text[],"
    "                     $8::date[])",
};

void circ_register_statements(void)
{
    static const db_stmt_t *const all[] = {
        &stmt_checkout,       &stmt_checkin,       &stmt_renew,       &stmt_item_mark,
        &stmt_in_house,       &stmt_item_by_id,    &stmt_account,     &stmt_account_loans,
        &stmt_account_ledger, &stmt_ledger_post,   &stmt_policy_list, &stmt_policy_save,
        &stmt_calendar_get,   &stmt_calendar_save,
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        db_stmt_register(all[i]);
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

static char *circ_str(request_t *req, const PGresult *res, int row, int col)
{
    return db_null(res, row, col) ? NULL : arena_strdup(&req->arena, db_text(res, row, col));
}

/* ---- checkout ---- */

static void checkout_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    arena_t *a = &req->arena;
    const PGresult *res = r->res;
    Carrel__CheckoutReply *c = arena_new(a, Carrel__CheckoutReply, 1);
    carrel__checkout_reply__init(c);
    c->has_loan_id = 1;
    c->loan_id = db_int64(res, 0, 0);
    c->barcode = circ_str(req, res, 0, 1);
    c->title = circ_str(req, res, 0, 2);
    c->due_at = circ_str(req, res, 0, 3);
    c->due_date = circ_str(req, res, 0, 4);
    c->patron_name = circ_str(req, res, 0, 5);
    c->slip = circ_str(req, res, 0, 6);
    c->overridden = pgtext_array_parse(a, db_text(res, 0, 7), &c->n_overridden);
    c->has_loans_out = 1;
    c->loans_out = db_int32(res, 0, 8);
    if (!db_null(res, 0, 9)) {
        c->has_filled_hold_id = 1;
        c->filled_hold_id = db_int64(res, 0, 9);
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
    request_db(req, &stmt_checkout, 9, values, checkout_done);
}

/* ---- checkin ---- */

static void checkin_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    const PGresult *res = r->res;
    Carrel__CheckinReply *c = arena_new(&req->arena, Carrel__CheckinReply, 1);
    carrel__checkin_reply__init(c);
    c->barcode = circ_str(req, res, 0, 0);
    c->title = circ_str(req, res, 0, 1);
    c->has_was_on_loan = 1;
    c->was_on_loan = db_bool(res, 0, 2);
    c->route = circ_str(req, res, 0, 3);
    c->destination_branch = circ_str(req, res, 0, 4);
    c->destination_name = circ_str(req, res, 0, 5);
    c->has_fine_cents = 1;
    c->fine_cents = db_int64(res, 0, 6);
    c->message = circ_str(req, res, 0, 7);
    c->slip = circ_str(req, res, 0, 8);
    c->previous_status = circ_str(req, res, 0, 9);
    c->patron_name = circ_str(req, res, 0, 10);
    if (!db_null(res, 0, 11)) {
        c->has_hold_id = 1;
        c->hold_id = db_int64(res, 0, 11);
    }
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
    request_db(req, &stmt_checkin, 6, values, checkin_done);
}

/* ---- renew ---- */

static void renew_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    arena_t *a = &req->arena;
    const PGresult *res = r->res;
    int n = PQntuples(res);
    Carrel__RenewReply *reply = arena_new(a, Carrel__RenewReply, 1);
    carrel__renew_reply__init(reply);
    reply->results = arena_new(a, Carrel__RenewResult *, n + 1);
    reply->has_renewed = reply->has_refused = 1;
    for (int i = 0; i < n; i++) {
        Carrel__RenewResult *x = arena_new(a, Carrel__RenewResult, 1);
        carrel__renew_result__init(x);
        x->barcode = circ_str(req, res, i, 0);
        x->title = circ_str(req, res, i, 1);
        x->has_renewed = 1;
        x->renewed = db_bool(res, i, 2);
        x->due_at = circ_str(req, res, i, 3);
        x->due_date = circ_str(req, res, i, 4);
        x->reason = circ_str(req, res, i, 5);
        x->message = circ_str(req, res, i, 6);
        x->has_renewals = 1;
        x->renewals = db_int32(res, i, 7);
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
    request_db(req, &stmt_renew, 9, values, renew_done);
}

/* ---- item marks and in-house use: answer with the item as it is now ---- */

typedef struct mark_state {
    Carrel__ItemMarkReply *reply;
} mark_state_t;

static void mark_item_loaded(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    Carrel__Item *item = PQntuples(r->res) ? catalog_item_from_row(&req->arena, r->res, 0) : NULL;
    mark_state_t *st = req->state;
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

static void mark_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    mark_state_t *st = arena_new(&req->arena, mark_state_t, 1);
    req->state = st;
    st->reply = arena_new(&req->arena, Carrel__ItemMarkReply, 1);
    carrel__item_mark_reply__init(st->reply);
    st->reply->has_charged_cents = 1;
    st->reply->charged_cents = db_int64(r->res, 0, 1);
    st->reply->message = circ_str(req, r->res, 0, 2);
    const char *values[2] = {circ_str(req, r->res, 0, 0), NULL};
    request_db(req, &stmt_item_by_id, 2, values, mark_item_loaded);
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
    request_db(req, &stmt_item_mark, 7, values, mark_done);
}

static void in_house_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    const char *values[2] = {NULL, circ_str(req, r->res, 0, 0)};
    request_db(req, &stmt_item_by_id, 2, values, mark_item_loaded);
}

void handle_in_house_use(request_t *req)
{
    Carrel__InHouseUse *m = req->msg->in_house_use;
    if (!circ_required(req, m->barcode, "field:barcode", "An item barcode"))
        return;
    const char *staff, *ws, *branch;
    circ_actor(req, &staff, &ws, &branch);
    const char *values[4] = {req->msg->request_key, staff, branch, m->barcode};
    request_db(req, &stmt_in_house, 4, values, in_house_done);
}

/* ---- account: the patron, their loans, their ledger ---- */

typedef struct account_state {
    Carrel__Account *account;
    const char *patron_id;
    int ledger_limit;
} account_state_t;

static Carrel__LedgerEntry *circ_ledger_row(request_t *req, const PGresult *res, int i)
{
    Carrel__LedgerEntry *e = arena_new(&req->arena, Carrel__LedgerEntry, 1);
    carrel__ledger_entry__init(e);
    e->has_id = 1;
    e->id = db_int64(res, i, 0);
    e->at = circ_str(req, res, i, 1);
    e->kind = circ_str(req, res, i, 2);
    e->has_amount_cents = 1;
    e->amount_cents = db_int64(res, i, 3);
    e->barcode = circ_str(req, res, i, 4);
    e->note = circ_str(req, res, i, 5);
    e->staff = circ_str(req, res, i, 6);
    return e;
}

static void account_holds_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    account_state_t *st = req->state;
    st->account->holds = holds_rows(req, r->res, &st->account->n_holds);
    req->resp.body_case = CARREL__RESPONSE__BODY_ACCOUNT;
    req->resp.account = st->account;
    request_ok(req);
}

static void account_ledger_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    account_state_t *st = req->state;
    int n = PQntuples(r->res);
    st->account->ledger = arena_new(&req->arena, Carrel__LedgerEntry *, n + 1);
    for (int i = 0; i < n; i++)
        st->account->ledger[st->account->n_ledger++] = circ_ledger_row(req, r->res, i);
    const char *values[1] = {st->patron_id};
    request_db(req, holds_of_patron_statement(), 1, values, account_holds_done);
}

static void account_loans_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    account_state_t *st = req->state;
    arena_t *a = &req->arena;
    int n = PQntuples(r->res);
    Carrel__Account *acc = st->account;
    acc->loans = arena_new(a, Carrel__Loan *, n + 1);
    for (int i = 0; i < n; i++) {
        Carrel__Loan *l = arena_new(a, Carrel__Loan, 1);
        carrel__loan__init(l);
        l->has_id = 1;
        l->id = db_int64(r->res, i, 0);
        l->barcode = circ_str(req, r->res, i, 1);
        l->title = circ_str(req, r->res, i, 2);
        l->checkout_at = circ_str(req, r->res, i, 3);
        l->checkout_branch = circ_str(req, r->res, i, 4);
        l->due_at = circ_str(req, r->res, i, 5);
        l->due_date = circ_str(req, r->res, i, 6);
        l->has_overdue = 1;
        l->overdue = db_bool(r->res, i, 7);
        l->has_renewals = l->has_renewals_allowed = 1;
        l->renewals = db_int32(r->res, i, 8);
        l->renewals_allowed = db_int32(r->res, i, 9);
        l->item_type = circ_str(req, r->res, i, 10);
        acc->loans[acc->n_loans++] = l;
    }
    const char *values[2] = {st->patron_id, pgtext_int(a, st->ledger_limit)};
    request_db(req, &stmt_account_ledger, 2, values, account_ledger_done);
}

static void account_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    if (PQntuples(r->res) == 0) {
        request_fail(req, CARREL__STATUS__STATUS_NOT_FOUND, "patron_not_found",
                     "No patron has card %s.", req->msg->account_get->card);
        return;
    }
    arena_t *a = &req->arena;
    const PGresult *res = r->res;
    account_state_t *st = req->state;
    st->patron_id = circ_str(req, res, 0, 0);
    Carrel__Account *acc = st->account = arena_new(a, Carrel__Account, 1);
    carrel__account__init(acc);
    acc->card = circ_str(req, res, 0, 1);
    acc->name = circ_str(req, res, 0, 2);
    acc->category = circ_str(req, res, 0, 3);
    acc->expires_on = circ_str(req, res, 0, 4);
    acc->has_expired = acc->has_blocked = acc->has_balance_cents = acc->has_loans_out = 1;
    acc->has_overdue = acc->has_block_threshold_cents = 1;
    acc->expired = db_bool(res, 0, 5);
    acc->blocked = db_bool(res, 0, 6);
    acc->desk_alert = circ_str(req, res, 0, 7);
    acc->balance_cents = db_int64(res, 0, 8);
    acc->loans_out = db_int32(res, 0, 9);
    acc->overdue = db_int32(res, 0, 10);
    acc->block_threshold_cents = db_int64(res, 0, 11);
    const char *values[1] = {st->patron_id};
    request_db(req, &stmt_account_loans, 1, values, account_loans_done);
}

void handle_account_get(request_t *req)
{
    Carrel__AccountGet *m = req->msg->account_get;
    if (!circ_required(req, m->card, "field:card", "A library card"))
        return;
    account_state_t *st = arena_new(&req->arena, account_state_t, 1);
    if (!request_limit(req, m->has_ledger_limit, m->ledger_limit, 50, 1000, "field:ledger_limit",
                       &st->ledger_limit))
        return;
    req->state = st;
    const char *values[1] = {m->card};
    request_db(req, &stmt_account, 1, values, account_done);
}

static void ledger_post_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    if (PQntuples(r->res) != 1) {
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal", "Nothing was recorded.");
        return;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_LEDGER_ENTRY;
    req->resp.ledger_entry = circ_ledger_row(req, r->res, 0);
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
    request_db(req, &stmt_ledger_post, 7, values, ledger_post_done);
}

/* ---- loan rules ---- */

static Carrel__Policy *circ_policy_row(request_t *req, const PGresult *res, int i)
{
    Carrel__Policy *p = arena_new(&req->arena, Carrel__Policy, 1);
    carrel__policy__init(p);
    p->has_id = 1;
    p->id = db_int64(res, i, 0);
    p->patron_category = circ_str(req, res, i, 1);
    p->item_type = circ_str(req, res, i, 2);
    p->branch = circ_str(req, res, i, 3);
    p->has_loan_days = p->has_loan_hours = p->has_renewals = p->has_circulates = 1;
    p->loan_days = db_int32(res, i, 4);
    p->loan_hours = db_int32(res, i, 5);
    p->renewals = db_int32(res, i, 6);
    p->circulates = db_bool(res, i, 7);
    if (!db_null(res, i, 8)) {
        p->has_max_loans = 1;
        p->max_loans = db_int32(res, i, 8);
    }
    if (!db_null(res, i, 9)) {
        p->has_max_loans_of_type = 1;
        p->max_loans_of_type = db_int32(res, i, 9);
    }
    p->has_fine_cents_per_day = p->has_fine_max_cents = p->has_grace_days = 1;
    p->fine_cents_per_day = db_int64(res, i, 10);
    p->fine_max_cents = db_int64(res, i, 11);
    p->grace_days = db_int32(res, i, 12);
    p->has_hold_blocks_renewal = p->has_charge_lost = 1;
    p->hold_blocks_renewal = db_bool(res, i, 13);
    p->charge_lost = db_bool(res, i, 14);
    return p;
}

static void policy_list_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    int n = PQntuples(r->res);
    Carrel__PolicyListReply *reply = arena_new(&req->arena, Carrel__PolicyListReply, 1);
    carrel__policy_list_reply__init(reply);
    reply->policies = arena_new(&req->arena, Carrel__Policy *, n + 1);
    for (int i = 0; i < n; i++)
        reply->policies[reply->n_policies++] = circ_policy_row(req, r->res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_POLICIES;
    req->resp.policies = reply;
    request_ok(req);
}

void handle_policy_list(request_t *req)
{
    request_db(req, &stmt_policy_list, 0, NULL, policy_list_done);
}

static void policy_save_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    const Carrel__Policy *m = req->msg->policy_save->policy;
    if (m->has_remove && m->remove) {
        log_info(req->conn->id, "%s removed loan rule %lld", request_session(req)->username,
                 (long long)m->id);
        request_ok(req);
        return;
    }
    if (PQntuples(r->res) != 1) {
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal", "The rule was not saved.");
        return;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_POLICY;
    req->resp.policy = circ_policy_row(req, r->res, 0);
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
    request_db(req, &stmt_policy_save, 16, values, policy_save_done);
}

/* ---- calendars ---- */

static void calendar_done(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
    arena_t *a = &req->arena;
    int n = PQntuples(r->res);
    Carrel__Calendar *cal = arena_new(a, Carrel__Calendar, 1);
    carrel__calendar__init(cal);
    cal->branch = (char *)req->state;
    cal->hours = arena_new(a, Carrel__OpenHours *, n + 1);
    cal->closed = arena_new(a, Carrel__ClosedDay *, n + 1);
    for (int i = 0; i < n; i++) {
        if (db_text(r->res, i, 0)[0] == 'h') {
            Carrel__OpenHours *h = arena_new(a, Carrel__OpenHours, 1);
            carrel__open_hours__init(h);
            h->has_weekday = 1;
            h->weekday = db_int32(r->res, i, 1);
            h->opens = circ_str(req, r->res, i, 2);
            h->closes = circ_str(req, r->res, i, 3);
            cal->hours[cal->n_hours++] = h;
        } else {
            Carrel__ClosedDay *c = arena_new(a, Carrel__ClosedDay, 1);
            carrel__closed_day__init(c);
            c->day = circ_str(req, r->res, i, 2);
            c->reason = circ_str(req, r->res, i, 4);
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
    request_db(req, &stmt_calendar_get, 1, values, calendar_done);
}

void handle_calendar_get(request_t *req)
{
    const char *branch = circ_opt(req->msg->calendar_get->branch);
    calendar_load(req, branch ? branch : request_session(req)->branch_code);
}

static void calendar_saved(const db_result_t *r, void *arg)
{
    request_t *req = arg;
    if (r->status != DB_OK) {
        request_fail_db(req, r);
        return;
    }
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
    request_db(req, &stmt_calendar_save, 8, values, calendar_saved);
}
