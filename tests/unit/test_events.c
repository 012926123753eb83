/*
 * Unit tests for server/events.c's payload parser: the five fields of
 * desk_event as they always were, and the two of desk_event_to (a ticket id
 * and the user names an event is addressed to), with malformed payloads
 * refused rather than half read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "events.h"

/* Parse a copy of text (the parser writes into its buffer); the copy is in *buf. */
static bool parse(const char *text, events_payload_t *p, char **buf)
{
    *buf = strdup(text);
    assert_non_null(*buf);
    return events_payload_parse(*buf, p);
}

static void test_old_payload_unchanged(void **state)
{
    (void)state;
    events_payload_t p;
    char *buf;
    assert_true(parse("DWN\thold_captured\t31234000000017\t42\tA copy for the shelf", &p, &buf));
    assert_string_equal(p.branch_code, "DWN");
    assert_string_equal(p.kind, "hold_captured");
    assert_string_equal(p.item_barcode, "31234000000017");
    assert_true(p.has_bib_id);
    assert_int_equal(p.bib_id, 42);
    assert_string_equal(p.text, "A copy for the shelf");
    assert_false(p.has_ticket_id);
    assert_int_equal(p.n_usernames, 0);
    assert_true(events_payload_for(&p, "anyone"));
    free(buf);
}

static void test_old_payload_empty_fields(void **state)
{
    (void)state;
    events_payload_t p;
    char *buf;
    assert_true(parse("PRK\tschedule_gap\t\t\tCarl is out", &p, &buf));
    assert_null(p.item_barcode);
    assert_false(p.has_bib_id);
    assert_string_equal(p.text, "Carl is out");
    free(buf);
    /* An empty text is still five fields. */
    assert_true(parse("PRK\tx\t\t\t", &p, &buf));
    assert_string_equal(p.text, "");
    free(buf);
}

static void test_ticket_payload(void **state)
{
    (void)state;
    events_payload_t p;
    char *buf;
    assert_true(
        parse("DWN\tticket_escalated\t\t\tTicket 17 passed its target\t17\tann,bob", &p, &buf));
    assert_string_equal(p.kind, "ticket_escalated");
    assert_true(p.has_ticket_id);
    assert_int_equal(p.ticket_id, 17);
    assert_int_equal(p.n_usernames, 2);
    assert_string_equal(p.usernames[0], "ann");
    assert_string_equal(p.usernames[1], "bob");
    assert_true(events_payload_for(&p, "bob"));
    assert_false(events_payload_for(&p, "bo"));
    assert_false(events_payload_for(&p, "carl"));
    free(buf);
}

static void test_ticket_without_usernames_routes_by_branch(void **state)
{
    (void)state;
    events_payload_t p;
    char *buf;
    /* Six fields: a ticket id, nobody named. */
    assert_true(parse("\tticket_flagged\t\t\tFlagged\t9", &p, &buf));
    assert_string_equal(p.branch_code, "");
    assert_true(p.has_ticket_id);
    assert_int_equal(p.ticket_id, 9);
    assert_int_equal(p.n_usernames, 0);
    free(buf);
    /* Seven fields, both empty. */
    assert_true(parse("DWN\tk\t\t\tt\t\t", &p, &buf));
    assert_false(p.has_ticket_id);
    assert_int_equal(p.n_usernames, 0);
    free(buf);
}

/* A session of role r at branch DWN, named `name`. */
static session_t session_of(role_t r, const char *name)
{
    session_t s = {.authenticated = true, .role = r};
    snprintf(s.username, sizeof(s.username), "%s", name);
    snprintf(s.branch_code, sizeof(s.branch_code), "DWN");
    return s;
}

static void test_addressed_event_reaches_named_and_coordinators(void **state)
{
    (void)state;
    events_payload_t p;
    char *buf;
    assert_true(parse("DWN\tticket_flagged\t\t\tFlagged\t17\tann", &p, &buf));
    session_t ann = session_of(CARREL__ROLE__ROLE_CLERK, "ann");
    session_t bob = session_of(CARREL__ROLE__ROLE_LIBRARIAN, "bob");
    session_t coord = session_of(CARREL__ROLE__ROLE_COORDINATOR, "cora");
    session_t admin = session_of(CARREL__ROLE__ROLE_ADMIN, "ada");
    assert_true(events_payload_reaches(&p, &ann, false));
    /* The rest of the branch does not hear it. */
    assert_false(events_payload_reaches(&p, &bob, false));
    /* Coordinators and administrators do, subscribed for every branch or not. */
    assert_true(events_payload_reaches(&p, &coord, false));
    assert_true(events_payload_reaches(&p, &coord, true));
    assert_true(events_payload_reaches(&p, &admin, false));
    free(buf);
    /* A branch event: its branch only, unless subscribed for every branch. */
    assert_true(parse("PRK\thold_captured\t31234000000017\t42\tShelf", &p, &buf));
    assert_false(events_payload_reaches(&p, &coord, false));
    assert_false(events_payload_reaches(&p, &ann, false));
    assert_true(events_payload_reaches(&p, &coord, true));
    free(buf);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "DWN",
        "DWN\tk\t\t",                               /* four fields */
        "DWN\tk\t\tx\tt",                           /* bib id not a number */
        "DWN\tk\t\t-3\tt",                          /* nor negative */
        "DWN\tk\t\t\tt\t0\tann",                    /* ticket id 0 */
        "DWN\tk\t\t\tt\t12x\tann",                  /* ticket id with a tail */
        "DWN\tk\t\t\tt\t1\tann,,bob",               /* an empty user name */
        "DWN\tk\t\t\tt\t1\tann,",                   /* a trailing comma */
        "DWN\tk\t\t\tt\t1\tann\textra",             /* an eighth field */
        "DWN\tk\t\t\tt\t99999999999999999999\tann", /* out of range */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        events_payload_t p;
        char *buf;
        if (parse(bad[i], &p, &buf))
            fail_msg("accepted malformed payload %zu", i);
        free(buf);
    }
}

static void test_usernames_bounded(void **state)
{
    (void)state;
    /* EVENTS_USERNAMES_MAX names are taken, one more is refused. */
    char text[4096] = "DWN\tk\t\t\tt\t5\t";
    size_t len = strlen(text);
    for (int i = 0; i < EVENTS_USERNAMES_MAX; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%su%d", i ? "," : "", i);
    events_payload_t p;
    char *buf;
    assert_true(parse(text, &p, &buf));
    assert_int_equal(p.n_usernames, EVENTS_USERNAMES_MAX);
    assert_string_equal(p.usernames[EVENTS_USERNAMES_MAX - 1], "u99");
    free(buf);
    snprintf(text + len, sizeof(text) - len, ",one_more");
    assert_false(parse(text, &p, &buf));
    free(buf);
}

static void test_prune_hourly(void **state)
{
    (void)state;
    assert_true(events_prune_due(0, 5));  /* never ran: at the first tick */
    assert_false(events_prune_due(1000, 1000 + 3599999));
    assert_true(events_prune_due(1000, 1000 + 3600000));
}

/* REVIEW15 finding 4: xids that go back (failover, restore) are seen, as 64-bit numbers. */
static void test_xmax_went_back(void **state)
{
    (void)state;
    assert_false(events_xmax_went_back("1000", "1000"));
    assert_false(events_xmax_went_back("1000", "1001"));
    assert_true(events_xmax_went_back("1000", "999"));
    assert_true(events_xmax_went_back("4294967297", "4294967296")); /* past 32 bits */
    assert_false(events_xmax_went_back("999", "4294967296"));
    assert_false(events_xmax_went_back("", "5")); /* nothing kept: not back */
    assert_false(events_xmax_went_back(NULL, "5"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_payload_unchanged),
        cmocka_unit_test(test_old_payload_empty_fields),
        cmocka_unit_test(test_ticket_payload),
        cmocka_unit_test(test_ticket_without_usernames_routes_by_branch),
        cmocka_unit_test(test_addressed_event_reaches_named_and_coordinators),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_usernames_bounded),
        cmocka_unit_test(test_prune_hourly),
        cmocka_unit_test(test_xmax_went_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
