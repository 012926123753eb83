/*
 * marc: a MARC21 record in memory, read from and written to ISO 2709, and
 * the fields the catalog indexes taken out of it.
 *
 * This module sees only clean records: UTF-8 ISO 2709 as produced by
 * marcio.c (which uses libyaz to cope with what real files contain). It is
 * pure code over an arena, so it is unit-tested directly.
 */
#ifndef CARREL_MARC_H
#define CARREL_MARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"

#define MARC_LEADER_LEN 24

typedef struct marc_subfield {
    char code;
    char *value;
} marc_subfield_t;

typedef struct marc_field {
    char tag[4];
    char ind1, ind2;
    char *data;                 /* control fields (00X): the whole value */
    marc_subfield_t *subfields; /* data fields */
    size_t nsubfields;
} marc_field_t;

typedef struct marc_record {
    char leader[MARC_LEADER_LEN + 1];
    marc_field_t *fields;
    size_t nfields;
    size_t cap;
} marc_record_t;

/* A holdings field (852/952) as subfield code -> value pairs. */
typedef struct marc_holding {
    char tag[4];
    marc_subfield_t *subfields;
    size_t nsubfields;
} marc_holding_t;

/* What the catalog indexes. Strings are arena-allocated; absent ones are "". */
typedef struct marc_summary {
    char *title;
    char *author;
    char **subjects;
    size_t nsubjects;
    char **isbns; /* normalized to ISBN-13 */
    size_t nisbns;
    char **issns; /* NNNN-NNNC */
    size_t nissns;
    char *publisher;
    char *year;   /* four digits, or "": the latest copyright year (008/06 't' date 2,
                     264 second indicator 4 "(c)2015"), else the publication year (008
                     date 1, 264 $c, 260 $c), the X of the CREW weeding rules */
    char *format; /* book, large_print, ebook, serial, dvd, video, audiobook, music, map,
                     score, computer_file, kit, visual */
    char *language;
    char *call_number;
    char *audience;       /* 008/22: juvenile, young_adult, adult, or "" (not said) */
    char *literary_form;  /* 008/33 of books: fiction, nonfiction, or "" (not said) */
    char *control_number; /* 001 */
    char *control_source; /* 003 */
    /* Carrel system numbers, 035 $a "(CARREL-xxxxxxxx)n" with n > 0, as written
     * (a record passed between libraries can carry more than one). */
    char **system_numbers;
    size_t nsystem_numbers;
} marc_summary_t;

/*
 * Exported records carry their bib id as a system control number (035 $a
 * "(source)n"). The source names the installation ("CARREL-" and eight hex
 * digits, made at install), so a file from another library's Carrel never
 * matches our bib ids.
 */
#define MARC_SYSTEM_PREFIX "(CARREL-"

bool marc_is_control_tag(const char *tag);
/*
 * Parse one UTF-8 ISO 2709 record as marc_write() makes them. Total: any
 * bytes give 0 and a record whose strings are valid UTF-8 without control
 * characters, or -1 with a reason in err (a damaged record, never a guess).
 */
__attribute__((warn_unused_result)) int marc_parse(arena_t *a, const uint8_t *data, size_t len,
                                                   marc_record_t *out, char *err, size_t errlen);
/*
 * Serialize as ISO 2709 (lengths and base address recomputed). Returns -1
 * with a reason in err when the record is too long for ISO 2709 or holds
 * what marc_parse() would refuse (control characters or invalid UTF-8 in
 * data, a control character as indicator or subfield code), so whatever it
 * writes reads back.
 */
__attribute__((warn_unused_result)) int marc_write(const marc_record_t *r, struct buf *out,
                                                   char *err, size_t errlen);
/* Why these bytes are not acceptable MARC data (invalid UTF-8, a control character), or NULL. */
const char *marc_text_problem(const uint8_t *p, size_t n);
/* "LDR ...", "245 10 $a Title $c ..." one line per field. */
char *marc_to_text(arena_t *a, const marc_record_t *r);

void marc_init(marc_record_t *r, const char *leader);
marc_field_t *marc_add_field(arena_t *a, marc_record_t *r, const char *tag, char ind1, char ind2);
void marc_add_subfield(arena_t *a, marc_field_t *f, char code, const char *value);
void marc_add_control(arena_t *a, marc_record_t *r, const char *tag, const char *data);
/* Remove every field with this tag. */
void marc_remove_fields(marc_record_t *r, const char *tag);
const marc_field_t *marc_find(const marc_record_t *r, const char *tag);
/* The first subfield `code` of the first field `tag`, or NULL. */
const char *marc_subfield(const marc_record_t *r, const char *tag, char code);
const char *marc_field_subfield(const marc_field_t *f, char code);

/* Fill the catalog's fields from a record. */
void marc_summarize(arena_t *a, const marc_record_t *r, marc_summary_t *s);
/* Holdings fields with the given tag ("852" or "952"). */
marc_holding_t *marc_holdings(arena_t *a, const marc_record_t *r, const char *tag, size_t *n);

/*
 * Replace the record's main fields with a summary (staff edits): 245 $a,
 * 100 $a, 650 $a, 020 $a, 022 $a, 264 $b $c, 008/07-10 and 35-37, 092 $a,
 * each only when that value changed. Fields the summary empties are removed;
 * everything else is kept as cataloged.
 */
void marc_apply_summary(arena_t *a, marc_record_t *r, const marc_summary_t *s);

/* Replace the 035 system number of `source` (others are kept) with this id. */
void marc_set_system_id(arena_t *a, marc_record_t *r, const char *source, int64_t id);
/* The id in a system number of `source` ("(source)n"), or 0 if it is not one. */
int64_t marc_system_id(const char *number, const char *source);

/* ISBN-10 or -13 (hyphens, spaces, qualifiers allowed) to ISBN-13 digits; NULL if invalid. */
char *marc_isbn13(arena_t *a, const char *text);
/* "12345678" or "1234-5678" with a valid check digit -> "1234-5678"; NULL if invalid. */
char *marc_issn(arena_t *a, const char *text);
/* Trim ISBD punctuation (" /", " :", ";", ",", ".") and spaces from the end. */
char *marc_trim_punctuation(arena_t *a, const char *text);

#endif
