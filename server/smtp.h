/*
 * smtp: email to one relay through libcurl's SMTP, for notices.
 *
 * The relay may be anywhere: carreld speaks SMTP submission to it with TLS
 * (STARTTLS on port 587, or implicit TLS, "smtps", on 465), checks its
 * certificate (smtp_ca_file, else the system's store) and logs in (AUTH, as
 * smtp_user) when it asks. The relay sends the mail on.
 *
 * libcurl does the dialogue: EHLO (HELO for an old server without TLS),
 * STARTTLS, AUTH, MAIL FROM, RCPT TO, DATA, the dot-stuffing of the text and
 * the final ".", QUIT. One easy handle carries one message; the multi
 * handle keeps the connection between messages, so a batch goes over one
 * connection (libcurl opens a new one after a refusal or an error).
 *
 * Threads: libcurl's SMTP blocks in two places whatever interface is used
 * (curl issue #8555): after the data it waits for the relay's "250" inside
 * the transfer's end, and closing a connection sends QUIT and waits for the
 * answer. Neither may happen on the daemon's loop, so the multi handle lives
 * on a thread of its own, driven by a libuv loop of its own through the
 * multi socket interface (CURLMOPT_SOCKETFUNCTION → uv_poll per socket,
 * CURLMOPT_TIMERFUNCTION → uv_timer, curl_multi_socket_action). The daemon's
 * loop hands it one message at a time and hears back through a uv_async.
 * Names are resolved by libcurl's threaded resolver.
 *
 * The pure parts (addresses, headers, the message text, and how a libcurl
 * result becomes an outcome and a sentence) are exposed for the unit tests
 * in tests/unit/test_smtp.c.
 */
#ifndef CARREL_SMTP_H
#define CARREL_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <curl/curl.h>
#include <uv.h>

#include "buf.h"

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
 * libcurl then asks for SMTPUTF8 when the relay offers it.
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
 * Append the body: every line end becomes CRLF, a line longer than 998 bytes
 * is broken (between UTF-8 characters; a line starting with '.' at 997, as
 * the dot libcurl adds on the wire counts), and the text ends with CRLF.
 * No dot-stuffing: libcurl's upload does it (a "\r\n." becomes "\r\n..").
 */
__attribute__((warn_unused_result)) int smtp_body_append(struct buf *out, const char *body);
/*
 * The whole message as libcurl uploads it: From, To, Subject, Date,
 * Message-ID, Auto-Submitted, MIME-Version, Content-Type text/plain;
 * charset=UTF-8, Content-Transfer-Encoding 8bit, a blank line and the body.
 * Not dot-stuffed and without the final ".\r\n" (libcurl adds both).
 */
__attribute__((warn_unused_result)) int smtp_message_build(struct buf *out, const char *from,
                                                           const smtp_message_t *m, time_t now);

/* ---- outcomes ---- */

typedef enum {
    SMTP_SENT,      /* the relay took the message (2xx after the data) */
    SMTP_REFUSED,   /* the relay refused this message (4xx/5xx to MAIL FROM, RCPT TO, DATA
                       or the data); another message may still go */
    SMTP_BROKEN,    /* the connection failed once the message was offered (MAIL FROM sent);
                       if it failed after the data, the message may or may not have been
                       taken */
    SMTP_UNREACHED, /* the relay never saw the message: no connection, no greeting, TLS
                       or login failed. Nothing more goes on this client. */
} smtp_outcome_t;

/*
 * What the dialogue of one message showed, gathered from libcurl's debug
 * callback (smtp_trace_feed); smtp_judge turns it and libcurl's result into
 * an outcome and a sentence for logs and notice.error.
 */
typedef struct smtp_trace {
    bool connected;   /* a connection (new or reused) */
    bool greeted;     /* the relay has said something */
    bool offered;     /* MAIL FROM was sent: the relay knows of the message */
    bool answered;    /* a reply came after the last command */
    bool upload_done; /* the whole text was handed over: waiting for the final answer */
    bool expired;     /* no sign of the relay for the timeout: the connection was cut */
    bool quit;        /* libcurl said QUIT (closing after an error): the rest is not ours */
    char verb[16];    /* the last command: "MAIL FROM", "RCPT TO", "AUTH", ... */
    int code;         /* of the last reply line */
    char reply[256];  /* the last reply line, printable ASCII */
} smtp_trace_t;

/* Feed one call of CURLOPT_DEBUGFUNCTION (AUTH arguments are never kept). */
void smtp_trace_feed(smtp_trace_t *t, curl_infotype type, const char *data, size_t size);
/* The text of the message is all out; the relay's answer is awaited. */
void smtp_trace_uploaded(smtp_trace_t *t);

typedef struct smtp_where {
    const char *host;
    int port;
    unsigned timeout_s;
    const char *user; /* NULL: no login */
    const char *tls;  /* "starttls", "tls" or "none" */
} smtp_where_t;

smtp_outcome_t smtp_judge(CURLcode rc, const smtp_trace_t *t, const char *curl_error,
                          const smtp_where_t *w, char *out, size_t outlen);

/* ---- the client ---- */

typedef struct smtp_client smtp_client_t;

typedef enum { SMTP_TLS_STARTTLS, SMTP_TLS_IMPLICIT, SMTP_TLS_NONE } smtp_tls_t;

typedef struct smtp_settings {
    const char *host; /* name or address of the relay */
    int port;
    smtp_tls_t tls;
    const char *user;     /* NULL: no AUTH */
    const char *password; /* with user */
    const char *ca_file;  /* NULL: the system's store */
    const char *helo;     /* our name in EHLO/HELO */
    const char *from;     /* envelope sender and From: */
    unsigned timeout_ms;  /* each wait for the relay (connect, every answer) */
} smtp_settings_t;

typedef void (*smtp_send_cb)(smtp_client_t *c, smtp_outcome_t outcome, const char *error,
                             void *arg);
typedef void (*smtp_closed_cb)(void *arg);

/*
 * Start the mail thread (nothing is connected yet: the first message
 * connects). The settings are copied. NULL with a sentence in err when the
 * thread or libcurl cannot start. curl_global_init must have run.
 */
smtp_client_t *smtp_open(uv_loop_t *loop, const smtp_settings_t *s, char *err, size_t errlen);
/*
 * Send one message. Returns 0 and later calls cb once, on the loop; or -1
 * with a sentence in err when the message cannot be sent here (a bad
 * address, a client that is busy, broken or closing) and no callback is made.
 */
__attribute__((warn_unused_result)) int smtp_send(smtp_client_t *c, const smtp_message_t *m,
                                                  smtp_send_cb cb, void *arg, char *err,
                                                  size_t errlen);
/* True once the client should carry no more messages (after BROKEN or UNREACHED). */
bool smtp_broken(const smtp_client_t *c);
/*
 * Close. polite: let the message in hand finish, then say QUIT (on the mail
 * thread) and close. Not polite: drop the message in hand and every
 * connection at once (their sockets are shut down, so no wait of libcurl's
 * can last). No send callback is made after this. May be called again, with
 * polite false, to cut a polite close short; the last cb given is the one
 * called. cb runs once the thread has ended, from the loop; then c is gone.
 */
void smtp_close(smtp_client_t *c, bool polite, smtp_closed_cb cb, void *arg);

#endif
