#include "sip2.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

/*
 * The fixed-length part of each message, after its two-digit code, as the
 * 3M Standard Interchange Protocol 2.00 (1998) defines it. Lengths are bytes;
 * a date is the 18-byte "YYYYMMDDZZZZHHMMSS".
 *
 *   code  message                      fixed fields                                  length
 *   01    Block Patron                 card retained 1, date 18                          19
 *   09    Checkin                      no block 1, date 18, return date 18               37
 *   10    Checkin Response             ok 1, resensitize 1, magnetic media 1,            22
 *                                      alert 1, date 18
 *   11    Checkout                     SC renewal policy 1, no block 1, date 18,         38
 *                                      nb due date 18
 *   12    Checkout Response            ok 1, renewal ok 1, magnetic media 1,             22
 *                                      desensitize 1, date 18
 *   15    Hold                         hold mode 1, date 18                              19
 *   16    Hold Response                ok 1, available 1, date 18                        20
 *   17    Item Information             date 18                                           18
 *   18    Item Information Response    circulation status 2, security marker 2,          24
 *                                      fee type 2, date 18
 *   19    Item Status Update           date 18                                           18
 *   20    Item Status Update Response  item properties ok 1, date 18                     19
 *   23    Patron Status Request        language 3, date 18                               21
 *   24    Patron Status Response       patron status 14, language 3, date 18             35
 *   25    Patron Enable                date 18                                           18
 *   26    Patron Enable Response       patron status 14, language 3, date 18             35
 *   29    Renew                        third party allowed 1, no block 1, date 18,       38
 *                                      nb due date 18
 *   30    Renew Response               ok 1, renewal ok 1, magnetic media 1,             22
 *                                      desensitize 1, date 18
 *   35    End Patron Session           date 18                                           18
 *   36    End Session Response         end session 1, date 18                            19
 *   37    Fee Paid                     date 18, fee type 2, payment type 2,              25
 *                                      currency type 3
 *   38    Fee Paid Response            payment accepted 1, date 18                       19
 *   63    Patron Information           language 3, date 18, summary 10                   31
 *   64    Patron Information Response  patron status 14, language 3, date 18,            59
 *                                      hold / overdue / charged / fine / recall /
 *                                      unavailable hold item counts 4 each
 *   65    Renew All                    date 18                                           18
 *   66    Renew All Response           ok 1, renewed count 4, unrenewed count 4,         27
 *                                      date 18
 *   93    Login                        UID algorithm 1, PWD algorithm 1                   2
 *   94    Login Response               ok 1                                               1
 *   96    Request SC Resend            (none)                                             0
 *   97    Request ACS Resend           (none)                                             0
 *   98    ACS Status                   on-line status 1, checkin ok 1, checkout ok 1,    34
 *                                      ACS renewal policy 1, status update ok 1,
 *                                      off-line ok 1, timeout period 3,
 *                                      retries allowed 3, date 18, protocol version 4
 *   99    SC Status                    status code 1, max print width 3,                  8
 *                                      protocol version 4
 *
 * The responses are known too, so a test or bench client can parse answers
 * with the same code.
 */
static const struct {
    char code[3];
    unsigned char fixed;
} sip2_layouts[] = {
    {"01", 19}, {"09", 37}, {"10", 22}, {"11", 38}, {"12", 22}, {"15", 19}, {"16", 20}, {"17", 18},
    {"18", 24}, {"19", 18}, {"20", 19}, {"23", 21}, {"24", 35}, {"25", 18}, {"26", 35}, {"29", 38},
    {"30", 22}, {"35", 18}, {"36", 19}, {"37", 25}, {"38", 19}, {"63", 31}, {"64", 59}, {"65", 18},
    {"66", 27}, {"93", 2},  {"94", 1},  {"96", 0},  {"97", 0},  {"98", 34}, {"99", 8},
};

/* Bytes an answer's trailer takes: "AYn" and "AZxxxx" (the CR is extra). */
#define SIP2_TRAILER 9

static bool sip2_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool sip2_is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static int sip2_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The fixed length for a code, or -1 when sip2 does not know the message. */
static int sip2_fixed_length(const char *code)
{
    for (size_t i = 0; i < sizeof(sip2_layouts) / sizeof(sip2_layouts[0]); i++)
        if (sip2_layouts[i].code[0] == code[0] && sip2_layouts[i].code[1] == code[1])
            return sip2_layouts[i].fixed;
    return -1;
}

uint16_t sip2_checksum(const char *s, size_t n)
{
    uint16_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = (uint16_t)(sum + (unsigned char)s[i]);
    return (uint16_t)-sum;
}

static bool sip2_is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/*
 * Take "AZxxxx" off the end of line[0..*len) when it is there and check it.
 * Only a tail after the last pipe can be the trailer, since every field ends
 * with one, so a field value ending in "AZ1234|" is never mistaken for it.
 */
static sip2_status_t sip2_take_checksum(const char *line, size_t *len, sip2_msg_t *m)
{
    size_t n = *len;
    if (n < 6 || line[n - 6] != 'A' || line[n - 5] != 'Z')
        return SIP2_OK;
    unsigned want = 0;
    for (size_t i = n - 4; i < n; i++) {
        int v = sip2_hex_value(line[i]);
        if (v < 0)
            return SIP2_BAD_CHECKSUM;
        want = want * 16 + (unsigned)v;
    }
    if (sip2_checksum(line, n - 4) != want)
        return SIP2_BAD_CHECKSUM;
    m->checksummed = true;
    *len = n - 6;
    return SIP2_OK;
}

/* Take "AYn" off the end of line[0..*len) when it is there. */
static void sip2_take_sequence(const char *line, size_t *len, sip2_msg_t *m)
{
    size_t n = *len;
    if (n >= 3 && line[n - 3] == 'A' && line[n - 2] == 'Y' && sip2_is_digit(line[n - 1])) {
        m->seq = line[n - 1] - '0';
        *len = n - 3;
    }
}

/* Split line[pos..end) into "XXvalue|" fields. */
static sip2_status_t sip2_parse_fields(const char *line, size_t pos, size_t end, sip2_msg_t *m)
{
    while (pos < end) {
        if (end - pos < 3 || !sip2_is_upper(line[pos]) ||
            !(sip2_is_upper(line[pos + 1]) || sip2_is_digit(line[pos + 1])))
            return SIP2_MALFORMED;
        const char *value = line + pos + 2;
        const char *pipe = memchr(value, '|', end - pos - 2);
        if (pipe == NULL)
            return SIP2_MALFORMED;
        if (m->nfields == SIP2_MAX_FIELDS)
            return SIP2_MALFORMED;
        sip2_field_t *f = &m->fields[m->nfields++];
        f->id[0] = line[pos];
        f->id[1] = line[pos + 1];
        f->id[2] = '\0';
        f->value = value;
        f->len = (size_t)(pipe - value);
        pos = (size_t)(pipe - line) + 1;
    }
    return SIP2_OK;
}

/*
 * Parse one message. The checksum is checked first, over the raw bytes, so
 * a corrupted line is reported as such (the SC resends it) rather than as
 * malformed. Values are bytes, kept whole even past SIP2_MAX_VALUE: the
 * caller copies what it needs and judges the text. Some terminals write
 * "AYn|" as a field before AZ: a last field AY of one digit counts as the
 * sequence number.
 */
sip2_status_t sip2_parse(const char *line, size_t len, sip2_msg_t *m)
{
    memset(m, 0, sizeof(*m));
    m->seq = -1;
    if (len == 0 || sip2_is_blank(line, len))
        return SIP2_EMPTY;
    size_t end = len;
    sip2_status_t st = sip2_take_checksum(line, &end, m);
    if (st == SIP2_BAD_CHECKSUM) {
        /* The AY before the bad "AZxxxx" still says which try this was, so
         * that the 96 asking for it again carries the same number. */
        end = len - 6;
        sip2_take_sequence(line, &end, m);
        return st;
    }
    if (st != SIP2_OK)
        return st;
    sip2_take_sequence(line, &end, m);
    if (end < 2 || !sip2_is_digit(line[0]) || !sip2_is_digit(line[1]))
        return SIP2_MALFORMED;
    m->code[0] = line[0];
    m->code[1] = line[1];
    m->code[2] = '\0';
    m->fixed = line + 2;
    int fixed = sip2_fixed_length(m->code);
    if (fixed < 0)
        return SIP2_OK; /* unknown: its fields cannot be told from its fixed part */
    if (end - 2 < (size_t)fixed)
        return SIP2_MALFORMED;
    m->known = true;
    m->fixed_len = (size_t)fixed;
    st = sip2_parse_fields(line, 2 + (size_t)fixed, end, m);
    if (st != SIP2_OK)
        return st;
    if (m->seq < 0 && m->nfields > 0) {
        sip2_field_t *last = &m->fields[m->nfields - 1];
        if (strcmp(last->id, "AY") == 0 && last->len == 1 && sip2_is_digit(last->value[0])) {
            m->seq = last->value[0] - '0';
            m->nfields--;
        }
    }
    /* AY and AZ are the trailer: met among the fields, something follows
     * them ("...AY1AZxxxxAOX|"), and the checksum covered none of it. */
    for (size_t i = 0; i < m->nfields; i++)
        if (strcmp(m->fields[i].id, "AY") == 0 || strcmp(m->fields[i].id, "AZ") == 0)
            return SIP2_MALFORMED;
    return SIP2_OK;
}

const char *sip2_field(const sip2_msg_t *m, const char *id, size_t *len)
{
    for (size_t i = 0; i < m->nfields; i++) {
        if (m->fields[i].id[0] == id[0] && m->fields[i].id[1] == id[1] && id[1] != '\0') {
            if (len)
                *len = m->fields[i].len;
            return m->fields[i].value;
        }
    }
    if (len)
        *len = 0;
    return NULL;
}

/* The longest prefix of s[0..n) that is at most max bytes and does not end
 * inside a UTF-8 character. */
static size_t sip2_utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}

bool sip2_field_copy(const sip2_msg_t *m, const char *id, char *out, size_t outlen)
{
    size_t len;
    const char *v = sip2_field(m, id, &len);
    if (outlen > 0)
        out[0] = '\0';
    if (v == NULL)
        return false;
    if (outlen == 0)
        return true;
    size_t n = sip2_utf8_cut(v, len, outlen - 1);
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

/* Room for the body of an answer: the trailer and CR always fit after it. */
static size_t sip2_out_room(const sip2_out_t *o)
{
    size_t limit = SIP2_MAX_MESSAGE - SIP2_TRAILER;
    return o->len >= limit ? 0 : limit - o->len;
}

void sip2_out_begin(sip2_out_t *o, const char *code, const char *hide)
{
    o->len = 0;
    o->overflow = false;
    snprintf(o->hide, sizeof(o->hide), "%s", hide ? hide : "");
    o->buf[0] = '\0';
    sip2_out_fixed(o, code);
}

void sip2_out_fixed(sip2_out_t *o, const char *s)
{
    size_t n = strlen(s);
    if (n > sip2_out_room(o)) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

void sip2_out_flag(sip2_out_t *o, bool yes)
{
    sip2_out_fixed(o, yes ? "Y" : "N");
}

/* True when id is one of the comma-separated ids in the login's hide list. */
static bool sip2_hidden(const sip2_out_t *o, const char *id)
{
    const char *p = o->hide;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 2 && p[0] == id[0] && p[1] == id[1])
            return true;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return false;
}

/*
 * Copy value into out without pipes (they would end the field), control
 * characters (a CR would end the message) or bytes that are not UTF-8,
 * stopping at SIP2_MAX_VALUE bytes without cutting a character. Returns the
 * length written; out has room for SIP2_MAX_VALUE bytes.
 */
static size_t sip2_clean_value(const char *value, char *out)
{
    const uint8_t *s = (const uint8_t *)value;
    size_t n = strlen(value), len = 0, i = 0;
    while (i < n) {
        uint32_t cp;
        size_t step = text_utf8_decode(s + i, n - i, &cp);
        if (step == 0) {
            i++; /* not UTF-8: dropped */
            continue;
        }
        bool keep = cp != '|' && cp >= 0x20 && !text_is_control(cp);
        if (keep) {
            if (len + step > SIP2_MAX_VALUE)
                break;
            memcpy(out + len, s + i, step);
            len += step;
        }
        i += step;
    }
    return len;
}

void sip2_out_field(sip2_out_t *o, const char *id, const char *value)
{
    if (value == NULL || sip2_hidden(o, id))
        return;
    char clean[SIP2_MAX_VALUE];
    size_t n = sip2_clean_value(value, clean);
    if (2 + n + 1 > sip2_out_room(o)) {
        o->overflow = true; /* the whole field goes; a later, shorter one may fit */
        return;
    }
    o->buf[o->len++] = id[0];
    o->buf[o->len++] = id[1];
    memcpy(o->buf + o->len, clean, n);
    o->len += n;
    o->buf[o->len++] = '|';
    o->buf[o->len] = '\0';
}

void sip2_out_fieldf(sip2_out_t *o, const char *id, const char *fmt, ...)
{
    char value[SIP2_MAX_VALUE * 4 + 1]; /* longer values are cut by sip2_out_field anyway */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sip2_out_field(o, id, value);
}

/* The body never passes SIP2_MAX_MESSAGE - SIP2_TRAILER, so this always fits. */
void sip2_out_end(sip2_out_t *o, int seq)
{
    if (seq < 0 || seq > 9)
        seq = 0;
    o->len += (size_t)snprintf(o->buf + o->len, sizeof(o->buf) - o->len, "AY%dAZ", seq);
    uint16_t sum = sip2_checksum(o->buf, o->len);
    o->len += (size_t)snprintf(o->buf + o->len, sizeof(o->buf) - o->len, "%04X\r", sum);
}

void sip2_date(char out[19], time_t t)
{
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL ||
        strftime(out, 19, "%Y%m%d    %H%M%S", &tm) != 18) /* years 1000-9999 only */
        memcpy(out, "19700101    000000", 19);
}

void sip2_date_utc(char out[19], time_t t, long utc_offset_s)
{
    struct tm tm;
    time_t local = t + (time_t)utc_offset_s;
    if (gmtime_r(&local, &tm) == NULL || strftime(out, 19, "%Y%m%d    %H%M%S", &tm) != 18)
        memcpy(out, "19700101    000000", 19);
}

/* The number n digits at s make, or -1 when one is not a digit. */
static int sip2_digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!sip2_is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* The fields of a YYYYMMDDZZZZHHMMSS date in tm; false when it is not one. */
static bool sip2_date_fields(const char *s, size_t n, struct tm *tm)
{
    if (n != 18)
        return false;
    int year = sip2_digits(s, 4), mon = sip2_digits(s + 4, 2), day = sip2_digits(s + 6, 2);
    int hour = sip2_digits(s + 12, 2), min = sip2_digits(s + 14, 2), sec = sip2_digits(s + 16, 2);
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
        min < 0 || min > 59 || sec < 0 || sec > 59)
        return false;
    memset(tm, 0, sizeof(*tm));
    tm->tm_year = year - 1900;
    tm->tm_mon = mon - 1;
    tm->tm_mday = day;
    tm->tm_hour = hour;
    tm->tm_min = min;
    tm->tm_sec = sec;
    tm->tm_isdst = -1;
    return true;
}

bool sip2_parse_date(const char *s, size_t n, time_t *out)
{
    struct tm tm;
    if (!sip2_date_fields(s, n, &tm))
        return false;
    int day = tm.tm_mday, mon = tm.tm_mon;
    time_t t = mktime(&tm);
    /* mktime moves 30 February to March: such a date is malformed. */
    if (t == (time_t)-1 || tm.tm_mday != day || tm.tm_mon != mon)
        return false;
    *out = t;
    return true;
}

bool sip2_parse_date_civil(const char *s, size_t n, time_t *out)
{
    struct tm tm;
    if (!sip2_date_fields(s, n, &tm))
        return false;
    int day = tm.tm_mday, mon = tm.tm_mon;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != day || tm.tm_mon != mon)
        return false;
    *out = t;
    return true;
}
