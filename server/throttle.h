/*
 * throttle: slows down password guessing. Failed logins are counted per key
 * (a user name, or a peer address); after `after` consecutive failures each
 * further attempt on that key is refused until a lockout has passed, which
 * doubles with every failure up to max_ms. A success clears the key, and so
 * does a quiet spell of window_ms (THROTTLE_WINDOW_MS) after the last failure,
 * so that a branch's occasional typos never add up to a lockout.
 *
 * Pure bookkeeping with the clock passed in, so it is unit-tested directly.
 * The table is fixed-size; when full, the stalest entry is reused.
 */
#ifndef CARREL_THROTTLE_H
#define CARREL_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

#define THROTTLE_KEY_MAX 96

typedef struct throttle_entry {
    char key[THROTTLE_KEY_MAX];
    int failures;
    int64_t last_failure_ms;
} throttle_entry_t;

typedef struct throttle {
    throttle_entry_t *entries;
    size_t cap;
    int after;
    int64_t max_ms;
    int64_t window_ms; /* failures this long after the last one are forgotten */
} throttle_t;

#define THROTTLE_WINDOW_MS (15 * 60 * 1000)

__attribute__((warn_unused_result)) int throttle_init(throttle_t *t, size_t cap, int after,
                                                      int64_t max_ms);
void throttle_free(throttle_t *t);
/* Milliseconds the key must still wait; 0 when an attempt is allowed now. */
int64_t throttle_wait_ms(const throttle_t *t, const char *key, int64_t now_ms);
/* Record a failure; returns the key's consecutive failure count. */
int throttle_fail(throttle_t *t, const char *key, int64_t now_ms);
void throttle_success(throttle_t *t, const char *key);

#endif
