/*
 * Unit tests for the workstation-certificate helpers of common/tls.c: the
 * serial as `openssl x509 -serial` prints it, the one common name of a
 * name, the CRL file loader's refusals (an expired CRL among them), the
 * revocation hook set twice.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls.h"

/* A certificate with only its serial set, from big-endian bytes. */
static X509 *cert_with_serial(const unsigned char *bytes, int n)
{
    X509 *x = X509_new();
    BIGNUM *bn = BN_bin2bn(bytes, n, NULL);
    ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
    assert_non_null(x);
    assert_non_null(ai);
    assert_int_equal(X509_set_serialNumber(x, ai), 1);
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return x;
}

static void test_serial_hex(void **state)
{
    (void)state;
    char out[TLS_SERIAL_HEX_MAX];
    static const unsigned char s1[] = {0x00, 0x0a, 0xff, 0x01};
    X509 *x = cert_with_serial(s1, sizeof(s1));
    assert_int_equal(tls_serial_hex(x, out, sizeof(out)), 0);
    assert_string_equal(out, "0AFF01"); /* no leading zero byte, two digits a byte */
    char small[6];
    assert_int_equal(tls_serial_hex(x, small, sizeof(small)), -1);
    assert_string_equal(small, "");
    X509_free(x);

    unsigned char s2[16];
    memset(s2, 0xab, sizeof(s2));
    s2[0] = 0x7f;
    x = cert_with_serial(s2, sizeof(s2));
    assert_int_equal(tls_serial_hex(x, out, sizeof(out)), 0);
    assert_int_equal(strlen(out), 32);
    assert_string_equal(out, "7FABABABABABABABABABABABABABABAB");
    X509_free(x);

    unsigned char s3[40];
    memset(s3, 0x11, sizeof(s3)); /* 40 bytes: longer than any serial of ours */
    x = cert_with_serial(s3, sizeof(s3));
    assert_int_equal(tls_serial_hex(x, out, sizeof(out)), -1);
    X509_free(x);
}

static void test_serial_negative(void **state)
{
    (void)state;
    char out[TLS_SERIAL_HEX_MAX];
    static const unsigned char s[] = {0x12, 0x34};
    X509 *x = X509_new();
    BIGNUM *bn = BN_bin2bn(s, sizeof(s), NULL);
    BN_set_negative(bn, 1);
    ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
    assert_int_equal(X509_set_serialNumber(x, ai), 1);
    /* -1234 is not 1234: never taken as another certificate's serial. */
    assert_int_equal(tls_serial_hex(x, out, sizeof(out)), -1);
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    X509_free(x);
}

static bool never_revoked(void *arg, const char *serial)
{
    (void)arg, (void)serial;
    return false;
}

static void test_revoked_hook_set_twice(void **state)
{
    (void)state;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(tls_server_ctx_set_revoked_hook(ctx, never_revoked, NULL), 0);
    /* The first hook is freed, not leaked (LeakSanitizer says so). */
    assert_int_equal(tls_server_ctx_set_revoked_hook(ctx, never_revoked, NULL), 0);
    SSL_CTX_free(ctx);
}

/* A PEM file holding one CRL of a throwaway issuer whose next update is next_s
 * seconds from now (negative: past). */
static void write_crl(const char *path, long next_s)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_CRL *crl = X509_CRL_new();
    X509_NAME *issuer = X509_NAME_new();
    assert_non_null(key);
    assert_non_null(crl);
    X509_NAME_add_entry_by_txt(issuer, "CN", MBSTRING_UTF8, (const unsigned char *)"Test CA", -1,
                               -1, 0);
    assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, issuer), 1);
    ASN1_TIME *last = X509_time_adj_ex(NULL, 0, -3600, NULL);
    ASN1_TIME *next = X509_time_adj_ex(NULL, 0, next_s, NULL);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, last), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, next), 1);
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509_CRL(f, crl), 1);
    fclose(f);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    X509_NAME_free(issuer);
    X509_CRL_free(crl);
    EVP_PKEY_free(key);
}

static void test_crl_next_update(void **state)
{
    (void)state;
    char err[512];
    char path[] = "/tmp/carrel-test-crl-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    /* Past its next update: OpenSSL would refuse every desk; refused here instead. */
    write_crl(path, -60);
    assert_int_equal(tls_server_ctx_load_crl(ctx, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "expired at"));
    assert_int_equal(tls_server_ctx_crl_next_update(ctx), 0);
    /* A good one: loaded, its next update known. */
    write_crl(path, 86400);
    time_t now = time(NULL);
    assert_int_equal(tls_server_ctx_load_crl(ctx, path, err, sizeof(err)), 0);
    time_t next = tls_server_ctx_crl_next_update(ctx);
    assert_true(next >= now + 86400 - 5 && next <= now + 86400 + 5);
    unlink(path);
    SSL_CTX_free(ctx);
}

static void test_name_cn(void **state)
{
    (void)state;
    char out[64];
    X509_NAME *n = X509_NAME_new();
    assert_int_equal(tls_name_cn(n, out, sizeof(out)), -1); /* none */
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"Library", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"desk-dwn", -1, -1,
                               0);
    assert_int_equal(tls_name_cn(n, out, sizeof(out)), 1);
    assert_string_equal(out, "desk-dwn");
    char tiny[8]; /* "desk-dwn" does not fit whole: refused, never cut */
    assert_int_equal(tls_name_cn(n, tiny, sizeof(tiny)), -1);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"desk-prk", -1, -1,
                               0);
    assert_int_equal(tls_name_cn(n, out, sizeof(out)), -1); /* two */
    X509_NAME_free(n);
}

static void test_crl_file_refusals(void **state)
{
    (void)state;
    char err[512];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(tls_server_ctx_load_crl(ctx, "/nonexistent/crl.pem", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot load the revocation list /nonexistent/crl.pem"));

    char path[] = "/tmp/carrel-test-crl-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(tls_server_ctx_load_crl(ctx, path, err, sizeof(err)), -1); /* empty */
    assert_non_null(strstr(err, "no PEM CRL"));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n", f);
    fclose(f);
    assert_int_equal(tls_server_ctx_load_crl(ctx, path, err, sizeof(err)), -1); /* garbage */
    assert_non_null(strstr(err, "cannot load the revocation list"));
    unlink(path);
    /* Nothing was turned on. */
    assert_int_equal(
        X509_VERIFY_PARAM_get_flags(X509_STORE_get0_param(SSL_CTX_get_cert_store(ctx))) &
            X509_V_FLAG_CRL_CHECK,
        0);
    SSL_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serial_hex),
        cmocka_unit_test(test_serial_negative),
        cmocka_unit_test(test_revoked_hook_set_twice),
        cmocka_unit_test(test_crl_next_update),
        cmocka_unit_test(test_name_cn),
        cmocka_unit_test(test_crl_file_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
