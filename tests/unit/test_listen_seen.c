/*
 * Unit tests for client/listen.c's record of the stored events a desk has
 * shown: each id once, the highest to resubscribe with, the floor below
 * which a replay's window holds events from before the desk started.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "listen.h"

/* The wall clock of the tests (ms): events written "now" unless said. */
#define NOW 1800000000000LL
#define OLD (NOW - 2 * LISTEN_SEEN_MARGIN_MS)

static void test_each_id_once(void **state)
{
    (void)state;
    listen_seen_t *s = calloc(1, sizeof(*s));
    assert_int_equal(listen_seen_replay(s, NOW), 0); /* nothing shown: no replay */
    assert_true(listen_seen_new(s, 10, NOW));
    assert_true(listen_seen_new(s, 7, NOW)); /* committed late: still shown */
    assert_false(listen_seen_new(s, 10, NOW));
    assert_false(listen_seen_new(s, 7, NOW));
    assert_true(listen_seen_new(s, 0, NOW)); /* no id (a ping's test event): always */
    assert_true(listen_seen_new(s, 0, NOW));
    assert_int_equal(s->highest, 10);
    free(s);
}

static void test_replay_floor(void **state)
{
    (void)state;
    listen_seen_t *s = calloc(1, sizeof(*s));
    assert_int_equal(listen_seen_replay(s, NOW), 0); /* the first subscribe: the desk starts */
    assert_true(listen_seen_new(s, 100, NOW));
    assert_true(listen_seen_new(s, 120, NOW));
    assert_int_equal(listen_seen_replay(s, NOW + 5000), 120);
    /* The replay: 99 was written well before the desk started (history), 100 shown already, 110
     * missed, 98 drawn before the desk's first event but written after it started: missed. */
    assert_false(listen_seen_new(s, 99, OLD));
    assert_false(listen_seen_new(s, 100, NOW));
    assert_true(listen_seen_new(s, 110, NOW));
    assert_true(listen_seen_new(s, 98, NOW));
    assert_true(listen_seen_new(s, 121, NOW));
    listen_seen_replayed(s);
    assert_int_equal(listen_seen_replay(s, NOW + 9000), 121);
    free(s);
}

/* REVIEW15 finding 1: the floor never drops a live event. */
static void test_floor_spares_live_events(void **state)
{
    (void)state;
    listen_seen_t *s = calloc(1, sizeof(*s));
    listen_seen_replay(s, NOW);
    assert_true(listen_seen_new(s, 100, NOW));
    assert_int_equal(listen_seen_replay(s, NOW), 100);
    listen_seen_replayed(s);
    /* A long transaction that drew 98 (and began long ago) commits now: live, shown. */
    assert_true(listen_seen_new(s, 98, OLD));
    assert_true(listen_seen_new(s, 97, NOW));
    free(s);
}

static void test_ring_forgets_the_oldest(void **state)
{
    (void)state;
    listen_seen_t *s = calloc(1, sizeof(*s));
    for (int64_t id = 1; id <= LISTEN_SEEN_IDS + 1; id++)
        assert_true(listen_seen_new(s, id, NOW));
    assert_false(listen_seen_new(s, LISTEN_SEEN_IDS + 1, NOW));
    assert_false(listen_seen_new(s, 2, NOW));
    assert_true(listen_seen_new(s, 1, NOW)); /* the oldest went when the ring was full */
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_id_once),
        cmocka_unit_test(test_replay_floor),
        cmocka_unit_test(test_floor_spares_live_events),
        cmocka_unit_test(test_ring_forgets_the_oldest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
