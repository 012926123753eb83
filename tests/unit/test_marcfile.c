/*
 * Unit tests for client/marcfile.c: splitting ISO 2709 buffers into records
 * the way mature readers do (filler skipped, records found by their
 * terminator, what cannot be a record reported with its position), and
 * loading the sample files in tests/unit/data, the malformed ones included.
 *
 * The data directory comes from CARREL_TEST_DATA (set by meson).
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

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "marcfile.h"

#define FT "\x1e"
#define RT "\x1d"

/*
 * A well-formed record with one 245 $a `title`, written into out (room for 200
 * bytes). If `length` is not NULL it replaces the leader's record length.
 * Returns the record's length in bytes.
 */
static size_t make_record(char *out, const char *title, const char *length)
{
    char data[128];
    int dlen = snprintf(data, sizeof(data),
                        "10\x1f"
                        "a%s" FT,
                        title);
    int base = 24 + 12 + 1;
    int total = base + dlen + 1;
    int n = snprintf(out, 200, "%05dnam a22%05d a 4500245%04d00000" FT "%s" RT, total, base, dlen,
                     data);
    assert_int_equal(n, total);
    if (length)
        memcpy(out, length, 5);
    return (size_t)total;
}

/* Concatenate pieces (strings, and "\0" given with its length) into a buffer. */
typedef struct file {
    uint8_t bytes[4096];
    size_t size;
} file_t;

static size_t put(file_t *f, const void *data, size_t len)
{
    assert_true(f->size + len <= sizeof(f->bytes));
    size_t at = f->size;
    memcpy(f->bytes + f->size, data, len);
    f->size += len;
    return at;
}

static size_t put_record(file_t *f, const char *title, const char *length)
{
    char rec[200];
    size_t n = make_record(rec, title, length);
    return put(f, rec, n);
}

static void expect_record(const marcfile_t *mf, size_t i, int64_t position, int64_t offset,
                          size_t len, const file_t *f)
{
    assert_true(i < mf->nrecords);
    const marcfile_record_t *r = &mf->records[i];
    assert_int_equal(r->position, position);
    assert_int_equal(r->offset, offset);
    assert_int_equal(r->len, len);
    assert_false(r->xml);
    if (f)
        assert_ptr_equal(r->data, f->bytes + offset);
    assert_int_equal(r->data[r->len - 1], 0x1D);
}

static void expect_problem(const marcfile_t *mf, size_t i, int64_t position, int64_t offset,
                           const char *message)
{
    assert_true(i < mf->nproblems);
    const marcfile_problem_t *p = &mf->problems[i];
    assert_int_equal(p->position, position);
    assert_int_equal(p->offset, offset);
    if (strstr(p->message, message) == NULL)
        fail_msg("problem '%s' does not mention '%s'", p->message, message);
}

/* ---- marcfile_split_iso2709 ---- */

static void test_back_to_back(void **state)
{
    (void)state;
    file_t f = {.size = 0};
    size_t o1 = put_record(&f, "One", NULL);
    size_t o2 = put_record(&f, "Second title", NULL);
    size_t o3 = put_record(&f, "Three", NULL);
    size_t l1 = o2 - o1, l2 = o3 - o2, l3 = f.size - o3;
    assert_int_equal(l1, 24 + 13 + 3 + 4 + 1 + 1);

    marcfile_t mf;
    memset(&mf, 0, sizeof(mf));
    marcfile_split_iso2709(&mf, f.bytes, f.size);
    assert_int_equal(mf.nrecords, 3);
    assert_int_equal(mf.nproblems, 0);
    expect_record(&mf, 0, 1, (int64_t)o1, l1, &f);
    expect_record(&mf, 1, 2, (int64_t)o2, l2, &f);
    expect_record(&mf, 2, 3, (int64_t)o3, l3, &f);
    assert_memory_equal(mf.records[1].data + 24 + 13 + 4, "Second title", 12);
    marcfile_free(&mf);
    assert_int_equal(mf.nrecords, 0);
    assert_null(mf.records);
}

static void test_filler_skipped(void **state)
{
    (void)state;
    file_t f = {.size = 0};
    put(&f, "\0\0 \n", 4);
    size_t o1 = put_record(&f, "One", NULL);
    put(&f, "\r\n\t  \0", 6);
    size_t o2 = put_record(&f, "Two", NULL);
    put(&f, "\x1a", 1); /* DOS end-of-file mark */
    size_t o3 = put_record(&f, "Three", NULL);
    put(&f, "\n\x1a\0", 3);

    marcfile_t mf;
    memset(&mf, 0, sizeof(mf));
    marcfile_split_iso2709(&mf, f.bytes, f.size);
    assert_int_equal(mf.nrecords, 3);
    assert_int_equal(mf.nproblems, 0);
    assert_int_equal(o1, 4);
    expect_record(&mf, 0, 1, 4, 46, &f);
    expect_record(&mf, 1, 2, (int64_t)o2, 46, &f);
    expect_record(&mf, 2, 3, (int64_t)o3, 48, &f);
    marcfile_free(&mf);
}

static void test_nothing_to_split(void **state)
{
    (void)state;
    marcfile_t mf;
    memset(&mf, 0, sizeof(mf));
    marcfile_split_iso2709(&mf, (const uint8_t *)"", 0);
    assert_int_equal(mf.nrecords, 0);
    assert_int_equal(mf.nproblems, 0);
    marcfile_split_iso2709(&mf, (const uint8_t *)" \n\0\x1a", 4);
    assert_int_equal(mf.nrecords, 0);
    assert_int_equal(mf.nproblems, 0);
    marcfile_free(&mf);
}

static void test_wrong_leader_length_found_by_terminator(void **state)
{
    (void)state;
    file_t f = {.size = 0};
    size_t o1 = put_record(&f, "Too long a length", "00999"); /* past the end of the file */
    size_t o2 = put_record(&f, "Too short a length", "00030");
    size_t o3 = put_record(&f, "Right", NULL);
    size_t o4 = put_record(&f, "Ok", NULL);

    marcfile_t mf;
    memset(&mf, 0, sizeof(mf));
    marcfile_split_iso2709(&mf, f.bytes, f.size);
    assert_int_equal(mf.nrecords, 4);
    assert_int_equal(mf.nproblems, 0);
    expect_record(&mf, 0, 1, (int64_t)o1, o2 - o1, &f);
    expect_record(&mf, 1, 2, (int64_t)o2, o3 - o2, &f);
    expect_record(&mf, 2, 3, (int64_t)o3, o4 - o3, &f);
    expect_record(&mf, 3, 4, (int64_t)o4, f.size - o4, &f);
    /* The bytes are handed on as they are; the server repairs the leader and warns. */
    assert_memory_equal(mf.records[0].data, "00999", 5);
    marcfile_free(&mf);
}

static void test_non_numeric_leader_length(void **state)
{
    (void)state;
    file_t f = {.size = 0};
    size_t o1 = put_record(&f, "Fine", NULL);
    size_t o2 = put_record(&f, "Bad length", "01BAD");
    size_t o3 = put_record(&f, "Fine again", NULL);

    marcfile_t mf;
    memset(&mf, 0, sizeof(mf));
    marcfile_split_iso2709(&mf, f.bytes, f.size);
    assert_int_equal(mf.nrecords, 3);
    assert_int_equal(mf.nproblems, 0);
    expect_record(&mf, 1, 2, (int64_t)o2, o3 - o2, &f);
    assert_memory_equal(mf.records[1].data, "01BAD", 5);
    expect_record(&mf, 2, 3, (int64_t)o3, f.size - o3, &f);
    (void)o1;
    marcfile_free(&mf);
}

static void test_empty_record_reported(void **state)
{
    (void)state;
    file_t f = {.size = 0};
    size_t o1 = put_record(&f, "One", NULL);
    size_t oe = put(&f, RT, 1);
    size_t o3 = put_record(&f, "Three", NULL);
    size_t os = put(&f, "00010nam" RT, 9); /* a leader cut short, then a terminator */
    size_t o5 = put_record(&f, "Five", NULL);

    marcfile_t mf;
    memset(&mf, 0, sizeof(mf));
    marcfile_split_iso2709(&mf, f.bytes, f.size);
    assert_int_equal(mf.nrecords, 3);
    assert_int_equal(mf.nproblems, 2);
    expect_record(&mf, 0, 1, (int64_t)o1, oe - o1, &f);
    expect_problem(&mf, 0, 2, (int64_t)oe, "an empty or truncated record (1 bytes) was skipped");
    expect_record(&mf, 1, 3, (int64_t)o3, os - o3, &f);
    expect_problem(&mf, 1, 4, (int64_t)os, "an empty or truncated record (9 bytes) was skipped");
    expect_record(&mf, 2, 5, (int64_t)o5, f.size - o5, &f);
    marcfile_free(&mf);
}

static void test_trailing_stray_bytes_reported(void **state)
{
    (void)state;
    file_t f = {.size = 0};
    put_record(&f, "One", NULL);
    size_t o2 = put_record(&f, "Two", NULL);
    size_t os = put(&f, "7", 1);

    marcfile_t mf;
    memset(&mf, 0, sizeof(mf));
    marcfile_split_iso2709(&mf, f.bytes, f.size);
    assert_int_equal(mf.nrecords, 2);
    expect_record(&mf, 1, 2, (int64_t)o2, os - o2, &f);
    assert_int_equal(mf.nproblems, 1);
    expect_problem(&mf, 0, 3, (int64_t)os, "1 stray bytes at the end of the file are not a record");
    marcfile_free(&mf);

    /* Filler after the stray bytes does not hide them. */
    put(&f, "xyz\n\n", 5);
    memset(&mf, 0, sizeof(mf));
    marcfile_split_iso2709(&mf, f.bytes, f.size);
    assert_int_equal(mf.nrecords, 2);
    assert_int_equal(mf.nproblems, 1);
    expect_problem(&mf, 0, 3, (int64_t)os, "6 stray bytes");
    marcfile_free(&mf);
}

static void test_last_record_without_terminator(void **state)
{
    (void)state;
    file_t f = {.size = 0};
    size_t o1 = put_record(&f, "One", NULL);
    char rec[200];
    size_t n = make_record(rec, "Truncated", NULL);
    size_t o2 = put(&f, rec, n - 1); /* the terminator is missing */

    marcfile_t mf;
    memset(&mf, 0, sizeof(mf));
    marcfile_split_iso2709(&mf, f.bytes, f.size);
    assert_int_equal(mf.nrecords, 1);
    expect_record(&mf, 0, 1, (int64_t)o1, o2 - o1, &f);
    assert_int_equal(mf.nproblems, 1);
    expect_problem(&mf, 0, 2, (int64_t)o2,
                   "the last record has no end-of-record mark (truncated file?)");
    marcfile_free(&mf);
}

/* ---- marcfile_load on the sample files ---- */

static char *data_path(const char *name)
{
    static char path[4096];
    const char *dir = getenv("CARREL_TEST_DATA");
    if (dir == NULL)
        fail_msg("CARREL_TEST_DATA is not set (run through meson test)");
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

static void load_ok(marcfile_t *mf, const char *name)
{
    char err[512] = "";
    if (marcfile_load(mf, data_path(name), err, sizeof(err)) != 0)
        fail_msg("marcfile_load(%s): %s", name, err);
}

static void test_load_filler(void **state)
{
    (void)state;
    marcfile_t mf;
    load_ok(&mf, "malformed/filler.usmarc");
    assert_false(mf.xml);
    assert_int_equal(mf.size, 2018);
    assert_int_equal(mf.nrecords, 3);
    assert_int_equal(mf.nproblems, 0);
    expect_record(&mf, 0, 1, 1, 755, NULL); /* a NUL before the first record */
    expect_record(&mf, 1, 2, 765, 647, NULL);
    expect_record(&mf, 2, 3, 1412, 605, NULL);
    marcfile_free(&mf);
}

static void test_load_cameleof(void **state)
{
    (void)state;
    marcfile_t mf;
    load_ok(&mf, "malformed/cameleof.usmarc");
    assert_int_equal(mf.nrecords, 10);
    assert_int_equal(mf.nproblems, 0);
    for (size_t i = 0; i < mf.nrecords; i++)
        assert_int_equal(mf.records[i].position, (int64_t)i + 1);
    expect_record(&mf, 0, 1, 0, 755, NULL);
    expect_record(&mf, 1, 2, 756, 647, NULL); /* after the 0x1A */
    expect_record(&mf, 9, 10, 5898, 696, NULL);
    marcfile_free(&mf);
}

/*
 * Strict readers (MARC::Record) stop at the empty record: 2 records, 1 warning.
 * This splitter skips the empty record and keeps going, so it recovers the 4
 * good records after it as well: 6 records, and 2 problems (the empty record at
 * position 3, the stray trailing '7' at position 8).
 */
static void test_load_badldr(void **state)
{
    (void)state;
    marcfile_t mf;
    load_ok(&mf, "malformed/badldr.usmarc");
    assert_int_equal(mf.nrecords, 6);
    assert_int_equal(mf.nproblems, 2);
    static const int64_t position[] = {1, 2, 4, 5, 6, 7};
    static const int64_t offset[] = {0, 240, 473, 818, 1068, 1319};
    static const size_t len[] = {240, 232, 345, 250, 251, 398};
    for (size_t i = 0; i < 6; i++)
        expect_record(&mf, i, position[i], offset[i], len[i], NULL);
    expect_problem(&mf, 0, 3, 472, "an empty or truncated record (1 bytes) was skipped");
    expect_problem(&mf, 1, 8, 1717, "1 stray bytes at the end of the file are not a record");
    marcfile_free(&mf);
}

/*
 * All 4 records are found: #2 (length "01BAD") and #3 (three bytes pushed into
 * its leader) by their terminators. The server is the one that reports them.
 */
static void test_load_libmarc_perl_badmarc(void **state)
{
    (void)state;
    marcfile_t mf;
    load_ok(&mf, "malformed/libmarc-perl_badmarc.dat");
    assert_int_equal(mf.nrecords, 4);
    assert_int_equal(mf.nproblems, 0);
    expect_record(&mf, 0, 1, 0, 901, NULL);
    expect_record(&mf, 1, 2, 901, 1467, NULL);
    expect_record(&mf, 2, 3, 2368, 904, NULL);
    expect_record(&mf, 3, 4, 3272, 1467, NULL);
    assert_memory_equal(mf.records[1].data, "01BAD", 5);
    assert_memory_equal(mf.records[2].data, "00901camADD", 11);
    marcfile_free(&mf);
}

/*
 * invalid.xml is well-formed XML but not MARCXML (a <datafield> straight in the
 * <collection>, no <record>); it loads nothing and says why.
 */
static void test_load_invalid_xml(void **state)
{
    (void)state;
    marcfile_t mf;
    char err[512] = "";
    assert_int_equal(marcfile_load(&mf, data_path("malformed/invalid.xml"), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "invalid.xml is not MARCXML"));
    assert_non_null(strstr(err, "no <record> elements"));
    assert_int_equal(mf.nrecords, 0);
    marcfile_free(&mf);
}

static void test_load_not_well_formed_xml(void **state)
{
    (void)state;
    char path[] = "/tmp/carrel-test-marcfile-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "<?xml version=\"1.0\"?>\n<collection>\n<record>\n"
                       "<leader>00000nam a2200000 a 4500</leader>\n</collection>\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    marcfile_t mf;
    char err[512] = "";
    int rc = marcfile_load(&mf, path, err, sizeof(err));
    unlink(path);
    assert_int_equal(rc, -1);
    assert_true(mf.xml);
    assert_int_equal(mf.nrecords, 0);
    assert_non_null(strstr(err, "is not well-formed XML (line "));
    assert_non_null(strstr(err, "Premature end of data in tag collection line 2"));
    assert_non_null(strstr(err, "; nothing was loaded"));
    marcfile_free(&mf);
}

/*
 * Regression: marcfile_load_xml strips a trailing newline from
 * the end of the whole sentence, but libxml2's message, which ends in '\n', sits in
 * the middle of it: the error a clerk sees reads "...in tag collection line 2\n);
 * nothing was loaded", broken over two lines.
 */
static void test_load_xml_error_is_one_line(void **state)
{
    (void)state;
    char path[] = "/tmp/carrel-test-marcfile-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "<collection><record><leader>00000nam a2200000 a 4500</leader>";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    marcfile_t mf;
    char err[512] = "";
    int rc = marcfile_load(&mf, path, err, sizeof(err));
    unlink(path);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "is not well-formed XML"));
    if (strchr(err, '\n') != NULL)
        fail_msg("the error has a line break inside: '%s'", err);
    marcfile_free(&mf);
}

static void test_load_missing_file(void **state)
{
    (void)state;
    marcfile_t mf;
    char err[512] = "";
    assert_int_equal(marcfile_load(&mf, data_path("no-such-file.mrc"), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open"));
    assert_non_null(strstr(err, "No such file or directory"));
    marcfile_free(&mf);
}

static void test_load_camel_batch_xml(void **state)
{
    (void)state;
    marcfile_t mf;
    load_ok(&mf, "marcxml/camel-batch.xml");
    assert_true(mf.xml);
    assert_int_equal(mf.nrecords, 10);
    assert_int_equal(mf.nproblems, 0);
    for (size_t i = 0; i < mf.nrecords; i++) {
        const marcfile_record_t *r = &mf.records[i];
        assert_int_equal(r->position, (int64_t)i + 1);
        assert_true(r->xml);
        assert_int_equal(r->len, strlen((const char *)r->data));
        assert_ptr_equal(r->data, (const uint8_t *)mf.xml_records[i]);
        assert_memory_equal(r->data, "<record", 7);
        assert_memory_equal(r->data + r->len - 9, "</record>", 9);
        if (i > 0)
            assert_true(r->offset > mf.records[i - 1].offset); /* line numbers */
    }
    assert_int_equal(mf.records[0].offset, 3);
    assert_non_null(strstr(mf.xml_records[0], "ActivePerl with ASP and ADO /"));
    assert_non_null(strstr(mf.xml_records[9], "Cross-platform Perl /"));
    marcfile_free(&mf);
    assert_null(mf.xml_records);
}

/*
 * Regression: the Library of Congress style declares the marc: prefix once,
 * on <marc:collection>; each record was split out without that declaration,
 * so the server found "no MARCXML <record> element" in every one. Each split
 * record must be a document of its own, prefix declared.
 */
static void test_load_prefixed_xml(void **state)
{
    (void)state;
    marcfile_t mf;
    load_ok(&mf, "marcxml/camel-3-prefixed.xml");
    assert_true(mf.xml);
    assert_int_equal(mf.nrecords, 3);
    assert_int_equal(mf.nproblems, 0);
    for (size_t i = 0; i < mf.nrecords; i++) {
        const marcfile_record_t *r = &mf.records[i];
        assert_memory_equal(r->data, "<marc:record", 12);
        assert_non_null(
            strstr((const char *)r->data, "xmlns:marc=\"http://www.loc.gov/MARC21/slim\""));
        /* Read alone, strictly: namespace errors are errors. */
        xmlDoc *doc = xmlReadMemory((const char *)r->data, (int)r->len, "record.xml", "UTF-8",
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        assert_non_null(doc);
        xmlNode *root = xmlDocGetRootElement(doc);
        assert_string_equal((const char *)root->name, "record");
        assert_non_null(root->ns);
        assert_string_equal((const char *)root->ns->href, "http://www.loc.gov/MARC21/slim");
        xmlFreeDoc(doc);
    }
    assert_non_null(strstr(mf.xml_records[0], "ActivePerl with ASP and ADO /"));
    assert_non_null(strstr(mf.xml_records[2], "Perl :"));
    marcfile_free(&mf);
}

static void test_load_iso_sample(void **state)
{
    (void)state;
    marcfile_t mf;
    load_ok(&mf, "camel-10.mrc");
    assert_false(mf.xml);
    assert_int_equal(mf.nrecords, 10);
    assert_int_equal(mf.nproblems, 0);
    expect_record(&mf, 9, 10, 5895, 696, NULL);
    marcfile_free(&mf);
    load_ok(&mf, "real-mixed-189.mrc");
    assert_int_equal(mf.nrecords, 189);
    assert_int_equal(mf.nproblems, 0);
    marcfile_free(&mf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_back_to_back),
        cmocka_unit_test(test_filler_skipped),
        cmocka_unit_test(test_nothing_to_split),
        cmocka_unit_test(test_wrong_leader_length_found_by_terminator),
        cmocka_unit_test(test_non_numeric_leader_length),
        cmocka_unit_test(test_empty_record_reported),
        cmocka_unit_test(test_trailing_stray_bytes_reported),
        cmocka_unit_test(test_last_record_without_terminator),
        cmocka_unit_test(test_load_filler),
        cmocka_unit_test(test_load_cameleof),
        cmocka_unit_test(test_load_badldr),
        cmocka_unit_test(test_load_libmarc_perl_badmarc),
        cmocka_unit_test(test_load_invalid_xml),
        cmocka_unit_test(test_load_not_well_formed_xml),
        cmocka_unit_test(test_load_xml_error_is_one_line),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_load_camel_batch_xml),
        cmocka_unit_test(test_load_prefixed_xml),
        cmocka_unit_test(test_load_iso_sample),
    };
    return cmocka_run_group_tests_name("marcfile", tests, NULL, NULL);
}
