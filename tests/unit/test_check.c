/*
 * Unit tests for common/check.h: CHECK() is silent when its condition
 * holds, and otherwise logs the condition with file and line and aborts,
 * in every build (it is not assert(): NDEBUG does not turn it off).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <signal.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "check.h"

static void test_check_holds(void **state)
{
    (void)state;
    int calls = 0;
    CHECK(++calls == 1); /* evaluated once */
    assert_int_equal(calls, 1);
}

/* A child process fails a CHECK with its stderr in a pipe; the parent reads
 * what it logged and how it ended. */
static void test_check_fails_loudly(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        signal(SIGABRT, SIG_DFL);
        int refs = 0;
        int line = __LINE__ + 1;
        CHECK(refs > 0);
        (void)line;
        _exit(0); /* not reached */
    }
    close(fds[1]);
    char out[2048];
    size_t n = 0;
    ssize_t got;
    while (n < sizeof(out) - 1 && (got = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0)
        n += (size_t)got;
    out[n] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_non_null(strstr(out, "CHECK failed: refs > 0 at "));
    assert_non_null(strstr(out, "test_check.c:"));
    assert_non_null(strstr(out, "(test_check_fails_loudly)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_holds),
        cmocka_unit_test(test_check_fails_loudly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
