#include "password.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "log.h"

#define PASSWORD_SALT_BYTES 16
#define PASSWORD_HASH_BYTES 32

struct password_work {
    uv_work_t work;
    password_queue_t *queue;
    password_params_t params;
    char *encoded;  /* verify: the stored hash; hash: the result */
    char *password; /* wiped before free */
    int verify;
    int ok;
    atomic_bool cancelled; /* set on the loop, read by the worker before it starts */
    bool handed;           /* given to libuv's pool (else waiting in the queue's list) */
    uint64_t took_ns;      /* the Argon2 work's duration, measured by the worker */
    password_cb cb;
    void *arg;
    password_work_t *next; /* in the queue's waiting list */
};

/* Before any job has been measured (the dummy hash at start is the first). */
#define PASSWORD_GUESS_MS 250.0
/* Weight of the newest job in the moving average: a few jobs follow a change of load. */
#define PASSWORD_AVG_NEW 0.25

int password_default_workers(void)
{
    unsigned n = uv_available_parallelism();
    return n > 0 && n < 1024 ? (int)n : 1;
}

void password_queue_init(password_queue_t *q, uv_loop_t *loop, int max_verify, int workers)
{
    q->loop = loop;
    q->workers = workers > 0 ? workers : 1;
    q->running = 0;
    q->head = q->tail = NULL;
    q->job_ms = 0;
    q->retry_slot_ms = 0;
    q->pending = 0;
    q->cancelled_waiting = 0;
    q->told = 0;
    q->logins_unqueued = 0;
    q->max_verify = max_verify;
    q->hashes = 0;
    /* Logins keep at least half of the queue whatever staff are being added. */
    q->max_hash = max_verify / 2 > 0 ? max_verify / 2 : 1;
    q->on_idle = NULL;
    q->idle_arg = NULL;
}

void password_queue_set_max(password_queue_t *q, int max_verify)
{
    q->max_verify = max_verify;
    q->max_hash = max_verify / 2 > 0 ? max_verify / 2 : 1;
}

bool password_queue_full(const password_queue_t *q)
{
    return q->pending - q->cancelled_waiting >= q->max_verify;
}

char *password_hash_now(const password_params_t *p, const char *password)
{
    unsigned char salt[PASSWORD_SALT_BYTES];
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return NULL;
    size_t len = argon2_encodedlen(p->time_cost, p->memory_kib, p->parallelism, PASSWORD_SALT_BYTES,
                                   PASSWORD_HASH_BYTES, Argon2_id);
    char *encoded = malloc(len);
    if (encoded == NULL)
        return NULL;
    int rc = argon2id_hash_encoded(p->time_cost, p->memory_kib, p->parallelism, password,
                                   strlen(password), salt, sizeof(salt), PASSWORD_HASH_BYTES,
                                   encoded, len);
    if (rc != ARGON2_OK) {
        log_error(0, "argon2 hashing failed: %s", argon2_error_message(rc));
        free(encoded);
        return NULL;
    }
    return encoded;
}

int password_queue_ahead(const password_queue_t *q)
{
    return q->pending - q->cancelled_waiting;
}

double password_job_ms(const password_queue_t *q)
{
    return q->job_ms > 0 ? q->job_ms : PASSWORD_GUESS_MS;
}

uint64_t password_wait_ms(int ahead, int workers, double job_ms)
{
    if (workers < 1)
        workers = 1;
    if (ahead < 0)
        ahead = 0;
    return (uint64_t)((double)(ahead / workers + 1) * job_ms + 0.5);
}

#define PASSWORD_RETRY_MIN_MS 100
#define PASSWORD_RETRY_MAX_MS (10 * 60 * 1000)

uint32_t password_retry_slot(uint64_t now_ms, uint64_t wait_ms, uint64_t window_ms, int workers,
                             double job_ms, int told, uint64_t *slot_ms)
{
    uint64_t fits = window_ms * 3 / 4;
    uint64_t after = wait_ms > fits ? wait_ms - fits : 0;
    uint64_t step = (uint64_t)(job_ms / (workers > 0 ? workers : 1) + 0.5);
    uint64_t at = now_ms + after;
    /* Behind the logins already told to come back: they will be in the queue then. */
    if (*slot_ms + step > at)
        at = *slot_ms + step;
    /* But only behind those still told: the slot pushed by connections that have
     * since come back or gone (or by a flood of refusals) does not count. */
    uint64_t behind = now_ms + after + (uint64_t)(told > 0 ? told + 1 : 1) * step;
    if (at > behind)
        at = behind;
    if (at < now_ms + PASSWORD_RETRY_MIN_MS)
        at = now_ms + PASSWORD_RETRY_MIN_MS;
    if (at > now_ms + PASSWORD_RETRY_MAX_MS)
        at = now_ms + PASSWORD_RETRY_MAX_MS;
    *slot_ms = at;
    return (uint32_t)(at - now_ms);
}

uint32_t password_retry_after(password_queue_t *q, uint64_t wait_ms, uint64_t window_ms)
{
    return password_retry_slot(uv_now(q->loop), wait_ms, window_ms, q->workers, password_job_ms(q),
                               q->told, &q->retry_slot_ms);
}

static void password_work_cb(uv_work_t *w)
{
    password_work_t *pw = w->data;
    if (atomic_load(&pw->cancelled)) {
        pw->ok = PASSWORD_CANCELLED; /* nobody waits for it: save the thread the work */
        return;
    }
    uint64_t start = uv_hrtime();
    if (pw->verify) {
        int rc = argon2id_verify(pw->encoded, pw->password, strlen(pw->password));
        pw->ok = rc == ARGON2_OK ? 1 : rc == ARGON2_VERIFY_MISMATCH ? 0 : -1;
    } else {
        pw->encoded = password_hash_now(&pw->params, pw->password);
        pw->ok = pw->encoded ? 1 : -1;
    }
    pw->took_ns = uv_hrtime() - start;
}

static void password_work_free(password_work_t *pw)
{
    if (pw->password) {
        OPENSSL_cleanse(pw->password, strlen(pw->password));
        free(pw->password);
    }
    free(pw->encoded);
    free(pw);
}

static void password_after_cb(uv_work_t *w, int status);

/* Hand one job to libuv's pool. */
static int password_hand(password_queue_t *q, password_work_t *pw)
{
    pw->work.data = pw;
    int rc = uv_queue_work(q->loop, &pw->work, password_work_cb, password_after_cb);
    if (rc == 0) {
        pw->handed = true;
        q->running++;
    }
    return rc;
}

static void password_finish(password_queue_t *q, password_work_t *pw, int ok);

/* Hand the oldest waiting jobs to the pool while a worker is free. */
static void password_pump(password_queue_t *q)
{
    while (q->running < q->workers && q->head) {
        password_work_t *pw = q->head;
        q->head = pw->next;
        if (q->head == NULL)
            q->tail = NULL;
        pw->next = NULL;
        if (atomic_load(&pw->cancelled)) {
            /* Its client left while it waited: answer it here, no worker taken. */
            q->cancelled_waiting--;
            password_finish(q, pw, PASSWORD_CANCELLED);
            continue;
        }
        if (password_hand(q, pw) != 0)
            password_finish(q, pw, -1); /* libuv refused: its caller still gets its answer */
    }
}

/* Run the job's callback, free it, and tell shutdown when the queue is idle. */
static void password_finish(password_queue_t *q, password_work_t *pw, int ok)
{
    if (!pw->verify)
        q->hashes--;
    pw->cb(ok, pw->verify || ok != 1 ? NULL : pw->encoded, pw->arg);
    password_work_free(pw);
    /* Only now: the callback may still have used what shutdown would close. */
    if (--q->pending == 0 && q->on_idle)
        q->on_idle(q->idle_arg);
}

static void password_after_cb(uv_work_t *w, int status)
{
    password_work_t *pw = w->data;
    password_queue_t *q = pw->queue;
    int ok = status == 0 ? pw->ok : status == UV_ECANCELED ? PASSWORD_CANCELLED : -1;
    q->running--;
    if (status == 0 && ok != PASSWORD_CANCELLED && pw->took_ns > 0) {
        double ms = (double)pw->took_ns / 1e6;
        q->job_ms = q->job_ms > 0 ? q->job_ms + PASSWORD_AVG_NEW * (ms - q->job_ms) : ms;
    }
    password_pump(q); /* the next job starts before this one's answer is handled */
    password_finish(q, pw, ok);
}

/* Take the job: hand it to the pool now if a worker is free, else queue it (FIFO). */
static int password_queue(password_queue_t *q, password_work_t *pw)
{
    pw->queue = q;
    if (q->running < q->workers && q->head == NULL) {
        if (password_hand(q, pw) != 0) {
            password_work_free(pw);
            return -1;
        }
    } else if (q->tail) {
        q->tail->next = pw;
        q->tail = pw;
    } else {
        q->head = q->tail = pw;
    }
    q->pending++;
    if (!pw->verify)
        q->hashes++;
    return 0;
}

void password_cancel(password_work_t *w)
{
    /* One waiting in the list stops counting at once (ahead, full): its place
     * goes to the next login; it leaves the list when the pump reaches it. */
    if (!w->handed && !atomic_load(&w->cancelled))
        w->queue->cancelled_waiting++;
    atomic_store(&w->cancelled, true);
    /* A job still in the waiting list skips its work when its turn comes. One
     * handed to the pool: uv_cancel fails harmlessly (UV_EBUSY) once a thread
     * has taken it. */
    if (w->handed)
        (void)uv_cancel((uv_req_t *)&w->work);
}

int password_verify_async(password_queue_t *q, const char *encoded, const char *password,
                          password_cb cb, void *arg, password_work_t **handle)
{
    if (password_queue_full(q))
        return PASSWORD_QUEUE_FULL;
    password_work_t *pw = calloc(1, sizeof(*pw));
    if (pw == NULL)
        return -1;
    pw->verify = 1;
    pw->encoded = strdup(encoded);
    pw->password = strdup(password);
    pw->cb = cb;
    pw->arg = arg;
    if (pw->encoded == NULL || pw->password == NULL) {
        password_work_free(pw);
        return -1;
    }
    if (password_queue(q, pw) != 0)
        return -1;
    if (handle)
        *handle = pw;
    return 0;
}

int password_hash_async(password_queue_t *q, const password_params_t *params, const char *password,
                        password_cb cb, void *arg)
{
    if (q->hashes >= q->max_hash)
        return PASSWORD_QUEUE_FULL;
    password_work_t *pw = calloc(1, sizeof(*pw));
    if (pw == NULL)
        return -1;
    pw->params = *params;
    pw->password = strdup(password);
    pw->cb = cb;
    pw->arg = arg;
    if (pw->password == NULL) {
        password_work_free(pw);
        return -1;
    }
    return password_queue(q, pw);
}
