/*
 * output: aligned text tables for people (column widths by display width,
 * so accented names line up), and the escaping of text from the server.
 *
 * Names, notes and titles come from other desks and from imported records:
 * a control character in them must never reach a terminal raw, where ESC
 * starts sequences that recolour, retitle or rewrite the screen. Everything
 * printed for people goes through out_safe(): tables, error messages, the
 * desk, and (on a terminal) whatever else the commands print, through the
 * guard output_guard_terminals() puts on stdout and stderr.
 */
#ifndef CARREL_OUTPUT_H
#define CARREL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "json.h"

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

/*
 * The formatting of what the client shows people, each in this one place
 * (text mode; JSON carries the server's values as they are).
 */

/* Titles in tables and on the desk's lines are cut to this many columns. */
#define OUTPUT_TITLE_COLUMNS 60

/*
 * s (NULL prints as empty) cut to at most `columns` display columns: cut at
 * a character boundary, combining marks kept with their base, and "…" (one
 * column) in place of what was cut. Bytes that are not UTF-8 count one
 * column each. Truncates to n bytes on a character boundary too.
 */
void output_cut(char *out, size_t n, const char *s, int columns);
/* The day of an ISO 8601 timestamp: "2026-03-03T14:05:09+00" -> "2026-03-03". */
void output_date(char *out, size_t n, const char *iso);
/* Day and minute of an ISO 8601 timestamp: "2026-03-03 14:05". */
void output_time(char *out, size_t n, const char *iso);
/*
 * "Maria G.", as the server names patrons on slips: the preferred name, or
 * else the first, and the whole first character of the last name.
 */
void output_short_name(char *out, size_t n, const char *preferred, const char *first,
                       const char *last);
/* A hold's status as a word for people: "waiting", "ready", "in transit", ... */
const char *output_hold_status(const char *status);

/*
 * A statistic for people: whole numbers as they are ("1234"), others with
 * two decimals ("3.25"); "" when absent.
 */
void output_figure(char *out, size_t n, bool has, double v);
/* A change in percent: "+12.5%", "-3.0%", "0.0%"; "" when absent. */
void output_change_pct(char *out, size_t n, bool has, double pct);

/*
 * One CSV record (RFC 4180): fields joined by commas, quoted when they hold
 * a comma, a quote or a line break (quotes doubled), ended by CRLF. NULL
 * fields are empty. Written as they are: CSV goes to files and programs.
 */
void output_csv_row(FILE *out, const char *const *fields, size_t n);

/*
 * JSON (the server's values as they are, common/json.c): a batch command's
 * element for one answer, {"ok": ok, the answer's fields...}, as the next
 * value of the array j, so that a script tests one key whether the element
 * is an answer or a refusal (cli.c writes those, with "ok": false). ok is
 * false only for an answer that says it was not done (a loan not renewed).
 */
void output_json_element(json_t *j, const ProtobufCMessage *msg, bool ok);
struct Carrel__Event;
/* {"event": {...}}: an event the server pushed, one document on a line of `out`. */
void output_json_event(FILE *out, const struct Carrel__Event *ev);

struct Carrel__Hold;
/*
 * Where a hold stands, after its status: "#2 in queue, suspended until
 * 2026-05-01", "on the shelf until 2026-03-10", "on its way". With detail,
 * also the copy involved: ", pull 3100... at DWN", "(3100...)", "copy 3100...
 * on its way".
 */
void output_hold_where(char *out, size_t n, const struct Carrel__Hold *h, bool detail);

/*
 * Print s with control characters and bytes that are not UTF-8 written as
 * visible escapes (text_escape: "\e", "\x07", "\u{009B}"); line breaks and
 * tabs are kept.
 */
void out_safe(FILE *out, const char *s);
/* The same on one line (line breaks and tabs escaped too), as a malloc'd string. */
char *out_safe_line(const char *s);
/*
 * When stdout or stderr is a terminal, replace it with a stream that escapes
 * as out_safe() does (CR kept on stderr, for progress lines) and writes to
 * the same file descriptor. Not for desk mode, which draws on the terminal
 * itself and escapes what it prints.
 */
void output_guard_terminals(void);
/*
 * The guarded stream itself: a write-only stdio stream that escapes with
 * text_escape flags `flags` (a character cut between two writes is kept
 * whole) and writes to fd, buffered per `mode` (_IOLBF, _IONBF, _IOFBF).
 * fclose() flushes it but leaves fd open. NULL if it cannot be made.
 */
FILE *output_guard_open(int fd, unsigned flags, int mode);

#endif
