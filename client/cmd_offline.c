/*
 * cmd_offline: `carrel offline ...`, the offline desk's journal and cache
 * seen from the command line (offline.h, docs/OFFLINE.md):
 *
 *   offline status       the journal (scans, uploaded, left) and the cache,
 *                        read from the offline directory; no server needed
 *   offline upload       send what the journal holds, as a desk does when it
 *                        is back online (keyed: running it twice, or beside a
 *                        desk that uploads too, applies nothing twice)
 *   offline exceptions   the branch's report of offline scans replayed with a
 *                        warning or skipped (branch managers)
 *   offline resolve ID   mark one dealt with, with a note
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "journal.h"
#include "offline.h"
#include "status.h"
#include "util.h"

/* ---------------------------------------------------------------- status and upload */

/* The offline directory of this profile, or an exit code (printed) in *code. */
static char *offline_need_dir(cli_t *cli, int *code)
{
    bool off = false;
    *code = EXIT_OK;
    if (cli->profile.workstation == NULL) {
        *code = cli_fail(cli, EXIT_USAGE, "the profile names no workstation (use -c PROFILE)");
        return NULL;
    }
    char *dir = offline_dir(cli, &off);
    if (dir == NULL)
        *code = cli_fail(cli, EXIT_USAGE,
                         off ? "offline mode is off in this profile (offline_dir = off)"
                             : "no offline directory: set offline_dir in the profile");
    return dir;
}

static void offline_status_json(const char *dir, const char *ws, const journal_t *j,
                                const Carrel__OfflineCache *c, const char *cache_path,
                                int64_t offset)
{
    json_t o;
    json_init(&o);
    json_object_begin(&o);
    json_key(&o, "offline_dir");
    json_string(&o, dir);
    json_key(&o, "workstation");
    json_string(&o, ws);
    json_key(&o, "journal");
    json_object_begin(&o);
    json_key(&o, "path");
    json_string(&o, j->path);
    json_key(&o, "scans");
    json_int(&o, (int64_t)j->n);
    json_key(&o, "uploaded");
    json_int(&o, (int64_t)j->ndone);
    json_key(&o, "pending");
    json_int(&o, (int64_t)journal_pending(j));
    json_key(&o, "torn");
    json_int(&o, (int64_t)j->torn);
    json_key(&o, "unreadable");
    json_int(&o, (int64_t)j->bad);
    json_object_end(&o);
    json_key(&o, "cache");
    if (c == NULL) {
        json_null(&o);
    } else {
        json_object_begin(&o);
        json_key(&o, "path");
        json_string(&o, cache_path);
        json_key(&o, "branch_code");
        json_string(&o, c->branch_code);
        json_key(&o, "generated_at");
        json_string(&o, c->generated_at);
        json_key(&o, "blocked_cards");
        json_int(&o, (int64_t)c->n_blocked);
        json_key(&o, "rules");
        json_int(&o, (int64_t)c->n_rules);
        json_key(&o, "default_loan_days");
        json_int(&o, c->default_loan_days);
        json_key(&o, "closed_days");
        json_int(&o, (int64_t)c->n_closed_days);
        json_key(&o, "offset_ms");
        json_int(&o, offset);
        json_object_end(&o);
    }
    json_object_end(&o);
    json_print(&o, stdout);
    json_free(&o);
}

static int cmd_offline_status(cli_t *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return cli_fail(cli, EXIT_USAGE, "usage: offline status");
    int code;
    char *dir = offline_need_dir(cli, &code);
    if (dir == NULL)
        return code;
    const char *ws = cli->profile.workstation;
    char *path = NULL;
    char err[300];
    if (asprintf(&path, "%s/%s.journal", dir, ws) < 0) {
        free(dir);
        return cli_fail(cli, EXIT_LOCAL, "out of memory");
    }
    journal_t j;
    if (journal_read(&j, path, err, sizeof(err)) != 0) {
        free(path);
        free(dir);
        return cli_fail(cli, EXIT_LOCAL, "%s", err);
    }
    char *cache_path = offline_cache_path(dir, ws);
    int64_t offset = 0;
    Carrel__OfflineCache *c =
        cache_path ? offline_cache_load(cache_path, &offset, err, sizeof(err)) : NULL;
    if (c == NULL && cache_path && errno != ENOENT)
        fprintf(stderr, "carrel: %s\n", err);
    if (cli->json) {
        offline_status_json(dir, ws, &j, c, cache_path, offset);
    } else {
        printf("Offline directory: %s\n", dir);
        printf("Journal: %s — %zu scans, %zu uploaded, %zu to upload", path, j.n, j.ndone,
               journal_pending(&j));
        if (j.torn)
            printf(", a torn last line (never answered) left out");
        if (j.bad)
            printf(", %zu unreadable lines left out", j.bad);
        printf("\n");
        if (c)
            printf("Cache: %s — branch %s, made %s: %zu blocked cards, %zu loan rules, "
                   "default %d days, %zu closed days; clock offset %+" PRId64 " ms\n",
                   cache_path, c->branch_code ? c->branch_code : "?",
                   c->generated_at ? c->generated_at : "?", c->n_blocked, c->n_rules,
                   c->default_loan_days, c->n_closed_days, offset);
        else
            printf("Cache: none (a desk saves one while online; without it a desk cannot start "
                   "offline)\n");
    }
    if (c)
        carrel__offline_cache__free_unpacked(c, NULL);
    free(cache_path);
    journal_close(&j);
    free(path);
    free(dir);
    return EXIT_OK;
}

/* One scan replayed with a warning or skipped: said as the desk says it. */
static void offline_upload_entry(void *arg, const journal_entry_t *e,
                                 const Carrel__OfflineReplayReply *r)
{
    cli_t *cli = arg;
    const char *outcome = r->outcome ? r->outcome : "applied";
    if (cli->json || (strcmp(outcome, "warning") != 0 && strcmp(outcome, "skipped") != 0))
        return;
    char *msg = out_safe_line(r->message ? r->message : "");
    printf("%s %s %s: %s [%s]\n", strcmp(outcome, "warning") == 0 ? "WARNING" : "SKIPPED", e->op,
           e->barcode, msg, r->reason ? r->reason : "");
    free(msg);
}

static int cmd_offline_upload(cli_t *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return cli_fail(cli, EXIT_USAGE, "usage: offline upload");
    int code;
    char *dir = offline_need_dir(cli, &code);
    if (dir == NULL)
        return code;
    journal_t j;
    char err[300];
    if (journal_open(&j, dir, cli->profile.workstation, err, sizeof(err)) != 0) {
        free(dir);
        return cli_fail(cli, EXIT_LOCAL, "%s", err);
    }
    free(dir);
    offline_summary_t s;
    memset(&s, 0, sizeof(s));
    int rc = 0;
    size_t pending = journal_pending(&j);
    if (pending > 0) {
        code = cli_connect(cli, true);
        if (code != EXIT_OK) {
            journal_close(&j);
            return code;
        }
        rc = offline_upload(cli, &j, &s, offline_upload_entry, cli);
    }
    bool complete = rc == 0 && !s.stopped;
    if (cli->json) {
        json_t o;
        json_init(&o);
        json_object_begin(&o);
        json_key(&o, "applied");
        json_int(&o, s.applied);
        json_key(&o, "warnings");
        json_int(&o, s.warnings);
        json_key(&o, "skipped");
        json_int(&o, s.skipped);
        json_key(&o, "left");
        json_int(&o, (int64_t)journal_pending(&j));
        json_key(&o, "complete");
        json_bool(&o, complete);
        if (s.why[0]) {
            json_key(&o, "message");
            json_string(&o, s.why);
        }
        json_object_end(&o);
        json_print(&o, stdout);
        json_free(&o);
    } else if (pending == 0) {
        printf("Nothing to upload.\n");
    } else {
        printf("Uploaded %d offline scans: %d applied, %d warnings, %d skipped%s\n",
               s.applied + s.warnings + s.skipped, s.applied, s.warnings, s.skipped,
               s.warnings + s.skipped ? " — see carrel offline exceptions" : "");
    }
    if (!complete)
        fprintf(stderr, "carrel: the upload stopped with %zu scans left: %s\n", journal_pending(&j),
                s.why);
    journal_close(&j);
    if (complete)
        return EXIT_OK;
    return cli->conn.open ? EXIT_SERVER : EXIT_NETWORK;
}

/* ---------------------------------------------------------------- exceptions, resolve */

enum { OPT_BRANCH = 256, OPT_ALL, OPT_SINCE, OPT_LIMIT, OPT_NOTE };

static int build_exceptions(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__OfflineExceptionList *l = CMD_BODY(call, offline_exception_list, OFFLINE_EXCEPTION_LIST,
                                               carrel__offline_exception_list__init);
    static const struct option opts[] = {{"branch", required_argument, NULL, OPT_BRANCH},
                                         {"all", no_argument, NULL, OPT_ALL},
                                         {"since", required_argument, NULL, OPT_SINCE},
                                         {"limit", required_argument, NULL, OPT_LIMIT},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_BRANCH) {
            l->branch_code = optarg;
        } else if (ch == OPT_ALL) {
            l->has_include_resolved = l->include_resolved = 1;
        } else if (ch == OPT_SINCE) {
            l->since = optarg;
        } else if (ch == OPT_LIMIT) {
            l->has_limit = 1;
            if (cli_int32_arg(cli, "--limit", optarg, 1, 1000, &l->limit) != EXIT_OK)
                return EXIT_USAGE;
        } else {
            return cmd_usage(cli, call);
        }
    }
    return optind == argc ? EXIT_OK : cmd_usage(cli, call);
}

static const char *offline_or(const char *s, const char *dflt)
{
    return s && s[0] ? s : dflt;
}

static void print_exceptions(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__OfflineExceptionListReply *x = r->offline_exceptions;
    if (x->n_exceptions == 0) {
        printf("No offline exceptions.\n");
        return;
    }
    static const char *const headers[] = {"ID",      "Offline at", "Workstation", "Clerk",
                                          "Op",      "Card",       "Barcode",     "Title",
                                          "Outcome", "Reason",     "Message",     "Resolved"};
    table_t *t = table_new(12, headers);
    for (size_t i = 0; i < x->n_exceptions; i++) {
        const Carrel__OfflineException *e = x->exceptions[i];
        char id[24], at[40], title[OUTPUT_TITLE_COLUMNS * 4 + 8], resolved[300];
        snprintf(id, sizeof(id), "%" PRId64, e->id);
        output_time(at, sizeof(at), e->offline_at);
        output_cut(title, sizeof(title), e->title, 30);
        if (e->resolved_at && e->resolved_at[0])
            snprintf(resolved, sizeof(resolved), "%s by %s: %s", e->resolved_at,
                     offline_or(e->resolved_by, "?"), offline_or(e->resolution, ""));
        else
            snprintf(resolved, sizeof(resolved), "no");
        const char *cells[] = {id,
                               at,
                               offline_or(e->workstation, ""),
                               offline_or(e->clerk, ""),
                               offline_or(e->op, ""),
                               offline_or(e->card, ""),
                               offline_or(e->barcode, ""),
                               title,
                               offline_or(e->outcome, ""),
                               offline_or(e->reason, ""),
                               offline_or(e->message, ""),
                               resolved};
        table_add(t, cells);
    }
    table_print(t, stdout);
    table_free(t);
}

static int build_resolve(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__OfflineExceptionResolve *x =
        CMD_BODY(call, offline_exception_resolve, OFFLINE_EXCEPTION_RESOLVE,
                 carrel__offline_exception_resolve__init);
    static const struct option opts[] = {{"note", required_argument, NULL, OPT_NOTE},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == OPT_NOTE)
            x->note = optarg;
        else
            return cmd_usage(cli, call);
    }
    if (argc - optind != 1 || x->note == NULL)
        return cmd_usage(cli, call);
    x->has_id = 1;
    if (cli_int_arg(cli, "ID", argv[optind], 1, INT64_MAX, &x->id) != EXIT_OK)
        return EXIT_USAGE;
    call->number = x->id;
    return EXIT_OK;
}

static void print_resolved(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__OfflineException *e = r->offline_exception_resolved;
    char *note = out_safe_line(e && e->resolution ? e->resolution : "");
    printf("offline exception %lld resolved: %s\n", (long long)call->number, note);
    free(note);
}

const command_t offline_commands[] = {
    {.path = "offline status",
     .run = cmd_offline_status,
     .usage = "",
     .summary = "the offline journal of this workstation (scans, uploaded, left) and its cache; "
                "no server needed"},
    {.path = "offline upload",
     .run = cmd_offline_upload,
     .usage = "",
     .summary = "upload the offline journal as a desk does when back online (keyed: twice "
                "applies nothing twice)"},
    {.path = "offline exceptions",
     .build = build_exceptions,
     .print_text = print_exceptions,
     .needs_login = true,
     .usage = "[--branch B] [--all] [--since YYYY-MM-DD] [--limit N]",
     .summary = "offline scans replayed with a warning or skipped, for the branch manager "
                "(--all: resolved ones too; default: the last 30 days)"},
    {.path = "offline resolve",
     .build = build_resolve,
     .send = CMD_SEND_ONCE,
     .print_text = print_resolved,
     .needs_login = true,
     .usage = "ID --note TEXT",
     .summary = "mark an offline exception dealt with, saying how"},
    {.path = NULL},
};
