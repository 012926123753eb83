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
/*
 * The columns (and FROM clause) of an item as catalog_item_from_row reads
 * them; a statement appends its WHERE. An open loan gives on_loan and the due
 * time, never the borrower.
 */
#define CATALOG_ITEM_COLUMNS                                                                       \
    "i.id, i.barcode, i.bib_id, ob.code, cb.code, i.location, i.call_number, i.item_type,"         \
    " i.price_cents, i.status::text, i.date_added, coalesce(api_time(i.last_circulated), ''),"     \
    " i.circ_count, i.version, b.title, l.id IS NOT NULL, api_time(l.due_at),"                     \
    " library_local_date(l.due_at)::text"                                                          \
    " FROM item i JOIN branch ob ON ob.id = i.owning_branch_id"                                    \
    " JOIN branch cb ON cb.id = i.current_branch_id JOIN bib b ON b.id = i.bib_id"                 \
    " LEFT JOIN loan l ON l.item_id = i.id AND l.returned_at IS NULL"
/* An Item from a row in the column order of CATALOG_ITEM_COLUMNS. */
Carrel__Item *catalog_item_from_row(arena_t *a, const PGresult *res, int row);
/* End req with INTERNAL "damaged_record": bib's stored MARC is unreadable (why); verb: "shown". */
void catalog_damaged_record(struct request *req, int64_t bib_id, const char *why, const char *verb);

#endif
