/*
 * Weeding commands (proto/collections.proto, docs/WEEDING.md): a branch's
 * weeding list in shelf order (every page, as a table or as CSV for a
 * handheld), the collection health summary, decisions about copies (typed
 * on the command line, or scanned: one barcode a line on standard input,
 * each answered as it comes, each keyed so a retry applies it once), the
 * decisions recorded, the CREW rules and the weeding settings. --json
 * prints the replies as they are (the whole list as one document).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

/* A page of the weeding list; the server takes up to 5000. */
#define WEED_PAGE 5000
/* Pages of one list at most: 2,000,000 copies, far beyond any branch. */
#define WEED_PAGES_MAX 2000
/* --wear options of one settings command. */
#define WEED_WEAR_MAX 64
/* A scanned line: a barcode and what a scanner adds around it. */
#define WEED_LINE_MAX 256

enum {
    OPT_BRANCH = 256,
    OPT_COLLECTION,
    OPT_DEAD,
    OPT_CSV,
    OPT_ALL,
    OPT_TO,
    OPT_NOTE,
    OPT_LAST_COPY_OK,
    OPT_DECISION,
    OPT_FROM,
    OPT_LIMIT,
    OPT_SYSTEM,
    OPT_NAME,
    OPT_DEWEY,
    OPT_LOCATION,
    OPT_AUDIENCE,
    OPT_FICTION,
    OPT_X,
    OPT_Y,
    OPT_MUSTIE,
    OPT_TARGET,
    OPT_ORD,
    OPT_DEAD_DAYS,
    OPT_KEEP_MONTHS,
    OPT_WEAR,
};

static const char *weed_or(const char *s, const char *otherwise)
{
    return s && s[0] ? s : otherwise;
}

static void weed_int(char *out, size_t n, protobuf_c_boolean has, long long v)
{
    if (has)
        snprintf(out, n, "%lld", v);
    else
        snprintf(out, n, "-");
}

static const char *const unreviewed_note =
    "Note: some CREW rules in effect are the shipped starting point nobody has reviewed yet "
    "(carrel crew list).\n";

/* ---------------------------------------------------------------- weeding (the list) */

static const char *const weed_csv_header[] = {
    "barcode", "call_number", "collection", "title",          "author",
    "year",    "last_used",   "uses",       "recommendation", "reason"};
#define WEED_CSV_COLUMNS (sizeof(weed_csv_header) / sizeof(weed_csv_header[0]))

static void weed_csv_row(FILE *out, const Carrel__WeedingCandidate *c)
{
    char uses[16];
    snprintf(uses, sizeof(uses), "%d", c->uses);
    const char *fields[] = {c->barcode,        c->call_number, c->collection, c->title,
                            c->author,         c->year,        c->last_used,  uses,
                            c->recommendation, c->reason};
    output_csv_row(out, fields, WEED_CSV_COLUMNS);
}

static void weed_table_row(table_t *t, const Carrel__WeedingCandidate *c)
{
    char title[256], uses[16], reason[256], what[96];
    output_cut(title, sizeof(title), weed_or(c->title, ""), 40);
    output_cut(reason, sizeof(reason), weed_or(c->reason, ""), OUTPUT_TITLE_COLUMNS);
    snprintf(uses, sizeof(uses), "%d", c->uses);
    /* "transfer to PRK": where the copy goes, in the column people scan. */
    snprintf(what, sizeof(what), "%s%s%s", weed_or(c->recommendation, ""),
             c->transfer_to && c->transfer_to[0] ? " to " : "", weed_or(c->transfer_to, ""));
    const char *row[] = {weed_or(c->call_number, ""),
                         weed_or(c->barcode, ""),
                         title,
                         weed_or(c->year, "?"),
                         weed_or(c->last_used, "never"),
                         uses,
                         what,
                         reason};
    table_add(t, row);
}

/* Where the list goes: a table (kept until the end), CSV, or JSON. */
typedef struct weed_out {
    FILE *csv; /* CSV rows go here (stdout or the .partial file) */
    table_t *table;
    json_t json;
    size_t copies;
    bool unreviewed;
} weed_out_t;

static void weed_out_page(cli_t *cli, weed_out_t *o, const Carrel__WeedingListReply *x)
{
    if (x->rules_unreviewed)
        o->unreviewed = true;
    for (size_t i = 0; i < x->n_candidates; i++) {
        const Carrel__WeedingCandidate *c = x->candidates[i];
        if (o->csv)
            weed_csv_row(o->csv, c);
        else if (cli->json)
            json_message(&o->json, &c->base);
        else
            weed_table_row(o->table, c);
    }
    o->copies += x->n_candidates;
}

/*
 * Every page of the list into `o`, in shelf order: each page asks for the
 * rows after the last shelf key of the one before. A server that says
 * "more" without moving on is a bug there, reported rather than looped on.
 */
static int weed_fetch_all(cli_t *cli, Carrel__WeedingList *l, weed_out_t *o)
{
    char *after = NULL;
    int code = EXIT_OK;
    for (int page = 0;; page++) {
        if (page == WEED_PAGES_MAX) {
            code = cli_fail(cli, EXIT_LOCAL, "the list has more than %d pages; stopped",
                            WEED_PAGES_MAX);
            break;
        }
        l->after = after;
        Carrel__Request req = CARREL__REQUEST__INIT;
        req.body_case = CARREL__REQUEST__BODY_WEEDING_LIST;
        req.weeding_list = l;
        Carrel__Response *r = NULL;
        code = cli_call(cli, &req, &r);
        if (code != EXIT_OK)
            break;
        const Carrel__WeedingListReply *x = r->weeding;
        weed_out_page(cli, o, x);
        bool more = x->more && x->n_candidates > 0;
        const char *last = x->n_candidates ? x->candidates[x->n_candidates - 1]->shelf_key : NULL;
        if (more && (last == NULL || (after && strcmp(after, last) == 0))) {
            carrel__response__free_unpacked(r, NULL);
            code = cli_fail(cli, EXIT_SERVER, "the server's list did not move past %s",
                            weed_or(after, "its first page"));
            break;
        }
        free(after);
        after = more ? util_xstrdup(last) : NULL;
        carrel__response__free_unpacked(r, NULL);
        if (!more)
            break;
    }
    free(after);
    return code;
}

static int weed_list_options(int argc, char **argv, Carrel__WeedingList *l, const char **csv_path)
{
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"collection", required_argument, NULL, OPT_COLLECTION},
                                         {"dead", no_argument, NULL, OPT_DEAD},
                                         {"csv", required_argument, NULL, OPT_CSV},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_BRANCH)
            l->branch_code = optarg;
        else if (ch == OPT_COLLECTION)
            l->collection = optarg;
        else if (ch == OPT_DEAD)
            l->has_include_dead = l->include_dead = 1;
        else if (ch == OPT_CSV)
            *csv_path = optarg;
        else
            return EXIT_USAGE;
    }
    return optind == argc ? EXIT_OK : EXIT_USAGE;
}

/* The text and JSON endings of the list (CSV has none: it is for programs). */
static void weed_out_finish(cli_t *cli, weed_out_t *o, const Carrel__WeedingList *l)
{
    if (cli->json) {
        json_array_end(&o->json);
        json_key(&o->json, "rules_unreviewed");
        json_bool(&o->json, o->unreviewed);
        json_object_end(&o->json);
        json_print(&o->json, stdout);
        return;
    }
    if (o->copies == 0)
        printf("Nothing to weed at %s%s%s.\n", weed_or(l->branch_code, "this branch"),
               l->collection ? " in " : "", weed_or(l->collection, ""));
    else
        table_print(o->table, stdout);
    if (o->copies)
        printf("%zu %s to review\n", o->copies, o->copies == 1 ? "copy" : "copies");
    if (o->unreviewed)
        printf("%s", unreviewed_note);
}

/* What a list written to a file says: on standard error, or one JSON document. */
static void weed_file_written(cli_t *cli, const weed_out_t *o, const char *path)
{
    if (cli->json) {
        json_t j;
        json_init(&j);
        json_object_begin(&j);
        json_key(&j, "copies");
        json_uint(&j, o->copies);
        json_key(&j, "file");
        json_string(&j, path);
        json_key(&j, "rules_unreviewed");
        json_bool(&j, o->unreviewed);
        json_object_end(&j);
        json_print(&j, stdout);
        json_free(&j);
        return;
    }
    if (cli->quiet)
        return;
    fprintf(stderr, "wrote %zu %s to %s\n", o->copies, o->copies == 1 ? "copy" : "copies", path);
    if (o->unreviewed)
        fprintf(stderr, "%s", unreviewed_note);
}

/*
 * carrel weeding [--branch B] [--collection C] [--dead] [--csv FILE|-]: the
 * whole list. A CSV file is written to FILE.partial and renamed, so a file
 * cut short by a lost connection never looks finished.
 */
static int cmd_weeding(cli_t *cli, int argc, char **argv)
{
    Carrel__WeedingList l = CARREL__WEEDING_LIST__INIT;
    l.has_limit = 1;
    l.limit = WEED_PAGE;
    const char *path = NULL;
    if (weed_list_options(argc, argv, &l, &path) != EXIT_OK)
        return cli_fail(cli, EXIT_USAGE,
                        "usage: weeding [--branch B] [--collection C] [--dead] "
                        "[--csv FILE|-]");
    weed_out_t o = {0};
    char *tmp = NULL;
    bool to_file = path && strcmp(path, "-") != 0;
    if (to_file) {
        size_t n = strlen(path) + 16;
        tmp = util_xcalloc(n, 1);
        snprintf(tmp, n, "%s.partial", path);
        if ((o.csv = fopen(tmp, "w")) == NULL) {
            int code = cli_fail(cli, EXIT_LOCAL, "cannot write %s: %s", tmp, strerror(errno));
            free(tmp);
            return code;
        }
    } else if (path) {
        o.csv = stdout;
    }
    static const char *const headers[] = {"Call number", "Barcode", "Title",          "Year",
                                          "Last use",    "Uses",    "Recommendation", "Reason"};
    if (o.csv)
        output_csv_row(o.csv, weed_csv_header, WEED_CSV_COLUMNS);
    else if (cli->json) {
        json_init(&o.json);
        json_object_begin(&o.json);
        json_key(&o.json, "candidates");
        json_array_begin(&o.json);
    } else
        o.table = table_new(8, headers);
    int code = weed_fetch_all(cli, &l, &o);
    if (to_file) {
        bool bad = ferror(o.csv) != 0;
        bad |= fclose(o.csv) != 0;
        if (code == EXIT_OK && !bad && rename(tmp, path) != 0)
            bad = true;
        if (bad && code == EXIT_OK)
            code = cli_fail(cli, EXIT_LOCAL, "cannot write %s: %s", path, strerror(errno));
        if (code != EXIT_OK)
            unlink(tmp);
        else
            weed_file_written(cli, &o, path);
    } else if (o.csv) {
        if (fflush(stdout) != 0 && code == EXIT_OK)
            code = cli_fail(cli, EXIT_LOCAL, "cannot write the list: %s", strerror(errno));
    } else if (code == EXIT_OK) {
        weed_out_finish(cli, &o, &l);
    }
    if (cli->json && !o.csv)
        json_free(&o.json);
    if (o.table)
        table_free(o.table);
    free(tmp);
    return code;
}

/* ---------------------------------------------------------------- weeding summary */

static int build_summary(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__WeedingSummary *s =
        CMD_BODY(call, weeding_summary, WEEDING_SUMMARY, carrel__weeding_summary__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"all", no_argument, NULL, OPT_ALL},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_BRANCH)
            s->branch_code = optarg;
        else if (ch == OPT_ALL)
            s->has_all_branches = s->all_branches = 1;
        else
            return cmd_usage(cli, call);
    }
    if (optind != argc || (s->all_branches && s->branch_code))
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static void print_summary(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__WeedingSummaryReply *x = r->weeding_summary;
    bool all = call->req.weeding_summary->all_branches;
    if (x->n_collections == 0) {
        printf("No collections.\n");
        return;
    }
    static const char *const headers[] = {"Branch", "Collection", "Name",     "Copies",
                                          "Dead",   "Dead %",     "Target %", "Candidates",
                                          "Worn",   "Median age"};
    int skip = all ? 0 : 1; /* one branch: no branch column */
    table_t *t = table_new(10 - skip, headers + skip);
    for (size_t i = 0; i < x->n_collections; i++) {
        const Carrel__CollectionHealth *h = x->collections[i];
        char copies[16], dead[16], pct[32], target[16], cand[16], worn[16], age[16], name[256];
        output_cut(name, sizeof(name), weed_or(h->name, ""), 40);
        weed_int(copies, sizeof(copies), h->has_copies, h->copies);
        weed_int(dead, sizeof(dead), h->has_dead, h->dead);
        if (h->has_dead_pct)
            snprintf(pct, sizeof(pct), "%.1f%s", h->dead_pct, h->over_target ? " OVER" : "");
        else
            snprintf(pct, sizeof(pct), "-");
        weed_int(target, sizeof(target), h->has_target_pct, h->target_pct);
        weed_int(cand, sizeof(cand), h->has_candidates, h->candidates);
        weed_int(worn, sizeof(worn), h->has_worn, h->worn);
        weed_int(age, sizeof(age), h->has_median_age_years, h->median_age_years);
        const char *row[] = {weed_or(h->branch_code, ""),
                             weed_or(h->collection, "(none)"),
                             name,
                             copies,
                             dead,
                             pct,
                             target,
                             cand,
                             worn,
                             age};
        table_add(t, row + skip);
    }
    table_print(t, stdout);
    table_free(t);
    if (x->has_dead_days)
        printf("Dead: on the shelf with no loan or in-house use in %d days. Candidates: past "
               "the CREW rule's X or Y.\n",
               x->dead_days);
}

/* ---------------------------------------------------------------- weeding decide */

static const char *const decide_usage =
    "usage: weeding decide withdraw|keep|mend|replace|transfer [--to BRANCH] [--note TEXT] "
    "[--last-copy-ok] [BARCODE...]";

typedef struct weed_decide {
    const char *decision;
    const char *to;
    const char *note;
    bool last_copy_ok;
    json_t json;
    int worst;
    size_t done;
} weed_decide_t;

/* One copy's decision, keyed; printed (or added to the JSON array) as it comes. */
static int weed_decide_one(cli_t *cli, weed_decide_t *d, const char *barcode)
{
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__WeedingDecide m = CARREL__WEEDING_DECIDE__INIT;
    m.barcode = (char *)barcode;
    m.decision = (char *)d->decision;
    m.transfer_to = (char *)d->to;
    m.note = (char *)d->note;
    if (d->last_copy_ok)
        m.has_last_copy_ok = m.last_copy_ok = 1;
    req.body_case = CARREL__REQUEST__BODY_WEEDING_DECIDE;
    req.weeding_decide = &m;
    Carrel__Response *r = NULL;
    cli_batch_element(cli, "barcode", barcode);
    int code = cli_call_keyed(cli, &req, &r);
    if (code != EXIT_OK) {
        if (d->worst == EXIT_OK || code == EXIT_NETWORK)
            d->worst = code;
        fflush(stderr);
        return code;
    }
    const Carrel__WeedingDecideReply *x = r->weeding_decided;
    if (cli->json) {
        output_json_element(&d->json, &x->base, true);
    } else {
        char title[256];
        output_cut(title, sizeof(title), weed_or(x->title, ""), 40);
        printf("%s  %s  %s\n", weed_or(x->barcode, barcode), title,
               weed_or(x->message, weed_or(x->status, "")));
        fflush(stdout); /* the person scanning sees each answer at once */
    }
    d->done++;
    carrel__response__free_unpacked(r, NULL);
    return EXIT_OK;
}

/* Barcodes from standard input, one a line as a scanner types them; blank lines skipped. */
static void weed_decide_stdin(cli_t *cli, weed_decide_t *d)
{
    char line[WEED_LINE_MAX];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        size_t len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            int c;
            while ((c = getchar()) != EOF && c != '\n')
                ;
            cli_fail(cli, EXIT_USAGE, "a line of more than %d bytes is no barcode; skipped",
                     WEED_LINE_MAX - 2);
            if (d->worst == EXIT_OK)
                d->worst = EXIT_USAGE;
            continue;
        }
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        len = strlen(s);
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' ||
                           s[len - 1] == '\t'))
            s[--len] = '\0';
        if (len == 0)
            continue;
        if (weed_decide_one(cli, d, s) == EXIT_NETWORK)
            return;
    }
}

static int cmd_weeding_decide(cli_t *cli, int argc, char **argv)
{
    static const char *const decisions[] = {"withdraw", "keep", "mend", "replace", "transfer"};
    weed_decide_t d = {0};
    static const struct option opts[] = {{"to", required_argument, NULL, OPT_TO},
                                         {"note", required_argument, NULL, OPT_NOTE},
                                         {"last-copy-ok", no_argument, NULL, OPT_LAST_COPY_OK},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_TO)
            d.to = optarg;
        else if (ch == OPT_NOTE)
            d.note = optarg;
        else if (ch == OPT_LAST_COPY_OK)
            d.last_copy_ok = true;
        else
            return cli_fail(cli, EXIT_USAGE, "%s", decide_usage);
    }
    if (optind >= argc)
        return cli_fail(cli, EXIT_USAGE, "%s", decide_usage);
    d.decision = argv[optind++];
    bool known = false;
    for (size_t i = 0; i < sizeof(decisions) / sizeof(decisions[0]); i++)
        known |= strcmp(d.decision, decisions[i]) == 0;
    bool transfer = strcmp(d.decision, "transfer") == 0;
    if (!known || transfer != (d.to != NULL))
        return cli_fail(cli, EXIT_USAGE, "%s%s", decide_usage,
                        known ? " (--to names the branch of a transfer, and only of one)" : "");
    cli_batch_begin(cli, &d.json);
    if (optind == argc) {
        if (isatty(STDIN_FILENO) && !cli->quiet)
            fprintf(stderr, "Scan the copies to %s, one a line; end with Ctrl-D.\n", d.decision);
        weed_decide_stdin(cli, &d);
    } else {
        for (int i = optind; i < argc; i++)
            if (weed_decide_one(cli, &d, argv[i]) == EXIT_NETWORK)
                break;
    }
    cli_batch_end(cli, &d.json);
    return d.worst;
}

/* ---------------------------------------------------------------- weeding decisions */

static int build_decisions(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__WeedingDecisionList *l = CMD_BODY(call, weeding_decision_list, WEEDING_DECISION_LIST,
                                              carrel__weeding_decision_list__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"decision", required_argument, NULL, OPT_DECISION},
                                         {"from", required_argument, NULL, OPT_FROM},
                                         {"to", required_argument, NULL, OPT_TO},
                                         {"limit", required_argument, NULL, OPT_LIMIT},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_BRANCH:
            l->branch_code = optarg;
            break;
        case OPT_DECISION:
            l->decision = optarg;
            break;
        case OPT_FROM:
            l->from = optarg;
            break;
        case OPT_TO:
            l->to = optarg;
            break;
        case OPT_LIMIT:
            l->has_limit = 1;
            if (cli_int32_arg(cli, "--limit", optarg, 1, 1000, &l->limit) != EXIT_OK)
                return EXIT_USAGE;
            break;
        default:
            return cmd_usage(cli, call);
        }
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static void print_decisions(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__WeedingDecisionListReply *x = r->weeding_decisions;
    if (x->n_decisions == 0) {
        printf("No decisions.\n");
        return;
    }
    static const char *const headers[] = {"When",  "Decision", "Barcode", "Call number",
                                          "Title", "By",       "To",      "Note"};
    table_t *t = table_new(8, headers);
    for (size_t i = 0; i < x->n_decisions; i++) {
        const Carrel__WeedingDecision *d = x->decisions[i];
        char title[256], note[256];
        output_cut(title, sizeof(title), weed_or(d->title, ""), 40);
        output_cut(note, sizeof(note), weed_or(d->note, ""), 40);
        const char *row[] = {weed_or(d->at, ""),
                             weed_or(d->decision, ""),
                             weed_or(d->barcode, ""),
                             weed_or(d->call_number, ""),
                             title,
                             weed_or(d->username, ""),
                             weed_or(d->transfer_to, ""),
                             note};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

/* ---------------------------------------------------------------- crew list */

static int build_crew_list(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__CrewRuleList *l =
        CMD_BODY(call, crew_rule_list, CREW_RULE_LIST, carrel__crew_rule_list__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"system", no_argument, NULL, OPT_SYSTEM},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_BRANCH)
            l->branch_code = optarg;
        else if (ch == OPT_SYSTEM)
            l->has_system_only = l->system_only = 1;
        else
            return cmd_usage(cli, call);
    }
    if (optind != argc || (l->system_only && l->branch_code))
        return cmd_usage(cli, call);
    return EXIT_OK;
}

/* "600-699.999", "any" when the rule is not by Dewey. */
static void crew_dewey(char *out, size_t n, const Carrel__CrewRule *r)
{
    if (!(r->dewey_from && r->dewey_from[0]) && !(r->dewey_to && r->dewey_to[0]))
        snprintf(out, n, "-");
    else
        snprintf(out, n, "%s-%s", weed_or(r->dewey_from, ""), weed_or(r->dewey_to, ""));
}

static void crew_print_rules(Carrel__CrewRule *const *rules, size_t n)
{
    static const char *const headers[] = {"Ord",      "Collection", "Name",    "Dewey",
                                          "Location", "Audience",   "Fiction", "X",
                                          "Y",        "Target %",   "Source",  "MUSTIE"};
    table_t *t = table_new(12, headers);
    for (size_t i = 0; i < n; i++) {
        const Carrel__CrewRule *r = rules[i];
        char ord[16], x[16], y[16], target[16], dewey[80], name[256], mustie[256], source[64];
        weed_int(ord, sizeof(ord), r->has_ord, r->ord);
        if (r->has_max_age_years)
            snprintf(x, sizeof(x), "%d", r->max_age_years);
        else
            snprintf(x, sizeof(x), "n/a");
        if (r->has_max_idle_years)
            snprintf(y, sizeof(y), "%d", r->max_idle_years);
        else
            snprintf(y, sizeof(y), "n/a");
        weed_int(target, sizeof(target), r->has_dead_target_pct, r->dead_target_pct);
        crew_dewey(dewey, sizeof(dewey), r);
        output_cut(name, sizeof(name), weed_or(r->name, ""), 36);
        output_cut(mustie, sizeof(mustie), weed_or(r->mustie, ""), 30);
        snprintf(source, sizeof(source), "%s%s%s", weed_or(r->source, ""),
                 r->branch_code && r->branch_code[0] ? " " : "", weed_or(r->branch_code, ""));
        if (r->has_reviewed && !r->reviewed)
            snprintf(source + strlen(source), sizeof(source) - strlen(source), " (unreviewed)");
        const char *row[] = {ord,
                             weed_or(r->collection, ""),
                             name,
                             dewey,
                             weed_or(r->location, "-"),
                             weed_or(r->audience, "any"),
                             weed_or(r->fiction, "any"),
                             x,
                             y,
                             target,
                             source,
                             mustie};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

static void print_crew_list(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__CrewRuleListReply *x = r->crew_rules;
    if (x->n_rules == 0)
        printf("No CREW rules.\n");
    else
        crew_print_rules(x->rules, x->n_rules);
    if (x->unreviewed)
        printf("%s", unreviewed_note);
}

/* ---------------------------------------------------------------- crew save, crew remove */

/*
 * What crew save was given: the rule's changes, and which of the optional
 * numbers were set to "n/a" (absent in the rule either way). prepare starts
 * from the rule in effect (so a branch's override keeps what it does not
 * change) and lays these over it.
 */
typedef struct crew_changes {
    Carrel__CrewRule rule;
    bool system;
    bool clear_x, clear_y, clear_dewey;
} crew_changes_t;

/* "N" (1..100) or "n/a" for --x and --y. */
static int crew_years(cli_t *cli, const char *what, const char *arg, protobuf_c_boolean *has,
                      int32_t *value, bool *clear)
{
    if (strcmp(arg, "n/a") == 0 || strcmp(arg, "na") == 0) {
        *clear = true;
        *has = 0;
        return EXIT_OK;
    }
    *clear = false;
    *has = 1;
    return cli_int32_arg(cli, what, arg, 1, 100, value);
}

/* "FROM-TO" (e.g. 600-699.999), or "none": not by Dewey. */
static int crew_dewey_arg(cli_t *cli, cmd_call_t *call, const char *arg, crew_changes_t *c)
{
    if (strcmp(arg, "none") == 0) {
        c->clear_dewey = true;
        return EXIT_OK;
    }
    const char *dash = strchr(arg, '-');
    if (dash == NULL || dash == arg || dash[1] == '\0')
        return cli_fail(cli, EXIT_USAGE, "--dewey takes FROM-TO (e.g. 600-699.999) or none");
    char *copy = cmd_part(call, strlen(arg) + 1);
    memcpy(copy, arg, strlen(arg) + 1);
    copy[dash - arg] = '\0';
    c->rule.dewey_from = copy;
    c->rule.dewey_to = copy + (dash - arg) + 1;
    c->clear_dewey = false;
    return EXIT_OK;
}

static int crew_option(cli_t *cli, cmd_call_t *call, int ch, crew_changes_t *c)
{
    Carrel__CrewRule *r = &c->rule;
    switch (ch) {
    case OPT_BRANCH:
        r->branch_code = optarg;
        return EXIT_OK;
    case OPT_SYSTEM:
        c->system = true;
        return EXIT_OK;
    case OPT_NAME:
        r->name = optarg;
        return EXIT_OK;
    case OPT_DEWEY:
        return crew_dewey_arg(cli, call, optarg, c);
    case OPT_LOCATION:
        r->location = optarg;
        return EXIT_OK;
    case OPT_AUDIENCE:
        r->audience = optarg;
        return EXIT_OK;
    case OPT_FICTION:
        r->fiction = optarg;
        return EXIT_OK;
    case OPT_X:
        return crew_years(cli, "--x", optarg, &r->has_max_age_years, &r->max_age_years,
                          &c->clear_x);
    case OPT_Y:
        return crew_years(cli, "--y", optarg, &r->has_max_idle_years, &r->max_idle_years,
                          &c->clear_y);
    case OPT_MUSTIE:
        r->mustie = optarg;
        return EXIT_OK;
    case OPT_TARGET:
        r->has_dead_target_pct = 1;
        return cli_int32_arg(cli, "--target", optarg, 0, 100, &r->dead_target_pct);
    case OPT_ORD:
        r->has_ord = 1;
        return cli_int32_arg(cli, "--ord", optarg, 0, INT32_MAX, &r->ord);
    default:
        return cmd_usage(cli, call);
    }
}

/* The row crew save and crew remove name: (branch or system, collection). */
static Carrel__CrewRuleSave *crew_save_body(cmd_call_t *call)
{
    Carrel__CrewRuleSave *s =
        CMD_BODY(call, crew_rule_save, CREW_RULE_SAVE, carrel__crew_rule_save__init);
    return s;
}

static int build_crew_save(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    crew_save_body(call);
    crew_changes_t *c = cmd_part(call, sizeof(*c));
    carrel__crew_rule__init(&c->rule);
    call->data = c;
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"system", no_argument, NULL, OPT_SYSTEM},
                                         {"name", required_argument, NULL, OPT_NAME},
                                         {"dewey", required_argument, NULL, OPT_DEWEY},
                                         {"location", required_argument, NULL, OPT_LOCATION},
                                         {"audience", required_argument, NULL, OPT_AUDIENCE},
                                         {"fiction", required_argument, NULL, OPT_FICTION},
                                         {"x", required_argument, NULL, OPT_X},
                                         {"y", required_argument, NULL, OPT_Y},
                                         {"mustie", required_argument, NULL, OPT_MUSTIE},
                                         {"target", required_argument, NULL, OPT_TARGET},
                                         {"ord", required_argument, NULL, OPT_ORD},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int code = crew_option(cli, call, ch, c);
        if (code != EXIT_OK)
            return code;
    }
    if (argc - optind != 1 || (c->system && c->rule.branch_code))
        return cmd_usage(cli, call);
    c->rule.collection = argv[optind];
    call->subject = argv[optind];
    return EXIT_OK;
}

/* The branch a save or removal is for: --branch, none with --system, else the session's. */
static char *crew_target_branch(cli_t *cli, bool system, char *branch)
{
    if (system)
        return NULL;
    if (branch)
        return branch;
    if (cli->login && cli->login->branch && cli->login->branch->code)
        return cli->login->branch->code;
    return NULL;
}

/* The rule called `collection` in a list, or NULL. */
static const Carrel__CrewRule *crew_find(const Carrel__CrewRuleListReply *x, const char *collection)
{
    for (size_t i = 0; i < x->n_rules; i++)
        if (x->rules[i]->collection && strcmp(x->rules[i]->collection, collection) == 0)
            return x->rules[i];
    return NULL;
}

/* Lay the changes over the rule read (a shallow copy: the held answer owns its strings). */
static void crew_apply(Carrel__CrewRule *r, const crew_changes_t *c)
{
    const Carrel__CrewRule *ch = &c->rule;
    if (ch->name)
        r->name = ch->name;
    if (c->clear_dewey) {
        /* Empty, not absent: an absent range keeps the one saved (crew_rule_save). */
        r->dewey_from = "";
        r->dewey_to = "";
    } else if (ch->dewey_from) {
        r->dewey_from = ch->dewey_from;
        r->dewey_to = ch->dewey_to;
    }
    if (ch->location)
        r->location = ch->location;
    if (ch->audience)
        r->audience = ch->audience;
    if (ch->fiction)
        r->fiction = ch->fiction;
    if (ch->has_max_age_years || c->clear_x) {
        r->has_max_age_years = ch->has_max_age_years;
        r->max_age_years = ch->max_age_years;
    }
    if (ch->has_max_idle_years || c->clear_y) {
        r->has_max_idle_years = ch->has_max_idle_years;
        r->max_idle_years = ch->max_idle_years;
    }
    if (ch->mustie)
        r->mustie = ch->mustie;
    if (ch->has_dead_target_pct) {
        r->has_dead_target_pct = 1;
        r->dead_target_pct = ch->dead_target_pct;
    }
    if (ch->has_ord) {
        r->has_ord = 1;
        r->ord = ch->ord;
    }
}

/*
 * Start from the rule in effect for the row (the branch's own, or the
 * system's it overrides; the system table for --system), so that saving
 * one change keeps the rest; a new collection starts empty.
 */
static int prepare_crew_save(cli_t *cli, cmd_call_t *call)
{
    const crew_changes_t *c = call->data;
    char *branch = crew_target_branch(cli, c->system, c->rule.branch_code);
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__CrewRuleList l = CARREL__CREW_RULE_LIST__INIT;
    l.branch_code = branch;
    if (branch == NULL)
        l.has_system_only = l.system_only = 1;
    req.body_case = CARREL__REQUEST__BODY_CREW_RULE_LIST;
    req.crew_rule_list = &l;
    Carrel__Response *cur = NULL;
    int code = cli_call(cli, &req, &cur);
    if (code != EXIT_OK)
        return code;
    cmd_hold(call, cur);
    Carrel__CrewRule *r = cmd_part(call, sizeof(*r));
    const Carrel__CrewRule *found = crew_find(cur->crew_rules, c->rule.collection);
    if (found)
        *r = *found;
    else
        carrel__crew_rule__init(r);
    crew_apply(r, c);
    r->collection = c->rule.collection;
    r->branch_code = branch;
    r->has_id = r->has_reviewed = 0;
    r->source = NULL;
    call->req.crew_rule_save->rule = r;
    return EXIT_OK;
}

static void print_crew_saved(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__CrewRule *x = r->crew_rule;
    bool removed = call->req.crew_rule_save->remove;
    printf("%s CREW rule %s (%s)\n", removed ? "removed" : "saved", weed_or(x->collection, "?"),
           x->branch_code && x->branch_code[0] ? x->branch_code : "system");
    if (!removed)
        crew_print_rules(&r->crew_rule, 1);
}

static int build_crew_remove(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__CrewRuleSave *s = crew_save_body(call);
    crew_changes_t *c = cmd_part(call, sizeof(*c));
    carrel__crew_rule__init(&c->rule);
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"system", no_argument, NULL, OPT_SYSTEM},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_BRANCH)
            c->rule.branch_code = optarg;
        else if (ch == OPT_SYSTEM)
            c->system = true;
        else
            return cmd_usage(cli, call);
    }
    if (argc - optind != 1 || (c->system && c->rule.branch_code))
        return cmd_usage(cli, call);
    c->rule.collection = argv[optind];
    c->rule.branch_code = crew_target_branch(cli, c->system, c->rule.branch_code);
    s->rule = &c->rule;
    s->has_remove = s->remove = 1;
    return EXIT_OK;
}

/* ---------------------------------------------------------------- weeding settings */

/* The thresholds given with --wear, kept with the call. */
typedef struct weed_wear {
    Carrel__WearThreshold rows[WEED_WEAR_MAX];
    Carrel__WearThreshold *list[WEED_WEAR_MAX];
} weed_wear_t;

/* --wear TYPE=N */
static int weed_wear_arg(cli_t *cli, cmd_call_t *call, weed_wear_t **wear,
                         Carrel__WeedingSettings *s)
{
    const char *eq = strchr(optarg, '=');
    if (eq == NULL || eq == optarg)
        return cli_fail(cli, EXIT_USAGE, "--wear takes TYPE=N (e.g. book=60; 0: never worn)");
    if (*wear == NULL) {
        *wear = cmd_part(call, sizeof(**wear));
        s->wear = (*wear)->list;
    }
    if (s->n_wear == WEED_WEAR_MAX)
        return cli_fail(cli, EXIT_USAGE, "at most %d --wear options", WEED_WEAR_MAX);
    Carrel__WearThreshold *w = &(*wear)->rows[s->n_wear];
    carrel__wear_threshold__init(w);
    optarg[eq - optarg] = '\0'; /* our own argv: the type ends at the '=' */
    w->item_type = optarg;
    w->has_max_uses = 1;
    if (cli_int32_arg(cli, "--wear", eq + 1, 0, 1000000, &w->max_uses) != EXIT_OK)
        return EXIT_USAGE;
    s->wear[s->n_wear++] = w;
    return EXIT_OK;
}

/* No option: the settings as they are (WeedingSettingsGet); options: a save. */
static int build_settings(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__WeedingSettings *s = cmd_part(call, sizeof(*s));
    carrel__weeding_settings__init(s);
    weed_wear_t *wear = NULL;
    static const struct option opts[] = {{"dead-days", required_argument, NULL, OPT_DEAD_DAYS},
                                         {"keep-months", required_argument, NULL, OPT_KEEP_MONTHS},
                                         {"wear", required_argument, NULL, OPT_WEAR},
                                         {NULL, 0, NULL, 0}};
    int ch, code = EXIT_OK;
    bool changes = false;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        changes = true;
        if (ch == OPT_DEAD_DAYS) {
            s->has_dead_days = 1;
            code = cli_int32_arg(cli, "--dead-days", optarg, 1, 36500, &s->dead_days);
        } else if (ch == OPT_KEEP_MONTHS) {
            s->has_keep_months = 1;
            code = cli_int32_arg(cli, "--keep-months", optarg, 0, 1200, &s->keep_months);
        } else if (ch == OPT_WEAR) {
            code = weed_wear_arg(cli, call, &wear, s);
        } else {
            return cmd_usage(cli, call);
        }
        if (code != EXIT_OK)
            return code;
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    if (changes) {
        Carrel__WeedingSettingsSave *save =
            CMD_BODY(call, weeding_settings_save, WEEDING_SETTINGS_SAVE,
                     carrel__weeding_settings_save__init);
        save->settings = s;
    } else {
        CMD_BODY(call, weeding_settings_get, WEEDING_SETTINGS_GET,
                 carrel__weeding_settings_get__init);
    }
    return EXIT_OK;
}

static void print_settings(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__WeedingSettings *s = r->body_case == CARREL__RESPONSE__BODY_WEEDING_SETTINGS_SAVED
                                           ? r->weeding_settings_saved
                                           : r->weeding_settings;
    if (r->body_case == CARREL__RESPONSE__BODY_WEEDING_SETTINGS_SAVED)
        printf("saved the weeding settings\n");
    printf("Dead after:     %d days on the shelf with no loan\n", s->dead_days);
    printf("Keep decisions: off the list for %d months\n", s->keep_months);
    if (s->n_wear == 0)
        return;
    static const char *const headers[] = {"Item type", "Worn above (uses)"};
    table_t *t = table_new(2, headers);
    for (size_t i = 0; i < s->n_wear; i++) {
        char uses[32];
        if (s->wear[i]->max_uses > 0)
            snprintf(uses, sizeof(uses), "%d", s->wear[i]->max_uses);
        else
            snprintf(uses, sizeof(uses), "never");
        const char *row[] = {weed_or(s->wear[i]->item_type, ""), uses};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

/* ---------------------------------------------------------------- the table */

const command_t weeding_commands[] = {
    {.path = "weeding",
     .run = cmd_weeding,
     .needs_login = true,
     .usage = "[--branch B] [--collection C] [--dead] [--csv FILE|-]",
     .summary = "the weeding list of a branch in shelf order: copies past the CREW rule's X or "
                "Y, worn ones, transfers (--dead: dead copies too; --csv: for a handheld)"},
    {.path = "weeding summary",
     .build = build_summary,
     .print_text = print_summary,
     .needs_login = true,
     .usage = "[--branch B | --all]",
     .summary = "collection health: copies, dead share against the target, candidates, worn, "
                "median age per collection (--all: every branch, coordinators)"},
    {.path = "weeding decide",
     .run = cmd_weeding_decide,
     .needs_login = true,
     .usage = "withdraw|keep|mend|replace|transfer [--to BRANCH] [--note TEXT] [--last-copy-ok] "
              "[BARCODE...]",
     .summary = "record a decision for each copy (barcodes from standard input, one a line, "
                "when none are given: scan them)"},
    {.path = "weeding decisions",
     .build = build_decisions,
     .print_text = print_decisions,
     .needs_login = true,
     .usage = "[--branch B] [--decision D] [--from DAY] [--to DAY] [--limit N]",
     .summary = "the weeding decisions recorded at a branch, newest first (default: 30 days)"},
    {.path = "weeding settings",
     .build = build_settings,
     .send = CMD_SEND_ONCE,
     .print_text = print_settings,
     .needs_login = true,
     .usage = "[--dead-days N] [--keep-months N] [--wear TYPE=N ...]",
     .summary = "the weeding settings; with options, change them (coordinators; --wear book=60 "
                "sets when a copy of a type is worn, 0 never)"},
    {.path = "crew list",
     .build = build_crew_list,
     .print_text = print_crew_list,
     .needs_login = true,
     .usage = "[--branch B | --system]",
     .summary = "the CREW rules in effect at a branch (X: years since copyright, Y: years since "
                "last use), or the system table"},
    {.path = "crew save",
     .build = build_crew_save,
     .prepare = prepare_crew_save,
     .send = CMD_SEND_ONCE,
     .print_text = print_crew_saved,
     .needs_login = true,
     .usage = "COLLECTION [--branch B | --system] [--name N] [--dewey FROM-TO|none] "
              "[--location L] [--audience adult|juvenile|any] [--fiction fiction|nonfiction|any] "
              "[--x N|n/a] [--y N|n/a] [--mustie TEXT] [--target PCT] [--ord N]",
     .summary = "override a CREW rule for a branch (the session's unless --branch), or change "
                "the system table (--system, coordinators); what is not given is kept"},
    {.path = "crew remove",
     .build = build_crew_remove,
     .send = CMD_SEND_ONCE,
     .print_text = print_crew_saved,
     .needs_login = true,
     .usage = "COLLECTION [--branch B | --system]",
     .summary = "remove a branch's override (the system rule applies again) or a system rule"},
    {.path = NULL},
};
