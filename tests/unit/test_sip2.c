/*
 * Unit tests for common/sip2.c (the SIP2 2.00 codec) and common/linedec.c
 * (the line decoder of line-mode channels). The worked examples are the
 * example messages printed in the 3M Standard Interchange Protocol 2.00
 * specification; those whose printed checksum is right are used with it,
 * the few printed with a wrong one (a known erratum of the document) without
 * their AZ.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "linedec.h"
#include "sip2.h"

static sip2_status_t parse(const char *line, sip2_msg_t *m)
{
    return sip2_parse(line, strlen(line), m);
}

/* The field's value as a NUL-terminated string (static buffer). */
static const char *field(const sip2_msg_t *m, const char *id)
{
    static char out[SIP2_MAX_MESSAGE + 1];
    size_t len;
    const char *v = sip2_field(m, id, &len);
    if (v == NULL)
        return NULL;
    memcpy(out, v, len);
    out[len] = '\0';
    return out;
}

static void assert_fixed(const sip2_msg_t *m, const char *fixed)
{
    assert_int_equal(m->fixed_len, strlen(fixed));
    assert_memory_equal(m->fixed, fixed, m->fixed_len);
}

/* Example messages from the specification whose printed checksum is right. */
static const char *const spec_checksummed[] = {
    "2519980723    094240AOCertification Institute ID|AAPatronID|AY4AZEBF1",
    "1719980723    100000AOCertification Institute ID|ABItemBook|AY1AZEBEB",
    "09N19980821    085721                  APCertification Terminal Location|"
    "AOCertification Institute ID|ABCheckInBook|ACTPWord|BIN|AY2AZD6A5",
    "3719980723    0932110401USDBV111.11|AOCertification Institute ID|AAPatronID|"
    "BKTransactionID|AY2AZE1EF",
    "3519980723    094014AOCertification Institute ID|AAPatronID|AY3AZEBF2",
    "941AY3AZFDFA",
    "1808000119980723    115615CF00000|ABItemBook|AJTitle For Item Book|CK003|"
    "AQPermanent Location for ItemBook, Language 1|APCurrent Location ItemBook|"
    "CHFree-form text with new item property|AY0AZC05B",
    "6300119980723    091905Y         AOInstitutionID|AAPatronID|BP00001|BQ00005|AY1AZEA83",
    "01N19960213    162352AO|ALCARD BLOCK TEST|AA104000000705|AC|AY2AZF02F",
    "101YNN19980821    085721AOCertification Institute ID|ABCheckInBook|"
    "AQPermanent Location for CheckinBook, Language 1|AJTitle For CheckinBook|"
    "AAGoodPatron1|CK001|CHCheckinBook Properties|CLsort bin A1|"
    "AFScreen Message for CheckInBook|AGPrint Line for CheckInBook|AY2AZA3FF",
};

static void test_checksum_spec_examples(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(spec_checksummed) / sizeof(spec_checksummed[0]); i++) {
        const char *s = spec_checksummed[i];
        size_t n = strlen(s);
        char want[5];
        snprintf(want, sizeof(want), "%04X", sip2_checksum(s, n - 4));
        assert_string_equal(want, s + n - 4);
        sip2_msg_t m;
        assert_int_equal(sip2_parse(s, n, &m), SIP2_OK);
        assert_true(m.checksummed);
        assert_true(m.known);
    }
    /* The rule by hand: "941AY3AZ" sums to 0x0206; its negation is 0xFDFA. */
    assert_int_equal(sip2_checksum("941AY3AZ", 8), 0xFDFA);
    assert_int_equal(sip2_checksum("", 0), 0);
}

static void test_parse_login_93(void **state)
{
    (void)state;
    char line[200];
    int n = snprintf(line, sizeof(line), "9300CNkiosk1|COs3cret|CPMain St|AY0AZ");
    snprintf(line + n, sizeof(line) - (size_t)n, "%04X", sip2_checksum(line, (size_t)n));
    sip2_msg_t m;
    assert_int_equal(parse(line, &m), SIP2_OK);
    assert_string_equal(m.code, "93");
    assert_fixed(&m, "00");
    assert_int_equal(m.nfields, 3);
    assert_string_equal(field(&m, "CN"), "kiosk1");
    assert_string_equal(field(&m, "CO"), "s3cret");
    assert_string_equal(field(&m, "CP"), "Main St");
    assert_int_equal(m.seq, 0);
    assert_true(m.checksummed);
}

static void test_parse_sc_status_99(void **state)
{
    (void)state;
    sip2_msg_t m;
    /* Without error detection: no AY, no AZ. */
    assert_int_equal(parse("9900302.00", &m), SIP2_OK);
    assert_string_equal(m.code, "99");
    assert_fixed(&m, "0030"
                     "2.00");
    assert_int_equal(m.nfields, 0);
    assert_int_equal(m.seq, -1);
    assert_false(m.checksummed);
    assert_true(m.known);
}

static void test_parse_patron_status_23(void **state)
{
    (void)state;
    sip2_msg_t m;
    assert_int_equal(parse("2300119980723    094240AOinst|AA21234|ACterm|ADpin|", &m), SIP2_OK);
    assert_fixed(&m, "001"
                     "19980723    094240");
    assert_string_equal(field(&m, "AA"), "21234");
    assert_string_equal(field(&m, "AD"), "pin");
    assert_string_equal(field(&m, "AC"), "term");
}

static void test_parse_patron_information_63(void **state)
{
    (void)state;
    sip2_msg_t m;
    assert_int_equal(parse(spec_checksummed[7], &m), SIP2_OK);
    assert_string_equal(m.code, "63");
    assert_fixed(&m, "001"
                     "19980723    091905"
                     "Y         ");
    assert_string_equal(field(&m, "AO"), "InstitutionID");
    assert_string_equal(field(&m, "AA"), "PatronID");
    assert_string_equal(field(&m, "BP"), "00001");
    assert_string_equal(field(&m, "BQ"), "00005");
    assert_int_equal(m.seq, 1);
}

static void test_parse_checkout_11(void **state)
{
    (void)state;
    sip2_msg_t m;
    /* The specification's example with its dates written out to 18 bytes
     * (the printed one lost spaces, and with them its checksum). */
    assert_int_equal(parse("11YN19960212    10051419960212    100514AO|AA104000000105|"
                           "AB000000000005792|AC|AY3",
                           &m),
                     SIP2_OK);
    assert_fixed(&m, "YN"
                     "19960212    100514"
                     "19960212    100514");
    assert_string_equal(field(&m, "AO"), "");
    assert_string_equal(field(&m, "AA"), "104000000105");
    assert_string_equal(field(&m, "AB"), "000000000005792");
    assert_string_equal(field(&m, "AC"), "");
    assert_int_equal(m.seq, 3);
    assert_false(m.checksummed);
}

static void test_parse_checkin_09(void **state)
{
    (void)state;
    sip2_msg_t m;
    assert_int_equal(parse(spec_checksummed[2], &m), SIP2_OK);
    assert_string_equal(m.code, "09");
    assert_fixed(&m, "N"
                     "19980821    085721"
                     "                  ");
    assert_string_equal(field(&m, "AP"), "Certification Terminal Location");
    assert_string_equal(field(&m, "AO"), "Certification Institute ID");
    assert_string_equal(field(&m, "AB"), "CheckInBook");
    assert_string_equal(field(&m, "AC"), "TPWord");
    assert_string_equal(field(&m, "BI"), "N");
    assert_int_equal(m.seq, 2);
}

static void test_parse_renew_29_and_renew_all_65(void **state)
{
    (void)state;
    sip2_msg_t m;
    assert_int_equal(parse("29NN20261207    101500                  AOx|AA2|AB31|", &m), SIP2_OK);
    assert_fixed(&m, "NN"
                     "20261207    101500"
                     "                  ");
    assert_string_equal(field(&m, "AB"), "31");
    assert_int_equal(parse("6520261207    101500AOx|AA2|ADpin|", &m), SIP2_OK);
    assert_fixed(&m, "20261207    101500");
    assert_string_equal(field(&m, "AA"), "2");
}

static void test_parse_item_17_fee_37_end_35(void **state)
{
    (void)state;
    sip2_msg_t m;
    assert_int_equal(parse(spec_checksummed[1], &m), SIP2_OK);
    assert_fixed(&m, "19980723    100000");
    assert_string_equal(field(&m, "AB"), "ItemBook");

    assert_int_equal(parse(spec_checksummed[3], &m), SIP2_OK);
    assert_string_equal(m.code, "37");
    assert_fixed(&m, "19980723    093211"
                     "04"
                     "01"
                     "USD");
    assert_string_equal(field(&m, "BV"), "111.11");
    assert_string_equal(field(&m, "BK"), "TransactionID");

    assert_int_equal(parse(spec_checksummed[4], &m), SIP2_OK);
    assert_string_equal(m.code, "35");
    assert_fixed(&m, "19980723    094014");
    assert_string_equal(field(&m, "AA"), "PatronID");
}

static void test_parse_resend_97(void **state)
{
    (void)state;
    sip2_msg_t m;
    assert_int_equal(parse("97", &m), SIP2_OK);
    assert_int_equal(m.fixed_len, 0);
    assert_int_equal(m.nfields, 0);
    assert_int_equal(parse("97AZFEF5", &m), SIP2_OK);
    assert_true(m.checksummed);
}

/* The responses parse too (a test or bench client reads answers with sip2). */
static void test_parse_responses(void **state)
{
    (void)state;
    sip2_msg_t m;
    assert_int_equal(parse("98YYYNYN01000319960214    1447001.00AOID_21|AMCentral Library|"
                           "ANtty30|AFScreen Message|AGPrint Message|AY1",
                           &m),
                     SIP2_OK);
    assert_fixed(&m, "YYYNYN"
                     "010"
                     "003"
                     "19960214    144700"
                     "1.00");
    assert_string_equal(field(&m, "AM"), "Central Library");

    assert_int_equal(parse("24              00119960212    100239AO|AA104000000105|AEJohn Doe|"
                           "AFScreen Message|AGCheck Print message|AY2",
                           &m),
                     SIP2_OK);
    assert_int_equal(m.fixed_len, 35);
    assert_string_equal(field(&m, "AE"), "John Doe");

    assert_int_equal(parse("64              00119980723    104009000100000002000100020000"
                           "AOInstitutionID for PatronID|AAPatronID|AEPatron Name|BZ0002|"
                           "CA0003|CB0010|BLY|ASItemID1 for PatronID|AUChargeItem1|"
                           "AUChargeItem2|AY4",
                           &m),
                     SIP2_OK);
    assert_int_equal(m.fixed_len, 59);
    assert_string_equal(field(&m, "AU"), "ChargeItem1"); /* the first of two */
    assert_string_equal(field(&m, "CB"), "0010");

    assert_int_equal(parse(spec_checksummed[6], &m), SIP2_OK);
    assert_fixed(&m, "08"
                     "00"
                     "01"
                     "19980723    115615");
    assert_string_equal(field(&m, "CF"), "00000");

    assert_int_equal(parse(spec_checksummed[9], &m), SIP2_OK);
    assert_fixed(&m, "1YNN"
                     "19980821    085721");
    assert_string_equal(field(&m, "CL"), "sort bin A1");

    assert_int_equal(parse("38Y19980723    111035AOInstitutionID for PatronID|AAPatronID|AY6", &m),
                     SIP2_OK);
    assert_fixed(&m, "Y"
                     "19980723    111035");
    assert_int_equal(parse("36Y19980723    110658AOInst|AAPatronID|", &m), SIP2_OK);
    assert_fixed(&m, "Y"
                     "19980723    110658");
    assert_int_equal(parse("941", &m), SIP2_OK);
    assert_fixed(&m, "1");
}

static void test_bad_checksum(void **state)
{
    (void)state;
    sip2_msg_t m;
    char line[256];
    snprintf(line, sizeof(line), "%s", spec_checksummed[0]);
    line[25] ^= 1; /* one bit of the institution id */
    assert_int_equal(parse(line, &m), SIP2_BAD_CHECKSUM);
    assert_int_equal(
        parse("2519980723    094240AOCertification Institute ID|AAPatronID|AY4AZEBF2", &m),
        SIP2_BAD_CHECKSUM);
    /* Not four hex digits. */
    assert_int_equal(parse("941AY3AZFDFG", &m), SIP2_BAD_CHECKSUM);
    assert_int_equal(parse("941AY3AZ FDF", &m), SIP2_BAD_CHECKSUM);
    /* The sequence number is under the checksum too. */
    assert_int_equal(parse("941AY4AZFDFA", &m), SIP2_BAD_CHECKSUM);
    /* ... and is still reported, for the 96 that asks for the line again. */
    assert_int_equal(m.seq, 4);
    assert_int_equal(parse("941AY3AZFDFG", &m), SIP2_BAD_CHECKSUM);
    assert_int_equal(m.seq, 3);
    assert_int_equal(parse("941AZFDFG", &m), SIP2_BAD_CHECKSUM);
    assert_int_equal(m.seq, -1);
}

static void test_lowercase_hex_accepted(void **state)
{
    (void)state;
    sip2_msg_t m;
    assert_int_equal(parse("941AY3AZfdfa", &m), SIP2_OK);
    assert_true(m.checksummed);
    assert_int_equal(
        parse("2519980723    094240AOCertification Institute ID|AAPatronID|AY4AZebf1", &m),
        SIP2_OK);
    assert_int_equal(m.seq, 4);
}

static void test_malformed(void **state)
{
    (void)state;
    sip2_msg_t m;
    /* A field without its pipe. */
    assert_int_equal(parse("2300119980723    094240AOinst|AA21234", &m), SIP2_MALFORMED);
    assert_int_equal(parse("2300119980723    094240AOinst|AA21234AY1", &m), SIP2_MALFORMED);
    /* Fixed part too short. */
    assert_int_equal(parse("11YN19960212", &m), SIP2_MALFORMED);
    assert_int_equal(parse("99003", &m), SIP2_MALFORMED);
    /* No two-digit code. */
    assert_int_equal(parse("X9003002.00", &m), SIP2_MALFORMED);
    assert_int_equal(parse("9", &m), SIP2_MALFORMED);
    /* A field id that is not two capitals or a capital and a digit. */
    assert_int_equal(parse("9900302.00a1x|", &m), SIP2_MALFORMED);
    assert_int_equal(parse("9900302.00|", &m), SIP2_MALFORMED);
    /* Bytes after the checksum. */
    assert_int_equal(parse("941AY3AZFDFA ", &m), SIP2_MALFORMED);
    /* A field after a valid AY/AZ trailer: the checksum did not cover it. */
    char line[128];
    int n = snprintf(line, sizeof(line), "9900302.00AY1AZ");
    snprintf(line + n, sizeof(line) - (size_t)n, "%04XAOX|", sip2_checksum(line, (size_t)n));
    assert_int_equal(parse(line, &m), SIP2_MALFORMED);
    /* AY with more than a digit, or AZ, among the fields. */
    assert_int_equal(parse("9900302.00AY12|AOX|", &m), SIP2_MALFORMED);
    assert_int_equal(parse("9900302.00AOX|AZ1234|AY1", &m), SIP2_MALFORMED);
}

static void test_unknown_code(void **state)
{
    (void)state;
    sip2_msg_t m;
    assert_int_equal(parse("55whatever|AB1|AY1", &m), SIP2_OK);
    assert_string_equal(m.code, "55");
    assert_false(m.known);
    assert_int_equal(m.fixed_len, 0);
    assert_int_equal(m.nfields, 0);
    assert_int_equal(m.seq, 1);
}

static void test_too_many_fields(void **state)
{
    (void)state;
    char line[SIP2_MAX_MESSAGE];
    size_t n = (size_t)snprintf(line, sizeof(line), "6520261207    101500");
    for (int i = 0; i < SIP2_MAX_FIELDS; i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "AF%d|", i);
    sip2_msg_t m;
    assert_int_equal(sip2_parse(line, n, &m), SIP2_OK);
    assert_int_equal(m.nfields, SIP2_MAX_FIELDS);
    n += (size_t)snprintf(line + n, sizeof(line) - n, "AGone too many|");
    assert_int_equal(sip2_parse(line, n, &m), SIP2_MALFORMED);
}

static void test_empty_line(void **state)
{
    (void)state;
    sip2_msg_t m;
    assert_int_equal(sip2_parse("", 0, &m), SIP2_EMPTY);
    assert_int_equal(parse("   ", &m), SIP2_EMPTY);
    assert_int_equal(parse(" \t\n", &m), SIP2_EMPTY);
}

static void test_sequence_as_a_field(void **state)
{
    (void)state;
    /* Some terminals write "|AY1|AZxxxx": the AY field is the sequence. */
    char line[128];
    int n = snprintf(line, sizeof(line), "3520261207    101500AOx|AA2|AY7|AZ");
    snprintf(line + n, sizeof(line) - (size_t)n, "%04X", sip2_checksum(line, (size_t)n));
    sip2_msg_t m;
    assert_int_equal(parse(line, &m), SIP2_OK);
    assert_int_equal(m.seq, 7);
    assert_int_equal(m.nfields, 2);
    assert_null(sip2_field(&m, "AY", NULL));
}

static void test_field_lookup(void **state)
{
    (void)state;
    sip2_msg_t m;
    assert_int_equal(parse("63001"
                           "20261207    101500"
                           "          "
                           "AOinst|AApat|AFfirst|AFsecond|"
                           "AE\xc3\xa9mile Zola|AC|",
                           &m),
                     SIP2_OK);
    size_t len = 99;
    const char *v = sip2_field(&m, "AF", &len);
    assert_non_null(v);
    assert_int_equal(len, 5);
    assert_memory_equal(v, "first", 5);
    assert_null(sip2_field(&m, "BP", &len));
    assert_int_equal(len, 0);
    v = sip2_field(&m, "AC", &len);
    assert_non_null(v);
    assert_int_equal(len, 0);

    char out[8];
    assert_true(sip2_field_copy(&m, "AA", out, sizeof(out)));
    assert_string_equal(out, "pat");
    assert_false(sip2_field_copy(&m, "BP", out, sizeof(out)));
    assert_string_equal(out, "");
    /* Cut to the buffer, never inside a character: "\xc3\xa9mile " is 7 bytes. */
    char small[8];
    assert_true(sip2_field_copy(&m, "AE", small, sizeof(small)));
    assert_string_equal(small, "\xc3\xa9mile ");
    char tiny[2];
    assert_true(sip2_field_copy(&m, "AE", tiny, sizeof(tiny)));
    assert_string_equal(tiny, ""); /* half of \xc3\xa9 is never copied */
}

static void test_values_kept_whole(void **state)
{
    (void)state;
    char line[SIP2_MAX_MESSAGE];
    size_t n = (size_t)snprintf(line, sizeof(line), "1720261207    101500AF");
    memset(line + n, 'x', 300);
    n += 300;
    line[n++] = '|';
    sip2_msg_t m;
    assert_int_equal(sip2_parse(line, n, &m), SIP2_OK);
    size_t len;
    assert_non_null(sip2_field(&m, "AF", &len));
    assert_int_equal(len, 300);
}

static void test_builder_hides_fields(void **state)
{
    (void)state;
    sip2_out_t o;
    sip2_out_begin(&o, "36", "AF,BE,AG");
    sip2_out_flag(&o, true);
    sip2_out_fixed(&o, "20261207    101500");
    sip2_out_field(&o, "AO", "inst");
    sip2_out_field(&o, "AF", "screen");
    sip2_out_field(&o, "AA", "card");
    sip2_out_field(&o, "AG", "print");
    sip2_out_field(&o, "BE", "a@b.c");
    sip2_out_field(&o, "BF", NULL); /* NULL: no field at all */
    assert_string_equal(o.buf, "36Y20261207    101500AOinst|AAcard|");
    assert_false(o.overflow);

    /* An id that only starts like a hidden one is kept; no hide list hides nothing. */
    sip2_out_begin(&o, "36", "A");
    sip2_out_field(&o, "AF", "x");
    assert_string_equal(o.buf, "36AFx|");
    sip2_out_begin(&o, "36", NULL);
    sip2_out_field(&o, "AF", "x");
    assert_string_equal(o.buf, "36AFx|");
    sip2_out_begin(&o, "36", "AFX,AG");
    sip2_out_field(&o, "AF", "x");
    assert_string_equal(o.buf, "36AFx|");
}

static void test_builder_strips_pipes_and_controls(void **state)
{
    (void)state;
    sip2_out_t o;
    sip2_out_begin(&o, "10", NULL);
    sip2_out_field(&o, "AF", "a|b\rc\nd\te\x1b[2Jf\x7fg\xc2\x85h \xc3\xa9");
    assert_string_equal(o.buf, "10AFabcde[2Jfgh \xc3\xa9|");
    /* Bytes that are not UTF-8 go too. */
    sip2_out_begin(&o, "10", NULL);
    sip2_out_field(&o, "AF", "x\xff\xc3y");
    assert_string_equal(o.buf, "10AFxy|");
    /* An empty value is an empty field (AO is required even when empty). */
    sip2_out_begin(&o, "10", NULL);
    sip2_out_field(&o, "AO", "");
    assert_string_equal(o.buf, "10AO|");
}

static void test_builder_cuts_at_255_on_a_character(void **state)
{
    (void)state;
    char value[400];
    memset(value, 'a', 254);
    memcpy(value + 254,
           "\xc3\xa9"
           "zz",
           5); /* byte 255 is the first half of e-acute */
    sip2_out_t o;
    sip2_out_begin(&o, "18", NULL);
    sip2_out_field(&o, "AJ", value);
    assert_int_equal(o.len, 2 + 2 + 254 + 1);
    assert_memory_equal(o.buf + 4, value, 254);
    assert_int_equal(o.buf[o.len - 1], '|');

    memset(value, 'b', 300);
    value[300] = '\0';
    sip2_out_begin(&o, "18", NULL);
    sip2_out_field(&o, "AJ", value);
    assert_int_equal(o.len, 2 + 2 + SIP2_MAX_VALUE + 1);

    /* sip2_out_fieldf formats, then the same rules apply. */
    sip2_out_begin(&o, "66", NULL);
    sip2_out_fieldf(&o, "BM", "%s|%04d", "x", 7);
    assert_string_equal(o.buf, "66BMx0007|");
}

static void test_builder_overflow_drops_whole_fields(void **state)
{
    (void)state;
    char big[SIP2_MAX_VALUE + 1];
    memset(big, 'v', SIP2_MAX_VALUE);
    big[SIP2_MAX_VALUE] = '\0';
    sip2_out_t o;
    sip2_out_begin(&o, "64", NULL);
    sip2_out_fixed(&o, "              001"
                       "20261207    101500"
                       "000000000000000000000000");
    int written = 0;
    for (int i = 0; i < 40; i++) {
        size_t before = o.len;
        sip2_out_field(&o, "AU", big);
        if (o.len > before)
            written++;
        else
            assert_int_equal(o.len, before); /* nothing of a field that does not fit */
    }
    assert_true(o.overflow);
    assert_int_equal(written, (SIP2_MAX_MESSAGE - 9 - 2 - 59) / (SIP2_MAX_VALUE + 3));
    assert_int_equal(o.buf[o.len - 1], '|');
    /* A short field still fits after a long one was dropped. */
    sip2_out_field(&o, "AF", "end");
    assert_memory_equal(o.buf + o.len - 6, "AFend|", 6);
    sip2_out_end(&o, 9);
    assert_true(o.len - 1 <= SIP2_MAX_MESSAGE);
    assert_int_equal(o.buf[o.len - 1], '\r');
    sip2_msg_t m;
    assert_int_equal(sip2_parse(o.buf, o.len - 1, &m), SIP2_OK);
    assert_int_equal(m.nfields, (size_t)written + 1);
    assert_int_equal(m.seq, 9);
}

static void test_builder_round_trip(void **state)
{
    (void)state;
    sip2_out_t o;
    char date[19];
    sip2_date(date, 901186960);
    sip2_out_begin(&o, "12", "");
    sip2_out_flag(&o, true);
    sip2_out_flag(&o, false);
    sip2_out_fixed(&o, "U");
    sip2_out_flag(&o, true);
    sip2_out_fixed(&o, date);
    sip2_out_field(&o, "AO", "inst");
    sip2_out_field(&o, "AA", "21234");
    sip2_out_field(&o, "AB", "31000");
    sip2_out_field(&o, "AJ", "Les Mis\xc3\xa9rables");
    sip2_out_field(&o, "AH", date);
    sip2_out_end(&o, 4);
    assert_int_equal(o.buf[o.len - 1], '\r');
    assert_memory_equal(o.buf + o.len - 10, "AY4AZ", 5);

    sip2_msg_t m;
    assert_int_equal(sip2_parse(o.buf, o.len - 1, &m), SIP2_OK);
    assert_true(m.checksummed);
    assert_int_equal(m.seq, 4);
    assert_string_equal(m.code, "12");
    assert_int_equal(m.fixed_len, 22);
    assert_memory_equal(m.fixed, "YNUY", 4);
    assert_string_equal(field(&m, "AJ"), "Les Mis\xc3\xa9rables");
    assert_string_equal(field(&m, "AH"), date);

    /* No sequence in the request (or a nonsense one): AY0. */
    sip2_out_begin(&o, "96", NULL);
    sip2_out_end(&o, -1);
    assert_memory_equal(o.buf, "96AY0AZ", 7);
    assert_int_equal(sip2_parse(o.buf, o.len - 1, &m), SIP2_OK);
    assert_int_equal(m.seq, 0);
    sip2_out_begin(&o, "96", NULL);
    sip2_out_end(&o, 12);
    assert_memory_equal(o.buf, "96AY0AZ", 7);
}

static void test_dates_at_an_offset(void **state)
{
    (void)state;
    /* 2026-12-07 12:00:00 UTC in New York (-5 h) and in Auckland (+13 h), whatever TZ is. */
    setenv("TZ", "Asia/Tokyo", 1);
    tzset();
    char d[19];
    sip2_date_utc(d, (time_t)1796644800, -5 * 3600);
    assert_string_equal(d, "20261207    070000");
    sip2_date_utc(d, (time_t)1796644800, 13 * 3600);
    assert_string_equal(d, "20261208    010000");
}

static void test_dates(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    char d[19];
    sip2_date(d, 901186960);
    assert_string_equal(d, "19980723    094240");
    time_t t = 0;
    assert_true(sip2_parse_date(d, 18, &t));
    assert_int_equal(t, 901186960);
    /* Any zone text is taken as local time. */
    assert_true(sip2_parse_date("19980723Z   094240", 18, &t));
    assert_int_equal(t, 901186960);
    assert_true(sip2_parse_date("20240229    235959", 18, &t)); /* a leap day */

    assert_false(sip2_parse_date("                  ", 18, &t)); /* blank: no date */
    assert_false(sip2_parse_date("19980723    09424", 17, &t));
    assert_false(sip2_parse_date("19980723    0942400", 19, &t));
    assert_false(sip2_parse_date("19980230    094240", 18, &t)); /* 30 February */
    assert_false(sip2_parse_date("20230229    094240", 18, &t));
    assert_false(sip2_parse_date("19981323    094240", 18, &t));
    assert_false(sip2_parse_date("19980700    094240", 18, &t));
    assert_false(sip2_parse_date("19980723    244240", 18, &t));
    assert_false(sip2_parse_date("19980723    096040", 18, &t));
    assert_false(sip2_parse_date("1998O723    094240", 18, &t));
    assert_false(sip2_parse_date("19980723    0942-0", 18, &t));

    /* Local time elsewhere: the same wall-clock text both ways. */
    setenv("TZ", "America/New_York", 1);
    tzset();
    sip2_date(d, 901186960);
    assert_string_equal(d, "19980723    054240");
    assert_true(sip2_parse_date(d, 18, &t));
    assert_int_equal(t, 901186960);
    setenv("TZ", "UTC", 1);
    tzset();
}

/* ---- the line decoder ---- */

typedef struct {
    char lines[16][64];
    int n;
    uint32_t too_long[8];
    int ntoo_long;
} collected_t;

static void drain(line_decoder_t *dec, collected_t *c)
{
    const char *line;
    size_t len;
    line_result_t r;
    while ((r = line_decoder_next(dec, &line, &len)) != LINE_NEED_MORE) {
        if (r == LINE_TOO_LONG) {
            assert_true(c->ntoo_long < 8);
            c->too_long[c->ntoo_long++] = dec->too_long;
            continue;
        }
        assert_true(c->n < 16 && len < 64);
        memcpy(c->lines[c->n], line, len);
        c->lines[c->n][len] = '\0';
        c->n++;
    }
}

static void feed_lines(line_decoder_t *dec, const char *s, size_t n, collected_t *c)
{
    assert_int_equal(line_decoder_feed(dec, s, n), 0);
    drain(dec, c);
}

static void test_lines_split_anywhere(void **state)
{
    (void)state;
    const char *stream = "\n9900302.00\r\n23001x|\n\r\r\r\n\n17abc\r35x";
    size_t n = strlen(stream);
    for (size_t cut = 0; cut <= n; cut++) {
        line_decoder_t dec;
        line_decoder_init(&dec, 32, '\r');
        collected_t c = {0};
        feed_lines(&dec, stream, cut, &c);
        feed_lines(&dec, stream + cut, n - cut, &c);
        assert_int_equal(c.n, 3);
        assert_string_equal(c.lines[0], "9900302.00");
        assert_string_equal(c.lines[1], "23001x|");
        assert_string_equal(c.lines[2], "17abc");
        assert_int_equal(c.ntoo_long, 0);
        assert_int_equal(line_decoder_buffered(&dec), 3); /* "35x" waits for its CR */
        line_decoder_free(&dec);
    }
    /* One byte at a time. */
    line_decoder_t dec;
    line_decoder_init(&dec, 32, '\r');
    collected_t c = {0};
    for (size_t i = 0; i < n; i++)
        feed_lines(&dec, stream + i, 1, &c);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.lines[2], "17abc");
    line_decoder_free(&dec);
}

static void test_lines_at_max_and_over(void **state)
{
    (void)state;
    line_decoder_t dec;
    line_decoder_init(&dec, 8, '\r');
    collected_t c = {0};
    feed_lines(&dec, "12345678\r123456789\rok\r", 22, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.lines[0], "12345678");
    assert_string_equal(c.lines[1], "ok");
    assert_int_equal(c.ntoo_long, 1);
    assert_int_equal(c.too_long[0], 9);
    /* An LF before the CR does not count against the limit. */
    feed_lines(&dec, "12345678\n\r", 10, &c);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.lines[2], "12345678");
    line_decoder_free(&dec);
}

static void test_lines_overlong_never_buffered(void **state)
{
    (void)state;
    line_decoder_t dec;
    line_decoder_init(&dec, 16, '\r');
    collected_t c = {0};
    char chunk[1000];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 100; i++) {
        feed_lines(&dec, chunk, sizeof(chunk), &c);
        assert_true(line_decoder_buffered(&dec) <= 16 + 16);
        assert_true(dec.in.cap <= 2 * sizeof(chunk) + 64);
    }
    assert_int_equal(c.ntoo_long, 0); /* reported when its terminator comes */
    feed_lines(&dec, "tail\rnext\r", 10, &c);
    assert_int_equal(c.ntoo_long, 1);
    assert_int_equal(c.too_long[0], 100 * 1000 + 4);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.lines[0], "next");
    /* The channel stays usable: a later overlong line is reported again. */
    feed_lines(&dec, "yyyyyyyyyyyyyyyyyyyyyyyyy\rz\r", 28, &c);
    assert_int_equal(c.ntoo_long, 2);
    assert_int_equal(c.too_long[1], 25);
    assert_string_equal(c.lines[1], "z");
    line_decoder_free(&dec);
}

static void test_lines_endless_lfs_are_bounded(void **state)
{
    (void)state;
    line_decoder_t dec;
    line_decoder_init(&dec, 4, '\r');
    collected_t c = {0};
    char lfs[100];
    memset(lfs, '\n', sizeof(lfs));
    feed_lines(&dec, "abcd", 4, &c);
    for (int i = 0; i < 50; i++)
        feed_lines(&dec, lfs, sizeof(lfs), &c);
    assert_true(line_decoder_buffered(&dec) <= 4 + 16);
    feed_lines(&dec, "\rok\r", 4, &c);
    assert_int_equal(c.ntoo_long, 1);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.lines[0], "ok");
    line_decoder_free(&dec);
}

static void test_lines_empty_decoder(void **state)
{
    (void)state;
    line_decoder_t dec;
    line_decoder_init(&dec, 8, '\r');
    const char *line;
    size_t len;
    /* Nothing fed yet: no buffer at all (the fuzzer found this one). */
    assert_int_equal(line_decoder_next(&dec, &line, &len), LINE_NEED_MORE);
    assert_int_equal(line_decoder_feed(&dec, "", 0), 0);
    assert_int_equal(line_decoder_next(&dec, &line, &len), LINE_NEED_MORE);
    line_decoder_free(&dec);
    assert_int_equal(line_decoder_next(&dec, &line, &len), LINE_NEED_MORE);
}

/* A line's bytes (a 93's password, a patron's PIN) are zeroed once the caller is
 * done with it, and so is an overlong line dropped. */
static void test_lines_wiped_once_used(void **state)
{
    (void)state;
    line_decoder_t dec;
    line_decoder_init(&dec, 40, '\r');
    const char *in = "9300CNkiosk|COsecret-pw|AY0AZF00F\r99";
    assert_int_equal(line_decoder_feed(&dec, in, strlen(in)), 0);
    const char *line;
    size_t len;
    assert_int_equal(line_decoder_next(&dec, &line, &len), LINE_READY);
    assert_non_null(memmem(line, len, "secret-pw", 9)); /* valid until the next call */
    assert_int_equal(line_decoder_next(&dec, &line, &len), LINE_NEED_MORE);
    assert_null(memmem(dec.in.data, dec.in.cap, "secret-pw", 9));
    /* the rest of the stream is kept */
    assert_int_equal(line_decoder_feed(&dec, "00302.00\r", 9), 0);
    assert_int_equal(line_decoder_next(&dec, &line, &len), LINE_READY);
    assert_int_equal(len, 10);
    assert_memory_equal(line, "9900302.00", 10);
    /* feeding after a line wipes it too */
    const char *more = "23PIN-1234\r1234567890123456789012345678901234567890PIN-5678\r";
    assert_int_equal(line_decoder_feed(&dec, more, strlen(more)), 0);
    assert_int_equal(line_decoder_next(&dec, &line, &len), LINE_READY);
    assert_int_equal(line_decoder_feed(&dec, "x", 1), 0);
    assert_null(memmem(dec.in.data, dec.in.cap, "PIN-1234", 8));
    assert_int_equal(line_decoder_next(&dec, &line, &len), LINE_TOO_LONG);
    assert_null(memmem(dec.in.data, dec.in.cap, "PIN-5678", 8));
    line_decoder_free(&dec);
}

/* Whether the LFs arrive with the CR or before it, the outcome is the same. */
static void test_lines_lf_slack_same_either_way(void **state)
{
    (void)state;
    char text[64];
    memcpy(text, "abcd", 4);
    memset(text + 4, '\n', 20);
    text[24] = '\r';
    line_decoder_t dec;
    line_decoder_init(&dec, 4, '\r');
    collected_t whole = {0}, pieces = {0};
    feed_lines(&dec, text, 25, &whole);
    line_decoder_free(&dec);
    line_decoder_init(&dec, 4, '\r');
    feed_lines(&dec, text, 24, &pieces);
    feed_lines(&dec, text + 24, 1, &pieces);
    line_decoder_free(&dec);
    assert_int_equal(whole.ntoo_long, 1);
    assert_int_equal(pieces.ntoo_long, 1);
    assert_int_equal(whole.too_long[0], pieces.too_long[0]);
    assert_int_equal(whole.n + pieces.n, 0);
}

static void test_lines_lf_terminator(void **state)
{
    (void)state;
    line_decoder_t dec;
    line_decoder_init(&dec, 16, '\n');
    collected_t c = {0};
    feed_lines(&dec, "a\n\nb\r\n", 6, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.lines[0], "a");
    assert_string_equal(c.lines[1], "b\r");
    line_decoder_free(&dec);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_spec_examples),
        cmocka_unit_test(test_parse_login_93),
        cmocka_unit_test(test_parse_sc_status_99),
        cmocka_unit_test(test_parse_patron_status_23),
        cmocka_unit_test(test_parse_patron_information_63),
        cmocka_unit_test(test_parse_checkout_11),
        cmocka_unit_test(test_parse_checkin_09),
        cmocka_unit_test(test_parse_renew_29_and_renew_all_65),
        cmocka_unit_test(test_parse_item_17_fee_37_end_35),
        cmocka_unit_test(test_parse_resend_97),
        cmocka_unit_test(test_parse_responses),
        cmocka_unit_test(test_bad_checksum),
        cmocka_unit_test(test_lowercase_hex_accepted),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_unknown_code),
        cmocka_unit_test(test_too_many_fields),
        cmocka_unit_test(test_empty_line),
        cmocka_unit_test(test_sequence_as_a_field),
        cmocka_unit_test(test_field_lookup),
        cmocka_unit_test(test_values_kept_whole),
        cmocka_unit_test(test_builder_hides_fields),
        cmocka_unit_test(test_builder_strips_pipes_and_controls),
        cmocka_unit_test(test_builder_cuts_at_255_on_a_character),
        cmocka_unit_test(test_builder_overflow_drops_whole_fields),
        cmocka_unit_test(test_builder_round_trip),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_dates_at_an_offset),
        cmocka_unit_test(test_lines_split_anywhere),
        cmocka_unit_test(test_lines_at_max_and_over),
        cmocka_unit_test(test_lines_overlong_never_buffered),
        cmocka_unit_test(test_lines_endless_lfs_are_bounded),
        cmocka_unit_test(test_lines_empty_decoder),
        cmocka_unit_test(test_lines_wiped_once_used),
        cmocka_unit_test(test_lines_lf_slack_same_either_way),
        cmocka_unit_test(test_lines_lf_terminator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
