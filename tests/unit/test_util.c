/*
 * Unit tests for common/util.c: the helpers whose edge cases matter to
 * callers (number parsing for command lines, UUID checks for request keys).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "util.h"

static void test_parse_int_accepts_whole_numbers(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_true(util_parse_int("42", 1, 100, &v));
    assert_int_equal(v, 42);
    assert_true(util_parse_int("-5", -10, 10, &v));
    assert_int_equal(v, -5);
    assert_true(util_parse_int("9223372036854775807", 1, INT64_MAX, &v));
    assert_true(v == INT64_MAX);
}

static void test_parse_int_refuses_junk_and_range(void **state)
{
    (void)state;
    int64_t v = 7;
    const char *bad[] = {
        "", " 4", "4 ", "4x", "x4", "0x10", "1e3", "3.0", "--1", "9223372036854775808", NULL};
    for (int i = 0; bad[i]; i++)
        assert_false(util_parse_int(bad[i], INT64_MIN, INT64_MAX, &v));
    assert_false(util_parse_int(NULL, 0, 1, &v));
    assert_false(util_parse_int("0", 1, 100, &v));
    assert_false(util_parse_int("101", 1, 100, &v));
    assert_int_equal(v, 7); /* untouched on failure */
}

static void test_uuid_shape(void **state)
{
    (void)state;
    char u[37], later[37];
    int64_t before = util_now_ms();
    assert_int_equal(util_uuid7(u), 0);
    assert_true(util_is_uuid(u));
    assert_int_equal(u[14], '7');
    assert_true(strchr("89ab", u[19]) != NULL);
    /* The first 48 bits are the time it was made, in milliseconds. */
    char ms_hex[13];
    memcpy(ms_hex, u, 8);
    memcpy(ms_hex + 8, u + 9, 4);
    ms_hex[12] = '\0';
    int64_t ms = (int64_t)strtoll(ms_hex, NULL, 16);
    assert_true(ms >= before && ms <= util_now_ms());
    /* Made later, it sorts after (once the millisecond has changed). */
    while (util_now_ms() == ms)
        ;
    assert_int_equal(util_uuid7(later), 0);
    assert_true(strcmp(later, u) > 0);
    assert_true(util_is_uuid("123e4567-e89b-42d3-a456-426614174000"));
    assert_false(util_is_uuid("123e4567e89b42d3a456426614174000"));
    assert_false(util_is_uuid("123e4567-e89b-42d3-a456-42661417400"));
    assert_false(util_is_uuid("123e4567-e89b-42d3-a456-4266141740000"));
    assert_false(util_is_uuid("g23e4567-e89b-42d3-a456-426614174000"));
}

/* A soft limit below the hard one is raised to it (carreld and carrel-bench at start). */
static void test_raise_nofile_to_the_hard_limit(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= 64)
        skip();
    rlim_t low = 64;
    struct rlimit lowered = {.rlim_cur = low, .rlim_max = rl.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lowered), 0);
    unsigned long long hard = 0;
    assert_int_equal(util_raise_nofile(&hard), 0);
    assert_true(hard == (unsigned long long)rl.rlim_max);
    struct rlimit now;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
    assert_true(now.rlim_cur == rl.rlim_max);
    /* Already at the hard limit: nothing to do, still 0. */
    assert_int_equal(util_raise_nofile(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_int_accepts_whole_numbers),
        cmocka_unit_test(test_parse_int_refuses_junk_and_range),
        cmocka_unit_test(test_uuid_shape),
        cmocka_unit_test(test_raise_nofile_to_the_hard_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
