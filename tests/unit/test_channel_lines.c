/*
 * Unit tests for common/channel.c in line mode over plain TCP (ctx NULL),
 * as the SIP2 gateway uses it: both ends are channels on one libuv loop,
 * connected over the loopback interface. No TLS context exists for the
 * plain tests, so a plain channel that touched the TLS engine would crash.
 * One test runs line mode over TLS (sip_tls), with a self-signed
 * certificate for "localhost" made here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "channel.h"

typedef struct {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t timer;
    channel_t server, client;
    int server_opened, client_opened, server_closed, client_closed;
    char lines[16][64]; /* lines the server got */
    int nlines;
    uint32_t too_long[4];
    int ntoo_long;
    char answers[4][64]; /* lines the client got */
    int nanswers;
    bool pause_on_first;    /* the server pauses after its first line */
    bool answer_at_once;    /* pause, answer and resume inside on_frame, as the gateway may */
    int lines_when_resumed; /* how many lines it had when the timer resumed it */
    SSL_CTX *server_tls, *client_tls; /* NULL: plain TCP */
    const char *send_on_open;         /* what the client sends once connected */
    size_t send_len;
} fixture_t;

static void server_on_open(channel_t *ch)
{
    fixture_t *f = ch->data;
    f->server_opened++;
}

static void server_on_line(channel_t *ch, const uint8_t *line, size_t len)
{
    fixture_t *f = ch->data;
    if (f->answer_at_once) {
        /* The payload must stay valid after a resume inside on_frame (ASan
         * would see a freed or moved buffer when it is copied below). */
        channel_pause(ch);
        char answer[80];
        int n = snprintf(answer, sizeof(answer), "ok %.*s\r", (int)len, (const char *)line);
        assert_int_equal(channel_send_raw(ch, answer, (size_t)n), 0);
        channel_resume(ch);
        assert_true(f->nlines < 16 && len < 64);
        memcpy(f->lines[f->nlines], line, len);
        f->lines[f->nlines][len] = '\0';
        f->nlines++;
        return;
    }
    assert_true(f->nlines < 16 && len < 64);
    memcpy(f->lines[f->nlines], line, len);
    f->lines[f->nlines][len] = '\0';
    f->nlines++;
    if (f->pause_on_first && f->nlines == 1)
        channel_pause(ch);
    /* Answer each line, as the gateway does. */
    char answer[80];
    int n = snprintf(answer, sizeof(answer), "ok %.*s\r\n", (int)len, (const char *)line);
    assert_int_equal(channel_send_raw(ch, answer, (size_t)n), 0);
}

static void server_on_too_large(channel_t *ch, uint32_t bytes)
{
    fixture_t *f = ch->data;
    assert_true(f->ntoo_long < 4);
    f->too_long[f->ntoo_long++] = bytes;
}

static void server_on_close(channel_t *ch, const char *reason)
{
    fixture_t *f = ch->data;
    (void)reason;
    f->server_closed++;
}

static const channel_ops_t server_ops = {
    .on_open = server_on_open,
    .on_frame = server_on_line,
    .on_frame_too_large = server_on_too_large,
    .on_close = server_on_close,
};

static void client_on_open(channel_t *ch)
{
    fixture_t *f = ch->data;
    f->client_opened++;
    assert_int_equal(channel_send_raw(ch, f->send_on_open, f->send_len), 0);
}

/* The client closes once it has heard as many answers as the server got lines. */
static void client_on_line(channel_t *ch, const uint8_t *line, size_t len)
{
    fixture_t *f = ch->data;
    assert_true(f->nanswers < 4 && len < 64);
    memcpy(f->answers[f->nanswers], line, len);
    f->answers[f->nanswers][len] = '\0';
    f->nanswers++;
    if (f->nanswers == 3)
        channel_close(ch, "done");
}

static void client_on_close(channel_t *ch, const char *reason)
{
    fixture_t *f = ch->data;
    (void)reason;
    f->client_closed++;
    uv_close((uv_handle_t *)&f->listener, NULL);
}

static const channel_ops_t client_ops = {
    .on_open = client_on_open,
    .on_frame = client_on_line,
    .on_close = client_on_close,
};

static void on_connection(uv_stream_t *listener, int status)
{
    fixture_t *f = listener->data;
    assert_int_equal(status, 0);
    assert_int_equal(channel_accept(&f->server, &f->loop, listener, f->server_tls, &server_ops, 16,
                                    64 * 1024, f),
                     0);
    channel_set_lines(&f->server, '\r');
    /* Plain: open as soon as accepted; TLS: once the handshake is done. */
    assert_int_equal(f->server_opened, f->server_tls ? 0 : 1);
}

static void resume_cb(uv_timer_t *t)
{
    fixture_t *f = t->data;
    f->lines_when_resumed = f->nlines;
    uv_close((uv_handle_t *)t, NULL);
    channel_resume(&f->server);
}

/* The server's end closes when the client's does (EOF); then the loop ends. */
static void run(fixture_t *f)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_tcp_init(&f->loop, &f->listener), 0);
    f->listener.data = f;
    struct sockaddr_in addr;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    assert_int_equal(uv_tcp_bind(&f->listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 8, on_connection), 0);
    int len = sizeof(addr);
    assert_int_equal(uv_tcp_getsockname(&f->listener, (struct sockaddr *)&addr, &len), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->timer), 0);
    f->timer.data = f;
    if (f->pause_on_first)
        uv_timer_start(&f->timer, resume_cb, 50, 0);
    else
        uv_close((uv_handle_t *)&f->timer, NULL);
    assert_int_equal(channel_connect(&f->client, &f->loop, (const struct sockaddr *)&addr,
                                     f->client_tls, f->client_tls ? "localhost" : NULL, &client_ops,
                                     64, 64 * 1024, f),
                     0);
    channel_set_lines(&f->client, '\r');
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(f->client_opened, 1);
    assert_int_equal(f->server_opened, 1);
    assert_int_equal(f->client_closed, 1);
    assert_int_equal(f->server_closed, 1);
}

static void test_lines_both_ways(void **state)
{
    (void)state;
    fixture_t f = {0};
    f.send_on_open = "\n9900302.00\r\n2300\n\r\r\r1700x\r";
    f.send_len = strlen(f.send_on_open);
    run(&f);
    assert_int_equal(f.nlines, 3);
    assert_string_equal(f.lines[0], "9900302.00");
    assert_string_equal(f.lines[1], "2300");
    assert_string_equal(f.lines[2], "1700x");
    assert_int_equal(f.nanswers, 3);
    assert_string_equal(f.answers[0], "ok 9900302.00");
    assert_string_equal(f.answers[2], "ok 1700x");
    assert_int_equal(f.ntoo_long, 0);
}

static void test_overlong_line_keeps_channel_open(void **state)
{
    (void)state;
    fixture_t f = {0};
    f.send_on_open = "a\r0123456789abcdefghijklmnopqrstuvwxyz\rb\rc\r";
    f.send_len = strlen(f.send_on_open);
    run(&f);
    assert_int_equal(f.ntoo_long, 1);
    assert_int_equal(f.too_long[0], 36);
    assert_int_equal(f.nlines, 3);
    assert_string_equal(f.lines[0], "a");
    assert_string_equal(f.lines[1], "b");
    assert_string_equal(f.lines[2], "c");
    assert_int_equal(f.nanswers, 3);
}

static void test_paused_channel_keeps_its_lines(void **state)
{
    (void)state;
    fixture_t f = {0};
    f.pause_on_first = true;
    f.send_on_open = "one\rtwo\rthree\r";
    f.send_len = strlen(f.send_on_open);
    run(&f);
    assert_int_equal(f.lines_when_resumed, 1); /* nothing while paused */
    assert_int_equal(f.nlines, 3);
    assert_string_equal(f.lines[1], "two");
    assert_string_equal(f.lines[2], "three");
    assert_string_equal(f.answers[2], "ok three");
}

static void test_resume_inside_on_frame(void **state)
{
    (void)state;
    fixture_t f = {0};
    f.answer_at_once = true;
    f.send_on_open = "first\rsecond\rthird\r";
    f.send_len = strlen(f.send_on_open);
    run(&f);
    assert_int_equal(f.nlines, 3);
    assert_string_equal(f.lines[0], "first");
    assert_string_equal(f.lines[2], "third");
    assert_string_equal(f.answers[1], "ok second");
}

/* A self-signed certificate for "localhost" and its key, as PEM files in dir. */
static void make_certificate(const char *dir, char *cert_path, char *key_path, size_t n)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"localhost", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    const char *exts[][2] = {{"basicConstraints", "critical,CA:TRUE"},
                             {"subjectAltName", "DNS:localhost"}};
    for (size_t i = 0; i < 2; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    snprintf(cert_path, n, "%s/cert.pem", dir);
    snprintf(key_path, n, "%s/key.pem", dir);
    FILE *fc = fopen(cert_path, "w"), *fk = fopen(key_path, "w");
    assert_non_null(fc);
    assert_non_null(fk);
    assert_int_equal(PEM_write_X509(fc, x), 1);
    assert_int_equal(PEM_write_PrivateKey(fk, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(fc), 0);
    assert_int_equal(fclose(fk), 0);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void test_lines_over_tls(void **state)
{
    (void)state;
    char dir[] = "/tmp/carrel-test-channel-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[256], key[256], err[256];
    make_certificate(dir, cert, key, sizeof(cert));
    fixture_t f = {0};
    f.server_tls = tls_server_ctx_new(cert, key, NULL, false, err, sizeof(err));
    assert_non_null(f.server_tls);
    f.client_tls = tls_client_ctx_new(cert, NULL, NULL, err, sizeof(err));
    assert_non_null(f.client_tls);
    f.send_on_open = "9900302.00\r\n"
                     "0123456789abcdefghij\r"
                     "2300\r1700x\r";
    f.send_len = strlen(f.send_on_open);
    run(&f);
    assert_int_equal(f.nlines, 3);
    assert_string_equal(f.lines[0], "9900302.00");
    assert_string_equal(f.lines[1], "2300");
    assert_string_equal(f.lines[2], "1700x");
    assert_int_equal(f.ntoo_long, 1);
    assert_int_equal(f.too_long[0], 20);
    assert_string_equal(f.answers[2], "ok 1700x");
    SSL_CTX_free(f.server_tls);
    SSL_CTX_free(f.client_tls);
    assert_int_equal(unlink(cert), 0);
    assert_int_equal(unlink(key), 0);
    assert_int_equal(rmdir(dir), 0);
}

/*
 * Backpressure in line mode: a peer sends many short lines at once and does
 * not read, and the owner answers each line at once with ANSWER_LEN bytes.
 * Delivery must stop at the high water mark (the rest waits in the decoder)
 * and go on when the output drains, so the queue never holds more than the
 * mark plus one answer, and every line is still answered in the end.
 */
#define FLOOD_LINES      3000
#define ANSWER_LEN       4096
#define FLOOD_HIGH_WATER (64 * 1024)

typedef struct {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t timer;
    channel_t server, client;
    SSL_CTX *server_tls, *client_tls;
    int lines, answers, server_closed, client_closed;
    size_t max_queued;
    char flood[FLOOD_LINES * 3];
    char answer[ANSWER_LEN];
} flood_t;

static void flood_server_line(channel_t *ch, const uint8_t *line, size_t len)
{
    flood_t *f = ch->data;
    assert_int_equal(len, 2);
    assert_memory_equal(line, "97", 2);
    f->lines++;
    assert_int_equal(channel_send_raw(ch, f->answer, sizeof(f->answer)), 0);
    size_t q = channel_queued_output(ch);
    if (q > f->max_queued)
        f->max_queued = q;
}

static void flood_server_close(channel_t *ch, const char *reason)
{
    flood_t *f = ch->data;
    (void)reason;
    f->server_closed++;
}

static const channel_ops_t flood_server_ops = {
    .on_frame = flood_server_line,
    .on_close = flood_server_close,
};

/* The client does not read at first (paused); the timer lets it. */
static void flood_client_open(channel_t *ch)
{
    flood_t *f = ch->data;
    assert_int_equal(channel_send_raw(ch, f->flood, sizeof(f->flood)), 0);
    channel_pause(ch);
}

static void flood_client_line(channel_t *ch, const uint8_t *line, size_t len)
{
    (void)ch;
    (void)line;
    (void)len;
    fail_msg("the answers are longer than the client's line limit");
}

static void flood_client_answer(channel_t *ch, uint32_t bytes)
{
    flood_t *f = ch->data;
    assert_int_equal(bytes, ANSWER_LEN - 1);
    if (++f->answers == FLOOD_LINES)
        channel_close(ch, "done");
}

static void flood_client_close(channel_t *ch, const char *reason)
{
    flood_t *f = ch->data;
    (void)reason;
    f->client_closed++;
    uv_close((uv_handle_t *)&f->listener, NULL);
}

static const channel_ops_t flood_client_ops = {
    .on_open = flood_client_open,
    .on_frame = flood_client_line,
    .on_frame_too_large = flood_client_answer,
    .on_close = flood_client_close,
};

static void flood_connection(uv_stream_t *listener, int status)
{
    flood_t *f = listener->data;
    assert_int_equal(status, 0);
    assert_int_equal(channel_accept(&f->server, &f->loop, listener, f->server_tls,
                                    &flood_server_ops, 16, FLOOD_HIGH_WATER, f),
                     0);
    channel_set_lines(&f->server, '\r');
}

static void flood_read_now(uv_timer_t *t)
{
    flood_t *f = t->data;
    uv_close((uv_handle_t *)t, NULL);
    channel_resume(&f->client);
}

static void run_flood(flood_t *f)
{
    for (size_t i = 0; i < FLOOD_LINES; i++)
        memcpy(f->flood + 3 * i, "97\r", 3);
    memset(f->answer, 'x', sizeof(f->answer) - 1);
    f->answer[sizeof(f->answer) - 1] = '\r';
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_tcp_init(&f->loop, &f->listener), 0);
    f->listener.data = f;
    struct sockaddr_in addr;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    assert_int_equal(uv_tcp_bind(&f->listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 8, flood_connection), 0);
    int len = sizeof(addr);
    assert_int_equal(uv_tcp_getsockname(&f->listener, (struct sockaddr *)&addr, &len), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->timer), 0);
    f->timer.data = f;
    uv_timer_start(&f->timer, flood_read_now, 200, 0);
    assert_int_equal(channel_connect(&f->client, &f->loop, (const struct sockaddr *)&addr,
                                     f->client_tls, f->client_tls ? "localhost" : NULL,
                                     &flood_client_ops, 64, 1024 * 1024, f),
                     0);
    channel_set_lines(&f->client, '\r');
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(f->lines, FLOOD_LINES);
    assert_int_equal(f->answers, FLOOD_LINES);
    assert_int_equal(f->client_closed, 1);
    assert_int_equal(f->server_closed, 1);
    assert_true(f->max_queued <= FLOOD_HIGH_WATER + ANSWER_LEN);
}

static void test_lines_stop_at_high_water(void **state)
{
    (void)state;
    flood_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    run_flood(f);
    free(f);
}

static void test_lines_stop_at_high_water_tls(void **state)
{
    (void)state;
    char dir[] = "/tmp/carrel-test-channel-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[256], key[256], err[256];
    make_certificate(dir, cert, key, sizeof(cert));
    flood_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->server_tls = tls_server_ctx_new(cert, key, NULL, false, err, sizeof(err));
    assert_non_null(f->server_tls);
    f->client_tls = tls_client_ctx_new(cert, NULL, NULL, err, sizeof(err));
    assert_non_null(f->client_tls);
    run_flood(f);
    SSL_CTX_free(f->server_tls);
    SSL_CTX_free(f->client_tls);
    free(f);
    assert_int_equal(unlink(cert), 0);
    assert_int_equal(unlink(key), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_both_ways),
        cmocka_unit_test(test_overlong_line_keeps_channel_open),
        cmocka_unit_test(test_paused_channel_keeps_its_lines),
        cmocka_unit_test(test_resume_inside_on_frame),
        cmocka_unit_test(test_lines_over_tls),
        cmocka_unit_test(test_lines_stop_at_high_water),
        cmocka_unit_test(test_lines_stop_at_high_water_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
