/*
 * csv: RFC 4180 rows (quoted fields, doubled quotes, CRLF or LF line ends).
 */
#ifndef CARREL_CSV_H
#define CARREL_CSV_H

#include <stddef.h>

typedef struct csv_row {
    char **fields;
    size_t n;
} csv_row_t;

/*
 * Read the row starting at *pos in text[0..len). Returns 1 and advances *pos,
 * 0 at the end of the text, or -1 for a quote that is never closed.
 * Free the row with csv_row_free.
 */
int csv_next_row(const char *text, size_t len, size_t *pos, csv_row_t *row);
void csv_row_free(csv_row_t *row);

#endif
