#include "output.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "carrel.pb-c.h"
#include "text.h"
#include "util.h"

struct table {
    int ncols;
    char **headers;
    char ***rows;
    int nrows;
    int cap;
};

int output_width(const char *s)
{
    int width = 0;
    mbstate_t st;
    memset(&st, 0, sizeof(st));
    const char *p = s;
    size_t left = strlen(s);
    while (left > 0) {
        wchar_t wc;
        size_t n = mbrtowc(&wc, p, left, &st);
        if (n == (size_t)-1 || n == (size_t)-2) {
            width += 1; /* not valid in this locale: count bytes */
            p++;
            left--;
            memset(&st, 0, sizeof(st));
            continue;
        }
        if (n == 0)
            break;
        int w = wcwidth(wc);
        width += w > 0 ? w : 0;
        p += n;
        left -= n;
    }
    return width;
}

table_t *table_new(int ncols, const char *const *headers)
{
    table_t *t = util_xcalloc(1, sizeof(*t));
    t->ncols = ncols;
    t->headers = util_xcalloc((size_t)ncols, sizeof(char *));
    for (int i = 0; i < ncols; i++)
        t->headers[i] = util_xstrdup(headers[i]);
    return t;
}

void table_add(table_t *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->rows = realloc(t->rows, (size_t)t->cap * sizeof(char **));
        if (t->rows == NULL)
            abort();
    }
    char **row = util_xcalloc((size_t)t->ncols, sizeof(char *));
    for (int i = 0; i < t->ncols; i++)
        row[i] = out_safe_line(cells[i] ? cells[i] : ""); /* widths are of what is printed */
    t->rows[t->nrows++] = row;
}

static void table_cell(FILE *out, const char *s, int width, int last)
{
    fputs(s, out);
    if (!last)
        for (int pad = width - output_width(s) + 2; pad > 0; pad--)
            fputc(' ', out);
}

void table_print(const table_t *t, FILE *out)
{
    int *w = util_xcalloc((size_t)t->ncols, sizeof(int));
    for (int c = 0; c < t->ncols; c++) {
        w[c] = output_width(t->headers[c]);
        for (int r = 0; r < t->nrows; r++) {
            int n = output_width(t->rows[r][c]);
            if (n > w[c])
                w[c] = n;
        }
    }
    for (int c = 0; c < t->ncols; c++)
        table_cell(out, t->headers[c], w[c], c == t->ncols - 1);
    fputc('\n', out);
    for (int c = 0; c < t->ncols; c++) {
        for (int k = 0; k < w[c]; k++)
            fputc('-', out);
        if (c < t->ncols - 1)
            fputs("  ", out);
    }
    fputc('\n', out);
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++)
            table_cell(out, t->rows[r][c], w[c], c == t->ncols - 1);
        fputc('\n', out);
    }
    free(w);
}

void table_free(table_t *t)
{
    if (t == NULL)
        return;
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++)
            free(t->rows[r][c]);
        free(t->rows[r]);
    }
    for (int c = 0; c < t->ncols; c++)
        free(t->headers[c]);
    free(t->headers);
    free(t->rows);
    free(t);
}

void output_money(char *out, size_t n, int64_t cents)
{
    /* The magnitude in unsigned arithmetic: -INT64_MIN does not fit an int64. */
    uint64_t mag = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    snprintf(out, n, "%s$%llu.%02llu", cents < 0 ? "-" : "", (unsigned long long)(mag / 100),
             (unsigned long long)(mag % 100));
}

void output_count(char *out, size_t n, long long count, const char *one, const char *many)
{
    snprintf(out, n, "%lld %s", count, count == 1 ? one : many);
}

/*
 * Display width of the code point cp as wcwidth says in this locale; 1 for
 * a printable character the locale cannot tell about (as output_width).
 */
static int out_cp_width(uint32_t cp)
{
    int w = wcwidth((wchar_t)cp);
    if (w >= 0)
        return w;
    return text_is_control(cp) ? 0 : 1;
}

/* Columns of s as output_cut counts them (UTF-8 decoded here, whatever the locale). */
static int out_cut_width(const uint8_t *p, size_t len)
{
    int width = 0;
    for (size_t used = 0; used < len;) {
        uint32_t cp = 0;
        size_t k = text_utf8_decode(p + used, len - used, &cp);
        width += k == 0 ? 1 : out_cp_width(cp);
        used += k == 0 ? 1 : k;
    }
    return width;
}

void output_cut(char *out, size_t n, const char *s, int columns)
{
    static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026, one column */
    if (n == 0)
        return;
    s = s ? s : "";
    const uint8_t *p = (const uint8_t *)s;
    size_t len = strlen(s);
    bool fits = out_cut_width(p, len) <= columns && len < n;
    /* Room for the text: all of it, or up to columns - 1 and the ellipsis. */
    int room = fits ? columns : columns - 1;
    size_t byte_room = fits ? n - 1 : (n > sizeof(ellipsis) ? n - sizeof(ellipsis) : 0);
    size_t used = 0, keep = 0;
    int width = 0;
    while (used < len) {
        uint32_t cp = 0;
        size_t k = text_utf8_decode(p + used, len - used, &cp);
        int w = k == 0 ? 1 : out_cp_width(cp);
        if (k == 0)
            k = 1; /* a stray byte: one column, as output_width counts it */
        /* A combining mark (width 0) stays with its base: it goes or stays with it. */
        if ((w > 0 && width + w > room) || used + k > byte_room)
            break;
        width += w;
        used += k;
        keep = used;
    }
    memcpy(out, s, keep);
    out[keep] = '\0';
    if (keep < len && keep + sizeof(ellipsis) <= n)
        memcpy(out + keep, ellipsis, sizeof(ellipsis));
}

void output_date(char *out, size_t n, const char *iso)
{
    snprintf(out, n, "%.10s", iso ? iso : "");
}

void output_time(char *out, size_t n, const char *iso)
{
    snprintf(out, n, "%.16s", iso ? iso : "");
    char *t = strchr(out, 'T');
    if (t)
        *t = ' ';
}

void output_short_name(char *out, size_t n, const char *preferred, const char *first,
                       const char *last)
{
    const char *given = preferred && preferred[0] ? preferred : first ? first : "";
    last = last ? last : "";
    size_t initial = last[0] ? 1 : 0;
    while (last[initial] && ((unsigned char)last[initial] & 0xC0) == 0x80)
        initial++; /* the whole first character, not its first byte */
    snprintf(out, n, "%s%s%.*s%s", given, initial ? " " : "", (int)initial, last,
             initial ? "." : "");
}

const char *output_hold_status(const char *status)
{
    static const struct {
        const char *name, *word;
    } words[] = {{"in_transit", "in transit"}};
    if (status == NULL)
        return "";
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcmp(status, words[i].name) == 0)
            return words[i].word;
    return status; /* "waiting", "ready", "filled", ...: already words */
}

/* Append printf text to out (size n, holding a string); truncates quietly. */
static void out_append(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void out_append(char *out, size_t n, const char *fmt, ...)
{
    size_t used = strlen(out);
    if (used + 1 >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + used, n - used, fmt, ap);
    va_end(ap);
}

void output_hold_where(char *out, size_t n, const struct Carrel__Hold *h, bool detail)
{
    if (n == 0)
        return;
    out[0] = '\0';
    const char *status = h->status ? h->status : "";
    if (strcmp(status, "waiting") == 0) {
        if (h->has_position)
            out_append(out, n, "#%d in queue", h->position);
        if (h->suspended_until && h->suspended_until[0])
            out_append(out, n, "%ssuspended until %s", out[0] ? ", " : "", h->suspended_until);
        if (detail && h->target_barcode && h->target_barcode[0])
            out_append(out, n, "%spull %s at %s", out[0] ? ", " : "", h->target_barcode,
                       h->target_branch ? h->target_branch : "");
    } else if (strcmp(status, "ready") == 0) {
        out_append(out, n, "on the shelf until %s", h->shelf_expires_on ? h->shelf_expires_on : "");
        if (detail && h->captured_barcode && h->captured_barcode[0])
            out_append(out, n, " (%s)", h->captured_barcode);
    } else if (strcmp(status, "in_transit") == 0) {
        if (detail && h->captured_barcode && h->captured_barcode[0])
            out_append(out, n, "copy %s on its way", h->captured_barcode);
        else
            out_append(out, n, "on its way");
    }
}

void output_json_element(json_t *j, const ProtobufCMessage *msg, bool ok)
{
    json_object_begin(j);
    json_key(j, "ok");
    json_bool(j, ok);
    json_message_fields(j, msg);
    json_object_end(j);
}

void output_json_event(FILE *out, const Carrel__Event *ev)
{
    json_t j;
    json_init(&j);
    json_object_begin(&j);
    json_key(&j, "event");
    json_message(&j, &ev->base);
    json_object_end(&j);
    json_print(&j, out);
    json_free(&j);
}

/* One RFC 4180 field: quoted when it holds a comma, a quote or a line break. */
static void out_csv_field(FILE *out, const char *s)
{
    s = s ? s : "";
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', out);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', out);
            fputc(*s, out);
        }
        fputc('"', out);
    } else {
        fputs(s, out);
    }
}

void output_figure(char *out, size_t n, bool has, double v)
{
    if (!has)
        snprintf(out, n, "%s", "");
    else if (v == (double)(long long)v && v > -1e15 && v < 1e15)
        snprintf(out, n, "%lld", (long long)v);
    else
        snprintf(out, n, "%.2f", v);
}

void output_change_pct(char *out, size_t n, bool has, double pct)
{
    if (has)
        snprintf(out, n, "%+.1f%%", pct);
    else
        snprintf(out, n, "%s", "");
}

void output_csv_row(FILE *out, const char *const *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        out_csv_field(out, fields[i]);
        fputs(i + 1 == n ? "\r\n" : ",", out);
    }
}

/* Escape s (flags as text_escape) into a malloc'd string; aborts when out of memory. */
static char *out_escaped(const char *s, unsigned flags)
{
    struct buf b = BUF_INIT;
    if (text_escape(&b, s, flags) != 0 || buf_append(&b, "", 1) != 0)
        abort();
    return (char *)b.data;
}

void out_safe(FILE *out, const char *s)
{
    char *e = out_escaped(s, TEXT_ESCAPE_KEEP_LINES);
    fputs(e, out);
    free(e);
}

char *out_safe_line(const char *s)
{
    return out_escaped(s, 0);
}

/* ---- the terminal guard: a stdio stream that escapes, over the real descriptor ---- */

typedef struct out_guard {
    int fd;
    unsigned flags;   /* text_escape flags */
    uint8_t carry[4]; /* the start of a character cut by the previous write */
    size_t ncarry;
    bool owned; /* malloc'd by output_guard_open, freed at close */
} out_guard_t;

/* stdout's and stderr's guards live as long as the process (LSan cannot see
 * a cookie held only inside glibc's FILE). */
static out_guard_t out_terminal_guards[2];

static int out_write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Escape and write the carry plus data[0..n); keep a character cut at the end unless `last`. */
static int out_guard_flush(out_guard_t *g, const uint8_t *data, size_t n, bool last)
{
    if (g->ncarry + n == 0)
        return 0;
    struct buf in = BUF_INIT, out = BUF_INIT;
    int rc = buf_append(&in, g->carry, g->ncarry) != 0 || buf_append(&in, data, n) != 0 ? -1 : 0;
    if (rc == 0) {
        size_t keep = last ? 0 : text_utf8_incomplete(in.data, in.len);
        g->ncarry = keep;
        memcpy(g->carry, in.data + in.len - keep, keep);
        rc = text_escape_n(&out, in.data, in.len - keep, g->flags);
    }
    if (rc == 0)
        rc = out_write_all(g->fd, out.data, out.len);
    buf_free(&in);
    buf_free(&out);
    return rc;
}

static ssize_t out_guard_write(void *cookie, const char *data, size_t n)
{
    if (out_guard_flush(cookie, (const uint8_t *)data, n, false) != 0)
        return -1;
    return (ssize_t)n;
}

static int out_guard_close(void *cookie)
{
    out_guard_t *g = cookie;
    int rc = out_guard_flush(g, NULL, 0, true);
    if (g->owned)
        free(g);
    return rc;
}

static FILE *out_guard_start(out_guard_t *g, int fd, unsigned flags, int mode)
{
    g->fd = fd;
    g->flags = flags;
    g->ncarry = 0;
    cookie_io_functions_t io = {.write = out_guard_write, .close = out_guard_close};
    FILE *f = fopencookie(g, "w", io);
    if (f != NULL)
        setvbuf(f, NULL, mode, mode == _IONBF ? 0 : BUFSIZ);
    return f;
}

FILE *output_guard_open(int fd, unsigned flags, int mode)
{
    out_guard_t *g = util_xcalloc(1, sizeof(*g));
    g->owned = true;
    FILE *f = out_guard_start(g, fd, flags, mode);
    if (f == NULL)
        free(g);
    return f;
}

/* Replace *stream (stdout or stderr) by a guarded stream on fd, if fd is a terminal. */
static void out_guard_stream(FILE **stream, out_guard_t *g, int fd, unsigned flags, int mode)
{
    if (!isatty(fd))
        return; /* files and pipes get the bytes as they are (exports, CSV) */
    fflush(*stream);
    FILE *f = out_guard_start(g, fd, flags, mode);
    if (f != NULL) /* else unguarded rather than silent */
        *stream = f;
}

void output_guard_terminals(void)
{
    out_guard_stream(&stdout, &out_terminal_guards[0], STDOUT_FILENO, TEXT_ESCAPE_KEEP_LINES,
                     _IOLBF);
    out_guard_stream(&stderr, &out_terminal_guards[1], STDERR_FILENO,
                     TEXT_ESCAPE_KEEP_LINES | TEXT_ESCAPE_KEEP_CR, _IONBF);
}
