/*
 * session: the client's connection to carreld. A private libuv loop drives
 * the TLS channel (common/channel.c); calls are synchronous for the command
 * line (send, then run the loop until the answer with that id arrives), while
 * pushed events are handed to a callback as they come.
 */
#ifndef CARREL_CLIENT_SESSION_H
#define CARREL_CLIENT_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "carrel.pb-c.h"
#include "channel.h"

typedef void (*client_event_cb)(const Carrel__Event *event, void *arg);
/* A pushed Response (id 0, status OK) whose body is not an event, e.g. StatsLive. */
typedef void (*client_push_cb)(const Carrel__Response *push, void *arg);

typedef struct client_inbox client_inbox_t;

typedef struct client {
    uv_loop_t loop;
    channel_t ch;
    SSL_CTX *tls;
    uv_timer_t timer;
    bool loop_ready;
    bool channel_started;
    bool open;
    bool closed;
    bool timed_out;
    char error[300];
    uint64_t next_id;
    client_inbox_t *inbox;
    client_event_cb on_event;
    void *event_arg;
    client_push_cb on_push; /* NULL: such pushes are dropped */
    void *push_arg;
    uint64_t timeout_ms;
    uint32_t max_frame;
} client_t;

typedef struct client_target {
    const char *host;
    int port;
    const char *server_name;
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    int timeout_s;
} client_target_t;

/* Connect, complete TLS and exchange Hello. Returns 0, or -1 with cl->error set. */
__attribute__((warn_unused_result)) int client_open(client_t *cl, const client_target_t *t);
/*
 * A loop with no connection (closed, error "offline"), so that desk mode can
 * watch the keyboard, a tick and signals while the daemon is unreachable;
 * client_close ends it. Returns 0, or -1 with cl->error set.
 */
__attribute__((warn_unused_result)) int client_idle(client_t *cl);
/*
 * Send `req` (its id is assigned here) and wait for the answer. Returns 0 and
 * the response (free with carrel__response__free_unpacked), or -1 with
 * cl->error set when the connection failed or timed out.
 */
__attribute__((warn_unused_result)) int client_call(client_t *cl, Carrel__Request *req,
                                                    Carrel__Response **resp);
/* Send without waiting; returns the id used, or 0 on failure. */
uint64_t client_send(client_t *cl, Carrel__Request *req);
/* Wait for the answer to `id` sent with client_send. */
__attribute__((warn_unused_result)) int client_wait(client_t *cl, uint64_t id,
                                                    Carrel__Response **resp);
/* Run the loop once (for desk mode: events and input). */
void client_run_once(client_t *cl);
/*
 * Take the answer to `id` (sent with client_send) out of the inbox without
 * running the loop, for callers that run the loop themselves (desk mode:
 * client_run_once, then client_poll). Returns 1
 * and the response (free with carrel__response__free_unpacked), 0 when it
 * has not arrived yet, or -1 when the connection has closed (cl->error says
 * why) and it never will.
 */
int client_poll(client_t *cl, uint64_t id, Carrel__Response **resp);
/*
 * The loop the connection runs on, so that a caller can watch other things
 * (the keyboard, timers, signals) in the same loop. Handles started on it
 * must be closed before client_close, which otherwise closes them itself (with
 * no close callback). client_open makes a new loop: a reconnect needs them
 * started again.
 */
uv_loop_t *client_loop(client_t *cl);
/*
 * Wait ms while the loop runs (the connection keeps answering TLS and takes
 * pushed events), e.g. before retrying a login the server was too busy for.
 */
void client_sleep(client_t *cl, uint64_t ms);
/*
 * Pure: how long to wait before retry number `attempt` (0 for the first) of a
 * request refused as busy (PROTOCOL.md, "Retrying"). With the server's
 * retry_after_ms (non-zero): that, plus up to a tenth more (at most 1 s) at
 * random so that desks told the same time do not come back in the same
 * millisecond; the server allows a fifth. Without:
 * exponential backoff, 500 ms doubling up to 8 s, half of it fixed and half at
 * random ("equal jitter"). `r` is a random number in [0, 1).
 */
uint32_t client_retry_delay_ms(int attempt, uint32_t retry_after_ms, double r);
/* A random number in [0, 1) for client_retry_delay_ms. */
double client_random_unit(void);

/* Drop the connection now, e.g. when an answer is overdue; `why` goes to cl->error. */
void client_abort(client_t *cl, const char *why);
void client_close(client_t *cl);

#endif
