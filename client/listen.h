/*
 * listen: the listening loop that `carrel desk` and `carrel events` share.
 * Both run on the connection's own loop (client_loop, client_run_once,
 * client_poll; never client_call). Besides the connection, the loop watches
 *
 *   - a tick, so that a turn of it ends at least that often even when
 *     nothing arrives: a keepalive Ping is due on a quiet connection (the
 *     server closes one after idle_timeout_s), and an answer may be overdue;
 *   - signals (SIGINT, SIGTERM, and for the desk SIGHUP), which ask the
 *     listener to stop, or go to the owner's on_signal.
 *
 * The keepalive is a Ping once the connection has been quiet keepalive_ms;
 * the answer deadline is the profile's timeout_s: an answer that late means
 * the connection is dead, and it is dropped (client_abort) so that the
 * owner notices it closed. The handles are started again after each
 * reconnect (client_open makes a new loop).
 */
#ifndef CARREL_LISTEN_H
#define CARREL_LISTEN_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "session.h"

typedef struct cli cli_t;

#define LISTEN_TICK_MS     1000
#define LISTEN_KEEPALIVE_S 60
#define LISTEN_MAX_SIGNALS 3

typedef struct listen listen_t;

/*
 * The stored events a desk has shown (Event.id): the highest, sent again as
 * Subscribe.since_event_id after a reconnect, and the last LISTEN_SEEN_IDS
 * ids, so that one replayed again or pushed live and replayed is shown once.
 *
 * While a replay is out (from listen_seen_replay with an id to its answer,
 * listen_seen_replayed), an event with an id below the first this desk
 * showed whose row was written more than LISTEN_SEEN_MARGIN_MS before the
 * desk first subscribed is taken as history from before the desk started
 * (the server's fallback window may send such) and dropped: the floor. It
 * never applies outside a replay: a live event with a small id (a long
 * transaction that drew it early) is new, and shown.
 */
#define LISTEN_SEEN_IDS       1024
#define LISTEN_SEEN_MARGIN_MS (60 * 1000)
typedef struct listen_seen {
    int64_t highest;  /* 0: none yet */
    int64_t first;    /* the first id shown, 0: none yet */
    int64_t start_ms; /* wall clock of the first subscribe, 0: not yet */
    bool replaying;   /* a replay is out: the floor applies */
    int64_t ids[LISTEN_SEEN_IDS];
    size_t next, n;
} listen_seen_t;

/* True the first time id is offered (and remembers it); false for one already
 * seen or, during a replay, below the floor (time_ms: the event's). An event
 * without an id (0) is always new. */
bool listen_seen_new(listen_seen_t *s, int64_t id, int64_t time_ms);
/* Called as a Subscribe goes out (now_ms: wall clock): the since_event_id to
 * send (0: none, nothing to replay after); with one, a replay is out. */
int64_t listen_seen_replay(listen_seen_t *s, int64_t now_ms);
/* The Subscribe was answered: the replay, if any, is over. */
void listen_seen_replayed(listen_seen_t *s);

struct listen {
    client_t *conn;
    uint64_t keepalive_ms;
    uint64_t timeout_ms; /* the answer deadline (listen_init: the profile's timeout_s) */
    /* A signal: on_signal when set (data is the owner), else stop is set. */
    void (*on_signal)(listen_t *l, int signum);
    void *data;
    bool stop;
    /* the handles, while started */
    bool started;
    int open; /* handles not yet closed (their close callbacks count down) */
    uv_timer_t tick;
    uv_signal_t signals[LISTEN_MAX_SIGNALS];
    int nsignals;
    /* listen_keepalive's Ping (for listeners with no request of their own) */
    uint64_t ping_id; /* sent, its Pong not taken yet; 0: none */
    uint64_t ping_sent_ms;
};

/* Milliseconds of a monotonic clock. */
uint64_t listen_now_ms(void);
/* Set up l for cli's connection: keepalive_ms (0: LISTEN_KEEPALIVE_S) and the profile's deadline.
 */
void listen_init(listen_t *l, cli_t *cli, uint64_t keepalive_ms);
/* Start the tick and watch `signals` (at most LISTEN_MAX_SIGNALS) on the connection's loop. */
void listen_start(listen_t *l, const int *signals, int nsignals);
/* Close the handles (their close callbacks run on a later turn of the loop, or in client_close). */
void listen_stop(listen_t *l);
/* Close the handles and turn the loop until they are closed, so that l may go. */
void listen_stop_wait(listen_t *l);
/* True when the connection has been quiet (nothing sent since last_send_ms) long enough. */
bool listen_keepalive_due(const listen_t *l, uint64_t last_send_ms);
/*
 * Drop the connection when the answer to a request sent at sent_ms is past
 * the deadline: "no answer<what> within N seconds" (what: "" or " to a
 * keepalive"). Returns true when it dropped it.
 */
bool listen_check_deadline(listen_t *l, uint64_t sent_ms, const char *what);
/* Send a Ping (asking for a test event with push_event); its id, or 0 when the connection is
 * closing. */
uint64_t listen_send_ping(listen_t *l, bool push_event, const char *payload);
/*
 * For listeners with no requests of their own (`carrel events`): send the
 * keepalive Ping when it is due and none is out, take its Pong when it has
 * come, and drop the connection when it is overdue. Returns EXIT_OK, or the
 * exit code of a Ping the server refused (printed).
 */
int listen_keepalive(listen_t *l, cli_t *cli);

#endif
