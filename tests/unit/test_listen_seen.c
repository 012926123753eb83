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

static void test_each_id_once(void **state)
{
    (void)state;
    listen_seen_t *s = calloc(1, sizeof(*s));
    assert_int_equal(listen_seen_replay(s), 0); /* nothing shown: no replay */
    assert_true(listen_seen_new(s, 10));
    assert_true(listen_seen_new(s, 7)); /* committed late: still shown */
    assert_false(listen_seen_new(s, 10));
    assert_false(listen_seen_new(s, 7));
    assert_true(listen_seen_new(s, 0)); /* no id (a ping's test event): always */
    assert_true(listen_seen_new(s, 0));
    assert_int_equal(s->highest, 10);
    free(s);
}

static void test_replay_floor(void **state)
{
    (void)state;
    listen_seen_t *s = calloc(1, sizeof(*s));
    assert_true(listen_seen_new(s, 100));
    assert_true(listen_seen_new(s, 120));
    assert_int_equal(listen_seen_replay(s), 120);
    /* The replay's window: 99 was before the desk's first event, 110 it missed. */
    assert_false(listen_seen_new(s, 99));
    assert_false(listen_seen_new(s, 100));
    assert_true(listen_seen_new(s, 110));
    assert_true(listen_seen_new(s, 121));
    assert_int_equal(listen_seen_replay(s), 121);
    free(s);
}

static void test_ring_forgets_the_oldest(void **state)
{
    (void)state;
    listen_seen_t *s = calloc(1, sizeof(*s));
    for (int64_t id = 1; id <= LISTEN_SEEN_IDS + 1; id++)
        assert_true(listen_seen_new(s, id));
    assert_false(listen_seen_new(s, LISTEN_SEEN_IDS + 1));
    assert_false(listen_seen_new(s, 2));
    assert_true(listen_seen_new(s, 1)); /* the oldest went when the ring was full */
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_id_once),
        cmocka_unit_test(test_replay_floor),
        cmocka_unit_test(test_ring_forgets_the_oldest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
