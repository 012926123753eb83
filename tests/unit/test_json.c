/*
 * Unit tests for common/json.c. Strings: what JSON requires escaped, plus
 * DEL and C1 controls (so a terminal never meets them raw) and bytes that are
 * not UTF-8 (U+FFFD, so the document stays valid JSON). Then the writer's
 * separators and nesting, its numbers, and the reflective protobuf -> JSON
 * conversion, pinned as they are: every `--json` answer depends on them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "carrel.pb-c.h"
#include "json.h"

/* The JSON text of one string value (malloc'd). */
static char *quoted(const char *s)
{
    json_t j;
    json_init(&j);
    json_string(&j, s);
    char *out = malloc(j.out.len + 1);
    memcpy(out, j.out.data, j.out.len);
    out[j.out.len] = '\0';
    json_free(&j);
    return out;
}

static void expect(const char *in, const char *want)
{
    char *got = quoted(in);
    assert_string_equal(got, want);
    free(got);
}

/* Compare the document written so far, then free it. */
static void expect_doc(json_t *j, const char *want)
{
    char *got = malloc(j->out.len + 1);
    memcpy(got, j->out.data, j->out.len);
    got[j->out.len] = '\0';
    assert_string_equal(got, want);
    free(got);
    json_free(j);
}

static void test_plain_and_required_escapes(void **state)
{
    (void)state;
    expect("Zoë 東京 📚", "\"Zoë 東京 📚\"");
    expect("say \"hi\" \\ bye", "\"say \\\"hi\\\" \\\\ bye\"");
    expect("a\nb\tc\rd", "\"a\\nb\\tc\\rd\"");
    expect("\x01\x1f", "\"\\u0001\\u001f\"");
}

static void test_terminal_controls_escaped(void **state)
{
    (void)state;
    expect("paid \x1b[2J", "\"paid \\u001b[2J\"");
    expect("del\x7f", "\"del\\u007f\"");
    expect("csi\xc2\x9b"
           "31m",
           "\"csi\\u009b31m\"");
    expect("nbsp\xc2\xa0", "\"nbsp\xc2\xa0\""); /* U+00A0 is printable */
}

static void test_invalid_utf8_replaced(void **state)
{
    (void)state;
    expect("caf\xe9!", "\"caf\\ufffd!\"");
    expect("\xc0\xaf", "\"\\ufffd\\ufffd\"");
    expect("cut \xe6\x9d", "\"cut \\ufffd\\ufffd\"");
}

/* Every C0 control: the three JSON short forms, \u00XX for the rest (not \b or \f). */
static void test_every_c0_control(void **state)
{
    (void)state;
    for (int c = 1; c < 0x20; c++) {
        char in[2] = {(char)c, '\0'};
        char want[16];
        if (c == '\n')
            strcpy(want, "\"\\n\"");
        else if (c == '\r')
            strcpy(want, "\"\\r\"");
        else if (c == '\t')
            strcpy(want, "\"\\t\"");
        else
            snprintf(want, sizeof(want), "\"\\u%04x\"", (unsigned)c);
        expect(in, want);
    }
    expect("\b\f", "\"\\u0008\\u000c\"");
}

/* U+0080-U+009F are escaped, each one; U+00A0 and above are printable. */
static void test_every_c1_control(void **state)
{
    (void)state;
    for (unsigned c = 0x80; c <= 0x9F; c++) {
        char in[3] = {(char)(0xC0 | (c >> 6)), (char)(0x80 | (c & 0x3F)), '\0'};
        char want[16];
        snprintf(want, sizeof(want), "\"\\u%04x\"", c);
        expect(in, want);
    }
    expect("\xc2\xa0\xc2\xbf", "\"\xc2\xa0\xc2\xbf\"");
    expect("\x7f\x7f", "\"\\u007f\\u007f\"");
    expect("/", "\"/\""); /* the solidus is not escaped */
}

/* Each byte that does not start a valid sequence becomes one U+FFFD. */
static void test_invalid_utf8_each_byte(void **state)
{
    (void)state;
    expect("\x80", "\"\\ufffd\"");                                  /* a lone continuation byte */
    expect("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");            /* a surrogate, U+D800 */
    expect("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* beyond U+10FFFF */
    expect("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");            /* overlong "/" */
    expect("\xff\xfe", "\"\\ufffd\\ufffd\"");
    expect("a\xf0\x9f\x93", "\"a\\ufffd\\ufffd\\ufffd\""); /* cut at the end */
    expect("\xf0\x9f\x93\x9a", "\"\xf0\x9f\x93\x9a\"");    /* the whole of it is fine */
    expect("", "\"\"");
}

static void test_keys_are_escaped_too(void **state)
{
    (void)state;
    json_t j;
    json_init(&j);
    json_object_begin(&j);
    json_key(&j, "a\"b\x1b");
    json_string(&j, NULL);
    json_object_end(&j);
    expect_doc(&j, "{\"a\\\"b\\u001b\":null}");
}

static void test_nesting_and_separators(void **state)
{
    (void)state;
    json_t j;
    json_init(&j);
    json_object_begin(&j);
    json_key(&j, "a");
    json_array_begin(&j);
    json_int(&j, 1);
    json_object_begin(&j);
    json_key(&j, "b");
    json_array_begin(&j);
    json_array_end(&j);
    json_key(&j, "c");
    json_bool(&j, true);
    json_object_end(&j);
    json_array_begin(&j);
    json_null(&j);
    json_bool(&j, false);
    json_array_end(&j);
    json_array_end(&j);
    json_key(&j, "d");
    json_object_begin(&j);
    json_object_end(&j);
    json_object_end(&j);
    expect_doc(&j, "{\"a\":[1,{\"b\":[],\"c\":true},[null,false]],\"d\":{}}");

    /* Values written one after another at the top are separated by commas. */
    json_init(&j);
    json_int(&j, 1);
    json_string(&j, "x");
    json_array_begin(&j);
    json_array_end(&j);
    expect_doc(&j, "1,\"x\",[]");
}

/* Sixty levels (the writer tracks 63) open and close with the right commas. */
static void test_deep_nesting(void **state)
{
    (void)state;
    json_t j;
    json_init(&j);
    char want[400] = "";
    for (int i = 0; i < 60; i++) {
        json_array_begin(&j);
        json_int(&j, i);
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%d", i ? ",[" : "[", i);
    }
    for (int i = 0; i < 60; i++) {
        json_array_end(&j);
        strcat(want, "]");
    }
    assert_int_equal(j.depth, 0);
    json_int(&j, 60);
    strcat(want, ",60");
    expect_doc(&j, want);
}

static void test_numbers(void **state)
{
    (void)state;
    json_t j;
    json_init(&j);
    json_array_begin(&j);
    json_int(&j, 0);
    json_int(&j, -1);
    json_int(&j, INT64_MIN);
    json_int(&j, INT64_MAX);
    json_uint(&j, UINT64_MAX);
    json_double(&j, 0.5);
    json_double(&j, 0.1);
    json_double(&j, -0.0);
    json_double(&j, 1e300);
    json_double(&j, 3.0);
    json_double(&j, NAN);
    json_double(&j, INFINITY);
    json_double(&j, -INFINITY);
    json_array_end(&j);
    expect_doc(&j, "[0,-1,-9223372036854775808,9223372036854775807,18446744073709551615,"
                   "0.5,0.10000000000000001,-0,1.0000000000000001e+300,3,null,null,null]");
}

static void test_enum_names(void **state)
{
    (void)state;
    assert_string_equal(
        json_enum_name(&carrel__role__descriptor, CARREL__ROLE__ROLE_BRANCH_MANAGER),
        "branch_manager");
    assert_string_equal(
        json_enum_name(&carrel__status__descriptor, CARREL__STATUS__STATUS_NOT_FOUND), "not_found");
    assert_string_equal(json_enum_name(&carrel__role__descriptor, 99), "99");
}

/*
 * A message with a oneof, a nested message, a repeated message, repeated
 * strings, an enum, bytes, bools and 64-bit numbers. Fields come in field
 * number order; an absent optional is left out, an empty repeated field is
 * [], int64 and uint64 are JSON numbers (not strings), bytes are base64.
 */
static void test_protobuf_message(void **state)
{
    (void)state;
    Carrel__MarcRecord r1 = CARREL__MARC_RECORD__INIT;
    r1.has_position = 1;
    r1.position = INT64_MAX;
    r1.has_offset = 1;
    r1.offset = -5;
    r1.has_data = 1;
    r1.data.data = (uint8_t *)"abcd";
    r1.data.len = 4;
    r1.has_xml = 1;
    r1.xml = 0;
    Carrel__MarcRecord r2 = CARREL__MARC_RECORD__INIT; /* nothing set */
    Carrel__MarcRecord *records[] = {&r1, &r2};
    Carrel__MarcImportBatch b = CARREL__MARC_IMPORT_BATCH__INIT;
    b.records = records;
    b.n_records = 2;
    b.holdings_tag = "852";
    b.has_spread_branches = 1;
    b.spread_branches = 1;
    Carrel__Request req = CARREL__REQUEST__INIT;
    req.has_id = 1;
    req.id = UINT64_MAX;
    req.request_key = "k\"1";
    req.body_case = CARREL__REQUEST__BODY_MARC_IMPORT_BATCH;
    req.marc_import_batch = &b;
    json_t j;
    json_init(&j);
    json_message(&j, &req.base);
    expect_doc(&j, "{\"id\":18446744073709551615,\"request_key\":\"k\\\"1\","
                   "\"marc_import_batch\":{\"records\":[{\"position\":9223372036854775807,"
                   "\"offset\":-5,\"data\":\"YWJjZA==\",\"xml\":false},{}],"
                   "\"holdings_tag\":\"852\",\"spread_branches\":true}}");

    char *branches[] = {"MAIN", "Zoë\x01"};
    Carrel__StaffAdd sa = CARREL__STAFF_ADD__INIT;
    sa.username = "bob";
    sa.has_role = 1;
    sa.role = CARREL__ROLE__ROLE_BRANCH_MANAGER;
    sa.branch_codes = branches;
    sa.n_branch_codes = 2;
    json_init(&j);
    json_message(&j, &sa.base);
    expect_doc(&j, "{\"username\":\"bob\",\"role\":\"branch_manager\","
                   "\"branch_codes\":[\"MAIN\",\"Zoë\\u0001\"]}");

    Carrel__StaffAdd empty = CARREL__STAFF_ADD__INIT;
    json_init(&j);
    json_message(&j, &empty.base);
    expect_doc(&j, "{\"branch_codes\":[]}");
}

/* Bytes of every length mod 3 (padding), and none. */
static void test_bytes_base64(void **state)
{
    (void)state;
    static const char *const want[] = {"\"\"", "\"/w==\"", "\"//4=\"", "\"//79\""};
    static const uint8_t data[] = {0xFF, 0xFE, 0xFD};
    for (size_t n = 0; n <= 3; n++) {
        Carrel__MarcRecord r = CARREL__MARC_RECORD__INIT;
        r.has_data = 1;
        r.data.data = (uint8_t *)data;
        r.data.len = n;
        json_t j;
        json_init(&j);
        json_message(&j, &r.base);
        char doc[64];
        snprintf(doc, sizeof(doc), "{\"data\":%s}", want[n]);
        expect_doc(&j, doc);
    }
}

/* A message's fields inside an object of one's own, with keys before and after them. */
static void test_message_fields_in_an_open_object(void **state)
{
    (void)state;
    char *branches[] = {"MAIN"};
    Carrel__StaffAdd sa = CARREL__STAFF_ADD__INIT;
    sa.username = "bob";
    sa.branch_codes = branches;
    sa.n_branch_codes = 1;
    json_t j;
    json_init(&j);
    json_array_begin(&j);
    json_object_begin(&j);
    json_key(&j, "ok");
    json_bool(&j, true);
    json_message_fields(&j, &sa.base);
    json_key(&j, "barcode");
    json_string(&j, "31");
    json_object_end(&j);
    json_object_begin(&j); /* an empty message: only one's own keys */
    Carrel__Ping empty = CARREL__PING__INIT;
    json_key(&j, "ok");
    json_bool(&j, false);
    json_message_fields(&j, &empty.base);
    json_object_end(&j);
    json_object_begin(&j); /* fields first, then a key: the comma still falls right */
    json_message_fields(&j, &sa.base);
    json_key(&j, "ok");
    json_bool(&j, true);
    json_object_end(&j);
    json_array_end(&j);
    expect_doc(&j, "[{\"ok\":true,\"username\":\"bob\",\"branch_codes\":[\"MAIN\"],"
                   "\"barcode\":\"31\"},{\"ok\":false},"
                   "{\"username\":\"bob\",\"branch_codes\":[\"MAIN\"],\"ok\":true}]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_fields_in_an_open_object),
        cmocka_unit_test(test_plain_and_required_escapes),
        cmocka_unit_test(test_terminal_controls_escaped),
        cmocka_unit_test(test_invalid_utf8_replaced),
        cmocka_unit_test(test_every_c0_control),
        cmocka_unit_test(test_every_c1_control),
        cmocka_unit_test(test_invalid_utf8_each_byte),
        cmocka_unit_test(test_keys_are_escaped_too),
        cmocka_unit_test(test_nesting_and_separators),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_enum_names),
        cmocka_unit_test(test_protobuf_message),
        cmocka_unit_test(test_bytes_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
