/*
 * status: the protocol's status codes (proto/carrel.proto, enum Status) with
 * their names and the client's exit code for each, from one table.
 */
#ifndef CARREL_STATUS_H
#define CARREL_STATUS_H

/*
 * The client's exit codes (docs/CIRCULATION.md lists them); client/cli.h names them
 * EXIT_* with the same values.
 */
#define CARREL_EXIT_OK      0
#define CARREL_EXIT_LOCAL   1 /* a local problem: unreadable file, bad data in it */
#define CARREL_EXIT_USAGE   2 /* wrong command line */
#define CARREL_EXIT_AUTH    3 /* login refused */
#define CARREL_EXIT_SERVER  4 /* the server refused or failed the request */
#define CARREL_EXIT_NETWORK 5 /* cannot reach the server, TLS failure, timeout */

/* X(suffix of CARREL__STATUS__STATUS_*, name on the wire in JSON and logs,
 *   the client's exit code when a request ends with it) */
#define CARREL_STATUS_TABLE(X)                                                                     \
    X(OK, "ok", CARREL_EXIT_OK)                                                                    \
    X(BAD_REQUEST, "bad_request", CARREL_EXIT_SERVER)                                              \
    X(UNAUTHENTICATED, "unauthenticated", CARREL_EXIT_AUTH)                                        \
    X(FORBIDDEN, "forbidden", CARREL_EXIT_SERVER)                                                  \
    X(NOT_FOUND, "not_found", CARREL_EXIT_SERVER)                                                  \
    X(CONFLICT, "conflict", CARREL_EXIT_SERVER)                                                    \
    X(UNAVAILABLE, "unavailable", CARREL_EXIT_SERVER)                                              \
    X(INTERNAL, "internal", CARREL_EXIT_SERVER)                                                    \
    X(UNSUPPORTED_VERSION, "unsupported_version", CARREL_EXIT_NETWORK)                             \
    X(FRAME_TOO_LARGE, "frame_too_large", CARREL_EXIT_SERVER)                                      \
    X(REFUSED, "refused", CARREL_EXIT_SERVER)                                                      \
    X(TOO_MANY_REQUESTS, "too_many_requests", CARREL_EXIT_SERVER)

/* "ok", "not_found", ...; "unknown" for values outside the table. */
const char *status_name(int status);
/* The client's exit code for a request that ended with `status`
 * (CARREL_EXIT_SERVER for values outside the table). */
int status_exit_code(int status);

#endif
