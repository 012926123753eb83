/*
 * Unit tests for the pure parts of server/smtp.c: reply parsing (one line,
 * several, split anywhere, malformed), EHLO extensions, addresses, the Date
 * header, header encoding (RFC 2047 words and folding), the body for DATA
 * (CRLF, dot-stuffing, long lines) and the whole message.
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

/* ---- replies ---- */

static int feed_all(smtp_reply_t *r, const char *text, size_t *used)
{
    return smtp_reply_feed(r, text, strlen(text), used);
}

static void test_reply_one_line(void **state)
{
    (void)state;
    smtp_reply_t r;
    smtp_reply_init(&r);
    size_t used = 0;
    assert_int_equal(feed_all(&r, "220 mail.example.org ESMTP ready\r\n", &used), SMTP_REPLY_DONE);
    assert_int_equal(used, 34);
    assert_int_equal(r.code, 220);
    assert_string_equal(r.text, "mail.example.org ESMTP ready");
    /* A bare code, and a bare LF line end. */
    assert_int_equal(feed_all(&r, "250\n", &used), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 250);
    assert_string_equal(r.text, "");
}

static void test_reply_multi_line(void **state)
{
    (void)state;
    smtp_reply_t r;
    smtp_reply_init(&r);
    size_t used = 0;
    const char *ehlo = "250-relay.example.org Hello\r\n"
                       "250-SIZE 33554432\r\n"
                       "250-8BITMIME\r\n"
                       "250-smtputf8\r\n"
                       "250 HELP\r\n";
    assert_int_equal(feed_all(&r, ehlo, &used), SMTP_REPLY_DONE);
    assert_int_equal(used, strlen(ehlo));
    assert_int_equal(r.code, 250);
    assert_int_equal(r.lines, 5);
    assert_string_equal(r.text, "relay.example.org Hello\nSIZE 33554432\n8BITMIME\nsmtputf8\nHELP");
    assert_true(smtp_reply_has_extension(&r, "8BITMIME"));
    assert_true(smtp_reply_has_extension(&r, "SMTPUTF8"));
    assert_true(smtp_reply_has_extension(&r, "size"));
    assert_false(smtp_reply_has_extension(&r, "STARTTLS"));
    assert_false(smtp_reply_has_extension(&r, "8BIT"));
    /* The first line is the server's name, not an extension. */
    assert_false(smtp_reply_has_extension(&r, "relay.example.org"));
    char desc[200];
    smtp_reply_describe(&r, desc, sizeof(desc));
    assert_string_equal(desc, "250 relay.example.org Hello SIZE 33554432 8BITMIME smtputf8 HELP");
}

/* Bytes may arrive one at a time; the reply is the same. */
static void test_reply_split_anywhere(void **state)
{
    (void)state;
    const char *text = "550-5.1.1 The email account that you tried to reach\r\n"
                       "550 5.1.1 does not exist.\r\n";
    smtp_reply_t r;
    smtp_reply_init(&r);
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i++) {
        size_t used = 0;
        int rc = smtp_reply_feed(&r, text + i, 1, &used);
        assert_int_equal(used, 1);
        assert_int_equal(rc, i + 1 == n ? SMTP_REPLY_DONE : SMTP_REPLY_MORE);
    }
    assert_int_equal(r.code, 550);
    char desc[200];
    smtp_reply_describe(&r, desc, sizeof(desc));
    assert_string_equal(
        desc, "550 5.1.1 The email account that you tried to reach 5.1.1 does not exist.");
}

/* Two replies in one read: the first stops where it ends, the next starts over. */
static void test_reply_two_in_one_read(void **state)
{
    (void)state;
    const char *text = "250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n";
    smtp_reply_t r;
    smtp_reply_init(&r);
    size_t used = 0;
    assert_int_equal(feed_all(&r, text, &used), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 250);
    assert_int_equal(used, 14);
    size_t used2 = 0;
    assert_int_equal(smtp_reply_feed(&r, text + used, strlen(text) - used, &used2),
                     SMTP_REPLY_DONE);
    assert_int_equal(r.code, 221);
    assert_string_equal(r.text, "2.0.0 Bye");
    assert_int_equal(used + used2, strlen(text));
}

static void test_reply_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "HTTP/1.1 400 Bad Request\r\n", /* not SMTP at all */
        "25\r\n",                       /* too short */
        "2x0 what\r\n",                 /* not digits */
        "650 no such class\r\n",        /* codes are 2xx to 5xx */
        "250_ok\r\n",                   /* neither space nor dash */
        "250-first\r\n354 second\r\n",  /* codes differ within a reply */
        "\r\n",                         /* empty line */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        smtp_reply_t r;
        smtp_reply_init(&r);
        size_t used = 0;
        if (feed_all(&r, bad[i], &used) != SMTP_REPLY_BAD)
            fail_msg("accepted: %s", bad[i]);
    }
}

static void test_reply_limits(void **state)
{
    (void)state;
    /* A line past SMTP_LINE_MAX is refused before it ends. */
    size_t n = SMTP_LINE_MAX + 10;
    char *line = malloc(n);
    memset(line, 'a', n);
    memcpy(line, "250 ", 4);
    smtp_reply_t r;
    smtp_reply_init(&r);
    size_t used = 0;
    assert_int_equal(smtp_reply_feed(&r, line, n, &used), SMTP_REPLY_BAD);
    free(line);
    /* Too many lines. */
    smtp_reply_init(&r);
    int rc = SMTP_REPLY_MORE;
    for (int i = 0; i <= SMTP_LINES_MAX && rc == SMTP_REPLY_MORE; i++)
        rc = feed_all(&r, "250-x\r\n", &used);
    assert_int_equal(rc, SMTP_REPLY_BAD);
    /* Long text is kept up to SMTP_TEXT_MAX and the reply still parses. */
    smtp_reply_init(&r);
    for (int i = 0; i < 20; i++) {
        char l[200];
        snprintf(l, sizeof(l), "250-%0150d\r\n", i);
        assert_int_equal(feed_all(&r, l, &used), SMTP_REPLY_MORE);
    }
    assert_int_equal(feed_all(&r, "250 end\r\n", &used), SMTP_REPLY_DONE);
    assert_int_equal(r.text_len, SMTP_TEXT_MAX - 1);
    assert_int_equal(strlen(r.text), SMTP_TEXT_MAX - 1);
}

/* Control bytes and non-ASCII from a relay never reach a log line or the database as such. */
static void test_reply_describe_sanitizes(void **state)
{
    (void)state;
    smtp_reply_t r;
    smtp_reply_init(&r);
    size_t used = 0;
    assert_int_equal(feed_all(&r, "554 bad\x01\x1b[31m \xc3\xa9t\xc3\xa9\r\n", &used),
                     SMTP_REPLY_DONE);
    char desc[64];
    smtp_reply_describe(&r, desc, sizeof(desc));
    assert_string_equal(desc, "554 bad??[31m ??t??");
    char tiny[6];
    smtp_reply_describe(&r, tiny, sizeof(tiny));
    assert_string_equal(tiny, "554 b");
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

static void test_body_dot_stuffing(void **state)
{
    (void)state;
    char *b = body(".\n..\n.hidden\nnot.at.start\n. \n");
    assert_string_equal(b, "..\r\n...\r\n..hidden\r\nnot.at.start\r\n.. \r\n");
    free(b);
    /* A lone dot line can never end the DATA early. */
    b = body("first\n.\nlast");
    assert_null(strstr(b, "\r\n.\r\n"));
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
    /* A long line starting with a dot: the stuffed dot counts toward the limit. */
    memset(text, '.', n);
    b = body(text);
    assert_lines_at_most(b, 998);
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
    const char *want_tail = "\r\n\r\nDear Maria,\r\n\r\n\"Caf\xc3\xa9\" is waiting.\r\n..\r\n.\r\n";
    size_t n = strlen(s), t = strlen(want_tail);
    assert_true(n > t);
    assert_string_equal(s + n - t, want_tail);
    /* Exactly one end-of-data mark, at the end. */
    assert_ptr_equal(strstr(s, "\r\n.\r\n"), s + n - 5);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_one_line),
        cmocka_unit_test(test_reply_multi_line),
        cmocka_unit_test(test_reply_split_anywhere),
        cmocka_unit_test(test_reply_two_in_one_read),
        cmocka_unit_test(test_reply_malformed),
        cmocka_unit_test(test_reply_limits),
        cmocka_unit_test(test_reply_describe_sanitizes),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_header_ascii),
        cmocka_unit_test(test_header_folding),
        cmocka_unit_test(test_header_encoded_words),
        cmocka_unit_test(test_header_lookalike),
        cmocka_unit_test(test_body_line_ends),
        cmocka_unit_test(test_body_dot_stuffing),
        cmocka_unit_test(test_body_long_lines),
        cmocka_unit_test(test_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
