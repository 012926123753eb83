/*
 * Unit tests for the pure parts of server/smtp.c: addresses, the Date
 * header, header encoding (RFC 2047 words and folding), the body (CRLF, no
 * dot-stuffing: libcurl does it, long lines), the whole message, and how
 * libcurl's result and the dialogue seen by its debug callback become an
 * outcome and a sentence (smtp_trace_feed, smtp_judge).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp.h"

/* ---- helpers ---- */

static char *buf_text(struct buf *b)
{
    char *s = malloc(b->len + 1);
    assert_non_null(s);
    if (b->len)
        memcpy(s, b->data, b->len);
    s[b->len] = '\0';
    return s;
}

static char *header(const char *name, const char *value)
{
    struct buf b = BUF_INIT;
    assert_int_equal(smtp_header_append(&b, name, value), 0);
    char *s = buf_text(&b);
    buf_free(&b);
    return s;
}

static char *body(const char *text)
{
    struct buf b = BUF_INIT;
    assert_int_equal(smtp_body_append(&b, text), 0);
    char *s = buf_text(&b);
    buf_free(&b);
    return s;
}

static int b64_value(char c)
{
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(alphabet, c);
    return p && c ? (int)(p - alphabet) : -1;
}

/* Decode the encoded words of a header back into its text. */
static char *decode_words(const char *h)
{
    char *out = calloc(strlen(h) + 1, 1);
    size_t o = 0;
    const char *p = h;
    while ((p = strstr(p, "=?UTF-8?B?")) != NULL) {
        p += 10;
        const char *end = strstr(p, "?=");
        assert_non_null(end);
        assert_int_equal((end - p) % 4, 0);
        for (const char *q = p; q < end; q += 4) {
            int v[4];
            for (int i = 0; i < 4; i++)
                v[i] = q[i] == '=' ? 0 : b64_value(q[i]);
            for (int i = 0; i < 4; i++)
                assert_true(v[i] >= 0);
            uint32_t x =
                (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
            out[o++] = (char)(x >> 16);
            if (q[2] != '=')
                out[o++] = (char)(x >> 8 & 0xff);
            if (q[3] != '=')
                out[o++] = (char)(x & 0xff);
        }
        p = end + 2;
    }
    out[o] = '\0';
    return out;
}

static void assert_lines_at_most(const char *s, size_t max)
{
    const char *line = s;
    while (*line) {
        const char *eol = strstr(line, "\r\n");
        assert_non_null(eol);
        if ((size_t)(eol - line) > max)
            fail_msg("line of %zu characters (max %zu): %.*s", (size_t)(eol - line), max,
                     (int)(eol - line), line);
        line = eol + 2;
    }
}

/* ---- addresses and dates ---- */

static void test_addresses(void **state)
{
    (void)state;
    assert_true(smtp_address_ok("maria.garcia@example.org"));
    assert_true(smtp_address_ok("a+notices@x.y"));
    assert_true(smtp_address_ok("jos\xc3\xa9@example.org")); /* needs SMTPUTF8 */
    assert_false(smtp_address_ok(""));
    assert_false(smtp_address_ok("no-at-sign"));
    assert_false(smtp_address_ok("@example.org"));
    assert_false(smtp_address_ok("user@"));
    assert_false(smtp_address_ok("a@b@c"));
    assert_false(smtp_address_ok("a b@example.org"));
    assert_false(smtp_address_ok("a@example.org>\r\nRCPT TO:<victim@example.org"));
    assert_false(smtp_address_ok("a>b@example.org"));
    assert_false(smtp_address_ok("\"quoted\"@example.org"));
    char long_addr[300];
    memset(long_addr, 'a', sizeof(long_addr));
    memcpy(long_addr + 250, "@x.org", 7);
    assert_false(smtp_address_ok(long_addr));
    assert_true(smtp_is_ascii("plain"));
    assert_false(smtp_is_ascii("caf\xc3\xa9"));
}

static void test_date(void **state)
{
    (void)state;
    char d[64];
    assert_int_equal(smtp_format_date(d, sizeof(d), 0), 0);
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_int_equal(smtp_format_date(d, sizeof(d), 1772546709), 0); /* 2026-03-03 14:05:09 */
    assert_string_equal(d, "Tue, 03 Mar 2026 14:05:09 +0000");
    assert_int_equal(smtp_format_date(d, 10, 0), -1);
}

/* ---- headers ---- */

static void test_header_ascii(void **state)
{
    (void)state;
    char *h = header("Subject", "Your hold is ready: Middlemarch");
    assert_string_equal(h, "Subject: Your hold is ready: Middlemarch\r\n");
    free(h);
    /* No header injection: line breaks in a value become spaces. */
    h = header("Subject", "Hi\r\nBcc: everyone@example.org");
    assert_string_equal(h, "Subject: Hi  Bcc: everyone@example.org\r\n");
    free(h);
    h = header("Subject", "");
    assert_string_equal(h, "Subject: \r\n");
    free(h);
}

static void test_header_folding(void **state)
{
    (void)state;
    const char *title = "Due soon: A Very Long Title About The History Of Public Libraries In "
                        "The Northeastern United States And Their Patrons, Volume Two";
    char *h = header("Subject", title);
    assert_lines_at_most(h, 78);
    /* Unfolding (removing CRLF before the space) gives the text back. */
    char *unfolded = calloc(strlen(h) + 1, 1);
    size_t o = 0;
    for (const char *p = h; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n' && p[2] == ' ') {
            p++;
            continue;
        }
        unfolded[o++] = *p;
    }
    char want[300];
    snprintf(want, sizeof(want), "Subject: %s\r\n", title);
    assert_string_equal(unfolded, want);
    assert_null(strstr(h, "=?"));
    free(unfolded);
    free(h);
}

static void test_header_encoded_words(void **state)
{
    (void)state;
    const char *subject = "Your hold is ready: Caf\xc3\xa9 au lait \xe2\x80\x94 "
                          "\xe6\x9d\xb1\xe4\xba\xac\xe3\x81\xae\xe5\xa4\x9c\xe3\x81\xa8"
                          "\xe6\x9c\x9d \xf0\x9f\x93\x9a and a long tail of text to split";
    char *h = header("Subject", subject);
    assert_true(strncmp(h, "Subject: =?UTF-8?B?", 19) == 0);
    assert_lines_at_most(h, 76);
    /* Every encoded word decodes to whole UTF-8 characters: none starts with a
     * continuation byte. */
    const char *p = h;
    while ((p = strstr(p, "=?UTF-8?B?")) != NULL) {
        const char *end = strstr(p, "?=");
        char one[200];
        snprintf(one, sizeof(one), "%.*s", (int)(end + 2 - p), p);
        char *text = decode_words(one);
        assert_true(((unsigned char)text[0] & 0xC0) != 0x80);
        free(text);
        p = end + 2;
    }
    char *decoded = decode_words(h);
    assert_string_equal(decoded, subject);
    free(decoded);
    free(h);
}

/* ASCII that looks like an encoded word is encoded, so no reader decodes it. */
static void test_header_lookalike(void **state)
{
    (void)state;
    char *h = header("Subject", "=?UTF-8?B?SGk=?=");
    assert_true(strncmp(h, "Subject: =?UTF-8?B?", 19) == 0);
    char *decoded = decode_words(h);
    assert_string_equal(decoded, "=?UTF-8?B?SGk=?=");
    free(decoded);
    free(h);
}

/* ---- body ---- */

static void test_body_line_ends(void **state)
{
    (void)state;
    char *b = body("Dear Maria,\n\nIt is ready.\r\nThanks\rBye");
    assert_string_equal(b, "Dear Maria,\r\n\r\nIt is ready.\r\nThanks\r\nBye\r\n");
    free(b);
    b = body("ends with a newline\n");
    assert_string_equal(b, "ends with a newline\r\n");
    free(b);
    b = body("");
    assert_string_equal(b, "");
    free(b);
    b = body("\n\n");
    assert_string_equal(b, "\r\n\r\n");
    free(b);
}

static void test_body_dots_left_to_libcurl(void **state)
{
    (void)state;
    /* libcurl's upload turns "\r\n." into "\r\n.."; doing it here too would double it. */
    char *b = body(".\n..\n.hidden\nnot.at.start\n. \n");
    assert_string_equal(b, ".\r\n..\r\n.hidden\r\nnot.at.start\r\n. \r\n");
    free(b);
    /* Every line ends in CRLF, which is what libcurl's escaping looks for. */
    b = body("first\n.\nlast");
    assert_string_equal(b, "first\r\n.\r\nlast\r\n");
    free(b);
}

static void test_body_long_lines(void **state)
{
    (void)state;
    /* 2500 bytes of 2-byte characters: broken between characters, each line <= 998. */
    size_t n = 2500;
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i += 2) {
        text[i] = (char)0xc3;
        text[i + 1] = (char)0xa9;
    }
    text[n] = '\0';
    char *b = body(text);
    assert_lines_at_most(b, 998);
    const char *line = b;
    size_t total = 0;
    while (*line) {
        const char *eol = strstr(line, "\r\n");
        assert_true(((unsigned char)line[0] & 0xC0) != 0x80);
        total += (size_t)(eol - line);
        line = eol + 2;
    }
    assert_int_equal(total, n);
    free(b);
    /* A long line starting with a dot: the dot libcurl adds counts toward the limit. */
    memset(text, '.', n);
    b = body(text);
    assert_lines_at_most(b, 997);
    free(b);
    free(text);
}

/* ---- the whole message ---- */

static void test_message(void **state)
{
    (void)state;
    smtp_message_t m = {.to = "maria@example.org",
                        .subject = "Your hold is ready: Caf\xc3\xa9",
                        .body = "Dear Maria,\n\n\"Caf\xc3\xa9\" is waiting.\n.\n",
                        .message_id = "notice-7.1@library.example.org"};
    struct buf b = BUF_INIT;
    assert_int_equal(smtp_message_build(&b, "library@library.example.org", &m, 0), 0);
    char *s = buf_text(&b);
    buf_free(&b);
    const char *want_head = "From: library@library.example.org\r\n"
                            "To: maria@example.org\r\n"
                            "Subject: =?UTF-8?B?";
    assert_true(strncmp(s, want_head, strlen(want_head)) == 0);
    assert_non_null(strstr(s, "\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\n"));
    assert_non_null(strstr(s, "\r\nMessage-ID: <notice-7.1@library.example.org>\r\n"));
    assert_non_null(strstr(s, "\r\nMIME-Version: 1.0\r\n"));
    assert_non_null(strstr(s, "\r\nContent-Type: text/plain; charset=UTF-8\r\n"));
    assert_non_null(strstr(s, "\r\nContent-Transfer-Encoding: 8bit\r\n"));
    /* Not stuffed, no end-of-data mark: libcurl adds both. */
    const char *want_tail = "\r\n\r\nDear Maria,\r\n\r\n\"Caf\xc3\xa9\" is waiting.\r\n.\r\n";
    size_t n = strlen(s), t = strlen(want_tail);
    assert_true(n > t);
    assert_string_equal(s + n - t, want_tail);
    assert_null(strstr(s, "\r\n..\r\n"));
    free(s);

    /* No Message-ID given: one is made with the sender's domain. */
    m.message_id = NULL;
    m.subject = "plain";
    struct buf b2 = BUF_INIT;
    assert_int_equal(smtp_message_build(&b2, "library@example.net", &m, 0), 0);
    s = buf_text(&b2);
    buf_free(&b2);
    assert_non_null(strstr(s, "Message-ID: <carrel."));
    assert_non_null(strstr(s, "@example.net>\r\n"));
    assert_non_null(strstr(s, "\r\nSubject: plain\r\n"));
    free(s);
}

/* ---- outcomes ---- */

static void feed(smtp_trace_t *t, curl_infotype type, const char *line)
{
    smtp_trace_feed(t, type, line, strlen(line));
}

/* The dialogue of a message that reached RCPT TO on a new connection. */
static void dialogue_to_rcpt(smtp_trace_t *t, const char *rcpt_reply)
{
    memset(t, 0, sizeof(*t));
    feed(t, CURLINFO_TEXT, "Connected to 127.0.0.1 (127.0.0.1) port 587 (#0)\n");
    feed(t, CURLINFO_HEADER_IN, "220 relay.example.org ESMTP\r\n");
    feed(t, CURLINFO_HEADER_OUT, "EHLO carreld\r\n");
    feed(t, CURLINFO_HEADER_IN, "250-relay.example.org\r\n");
    feed(t, CURLINFO_HEADER_IN, "250 STARTTLS\r\n");
    feed(t, CURLINFO_HEADER_OUT, "MAIL FROM:<library@example.org>\r\n");
    feed(t, CURLINFO_HEADER_IN, "250 2.1.0 Ok\r\n");
    feed(t, CURLINFO_HEADER_OUT, "RCPT TO:<maria@example.org>\r\n");
    if (rcpt_reply)
        feed(t, CURLINFO_HEADER_IN, rcpt_reply);
}

static const smtp_where_t where = {
    .host = "127.0.0.1", .port = 587, .timeout_s = 30, .user = "carreld", .tls = "starttls"};

static void test_trace_dialogue(void **state)
{
    (void)state;
    smtp_trace_t t;
    dialogue_to_rcpt(&t, "550 5.1.1 <maria@example.org>: Recipient address rejected\r\n");
    assert_true(t.connected && t.greeted && t.offered && t.answered);
    assert_false(t.upload_done);
    assert_string_equal(t.verb, "RCPT TO");
    assert_int_equal(t.code, 550);
    assert_string_equal(t.reply, "550 5.1.1 <maria@example.org>: Recipient address rejected");
    /* Not printable bytes in a reply are masked. */
    feed(&t, CURLINFO_HEADER_IN, "451 bad\x01\xff\r\n");
    assert_string_equal(t.reply, "451 bad??");
    smtp_trace_uploaded(&t);
    assert_true(t.upload_done);
    assert_false(t.answered);
}

static void test_trace_keeps_no_secret(void **state)
{
    (void)state;
    smtp_trace_t t;
    memset(&t, 0, sizeof(t));
    feed(&t, CURLINFO_HEADER_OUT, "AUTH LOGIN\r\n");
    feed(&t, CURLINFO_HEADER_IN, "334 VXNlcm5hbWU6\r\n");
    feed(&t, CURLINFO_HEADER_OUT, "c2VjcmV0LXBhc3N3b3Jk\r\n");
    assert_string_equal(t.verb, "AUTH");
    assert_null(strstr(t.reply, "c2VjcmV0"));
    assert_false(t.offered);
}

static void test_judge_sent_and_refused(void **state)
{
    (void)state;
    smtp_trace_t t;
    char out[600];
    dialogue_to_rcpt(&t, "250 2.1.5 Ok\r\n");
    assert_int_equal(smtp_judge(CURLE_OK, &t, "", &where, out, sizeof(out)), SMTP_SENT);

    dialogue_to_rcpt(&t, "550 5.1.1 <maria@example.org>: Recipient address rejected\r\n");
    assert_int_equal(smtp_judge(CURLE_SEND_ERROR, &t, "RCPT failed: 550", &where, out, sizeof(out)),
                     SMTP_REFUSED);
    assert_string_equal(out, "RCPT TO refused: 550 5.1.1 <maria@example.org>: Recipient "
                             "address rejected");

    /* A 421 ends the session: not this message's fault, and no other goes on it. */
    dialogue_to_rcpt(&t, "421 4.3.2 Shutting down\r\n");
    assert_int_equal(smtp_judge(CURLE_SEND_ERROR, &t, "", &where, out, sizeof(out)), SMTP_BROKEN);
    assert_string_equal(out, "the relay 127.0.0.1:587 is closing the connection: 421 4.3.2 "
                             "Shutting down");

    /* A relay that wants a login and offered none: the relay's fault, no attempt spent. */
    memset(&t, 0, sizeof(t));
    feed(&t, CURLINFO_HEADER_IN, "220 hi\r\n");
    feed(&t, CURLINFO_HEADER_OUT, "MAIL FROM:<library@example.org>\r\n");
    feed(&t, CURLINFO_HEADER_IN, "530 5.7.0 Authentication required\r\n");
    assert_int_equal(smtp_judge(CURLE_SEND_ERROR, &t, "", &where, out, sizeof(out)),
                     SMTP_UNREACHED);
    assert_string_equal(out, "the relay 127.0.0.1:587 wants a login (it offered no AUTH we could "
                             "use): 530 5.7.0 Authentication required");

    /* Refused after the data: "The message was refused". */
    dialogue_to_rcpt(&t, "250 2.1.5 Ok\r\n");
    feed(&t, CURLINFO_HEADER_OUT, "DATA\r\n");
    feed(&t, CURLINFO_HEADER_IN, "354 go ahead\r\n");
    smtp_trace_uploaded(&t);
    feed(&t, CURLINFO_HEADER_IN, "554 5.7.1 Message rejected as spam\r\n");
    assert_int_equal(smtp_judge(CURLE_WEIRD_SERVER_REPLY, &t, "", &where, out, sizeof(out)),
                     SMTP_REFUSED);
    assert_string_equal(out, "The message was refused: 554 5.7.1 Message rejected as spam");
}

static void test_judge_unreached(void **state)
{
    (void)state;
    smtp_trace_t t;
    char out[600];
    memset(&t, 0, sizeof(t));
    assert_int_equal(
        smtp_judge(CURLE_COULDNT_CONNECT, &t, "Failed to connect", &where, out, sizeof(out)),
        SMTP_UNREACHED);
    assert_string_equal(out, "cannot connect to the relay 127.0.0.1:587: Failed to connect");

    /* A wrong password: the relay's own answer is named. */
    feed(&t, CURLINFO_TEXT, "Connected to 127.0.0.1 (127.0.0.1) port 587 (#0)\n");
    feed(&t, CURLINFO_HEADER_IN, "220 hi\r\n");
    feed(&t, CURLINFO_HEADER_OUT, "AUTH PLAIN AGNhcnJlbGQAd3Jvbmc=\r\n");
    feed(&t, CURLINFO_HEADER_IN, "535 5.7.8 Authentication credentials invalid\r\n");
    assert_int_equal(smtp_judge(CURLE_LOGIN_DENIED, &t, "", &where, out, sizeof(out)),
                     SMTP_UNREACHED);
    assert_string_equal(out, "the relay 127.0.0.1:587 refused the login of carreld: 535 5.7.8 "
                             "Authentication credentials invalid");

    /* No STARTTLS offered while smtp_tls = starttls. */
    memset(&t, 0, sizeof(t));
    feed(&t, CURLINFO_HEADER_IN, "220 hi\r\n");
    feed(&t, CURLINFO_HEADER_OUT, "EHLO carreld\r\n");
    feed(&t, CURLINFO_HEADER_IN, "250 relay\r\n");
    assert_int_equal(
        smtp_judge(CURLE_USE_SSL_FAILED, &t, "STARTTLS not supported.", &where, out, sizeof(out)),
        SMTP_UNREACHED);
    assert_non_null(strstr(out, "does not offer STARTTLS"));

    /* A certificate that does not chain to smtp_ca_file. */
    assert_int_equal(smtp_judge(CURLE_PEER_FAILED_VERIFICATION, &t,
                                "SSL certificate problem: self-signed certificate", &where, out,
                                sizeof(out)),
                     SMTP_UNREACHED);
    assert_string_equal(out, "TLS with the relay 127.0.0.1:587 failed: SSL certificate problem: "
                             "self-signed certificate");

    /* Silence before the greeting, cut by the watchdog. */
    memset(&t, 0, sizeof(t));
    feed(&t, CURLINFO_TEXT, "Connected to 127.0.0.1 (127.0.0.1) port 587 (#0)\n");
    t.expired = true;
    assert_int_equal(smtp_judge(CURLE_RECV_ERROR, &t, "", &where, out, sizeof(out)),
                     SMTP_UNREACHED);
    assert_string_equal(out, "no answer from the relay 127.0.0.1:587 within 30 s (waiting for "
                             "the greeting)");
}

static void test_judge_broken(void **state)
{
    (void)state;
    smtp_trace_t t;
    char out[600];
    /* The connection closed while the answer to MAIL FROM was awaited. */
    memset(&t, 0, sizeof(t));
    feed(&t, CURLINFO_TEXT, "Re-using existing connection #0 with host 127.0.0.1\n");
    feed(&t, CURLINFO_HEADER_OUT, "MAIL FROM:<library@example.org>\r\n");
    assert_int_equal(
        smtp_judge(CURLE_RECV_ERROR, &t, "response reading failed", &where, out, sizeof(out)),
        SMTP_BROKEN);
    assert_string_equal(out, "the relay closed the connection (waiting for the answer to MAIL "
                             "FROM)");

    /* No answer after the data: the message may or may not have been taken. */
    dialogue_to_rcpt(&t, "250 2.1.5 Ok\r\n");
    feed(&t, CURLINFO_HEADER_OUT, "DATA\r\n");
    feed(&t, CURLINFO_HEADER_IN, "354 go ahead\r\n");
    smtp_trace_uploaded(&t);
    assert_int_equal(smtp_judge(CURLE_OPERATION_TIMEDOUT, &t, "", &where, out, sizeof(out)),
                     SMTP_BROKEN);
    assert_string_equal(out, "no answer from the relay 127.0.0.1:587 within 30 s (waiting for "
                             "the relay to take the message); the relay did not confirm the "
                             "message");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_header_ascii),
        cmocka_unit_test(test_header_folding),
        cmocka_unit_test(test_header_encoded_words),
        cmocka_unit_test(test_header_lookalike),
        cmocka_unit_test(test_body_line_ends),
        cmocka_unit_test(test_body_dots_left_to_libcurl),
        cmocka_unit_test(test_body_long_lines),
        cmocka_unit_test(test_message),
        cmocka_unit_test(test_trace_dialogue),
        cmocka_unit_test(test_trace_keeps_no_secret),
        cmocka_unit_test(test_judge_sent_and_refused),
        cmocka_unit_test(test_judge_unreached),
        cmocka_unit_test(test_judge_broken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
