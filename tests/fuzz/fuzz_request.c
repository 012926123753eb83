/*
 * libFuzzer target: the path every request frame takes in the daemon before
 * a handler runs. The input is three bytes of facts about the connection,
 * then the bytes as they arrive on it:
 *   byte 0: bit 0 Hello done, bit 1 logged in, bits 2-4 role (mod 6),
 *           bits 5-7 the session's branch
 *   byte 1: requests already in flight (max_inflight is 64, the default)
 *   byte 2: the size of the pieces the stream arrives in (0: all at once)
 *   the rest: the stream of frames.
 * Each frame goes, as in conn.c and request.c, through the frame decoder (the
 * login cap before login, the larger one after), protobuf-c's unpack with the
 * request arena, the id check and admission_decide(), wirecheck included.
 * A connection that would be closed (too large, undecodable, no Hello) ends
 * the input. Checked on the way:
 *   - the decoder hands out exactly the frames that a direct reading of the
 *     stream finds, whatever the size of the pieces;
 *   - a frame unpack accepts is never malformed to wirecheck (the schema
 *     bounds the nesting);
 *   - when wirecheck passes a frame, every string a handler sees is clean text;
 *   - a decision holds what its refusal (or OK) claims, by the rules of
 *     docs/ARCHITECTURE.md ("request.c");
 *   - json_message() of the request is valid JSON and clean text (common/json.c);
 *     so is that of the same bytes read as a Response, as the client's `--json`
 *     prints what the server sends (more field types than requests have).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admission.h"
#include "arena.h"
#include "frame.h"
#include "json.h"
#include "text.h"
#include "util.h"

#define LOGIN_CAP     16384u   /* max_frame_bytes_login's default */
#define LOGGED_IN_CAP 1048576u /* max_frame_bytes's default */
#define MAX_INFLIGHT  64

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* ---- a strict JSON reader, for what json.c writes (no whitespace) ---- */

typedef struct jv {
    const char *p, *end;
    int depth;
} jv_t;

static bool jv_value(jv_t *v);

static bool jv_peek(const jv_t *v, char c)
{
    return v->p < v->end && *v->p == c;
}

static bool jv_literal(jv_t *v, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(v->end - v->p) < n || memcmp(v->p, word, n) != 0)
        return false;
    v->p += n;
    return true;
}

static bool jv_string(jv_t *v)
{
    if (!jv_peek(v, '"'))
        return false;
    v->p++;
    while (v->p < v->end) {
        unsigned char c = (unsigned char)*v->p++;
        if (c == '"')
            return true;
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue;
        if (v->p >= v->end)
            return false;
        char e = *v->p++;
        if (e == 'u') {
            for (int i = 0; i < 4; i++, v->p++)
                if (v->p >= v->end || !strchr("0123456789abcdefABCDEF", *v->p) || *v->p == '\0')
                    return false;
        } else if (e == '\0' || !strchr("\"\\/bfnrt", e)) {
            return false;
        }
    }
    return false;
}

static bool jv_digits(jv_t *v)
{
    const char *start = v->p;
    while (v->p < v->end && *v->p >= '0' && *v->p <= '9')
        v->p++;
    return v->p > start;
}

static bool jv_number(jv_t *v)
{
    if (jv_peek(v, '-'))
        v->p++;
    if (jv_peek(v, '0'))
        v->p++;
    else if (!jv_digits(v))
        return false;
    if (jv_peek(v, '.')) {
        v->p++;
        if (!jv_digits(v))
            return false;
    }
    if (jv_peek(v, 'e') || jv_peek(v, 'E')) {
        v->p++;
        if (jv_peek(v, '+') || jv_peek(v, '-'))
            v->p++;
        if (!jv_digits(v))
            return false;
    }
    return true;
}

/* '{' [string ':' value (',' string ':' value)*] '}', or the same for arrays without keys. */
static bool jv_container(jv_t *v, char close, bool keys)
{
    v->p++;
    if (jv_peek(v, close)) {
        v->p++;
        return true;
    }
    for (;;) {
        if (keys && !(jv_string(v) && jv_literal(v, ":")))
            return false;
        if (!jv_value(v))
            return false;
        if (jv_peek(v, close)) {
            v->p++;
            return true;
        }
        if (!jv_literal(v, ","))
            return false;
    }
}

static bool jv_value(jv_t *v)
{
    if (v->p >= v->end || ++v->depth > 100)
        return false;
    bool ok;
    switch (*v->p) {
    case '{':
        ok = jv_container(v, '}', true);
        break;
    case '[':
        ok = jv_container(v, ']', false);
        break;
    case '"':
        ok = jv_string(v);
        break;
    case 't':
        ok = jv_literal(v, "true");
        break;
    case 'f':
        ok = jv_literal(v, "false");
        break;
    case 'n':
        ok = jv_literal(v, "null");
        break;
    default:
        ok = jv_number(v);
        break;
    }
    v->depth--;
    return ok;
}

static void check_json(const ProtobufCMessage *msg)
{
    json_t j;
    json_init(&j);
    json_message(&j, msg);
    jv_t v = {(const char *)j.out.data, (const char *)j.out.data + j.out.len, 0};
    CHECK(jv_value(&v) && v.p == v.end);
    CHECK(text_check(j.out.data, j.out.len, NULL, NULL) == TEXT_OK);
    json_free(&j);
}

/* ---- what a handler sees ---- */

/* Every string in msg, at any depth, is clean text (what wirecheck promised). */
static void check_strings(const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const char *base = (const char *)msg;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue; /* another member of the oneof shares the memory */
        size_t n = 1;
        void *const *values = (void *const *)(base + f->offset);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(base + f->quantifier_offset);
            values = *(void *const *const *)(base + f->offset);
        }
        for (size_t k = 0; k < n; k++) {
            if (values[k] == NULL)
                continue;
            if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                check_strings(values[k]);
            } else {
                const char *s = values[k];
                CHECK(text_check((const uint8_t *)s, strlen(s), NULL, NULL) == TEXT_OK);
            }
        }
    }
}

static bool has_key(const Carrel__Request *m)
{
    return m->request_key != NULL && m->request_key[0] != '\0';
}

/* The decision holds what it claims (ARCHITECTURE.md, "request.c", step 3). */
static void check_decision(const Carrel__Request *m, const uint8_t *payload, size_t len,
                           const admission_facts_t *f, const admission_t *a, admission_refusal_t r)
{
    CHECK(r == a->refusal);
    bool hello = m->body_case == CARREL__REQUEST__BODY_HELLO;
    if (r == ADMISSION_HELLO_REQUIRED) {
        CHECK(!f->hello_done && !hello && a->route == NULL);
        return;
    }
    CHECK(f->hello_done || hello);
    wirecheck_error_t err;
    wirecheck_result_t w = wirecheck_strings(&carrel__request__descriptor, payload, len, &err);
    CHECK(w != WIRECHECK_MALFORMED); /* unpack took these bytes */
    if (r == ADMISSION_TEXT) {
        CHECK(w == WIRECHECK_TEXT && a->route == NULL);
        CHECK(a->text.field == err.field && a->text.problem == err.problem);
        CHECK(a->text.field->type == PROTOBUF_C_TYPE_STRING && a->text.problem != TEXT_OK);
        /* request.c names a bad request key "request_key" by depth and number. */
        if (a->text.depth == 0 && a->text.field->id == 2)
            CHECK(strcmp(a->text.field->name, "request_key") == 0);
        return;
    }
    CHECK(w == WIRECHECK_OK);
    check_strings(&m->base);
    if (r == ADMISSION_UNKNOWN_REQUEST) {
        CHECK(a->route == NULL && dispatch_find(m->body_case) == NULL);
        return;
    }
    const route_t *route = a->route;
    CHECK(route != NULL && route->body == m->body_case && m->body_case != 0);
    CHECK(r != ADMISSION_UNDECODABLE);
    if (r == ADMISSION_INFLIGHT_LIMIT) {
        CHECK(f->inflight > f->max_inflight);
        return;
    }
    CHECK(f->inflight <= f->max_inflight);
    if (r == ADMISSION_LOGIN_REQUIRED) {
        CHECK(!f->authenticated && !(route->flags & ROUTE_BEFORE_LOGIN));
        return;
    }
    CHECK(f->authenticated || (route->flags & ROUTE_BEFORE_LOGIN));
    perm_result_t pr =
        route->perm >= 0 ? perm_check(&f->subject, (perm_action_t)route->perm, 0) : PERM_OK;
    if (r == ADMISSION_ROLE) {
        CHECK(pr != PERM_OK && a->perm == pr);
        return;
    }
    CHECK(pr == PERM_OK);
    if (r == ADMISSION_KEY_MISSING) {
        CHECK((route->flags & ROUTE_KEYED) && !has_key(m));
        return;
    }
    CHECK(!(route->flags & ROUTE_KEYED) || has_key(m));
    if (r == ADMISSION_KEY_NOT_UUID) {
        CHECK((route->flags & (ROUTE_MUTATING | ROUTE_KEYED)) && !util_is_uuid(m->request_key));
        return;
    }
    CHECK(r == ADMISSION_OK);
    if ((route->flags & (ROUTE_MUTATING | ROUTE_KEYED)) && has_key(m))
        CHECK(util_is_uuid(m->request_key));
}

/* One frame, as request_start() takes it. False when the connection would close. */
static bool one_request(const uint8_t *payload, size_t len, admission_facts_t *facts)
{
    arena_t a;
    arena_init(&a);
    Carrel__Response *resp = carrel__response__unpack(&a.pb, len, payload);
    if (resp != NULL)
        check_json(&resp->base);
    Carrel__Request *m = carrel__request__unpack(&a.pb, len, payload);
    if (m == NULL) {
        arena_free(&a);
        return false; /* undecodable: answered, then closed */
    }
    check_json(&m->base);
    bool open = true;
    if (m->has_id && m->id != 0) {
        admission_t adm;
        admission_refusal_t r = admission_decide(m, payload, len, facts, &adm);
        check_decision(m, payload, len, facts, &adm, r);
        if (r == ADMISSION_HELLO_REQUIRED || r == ADMISSION_UNDECODABLE)
            open = false;
        else if (r == ADMISSION_OK && m->body_case == CARREL__REQUEST__BODY_HELLO)
            facts->hello_done = true; /* what handle_hello does with a version it speaks */
    }
    arena_free(&a);
    return open;
}

/* ---- the stream ---- */

typedef struct expected_frame {
    size_t offset, len; /* of the payload in the stream */
} expected_frame_t;

/* A direct reading of the stream: the frames in it, up to one too large. */
static size_t read_directly(const uint8_t *s, size_t n, size_t cap, expected_frame_t *out,
                            size_t max_out, bool *too_large, size_t *rest)
{
    size_t pos = 0, count = 0;
    *too_large = false;
    while (n - pos >= FRAME_HEADER_BYTES && count < max_out) {
        uint32_t len = frame_get_header(s + pos);
        if (len > cap) {
            *too_large = true;
            break;
        }
        if (n - pos - FRAME_HEADER_BYTES < len)
            break;
        out[count].offset = pos + FRAME_HEADER_BYTES;
        out[count].len = len;
        count++;
        pos += FRAME_HEADER_BYTES + len;
    }
    *rest = n - pos;
    return count;
}

#define MAX_FRAMES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    admission_facts_t facts = {
        .hello_done = data[0] & 1,
        .authenticated = (data[0] >> 1) & 1,
        .subject = {.role = (role_t)(((data[0] >> 2) & 7) % 6), .branch_id = data[0] >> 5},
        .inflight = (long)data[1] + 1,
        .max_inflight = MAX_INFLIGHT,
    };
    size_t piece = data[2];
    const uint8_t *stream = data + 3;
    size_t n = size - 3;
    size_t cap = facts.authenticated ? LOGGED_IN_CAP : LOGIN_CAP;

    static expected_frame_t want[MAX_FRAMES];
    bool want_too_large;
    size_t want_rest;
    size_t nwant = read_directly(stream, n, cap, want, MAX_FRAMES, &want_too_large, &want_rest);

    frame_decoder_t dec;
    frame_decoder_init(&dec, cap);
    size_t got = 0, fed = 0;
    bool open = true, too_large = false;
    while (open && !too_large && fed < n && got < MAX_FRAMES) {
        size_t k = piece == 0 || piece > n - fed ? n - fed : piece;
        CHECK(frame_decoder_feed(&dec, stream + fed, k) == 0);
        fed += k;
        for (;;) {
            const uint8_t *payload;
            size_t len;
            frame_result_t fr = frame_decoder_next(&dec, &payload, &len);
            if (fr == FRAME_NEED_MORE)
                break;
            if (fr == FRAME_TOO_LARGE) {
                CHECK(want_too_large && got == nwant && dec.declared > cap);
                too_large = true;
                break;
            }
            CHECK(got < nwant && len == want[got].len && len <= cap);
            CHECK(len == 0 || memcmp(payload, stream + want[got].offset, len) == 0);
            got++;
            if (!one_request(payload, len, &facts)) {
                open = false;
                break;
            }
            if (got == MAX_FRAMES)
                break;
        }
    }
    /* Everything arrived and the connection stayed open: nothing lost, nothing invented. */
    if (open && !too_large && got < MAX_FRAMES) {
        CHECK(got == nwant && !want_too_large);
        CHECK(frame_decoder_buffered(&dec) == want_rest);
    }
    frame_decoder_free(&dec);
    return 0;
}
