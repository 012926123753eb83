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
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* What log_msg writes to stderr for one call, as a malloc'd string. */
static char *logged(const char *user)
{
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    assert_true(saved >= 0 && dup2(fileno(tmp), 2) == 2);
    log_info(7, "failed login for %s from %s", user, "192.0.2.1:5000");
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    long n = ftell(tmp);
    char *out = calloc(1, (size_t)n + 1);
    assert_non_null(out);
    rewind(tmp);
    assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return out;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_text_cannot_forge_lines),
        cmocka_unit_test(test_plain_text_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
