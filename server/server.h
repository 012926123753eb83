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
typedef struct notices notices_t;

typedef struct server {
    uv_loop_t *loop;
    struct server_config cfg;
    SSL_CTX *tls;
    uv_tcp_t listener;
    bool listening;
    int port; /* the bound port (cfg.listen_port may be 0) */
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_timer_t drain_timer;
    db_pool_t *db;
    conn_t *conns; /* all open connections, doubly linked */
    int nconns;
    size_t output_total; /* unsent output of all connections (max_output_total_bytes) */
    uint64_t next_conn_id;
    bool draining;
    bool finishing;
    throttle_t throttle_users;     /* failed logins per user name */
    throttle_t throttle_addresses; /* failed logins per peer address */
    password_params_t password_params;
    char *dummy_hash; /* verified against for unknown users, so timing does not tell */
    /* The notice jobs (notices.c); NULL once they are over. */
    notices_t *notices;
    int exit_code;
} server_t;

/* Open the listener, signals and database pool. Returns 0 or -1 (logged). */
__attribute__((warn_unused_result)) int server_start(server_t *srv);
/* Stop accepting, let in-flight requests finish (bounded), then close everything. */
void server_drain(server_t *srv, const char *why);
/* A connection has gone; called by conn.c so draining can finish. */
void server_conn_gone(server_t *srv, conn_t *c);
/* The notice jobs no longer need the database; called by notices.c so draining can finish. */
void server_jobs_gone(server_t *srv);

#endif
