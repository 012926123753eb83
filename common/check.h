/*
 * check: an assertion that is always on (release builds too).
 *
 * CHECK(cond) states an invariant the code relies on: a request ends exactly
 * once, a reference count never goes below zero, a pool connection with a
 * job is busy. When it does not hold, carrying on would corrupt memory or
 * answer a client twice, so the process logs the condition with its file,
 * line and function, and aborts (a core dump shows where). It is not for
 * anything a client or the database can cause: those are errors, handled.
 */
#ifndef CARREL_CHECK_H
#define CARREL_CHECK_H

/* Log "CHECK failed: <expr> at <file>:<line> (<func>)" and abort(). */
__attribute__((noreturn)) void check_failed(const char *expr, const char *file, int line,
                                            const char *func);

#define CHECK(cond)                                                                                \
    (__builtin_expect(!!(cond), 1) ? (void)0 : check_failed(#cond, __FILE__, __LINE__, __func__))

/*
 * A fallible function's result must be looked at: the compiler warns (an
 * error under -Werror) when a caller drops it. A caller that truly has
 * nothing to do with it says so with a commented (void) cast.
 */
#define CARREL_MUST_USE __attribute__((warn_unused_result))

#endif
