/*
 * Unit tests for common/wirecheck.c: string fields of serialized Requests,
 * at any depth, checked from the wire bytes (which protobuf-c's unpack would
 * have cut at a NUL), with bytes fields, numbers and unknown fields skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "carrel.pb-c.h"
#include "wirecheck.h"

/* A hand-built message: enough of the wire format to write what no C string can. */
typedef struct wire {
    uint8_t b[512];
    size_t n;
} wire_t;

static void put_varint(wire_t *w, uint64_t v)
{
    do {
        uint8_t byte = v & 0x7F;
        v >>= 7;
        w->b[w->n++] = byte | (v ? 0x80 : 0);
    } while (v);
}

static void put_bytes(wire_t *w, unsigned field, const void *data, size_t len)
{
    put_varint(w, (uint64_t)field << 3 | 2);
    put_varint(w, len);
    memcpy(w->b + w->n, data, len);
    w->n += len;
}

static void put_uint(wire_t *w, unsigned field, uint64_t v)
{
    put_varint(w, (uint64_t)field << 3);
    put_varint(w, v);
}

/* Request{id=7, login{workstation, username, password}} with raw password bytes. */
static void login_request(wire_t *req, const char *password, size_t pwlen)
{
    wire_t login = {{0}, 0};
    put_bytes(&login, 1, "demo-desk", 9);
    put_bytes(&login, 2, "admin", 5);
    put_bytes(&login, 3, password, pwlen);
    memset(req, 0, sizeof(*req));
    put_uint(req, 1, 7);
    put_bytes(req, 11, login.b, login.n);
}

static wirecheck_result_t check(const wire_t *w, wirecheck_error_t *err)
{
    return wirecheck_strings(&carrel__request__descriptor, w->b, w->n, err);
}

static void test_valid_request_passes(void **state)
{
    (void)state;
    wire_t w;
    login_request(&w, "pässword\twith tab", strlen("pässword\twith tab"));
    assert_int_equal(check(&w, NULL), WIRECHECK_OK);
    assert_int_equal(wirecheck_strings(&carrel__request__descriptor, NULL, 0, NULL), WIRECHECK_OK);
}

static void test_nul_in_nested_string_is_found(void **state)
{
    (void)state;
    wire_t w;
    login_request(&w, "secret\0junk", 11);
    /* What the check is for: protobuf-c accepts it and C sees "secret". */
    Carrel__Request *m = carrel__request__unpack(NULL, w.n, w.b);
    assert_non_null(m);
    assert_string_equal(m->login->password, "secret");
    carrel__request__free_unpacked(m, NULL);

    wirecheck_error_t err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(check(&w, &err), WIRECHECK_TEXT);
    assert_string_equal(err.field->name, "password");
    assert_int_equal(err.depth, 1);
    assert_int_equal(err.problem, TEXT_NUL);
}

static void test_top_level_and_deeper_strings(void **state)
{
    (void)state;
    wire_t w = {{0}, 0};
    put_uint(&w, 1, 1);
    put_bytes(&w, 2, "\xC0\xAF", 2); /* request_key, overlong */
    wirecheck_error_t err;
    assert_int_equal(check(&w, &err), WIRECHECK_TEXT);
    assert_string_equal(err.field->name, "request_key");
    assert_int_equal(err.depth, 0);
    assert_int_equal(err.problem, TEXT_BAD_UTF8);

    /* BibSave{bib{title, subjects[1] with ESC}}: two levels down, a repeated field. */
    wire_t bib = {{0}, 0}, save = {{0}, 0};
    put_bytes(&bib, 2, "A title", 7);
    put_bytes(&bib, 4, "History", 7);
    put_bytes(&bib, 4, "\x1B[2J", 4);
    put_bytes(&save, 1, bib.b, bib.n);
    memset(&w, 0, sizeof(w));
    put_uint(&w, 1, 2);
    put_bytes(&w, 42, save.b, save.n);
    assert_int_equal(check(&w, &err), WIRECHECK_TEXT);
    assert_string_equal(err.field->name, "subjects");
    assert_int_equal(err.depth, 2);
    assert_int_equal(err.problem, TEXT_CONTROL);
    assert_int_equal(err.cp, 0x1B);
}

static void test_bytes_numbers_and_unknown_fields_are_skipped(void **state)
{
    (void)state;
    /* MarcImportBatch{records[{position, data: bytes with NUL and ESC}]} */
    wire_t rec = {{0}, 0}, batch = {{0}, 0}, w = {{0}, 0};
    put_uint(&rec, 1, 1);
    put_bytes(&rec, 3, "00042\0\x1B\x1D\x1E\x1F\xFF", 11);
    put_bytes(&batch, 1, rec.b, rec.n);
    put_uint(&w, 1, 3);
    put_bytes(&w, 45, batch.b, batch.n);
    put_bytes(&w, 199, "\0unknown field", 14); /* not in the oneof: ignored */
    w.b[w.n++] = 0x0D;                         /* field 1, fixed32 */
    memcpy(w.b + w.n, "\0\0\0\0", 4);
    w.n += 4;
    w.b[w.n++] = 0x09; /* field 1, fixed64 */
    memcpy(w.b + w.n, "\0\0\0\0\0\0\0\0", 8);
    w.n += 8;
    assert_int_equal(check(&w, NULL), WIRECHECK_OK);
}

static void test_malformed_input_is_reported_not_read_past(void **state)
{
    (void)state;
    wire_t w;
    login_request(&w, "pw", 2);
    for (size_t cut = 1; cut < w.n; cut++) {
        /* A copy of exactly `cut` bytes, so ASan catches any read past it. */
        uint8_t *copy = malloc(cut);
        memcpy(copy, w.b, cut);
        wirecheck_result_t r = wirecheck_strings(&carrel__request__descriptor, copy, cut, NULL);
        assert_true(r == WIRECHECK_MALFORMED || r == WIRECHECK_OK);
        free(copy);
    }
    const uint8_t group[] = {0x0B, 0x0C};                     /* start/end group */
    const uint8_t longlen[] = {0x12, 0xFF, 0xFF, 0xFF, 0x0F}; /* length beyond the data */
    const uint8_t varint[] = {0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                              0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    assert_int_equal(wirecheck_strings(&carrel__request__descriptor, group, 2, NULL),
                     WIRECHECK_MALFORMED);
    assert_int_equal(wirecheck_strings(&carrel__request__descriptor, longlen, 5, NULL),
                     WIRECHECK_MALFORMED);
    assert_int_equal(wirecheck_strings(&carrel__request__descriptor, varint, 12, NULL),
                     WIRECHECK_MALFORMED);
}

static void test_depth_is_bounded(void **state)
{
    (void)state;
    /* Nesting deeper than allowed is refused without recursing further. A
     * self-nesting message type is needed for that: Request has none, so use a
     * descriptor whose field 1 is a message of its own type. */
    static ProtobufCFieldDescriptor field;
    static ProtobufCMessageDescriptor self;
    static const unsigned sorted[] = {0};
    static const ProtobufCIntRange ranges[] = {{1, 0}, {0, 1}};
    field.name = "inner";
    field.id = 1;
    field.label = PROTOBUF_C_LABEL_OPTIONAL;
    field.type = PROTOBUF_C_TYPE_MESSAGE;
    field.descriptor = &self;
    self.magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
    self.name = self.short_name = "Self";
    self.n_fields = 1;
    self.fields = &field;
    self.fields_sorted_by_name = sorted;
    self.n_field_ranges = 1;
    self.field_ranges = ranges;

    uint8_t buf[2 * (WIRECHECK_MAX_DEPTH + 2)];
    size_t levels = WIRECHECK_MAX_DEPTH + 2;
    /* Innermost first: each level wraps the previous one as field 1. */
    size_t n = 0;
    uint8_t tmp[sizeof(buf)];
    for (size_t i = 0; i < levels; i++) {
        tmp[0] = 0x0A;
        tmp[1] = (uint8_t)n;
        memcpy(tmp + 2, buf, n);
        n += 2;
        memcpy(buf, tmp, n);
    }
    assert_int_equal(wirecheck_strings(&self, buf, n, NULL), WIRECHECK_MALFORMED);
    assert_int_equal(wirecheck_strings(&self, buf + 2 * 3, n - 2 * 3, NULL), WIRECHECK_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_request_passes),
        cmocka_unit_test(test_nul_in_nested_string_is_found),
        cmocka_unit_test(test_top_level_and_deeper_strings),
        cmocka_unit_test(test_bytes_numbers_and_unknown_fields_are_skipped),
        cmocka_unit_test(test_malformed_input_is_reported_not_read_past),
        cmocka_unit_test(test_depth_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
