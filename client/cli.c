#include "cli.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "password.h"
#include "status.h"
#include "util.h"

int cli_status_exit(Carrel__Status status)
{
    switch (status) {
    case CARREL__STATUS__STATUS_OK:
        return EXIT_OK;
    case CARREL__STATUS__STATUS_UNAUTHENTICATED:
        return EXIT_AUTH;
    case CARREL__STATUS__STATUS_UNSUPPORTED_VERSION:
        return EXIT_NETWORK;
    default:
        return EXIT_SERVER;
    }
}

int cli_fail(cli_t *cli, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (cli->json) {
        json_t j;
        json_init(&j);
        json_object_begin(&j);
        json_key(&j, "status");
        json_string(&j, code == EXIT_NETWORK ? "network_error"
                        : code == EXIT_USAGE ? "usage_error"
                                             : "local_error");
        json_key(&j, "message");
        json_string(&j, msg);
        json_object_end(&j);
        json_print(&j, stdout);
        json_free(&j);
    }
    fprintf(stderr, "carrel: %s\n", msg);
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
    if (util_uuid4(key) != 0) {
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
        if (util_uuid4(cli->generated_key) != 0)
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
            code = cli_status_exit(r->status);
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

void cli_print_status_error(cli_t *cli, const Carrel__Response *r)
{
    const char *msg = r->message && r->message[0] ? r->message : "(no message)";
    if (cli->json) {
        json_t j;
        json_init(&j);
        json_object_begin(&j);
        json_key(&j, "status");
        json_string(&j, status_name(r->status));
        if (r->reason && r->reason[0]) {
            json_key(&j, "reason");
            json_string(&j, r->reason);
        }
        json_key(&j, "message");
        json_string(&j, msg);
        if (r->has_overridable) {
            json_key(&j, "overridable");
            json_bool(&j, r->overridable);
        }
        /* A refusal may carry a body (e.g. the current record of a conflict),
         * under its field name as in an OK response. */
        const ProtobufCFieldDescriptor *f =
            r->body_case != CARREL__RESPONSE__BODY__NOT_SET
                ? protobuf_c_message_descriptor_get_field(&carrel__response__descriptor,
                                                          (unsigned)r->body_case)
                : NULL;
        if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
            const ProtobufCMessage *body =
                *(ProtobufCMessage *const *)((const char *)r + f->offset);
            if (body) {
                json_key(&j, f->name);
                json_message(&j, body);
            }
        }
        json_object_end(&j);
        json_print(&j, stdout);
        json_free(&j);
    }
    if (r->reason && r->reason[0])
        fprintf(stderr, "carrel: %s (%s): %s%s\n", status_name(r->status), r->reason, msg,
                r->has_overridable && r->overridable ? " [can be overridden]" : "");
    else
        fprintf(stderr, "carrel: %s: %s\n", status_name(r->status), msg);
}

int cli_call(cli_t *cli, Carrel__Request *req, Carrel__Response **out)
{
    Carrel__Response *r = NULL;
    if (client_call(&cli->conn, req, &r) != 0)
        return cli_fail(cli, EXIT_NETWORK, "%s", cli->conn.error);
    if (r->status != CARREL__STATUS__STATUS_OK) {
        cli_print_status_error(cli, r);
        int code = cli_status_exit(r->status);
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
        return cli_status_exit(r->status);
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
}

int cli_connect(cli_t *cli, bool login)
{
    if (!cli->connected) {
        if (cli->profile.ca_file == NULL)
            return cli_fail(cli, EXIT_USAGE, "the profile names no ca_file (use -c PROFILE)");
        client_target_t t = {
            .host = cli->profile.host,
            .port = (int)cli->profile.port,
            .server_name = cli->profile.server_name,
            .ca_file = cli->profile.ca_file,
            .cert_file = cli->profile.cert_file,
            .key_file = cli->profile.key_file,
            .timeout_s = (int)cli->profile.timeout_s,
        };
        if (client_open(&cli->conn, &t) != 0)
            return cli_fail(cli, EXIT_NETWORK, "%s", cli->conn.error);
        cli->connected = true;
    }
    if (!login || cli->logged_in)
        return EXIT_OK;
    if (cli->profile.workstation == NULL || cli->profile.user == NULL)
        return cli_fail(cli, EXIT_USAGE, "the profile must name a workstation and a user");
    int code = EXIT_OK;
    char *pw = cli->password ? cli->password : cli_password(cli, &code);
    if (pw == NULL)
        return code;
    if (cli->keep_password)
        cli->password = pw;
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__Login l = CARREL__LOGIN__INIT;
    l.workstation = cli->profile.workstation;
    l.username = cli->profile.user;
    l.password = pw;
    req.body_case = CARREL__REQUEST__BODY_LOGIN;
    req.login = &l;
    Carrel__Response *r = NULL;
    code = cli_call(cli, &req, &r);
    if (pw != cli->password)
        password_free(pw);
    if (code != EXIT_OK)
        return code == EXIT_SERVER ? EXIT_AUTH : code; /* a refused login is an auth failure */
    cli->logged_in = true;
    cli->login_resp = r;
    cli->login = r->login;
    return EXIT_OK;
}
