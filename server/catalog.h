/*
 * catalog: helpers other domains use to describe items.
 */
#ifndef CARREL_CATALOG_H
#define CARREL_CATALOG_H

#include <libpq-fe.h>

#include "arena.h"
#include "carrel.pb-c.h"
#include "db.h"

/* "available", "checked_out", ... as in the item_status SQL enum; NULL if unknown. */
const char *item_status_name(Carrel__ItemStatus s);
Carrel__ItemStatus item_status_from_name(const char *name);
struct request;
/* End req with the item as it is now (body Item), looked up by id (decimal text). */
void catalog_reply_item(struct request *req, const char *item_id);
/*
 * The one way to read "the item as it is now": look it up by barcode or by
 * id (decimal text; either may be NULL) and hand it to fn, or NULL when no
 * item matches. Database failures end the request (reply.h); fn never runs.
 */
typedef void (*catalog_item_fn)(struct request *req, Carrel__Item *item, void *arg);
void catalog_item_now(struct request *req, const char *barcode, const char *item_id,
                      catalog_item_fn fn, void *arg);
/*
 * The columns (and FROM clause) of an item as catalog_item_from_row reads
 * them; a statement appends its WHERE. An open loan gives on_loan and the due
 * time, never the borrower. display is "on display: THEME (place)" while the
 * copy is on a running display (NULL otherwise: one index probe a row), and
 * last_used the library's day of its last checkout or in-house use.
 */
#define CATALOG_ITEM_COLUMNS                                                                       \
    "i.id, i.barcode, i.bib_id, ob.code, cb.code, i.location, i.call_number, i.item_type,"         \
    " i.price_cents, i.status::text, i.date_added, coalesce(api_time(i.last_circulated), ''),"     \
    " i.circ_count, i.version, b.title, l.id IS NOT NULL, api_time(l.due_at),"                     \
    " library_local_date(l.due_at)::text,"                                                         \
    " item_display_text(i.id), coalesce(library_local_date(i.last_used_at)::text, '')"             \
    " FROM item i JOIN branch ob ON ob.id = i.owning_branch_id"                                    \
    " JOIN branch cb ON cb.id = i.current_branch_id JOIN bib b ON b.id = i.bib_id"                 \
    " LEFT JOIN loan l ON l.item_id = i.id AND l.returned_at IS NULL"
/* CATALOG_ITEM_COLUMNS by name, in their order (a statement that selects
 * only them declares CATALOG_ITEM_NCOLS). */
enum {
    CATALOG_ITEM_ID,
    CATALOG_ITEM_BARCODE,
    CATALOG_ITEM_BIB_ID,
    CATALOG_ITEM_OWNING_BRANCH,
    CATALOG_ITEM_CURRENT_BRANCH,
    CATALOG_ITEM_LOCATION,
    CATALOG_ITEM_CALL_NUMBER,
    CATALOG_ITEM_TYPE,
    CATALOG_ITEM_PRICE_CENTS,
    CATALOG_ITEM_STATUS,
    CATALOG_ITEM_DATE_ADDED,
    CATALOG_ITEM_LAST_CIRCULATED,
    CATALOG_ITEM_CIRC_COUNT,
    CATALOG_ITEM_VERSION,
    CATALOG_ITEM_TITLE,
    CATALOG_ITEM_ON_LOAN,
    CATALOG_ITEM_DUE_AT,
    CATALOG_ITEM_DUE_DATE,
    CATALOG_ITEM_DISPLAY,
    CATALOG_ITEM_LAST_USED,
    CATALOG_ITEM_NCOLS
};
/* An Item from a row in the column order of CATALOG_ITEM_COLUMNS. */
Carrel__Item *catalog_item_from_row(arena_t *a, const PGresult *res, int row);
/* End req with INTERNAL "damaged_record": bib's stored MARC is unreadable (why); verb: "shown". */
void catalog_damaged_record(struct request *req, int64_t bib_id, const char *why, const char *verb);

#endif
