/*
 * Unit tests for server/pgtext.c: PostgreSQL one-dimensional array literals
 * both ways, and integers as text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pgtext.h"

static int arena_setup(void **state)
{
    static arena_t arena;
    arena_init(&arena);
    *state = &arena;
    return 0;
}

static int arena_teardown(void **state)
{
    arena_free(*state);
    return 0;
}

static void test_parse_empty_array(void **state)
{
    size_t n = 99;
    assert_null(pgtext_array_parse(*state, "{}", &n));
    assert_int_equal(n, 0);
}

static void test_parse_one(void **state)
{
    size_t n = 99;
    char **v = pgtext_array_parse(*state, "{DWN}", &n);
    assert_int_equal(n, 1);
    assert_non_null(v);
    assert_string_equal(v[0], "DWN");
}

static void test_parse_two(void **state)
{
    size_t n = 0;
    char **v = pgtext_array_parse(*state, "{A,B}", &n);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "A");
    assert_string_equal(v[1], "B");
}

static void test_parse_quoted_escaped_and_null(void **state)
{
    size_t n = 0;
    char **v = pgtext_array_parse(*state, "{\"a b\",\"c\\\"d\",NULL}", &n);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "a b");
    assert_string_equal(v[1], "c\"d");
    assert_null(v[2]);
}

/* Quoted "NULL" is the four-letter string; only the bare word is a null. */
static void test_parse_quoted_null_is_a_string(void **state)
{
    size_t n = 0;
    char **v = pgtext_array_parse(*state, "{\"NULL\",NULL,null}", &n);
    assert_int_equal(n, 3);
    assert_non_null(v[0]);
    assert_string_equal(v[0], "NULL");
    assert_null(v[1]);
}

static void test_parse_quoted_specials(void **state)
{
    size_t n = 0;
    char **v = pgtext_array_parse(*state, "{\"a,b\",\"x}y\",\"\\\\\",\"\",\"{\"}", &n);
    assert_int_equal(n, 5);
    assert_string_equal(v[0], "a,b");
    assert_string_equal(v[1], "x}y");
    assert_string_equal(v[2], "\\");
    assert_string_equal(v[3], "");
    assert_string_equal(v[4], "{");
}

/* Integer arrays as PostgreSQL prints them (staff branch ids). */
static void test_parse_numbers(void **state)
{
    size_t n = 0;
    char **v = pgtext_array_parse(*state, "{1,22,-3}", &n);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "1");
    assert_string_equal(v[1], "22");
    assert_string_equal(v[2], "-3");
}

static void test_parse_not_an_array(void **state)
{
    size_t n = 99;
    assert_null(pgtext_array_parse(*state, NULL, &n));
    assert_int_equal(n, 0);
    n = 99;
    assert_null(pgtext_array_parse(*state, "", &n));
    assert_int_equal(n, 0);
    n = 99;
    assert_null(pgtext_array_parse(*state, "A,B", &n));
    assert_int_equal(n, 0);
    n = 99;
    assert_null(pgtext_array_parse(*state, " {A}", &n));
    assert_int_equal(n, 0);
    n = 99;
    assert_null(pgtext_array_parse(*state, "(1,2)", &n));
    assert_int_equal(n, 0);
}

/* Cut short, the parser stops at the end of the text. */
static void test_parse_truncated(void **state)
{
    size_t n = 0;
    char **v = pgtext_array_parse(*state, "{A,B", &n);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "A");
    assert_string_equal(v[1], "B");
    v = pgtext_array_parse(*state, "{\"abc", &n);
    assert_int_equal(n, 1);
    assert_string_equal(v[0], "abc");
    assert_null(pgtext_array_parse(*state, "{", &n));
    assert_int_equal(n, 0);
}

/*
 * Malformed text must not make the parser write past the array it
 * allocated. The array is sized by counting commas (pgtext.c:11-15), but a
 * quoted element followed by anything other than ',' or '}' starts another
 * element with no comma between (pgtext.c:29-30, 41-42), and items[*n] is
 * written without a bound (pgtext.c:36-40), so {"a""b""c"} stores three
 * elements into room for one. The arena is first filled so that the
 * array ends exactly at the end of a chunk, where AddressSanitizer sees the
 * overflow; without it, the count check below fails instead.
 * PostgreSQL never prints such text; the parser must still stay in bounds.
 */
static void test_parse_malformed_stays_in_bounds(void **state)
{
    arena_t *a = *state;
    (void)arena_alloc(a, 8192 - 16);
    size_t n = 0;
    char **v = pgtext_array_parse(a, "{\"a\"\"b\"\"c\"}", &n);
    /* No commas: at most one element fits what was allocated. */
    assert_true(n <= 1);
    if (n == 1)
        assert_non_null(v);
}

static void test_build(void **state)
{
    char *items[] = {"DWN", "PARK ST", "c\"d", "back\\slash"};
    assert_string_equal(pgtext_array_build(*state, items, 4),
                        "{\"DWN\",\"PARK ST\",\"c\\\"d\",\"back\\\\slash\"}");
    assert_string_equal(pgtext_array_build(*state, items, 1), "{\"DWN\"}");
    assert_string_equal(pgtext_array_build(*state, NULL, 0), "{}");
}

/* Whatever goes through build comes back through parse unchanged. */
static void test_build_parse_round_trip(void **state)
{
    char *items[] = {
        "",   "NULL", "null",     "a,b", "x}y",    "{",      "}",     "\\",
        "\"", "\\\"", " spaced ", "Zoë", "NULL\\", "\"\"\"", "a\\,b", "tab\there",
    };
    size_t count = sizeof(items) / sizeof(items[0]);
    for (size_t k = 0; k <= count; k++) {
        char *text = pgtext_array_build(*state, items, k);
        size_t n = 99;
        char **back = pgtext_array_parse(*state, text, &n);
        assert_int_equal(n, k);
        for (size_t i = 0; i < k; i++) {
            if (back[i] == NULL)
                fail_msg("element %zu of %s came back NULL", i, text);
            assert_string_equal(back[i], items[i]);
        }
    }
}

/* A long element exercises the sizing of the output. */
static void test_build_long_escaped(void **state)
{
    char big[2001];
    for (size_t i = 0; i < 2000; i++)
        big[i] = (i % 2) ? '"' : '\\';
    big[2000] = '\0';
    char *items[] = {big, big};
    char *text = pgtext_array_build(*state, items, 2);
    assert_int_equal(strlen(text), 2 + 2 * (2 + 4000) + 1);
    size_t n = 0;
    char **back = pgtext_array_parse(*state, text, &n);
    assert_int_equal(n, 2);
    assert_string_equal(back[0], big);
    assert_string_equal(back[1], big);
}

/* For a repeated string field: NULL elements become "" in place, so positions are kept. */
static void test_strings_null_as_empty(void **state)
{
    size_t n = 0;
    char **v = pgtext_array_strings(*state, "{a,NULL,\"NULL\",b}", &n);
    assert_int_equal(n, 4);
    assert_string_equal(v[0], "a");
    assert_string_equal(v[1], "");
    assert_string_equal(v[2], "NULL");
    assert_string_equal(v[3], "b");
    assert_null(pgtext_array_strings(*state, "", &n)); /* SQL NULL as COL gives it */
    assert_int_equal(n, 0);
}

static void test_int(void **state)
{
    assert_string_equal(pgtext_int(*state, 0), "0");
    assert_string_equal(pgtext_int(*state, 42), "42");
    assert_string_equal(pgtext_int(*state, -1), "-1");
    assert_string_equal(pgtext_int(*state, INT64_MAX), "9223372036854775807");
    assert_string_equal(pgtext_int(*state, INT64_MIN), "-9223372036854775808");
}

static void test_int_array(void **state)
{
    const int64_t v[] = {1, -2, INT64_MIN, 7};
    const bool has[] = {true, false, true, true};
    assert_string_equal(pgtext_int_array(*state, v, NULL, 0), "{}");
    assert_string_equal(pgtext_int_array(*state, v, NULL, 2), "{1,-2}");
    assert_string_equal(pgtext_int_array(*state, v, has, 4), "{1,NULL,-9223372036854775808,7}");
}

static void test_bool(void **state)
{
    (void)state;
    assert_string_equal(pgtext_bool(true), "true");
    assert_string_equal(pgtext_bool(false), "false");
}

#define PGTEXT_TEST(f) cmocka_unit_test_setup_teardown(f, arena_setup, arena_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        PGTEXT_TEST(test_parse_empty_array),
        PGTEXT_TEST(test_parse_one),
        PGTEXT_TEST(test_parse_two),
        PGTEXT_TEST(test_parse_quoted_escaped_and_null),
        PGTEXT_TEST(test_parse_quoted_null_is_a_string),
        PGTEXT_TEST(test_parse_quoted_specials),
        PGTEXT_TEST(test_parse_numbers),
        PGTEXT_TEST(test_parse_not_an_array),
        PGTEXT_TEST(test_parse_truncated),
        PGTEXT_TEST(test_parse_malformed_stays_in_bounds),
        PGTEXT_TEST(test_build),
        PGTEXT_TEST(test_build_parse_round_trip),
        PGTEXT_TEST(test_build_long_escaped),
        PGTEXT_TEST(test_strings_null_as_empty),
        PGTEXT_TEST(test_int),
        PGTEXT_TEST(test_int_array),
        PGTEXT_TEST(test_bool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
