#include "marc.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MARC_FT 0x1E /* field terminator */
#define MARC_RT 0x1D /* record terminator */
#define MARC_US 0x1F /* subfield delimiter */

bool marc_is_control_tag(const char *tag)
{
    return tag[0] == '0' && tag[1] == '0';
}

static int marc_digits(const uint8_t *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit(p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

void marc_init(marc_record_t *r, const char *leader)
{
    memset(r, 0, sizeof(*r));
    if (leader && strlen(leader) >= MARC_LEADER_LEN)
        memcpy(r->leader, leader, MARC_LEADER_LEN);
    else
        memcpy(r->leader, "00000nam a2200000 i 4500", MARC_LEADER_LEN);
    r->leader[MARC_LEADER_LEN] = '\0';
}

static marc_field_t *marc_push(arena_t *a, marc_record_t *r)
{
    if (r->nfields == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        marc_field_t *f = arena_new(a, marc_field_t, cap);
        if (r->nfields)
            memcpy(f, r->fields, r->nfields * sizeof(*f));
        r->fields = f;
        r->cap = cap;
    }
    marc_field_t *f = &r->fields[r->nfields++];
    memset(f, 0, sizeof(*f));
    return f;
}

/* Keep fields in tag order, as catalogers expect: insert after the last field <= tag. */
static marc_field_t *marc_insert(arena_t *a, marc_record_t *r, const char *tag)
{
    marc_push(a, r);
    size_t at = r->nfields - 1;
    while (at > 0 && strcmp(r->fields[at - 1].tag, tag) > 0) {
        r->fields[at] = r->fields[at - 1];
        at--;
    }
    marc_field_t *f = &r->fields[at];
    memset(f, 0, sizeof(*f));
    memcpy(f->tag, tag, 3);
    return f;
}

marc_field_t *marc_add_field(arena_t *a, marc_record_t *r, const char *tag, char ind1, char ind2)
{
    marc_field_t *f = marc_insert(a, r, tag);
    f->ind1 = ind1;
    f->ind2 = ind2;
    return f;
}

void marc_add_subfield(arena_t *a, marc_field_t *f, char code, const char *value)
{
    marc_subfield_t *s = arena_new(a, marc_subfield_t, f->nsubfields + 1);
    if (f->nsubfields)
        memcpy(s, f->subfields, f->nsubfields * sizeof(*s));
    s[f->nsubfields].code = code;
    s[f->nsubfields].value = arena_strdup(a, value);
    f->subfields = s;
    f->nsubfields++;
}

void marc_add_control(arena_t *a, marc_record_t *r, const char *tag, const char *data)
{
    marc_field_t *f = marc_insert(a, r, tag);
    f->data = arena_strdup(a, data);
}

void marc_remove_fields(marc_record_t *r, const char *tag)
{
    size_t out = 0;
    for (size_t i = 0; i < r->nfields; i++)
        if (strcmp(r->fields[i].tag, tag) != 0)
            r->fields[out++] = r->fields[i];
    r->nfields = out;
}

/*
 * Why a byte sequence is not acceptable as MARC data, or NULL when it is:
 * valid UTF-8 with no control characters (C0, DEL, C1). The MARC structural
 * characters are C0 too, so a delimiter or terminator inside data is refused
 * here as well. Data that passed this check cannot change the record's
 * structure when written out, nor reach a terminal as an escape sequence.
 */
const char *marc_text_problem(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x20 || c == 0x7F)
            return "a control character";
        size_t extra;
        if (c < 0x80)
            extra = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            extra = 1;
        else if (c >= 0xE0 && c <= 0xEF)
            extra = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            extra = 3;
        else
            return "invalid UTF-8";
        if (extra > n - i - 1)
            return "invalid UTF-8";
        for (size_t k = 1; k <= extra; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return "invalid UTF-8";
        /* Overlong forms, surrogates and code points past U+10FFFF. */
        if ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] > 0x9F) ||
            (c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] > 0x8F))
            return "invalid UTF-8";
        if (c == 0xC2 && p[i + 1] <= 0x9F)
            return "a control character"; /* C1: U+0080 to U+009F */
        i += extra + 1;
    }
    return NULL;
}

/* A subfield code: a printable ASCII character (MARC 21 uses a-z and 0-9). */
static bool marc_code_ok(uint8_t c)
{
    return c >= 0x20 && c < 0x7F;
}

/* An indicator: printable ASCII; marcimport turns unusual ones ('-', '#') into blanks. */
static bool marc_indicator_ok(uint8_t c)
{
    return c >= 0x20 && c < 0x7F;
}

static int marc_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int marc_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * One data field's bytes (without its terminator): two indicators, then
 * subfields, each a delimiter, a code and a value. Everything in between
 * must be where it belongs; anything else is an error, never a guess.
 */
static int marc_parse_data_field(arena_t *a, marc_field_t *f, const uint8_t *d, size_t n, char *err,
                                 size_t errlen)
{
    if (n < 2)
        return marc_fail(err, errlen, "field %s is too short to hold its indicators", f->tag);
    if (!marc_indicator_ok(d[0]) || !marc_indicator_ok(d[1]))
        return marc_fail(err, errlen,
                         "field %s: an indicator is not a printable ASCII character "
                         "(a subfield delimiter or control character where an indicator belongs)",
                         f->tag);
    f->ind1 = (char)d[0];
    f->ind2 = (char)d[1];
    size_t count = 0;
    for (size_t k = 2; k < n; k++)
        if (d[k] == MARC_US)
            count++;
    if (n > 2 && d[2] != MARC_US)
        return marc_fail(err, errlen, "field %s has data before its first subfield", f->tag);
    f->subfields = arena_new(a, marc_subfield_t, count ? count : 1);
    size_t at = 2;
    while (at < n) {
        /* d[at] is a delimiter; the code follows it. */
        if (at + 1 >= n || !marc_code_ok(d[at + 1]))
            return marc_fail(err, errlen,
                             "field %s has an empty or invalid subfield code (two subfield "
                             "delimiters in a row, or a control character as code)",
                             f->tag);
        size_t from = at + 2, to = from;
        while (to < n && d[to] != MARC_US)
            to++;
        const char *why = marc_text_problem(d + from, to - from);
        if (why)
            return marc_fail(err, errlen, "field %s $%c contains %s", f->tag, d[at + 1], why);
        marc_subfield_t *s = &f->subfields[f->nsubfields++];
        s->code = (char)d[at + 1];
        s->value = arena_strndup(a, (const char *)d + from, to - from);
        at = to;
    }
    return 0;
}

/* One directory entry and the field it points at. */
static int marc_parse_entry(arena_t *a, const uint8_t *p, size_t len, size_t base, size_t i,
                            marc_record_t *r, char *err, size_t errlen)
{
    const uint8_t *e = p + MARC_LEADER_LEN + 12 * i;
    int flen = marc_digits(e + 3, 4);
    int start = marc_digits(e + 7, 5);
    /* The last byte of the record is its terminator, never part of a field. */
    if (flen < 1 || start < 0 || base + (size_t)start + (size_t)flen > len - 1)
        return marc_fail(err, errlen, "directory entry %zu points outside the record", i + 1);
    const uint8_t *d = p + base + (size_t)start;
    size_t n = (size_t)flen;
    if (d[n - 1] != MARC_FT)
        return marc_fail(err, errlen, "field %.3s does not end with a field terminator",
                         isprint(e[0]) && isprint(e[1]) && isprint(e[2]) ? (const char *)e : "???");
    n--;
    marc_field_t *f = marc_push(a, r);
    for (int k = 0; k < 3; k++)
        f->tag[k] = e[k] >= 0x21 && e[k] < 0x7F ? (char)e[k] : '?';
    if (!marc_is_control_tag(f->tag))
        return marc_parse_data_field(a, f, d, n, err, errlen);
    const char *why = marc_text_problem(d, n);
    if (why)
        return marc_fail(err, errlen, "field %s contains %s", f->tag, why);
    f->data = arena_strndup(a, (const char *)d, n);
    return 0;
}

/*
 * Total: any bytes give either a record whose every string is clean UTF-8
 * without control characters, or -1 with a reason. Only the structure
 * marc_write() produces is accepted, so a damaged record is reported, never
 * half read.
 */
int marc_parse(arena_t *a, const uint8_t *p, size_t len, marc_record_t *r, char *err, size_t errlen)
{
    marc_init(r, NULL);
    if (len < MARC_LEADER_LEN + 2)
        return marc_fail(err, errlen, "record too short (%zu bytes)", len);
    memcpy(r->leader, p, MARC_LEADER_LEN);
    for (int i = 0; i < MARC_LEADER_LEN; i++)
        if (!isprint((unsigned char)r->leader[i]))
            r->leader[i] = ' ';
    int base = marc_digits(p + 12, 5);
    if (base < MARC_LEADER_LEN + 1 || (size_t)base > len - 1)
        return marc_fail(err, errlen, "bad base address of data in the leader");
    if (p[base - 1] != MARC_FT)
        return marc_fail(err, errlen, "the directory does not end where the leader says");
    if ((base - 1 - MARC_LEADER_LEN) % 12 != 0)
        return marc_fail(err, errlen, "the directory is not made of 12-byte entries");
    size_t entries = (size_t)(base - 1 - MARC_LEADER_LEN) / 12;
    for (size_t i = 0; i < entries; i++)
        if (marc_parse_entry(a, p, len, (size_t)base, i, r, err, errlen) != 0)
            return -1;
    if (p[len - 1] != MARC_RT)
        return marc_fail(err, errlen, "the record does not end with a record terminator");
    return 0;
}

/* False, with the reason in err, when marc_parse() would refuse the field as written. */
static bool marc_field_ok(const marc_field_t *f, char *err, size_t errlen)
{
    for (int k = 0; k < 3; k++)
        if (!(f->tag[k] >= 0x21 && f->tag[k] < 0x7F)) {
            snprintf(err, errlen, "a field tag is not three printable characters");
            return false;
        }
    const char *why;
    if (marc_is_control_tag(f->tag)) {
        const char *d = f->data ? f->data : "";
        if ((why = marc_text_problem((const uint8_t *)d, strlen(d))) != NULL) {
            snprintf(err, errlen, "field %.3s contains %s", f->tag, why);
            return false;
        }
        return true;
    }
    char ind[2] = {f->ind1 ? f->ind1 : ' ', f->ind2 ? f->ind2 : ' '};
    if (!marc_indicator_ok((uint8_t)ind[0]) || !marc_indicator_ok((uint8_t)ind[1])) {
        snprintf(err, errlen, "field %.3s: an indicator is not a printable ASCII character",
                 f->tag);
        return false;
    }
    for (size_t i = 0; i < f->nsubfields; i++) {
        const marc_subfield_t *s = &f->subfields[i];
        const char *v = s->value ? s->value : "";
        if (!marc_code_ok((uint8_t)s->code)) {
            snprintf(err, errlen,
                     "field %.3s has an empty or invalid subfield code (not printable ASCII)",
                     f->tag);
            return false;
        }
        if ((why = marc_text_problem((const uint8_t *)v, strlen(v))) != NULL) {
            snprintf(err, errlen, "field %.3s $%c contains %s", f->tag, s->code, why);
            return false;
        }
    }
    return true;
}

static int marc_field_bytes(const marc_field_t *f, struct buf *out)
{
    if (marc_is_control_tag(f->tag)) {
        if (buf_append(out, f->data ? f->data : "", strlen(f->data ? f->data : "")) != 0)
            return -1;
    } else {
        char ind[2] = {f->ind1 ? f->ind1 : ' ', f->ind2 ? f->ind2 : ' '};
        if (buf_append(out, ind, 2) != 0)
            return -1;
        for (size_t i = 0; i < f->nsubfields; i++) {
            char head[2] = {MARC_US, f->subfields[i].code};
            const char *v = f->subfields[i].value ? f->subfields[i].value : "";
            if (buf_append(out, head, 2) != 0 || buf_append(out, v, strlen(v)) != 0)
                return -1;
        }
    }
    char ft = MARC_FT;
    return buf_append(out, &ft, 1);
}

/* The leader as written: lengths, base address and entry map recomputed, controls blanked. */
static void marc_write_leader(const marc_record_t *r, size_t total, size_t base,
                              char leader[MARC_LEADER_LEN + 1])
{
    memcpy(leader, r->leader, MARC_LEADER_LEN);
    for (int i = 0; i < MARC_LEADER_LEN; i++)
        if (!isprint((unsigned char)leader[i]))
            leader[i] = ' ';
    char num[8];
    snprintf(num, sizeof(num), "%05zu", total);
    memcpy(leader, num, 5);
    leader[10] = '2';
    leader[11] = '2';
    snprintf(num, sizeof(num), "%05zu", base);
    memcpy(leader + 12, num, 5);
    memcpy(leader + 20, "4500", 4);
    leader[MARC_LEADER_LEN] = '\0';
}

int marc_write(const marc_record_t *r, struct buf *out, char *err, size_t errlen)
{
    struct buf data = BUF_INIT, dir = BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < r->nfields && rc == 0; i++) {
        if (!marc_field_ok(&r->fields[i], err, errlen)) {
            rc = -1;
            break;
        }
        size_t start = data.len;
        rc = marc_field_bytes(&r->fields[i], &data);
        size_t flen = data.len - start;
        if (rc != 0)
            snprintf(err, errlen, "out of memory");
        else if (flen > 9999 || start > 99999) {
            snprintf(err, errlen, "field %.3s is too long for MARC (%zu bytes)", r->fields[i].tag,
                     flen);
            rc = -1; /* beyond what ISO 2709 can address */
        } else if (buf_printf(&dir, "%.3s%04zu%05zu", r->fields[i].tag, flen, start) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    size_t base = MARC_LEADER_LEN + dir.len + 1;
    size_t total = base + data.len + 1;
    if (rc == 0 && total > 99999) {
        snprintf(err, errlen, "the record is too long for MARC (%zu bytes; 99999 at most)", total);
        rc = -1;
    }
    if (rc == 0) {
        char leader[MARC_LEADER_LEN + 1];
        marc_write_leader(r, total, base, leader);
        char ft = MARC_FT, rt = MARC_RT;
        rc = buf_append(out, leader, MARC_LEADER_LEN);
        if (rc == 0)
            rc = buf_append(out, dir.data, dir.len);
        if (rc == 0)
            rc = buf_append(out, &ft, 1);
        if (rc == 0)
            rc = buf_append(out, data.data, data.len);
        if (rc == 0)
            rc = buf_append(out, &rt, 1);
        if (rc != 0)
            snprintf(err, errlen, "out of memory");
    }
    buf_free(&data);
    buf_free(&dir);
    return rc;
}

char *marc_to_text(arena_t *a, const marc_record_t *r)
{
    struct buf b = BUF_INIT;
    int rc = buf_printf(&b, "LDR %s\n", r->leader);
    for (size_t i = 0; i < r->nfields && rc == 0; i++) {
        const marc_field_t *f = &r->fields[i];
        if (marc_is_control_tag(f->tag)) {
            rc = buf_printf(&b, "%s %s\n", f->tag, f->data ? f->data : "");
            continue;
        }
        rc = buf_printf(&b, "%s %c%c", f->tag, f->ind1 ? f->ind1 : ' ', f->ind2 ? f->ind2 : ' ');
        for (size_t k = 0; k < f->nsubfields && rc == 0; k++)
            rc = buf_printf(&b, " $%c %s", f->subfields[k].code, f->subfields[k].value);
        if (rc == 0)
            rc = buf_printf(&b, "\n");
    }
    char *text = arena_strndup(a, b.data ? (const char *)b.data : "", rc == 0 ? b.len : 0);
    buf_free(&b);
    return text;
}

const marc_field_t *marc_find(const marc_record_t *r, const char *tag)
{
    for (size_t i = 0; i < r->nfields; i++)
        if (strcmp(r->fields[i].tag, tag) == 0)
            return &r->fields[i];
    return NULL;
}

const char *marc_field_subfield(const marc_field_t *f, char code)
{
    for (size_t i = 0; f && i < f->nsubfields; i++)
        if (f->subfields[i].code == code)
            return f->subfields[i].value;
    return NULL;
}

const char *marc_subfield(const marc_record_t *r, const char *tag, char code)
{
    return marc_field_subfield(marc_find(r, tag), code);
}

/* ---- normalization helpers ---- */

static char *marc_trim_spaces(arena_t *a, const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return arena_strndup(a, s, n);
}

char *marc_trim_punctuation(arena_t *a, const char *text)
{
    if (text == NULL)
        return arena_strdup(a, "");
    char *s = marc_trim_spaces(a, text);
    size_t n = strlen(s);
    for (;;) {
        while (n > 0 && isspace((unsigned char)s[n - 1]))
            n--;
        if (n == 0)
            break;
        char c = s[n - 1];
        if (c == '/' || c == ':' || c == ';' || c == ',' || c == '=') {
            n--;
            continue;
        }
        if (c == '.') {
            /* Keep the period of an abbreviation or initial ("Dr.", "J."). */
            size_t w = n - 1;
            while (w > 0 && isalpha((unsigned char)s[w - 1]))
                w--;
            size_t word = n - 1 - w;
            bool abbreviation = word > 0 && word <= 3 && isupper((unsigned char)s[w]);
            if (!abbreviation) {
                n--;
                continue;
            }
        }
        break;
    }
    s[n] = '\0';
    return s;
}

/*
 * A string built piece by piece on the arena. It grows by doubling, so a
 * field with thousands of subfields costs linear memory, not quadratic.
 */
typedef struct marc_text {
    arena_t *a;
    char *s;
    size_t len, cap;
} marc_text_t;

static void marc_text_init(marc_text_t *t, arena_t *a)
{
    t->a = a;
    t->cap = 64;
    t->s = arena_alloc(a, t->cap);
    t->len = 0;
}

static void marc_text_add(marc_text_t *t, const char *piece)
{
    size_t n = strlen(piece);
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap * 2;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *s = arena_alloc(t->a, cap);
        memcpy(s, t->s, t->len);
        t->s = s;
        t->cap = cap;
    }
    memcpy(t->s + t->len, piece, n);
    t->len += n;
    t->s[t->len] = '\0';
}

/* Append `piece` with `sep` before it unless it is the first; empty pieces are skipped. */
static void marc_join(marc_text_t *t, const char *sep, const char *piece)
{
    if (piece == NULL || piece[0] == '\0')
        return;
    if (t->len > 0)
        marc_text_add(t, sep);
    marc_text_add(t, piece);
}

char *marc_isbn13(arena_t *a, const char *text)
{
    char d[16];
    size_t n = 0;
    if (text == NULL)
        return NULL;
    while (isspace((unsigned char)*text))
        text++;
    if (strncasecmp(text, "isbn", 4) == 0) { /* "ISBN 0-394-80016-8", "ISBN: ..." */
        text += 4;
        while (*text == ':' || isspace((unsigned char)*text))
            text++;
    }
    for (const char *p = text; *p && n < 14; p++) {
        if (isdigit((unsigned char)*p) || ((*p == 'X' || *p == 'x') && n == 9))
            d[n++] = (char)toupper((unsigned char)*p);
        else if (*p == '-' || *p == ' ')
            continue;
        else
            break; /* "0394800168 (pbk.)": the qualifier ends it */
    }
    d[n] = '\0';
    if (n == 10) {
        int sum = 0;
        for (int i = 0; i < 10; i++) {
            int v = d[i] == 'X' ? 10 : d[i] - '0';
            if (d[i] == 'X' && i != 9)
                return NULL;
            sum += v * (10 - i);
        }
        if (sum % 11 != 0)
            return NULL;
        char out[14];
        memcpy(out, "978", 3);
        memcpy(out + 3, d, 9);
        int s13 = 0;
        for (int i = 0; i < 12; i++)
            s13 += (out[i] - '0') * (i % 2 ? 3 : 1);
        out[12] = (char)('0' + (10 - s13 % 10) % 10);
        out[13] = '\0';
        return arena_strdup(a, out);
    }
    if (n == 13 && (strncmp(d, "978", 3) == 0 || strncmp(d, "979", 3) == 0)) {
        int s13 = 0;
        for (int i = 0; i < 13; i++) {
            if (!isdigit((unsigned char)d[i]))
                return NULL;
            s13 += (d[i] - '0') * (i % 2 ? 3 : 1);
        }
        return s13 % 10 == 0 ? arena_strdup(a, d) : NULL;
    }
    return NULL;
}

char *marc_issn(arena_t *a, const char *text)
{
    char d[9];
    size_t n = 0;
    if (text == NULL)
        return NULL;
    for (const char *p = text; *p && n < 8; p++) {
        if (isdigit((unsigned char)*p) || ((*p == 'X' || *p == 'x') && n == 7))
            d[n++] = (char)toupper((unsigned char)*p);
        else if (*p != '-' && *p != ' ')
            break;
    }
    if (n != 8)
        return NULL;
    int sum = 0;
    for (int i = 0; i < 7; i++) {
        if (!isdigit((unsigned char)d[i]))
            return NULL;
        sum += (d[i] - '0') * (8 - i);
    }
    int check = (11 - sum % 11) % 11;
    char want = check == 10 ? 'X' : (char)('0' + check);
    if (d[7] != want)
        return NULL;
    return arena_printf(a, "%.4s-%.4s", d, d + 4);
}

/* ---- summary ---- */

/* Drop ISBD punctuation a subfield starts with (": subtitle", "; part"). */
static const char *marc_skip_leading_punctuation(const char *s)
{
    while (s && (*s == ':' || *s == ';' || *s == '/' || *s == '=' || *s == ',' ||
                 isspace((unsigned char)*s)))
        s++;
    return s;
}

static char *marc_title(arena_t *a, const marc_record_t *r)
{
    const marc_field_t *f = marc_find(r, "245");
    if (f == NULL)
        return arena_strdup(a, "");
    marc_text_t t;
    marc_text_init(&t, a);
    marc_text_add(&t, marc_trim_punctuation(a, marc_field_subfield(f, 'a')));
    const char *b = marc_skip_leading_punctuation(marc_field_subfield(f, 'b'));
    if (b && *b) {
        marc_text_add(&t, " : ");
        marc_text_add(&t, marc_trim_punctuation(a, b));
    }
    for (size_t i = 0; i < f->nsubfields; i++) {
        char c = f->subfields[i].code;
        if (c == 'n' || c == 'p') {
            marc_text_add(&t, ". ");
            marc_text_add(&t, marc_trim_punctuation(a, f->subfields[i].value));
        }
    }
    return marc_trim_punctuation(a, t.s);
}

static char *marc_author(arena_t *a, const marc_record_t *r)
{
    static const char *const tags[] = {"100", "110", "111", "700", "710"};
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        const char *v = marc_subfield(r, tags[i], 'a');
        if (v && *v)
            return marc_trim_punctuation(a, v);
    }
    return arena_strdup(a, "");
}

static void marc_subjects(arena_t *a, const marc_record_t *r, marc_summary_t *s)
{
    s->subjects = arena_new(a, char *, r->nfields + 1);
    for (size_t i = 0; i < r->nfields; i++) {
        const marc_field_t *f = &r->fields[i];
        int tag = atoi(f->tag);
        if (!(tag == 600 || tag == 610 || tag == 611 || tag == 630 || tag == 648 || tag == 650 ||
              tag == 651))
            continue;
        marc_text_t t;
        marc_text_init(&t, a);
        for (size_t k = 0; k < f->nsubfields; k++) {
            char c = f->subfields[k].code;
            if (c == 'a' || c == 'b' || c == 'c' || c == 'd' || c == 't')
                marc_join(&t, " ", marc_trim_spaces(a, f->subfields[k].value));
            else if (c == 'v' || c == 'x' || c == 'y' || c == 'z')
                marc_join(&t, " -- ", marc_trim_punctuation(a, f->subfields[k].value));
        }
        char *subject = marc_trim_punctuation(a, t.s);
        if (subject[0])
            s->subjects[s->nsubjects++] = subject;
    }
}

static void marc_identifiers(arena_t *a, const marc_record_t *r, marc_summary_t *s)
{
    s->isbns = arena_new(a, char *, r->nfields + 1);
    s->issns = arena_new(a, char *, r->nfields + 1);
    for (size_t i = 0; i < r->nfields; i++) {
        const marc_field_t *f = &r->fields[i];
        bool isbn = strcmp(f->tag, "020") == 0, issn = strcmp(f->tag, "022") == 0;
        if (!isbn && !issn)
            continue;
        for (size_t k = 0; k < f->nsubfields; k++) {
            if (f->subfields[k].code != 'a')
                continue;
            char *v =
                isbn ? marc_isbn13(a, f->subfields[k].value) : marc_issn(a, f->subfields[k].value);
            if (v == NULL)
                continue;
            char **list = isbn ? s->isbns : s->issns;
            size_t *n = isbn ? &s->nisbns : &s->nissns;
            bool seen = false;
            for (size_t j = 0; j < *n; j++)
                seen = seen || strcmp(list[j], v) == 0;
            if (!seen)
                list[(*n)++] = v;
        }
    }
}

static const marc_field_t *marc_publication(const marc_record_t *r)
{
    for (size_t i = 0; i < r->nfields; i++)
        if (strcmp(r->fields[i].tag, "264") == 0 && r->fields[i].ind2 == '1')
            return &r->fields[i];
    const marc_field_t *f = marc_find(r, "260");
    return f ? f : marc_find(r, "264");
}

/* The first four digits in a row in v (a 264 $c like "(c)2015" or "c1998."), or -1. */
static int marc_first_year(const char *v)
{
    for (const char *p = v; p && *p; p++)
        if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
            isdigit((unsigned char)p[2]) && isdigit((unsigned char)p[3]))
            return (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    return -1;
}

/* 008 positions `at`..`at`+3 as a year, or -1 (blanks, "uuuu", "19uu", a short 008). */
static int marc_008_year(const char *d008, size_t at)
{
    if (d008 == NULL || strlen(d008) < at + 4)
        return -1;
    const char *y = d008 + at;
    for (int i = 0; i < 4; i++)
        if (!isdigit((unsigned char)y[i]))
            return -1;
    return marc_first_year(y);
}

/*
 * The latest copyright year: date 2 of an 008 whose type of date (06) is
 * 't' (publication and copyright date), and every 264 with second indicator
 * 4 (copyright notice, "(c)2015"); the latest of them. Without one, the
 * publication year: 008 date 1, then the publication field's $c. Weeding's
 * age ("years since the latest copyright", CREW) counts from it.
 */
static char *marc_year(arena_t *a, const marc_record_t *r)
{
    const marc_field_t *f008 = marc_find(r, "008");
    const char *d008 = f008 && f008->data ? f008->data : "";
    int latest = strlen(d008) > 6 && d008[6] == 't' ? marc_008_year(d008, 11) : -1;
    for (size_t i = 0; i < r->nfields; i++) {
        const marc_field_t *f = &r->fields[i];
        if (strcmp(f->tag, "264") != 0 || f->ind2 != '4')
            continue;
        int y = marc_first_year(marc_field_subfield(f, 'c'));
        if (y > latest)
            latest = y;
    }
    if (latest < 0)
        latest = marc_008_year(d008, 7);
    if (latest < 0)
        latest = marc_first_year(marc_field_subfield(marc_publication(r), 'c'));
    return latest < 0 ? arena_strdup(a, "") : arena_printf(a, "%04d", latest);
}

/* Leader 06 of a record whose 008/22 is its target audience: books (not
 * continuing resources), music and sound, visual materials, computer files. */
static bool marc_has_audience(const marc_record_t *r)
{
    char type = r->leader[6], level = r->leader[7];
    switch (type) {
    case 'a':
    case 't':
        return level != 's' && level != 'b' && level != 'i';
    case 'c':
    case 'd':
    case 'i':
    case 'j':
    case 'g':
    case 'k':
    case 'o':
    case 'r':
    case 'm':
        return true;
    default:
        return false;
    }
}

/* 008/22: a-c and j (preschool to pre-adolescent, juvenile) are juvenile, d
 * (adolescent) young adult, e-g (adult, specialized, general) adult. */
static const char *marc_audience(const marc_record_t *r)
{
    const marc_field_t *f008 = marc_find(r, "008");
    const char *d = f008 && f008->data ? f008->data : "";
    if (strlen(d) <= 22 || !marc_has_audience(r))
        return "";
    switch (d[22]) {
    case 'a':
    case 'b':
    case 'c':
    case 'j':
        return "juvenile";
    case 'd':
        return "young_adult";
    case 'e':
    case 'f':
    case 'g':
        return "adult";
    default:
        return "";
    }
}

/* 008/33 of a book: 1 (fiction), f (novels) and j (short stories) are fiction;
 * 0 (not fiction), d (dramas), e (essays), i (letters), p (poetry) and s
 * (speeches) are shelved by subject, nonfiction; h (humor), m (mixed), u and
 * blank say neither. */
static const char *marc_literary_form(const marc_record_t *r)
{
    char type = r->leader[6], level = r->leader[7];
    const marc_field_t *f008 = marc_find(r, "008");
    const char *d = f008 && f008->data ? f008->data : "";
    if (strlen(d) <= 33 || (type != 'a' && type != 't') || level == 's' || level == 'b' ||
        level == 'i')
        return "";
    switch (d[33]) {
    case '1':
    case 'f':
    case 'j':
        return "fiction";
    case '0':
    case 'd':
    case 'e':
    case 'i':
    case 'p':
    case 's':
        return "nonfiction";
    default:
        return "";
    }
}

static const char *marc_format(const marc_record_t *r)
{
    char type = r->leader[6], level = r->leader[7];
    const marc_field_t *f008 = marc_find(r, "008");
    const char *d008 = f008 && f008->data ? f008->data : "";
    char form = strlen(d008) > 23 ? d008[23] : ' ';
    const marc_field_t *f007 = marc_find(r, "007");
    const char *d007 = f007 && f007->data ? f007->data : "";
    switch (type) {
    case 'a':
    case 't':
        if (level == 's' || level == 'b')
            return "serial";
        if (form == 'o' || form == 's' || form == 'q')
            return "ebook";
        if (form == 'd')
            return "large_print";
        return "book";
    case 'g':
        return d007[0] == 'v' && strlen(d007) > 4 && d007[4] == 'v' ? "dvd" : "video";
    case 'i':
        return "audiobook";
    case 'j':
        return "music";
    case 'e':
    case 'f':
        return "map";
    case 'c':
    case 'd':
        return "score";
    case 'm':
        return "computer_file";
    case 'o':
    case 'p':
        return "kit";
    case 'k':
    case 'r':
        return "visual";
    default:
        return "book";
    }
}

static char *marc_language(arena_t *a, const marc_record_t *r)
{
    const marc_field_t *f008 = marc_find(r, "008");
    if (f008 && f008->data && strlen(f008->data) >= 38) {
        const char *l = f008->data + 35;
        if (islower((unsigned char)l[0]) && islower((unsigned char)l[1]) &&
            islower((unsigned char)l[2]))
            return arena_strndup(a, l, 3);
    }
    const char *v = marc_subfield(r, "041", 'a');
    if (v && strlen(v) >= 3)
        return arena_strndup(a, v, 3);
    return arena_strdup(a, "");
}

static char *marc_call_number(arena_t *a, const marc_record_t *r)
{
    /* Public libraries shelve by Dewey: local Dewey first, then LC, then holdings. */
    static const char *const tags[] = {"092", "099", "082", "090", "050", "852"};
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        const marc_field_t *f = marc_find(r, tags[i]);
        if (f == NULL)
            continue;
        marc_text_t t;
        marc_text_init(&t, a);
        if (strcmp(tags[i], "852") == 0) {
            marc_join(&t, " ", marc_field_subfield(f, 'h'));
            marc_join(&t, " ", marc_field_subfield(f, 'i'));
        } else {
            marc_join(&t, " ", marc_field_subfield(f, 'a'));
            marc_join(&t, " ", marc_field_subfield(f, 'b'));
        }
        char *cn = marc_trim_spaces(a, t.s);
        if (cn[0])
            return cn;
    }
    return arena_strdup(a, "");
}

/*
 * "(CARREL-xxxx)n" with n a positive integer: the length of the source (the
 * text inside the parentheses) and the id, or 0 when v is not one.
 */
static int64_t marc_parse_system_number(const char *v, size_t *source_len)
{
    if (v == NULL || strncmp(v, MARC_SYSTEM_PREFIX, strlen(MARC_SYSTEM_PREFIX)) != 0)
        return 0;
    const char *close = strchr(v, ')');
    if (close == NULL || !isdigit((unsigned char)close[1]))
        return 0;
    char *end;
    errno = 0;
    long long id = strtoll(close + 1, &end, 10);
    if (errno != 0 || *end != '\0' || id <= 0)
        return 0;
    *source_len = (size_t)(close - v - 1);
    return id;
}

static void marc_system_numbers(arena_t *a, const marc_record_t *r, marc_summary_t *s)
{
    s->system_numbers = arena_new(a, char *, r->nfields + 1);
    s->nsystem_numbers = 0;
    for (size_t i = 0; i < r->nfields; i++) {
        if (strcmp(r->fields[i].tag, "035") != 0)
            continue;
        const char *v = marc_field_subfield(&r->fields[i], 'a');
        size_t len = 0;
        if (marc_parse_system_number(v, &len) > 0)
            s->system_numbers[s->nsystem_numbers++] = arena_strdup(a, v);
    }
}

int64_t marc_system_id(const char *number, const char *source)
{
    size_t len = 0;
    int64_t id = marc_parse_system_number(number, &len);
    if (id > 0 && len == strlen(source) && strncmp(number + 1, source, len) == 0)
        return id;
    return 0;
}

void marc_set_system_id(arena_t *a, marc_record_t *r, const char *source, int64_t id)
{
    size_t out = 0;
    for (size_t i = 0; i < r->nfields; i++) {
        const marc_field_t *f = &r->fields[i];
        const char *v = strcmp(f->tag, "035") == 0 ? marc_field_subfield(f, 'a') : NULL;
        if (marc_system_id(v, source) > 0)
            continue;
        r->fields[out++] = *f;
    }
    r->nfields = out;
    char value[160];
    snprintf(value, sizeof(value), "(%s)%lld", source, (long long)id);
    marc_add_subfield(a, marc_add_field(a, r, "035", ' ', ' '), 'a', value);
}

void marc_summarize(arena_t *a, const marc_record_t *r, marc_summary_t *s)
{
    memset(s, 0, sizeof(*s));
    s->title = marc_title(a, r);
    s->author = marc_author(a, r);
    marc_subjects(a, r, s);
    marc_identifiers(a, r, s);
    s->publisher = marc_trim_punctuation(a, marc_field_subfield(marc_publication(r), 'b'));
    s->year = marc_year(a, r);
    s->format = arena_strdup(a, marc_format(r));
    s->language = marc_language(a, r);
    s->call_number = marc_call_number(a, r);
    s->audience = arena_strdup(a, marc_audience(r));
    s->literary_form = arena_strdup(a, marc_literary_form(r));
    const marc_field_t *f001 = marc_find(r, "001");
    const marc_field_t *f003 = marc_find(r, "003");
    s->control_number = marc_trim_spaces(a, f001 && f001->data ? f001->data : "");
    s->control_source = marc_trim_spaces(a, f003 && f003->data ? f003->data : "");
    marc_system_numbers(a, r, s);
}

marc_holding_t *marc_holdings(arena_t *a, const marc_record_t *r, const char *tag, size_t *n)
{
    *n = 0;
    marc_holding_t *h = arena_new(a, marc_holding_t, r->nfields + 1);
    for (size_t i = 0; i < r->nfields; i++) {
        const marc_field_t *f = &r->fields[i];
        if (strcmp(f->tag, tag) != 0)
            continue;
        marc_holding_t *x = &h[(*n)++];
        memcpy(x->tag, f->tag, 4);
        x->subfields = f->subfields;
        x->nsubfields = f->nsubfields;
    }
    return h;
}

/* ---- edits ---- */

/* Keep 008's date 1 (07-10; date 2, 11-14, too when 06 is 't') and language (35-37) in
 * step with an edit. */
static void marc_set_008(arena_t *a, marc_record_t *r, const char *year, const char *lang)
{
    marc_field_t *f = NULL;
    for (size_t i = 0; i < r->nfields && f == NULL; i++)
        if (strcmp(r->fields[i].tag, "008") == 0)
            f = &r->fields[i];
    if (f == NULL) {
        marc_add_control(a, r, "008", "");
        for (size_t i = 0; i < r->nfields && f == NULL; i++)
            if (strcmp(r->fields[i].tag, "008") == 0)
                f = &r->fields[i];
    }
    /* Pad a short or new 008 to its 40 positions. */
    char *d = arena_alloc(a, 41);
    size_t have = f->data ? strlen(f->data) : 0;
    memset(d, ' ', 40);
    memcpy(d, f->data ? f->data : "", have > 40 ? 40 : have);
    d[40] = '\0';
    if (lang)
        memcpy(d + 35, strlen(lang) == 3 ? lang : "   ", 3);
    if (year)
        memcpy(d + 7, strlen(year) == 4 ? year : "    ", 4);
    /* The year is the copyright date when 06 says 't': keep date 2 with it,
     * or the edited year would not read back. */
    if (year && d[6] == 't')
        memcpy(d + 11, strlen(year) == 4 ? year : "    ", 4);
    if (have > 40)
        d = arena_printf(a, "%s%s", d, f->data + 40);
    f->data = d;
}

static bool marc_same(const char *x, const char *y)
{
    return strcmp(x ? x : "", y ? y : "") == 0;
}

static bool marc_same_list(char *const *x, size_t nx, char *const *y, size_t ny)
{
    if (nx != ny)
        return false;
    for (size_t i = 0; i < nx; i++)
        if (!marc_same(x[i], y[i]))
            return false;
    return true;
}

static void marc_remove_tags(marc_record_t *r, const char *const *tags)
{
    for (; *tags; tags++)
        marc_remove_fields(r, *tags);
}

/*
 * Only what the edit changed is rewritten, so saving a record unchanged
 * leaves every field (600s, a 110 main entry, 260 vs 264) as cataloged.
 */
void marc_apply_summary(arena_t *a, marc_record_t *r, const marc_summary_t *s)
{
    marc_summary_t cur;
    marc_summarize(a, r, &cur);
    if (!marc_same(cur.title, s->title)) {
        marc_remove_fields(r, "245");
        if (s->title && s->title[0]) {
            marc_field_t *f =
                marc_add_field(a, r, "245", s->author && s->author[0] ? '1' : '0', '0');
            const char *colon = strstr(s->title, " : ");
            if (colon) {
                marc_add_subfield(a, f, 'a',
                                  arena_printf(a, "%.*s :", (int)(colon - s->title), s->title));
                marc_add_subfield(a, f, 'b', colon + 3);
            } else {
                marc_add_subfield(a, f, 'a', s->title);
            }
        }
    }
    if (!marc_same(cur.author, s->author)) {
        static const char *const main_entries[] = {"100", "110", "111", NULL};
        marc_remove_tags(r, main_entries);
        if (s->author && s->author[0])
            marc_add_subfield(a, marc_add_field(a, r, "100", '1', ' '), 'a', s->author);
    }
    if (!marc_same_list(cur.subjects, cur.nsubjects, s->subjects, s->nsubjects)) {
        static const char *const subject_tags[] = {"600", "610", "611", "630",
                                                   "648", "650", "651", NULL};
        marc_remove_tags(r, subject_tags);
        for (size_t i = 0; i < s->nsubjects; i++)
            marc_add_subfield(a, marc_add_field(a, r, "650", ' ', '0'), 'a', s->subjects[i]);
    }
    if (!marc_same_list(cur.isbns, cur.nisbns, s->isbns, s->nisbns)) {
        marc_remove_fields(r, "020");
        for (size_t i = 0; i < s->nisbns; i++)
            marc_add_subfield(a, marc_add_field(a, r, "020", ' ', ' '), 'a', s->isbns[i]);
    }
    if (!marc_same_list(cur.issns, cur.nissns, s->issns, s->nissns)) {
        marc_remove_fields(r, "022");
        for (size_t i = 0; i < s->nissns; i++)
            marc_add_subfield(a, marc_add_field(a, r, "022", ' ', ' '), 'a', s->issns[i]);
    }
    if (!marc_same(cur.publisher, s->publisher) || !marc_same(cur.year, s->year)) {
        marc_remove_fields(r, "260");
        marc_remove_fields(r, "264");
        if ((s->publisher && s->publisher[0]) || (s->year && s->year[0])) {
            marc_field_t *f = marc_add_field(a, r, "264", ' ', '1');
            if (s->publisher && s->publisher[0])
                marc_add_subfield(a, f, 'b', s->publisher);
            if (s->year && s->year[0])
                marc_add_subfield(a, f, 'c', s->year);
        }
    }
    if (!marc_same(cur.call_number, s->call_number)) {
        /* 092 is read first, so it carries the edit; older local numbers go. */
        marc_remove_fields(r, "090");
        marc_remove_fields(r, "092");
        if (s->call_number && s->call_number[0])
            marc_add_subfield(a, marc_add_field(a, r, "092", ' ', ' '), 'a', s->call_number);
    }
    if (!marc_same(cur.year, s->year) || !marc_same(cur.language, s->language))
        marc_set_008(a, r, s->year, s->language);
}
