/*
 * catalog: search, bibliographic records and items.
 *
 * The rules (version checks, barcode rules, which statuses an edit may set,
 * the branch an item editor may act for) are in sql/rules/catalog.sql; this
 * file validates the shape of requests, keeps each bib's MARC record in step
 * with edits of its main fields (marc.c), and turns rows into messages.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "handlers.h"
#include "log.h"
#include "marc.h"
#include "pgtext.h"
#include "reply.h"

enum {
    SEARCH_ID,
    SEARCH_TITLE,
    SEARCH_AUTHOR,
    SEARCH_PUBLISHER,
    SEARCH_YEAR,
    SEARCH_FORMAT,
    SEARCH_LANGUAGE,
    SEARCH_CALL_NUMBER,
    SEARCH_ISBNS,
    SEARCH_COPIES,
    SEARCH_TOTAL_COPIES,
    SEARCH_AVAILABLE_COPIES,
    SEARCH_TOTAL,
    SEARCH_TOTAL_CAPPED,
    SEARCH_ON_DISPLAY,
    SEARCH_NCOLS
};
static const reply_stmt_t stmt_search = REPLY_STMT(
    "catalog_search", SEARCH_NCOLS,
    "SELECT id, title, author, publisher, pub_year, format, language, call_number, isbns,"
    "       copies, total_copies, available_copies, total, total_capped, on_display"
    "  FROM catalog_search($1, $2, $3, $4, $5, $6, $7, $8::boolean, $9::int, $10::int)");

#define BIB_COLUMNS                                                                                \
    "b.id, b.title, b.author, b.subjects, b.isbns, b.issns, b.publisher, b.pub_year, b.format,"    \
    " b.language, b.call_number, b.control_number, b.control_source, b.version, "                  \
    "api_time(b.updated_at), b.audience, b.literary_form"

/* BIB_COLUMNS by name, then stmt_bib_get's MARC. */
enum {
    BIB_ID,
    BIB_TITLE,
    BIB_AUTHOR,
    BIB_SUBJECTS,
    BIB_ISBNS,
    BIB_ISSNS,
    BIB_PUBLISHER,
    BIB_YEAR,
    BIB_FORMAT,
    BIB_LANGUAGE,
    BIB_CALL_NUMBER,
    BIB_CONTROL_NUMBER,
    BIB_CONTROL_SOURCE,
    BIB_VERSION,
    BIB_UPDATED_AT,
    BIB_AUDIENCE,
    BIB_LITERARY_FORM,
    BIB_MARC,
    BIB_NCOLS
};
static const reply_stmt_t stmt_bib_get = REPLY_STMT(
    "catalog_bib_get", BIB_NCOLS,
    "SELECT " BIB_COLUMNS ", CASE WHEN $2::boolean THEN b.marc END FROM bib b WHERE b.id = $1");

#define ITEM_COLUMNS CATALOG_ITEM_COLUMNS

static const reply_stmt_t stmt_bib_items = REPLY_STMT(
    "catalog_bib_items", CATALOG_ITEM_NCOLS,
    "SELECT " ITEM_COLUMNS " WHERE i.bib_id = $1 ORDER BY cb.code, i.call_number, i.barcode");

static const reply_stmt_t stmt_item_get =
    REPLY_STMT("catalog_item_get", CATALOG_ITEM_NCOLS,
               "SELECT " ITEM_COLUMNS " WHERE i.barcode = $1 OR i.id = $2");

enum { BIB_MARC_MARC, BIB_MARC_NCOLS };
static const reply_stmt_t stmt_bib_marc =
    REPLY_STMT("catalog_bib_marc", BIB_MARC_NCOLS, "SELECT marc FROM bib WHERE id = $1");

/* bib_save and item_save answer with the id of the record saved. */
enum { SAVED_ID, SAVED_NCOLS };
static const reply_stmt_t stmt_bib_save = REPLY_STMT(
    "catalog_bib_save", SAVED_NCOLS,
    "SELECT bib_save($1, $2, $3, $4, $5, $6, $7, $8::text[], $9::text[], $10::text[], $11, $12,"
    "                $13, $14, $15, $16, $17)");

static const reply_stmt_t stmt_item_save =
    REPLY_STMT("catalog_item_save", SAVED_NCOLS,
               "SELECT item_save($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
               "                 $14::item_status)");

void catalog_register_statements(void)
{
    db_stmt_register(&stmt_search.db);
    db_stmt_register(&stmt_bib_get.db);
    db_stmt_register(&stmt_bib_items.db);
    db_stmt_register(&stmt_item_get.db);
    db_stmt_register(&stmt_bib_marc.db);
    db_stmt_register(&stmt_bib_save.db);
    db_stmt_register(&stmt_item_save.db);
}

/* ---- item statuses: the enum names of proto and SQL correspond ---- */

static const char *const item_status_names[] = {
    [CARREL__ITEM_STATUS__ITEM_STATUS_AVAILABLE] = "available",
    [CARREL__ITEM_STATUS__ITEM_STATUS_CHECKED_OUT] = "checked_out",
    [CARREL__ITEM_STATUS__ITEM_STATUS_IN_TRANSIT] = "in_transit",
    [CARREL__ITEM_STATUS__ITEM_STATUS_ON_HOLD_SHELF] = "on_hold_shelf",
    [CARREL__ITEM_STATUS__ITEM_STATUS_MISSING] = "missing",
    [CARREL__ITEM_STATUS__ITEM_STATUS_LOST] = "lost",
    [CARREL__ITEM_STATUS__ITEM_STATUS_DAMAGED] = "damaged",
    [CARREL__ITEM_STATUS__ITEM_STATUS_WITHDRAWN] = "withdrawn",
    [CARREL__ITEM_STATUS__ITEM_STATUS_IN_PROCESSING] = "in_processing",
    [CARREL__ITEM_STATUS__ITEM_STATUS_CLAIMED_RETURNED] = "claimed_returned",
};

#define ITEM_STATUS_COUNT (sizeof(item_status_names) / sizeof(item_status_names[0]))

const char *item_status_name(Carrel__ItemStatus s)
{
    return (size_t)s < ITEM_STATUS_COUNT && item_status_names[s] ? item_status_names[s] : NULL;
}

Carrel__ItemStatus item_status_from_name(const char *name)
{
    for (size_t i = 1; i < ITEM_STATUS_COUNT; i++)
        if (item_status_names[i] && strcmp(item_status_names[i], name) == 0)
            return (Carrel__ItemStatus)i;
    return CARREL__ITEM_STATUS__ITEM_STATUS_UNSPECIFIED;
}

/* ---- row conversion ---- */

static char **catalog_array(arena_t *a, const PGresult *res, int row, int col, size_t *n)
{
    return pgtext_array_parse(a, db_text(res, row, col), n);
}

Carrel__Item *catalog_item_from_row(arena_t *a, const PGresult *res, int row)
{
    Carrel__Item *it = arena_new(a, Carrel__Item, 1);
    carrel__item__init(it);
    it->has_id = 1;
    it->id = db_int64(res, row, CATALOG_ITEM_ID);
    it->barcode = arena_strdup(a, COL(res, row, CATALOG_ITEM_BARCODE));
    it->has_bib_id = 1;
    it->bib_id = db_int64(res, row, CATALOG_ITEM_BIB_ID);
    it->owning_branch = arena_strdup(a, COL(res, row, CATALOG_ITEM_OWNING_BRANCH));
    it->current_branch = arena_strdup(a, COL(res, row, CATALOG_ITEM_CURRENT_BRANCH));
    it->location = arena_strdup(a, COL(res, row, CATALOG_ITEM_LOCATION));
    it->call_number = arena_strdup(a, COL(res, row, CATALOG_ITEM_CALL_NUMBER));
    it->item_type = arena_strdup(a, COL(res, row, CATALOG_ITEM_TYPE));
    it->has_price_cents = 1;
    it->price_cents = db_int64(res, row, CATALOG_ITEM_PRICE_CENTS);
    it->has_status = 1;
    it->status = item_status_from_name(COL(res, row, CATALOG_ITEM_STATUS));
    it->date_added = arena_strdup(a, COL(res, row, CATALOG_ITEM_DATE_ADDED));
    it->last_circulated = arena_strdup(a, COL(res, row, CATALOG_ITEM_LAST_CIRCULATED));
    it->has_circ_count = 1;
    it->circ_count = db_int32(res, row, CATALOG_ITEM_CIRC_COUNT);
    it->has_version = 1;
    it->version = db_int32(res, row, CATALOG_ITEM_VERSION);
    it->title = arena_strdup(a, COL(res, row, CATALOG_ITEM_TITLE));
    it->has_on_loan = 1;
    it->on_loan = db_bool(res, row, CATALOG_ITEM_ON_LOAN);
    if (it->on_loan) {
        it->due_at = arena_strdup(a, COL(res, row, CATALOG_ITEM_DUE_AT));
        it->due_date = arena_strdup(a, COL(res, row, CATALOG_ITEM_DUE_DATE));
    }
    if (!db_null(res, row, CATALOG_ITEM_DISPLAY))
        it->display = arena_strdup(a, COL(res, row, CATALOG_ITEM_DISPLAY));
    if (COL(res, row, CATALOG_ITEM_LAST_USED)[0] != '\0') /* never used: absent */
        it->last_used = arena_strdup(a, COL(res, row, CATALOG_ITEM_LAST_USED));
    return it;
}

static Carrel__Bib *catalog_bib_from_row(arena_t *a, const PGresult *res, int row)
{
    Carrel__Bib *b = arena_new(a, Carrel__Bib, 1);
    carrel__bib__init(b);
    b->has_id = 1;
    b->id = db_int64(res, row, BIB_ID);
    b->title = arena_strdup(a, COL(res, row, BIB_TITLE));
    b->author = arena_strdup(a, COL(res, row, BIB_AUTHOR));
    b->subjects = catalog_array(a, res, row, BIB_SUBJECTS, &b->n_subjects);
    b->isbns = catalog_array(a, res, row, BIB_ISBNS, &b->n_isbns);
    b->issns = catalog_array(a, res, row, BIB_ISSNS, &b->n_issns);
    b->publisher = arena_strdup(a, COL(res, row, BIB_PUBLISHER));
    b->year = arena_strdup(a, COL(res, row, BIB_YEAR));
    b->format = arena_strdup(a, COL(res, row, BIB_FORMAT));
    b->language = arena_strdup(a, COL(res, row, BIB_LANGUAGE));
    b->call_number = arena_strdup(a, COL(res, row, BIB_CALL_NUMBER));
    b->control_number = arena_strdup(a, COL(res, row, BIB_CONTROL_NUMBER));
    b->control_source = arena_strdup(a, COL(res, row, BIB_CONTROL_SOURCE));
    b->has_version = 1;
    b->version = db_int32(res, row, BIB_VERSION);
    b->updated_at = arena_strdup(a, COL(res, row, BIB_UPDATED_AT));
    b->audience = arena_strdup(a, COL(res, row, BIB_AUDIENCE));
    b->literary_form = arena_strdup(a, COL(res, row, BIB_LITERARY_FORM));
    return b;
}

/* ---- search ---- */

static Carrel__BibSummary *catalog_summary_from_row(arena_t *a, const PGresult *res, int row)
{
    Carrel__BibSummary *s = arena_new(a, Carrel__BibSummary, 1);
    carrel__bib_summary__init(s);
    s->has_id = 1;
    s->id = db_int64(res, row, SEARCH_ID);
    s->title = arena_strdup(a, COL(res, row, SEARCH_TITLE));
    s->author = arena_strdup(a, COL(res, row, SEARCH_AUTHOR));
    s->publisher = arena_strdup(a, COL(res, row, SEARCH_PUBLISHER));
    s->year = arena_strdup(a, COL(res, row, SEARCH_YEAR));
    s->format = arena_strdup(a, COL(res, row, SEARCH_FORMAT));
    s->language = arena_strdup(a, COL(res, row, SEARCH_LANGUAGE));
    s->call_number = arena_strdup(a, COL(res, row, SEARCH_CALL_NUMBER));
    s->isbns = catalog_array(a, res, row, SEARCH_ISBNS, &s->n_isbns);
    size_t n = 0;
    char **copies = catalog_array(a, res, row, SEARCH_COPIES, &n);
    s->copies = arena_new(a, Carrel__CopyCount *, n + 1);
    for (size_t i = 0; i < n; i++) {
        /* "DWN:3:1": branch, copies there, available there */
        char *code = copies[i];
        char *p1 = code ? strchr(code, ':') : NULL;
        char *p2 = p1 ? strchr(p1 + 1, ':') : NULL;
        if (p2 == NULL)
            continue;
        *p1 = *p2 = '\0';
        Carrel__CopyCount *c = arena_new(a, Carrel__CopyCount, 1);
        carrel__copy_count__init(c);
        c->branch_code = code;
        c->has_total = c->has_available = 1;
        c->total = atoi(p1 + 1);
        c->available = atoi(p2 + 1);
        s->copies[s->n_copies++] = c;
    }
    s->has_total_copies = s->has_available_copies = 1;
    s->total_copies = db_int32(res, row, SEARCH_TOTAL_COPIES);
    s->available_copies = db_int32(res, row, SEARCH_AVAILABLE_COPIES);
    /* "DWN: on display: THEME (place)", one per display, page rows only */
    s->on_display = catalog_array(a, res, row, SEARCH_ON_DISPLAY, &s->n_on_display);
    return s;
}

static void search_done(request_t *req, const PGresult *res)
{
    arena_t *a = &req->arena;
    int n = PQntuples(res);
    Carrel__CatalogSearchReply *reply = arena_new(a, Carrel__CatalogSearchReply, 1);
    carrel__catalog_search_reply__init(reply);
    reply->results = arena_new(a, Carrel__BibSummary *, n + 1);
    for (int i = 0; i < n; i++)
        reply->results[reply->n_results++] = catalog_summary_from_row(a, res, i);
    reply->has_total = 1;
    reply->total = n ? db_int32(res, 0, SEARCH_TOTAL) : 0;
    /* Broad words: total is the size of the ranked set, a lower bound. */
    reply->has_total_capped = 1;
    reply->total_capped = n && db_bool(res, 0, SEARCH_TOTAL_CAPPED);
    req->resp.body_case = CARREL__RESPONSE__BODY_CATALOG_SEARCH;
    req->resp.catalog_search = reply;
    request_ok(req);
}

/* NULL for absent or blank strings, so SQL sees "no criterion". */
static const char *catalog_opt(const char *s)
{
    if (s == NULL)
        return NULL;
    while (*s == ' ')
        s++;
    return *s ? s : NULL;
}

void handle_catalog_search(request_t *req)
{
    Carrel__CatalogSearch *m = req->msg->catalog_search;
    arena_t *a = &req->arena;
    const char *query = catalog_opt(m->query);
    const char *isbn = catalog_opt(m->isbn);
    const char *issn = catalog_opt(m->issn);
    const char *barcode = catalog_opt(m->barcode);
    const char *callno = catalog_opt(m->call_number_prefix);
    const char *branch = catalog_opt(m->branch_code), *format = catalog_opt(m->format);
    bool available = m->has_available_only && m->available_only;
    /* Filters alone are a search too ("DVDs on our shelf"): the answer is
     * paged like any other, so a broad one costs no more than a page. */
    if (!query && !isbn && !issn && !barcode && !callno && !branch && !format && !available) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:query",
                     "Give words to search for, an ISBN, an ISSN, a barcode, a call number, or "
                     "a filter (branch, format, available).");
        return;
    }
    if (query && strlen(query) > 500) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:query",
                     "The search is too long (500 characters at most).");
        return;
    }
    if (isbn && (isbn = marc_isbn13(a, isbn)) == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:isbn",
                     "%s is not a valid ISBN.", m->isbn);
        return;
    }
    if (issn && (issn = marc_issn(a, issn)) == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:issn",
                     "%s is not a valid ISSN.", m->issn);
        return;
    }
    int limit;
    if (!request_limit(req, m->has_limit, m->limit, 20, 100, "field:limit", &limit))
        return;
    int offset = m->has_offset ? m->offset : 0;
    if (offset < 0 || offset > 100000) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:offset",
                     "Results can be paged through within the first 100000 (offset 0 to "
                     "100000).");
        return;
    }
    const char *values[10] = {
        query,
        isbn,
        issn,
        barcode,
        callno,
        branch,
        format,
        available ? "true" : "false",
        pgtext_int(a, offset),
        pgtext_int(a, limit),
    };
    reply_query(req, &stmt_search, 10, values, search_done);
}

/* ---- bib show ---- */

/*
 * A stored MARC record that marc_parse() refuses (stored before the reader
 * was strict, or changed by hand): a clear answer naming the bib and the
 * defect, logged, never a guess at what the record meant.
 */
void catalog_damaged_record(struct request *req, int64_t bib_id, const char *why, const char *verb)
{
    log_error(req->conn->id, "stored MARC of bib %lld is damaged: %s", (long long)bib_id, why);
    request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "damaged_record",
                 "The stored MARC record of bib %lld is damaged (%s), so it cannot be %s; "
                 "import a good copy of it over it.",
                 (long long)bib_id, why, verb);
}

typedef struct bib_get_state {
    Carrel__Bib *bib;
} bib_get_state_t;

static void bib_items_done(request_t *req, const PGresult *res)
{
    bib_get_state_t *st = req->state;
    int n = PQntuples(res);
    st->bib->items = arena_new(&req->arena, Carrel__Item *, n + 1);
    for (int i = 0; i < n; i++)
        st->bib->items[st->bib->n_items++] = catalog_item_from_row(&req->arena, res, i);
    req->resp.body_case = CARREL__RESPONSE__BODY_BIB;
    req->resp.bib = st->bib;
    request_ok(req);
}

static void bib_get_done(request_t *req, const PGresult *res)
{
    if (PQntuples(res) == 0) {
        request_fail(req, CARREL__STATUS__STATUS_NOT_FOUND, "bib",
                     "There is no bibliographic record %lld.", (long long)req->msg->bib_get->id);
        return;
    }
    arena_t *a = &req->arena;
    bib_get_state_t *st = arena_new(a, bib_get_state_t, 1);
    req->state = st;
    st->bib = catalog_bib_from_row(a, res, 0);
    if (!db_null(res, 0, BIB_MARC)) {
        size_t len = 0;
        uint8_t *bytes = pgtext_bytea_decode(a, COL(res, 0, BIB_MARC), &len);
        marc_record_t rec;
        char err[160] = "not stored as bytea";
        if (bytes == NULL || marc_parse(a, bytes, len, &rec, err, sizeof(err)) != 0) {
            catalog_damaged_record(req, st->bib->id, err, "shown");
            return;
        }
        st->bib->marc = marc_to_text(a, &rec);
    }
    const char *values[1] = {pgtext_int(a, st->bib->id)};
    reply_query(req, &stmt_bib_items, 1, values, bib_items_done);
}

void handle_bib_get(request_t *req)
{
    Carrel__BibGet *m = req->msg->bib_get;
    if (!m->has_id || m->id <= 0) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:id",
                     "Name the bibliographic record by its number.");
        return;
    }
    const char *values[2] = {pgtext_int(&req->arena, m->id),
                             m->has_with_marc && m->with_marc ? "true" : "false"};
    reply_query(req, &stmt_bib_get, 2, values, bib_get_done);
}

/* ---- bib save ---- */

typedef struct bib_save_state {
    marc_summary_t summary;
    int64_t id;
} bib_save_state_t;

static void bib_saved(request_t *req, const PGresult *res)
{
    bib_save_state_t *st = req->state;
    st->id = db_int64(res, 0, SAVED_ID);
    log_info(req->conn->id, "%s saved bib %lld", request_session(req)->username, (long long)st->id);
    const char *values[2] = {pgtext_int(&req->arena, st->id), "false"};
    reply_query(req, &stmt_bib_get, 2, values, bib_get_done);
}

/* Store the record: serialize, take the indexed fields back out, call bib_save. */
static void bib_store(request_t *req, marc_record_t *rec, int64_t id, int32_t version)
{
    arena_t *a = &req->arena;
    struct buf iso = BUF_INIT;
    char err[200];
    if (marc_write(rec, &iso, err, sizeof(err)) != 0) {
        /* Too long, or a control character or invalid UTF-8 in a field: a
         * record marc_parse() could not read back is never stored. */
        buf_free(&iso);
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST,
                     strstr(err, "too long") ? "too_long" : "marc",
                     "The record cannot be saved as MARC: %s.", err);
        return;
    }
    bib_save_state_t *st = arena_new(a, bib_save_state_t, 1);
    req->state = st;
    marc_summary_t *s = &st->summary;
    marc_summarize(a, rec, s);
    static const int formats[17] = {0, 0, 0, 0, 1};
    int lengths[17] = {0};
    lengths[4] = (int)iso.len;
    char *marc = arena_strndup(a, (const char *)iso.data, iso.len);
    buf_free(&iso);
    const session_t *se = request_session(req);
    const char *values[17] = {
        pgtext_int(a, se->staff_id),
        pgtext_int(a, se->workstation_id),
        id ? pgtext_int(a, id) : NULL,
        pgtext_int(a, version),
        marc,
        s->title,
        s->author,
        pgtext_array_build(a, s->subjects, s->nsubjects),
        pgtext_array_build(a, s->isbns, s->nisbns),
        pgtext_array_build(a, s->issns, s->nissns),
        s->publisher,
        s->year,
        s->format,
        s->language,
        s->call_number,
        s->audience,
        s->literary_form,
    };
    reply_query_bin(req, &stmt_bib_save, 17, values, lengths, formats, bib_saved);
}

/* The staff's fields as a summary; validation errors end the request. */
static bool bib_fields_from_request(request_t *req, const Carrel__Bib *b, marc_summary_t *s)
{
    arena_t *a = &req->arena;
    memset(s, 0, sizeof(*s));
    s->title = arena_strdup(a, b->title ? b->title : "");
    s->author = arena_strdup(a, b->author ? b->author : "");
    s->publisher = arena_strdup(a, b->publisher ? b->publisher : "");
    s->year = arena_strdup(a, b->year ? b->year : "");
    s->format = arena_strdup(a, b->format && b->format[0] ? b->format : "book");
    s->language = arena_strdup(a, b->language ? b->language : "");
    s->call_number = arena_strdup(a, b->call_number ? b->call_number : "");
    /* Each becomes a field, inserted in tag order: bound them so an edit's
     * cost stays small (a MARC record cannot hold more than a few thousand). */
    if (b->n_subjects > 500 || b->n_isbns > 500 || b->n_issns > 500) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "too_long",
                     "A record holds at most 500 subjects, 500 ISBNs and 500 ISSNs.");
        return false;
    }
    s->subjects = b->subjects;
    s->nsubjects = b->n_subjects;
    s->isbns = arena_new(a, char *, b->n_isbns + 1);
    for (size_t i = 0; i < b->n_isbns; i++) {
        char *isbn = marc_isbn13(a, b->isbns[i]);
        if (isbn == NULL) {
            request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:isbns",
                         "%s is not a valid ISBN.", b->isbns[i]);
            return false;
        }
        s->isbns[s->nisbns++] = isbn;
    }
    s->issns = arena_new(a, char *, b->n_issns + 1);
    for (size_t i = 0; i < b->n_issns; i++) {
        char *issn = marc_issn(a, b->issns[i]);
        if (issn == NULL) {
            request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:issns",
                         "%s is not a valid ISSN.", b->issns[i]);
            return false;
        }
        s->issns[s->nissns++] = issn;
    }
    if (s->title[0] == '\0') {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:title",
                     "A title is required.");
        return false;
    }
    size_t ylen = strlen(s->year);
    if (ylen != 0 && (ylen != 4 || strspn(s->year, "0123456789") != 4)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:year",
                     "%s is not a year (four digits).", s->year);
        return false;
    }
    size_t llen = strlen(s->language);
    if (llen != 0 && (llen != 3 || strspn(s->language, "abcdefghijklmnopqrstuvwxyz") != 3)) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:language",
                     "%s is not a MARC language code (three letters, e.g. eng).", s->language);
        return false;
    }
    return true;
}

static void bib_marc_loaded(request_t *req, const PGresult *res)
{
    const Carrel__Bib *b = req->msg->bib_save->bib;
    if (PQntuples(res) == 0) {
        request_fail(req, CARREL__STATUS__STATUS_NOT_FOUND, "bib",
                     "There is no bibliographic record %lld.", (long long)b->id);
        return;
    }
    arena_t *a = &req->arena;
    size_t len = 0;
    uint8_t *bytes = pgtext_bytea_decode(a, COL(res, 0, BIB_MARC_MARC), &len);
    marc_record_t rec;
    char err[160] = "not stored as bytea";
    if (bytes == NULL || marc_parse(a, bytes, len, &rec, err, sizeof(err)) != 0) {
        catalog_damaged_record(req, b->id, err, "edited");
        return;
    }
    marc_summary_t s;
    if (!bib_fields_from_request(req, b, &s))
        return;
    marc_apply_summary(a, &rec, &s);
    bib_store(req, &rec, b->id, b->has_version ? b->version : -1);
}

/* A new record: leader, 008 with today's date, then the staff's fields. */
static void bib_create(request_t *req, const Carrel__Bib *b)
{
    arena_t *a = &req->arena;
    marc_summary_t s;
    if (!bib_fields_from_request(req, b, &s))
        return;
    marc_record_t rec;
    marc_init(&rec, NULL);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    /* 008: date entered, single date, year, place unknown, language, source "d". */
    char f008[41];
    memset(f008, ' ', 40);
    f008[40] = '\0';
    strftime(f008, 7, "%y%m%d", &tm);
    f008[6] = ' ';
    f008[6] = 's';
    if (strlen(s.year) == 4)
        memcpy(f008 + 7, s.year, 4);
    memcpy(f008 + 15, "xx", 2);
    memcpy(f008 + 35, strlen(s.language) == 3 ? s.language : "und", 3);
    f008[39] = 'd';
    marc_add_control(a, &rec, "008", f008);
    marc_field_t *f040 = marc_add_field(a, &rec, "040", ' ', ' ');
    marc_add_subfield(a, f040, 'a', "Carrel");
    marc_apply_summary(a, &rec, &s);
    bib_store(req, &rec, 0, 0);
}

void handle_bib_save(request_t *req)
{
    const Carrel__Bib *b = req->msg->bib_save->bib;
    if (b == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:bib", "BibSave needs a bib.");
        return;
    }
    if (!b->has_id || b->id == 0) {
        bib_create(req, b);
        return;
    }
    if (!b->has_version) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:version",
                     "An edit must say which version of the record it changes.");
        return;
    }
    const char *values[1] = {pgtext_int(&req->arena, b->id)};
    reply_query(req, &stmt_bib_marc, 1, values, bib_marc_loaded);
}

/* ---- items ---- */

/* What catalog_item_now hands the item to. */
struct catalog_item_call {
    catalog_item_fn fn;
    void *arg;
};

static void catalog_item_rows(request_t *req, const PGresult *res, void *arg)
{
    const struct catalog_item_call *call = arg;
    call->fn(req, PQntuples(res) ? catalog_item_from_row(&req->arena, res, 0) : NULL, call->arg);
}

void catalog_item_now(request_t *req, const char *barcode, const char *item_id, catalog_item_fn fn,
                      void *arg)
{
    struct catalog_item_call *call = arena_new(&req->arena, struct catalog_item_call, 1);
    call->fn = fn;
    call->arg = arg;
    const char *values[2] = {barcode, item_id};
    reply_query_arg(req, &stmt_item_get, 2, values, catalog_item_rows, call);
}

static void item_get_done(request_t *req, Carrel__Item *item, void *arg)
{
    (void)arg;
    if (item == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_NOT_FOUND, "item", "No item has that barcode.");
        return;
    }
    req->resp.body_case = CARREL__RESPONSE__BODY_ITEM;
    req->resp.item = item;
    request_ok(req);
}

void catalog_reply_item(request_t *req, const char *item_id)
{
    catalog_item_now(req, NULL, item_id, item_get_done, NULL);
}

void handle_item_get(request_t *req)
{
    Carrel__ItemGet *m = req->msg->item_get;
    if (catalog_opt(m->barcode) == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:barcode",
                     "Scan or type the item's barcode.");
        return;
    }
    catalog_item_now(req, m->barcode, NULL, item_get_done, NULL);
}

static void item_saved(request_t *req, const PGresult *res)
{
    catalog_reply_item(req, reply_text(req, res, 0, SAVED_ID));
}

void handle_item_save(request_t *req)
{
    const Carrel__Item *it = req->msg->item_save->item;
    arena_t *a = &req->arena;
    if (it == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:item",
                     "ItemSave needs an item.");
        return;
    }
    bool create = !it->has_id || it->id == 0;
    if (!create && !it->has_version) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:version",
                     "An edit must say which version of the item it changes.");
        return;
    }
    if (it->has_price_cents && it->price_cents < 0) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:price",
                     "A price cannot be negative.");
        return;
    }
    const char *status = NULL;
    if (it->has_status && it->status != CARREL__ITEM_STATUS__ITEM_STATUS_UNSPECIFIED &&
        (status = item_status_name(it->status)) == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:status",
                     "Unknown item status.");
        return;
    }
    const session_t *s = request_session(req);
    const char *values[14] = {
        pgtext_int(a, s->staff_id),
        pgtext_int(a, s->workstation_id),
        perm_role_is_branch_bound(s->role) ? pgtext_int(a, s->branch_id) : NULL,
        create ? NULL : pgtext_int(a, it->id),
        create ? NULL : pgtext_int(a, it->version),
        it->barcode,
        it->has_bib_id ? pgtext_int(a, it->bib_id) : NULL,
        it->owning_branch,
        catalog_opt(it->current_branch),
        it->location,
        it->call_number,
        it->item_type,
        it->has_price_cents ? pgtext_int(a, it->price_cents) : NULL,
        status,
    };
    reply_query(req, &stmt_item_save, 14, values, item_saved);
}
