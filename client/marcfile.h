/*
 * marcfile: splits a MARC file into records for import, the way mature
 * readers do: ISO 2709 records are found by their terminator and checked
 * against the leader's length; filler between records (spaces, NULs, line
 * ends, DOS end-of-file marks) is skipped; what cannot be a record is
 * reported with its position and skipped. MARCXML files are parsed whole
 * first (libxml2), so a file that is not well-formed loads nothing.
 */
#ifndef CARREL_MARCFILE_H
#define CARREL_MARCFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct marcfile_record {
    int64_t position; /* 1-based, counting everything that looked like a record */
    int64_t offset;   /* byte offset in the file */
    const uint8_t *data;
    size_t len;
    bool xml;
} marcfile_record_t;

typedef struct marcfile_problem {
    int64_t position;
    int64_t offset;
    char message[200];
} marcfile_problem_t;

typedef struct marcfile {
    uint8_t *bytes; /* the whole file (ISO 2709) */
    size_t size;
    char **xml_records; /* serialized <record> elements (MARCXML) */
    marcfile_record_t *records;
    size_t nrecords;
    marcfile_problem_t *problems; /* records skipped by the splitter */
    size_t nproblems;
    size_t records_cap, problems_cap; /* allocated; the arrays double */
    bool xml;
} marcfile_t;

/*
 * Read and split a file. Returns 0, or -1 with a sentence in err when the
 * file cannot be read at all (missing, or MARCXML that is not well-formed).
 */
__attribute__((warn_unused_result)) int marcfile_load(marcfile_t *mf, const char *path, char *err,
                                                      size_t errlen);
/* Split an in-memory ISO 2709 buffer (not copied; must outlive mf). */
void marcfile_split_iso2709(marcfile_t *mf, const uint8_t *bytes, size_t size);
void marcfile_free(marcfile_t *mf);

#endif
