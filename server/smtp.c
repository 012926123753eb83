/*
 * smtp: see smtp.h. The first half is pure (replies, message text); the
 * second is the client, a small state machine driven by the loop: one
 * command, one reply, the next command. At most one callback (open or send)
 * waits at a time; a failure anywhere calls it with the reason and leaves the
 * client broken, to be closed by its owner.
 */
#include "smtp.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* ---------------------------------------------------------------- replies */

void smtp_reply_init(smtp_reply_t *r)
{
    r->code = 0;
    r->text[0] = '\0';
    r->text_len = 0;
    r->lines = 0;
    r->done = false;
    r->line_len = 0;
}

/* One complete line (without its line end). */
static int smtp_reply_line(smtp_reply_t *r, const char *line, size_t n)
{
    if (n < 3 || line[0] < '2' || line[0] > '5' || !isdigit((unsigned char)line[1]) ||
        !isdigit((unsigned char)line[2]))
        return SMTP_REPLY_BAD;
    char sep = n > 3 ? line[3] : ' ';
    if (sep != ' ' && sep != '-')
        return SMTP_REPLY_BAD;
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (r->lines > 0 && code != r->code)
        return SMTP_REPLY_BAD;
    if (++r->lines > SMTP_LINES_MAX)
        return SMTP_REPLY_BAD;
    r->code = code;
    const char *text = n > 4 ? line + 4 : "";
    size_t tlen = n > 4 ? n - 4 : 0;
    size_t room = sizeof(r->text) - 1 - r->text_len;
    if (r->lines > 1 && room > 0) {
        r->text[r->text_len++] = '\n';
        room--;
    }
    if (tlen > room)
        tlen = room;
    memcpy(r->text + r->text_len, text, tlen);
    r->text_len += tlen;
    r->text[r->text_len] = '\0';
    return sep == '-' ? SMTP_REPLY_MORE : SMTP_REPLY_DONE;
}

int smtp_reply_feed(smtp_reply_t *r, const char *data, size_t len, size_t *used)
{
    if (r->done)
        smtp_reply_init(r);
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        if (ch != '\n') {
            if (r->line_len >= sizeof(r->line)) {
                *used = i + 1;
                return SMTP_REPLY_BAD;
            }
            r->line[r->line_len++] = ch;
            continue;
        }
        size_t n = r->line_len;
        if (n > 0 && r->line[n - 1] == '\r')
            n--;
        r->line_len = 0;
        int rc = smtp_reply_line(r, r->line, n);
        if (rc != SMTP_REPLY_MORE) {
            *used = i + 1;
            r->done = rc == SMTP_REPLY_DONE;
            return rc;
        }
    }
    *used = len;
    return SMTP_REPLY_MORE;
}

bool smtp_reply_has_extension(const smtp_reply_t *r, const char *keyword)
{
    size_t klen = strlen(keyword);
    const char *line = strchr(r->text, '\n'); /* the first line is the server's name */
    while (line) {
        line++;
        size_t n = strcspn(line, " \n");
        if (n == klen && strncasecmp(line, keyword, klen) == 0)
            return true;
        line = strchr(line, '\n');
    }
    return false;
}

void smtp_reply_describe(const smtp_reply_t *r, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    int n = snprintf(out, outlen, "%03d", r->code);
    size_t o = n < 0 ? 0 : (size_t)n >= outlen ? outlen - 1 : (size_t)n;
    if (r->text_len > 0 && o + 1 < outlen)
        out[o++] = ' ';
    for (size_t i = 0; i < r->text_len && o + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)r->text[i];
        out[o++] = ch == '\n' ? ' ' : (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
    }
    out[o] = '\0';
}

/* ---------------------------------------------------------------- the message */

bool smtp_is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

bool smtp_address_ok(const char *addr)
{
    size_t len = strlen(addr);
    if (len < 3 || len > 254)
        return false;
    const char *at = strchr(addr, '@');
    if (at == NULL || at == addr || at[1] == '\0' || strchr(at + 1, '@'))
        return false;
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || strchr("<>\"\\,;()[]", *p))
            return false;
    return true;
}

int smtp_format_date(char *out, size_t outlen, time_t t)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
        tm.tm_mon > 11)
        return -1;
    int n =
        snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

static int smtp_base64_append(struct buf *out, const unsigned char *in, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (buf_reserve(out, (n + 2) / 3 * 4) != 0)
        return -1;
    char *o = (char *)out->data + out->len;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = alphabet[v >> 6 & 63];
        *o++ = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    out->len = (size_t)(o - (char *)out->data);
    return 0;
}

/* Back up from `end` so it does not fall inside a UTF-8 sequence (keeps end > start). */
static size_t smtp_char_boundary(const unsigned char *s, size_t start, size_t end, size_t len)
{
    size_t e = end;
    while (e > start && e < len && (s[e] & 0xC0) == 0x80)
        e--;
    return e > start ? e : end; /* not UTF-8 after all: cut where asked */
}

/*
 * Encoded words of at most 39 bytes of text each: 52 base64 characters, 64
 * with "=?UTF-8?B?" and "?=", so "Subject: " plus the first word stays
 * within the 76 characters RFC 2047 allows a line.
 */
#define SMTP_WORD_BYTES 39

static int smtp_header_encoded(struct buf *out, const unsigned char *v, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        size_t end = pos + SMTP_WORD_BYTES < len ? pos + SMTP_WORD_BYTES : len;
        end = smtp_char_boundary(v, pos, end, len);
        if ((pos > 0 && buf_append(out, "\r\n ", 3) != 0) ||
            buf_append(out, "=?UTF-8?B?", 10) != 0 || smtp_base64_append(out, v + pos, end - pos) ||
            buf_append(out, "?=", 2) != 0)
            return -1;
        pos = end;
    }
    return 0;
}

/* Fold before a space where a line would pass 78 characters. */
static int smtp_header_folded(struct buf *out, const char *v, size_t len, size_t col)
{
    size_t pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && v[end] == ' ')
            end++;
        while (end < len && v[end] != ' ')
            end++;
        size_t seg = end - pos;
        if (col + seg > 78 && pos > 0 && v[pos] == ' ') {
            if (buf_append(out, "\r\n", 2) != 0)
                return -1;
            col = 0;
        }
        if (buf_append(out, v + pos, seg) != 0)
            return -1;
        col += seg;
        pos = end;
    }
    return 0;
}

int smtp_header_append(struct buf *out, const char *name, const char *value)
{
    size_t len = strlen(value);
    unsigned char *v = malloc(len + 1);
    if (v == NULL)
        return -1;
    bool ascii = true;
    size_t word = 0, longest = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char ch = (unsigned char)value[i];
        v[i] = i < len && (ch < 0x20 || ch == 0x7f) ? ' ' : ch;
        if (ch >= 0x80)
            ascii = false;
        word = v[i] == ' ' || i == len ? 0 : word + 1;
        if (word > longest)
            longest = word;
    }
    /* "=?" would be read as an encoded word; a word past 900 bytes cannot be folded. */
    bool encode = !ascii || strstr((char *)v, "=?") != NULL || longest > 900;
    int rc = -1;
    if (buf_append(out, name, strlen(name)) == 0 && buf_append(out, ": ", 2) == 0) {
        rc = encode ? smtp_header_encoded(out, v, len)
                    : smtp_header_folded(out, (const char *)v, len, strlen(name) + 2);
        if (rc == 0)
            rc = buf_append(out, "\r\n", 2);
    }
    free(v);
    return rc;
}

int smtp_body_append(struct buf *out, const char *body)
{
    const unsigned char *s = (const unsigned char *)body;
    size_t len = strlen(body), pos = 0;
    while (pos < len) {
        size_t eol = pos;
        while (eol < len && s[eol] != '\r' && s[eol] != '\n')
            eol++;
        /* The line [pos, eol), in pieces of at most 998 bytes with the stuffed dot. */
        size_t p = pos;
        do {
            bool dot = p < eol && s[p] == '.';
            size_t max = 998 - (dot ? 1 : 0);
            size_t end = eol - p > max ? smtp_char_boundary(s, p, p + max, eol) : eol;
            if ((dot && buf_append(out, ".", 1) != 0) || buf_append(out, s + p, end - p) != 0 ||
                buf_append(out, "\r\n", 2) != 0)
                return -1;
            p = end;
        } while (p < eol);
        if (eol + 1 < len && s[eol] == '\r' && s[eol + 1] == '\n')
            pos = eol + 2;
        else
            pos = eol < len ? eol + 1 : eol; /* LF, or a lone CR */
    }
    return 0;
}

int smtp_message_build(struct buf *out, const char *from, const smtp_message_t *m, time_t now)
{
    static unsigned counter;
    char date[64];
    if (smtp_format_date(date, sizeof(date), now) != 0)
        return -1;
    const char *domain = strchr(from, '@');
    domain = domain ? domain + 1 : "localhost";
    char id[320];
    if (m->message_id)
        snprintf(id, sizeof(id), "%s", m->message_id);
    else
        snprintf(id, sizeof(id), "carrel.%lld.%u.%ld@%s", (long long)now, ++counter, (long)getpid(),
                 domain);
    if (buf_printf(out, "From: %s\r\nTo: %s\r\n", from, m->to) != 0 ||
        smtp_header_append(out, "Subject", m->subject ? m->subject : "") != 0 ||
        buf_printf(out,
                   "Date: %s\r\n"
                   "Message-ID: <%s>\r\n"
                   "Auto-Submitted: auto-generated\r\n"
                   "MIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=UTF-8\r\n"
                   "Content-Transfer-Encoding: 8bit\r\n"
                   "\r\n",
                   date, id) != 0 ||
        smtp_body_append(out, m->body ? m->body : "") != 0 || buf_append(out, ".\r\n", 3) != 0)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- the client */

typedef enum {
    S_RESOLVING,
    S_CONNECTING,
    S_GREETING,
    S_EHLO,
    S_HELO,
    S_READY,
    S_RSET,
    S_MAIL,
    S_RCPT,
    S_DATA,
    S_CONTENT,
    S_QUIT,
} smtp_state_t;

/* What we wait for in each state, for the timeout message. */
static const char *const smtp_waiting_for[] = {
    [S_RESOLVING] = "the relay's address",
    [S_CONNECTING] = "the connection",
    [S_GREETING] = "the greeting",
    [S_EHLO] = "the answer to EHLO",
    [S_HELO] = "the answer to HELO",
    [S_READY] = "nothing",
    [S_RSET] = "the answer to RSET",
    [S_MAIL] = "the answer to MAIL FROM",
    [S_RCPT] = "the answer to RCPT TO",
    [S_DATA] = "the answer to DATA",
    [S_CONTENT] = "the relay to take the message",
    [S_QUIT] = "the answer to QUIT",
};

struct smtp_client {
    uv_loop_t *loop;
    char *host;
    char *helo;
    char *from;
    int port;
    unsigned timeout_ms;
    smtp_state_t state;

    uv_getaddrinfo_t resolver;
    bool resolving;
    struct addrinfo *addrs; /* from the resolver; next_addr is the one to try next */
    struct addrinfo *next_addr;
    struct sockaddr_storage literal; /* host was an address: no resolver */
    bool literal_tried;
    char connect_error[128];

    uv_tcp_t tcp;
    bool tcp_open; /* initialised, uv_close not yet called */
    uv_connect_t connect_req;
    uv_timer_t timer;
    bool timer_open;
    int closing_handles; /* uv_close called, callback not yet run */
    char deferred_error[256];

    smtp_reply_t reply;
    char rbuf[4096];
    bool broken;
    bool closing;
    bool used; /* a message was started: RSET before the next */
    bool ext_8bitmime;
    bool ext_smtputf8;

    smtp_open_cb open_cb;
    smtp_send_cb send_cb;
    void *arg;
    struct buf content; /* the message being sent, ready for DATA */
    char *rcpt;
    bool utf8;

    smtp_closed_cb closed_cb;
    void *closed_arg;
};

typedef struct smtp_write {
    uv_write_t req;
    smtp_client_t *c;
    size_t len;
    char data[];
} smtp_write_t;

static void smtp_shutdown(smtp_client_t *c);
static void smtp_connect_next(smtp_client_t *c);

static void smtp_maybe_free(smtp_client_t *c)
{
    if (!c->closing || c->closing_handles > 0 || c->resolving || c->tcp_open || c->timer_open)
        return;
    if (c->addrs)
        uv_freeaddrinfo(c->addrs);
    buf_free(&c->content);
    smtp_closed_cb cb = c->closed_cb;
    void *arg = c->closed_arg;
    free(c->rcpt);
    free(c->host);
    free(c->helo);
    free(c->from);
    free(c);
    if (cb)
        cb(arg);
}

static void smtp_handle_closed(uv_handle_t *h)
{
    smtp_client_t *c = h->data;
    c->closing_handles--;
    smtp_maybe_free(c);
}

/* A failure that ends the connection's usefulness: tell whoever waits. */
static void smtp_fail(smtp_client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void smtp_fail(smtp_client_t *c, const char *fmt, ...)
{
    if (c->closing || c->broken)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->broken = true;
    if (c->timer_open)
        uv_timer_stop(&c->timer);
    if (c->tcp_open)
        uv_read_stop((uv_stream_t *)&c->tcp);
    bool after_data = c->state == S_CONTENT;
    smtp_open_cb ocb = c->open_cb;
    smtp_send_cb scb = c->send_cb;
    c->open_cb = NULL;
    c->send_cb = NULL;
    if (ocb)
        ocb(c, false, msg, c->arg);
    else if (scb) {
        if (after_data) {
            char more[600];
            snprintf(more, sizeof(more), "%s; the relay did not confirm the message", msg);
            scb(c, SMTP_BROKEN, more, c->arg);
        } else {
            scb(c, SMTP_BROKEN, msg, c->arg);
        }
    }
}

static void smtp_timer_restart(smtp_client_t *c);

static void smtp_on_written(uv_write_t *req, int status)
{
    smtp_write_t *w = (smtp_write_t *)req;
    smtp_client_t *c = w->c;
    free(w);
    if (status < 0 && status != UV_ECANCELED)
        smtp_fail(c, "cannot write to the relay: %s", uv_strerror(status));
}

static void smtp_write(smtp_client_t *c, const void *data, size_t len)
{
    smtp_write_t *w = malloc(sizeof(*w) + len);
    if (w == NULL) {
        smtp_fail(c, "out of memory");
        return;
    }
    w->c = c;
    w->len = len;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, smtp_on_written);
    if (rc < 0) {
        free(w);
        smtp_fail(c, "cannot write to the relay: %s", uv_strerror(rc));
        return;
    }
    smtp_timer_restart(c);
}

static void smtp_command(smtp_client_t *c, smtp_state_t next, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void smtp_command(smtp_client_t *c, smtp_state_t next, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) - 2) {
        smtp_fail(c, "command too long");
        return;
    }
    line[n++] = '\r';
    line[n++] = '\n';
    c->state = next;
    smtp_write(c, line, (size_t)n);
}

/* The message in hand was refused; the connection goes on. */
static void smtp_refuse(smtp_client_t *c, const char *what)
{
    char desc[SMTP_TEXT_MAX + 8], msg[SMTP_TEXT_MAX + 64];
    smtp_reply_describe(&c->reply, desc, sizeof(desc));
    snprintf(msg, sizeof(msg), "%s refused: %s", what, desc);
    c->state = S_READY;
    uv_timer_stop(&c->timer);
    buf_reset(&c->content);
    smtp_send_cb cb = c->send_cb;
    c->send_cb = NULL;
    if (cb)
        cb(c, SMTP_REFUSED, msg, c->arg);
}

static void smtp_mail_from(smtp_client_t *c)
{
    smtp_command(c, S_MAIL, "MAIL FROM:<%s>%s%s", c->from, c->ext_8bitmime ? " BODY=8BITMIME" : "",
                 c->utf8 ? " SMTPUTF8" : "");
}

static void smtp_opened(smtp_client_t *c)
{
    c->state = S_READY;
    uv_timer_stop(&c->timer);
    smtp_open_cb cb = c->open_cb;
    c->open_cb = NULL;
    if (cb)
        cb(c, true, NULL, c->arg);
}

static void smtp_on_reply(smtp_client_t *c)
{
    int code = c->reply.code;
    char desc[SMTP_TEXT_MAX + 8];
    smtp_reply_describe(&c->reply, desc, sizeof(desc));
    if (code == 421 && c->state != S_QUIT) {
        smtp_fail(c, "the relay is closing the connection: %s", desc);
        return;
    }
    switch (c->state) {
    case S_GREETING:
        if (code == 220)
            smtp_command(c, S_EHLO, "EHLO %s", c->helo);
        else
            smtp_fail(c, "the relay does not take mail from us: %s", desc);
        return;
    case S_EHLO:
        if (code == 250) {
            c->ext_8bitmime = smtp_reply_has_extension(&c->reply, "8BITMIME");
            c->ext_smtputf8 = smtp_reply_has_extension(&c->reply, "SMTPUTF8");
            smtp_opened(c);
        } else if (code >= 500) {
            smtp_command(c, S_HELO, "HELO %s", c->helo); /* an old server */
        } else {
            smtp_fail(c, "EHLO refused: %s", desc);
        }
        return;
    case S_HELO:
        if (code == 250)
            smtp_opened(c);
        else
            smtp_fail(c, "HELO refused: %s", desc);
        return;
    case S_RSET:
        if (code == 250)
            smtp_mail_from(c);
        else
            smtp_fail(c, "RSET refused: %s", desc);
        return;
    case S_MAIL:
        if (code / 100 == 2)
            smtp_command(c, S_RCPT, "RCPT TO:<%s>", c->rcpt);
        else
            smtp_refuse(c, "MAIL FROM");
        return;
    case S_RCPT:
        if (code / 100 == 2)
            smtp_command(c, S_DATA, "DATA");
        else
            smtp_refuse(c, "RCPT TO");
        return;
    case S_DATA:
        if (code == 354) {
            c->state = S_CONTENT;
            smtp_write(c, c->content.data, c->content.len);
        } else {
            smtp_refuse(c, "DATA");
        }
        return;
    case S_CONTENT:
        if (code / 100 == 2) {
            c->state = S_READY;
            uv_timer_stop(&c->timer);
            buf_reset(&c->content);
            smtp_send_cb cb = c->send_cb;
            c->send_cb = NULL;
            if (cb)
                cb(c, SMTP_SENT, NULL, c->arg);
        } else {
            smtp_refuse(c, "The message was");
        }
        return;
    case S_QUIT:
        smtp_shutdown(c);
        return;
    default:
        smtp_fail(c, "unexpected reply from the relay: %s", desc);
        return;
    }
}

static void smtp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    smtp_client_t *c = h->data;
    *b = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void smtp_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    smtp_client_t *c = s->data;
    if (c->closing || c->broken)
        return;
    if (nread < 0) {
        if (c->state == S_QUIT)
            smtp_shutdown(c);
        else if (nread == UV_EOF)
            smtp_fail(c, "the relay closed the connection (waiting for %s)",
                      smtp_waiting_for[c->state]);
        else
            smtp_fail(c, "reading from the relay: %s", uv_strerror((int)nread));
        return;
    }
    size_t pos = 0, len = (size_t)nread;
    while (pos < len && !c->closing && !c->broken) {
        size_t used = 0;
        int rc = smtp_reply_feed(&c->reply, b->base + pos, len - pos, &used);
        pos += used;
        if (rc == SMTP_REPLY_BAD) {
            smtp_fail(c, "the relay's answer is not SMTP");
            return;
        }
        if (rc == SMTP_REPLY_DONE)
            smtp_on_reply(c);
    }
}

static void smtp_on_timeout(uv_timer_t *t)
{
    smtp_client_t *c = t->data;
    if (c->deferred_error[0]) {
        smtp_fail(c, "%s", c->deferred_error);
        return;
    }
    if (c->state == S_QUIT) {
        smtp_shutdown(c);
        return;
    }
    smtp_fail(c, "no answer from the relay %s:%d within %u s (waiting for %s)", c->host, c->port,
              c->timeout_ms / 1000, smtp_waiting_for[c->state]);
}

static void smtp_timer_restart(smtp_client_t *c)
{
    if (c->timer_open)
        uv_timer_start(&c->timer, smtp_on_timeout, c->timeout_ms, 0);
}

/* Fail from the loop, not from inside smtp_open (whose caller has no client yet). */
static void smtp_fail_later(smtp_client_t *c, const char *msg)
{
    snprintf(c->deferred_error, sizeof(c->deferred_error), "%s", msg);
    uv_timer_start(&c->timer, smtp_on_timeout, 0, 0);
}

static void smtp_retry_closed(uv_handle_t *h);

static void smtp_on_connect(uv_connect_t *req, int status)
{
    smtp_client_t *c = req->data;
    if (c->closing || c->broken)
        return;
    if (status < 0) {
        /* The handle is reused once closed: the next address is tried from there. */
        snprintf(c->connect_error, sizeof(c->connect_error), "%s", uv_strerror(status));
        uv_timer_stop(&c->timer);
        c->tcp_open = false;
        c->closing_handles++;
        uv_close((uv_handle_t *)&c->tcp, smtp_retry_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, smtp_alloc, smtp_on_read);
    if (rc < 0) {
        smtp_fail(c, "cannot read from the relay: %s", uv_strerror(rc));
        return;
    }
    c->state = S_GREETING;
    smtp_timer_restart(c);
}

/* Try the next address; once none is left, fail with the last error. */
static void smtp_connect_next(smtp_client_t *c)
{
    const struct sockaddr *addr = NULL;
    if (c->addrs) {
        while (c->next_addr && c->next_addr->ai_socktype != SOCK_STREAM)
            c->next_addr = c->next_addr->ai_next;
        if (c->next_addr) {
            addr = c->next_addr->ai_addr;
            c->next_addr = c->next_addr->ai_next;
        }
    } else if (!c->literal_tried) {
        c->literal_tried = true;
        addr = (const struct sockaddr *)&c->literal;
    }
    if (addr == NULL) {
        smtp_fail(c, "cannot connect to the relay %s:%d: %s", c->host, c->port,
                  c->connect_error[0] ? c->connect_error : "no address");
        return;
    }
    uv_tcp_init(c->loop, &c->tcp);
    c->tcp.data = c;
    c->tcp_open = true;
    c->connect_req.data = c;
    c->state = S_CONNECTING;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp, addr, smtp_on_connect);
    if (rc < 0) {
        snprintf(c->connect_error, sizeof(c->connect_error), "%s", uv_strerror(rc));
        c->tcp_open = false;
        c->closing_handles++;
        uv_close((uv_handle_t *)&c->tcp, smtp_retry_closed);
        return;
    }
    smtp_timer_restart(c);
}

static void smtp_retry_closed(uv_handle_t *h)
{
    smtp_client_t *c = h->data;
    c->closing_handles--;
    if (c->closing)
        smtp_maybe_free(c);
    else
        smtp_connect_next(c);
}

static void smtp_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    smtp_client_t *c = req->data;
    c->resolving = false;
    if (c->closing || c->broken) {
        if (res)
            uv_freeaddrinfo(res);
        smtp_maybe_free(c);
        return;
    }
    if (status < 0) {
        smtp_fail(c, "cannot resolve the relay's name %s: %s", c->host, uv_strerror(status));
        return;
    }
    c->addrs = c->next_addr = res;
    smtp_connect_next(c);
}

smtp_client_t *smtp_open(uv_loop_t *loop, const smtp_settings_t *s, smtp_open_cb cb, void *arg)
{
    smtp_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->host = strdup(s->host);
    c->helo = strdup(s->helo);
    c->from = strdup(s->from);
    if (c->host == NULL || c->helo == NULL || c->from == NULL) {
        free(c->host);
        free(c->helo);
        free(c->from);
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->port = s->port;
    c->timeout_ms = s->timeout_ms;
    c->open_cb = cb;
    c->arg = arg;
    smtp_reply_init(&c->reply);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;

    /* An address needs no resolver (and no thread that a shutdown must wait for). */
    if (uv_ip4_addr(c->host, c->port, (struct sockaddr_in *)&c->literal) == 0 ||
        uv_ip6_addr(c->host, c->port, (struct sockaddr_in6 *)&c->literal) == 0) {
        smtp_connect_next(c);
        return c;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", c->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    c->resolver.data = c;
    c->state = S_RESOLVING;
    int rc = uv_getaddrinfo(loop, &c->resolver, smtp_on_resolved, c->host, port, &hints);
    if (rc < 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "cannot resolve the relay's name %s: %s", c->host,
                 uv_strerror(rc));
        smtp_fail_later(c, msg);
        return c;
    }
    c->resolving = true;
    smtp_timer_restart(c);
    return c;
}

int smtp_send(smtp_client_t *c, const smtp_message_t *m, smtp_send_cb cb, void *arg, char *err,
              size_t errlen)
{
    if (c->closing || c->broken || c->state != S_READY) {
        snprintf(err, errlen, "the connection to the relay is not ready");
        return -1;
    }
    if (!smtp_address_ok(m->to)) {
        snprintf(err, errlen, "'%s' is not an email address the relay can take", m->to);
        return -1;
    }
    c->utf8 = !smtp_is_ascii(m->to) || !smtp_is_ascii(c->from);
    if (c->utf8 && !c->ext_smtputf8) {
        snprintf(err, errlen,
                 "the relay does not take international addresses (it offers no SMTPUTF8)");
        return -1;
    }
    buf_reset(&c->content);
    char *rcpt = strdup(m->to);
    if (rcpt == NULL || smtp_message_build(&c->content, c->from, m, time(NULL)) != 0) {
        free(rcpt);
        buf_reset(&c->content);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(c->rcpt);
    c->rcpt = rcpt;
    c->send_cb = cb;
    c->arg = arg;
    if (c->used)
        smtp_command(c, S_RSET, "RSET");
    else
        smtp_mail_from(c);
    c->used = true;
    return 0;
}

bool smtp_broken(const smtp_client_t *c)
{
    return c->broken || c->closing;
}

static void smtp_shutdown(smtp_client_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->open_cb = NULL;
    c->send_cb = NULL;
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->resolver); /* its callback still runs, with an error */
    if (c->tcp_open) {
        c->tcp_open = false;
        c->closing_handles++;
        uv_close((uv_handle_t *)&c->tcp, smtp_handle_closed);
    }
    if (c->timer_open) {
        c->timer_open = false;
        c->closing_handles++;
        uv_close((uv_handle_t *)&c->timer, smtp_handle_closed);
    }
}

void smtp_close(smtp_client_t *c, bool polite, smtp_closed_cb cb, void *arg)
{
    c->closed_cb = cb;
    c->closed_arg = arg;
    c->open_cb = NULL;
    c->send_cb = NULL;
    if (c->closing)
        return;
    if (c->state == S_QUIT && !c->broken) {
        if (!polite)
            smtp_shutdown(c); /* cut the wait for the answer to QUIT short */
        return;
    }
    if (polite && !c->broken && c->state == S_READY && c->tcp_open) {
        smtp_command(c, S_QUIT, "QUIT");
        if (!c->broken)
            return;
    }
    smtp_shutdown(c);
}
