/*
 * Unit tests for what the client shows people (client/output.c): titles cut
 * at a character boundary and by display columns with "…", dates, short
 * patron names, hold status words and where a hold stands, money, and a
 * batch command's JSON element.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "carrel.pb-c.h"
#include "output.h"

static void test_cut_leaves_short_titles_alone(void **state)
{
    (void)state;
    char out[64];
    output_cut(out, sizeof(out), "Dune", 10);
    assert_string_equal(out, "Dune");
    output_cut(out, sizeof(out), "0123456789", 10); /* exactly the room */
    assert_string_equal(out, "0123456789");
    output_cut(out, sizeof(out), NULL, 10);
    assert_string_equal(out, "");
}

static void test_cut_ascii_with_ellipsis(void **state)
{
    (void)state;
    char out[64];
    output_cut(out, sizeof(out), "The Left Hand of Darkness", 10);
    assert_string_equal(out, "The Left \xe2\x80\xa6"); /* 9 columns and "…" */
    assert_int_equal(output_width(out), 10);
}

/* "é" is two bytes: a byte cut would split it; a column cut keeps it whole. */
static void test_cut_multibyte_at_character_boundary(void **state)
{
    (void)state;
    char out[64];
    output_cut(out, sizeof(out), "\xc3\xa9t\xc3\xa9 \xc3\xa0 Paris", 4);
    assert_string_equal(out, "\xc3\xa9t\xc3\xa9\xe2\x80\xa6");
    /* Each CJK character takes two columns: three of them do not fit in 6 with "…". */
    output_cut(out, sizeof(out), "\xe6\x9d\xb1\xe4\xba\xac\xe7\x89\xa9\xe8\xaa\x9e", 6);
    assert_string_equal(out, "\xe6\x9d\xb1\xe4\xba\xac\xe2\x80\xa6");
    assert_int_equal(output_width(out), 5);
}

/* A combining mark (U+0301) goes with its base letter, never alone. */
static void test_cut_keeps_combining_marks_with_their_base(void **state)
{
    (void)state;
    char out[64];
    output_cut(out, sizeof(out),
               "Caf"
               "e\xcc\x81"
               " society",
               5);
    assert_string_equal(out, "Caf"
                             "e\xcc\x81"
                             "\xe2\x80\xa6");
    output_cut(out, sizeof(out), "Cafe\xcc\x81", 4); /* four columns: fits whole */
    assert_string_equal(out, "Cafe\xcc\x81");
}

/* A small buffer cuts on a character boundary too, and is always a string. */
static void test_cut_small_buffer(void **state)
{
    (void)state;
    char out[6];
    output_cut(out, sizeof(out), "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 40);
    assert_string_equal(out, "\xc3\xa9\xe2\x80\xa6"); /* 2 bytes, "…" (3) and the NUL */
    output_cut(out, 1, "abc", 40);
    assert_string_equal(out, "");
}

static void test_dates(void **state)
{
    (void)state;
    char out[32];
    output_date(out, sizeof(out), "2026-03-03T14:05:09.123+00:00");
    assert_string_equal(out, "2026-03-03");
    output_time(out, sizeof(out), "2026-03-03T14:05:09.123+00:00");
    assert_string_equal(out, "2026-03-03 14:05");
    output_date(out, sizeof(out), NULL);
    assert_string_equal(out, "");
}

static void test_short_name(void **state)
{
    (void)state;
    char out[64];
    output_short_name(out, sizeof(out), NULL, "Maria", "Garcia");
    assert_string_equal(out, "Maria G.");
    output_short_name(out, sizeof(out), "Mia", "Maria", "\xc3\x89lise");
    assert_string_equal(out, "Mia \xc3\x89."); /* the whole first character */
    output_short_name(out, sizeof(out), "", "Cher", "");
    assert_string_equal(out, "Cher");
}

static void test_hold_status_and_where(void **state)
{
    (void)state;
    assert_string_equal(output_hold_status("in_transit"), "in transit");
    assert_string_equal(output_hold_status("waiting"), "waiting");
    assert_string_equal(output_hold_status(NULL), "");
    Carrel__Hold h = CARREL__HOLD__INIT;
    char out[128];
    h.status = "waiting";
    h.has_position = 1;
    h.position = 2;
    h.suspended_until = "2026-05-01";
    h.target_barcode = "31000";
    h.target_branch = "DWN";
    output_hold_where(out, sizeof(out), &h, false);
    assert_string_equal(out, "#2 in queue, suspended until 2026-05-01");
    output_hold_where(out, sizeof(out), &h, true);
    assert_string_equal(out, "#2 in queue, suspended until 2026-05-01, pull 31000 at DWN");
    h.status = "ready";
    h.shelf_expires_on = "2026-03-10";
    h.captured_barcode = "31001";
    output_hold_where(out, sizeof(out), &h, false);
    assert_string_equal(out, "on the shelf until 2026-03-10");
    output_hold_where(out, sizeof(out), &h, true);
    assert_string_equal(out, "on the shelf until 2026-03-10 (31001)");
    h.status = "in_transit";
    output_hold_where(out, sizeof(out), &h, false);
    assert_string_equal(out, "on its way");
    output_hold_where(out, sizeof(out), &h, true);
    assert_string_equal(out, "copy 31001 on its way");
    char small[8];
    h.status = "waiting";
    output_hold_where(small, sizeof(small), &h, true);
    assert_string_equal(small, "#2 in q"); /* truncated, still a string */
}

static void test_money_in_one_place(void **state)
{
    (void)state;
    char out[32];
    output_money(out, sizeof(out), 1250);
    assert_string_equal(out, "$12.50");
    output_money(out, sizeof(out), -5);
    assert_string_equal(out, "-$0.05");
}

/* An answer in a batch's array carries "ok" first, then its fields; a loan not renewed says false.
 */
static void test_batch_element_says_ok(void **state)
{
    (void)state;
    Carrel__RenewResult done = CARREL__RENEW_RESULT__INIT, refused = CARREL__RENEW_RESULT__INIT;
    done.barcode = "31";
    done.has_renewed = 1;
    done.renewed = 1;
    refused.barcode = "32";
    refused.has_renewed = 1;
    refused.renewed = 0;
    json_t j;
    json_init(&j);
    json_array_begin(&j);
    output_json_element(&j, &done.base, done.renewed);
    output_json_element(&j, &refused.base, refused.renewed);
    json_array_end(&j);
    char *got = strndup((const char *)j.out.data, j.out.len);
    assert_non_null(got);
    assert_string_equal(got, "[{\"ok\":true,\"barcode\":\"31\",\"renewed\":true},"
                             "{\"ok\":false,\"barcode\":\"32\",\"renewed\":false}]");
    free(got);
    json_free(&j);
}

int main(void)
{
    /* Display widths are the locale's: the tests need a UTF-8 one. */
    if (setlocale(LC_ALL, "C.UTF-8") == NULL)
        setlocale(LC_ALL, "en_US.UTF-8");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_leaves_short_titles_alone),
        cmocka_unit_test(test_cut_ascii_with_ellipsis),
        cmocka_unit_test(test_cut_multibyte_at_character_boundary),
        cmocka_unit_test(test_cut_keeps_combining_marks_with_their_base),
        cmocka_unit_test(test_cut_small_buffer),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_short_name),
        cmocka_unit_test(test_hold_status_and_where),
        cmocka_unit_test(test_money_in_one_place),
        cmocka_unit_test(test_batch_element_says_ok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
