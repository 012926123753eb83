/*
 * marcimport: MARC import and export.
 *
 * Import: the client streams a file as batches of raw records. For each
 * batch a worker thread (never the loop) normalizes every record with libyaz
 * (marcio.c), reads it (marc.c), extracts the indexed fields and holdings,
 * and writes one JSON document; then one statement, bib_import_batch() in
 * sql/rules/import.sql, matches, stores and audits the whole batch in one
 * transaction, set-based. A record that cannot be read is reported with its position
 * and reason; the rest still load. When the batch statement fails as a whole
 * (a constraint one record broke), its records are sent again one by one to
 * find the culprit; a refusal of the request itself (CRxxx) is not retried.
 *
 * Export: pages of stored records by id, as UTF-8 ISO 2709.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "marcimport.h"

#include "catalog.h"
#include "handlers.h"
#include "json.h"
#include "log.h"
#include "marc.h"
#include "marcio.h"
#include "pgtext.h"

#define IMPORT_MAX_RECORDS 2000
/* Warnings listed for one record; a record with a thousand odd indicators says so once. */
#define IMPORT_MAX_RECORD_WARNINGS 10

/* The rows of both import statements. Import and export keep their own
 * callbacks: an import retries a failed batch record by record, and both
 * own a job allocated outside the request. */
enum {
    IMPORT_POS,
    IMPORT_BIB_ID,
    IMPORT_ACTION,
    IMPORT_ITEMS_CREATED,
    IMPORT_ITEMS_UPDATED,
    IMPORT_PROBLEMS,
    IMPORT_NCOLS
};
static const db_stmt_t stmt_import = {
    "marc_import_batch",
    "SELECT pos, bib_id, action, items_created, items_updated, problems"
    "  FROM bib_import_batch($1, $2, $3::jsonb, $4, $5::boolean)",
};

static const db_stmt_t stmt_item_import = {
    "marc_item_import",
    "SELECT pos, bib_id, action, items_created, items_updated, problems"
    "  FROM item_import_rows($1, $2, $3::jsonb, $4)",
};

enum { EXPORT_ID, EXPORT_MARC, EXPORT_SOURCE, EXPORT_NCOLS };
static const db_stmt_t stmt_export = {
    "marc_export",
    "SELECT id, marc, library_setting_text('system_number_source')"
    "  FROM bib WHERE id > $1 ORDER BY id LIMIT $2",
};

void marcimport_register_statements(void)
{
    db_stmt_register(&stmt_import);
    db_stmt_register(&stmt_item_import);
    db_stmt_register(&stmt_export);
}

/*
 * One import request: its records as JSON entries (one per record that could
 * be read), sent as one batch; if the batch fails as a whole, sent again one
 * entry per statement so that only the bad record fails.
 */
typedef struct import_job {
    uv_work_t work;
    request_t *req;
    const db_stmt_t *stmt; /* bib_import_batch or item_import_rows */
    const char *values[5]; /* its parameters; [2] is the JSON */
    int nvalues;
    bool count_bibs;          /* report created/updated bibs (not for CSV items) */
    const char *holdings_tag; /* NULL: 952 when present, else 852 */
    char **entries;           /* arena strings, one JSON object per record */
    int64_t *positions;       /* each entry's record position (or CSV line) */
    size_t nentries;
    size_t next; /* one by one: the entry being loaded */
    bool one_by_one;
    Carrel__MarcImportReply *reply;
    import_problems_t problems; /* put on reply->problems when it is sent */
    size_t record_warnings;     /* warnings of the record being read */
} import_job_t;

static void import_send(import_job_t *job);

/*
 * Add a problem to the list. Appends are amortized O(1) (the array doubles on
 * the arena), and a reply lists at most IMPORT_MAX_WARNINGS warnings: past
 * that they are only counted, and import_problems_close() says how many were
 * left out. Fatal problems are always listed (at most a few per record), so
 * every record that failed is named. Without both bounds, a batch of records
 * with thousands of bad indicators each made the daemon copy the list on
 * every append: memory quadratic in the number of problems.
 */
void import_problems_add(arena_t *a, import_problems_t *p, int64_t position, int64_t offset,
                         bool fatal, const char *message)
{
    if (!fatal && p->warnings >= IMPORT_MAX_WARNINGS) {
        p->dropped++;
        return;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        Carrel__ImportProblem **list = arena_new(a, Carrel__ImportProblem *, cap);
        if (p->n)
            memcpy(list, p->list, p->n * sizeof(*list));
        p->list = list;
        p->cap = cap;
    }
    Carrel__ImportProblem *x = arena_new(a, Carrel__ImportProblem, 1);
    carrel__import_problem__init(x);
    x->has_position = x->has_offset = x->has_fatal = 1;
    x->position = position;
    x->offset = offset;
    x->fatal = fatal;
    x->message = arena_strdup(a, message);
    p->list[p->n++] = x;
    if (!fatal)
        p->warnings++;
}

/* Hand the list over (for the reply), with one last line for the warnings left out. */
void import_problems_close(arena_t *a, import_problems_t *p, Carrel__ImportProblem ***list,
                           size_t *n)
{
    if (p->dropped > 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%zu more warnings in this batch are not listed (%d are)",
                 p->dropped, IMPORT_MAX_WARNINGS);
        p->dropped = 0;
        p->warnings = 0; /* make room for this line */
        import_problems_add(a, p, 0, 0, false, msg);
    }
    *list = p->list;
    *n = p->n;
}

/* Record a problem on the reply (called on the worker, which owns req's arena meanwhile). */
static void import_problem(import_job_t *job, const Carrel__MarcRecord *rec, bool fatal,
                           const char *message)
{
    import_problems_add(&job->req->arena, &job->problems, rec->position, rec->offset, fatal,
                        message);
}

/* A record that is not loaded: its reason, counted as failed. */
static void import_fail(import_job_t *job, const Carrel__MarcRecord *rec, const char *message)
{
    import_problem(job, rec, true, message);
    job->reply->failed++;
}

/* A warning about the record being read; past IMPORT_MAX_RECORD_WARNINGS only counted. */
static void import_warn(import_job_t *job, const Carrel__MarcRecord *rec, const char *message)
{
    if (job->record_warnings++ < IMPORT_MAX_RECORD_WARNINGS)
        import_problem(job, rec, false, message);
}

/* After a record: say how many of its warnings were not listed. */
static void import_warnings_done(import_job_t *job, const Carrel__MarcRecord *rec)
{
    if (job->record_warnings > IMPORT_MAX_RECORD_WARNINGS) {
        char msg[120];
        snprintf(msg, sizeof(msg), "%zu more warnings about this record are not listed",
                 job->record_warnings - IMPORT_MAX_RECORD_WARNINGS);
        import_problem(job, rec, false, msg);
    }
    job->record_warnings = 0;
}

static void json_string_array(json_t *j, const char *key, char **items, size_t n)
{
    json_key(j, key);
    json_array_begin(j);
    for (size_t i = 0; i < n; i++)
        json_string(j, items[i]);
    json_array_end(j);
}

/* Indicators are digits, lower-case letters or blank; anything else becomes blank. */
static void import_fix_indicators(import_job_t *job, const Carrel__MarcRecord *rec,
                                  marc_record_t *m)
{
    for (size_t i = 0; i < m->nfields; i++) {
        marc_field_t *f = &m->fields[i];
        if (marc_is_control_tag(f->tag))
            continue;
        char *inds[2] = {&f->ind1, &f->ind2};
        for (int k = 0; k < 2; k++) {
            char c = *inds[k];
            if (c == ' ' || isdigit((unsigned char)c) || islower((unsigned char)c))
                continue;
            char msg[120];
            snprintf(msg, sizeof(msg), "field %s: indicator %d '%c' is not valid; read as blank",
                     f->tag, k + 1, isprint((unsigned char)c) ? c : '?');
            import_warn(job, rec, msg);
            *inds[k] = ' ';
        }
    }
}

static void import_holdings(json_t *j, arena_t *a, const marc_record_t *m, const char *tag)
{
    size_t n = 0;
    marc_holding_t *h = marc_holdings(a, m, tag, &n);
    json_key(j, "holdings");
    json_array_begin(j);
    for (size_t i = 0; i < n; i++) {
        json_object_begin(j);
        json_key(j, "tag");
        json_string(j, h[i].tag);
        json_key(j, "sf");
        json_array_begin(j);
        for (size_t k = 0; k < h[i].nsubfields; k++) {
            char code[2] = {h[i].subfields[k].code, '\0'};
            json_array_begin(j);
            json_string(j, code);
            json_string(j, h[i].subfields[k].value);
            json_array_end(j);
        }
        json_array_end(j);
        json_object_end(j);
    }
    json_array_end(j);
}

/* One record as a JSON entry, or a problem. Runs on the worker thread. */
static void import_record(import_job_t *job, const Carrel__MarcRecord *rec)
{
    json_t entry;
    json_init(&entry);
    json_t *j = &entry;
    arena_t a;
    arena_init(&a);
    struct buf clean = BUF_INIT, iso = BUF_INIT;
    char warning[300], err[300];
    marc_record_t m;
    if (!rec->has_data || rec->data.len == 0) {
        import_fail(job, rec, "empty record");
        goto done;
    }
    if (marcio_normalize(rec->data.data, rec->data.len, rec->has_xml && rec->xml, &clean, warning,
                         sizeof(warning), err, sizeof(err)) != 0) {
        import_fail(job, rec, err);
        goto done;
    }
    if (warning[0])
        import_warn(job, rec, warning);
    /* marc_parse refuses broken structure (marcio replaced control characters in the
     * text by spaces): a per-record error. */
    if (marc_parse(&a, clean.data, clean.len, &m, err, sizeof(err)) != 0) {
        char msg[360];
        snprintf(msg, sizeof(msg), "%s; not loaded", err);
        import_fail(job, rec, msg);
        goto done;
    }
    import_fix_indicators(job, rec, &m);
    marc_summary_t s;
    marc_summarize(&a, &m, &s);
    if (s.title[0] == '\0') {
        import_fail(job, rec,
                    "no title (245 $a): the record could not be read correctly; not loaded");
        goto done;
    }
    if (marc_write(&m, &iso, err, sizeof(err)) != 0) {
        char msg[360];
        snprintf(msg, sizeof(msg), "cannot store the record as MARC: %s; not loaded", err);
        import_fail(job, rec, msg);
        goto done;
    }
    const char *tag = job->holdings_tag;
    if (tag == NULL)
        tag = marc_find(&m, "952") ? "952" : "852";
    json_object_begin(j);
    json_key(j, "pos");
    json_int(j, rec->position);
    json_key(j, "marc");
    json_string(j, arena_strndup(&a, (const char *)iso.data, iso.len));
    json_key(j, "title");
    json_string(j, s.title);
    json_key(j, "author");
    json_string(j, s.author);
    json_string_array(j, "subjects", s.subjects, s.nsubjects);
    json_string_array(j, "isbns", s.isbns, s.nisbns);
    json_string_array(j, "issns", s.issns, s.nissns);
    json_key(j, "publisher");
    json_string(j, s.publisher);
    json_key(j, "year");
    json_string(j, s.year);
    json_key(j, "format");
    json_string(j, s.format);
    json_key(j, "language");
    json_string(j, s.language);
    json_key(j, "call_number");
    json_string(j, s.call_number);
    json_key(j, "audience");
    json_string(j, s.audience);
    json_key(j, "literary_form");
    json_string(j, s.literary_form);
    json_key(j, "cn");
    json_string(j, s.control_number);
    json_key(j, "cs");
    json_string(j, s.control_source);
    if (s.nsystem_numbers > 0) {
        json_key(j, "sids");
        json_array_begin(j);
        for (size_t i = 0; i < s.nsystem_numbers; i++)
            json_string(j, s.system_numbers[i]);
        json_array_end(j);
    }
    if (strcmp(tag, "none") != 0)
        import_holdings(j, &a, &m, tag);
    json_object_end(j);
    job->entries[job->nentries] =
        arena_strndup(&job->req->arena, (const char *)entry.out.data, entry.out.len);
    job->positions[job->nentries++] = rec->position;
done:
    import_warnings_done(job, rec);
    json_free(&entry);
    buf_free(&clean);
    buf_free(&iso);
    arena_free(&a);
}

static void import_work_cb(uv_work_t *w)
{
    import_job_t *job = w->data;
    Carrel__MarcImportBatch *m = job->req->msg->marc_import_batch;
    for (size_t i = 0; i < m->n_records; i++)
        import_record(job, m->records[i]);
}

static void import_finish(import_job_t *job)
{
    request_t *req = job->req;
    Carrel__MarcImportReply *r = job->reply;
    const char *source = req->msg->body_case == CARREL__REQUEST__BODY_MARC_IMPORT_BATCH
                             ? req->msg->marc_import_batch->source
                             : req->msg->item_import_batch->source;
    log_info(req->conn->id, "import%s%s by %s: %d created, %d updated, %d failed, %d items",
             source ? " of " : "", source ? source : "", request_session(req)->username, r->created,
             r->updated, r->failed, r->items_created + r->items_updated);
    import_problems_close(&req->arena, &job->problems, &r->problems, &r->n_problems);
    req->resp.body_case = CARREL__RESPONSE__BODY_MARC_IMPORT;
    req->resp.marc_import = r;
    free(job);
    request_ok(req);
}

/* Count one result row (pos, bib_id, action, items created, updated, problems). */
static void import_count_row(import_job_t *job, const PGresult *res, int i)
{
    Carrel__MarcImportReply *r = job->reply;
    const char *action = db_text(res, i, IMPORT_ACTION);
    bool failed = strcmp(action, "failed") == 0;
    if (failed)
        r->failed++;
    else if (job->count_bibs && strcmp(action, "created") == 0)
        r->created++;
    else if (job->count_bibs)
        r->updated++;
    r->items_created += db_int32(res, i, IMPORT_ITEMS_CREATED);
    r->items_updated += db_int32(res, i, IMPORT_ITEMS_UPDATED);
    size_t n = 0;
    char **problems = pgtext_array_parse(&job->req->arena, db_text(res, i, IMPORT_PROBLEMS), &n);
    Carrel__MarcRecord where = CARREL__MARC_RECORD__INIT;
    where.position = db_int64(res, i, IMPORT_POS);
    const Carrel__MarcRecord *rec = &where;
    if (job->req->msg->body_case == CARREL__REQUEST__BODY_MARC_IMPORT_BATCH) {
        Carrel__MarcImportBatch *m = job->req->msg->marc_import_batch;
        for (size_t k = 0; k < m->n_records; k++)
            if (m->records[k]->position == where.position)
                rec = m->records[k];
    }
    for (size_t k = 0; k < n; k++)
        import_problem(job, rec, failed, problems[k] ? problems[k] : "?");
}

static void import_stored(const db_result_t *res, void *arg)
{
    db_result_t fit;
    res = db_fit(res, IMPORT_NCOLS, &fit);
    import_job_t *job = arg;
    request_t *req = job->req;
    if (res->status == DB_UNAVAILABLE) {
        free(job);
        request_fail_db(req, res);
        return;
    }
    if (res->status == DB_QUERY_ERROR && res->sqlstate != NULL &&
        strncmp(res->sqlstate, "CR", 2) == 0) {
        /* Our own refusal of the request as a whole (no such branch, not
         * allowed): no record in it would load, so do not try one by one. */
        free(job);
        request_fail_db(req, res);
        return;
    }
    if (res->status == DB_QUERY_ERROR && !job->one_by_one && job->nentries > 1) {
        /* Something in the batch broke it as a whole: find the record. */
        log_info(req->conn->id, "import batch failed (%s); loading its records one by one",
                 res->message ? res->message : "?");
        job->one_by_one = true;
        job->next = 0;
        import_send(job);
        return;
    }
    if (res->status == DB_QUERY_ERROR) {
        /* One record failed on its own: report it, go on with the rest. */
        size_t at = job->one_by_one ? job->next : 0;
        Carrel__MarcRecord where = CARREL__MARC_RECORD__INIT;
        where.position = job->positions[at];
        const Carrel__MarcRecord *rec = &where;
        if (req->msg->body_case == CARREL__REQUEST__BODY_MARC_IMPORT_BATCH) {
            Carrel__MarcImportBatch *m = req->msg->marc_import_batch;
            for (size_t k = 0; k < m->n_records; k++)
                if (m->records[k]->position == where.position)
                    rec = m->records[k];
        }
        import_problem(job, rec, true, res->message ? res->message : "database error");
        job->reply->failed++;
    } else {
        for (int i = 0; i < PQntuples(res->res); i++)
            import_count_row(job, res->res, i);
    }
    if (job->one_by_one && ++job->next < job->nentries) {
        import_send(job);
        return;
    }
    import_finish(job);
}

/* Send the whole batch, or (one by one) the next entry, as a JSON array. */
static void import_send(import_job_t *job)
{
    request_t *req = job->req;
    arena_t *a = &req->arena;
    size_t from = job->one_by_one ? job->next : 0;
    size_t to = job->one_by_one ? job->next + 1 : job->nentries;
    size_t len = 3;
    for (size_t i = from; i < to; i++)
        len += strlen(job->entries[i]) + 1;
    char *json = arena_alloc(a, len);
    char *p = json;
    *p++ = '[';
    for (size_t i = from; i < to; i++) {
        if (i > from)
            *p++ = ',';
        size_t n = strlen(job->entries[i]);
        memcpy(p, job->entries[i], n);
        p += n;
    }
    *p++ = ']';
    *p = '\0';
    job->values[2] = json;
    /* A batch of up to IMPORT_MAX_RECORDS records, matched, stored and indexed. */
    int rc = db_exec_long(req->srv->db, job->stmt, job->nvalues, job->values, NULL, NULL,
                          import_stored, job);
    if (rc != 0) {
        free(job);
        request_fail_exec(req, rc);
    }
}

static void import_after_work_cb(uv_work_t *w, int status)
{
    import_job_t *job = w->data;
    request_t *req = job->req;
    Carrel__MarcImportBatch *m = req->msg->marc_import_batch;
    if (status != 0) {
        free(job);
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal", "The import was cancelled.");
        return;
    }
    if (job->nentries == 0) {
        import_finish(job);
        return;
    }
    arena_t *a = &req->arena;
    const session_t *s = request_session(req);
    job->stmt = &stmt_import;
    job->nvalues = 5;
    job->values[0] = pgtext_int(a, s->staff_id);
    job->values[1] = pgtext_int(a, s->workstation_id);
    job->values[3] = m->default_branch && m->default_branch[0] ? m->default_branch : NULL;
    job->values[4] = m->has_spread_branches && m->spread_branches ? "true" : "false";
    import_send(job);
}

void handle_marc_import_batch(request_t *req)
{
    Carrel__MarcImportBatch *m = req->msg->marc_import_batch;
    if (m->n_records == 0 || m->n_records > IMPORT_MAX_RECORDS) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:records",
                     "A batch holds 1 to %d records.", IMPORT_MAX_RECORDS);
        return;
    }
    const char *tag = m->holdings_tag && m->holdings_tag[0] ? m->holdings_tag : NULL;
    if (tag && strcmp(tag, "852") && strcmp(tag, "952") && strcmp(tag, "none")) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:holdings_tag",
                     "Holdings come from 852, 952, or none.");
        return;
    }
    import_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "overloaded", "Out of memory.");
        return;
    }
    job->req = req;
    job->holdings_tag = tag;
    job->count_bibs = true;
    job->entries = arena_new(&req->arena, char *, m->n_records);
    job->positions = arena_new(&req->arena, int64_t, m->n_records);
    job->reply = arena_new(&req->arena, Carrel__MarcImportReply, 1);
    carrel__marc_import_reply__init(job->reply);
    Carrel__MarcImportReply *r = job->reply;
    r->has_created = r->has_updated = r->has_failed = 1;
    r->has_items_created = r->has_items_updated = 1;
    job->work.data = job;
    if (uv_queue_work(req->srv->loop, &job->work, import_work_cb, import_after_work_cb) != 0) {
        free(job);
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "overloaded",
                     "Cannot start the import now.");
    }
}

/* ---- items from a CSV ---- */

void handle_item_import_batch(request_t *req)
{
    Carrel__ItemImportBatch *m = req->msg->item_import_batch;
    arena_t *a = &req->arena;
    if (m->n_rows == 0 || m->n_rows > IMPORT_MAX_RECORDS) {
        request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST, "field:rows",
                     "A batch holds 1 to %d rows.", IMPORT_MAX_RECORDS);
        return;
    }
    import_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "overloaded", "Out of memory.");
        return;
    }
    job->req = req;
    job->entries = arena_new(a, char *, m->n_rows);
    job->positions = arena_new(a, int64_t, m->n_rows);
    job->reply = arena_new(a, Carrel__MarcImportReply, 1);
    carrel__marc_import_reply__init(job->reply);
    job->reply->has_failed = job->reply->has_items_created = job->reply->has_items_updated = 1;
    for (size_t i = 0; i < m->n_rows; i++) {
        const Carrel__ItemImportRow *row = m->rows[i];
        json_t j;
        json_init(&j);
        json_object_begin(&j);
        json_key(&j, "line");
        json_int(&j, row->line);
        json_key(&j, "bib");
        json_string(&j, row->bib ? row->bib : "");
        char *isbn = row->bib && row->bib[0] != '#' ? marc_isbn13(a, row->bib) : NULL;
        if (isbn) {
            json_key(&j, "isbn");
            json_string(&j, isbn);
        }
        const char *fields[][2] = {
            {"barcode", row->barcode},
            {"owning_branch", row->owning_branch},
            {"current_branch", row->current_branch},
            {"location", row->location},
            {"call_number", row->call_number},
            {"item_type", row->item_type},
            {"price", row->price},
        };
        for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
            json_key(&j, fields[k][0]);
            json_string(&j, fields[k][1] ? fields[k][1] : "");
        }
        json_object_end(&j);
        job->entries[job->nentries] = arena_strndup(a, (const char *)j.out.data, j.out.len);
        job->positions[job->nentries++] = row->line;
        json_free(&j);
    }
    const session_t *s = request_session(req);
    job->stmt = &stmt_item_import;
    job->nvalues = 4;
    job->values[0] = pgtext_int(a, s->staff_id);
    job->values[1] = pgtext_int(a, s->workstation_id);
    job->values[3] = m->default_branch && m->default_branch[0] ? m->default_branch : NULL;
    import_send(job);
}

/* ---- export ---- */

/*
 * A page of records is stamped with each bib's id (035 "(CARREL-xxxx)n", so
 * that re-importing an export here updates instead of duplicating) on a
 * worker thread.
 */
typedef struct export_job {
    uv_work_t work;
    request_t *req;
    int64_t *ids;
    const char *source; /* this installation's system number source */
    ProtobufCBinaryData *records;
    size_t n;
    int limit;
    int64_t damaged_id; /* a stored record that cannot be read, or 0 */
    char damaged_why[200];
} export_job_t;

/*
 * Stamp each record with its bib id. A stored record that marc_parse()
 * refuses stops the page with a clear error naming the bib, rather than
 * passing damaged bytes on to another system.
 */
static void export_work_cb(uv_work_t *w)
{
    export_job_t *job = w->data;
    for (size_t i = 0; i < job->n && job->damaged_id == 0; i++) {
        arena_t a;
        arena_init(&a);
        marc_record_t rec;
        char err[160];
        struct buf out = BUF_INIT;
        ProtobufCBinaryData *d = &job->records[i];
        int rc = marc_parse(&a, d->data, d->len, &rec, err, sizeof(err));
        if (rc == 0) {
            marc_set_system_id(&a, &rec, job->source, job->ids[i]);
            rc = marc_write(&rec, &out, err, sizeof(err));
        }
        if (rc == 0) {
            /* The request's arena is ours while the worker runs. */
            uint8_t *copy = arena_alloc(&job->req->arena, out.len);
            memcpy(copy, out.data, out.len);
            d->data = copy;
            d->len = out.len;
        } else {
            job->damaged_id = job->ids[i];
            snprintf(job->damaged_why, sizeof(job->damaged_why), "%s", err);
        }
        buf_free(&out);
        arena_free(&a);
    }
}

static void export_after_cb(uv_work_t *w, int status)
{
    export_job_t *job = w->data;
    request_t *req = job->req;
    if (status != 0) {
        free(job);
        request_fail(req, CARREL__STATUS__STATUS_INTERNAL, "internal", "The export was cancelled.");
        return;
    }
    if (job->damaged_id != 0) {
        int64_t id = job->damaged_id;
        char why[200];
        snprintf(why, sizeof(why), "%s", job->damaged_why);
        free(job);
        catalog_damaged_record(req, id, why, "exported");
        return;
    }
    Carrel__MarcExportReply *reply = arena_new(&req->arena, Carrel__MarcExportReply, 1);
    carrel__marc_export_reply__init(reply);
    reply->records = job->records;
    reply->n_records = job->n;
    reply->has_last_id = 1;
    reply->last_id = job->n ? job->ids[job->n - 1] : req->msg->marc_export->after_id;
    reply->has_done = 1;
    reply->done = (int)job->n < job->limit;
    req->resp.body_case = CARREL__RESPONSE__BODY_MARC_EXPORT;
    req->resp.marc_export = reply;
    free(job);
    request_ok(req);
}

static void export_done(const db_result_t *r, void *arg)
{
    db_result_t fit;
    r = db_fit(r, EXPORT_NCOLS, &fit);
    export_job_t *job = arg;
    request_t *req = job->req;
    if (r->status != DB_OK) {
        free(job);
        request_fail_db(req, r);
        return;
    }
    arena_t *a = &req->arena;
    int n = PQntuples(r->res);
    job->ids = arena_new(a, int64_t, n + 1);
    job->records = arena_new(a, ProtobufCBinaryData, n + 1);
    job->source = n > 0 ? arena_strdup(a, db_text(r->res, 0, EXPORT_SOURCE)) : "";
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        uint8_t *bytes = pgtext_bytea_decode(a, db_text(r->res, i, EXPORT_MARC), &len);
        if (bytes == NULL)
            continue;
        job->ids[job->n] = db_int64(r->res, i, EXPORT_ID);
        job->records[job->n].data = bytes;
        job->records[job->n].len = len;
        job->n++;
    }
    job->work.data = job;
    if (uv_queue_work(req->srv->loop, &job->work, export_work_cb, export_after_cb) != 0) {
        free(job);
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "overloaded",
                     "Cannot export right now.");
    }
}

void handle_marc_export(request_t *req)
{
    Carrel__MarcExport *m = req->msg->marc_export;
    int limit; /* at most 500 keeps a page well under the client's frame limit */
    if (!request_limit(req, m->has_limit, m->limit, 200, 500, "field:limit", &limit))
        return;
    export_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        request_fail(req, CARREL__STATUS__STATUS_UNAVAILABLE, "overloaded", "Out of memory.");
        return;
    }
    job->req = req;
    job->limit = limit;
    const char *values[2] = {pgtext_int(&req->arena, m->has_after_id ? m->after_id : 0),
                             pgtext_int(&req->arena, limit)};
    int rc = db_exec(req->srv->db, &stmt_export, 2, values, NULL, NULL, export_done, job);
    if (rc != 0) {
        free(job);
        request_fail_exec(req, rc);
    }
}
