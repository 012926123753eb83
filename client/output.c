#include "output.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

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
        row[i] = util_xstrdup(cells[i] ? cells[i] : "");
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
