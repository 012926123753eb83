/*
 * weeding: weeding recommendations (proto/collections.proto, Request fields
 * 320-327): the CREW rules (the system table and each branch's overrides),
 * the weeding settings, a branch's weeding list in shelf order, the
 * collection health summary, a decision about one copy, and the decisions
 * recorded.
 *
 * Every rule is in sql/rules/weeding.sql (docs/WEEDING.md): each request is
 * one statement. Saves hand their message to SQL as jsonb (json_message,
 * field names as in the .proto); rows come back in proto order and are read
 * by position through the enums below. What C does itself needs no
 * database: the sizes of fields, the words a field may be, the session's
 * branch where a request names none, the page size (a list asks SQL for one
 * row more than the page, so that `more` is known without counting), the
 * scope of a decision (perm_scope_param: NULL for coordinators and admins,
 * else the session branch, which SQL enforces with CR403 branch) and who
 * may change the system CREW table or see every branch at once (p_system_ok
 * and all_branches: coordinators and admins).
 *
 * No patron identity is read or sent here: a copy's uses are counts.
 */
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "log.h"
#include "perm.h"
#include "pgtext.h"
#include "reply.h"

/* Bounds of text fields before SQL (request_fail_text), in bytes: codes,
 * days, barcodes and Dewey numbers are short; names are 100 characters,
 * MUSTIE and notes 500, each up to four bytes. */
#define WEEDING_SHORT_MAX  64
#define WEEDING_NAME_MAX   400
#define WEEDING_TEXT_MAX   2000
#define WEEDING_KEY_MAX    1024 /* a shelf key: a call number made sortable */
#define WEEDING_WEAR_MAX   200  /* wear thresholds in one save (one per item type) */
#define WEEDING_LIST_DEF   500
#define WEEDING_LIST_MAX   5000
#define WEEDING_DECIDE_DEF 200
#define WEEDING_DECIDE_MAX 1000

/* ---------------------------------------------------------------- row types */

/* crew_rule_list / crew_rule_save: CrewRule in proto order. */
enum {
    CREW_ID,
    CREW_BRANCH,
    CREW_COLLECTION,
    CREW_NAME,
    CREW_DEWEY_FROM,
    CREW_DEWEY_TO,
    CREW_LOCATION,
    CREW_AUDIENCE,
    CREW_FICTION,
    CREW_MAX_AGE,
    CREW_MAX_IDLE,
    CREW_MUSTIE,
    CREW_TARGET,
    CREW_ORD,
    CREW_REVIEWED,
    CREW_SOURCE,
    CREW_NCOLS
};

/* The list: whether a rule in effect is unreviewed, then the rules (NULL
 * columns when there are none, so the flag comes either way), then the
 * row's ordinality. */
enum { CLIST_UNREVIEWED, CLIST_RULE, CLIST_ORD = CLIST_RULE + CREW_NCOLS, CLIST_NCOLS };

/* weeding_settings_get / weeding_settings_save. */
enum { SET_DEAD_DAYS, SET_KEEP_MONTHS, SET_WEAR_TYPES, SET_WEAR_USES, SET_NCOLS };

/* weeding_list: WeedingCandidate in proto order. */
enum {
    CAND_ITEM_ID,
    CAND_BARCODE,
    CAND_TITLE,
    CAND_AUTHOR,
    CAND_CALL_NUMBER,
    CAND_YEAR,
    CAND_LAST_USED,
    CAND_USES,
    CAND_COLLECTION,
    CAND_RECOMMENDATION,
    CAND_REASON,
    CAND_REASONS,
    CAND_TRANSFER_TO,
    CAND_LAST_COPY,
    CAND_LOCATION,
    CAND_ITEM_TYPE,
    CAND_STATUS,
    CAND_SHELF_KEY,
    CAND_NCOLS
};

/* The list as sent: the unreviewed flag, the candidates, their ordinality. */
enum { WLIST_UNREVIEWED, WLIST_CAND, WLIST_ORD = WLIST_CAND + CAND_NCOLS, WLIST_NCOLS };

/* weeding_summary: CollectionHealth in proto order. */
enum {
    HEALTH_BRANCH,
    HEALTH_COLLECTION,
    HEALTH_NAME,
    HEALTH_COPIES,
    HEALTH_DEAD,
    HEALTH_DEAD_PCT,
    HEALTH_TARGET_PCT,
    HEALTH_OVER_TARGET,
    HEALTH_CANDIDATES,
    HEALTH_WORN,
    HEALTH_MEDIAN_AGE,
    HEALTH_NCOLS
};

/* The summary as sent: the settings (for dead_days), the collections, their ordinality. */
enum {
    SUM_SETTINGS,
    SUM_HEALTH = SUM_SETTINGS + SET_NCOLS,
    SUM_ORD = SUM_HEALTH + HEALTH_NCOLS,
    SUM_NCOLS
};

/* weeding_decide: WeedingDecideReply in proto order. */
enum {
    DEC_BARCODE,
    DEC_TITLE,
    DEC_DECISION,
    DEC_STATUS,
    DEC_TRANSFER_TO,
    DEC_LAST_COPY,
    DEC_MESSAGE,
    DEC_NCOLS
};

/* weeding_decision_list: WeedingDecision in proto order. */
enum {
    WD_BARCODE,
    WD_TITLE,
    WD_CALL_NUMBER,
    WD_DECISION,
    WD_AT,
    WD_USERNAME,
    WD_TRANSFER_TO,
    WD_NOTE,
    WD_COLLECTION,
    WD_BRANCH,
    WD_NCOLS
};

/* ---------------------------------------------------------------- statements */

/* Set-returning functions joined LATERAL to a row that is always there, so
 * that what comes with the list (the unreviewed flag, the settings) is
 * answered with no rows too; WITH ORDINALITY keeps the function's order. */
static const reply_stmt_t stmt_crew_list =
    REPLY_STMT("weeding_crew_rule_list", CLIST_NCOLS,
               "SELECT u.unreviewed, r.*"
               "  FROM (SELECT crew_rules_unreviewed(CASE WHEN $2::boolean THEN NULL ELSE $1 END)"
               "          AS unreviewed OFFSET 0) u"
               "  LEFT JOIN LATERAL crew_rule_list($1, $2::boolean) WITH ORDINALITY r ON true"
               " ORDER BY r.ordinality");

static const reply_stmt_t stmt_crew_save =
    REPLY_STMT("weeding_crew_rule_save", CREW_NCOLS,
               "SELECT * FROM crew_rule_save($1, $2, $3::integer, $4::boolean, $5::jsonb,"
               " $6::boolean)");

static const reply_stmt_t stmt_settings_get =
    REPLY_STMT("weeding_settings_get", SET_NCOLS, "SELECT * FROM weeding_settings_get()");

static const reply_stmt_t stmt_settings_save = REPLY_STMT(
    "weeding_settings_save", SET_NCOLS, "SELECT * FROM weeding_settings_save($1, $2, $3::jsonb)");

static const reply_stmt_t stmt_list = REPLY_STMT(
    "weeding_list", WLIST_NCOLS,
    "SELECT u.unreviewed, w.*"
    "  FROM (SELECT crew_rules_unreviewed($1) AS unreviewed OFFSET 0) u"
    "  LEFT JOIN LATERAL weeding_list($1, $2, $3, $4::integer, $5::boolean) WITH ORDINALITY w"
    "    ON true"
    " ORDER BY w.ordinality");

static const reply_stmt_t stmt_summary =
    REPLY_STMT("weeding_summary", SUM_NCOLS,
               "SELECT s.*, h.*"
               "  FROM weeding_settings_get() s"
               "  LEFT JOIN LATERAL weeding_summary($1, $2::boolean) WITH ORDINALITY h ON true"
               " ORDER BY h.ordinality");

static const reply_stmt_t stmt_decide =
    REPLY_STMT("weeding_decide", DEC_NCOLS,
               "SELECT * FROM weeding_decide($1::uuid, $2, $3, $4::integer, $5, $6, $7, $8,"
               " $9::boolean)");

static const reply_stmt_t stmt_decisions =
    REPLY_STMT("weeding_decision_list", WD_NCOLS,
               "SELECT * FROM weeding_decision_list($1, $2, $3, $4, $5::integer)");

void weeding_register_statements(void)
{
    static const reply_stmt_t *const all[] = {
        &stmt_crew_list, &stmt_crew_save, &stmt_settings_get, &stmt_settings_save,
        &stmt_list,      &stmt_summary,   &stmt_decide,       &stmt_decisions,
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        db_stmt_register(&all[i]->db);
}

/* ---------------------------------------------------------------- shared */

/* The branch a request names, or the session's when it names none. */
static char *weeding_branch(request_t *req, char *code)
{
    return reply_opt(code) ? code : (char *)request_session(req)->branch_code;
}

/* Coordinators and admins: the system CREW table, every branch at once. */
static bool weeding_system_wide(const request_t *req)
{
    return !perm_role_is_branch_bound(request_session(req)->role);
}

static const char *const decisions[] = {"withdraw", "keep", "mend", "replace", "transfer", NULL};

/* ---------------------------------------------------------------- CREW rules */

/* A CrewRule from the crew_rule_list columns starting at column c0. */
static Carrel__CrewRule *crew_from_row(request_t *req, const PGresult *res, int i, int c0)
{
    Carrel__CrewRule *r = arena_new(&req->arena, Carrel__CrewRule, 1);
    carrel__crew_rule__init(r);
    reply_int64_opt(res, i, c0 + CREW_ID, &r->has_id, &r->id);
    r->branch_code = reply_text_opt(req, res, i, c0 + CREW_BRANCH);
    r->collection = reply_text_opt(req, res, i, c0 + CREW_COLLECTION);
    r->name = reply_text_opt(req, res, i, c0 + CREW_NAME);
    r->dewey_from = reply_text_opt(req, res, i, c0 + CREW_DEWEY_FROM);
    r->dewey_to = reply_text_opt(req, res, i, c0 + CREW_DEWEY_TO);
    r->location = reply_text_opt(req, res, i, c0 + CREW_LOCATION);
    r->audience = reply_text_opt(req, res, i, c0 + CREW_AUDIENCE);
    r->fiction = reply_text_opt(req, res, i, c0 + CREW_FICTION);
    reply_int32_opt(res, i, c0 + CREW_MAX_AGE, &r->has_max_age_years, &r->max_age_years);
    reply_int32_opt(res, i, c0 + CREW_MAX_IDLE, &r->has_max_idle_years, &r->max_idle_years);
    r->mustie = reply_text_opt(req, res, i, c0 + CREW_MUSTIE);
    reply_int32_opt(res, i, c0 + CREW_TARGET, &r->has_dead_target_pct, &r->dead_target_pct);
    reply_int32_opt(res, i, c0 + CREW_ORD, &r->has_ord, &r->ord);
    reply_bool_opt(res, i, c0 + CREW_REVIEWED, &r->has_reviewed, &r->reviewed);
    r->source = reply_text_opt(req, res, i, c0 + CREW_SOURCE);
    return r;
}

static void crew_list_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    Carrel__CrewRuleListReply *reply = arena_new(&req->arena, Carrel__CrewRuleListReply, 1);
    carrel__crew_rule_list_reply__init(reply);
    reply->rules = REQUEST_LIST(req, Carrel__CrewRule, rows);
    for (int i = 0; i < rows; i++) {
        if (i == 0)
            reply_bool_opt(res, i, CLIST_UNREVIEWED, &reply->has_unreviewed, &reply->unreviewed);
        if (!db_null(res, i, CLIST_RULE + CREW_COLLECTION))
            reply->rules[reply->n_rules++] = crew_from_row(req, res, i, CLIST_RULE);
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_CREW_RULES;
    req->resp.crew_rules = reply;
    request_ok(req);
}

/* The rules in effect at a branch (the session's by default), or the system table. */
void handle_crew_rule_list(request_t *req)
{
    Carrel__CrewRuleList *m = req->msg->crew_rule_list;
    if (REQUEST_TEXTS(req, {m->branch_code, WEEDING_SHORT_MAX, "branch_code"}))
        return;
    bool system = m->has_system_only && m->system_only;
    const char *values[2] = {system ? reply_opt(m->branch_code)
                                    : weeding_branch(req, m->branch_code),
                             pgtext_bool(system)};
    reply_query(req, &stmt_crew_list, 2, values, crew_list_done);
}

static void crew_save_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        log_error(req->conn->id, "crew_rule_save returned %d rows", PQntuples(res));
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    Carrel__CrewRule *r = crew_from_row(req, res, 0, 0);
    bool removed = req->msg->crew_rule_save->has_remove && req->msg->crew_rule_save->remove;
    log_info(req->conn->id, "%s %s CREW rule %s%s%s", request_session(req)->username,
             removed ? "removed" : "saved", r->collection ? r->collection : "?",
             r->branch_code ? " of " : " (system)", r->branch_code ? r->branch_code : "");
    req->resp.body_case = CARREL__RESPONSE__BODY_CREW_RULE;
    req->resp.crew_rule = r;
    request_ok(req);
}

/*
 * Create, replace or remove the row (branch_code, collection). A branch's
 * row is its managers' (the route's PERM_CREW_RULES; the branch by scope in
 * SQL); the system table (no branch_code) is the coordinator's and the
 * admin's (p_system_ok, checked in SQL, which answers CR403 role).
 */
void handle_crew_rule_save(request_t *req)
{
    Carrel__CrewRuleSave *m = req->msg->crew_rule_save;
    Carrel__CrewRule *r = m->rule;
    if (request_bad_field(req, r == NULL || !reply_opt(r->collection), "collection",
                          "Name the collection of the rule (e.g. nf_600)."))
        return;
    if (REQUEST_TEXTS(
            req, {r->branch_code, WEEDING_SHORT_MAX, "branch_code"},
            {r->collection, WEEDING_SHORT_MAX, "collection"}, {r->name, WEEDING_NAME_MAX, "name"},
            {r->dewey_from, WEEDING_SHORT_MAX, "dewey_from"},
            {r->dewey_to, WEEDING_SHORT_MAX, "dewey_to"},
            {r->location, WEEDING_NAME_MAX, "location"},
            {r->audience, WEEDING_SHORT_MAX, "audience"},
            {r->fiction, WEEDING_SHORT_MAX, "fiction"}, {r->mustie, WEEDING_TEXT_MAX, "mustie"}))
        return;
    /* What the server fills in is not the client's to send. */
    r->has_id = r->has_reviewed = 0;
    r->source = NULL;
    if (!reply_opt(r->branch_code))
        r->branch_code = NULL;
    perm_subject_t who = request_subject(req);
    const char *values[6];
    reply_actor(req, &values[0], &values[1]);
    values[2] = perm_scope_param(&req->arena, &who);
    values[3] = pgtext_bool(weeding_system_wide(req));
    values[4] = reply_json(req, &r->base);
    values[5] = pgtext_bool(m->has_remove && m->remove);
    reply_query(req, &stmt_crew_save, 6, values, crew_save_done);
}

/* ---------------------------------------------------------------- settings */

/* WeedingSettings from the settings columns starting at c0 (NULL if malformed: answered). */
static Carrel__WeedingSettings *settings_from_row(request_t *req, const PGresult *res, int c0)
{
    Carrel__WeedingSettings *s = arena_new(&req->arena, Carrel__WeedingSettings, 1);
    carrel__weeding_settings__init(s);
    reply_int32_opt(res, 0, c0 + SET_DEAD_DAYS, &s->has_dead_days, &s->dead_days);
    reply_int32_opt(res, 0, c0 + SET_KEEP_MONTHS, &s->has_keep_months, &s->keep_months);
    size_t ntypes = 0, nuses = 0;
    char **types = pgtext_array_strings(&req->arena, COL(res, 0, c0 + SET_WEAR_TYPES), &ntypes);
    char **uses = pgtext_array_strings(&req->arena, COL(res, 0, c0 + SET_WEAR_USES), &nuses);
    if (ntypes != nuses) {
        log_error(req->conn->id, "weeding settings: %zu wear types but %zu thresholds", ntypes,
                  nuses);
        request_fail_reason(req, REASON_INTERNAL);
        return NULL;
    }
    s->wear = REQUEST_LIST(req, Carrel__WearThreshold, ntypes);
    for (size_t i = 0; i < ntypes; i++) {
        Carrel__WearThreshold *w = arena_new(&req->arena, Carrel__WearThreshold, 1);
        carrel__wear_threshold__init(w);
        w->item_type = types[i];
        w->has_max_uses = 1;
        w->max_uses = (int32_t)strtol(uses[i], NULL, 10);
        s->wear[s->n_wear++] = w;
    }
    return s;
}

static void settings_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        log_error(req->conn->id, "weeding settings: %d rows", PQntuples(res));
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    Carrel__WeedingSettings *s = settings_from_row(req, res, 0);
    if (s == NULL)
        return;
    if (req->msg->body_case == CARREL__REQUEST__BODY_WEEDING_SETTINGS_SAVE) {
        log_info(req->conn->id,
                 "%s saved the weeding settings (dead after %d days, keep %d "
                 "months, %zu wear thresholds)",
                 request_session(req)->username, s->dead_days, s->keep_months, s->n_wear);
        req->resp.body_case = CARREL__RESPONSE__BODY_WEEDING_SETTINGS_SAVED;
        req->resp.weeding_settings_saved = s;
    } else {
        req->resp.body_case = CARREL__RESPONSE__BODY_WEEDING_SETTINGS;
        req->resp.weeding_settings = s;
    }
    request_ok(req);
}

void handle_weeding_settings_get(request_t *req)
{
    reply_query(req, &stmt_settings_get, 0, NULL, settings_done);
}

/* Coordinators and admins (the route); absent fields stay as they are, in SQL. */
void handle_weeding_settings_save(request_t *req)
{
    Carrel__WeedingSettings *s = req->msg->weeding_settings_save->settings;
    if (request_bad_field(req, s == NULL, "settings", "The settings are missing."))
        return;
    if (request_bad_field(req, s->n_wear > WEEDING_WEAR_MAX, "wear",
                          "At most 200 wear thresholds, one per item type."))
        return;
    for (size_t i = 0; i < s->n_wear; i++) {
        const Carrel__WearThreshold *w = s->wear[i];
        if (request_bad_field(req, w == NULL || !reply_opt(w->item_type) || !w->has_max_uses,
                              "wear", "Each wear threshold names an item type and its uses."))
            return;
        if (REQUEST_TEXTS(req, {w->item_type, WEEDING_SHORT_MAX, "wear"}))
            return;
    }
    const char *values[3];
    reply_actor(req, &values[0], &values[1]);
    values[2] = reply_json(req, &s->base);
    reply_query(req, &stmt_settings_save, 3, values, settings_done);
}

/* ---------------------------------------------------------------- the weeding list */

/*
 * shelf_key on the wire. SQL's key joins the call number's sort key and the
 * barcode with a control character (and a call number may hold one), but
 * the protocol carries only printable text (tabs and line breaks aside), so
 * the key travels percent-encoded: control characters, DEL and '%' as %XX.
 * It is opaque to clients, who send it back as `after`.
 */
static char *weeding_key_out(request_t *req, const char *key)
{
    size_t n = strlen(key);
    char *out = arena_alloc(&req->arena, 3 * n + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '%')
            o += snprintf(o, 4, "%%%02X", *p);
        else
            *o++ = (char)*p;
    }
    *o = '\0';
    return out;
}

static int weeding_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* `after` back as SQL's key; NULL when it is no key we sent (not %XX, or %00). */
static char *weeding_key_in(request_t *req, const char *text)
{
    char *out = arena_alloc(&req->arena, strlen(text) + 1), *o = out;
    for (const char *p = text; *p; p++) {
        if (*p != '%') {
            *o++ = *p;
            continue;
        }
        int hi = weeding_hex(p[1]), lo = hi < 0 ? -1 : weeding_hex(p[2]);
        if (lo < 0 || (hi == 0 && lo == 0))
            return NULL;
        *o++ = (char)(hi * 16 + lo);
        p += 2;
    }
    *o = '\0';
    return out;
}

static Carrel__WeedingCandidate *candidate_from_row(request_t *req, const PGresult *res, int i,
                                                    int c0)
{
    Carrel__WeedingCandidate *c = arena_new(&req->arena, Carrel__WeedingCandidate, 1);
    carrel__weeding_candidate__init(c);
    reply_int64_opt(res, i, c0 + CAND_ITEM_ID, &c->has_item_id, &c->item_id);
    c->barcode = reply_text_opt(req, res, i, c0 + CAND_BARCODE);
    c->title = reply_text_opt(req, res, i, c0 + CAND_TITLE);
    c->author = reply_text_opt(req, res, i, c0 + CAND_AUTHOR);
    c->call_number = reply_text_opt(req, res, i, c0 + CAND_CALL_NUMBER);
    c->year = reply_text_opt(req, res, i, c0 + CAND_YEAR);
    c->last_used = reply_text_opt(req, res, i, c0 + CAND_LAST_USED);
    reply_int32_opt(res, i, c0 + CAND_USES, &c->has_uses, &c->uses);
    c->collection = reply_text_opt(req, res, i, c0 + CAND_COLLECTION);
    c->recommendation = reply_text_opt(req, res, i, c0 + CAND_RECOMMENDATION);
    c->reason = reply_text_opt(req, res, i, c0 + CAND_REASON);
    if (!db_null(res, i, c0 + CAND_REASONS))
        c->reasons =
            pgtext_array_strings(&req->arena, COL(res, i, c0 + CAND_REASONS), &c->n_reasons);
    c->transfer_to = reply_text_opt(req, res, i, c0 + CAND_TRANSFER_TO);
    reply_bool_opt(res, i, c0 + CAND_LAST_COPY, &c->has_last_copy, &c->last_copy);
    c->location = reply_text_opt(req, res, i, c0 + CAND_LOCATION);
    c->item_type = reply_text_opt(req, res, i, c0 + CAND_ITEM_TYPE);
    c->status = reply_text_opt(req, res, i, c0 + CAND_STATUS);
    if (!db_null(res, i, c0 + CAND_SHELF_KEY))
        c->shelf_key = weeding_key_out(req, COL(res, i, c0 + CAND_SHELF_KEY));
    return c;
}

/* The page size asked for, kept for the rows function (SQL was asked for one more). */
typedef struct list_state {
    int limit;
} list_state_t;

static void list_done(request_t *req, const PGresult *res)
{
    const list_state_t *st = req->state;
    int rows = PQntuples(res);
    Carrel__WeedingListReply *reply = arena_new(&req->arena, Carrel__WeedingListReply, 1);
    carrel__weeding_list_reply__init(reply);
    reply->candidates = REQUEST_LIST(req, Carrel__WeedingCandidate, rows);
    reply->has_more = 1;
    for (int i = 0; i < rows; i++) {
        if (i == 0)
            reply_bool_opt(res, i, WLIST_UNREVIEWED, &reply->has_rules_unreviewed,
                           &reply->rules_unreviewed);
        if (db_null(res, i, WLIST_CAND + CAND_BARCODE))
            continue;
        if ((int)reply->n_candidates == st->limit) {
            reply->more = 1;
            break;
        }
        reply->candidates[reply->n_candidates++] = candidate_from_row(req, res, i, WLIST_CAND);
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_WEEDING;
    req->resp.weeding = reply;
    request_ok(req);
}

/* A branch's list in shelf order, a page at a time (after: the last shelf_key seen). */
void handle_weeding_list(request_t *req)
{
    Carrel__WeedingList *m = req->msg->weeding_list;
    list_state_t *st = arena_new(&req->arena, list_state_t, 1);
    req->state = st;
    if (REQUEST_TEXTS(req, {m->branch_code, WEEDING_SHORT_MAX, "branch_code"},
                      {m->collection, WEEDING_SHORT_MAX, "collection"},
                      {m->after, WEEDING_KEY_MAX, "after"}) ||
        !request_limit(req, m->has_limit, m->limit, WEEDING_LIST_DEF, WEEDING_LIST_MAX,
                       "field:limit", &st->limit))
        return;
    const char *after = reply_opt(m->after) ? weeding_key_in(req, m->after) : NULL;
    if (request_bad_field(req, reply_opt(m->after) && after == NULL, "after",
                          "after is the shelf_key of the last copy of the previous page, as "
                          "sent."))
        return;
    const char *values[5] = {weeding_branch(req, m->branch_code), reply_opt(m->collection), after,
                             pgtext_int(&req->arena, st->limit + 1),
                             pgtext_bool(m->has_include_dead && m->include_dead)};
    reply_query(req, &stmt_list, 5, values, list_done);
}

/* ---------------------------------------------------------------- the summary */

static Carrel__CollectionHealth *health_from_row(request_t *req, const PGresult *res, int i, int c0)
{
    Carrel__CollectionHealth *h = arena_new(&req->arena, Carrel__CollectionHealth, 1);
    carrel__collection_health__init(h);
    h->branch_code = reply_text_opt(req, res, i, c0 + HEALTH_BRANCH);
    h->collection = reply_text_opt(req, res, i, c0 + HEALTH_COLLECTION);
    h->name = reply_text_opt(req, res, i, c0 + HEALTH_NAME);
    reply_int32_opt(res, i, c0 + HEALTH_COPIES, &h->has_copies, &h->copies);
    reply_int32_opt(res, i, c0 + HEALTH_DEAD, &h->has_dead, &h->dead);
    reply_double_opt(res, i, c0 + HEALTH_DEAD_PCT, &h->has_dead_pct, &h->dead_pct);
    reply_int32_opt(res, i, c0 + HEALTH_TARGET_PCT, &h->has_target_pct, &h->target_pct);
    reply_bool_opt(res, i, c0 + HEALTH_OVER_TARGET, &h->has_over_target, &h->over_target);
    reply_int32_opt(res, i, c0 + HEALTH_CANDIDATES, &h->has_candidates, &h->candidates);
    reply_int32_opt(res, i, c0 + HEALTH_WORN, &h->has_worn, &h->worn);
    reply_int32_opt(res, i, c0 + HEALTH_MEDIAN_AGE, &h->has_median_age_years, &h->median_age_years);
    return h;
}

static void summary_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    Carrel__WeedingSummaryReply *reply = arena_new(&req->arena, Carrel__WeedingSummaryReply, 1);
    carrel__weeding_summary_reply__init(reply);
    reply->collections = REQUEST_LIST(req, Carrel__CollectionHealth, rows);
    for (int i = 0; i < rows; i++) {
        if (i == 0)
            reply_int32_opt(res, i, SUM_SETTINGS + SET_DEAD_DAYS, &reply->has_dead_days,
                            &reply->dead_days);
        if (!db_null(res, i, SUM_HEALTH + HEALTH_COLLECTION))
            reply->collections[reply->n_collections++] = health_from_row(req, res, i, SUM_HEALTH);
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_WEEDING_SUMMARY;
    req->resp.weeding_summary = reply;
    request_ok(req);
}

/* One branch (the session's by default), or every branch for coordinators and admins. */
void handle_weeding_summary(request_t *req)
{
    Carrel__WeedingSummary *m = req->msg->weeding_summary;
    if (REQUEST_TEXTS(req, {m->branch_code, WEEDING_SHORT_MAX, "branch_code"}))
        return;
    bool all = m->has_all_branches && m->all_branches;
    if (all && !weeding_system_wide(req)) {
        request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, "role",
                     "Only coordinators and administrators see every branch's collections at "
                     "once; ask for your branch.");
        return;
    }
    const char *values[2] = {all ? reply_opt(m->branch_code) : weeding_branch(req, m->branch_code),
                             pgtext_bool(all)};
    reply_query(req, &stmt_summary, 2, values, summary_done);
}

/* ---------------------------------------------------------------- decisions */

static void decide_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        log_error(req->conn->id, "weeding_decide returned %d rows", PQntuples(res));
        request_fail_reason(req, REASON_INTERNAL);
        return;
    }
    Carrel__WeedingDecideReply *d = arena_new(&req->arena, Carrel__WeedingDecideReply, 1);
    carrel__weeding_decide_reply__init(d);
    d->barcode = reply_text_opt(req, res, 0, DEC_BARCODE);
    d->title = reply_text_opt(req, res, 0, DEC_TITLE);
    d->decision = reply_text_opt(req, res, 0, DEC_DECISION);
    d->status = reply_text_opt(req, res, 0, DEC_STATUS);
    d->transfer_to = reply_text_opt(req, res, 0, DEC_TRANSFER_TO);
    reply_bool_opt(res, 0, DEC_LAST_COPY, &d->has_last_copy, &d->last_copy);
    d->message = reply_text_opt(req, res, 0, DEC_MESSAGE);
    log_info(req->conn->id, "%s weeding: %s %s%s%s", request_session(req)->username,
             d->decision ? d->decision : "?", d->barcode ? d->barcode : "?",
             d->transfer_to ? " to " : "", d->transfer_to ? d->transfer_to : "");
    req->resp.body_case = CARREL__RESPONSE__BODY_WEEDING_DECIDED;
    req->resp.weeding_decided = d;
    request_ok(req);
}

/*
 * One copy's decision, keyed (the route requires the key): a retry answers
 * what the first send did. The copy must belong to the caller's branch
 * (scope, in SQL); transfer names the branch it goes to, and only transfer
 * does.
 */
void handle_weeding_decide(request_t *req)
{
    Carrel__WeedingDecide *m = req->msg->weeding_decide;
    if (request_bad_field(req, !reply_opt(m->barcode), "barcode",
                          "Scan or type the barcode of the copy.") ||
        REQUEST_TEXTS(req, {m->barcode, WEEDING_SHORT_MAX, "barcode"},
                      {m->decision, WEEDING_SHORT_MAX, "decision"},
                      {m->transfer_to, WEEDING_SHORT_MAX, "transfer_to"},
                      {m->note, WEEDING_TEXT_MAX, "note"}) ||
        request_bad_field(req, !request_one_of(m->decision, decisions), "decision",
                          "The decision is withdraw, keep, mend, replace or transfer."))
        return;
    bool transfer = strcmp(m->decision, "transfer") == 0;
    if (request_bad_field(req, transfer && !reply_opt(m->transfer_to), "transfer_to",
                          "Name the branch the copy is transferred to.") ||
        request_bad_field(req, !transfer && reply_opt(m->transfer_to), "transfer_to",
                          "Only a transfer names a branch to send the copy to."))
        return;
    perm_subject_t who = request_subject(req);
    const char *values[9];
    values[0] = req->msg->request_key;
    reply_actor(req, &values[1], &values[2]);
    values[3] = perm_scope_param(&req->arena, &who);
    values[4] = m->barcode;
    values[5] = m->decision;
    values[6] = reply_opt(m->transfer_to);
    values[7] = reply_opt(m->note);
    values[8] = pgtext_bool(m->has_last_copy_ok && m->last_copy_ok);
    reply_query(req, &stmt_decide, 9, values, decide_done);
}

static Carrel__WeedingDecision *decision_from_row(request_t *req, const PGresult *res, int i)
{
    Carrel__WeedingDecision *d = arena_new(&req->arena, Carrel__WeedingDecision, 1);
    carrel__weeding_decision__init(d);
    d->barcode = reply_text_opt(req, res, i, WD_BARCODE);
    d->title = reply_text_opt(req, res, i, WD_TITLE);
    d->call_number = reply_text_opt(req, res, i, WD_CALL_NUMBER);
    d->decision = reply_text_opt(req, res, i, WD_DECISION);
    d->at = reply_text_opt(req, res, i, WD_AT);
    d->username = reply_text_opt(req, res, i, WD_USERNAME);
    d->transfer_to = reply_text_opt(req, res, i, WD_TRANSFER_TO);
    d->note = reply_text_opt(req, res, i, WD_NOTE);
    d->collection = reply_text_opt(req, res, i, WD_COLLECTION);
    d->branch_code = reply_text_opt(req, res, i, WD_BRANCH);
    return d;
}

static void decisions_done(request_t *req, const PGresult *res)
{
    int rows = PQntuples(res);
    Carrel__WeedingDecisionListReply *reply =
        arena_new(&req->arena, Carrel__WeedingDecisionListReply, 1);
    carrel__weeding_decision_list_reply__init(reply);
    reply->decisions = REQUEST_LIST(req, Carrel__WeedingDecision, rows);
    for (int i = 0; i < rows; i++)
        reply->decisions[reply->n_decisions++] = decision_from_row(req, res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_WEEDING_DECISIONS;
    req->resp.weeding_decisions = reply;
    request_ok(req);
}

/* The decisions recorded at a branch (the session's by default), newest first. */
void handle_weeding_decision_list(request_t *req)
{
    Carrel__WeedingDecisionList *m = req->msg->weeding_decision_list;
    int limit;
    if (REQUEST_TEXTS(req, {m->branch_code, WEEDING_SHORT_MAX, "branch_code"},
                      {m->decision, WEEDING_SHORT_MAX, "decision"},
                      {m->from, WEEDING_SHORT_MAX, "from"}, {m->to, WEEDING_SHORT_MAX, "to"}) ||
        !request_limit(req, m->has_limit, m->limit, WEEDING_DECIDE_DEF, WEEDING_DECIDE_MAX,
                       "field:limit", &limit))
        return;
    if (request_bad_field(req, reply_opt(m->decision) && !request_one_of(m->decision, decisions),
                          "decision", "The decision is withdraw, keep, mend, replace or transfer."))
        return;
    const char *values[5] = {weeding_branch(req, m->branch_code), reply_opt(m->decision),
                             reply_opt(m->from), reply_opt(m->to), pgtext_int(&req->arena, limit)};
    reply_query(req, &stmt_decisions, 5, values, decisions_done);
}
