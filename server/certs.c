#include "certs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
#include "handlers.h"
#include "log.h"
#include "migrate.h"
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
typedef struct issue_ca_text {
    char subject[512]; /* the CA's subject, one line (X509_NAME_oneline) */
    char sha256[2 * EVP_MAX_MD_SIZE + 1];
} issue_ca_text_t;

static int issue_record(const struct server_config *cfg, const certs_issue_t *opt, X509 *cert,
                        const issue_ca_text_t *ca, const char *serial, const char *fingerprint,
                        const char *pem, size_t pem_len)
{
    char not_before[40], not_after[40];
    if (issue_time_text(X509_get0_notBefore(cert), not_before, sizeof(not_before)) != 0 ||
        issue_time_text(X509_get0_notAfter(cert), not_after, sizeof(not_after)) != 0)
        return issue_fail("cannot read the certificate's validity");
    /* Never ahead of an upgrade: a carreld newer than the schema signs, but
     * does not migrate (IT's step, with the daemons stopped). */
    if (migrate_require_current(cfg->db_conninfo, cfg->sql_dir, "--issue-cert") != 0)
        return 1;
    PGconn *pg = PQconnectdb(cfg->db_conninfo);
    int rc = 1;
    bool written = false;
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "carreld: %s", PQerrorMessage(pg));
        goto done;
    }
    /* Who signed, where: the operating system's user and host (the database
     * adds its own user and the client address). */
    const struct passwd *pw = getpwuid(geteuid());
    char os_user[64], host[256];
    snprintf(os_user, sizeof(os_user), "%s", pw && pw->pw_name ? pw->pw_name : "?");
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "?");
    host[sizeof(host) - 1] = '\0';
    const char *values[9] = {opt->workstation, serial, not_before,  not_after, fingerprint,
                             os_user,          host,   ca->subject, ca->sha256};
    if (issue_exec(pg, "BEGIN", 0, NULL) != 0 ||
        issue_exec(pg, "SELECT workstation_cert_record($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9,
                   values) != 0)
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
            "issued certificate %s for workstation %s, valid until %.19s UTC%s%s\nSHA-256 %s\n",
            serial, opt->workstation, not_after, opt->out_file ? ", in " : "",
            opt->out_file ? opt->out_file : "", fingerprint);
    rc = 0;
done:
    PQfinish(pg);
    return rc;
}

/* True when ca is one of the certificates of the PEM bundle the daemon trusts
 * for desks (tls_client_ca): a certificate signed by another CA would only
 * fail its handshake, and hide the desk's real one in the list. */
static bool issue_ca_trusted(const struct server_config *cfg, X509 *ca)
{
    if (cfg->tls_client_ca == NULL || *cfg->tls_client_ca == '\0') {
        issue_fail("tls_client_ca is not set: the daemons check no client certificate, so "
                   "none is issued (OPERATIONS.md, certificates)");
        return false;
    }
    BIO *in = BIO_new_file(cfg->tls_client_ca, "r");
    if (in == NULL) {
        issue_fail("cannot read tls_client_ca %s", cfg->tls_client_ca);
        return false;
    }
    bool found = false;
    X509 *one;
    while (!found && (one = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        found = X509_cmp(one, ca) == 0;
        X509_free(one);
    }
    BIO_free(in);
    ERR_clear_error();
    if (!found)
        issue_fail("the CA certificate is not in tls_client_ca (%s): the daemons would refuse "
                   "what it signs",
                   cfg->tls_client_ca);
    return found;
}

/* The CA key is the library's: refused when others may read it or it is not
 * the user's own (as ssh does with its keys). 0, or 1 (said). */
static int issue_key_file_ok(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "carreld: cannot read the CA key %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (st.st_uid != geteuid()) {
        fprintf(stderr, "carreld: the CA key %s belongs to another user; refused\n", path);
        return 1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        fprintf(stderr, "carreld: the CA key %s may be read by others (mode %03o); chmod 600 it\n",
                path, (unsigned)(st.st_mode & 0777));
        return 1;
    }
    return 0;
}

/* The --out file goes into a directory nobody else may write to (they could
 * swap the file before the desk takes it). 0, or 1 (said). */
static int issue_out_dir_ok(const char *out)
{
    char *copy = strdup(out);
    if (copy == NULL)
        return 1;
    struct stat st;
    const char *dir = dirname(copy);
    int rc = 0;
    if (stat(dir, &st) != 0) {
        fprintf(stderr, "carreld: cannot use the directory of %s: %s\n", out, strerror(errno));
        rc = 1;
    } else if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
        fprintf(stderr, "carreld: %s is in a directory anyone may write to (%s); refused\n", out,
                dir);
        rc = 1;
    }
    free(copy);
    return rc;
}

/* A PEM private key without encryption: only warned about. */
static void issue_warn_unencrypted(const char *path)
{
    BIO *in = BIO_new_file(path, "r");
    char line[128];
    bool encrypted = false;
    while (in && BIO_gets(in, line, sizeof(line)) > 0)
        if (strstr(line, "ENCRYPTED")) {
            encrypted = true;
            break;
        }
    BIO_free(in);
    if (!encrypted)
        fprintf(stderr, "carreld: warning: the CA key %s has no pass phrase\n", path);
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
    if ((opt->out_file && issue_out_dir_ok(opt->out_file) != 0) ||
        issue_key_file_ok(opt->ca_key_file) != 0)
        return 1;
    issue_warn_unencrypted(opt->ca_key_file);
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
    if (!issue_ca_trusted(cfg, ca))
        goto done;
    issue_ca_text_t ca_text;
    unsigned char ca_md[EVP_MAX_MD_SIZE];
    unsigned ca_mdlen = 0;
    if (X509_NAME_oneline(X509_get_subject_name(ca), ca_text.subject,
                          (int)sizeof(ca_text.subject)) == NULL ||
        X509_digest(ca, EVP_sha256(), ca_md, &ca_mdlen) != 1) {
        rc = issue_fail("cannot read the CA certificate %s", opt->ca_cert_file);
        goto done;
    }
    for (unsigned i = 0; i < ca_mdlen; i++)
        snprintf(ca_text.sha256 + 2 * i, 3, "%02x", ca_md[i]);
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
    rc = issue_record(cfg, opt, cert, &ca_text, serial, fingerprint, pem, (size_t)pem_len);
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

bool certs_loaded(const server_t *srv)
{
    return srv->certs != NULL && srv->certs->loaded;
}

bool certs_conn_crl_revoked(server_t *srv, conn_t *c)
{
    if (c->cert_serial[0] == '\0' || srv->tls == NULL)
        return 0;
    int r = tlsio_peer_crl_revoked(&c->ch.tls, srv->tls);
    if (r < 0)
        log_warn(c->id, "cannot check %s's client certificate %s against the CRL", c->peer,
                 c->cert_serial);
    return r > 0;
}

/* The CRL of the desks' context expires within this: warned at each check. */
#define CERTS_CRL_WARN_S (7 * 24 * 3600)

/* Log when the CRL in use needs renewing (warn within a week). */
static void certs_crl_report(server_t *srv, bool always)
{
    time_t next = srv->tls ? tls_server_ctx_crl_next_update(srv->tls) : 0;
    if (next == 0)
        return;
    char when[40];
    struct tm tm;
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&next, &tm));
    time_t now = time(NULL);
    if (next - now < CERTS_CRL_WARN_S)
        log_warn(0,
                 "the revocation list (tls_crl_file) %s at %s; after that every desk is "
                 "refused: make a new one and reload (OPERATIONS.md, certificates)",
                 next <= now ? "expired" : "expires", when);
    else if (always)
        log_info(0, "the revocation list (tls_crl_file) is valid until %s", when);
}

void certs_after_reload(server_t *srv)
{
    certs_crl_report(srv, true);
    int closed = 0;
    conn_t *next;
    for (conn_t *c = srv->conns; c; c = next) {
        next = c->next;
        if (c->closed || c->ch.closing || c->cert_serial[0] == '\0')
            continue;
        bool in_set = certs_is_revoked(srv, c->cert_serial);
        if (!in_set && !certs_conn_crl_revoked(srv, c))
            continue;
        log_warn(c->id, "closing %s: its client certificate %s (%s) is revoked%s", c->peer,
                 c->cert_serial, c->cert_cn, in_set ? "" : " by the revocation list");
        conn_close(c, "client certificate revoked");
        closed++;
    }
    if (closed > 0)
        log_info(0, "reload: closed %d connection(s) using revoked certificates", closed);
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
    certs_crl_report(c->srv, c->check_at == 0);
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
    bool first = !c->loaded;
    if (first) {
        c->loaded = true;
        log_info(0, "%zu revoked workstation certificate(s) on record", count);
        uint64_t ms = (uint64_t)c->srv->cfg.revocation_poll_s * 1000;
        uv_timer_start(&c->timer, certs_timer_cb, ms, ms);
    } else if (count != before) {
        log_info(0, "%zu revoked workstation certificate(s) on record (was %zu)", count, before);
    }
    certs_close_revoked(c->srv, NULL);
    if (first)
        auth_certs_loaded(c->srv); /* the logins with a certificate that waited */
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
