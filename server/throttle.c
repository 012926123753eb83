#include "throttle.h"

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

void throttle_free(throttle_t *t)
{
    free(t->entries);
    t->entries = NULL;
}

/* Keys are stored truncated, so they are compared truncated too. */
static throttle_entry_t *throttle_find(const throttle_t *t, const char *key)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->entries[i].failures > 0 &&
            strncmp(t->entries[i].key, key, THROTTLE_KEY_MAX - 1) == 0)
            return &t->entries[i];
    return NULL;
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
    if (e == NULL || now_ms - e->last_failure_ms >= t->window_ms)
        return 0;
    int64_t until = e->last_failure_ms + throttle_lockout_ms(t, e->failures);
    return until > now_ms ? until - now_ms : 0;
}

int throttle_fail(throttle_t *t, const char *key, int64_t now_ms)
{
    throttle_entry_t *e = throttle_find(t, key);
    if (e == NULL) {
        /* Take a free slot, or the one whose last failure is oldest. */
        e = &t->entries[0];
        for (size_t i = 0; i < t->cap; i++) {
            if (t->entries[i].failures == 0) {
                e = &t->entries[i];
                break;
            }
            if (t->entries[i].last_failure_ms < e->last_failure_ms)
                e = &t->entries[i];
        }
        util_strlcpy(e->key, key, sizeof(e->key));
        e->failures = 0;
    } else if (now_ms - e->last_failure_ms >= t->window_ms) {
        e->failures = 0; /* a quiet spell: start counting again */
    }
    e->failures++;
    e->last_failure_ms = now_ms;
    return e->failures;
}

void throttle_success(throttle_t *t, const char *key)
{
    throttle_entry_t *e = throttle_find(t, key);
    if (e)
        memset(e, 0, sizeof(*e));
}
