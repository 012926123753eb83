/*
 * Unit tests for sip_key (server/sip.c): the request key a SIP2 message
 * derives, so that a self-check's resend finds the first attempt's answer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "sip.h"

#define CHECKOUT "11YN20261207    101500                  AODWN|AA21234000000001|AB31234000000002|"

/* 2026-12-07 10:15:00 UTC, the date of CHECKOUT (the tests run in TZ=UTC, and
 * without a server the library's zone is the process's). */
#define NOW ((time_t)1796638500)

/* The key of `line` (a message without AY/AZ, seq appended when >= 0) for staff,
 * derived at `now`. */
static void key_at(const char *line, int seq, int64_t staff, time_t now, char out[37])
{
    sip_req_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    arena_init(&r->arena);
    char text[512];
    if (seq >= 0)
        snprintf(text, sizeof(text), "%sAY%d", line, seq);
    else
        snprintf(text, sizeof(text), "%s", line);
    r->line = arena_strdup(&r->arena, text);
    assert_int_equal(sip2_parse(r->line, strlen(r->line), &r->msg), SIP2_OK);
    r->session.staff_id = staff;
    const char *k = sip_key_at(r, now);
    assert_ptr_equal(k, r->key);
    memcpy(out, k, 37);
    arena_free(&r->arena);
    free(r);
}

static void key_of(const char *line, int seq, int64_t staff, char out[37])
{
    key_at(line, seq, staff, NOW, out);
}

static void test_key_is_a_version_8_uuid(void **state)
{
    (void)state;
    char k[37];
    key_of(CHECKOUT, 1, 42, k);
    assert_int_equal(strlen(k), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(k[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", k[i]));
    }
    assert_int_equal(k[14], '8');           /* version 8: custom */
    assert_non_null(strchr("89ab", k[19])); /* variant 10 */
}

static void test_a_resend_has_the_same_key(void **state)
{
    (void)state;
    char a[37], b[37];
    key_of(CHECKOUT, 1, 42, a);
    key_of(CHECKOUT, 1, 42, b);
    assert_string_equal(a, b);
}

static void test_each_part_changes_the_key(void **state)
{
    (void)state;
    char base[37], k[37];
    key_of(CHECKOUT, 1, 42, base);
    key_of(CHECKOUT, 2, 42, k); /* AY */
    assert_string_not_equal(base, k);
    key_of(CHECKOUT, -1, 42, k); /* no AY */
    assert_string_not_equal(base, k);
    key_of(CHECKOUT, 1, 43, k); /* another login */
    assert_string_not_equal(base, k);
    key_of("11YN20261207    101501                  AODWN|AA21234000000001|AB31234000000002|", 1,
           42, k); /* another transaction date */
    assert_string_not_equal(base, k);
    key_of("11YN20261207    101500                  AODWN|AA21234000000003|AB31234000000002|", 1,
           42, k); /* another patron */
    assert_string_not_equal(base, k);
    key_of("11YN20261207    101500                  AODWN|AA21234000000001|AB31234000000004|", 1,
           42, k); /* another item */
    assert_string_not_equal(base, k);
    key_of("29YN20261207    101500                  AODWN|AA21234000000001|AB31234000000002|", 1,
           42, k); /* another message */
    assert_string_not_equal(base, k);
}

static void test_parts_do_not_run_together(void **state)
{
    (void)state;
    char a[37], b[37];
    /* AA "12" + AB "3" against AA "1" + AB "23" */
    key_of("11YN20261207    101500                  AODWN|AA12|AB3|", 1, 42, a);
    key_of("11YN20261207    101500                  AODWN|AA1|AB23|", 1, 42, b);
    assert_string_not_equal(a, b);
}

static void test_a_trusted_date_ignores_the_arrival_time(void **state)
{
    (void)state;
    char a[37], b[37];
    key_at(CHECKOUT, 1, 42, NOW, a);
    key_at(CHECKOUT, 1, 42, NOW + 50 * 60, b); /* a resend much later: the same */
    assert_string_equal(a, b);
    /* "   Z": the date is UTC (and here so is the library) */
    key_at("11YN20261207   Z101500                  AODWN|AA2|AB3|", 1, 42, NOW, a);
    key_at("11YN20261207   Z101500                  AODWN|AA2|AB3|", 1, 42, NOW + 120, b);
    assert_string_equal(a, b);
}

/* A blank, malformed or far-off transaction date: the minute of arrival counts. */
static void test_an_untrusted_date_adds_the_minute(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "09N                  20261207    101500AP|AODWN|AB31234000000002|",
        "09N19700101    00000020261207    101500AP|AODWN|AB31234000000002|",
        "09N20261207    11160020261207    101500AP|AODWN|AB31234000000002|",
        "09N20261207    09140020261207    101500AP|AODWN|AB31234000000002|",
        "09N20261231    10150020261207    101500AP|AODWN|AB31234000000002|",
        "09N20261207XXXX1015xx20261207    101500AP|AODWN|AB31234000000002|",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        char a[37], b[37];
        key_at(lines[i], 1, 42, NOW, a);
        key_at(lines[i], 1, 42, NOW + 59, b); /* within the same minute: a resend */
        assert_string_equal(a, b);
        key_at(lines[i], 1, 42, NOW + 60, b); /* a minute later: another return */
        assert_string_not_equal(a, b);
    }
    /* within the hour: trusted */
    char a[37], b[37];
    const char *near = "09N20261207    11140020261207    101500AP|AODWN|AB31234000000002|";
    key_at(near, 1, 42, NOW, a);
    key_at(near, 1, 42, NOW + 600, b);
    assert_string_equal(a, b);
}

static void test_fee_paid_keys_by_transaction_id(void **state)
{
    (void)state;
    char a[37], b[37];
    key_of("3720261207    1015000100USDBV1.00|AODWN|AA2|BKtx-1|", 1, 42, a);
    key_of("3720261207    1015000100USDBV1.00|AODWN|AA2|BKtx-2|", 1, 42, b);
    assert_string_not_equal(a, b);
    key_of("3720261207    1015000100USDBV1.00|AODWN|AA2|BKtx-1|", 1, 42, b);
    assert_string_equal(a, b);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_is_a_version_8_uuid),
        cmocka_unit_test(test_a_resend_has_the_same_key),
        cmocka_unit_test(test_each_part_changes_the_key),
        cmocka_unit_test(test_parts_do_not_run_together),
        cmocka_unit_test(test_a_trusted_date_ignores_the_arrival_time),
        cmocka_unit_test(test_an_untrusted_date_adds_the_minute),
        cmocka_unit_test(test_fee_paid_keys_by_transaction_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
