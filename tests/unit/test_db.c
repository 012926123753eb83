/*
 * Unit tests for the pure parts of server/db.c: how many connections writes
 * may hold, which SQLSTATEs are our refusals, and the limiter of the log
 * lines for unexpected database errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "db.h"

static void test_write_limit_leaves_reserved(void **state)
{
    (void)state;
    assert_int_equal(db_write_limit(8, 2), 6);
    assert_int_equal(db_write_limit(8, 0), 8);
    assert_int_equal(db_write_limit(4, 3), 1);
}

static void test_write_limit_never_zero(void **state)
{
    (void)state;
    /* Writes must always be able to run, even with most connections down. */
    assert_int_equal(db_write_limit(2, 2), 1);
    assert_int_equal(db_write_limit(1, 5), 1);
    assert_int_equal(db_write_limit(0, 2), 1);
}

static void test_refusal_sqlstates(void **state)
{
    (void)state;
    assert_true(db_sqlstate_is_refusal("CR422"));
    assert_true(db_sqlstate_is_refusal("CR404"));
    assert_false(db_sqlstate_is_refusal("55P03"));
    assert_false(db_sqlstate_is_refusal("23505"));
    assert_false(db_sqlstate_is_refusal("C"));
    assert_false(db_sqlstate_is_refusal(""));
    assert_false(db_sqlstate_is_refusal(NULL));
}

/* A table locked elsewhere while a connection prepares must not stop the daemon. */
static void test_prepare_errors_fatal_only_for_the_schema(void **state)
{
    (void)state;
    assert_true(db_prepare_error_is_fatal("42P01"));  /* undefined table */
    assert_true(db_prepare_error_is_fatal("42883"));  /* undefined function */
    assert_false(db_prepare_error_is_fatal("55P03")); /* lock_timeout */
    assert_false(db_prepare_error_is_fatal("57014")); /* statement_timeout */
    assert_false(db_prepare_error_is_fatal("53300")); /* too many connections */
    assert_false(db_prepare_error_is_fatal(NULL));
}

static void test_log_limit_burst_then_report(void **state)
{
    (void)state;
    db_log_limit_t l = {.burst = 3, .window_ms = 1000};
    int dropped;
    uint64_t t = 5000;
    for (int i = 0; i < 3; i++) {
        assert_true(db_log_limit_take(&l, t + (uint64_t)i, &dropped));
        assert_int_equal(dropped, 0);
    }
    for (int i = 0; i < 5; i++) {
        assert_false(db_log_limit_take(&l, t + 10, &dropped));
        assert_int_equal(dropped, 0);
    }
    /* The next window opens: the five dropped lines are reported once. */
    assert_true(db_log_limit_take(&l, t + 1000, &dropped));
    assert_int_equal(dropped, 5);
    assert_true(db_log_limit_take(&l, t + 1001, &dropped));
    assert_int_equal(dropped, 0);
}

static void test_log_limit_at_time_zero(void **state)
{
    (void)state;
    /* A clock that starts at 0 (uv_now early on) must not reopen the window on every call. */
    db_log_limit_t l = {.burst = 1, .window_ms = 1000};
    int dropped;
    assert_true(db_log_limit_take(&l, 0, &dropped));
    assert_false(db_log_limit_take(&l, 0, &dropped));
    assert_false(db_log_limit_take(&l, 500, &dropped));
    assert_true(db_log_limit_take(&l, 1001, &dropped));
    assert_int_equal(dropped, 2);
}

/* A result whose width is not the code's column count is turned into an
 * error before any column is read; a failure or a fitting result passes. */
static void test_fit_refuses_a_result_of_another_width(void **state)
{
    (void)state;
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    assert_non_null(res);
    PGresAttDesc attrs[2];
    memset(attrs, 0, sizeof(attrs));
    attrs[0].name = (char *)"id";
    attrs[1].name = (char *)"title";
    attrs[0].format = attrs[1].format = 0;
    assert_int_equal(PQsetResultAttrs(res, 2, attrs), 1);
    db_result_t ok = {.status = DB_OK, .res = res}, scratch;
    assert_ptr_equal(db_fit(&ok, 2, &scratch), &ok);
    const db_result_t *bad = db_fit(&ok, 3, &scratch);
    assert_ptr_equal(bad, &scratch);
    assert_int_equal(bad->status, DB_QUERY_ERROR);
    assert_string_equal(bad->sqlstate, "XX000");
    assert_non_null(bad->message);
    db_result_t failed = {.status = DB_UNAVAILABLE};
    assert_ptr_equal(db_fit(&failed, 3, &scratch), &failed);
    PQclear(res);
}

static void test_recovery_conflicts(void **state)
{
    (void)state;
    const char *conflict = "canceling statement due to conflict with recovery";
    assert_true(db_is_recovery_conflict("40001", conflict));
    assert_true(db_is_recovery_conflict("40001", NULL));
    assert_true(db_is_recovery_conflict("57014", conflict));
    /* A plain 57014 is the statement_timeout: not a conflict. */
    assert_false(db_is_recovery_conflict("57014", "canceling statement due to statement timeout"));
    assert_false(db_is_recovery_conflict("57014", NULL));
    assert_false(db_is_recovery_conflict("08006", "conflict with recovery"));
    assert_false(db_is_recovery_conflict(NULL, NULL));
}

static void test_conninfo_names_need_dns(void **state)
{
    (void)state;
    char why[256] = "";
    assert_true(db_conninfo_needs_dns("host=standby.example.org port=5432", why, sizeof(why)));
    assert_non_null(strstr(why, "standby.example.org"));
    assert_non_null(strstr(why, "hostaddr"));
    assert_true(db_conninfo_needs_dns("host=localhost", why, sizeof(why)));
    assert_true(db_conninfo_needs_dns("host=10.0.0.5,replica dbname=carrel", why, sizeof(why)));
    assert_true(db_conninfo_needs_dns("postgresql://replica.lan/carrel", why, sizeof(why)));
    /* Addresses, sockets, hostaddr given, nothing given: no lookup. */
    assert_false(db_conninfo_needs_dns("host=10.0.0.5 dbname=carrel", why, sizeof(why)));
    assert_false(db_conninfo_needs_dns("host=::1", why, sizeof(why)));
    assert_false(db_conninfo_needs_dns("host=/run/postgresql", why, sizeof(why)));
    assert_false(db_conninfo_needs_dns("host=db.lan hostaddr=10.0.0.5", why, sizeof(why)));
    assert_false(db_conninfo_needs_dns("dbname=carrel", why, sizeof(why)));
    assert_false(db_conninfo_needs_dns("host=10.0.0.5,10.0.0.6", why, sizeof(why)));
    assert_false(db_conninfo_needs_dns("this is not = a conninfo '", why, sizeof(why)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_limit_leaves_reserved),
        cmocka_unit_test(test_fit_refuses_a_result_of_another_width),
        cmocka_unit_test(test_write_limit_never_zero),
        cmocka_unit_test(test_refusal_sqlstates),
        cmocka_unit_test(test_prepare_errors_fatal_only_for_the_schema),
        cmocka_unit_test(test_log_limit_burst_then_report),
        cmocka_unit_test(test_log_limit_at_time_zero),
        cmocka_unit_test(test_recovery_conflicts),
        cmocka_unit_test(test_conninfo_names_need_dns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
