/*
 * carreld: the Carrel daemon. See `carreld --help` and docs/ARCHITECTURE.md.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "certs.h"
#include "log.h"
#include "manpage.h"
#include "marcio.h"
#include "metrics.h"
#include "migrate.h"
#include "notify.h"
#include "password.h"
#include "perm.h"
#include "request.h"
#include "server.h"
#include "sip.h"
#include "util.h"

#define CARRELD_VERSION "0.1.0"

typedef struct options {
    const char *config_file;
    int check_config;
    int dump_config;
    int migrate_only;
    int dry_run;
    const char *init_admin;
    const char *password_file;
    const char *branch;
    const char *workstation;
    const char *display_name;
    certs_issue_t issue; /* --issue-cert and its options (certs.h) */
    const char *days;
    /* -s KEY=VALUE and -p PORT (as "listen_port=PORT"), in command-line order: applied
     * after the file at start and again by each reload (reload.c). */
    char **overrides;
    int noverrides;
} options_t;

/*
 * The command line as data: --help prints it for the terminal, the hidden
 * --man as the man page carreld.8 (meson generates it at build time), so
 * the two say the same.
 */
static const char *const carreld_synopsis[] = {
    "[-c FILE] [-s KEY=VALUE]... [-p PORT]",
    "[-c FILE] --init-admin USER --password-file FILE --branch CODE\n"
    "[--workstation NAME] [--display-name NAME]",
    "[-c FILE] --issue-cert NAME --csr FILE --ca-cert FILE --ca-key FILE\n"
    "[--days N] [--out FILE]",
    "[-c FILE] --migrate-only [--dry-run]",
    NULL,
};

static const char carreld_description[] =
    "The Carrel daemon: serves desk clients over TLS from the PostgreSQL database.\n"
    "At start it applies pending schema migrations, then serves until SIGTERM or\n"
    "SIGINT, which stop it after in-flight requests finish.";

static const cli_option_t carreld_options[] = {
    {'c', "config", "FILE", "configuration file (key = value lines)"},
    {'s', "set", "KEY=VALUE", "override one setting (repeatable)"},
    {'p', "port", "PORT", "same as --set listen_port=PORT"},
    {0, "check-config", NULL, "validate the configuration and exit"},
    {0, "dump-config", NULL, "print the effective configuration and exit"},
    {0, "migrate-only", NULL, "apply migrations and exit"},
    {0, "dry-run", NULL, "with --migrate-only: list what would be applied, change\nnothing"},
    {0, "init-admin", "USER",
     "create the first administrator (and, with --workstation,\n"
     "register that workstation at --branch), then exit;\n"
     "existing accounts and workstations are left unchanged;\n"
     "refused while migrations are pending"},
    {0, "password-file", "F", "the new administrator's password (first line of F)"},
    {0, "issue-cert", "NAME",
     "sign workstation NAME's request (--csr, made by carrel cert\n"
     "request) with the library CA (--ca-cert, --ca-key) for\n"
     "--days (397, at most 825), record it and write it to\n"
     "--out (a new file) or standard output, then exit; never\n"
     "changes the schema (refused while migrations are pending)"},
    {0, "csr", "FILE", "with --issue-cert: the desk's certificate signing request"},
    {0, "ca-cert", "FILE",
     "with --issue-cert: the library CA's certificate (one of\ntls_client_ca)"},
    {0, "ca-key", "FILE", "with --issue-cert: the CA's private key (mode 600, yours)"},
    {0, "days", "N", "with --issue-cert: validity in days (397, at most 825)"},
    {0, "out", "FILE", "with --issue-cert: write the certificate here (a new file)"},
    {'h', "help", NULL, "this help"},
    {'V', "version", NULL, "print the version"},
    CLI_OPTION_END,
};

static void usage(FILE *out)
{
    cli_synopsis_print("carreld", carreld_synopsis, out);
    fprintf(out, "\n%s\n\n", carreld_description);
    cli_options_print(carreld_options, out);
    fprintf(out, "\nSettings (file or --set; a reload applies those that say so, the others\n"
                 "wait for the next start):\n");
    conf_print_help(server_config_table, out);
}

/* carreld.8: the same tables as usage(), and what only a manual has room for. */
static void man_page(FILE *out)
{
    const man_page_t page = {"carreld", "8", CARRELD_VERSION, "the Carrel library system daemon"};
    man_begin(out, &page);
    man_section(out, "SYNOPSIS");
    for (size_t i = 0; carreld_synopsis[i]; i++)
        man_synopsis(out, "carreld", carreld_synopsis[i]);
    man_section(out, "DESCRIPTION");
    man_paragraph(out, carreld_description);
    man_paragraph(out,
                  "Under systemd (Type=notify) carreld tells the service manager when the desks' "
                  "port (and the SIP2 port, when set) listens (READY=1), when it reloads and when "
                  "it stops, and pings the watchdog (WatchdogSec) from its event loop, so that a "
                  "daemon whose loop is stuck is restarted. Without NOTIFY_SOCKET it does none of "
                  "this.");
    man_section(out, "OPTIONS");
    man_options(out, carreld_options);
    man_section(out, "SETTINGS");
    man_paragraph(out, "The configuration file holds one \"key = value\" line per setting; '#' "
                       "starts a comment and a value may be double-quoted. --set KEY=VALUE "
                       "overrides the file. --dump-config prints the effective settings.");
    man_settings(out, server_config_table, 1);
    man_section(out, "RELOADING");
    man_paragraph(out,
                  "SIGHUP (systemctl reload carreld) or carrel admin reload re-reads the "
                  "configuration file and re-applies the --set and --port overrides. A file "
                  "that does not parse or validate is refused as a whole and the old settings "
                  "stay. Of the settings, a reload applies these; the others keep their old "
                  "value until the next start, and the reload names them as needing a restart:");
    man_reload_table(out, server_config_table);
    man_section(out, "SIGNALS");
    man_item(out, "SIGTERM, SIGINT",
             "stop accepting, let in-flight requests finish, then exit (after "
             "shutdown_timeout_s at the latest); a second signal closes every connection at "
             "once.");
    man_item(out, "SIGHUP", "reload the configuration (see RELOADING).");
    man_section(out, "FILES");
    man_item(out, "/etc/carrel/carreld.conf",
             "the configuration file the systemd unit passes with -c (an example is installed "
             "as carreld.conf.example in the documentation directory).");
    man_item(out, CARREL_SQL_DIR,
             "the schema migrations and database rules applied at start (the default sql_dir).");
    man_section(out, "SEE ALSO");
    man_paragraph(out, "carrel(1), systemd.service(5), sd_notify(3); OPERATIONS.md in the "
                       "documentation directory.");
}

static int load_config(struct server_config *cfg, const options_t *opt)
{
    char err[512];
    if (conf_defaults(server_config_table, cfg) != 0) {
        fprintf(stderr, "carreld: out of memory\n");
        return -1;
    }
    if (opt->config_file &&
        conf_load_file(server_config_table, cfg, opt->config_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "carreld: %s\n", err);
        return -1;
    }
    /* Overrides are applied after the file, in command-line order. */
    for (int i = 0; i < opt->noverrides; i++)
        if (conf_set_pair(server_config_table, cfg, opt->overrides[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "carreld: %s\n", err);
            return -1;
        }
    int level = log_level_parse(cfg->log_level);
    if (level < 0) {
        fprintf(stderr, "carreld: log_level: '%s' is not debug, info, warn or error\n",
                cfg->log_level);
        return -1;
    }
    log_set_level((log_level_t)level);
    return 0;
}

static int check_serving_config(const struct server_config *cfg)
{
    char err[512];
    if (server_config_validate(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "carreld: %s\n", err);
        return -1;
    }
    return 0;
}

/* Remember an override ("key=value") for load_config and for reloads. */
static void add_override(options_t *opt, const char *key, const char *value)
{
    size_t len = strlen(value) + (key ? strlen(key) + 1 : 0) + 1;
    char *pair = util_xcalloc(len, 1);
    snprintf(pair, len, "%s%s%s", key ? key : "", key ? "=" : "", value);
    opt->overrides[opt->noverrides++] = pair; /* sized for every argument (parse_options) */
}

static void free_overrides(options_t *opt)
{
    for (int i = 0; i < opt->noverrides; i++)
        free(opt->overrides[i]);
    free(opt->overrides);
    opt->overrides = NULL;
    opt->noverrides = 0;
}

/* ---- --init-admin: runs before and instead of the loop, so blocking is fine ---- */

static int init_exec(PGconn *pg, const char *sql, int n, const char *const *values, PGresult **out)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fprintf(stderr, "carreld: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return 0;
}

static int init_admin(const struct server_config *cfg, const options_t *opt)
{
    if (opt->password_file == NULL || opt->branch == NULL) {
        fprintf(stderr, "carreld: --init-admin needs --password-file and --branch\n");
        return 2;
    }
    char *password = util_read_file(opt->password_file, 4096);
    if (password == NULL) {
        fprintf(stderr, "carreld: cannot read %s\n", opt->password_file);
        return 1;
    }
    char *nl = strchr(password, '\n');
    if (nl)
        *nl = '\0';
    if (strlen(password) < 10) {
        fprintf(stderr, "carreld: the administrator password must be at least 10 characters\n");
        OPENSSL_cleanse(password, strlen(password));
        free(password);
        return 1;
    }
    password_params_t params = {(unsigned)cfg->password_time_cost,
                                (unsigned)cfg->password_memory_kib,
                                (unsigned)cfg->password_parallelism};
    char *hash = password_hash_now(&params, password);
    OPENSSL_cleanse(password, strlen(password));
    free(password);
    if (hash == NULL)
        return 1;

    int rc = 1;
    PGconn *pg = NULL;
    PGresult *r = NULL;
    if (migrate_require_current(cfg->db_conninfo, cfg->sql_dir, "--init-admin") != 0)
        goto done;
    pg = PQconnectdb(cfg->db_conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "carreld: %s", PQerrorMessage(pg));
        goto done;
    }
    const char *codes_param[1] = {opt->branch};
    if (init_exec(pg, "SELECT 1 FROM branch WHERE code = $1", 1, codes_param, &r) != 0)
        goto done;
    if (PQntuples(r) == 0) {
        fprintf(stderr, "carreld: there is no branch %s; load the branches first\n", opt->branch);
        goto done;
    }
    PQclear(r);
    r = NULL;
    const char *user_param[1] = {opt->init_admin};
    if (init_exec(pg, "SELECT role::text FROM staff WHERE username = $1", 1, user_param, &r) != 0)
        goto done;
    if (PQntuples(r) > 0) {
        printf("staff account %s already exists (%s); left unchanged\n", opt->init_admin,
               PQgetvalue(r, 0, 0));
    } else {
        char branches[64];
        snprintf(branches, sizeof(branches), "{%s}", opt->branch);
        const char *values[7] = {NULL,
                                 NULL,
                                 opt->init_admin,
                                 opt->display_name ? opt->display_name : "Administrator",
                                 "admin",
                                 branches,
                                 hash};
        if (init_exec(pg, "SELECT id FROM staff_add($1, $2, $3, $4, $5, $6, $7)", 7, values,
                      NULL) != 0)
            goto done;
        printf("created administrator %s at branch %s\n", opt->init_admin, opt->branch);
    }
    PQclear(r);
    r = NULL;
    if (opt->workstation) {
        const char *ws_param[1] = {opt->workstation};
        if (init_exec(pg, "SELECT 1 FROM workstation WHERE name = $1", 1, ws_param, &r) != 0)
            goto done;
        if (PQntuples(r) > 0) {
            printf("workstation %s already registered; left unchanged\n", opt->workstation);
        } else {
            const char *values[4] = {NULL, NULL, opt->workstation, opt->branch};
            if (init_exec(pg, "SELECT id FROM workstation_add($1, $2, $3, $4)", 4, values, NULL) !=
                0)
                goto done;
            printf("registered workstation %s at branch %s\n", opt->workstation, opt->branch);
        }
    }
    rc = 0;
done:
    PQclear(r);
    PQfinish(pg);
    free(hash);
    return rc;
}

static int parse_options(options_t *opt, int argc, char **argv)
{
    enum {
        O_CHECK = 256,
        O_DUMP,
        O_MIGRATE,
        O_INIT,
        O_PWFILE,
        O_BRANCH,
        O_WS,
        O_NAME,
        O_MAN,
        O_DRY,
        O_ISSUE,
        O_CSR,
        O_CA_CERT,
        O_CA_KEY,
        O_DAYS,
        O_OUT
    };
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"port", required_argument, NULL, 'p'},
        {"check-config", no_argument, NULL, O_CHECK},
        {"dump-config", no_argument, NULL, O_DUMP},
        {"migrate-only", no_argument, NULL, O_MIGRATE},
        {"dry-run", no_argument, NULL, O_DRY},
        {"init-admin", required_argument, NULL, O_INIT},
        {"password-file", required_argument, NULL, O_PWFILE},
        {"branch", required_argument, NULL, O_BRANCH},
        {"workstation", required_argument, NULL, O_WS},
        {"display-name", required_argument, NULL, O_NAME},
        {"issue-cert", required_argument, NULL, O_ISSUE},
        {"csr", required_argument, NULL, O_CSR},
        {"ca-cert", required_argument, NULL, O_CA_CERT},
        {"ca-key", required_argument, NULL, O_CA_KEY},
        {"days", required_argument, NULL, O_DAYS},
        {"out", required_argument, NULL, O_OUT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"man", no_argument, NULL, O_MAN}, /* hidden: meson makes carreld.8 with it */
        {NULL, 0, NULL, 0},
    };
    /* No more overrides than arguments. */
    opt->overrides = util_xcalloc((size_t)argc + 1, sizeof(char *));
    int ch;
    while ((ch = getopt_long(argc, argv, "c:s:p:hV", longs, NULL)) != -1) {
        switch (ch) {
        case 'c':
            opt->config_file = optarg;
            break;
        case 's':
            add_override(opt, NULL, optarg); /* applied after the file, in load_config */
            break;
        case 'p':
            add_override(opt, "listen_port", optarg);
            break;
        case O_CHECK:
            opt->check_config = 1;
            break;
        case O_DUMP:
            opt->dump_config = 1;
            break;
        case O_MIGRATE:
            opt->migrate_only = 1;
            break;
        case O_DRY:
            opt->dry_run = 1;
            break;
        case O_INIT:
            opt->init_admin = optarg;
            break;
        case O_PWFILE:
            opt->password_file = optarg;
            break;
        case O_BRANCH:
            opt->branch = optarg;
            break;
        case O_WS:
            opt->workstation = optarg;
            break;
        case O_NAME:
            opt->display_name = optarg;
            break;
        case O_ISSUE:
            opt->issue.workstation = optarg;
            break;
        case O_CSR:
            opt->issue.csr_file = optarg;
            break;
        case O_CA_CERT:
            opt->issue.ca_cert_file = optarg;
            break;
        case O_CA_KEY:
            opt->issue.ca_key_file = optarg;
            break;
        case O_DAYS:
            opt->days = optarg;
            break;
        case O_OUT:
            opt->issue.out_file = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("carreld %s\n", CARRELD_VERSION);
            exit(0);
        case O_MAN:
            /* The manual documents the installed path, not this binary's. */
            snprintf(server_sql_dir_default, PATH_MAX, "%s", CARREL_SQL_DIR);
            man_page(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "carreld: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (opt->dry_run && !opt->migrate_only) {
        fprintf(stderr, "carreld: --dry-run goes with --migrate-only\n");
        usage(stderr);
        return -1;
    }
    /* One mode a run: a second one would be quietly skipped (or, for
     * --issue-cert, run after a migration nobody asked for). */
    int modes = !!opt->check_config + !!opt->dump_config + !!opt->migrate_only +
                (opt->init_admin != NULL) + (opt->issue.workstation != NULL);
    if (modes > 1) {
        fprintf(stderr, "carreld: --check-config, --dump-config, --migrate-only, --init-admin and "
                        "--issue-cert each run alone\n");
        return -1;
    }
    if (opt->issue.workstation && (opt->issue.csr_file == NULL || opt->issue.ca_cert_file == NULL ||
                                   opt->issue.ca_key_file == NULL)) {
        fprintf(stderr, "carreld: --issue-cert needs --csr, --ca-cert and --ca-key\n");
        return -1;
    }
    opt->issue.days = CERTS_DEFAULT_DAYS;
    if (opt->days) {
        char *end;
        errno = 0;
        opt->issue.days = strtol(opt->days, &end, 10);
        if (errno || end == opt->days || *end || opt->issue.days < 1 ||
            opt->issue.days > CERTS_MAX_DAYS) {
            fprintf(stderr, "carreld: --days must be a number of days from 1 to %d\n",
                    CERTS_MAX_DAYS);
            return -1;
        }
    }
    if ((opt->issue.csr_file || opt->issue.ca_cert_file || opt->issue.ca_key_file || opt->days ||
         opt->issue.out_file) &&
        opt->issue.workstation == NULL) {
        fprintf(stderr, "carreld: --csr, --ca-cert, --ca-key, --days and --out go with "
                        "--issue-cert\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options_t opt = {0};
    /* SIGHUP reloads once the loop runs (reload.c); until then (migrations may take
     * minutes) it must not kill the daemon. */
    signal(SIGHUP, SIG_IGN);
    /* Before parse_options: --help shows the sql_dir this carreld would use. */
    server_config_locate_sql_dir();
    if (parse_options(&opt, argc, argv) != 0) {
        free_overrides(&opt);
        return 2;
    }
    server_t srv = {0};
    if (load_config(&srv.cfg, &opt) != 0) {
        conf_free(server_config_table, &srv.cfg);
        free_overrides(&opt);
        return 2;
    }
    srv.config_file = opt.config_file;
    srv.config_overrides = opt.overrides;
    srv.config_noverrides = opt.noverrides;
    int rc = 0;
    if (opt.dump_config) {
        conf_dump(server_config_table, &srv.cfg, stdout);
        goto out;
    }
    if (!opt.migrate_only && !opt.init_admin && !opt.issue.workstation &&
        check_serving_config(&srv.cfg) != 0) {
        rc = 2;
        goto out;
    }
    if (opt.check_config) {
        printf("configuration ok\n");
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);

    char err[1024];
    if (opt.dry_run) {
        if (migrate_dry_run(srv.cfg.db_conninfo, srv.cfg.sql_dir, stdout, err, sizeof(err)) != 0) {
            log_error(0, "%s", err);
            rc = 1;
        } else if (fflush(stdout) != 0 || ferror(stdout)) {
            log_error(0, "cannot write the plan: %s", strerror(errno));
            rc = 1;
        }
        goto out;
    }
    /* The one-shot modes that use the schema never change it: an upgrade is
     * IT's step, with every daemon stopped (OPERATIONS.md, upgrading). */
    if (opt.init_admin || opt.issue.workstation) {
        rc = opt.init_admin ? init_admin(&srv.cfg, &opt) : certs_issue_main(&srv.cfg, &opt.issue);
        goto out;
    }
    notify_status("applying database migrations");
    if (migrate_run(srv.cfg.db_conninfo, srv.cfg.sql_dir, err, sizeof(err)) != 0) {
        log_error(0, "%s", err);
        rc = 1;
        goto out;
    }
    if (opt.migrate_only)
        goto out;

    dispatch_register_statements();
    marcio_init(); /* libxml2 must be set up before worker threads use it */
    /* libcurl (email notices, server/smtp.c) is set up once, before any thread starts. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error(0, "libcurl cannot start");
        marcio_cleanup();
        rc = 1;
        goto out;
    }
    /*
     * Password checks and MARC conversion share libuv's pool. The password
     * queue hands it at most password_workers checks at once (one per core
     * by default, server/password.h), so the pool needs those threads plus
     * room for imports: with libuv's default four, two big imports delayed
     * every login. The pool starts on first use, so setting this here is
     * early enough; IT can still override it.
     */
    long pw_workers =
        srv.cfg.password_workers > 0 ? srv.cfg.password_workers : password_default_workers();
    char pool_size[24];
    snprintf(pool_size, sizeof(pool_size), "%ld", pw_workers + 6 > 128 ? 128 : pw_workers + 6);
    setenv("UV_THREADPOOL_SIZE", pool_size, 0);
    srv.loop = uv_default_loop();
    log_info(0, "carreld %s starting", CARRELD_VERSION);
    metrics_init(CARRELD_VERSION);
    /* Each desk is a socket: a library of a thousand desks needs more than
     * the usual soft limit of 1,024 open files. Raised to the hard limit (IT
     * sets that); a failure is only logged, since fewer desks still work. */
    unsigned long long nofile = 0;
    if (util_raise_nofile(&nofile) != 0)
        log_warn(0, "cannot raise the open-file limit to %llu: %s", nofile, strerror(errno));
    if (server_start(&srv) != 0)
        rc = 1;
    uv_run(srv.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(srv.loop) != 0)
        log_warn(0, "event loop closed with handles still open");
    if (srv.exit_code)
        rc = srv.exit_code;
    if (srv.tls)
        SSL_CTX_free(srv.tls);
    certs_free(&srv);
    sip_free(&srv);
    marcio_cleanup();
    curl_global_cleanup();
    throttle_free(&srv.throttle_users);
    throttle_free(&srv.throttle_addresses);
    free(srv.dummy_hash);
out:
    conf_free(server_config_table, &srv.cfg);
    free_overrides(&opt);
    return rc;
}
