/*
 * sip2: the 3M Standard Interchange Protocol 2.00 as text, without I/O.
 *
 * A message is one line: a two-digit command code, the message's
 * fixed-length fields, then variable fields "XXvalue|" (a two-letter id, the
 * value, a pipe), and, with error detection, "AYn" (a sequence digit) and
 * "AZxxxx" (the checksum) last, before the carriage return. The channel
 * (line mode) cuts lines; this module parses one, checks its checksum, and
 * builds answers. Pure, so it is unit-tested and fuzzed on its own.
 */
#ifndef CARREL_SIP2_H
#define CARREL_SIP2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SIP2_MAX_MESSAGE 4096 /* longest line accepted or sent, without the CR */
#define SIP2_MAX_FIELDS  64   /* variable fields kept per message; more is malformed */
#define SIP2_MAX_VALUE   255  /* a variable field's value is cut to this many bytes */

typedef struct sip2_field {
    char id[3];        /* "AO", NUL-terminated */
    const char *value; /* into the parsed line; not NUL-terminated */
    size_t len;
} sip2_field_t;

typedef struct sip2_msg {
    char code[3];      /* "11", NUL-terminated */
    const char *fixed; /* the fixed-length fields after the code (into the line) */
    size_t fixed_len;  /* as the standard defines for the code; 0 for an unknown code */
    sip2_field_t fields[SIP2_MAX_FIELDS];
    size_t nfields;
    int seq;          /* AY, 0-9; -1 when absent (also set on SIP2_BAD_CHECKSUM) */
    bool checksummed; /* AZ was present (and matched: else SIP2_BAD_CHECKSUM) */
    bool known;       /* the code is one sip2 knows the layout of */
} sip2_msg_t;

typedef enum {
    SIP2_OK = 0,
    SIP2_EMPTY,        /* nothing but whitespace: ignore it */
    SIP2_BAD_CHECKSUM, /* AZ present and wrong (or not 4 hex digits) */
    SIP2_MALFORMED,    /* no two-digit code, fixed part too short, a field without its pipe, ... */
} sip2_status_t;

/* Parse one line (without its terminator). m points into line afterwards. */
sip2_status_t sip2_parse(const char *line, size_t len, sip2_msg_t *m);
/* The first field with this id, or NULL; *len gets its length. */
const char *sip2_field(const sip2_msg_t *m, const char *id, size_t *len);
/* Copy a field into out (NUL-terminated, cut to outlen - 1); false when absent. */
bool sip2_field_copy(const sip2_msg_t *m, const char *id, char *out, size_t outlen);
/* The checksum the standard defines over s[0..n): the two's complement of the
 * byte sum, low 16 bits. */
uint16_t sip2_checksum(const char *s, size_t n);

/*
 * A response being built. Variable fields whose id is in `hide` (ids,
 * comma-separated, from the login's options) are never written; values
 * lose pipes and control characters and are cut at SIP2_MAX_VALUE bytes
 * (on a UTF-8 boundary). An answer that would pass SIP2_MAX_MESSAGE drops
 * the fields that do not fit (overflow is set) rather than being cut mid-field.
 */
typedef struct sip2_out {
    char buf[SIP2_MAX_MESSAGE + 16];
    size_t len;
    bool overflow;
    char hide[128];
} sip2_out_t;

void sip2_out_begin(sip2_out_t *o, const char *code, const char *hide);
void sip2_out_fixed(sip2_out_t *o, const char *s); /* fixed-length text, as it is */
void sip2_out_flag(sip2_out_t *o, bool yes);       /* 'Y' or 'N' */
void sip2_out_field(sip2_out_t *o, const char *id, const char *value); /* NULL: nothing */
void sip2_out_fieldf(sip2_out_t *o, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Append AY (seq, or 0 when the request had none) and AZ, then the CR. */
void sip2_out_end(sip2_out_t *o, int seq);

/* "YYYYMMDDZZZZHHMMSS" in local time (ZZZZ four spaces), into out[19]. */
void sip2_date(char out[19], time_t t);
/* The same at a fixed offset from UTC (the library's zone, which need not be the process's). */
void sip2_date_utc(char out[19], time_t t, long utc_offset_s);
/* Parse that form (any zone text is taken as local); false when malformed. */
bool sip2_parse_date(const char *s, size_t n, time_t *out);
/* The same date's wall-clock time counted as if it were UTC (no zone applied: the
 * caller compares it with a wall clock of its own, e.g. the library's). */
bool sip2_parse_date_civil(const char *s, size_t n, time_t *out);

#endif
