/*
 * Certificates at the desk: `carrel cert request` makes the workstation's
 * private key and a certificate signing request for IT, locally (no server,
 * no profile needed). The key never leaves the desk: IT signs the request on
 * the server (carreld --issue-cert) and sends back only the certificate.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli.h"

/* A workstation name as the database allows it (migration 001): ^[a-z0-9][a-z0-9._-]{1,62}$. */
static bool cert_valid_workstation(const char *name)
{
    size_t n = strlen(name);
    if (n < 2 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (i > 0 && (c == '.' || c == '_' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

/* OpenSSL's reason for the last failure, for a sentence. */
static const char *cert_ossl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0)
        return "unknown error";
    ERR_error_string_n(e, buf, len);
    return buf;
}

/* Open a new file with mode, never an existing one; a FILE, or NULL (errno). */
static FILE *cert_create(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        int e = errno;
        close(fd);
        unlink(path);
        errno = e;
    }
    return f;
}

/* Close a written file, its data on disk; 0, or -1 (the file removed). */
static int cert_finish_file(FILE *f, const char *path)
{
    int rc = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        unlink(path);
    return rc;
}

static int run_cert_request(cli_t *cli, int argc, char **argv)
{
    const char *workstation = NULL, *key_path = NULL, *out_path = NULL;
    static const struct option opts[] = {{"workstation", required_argument, NULL, 'w'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"out", required_argument, NULL, 'o'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "w:k:o:", opts, NULL)) != -1) {
        switch (ch) {
        case 'w':
            workstation = optarg;
            break;
        case 'k':
            key_path = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        default:
            return cli_fail(cli, EXIT_USAGE,
                            "usage: cert request --workstation NAME --key FILE --out FILE.csr");
        }
    }
    if (optind != argc || workstation == NULL || key_path == NULL || out_path == NULL)
        return cli_fail(cli, EXIT_USAGE,
                        "usage: cert request --workstation NAME --key FILE --out FILE.csr");
    if (!cert_valid_workstation(workstation))
        return cli_fail(cli, EXIT_USAGE,
                        "'%s' is not a workstation name: 2-63 lower-case letters, digits, '.', "
                        "'_' or '-', starting with a letter or digit",
                        workstation);
    if (strcmp(key_path, out_path) == 0)
        return cli_fail(cli, EXIT_USAGE, "--key and --out must be two files");
    /* Neither file may exist: a key is never overwritten (the desk's only copy). */
    struct stat st;
    if (stat(key_path, &st) == 0)
        return cli_fail(cli, EXIT_LOCAL, "%s exists; a key is never overwritten", key_path);
    if (stat(out_path, &st) == 0)
        return cli_fail(cli, EXIT_LOCAL, "%s exists; choose another --out", out_path);

    char why[256];
    int code = EXIT_LOCAL;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    FILE *kf = NULL, *rf = NULL;
    bool key_written = false;
    if (key == NULL || req == NULL || name == NULL ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)workstation,
                                   -1, -1, 0) != 1 ||
        X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
        X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        code = cli_fail(cli, EXIT_LOCAL, "cannot make the key and request: %s",
                        cert_ossl_reason(why, sizeof(why)));
        goto done;
    }
    if ((kf = cert_create(key_path, 0600)) == NULL) {
        code = cli_fail(cli, EXIT_LOCAL, "cannot create %s: %s", key_path, strerror(errno));
        goto done;
    }
    key_written = true;
    int ok = PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL);
    FILE *f = kf;
    kf = NULL;
    if (cert_finish_file(f, key_path) != 0 || ok != 1) {
        key_written = false;
        code = cli_fail(cli, EXIT_LOCAL, "cannot write %s", key_path);
        goto done;
    }
    if ((rf = cert_create(out_path, 0644)) == NULL) {
        code = cli_fail(cli, EXIT_LOCAL, "cannot create %s: %s", out_path, strerror(errno));
        goto done;
    }
    ok = PEM_write_X509_REQ(rf, req);
    f = rf;
    rf = NULL;
    if (cert_finish_file(f, out_path) != 0 || ok != 1) {
        code = cli_fail(cli, EXIT_LOCAL, "cannot write %s", out_path);
        goto done;
    }
    if (cli->json) {
        json_t j;
        json_init(&j);
        json_object_begin(&j);
        json_key(&j, "workstation");
        json_string(&j, workstation);
        json_key(&j, "key");
        json_string(&j, key_path);
        json_key(&j, "csr");
        json_string(&j, out_path);
        json_object_end(&j);
        json_print(&j, stdout);
        json_free(&j);
    } else {
        printf("made key %s (keep it on this desk) and request %s for workstation %s;\n"
               "give the request to IT: carreld --issue-cert %s --csr FILE ...\n",
               key_path, out_path, workstation, workstation);
    }
    code = EXIT_OK;
done:
    if (code != EXIT_OK && key_written)
        unlink(key_path); /* no request made: no key left behind either */
    EVP_PKEY_free(key);
    X509_REQ_free(req);
    X509_NAME_free(name);
    return code;
}

const command_t cert_commands[] = {
    {.path = "cert request",
     .run = run_cert_request,
     .needs_login = false,
     .usage = "--workstation NAME --key FILE --out FILE.csr",
     .summary = "make this desk's private key (EC P-256, mode 0600, never overwritten) and a "
                "certificate signing request with CN=NAME for IT (no server needed)"},
    {.path = NULL},
};
