/*
 * Unit tests for the problem list of an import batch (server/marcimport.c):
 * appends cost amortized O(1) memory and time, and a reply lists a bounded
 * number of warnings, however many problems a batch has.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <malloc.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#endif
#ifdef HAVE_ASAN
/* From the sanitizer runtime (its header is not shipped with every compiler). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#include "marcimport.h"

/* Bytes the process has allocated now (the sanitizer's count under ASan). */
static size_t heap_in_use(void)
{
#ifdef HAVE_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

static const char *message =
    "field 650: indicator 2 '-' is not valid; read as blank (a typical warning, 70 bytes)";

/*
 * Regression: each append copied the whole list, so 20,000 problems (one
 * batch of records with many bad indicators) allocated about 1.6 GB. Now the
 * list doubles and only IMPORT_MAX_WARNINGS warnings are kept: a few MB.
 */
static void test_many_warnings_bounded_memory(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    import_problems_t p = {0};
    size_t before = heap_in_use();
    for (int i = 0; i < 20000; i++)
        import_problems_add(&a, &p, i / 10 + 1, i * 100, false, message);
    size_t used = heap_in_use() - before;
    if (used > 4u * 1024 * 1024)
        fail_msg("20000 warnings took %zu bytes", used);
    assert_int_equal(p.n, IMPORT_MAX_WARNINGS);
    assert_int_equal(p.dropped, 20000 - IMPORT_MAX_WARNINGS);
    Carrel__ImportProblem **list;
    size_t n;
    import_problems_close(&a, &p, &list, &n);
    assert_int_equal(n, IMPORT_MAX_WARNINGS + 1);
    assert_string_equal(list[0]->message, message);
    assert_int_equal(list[0]->position, 1);
    assert_false(list[n - 1]->fatal);
    char want[120];
    snprintf(want, sizeof(want), "%d more warnings in this batch are not listed",
             20000 - IMPORT_MAX_WARNINGS);
    if (strstr(list[n - 1]->message, want) == NULL)
        fail_msg("last line '%s'", list[n - 1]->message);
    arena_free(&a);
}

/* Fatal problems name failed records: every one is listed, past the warning bound too. */
static void test_fatal_always_listed(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    import_problems_t p = {0};
    for (int i = 0; i < IMPORT_MAX_WARNINGS + 10; i++)
        import_problems_add(&a, &p, 1, 0, false, "warning");
    for (int i = 0; i < 3000; i++)
        import_problems_add(&a, &p, i + 2, 0, true, "not loaded");
    Carrel__ImportProblem **list;
    size_t n;
    import_problems_close(&a, &p, &list, &n);
    size_t fatal = 0;
    for (size_t i = 0; i < n; i++)
        fatal += list[i]->fatal;
    assert_int_equal(fatal, 3000);
    assert_int_equal(n, IMPORT_MAX_WARNINGS + 3000 + 1);
    arena_free(&a);
}

static void test_few_problems_no_summary_line(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    import_problems_t p = {0};
    import_problems_add(&a, &p, 3, 42, true, "bad base address");
    Carrel__ImportProblem **list;
    size_t n;
    import_problems_close(&a, &p, &list, &n);
    assert_int_equal(n, 1);
    assert_int_equal(list[0]->position, 3);
    assert_int_equal(list[0]->offset, 42);
    assert_true(list[0]->fatal);
    assert_string_equal(list[0]->message, "bad base address");
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_warnings_bounded_memory),
        cmocka_unit_test(test_fatal_always_listed),
        cmocka_unit_test(test_few_problems_no_summary_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
