/*
 * notices: the daemon's jobs for the notice queue (sql/rules/notices.sql).
 *
 * Two timers on the loop start runs:
 *   - every jobs_interval_s (first a few seconds after start): the daily work,
 *     holds_daily() (shelf expiry, due notices queued, clean-up), then a send pass;
 *   - every notice_send_interval_s: a send pass alone, so a hold-ready notice
 *     queued by a checkin goes out within a minute.
 * A NoticeRun request starts a run of both at once and waits for its counts.
 *
 * A send pass, when smtp_host is set and email notices are pending: connect
 * to the relay first (an unreachable relay costs no notice an attempt), then
 * claim batches of 50 with notice_claim_email, send each over the one
 * connection, record each with notice_done (failed for good after 5
 * attempts, by the SQL), and say QUIT. SMS and phone notices are not sent:
 * staff export them (NoticeList with export).
 *
 * One run at a time: a run asked for while one is going starts when it ends
 * (requests waiting for it are answered then). Everything goes through the
 * asynchronous pool and smtp.c; nothing blocks the loop.
 *
 * Shutdown: notices_stop() closes the timers; a run in progress finishes the
 * message in hand, puts the rest of its batch back in the queue, says QUIT,
 * and then tells the server (server_jobs_gone), which closes the pool only
 * after that. notices_abort() (the shutdown timeout, or a second signal)
 * drops the relay connection at once; the claimed notices stay 'sending'
 * and holds_daily() puts them back in the queue after 10 minutes (the one in
 * hand may then be delivered twice).
 */
#ifndef CARREL_NOTICES_H
#define CARREL_NOTICES_H

#include <stdbool.h>

#include "carrel.pb-c.h"

typedef struct server server_t;
typedef struct notices notices_t;

typedef struct notices_result {
    bool ok; /* false: status, reason and message say why */
    Carrel__Status status;
    const char *reason;
    const char *message;
    int generated;     /* notices queued by holds_daily() */
    int expired_holds; /* holds expired by holds_daily() */
    int sent;          /* email notices the relay took */
    /* Email notices not sent in this run: refused by the relay or lost with
     * the connection (retried later, failed for good after 5 attempts), or,
     * when the relay cannot be reached at all, every one pending then. */
    int failed;
} notices_result_t;

typedef void (*notices_run_cb)(const notices_result_t *r, void *arg);

struct server_config;

void notices_register_statements(void);
/* Check the smtp settings and start the timers (after the pool). 0, or -1 (logged). */
__attribute__((warn_unused_result)) int notices_start(server_t *srv);
/*
 * Check the smtp settings of cfg (as notices_start does) and read the relay
 * password; safe on a worker thread (a reload). 0 with *password (NULL when
 * there is none), or -1 with a sentence in err.
 */
__attribute__((warn_unused_result)) int
notices_check_settings(const struct server_config *cfg, char **password, char *err, size_t errlen);
/* A reload applied new smtp settings: take the password read with them (may be NULL). */
void notices_reload(notices_t *n, char *password);
/* Run the daily work and a send pass now (or after the run in progress); cb gets the counts.
 * Returns -1 without calling cb when the jobs are stopping. */
__attribute__((warn_unused_result)) int notices_run(notices_t *n, notices_run_cb cb, void *arg);
/* Shutdown: see above. server_jobs_gone(srv) is called once the pool may close. */
void notices_stop(notices_t *n);
/* Shutdown timeout: stop waiting for the relay. */
void notices_abort(notices_t *n);
/* True once the jobs no longer need the database pool (stopped or aborted), or never ran. */
bool notices_gone(const notices_t *n);

#endif
