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

#define CSV_UNCLOSED_QUOTE (-1)
#define CSV_NUL            (-2)

/*
 * Read the row starting at *pos in text[0..len). Returns 1 and advances *pos,
 * 0 at the end of the text, CSV_UNCLOSED_QUOTE for a quote that is never
 * closed, or CSV_NUL for a NUL byte (a field kept as a C string would end
 * there without a word: the rest of the value would be lost). A UTF-8 byte
 * order mark at the very start of the text is skipped. Free the row with
 * csv_row_free; after an error there is nothing to free.
 */
int csv_next_row(const char *text, size_t len, size_t *pos, csv_row_t *row);
/* What an error of csv_next_row means, as a sentence fragment. */
const char *csv_problem(int rc);
void csv_row_free(csv_row_t *row);

#endif
