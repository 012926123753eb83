/*
 * countcsv: the CSV files of CountImport (proto/service.proto), read into
 * rows the SQL function count_import takes as arrays. Pure: no I/O, no
 * database; everything it returns lives in the caller's arena.
 *
 * A file has a header line; its columns are found by name, in any order,
 * case-insensitive, surrounding spaces ignored; other columns are ignored.
 *   gate:      date, time (optional: without it a row is a whole day),
 *              count, or in and out (added); counter (optional).
 *   computers: date, sessions; minutes (optional).
 * Quoted fields (RFC 4180, common/csv.c), CRLF or LF line ends, a UTF-8
 * byte order mark. Dates YYYY-MM-DD or MM/DD/YYYY (M/D/YYYY too) become
 * "YYYY-MM-DD" (a day that does not exist is bad); times H:MM, HH:MM or
 * HH:MM:SS become "HH:MM" (seconds dropped); counts are whole numbers.
 *
 * Lines are numbered as an editor numbers them: 1 is the header; a row is
 * known by the line it starts on (a quoted field may span lines). Empty
 * lines are skipped. A line is good (a row) or bad (one entry naming the
 * first field that is wrong, "field:count", and a sentence); a header that
 * lacks a column the kind needs is one bad entry for line 1 and no rows.
 */
#ifndef CARREL_COUNTCSV_H
#define CARREL_COUNTCSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

typedef enum { COUNTCSV_GATE, COUNTCSV_COMPUTERS } countcsv_kind_t;

/* Bounds of the values (SQL checks its own as well). */
#define COUNTCSV_COUNT_MAX    1000000000LL /* crossings of one period */
#define COUNTCSV_SESSIONS_MAX 100000LL     /* computer sessions of a day */
#define COUNTCSV_MINUTES_MAX  100000000LL  /* minutes used in a day, all computers */

typedef struct countcsv_row {
    int line;
    char counter[33]; /* "" = the import's counter */
    char day[11];     /* "YYYY-MM-DD" */
    char time[6];     /* "HH:MM", or "" for a whole day */
    int64_t count;    /* gate crossings (in + out) or computer sessions */
    bool has_minutes;
    int64_t minutes; /* computers: total minutes, when the file has them */
} countcsv_row_t;

typedef struct countcsv_bad {
    int line;
    const char *reason;  /* "field:date", "field:line", ... (static) */
    const char *message; /* a sentence, in the arena */
} countcsv_bad_t;

typedef struct countcsv {
    countcsv_row_t *rows;
    size_t n_rows;
    countcsv_bad_t *bad; /* at most max_bad of them, by line */
    size_t n_bad;
    size_t bad_total; /* bad lines in all (more than n_bad when cut off) */
    size_t lines;     /* data lines read (not the header, not empty lines) */
    bool header_bad;  /* no usable header: nothing was read */
} countcsv_t;

/*
 * Read text[0..len) as a file of `kind`. Keeps the first max_bad bad lines
 * (all are counted). Never fails: problems are bad lines. The result's
 * arrays are in `a`.
 */
void countcsv_parse(arena_t *a, countcsv_kind_t kind, const char *text, size_t len, size_t max_bad,
                    countcsv_t *out);

/* "2026-03-01" from "2026-03-01" or "03/01/2026" (out: 11 bytes); false if no such day. */
bool countcsv_day(const char *s, char *out);
/* "09:05" from "9:05", "09:05" or "09:05:30" (out: 6 bytes); false if no such time. */
bool countcsv_time(const char *s, char *out);
/* A whole number 0..max ("12", " 12 "); false otherwise. */
bool countcsv_int(const char *s, int64_t max, int64_t *out);

#endif
