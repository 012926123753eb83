/*
 * catalog: helpers other domains use to describe items.
 */
#ifndef CARREL_CATALOG_H
#define CARREL_CATALOG_H

#include <libpq-fe.h>

#include "arena.h"
#include "carrel.pb-c.h"

/* "available", "checked_out", ... as in the item_status SQL enum; NULL if unknown. */
const char *item_status_name(Carrel__ItemStatus s);
Carrel__ItemStatus item_status_from_name(const char *name);
/* End req with the item as it is now (body Item), looked up by id (decimal text). */
struct request;
void catalog_reply_item(struct request *req, const char *item_id);
/* An Item from a row in the column order of catalog.c's ITEM_COLUMNS. */
Carrel__Item *catalog_item_from_row(arena_t *a, const PGresult *res, int row);
/* End req with INTERNAL "damaged_record": bib's stored MARC is unreadable (why); verb: "shown". */
void catalog_damaged_record(struct request *req, int64_t bib_id, const char *why, const char *verb);

#endif
