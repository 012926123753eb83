/*
 * Unit tests for common/text.c: which bytes are acceptable text, the last
 * guard for messages the server builds, and the escapes used for printing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "text.h"

static text_problem_t check(const char *s, size_t n, size_t *at, uint32_t *cp)
{
    return text_check((const uint8_t *)s, n, at, cp);
}

static text_problem_t checkz(const char *s)
{
    return check(s, strlen(s), NULL, NULL);
}

static void test_accepts_text_tabs_and_line_breaks(void **state)
{
    (void)state;
    assert_int_equal(checkz(""), TEXT_OK);
    assert_int_equal(checkz("Paid at the desk\n\tsecond line"), TEXT_OK);
    assert_int_equal(checkz("Zoë Brontë — Ça va? 東京 \xF0\x9F\x93\x9A"), TEXT_OK);
    assert_int_equal(checkz("\xEF\xBF\xBF\xF4\x8F\xBF\xBF"), TEXT_OK); /* U+FFFF, U+10FFFF */
    assert_int_equal(checkz("\xC2\xA0"), TEXT_OK);                     /* U+00A0: after C1 */
}

static void test_refuses_nul_where_c_would_cut(void **state)
{
    (void)state;
    size_t at = 99;
    uint32_t cp = 99;
    assert_int_equal(check("secret\0junk", 11, &at, &cp), TEXT_NUL);
    assert_int_equal(at, 6);
    assert_int_equal(cp, 0);
    assert_int_equal(check("\0", 1, NULL, NULL), TEXT_NUL);
}

static void test_refuses_invalid_utf8(void **state)
{
    (void)state;
    const char *bad[] = {
        "\x80",             /* a lone continuation byte */
        "abc\xC3",          /* cut short */
        "\xC3(",            /* continuation missing */
        "\xC0\xAF",         /* overlong "/" */
        "\xC1\xBF",         /* overlong */
        "\xE0\x80\xAF",     /* overlong, three bytes */
        "\xF0\x80\x80\xAF", /* overlong, four bytes */
        "\xED\xA0\x80",     /* U+D800, a surrogate */
        "\xED\xBF\xBF",     /* U+DFFF */
        "\xF4\x90\x80\x80", /* U+110000 */
        "\xF5\x80\x80\x80", /* never a lead byte */
        "\xFF",             /* never in UTF-8 */
        "Latin-1 caf\xE9 au lait",
        NULL,
    };
    for (int i = 0; bad[i]; i++)
        assert_int_equal(checkz(bad[i]), TEXT_BAD_UTF8);
    size_t at = 0;
    uint32_t cp = 0;
    assert_int_equal(check("caf\xE9", 4, &at, &cp), TEXT_BAD_UTF8);
    assert_int_equal(at, 3);
    assert_int_equal(cp, 0xE9);
}

static void test_refuses_control_characters(void **state)
{
    (void)state;
    size_t at = 0;
    uint32_t cp = 0;
    assert_int_equal(check("red \x1B[31m", 9, &at, &cp), TEXT_CONTROL);
    assert_int_equal(at, 4);
    assert_int_equal(cp, 0x1B);
    assert_int_equal(checkz("over\rwrite"), TEXT_CONTROL); /* CR redraws the line */
    assert_int_equal(checkz("\x01"), TEXT_CONTROL);
    assert_int_equal(checkz("\x7F"), TEXT_CONTROL);
    assert_int_equal(checkz("\x0B\x0C"), TEXT_CONTROL);
    assert_int_equal(check("x\xC2\x9B"
                           "31m",
                           6, &at, &cp),
                     TEXT_CONTROL); /* C1 CSI */
    assert_int_equal(at, 1);
    assert_int_equal(cp, 0x9B);
    assert_int_equal(checkz("\xC2\x80"), TEXT_CONTROL);
    assert_true(text_is_control(0x9F));
    assert_false(text_is_control(0xA0));
    assert_false(text_is_control('\t'));
    assert_false(text_is_control('\n'));
}

static void test_sanitize_leaves_good_text_alone(void **state)
{
    (void)state;
    char s[] = "Zoë — 東京\n\tok";
    text_sanitize(s, true);
    assert_string_equal(s, "Zoë — 東京\n\tok");
}

static void test_sanitize_replaces_what_is_not_text(void **state)
{
    (void)state;
    char a[] = "a\x1B[2Jb\xC2\x9B"
               "c\xFF"
               "d\xE2\x80"; /* ends in a cut character */
    text_sanitize(a, true);
    assert_string_equal(a, "a?[2Jb?c?d??");
    char b[] = "one\ntwo\tthree";
    text_sanitize(b, false);
    assert_string_equal(b, "one?two?three");
}

static char *escape(const char *s, unsigned flags)
{
    struct buf b = BUF_INIT;
    assert_int_equal(text_escape(&b, s, flags), 0);
    assert_int_equal(buf_append(&b, "", 1), 0);
    return (char *)b.data;
}

static void test_escape_makes_controls_visible(void **state)
{
    (void)state;
    char *e = escape("note \x1B]0;owned\x07 \xC2\x9B"
                     "2J\r\x7F\xFF end",
                     0);
    assert_string_equal(e, "note \\e]0;owned\\x07 \\u{009B}2J\\r\\x7F\\xFF end");
    free(e);
    e = escape("a\nb\tc", 0);
    assert_string_equal(e, "a\\nb\\tc");
    free(e);
    e = escape("a\nb\tc", TEXT_ESCAPE_KEEP_LINES);
    assert_string_equal(e, "a\nb\tc");
    free(e);
}

static void test_escape_copies_printable_text(void **state)
{
    (void)state;
    char *e = escape("Zoë \\ Brontë 東京 📚", 0);
    assert_string_equal(e, "Zoë \\ Brontë 東京 📚");
    free(e);
    struct buf b = BUF_INIT;
    assert_int_equal(text_escape(&b, "", 0), 0);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_escape_bytes_and_carriage_returns(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_int_equal(text_escape_n(&b, (const uint8_t *)"a\0b\r", 4, 0), 0);
    assert_int_equal(text_escape_n(&b, (const uint8_t *)"\r[##  ]\x1b", 8, TEXT_ESCAPE_KEEP_CR), 0);
    assert_int_equal(buf_append(&b, "", 1), 0);
    assert_string_equal((char *)b.data, "a\\x00b\\r\r[##  ]\\e");
    buf_free(&b);
}

static void test_incomplete_character_at_the_end(void **state)
{
    (void)state;
    const uint8_t *s = (const uint8_t *)"ab\xE6\x9D\xB1"; /* 東 */
    assert_int_equal(text_utf8_incomplete(s, 5), 0);
    assert_int_equal(text_utf8_incomplete(s, 4), 2);
    assert_int_equal(text_utf8_incomplete(s, 3), 1);
    assert_int_equal(text_utf8_incomplete(s, 2), 0);
    assert_int_equal(text_utf8_incomplete(s, 0), 0);
    assert_int_equal(text_utf8_incomplete((const uint8_t *)"\xF0\x9F\x93", 3), 3);
    assert_int_equal(text_utf8_incomplete((const uint8_t *)"x\x80\x80\x80", 4), 0);
    assert_int_equal(text_utf8_incomplete((const uint8_t *)"\xFF", 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_text_tabs_and_line_breaks),
        cmocka_unit_test(test_refuses_nul_where_c_would_cut),
        cmocka_unit_test(test_refuses_invalid_utf8),
        cmocka_unit_test(test_refuses_control_characters),
        cmocka_unit_test(test_sanitize_leaves_good_text_alone),
        cmocka_unit_test(test_sanitize_replaces_what_is_not_text),
        cmocka_unit_test(test_escape_makes_controls_visible),
        cmocka_unit_test(test_escape_copies_printable_text),
        cmocka_unit_test(test_escape_bytes_and_carriage_returns),
        cmocka_unit_test(test_incomplete_character_at_the_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
