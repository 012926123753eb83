/*
 * sip: the SIP2 gateway of carreld (docs/SIP2.md).
 *
 * A listener of its own (sip_listen), plain TCP or TLS, on the daemon's
 * loop. Each connection is a channel in line mode: one message at a time
 * (a self-check waits for each answer), parsed by common/sip2, answered by
 * a handler that calls the same SQL functions as the desk (circ_checkout,
 * circ_checkin, ...), so a self-check checkout is the same transaction
 * with the same guarantees. sip.c owns the listener, the connections,
 * login (93), status (99), end session (35), resend (97) and the refusals;
 * sip_msgs.c owns the library messages (23, 63, 11, 09, 29, 65, 17, 37).
 */
#ifndef CARREL_SIP_H
#define CARREL_SIP_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "arena.h"
#include "db.h"
#include "server.h"
#include "sip2.h"

/* The options of one SIP2 login (table sip_login), for its machine's quirks. */
typedef struct sip_options {
    bool always_send_ct;       /* CT in every checkin response, empty when no transit */
    bool cv_00_on_success;     /* CV 00 on a checkin that needs no sorting */
    bool held_checkin_blocked; /* a checkin that captures a hold answers ok=0 */
    bool pin_required;         /* AD must verify before 11, 29, 65, 37 and patron details */
    char hide_fields[128];     /* ids never sent, comma-separated */
    char institution[64];      /* AO */
} sip_options_t;

typedef struct sip_session {
    bool logged_in;
    int64_t staff_id;
    int64_t workstation_id;
    int32_t branch_id;
    char branch_code[32];
    char username[64];
    sip_options_t opts;
    char branch_name[128]; /* AM in 98 */
    char workstation[72];  /* AN in 98; the workstation of the sip_login row */
} sip_session_t;

typedef struct sip_conn sip_conn_t;

/* One message on its way to its answer. Lives in its own arena; freed by sip_send. */
typedef struct sip_req {
    sip_conn_t *conn; /* may have closed meanwhile: sip_send then only frees */
    server_t *srv;
    sip_session_t session; /* the connection's, copied when the message arrived */
    sip2_msg_t msg;        /* points into line */
    char *line;            /* the request line, in the arena */
    sip2_out_t out;        /* the answer; the handler fills it, sip_send ends it */
    char key[37];          /* the request key this message derives (sip_key) */
    arena_t arena;
    void *state; /* the handler's */
} sip_req_t;

typedef void (*sip_handler_fn)(sip_req_t *r);
typedef void (*sip_db_cb)(sip_req_t *r, const db_result_t *res);

/* Start and stop the listener (no-op when sip_listen_port is 0). sip_stop
 * (draining) closes each connection once its message in flight is answered. */
int sip_start(server_t *srv);
void sip_stop(server_t *srv);
/* Close every SIP2 connection now (shutdown timeout, second signal). */
void sip_abort(server_t *srv);
/* True when no SIP2 connection is left (draining may finish). */
bool sip_gone(const server_t *srv);
/* Release the listener's memory once the loop has run out (main.c). */
void sip_free(server_t *srv);
/* True when the running settings make the SIP2 port speak TLS (a reload then builds its
 * context again), whether or not the listener is up yet. */
bool sip_tls_wanted(const server_t *srv);
/* A reload's new SIP2 TLS context (from the new tls_cert and tls_key) for new
 * connections; taken over, or freed when the port speaks no TLS. A NULL never replaces a
 * context (the port keeps its old one). */
void sip_tls_replace(server_t *srv, SSL_CTX *tls);
/* The bound SIP2 port, 0 when off. */
int sip_port(const server_t *srv);
/* Close (after what is queued is sent) the SIP2 connections logged in as
 * staff_id, or as the SIP2 login `username` (its options are copied at 93,
 * so a change to them takes a new login): an account disabled, a password
 * changed, a SIP2 login changed or removed. */
void sip_end_sessions(server_t *srv, int64_t staff_id, const char *why);
void sip_end_sessions_named(server_t *srv, const char *username, const char *why);

/* Finish r->out (AY, AZ, CR), send it, keep it as the connection's last
 * answer (for 97), resume reading, and free r. Exactly once per message. */
void sip_send(sip_req_t *r);
/* Run a statement for r on the pool; cb gets every outcome (a failure to queue
 * arrives as DB_UNAVAILABLE, before sip_db returns: touch nothing of r after
 * calling it), so a handler has one path to answer from. */
void sip_db(sip_req_t *r, const db_stmt_t *stmt, int nparams, const char *const *values,
            sip_db_cb cb);
/*
 * The request key of a circulation message: a UUID derived from the login,
 * the code, the patron (AA), the item (AB), the transaction date and AY (for
 * 37 also BK). A self-check that resends a message after a timeout sends the
 * same fields, so circ_checkout finds the key and answers what it did the
 * first time. A transaction date that is not a date within an hour of now
 * adds the minute of arrival (logged once per connection). sip_key_at: the
 * same with `now` given (unit tests).
 */
const char *sip_key(sip_req_t *r);
const char *sip_key_at(sip_req_t *r, time_t now);

/* The transaction date of an answer, "YYYYMMDDZZZZHHMMSS", in the library's
 * time zone (setting `timezone`, asked of the database every few minutes). */
void sip_date_now(server_t *srv, char out[19]);

/* sip_msgs.c: the handler of a library message, or NULL (sip.c answers the rest). */
sip_handler_fn sip_handler_find(const char *code);
void sip_msgs_register_statements(void);
void sip_register_statements(void);
/* The 16 Y/N of BX in 98, in the standard's order. */
void sip_supported_messages(char out[17]);

#endif
