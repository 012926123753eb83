#include "admission.h"

#include <string.h>

#include "util.h"

/* Has the request a request key at all (absent and "" count as none)? */
static bool admission_has_key(const Carrel__Request *msg)
{
    return msg->request_key != NULL && msg->request_key[0] != '\0';
}

/* The checks that need the route; the session and text checks came first. */
static admission_refusal_t admission_route(const Carrel__Request *msg,
                                           const admission_facts_t *facts, admission_t *out)
{
    const route_t *route = out->route;
    if (facts->inflight > facts->max_inflight)
        return ADMISSION_INFLIGHT_LIMIT;
    if (!(route->flags & ROUTE_BEFORE_LOGIN) && !facts->authenticated)
        return ADMISSION_LOGIN_REQUIRED;
    if (route->perm >= 0) {
        /* Role only (target branch 0): handlers check branch-specific targets. */
        out->perm = perm_check(&facts->subject, (perm_action_t)route->perm, 0);
        if (out->perm != PERM_OK)
            return ADMISSION_ROLE;
    }
    if ((route->flags & ROUTE_KEYED) && !admission_has_key(msg))
        return ADMISSION_KEY_MISSING;
    if ((route->flags & (ROUTE_MUTATING | ROUTE_KEYED)) && admission_has_key(msg) &&
        !util_is_uuid(msg->request_key))
        return ADMISSION_KEY_NOT_UUID;
    return ADMISSION_OK;
}

admission_refusal_t admission_decide(const Carrel__Request *msg, const uint8_t *payload, size_t len,
                                     const admission_facts_t *facts, admission_t *out)
{
    memset(out, 0, sizeof(*out));
    out->perm = PERM_OK;
    if (!facts->hello_done && msg->body_case != CARREL__REQUEST__BODY_HELLO)
        return out->refusal = ADMISSION_HELLO_REQUIRED;
    /* protobuf-c would hand us "secret\0junk" as "secret": strings are
     * checked on the frame's bytes (wirecheck.h). Unpack took the frame, so
     * malformed here means only nested too deep. */
    switch (wirecheck_strings(&carrel__request__descriptor, payload, len, &out->text)) {
    case WIRECHECK_OK:
        break;
    case WIRECHECK_TEXT:
        return out->refusal = ADMISSION_TEXT;
    case WIRECHECK_MALFORMED:
    default:
        return out->refusal = ADMISSION_UNDECODABLE;
    }
    out->route = dispatch_find(msg->body_case);
    if (out->route == NULL)
        return out->refusal = ADMISSION_UNKNOWN_REQUEST;
    return out->refusal = admission_route(msg, facts, out);
}
