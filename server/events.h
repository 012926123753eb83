/*
 * events: what the database says happened at a branch (a copy captured for
 * its hold shelf, a transit sent to it, a hold placed on a title it has on
 * its shelves), pushed to the desks of that branch that subscribed.
 *
 * SQL functions call desk_event(), which stores a row in desk_event
 * (migration 034). The daemon polls the table (one poll at a time, on the
 * pool's short lane) after every change that went through the write lane,
 * and every event_poll_ms for changes made elsewhere, and pushes each new
 * row once (events.c has the proof that none is missed). A desk that
 * reconnects asks for the rows after the last it saw (Subscribe
 * since_event_id). Rows older than event_retention_hours go hourly.
 */
#ifndef CARREL_EVENTS_H
#define CARREL_EVENTS_H

#include "conn.h"
#include "server.h"

/* A replay re-sends this many ids below since_event_id (see handle_subscribe). */
#define EVENTS_REPLAY_WINDOW 256
/* At most this many stored events are replayed (the newest, oldest first); when
 * more were missed the connection gets an `events_missed` event (no id) first. */
#define EVENTS_REPLAY_MAX 1000

/* At most this many user names an event is addressed to (desk_event_to). */
#define EVENTS_USERNAMES_MAX 100

/*
 * One stored event as the poll and the replay read it (one text column,
 * events_payload_sql), split in place: tab-separated branch code,
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

/*
 * Push one stored event (its id, its time, its payload) to every subscribed,
 * logged-in connection it reaches. Malformed: logged and dropped.
 */
void events_deliver(server_t *srv, int64_t id, int64_t at_ms, const char *payload);

/*
 * True when the snapshot xmax `now` (decimal text) is below `kept`: the
 * database's transaction ids went back (a failover, a restore). Pure.
 */
bool events_xmax_went_back(const char *kept, const char *now);

/*
 * The poller's state, which outlives database connections (a dropped one
 * loses no event: the next poll starts from the same snapshot).
 */
typedef struct events events_t;

void events_register_statements(void);
/* Start polling (after db_pool_start): a first poll takes the snapshot to start from. */
events_t *events_start(server_t *srv);
/* Ask for a poll: now, or once the one running is back (coalesced). */
void events_wake(void *events);
/* On drain: no new poll or prune. */
void events_stop(events_t *e);
/* True once stopped and nothing is out (or aborted); true for NULL. */
bool events_gone(const events_t *e);
/* Stop waiting for a statement out (shutdown timeout). */
void events_abort(events_t *e);
/* After events_stop: close the timer and free e once nothing is out. */
void events_close(events_t *e);

/* ---- pure parts, exposed for unit tests ---- */

/* Is the hourly retention due at now_ms (last: 0 never)? */
bool events_prune_due(uint64_t last_ms, uint64_t now_ms);

#endif
