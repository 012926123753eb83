/*
 * Catalog commands: search, show and edit bibs, items, MARC import/export.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "csv.h"
#include "marcfile.h"
#include "util.h"

/* ---- printing ---- */

static const char *status_label(Carrel__ItemStatus s)
{
    return json_enum_name(&carrel__item_status__descriptor, s);
}

/* "checked_out, due 2026-12-21" for a copy on loan; else the status alone. */
static void catalog_item_status(char *out, size_t n, const Carrel__Item *it)
{
    if (it->on_loan && it->due_date && it->due_date[0])
        snprintf(out, n, "%s, due %s", status_label(it->status), it->due_date);
    else
        snprintf(out, n, "%s", status_label(it->status));
}

static void catalog_print_items(Carrel__Item **items, size_t n)
{
    static const char *const headers[] = {"Barcode",     "Branch", "Owner", "Location",
                                          "Call number", "Type",   "Status"};
    table_t *t = table_new(7, headers);
    for (size_t i = 0; i < n; i++) {
        const Carrel__Item *it = items[i];
        char status[64], location[600];
        catalog_item_status(status, sizeof(status), it);
        /* A copy on a running display is found there, not on its shelf. */
        snprintf(location, sizeof(location), "%s%s%s", it->location,
                 it->display && it->display[0] ? (it->location[0] ? "; " : "") : "",
                 it->display ? it->display : "");
        const char *row[] = {it->barcode, it->current_branch, it->owning_branch,
                             location,    it->call_number,    it->item_type,
                             status};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

static void catalog_print_bib(const Carrel__Bib *b)
{
    printf("%s\n", b->title);
    if (b->author && b->author[0])
        printf("  by %s\n", b->author);
    printf("  bib %lld, version %d; %s%s%s%s%s\n", (long long)b->id, b->version, b->format,
           b->year && b->year[0] ? ", " : "", b->year ? b->year : "",
           b->language && b->language[0] ? ", " : "", b->language ? b->language : "");
    if (b->publisher && b->publisher[0])
        printf("  publisher: %s\n", b->publisher);
    if (b->call_number && b->call_number[0])
        printf("  call number: %s\n", b->call_number);
    for (size_t i = 0; i < b->n_isbns; i++)
        printf("  ISBN %s\n", b->isbns[i]);
    for (size_t i = 0; i < b->n_issns; i++)
        printf("  ISSN %s\n", b->issns[i]);
    for (size_t i = 0; i < b->n_subjects; i++)
        printf("  subject: %s\n", b->subjects[i]);
    if (b->control_number && b->control_number[0])
        printf("  control number: %s%s%s\n", b->control_number, b->control_source[0] ? " " : "",
               b->control_source);
    if (b->n_items) {
        printf("\n");
        catalog_print_items(b->items, b->n_items);
    } else {
        printf("\n  no copies\n");
    }
    if (b->marc && b->marc[0])
        printf("\n%s", b->marc);
}

static void catalog_print_item(const Carrel__Item *it)
{
    printf("%s  %s\n", it->barcode, it->title ? it->title : "");
    printf("  bib %lld, item %lld, version %d\n", (long long)it->bib_id, (long long)it->id,
           it->version);
    printf("  status: %s at %s (owned by %s)\n", status_label(it->status), it->current_branch,
           it->owning_branch);
    if (it->on_loan)
        printf("  on loan, due %s\n", it->due_date && it->due_date[0] ? it->due_date : "?");
    printf("  type: %s; location: %s%s%s; call number: %s\n", it->item_type, it->location,
           it->display && it->display[0] ? "; " : "", it->display ? it->display : "",
           it->call_number);
    char price[32], times[32];
    output_money(price, sizeof(price), it->price_cents);
    output_count(times, sizeof(times), it->circ_count, "time", "times");
    printf("  price: %s; added %s; circulated %s%s%s\n", price, it->date_added, times,
           it->last_circulated[0] ? ", last " : "", it->last_circulated);
    printf("  last used: %s\n", it->last_used && it->last_used[0] ? it->last_used : "never");
}

/* ---- catalog search ---- */

static int build_catalog_search(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__CatalogSearch *sp =
        CMD_BODY(call, catalog_search, CATALOG_SEARCH, carrel__catalog_search__init);
    int page = 1;
    static const struct option opts[] = {
        {"isbn", required_argument, NULL, 'i'},
        {"issn", required_argument, NULL, 's'},
        {"barcode", required_argument, NULL, 'b'},
        {"call-number", required_argument, NULL, 'c'},
        {"branch", required_argument, NULL, 'B'},
        {"format", required_argument, NULL, 'f'},
        {"available", no_argument, NULL, 'a'},
        {"page", required_argument, NULL, 'p'},
        {"limit", required_argument, NULL, 'l'},
        {"not", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    /* Words to leave out: "--not dogs" is the query's "-dogs", which as an
     * argument of its own would read as an option (unless after "--"). Only
     * long options, so that such a word is never taken for a short one
     * ("-apple" as -a -p ple): it gets the hint below instead. */
    char excluded[512] = "";
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'i':
            sp->isbn = optarg;
            break;
        case 's':
            sp->issn = optarg;
            break;
        case 'b':
            sp->barcode = optarg;
            break;
        case 'c':
            sp->call_number_prefix = optarg;
            break;
        case 'B':
            sp->branch_code = optarg;
            break;
        case 'f':
            sp->format = optarg;
            break;
        case 'a':
            sp->has_available_only = sp->available_only = 1;
            break;
        case 'p':
            if (cli_int32_arg(cli, "--page", optarg, 1, 1000000, &page) != EXIT_OK)
                return EXIT_USAGE;
            break;
        case 'l':
            sp->has_limit = 1;
            if (cli_int32_arg(cli, "--limit", optarg, 1, 100, &sp->limit) != EXIT_OK)
                return EXIT_USAGE;
            break;
        case 'n':
            if (strlen(excluded) + strlen(optarg) + 3 >= sizeof(excluded))
                return cli_fail(cli, EXIT_USAGE, "the search is too long");
            if (optarg[0] == '\0' || strchr(optarg, ' '))
                return cli_fail(cli, EXIT_USAGE, "--not takes one word");
            strcat(excluded, " -");
            strcat(excluded, optarg);
            break;
        default:
            return cli_fail(cli, EXIT_USAGE,
                            "to leave a word out, write --not WORD, or put the words after "
                            "-- (catalog search -- cats -dogs)");
        }
    }
    /* The remaining words are the query, then the words left out. */
    enum { QUERY_SIZE = 1024 };
    char *query = cmd_part(call, QUERY_SIZE);
    for (int i = optind; i < argc; i++) {
        if (strlen(query) + strlen(argv[i]) + 2 >= QUERY_SIZE)
            return cli_fail(cli, EXIT_USAGE, "the search is too long");
        if (query[0])
            strcat(query, " ");
        strcat(query, argv[i]);
    }
    if (excluded[0]) {
        if (query[0] == '\0')
            return cli_fail(cli, EXIT_USAGE, "--not needs words to search for");
        if (strlen(query) + strlen(excluded) + 1 >= QUERY_SIZE)
            return cli_fail(cli, EXIT_USAGE, "the search is too long");
        strcat(query, excluded);
    }
    if (query[0])
        sp->query = query;
    if (page < 1)
        return cli_fail(cli, EXIT_USAGE, "--page starts at 1");
    int limit = sp->has_limit ? sp->limit : 20;
    sp->has_offset = 1;
    sp->offset = (page - 1) * limit;
    call->number = page;
    return EXIT_OK;
}

/* "1,000": a count people read at a glance. */
static void search_group_digits(char *out, size_t n, int v)
{
    char digits[16];
    snprintf(digits, sizeof(digits), "%d", v < 0 ? 0 : v);
    size_t len = strlen(digits), o = 0;
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

/* Copies off their usual shelf, under the table: "Bib 12  DWN: on display: THEME (place)". */
static void print_search_displays(const Carrel__CatalogSearchReply *res)
{
    for (size_t i = 0; i < res->n_results; i++) {
        const Carrel__BibSummary *b = res->results[i];
        for (size_t k = 0; k < b->n_on_display; k++) {
            printf("Bib %lld  ", (long long)b->id);
            out_safe(stdout, b->on_display[k]);
            putchar('\n');
        }
    }
}

static void print_catalog_search(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__CatalogSearchReply *res = r->catalog_search;
    const Carrel__CatalogSearch *s = call->req.catalog_search;
    int limit = s->has_limit ? s->limit : 20;
    int page = (int)call->number;
    if (res->n_results == 0) {
        printf("Nothing found.\n");
        return;
    }
    static const char *const headers[] = {"Bib",    "Title",       "Author",    "Year",
                                          "Format", "Call number", "Available", "Where"};
    table_t *t = table_new(8, headers);
    for (size_t i = 0; i < res->n_results; i++) {
        const Carrel__BibSummary *b = res->results[i];
        char id[24], avail[32], where[256] = "";
        snprintf(id, sizeof(id), "%lld", (long long)b->id);
        snprintf(avail, sizeof(avail), "%d of %d", b->available_copies, b->total_copies);
        for (size_t k = 0; k < b->n_copies; k++) {
            char one[48];
            snprintf(one, sizeof(one), "%s%s %d/%d", k ? ", " : "", b->copies[k]->branch_code,
                     b->copies[k]->available, b->copies[k]->total);
            strncat(where, one, sizeof(where) - strlen(where) - 1);
        }
        char title[OUTPUT_TITLE_COLUMNS * 4 + 8];
        output_cut(title, sizeof(title), b->title, OUTPUT_TITLE_COLUMNS);
        const char *row[] = {id,        title,          b->author, b->year,
                             b->format, b->call_number, avail,     where};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
    print_search_displays(res);
    int pages = (res->total + limit - 1) / limit;
    if (res->total_capped) {
        /* The server ranked only the best matches of broad words. */
        char total[32];
        search_group_digits(total, sizeof(total), res->total);
        printf("%s+ matches; page %d of %d or more (add words to narrow the search)\n", total,
               page, pages ? pages : 1);
        return;
    }
    printf("%d found; page %d of %d\n", res->total, page, pages ? pages : 1);
}

/* ---- catalog show ---- */

static int catalog_get_bib(cli_t *cli, int64_t id, bool marc, Carrel__Response **out)
{
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__BibGet g = CARREL__BIB_GET__INIT;
    g.has_id = 1;
    g.id = id;
    g.has_with_marc = marc;
    g.with_marc = marc;
    req.body_case = CARREL__REQUEST__BODY_BIB_GET;
    req.bib_get = &g;
    return cli_call(cli, &req, out);
}

static int64_t catalog_parse_id(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    return *end == '\0' && v > 0 ? v : -1;
}

static int build_catalog_show(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    int marc = 0;
    static const struct option opts[] = {{"marc", no_argument, NULL, 'm'}, {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "m", opts, NULL)) != -1) {
        if (ch == 'm')
            marc = 1;
        else
            return EXIT_USAGE;
    }
    int64_t id = optind == argc - 1 ? catalog_parse_id(argv[optind]) : -1;
    if (id < 0)
        return cli_fail(cli, EXIT_USAGE, "usage: catalog show BIB [--marc]");
    Carrel__BibGet *g = CMD_BODY(call, bib_get, BIB_GET, carrel__bib_get__init);
    g->has_id = 1;
    g->id = id;
    g->has_with_marc = marc;
    g->with_marc = marc;
    return EXIT_OK;
}

static void print_catalog_show(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    catalog_print_bib(r->bib);
}

/* ---- catalog add / edit ---- */

typedef struct bib_edit {
    Carrel__Bib bib;
    char *isbns[32], *issns[8], *subjects[64];
    bool set_isbns, set_issns, set_subjects;
} bib_edit_t;

/* Parse the field options shared by add and edit into e (only those given). */
static int catalog_bib_options(cli_t *cli, int argc, char **argv, bib_edit_t *e)
{
    static const struct option opts[] = {
        {"title", required_argument, NULL, 't'},
        {"author", required_argument, NULL, 'a'},
        {"isbn", required_argument, NULL, 'i'},
        {"issn", required_argument, NULL, 's'},
        {"subject", required_argument, NULL, 'S'},
        {"publisher", required_argument, NULL, 'p'},
        {"year", required_argument, NULL, 'y'},
        {"format", required_argument, NULL, 'f'},
        {"language", required_argument, NULL, 'l'},
        {"call-number", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    size_t ni = 0, ns = 0, nsub = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "t:a:i:s:S:p:y:f:l:c:", opts, NULL)) != -1) {
        switch (ch) {
        case 't':
            e->bib.title = optarg;
            break;
        case 'a':
            e->bib.author = optarg;
            break;
        case 'p':
            e->bib.publisher = optarg;
            break;
        case 'y':
            e->bib.year = optarg;
            break;
        case 'f':
            e->bib.format = optarg;
            break;
        case 'l':
            e->bib.language = optarg;
            break;
        case 'c':
            e->bib.call_number = optarg;
            break;
        case 'i':
            if (ni < 32)
                e->isbns[ni++] = optarg;
            e->set_isbns = true;
            break;
        case 's':
            if (ns < 8)
                e->issns[ns++] = optarg;
            e->set_issns = true;
            break;
        case 'S':
            if (nsub < 64)
                e->subjects[nsub++] = optarg;
            e->set_subjects = true;
            break;
        default:
            return cli_fail(cli, EXIT_USAGE, "unknown option (see carrel --help)");
        }
    }
    if (e->set_isbns) {
        e->bib.isbns = e->isbns;
        e->bib.n_isbns = ni;
    }
    if (e->set_issns) {
        e->bib.issns = e->issns;
        e->bib.n_issns = ns;
    }
    if (e->set_subjects) {
        e->bib.subjects = e->subjects;
        e->bib.n_subjects = nsub;
    }
    return EXIT_OK;
}

/* A BibSave of the fields in e (freed with the call); the answer is the record as saved. */
static bib_edit_t *catalog_save_build(cmd_call_t *call)
{
    bib_edit_t *e = call->data = cmd_part(call, sizeof(*e));
    carrel__bib__init(&e->bib);
    Carrel__BibSave *save = CMD_BODY(call, bib_save, BIB_SAVE, carrel__bib_save__init);
    save->bib = &e->bib;
    return e;
}

static void print_catalog_saved(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    catalog_print_bib(r->bib);
}

static int build_catalog_add(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    bib_edit_t *e = catalog_save_build(call);
    int code = catalog_bib_options(cli, argc, argv, e);
    if (code != EXIT_OK)
        return code;
    if (optind != argc || e->bib.title == NULL)
        return cli_fail(cli, EXIT_USAGE, "usage: catalog add --title TITLE [--author A] ...");
    return EXIT_OK;
}

static int build_catalog_edit(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    bib_edit_t *e = catalog_save_build(call);
    int code = catalog_bib_options(cli, argc, argv, e);
    if (code != EXIT_OK)
        return code;
    int64_t id = optind == argc - 1 ? catalog_parse_id(argv[optind]) : -1;
    if (id < 0)
        return cli_fail(cli, EXIT_USAGE, "usage: catalog edit BIB --title ... (fields to change)");
    call->number = id;
    return EXIT_OK;
}

/* Read the record, change what was given, save with the version read. */
static int prepare_catalog_edit(cli_t *cli, cmd_call_t *call)
{
    const bib_edit_t *e = call->data;
    Carrel__Response *cur = NULL;
    int code = catalog_get_bib(cli, call->number, false, &cur);
    if (code != EXIT_OK)
        return code;
    cmd_hold(call, cur);
    /* Edit a shallow copy: the answer held keeps owning what it allocated. */
    Carrel__Bib *edit = cmd_part(call, sizeof(*edit));
    *edit = *cur->bib;
#define TAKE(field)                                                                                \
    if (e->bib.field)                                                                              \
        edit->field = e->bib.field;
    TAKE(title)
    TAKE(author)
    TAKE(publisher)
    TAKE(year)
    TAKE(format)
    TAKE(language)
    TAKE(call_number)
#undef TAKE
    if (e->set_isbns) {
        edit->isbns = e->bib.isbns;
        edit->n_isbns = e->bib.n_isbns;
    }
    if (e->set_issns) {
        edit->issns = e->bib.issns;
        edit->n_issns = e->bib.n_issns;
    }
    if (e->set_subjects) {
        edit->subjects = e->bib.subjects;
        edit->n_subjects = e->bib.n_subjects;
    }
    edit->n_items = 0; /* items are not part of a bib edit */
    edit->marc = NULL;
    call->req.bib_save->bib = edit;
    return EXIT_OK;
}

/* ---- items ---- */

static int item_get(cli_t *cli, const char *barcode, Carrel__Response **out)
{
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__ItemGet g = CARREL__ITEM_GET__INIT;
    g.barcode = (char *)barcode;
    req.body_case = CARREL__REQUEST__BODY_ITEM_GET;
    req.item_get = &g;
    return cli_call(cli, &req, out);
}

static int build_item_show(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc != 2 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    Carrel__ItemGet *g = CMD_BODY(call, item_get, ITEM_GET, carrel__item_get__init);
    g->barcode = argv[1];
    return EXIT_OK;
}

static void print_item_show(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    catalog_print_item(r->item);
}

/* "12.99" -> 1299; -1 when it is not a price. */
static int64_t item_parse_price(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*end != '\0' || v < 0 || v > 1e6)
        return -1;
    return (int64_t)(v * 100 + 0.5);
}

static Carrel__ItemStatus item_parse_status(const char *s)
{
    const ProtobufCEnumDescriptor *d = &carrel__item_status__descriptor;
    for (unsigned i = 0; i < d->n_values; i++)
        if (strcmp(json_enum_name(d, d->values[i].value), s) == 0)
            return (Carrel__ItemStatus)d->values[i].value;
    return CARREL__ITEM_STATUS__ITEM_STATUS_UNSPECIFIED;
}

/* Apply item options to `it`; strings point into argv. */
static int item_options(cli_t *cli, int argc, char **argv, Carrel__Item *it)
{
    static const struct option opts[] = {
        {"bib", required_argument, NULL, 'B'},         {"branch", required_argument, NULL, 'b'},
        {"at", required_argument, NULL, 'a'},          {"location", required_argument, NULL, 'l'},
        {"call-number", required_argument, NULL, 'c'}, {"type", required_argument, NULL, 't'},
        {"price", required_argument, NULL, 'p'},       {"status", required_argument, NULL, 's'},
        {"barcode", required_argument, NULL, 'n'},     {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "B:b:a:l:c:t:p:s:n:", opts, NULL)) != -1) {
        switch (ch) {
        case 'B':
            it->has_bib_id = 1;
            it->bib_id = catalog_parse_id(optarg);
            if (it->bib_id < 0)
                return cli_fail(cli, EXIT_USAGE, "--bib takes a record number");
            break;
        case 'b':
            it->owning_branch = optarg;
            break;
        case 'a':
            it->current_branch = optarg;
            break;
        case 'l':
            it->location = optarg;
            break;
        case 'c':
            it->call_number = optarg;
            break;
        case 't':
            it->item_type = optarg;
            break;
        case 'n':
            it->barcode = optarg;
            break;
        case 'p':
            it->has_price_cents = 1;
            if ((it->price_cents = item_parse_price(optarg)) < 0)
                return cli_fail(cli, EXIT_USAGE, "--price takes an amount such as 24.95");
            break;
        case 's':
            it->has_status = 1;
            if ((it->status = item_parse_status(optarg)) == 0)
                return cli_fail(cli, EXIT_USAGE, "unknown status %s", optarg);
            break;
        default:
            return cli_fail(cli, EXIT_USAGE, "unknown option (see carrel --help)");
        }
    }
    return EXIT_OK;
}

/* An ItemSave of a new Item (freed with the call); the answer is the item as saved. */
static Carrel__Item *item_save_build(cmd_call_t *call)
{
    Carrel__Item *it = call->data = cmd_part(call, sizeof(*it));
    carrel__item__init(it);
    Carrel__ItemSave *save = CMD_BODY(call, item_save, ITEM_SAVE, carrel__item_save__init);
    save->item = it;
    return it;
}

static void print_item_saved(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    catalog_print_item(r->item);
}

static int build_item_add(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__Item *it = item_save_build(call);
    int code = item_options(cli, argc, argv, it);
    if (code != EXIT_OK)
        return code;
    if (optind != argc - 1 || !it->has_bib_id || !it->owning_branch)
        return cli_fail(cli, EXIT_USAGE,
                        "usage: item add BARCODE --bib BIB --branch CODE [--type T] ...");
    it->barcode = argv[optind];
    if (it->item_type == NULL)
        it->item_type = "book";
    return EXIT_OK;
}

static int build_item_edit(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__Item *changes = item_save_build(call);
    int code = item_options(cli, argc, argv, changes);
    if (code != EXIT_OK)
        return code;
    if (optind != argc - 1)
        return cli_fail(cli, EXIT_USAGE, "usage: item edit BARCODE --location ... (changes)");
    call->subject = argv[optind];
    return EXIT_OK;
}

/* Read the item, change what was given, save with the version read. */
static int prepare_item_edit(cli_t *cli, cmd_call_t *call)
{
    const Carrel__Item *changes = call->data;
    Carrel__Response *cur = NULL;
    int code = item_get(cli, call->subject, &cur);
    if (code != EXIT_OK)
        return code;
    cmd_hold(call, cur);
    Carrel__Item *it = cmd_part(call, sizeof(*it));
    *it = *cur->item; /* a shallow copy: the answer held owns its strings */
    if (changes->barcode)
        it->barcode = changes->barcode;
    if (changes->has_bib_id)
        it->bib_id = changes->bib_id;
    if (changes->owning_branch)
        it->owning_branch = changes->owning_branch;
    if (changes->current_branch)
        it->current_branch = changes->current_branch;
    if (changes->location)
        it->location = changes->location;
    if (changes->call_number)
        it->call_number = changes->call_number;
    if (changes->item_type)
        it->item_type = changes->item_type;
    if (changes->has_price_cents)
        it->price_cents = changes->price_cents;
    it->has_status = changes->has_status;
    it->status = changes->status;
    call->req.item_save->item = it;
    return EXIT_OK;
}

/* ---- import ---- */

typedef struct import_totals {
    int created, updated, failed, items_created, items_updated;
    size_t done, total;
    uint64_t started;
    bool progress;
} import_totals_t;

static void import_progress(import_totals_t *t, bool last)
{
    if (!t->progress)
        return;
    double secs = (double)(util_mono_ns() - t->started) / 1e9;
    int width = 30;
    int filled = t->total ? (int)(width * t->done / t->total) : width;
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu records  %.0f/s ", filled,
            "##############################", width - filled, "", t->done, t->total,
            secs > 0 ? (double)t->done / secs : 0.0);
    if (last)
        fputc('\n', stderr);
    fflush(stderr);
}

/* Where a problem is in the file: a MARC record at a byte offset, a
 * MARCXML record at a line, or a CSV row (its position is the line). */
typedef enum { WHERE_MARC, WHERE_XML, WHERE_CSV } import_where_t;

static void import_report_problem(cli_t *cli, json_t *problems, int64_t position, int64_t offset,
                                  bool fatal, const char *message, import_where_t where)
{
    if (cli->json) {
        json_object_begin(problems);
        json_key(problems, where == WHERE_CSV ? "line" : "position");
        json_int(problems, position);
        if (where != WHERE_CSV) {
            json_key(problems, where == WHERE_XML ? "line" : "offset");
            json_int(problems, offset);
        }
        json_key(problems, "fatal");
        json_bool(problems, fatal);
        json_key(problems, "message");
        json_string(problems, message);
        json_object_end(problems);
    } else if (where == WHERE_CSV) {
        fprintf(stderr, "line %lld: %s: %s\n", (long long)position,
                fatal ? "not loaded" : "warning", message);
    } else {
        fprintf(stderr, "record %lld (%s %lld): %s: %s\n", (long long)position,
                where == WHERE_XML ? "line" : "byte", (long long)offset,
                fatal ? "not loaded" : "warning", message);
    }
}

static void import_add_reply(cli_t *cli, import_totals_t *t, json_t *problems,
                             const Carrel__MarcImportReply *r, import_where_t where)
{
    t->created += r->created;
    t->updated += r->updated;
    t->failed += r->failed;
    t->items_created += r->items_created;
    t->items_updated += r->items_updated;
    for (size_t i = 0; i < r->n_problems; i++) {
        const Carrel__ImportProblem *p = r->problems[i];
        if (t->progress && !cli->json)
            fputc('\n', stderr);
        import_report_problem(cli, problems, p->position, p->offset, p->fatal, p->message, where);
    }
}

static void import_print_totals(cli_t *cli, const import_totals_t *t, json_t *problems,
                                const char *what)
{
    double secs = (double)(util_mono_ns() - t->started) / 1e9;
    if (cli->json) {
        json_t j;
        json_init(&j);
        json_object_begin(&j);
        json_key(&j, "records");
        json_uint(&j, t->total);
        json_key(&j, "created");
        json_int(&j, t->created);
        json_key(&j, "updated");
        json_int(&j, t->updated);
        json_key(&j, "failed");
        json_int(&j, t->failed);
        json_key(&j, "items_created");
        json_int(&j, t->items_created);
        json_key(&j, "items_updated");
        json_int(&j, t->items_updated);
        json_key(&j, "seconds");
        json_double(&j, secs);
        json_key(&j, "problems");
        if (buf_append(&j.out, problems->out.data ? (const char *)problems->out.data : "[]",
                       problems->out.data ? problems->out.len : 2) != 0)
            exit(EXIT_LOCAL);
        j.after_key = false;
        json_object_end(&j);
        json_print(&j, stdout);
        json_free(&j);
    } else {
        printf("%s: %zu %s in %.1f s: %d created, %d updated, %d not loaded; items: %d created, "
               "%d updated\n",
               what, t->total, strcmp(what, "items") ? "records" : "rows", secs, t->created,
               t->updated, t->failed, t->items_created, t->items_updated);
    }
}

/* Send batches of `batch` records, keeping `depth` of them in flight. */
static int cmd_import_marc(cli_t *cli, int argc, char **argv)
{
    Carrel__MarcImportBatch proto = CARREL__MARC_IMPORT_BATCH__INIT;
    int batch = 500, depth = 3; /* set-based batches: bigger ones cost less per record */
    static const struct option opts[] = {
        {"holdings", required_argument, NULL, 'h'},
        {"branch", required_argument, NULL, 'b'},
        {"spread", no_argument, NULL, 's'},
        {"batch", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "h:b:sn:", opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            proto.holdings_tag = optarg;
            break;
        case 'b':
            proto.default_branch = optarg;
            break;
        case 's':
            proto.has_spread_branches = proto.spread_branches = 1;
            break;
        case 'n':
            if (cli_int32_arg(cli, "--batch", optarg, 1, 2000, &batch) != EXIT_OK)
                return EXIT_USAGE;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || batch < 1 || batch > 2000)
        return cli_fail(cli, EXIT_USAGE,
                        "usage: import marc FILE [--holdings 852|952|none] [--branch CODE] "
                        "[--spread] [--batch 1-2000]");
    const char *path = argv[optind];
    marcfile_t mf;
    char err[512];
    if (marcfile_load(&mf, path, err, sizeof(err)) != 0)
        return cli_fail(cli, EXIT_LOCAL, "%s", err);
    proto.source = (char *)path;

    import_totals_t t = {.total = mf.nrecords + mf.nproblems,
                         .started = util_mono_ns(),
                         .progress = isatty(STDERR_FILENO) && !cli->json};
    json_t problems;
    json_init(&problems);
    json_array_begin(&problems);
    for (size_t i = 0; i < mf.nproblems; i++) {
        import_report_problem(cli, &problems, mf.problems[i].position, mf.problems[i].offset, true,
                              mf.problems[i].message, mf.xml ? WHERE_XML : WHERE_MARC);
        t.failed++;
    }
    t.done = mf.nproblems;

    int code = EXIT_OK;
    uint64_t inflight[16];
    size_t inflight_n[16];
    int ninflight = 0;
    size_t next = 0;
    Carrel__MarcRecord *recs = calloc((size_t)batch, sizeof(*recs));
    Carrel__MarcRecord **ptrs = calloc((size_t)batch, sizeof(*ptrs));
    if (recs == NULL || ptrs == NULL)
        abort();
    while ((next < mf.nrecords || ninflight > 0) && code == EXIT_OK) {
        if (next < mf.nrecords && ninflight < depth) {
            size_t n = 0, bytes = 0;
            /* Stay well under the server's frame limit. */
            while (next < mf.nrecords && (int)n < batch && bytes + mf.records[next].len < 700000) {
                const marcfile_record_t *m = &mf.records[next++];
                carrel__marc_record__init(&recs[n]);
                recs[n].has_position = recs[n].has_offset = recs[n].has_data = 1;
                recs[n].position = m->position;
                recs[n].offset = m->offset;
                recs[n].data.data = (uint8_t *)m->data;
                recs[n].data.len = m->len;
                recs[n].has_xml = recs[n].xml = m->xml;
                ptrs[n] = &recs[n];
                bytes += m->len;
                n++;
            }
            Carrel__Request req = CARREL__REQUEST__INIT;
            Carrel__MarcImportBatch b = proto;
            b.records = ptrs;
            b.n_records = n;
            req.body_case = CARREL__REQUEST__BODY_MARC_IMPORT_BATCH;
            req.marc_import_batch = &b;
            char key[37];
            cli_set_request_key(&req, key);
            uint64_t id = client_send(&cli->conn, &req);
            if (id == 0) {
                code = cli_fail(cli, EXIT_NETWORK, "%s", cli->conn.error);
                break;
            }
            inflight[ninflight] = id;
            inflight_n[ninflight++] = n;
            continue;
        }
        Carrel__Response *r = NULL;
        if (client_wait(&cli->conn, inflight[0], &r) != 0) {
            code = cli_fail(cli, EXIT_NETWORK, "%s", cli->conn.error);
            break;
        }
        if (r->status != CARREL__STATUS__STATUS_OK) {
            if (t.progress)
                fputc('\n', stderr);
            cli_print_status_error(cli, r);
            code = cli_response_exit(r);
        } else {
            import_add_reply(cli, &t, &problems, r->marc_import, mf.xml ? WHERE_XML : WHERE_MARC);
        }
        carrel__response__free_unpacked(r, NULL);
        t.done += inflight_n[0];
        memmove(inflight, inflight + 1, (size_t)(ninflight - 1) * sizeof(inflight[0]));
        memmove(inflight_n, inflight_n + 1, (size_t)(ninflight - 1) * sizeof(inflight_n[0]));
        ninflight--;
        import_progress(&t, false);
    }
    import_progress(&t, true);
    json_array_end(&problems);
    if (code == EXIT_OK) {
        import_print_totals(cli, &t, &problems, path);
        if (t.failed > 0)
            code = EXIT_SERVER;
    }
    json_free(&problems);
    free(recs);
    free(ptrs);
    marcfile_free(&mf);
    return code;
}

/* Column index by header name, or -1. */
static int csv_column(const csv_row_t *header, const char *name)
{
    for (size_t i = 0; i < header->n; i++)
        if (strcmp(header->fields[i], name) == 0)
            return (int)i;
    return -1;
}

static int cmd_import_items(cli_t *cli, int argc, char **argv)
{
    const char *branch = NULL;
    static const struct option opts[] = {{"branch", required_argument, NULL, 'b'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "b:", opts, NULL)) != -1) {
        if (ch == 'b')
            branch = optarg;
        else
            return EXIT_USAGE;
    }
    if (optind != argc - 1)
        return cli_fail(cli, EXIT_USAGE, "usage: import items FILE.csv [--branch CODE]");
    size_t len = 0;
    uint8_t *text = util_read_all(argv[optind], &len);
    if (text == NULL)
        return cli_fail(cli, EXIT_LOCAL, "cannot read %s", argv[optind]);
    size_t pos = 0;
    csv_row_t header;
    int hrc = csv_next_row((const char *)text, len, &pos, &header);
    if (hrc != 1) {
        free(text);
        return cli_fail(cli, EXIT_LOCAL, "%s: %s", argv[optind],
                        hrc < 0 ? csv_problem(hrc) : "no header line");
    }
    static const char *const names[] = {"bib",      "barcode",     "branch",    "current_branch",
                                        "location", "call_number", "item_type", "price"};
    int col[8];
    for (int i = 0; i < 8; i++)
        col[i] = csv_column(&header, names[i]);
    csv_row_free(&header);
    if (col[0] < 0 || col[1] < 0) {
        free(text);
        return cli_fail(cli, EXIT_LOCAL,
                        "%s: the header must name at least the columns bib and barcode "
                        "(others: branch, current_branch, location, call_number, item_type, "
                        "price)",
                        argv[optind]);
    }
    /* Read every row first: a broken file loads nothing. */
    csv_row_t *rows = NULL;
    int64_t *lines = NULL;
    size_t nrows = 0;
    int64_t line = 1;
    int rc;
    csv_row_t row;
    while ((rc = csv_next_row((const char *)text, len, &pos, &row)) == 1) {
        line++;
        if (row.n == 1 && row.fields[0][0] == '\0') {
            csv_row_free(&row);
            continue;
        }
        rows = realloc(rows, (nrows + 1) * sizeof(*rows));
        lines = realloc(lines, (nrows + 1) * sizeof(*lines));
        if (rows == NULL || lines == NULL)
            abort();
        lines[nrows] = line;
        rows[nrows++] = row;
    }
    int code = EXIT_OK;
    if (rc < 0)
        code = cli_fail(cli, EXIT_LOCAL, "%s: line %lld: %s; nothing loaded", argv[optind],
                        (long long)line + 1, csv_problem(rc));
    import_totals_t t = {.total = nrows, .started = util_mono_ns()};
    json_t problems;
    json_init(&problems);
    json_array_begin(&problems);
    Carrel__ItemImportRow *irows = calloc(nrows + 1, sizeof(*irows));
    Carrel__ItemImportRow **ptrs = calloc(nrows + 1, sizeof(*ptrs));
    for (size_t start = 0; code == EXIT_OK && start < nrows; start += 500) {
        size_t n = nrows - start < 500 ? nrows - start : 500;
        for (size_t i = 0; i < n; i++) {
            const csv_row_t *r = &rows[start + i];
            Carrel__ItemImportRow *x = &irows[i];
            carrel__item_import_row__init(x);
            x->has_line = 1;
            x->line = lines[start + i];
            char **slots[8] = {&x->bib,      &x->barcode,     &x->owning_branch, &x->current_branch,
                               &x->location, &x->call_number, &x->item_type,     &x->price};
            for (int k = 0; k < 8; k++)
                if (col[k] >= 0 && (size_t)col[k] < r->n)
                    *slots[k] = r->fields[col[k]];
            ptrs[i] = x;
        }
        Carrel__Request req = CARREL__REQUEST__INIT;
        Carrel__ItemImportBatch b = CARREL__ITEM_IMPORT_BATCH__INIT;
        b.rows = ptrs;
        b.n_rows = n;
        b.default_branch = (char *)branch;
        b.source = argv[optind];
        req.body_case = CARREL__REQUEST__BODY_ITEM_IMPORT_BATCH;
        req.item_import_batch = &b;
        char key[37];
        cli_set_request_key(&req, key);
        Carrel__Response *r = NULL;
        code = cli_call(cli, &req, &r);
        if (code == EXIT_OK) {
            import_add_reply(cli, &t, &problems, r->marc_import, WHERE_CSV);
            carrel__response__free_unpacked(r, NULL);
        }
    }
    json_array_end(&problems);
    if (code == EXIT_OK) {
        import_print_totals(cli, &t, &problems, "items");
        if (t.failed > 0)
            code = EXIT_SERVER;
    }
    json_free(&problems);
    for (size_t i = 0; i < nrows; i++)
        csv_row_free(&rows[i]);
    free(rows);
    free(lines);
    free(irows);
    free(ptrs);
    free(text);
    return code;
}

/* ---- export ---- */

static int cmd_export_marc(cli_t *cli, int argc, char **argv)
{
    const char *out_path = NULL;
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (ch == 'o')
            out_path = optarg;
        else
            return EXIT_USAGE;
    }
    if (optind != argc)
        return cli_fail(cli, EXIT_USAGE, "usage: export marc [-o FILE]  (ISO 2709, UTF-8)");
    FILE *out = out_path ? fopen(out_path, "wb") : stdout;
    if (out == NULL)
        return cli_fail(cli, EXIT_LOCAL, "cannot write %s", out_path);
    int64_t after = 0;
    size_t total = 0;
    int code = EXIT_OK;
    for (;;) {
        Carrel__Request req = CARREL__REQUEST__INIT;
        Carrel__MarcExport e = CARREL__MARC_EXPORT__INIT;
        e.has_after_id = 1;
        e.after_id = after;
        req.body_case = CARREL__REQUEST__BODY_MARC_EXPORT;
        req.marc_export = &e;
        Carrel__Response *r = NULL;
        code = cli_call(cli, &req, &r);
        if (code != EXIT_OK)
            break;
        for (size_t i = 0; i < r->marc_export->n_records; i++)
            if (fwrite(r->marc_export->records[i].data, 1, r->marc_export->records[i].len, out) !=
                r->marc_export->records[i].len)
                code = EXIT_LOCAL;
        total += r->marc_export->n_records;
        after = r->marc_export->last_id;
        bool done = r->marc_export->done;
        carrel__response__free_unpacked(r, NULL);
        if (done || code != EXIT_OK)
            break;
    }
    if (out != stdout && fclose(out) != 0)
        code = EXIT_LOCAL;
    if (code == EXIT_LOCAL)
        return cli_fail(cli, EXIT_LOCAL, "cannot write the export");
    if (code == EXIT_OK && out_path)
        fprintf(stderr, "exported %zu records to %s\n", total, out_path);
    return code;
}

const command_t catalog_commands[] = {
    {.path = "catalog search",
     .build = build_catalog_search,
     .print_text = print_catalog_search,
     .needs_login = true,
     .usage =
         "[WORDS...] [--not WORD]... [--isbn X] [--issn X] [--barcode X] [--call-number PREFIX] "
         "[--branch CODE] [--format F] [--available] [--page N] [--limit N] [-- WORDS...]",
     .summary =
         "search the catalog (words, or filters alone); copies per branch, how many available"},
    {.path = "catalog show",
     .build = build_catalog_show,
     .print_text = print_catalog_show,
     .needs_login = true,
     .usage = "BIB [--marc]",
     .summary = "a record with its copies"},
    {.path = "catalog add",
     .build = build_catalog_add,
     .send = CMD_SEND_ONCE,
     .print_text = print_catalog_saved,
     .needs_login = true,
     .usage = "--title T [--author A] [--isbn X]... [--subject S]... [--publisher P] [--year Y] "
              "[--format F] [--language L] [--call-number C]",
     .summary = "create a bibliographic record (librarians)"},
    {.path = "catalog edit",
     .build = build_catalog_edit,
     .prepare = prepare_catalog_edit,
     .send = CMD_SEND_ONCE,
     .print_text = print_catalog_saved,
     .needs_login = true,
     .usage = "BIB [--title T] [--author A] ... (as add)",
     .summary = "change a record's main fields; its MARC follows"},
    {.path = "item show",
     .build = build_item_show,
     .print_text = print_item_show,
     .needs_login = true,
     .usage = "BARCODE",
     .summary = "an item's status, branch and details"},
    {.path = "item add",
     .build = build_item_add,
     .send = CMD_SEND_ONCE,
     .print_text = print_item_saved,
     .needs_login = true,
     .usage =
         "BARCODE --bib BIB --branch CODE [--type T] [--location L] [--call-number C] [--price P]",
     .summary = "add a copy (librarians, for their branch)"},
    {.path = "item edit",
     .build = build_item_edit,
     .prepare = prepare_item_edit,
     .send = CMD_SEND_ONCE,
     .print_text = print_item_saved,
     .needs_login = true,
     .usage =
         "BARCODE [--barcode NEW] [--branch CODE] [--at CODE] [--location L] [--call-number C] "
         "[--type T] [--price P] [--status available|in_processing|damaged|missing|withdrawn]",
     .summary = "change an item"},
    {.path = "import marc",
     .run = cmd_import_marc,
     .needs_login = true,
     .usage = "FILE [--holdings 852|952|none] [--branch CODE] [--spread] [--batch N]",
     .summary =
         "load ISO 2709 or MARCXML records; copies from holdings; exit 4 if any record failed"},
    {.path = "import items",
     .run = cmd_import_items,
     .needs_login = true,
     .usage = "FILE.csv [--branch CODE]",
     .summary =
         "add copies from a CSV (columns bib, barcode, branch, location, call_number, item_type, "
         "price)"},
    {.path = "export marc",
     .run = cmd_export_marc,
     .needs_login = true,
     .usage = "[-o FILE]",
     .summary = "write every record as ISO 2709 (UTF-8)"},
    {.path = NULL},
};
