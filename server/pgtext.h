/*
 * pgtext: converting between PostgreSQL's text forms and C values for
 * request handlers: one-dimensional array literals both ways.
 */
#ifndef CARREL_PGTEXT_H
#define CARREL_PGTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

/*
 * Split a 1-D array literal such as {DWN,"PARK ST",NULL} into arena strings.
 * NULL elements become NULL pointers. Returns the array (NULL when empty)
 * and its length in *n.
 */
char **pgtext_array_parse(arena_t *a, const char *literal, size_t *n);
/*
 * The same for a text[] column becoming a repeated string field: a NULL
 * element becomes "" (protobuf-c cannot send NULL; positions are kept, so
 * parallel arrays stay aligned). The one copy every handler uses.
 */
char **pgtext_array_strings(arena_t *a, const char *literal, size_t *n);
/* Build an array literal from strings, quoting every element. */
char *pgtext_array_build(arena_t *a, char *const *items, size_t n);
/* An integer array literal {1,NULL,3}: element i is NULL when has is given and has[i] is
 * false. */
char *pgtext_int_array(arena_t *a, const int64_t *v, const bool *has, size_t n);
/* Decode bytea's text form ("\\x4142...") into arena bytes; NULL if malformed. */
uint8_t *pgtext_bytea_decode(arena_t *a, const char *text, size_t *len);
/* The text form of a boolean parameter: "true" or "false" (static strings). */
const char *pgtext_bool(bool v);
/* Decimal text of an integer, in the arena. */
char *pgtext_int(arena_t *a, int64_t v);

#endif
