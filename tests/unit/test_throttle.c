/*
 * Unit tests for server/throttle.c: failed-login bookkeeping with the clock
 * passed in.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "throttle.h"

#define T0 1700000000000LL /* an arbitrary "now" in milliseconds */

static void test_unknown_key_waits_nothing(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 8, 3, 60000), 0);
    assert_int_equal(throttle_wait_ms(&t, "user:nobody", T0), 0);
    assert_int_equal(throttle_wait_ms(&t, "", T0), 0);
    /* A success for a key never seen is harmless. */
    throttle_success(&t, "user:nobody");
    assert_int_equal(throttle_wait_ms(&t, "user:nobody", T0), 0);
    throttle_free(&t);
    assert_null(t.entries);
}

static void test_no_wait_before_after_failures(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 8, 3, 60000), 0);
    assert_int_equal(throttle_fail(&t, "user:ann", T0), 1);
    assert_int_equal(throttle_wait_ms(&t, "user:ann", T0), 0);
    assert_int_equal(throttle_fail(&t, "user:ann", T0 + 10), 2);
    assert_int_equal(throttle_wait_ms(&t, "user:ann", T0 + 10), 0);
    /* The third failure starts the first lockout: one second. */
    assert_int_equal(throttle_fail(&t, "user:ann", T0 + 20), 3);
    assert_int_equal(throttle_wait_ms(&t, "user:ann", T0 + 20), 1000);
    assert_int_equal(throttle_wait_ms(&t, "user:ann", T0 + 420), 600);
    assert_int_equal(throttle_wait_ms(&t, "user:ann", T0 + 1019), 1);
    assert_int_equal(throttle_wait_ms(&t, "user:ann", T0 + 1020), 0);
    assert_int_equal(throttle_wait_ms(&t, "user:ann", T0 + 999999), 0);
    throttle_free(&t);
}

static void test_lockout_doubles(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 8, 2, 1000000), 0);
    int64_t now = T0;
    assert_int_equal(throttle_fail(&t, "addr:10.0.0.1", now), 1);
    assert_int_equal(throttle_wait_ms(&t, "addr:10.0.0.1", now), 0);
    int64_t want = 1000;
    for (int i = 2; i <= 8; i++) {
        now += 5;
        assert_int_equal(throttle_fail(&t, "addr:10.0.0.1", now), i);
        assert_int_equal(throttle_wait_ms(&t, "addr:10.0.0.1", now), want);
        want *= 2;
    }
    /* The lockout counts from the latest failure. */
    assert_int_equal(throttle_wait_ms(&t, "addr:10.0.0.1", now + 64000), 0);
    throttle_free(&t);
}

static void test_lockout_capped_at_max(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 8, 1, 5000), 0);
    static const int64_t want[] = {1000, 2000, 4000, 5000, 5000, 5000};
    for (int i = 0; i < 6; i++) {
        throttle_fail(&t, "user:bob", T0);
        assert_int_equal(throttle_wait_ms(&t, "user:bob", T0), want[i]);
    }
    /* Far past any shift that would overflow: still the cap. */
    for (int i = 6; i < 100; i++)
        throttle_fail(&t, "user:bob", T0);
    assert_int_equal(throttle_wait_ms(&t, "user:bob", T0), 5000);
    throttle_free(&t);
}

/* A cap below the first step bounds even the first lockout. */
static void test_small_max(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 4, 1, 300), 0);
    throttle_fail(&t, "k", T0);
    assert_int_equal(throttle_wait_ms(&t, "k", T0), 300);
    throttle_free(&t);
}

static void test_success_clears(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 8, 2, 60000), 0);
    for (int i = 0; i < 5; i++)
        throttle_fail(&t, "user:cy", T0);
    assert_true(throttle_wait_ms(&t, "user:cy", T0) > 0);
    throttle_success(&t, "user:cy");
    assert_int_equal(throttle_wait_ms(&t, "user:cy", T0), 0);
    /* Counting starts over. */
    assert_int_equal(throttle_fail(&t, "user:cy", T0), 1);
    assert_int_equal(throttle_wait_ms(&t, "user:cy", T0), 0);
    throttle_free(&t);
}

/* Failures spread over more than the window never add up to a lockout. */
static void test_quiet_spell_forgets(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 8, 3, 60000), 0);
    int64_t now = 1000000;
    assert_int_equal(throttle_fail(&t, "addr:10.0.0.1", now), 1);
    assert_int_equal(throttle_fail(&t, "addr:10.0.0.1", now + 1000), 2);
    now += 1000 + THROTTLE_WINDOW_MS;
    assert_int_equal(throttle_wait_ms(&t, "addr:10.0.0.1", now), 0);
    assert_int_equal(throttle_fail(&t, "addr:10.0.0.1", now), 1);
    assert_int_equal(throttle_fail(&t, "addr:10.0.0.1", now + 10), 2);
    assert_int_equal(throttle_fail(&t, "addr:10.0.0.1", now + 20), 3);
    assert_true(throttle_wait_ms(&t, "addr:10.0.0.1", now + 20) > 0);
    throttle_free(&t);
}

static void test_keys_independent(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 8, 1, 60000), 0);
    throttle_fail(&t, "user:ann", T0);
    throttle_fail(&t, "user:ann", T0);
    assert_int_equal(throttle_wait_ms(&t, "user:ann", T0), 2000);
    assert_int_equal(throttle_wait_ms(&t, "user:an", T0), 0);
    assert_int_equal(throttle_wait_ms(&t, "user:anne", T0), 0);
    assert_int_equal(throttle_wait_ms(&t, "addr:ann", T0), 0);
    assert_int_equal(throttle_fail(&t, "addr:192.0.2.1", T0), 1);
    assert_int_equal(throttle_wait_ms(&t, "addr:192.0.2.1", T0), 1000);
    assert_int_equal(throttle_wait_ms(&t, "user:ann", T0), 2000);
    throttle_success(&t, "addr:192.0.2.1");
    assert_int_equal(throttle_wait_ms(&t, "user:ann", T0), 2000);
    throttle_free(&t);
}

/* A full table forgets the key whose last failure is oldest, wherever it sits. */
static void test_full_table_evicts_stalest(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 3, 1, 60000), 0);
    throttle_fail(&t, "a", T0 + 300);
    throttle_fail(&t, "b", T0 + 100); /* the stalest, in the middle slot */
    throttle_fail(&t, "c", T0 + 200);
    assert_int_equal(throttle_fail(&t, "d", T0 + 400), 1);
    assert_int_equal(throttle_wait_ms(&t, "b", T0 + 400), 0);
    assert_true(throttle_wait_ms(&t, "a", T0 + 400) > 0);
    assert_true(throttle_wait_ms(&t, "c", T0 + 400) > 0);
    assert_true(throttle_wait_ms(&t, "d", T0 + 400) > 0);
    /* The survivors kept their counts. */
    assert_int_equal(throttle_fail(&t, "a", T0 + 500), 2);
    assert_int_equal(throttle_fail(&t, "c", T0 + 500), 2);
    /* Now d (T0+400) is the stalest. */
    assert_int_equal(throttle_fail(&t, "e", T0 + 600), 1);
    assert_int_equal(throttle_wait_ms(&t, "d", T0 + 600), 0);
    assert_true(throttle_wait_ms(&t, "a", T0 + 600) > 0);
    throttle_free(&t);
}

/* A slot freed by a success is reused before anything is evicted. */
static void test_freed_slot_reused(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 3, 1, 60000), 0);
    throttle_fail(&t, "a", T0 + 1);
    throttle_fail(&t, "b", T0 + 2);
    throttle_fail(&t, "c", T0 + 3);
    throttle_success(&t, "b");
    throttle_fail(&t, "d", T0 + 4);
    assert_true(throttle_wait_ms(&t, "a", T0 + 4) > 0);
    assert_true(throttle_wait_ms(&t, "c", T0 + 4) > 0);
    assert_true(throttle_wait_ms(&t, "d", T0 + 4) > 0);
    assert_int_equal(throttle_wait_ms(&t, "b", T0 + 4), 0);
    throttle_free(&t);
}

/* Many keys through a small table: no crash, and the newest is always tracked. */
static void test_churn(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 16, 1, 60000), 0);
    for (int i = 0; i < 1000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "addr:10.0.%d.%d", i / 256, i % 256);
        assert_int_equal(throttle_fail(&t, key, T0 + i), 1);
        assert_int_equal(throttle_wait_ms(&t, key, T0 + i), 1000);
    }
    throttle_free(&t);
}

/* A key of exactly the largest storable length is kept whole. */
static void test_longest_key_that_fits(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 4, 2, 60000), 0);
    char key[THROTTLE_KEY_MAX];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    assert_int_equal(throttle_fail(&t, key, T0), 1);
    assert_int_equal(throttle_fail(&t, key, T0), 2);
    assert_int_equal(throttle_wait_ms(&t, key, T0), 1000);
    throttle_free(&t);
}

/*
 * A key longer than THROTTLE_KEY_MAX is stored truncated, without writing past
 * the entry, and must still be counted as one key.
 * Regression: keys are stored truncated, so lookups must compare them
 * truncated, or a long key never matches its own entry and is never locked.
 */
static void test_long_key_truncated_and_throttled(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 8, 2, 60000), 0);
    char key[300];
    memset(key, 'x', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';

    throttle_fail(&t, key, T0);
    /* Stored, truncated and terminated inside the entry. */
    size_t stored = 0;
    for (size_t i = 0; i < t.cap; i++)
        if (t.entries[i].failures > 0) {
            stored++;
            assert_int_equal(t.entries[i].key[THROTTLE_KEY_MAX - 1], '\0');
            assert_int_equal(strlen(t.entries[i].key), THROTTLE_KEY_MAX - 1);
        }
    assert_int_equal(stored, 1);

    assert_int_equal(throttle_fail(&t, key, T0), 2);
    assert_int_equal(throttle_wait_ms(&t, key, T0), 1000);
    throttle_success(&t, key);
    assert_int_equal(throttle_wait_ms(&t, key, T0), 0);
    throttle_free(&t);
}

/* An attempt counted before its check is taken back when it was no guess. */
static void test_counted_ahead_and_taken_back(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 8, 3, 60000), 0);
    /* Three attempts at once: each counted as it arrives, so the fourth waits. */
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(throttle_wait_ms(&t, "user:ann", T0), 0);
        assert_int_equal(throttle_fail(&t, "user:ann", T0), i);
    }
    assert_int_equal(throttle_wait_ms(&t, "user:ann", T0), 1000);
    throttle_unfail(&t, "user:ann");
    assert_int_equal(throttle_failures(&t, "user:ann", T0), 2);
    assert_int_equal(throttle_wait_ms(&t, "user:ann", T0), 0);
    throttle_unfail(&t, "user:ann");
    throttle_unfail(&t, "user:ann");
    throttle_unfail(&t, "user:ann"); /* never below zero */
    assert_int_equal(throttle_failures(&t, "user:ann", T0), 0);
    assert_int_equal(throttle_fail(&t, "user:ann", T0), 1);
    throttle_unfail(&t, "user:nobody"); /* unknown key: harmless */
    throttle_free(&t);
}

static void test_pending_bounded(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 8, 3, 60000), 0);
    assert_true(throttle_pending_add(&t, "addr:a", 2));
    assert_true(throttle_pending_add(&t, "addr:a", 2));
    assert_false(throttle_pending_add(&t, "addr:a", 2));
    assert_true(throttle_pending_add(&t, "addr:b", 2));
    throttle_pending_done(&t, "addr:a");
    assert_true(throttle_pending_add(&t, "addr:a", 2));
    /* A success forgets failures but not what is still pending. */
    assert_int_equal(throttle_fail(&t, "addr:a", T0), 1);
    throttle_success(&t, "addr:a");
    assert_false(throttle_pending_add(&t, "addr:a", 2));
    throttle_pending_done(&t, "addr:a");
    throttle_pending_done(&t, "addr:a");
    throttle_pending_done(&t, "addr:a"); /* never below zero */
    assert_true(throttle_pending_add(&t, "addr:a", 1));
    throttle_free(&t);
}

/* Entries with logins pending are never evicted; with no room, nothing is let through. */
static void test_pending_never_evicted(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 2, 3, 60000), 0);
    assert_true(throttle_pending_add(&t, "a", 5));
    assert_true(throttle_pending_add(&t, "b", 5));
    assert_false(throttle_pending_add(&t, "c", 5));
    assert_int_equal(throttle_fail(&t, "c", T0), 0);
    assert_int_equal(throttle_refused(&t, "c", "u", "w", "p"), 0);
    throttle_pending_done(&t, "b");
    assert_true(throttle_pending_add(&t, "c", 5));
    throttle_free(&t);
}

static void report_collect(const throttle_entry_t *e, void *arg)
{
    char *out = arg;
    char line[512];
    snprintf(line, sizeof(line), "%s=%d(%s,%s,%s);", e->key, e->refused, e->user, e->workstation,
             e->peer);
    strcat(out, line);
}

static void test_refused_reported_once(void **state)
{
    (void)state;
    throttle_t t;
    assert_int_equal(throttle_init(&t, 8, 3, 60000), 0);
    assert_int_equal(throttle_refused(&t, "addr:x", "ann", "desk", "x:1"), 1);
    for (int i = 2; i <= 1000; i++)
        assert_int_equal(throttle_refused(&t, "addr:x", "bob", "desk-2", "x:2"), i);
    char out[1024] = "";
    throttle_report(&t, report_collect, out);
    assert_string_equal(out, "addr:x=1000(bob,desk-2,x:2);");
    out[0] = '\0';
    throttle_report(&t, report_collect, out);
    assert_string_equal(out, "");
    assert_int_equal(throttle_refused(&t, "addr:x", "ann", "desk", "x:1"), 1);
    throttle_free(&t);
}

/* Per-address keys: IPv4 as it is, IPv4-mapped IPv6 as IPv4, IPv6 by its /64. */
static void test_address_key(void **state)
{
    (void)state;
    char k[THROTTLE_KEY_MAX];
    throttle_address_key("192.0.2.7", k, sizeof(k));
    assert_string_equal(k, "192.0.2.7");
    /* A dual-stack listener reports IPv4 peers mapped: the same key. */
    throttle_address_key("::ffff:192.0.2.7", k, sizeof(k));
    assert_string_equal(k, "192.0.2.7");
    /* One host, one /64: every address in it is one key. */
    throttle_address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", k, sizeof(k));
    assert_string_equal(k, "2001:db8:1:2::/64");
    throttle_address_key("2001:db8:1:2::1", k, sizeof(k));
    assert_string_equal(k, "2001:db8:1:2::/64");
    throttle_address_key("2001:DB8:1:2:0:0:0:ffff", k, sizeof(k));
    assert_string_equal(k, "2001:db8:1:2::/64");
    throttle_address_key("2001:db8:1:3::1", k, sizeof(k));
    assert_string_equal(k, "2001:db8:1:3::/64");
    throttle_address_key("fe80::1%eth0", k, sizeof(k));
    assert_string_equal(k, "fe80::/64");
    throttle_address_key("::1", k, sizeof(k));
    assert_string_equal(k, "::/64");
    /* Anything else is kept as it is. */
    throttle_address_key("?", k, sizeof(k));
    assert_string_equal(k, "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_key_waits_nothing),
        cmocka_unit_test(test_no_wait_before_after_failures),
        cmocka_unit_test(test_lockout_doubles),
        cmocka_unit_test(test_lockout_capped_at_max),
        cmocka_unit_test(test_small_max),
        cmocka_unit_test(test_success_clears),
        cmocka_unit_test(test_quiet_spell_forgets),
        cmocka_unit_test(test_keys_independent),
        cmocka_unit_test(test_full_table_evicts_stalest),
        cmocka_unit_test(test_freed_slot_reused),
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_longest_key_that_fits),
        cmocka_unit_test(test_long_key_truncated_and_throttled),
        cmocka_unit_test(test_counted_ahead_and_taken_back),
        cmocka_unit_test(test_pending_bounded),
        cmocka_unit_test(test_pending_never_evicted),
        cmocka_unit_test(test_refused_reported_once),
        cmocka_unit_test(test_address_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
