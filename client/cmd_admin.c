/*
 * Administration commands: staff accounts and workstations; changing one's
 * own password (passwd) and ending the saved session (logout).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "password.h"
#include "util.h"

/* A new staff password: from --new-password-file, else asked twice. */
static char *admin_new_password(cli_t *cli, const char *file, int *code)
{
    if (file) {
        char *pw = password_from_file(file);
        if (pw == NULL)
            *code = cli_fail(cli, EXIT_LOCAL, "cannot read %s", file);
        return pw;
    }
    char *a = password_prompt("New password: ");
    if (a == NULL) {
        *code = cli_fail(cli, EXIT_USAGE, "no terminal: give --new-password-file");
        return NULL;
    }
    char *b = password_prompt("Repeat it: ");
    if (b == NULL || strcmp(a, b) != 0) {
        password_free(a);
        password_free(b);
        *code = cli_fail(cli, EXIT_USAGE, "the passwords differ");
        return NULL;
    }
    password_free(b);
    return a;
}

static Carrel__Role admin_parse_role(const char *name)
{
    const ProtobufCEnumDescriptor *d = &carrel__role__descriptor;
    for (unsigned i = 0; i < d->n_values; i++)
        if (strcmp(json_enum_name(d, d->values[i].value), name) == 0)
            return (Carrel__Role)d->values[i].value;
    return CARREL__ROLE__ROLE_UNSPECIFIED;
}

static void admin_print_staff(const Carrel__Staff *s)
{
    printf("%s (%s): %s at", s->username, s->display_name,
           json_enum_name(&carrel__role__descriptor, s->role));
    for (size_t i = 0; i < s->n_branch_codes; i++)
        printf(" %s", s->branch_codes[i]);
    printf("%s\n", s->disabled ? " [disabled]" : "");
}

static void print_json_ok(const cmd_call_t *call, const Carrel__Response *r);

/* What the builders of staff add and passwd leave for the prompts. */
typedef struct admin_pw {
    const char *newfile, *curfile; /* --new-password-file, --current-password-file */
    bool self;                     /* one's own password: the current one too */
} admin_pw_t;

static int build_staff_add(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    const char *name = NULL, *role = NULL, *branches = NULL;
    admin_pw_t *pw = call->data = cmd_part(call, sizeof(*pw));
    static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                         {"role", required_argument, NULL, 'r'},
                                         {"branch", required_argument, NULL, 'b'},
                                         {"new-password-file", required_argument, NULL, 'f'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:r:b:f:", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            name = optarg;
            break;
        case 'r':
            role = optarg;
            break;
        case 'b':
            branches = optarg;
            break;
        case 'f':
            pw->newfile = optarg;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || !name || !role || !branches)
        return cli_fail(cli, EXIT_USAGE,
                        "usage: admin staff add USER --name NAME --role ROLE --branch CODE[,CODE]");
    Carrel__Role r = admin_parse_role(role);
    if (r == CARREL__ROLE__ROLE_UNSPECIFIED)
        return cli_fail(cli, EXIT_USAGE,
                        "role must be clerk, librarian, branch_manager, coordinator, admin or "
                        "selfcheck");
    Carrel__StaffAdd *add = CMD_BODY(call, staff_add, STAFF_ADD, carrel__staff_add__init);
    char *codes = cmd_part(call, strlen(branches) + 1);
    memcpy(codes, branches, strlen(branches) + 1);
    char **list = cmd_part(call, 16 * sizeof(char *));
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(codes, ",", &save); tok && n < 16; tok = strtok_r(NULL, ",", &save))
        list[n++] = tok;
    add->username = argv[optind];
    add->display_name = (char *)name;
    add->has_role = 1;
    add->role = r;
    add->branch_codes = list;
    add->n_branch_codes = n;
    return EXIT_OK;
}

/* The new account's password, from its file or asked twice. */
static int prepare_staff_add(cli_t *cli, cmd_call_t *call)
{
    const admin_pw_t *pw = call->data;
    int code = EXIT_OK;
    char *password = admin_new_password(cli, pw->newfile, &code);
    if (password == NULL)
        return code;
    cmd_secret(call, password);
    call->req.staff_add->password = password;
    return EXIT_OK;
}

static void print_staff_add(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    printf("added ");
    admin_print_staff(r->staff);
}

static int build_staff_list(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    (void)cli;
    (void)argc;
    (void)argv;
    CMD_BODY(call, staff_list, STAFF_LIST, carrel__staff_list__init);
    return EXIT_OK;
}

static void print_staff_list(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    static const char *const headers[] = {"User", "Name", "Role", "Branches", "Status"};
    table_t *t = table_new(5, headers);
    for (size_t i = 0; i < r->staff_list->n_staff; i++) {
        const Carrel__Staff *s = r->staff_list->staff[i];
        char branches[128] = "";
        for (size_t k = 0; k < s->n_branch_codes; k++) {
            strncat(branches, k ? "," : "", sizeof(branches) - strlen(branches) - 1);
            strncat(branches, s->branch_codes[k], sizeof(branches) - strlen(branches) - 1);
        }
        const char *row[] = {s->username, s->display_name,
                             json_enum_name(&carrel__role__descriptor, s->role), branches,
                             s->disabled ? "disabled" : "active"};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

/* The current password, for changing one's own: from a file, else asked. */
static char *admin_current_password(cli_t *cli, const char *file, int *code)
{
    if (file) {
        char *pw = password_from_file(file);
        if (pw == NULL)
            *code = cli_fail(cli, EXIT_LOCAL, "cannot read %s", file);
        return pw;
    }
    char *pw = password_prompt("Current password: ");
    if (pw == NULL)
        *code = cli_fail(cli, EXIT_USAGE, "no terminal: give --current-password-file");
    return pw;
}

/*
 * Set `user`'s password. One's own needs the current password too (the
 * server checks it); the change ends one's other sessions and the saved
 * session, so the session file goes as well (finish_passwd).
 */
static int admin_passwd_build(cli_t *cli, cmd_call_t *call, const char *user)
{
    admin_pw_t *pw = call->data;
    pw->self = cli->login && cli->login->staff && cli->login->staff->username &&
               strcmp(cli->login->staff->username, user) == 0;
    Carrel__StaffSetPassword *m =
        CMD_BODY(call, staff_set_password, STAFF_SET_PASSWORD, carrel__staff_set_password__init);
    m->username = (char *)user;
    call->subject = user;
    return EXIT_OK;
}

/* The current password (one's own) and the new one, from their files or asked. */
static int prepare_passwd(cli_t *cli, cmd_call_t *call)
{
    const admin_pw_t *pw = call->data;
    Carrel__StaffSetPassword *m = call->req.staff_set_password;
    int code = EXIT_OK;
    if (pw->self) {
        if ((m->current_password = admin_current_password(cli, pw->curfile, &code)) == NULL)
            return code;
        cmd_secret(call, m->current_password);
    }
    if ((m->password = admin_new_password(cli, pw->newfile, &code)) == NULL)
        return code;
    cmd_secret(call, m->password);
    return EXIT_OK;
}

static void print_passwd(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)r;
    printf("password changed for %s\n", call->subject);
}

/* One's own password changed: the saved session has ended with it. */
static int finish_passwd(cli_t *cli, cmd_call_t *call, int code)
{
    const admin_pw_t *pw = call->data;
    if (code == EXIT_OK && pw->self)
        cli_session_forget(cli);
    return code;
}

/* Options of both passwd commands; returns EXIT_OK or a usage error. */
static int admin_passwd_options(int argc, char **argv, admin_pw_t *pw)
{
    static const struct option opts[] = {{"new-password-file", required_argument, NULL, 'f'},
                                         {"current-password-file", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "f:c:", opts, NULL)) != -1) {
        if (ch == 'f')
            pw->newfile = optarg;
        else if (ch == 'c')
            pw->curfile = optarg;
        else
            return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int build_staff_passwd(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    admin_pw_t *pw = call->data = cmd_part(call, sizeof(*pw));
    if (admin_passwd_options(argc, argv, pw) != EXIT_OK || optind != argc - 1)
        return cli_fail(cli, EXIT_USAGE,
                        "usage: admin staff passwd USER [--new-password-file F] "
                        "[--current-password-file F]");
    return admin_passwd_build(cli, call, argv[optind]);
}

static int build_passwd(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    admin_pw_t *pw = call->data = cmd_part(call, sizeof(*pw));
    if (admin_passwd_options(argc, argv, pw) != EXIT_OK || optind != argc)
        return cli_fail(cli, EXIT_USAGE,
                        "usage: passwd [--new-password-file F] [--current-password-file F]");
    return admin_passwd_build(cli, call, cli->profile.user);
}

static int build_logout(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    (void)argv;
    if (argc != 1)
        return cli_fail(cli, EXIT_USAGE, "usage: logout");
    CMD_BODY(call, logout, LOGOUT, carrel__logout__init);
    return EXIT_OK;
}

/*
 * Logout ends the saved session on the server, token included: log in with
 * it first. Without one there is nothing to end; when the server no longer
 * takes it, it has ended already.
 */
static int prepare_logout(cli_t *cli, cmd_call_t *call)
{
    if (!cli_session_saved(cli)) {
        call->nothing_to_send = true;
        return EXIT_OK;
    }
    int code = cli_connect(cli, false);
    if (code != EXIT_OK)
        return code;
    if (cli_session_login(cli) != EXIT_OK)
        call->nothing_to_send = true;
    return EXIT_OK;
}

static void print_logout(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    (void)r;
    printf("logged out\n");
}

/* Whatever the server said, this copy of the session is gone. */
static int finish_logout(cli_t *cli, cmd_call_t *call, int code)
{
    (void)call;
    if (code == EXIT_OK)
        cli->logged_in = false;
    cli_session_forget(cli);
    return code;
}

static int admin_set_disabled(cli_t *cli, int argc, char **argv, cmd_call_t *call, bool disabled)
{
    if (argc != 2)
        return cmd_usage(cli, call);
    Carrel__StaffSetDisabled *m =
        CMD_BODY(call, staff_set_disabled, STAFF_SET_DISABLED, carrel__staff_set_disabled__init);
    m->username = argv[1];
    m->has_disabled = 1;
    m->disabled = disabled;
    call->subject = argv[1];
    call->number = disabled;
    return EXIT_OK;
}

static int build_staff_disable(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return admin_set_disabled(cli, argc, argv, call, true);
}

static int build_staff_enable(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    return admin_set_disabled(cli, argc, argv, call, false);
}

static void print_staff_disabled(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)r;
    printf("%s %s\n", call->number ? "disabled" : "enabled", call->subject);
}

/* The answer says nothing a script needs beyond that it went through. */
static void print_json_ok(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    (void)r;
    printf("{\"status\":\"ok\"}\n");
}

static int build_workstation_add(cli_t *cli, int argc, char **argv, cmd_call_t *call)
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
    if (optind != argc - 1 || branch == NULL)
        return cli_fail(cli, EXIT_USAGE, "usage: admin workstation add NAME --branch CODE");
    Carrel__WorkstationAdd *m =
        CMD_BODY(call, workstation_add, WORKSTATION_ADD, carrel__workstation_add__init);
    m->name = argv[optind];
    m->branch_code = (char *)branch;
    return EXIT_OK;
}

static void print_workstation_add(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    printf("registered workstation %s at %s\n", r->workstation->name, r->workstation->branch_code);
}

static int build_workstation_list(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    (void)cli;
    (void)argc;
    (void)argv;
    CMD_BODY(call, workstation_list, WORKSTATION_LIST, carrel__workstation_list__init);
    return EXIT_OK;
}

/* A certificate's state for people: REVOKED, EXPIRED, EXPIRES SOON (cert_warn_days), or "". */
static const char *admin_cert_state(const Carrel__Workstation *w)
{
    if (w->cert_serial == NULL)
        return "";
    if (w->cert_revoked)
        return "REVOKED";
    if (w->cert_expiring)
        return (int64_t)time(NULL) * 1000 >= w->cert_not_after_ms ? "EXPIRED" : "EXPIRES SOON";
    return "";
}

static void print_workstation_list(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    static const char *const headers[] = {"Workstation", "Branch", "Certificate", "Expires",
                                          "State"};
    table_t *t = table_new(5, headers);
    for (size_t i = 0; i < r->workstations->n_workstations; i++) {
        const Carrel__Workstation *w = r->workstations->workstations[i];
        char expires[32] = "";
        if (w->cert_serial && w->has_cert_not_after_ms) {
            time_t at = (time_t)(w->cert_not_after_ms / 1000);
            struct tm tm;
            if (gmtime_r(&at, &tm))
                strftime(expires, sizeof(expires), "%Y-%m-%d %H:%M UTC", &tm);
        }
        const char *row[] = {w->name, w->branch_code, w->cert_serial ? w->cert_serial : "-",
                             expires, admin_cert_state(w)};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

static int build_workstation_revoke(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    const char *reason = NULL;
    static const struct option opts[] = {{"reason", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "r:", opts, NULL)) != -1) {
        if (ch == 'r')
            reason = optarg;
        else
            return EXIT_USAGE;
    }
    if (optind != argc - 1 || reason == NULL || reason[0] == '\0')
        return cli_fail(cli, EXIT_USAGE, "usage: admin workstation revoke NAME --reason TEXT");
    Carrel__WorkstationRevoke *m =
        CMD_BODY(call, workstation_revoke, WORKSTATION_REVOKE, carrel__workstation_revoke__init);
    m->name = argv[optind];
    m->reason = (char *)reason;
    return EXIT_OK;
}

static void print_workstation_revoke(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    const Carrel__Workstation *w = r->workstation;
    printf("revoked the certificates of workstation %s at %s (newest: %s); its connections are "
           "closed and it can no longer connect with them\n",
           w->name, w->branch_code, w->cert_serial ? w->cert_serial : "-");
}

/* ---- SIP2 logins (self-check machines, docs/SIP2.md) ---- */

/* Options not given stay absent: an existing login keeps those settings. */
static int build_sip_save(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    enum {
        O_WS = 1,
        O_INST,
        O_HIDE,
        O_CT,
        O_NO_CT,
        O_CV,
        O_NO_CV,
        O_HELD,
        O_NO_HELD,
        O_PIN,
        O_NO_PIN
    };
    static const struct option opts[] = {{"workstation", required_argument, NULL, O_WS},
                                         {"institution", required_argument, NULL, O_INST},
                                         {"hide", required_argument, NULL, O_HIDE},
                                         {"always-ct", no_argument, NULL, O_CT},
                                         {"no-always-ct", no_argument, NULL, O_NO_CT},
                                         {"cv-00", no_argument, NULL, O_CV},
                                         {"no-cv-00", no_argument, NULL, O_NO_CV},
                                         {"held-checkin-blocked", no_argument, NULL, O_HELD},
                                         {"no-held-checkin-blocked", no_argument, NULL, O_NO_HELD},
                                         {"pin", no_argument, NULL, O_PIN},
                                         {"no-pin", no_argument, NULL, O_NO_PIN},
                                         {NULL, 0, NULL, 0}};
    Carrel__SipLoginSave *m =
        CMD_BODY(call, sip_login_save, SIP_LOGIN_SAVE, carrel__sip_login_save__init);
    Carrel__SipLogin *l = cmd_part(call, sizeof(*l));
    carrel__sip_login__init(l);
    m->login = l;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case O_WS:
            l->workstation = optarg;
            break;
        case O_INST:
            l->institution = optarg;
            break;
        case O_HIDE:
            l->hide_fields = optarg;
            break;
        case O_CT:
        case O_NO_CT:
            l->has_always_send_ct = 1;
            l->always_send_ct = ch == O_CT;
            break;
        case O_CV:
        case O_NO_CV:
            l->has_cv_00_on_success = 1;
            l->cv_00_on_success = ch == O_CV;
            break;
        case O_HELD:
        case O_NO_HELD:
            l->has_held_checkin_blocked = 1;
            l->held_checkin_blocked = ch == O_HELD;
            break;
        case O_PIN:
        case O_NO_PIN:
            l->has_pin_required = 1;
            l->pin_required = ch == O_PIN;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1)
        return cli_fail(cli, EXIT_USAGE,
                        "usage: admin sip save USER --workstation WS [--institution X] "
                        "[--always-ct] [--cv-00] [--hide AV,BK] [--held-checkin-blocked] "
                        "[--no-pin]");
    l->username = argv[optind];
    return EXIT_OK;
}

static void print_sip_login(const Carrel__SipLogin *l)
{
    printf("%s at %s (%s)%s: institution %s, pin %s, always CT %s, CV 00 %s, held checkin %s, "
           "hidden fields %s, last login %s\n",
           l->username, l->workstation, l->branch_code, l->disabled ? " [disabled]" : "",
           l->institution ? l->institution : l->branch_code,
           l->pin_required ? "required" : "not required", l->always_send_ct ? "yes" : "no",
           l->cv_00_on_success ? "yes" : "no", l->held_checkin_blocked ? "blocked" : "allowed",
           l->hide_fields && l->hide_fields[0] ? l->hide_fields : "none",
           l->last_login_at ? l->last_login_at : "never");
}

static void print_sip_save(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    printf("saved SIP2 login ");
    print_sip_login(r->sip_login);
}

static int build_sip_list(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc > 1)
        return cli_fail(cli, EXIT_USAGE, "usage: admin sip list");
    (void)argv;
    CMD_BODY(call, sip_login_list, SIP_LOGIN_LIST, carrel__sip_login_list__init);
    return EXIT_OK;
}

static void print_sip_list(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    if (r->sip_logins->n_logins == 0)
        printf("no SIP2 logins\n");
    for (size_t i = 0; i < r->sip_logins->n_logins; i++)
        print_sip_login(r->sip_logins->logins[i]);
}

static int build_sip_remove(cli_t *cli, int argc, char **argv, cmd_call_t *call)
{
    if (argc != 2)
        return cli_fail(cli, EXIT_USAGE, "usage: admin sip remove USER");
    Carrel__SipLoginRemove *m =
        CMD_BODY(call, sip_login_remove, SIP_LOGIN_REMOVE, carrel__sip_login_remove__init);
    m->username = argv[1];
    return EXIT_OK;
}

static void print_sip_remove(const cmd_call_t *call, const Carrel__Response *r)
{
    (void)call;
    printf("removed the SIP2 login of %s (the staff account stays)\n",
           r->sip_login_removed->username);
}

const command_t admin_commands[] = {
    {.path = "admin staff add",
     .build = build_staff_add,
     .prepare = prepare_staff_add,
     .send = CMD_SEND_ONCE,
     .print_text = print_staff_add,
     .needs_login = true,
     .usage = "USER --name NAME --role ROLE --branch CODE[,CODE] [--new-password-file F]",
     .summary = "create a staff account (managers: clerks and librarians of their branch)"},
    {.path = "admin staff list",
     .build = build_staff_list,
     .print_text = print_staff_list,
     .needs_login = true,
     .usage = "",
     .summary = "list staff accounts"},
    {.path = "admin staff passwd",
     .build = build_staff_passwd,
     .prepare = prepare_passwd,
     .send = CMD_SEND_ONCE,
     .print_text = print_passwd,
     .print_json = print_json_ok,
     .finish = finish_passwd,
     .needs_login = true,
     .usage = "USER [--new-password-file F] [--current-password-file F]",
     .summary = "set a staff member's password (your own: the current one is asked for too)"},
    {.path = "passwd",
     .build = build_passwd,
     .prepare = prepare_passwd,
     .send = CMD_SEND_ONCE,
     .print_text = print_passwd,
     .print_json = print_json_ok,
     .finish = finish_passwd,
     .needs_login = true,
     .usage = "[--new-password-file F] [--current-password-file F]",
     .summary = "change your own password (asks for the current one)"},
    {.path = "logout",
     .build = build_logout,
     .prepare = prepare_logout,
     .print_text = print_logout,
     .print_json = print_json_ok,
     .finish = finish_logout,
     .needs_login = false,
     .usage = "",
     .summary =
         "end the saved session of this profile (keep_session), so the next command asks for "
         "the password"},
    {.path = "admin staff disable",
     .build = build_staff_disable,
     .send = CMD_SEND_ONCE,
     .print_text = print_staff_disabled,
     .print_json = print_json_ok,
     .needs_login = true,
     .usage = "USER",
     .summary = "disable a staff account"},
    {.path = "admin staff enable",
     .build = build_staff_enable,
     .send = CMD_SEND_ONCE,
     .print_text = print_staff_disabled,
     .print_json = print_json_ok,
     .needs_login = true,
     .usage = "USER",
     .summary = "enable a staff account"},
    {.path = "admin workstation add",
     .build = build_workstation_add,
     .send = CMD_SEND_ONCE,
     .print_text = print_workstation_add,
     .needs_login = true,
     .usage = "NAME --branch CODE",
     .summary = "register a desk workstation at a branch"},
    {.path = "admin workstation list",
     .build = build_workstation_list,
     .print_text = print_workstation_list,
     .needs_login = true,
     .usage = "",
     .summary = "list workstations with their newest certificate: serial, expiry, REVOKED or "
                "EXPIRES SOON"},
    {.path = "admin workstation revoke",
     .build = build_workstation_revoke,
     .send = CMD_SEND_ONCE,
     .print_text = print_workstation_revoke,
     .needs_login = true,
     .usage = "NAME --reason TEXT",
     .summary = "revoke every certificate of a workstation (a lost or stolen desk): refused at "
                "once, its connections closed"},
    {.path = "admin sip save",
     .build = build_sip_save,
     .send = CMD_SEND_ONCE,
     .print_text = print_sip_save,
     .needs_login = true,
     .usage = "USER --workstation WS [--institution X] [--always-ct] [--cv-00] [--hide AV,BK] "
              "[--held-checkin-blocked] [--no-pin]",
     .summary = "create or change the SIP2 login of a selfcheck account (administrators)"},
    {.path = "admin sip list",
     .build = build_sip_list,
     .print_text = print_sip_list,
     .needs_login = true,
     .usage = "",
     .summary = "list the SIP2 logins of self-check machines"},
    {.path = "admin sip remove",
     .build = build_sip_remove,
     .send = CMD_SEND_ONCE,
     .print_text = print_sip_remove,
     .needs_login = true,
     .usage = "USER",
     .summary = "remove a SIP2 login (the staff account stays)"},
    {.path = NULL},
};
