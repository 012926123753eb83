/*
 * Unit tests for common/arena.c: alignment and zeroing, allocations larger
 * than a chunk, size 0, the string helpers, release and reuse, and the
 * ProtobufCAllocator the daemon unpacks every request with.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "arena.h"
#include "carrel.pb-c.h"

static void assert_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i], 0);
}

static void test_aligned_and_zeroed(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    for (size_t size = 1; size <= 100; size++) {
        unsigned char *p = arena_alloc(&a, size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        assert_zero(p, size);
        memset(p, 0xAB, size); /* dirty it: the next allocation must still come zeroed */
    }
    arena_free(&a);
}

/* Many allocations across chunk boundaries keep their contents: none overlaps another. */
static void test_allocations_do_not_overlap(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    enum { N = 1000, SIZE = 100 }; /* 100 KB: a dozen chunks */
    unsigned char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = arena_alloc(&a, SIZE);
        memset(p[i], i & 0xFF, SIZE);
    }
    for (int i = 0; i < N; i++)
        for (int k = 0; k < SIZE; k++)
            assert_int_equal(p[i][k], i & 0xFF);
    arena_free(&a);
}

static void test_larger_than_a_chunk(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    unsigned char *small = arena_alloc(&a, 10);
    memset(small, 0x11, 10);
    size_t big_size = 3 * 8192 + 5;
    unsigned char *big = arena_alloc(&a, big_size);
    assert_int_equal((uintptr_t)big % 16, 0);
    assert_zero(big, big_size);
    memset(big, 0x22, big_size); /* ASan: all of it is ours */
    unsigned char *after = arena_alloc(&a, 8192);
    assert_zero(after, 8192);
    memset(after, 0x33, 8192);
    unsigned char *last = arena_alloc(&a, 1);
    assert_zero(last, 1);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(small[i], 0x11);
    assert_int_equal(big[0], 0x22);
    assert_int_equal(big[big_size - 1], 0x22);
    assert_int_equal(after[8191], 0x33);
    arena_free(&a);
}

/* Size 0 gives a usable pointer of its own, as malloc may: never NULL, never shared. */
static void test_zero_size(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    char *x = arena_alloc(&a, 0);
    char *y = arena_alloc(&a, 0);
    assert_non_null(x);
    assert_non_null(y);
    assert_ptr_not_equal(x, y);
    assert_int_equal((uintptr_t)x % 16, 0);
    assert_int_equal((uintptr_t)y % 16, 0);
    char *z = arena_new(&a, char, 0);
    assert_non_null(z);
    arena_free(&a);
}

/* Run fn in a child; true if the child died of SIGABRT. */
static bool aborts(void (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void alloc_size_max(void)
{
    arena_t a;
    arena_init(&a);
    /* Rounded up to 16 this used to wrap to 0, and 16 bytes came back. */
    (void)arena_alloc(&a, SIZE_MAX - 8);
}

static void alloc_size_max_exact(void)
{
    arena_t a;
    arena_init(&a);
    (void)arena_alloc(&a, SIZE_MAX);
}

static void test_impossible_size_aborts(void **state)
{
    (void)state;
    assert_true(aborts(alloc_size_max));
    assert_true(aborts(alloc_size_max_exact));
}

static void test_strings(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    assert_null(arena_strdup(&a, NULL));
    char *s = arena_strdup(&a, "Zoë");
    assert_string_equal(s, "Zoë");
    assert_int_equal((uintptr_t)s % 16, 0);
    assert_string_equal(arena_strndup(&a, "abcdef", 3), "abc");
    assert_string_equal(arena_strndup(&a, "abc", 0), "");
    assert_string_equal(arena_printf(&a, "%s-%d", "item", 42), "item-42");
    /* Longer than printf's 256-byte first try. */
    char *long_one = arena_printf(&a, "%0300d|", 7);
    assert_int_equal(strlen(long_one), 301);
    assert_int_equal(long_one[299], '7');
    assert_int_equal(long_one[300], '|');
    arena_free(&a);
}

/* arena_free releases everything (LSan checks) and leaves the arena ready for reuse. */
static void test_free_and_reuse(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    arena_free(&a); /* an empty arena */
    assert_null(a.head);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 50; i++)
            memset(arena_alloc(&a, 1000), 0xFF, 1000);
        assert_non_null(a.head);
        arena_free(&a);
        assert_null(a.head);
    }
    unsigned char *p = arena_alloc(&a, 64); /* after a free, as good as new */
    assert_zero(p, 64);
    arena_free(&a);
    arena_free(&a); /* twice is harmless */
}

static void test_protobuf_allocator(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    assert_ptr_equal(a.pb.allocator_data, &a);
    unsigned char *p = a.pb.alloc(a.pb.allocator_data, 40);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    assert_zero(p, 40);
    a.pb.free(a.pb.allocator_data, p); /* a no-op: memory goes with the arena */
    memset(p, 1, 40);
    assert_int_equal(p[39], 1);
    arena_free(&a);
}

/* What request.c does: unpack with the arena's allocator, free nothing by hand. */
static void test_unpack_into_arena(void **state)
{
    (void)state;
    char *branches[] = {"MAIN", "EAST", "WEST"};
    Carrel__StaffAdd sa = CARREL__STAFF_ADD__INIT;
    sa.username = "bob";
    sa.branch_codes = branches;
    sa.n_branch_codes = 3;
    sa.password = "a long enough password";
    Carrel__Request req = CARREL__REQUEST__INIT;
    req.has_id = 1;
    req.id = 99;
    req.request_key = "0f8e4b1c-9a2d-4c3e-8f71-2b6d5e4a3c10";
    req.body_case = CARREL__REQUEST__BODY_STAFF_ADD;
    req.staff_add = &sa;
    uint8_t wire[512];
    size_t n = carrel__request__get_packed_size(&req);
    assert_true(n <= sizeof(wire));
    assert_int_equal(carrel__request__pack(&req, wire), n);

    arena_t a;
    arena_init(&a);
    Carrel__Request *m = carrel__request__unpack(&a.pb, n, wire);
    assert_non_null(m);
    assert_non_null(a.head); /* it is in the arena */
    assert_int_equal(m->id, 99);
    assert_int_equal(m->body_case, CARREL__REQUEST__BODY_STAFF_ADD);
    assert_string_equal(m->staff_add->username, "bob");
    assert_int_equal(m->staff_add->n_branch_codes, 3);
    assert_string_equal(m->staff_add->branch_codes[2], "WEST");
    /* Freeing through the allocator releases nothing: the arena still holds it. */
    carrel__request__free_unpacked(m, &a.pb);
    arena_free(&a); /* LSan: nothing left behind */

    arena_init(&a);
    assert_null(carrel__request__unpack(&a.pb, 3, (const uint8_t *)"\x0a\x05x"));
    arena_free(&a); /* what a failed unpack allocated goes too */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aligned_and_zeroed),
        cmocka_unit_test(test_allocations_do_not_overlap),
        cmocka_unit_test(test_larger_than_a_chunk),
        cmocka_unit_test(test_zero_size),
        cmocka_unit_test(test_impossible_size_aborts),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_free_and_reuse),
        cmocka_unit_test(test_protobuf_allocator),
        cmocka_unit_test(test_unpack_into_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
