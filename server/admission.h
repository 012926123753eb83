/*
 * admission: the checks every request passes before its handler runs, as one
 * pure decision over the unpacked Request, its frame's bytes and a few facts
 * about the session. request.c gathers the facts and turns a refusal into its
 * answer; nothing here touches a connection, so tests/fuzz/fuzz_request.c
 * drives the decision with any bytes. The order of the checks is the order
 * docs/ARCHITECTURE.md lists ("request.c"): the first that fails is reported.
 */
#ifndef CARREL_ADMISSION_H
#define CARREL_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carrel.pb-c.h"
#include "perm.h"
#include "request.h"
#include "wirecheck.h"

/* What admission needs to know about the connection the frame came on. */
typedef struct admission_facts {
    bool hello_done;
    bool authenticated;
    perm_subject_t subject; /* the session's role and branch */
    long inflight;          /* requests in flight on the connection, this one included */
    long max_inflight;
} admission_facts_t;

typedef enum admission_refusal {
    ADMISSION_OK = 0,
    ADMISSION_HELLO_REQUIRED,  /* not Hello, and no Hello yet (the connection closes) */
    ADMISSION_UNDECODABLE,     /* wirecheck finds the frame malformed (the connection closes) */
    ADMISSION_TEXT,            /* a string field is not clean text: admission_t.text says which */
    ADMISSION_UNKNOWN_REQUEST, /* no route for the body */
    ADMISSION_INFLIGHT_LIMIT,  /* more than max_inflight requests in flight */
    ADMISSION_LOGIN_REQUIRED,  /* the route needs login and the session has none */
    ADMISSION_ROLE,            /* the route's permission is refused: admission_t.perm says why */
    ADMISSION_KEY_MISSING,     /* a keyed route without a request key */
    ADMISSION_KEY_NOT_UUID,    /* a request key on a change that is not a UUID */
} admission_refusal_t;

typedef struct admission {
    admission_refusal_t refusal;
    const route_t *route;   /* the request's route, once looked up (NULL before) */
    wirecheck_error_t text; /* for ADMISSION_TEXT: the first offending field */
    perm_result_t perm;     /* for ADMISSION_ROLE */
} admission_t;

/*
 * Decide whether the request `msg`, unpacked from the frame payload[0..len),
 * may run. Fills *out (route included, as far as the checks got) and returns
 * out->refusal.
 */
__attribute__((warn_unused_result)) admission_refusal_t
admission_decide(const Carrel__Request *msg, const uint8_t *payload, size_t len,
                 const admission_facts_t *facts, admission_t *out);

#endif
