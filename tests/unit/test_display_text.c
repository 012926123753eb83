/*
 * Unit tests for the checkin line the client prints (client/cmd_displays.c,
 * checkin_display_line): route "display" says PUT BACK ON DISPLAY loudly and
 * keeps what else the server's message says (a status corrected, a fine);
 * other routes print the message as it is.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"

static Carrel__CheckinReply reply(const char *route, const char *display, const char *message)
{
    Carrel__CheckinReply c = CARREL__CHECKIN_REPLY__INIT;
    c.route = (char *)route;
    c.display = (char *)display;
    c.message = (char *)message;
    return c;
}

static void test_display_route_is_said_loudly(void **state)
{
    (void)state;
    char out[256];
    Carrel__CheckinReply c = reply("display", "Summer reads (front window)",
                                   "Put back on the display: Summer reads (front window)");
    assert_string_equal(checkin_display_line(out, sizeof(out), &c),
                        "PUT BACK ON DISPLAY: Summer reads (front window)");
}

static void test_the_rest_of_the_message_stays(void **state)
{
    (void)state;
    char out[256];
    Carrel__CheckinReply c = reply("display", "Cats (hall)",
                                   "Was not checked out. Put back on the display: Cats (hall)"
                                   " (fine $0.50)");
    assert_string_equal(checkin_display_line(out, sizeof(out), &c),
                        "Was not checked out. PUT BACK ON DISPLAY: Cats (hall) (fine $0.50)");
}

static void test_another_wording_gets_the_line_added(void **state)
{
    (void)state;
    char out[256];
    Carrel__CheckinReply c = reply("display", "Cats (hall)", "Return it to the display");
    assert_string_equal(checkin_display_line(out, sizeof(out), &c),
                        "Return it to the display \xe2\x80\x94 PUT BACK ON DISPLAY: Cats (hall)");
    c = reply("display", "Cats (hall)", NULL);
    assert_string_equal(checkin_display_line(out, sizeof(out), &c),
                        "PUT BACK ON DISPLAY: Cats (hall)");
}

static void test_other_routes_print_the_message(void **state)
{
    (void)state;
    char out[256];
    Carrel__CheckinReply c = reply("transit", NULL, "ROUTE TO Park Street");
    assert_string_equal(checkin_display_line(out, sizeof(out), &c), "ROUTE TO Park Street");
    c = reply("shelf", NULL, NULL);
    assert_string_equal(checkin_display_line(out, sizeof(out), &c), "");
    /* A display route without its display (an older server) says only the message. */
    c = reply("display", "", "Put back on the display: ?");
    assert_string_equal(checkin_display_line(out, sizeof(out), &c), "Put back on the display: ?");
}

static void test_a_short_buffer_is_cut_not_overrun(void **state)
{
    (void)state;
    char out[12];
    Carrel__CheckinReply c = reply("display", "Summer reads (front window)",
                                   "Put back on the display: Summer reads (front window)");
    assert_string_equal(checkin_display_line(out, sizeof(out), &c), "PUT BACK ON");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_display_route_is_said_loudly),
        cmocka_unit_test(test_the_rest_of_the_message_stays),
        cmocka_unit_test(test_another_wording_gets_the_line_added),
        cmocka_unit_test(test_other_routes_print_the_message),
        cmocka_unit_test(test_a_short_buffer_is_cut_not_overrun),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
