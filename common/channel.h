/*
 * channel: one TLS connection on a libuv TCP stream, carrying frames.
 *
 * Used by the daemon for each accepted client and by the client and the bench
 * for each outgoing connection, so the TLS and framing code exists once.
 *
 * Lifecycle: channel_accept() or channel_connect(), then ops->on_open when the
 * handshake completes, ops->on_frame for each complete frame, and exactly one
 * ops->on_close once the handle is fully closed (after uv_close calls back);
 * only then may the owner free the memory holding the channel.
 *
 * Output: at most one uv_write is in flight; later output queues behind it.
 * When queued output passes the high-water mark the channel stops reading
 * from the peer until it drains to half of it. An owner serving many
 * channels may also count their unsent output together (channel_set_output_
 * total) and hear when a channel's grows (ops->on_output), to bound the sum.
 *
 * Memory: an idle channel keeps no buffers. Input, output and encoding
 * buffers are released once they are empty, and the TLS engine releases its
 * record buffers (SSL_MODE_RELEASE_BUFFERS, tls.c).
 */
#ifndef CARREL_CHANNEL_H
#define CARREL_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>
#include <protobuf-c/protobuf-c.h>

#include "buf.h"
#include "frame.h"
#include "linedec.h"
#include "tls.h"

typedef struct channel channel_t;

typedef struct channel_ops {
    void (*on_open)(channel_t *ch);
    void (*on_frame)(channel_t *ch, const uint8_t *payload, size_t len);
    void (*on_frame_too_large)(channel_t *ch, uint32_t declared);
    void (*on_close)(channel_t *ch, const char *reason);
    /* Optional: the queued output grew (it may close any channel, this one too). */
    void (*on_output)(channel_t *ch);
} channel_ops_t;

struct channel {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    tlsio_t tls;
    frame_decoder_t frames;
    struct buf out_pending; /* ciphertext waiting for the write in flight */
    struct buf out_writing; /* ciphertext handed to uv_write */
    size_t high_water;
    size_t *output_total;  /* the owner's count of unsent output over channels, or NULL */
    size_t output_counted; /* this channel's part of *output_total */
    uint64_t output_since; /* uv_now() when the queued output last went from empty to not */
    const channel_ops_t *ops;
    void *data; /* the owner's */
    bool tcp_ready;
    bool tls_ready;
    bool writing;
    bool closing;
    bool close_when_flushed;
    bool paused_by_owner;
    bool paused_by_backpressure;
    bool in_frames; /* re-entrancy guard for channel_process_frames */
    bool plain;     /* accepted or connected with ctx == NULL: no TLS engine at all */
    bool lines;     /* line mode (channel_set_lines): `line_input` replaces `frames` */
    line_decoder_t line_input;
    char close_reason[200];
};

/* Accept a pending connection on `listener`. On failure returns a negative uv error. */
__attribute__((warn_unused_result)) int channel_accept(channel_t *ch, uv_loop_t *loop,
                                                       uv_stream_t *listener, SSL_CTX *ctx,
                                                       const channel_ops_t *ops, size_t max_frame,
                                                       size_t high_water, void *data);
/*
 * Connect to addr and start the TLS handshake, verifying the server against
 * `verify_host`. Failures arrive as ops->on_close with a reason.
 */
__attribute__((warn_unused_result)) int channel_connect(channel_t *ch, uv_loop_t *loop,
                                                        const struct sockaddr *addr, SSL_CTX *ctx,
                                                        const char *verify_host,
                                                        const channel_ops_t *ops, size_t max_frame,
                                                        size_t high_water, void *data);
/* Queue one message as a frame. Returns 0, or -1 if the channel is closing or out of memory. */
__attribute__((warn_unused_result)) int channel_send(channel_t *ch, const ProtobufCMessage *msg);
/* Stop/resume handing frames to the owner (frames already received stay buffered). */
void channel_pause(channel_t *ch);
void channel_resume(channel_t *ch);
/* Close now; queued output is dropped. */
void channel_close(channel_t *ch, const char *reason);
/* Stop reading, send what is queued and a TLS close_notify, then close. */
void channel_close_after_flush(channel_t *ch, const char *reason);
void channel_set_max_frame(channel_t *ch, size_t max_frame);
/*
 * Line mode (SIP2): carry lines ended by `terminator` ('\r') instead of
 * length-prefixed frames. Each line, without its terminator and without LFs
 * around it, goes to ops->on_frame; a line longer than max_frame is dropped
 * up to its terminator and reported with ops->on_frame_too_large(ch, bytes
 * seen), and the channel stays open. Call right after accept or connect.
 * The line is reported when its terminator arrives. Lines left empty are
 * skipped. Pause, resume and backpressure work as for frames: a paused
 * channel keeps the lines it has and hands them over on resume.
 * A channel accepted or connected with ctx == NULL is plain TCP (no TLS):
 * on_open comes once the TCP connection is up: for channel_accept from
 * inside the call (after reading has started), for channel_connect from the
 * connect callback. `tls` is unused on such a channel.
 */
void channel_set_lines(channel_t *ch, char terminator);
/* Queue bytes as they are (a line mode answer, terminator included). 0 or -1 as channel_send. */
__attribute__((warn_unused_result)) int channel_send_raw(channel_t *ch, const void *bytes,
                                                         size_t len);
size_t channel_queued_output(const channel_t *ch);
/* Count this channel's unsent output in *total (until it closes). */
void channel_set_output_total(channel_t *ch, size_t *total);
/* Milliseconds since this channel's unsent output was last empty (0 when it is). */
uint64_t channel_output_age_ms(const channel_t *ch);
/* "ip:port" of the peer, or "?" */
void channel_peer_name(channel_t *ch, char *out, size_t outlen);

#endif
