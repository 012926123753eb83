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

#include <cmocka.h>

#include "sip.h"

#define CHECKOUT "11YN20261207    101500                  AODWN|AA21234000000001|AB31234000000002|"

/* The key of `line` (a message without AY/AZ, seq appended when >= 0) for staff. */
static void key_of(const char *line, int seq, int64_t staff, char out[37])
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
    const char *k = sip_key(r);
    assert_ptr_equal(k, r->key);
    memcpy(out, k, 37);
    arena_free(&r->arena);
    free(r);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_is_a_version_8_uuid),
        cmocka_unit_test(test_a_resend_has_the_same_key),
        cmocka_unit_test(test_each_part_changes_the_key),
        cmocka_unit_test(test_parts_do_not_run_together),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
