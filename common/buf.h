/*
 * buf: a growable byte buffer. The owner of a struct buf owns its data and
 * releases it with buf_free().
 */
#ifndef CARREL_BUF_H
#define CARREL_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Make room for at least `extra` more bytes; returns 0, or -1 when out of memory. */
__attribute__((warn_unused_result)) int buf_reserve(struct buf *b, size_t extra);
__attribute__((warn_unused_result)) int buf_append(struct buf *b, const void *data, size_t len);
__attribute__((warn_unused_result)) int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes, moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
