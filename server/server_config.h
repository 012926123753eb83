/*
 * server_config: the daemon's settings. The table in server_config.c is the
 * single source for the file syntax, defaults, bounds, --help and --dump-config.
 */
#ifndef CARREL_SERVER_CONFIG_H
#define CARREL_SERVER_CONFIG_H

#include "config.h" /* common/config.h */

struct server_config {
    char *listen_host;
    long listen_port;
    char *tls_cert;
    char *tls_key;
    char *tls_client_ca;
    int tls_require_client_cert;
    char *db_conninfo;
    long db_pool_size;
    long db_max_queue;
    long db_reconnect_ms;
    long db_retry_limit;
    long db_lock_timeout_ms;
    long db_statement_timeout_ms;
    long db_long_statement_timeout_ms;
    long db_queue_timeout_ms;
    long db_pool_reserved_reads;
    int db_quiet_refusals;
    char *sql_dir;
    long max_frame_bytes;
    long max_frame_bytes_login;
    long max_connections;
    long max_inflight;
    long idle_timeout_s;
    long login_timeout_s;
    long handshake_timeout_s;
    long max_connections_per_address;
    long shutdown_timeout_s;
    long write_high_water;
    long max_output_total_bytes;
    long password_time_cost;
    long password_memory_kib;
    long password_parallelism;
    long login_throttle_after;
    long login_throttle_after_address;
    long login_throttle_max_s;
    long login_pending_per_user;
    long login_pending_per_address;
    long password_queue_max;
    long password_workers;
    long login_throttle_report_s;
    long login_event_retention_days;
    long event_poll_ms;
    long event_retention_hours;
    long session_token_ttl_s;
    char *log_level;
    char *server_name;
    char *smtp_host; /* NULL: no email */
    long smtp_port;
    char *smtp_from;
    char *smtp_helo;
    char *smtp_tls;           /* starttls | tls | none */
    char *smtp_user;          /* NULL: no AUTH */
    char *smtp_password_file; /* with smtp_user */
    char *smtp_ca_file;       /* NULL: the system's store */
    long smtp_timeout_s;
    long jobs_interval_s;        /* 0: no daily timer */
    long notice_send_interval_s; /* 0: no send timer */
    char *stats_conninfo;        /* NULL or "": statistics use the primary pool */
    long stats_pool_size;
    int stats_fallback_primary;
    long stats_rollup_interval_s; /* 0: no rollup timer */
    long rooms_tick_interval_s;   /* 0: no rooms timer */
    long tickets_tick_interval_s; /* 0: no tickets timer */
    char *sip_listen_host;        /* the SIP2 gateway (sip.c) */
    long sip_listen_port;         /* 0: no SIP2 port */
    int sip_tls;
    long sip_max_connections;
    long sip_login_timeout_s;
    long sip_idle_timeout_s; /* 0: never */
    char *tls_crl_file;
    long cert_warn_days;
    long revocation_poll_s;
    char *metrics_listen_host;
    long metrics_listen_port; /* 0: no endpoint */
};

extern const conf_entry_t server_config_table[];

/*
 * sql_dir's default, where the SQL is installed (PREFIX/share/carrel/sql),
 * until server_config_locate_sql_dir() finds where this carreld runs from:
 *   - the build tree (meson compile): the source tree's sql/, so that the
 *     tests and scripts/demo use the SQL they were built with;
 *   - BINDIR under another root (a DESTDIR staging tree, an unpacked
 *     package): the SQL under that same root;
 *   - anywhere else: the installed path.
 * Call it once at start, before conf_defaults (the table's default points
 * here); an explicit sql_dir still wins.
 */
extern char server_sql_dir_default[];
void server_config_locate_sql_dir(void);

/*
 * The checks a serving daemon's settings must pass beyond the table's own
 * (types, bounds): log_level is a level, TLS has a certificate and a key.
 * Used at start and by a reload. 0, or -1 with a sentence in err.
 */
__attribute__((warn_unused_result)) int server_config_validate(const struct server_config *cfg,
                                                               char *err, size_t errlen);

#endif
