/*
 * password: Argon2id hashing and verification (libargon2), always on the
 * libuv thread pool so the loop never spends a quarter second hashing.
 * Copies of passwords are wiped before their memory is released.
 */
#ifndef CARREL_PASSWORD_H
#define CARREL_PASSWORD_H

#include <uv.h>

typedef struct password_params {
    unsigned time_cost;
    unsigned memory_kib;
    unsigned parallelism;
} password_params_t;

/*
 * Verification: ok is 1 for a match, 0 for a mismatch, -1 when the stored
 * hash is malformed. Hashing: ok is 1 and `hash` is the encoded hash (owned
 * by the callee: copy it during the callback), or -1.
 */
typedef void (*password_cb)(int ok, const char *hash, void *arg);

__attribute__((warn_unused_result)) int password_verify_async(uv_loop_t *loop, const char *encoded,
                                                              const char *password, password_cb cb,
                                                              void *arg);
__attribute__((warn_unused_result)) int password_hash_async(uv_loop_t *loop,
                                                            const password_params_t *params,
                                                            const char *password, password_cb cb,
                                                            void *arg);
/* Blocking: for one-shot commands that run without a loop (carreld --init-admin). */
char *password_hash_now(const password_params_t *params, const char *password);

#endif
