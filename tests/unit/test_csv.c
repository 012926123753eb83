/*
 * Unit tests for common/csv.c: RFC 4180 rows as staff export them from
 * spreadsheets (quoted fields, doubled quotes, line breaks inside quotes,
 * CRLF or LF), read one row at a time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "csv.h"

/*
 * Read every row of `text` and check them against `want`: rows of fields, each
 * row ending with NULL, the list ending with a NULL row.
 */
static void expect_rows(const char *text, size_t len, const char *const *const *want)
{
    size_t pos = 0;
    size_t r = 0;
    for (;; r++) {
        csv_row_t row;
        int rc = csv_next_row(text, len, &pos, &row);
        if (want[r] == NULL) {
            assert_int_equal(rc, 0);
            assert_int_equal(row.n, 0);
            assert_null(row.fields);
            break;
        }
        assert_int_equal(rc, 1);
        size_t n = 0;
        while (want[r][n])
            n++;
        if (row.n != n)
            fail_msg("row %zu: %zu fields, want %zu", r + 1, row.n, n);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(row.fields[i], want[r][i]);
        csv_row_free(&row);
        assert_int_equal(row.n, 0);
        assert_null(row.fields);
    }
    assert_int_equal(pos, len);
}

#define ROW(...)  ((const char *const[]){__VA_ARGS__, NULL})
#define ROWS(...) ((const char *const *const[]){__VA_ARGS__, NULL})
#define S(text)   text, sizeof(text) - 1

static void test_plain_rows(void **state)
{
    (void)state;
    expect_rows(S("barcode,title,author\n3100001,Perl,Wall\n"),
                ROWS(ROW("barcode", "title", "author"), ROW("3100001", "Perl", "Wall")));
    expect_rows(S("one\n"), ROWS(ROW("one")));
}

static void test_quoted_commas(void **state)
{
    (void)state;
    expect_rows(S("\"Smith, Jane\",\"Cats, dogs, and birds\",3\n"),
                ROWS(ROW("Smith, Jane", "Cats, dogs, and birds", "3")));
}

static void test_doubled_quotes(void **state)
{
    (void)state;
    expect_rows(S("\"He said \"\"hi\"\"\",x\n\"\"\"\"\n"),
                ROWS(ROW("He said \"hi\"", "x"), ROW("\"")));
}

static void test_newline_inside_quotes(void **state)
{
    (void)state;
    expect_rows(S("\"line one\nline two\",b\r\n\"crlf\r\ninside\",c\n"),
                ROWS(ROW("line one\nline two", "b"), ROW("crlf\r\ninside", "c")));
}

static void test_line_ends(void **state)
{
    (void)state;
    expect_rows(S("a,b\r\nc,d\r\n"), ROWS(ROW("a", "b"), ROW("c", "d")));
    expect_rows(S("a,b\nc,d\n"), ROWS(ROW("a", "b"), ROW("c", "d")));
    expect_rows(S("a,b\r\nc,d\ne,f\r\n"), ROWS(ROW("a", "b"), ROW("c", "d"), ROW("e", "f")));
    /* A lone CR ends a row too (old Mac spreadsheets). */
    expect_rows(S("a\rb\r"), ROWS(ROW("a"), ROW("b")));
}

static void test_empty_fields(void **state)
{
    (void)state;
    expect_rows(S(",,\n"), ROWS(ROW("", "", "")));
    expect_rows(S("a,,b\n"), ROWS(ROW("a", "", "b")));
    expect_rows(S("a,\n"), ROWS(ROW("a", "")));
    expect_rows(S("\"\",x\n"), ROWS(ROW("", "x")));
    /* An empty line is a row of one empty field. */
    expect_rows(S("a\n\nb\n"), ROWS(ROW("a"), ROW(""), ROW("b")));
}

static void test_last_line_without_newline(void **state)
{
    (void)state;
    expect_rows(S("a,b\nc,d"), ROWS(ROW("a", "b"), ROW("c", "d")));
    expect_rows(S("a,\"quoted, last\""), ROWS(ROW("a", "quoted, last")));
    expect_rows(S("a,"), ROWS(ROW("a", "")));
}

static void test_utf8_kept(void **state)
{
    (void)state;
    expect_rows(S("Stan\xc4\x8di\xc4\x87,\"caf\xc3\xa9, na\xc3\xafve\"\n"),
                ROWS(ROW("Stan\xc4\x8di\xc4\x87", "caf\xc3\xa9, na\xc3\xafve")));
}

static void test_unterminated_quote(void **state)
{
    (void)state;
    const char text[] = "a,b\nc,\"never closed\nd,e\n";
    size_t pos = 0;
    csv_row_t row;
    assert_int_equal(csv_next_row(text, sizeof(text) - 1, &pos, &row), 1);
    assert_int_equal(row.n, 2);
    csv_row_free(&row);
    assert_int_equal(pos, 4);
    assert_int_equal(csv_next_row(text, sizeof(text) - 1, &pos, &row), -1);
    assert_int_equal(row.n, 0);
    assert_null(row.fields);

    pos = 0;
    assert_int_equal(csv_next_row("\"", 1, &pos, &row), -1);
    pos = 0;
    /* A doubled quote at the very end is an escaped quote, not a close. */
    assert_int_equal(csv_next_row("\"ab\"\"", 5, &pos, &row), -1);
}

static void test_respects_len_and_pos(void **state)
{
    (void)state;
    const char text[] = "skip,me\nx,y\nnot,read";
    size_t pos = 8;
    csv_row_t row;
    /* Only the first 12 bytes are the text. */
    assert_int_equal(csv_next_row(text, 12, &pos, &row), 1);
    assert_int_equal(row.n, 2);
    assert_string_equal(row.fields[0], "x");
    assert_string_equal(row.fields[1], "y");
    csv_row_free(&row);
    assert_int_equal(pos, 12);
    assert_int_equal(csv_next_row(text, 12, &pos, &row), 0);
    assert_int_equal(csv_next_row("", 0, &pos, &row), 0);
}

/* A NUL would cut the field short without a word (a C string ends there): refused. */
static void test_nul_refused(void **state)
{
    (void)state;
    csv_row_t row;
    size_t pos = 0;
    assert_int_equal(csv_next_row(S("a,31234\0"
                                    "567\n"),
                                  &pos, &row),
                     CSV_NUL);
    assert_int_equal(row.n, 0);
    assert_null(row.fields);
    pos = 0;
    assert_int_equal(csv_next_row(S("\"quoted \0 too\"\n"), &pos, &row), CSV_NUL);
    assert_null(row.fields);
    /* A UTF-16 file: NUL in its first line. */
    pos = 0;
    assert_int_equal(csv_next_row(S("b\0i\0b\0,\0"), &pos, &row), CSV_NUL);
    /* Rows before the NUL are read as they are. */
    pos = 0;
    assert_int_equal(csv_next_row(S("x,y\nz\0\n"), &pos, &row), 1);
    csv_row_free(&row);
    assert_int_equal(csv_next_row(S("x,y\nz\0\n"), &pos, &row), CSV_NUL);
    assert_string_equal(csv_problem(CSV_NUL),
                        "a NUL byte (is the file UTF-16? save it as CSV in UTF-8)");
    assert_string_equal(csv_problem(CSV_UNCLOSED_QUOTE), "a quote is never closed");
}

/* "CSV UTF-8" from a spreadsheet starts with a byte order mark: not part of the first name. */
static void test_byte_order_mark_skipped(void **state)
{
    (void)state;
    expect_rows(S("\xef\xbb\xbf"
                  "bib,barcode\r\nx,y\r\n"),
                ROWS(ROW("bib", "barcode"), ROW("x", "y")));
    expect_rows(S("\xef\xbb\xbf"
                  "\"bib\"\n"),
                ROWS(ROW("bib")));
    expect_rows(S("\xef\xbb\xbf"), (const char *const *const[]){NULL});
    /* Only at the very start: elsewhere it is text. */
    expect_rows(S("a\n\xef\xbb\xbf"
                  "b\n"),
                ROWS(ROW("a"), ROW("\xef\xbb\xbf"
                                   "b")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_rows),
        cmocka_unit_test(test_quoted_commas),
        cmocka_unit_test(test_doubled_quotes),
        cmocka_unit_test(test_newline_inside_quotes),
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_empty_fields),
        cmocka_unit_test(test_last_line_without_newline),
        cmocka_unit_test(test_utf8_kept),
        cmocka_unit_test(test_unterminated_quote),
        cmocka_unit_test(test_respects_len_and_pos),
        cmocka_unit_test(test_nul_refused),
        cmocka_unit_test(test_byte_order_mark_skipped),
    };
    return cmocka_run_group_tests_name("csv", tests, NULL, NULL);
}
