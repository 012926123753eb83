/*
 * sip_msgs: the library messages of the SIP2 gateway (docs/SIP2.md):
 * patron status (23/24), patron information (63/64), checkout (11/12),
 * checkin (09/10), renew (29/30), renew all (65/66), item information
 * (17/18), fee paid (37/38), block patron (01, answered 24), and the
 * three the gateway refuses with their own responses: hold (15/16), item
 * status update (19/20) and patron enable (25/26).
 *
 * sip.c hands each message of a logged-in kiosk to its handler here; the
 * handler runs the desk's own SQL functions (circ_checkout, circ_checkin,
 * circ_renew, circ_ledger_post) or the self-check reads of
 * sql/rules/sip.sql with the login's staff account, workstation and branch,
 * and builds the answer in r->out; sip_send() ends it. Every message is
 * answered exactly once: a refusal, a wrong PIN and a database failure all
 * answer the message's own response with ok=0 and a sentence (AF).
 *
 * Patron PINs (AD) are checked against their Argon2id hash on the daemon's
 * password queue, never on the loop, before anything that lends, renews,
 * takes money or shows a patron's details (sip_pin_*); wrong ones are
 * counted in SQL (sip_pin_record) and lock the PIN after five.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "check.h"
#include "log.h"
#include "password.h"
#include "pgtext.h"
#include "sip.h"

/* What a kiosk shows when the database cannot answer. */
#define SIP_UNAVAILABLE "The library system is unavailable; please see the desk."
#define SIP_NO_CARD     "This card is not recognized; please see the desk."
#define SIP_NO_ITEM     "This item is not recognized; please see the desk."
#define SIP_PIN_NEEDED  "Please enter your PIN."
#define SIP_PIN_WRONG   "That PIN is not right."
#define SIP_PIN_NOT_SET "No PIN is set for this card; please see the desk."
#define SIP_PIN_LOCKED  "Too many wrong PINs: try again in 15 minutes, or see the desk."
#define SIP_HELD_DESK   "Please take this item to the desk."
/* Checkin screen lines: the kiosk's screen is public, so they never name the
 * patron a copy is held for (the desk's message does; CY/DA are for sorters). */
#define SIP_RETURNED "Thank you: this item is returned."
#define SIP_RETURN_HOLD                                                                            \
    "Thank you. Please leave this item in the return; it is wanted by another reader."
#define SIP_RETURN_AWAY                                                                            \
    "Thank you. Please leave this item in the return; it goes back to its own library."
#define SIP_RETURN_KEEP                                                                            \
    "Thank you. Please leave this item in the return; library staff will look at it."
#define SIP_BLOCKED_NOW "This card is blocked; please see the desk."
#define SIP_NO_HOLDS    "Holds are placed at the desk or in the online catalogue."
#define SIP_NO_UPDATE   "Item properties cannot be changed from a self-check."

/* The longest card, barcode or PIN read from a message (longer ones are cut, then not found). */
#define SIP_ID_MAX 64
/* Items listed in one 64 (BP..BQ): a kiosk pages through longer lists. */
#define SIP_LIST_MAX 50

/* ---- statements ---- */

enum { PIN_PATRON_ID, PIN_HASH, PIN_LOCKED, PIN_FAILURES, PIN_NCOLS };
static const db_stmt_t stmt_pin = {
    "sip_patron_pin", "SELECT patron_id, pin_hash, locked, failures FROM sip_patron_pin($1)"};

static const db_stmt_t stmt_pin_record = {"sip_pin_record", "SELECT sip_pin_record($1, $2)"};

enum {
    PATRON_ID,
    PATRON_CARD,
    PATRON_NAME,
    PATRON_STATUS,
    PATRON_HOLD_ITEMS,
    PATRON_OVERDUE_ITEMS,
    PATRON_CHARGED_ITEMS,
    PATRON_FINE_ITEMS,
    PATRON_RECALL_ITEMS,
    PATRON_UNAVAILABLE_HOLDS,
    PATRON_BALANCE,
    PATRON_FEE_LIMIT,
    PATRON_HOLD_LIMIT,
    PATRON_CHARGED_LIMIT,
    PATRON_EMAIL,
    PATRON_PHONE,
    PATRON_ADDRESS,
    PATRON_MESSAGE,
    PATRON_PIN_HASH,
    PATRON_PIN_LOCKED,
    PATRON_PIN_FAILURES,
    PATRON_SHORT_NAME, /* what AE shows without a verified PIN */
    PATRON_NCOLS
};
static const db_stmt_t stmt_patron = {
    "sip_patron",
    "SELECT s.patron_id, s.card, s.name, s.status, s.hold_items, s.overdue_items,"
    "       s.charged_items, s.fine_items, s.recall_items, s.unavailable_holds,"
    "       sip_money(s.balance_cents), sip_money(s.fee_limit_cents), s.hold_limit,"
    "       s.charged_limit, s.email, s.phone, s.address, s.message, s.pin_hash, s.pin_locked,"
    "       s.pin_failures, patron_short_name(p)"
    "  FROM sip_patron($1, $2) s LEFT JOIN patron p ON p.id = s.patron_id"};

/* 01: the block (sip_block_patron), then the patron's row as for 23. */
static const db_stmt_t stmt_block = {"sip_block_patron",
                                     "SELECT sip_block_patron($1::uuid, $2, $3, $4, $5, $6)"};

enum { ITEMS_VALUE, ITEMS_NCOLS };
static const db_stmt_t stmt_patron_items = {"sip_patron_items",
                                            "SELECT value FROM sip_patron_items($1, $2, $3, $4)"};

/* The circulation functions return SETOF (planned as 1000 rows): what is read
 * beside their row is looked up per row (LATERAL), never by a join the planner
 * could make a scan of the table. */
enum { CHECKOUT_TITLE, CHECKOUT_DUE, CHECKOUT_MEDIA, CHECKOUT_NCOLS };
static const db_stmt_t stmt_checkout = {
    "sip_checkout", "SELECT c.title, sip_date(c.due_at), sip_media_type(i.item_type)"
                    "  FROM circ_checkout($1::uuid, $2, $3, $4, $5, $6, false, NULL, false) c"
                    "  LEFT JOIN LATERAL (SELECT item_type FROM item WHERE barcode = c.barcode) i"
                    "    ON true"};

/* The loan a resent checkout finds (already_checked_out): the same columns. */
static const db_stmt_t stmt_checkout_same = {
    "sip_checkout_same", "SELECT b.title, sip_date(l.due_at), sip_media_type(i.item_type)"
                         "  FROM item i JOIN bib b ON b.id = i.bib_id"
                         "  JOIN loan l ON l.item_id = i.id AND l.returned_at IS NULL"
                         " WHERE i.barcode = $1 AND l.patron_id = patron_resolve($2, NULL)"};

static const db_stmt_t stmt_checkin_held = {"sip_checkin_held", "SELECT sip_checkin_held($1, $2)"};

enum {
    CHECKIN_TITLE,
    CHECKIN_ROUTE,
    CHECKIN_DESTINATION,
    CHECKIN_HOLD_ID,
    CHECKIN_HOME,
    CHECKIN_MEDIA,
    CHECKIN_HOLD_CARD,
    CHECKIN_HOLD_NAME,
    CHECKIN_NCOLS
};
static const db_stmt_t stmt_checkin = {
    "sip_checkin",
    "SELECT c.title, c.route, c.destination_code, c.hold_id, ob.code,"
    "       sip_media_type(i.item_type), hp.card, patron_short_name(hp)"
    "  FROM circ_checkin($1::uuid, $2, $3, $4, $5, sip_return_date($6)) c"
    "  LEFT JOIN LATERAL (SELECT item_type, owning_branch_id FROM item"
    "                      WHERE barcode = c.barcode) i ON true"
    "  LEFT JOIN LATERAL (SELECT code FROM branch WHERE id = i.owning_branch_id) ob ON true"
    "  LEFT JOIN LATERAL (SELECT p.* FROM hold h JOIN patron p ON p.id = h.patron_id"
    "                      WHERE h.id = c.hold_id) hp ON true"};

enum { RENEW_TITLE, RENEW_RENEWED, RENEW_DUE, RENEW_MESSAGE, RENEW_MEDIA, RENEW_NCOLS };
static const db_stmt_t stmt_renew = {
    "sip_renew",
    "SELECT c.title, c.renewed, sip_date(c.due_at), c.message, sip_media_type(i.item_type)"
    "  FROM circ_renew($1::uuid, $2, $3, $4, $5, $6, false, NULL, false) c"
    "  LEFT JOIN LATERAL (SELECT item_type FROM item WHERE barcode = c.barcode) i ON true"};

enum { RENEW_ALL_BARCODE, RENEW_ALL_RENEWED, RENEW_ALL_MESSAGE, RENEW_ALL_NCOLS };
static const db_stmt_t stmt_renew_all = {
    "sip_renew_all",
    "SELECT barcode, renewed, message FROM sip_renew_all($1::uuid, $2, $3, $4, $5)"};

enum {
    ITEM_BARCODE,
    ITEM_TITLE,
    ITEM_STATUS,
    ITEM_DUE,
    ITEM_HOLD_QUEUE,
    ITEM_OWNER,
    ITEM_CURRENT,
    ITEM_MEDIA,
    ITEM_DESTINATION,
    ITEM_MESSAGE,
    ITEM_NCOLS
};
static const db_stmt_t stmt_item = {
    "sip_item", "SELECT barcode, title, circulation_status, due, hold_queue, owner, current,"
                "       media_type, destination, message FROM sip_item($1, $2)"};

enum { FEE_ID, FEE_NCOLS };
static const db_stmt_t stmt_fee_paid = {
    "sip_fee_paid", "SELECT id FROM circ_ledger_post($1::uuid, $2, $3, 'payment', $4, $5, false)"};

void sip_msgs_register_statements(void)
{
    db_stmt_register(&stmt_pin);
    db_stmt_register(&stmt_pin_record);
    db_stmt_register(&stmt_patron);
    db_stmt_register(&stmt_patron_items);
    db_stmt_register(&stmt_checkout);
    db_stmt_register(&stmt_checkout_same);
    db_stmt_register(&stmt_checkin_held);
    db_stmt_register(&stmt_checkin);
    db_stmt_register(&stmt_renew);
    db_stmt_register(&stmt_renew_all);
    db_stmt_register(&stmt_item);
    db_stmt_register(&stmt_fee_paid);
    db_stmt_register(&stmt_block);
}

/* ---- one message's work ---- */

/* How a patron's PIN (AD) stands after the checks (sip_pin_check). */
typedef enum {
    PIN_OK,        /* AD verified */
    PIN_NOT_ASKED, /* the login needs no PIN, and none was given or none is set */
    PIN_MISSING,   /* the login needs one and AD is absent */
    PIN_NOT_SET,   /* the login needs one and the patron has none */
    PIN_WRONG,
    PIN_IS_LOCKED, /* too many wrong ones: not checked */
    PIN_BUSY,      /* the password queue is full: not checked */
} pin_state_t;

typedef struct sip_work sip_work_t;
typedef void (*sip_step_fn)(sip_work_t *w);

typedef struct sip_work {
    sip_req_t *r;
    char date[19]; /* the transaction date of the answer */
    char card[SIP_ID_MAX];
    char barcode[SIP_ID_MAX];
    char ad[SIP_ID_MAX];
    bool has_ad;
    /* The PIN check */
    pin_state_t pin;
    int64_t patron_id; /* 0: unknown card */
    int pin_failures;
    sip_step_fn after_pin;
    /* 23/63/01/25: the patron row, copied out of its result */
    char *p[PATRON_NCOLS];
    const char *af; /* 01: the screen line, instead of the patron's standing */
} sip_work_t;

static bool pin_allows(pin_state_t s)
{
    return s == PIN_OK || s == PIN_NOT_ASKED;
}

static const char *pin_sentence(pin_state_t s)
{
    switch (s) {
    case PIN_MISSING:
        return SIP_PIN_NEEDED;
    case PIN_NOT_SET:
        return SIP_PIN_NOT_SET;
    case PIN_WRONG:
        return SIP_PIN_WRONG;
    case PIN_IS_LOCKED:
        return SIP_PIN_LOCKED;
    case PIN_BUSY:
        return "The library system is busy; please try again.";
    default:
        return NULL;
    }
}

static sip_work_t *sip_work_new(sip_req_t *r)
{
    sip_work_t *w = arena_alloc(&r->arena, sizeof(*w));
    memset(w, 0, sizeof(*w));
    w->r = r;
    r->state = w;
    sip_date_now(r->srv, w->date);
    w->has_ad = sip2_field_copy(&r->msg, "AD", w->ad, sizeof(w->ad)) && w->ad[0] != '\0';
    sip2_field_copy(&r->msg, "AA", w->card, sizeof(w->card));
    sip2_field_copy(&r->msg, "AB", w->barcode, sizeof(w->barcode));
    return w;
}

/* $1-$4 of every circulation statement, and the most values that follow them. */
#define SIP_CIRC_NPARAMS  4
#define SIP_CIRC_MORE_MAX 2

/*
 * Run a circulation statement: $1 the request key, $2-$4 the session's
 * staff, workstation and branch, then the `n` values of `more`.
 */
static void sip_db_circ(sip_req_t *r, const db_stmt_t *stmt, const char *const *more, int n,
                        sip_db_cb cb)
{
    const char *values[SIP_CIRC_NPARAMS + SIP_CIRC_MORE_MAX] = {
        sip_key(r), pgtext_int(&r->arena, r->session.staff_id),
        pgtext_int(&r->arena, r->session.workstation_id),
        pgtext_int(&r->arena, r->session.branch_id)};
    CHECK(n >= 0 && n <= SIP_CIRC_MORE_MAX);
    for (int i = 0; i < n; i++)
        values[SIP_CIRC_NPARAMS + i] = more[i];
    sip_db(r, stmt, SIP_CIRC_NPARAMS + n, values, cb);
}

/* The fixed field at `off` of `len` bytes, or "" when the message is shorter. */
static const char *sip_fixed(sip_work_t *w, size_t off, size_t len)
{
    const sip2_msg_t *m = &w->r->msg;
    if (m->fixed == NULL || m->fixed_len < off + len)
        return "";
    return arena_strndup(&w->r->arena, m->fixed + off, len);
}

static const char *sip_institution(const sip_req_t *r)
{
    return r->session.opts.institution[0] ? r->session.opts.institution : r->session.branch_code;
}

static const char *sip_text(const char *s)
{
    return s ? s : "";
}

/* Start the answer; the PIN the message carried is no longer needed (sip.c wipes the line). */
static void sip_begin(sip_work_t *w, const char *code)
{
    OPENSSL_cleanse(w->ad, sizeof(w->ad));
    sip2_out_begin(&w->r->out, code, w->r->session.opts.hide_fields);
}

/*
 * The screen message for a failed statement: our refusals (SQLSTATE class
 * CR) say why in a sentence, some reworded for the patron at the kiosk;
 * anything else is the system's fault, logged, and the kiosk sends the
 * patron to the desk.
 */
static const char *sip_db_sentence(sip_work_t *w, const db_result_t *res)
{
    if (res->status == DB_QUERY_ERROR && db_sqlstate_is_refusal(res->sqlstate)) {
        const char *d = res->detail ? res->detail : "";
        if (strcmp(d, "patron_not_found") == 0 || strcmp(d, "patron") == 0)
            return SIP_NO_CARD;
        if (strcmp(d, "item_not_found") == 0)
            return SIP_NO_ITEM;
        if (strcmp(d, "patron_blocked") == 0)
            return "Please see the desk about your card.";
        if (strcmp(d, "item_on_hold") == 0)
            return "This item is waiting for another patron; please take it to the desk.";
        return arena_strdup(&w->r->arena, res->message ? res->message : SIP_UNAVAILABLE);
    }
    log_warn(0, "sip %s from %s: %s%s", w->r->msg.code, w->r->session.username,
             res->status == DB_UNAVAILABLE ? "database unavailable" : "database error: ",
             res->status == DB_UNAVAILABLE ? "" : sip_text(res->message));
    return SIP_UNAVAILABLE;
}

/* A result that failed, or has other columns than declared: its sentence; NULL when usable. */
static const char *sip_failed(sip_work_t *w, const db_result_t **res, int ncols,
                              db_result_t *scratch)
{
    *res = db_fit(*res, ncols, scratch);
    return (*res)->status == DB_OK ? NULL : sip_db_sentence(w, *res);
}

/* ---- the PIN (AD) ---- */

static void pin_recorded(sip_req_t *r, const db_result_t *res)
{
    sip_work_t *w = r->state;
    db_result_t fit;
    res = db_fit(res, 1, &fit);
    if (res->status != DB_OK) {
        /* Logged; a wrong PIN stays wrong, a right one right (what follows
         * needs the database too, and answers for it). */
        (void)sip_db_sentence(w, res);
    } else if (w->pin == PIN_WRONG && PQntuples(res->res) == 1 && db_bool(res->res, 0, 0)) {
        w->pin = PIN_IS_LOCKED;
    }
    w->after_pin(w);
}

static void pin_record(sip_work_t *w, bool ok)
{
    const char *values[2] = {pgtext_int(&w->r->arena, w->patron_id), ok ? "true" : "false"};
    sip_db(w->r, &stmt_pin_record, 2, values, pin_recorded);
}

static void pin_verified(int ok, const char *hash, void *arg)
{
    (void)hash;
    sip_work_t *w = arg;
    OPENSSL_cleanse(w->ad, sizeof(w->ad)); /* password.c wipes its own copy */
    if (ok == PASSWORD_MATCH) {
        w->pin = PIN_OK;
        if (w->pin_failures > 0) { /* a right PIN resets the count; else no write */
            pin_record(w, true);
            return;
        }
        w->after_pin(w);
        return;
    }
    if (ok == PASSWORD_MISMATCH) {
        w->pin = PIN_WRONG;
        pin_record(w, false);
        return;
    }
    log_warn(0, "sip: the PIN of patron %lld could not be checked (%d)", (long long)w->patron_id,
             ok);
    w->pin = PIN_BUSY;
    w->after_pin(w);
}

/*
 * Decide the PIN's state from the patron's row (hash NULL: none set), then
 * run w->after_pin. Verification goes to the password queue; a wrong PIN is
 * counted (sip_pin_record) before after_pin runs.
 *
 *   login needs PINs:  AD absent -> missing; none set -> not set;
 *                      locked -> locked; else verified.
 *   login does not:    AD absent or none set -> not asked (allowed);
 *                      locked -> locked; else verified.
 */
static void pin_check(sip_work_t *w, const char *hash, bool locked, int failures)
{
    bool required = w->r->session.opts.pin_required;
    w->pin_failures = failures;
    if (w->patron_id == 0 || (!required && (!w->has_ad || hash == NULL))) {
        w->pin = PIN_NOT_ASKED; /* an unknown card is refused by what follows */
    } else if (!w->has_ad) {
        w->pin = PIN_MISSING;
    } else if (hash == NULL) {
        w->pin = PIN_NOT_SET;
    } else if (locked) {
        w->pin = PIN_IS_LOCKED;
    } else {
        int rc = password_verify_async(&w->r->srv->passwords, hash, w->ad, pin_verified, w, NULL);
        if (rc == 0)
            return;
        w->pin = PIN_BUSY;
    }
    OPENSSL_cleanse(w->ad, sizeof(w->ad));
    w->after_pin(w);
}

static void pin_row(sip_req_t *r, const db_result_t *res)
{
    sip_work_t *w = r->state;
    db_result_t fit;
    const char *why = sip_failed(w, &res, PIN_NCOLS, &fit);
    if (why) {
        w->pin = PIN_BUSY;
        w->after_pin(w);
        return;
    }
    if (PQntuples(res->res) == 0) {
        w->patron_id = 0;
        pin_check(w, NULL, false, 0);
        return;
    }
    const PGresult *pg = res->res;
    w->patron_id = db_int64(pg, 0, PIN_PATRON_ID);
    /* The hash is copied: the result goes when this callback returns. */
    const char *hash =
        db_null(pg, 0, PIN_HASH) ? NULL : arena_strdup(&r->arena, db_text(pg, 0, PIN_HASH));
    pin_check(w, hash, db_bool(pg, 0, PIN_LOCKED), db_int32(pg, 0, PIN_FAILURES));
}

/* Before circulation (11, 29, 65, 37): the PIN, then `next`. Without AD on
 * a login that needs none, no query at all. */
static void pin_then(sip_work_t *w, sip_step_fn next)
{
    w->after_pin = next;
    if (!w->r->session.opts.pin_required && !w->has_ad) {
        OPENSSL_cleanse(w->ad, sizeof(w->ad));
        w->pin = PIN_NOT_ASKED;
        next(w);
        return;
    }
    const char *values[1] = {w->card};
    sip_db(w->r, &stmt_pin, 1, values, pin_row);
}

/* ---- 23/24 patron status and 63/64 patron information ---- */

/* The language of 23 and 63 (first fixed field), echoed; "000" (unknown) when absent
 * and for 01 and 25, which carry none. */
static const char *patron_language(sip_work_t *w)
{
    const char *code = w->r->msg.code;
    if (strcmp(code, "23") != 0 && strcmp(code, "63") != 0)
        return "000";
    const char *lang = sip_fixed(w, 0, 3);
    for (size_t i = 0; i < 3; i++)
        if (!isdigit((unsigned char)lang[i]))
            return "000";
    return lang;
}

/* "0012" for a count column, at most 9999. */
static const char *count4(sip_work_t *w, int col)
{
    long n = w->p[col] ? atol(w->p[col]) : 0;
    return arena_printf(&w->r->arena, "%04ld", n < 0 ? 0 : n > 9999 ? 9999 : n);
}

/* An unknown card (known_invalid: BL N, CQ N) or no answer from the database
 * (BL and CQ left out: the card may well be valid): every privilege denied. */
static void patron_unknown(sip_work_t *w, const char *code, bool info, bool known_invalid,
                           const char *af)
{
    sip2_out_t *o = &w->r->out;
    sip_begin(w, code);
    sip2_out_fixed(o, "YYYY          ");
    sip2_out_fixed(o, patron_language(w));
    sip2_out_fixed(o, w->date);
    if (info)
        sip2_out_fixed(o, "000000000000000000000000");
    sip2_out_field(o, "AO", sip_institution(w->r));
    sip2_out_field(o, "AA", w->card);
    sip2_out_field(o, "AE", "");
    if (known_invalid) {
        sip2_out_field(o, "BL", "N");
        sip2_out_field(o, "CQ", "N");
    }
    sip2_out_field(o, "AF", af);
    sip_send(w->r);
}

/*
 * AE, the patron's name: whole only after a verified PIN; on a login that
 * needs no PIN, a bare card number shows the short name ("Maria G.") that
 * the kiosk greets with, and nothing more personal (no address, e-mail or
 * phone in 64: patron_personal). Nothing when the PIN was refused.
 */
static const char *patron_name(sip_work_t *w, bool details)
{
    if (w->pin == PIN_OK)
        return sip_text(w->p[PATRON_NAME]);
    return details ? sip_text(w->p[PATRON_SHORT_NAME]) : "";
}

/* BD, BE, BF (address, e-mail, phone): only to a patron whose PIN was verified. */
static bool patron_personal(const sip_work_t *w)
{
    return w->pin == PIN_OK;
}

/* The fields 24 and 64 share after their fixed part, up to and including BV/CC. */
static void patron_common(sip_work_t *w, bool details, bool info)
{
    sip2_out_t *o = &w->r->out;
    sip2_out_field(o, "AO", sip_institution(w->r));
    sip2_out_field(o, "AA", w->card);
    sip2_out_field(o, "AE", patron_name(w, details));
    if (info) {
        int limits[] = {PATRON_HOLD_LIMIT, PATRON_CHARGED_LIMIT};
        const char *ids[] = {"BZ", "CB"};
        for (size_t i = 0; i < 2; i++)
            if (w->p[limits[i]])
                sip2_out_field(o, ids[i], count4(w, limits[i]));
    }
    sip2_out_field(o, "BL", "Y");
    sip2_out_field(o, "CQ", pin_allows(w->pin) ? "Y" : "N");
    sip2_out_field(o, "BH", "USD");
    if (details)
        sip2_out_field(o, "BV", w->p[PATRON_BALANCE]);
    if (info)
        sip2_out_field(o, "CC", w->p[PATRON_FEE_LIMIT]);
}

/* The screen message: 01's own line, else the PIN's problem, else the patron's standing. */
static const char *patron_af(sip_work_t *w)
{
    if (w->af)
        return w->af;
    const char *pin = pin_sentence(w->pin);
    return pin ? pin : w->p[PATRON_MESSAGE];
}

static void patron_status_answer(sip_work_t *w)
{
    sip2_out_t *o = &w->r->out;
    bool details = pin_allows(w->pin);
    sip_begin(w, "24");
    sip2_out_fixed(o, w->p[PATRON_STATUS]);
    sip2_out_fixed(o, patron_language(w));
    sip2_out_fixed(o, w->date);
    patron_common(w, details, false);
    sip2_out_field(o, "AF", patron_af(w));
    sip_send(w->r);
}

/* The list 63's summary asks for: its position (0-5) names one; -1 for none. */
static int info_summary(sip_work_t *w)
{
    const char *summary = sip_fixed(w, 21, 10);
    for (int i = 0; i < 6 && summary[i]; i++)
        if (summary[i] == 'Y' || summary[i] == 'y')
            return i;
    return -1;
}

static const char *const info_kinds[6] = {"hold", "overdue", "charged",
                                          "fine", "recall",  "unavailable"};
static const char *const info_ids[6] = {"AS", "AT", "AU", "AV", "BU", "CD"};

/* 64's fixed part and fields; `list` (may be NULL) the rows of the asked list. */
static void patron_info_answer(sip_work_t *w, const PGresult *list)
{
    sip2_out_t *o = &w->r->out;
    bool details = pin_allows(w->pin);
    sip_begin(w, "64");
    sip2_out_fixed(o, w->p[PATRON_STATUS]);
    sip2_out_fixed(o, patron_language(w));
    sip2_out_fixed(o, w->date);
    static const int counts[6] = {PATRON_HOLD_ITEMS,    PATRON_OVERDUE_ITEMS,
                                  PATRON_CHARGED_ITEMS, PATRON_FINE_ITEMS,
                                  PATRON_RECALL_ITEMS,  PATRON_UNAVAILABLE_HOLDS};
    for (size_t i = 0; i < 6; i++)
        sip2_out_fixed(o, details ? count4(w, counts[i]) : "0000");
    patron_common(w, details, true);
    int kind = info_summary(w);
    if (list && kind >= 0)
        for (int i = 0; i < PQntuples(list); i++)
            sip2_out_field(o, info_ids[kind], db_text(list, i, ITEMS_VALUE));
    if (patron_personal(w)) {
        sip2_out_field(o, "BD", w->p[PATRON_ADDRESS]);
        sip2_out_field(o, "BE", w->p[PATRON_EMAIL]);
        sip2_out_field(o, "BF", w->p[PATRON_PHONE]);
    }
    sip2_out_field(o, "AF", patron_af(w));
    sip_send(w->r);
}

static void info_items_done(sip_req_t *r, const db_result_t *res)
{
    sip_work_t *w = r->state;
    db_result_t fit;
    const char *why = sip_failed(w, &res, ITEMS_NCOLS, &fit);
    if (why) {
        /* The patron is known; the list could not be read: say so, without it. */
        w->p[PATRON_MESSAGE] = (char *)why;
        patron_info_answer(w, NULL);
        return;
    }
    patron_info_answer(w, res->res);
}

/* BP/BQ: 1-based and inclusive; absent start 1, absent or far end start + SIP_LIST_MAX - 1. */
static void info_range(sip_work_t *w, long *start, long *end)
{
    char bp[16] = "", bq[16] = "";
    sip2_field_copy(&w->r->msg, "BP", bp, sizeof(bp));
    sip2_field_copy(&w->r->msg, "BQ", bq, sizeof(bq));
    *start = bp[0] ? strtol(bp, NULL, 10) : 1;
    if (*start < 1 || *start > 100000)
        *start = 1;
    *end = bq[0] ? strtol(bq, NULL, 10) : *start + SIP_LIST_MAX - 1;
    if (*end < *start || *end > *start + SIP_LIST_MAX - 1)
        *end = *start + SIP_LIST_MAX - 1;
}

static void patron_info_after_pin(sip_work_t *w)
{
    int kind = info_summary(w);
    if (kind < 0 || !pin_allows(w->pin)) {
        patron_info_answer(w, NULL);
        return;
    }
    long start, end;
    info_range(w, &start, &end);
    const char *values[4] = {w->card, info_kinds[kind], pgtext_int(&w->r->arena, start),
                             pgtext_int(&w->r->arena, end)};
    sip_db(w->r, &stmt_patron_items, 4, values, info_items_done);
}

/*
 * 25 Patron Enable: the standard lets a kiosk re-enable a card it (or the
 * ACS) blocked; here only the desk lifts a block (a person decides), so 26
 * tells the patron's status as it is and nothing changes.
 */
static void patron_enable_answer(sip_work_t *w)
{
    sip2_out_t *o = &w->r->out;
    bool details = pin_allows(w->pin);
    sip_begin(w, "26");
    sip2_out_fixed(o, w->p[PATRON_STATUS]);
    sip2_out_fixed(o, patron_language(w));
    sip2_out_fixed(o, w->date);
    sip2_out_field(o, "AO", sip_institution(w->r));
    sip2_out_field(o, "AA", w->card);
    sip2_out_field(o, "AE", patron_name(w, details));
    sip2_out_field(o, "BL", "Y");
    sip2_out_field(o, "CQ", details ? "Y" : "N");
    const char *af = patron_af(w);
    sip2_out_field(o, "AF", af ? af : "Your card may be used.");
    sip_send(w->r);
}

/* The answer a patron-describing message gets: 64 for 63, 26 for 25, else 24 (23 and 01). */
static const char *patron_answer_code(const sip_req_t *r)
{
    if (strcmp(r->msg.code, "63") == 0)
        return "64";
    if (strcmp(r->msg.code, "25") == 0)
        return "26";
    return "24";
}

/* The patron's row for 23, 63, 25 and 01: copied, then the PIN, then the answer. */
static void patron_row(sip_req_t *r, const db_result_t *res)
{
    sip_work_t *w = r->state;
    bool info = strcmp(r->msg.code, "63") == 0;
    const char *answer = patron_answer_code(r);
    db_result_t fit;
    const char *why = sip_failed(w, &res, PATRON_NCOLS, &fit);
    if (why) {
        patron_unknown(w, answer, info, false, why);
        return;
    }
    if (PQntuples(res->res) == 0) {
        patron_unknown(w, answer, info, true, SIP_NO_CARD);
        return;
    }
    for (int c = 0; c < PATRON_NCOLS; c++)
        w->p[c] = db_null(res->res, 0, c) ? NULL : arena_strdup(&r->arena, db_text(res->res, 0, c));
    w->patron_id = db_int64(res->res, 0, PATRON_ID);
    if (strcmp(r->msg.code, "01") == 0) {
        /* 01 carries no PIN, and whoever stands at the kiosk may not be the
         * card's owner: the status only, nothing personal (as a refused PIN). */
        w->pin = PIN_MISSING;
        w->af = SIP_BLOCKED_NOW;
        patron_status_answer(w);
        return;
    }
    w->after_pin = info                             ? patron_info_after_pin
                   : strcmp(r->msg.code, "25") == 0 ? patron_enable_answer
                                                    : patron_status_answer;
    pin_check(
        w, w->p[PATRON_PIN_HASH], db_bool(res->res, 0, PATRON_PIN_LOCKED),
        db_null(res->res, 0, PATRON_PIN_FAILURES) ? 0 : db_int32(res->res, 0, PATRON_PIN_FAILURES));
}

static void handle_patron(sip_req_t *r)
{
    sip_work_t *w = sip_work_new(r);
    const char *values[2] = {w->card, pgtext_int(&r->arena, r->session.branch_id)};
    sip_db(r, &stmt_patron, 2, values, patron_row);
}

/* ---- 01 block patron (answered 24) ---- */

static void block_done(sip_req_t *r, const db_result_t *res)
{
    sip_work_t *w = r->state;
    db_result_t fit;
    res = db_fit(res, 1, &fit);
    if (res->status != DB_OK || PQntuples(res->res) != 1) {
        bool unknown = res->status == DB_QUERY_ERROR && res->detail &&
                       strcmp(res->detail, "patron_not_found") == 0;
        patron_unknown(w, "24", false, unknown,
                       res->status == DB_OK ? SIP_UNAVAILABLE : sip_db_sentence(w, res));
        return;
    }
    const char *values[2] = {w->card, pgtext_int(&r->arena, r->session.branch_id)};
    sip_db(r, &stmt_patron, 2, values, patron_row);
}

/*
 * Block Patron: the standard has the ACS block the card and answer with a
 * Patron Status Response. The block is a desk block (sip_block_patron:
 * patron_block_set, audited) with AL, the kiosk's reason, in its note.
 */
static void handle_block(sip_req_t *r)
{
    sip_work_t *w = sip_work_new(r);
    if (!w->card[0]) {
        patron_unknown(w, "24", false, true, SIP_NO_CARD);
        return;
    }
    char al[SIP2_MAX_VALUE + 1] = "";
    sip2_field_copy(&r->msg, "AL", al, sizeof(al));
    bool retained = strcmp(sip_fixed(w, 0, 1), "Y") == 0;
    const char *values[6] = {sip_key(r),
                             pgtext_int(&r->arena, r->session.staff_id),
                             pgtext_int(&r->arena, r->session.workstation_id),
                             w->card,
                             arena_strdup(&r->arena, al),
                             retained ? "true" : "false"};
    sip_db(r, &stmt_block, 6, values, block_done);
}

/* ---- 15/16 hold and 19/20 item status update: refused with their own answers ---- */

/* Hold: ok 0, available N; holds are placed at the desk or online, where
 * the patron chooses the pickup branch and sees the queue. */
static void handle_hold(sip_req_t *r)
{
    sip_work_t *w = sip_work_new(r);
    sip2_out_t *o = &r->out;
    sip_begin(w, "16");
    sip2_out_fixed(o, "0");
    sip2_out_flag(o, false);
    sip2_out_fixed(o, w->date);
    sip2_out_field(o, "AO", sip_institution(r));
    sip2_out_field(o, "AA", w->card);
    if (w->barcode[0])
        sip2_out_field(o, "AB", w->barcode);
    sip2_out_field(o, "AF", SIP_NO_HOLDS);
    sip_send(r);
}

/* Item Status Update: item properties ok 0; a kiosk changes no catalogue data. */
static void handle_item_update(sip_req_t *r)
{
    sip_work_t *w = sip_work_new(r);
    sip2_out_t *o = &r->out;
    sip_begin(w, "20");
    sip2_out_fixed(o, "0");
    sip2_out_fixed(o, w->date);
    sip2_out_field(o, "AB", w->barcode);
    sip2_out_field(o, "AF", SIP_NO_UPDATE);
    sip_send(r);
}

/* ---- 11/12 checkout ---- */

/*
 * A Checkout Response (12) or a Renew Response (30): the same layout.
 * `renewal`: the standard's "renewal ok" (for 12: the patron already had
 * the item). Desensitize is Y when the item goes (or stays) out.
 */
static void loan_answer(sip_work_t *w, const char *code, bool ok, bool renewal, const char *title,
                        const char *due, const char *media, const char *af)
{
    sip2_out_t *o = &w->r->out;
    sip_begin(w, code);
    sip2_out_fixed(o, ok ? "1" : "0");
    sip2_out_flag(o, renewal);
    sip2_out_fixed(o, "U"); /* magnetic media: not recorded */
    sip2_out_flag(o, ok);   /* desensitize */
    sip2_out_fixed(o, w->date);
    sip2_out_field(o, "AO", sip_institution(w->r));
    sip2_out_field(o, "AA", w->card);
    sip2_out_field(o, "AB", w->barcode);
    sip2_out_field(o, "AJ", sip_text(title));
    sip2_out_field(o, "AH", ok ? sip_text(due) : "");
    if (media && media[0])
        sip2_out_field(o, "CK", media);
    sip2_out_field(o, "AF", af);
    sip_send(w->r);
}

/* `renewal`: the patron already had the item. */
static void checkout_answer(sip_work_t *w, bool ok, bool renewal, const char *title,
                            const char *due, const char *media, const char *af)
{
    loan_answer(w, "12", ok, renewal, title, due, media, af);
}

static void checkout_same_done(sip_req_t *r, const db_result_t *res)
{
    sip_work_t *w = r->state;
    db_result_t fit;
    const char *why = sip_failed(w, &res, CHECKOUT_NCOLS, &fit);
    if (why || PQntuples(res->res) == 0) {
        /* Returned meanwhile (or no database): nothing was lent by this message. */
        checkout_answer(w, false, false, NULL, NULL, NULL, why ? why : SIP_HELD_DESK);
        return;
    }
    const PGresult *pg = res->res;
    checkout_answer(w, true, true, db_text(pg, 0, CHECKOUT_TITLE), db_text(pg, 0, CHECKOUT_DUE),
                    db_text(pg, 0, CHECKOUT_MEDIA), "This item is already checked out to you.");
}

static void checkout_done(sip_req_t *r, const db_result_t *res)
{
    sip_work_t *w = r->state;
    if (res->status == DB_QUERY_ERROR && res->detail &&
        strcmp(res->detail, "already_checked_out") == 0) {
        /*
         * Already lent to this patron: a kiosk that resends a checkout with a
         * new transaction date (so a new key) gets ok with the due date it
         * has, and nothing is applied.
         */
        const char *values[2] = {w->barcode, w->card};
        sip_db(r, &stmt_checkout_same, 2, values, checkout_same_done);
        return;
    }
    db_result_t fit;
    const char *why = sip_failed(w, &res, CHECKOUT_NCOLS, &fit);
    if (why || PQntuples(res->res) == 0) {
        checkout_answer(w, false, false, NULL, NULL, NULL, why ? why : SIP_UNAVAILABLE);
        return;
    }
    const PGresult *pg = res->res;
    checkout_answer(w, true, false, db_text(pg, 0, CHECKOUT_TITLE), db_text(pg, 0, CHECKOUT_DUE),
                    db_text(pg, 0, CHECKOUT_MEDIA), NULL);
}

static void checkout_after_pin(sip_work_t *w)
{
    if (!pin_allows(w->pin)) {
        checkout_answer(w, false, false, NULL, NULL, NULL, pin_sentence(w->pin));
        return;
    }
    const char *more[] = {w->card, w->barcode};
    sip_db_circ(w->r, &stmt_checkout, more, 2, checkout_done);
}

/*
 * Checkout. "No block" (the kiosk lent the item while it was offline) is
 * checked out now, under the same rules as any checkout: a refusal is
 * answered ok=0 and the kiosk's staff settle it (docs/SIP2.md); the
 * kiosk's own due date is not taken.
 */
static void handle_checkout(sip_req_t *r)
{
    sip_work_t *w = sip_work_new(r);
    if (!w->card[0] || !w->barcode[0]) {
        checkout_answer(w, false, false, NULL, NULL, NULL, w->card[0] ? SIP_NO_ITEM : SIP_NO_CARD);
        return;
    }
    pin_then(w, checkout_after_pin);
}

/* ---- 09/10 checkin ---- */

typedef struct checkin_answer {
    bool ok;
    bool resensitize;
    bool alert;
    const char *title;
    const char *home;     /* AQ: the owning branch's code */
    const char *sort_bin; /* CL */
    const char *destination;
    const char *alert_type; /* CV */
    const char *media;
    const char *hold_card;
    const char *hold_name;
    const char *af;
} checkin_answer_t;

static void checkin_send(sip_work_t *w, const checkin_answer_t *a)
{
    sip2_out_t *o = &w->r->out;
    const sip_options_t *opts = &w->r->session.opts;
    sip_begin(w, "10");
    sip2_out_fixed(o, a->ok ? "1" : "0");
    sip2_out_flag(o, a->resensitize);
    sip2_out_fixed(o, "U"); /* magnetic media: not recorded */
    sip2_out_flag(o, a->alert);
    sip2_out_fixed(o, w->date);
    sip2_out_field(o, "AO", sip_institution(w->r));
    sip2_out_field(o, "AB", w->barcode);
    sip2_out_field(o, "AQ", sip_text(a->home));
    if (a->title)
        sip2_out_field(o, "AJ", a->title);
    if (a->sort_bin)
        sip2_out_field(o, "CL", a->sort_bin);
    if (a->media && a->media[0])
        sip2_out_field(o, "CK", a->media);
    if (a->destination && a->destination[0])
        sip2_out_field(o, "CT", a->destination);
    else if (opts->always_send_ct)
        sip2_out_field(o, "CT", "");
    if (a->alert_type)
        sip2_out_field(o, "CV", a->alert_type);
    else if (opts->cv_00_on_success && a->ok)
        sip2_out_field(o, "CV", "00");
    if (a->hold_card && a->hold_card[0]) {
        sip2_out_field(o, "CY", a->hold_card);
        sip2_out_field(o, "DA", a->hold_name);
    }
    sip2_out_field(o, "AF", a->af);
    sip_send(w->r);
}

/*
 * Where the copy goes, as a sorter sorts it (docs/SIP2.md):
 *   shelf here       CL 1, resensitize
 *   hold here        CL 2, alert, CV 01, CY/DA the hold's patron
 *   hold elsewhere   CL 3, alert, CV 02, CT the pickup branch, CY/DA
 *   transit          CL 3, alert, CV 04, CT the branch it goes to
 *   display here     CL 4, resensitize
 *   kept for staff   CL 3, alert, CV 99 (withdrawn, damaged, in process)
 */
static void checkin_done(sip_req_t *r, const db_result_t *res)
{
    sip_work_t *w = r->state;
    db_result_t fit;
    checkin_answer_t a = {0};
    const char *why = sip_failed(w, &res, CHECKIN_NCOLS, &fit);
    if (why || PQntuples(res->res) == 0) {
        a.alert = true; /* not checked in: a person must look at it */
        a.af = why ? why : SIP_UNAVAILABLE;
        checkin_send(w, &a);
        return;
    }
    const PGresult *pg = res->res;
    const char *route = db_text(pg, 0, CHECKIN_ROUTE);
    bool held = !db_null(pg, 0, CHECKIN_HOLD_ID);
    a.ok = true;
    a.title = db_text(pg, 0, CHECKIN_TITLE);
    a.home = db_text(pg, 0, CHECKIN_HOME);
    a.media = db_text(pg, 0, CHECKIN_MEDIA);
    /* Not c.message: the desk's line names the patron a hold is for. */
    a.af = held ? SIP_RETURN_HOLD : SIP_RETURNED;
    if (held) {
        a.hold_card = db_text(pg, 0, CHECKIN_HOLD_CARD);
        a.hold_name = db_text(pg, 0, CHECKIN_HOLD_NAME);
    }
    if (strcmp(route, "hold_shelf") == 0) {
        a.sort_bin = "2";
        a.alert = true;
        a.alert_type = "01";
    } else if (strcmp(route, "transit") == 0) {
        a.sort_bin = "3";
        a.alert = true;
        a.alert_type = held ? "02" : "04";
        a.destination = db_text(pg, 0, CHECKIN_DESTINATION);
        if (!held)
            a.af = SIP_RETURN_AWAY;
    } else if (strcmp(route, "display") == 0) {
        a.sort_bin = "4";
        a.resensitize = true;
    } else if (strcmp(route, "keep") == 0) {
        a.sort_bin = "3";
        a.alert = true;
        a.alert_type = "99";
        a.resensitize = true;
        a.af = SIP_RETURN_KEEP;
    } else {
        a.sort_bin = "1";
        a.resensitize = true;
    }
    checkin_send(w, &a);
}

static void checkin_run(sip_work_t *w)
{
    /* The return date of a "no block" checkin (the kiosk took it back offline). */
    const char *no_block = sip_fixed(w, 0, 1);
    const char *returned = strcmp(no_block, "Y") == 0 ? sip_fixed(w, 19, 18) : NULL;
    const char *more[] = {w->barcode, returned && returned[0] ? returned : NULL};
    sip_db_circ(w->r, &stmt_checkin, more, 2, checkin_done);
}

static void checkin_held_done(sip_req_t *r, const db_result_t *res)
{
    sip_work_t *w = r->state;
    db_result_t fit;
    const char *why = sip_failed(w, &res, 1, &fit);
    if (why || PQntuples(res->res) != 1) {
        checkin_answer_t a = {.alert = true, .af = why ? why : SIP_UNAVAILABLE};
        checkin_send(w, &a);
        return;
    }
    if (db_bool(res->res, 0, 0)) {
        /* A hold wants it: not checked in here; the desk captures it. */
        checkin_answer_t a = {.alert = true, .af = SIP_HELD_DESK};
        checkin_send(w, &a);
        return;
    }
    checkin_run(w);
}

static void handle_checkin(sip_req_t *r)
{
    sip_work_t *w = sip_work_new(r);
    if (!w->barcode[0]) {
        checkin_answer_t a = {.alert = true, .af = SIP_NO_ITEM};
        checkin_send(w, &a);
        return;
    }
    if (r->session.opts.held_checkin_blocked) {
        const char *values[2] = {w->barcode, pgtext_int(&r->arena, r->session.branch_id)};
        sip_db(r, &stmt_checkin_held, 2, values, checkin_held_done);
        return;
    }
    checkin_run(w);
}

/* ---- 29/30 renew ---- */

static void renew_answer(sip_work_t *w, bool ok, const char *title, const char *due,
                         const char *media, const char *af)
{
    loan_answer(w, "30", ok, ok, title, due, media, af);
}

static void renew_done(sip_req_t *r, const db_result_t *res)
{
    sip_work_t *w = r->state;
    db_result_t fit;
    const char *why = sip_failed(w, &res, RENEW_NCOLS, &fit);
    if (why || PQntuples(res->res) == 0) {
        renew_answer(w, false, NULL, NULL, NULL, why ? why : SIP_UNAVAILABLE);
        return;
    }
    const PGresult *pg = res->res;
    renew_answer(w, db_bool(pg, 0, RENEW_RENEWED), db_text(pg, 0, RENEW_TITLE),
                 db_text(pg, 0, RENEW_DUE), db_text(pg, 0, RENEW_MEDIA),
                 db_text(pg, 0, RENEW_MESSAGE));
}

static void renew_after_pin(sip_work_t *w)
{
    if (!pin_allows(w->pin)) {
        renew_answer(w, false, NULL, NULL, NULL, pin_sentence(w->pin));
        return;
    }
    const char *more[] = {w->card, w->barcode};
    sip_db_circ(w->r, &stmt_renew, more, 2, renew_done);
}

/* Renew one item (AB; a renewal by title, AJ alone, is not supported). */
static void handle_renew(sip_req_t *r)
{
    sip_work_t *w = sip_work_new(r);
    if (!w->card[0] || !w->barcode[0]) {
        renew_answer(w, false, NULL, NULL, NULL,
                     w->card[0] ? "Please scan the item to renew it." : SIP_NO_CARD);
        return;
    }
    pin_then(w, renew_after_pin);
}

/* ---- 65/66 renew all ---- */

static void renew_all_answer(sip_work_t *w, bool ok, const PGresult *rows, const char *af)
{
    sip2_out_t *o = &w->r->out;
    int renewed = 0, n = rows ? PQntuples(rows) : 0;
    for (int i = 0; i < n; i++)
        renewed += db_bool(rows, i, RENEW_ALL_RENEWED);
    sip_begin(w, "66");
    sip2_out_fixed(o, ok ? "1" : "0");
    sip2_out_fixed(o, arena_printf(&w->r->arena, "%04d", renewed > 9999 ? 9999 : renewed));
    sip2_out_fixed(o, arena_printf(&w->r->arena, "%04d", n - renewed > 9999 ? 9999 : n - renewed));
    sip2_out_fixed(o, w->date);
    sip2_out_field(o, "AO", sip_institution(w->r));
    for (int i = 0; i < n; i++)
        if (db_bool(rows, i, RENEW_ALL_RENEWED))
            sip2_out_field(o, "BM", db_text(rows, i, RENEW_ALL_BARCODE));
    for (int i = 0; i < n; i++)
        if (!db_bool(rows, i, RENEW_ALL_RENEWED))
            sip2_out_field(o, "BN", db_text(rows, i, RENEW_ALL_BARCODE));
    if (af == NULL)
        af = n == 0 ? "You have nothing checked out."
                    : arena_printf(&w->r->arena, "Renewed %d of %d items.", renewed, n);
    sip2_out_field(o, "AF", af);
    sip_send(w->r);
}

static void renew_all_done(sip_req_t *r, const db_result_t *res)
{
    sip_work_t *w = r->state;
    db_result_t fit;
    const char *why = sip_failed(w, &res, RENEW_ALL_NCOLS, &fit);
    if (why) {
        renew_all_answer(w, false, NULL, why);
        return;
    }
    renew_all_answer(w, true, res->res, NULL);
}

static void renew_all_after_pin(sip_work_t *w)
{
    if (!pin_allows(w->pin)) {
        renew_all_answer(w, false, NULL, pin_sentence(w->pin));
        return;
    }
    const char *more[] = {w->card};
    sip_db_circ(w->r, &stmt_renew_all, more, 1, renew_all_done);
}

static void handle_renew_all(sip_req_t *r)
{
    sip_work_t *w = sip_work_new(r);
    if (!w->card[0]) {
        renew_all_answer(w, false, NULL, SIP_NO_CARD);
        return;
    }
    pin_then(w, renew_all_after_pin);
}

/* ---- 17/18 item information ---- */

static void item_done(sip_req_t *r, const db_result_t *res)
{
    sip_work_t *w = r->state;
    sip2_out_t *o = &r->out;
    db_result_t fit;
    const char *why = sip_failed(w, &res, ITEM_NCOLS, &fit);
    sip_begin(w, "18");
    if (why || PQntuples(res->res) == 0) {
        /* Circulation status other, security marker other, fee type other. */
        sip2_out_fixed(o, "010001");
        sip2_out_fixed(o, w->date);
        sip2_out_field(o, "AB", w->barcode);
        sip2_out_field(o, "AJ", "");
        sip2_out_field(o, "AF", why ? why : SIP_NO_ITEM);
        sip_send(r);
        return;
    }
    const PGresult *pg = res->res;
    sip2_out_fixed(o, db_text(pg, 0, ITEM_STATUS));
    sip2_out_fixed(o, "02"); /* security marker: tattle-tape (the standard's usual strip) */
    sip2_out_fixed(o, "01"); /* fee type: other/unknown (no rental fees) */
    sip2_out_fixed(o, w->date);
    sip2_out_field(o, "CF", db_text(pg, 0, ITEM_HOLD_QUEUE));
    if (!db_null(pg, 0, ITEM_DUE))
        sip2_out_field(o, "AH", db_text(pg, 0, ITEM_DUE));
    sip2_out_field(o, "AB", db_text(pg, 0, ITEM_BARCODE));
    sip2_out_field(o, "AJ", db_text(pg, 0, ITEM_TITLE));
    sip2_out_field(o, "BG", db_text(pg, 0, ITEM_OWNER));
    sip2_out_field(o, "CK", db_text(pg, 0, ITEM_MEDIA));
    sip2_out_field(o, "AQ", db_text(pg, 0, ITEM_OWNER));
    sip2_out_field(o, "AP", db_text(pg, 0, ITEM_CURRENT));
    if (!db_null(pg, 0, ITEM_DESTINATION))
        sip2_out_field(o, "CT", db_text(pg, 0, ITEM_DESTINATION));
    if (!db_null(pg, 0, ITEM_MESSAGE))
        sip2_out_field(o, "AF", db_text(pg, 0, ITEM_MESSAGE));
    sip_send(r);
}

static void handle_item(sip_req_t *r)
{
    sip_work_t *w = sip_work_new(r);
    const char *values[2] = {w->barcode, pgtext_int(&r->arena, r->session.branch_id)};
    sip_db(r, &stmt_item, 2, values, item_done);
}

/* ---- 37/38 fee paid ---- */

static void fee_answer(sip_work_t *w, bool ok, const char *af)
{
    sip2_out_t *o = &w->r->out;
    char bk[SIP2_MAX_VALUE + 1] = "";
    bool has_bk = sip2_field_copy(&w->r->msg, "BK", bk, sizeof(bk));
    sip_begin(w, "38");
    sip2_out_flag(o, ok);
    sip2_out_fixed(o, w->date);
    sip2_out_field(o, "AO", sip_institution(w->r));
    sip2_out_field(o, "AA", w->card);
    if (has_bk)
        sip2_out_field(o, "BK", bk);
    sip2_out_field(o, "AF", af);
    sip_send(w->r);
}

/* "12.50", "12.5", "12" or ".50" -> cents; -1 when it is not an amount. */
static long long fee_cents(const char *s)
{
    long long cents = 0;
    int decimals = -1, digits = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '.' && decimals < 0) {
            decimals = 0;
        } else if (isdigit((unsigned char)*p) && decimals < 2 && digits < 9) {
            cents = cents * 10 + (*p - '0');
            digits++;
            if (decimals >= 0)
                decimals++;
        } else {
            return -1;
        }
    }
    if (digits == 0)
        return -1;
    for (int d = decimals < 0 ? 0 : decimals; d < 2; d++)
        cents *= 10;
    return cents;
}

static void fee_done(sip_req_t *r, const db_result_t *res)
{
    sip_work_t *w = r->state;
    db_result_t fit;
    const char *why = sip_failed(w, &res, FEE_NCOLS, &fit);
    if (why || PQntuples(res->res) == 0) {
        fee_answer(w, false, why ? why : SIP_UNAVAILABLE);
        return;
    }
    fee_answer(w, true, "Thank you: your payment was recorded.");
}

static void fee_after_pin(sip_work_t *w)
{
    if (!pin_allows(w->pin)) {
        fee_answer(w, false, pin_sentence(w->pin));
        return;
    }
    sip_req_t *r = w->r;
    char bv[32] = "", bk[SIP2_MAX_VALUE + 1] = "";
    sip2_field_copy(&r->msg, "BV", bv, sizeof(bv));
    bool has_bk = sip2_field_copy(&r->msg, "BK", bk, sizeof(bk)) && bk[0];
    long long cents = fee_cents(bv);
    const char *currency = sip_fixed(w, 22, 3);
    if (cents <= 0) {
        fee_answer(w, false, "The amount paid is not one the library can record.");
        return;
    }
    if (currency[0] && strcmp(currency, "USD") != 0) {
        fee_answer(w, false, "The library takes payments in US dollars only.");
        return;
    }
    const char *type = sip_fixed(w, 20, 2);
    const char *note =
        has_bk ? arena_printf(&r->arena, "Self-check payment (payment type %s, transaction %s)",
                              type, bk)
               : arena_printf(&r->arena, "Self-check payment (payment type %s)", type);
    const char *values[5] = {sip_key(r), pgtext_int(&r->arena, r->session.staff_id), w->card,
                             pgtext_int(&r->arena, cents), note};
    sip_db(r, &stmt_fee_paid, 5, values, fee_done);
}

static void handle_fee_paid(sip_req_t *r)
{
    sip_work_t *w = sip_work_new(r);
    if (!w->card[0]) {
        fee_answer(w, false, SIP_NO_CARD);
        return;
    }
    pin_then(w, fee_after_pin);
}

/* ---- the table ---- */

static const struct {
    const char *code;
    sip_handler_fn fn;
} sip_handlers[] = {
    {"23", handle_patron},  {"63", handle_patron},      {"11", handle_checkout},
    {"09", handle_checkin}, {"29", handle_renew},       {"65", handle_renew_all},
    {"17", handle_item},    {"37", handle_fee_paid},    {"01", handle_block},
    {"15", handle_hold},    {"19", handle_item_update}, {"25", handle_patron},
};

sip_handler_fn sip_handler_find(const char *code)
{
    for (size_t i = 0; i < sizeof(sip_handlers) / sizeof(sip_handlers[0]); i++)
        if (strcmp(sip_handlers[i].code, code) == 0)
            return sip_handlers[i].fn;
    return NULL;
}

/*
 * BX of 98, in the standard's order: patron status, checkout, checkin,
 * block patron, SC/ACS status, resend, login, patron information, end
 * patron session, fee paid, item information, item status update, patron
 * enable, hold, renew, renew all. Item status update, patron enable and
 * hold are answered (20, 26, 16) but only to refuse: N, so a kiosk does
 * not offer them.
 */
void sip_supported_messages(char out[17])
{
    memcpy(out, "YYYYYYYYYYYNNNYY", 17);
}
