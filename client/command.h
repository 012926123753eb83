/*
 * command: the client's commands as data. Each command is one table entry:
 * its words ("hold place"), the arguments it takes (usage, also its flags),
 * a one-line summary, whether it needs a login, and either
 *
 *   - for a command of one request: a request builder (the command line
 *     into a Request), how it is sent (a read, a keyed change retried with
 *     its key, or a change sent once), and a printer per output mode (text;
 *     JSON defaults to the response body as it is), so that build -> call ->
 *     print -> free is written once, in command_run(). A command whose
 *     request needs more than its command line adds small steps: prepare
 *     (a password asked for, the current record read before an edit, the
 *     connection for a command without login), print_refused (the body a
 *     refusal carries, for people) and finish (what follows the answer,
 *     whatever it was: the saved session forgotten); or
 *   - run: a command with its own flow (several requests: batches, imports
 *     and exports, events, desk mode).
 *
 * Every command answers `carrel COMMAND --help` and `carrel help COMMAND`
 * with its own usage, without reading the profile or connecting.
 */
#ifndef CARREL_COMMAND_H
#define CARREL_COMMAND_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "carrel.pb-c.h"

typedef struct cli cli_t;
typedef struct command command_t;

/* How a one-request command sends its request. */
typedef enum {
    CMD_SEND_READ = 0, /* a read: sent once (cli_call) */
    CMD_SEND_KEYED,    /* a keyed change: retried with its key (cli_call_keyed) */
    CMD_SEND_ONCE,     /* a change that is not keyed: a fresh key, sent once */
} cmd_send_t;

#define CMD_CALL_PARTS 8

/* One request being built, sent and printed; what the builder leaves for the printer. */
typedef struct cmd_call {
    const command_t *cmd;
    Carrel__Request req;
    int argc; /* the command line, argv[0] being the command's last word */
    char **argv;
    int64_t number;                /* a value from the command line that the printer says back */
    const char *subject;           /* likewise: the card, barcode or name acted on */
    void *data;                    /* what the builder leaves for prepare (from cmd_part) */
    int repeat;                    /* sends of the request (0: one); prepare runs before each */
    int round;                     /* which send this is, from 0 */
    bool nothing_to_send;          /* set by prepare: done without a request (printed as done) */
    uint64_t sent_ns, answered_ns; /* monotonic: when the request went out and its answer came */
    void *parts[CMD_CALL_PARTS];   /* allocations freed after the call (cmd_part) */
    size_t nparts;
    char *secrets[2]; /* passwords wiped and freed after the call (cmd_secret) */
    size_t nsecrets;
    Carrel__Response *held[2]; /* answers the request points into (cmd_hold), freed after */
    size_t nheld;
} cmd_call_t;

struct command {
    const char *path; /* "admin staff add" */
    int (*run)(cli_t *cli, int argc, char **argv);
    bool needs_login;
    const char *usage;   /* arguments after the path */
    const char *summary; /* one line */
    /* A command of one request sets these three (and run to NULL). */
    int (*build)(cli_t *cli, int argc, char **argv, cmd_call_t *call);
    cmd_send_t send;
    void (*print_text)(const cmd_call_t *call, const Carrel__Response *r);
    /* JSON printer when the body as it is will not do (NULL: the body). */
    void (*print_json)(const cmd_call_t *call, const Carrel__Response *r);
    /* More help after usage and summary (desk mode's own commands). */
    void (*help)(FILE *out);
    /*
     * Optional steps around the one request. prepare runs after build and
     * before each send (call->round): what the request needs from the
     * terminal, a file or the server; it returns EXIT_OK or an exit code
     * (printed). print_refused prints the body a refusal carries, for people
     * (the request is then sent with cli_call_keep; JSON has the body in the
     * refusal already). finish runs once the answer is in, whatever it was,
     * with the exit code so far, and returns the exit code.
     */
    int (*prepare)(cli_t *cli, cmd_call_t *call);
    void (*print_refused)(const cmd_call_t *call, const Carrel__Response *r);
    int (*finish)(cli_t *cli, cmd_call_t *call, int code);
};

/* Zeroed memory of `size` bytes, freed when the call is done; aborts when out of memory. */
void *cmd_part(cmd_call_t *call, size_t size);
/* "a,b,c" into a list of at most `max` items kept with the call (a --branch or --by
 * option); false when an item is empty, there are too many, or the call has no part
 * left for it (the option given again and again). One copy for every command. */
bool cmd_split(cmd_call_t *call, const char *text, size_t max, char ***out, size_t *n);
/* Keep a password until the call is done, then wipe and free it (password_free). */
void cmd_secret(cmd_call_t *call, char *password);
/* Keep an answer the request points into (the record read before an edit) until the call is done.
 */
void cmd_hold(cmd_call_t *call, Carrel__Response *r);
/*
 * Set the request's body to a new `field` message (freed with the call),
 * initialised by init_fn, and yield it:
 *   Carrel__AccountGet *g = CMD_BODY(call, account_get, ACCOUNT_GET, carrel__account_get__init);
 */
#define CMD_BODY(call, field, CASE, init_fn)                                                       \
    __extension__({                                                                                \
        (call)->req.body_case = CARREL__REQUEST__BODY_##CASE;                                      \
        (call)->req.field = cmd_part((call), sizeof(*(call)->req.field));                          \
        init_fn((call)->req.field);                                                                \
        (call)->req.field;                                                                         \
    })

/* "usage: PATH USAGE" as a usage error (EXIT_USAGE, with --json as JSON too). */
int cmd_usage(cli_t *cli, const cmd_call_t *call);
/*
 * The arguments of a command that takes [--branch B] [--week W] and nothing
 * else (a week grid): each into its field, left alone when not given.
 * EXIT_OK, or cmd_usage's exit code.
 */
int cmd_branch_week(cli_t *cli, int argc, char **argv, const cmd_call_t *call, char **branch,
                    char **week);
/*
 * Run a command: its own run, or build -> [prepare] -> send -> print (or
 * print_refused) -> [finish] -> free, the middle `repeat` times. Returns an
 * exit code.
 */
int command_run(cli_t *cli, const command_t *cmd, int argc, char **argv);
/* The command whose words match the most leading arguments (their count in *words). */
const command_t *command_find(int argc, char **argv, int *words);
/* "  PATH USAGE\n      SUMMARY\n" for every command. */
void command_list(FILE *out);
/* Every command as a tagged paragraph of the man page (common/manpage.h): path and
 * usage, then its summary. */
void command_man(FILE *out);
/* A command's own help: usage, summary and any more. */
void command_help(FILE *out, const command_t *cmd);
/* True when the command's arguments ask for help ("--help" before any "--"). */
bool command_wants_help(int argc, char **argv);
/* The response's body as JSON on stdout (the default JSON printer). */
void cmd_print_body_json(const cmd_call_t *call, const Carrel__Response *r);

/* Per-module command tables, ended by {NULL}. */
extern const command_t core_commands[];
extern const command_t admin_commands[];
extern const command_t catalog_commands[];
extern const command_t patron_commands[];
extern const command_t circ_commands[];
extern const command_t holds_commands[];
extern const command_t notices_commands[];
extern const command_t desk_commands[];
extern const command_t stats_commands[];
extern const command_t report_commands[];
extern const command_t rooms_commands[];
extern const command_t schedule_commands[];
extern const command_t service_commands[];
extern const command_t tickets_commands[];
extern const command_t weeding_commands[];
extern const command_t displays_commands[];
extern const command_t offline_commands[];
extern const command_t status_commands[];
extern const command_t cert_commands[];
extern const command_t server_commands[];

#endif
