/*
 * server: the daemon's process-wide state and its lifecycle: listen, accept,
 * drain on SIGTERM/SIGINT, stop.
 */
#ifndef CARREL_SERVER_H
#define CARREL_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "db.h"
#include "password.h"
#include "server_config.h"
#include "throttle.h"

typedef struct conn conn_t;
struct login_state;

#define SERVER_REVOKED_RING 16
typedef struct notices notices_t;
typedef struct stats stats_t;
typedef struct jobtimer jobtimer_t;
typedef struct events events_t;

typedef struct server {
    uv_loop_t *loop;
    struct server_config cfg;
    SSL_CTX *tls;
    uv_tcp_t listener;
    bool listening;
    int port; /* the bound port (cfg.listen_port may be 0) */
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_hup; /* SIGHUP: reload (reload.c) */
    uv_timer_t drain_timer;
    db_pool_t *db;
    conn_t *conns; /* all open connections, doubly linked */
    int nconns;
    int nrefused;        /* of nconns, refused at accept and still closing */
    size_t output_total; /* unsent output of all connections (max_output_total_bytes) */
    uint64_t next_conn_id;
    bool draining;
    bool ready; /* both ports listen and systemd was told READY=1 (server_dummy_hash_done) */
    bool finishing;
    throttle_t throttle_users;     /* failed logins per user name */
    throttle_t throttle_addresses; /* failed logins per peer address */
    password_params_t password_params;
    password_queue_t passwords; /* Argon2 work on the thread pool; shutdown waits for it */
    /* Login housekeeping (auth.c): throttled-attempt summaries, login_event and
     * session token retention. */
    uv_timer_t auth_timer;
    bool auth_timer_started;
    uint64_t auth_pruned_at; /* uv_now() of the last prune, 0: never */
    /* Staff whose sessions were ended (disabled, new password): the last
     * SERVER_REVOKED_RING of them by sequence number, so that a login looked
     * up before such a change cannot complete after it. */
    int64_t revoked[SERVER_REVOKED_RING];
    uint64_t revoked_seq;
    /* Logins waiting for admission (auth.c), oldest first. */
    struct login_state *login_waiting;
    bool login_admitting, login_admit_again;
    char *dummy_hash; /* verified against for unknown users, so timing does not tell */
    /* The notice jobs (notices.c); NULL once they are over. */
    notices_t *notices;
    /* Statistics (stats.c): the standby pool, the rollup job, the live pushes. */
    stats_t *stats;
    /* The rooms timer (rooms.c): no-shows, reminders, anonymising. */
    jobtimer_t *rooms;
    /* The tickets timer (tickets.c): flagging, escalation, anonymising. */
    jobtimer_t *tickets;
    /* The desk event poller (events.c). */
    events_t *events;
    /* The workstations' revoked certificates, their poll and expiry check (certs.c). */
    struct certs *certs;
    /* The SIP2 gateway (sip.c); NULL when sip_listen_port is 0. */
    struct sip_server *sip;
    /* The Prometheus endpoint (metrics_http.c); NULL when metrics_listen_port is 0. */
    struct metrics_http *metrics_http;
    /* What a reload reads again (main.c): the file, then the -s/-p overrides
     * ("key=value", in command-line order) over it. Both live as long as main. */
    const char *config_file; /* NULL: defaults and overrides only */
    char **config_overrides;
    int config_noverrides;
    /* The reload being read on the thread pool (reload.c), or NULL. */
    struct reload *reload;
    int exit_code;
} server_t;

/* Open the listener, signals and database pool. Returns 0 or -1 (logged). */
__attribute__((warn_unused_result)) int server_start(server_t *srv);
/* Stop accepting, let in-flight requests finish (bounded), then close everything. */
void server_drain(server_t *srv, const char *why);
/* A connection has gone; called by conn.c so draining can finish. */
void server_conn_gone(server_t *srv, conn_t *c);
/* The notice or statistics jobs no longer need the database; called by notices.c and
 * stats.c so draining can finish. */
void server_jobs_gone(server_t *srv);
/*
 * A staff account was disabled or given a new password: close every
 * connection logged in as that staff member except `except` (may be NULL),
 * and remember the change so that logins already under way fail.
 */
void server_end_sessions(server_t *srv, int64_t staff_id, const conn_t *except, const char *why);
/* True when staff_id's sessions were ended after revoked_seq had the value `since`. */
bool server_sessions_ended_since(const server_t *srv, int64_t staff_id, uint64_t since);

/* The database pools' limits (timeouts, retries) from srv->cfg: at start and after a reload. */
void server_db_limits_apply(server_t *srv);

/* The desks' TLS context from cfg's certificate, key, client CA and
 * revocation settings; NULL with a sentence in err. */
CARREL_MUST_USE SSL_CTX *server_tls_ctx_build(server_t *srv, const struct server_config *cfg,
                                              char *err, size_t errlen);

#endif
