#include "csv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

static void csv_push(csv_row_t *row, struct buf *field)
{
    char **f = realloc(row->fields, (row->n + 1) * sizeof(char *));
    if (f == NULL)
        abort();
    row->fields = f;
    char *copy = malloc(field->len + 1);
    if (copy == NULL)
        abort();
    if (field->len)
        memcpy(copy, field->data, field->len);
    copy[field->len] = '\0';
    row->fields[row->n++] = copy;
    field->len = 0;
}

/* One byte of a field, quoted or not; false for a NUL byte (not text: CSV_NUL). */
static bool csv_take(struct buf *field, char c)
{
    if (c == '\0')
        return false;
    if (buf_append(field, &c, 1) != 0)
        abort();
    return true;
}

int csv_next_row(const char *text, size_t len, size_t *pos, csv_row_t *row)
{
    row->fields = NULL;
    row->n = 0;
    size_t i = *pos;
    /* Spreadsheets saving "CSV UTF-8" start the file with a byte order mark;
     * left in, it would be part of the first column's name. */
    if (i == 0 && len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    if (i >= len) {
        *pos = i;
        return 0;
    }
    struct buf field = BUF_INIT;
    int rc = 1;
    for (;;) {
        if (i < len && text[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) {
                    rc = CSV_UNCLOSED_QUOTE;
                    goto out;
                }
                if (text[i] == '"') {
                    if (i + 1 < len && text[i + 1] == '"') {
                        if (buf_append(&field, "\"", 1) != 0)
                            abort();
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (!csv_take(&field, text[i])) {
                    rc = CSV_NUL;
                    goto out;
                }
                i++;
            }
        }
        while (i < len && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
            if (!csv_take(&field, text[i])) {
                rc = CSV_NUL;
                goto out;
            }
            i++;
        }
        csv_push(row, &field);
        if (i < len && text[i] == ',') {
            i++;
            continue;
        }
        if (i < len && text[i] == '\r')
            i++;
        if (i < len && text[i] == '\n')
            i++;
        break;
    }
out:
    buf_free(&field);
    *pos = i;
    if (rc < 0)
        csv_row_free(row);
    return rc;
}

const char *csv_problem(int rc)
{
    switch (rc) {
    case CSV_UNCLOSED_QUOTE:
        return "a quote is never closed";
    case CSV_NUL:
        return "a NUL byte (is the file UTF-16? save it as CSV in UTF-8)";
    default:
        return "not CSV";
    }
}

void csv_row_free(csv_row_t *row)
{
    for (size_t i = 0; i < row->n; i++)
        free(row->fields[i]);
    free(row->fields);
    row->fields = NULL;
    row->n = 0;
}
