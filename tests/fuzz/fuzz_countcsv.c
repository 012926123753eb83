/*
 * libFuzzer target: the CountImport file reader (common/countcsv.c) on any
 * bytes, as either kind. It always ends; every row and bad line is numbered
 * within the text's lines and in order; every row's day, time and counter
 * have the normalised shapes SQL is given; counts stay in bounds; no more
 * bad lines are kept than asked, and every data line is a row or bad.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "countcsv.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define MAX_BAD 8

static bool digit(char c)
{
    return c >= '0' && c <= '9';
}

static void check_row(const countcsv_row_t *r, countcsv_kind_t kind)
{
    char d[11], t[6];
    CHECK(strlen(r->day) == 10 && countcsv_day(r->day, d) && strcmp(d, r->day) == 0);
    CHECK(r->time[0] == '\0' ||
          (strlen(r->time) == 5 && countcsv_time(r->time, t) && strcmp(t, r->time) == 0));
    for (const char *p = r->counter; *p; p++)
        CHECK((*p >= 'a' && *p <= 'z') || digit(*p) || *p == '_' || *p == '-');
    CHECK(r->count >= 0 &&
          r->count <= (kind == COUNTCSV_GATE ? 2 * COUNTCSV_COUNT_MAX : COUNTCSV_SESSIONS_MAX));
    CHECK(kind == COUNTCSV_COMPUTERS || !r->has_minutes);
    CHECK(!r->has_minutes || (r->minutes >= 0 && r->minutes <= COUNTCSV_MINUTES_MAX));
}

static void run(const char *text, size_t size, countcsv_kind_t kind)
{
    arena_t a;
    arena_init(&a);
    countcsv_t c;
    countcsv_parse(&a, kind, text, size, MAX_BAD, &c);
    /* Lines in the text: a line number beyond them was made up. */
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += text[i] == '\n' || text[i] == '\r';
    CHECK(c.n_bad <= MAX_BAD && c.n_bad <= c.bad_total);
    CHECK(c.n_bad == (c.bad_total < MAX_BAD ? c.bad_total : MAX_BAD));
    CHECK(!c.header_bad || c.n_rows == 0);
    CHECK(c.n_rows <= c.lines);
    int last = 0;
    for (size_t i = 0; i < c.n_rows; i++) {
        CHECK(c.rows[i].line > last && (size_t)c.rows[i].line <= lines);
        last = c.rows[i].line;
        check_row(&c.rows[i], kind);
    }
    for (size_t i = 0; i < c.n_bad; i++) {
        CHECK(c.bad[i].line >= 1 && (size_t)c.bad[i].line <= lines);
        CHECK(i == 0 || c.bad[i].line > c.bad[i - 1].line);
        CHECK(strncmp(c.bad[i].reason, "field:", 6) == 0 && c.bad[i].message != NULL);
    }
    arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly `size` bytes, so a read past the end is caught. */
    char *text = malloc(size ? size : 1);
    CHECK(text != NULL);
    if (size)
        memcpy(text, data, size);
    run(text, size, COUNTCSV_GATE);
    run(text, size, COUNTCSV_COMPUTERS);
    free(text);
    return 0;
}
