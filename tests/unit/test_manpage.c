/*
 * Unit tests for common/manpage.c: --help's option lines and usage, and the
 * roff the man pages are generated from (escaping, paragraphs, settings with
 * their reload flag, the reload table, the date).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "manpage.h"

/* What stmt wrote to `out`, as a string in text (the caller frees it). */
#define CAPTURE(text, stmt)                                                                        \
    do {                                                                                           \
        size_t len_;                                                                               \
        char *buf_ = NULL;                                                                         \
        FILE *out = open_memstream(&buf_, &len_);                                                  \
        assert_non_null(out);                                                                      \
        stmt;                                                                                      \
        fclose(out);                                                                               \
        (text) = buf_;                                                                             \
    } while (0)

static const cli_option_t options[] = {
    {'c', "config", "FILE", "configuration file"},
    {0, "check", NULL, "validate and exit"},
    {0, "init", "USER", "first line\nsecond line"},
    {0, "a-very-long-option-name", "ARG", "help"},
    CLI_OPTION_END,
};

static void test_options_help(void **state)
{
    (void)state;
    char *text;
    CAPTURE(text, cli_options_print(options, out));
    assert_string_equal(text, "  -c, --config FILE      configuration file\n"
                              "      --check            validate and exit\n"
                              "      --init USER        first line\n"
                              "                         second line\n"
                              "      --a-very-long-option-name ARG help\n");
    free(text);
}

static void test_synopsis_help(void **state)
{
    (void)state;
    const char *const synopsis[] = {"[-c FILE]", "--init USER\n[--more]", NULL};
    char *text;
    CAPTURE(text, cli_synopsis_print("prog", synopsis, out));
    assert_string_equal(text, "usage: prog [-c FILE]\n"
                              "       prog --init USER\n"
                              "            [--more]\n");
    free(text);
}

static void test_escape(void **state)
{
    (void)state;
    char *text;
    CAPTURE(text, man_escape(out, ".dot first\n  'quote \\back  \nplain"));
    assert_string_equal(text, "\\&.dot first\n\\&'quote \\eback\nplain\n");
    free(text);
    CAPTURE(text, man_escape_inline(out, "a-b\\c\nd"));
    assert_string_equal(text, "a\\-b\\ec d");
    free(text);
}

static void test_paragraphs_after_heading(void **state)
{
    (void)state;
    char *text;
    CAPTURE(text, {
        man_section(out, "DESCRIPTION");
        man_paragraph(out, "one\ntwo\n\nthree");
        man_paragraph(out, "four");
    });
    /* No .PP right after .SH (mandoc -Tlint warns), one between the others. */
    assert_string_equal(text, ".SH DESCRIPTION\none\ntwo\n.PP\nthree\n.PP\nfour\n");
    free(text);
}

static void test_options_roff(void **state)
{
    (void)state;
    char *text;
    CAPTURE(text, man_options(out, options));
    assert_non_null(strstr(text, ".TP\n\\fB\\-c\\fR, \\fB\\-\\-config\\fR \\fIFILE\\fR\n"
                                 "configuration file\n"));
    assert_non_null(strstr(text, ".TP\n\\fB\\-\\-check\\fR\nvalidate and exit\n"));
    assert_non_null(strstr(text, "first line\nsecond line\n"));
    free(text);
}

struct conf {
    char *name;
    long count;
    int on;
};

static const conf_entry_t table[] = {
    {"name", CONF_STRING, offsetof(struct conf, name), NULL, 0, 0, "a name", CONF_RELOADABLE},
    {"count", CONF_INT, offsetof(struct conf, count), "10", 1, 100, "how many", 0},
    {"on", CONF_BOOL, offsetof(struct conf, on), "true", 0, 0, "switch", CONF_RELOADABLE},
    CONF_END,
};

static void test_settings_roff(void **state)
{
    (void)state;
    char *text;
    CAPTURE(text, man_settings(out, table, 1));
    assert_string_equal(text, ".TP\n\\fBname\\fR = \\fItext\\fR\na name\n.br\nDefault: unset.\n"
                              "A reload applies a new value.\n"
                              ".TP\n\\fBcount\\fR = \\fIinteger\\fR (1 to 100)\nhow many\n.br\n"
                              "Default: \\fB10\\fR.\nA new value takes effect at the next start.\n"
                              ".TP\n\\fBon\\fR = \\fIboolean\\fR\nswitch\n.br\n"
                              "Default: \\fBtrue\\fR.\nA reload applies a new value.\n");
    free(text);
    /* Without reload (the client's profile), nothing about reloading. */
    CAPTURE(text, man_settings(out, table, 0));
    assert_null(strstr(text, "reload"));
    assert_null(strstr(text, "next start"));
    free(text);
    CAPTURE(text, man_reload_table(out, table));
    assert_string_equal(text, ".TP\nApplied by a reload:\n\\fBname\\fR,\n\\fBon\\fR.\n"
                              ".TP\nNeed a restart:\n\\fBcount\\fR.\n");
    free(text);
}

static void test_header_date(void **state)
{
    (void)state;
    setenv("SOURCE_DATE_EPOCH", "86400", 1);
    const man_page_t page = {"prog", "8", "1.2.3", "does-things"};
    char *text;
    CAPTURE(text, man_begin(out, &page));
    assert_string_equal(text, ".TH PROG 8 1970-01-02 \"Carrel 1.2.3\" \"Carrel Manual\"\n"
                              ".SH NAME\nprog \\- does\\-things\n");
    free(text);
    unsetenv("SOURCE_DATE_EPOCH");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_help), cmocka_unit_test(test_synopsis_help),
        cmocka_unit_test(test_escape),       cmocka_unit_test(test_paragraphs_after_heading),
        cmocka_unit_test(test_options_roff), cmocka_unit_test(test_settings_roff),
        cmocka_unit_test(test_header_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
