#include "throttle.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int throttle_init(throttle_t *t, size_t cap, int after, int64_t max_ms)
{
    if (cap == 0)
        return -1;
    t->entries = calloc(cap, sizeof(*t->entries));
    if (t->entries == NULL)
        return -1;
    t->cap = cap;
    t->after = after;
    t->max_ms = max_ms;
    t->window_ms = THROTTLE_WINDOW_MS;
    return 0;
}

void throttle_set_limits(throttle_t *t, int after, int64_t max_ms)
{
    t->after = after;
    t->max_ms = max_ms;
}

void throttle_free(throttle_t *t)
{
    free(t->entries);
    t->entries = NULL;
}

static bool throttle_in_use(const throttle_entry_t *e)
{
    return e->failures > 0 || e->pending > 0 || e->refused > 0;
}

/* Keys are stored truncated, so they are compared truncated too. */
static throttle_entry_t *throttle_find(const throttle_t *t, const char *key)
{
    for (size_t i = 0; i < t->cap; i++)
        if (throttle_in_use(&t->entries[i]) &&
            strncmp(t->entries[i].key, key, THROTTLE_KEY_MAX - 1) == 0)
            return &t->entries[i];
    return NULL;
}

/*
 * The key's entry, made if need be in a free slot or in place of the idle one
 * (nothing pending or unreported) whose last failure is oldest. NULL when
 * every entry is busy.
 */
static throttle_entry_t *throttle_get(throttle_t *t, const char *key)
{
    throttle_entry_t *e = throttle_find(t, key);
    if (e)
        return e;
    for (size_t i = 0; i < t->cap; i++) {
        throttle_entry_t *x = &t->entries[i];
        if (!throttle_in_use(x)) {
            e = x;
            break;
        }
        if (x->pending == 0 && x->refused == 0 &&
            (e == NULL || x->last_failure_ms < e->last_failure_ms))
            e = x;
    }
    if (e) {
        memset(e, 0, sizeof(*e));
        util_strlcpy(e->key, key, sizeof(e->key));
    }
    return e;
}

static int64_t throttle_lockout_ms(const throttle_t *t, int failures)
{
    if (failures < t->after)
        return 0;
    int shift = failures - t->after;
    if (shift > 30)
        return t->max_ms;
    int64_t ms = (int64_t)1000 << shift;
    return ms < t->max_ms ? ms : t->max_ms;
}

int64_t throttle_wait_ms(const throttle_t *t, const char *key, int64_t now_ms)
{
    const throttle_entry_t *e = throttle_find(t, key);
    if (e == NULL || e->failures == 0 || now_ms - e->last_failure_ms >= t->window_ms)
        return 0;
    int64_t until = e->last_failure_ms + throttle_lockout_ms(t, e->failures);
    return until > now_ms ? until - now_ms : 0;
}

int throttle_fail(throttle_t *t, const char *key, int64_t now_ms)
{
    throttle_entry_t *e = throttle_get(t, key);
    if (e == NULL)
        return 0;
    if (e->failures > 0 && now_ms - e->last_failure_ms >= t->window_ms)
        e->failures = 0; /* a quiet spell: start counting again */
    e->failures++;
    e->last_failure_ms = now_ms;
    return e->failures;
}

void throttle_unfail(throttle_t *t, const char *key)
{
    throttle_entry_t *e = throttle_find(t, key);
    if (e && e->failures > 0)
        e->failures--;
}

int throttle_failures(const throttle_t *t, const char *key, int64_t now_ms)
{
    const throttle_entry_t *e = throttle_find(t, key);
    if (e == NULL || now_ms - e->last_failure_ms >= t->window_ms)
        return 0;
    return e->failures;
}

void throttle_success(throttle_t *t, const char *key)
{
    throttle_entry_t *e = throttle_find(t, key);
    if (e) {
        e->failures = 0;
        e->last_failure_ms = 0;
    }
}

bool throttle_pending_add(throttle_t *t, const char *key, int max)
{
    throttle_entry_t *e = throttle_get(t, key);
    if (e == NULL || e->pending >= max)
        return false;
    e->pending++;
    return true;
}

void throttle_pending_done(throttle_t *t, const char *key)
{
    throttle_entry_t *e = throttle_find(t, key);
    if (e && e->pending > 0)
        e->pending--;
}

int throttle_pending(const throttle_t *t, const char *key)
{
    const throttle_entry_t *e = throttle_find(t, key);
    return e ? e->pending : 0;
}

int throttle_refused(throttle_t *t, const char *key, const char *user, const char *workstation,
                     const char *peer)
{
    throttle_entry_t *e = throttle_get(t, key);
    if (e == NULL)
        return 0;
    e->refused++;
    util_strlcpy(e->user, user ? user : "", sizeof(e->user));
    util_strlcpy(e->workstation, workstation ? workstation : "", sizeof(e->workstation));
    util_strlcpy(e->peer, peer ? peer : "", sizeof(e->peer));
    return e->refused;
}

void throttle_report(throttle_t *t, void (*cb)(const throttle_entry_t *e, void *arg), void *arg)
{
    for (size_t i = 0; i < t->cap; i++) {
        throttle_entry_t *e = &t->entries[i];
        if (e->refused > 0) {
            cb(e, arg);
            e->refused = 0;
        }
    }
}

void throttle_address_key(const char *address, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN + 8];
    util_strlcpy(host, address, sizeof(host));
    char *scope = strchr(host, '%'); /* fe80::1%eth0: the zone is not part of the address */
    if (scope)
        *scope = '\0';
    unsigned char a[16];
    char text[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET6, host, a) != 1) {
        util_strlcpy(out, address, outlen);
        return;
    }
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, sizeof(mapped)) == 0) {
        if (inet_ntop(AF_INET, a + 12, text, sizeof(text)) == NULL)
            util_strlcpy(out, address, outlen);
        else
            util_strlcpy(out, text, outlen);
        return;
    }
    memset(a + 8, 0, 8);
    if (inet_ntop(AF_INET6, a, text, sizeof(text)) == NULL)
        util_strlcpy(out, address, outlen);
    else
        snprintf(out, outlen, "%s/64", text);
}
