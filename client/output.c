#include "output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

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
