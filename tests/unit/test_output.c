/*
 * Unit tests for client/output.c: server text printed for people has its
 * control characters escaped, in tables (aligned by what is printed), by
 * out_safe, and through the terminal guard's stream, which must keep a
 * character whole when a write cuts it in two.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "output.h"
#include "text.h"

/* Everything written to the FILE by fn, as a malloc'd string. */
static char *captured(void (*fn)(FILE *))
{
    char *data = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&data, &len);
    assert_non_null(f);
    fn(f);
    assert_int_equal(fclose(f), 0);
    return data;
}

static void print_table(FILE *f)
{
    static const char *const headers[] = {"Name", "Note"};
    table_t *t = table_new(2, headers);
    const char *row1[] = {"Eve\x1b]0;owned\x07", "two\nlines"};
    const char *row2[] = {"Bob", NULL};
    table_add(t, row1);
    table_add(t, row2);
    table_print(t, f);
    table_free(t);
}

static void test_table_cells_escaped_and_aligned(void **state)
{
    (void)state;
    char *out = captured(print_table);
    assert_string_equal(out, "Name               Note\n"
                             "-----------------  ----------\n"
                             "Eve\\e]0;owned\\x07  two\\nlines\n"
                             "Bob                \n");
    free(out);
}

static void print_safe(FILE *f)
{
    out_safe(f, "Paid \x1b[31mred\x1b[0m\n\tthen \xc2\x9b"
                "2J and caf\xe9");
}

static void test_out_safe_keeps_lines(void **state)
{
    (void)state;
    char *out = captured(print_safe);
    assert_string_equal(out, "Paid \\e[31mred\\e[0m\n\tthen \\u{009B}2J and caf\\xE9");
    free(out);
    char *line = out_safe_line("a\nb\x1b");
    assert_string_equal(line, "a\\nb\\e");
    free(line);
}

/* Read what the guard wrote into the pipe (after it was closed). */
static char *drain(int fd)
{
    char *buf = calloc(1, 4096);
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, buf + n, 4095 - n)) > 0)
        n += (size_t)r;
    return buf;
}

static void test_guard_stream_escapes_and_keeps_characters_whole(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    FILE *f = output_guard_open(p[1], TEXT_ESCAPE_KEEP_LINES, _IONBF);
    assert_non_null(f);
    fputs("東京 \x1b[2J", f);
    fputs("a\xe6", f); /* 東 cut in two by separate unbuffered writes */
    fputs("\x9d\xb1 ok\r\n", f);
    fputs("end \xe6", f); /* cut at the very end: escaped on close */
    assert_int_equal(fclose(f), 0);
    close(p[1]);
    char *out = drain(p[0]);
    close(p[0]);
    assert_string_equal(out, "東京 \\e[2Ja東 ok\\r\nend \\xE6");
    free(out);
}

static void test_guard_stream_may_keep_carriage_returns(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    FILE *f = output_guard_open(p[1], TEXT_ESCAPE_KEEP_LINES | TEXT_ESCAPE_KEEP_CR, _IOLBF);
    assert_non_null(f);
    fprintf(f, "\r[##  ] %d/%d\x07", 2, 4);
    assert_int_equal(fclose(f), 0);
    close(p[1]);
    char *out = drain(p[0]);
    close(p[0]);
    assert_string_equal(out, "\r[##  ] 2/4\\x07");
    free(out);
}

/* Statistics for people: whole numbers as they are, others with two decimals. */
static void test_figures_and_changes(void **state)
{
    (void)state;
    char out[40];
    output_figure(out, sizeof(out), true, 1234);
    assert_string_equal(out, "1234");
    output_figure(out, sizeof(out), true, 3.25);
    assert_string_equal(out, "3.25");
    output_figure(out, sizeof(out), true, -2);
    assert_string_equal(out, "-2");
    output_figure(out, sizeof(out), true, 1e20);
    assert_string_equal(out, "100000000000000000000.00");
    output_figure(out, sizeof(out), false, 7);
    assert_string_equal(out, "");
    output_change_pct(out, sizeof(out), true, 12.5);
    assert_string_equal(out, "+12.5%");
    output_change_pct(out, sizeof(out), true, -3);
    assert_string_equal(out, "-3.0%");
    output_change_pct(out, sizeof(out), false, 1);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_cells_escaped_and_aligned),
        cmocka_unit_test(test_out_safe_keeps_lines),
        cmocka_unit_test(test_guard_stream_escapes_and_keeps_characters_whole),
        cmocka_unit_test(test_guard_stream_may_keep_carriage_returns),
        cmocka_unit_test(test_figures_and_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
