/*
 * conn: one client connection of the daemon: the TLS channel, the session
 * it has logged in to, its in-flight requests and its idle timer.
 *
 * A conn is freed only when its channel and timer are closed and no request
 * still refers to it (refs == 0), so a database answer arriving after the
 * client vanished finds a valid, closed conn and is dropped.
 */
#ifndef CARREL_CONN_H
#define CARREL_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "carrel.pb-c.h"
#include "channel.h"
#include "perm.h"

typedef struct server server_t;
typedef struct password_work password_work_t;

#define SESSION_TOKEN_HEX      64 /* a session token: 32 random bytes in hex */
#define SESSION_TOKEN_HASH_HEX 64 /* its SHA-256 in hex, as stored */

typedef struct session {
    bool hello_done;
    bool login_pending;
    bool authenticated;
    int64_t staff_id;
    char username[40];      /* ASCII by constraint */
    char display_name[404]; /* 100 characters of UTF-8 */
    role_t role;
    int branch_id;
    char branch_code[16];
    char branch_name[404];
    int64_t workstation_id;
    char workstation[72];
    int64_t login_ms;       /* when this login was accepted (ms since the epoch) */
    char branch_codes[200]; /* assigned branches, comma-separated (16 x 8 + commas) */
    bool has_token;         /* logged in with, or given, a session token: */
    char token_hash[SESSION_TOKEN_HASH_HEX + 1]; /* its SHA-256, revoked at Logout */
} session_t;

typedef struct conn {
    channel_t ch;
    server_t *srv;
    uint64_t id;
    uv_timer_t idle_timer; /* ticks to check the idle, login and stuck-output deadlines */
    session_t session;
    int inflight;
    int refs;
    bool closed;
    bool refused;    /* over a connection limit at accept: closing, holds no slot */
    bool subscribed; /* wants pushed events: its branch's, or all (all_branches) */
    bool all_branches;
    /* Live statistics (stats.c): pushed every stats_interval_ms while set, for
     * stats_all or the branches in stats_branches (codes, comma-separated). */
    bool stats_live;
    bool stats_all;
    int stats_interval_ms;
    uint64_t stats_next_ms; /* uv_now() when the next push is due */
    char stats_branches[200];
    int stats_calls; /* statistics requests of this connection in flight (stats.c) */
    char peer[64];
    char addr[64]; /* peer without the port: the per-address limits' key */
    /* The Argon2 check of a pending Login, cancelled if the connection closes first. */
    password_work_t *login_work;
    bool login_password;     /* the pending login checks a password (not a session token) */
    uint64_t login_from;     /* uv_now() from which a refused login's new deadline counts */
    bool login_unqueued;     /* counted in srv->passwords.logins_unqueued (auth.c) */
    uint64_t login_retry_at; /* uv_now() it was told to come back (0: not told); counted in
                                srv->passwords.told while set */
    int hashing;             /* new passwords of its requests being hashed (bounded in admin.c) */
    uint64_t accepted_at;    /* uv_now() at accept, for the login deadline */
    uint64_t last_active_at; /* uv_now() at the last request */
    bool stuck_seen;         /* output was stuck at the previous tick */
    char cert_cn[128];       /* the verified client certificate's CN, or "" */
    char cert_serial[65];    /* its serial (tls_serial_hex), or "": checked against the
                                revoked set (certs.c) */
    struct conn *prev, *next;
} conn_t;

/* A connection that has not logged in lives at most this many login windows
 * (login_timeout_s each), and at least LOGIN_LIFETIME_MIN_MS, from its accept
 * or last Logout, refusals included (REVIEW15C 3). The floor keeps a short
 * login_timeout_s from closing desks that were told to come back. */
#define LOGIN_LIFETIME_WINDOWS 3
#define LOGIN_LIFETIME_MIN_MS  (120 * 1000)
/* A retry this much before its told time still counts as on time. */
#define LOGIN_EARLY_SLACK_MS 50

/* uv_now() by which a connection not logged in must have its Login admitted:
 * login_timeout_s from its accept or from the time a refusal told it to come
 * back, never past conn_login_lifetime_end(). */
uint64_t conn_login_deadline(const conn_t *c);
/* uv_now() past which a connection not logged in is closed, refusals or not
 * (a Login whose password is being checked still gets its answer). */
uint64_t conn_login_lifetime_end(const conn_t *c);

/* Accept one pending connection from the listener. */
void conn_accept(server_t *srv);
void conn_ref(conn_t *c);
void conn_unref(conn_t *c);
/* Close at once (e.g. idle, forced shutdown). */
void conn_close(conn_t *c, const char *why);
/* Send what is queued, then close. */
void conn_close_after_flush(conn_t *c, const char *why);
/*
 * Send one Response frame: the one way the server writes to a client (a
 * request's answer, a pushed event, the answer to a frame too large). Sets
 * its id (0 for events and answers to no request) and marks its status as
 * present. A connection that is closed or closing drops the frame (logged at
 * debug; the caller has nothing to undo) and -1 is returned, else 0.
 */
int conn_send(conn_t *c, uint64_t id, Carrel__Response *r);
/* Push an event frame (Response with id 0) to this connection. */
void conn_push_event(conn_t *c, Carrel__Event *event);
/* Stop reading new requests (shutdown); close once nothing is in flight. */
void conn_drain(conn_t *c);
perm_subject_t conn_subject(const conn_t *c);

#endif
