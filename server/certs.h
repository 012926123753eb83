/*
 * certs: the workstations' certificates.
 *
 *   - carreld --issue-cert: IT signs a desk's certificate signing request
 *     with the library CA on the server and records the certificate in
 *     workstation_cert (migration 035); one-shot, before and instead of the
 *     loop, so it may block.
 *   - The revoked set: the serials of revoked certificates this daemon
 *     refuses at the handshake (the verify hook common/tls.c calls, depth 0)
 *     and whose open connections it closes. A WorkstationRevoke through this
 *     daemon adds its serials at once (server/admin.c); every
 *     revocation_poll_s the daemon re-reads the whole set of revoked,
 *     unexpired certificates from the database (revocations made through
 *     another daemon). The set lives in the server and is only touched on the
 *     loop thread: the TLS contexts (built on a worker thread by a reload)
 *     only keep a pointer to the server.
 *   - The expiry warning: at start and daily, one log line per workstation
 *     whose newest certificate expires within cert_warn_days.
 *   - The certificate revocation list file (tls_crl_file), loaded into each
 *     desk TLS context where it is built (server_tls_ctx_build).
 */
#ifndef CARREL_CERTS_H
#define CARREL_CERTS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "check.h"

typedef struct server server_t;
typedef struct conn conn_t;
struct server_config;

/* The validity --issue-cert gives by default, and the most it gives (CA/Browser's old cap). */
#define CERTS_DEFAULT_DAYS 397
#define CERTS_MAX_DAYS     825

/* What carreld --issue-cert was asked. */
typedef struct certs_issue {
    const char *workstation; /* the registered workstation; the CSR's CN must be this */
    const char *csr_file;
    const char *ca_cert_file;
    const char *ca_key_file;
    long days;
    const char *out_file; /* NULL: the PEM on stdout */
} certs_issue_t;

/*
 * carreld --issue-cert: check the CSR (its signature; its subject's one CN is
 * the workstation's name; its key EC P-256/P-384 or RSA of 2048 bits or more),
 * that the workstation is registered, sign a client certificate with the CA
 * (random 16-byte serial, clientAuth, digitalSignature, CA:FALSE, SKI/AKI,
 * valid from five minutes ago for `days`), record it with its audit row and
 * write the PEM (the file is made new, never overwritten). Blocking (libpq,
 * files): before and instead of the loop. Returns the process's exit code
 * (0, 1 a refusal or failure, said on stderr, 2 a usage error).
 */
int certs_issue_main(const struct server_config *cfg, const certs_issue_t *opt);

/* Register the statements of the poll and the expiry check (before the pool starts). */
void certs_register_statements(void);
/* Make the revoked set and start its timer: the first read at once, then every
 * revocation_poll_s, the expiry check at start and daily. 0, or -1 (logged). */
CARREL_MUST_USE int certs_start(server_t *srv);
/* Stop the timer (drain). Answers still on their way are dropped. */
void certs_stop(server_t *srv);
/* Free the set once the loop has ended. */
void certs_free(server_t *srv);
/*
 * Set up a desk TLS context being built from cfg: the revocation hook (the
 * server's revoked set) and, when tls_crl_file is set, the CRL file.
 * Thread-safe: it reads cfg and the file, and writes only the context.
 */
CARREL_MUST_USE int certs_tls_setup(server_t *srv, SSL_CTX *ctx, const struct server_config *cfg,
                                    char *err, size_t errlen);
/* True once the revoked set was read from the database: until then a client
 * certificate cannot be told good from revoked, and Login refuses it (auth.c). */
bool certs_loaded(const server_t *srv);
/* True when the connection's client certificate is revoked by the CRL of the
 * desks' current context (srv->tls): a reload that brought a new CRL, or a
 * resumed session (no certificate check at its handshake). Loop thread. */
bool certs_conn_crl_revoked(server_t *srv, conn_t *c);
/*
 * After a reload swapped srv->tls in (server/reload.c): close the open
 * connections whose certificate the new context's CRL, or the revoked set,
 * refuses (a renewed CRL revokes open desks too, not only new handshakes),
 * and log the CRL's next update. Loop thread.
 */
void certs_after_reload(server_t *srv);
/* True when the serial (tls_serial_hex) is in the revoked set. Loop thread only. */
bool certs_is_revoked(const server_t *srv, const char *serial);
/* Add a serial revoked through this daemon to the set. 0, or -1 out of memory. */
CARREL_MUST_USE int certs_revoked_add(server_t *srv, const char *serial);
/*
 * Close every open connection whose client certificate is in the revoked set;
 * `flush_first` (may be NULL: only compared) gets what is queued for it sent
 * first (the answer to the WorkstationRevoke that revoked its own
 * certificate). Returns how many were closed.
 */
int certs_close_revoked(server_t *srv, const conn_t *flush_first);

#endif
