/*
 * Unit tests for the client's money and count formats (client/output.c) and
 * the request keys of a command (cli_next_request_key in client/cli.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "output.h"

static void test_money(void **state)
{
    (void)state;
    static const struct {
        int64_t cents;
        const char *text;
    } cases[] = {
        {0, "$0.00"},
        {5, "$0.05"},
        {-5, "-$0.05"},
        {1250, "$12.50"},
        {-500, "-$5.00"},
        {INT64_MAX, "$92233720368547758.07"},
        {INT64_MIN, "-$92233720368547758.08"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[40];
        output_money(out, sizeof(out), cases[i].cents);
        assert_string_equal(out, cases[i].text);
    }
}

static void test_count(void **state)
{
    (void)state;
    char out[32];
    output_count(out, sizeof(out), 1, "day", "days");
    assert_string_equal(out, "1 day");
    output_count(out, sizeof(out), 21, "day", "days");
    assert_string_equal(out, "21 days");
    output_count(out, sizeof(out), 0, "hour", "hours");
    assert_string_equal(out, "0 hours");
}

/* --request-key K: K, then K plus 1, plus 2 in the last 12 digits, lower case, wrapping. */
static void test_request_keys(void **state)
{
    (void)state;
    cli_t cli;
    memset(&cli, 0, sizeof(cli));
    cli.request_key = "0D5E3C1A-1111-4222-8333-FFFFFFFFFFFE";
    char key[37];
    assert_int_equal(cli_next_request_key(&cli, key), EXIT_OK);
    assert_string_equal(key, "0d5e3c1a-1111-4222-8333-fffffffffffe");
    assert_int_equal(cli_next_request_key(&cli, key), EXIT_OK);
    assert_string_equal(key, "0d5e3c1a-1111-4222-8333-ffffffffffff");
    assert_int_equal(cli_next_request_key(&cli, key), EXIT_OK);
    assert_string_equal(key, "0d5e3c1a-1111-4222-8333-000000000000");
    /* Without one, a fresh key is made once and the rest follow from it. */
    memset(&cli, 0, sizeof(cli));
    char first[37], second[37];
    assert_int_equal(cli_next_request_key(&cli, first), EXIT_OK);
    assert_int_equal(cli_next_request_key(&cli, second), EXIT_OK);
    assert_string_equal(cli.request_key, first);
    assert_memory_equal(first, second, 24);
    assert_string_not_equal(first, second);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_money),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_request_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
