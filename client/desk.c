/*
 * desk: `carrel desk`, the circulation desk made for a barcode scanner. A
 * scanner types a barcode and Enter; every scan is answered on one line.
 *
 * In checkout mode the first scan is a library card, the following scans are
 * items lent to that patron, and an empty line ends the patron's visit. An
 * item barcode the server does not know is tried as a card, so scanning the
 * next patron's card moves on to them. In checkin mode every scan is a
 * return. Lines starting with ':' are commands (:help lists them); :q
 * tallies a question answered (an inquiry) in one line, as fast as a scan.
 *
 * The loop. Everything runs on the connection's own libuv loop (session.c),
 * and nothing here calls client_call, which runs that loop itself and must
 * not be entered from one of its callbacks. Instead desk_loop repeats:
 *
 *   1. take queued input lines, one at a time, while no request is in
 *      flight: a line is answered locally, or becomes the one request in
 *      flight (desk_pending_t); further lines wait in the queue, in order;
 *   2. reconnect if the connection has closed (desk_reconnect);
 *   3. send the request in flight if it is not sent yet, or a keepalive
 *      Ping after a quiet minute;
 *   4. client_run_once: one turn of the loop, in which the keyboard
 *      (uv_poll on fd 0), a tick (a second at most), signals and the
 *      connection are served. Input callbacks only queue lines; pushed
 *      events are printed at once by the client's on_event callback;
 *   5. client_poll: if the answer has arrived, print it; the answer may
 *      start a follow-up request (a card lookup asks for the patron's count
 *      of items out; an unknown item is tried as a card).
 *
 * This file is the desk's state machine. The terminal (libedit or plain
 * reads, the line queue, the prompt, desk_emit) is desk_term.c; the tick,
 * the signals, the keepalive timing and the answer deadline are the
 * listening loop it shares with `carrel events` (listen.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <editline/readline.h>

#include "cli.h"
#include "offline.h"
#include "password.h"
#include "status.h"
#include "text.h"
#include "util.h"

#include "desk.h"

static uint64_t desk_now_ms(void)
{
    return listen_now_ms();
}

/* ---- output ---- */

static void desk_say(desk_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void desk_say(desk_t *d, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        desk_emit(d, "(out of memory)");
        return;
    }
    desk_emit(d, text);
    free(text);
}

static void desk_emit_json(desk_t *d, json_t *j)
{
    if (buf_append(&j->out, "", 1) != 0) { /* NUL-terminate */
        desk_emit(d, "{\"ok\":false,\"status\":\"local_error\",\"message\":\"out of memory\"}");
        return;
    }
    desk_emit(d, (const char *)j->out.data);
}

/* Prints the object a desk_json_* builder filled, and frees it. */
static void desk_json_done(desk_t *d, json_t *j)
{
    json_object_end(j);
    desk_emit_json(d, j);
    json_free(j);
}

/* Starts {"ok": true, "key": {  (answer) or {"key": {  (not an answer); the
 * caller adds the inner fields and closes with desk_json_nested_done. */
static void desk_json_nested_begin(json_t *j, bool answer, const char *key)
{
    json_init(j);
    json_object_begin(j);
    if (answer) {
        json_key(j, "ok");
        json_bool(j, true);
    }
    json_key(j, key);
    json_object_begin(j);
}

static void desk_json_nested_done(desk_t *d, json_t *j)
{
    json_object_end(j);
    desk_json_done(d, j);
}

/*
 * {"ok": true, "key": <message>} for the answer to a request (a scan, a :
 * command), as a refusal's line says "ok": false; {"key": <message>} for
 * what is not an answer (an event pushed by the server).
 */
static void desk_json_body(desk_t *d, const char *key, const ProtobufCMessage *m, bool answer)
{
    json_t j;
    json_init(&j);
    json_object_begin(&j);
    if (answer) {
        json_key(&j, "ok");
        json_bool(&j, true);
    }
    json_key(&j, key);
    json_message(&j, m);
    desk_json_done(d, &j);
}

/* True for a notice that says something failed (not "resending", "reconnected", ...). */
static bool desk_status_failed(const char *status)
{
    static const char *const failures[] = {"local_error", "usage_error", "network_error",
                                           "unavailable"};
    for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++)
        if (strcmp(status, failures[i]) == 0)
            return true;
    return false;
}

/*
 * {"status": status, "message": message}: a local problem or a notice; a
 * failure starts with "ok": false, as every command's refusals do.
 */
static void desk_json_status(desk_t *d, const char *status, const char *message)
{
    json_t j;
    json_init(&j);
    json_object_begin(&j);
    if (desk_status_failed(status)) {
        json_key(&j, "ok");
        json_bool(&j, false);
    }
    json_key(&j, "status");
    json_string(&j, status);
    json_key(&j, "message");
    json_string(&j, message);
    desk_json_done(d, &j);
}

/* {"key": "value"} */
static void desk_json_string(desk_t *d, const char *key, const char *value)
{
    json_t j;
    json_init(&j);
    json_object_begin(&j);
    json_key(&j, key);
    json_string(&j, value);
    desk_json_done(d, &j);
}

/* A message for the clerk that is not an answer to a scan: a line, or with --json
 * {"status": status, "message": ...}. */
void desk_notice(desk_t *d, const char *status, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (d->cli->json)
        desk_json_status(d, status, text);
    else
        desk_emit(d, text);
}

static const char *desk_str(const char *s)
{
    return s ? s : "";
}

/* A refusal as JSON; a NULL field (overridable < 0) is left out. */
typedef struct {
    const char *status, *reason, *blocked, *message, *request, *scan;
    int overridable;
} desk_failure_t;

/* {"ok": false, "status", "reason", "blocked", "message", "overridable", "request", "scan"} */
static void desk_json_failure(desk_t *d, const desk_failure_t *f)
{
    const char *const keys[] = {"status", "reason", "blocked", "message"};
    const char *const values[] = {f->status, f->reason, f->blocked, f->message};
    json_t j;
    json_init(&j);
    json_object_begin(&j);
    json_key(&j, "ok");
    json_bool(&j, false);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (values[i]) {
            json_key(&j, keys[i]);
            json_string(&j, values[i]);
        }
    }
    if (f->overridable >= 0) {
        json_key(&j, "overridable");
        json_bool(&j, f->overridable > 0);
    }
    json_key(&j, "request");
    json_string(&j, f->request);
    if (f->scan) {
        json_key(&j, "scan");
        json_string(&j, f->scan);
    }
    desk_json_done(d, &j);
}

/*
 * A refusal or failure of the request in flight, on one line:
 *   REFUSED 3123...: <message> [<reason>] — can be overridden: :override REASON
 * With --json: {"ok": false, "status", "reason", "message", "overridable",
 * "request", "scan"}.
 */
static void desk_print_failure(desk_t *d, const char *request, const char *subject,
                               const Carrel__Response *r)
{
    const char *msg = r->message && r->message[0] ? r->message : "(no message)";
    const char *reason = r->reason && r->reason[0] ? r->reason : NULL;
    bool overridable = r->has_overridable && r->overridable;
    if (d->cli->json) {
        desk_json_failure(d, &(desk_failure_t){.status = status_name(r->status),
                                               .reason = reason,
                                               .message = msg,
                                               .overridable = r->has_overridable ? overridable : -1,
                                               .request = request,
                                               .scan = subject});
        return;
    }
    bool rule =
        r->status == CARREL__STATUS__STATUS_REFUSED || r->status == CARREL__STATUS__STATUS_CONFLICT;
    const char *tag = r->status == CARREL__STATUS__STATUS_NOT_FOUND           ? "NOT FOUND"
                      : rule || r->status == CARREL__STATUS__STATUS_FORBIDDEN ? "REFUSED"
                                                                              : "ERROR";
    char bracket[160];
    if ((rule || r->status == CARREL__STATUS__STATUS_NOT_FOUND) && reason)
        snprintf(bracket, sizeof(bracket), " [%s]", reason);
    else if (reason)
        snprintf(bracket, sizeof(bracket), " [%s: %s]", status_name(r->status), reason);
    else
        snprintf(bracket, sizeof(bracket), " [%s]", status_name(r->status));
    const char *suffix = "";
    if (strcmp(request, "checkout") == 0 && rule)
        suffix = overridable ? " — can be overridden: :override REASON" : " — not overridable";
    desk_say(d, "%s%s%s: %s%s%s", tag, subject ? " " : "", desk_str(subject), msg, bracket, suffix);
}

/* End the current patron's visit: "3 checked out for Maria G." */
static void desk_end_patron(desk_t *d)
{
    if (!d->patron)
        return;
    if (d->cli->json) {
        json_t j;
        json_init(&j);
        json_object_begin(&j);
        json_key(&j, "done");
        json_object_begin(&j);
        json_key(&j, "card");
        json_string(&j, d->patron_card);
        json_key(&j, "name");
        json_string(&j, d->patron_name);
        json_key(&j, "checked_out");
        json_int(&j, d->patron_checked_out);
        json_object_end(&j);
        json_object_end(&j);
        desk_emit_json(d, &j);
        json_free(&j);
    } else {
        desk_say(d, "%d checked out for %s", d->patron_checked_out, d->patron_name);
    }
    d->patron = false;
    d->refused = false;
    d->patron_checked_out = 0;
    desk_update_prompt(d);
}

static void desk_set_mode(desk_t *d, desk_mode_t mode)
{
    desk_end_patron(d);
    d->mode = mode;
    d->refused = false;
    desk_update_prompt(d);
    const char *name = mode == DESK_MODE_CHECKIN ? "checkin" : "checkout";
    if (d->cli->json)
        desk_json_string(d, "mode", name);
    else if (mode == DESK_MODE_CHECKIN)
        desk_say(d, "Checkin mode: every scan is a return.");
    else
        desk_say(d, "Checkout mode: scan a library card to start.");
}

/* ---- the request in flight ---- */

/* Requests that change data carry a request key. */
static bool desk_step_is_change(desk_step_t step)
{
    return step == DESK_STEP_CHECKOUT || step == DESK_STEP_CHECKIN || step == DESK_STEP_RENEW ||
           step == DESK_STEP_TALLY;
}

/* Start a request; it is sent by the main loop. Changes get a fresh request key. */
static void desk_start(desk_t *d, desk_step_t step, const char *scan, const char *card)
{
    memset(&d->pend, 0, sizeof(d->pend));
    d->pend.step = step;
    util_strlcpy(d->pend.scan, desk_str(scan), sizeof(d->pend.scan));
    util_strlcpy(d->pend.card, desk_str(card), sizeof(d->pend.card));
    d->pend.wall_ms = util_now_ms();
    if (desk_step_is_change(step) && util_uuid7(d->pend.key) != 0) {
        desk_notice(d, "local_error", "No randomness available for a request key.");
        memset(&d->pend, 0, sizeof(d->pend));
        d->quit = true;
        d->exit_code = EXIT_LOCAL;
    }
}

/* Send (or send again) the request in flight. Returns 0, or -1 if the
 * connection is going (the main loop then reconnects and sends it again). */
static int desk_send(desk_t *d)
{
    desk_pending_t *p = &d->pend;
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__PatronGet pg = CARREL__PATRON_GET__INIT;
    Carrel__AccountGet ag = CARREL__ACCOUNT_GET__INIT;
    Carrel__Checkout co = CARREL__CHECKOUT__INIT;
    Carrel__Checkin ci = CARREL__CHECKIN__INIT;
    Carrel__Renew rn = CARREL__RENEW__INIT;
    Carrel__Ping ping = CARREL__PING__INIT;
    Carrel__ServiceCodeList kinds = CARREL__SERVICE_CODE_LIST__INIT;
    Carrel__InquiryAdd add = CARREL__INQUIRY_ADD__INIT;
    Carrel__Inquiry tally = CARREL__INQUIRY__INIT;
    switch (p->step) {
    case DESK_STEP_CARD:
    case DESK_STEP_ITEM_AS_CARD:
        pg.card = p->scan;
        req.body_case = CARREL__REQUEST__BODY_PATRON_GET;
        req.patron_get = &pg;
        break;
    case DESK_STEP_PATRON_COUNT:
    case DESK_STEP_ACCOUNT:
        ag.card = p->card;
        ag.has_ledger_limit = 1;
        ag.ledger_limit = 1; /* the desk shows the balance, not the ledger */
        req.body_case = CARREL__REQUEST__BODY_ACCOUNT_GET;
        req.account_get = &ag;
        break;
    case DESK_STEP_CHECKOUT:
        co.card = p->card;
        co.barcode = p->scan;
        if (p->override) {
            co.has_override = co.override = 1;
            co.override_reason = p->override_reason;
        }
        req.body_case = CARREL__REQUEST__BODY_CHECKOUT;
        req.checkout = &co;
        break;
    case DESK_STEP_CHECKIN:
        ci.barcode = p->scan;
        req.body_case = CARREL__REQUEST__BODY_CHECKIN;
        req.checkin = &ci;
        break;
    case DESK_STEP_RENEW:
        rn.card = p->card;
        req.body_case = CARREL__REQUEST__BODY_RENEW;
        req.renew = &rn;
        break;
    case DESK_STEP_PING:
    case DESK_STEP_KEEPALIVE:
        ping.has_push_event = p->step == DESK_STEP_PING;
        ping.push_event = p->step == DESK_STEP_PING;
        req.body_case = CARREL__REQUEST__BODY_PING;
        req.ping = &ping;
        break;
    case DESK_STEP_KINDS:
        kinds.list = "inquiry_kind";
        req.body_case = CARREL__REQUEST__BODY_SERVICE_CODE_LIST;
        req.service_code_list = &kinds;
        break;
    case DESK_STEP_TALLY:
        tally.kind = p->kind;
        tally.has_read_level = 1;
        tally.read_level = p->read_level;
        tally.channel = p->channel;
        tally.desk_code = (char *)d->service_desk;
        tally.at = p->at[0] ? p->at : NULL;
        add.inquiry = &tally;
        req.body_case = CARREL__REQUEST__BODY_INQUIRY_ADD;
        req.inquiry_add = &add;
        break;
    case DESK_STEP_NONE:
        return 0;
    }
    if (p->key[0])
        req.request_key = p->key;
    uint64_t id = client_send(&d->cli->conn, &req);
    if (id == 0)
        return -1;
    p->id = id;
    p->sent_ms = d->last_send_ms = desk_now_ms();
    return 0;
}

/* ---- answers ---- */

static void desk_answer_card(desk_t *d, Carrel__Response *r, bool from_item)
{
    if (r->status != CARREL__STATUS__STATUS_OK || r->body_case != CARREL__RESPONSE__BODY_PATRON) {
        if (from_item && r->status == CARREL__STATUS__STATUS_NOT_FOUND) {
            /* Neither an item nor a card: say what the checkout said. */
            if (d->cli->json) {
                desk_json_failure(d, &(desk_failure_t){.status = "not_found",
                                                       .reason = "item_not_found",
                                                       .message = d->pend.item_message,
                                                       .overridable = -1,
                                                       .request = "checkout",
                                                       .scan = d->pend.scan});
            } else {
                desk_say(d, "NOT FOUND %s: %s (not a library card either)", d->pend.scan,
                         d->pend.item_message);
            }
        } else if (!from_item && r->status == CARREL__STATUS__STATUS_NOT_FOUND && !d->cli->json &&
                   !d->patron) {
            desk_say(d, "NOT FOUND %s: %s Scan the patron's library card first.", d->pend.scan,
                     desk_str(r->message));
        } else {
            desk_print_failure(d, "patron_get", d->pend.scan, r);
        }
        carrel__response__free_unpacked(r, NULL);
        return;
    }
    /* A patron: count their items out before printing the line. */
    d->lookup = r;
    const char *card = r->patron->card && r->patron->card[0] ? r->patron->card : d->pend.scan;
    char copy[DESK_FIELD_MAX];
    util_strlcpy(copy, card, sizeof(copy));
    desk_start(d, DESK_STEP_PATRON_COUNT, NULL, copy);
}

/* The patron's one line, now that the count of items out has come (or not). */
static void desk_answer_patron(desk_t *d, Carrel__Response *r)
{
    Carrel__Response *lookup = d->lookup;
    d->lookup = NULL;
    const Carrel__Patron *p = lookup->patron;
    const Carrel__Account *a = r && r->status == CARREL__STATUS__STATUS_OK &&
                                       r->body_case == CARREL__RESPONSE__BODY_ACCOUNT
                                   ? r->account
                                   : NULL;
    const char *card = p->card && p->card[0] ? p->card : d->pend.card;

    /* A new patron ends the previous one's visit; the same card again does not. */
    bool same = d->patron && strcmp(d->patron_card, card) == 0;
    if (!same) {
        desk_end_patron(d);
        d->patron = true;
        d->patron_checked_out = 0;
        d->refused = false;
        util_strlcpy(d->patron_card, card, sizeof(d->patron_card));
        output_short_name(d->patron_name, sizeof(d->patron_name), p->preferred_name, p->first_name,
                          p->last_name);
    }

    if (d->cli->json) {
        json_t j;
        json_init(&j);
        json_object_begin(&j);
        json_key(&j, "ok");
        json_bool(&j, true);
        json_key(&j, "patron");
        json_message(&j, &p->base);
        if (a) {
            json_key(&j, "loans_out");
            json_int(&j, a->loans_out);
            json_key(&j, "overdue");
            json_int(&j, a->overdue);
            json_key(&j, "balance_cents");
            json_int(&j, a->balance_cents);
        }
        json_object_end(&j);
        desk_emit_json(d, &j);
        json_free(&j);
    } else {
        struct buf line = BUF_INIT;
        int rc = 0;
        if (p->preferred_name && p->preferred_name[0])
            rc |= buf_printf(&line, "PATRON %s, %s (%s)", desk_str(p->last_name),
                             desk_str(p->first_name), p->preferred_name);
        else
            rc |=
                buf_printf(&line, "PATRON %s, %s", desk_str(p->last_name), desk_str(p->first_name));
        rc |= buf_printf(&line, " — card %s", card);
        if (a) {
            rc |= buf_printf(&line, " — %d out", a->loans_out);
            if (a->overdue > 0)
                rc |= buf_printf(&line, " (%d overdue)", a->overdue);
            if (a->balance_cents > 0) {
                char owes[32];
                output_money(owes, sizeof(owes), a->balance_cents);
                rc |= buf_printf(&line, " — owes %s", owes);
            }
        }
        if (p->expired)
            rc |= buf_printf(&line, " — EXPIRED %s", desk_str(p->expires_on));
        if (p->n_blocks > 0)
            rc |= buf_printf(&line, " — BLOCKED");
        if (p->desk_alert && p->desk_alert[0])
            rc |= buf_printf(&line, " — ALERT: %s", p->desk_alert);
        if (rc == 0 && buf_append(&line, "", 1) == 0)
            desk_emit(d, (const char *)line.data);
        buf_free(&line);
    }
    desk_update_prompt(d);
    carrel__response__free_unpacked(lookup, NULL);
}

static void desk_answer_checkout(desk_t *d, Carrel__Response *r)
{
    if (r->status == CARREL__STATUS__STATUS_NOT_FOUND && r->reason &&
        strcmp(r->reason, "item_not_found") == 0) {
        /* Perhaps the next patron's card: try it as one. */
        char scan[DESK_FIELD_MAX], message[300];
        util_strlcpy(scan, d->pend.scan, sizeof(scan));
        util_strlcpy(message, desk_str(r->message), sizeof(message));
        desk_start(d, DESK_STEP_ITEM_AS_CARD, scan, NULL);
        util_strlcpy(d->pend.item_message, message, sizeof(d->pend.item_message));
        return;
    }
    if (r->status != CARREL__STATUS__STATUS_OK || r->body_case != CARREL__RESPONSE__BODY_CHECKOUT) {
        bool overridable = r->has_overridable && r->overridable;
        if (overridable) {
            d->refused = true;
            util_strlcpy(d->refused_card, d->pend.card, sizeof(d->refused_card));
            util_strlcpy(d->refused_barcode, d->pend.scan, sizeof(d->refused_barcode));
        }
        desk_print_failure(d, "checkout", d->pend.scan, r);
        return;
    }
    const Carrel__CheckoutReply *c = r->checkout;
    if (d->refused && strcmp(d->refused_barcode, d->pend.scan) == 0)
        d->refused = false;
    if (d->patron && strcmp(d->patron_card, d->pend.card) == 0) {
        d->patron_checked_out++;
        if (c->patron_name && c->patron_name[0])
            util_strlcpy(d->patron_name, c->patron_name, sizeof(d->patron_name));
    }
    if (d->cli->json) {
        desk_json_body(d, "checkout", &c->base, true);
        return;
    }
    char title[OUTPUT_TITLE_COLUMNS * 4 + 8];
    output_cut(title, sizeof(title), c->title, OUTPUT_TITLE_COLUMNS);
    char overridden[256] = "";
    if (c->n_overridden > 0) {
        size_t used = (size_t)snprintf(overridden, sizeof(overridden), " (override recorded:");
        for (size_t i = 0; i < c->n_overridden && used < sizeof(overridden); i++)
            used += (size_t)snprintf(overridden + used, sizeof(overridden) - used, " %s",
                                     c->overridden[i]);
        if (used < sizeof(overridden) - 1)
            snprintf(overridden + used, sizeof(overridden) - used, ")");
    }
    desk_say(d, "OK %s %s — due %s%s", desk_str(c->barcode), title, desk_str(c->due_date),
             overridden);
}

/* "IN 3123... Title — ROUTE TO Park Street Branch at the Lyric", and a slip, indented. */
static void desk_answer_checkin(desk_t *d, Carrel__Response *r)
{
    if (r->status != CARREL__STATUS__STATUS_OK || r->body_case != CARREL__RESPONSE__BODY_CHECKIN) {
        desk_print_failure(d, "checkin", d->pend.scan, r);
        return;
    }
    const Carrel__CheckinReply *c = r->checkin;
    if (d->cli->json) {
        desk_json_body(d, "checkin", &c->base, true);
        return;
    }
    char title[OUTPUT_TITLE_COLUMNS * 4 + 8];
    output_cut(title, sizeof(title), c->title, OUTPUT_TITLE_COLUMNS);
    struct buf text = BUF_INIT;
    char said[1024];
    int rc = buf_printf(&text, "IN %s %s — %s", desk_str(c->barcode), title,
                        checkin_display_line(said, sizeof(said), c));
    if (c->slip && c->slip[0]) {
        /* The slip, indented under the line; no blank lines, no trailing newline. */
        const char *s = c->slip;
        while (*s && rc == 0) {
            const char *nl = strchr(s, '\n');
            size_t n = nl ? (size_t)(nl - s) : strlen(s);
            if (n > 0)
                rc |= buf_printf(&text, "\n    %.*s", (int)n, s);
            s += n + (nl ? 1 : 0);
        }
    }
    if (rc == 0 && buf_append(&text, "", 1) == 0)
        desk_emit(d, (const char *)text.data);
    buf_free(&text);
}

static void desk_answer_renew(desk_t *d, Carrel__Response *r)
{
    if (r->status != CARREL__STATUS__STATUS_OK || r->body_case != CARREL__RESPONSE__BODY_RENEW) {
        desk_print_failure(d, "renew", d->pend.card, r);
        return;
    }
    const Carrel__RenewReply *x = r->renew;
    if (d->cli->json) {
        desk_json_body(d, "renew", &x->base, true);
        return;
    }
    struct buf text = BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < x->n_results; i++) {
        const Carrel__RenewResult *e = x->results[i];
        char title[OUTPUT_TITLE_COLUMNS * 4 + 8];
        output_cut(title, sizeof(title), e->title, OUTPUT_TITLE_COLUMNS);
        if (e->renewed)
            rc |= buf_printf(&text, "RENEWED %s %s — due %s\n", desk_str(e->barcode), title,
                             desk_str(e->due_date));
        else
            rc |= buf_printf(&text, "NOT RENEWED %s %s: %s [%s]\n", desk_str(e->barcode), title,
                             desk_str(e->message), desk_str(e->reason));
    }
    if (x->n_results == 0)
        rc |= buf_printf(&text, "Nothing to renew: %s has no items out.", d->patron_name);
    else
        rc |= buf_printf(&text, "%d renewed, %d refused", x->renewed, x->refused);
    if (rc == 0 && buf_append(&text, "", 1) == 0)
        desk_emit(d, (const char *)text.data);
    buf_free(&text);
}

/* The patron's loans and balance, compact: one line, then one per loan. */
static void desk_answer_account(desk_t *d, Carrel__Response *r)
{
    if (r->status != CARREL__STATUS__STATUS_OK || r->body_case != CARREL__RESPONSE__BODY_ACCOUNT) {
        desk_print_failure(d, "account_get", d->pend.card, r);
        return;
    }
    const Carrel__Account *a = r->account;
    if (d->cli->json) {
        desk_json_body(d, "account", &a->base, true);
        return;
    }
    char bal[32];
    output_money(bal, sizeof(bal), a->balance_cents);
    struct buf text = BUF_INIT;
    int rc = buf_printf(&text, "ACCOUNT %s — card %s — %d out, %d overdue — balance %s",
                        desk_str(a->name), desk_str(a->card), a->loans_out, a->overdue, bal);
    for (size_t i = 0; i < a->n_loans; i++) {
        const Carrel__Loan *l = a->loans[i];
        char title[OUTPUT_TITLE_COLUMNS * 4 + 8];
        output_cut(title, sizeof(title), l->title, OUTPUT_TITLE_COLUMNS);
        rc |= buf_printf(&text, "\n    %s %s — due %s%s", desk_str(l->barcode), title,
                         desk_str(l->due_date), l->overdue ? " OVERDUE" : "");
    }
    if (rc == 0 && buf_append(&text, "", 1) == 0)
        desk_emit(d, (const char *)text.data);
    buf_free(&text);
}

static void desk_answer_ping(desk_t *d, Carrel__Response *r)
{
    if (r->status != CARREL__STATUS__STATUS_OK || r->body_case != CARREL__RESPONSE__BODY_PONG) {
        desk_print_failure(d, "ping", NULL, r);
        return;
    }
    if (d->cli->json)
        desk_json_body(d, "pong", &r->pong->base, true);
    else
        desk_say(d, "PONG in %llu ms", (unsigned long long)(desk_now_ms() - d->pend.sent_ms));
}

/* ---- inquiry tallies (:q) ---- */

static const char *const desk_channels[] = {"in_person", "phone", "email", "chat", "text"};

/* The inquiry kinds as :q? shows them: numbered, code and name. */
static void desk_print_kinds(desk_t *d)
{
    const Carrel__ServiceCodeListReply *k = d->kinds->service_codes;
    if (d->cli->json) {
        desk_json_body(d, "service_codes", &k->base, true);
        return;
    }
    struct buf text = BUF_INIT;
    int rc = buf_printf(&text, "Inquiry kinds (:q KIND READ, KIND by code, prefix or number):");
    for (size_t i = 0; i < k->n_codes; i++)
        rc |= buf_printf(&text, "\n  %2zu  %-18s %s", i + 1, desk_str(k->codes[i]->code),
                         desk_str(k->codes[i]->name));
    if (rc == 0 && buf_append(&text, "", 1) == 0)
        desk_emit(d, (const char *)text.data);
    buf_free(&text);
}

/* A kind typed at :q: its code, a unique prefix of one, or its number in :q?. NULL if none. */
static const char *desk_kind_find(desk_t *d, const char *word)
{
    const Carrel__ServiceCodeListReply *k = d->kinds->service_codes;
    char *end;
    long n = strtol(word, &end, 10);
    if (*end == '\0' && end != word)
        return n >= 1 && (size_t)n <= k->n_codes ? k->codes[n - 1]->code : NULL;
    const char *found = NULL;
    size_t len = strlen(word);
    for (size_t i = 0; i < k->n_codes; i++) {
        const char *code = desk_str(k->codes[i]->code);
        if (strcmp(code, word) == 0)
            return code;
        if (strncmp(code, word, len) == 0) {
            if (found)
                return NULL; /* two kinds start so: not unique */
            found = code;
        }
    }
    return found;
}

static const char *desk_channel_find(const char *word)
{
    if (strcmp(word, "in-person") == 0 || strcmp(word, "person") == 0)
        return "in_person";
    for (size_t i = 0; i < sizeof(desk_channels) / sizeof(desk_channels[0]); i++)
        if (strcmp(word, desk_channels[i]) == 0)
            return desk_channels[i];
    return NULL;
}

/*
 * "@HH:MM" as the bare "HH:MM" (out: 6 bytes or more); false if not a time.
 * The server takes it as today in the library's time zone (service_at), so a
 * workstation's own clock and zone never pick the day.
 */
static bool desk_tally_at(const char *word, char *out)
{
    int h, m;
    char tail;
    if (strlen(word) != 6 || word[3] != ':' || sscanf(word + 1, "%2d:%2d%c", &h, &m, &tail) != 2 ||
        h < 0 || h > 23 || m < 0 || m > 59)
        return false;
    snprintf(out, 6, "%02d:%02d", h, m);
    return true;
}

/*
 * :q [KIND] [READ] [CHANNEL] [@HH:MM], the kinds known: KIND is the first
 * word that is not a channel or a time (a number is a kind's number), READ a
 * later digit 1-6. What is left out is the last tally's (the channel: in
 * person); the time is now unless given. Starts the tally, or says why not.
 */
static void desk_tally(desk_t *d, char *args)
{
    const char *kind = NULL, *channel = NULL;
    int read = 0;
    char at[20] = "";
    char *save = NULL;
    for (char *w = strtok_r(args, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (w[0] == '@') {
            if (!desk_tally_at(w, at)) {
                desk_notice(d, "usage_error", "%s is not a time today: @HH:MM (e.g. @14:30).", w);
                return;
            }
        } else if (desk_channel_find(w)) {
            channel = desk_channel_find(w);
        } else if (kind && strlen(w) == 1 && w[0] >= '1' && w[0] <= '6') {
            read = w[0] - '0';
        } else if (kind == NULL) {
            if ((kind = desk_kind_find(d, w)) == NULL) {
                desk_notice(d, "usage_error",
                            "No inquiry kind is %s (or more than one starts so); :q? lists them.",
                            w);
                return;
            }
        } else {
            desk_notice(d, "usage_error",
                        "Usage: :q KIND READ [CHANNEL] [@HH:MM] (READ is 1 to 6; %s is extra).", w);
            return;
        }
    }
    kind = kind ? kind : (d->last_kind[0] ? d->last_kind : NULL);
    read = read ? read : d->last_read;
    channel = channel ? channel : (d->last_channel[0] ? d->last_channel : "in_person");
    if (kind == NULL || read == 0) {
        desk_notice(d, "usage_error",
                    "Usage: :q KIND READ [CHANNEL] [@HH:MM], e.g. :q reference 2 (:q? lists the "
                    "kinds; then :q alone repeats the last tally).");
        return;
    }
    char copy[DESK_FIELD_MAX];
    util_strlcpy(copy, kind, sizeof(copy)); /* kind may be last_kind itself */
    util_strlcpy(d->last_kind, copy, sizeof(d->last_kind));
    d->last_read = read;
    util_strlcpy(d->last_channel, channel, sizeof(d->last_channel));
    desk_start(d, DESK_STEP_TALLY, "tally", NULL);
    util_strlcpy(d->pend.kind, copy, sizeof(d->pend.kind));
    d->pend.read_level = read;
    util_strlcpy(d->pend.channel, channel, sizeof(d->pend.channel));
    util_strlcpy(d->pend.at, at, sizeof(d->pend.at));
}

/* :q and :q? need the kinds: asked for once, then the waiting line goes on. */
static void desk_tally_command(desk_t *d, const char *word, char *arg)
{
    bool list = strcmp(word, "q?") == 0;
    if (d->kinds == NULL) {
        d->tally_waiting = true;
        snprintf(d->tally_wait, sizeof(d->tally_wait), "%s", list ? "?" : arg);
        desk_start(d, DESK_STEP_KINDS, NULL, NULL);
    } else if (list) {
        desk_print_kinds(d);
    } else {
        desk_tally(d, arg);
    }
}

/* The kinds have come: kept for the session; the waiting :q or :q? goes on. Keeps or frees r. */
static void desk_answer_kinds(desk_t *d, Carrel__Response *r)
{
    bool waiting = d->tally_waiting;
    d->tally_waiting = false;
    if (r->status != CARREL__STATUS__STATUS_OK ||
        r->body_case != CARREL__RESPONSE__BODY_SERVICE_CODES) {
        desk_print_failure(d, "service_code_list", NULL, r);
        carrel__response__free_unpacked(r, NULL);
        return;
    }
    d->kinds = r;
    if (!waiting)
        return;
    if (strcmp(d->tally_wait, "?") == 0)
        desk_print_kinds(d);
    else
        desk_tally(d, d->tally_wait);
}

/* "TALLY reference READ 2 in person — 14 today at DWN, 5 at this desk" */
static void desk_answer_tally(desk_t *d, Carrel__Response *r)
{
    if (r->status != CARREL__STATUS__STATUS_OK ||
        r->body_case != CARREL__RESPONSE__BODY_INQUIRY_ADD || r->inquiry_add->inquiry == NULL) {
        desk_print_failure(d, "inquiry_add", d->pend.kind, r);
        return;
    }
    if (d->cli->json) {
        desk_json_body(d, "inquiry_add", &r->inquiry_add->base, true);
        return;
    }
    const Carrel__InquiryAddReply *a = r->inquiry_add;
    const Carrel__Inquiry *q = a->inquiry;
    const char *channel = desk_str(q->channel);
    char desk[80] = "";
    if (q->desk_code && q->desk_code[0])
        snprintf(desk, sizeof(desk), ", %lld at %s", (long long)a->today_desk, q->desk_code);
    const char *at = q->at && strlen(q->at) == 16 ? q->at + 11 : desk_str(q->at);
    desk_say(d, "TALLY %s READ %d %s at %s — %lld today at %s%s", desk_str(q->kind), q->read_level,
             strcmp(channel, "in_person") == 0 ? "in person" : channel, at,
             (long long)a->today_branch, desk_str(q->branch_code), desk);
}

/*
 * A change answered UNAVAILABLE (or TOO_MANY_REQUESTS) may have been made
 * (the database can commit and then drop the connection) or not: keep it in
 * flight and send it again after a pause with the same request key, which
 * the server applies at most once, as after a lost connection. Returns true
 * when it will be sent again; false after the last attempt, so that the
 * answer is printed as a failure.
 */
static bool desk_resend_later(desk_t *d, const Carrel__Response *r)
{
    desk_pending_t *p = &d->pend;
    if (!desk_step_is_change(p->step) || (r->status != CARREL__STATUS__STATUS_UNAVAILABLE &&
                                          r->status != CARREL__STATUS__STATUS_TOO_MANY_REQUESTS))
        return false;
    if (++p->sends >= DESK_RESEND_ATTEMPTS) {
        desk_notice(d, "unavailable",
                    "The server stayed unavailable for %d tries. The last scan (%s) may or "
                    "may not have been recorded: scan it again when the server is back.",
                    p->sends, p->scan[0] ? p->scan : p->card);
        return false;
    }
    uint64_t pause = (uint64_t)DESK_RESEND_FIRST_MS << (p->sends - 1);
    p->id = 0;
    p->resend_ms = desk_now_ms() + pause;
    desk_notice(d, "resending",
                "%s Sending the last scan (%s) again in %llu s with the same request key, so "
                "it cannot be recorded twice.",
                r->message && r->message[0] ? r->message : "The server is unavailable.",
                p->scan[0] ? p->scan : p->card, (unsigned long long)(pause / 1000));
    return true;
}

/*
 * The answer to the request in flight has come: print it. The request's
 * fields stay readable meanwhile; an answer may start the next step (which
 * replaces them). Frees `r`.
 */
static void desk_answer(desk_t *d, Carrel__Response *r)
{
    if (desk_resend_later(d, r)) {
        carrel__response__free_unpacked(r, NULL);
        return;
    }
    desk_step_t step = d->pend.step;
    d->pend.step = DESK_STEP_NONE;
    switch (step) {
    case DESK_STEP_KINDS:
        desk_answer_kinds(d, r); /* keeps or frees r */
        return;
    case DESK_STEP_TALLY:
        desk_answer_tally(d, r);
        break;
    case DESK_STEP_CARD:
    case DESK_STEP_ITEM_AS_CARD:
        desk_answer_card(d, r, step == DESK_STEP_ITEM_AS_CARD); /* keeps or frees r */
        return;
    case DESK_STEP_PATRON_COUNT:
        desk_answer_patron(d, r);
        break;
    case DESK_STEP_CHECKOUT:
        desk_answer_checkout(d, r); /* an unknown item: tried as a card next */
        break;
    case DESK_STEP_CHECKIN:
        desk_answer_checkin(d, r);
        break;
    case DESK_STEP_RENEW:
        desk_answer_renew(d, r);
        break;
    case DESK_STEP_ACCOUNT:
        desk_answer_account(d, r);
        break;
    case DESK_STEP_PING:
        desk_answer_ping(d, r);
        break;
    case DESK_STEP_KEEPALIVE:
    case DESK_STEP_NONE:
        break;
    }
    carrel__response__free_unpacked(r, NULL);
}

/* ---- lines: scans and commands ---- */

static const char *const desk_help_lines[] = {
    "Scan a library card, then the items to lend; an empty line ends the patron.",
    ":checkout          lend items (the default mode)",
    ":checkin           every scan is a return",
    ":patron CARD       serve this patron (same as scanning the card)",
    ":override REASON   lend the last refused item anyway, with a reason (librarians)",
    ":renew             renew all the current patron's items",
    ":account           the current patron's items and balance",
    ":done              finish with this patron (same as an empty line)",
    ":ping              check the connection (the server answers with a test event)",
    ":q KIND READ [CHANNEL] [@HH:MM]",
    "                   tally a question answered: KIND by code, prefix or number (:q?),",
    "                   READ 1-6, CHANNEL in_person (default), phone, email, chat or text;",
    "                   @HH:MM backdates it within the day; :q alone repeats the last tally",
    ":q?                the inquiry kinds and their numbers",
    ":help              this list",
    ":quit              leave (also :exit, Ctrl-D)",
};

static void desk_help(desk_t *d)
{
    size_t n = sizeof(desk_help_lines) / sizeof(desk_help_lines[0]);
    if (d->cli->json) {
        json_t j;
        json_init(&j);
        json_object_begin(&j);
        json_key(&j, "help");
        json_array_begin(&j);
        for (size_t i = 0; i < n; i++)
            json_string(&j, desk_help_lines[i]);
        json_array_end(&j);
        json_object_end(&j);
        desk_emit_json(d, &j);
        json_free(&j);
        return;
    }
    struct buf text = BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        rc |= buf_printf(&text, "%s%s", i ? "\n  " : "", desk_help_lines[i]);
    if (rc == 0 && buf_append(&text, "", 1) == 0)
        desk_emit(d, (const char *)text.data);
    buf_free(&text);
}

static bool desk_need_patron(desk_t *d)
{
    if (d->mode == DESK_MODE_CHECKOUT && d->patron)
        return true;
    desk_notice(d, "usage_error", "No patron: scan a library card first%s.",
                d->mode == DESK_MODE_CHECKIN ? " (in checkout mode, :checkout)" : "");
    return false;
}

/* Offline mode (below) answers scans and some commands itself. */
static bool desk_offline_command(desk_t *d, const char *word, char *arg);
static void desk_offline_scan(desk_t *d, const char *s);

static void desk_command(desk_t *d, char *line)
{
    char *word = line + 1;
    char *arg = word + strcspn(word, " \t");
    if (*arg) {
        *arg++ = '\0';
        arg += strspn(arg, " \t");
    }
    if (d->offline && desk_offline_command(d, word, arg))
        return;
    if (strcasecmp(word, "quit") == 0 || strcasecmp(word, "exit") == 0) {
        d->quit = true;
    } else if (strcmp(word, "q") == 0 || strcmp(word, "q?") == 0) {
        desk_tally_command(d, word, arg);
    } else if (strcasecmp(word, "help") == 0 || strcmp(word, "?") == 0) {
        desk_help(d);
    } else if (strcasecmp(word, "checkout") == 0) {
        desk_set_mode(d, DESK_MODE_CHECKOUT);
    } else if (strcasecmp(word, "checkin") == 0) {
        desk_set_mode(d, DESK_MODE_CHECKIN);
    } else if (strcasecmp(word, "done") == 0) {
        desk_end_patron(d);
    } else if (strcasecmp(word, "patron") == 0) {
        if (!*arg || strlen(arg) >= DESK_FIELD_MAX) {
            desk_notice(d, "usage_error", "Usage: :patron CARD");
            return;
        }
        if (d->mode != DESK_MODE_CHECKOUT)
            desk_set_mode(d, DESK_MODE_CHECKOUT);
        /* The answer ends the current patron's visit if this is someone else. */
        desk_start(d, DESK_STEP_CARD, arg, NULL);
    } else if (strcasecmp(word, "override") == 0) {
        if (!*arg) {
            desk_notice(d, "usage_error",
                        "Usage: :override REASON (why the rule may be set "
                        "aside; it is recorded with the loan)");
            return;
        }
        if (strlen(arg) >= DESK_REASON_MAX) {
            desk_notice(d, "usage_error", "The reason is too long (at most %d bytes).",
                        DESK_REASON_MAX - 1);
            return;
        }
        if (!d->refused || d->mode != DESK_MODE_CHECKOUT) {
            desk_notice(d, "usage_error",
                        "Nothing to override: no checkout was refused for "
                        "this patron.");
            return;
        }
        char barcode[DESK_FIELD_MAX], card[DESK_FIELD_MAX];
        util_strlcpy(barcode, d->refused_barcode, sizeof(barcode));
        util_strlcpy(card, d->refused_card, sizeof(card));
        desk_start(d, DESK_STEP_CHECKOUT, barcode, card);
        d->pend.override = true;
        util_strlcpy(d->pend.override_reason, arg, sizeof(d->pend.override_reason));
    } else if (strcasecmp(word, "renew") == 0) {
        if (desk_need_patron(d))
            desk_start(d, DESK_STEP_RENEW, NULL, d->patron_card);
    } else if (strcasecmp(word, "account") == 0) {
        if (desk_need_patron(d))
            desk_start(d, DESK_STEP_ACCOUNT, NULL, d->patron_card);
    } else if (strcasecmp(word, "ping") == 0) {
        desk_start(d, DESK_STEP_PING, NULL, NULL);
    } else {
        desk_notice(d, "usage_error", "Unknown command :%s — type :help for the list.", word);
    }
}

/* Answer one input line: a command, an empty line, or a scan. */
static void desk_line(desk_t *d, char *line)
{
    /* Scanners may end lines with CR LF, and people add spaces. */
    char *s = line + strspn(line, " \t\r");
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    if (n == 0) {
        desk_end_patron(d);
        return;
    }
    if (s[0] == ':') {
        desk_command(d, s);
        return;
    }
    if (n >= DESK_FIELD_MAX) {
        desk_notice(d, "usage_error", "That scan is too long to be a barcode (%zu bytes).", n);
        return;
    }
    if (d->offline)
        desk_offline_scan(d, s);
    else if (d->mode == DESK_MODE_CHECKIN)
        desk_start(d, DESK_STEP_CHECKIN, s, NULL);
    else if (d->patron)
        desk_start(d, DESK_STEP_CHECKOUT, s, d->patron_card);
    else
        desk_start(d, DESK_STEP_CARD, s, NULL);
}

/*
 * SIGINT, SIGTERM, SIGHUP (from the listening loop). Ctrl-C at the prompt
 * drops the line being typed, as in a shell; otherwise the desk finishes.
 */
static void desk_signal(listen_t *l, int signum)
{
    desk_t *d = l->data;
    if (signum == SIGINT && desk_term_interrupt(d))
        return;
    d->stop = true;
}

/* Events pushed by the server (Response id 0): printed as they come. */
static void desk_on_event(const Carrel__Event *ev, void *arg)
{
    desk_t *d = arg;
    if (!listen_seen_new(&d->events_seen, ev->has_id ? ev->id : 0,
                         ev->has_time_ms ? ev->time_ms : 0))
        return; /* replayed after a reconnect, and shown already */
    if (d->cli->json)
        desk_json_body(d, "event", &ev->base, false);
    else
        desk_say(d, "[event] %s", ev->text && ev->text[0] ? ev->text : desk_str(ev->kind));
}

/* ---- handles on the connection's loop ---- */

static void desk_handles_start(desk_t *d)
{
    static const int signals[] = {SIGINT, SIGTERM, SIGHUP};
    client_t *cl = &d->cli->conn;
    cl->on_event = desk_on_event;
    cl->event_arg = d;
    d->listen.on_signal = desk_signal;
    d->listen.data = d;
    listen_start(&d->listen, signals, 3);
    desk_input_watch(d, client_loop(cl));
    d->handles_started = true;
}

static void desk_handles_stop(desk_t *d)
{
    if (!d->handles_started)
        return;
    d->handles_started = false;
    listen_stop(&d->listen);
    desk_input_unwatch(d);
    d->cli->conn.on_event = NULL;
}

/* ---- connection ---- */

static void desk_header(desk_t *d)
{
    const Carrel__LoginReply *l = d->cli->login;
    const Carrel__Staff *s = l ? l->staff : NULL;
    const Carrel__Workstation *w = l ? l->workstation : NULL;
    const Carrel__Branch *b = l ? l->branch : NULL;
    const char *mode = d->mode == DESK_MODE_CHECKIN ? "checkin" : "checkout";
    if (d->cli->json) {
        json_t j;
        json_init(&j);
        json_object_begin(&j);
        json_key(&j, "desk");
        json_object_begin(&j);
        json_key(&j, "staff");
        json_string(&j, s ? desk_str(s->username) : d->clerk);
        json_key(&j, "name");
        json_string(&j, s ? desk_str(s->display_name) : "");
        json_key(&j, "role");
        json_string(&j, s ? json_enum_name(&carrel__role__descriptor, s->role) : "");
        json_key(&j, "workstation");
        json_string(&j, w ? desk_str(w->name) : desk_str(d->cli->profile.workstation));
        json_key(&j, "branch");
        json_string(&j, b ? desk_str(b->code) : "");
        json_key(&j, "branch_name");
        json_string(&j, b ? desk_str(b->name) : "");
        json_key(&j, "mode");
        json_string(&j, mode);
        json_key(&j, "status");
        json_string(&j, d->offline ? "offline" : "online");
        json_object_end(&j);
        json_object_end(&j);
        desk_emit_json(d, &j);
        json_free(&j);
        return;
    }
    if (d->offline) {
        desk_say(d, "Carrel desk — OFFLINE — %s at %s\nMode: %s. %s", d->clerk,
                 desk_str(d->cli->profile.workstation), mode,
                 d->mode == DESK_MODE_CHECKIN ? "Scan items to return them, or type :help"
                                              : "Scan a library card to start, or type :help");
        return;
    }
    desk_say(d,
             "Carrel desk — %s (%s, %s) at %s, %s (%s)\n"
             "Mode: %s. %s",
             s ? desk_str(s->display_name) : "?", s ? desk_str(s->username) : "?",
             s ? json_enum_name(&carrel__role__descriptor, s->role) : "?",
             w ? desk_str(w->name) : "?", b ? desk_str(b->name) : "?", b ? desk_str(b->code) : "?",
             mode,
             d->mode == DESK_MODE_CHECKIN ? "Scan items to return them, or type :help"
                                          : "Scan a library card to start, or type :help");
}

/* ---- offline mode ---- */

/*
 * While the daemon is unreachable the desk answers every scan itself: a
 * card is checked against the cached blocked list, an item is written to
 * the journal (one write and fsync) before its line is printed, and the
 * daemon is tried again with a growing pause. The handles run on a loop
 * with no connection (client_idle). Back online, the journal is uploaded
 * (offline_upload) before the next line is taken.
 */

/* The cache as last saved (and its offset), replacing the one held. */
static void desk_cache_load(desk_t *d)
{
    if (d->cache_path == NULL)
        return;
    char err[300];
    int64_t offset = 0;
    Carrel__OfflineCache *c = offline_cache_load(d->cache_path, &offset, err, sizeof(err));
    if (c == NULL) {
        if (errno != ENOENT)
            desk_notice(d, "offline_cache", "The offline cache is unreadable: %s", err);
        return;
    }
    if (d->cache)
        carrel__offline_cache__free_unpacked(d->cache, NULL);
    d->cache = c;
    d->offset_ms = offset;
}

/* Ask for a fresh cache beside the request in flight (at each new connection, then every 15
 * minutes); its answer is taken by desk_cache_answer. */
static void desk_cache_refresh(desk_t *d)
{
    if (d->offline_dir == NULL || d->cache_id != 0 || desk_now_ms() < d->cache_next_ms)
        return;
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__OfflineCacheGet get = CARREL__OFFLINE_CACHE_GET__INIT;
    req.body_case = CARREL__REQUEST__BODY_OFFLINE_CACHE_GET;
    req.offline_cache_get = &get;
    d->cache_sent_ms = util_now_ms();
    d->cache_id = client_send(&d->cli->conn, &req);
    d->cache_next_ms = desk_now_ms() + OFFLINE_CACHE_REFRESH_MS;
}

static void desk_cache_answer(desk_t *d)
{
    Carrel__Response *r = NULL;
    if (d->cache_id == 0 || client_poll(&d->cli->conn, d->cache_id, &r) != 1)
        return;
    d->cache_id = 0;
    int64_t received = util_now_ms();
    if (r->status != CARREL__STATUS__STATUS_OK ||
        r->body_case != CARREL__RESPONSE__BODY_OFFLINE_CACHE) {
        desk_notice(d, "offline_unavailable",
                    "No offline cache from the server (%s): this desk cannot work offline "
                    "with a fresh one.",
                    r->message && r->message[0] ? r->message : status_name(r->status));
        carrel__response__free_unpacked(r, NULL);
        return;
    }
    int64_t offset = offline_offset(r->offline_cache->server_time_ms, d->cache_sent_ms, received);
    char err[300];
    if (offline_cache_save(d->cache_path, r->offline_cache, offset, err, sizeof(err)) != 0)
        desk_notice(d, "offline_cache", "The offline cache could not be saved: %s", err);
    carrel__response__free_unpacked(r, NULL);
    desk_cache_load(d);
}

/* {"ok": true, "offline": {...}} or a line, for a scan taken offline. */
static void desk_offline_said(desk_t *d, const journal_entry_t *e)
{
    if (d->cli->json) {
        json_t j;
        desk_json_nested_begin(&j, true, "offline");
        json_key(&j, "op");
        json_string(&j, e->op);
        if (e->card[0]) {
            json_key(&j, "card");
            json_string(&j, e->card);
        }
        json_key(&j, "barcode");
        json_string(&j, e->barcode);
        if (e->due[0]) {
            json_key(&j, "due");
            json_string(&j, e->due);
        }
        json_key(&j, "key");
        json_string(&j, e->key);
        json_key(&j, "seq");
        json_int(&j, e->seq);
        desk_json_nested_done(d, &j);
        return;
    }
    char due[40] = "";
    if (e->due[0])
        snprintf(due, sizeof(due), " — due %s", e->due);
    const char *tag = strcmp(e->op, "checkin") == 0 ? "IN"
                      : strcmp(e->op, "renew") == 0 ? "RENEWED"
                                                    : "OK";
    desk_say(d, "OFFLINE %s %s%s (journaled; uploaded when the server is back)", tag, e->barcode,
             due);
}

/*
 * A scan longer than any card or barcode the server applies (a mis-scan, a
 * QR code) is refused now, while the clerk is there to scan again: journaled,
 * it could only end in the report. True when refused.
 */
static bool desk_offline_too_long(desk_t *d, const char *scan)
{
    size_t n = strlen(scan);
    if (n <= OFFLINE_SCAN_MAX)
        return false;
    desk_notice(d, "usage_error",
                "NOT RECORDED %.20s...: a scan of %zu characters is longer than any card or "
                "barcode (%d at most); scan it again or key it in.",
                scan, n, OFFLINE_SCAN_MAX);
    return true;
}

/*
 * Journal one scan (op checkout, checkin or renew). wall_ms: when it was
 * scanned on this workstation's clock (0: now). Only once it is on disk is
 * it answered; a failed write refuses it. Returns true when journaled.
 */
static bool desk_offline_journal(desk_t *d, const char *op, const char *card, const char *barcode,
                                 int64_t wall_ms, bool quiet)
{
    journal_entry_t e;
    memset(&e, 0, sizeof(e));
    char err[300];
    if (desk_offline_too_long(d, card) || desk_offline_too_long(d, barcode))
        return false;
    if (!d->journal_ready) {
        desk_notice(d, "local_error", "NOT RECORDED %s: there is no offline journal.", barcode);
        return false;
    }
    if (util_uuid7(e.key) != 0) {
        desk_notice(d, "local_error", "NOT RECORDED %s: no randomness for a key.", barcode);
        return false;
    }
    util_strlcpy(e.op, op, sizeof(e.op));
    util_strlcpy(e.card, card, sizeof(e.card));
    util_strlcpy(e.barcode, barcode, sizeof(e.barcode));
    e.ws_ms = wall_ms ? wall_ms : util_now_ms();
    e.offset_ms = d->offset_ms;
    e.at_ms = e.ws_ms + e.offset_ms;
    if (strcmp(op, "checkin") != 0)
        (void)offline_due_date(d->cache, e.at_ms, e.due); /* none: the rule's, at upload */
    util_strlcpy(e.clerk, d->clerk, sizeof(e.clerk));
    if (journal_append(&d->journal, &e, err, sizeof(err)) != 0) {
        desk_notice(d, "local_error",
                    "NOT RECORDED %s: %s. Keep the item aside and write the scan down.", barcode,
                    err);
        return false;
    }
    if (strcmp(op, "checkout") == 0 && d->patron && strcmp(d->patron_card, card) == 0)
        d->patron_checked_out++;
    if (!quiet)
        desk_offline_said(d, &e);
    return true;
}

/* Offline a card starts a patron's visit, unless it is on the blocked list. */
static void desk_offline_card(desk_t *d, const char *card)
{
    if (desk_offline_too_long(d, card))
        return;
    const char *blocked = offline_blocked(d->cache, card);
    if (blocked) {
        desk_end_patron(d);
        if (d->cli->json) {
            desk_json_failure(
                d,
                &(desk_failure_t){
                    .status = "refused",
                    .reason = "offline_blocked",
                    .blocked = blocked,
                    .message = "This card is on the blocked list: nothing is lent to it offline.",
                    .overridable = -1,
                    .request = "patron_get",
                    .scan = card});
        } else {
            desk_say(d,
                     "REFUSED %s: this card is on the blocked list (%s): nothing is lent to it "
                     "offline. [offline_blocked]",
                     card, blocked);
        }
        return;
    }
    if (!(d->patron && strcmp(d->patron_card, card) == 0)) {
        desk_end_patron(d);
        d->patron = true;
        d->patron_checked_out = 0;
        d->refused = false;
        util_strlcpy(d->patron_card, card, sizeof(d->patron_card));
        snprintf(d->patron_name, sizeof(d->patron_name), "card %s", card);
    }
    if (d->cli->json) {
        json_t j;
        desk_json_nested_begin(&j, true, "offline");
        json_key(&j, "patron");
        json_string(&j, card);
        desk_json_nested_done(d, &j);
    } else {
        desk_say(d, "OFFLINE PATRON card %s — not on the blocked list of %s; scan the items", card,
                 d->cache && d->cache->generated_at ? d->cache->generated_at : "the cache");
    }
    desk_update_prompt(d);
}

/*
 * Offline a scan cannot be looked up: a barcode of 14 digits starting with
 * 2 is taken as a library card (the usual numbering: 2 patrons, 3 items),
 * so that the next patron's card starts their visit as it does online.
 */
static bool desk_offline_looks_like_card(const char *scan)
{
    return strlen(scan) == 14 && scan[0] == '2' && strspn(scan, "0123456789") == 14;
}

static void desk_offline_scan(desk_t *d, const char *s)
{
    if (d->mode == DESK_MODE_CHECKIN)
        (void)desk_offline_journal(d, "checkin", "", s, 0, false);
    else if (desk_offline_looks_like_card(s) || !d->patron)
        desk_offline_card(d, s);
    else
        (void)desk_offline_journal(d, "checkout", d->patron_card, s, 0, false);
}

/* Commands that need the server, offline: said so. Returns true when `word` was one of them. */
static bool desk_offline_command(desk_t *d, const char *word, char *arg)
{
    if (strcasecmp(word, "patron") == 0) {
        if (!*arg || strlen(arg) >= DESK_FIELD_MAX) {
            desk_notice(d, "usage_error", "Usage: :patron CARD");
            return true;
        }
        if (d->mode != DESK_MODE_CHECKOUT)
            desk_set_mode(d, DESK_MODE_CHECKOUT);
        desk_offline_card(d, arg);
        return true;
    }
    if (strcasecmp(word, "renew") == 0) {
        if (!*arg || strlen(arg) >= DESK_FIELD_MAX)
            desk_notice(d, "usage_error",
                        "Offline, renew one item at a time: :renew BARCODE (the patron's list "
                        "is on the server).");
        else if (desk_need_patron(d))
            (void)desk_offline_journal(d, "renew", d->patron_card, arg, 0, false);
        return true;
    }
    static const char *const online_only[] = {"override", "account", "ping", "q", "q?"};
    for (size_t i = 0; i < sizeof(online_only) / sizeof(online_only[0]); i++) {
        if (strcasecmp(word, online_only[i]) == 0) {
            desk_notice(d, "offline",
                        "OFFLINE: :%s needs the server; try it again once the desk is back online.",
                        word);
            return true;
        }
    }
    return false;
}

/* The request in flight when the connection dropped: journaled with a key of its own (the
 * server may have applied it; the replay then says so), or said to be lost. */
static void desk_offline_take_pending(desk_t *d)
{
    desk_pending_t p = d->pend;
    memset(&d->pend, 0, sizeof(d->pend));
    switch (p.step) {
    case DESK_STEP_CHECKOUT:
    case DESK_STEP_CHECKIN:
        if (desk_offline_journal(d, p.step == DESK_STEP_CHECKIN ? "checkin" : "checkout", p.card,
                                 p.scan, p.wall_ms, false))
            desk_notice(d, "offline",
                        "The scan in flight (%s) is journaled: if the server recorded it "
                        "already, the upload says so and records nothing twice.",
                        p.scan);
        break;
    case DESK_STEP_CARD:
    case DESK_STEP_ITEM_AS_CARD:
        desk_offline_card(d, p.scan);
        break;
    case DESK_STEP_PATRON_COUNT:
        if (d->lookup == NULL)
            break;
        util_strlcpy(d->pend.card, p.card, sizeof(d->pend.card));
        desk_answer_patron(d, NULL); /* the patron found, without the count */
        memset(&d->pend, 0, sizeof(d->pend));
        break;
    case DESK_STEP_RENEW:
        desk_notice(d, "offline",
                    "The renewal of everything %s has may not have been made: offline, renew "
                    "item by item (:renew BARCODE).",
                    p.card);
        break;
    case DESK_STEP_TALLY:
        desk_notice(d, "offline", "The tally was not recorded: :q again when back online.");
        break;
    default:
        break;
    }
}

/* Handles on a loop without a connection; false when even that failed (then we leave). */
static bool desk_idle_start(desk_t *d)
{
    if (client_idle(&d->cli->conn) != 0) {
        desk_notice(d, "local_error", "%s", d->cli->conn.error);
        return false;
    }
    desk_handles_start(d);
    return true;
}

/* Go offline (the connection is closed and the handles stopped). */
static int desk_go_offline(desk_t *d, const char *why)
{
    if (!desk_idle_start(d))
        return EXIT_LOCAL;
    d->offline = true;
    d->cache_id = 0;
    d->probe_delay_ms = DESK_PROBE_FIRST_MS;
    d->probe_ms = desk_now_ms() + d->probe_delay_ms;
    desk_notice(d, "offline",
                "OFFLINE: the server cannot be reached (%s). Scans go to the journal %s and are "
                "uploaded when it is back; cards on the blocked list of %s are refused.",
                why, d->journal.path ? d->journal.path : "(none)",
                d->cache && d->cache->generated_at ? d->cache->generated_at : "the cache");
    desk_update_prompt(d);
    desk_offline_take_pending(d);
    return EXIT_OK;
}

static void desk_upload_entry(void *arg, const journal_entry_t *e,
                              const Carrel__OfflineReplayReply *r)
{
    desk_t *d = arg;
    const char *outcome = r->outcome ? r->outcome : "applied";
    if (strcmp(outcome, "warning") != 0 && strcmp(outcome, "skipped") != 0)
        return; /* applied: as the clerk was told */
    if (d->cli->json) {
        json_t j;
        desk_json_nested_begin(&j, false, "offline_replay");
        json_key(&j, "op");
        json_string(&j, e->op);
        json_key(&j, "barcode");
        json_string(&j, e->barcode);
        json_key(&j, "key");
        json_string(&j, e->key);
        json_key(&j, "reply");
        json_message(&j, &r->base);
        desk_json_nested_done(d, &j);
        return;
    }
    desk_say(d, "%s %s %s: %s [%s]", strcmp(outcome, "warning") == 0 ? "WARNING" : "SKIPPED", e->op,
             e->barcode, desk_str(r->message), desk_str(r->reason));
}

/*
 * Upload the journal on the connection now open and logged in, and say how
 * it went: "UPLOADED 5 offline scans: 3 applied, 1 warning, 1 skipped — see
 * carrel offline exceptions", with --json {"offline_upload": {...}}.
 */
static void desk_upload(desk_t *d)
{
    if (!d->journal_ready || journal_pending(&d->journal) == 0)
        return;
    desk_notice(d, "uploading", "Uploading %zu offline scans...", journal_pending(&d->journal));
    offline_summary_t s;
    int rc = offline_upload(d->cli, &d->journal, &s, desk_upload_entry, d);
    int done = s.applied + s.warnings + s.skipped;
    if (d->cli->json) {
        json_t j;
        desk_json_nested_begin(&j, false, "offline_upload");
        json_key(&j, "applied");
        json_int(&j, s.applied);
        json_key(&j, "warnings");
        json_int(&j, s.warnings);
        json_key(&j, "skipped");
        json_int(&j, s.skipped);
        json_key(&j, "left");
        json_int(&j, (int64_t)journal_pending(&d->journal));
        json_key(&j, "complete");
        json_bool(&j, rc == 0 && !s.stopped);
        if (s.why[0]) {
            json_key(&j, "message");
            json_string(&j, s.why);
        }
        desk_json_nested_done(d, &j);
    } else {
        desk_say(d, "UPLOADED %d offline scans: %d applied, %d warnings, %d skipped%s", done,
                 s.applied, s.warnings, s.skipped,
                 s.warnings + s.skipped ? " — see carrel offline exceptions" : "");
        if (s.stopped || rc != 0)
            desk_say(d, "The upload stopped with %zu scans left (%s); they go with the next one.",
                     journal_pending(&d->journal), s.why);
    }
}

/*
 * Offline: try the daemon again. The TLS connection is tried quietly (no
 * error line every attempt); once it is up the login is as at the start.
 * Returns EXIT_OK (online again or still offline), or an exit code to
 * leave with (a login refused: the journal stays for the next desk or
 * `carrel offline upload`).
 */
static int desk_probe(desk_t *d)
{
    cli_t *cli = d->cli;
    desk_handles_stop(d);
    client_close(&cli->conn);
    client_target_t t = cli_target(cli);
    if (cli->profile.timeout_s >= DESK_PROBE_TIMEOUT_S)
        t.timeout_s = DESK_PROBE_TIMEOUT_S;
    int code = EXIT_NETWORK;
    if (client_open(&cli->conn, &t) == 0) {
        cli->connected = true;
        cli->conn.timeout_ms = (uint64_t)cli->profile.timeout_s * 1000u;
        code = cli_connect(cli, true);
    }
    if (code != EXIT_OK) {
        client_close(&cli->conn);
        cli->connected = false;
        if (code != EXIT_NETWORK) {
            desk_notice(d, "offline",
                        "The server is back but refused this desk's login; the journal (%zu "
                        "scans) stays for carrel offline upload.",
                        journal_pending(&d->journal));
            return code;
        }
        if (!desk_idle_start(d))
            return EXIT_LOCAL;
        d->probe_delay_ms =
            d->probe_delay_ms * 2 > DESK_PROBE_MAX_MS ? DESK_PROBE_MAX_MS : d->probe_delay_ms * 2;
        d->probe_ms = desk_now_ms() + d->probe_delay_ms;
        return EXIT_OK;
    }
    /* Online again. */
    d->offline = false;
    if (cli->login && cli->login->staff && cli->login->staff->username)
        util_strlcpy(d->clerk, cli->login->staff->username, sizeof(d->clerk));
    desk_handles_start(d);
    d->last_send_ms = desk_now_ms();
    d->cache_next_ms = 0;
    desk_notice(d, "reconnected", "Back online.");
    desk_update_prompt(d);
    desk_upload(d);
    return EXIT_OK;
}

/* On leaving offline (or with scans not uploaded): where they are. */
static void desk_offline_leaving(desk_t *d)
{
    if (d->journal_ready && journal_pending(&d->journal) > 0)
        desk_notice(d, "offline",
                    "%zu scans are in the journal %s, not uploaded yet: the next desk at this "
                    "workstation uploads them (or carrel offline upload).",
                    journal_pending(&d->journal), d->journal.path);
}

/*
 * A desk that starts offline has not logged in, and the password it will
 * need when the server is back would be asked for on the terminal then, in
 * the middle of scans: ask now, when the only source is the terminal.
 */
static void desk_offline_password(desk_t *d)
{
    cli_t *cli = d->cli;
    if (cli->password || cli->password_file || cli->profile.password_file ||
        (cli->profile.password_env && getenv(cli->profile.password_env)) ||
        getenv("CARREL_PASSWORD") || cli_session_saved(cli) || !isatty(STDIN_FILENO))
        return;
    char prompt[160];
    snprintf(prompt, sizeof(prompt), "Password for %s (for when the server is back): ",
             cli->profile.user ? cli->profile.user : "?");
    cli->password = password_prompt(prompt);
}

/* Offline mode for this desk: the directory, the cache, the journal. */
static void desk_offline_init(desk_t *d)
{
    cli_t *cli = d->cli;
    bool off = false;
    util_strlcpy(d->clerk, cli->profile.user ? cli->profile.user : "", sizeof(d->clerk));
    if (cli->profile.workstation == NULL)
        return;
    d->offline_dir = offline_dir(cli, &off);
    if (d->offline_dir == NULL)
        return;
    d->cache_path = offline_cache_path(d->offline_dir, cli->profile.workstation);
    char err[300];
    if (d->cache_path == NULL || journal_open(&d->journal, d->offline_dir, cli->profile.workstation,
                                              err, sizeof(err)) != 0) {
        desk_notice(d, "offline_unavailable", "This desk cannot work offline: %s",
                    d->cache_path ? err : "out of memory");
        free(d->offline_dir);
        free(d->cache_path);
        d->offline_dir = d->cache_path = NULL;
        return;
    }
    d->journal_ready = true;
    (void)offline_prune_done(d->offline_dir, cli->profile.workstation);
    if (d->journal.torn || d->journal.bad)
        desk_notice(d, "offline_journal",
                    "The journal %s had %zu torn and %zu unreadable lines; they were left out "
                    "(a torn last line is a scan that was never answered).",
                    d->journal.path, d->journal.torn, d->journal.bad);
    desk_cache_load(d);
}

static void desk_offline_free(desk_t *d)
{
    if (d->journal_ready)
        journal_close(&d->journal);
    if (d->cache)
        carrel__offline_cache__free_unpacked(d->cache, NULL);
    free(d->offline_dir);
    free(d->cache_path);
}

/*
 * The connection has closed: connect and log in again (the password was kept
 * for this), for up to the profile's timeout, then send the request that was
 * in flight again with the same request key: the server answers a repeated
 * key with the first answer, so a scan is never recorded twice. Returns
 * EXIT_OK, or the exit code to leave with.
 */
static int desk_reconnect(desk_t *d)
{
    cli_t *cli = d->cli;
    char why[300];
    util_strlcpy(why, cli->conn.error[0] ? cli->conn.error : "connection closed", sizeof(why));
    desk_notice(d, "network_error", "Connection lost (%s); reconnecting...", why);
    desk_handles_stop(d);
    client_close(&cli->conn);
    cli->connected = false;
    d->subscribed = false;
    d->subscribe_id = 0;
    cli->logged_in = false;
    if (cli->login_resp) {
        carrel__response__free_unpacked(cli->login_resp, NULL);
        cli->login_resp = NULL;
        cli->login = NULL;
    }
    if (d->pend.step == DESK_STEP_KEEPALIVE)
        d->pend.step = DESK_STEP_NONE;
    d->cache_id = 0;

    /* With a cache to work from, one attempt, then offline: the desk keeps lending. */
    bool can_go_offline = d->cache != NULL && d->journal_ready;
    uint64_t deadline = desk_now_ms() + (can_go_offline ? 0 : d->listen.timeout_ms);
    unsigned int delay_ms = 500;
    for (;;) {
        int code = cli_connect(cli, true);
        if (code == EXIT_OK)
            break;
        if (cli->connected || cli->conn.loop_ready)
            client_close(&cli->conn);
        cli->connected = false;
        if (code == EXIT_NETWORK && can_go_offline && !d->stop)
            return desk_go_offline(d, why);
        if (code != EXIT_NETWORK || desk_now_ms() + delay_ms > deadline || d->stop) {
            if (desk_step_is_change(d->pend.step))
                desk_notice(d, "network_error",
                            "Cannot reconnect. The last scan (%s) may not have been recorded: "
                            "scan it again when the desk is back.",
                            d->pend.scan[0] ? d->pend.scan : d->pend.card);
            else
                desk_notice(d, "network_error", "Cannot reconnect; leaving.");
            return code;
        }
        uv_sleep(delay_ms);
        delay_ms = delay_ms * 2 > DESK_RECONNECT_MAX_MS ? DESK_RECONNECT_MAX_MS : delay_ms * 2;
    }
    desk_handles_start(d);
    d->last_send_ms = desk_now_ms();
    if (d->pend.step != DESK_STEP_NONE) {
        d->pend.id = 0; /* the main loop sends it again */
        if (desk_step_is_change(d->pend.step))
            desk_notice(d, "reconnected",
                        "Reconnected. Sending the last scan (%s) again with the same request "
                        "key, so it cannot be recorded twice.",
                        d->pend.scan[0] ? d->pend.scan : d->pend.card);
        else
            desk_notice(d, "reconnected", "Reconnected.");
    } else {
        desk_notice(d, "reconnected", "Reconnected.");
    }
    return EXIT_OK;
}

/* ---- the main loop ---- */

/* Answer queued lines while nothing is in flight. */
static void desk_take_lines(desk_t *d)
{
    while (d->pend.step == DESK_STEP_NONE && !d->quit && !d->stop) {
        if (d->queue_head == NULL && d->stdin_sync && !d->input_eof)
            desk_read_input(d);
        desk_line_t *l = desk_dequeue(d);
        if (l == NULL)
            return;
        desk_line(d, l->text);
        free(l);
    }
}

/*
 * Ask for this branch's events (holds ready, items in transit to us) on each
 * new connection, and, after a reconnect, for the ones stored since the last
 * shown (the server replays them; desk_on_event drops any shown already).
 * It runs beside the request in flight: its answer only matters when the
 * server says no.
 */
static void desk_subscribe(desk_t *d)
{
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__Subscribe sub = CARREL__SUBSCRIBE__INIT;
    int64_t since = listen_seen_replay(&d->events_seen, util_now_ms());
    if (d->replay_retry_since > 0) {
        /* A failed replay asked again from where it was: the live events shown
         * since raised the highest id, but the range before them is missing. */
        since = d->replay_retry_since;
        d->replay_retry_since = 0;
        d->events_seen.replaying = true;
    }
    if (since > 0) {
        sub.has_since_event_id = 1;
        sub.since_event_id = since;
    }
    req.body_case = CARREL__REQUEST__BODY_SUBSCRIBE;
    req.subscribe = &sub;
    d->subscribe_since = since;
    d->subscribe_id = client_send(&d->cli->conn, &req);
    d->subscribed = true; /* a failed send closes the connection; reconnecting resets this */
}

/* How long before a failed replay is asked for again (once). */
#define DESK_REPLAY_RETRY_MS 5000

static void desk_subscribe_answer(desk_t *d)
{
    Carrel__Response *r = NULL;
    if (d->subscribe_id == 0 || client_poll(&d->cli->conn, d->subscribe_id, &r) != 1)
        return;
    d->subscribe_id = 0;
    listen_seen_replayed(&d->events_seen);
    if (r->status == CARREL__STATUS__STATUS_OK) {
        d->replay_retried = false;
    } else if (d->subscribe_since > 0) {
        /* Subscribed (the server subscribes before it replays), but the
         * replay failed, whatever the reason: live events still come. */
        bool again = !d->replay_retried;
        desk_notice(d, "events_unavailable",
                    "Branch events sent while this desk was away could not be fetched: %s%s",
                    r->message ? r->message : "unavailable",
                    again ? " (trying again in a few seconds)" : "");
        if (again) {
            d->replay_retried = true;
            d->replay_retry_since = d->subscribe_since;
            d->replay_retry_ms = desk_now_ms() + DESK_REPLAY_RETRY_MS;
        }
    } else {
        desk_notice(d, "events_unavailable", "This desk will not show branch events: %s",
                    r->message ? r->message : "refused");
    }
    carrel__response__free_unpacked(r, NULL);
}

static int desk_loop(desk_t *d)
{
    client_t *cl = &d->cli->conn;
    for (;;) {
        desk_take_lines(d);
        if (d->quit)
            return d->exit_code;
        if (d->pend.step == DESK_STEP_NONE && (d->stop || (d->input_eof && d->queue_head == NULL)))
            return d->exit_code;
        if (d->offline) {
            /* Lines were answered from the journal above; try the server when it is time. */
            if (desk_now_ms() >= d->probe_ms) {
                int code = desk_probe(d);
                if (code != EXIT_OK)
                    return code;
                continue;
            }
            client_run_once(cl);
            continue;
        }
        if (cl->closed) {
            int code = desk_reconnect(d);
            if (code != EXIT_OK)
                return code;
            continue;
        }
        if (!d->subscribed || (d->replay_retry_since > 0 && d->subscribe_id == 0 &&
                               desk_now_ms() >= d->replay_retry_ms))
            desk_subscribe(d);
        desk_cache_refresh(d);
        uint64_t now = desk_now_ms();
        if (d->pend.step != DESK_STEP_NONE && d->pend.id == 0) {
            /* On failure the connection is closing: the turn of the loop below
             * finishes that, and the request goes again after the reconnect.
             * A resend after an unavailable answer waits for its time (the
             * tick wakes the loop). */
            if (now >= d->pend.resend_ms)
                (void)desk_send(d);
        } else if (d->pend.step == DESK_STEP_NONE &&
                   listen_keepalive_due(&d->listen, d->last_send_ms)) {
            desk_start(d, DESK_STEP_KEEPALIVE, NULL, NULL);
            continue;
        }
        client_run_once(cl);
        desk_subscribe_answer(d);
        desk_cache_answer(d);
        if (d->pend.step != DESK_STEP_NONE && d->pend.id != 0) {
            Carrel__Response *r = NULL;
            if (client_poll(cl, d->pend.id, &r) == 1) {
                d->pend.id = 0;
                desk_answer(d, r);
            } else {
                (void)listen_check_deadline(&d->listen, d->pend.sent_ms, "");
            }
        }
    }
}

/* `carrel desk --help`: what can be typed at the desk, after the usage. */
static void desk_help_out(FILE *out)
{
    fputs("At the desk:\n", out);
    for (size_t i = 0; i < sizeof(desk_help_lines) / sizeof(desk_help_lines[0]); i++)
        fprintf(out, "  %s\n", desk_help_lines[i]);
}

static int desk_usage(cli_t *cli)
{
    return cli_fail(cli, EXIT_USAGE,
                    "usage: desk [--checkin] [--keepalive SECONDS] [--service-desk CODE]");
}

static int cmd_desk(cli_t *cli, int argc, char **argv)
{
    desk_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return cli_fail(cli, EXIT_LOCAL, "out of memory");
    d->cli = cli;
    d->mode = DESK_MODE_CHECKOUT;
    uint64_t keepalive_ms = LISTEN_KEEPALIVE_S * 1000u;
    d->service_desk = cli->profile.service_desk;
    static const struct option opts[] = {{"checkin", no_argument, NULL, 'i'},
                                         {"keepalive", required_argument, NULL, 'k'},
                                         {"service-desk", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "ik:s:h", opts, NULL)) != -1) {
        if (ch == 'i') {
            d->mode = DESK_MODE_CHECKIN;
        } else if (ch == 's') {
            d->service_desk = optarg;
        } else if (ch == 'k') {
            char *end;
            long s = strtol(optarg, &end, 10);
            if (*end != '\0' || s < 1 || s > 3600) {
                free(d);
                return cli_fail(cli, EXIT_USAGE, "--keepalive takes 1 to 3600 seconds");
            }
            keepalive_ms = (uint64_t)s * 1000u;
        } else if (ch == 'h') {
            printf("usage: carrel [-c PROFILE] [--json] desk [--checkin] [--keepalive SECONDS] "
                   "[--service-desk CODE]\n");
            desk_help(d);
            free(d);
            return EXIT_OK;
        } else {
            free(d);
            return desk_usage(cli);
        }
    }
    if (optind != argc) {
        free(d);
        return desk_usage(cli);
    }

    /* Logged in once, and again after a lost connection with the same password. */
    cli->keep_password = true;
    desk_offline_init(d);
    int code = cli_connect(cli, true);
    bool start_offline = code == EXIT_NETWORK && d->cache != NULL && d->journal_ready;
    if (code != EXIT_OK && !start_offline) {
        client_close(&cli->conn);
        cli->connected = false;
        cli_forget_password(cli);
        desk_offline_free(d);
        free(d);
        return code;
    }
    if (start_offline) {
        client_close(&cli->conn);
        cli->connected = false;
        desk_offline_password(d);
    } else if (cli->login && cli->login->staff && cli->login->staff->username) {
        util_strlcpy(d->clerk, cli->login->staff->username, sizeof(d->clerk));
    }
    listen_init(&d->listen, cli, keepalive_ms);
    d->last_send_ms = desk_now_ms();
    desk_current = d;
    desk_term_open(d);
    desk_update_prompt(d);
    if (start_offline) {
        char why[300];
        util_strlcpy(why, cli->conn.error[0] ? cli->conn.error : "unreachable", sizeof(why));
        d->offline = true; /* the header says so */
        desk_header(d);
        code = desk_go_offline(d, why); /* handles started there */
    } else {
        desk_handles_start(d); /* signals first: see desk_signal */
        desk_header(d);
        desk_upload(d); /* what an earlier desk left in the journal */
    }
    desk_term_start(d);

    if (code == EXIT_OK)
        code = desk_loop(d);

    if (code == EXIT_OK)
        desk_end_patron(d);
    desk_offline_leaving(d);
    desk_term_stop(d);
    desk_handles_stop(d);
    /* Close the connection here: the handles above live in *d until the loop lets go. */
    client_close(&cli->conn);
    cli->connected = false;
    desk_term_close(d);
    if (d->lookup)
        carrel__response__free_unpacked(d->lookup, NULL);
    if (d->kinds)
        carrel__response__free_unpacked(d->kinds, NULL);
    desk_offline_free(d);
    cli_forget_password(cli);
    desk_current = NULL;
    free(d);
    return code;
}

const command_t desk_commands[] = {
    {.path = "desk",
     .run = cmd_desk,
     .needs_login = false,
     .usage = "[--checkin] [--keepalive SECONDS] [--service-desk CODE]",
     .summary = "the circulation desk for a barcode scanner: scan a card, then items; :q tallies "
                "a question; :help inside",
     .help = desk_help_out},
    {.path = NULL},
};
