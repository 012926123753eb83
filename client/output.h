/*
 * output: aligned text tables for people (column widths by display width,
 * so accented names line up).
 */
#ifndef CARREL_OUTPUT_H
#define CARREL_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct table table_t;

table_t *table_new(int ncols, const char *const *headers);
/* Add one row of ncols strings (copied; NULL prints as empty). */
void table_add(table_t *t, const char *const *cells);
void table_print(const table_t *t, FILE *out);
void table_free(table_t *t);
/* Display width of a UTF-8 string in terminal columns. */
int output_width(const char *s);
/*
 * The one way the client writes money: cents as "$12.50", "-$0.05" (sign
 * before the symbol; every int64 value, INT64_MIN included). Truncates to n.
 */
void output_money(char *out, size_t n, int64_t cents);
/* "1 day", "2 days", "0 hours": a count and its noun, plural unless 1. */
void output_count(char *out, size_t n, long long count, const char *one, const char *many);

#endif
