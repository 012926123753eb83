#include "tls.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "text.h"

/* Format the oldest queued OpenSSL error (or `fallback`) and clear the queue. */
static void tls_format_error(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    if (e) {
        char reason[200];
        ERR_error_string_n(e, reason, sizeof(reason));
        snprintf(err, errlen, "%s: %s", what, reason);
    } else {
        snprintf(err, errlen, "%s", what);
    }
    ERR_clear_error();
}

/*
 * Session ticket keys, rotated (REVIEW15C 7). A TLS 1.2 ticket holds the
 * session's master secret encrypted with the ticket key, so a key that lived
 * as long as the daemon (OpenSSL's default: random per context, never
 * changed) would, if it ever leaked, open every recorded TLS 1.2 session that
 * got a ticket. Here a key issues tickets for TLS_SESSION_LIFETIME_S, then
 * only opens them (renewing them with the new key) for as long again, then is
 * wiped: a key is worth at most two lifetimes of traffic. Each server context
 * has its own keys (ex_data), so a SIP session cannot be resumed on the desk
 * port. TLS 1.3 resumes with a fresh (EC)DHE exchange whatever the key.
 */
typedef struct tls_ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    time_t born; /* 0: none */
} tls_ticket_key_t;

typedef struct tls_ticket_keys {
    pthread_mutex_t lock;
    tls_ticket_key_t cur, prev;
} tls_ticket_keys_t;

static int tls_ticket_index = -1;
static pthread_once_t tls_ticket_once = PTHREAD_ONCE_INIT;

static void tls_ticket_keys_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                                 void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    tls_ticket_keys_t *k = ptr;
    if (k == NULL)
        return;
    pthread_mutex_destroy(&k->lock);
    OPENSSL_cleanse(k, sizeof(*k));
    OPENSSL_free(k);
}

static void tls_ticket_index_init(void)
{
    tls_ticket_index =
        CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL, NULL, tls_ticket_keys_free);
}

static int tls_ticket_key_new(tls_ticket_key_t *k, time_t now)
{
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_priv_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_priv_bytes(k->hmac, sizeof(k->hmac)) != 1)
        return -1;
    k->born = now;
    return 0;
}

/* Retire the current key once it has issued tickets for a lifetime; wipe the
 * previous one once the tickets it issued can no longer be valid. */
static int tls_ticket_keys_rotate(tls_ticket_keys_t *k, time_t now)
{
    if (k->cur.born == 0 || now - k->cur.born >= TLS_SESSION_LIFETIME_S) {
        tls_ticket_key_t fresh;
        if (tls_ticket_key_new(&fresh, now) != 0)
            return -1;
        k->prev = k->cur;
        k->cur = fresh;
        OPENSSL_cleanse(&fresh, sizeof(fresh));
    }
    if (k->prev.born != 0 && now - k->prev.born >= 2 * TLS_SESSION_LIFETIME_S)
        OPENSSL_cleanse(&k->prev, sizeof(k->prev));
    return 0;
}

static int tls_ticket_use(const tls_ticket_key_t *key, unsigned char *iv, EVP_CIPHER_CTX *ctx,
                          EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[3];
    params[0] =
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key->hmac, sizeof(key->hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "sha256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    int ok = enc ? EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key->aes, iv)
                 : EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key->aes, iv);
    return ok == 1 ? 0 : -1;
}

static int tls_ticket_key_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
                             EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc)
{
    tls_ticket_keys_t *k = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_ticket_index);
    if (k == NULL)
        return -1;
    int rc = -1;
    pthread_mutex_lock(&k->lock);
    if (tls_ticket_keys_rotate(k, time(NULL)) != 0)
        goto done;
    if (enc) {
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
            goto done;
        memcpy(key_name, k->cur.name, sizeof(k->cur.name));
        rc = tls_ticket_use(&k->cur, iv, ctx, hctx, 1) == 0 ? 1 : -1;
    } else if (memcmp(key_name, k->cur.name, sizeof(k->cur.name)) == 0) {
        rc = tls_ticket_use(&k->cur, iv, ctx, hctx, 0) == 0 ? 1 : -1;
    } else if (k->prev.born != 0 && memcmp(key_name, k->prev.name, sizeof(k->prev.name)) == 0) {
        rc = tls_ticket_use(&k->prev, iv, ctx, hctx, 0) == 0 ? 2 : -1; /* 2: renew it */
    } else {
        rc = 0; /* an unknown or wiped key: a full handshake */
    }
done:
    pthread_mutex_unlock(&k->lock);
    return rc;
}

static int tls_ticket_keys_install(SSL_CTX *ctx)
{
    if (pthread_once(&tls_ticket_once, tls_ticket_index_init) != 0 || tls_ticket_index < 0)
        return -1;
    tls_ticket_keys_t *k = OPENSSL_zalloc(sizeof(*k));
    if (k == NULL)
        return -1;
    if (pthread_mutex_init(&k->lock, NULL) != 0) {
        OPENSSL_free(k);
        return -1;
    }
    if (tls_ticket_keys_rotate(k, time(NULL)) != 0 ||
        SSL_CTX_set_ex_data(ctx, tls_ticket_index, k) != 1) {
        tls_ticket_keys_free(NULL, k, NULL, 0, 0, NULL);
        return -1;
    }
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_key_cb) != 1)
        return -1; /* k is freed with ctx */
    return 0;
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, const char *client_ca,
                            bool require_client_cert, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tls_format_error(err, errlen, "cannot create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* An idle connection then holds no 16 KiB+ record buffers (issue 8, item 28). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /*
     * Session resumption: a desk that reconnects (a network blip, a branch's
     * desks at opening time) skips the certificate exchange and its signature.
     * TLS 1.3 uses tickets, TLS 1.2 the session cache and tickets; the ticket
     * keys are this context's own and rotated (tls_ticket_key_cb). A context id is required once
     * client certificates are verified, else OpenSSL refuses every resumption; a resumed session
     * keeps the verified client certificate (tlsio_peer_cn).
     */
    static const unsigned char sid_ctx[] = "carreld";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 8192);
    SSL_CTX_set_timeout(ctx, TLS_SESSION_LIFETIME_S);
    if (tls_ticket_keys_install(ctx) != 0) {
        tls_format_error(err, errlen, "cannot set up TLS session ticket keys");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        char what[300];
        snprintf(what, sizeof(what), "cannot load server certificate %s", cert_file);
        tls_format_error(err, errlen, what);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char what[300];
        snprintf(what, sizeof(what), "cannot load server key %s", key_file);
        tls_format_error(err, errlen, what);
        goto fail;
    }
    if (client_ca && *client_ca) {
        if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            char what[300];
            snprintf(what, sizeof(what), "cannot load client CA %s", client_ca);
            tls_format_error(err, errlen, what);
            goto fail;
        }
        int mode = SSL_VERIFY_PEER;
        if (require_client_cert)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/*
 * The client's saved session: one per process, for the host it was made with
 * (the name or address the server's certificate was verified against) and the
 * client certificate it was made with, offered by every later connection to
 * that host with the same certificate (tlsio_init): desk mode's reconnects,
 * carrel-bench's desks. A resumed session keeps the first connection's
 * certificate on the server, so a connection with another certificate (or
 * none) must never offer it: it would be taken for the other workstation.
 * Guarded by a lock: a program may connect from several threads. The
 * reference is held until the process ends (reachable, no leak).
 */
static pthread_mutex_t tls_saved_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_SESSION *tls_saved;
static char tls_saved_host[256];
static unsigned char tls_saved_cert[EVP_MAX_MD_SIZE]; /* SHA-256 of the client certificate */

/* The SHA-256 of the connection's client certificate, or all zeroes for none. */
static void tls_client_cert_id(SSL *ssl, unsigned char out[EVP_MAX_MD_SIZE])
{
    memset(out, 0, EVP_MAX_MD_SIZE);
    X509 *cert = SSL_get_certificate(ssl);
    unsigned len = 0;
    if (cert && X509_digest(cert, EVP_sha256(), out, &len) != 1)
        memset(out, 0xff, EVP_MAX_MD_SIZE); /* unknown: matches no saved session's id */
}

/* The host a client connection verifies the server against, or "". */
static void tls_verify_host(SSL *ssl, char *out, size_t outlen)
{
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    const char *host = X509_VERIFY_PARAM_get0_host(param, 0);
    char *ip = host ? NULL : X509_VERIFY_PARAM_get1_ip_asc(param);
    snprintf(out, outlen, "%s", host ? host : ip ? ip : "");
    OPENSSL_free(ip);
}

/*
 * A new session (a TLS 1.3 ticket arrives after the handshake): keep a copy.
 * Not the session itself: OpenSSL marks a connection's session not resumable
 * when the connection ends without our close_notify (the server closed it, the
 * network failed), which is exactly when a desk reconnects.
 */
static int tls_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    char host[sizeof(tls_saved_host)];
    unsigned char cert[EVP_MAX_MD_SIZE];
    tls_verify_host(ssl, host, sizeof(host));
    tls_client_cert_id(ssl, cert);
    if (host[0] == '\0' || !SSL_SESSION_is_resumable(sess))
        return 0;
    SSL_SESSION *copy = SSL_SESSION_dup(sess);
    if (copy == NULL)
        return 0; /* no resumption next time: a full handshake */
    pthread_mutex_lock(&tls_saved_lock);
    SSL_SESSION_free(tls_saved);
    tls_saved = copy;
    snprintf(tls_saved_host, sizeof(tls_saved_host), "%s", host);
    memcpy(tls_saved_cert, cert, sizeof(tls_saved_cert));
    pthread_mutex_unlock(&tls_saved_lock);
    return 0; /* the library keeps its own reference */
}

/* Offer the saved session to a new connection to the same host with the same
 * client certificate, while it is still resumable and unexpired. */
static void tls_offer_saved(SSL *ssl)
{
    char host[sizeof(tls_saved_host)];
    unsigned char cert[EVP_MAX_MD_SIZE];
    tls_verify_host(ssl, host, sizeof(host));
    tls_client_cert_id(ssl, cert);
    time_t now = time(NULL);
    pthread_mutex_lock(&tls_saved_lock);
    if (tls_saved && host[0] && strcmp(host, tls_saved_host) == 0 &&
        memcmp(cert, tls_saved_cert, sizeof(cert)) == 0 && SSL_SESSION_is_resumable(tls_saved) &&
        (time_t)(SSL_SESSION_get_time(tls_saved) + SSL_SESSION_get_timeout(tls_saved)) > now)
        (void)SSL_set_session(ssl, tls_saved); /* a failure: a full handshake, as before */
    pthread_mutex_unlock(&tls_saved_lock);
}

bool tlsio_resumed(const tlsio_t *t)
{
    return t->ssl && SSL_session_reused(t->ssl) == 1;
}

SSL_CTX *tls_client_ctx_new(const char *ca_file, const char *cert_file, const char *key_file,
                            char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        tls_format_error(err, errlen, "cannot create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (ca_file == NULL || SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        char what[300];
        snprintf(what, sizeof(what), "cannot load CA file %s", ca_file ? ca_file : "(none)");
        tls_format_error(err, errlen, what);
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, tls_new_session_cb);
    if (cert_file && *cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, key_file ? key_file : cert_file, SSL_FILETYPE_PEM) !=
                1) {
            char what[300];
            snprintf(what, sizeof(what), "cannot load client certificate %s", cert_file);
            tls_format_error(err, errlen, what);
            goto fail;
        }
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int tlsio_init(tlsio_t *t, SSL_CTX *ctx, bool server, const char *verify_host)
{
    memset(t, 0, sizeof(*t));
    t->ssl = SSL_new(ctx);
    t->net_in = BIO_new(BIO_s_mem());
    t->net_out = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->net_in || !t->net_out) {
        SSL_free(t->ssl);
        BIO_free(t->net_in);
        BIO_free(t->net_out);
        memset(t, 0, sizeof(*t));
        return -1;
    }
    /* An empty memory BIO means "try again later", not end of file. */
    BIO_set_mem_eof_return(t->net_in, -1);
    BIO_set_mem_eof_return(t->net_out, -1);
    SSL_set_bio(t->ssl, t->net_in, t->net_out);
    if (server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (verify_host && *verify_host) {
            /* An address is checked against IP SANs; a name also goes in SNI. */
            unsigned char ip[16];
            bool is_ip = inet_pton(AF_INET, verify_host, ip) == 1 ||
                         inet_pton(AF_INET6, verify_host, ip) == 1;
            int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), verify_host)
                           : SSL_set1_host(t->ssl, verify_host);
            if (!is_ip)
                SSL_set_tlsext_host_name(t->ssl, verify_host);
            if (ok != 1) {
                tlsio_free(t);
                return -1;
            }
            tls_offer_saved(t->ssl);
        }
    }
    return 0;
}

void tlsio_free(tlsio_t *t)
{
    if (t->ssl)
        SSL_free(t->ssl); /* frees both BIOs too */
    memset(t, 0, sizeof(*t));
}

int tlsio_feed(tlsio_t *t, const void *data, size_t len)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int n = BIO_write(t->net_in, data, chunk);
        if (n <= 0)
            return -1;
        data = (const char *)data + n;
        len -= (size_t)n;
    }
    return 0;
}

/* Map an SSL_* return value to our result, recording a readable error. */
static tlsio_result_t tlsio_classify(tlsio_t *t, int rc, const char *what)
{
    int e = SSL_get_error(t->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return TLSIO_WANT;
    case SSL_ERROR_ZERO_RETURN:
        return TLSIO_CLOSED;
    default: {
        long vr = SSL_get_verify_result(t->ssl);
        if (vr != X509_V_OK) {
            snprintf(t->error, sizeof(t->error), "%s: certificate verification failed: %s", what,
                     X509_verify_cert_error_string(vr));
            ERR_clear_error();
        } else {
            tls_format_error(t->error, sizeof(t->error), what);
        }
        return TLSIO_ERROR;
    }
    }
}

tlsio_result_t tlsio_handshake(tlsio_t *t)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1)
        return TLSIO_OK;
    return tlsio_classify(t, rc, "TLS handshake failed");
}

bool tlsio_handshake_done(const tlsio_t *t)
{
    return SSL_is_init_finished(t->ssl);
}

tlsio_result_t tlsio_read(tlsio_t *t, void *out, size_t cap, size_t *got)
{
    ERR_clear_error();
    size_t n = 0;
    int rc = SSL_read_ex(t->ssl, out, cap, &n);
    if (rc == 1) {
        *got = n;
        return TLSIO_OK;
    }
    *got = 0;
    return tlsio_classify(t, rc, "TLS read failed");
}

tlsio_result_t tlsio_write(tlsio_t *t, const void *data, size_t len)
{
    ERR_clear_error();
    size_t done = 0;
    while (done < len) {
        size_t n = 0;
        int rc = SSL_write_ex(t->ssl, (const char *)data + done, len - done, &n);
        if (rc != 1)
            return tlsio_classify(t, rc, "TLS write failed");
        done += n;
    }
    return TLSIO_OK;
}

void tlsio_shutdown(tlsio_t *t)
{
    ERR_clear_error();
    if (SSL_is_init_finished(t->ssl))
        (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

/*
 * A memory BIO keeps the largest buffer it ever held (a 64 KiB read, a
 * megabyte reply). Once it is empty, swap it for a fresh one so that an idle
 * connection holds none. Returns false when out of memory (the old BIO stays).
 */
static bool tlsio_renew_bio(tlsio_t *t, bool input)
{
    BIO *old = input ? t->net_in : t->net_out;
    BUF_MEM *bm = NULL;
    if (BIO_ctrl_pending(old) > 0 || BIO_get_mem_ptr(old, &bm) != 1 || bm == NULL || bm->max == 0)
        return true;
    BIO *fresh = BIO_new(BIO_s_mem());
    if (fresh == NULL)
        return false;
    BIO_set_mem_eof_return(fresh, -1);
    if (input) {
        SSL_set0_rbio(t->ssl, fresh); /* frees the old one */
        t->net_in = fresh;
    } else {
        SSL_set0_wbio(t->ssl, fresh);
        t->net_out = fresh;
    }
    return true;
}

void tlsio_release_buffers(tlsio_t *t)
{
    if (t->ssl == NULL)
        return;
    (void)tlsio_renew_bio(t, true); /* out of memory: keep the old buffer, no harm */
    (void)tlsio_renew_bio(t, false);
}

int tlsio_take_output(tlsio_t *t, struct buf *out)
{
    size_t pending;
    while ((pending = BIO_ctrl_pending(t->net_out)) > 0) {
        if (buf_reserve(out, pending) != 0)
            return -1;
        int n = BIO_read(t->net_out, out->data + out->len, (int)pending);
        if (n <= 0)
            break;
        out->len += (size_t)n;
    }
    return 0;
}

const char *tlsio_error(const tlsio_t *t)
{
    return t->error[0] ? t->error : "TLS failure";
}

const char *tlsio_version(const tlsio_t *t)
{
    return SSL_get_version(t->ssl);
}

/* The one common name, whole, as UTF-8 text: 1, or -1 (see tlsio_peer_cn). */
int tls_name_cn(const X509_NAME *name, char *out, size_t outlen)
{
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
        return -1;
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    int rc = -1;
    if (n > 0 && (size_t)n < outlen && text_check(utf8, (size_t)n, NULL, NULL) == TEXT_OK) {
        memcpy(out, utf8, (size_t)n);
        out[n] = '\0';
        rc = 1;
    }
    OPENSSL_free(utf8);
    return rc;
}

static int tls_cert_cn(X509 *cert, char *out, size_t outlen)
{
    return tls_name_cn(X509_get_subject_name(cert), out, outlen);
}

int tlsio_peer_cn(const tlsio_t *t, char *out, size_t outlen)
{
    out[0] = '\0';
    X509 *cert = SSL_get1_peer_certificate(t->ssl);
    if (cert == NULL)
        return 0;
    int rc = 0;
    if (SSL_get_verify_result(t->ssl) == X509_V_OK)
        rc = tls_cert_cn(cert, out, outlen);
    X509_free(cert);
    if (rc < 0)
        out[0] = '\0';
    return rc;
}

int tls_serial_hex(const X509 *cert, char *out, size_t outlen)
{
    out[0] = '\0';
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
    /* A negative serial (never carreld's) would print as its absolute value. */
    if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER)
        return -1;
    const unsigned char *p = ASN1_STRING_get0_data(serial);
    int n = ASN1_STRING_length(serial);
    while (n > 1 && p[0] == 0) { /* as i2a_ASN1_INTEGER prints it */
        p++;
        n--;
    }
    if (n <= 0 || (size_t)n * 2 + 1 > outlen)
        return -1;
    for (int i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02X", p[i]);
    return 0;
}

int tlsio_peer_serial(const tlsio_t *t, char *out, size_t outlen)
{
    out[0] = '\0';
    X509 *cert = SSL_get1_peer_certificate(t->ssl);
    if (cert == NULL)
        return 0;
    int rc = 0;
    if (SSL_get_verify_result(t->ssl) == X509_V_OK)
        rc = tls_serial_hex(cert, out, outlen) == 0 ? 1 : -1;
    X509_free(cert);
    return rc;
}

int tls_server_ctx_load_crl(SSL_CTX *ctx, const char *crl_file, char *err, size_t errlen)
{
    ERR_clear_error(); /* the end of the file is told by the error it leaves */
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    time_t now = time(NULL);
    char what[300];
    snprintf(what, sizeof(what), "cannot load the revocation list %s", crl_file);
    BIO *in = BIO_new_file(crl_file, "r");
    if (in == NULL) {
        tls_format_error(err, errlen, what);
        return -1;
    }
    int loaded = 0;
    X509_CRL *crl;
    while ((crl = PEM_read_bio_X509_CRL(in, NULL, NULL, NULL)) != NULL) {
        /* OpenSSL takes a stale CRL, then refuses every certificate of its CA
         * ("CRL has expired"): refused here, where IT sees why. */
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
        struct tm tm;
        if (next == NULL || ASN1_TIME_to_tm(next, &tm) != 1) {
            X509_CRL_free(crl);
            BIO_free(in);
            snprintf(err, errlen, "%s: CRL %d has no next update time", what, loaded + 1);
            return -1;
        }
        time_t t = timegm(&tm);
        if (t <= now) {
            char when[40];
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
            X509_CRL_free(crl);
            BIO_free(in);
            snprintf(err, errlen,
                     "%s: CRL %d expired at %s (its next update); every desk of its CA would be "
                     "refused: make a new one (openssl ca -gencrl)",
                     what, loaded + 1, when);
            return -1;
        }
        int ok = X509_STORE_add_crl(store, crl);
        X509_CRL_free(crl);
        if (ok != 1) {
            BIO_free(in);
            tls_format_error(err, errlen, what);
            return -1;
        }
        loaded++;
    }
    BIO_free(in);
    /* The loop ends at the first thing that is not a CRL: the end of the file, or garbage. */
    unsigned long e = ERR_peek_last_error();
    bool at_end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    if (loaded == 0 && at_end) {
        ERR_clear_error();
        snprintf(err, errlen, "%s: no PEM CRL in it", what);
        return -1;
    }
    if (!at_end) {
        tls_format_error(err, errlen, what);
        return -1;
    }
    ERR_clear_error();
    if (X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) != 1) {
        tls_format_error(err, errlen, what);
        return -1;
    }
    return 0;
}

time_t tls_server_ctx_crl_next_update(SSL_CTX *ctx)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    time_t earliest = 0;
    if (store == NULL || !X509_STORE_lock(store))
        return 0;
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
    for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        X509_CRL *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));
        const ASN1_TIME *next = crl ? X509_CRL_get0_nextUpdate(crl) : NULL;
        struct tm tm;
        if (next == NULL || ASN1_TIME_to_tm(next, &tm) != 1)
            continue;
        time_t t = timegm(&tm);
        if (earliest == 0 || t < earliest)
            earliest = t;
    }
    X509_STORE_unlock(store);
    return earliest;
}

/*
 * A lookup, not a verification: the serial and issuer in the CRLs of the
 * store (sorted by OpenSSL on first use), so that a reload can go through
 * every open connection on the loop cheaply. The CRLs are IT's own file, and
 * a listing only ever closes a connection.
 */
int tlsio_peer_crl_revoked(const tlsio_t *t, SSL_CTX *ctx)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    if (store == NULL ||
        !(X509_VERIFY_PARAM_get_flags(X509_STORE_get0_param(store)) & X509_V_FLAG_CRL_CHECK))
        return 0; /* no CRL in this context */
    X509 *cert = SSL_get1_peer_certificate(t->ssl);
    if (cert == NULL)
        return 0;
    if (!X509_STORE_lock(store)) {
        X509_free(cert);
        return -1;
    }
    int revoked = 0;
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
    for (int i = 0; !revoked && i < sk_X509_OBJECT_num(objs); i++) {
        X509_CRL *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));
        X509_REVOKED *entry = NULL;
        /* 1: listed (2 would be a delta CRL's removeFromCRL: not revoked). */
        if (crl && X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(cert)) == 0 &&
            X509_CRL_get0_by_cert(crl, &entry, cert) == 1)
            revoked = 1;
    }
    X509_STORE_unlock(store);
    X509_free(cert);
    return revoked;
}

/* The hook of a server context (ex_data), freed with it. */
typedef struct tls_revoked_hook {
    tls_revoked_fn is_revoked;
    void *arg;
} tls_revoked_hook_t;

static int tls_hook_index = -1;
static pthread_once_t tls_hook_once = PTHREAD_ONCE_INIT;

static void tls_hook_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                          void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    OPENSSL_free(ptr);
}

static void tls_hook_index_init(void)
{
    tls_hook_index =
        CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL, NULL, tls_hook_free);
}

/*
 * OpenSSL's verdict first (chain, dates, the CRL when one is loaded); then,
 * for the client's own certificate, the revoked set the hook consults.
 */
static int tls_verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
    if (!preverify_ok || X509_STORE_CTX_get_error_depth(xs) != 0)
        return preverify_ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (ssl == NULL)
        return preverify_ok;
    const tls_revoked_hook_t *h = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_hook_index);
    X509 *cert = X509_STORE_CTX_get_current_cert(xs);
    char serial[TLS_SERIAL_HEX_MAX];
    if (h == NULL || cert == NULL || tls_serial_hex(cert, serial, sizeof(serial)) != 0)
        return preverify_ok; /* a serial too long for ours was never issued by carreld */
    if (h->is_revoked(h->arg, serial)) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REVOKED);
        return 0;
    }
    return 1;
}

int tls_server_ctx_set_revoked_hook(SSL_CTX *ctx, tls_revoked_fn is_revoked, void *arg)
{
    if (pthread_once(&tls_hook_once, tls_hook_index_init) != 0 || tls_hook_index < 0)
        return -1;
    tls_revoked_hook_t *h = OPENSSL_zalloc(sizeof(*h));
    if (h == NULL)
        return -1;
    h->is_revoked = is_revoked;
    h->arg = arg;
    tls_revoked_hook_t *old = SSL_CTX_get_ex_data(ctx, tls_hook_index);
    if (SSL_CTX_set_ex_data(ctx, tls_hook_index, h) != 1) {
        OPENSSL_free(h);
        return -1;
    }
    OPENSSL_free(old); /* set twice: the first is replaced, not leaked */
    SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), tls_verify_cb);
    return 0;
}
