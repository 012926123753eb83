/*
 * marcio: turns a MARC record as found in real files into a clean UTF-8
 * ISO 2709 record, using libyaz (ISO 2709 and MARCXML readers, MARC-8 to
 * UTF-8 conversion) and libxml2. Repairs what mature readers repair (a leader
 * length that does not match, MARC-8 without a flag, control characters in
 * the text, made spaces) and says so; refuses what cannot be read, with a
 * reason. Only the import uses it: interactive saves refuse such text.
 *
 * CPU work: call it from the thread pool (catalog import), never the loop.
 * marcio_init() must run once on the main thread before any worker uses it.
 */
#ifndef CARREL_MARCIO_H
#define CARREL_MARCIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * Zero bytes after every record marcio hands to libyaz. libyaz 5.34 reads
 * past the end of a record whose last field is a short 00X field (its
 * danMARC check looks two bytes beyond the field, its indicator repair up to
 * nine); with leader/10 fixed at 2 this is far more than it can reach.
 */
#define MARCIO_PAD 64

void marcio_init(void);
void marcio_cleanup(void);

/*
 * Normalize one record (ISO 2709 bytes, or one MARCXML <record> when xml).
 * On success appends the clean record to `out`, returns 0 and may write a
 * warning sentence (empty if none). On failure returns -1 with a reason.
 */
__attribute__((warn_unused_result)) int marcio_normalize(const uint8_t *data, size_t len, bool xml,
                                                         struct buf *out, char *warning,
                                                         size_t wlen, char *err, size_t elen);
/* A clean UTF-8 ISO 2709 record as MARCXML (for export). Returns 0 or -1. */
__attribute__((warn_unused_result)) int marcio_to_marcxml(const uint8_t *data, size_t len,
                                                          struct buf *out);

#endif
