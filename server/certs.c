#include "certs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "conn.h"
#include "db.h"
#include "log.h"
#include "server.h"
#include "tls.h"

/* ---- carreld --issue-cert: one-shot, blocking is fine ---- */

/* "carreld: <sentence>[: <OpenSSL's reason>]" on stderr; returns 1. */
static int issue_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int issue_fail(const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    unsigned long e = ERR_get_error();
    if (e) {
        char reason[256];
        ERR_error_string_n(e, reason, sizeof(reason));
        fprintf(stderr, "carreld: %s: %s\n", msg, reason);
    } else {
        fprintf(stderr, "carreld: %s\n", msg);
    }
    ERR_clear_error();
    return 1;
}

/* A key a desk may use: EC P-256 or P-384, or RSA of 2048 bits or more. */
static bool issue_key_ok(EVP_PKEY *key, char *what, size_t whatlen)
{
    int id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_EC) {
        char group[64] = "";
        size_t len = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &len) != 1)
            group[0] = '\0';
        snprintf(what, whatlen, "an EC key on curve %s", group[0] ? group : "(unknown)");
        return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0 ||
               strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0;
    }
    if (id == EVP_PKEY_RSA) {
        snprintf(what, whatlen, "an RSA key of %d bits", EVP_PKEY_get_bits(key));
        return EVP_PKEY_get_bits(key) >= 2048;
    }
    snprintf(what, whatlen, "a key of type %s", OBJ_nid2sn(id));
    return false;
}

/* A time as PostgreSQL reads it ("2027-01-31 12:00:00+00"); -1 if it cannot be read. */
static int issue_time_text(const ASN1_TIME *t, char *out, size_t outlen)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    if (strftime(out, outlen, "%Y-%m-%d %H:%M:%S+00", &tm) == 0)
        return -1;
    return 0;
}

static int issue_add_ext(X509 *cert, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

/* The certificate for the CSR's key, signed by the CA; NULL (said) on failure. */
static X509 *issue_sign(const certs_issue_t *opt, X509_REQ *req, X509 *ca, EVP_PKEY *ca_key)
{
    X509 *cert = X509_new();
    X509_NAME *subject = X509_NAME_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    unsigned char rnd[16];
    if (cert == NULL || subject == NULL || RAND_bytes(rnd, sizeof(rnd)) != 1)
        goto fail;
    rnd[0] &= 0x7f; /* positive, and 16 bytes long as printed */
    if (rnd[0] == 0)
        rnd[0] = 0x01;
    bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
    serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    time_t now = time(NULL);
    if (serial == NULL || X509_set_version(cert, X509_VERSION_3) != 1 ||
        X509_set_serialNumber(cert, serial) != 1 ||
        X509_set_issuer_name(cert, X509_get_subject_name(ca)) != 1 ||
        X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)opt->workstation, -1, -1, 0) != 1 ||
        X509_set_subject_name(cert, subject) != 1 ||
        X509_time_adj_ex(X509_getm_notBefore(cert), 0, -300, &now) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(cert), (int)opt->days, 0, &now) == NULL ||
        X509_set_pubkey(cert, X509_REQ_get0_pubkey(req)) != 1)
        goto fail;
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, ca, cert, NULL, NULL, 0);
    if (issue_add_ext(cert, &v3, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        issue_add_ext(cert, &v3, NID_key_usage, "critical,digitalSignature") != 0 ||
        issue_add_ext(cert, &v3, NID_ext_key_usage, "clientAuth") != 0 ||
        issue_add_ext(cert, &v3, NID_subject_key_identifier, "hash") != 0 ||
        issue_add_ext(cert, &v3, NID_authority_key_identifier, "keyid:always") != 0)
        goto fail;
    int ca_type = EVP_PKEY_get_base_id(ca_key);
    const EVP_MD *md =
        ca_type == EVP_PKEY_ED25519 || ca_type == EVP_PKEY_ED448 ? NULL : EVP_sha256();
    if (X509_sign(cert, ca_key, md) <= 0)
        goto fail;
    X509_NAME_free(subject);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return cert;
fail:
    issue_fail("cannot make the certificate");
    X509_free(cert);
    X509_NAME_free(subject);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return NULL;
}

/* Write text to a new file (mode 0644: a certificate is public). 0, or -1 (errno). */
static int issue_write_new(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            close(fd);
            unlink(path);
            errno = e;
            return -1;
        }
        done += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(path);
        errno = e;
        return -1;
    }
    return 0;
}

/* Run sql; on failure print the database's sentence and return -1. */
static int issue_exec(PGconn *pg, const char *sql, int n, const char *const *values)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        fprintf(stderr, "carreld: %s\n", primary ? primary : PQresultErrorMessage(r));
        rc = -1;
    }
    PQclear(r);
    return rc;
}

/* Record the certificate and write it, in one transaction: a file is left only
 * for a certificate on record. */
static int issue_record(const struct server_config *cfg, const certs_issue_t *opt, X509 *cert,
                        const char *serial, const char *fingerprint, const char *pem,
                        size_t pem_len)
{
    char not_before[40], not_after[40];
    if (issue_time_text(X509_get0_notBefore(cert), not_before, sizeof(not_before)) != 0 ||
        issue_time_text(X509_get0_notAfter(cert), not_after, sizeof(not_after)) != 0)
        return issue_fail("cannot read the certificate's validity");
    PGconn *pg = PQconnectdb(cfg->db_conninfo);
    int rc = 1;
    bool written = false;
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "carreld: %s", PQerrorMessage(pg));
        goto done;
    }
    const char *values[5] = {opt->workstation, serial, not_before, not_after, fingerprint};
    if (issue_exec(pg, "BEGIN", 0, NULL) != 0 ||
        issue_exec(pg, "SELECT workstation_cert_record($1, $2, $3, $4, $5)", 5, values) != 0)
        goto done;
    if (opt->out_file) {
        if (issue_write_new(opt->out_file, pem, pem_len) != 0) {
            fprintf(stderr, "carreld: cannot write %s: %s%s\n", opt->out_file, strerror(errno),
                    errno == EEXIST ? " (an existing file is never overwritten)" : "");
            goto done;
        }
        written = true;
    }
    if (issue_exec(pg, "COMMIT", 0, NULL) != 0) {
        if (written)
            unlink(opt->out_file);
        goto done;
    }
    if (opt->out_file == NULL && fwrite(pem, 1, pem_len, stdout) != pem_len) {
        fprintf(stderr, "carreld: cannot write the certificate to standard output\n");
        goto done;
    }
    fprintf(opt->out_file ? stdout : stderr,
            "issued certificate %s for workstation %s, valid until %s UTC%s%s\nSHA-256 %s\n",
            serial, opt->workstation, not_after, opt->out_file ? ", in " : "",
            opt->out_file ? opt->out_file : "", fingerprint);
    rc = 0;
done:
    PQfinish(pg);
    return rc;
}

int certs_issue_main(const struct server_config *cfg, const certs_issue_t *opt)
{
    if (opt->csr_file == NULL || opt->ca_cert_file == NULL || opt->ca_key_file == NULL) {
        fprintf(stderr, "carreld: --issue-cert needs --csr, --ca-cert and --ca-key\n");
        return 2;
    }
    if (opt->days < 1 || opt->days > CERTS_MAX_DAYS) {
        fprintf(stderr, "carreld: --days must be 1 to %d\n", CERTS_MAX_DAYS);
        return 2;
    }
    if (opt->out_file && access(opt->out_file, F_OK) == 0) {
        fprintf(stderr, "carreld: %s exists; an existing file is never overwritten\n",
                opt->out_file);
        return 1;
    }
    int rc = 1;
    X509_REQ *req = NULL;
    X509 *ca = NULL, *cert = NULL;
    EVP_PKEY *ca_key = NULL;
    BIO *in = NULL, *mem = NULL;

    if ((in = BIO_new_file(opt->csr_file, "r")) == NULL ||
        (req = PEM_read_bio_X509_REQ(in, NULL, NULL, NULL)) == NULL) {
        rc = issue_fail("cannot read a PEM certificate signing request from %s", opt->csr_file);
        goto done;
    }
    BIO_free(in);
    in = NULL;
    EVP_PKEY *key = X509_REQ_get0_pubkey(req);
    if (key == NULL || X509_REQ_verify(req, key) != 1) {
        rc = issue_fail("%s: the request's signature does not verify", opt->csr_file);
        goto done;
    }
    char cn[128];
    if (tls_name_cn(X509_REQ_get_subject_name(req), cn, sizeof(cn)) != 1) {
        rc = issue_fail("%s: the request's subject needs exactly one common name (CN)",
                        opt->csr_file);
        goto done;
    }
    if (strcmp(cn, opt->workstation) != 0) {
        rc = issue_fail("%s: the request is for CN=%s, not for workstation %s; refused",
                        opt->csr_file, cn, opt->workstation);
        goto done;
    }
    char what[128];
    if (!issue_key_ok(key, what, sizeof(what))) {
        rc = issue_fail("%s: the request has %s; use EC P-256 (carrel cert request makes one)",
                        opt->csr_file, what);
        goto done;
    }
    if ((in = BIO_new_file(opt->ca_cert_file, "r")) == NULL ||
        (ca = PEM_read_bio_X509(in, NULL, NULL, NULL)) == NULL) {
        rc = issue_fail("cannot read the CA certificate %s", opt->ca_cert_file);
        goto done;
    }
    BIO_free(in);
    /* NULL callback: OpenSSL asks on the terminal for the pass phrase of an encrypted key. */
    if ((in = BIO_new_file(opt->ca_key_file, "r")) == NULL ||
        (ca_key = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL)) == NULL) {
        rc = issue_fail("cannot read the CA key %s", opt->ca_key_file);
        goto done;
    }
    BIO_free(in);
    in = NULL;
    if (X509_check_ca(ca) < 1) {
        rc = issue_fail("%s is not a CA certificate", opt->ca_cert_file);
        goto done;
    }
    if (X509_check_private_key(ca, ca_key) != 1) {
        rc = issue_fail("%s is not the key of %s", opt->ca_key_file, opt->ca_cert_file);
        goto done;
    }
    if ((cert = issue_sign(opt, req, ca, ca_key)) == NULL)
        goto done;
    if (ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(ca)) > 0) {
        rc = issue_fail("the CA certificate expires before %ld days from now; give fewer --days "
                        "or renew the CA",
                        opt->days);
        goto done;
    }
    char serial[TLS_SERIAL_HEX_MAX];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char fingerprint[2 * EVP_MAX_MD_SIZE + 1];
    if (tls_serial_hex(cert, serial, sizeof(serial)) != 0 ||
        X509_digest(cert, EVP_sha256(), md, &mdlen) != 1) {
        rc = issue_fail("cannot read the new certificate");
        goto done;
    }
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(fingerprint + 2 * i, 3, "%02x", md[i]);
    char *pem = NULL;
    long pem_len;
    if ((mem = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509(mem, cert) != 1 ||
        (pem_len = BIO_get_mem_data(mem, &pem)) <= 0) {
        rc = issue_fail("cannot encode the certificate");
        goto done;
    }
    rc = issue_record(cfg, opt, cert, serial, fingerprint, pem, (size_t)pem_len);
done:
    BIO_free(in);
    BIO_free(mem);
    X509_REQ_free(req);
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
    return rc;
}

/* ---- the revoked set, the poll and the expiry check (loop thread) ---- */

typedef char certs_serial_t[TLS_SERIAL_HEX_MAX];

typedef struct certs {
    server_t *srv;
    certs_serial_t *revoked; /* sorted, for bsearch */
    size_t nrevoked, cap;
    /* Serials this daemon revoked while a poll was on its way: its answer
     * may have been read before they were committed, so they are kept. */
    certs_serial_t *pending;
    size_t npending, pending_cap;
    uv_timer_t timer;
    bool timer_open;
    bool busy;         /* a poll or expiry check is in flight */
    bool stopped;      /* draining: answers still on their way are dropped */
    bool loaded;       /* the set was read from the database once */
    bool failing;      /* the last poll failed (logged once until one succeeds) */
    uint64_t check_at; /* uv_now() of the next expiry check (0: at the first chance) */
} certs_t;

/* Before the first read succeeds, the poll is retried this often. */
#define CERTS_RETRY_MS 250
#define CERTS_DAY_MS   (24ull * 3600 * 1000)
/* At most this many expiry lines a check; the rest are counted. */
#define CERTS_EXPIRY_LINES 50

enum { POLL_SERIAL, POLL_NCOLS };
/* The whole set: revocations are rare (a stolen laptop), and an expired
 * certificate fails its handshake anyway (a day of slack for clocks). */
static const db_stmt_t stmt_certs_poll = {
    "certs_poll", "SELECT serial FROM workstation_cert"
                  " WHERE revoked_at IS NOT NULL AND not_after > now() - interval '1 day'"};

enum { EXPIRY_NAME, EXPIRY_SERIAL, EXPIRY_NOT_AFTER, EXPIRY_EXPIRED, EXPIRY_NCOLS };
/* The workstations whose newest certificate, not revoked, expires within $1 days. */
static const db_stmt_t stmt_certs_expiring = {
    "certs_expiring",
    "SELECT w.name, c.serial, api_time(c.not_after), c.not_after <= now()"
    "  FROM workstation w"
    "  JOIN LATERAL (SELECT * FROM workstation_cert wc WHERE wc.workstation_id = w.id"
    "                 ORDER BY wc.issued_at DESC, wc.id DESC LIMIT 1) c ON true"
    " WHERE c.revoked_at IS NULL AND c.not_after < now() + make_interval(days => $1::int)"
    " ORDER BY c.not_after, w.name"};

void certs_register_statements(void)
{
    db_stmt_register(&stmt_certs_poll);
    db_stmt_register(&stmt_certs_expiring);
}

static int certs_serial_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Append to a serial array, growing it. 0, or -1 out of memory. */
static int certs_push(certs_serial_t **arr, size_t *n, size_t *cap, const char *serial)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        certs_serial_t *grown = realloc(*arr, ncap * sizeof(**arr));
        if (grown == NULL)
            return -1;
        *arr = grown;
        *cap = ncap;
    }
    snprintf((*arr)[*n], sizeof((*arr)[*n]), "%s", serial);
    (*n)++;
    return 0;
}

bool certs_is_revoked(const server_t *srv, const char *serial)
{
    const certs_t *c = srv->certs;
    if (c == NULL || serial == NULL || serial[0] == '\0' || c->nrevoked == 0)
        return false;
    return bsearch(serial, c->revoked, c->nrevoked, sizeof(*c->revoked), certs_serial_cmp) != NULL;
}

int certs_revoked_add(server_t *srv, const char *serial)
{
    certs_t *c = srv->certs;
    if (c == NULL || certs_is_revoked(srv, serial))
        return 0;
    if (certs_push(&c->revoked, &c->nrevoked, &c->cap, serial) != 0)
        return -1;
    qsort(c->revoked, c->nrevoked, sizeof(*c->revoked), certs_serial_cmp);
    if (c->busy && certs_push(&c->pending, &c->npending, &c->pending_cap, serial) != 0)
        return -1;
    return 0;
}

int certs_close_revoked(server_t *srv, const conn_t *flush_first)
{
    int closed = 0;
    conn_t *next;
    for (conn_t *c = srv->conns; c; c = next) {
        next = c->next;
        if (c->closed || c->ch.closing || !certs_is_revoked(srv, c->cert_serial))
            continue;
        log_warn(c->id, "closing %s: its client certificate %s (%s) is revoked", c->peer,
                 c->cert_serial, c->cert_cn);
        if (c == flush_first)
            conn_close_after_flush(c, "client certificate revoked");
        else
            conn_close(c, "client certificate revoked");
        closed++;
    }
    return closed;
}

static bool certs_hook(void *arg, const char *serial)
{
    return certs_is_revoked(arg, serial);
}

int certs_tls_setup(server_t *srv, SSL_CTX *ctx, const struct server_config *cfg, char *err,
                    size_t errlen)
{
    if (tls_server_ctx_set_revoked_hook(ctx, certs_hook, srv) != 0) {
        snprintf(err, errlen, "cannot set up the certificate revocation check");
        return -1;
    }
    if (cfg->tls_crl_file && *cfg->tls_crl_file) {
        if (cfg->tls_client_ca == NULL || *cfg->tls_client_ca == '\0') {
            snprintf(err, errlen,
                     "tls_crl_file is set but tls_client_ca is not: no client "
                     "certificate is checked");
            return -1;
        }
        if (tls_server_ctx_load_crl(ctx, cfg->tls_crl_file, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static void certs_timer_cb(uv_timer_t *t);

static void certs_expiry_done(const db_result_t *r, void *arg)
{
    certs_t *c = arg;
    db_result_t fit;
    c->busy = false;
    if (c->stopped)
        return;
    r = db_fit(r, EXPIRY_NCOLS, &fit);
    if (r->status != DB_OK) {
        log_warn(0, "cannot check the workstation certificates' expiry: %s",
                 r->message ? r->message : "database unavailable");
        c->check_at = uv_now(c->srv->loop) + 60 * 1000; /* soon again */
        return;
    }
    int n = PQntuples(r->res);
    for (int i = 0; i < n && i < CERTS_EXPIRY_LINES; i++)
        log_warn(0,
                 "workstation %s: its certificate %s %s %s; issue a new one (OPERATIONS.md, "
                 "certificates)",
                 db_text(r->res, i, EXPIRY_NAME), db_text(r->res, i, EXPIRY_SERIAL),
                 db_bool(r->res, i, EXPIRY_EXPIRED) ? "expired" : "expires",
                 db_text(r->res, i, EXPIRY_NOT_AFTER));
    if (n > CERTS_EXPIRY_LINES)
        log_warn(0, "and %d more workstation certificates expire within %ld days",
                 n - CERTS_EXPIRY_LINES, c->srv->cfg.cert_warn_days);
}

/* The expiry check, when due and nothing else is in flight. */
static void certs_maybe_check_expiry(certs_t *c)
{
    uint64_t now = uv_now(c->srv->loop);
    if (c->busy || c->stopped || now < c->check_at)
        return;
    char days[24];
    snprintf(days, sizeof(days), "%ld", c->srv->cfg.cert_warn_days);
    const char *values[1] = {days};
    c->check_at = now + CERTS_DAY_MS;
    if (db_exec_short(c->srv->db, &stmt_certs_expiring, 1, values, NULL, NULL, certs_expiry_done,
                      c) == 0)
        c->busy = true;
    else
        c->check_at = now + 60 * 1000;
}

static void certs_poll_done(const db_result_t *r, void *arg)
{
    certs_t *c = arg;
    db_result_t fit;
    c->busy = false;
    if (c->stopped)
        return;
    r = db_fit(r, POLL_NCOLS, &fit);
    if (r->status != DB_OK) {
        c->npending = 0;
        if (!c->failing)
            log_warn(0,
                     "cannot read the revoked workstation certificates: %s; revocations made "
                     "through other daemons wait until it can",
                     r->message ? r->message : "database unavailable");
        c->failing = true;
        return;
    }
    if (c->failing)
        log_info(0, "reading the revoked workstation certificates again");
    c->failing = false;
    int n = PQntuples(r->res);
    size_t cap = (size_t)n + c->npending + 1;
    certs_serial_t *set = malloc(cap * sizeof(*set));
    if (set == NULL) {
        c->npending = 0;
        log_error(0, "out of memory reading the revoked workstation certificates");
        return;
    }
    size_t count = 0;
    for (int i = 0; i < n; i++)
        snprintf(set[count++], sizeof(*set), "%s", db_text(r->res, i, POLL_SERIAL));
    for (size_t i = 0; i < c->npending; i++)
        snprintf(set[count++], sizeof(*set), "%s", c->pending[i]);
    c->npending = 0;
    qsort(set, count, sizeof(*set), certs_serial_cmp);
    size_t before = c->nrevoked;
    free(c->revoked);
    c->revoked = set;
    c->nrevoked = count;
    c->cap = cap;
    if (!c->loaded) {
        c->loaded = true;
        log_info(0, "%zu revoked workstation certificate(s) on record", count);
        uint64_t ms = (uint64_t)c->srv->cfg.revocation_poll_s * 1000;
        uv_timer_start(&c->timer, certs_timer_cb, ms, ms);
    } else if (count != before) {
        log_info(0, "%zu revoked workstation certificate(s) on record (was %zu)", count, before);
    }
    certs_close_revoked(c->srv, NULL);
    certs_maybe_check_expiry(c);
}

static void certs_timer_cb(uv_timer_t *t)
{
    certs_t *c = t->data;
    if (c->busy || c->stopped || c->srv->db == NULL)
        return;
    c->npending = 0;
    if (db_exec_short(c->srv->db, &stmt_certs_poll, 0, NULL, NULL, NULL, certs_poll_done, c) == 0)
        c->busy = true;
}

int certs_start(server_t *srv)
{
    certs_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_error(0, "out of memory");
        return -1;
    }
    c->srv = srv;
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    srv->certs = c;
    /* Until the first read succeeds (the pool is still connecting), retry often. */
    uv_timer_start(&c->timer, certs_timer_cb, 0, CERTS_RETRY_MS);
    return 0;
}

void certs_stop(server_t *srv)
{
    certs_t *c = srv->certs;
    if (c == NULL || c->stopped)
        return;
    c->stopped = true;
    if (c->timer_open) {
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, NULL);
        c->timer_open = false;
    }
}

void certs_free(server_t *srv)
{
    certs_t *c = srv->certs;
    if (c == NULL)
        return;
    free(c->revoked);
    free(c->pending);
    free(c);
    srv->certs = NULL;
}
