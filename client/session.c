#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "tls.h"

struct client_inbox {
    Carrel__Response *resp;
    client_inbox_t *next;
};

#define CLIENT_MAX_FRAME (64u * 1024 * 1024)

static void client_on_open(channel_t *ch)
{
    client_t *cl = ch->data;
    cl->open = true;
}

static void client_on_frame(channel_t *ch, const uint8_t *payload, size_t len)
{
    client_t *cl = ch->data;
    Carrel__Response *resp = carrel__response__unpack(NULL, len, payload);
    if (resp == NULL) {
        snprintf(cl->error, sizeof(cl->error), "the server sent an undecodable frame");
        channel_close(ch, cl->error);
        return;
    }
    if (resp->id == 0 && resp->body_case == CARREL__RESPONSE__BODY_EVENT) {
        if (cl->on_event)
            cl->on_event(resp->event, cl->event_arg);
        carrel__response__free_unpacked(resp, NULL);
        return;
    }
    /* Other pushes (StatsLive) are no answer to a request: never into the inbox, where
     * an id 0 answer would be taken as the connection's error. */
    if (resp->id == 0 && resp->status == CARREL__STATUS__STATUS_OK &&
        resp->body_case != CARREL__RESPONSE__BODY__NOT_SET) {
        if (cl->on_push)
            cl->on_push(resp, cl->push_arg);
        carrel__response__free_unpacked(resp, NULL);
        return;
    }
    client_inbox_t *box = malloc(sizeof(*box));
    if (box == NULL) {
        carrel__response__free_unpacked(resp, NULL);
        channel_close(ch, "out of memory");
        return;
    }
    box->resp = resp;
    box->next = cl->inbox;
    cl->inbox = box;
}

static void client_on_too_large(channel_t *ch, uint32_t declared)
{
    client_t *cl = ch->data;
    snprintf(cl->error, sizeof(cl->error), "the server sent a frame of %u bytes, over our limit",
             declared);
}

static void client_on_close(channel_t *ch, const char *reason)
{
    client_t *cl = ch->data;
    cl->closed = true;
    cl->open = false;
    if (cl->error[0] == '\0')
        snprintf(cl->error, sizeof(cl->error), "connection closed: %s", reason);
}

static const channel_ops_t client_ops = {
    .on_open = client_on_open,
    .on_frame = client_on_frame,
    .on_frame_too_large = client_on_too_large,
    .on_close = client_on_close,
};

static void client_timeout_cb(uv_timer_t *t)
{
    client_t *cl = t->data;
    cl->timed_out = true;
}

static void client_arm_timer(client_t *cl)
{
    cl->timed_out = false;
    uv_timer_start(&cl->timer, client_timeout_cb, cl->timeout_ms, 0);
}

/* Take the response with `id` out of the inbox, or NULL. */
static Carrel__Response *client_take(client_t *cl, uint64_t id)
{
    for (client_inbox_t **p = &cl->inbox; *p; p = &(*p)->next) {
        if ((*p)->resp->id == id) {
            client_inbox_t *box = *p;
            *p = box->next;
            Carrel__Response *resp = box->resp;
            free(box);
            return resp;
        }
        /* id 0 errors concern the whole connection (e.g. frame too large) */
        if ((*p)->resp->id == 0) {
            client_inbox_t *box = *p;
            *p = box->next;
            Carrel__Response *resp = box->resp;
            free(box);
            return resp;
        }
    }
    return NULL;
}

int client_open(client_t *cl, const client_target_t *t)
{
    memset(cl, 0, sizeof(*cl));
    cl->timeout_ms = (uint64_t)(t->timeout_s > 0 ? t->timeout_s : 30) * 1000;
    if (uv_loop_init(&cl->loop) != 0) {
        snprintf(cl->error, sizeof(cl->error), "cannot create an event loop");
        return -1;
    }
    cl->loop_ready = true;
    uv_timer_init(&cl->loop, &cl->timer);
    cl->timer.data = cl;

    cl->tls =
        tls_client_ctx_new(t->ca_file, t->cert_file, t->key_file, cl->error, sizeof(cl->error));
    if (cl->tls == NULL)
        return -1;

    /* Resolving blocks, which is fine: the command line has nothing else to do. */
    char port[16];
    snprintf(port, sizeof(port), "%d", t->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    uv_getaddrinfo_t gai;
    int rc = uv_getaddrinfo(&cl->loop, &gai, NULL, t->host, port, &hints);
    if (rc != 0) {
        snprintf(cl->error, sizeof(cl->error), "cannot resolve %s: %s", t->host, uv_strerror(rc));
        return -1;
    }
    const char *verify = t->server_name && *t->server_name ? t->server_name : t->host;
    rc = channel_connect(&cl->ch, &cl->loop, gai.addrinfo->ai_addr, cl->tls, verify, &client_ops,
                         CLIENT_MAX_FRAME, 64u * 1024 * 1024, cl);
    uv_freeaddrinfo(gai.addrinfo);
    cl->channel_started = true;
    if (rc != 0) {
        snprintf(cl->error, sizeof(cl->error), "cannot connect to %s:%d: %s", t->host, t->port,
                 uv_strerror(rc));
        return -1;
    }
    client_arm_timer(cl);
    while (!cl->open && !cl->closed && !cl->timed_out)
        uv_run(&cl->loop, UV_RUN_ONCE);
    uv_timer_stop(&cl->timer);
    if (!cl->open) {
        if (cl->timed_out)
            snprintf(cl->error, sizeof(cl->error), "no answer from %s:%d (timed out)", t->host,
                     t->port);
        return -1;
    }

    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__Hello hello = CARREL__HELLO__INIT;
    hello.has_protocol_version = 1;
    hello.protocol_version = CARREL__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    hello.client_name = "carrel";
    req.body_case = CARREL__REQUEST__BODY_HELLO;
    req.hello = &hello;
    Carrel__Response *resp = NULL;
    if (client_call(cl, &req, &resp) != 0)
        return -1;
    int ok = resp->status == CARREL__STATUS__STATUS_OK;
    if (!ok)
        snprintf(cl->error, sizeof(cl->error), "the server refused the connection: %s",
                 resp->message ? resp->message : "?");
    else if (resp->body_case == CARREL__RESPONSE__BODY_HELLO && resp->hello->has_max_frame_bytes)
        cl->max_frame = resp->hello->max_frame_bytes;
    carrel__response__free_unpacked(resp, NULL);
    return ok ? 0 : -1;
}

int client_idle(client_t *cl)
{
    memset(cl, 0, sizeof(*cl));
    if (uv_loop_init(&cl->loop) != 0) {
        snprintf(cl->error, sizeof(cl->error), "cannot create an event loop");
        return -1;
    }
    cl->loop_ready = true;
    uv_timer_init(&cl->loop, &cl->timer);
    cl->timer.data = cl;
    cl->closed = true;
    snprintf(cl->error, sizeof(cl->error), "offline");
    return 0;
}

uint64_t client_send(client_t *cl, Carrel__Request *req)
{
    if (!cl->open) {
        if (cl->error[0] == '\0')
            snprintf(cl->error, sizeof(cl->error), "not connected");
        return 0;
    }
    req->has_id = 1;
    req->id = ++cl->next_id;
    if (channel_send(&cl->ch, &req->base) != 0) {
        snprintf(cl->error, sizeof(cl->error), "cannot send: the connection is closing");
        return 0;
    }
    return req->id;
}

int client_wait(client_t *cl, uint64_t id, Carrel__Response **resp)
{
    client_arm_timer(cl);
    Carrel__Response *r;
    while ((r = client_take(cl, id)) == NULL && !cl->closed && !cl->timed_out)
        uv_run(&cl->loop, UV_RUN_ONCE);
    uv_timer_stop(&cl->timer);
    if (r == NULL) {
        if (cl->timed_out)
            snprintf(cl->error, sizeof(cl->error), "no answer within %llu seconds",
                     (unsigned long long)(cl->timeout_ms / 1000));
        return -1;
    }
    *resp = r;
    return 0;
}

int client_call(client_t *cl, Carrel__Request *req, Carrel__Response **resp)
{
    uint64_t id = client_send(cl, req);
    if (id == 0)
        return -1;
    return client_wait(cl, id, resp);
}

void client_sleep(client_t *cl, uint64_t ms)
{
    if (!cl->loop_ready) {
        uv_sleep((unsigned)ms);
        return;
    }
    cl->timed_out = false;
    uv_timer_start(&cl->timer, client_timeout_cb, ms, 0);
    while (!cl->timed_out)
        uv_run(&cl->loop, UV_RUN_ONCE);
}

#define CLIENT_BACKOFF_FIRST_MS 500u
#define CLIENT_BACKOFF_MAX_MS   8000u

uint32_t client_retry_delay_ms(int attempt, uint32_t retry_after_ms, double r)
{
    if (r < 0 || r >= 1)
        r = 0;
    if (retry_after_ms > 0) {
        uint32_t spread = retry_after_ms / 10 < 1000 ? retry_after_ms / 10 : 1000;
        return retry_after_ms + (uint32_t)(r * (double)spread);
    }
    uint32_t d = CLIENT_BACKOFF_FIRST_MS;
    for (int i = 0; i < attempt && d < CLIENT_BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > CLIENT_BACKOFF_MAX_MS)
        d = CLIENT_BACKOFF_MAX_MS;
    return d / 2 + (uint32_t)(r * (double)(d / 2));
}

double client_random_unit(void)
{
    uint32_t x = 0;
    if (RAND_bytes((unsigned char *)&x, sizeof(x)) != 1)
        x = (uint32_t)uv_hrtime(); /* jitter only: any spread will do */
    return (double)x / 4294967296.0;
}

void client_run_once(client_t *cl)
{
    uv_run(&cl->loop, UV_RUN_ONCE);
}

int client_poll(client_t *cl, uint64_t id, Carrel__Response **resp)
{
    Carrel__Response *r = client_take(cl, id);
    if (r != NULL) {
        *resp = r;
        return 1;
    }
    return cl->closed ? -1 : 0;
}

uv_loop_t *client_loop(client_t *cl)
{
    return &cl->loop;
}

void client_abort(client_t *cl, const char *why)
{
    if (cl->closed || !cl->channel_started)
        return;
    snprintf(cl->error, sizeof(cl->error), "%s", why);
    channel_close(&cl->ch, why);
}

static void client_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void client_close(client_t *cl)
{
    if (cl->loop_ready) {
        if (cl->channel_started && !cl->closed) {
            channel_close_after_flush(&cl->ch, "client done");
            /* Give the close_notify a moment; then close whatever is left. */
            cl->timeout_ms = 2000;
            client_arm_timer(cl);
            while (!cl->closed && !cl->timed_out)
                uv_run(&cl->loop, UV_RUN_ONCE);
            if (!cl->closed)
                channel_close(&cl->ch, "client done");
        }
        uv_walk(&cl->loop, client_walk_close, NULL);
        uv_run(&cl->loop, UV_RUN_DEFAULT);
        uv_loop_close(&cl->loop);
        cl->loop_ready = false;
    }
    while (cl->inbox) {
        client_inbox_t *box = cl->inbox;
        cl->inbox = box->next;
        carrel__response__free_unpacked(box->resp, NULL);
        free(box);
    }
    if (cl->tls) {
        SSL_CTX_free(cl->tls);
        cl->tls = NULL;
    }
}
