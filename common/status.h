/*
 * status: the protocol's status codes (proto/carrel.proto, enum Status) with
 * their names and the client's exit code for each, from one table.
 */
#ifndef CARREL_STATUS_H
#define CARREL_STATUS_H

/* X(suffix of CARREL__STATUS__STATUS_*, name on the wire in JSON and logs) */
#define CARREL_STATUS_TABLE(X)                                                                     \
    X(OK, "ok")                                                                                    \
    X(BAD_REQUEST, "bad_request")                                                                  \
    X(UNAUTHENTICATED, "unauthenticated")                                                          \
    X(FORBIDDEN, "forbidden")                                                                      \
    X(NOT_FOUND, "not_found")                                                                      \
    X(CONFLICT, "conflict")                                                                        \
    X(UNAVAILABLE, "unavailable")                                                                  \
    X(INTERNAL, "internal")                                                                        \
    X(UNSUPPORTED_VERSION, "unsupported_version")                                                  \
    X(FRAME_TOO_LARGE, "frame_too_large")                                                          \
    X(REFUSED, "refused")                                                                          \
    X(TOO_MANY_REQUESTS, "too_many_requests")

/* "ok", "not_found", ...; "unknown" for values outside the table. */
const char *status_name(int status);

#endif
