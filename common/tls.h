/*
 * tls: OpenSSL contexts and a memory-BIO TLS engine.
 *
 * The engine never touches a socket. Ciphertext read from the network is fed
 * in with tlsio_feed(); plaintext comes out of tlsio_read(); plaintext to send
 * goes in with tlsio_write() and the ciphertext to put on the wire is taken
 * with tlsio_take_output(). This lets a libuv stream drive TLS without any
 * blocking call (see common/channel.c).
 */
#ifndef CARREL_TLS_H
#define CARREL_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "buf.h"
#include "check.h"

typedef enum {
    TLSIO_OK = 0, /* done / data returned */
    TLSIO_WANT,   /* needs more input from the peer */
    TLSIO_CLOSED, /* the peer sent close_notify */
    TLSIO_ERROR,  /* protocol or certificate failure; see tlsio_error() */
} tlsio_result_t;

typedef struct tlsio {
    SSL *ssl;
    BIO *net_in;  /* we write ciphertext from the network here; SSL reads it */
    BIO *net_out; /* SSL writes ciphertext here; we drain it to the network */
    char error[256];
} tlsio_t;

/* How long a server keeps a session resumable (ticket lifetime, cache timeout). */
#define TLS_SESSION_LIFETIME_S 7200

/*
 * A server context: TLS 1.2 minimum, the certificate chain and key from PEM
 * files, session resumption on (tickets and a session cache; ticket keys of
 * its own, rotated every TLS_SESSION_LIFETIME_S, wiped after twice that). When client_ca
 * is set, client certificates are requested and checked against it;
 * require_client_cert makes them mandatory.
 * Returns NULL and a sentence in err on failure.
 */
CARREL_MUST_USE SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file,
                                            const char *client_ca, bool require_client_cert,
                                            char *err, size_t errlen);
/*
 * A client context that verifies the server against ca_file (and the host
 * name given to tlsio_init). cert/key may be NULL; when set they are offered
 * as the workstation's client certificate. The process keeps the latest
 * session the server gives and offers it when it connects to the same host
 * again with the same client certificate, so a reconnect resumes it.
 */
CARREL_MUST_USE SSL_CTX *tls_client_ctx_new(const char *ca_file, const char *cert_file,
                                            const char *key_file, char *err, size_t errlen);

__attribute__((warn_unused_result)) int tlsio_init(tlsio_t *t, SSL_CTX *ctx, bool server,
                                                   const char *verify_host);
void tlsio_free(tlsio_t *t);
__attribute__((warn_unused_result)) int tlsio_feed(tlsio_t *t, const void *data, size_t len);
/* Advance the handshake. TLSIO_OK once it is complete. */
CARREL_MUST_USE tlsio_result_t tlsio_handshake(tlsio_t *t);
bool tlsio_handshake_done(const tlsio_t *t);
/* Read decrypted bytes; TLSIO_WANT when none are buffered. */
CARREL_MUST_USE tlsio_result_t tlsio_read(tlsio_t *t, void *out, size_t cap, size_t *got);
/* Encrypt plaintext into the output BIO. */
CARREL_MUST_USE tlsio_result_t tlsio_write(tlsio_t *t, const void *data, size_t len);
/* Start a clean shutdown: queue our close_notify. */
void tlsio_shutdown(tlsio_t *t);
/* Move all pending ciphertext to `out`. Returns 0, or -1 when out of memory. */
__attribute__((warn_unused_result)) int tlsio_take_output(tlsio_t *t, struct buf *out);
/* Release the memory BIOs' buffers when they are empty (an idle connection). */
void tlsio_release_buffers(tlsio_t *t);
const char *tlsio_error(const tlsio_t *t);
/* True when the handshake resumed an earlier session (no certificate exchange). */
bool tlsio_resumed(const tlsio_t *t);
/* The negotiated protocol, e.g. "TLSv1.3". */
const char *tlsio_version(const tlsio_t *t);
/*
 * The common name of the verified peer certificate in `out`: 1; 0 when there
 * is no verified certificate; -1 when there is one but its subject has no
 * common name, several, or one that cannot be taken whole as text (a NUL or
 * control character inside, not convertible to UTF-8, or outlen bytes or
 * longer), since a name cut short could be another workstation's.
 */
CARREL_MUST_USE int tlsio_peer_cn(const tlsio_t *t, char *out, size_t outlen);

/* Room for a certificate serial in hexadecimal (tls_serial_hex): 32 bytes at most. */
#define TLS_SERIAL_HEX_MAX 65
/*
 * A certificate's serial number as `openssl x509 -serial` prints it: two
 * upper-case hexadecimal digits a byte, no leading zero byte. 0, or -1 when
 * it does not fit in outlen (out is then "").
 */
CARREL_MUST_USE int tls_serial_hex(const X509 *cert, char *out, size_t outlen);
/*
 * The serial of the verified peer certificate (tls_serial_hex): 1; 0 when
 * there is no verified certificate; -1 when it does not fit. A resumed session
 * keeps the certificate of its first handshake.
 */
CARREL_MUST_USE int tlsio_peer_serial(const tlsio_t *t, char *out, size_t outlen);
/* The one common name of an X.509 name, as tlsio_peer_cn takes it: 1, or -1. */
CARREL_MUST_USE int tls_name_cn(const X509_NAME *name, char *out, size_t outlen);

/*
 * Load the certificate revocation lists of a PEM file into a server context's
 * store and check every client certificate against them (X509_V_FLAG_CRL_CHECK:
 * a certificate whose issuer has no CRL in the file is then refused too).
 * A CRL past its next update is refused (OpenSSL would then refuse every
 * desk). Blocking file I/O: call it where the context is built. 0, or -1
 * with a sentence in err.
 */
CARREL_MUST_USE int tls_server_ctx_load_crl(SSL_CTX *ctx, const char *crl_file, char *err,
                                            size_t errlen);
/* The earliest next update of the CRLs in a server context's store; 0 when it has none. */
time_t tls_server_ctx_crl_next_update(SSL_CTX *ctx);
/*
 * Whether the peer's certificate is revoked by a CRL of ctx's store (a
 * context built later than the connection's, after a reload; or for a
 * resumed session): 1 revoked, 0 not (or ctx has no CRL, or the peer no
 * certificate), -1 it could not be checked. Only revocation is asked (a
 * lookup of the serial under its issuer, cheap enough for every open
 * connection on the loop): an other failure (the client CA changed) does not
 * count.
 */
CARREL_MUST_USE int tlsio_peer_crl_revoked(const tlsio_t *t, SSL_CTX *ctx);
/*
 * A revocation hook: once the chain of a client certificate verifies, the
 * verify callback asks is_revoked(arg, serial) about the client's own
 * certificate (depth 0) and refuses the handshake ("certificate revoked") when
 * it says true. The hook runs on whatever thread runs the handshake; setting
 * it touches only the context. Keeps the context's verify mode. 0 or -1.
 */
typedef bool (*tls_revoked_fn)(void *arg, const char *serial_hex);
CARREL_MUST_USE int tls_server_ctx_set_revoked_hook(SSL_CTX *ctx, tls_revoked_fn is_revoked,
                                                    void *arg);

#endif
