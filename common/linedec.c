#include "linedec.h"

#include <string.h>

/* Trailing LFs a line may carry beyond the limit before it counts as overlong:
 * enough for LF CR senders, too few to let a peer grow the buffer. */
#define LINE_LF_SLACK 16

void line_decoder_init(line_decoder_t *dec, size_t max_line, char terminator)
{
    memset(dec, 0, sizeof(*dec));
    dec->max_line = max_line;
    dec->terminator = terminator;
}

void line_decoder_set_max(line_decoder_t *dec, size_t max_line)
{
    dec->max_line = max_line;
}

size_t line_decoder_buffered(const line_decoder_t *dec)
{
    return dec->in.len - dec->start;
}

static void line_decoder_add_dropped(line_decoder_t *dec, size_t n)
{
    dec->dropped = dec->dropped + n < dec->dropped ? UINT64_MAX : dec->dropped + n;
}

/* Zero the line handed out last: its caller is done with it by now. */
static void line_decoder_wipe_given(line_decoder_t *dec)
{
    if (dec->given_len > 0)
        memset(dec->in.data + dec->given_off, 0, dec->given_len);
    dec->given_len = 0;
}

/* Zero n bytes at p, consumed without being handed out (overlong lines). */
static void line_wipe(const char *p, size_t n)
{
    memset((char *)p, 0, n);
}

/*
 * Compact lazily, as the frame decoder does. While an overlong line is being
 * dropped, bytes before its terminator are never buffered at all.
 */
int line_decoder_feed(line_decoder_t *dec, const void *data, size_t len)
{
    line_decoder_wipe_given(dec);
    if (dec->start > 0) {
        /* The move leaves a stale copy of its tail behind the new end. */
        size_t old_len = dec->in.len;
        memset(dec->in.data, 0, dec->start);
        buf_consume(&dec->in, dec->start);
        memset(dec->in.data + dec->in.len, 0, old_len - dec->in.len);
        dec->start = 0;
    }
    if (dec->skipping && dec->in.len == 0 && len > 0) {
        const char *t = memchr(data, dec->terminator, len);
        size_t skip = t ? (size_t)(t - (const char *)data) : len;
        line_decoder_add_dropped(dec, skip);
        data = (const char *)data + skip;
        len -= skip;
    }
    return len == 0 ? 0 : buf_append(&dec->in, data, len);
}

/* Consume n bytes (and the decoder's scan position with them). */
static void line_decoder_consume(line_decoder_t *dec, size_t n)
{
    dec->start += n;
    dec->scanned = 0;
    if (dec->start == dec->in.len) {
        /* Everything consumed: reset cheaply so the buffer does not creep. */
        dec->in.len = 0;
        dec->start = 0;
    }
}

static size_t line_strip_trailing_lfs(const char *p, size_t n, char terminator)
{
    while (n > 0 && p[n - 1] == '\n' && terminator != '\n')
        n--;
    return n;
}

static line_result_t line_report_too_long(line_decoder_t *dec, uint64_t bytes)
{
    dec->too_long = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
    dec->skipping = false;
    dec->dropped = 0;
    return LINE_TOO_LONG;
}

line_result_t line_decoder_next(line_decoder_t *dec, const char **line, size_t *len)
{
    line_decoder_wipe_given(dec);
    for (;;) {
        size_t avail = dec->in.len - dec->start;
        if (avail == 0)
            return LINE_NEED_MORE; /* (and in.data may be NULL) */
        const char *p = (const char *)dec->in.data + dec->start;
        /* LFs before a line belong to the previous terminator (CR LF). */
        if (!dec->skipping && dec->scanned == 0 && dec->terminator != '\n') {
            size_t lfs = 0;
            while (lfs < avail && p[lfs] == '\n')
                lfs++;
            if (lfs > 0) {
                line_decoder_consume(dec, lfs);
                continue;
            }
        }
        const char *t = memchr(p + dec->scanned, dec->terminator, avail - dec->scanned);
        if (t == NULL) {
            if (dec->skipping) {
                line_decoder_add_dropped(dec, avail);
                line_wipe(p, avail);
                line_decoder_consume(dec, avail);
                return LINE_NEED_MORE;
            }
            size_t n = line_strip_trailing_lfs(p, avail, dec->terminator);
            if (n > dec->max_line || avail > dec->max_line + LINE_LF_SLACK) {
                dec->skipping = true;
                dec->dropped = 0;
                line_decoder_add_dropped(dec, avail);
                line_wipe(p, avail);
                line_decoder_consume(dec, avail);
                return LINE_NEED_MORE;
            }
            dec->scanned = avail;
            return LINE_NEED_MORE;
        }
        size_t end = (size_t)(t - p);
        if (dec->skipping) {
            uint64_t total = dec->dropped + end;
            line_wipe(p, end + 1);
            line_decoder_consume(dec, end + 1);
            return line_report_too_long(dec, total < dec->dropped ? UINT64_MAX : total);
        }
        size_t n = line_strip_trailing_lfs(p, end, dec->terminator);
        size_t off = (size_t)(p - (const char *)dec->in.data);
        line_decoder_consume(dec, end + 1);
        /* The same test as for a line still arriving, so where the reads
         * happened to cut the stream never changes the outcome. */
        if (n > dec->max_line || end > dec->max_line + LINE_LF_SLACK) {
            line_wipe(p, end + 1);
            return line_report_too_long(dec, end);
        }
        if (n == 0)
            continue; /* an empty line (a lone CR, CR LF CR LF): nothing to hand over */
        dec->given_off = off;
        dec->given_len = end + 1;
        *line = p;
        *len = n;
        return LINE_READY;
    }
}

void line_decoder_free(line_decoder_t *dec)
{
    line_decoder_wipe_given(dec);
    if (dec->in.data != NULL)
        memset(dec->in.data, 0, dec->in.cap);
    buf_free(&dec->in);
    dec->start = 0;
    dec->scanned = 0;
}
