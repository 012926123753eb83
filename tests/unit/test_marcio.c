/*
 * Unit tests for server/marcio.c: real records from the sample files in
 * tests/unit/data (ISO 2709 in UTF-8 and MARC-8, MARCXML) turned into clean
 * UTF-8 ISO 2709, read back with marc_parse and checked field by field; and
 * the broken records it must refuse with a reason.
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

#include <cmocka.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaz/marcdisp.h>

#include "marc.h"
#include "marcio.h"
#include "util.h"

#define RT 0x1D
#define FT 0x1E

/* Kindaichi Kyōsuke (the ō as o + U+0304 COMBINING MACRON, as libyaz writes it). */
#define KYOSUKE "Kyo\xcc\x84suke"
/* 金田一 京助 と アイヌ語 */
#define KINDAICHI_CJK                                                                              \
    "\xe9\x87\x91\xe7\x94\xb0\xe4\xb8\x80 \xe4\xba\xac\xe5\x8a\xa9 \xe3\x81\xa8 "                  \
    "\xe3\x82\xa2\xe3\x82\xa4\xe3\x83\x8c\xe8\xaa\x9e /"

typedef struct sample {
    uint8_t *bytes;
    size_t size;
    const uint8_t *rec[200]; /* records split at their terminators */
    size_t len[200];
    size_t n;
} sample_t;

static int group_setup(void **state)
{
    (void)state;
    marcio_init();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    marcio_cleanup();
    return 0;
}

static int arena_setup(void **state)
{
    arena_t *a = malloc(sizeof(*a));
    assert_non_null(a);
    arena_init(a);
    *state = a;
    return 0;
}

static int arena_teardown(void **state)
{
    arena_free(*state);
    free(*state);
    return 0;
}

static char *data_path(arena_t *a, const char *name)
{
    const char *dir = getenv("CARREL_TEST_DATA");
    if (dir == NULL)
        fail_msg("CARREL_TEST_DATA is not set (run through meson test)");
    return arena_printf(a, "%s/%s", dir, name);
}

/* Read a sample file and split it at each record terminator. */
static void load_sample(arena_t *a, const char *name, sample_t *s)
{
    memset(s, 0, sizeof(*s));
    char *path = data_path(a, name);
    s->bytes = util_read_all(path, &s->size);
    if (s->bytes == NULL)
        fail_msg("cannot read %s", path);
    size_t start = 0;
    for (size_t i = 0; i < s->size; i++) {
        if (s->bytes[i] != RT)
            continue;
        assert_true(s->n < 200);
        s->rec[s->n] = s->bytes + start;
        s->len[s->n] = i + 1 - start;
        s->n++;
        start = i + 1;
    }
    /* Nothing but line ends and DOS end-of-file marks after the last record. */
    for (size_t i = start; i < s->size; i++)
        assert_true(s->bytes[i] == '\n' || s->bytes[i] == 0x1A);
}

static void free_sample(sample_t *s)
{
    free(s->bytes);
}

static bool valid_utf8(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t extra = c < 0x80                   ? 0
                       : (c >= 0xC2 && c <= 0xDF) ? 1
                       : (c & 0xF0) == 0xE0       ? 2
                       : (c >= 0xF0 && c <= 0xF4) ? 3
                                                  : 99;
        if (extra == 99 || extra > n - i - 1)
            return false;
        for (size_t k = 1; k <= extra; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
        i += extra + 1;
    }
    return true;
}

static bool has_high_bytes(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80)
            return true;
    return false;
}

/* Normalize, expect success, and parse the clean record. Returns the warning. */
static char *normalize_ok(arena_t *a, const uint8_t *data, size_t len, bool xml, marc_record_t *rec,
                          struct buf *clean)
{
    char warning[300] = "x", err[300] = "x";
    struct buf out = BUF_INIT;
    int rc = marcio_normalize(data, len, xml, &out, warning, sizeof(warning), err, sizeof(err));
    if (rc != 0)
        fail_msg("marcio_normalize failed: %s", err);
    assert_string_equal(err, "");
    char perr[128];
    uint8_t *copy = arena_alloc(a, out.len);
    memcpy(copy, out.data, out.len);
    if (marc_parse(a, copy, out.len, rec, perr, sizeof(perr)) != 0)
        fail_msg("clean record does not parse: %s", perr);
    if (clean)
        *clean = out;
    else
        buf_free(&out);
    return arena_strdup(a, warning);
}

static void expect_refused(const uint8_t *data, size_t len, bool xml, const char *reason)
{
    char warning[300], err[300] = "";
    struct buf out = BUF_INIT;
    assert_int_equal(
        marcio_normalize(data, len, xml, &out, warning, sizeof(warning), err, sizeof(err)), -1);
    if (strstr(err, reason) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, reason);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

static void assert_same_fields(const marc_record_t *x, const marc_record_t *y)
{
    assert_int_equal(x->nfields, y->nfields);
    for (size_t i = 0; i < x->nfields; i++) {
        const marc_field_t *f = &x->fields[i], *g = &y->fields[i];
        assert_string_equal(f->tag, g->tag);
        if (marc_is_control_tag(f->tag)) {
            assert_string_equal(f->data, g->data);
            continue;
        }
        assert_int_equal(f->ind1, g->ind1);
        assert_int_equal(f->ind2, g->ind2);
        assert_int_equal(f->nsubfields, g->nsubfields);
        for (size_t k = 0; k < f->nsubfields; k++) {
            assert_int_equal(f->subfields[k].code, g->subfields[k].code);
            assert_string_equal(f->subfields[k].value, g->subfields[k].value);
        }
    }
}

/* ---- ISO 2709 ---- */

static void test_camel_records_normalize(void **state)
{
    arena_t *a = *state;
    static const char *const control[] = {
        "fol05731351 ", "fol05754809 ", "fol05843555 ", "fol05843579 ", "fol05848297 ",
        "fol05865950 ", "fol05865956 ", "fol05865967 ", "fol05872355 ", "fol05882032 ",
    };
    static const char *const title[] = {
        "ActivePerl with ASP and ADO /",
        "Programming the Perl DBI /",
        "Perl :",
        "Perl :",
        "CGI programming with Perl /",
        "Proceedings of the Perl Conference 4.0 :",
        "Perl for system administration /",
        "Programming Perl /",
        "Perl programmer's interactive workbook /",
        "Cross-platform Perl /",
    };
    sample_t s;
    load_sample(a, "camel-10.mrc", &s);
    assert_int_equal(s.n, 10);
    for (size_t i = 0; i < s.n; i++) {
        /* The file is clean ASCII ISO 2709, so marc_parse reads it as it is. */
        marc_record_t orig, clean;
        char err[128];
        assert_int_equal(marc_parse(a, s.rec[i], s.len[i], &orig, err, sizeof(err)), 0);
        assert_int_equal(orig.leader[9], ' ');

        char *warning = normalize_ok(a, s.rec[i], s.len[i], false, &clean, NULL);
        assert_string_equal(warning, "");
        assert_int_equal(clean.leader[9], 'a');
        assert_memory_equal(clean.leader + 5, orig.leader + 5, 4);
        assert_memory_equal(clean.leader + 17, orig.leader + 17, 3);
        assert_same_fields(&orig, &clean);
        assert_string_equal(marc_find(&clean, "001")->data, control[i]);
        assert_string_equal(marc_subfield(&clean, "245", 'a'), title[i]);
    }
    free_sample(&s);
}

static void test_real_mixed_all_normalize(void **state)
{
    arena_t *a = *state;
    sample_t s;
    load_sample(a, "real-mixed-189.mrc", &s);
    assert_int_equal(s.n, 189);
    size_t marc8 = 0, utf8 = 0, fill = 0, marc8_high = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.rec[i][9] == 'a')
            utf8++;
        else if (s.rec[i][9] == ' ')
            marc8++;
        else if (s.rec[i][9] == '^')
            fill++;
        if (s.rec[i][9] == ' ' && has_high_bytes(s.rec[i], s.len[i]))
            marc8_high++;
        marc_record_t clean;
        struct buf out;
        char *warning = normalize_ok(a, s.rec[i], s.len[i], false, &clean, &out);
        /* Two records carry subfields in control fields: a danMARC record (24)
         * and MARC::Lint's test of exactly that (67). They load, with '$'. */
        bool control_subfields = i + 1 == 24 || i + 1 == 67;
        if (control_subfields && strstr(warning, "danMARC") == NULL)
            fail_msg("record %zu: no warning about subfields in control fields", i + 1);
        /* Record 138's 250 is "  2η εκδ.", without $a: libyaz alone took the '2'
         * for a delimiter and half of "η" for the code (invalid UTF-8). */
        if (i + 1 == 138) {
            assert_string_equal(warning,
                                "field 250 has data before its first subfield code; read as $a");
            assert_string_equal(marc_subfield(&clean, "250", 'a'),
                                "2\xce\xb7 \xce\xb5\xce\xba\xce\xb4.");
        } else if (!control_subfields && warning[0]) {
            fail_msg("record %zu: unexpected warning '%s'", i + 1, warning);
        }
        assert_int_equal(clean.leader[9], 'a');
        assert_true(clean.nfields > 0);
        if (!valid_utf8(out.data, out.len))
            fail_msg("record %zu: the clean record is not valid UTF-8", i + 1);
        buf_free(&out);
    }
    /* The sample's README: 98 MARC-8 (leader/09 blank), 90 UTF-8, and one '^' fill. */
    assert_int_equal(utf8, 90);
    assert_int_equal(marc8, 98);
    assert_int_equal(fill, 1);
    assert_int_equal(marc8_high, 16);
    free_sample(&s);
}

static void test_marc8_converted(void **state)
{
    arena_t *a = *state;
    sample_t s;
    load_sample(a, "real-mixed-189.mrc", &s);
    /* Record 94, 001 MIUO02-B3220: MARC-8 with a macron and EACC (CJK) in 880s. */
    size_t at = s.n;
    for (size_t i = 0; i < s.n; i++)
        if (memmem(s.rec[i], s.len[i], "MIUO02-B3220", 12))
            at = i;
    assert_int_equal(at, 93);
    assert_int_equal(s.rec[at][9], ' ');
    assert_true(has_high_bytes(s.rec[at], s.len[at]));

    marc_record_t clean;
    struct buf out;
    char *warning = normalize_ok(a, s.rec[at], s.len[at], false, &clean, &out);
    assert_string_equal(warning, "");
    assert_int_equal(clean.leader[9], 'a');
    assert_true(valid_utf8(out.data, out.len));
    buf_free(&out);

    assert_string_equal(marc_subfield(&clean, "245", 'a'), "Kindaichi " KYOSUKE " to Ainugo /");
    assert_string_equal(marc_subfield(&clean, "245", 'c'), "O\xcc\x84tomo Yukio.");
    assert_string_equal(marc_subfield(&clean, "100", 'a'), "Taisho\xcc\x84, Tomizo\xcc\x84,");
    bool cjk = false;
    for (size_t i = 0; i < clean.nfields; i++) {
        const char *v = marc_field_subfield(&clean.fields[i], 'a');
        if (strcmp(clean.fields[i].tag, "880") == 0 && v && strcmp(v, KINDAICHI_CJK) == 0)
            cjk = true;
    }
    assert_true(cjk);

    marc_summary_t sum;
    marc_summarize(a, &clean, &sum);
    assert_string_equal(sum.title, "Kindaichi " KYOSUKE " to Ainugo");
    assert_string_equal(sum.control_number, "MIUO02-B3220");
    free_sample(&s);
}

static void test_utf8_record_kept(void **state)
{
    arena_t *a = *state;
    sample_t s;
    load_sample(a, "koha-1-bib-10-items-952.mrc", &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.rec[0][9], 'a');
    marc_record_t orig, clean;
    char err[128];
    assert_int_equal(marc_parse(a, s.rec[0], s.len[0], &orig, err, sizeof(err)), 0);
    char *warning = normalize_ok(a, s.rec[0], s.len[0], false, &clean, NULL);
    assert_string_equal(warning, "");
    assert_same_fields(&orig, &clean);
    assert_string_equal(marc_subfield(&clean, "245", 'c'), "Hrvoje Stan\xc4\x8di\xc4\x87");

    static const char *const barcodes[] = {"1302008428", "1302008427", "1302008426", "1302008425",
                                           "1302008424", "1302008423", "1302008422", "1302008421",
                                           "1302008420", "1302008415"};
    size_t n = 0;
    marc_holding_t *h = marc_holdings(a, &clean, "952", &n);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++) {
        const char *p = NULL;
        for (size_t k = 0; k < h[i].nsubfields; k++)
            if (h[i].subfields[k].code == 'p')
                p = h[i].subfields[k].value;
        assert_non_null(p);
        assert_string_equal(p, barcodes[i]);
    }
    free_sample(&s);
}

static void test_microlif_holdings(void **state)
{
    arena_t *a = *state;
    sample_t s;
    load_sample(a, "microlif-18-with-852.mrc", &s);
    assert_int_equal(s.n, 18);
    for (size_t i = 0; i < s.n; i++) {
        marc_record_t clean;
        char *warning = normalize_ok(a, s.rec[i], s.len[i], false, &clean, NULL);
        assert_string_equal(warning, "");
        size_t n = 0;
        marc_holding_t *h = marc_holdings(a, &clean, "852", &n);
        if (n == 0)
            fail_msg("record %zu has no 852", i + 1);
        if (i == 0) {
            assert_int_equal(n, 1);
            assert_int_equal(h[0].nsubfields, 3);
            assert_int_equal(h[0].subfields[0].code, 'h');
            assert_string_equal(h[0].subfields[0].value, "FIC ROB");
            assert_int_equal(h[0].subfields[1].code, 'p');
            assert_string_equal(h[0].subfields[1].value, "3CPL000018270-");
        }
    }
    free_sample(&s);
}

static void test_flagged_utf8_but_marc8(void **state)
{
    arena_t *a = *state;
    sample_t s;
    load_sample(a, "camel-10.mrc", &s);
    uint8_t *r = arena_alloc(a, s.len[0]);
    memcpy(r, s.rec[0], s.len[0]);
    uint8_t *p = memmem(r, s.len[0], "ActivePerl", 10);
    assert_non_null(p);
    r[9] = 'a';  /* says UTF-8 */
    p[5] = 0xE2; /* but holds a MARC-8 acute accent (applies to the next letter) */
    marc_record_t clean;
    char *warning = normalize_ok(a, r, s.len[0], false, &clean, NULL);
    assert_string_equal(warning, "flagged as UTF-8 but not valid UTF-8; read as MARC-8");
    assert_int_equal(clean.leader[9], 'a');
    assert_string_equal(marc_subfield(&clean, "245", 'a'), "ActivP\xcc\x81"
                                                           "erl with ASP and ADO /");
    free_sample(&s);
}

static void test_leader_length_mismatch_warns(void **state)
{
    arena_t *a = *state;
    sample_t s;
    load_sample(a, "camel-10.mrc", &s);
    assert_int_equal(s.len[0], 755);
    uint8_t *r = arena_alloc(a, s.len[0]);
    memcpy(r, s.rec[0], s.len[0]);
    memcpy(r, "00999", 5);
    marc_record_t clean;
    struct buf out;
    char *warning = normalize_ok(a, r, s.len[0], false, &clean, &out);
    assert_string_equal(warning, "the leader gives a record length of '00999' but the record has "
                                 "755 bytes; read it by its actual length");
    assert_memory_equal(out.data, "00755", 5);
    assert_int_equal(out.len, 755);
    assert_string_equal(marc_subfield(&clean, "245", 'a'), "ActivePerl with ASP and ADO /");
    buf_free(&out);
    /* The caller's bytes are not touched. */
    assert_memory_equal(r, "00999", 5);

    /* Not even a number: the same repair. */
    memcpy(r, "01BAD", 5);
    warning = normalize_ok(a, r, s.len[0], false, &clean, NULL);
    assert_non_null(strstr(warning, "'01BAD'"));
    assert_string_equal(marc_subfield(&clean, "245", 'a'), "ActivePerl with ASP and ADO /");
    free_sample(&s);
}

static void test_broken_directory_refused(void **state)
{
    (void)state;
    /* The directory never ends: digits up to the record terminator, no field terminator. */
    uint8_t r[50];
    memcpy(r, "00050nam  2200049   4500", 24);
    memset(r + 24, '0', 25);
    r[49] = RT;
    expect_refused(r, sizeof(r), false, "cannot read the record: bad leader or directory");
}

static void test_size_limits_refused(void **state)
{
    (void)state;
    const uint8_t tiny[] = "00025nam  2200025   4500\x1d";
    expect_refused(tiny, 25, false, "too short to be a MARC record (25 bytes)");
    expect_refused(tiny, 0, false, "too short");
    uint8_t *big = calloc(100000, 1);
    assert_non_null(big);
    expect_refused(big, 100000, false, "longer than a MARC record can be (100000 bytes)");
    free(big);
}

/*
 * libmarc-perl_badmarc.dat record 3 has three bytes ("ADD") pushed into its leader,
 * so the base address and the directory are garbage. marcio does not refuse it: it
 * returns a record with no fields, and the import refuses that for having no title
 * (server/marcimport.c). This pins down that the result really is empty.
 */
static void test_badmarc_record_3_comes_back_empty(void **state)
{
    arena_t *a = *state;
    sample_t s;
    load_sample(a, "malformed/libmarc-perl_badmarc.dat", &s);
    assert_int_equal(s.n, 4);
    assert_memory_equal(s.rec[2], "00901camADD", 11);
    marc_record_t clean;
    char *warning = normalize_ok(a, s.rec[2], s.len[2], false, &clean, NULL);
    assert_non_null(strstr(warning, "'00901' but the record has 904 bytes"));
    assert_int_equal(clean.nfields, 0);
    marc_summary_t sum;
    marc_summarize(a, &clean, &sum);
    assert_string_equal(sum.title, "");

    /* Record 2's length is "01BAD": repaired with a warning, and readable. */
    warning = normalize_ok(a, s.rec[1], s.len[1], false, &clean, NULL);
    assert_non_null(strstr(warning, "'01BAD'"));
    assert_non_null(marc_subfield(&clean, "710", 'a'));
    assert_string_equal(marc_subfield(&clean, "710", 'a'), "Associated Press.");
    assert_string_equal(marc_subfield(&clean, "245", 'a'), "AccuNet/AP photo archive");
    free_sample(&s);
}

static void test_baddir_still_read(void **state)
{
    arena_t *a = *state;
    sample_t s;
    load_sample(a, "malformed/baddir.usmarc", &s);
    assert_int_equal(s.n, 1);
    marc_record_t clean;
    (void)normalize_ok(a, s.rec[0], s.len[0], false, &clean, NULL);
    /* As MARC::Record does: the base address is off, the title is still read. */
    marc_summary_t sum;
    marc_summarize(a, &clean, &sum);
    assert_string_equal(sum.title, "Green Eggs and Ham");
    assert_string_equal(sum.author, "Seuss, Dr.");
    free_sample(&s);
}

/* ---- MARCXML ---- */

/* The first <record>...</record> of camel-batch.xml, as text. */
static char *first_xml_record(arena_t *a)
{
    size_t size;
    char *path = data_path(a, "marcxml/camel-batch.xml");
    uint8_t *bytes = util_read_all(path, &size);
    assert_non_null(bytes);
    char *text = arena_strndup(a, (const char *)bytes, size);
    free(bytes);
    char *start = strstr(text, "<record>");
    assert_non_null(start);
    char *end = strstr(start, "</record>");
    assert_non_null(end);
    return arena_strndup(a, start, (size_t)(end - start) + strlen("</record>"));
}

/*
 * A well-formed record whose last field is a one-byte 001 (only its
 * terminator): libyaz's danMARC check reads two bytes past that field, which
 * is past the end of the record.
 */
static size_t short_last_field_record(char *rec)
{
    const char *f245 = "10\x1f"
                       "aTitle\x1e";
    size_t f1 = strlen(f245), base = 24 + 24 + 1, len = base + f1 + 1 + 1;
    char head[64];
    snprintf(head, sizeof(head), "%05zunam a22%05zu a 4500", len, base);
    memcpy(rec, head, 24);
    snprintf(head, sizeof(head), "245%04zu%05d001%04d%05zu", f1, 0, 1, f1);
    memcpy(rec + 24, head, 24);
    rec[48] = FT;
    memcpy(rec + base, f245, f1);
    rec[base + f1] = FT;
    rec[base + f1 + 1] = RT;
    return len;
}

/*
 * In a child: the record `gap` bytes before an unreadable page, read by
 * libyaz. Returns 0 when it read the record, 1 when the child crashed (a
 * signal, or the sanitizer's or cmocka's handler exiting).
 */
static int yaz_read_before_guard(const char *rec, size_t len, size_t gap)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        long pg = sysconf(_SC_PAGESIZE);
        char *m =
            mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED || mprotect(m + pg, (size_t)pg, PROT_NONE) != 0)
            _exit(2);
        char *at = m + pg - gap - len;
        memcpy(at, rec, len);
        yaz_marc_t mt = yaz_marc_create();
        int rc = yaz_marc_read_iso2709(mt, at, (int)len);
        _exit(rc > 0 ? 0 : 3);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_false(WIFEXITED(status) && (WEXITSTATUS(status) == 2 || WEXITSTATUS(status) == 3));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

/*
 * Issue 8, item 7: libyaz reads past the end of its input on such records.
 * Handed exactly the record it touches the page after it (SIGSEGV here, heap
 * garbage in the daemon, which ASan cannot see in an uninstrumented library);
 * with the MARCIO_PAD zero bytes marcio gives it, it stays inside; and
 * marcio_normalize reads the record.
 */
static void test_libyaz_overread_padded(void **state)
{
    arena_t *a = *state;
    char rec[128];
    size_t len = short_last_field_record(rec);
    assert_int_equal(yaz_read_before_guard(rec, len, 0), 1);
    assert_int_equal(yaz_read_before_guard(rec, len, MARCIO_PAD), 0);
    marc_record_t clean;
    (void)normalize_ok(a, (const uint8_t *)rec, len, false, &clean, NULL);
    assert_string_equal(marc_subfield(&clean, "245", 'a'), "Title");
}

/*
 * Found by fuzz_marcio: directory entries that point at the same bytes, one
 * of them a field without its first subfield code. The repair sized the new
 * record from the old one's length and wrote past it (past MARCIO_PAD too,
 * with forty copies); it now counts the fields it copies.
 */
static void test_missing_code_repair_overlapping_fields(void **state)
{
    (void)state;
    char rec[1024];
    const char *field = "  2nd ed.\x1e";
    size_t flen = strlen(field), entries = 40, base = 24 + 12 * entries + 1;
    size_t len = base + flen + 1;
    char head[64];
    snprintf(head, sizeof(head), "%05zunam a22%05zu a 4500", len, base);
    memcpy(rec, head, 24);
    for (size_t i = 0; i < entries; i++) { /* forty 250s, all the same bytes */
        snprintf(head, sizeof(head), "250%04zu%05d", flen, 0);
        memcpy(rec + 24 + 12 * i, head, 12);
    }
    rec[base - 1] = FT;
    memcpy(rec + base, field, flen);
    rec[len - 1] = RT;
    struct buf out = BUF_INIT;
    char warning[300], err[300];
    /* Refused or read; either way within bounds (ASan). */
    if (marcio_normalize((const uint8_t *)rec, len, false, &out, warning, sizeof(warning), err,
                         sizeof(err)) == 0)
        assert_non_null(strstr(warning, "field 250 has data before its first subfield code"));
    buf_free(&out);
}

/*
 * A UTF-8 record (leader/09 'a') from n fields, each a tag and its bytes
 * without the terminator, into rec (of size cap). Returns its length.
 */
static size_t utf8_record(char *rec, size_t cap, const char *const (*fields)[2], size_t n)
{
    size_t base = 24 + 12 * n + 1, at = base;
    char head[64];
    for (size_t i = 0; i < n; i++) {
        size_t flen = strlen(fields[i][1]) + 1;
        assert_true(at + flen + 1 <= cap);
        snprintf(head, sizeof(head), "%.3s%04zu%05zu", fields[i][0], flen, at - base);
        memcpy(rec + 24 + 12 * i, head, 12);
        memcpy(rec + at, fields[i][1], flen - 1);
        rec[at + flen - 1] = FT;
        at += flen;
    }
    rec[base - 1] = FT;
    rec[at++] = RT;
    snprintf(head, sizeof(head), "%05zunam a22%05zu a 4500", at, base);
    memcpy(rec, head, 24);
    return at;
}

/*
 * Real data is messy: a TAB, an ESC and a C1 character (U+0085 NEXT LINE,
 * two bytes in UTF-8) in a title do not keep the record out. Each becomes a
 * space, the warning names the field, and the record reads back. The
 * delimiters stay where they are; other text (a two-byte é, whose second byte
 * is no C1 control) is kept.
 */
static void test_control_characters_replaced(void **state)
{
    arena_t *a = *state;
    static const char *const fields[][2] = {
        {"001", "ocm001"},
        {"245", "10\x1f"
                "aTab\there,\x1b[2Jesc and\xc2\x85nel caf\xc3\xa9 /\x1f"
                "cAn author."},
    };
    char rec[512];
    size_t len = utf8_record(rec, sizeof(rec), fields, 2);
    marc_record_t clean;
    struct buf out;
    char *warning = normalize_ok(a, (const uint8_t *)rec, len, false, &clean, &out);
    assert_string_equal(warning, "245: 3 control characters replaced by spaces");
    assert_string_equal(marc_subfield(&clean, "245", 'a'),
                        "Tab here, [2Jesc and nel caf\xc3\xa9 /");
    assert_string_equal(marc_subfield(&clean, "245", 'c'), "An author.");
    assert_string_equal(marc_find(&clean, "001")->data, "ocm001");
    /* The C1 character's two bytes became one: lengths and directory rewritten. */
    char num[6];
    snprintf(num, sizeof(num), "%05zu", len - 1);
    assert_int_equal(out.len, len - 1);
    assert_memory_equal(out.data, num, 5);
    buf_free(&out);

    /* MARCXML may carry TAB, CR, DEL and C1 too (as characters or references). */
    const char *xml = "<record xmlns=\"http://www.loc.gov/MARC21/slim\">"
                      "<leader>00000nam a2200000 a 4500</leader>"
                      "<controlfield tag=\"001\">ocm&#9;001</controlfield>"
                      "<datafield tag=\"245\" ind1=\"1\" ind2=\"0\"><subfield code=\"a\">"
                      "Tab&#9;CR&#13;DEL\x7f NEL\xc2\x85 title</subfield></datafield></record>";
    warning = normalize_ok(a, (const uint8_t *)xml, strlen(xml), true, &clean, NULL);
    assert_string_equal(warning, "001: 1 control character replaced by a space; 245: 4 control "
                                 "characters replaced by spaces");
    assert_string_equal(marc_find(&clean, "001")->data, "ocm 001");
    assert_string_equal(marc_subfield(&clean, "245", 'a'), "Tab CR DEL  NEL  title");
}

/* An ESC in the control number (001) too: both fields named, the record kept. */
static void test_control_characters_in_control_field(void **state)
{
    arena_t *a = *state;
    static const char *const fields[][2] = {
        {"001", "ocm\x1b"
                "001\r"},
        {"245", "10\x1f"
                "aA title\x7f"},
        {"500", "  \x1f"
                "aOne\x1f"
                "bTwo\x0a"},
        {"500", "  \x1f"
                "aThree\x01"},
    };
    char rec[512];
    size_t len = utf8_record(rec, sizeof(rec), fields, 4);
    marc_record_t clean;
    char *warning = normalize_ok(a, (const uint8_t *)rec, len, false, &clean, NULL);
    assert_string_equal(warning, "001: 2 control characters replaced by spaces; 245: 1 control "
                                 "character replaced by a space; 500: 2 control characters "
                                 "replaced by spaces");
    assert_string_equal(marc_find(&clean, "001")->data, "ocm 001 ");
    assert_string_equal(marc_subfield(&clean, "245", 'a'), "A title ");
    assert_string_equal(marc_subfield(&clean, "500", 'b'), "Two ");
    marc_summary_t sum;
    marc_summarize(a, &clean, &sum);
    assert_string_equal(sum.control_number, "ocm 001");

    /* A delimiter where an indicator belongs is structure, not text: still refused. */
    static const char *const stray[][2] = {{"245", "\x1f\x1f"
                                                   "aBroken\t"}};
    len = utf8_record(rec, sizeof(rec), stray, 1);
    struct buf out = BUF_INIT;
    char w[300], err[300], perr[200];
    assert_int_equal(
        marcio_normalize((const uint8_t *)rec, len, false, &out, w, sizeof(w), err, sizeof(err)),
        0);
    marc_record_t r;
    assert_int_equal(marc_parse(a, out.data, out.len, &r, perr, sizeof(perr)), -1);
    assert_non_null(strstr(perr, "field 245: an indicator is not a printable ASCII character"));
    buf_free(&out);
}

static void test_marcxml_record_normalizes(void **state)
{
    arena_t *a = *state;
    char *xml = first_xml_record(a);
    marc_record_t fromxml;
    char *warning = normalize_ok(a, (const uint8_t *)xml, strlen(xml), true, &fromxml, NULL);
    assert_string_equal(warning, "");
    assert_int_equal(fromxml.leader[9], 'a');
    assert_memory_equal(fromxml.leader + 5, "cam", 3);
    assert_string_equal(marc_find(&fromxml, "001")->data, "fol05731351 ");
    assert_string_equal(marc_subfield(&fromxml, "245", 'a'), "ActivePerl with ASP and ADO /");
    assert_string_equal(marc_subfield(&fromxml, "100", 'a'), "Martinsson, Tobias,");

    /* The same record as ISO 2709 gives the same fields. */
    sample_t s;
    load_sample(a, "camel-10.mrc", &s);
    marc_record_t fromiso;
    (void)normalize_ok(a, s.rec[0], s.len[0], false, &fromiso, NULL);
    assert_same_fields(&fromiso, &fromxml);
    free_sample(&s);

    /* With the MARC 21 namespace, or inside a whole collection: the first record. */
    char *ns = arena_printf(a, "<record xmlns=\"http://www.loc.gov/MARC21/slim\">%s",
                            xml + strlen("<record>"));
    marc_record_t fromns;
    (void)normalize_ok(a, (const uint8_t *)ns, strlen(ns), true, &fromns, NULL);
    assert_same_fields(&fromiso, &fromns);

    size_t size;
    uint8_t *whole = util_read_all(data_path(a, "marcxml/camel-batch.xml"), &size);
    assert_non_null(whole);
    marc_record_t first;
    (void)normalize_ok(a, whole, size, true, &first, NULL);
    assert_string_equal(marc_subfield(&first, "245", 'a'), "ActivePerl with ASP and ADO /");
    free(whole);

    /* The Library of Congress style: every element prefixed, the prefix declared. */
    char *prefixed =
        arena_printf(a, "<marc:record xmlns:marc=\"http://www.loc.gov/MARC21/slim\">"
                        "<marc:leader>00755cam  22002414a 4500</marc:leader>"
                        "<marc:controlfield tag=\"001\">fol05731351 </marc:controlfield>"
                        "<marc:datafield tag=\"245\" ind1=\"1\" ind2=\"0\">"
                        "<marc:subfield code=\"a\">ActivePerl with ASP and ADO /</marc:subfield>"
                        "</marc:datafield></marc:record>");
    marc_record_t fromprefixed;
    (void)normalize_ok(a, (const uint8_t *)prefixed, strlen(prefixed), true, &fromprefixed, NULL);
    assert_string_equal(marc_find(&fromprefixed, "001")->data, "fol05731351 ");
    assert_string_equal(marc_subfield(&fromprefixed, "245", 'a'), "ActivePerl with ASP and ADO /");
}

/*
 * Regression: an empty subfield code with no text in MARCXML comes out of
 * libyaz as two adjacent subfield delimiters, on which marc_parse computed a
 * negative length and overwrote the heap. Now: a per-record error.
 */
static void test_marcxml_empty_subfield_code(void **state)
{
    arena_t *a = *state;
    const char *xml = "<record xmlns=\"http://www.loc.gov/MARC21/slim\">"
                      "<leader>00000nam a2200000 a 4500</leader>"
                      "<datafield tag=\"245\" ind1=\"1\" ind2=\"0\">"
                      "<subfield code=\"\"></subfield><subfield code=\"a\">Title</subfield>"
                      "</datafield></record>";
    struct buf out = BUF_INIT;
    char warning[300], err[300], perr[200];
    assert_int_equal(marcio_normalize((const uint8_t *)xml, strlen(xml), true, &out, warning,
                                      sizeof(warning), err, sizeof(err)),
                     0);
    marc_record_t r;
    assert_int_equal(marc_parse(a, out.data, out.len, &r, perr, sizeof(perr)), -1);
    assert_non_null(strstr(perr, "field 245 has an empty or invalid subfield code"));
    buf_free(&out);
}

static void test_marcxml_refused(void **state)
{
    arena_t *a = *state;
    char *xml = first_xml_record(a);
    /* Cut off in the middle: not well-formed. */
    expect_refused((const uint8_t *)xml, strlen(xml) / 2, true, "not well-formed XML");
    const char *broken = "<record><leader>00000nam a2200000 a 4500</leader>"
                         "<datafield tag=\"245\"><subfield code=\"a\">x</datafield></record>";
    expect_refused((const uint8_t *)broken, strlen(broken), true, "not well-formed XML");
    expect_refused((const uint8_t *)"", 0, true, "not well-formed XML");
    const char *none = "<collection xmlns=\"http://www.loc.gov/MARC21/slim\"/>";
    expect_refused((const uint8_t *)none, strlen(none), true, "no MARCXML <record> element");
    const char *other = "<record><title>Not MARC</title></record>";
    expect_refused((const uint8_t *)other, strlen(other), true, "not a MARCXML record");
}

static void test_to_marcxml(void **state)
{
    arena_t *a = *state;
    sample_t s;
    load_sample(a, "camel-10.mrc", &s);
    marc_record_t clean;
    struct buf iso;
    (void)normalize_ok(a, s.rec[0], s.len[0], false, &clean, &iso);
    struct buf xml = BUF_INIT;
    assert_int_equal(marcio_to_marcxml(iso.data, iso.len, &xml), 0);
    char *text = arena_strndup(a, (const char *)xml.data, xml.len);
    assert_non_null(strstr(text, "http://www.loc.gov/MARC21/slim"));
    assert_non_null(strstr(text, "<leader>"));
    assert_non_null(strstr(text, "<controlfield tag=\"001\">fol05731351 </controlfield>"));
    assert_non_null(strstr(text, "<datafield tag=\"245\" ind1=\"1\" ind2=\"0\">"));
    assert_non_null(strstr(text, "<subfield code=\"a\">ActivePerl with ASP and ADO /</subfield>"));

    /* And back: the MARCXML reads as the same record. */
    marc_record_t back;
    struct buf again;
    (void)normalize_ok(a, xml.data, xml.len, true, &back, &again);
    assert_same_fields(&clean, &back);
    assert_int_equal(again.len, iso.len);
    assert_memory_equal(again.data, iso.data, iso.len);
    buf_free(&again);
    buf_free(&xml);
    buf_free(&iso);
    free_sample(&s);
}

static void test_to_marcxml_escapes(void **state)
{
    arena_t *a = *state;
    marc_record_t r;
    marc_init(&r, "00000nam a2200000 a 4500");
    marc_field_t *f = marc_add_field(a, &r, "245", '0', '0');
    marc_add_subfield(a, f, 'a', "Q & A <intro> \"caf\xc3\xa9\"");
    struct buf iso = BUF_INIT, xml = BUF_INIT;
    assert_int_equal(marc_write(&r, &iso, NULL, 0), 0);
    assert_int_equal(marcio_to_marcxml(iso.data, iso.len, &xml), 0);
    char *text = arena_strndup(a, (const char *)xml.data, xml.len);
    assert_non_null(strstr(text, "Q &amp; A &lt;intro&gt;"));
    assert_non_null(strstr(text, "caf\xc3\xa9"));
    marc_record_t back;
    (void)normalize_ok(a, xml.data, xml.len, true, &back, NULL);
    assert_string_equal(marc_subfield(&back, "245", 'a'), "Q & A <intro> \"caf\xc3\xa9\"");
    buf_free(&iso);
    buf_free(&xml);
}

static void test_to_marcxml_refuses_garbage(void **state)
{
    (void)state;
    struct buf xml = BUF_INIT;
    const uint8_t junk[] = "not a MARC record at all, just text\x1d";
    assert_int_equal(marcio_to_marcxml(junk, sizeof(junk) - 1, &xml), -1);
    assert_int_equal(xml.len, 0);
    buf_free(&xml);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, arena_setup, arena_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_camel_records_normalize),
        T(test_real_mixed_all_normalize),
        T(test_marc8_converted),
        T(test_utf8_record_kept),
        T(test_microlif_holdings),
        T(test_flagged_utf8_but_marc8),
        T(test_leader_length_mismatch_warns),
        T(test_broken_directory_refused),
        T(test_size_limits_refused),
        T(test_badmarc_record_3_comes_back_empty),
        T(test_baddir_still_read),
        T(test_marcxml_record_normalizes),
        T(test_marcxml_empty_subfield_code),
        T(test_libyaz_overread_padded),
        T(test_missing_code_repair_overlapping_fields),
        T(test_control_characters_replaced),
        T(test_control_characters_in_control_field),
        T(test_marcxml_refused),
        T(test_to_marcxml),
        T(test_to_marcxml_escapes),
        T(test_to_marcxml_refuses_garbage),
    };
    return cmocka_run_group_tests_name("marcio", tests, group_setup, group_teardown);
}
