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
    password_cb cb;
    void *arg;
};

void password_queue_init(password_queue_t *q, uv_loop_t *loop, int max_verify)
{
    q->loop = loop;
    q->pending = 0;
    q->max_verify = max_verify;
    q->hashes = 0;
    /* Logins keep at least half of the queue whatever staff are being added. */
    q->max_hash = max_verify / 2 > 0 ? max_verify / 2 : 1;
    q->on_idle = NULL;
    q->idle_arg = NULL;
}

bool password_queue_full(const password_queue_t *q)
{
    return q->pending >= q->max_verify;
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

static void password_work_cb(uv_work_t *w)
{
    password_work_t *pw = w->data;
    if (atomic_load(&pw->cancelled)) {
        pw->ok = PASSWORD_CANCELLED; /* nobody waits for it: save the thread the work */
        return;
    }
    if (pw->verify) {
        int rc = argon2id_verify(pw->encoded, pw->password, strlen(pw->password));
        pw->ok = rc == ARGON2_OK ? 1 : rc == ARGON2_VERIFY_MISMATCH ? 0 : -1;
    } else {
        pw->encoded = password_hash_now(&pw->params, pw->password);
        pw->ok = pw->encoded ? 1 : -1;
    }
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

static void password_after_cb(uv_work_t *w, int status)
{
    password_work_t *pw = w->data;
    password_queue_t *q = pw->queue;
    int ok = status == 0 ? pw->ok : status == UV_ECANCELED ? PASSWORD_CANCELLED : -1;
    if (!pw->verify)
        q->hashes--;
    pw->cb(ok, pw->verify || ok != 1 ? NULL : pw->encoded, pw->arg);
    password_work_free(pw);
    /* Only now: the callback may still have used what shutdown would close. */
    if (--q->pending == 0 && q->on_idle)
        q->on_idle(q->idle_arg);
}

static int password_queue(password_queue_t *q, password_work_t *pw)
{
    pw->work.data = pw;
    pw->queue = q;
    int rc = uv_queue_work(q->loop, &pw->work, password_work_cb, password_after_cb);
    if (rc != 0) {
        password_work_free(pw);
        return -1;
    }
    q->pending++;
    if (!pw->verify)
        q->hashes++;
    return 0;
}

void password_cancel(password_work_t *w)
{
    atomic_store(&w->cancelled, true);
    /* Fails harmlessly (UV_EBUSY) once a thread has taken the job. */
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
