/*
 * Unit tests for common/countcsv.c: the gate counter and computer session
 * files of CountImport read into rows, each bad line named by its number and
 * the field that is wrong.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "countcsv.h"

static arena_t arena;

static int setup(void **state)
{
    (void)state;
    arena_init(&arena);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(&arena);
    return 0;
}

static countcsv_t parse(countcsv_kind_t kind, const char *text)
{
    countcsv_t c;
    countcsv_parse(&arena, kind, text, strlen(text), 100, &c);
    return c;
}

static void test_gate_by_name_any_order(void **state)
{
    (void)state;
    countcsv_t c = parse(COUNTCSV_GATE, "Count,Date , TIME,counter\n"
                                        "12,2026-03-02,09:00,north\n"
                                        "7,03/02/2026,9:15:00,\n");
    assert_int_equal(c.lines, 2);
    assert_int_equal(c.n_bad, 0);
    assert_int_equal(c.n_rows, 2);
    assert_int_equal(c.rows[0].line, 2);
    assert_string_equal(c.rows[0].day, "2026-03-02");
    assert_string_equal(c.rows[0].time, "09:00");
    assert_string_equal(c.rows[0].counter, "north");
    assert_int_equal(c.rows[0].count, 12);
    assert_int_equal(c.rows[1].line, 3);
    assert_string_equal(c.rows[1].day, "2026-03-02");
    assert_string_equal(c.rows[1].time, "09:15");
    assert_string_equal(c.rows[1].counter, "");
    assert_int_equal(c.rows[1].count, 7);
}

static void test_in_and_out_added(void **state)
{
    (void)state;
    countcsv_t c = parse(COUNTCSV_GATE, "date,in,out\r\n2026-01-05,10,12\r\n");
    assert_int_equal(c.n_rows, 1);
    assert_int_equal(c.rows[0].count, 22);
    assert_string_equal(c.rows[0].time, ""); /* a whole day */
}

static void test_bom_crlf_quotes_and_blank_lines(void **state)
{
    (void)state;
    countcsv_t c = parse(COUNTCSV_GATE, "\xef\xbb\xbf\"date\",\"time\",\"count\"\r\n"
                                        "\r\n"
                                        "\"2026-01-05\",\"10:00\",\"5\"\r\n"
                                        "\n"
                                        "2026-01-05,11:00,\" 6 \"\r\n");
    assert_int_equal(c.n_bad, 0);
    assert_int_equal(c.lines, 2);
    assert_int_equal(c.n_rows, 2);
    assert_int_equal(c.rows[0].line, 3);
    assert_int_equal(c.rows[1].line, 5);
    assert_int_equal(c.rows[1].count, 6);
}

static void test_bad_lines_numbered(void **state)
{
    (void)state;
    countcsv_t c = parse(COUNTCSV_GATE, "date,time,count\n"
                                        "2026-01-05,10:00,5\n"
                                        "2026-02-30,10:00,5\n" /* no such day */
                                        "2026-01-05,25:00,5\n" /* no such time */
                                        "2026-01-05,10:00,abc\n"
                                        "2026-01-05,10:00,-3\n"
                                        "2026-01-05,10:00\n" /* short */
                                        "2026-01-05,12:00,9\n");
    assert_int_equal(c.lines, 7);
    assert_int_equal(c.n_rows, 2);
    assert_int_equal(c.rows[1].line, 8);
    assert_int_equal(c.n_bad, 5);
    assert_int_equal(c.bad_total, 5);
    const int lines[] = {3, 4, 5, 6, 7};
    const char *reasons[] = {"field:date", "field:time", "field:count", "field:count",
                             "field:count"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(c.bad[i].line, lines[i]);
        assert_string_equal(c.bad[i].reason, reasons[i]);
        assert_non_null(c.bad[i].message);
    }
    assert_non_null(strstr(c.bad[2].message, "\"abc\""));
    assert_non_null(strstr(c.bad[4].message, "missing"));
}

static void test_quoted_field_spans_lines(void **state)
{
    (void)state;
    countcsv_t c = parse(COUNTCSV_GATE, "date,count,note\n"
                                        "2026-01-05,4,\"two\nlines\"\n"
                                        "2026-01-06,x,\n");
    assert_int_equal(c.n_rows, 1);
    assert_int_equal(c.n_bad, 1);
    assert_int_equal(c.bad[0].line, 4); /* the row after the two-line one */
}

static void test_header_missing_column(void **state)
{
    (void)state;
    countcsv_t c = parse(COUNTCSV_GATE, "date,time,total\n2026-01-05,10:00,5\n");
    assert_true(c.header_bad);
    assert_int_equal(c.n_rows, 0);
    assert_int_equal(c.n_bad, 1);
    assert_int_equal(c.bad[0].line, 1);
    assert_string_equal(c.bad[0].reason, "field:count");
    c = parse(COUNTCSV_COMPUTERS, "date,count\n");
    assert_true(c.header_bad);
    assert_string_equal(c.bad[0].reason, "field:sessions");
    c = parse(COUNTCSV_GATE, "");
    assert_true(c.header_bad);
    assert_string_equal(c.bad[0].reason, "field:header");
}

static void test_unclosed_quote_stops(void **state)
{
    (void)state;
    countcsv_t c = parse(COUNTCSV_GATE, "date,count\n2026-01-05,4\n2026-01-06,\"5\n2026-01-07,1\n");
    assert_int_equal(c.n_rows, 1);
    assert_int_equal(c.n_bad, 1);
    assert_int_equal(c.bad[0].line, 3);
    assert_string_equal(c.bad[0].reason, "field:line");
}

static void test_counter_names(void **state)
{
    (void)state;
    countcsv_t c = parse(COUNTCSV_GATE, "date,count,counter\n2026-01-05,4,North Door\n"
                                        "2026-01-05,4,side-2\n");
    assert_int_equal(c.n_bad, 1);
    assert_string_equal(c.bad[0].reason, "field:counter");
    assert_int_equal(c.n_rows, 1);
    assert_string_equal(c.rows[0].counter, "side-2");
}

static void test_computers(void **state)
{
    (void)state;
    countcsv_t c = parse(COUNTCSV_COMPUTERS, "Date,Sessions,Minutes\n"
                                             "1/2/2026,40,1200\n"
                                             "2026-01-03,41,\n"
                                             "2026-01-04,100001,\n"
                                             "2026-01-05,3,lots\n");
    assert_int_equal(c.n_rows, 2);
    assert_true(c.rows[0].has_minutes);
    assert_int_equal(c.rows[0].minutes, 1200);
    assert_string_equal(c.rows[0].day, "2026-01-02");
    assert_false(c.rows[1].has_minutes);
    assert_int_equal(c.n_bad, 2);
    assert_string_equal(c.bad[0].reason, "field:sessions");
    assert_string_equal(c.bad[1].reason, "field:minutes");
}

static void test_bad_lines_cut_off_but_counted(void **state)
{
    (void)state;
    char text[4096] = "date,count\n";
    for (int i = 0; i < 20; i++)
        strcat(text, "nope,1\n");
    countcsv_t c;
    countcsv_parse(&arena, COUNTCSV_GATE, text, strlen(text), 5, &c);
    assert_int_equal(c.n_bad, 5);
    assert_int_equal(c.bad_total, 20);
    assert_int_equal(c.lines, 20);
}

static void test_many_rows(void **state)
{
    (void)state;
    /* A year of 15-minute periods is 35040 rows: the array grows. */
    size_t cap = 40000 * 24;
    char *text = arena_alloc(&arena, cap);
    size_t n = (size_t)snprintf(text, cap, "date,time,count\n");
    for (int i = 0; i < 35040; i++)
        n += (size_t)snprintf(text + n, cap - n, "2026-%02d-%02d,%02d:%02d,%d\n", 1 + i % 12,
                              1 + i % 28, (i / 4) % 24, (i % 4) * 15, i % 100);
    countcsv_t c;
    countcsv_parse(&arena, COUNTCSV_GATE, text, n, 10, &c);
    assert_int_equal(c.n_bad, 0);
    assert_int_equal(c.n_rows, 35040);
    assert_int_equal(c.rows[35039].line, 35041);
}

static void test_value_helpers(void **state)
{
    (void)state;
    char d[11], t[6];
    int64_t v;
    assert_true(countcsv_day("2024-02-29", d));
    assert_false(countcsv_day("2023-02-29", d));
    assert_false(countcsv_day("2023-2-28", d));
    assert_true(countcsv_day("12/31/2026", d));
    assert_string_equal(d, "2026-12-31");
    assert_false(countcsv_day("31/12/2026", d)); /* day first is not this format */
    assert_false(countcsv_day("1/2/26", d));
    /* Found by fuzz_countcsv: a long run of digits is refused, not overflowed. */
    assert_false(countcsv_day("1/29999999999999999999/2026", d));
    assert_false(countcsv_day("29999999999999999999/1/2026", d));
    assert_true(countcsv_time("0:05", t));
    assert_string_equal(t, "00:05");
    assert_false(countcsv_time("24:00", t));
    assert_false(countcsv_time("10:5", t));
    assert_false(countcsv_time("10:05:60", t));
    assert_true(countcsv_int(" 42 ", 100, &v));
    assert_int_equal(v, 42);
    assert_false(countcsv_int("101", 100, &v));
    assert_false(countcsv_int("4 2", 100, &v));
    assert_false(countcsv_int("", 100, &v));
    assert_false(countcsv_int("99999999999999999999999", COUNTCSV_COUNT_MAX, &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gate_by_name_any_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_and_out_added, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bom_crlf_quotes_and_blank_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_lines_numbered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quoted_field_spans_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_missing_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unclosed_quote_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_computers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_lines_cut_off_but_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_helpers, setup, teardown),
    };
    return cmocka_run_group_tests_name("countcsv", tests, NULL, NULL);
}
