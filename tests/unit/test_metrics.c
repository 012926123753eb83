/*
 * Unit tests for server/metrics.c: label escaping, the histogram's cumulative
 * buckets, the cap on a labelled counter's series, and the text format of a
 * daemon with nothing open (no pool, no connection).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"
#include "request.h"
#include "server.h"

static void test_escape(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(metrics_escape("plain", out, sizeof(out)), 5);
    assert_string_equal(out, "plain");
    metrics_escape("a\"b\\c\nd", out, sizeof(out));
    assert_string_equal(out, "a\\\"b\\\\c\\nd");
    /* Cut, but terminated, and the length it needed reported. */
    assert_int_equal(metrics_escape("\"\"\"\"", out, 5), 8);
    assert_string_equal(out, "\\\"\\\"");
    /* Never in the middle of an escape: a lone backslash would escape the quote after it. */
    assert_int_equal(metrics_escape("a\\b", out, 3), 4);
    assert_string_equal(out, "a");
    assert_int_equal(metrics_escape("ab\"", out, 4), 4);
    assert_string_equal(out, "ab");
}

/* The text of a zeroed server: no connections, no pool, no statistics. */
static char *scrape(void)
{
    static server_t srv;
    struct buf b = BUF_INIT;
    assert_int_equal(metrics_text(&srv, &b), 0);
    assert_int_equal(buf_append(&b, "", 1), 0);
    return (char *)b.data;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_text(void **state)
{
    (void)state;
    metrics_init("9.9.9");
    const route_t *checkout = dispatch_find(CARREL__REQUEST__BODY_CHECKOUT);
    assert_non_null(checkout);
    metrics_request_done(checkout, 0, 3000000);       /* 3 ms */
    metrics_request_done(checkout, 10, 20000000000u); /* 20 s: only +Inf */
    metrics_request_done(NULL, 1, 1000);
    metrics_login_failed("we\"ird\\\n");
    metrics_login_failed("session_ended");
    /* A label longer than any buffer: escaped whole, never cut. */
    char longkind[200];
    memset(longkind, '\\', sizeof(longkind) - 1);
    longkind[sizeof(longkind) - 1] = '\0';
    metrics_event_pushed(longkind);
    metrics_event_pushed("other"); /* a real value of that name: not the overflow series */
    metrics_event_pushed(longkind);
    for (int i = 0; i < 40; i++) {
        char kind[16];
        snprintf(kind, sizeof(kind), "kind%d", i);
        metrics_event_pushed(kind);
    }
    char *t = scrape();
    assert_non_null(strstr(t, "carrel_build_info{version=\"9.9.9\"} 1\n"));
    assert_non_null(strstr(t, "carrel_requests_total{type=\"checkout\",status=\"ok\"} 1\n"));
    assert_non_null(strstr(t, "carrel_requests_total{type=\"checkout\",status=\"refused\"} 1\n"));
    assert_non_null(
        strstr(t, "carrel_requests_total{type=\"unknown\",status=\"bad_request\"} 1\n"));
    assert_non_null(
        strstr(t, "carrel_request_duration_seconds_bucket{type=\"checkout\",le=\"0.0025\"} 0\n"));
    assert_non_null(
        strstr(t, "carrel_request_duration_seconds_bucket{type=\"checkout\",le=\"0.005\"} 1\n"));
    assert_non_null(
        strstr(t, "carrel_request_duration_seconds_bucket{type=\"checkout\",le=\"10\"} 1\n"));
    assert_non_null(
        strstr(t, "carrel_request_duration_seconds_bucket{type=\"checkout\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(t, "carrel_request_duration_seconds_count{type=\"checkout\"} 2\n"));
    assert_non_null(strstr(t, "carrel_request_duration_seconds_sum{type=\"checkout\"} 20.003\n"));
    assert_non_null(strstr(t, "carrel_logins_failed_total{reason=\"we\\\"ird\\\\\\n\"} 1\n"));
    /* 42 kinds: 31 of their own and "_other" with the rest; the real "other" apart. */
    assert_int_equal(count(t, "carrel_events_pushed_total{"), METRICS_MAX_SERIES);
    assert_non_null(strstr(t, "carrel_events_pushed_total{kind=\"_other\"} 11\n"));
    assert_non_null(strstr(t, "carrel_events_pushed_total{kind=\"other\"} 1\n"));
    char line[400] = "carrel_events_pushed_total{kind=\"";
    for (int i = 0; i < 47; i++) /* the slot keeps 47 characters, each escaped whole */
        strcat(line, "\\\\");
    strcat(line, "\"} 2\n");
    assert_non_null(strstr(t, line));
    /* Statuses and the known reasons at 0 before their first event, for increase(). */
    assert_non_null(strstr(t, "carrel_responses_total{status=\"internal\"} 0\n"));
    assert_non_null(strstr(t, "carrel_responses_total{status=\"unavailable\"} 0\n"));
    assert_non_null(strstr(t, "carrel_responses_total{status=\"ok\"} 1\n"));
    assert_non_null(strstr(t, "carrel_responses_total{status=\"refused\"} 1\n"));
    assert_null(strstr(t, "carrel_responses_total{status=\"other\"}"));
    assert_non_null(strstr(t, "carrel_logins_failed_total{reason=\"wrong_password\"} 0\n"));
    assert_non_null(strstr(t, "carrel_logins_failed_total{reason=\"unknown_user\"} 0\n"));
    assert_non_null(strstr(t, "carrel_logins_dropped_total{reason=\"session_ended\"} 1\n"));
    assert_null(strstr(t, "carrel_logins_failed_total{reason=\"session_ended\"}"));
    assert_non_null(strstr(t, "carrel_notice_relay_failures_total{channel=\"email\"} 0\n"));
    assert_null(strstr(t, "carrel_notices_pending{"));
    /* HELP and TYPE once per family; the connections' states all there at 0. */
    assert_int_equal(count(t, "# TYPE carrel_requests_total counter\n"), 1);
    assert_int_equal(count(t, "# HELP "), count(t, "# TYPE "));
    assert_non_null(strstr(t, "carrel_connections{state=\"handshake\"} 0\n"));
    assert_null(strstr(t, "carrel_replica_lag_seconds"));
    assert_null(strstr(t, "carrel_replica_lag_bytes"));
    assert_null(strstr(t, "pool=\"stats\""));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
