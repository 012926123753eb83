/*
 * listen: the tick, the signals, the keepalive and the answer deadline of
 * the listening loop shared by desk mode and `carrel events` (listen.h).
 */
#include "listen.h"

#include <stdio.h>

#include "cli.h"
#include "util.h"

/* During a replay: an id below the first shown, written well before the desk started. */
static bool listen_seen_below_floor(const listen_seen_t *s, int64_t id, int64_t time_ms)
{
    return s->replaying && s->first > 0 && id < s->first && time_ms > 0 &&
           time_ms < s->start_ms - LISTEN_SEEN_MARGIN_MS;
}

bool listen_seen_new(listen_seen_t *s, int64_t id, int64_t time_ms)
{
    if (id <= 0)
        return true;
    if (listen_seen_below_floor(s, id, time_ms))
        return false;
    for (size_t i = 0; i < s->n; i++)
        if (s->ids[i] == id)
            return false;
    s->ids[s->next] = id;
    s->next = (s->next + 1) % LISTEN_SEEN_IDS;
    if (s->n < LISTEN_SEEN_IDS)
        s->n++;
    if (id > s->highest)
        s->highest = id;
    if (s->first == 0)
        s->first = id;
    return true;
}

int64_t listen_seen_replay(listen_seen_t *s, int64_t now_ms)
{
    if (s->start_ms == 0)
        s->start_ms = now_ms;
    s->replaying = s->highest > 0;
    return s->highest;
}

void listen_seen_replayed(listen_seen_t *s)
{
    s->replaying = false;
}

uint64_t listen_now_ms(void)
{
    return util_mono_ns() / 1000000u;
}

void listen_init(listen_t *l, cli_t *cli, uint64_t keepalive_ms)
{
    l->conn = &cli->conn;
    l->keepalive_ms = keepalive_ms ? keepalive_ms : LISTEN_KEEPALIVE_S * 1000u;
    l->timeout_ms = (uint64_t)(cli->profile.timeout_s > 0 ? cli->profile.timeout_s : 30) * 1000u;
}

static void listen_tick_cb(uv_timer_t *t)
{
    (void)t; /* ends the turn of the loop, whose owner then checks its deadlines */
}

static void listen_signal_cb(uv_signal_t *h, int signum)
{
    listen_t *l = h->data;
    if (l->on_signal)
        l->on_signal(l, signum);
    else
        l->stop = true;
}

static void listen_closed_cb(uv_handle_t *h)
{
    listen_t *l = h->data;
    l->open--;
}

void listen_start(listen_t *l, const int *signals, int nsignals)
{
    uv_loop_t *loop = client_loop(l->conn);
    uv_timer_init(loop, &l->tick);
    l->tick.data = l;
    /* Fine enough that a keepalive goes out at most a quarter late. */
    uint64_t tick = l->keepalive_ms / 4 < LISTEN_TICK_MS ? l->keepalive_ms / 4 : LISTEN_TICK_MS;
    uv_timer_start(&l->tick, listen_tick_cb, tick, tick);
    l->open++;
    l->nsignals = nsignals < LISTEN_MAX_SIGNALS ? nsignals : LISTEN_MAX_SIGNALS;
    for (int i = 0; i < l->nsignals; i++) {
        uv_signal_init(loop, &l->signals[i]);
        l->signals[i].data = l;
        uv_signal_start(&l->signals[i], listen_signal_cb, signals[i]);
        l->open++;
    }
    l->started = true;
}

void listen_stop(listen_t *l)
{
    if (!l->started)
        return;
    l->started = false;
    if (!uv_is_closing((uv_handle_t *)&l->tick))
        uv_close((uv_handle_t *)&l->tick, listen_closed_cb);
    for (int i = 0; i < l->nsignals; i++)
        if (!uv_is_closing((uv_handle_t *)&l->signals[i]))
            uv_close((uv_handle_t *)&l->signals[i], listen_closed_cb);
}

void listen_stop_wait(listen_t *l)
{
    listen_stop(l);
    while (l->open > 0)
        client_run_once(l->conn);
}

bool listen_keepalive_due(const listen_t *l, uint64_t last_send_ms)
{
    return listen_now_ms() - last_send_ms >= l->keepalive_ms;
}

bool listen_check_deadline(listen_t *l, uint64_t sent_ms, const char *what)
{
    if (l->conn->closed || listen_now_ms() - sent_ms <= l->timeout_ms)
        return false;
    char why[80];
    snprintf(why, sizeof(why), "no answer%s within %llu seconds", what,
             (unsigned long long)(l->timeout_ms / 1000));
    client_abort(l->conn, why);
    return true;
}

uint64_t listen_send_ping(listen_t *l, bool push_event, const char *payload)
{
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__Ping p = CARREL__PING__INIT;
    p.payload = (char *)payload;
    if (push_event)
        p.has_push_event = p.push_event = 1;
    req.body_case = CARREL__REQUEST__BODY_PING;
    req.ping = &p;
    return client_send(l->conn, &req); /* 0: the connection is closing, the loop sees it */
}

int listen_keepalive(listen_t *l, cli_t *cli)
{
    if (l->ping_id != 0) {
        Carrel__Response *r = NULL;
        if (client_poll(l->conn, l->ping_id, &r) == 1) {
            l->ping_id = 0;
            int code = EXIT_OK;
            if (r->status != CARREL__STATUS__STATUS_OK) {
                cli_print_status_error(cli, r);
                code = cli_response_exit(r);
            }
            carrel__response__free_unpacked(r, NULL);
            return code;
        }
        listen_check_deadline(l, l->ping_sent_ms, " to a keepalive");
    } else if (listen_keepalive_due(l, l->ping_sent_ms)) {
        l->ping_id = listen_send_ping(l, false, NULL);
        l->ping_sent_ms = listen_now_ms();
    }
    return EXIT_OK;
}
