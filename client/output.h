/*
 * output: aligned text tables for people (column widths by display width,
 * so accented names line up).
 */
#ifndef CARREL_OUTPUT_H
#define CARREL_OUTPUT_H

#include <stdio.h>

typedef struct table table_t;

table_t *table_new(int ncols, const char *const *headers);
/* Add one row of ncols strings (copied; NULL prints as empty). */
void table_add(table_t *t, const char *const *cells);
void table_print(const table_t *t, FILE *out);
void table_free(table_t *t);
/* Display width of a UTF-8 string in terminal columns. */
int output_width(const char *s);

#endif
