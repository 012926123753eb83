/*
 * Unit tests for server/admission.c: the checks before a handler runs, one
 * case each, and their order (the first that fails is the one reported, as
 * docs/ARCHITECTURE.md lists them). tests/fuzz/fuzz_request.c checks the same
 * rules on any bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admission.h"

#define UUID "0f8e4b1c-9a2d-4c3e-8f71-2b6d5e4a3c10"

static const admission_facts_t no_hello = {.max_inflight = 64, .inflight = 1};
static const admission_facts_t hello_only = {.hello_done = true, .max_inflight = 64, .inflight = 1};
static const admission_facts_t clerk = {
    .hello_done = true,
    .authenticated = true,
    .subject = {.role = CARREL__ROLE__ROLE_CLERK, .branch_id = 1},
    .max_inflight = 64,
    .inflight = 1,
};

/* Decide on msg, with its own packed bytes as the frame. */
static admission_refusal_t decide(const Carrel__Request *msg, const admission_facts_t *facts,
                                  admission_t *out)
{
    uint8_t frame[1024];
    size_t n = carrel__request__get_packed_size(msg);
    assert_true(n <= sizeof(frame));
    carrel__request__pack(msg, frame);
    admission_refusal_t r = admission_decide(msg, frame, n, facts, out);
    assert_int_equal(r, out->refusal);
    return r;
}

static void test_hello_first(void **state)
{
    (void)state;
    Carrel__Ping ping = CARREL__PING__INIT;
    ping.payload = "escape \x1b[2J"; /* bad text too, but Hello comes first */
    Carrel__Request m = CARREL__REQUEST__INIT;
    m.body_case = CARREL__REQUEST__BODY_PING;
    m.ping = &ping;
    admission_t a;
    assert_int_equal(decide(&m, &no_hello, &a), ADMISSION_HELLO_REQUIRED);
    assert_null(a.route);
    ping.payload = "ok";
    assert_int_equal(decide(&m, &no_hello, &a), ADMISSION_HELLO_REQUIRED);
    assert_int_equal(decide(&m, &hello_only, &a), ADMISSION_OK);
    assert_string_equal(a.route->name, "ping");

    Carrel__Hello hello = CARREL__HELLO__INIT;
    hello.client_name = "carrel";
    Carrel__Request h = CARREL__REQUEST__INIT;
    h.body_case = CARREL__REQUEST__BODY_HELLO;
    h.hello = &hello;
    assert_int_equal(decide(&h, &no_hello, &a), ADMISSION_OK);
}

static void test_text_before_route(void **state)
{
    (void)state;
    Carrel__Hello hello = CARREL__HELLO__INIT;
    hello.client_name = "carrel\xc2\x85"; /* NEL, a C1 control */
    Carrel__Request m = CARREL__REQUEST__INIT;
    m.body_case = CARREL__REQUEST__BODY_HELLO;
    m.hello = &hello;
    admission_t a;
    assert_int_equal(decide(&m, &no_hello, &a), ADMISSION_TEXT);
    assert_null(a.route);
    assert_string_equal(a.text.field->name, "client_name");
    assert_int_equal(a.text.depth, 1);
    assert_int_equal(a.text.problem, TEXT_CONTROL);
    assert_int_equal(a.text.cp, 0x85);

    /* The request key itself: depth 0, field 2 (request.c calls it request_key). */
    hello.client_name = "carrel";
    m.request_key = "key\xff";
    assert_int_equal(decide(&m, &no_hello, &a), ADMISSION_TEXT);
    assert_int_equal(a.text.depth, 0);
    assert_int_equal(a.text.field->id, 2);
    assert_int_equal(a.text.problem, TEXT_BAD_UTF8);
}

/* Frame bytes that wirecheck finds malformed (unpack took them: nested too deep). */
static void test_malformed_is_undecodable(void **state)
{
    (void)state;
    Carrel__Request m = CARREL__REQUEST__INIT;
    admission_t a;
    static const uint8_t bad[] = {0x0a, 0x7f}; /* a length past the end */
    assert_int_equal(admission_decide(&m, bad, sizeof(bad), &hello_only, &a),
                     ADMISSION_UNDECODABLE);
    assert_null(a.route);
}

static void test_unknown_request(void **state)
{
    (void)state;
    Carrel__Request m = CARREL__REQUEST__INIT; /* no body, or one this server does not know */
    admission_t a;
    assert_int_equal(decide(&m, &clerk, &a), ADMISSION_UNKNOWN_REQUEST);
    assert_null(a.route);
}

/* The in-flight limit counts this request and comes before login. */
static void test_inflight_limit(void **state)
{
    (void)state;
    Carrel__CatalogSearch cs = CARREL__CATALOG_SEARCH__INIT;
    Carrel__Request m = CARREL__REQUEST__INIT;
    m.body_case = CARREL__REQUEST__BODY_CATALOG_SEARCH;
    m.catalog_search = &cs;
    admission_facts_t f = hello_only;
    f.inflight = 65;
    admission_t a;
    assert_int_equal(decide(&m, &f, &a), ADMISSION_INFLIGHT_LIMIT);
    assert_string_equal(a.route->name, "catalog_search");
    f.inflight = 64;
    assert_int_equal(decide(&m, &f, &a), ADMISSION_LOGIN_REQUIRED);
}

static void test_login_then_role(void **state)
{
    (void)state;
    Carrel__StaffAdd sa = CARREL__STAFF_ADD__INIT;
    Carrel__Request m = CARREL__REQUEST__INIT;
    m.request_key = UUID;
    m.body_case = CARREL__REQUEST__BODY_STAFF_ADD;
    m.staff_add = &sa;
    admission_t a;
    assert_int_equal(decide(&m, &hello_only, &a), ADMISSION_LOGIN_REQUIRED);
    assert_int_equal(decide(&m, &clerk, &a), ADMISSION_ROLE);
    assert_int_equal(a.perm, PERM_DENIED_ROLE);
    admission_facts_t admin = clerk;
    admin.subject.role = CARREL__ROLE__ROLE_ADMIN;
    assert_int_equal(decide(&m, &admin, &a), ADMISSION_OK);
}

static void test_request_keys(void **state)
{
    (void)state;
    Carrel__Checkout co = CARREL__CHECKOUT__INIT;
    Carrel__Request m = CARREL__REQUEST__INIT;
    m.body_case = CARREL__REQUEST__BODY_CHECKOUT;
    m.checkout = &co;
    admission_t a;
    /* Keyed: required, and a UUID. */
    assert_int_equal(decide(&m, &clerk, &a), ADMISSION_KEY_MISSING);
    m.request_key = "";
    assert_int_equal(decide(&m, &clerk, &a), ADMISSION_KEY_MISSING);
    m.request_key = "not-a-uuid";
    assert_int_equal(decide(&m, &clerk, &a), ADMISSION_KEY_NOT_UUID);
    m.request_key = UUID;
    assert_int_equal(decide(&m, &clerk, &a), ADMISSION_OK);

    /* Mutating: optional, but a UUID when given. */
    Carrel__PatronSave ps = CARREL__PATRON_SAVE__INIT;
    Carrel__Request p = CARREL__REQUEST__INIT;
    p.body_case = CARREL__REQUEST__BODY_PATRON_SAVE;
    p.patron_save = &ps;
    assert_int_equal(decide(&p, &clerk, &a), ADMISSION_OK);
    p.request_key = "abc";
    assert_int_equal(decide(&p, &clerk, &a), ADMISSION_KEY_NOT_UUID);

    /* Elsewhere: ignored. */
    Carrel__CatalogSearch cs = CARREL__CATALOG_SEARCH__INIT;
    Carrel__Request s = CARREL__REQUEST__INIT;
    s.request_key = "abc";
    s.body_case = CARREL__REQUEST__BODY_CATALOG_SEARCH;
    s.catalog_search = &cs;
    assert_int_equal(decide(&s, &clerk, &a), ADMISSION_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_first),
        cmocka_unit_test(test_text_before_route),
        cmocka_unit_test(test_malformed_is_undecodable),
        cmocka_unit_test(test_unknown_request),
        cmocka_unit_test(test_inflight_limit),
        cmocka_unit_test(test_login_then_role),
        cmocka_unit_test(test_request_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
