/*
 * events: what the database says happened at a branch (a copy captured for
 * its hold shelf, a transit sent to it, a hold placed on a title it has on
 * its shelves), pushed to the desks of that branch that subscribed.
 *
 * SQL functions call desk_event(), which NOTIFYs on the channel
 * carrel_events when their transaction commits; the pool's listening
 * connection (db_pool_listen) hands each payload here.
 */
#ifndef CARREL_EVENTS_H
#define CARREL_EVENTS_H

#include "conn.h"
#include "server.h"

#define EVENTS_CHANNEL "carrel_events"

/* At most this many user names an event is addressed to (desk_event_to). */
#define EVENTS_USERNAMES_MAX 100

/*
 * One carrel_events payload, split in place: tab-separated branch code,
 * kind, item barcode, bib id, text (desk_event), and optionally two more
 * fields (desk_event_to): the ticket id and the user names it is addressed
 * to, comma-separated. Empty fields are NULL here (branch code and kind
 * are "" when empty). Pointers point into the parsed buffer.
 */
typedef struct events_payload {
    char *branch_code;
    char *kind;
    char *item_barcode; /* NULL: none */
    bool has_bib_id;
    int64_t bib_id;
    char *text;
    bool has_ticket_id;
    int64_t ticket_id;
    size_t n_usernames; /* 0: routed by branch */
    char *usernames[EVENTS_USERNAMES_MAX];
} events_payload_t;

/*
 * Parse a payload (modified in place: tabs and commas become NULs). Pure.
 * False when it is malformed: fewer than five fields, more than seven, a
 * bib or ticket id that is not a positive number, more than
 * EVENTS_USERNAMES_MAX user names, or an empty one.
 */
bool events_payload_parse(char *payload, events_payload_t *out);
/* True when the event is addressed to `username` (always when to no one). */
bool events_payload_for(const events_payload_t *p, const char *username);

/*
 * Whether a subscribed connection hears the event. Pure. An event addressed
 * to user names reaches those users wherever they are logged in, and every
 * coordinator or administrator (whose work is every branch: they hear
 * flags and escalations at `carrel desk` or plain `carrel events` too),
 * never the rest of a branch. Any other event reaches its branch's
 * connections, and all-branches subscribers.
 */
bool events_payload_reaches(const events_payload_t *p, const session_t *s, bool all_branches);

/* The pool's notification callback (arg is the server). */
void events_on_notify(void *arg, const char *payload);

#endif
