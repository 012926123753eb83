/*
 * password: Argon2id hashing and verification (libargon2), always on the
 * libuv thread pool so the loop never spends a quarter second hashing.
 * Copies of passwords are wiped before their memory is released.
 *
 * All work goes through one password_queue_t, which counts the jobs queued or
 * running (so that shutdown can wait for them before it closes the database
 * pool their callbacks use) and bounds the verifications waiting for a
 * thread, so that a crowd of logins cannot fill libuv's thread pool. Hashes
 * (new passwords set by staff) count in `pending` too, so they have their own
 * bound, half of the verifications' (at least 1): administrative requests can
 * never take the whole queue and starve logins.
 */
#ifndef CARREL_PASSWORD_H
#define CARREL_PASSWORD_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

typedef struct password_params {
    unsigned time_cost;
    unsigned memory_kib;
    unsigned parallelism;
} password_params_t;

typedef struct password_work password_work_t;

typedef struct password_queue {
    uv_loop_t *loop;
    int workers;                  /* jobs handed to libuv's pool at once (one per core) */
    int running;                  /* jobs handed to the pool whose callback has not run */
    password_work_t *head, *tail; /* jobs waiting for a worker, oldest first */
    double job_ms;                /* moving average of one job's duration; 0 before the first */
    uint64_t retry_slot_ms;       /* uv_now() of the latest retry time handed out */
    int logins_unqueued;          /* password logins admitted or waiting, not queued yet (auth.c) */
    int told;                     /* connections told a retry time that have not come back */

    int pending;                /* jobs queued or running; their callbacks have not run yet */
    int cancelled_waiting;      /* of those, cancelled while waiting in the list: not ahead */
    int max_verify;             /* verifications allowed in `pending` at once; beyond: refused */
    int hashes;                 /* hashes among `pending` */
    int max_hash;               /* hashes allowed at once: max_verify / 2, at least 1 */
    void (*on_idle)(void *arg); /* called after a callback that left pending at 0 */
    void *idle_arg;
} password_queue_t;

/* Result of a verification given to the callback. */
#define PASSWORD_MATCH     1
#define PASSWORD_MISMATCH  0
#define PASSWORD_BAD_HASH  (-1) /* the stored hash is malformed (or hashing failed) */
#define PASSWORD_CANCELLED (-2) /* password_cancel() came first: nothing was checked */

/* Returned by the *_async functions besides 0 and -1 (out of memory). */
#define PASSWORD_QUEUE_FULL (-2)

/*
 * Verification: ok is one of the PASSWORD_* results above. Hashing: ok is 1
 * and `hash` is the encoded hash (owned by the callee: copy it during the
 * callback), or -1 (or PASSWORD_CANCELLED).
 */
typedef void (*password_cb)(int ok, const char *hash, void *arg);

/* workers: jobs run at once (at least 1; see password_default_workers). */
void password_queue_init(password_queue_t *q, uv_loop_t *loop, int max_verify, int workers);
/* A new bound (a reload): checks already queued stay; new ones are counted against it. */
void password_queue_set_max(password_queue_t *q, int max_verify);
/* The machine's cores as libuv sees them (cgroup and affinity limits included): the
 * password_workers default. */
int password_default_workers(void);
/* True when a verification would be refused with PASSWORD_QUEUE_FULL. */
bool password_queue_full(const password_queue_t *q);

/*
 * Queue a verification. Returns 0 (the callback will run exactly once, on the
 * loop), PASSWORD_QUEUE_FULL or -1 (it will not). With `handle` non-NULL,
 * *handle may be given to password_cancel() until the callback has run.
 */
__attribute__((warn_unused_result)) int password_verify_async(password_queue_t *q,
                                                              const char *encoded,
                                                              const char *password, password_cb cb,
                                                              void *arg, password_work_t **handle);
/*
 * Queue a hash. Returns 0 (the callback will run exactly once, on the loop),
 * PASSWORD_QUEUE_FULL when max_hash hashes are queued or running, or -1.
 */
__attribute__((warn_unused_result)) int password_hash_async(password_queue_t *q,
                                                            const password_params_t *params,
                                                            const char *password, password_cb cb,
                                                            void *arg);
/*
 * The answer is no longer wanted (its connection closed): a job that has not
 * started is taken off the thread pool, or skips its Argon2 work if a thread
 * picks it up first. The callback still runs, with PASSWORD_CANCELLED unless
 * the work was already done.
 */
void password_cancel(password_work_t *w);
/* Jobs queued or running, less those cancelled while waiting (the checks a
 * new one would wait behind). */
int password_queue_ahead(const password_queue_t *q);
/* One job's expected duration (ms): the moving average, or a guess before any job ran. */
double password_job_ms(const password_queue_t *q);

/*
 * Pure: the expected time (ms) until a check queued now behind `ahead` others
 * is done, with `workers` running at once and each taking job_ms: it starts
 * after ahead / workers rounds and takes one more.
 */
uint64_t password_wait_ms(int ahead, int workers, double job_ms);
/*
 * Pure: when (ms from now) a login refused because its expected wait
 * `wait_ms` exceeds its deadline should come back so that it fits in a fresh
 * login window of `window_ms`: once the queue has drained to what fits in
 * three quarters of the window (a margin for estimates), and never before
 * `*slot_ms` + spacing, where spacing is one job divided by the workers (the
 * rate at which the queue drains). *slot_ms (an absolute time, ms) becomes the
 * time handed out, so logins refused together come back one drain step apart
 * instead of all at once. But never more than `told` + 1 steps past what the
 * estimate needs, `told` being the connections holding a retry time that have
 * not come back yet (the server counts each connection once), so refusals
 * cannot push the slot out beyond the logins really expected back. At least
 * 100 ms, at most 10 minutes.
 */
uint32_t password_retry_slot(uint64_t now_ms, uint64_t wait_ms, uint64_t window_ms, int workers,
                             double job_ms, int told, uint64_t *slot_ms);
/* password_retry_slot with the queue's figures and slot. */
uint32_t password_retry_after(password_queue_t *q, uint64_t wait_ms, uint64_t window_ms);

/* Blocking: for one-shot commands that run without a loop (carreld --init-admin). */
char *password_hash_now(const password_params_t *params, const char *password);

#endif
