/*
 * Patron commands: add, edit, show, find, block, unblock, merge, history,
 * categories, pin. People get a readable card or a table; --json prints the reply
 * message (or, for a refusal with a body, the error with the body).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "password.h"

/* Long options shared by `patron add` and `patron edit`. */
enum {
    OPT_FIRST = 256,
    OPT_LAST,
    OPT_PREFERRED,
    OPT_BIRTH,
    OPT_ADDRESS1,
    OPT_ADDRESS2,
    OPT_CITY,
    OPT_REGION,
    OPT_POSTAL,
    OPT_PHONE,
    OPT_EMAIL,
    OPT_CONTACT,
    OPT_BRANCH,
    OPT_CATEGORY,
    OPT_EXPIRES,
    OPT_NOTES,
    OPT_ALERT,
    OPT_KEEP_HISTORY,
    OPT_CARD,
    OPT_ALLOW_DUPLICATE,
    OPT_VERSION,
};

static const struct option patron_field_options[] = {
    {"first", required_argument, NULL, OPT_FIRST},
    {"last", required_argument, NULL, OPT_LAST},
    {"preferred", required_argument, NULL, OPT_PREFERRED},
    {"birth", required_argument, NULL, OPT_BIRTH},
    {"address1", required_argument, NULL, OPT_ADDRESS1},
    {"address2", required_argument, NULL, OPT_ADDRESS2},
    {"city", required_argument, NULL, OPT_CITY},
    {"region", required_argument, NULL, OPT_REGION},
    {"state", required_argument, NULL, OPT_REGION},
    {"postal", required_argument, NULL, OPT_POSTAL},
    {"phone", required_argument, NULL, OPT_PHONE},
    {"email", required_argument, NULL, OPT_EMAIL},
    {"contact", required_argument, NULL, OPT_CONTACT},
    {"branch", required_argument, NULL, OPT_BRANCH},
    {"category", required_argument, NULL, OPT_CATEGORY},
    {"expires", required_argument, NULL, OPT_EXPIRES},
    {"notes", required_argument, NULL, OPT_NOTES},
    {"alert", required_argument, NULL, OPT_ALERT},
    {"keep-history", required_argument, NULL, OPT_KEEP_HISTORY},
    {"card", required_argument, NULL, OPT_CARD},
    {"allow-duplicate", no_argument, NULL, OPT_ALLOW_DUPLICATE},
    {"version", required_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

#define PATRON_FIELD_USAGE                                                                         \
    "[--first F] [--last L] [--preferred P] [--birth YYYY-MM-DD] [--address1 A] [--address2 A] "   \
    "[--city C] [--state S] [--postal Z] [--phone N] [--email E] "                                 \
    "[--contact email|sms|phone|none] [--branch CODE] [--category CODE] [--expires YYYY-MM-DD] "   \
    "[--notes T] [--alert T] [--keep-history yes|no]"

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static bool patron_parse_channel(const char *s, Carrel__ContactChannel *out)
{
    static const struct {
        const char *name;
        Carrel__ContactChannel value;
    } channels[] = {
        {"email", CARREL__CONTACT_CHANNEL__CONTACT_CHANNEL_EMAIL},
        {"sms", CARREL__CONTACT_CHANNEL__CONTACT_CHANNEL_SMS},
        {"phone", CARREL__CONTACT_CHANNEL__CONTACT_CHANNEL_PHONE},
        {"none", CARREL__CONTACT_CHANNEL__CONTACT_CHANNEL_NONE},
    };
    for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++) {
        if (strcmp(s, channels[i].name) == 0) {
            *out = channels[i].value;
            return true;
        }
    }
    return false;
}

/*
 * Apply one field option to p (strings point into argv). An empty value
 * clears an optional field. Returns EXIT_OK or a usage error (printed).
 */
static int patron_apply_option(cli_t *cli, Carrel__Patron *p, int opt, char *arg)
{
    switch (opt) {
    case OPT_FIRST:
        p->first_name = arg;
        break;
    case OPT_LAST:
        p->last_name = arg;
        break;
    case OPT_PREFERRED:
        p->preferred_name = arg;
        break;
    case OPT_BIRTH:
        p->birth_date = arg;
        break;
    case OPT_ADDRESS1:
        p->address_line1 = arg;
        break;
    case OPT_ADDRESS2:
        p->address_line2 = arg;
        break;
    case OPT_CITY:
        p->city = arg;
        break;
    case OPT_REGION:
        p->region = arg;
        break;
    case OPT_POSTAL:
        p->postal_code = arg;
        break;
    case OPT_PHONE:
        p->phone = arg;
        break;
    case OPT_EMAIL:
        p->email = arg;
        break;
    case OPT_CONTACT:
        if (!patron_parse_channel(arg, &p->contact_channel))
            return cli_fail(cli, EXIT_USAGE, "--contact is email, sms, phone or none");
        p->has_contact_channel = 1;
        break;
    case OPT_BRANCH:
        p->home_branch = arg;
        break;
    case OPT_CATEGORY:
        p->category = arg;
        break;
    case OPT_EXPIRES:
        p->expires_on = arg;
        break;
    case OPT_NOTES:
        p->staff_notes = arg;
        break;
    case OPT_ALERT:
        p->desk_alert = arg;
        break;
    case OPT_KEEP_HISTORY:
        if (strcmp(arg, "yes") == 0 || strcmp(arg, "true") == 0)
            p->keep_history = 1;
        else if (strcmp(arg, "no") == 0 || strcmp(arg, "false") == 0)
            p->keep_history = 0;
        else
            return cli_fail(cli, EXIT_USAGE, "--keep-history is yes or no");
        p->has_keep_history = 1;
        break;
    case OPT_CARD:
        p->card = arg;
        break;
    default:
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* "blocked, expired" / "expired" / "blocked" / "active" */
static const char *patron_status(const Carrel__Patron *p)
{
    if (p->n_blocks > 0 && p->expired)
        return "blocked, expired";
    if (p->n_blocks > 0)
        return "blocked";
    if (p->expired)
        return "expired";
    return "active";
}

static void patron_full_name(const Carrel__Patron *p, char *out, size_t n)
{
    if (p->preferred_name && p->preferred_name[0])
        snprintf(out, n, "%s, %s (%s)", or_empty(p->last_name), or_empty(p->first_name),
                 p->preferred_name);
    else
        snprintf(out, n, "%s, %s", or_empty(p->last_name), or_empty(p->first_name));
}

static void patron_line(const char *label, const char *value)
{
    if (value && value[0])
        printf("  %-13s %s\n", label, value);
}

/* The readable card `patron show` prints. asked: the card typed, if any. */
static void patron_print(const Carrel__Patron *p, const char *asked)
{
    char name[512];
    patron_full_name(p, name, sizeof(name));
    printf("%s   card %s\n", name, or_empty(p->card));
    if (asked && p->card && strcmp(asked, p->card) != 0)
        printf("  (card %s was merged into this record)\n", asked);
    if (p->n_blocks > 0 || p->expired) {
        printf("  STATUS:       %s", p->n_blocks > 0 ? "BLOCKED" : "");
        if (p->expired)
            printf("%sEXPIRED on %s", p->n_blocks > 0 ? ", " : "", or_empty(p->expires_on));
        printf("\n");
    } else {
        printf("  Status:       active\n");
    }
    if (p->desk_alert && p->desk_alert[0])
        printf("  *** ALERT: %s ***\n", p->desk_alert);
    patron_line("Born:", p->birth_date);
    if (p->address_line1 || p->city || p->postal_code) {
        patron_line("Address:", p->address_line1);
        if (p->address_line2)
            printf("  %-13s %s\n", p->address_line1 ? "" : "Address:", p->address_line2);
        char place[400];
        snprintf(place, sizeof(place), "%s%s%s%s%s", or_empty(p->city),
                 p->city && p->region ? ", " : "", or_empty(p->region),
                 (p->city || p->region) && p->postal_code ? " " : "", or_empty(p->postal_code));
        if (place[0])
            printf("  %-13s %s\n", p->address_line1 || p->address_line2 ? "" : "Address:", place);
    }
    patron_line("Phone:", p->phone);
    patron_line("Email:", p->email);
    printf("  %-13s %s\n",
           "Contact by:", json_enum_name(&carrel__contact_channel__descriptor, p->contact_channel));
    char buf[512];
    snprintf(buf, sizeof(buf), "%s (%s)", or_empty(p->home_branch_name), or_empty(p->home_branch));
    patron_line("Home branch:", buf);
    snprintf(buf, sizeof(buf), "%s (%s)", or_empty(p->category_name), or_empty(p->category));
    patron_line("Category:", buf);
    patron_line("Expires:", p->expires_on);
    printf("  %-13s %s\n",
           "History:", p->keep_history ? "kept (the patron asked for it)" : "not kept");
    patron_line("Notes:", p->staff_notes);
    for (size_t i = 0; i < p->n_blocks; i++) {
        const Carrel__PatronBlockInfo *b = p->blocks[i];
        snprintf(buf, sizeof(buf), "#%lld %s by %s: %s", (long long)b->id, or_empty(b->placed_at),
                 b->placed_by ? b->placed_by : "(system)", or_empty(b->reason));
        printf("  %-13s %s\n", i == 0 ? "Blocks:" : "", buf);
    }
    for (size_t i = 0; i < p->n_former_cards; i++)
        printf("  %-13s %s\n", i == 0 ? "Former cards:" : "", p->former_cards[i]);
    printf("  %-13s %d (created %s, updated %s)\n", "Version:", p->version, or_empty(p->created_at),
           or_empty(p->updated_at));
}

static void patron_print_table(const Carrel__Patron *const *patrons, size_t n)
{
    static const char *const headers[] = {"Card",  "Name", "Born",     "Phone",
                                          "Email", "Home", "Category", "Status"};
    table_t *t = table_new(8, headers);
    for (size_t i = 0; i < n; i++) {
        const Carrel__Patron *p = patrons[i];
        char name[512];
        patron_full_name(p, name, sizeof(name));
        const char *row[] = {p->card,  name,           p->birth_date, p->phone,
                             p->email, p->home_branch, p->category,   patron_status(p)};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

/* PatronGet by card; on success *resp holds the patron. */
static int patron_get(cli_t *cli, const char *card, Carrel__Response **resp)
{
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__PatronGet get = CARREL__PATRON_GET__INIT;
    get.card = (char *)card;
    req.body_case = CARREL__REQUEST__BODY_PATRON_GET;
    req.patron_get = &get;
    return cli_call(cli, &req, resp);
}

/* A PatronSave of a new Patron (freed with the call). */
static Carrel__Patron *patron_save_build(cmd_call_t *call)
{
    Carrel__Patron *p = cmd_part(call, sizeof(*p));
    carrel__patron__init(p);
    Carrel__PatronSave *save = CMD_BODY(call, patron_save, PATRON_SAVE, carrel__patron_save__init);
    save->patron = p;
    return p;
}

/* The saved record with a first line saying what happened (call->subject). */
static void print_patron_saved(const cmd_call_t *call, const Carrel__Response *r)
{
    printf("%s\n", call->subject);
    patron_print(r->patron, NULL);
}

/*
 * A refused PatronSave: a possible duplicate carries the look-alikes, a
 * stale version the current record (both exit EXIT_SERVER).
 */
static void print_patron_save_refused(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    if (r->body_case == CARREL__RESPONSE__BODY_PATRON_FIND) {
        printf("Possible duplicates:\n");
        patron_print_table((const Carrel__Patron *const *)r->patron_find->patrons,
                           r->patron_find->n_patrons);
        printf("If this is a different person, repeat with --allow-duplicate.\n");
    } else if (r->body_case == CARREL__RESPONSE__BODY_PATRON) {
        printf("The current record:\n");
        patron_print(r->patron, NULL);
    }
}

static int build_patron_add(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__Patron *p = patron_save_build(call);
    int ch;
    while ((ch = getopt_long(argc, argv, "", patron_field_options, NULL)) != -1) {
        if (ch == OPT_ALLOW_DUPLICATE) {
            call->req.patron_save->has_allow_duplicate = 1;
            call->req.patron_save->allow_duplicate = 1;
        } else if (ch == OPT_VERSION || ch == OPT_CARD || ch == '?') {
            return cli_fail(cli, EXIT_USAGE, "usage: patron add CARD --first F --last L ...");
        } else {
            int code = patron_apply_option(cli, p, ch, optarg);
            if (code != EXIT_OK)
                return code;
        }
    }
    if (optind != argc - 1)
        return cli_fail(cli, EXIT_USAGE, "usage: patron add CARD --first F --last L ...");
    p->card = argv[optind];
    /* At the desk, a new patron usually belongs to this branch, as an adult. */
    if (p->home_branch == NULL && cli->login && cli->login->branch)
        p->home_branch = cli->login->branch->code;
    if (p->category == NULL)
        p->category = "adult";
    call->subject = "added";
    return EXIT_OK;
}

/* patron edit's options, applied in order once the record is read. */
typedef struct patron_edits {
    const char *card;
    size_t n;
    long version; /* --version, or -1 */
    struct {
        int opt;
        char *arg;
    } edits[];
} patron_edits_t;

static int build_patron_edit(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    patron_edits_t *e = call->data =
        cmd_part(call, sizeof(*e) + ((size_t)argc + 1) * sizeof(e->edits[0]));
    e->version = -1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", patron_field_options, NULL)) != -1) {
        if (ch == OPT_VERSION) {
            char *end = NULL;
            e->version = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || e->version < 1 || e->version > 0x7fffffff)
                return cli_fail(cli, EXIT_USAGE, "--version is a record version (1, 2, ...)");
        } else if (ch == OPT_ALLOW_DUPLICATE || ch == '?') {
            return cli_fail(cli, EXIT_USAGE, "usage: patron edit CARD [--field VALUE ...]");
        } else {
            e->edits[e->n].opt = ch;
            e->edits[e->n].arg = optarg;
            e->n++;
        }
    }
    if (optind != argc - 1)
        return cli_fail(cli, EXIT_USAGE, "usage: patron edit CARD [--field VALUE ...]");
    patron_save_build(call);
    e->card = argv[optind];
    call->subject = "saved";
    return EXIT_OK;
}

/* Read the record; the options replace its fields. */
static int prepare_patron_edit(cli_t *cli, cmd_call_t *call)
{
    const patron_edits_t *e = call->data;
    Carrel__Response *got = NULL;
    int code = patron_get(cli, e->card, &got);
    if (code != EXIT_OK)
        return code;
    cmd_hold(call, got);
    /* The message to save points at the record as read. */
    const Carrel__Patron *cur = got->patron;
    Carrel__Patron *p = call->req.patron_save->patron;
    p->has_id = 1;
    p->id = cur->id;
    p->has_version = 1;
    p->version = e->version > 0 ? (int32_t)e->version : cur->version;
    p->card = cur->card;
    p->first_name = cur->first_name;
    p->last_name = cur->last_name;
    p->preferred_name = cur->preferred_name;
    p->birth_date = cur->birth_date;
    p->address_line1 = cur->address_line1;
    p->address_line2 = cur->address_line2;
    p->city = cur->city;
    p->region = cur->region;
    p->postal_code = cur->postal_code;
    p->phone = cur->phone;
    p->email = cur->email;
    p->has_contact_channel = cur->has_contact_channel;
    p->contact_channel = cur->contact_channel;
    p->home_branch = cur->home_branch;
    p->category = cur->category;
    p->expires_on = cur->expires_on;
    p->staff_notes = cur->staff_notes;
    p->desk_alert = cur->desk_alert;
    p->has_keep_history = cur->has_keep_history;
    p->keep_history = cur->keep_history;
    for (size_t i = 0; i < e->n && code == EXIT_OK; i++)
        code = patron_apply_option(cli, p, e->edits[i].opt, e->edits[i].arg);
    return code;
}

static int build_patron_show(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc != 2 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    Carrel__PatronGet *g = CMD_BODY(call, patron_get, PATRON_GET, carrel__patron_get__init);
    g->card = argv[1];
    call->subject = argv[1];
    return EXIT_OK;
}

static void print_patron_show(const cmd_call_t *call, const Carrel__Response *r)
{
    patron_print(r->patron, call->subject);
}

static int build_patron_find(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__PatronFind *find = CMD_BODY(call, patron_find, PATRON_FIND, carrel__patron_find__init);
    static const struct option opts[] = {{"phone", required_argument, NULL, 'p'},
                                         {"email", required_argument, NULL, 'e'},
                                         {"limit", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "p:e:n:", opts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            find->phone = optarg;
            break;
        case 'e':
            find->email = optarg;
            break;
        case 'n':
            find->has_limit = 1;
            if (cli_int32_arg(cli, "--limit", optarg, 1, 100, &find->limit) != EXIT_OK)
                return EXIT_USAGE;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    /* The remaining words are the name. */
    char *name = cmd_part(call, 512); /* the request points at it until sent */
    size_t name_size = 512;
    for (int i = optind; i < argc; i++) {
        if (strlen(name) + strlen(argv[i]) + 2 > name_size)
            return cli_fail(cli, EXIT_USAGE, "the name to search for is too long");
        if (name[0])
            strcat(name, " ");
        strcat(name, argv[i]);
    }
    if (name[0])
        find->name = name;
    if (!find->name && !find->phone && !find->email)
        return cli_fail(cli, EXIT_USAGE, "usage: patron find [NAME ...] [--phone P] [--email E]");
    return EXIT_OK;
}

static void print_patron_find(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    if (r->patron_find->n_patrons == 0)
        printf("no patrons found\n");
    else
        patron_print_table((const Carrel__Patron *const *)r->patron_find->patrons,
                           r->patron_find->n_patrons);
}

/* block, unblock and merge answer with the patron as it is now, after a line saying what happened.
 */
static void print_patron_changed(const cmd_call_t *call, const Carrel__Response *r)
{
    if (call->subject)
        printf("%s\n", call->subject);
    patron_print(r->patron, NULL);
}

static int build_patron_block(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__PatronBlock *m = CMD_BODY(call, patron_block, PATRON_BLOCK, carrel__patron_block__init);
    static const struct option opts[] = {{"reason", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "r:", opts, NULL)) != -1) {
        if (ch == 'r')
            m->reason = optarg;
        else
            return EXIT_USAGE;
    }
    if (optind != argc - 1 || m->reason == NULL)
        return cli_fail(cli, EXIT_USAGE, "usage: patron block CARD --reason TEXT");
    m->card = argv[optind];
    call->subject = "blocked";
    return EXIT_OK;
}

static int build_patron_unblock(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__PatronBlock *m = CMD_BODY(call, patron_block, PATRON_BLOCK, carrel__patron_block__init);
    m->has_unblock = 1;
    m->unblock = 1;
    static const struct option opts[] = {{"block", required_argument, NULL, 'b'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "b:", opts, NULL)) != -1) {
        if (ch != 'b')
            return EXIT_USAGE;
        char *end = NULL;
        m->has_block_id = 1;
        m->block_id = strtoll(optarg, &end, 10);
        if (*optarg == '\0' || *end != '\0' || m->block_id < 1)
            return cli_fail(cli, EXIT_USAGE, "--block is a block number (see patron show)");
    }
    if (optind != argc - 1)
        return cli_fail(cli, EXIT_USAGE, "usage: patron unblock CARD [--block ID]");
    m->card = argv[optind];
    call->subject = "block lifted";
    return EXIT_OK;
}

static int build_patron_merge(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc != 3 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    Carrel__PatronMerge *m = CMD_BODY(call, patron_merge, PATRON_MERGE, carrel__patron_merge__init);
    m->keep_card = argv[1];
    m->merge_card = argv[2];
    char *what = cmd_part(call, 128);
    snprintf(what, 128, "merged card %s into card %s", argv[2], argv[1]);
    call->subject = what;
    return EXIT_OK;
}

static int build_patron_history(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__PatronHistory *m =
        CMD_BODY(call, patron_history, PATRON_HISTORY, carrel__patron_history__init);
    static const struct option opts[] = {{"limit", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        if (ch != 'n')
            return EXIT_USAGE;
        m->has_limit = 1;
        if (cli_int32_arg(cli, "--limit", optarg, 1, 500, &m->limit) != EXIT_OK)
            return EXIT_USAGE;
    }
    if (optind != argc - 1)
        return cli_fail(cli, EXIT_USAGE, "usage: patron history CARD [--limit N]");
    m->card = argv[optind];
    call->subject = m->card;
    return EXIT_OK;
}

static void print_patron_history(const cmd_call_t *call, const Carrel__Response *r)
{
    const Carrel__PatronHistoryReply *h = r->patron_history;
    if (h->n_entries == 0) {
        printf("no recorded changes\n");
        return;
    }
    static const char *const headers[] = {"Time",   "Staff",  "Workstation",
                                          "Branch", "Action", "Change"};
    table_t *t = table_new(6, headers);
    for (size_t i = 0; i < h->n_entries; i++) {
        const Carrel__AuditEntry *e = h->entries[i];
        char action[128];
        if (e->card && strcmp(e->card, call->subject) != 0)
            snprintf(action, sizeof(action), "%s (card %s)", or_empty(e->action), e->card);
        else
            snprintf(action, sizeof(action), "%s", or_empty(e->action));
        const char *staff = e->staff ? e->staff : "(system)";
        for (size_t k = 0; k < e->n_changes || k == 0; k++) {
            char change[1024] = "";
            if (k < e->n_changes) {
                const Carrel__FieldChange *c = e->changes[k];
                snprintf(change, sizeof(change), "%s: %s \u2192 %s", or_empty(c->field),
                         c->before ? c->before : "\u2014", c->after ? c->after : "\u2014");
                /* One line per change: newlines in notes would break the table. */
                for (char *q = change; *q; q++)
                    if (*q == '\n' || *q == '\r' || *q == '\t')
                        *q = ' ';
            }
            const char *row[] = {k == 0 ? e->at : "",          k == 0 ? staff : "",
                                 k == 0 ? e->workstation : "", k == 0 ? e->branch_code : "",
                                 k == 0 ? action : "",         change};
            table_add(t, row);
        }
    }
    table_print(t, stdout);
    table_free(t);
}

static int build_patron_categories(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    (void)cli;
    (void)argc;
    (void)argv;
    CMD_BODY(call, patron_category_list, PATRON_CATEGORY_LIST, carrel__patron_category_list__init);
    return EXIT_OK;
}

static void print_patron_categories(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    static const char *const headers[] = {"Category", "Name", "Card years"};
    table_t *t = table_new(3, headers);
    for (size_t i = 0; i < r->patron_categories->n_categories; i++) {
        const Carrel__PatronCategory *c = r->patron_categories->categories[i];
        char years[16];
        snprintf(years, sizeof(years), "%d", c->card_years);
        const char *row[] = {c->code, c->name, years};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

/* ---- pin ---- */

static int build_patron_pin(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__PatronPinSet *m =
        CMD_BODY(call, patron_pin_set, PATRON_PIN_SET, carrel__patron_pin_set__init);
    static const struct option opts[] = {{"clear", no_argument, NULL, 'c'}, {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch != 'c')
            return cmd_usage(cli, call);
        m->has_clear = 1;
        m->clear = 1;
    }
    if (optind != argc - 1)
        return cmd_usage(cli, call);
    m->card = argv[optind];
    call->subject = m->card;
    return EXIT_OK;
}

/* The first line of stdin (a PIN piped in by a script), malloc'd; NULL if none. */
static char *patron_pin_from_stdin(void)
{
    char line[128];
    if (fgets(line, sizeof(line), stdin) == NULL)
        return NULL;
    line[strcspn(line, "\r\n")] = '\0';
    char *pin = strdup(line);
    OPENSSL_cleanse(line, sizeof(line));
    return pin;
}

/*
 * The new PIN: asked twice on the terminal without echo, as passwords are
 * (client/password.c), or read from stdin when stdin is not a terminal. It
 * never appears on the command line (where ps and shell history would show it).
 */
static int prepare_patron_pin(cli_t *cli, cmd_call_t *call)
{
    Carrel__PatronPinSet *m = call->req.patron_pin_set;
    if (m->clear)
        return EXIT_OK;
    char *pin = NULL;
    if (!isatty(STDIN_FILENO)) {
        if ((pin = patron_pin_from_stdin()) == NULL)
            return cli_fail(cli, EXIT_USAGE, "no PIN on standard input");
    } else {
        if ((pin = password_prompt("New PIN: ")) == NULL)
            return cli_fail(cli, EXIT_USAGE, "no terminal to ask the PIN on");
        char *again = password_prompt("Repeat it: ");
        bool same = again && strcmp(pin, again) == 0;
        password_free(again);
        if (!same) {
            password_free(pin);
            return cli_fail(cli, EXIT_USAGE, "the PINs differ");
        }
    }
    cmd_secret(call, pin);
    m->pin = pin;
    return EXIT_OK;
}

static void print_patron_pin(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    printf("%s for card %s\n", r->patron_pin->has_pin ? "PIN set" : "no PIN", r->patron_pin->card);
}

const command_t patron_commands[] = {
    {.path = "patron add",
     .build = build_patron_add,
     .send = CMD_SEND_ONCE,
     .print_text = print_patron_saved,
     .print_refused = print_patron_save_refused,
     .needs_login = true,
     .usage = "CARD --first F --last L " PATRON_FIELD_USAGE " [--allow-duplicate]",
     .summary = "register a new patron (home branch: this one; category: adult unless given)"},
    {.path = "patron edit",
     .build = build_patron_edit,
     .prepare = prepare_patron_edit,
     .send = CMD_SEND_ONCE,
     .print_text = print_patron_saved,
     .print_refused = print_patron_save_refused,
     .needs_login = true,
     .usage = "CARD [--card NEW] " PATRON_FIELD_USAGE " [--version N]",
     .summary =
         "change a patron's record (an empty value clears a field; --version: only if unchanged "
         "since that version)"},
    {.path = "patron show",
     .build = build_patron_show,
     .send = CMD_SEND_READ,
     .print_text = print_patron_show,
     .needs_login = true,
     .usage = "CARD",
     .summary = "show a patron's record"},
    {.path = "patron find",
     .build = build_patron_find,
     .send = CMD_SEND_READ,
     .print_text = print_patron_find,
     .needs_login = true,
     .usage = "[NAME ...] [--phone P] [--email E] [--limit N]",
     .summary = "search patrons by name, phone or email"},
    {.path = "patron block",
     .build = build_patron_block,
     .send = CMD_SEND_ONCE,
     .print_text = print_patron_changed,
     .needs_login = true,
     .usage = "CARD --reason TEXT",
     .summary = "block a patron"},
    {.path = "patron unblock",
     .build = build_patron_unblock,
     .send = CMD_SEND_ONCE,
     .print_text = print_patron_changed,
     .needs_login = true,
     .usage = "CARD [--block ID]",
     .summary = "lift a block"},
    {.path = "patron merge",
     .build = build_patron_merge,
     .send = CMD_SEND_ONCE,
     .print_text = print_patron_changed,
     .needs_login = true,
     .usage = "KEEP_CARD MERGE_CARD",
     .summary = "merge a duplicate record into the one to keep"},
    {.path = "patron history",
     .build = build_patron_history,
     .send = CMD_SEND_READ,
     .print_text = print_patron_history,
     .needs_login = true,
     .usage = "CARD [--limit N]",
     .summary = "who changed a patron's record, where, when and how"},
    {.path = "patron categories",
     .build = build_patron_categories,
     .send = CMD_SEND_READ,
     .print_text = print_patron_categories,
     .needs_login = true,
     .usage = "",
     .summary = "list patron categories"},
    {.path = "patron pin",
     .build = build_patron_pin,
     .prepare = prepare_patron_pin,
     .send = CMD_SEND_ONCE,
     .print_text = print_patron_pin,
     .needs_login = true,
     .usage = "CARD [--clear]",
     .summary = "set a patron's self-check PIN (4-12 digits, asked without echo, or read from "
                "stdin), or clear it"},
    {.path = NULL},
};
