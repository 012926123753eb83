/*
 * Unit tests for client/report_html.c: the director's report as one HTML
 * document. Names are escaped, empty data draws no NaN and divides by
 * nothing, every branch gets its bar and its 7 x 24 heat cells, and every
 * value is written exactly in the element's data-value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>

#include <cmocka.h>

#include "report_html.h"

/* Render d into a NUL-terminated string (the caller frees it). */
static char *render(const report_data_t *d)
{
    struct buf b = BUF_INIT;
    assert_int_equal(report_html_render(d, &b), 0);
    assert_int_equal(buf_append(&b, "", 1), 0);
    return (char *)b.data;
}

static size_t count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* True when "nan" or "inf" stands as a word of its own anywhere (a number printed from NaN/inf). */
static bool has_bad_number(const char *text)
{
    for (const char *p = text; *p; p++) {
        if (strncasecmp(p, "nan", 3) != 0 && strncasecmp(p, "inf", 3) != 0)
            continue;
        bool before = p > text && isalpha((unsigned char)p[-1]);
        bool after = isalpha((unsigned char)p[3]) && strncasecmp(p + 3, "inity", 5) != 0;
        if (!before && !after)
            return true;
    }
    return false;
}

static report_headline_t headlines[] = {
    {.measure = "circulation",
     .title = "Circulation",
     .value = 1234,
     .has_previous = true,
     .previous = 1000},
    {.measure = "registrations",
     .title = "New patrons",
     .value = 7,
     .has_previous = true,
     .previous = 0},
    {.measure = "holds_filled", .title = "Holds filled", .value = 2.5},
};

static report_data_t sample(report_branch_value_t *branches, size_t n_branches,
                            report_month_value_t *months, size_t n_months, report_heat_t *heat,
                            size_t n_heat)
{
    report_data_t d = {
        .title = "Monthly report",
        .period = "2026-11",
        .from = "2026-11-01",
        .to = "2026-11-30",
        .previous_from = "2025-11-01",
        .previous_to = "2025-11-30",
        .headlines = headlines,
        .n_headlines = sizeof(headlines) / sizeof(headlines[0]),
        .branch_measure = "circulation",
        .branch_title = "Circulation",
        .branches = branches,
        .n_branches = n_branches,
        .month_measure = "circulation",
        .month_title = "Circulation",
        .months_from = "2025-12-01",
        .months_to = "2026-11-30",
        .months = months,
        .n_months = n_months,
        .heat_measure = "desk_transactions",
        .heat_title = "Desk transactions",
        .heat = heat,
        .n_heat = n_heat,
    };
    return d;
}

static void test_escape(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_int_equal(report_html_escape(&b, "<b>Tom & \"Jerry's\"</b>"), 0);
    assert_int_equal(buf_append(&b, "", 1), 0);
    assert_string_equal((char *)b.data, "&lt;b&gt;Tom &amp; &quot;Jerry&#39;s&quot;&lt;/b&gt;");
    buf_free(&b);
}

static void test_names_escaped(void **state)
{
    (void)state;
    report_branch_value_t branches[] = {
        {.branch = "<script>&\"x\"", .value = 3},
        {.branch = "ALB", .name = "Albany <Main> & \"Co\" Library", .value = 2}};
    report_heat_t heat[2];
    memset(heat, 0, sizeof(heat));
    heat[0].branch = "<script>&\"x\"";
    heat[1].branch = "ALB";
    heat[1].name = "Albany <Main> & \"Co\" Library";
    report_data_t d = sample(branches, 2, NULL, 0, heat, 2);
    d.title = "Carrel & <Co> \"report\"";
    char *html = render(&d);
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<Co>"));
    assert_non_null(strstr(html, "Carrel &amp; &lt;Co&gt; &quot;report&quot;"));
    assert_non_null(strstr(html, "data-branch=\"&lt;script&gt;&amp;&quot;x&quot;\""));
    assert_null(strstr(html, "<Main>"));
    /* The bar's label: the name (cut) above its code; the heat map's: name (code). */
    assert_non_null(strstr(html, ">Albany &lt;Main&gt; &amp; &quot;Co&quot; L…</text>"));
    assert_non_null(strstr(html, ">ALB</text>"));
    assert_non_null(
        strstr(html, "<h3>Albany &lt;Main&gt; &amp; &quot;Co&quot; Library (ALB) — 0 in all"));
    free(html);
}

/* Nothing from outside: no URL, no script, no font, no link. */
static void test_self_contained(void **state)
{
    (void)state;
    report_branch_value_t branches[] = {{.branch = "MAIN", .value = 3}};
    report_month_value_t months[] = {{.period = "2026-11", .value = 3}};
    report_heat_t heat[1];
    memset(heat, 0, sizeof(heat));
    heat[0].branch = "MAIN";
    report_data_t d = sample(branches, 1, months, 1, heat, 1);
    char *html = render(&d);
    assert_null(strstr(html, "http:"));
    assert_null(strstr(html, "https:"));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<link"));
    assert_null(strstr(html, "@import"));
    assert_null(strstr(html, "@font-face"));
    assert_null(strstr(html, "url("));
    assert_non_null(strstr(html, "@media print"));
    assert_non_null(strstr(html, "break-before:page"));
    assert_true(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    assert_non_null(strstr(html, "</html>\n"));
    free(html);
}

/* No data at all: still a whole document, with no NaN/inf and no chart to draw. */
static void test_empty(void **state)
{
    (void)state;
    report_data_t d = sample(NULL, 0, NULL, 0, NULL, 0);
    d.headlines = NULL;
    d.n_headlines = 0;
    char *html = render(&d);
    assert_false(has_bad_number(html));
    assert_null(strstr(html, "class=\"bar\""));
    assert_null(strstr(html, "class=\"cell\""));
    assert_int_equal(count(html, "class=\"empty\""), 4);
    assert_non_null(strstr(html, "</html>"));
    free(html);
}

/* Every value 0 (and one NaN from upstream): charts drawn without dividing by 0 or writing NaN. */
static void test_zeros(void **state)
{
    (void)state;
    report_branch_value_t branches[] = {{.branch = "MAIN", .value = 0, .has_previous = true},
                                        {.branch = "EAST", .value = 0.0 / 0.0}};
    report_month_value_t months[] = {{.period = "2026-11", .value = 0}};
    report_heat_t heat[1];
    memset(heat, 0, sizeof(heat));
    heat[0].branch = "MAIN";
    report_data_t d = sample(branches, 2, months, 1, heat, 1);
    char *html = render(&d);
    assert_false(has_bad_number(html));
    assert_int_equal(count(html, "class=\"bar\""), 3);
    assert_int_equal(count(html, "class=\"point\""), 1);
    assert_int_equal(count(html, "class=\"cell\""), 7 * 24);
    /* A change against 0 a year earlier is no percentage. */
    assert_non_null(strstr(html, "A year earlier: 0<br>Change: —"));
    free(html);
}

/* One current bar per branch (plus one a year earlier when known), values exact. */
static void test_bars(void **state)
{
    (void)state;
    report_branch_value_t branches[] = {
        {.branch = "MAIN", .value = 12345, .has_previous = true, .previous = 10000},
        {.branch = "EAST", .value = 17},
        {.branch = "WEST", .value = 0.25, .has_previous = true, .previous = 1e-3},
    };
    report_data_t d = sample(branches, 3, NULL, 0, NULL, 0);
    char *html = render(&d);
    assert_int_equal(count(html, "class=\"bar\""), 5);
    assert_int_equal(count(html, "data-series=\"current\""), 3);
    assert_non_null(strstr(html, "data-measure=\"circulation\" data-branch=\"MAIN\" "
                                 "data-series=\"current\" data-period=\"2026-11\" "
                                 "data-value=\"12345\""));
    assert_non_null(strstr(html, "data-branch=\"MAIN\" data-series=\"previous\" "
                                 "data-period=\"2026-11\" data-value=\"10000\""));
    assert_non_null(strstr(html, "data-branch=\"EAST\" data-series=\"current\" "
                                 "data-period=\"2026-11\" data-value=\"17\""));
    assert_non_null(strstr(html, "data-branch=\"WEST\" data-series=\"current\" "
                                 "data-period=\"2026-11\" data-value=\"0.25\""));
    assert_non_null(strstr(html, "data-value=\"0.001\""));
    /* Labelled for people too. */
    assert_non_null(strstr(html, ">12,345</text>"));
    /* The largest bar is the full width; no bar is wider. */
    assert_non_null(strstr(html, "width=\"380.00\" height=\"18.0\""));
    free(html);
}

static void test_heat(void **state)
{
    (void)state;
    report_heat_t heat[2];
    memset(heat, 0, sizeof(heat));
    heat[0].branch = "MAIN";
    heat[1].branch = "EAST";
    heat[0].cells[0][9] = 42;    /* Monday 09:00 */
    heat[1].cells[6][23] = 1500; /* Sunday 23:00 */
    heat[1].cells[2][14] = 0.5;
    report_data_t d = sample(NULL, 0, NULL, 0, heat, 2);
    char *html = render(&d);
    assert_int_equal(count(html, "class=\"cell\""), 2 * 7 * 24);
    assert_int_equal(count(html, "class=\"cell\" x="), 2 * 7 * 24);
    assert_int_equal(count(html, "data-branch=\"MAIN\" data-period=\""), 7 * 24);
    assert_int_equal(count(html, "data-branch=\"EAST\" data-period=\""), 7 * 24);
    assert_non_null(strstr(html, "data-measure=\"desk_transactions\" data-branch=\"MAIN\" "
                                 "data-period=\"1-09\" data-value=\"42\""));
    assert_non_null(strstr(html, "data-branch=\"EAST\" data-period=\"7-23\" data-value=\"1500\""));
    assert_non_null(strstr(html, "data-branch=\"EAST\" data-period=\"3-14\" data-value=\"0.5\""));
    assert_non_null(strstr(html, "data-branch=\"MAIN\" data-period=\"7-23\" data-value=\"0\""));
    /* The value is written in the cell, not told by its shade alone. */
    assert_non_null(strstr(html, ">42</text>"));
    assert_non_null(strstr(html, ">1.5k</text>"));
    free(html);
}

static void test_months_and_headlines(void **state)
{
    (void)state;
    report_month_value_t months[12];
    char periods[12][8];
    for (int i = 0; i < 12; i++) {
        snprintf(periods[i], sizeof(periods[i]), "%04d-%02d", i == 0 ? 2025 : 2026,
                 i == 0 ? 12 : i);
        months[i] = (report_month_value_t){
            .period = periods[i], .value = 100 + i, .has_previous = i != 3, .previous = 90 + i};
    }
    report_data_t d = sample(NULL, 0, months, 12, NULL, 0);
    char *html = render(&d);
    assert_int_equal(count(html, "class=\"point\""), 12 + 11);
    assert_non_null(strstr(html, "data-series=\"current\" data-period=\"2025-12\" "
                                 "data-value=\"100\""));
    assert_non_null(strstr(html, "data-series=\"current\" data-period=\"2026-11\" "
                                 "data-value=\"111\""));
    assert_non_null(strstr(html, "data-series=\"previous\" data-period=\"2026-11\" "
                                 "data-value=\"101\""));
    assert_null(strstr(html, "data-series=\"previous\" data-period=\"2026-03\""));
    /* Headlines: value, a year earlier, change; none against 0 or an unknown year. */
    assert_non_null(strstr(html, "data-measure=\"circulation\" data-period=\"2026-11\" "
                                 "data-value=\"1234\" data-previous=\"1000\""));
    assert_non_null(strstr(html, "+23.4 %"));
    assert_non_null(strstr(html, "data-measure=\"holds_filled\" data-period=\"2026-11\" "
                                 "data-value=\"2.5\">"));
    assert_non_null(strstr(html, "1 November 2026 – 30 November 2026"));
    assert_non_null(strstr(html, "1 December 2025 – 30 November 2026"));
    assert_false(has_bad_number(html));
    free(html);
}

/* A period not over yet: said so, and the months after today's are not drawn as 0. */
static void test_so_far(void **state)
{
    (void)state;
    report_month_value_t months[12];
    char periods[12][8];
    for (int i = 0; i < 12; i++) {
        snprintf(periods[i], sizeof(periods[i]), "2026-%02d", i + 1);
        months[i] = (report_month_value_t){
            .period = periods[i], .value = i < 6 ? 10 + i : 0, .has_previous = true, .previous = 5};
    }
    report_data_t d = sample(NULL, 0, months, 12, NULL, 0);
    d.period = "2026";
    d.from = d.months_from = "2026-01-01";
    d.to = d.months_to = "2026-12-31";
    d.today = "2026-06-15";
    char *html = render(&d);
    assert_non_null(strstr(html, "figures up to today, 15 June 2026"));
    assert_int_equal(count(html, "class=\"point\" cx="), 6);
    assert_non_null(strstr(html, "data-series=\"current\" data-period=\"2026-06\" "
                                 "data-value=\"15\""));
    assert_null(strstr(html, "data-series=\"current\" data-period=\"2026-07\""));
    /* A year earlier is drawn for every month. */
    assert_int_equal(count(html, "data-series=\"previous\""), 12);
    assert_int_equal(count(html, "still to come</td>"), 6);
    free(html);
    /* Over: no such note. */
    d.today = "2027-01-01";
    html = render(&d);
    assert_null(strstr(html, "figures up to today"));
    assert_int_equal(count(html, "class=\"point\" cx="), 12);
    free(html);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),         cmocka_unit_test(test_names_escaped),
        cmocka_unit_test(test_self_contained), cmocka_unit_test(test_empty),
        cmocka_unit_test(test_zeros),          cmocka_unit_test(test_bars),
        cmocka_unit_test(test_heat),           cmocka_unit_test(test_months_and_headlines),
        cmocka_unit_test(test_so_far),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
