/*
 * libFuzzer target: the client's CSV reader (client/csv.c, `import items`)
 * on any bytes. Every call ends, moves forward and stays inside the text; no
 * row it returns spans a NUL (which would cut a field short); a text it reads
 * to the end, written out again (every field quoted, quotes doubled, CRLF
 * line ends), reads back to the same rows.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "csv.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void write_row(struct buf *out, const csv_row_t *row)
{
    for (size_t i = 0; i < row->n; i++) {
        CHECK(buf_append(out, i ? ",\"" : "\"", i ? 2 : 1) == 0);
        for (const char *p = row->fields[i]; *p; p++) {
            CHECK(buf_append(out, p, 1) == 0);
            if (*p == '"')
                CHECK(buf_append(out, "\"", 1) == 0); /* doubled */
        }
        CHECK(buf_append(out, "\"", 1) == 0);
    }
    CHECK(buf_append(out, "\r\n", 2) == 0);
}

/* Read all rows of text[0..len); -1 for text that is not CSV. */
static int read_all(const char *text, size_t len, csv_row_t **rows, size_t *nrows)
{
    size_t pos = 0;
    *rows = NULL;
    *nrows = 0;
    for (;;) {
        size_t before = pos;
        csv_row_t row;
        int rc = csv_next_row(text, len, &pos, &row);
        CHECK(pos <= len);
        if (rc == 0) {
            CHECK(pos >= before && pos >= len);
            return 0;
        }
        if (rc < 0) {
            CHECK(rc == CSV_UNCLOSED_QUOTE || rc == CSV_NUL);
            CHECK(row.fields == NULL && row.n == 0);
            return -1;
        }
        CHECK(rc == 1 && pos > before && row.n >= 1);
        /* No byte of a row is lost to a C string's end: a NUL is refused. */
        CHECK(memchr(text + before, '\0', pos - before) == NULL);
        /* A row takes at least one byte per field but the last. */
        CHECK(row.n - 1 <= pos - before);
        *rows = realloc(*rows, (*nrows + 1) * sizeof(**rows));
        CHECK(*rows != NULL);
        (*rows)[(*nrows)++] = row;
    }
}

static void free_all(csv_row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        csv_row_free(&rows[i]);
    free(rows);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly `size` bytes, so a read past the end is caught. */
    char *text = malloc(size ? size : 1);
    CHECK(text != NULL);
    if (size)
        memcpy(text, data, size);
    csv_row_t *rows, *again;
    size_t n, m;
    if (read_all(text, size, &rows, &n) == 0) {
        struct buf out = BUF_INIT;
        for (size_t i = 0; i < n; i++)
            write_row(&out, &rows[i]);
        CHECK(read_all((const char *)out.data, out.len, &again, &m) == 0 && m == n);
        for (size_t i = 0; i < n; i++) {
            CHECK(again[i].n == rows[i].n);
            for (size_t k = 0; k < rows[i].n; k++)
                CHECK(strcmp(again[i].fields[k], rows[i].fields[k]) == 0);
        }
        free_all(again, m);
        buf_free(&out);
    }
    free_all(rows, n);
    free(text);
    return 0;
}
