/*
 * patrons: the library's customers. Create and edit (with a version number
 * against lost updates and a possible-duplicate warning), look up by card,
 * search, block and unblock, merge two records, read the change history, list
 * the categories.
 *
 * The rules live in sql/rules/patrons.sql: every change is one SQL function
 * that validates, writes and records its audit_event rows in one
 * transaction. This file checks what only the daemon knows (the caller's
 * permissions), passes the request on, and turns rows into replies. A save
 * hands the Patron to SQL as JSON (json_message, field names as in
 * proto/patron.proto), so a new field needs no new statement parameter.
 *
 * Privacy: every route needs a logged-in staff session; the log names cards,
 * never names or contact details.
 */
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "log.h"
#include "pgtext.h"
#include "reply.h"

/* Every patron reply selects these columns from patron_out, in this order. */
#define PATRON_COLUMNS                                                                             \
    "outcome, id, card, first_name, last_name, preferred_name, birth_date, address_line1,"         \
    " address_line2, city, region, postal_code, phone, email, contact_channel, home_branch,"       \
    " category, expires_on, staff_notes, desk_alert, keep_history, version, created_at,"           \
    " updated_at, former_cards, expired, block_ids, block_reasons, block_placed_by,"               \
    " block_placed_at, category_name, home_branch_name"

enum {
    COL_OUTCOME,
    COL_ID,
    COL_CARD,
    COL_FIRST_NAME,
    COL_LAST_NAME,
    COL_PREFERRED_NAME,
    COL_BIRTH_DATE,
    COL_ADDRESS_LINE1,
    COL_ADDRESS_LINE2,
    COL_CITY,
    COL_REGION,
    COL_POSTAL_CODE,
    COL_PHONE,
    COL_EMAIL,
    COL_CONTACT_CHANNEL,
    COL_HOME_BRANCH,
    COL_CATEGORY,
    COL_EXPIRES_ON,
    COL_STAFF_NOTES,
    COL_DESK_ALERT,
    COL_KEEP_HISTORY,
    COL_VERSION,
    COL_CREATED_AT,
    COL_UPDATED_AT,
    COL_FORMER_CARDS,
    COL_EXPIRED,
    COL_BLOCK_IDS,
    COL_BLOCK_REASONS,
    COL_BLOCK_PLACED_BY,
    COL_BLOCK_PLACED_AT,
    COL_CATEGORY_NAME,
    COL_HOME_BRANCH_NAME,
    COL_NCOLS
};

#define PATRON_FIND_DEFAULT    20
#define PATRON_FIND_MAX        100
#define PATRON_HISTORY_DEFAULT 50
#define PATRON_HISTORY_MAX     500
#define PATRON_QUERY_MAX       200 /* bytes of a search term or card */

static const reply_stmt_t stmt_patron_save =
    REPLY_STMT("patron_save", COL_NCOLS,
               "SELECT " PATRON_COLUMNS " FROM patron_save($1, $2, $3, $4, $5::jsonb)");

static const reply_stmt_t stmt_patron_get =
    REPLY_STMT("patron_get", COL_NCOLS,
               "SELECT " PATRON_COLUMNS " FROM patron_out WHERE id = patron_resolve($1, $2)");

static const reply_stmt_t stmt_patron_find = REPLY_STMT(
    "patron_find", COL_NCOLS, "SELECT " PATRON_COLUMNS " FROM patron_find($1, $2, $3, $4)");

static const reply_stmt_t stmt_patron_block =
    REPLY_STMT("patron_block", COL_NCOLS,
               "SELECT " PATRON_COLUMNS " FROM patron_block_set($1, $2, $3, $4, $5, $6)");

static const reply_stmt_t stmt_patron_merge = REPLY_STMT(
    "patron_merge", COL_NCOLS, "SELECT " PATRON_COLUMNS " FROM patron_merge($1, $2, $3, $4)");

enum {
    HISTORY_ID,
    HISTORY_AT,
    HISTORY_STAFF,
    HISTORY_WORKSTATION,
    HISTORY_BRANCH_CODE,
    HISTORY_ACTION,
    HISTORY_CARD,
    HISTORY_FIELDS,
    HISTORY_BEFORES,
    HISTORY_AFTERS,
    HISTORY_NCOLS
};
static const reply_stmt_t stmt_patron_history = REPLY_STMT(
    "patron_history", HISTORY_NCOLS,
    "SELECT id, at, staff, workstation, branch_code, action, card, fields, befores, afters"
    "  FROM patron_history($1, $2)");

enum { CATEGORY_CODE, CATEGORY_NAME, CATEGORY_CARD_YEARS, CATEGORY_NCOLS };
static const reply_stmt_t stmt_patron_categories =
    REPLY_STMT("patron_categories", CATEGORY_NCOLS,
               "SELECT code, name, card_years FROM patron_category ORDER BY code");

/* A patron's PIN for self-check machines (sql/rules/sip.sql): $4 the hash, NULL to clear. */
enum { PIN_CARD, PIN_HAS_PIN, PIN_NCOLS };
static const reply_stmt_t stmt_patron_pin_set = REPLY_STMT(
    "patron_pin_set", PIN_NCOLS, "SELECT card, has_pin FROM patron_pin_set($1, $2, $3, $4)");

void patrons_register_statements(void)
{
    db_stmt_register(&stmt_patron_pin_set.db);
    db_stmt_register(&stmt_patron_save.db);
    db_stmt_register(&stmt_patron_get.db);
    db_stmt_register(&stmt_patron_find.db);
    db_stmt_register(&stmt_patron_block.db);
    db_stmt_register(&stmt_patron_merge.db);
    db_stmt_register(&stmt_patron_history.db);
    db_stmt_register(&stmt_patron_categories.db);
}

/* ---- rows to messages ---- */

static Carrel__ContactChannel patron_channel_from_name(const char *name)
{
    if (strcmp(name, "email") == 0)
        return CARREL__CONTACT_CHANNEL__CONTACT_CHANNEL_EMAIL;
    if (strcmp(name, "sms") == 0)
        return CARREL__CONTACT_CHANNEL__CONTACT_CHANNEL_SMS;
    if (strcmp(name, "phone") == 0)
        return CARREL__CONTACT_CHANNEL__CONTACT_CHANNEL_PHONE;
    if (strcmp(name, "none") == 0)
        return CARREL__CONTACT_CHANNEL__CONTACT_CHANNEL_NONE;
    return CARREL__CONTACT_CHANNEL__CONTACT_CHANNEL_UNSPECIFIED;
}

/* The active blocks, from four parallel array columns. */
static void patron_blocks_from_row(request_t *req, Carrel__Patron *p, const PGresult *res, int row)
{
    arena_t *a = &req->arena;
    size_t n_ids = 0, n_reasons = 0, n_by = 0, n_at = 0;
    char **ids = pgtext_array_parse(a, COL(res, row, COL_BLOCK_IDS), &n_ids);
    char **reasons = pgtext_array_parse(a, COL(res, row, COL_BLOCK_REASONS), &n_reasons);
    char **by = pgtext_array_parse(a, COL(res, row, COL_BLOCK_PLACED_BY), &n_by);
    char **at = pgtext_array_parse(a, COL(res, row, COL_BLOCK_PLACED_AT), &n_at);
    if (n_ids == 0 || n_reasons != n_ids || n_by != n_ids || n_at != n_ids)
        return;
    p->blocks = arena_new(a, Carrel__PatronBlockInfo *, n_ids);
    for (size_t i = 0; i < n_ids; i++) {
        Carrel__PatronBlockInfo *b = arena_new(a, Carrel__PatronBlockInfo, 1);
        carrel__patron_block_info__init(b);
        b->has_id = 1;
        b->id = ids[i] ? strtoll(ids[i], NULL, 10) : 0;
        b->reason = reasons[i];
        b->placed_by = by[i] && by[i][0] ? by[i] : NULL;
        b->placed_at = at[i];
        p->blocks[p->n_blocks++] = b;
    }
}

/* One patron_out row as a Patron message in the request's arena. */
static Carrel__Patron *patron_from_row(request_t *req, const PGresult *res, int row)
{
    arena_t *a = &req->arena;
    Carrel__Patron *p = arena_new(a, Carrel__Patron, 1);
    carrel__patron__init(p);
    p->has_id = 1;
    p->id = db_int64(res, row, COL_ID);
    p->card = reply_text_opt(req, res, row, COL_CARD);
    p->first_name = reply_text_opt(req, res, row, COL_FIRST_NAME);
    p->last_name = reply_text_opt(req, res, row, COL_LAST_NAME);
    p->preferred_name = reply_text_opt(req, res, row, COL_PREFERRED_NAME);
    p->birth_date = reply_text_opt(req, res, row, COL_BIRTH_DATE);
    p->address_line1 = reply_text_opt(req, res, row, COL_ADDRESS_LINE1);
    p->address_line2 = reply_text_opt(req, res, row, COL_ADDRESS_LINE2);
    p->city = reply_text_opt(req, res, row, COL_CITY);
    p->region = reply_text_opt(req, res, row, COL_REGION);
    p->postal_code = reply_text_opt(req, res, row, COL_POSTAL_CODE);
    p->phone = reply_text_opt(req, res, row, COL_PHONE);
    p->email = reply_text_opt(req, res, row, COL_EMAIL);
    p->has_contact_channel = 1;
    p->contact_channel = patron_channel_from_name(COL(res, row, COL_CONTACT_CHANNEL));
    p->home_branch = reply_text_opt(req, res, row, COL_HOME_BRANCH);
    p->category = reply_text_opt(req, res, row, COL_CATEGORY);
    p->expires_on = reply_text_opt(req, res, row, COL_EXPIRES_ON);
    p->staff_notes = reply_text_opt(req, res, row, COL_STAFF_NOTES);
    p->desk_alert = reply_text_opt(req, res, row, COL_DESK_ALERT);
    p->has_keep_history = 1;
    p->keep_history = db_bool(res, row, COL_KEEP_HISTORY);
    p->has_version = 1;
    p->version = db_int32(res, row, COL_VERSION);
    p->created_at = reply_text_opt(req, res, row, COL_CREATED_AT);
    p->updated_at = reply_text_opt(req, res, row, COL_UPDATED_AT);
    p->former_cards = pgtext_array_parse(a, COL(res, row, COL_FORMER_CARDS), &p->n_former_cards);
    p->has_expired = 1;
    p->expired = db_bool(res, row, COL_EXPIRED);
    patron_blocks_from_row(req, p, res, row);
    p->category_name = reply_text_opt(req, res, row, COL_CATEGORY_NAME);
    p->home_branch_name = reply_text_opt(req, res, row, COL_HOME_BRANCH_NAME);
    return p;
}

static void patron_reply_one(request_t *req, const PGresult *res, int row)
{
    req->resp.body_case = CARREL__RESPONSE__BODY_PATRON;
    req->resp.patron = patron_from_row(req, res, row);
}

static Carrel__PatronFindReply *patron_reply_list(request_t *req, const PGresult *res)
{
    int n = PQntuples(res);
    Carrel__PatronFindReply *reply = arena_new(&req->arena, Carrel__PatronFindReply, 1);
    carrel__patron_find_reply__init(reply);
    reply->patrons = arena_new(&req->arena, Carrel__Patron *, n);
    for (int i = 0; i < n; i++)
        reply->patrons[reply->n_patrons++] = patron_from_row(req, res, i);
    return reply;
}

/* A required card number of sane length, or a BAD_REQUEST; true if answered. */
static bool patron_fail_card(request_t *req, const char *card, const char *field)
{
    if (card == NULL || card[0] == '\0' || strlen(card) > PATRON_QUERY_MAX) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, field,
                     "A library card number is required.");
        return true;
    }
    return false;
}

/* ---- save ---- */

static void patron_save_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) == 0) {
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                     "The patron was not saved; see the server log.");
        log_error(req->conn->id, "patron_save returned no row");
        return;
    }
    const char *outcome = COL(res, 0, COL_OUTCOME);
    const char *who = request_session(req)->username;
    if (strcmp(outcome, "stale_version") == 0) {
        patron_reply_one(req, res, 0);
        log_info(req->conn->id, "%s: stale edit of card %s refused", who, req->resp.patron->card);
        request_fail_body(req, CARREL__STATUS__STATUS_CONFLICT, "stale_version",
                          "Card %s was changed at another desk since you read it (it is now at "
                          "version %d). Check the current record and make your change again.",
                          req->resp.patron->card, req->resp.patron->version);
        return;
    }
    if (strcmp(outcome, "possible_duplicate") == 0) {
        Carrel__PatronFindReply *dups = patron_reply_list(req, res);
        req->resp.body_case = CARREL__RESPONSE__BODY_PATRON_FIND;
        req->resp.patron_find = dups;
        request_fail_body(req, CARREL__STATUS__STATUS_CONFLICT, "possible_duplicate",
                          "This may be a patron we already have: %zu existing record%s with the "
                          "same name and birth date, email or phone (card %s%s). Check, or save "
                          "anyway with allow_duplicate.",
                          dups->n_patrons, dups->n_patrons == 1 ? "" : "s", dups->patrons[0]->card,
                          dups->n_patrons > 1 ? ", ..." : "");
        return;
    }
    bool created = !req->msg->patron_save->patron->has_id;
    patron_reply_one(req, res, 0);
    log_info(req->conn->id, "%s %s patron card %s", who, created ? "created" : "saved",
             req->resp.patron->card);
    request_ok(req);
}

void handle_patron_save(request_t *req)
{
    Carrel__PatronSave *m = req->msg->patron_save;
    if (m->patron == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:patron",
                     "The patron record is missing.");
        return;
    }
    if (m->patron->has_id && !m->patron->has_version) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:version",
                     "An edit must carry the version of the record it was made from.");
        return;
    }
    /* Fields the server fills in are not the client's to send. */
    Carrel__Patron *p = m->patron;
    p->n_blocks = 0;
    p->n_former_cards = 0;
    p->created_at = p->updated_at = p->category_name = p->home_branch_name = NULL;
    p->has_expired = 0;

    char *doc = reply_json(req, &p->base);

    perm_subject_t who = request_subject(req);
    bool may_edit_account = perm_check(&who, PERM_PATRON_EDIT_ACCOUNT, 0) == PERM_OK;
    const char *actor, *ws;
    reply_actor(req, &actor, &ws);
    const char *values[5] = {actor, ws, may_edit_account ? "true" : "false",
                             m->has_allow_duplicate && m->allow_duplicate ? "true" : "false", doc};
    reply_query(req, &stmt_patron_save, 5, values, patron_save_done);
}

/* ---- get ---- */

static void patron_get_done(request_t *req, const PGresult *res)
{
    Carrel__PatronGet *m = req->msg->patron_get;
    if (PQntuples(res) == 0) {
        if (m->card && m->card[0])
            request_fail(req, CARREL__STATUS__STATUS_NOT_FOUND, "patron", "No patron has card %s.",
                         m->card);
        else
            request_fail(req, CARREL__STATUS__STATUS_NOT_FOUND, "patron",
                         "There is no patron with id %lld.", (long long)m->id);
        return;
    }
    patron_reply_one(req, res, 0);
    request_ok(req);
}

void handle_patron_get(request_t *req)
{
    Carrel__PatronGet *m = req->msg->patron_get;
    bool by_card = m->card && m->card[0];
    if (!by_card && !(m->has_id && m->id > 0)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:card",
                     "Give a library card number (or a patron id).");
        return;
    }
    if (by_card && patron_fail_card(req, m->card, "field:card"))
        return;
    const char *values[2] = {by_card ? m->card : NULL,
                             by_card ? NULL : pgtext_int(&req->arena, m->id)};
    reply_query(req, &stmt_patron_get, 2, values, patron_get_done);
}

/* ---- find ---- */

static void patron_list_done(request_t *req, const PGresult *res)
{
    req->resp.body_case = CARREL__RESPONSE__BODY_PATRON_FIND;
    req->resp.patron_find = patron_reply_list(req, res);
    request_ok(req);
}

void handle_patron_find(request_t *req)
{
    Carrel__PatronFind *m = req->msg->patron_find;
    const char *name = reply_opt(m->name), *phone = reply_opt(m->phone),
               *email = reply_opt(m->email);
    if (name == NULL && phone == NULL && email == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:name",
                     "Give a name, phone number or email address to search for.");
        return;
    }
    if ((name && strlen(name) > PATRON_QUERY_MAX) || (phone && strlen(phone) > PATRON_QUERY_MAX) ||
        (email && strlen(email) > PATRON_QUERY_MAX)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, name ? "field:name" : "field:phone",
                     "A search term is at most %d characters.", PATRON_QUERY_MAX);
        return;
    }
    int limit;
    if (!request_limit(req, m->has_limit, m->limit, PATRON_FIND_DEFAULT, PATRON_FIND_MAX,
                       "field:limit", &limit))
        return;
    const char *values[4] = {name, phone, email, pgtext_int(&req->arena, limit)};
    reply_query(req, &stmt_patron_find, 4, values, patron_list_done);
}

/* ---- block ---- */

static void patron_change_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) == 0) {
        log_error(req->conn->id, "%s returned no row", req->route->name);
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                     "Internal error; it has been logged.");
        return;
    }
    patron_reply_one(req, res, 0);
    const char *what = req->state;
    log_info(req->conn->id, "%s %s card %s", request_session(req)->username, what,
             req->resp.patron->card);
    request_ok(req);
}

void handle_patron_block(request_t *req)
{
    Carrel__PatronBlock *m = req->msg->patron_block;
    if (patron_fail_card(req, m->card, "field:card"))
        return;
    bool unblock = m->has_unblock && m->unblock;
    if (!unblock && (m->reason == NULL || m->reason[0] == '\0')) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:reason",
                     "A block needs a reason the next desk can read.");
        return;
    }
    req->state = unblock ? "lifted a block on" : "blocked";
    const char *actor, *ws;
    reply_actor(req, &actor, &ws);
    const char *values[6] = {
        actor,
        ws,
        m->card,
        unblock ? "true" : "false",
        unblock ? NULL : m->reason,
        unblock && m->has_block_id ? pgtext_int(&req->arena, m->block_id) : NULL,
    };
    reply_query(req, &stmt_patron_block, 6, values, patron_change_done);
}

/* ---- merge ---- */

void handle_patron_merge(request_t *req)
{
    Carrel__PatronMerge *m = req->msg->patron_merge;
    if (patron_fail_card(req, m->keep_card, "field:keep_card") ||
        patron_fail_card(req, m->merge_card, "field:merge_card"))
        return;
    req->state = arena_printf(&req->arena, "merged card %s into", m->merge_card);
    const char *actor, *ws;
    reply_actor(req, &actor, &ws);
    const char *values[4] = {actor, ws, m->keep_card, m->merge_card};
    reply_query(req, &stmt_patron_merge, 4, values, patron_change_done);
}

/* ---- history ---- */

static void patron_history_done(request_t *req, const PGresult *res)
{
    arena_t *a = &req->arena;
    int n = PQntuples(res);
    Carrel__PatronHistoryReply *reply = arena_new(a, Carrel__PatronHistoryReply, 1);
    carrel__patron_history_reply__init(reply);
    reply->entries = arena_new(a, Carrel__AuditEntry *, n);
    for (int i = 0; i < n; i++) {
        Carrel__AuditEntry *e = arena_new(a, Carrel__AuditEntry, 1);
        carrel__audit_entry__init(e);
        e->has_id = 1;
        e->id = db_int64(res, i, HISTORY_ID);
        e->at = reply_text_opt(req, res, i, HISTORY_AT);
        e->staff = reply_text_opt(req, res, i, HISTORY_STAFF);
        e->workstation = reply_text_opt(req, res, i, HISTORY_WORKSTATION);
        e->branch_code = reply_text_opt(req, res, i, HISTORY_BRANCH_CODE);
        e->action = reply_text_opt(req, res, i, HISTORY_ACTION);
        e->card = reply_text_opt(req, res, i, HISTORY_CARD);
        size_t nf = 0, nb = 0, na = 0;
        char **fields = pgtext_array_parse(a, COL(res, i, HISTORY_FIELDS), &nf);
        char **befores = pgtext_array_parse(a, COL(res, i, HISTORY_BEFORES), &nb);
        char **afters = pgtext_array_parse(a, COL(res, i, HISTORY_AFTERS), &na);
        if (nf > 0 && nb == nf && na == nf) {
            e->changes = arena_new(a, Carrel__FieldChange *, nf);
            for (size_t k = 0; k < nf; k++) {
                Carrel__FieldChange *c = arena_new(a, Carrel__FieldChange, 1);
                carrel__field_change__init(c);
                c->field = fields[k];
                c->before = befores[k];
                c->after = afters[k];
                e->changes[e->n_changes++] = c;
            }
        }
        reply->entries[reply->n_entries++] = e;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_PATRON_HISTORY;
    req->resp.patron_history = reply;
    request_ok(req);
}

void handle_patron_history(request_t *req)
{
    Carrel__PatronHistory *m = req->msg->patron_history;
    if (patron_fail_card(req, m->card, "field:card"))
        return;
    int limit;
    if (!request_limit(req, m->has_limit, m->limit, PATRON_HISTORY_DEFAULT, PATRON_HISTORY_MAX,
                       "field:limit", &limit))
        return;
    const char *values[2] = {m->card, pgtext_int(&req->arena, limit)};
    reply_query(req, &stmt_patron_history, 2, values, patron_history_done);
}

/* ---- categories ---- */

static void patron_categories_done(request_t *req, const PGresult *res)
{
    arena_t *a = &req->arena;
    int n = PQntuples(res);
    Carrel__PatronCategoryListReply *reply = arena_new(a, Carrel__PatronCategoryListReply, 1);
    carrel__patron_category_list_reply__init(reply);
    reply->categories = arena_new(a, Carrel__PatronCategory *, n);
    for (int i = 0; i < n; i++) {
        Carrel__PatronCategory *c = arena_new(a, Carrel__PatronCategory, 1);
        carrel__patron_category__init(c);
        c->code = reply_text(req, res, i, CATEGORY_CODE);
        c->name = reply_text(req, res, i, CATEGORY_NAME);
        c->has_card_years = 1;
        c->card_years = db_int32(res, i, CATEGORY_CARD_YEARS);
        reply->categories[reply->n_categories++] = c;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_PATRON_CATEGORIES;
    req->resp.patron_categories = reply;
    request_ok(req);
}

void handle_patron_category_list(request_t *req)
{
    reply_query(req, &stmt_patron_categories, 0, NULL, patron_categories_done);
}

/* ---- PIN ---- */

/* A PIN a patron types at a self-check: 4 to 12 digits. */
static bool patron_pin_valid(const char *pin)
{
    size_t n = pin ? strlen(pin) : 0;
    if (n < 4 || n > 12)
        return false;
    for (size_t i = 0; i < n; i++)
        if (pin[i] < '0' || pin[i] > '9')
            return false;
    return true;
}

static void patron_pin_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        log_error(req->conn->id, "patron_pin_set returned %d rows", PQntuples(res));
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                     "Internal error; it has been logged.");
        return;
    }
    Carrel__PatronPinSetReply *reply = arena_new(&req->arena, Carrel__PatronPinSetReply, 1);
    carrel__patron_pin_set_reply__init(reply);
    reply->card = reply_text(req, res, 0, PIN_CARD);
    reply->has_has_pin = 1;
    reply->has_pin = db_bool(res, 0, PIN_HAS_PIN);
    log_info(req->conn->id, "%s %s the PIN of card %s", request_session(req)->username,
             reply->has_pin ? "set" : "cleared", reply->card);
    req->resp.body_case = CARREL__RESPONSE__BODY_PATRON_PIN;
    req->resp.patron_pin = reply;
    request_ok(req);
}

static void patron_pin_run(request_t *req, const char *hash)
{
    const char *actor, *ws;
    reply_actor(req, &actor, &ws);
    const char *values[4] = {actor, ws, req->msg->patron_pin_set->card, hash};
    reply_query(req, &stmt_patron_pin_set, 4, values, patron_pin_done);
}

static void patron_pin_hashed(int ok, const char *hash, void *arg)
{
    request_t *req = arg;
    req->conn->hashing--;
    if (ok != 1) {
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal",
                     "Cannot hash the PIN; see the server log.");
        return;
    }
    patron_pin_run(req, hash);
}

/*
 * Set or clear a patron's PIN. The PIN is hashed (Argon2id) on the password
 * queue like a staff password, and only the hash reaches SQL, which records
 * on the patron's audit trail that a PIN was set or cleared (never the PIN).
 * The request's copy of the PIN is wiped when it ends (request.c).
 */
void handle_patron_pin_set(request_t *req)
{
    Carrel__PatronPinSet *m = req->msg->patron_pin_set;
    if (patron_fail_card(req, m->card, "field:card"))
        return;
    bool clear = m->has_clear && m->clear;
    bool has_pin = m->pin && m->pin[0];
    if (clear && has_pin) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:pin",
                     "Give a new PIN or clear the PIN, not both.");
        return;
    }
    if (clear) {
        patron_pin_run(req, NULL);
        return;
    }
    if (!patron_pin_valid(m->pin)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:pin",
                     "A PIN is 4 to 12 digits.");
        return;
    }
    admin_hash_password(req, m->pin, patron_pin_hashed);
}
