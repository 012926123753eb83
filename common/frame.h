/*
 * frame: the wire framing. A frame is a 4-byte big-endian payload length
 * followed by that many bytes of one serialized protobuf message.
 *
 * The decoder never trusts the length it reads: a declared length over the
 * current limit is reported as FRAME_TOO_LARGE before any payload is buffered.
 */
#ifndef CARREL_FRAME_H
#define CARREL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "buf.h"
#include "check.h"

#define FRAME_HEADER_BYTES 4

typedef enum {
    FRAME_NEED_MORE = 0, /* no complete frame buffered yet */
    FRAME_READY,         /* payload and len describe one complete frame */
    FRAME_TOO_LARGE,     /* the declared length exceeds the limit */
} frame_result_t;

typedef struct frame_decoder {
    struct buf in;
    size_t start;      /* offset of the first unconsumed byte in `in` */
    size_t max_frame;  /* largest payload accepted */
    uint32_t declared; /* the length of the frame that was too large */
} frame_decoder_t;

void frame_decoder_init(frame_decoder_t *dec, size_t max_frame);
void frame_decoder_set_max(frame_decoder_t *dec, size_t max_frame);
/* Buffer received bytes. Returns 0, or -1 when out of memory. */
__attribute__((warn_unused_result)) int frame_decoder_feed(frame_decoder_t *dec, const void *data,
                                                           size_t len);
/*
 * Take the next complete frame. The payload points into the decoder and stays
 * valid until the next call to any frame_decoder function.
 */
CARREL_MUST_USE frame_result_t frame_decoder_next(frame_decoder_t *dec, const uint8_t **payload,
                                                  size_t *len);
/* Bytes buffered but not yet returned as frames. */
size_t frame_decoder_buffered(const frame_decoder_t *dec);
void frame_decoder_free(frame_decoder_t *dec);

/* Append one frame holding `msg` to `out`. Returns 0, or -1 when out of memory. */
__attribute__((warn_unused_result)) int frame_encode(struct buf *out, const ProtobufCMessage *msg);

void frame_put_header(uint8_t header[FRAME_HEADER_BYTES], uint32_t len);
uint32_t frame_get_header(const uint8_t header[FRAME_HEADER_BYTES]);

#endif
