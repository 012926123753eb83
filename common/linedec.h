/*
 * linedec: cuts a byte stream into lines, for line-mode channels (SIP2).
 *
 * A line ends at the terminator (SIP2: '\r'). LFs around it are dropped
 * (terminals that send CR LF, or LF CR), and a line left empty is skipped.
 * A line longer than the limit is never buffered whole: its bytes are
 * dropped as they come, up to its terminator, and then reported once as
 * LINE_TOO_LONG with the number of bytes it had. Bytes consumed are
 * zeroed before the buffer is reused or freed (SIP2 lines carry PINs and
 * passwords). Pure, so it is unit-tested
 * and fuzzed on its own (tests/unit/test_sip2.c, tests/fuzz/fuzz_sip2.c).
 */
#ifndef CARREL_LINEDEC_H
#define CARREL_LINEDEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "check.h"

typedef enum {
    LINE_NEED_MORE = 0, /* no complete line buffered yet */
    LINE_READY,         /* line and len describe one complete line */
    LINE_TOO_LONG,      /* a line over the limit was dropped; see too_long */
} line_result_t;

typedef struct line_decoder {
    struct buf in;
    size_t start;    /* offset of the first unconsumed byte in `in` */
    size_t scanned;  /* bytes after start already searched for the terminator */
    size_t max_line; /* longest line accepted, without terminator and LFs */
    char terminator;
    bool skipping;     /* inside an overlong line, dropping up to its terminator */
    uint64_t dropped;  /* bytes of that line dropped so far */
    uint32_t too_long; /* length of the last overlong line (capped at UINT32_MAX) */
    size_t given_off;  /* the line last handed out (with its terminator), */
    size_t given_len;  /* wiped at the next call: lines carry PINs and passwords */
} line_decoder_t;

void line_decoder_init(line_decoder_t *dec, size_t max_line, char terminator);
void line_decoder_set_max(line_decoder_t *dec, size_t max_line);
/* Buffer received bytes. Returns 0, or -1 when out of memory. */
__attribute__((warn_unused_result)) int line_decoder_feed(line_decoder_t *dec, const void *data,
                                                          size_t len);
/*
 * Take the next complete line (not NUL-terminated). It points into the
 * decoder and stays valid until the next call to any line_decoder function.
 */
CARREL_MUST_USE line_result_t line_decoder_next(line_decoder_t *dec, const char **line,
                                                size_t *len);
/* Bytes buffered but not yet returned as lines. */
size_t line_decoder_buffered(const line_decoder_t *dec);
void line_decoder_free(line_decoder_t *dec);

#endif
