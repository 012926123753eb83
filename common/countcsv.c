#include "countcsv.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "csv.h"

/* The columns a file may have, found by name in its header. */
enum {
    COL_DATE,
    COL_TIME,
    COL_COUNT,
    COL_IN,
    COL_OUT,
    COL_COUNTER,
    COL_SESSIONS,
    COL_MINUTES,
    NCOL
};
static const char *const col_names[NCOL] = {"date", "time",    "count",    "in",
                                            "out",  "counter", "sessions", "minutes"};

/* A value longer than this is no date, time, number or counter. */
#define COUNTCSV_VALUE_MAX 64
/* What a message quotes of a bad value, at most. */
#define COUNTCSV_SHOWN_MAX 40

typedef struct reader {
    arena_t *a;
    countcsv_kind_t kind;
    size_t max_bad;
    countcsv_t *out;
    size_t cap_rows;
    int col[NCOL]; /* field index of each column, -1 when the header has none */
} reader_t;

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool day_exists(int y, int m, int d)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || y > 2999 || m < 1 || m > 12 || d < 1)
        return false;
    return d <= days[m - 1] + (m == 2 && is_leap(y));
}

/* Digits s[0..n) as a number; false when any is not a digit (or n is 0). */
static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool countcsv_day(const char *s, char *out)
{
    int y, m, d;
    size_t n = strlen(s);
    const char *s1 = strchr(s, '/');
    if (n == 10 && s[4] == '-' && s[7] == '-') {
        if (!digits(s, 4, &y) || !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d))
            return false;
    } else if (s1 != NULL) {
        const char *s2 = strchr(s1 + 1, '/');
        /* Lengths first: digits() would overflow on a long run of them. */
        if (s2 == NULL || s1 - s > 2 || s2 - s1 - 1 > 2 || strlen(s2 + 1) != 4 ||
            !digits(s, (size_t)(s1 - s), &m) || !digits(s1 + 1, (size_t)(s2 - s1 - 1), &d) ||
            !digits(s2 + 1, 4, &y))
            return false;
    } else {
        return false;
    }
    if (!day_exists(y, m, d))
        return false;
    /* The ranges were checked; the modulos tell the compiler so. */
    snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u,
             (unsigned)d % 100u);
    return true;
}

bool countcsv_time(const char *s, char *out)
{
    int h, m, sec = 0;
    const char *c1 = strchr(s, ':');
    if (c1 == NULL || c1 - s < 1 || c1 - s > 2 || !digits(s, (size_t)(c1 - s), &h))
        return false;
    const char *rest = c1 + 1;
    size_t n = strlen(rest);
    if (n == 2) {
        if (!digits(rest, 2, &m))
            return false;
    } else if (n == 5 && rest[2] == ':') {
        if (!digits(rest, 2, &m) || !digits(rest + 3, 2, &sec))
            return false;
    } else {
        return false;
    }
    if (h > 23 || m > 59 || sec > 59)
        return false;
    snprintf(out, 6, "%02u:%02u", (unsigned)h % 100u, (unsigned)m % 100u);
    return true;
}

bool countcsv_int(const char *s, int64_t max, int64_t *out)
{
    while (*s == ' ' || *s == '\t')
        s++;
    int64_t v = 0;
    size_t n = 0;
    for (; *s >= '0' && *s <= '9'; s++, n++) {
        v = v * 10 + (*s - '0');
        if (v > max)
            return false;
    }
    while (*s == ' ' || *s == '\t')
        s++;
    if (n == 0 || *s != '\0')
        return false;
    *out = v;
    return true;
}

/* A counter name as the gate_count table takes it: ^[a-z0-9][a-z0-9_-]{0,31}$. */
static bool counter_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' ||
              s[i] == '-'))
            return false;
    return true;
}

/* The value quoted in a message: printable ASCII only, else described. */
static const char *shown(reader_t *r, const char *v)
{
    size_t n = strlen(v);
    if (n > COUNTCSV_SHOWN_MAX)
        return "(a long value)";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
            return "(a value with unusual characters)";
    return arena_printf(r->a, "\"%s\"", v);
}

static void add_bad(reader_t *r, int line, const char *reason, const char *message)
{
    countcsv_t *o = r->out;
    o->bad_total++;
    if (o->n_bad >= r->max_bad)
        return;
    if (o->bad == NULL)
        o->bad = arena_new(r->a, countcsv_bad_t, r->max_bad);
    o->bad[o->n_bad++] = (countcsv_bad_t){.line = line, .reason = reason, .message = message};
}

/* Leading and trailing spaces and tabs removed, in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* The value of column c in a row ("" when the row is short or has no such column). */
static char *value(const reader_t *r, const csv_row_t *row, int c)
{
    int i = r->col[c];
    if (i < 0 || (size_t)i >= row->n)
        return "";
    return trim(row->fields[i]);
}

static bool row_is_blank(const csv_row_t *row)
{
    return row->n == 1 && trim(row->fields[0])[0] == '\0';
}

/* The header: every column found by name; false (one bad line) when one the kind needs is not. */
static bool read_header(reader_t *r, const csv_row_t *row, int line)
{
    for (int c = 0; c < NCOL; c++)
        r->col[c] = -1;
    for (size_t i = 0; i < row->n; i++) {
        const char *name = trim(row->fields[i]);
        for (int c = 0; c < NCOL; c++)
            if (r->col[c] < 0 && strcasecmp(name, col_names[c]) == 0)
                r->col[c] = (int)i;
    }
    const char *missing = NULL;
    if (r->col[COL_DATE] < 0)
        missing = "date";
    else if (r->kind == COUNTCSV_GATE && r->col[COL_COUNT] < 0 &&
             (r->col[COL_IN] < 0 || r->col[COL_OUT] < 0))
        missing = "count";
    else if (r->kind == COUNTCSV_COMPUTERS && r->col[COL_SESSIONS] < 0)
        missing = "sessions";
    if (missing == NULL)
        return true;
    const char *need = r->kind == COUNTCSV_GATE ? "date, count (or in and out), optionally time "
                                                  "and counter"
                                                : "date, sessions, optionally minutes";
    add_bad(r, line,
            strcmp(missing, "date") == 0    ? "field:date"
            : strcmp(missing, "count") == 0 ? "field:count"
                                            : "field:sessions",
            arena_printf(r->a, "The header line has no %s column%s; a %s file's columns are %s.",
                         missing, strcmp(missing, "count") == 0 ? " (nor in and out)" : "",
                         r->kind == COUNTCSV_GATE ? "gate counter" : "computer sessions", need));
    r->out->header_bad = true;
    return false;
}

/* A whole number of column c into *out; false after a bad line naming the field. */
static bool read_int(reader_t *r, const csv_row_t *row, int line, int c, int64_t max,
                     const char *reason, int64_t *out)
{
    const char *v = value(r, row, c);
    if (countcsv_int(v, max, out))
        return true;
    if (v[0] == '\0')
        add_bad(r, line, reason, arena_printf(r->a, "The %s is missing.", col_names[c]));
    else
        add_bad(r, line, reason,
                arena_printf(r->a, "The %s %s is not a whole number from 0 to %lld.", col_names[c],
                             shown(r, v), (long long)max));
    return false;
}

/* The counts of a gate row: count, or in + out. */
static bool read_gate_count(reader_t *r, const csv_row_t *row, int line, countcsv_row_t *out)
{
    if (r->col[COL_COUNT] >= 0)
        return read_int(r, row, line, COL_COUNT, COUNTCSV_COUNT_MAX, "field:count", &out->count);
    int64_t in, outs;
    if (!read_int(r, row, line, COL_IN, COUNTCSV_COUNT_MAX, "field:in", &in) ||
        !read_int(r, row, line, COL_OUT, COUNTCSV_COUNT_MAX, "field:out", &outs))
        return false;
    out->count = in + outs;
    return true;
}

/* One data row: a good row appended, or one bad line. */
static void read_row(reader_t *r, const csv_row_t *row, int line)
{
    countcsv_row_t x = {.line = line};
    const char *v = value(r, row, COL_DATE);
    if (!countcsv_day(v, x.day)) {
        add_bad(r, line, "field:date",
                v[0] ? arena_printf(r->a, "The date %s is not a day (YYYY-MM-DD or MM/DD/YYYY).",
                                    shown(r, v))
                     : "The date is missing.");
        return;
    }
    if (r->kind == COUNTCSV_GATE) {
        v = value(r, row, COL_TIME);
        if (v[0] && !countcsv_time(v, x.time)) {
            add_bad(r, line, "field:time",
                    arena_printf(r->a, "The time %s is not a time of day (HH:MM or HH:MM:SS).",
                                 shown(r, v)));
            return;
        }
        if (!read_gate_count(r, row, line, &x))
            return;
        v = value(r, row, COL_COUNTER);
        if (v[0] && !counter_ok(v)) {
            add_bad(r, line, "field:counter",
                    arena_printf(r->a,
                                 "The counter %s is not a counter name (lower-case letters, "
                                 "digits, - and _, at most 32).",
                                 shown(r, v)));
            return;
        }
        snprintf(x.counter, sizeof(x.counter), "%s", v);
    } else {
        if (!read_int(r, row, line, COL_SESSIONS, COUNTCSV_SESSIONS_MAX, "field:sessions",
                      &x.count))
            return;
        if (value(r, row, COL_MINUTES)[0]) {
            if (!read_int(r, row, line, COL_MINUTES, COUNTCSV_MINUTES_MAX, "field:minutes",
                          &x.minutes))
                return;
            x.has_minutes = true;
        }
    }
    countcsv_t *o = r->out;
    if (o->n_rows == r->cap_rows) {
        /* The arena does not grow in place: double, copy (amortised). */
        size_t cap = r->cap_rows ? r->cap_rows * 2 : 64;
        countcsv_row_t *rows = arena_new(r->a, countcsv_row_t, cap);
        if (o->n_rows)
            memcpy(rows, o->rows, o->n_rows * sizeof(*rows));
        o->rows = rows;
        r->cap_rows = cap;
    }
    o->rows[o->n_rows++] = x;
}

/* Line ends in text[from..to): LF, CR LF and a lone CR each end one line. */
static int count_lines(const char *text, size_t from, size_t to)
{
    int n = 0;
    for (size_t i = from; i < to; i++)
        if (text[i] == '\n' || (text[i] == '\r' && (i + 1 >= to || text[i + 1] != '\n')))
            n++;
    return n;
}

void countcsv_parse(arena_t *a, countcsv_kind_t kind, const char *text, size_t len, size_t max_bad,
                    countcsv_t *out)
{
    memset(out, 0, sizeof(*out));
    reader_t r = {.a = a, .kind = kind, .max_bad = max_bad ? max_bad : 1, .out = out};
    size_t pos = 0;
    int line = 1;
    bool header = false;
    for (;;) {
        size_t before = pos;
        csv_row_t row;
        int rc = csv_next_row(text, len, &pos, &row);
        if (rc == 0)
            break;
        if (rc < 0) {
            /* Nothing after a broken quote or a NUL can be read as rows. */
            out->lines += header;
            add_bad(&r, line, header ? "field:line" : "field:header",
                    arena_printf(a, "Line %d cannot be read: %s; nothing after it was read.", line,
                                 csv_problem(rc)));
            if (!header)
                out->header_bad = true;
            return;
        }
        int at = line;
        line += count_lines(text, before, pos);
        if (row_is_blank(&row)) {
            csv_row_free(&row);
            continue;
        }
        if (!header) {
            header = true;
            bool ok = read_header(&r, &row, at);
            csv_row_free(&row);
            if (!ok)
                return;
            continue;
        }
        out->lines++;
        read_row(&r, &row, at);
        csv_row_free(&row);
    }
    if (!header) {
        add_bad(&r, 1, "field:header", "The file is empty: it needs a header line and rows.");
        out->header_bad = true;
    }
}
