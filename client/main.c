/*
 * carrel: the branch desk client. See `carrel --help` and README.md.
 */
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CARREL_VERSION "0.1.0"

static const command_t *const command_tables[] = {
    core_commands, admin_commands, catalog_commands, patron_commands,
    circ_commands, holds_commands, notices_commands, desk_commands};

static void usage(FILE *out)
{
    fprintf(out, "usage: carrel [-c PROFILE] [--json] [--password-file FILE] COMMAND [ARGS]\n"
                 "\n"
                 "The Carrel desk client. The profile (default: $CARREL_PROFILE) names the\n"
                 "server, its CA, this workstation and the staff user; the password is asked\n"
                 "for, or read from --password-file, $CARREL_PASSWORD, or the profile's\n"
                 "password_file / password_env.\n"
                 "\n"
                 "Commands:\n");
    for (size_t t = 0; t < sizeof(command_tables) / sizeof(command_tables[0]); t++)
        for (const command_t *c = command_tables[t]; c->path; c++)
            fprintf(out, "  %s %s\n      %s\n", c->path, c->usage, c->summary);
    fprintf(out, "\n"
                 "Options:\n"
                 "  -c, --profile FILE     connection profile\n"
                 "  -j, --json             machine-readable output (one JSON document)\n"
                 "      --password-file F  read the login password from F\n"
                 "      --request-key UUID the request key of the command's first change\n"
                 "                         (the n-th after it: UUID plus n), to run a command\n"
                 "                         whose outcome is unknown again without applying it\n"
                 "                         twice; also accepted after the command's name\n"
                 "  -h, --help             this help\n"
                 "  -V, --version          print the version\n"
                 "\n"
                 "Exit codes:\n"
                 "  0  success\n"
                 "  1  local error (unreadable file, bad input file)\n"
                 "  2  usage error\n"
                 "  3  authentication failed (wrong password, unknown workstation, throttled)\n"
                 "  4  the server refused or failed the request (not found, forbidden,\n"
                 "     conflict, refused by a library rule, unavailable, ...)\n"
                 "  5  network or TLS failure, or no answer in time\n");
}

/*
 * Take "--request-key K" (or "--request-key=K") out of a command's arguments,
 * wherever it stands before a "--", so that every command accepts it after
 * its name as well as before. Returns EXIT_OK or EXIT_USAGE (printed).
 */
static int take_request_key(cli_t *cli, int *argc, char **argv)
{
    static const char opt[] = "--request-key";
    int out = 1;
    int code = EXIT_OK;
    bool literal = false;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (!literal && strcmp(a, "--") == 0)
            literal = true;
        if (!literal && strcmp(a, opt) == 0) {
            if (i + 1 >= *argc)
                return cli_fail(cli, EXIT_USAGE, "--request-key needs a UUID");
            code = cli_set_request_key_arg(cli, argv[++i]);
        } else if (!literal && strncmp(a, opt, sizeof(opt) - 1) == 0 && a[sizeof(opt) - 1] == '=') {
            code = cli_set_request_key_arg(cli, a + sizeof(opt));
        } else {
            argv[out++] = argv[i];
        }
        if (code != EXIT_OK)
            return code;
    }
    argv[out] = NULL;
    *argc = out;
    return EXIT_OK;
}

/* The command whose words match the most leading arguments. */
static const command_t *find_command(int argc, char **argv, int *words)
{
    const command_t *best = NULL;
    int best_words = 0;
    for (size_t t = 0; t < sizeof(command_tables) / sizeof(command_tables[0]); t++) {
        for (const command_t *c = command_tables[t]; c->path; c++) {
            char path[128];
            snprintf(path, sizeof(path), "%s", c->path);
            int n = 0;
            bool match = true;
            char *save = NULL;
            for (char *w = strtok_r(path, " ", &save); w; w = strtok_r(NULL, " ", &save), n++) {
                if (n >= argc || strcmp(argv[n], w) != 0) {
                    match = false;
                    break;
                }
            }
            if (match && n > best_words) {
                best = c;
                best_words = n;
            }
        }
    }
    *words = best_words;
    return best;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    signal(SIGPIPE, SIG_IGN);
    cli_t cli;
    memset(&cli, 0, sizeof(cli));
    cli.profile_path = getenv("CARREL_PROFILE");

    enum { O_PWFILE = 256, O_REQUEST_KEY };
    static const struct option opts[] = {
        {"profile", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"password-file", required_argument, NULL, O_PWFILE},
        {"request-key", required_argument, NULL, O_REQUEST_KEY},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "+c:jhV", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            cli.profile_path = optarg;
            break;
        case 'j':
            cli.json = true;
            break;
        case O_PWFILE:
            cli.password_file = optarg;
            break;
        case O_REQUEST_KEY:
            if (cli_set_request_key_arg(&cli, optarg) != EXIT_OK)
                return EXIT_USAGE;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'V':
            printf("carrel %s\n", CARREL_VERSION);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    int words = 0;
    const command_t *cmd = find_command(argc - optind, argv + optind, &words);
    if (cmd == NULL) {
        fprintf(stderr, "carrel: unknown command '%s' (see carrel --help)\n", argv[optind]);
        return EXIT_USAGE;
    }
    char err[512];
    if (profile_load(&cli.profile, cli.profile_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "carrel: %s\n", err);
        profile_free(&cli.profile);
        return EXIT_USAGE;
    }
    /* Text from the server is escaped on a terminal; desk mode draws its own. */
    if (strcmp(cmd->path, "desk") != 0)
        output_guard_terminals();
    /* The command sees its own name as argv[0], then its arguments. */
    int cargc = argc - optind - words + 1;
    char **cargv = argv + optind + words - 1;
    int code = take_request_key(&cli, &cargc, cargv);
    if (code == EXIT_OK && cmd->needs_login)
        code = cli_connect(&cli, true);
    if (code == EXIT_OK) {
        optind = 0; /* 0, not 1: glibc then resets its whole scanning state */
        code = cmd->run(&cli, cargc, cargv);
        if (cli.request_key && cli.keyed_sent == 0)
            fprintf(stderr, "carrel: --request-key was not used: this command sends no keyed "
                            "change\n");
    }
    if (cli.login_resp)
        carrel__response__free_unpacked(cli.login_resp, NULL);
    if (cli.connected || cli.conn.loop_ready)
        client_close(&cli.conn);
    profile_free(&cli.profile);
    return code;
}
