/*
 * notices: the daily job and the email sender (see notices.h), and the two
 * requests staff use: NoticeList (with the SMS/phone export) and NoticeRun.
 *
 * A run is a chain of callbacks, one step at a time:
 *
 *   holds_daily() ─► count pending email ─► smtp_open ─► claim 50 ─► send one ─► notice_done ─┐
 *                                                          ▲           ▲                        │
 *                                                          │           └──── next in batch ◄────┤
 *                                                          └───────── batch was full ◄──────────┘
 *   ... ─► (stopping or connection lost: put the unsent rest back) ─► QUIT ─► answer waiters
 *
 * smtp_open starts the mail thread only; the first message connects. When
 * the relay cannot be reached (SMTP_UNREACHED: no connection, TLS or login
 * failed), the message in hand goes back with the rest: an outage costs no
 * notice an attempt.
 *
 * Every step checks `aborted` first: after notices_abort() callbacks only
 * unwind, and the struct is freed once the last of them has come back.
 */
#include "notices.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "handlers.h"
#include "log.h"
#include "metrics.h"
#include "pgtext.h"
#include "reply.h"
#include "server.h"
#include "smtp.h"
#include "util.h"

#define NOTICE_BATCH        50
#define NOTICE_BATCHES_PASS 20   /* at most 1000 messages a pass; the next tick goes on */
#define NOTICE_FIRST_RUN_MS 5000 /* the first daily run, after start */
#define NOTICE_LIST_DEFAULT 100
#define NOTICE_LIST_MAX     1000

/* ---------------------------------------------------------------- statements */

#define TS(x) "api_time(" x ")"

/* The jobs' statements: the jobs are not requests, so their callbacks take
 * the raw db result (the columns are still named here). */
enum { DAILY_EXPIRED_HOLDS, DAILY_GENERATED, DAILY_NCOLS };
static const db_stmt_t stmt_daily = {
    "notices_daily",
    "SELECT expired_holds, generated FROM holds_daily()",
};

enum { PENDING_COUNT, PENDING_NCOLS };
static const db_stmt_t stmt_pending = {
    "notices_pending_email",
    "SELECT count(*) FROM notice WHERE channel = 'email' AND status = 'pending'",
};

/* Oldest first: UPDATE ... RETURNING gives no order of its own. */
enum { CLAIM_ID, CLAIM_ADDRESS, CLAIM_SUBJECT, CLAIM_BODY, CLAIM_NCOLS };
static const db_stmt_t stmt_claim = {
    "notices_claim_email",
    "SELECT id, address, subject, body FROM notice_claim_email($1) ORDER BY id",
};

static const db_stmt_t stmt_done = {
    "notices_done",
    "SELECT notice_done($1, $2, $3)",
};

/* Claimed but never tried (shutdown, lost connection): back to the queue. */
static const db_stmt_t stmt_release = {
    "notices_release",
    "SELECT notice_release($1::bigint[])",
};

/* NOTICE_COLUMNS by name, in their order. A ticket's reply may have no
 * patron (only an address): the card is then NULL, hence the LEFT JOINs. */
enum {
    NOTICE_ID,
    NOTICE_KIND,
    NOTICE_CHANNEL,
    NOTICE_CARD,
    NOTICE_ADDRESS,
    NOTICE_SUBJECT,
    NOTICE_BODY,
    NOTICE_STATUS,
    NOTICE_CREATED_AT,
    NOTICE_SENT_AT,
    NOTICE_ERROR,
    NOTICE_NCOLS
};
#define NOTICE_COLUMNS(n)                                                                          \
    n ".id, " n ".kind, " n ".channel, p.card, " n ".address, " n ".subject, " n ".body, " n       \
      ".status, " TS(n ".created_at") ", " TS(n ".sent_at") ", " n ".error"

/* A ticket reply may have no patron (only a contact address): its card is NULL. */
static const reply_stmt_t stmt_list = REPLY_STMT(
    "notices_list", NOTICE_NCOLS,
    "SELECT " NOTICE_COLUMNS(
        "n") " FROM notice n LEFT JOIN patron p ON p.id = n.patron_id"
             " WHERE n.status = $1 AND ($2::text IS NULL OR n.channel = $2)"
             " ORDER BY CASE WHEN n.status IN ('pending', 'sending') THEN n.id ELSE -n.id END"
             " LIMIT $3");

/* What an export takes, a page at a time (notice_export_page): nothing is
 * marked here; the client marks them (stmt_mark) once its file is written. */
static const reply_stmt_t stmt_export =
    REPLY_STMT("notices_export", NOTICE_NCOLS,
               "SELECT " NOTICE_COLUMNS("n") " FROM notice_export_page($1, $2, $3) n"
                                             " LEFT JOIN patron p ON p.id = n.patron_id"
                                             " ORDER BY n.id");

enum { MARK_COUNT, MARK_NCOLS };
static const reply_stmt_t stmt_mark = REPLY_STMT(
    "notices_mark_exported", MARK_NCOLS, "SELECT notice_mark_exported($1, $2, $3::bigint[])");

void notices_register_statements(void)
{
    static const db_stmt_t *const all[] = {&stmt_daily,     &stmt_pending, &stmt_claim,
                                           &stmt_done,      &stmt_release, &stmt_list.db,
                                           &stmt_export.db, &stmt_mark.db};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        db_stmt_register(all[i]);
}

/* ---------------------------------------------------------------- state */

typedef struct notices_waiter {
    notices_run_cb cb;
    void *arg;
    struct notices_waiter *next;
} notices_waiter_t;

typedef struct notice_job {
    int64_t id;
    char *address;
    char *subject;
    char *body;
} notice_job_t;

struct notices {
    server_t *srv;
    uv_timer_t daily_timer;
    uv_timer_t send_timer;
    int open_timers;
    bool stopping; /* no new runs */
    bool aborted;  /* callbacks only unwind */
    bool gone;     /* the server may close the pool */
    int db_inflight;
    int holds;           /* > 0 while a function of ours is on the stack and needs n */
    smtp_client_t *smtp; /* open or closing */
    char *smtp_password; /* read from smtp_password_file at start */

    /* The run in progress. */
    bool running;
    bool run_daily, run_send;
    bool want_daily, want_send; /* asked for since: the next run */
    notices_waiter_t *waiters, *next_waiters;
    notices_result_t result;
    char error[300];

    /* The send pass. */
    int64_t pending;
    notice_job_t *batch;
    int nbatch, cur, batches;
    bool cur_ok;
    int tried; /* messages handed to the relay in this run */

    /* Said once, until things change. */
    bool said_no_smtp;
    bool relay_down;
    bool db_down;
};

static void notices_run_begin(notices_t *n);
static void notices_run_end(notices_t *n);
static void notices_step_send(notices_t *n);
static void notices_claim(notices_t *n);
static void notices_send_next(notices_t *n);
static void notices_finish_send(notices_t *n);

static void notices_free_batch(notices_t *n)
{
    for (int i = 0; i < n->nbatch; i++) {
        free(n->batch[i].address);
        free(n->batch[i].subject);
        free(n->batch[i].body);
    }
    free(n->batch);
    n->batch = NULL;
    n->nbatch = n->cur = 0;
}

static void notices_maybe_free(notices_t *n)
{
    if (!n->gone || n->open_timers > 0 || n->db_inflight > 0 || n->holds > 0 || n->smtp ||
        n->waiters || n->next_waiters)
        return;
    notices_free_batch(n);
    n->srv->notices = NULL;
    if (n->smtp_password)
        memset(n->smtp_password, 0, strlen(n->smtp_password));
    free(n->smtp_password);
    free(n);
}

static int notices_db(notices_t *n, const db_stmt_t *stmt, int nparams, const char *const *values,
                      db_done_cb cb)
{
    n->db_inflight++; /* before: should the callback ever come at once, it finds it counted */
    /* holds_daily() scans every open loan, hold and notice: its time grows with the library. */
    int rc = stmt == &stmt_daily
                 ? db_exec_long(n->srv->db, stmt, nparams, values, NULL, NULL, cb, n)
                 : db_exec(n->srv->db, stmt, nparams, values, NULL, NULL, cb, n);
    if (rc != 0)
        n->db_inflight--;
    return rc;
}

/* The first lines of every statement callback: false when the run is over. */
static bool notices_db_back(notices_t *n)
{
    n->db_inflight--;
    if (n->aborted) {
        notices_maybe_free(n);
        return false;
    }
    return true;
}

/*
 * Tell the server the pool may close. That can close it at once, and the pool
 * then fails our statements still queued, whose callbacks must not free n
 * under our feet: hence the hold.
 */
static void notices_say_gone(notices_t *n)
{
    n->gone = true;
    n->holds++;
    server_jobs_gone(n->srv);
    n->holds--;
    notices_maybe_free(n);
}

static void notices_db_trouble(notices_t *n, const char *what, const char *why)
{
    if (!n->db_down)
        log_warn(0, "notices: %s: %s", what, why);
    n->db_down = true;
}

static const char *notices_exec_reason(int rc)
{
    return rc == DB_EXEC_OVERLOADED ? "overloaded"
           : rc == DB_EXEC_CLOSING  ? "shutting_down"
                                    : "database";
}

static void notices_answer(notices_waiter_t **list, const notices_result_t *r)
{
    notices_waiter_t *w = *list;
    *list = NULL;
    while (w) {
        notices_waiter_t *next = w->next;
        w->cb(r, w->arg);
        free(w);
        w = next;
    }
}

static void notices_answer_shutdown(notices_waiter_t **list)
{
    notices_result_t r = {.ok = false,
                          .status = CARREL__STATUS__STATUS_UNAVAILABLE,
                          .reason = "shutting_down",
                          .message = "The server is shutting down; the notice run did not finish."};
    notices_answer(list, &r);
}

/* ---------------------------------------------------------------- runs */

static void notices_want(notices_t *n, bool daily, bool send)
{
    n->want_daily |= daily;
    n->want_send |= send;
    if (!n->running)
        notices_run_begin(n);
}

static void notices_daily_done(const db_result_t *r, void *arg)
{
    db_result_t fit;
    r = db_fit(r, DAILY_NCOLS, &fit);
    notices_t *n = arg;
    if (!notices_db_back(n))
        return;
    if (r->status != DB_OK) {
        bool down = r->status == DB_UNAVAILABLE ||
                    (r->sqlstate &&
                     (strncmp(r->sqlstate, "08", 2) == 0 || strncmp(r->sqlstate, "57", 2) == 0));
        snprintf(n->error, sizeof(n->error), "The daily notice job failed: %s",
                 r->message ? r->message : "database unavailable");
        if (down) {
            log_warn(0, "notices: daily job: %s", r->message ? r->message : "database unavailable");
        } else {
            log_error(0, "notices: daily job: %s (%s)", r->message ? r->message : "?",
                      r->sqlstate ? r->sqlstate : "-");
        }
        n->result.ok = false;
        n->result.status =
            down ? CARREL__STATUS__STATUS_UNAVAILABLE : CARREL__STATUS__STATUS_INTERNAL;
        n->result.reason = down ? "database" : "internal";
        n->result.message = n->error;
        notices_run_end(n);
        return;
    }
    n->result.expired_holds = db_int32(r->res, 0, DAILY_EXPIRED_HOLDS);
    n->result.generated = db_int32(r->res, 0, DAILY_GENERATED);
    if (n->result.expired_holds || n->result.generated)
        log_info(0, "notices: daily job: %d hold(s) expired, %d notice(s) queued",
                 n->result.expired_holds, n->result.generated);
    notices_step_send(n);
}

static void notices_run_begin(notices_t *n)
{
    n->running = true;
    n->run_daily = n->want_daily;
    n->run_send = n->want_send;
    n->want_daily = n->want_send = false;
    n->waiters = n->next_waiters;
    n->next_waiters = NULL;
    memset(&n->result, 0, sizeof(n->result));
    n->result.ok = true;
    n->batches = 0;
    n->pending = 0;
    n->tried = 0;
    if (!n->run_daily) {
        notices_step_send(n);
        return;
    }
    int rc = notices_db(n, &stmt_daily, 0, NULL, notices_daily_done);
    if (rc != 0) {
        log_warn(0, "notices: daily job not started: %s", notices_exec_reason(rc));
        n->result.ok = false;
        n->result.status = CARREL__STATUS__STATUS_UNAVAILABLE;
        n->result.reason = notices_exec_reason(rc);
        n->result.message = "The database is not available; the notice run did not happen.";
        notices_run_end(n);
    }
}

static void notices_run_end(notices_t *n)
{
    if (n->tried > 0) /* not every minute while the relay is down */
        log_info(0, "notices: %d email notice(s) sent, %d not sent", n->result.sent,
                 n->result.failed);
    n->running = false;
    notices_result_t r = n->result;
    notices_answer(&n->waiters, &r);
    if (n->stopping) {
        notices_say_gone(n);
        return;
    }
    if (n->want_daily || n->want_send)
        notices_run_begin(n);
}

/* ---- the send pass ---- */

static void notices_smtp_closed(void *arg)
{
    notices_t *n = arg;
    n->smtp = NULL;
    if (n->aborted) {
        notices_maybe_free(n);
        return;
    }
    notices_run_end(n);
}

static smtp_tls_t notices_tls(const char *name)
{
    return strcmp(name, "tls") == 0    ? SMTP_TLS_IMPLICIT
           : strcmp(name, "none") == 0 ? SMTP_TLS_NONE
                                       : SMTP_TLS_STARTTLS;
}

static void notices_pending_done(const db_result_t *r, void *arg)
{
    db_result_t fit;
    r = db_fit(r, PENDING_NCOLS, &fit);
    notices_t *n = arg;
    if (!notices_db_back(n))
        return;
    if (r->status != DB_OK) {
        notices_db_trouble(n, "cannot count pending email", r->message ? r->message : "?");
        notices_run_end(n);
        return;
    }
    n->db_down = false;
    n->pending = db_int64(r->res, 0, PENDING_COUNT);
    metrics_notices_pending(n->pending);
    if (n->pending == 0 || n->stopping) {
        notices_run_end(n);
        return;
    }
    const struct server_config *cfg = &n->srv->cfg;
    /* A reload may have unset smtp_host since notices_step_send looked. */
    if (cfg->smtp_host == NULL || cfg->smtp_host[0] == '\0') {
        if (!n->said_no_smtp)
            log_info(0, "notices: smtp_host is not set: email notices stay pending");
        n->said_no_smtp = true;
        notices_run_end(n);
        return;
    }
    smtp_settings_t s = {.host = cfg->smtp_host,
                         .port = (int)cfg->smtp_port,
                         .tls = notices_tls(cfg->smtp_tls),
                         .user = cfg->smtp_user,
                         .password = n->smtp_password,
                         .ca_file = cfg->smtp_ca_file,
                         .helo = cfg->smtp_helo,
                         .from = cfg->smtp_from,
                         .timeout_ms = (unsigned)cfg->smtp_timeout_s * 1000u};
    char err[300];
    n->smtp = smtp_open(n->srv->loop, &s, err, sizeof(err));
    if (n->smtp == NULL) {
        log_error(0, "notices: cannot start sending email: %s", err);
        notices_run_end(n);
        return;
    }
    notices_claim(n);
}

static void notices_step_send(notices_t *n)
{
    if (!n->run_send || n->stopping) {
        notices_run_end(n);
        return;
    }
    if (n->srv->cfg.smtp_host == NULL || n->srv->cfg.smtp_host[0] == '\0') {
        if (!n->said_no_smtp)
            log_info(0, "notices: smtp_host is not set: email notices stay pending");
        n->said_no_smtp = true;
        notices_run_end(n);
        return;
    }
    int rc = notices_db(n, &stmt_pending, 0, NULL, notices_pending_done);
    if (rc != 0) {
        notices_db_trouble(n, "cannot count pending email", notices_exec_reason(rc));
        notices_run_end(n);
    }
}

static char *notices_strdup(const PGresult *res, int row, int col)
{
    return util_xstrdup(db_text(res, row, col));
}

static void notices_claim_done(const db_result_t *r, void *arg)
{
    db_result_t fit;
    r = db_fit(r, CLAIM_NCOLS, &fit);
    notices_t *n = arg;
    if (!notices_db_back(n))
        return;
    if (r->status != DB_OK) {
        notices_db_trouble(n, "cannot claim email notices", r->message ? r->message : "?");
        notices_finish_send(n);
        return;
    }
    int rows = PQntuples(r->res);
    n->batches++;
    if (rows == 0) {
        notices_finish_send(n);
        return;
    }
    n->batch = util_xcalloc((size_t)rows, sizeof(*n->batch));
    for (int i = 0; i < rows; i++) {
        n->batch[i].id = db_int64(r->res, i, CLAIM_ID);
        n->batch[i].address = notices_strdup(r->res, i, CLAIM_ADDRESS);
        n->batch[i].subject = notices_strdup(r->res, i, CLAIM_SUBJECT);
        n->batch[i].body = notices_strdup(r->res, i, CLAIM_BODY);
    }
    n->nbatch = rows;
    n->cur = 0;
    notices_send_next(n);
}

static void notices_claim(notices_t *n)
{
    if (n->stopping || n->batches >= NOTICE_BATCHES_PASS || smtp_broken(n->smtp)) {
        notices_finish_send(n);
        return;
    }
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", NOTICE_BATCH);
    const char *values[1] = {limit};
    int rc = notices_db(n, &stmt_claim, 1, values, notices_claim_done);
    if (rc != 0) {
        notices_db_trouble(n, "cannot claim email notices", notices_exec_reason(rc));
        notices_finish_send(n);
    }
}

static void notices_recorded(const db_result_t *r, void *arg)
{
    notices_t *n = arg;
    if (!notices_db_back(n))
        return;
    const notice_job_t *job = &n->batch[n->cur];
    if (r->status != DB_OK)
        log_warn(0, "notices: notice %lld was %s but that cannot be recorded (%s)%s",
                 (long long)job->id, n->cur_ok ? "sent" : "not sent", r->message ? r->message : "?",
                 n->cur_ok ? ": it may be sent again" : "");
    n->cur++;
    notices_send_next(n);
}

/* Record the outcome of the notice in hand with notice_done. */
static void notices_record(notices_t *n, bool ok, const char *error)
{
    const notice_job_t *job = &n->batch[n->cur];
    n->cur_ok = ok;
    n->tried++;
    metrics_notice("email", ok); /* the server sends email only; desks export the rest */
    if (ok) {
        n->result.sent++;
        log_debug(0, "notices: notice %lld sent", (long long)job->id);
    } else {
        n->result.failed++;
        log_warn(0, "notices: notice %lld not sent: %s", (long long)job->id, error);
    }
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)job->id);
    const char *values[3] = {id, ok ? "true" : "false", ok ? NULL : error};
    int rc = notices_db(n, &stmt_done, 3, values, notices_recorded);
    if (rc != 0) {
        log_warn(0, "notices: notice %lld: outcome not recorded (%s)", (long long)job->id,
                 notices_exec_reason(rc));
        n->cur++;
        notices_send_next(n);
    }
}

static void notices_release_rest(notices_t *n);

static void notices_sent(smtp_client_t *c, smtp_outcome_t outcome, const char *error, void *arg)
{
    (void)c;
    notices_t *n = arg;
    if (outcome == SMTP_UNREACHED) {
        /* The relay never saw it: the whole batch, this one too, goes back untried. */
        metrics_notice_relay_failed("email");
        if (!n->relay_down)
            log_warn(0, "notices: %lld email notice(s) wait: %s", (long long)n->pending, error);
        n->relay_down = true;
        int64_t waiting = n->tried == 0 ? n->pending : n->nbatch - n->cur;
        n->result.failed += (int)(waiting > 1000000 ? 1000000 : waiting);
        notices_release_rest(n);
        return;
    }
    if (n->relay_down)
        log_info(0, "notices: the SMTP relay %s:%ld answers again", n->srv->cfg.smtp_host,
                 n->srv->cfg.smtp_port);
    n->relay_down = false;
    notices_record(n, outcome == SMTP_SENT, error);
}

static void notices_released(const db_result_t *r, void *arg)
{
    notices_t *n = arg;
    if (!notices_db_back(n))
        return;
    if (r->status != DB_OK)
        log_warn(0, "notices: cannot put %d unsent notice(s) back in the queue: %s",
                 n->nbatch - n->cur, r->message ? r->message : "?");
    notices_finish_send(n);
}

/* The notices of the batch not tried yet go back to the queue. */
static void notices_release_rest(notices_t *n)
{
    size_t cap = (size_t)(n->nbatch - n->cur) * 21 + 3, len = 0;
    char *ids = util_xcalloc(cap, 1);
    ids[len++] = '{';
    for (int i = n->cur; i < n->nbatch; i++)
        len += (size_t)snprintf(ids + len, cap - len, "%s%lld", i > n->cur ? "," : "",
                                (long long)n->batch[i].id);
    ids[len++] = '}';
    const char *values[1] = {ids};
    int rc = notices_db(n, &stmt_release, 1, values, notices_released);
    free(ids);
    if (rc != 0) {
        log_warn(0, "notices: cannot put %d unsent notice(s) back in the queue (%s)",
                 n->nbatch - n->cur, notices_exec_reason(rc));
        notices_finish_send(n);
    }
}

static void notices_send_next(notices_t *n)
{
    if (n->cur >= n->nbatch) {
        bool full = n->nbatch == NOTICE_BATCH;
        notices_free_batch(n);
        if (full)
            notices_claim(n);
        else
            notices_finish_send(n);
        return;
    }
    if (n->stopping || smtp_broken(n->smtp)) {
        notices_release_rest(n);
        return;
    }
    const notice_job_t *job = &n->batch[n->cur];
    const char *from = n->srv->cfg.smtp_from;
    const char *domain = strchr(from, '@');
    char message_id[300];
    snprintf(message_id, sizeof(message_id), "notice-%lld.%lld@%s", (long long)job->id,
             (long long)util_now_ms(), domain ? domain + 1 : "localhost");
    smtp_message_t m = {
        .to = job->address, .subject = job->subject, .body = job->body, .message_id = message_id};
    char err[300];
    if (smtp_send(n->smtp, &m, notices_sent, n, err, sizeof(err)) != 0)
        notices_record(n, false, err);
}

/* The pass is over (or cut short): say goodbye to the relay, then end the run. */
static void notices_finish_send(notices_t *n)
{
    notices_free_batch(n);
    if (n->smtp)
        smtp_close(n->smtp, true, notices_smtp_closed, n);
    else
        notices_run_end(n);
}

/* ---------------------------------------------------------------- timers, lifecycle */

static void notices_daily_tick(uv_timer_t *t)
{
    notices_want(t->data, true, true);
}

static void notices_send_tick(uv_timer_t *t)
{
    notices_want(t->data, false, true);
}

static void notices_timer_closed(uv_handle_t *h)
{
    notices_t *n = h->data;
    n->open_timers--;
    notices_maybe_free(n);
}

static bool notices_helo_ok(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 255)
        return false;
    for (; *s; s++)
        if (*s <= 0x20 || *s >= 0x7f)
            return false;
    return true;
}

/*
 * The relay password: the first line of smtp_password_file, read at start
 * (before the loop runs) and again by each reload (on the thread pool). A
 * file others may read is a leak waiting to happen: said, not refused, as
 * the operator may have reasons (a group).
 */
static int notices_read_password(const struct server_config *cfg, char **out, char *err,
                                 size_t errlen)
{
    *out = NULL;
    bool user = cfg->smtp_user && cfg->smtp_user[0];
    bool file = cfg->smtp_password_file && cfg->smtp_password_file[0];
    if (user != file) {
        snprintf(err, errlen, "smtp_user and smtp_password_file go together: set both or neither");
        return -1;
    }
    if (!file)
        return 0;
    struct stat st;
    if (stat(cfg->smtp_password_file, &st) != 0) {
        snprintf(err, errlen, "smtp_password_file %s: %s", cfg->smtp_password_file,
                 strerror(errno));
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        log_warn(0, "smtp_password_file %s can be read by others (mode %03o): chmod 600 it",
                 cfg->smtp_password_file, (unsigned)(st.st_mode & 0777));
    char *pw = util_read_file(cfg->smtp_password_file, 4096);
    if (pw == NULL) {
        snprintf(err, errlen, "cannot read smtp_password_file %s", cfg->smtp_password_file);
        return -1;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    if (pw[0] == '\0') {
        snprintf(err, errlen, "smtp_password_file %s is empty", cfg->smtp_password_file);
        free(pw);
        return -1;
    }
    *out = pw;
    return 0;
}

static int notices_check_tls(const struct server_config *cfg, char *err, size_t errlen)
{
    const char *tls = cfg->smtp_tls;
    if (strcmp(tls, "starttls") != 0 && strcmp(tls, "tls") != 0 && strcmp(tls, "none") != 0) {
        snprintf(err, errlen, "smtp_tls '%s' must be starttls, tls or none", tls);
        return -1;
    }
    if (strcmp(tls, "none") == 0)
        log_warn(0,
                 "smtp_tls = none: email notices%s go to %s in clear; only for a relay on "
                 "this machine",
                 cfg->smtp_user && cfg->smtp_user[0] ? " and the relay password" : "",
                 cfg->smtp_host);
    return 0;
}

int notices_check_settings(const struct server_config *cfg, char **password, char *err,
                           size_t errlen)
{
    *password = NULL;
    bool email = cfg->smtp_host && cfg->smtp_host[0];
    if (!email)
        return 0;
    if (!smtp_address_ok(cfg->smtp_from)) {
        snprintf(err, errlen, "smtp_from '%s' is not an email address (name@example.org)",
                 cfg->smtp_from);
        return -1;
    }
    if (!notices_helo_ok(cfg->smtp_helo)) {
        snprintf(err, errlen, "smtp_helo '%s' must be a host name (no spaces)", cfg->smtp_helo);
        return -1;
    }
    if (notices_check_tls(cfg, err, errlen) != 0)
        return -1;
    return notices_read_password(cfg, password, err, errlen);
}

void notices_reload(notices_t *n, char *password)
{
    if (n == NULL) {
        if (password) {
            OPENSSL_cleanse(password, strlen(password));
            free(password);
        }
        return;
    }
    if (n->smtp_password) {
        OPENSSL_cleanse(n->smtp_password, strlen(n->smtp_password));
        free(n->smtp_password);
    }
    /* A send pass under way keeps the relay connection it opened (smtp.c copied the
     * settings); the next pass opens one with these. */
    n->smtp_password = password;
    n->said_no_smtp = false;
}

int notices_start(server_t *srv)
{
    const struct server_config *cfg = &srv->cfg;
    bool email = cfg->smtp_host && cfg->smtp_host[0];
    char *password = NULL, err[512];
    if (notices_check_settings(cfg, &password, err, sizeof(err)) != 0) {
        log_error(0, "%s", err);
        return -1;
    }
    notices_t *n = util_xcalloc(1, sizeof(*n));
    n->srv = srv;
    n->smtp_password = password;
    srv->notices = n;
    uv_timer_init(srv->loop, &n->daily_timer);
    uv_timer_init(srv->loop, &n->send_timer);
    n->daily_timer.data = n->send_timer.data = n;
    n->open_timers = 2;
    if (cfg->jobs_interval_s > 0) {
        uint64_t every = (uint64_t)cfg->jobs_interval_s * 1000;
        uv_timer_start(&n->daily_timer, notices_daily_tick,
                       every < NOTICE_FIRST_RUN_MS ? every : NOTICE_FIRST_RUN_MS, every);
    }
    if (cfg->notice_send_interval_s > 0) {
        uint64_t every = (uint64_t)cfg->notice_send_interval_s * 1000;
        uv_timer_start(&n->send_timer, notices_send_tick, every, every);
    }
    char every_daily[48], every_send[48];
    snprintf(every_daily, sizeof(every_daily),
             cfg->jobs_interval_s > 0 ? "every %ld s" : "on request only", cfg->jobs_interval_s);
    snprintf(every_send, sizeof(every_send),
             cfg->notice_send_interval_s > 0 ? "every %ld s" : "with the daily job only",
             cfg->notice_send_interval_s);
    if (email)
        log_info(0, "notices: daily job %s; email %s through %s:%ld (%s%s%s)", every_daily,
                 every_send, cfg->smtp_host, cfg->smtp_port, cfg->smtp_tls,
                 cfg->smtp_user && cfg->smtp_user[0] ? ", login as " : "",
                 cfg->smtp_user && cfg->smtp_user[0] ? cfg->smtp_user : "");
    else
        log_info(0, "notices: daily job %s; no email (smtp_host is not set)", every_daily);
    return 0;
}

int notices_run(notices_t *n, notices_run_cb cb, void *arg)
{
    if (n == NULL || n->stopping)
        return -1;
    notices_waiter_t *w = util_xcalloc(1, sizeof(*w));
    w->cb = cb;
    w->arg = arg;
    notices_waiter_t **tail = &n->next_waiters;
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
    notices_want(n, true, true);
    return 0;
}

void notices_stop(notices_t *n)
{
    if (n->stopping)
        return;
    n->stopping = true;
    n->want_daily = n->want_send = false;
    notices_answer_shutdown(&n->next_waiters);
    uv_timer_stop(&n->daily_timer);
    uv_timer_stop(&n->send_timer);
    uv_close((uv_handle_t *)&n->daily_timer, notices_timer_closed);
    uv_close((uv_handle_t *)&n->send_timer, notices_timer_closed);
    if (!n->running)
        n->gone = true; /* the timers' callbacks free n */
    /* Otherwise the run winds down and notices_run_end says so. */
}

void notices_abort(notices_t *n)
{
    notices_stop(n);
    if (n->aborted || !n->running)
        return;
    log_warn(0, "notices: shutdown timeout: dropping the SMTP connection; claimed notices go "
                "back to the queue after 10 minutes");
    n->aborted = true;
    notices_answer_shutdown(&n->waiters);
    notices_free_batch(n);
    if (n->smtp)
        smtp_close(n->smtp, false, notices_smtp_closed, n);
    notices_say_gone(n);
}

bool notices_gone(const notices_t *n)
{
    return n == NULL || n->gone;
}

/* ---------------------------------------------------------------- requests */

static void notice_list_done(request_t *req, const PGresult *res)
{
    arena_t *a = &req->arena;
    int rows = PQntuples(res);
    Carrel__NoticeListReply *reply = arena_new(a, Carrel__NoticeListReply, 1);
    carrel__notice_list_reply__init(reply);
    reply->notices = arena_new(a, Carrel__Notice *, rows + 1);
    for (int i = 0; i < rows; i++) {
        Carrel__Notice *x = arena_new(a, Carrel__Notice, 1);
        carrel__notice__init(x);
        x->has_id = 1;
        x->id = db_int64(res, i, NOTICE_ID);
        x->kind = reply_text_opt(req, res, i, NOTICE_KIND);
        x->channel = reply_text_opt(req, res, i, NOTICE_CHANNEL);
        x->card = reply_text_opt(req, res, i, NOTICE_CARD);
        x->address = reply_text_opt(req, res, i, NOTICE_ADDRESS);
        x->subject = reply_text_opt(req, res, i, NOTICE_SUBJECT);
        x->body = reply_text_opt(req, res, i, NOTICE_BODY);
        x->status = reply_text_opt(req, res, i, NOTICE_STATUS);
        x->created_at = reply_text_opt(req, res, i, NOTICE_CREATED_AT);
        x->sent_at = reply_text_opt(req, res, i, NOTICE_SENT_AT);
        x->error = reply_text_opt(req, res, i, NOTICE_ERROR);
        reply->notices[reply->n_notices++] = x;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_NOTICES;
    req->resp.notices = reply;
    request_ok(req);
}

void handle_notice_list(request_t *req)
{
    static const char *const statuses[] = {"pending", "sending",  "sent",
                                           "failed",  "exported", NULL};
    static const char *const channels[] = {"email", "sms", "phone", NULL};
    Carrel__NoticeList *m = req->msg->notice_list;
    const char *status = m->status && m->status[0] ? m->status : "pending";
    const char *channel = m->channel && m->channel[0] ? m->channel : NULL;
    bool export = m->has_export && m->export;
    if (!request_one_of(status, statuses)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:status",
                     "The status is pending, sending, sent, failed or exported.");
        return;
    }
    if (channel && !request_one_of(channel, channels)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:channel",
                     "The channel is email, sms or phone.");
        return;
    }
    int limit;
    if (!request_limit(req, m->has_limit, m->limit, NOTICE_LIST_DEFAULT, NOTICE_LIST_MAX,
                       "field:limit", &limit))
        return;
    const char *limit_text = pgtext_int(&req->arena, limit);
    if (export) {
        if (strcmp(status, "pending") != 0) {
            request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:status",
                         "Only pending notices are exported.");
            return;
        }
        if (channel && strcmp(channel, "email") == 0) {
            request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:channel",
                         "Only SMS and phone notices are exported; the server sends email.");
            return;
        }
        const char *values[3] = {channel, limit_text,
                                 pgtext_int(&req->arena, m->has_after_id ? m->after_id : 0)};
        reply_query(req, &stmt_export, 3, values, notice_list_done);
        return;
    }
    const char *values[3] = {status, channel, limit_text};
    reply_query(req, &stmt_list, 3, values, notice_list_done);
}

static void notice_run_done(const notices_result_t *r, void *arg)
{
    request_t *req = arg;
    if (!r->ok) {
        request_fail(req, r->status, r->reason, "%s", r->message);
        return;
    }
    Carrel__NoticeRunReply *reply = arena_new(&req->arena, Carrel__NoticeRunReply, 1);
    carrel__notice_run_reply__init(reply);
    reply->has_generated = reply->has_sent = reply->has_failed = reply->has_expired_holds = 1;
    reply->generated = r->generated;
    reply->sent = r->sent;
    reply->failed = r->failed;
    reply->expired_holds = r->expired_holds;
    log_info(req->conn->id, "%s ran the notice jobs: %d queued, %d sent, %d not sent",
             request_session(req)->username, r->generated, r->sent, r->failed);
    req->resp.body_case = CARREL__RESPONSE__BODY_NOTICE_RUN;
    req->resp.notice_run = reply;
    request_ok(req);
}

void handle_notice_run(request_t *req)
{
    if (notices_run(req->srv->notices, notice_run_done, req) != 0)
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "shutting_down",
                     "The server is shutting down.");
}

static void notice_mark_done(request_t *req, const PGresult *res)
{
    Carrel__NoticeMarkExportedReply *reply =
        arena_new(&req->arena, Carrel__NoticeMarkExportedReply, 1);
    carrel__notice_mark_exported_reply__init(reply);
    reply->has_marked = 1;
    reply->marked = db_int32(res, 0, MARK_COUNT);
    log_info(req->conn->id, "%s marked %d notice(s) exported", request_session(req)->username,
             reply->marked);
    req->resp.body_case = CARREL__RESPONSE__BODY_NOTICE_MARK_EXPORTED;
    req->resp.notice_mark_exported = reply;
    request_ok(req);
}

void handle_notice_mark_exported(request_t *req)
{
    Carrel__NoticeMarkExported *m = req->msg->notice_mark_exported;
    if (m->n_ids == 0 || m->n_ids > NOTICE_LIST_MAX) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:ids",
                     "Mark 1 to %d notices at a time.", NOTICE_LIST_MAX);
        return;
    }
    char **ids = arena_new(&req->arena, char *, m->n_ids);
    for (size_t i = 0; i < m->n_ids; i++)
        ids[i] = pgtext_int(&req->arena, m->ids[i]);
    const char *values[3] = {req->msg->request_key,
                             pgtext_int(&req->arena, request_session(req)->staff_id),
                             pgtext_array_build(&req->arena, ids, m->n_ids)};
    reply_query(req, &stmt_mark, 3, values, notice_mark_done);
}
