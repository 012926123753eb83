/*
 * Unit tests for common/frame.c: the length-prefixed frame decoder and
 * encoder. The decoder is fed the way a socket feeds it: in pieces of any
 * size, split anywhere, several frames at once, or nonsense.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "carrel.pb-c.h"
#include "frame.h"

/* Append one frame whose payload is `len` bytes of a pattern seeded by `seed`. */
static void put_frame(struct buf *b, uint32_t len, uint8_t seed)
{
    uint8_t h[FRAME_HEADER_BYTES];
    frame_put_header(h, len);
    assert_int_equal(buf_append(b, h, sizeof(h)), 0);
    for (uint32_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)(seed + i * 7);
        assert_int_equal(buf_append(b, &c, 1), 0);
    }
}

/* Check that payload holds the pattern put_frame wrote for (len, seed). */
static void check_payload(const uint8_t *payload, size_t got, uint32_t len, uint8_t seed)
{
    assert_int_equal(got, len);
    for (uint32_t i = 0; i < len; i++)
        assert_int_equal(payload[i], (uint8_t)(seed + i * 7));
}

static void feed(frame_decoder_t *dec, const void *data, size_t len)
{
    assert_int_equal(frame_decoder_feed(dec, data, len), 0);
}

static void test_header_bytes_are_big_endian(void **state)
{
    (void)state;
    uint8_t h[FRAME_HEADER_BYTES];
    frame_put_header(h, 0x01020304u);
    assert_int_equal(h[0], 0x01);
    assert_int_equal(h[1], 0x02);
    assert_int_equal(h[2], 0x03);
    assert_int_equal(h[3], 0x04);
    assert_int_equal(frame_get_header(h), 0x01020304u);

    const uint8_t max[FRAME_HEADER_BYTES] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(frame_get_header(max), UINT32_MAX);
    const uint8_t one[FRAME_HEADER_BYTES] = {0, 0, 0, 1};
    assert_int_equal(frame_get_header(one), 1);
}

static void test_empty_decoder_needs_more(void **state)
{
    (void)state;
    frame_decoder_t dec;
    frame_decoder_init(&dec, 1024);
    const uint8_t *payload = NULL;
    size_t len = 99;
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_NEED_MORE);
    assert_int_equal(frame_decoder_buffered(&dec), 0);
    /* Feeding nothing is allowed and changes nothing. */
    feed(&dec, "", 0);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_NEED_MORE);
    frame_decoder_free(&dec);
}

static void test_partial_header(void **state)
{
    (void)state;
    frame_decoder_t dec;
    frame_decoder_init(&dec, 1024);
    const uint8_t header[FRAME_HEADER_BYTES] = {0, 0, 0, 3};
    const uint8_t *payload;
    size_t len;
    for (size_t i = 0; i < FRAME_HEADER_BYTES - 1; i++) {
        feed(&dec, &header[i], 1);
        assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_NEED_MORE);
        assert_int_equal(frame_decoder_buffered(&dec), i + 1);
    }
    /* The whole header but no body is still not a frame. */
    feed(&dec, &header[FRAME_HEADER_BYTES - 1], 1);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_NEED_MORE);
    assert_int_equal(frame_decoder_buffered(&dec), FRAME_HEADER_BYTES);
    feed(&dec, "abc", 3);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
    assert_int_equal(len, 3);
    assert_memory_equal(payload, "abc", 3);
    assert_int_equal(frame_decoder_buffered(&dec), 0);
    frame_decoder_free(&dec);
}

/*
 * One frame split into two feeds at every byte boundary, header and body
 * alike: the frame comes out exactly once, when its last byte arrives.
 */
static void test_split_at_every_boundary(void **state)
{
    (void)state;
    struct buf wire = BUF_INIT;
    put_frame(&wire, 37, 11);
    for (size_t split = 0; split <= wire.len; split++) {
        frame_decoder_t dec;
        frame_decoder_init(&dec, 1024);
        const uint8_t *payload;
        size_t len;
        feed(&dec, wire.data, split);
        if (split < wire.len)
            assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_NEED_MORE);
        feed(&dec, wire.data + split, wire.len - split);
        assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
        check_payload(payload, len, 37, 11);
        assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_NEED_MORE);
        assert_int_equal(frame_decoder_buffered(&dec), 0);
        frame_decoder_free(&dec);
    }
    buf_free(&wire);
}

/* Every split of a stream of three frames into three feeds. */
static void test_three_frames_split_anywhere(void **state)
{
    (void)state;
    static const uint32_t lens[] = {5, 0, 9};
    struct buf wire = BUF_INIT;
    for (size_t i = 0; i < 3; i++)
        put_frame(&wire, lens[i], (uint8_t)(i * 50));
    for (size_t a = 0; a <= wire.len; a++) {
        for (size_t b = a; b <= wire.len; b++) {
            frame_decoder_t dec;
            frame_decoder_init(&dec, 64);
            const size_t cuts[] = {0, a, b, wire.len};
            size_t got = 0;
            for (size_t c = 0; c < 3; c++) {
                feed(&dec, wire.data + cuts[c], cuts[c + 1] - cuts[c]);
                const uint8_t *payload;
                size_t len;
                frame_result_t r;
                while ((r = frame_decoder_next(&dec, &payload, &len)) == FRAME_READY) {
                    assert_true(got < 3);
                    check_payload(payload, len, lens[got], (uint8_t)(got * 50));
                    got++;
                }
                assert_int_equal(r, FRAME_NEED_MORE);
            }
            assert_int_equal(got, 3);
            assert_int_equal(frame_decoder_buffered(&dec), 0);
            frame_decoder_free(&dec);
        }
    }
    buf_free(&wire);
}

static void test_body_split(void **state)
{
    (void)state;
    struct buf wire = BUF_INIT;
    put_frame(&wire, 1000, 3);
    frame_decoder_t dec;
    frame_decoder_init(&dec, 4096);
    const uint8_t *payload;
    size_t len;
    /* Header plus half the body, then the body in uneven slices. */
    feed(&dec, wire.data, 504);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_NEED_MORE);
    assert_int_equal(frame_decoder_buffered(&dec), 504);
    size_t off = 504;
    size_t step = 1;
    while (off < wire.len) {
        size_t n = wire.len - off < step ? wire.len - off : step;
        feed(&dec, wire.data + off, n);
        off += n;
        step = step * 3 + 1;
        if (off < wire.len)
            assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_NEED_MORE);
    }
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
    check_payload(payload, len, 1000, 3);
    frame_decoder_free(&dec);
    buf_free(&wire);
}

/* Several frames in one feed, followed by the first bytes of another. */
static void test_concatenated_frames_in_one_feed(void **state)
{
    (void)state;
    static const uint32_t lens[] = {1, 200, 0, 17, 64};
    struct buf wire = BUF_INIT;
    for (size_t i = 0; i < 5; i++)
        put_frame(&wire, lens[i], (uint8_t)(i + 1));
    size_t whole = wire.len;
    put_frame(&wire, 10, 99);

    frame_decoder_t dec;
    frame_decoder_init(&dec, 256);
    feed(&dec, wire.data, whole + 6); /* header and 2 bytes of the sixth */
    const uint8_t *payload;
    size_t len;
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
        check_payload(payload, len, lens[i], (uint8_t)(i + 1));
    }
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_NEED_MORE);
    assert_int_equal(frame_decoder_buffered(&dec), 6);
    /* The rest of the sixth arrives after the decoder compacts its buffer. */
    feed(&dec, wire.data + whole + 6, wire.len - whole - 6);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
    check_payload(payload, len, 10, 99);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_NEED_MORE);
    assert_int_equal(frame_decoder_buffered(&dec), 0);
    frame_decoder_free(&dec);
    buf_free(&wire);
}

static void test_zero_length_frame(void **state)
{
    (void)state;
    frame_decoder_t dec;
    frame_decoder_init(&dec, 16);
    const uint8_t zeros[2 * FRAME_HEADER_BYTES] = {0};
    feed(&dec, zeros, sizeof(zeros));
    const uint8_t *payload = NULL;
    size_t len = 12345;
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
    assert_int_equal(len, 0);
    assert_non_null(payload);
    assert_int_equal(frame_decoder_buffered(&dec), FRAME_HEADER_BYTES);
    len = 12345;
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
    assert_int_equal(len, 0);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_NEED_MORE);
    frame_decoder_free(&dec);
}

static void test_frame_exactly_at_max_is_accepted(void **state)
{
    (void)state;
    struct buf wire = BUF_INIT;
    put_frame(&wire, 300, 5);
    frame_decoder_t dec;
    frame_decoder_init(&dec, 300);
    feed(&dec, wire.data, wire.len);
    const uint8_t *payload;
    size_t len;
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
    check_payload(payload, len, 300, 5);
    frame_decoder_free(&dec);
    buf_free(&wire);
}

/* One byte over the limit is refused on the header alone: no body is sent. */
static void test_frame_over_max_refused_from_header(void **state)
{
    (void)state;
    frame_decoder_t dec;
    frame_decoder_init(&dec, 300);
    uint8_t h[FRAME_HEADER_BYTES];
    frame_put_header(h, 301);
    const uint8_t *payload;
    size_t len;
    feed(&dec, h, 3);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_NEED_MORE);
    feed(&dec, h + 3, 1);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_TOO_LARGE);
    assert_int_equal(dec.declared, 301);
    assert_int_equal(frame_decoder_buffered(&dec), FRAME_HEADER_BYTES);
    /* The verdict sticks: the decoder does not skip ahead into the body. */
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_TOO_LARGE);
    frame_decoder_free(&dec);
}

static void test_huge_declared_length(void **state)
{
    (void)state;
    frame_decoder_t dec;
    frame_decoder_init(&dec, 64 * 1024 * 1024);
    const uint8_t h[FRAME_HEADER_BYTES] = {0xff, 0xff, 0xff, 0xff};
    feed(&dec, h, sizeof(h));
    const uint8_t *payload;
    size_t len;
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_TOO_LARGE);
    assert_int_equal(dec.declared, UINT32_MAX);
    frame_decoder_free(&dec);
}

/* A too-large frame after good ones: the good ones come out first. */
static void test_too_large_after_good_frames(void **state)
{
    (void)state;
    struct buf wire = BUF_INIT;
    put_frame(&wire, 8, 1);
    put_frame(&wire, 8, 2);
    uint8_t h[FRAME_HEADER_BYTES];
    frame_put_header(h, 9);
    assert_int_equal(buf_append(&wire, h, sizeof(h)), 0);
    frame_decoder_t dec;
    frame_decoder_init(&dec, 8);
    feed(&dec, wire.data, wire.len);
    const uint8_t *payload;
    size_t len;
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
    check_payload(payload, len, 8, 1);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
    check_payload(payload, len, 8, 2);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_TOO_LARGE);
    assert_int_equal(dec.declared, 9);
    frame_decoder_free(&dec);
    buf_free(&wire);
}

/* The login limit is tighter than the session limit; both ways take effect at once. */
static void test_set_max_lowers_and_raises(void **state)
{
    (void)state;
    struct buf wire = BUF_INIT;
    put_frame(&wire, 200, 9);
    frame_decoder_t dec;
    frame_decoder_init(&dec, 1024);
    const uint8_t *payload;
    size_t len;

    frame_decoder_set_max(&dec, 100);
    feed(&dec, wire.data, wire.len);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_TOO_LARGE);
    assert_int_equal(dec.declared, 200);

    frame_decoder_set_max(&dec, 199);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_TOO_LARGE);

    frame_decoder_set_max(&dec, 200);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
    check_payload(payload, len, 200, 9);

    /* Lowered again: the same frame is now refused. */
    frame_decoder_set_max(&dec, 50);
    feed(&dec, wire.data, wire.len);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_TOO_LARGE);
    frame_decoder_free(&dec);
    buf_free(&wire);
}

/* A small deterministic generator, so a failure can be replayed. */
static uint32_t rng_next(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

/*
 * Random bytes in random slices. Whatever arrives, the decoder answers
 * NEED_MORE, TOO_LARGE (and then the stream is dead) or frames within the
 * limit, and the bytes it returns plus those it holds add up to what was fed.
 */
static void test_garbage_never_crashes(void **state)
{
    (void)state;
    uint32_t seed = 0x9e3779b9u;
    int saw_ready = 0, saw_too_large = 0;
    for (int round = 0; round < 2000; round++) {
        frame_decoder_t dec;
        /* Mostly small limits so that random headers sometimes fit. */
        size_t max = (round % 4 == 0) ? (rng_next(&seed) % 70000) : (rng_next(&seed) % 64);
        frame_decoder_init(&dec, max);
        size_t fed = 0, taken = 0;
        int dead = 0;
        for (int chunk = 0; chunk < 20 && !dead; chunk++) {
            uint8_t data[97];
            size_t n = rng_next(&seed) % sizeof(data);
            for (size_t i = 0; i < n; i++) {
                /* Bias toward zero bytes, or every header would be enormous. */
                uint32_t r = rng_next(&seed);
                data[i] = (r & 3) ? 0 : (uint8_t)(r >> 8);
            }
            feed(&dec, data, n);
            fed += n;
            for (;;) {
                const uint8_t *payload = NULL;
                size_t len = SIZE_MAX;
                frame_result_t r = frame_decoder_next(&dec, &payload, &len);
                if (r == FRAME_NEED_MORE)
                    break;
                if (r == FRAME_TOO_LARGE) {
                    assert_true(dec.declared > max);
                    saw_too_large = 1;
                    dead = 1;
                    break;
                }
                assert_int_equal(r, FRAME_READY);
                assert_true(len <= max);
                assert_non_null(payload);
                /* Touch every byte: ASan checks they lie inside the buffer. */
                volatile uint8_t sink = 0;
                for (size_t i = 0; i < len; i++)
                    sink ^= payload[i];
                (void)sink;
                taken += FRAME_HEADER_BYTES + len;
                saw_ready = 1;
            }
            assert_int_equal(taken + frame_decoder_buffered(&dec), fed);
        }
        frame_decoder_free(&dec);
    }
    /* The generator must have exercised both outcomes, or this test proves little. */
    assert_true(saw_ready);
    assert_true(saw_too_large);
}

/* Frames from random lengths in random slices: everything comes back intact. */
static void test_random_valid_stream(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    struct buf wire = BUF_INIT;
    uint32_t lens[300];
    for (size_t i = 0; i < 300; i++) {
        lens[i] = rng_next(&seed) % 600;
        put_frame(&wire, lens[i], (uint8_t)i);
    }
    frame_decoder_t dec;
    frame_decoder_init(&dec, 600);
    size_t off = 0, got = 0;
    while (off < wire.len) {
        size_t n = 1 + rng_next(&seed) % 900;
        if (n > wire.len - off)
            n = wire.len - off;
        feed(&dec, wire.data + off, n);
        off += n;
        const uint8_t *payload;
        size_t len;
        while (frame_decoder_next(&dec, &payload, &len) == FRAME_READY) {
            assert_true(got < 300);
            check_payload(payload, len, lens[got], (uint8_t)got);
            got++;
        }
    }
    assert_int_equal(got, 300);
    assert_int_equal(frame_decoder_buffered(&dec), 0);
    frame_decoder_free(&dec);
    buf_free(&wire);
}

/*
 * The real thing: a Ping request packed by frame_encode, fed back one byte at
 * a time, unpacked with the generated code.
 */
static void test_encode_round_trip_ping(void **state)
{
    (void)state;
    Carrel__Ping ping = CARREL__PING__INIT;
    ping.payload = "hello from the desk";
    ping.has_push_event = 1;
    ping.push_event = 1;
    Carrel__Request req = CARREL__REQUEST__INIT;
    req.has_id = 1;
    req.id = 0x1122334455667788ull;
    req.request_key = "6f1c1d2e-0000-4000-8000-000000000001";
    req.body_case = CARREL__REQUEST__BODY_PING;
    req.ping = &ping;

    struct buf out = BUF_INIT;
    /* Something already queued: frame_encode appends, it does not overwrite. */
    assert_int_equal(buf_append(&out, "XY", 2), 0);
    assert_int_equal(frame_encode(&out, &req.base), 0);
    size_t packed = carrel__request__get_packed_size(&req);
    assert_true(packed > 0);
    assert_int_equal(out.len, 2 + FRAME_HEADER_BYTES + packed);
    assert_memory_equal(out.data, "XY", 2);
    assert_int_equal(frame_get_header(out.data + 2), packed);

    frame_decoder_t dec;
    frame_decoder_init(&dec, 1024);
    const uint8_t *payload = NULL;
    size_t len = 0;
    for (size_t i = 2; i < out.len; i++) {
        feed(&dec, out.data + i, 1);
        frame_result_t r = frame_decoder_next(&dec, &payload, &len);
        assert_int_equal(r, i + 1 < out.len ? FRAME_NEED_MORE : FRAME_READY);
    }
    assert_int_equal(len, packed);

    Carrel__Request *back = carrel__request__unpack(NULL, len, payload);
    assert_non_null(back);
    assert_true(back->has_id);
    assert_int_equal(back->id, 0x1122334455667788ull);
    assert_string_equal(back->request_key, req.request_key);
    assert_int_equal(back->body_case, CARREL__REQUEST__BODY_PING);
    assert_non_null(back->ping);
    assert_string_equal(back->ping->payload, "hello from the desk");
    assert_true(back->ping->has_push_event);
    assert_int_equal(back->ping->push_event, 1);
    carrel__request__free_unpacked(back, NULL);
    frame_decoder_free(&dec);
    buf_free(&out);
}

/* Two encoded messages back to back, one of them empty on the wire. */
static void test_encode_two_messages(void **state)
{
    (void)state;
    Carrel__Request empty = CARREL__REQUEST__INIT;
    Carrel__Logout logout = CARREL__LOGOUT__INIT;
    Carrel__Request bye = CARREL__REQUEST__INIT;
    bye.has_id = 1;
    bye.id = 7;
    bye.body_case = CARREL__REQUEST__BODY_LOGOUT;
    bye.logout = &logout;

    struct buf out = BUF_INIT;
    assert_int_equal(frame_encode(&out, &empty.base), 0);
    assert_int_equal(out.len, FRAME_HEADER_BYTES);
    assert_int_equal(frame_get_header(out.data), 0);
    assert_int_equal(frame_encode(&out, &bye.base), 0);

    frame_decoder_t dec;
    frame_decoder_init(&dec, 64);
    feed(&dec, out.data, out.len);
    const uint8_t *payload;
    size_t len;
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
    assert_int_equal(len, 0);
    Carrel__Request *first = carrel__request__unpack(NULL, len, payload);
    assert_non_null(first);
    assert_false(first->has_id);
    assert_int_equal(first->body_case, CARREL__REQUEST__BODY__NOT_SET);
    carrel__request__free_unpacked(first, NULL);

    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
    Carrel__Request *second = carrel__request__unpack(NULL, len, payload);
    assert_non_null(second);
    assert_int_equal(second->id, 7);
    assert_int_equal(second->body_case, CARREL__REQUEST__BODY_LOGOUT);
    carrel__request__free_unpacked(second, NULL);
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_NEED_MORE);
    frame_decoder_free(&dec);
    buf_free(&out);
}

/* After free the decoder is empty and may be used again. */
static void test_free_then_reuse(void **state)
{
    (void)state;
    frame_decoder_t dec;
    frame_decoder_init(&dec, 32);
    feed(&dec, "\0\0\0\5ab", 6);
    frame_decoder_free(&dec);
    assert_int_equal(frame_decoder_buffered(&dec), 0);
    feed(&dec, "\0\0\0\2ok", 6);
    const uint8_t *payload;
    size_t len;
    assert_int_equal(frame_decoder_next(&dec, &payload, &len), FRAME_READY);
    assert_int_equal(len, 2);
    assert_memory_equal(payload, "ok", 2);
    frame_decoder_free(&dec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_bytes_are_big_endian),
        cmocka_unit_test(test_empty_decoder_needs_more),
        cmocka_unit_test(test_partial_header),
        cmocka_unit_test(test_split_at_every_boundary),
        cmocka_unit_test(test_three_frames_split_anywhere),
        cmocka_unit_test(test_body_split),
        cmocka_unit_test(test_concatenated_frames_in_one_feed),
        cmocka_unit_test(test_zero_length_frame),
        cmocka_unit_test(test_frame_exactly_at_max_is_accepted),
        cmocka_unit_test(test_frame_over_max_refused_from_header),
        cmocka_unit_test(test_huge_declared_length),
        cmocka_unit_test(test_too_large_after_good_frames),
        cmocka_unit_test(test_set_max_lowers_and_raises),
        cmocka_unit_test(test_garbage_never_crashes),
        cmocka_unit_test(test_random_valid_stream),
        cmocka_unit_test(test_encode_round_trip_ping),
        cmocka_unit_test(test_encode_two_messages),
        cmocka_unit_test(test_free_then_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
