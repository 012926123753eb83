/*
 * util: small helpers both programs use: clocks, ids, strings.
 */
#ifndef CARREL_UTIL_H
#define CARREL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"

/* Wall-clock milliseconds since the Unix epoch. */
int64_t util_now_ms(void);
/* Monotonic nanoseconds, for measuring durations. */
uint64_t util_mono_ns(void);
/*
 * A time-ordered (version 7, RFC 9562) UUID in canonical text form: the
 * Unix time in milliseconds, then 74 random bits; out must hold 37 bytes.
 * Request keys: keys made one after another sort next to each other, so
 * request_log's index finds and inserts them in the pages it just used
 * instead of a random page each time (issue 15).
 */
__attribute__((warn_unused_result)) int util_uuid7(char out[37]);
/* True when s is a canonical UUID (8-4-4-4-12 hex digits). */
bool util_is_uuid(const char *s);
/* strdup that aborts on out-of-memory: for small internal strings only. */
char *util_xstrdup(const char *s);
void *util_xcalloc(size_t n, size_t size);
/* Copy at most outlen-1 bytes and terminate. */
void util_strlcpy(char *out, const char *in, size_t outlen);
/* Read a whole small file (passwords, keys). Returns malloc'd text, or NULL with errno set. */
CARREL_MUST_USE char *util_read_file(const char *path, size_t max_bytes);
/*
 * Read a whole file of any size into memory (a NUL follows the data, not
 * counted in *len). Returns malloc'd bytes, or NULL with errno set.
 */
CARREL_MUST_USE uint8_t *util_read_all(const char *path, size_t *len);
/*
 * Parse a whole decimal integer in [min, max]: no trailing text, no leading
 * blanks, no overflow. Returns false (and leaves *out alone) otherwise.
 */
CARREL_MUST_USE bool util_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);
/* Remove trailing newline characters in place. */
void util_chomp(char *s);
/*
 * Raise the soft limit on open files to the hard one (a thousand desks are a
 * thousand sockets; carreld and carrel-bench both call it at start). 0, or -1
 * with errno set; *limit (may be NULL) gets the hard limit tried.
 */
CARREL_MUST_USE int util_raise_nofile(unsigned long long *limit);

#endif
