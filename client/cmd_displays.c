/*
 * Display commands (proto/collections.proto, displays): set a display up,
 * change or end it, list them, show one with its copies, scan copies onto
 * it (from the command line, or from standard input one barcode a line, as
 * a scanner types) or take them off, and its report. Scanning is keyed per
 * copy (sent again with the same key after a lost answer). Days are the
 * library's local "YYYY-MM-DD"; --json prints each reply as it is (scans as
 * one array, as checkin does).
 *
 * Also here, for checkin and desk mode: the line that tells the desk to put
 * a returned copy back on its display (checkin_display_line).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

/* A barcode line from standard input, at most (longer lines are refused). */
#define DISPLAY_SCAN_LINE_MAX 256

enum {
    OPT_PLACE = 256,
    OPT_FROM,
    OPT_TO,
    OPT_CURATOR,
    OPT_BRANCH,
    OPT_NOTE,
    OPT_THEME,
    OPT_ALL,
};

static const char *dsp_or(const char *s, const char *otherwise)
{
    return s && s[0] ? s : otherwise;
}

/* A display's number from the command line. */
static int dsp_id(cli_t *cli, const char *text, int64_t *out)
{
    return cli_int_arg(cli, "display number", text, 1, INT64_MAX, out);
}

/* ---------------------------------------------------------------- checkin */

/*
 * The checkin line for people. For route "display": the server's message with
 * its "Put back on the display: ..." sentence said loudly ("PUT BACK ON
 * DISPLAY: THEME (place)"), keeping whatever else it says (a fine, a status
 * corrected); any other route: the message as it is. The result is in out.
 */
const char *checkin_display_line(char *out, size_t n, const Carrel__CheckinReply *c)
{
    const char *message = dsp_or(c->message, "");
    if (c->route == NULL || strcmp(c->route, "display") != 0 || !c->display || !c->display[0]) {
        snprintf(out, n, "%s", message);
        return out;
    }
    static const char said[] = "Put back on the display: ";
    const char *at = strstr(message, said);
    if (at == NULL) {
        snprintf(out, n, "%s%sPUT BACK ON DISPLAY: %s", message, message[0] ? " — " : "",
                 c->display);
        return out;
    }
    const char *rest = at + strlen(said);
    size_t theme = strlen(c->display);
    if (strncmp(rest, c->display, theme) == 0)
        rest += theme;
    else
        rest += strcspn(rest, ")") + (strchr(rest, ')') ? 1 : 0);
    snprintf(out, n, "%.*sPUT BACK ON DISPLAY: %s%s", (int)(at - message), message, c->display,
             rest);
    return out;
}

/* ---------------------------------------------------------------- printing */

static void dsp_print_list(Carrel__Display *const *displays, size_t n)
{
    if (n == 0) {
        printf("No displays.\n");
        return;
    }
    static const char *const headers[] = {"Display", "Branch", "Status", "From",   "To",
                                          "Copies",  "Place",  "Theme",  "Curator"};
    table_t *t = table_new(9, headers);
    for (size_t i = 0; i < n; i++) {
        const Carrel__Display *d = displays[i];
        char id[24], copies[16], theme[256], place[256];
        snprintf(id, sizeof(id), "%lld", (long long)d->id);
        snprintf(copies, sizeof(copies), "%d", d->copies);
        output_cut(theme, sizeof(theme), dsp_or(d->theme, ""), OUTPUT_TITLE_COLUMNS);
        output_cut(place, sizeof(place), dsp_or(d->place, ""), 30);
        const char *row[] = {id,
                             dsp_or(d->branch_code, ""),
                             dsp_or(d->status, ""),
                             dsp_or(d->starts_on, ""),
                             dsp_or(d->ends_on, ""),
                             copies,
                             place,
                             theme,
                             dsp_or(d->curator, "")};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

static void dsp_print_display(const Carrel__Display *d)
{
    if (d == NULL) {
        printf("No display.\n");
        return;
    }
    printf("Display %lld [%s] at %s: %s\n", (long long)d->id, dsp_or(d->status, "?"),
           dsp_or(d->branch_code, "?"), dsp_or(d->theme, ""));
    printf("Place:    %s\n", dsp_or(d->place, ""));
    printf("Dates:    %s to %s\n", dsp_or(d->starts_on, "?"), dsp_or(d->ends_on, "?"));
    printf("Curator:  %s\n", dsp_or(d->curator, "?"));
    printf("Copies:   %d on it now\n", d->copies);
    if (d->note && d->note[0])
        printf("Note:     %s\n", d->note);
}

static void dsp_print_items(Carrel__DisplayItem *const *items, size_t n)
{
    if (n == 0) {
        printf("No copies scanned onto it yet.\n");
        return;
    }
    static const char *const headers[] = {"Barcode", "Call number", "Title",    "Added",
                                          "Removed", "Status",      "Checkouts"};
    table_t *t = table_new(7, headers);
    for (size_t i = 0; i < n; i++) {
        const Carrel__DisplayItem *it = items[i];
        char title[256], checkouts[16];
        output_cut(title, sizeof(title), dsp_or(it->title, ""), OUTPUT_TITLE_COLUMNS);
        snprintf(checkouts, sizeof(checkouts), "%d", it->checkouts);
        const char *row[] = {dsp_or(it->barcode, ""),
                             dsp_or(it->call_number, ""),
                             title,
                             dsp_or(it->added_on, ""),
                             dsp_or(it->removed_on, ""),
                             dsp_or(it->status, ""),
                             checkouts};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

/* ---------------------------------------------------------------- add, edit, end */

/* The options of display add and edit into d (strings point into argv). */
static int dsp_option(cli_t *cli, cmd_call_t *call, int ch, Carrel__Display *d)
{
    (void)cli;
    switch (ch) {
    case OPT_PLACE:
        d->place = optarg;
        return EXIT_OK;
    case OPT_FROM:
        d->starts_on = optarg;
        return EXIT_OK;
    case OPT_TO:
        d->ends_on = optarg;
        return EXIT_OK;
    case OPT_CURATOR:
        d->curator = optarg;
        return EXIT_OK;
    case OPT_BRANCH:
        d->branch_code = optarg;
        return EXIT_OK;
    case OPT_NOTE:
        d->note = optarg;
        return EXIT_OK;
    case OPT_THEME:
        d->theme = optarg;
        return EXIT_OK;
    default:
        return cmd_usage(cli, call);
    }
}

static const struct option dsp_opts[] = {{"place", required_argument, NULL, OPT_PLACE},
                                         {"from", required_argument, NULL, OPT_FROM},
                                         {"to", required_argument, NULL, OPT_TO},
                                         {"curator", required_argument, NULL, OPT_CURATOR},
                                         {"branch", required_argument, NULL, OPT_BRANCH},
                                         {"note", required_argument, NULL, OPT_NOTE},
                                         {"theme", required_argument, NULL, OPT_THEME},
                                         {NULL, 0, NULL, 0}};

/* A DisplaySave of a new Display (freed with the call), which call->data keeps too. */
static Carrel__Display *dsp_save_build(cmd_call_t *call)
{
    Carrel__DisplaySave *s = CMD_BODY(call, display_save, DISPLAY_SAVE, carrel__display_save__init);
    Carrel__Display *d = cmd_part(call, sizeof(*d));
    carrel__display__init(d);
    s->display = d;
    call->data = d;
    return d;
}

static int build_display_add(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__Display *d = dsp_save_build(call);
    int ch;
    while ((ch = getopt_long(argc, argv, "", dsp_opts, NULL)) != -1) {
        int code = dsp_option(cli, call, ch, d);
        if (code != EXIT_OK)
            return code;
    }
    if (argc - optind != 1 || d->theme || !d->place || !d->starts_on || !d->ends_on)
        return cmd_usage(cli, call);
    d->theme = argv[optind];
    return EXIT_OK;
}

/* display edit ID [changes] and display end ID: the number into the display and call. */
static int dsp_build_change(cli_t *cli, int argc, char **argv, cmd_call_t *call, bool end)
{
    Carrel__Display *changes = dsp_save_build(call);
    int ch;
    static const struct option no_opts[] = {{NULL, 0, NULL, 0}};
    while ((ch = getopt_long(argc, argv, "", end ? no_opts : dsp_opts, NULL)) != -1) {
        int code = dsp_option(cli, call, ch, changes);
        if (code != EXIT_OK)
            return code;
    }
    if (argc - optind != 1)
        return cmd_usage(cli, call);
    if (dsp_id(cli, argv[optind], &call->number) != EXIT_OK)
        return EXIT_USAGE;
    if (end)
        call->req.display_save->has_end_now = call->req.display_save->end_now = 1;
    return EXIT_OK;
}

static int build_display_edit(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return dsp_build_change(cli, argc, argv, call, false);
}

static int build_display_end(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return dsp_build_change(cli, argc, argv, call, true);
}

/*
 * Read the display, change what was given, save with the version read: the
 * whole display goes back, so nothing left out is taken as cleared.
 */
static int prepare_display_change(cli_t *cli, cmd_call_t *call)
{
    const Carrel__Display *changes = call->data;
    Carrel__Request get = CARREL__REQUEST__INIT;
    Carrel__DisplayShow show = CARREL__DISPLAY_SHOW__INIT;
    show.has_id = 1;
    show.id = call->number;
    get.body_case = CARREL__REQUEST__BODY_DISPLAY_SHOW;
    get.display_show = &show;
    Carrel__Response *cur = NULL;
    int code = cli_call(cli, &get, &cur);
    if (code != EXIT_OK)
        return code;
    cmd_hold(call, cur);
    if (cur->display_show == NULL || cur->display_show->display == NULL)
        return cli_fail(cli, EXIT_SERVER, "the server sent no display %lld",
                        (long long)call->number);
    Carrel__Display *d = cmd_part(call, sizeof(*d));
    *d = *cur->display_show->display; /* a shallow copy: the answer held owns its strings */
    d->status = NULL;
    d->has_copies = 0;
    if (changes->place)
        d->place = changes->place;
    if (changes->theme)
        d->theme = changes->theme;
    if (changes->starts_on)
        d->starts_on = changes->starts_on;
    if (changes->ends_on)
        d->ends_on = changes->ends_on;
    if (changes->curator)
        d->curator = changes->curator;
    if (changes->branch_code)
        d->branch_code = changes->branch_code;
    if (changes->note)
        d->note = changes->note;
    call->req.display_save->display = d;
    return EXIT_OK;
}

static void print_display_saved(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__DisplaySave *s = call->req.display_save;
    const char *what = s->end_now ? "ended" : s->display->has_id ? "changed" : "set up";
    printf("%s display %lld\n", what, (long long)r->display->id);
    dsp_print_display(r->display);
}

/* ---------------------------------------------------------------- list, show */

static int build_display_list(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__DisplayList *l = CMD_BODY(call, display_list, DISPLAY_LIST, carrel__display_list__init);
    static const struct option opts[] = {{"all", no_argument, NULL, OPT_ALL},
                                         {"branch", required_argument, NULL, OPT_BRANCH},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_ALL)
            l->has_include_ended = l->include_ended = 1;
        else if (ch == OPT_BRANCH)
            l->branch_code = optarg;
        else
            return cmd_usage(cli, call);
    }
    if (optind != argc)
        return cmd_usage(cli, call);
    return EXIT_OK;
}

static void print_display_list(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    dsp_print_list(r->displays->displays, r->displays->n_displays);
}

/* display show ID and display report ID: one number. */
static int dsp_build_one(cli_t *cli, int argc, char **argv, cmd_call_t *call, int64_t *id,
                         protobuf_c_boolean *has)
{
    if (argc != 2 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    *has = 1;
    return dsp_id(cli, argv[1], id);
}

static int build_display_show(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__DisplayShow *s = CMD_BODY(call, display_show, DISPLAY_SHOW, carrel__display_show__init);
    return dsp_build_one(cli, argc, argv, call, &s->id, &s->has_id);
}

static void print_display_show(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    dsp_print_display(r->display_show->display);
    printf("\n");
    dsp_print_items(r->display_show->items, r->display_show->n_items);
}

/* ---------------------------------------------------------------- report */

static int build_display_report(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__DisplayReport *s =
        CMD_BODY(call, display_report, DISPLAY_REPORT, carrel__display_report__init);
    return dsp_build_one(cli, argc, argv, call, &s->id, &s->has_id);
}

/* "1.50x" for a ratio, "n/a" when the server left it out (its denominator was 0). */
static const char *dsp_ratio(char *out, size_t n, bool has, double v)
{
    if (has)
        snprintf(out, n, "%.2fx", v);
    else
        snprintf(out, n, "n/a");
    return out;
}

static void print_display_report(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__DisplayReportReply *p = r->display_report;
    dsp_print_display(p->display);
    printf("\nDuring:   %s to %s (%d days)\n", dsp_or(p->during_from, "?"),
           dsp_or(p->during_to, "?"), p->days);
    printf("Before:   %s to %s\n", dsp_or(p->before_from, "?"), dsp_or(p->before_to, "?"));
    printf("\n%-28s %8s %8s %8s\n", "", "copies", "during", "before");
    printf("%-28s %8d %8d %8d\n", "On the display", p->copies, p->uses_during, p->uses_before);
    printf("%-28s %8d %8d %8d\n", "Control (not on display)", p->control_copies, p->control_during,
           p->control_before);
    char a[32], b[32], c[32], d[32];
    printf("\nLift against before:    %s\n",
           dsp_ratio(a, sizeof(a), p->has_lift_vs_before, p->lift_vs_before));
    printf("Lift against control:   %s (against what similar copies predict)\n",
           dsp_ratio(b, sizeof(b), p->has_lift_vs_control, p->lift_vs_control));
    printf("Control change:         %s (below 1: displacement)\n",
           dsp_ratio(c, sizeof(c), p->has_control_change, p->control_change));
    printf("Net lift:               %s\n", dsp_ratio(d, sizeof(d), p->has_net_lift, p->net_lift));
    if (p->n_strata) {
        printf("\n");
        static const char *const headers[] = {"Collection", "Age", "Copies", "Control copies"};
        table_t *t = table_new(4, headers);
        for (size_t i = 0; i < p->n_strata; i++) {
            const Carrel__DisplayStratum *s = p->strata[i];
            char copies[16], control[16];
            snprintf(copies, sizeof(copies), "%d", s->copies);
            snprintf(control, sizeof(control), "%d", s->control_copies);
            const char *row[] = {dsp_or(s->collection, "(none)"), dsp_or(s->age_band, ""), copies,
                                 control};
            table_add(t, row);
        }
        table_print(t, stdout);
        table_free(t);
    }
    if (p->note && p->note[0])
        printf("\nNote: %s\n", p->note);
}

/* ---------------------------------------------------------------- scan, remove */

/* One copy on or off display `id`, keyed; printed (or an element of the JSON array). */
static int dsp_scan_one(cli_t *cli, json_t *j, int64_t id, char *barcode, bool remove)
{
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__DisplayItemAdd a = CARREL__DISPLAY_ITEM_ADD__INIT;
    a.has_display_id = 1;
    a.display_id = id;
    a.barcode = barcode;
    if (remove)
        a.has_remove = a.remove = 1;
    req.body_case = CARREL__REQUEST__BODY_DISPLAY_ITEM_ADD;
    req.display_item_add = &a;
    Carrel__Response *r = NULL;
    cli_batch_element(cli, "barcode", barcode); /* a refusal is an element of the array */
    int code = cli_call_keyed(cli, &req, &r);
    if (code != EXIT_OK)
        return code;
    const Carrel__DisplayItemReply *x = r->display_item;
    if (cli->json) {
        output_json_element(j, &x->base, true);
    } else {
        char title[256];
        output_cut(title, sizeof(title), x->item ? dsp_or(x->item->title, "") : "",
                   OUTPUT_TITLE_COLUMNS);
        printf("%s  %s  %s (%d on display %lld)\n",
               x->item ? dsp_or(x->item->barcode, barcode) : barcode, title,
               dsp_or(x->message, remove ? "taken off" : "on display"), x->copies, (long long)id);
        fflush(stdout); /* a person scanning sees each answer at once */
    }
    carrel__response__free_unpacked(r, NULL);
    return EXIT_OK;
}

/*
 * The barcodes of standard input, one a line, each sent as it is read (a
 * scanner types a barcode and Enter); blank lines are skipped. Stops at the
 * end of input or a lost connection; *worst is the worst exit code.
 */
static int dsp_scan_stdin(cli_t *cli, json_t *j, int64_t id, bool remove)
{
    int worst = EXIT_OK;
    char line[DISPLAY_SCAN_LINE_MAX];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        if (strchr(line, '\n') == NULL && !feof(stdin)) {
            int c;
            while ((c = getchar()) != EOF && c != '\n')
                ;
            cli_fail(cli, EXIT_USAGE, "a line of more than %d bytes is not a barcode",
                     DISPLAY_SCAN_LINE_MAX - 2);
            worst = EXIT_USAGE;
            continue;
        }
        char *s = line + strspn(line, " \t");
        s[strcspn(s, "\r\n")] = '\0';
        for (size_t n = strlen(s); n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'); n--)
            s[n - 1] = '\0';
        if (s[0] == '\0')
            continue;
        int code = dsp_scan_one(cli, j, id, s, remove);
        if (code != EXIT_OK)
            worst = code;
        if (code == EXIT_NETWORK)
            break;
    }
    return worst;
}

/* display scan ID [BARCODE...] (stdin without barcodes) and display remove ID BARCODE... */
static int dsp_run_scan(cli_t *cli, int argc, char **argv, bool remove)
{
    const char *usage = remove ? "usage: display remove ID BARCODE..."
                               : "usage: display scan ID [BARCODE...] (standard input without "
                                 "barcodes: one a line)";
    if (argc < (remove ? 3 : 2) || cli_has_option(argc, argv))
        return cli_fail(cli, EXIT_USAGE, "%s", usage);
    int64_t id = 0;
    if (dsp_id(cli, argv[1], &id) != EXIT_OK)
        return EXIT_USAGE;
    int worst = EXIT_OK;
    json_t j;
    cli_batch_begin(cli, &j);
    if (argc == 2) {
        if (isatty(STDIN_FILENO) && !cli->quiet)
            fprintf(stderr, "Scan copies onto display %lld, one a line; Ctrl-D ends.\n",
                    (long long)id);
        worst = dsp_scan_stdin(cli, &j, id, remove);
    } else {
        for (int i = 2; i < argc; i++) {
            int code = dsp_scan_one(cli, &j, id, argv[i], remove);
            if (code != EXIT_OK)
                worst = code;
            if (code == EXIT_NETWORK)
                break;
        }
    }
    cli_batch_end(cli, &j);
    return worst;
}

static int cmd_display_scan(cli_t *cli, int argc, char **argv)
{
    return dsp_run_scan(cli, argc, argv, false);
}

static int cmd_display_remove(cli_t *cli, int argc, char **argv)
{
    return dsp_run_scan(cli, argc, argv, true);
}

/* ---------------------------------------------------------------- the table */

const command_t displays_commands[] = {
    {.path = "display add",
     .build = build_display_add,
     .send = CMD_SEND_ONCE,
     .print_text = print_display_saved,
     .needs_login = true,
     .usage = "THEME --place P --from DAY --to DAY [--curator USER] [--branch B] [--note T]",
     .summary = "set up a display (librarians; the session's branch and yourself as curator "
                "unless named)"},
    {.path = "display edit",
     .build = build_display_edit,
     .prepare = prepare_display_change,
     .send = CMD_SEND_ONCE,
     .print_text = print_display_saved,
     .needs_login = true,
     .usage = "ID [--theme T] [--place P] [--from DAY] [--to DAY] [--curator USER] [--note T]",
     .summary = "change a display (read first, saved with the version read)"},
    {.path = "display end",
     .build = build_display_end,
     .prepare = prepare_display_change,
     .send = CMD_SEND_ONCE,
     .print_text = print_display_saved,
     .needs_login = true,
     .usage = "ID",
     .summary = "end a display today: its copies go back to their shelves"},
    {.path = "display list",
     .build = build_display_list,
     .print_text = print_display_list,
     .needs_login = true,
     .usage = "[--all] [--branch B]",
     .summary = "running and planned displays (--all: ended ones too), every branch unless named"},
    {.path = "display show",
     .build = build_display_show,
     .print_text = print_display_show,
     .needs_login = true,
     .usage = "ID",
     .summary = "a display and the copies scanned onto it, with their checkouts since"},
    {.path = "display scan",
     .run = cmd_display_scan,
     .needs_login = true,
     .usage = "ID [BARCODE...]",
     .summary = "put copies on a display (without barcodes: from standard input, one a line, "
                "as a scanner types them)"},
    {.path = "display remove",
     .run = cmd_display_remove,
     .needs_login = true,
     .usage = "ID BARCODE...",
     .summary = "take copies off a display"},
    {.path = "display report",
     .build = build_display_report,
     .print_text = print_display_report,
     .needs_login = true,
     .usage = "ID",
     .summary = "a display's lift: its copies' use during it against before, and against "
                "similar copies not on display (displacement shows as control change below 1)"},
    {.path = NULL},
};
