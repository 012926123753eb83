#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "password.h"
#include "reason.h"
#include "status.h"
#include "util.h"

int cli_status_exit(Carrel__Status status)
{
    /* The exit codes come from the status table (common/status.h). */
    _Static_assert(EXIT_OK == CARREL_EXIT_OK && EXIT_AUTH == CARREL_EXIT_AUTH &&
                       EXIT_SERVER == CARREL_EXIT_SERVER && EXIT_NETWORK == CARREL_EXIT_NETWORK &&
                       EXIT_LOCAL == CARREL_EXIT_LOCAL && EXIT_USAGE == CARREL_EXIT_USAGE,
                   "client/cli.h and common/status.h disagree on exit codes");
    return status_exit_code(status);
}

int cli_response_exit(const Carrel__Response *r)
{
    /* The reason table says which reasons have an exit code of their own;
     * the others (and answers without a reason) go by the status. */
    return reason_exit_code(reason_from_name(r->reason), (int)r->status);
}

cli_outcome_t *cli_outcome_new(cmd_call_t *call)
{
    return cmd_part(call, sizeof(cli_outcome_t)); /* zeroed: EXIT_OK */
}

void cli_outcome_note(const cmd_call_t *call, size_t made, size_t refused, const char *first_reason)
{
    cli_outcome_t *o = call->data;
    if (o == NULL)
        return;
    if (made > 0 || refused == 0) {
        o->code = EXIT_OK;
        return;
    }
    reason_t reason = reason_from_name(first_reason);
    o->code = reason_exit_code(reason, reason_status(reason));
}

int cli_outcome_finish(cli_t *cli, cmd_call_t *call, int code)
{
    (void)cli;
    const cli_outcome_t *o = call->data;
    return code == EXIT_OK && o ? o->code : code;
}

/*
 * Start the JSON object of a refusal or failure: an element of the batch's
 * array when a batch command is sending (naming what the element was), else
 * a document of its own in `own`. Every one starts with "ok": false.
 */
static json_t *cli_json_error_begin(cli_t *cli, json_t *own)
{
    json_t *j = cli->batch;
    if (j == NULL) {
        json_init(own);
        j = own;
    }
    json_object_begin(j);
    json_key(j, "ok");
    json_bool(j, false);
    if (cli->batch && cli->batch_key && cli->batch_subject) {
        json_key(j, cli->batch_key);
        json_string(j, cli->batch_subject);
    }
    return j;
}

/* End it, and print it when it is a document of its own. */
static void cli_json_error_end(cli_t *cli, json_t *j, json_t *own)
{
    (void)cli;
    json_object_end(j);
    if (j == own) {
        json_print(own, stdout);
        json_free(own);
    }
}

void cli_batch_begin(cli_t *cli, json_t *j)
{
    json_init(j);
    json_array_begin(j);
    if (cli->json)
        cli->batch = j;
}

void cli_batch_element(cli_t *cli, const char *key, const char *subject)
{
    cli->batch_key = key;
    cli->batch_subject = subject;
}

void cli_batch_end(cli_t *cli, json_t *j)
{
    json_array_end(j);
    if (cli->json)
        json_print(j, stdout);
    json_free(j);
    cli->batch = NULL;
    cli->batch_key = cli->batch_subject = NULL;
}

int cli_fail(cli_t *cli, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (cli->json) {
        json_t own;
        json_t *j = cli_json_error_begin(cli, &own);
        json_key(j, "status");
        json_string(j, code == EXIT_NETWORK ? "network_error"
                       : code == EXIT_USAGE ? "usage_error"
                                            : "local_error");
        json_key(j, "message");
        json_string(j, msg);
        cli_json_error_end(cli, j, &own);
    }
    char *safe = out_safe_line(msg); /* may quote the server, a file or an argument */
    fprintf(stderr, "carrel: %s\n", safe);
    free(safe);
    return code;
}

int cli_int_arg(cli_t *cli, const char *what, const char *text, int64_t min, int64_t max,
                int64_t *out)
{
    if (util_parse_int(text, min, max, out))
        return EXIT_OK;
    return cli_fail(cli, EXIT_USAGE, "%s must be a whole number from %lld to %lld, not \"%s\"",
                    what, (long long)min, (long long)max, text);
}

int cli_int32_arg(cli_t *cli, const char *what, const char *text, int32_t min, int32_t max,
                  int32_t *out)
{
    int64_t v;
    int code = cli_int_arg(cli, what, text, min, max, &v);
    if (code == EXIT_OK)
        *out = (int32_t)v;
    return code;
}

bool cli_has_option(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return true;
    return false;
}

void cli_print_json(const ProtobufCMessage *msg)
{
    json_t j;
    json_init(&j);
    json_message(&j, msg);
    json_print(&j, stdout);
    json_free(&j);
}

void cli_set_request_key(Carrel__Request *req, char key[37])
{
    if (util_uuid7(key) != 0) {
        fputs("carrel: no randomness available\n", stderr);
        exit(EXIT_LOCAL);
    }
    req->request_key = key;
}

int cli_set_request_key_arg(cli_t *cli, const char *key)
{
    if (!util_is_uuid(key))
        return cli_fail(cli, EXIT_USAGE,
                        "--request-key takes a UUID (8-4-4-4-12 hexadecimal digits), not \"%s\"",
                        key);
    cli->request_key = key;
    return EXIT_OK;
}

int cli_next_request_key(cli_t *cli, char key[37])
{
    if (cli->request_key == NULL) {
        if (util_uuid7(cli->generated_key) != 0)
            return cli_fail(cli, EXIT_LOCAL, "no randomness available for a request key");
        cli->request_key = cli->generated_key;
    }
    unsigned n = cli->keyed_sent++;
    /* K plus n in the last 12 hex digits (the node field), wrapping there. */
    for (int i = 0; i < 36; i++)
        key[i] = (char)tolower((unsigned char)cli->request_key[i]);
    key[36] = '\0';
    unsigned long long node = strtoull(key + 24, NULL, 16);
    node = (node + n) & 0xFFFFFFFFFFFFull;
    snprintf(key + 24, 13, "%012llx", node);
    return EXIT_OK;
}

/* Drop the connection and connect and log in again; an exit code. */
static int cli_reconnect(cli_t *cli)
{
    if (cli->connected || cli->conn.loop_ready)
        client_close(&cli->conn);
    cli->connected = false;
    cli->logged_in = false;
    if (cli->login_resp) {
        carrel__response__free_unpacked(cli->login_resp, NULL);
        cli->login_resp = NULL;
        cli->login = NULL;
    }
    return cli_connect(cli, true);
}

/* Answers that say the change was not made, or may have been: send it again. */
static bool cli_status_retryable(Carrel__Status s)
{
    return s == CARREL__STATUS__STATUS_UNAVAILABLE || s == CARREL__STATUS__STATUS_TOO_MANY_REQUESTS;
}

/* The outcome of a change is unknown: say how to finish the command safely. */
static void cli_print_rerun(const cli_t *cli)
{
    fprintf(stderr,
            "carrel: the outcome is not known: run the same command line again with "
            "--request-key %s to finish it without applying anything twice\n",
            cli->request_key);
}

int cli_call_keyed(cli_t *cli, Carrel__Request *req, Carrel__Response **out)
{
    char key[37];
    int code = cli_next_request_key(cli, key);
    if (code != EXIT_OK)
        return code;
    req->request_key = key;
    unsigned delay_ms = CLI_KEYED_FIRST_PAUSE_MS;
    for (int attempt = 1;; attempt++) {
        bool last = attempt >= CLI_KEYED_ATTEMPTS;
        Carrel__Response *r = NULL;
        const char *why = NULL;
        char reason[400];
        bool json = cli->json;
        cli->json = json && last; /* one JSON document: only the final error */
        code = cli->connected ? EXIT_OK : cli_reconnect(cli);
        cli->json = json;
        if (code != EXIT_OK) {
            if (code != EXIT_NETWORK || last) {
                cli_print_rerun(cli);
                return code;
            }
            why = "cannot reconnect";
        } else if (client_call(&cli->conn, req, &r) != 0) {
            /* Lost, or no answer in time: the change may or may not be made. */
            snprintf(reason, sizeof(reason), "%s", cli->conn.error);
            client_abort(&cli->conn, "no answer");
            client_close(&cli->conn);
            cli->connected = false;
            if (last) {
                code = cli_fail(cli, EXIT_NETWORK, "%s", reason);
                cli_print_rerun(cli);
                return code;
            }
            why = reason;
        } else if (cli_status_retryable(r->status) && !last) {
            snprintf(reason, sizeof(reason), "%s", r->message ? r->message : "unavailable");
            carrel__response__free_unpacked(r, NULL);
            why = reason;
        } else if (r->status != CARREL__STATUS__STATUS_OK) {
            cli_print_status_error(cli, r);
            code = cli_response_exit(r);
            if (cli_status_retryable(r->status))
                cli_print_rerun(cli);
            carrel__response__free_unpacked(r, NULL);
            return code;
        } else {
            *out = r;
            return EXIT_OK;
        }
        fprintf(stderr,
                "carrel: %s; sending again with the same request key in %.1f s (%d of %d)\n", why,
                delay_ms / 1000.0, attempt + 1, CLI_KEYED_ATTEMPTS);
        uv_sleep(delay_ms);
        delay_ms = delay_ms * 2 > CLI_KEYED_MAX_PAUSE_MS ? CLI_KEYED_MAX_PAUSE_MS : delay_ms * 2;
    }
}

const ProtobufCMessage *cli_response_body(const Carrel__Response *r, const char **name)
{
    const ProtobufCFieldDescriptor *f =
        r->body_case != CARREL__RESPONSE__BODY__NOT_SET
            ? protobuf_c_message_descriptor_get_field(&carrel__response__descriptor,
                                                      (unsigned)r->body_case)
            : NULL;
    if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return NULL;
    if (name)
        *name = f->name;
    return *(ProtobufCMessage *const *)((const char *)r + f->offset);
}

void cli_print_status_error(cli_t *cli, const Carrel__Response *r)
{
    const char *msg = r->message && r->message[0] ? r->message : "(no message)";
    if (cli->json) {
        json_t own;
        json_t *j = cli_json_error_begin(cli, &own);
        json_key(j, "status");
        json_string(j, status_name(r->status));
        if (r->reason && r->reason[0]) {
            json_key(j, "reason");
            json_string(j, r->reason);
        }
        json_key(j, "message");
        json_string(j, msg);
        if (r->has_overridable) {
            json_key(j, "overridable");
            json_bool(j, r->overridable);
        }
        /* A refusal may carry a body (e.g. the current record of a conflict),
         * under its field name as in an OK response. */
        const char *name = NULL;
        const ProtobufCMessage *body = cli_response_body(r, &name);
        if (body) {
            json_key(j, name);
            json_message(j, body);
        }
        cli_json_error_end(cli, j, &own);
    }
    /* The server's words, quoting what was stored: escaped, as all text printed. */
    char *safe_msg = out_safe_line(msg);
    if (r->reason && r->reason[0]) {
        char *safe_reason = out_safe_line(r->reason);
        fprintf(stderr, "carrel: %s (%s): %s%s\n", status_name(r->status), safe_reason, safe_msg,
                r->has_overridable && r->overridable ? " [can be overridden]" : "");
        free(safe_reason);
    } else {
        fprintf(stderr, "carrel: %s: %s\n", status_name(r->status), safe_msg);
    }
    free(safe_msg);
}

int cli_call(cli_t *cli, Carrel__Request *req, Carrel__Response **out)
{
    Carrel__Response *r = NULL;
    if (client_call(&cli->conn, req, &r) != 0)
        return cli_fail(cli, EXIT_NETWORK, "%s", cli->conn.error);
    if (r->status != CARREL__STATUS__STATUS_OK) {
        cli_print_status_error(cli, r);
        int code = cli_response_exit(r);
        carrel__response__free_unpacked(r, NULL);
        return code;
    }
    *out = r;
    return EXIT_OK;
}

int cli_call_keep(cli_t *cli, Carrel__Request *req, Carrel__Response **out)
{
    Carrel__Response *r = NULL;
    *out = NULL;
    if (client_call(&cli->conn, req, &r) != 0)
        return cli_fail(cli, EXIT_NETWORK, "%s", cli->conn.error);
    *out = r;
    if (r->status != CARREL__STATUS__STATUS_OK) {
        cli_print_status_error(cli, r);
        return cli_response_exit(r);
    }
    return EXIT_OK;
}

/* The password for login, from the first source that has one. */
static char *cli_password(cli_t *cli, int *code)
{
    const char *file = cli->password_file;
    char *pw = NULL;
    if (file) {
        if ((pw = password_from_file(file)) == NULL)
            *code = cli_fail(cli, EXIT_LOCAL, "cannot read the password file %s", file);
        return pw;
    }
    const char *env = getenv("CARREL_PASSWORD");
    if (env == NULL && cli->profile.password_env)
        env = getenv(cli->profile.password_env);
    if (env)
        return util_xstrdup(env);
    if (cli->profile.password_file) {
        if ((pw = password_from_file(cli->profile.password_file)) == NULL)
            *code = cli_fail(cli, EXIT_LOCAL, "cannot read the password file %s",
                             cli->profile.password_file);
        return pw;
    }
    char prompt[128];
    snprintf(prompt, sizeof(prompt), "Password for %s: ", cli->profile.user);
    if ((pw = password_prompt(prompt)) == NULL)
        *code = cli_fail(cli, EXIT_USAGE,
                         "no password: no terminal to ask on, and no password_file, "
                         "password_env or CARREL_PASSWORD");
    return pw;
}

void cli_forget_password(cli_t *cli)
{
    if (cli->password) {
        password_free(cli->password);
        cli->password = NULL;
    }
    OPENSSL_cleanse(cli->token, sizeof(cli->token));
    cli->token_user[0] = '\0';
}

/*
 * Saved sessions. With keep_session, a password login asks for a session
 * token and keeps it in "<profile>.session" (mode 0600, written to a new
 * file and renamed over the old one), with the workstation and user it was
 * issued for and when it expires. The next commands log in with it instead
 * of the password; the server refuses it once it has expired or was
 * revoked (logout, password change, disabled account), and the command then
 * asks for the password again.
 */
typedef struct cli_saved {
    char workstation[72];
    char user[40];
    char token[80];
    int64_t expires_ms;
} cli_saved_t;

/* path + suffix, malloc'd; out of memory ends the command. */
static char *cli_path_join(const char *path, const char *suffix)
{
    size_t n = strlen(path) + strlen(suffix) + 1;
    char *out = malloc(n);
    if (out == NULL) {
        fputs("carrel: out of memory\n", stderr);
        exit(EXIT_LOCAL);
    }
    snprintf(out, n, "%s%s", path, suffix);
    return out;
}

/* True when commands keep and use a saved session (see keep_session in profile.c). */
static bool cli_session_wanted(const cli_t *cli)
{
    if (cli->profile_path == NULL || cli->keep_password)
        return false; /* desk mode keeps its password to log in again */
    const char *k = cli->profile.keep_session ? cli->profile.keep_session : "auto";
    if (strcmp(k, "yes") == 0)
        return true;
    if (strcmp(k, "no") == 0)
        return false;
    /* auto: a script that has the password anyway keeps no token lying around. */
    const char *env = getenv("CARREL_PASSWORD");
    if (env == NULL && cli->profile.password_env)
        env = getenv(cli->profile.password_env);
    return cli->password_file == NULL && env == NULL && cli->profile.password_file == NULL;
}

char *cli_session_path(const cli_t *cli)
{
    if (cli->profile_path == NULL)
        return NULL;
    return cli_path_join(cli->profile_path, ".session");
}

void cli_session_forget(const cli_t *cli)
{
    char *path = cli_session_path(cli);
    if (path && unlink(path) != 0 && errno != ENOENT)
        fprintf(stderr, "carrel: cannot remove %s: %s\n", path, strerror(errno));
    free(path);
}

/* Read the saved session; false if there is none usable for this profile. */
static bool cli_session_load(const cli_t *cli, cli_saved_t *out)
{
    memset(out, 0, sizeof(*out));
    char *path = cli_session_path(cli);
    if (path == NULL)
        return false;
    struct stat st;
    bool ok = false;
    if (stat(path, &st) != 0) {
        free(path);
        return false;
    }
    if ((st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
        fprintf(stderr, "carrel: ignoring %s: it must belong to you and have mode 0600\n", path);
        free(path);
        return false;
    }
    char *text = util_read_file(path, 4096);
    free(path);
    if (text == NULL)
        return false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char key[32], value[100];
        if (sscanf(line, "%31s = %99s", key, value) != 2)
            continue;
        if (strcmp(key, "workstation") == 0)
            util_strlcpy(out->workstation, value, sizeof(out->workstation));
        else if (strcmp(key, "user") == 0)
            util_strlcpy(out->user, value, sizeof(out->user));
        else if (strcmp(key, "token") == 0)
            util_strlcpy(out->token, value, sizeof(out->token));
        else if (strcmp(key, "expires_ms") == 0)
            out->expires_ms = strtoll(value, NULL, 10);
    }
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    /* Only for the workstation and user it was issued to, and only while it lasts. */
    ok = out->token[0] && strcmp(out->workstation, cli->profile.workstation) == 0 &&
         strcmp(out->user, cli->profile.user) == 0 && out->expires_ms > util_now_ms();
    if (!ok)
        OPENSSL_cleanse(out, sizeof(*out));
    return ok;
}

/* Keep the token of a LoginReply in the session file (mode 0600). */
static void cli_session_save(const cli_t *cli, const Carrel__LoginReply *r)
{
    char *path = cli_session_path(cli);
    if (path == NULL || r->session_token == NULL || !r->has_session_expires_ms) {
        free(path);
        return;
    }
    char *tmp = cli_path_join(path, ".new");
    char text[400];
    int len =
        snprintf(text, sizeof(text), "workstation = %s\nuser = %s\ntoken = %s\nexpires_ms = %lld\n",
                 cli->profile.workstation, cli->profile.user, r->session_token,
                 (long long)r->session_expires_ms);
    (void)unlink(tmp); /* a leftover from a crash; O_EXCL below refuses to follow anything */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && len > 0 && (size_t)len < sizeof(text) && fchmod(fd, 0600) == 0 &&
              write(fd, text, (size_t)len) == len;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "carrel: cannot save the session in %s: %s\n", path, strerror(errno));
        (void)unlink(tmp);
    }
    OPENSSL_cleanse(text, sizeof(text));
    free(tmp);
    free(path);
}

/*
 * Logins the server is too busy for (UNAVAILABLE `password_queue`: the
 * password checks ahead would pass the login deadline; `overloaded`) are sent
 * again on the same connection after the server's retry_after_ms, or with
 * exponential backoff and jitter without one (client_retry_delay_ms); a
 * connection closed meanwhile is opened again (resuming its TLS session). At
 * most CLI_LOGIN_RETRIES times and CLI_LOGIN_WAIT_MAX_MS of waiting in all:
 * then the refusal is the answer. The person at the desk is told each time.
 */
#define CLI_LOGIN_RETRIES     12
#define CLI_LOGIN_WAIT_MAX_MS (5u * 60 * 1000)
/* A login may wait for its turn at the password checks up to the server's
 * login deadline (login_timeout_s, 30 s by default): wait longer than that. */
#define CLI_LOGIN_EXTRA_MS 30000u

static bool cli_login_busy(const Carrel__Response *r)
{
    return r->status == CARREL__STATUS__STATUS_UNAVAILABLE && r->reason &&
           (strcmp(r->reason, "password_queue") == 0 || strcmp(r->reason, "overloaded") == 0);
}

static void cli_login_waiting(const cli_t *cli, uint32_t ms, int attempt, const char *why)
{
    if (cli->quiet)
        return;
    fprintf(stderr, "carrel: %s; logging in again in %u.%u s (attempt %d of %d)\n", why, ms / 1000,
            ms % 1000 / 100, attempt + 2, CLI_LOGIN_RETRIES + 1);
}

/* Connect again after the server closed the connection while we waited. */
static int cli_reopen(cli_t *cli)
{
    client_close(&cli->conn);
    client_target_t t = cli_target(cli);
    if (client_open(&cli->conn, &t) != 0) {
        cli->connected = false;
        return cli_fail(cli, EXIT_NETWORK, "%s", cli->conn.error);
    }
    return EXIT_OK;
}

/* Send a Login; the raw response (any status) in *out, or an exit code for no answer. */
static int cli_send_login(cli_t *cli, const char *password, const char *token, bool want_token,
                          Carrel__Response **out)
{
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__Login l = CARREL__LOGIN__INIT;
    l.workstation = cli->profile.workstation;
    l.username = cli->profile.user;
    l.password = (char *)password;
    l.session_token = (char *)token;
    if (want_token) {
        l.has_want_session_token = 1;
        l.want_session_token = 1;
    }
    req.body_case = CARREL__REQUEST__BODY_LOGIN;
    req.login = &l;
    uint64_t waited = 0;
    for (int attempt = 0;; attempt++) {
        *out = NULL;
        uint64_t timeout = cli->conn.timeout_ms;
        cli->conn.timeout_ms = timeout + CLI_LOGIN_EXTRA_MS;
        int rc = client_call(&cli->conn, &req, out);
        cli->conn.timeout_ms = timeout;
        bool closed = rc != 0 && cli->conn.closed && !cli->conn.timed_out;
        bool busy = rc == 0 && cli_login_busy(*out);
        if (rc != 0 && !closed)
            return cli_fail(cli, EXIT_NETWORK, "%s", cli->conn.error);
        uint32_t after = busy && (*out)->has_retry_after_ms ? (*out)->retry_after_ms : 0;
        uint32_t delay = client_retry_delay_ms(attempt, after, client_random_unit());
        if ((!busy && !closed) || attempt >= CLI_LOGIN_RETRIES ||
            waited + delay > CLI_LOGIN_WAIT_MAX_MS) {
            if (closed)
                return cli_fail(cli, EXIT_NETWORK, "%s", cli->conn.error);
            if (busy && after > 0 && !cli->quiet) /* past our window: say when, not just no */
                fprintf(stderr,
                        "carrel: the server is busy checking other logins and expects to take "
                        "logins again in %u s\n",
                        (after + 999) / 1000);
            return EXIT_OK; /* the answer, busy or not */
        }
        cli_login_waiting(cli, delay, attempt,
                          busy ? "the server is busy checking other logins"
                               : "the connection closed while logging in");
        if (*out) {
            carrel__response__free_unpacked(*out, NULL);
            *out = NULL;
        }
        client_sleep(&cli->conn, delay);
        waited += delay;
        if (cli->conn.closed) {
            int code = cli_reopen(cli);
            if (code != EXIT_OK)
                return code;
        }
    }
}

static void cli_logged_in(cli_t *cli, Carrel__Response *r)
{
    cli->logged_in = true;
    cli->login_resp = r;
    cli->login = r->login;
}

/*
 * Log in with a session token. Returns EXIT_OK when logged in, -1 when the
 * server says the session has ended, or another exit code after a refusal
 * that was printed.
 */
static int cli_login_token(cli_t *cli, const char *token)
{
    Carrel__Response *r = NULL;
    int code = cli_send_login(cli, NULL, token, false, &r);
    if (code != EXIT_OK)
        return code;
    if (r->status == CARREL__STATUS__STATUS_OK) {
        cli_logged_in(cli, r);
        return EXIT_OK;
    }
    bool ended = r->status == CARREL__STATUS__STATUS_UNAUTHENTICATED;
    if (!ended) { /* throttled, unavailable, ...: the password would fare no better */
        cli_print_status_error(cli, r);
        code = cli_response_exit(r);
        carrel__response__free_unpacked(r, NULL);
        return code == EXIT_SERVER ? EXIT_AUTH : code;
    }
    carrel__response__free_unpacked(r, NULL);
    return -1;
}

/*
 * Log in with the saved session. Returns EXIT_OK when logged in, -1 when
 * there is no usable saved session (or the server says it has ended: the
 * file is removed), or another exit code after a refusal that was printed.
 */
static int cli_login_saved(cli_t *cli)
{
    cli_saved_t saved;
    if (!cli_session_load(cli, &saved))
        return -1;
    int code = cli_login_token(cli, saved.token);
    OPENSSL_cleanse(&saved, sizeof(saved));
    if (code == -1)
        cli_session_forget(cli);
    return code;
}

/*
 * Desk mode's token from its last password login: a reconnect logs in with it
 * (no Argon2 check, so a branch's desks coming back together do not queue for
 * the password checks). -1 when there is none for this user or it has ended.
 */
static int cli_login_kept(cli_t *cli)
{
    if (!cli->keep_password || cli->token[0] == '\0' ||
        strcmp(cli->token_user, cli->profile.user) != 0)
        return -1;
    int code = cli_login_token(cli, cli->token);
    if (code == -1) {
        OPENSSL_cleanse(cli->token, sizeof(cli->token));
        cli->token_user[0] = '\0';
    }
    return code;
}

/* Keep desk mode's token in memory (see cli_login_kept). */
static void cli_keep_token(cli_t *cli, const Carrel__LoginReply *r)
{
    if (!cli->keep_password || r->session_token == NULL ||
        strlen(r->session_token) >= sizeof(cli->token))
        return;
    util_strlcpy(cli->token, r->session_token, sizeof(cli->token));
    util_strlcpy(cli->token_user, cli->profile.user, sizeof(cli->token_user));
}

client_target_t cli_target(const cli_t *cli)
{
    return (client_target_t){
        .host = cli->profile.host,
        .port = (int)cli->profile.port,
        .server_name = cli->profile.server_name,
        .ca_file = cli->profile.ca_file,
        .cert_file = cli->profile.cert_file,
        .key_file = cli->profile.key_file,
        .timeout_s = (int)cli->profile.timeout_s,
    };
}

int cli_connect(cli_t *cli, bool login)
{
    if (!cli->connected) {
        if (cli->profile.ca_file == NULL)
            return cli_fail(cli, EXIT_USAGE, "the profile names no ca_file (use -c PROFILE)");
        client_target_t t = cli_target(cli);
        if (client_open(&cli->conn, &t) != 0)
            return cli_fail(cli, EXIT_NETWORK, "%s", cli->conn.error);
        cli->connected = true;
    }
    if (!login || cli->logged_in)
        return EXIT_OK;
    if (cli->profile.workstation == NULL || cli->profile.user == NULL)
        return cli_fail(cli, EXIT_USAGE, "the profile must name a workstation and a user");
    bool keep = cli_session_wanted(cli);
    int kept = cli_login_kept(cli);
    if (kept != -1)
        return kept;
    if (keep) {
        int saved = cli_login_saved(cli);
        if (saved != -1)
            return saved;
    }
    int code = EXIT_OK;
    char *pw = cli->password ? cli->password : cli_password(cli, &code);
    if (pw == NULL)
        return code;
    if (cli->keep_password)
        cli->password = pw;
    Carrel__Response *r = NULL;
    code = cli_send_login(cli, pw, NULL, keep || cli->keep_password, &r);
    if (pw != cli->password)
        password_free(pw);
    if (code != EXIT_OK)
        return code;
    if (r->status != CARREL__STATUS__STATUS_OK) {
        cli_print_status_error(cli, r);
        code = cli_response_exit(r);
        carrel__response__free_unpacked(r, NULL);
        return code == EXIT_SERVER ? EXIT_AUTH : code; /* a refused login is an auth failure */
    }
    cli_logged_in(cli, r);
    if (keep)
        cli_session_save(cli, r->login);
    cli_keep_token(cli, r->login);
    return EXIT_OK;
}

bool cli_session_saved(const cli_t *cli)
{
    char *path = cli_session_path(cli);
    struct stat st;
    bool have = path && stat(path, &st) == 0;
    free(path);
    return have;
}

int cli_session_login(cli_t *cli)
{
    return cli_login_saved(cli);
}
