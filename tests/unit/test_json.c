/*
 * Unit tests for common/json.c's strings: what JSON requires escaped, plus
 * DEL and C1 controls (so a terminal never meets them raw) and bytes that are
 * not UTF-8 (U+FFFD, so the document stays valid JSON).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

/* The JSON text of one string value (malloc'd). */
static char *quoted(const char *s)
{
    json_t j;
    json_init(&j);
    json_string(&j, s);
    char *out = malloc(j.out.len + 1);
    memcpy(out, j.out.data, j.out.len);
    out[j.out.len] = '\0';
    json_free(&j);
    return out;
}

static void expect(const char *in, const char *want)
{
    char *got = quoted(in);
    assert_string_equal(got, want);
    free(got);
}

static void test_plain_and_required_escapes(void **state)
{
    (void)state;
    expect("Zoë 東京 📚", "\"Zoë 東京 📚\"");
    expect("say \"hi\" \\ bye", "\"say \\\"hi\\\" \\\\ bye\"");
    expect("a\nb\tc\rd", "\"a\\nb\\tc\\rd\"");
    expect("\x01\x1f", "\"\\u0001\\u001f\"");
}

static void test_terminal_controls_escaped(void **state)
{
    (void)state;
    expect("paid \x1b[2J", "\"paid \\u001b[2J\"");
    expect("del\x7f", "\"del\\u007f\"");
    expect("csi\xc2\x9b"
           "31m",
           "\"csi\\u009b31m\"");
    expect("nbsp\xc2\xa0", "\"nbsp\xc2\xa0\""); /* U+00A0 is printable */
}

static void test_invalid_utf8_replaced(void **state)
{
    (void)state;
    expect("caf\xe9!", "\"caf\\ufffd!\"");
    expect("\xc0\xaf", "\"\\ufffd\\ufffd\"");
    expect("cut \xe6\x9d", "\"cut \\ufffd\\ufffd\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_required_escapes),
        cmocka_unit_test(test_terminal_controls_escaped),
        cmocka_unit_test(test_invalid_utf8_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
