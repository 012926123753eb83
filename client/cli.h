/*
 * cli: what every command shares: the profile, the connection, output mode,
 * exit codes, and calling the server with uniform error reporting.
 */
#ifndef CARREL_CLI_H
#define CARREL_CLI_H

#include <stdbool.h>

#include "carrel.pb-c.h"
#include "command.h"
#include "json.h"
#include "output.h"
#include "profile.h"
#include "session.h"

/* Exit codes, documented in `carrel --help`. */
enum {
    EXIT_OK = 0,
    EXIT_LOCAL = 1,   /* a local problem: unreadable file, bad data in it */
    EXIT_USAGE = 2,   /* wrong command line */
    EXIT_AUTH = 3,    /* login refused (credentials, workstation, throttled) */
    EXIT_SERVER = 4,  /* the server refused or failed the request */
    EXIT_NETWORK = 5, /* cannot reach the server, TLS failure, timeout */
};

/* Sends of one keyed change at most, and the pauses between them (doubling). */
#define CLI_KEYED_ATTEMPTS       6
#define CLI_KEYED_FIRST_PAUSE_MS 500
#define CLI_KEYED_MAX_PAUSE_MS   8000

typedef struct cli {
    profile_t profile;
    const char *profile_path;
    const char *password_file; /* --password-file */
    bool json;
    bool quiet;
    client_t conn;
    bool connected;
    bool logged_in;
    Carrel__LoginReply *login; /* who we are, after login */
    Carrel__Response *login_resp;
    /* Desk mode logs in again after a lost connection: with keep_password set,
     * cli_connect keeps the password here (wiped by cli_forget_password). */
    bool keep_password;
    char *password;
    /* With keep_password, the session token of the last password login (for
     * user token_user), kept in memory only: a reconnect logs in with it and
     * no Argon2 check (wiped by cli_forget_password). */
    char token[80];
    char token_user[40];
    /* The key of the command's first keyed change, from --request-key or
     * made up (into generated_key) when the first one is sent; the n-th
     * further one uses it plus n (cli_next_request_key). */
    const char *request_key;
    unsigned keyed_sent;
    char generated_key[37];
    /* A batch command's JSON array (cli_batch_begin): a refusal or failure of
     * one element is written into it as an element, naming what was acted on
     * (batch_key: batch_subject), instead of as a document of its own. */
    json_t *batch;
    const char *batch_key;
    const char *batch_subject;
} cli_t;

/* Connect (and log in unless login is false). Returns an exit code. */
int cli_connect(cli_t *cli, bool login);
/* Where the profile says to connect, with its TLS files and timeout. */
client_target_t cli_target(const cli_t *cli);
/* True when the profile has a saved session file (keep_session). */
bool cli_session_saved(const cli_t *cli);
/*
 * Log in with the saved session (to end it with Logout). Returns EXIT_OK
 * when logged in, -1 when there is no usable one (or the server says it has
 * ended: the file is removed), or another exit code after a refusal that
 * was printed.
 */
int cli_session_login(cli_t *cli);
/* "<profile>.session" (malloc'd), or NULL without a profile file. */
char *cli_session_path(const cli_t *cli);
/* Remove the session file (e.g. after one's own password change revoked it). */
void cli_session_forget(const cli_t *cli);
/* Wipe and free a password kept for keep_password. */
void cli_forget_password(cli_t *cli);
/*
 * Send a request and wait. On an OK status returns EXIT_OK and the response
 * (free with carrel__response__free_unpacked); otherwise prints the error
 * (as JSON with --json) and returns the exit code for it.
 */
int cli_call(cli_t *cli, Carrel__Request *req, Carrel__Response **resp);
/*
 * Like cli_call, but the response is returned in *out whenever one arrived,
 * also after a refusal (whose error has been printed): some refusals carry a
 * body, such as the current record with a stale-version conflict. The caller
 * frees *out; it is NULL when no response arrived.
 */
int cli_call_keep(cli_t *cli, Carrel__Request *req, Carrel__Response **out);
/* Print a local error and return `code`. */
int cli_fail(cli_t *cli, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * Parse a command-line number (`what` names it in the error) in [min, max].
 * Returns EXIT_OK, or prints a usage error and returns EXIT_USAGE.
 */
int cli_int_arg(cli_t *cli, const char *what, const char *text, int64_t min, int64_t max,
                int64_t *out);
/* Same for 32-bit protobuf fields. */
int cli_int32_arg(cli_t *cli, const char *what, const char *text, int32_t min, int32_t max,
                  int32_t *out);
/*
 * True when an argument after the command name looks like an option
 * ("-x", "--xyz"): for commands that take only positional arguments, so that
 * "--bogus" is a usage error and not sent to the server as a barcode.
 */
bool cli_has_option(int argc, char **argv);
/* Print a message (the response body) as JSON on stdout. */
void cli_print_json(const ProtobufCMessage *msg);
/* Set a fresh UUID as the request's idempotency key. */
void cli_set_request_key(Carrel__Request *req, char key[37]);
/*
 * The key for the command's next keyed change: K for the first and K plus n
 * (in its last 12 hex digits) for the n-th after it, K being --request-key
 * or else a fresh UUID, so that the same command line run again with
 * --request-key K sends the same keys. Returns EXIT_OK or an exit code
 * (printed).
 */
int cli_next_request_key(cli_t *cli, char key[37]);
/*
 * Send a keyed change (PROTOCOL.md, "Request keys") and wait, as cli_call
 * does, but retry with the same request key, which the server applies at
 * most once: after a lost connection or no answer in time (connecting and
 * logging in again) and after UNAVAILABLE or TOO_MANY_REQUESTS, up to
 * CLI_KEYED_ATTEMPTS sends with a growing pause between them. When the
 * outcome stays unknown, the key is printed so that the command can be run
 * again with --request-key.
 */
int cli_call_keyed(cli_t *cli, Carrel__Request *req, Carrel__Response **out);
/* Check the form of a --request-key argument. Returns EXIT_OK or EXIT_USAGE (printed). */
int cli_set_request_key_arg(cli_t *cli, const char *key);
/* Report a non-OK response (JSON on stdout with --json, a sentence on stderr). */
void cli_print_status_error(cli_t *cli, const Carrel__Response *r);
/* The response's body message (its field name in *name when not NULL), or NULL. */
const ProtobufCMessage *cli_response_body(const Carrel__Response *r, const char **name);
/*
 * Batch commands (checkout, checkin, renew, item use) answer --json with one
 * array whose elements each carry their outcome: the reply with "ok": true
 * (output_json_element), or a refusal {"ok": false, "status", "reason",
 * "message", KEY: SUBJECT, ...}.
 * cli_batch_begin starts the array (with --json); cli_batch_element names
 * the element being sent; cli_batch_end prints the array and frees it.
 */
void cli_batch_begin(cli_t *cli, json_t *j);
void cli_batch_element(cli_t *cli, const char *key, const char *subject);
void cli_batch_end(cli_t *cli, json_t *j);
/* Exit code for a non-OK status. */
int cli_status_exit(Carrel__Status status);
/* The exit code for an answer: its reason's (common/reason.h), else its status's. */
int cli_response_exit(const Carrel__Response *r);
/*
 * A recurring change (a booking or session series, weekly shifts) answers
 * with the occurrences made and refused: its exit code is 0 when at least
 * one was made, else the first refusal's (common/reason.h). The builder
 * sets call->data = cli_outcome_new(call), the printers (text and JSON)
 * call cli_outcome_note with the answer, and the command's finish is
 * cli_outcome_finish.
 */
typedef struct cli_outcome {
    int code; /* EXIT_OK until an answer with nothing made */
} cli_outcome_t;
cli_outcome_t *cli_outcome_new(cmd_call_t *call);
void cli_outcome_note(const cmd_call_t *call, size_t made, size_t refused,
                      const char *first_reason);
int cli_outcome_finish(cli_t *cli, cmd_call_t *call, int code);

/* Shared between command families. */
int cmd_checkin(cli_t *cli, int argc, char **argv);
/* A checkin's line for people (cmd_displays.c): route "display" says PUT BACK ON DISPLAY. */
const char *checkin_display_line(char *out, size_t n, const Carrel__CheckinReply *c);

#endif
