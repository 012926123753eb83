/*
 * marcimport: MARC import and export (handlers in handlers.h). What is
 * declared here is the pure part, unit-tested on its own: the list of
 * problems an import batch reports.
 */
#ifndef CARREL_MARCIMPORT_H
#define CARREL_MARCIMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "carrel.pb-c.h"

/* Warnings listed in one batch reply; fatal problems (one a failed record) are always listed. */
#define IMPORT_MAX_WARNINGS 2000

typedef struct import_problems {
    Carrel__ImportProblem **list; /* on the arena, doubling */
    size_t n, cap;
    size_t warnings; /* non-fatal ones listed */
    size_t dropped;  /* non-fatal ones counted but not listed */
} import_problems_t;

/* Append one problem (copied to the arena); amortized O(1), bounded as above. */
void import_problems_add(arena_t *a, import_problems_t *p, int64_t position, int64_t offset,
                         bool fatal, const char *message);
/* The list for the reply, ending with a count of the warnings not listed, if any. */
void import_problems_close(arena_t *a, import_problems_t *p, Carrel__ImportProblem ***list,
                           size_t *n);

#endif
