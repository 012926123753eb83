/*
 * Unit tests for common/log.c: one event is one line, whatever a message
 * quotes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* The journal's stream, for JOURNAL_STREAM: what stderr is now, or another file. */
enum stream { STREAM_PLAIN, STREAM_JOURNAL, STREAM_OTHER };

/* What log_msg writes to stderr for one call, as a malloc'd string; with
 * JOURNAL_STREAM naming stderr's file (journal), another file (other) or unset. */
static char *logged_as(enum stream stream, log_level_t level, const char *user)
{
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    assert_true(saved >= 0 && dup2(fileno(tmp), 2) == 2);
    if (stream == STREAM_PLAIN) {
        assert_int_equal(unsetenv("JOURNAL_STREAM"), 0);
    } else {
        struct stat st;
        FILE *other = stream == STREAM_OTHER ? tmpfile() : NULL;
        assert_int_equal(fstat(other ? fileno(other) : 2, &st), 0);
        char value[64];
        snprintf(value, sizeof(value), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        assert_int_equal(setenv("JOURNAL_STREAM", value, 1), 0);
        if (other)
            fclose(other);
    }
    log_detect_stream();
    log_msg(level, 7, "failed login for %s from %s", user, "192.0.2.1:5000");
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    assert_int_equal(unsetenv("JOURNAL_STREAM"), 0);
    log_detect_stream();
    close(saved);
    long n = ftell(tmp);
    char *out = calloc(1, (size_t)n + 1);
    assert_non_null(out);
    rewind(tmp);
    assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return out;
}

static char *logged(const char *user)
{
    return logged_as(STREAM_PLAIN, LOG_INFO, user);
}

static void test_client_text_cannot_forge_lines(void **state)
{
    (void)state;
    char *out = logged("x\n2026-12-06T00:00:00.000Z INFO  [c1] login: admin (admin)\t\x1b[2J");
    /* One line, ending in the one newline log_msg adds. */
    assert_non_null(strchr(out, '\n'));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
    assert_null(strchr(out, '\t'));
    assert_null(strchr(out, '\x1b'));
    assert_non_null(strstr(out, "failed login for x\\n2026-12-06T00:00:00.000Z INFO  [c1] login: "
                                "admin (admin)\\t\\e[2J from 192.0.2.1:5000"));
    free(out);
}

static void test_plain_text_unchanged(void **state)
{
    (void)state;
    char *out = logged("Zoë");
    assert_non_null(strstr(out, " INFO  [c7] failed login for Zoë from 192.0.2.1:5000\n"));
    free(out);
}

/* Under journald: the sd-daemon priority prefix, no time; escaping as ever. */
static void test_journal_lines_carry_their_priority(void **state)
{
    (void)state;
    log_set_level(LOG_DEBUG);
    static const struct {
        log_level_t level;
        const char *want;
    } cases[] = {
        {LOG_ERROR, "<3>ERROR [c7] failed login for a\\tb from 192.0.2.1:5000\n"},
        {LOG_WARN, "<4>WARN  [c7] failed login for a\\tb from 192.0.2.1:5000\n"},
        {LOG_INFO, "<6>INFO  [c7] failed login for a\\tb from 192.0.2.1:5000\n"},
        {LOG_DEBUG, "<7>DEBUG [c7] failed login for a\\tb from 192.0.2.1:5000\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = logged_as(STREAM_JOURNAL, cases[i].level, "a\tb");
        assert_string_equal(out, cases[i].want);
        free(out);
    }
    log_set_level(LOG_INFO);
}

/* JOURNAL_STREAM inherited, but stderr is another file (a redirection): plain lines. */
static void test_journal_stream_of_another_file_is_ignored(void **state)
{
    (void)state;
    char *out = logged_as(STREAM_OTHER, LOG_WARN, "ada");
    assert_int_equal(out[0], '2'); /* the year */
    assert_null(strchr(out, '<'));
    assert_non_null(strstr(out, "Z WARN  [c7] failed login for ada from 192.0.2.1:5000\n"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_text_cannot_forge_lines),
        cmocka_unit_test(test_plain_text_unchanged),
        cmocka_unit_test(test_journal_lines_carry_their_priority),
        cmocka_unit_test(test_journal_stream_of_another_file_is_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
