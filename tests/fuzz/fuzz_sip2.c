/*
 * libFuzzer target: the SIP2 gateway's input path on any bytes. The first
 * byte picks the line limit, the second how reads cut the stream; the rest
 * is what a terminal sent.
 *
 * Line decoder (common/linedec.c): the stream fed whole and fed in pieces
 * gives the same lines and the same overlong reports; no line is empty,
 * longer than the limit, holds a CR or starts or ends with an LF; the buffer
 * never holds much more than one line.
 *
 * Codec (common/sip2.c), on each line: sip2_parse stays inside the line, a
 * checksum it accepts is right, field values hold no pipe; a message it
 * accepts, rebuilt with the builder (some fields hidden), parses again with
 * the same code, fixed part and fields (values as the builder cleans them),
 * and its checksum. A date it accepts prints back the same (TZ=UTC).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "linedec.h"
#include "sip2.h"
#include "text.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define MAX_EVENTS 4096

typedef struct {
    uint32_t len;  /* a line's length, or an overlong line's reported bytes */
    uint32_t hash; /* FNV-1a of the line; 0 for an overlong report */
    bool too_long;
} event_t;

typedef struct {
    event_t ev[MAX_EVENTS];
    size_t n;
} events_t;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static void check_message(const char *line, size_t len);

/* Take every line the decoder has, checking each; parse when asked to. */
static void drain(line_decoder_t *dec, events_t *evs, bool parse)
{
    const char *line;
    size_t len;
    line_result_t r;
    while ((r = line_decoder_next(dec, &line, &len)) != LINE_NEED_MORE) {
        CHECK(evs->n < MAX_EVENTS);
        event_t *e = &evs->ev[evs->n++];
        if (r == LINE_TOO_LONG) {
            CHECK(dec->too_long > dec->max_line);
            *e = (event_t){dec->too_long, 0, true};
            continue;
        }
        CHECK(r == LINE_READY);
        CHECK(len > 0 && len <= dec->max_line);
        CHECK(memchr(line, '\r', len) == NULL);
        CHECK(line[0] != '\n' && line[len - 1] != '\n');
        *e = (event_t){(uint32_t)len, fnv1a(line, len), false};
        if (parse)
            check_message(line, len);
    }
    CHECK(line_decoder_buffered(dec) <= dec->max_line + 16);
}

static void check_fields_inside(const sip2_msg_t *m, const char *line, size_t len)
{
    CHECK(m->nfields <= SIP2_MAX_FIELDS);
    for (size_t i = 0; i < m->nfields; i++) {
        const sip2_field_t *f = &m->fields[i];
        CHECK(f->value >= line && f->value + f->len <= line + len);
        CHECK(memchr(f->value, '|', f->len) == NULL);
        CHECK(f->id[0] >= 'A' && f->id[0] <= 'Z' && f->id[2] == '\0');
    }
}

/* A value as the builder writes it: no pipes, no controls, UTF-8, <= 255 bytes. */
static void check_clean(const char *v, size_t n)
{
    CHECK(n <= SIP2_MAX_VALUE);
    CHECK(memchr(v, '|', n) == NULL);
    CHECK(text_check((const uint8_t *)v, n, NULL, NULL) == TEXT_OK);
    CHECK(memchr(v, '\t', n) == NULL && memchr(v, '\n', n) == NULL); /* dropped too */
}

static void check_rebuild(const sip2_msg_t *m)
{
    char fixed[SIP2_MAX_MESSAGE + 1];
    memcpy(fixed, m->fixed, m->fixed_len);
    fixed[m->fixed_len] = '\0';
    if (strlen(fixed) != m->fixed_len)
        return; /* a NUL in the fixed part: the builder takes C strings */
    sip2_out_t o;
    sip2_out_begin(&o, m->code, "AF,AG");
    sip2_out_fixed(&o, fixed);
    if (o.overflow)
        return;
    size_t kept = 0;
    for (size_t i = 0; i < m->nfields; i++) {
        char value[SIP2_MAX_MESSAGE + 1];
        memcpy(value, m->fields[i].value, m->fields[i].len);
        value[m->fields[i].len] = '\0';
        size_t before = o.len;
        sip2_out_field(&o, m->fields[i].id, value);
        if (o.len > before)
            kept++;
    }
    int seq = m->seq;
    sip2_out_end(&o, seq);
    CHECK(o.len >= 1 && o.len - 1 <= SIP2_MAX_MESSAGE && o.buf[o.len - 1] == '\r');
    sip2_msg_t again;
    CHECK(sip2_parse(o.buf, o.len - 1, &again) == SIP2_OK);
    CHECK(again.checksummed && again.known);
    CHECK(again.seq == (seq < 0 ? 0 : seq));
    CHECK(strcmp(again.code, m->code) == 0);
    CHECK(again.fixed_len == m->fixed_len && memcmp(again.fixed, m->fixed, m->fixed_len) == 0);
    CHECK(again.nfields == kept);
    for (size_t i = 0; i < again.nfields; i++) {
        CHECK(strcmp(again.fields[i].id, "AF") != 0 && strcmp(again.fields[i].id, "AG") != 0);
        check_clean(again.fields[i].value, again.fields[i].len);
    }
    if (o.overflow)
        return; /* which fields went is the builder's business; they went whole */
    size_t j = 0;
    for (size_t i = 0; i < m->nfields; i++) {
        const sip2_field_t *f = &m->fields[i];
        if (strcmp(f->id, "AF") == 0 || strcmp(f->id, "AG") == 0)
            continue;
        CHECK(j < again.nfields);
        const sip2_field_t *g = &again.fields[j++];
        CHECK(strcmp(g->id, f->id) == 0);
        /* A value that was clean already comes back unchanged. */
        if (f->len <= SIP2_MAX_VALUE && memchr(f->value, '|', f->len) == NULL &&
            memchr(f->value, '\t', f->len) == NULL && memchr(f->value, '\n', f->len) == NULL &&
            text_check((const uint8_t *)f->value, f->len, NULL, NULL) == TEXT_OK)
            CHECK(g->len == f->len && memcmp(g->value, f->value, f->len) == 0);
    }
    CHECK(j == again.nfields);
}

static void check_date(const char *s, size_t n)
{
    if (n < 18)
        return;
    time_t t;
    if (!sip2_parse_date(s, 18, &t))
        return;
    char d[19];
    sip2_date(d, t);
    CHECK(memcmp(d, s, 8) == 0 && memcmp(d + 12, s + 12, 6) == 0);
}

static void check_message(const char *line, size_t len)
{
    sip2_msg_t m;
    sip2_status_t st = sip2_parse(line, len, &m);
    CHECK(st == SIP2_OK || st == SIP2_EMPTY || st == SIP2_BAD_CHECKSUM || st == SIP2_MALFORMED);
    if (st != SIP2_OK)
        return;
    CHECK(m.code[0] >= '0' && m.code[0] <= '9' && m.code[1] >= '0' && m.code[1] <= '9');
    CHECK(m.fixed == line + 2 && 2 + m.fixed_len <= len);
    CHECK(m.seq >= -1 && m.seq <= 9);
    if (m.checksummed) {
        unsigned want;
        char hex[5];
        memcpy(hex, line + len - 4, 4);
        hex[4] = '\0';
        CHECK(sscanf(hex, "%4x", &want) == 1);
        CHECK(sip2_checksum(line, len - 4) == want);
    }
    check_fields_inside(&m, line, len);
    char id[3] = {line[len - 1], 'A', '\0'};
    size_t flen;
    const char *v = sip2_field(&m, id, &flen);
    CHECK(v == NULL || (v >= line && v + flen <= line + len));
    char small[7];
    if (sip2_field_copy(&m, "AA", small, sizeof(small)))
        CHECK(strlen(small) < sizeof(small));
    if (m.known) {
        check_rebuild(&m);
        check_date(m.fixed, m.fixed_len);
        if (m.fixed_len > 4)
            check_date(m.fixed + 3, m.fixed_len - 3); /* 23, 63 */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_line = data[0] == 0 ? SIP2_MAX_MESSAGE : (size_t)data[0] * 4;
    size_t step = (size_t)data[1] % 17 + 1;
    const char *stream = (const char *)data + 2;
    size_t n = size - 2;

    /* The whole stream at once, each line parsed. */
    static events_t whole, pieces;
    whole.n = pieces.n = 0;
    line_decoder_t dec;
    line_decoder_init(&dec, max_line, '\r');
    CHECK(line_decoder_feed(&dec, stream, n) == 0);
    drain(&dec, &whole, true);
    line_decoder_free(&dec);

    /* The same stream in pieces of 1..17 bytes (varying), the same events. */
    line_decoder_init(&dec, max_line, '\r');
    for (size_t at = 0, k = 0; at < n; k++) {
        size_t len = (step + k * 7) % 17 + 1;
        if (len > n - at)
            len = n - at;
        CHECK(line_decoder_feed(&dec, stream + at, len) == 0);
        drain(&dec, &pieces, false);
        at += len;
    }
    line_decoder_free(&dec);
    CHECK(whole.n == pieces.n);
    for (size_t i = 0; i < whole.n; i++)
        CHECK(whole.ev[i].len == pieces.ev[i].len && whole.ev[i].hash == pieces.ev[i].hash &&
              whole.ev[i].too_long == pieces.ev[i].too_long);

    /* The whole input as one message, whatever it holds. */
    char *copy = malloc(n ? n : 1);
    CHECK(copy != NULL);
    memcpy(copy, stream, n);
    check_message(copy, n);
    free(copy);
    return 0;
}
