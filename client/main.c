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
#include "manpage.h"
#include "profile.h"

#define CARREL_VERSION "0.1.0"

/*
 * The command line as data: --help prints it for the terminal, the hidden
 * --man as the man page carrel.1 (meson generates it at build time), with the
 * command table (client/command.c) and the profile's settings (profile.c).
 */
static const char *const carrel_synopsis[] = {
    "[-c PROFILE] [--json] [--password-file FILE] COMMAND [ARGS]",
    NULL,
};

static const char carrel_description[] =
    "The Carrel desk client. The profile (default: $CARREL_PROFILE) names the\n"
    "server, its CA, this workstation and the staff user; the password is asked\n"
    "for, or read from --password-file, $CARREL_PASSWORD, or the profile's\n"
    "password_file / password_env.";

static const cli_option_t carrel_options[] = {
    {'c', "profile", "FILE", "connection profile"},
    {'j', "json", NULL, "machine-readable output (one JSON document)"},
    {0, "password-file", "F", "read the login password from F"},
    {0, "request-key", "UUID",
     "the request key of the command's first change\n"
     "(the n-th after it: UUID plus n), to run a command\n"
     "whose outcome is unknown again without applying it\n"
     "twice; also accepted after the command's name"},
    {'h', "help", NULL, "this help"},
    {'V', "version", NULL, "print the version"},
    CLI_OPTION_END,
};

static const struct {
    const char *code;
    const char *meaning;
} carrel_exit_codes[] = {
    {"0", "success"},
    {"1", "local error (unreadable file, bad input file)"},
    {"2", "usage error"},
    {"3", "authentication failed (wrong password, unknown workstation, throttled)"},
    {"4", "the server refused or failed the request (not found, forbidden,\n"
          "conflict, refused by a library rule, unavailable, ...)"},
    {"5", "network or TLS failure, or no answer in time"},
};

static void usage(FILE *out)
{
    cli_synopsis_print("carrel", carrel_synopsis, out);
    fprintf(out, "\n%s\n\n", carrel_description);
    fprintf(out, "Commands (carrel COMMAND --help, or carrel help COMMAND, for one):\n");
    command_list(out);
    fprintf(out, "\nOptions:\n");
    cli_options_print(carrel_options, out);
    fprintf(out, "\nExit codes:\n");
    for (size_t i = 0; i < sizeof(carrel_exit_codes) / sizeof(carrel_exit_codes[0]); i++) {
        fprintf(out, "  %s  ", carrel_exit_codes[i].code);
        for (const char *p = carrel_exit_codes[i].meaning; *p; p++) {
            if (*p == '\n')
                fputs("\n     ", out); /* under the meaning */
            else
                fputc(*p, out);
        }
        fputc('\n', out);
    }
}

/* carrel.1: the same tables as usage(), every command, and the profile's settings. */
static void man_page(FILE *out)
{
    const man_page_t page = {"carrel", "1", CARREL_VERSION, "the Carrel library desk client"};
    man_begin(out, &page);
    man_section(out, "SYNOPSIS");
    for (size_t i = 0; carrel_synopsis[i]; i++)
        man_synopsis(out, "carrel", carrel_synopsis[i]);
    man_section(out, "DESCRIPTION");
    man_paragraph(out, carrel_description);
    man_paragraph(out, "carrel COMMAND --help, or carrel help COMMAND, prints one command's "
                       "usage without reading the profile or connecting.");
    man_section(out, "OPTIONS");
    man_options(out, carrel_options);
    man_section(out, "COMMANDS");
    command_man(out);
    man_section(out, "PROFILE");
    man_paragraph(out, "The profile is a file of \"key = value\" lines ('#' starts a comment; a "
                       "value may be double-quoted). Relative paths in it are relative to the "
                       "profile's own directory. Its settings:");
    man_settings(out, profile_table, 0);
    man_section(out, "ENVIRONMENT");
    man_item(out, "CARREL_PROFILE", "the profile used without -c.");
    man_item(out, "CARREL_PASSWORD", "the login password, for scripts (after --password-file).");
    man_section(out, "EXIT STATUS");
    for (size_t i = 0; i < sizeof(carrel_exit_codes) / sizeof(carrel_exit_codes[0]); i++)
        man_item(out, carrel_exit_codes[i].code, carrel_exit_codes[i].meaning);
    man_section(out, "SEE ALSO");
    man_paragraph(out, "carreld(8)");
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

/*
 * "carrel help [COMMAND...]": the list, or one command's help. Returns the
 * exit code.
 */
static int help_command(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return EXIT_OK;
    }
    int words = 0;
    const command_t *cmd = command_find(argc - 1, argv + 1, &words);
    if (cmd == NULL || words != argc - 1) {
        fputs("carrel: no command '", stderr);
        for (int i = 1; i < argc; i++)
            fprintf(stderr, "%s%s", i > 1 ? " " : "", argv[i]);
        fprintf(stderr, "' (see carrel --help)\n");
        return EXIT_USAGE;
    }
    command_help(stdout, cmd);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    signal(SIGPIPE, SIG_IGN);
    cli_t cli;
    memset(&cli, 0, sizeof(cli));
    cli.profile_path = getenv("CARREL_PROFILE");

    enum { O_PWFILE = 256, O_REQUEST_KEY, O_MAN };
    static const struct option opts[] = {
        {"profile", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"password-file", required_argument, NULL, O_PWFILE},
        {"request-key", required_argument, NULL, O_REQUEST_KEY},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"man", no_argument, NULL, O_MAN}, /* hidden: meson makes carrel.1 with it */
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
        case O_MAN:
            man_page(stdout);
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
    if (strcmp(argv[optind], "help") == 0)
        return help_command(argc - optind, argv + optind);
    int words = 0;
    const command_t *cmd = command_find(argc - optind, argv + optind, &words);
    if (cmd == NULL) {
        fprintf(stderr, "carrel: unknown command '%s' (see carrel --help)\n", argv[optind]);
        return EXIT_USAGE;
    }
    /* Help is answered before the profile is read: it needs no server. */
    if (command_wants_help(argc - optind - words + 1, argv + optind + words - 1)) {
        command_help(stdout, cmd);
        return EXIT_OK;
    }
    char err[512];
    if (profile_load(&cli.profile, cli.profile_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "carrel: %s\n", err);
        profile_free(&cli.profile);
        return EXIT_USAGE;
    }
    /* Text from the server is escaped on a terminal; desk mode and the live view draw
     * their own (and escape what they print: tables, JSON). */
    if (strcmp(cmd->path, "desk") != 0 && strcmp(cmd->path, "stats live") != 0)
        output_guard_terminals();
    /* The command sees its own name as argv[0], then its arguments. */
    int cargc = argc - optind - words + 1;
    char **cargv = argv + optind + words - 1;
    int code = take_request_key(&cli, &cargc, cargv);
    if (code == EXIT_OK && cmd->needs_login)
        code = cli_connect(&cli, true);
    if (code == EXIT_OK) {
        optind = 0; /* 0, not 1: glibc then resets its whole scanning state */
        code = command_run(&cli, cmd, cargc, cargv);
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
