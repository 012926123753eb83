/*
 * throttle: slows down password guessing. Failed logins are counted per key
 * (a user name, or a peer address); after `after` consecutive failures each
 * further attempt on that key is refused until a lockout has passed, which
 * doubles with every failure up to max_ms. A success clears the key, and so
 * does a quiet spell of window_ms (THROTTLE_WINDOW_MS) after the last failure,
 * so that a branch's occasional typos never add up to a lockout.
 *
 * The daemon counts an attempt as a failure before it checks the password
 * (throttle_fail) and takes the count back when the attempt turns out not to
 * be a guess (throttle_unfail), so that attempts running at once cannot all
 * pass the check. Each key also counts the logins still being checked
 * (pending, bounded by the caller) and the attempts refused since the last
 * report (refused), which the daemon writes as one summary per key and
 * interval instead of one row per attempt.
 *
 * Pure bookkeeping with the clock passed in, so it is unit-tested directly.
 * The table is fixed-size; when full, the stalest idle entry is reused.
 */
#ifndef CARREL_THROTTLE_H
#define CARREL_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define THROTTLE_KEY_MAX 96

typedef struct throttle_entry {
    char key[THROTTLE_KEY_MAX];
    int failures;
    int64_t last_failure_ms;
    int pending; /* logins with this key still being checked */
    int refused; /* attempts refused since the last throttle_report() */
    /* The last refused attempt, for the report. */
    char user[40];
    char workstation[72];
    char peer[64];
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
/* New thresholds (a reload); the failures counted so far are kept. */
void throttle_set_limits(throttle_t *t, int after, int64_t max_ms);
void throttle_free(throttle_t *t);
/* Milliseconds the key must still wait; 0 when an attempt is allowed now. */
int64_t throttle_wait_ms(const throttle_t *t, const char *key, int64_t now_ms);
/* Record a failure; returns the key's consecutive failure count. */
int throttle_fail(throttle_t *t, const char *key, int64_t now_ms);
/* Take back one failure counted ahead of the check (the attempt was no guess). */
void throttle_unfail(throttle_t *t, const char *key);
/* The key's consecutive failure count now (0 after a quiet spell). */
int throttle_failures(const throttle_t *t, const char *key, int64_t now_ms);
/* Forget the key's failures (a successful login); pending and refused stay. */
void throttle_success(throttle_t *t, const char *key);
/*
 * One more login of this key is being checked, unless `max` already are (or
 * the table has no room): then false and nothing changes. Each true is
 * matched by one throttle_pending_done().
 */
__attribute__((warn_unused_result)) bool throttle_pending_add(throttle_t *t, const char *key,
                                                              int max);
void throttle_pending_done(throttle_t *t, const char *key);
/* Logins of the key being checked now. */
int throttle_pending(const throttle_t *t, const char *key);
/*
 * Count an attempt refused by the throttle, remembering who made it for the
 * report. Returns the key's refused count since the last report (1: the
 * first, worth a log line of its own), or 0 when the table has no room.
 */
int throttle_refused(throttle_t *t, const char *key, const char *user, const char *workstation,
                     const char *peer);
/*
 * The key a peer address (without its port) is counted under, for the
 * per-address throttle and connection limits: an IPv4 address as it is, also
 * when a dual-stack listener reports it IPv4-mapped ("::ffff:192.0.2.7"); an
 * IPv6 address by its /64 ("2001:db8:1:2::/64"), since one host or site is
 * given a whole /64 and could otherwise connect and guess under 2^64
 * addresses. Anything else is copied as it is.
 */
void throttle_address_key(const char *address, char *out, size_t outlen);
/* Call `cb` for every key with refused attempts since the last report, then reset them. */
void throttle_report(throttle_t *t, void (*cb)(const throttle_entry_t *e, void *arg), void *arg);

#endif
