/*
 * smtp: see smtp.h. Three parts: the message text (pure), how a libcurl
 * result becomes an outcome (pure), and the client: the daemon's loop side
 * (smtp_open/send/close, a uv_async for answers) and the mail thread (its own
 * uv loop driving one CURLM through the multi socket interface).
 *
 * Between the two sides, under `lock`: the message handed over (`submitted`),
 * the one finished (`finished`), the close request, the thread's end, and the
 * sockets libcurl opened (so a close that cannot wait shuts them down, which
 * ends any wait of libcurl's at once). Everything else belongs to one side.
 */
#include "smtp.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

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
        /* The line [pos, eol), in pieces of at most 998 bytes with the dot libcurl adds. */
        size_t p = pos;
        do {
            bool dot = p < eol && s[p] == '.';
            size_t max = 998 - (dot ? 1 : 0);
            size_t end = eol - p > max ? smtp_char_boundary(s, p, p + max, eol) : eol;
            if (buf_append(out, s + p, end - p) != 0 || buf_append(out, "\r\n", 2) != 0)
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
        smtp_body_append(out, m->body ? m->body : "") != 0)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- outcomes */

/* Printable ASCII of at most outlen - 1 bytes, line ends dropped. */
static void smtp_printable(char *out, size_t outlen, const char *data, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < size && o + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (ch == '\r' || ch == '\n')
            continue;
        out[o++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
    }
    out[o] = '\0';
}

/* The command a line sends, by its first word(s); NULL for anything else. */
static const char *smtp_command_verb(const char *data, size_t size)
{
    static const char *const verbs[] = {"MAIL FROM", "RCPT TO", "EHLO", "HELO", "STARTTLS", "AUTH",
                                        "DATA",      "QUIT",    "RSET", "NOOP", NULL};
    for (int i = 0; verbs[i]; i++) {
        size_t n = strlen(verbs[i]);
        if (size >= n && strncasecmp(data, verbs[i], n) == 0 &&
            (size == n || data[n] == ' ' || data[n] == ':' || data[n] == '\r'))
            return verbs[i];
    }
    return NULL;
}

void smtp_trace_feed(smtp_trace_t *t, curl_infotype type, const char *data, size_t size)
{
    if (t->quit)
        return;
    switch (type) {
    case CURLINFO_TEXT:
        /* libcurl's own words; only these two matter here. */
        if ((size >= 13 && strncmp(data, "Connected to ", 13) == 0) ||
            (size >= 26 && strncmp(data, "Re-using existing connecti", 26) == 0))
            t->connected = true;
        if (size >= 26 && strncmp(data, "Re-using existing connecti", 26) == 0)
            t->greeted = true;
        break;
    case CURLINFO_HEADER_IN: /* one reply line */
        if (size >= 3 && isdigit((unsigned char)data[0]) && isdigit((unsigned char)data[1]) &&
            isdigit((unsigned char)data[2])) {
            t->code = (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0');
        }
        smtp_printable(t->reply, sizeof(t->reply), data, size);
        t->connected = t->greeted = t->answered = true;
        break;
    case CURLINFO_HEADER_OUT: { /* one command line; AUTH's arguments are secrets */
        const char *verb = smtp_command_verb(data, size);
        if (verb == NULL)
            verb = "AUTH"; /* an AUTH continuation: the user name or password in base64 */
        if (strcmp(verb, "QUIT") == 0) {
            t->quit = true; /* what failed is what the judge must name, not the goodbye */
            break;
        }
        snprintf(t->verb, sizeof(t->verb), "%s", verb);
        if (strcmp(verb, "MAIL FROM") == 0)
            t->offered = true;
        t->answered = false;
        break;
    }
    default:
        break;
    }
}

void smtp_trace_uploaded(smtp_trace_t *t)
{
    t->upload_done = true;
    t->answered = false;
}

/* What a timeout or a closed connection interrupted. */
static const char *smtp_waiting_for(const smtp_trace_t *t, char *buf, size_t buflen)
{
    if (t->upload_done)
        return "the relay to take the message";
    if (!t->connected)
        return "the connection";
    if (t->verb[0] == '\0')
        return "the greeting";
    snprintf(buf, buflen, "the answer to %s", t->verb);
    return buf;
}

static bool smtp_is_tls_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
        return true;
    default:
        return false;
    }
}

smtp_outcome_t smtp_judge(CURLcode rc, const smtp_trace_t *t, const char *curl_error,
                          const smtp_where_t *w, char *out, size_t outlen)
{
    const char *why = curl_error && curl_error[0] ? curl_error : curl_easy_strerror(rc);
    char waiting[48];
    const char *tail = t->upload_done ? "; the relay did not confirm the message" : "";
    smtp_outcome_t lost = t->offered ? SMTP_BROKEN : SMTP_UNREACHED;
    if (rc == CURLE_OK) {
        snprintf(out, outlen, "sent");
        return SMTP_SENT;
    }
    if (t->expired)
        rc = CURLE_OPERATION_TIMEDOUT; /* our watchdog cut the connection */
    /* 421: the relay is closing the session, whatever the command was. */
    if (t->answered && t->code == 421) {
        snprintf(out, outlen, "the relay %s:%d is closing the connection: %s", w->host, w->port,
                 t->reply);
        return lost;
    }
    /* 530 to MAIL FROM: the relay wants a login (libcurl skips AUTH when the relay does
       not offer it, even with a user set): not this message's fault. */
    if (t->answered && t->code == 530 && strcmp(t->verb, "MAIL FROM") == 0) {
        snprintf(out, outlen, "the relay %s:%d wants a login (%s): %s", w->host, w->port,
                 w->user ? "it offered no AUTH we could use" : "smtp_user is not set", t->reply);
        return SMTP_UNREACHED;
    }
    /* A reply of refusal to the message's own commands: this message only. */
    if (t->offered && t->answered && t->code >= 400 && t->code <= 599 &&
        (rc == CURLE_SEND_ERROR || rc == CURLE_WEIRD_SERVER_REPLY || rc == CURLE_RECV_ERROR ||
         rc == CURLE_UPLOAD_FAILED)) {
        if (t->upload_done)
            snprintf(out, outlen, "The message was refused: %s", t->reply);
        else
            snprintf(out, outlen, "%s refused: %s", t->verb, t->reply);
        return SMTP_REFUSED;
    }
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(out, outlen, "cannot resolve the relay's name %s: %s", w->host, why);
        return SMTP_UNREACHED;
    case CURLE_COULDNT_CONNECT:
        snprintf(out, outlen, "cannot connect to the relay %s:%d: %s", w->host, w->port, why);
        return SMTP_UNREACHED;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(out, outlen, "no answer from the relay %s:%d within %u s (waiting for %s)%s",
                 w->host, w->port, w->timeout_s, smtp_waiting_for(t, waiting, sizeof(waiting)),
                 tail);
        return lost;
    case CURLE_LOGIN_DENIED:
        snprintf(out, outlen, "the relay %s:%d refused the login of %s: %s", w->host, w->port,
                 w->user ? w->user : "(no user)", t->answered ? t->reply : why);
        return SMTP_UNREACHED;
    case CURLE_USE_SSL_FAILED:
        if (strcmp(t->verb, "STARTTLS") == 0 && t->answered)
            snprintf(out, outlen, "the relay %s:%d refused STARTTLS: %s", w->host, w->port,
                     t->reply);
        else
            snprintf(out, outlen,
                     "the relay %s:%d does not offer STARTTLS; smtp_tls = %s: nothing is sent in "
                     "clear",
                     w->host, w->port, w->tls);
        return SMTP_UNREACHED;
    case CURLE_REMOTE_ACCESS_DENIED:
        snprintf(out, outlen, "the relay %s:%d does not take mail from us: %s", w->host, w->port,
                 t->answered ? t->reply : why);
        return SMTP_UNREACHED;
    case CURLE_ABORTED_BY_CALLBACK:
        snprintf(out, outlen, "the SMTP connection was dropped (shutting down)");
        return lost;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        if (!t->answered || t->upload_done) {
            snprintf(out, outlen, "the relay closed the connection (waiting for %s)%s",
                     smtp_waiting_for(t, waiting, sizeof(waiting)), tail);
            return lost;
        }
        break;
    default:
        if (smtp_is_tls_error(rc)) {
            snprintf(out, outlen, "TLS with the relay %s:%d failed: %s", w->host, w->port, why);
            return SMTP_UNREACHED;
        }
        break;
    }
    if (t->answered && t->code >= 400)
        snprintf(out, outlen, "%s: %s (the relay said: %s)", curl_easy_strerror(rc), why, t->reply);
    else
        snprintf(out, outlen, "%s: %s%s", curl_easy_strerror(rc), why, tail);
    return lost;
}

/* ---------------------------------------------------------------- the client */

#define SMTP_MAX_SOCKETS 8 /* sockets libcurl holds at once: one connection, a few tries */

typedef struct smtp_job {
    char *from; /* "<address>" */
    char *rcpt; /* "<address>" */
    struct buf text;
    size_t sent; /* bytes of text handed to libcurl */
    CURL *easy;
    struct curl_slist *rcpts;
    smtp_trace_t trace;
    struct smtp_client *client;
    char curl_error[CURL_ERROR_SIZE];
    smtp_outcome_t outcome;
    char error[600];
} smtp_job_t;

struct smtp_client {
    /* Set at open, read by both sides. */
    smtp_settings_t s; /* strings owned */
    char *url;
    smtp_where_t where;
    atomic_bool abort; /* libcurl's progress callback ends any transfer */

    /* Under lock. */
    uv_mutex_t lock;
    smtp_job_t *submitted;
    smtp_job_t *finished;
    bool quit_polite, quit_now;
    bool wake_closed; /* the mail thread is ending: `wake` may be gone */
    bool thread_done;
    curl_socket_t fds[SMTP_MAX_SOCKETS];
    int nfds;

    /* The daemon's loop. */
    uv_loop_t *loop;
    uv_async_t answer; /* the mail thread → the loop */
    uv_thread_t thread;
    bool busy, broken, closing;
    smtp_send_cb send_cb;
    void *send_arg;
    smtp_closed_cb closed_cb;
    void *closed_arg;

    /* The mail thread. */
    uv_loop_t mloop;
    uv_async_t wake; /* the loop → the mail thread */
    uv_timer_t timer;
    uv_timer_t watchdog; /* the message in hand: no sign of the relay for timeout_ms */
    CURLM *multi;
    smtp_job_t *active;
    bool winding_down;
};

static void smtp_job_free(smtp_job_t *j)
{
    if (j == NULL)
        return;
    if (j->easy)
        curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->rcpts);
    buf_free(&j->text);
    free(j->from);
    free(j->rcpt);
    free(j);
}

/* ---- the mail thread: libcurl's callbacks ---- */

static size_t smtp_read(char *out, size_t size, size_t nitems, void *arg)
{
    smtp_job_t *j = arg;
    size_t room = size * nitems, left = j->text.len - j->sent;
    size_t n = left < room ? left : room;
    memcpy(out, j->text.data + j->sent, n);
    j->sent += n;
    /* libcurl knows the size (CURLOPT_INFILESIZE) and may never ask past the end. */
    if (j->sent == j->text.len && !j->trace.upload_done)
        smtp_trace_uploaded(&j->trace);
    return n;
}

/* Any sign of life puts the watchdog back (see smtp_on_watchdog). */
static void smtp_watch(smtp_client_t *c);

static int smtp_debug(CURL *easy, curl_infotype type, char *data, size_t size, void *arg)
{
    (void)easy;
    smtp_job_t *j = arg;
    smtp_trace_feed(&j->trace, type, data, size);
    smtp_watch(j->client);
    return 0;
}

static int smtp_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    smtp_client_t *c = arg;
    return atomic_load(&c->abort) ? 1 : 0;
}

/* Sockets are opened and closed here so that a hasty close can shut them down. */
static curl_socket_t smtp_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    smtp_client_t *c = arg;
    (void)purpose;
    uv_mutex_lock(&c->lock);
    curl_socket_t fd = CURL_SOCKET_BAD;
    if (c->nfds < SMTP_MAX_SOCKETS && !atomic_load(&c->abort)) {
        fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
        if (fd >= 0)
            c->fds[c->nfds++] = fd;
        else
            fd = CURL_SOCKET_BAD;
    }
    uv_mutex_unlock(&c->lock);
    return fd;
}

static int smtp_close_socket(void *arg, curl_socket_t fd)
{
    smtp_client_t *c = arg;
    uv_mutex_lock(&c->lock);
    for (int i = 0; i < c->nfds; i++)
        if (c->fds[i] == fd) {
            c->fds[i] = c->fds[--c->nfds];
            break;
        }
    int rc = close(fd); /* under the lock: the number cannot be shut down once reused */
    uv_mutex_unlock(&c->lock);
    return rc;
}

static void smtp_poll_closed(uv_handle_t *h)
{
    free(h);
}

static void smtp_check_done(smtp_client_t *c);

static void smtp_on_poll(uv_poll_t *p, int status, int events)
{
    smtp_client_t *c = p->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    uv_os_sock_t fd;
    if (uv_fileno((uv_handle_t *)p, (uv_os_fd_t *)&fd) != 0)
        return;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    smtp_check_done(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch a socket as libcurl asks, with a uv_poll of its own. */
static int smtp_socket_cb(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
    (void)easy;
    smtp_client_t *c = arg;
    uv_poll_t *p = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (p) {
            uv_poll_stop(p);
            uv_close((uv_handle_t *)p, smtp_poll_closed);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        if (p == NULL)
            return -1;
        if (uv_poll_init_socket(&c->mloop, p, fd) != 0) {
            free(p);
            return -1;
        }
        p->data = c;
        curl_multi_assign(c->multi, fd, p);
    }
    int events = (what == CURL_POLL_IN || what == CURL_POLL_INOUT ? UV_READABLE : 0) |
                 (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? UV_WRITABLE : 0);
    return uv_poll_start(p, events, smtp_on_poll) == 0 ? 0 : -1;
}

/* Shut down every socket of libcurl's: whatever it waits for ends at once. */
static void smtp_cut(smtp_client_t *c)
{
    uv_mutex_lock(&c->lock);
    for (int i = 0; i < c->nfds; i++)
        shutdown(c->fds[i], SHUT_RDWR);
    uv_mutex_unlock(&c->lock);
}

/*
 * libcurl bounds each answer (CURLOPT_SERVER_RESPONSE_TIMEOUT) only in its
 * blocking waits; on the multi interface nothing wakes it while it waits for
 * an answer to MAIL FROM or RCPT TO. So the mail thread watches: timeout_ms
 * without a byte or a line either way, and the connection is cut; the judge
 * then says which wait ran out.
 */
static void smtp_on_watchdog(uv_timer_t *t)
{
    smtp_client_t *c = t->data;
    if (c->active == NULL)
        return;
    c->active->trace.expired = true;
    smtp_cut(c);
}

static void smtp_watch(smtp_client_t *c)
{
    if (c->active && !c->winding_down)
        uv_timer_start(&c->watchdog, smtp_on_watchdog, c->s.timeout_ms, 0);
}

static void smtp_on_timeout(uv_timer_t *t)
{
    smtp_client_t *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    smtp_check_done(c);
}

/* CURLMOPT_TIMERFUNCTION. Not socket_action from here (libcurl forbids it): a 0 ms timer. */
static int smtp_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    (void)multi;
    smtp_client_t *c = arg;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, smtp_on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- the mail thread: messages ---- */

static void smtp_hand_back(smtp_client_t *c, smtp_job_t *j)
{
    uv_mutex_lock(&c->lock);
    c->finished = j;
    uv_mutex_unlock(&c->lock);
    uv_async_send(&c->answer);
}

static int smtp_easy_setup(smtp_client_t *c, smtp_job_t *j)
{
    const smtp_settings_t *s = &c->s;
    CURL *e = j->easy = curl_easy_init();
    j->rcpts = curl_slist_append(NULL, j->rcpt);
    if (e == NULL || j->rcpts == NULL)
        return -1;
    long timeout_s = (long)(s->timeout_ms + 999) / 1000;
    /* The whole transfer: a bound for a relay that takes the text ever so slowly. */
    curl_off_t total_ms = (curl_off_t)s->timeout_ms * 10;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, c->url);
    SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, j->curl_error);
    SET(CURLOPT_USE_SSL, s->tls == SMTP_TLS_NONE ? (long)CURLUSESSL_NONE : (long)CURLUSESSL_ALL);
    if (s->ca_file)
        SET(CURLOPT_CAINFO, s->ca_file);
    if (s->user) {
        SET(CURLOPT_USERNAME, s->user);
        SET(CURLOPT_PASSWORD, s->password ? s->password : "");
    }
    SET(CURLOPT_MAIL_FROM, j->from);
    SET(CURLOPT_MAIL_RCPT, j->rcpts);
    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_READFUNCTION, smtp_read);
    SET(CURLOPT_READDATA, j);
    SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)j->text.len);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)s->timeout_ms);
    SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, timeout_s);
    SET(CURLOPT_TIMEOUT_MS, (long)total_ms);
    SET(CURLOPT_VERBOSE, 1L); /* for the debug callback: the dialogue, never printed */
    SET(CURLOPT_DEBUGFUNCTION, smtp_debug);
    SET(CURLOPT_DEBUGDATA, j);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFOFUNCTION, smtp_progress);
    SET(CURLOPT_XFERINFODATA, c);
    SET(CURLOPT_OPENSOCKETFUNCTION, smtp_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, c);
    SET(CURLOPT_CLOSESOCKETFUNCTION, smtp_close_socket);
    SET(CURLOPT_CLOSESOCKETDATA, c);
#undef SET
    return rc == CURLE_OK ? 0 : -1;
}

static void smtp_start(smtp_client_t *c, smtp_job_t *j)
{
    if (smtp_easy_setup(c, j) != 0 || curl_multi_add_handle(c->multi, j->easy) != CURLM_OK) {
        j->outcome = SMTP_UNREACHED;
        snprintf(j->error, sizeof(j->error), "libcurl cannot set up the message: %s",
                 j->curl_error[0] ? j->curl_error : "out of memory");
        smtp_hand_back(c, j);
        return;
    }
    c->active = j;
    smtp_watch(c);
}

static void smtp_wind_down(smtp_client_t *c);

static void smtp_close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->type == UV_POLL ? smtp_poll_closed : NULL);
}

/*
 * The end of the mail thread: drop the message in hand (not polite), let
 * libcurl close its connections (QUIT, on this thread; at once when the
 * sockets were shut down), then close every handle so that uv_run returns.
 */
static void smtp_wind_down(smtp_client_t *c)
{
    if (c->winding_down)
        return;
    c->winding_down = true;
    if (c->active) {
        curl_multi_remove_handle(c->multi, c->active->easy);
        smtp_job_free(c->active);
        c->active = NULL;
    }
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    uv_mutex_lock(&c->lock);
    c->wake_closed = true;
    uv_mutex_unlock(&c->lock);
    uv_walk(&c->mloop, smtp_close_walk, NULL);
}

static void smtp_check_done(smtp_client_t *c)
{
    CURLMsg *msg;
    int left;
    while (c->multi && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE || c->active == NULL || msg->easy_handle != c->active->easy)
            continue;
        smtp_job_t *j = c->active;
        c->active = NULL;
        uv_timer_stop(&c->watchdog);
        j->outcome = smtp_judge(msg->data.result, &j->trace, j->curl_error, &c->where, j->error,
                                sizeof(j->error));
        curl_multi_remove_handle(c->multi, j->easy);
        curl_easy_cleanup(j->easy);
        j->easy = NULL;
        smtp_hand_back(c, j);
    }
    uv_mutex_lock(&c->lock);
    bool quit = c->quit_now || (c->quit_polite && c->active == NULL && c->submitted == NULL);
    uv_mutex_unlock(&c->lock);
    if (quit)
        smtp_wind_down(c);
}

static void smtp_on_wake(uv_async_t *a)
{
    smtp_client_t *c = a->data;
    if (c->winding_down)
        return;
    uv_mutex_lock(&c->lock);
    smtp_job_t *j = c->submitted;
    c->submitted = NULL;
    bool now = c->quit_now;
    uv_mutex_unlock(&c->lock);
    if (j && now)
        smtp_job_free(j);
    else if (j)
        smtp_start(c, j);
    smtp_check_done(c); /* libcurl starts a new transfer from its timer */
}

static void smtp_thread(void *arg)
{
    smtp_client_t *c = arg;
    uv_run(&c->mloop, UV_RUN_DEFAULT);
    uv_loop_close(&c->mloop);
    uv_mutex_lock(&c->lock);
    c->thread_done = true;
    uv_mutex_unlock(&c->lock);
    uv_async_send(&c->answer);
}

/* ---- the daemon's loop ---- */

/* Call with the lock held: `wake` lives on the mail thread's loop, which may be ending. */
static void smtp_wake_locked(smtp_client_t *c)
{
    if (!c->wake_closed)
        uv_async_send(&c->wake);
}

static void smtp_free(smtp_client_t *c)
{
    smtp_job_free(c->submitted);
    smtp_job_free(c->finished);
    free((char *)c->s.host);
    free((char *)c->s.user);
    free((char *)c->s.password);
    free((char *)c->s.ca_file);
    free((char *)c->s.helo);
    free((char *)c->s.from);
    free(c->url);
    uv_mutex_destroy(&c->lock);
    free(c);
}

static void smtp_answer_closed(uv_handle_t *h)
{
    smtp_client_t *c = h->data;
    smtp_closed_cb cb = c->closed_cb;
    void *arg = c->closed_arg;
    smtp_free(c);
    if (cb)
        cb(arg);
}

static void smtp_on_answer(uv_async_t *a)
{
    smtp_client_t *c = a->data;
    uv_mutex_lock(&c->lock);
    smtp_job_t *j = c->finished;
    c->finished = NULL;
    bool done = c->thread_done;
    uv_mutex_unlock(&c->lock);
    if (j) {
        c->busy = false;
        if (j->outcome == SMTP_BROKEN || j->outcome == SMTP_UNREACHED)
            c->broken = true;
        if (!c->closing && c->send_cb)
            c->send_cb(c, j->outcome, j->error, c->send_arg);
        smtp_job_free(j);
    }
    if (done && !uv_is_closing((uv_handle_t *)&c->answer)) {
        uv_thread_join(&c->thread);
        uv_close((uv_handle_t *)&c->answer, smtp_answer_closed);
    }
}

static char *smtp_dup(const char *s)
{
    return s ? util_xstrdup(s) : NULL;
}

/* smtp[s]://host:port/helo: the path is the name libcurl gives in EHLO. */
static char *smtp_url(const smtp_settings_t *s)
{
    char *helo = curl_easy_escape(NULL, s->helo ? s->helo : "carreld", 0);
    if (helo == NULL)
        return NULL;
    bool v6 = strchr(s->host, ':') != NULL;
    size_t n = strlen(s->host) + strlen(helo) + 40;
    char *url = util_xcalloc(n, 1);
    snprintf(url, n, "%s://%s%s%s:%d/%s", s->tls == SMTP_TLS_IMPLICIT ? "smtps" : "smtp",
             v6 ? "[" : "", s->host, v6 ? "]" : "", s->port, helo);
    curl_free(helo);
    return url;
}

static const char *smtp_tls_name(smtp_tls_t t)
{
    return t == SMTP_TLS_IMPLICIT ? "tls" : t == SMTP_TLS_NONE ? "none" : "starttls";
}

smtp_client_t *smtp_open(uv_loop_t *loop, const smtp_settings_t *s, char *err, size_t errlen)
{
    if (s->host == NULL || s->host[0] == '\0') {
        snprintf(err, errlen, "smtp_host is not set");
        return NULL;
    }
    smtp_client_t *c = util_xcalloc(1, sizeof(*c));
    c->s = *s;
    c->s.host = smtp_dup(s->host);
    c->s.user = s->user && s->user[0] ? smtp_dup(s->user) : NULL;
    c->s.password = smtp_dup(s->password);
    c->s.ca_file = s->ca_file && s->ca_file[0] ? smtp_dup(s->ca_file) : NULL;
    c->s.helo = smtp_dup(s->helo);
    c->s.from = smtp_dup(s->from);
    c->where = (smtp_where_t){.host = c->s.host,
                              .port = s->port,
                              .timeout_s = (s->timeout_ms + 999) / 1000,
                              .user = c->s.user,
                              .tls = smtp_tls_name(s->tls)};
    c->loop = loop;
    atomic_init(&c->abort, false);
    if (uv_mutex_init(&c->lock) != 0) {
        snprintf(err, errlen, "cannot make a mutex");
        free(c);
        return NULL;
    }
    c->url = smtp_url(&c->s);
    c->multi = curl_multi_init();
    if (c->url == NULL || c->multi == NULL || uv_loop_init(&c->mloop) != 0) {
        snprintf(err, errlen, "libcurl cannot start (out of memory)");
        if (c->multi)
            curl_multi_cleanup(c->multi);
        smtp_free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, smtp_socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, smtp_timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 1L); /* one relay, one connection */
    uv_async_init(&c->mloop, &c->wake, smtp_on_wake);
    uv_timer_init(&c->mloop, &c->timer);
    uv_timer_init(&c->mloop, &c->watchdog);
    c->wake.data = c->timer.data = c->watchdog.data = c;
    uv_async_init(loop, &c->answer, smtp_on_answer);
    c->answer.data = c;
    int rc = uv_thread_create(&c->thread, smtp_thread, c);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the mail thread: %s", uv_strerror(rc));
        curl_multi_cleanup(c->multi);
        c->multi = NULL;
        uv_walk(&c->mloop, smtp_close_walk, NULL);
        uv_run(&c->mloop, UV_RUN_DEFAULT);
        uv_loop_close(&c->mloop);
        c->closed_cb = NULL;
        uv_close((uv_handle_t *)&c->answer, smtp_answer_closed);
        return NULL;
    }
    return c;
}

int smtp_send(smtp_client_t *c, const smtp_message_t *m, smtp_send_cb cb, void *arg, char *err,
              size_t errlen)
{
    if (c->closing || c->busy || c->broken) {
        snprintf(err, errlen, "the connection to the relay is not ready");
        return -1;
    }
    if (!smtp_address_ok(m->to)) {
        snprintf(err, errlen, "'%s' is not an email address the relay can take", m->to);
        return -1;
    }
    smtp_job_t *j = util_xcalloc(1, sizeof(*j));
    j->client = c;
    size_t nf = strlen(c->s.from) + 3, nt = strlen(m->to) + 3;
    j->from = util_xcalloc(nf, 1);
    j->rcpt = util_xcalloc(nt, 1);
    snprintf(j->from, nf, "<%s>", c->s.from);
    snprintf(j->rcpt, nt, "<%s>", m->to);
    if (smtp_message_build(&j->text, c->s.from, m, time(NULL)) != 0) {
        smtp_job_free(j);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->busy = true;
    c->send_cb = cb;
    c->send_arg = arg;
    uv_mutex_lock(&c->lock);
    c->submitted = j;
    smtp_wake_locked(c);
    uv_mutex_unlock(&c->lock);
    return 0;
}

bool smtp_broken(const smtp_client_t *c)
{
    return c->broken;
}

void smtp_close(smtp_client_t *c, bool polite, smtp_closed_cb cb, void *arg)
{
    c->closing = true;
    c->closed_cb = cb;
    c->closed_arg = arg;
    if (!polite) {
        /*
         * First the sockets: that ends whatever libcurl waits for, even inside its
         * blocking waits, and it must come before the thread removes a transfer in
         * the middle of its text, when libcurl would write the final "." of a
         * message cut short (curl issue #4015) on a socket still open.
         */
        atomic_store(&c->abort, true);
        smtp_cut(c);
    }
    uv_mutex_lock(&c->lock);
    if (polite)
        c->quit_polite = true;
    else
        c->quit_now = true;
    smtp_wake_locked(c);
    uv_mutex_unlock(&c->lock);
}
