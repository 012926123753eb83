#include "server_config.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"

/* server/meson.build sets these: where meson installs the SQL and carreld, and the
 * build and source trees. */
#ifndef CARREL_SQL_DIR
#define CARREL_SQL_DIR "sql"
#endif

char server_sql_dir_default[PATH_MAX] = CARREL_SQL_DIR;

#define S(field) offsetof(struct server_config, field)
/* Whether a reload (SIGHUP, carrel admin reload) applies a new value, or it
 * waits for the next start: the one table IT reads in the man page. */
#define RELOAD  CONF_RELOADABLE
#define RESTART 0

const conf_entry_t server_config_table[] = {
    {"listen_host", CONF_STRING, S(listen_host), "127.0.0.1", 0, 0,
     "address to listen on for desk clients", RESTART},
    {"listen_port", CONF_INT, S(listen_port), "7420", 0, 65535,
     "TCP port (0 picks a free one, printed at start)", RESTART},
    {"tls_cert", CONF_STRING, S(tls_cert), NULL, 0, 0, "server certificate chain (PEM)", RELOAD},
    {"tls_key", CONF_STRING, S(tls_key), NULL, 0, 0, "server private key (PEM)", RELOAD},
    {"tls_client_ca", CONF_STRING, S(tls_client_ca), NULL, 0, 0,
     "CA for workstation client certificates; when set, a certificate's CN must name the "
     "workstation that logs in on it",
     RELOAD},
    /* Required by default: with a client CA but optional certificates, a desk without one
       could log in naming any workstation, so the CN check would protect nothing. */
    {"tls_require_client_cert", CONF_BOOL, S(tls_require_client_cert), "true", 0, 0,
     "with tls_client_ca set, refuse at the handshake a client without a certificate; false "
     "lets a desk without one log in naming any workstation (no effect without tls_client_ca)",
     RELOAD},
    {"tls_crl_file", CONF_STRING, S(tls_crl_file), NULL, 0, 0,
     "certificate revocation list (PEM, from the library CA) checked at every workstation "
     "handshake, besides the revocations kept in the database; re-read on reload",
     RELOAD},
    {"cert_warn_days", CONF_INT, S(cert_warn_days), "30", 1, 3650,
     "warn (in the log, daily, and in carrel admin workstation list) this many days before a "
     "workstation certificate expires",
     RELOAD},
    {"revocation_poll_s", CONF_INT, S(revocation_poll_s), "10", 1, 3600,
     "re-read the revoked workstation certificates from the database this often (revocations "
     "made through another daemon); this daemon's own apply at once",
     RESTART},
    {"db_conninfo", CONF_STRING, S(db_conninfo), "dbname=carrel", 0, 0,
     "libpq connection string for the Carrel database", RESTART},
    {"db_pool_size", CONF_INT, S(db_pool_size), "8", 1, 256, "database connections in the pool",
     RESTART},
    {"db_max_queue", CONF_INT, S(db_max_queue), "10000", 1, 1000000,
     "queries allowed to wait for a free connection before requests are refused", RESTART},
    {"db_reconnect_ms", CONF_INT, S(db_reconnect_ms), "1000", 50, 60000,
     "delay between reconnection attempts while the database is down", RESTART},
    {"db_retry_limit", CONF_INT, S(db_retry_limit), "5", 0, 100,
     "times a transaction is retried after a serialization failure or deadlock", RELOAD},
    {"db_lock_timeout_ms", CONF_INT, S(db_lock_timeout_ms), "2000", 0, 3600000,
     "longest wait for a row or table lock before a request is answered 'unavailable' (busy); "
     "0: no limit",
     RELOAD},
    {"db_statement_timeout_ms", CONF_INT, S(db_statement_timeout_ms), "10000", 0, 3600000,
     "longest a statement may run before it is cancelled (answered 'unavailable'); 0: no limit",
     RELOAD},
    {"db_long_statement_timeout_ms", CONF_INT, S(db_long_statement_timeout_ms), "600000", 0,
     86400000,
     "longest a bulk or background statement may run (an import batch, the hourly jobs), whose "
     "time grows with the size of the library; 0: no limit",
     RELOAD},
    {"db_queue_timeout_ms", CONF_INT, S(db_queue_timeout_ms), "5000", 0, 3600000,
     "longest a query waits for a free database connection before its request is answered "
     "'unavailable' (overloaded); 0: no limit",
     RELOAD},
    {"db_pool_reserved_reads", CONF_INT, S(db_pool_reserved_reads), "2", 0, 255,
     "database connections kept for logins and reads: changes may use the others only, so a "
     "row locked elsewhere cannot hold up every desk",
     RESTART},
    {"db_quiet_refusals", CONF_BOOL, S(db_quiet_refusals), "true", 0, 0,
     "ask PostgreSQL not to log our sessions' errors (refusals are answers; carreld logs the "
     "unexpected ones); needs GRANT SET ON PARAMETER log_min_messages",
     RESTART},
    {"sql_dir", CONF_STRING, S(sql_dir), server_sql_dir_default, 0, 0,
     "directory holding migrations/NNN_name.sql and rules/*.sql; by default the installed SQL, "
     "or the source tree's for a carreld run from its build directory",
     RESTART},
    {"max_frame_bytes", CONF_INT, S(max_frame_bytes), "1048576", 1024, 64 * 1024 * 1024,
     "largest frame accepted after login", RELOAD},
    {"max_frame_bytes_login", CONF_INT, S(max_frame_bytes_login), "16384", 256, 1048576,
     "largest frame accepted before login", RELOAD},
    {"max_connections", CONF_INT, S(max_connections), "1024", 1, 100000,
     "connections served at once; more are closed at accept", RELOAD},
    {"max_inflight", CONF_INT, S(max_inflight), "64", 1, 100000,
     "requests one connection may have in flight (pipelined)", RELOAD},
    {"idle_timeout_s", CONF_INT, S(idle_timeout_s), "900", 1, 86400,
     "close a connection with no request for this long (or whose client stops reading)", RELOAD},
    {"login_timeout_s", CONF_INT, S(login_timeout_s), "30", 1, 3600,
     "close a connection that has not logged in this long after connecting", RELOAD},
    {"handshake_timeout_s", CONF_INT, S(handshake_timeout_s), "5", 1, 600,
     "close a connection that has not finished its TLS handshake and Hello this long after "
     "connecting",
     RELOAD},
    {"max_connections_per_address", CONF_INT, S(max_connections_per_address), "128", 1, 100000,
     "connections served at once from one peer address; more are closed at accept", RELOAD},
    {"shutdown_timeout_s", CONF_INT, S(shutdown_timeout_s), "10", 0, 600,
     "on SIGTERM, how long to wait for in-flight requests", RELOAD},
    {"write_high_water", CONF_INT, S(write_high_water), "4194304", 65536, 1073741824,
     "stop reading from a client whose unsent output exceeds this many bytes", RELOAD},
    {"max_output_total_bytes", CONF_INT, S(max_output_total_bytes), "268435456", 1048576,
     68719476736,
     "unsent output held for all clients together; past it, the clients with the most unsent "
     "output are dropped first",
     RELOAD},
    {"password_time_cost", CONF_INT, S(password_time_cost), "3", 1, 100,
     "Argon2id passes for new password hashes", RELOAD},
    {"password_memory_kib", CONF_INT, S(password_memory_kib), "65536", 8, 4194304,
     "Argon2id memory for new password hashes, in KiB", RELOAD},
    {"password_parallelism", CONF_INT, S(password_parallelism), "1", 1, 64,
     "Argon2id lanes for new password hashes", RELOAD},
    {"login_throttle_after", CONF_INT, S(login_throttle_after), "3", 1, 1000,
     "failed logins for one user name before its attempts are slowed down", RELOAD},
    {"login_throttle_after_address", CONF_INT, S(login_throttle_after_address), "20", 1, 100000,
     "failed logins from one address (any user name) before its attempts are slowed down; "
     "higher, since a branch's desks may share one address",
     RELOAD},
    {"login_throttle_max_s", CONF_INT, S(login_throttle_max_s), "300", 1, 86400,
     "longest lockout after repeated failed logins", RELOAD},
    {"login_pending_per_user", CONF_INT, S(login_pending_per_user), "3", 1, 1000,
     "logins for one user name checked at once; more wait for their turn", RELOAD},
    {"login_pending_per_address", CONF_INT, S(login_pending_per_address), "8", 1, 100000,
     "logins from one peer address checked at once; more wait for their turn", RELOAD},
    {"password_queue_max", CONF_INT, S(password_queue_max), "16", 1, 10000,
     "password checks queued or running at once; logins beyond are answered unavailable "
     "(new passwords set by staff: at most half of it)",
     RELOAD},
    {"password_workers", CONF_INT, S(password_workers), "0", 0, 1024,
     "password checks (Argon2) run at once, the rest wait in order of arrival; 0: one per core",
     RESTART},
    {"login_throttle_report_s", CONF_INT, S(login_throttle_report_s), "60", 1, 86400,
     "logins refused by the throttle are logged and recorded as one summary per key this often",
     RELOAD},
    {"login_event_retention_days", CONF_INT, S(login_event_retention_days), "90", 1, 36500,
     "login_event rows older than this are deleted (hourly)", RELOAD},
    {"event_poll_ms", CONF_INT, S(event_poll_ms), "1000", 10, 3600000,
     "look for desk events stored by changes made outside carreld (psql, other tools) this "
     "often; carreld's own changes are looked for as soon as they commit",
     RESTART},
    {"event_retention_hours", CONF_INT, S(event_retention_hours), "48", 1, 168,
     "stored desk events older than this are deleted (hourly); a desk that reconnects is "
     "sent the ones it missed from those kept",
     RELOAD},
    {"session_token_ttl_s", CONF_INT, S(session_token_ttl_s), "28800", 60, 2592000,
     "a session token (a client's saved login) is valid this long after the login that made it",
     RELOAD},
    {"log_level", CONF_STRING, S(log_level), "info", 0, 0, "debug, info, warn or error", RELOAD},
    {"server_name", CONF_STRING, S(server_name), "carreld", 0, 0, "name sent in HelloReply",
     RESTART},
    {"smtp_host", CONF_STRING, S(smtp_host), NULL, 0, 0,
     "SMTP relay (submission server) for email notices; unset: email notices stay pending", RELOAD},
    {"smtp_port", CONF_INT, S(smtp_port), "587", 1, 65535,
     "the SMTP relay's port (587 for STARTTLS, 465 for smtp_tls = tls)", RELOAD},
    {"smtp_tls", CONF_STRING, S(smtp_tls), "starttls", 0, 0,
     "starttls (required: no mail goes in clear), tls (implicit TLS, smtps) or none (plain "
     "SMTP to a relay on localhost; logged as a warning at start)",
     RELOAD},
    {"smtp_user", CONF_STRING, S(smtp_user), NULL, 0, 0,
     "user name for AUTH at the relay; unset: no login", RELOAD},
    {"smtp_password_file", CONF_STRING, S(smtp_password_file), NULL, 0, 0,
     "file holding the relay password (first line), read at start; must not be readable by "
     "others",
     RELOAD},
    {"smtp_ca_file", CONF_STRING, S(smtp_ca_file), NULL, 0, 0,
     "CA certificates (PEM) that the relay's certificate must chain to; unset: the system's "
     "store",
     RELOAD},
    {"smtp_from", CONF_STRING, S(smtp_from), "library@localhost", 0, 0,
     "sender address of email notices (envelope and From:)", RELOAD},
    {"smtp_helo", CONF_STRING, S(smtp_helo), "carreld", 0, 0, "the name carreld gives in EHLO/HELO",
     RELOAD},
    {"smtp_timeout_s", CONF_INT, S(smtp_timeout_s), "30", 1, 600,
     "how long to wait for each answer from the SMTP relay", RELOAD},
    {"jobs_interval_s", CONF_INT, S(jobs_interval_s), "3600", 0, 604800,
     "run the daily holds and notices job (shelf expiry, due notices, clean-up, then email) "
     "this often, the first time 5 s after start; 0: only on request (carrel notices run)",
     RESTART},
    {"notice_send_interval_s", CONF_INT, S(notice_send_interval_s), "60", 0, 86400,
     "send pending email notices this often between daily jobs; 0: only with the daily job",
     RESTART},
    {"stats_conninfo", CONF_STRING, S(stats_conninfo), NULL, 0, 0,
     "libpq connection string of a read-only hot standby that answers statistics and reports, "
     "so that none competes with the desks; unset: they use the primary's read connections",
     RESTART},
    {"stats_pool_size", CONF_INT, S(stats_pool_size), "2", 1, 64,
     "database connections to the stats standby (with stats_conninfo); on the primary, the "
     "statistics statements that may run at once (the others wait their turn), so that "
     "reports never take the desks' connections",
     RESTART},
    {"stats_fallback_primary", CONF_BOOL, S(stats_fallback_primary), "false", 0, 0,
     "while the stats standby is unreachable, answer statistics from the primary instead of "
     "'unavailable'",
     RELOAD},
    {"stats_rollup_interval_s", CONF_INT, S(stats_rollup_interval_s), "10", 0, 86400,
     "fold new circulation events into the statistics rollups this often (on the primary); 0: "
     "never (reports still count queued events, only more slowly)",
     RESTART},
    {"rooms_tick_interval_s", CONF_INT, S(rooms_tick_interval_s), "60", 0, 86400,
     "release room bookings not checked in (no-shows), complete ended ones, queue reminders "
     "and anonymise old bookings this often (on the primary); 0: never",
     RESTART},
    {"tickets_tick_interval_s", CONF_INT, S(tickets_tick_interval_s), "60", 0, 86400,
     "flag and escalate tickets against their queue's target and anonymise old closed ones "
     "this often (on the primary); 0: never",
     RESTART},
    {"sip_listen_host", CONF_STRING, S(sip_listen_host), "127.0.0.1", 0, 0,
     "address of the SIP2 port for self-check machines (docs/SIP2.md)", RESTART},
    {"sip_listen_port", CONF_INT, S(sip_listen_port), "0", 0, 65535,
     "TCP port of the SIP2 gateway; 0: no SIP2 port", RESTART},
    {"sip_tls", CONF_BOOL, S(sip_tls), "false", 0, 0,
     "SIP2 over TLS with the daemon's certificate (no client certificates); false: plain TCP, "
     "as most self-check machines speak (keep it on a trusted network)",
     RESTART},
    {"sip_max_connections", CONF_INT, S(sip_max_connections), "256", 1, 100000,
     "SIP2 connections served at once; more are closed at accept", RELOAD},
    {"sip_login_timeout_s", CONF_INT, S(sip_login_timeout_s), "30", 1, 3600,
     "close a SIP2 connection that has not logged in (93) this long after connecting", RELOAD},
    {"sip_idle_timeout_s", CONF_INT, S(sip_idle_timeout_s), "0", 0, 86400,
     "close a SIP2 connection that sent nothing this long; 0: never (kiosks keep one "
     "connection all day)",
     RELOAD},
    {"metrics_listen_host", CONF_STRING, S(metrics_listen_host), "127.0.0.1", 0, 0,
     "address of the Prometheus metrics endpoint (plain HTTP, GET /metrics); keep it local or "
     "on the monitoring network",
     RESTART},
    {"metrics_listen_port", CONF_INT, S(metrics_listen_port), "0", 0, 65535,
     "TCP port of the Prometheus metrics endpoint; 0: no endpoint", RESTART},
    CONF_END,
};

void server_config_locate_sql_dir(void)
{
#if defined(CARREL_BINDIR) && defined(CARREL_BUILD_DIR) && defined(CARREL_SQL_SOURCE_DIR)
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return; /* no /proc: the installed path */
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return;
    *slash = '\0'; /* the directory carreld runs from, symbolic links resolved */
    char build[PATH_MAX];
    if (realpath(CARREL_BUILD_DIR, build) && strcmp(exe, build) == 0) {
        snprintf(server_sql_dir_default, PATH_MAX, "%s", CARREL_SQL_SOURCE_DIR);
        return;
    }
    size_t dir_len = strlen(exe), bin_len = strlen(CARREL_BINDIR);
    if (dir_len > bin_len && strcmp(exe + dir_len - bin_len, CARREL_BINDIR) == 0 &&
        exe[dir_len - bin_len - 1] != '/')
        snprintf(server_sql_dir_default, PATH_MAX, "%.*s%s", (int)(dir_len - bin_len), exe,
                 CARREL_SQL_DIR);
#endif
}

int server_config_validate(const struct server_config *cfg, char *err, size_t errlen)
{
    if (log_level_parse(cfg->log_level) < 0) {
        snprintf(err, errlen, "log_level: '%s' is not debug, info, warn or error",
                 cfg->log_level ? cfg->log_level : "");
        return -1;
    }
    if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
        snprintf(err, errlen, "tls_cert and tls_key must be set (TLS is not optional)");
        return -1;
    }
    /* The settings that need a restart too: a file that would not start is refused now
     * (by --check-config, and by a reload before IT is told it is fine). */
    const struct {
        const char *name, *host;
        bool used;
    } hosts[] = {
        {"listen_host", cfg->listen_host, true},
        {"sip_listen_host", cfg->sip_listen_host, cfg->sip_listen_port != 0},
        {"metrics_listen_host", cfg->metrics_listen_host, cfg->metrics_listen_port != 0},
    };
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        unsigned char addr[sizeof(struct in6_addr)];
        const char *h = hosts[i].host;
        if (hosts[i].used &&
            (h == NULL || inet_pton(strchr(h, ':') ? AF_INET6 : AF_INET, h, addr) != 1)) {
            snprintf(err, errlen, "%s: '%s' is not an IP address", hosts[i].name, h ? h : "");
            return -1;
        }
    }
    const struct {
        const char *name, *conninfo;
    } conninfos[] = {{"db_conninfo", cfg->db_conninfo}, {"stats_conninfo", cfg->stats_conninfo}};
    for (size_t i = 0; i < sizeof(conninfos) / sizeof(conninfos[0]); i++) {
        if (conninfos[i].conninfo == NULL || conninfos[i].conninfo[0] == '\0')
            continue;
        char *why = NULL;
        PQconninfoOption *opts = PQconninfoParse(conninfos[i].conninfo, &why);
        if (opts == NULL) {
            /* Not the value: it may hold a password. */
            snprintf(err, errlen, "%s does not parse: %s", conninfos[i].name,
                     why ? why : "out of memory");
            if (why)
                PQfreemem(why);
            return -1;
        }
        PQconninfoFree(opts);
    }
    struct stat st;
    if (cfg->sql_dir == NULL || stat(cfg->sql_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "sql_dir: '%s' is not a directory", cfg->sql_dir ? cfg->sql_dir : "");
        return -1;
    }
    return 0;
}
