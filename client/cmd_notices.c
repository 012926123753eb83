/*
 * Notice commands: list the notice queue, export SMS and phone notices as
 * CSV for the SMS gateway or the staff who call, and run the notice jobs now.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define NOTICES_EXPORT_PAGE  1000 /* the server's largest page */
#define NOTICES_EXPORT_PAGES 100

static int notices_limit(cli_t *cli, const char *text, int *out)
{
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < 1 || v > 1000)
        return cli_fail(cli, EXIT_USAGE, "--limit must be 1 to 1000");
    *out = (int)v;
    return EXIT_OK;
}

/* ---- notices ---- */

static int build_notices(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    const char *status = NULL, *channel = NULL;
    int limit = 0;
    static const struct option opts[] = {{"status", required_argument, NULL, 's'},
                                         {"channel", required_argument, NULL, 'c'},
                                         {"limit", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "s:c:n:", opts, NULL)) != -1) {
        if (ch == 's')
            status = optarg;
        else if (ch == 'c')
            channel = optarg;
        else if (ch == 'n') {
            int code = notices_limit(cli, optarg, &limit);
            if (code != EXIT_OK)
                return code;
        } else
            return EXIT_USAGE;
    }
    if (optind < argc)
        return cli_fail(cli, EXIT_USAGE,
                        "usage: notices [--status S] [--channel C] [--limit N] | notices export "
                        "| notices run");
    Carrel__NoticeList *l = CMD_BODY(call, notice_list, NOTICE_LIST, carrel__notice_list__init);
    l->status = (char *)status;
    l->channel = (char *)channel;
    if (limit) {
        l->has_limit = 1;
        l->limit = limit;
    }
    call->subject = status;
    return EXIT_OK;
}

static void print_notices(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__NoticeListReply *x = r->notices;
    if (x->n_notices == 0) {
        printf("No %s notices.\n", call->subject ? call->subject : "pending");
        return;
    }
    static const char *const headers[] = {"Id",      "Kind",    "Channel", "Card",
                                          "Address", "Subject", "Status",  "Created"};
    table_t *t = table_new(8, headers);
    for (size_t i = 0; i < x->n_notices; i++) {
        const Carrel__Notice *n = x->notices[i];
        char id[24], created[24];
        snprintf(id, sizeof(id), "%lld", (long long)n->id);
        output_time(created, sizeof(created), n->created_at);
        const char *row[] = {id,         n->kind,    n->channel, n->card,
                             n->address, n->subject, n->status,  created};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

/* ---- notices export ---- */

static const char *const notices_csv_header[] = {"notice_id", "kind",    "channel", "card",
                                                 "address",   "subject", "body"};

static void notices_csv_row(FILE *out, const Carrel__Notice *n)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)n->id);
    const char *fields[] = {id, n->kind, n->channel, n->card, n->address, n->subject, n->body};
    output_csv_row(out, fields, 7);
}

/*
 * Mark written notices exported, a page at a time, each with its own request
 * key (a retry after a lost answer marks nothing twice). When this fails the
 * list was still handed over: the notices stay pending and come again in the
 * next export, which is the safer mistake (a text sent twice, not never).
 */
static int notices_mark(cli_t *cli, const int64_t *ids, size_t n, size_t *marked)
{
    for (size_t done = 0; done < n;) {
        size_t k = n - done < NOTICES_EXPORT_PAGE ? n - done : NOTICES_EXPORT_PAGE;
        Carrel__Request req = CARREL__REQUEST__INIT;
        Carrel__NoticeMarkExported m = CARREL__NOTICE_MARK_EXPORTED__INIT;
        m.ids = (int64_t *)(ids + done);
        m.n_ids = k;
        req.body_case = CARREL__REQUEST__BODY_NOTICE_MARK_EXPORTED;
        req.notice_mark_exported = &m;
        Carrel__Response *r = NULL;
        int code = cli_call_keyed(cli, &req, &r);
        if (code != EXIT_OK) {
            fprintf(stderr,
                    "carrel: %zu notice(s) were written but not marked exported: "
                    "the next export lists them again\n",
                    n - done);
            return code;
        }
        *marked += (size_t)r->notice_mark_exported->marked;
        carrel__response__free_unpacked(r, NULL);
        done += k;
    }
    return EXIT_OK;
}

static int cmd_notices_export(cli_t *cli, int argc, char **argv)
{
    const char *channel = NULL, *path = NULL;
    static const struct option opts[] = {{"channel", required_argument, NULL, 'c'},
                                         {"output", required_argument, NULL, 'o'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "c:o:", opts, NULL)) != -1) {
        if (ch == 'c')
            channel = optarg;
        else if (ch == 'o')
            path = optarg;
        else
            return EXIT_USAGE;
    }
    if (optind < argc || channel == NULL ||
        (strcmp(channel, "sms") != 0 && strcmp(channel, "phone") != 0))
        return cli_fail(cli, EXIT_USAGE, "usage: notices export --channel sms|phone [-o FILE]");

    /* Written to FILE.partial and renamed, so a half-written file never looks finished. */
    char *tmp = NULL;
    FILE *out = stdout;
    bool csv = path || !cli->json;
    if (path) {
        size_t n = strlen(path) + 16;
        tmp = malloc(n);
        if (tmp == NULL)
            return cli_fail(cli, EXIT_LOCAL, "out of memory");
        snprintf(tmp, n, "%s.partial", path);
        out = fopen(tmp, "w");
        if (out == NULL) {
            int code = cli_fail(cli, EXIT_LOCAL, "cannot write %s: %s", tmp, strerror(errno));
            free(tmp);
            return code;
        }
    }
    if (csv)
        output_csv_row(out, notices_csv_header, 7);
    json_t j;
    json_init(&j);
    json_array_begin(&j);
    int code = EXIT_OK;
    size_t total = 0;
    int64_t *ids = NULL;
    int64_t after = 0;
    for (int page = 0; page < NOTICES_EXPORT_PAGES; page++) {
        Carrel__Request req = CARREL__REQUEST__INIT;
        Carrel__NoticeList l = CARREL__NOTICE_LIST__INIT;
        l.channel = (char *)channel;
        l.has_limit = l.has_export = l.export = 1;
        l.limit = NOTICES_EXPORT_PAGE;
        l.has_after_id = 1;
        l.after_id = after;
        req.body_case = CARREL__REQUEST__BODY_NOTICE_LIST;
        req.notice_list = &l;
        Carrel__Response *r = NULL;
        code = cli_call(cli, &req, &r);
        if (code != EXIT_OK)
            break;
        const Carrel__NoticeListReply *x = r->notices;
        int64_t *grown = realloc(ids, (total + x->n_notices + 1) * sizeof(*ids));
        if (grown == NULL)
            abort();
        ids = grown;
        for (size_t i = 0; i < x->n_notices; i++) {
            if (csv)
                notices_csv_row(out, x->notices[i]);
            else
                json_message(&j, &x->notices[i]->base);
            ids[total++] = after = x->notices[i]->id;
        }
        bool more = x->n_notices == NOTICES_EXPORT_PAGE;
        carrel__response__free_unpacked(r, NULL);
        if (!more)
            break;
    }
    json_array_end(&j);
    /* Hand the list over first; only then are the notices marked exported. */
    bool written = code == EXIT_OK;
    if (path) {
        bool bad = ferror(out) != 0;
        bad |= fclose(out) != 0;
        if (!bad && written && rename(tmp, path) != 0)
            bad = true;
        if (bad)
            code = cli_fail(cli, EXIT_LOCAL, "cannot write %s: %s; nothing was marked exported",
                            path, strerror(errno));
        if (bad || !written)
            unlink(tmp);
        written = written && !bad;
    } else if (csv) {
        written = written && fflush(stdout) == 0 && !ferror(stdout);
    } else if (written) {
        json_print(&j, stdout);
        written = fflush(stdout) == 0;
    }
    size_t marked = 0;
    if (written)
        code = notices_mark(cli, ids, total, &marked);
    if (written && code == EXIT_OK && path) {
        if (cli->json) {
            json_t done;
            json_init(&done);
            json_object_begin(&done);
            json_key(&done, "exported");
            json_uint(&done, marked);
            json_key(&done, "file");
            json_string(&done, path);
            json_object_end(&done);
            json_print(&done, stdout);
            json_free(&done);
        } else {
            fprintf(stderr, "exported %zu %s notice(s) to %s\n", marked, channel, path);
        }
    }
    json_free(&j);
    free(ids);
    free(tmp);
    return code;
}

/* ---- notices run ---- */

static int build_notices_run(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    (void)argv;
    if (argc > 1)
        return cmd_usage(cli, call);
    CMD_BODY(call, notice_run, NOTICE_RUN, carrel__notice_run__init);
    return EXIT_OK;
}

static void print_notices_run(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__NoticeRunReply *x = r->notice_run;
    printf("holds expired: %d\nnotices queued: %d\nemail sent: %d\nemail not sent: %d\n",
           x->expired_holds, x->generated, x->sent, x->failed);
}

const command_t notices_commands[] = {
    {.path = "notices",
     .build = build_notices,
     .print_text = print_notices,
     .needs_login = true,
     .usage = "[--status S] [--channel C] [--limit N]",
     .summary = "the notice queue: pending (default), sending, sent, failed or exported notices"},
    {.path = "notices export",
     .run = cmd_notices_export,
     .needs_login = true,
     .usage = "--channel sms|phone [-o FILE]",
     .summary = "pending SMS or phone notices as CSV for the SMS gateway or the callers; marks "
                "them exported"},
    {.path = "notices run",
     .build = build_notices_run,
     .print_text = print_notices_run,
     .needs_login = true,
     .usage = "",
     .summary = "expire holds, queue due notices and send email now (branch managers and up)"},
    {.path = NULL},
};
