/*
 * sip: the SIP2 gateway's listener, connections, login (93), status (99),
 * end session (35), resend (97) and refusals (docs/SIP2.md).
 *
 * A connection is a channel in line mode. One message is answered at a time:
 * the channel is paused when a line arrives and resumed once its answer is
 * queued (sip_send), so a kiosk that writes several messages at once gets
 * their answers in order. Like conn.c, a connection is freed only when its
 * channel and timer are closed and no message refers to it (refs == 0): a
 * database or Argon2 answer that arrives after the kiosk went away finds a
 * valid, closed connection and is dropped.
 *
 * Refusals: a line that is not a well-formed message (bad checksum, no code,
 * a control character, not UTF-8, longer than SIP2_MAX_MESSAGE) is answered
 * 96, the standard's "please resend"; so is a well-formed message whose code
 * the gateway does not serve. Before login only 93, 99, 35 and 97 are
 * served: a circulation message is answered with its own response and ok=0
 * (nothing is done), any other message closes the connection. The
 * connection closes after SIP_MAX_BAD_LINES malformed lines in a row, after
 * sip_login_timeout_s without a login, or idle for sip_idle_timeout_s.
 */
#include "sip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "channel.h"
#include "check.h"
#include "log.h"
#include "password.h"
#include "perm.h"
#include "pgtext.h"
#include "text.h"
#include "throttle.h"
#include "tls.h"
#include "util.h"

#define SIP_MAX_BAD_LINES 20 /* malformed lines in a row before the connection is closed */

typedef struct sip_server {
    server_t *srv;
    uv_tcp_t listener;
    bool listening;
    bool stopping;
    int port;
    SSL_CTX *tls; /* sip_tls: the daemon's certificate, no client certificates; else NULL */
    sip_conn_t *conns;
    int nconns;
    /* The library's offset from UTC (setting `timezone`), for the dates of
     * answers: asked of the database now and then (sip_date_now), since the
     * daemon's own zone need not be the library's. */
    long utc_offset_s;
    uint64_t offset_at_ms; /* uv_now() when the database last answered it */
    bool offset_known, offset_asking;
    struct sip_login *waiting; /* logins waiting for admission, oldest first */
    bool admitting, admit_again;
} sip_server_t;

struct sip_conn {
    channel_t ch;
    sip_server_t *sv;
    server_t *srv;
    uint64_t id;
    uv_timer_t timer;
    int refs; /* the channel, the timer and each message in flight */
    bool closed;
    bool busy; /* a message is being answered: the channel is paused */
    bool login_pending;
    sip_session_t session;
    char peer[64];
    char addr[64];
    uint64_t accepted_at;
    uint64_t last_active_at;
    bool stuck_seen;
    bool warned_date; /* a transaction date not to be trusted for keys was logged */
    int bad_lines;
    char *last; /* the last answer sent, AY/AZ and CR included (for 97) */
    size_t last_len;
    password_work_t *login_work; /* cancelled if the connection closes first */
    sip_conn_t *prev, *next;
};

/* ---- statements ---- */

enum {
    AUTH_STAFF_ID,
    AUTH_PASSWORD_HASH,
    AUTH_DISABLED,
    AUTH_ROLE,
    AUTH_HAS_LOGIN,
    AUTH_WORKSTATION_ID,
    AUTH_WORKSTATION,
    AUTH_BRANCH_ID,
    AUTH_BRANCH_CODE,
    AUTH_BRANCH_NAME,
    AUTH_INSTITUTION,
    AUTH_ALWAYS_CT,
    AUTH_CV_00,
    AUTH_HIDE,
    AUTH_HELD_BLOCKED,
    AUTH_PIN_REQUIRED,
    AUTH_NCOLS
};
static const db_stmt_t stmt_sip_auth = {
    "sip_login_auth",
    "SELECT staff_id, password_hash, disabled, role, has_login, workstation_id,"
    "       workstation_name, branch_id, branch_code, branch_name, institution, always_send_ct,"
    "       cv_00_on_success, hide_fields, held_checkin_blocked, pin_required"
    "  FROM sip_login_auth($1)",
};
static const db_stmt_t stmt_sip_touch = {"sip_login_touch", "SELECT sip_login_touch($1)"};
static const db_stmt_t stmt_sip_record = {
    "sip_login_record",
    "INSERT INTO login_event (username, workstation, peer, success, reason)"
    " VALUES ($1, $2, $3, $4, $5)",
};

enum { OFFSET_S, OFFSET_NCOLS };
static const db_stmt_t stmt_sip_offset = {"sip_utc_offset", "SELECT sip_utc_offset_s()"};

void sip_register_statements(void)
{
    db_stmt_register(&stmt_sip_offset);
    db_stmt_register(&stmt_sip_auth);
    db_stmt_register(&stmt_sip_touch);
    db_stmt_register(&stmt_sip_record);
}

struct sip_login;
static void sip_admit_waiting(sip_server_t *sv);

/* ---- connection lifetime ---- */

static void sip_conn_ref(sip_conn_t *c)
{
    CHECK(c->refs > 0);
    c->refs++;
}

static void sip_conn_unref(sip_conn_t *c)
{
    CHECK(c->refs > 0);
    if (--c->refs == 0) {
        CHECK(c->closed);
        free(c->last);
        free(c);
    }
}

static void sip_timer_closed(uv_handle_t *h)
{
    sip_conn_unref(h->data);
}

static void sip_conn_close(sip_conn_t *c, const char *why)
{
    channel_close(&c->ch, why);
}

static void sip_conn_close_after_flush(sip_conn_t *c, const char *why)
{
    channel_close_after_flush(&c->ch, why);
}

static void sip_on_close(channel_t *ch, const char *reason)
{
    sip_conn_t *c = ch->data;
    sip_server_t *sv = c->sv;
    c->closed = true;
    if (c->login_work)
        password_cancel(c->login_work);
    if (c->login_pending && sv->waiting) /* a waiting login ends with its connection */
        sip_admit_waiting(sv);
    log_info(c->id, "SIP2 connection closed (%s%s%s): %s", c->peer,
             c->session.logged_in ? ", login " : "",
             c->session.logged_in ? c->session.username : "", reason);
    if (c->prev)
        c->prev->next = c->next;
    else
        sv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    sv->nconns--;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, sip_timer_closed);
    server_t *srv = c->srv;
    sip_conn_unref(c);
    if (sv->stopping && sv->nconns == 0)
        server_jobs_gone(srv); /* draining may finish now */
}

/*
 * The connection's timer: a kiosk that stopped reading what we send is
 * dropped; one not logged in within sip_login_timeout_s is closed; with
 * sip_idle_timeout_s, one that sent nothing that long is closed.
 */
static void sip_tick(uv_timer_t *t)
{
    sip_conn_t *c = t->data;
    const struct server_config *cfg = &c->srv->cfg;
    uint64_t now = uv_now(c->srv->loop);
    bool stuck = c->ch.paused_by_backpressure || (c->ch.close_when_flushed && c->ch.writing);
    if (stuck && c->stuck_seen) {
        log_warn(c->id, "SIP2 %s is not reading what we send (%zu bytes waiting); dropping it",
                 c->peer, channel_queued_output(&c->ch));
        sip_conn_close(c, "client not reading");
        return;
    }
    c->stuck_seen = stuck;
    /* A login may wait on a key whose pending logins were the desks' (auth.c), which do
     * not wake it: look again now and then. */
    if (c->sv->waiting && !c->sv->admitting)
        sip_admit_waiting(c->sv);
    if (c->closed)
        return;
    if (!c->session.logged_in && !c->login_pending &&
        now - c->accepted_at >= (uint64_t)cfg->sip_login_timeout_s * 1000) {
        log_info(c->id, "closing SIP2 %s: no login within %ld s", c->peer,
                 cfg->sip_login_timeout_s);
        sip_conn_close_after_flush(c, "login timeout");
        return;
    }
    if (cfg->sip_idle_timeout_s > 0 && !c->busy &&
        now - c->last_active_at >= (uint64_t)cfg->sip_idle_timeout_s * 1000) {
        log_info(c->id, "closing idle SIP2 connection (%s)", c->peer);
        sip_conn_close_after_flush(c, "idle timeout");
    }
}

static uint64_t sip_tick_ms(const struct server_config *cfg)
{
    long shortest = cfg->sip_login_timeout_s;
    if (cfg->sip_idle_timeout_s > 0 && cfg->sip_idle_timeout_s < shortest)
        shortest = cfg->sip_idle_timeout_s;
    uint64_t ms = (uint64_t)shortest * 1000 / 4;
    return ms < 250 ? 250 : ms > 60000 ? 60000 : ms;
}

/* ---- answers ---- */

/* End o, queue it, and keep it for 97 unless it is a 96 (`keep` false). */
static void sip_conn_answer(sip_conn_t *c, sip2_out_t *o, int seq, bool keep)
{
    sip2_out_end(o, seq);
    if (c->closed)
        return;
    if (keep) {
        char *copy = malloc(o->len);
        if (copy) {
            memcpy(copy, o->buf, o->len);
            free(c->last);
            c->last = copy;
            c->last_len = o->len;
        } else {
            log_warn(c->id, "out of memory keeping the last SIP2 answer; 97 repeats an older one");
        }
    }
    if (channel_send_raw(&c->ch, o->buf, o->len) != 0)
        log_debug(c->id, "SIP2 answer dropped: connection closing");
}

/* "96": the line could not be used; the kiosk should send it again. */
static void sip_answer_96(sip_conn_t *c, int seq)
{
    sip2_out_t o;
    sip2_out_begin(&o, "96", NULL);
    sip_conn_answer(c, &o, seq, false);
}

static void sip_req_free(sip_req_t *r)
{
    sip_conn_t *c = r->conn;
    if (r->line) /* a 93's password is in it */
        OPENSSL_cleanse(r->line, strlen(r->line));
    arena_free(&r->arena);
    OPENSSL_cleanse(r, sizeof(*r)); /* a 93's password was in its line */
    free(r);
    sip_conn_unref(c);
}

/* The message is answered (or abandoned): let the next line in. */
static void sip_conn_done(sip_conn_t *c)
{
    c->busy = false;
    if (c->closed)
        return;
    if (c->sv->stopping)
        sip_conn_close_after_flush(c, "server shutting down");
    else
        channel_resume(&c->ch);
}

void sip_send(sip_req_t *r)
{
    sip_conn_t *c = r->conn;
    sip_conn_answer(c, &r->out, r->msg.seq, true);
    sip_conn_done(c);
    sip_req_free(r);
}

typedef struct sip_db_call {
    sip_req_t *r;
    sip_db_cb cb;
} sip_db_call_t;

static void sip_db_done(const db_result_t *res, void *arg)
{
    sip_db_call_t *call = arg;
    call->cb(call->r, res);
}

void sip_db(sip_req_t *r, const db_stmt_t *stmt, int nparams, const char *const *values,
            sip_db_cb cb)
{
    sip_db_call_t *call = arena_new(&r->arena, sip_db_call_t, 1);
    call->r = r;
    call->cb = cb;
    if (db_exec(r->srv->db, stmt, nparams, values, NULL, NULL, sip_db_done, call) != 0) {
        db_result_t res = {.status = DB_UNAVAILABLE, .message = "database unavailable"};
        cb(r, &res);
    }
}

/* ---- the request key ---- */

/* Append a part and a NUL ("ab"+"c" must differ from "a"+"bc"). */
static size_t sip_key_part(char *buf, size_t at, const char *s, size_t n)
{
    memcpy(buf + at, s, n);
    buf[at + n] = '\0';
    return at + n + 1;
}

#define SIP_KEY_DATE_SLACK_S 3600 /* a kiosk's clock this far off is still believed */

/* Where the transaction date is in the fixed part of the messages that derive
 * keys; -1 for the others. */
static int sip_key_date_at(const char *code)
{
    static const struct {
        const char *code;
        int at;
    } table[] = {{"11", 2}, {"09", 1}, {"29", 2}, {"65", 0}, {"37", 0}};
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(code, table[i].code) == 0)
            return table[i].at;
    return -1;
}

/* The library's offset from UTC now: the database's answer, else the daemon's zone. */
static long sip_library_offset(const server_t *srv, time_t now)
{
    if (srv && srv->sip && srv->sip->offset_known)
        return srv->sip->utc_offset_s;
    struct tm tm;
    return localtime_r(&now, &tm) ? tm.tm_gmtoff : 0;
}

/* True when the message's transaction date is a date within SIP_KEY_DATE_SLACK_S of
 * now (a blank or constant one makes every transaction of a barcode look alike). */
static bool sip_key_date_trusted(const sip_req_t *r, time_t now)
{
    int at = sip_key_date_at(r->msg.code);
    if (at < 0)
        return true;
    if (r->msg.fixed == NULL || r->msg.fixed_len < (size_t)at + 18)
        return false;
    const char *d = r->msg.fixed + at;
    time_t when;
    if (!sip2_parse_date_civil(d, 18, &when))
        return false;
    /* ZZZZ "   Z" is UTC; anything else is the library's local time. */
    long offset = memchr(d + 8, 'Z', 4) ? 0 : sip_library_offset(r->srv, now);
    long long diff = (long long)when - ((long long)now + offset);
    return diff >= -SIP_KEY_DATE_SLACK_S && diff <= SIP_KEY_DATE_SLACK_S;
}

/*
 * The key hashes the login, the code, AA, AB, the fixed part (its transaction
 * date and flags, sent unchanged with a resend) and AY; for 37 also BK, the
 * kiosk's transaction id. A date that cannot be trusted adds the minute the
 * message arrived: two real returns of a barcode from a sorter that sends a
 * constant date then differ unless they come within the same minute (a resend
 * does), instead of the second getting the first's answer for two days.
 */
const char *sip_key(sip_req_t *r)
{
    return sip_key_at(r, time(NULL));
}

const char *sip_key_at(sip_req_t *r, time_t now)
{
    char staff[24];
    int n = snprintf(staff, sizeof(staff), "%lld", (long long)r->session.staff_id);
    size_t aa_len = 0, ab_len = 0, bk_len = 0;
    const char *aa = sip2_field(&r->msg, "AA", &aa_len);
    const char *ab = sip2_field(&r->msg, "AB", &ab_len);
    bool fee = strcmp(r->msg.code, "37") == 0;
    const char *bk = fee ? sip2_field(&r->msg, "BK", &bk_len) : NULL;
    char seq[12];
    int sn = snprintf(seq, sizeof(seq), "%d", r->msg.seq);
    char minute[24] = "";
    int mn = 0;
    if (!sip_key_date_trusted(r, now)) {
        mn = snprintf(minute, sizeof(minute), "%lld", (long long)(now / 60));
        if (r->conn && !r->conn->warned_date) {
            r->conn->warned_date = true;
            log_warn(r->conn->id,
                     "SIP2 %s: message %s has a transaction date that is not a date within an "
                     "hour of now; its request key includes the minute it arrived (a resend "
                     "after that minute is done again)",
                     r->conn->peer, r->msg.code);
        }
    }
    size_t fixed_len = r->msg.fixed ? r->msg.fixed_len : 0;
    /* Every part comes from the line (at most SIP2_MAX_MESSAGE bytes) or is short. */
    char *buf = arena_alloc(&r->arena, 96 + (size_t)n + aa_len + ab_len + bk_len + fixed_len +
                                           (size_t)sn + (size_t)mn);
    size_t at = 0;
    at = sip_key_part(buf, at, "carrel-sip2-key-1", 17);
    at = sip_key_part(buf, at, staff, (size_t)n);
    at = sip_key_part(buf, at, r->msg.code, 2);
    at = sip_key_part(buf, at, aa ? aa : "", aa ? aa_len : 0);
    at = sip_key_part(buf, at, ab ? ab : "", ab ? ab_len : 0);
    at = sip_key_part(buf, at, fixed_len ? r->msg.fixed : "", fixed_len);
    at = sip_key_part(buf, at, seq, (size_t)sn);
    if (fee)
        at = sip_key_part(buf, at, bk ? bk : "", bk ? bk_len : 0);
    if (mn > 0)
        at = sip_key_part(buf, at, minute, (size_t)mn);
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)buf, at, d);
    d[6] = (unsigned char)((d[6] & 0x0f) | 0x80); /* version 8: custom */
    d[8] = (unsigned char)((d[8] & 0x3f) | 0x80); /* variant 10 */
    static const char hex[] = "0123456789abcdef";
    char *o = r->key;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[d[i] >> 4];
        *o++ = hex[d[i] & 15];
    }
    *o = '\0';
    return r->key;
}

/* ---- 99, 35, and circulation before login ---- */

#define SIP_OFFSET_MAX_AGE_MS                                                                      \
    (5 * 60 * 1000) /* a change of daylight saving time shows within it                            \
                     */

static void sip_offset_done(const db_result_t *res, void *arg)
{
    sip_server_t *sv = arg;
    db_result_t fit;
    res = db_fit(res, OFFSET_NCOLS, &fit);
    sv->offset_asking = false;
    if (res->status != DB_OK || PQntuples(res->res) != 1 || db_null(res->res, 0, OFFSET_S))
        return; /* keep the last one; asked again next time */
    sv->utc_offset_s = db_int32(res->res, 0, OFFSET_S);
    sv->offset_known = true;
    sv->offset_at_ms = uv_now(sv->srv->loop);
}

/* Ask the database for the library's offset when it is unknown or old. */
static void sip_offset_refresh(sip_server_t *sv)
{
    uint64_t now = uv_now(sv->srv->loop);
    if (sv->offset_asking || sv->stopping ||
        (sv->offset_known && now - sv->offset_at_ms < SIP_OFFSET_MAX_AGE_MS))
        return;
    if (db_exec_short(sv->srv->db, &stmt_sip_offset, 0, NULL, NULL, NULL, sip_offset_done, sv) == 0)
        sv->offset_asking = true;
}

void sip_date_now(server_t *srv, char out[19])
{
    sip_server_t *sv = srv->sip;
    time_t now = time(NULL);
    if (sv == NULL) {
        sip2_date(out, now);
        return;
    }
    sip_offset_refresh(sv);
    if (sv->offset_known)
        sip2_date_utc(out, now, sv->utc_offset_s);
    else
        sip2_date(out, now); /* the daemon's zone until the database has answered once */
}

static void sip_answer_status(sip_req_t *r)
{
    sip_session_t *s = &r->session;
    char date[19], bx[17];
    sip_date_now(r->srv, date);
    sip_supported_messages(bx);
    sip2_out_t *o = &r->out;
    sip2_out_begin(o, "98", s->opts.hide_fields);
    /* on-line, checkin ok, checkout ok, ACS renewal policy, status update ok, offline ok.
     * Off-line while no database connection is up: every message would be refused. */
    sip2_out_fixed(o, db_pool_available(r->srv->db) ? "Y" : "N");
    sip2_out_fixed(o, "YYYNN");
    sip2_out_fixed(o, "030003"); /* timeout period, retries allowed */
    sip2_out_fixed(o, date);
    sip2_out_fixed(o, "2.00");
    sip2_out_field(o, "AO", s->opts.institution);
    if (s->logged_in) {
        sip2_out_field(o, "AM", s->branch_name);
        sip2_out_field(o, "BX", bx);
        sip2_out_field(o, "AN", s->workstation);
    } else {
        sip2_out_field(o, "BX", bx);
    }
    sip_send(r);
}

static void sip_answer_end_session(sip_req_t *r)
{
    char date[19], aa[SIP2_MAX_VALUE + 1];
    sip_date_now(r->srv, date);
    if (!sip2_field_copy(&r->msg, "AA", aa, sizeof(aa)))
        aa[0] = '\0';
    sip2_out_t *o = &r->out;
    sip2_out_begin(o, "36", r->session.opts.hide_fields);
    sip2_out_fixed(o, "Y");
    sip2_out_fixed(o, date);
    sip2_out_field(o, "AO", r->session.opts.institution);
    sip2_out_field(o, "AA", aa);
    sip_send(r);
}

/*
 * Answer a circulation message sent before login with its response, ok=0 (nothing is
 * done); false for any other message. Each answer has the standard's required fields, in
 * its order (AO and AA/AB echoed from the request, the item's title, due date or
 * permanent location empty); the logged-in answers are sip_msgs.c's.
 */
static bool sip_answer_not_logged_in(sip_req_t *r)
{
    static const struct {
        const char *code, *answer, *fixed, *fields[5];
    } table[] = {
        {"11", "12", "0NUN", {"AO", "AA", "AB", "AJ", "AH"}},
        {"09", "10", "0NUN", {"AO", "AB", "AQ", NULL, NULL}},
        {"29", "30", "0NUN", {"AO", "AA", "AB", "AJ", "AH"}},
        {"65", "66", "000000000", {"AO", NULL, NULL, NULL, NULL}},
        {"37", "38", "N", {"AO", "AA", NULL, NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strcmp(r->msg.code, table[i].code) != 0)
            continue;
        char date[19], value[SIP2_MAX_VALUE + 1];
        sip_date_now(r->srv, date);
        sip2_out_t *o = &r->out;
        sip2_out_begin(o, table[i].answer, NULL);
        sip2_out_fixed(o, table[i].fixed);
        sip2_out_fixed(o, date);
        for (int k = 0; k < 5 && table[i].fields[k]; k++) {
            if (!sip2_field_copy(&r->msg, table[i].fields[k], value, sizeof(value)))
                value[0] = '\0';
            sip2_out_field(o, table[i].fields[k], value);
        }
        sip2_out_field(o, "AF", "This self-check is not logged in; please see the desk.");
        sip_send(r);
        return true;
    }
    return false;
}

/* ---- 93: login ---- */

typedef struct sip_login {
    char user[64];
    char password[SIP2_MAX_VALUE + 1];
    char user_key[THROTTLE_KEY_MAX];
    char addr_key[THROTTLE_KEY_MAX];
    bool counted; /* a failure counted ahead on both keys */
    bool pending; /* holds a pending slot on both keys */
    bool exists, disabled, selfcheck, has_login;
    uint64_t revoked_seq; /* srv->revoked_seq when the account was looked up */
    sip_session_t next;   /* the session it opens */
    sip_req_t *r;
    struct sip_login *next_waiting; /* in sv->waiting */
} sip_login_t;

static void sip_record_done(const db_result_t *res, void *arg)
{
    (void)arg;
    if (res->status != DB_OK)
        log_warn(0, "cannot record a SIP2 login event: %s", res->message ? res->message : "?");
}

static void sip_login_record(sip_req_t *r, bool ok, const char *reason)
{
    sip_login_t *l = r->state;
    const char *values[5] = {l->user, l->next.workstation[0] ? l->next.workstation : "(sip2)",
                             r->conn->peer, ok ? "true" : "false", reason};
    if (db_exec_short(r->srv->db, &stmt_sip_record, 5, values, NULL, NULL, sip_record_done, NULL) !=
        0)
        log_warn(r->conn->id, "SIP2 login event not recorded: database unavailable");
}

/* 94 with ok 0 or 1. A failed login logs the connection out (a kiosk that
 * logs in again with a wrong password is no longer trusted). */
static void sip_login_answer(sip_req_t *r, bool ok)
{
    sip_login_t *l = r->state;
    sip_conn_t *c = r->conn;
    c->login_pending = false;
    c->login_work = NULL;
    if (ok) {
        c->session = l->next;
        r->session = l->next;
        log_info(c->id, "SIP2 login: %s at %s (%s) from %s", l->user, l->next.workstation,
                 l->next.branch_code, c->peer);
    } else {
        memset(&c->session, 0, sizeof(c->session));
    }
    OPENSSL_cleanse(l->password, sizeof(l->password));
    sip2_out_begin(&r->out, "94", NULL);
    sip2_out_fixed(&r->out, ok ? "1" : "0");
    sip_send(r);
}

/*
 * The attempt is over: its pending slots go back, a guess keeps the failures
 * counted ahead and anything else gives them back, and the logins waiting for
 * a slot or a verdict may go.
 */
static void sip_login_end(sip_req_t *r, bool guess)
{
    sip_login_t *l = r->state;
    server_t *srv = r->srv;
    if (l->pending) {
        throttle_pending_done(&srv->throttle_users, l->user_key);
        throttle_pending_done(&srv->throttle_addresses, l->addr_key);
    }
    if (l->counted && !guess) {
        throttle_unfail(&srv->throttle_users, l->user_key);
        throttle_unfail(&srv->throttle_addresses, l->addr_key);
    }
    bool freed = l->pending;
    l->pending = l->counted = false;
    if (freed && r->conn->sv->waiting)
        sip_admit_waiting(r->conn->sv);
}

static void sip_login_fail(sip_req_t *r, const char *reason, bool guess)
{
    sip_login_t *l = r->state;
    sip_login_end(r, guess);
    log_warn(r->conn->id, "SIP2 login for %s from %s refused (%s)", l->user, r->conn->peer, reason);
    sip_login_record(r, false, reason);
    sip_login_answer(r, false);
}

static void sip_touch_done(const db_result_t *res, void *arg)
{
    (void)arg;
    if (res->status != DB_OK)
        log_warn(0, "cannot record a SIP2 login's time: %s", res->message ? res->message : "?");
}

static void sip_login_verified(int ok, const char *hash, void *arg)
{
    (void)hash;
    sip_req_t *r = arg;
    sip_login_t *l = r->state;
    r->conn->login_work = NULL;
    /* Gone before its answer: nobody learns the verdict, so no guess was
     * made (kiosks sharing a login and rebooting must not lock each other out). */
    if (ok == PASSWORD_CANCELLED || r->conn->closed) {
        sip_login_fail(r, "abandoned", false);
        return;
    }
    if (ok != PASSWORD_MATCH || !l->exists) {
        sip_login_fail(r,
                       !l->exists ? "unknown_user"
                       : ok < 0   ? "bad_hash"
                                  : "wrong_password",
                       true);
        return;
    }
    /* The password is right: what follows is not a guess, and is told apart only in the log. */
    /* Disabled (or its password changed) since it was looked up: as disabled. */
    if (l->disabled || server_sessions_ended_since(r->srv, l->next.staff_id, l->revoked_seq)) {
        sip_login_fail(r, "disabled", false);
        return;
    }
    if (!l->selfcheck) {
        sip_login_fail(r, "not_selfcheck", false);
        return;
    }
    if (!l->has_login) {
        sip_login_fail(r, "sip_login", false);
        return;
    }
    server_t *srv = r->srv;
    throttle_success(&srv->throttle_users, l->user_key);
    sip_login_end(r, false);
    l->next.logged_in = true;
    const char *values[1] = {pgtext_int(&r->arena, l->next.staff_id)};
    if (db_exec(srv->db, &stmt_sip_touch, 1, values, NULL, NULL, sip_touch_done, NULL) != 0)
        log_warn(r->conn->id, "SIP2 login time not recorded: database unavailable");
    sip_login_record(r, true, "ok_sip2");
    sip_login_answer(r, true);
}

static void sip_login_fill(sip_login_t *l, const PGresult *res)
{
    sip_session_t *s = &l->next;
    l->exists = !db_null(res, 0, AUTH_STAFF_ID);
    l->disabled = db_bool(res, 0, AUTH_DISABLED);
    l->selfcheck = strcmp(db_text(res, 0, AUTH_ROLE), "selfcheck") == 0;
    l->has_login = db_bool(res, 0, AUTH_HAS_LOGIN);
    s->staff_id = db_int64(res, 0, AUTH_STAFF_ID);
    if (!l->has_login)
        return;
    s->workstation_id = db_int64(res, 0, AUTH_WORKSTATION_ID);
    s->branch_id = db_int32(res, 0, AUTH_BRANCH_ID);
    util_strlcpy(s->branch_code, db_text(res, 0, AUTH_BRANCH_CODE), sizeof(s->branch_code));
    util_strlcpy(s->branch_name, db_text(res, 0, AUTH_BRANCH_NAME), sizeof(s->branch_name));
    util_strlcpy(s->workstation, db_text(res, 0, AUTH_WORKSTATION), sizeof(s->workstation));
    util_strlcpy(s->username, l->user, sizeof(s->username));
    sip_options_t *o = &s->opts;
    o->always_send_ct = db_bool(res, 0, AUTH_ALWAYS_CT);
    o->cv_00_on_success = db_bool(res, 0, AUTH_CV_00);
    o->held_checkin_blocked = db_bool(res, 0, AUTH_HELD_BLOCKED);
    o->pin_required = db_bool(res, 0, AUTH_PIN_REQUIRED);
    util_strlcpy(o->hide_fields, db_text(res, 0, AUTH_HIDE), sizeof(o->hide_fields));
    util_strlcpy(o->institution, db_text(res, 0, AUTH_INSTITUTION), sizeof(o->institution));
}

static void sip_login_looked_up(const db_result_t *res, void *arg)
{
    sip_req_t *r = arg;
    sip_login_t *l = r->state;
    db_result_t fit;
    res = db_fit(res, AUTH_NCOLS, &fit);
    if (res->status != DB_OK || PQntuples(res->res) != 1) {
        log_warn(r->conn->id, "SIP2 login for %s: %s", l->user,
                 res->message ? res->message : "no row");
        sip_login_fail(r, "database", false);
        return;
    }
    if (r->conn->closed) {
        sip_login_fail(r, "abandoned", false);
        return;
    }
    sip_login_fill(l, res->res);
    const char *hash = l->exists ? db_text(res->res, 0, AUTH_PASSWORD_HASH) : r->srv->dummy_hash;
    int rc = password_verify_async(&r->srv->passwords, hash, l->password, sip_login_verified, r,
                                   &r->conn->login_work);
    if (rc != 0) {
        log_warn(r->conn->id, "SIP2 login for %s: %s", l->user,
                 rc == PASSWORD_QUEUE_FULL ? "password queue full" : "cannot check the password");
        sip_login_fail(r, "password_queue", false);
    }
}

/*
 * Admission, as Login's (auth.c) on the same throttle tables: refused at once
 * when a key is locked out by failures that are all known; waiting while it
 * is locked out only by failures counted ahead (logins still being checked)
 * or has no free pending slot, since their answers decide; else admitted,
 * holding a pending slot and counted as a failure ahead on both keys. So the
 * kiosks of a branch that share one login and start at once all get in, a
 * few at a time, while a burst of guesses gets login_throttle_after checks.
 */
typedef enum { SIP_ADMIT_GO, SIP_ADMIT_WAIT, SIP_ADMIT_REFUSED } sip_admit_t;

static sip_admit_t sip_login_admit(sip_req_t *r)
{
    sip_login_t *l = r->state;
    server_t *srv = r->srv;
    sip_conn_t *c = r->conn;
    int64_t now = util_now_ms();
    int64_t wait1 = throttle_wait_ms(&srv->throttle_users, l->user_key, now);
    int64_t wait2 = throttle_wait_ms(&srv->throttle_addresses, l->addr_key, now);
    int pend1 = throttle_pending(&srv->throttle_users, l->user_key);
    int pend2 = throttle_pending(&srv->throttle_addresses, l->addr_key);
    if ((wait1 > 0 && pend1 == 0) || (wait2 > 0 && pend2 == 0)) {
        bool by_user = wait1 > 0 && pend1 == 0;
        if (throttle_refused(by_user ? &srv->throttle_users : &srv->throttle_addresses,
                             by_user ? l->user_key : l->addr_key, l->user, "(sip2)", c->peer) == 1)
            log_warn(c->id, "SIP2 login for %s from %s refused: throttled", l->user, c->peer);
        return SIP_ADMIT_REFUSED;
    }
    if (wait1 > 0 || wait2 > 0 || pend1 >= srv->cfg.login_pending_per_user ||
        pend2 >= srv->cfg.login_pending_per_address)
        return SIP_ADMIT_WAIT;
    bool p1 = throttle_pending_add(&srv->throttle_users, l->user_key,
                                   (int)srv->cfg.login_pending_per_user);
    bool p2 = p1 && throttle_pending_add(&srv->throttle_addresses, l->addr_key,
                                         (int)srv->cfg.login_pending_per_address);
    if (!p2) { /* no room left in a table */
        if (p1)
            throttle_pending_done(&srv->throttle_users, l->user_key);
        log_warn(c->id, "SIP2 login for %s from %s refused: throttle tables full", l->user,
                 c->peer);
        return SIP_ADMIT_REFUSED;
    }
    l->pending = true;
    throttle_fail(&srv->throttle_users, l->user_key, now);
    throttle_fail(&srv->throttle_addresses, l->addr_key, now);
    l->counted = true;
    return SIP_ADMIT_GO;
}

static void sip_login_lookup(sip_req_t *r)
{
    sip_login_t *l = r->state;
    const char *values[1] = {l->user};
    l->revoked_seq = r->srv->revoked_seq;
    if (db_exec_short(r->srv->db, &stmt_sip_auth, 1, values, NULL, NULL, sip_login_looked_up, r) !=
        0)
        sip_login_fail(r, "database", false);
}

static void sip_login_wait(sip_req_t *r)
{
    sip_login_t *l = r->state;
    sip_login_t **p = &r->conn->sv->waiting;
    while (*p)
        p = &(*p)->next_waiting;
    l->next_waiting = NULL;
    *p = l;
}

/* Admit, wait, or answer 940. */
static void sip_login_try(sip_req_t *r)
{
    switch (sip_login_admit(r)) {
    case SIP_ADMIT_GO:
        sip_login_lookup(r);
        break;
    case SIP_ADMIT_WAIT:
        sip_login_wait(r);
        break;
    case SIP_ADMIT_REFUSED:
        sip_login_answer(r, false);
        break;
    }
}

/*
 * Try the waiting logins again, oldest first (a login ended: a slot or a
 * verdict may have come free); those of closed connections end. Re-entered
 * from the failure paths of the logins it starts, so a flag makes the outer
 * call go round again instead.
 */
static void sip_admit_waiting(sip_server_t *sv)
{
    if (sv->admitting) {
        sv->admit_again = true;
        return;
    }
    sv->admitting = true;
    do {
        sv->admit_again = false;
        sip_login_t *list = sv->waiting, *next;
        sv->waiting = NULL;
        for (sip_login_t *l = list; l; l = next) {
            next = l->next_waiting;
            if (l->r->conn->closed)
                sip_login_answer(l->r, false); /* dropped: frees it */
            else
                sip_login_try(l->r);
        }
    } while (sv->admit_again);
    sv->admitting = false;
}

static void sip_login_start(sip_req_t *r)
{
    sip_conn_t *c = r->conn;
    sip_login_t *l = arena_new(&r->arena, sip_login_t, 1);
    memset(l, 0, sizeof(*l));
    l->r = r;
    r->state = l;
    bool has_user = sip2_field_copy(&r->msg, "CN", l->user, sizeof(l->user));
    bool has_pw = sip2_field_copy(&r->msg, "CO", l->password, sizeof(l->password));
    if (!has_user || !l->user[0] || !has_pw || !l->password[0]) {
        util_strlcpy(l->user, has_user ? l->user : "", sizeof(l->user));
        sip_login_fail(r, "field:login", false);
        return;
    }
    snprintf(l->user_key, sizeof(l->user_key), "user:%s", l->user);
    snprintf(l->addr_key, sizeof(l->addr_key), "addr:%s", c->addr);
    c->login_pending = true; /* no login deadline while it is checked or waits */
    sip_login_try(r);
}

/* ---- one line ---- */

static bool sip_line_is_text(const char *line, size_t len)
{
    if (text_check((const uint8_t *)line, len, NULL, NULL) != TEXT_OK)
        return false;
    return memchr(line, '\t', len) == NULL && memchr(line, '\n', len) == NULL;
}

/* A line that is not a message: 96, and after too many in a row, goodbye.
 * (No line arrives while a message is answered: the channel is paused.) */
static void sip_bad_line(sip_conn_t *c, const char *what, int seq)
{
    c->bad_lines++;
    log_info(c->id, "SIP2 %s: %s (%d in a row)", c->peer, what, c->bad_lines);
    sip_answer_96(c, seq);
    if (c->bad_lines > SIP_MAX_BAD_LINES) {
        log_warn(c->id, "closing SIP2 %s: %d bad lines in a row", c->peer, c->bad_lines);
        sip_conn_close_after_flush(c, "too many bad lines");
    }
}

static void sip_resend(sip_conn_t *c)
{
    if (c->last == NULL) {
        sip_answer_96(c, -1);
        return;
    }
    if (channel_send_raw(&c->ch, c->last, c->last_len) != 0)
        log_debug(c->id, "SIP2 resend dropped: connection closing");
}

static void sip_dispatch(sip_req_t *r)
{
    sip_conn_t *c = r->conn;
    const char *code = r->msg.code;
    if (strcmp(code, "93") == 0) {
        sip_login_start(r);
    } else if (strcmp(code, "99") == 0) {
        sip_answer_status(r);
    } else if (strcmp(code, "35") == 0) {
        sip_answer_end_session(r);
    } else if (!r->session.logged_in) {
        if (!sip_answer_not_logged_in(r)) {
            log_info(c->id, "closing SIP2 %s: message %s before login", c->peer, code);
            sip_conn_close_after_flush(c, "message before login");
            sip_conn_done(c);
            sip_req_free(r);
        }
    } else {
        sip_handler_fn fn = sip_handler_find(code);
        if (fn) {
            fn(r);
            return;
        }
        /* Well-formed but not served: the standard has no "unsupported" answer;
         * 96 asks again, and BX in 98 tells the kiosk not to. */
        log_info(c->id, "SIP2 %s: message %s is not supported", c->peer, code);
        sip_answer_96(c, r->msg.seq);
        sip_conn_done(c);
        sip_req_free(r);
    }
}

static void sip_on_frame(channel_t *ch, const uint8_t *payload, size_t len)
{
    sip_conn_t *c = ch->data;
    if (c->closed || ch->closing || ch->close_when_flushed) /* lines already read: dropped */
        return;
    c->last_active_at = uv_now(c->srv->loop);
    const char *line = (const char *)payload;
    if (!sip_line_is_text(line, len)) {
        sip_bad_line(c, "a line that is not text", -1);
        return;
    }
    sip_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        log_error(c->id, "out of memory for a SIP2 message");
        sip_answer_96(c, -1);
        return;
    }
    arena_init(&r->arena);
    r->conn = c;
    r->srv = c->srv;
    r->session = c->session;
    r->line = arena_strndup(&r->arena, line, len);
    sip_conn_ref(c);
    sip2_status_t st = sip2_parse(r->line, len, &r->msg);
    if (st != SIP2_OK) {
        int seq = r->msg.seq; /* sip2_parse reads AY even when the checksum is bad */
        sip_req_free(r);
        if (st == SIP2_EMPTY)
            return;
        sip_bad_line(c, st == SIP2_BAD_CHECKSUM ? "bad checksum" : "malformed message", seq);
        return;
    }
    c->bad_lines = 0;
    if (strcmp(r->msg.code, "97") == 0) {
        sip_resend(c);
        sip_req_free(r);
        return;
    }
    /* One message at a time: the next line waits until this one is answered. */
    c->busy = true;
    channel_pause(&c->ch);
    sip_dispatch(r);
}

static void sip_on_frame_too_large(channel_t *ch, uint32_t bytes)
{
    sip_conn_t *c = ch->data;
    char what[80];
    snprintf(what, sizeof(what), "a line of %u bytes (the limit is %d)", bytes, SIP2_MAX_MESSAGE);
    sip_bad_line(c, what, -1);
}

static void sip_on_open(channel_t *ch)
{
    sip_conn_t *c = ch->data;
    if (!c->peer[0]) /* a plain channel opens inside channel_accept */
        channel_peer_name(&c->ch, c->peer, sizeof(c->peer));
    log_info(c->id, "SIP2 connection from %s%s", c->peer, c->sv->tls ? " (TLS)" : "");
}

static void sip_on_output(channel_t *ch)
{
    (void)ch; /* bounded by the connection's high water and its stuck check */
}

static const channel_ops_t sip_channel_ops = {
    .on_open = sip_on_open,
    .on_frame = sip_on_frame,
    .on_frame_too_large = sip_on_frame_too_large,
    .on_close = sip_on_close,
    .on_output = sip_on_output,
};

/* ---- listener ---- */

static void sip_peer_address(sip_conn_t *c)
{
    char host[sizeof(c->peer)];
    snprintf(host, sizeof(host), "%s", c->peer);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    throttle_address_key(host, c->addr, sizeof(c->addr));
}

/* Open connections from c's address (c included). */
static long sip_count_address(const sip_server_t *sv, const sip_conn_t *c)
{
    long n = 0;
    for (const sip_conn_t *o = sv->conns; o; o = o->next)
        if (!o->closed && !o->ch.closing && strcmp(o->addr, c->addr) == 0)
            n++;
    return n;
}

static void sip_accept(sip_server_t *sv)
{
    server_t *srv = sv->srv;
    sip_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_error(0, "out of memory accepting a SIP2 connection");
        return;
    }
    c->sv = sv;
    c->srv = srv;
    c->id = ++srv->next_conn_id;
    c->refs = 2; /* the channel and the timer */
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->next = sv->conns;
    if (sv->conns)
        sv->conns->prev = c;
    sv->conns = c;
    sv->nconns++;
    int rc =
        channel_accept(&c->ch, srv->loop, (uv_stream_t *)&sv->listener, sv->tls, &sip_channel_ops,
                       SIP2_MAX_MESSAGE, (size_t)srv->cfg.write_high_water, c);
    if (rc < 0) {
        log_warn(c->id, "SIP2 accept failed: %s", uv_strerror(rc));
        if (!c->ch.tcp_ready)
            sip_on_close(&c->ch, "accept failed");
        return;
    }
    channel_set_lines(&c->ch, '\r');
    channel_peer_name(&c->ch, c->peer, sizeof(c->peer));
    sip_peer_address(c);
    c->accepted_at = c->last_active_at = uv_now(srv->loop);
    if (sv->nconns > srv->cfg.sip_max_connections) {
        log_warn(c->id, "refusing SIP2 %s: %ld connections is the limit", c->peer,
                 srv->cfg.sip_max_connections);
        sip_conn_close(c, "connection limit reached");
        return;
    }
    /* One host must not hold every slot (pre-login ones live sip_login_timeout_s). */
    if (sip_count_address(sv, c) > srv->cfg.max_connections_per_address) {
        log_warn(c->id, "refusing SIP2 %s: %ld connections from one address is the limit", c->peer,
                 srv->cfg.max_connections_per_address);
        sip_conn_close(c, "too many connections from this address");
        return;
    }
    uint64_t tick = sip_tick_ms(&srv->cfg);
    uv_timer_start(&c->timer, sip_tick, tick, tick);
}

static void sip_on_connection(uv_stream_t *listener, int status)
{
    sip_server_t *sv = listener->data;
    if (status < 0) {
        log_warn(0, "SIP2 accept: %s", uv_strerror(status));
        return;
    }
    if (sv->stopping)
        return;
    sip_accept(sv);
}

static int sip_listen(sip_server_t *sv)
{
    server_t *srv = sv->srv;
    struct sockaddr_storage addr;
    const char *host = srv->cfg.sip_listen_host;
    int port = (int)srv->cfg.sip_listen_port;
    int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                               : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc != 0) {
        log_error(0, "sip_listen_host '%s' is not an IP address", host);
        return -1;
    }
    uv_tcp_init(srv->loop, &sv->listener);
    sv->listener.data = sv;
    sv->listening = true;
    rc = uv_tcp_bind(&sv->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&sv->listener, 511, sip_on_connection);
    if (rc != 0) {
        log_error(0, "cannot listen for SIP2 on %s:%d: %s", host, port, uv_strerror(rc));
        return -1;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&sv->listener, (struct sockaddr *)&bound, &len);
    sv->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    log_info(0, "SIP2 listening on %s port %d (%s)", host, sv->port, sv->tls ? "TLS" : "plain TCP");
    return 0;
}

int sip_start(server_t *srv)
{
    if (srv->cfg.sip_listen_port == 0)
        return 0;
    sip_server_t *sv = calloc(1, sizeof(*sv));
    if (sv == NULL) {
        log_error(0, "out of memory starting the SIP2 listener");
        return -1;
    }
    sv->srv = srv;
    srv->sip = sv;
    if (srv->cfg.sip_tls) {
        char err[512];
        /* The daemon's certificate; kiosks have no client certificates. */
        sv->tls =
            tls_server_ctx_new(srv->cfg.tls_cert, srv->cfg.tls_key, NULL, false, err, sizeof(err));
        if (sv->tls == NULL) {
            log_error(0, "SIP2 TLS: %s", err);
            return -1;
        }
    } else if (strcmp(srv->cfg.sip_listen_host, "127.0.0.1") != 0 &&
               strcmp(srv->cfg.sip_listen_host, "::1") != 0) {
        log_warn(0,
                 "sip_tls = false on %s: SIP2 logins and patron PINs cross the network in "
                 "clear",
                 srv->cfg.sip_listen_host);
    }
    int rc = sip_listen(sv);
    if (rc == 0)
        sip_offset_refresh(sv);
    return rc;
}

bool sip_tls_wanted(const server_t *srv)
{
    /* From the running settings (both need a restart), not from whether the listener
     * exists yet: a reload during startup must still build the context. */
    return srv->cfg.sip_tls && srv->cfg.sip_listen_port != 0;
}

void sip_tls_replace(server_t *srv, SSL_CTX *tls)
{
    struct sip_server *sv = srv->sip;
    /* Never NULL over a context: a TLS port must not fall back to plain TCP. */
    if (sv == NULL || sv->tls == NULL || tls == NULL) {
        if (tls)
            SSL_CTX_free(tls);
        return;
    }
    SSL_CTX_free(sv->tls); /* connections open on it hold their own references */
    sv->tls = tls;
}

static void sip_listener_closed(uv_handle_t *h)
{
    (void)h;
}

void sip_stop(server_t *srv)
{
    sip_server_t *sv = srv->sip;
    if (sv == NULL || sv->stopping)
        return;
    sv->stopping = true;
    if (sv->listening) {
        uv_close((uv_handle_t *)&sv->listener, sip_listener_closed);
        sv->listening = false;
    }
    sip_conn_t *next;
    for (sip_conn_t *c = sv->conns; c; c = next) {
        next = c->next;
        if (!c->busy)
            sip_conn_close_after_flush(c, "server shutting down");
    }
}

void sip_abort(server_t *srv)
{
    sip_server_t *sv = srv->sip;
    if (sv == NULL)
        return;
    sip_conn_t *next;
    for (sip_conn_t *c = sv->conns; c; c = next) {
        next = c->next;
        sip_conn_close(c, "forced shutdown");
    }
}

/* Close c once its queued answers are out, for `why`. */
static void sip_end_session(sip_conn_t *c, const char *why)
{
    log_info(c->id, "ending the SIP2 session of %s on %s: %s", c->session.username, c->peer, why);
    sip_conn_close_after_flush(c, why);
}

void sip_end_sessions(server_t *srv, int64_t staff_id, const char *why)
{
    sip_server_t *sv = srv->sip;
    if (sv == NULL)
        return;
    sip_conn_t *next;
    for (sip_conn_t *c = sv->conns; c; c = next) {
        next = c->next;
        if (!c->closed && c->session.logged_in && c->session.staff_id == staff_id)
            sip_end_session(c, why);
    }
}

void sip_end_sessions_named(server_t *srv, const char *username, const char *why)
{
    sip_server_t *sv = srv->sip;
    if (sv == NULL || username == NULL)
        return;
    sip_conn_t *next;
    for (sip_conn_t *c = sv->conns; c; c = next) {
        next = c->next;
        if (!c->closed && c->session.logged_in && strcmp(c->session.username, username) == 0)
            sip_end_session(c, why);
    }
}

bool sip_gone(const server_t *srv)
{
    return srv->sip == NULL || srv->sip->nconns == 0;
}

void sip_free(server_t *srv)
{
    sip_server_t *sv = srv->sip;
    if (sv == NULL)
        return;
    CHECK(sv->nconns == 0);
    if (sv->tls)
        SSL_CTX_free(sv->tls);
    free(sv);
    srv->sip = NULL;
}

int sip_port(const server_t *srv)
{
    return srv->sip ? srv->sip->port : 0;
}
