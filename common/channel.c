#include "channel.h"

#include <stdio.h>
#include <string.h>

/* Reads are consumed synchronously inside the read callback, so one buffer
 * per process is enough; every program using channels runs one loop thread. */
static char channel_read_buffer[64 * 1024];

static void channel_start_write(channel_t *ch);
static void channel_process_frames(channel_t *ch);
static void channel_pump_input(channel_t *ch);
static void channel_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b);

static void channel_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *out)
{
    (void)handle;
    (void)suggested;
    out->base = channel_read_buffer;
    out->len = sizeof(channel_read_buffer);
}

/*
 * Bring *output_total up to date with this channel's queued output, and
 * note when it stopped being empty. A closing channel counts for nothing:
 * its output will never be sent and goes with the handle.
 */
static void channel_count_output(channel_t *ch)
{
    size_t now = ch->closing ? 0 : channel_queued_output(ch);
    if (now > 0 && ch->output_counted == 0 && ch->tcp_ready)
        ch->output_since = uv_now(ch->tcp.loop);
    if (ch->output_total) {
        *ch->output_total -= ch->output_counted;
        *ch->output_total += now;
    }
    ch->output_counted = now;
}

static void channel_closed_cb(uv_handle_t *handle)
{
    channel_t *ch = handle->data;
    if (!ch->plain)
        tlsio_free(&ch->tls);
    frame_decoder_free(&ch->frames);
    line_decoder_free(&ch->line_input);
    buf_free(&ch->out_pending);
    buf_free(&ch->out_writing);
    if (ch->ops->on_close)
        ch->ops->on_close(ch, ch->close_reason);
}

void channel_close(channel_t *ch, const char *reason)
{
    if (ch->closing)
        return;
    ch->closing = true;
    channel_count_output(ch);
    if (reason != ch->close_reason)
        snprintf(ch->close_reason, sizeof(ch->close_reason), "%s", reason ? reason : "closed");
    if (ch->tcp_ready) {
        uv_read_stop((uv_stream_t *)&ch->tcp);
        uv_close((uv_handle_t *)&ch->tcp, channel_closed_cb);
    }
}

size_t channel_queued_output(const channel_t *ch)
{
    return ch->out_pending.len + ch->out_writing.len;
}

void channel_set_output_total(channel_t *ch, size_t *total)
{
    ch->output_total = total;
    ch->output_counted = 0;
    channel_count_output(ch);
}

uint64_t channel_output_age_ms(const channel_t *ch)
{
    if (ch->output_counted == 0 || !ch->tcp_ready)
        return 0;
    return uv_now(ch->tcp.loop) - ch->output_since;
}

static void channel_update_reading(channel_t *ch)
{
    if (ch->closing || ch->close_when_flushed)
        return;
    bool want = !ch->paused_by_backpressure && !ch->paused_by_owner;
    if (want)
        uv_read_start((uv_stream_t *)&ch->tcp, channel_alloc_cb, channel_read_cb);
    else
        uv_read_stop((uv_stream_t *)&ch->tcp);
}

static void channel_write_cb(uv_write_t *req, int status)
{
    channel_t *ch = req->data;
    ch->writing = false;
    /* Written: release the buffer rather than keep the largest reply's size. */
    buf_free(&ch->out_writing);
    if (ch->closing)
        return;
    channel_count_output(ch);
    if (status < 0) {
        char reason[128];
        snprintf(reason, sizeof(reason), "write failed: %s", uv_strerror(status));
        channel_close(ch, reason);
        return;
    }
    if (ch->out_pending.len > 0) {
        channel_start_write(ch);
        return;
    }
    buf_free(&ch->out_pending); /* idle: keep no output buffer */
    if (ch->close_when_flushed) {
        channel_close(ch, ch->close_reason);
        return;
    }
    if (ch->paused_by_backpressure && channel_queued_output(ch) <= ch->high_water / 2) {
        ch->paused_by_backpressure = false;
        channel_update_reading(ch);
        /* Line mode stopped delivering at the high water mark: hand over
         * what the decoder and the TLS engine still hold. */
        if (ch->lines && !ch->paused_by_owner && !ch->in_frames) {
            channel_process_frames(ch);
            if (!ch->closing && !ch->close_when_flushed && !ch->paused_by_owner &&
                !ch->paused_by_backpressure)
                channel_pump_input(ch);
        }
    }
}

static void channel_start_write(channel_t *ch)
{
    if (ch->writing || ch->closing || ch->out_pending.len == 0)
        return;
    /* Swap the buffers: the pending output becomes the write in flight. */
    struct buf tmp = ch->out_writing;
    ch->out_writing = ch->out_pending;
    ch->out_pending = tmp;
    ch->out_pending.len = 0;
    uv_buf_t b = uv_buf_init((char *)ch->out_writing.data, (unsigned)ch->out_writing.len);
    ch->write_req.data = ch;
    int rc = uv_write(&ch->write_req, (uv_stream_t *)&ch->tcp, &b, 1, channel_write_cb);
    if (rc < 0) {
        char reason[128];
        snprintf(reason, sizeof(reason), "write failed: %s", uv_strerror(rc));
        channel_close(ch, reason);
        return;
    }
    ch->writing = true;
}

/* Move ciphertext from the TLS engine to the socket (plain: out_pending has
 * the bytes already). */
static void channel_flush(channel_t *ch)
{
    if (ch->closing)
        return;
    size_t before = ch->output_counted;
    if (!ch->plain && tlsio_take_output(&ch->tls, &ch->out_pending) != 0) {
        channel_close(ch, "out of memory");
        return;
    }
    channel_start_write(ch);
    if (ch->closing)
        return;
    channel_count_output(ch);
    if (!ch->paused_by_backpressure && channel_queued_output(ch) > ch->high_water) {
        ch->paused_by_backpressure = true;
        channel_update_reading(ch);
    }
    if (ch->output_counted > before && ch->ops->on_output)
        ch->ops->on_output(ch); /* last: it may close this channel */
}

/* The input decoder of either mode. */
static int channel_input_feed(channel_t *ch, const void *data, size_t len)
{
    if (ch->lines)
        return line_decoder_feed(&ch->line_input, data, len);
    return frame_decoder_feed(&ch->frames, data, len);
}

static void channel_input_release(channel_t *ch)
{
    if (ch->lines) {
        if (line_decoder_buffered(&ch->line_input) == 0)
            line_decoder_free(&ch->line_input);
    } else if (frame_decoder_buffered(&ch->frames) == 0) {
        frame_decoder_free(&ch->frames);
    }
}

/*
 * Hand complete lines to the owner. An overlong line was dropped by the
 * decoder; the owner hears of it and the channel stays open (a SIP2 terminal
 * is told to resend, it is not cut off). Line owners answer synchronously,
 * so delivery stops while the output is over the high water mark: otherwise
 * one read of short lines from a peer that never reads would queue an answer
 * each, without bound. The rest waits in the decoder (reading has stopped)
 * until channel_write_cb sees the output drain.
 */
static void channel_process_lines(channel_t *ch)
{
    while (!ch->closing && !ch->close_when_flushed && !ch->paused_by_owner &&
           !ch->paused_by_backpressure) {
        const char *line;
        size_t len;
        line_result_t r = line_decoder_next(&ch->line_input, &line, &len);
        if (r == LINE_NEED_MORE)
            break;
        if (r == LINE_TOO_LONG) {
            if (ch->ops->on_frame_too_large)
                ch->ops->on_frame_too_large(ch, ch->line_input.too_long);
            continue;
        }
        ch->ops->on_frame(ch, (const uint8_t *)line, len);
    }
}

static void channel_process_frames(channel_t *ch)
{
    if (ch->in_frames)
        return;
    ch->in_frames = true;
    if (ch->lines) {
        channel_process_lines(ch);
        ch->in_frames = false;
        return;
    }
    while (!ch->closing && !ch->close_when_flushed && !ch->paused_by_owner) {
        const uint8_t *payload;
        size_t len;
        frame_result_t r = frame_decoder_next(&ch->frames, &payload, &len);
        if (r == FRAME_NEED_MORE)
            break;
        if (r == FRAME_TOO_LARGE) {
            if (ch->ops->on_frame_too_large)
                ch->ops->on_frame_too_large(ch, ch->frames.declared);
            if (!ch->closing)
                channel_close_after_flush(ch, "frame too large");
            break;
        }
        ch->ops->on_frame(ch, payload, len);
    }
    ch->in_frames = false;
}

/* Decrypt everything available and hand complete frames to the owner. */
static void channel_pump_input(channel_t *ch)
{
    if (ch->plain) {
        /* The read callback fed the decoder; nothing waits in a TLS engine. */
        channel_process_frames(ch);
        if (!ch->closing)
            channel_input_release(ch);
        return;
    }
    if (!ch->tls_ready) {
        tlsio_result_t r = tlsio_handshake(&ch->tls);
        channel_flush(ch);
        if (ch->closing)
            return;
        if (r == TLSIO_WANT)
            return;
        if (r != TLSIO_OK) {
            /* Let the alert OpenSSL queued reach the peer before closing. */
            channel_close_after_flush(ch, tlsio_error(&ch->tls));
            return;
        }
        ch->tls_ready = true;
        if (ch->ops->on_open)
            ch->ops->on_open(ch);
        if (ch->closing)
            return;
    }
    char plain[16 * 1024];
    for (;;) {
        size_t got = 0;
        tlsio_result_t r = tlsio_read(&ch->tls, plain, sizeof(plain), &got);
        if (r == TLSIO_WANT)
            break;
        if (r == TLSIO_CLOSED) {
            channel_flush(ch);
            channel_close(ch, "peer closed the connection");
            return;
        }
        if (r == TLSIO_ERROR) {
            channel_close(ch, tlsio_error(&ch->tls));
            return;
        }
        int fed = channel_input_feed(ch, plain, got);
        if (ch->lines)
            memset(plain, 0, got); /* SIP2 lines carry PINs and passwords */
        if (fed != 0) {
            channel_close(ch, "out of memory");
            return;
        }
        /* Hand frames over as they complete, so a client streaming frames
         * larger than our buffer never makes us buffer more than one. */
        channel_process_frames(ch);
        if (ch->closing || ch->close_when_flushed)
            return;
        if (ch->paused_by_owner)
            break; /* the rest stays in the TLS engine until channel_resume() */
        if (ch->lines && ch->paused_by_backpressure)
            break; /* ... or until the output drains (channel_write_cb) */
    }
    /* Between frames an idle connection keeps no input buffer. */
    channel_input_release(ch);
    channel_flush(ch); /* TLS may have produced output (session tickets, alerts) */
    if (!ch->closing)
        tlsio_release_buffers(&ch->tls);
}

static void channel_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    channel_t *ch = stream->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        channel_close(ch, nread == UV_EOF ? "connection closed by peer" : uv_strerror((int)nread));
        return;
    }
    if (ch->close_when_flushed)
        return;
    int rc = ch->plain ? channel_input_feed(ch, b->base, (size_t)nread)
                       : tlsio_feed(&ch->tls, b->base, (size_t)nread);
    if (ch->plain && ch->lines)
        memset(b->base, 0, (size_t)nread); /* copied: leave no PIN behind */
    if (rc != 0) {
        channel_close(ch, "out of memory");
        return;
    }
    channel_pump_input(ch);
}

static int channel_setup(channel_t *ch, uv_loop_t *loop, SSL_CTX *ctx, bool server,
                         const char *verify_host, const channel_ops_t *ops, size_t max_frame,
                         size_t high_water, void *data)
{
    memset(ch, 0, sizeof(*ch));
    ch->ops = ops;
    ch->data = data;
    ch->high_water = high_water;
    frame_decoder_init(&ch->frames, max_frame);
    int rc = uv_tcp_init(loop, &ch->tcp);
    if (rc < 0)
        return rc;
    ch->tcp.data = ch;
    ch->tcp_ready = true;
    ch->plain = ctx == NULL;
    if (!ch->plain && tlsio_init(&ch->tls, ctx, server, verify_host) != 0)
        return UV_ENOMEM;
    return 0;
}

/* A plain channel is open as soon as its TCP connection is: tls_ready then
 * means "open", as it does once a handshake completes. */
static void channel_open_plain(channel_t *ch)
{
    ch->tls_ready = true;
    if (ch->ops->on_open)
        ch->ops->on_open(ch);
}

int channel_accept(channel_t *ch, uv_loop_t *loop, uv_stream_t *listener, SSL_CTX *ctx,
                   const channel_ops_t *ops, size_t max_frame, size_t high_water, void *data)
{
    int rc = channel_setup(ch, loop, ctx, true, NULL, ops, max_frame, high_water, data);
    if (rc == 0)
        rc = uv_accept(listener, (uv_stream_t *)&ch->tcp);
    if (rc == 0) {
        uv_tcp_nodelay(&ch->tcp, 1);
        rc = uv_read_start((uv_stream_t *)&ch->tcp, channel_alloc_cb, channel_read_cb);
    }
    if (rc < 0) {
        channel_close(ch, uv_strerror(rc));
        return rc;
    }
    if (ch->plain)
        channel_open_plain(ch);
    return 0;
}

static void channel_connect_cb(uv_connect_t *req, int status)
{
    channel_t *ch = req->data;
    if (ch->closing)
        return;
    if (status < 0) {
        char reason[128];
        snprintf(reason, sizeof(reason), "cannot connect: %s", uv_strerror(status));
        channel_close(ch, reason);
        return;
    }
    uv_tcp_nodelay(&ch->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&ch->tcp, channel_alloc_cb, channel_read_cb);
    if (rc < 0) {
        channel_close(ch, uv_strerror(rc));
        return;
    }
    if (ch->plain) {
        channel_open_plain(ch);
        return;
    }
    channel_pump_input(ch); /* sends the ClientHello */
}

int channel_connect(channel_t *ch, uv_loop_t *loop, const struct sockaddr *addr, SSL_CTX *ctx,
                    const char *verify_host, const channel_ops_t *ops, size_t max_frame,
                    size_t high_water, void *data)
{
    int rc = channel_setup(ch, loop, ctx, false, verify_host, ops, max_frame, high_water, data);
    if (rc == 0) {
        ch->connect_req.data = ch;
        rc = uv_tcp_connect(&ch->connect_req, &ch->tcp, addr, channel_connect_cb);
    }
    if (rc < 0)
        channel_close(ch, uv_strerror(rc));
    return rc;
}

/* Queue bytes for the peer: through the TLS engine, or as they are on a
 * plain channel. Returns 0, or -1 when the channel had to close. */
static int channel_queue_output(channel_t *ch, const void *bytes, size_t len)
{
    if (ch->plain) {
        if (buf_append(&ch->out_pending, bytes, len) != 0) {
            channel_close(ch, "out of memory");
            return -1;
        }
        channel_flush(ch);
        return 0;
    }
    tlsio_result_t r = tlsio_write(&ch->tls, bytes, len);
    if (r != TLSIO_OK) {
        channel_close(ch, tlsio_error(&ch->tls));
        return -1;
    }
    channel_flush(ch);
    if (!ch->closing)
        tlsio_release_buffers(&ch->tls); /* the ciphertext has moved to out_pending */
    return 0;
}

int channel_send(channel_t *ch, const ProtobufCMessage *msg)
{
    if (ch->closing || ch->close_when_flushed || !ch->tls_ready)
        return -1;
    /* Encoded in a buffer of its own, released at once: an idle channel
     * keeps nothing the size of its largest reply. */
    struct buf frame = BUF_INIT;
    if (frame_encode(&frame, msg) != 0) {
        buf_free(&frame);
        return -1;
    }
    int rc = channel_queue_output(ch, frame.data, frame.len);
    buf_free(&frame);
    return rc;
}

int channel_send_raw(channel_t *ch, const void *bytes, size_t len)
{
    if (ch->closing || ch->close_when_flushed || !ch->tls_ready)
        return -1;
    return channel_queue_output(ch, bytes, len);
}

void channel_pause(channel_t *ch)
{
    ch->paused_by_owner = true;
    channel_update_reading(ch);
}

void channel_resume(channel_t *ch)
{
    if (!ch->paused_by_owner)
        return;
    ch->paused_by_owner = false;
    channel_update_reading(ch);
    /* Called from inside on_frame (an answer sent at once): the delivery loop
     * below us goes on by itself, and pumping input here could move or free
     * the buffer the owner's payload still points into. */
    if (ch->in_frames)
        return;
    channel_process_frames(ch);
    if (!ch->closing && !ch->paused_by_owner)
        channel_pump_input(ch);
}

void channel_close_after_flush(channel_t *ch, const char *reason)
{
    if (ch->closing || ch->close_when_flushed)
        return;
    snprintf(ch->close_reason, sizeof(ch->close_reason), "%s", reason);
    if (!ch->plain)
        tlsio_shutdown(&ch->tls);
    channel_flush(ch);
    if (ch->closing)
        return;
    ch->close_when_flushed = true;
    uv_read_stop((uv_stream_t *)&ch->tcp);
    if (!ch->writing)
        channel_close(ch, reason);
}

void channel_set_max_frame(channel_t *ch, size_t max_frame)
{
    frame_decoder_set_max(&ch->frames, max_frame);
    line_decoder_set_max(&ch->line_input, max_frame);
}

/* Bytes the frame decoder already holds move to the line decoder, so the
 * switch loses nothing even when it comes late. */
void channel_set_lines(channel_t *ch, char terminator)
{
    if (ch->lines)
        return;
    line_decoder_init(&ch->line_input, ch->frames.max_frame, terminator);
    ch->lines = true;
    size_t held = frame_decoder_buffered(&ch->frames);
    if (held > 0 &&
        line_decoder_feed(&ch->line_input, ch->frames.in.data + ch->frames.start, held) != 0)
        channel_close(ch, "out of memory");
    frame_decoder_free(&ch->frames);
}

void channel_peer_name(channel_t *ch, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    snprintf(out, outlen, "?");
    if (!ch->tcp_ready || uv_tcp_getpeername(&ch->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    char host[64];
    int port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, host, sizeof(host));
        port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, host, sizeof(host));
        port = ntohs(a->sin6_port);
    } else {
        return;
    }
    snprintf(out, outlen, "%s:%d", host, port);
}
