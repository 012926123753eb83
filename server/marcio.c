#include "marcio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <yaz/marcdisp.h>
#include <yaz/wrbuf.h>
#include <yaz/yaz-iconv.h>

void marcio_init(void)
{
    xmlInitParser();
}

void marcio_cleanup(void)
{
    xmlCleanupParser();
}

/* True when every byte sequence is valid UTF-8. */
static bool marcio_valid_utf8(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t extra;
        if (c < 0x80)
            extra = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            extra = 1;
        else if ((c & 0xF0) == 0xE0)
            extra = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            extra = 3;
        else
            return false;
        if (extra > n - i - 1)
            return false;
        for (size_t k = 1; k <= extra; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
        i += extra + 1;
    }
    return true;
}

static bool marcio_has_high_bytes(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80 || p[i] == 0x1B)
            return true;
    return false;
}

static int marcio_digits(const uint8_t *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/*
 * Control fields (00X) that carry subfields (danMARC writes 001-008 so) come
 * out of libyaz with subfield delimiters inside: the catalog would take them
 * as data. Keep them as '$', which is how MARC tools print them, and say so.
 * Works on libyaz's own output (rec, len), so the directory is well formed;
 * every offset is still checked.
 */
static void marcio_flatten_control_subfields(uint8_t *rec, size_t len, char *warning, size_t wlen)
{
    int base = len > 24 ? marcio_digits(rec + 12, 5) : -1;
    if (base < 25 || (size_t)base > len)
        return;
    for (size_t e = 24; e + 12 <= (size_t)base - 1; e += 12) {
        int flen = marcio_digits(rec + e + 3, 4), start = marcio_digits(rec + e + 7, 5);
        if (flen < 1 || start < 0 || (size_t)base + (size_t)start + (size_t)flen > len)
            return;
        if (rec[e] != '0' || rec[e + 1] != '0')
            continue;
        uint8_t *d = rec + base + start;
        bool changed = false;
        for (int i = 0; i < flen - 1; i++)
            if (d[i] == 0x1F) {
                d[i] = '$';
                changed = true;
            }
        if (changed && warning[0] == '\0')
            snprintf(warning, wlen,
                     "control field %.3s has subfields (danMARC style); kept with '$' for the "
                     "subfield delimiters",
                     (const char *)rec + e);
    }
}

/*
 * Bytes of the control character that starts at p (n bytes left): C0 other
 * than the MARC delimiter and terminators, DEL, or C1 (U+0080 to U+009F,
 * found by decoding UTF-8: never a lone byte, never part of another
 * character). 0 when p starts anything else. *step is how far to go on: a
 * whole UTF-8 sequence, or one byte that does not start one.
 */
static size_t marcio_control_at(const uint8_t *p, size_t n, size_t *step)
{
    uint8_t c = p[0];
    size_t extra = c >= 0xC2 && c <= 0xDF   ? 1
                   : (c & 0xF0) == 0xE0     ? 2
                   : c >= 0xF0 && c <= 0xF4 ? 3
                                            : 0;
    *step = 1;
    if (extra > 0 && extra < n) {
        bool sequence = true;
        for (size_t k = 1; k <= extra; k++)
            sequence = sequence && (p[k] & 0xC0) == 0x80;
        *step = sequence ? extra + 1 : 1;
    }
    if ((c < 0x20 && c != 0x1D && c != 0x1E && c != 0x1F) || c == 0x7F)
        return 1;
    return *step == 2 && c == 0xC2 && p[1] <= 0x9F ? 2 : 0;
}

/*
 * One field's n bytes (n >= 1, its terminator last) onto `to`, with each
 * control character in its data replaced by a space: the whole of a control
 * field (00X); in a data field the subfield values, never the indicators nor
 * a subfield code. Delimiters and terminators are copied where they are, so
 * a stray one still makes marc_parse refuse the record. Returns how many
 * characters were replaced, or -1 when out of memory.
 */
static long marcio_copy_field_replacing(struct buf *to, const uint8_t *f, size_t n, bool control)
{
    size_t body = n - 1, i = control || body < 2 ? 0 : 2; /* indicators as they are */
    bool data = control; /* in a data field, only what follows a delimiter and code */
    long replaced = 0;
    if (buf_append(to, f, i) != 0)
        return -1;
    while (i < body) {
        size_t step, ctl = marcio_control_at(f + i, body - i, &step);
        if (!control && f[i] == 0x1F) {
            step = i + 1 < body ? 2 : 1; /* the delimiter and its code */
            data = true;
        } else if (ctl > 0 && data) {
            if (buf_append(to, " ", 1) != 0)
                return -1;
            replaced++;
            i += ctl;
            continue;
        }
        if (buf_append(to, f + i, step) != 0)
            return -1;
        i += step;
    }
    return buf_append(to, f + body, 1) != 0 ? -1 : replaced;
}

/* Add "TAG: N control characters replaced by spaces" for each field to the warning. */
static void marcio_warn_replaced(const char (*tags)[4], const long *counts, size_t n, size_t more,
                                 char *warning, size_t wlen)
{
    for (size_t i = 0; i < n + (more > 0); i++) {
        size_t used = strlen(warning);
        const char *sep = used > 0 ? "; " : "";
        if (i == n)
            snprintf(warning + used, wlen - used,
                     "%s%zu more fields: control characters replaced by spaces", sep, more);
        else
            snprintf(warning + used, wlen - used, "%s%.3s: %ld control character%s replaced by %s",
                     sep, tags[i], counts[i], counts[i] > 1 ? "s" : "",
                     counts[i] > 1 ? "spaces" : "a space");
    }
}

/*
 * Real files carry stray control characters in their text (a TAB or CR
 * from a spreadsheet, an ESC left over from MARC-8, C1 from a mistaken
 * conversion). Mature readers keep such records, and so does the import:
 * each one in the data of the record libyaz wrote (out->data + at to the
 * end) is replaced by a space, the directory and leader rewritten (a C1
 * character is two bytes), and the fields named in the warning. A directory
 * that cannot be walked is left for marc_parse to refuse. Returns 0, or -1
 * when out of memory.
 */
static int marcio_replace_controls(struct buf *out, size_t at, char *warning, size_t wlen)
{
    const uint8_t *rec = out->data + at;
    size_t len = out->len - at;
    int base = len > 25 ? marcio_digits(rec + 12, 5) : -1;
    if (base < 25 || (size_t)base > len || (base - 25) % 12 != 0)
        return 0;
    struct buf fixed = BUF_INIT;
    char tags[4][4];
    long counts[4], total = 0;
    size_t ntags = 0, more = 0;
    if (buf_append(&fixed, rec, (size_t)base) != 0)
        return -1;
    for (size_t e = 24; e + 12 < (size_t)base; e += 12) {
        int flen = marcio_digits(rec + e + 3, 4), start = marcio_digits(rec + e + 7, 5);
        if (flen < 1 || start < 0 || (size_t)base + (size_t)start + (size_t)flen > len - 1) {
            buf_free(&fixed);
            return 0;
        }
        size_t from = fixed.len;
        long n = marcio_copy_field_replacing(&fixed, rec + base + start, (size_t)flen,
                                             rec[e] == '0' && rec[e + 1] == '0');
        if (n < 0) {
            buf_free(&fixed);
            return -1;
        }
        char entry[16]; /* the field only shrank: its length and start still fit */
        snprintf(entry, sizeof(entry), "%04zu%05zu", fixed.len - from, from - (size_t)base);
        memcpy(fixed.data + e + 3, entry, 9);
        size_t k = 0;
        while (k < ntags && memcmp(tags[k], rec + e, 3) != 0)
            k++;
        if (n > 0 && k == ntags && ntags < 4) {
            memcpy(tags[ntags], rec + e, 3);
            counts[ntags++] = 0;
        }
        if (n > 0 && k < ntags)
            counts[k] += n;
        else if (n > 0)
            more++;
        total += n;
    }
    char rt = 0x1D, num[8];
    int rc = 0;
    if (total > 0 && (rc = buf_append(&fixed, &rt, 1)) == 0) {
        snprintf(num, sizeof(num), "%05zu", fixed.len);
        memcpy(fixed.data, num, 5);
        out->len = at;
        rc = buf_append(out, fixed.data, fixed.len);
        marcio_warn_replaced((const char(*)[4])tags, counts, ntags, more, warning, wlen);
    }
    buf_free(&fixed);
    return rc;
}

/* Write the record held by mt as ISO 2709 with leader/09 'a' (UTF-8). */
static int marcio_write(yaz_marc_t mt, struct buf *out, char *warning, size_t wlen, char *err,
                        size_t elen)
{
    yaz_marc_modify_leader(mt, 9, "a");
    WRBUF w = wrbuf_alloc();
    int rc = yaz_marc_write_iso2709(mt, w);
    size_t at = out->len;
    if (rc == 0 && buf_append(out, wrbuf_buf(w), wrbuf_len(w)) != 0)
        rc = -1;
    if (rc == 0) {
        marcio_flatten_control_subfields(out->data + at, out->len - at, warning, wlen);
        rc = marcio_replace_controls(out, at, warning, wlen);
    }
    if (rc != 0)
        snprintf(err, elen, "cannot write the record back out");
    wrbuf_destroy(w);
    return rc;
}

/*
 * libyaz takes the indicator count, the identifier length and the widths of
 * a directory entry from leader/10-11 and 20-21: with '9's there, its sums of
 * nine-digit numbers overflow and it reads anywhere. MARC 21 fixes them at
 * 2, 2, 4 and 5, so they are set to that before libyaz sees the record.
 */
static void marcio_fix_entry_map(char *leader)
{
    leader[10] = '2';
    leader[11] = '2';
    leader[20] = '4';
    leader[21] = '5';
}

/* A data field's first bytes: two indicators, then data with no subfield delimiter. */
static bool marcio_data_before_code(const char *tag, const uint8_t *f, int flen)
{
    if (tag[0] == '0' && tag[1] == '0')
        return false;
    if (flen < 4) /* indicators, one byte of data, the terminator */
        return false;
    for (int i = 0; i < 3; i++)
        if (f[i] == 0x1F || f[i] == 0x1E || f[i] == 0x1D)
            return false;
    return true;
}

/*
 * A data field written without its first subfield code ("  2nd ed." for
 * "  $a2nd ed."): libyaz would take the first byte of the data for the
 * delimiter and the second for the code, losing a character or splitting a
 * UTF-8 one. When the directory is sound, rewrite such fields with $a and
 * say so; returns a new padded record (and its length) or NULL when there is
 * nothing to repair.
 */
static char *marcio_add_missing_codes(const char *rec, size_t len, size_t *newlen, char *warning,
                                      size_t wlen)
{
    const uint8_t *p = (const uint8_t *)rec;
    int base = marcio_digits(p + 12, 5);
    if (base < 25 || (size_t)base > len || p[base - 1] != 0x1E || (base - 25) % 12 != 0)
        return NULL;
    /* Fields may overlap or leave gaps: the new record's size is counted, not assumed. */
    size_t entries = (size_t)(base - 25) / 12, repairs = 0, total = (size_t)base + 1;
    for (size_t i = 0; i < entries; i++) {
        const uint8_t *e = p + 24 + 12 * i;
        int flen = marcio_digits(e + 3, 4), start = marcio_digits(e + 7, 5);
        if (flen < 1 || start < 0 || (size_t)base + (size_t)start + (size_t)flen > len)
            return NULL; /* a damaged directory: left to libyaz and its checks */
        bool fix = marcio_data_before_code((const char *)e, p + base + start, flen);
        if (fix && flen + 2 > 9999)
            return NULL; /* the repaired field's length would not fit its entry */
        repairs += fix;
        total += (size_t)flen + (fix ? 2 : 0);
    }
    if (repairs == 0 || total > 99999)
        return NULL;
    char *out = calloc(1, total + MARCIO_PAD);
    if (out == NULL)
        return NULL;
    memcpy(out, rec, (size_t)base);
    size_t at = (size_t)base, first = entries;
    for (size_t i = 0; i < entries; i++) {
        const uint8_t *e = p + 24 + 12 * i;
        int flen = marcio_digits(e + 3, 4), start = marcio_digits(e + 7, 5);
        const uint8_t *f = p + base + start;
        bool fix = marcio_data_before_code((const char *)e, f, flen);
        char entry[16];
        snprintf(entry, sizeof(entry), "%04d%05zu", flen + (fix ? 2 : 0), at - (size_t)base);
        memcpy(out + 24 + 12 * i + 3, entry, 9);
        if (fix) {
            memcpy(out + at, f, 2);
            memcpy(out + at + 2,
                   "\x1f"
                   "a",
                   2);
            memcpy(out + at + 4, f + 2, (size_t)flen - 2);
            at += (size_t)flen + 2;
            first = first < entries ? first : i;
        } else {
            memcpy(out + at, f, (size_t)flen);
            at += (size_t)flen;
        }
    }
    out[at++] = 0x1D;
    char num[8];
    snprintf(num, sizeof(num), "%05zu", at);
    memcpy(out, num, 5);
    *newlen = at;
    if (warning[0] == '\0')
        snprintf(warning, wlen, "field %.3s has data before its first subfield code; read as $a%s",
                 rec + 24 + 12 * first, repairs > 1 ? " (and other fields the same)" : "");
    return out;
}

static int marcio_iso2709(const uint8_t *data, size_t len, struct buf *out, char *warning,
                          size_t wlen, char *err, size_t elen)
{
    if (len < 26) {
        snprintf(err, elen, "too short to be a MARC record (%zu bytes)", len);
        return -1;
    }
    if (len > 99999) {
        snprintf(err, elen, "longer than a MARC record can be (%zu bytes)", len);
        return -1;
    }
    /* The splitter found the record by its terminator; trust that over the leader.
     * libyaz (5.34) reads a few bytes past the record on some damaged
     * directories (indicators of a one-byte last field, the danMARC check), so
     * it gets a copy with zero bytes after the record. */
    char *copy = calloc(1, len + MARCIO_PAD);
    if (copy == NULL) {
        snprintf(err, elen, "out of memory");
        return -1;
    }
    memcpy(copy, data, len);
    marcio_fix_entry_map(copy);
    char declared[6];
    memcpy(declared, copy, 5);
    declared[5] = '\0';
    char actual[6];
    snprintf(actual, sizeof(actual), "%05zu", len);
    if (memcmp(declared, actual, 5) != 0) {
        memcpy(copy, actual, 5);
        snprintf(warning, wlen,
                 "the leader gives a record length of '%s' but the record has %zu bytes; "
                 "read it by its actual length",
                 declared, len);
    }
    size_t fixed_len;
    char *fixed = marcio_add_missing_codes(copy, len, &fixed_len, warning, wlen);
    if (fixed) {
        free(copy);
        copy = fixed;
        len = fixed_len;
    }
    yaz_marc_t mt = yaz_marc_create();
    yaz_marc_xml(mt, YAZ_MARC_ISO2709);
    yaz_iconv_t cd = NULL;
    bool utf8 = copy[9] == 'a';
    if (utf8 && !marcio_valid_utf8((const uint8_t *)copy, len)) {
        utf8 = false; /* flagged UTF-8 but is not: most likely MARC-8 */
        snprintf(warning, wlen, "flagged as UTF-8 but not valid UTF-8; read as MARC-8");
    }
    if (!utf8 && marcio_has_high_bytes((const uint8_t *)copy, len)) {
        cd = yaz_iconv_open("utf-8", "marc8");
        if (cd == NULL) {
            yaz_marc_destroy(mt);
            free(copy);
            snprintf(err, elen, "no MARC-8 converter available");
            return -1;
        }
        yaz_marc_iconv(mt, cd);
    }
    int rc = yaz_marc_read_iso2709(mt, copy, (int)len);
    if (rc <= 0) {
        snprintf(err, elen, "cannot read the record: bad leader or directory");
        rc = -1;
    } else {
        rc = marcio_write(mt, out, warning, wlen, err, elen);
    }
    yaz_marc_destroy(mt);
    if (cd)
        yaz_iconv_close(cd);
    free(copy);
    return rc;
}

static xmlNode *marcio_find_record(xmlNode *n)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)n->name, "record") == 0)
            return n;
        xmlNode *inner = marcio_find_record(n->children);
        if (inner)
            return inner;
    }
    return NULL;
}

static int marcio_xml(const uint8_t *data, size_t len, struct buf *out, char *warning, size_t wlen,
                      char *err, size_t elen)
{
    if (len > 16 * 1024 * 1024) { /* xmlReadMemory takes an int; no record is near this */
        snprintf(err, elen, "too long to be a MARCXML record (%zu bytes)", len);
        return -1;
    }
    xmlDoc *doc = xmlReadMemory((const char *)data, (int)len, "record.xml", "UTF-8",
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL) {
        snprintf(err, elen, "not well-formed XML");
        return -1;
    }
    xmlNode *record = marcio_find_record(xmlDocGetRootElement(doc));
    int rc = -1;
    if (record == NULL) {
        snprintf(err, elen, "no MARCXML <record> element");
    } else {
        yaz_marc_t mt = yaz_marc_create();
        yaz_marc_xml(mt, YAZ_MARC_ISO2709);
        if (yaz_marc_read_xml(mt, record) != 0)
            snprintf(err, elen, "not a MARCXML record (leader, controlfield, datafield)");
        else
            rc = marcio_write(mt, out, warning, wlen, err, elen);
        yaz_marc_destroy(mt);
    }
    xmlFreeDoc(doc);
    return rc;
}

int marcio_normalize(const uint8_t *data, size_t len, bool xml, struct buf *out, char *warning,
                     size_t wlen, char *err, size_t elen)
{
    warning[0] = '\0';
    err[0] = '\0';
    return xml ? marcio_xml(data, len, out, warning, wlen, err, elen)
               : marcio_iso2709(data, len, out, warning, wlen, err, elen);
}

int marcio_to_marcxml(const uint8_t *data, size_t len, struct buf *out)
{
    if (len < 26 || len > 99999)
        return -1;
    char *copy = calloc(1, len + MARCIO_PAD); /* as in marcio_iso2709 */
    if (copy == NULL)
        return -1;
    memcpy(copy, data, len);
    marcio_fix_entry_map(copy);
    yaz_marc_t mt = yaz_marc_create();
    yaz_marc_xml(mt, YAZ_MARC_MARCXML);
    int rc = yaz_marc_read_iso2709(mt, copy, (int)len) > 0 ? 0 : -1;
    if (rc == 0) {
        WRBUF w = wrbuf_alloc();
        rc = yaz_marc_write_mode(mt, w);
        if (rc == 0 && buf_append(out, wrbuf_buf(w), wrbuf_len(w)) != 0)
            rc = -1;
        wrbuf_destroy(w);
    }
    yaz_marc_destroy(mt);
    free(copy);
    return rc;
}
