/*
 * Circulation commands: checkout, checkin, renew, account, payments, item
 * marks, loan rules and calendars. Every change carries a fresh request key,
 * so a retry after a timeout can never apply twice (see docs/PROTOCOL.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

/* Send one keyed change, retried with its key (cli_call_keyed); on success *resp holds the answer.
 */
static int circ_send(cli_t *cli, Carrel__Request *req, Carrel__Response **resp)
{
    return cli_call_keyed(cli, req, resp);
}

/* ---- checkout ---- */

static int cmd_checkout(cli_t *cli, int argc, char **argv)
{
    const char *override = NULL;
    static const struct option opts[] = {{"override", required_argument, NULL, 'o'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (ch == 'o')
            override = optarg;
        else
            return EXIT_USAGE;
    }
    if (argc - optind < 2)
        return cli_fail(cli, EXIT_USAGE, "usage: checkout CARD ITEM... [--override REASON]");
    const char *card = argv[optind];
    int worst = EXIT_OK;
    json_t j;
    cli_batch_begin(cli, &j);
    for (int i = optind + 1; i < argc; i++) {
        Carrel__Request req = CARREL__REQUEST__INIT;
        Carrel__Checkout c = CARREL__CHECKOUT__INIT;
        c.card = (char *)card;
        c.barcode = argv[i];
        if (override) {
            c.has_override = c.override = 1;
            c.override_reason = (char *) override;
        }
        req.body_case = CARREL__REQUEST__BODY_CHECKOUT;
        req.checkout = &c;
        Carrel__Response *r = NULL;
        cli_batch_element(cli, "barcode", argv[i]); /* a refusal is an element of the array */
        int code = circ_send(cli, &req, &r);
        if (code != EXIT_OK) {
            worst = code;
            if (code == EXIT_NETWORK)
                break;
            continue;
        }
        if (cli->json) {
            output_json_element(&j, &r->checkout->base, true);
        } else {
            printf("%s  %s  due %s%s\n", r->checkout->barcode, r->checkout->title,
                   r->checkout->due_date, r->checkout->n_overridden ? "  (override recorded)" : "");
        }
        carrel__response__free_unpacked(r, NULL);
    }
    cli_batch_end(cli, &j);
    return worst;
}

/* ---- checkin ---- */

int cmd_checkin(cli_t *cli, int argc, char **argv)
{
    const char *date = NULL;
    int slips = 0;
    static const struct option opts[] = {{"date", required_argument, NULL, 'd'},
                                         {"slips", no_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "d:s", opts, NULL)) != -1) {
        if (ch == 'd')
            date = optarg;
        else if (ch == 's')
            slips = 1;
        else
            return EXIT_USAGE;
    }
    if (argc - optind < 1)
        return cli_fail(cli, EXIT_USAGE, "usage: checkin ITEM... [--date WHEN] [--slips]");
    int worst = EXIT_OK;
    json_t j;
    cli_batch_begin(cli, &j);
    for (int i = optind; i < argc; i++) {
        Carrel__Request req = CARREL__REQUEST__INIT;
        Carrel__Checkin c = CARREL__CHECKIN__INIT;
        c.barcode = argv[i];
        c.returned_at = (char *)date;
        req.body_case = CARREL__REQUEST__BODY_CHECKIN;
        req.checkin = &c;
        Carrel__Response *r = NULL;
        cli_batch_element(cli, "barcode", argv[i]);
        int code = circ_send(cli, &req, &r);
        if (code != EXIT_OK) {
            worst = code;
            if (code == EXIT_NETWORK)
                break;
            continue;
        }
        const Carrel__CheckinReply *x = r->checkin;
        if (cli->json) {
            output_json_element(&j, &x->base, true);
        } else {
            char said[1024];
            printf("%s  %s  %s\n", x->barcode, x->title ? x->title : "",
                   checkin_display_line(said, sizeof(said), x));
            if (slips && x->slip && x->slip[0])
                printf("%s\n", x->slip);
        }
        carrel__response__free_unpacked(r, NULL);
    }
    cli_batch_end(cli, &j);
    return worst;
}

/* ---- renew ---- */

static int cmd_renew(cli_t *cli, int argc, char **argv)
{
    const char *override = NULL;
    int all = 0;
    static const struct option opts[] = {{"override", required_argument, NULL, 'o'},
                                         {"all", no_argument, NULL, 'a'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "o:a", opts, NULL)) != -1) {
        if (ch == 'o')
            override = optarg;
        else if (ch == 'a')
            all = 1;
        else
            return EXIT_USAGE;
    }
    if (argc - optind < 1 || (all && argc - optind > 1) || (!all && argc - optind < 2))
        return cli_fail(cli, EXIT_USAGE,
                        "usage: renew CARD ITEM... | renew CARD --all  [--override REASON]");
    const char *card = argv[optind];
    int worst = EXIT_OK;
    json_t j;
    cli_batch_begin(cli, &j);
    int n = all ? 1 : argc - optind - 1;
    for (int i = 0; i < n; i++) {
        Carrel__Request req = CARREL__REQUEST__INIT;
        Carrel__Renew rn = CARREL__RENEW__INIT;
        rn.card = (char *)card;
        rn.barcode = all ? NULL : argv[optind + 1 + i];
        if (override) {
            rn.has_override = rn.override = 1;
            rn.override_reason = (char *) override;
        }
        req.body_case = CARREL__REQUEST__BODY_RENEW;
        req.renew = &rn;
        Carrel__Response *r = NULL;
        if (all)
            cli_batch_element(cli, "card", card);
        else
            cli_batch_element(cli, "barcode", rn.barcode);
        int code = circ_send(cli, &req, &r);
        if (code != EXIT_OK) {
            worst = code;
            if (code == EXIT_NETWORK)
                break;
            continue;
        }
        for (size_t k = 0; k < r->renew->n_results; k++) {
            const Carrel__RenewResult *x = r->renew->results[k];
            if (!x->renewed && worst == EXIT_OK)
                worst = EXIT_SERVER;
            if (cli->json)
                output_json_element(&j, &x->base, x->renewed); /* not renewed: ok false */
            else if (x->renewed)
                printf("%s  %s  renewed, due %s\n", x->barcode, x->title, x->due_date);
            else
                printf("%s  %s  NOT renewed (%s): %s\n", x->barcode, x->title, x->reason,
                       x->message);
        }
        if (!cli->json && all)
            printf("%d renewed, %d refused\n", r->renew->renewed, r->renew->refused);
        carrel__response__free_unpacked(r, NULL);
    }
    cli_batch_end(cli, &j);
    return worst;
}

/* ---- account ---- */

static int build_account(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc != 2 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    Carrel__AccountGet *g = CMD_BODY(call, account_get, ACCOUNT_GET, carrel__account_get__init);
    g->card = argv[1];
    return EXIT_OK;
}

static void print_account(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__Account *a = r->account;
    char bal[32];
    output_money(bal, sizeof(bal), a->balance_cents);
    printf("%s  %s (%s)%s%s\n", a->card, a->name, a->category, a->expired ? "  EXPIRED" : "",
           a->blocked ? "  BLOCKED" : "");
    if (a->desk_alert && a->desk_alert[0])
        printf("  ALERT: %s\n", a->desk_alert);
    printf("  %d out, %d overdue; balance %s\n\n", a->loans_out, a->overdue, bal);
    if (a->n_loans) {
        static const char *const headers[] = {"Barcode", "Title", "Due", "Renewals", ""};
        table_t *t = table_new(5, headers);
        for (size_t i = 0; i < a->n_loans; i++) {
            const Carrel__Loan *l = a->loans[i];
            char title[OUTPUT_TITLE_COLUMNS * 4 + 8], ren[16];
            output_cut(title, sizeof(title), l->title, OUTPUT_TITLE_COLUMNS);
            snprintf(ren, sizeof(ren), "%d/%d", l->renewals, l->renewals_allowed);
            const char *row[] = {l->barcode, title, l->due_date, ren, l->overdue ? "OVERDUE" : ""};
            table_add(t, row);
        }
        table_print(t, stdout);
        table_free(t);
    }
    if (a->n_holds) {
        if (a->n_loans)
            printf("\n");
        static const char *const headers[] = {"Title", "Pickup", "Status", "Queue / shelf"};
        table_t *t = table_new(4, headers);
        for (size_t i = 0; i < a->n_holds; i++) {
            const Carrel__Hold *h = a->holds[i];
            char cut[OUTPUT_TITLE_COLUMNS * 4 + 8], title[sizeof(cut) + 64], where[128];
            output_cut(cut, sizeof(cut), h->title, OUTPUT_TITLE_COLUMNS);
            if (h->item_barcode && h->item_barcode[0])
                snprintf(title, sizeof(title), "%s [copy %s only]", cut, h->item_barcode);
            else
                snprintf(title, sizeof(title), "%s", cut);
            output_hold_where(where, sizeof(where), h, false);
            const char *row[] = {title, h->pickup_branch, output_hold_status(h->status), where};
            table_add(t, row);
        }
        table_print(t, stdout);
        table_free(t);
    }
    if (a->n_ledger) {
        printf("\n");
        static const char *const headers[] = {"When", "Kind", "Amount", "Item", "Note"};
        table_t *t = table_new(5, headers);
        for (size_t i = 0; i < a->n_ledger; i++) {
            const Carrel__LedgerEntry *e = a->ledger[i];
            char amount[32], when[20];
            output_money(amount, sizeof(amount), e->amount_cents);
            output_date(when, sizeof(when), e->at);
            const char *row[] = {when, e->kind, amount, e->barcode, e->note};
            table_add(t, row);
        }
        table_print(t, stdout);
        table_free(t);
    }
}

/* "12.50" -> 1250, or -1. */
static int64_t circ_amount(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*end != '\0' || v <= 0 || v > 1e6)
        return -1;
    return (int64_t)(v * 100 + 0.5);
}

/*
 * pay, waive and charge: one LedgerPost of `kind`. The amount goes to the
 * printer as the clerk typed it (call->number).
 */
static int circ_ledger_build(cli_t *cli, int argc, char **argv, cmd_call_t *call, const char *kind)
{
    const char *note = NULL;
    static const struct option opts[] = {{"note", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        if (ch == 'n')
            note = optarg;
        else
            return EXIT_USAGE;
    }
    int64_t cents = argc - optind == 2 ? circ_amount(argv[optind + 1]) : -1;
    if (cents < 0)
        return cmd_usage(cli, call);
    Carrel__LedgerPost *p = CMD_BODY(call, ledger_post, LEDGER_POST, carrel__ledger_post__init);
    p->card = argv[optind];
    p->kind = (char *)kind;
    p->has_amount_cents = 1;
    p->amount_cents = cents;
    p->note = (char *)note;
    call->number = cents;
    call->subject = kind;
    return EXIT_OK;
}

static int build_pay(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return circ_ledger_build(cli, argc, argv, call, "payment");
}

static int build_waive(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return circ_ledger_build(cli, argc, argv, call, "waiver");
}

static int build_charge(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return circ_ledger_build(cli, argc, argv, call, "charge");
}

/* The ledger signs the entry (a payment is negative); the sentence names the
 * kind, so it says the amount as the clerk typed it. */
static void print_ledger(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)r;
    char amount[32];
    output_money(amount, sizeof(amount), call->number);
    printf("recorded %s of %s\n", call->subject, amount);
}

/* ---- item marks and in-house use ---- */

static int build_item_mark(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    const char *note = NULL;
    static const struct option opts[] = {{"note", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        if (ch == 'n')
            note = optarg;
        else
            return EXIT_USAGE;
    }
    if (argc - optind != 2)
        return cmd_usage(cli, call);
    Carrel__ItemMark *m = CMD_BODY(call, item_mark, ITEM_MARK, carrel__item_mark__init);
    m->barcode = argv[optind];
    m->mark = argv[optind + 1];
    m->note = (char *)note;
    call->subject = m->barcode;
    return EXIT_OK;
}

static void print_item_mark(const cmd_call_t *call, const Carrel__Response *r)
{
    printf("%s  %s\n", call->subject, r->item_mark->message);
}

static int cmd_item_use(cli_t *cli, int argc, char **argv)
{
    if (argc < 2 || cli_has_option(argc, argv))
        return cli_fail(cli, EXIT_USAGE, "usage: item use BARCODE...");
    int worst = EXIT_OK;
    json_t j;
    cli_batch_begin(cli, &j);
    for (int i = 1; i < argc; i++) {
        Carrel__Request req = CARREL__REQUEST__INIT;
        Carrel__InHouseUse u = CARREL__IN_HOUSE_USE__INIT;
        u.barcode = argv[i];
        req.body_case = CARREL__REQUEST__BODY_IN_HOUSE_USE;
        req.in_house_use = &u;
        Carrel__Response *r = NULL;
        cli_batch_element(cli, "barcode", argv[i]);
        int code = circ_send(cli, &req, &r);
        if (code != EXIT_OK) {
            worst = code;
            continue;
        }
        if (cli->json)
            output_json_element(&j, &r->in_house_use->base, true);
        else
            printf("%s  in-house use counted\n", argv[i]);
        carrel__response__free_unpacked(r, NULL);
    }
    cli_batch_end(cli, &j);
    return worst;
}

/* ---- loan rules ---- */

static void circ_print_int(char *out, size_t n, protobuf_c_boolean has, int64_t v)
{
    if (has)
        snprintf(out, n, "%lld", (long long)v);
    else
        snprintf(out, n, "-");
}

static int build_policy_list(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    (void)cli;
    (void)argc;
    (void)argv;
    CMD_BODY(call, policy_list, POLICY_LIST, carrel__policy_list__init);
    return EXIT_OK;
}

static void print_policy_list(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    static const char *const headers[] = {"Id",       "Category", "Type",      "Branch",
                                          "Loan",     "Renew",    "Max",       "Max/type",
                                          "Fine/day", "Grace",    "Circulates"};
    table_t *t = table_new(11, headers);
    for (size_t i = 0; i < r->policies->n_policies; i++) {
        const Carrel__Policy *p = r->policies->policies[i];
        char id[16], loan[24], ren[8], max[16], maxt[16], fine[24], grace[8];
        snprintf(id, sizeof(id), "%lld", (long long)p->id);
        if (p->loan_hours > 0)
            output_count(loan, sizeof(loan), p->loan_hours, "hour", "hours");
        else
            output_count(loan, sizeof(loan), p->loan_days, "day", "days");
        snprintf(ren, sizeof(ren), "%d", p->renewals);
        circ_print_int(max, sizeof(max), p->has_max_loans, p->max_loans);
        circ_print_int(maxt, sizeof(maxt), p->has_max_loans_of_type, p->max_loans_of_type);
        output_money(fine, sizeof(fine), p->fine_cents_per_day);
        snprintf(grace, sizeof(grace), "%d", p->grace_days);
        const char *row[] = {id,
                             p->patron_category[0] ? p->patron_category : "*",
                             p->item_type[0] ? p->item_type : "*",
                             p->branch[0] ? p->branch : "*",
                             loan,
                             ren,
                             max,
                             maxt,
                             fine,
                             grace,
                             p->circulates ? "yes" : "no"};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

static int build_policy_set(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    Carrel__PolicySave *s = CMD_BODY(call, policy_save, POLICY_SAVE, carrel__policy_save__init);
    Carrel__Policy *p = s->policy = cmd_part(call, sizeof(*p));
    carrel__policy__init(p);
    static const struct option opts[] = {
        {"category", required_argument, NULL, 'c'},
        {"type", required_argument, NULL, 't'},
        {"branch", required_argument, NULL, 'b'},
        {"days", required_argument, NULL, 'd'},
        {"hours", required_argument, NULL, 'H'},
        {"renewals", required_argument, NULL, 'r'},
        {"max", required_argument, NULL, 'm'},
        {"max-of-type", required_argument, NULL, 'M'},
        {"fine", required_argument, NULL, 'f'},
        {"fine-max", required_argument, NULL, 'F'},
        {"grace", required_argument, NULL, 'g'},
        {"no-circulate", no_argument, NULL, 'n'},
        {"holds-allow-renewal", no_argument, NULL, 'R'},
        {"no-lost-charge", no_argument, NULL, 'L'},
        {"remove", required_argument, NULL, 'x'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "c:t:b:d:H:r:m:M:f:F:g:nRLx:", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            p->patron_category = optarg;
            break;
        case 't':
            p->item_type = optarg;
            break;
        case 'b':
            p->branch = optarg;
            break;
        case 'd':
            p->has_loan_days = 1;
            if (cli_int32_arg(cli, "--days", optarg, 0, 365, &p->loan_days) != EXIT_OK)
                return EXIT_USAGE;
            break;
        case 'H':
            p->has_loan_hours = 1;
            if (cli_int32_arg(cli, "--hours", optarg, 0, 168, &p->loan_hours) != EXIT_OK)
                return EXIT_USAGE;
            break;
        case 'r':
            p->has_renewals = 1;
            if (cli_int32_arg(cli, "--renewals", optarg, 0, 99, &p->renewals) != EXIT_OK)
                return EXIT_USAGE;
            break;
        case 'm':
            p->has_max_loans = 1;
            if (cli_int32_arg(cli, "--max", optarg, 0, 10000, &p->max_loans) != EXIT_OK)
                return EXIT_USAGE;
            break;
        case 'M':
            p->has_max_loans_of_type = 1;
            if (cli_int32_arg(cli, "--max-of-type", optarg, 0, 10000, &p->max_loans_of_type) !=
                EXIT_OK)
                return EXIT_USAGE;
            break;
        case 'f':
            p->has_fine_cents_per_day = 1;
            p->fine_cents_per_day = circ_amount(optarg) < 0 ? 0 : circ_amount(optarg);
            break;
        case 'F':
            p->has_fine_max_cents = 1;
            p->fine_max_cents = circ_amount(optarg) < 0 ? 0 : circ_amount(optarg);
            break;
        case 'g':
            p->has_grace_days = 1;
            if (cli_int32_arg(cli, "--grace", optarg, 0, 60, &p->grace_days) != EXIT_OK)
                return EXIT_USAGE;
            break;
        case 'n':
            p->has_circulates = 1;
            p->circulates = 0;
            break;
        case 'R':
            p->has_hold_blocks_renewal = 1;
            p->hold_blocks_renewal = 0;
            break;
        case 'L':
            p->has_charge_lost = 1;
            p->charge_lost = 0;
            break;
        case 'x':
            p->has_id = p->has_remove = p->remove = 1;
            if (cli_int_arg(cli, "--remove", optarg, 1, INT64_MAX, &p->id) != EXIT_OK)
                return EXIT_USAGE;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc)
        return cli_fail(cli, EXIT_USAGE,
                        "usage: policy set [--category C] [--type T] "
                        "[--branch B] --days N ... | policy set --remove ID");
    call->number = p->id;
    return EXIT_OK;
}

/* A saved rule comes back; a removed one does not. */
static void print_policy_set(const cmd_call_t *call, const Carrel__Response *r)
{
    if (r->body_case == CARREL__RESPONSE__BODY_POLICY)
        printf("saved rule %lld\n", (long long)r->policy->id);
    else
        printf("removed rule %lld\n", (long long)call->number);
}

/* ---- calendars ---- */

static void print_calendar(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__Calendar *c = r->calendar;
    static const char *const days[] = {"", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    printf("%s\n", c->branch);
    for (size_t i = 0; i < c->n_hours; i++)
        printf("  %s %s-%s\n", days[c->hours[i]->weekday % 8], c->hours[i]->opens,
               c->hours[i]->closes);
    for (size_t i = 0; i < c->n_closed; i++)
        printf("  closed %s%s%s\n", c->closed[i]->day, c->closed[i]->reason[0] ? ": " : "",
               c->closed[i]->reason);
}

static int build_calendar_show(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc > 2 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    Carrel__CalendarGet *g = CMD_BODY(call, calendar_get, CALENDAR_GET, carrel__calendar_get__init);
    g->branch = argc == 2 ? argv[1] : NULL;
    return EXIT_OK;
}

static int build_calendar_close(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    const char *reason = "";
    static const struct option opts[] = {{"reason", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "r:", opts, NULL)) != -1) {
        if (ch == 'r')
            reason = optarg;
        else
            return EXIT_USAGE;
    }
    if (argc - optind < 2)
        return cmd_usage(cli, call);
    Carrel__CalendarSave *s =
        CMD_BODY(call, calendar_save, CALENDAR_SAVE, carrel__calendar_save__init);
    s->branch = argv[optind];
    size_t n = (size_t)(argc - optind - 1);
    Carrel__ClosedDay *days = cmd_part(call, n * sizeof(*days));
    Carrel__ClosedDay **ptrs = cmd_part(call, n * sizeof(*ptrs));
    for (size_t i = 0; i < n; i++) {
        carrel__closed_day__init(&days[i]);
        days[i].day = argv[optind + 1 + (int)i];
        days[i].reason = (char *)reason;
        ptrs[i] = &days[i];
    }
    s->add_closed = ptrs;
    s->n_add_closed = n;
    return EXIT_OK;
}

static int build_calendar_open(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc < 3 || cli_has_option(argc, argv))
        return cmd_usage(cli, call);
    Carrel__CalendarSave *s =
        CMD_BODY(call, calendar_save, CALENDAR_SAVE, carrel__calendar_save__init);
    s->branch = argv[1];
    s->remove_closed = argv + 2;
    s->n_remove_closed = (size_t)(argc - 2);
    return EXIT_OK;
}

/* "1=10:00-18:00" ... : the whole week; days not named are closed. */
static int build_calendar_hours(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc < 2 || cli_has_option(argc, argv))
        return cli_fail(cli, EXIT_USAGE,
                        "usage: calendar hours BRANCH [DAY=HH:MM-HH:MM ...]  (1 = Monday)");
    Carrel__CalendarSave *s =
        CMD_BODY(call, calendar_save, CALENDAR_SAVE, carrel__calendar_save__init);
    s->branch = argv[1];
    s->has_hours_set = s->hours_set = 1;
    size_t n = (size_t)(argc - 2);
    Carrel__OpenHours *hours = cmd_part(call, (n + 1) * sizeof(*hours));
    Carrel__OpenHours **ptrs = cmd_part(call, (n + 1) * sizeof(*ptrs));
    char(*texts)[2][8] = cmd_part(call, (n + 1) * sizeof(*texts));
    for (size_t i = 0; i < n; i++) {
        int d = 0, h1 = 0, m1 = 0, h2 = 0, m2 = 0;
        if (sscanf(argv[2 + i], "%d=%d:%d-%d:%d", &d, &h1, &m1, &h2, &m2) != 5)
            return cli_fail(cli, EXIT_USAGE, "'%s' is not DAY=HH:MM-HH:MM", argv[2 + i]);
        carrel__open_hours__init(&hours[i]);
        hours[i].has_weekday = 1;
        hours[i].weekday = d;
        snprintf(texts[i][0], 8, "%02d:%02d", h1 % 100, m1 % 100);
        snprintf(texts[i][1], 8, "%02d:%02d", h2 % 100, m2 % 100);
        hours[i].opens = texts[i][0];
        hours[i].closes = texts[i][1];
        ptrs[i] = &hours[i];
    }
    s->hours = ptrs;
    s->n_hours = n;
    return EXIT_OK;
}

const command_t circ_commands[] = {
    {.path = "checkout",
     .run = cmd_checkout,
     .needs_login = true,
     .usage = "CARD ITEM... [--override REASON]",
     .summary = "lend items to a patron at this branch; a refused item says why"},
    {.path = "checkin",
     .run = cmd_checkin,
     .needs_login = true,
     .usage = "ITEM... [--date WHEN] [--slips]",
     .summary = "return items (backdated with --date for the book drop) and say where each goes"},
    {.path = "renew",
     .run = cmd_renew,
     .needs_login = true,
     .usage = "CARD ITEM... | CARD --all [--override REASON]",
     .summary = "renew some or all of a patron's loans; exit 4 if any was refused"},
    {.path = "account",
     .build = build_account,
     .print_text = print_account,
     .needs_login = true,
     .usage = "CARD",
     .summary = "a patron's loans, due dates, holds, charges and payments"},
    {.path = "pay",
     .build = build_pay,
     .send = CMD_SEND_KEYED,
     .print_text = print_ledger,
     .needs_login = true,
     .usage = "CARD AMOUNT [--note TEXT]",
     .summary = "record a payment"},
    {.path = "waive",
     .build = build_waive,
     .send = CMD_SEND_KEYED,
     .print_text = print_ledger,
     .needs_login = true,
     .usage = "CARD AMOUNT --note WHY",
     .summary = "waive an amount (librarians)"},
    {.path = "charge",
     .build = build_charge,
     .send = CMD_SEND_KEYED,
     .print_text = print_ledger,
     .needs_login = true,
     .usage = "CARD AMOUNT [--note TEXT]",
     .summary = "add a charge (librarians)"},
    {.path = "item mark",
     .build = build_item_mark,
     .send = CMD_SEND_KEYED,
     .print_text = print_item_mark,
     .needs_login = true,
     .usage = "BARCODE lost|claims_returned|damaged|missing|found [--note TEXT]",
     .summary = "mark an item; lost bills the patron the item's price where the rules say so"},
    {.path = "item use",
     .run = cmd_item_use,
     .needs_login = true,
     .usage = "BARCODE...",
     .summary = "count in-library use of items"},
    {.path = "policy list",
     .build = build_policy_list,
     .print_text = print_policy_list,
     .needs_login = true,
     .usage = "",
     .summary = "the loan rules"},
    {.path = "policy set",
     .build = build_policy_set,
     .send = CMD_SEND_ONCE,
     .print_text = print_policy_set,
     .needs_login = true,
     .usage =
         "[--category C] [--type T] [--branch B] [--days N | --hours N] [--renewals N] [--max N] "
         "[--max-of-type N] [--fine 0.25] [--fine-max 5.00] [--grace N] [--no-circulate] "
         "[--holds-allow-renewal] [--no-lost-charge] | --remove ID",
     .summary = "add or change a loan rule (administrators)"},
    {.path = "calendar show",
     .build = build_calendar_show,
     .print_text = print_calendar,
     .needs_login = true,
     .usage = "[BRANCH]",
     .summary = "a branch's hours and closed days"},
    {.path = "calendar close",
     .build = build_calendar_close,
     .send = CMD_SEND_ONCE,
     .print_text = print_calendar,
     .needs_login = true,
     .usage = "BRANCH DAY... [--reason TEXT]",
     .summary = "close a branch on days (YYYY-MM-DD); due dates skip them"},
    {.path = "calendar open",
     .build = build_calendar_open,
     .send = CMD_SEND_ONCE,
     .print_text = print_calendar,
     .needs_login = true,
     .usage = "BRANCH DAY...",
     .summary = "remove closed days"},
    {.path = "calendar hours",
     .build = build_calendar_hours,
     .send = CMD_SEND_ONCE,
     .print_text = print_calendar,
     .needs_login = true,
     .usage = "BRANCH [DAY=HH:MM-HH:MM ...]",
     .summary = "set a branch's weekly hours (1 = Monday); days not named are closed"},
    {.path = NULL},
};
