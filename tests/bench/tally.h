/*
 * tally.h: the inquiry tallies of the service bench. carrel-bench's tally
 * workload (InquiryAdd through carreld) and raw-desk's tally workload
 * (inquiry_add through libpq) record the same sequence, so that both sides
 * of the ratio do the same work.
 */
#ifndef CARREL_BENCH_TALLY_H
#define CARREL_BENCH_TALLY_H

#include <stdint.h>

typedef struct tally_shape {
    const char *kind; /* a seeded inquiry_kind code */
    int read_level;   /* READ scale 1-6 */
    const char *channel;
} tally_shape_t;

/* Twenty tallies in a public library's proportions: most questions are
 * directional or about an item's place, few need real reference work, one
 * in five comes by phone. A desk records them in turn. */
static const tally_shape_t tally_shapes[] = {
    {"directional", 1, "in_person"},
    {"item_location", 1, "in_person"},
    {"directional", 1, "in_person"},
    {"technology", 2, "in_person"},
    {"item_location", 2, "phone"},
    {"directional", 1, "in_person"},
    {"account", 2, "in_person"},
    {"reference", 3, "in_person"},
    {"directional", 1, "in_person"},
    {"item_location", 1, "phone"},
    {"technology", 3, "in_person"},
    {"directional", 1, "in_person"},
    {"readers_advisory", 2, "in_person"},
    {"account", 1, "phone"},
    {"item_location", 1, "in_person"},
    {"reference", 4, "phone"},
    {"directional", 1, "in_person"},
    {"technology", 2, "in_person"},
    {"other", 1, "in_person"},
    {"reference", 2, "in_person"},
};

/* The n-th tally of desk `desk` (desks start at different places). */
static inline const tally_shape_t *tally_shape(int desk, uint64_t n)
{
    size_t count = sizeof(tally_shapes) / sizeof(tally_shapes[0]);
    return &tally_shapes[((uint64_t)desk * 7 + n) % count];
}

#endif
