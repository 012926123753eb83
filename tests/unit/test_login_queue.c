/*
 * Unit tests for the login storm's pure pieces and the password queue:
 * server/password.c's wait estimate, retry slots and FIFO order with a bounded
 * number of workers (on a real libuv loop, with cheap Argon2 parameters), and
 * client/session.c's retry delays (backoff and jitter).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "password.h"
#include "session.h"

/* ---- the wait estimate ---- */

static void test_wait_rounds(void **state)
{
    (void)state;
    /* Nothing ahead: one check. */
    assert_int_equal(password_wait_ms(0, 2, 300.0), 300);
    /* One ahead with two workers: both run at once. */
    assert_int_equal(password_wait_ms(1, 2, 300.0), 300);
    /* Two ahead: a second round. */
    assert_int_equal(password_wait_ms(2, 2, 300.0), 600);
    /* 31 ahead of the 32nd desk on 2 cores: 16 rounds. */
    assert_int_equal(password_wait_ms(31, 2, 250.0), 4000);
    /* One worker: strictly one after another. */
    assert_int_equal(password_wait_ms(5, 1, 100.0), 600);
    /* Nonsense in, something sane out. */
    assert_int_equal(password_wait_ms(-3, 0, 100.0), 100);
}

/* ---- retry slots ---- */

static void test_retry_after_fits_window(void **state)
{
    (void)state;
    uint64_t slot = 0;
    /* 40 s expected, a 30 s window: come back when what is left fits 3/4 of it. */
    uint32_t after = password_retry_slot(1000000, 40000, 30000, 2, 250.0, 0, &slot);
    assert_int_equal(after, 40000 - 22500);
    assert_int_equal(slot, 1000000 + after);
}

static void test_retry_spaced_at_drain_rate(void **state)
{
    (void)state;
    uint64_t slot = 0;
    uint64_t now = 5000000;
    uint32_t first = password_retry_slot(now, 40000, 30000, 2, 250.0, 0, &slot);
    /* Refused together: one drain step (a check / the workers) apart. */
    uint32_t second = password_retry_slot(now, 40000, 30000, 2, 250.0, 1, &slot);
    uint32_t third = password_retry_slot(now + 10, 40000, 30000, 2, 250.0, 2, &slot);
    assert_int_equal(second, first + 125);
    assert_int_equal(third + 10, first + 250);
    /* Much later, past every slot handed out: the estimate alone counts again. */
    uint32_t later = password_retry_slot(now + 100000, 40000, 30000, 2, 250.0, 0, &slot);
    assert_int_equal(later, 17500);
}

/* REVIEW15C 2: a thousand refusals with only one connection told (the flood's
 * own) leave the next login's time a step or two past what it needs. */
static void test_retry_slot_not_pushed_by_flood(void **state)
{
    (void)state;
    uint64_t slot = 0;
    uint64_t now = 5000000;
    for (int i = 0; i < 1000; i++)
        (void)password_retry_slot(now, 40000, 30000, 2, 250.0, 1, &slot);
    uint32_t other = password_retry_slot(now + 5, 40000, 30000, 2, 250.0, 1, &slot);
    assert_true(other <= 17500 + 2 * 125);
    assert_true(other >= 17500 - 5);
}

static void test_retry_bounds(void **state)
{
    (void)state;
    uint64_t slot = 0;
    /* Fits already (a full queue, not a deadline): still a short pause. */
    assert_int_equal(password_retry_slot(1000, 500, 30000, 4, 8.0, 0, &slot), 100);
    slot = 0;
    /* Absurd estimates are capped at 10 minutes. */
    assert_int_equal(password_retry_slot(1000, 100000000, 30000, 1, 500.0, 0, &slot), 600000);
}

/* ---- the queue on a real loop ---- */

typedef struct order {
    int seen[16];
    int results[16];
    int n;
    int max_running;
    password_queue_t *q;
    int idle_calls;
} order_t;

typedef struct job {
    order_t *o;
    int index;
} job_t;

static void job_done(int ok, const char *hash, void *arg)
{
    (void)hash;
    job_t *j = arg;
    j->o->seen[j->o->n] = j->index;
    j->o->results[j->o->n] = ok;
    j->o->n++;
}

static void on_idle(void *arg)
{
    order_t *o = arg;
    o->idle_calls++;
}

/* Verifications queued at once finish in the order they were queued with one
 * worker; never more than `workers` run at once; a cancelled waiting one skips
 * its work; the queue reports idle once, at the end. */
static void run_queue(int workers, int jobs, int cancel_index)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    password_params_t p = {1, 8, 1};
    char *hash = password_hash_now(&p, "right-password");
    assert_non_null(hash);
    password_queue_t q;
    order_t o = {.q = &q};
    password_queue_init(&q, &loop, 16, workers);
    q.on_idle = on_idle;
    q.idle_arg = &o;
    job_t js[16];
    password_work_t *handles[16];
    for (int i = 0; i < jobs; i++) {
        js[i] = (job_t){&o, i};
        const char *pw = i % 3 == 2 ? "wrong-password" : "right-password";
        assert_int_equal(password_verify_async(&q, hash, pw, job_done, &js[i], &handles[i]), 0);
        assert_true(q.running <= workers);
    }
    assert_int_equal(password_queue_ahead(&q), jobs);
    assert_int_equal(q.running, workers < jobs ? workers : jobs);
    if (cancel_index >= 0) {
        password_cancel(handles[cancel_index]);
        /* A waiting job stops counting at once (REVIEW15C 4): not ahead, not full;
         * cancelling twice counts once. */
        assert_int_equal(password_queue_ahead(&q), jobs - 1);
        password_cancel(handles[cancel_index]);
        assert_int_equal(password_queue_ahead(&q), jobs - 1);
    }
    while (o.n < jobs) {
        uv_run(&loop, UV_RUN_ONCE);
        assert_true(q.running <= workers);
    }
    assert_int_equal(o.idle_calls, 1);
    assert_int_equal(password_queue_ahead(&q), 0);
    assert_true(password_job_ms(&q) > 0);
    /* A cancelled waiting job is answered when the pump reaches it, without a
     * worker, so possibly before the job just finished: order the others only. */
    int next = 0;
    for (int k = 0; k < jobs; k++) {
        int i = o.seen[k];
        int want = i == cancel_index ? PASSWORD_CANCELLED
                   : i % 3 == 2      ? PASSWORD_MISMATCH
                                     : PASSWORD_MATCH;
        assert_int_equal(o.results[k], want);
        if (i == cancel_index)
            continue;
        if (next == cancel_index)
            next++;
        if (workers == 1)
            assert_int_equal(i, next); /* first in, first out */
        next++;
    }
    free(hash);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_queue_fifo_one_worker(void **state)
{
    (void)state;
    run_queue(1, 8, -1);
}

static void test_queue_two_workers(void **state)
{
    (void)state;
    run_queue(2, 9, -1);
}

static void test_queue_cancel_waiting(void **state)
{
    (void)state;
    run_queue(1, 5, 3);
}

static void test_queue_full(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    password_params_t p = {1, 8, 1};
    char *hash = password_hash_now(&p, "pw");
    assert_non_null(hash);
    password_queue_t q;
    order_t o = {.q = &q};
    password_queue_init(&q, &loop, 2, 1);
    job_t js[3] = {{&o, 0}, {&o, 1}, {&o, 2}};
    assert_int_equal(password_verify_async(&q, hash, "pw", job_done, &js[0], NULL), 0);
    assert_int_equal(password_verify_async(&q, hash, "pw", job_done, &js[1], NULL), 0);
    assert_true(password_queue_full(&q));
    assert_int_equal(password_verify_async(&q, hash, "pw", job_done, &js[2], NULL),
                     PASSWORD_QUEUE_FULL);
    while (o.n < 2)
        uv_run(&loop, UV_RUN_ONCE);
    /* A cancelled waiting job frees its place at once: the queue is not full. */
    password_work_t *h[3];
    assert_int_equal(password_verify_async(&q, hash, "pw", job_done, &js[0], &h[0]), 0);
    assert_int_equal(password_verify_async(&q, hash, "pw", job_done, &js[1], &h[1]), 0);
    assert_true(password_queue_full(&q));
    password_cancel(h[1]);
    assert_false(password_queue_full(&q));
    assert_int_equal(password_verify_async(&q, hash, "pw", job_done, &js[2], &h[2]), 0);
    assert_true(password_queue_full(&q));
    while (o.n < 5)
        uv_run(&loop, UV_RUN_ONCE);
    free(hash);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- the client's retry delays ---- */

static void test_client_follows_retry_after(void **state)
{
    (void)state;
    assert_int_equal(client_retry_delay_ms(0, 1500, 0.0), 1500);
    /* Jitter: at most a tenth more. */
    assert_int_equal(client_retry_delay_ms(3, 1500, 0.999999), 1500 + 149);
    assert_int_equal(client_retry_delay_ms(7, 100, 0.5), 105);
    /* ... and at most a second. */
    assert_int_equal(client_retry_delay_ms(0, 30000, 0.5), 30500);
}

static void test_client_backoff(void **state)
{
    (void)state;
    /* Half fixed, half random: 500 ms, then doubling. */
    assert_int_equal(client_retry_delay_ms(0, 0, 0.0), 250);
    assert_int_equal(client_retry_delay_ms(0, 0, 0.999999), 499);
    assert_int_equal(client_retry_delay_ms(1, 0, 0.0), 500);
    assert_int_equal(client_retry_delay_ms(2, 0, 0.0), 1000);
    assert_int_equal(client_retry_delay_ms(4, 0, 0.0), 4000);
    /* Capped at 8 s however many attempts. */
    assert_int_equal(client_retry_delay_ms(5, 0, 0.0), 4000);
    assert_int_equal(client_retry_delay_ms(40, 0, 0.999999), 7999);
    /* A random number out of range is taken as 0. */
    assert_int_equal(client_retry_delay_ms(1, 0, 1.5), 500);
}

static void test_client_random_unit(void **state)
{
    (void)state;
    for (int i = 0; i < 100; i++) {
        double r = client_random_unit();
        assert_true(r >= 0 && r < 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_rounds),
        cmocka_unit_test(test_retry_after_fits_window),
        cmocka_unit_test(test_retry_spaced_at_drain_rate),
        cmocka_unit_test(test_retry_bounds),
        cmocka_unit_test(test_retry_slot_not_pushed_by_flood),
        cmocka_unit_test(test_queue_fifo_one_worker),
        cmocka_unit_test(test_queue_two_workers),
        cmocka_unit_test(test_queue_cancel_waiting),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_client_follows_retry_after),
        cmocka_unit_test(test_client_backoff),
        cmocka_unit_test(test_client_random_unit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
