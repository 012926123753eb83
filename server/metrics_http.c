/*
 * metrics_http: the Prometheus endpoint, plain HTTP/1.1 on
 * metrics_listen_host:metrics_listen_port (off while the port is 0).
 *
 * One request per connection ("Connection: close"): GET /metrics gets the
 * text format, any other path 404, any other method 405, a request line we
 * cannot read 400, a header over METRICS_HTTP_HEADER_MAX 431. Memory is
 * bounded: at most METRICS_HTTP_MAX_SCRAPES connections at once, each
 * holding at most the header cap and one answer, and each lives at most
 * METRICS_HTTP_READ_MS to send its request and METRICS_HTTP_WRITE_MS more to
 * take its answer, however slowly it reads. When all the slots are taken, a
 * new connection takes the slot of the oldest one that has not sent its
 * request yet (so idle connections cannot lock scrapers out); only when every
 * slot holds an answer on its way is the new one closed. Those refusals are
 * logged once a minute at most, with their count.
 *
 * After the answer: the client's end of the connection (EOF) no longer
 * cancels it, so a scraper that half-closes after its request still gets all
 * of it. Once the answer is out we half-close and linger until the client
 * closes too (or METRICS_HTTP_LINGER_MS), reading and dropping what it still
 * sends, so that the close does not reset the connection under the answer.
 * The answer is built on the loop from counters in memory: no I/O but the
 * socket's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "log.h"
#include "metrics.h"
#include "server.h"
#include "util.h"

#define METRICS_HTTP_HEADER_MAX   8192
#define METRICS_HTTP_MAX_SCRAPES  16
#define METRICS_HTTP_READ_MS      5000
#define METRICS_HTTP_WRITE_MS     10000
#define METRICS_HTTP_LINGER_MS    2000
#define METRICS_HTTP_SAY_EVERY_MS 60000 /* refusals for lack of a slot: one log line */

typedef struct metrics_http metrics_http_t;

typedef struct scrape {
    metrics_http_t *h;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write;
    uv_shutdown_t shutdown;
    int open_handles; /* tcp and timer until their close callbacks ran */
    bool answered;    /* the answer is queued: what else arrives is discarded */
    bool closing;
    bool peer_done; /* the client's EOF came after its request */
    bool shut;      /* our answer is out and our end half-closed */
    size_t len;
    char head[METRICS_HTTP_HEADER_MAX];
    struct buf out;
    struct scrape *prev, *next;
} scrape_t;

struct metrics_http {
    server_t *srv;
    uv_tcp_t listener;
    bool listener_open;
    bool stopping;
    int nscrapes;      /* scrapes not closing */
    scrape_t *scrapes; /* newest first, closing ones too */
    uint64_t refused;  /* refused for lack of a slot since the last log line */
    uint64_t said_ms;  /* uv_now() of that line; 0: never */
};

/* Free h once the listener and every scrape are closed (after metrics_http_stop). */
static void http_maybe_free(metrics_http_t *h)
{
    if (!h->stopping || h->listener_open || h->scrapes)
        return;
    if (h->srv->metrics_http == h)
        h->srv->metrics_http = NULL;
    free(h);
}

static void scrape_handle_closed(uv_handle_t *handle)
{
    scrape_t *s = handle->data;
    if (--s->open_handles > 0)
        return;
    metrics_http_t *h = s->h;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->scrapes = s->next;
    if (s->next)
        s->next->prev = s->prev;
    buf_free(&s->out);
    free(s);
    http_maybe_free(h);
}

static void scrape_close(scrape_t *s)
{
    if (s->closing)
        return;
    s->closing = true;
    s->h->nscrapes--; /* the slot is free again: its handles close on the next turn */
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->tcp, scrape_handle_closed);
    uv_close((uv_handle_t *)&s->timer, scrape_handle_closed);
}

static void scrape_timeout(uv_timer_t *t)
{
    scrape_t *s = t->data;
    log_debug(0, "metrics: closing a scrape connection that %s in time",
              s->shut       ? "did not close its end"
              : s->answered ? "did not take its answer"
                            : "did not send its request");
    scrape_close(s);
}

/* Our end is half-closed: close once the client has closed its own (or it already
 * has), else linger a little, still reading and dropping, so that late bytes from it do
 * not turn our close into a reset. */
static void scrape_shutdown_done(uv_shutdown_t *req, int status)
{
    scrape_t *s = req->data;
    if (s->closing)
        return;
    s->shut = true;
    if (status != 0 || s->peer_done) {
        scrape_close(s);
        return;
    }
    uv_timer_start(&s->timer, scrape_timeout, METRICS_HTTP_LINGER_MS, 0);
}

static void scrape_written(uv_write_t *req, int status)
{
    scrape_t *s = req->data;
    if (status != 0 || s->closing) {
        scrape_close(s);
        return;
    }
    /* Half-close and wait for the client's end (or the timer): closing at once
     * with unread bytes from it would reset the connection under our answer. */
    s->shutdown.data = s;
    if (uv_shutdown(&s->shutdown, (uv_stream_t *)&s->tcp, scrape_shutdown_done) != 0)
        scrape_close(s);
}

/* Queue the answer: status line, headers, body (may be NULL). */
static void scrape_answer(scrape_t *s, const char *status, const char *extra_headers,
                          const struct buf *body, const char *text)
{
    size_t blen = body ? body->len : strlen(text);
    s->answered = true;
    int rc = buf_printf(
        &s->out,
        "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
        "Connection: close\r\n\r\n",
        status, body ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8",
        blen, extra_headers ? extra_headers : "");
    if (rc == 0)
        rc = body ? buf_append(&s->out, body->data, body->len) : buf_append(&s->out, text, blen);
    if (rc != 0) {
        scrape_close(s);
        return;
    }
    uv_timer_start(&s->timer, scrape_timeout, METRICS_HTTP_WRITE_MS, 0);
    uv_buf_t b = uv_buf_init((char *)s->out.data, (unsigned)s->out.len);
    s->write.data = s;
    if (uv_write(&s->write, (uv_stream_t *)&s->tcp, &b, 1, scrape_written) != 0)
        scrape_close(s);
}

/* A whole header has arrived: answer it. */
static void scrape_request(scrape_t *s)
{
    char *line_end = strpbrk(s->head, "\r\n");
    if (line_end)
        *line_end = '\0';
    char method[16], target[256], version[16];
    if (sscanf(s->head, "%15s %255s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
        scrape_answer(s, "400 Bad Request", NULL, NULL, "Bad request.\n");
        return;
    }
    char *query = strchr(target, '?');
    if (query)
        *query = '\0';
    if (strcmp(target, "/metrics") != 0) {
        scrape_answer(s, "404 Not Found", NULL, NULL, "Not found: the metrics are at /metrics.\n");
        return;
    }
    if (strcmp(method, "GET") != 0) {
        scrape_answer(s, "405 Method Not Allowed", "Allow: GET\r\n", NULL,
                      "Only GET is allowed.\n");
        return;
    }
    struct buf body = BUF_INIT;
    if (metrics_text(s->h->srv, &body) != 0) {
        buf_free(&body);
        scrape_answer(s, "500 Internal Server Error", NULL, NULL, "Out of memory.\n");
        return;
    }
    scrape_answer(s, "200 OK", NULL, &body, NULL);
    buf_free(&body);
}

static void scrape_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    scrape_t *s = handle->data;
    static char discard[512]; /* after the answer: read and dropped (one thread) */
    if (s->answered || s->len >= sizeof(s->head) - 1)
        *b = uv_buf_init(discard, sizeof(discard));
    else
        *b = uv_buf_init(s->head + s->len, (unsigned)(sizeof(s->head) - 1 - s->len));
}

static void scrape_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    scrape_t *s = stream->data;
    if (s->closing)
        return;
    if (nread == UV_EOF && s->answered && !s->shut) {
        /* The client is done sending, not done reading: finish the answer (the write
         * deadline still bounds it). */
        log_debug(0, "metrics: the scraper closed its end; finishing the answer");
        s->peer_done = true;
        uv_read_stop(stream);
        return;
    }
    if (nread < 0) {
        scrape_close(s);
        return;
    }
    if (s->answered || s->closing || nread == 0)
        return;
    s->len += (size_t)nread;
    s->head[s->len] = '\0';
    if (strstr(s->head, "\r\n\r\n") || strstr(s->head, "\n\n")) {
        uv_timer_stop(&s->timer);
        scrape_request(s);
    } else if (s->len >= sizeof(s->head) - 1) {
        scrape_answer(s, "431 Request Header Fields Too Large", NULL, NULL,
                      "The request header is too large.\n");
    }
}

/* Every slot is taken: close the oldest connection still waiting for its request (not
 * `fresh`). False when every other one has its answer on the way. */
static bool http_make_room(metrics_http_t *h, scrape_t *fresh)
{
    scrape_t *oldest = NULL;
    for (scrape_t *s = h->scrapes; s; s = s->next)
        if (s != fresh && !s->answered && !s->closing)
            oldest = s; /* newest first: the last one found is the oldest */
    if (oldest == NULL)
        return false;
    log_debug(0, "metrics: all %d scrape slots taken: closing the oldest idle connection",
              METRICS_HTTP_MAX_SCRAPES);
    scrape_close(oldest);
    return true;
}

/* A connection refused for lack of a slot: said at most once a minute, with the count. */
static void http_refused(metrics_http_t *h, uv_loop_t *loop)
{
    h->refused++;
    uint64_t now = uv_now(loop);
    if (h->said_ms != 0 && now - h->said_ms < METRICS_HTTP_SAY_EVERY_MS)
        return;
    log_warn(0, "metrics: more than %d scrapes at once: %llu connection(s) closed at accept%s",
             METRICS_HTTP_MAX_SCRAPES, (unsigned long long)h->refused,
             h->said_ms != 0 ? " in the last minute or so" : "");
    h->refused = 0;
    h->said_ms = now ? now : 1;
}

static void metrics_on_connection(uv_stream_t *listener, int status)
{
    metrics_http_t *h = listener->data;
    if (status < 0 || h->stopping)
        return;
    scrape_t *s = util_xcalloc(1, sizeof(*s));
    s->h = h;
    uv_tcp_init(listener->loop, &s->tcp);
    uv_timer_init(listener->loop, &s->timer);
    s->tcp.data = s->timer.data = s;
    s->open_handles = 2;
    s->next = h->scrapes;
    if (h->scrapes)
        h->scrapes->prev = s;
    h->scrapes = s;
    h->nscrapes++;
    if (uv_accept(listener, (uv_stream_t *)&s->tcp) != 0) {
        scrape_close(s);
        return;
    }
    if (h->nscrapes > METRICS_HTTP_MAX_SCRAPES && !http_make_room(h, s)) {
        http_refused(h, listener->loop);
        scrape_close(s);
        return;
    }
    uv_timer_start(&s->timer, scrape_timeout, METRICS_HTTP_READ_MS, 0);
    if (uv_read_start((uv_stream_t *)&s->tcp, scrape_alloc, scrape_read) != 0)
        scrape_close(s);
}

static void listener_closed(uv_handle_t *handle)
{
    metrics_http_t *h = handle->data;
    h->listener_open = false;
    http_maybe_free(h);
}

int metrics_http_start(server_t *srv)
{
    if (srv->cfg.metrics_listen_port <= 0)
        return 0;
    const char *host = srv->cfg.metrics_listen_host;
    int port = (int)srv->cfg.metrics_listen_port;
    struct sockaddr_storage addr;
    int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                               : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc != 0) {
        log_error(0, "metrics_listen_host '%s' is not an IP address", host);
        return -1;
    }
    metrics_http_t *h = util_xcalloc(1, sizeof(*h));
    h->srv = srv;
    srv->metrics_http = h;
    uv_tcp_init(srv->loop, &h->listener);
    h->listener.data = h;
    h->listener_open = true;
    rc = uv_tcp_bind(&h->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->listener, 64, metrics_on_connection);
    if (rc != 0) {
        log_error(0, "cannot listen for metrics on %s:%d: %s", host, port, uv_strerror(rc));
        metrics_http_stop(srv);
        return -1;
    }
    log_info(0, "metrics on http://%s:%d/metrics", host, port);
    return 0;
}

void metrics_http_stop(server_t *srv)
{
    metrics_http_t *h = srv->metrics_http;
    if (h == NULL || h->stopping)
        return;
    h->stopping = true;
    for (scrape_t *s = h->scrapes; s; s = s->next)
        scrape_close(s);
    uv_close((uv_handle_t *)&h->listener, listener_closed);
}
