#include "frame.h"

#include <string.h>

void frame_put_header(uint8_t h[FRAME_HEADER_BYTES], uint32_t len)
{
    h[0] = (uint8_t)(len >> 24);
    h[1] = (uint8_t)(len >> 16);
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
}

uint32_t frame_get_header(const uint8_t h[FRAME_HEADER_BYTES])
{
    return ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) | ((uint32_t)h[2] << 8) | h[3];
}

void frame_decoder_init(frame_decoder_t *dec, size_t max_frame)
{
    memset(dec, 0, sizeof(*dec));
    dec->max_frame = max_frame;
}

void frame_decoder_set_max(frame_decoder_t *dec, size_t max_frame)
{
    dec->max_frame = max_frame;
}

size_t frame_decoder_buffered(const frame_decoder_t *dec)
{
    return dec->in.len - dec->start;
}

/*
 * Compact lazily: consumed frames are only moved out of the way when new data
 * arrives, so a burst of small frames costs one memmove, not one per frame.
 */
int frame_decoder_feed(frame_decoder_t *dec, const void *data, size_t len)
{
    if (dec->start > 0) {
        buf_consume(&dec->in, dec->start);
        dec->start = 0;
    }
    return buf_append(&dec->in, data, len);
}

frame_result_t frame_decoder_next(frame_decoder_t *dec, const uint8_t **payload, size_t *len)
{
    size_t avail = dec->in.len - dec->start;
    if (avail < FRAME_HEADER_BYTES)
        return FRAME_NEED_MORE;
    const uint8_t *p = dec->in.data + dec->start;
    uint32_t n = frame_get_header(p);
    if (n > dec->max_frame) {
        dec->declared = n;
        return FRAME_TOO_LARGE;
    }
    if (avail - FRAME_HEADER_BYTES < n)
        return FRAME_NEED_MORE;
    *payload = p + FRAME_HEADER_BYTES;
    *len = n;
    dec->start += FRAME_HEADER_BYTES + n;
    if (dec->start == dec->in.len) {
        /* Everything consumed: reset cheaply so the buffer does not creep. */
        dec->in.len = 0;
        dec->start = 0;
    }
    return FRAME_READY;
}

void frame_decoder_free(frame_decoder_t *dec)
{
    buf_free(&dec->in);
    dec->start = 0;
}

int frame_encode(struct buf *out, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > UINT32_MAX)
        return -1;
    if (buf_reserve(out, FRAME_HEADER_BYTES + n) != 0)
        return -1;
    frame_put_header(out->data + out->len, (uint32_t)n);
    protobuf_c_message_pack(msg, out->data + out->len + FRAME_HEADER_BYTES);
    out->len += FRAME_HEADER_BYTES + n;
    return 0;
}
