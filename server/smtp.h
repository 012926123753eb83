/*
 * smtp: an asynchronous SMTP client on the daemon's loop, for notices.
 *
 * It speaks plain SMTP (RFC 5321) to one relay: a mail server on localhost or
 * on the library's trusted network that accepts mail from carreld and sends
 * it on (with TLS, retries and bounces: that is the relay's trade). There is
 * no STARTTLS and no AUTH: the notice text travels in clear between carreld
 * and the relay, so the relay must not be across an untrusted network.
 *
 * Dialogue: connect (every address the host name resolves to, in turn), the
 * 220 greeting, EHLO (HELO when EHLO is refused with 5xx), then per message
 * [RSET] MAIL FROM, RCPT TO, DATA, the message, and at the end QUIT. Nothing
 * here blocks: the socket is a uv_tcp_t, names are resolved with
 * uv_getaddrinfo, and one uv_timer bounds every wait for the relay.
 *
 * The pure parts (reply parsing, the message text) are exposed for the unit
 * tests in tests/unit/test_smtp.c.
 */
#ifndef CARREL_SMTP_H
#define CARREL_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <uv.h>

#include "buf.h"

/* ---- replies ---- */

#define SMTP_LINE_MAX  2048 /* longest reply line accepted (RFC 5321 says 512) */
#define SMTP_LINES_MAX 100  /* most lines in one reply */
#define SMTP_TEXT_MAX  1024 /* text kept of one reply; the rest is dropped */

typedef struct smtp_reply {
    int code;                 /* of the complete reply */
    char text[SMTP_TEXT_MAX]; /* each line's text after the code, joined by '\n' */
    size_t text_len;
    int lines;
    bool done; /* a complete reply is here; the next feed starts another */
    char line[SMTP_LINE_MAX];
    size_t line_len;
} smtp_reply_t;

#define SMTP_REPLY_BAD  (-1) /* not an SMTP reply: the connection cannot go on */
#define SMTP_REPLY_MORE 0    /* every byte consumed, the reply is not complete yet */
#define SMTP_REPLY_DONE 1    /* a reply is complete; *used bytes were consumed */

void smtp_reply_init(smtp_reply_t *r);
/*
 * Feed bytes from the relay. Lines end with LF (CR before it is dropped);
 * each is "NNN-text" (more follow) or "NNN text" / "NNN" (the last); every
 * line of a reply must carry the same code. After SMTP_REPLY_DONE, r->code
 * and r->text hold the reply and the bytes after *used belong to the next.
 */
int smtp_reply_feed(smtp_reply_t *r, const char *data, size_t len, size_t *used);
/* Does an EHLO reply announce this extension keyword (case-insensitive)? */
bool smtp_reply_has_extension(const smtp_reply_t *r, const char *keyword);
/* "550 No such user" on one line, printable ASCII only: for logs and notice.error. */
void smtp_reply_describe(const smtp_reply_t *r, char *out, size_t outlen);

/* ---- the message ---- */

typedef struct smtp_message {
    const char *to;         /* one address: name@example.org */
    const char *subject;    /* UTF-8 */
    const char *body;       /* UTF-8, lines ending in LF or CRLF */
    const char *message_id; /* without <>; NULL: made from the time and a counter */
} smtp_message_t;

/* True if every byte is below 0x80. */
bool smtp_is_ascii(const char *s);
/*
 * Can this address go into MAIL FROM:<...> or RCPT TO:<...>? One '@' with
 * something on each side, at most 254 bytes, no spaces, control characters,
 * angle brackets or quotes. Non-ASCII (an international address) passes;
 * the relay must then announce SMTPUTF8.
 */
bool smtp_address_ok(const char *addr);
/* RFC 5322 date in UTC: "Tue, 03 Mar 2026 14:05:09 +0000". Returns 0 or -1. */
int smtp_format_date(char *out, size_t outlen, time_t t);
/*
 * Append "Name: value" CRLF. Control characters in value become spaces (no
 * header injection). A value with non-ASCII bytes (or "=?", which a reader
 * would take for an encoded word) is written as RFC 2047 encoded words
 * (=?UTF-8?B?...?=), split between characters, one per folded line, every
 * line at most 76 characters; a long ASCII value is folded at spaces.
 */
__attribute__((warn_unused_result)) int smtp_header_append(struct buf *out, const char *name,
                                                           const char *value);
/*
 * Append the body for DATA: every line end becomes CRLF, a line starting
 * with '.' gets another '.' (dot-stuffing), a line longer than 998 bytes is
 * broken (between UTF-8 characters), and the text ends with CRLF. The
 * terminating ".\r\n" is not added.
 */
__attribute__((warn_unused_result)) int smtp_body_append(struct buf *out, const char *body);
/*
 * The whole DATA content: From, To, Subject, Date, Message-ID, MIME-Version,
 * Content-Type text/plain; charset=UTF-8, Content-Transfer-Encoding 8bit, a
 * blank line, the body, and the terminating ".\r\n".
 */
__attribute__((warn_unused_result)) int smtp_message_build(struct buf *out, const char *from,
                                                           const smtp_message_t *m, time_t now);

/* ---- the client ---- */

typedef struct smtp_client smtp_client_t;

typedef struct smtp_settings {
    const char *host; /* name or address of the relay */
    int port;
    const char *helo; /* our name in EHLO/HELO */
    const char *from; /* envelope sender and From: */
    unsigned timeout_ms;
} smtp_settings_t;

typedef enum {
    SMTP_SENT,    /* the relay took the message (2xx after the data) */
    SMTP_REFUSED, /* the relay refused this message; the connection can send another */
    SMTP_BROKEN,  /* the connection failed; if it failed after the data was sent, the
                     message may or may not have been taken */
} smtp_outcome_t;

typedef void (*smtp_open_cb)(smtp_client_t *c, bool ok, const char *error, void *arg);
typedef void (*smtp_send_cb)(smtp_client_t *c, smtp_outcome_t outcome, const char *error,
                             void *arg);
typedef void (*smtp_closed_cb)(void *arg);

/*
 * Connect and greet. The settings are copied. Returns the client and later
 * calls cb once: ok, or not with a sentence saying why (the caller then
 * closes the client). NULL when out of memory (no callback).
 */
smtp_client_t *smtp_open(uv_loop_t *loop, const smtp_settings_t *s, smtp_open_cb cb, void *arg);
/*
 * Send one message on an open client (RSET first unless it is the first).
 * Returns 0 and later calls cb once; or -1 with a sentence in err when the
 * message cannot be sent here (a bad address, an international address the
 * relay cannot take, a broken connection) and no callback is made.
 */
__attribute__((warn_unused_result)) int smtp_send(smtp_client_t *c, const smtp_message_t *m,
                                                  smtp_send_cb cb, void *arg, char *err,
                                                  size_t errlen);
/* True once the connection cannot carry another message. */
bool smtp_broken(const smtp_client_t *c);
/*
 * Close. polite: say QUIT and wait (bounded by the timeout) for the answer
 * when the connection is healthy and idle; otherwise close at once. No open
 * or send callback is made after this. May be called again, with polite
 * false, to cut a polite close short; the last cb given is the one called.
 * cb runs once every handle is closed, from the loop; then c is gone.
 */
void smtp_close(smtp_client_t *c, bool polite, smtp_closed_cb cb, void *arg);

#endif
