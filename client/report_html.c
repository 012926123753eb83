/*
 * report_html: the director's report as one HTML document (see report_html.h).
 *
 * Layout: a header stating the range, then four sections (headline figures,
 * circulation per branch, circulation per month, desk activity per hour and
 * weekday), each starting a new page when printed. Charts are inline SVG in
 * a 680-unit-wide view box that scales to the page (180 mm fits both A4 and
 * Letter with their margins). Every value drawn is also written as text, so
 * that nothing is told by colour alone and the printout reads in black and
 * white.
 */
#include "report_html.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The document being written; `failed` sticks after the first allocation failure. */
typedef struct html {
    struct buf *b;
    bool failed;
} html_t;

static void put(html_t *h, const char *s)
{
    if (!h->failed && buf_append(h->b, s, strlen(s)) != 0)
        h->failed = true;
}

static void putf(html_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(html_t *h, const char *fmt, ...)
{
    if (h->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(h->b, (size_t)n + 1) != 0) {
        h->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf((char *)h->b->data + h->b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    h->b->len += (size_t)n;
}

int report_html_escape(struct buf *out, const char *text)
{
    if (text == NULL)
        return 0;
    const char *run = text;
    for (const char *p = text; *p; p++) {
        const char *ent = NULL;
        switch (*p) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#39;";
            break;
        default:
            continue;
        }
        if (buf_append(out, run, (size_t)(p - run)) != 0 || buf_append(out, ent, strlen(ent)) != 0)
            return -1;
        run = p + 1;
    }
    return buf_append(out, run, strlen(run));
}

static void esc(html_t *h, const char *text)
{
    if (!h->failed && report_html_escape(h->b, text) != 0)
        h->failed = true;
}

/* A value as drawn: non-finite values (a bug upstream) become 0 rather than NaN in the SVG. */
static double drawn(double v)
{
    return isfinite(v) ? v : 0.0;
}

/*
 * The exact value for data-value: integers without a decimal point, others
 * in the shortest form that reads back as the same double.
 */
static void value_exact(char out[40], double v)
{
    v = drawn(v);
    if (v == trunc(v) && fabs(v) < 1e15) {
        snprintf(out, 40, "%.0f", v == 0 ? 0.0 : v);
        return;
    }
    snprintf(out, 40, "%.15g", v);
    if (strtod(out, NULL) != v)
        snprintf(out, 40, "%.17g", v);
}

/* The value for people: "12,345" for counts, "3.5" for others. */
static void value_human(char out[48], double v)
{
    v = drawn(v);
    if (v != trunc(v) || fabs(v) >= 1e15) {
        snprintf(out, 48, "%.1f", v);
        return;
    }
    char digits[24];
    snprintf(digits, sizeof(digits), "%.0f", fabs(v));
    size_t n = strlen(digits), o = 0;
    if (v < 0)
        out[o++] = '-';
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

/* Short form for a heat cell: "7", "950", "1.2k", "35k". */
static void value_short(char out[16], double v)
{
    v = drawn(v);
    if (fabs(v) >= 10000)
        snprintf(out, 16, "%.0fk", v / 1000);
    else if (fabs(v) >= 1000)
        snprintf(out, 16, "%.1fk", v / 1000);
    else if (v == trunc(v))
        snprintf(out, 16, "%.0f", v);
    else
        snprintf(out, 16, "%.1f", v);
}

/* The change in percent when a year earlier is known and not 0 (else false). */
static bool change_pct(bool has_previous, double previous, double value, double *pct)
{
    previous = drawn(previous);
    if (!has_previous || previous == 0)
        return false;
    *pct = (drawn(value) - previous) / previous * 100.0;
    return isfinite(*pct);
}

static const char *const month_names[] = {"January",   "February", "March",    "April",
                                          "May",       "June",     "July",     "August",
                                          "September", "October",  "November", "December"};

/* "2026-11-05" as "5 November 2026"; anything else as it is (escaped). */
static void put_date(html_t *h, const char *iso)
{
    int y, m, d;
    char tail;
    if (iso && sscanf(iso, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 && m >= 1 && m <= 12)
        putf(h, "%d %s %d", d, month_names[m - 1], y);
    else
        esc(h, iso ? iso : "");
}

/* "2026-11" as "Nov 2026" (short: "Nov"); anything else as it is (escaped). */
static void put_month(html_t *h, const char *period, bool short_form)
{
    int y, m;
    char tail;
    if (period && sscanf(period, "%4d-%2d%c", &y, &m, &tail) == 2 && m >= 1 && m <= 12) {
        if (short_form)
            putf(h, "%.3s", month_names[m - 1]);
        else
            putf(h, "%.3s %d", month_names[m - 1], y);
    } else {
        esc(h, period ? period : "");
    }
}

/* "1 November 2026 – 30 November 2026" */
static void put_range(html_t *h, const char *from, const char *to)
{
    put_date(h, from);
    put(h, " – ");
    put_date(h, to);
}

/*
 * A measure's section up to its note's range: "<title (else the measure's name)> <what>" as
 * the heading; the caller ends the note's sentence.
 */
static void put_section_head(html_t *h, const char *id, const char *title, const char *measure,
                             const char *what, const char *from, const char *to)
{
    putf(h, "<section id=\"%s\">\n<h2>", id);
    esc(h, title ? title : measure);
    putf(h, " %s</h2>\n<p class=\"note\">", what);
    put_range(h, from, to);
}

/* A data-* attribute with an escaped value, preceded by a space. */
static void attr(html_t *h, const char *name, const char *value)
{
    putf(h, " data-%s=\"", name);
    esc(h, value ? value : "");
    put(h, "\"");
}

static void attr_value(html_t *h, const char *name, double v)
{
    char s[40];
    value_exact(s, v);
    putf(h, " data-%s=\"%s\"", name, s);
}

static const char report_css[] =
    "*{box-sizing:border-box}"
    "html{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "body{margin:0;background:#fff;color:#1a1a1a;"
    "font-family:\"Helvetica Neue\",Helvetica,Arial,\"Liberation Sans\",sans-serif;"
    "font-size:11pt;line-height:1.4}"
    "main{max-width:180mm;margin:0 auto;padding:8mm 0}"
    "header{border-bottom:2px solid #1a1a1a;margin-bottom:6mm;padding-bottom:3mm}"
    "h1{font-size:20pt;margin:0 0 1mm}"
    "h2{font-size:14pt;margin:0 0 2mm;border-bottom:1px solid #999;padding-bottom:1mm}"
    "h3{font-size:11pt;margin:4mm 0 1mm}"
    ".range{font-size:12pt;margin:0}"
    ".note{color:#444;font-size:9pt;margin:1mm 0 3mm}"
    "section{margin:0 0 10mm}"
    "figure{margin:0 0 5mm;break-inside:avoid;page-break-inside:avoid}"
    "figcaption{font-size:9pt;color:#444}"
    "svg{display:block;width:100%;max-width:180mm;height:auto}"
    "svg text{font-family:inherit;fill:#1a1a1a}"
    ".cards{display:grid;grid-template-columns:repeat(3,1fr);gap:3mm}"
    ".card{border:1px solid #999;border-radius:2mm;padding:3mm;"
    "break-inside:avoid;page-break-inside:avoid}"
    ".card .label{font-size:9pt;text-transform:uppercase;letter-spacing:.04em;color:#444}"
    ".card .value{font-size:22pt;font-weight:bold;margin:1mm 0}"
    ".card .prev{font-size:9pt;color:#333}"
    "table{border-collapse:collapse;width:100%;font-size:9pt;margin:2mm 0}"
    "th,td{border-bottom:1px solid #ccc;padding:1mm 2mm;text-align:right}"
    "th:first-child,td:first-child{text-align:left}"
    "tr{break-inside:avoid;page-break-inside:avoid}"
    ".empty{font-style:italic;color:#444}"
    "footer{font-size:8pt;color:#444;border-top:1px solid #999;padding-top:2mm}"
    "@page{margin:14mm 12mm}"
    "@media print{"
    "main{max-width:none;padding:0}"
    "section+section{break-before:page;page-break-before:always}"
    "h2,h3{break-after:avoid;page-break-after:avoid}"
    "}";

static void put_change(html_t *h, bool has_previous, double previous, double value)
{
    double pct;
    if (change_pct(has_previous, previous, value, &pct))
        putf(h, "%s%.1f %%", pct > 0 ? "+" : pct < 0 ? "−" : "±", fabs(pct));
    else
        put(h, "—");
}

static void put_head(html_t *h, const report_data_t *d)
{
    const char *title = d->title ? d->title : "Monthly report";
    put(h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    esc(h, title);
    put(h, " ");
    put_range(h, d->from, d->to);
    putf(h, "</title>\n<style>%s</style>\n</head>\n<body>\n<main", report_css);
    attr(h, "period", d->period);
    attr(h, "from", d->from);
    attr(h, "to", d->to);
    put(h, ">\n<header>\n<h1>");
    esc(h, title);
    put(h, "</h1>\n<p class=\"range\">");
    put_range(h, d->from, d->to);
    put(h, "</p>\n");
    if (d->today && d->to && strcmp(d->today, d->to) < 0) {
        put(h, "<p class=\"note\"><strong>So far:</strong> figures up to today, ");
        put_date(h, d->today);
        put(h, "; the rest of the period is still to come.</p>\n");
    }
    if (d->previous_from && d->previous_to) {
        put(h, "<p class=\"note\">Compared with the same days a year earlier: ");
        put_range(h, d->previous_from, d->previous_to);
        put(h, ".</p>\n");
    }
    put(h, "</header>\n");
}

static void put_headlines(html_t *h, const report_data_t *d)
{
    put(h, "<section id=\"headlines\">\n<h2>The period in figures</h2>\n<p class=\"note\">");
    put_range(h, d->from, d->to);
    put(h, ". Change: against the same days a year earlier.</p>\n");
    if (d->n_headlines == 0) {
        put(h, "<p class=\"empty\">No figures for this period.</p>\n</section>\n");
        return;
    }
    put(h, "<div class=\"cards\">\n");
    for (size_t i = 0; i < d->n_headlines; i++) {
        const report_headline_t *x = &d->headlines[i];
        char v[48], p[48];
        value_human(v, x->value);
        put(h, "<div class=\"card headline\"");
        attr(h, "measure", x->measure);
        attr(h, "period", d->period);
        attr_value(h, "value", x->value);
        if (x->has_previous)
            attr_value(h, "previous", x->previous);
        put(h, ">\n<div class=\"label\">");
        esc(h, x->title ? x->title : x->measure);
        putf(h, "</div>\n<div class=\"value\">%s</div>\n<div class=\"prev\">", v);
        if (x->has_previous) {
            value_human(p, x->previous);
            putf(h, "A year earlier: %s<br>Change: ", p);
            put_change(h, x->has_previous, x->previous, x->value);
        } else {
            put(h, "A year earlier: no figure");
        }
        put(h, "</div>\n</div>\n");
    }
    put(h, "</div>\n</section>\n");
}

/*
 * A branch for people: its name cut to `max` characters (UTF-8 safe) with its
 * code after it (when code is not NULL), or the code alone without a name.
 */
static void put_branch_label(html_t *h, const char *code, const char *name, size_t max)
{
    if (name == NULL || !name[0]) {
        esc(h, code);
        return;
    }
    size_t chars = 0, len = 0;
    while (name[len] && chars < max) {
        len++;
        while ((name[len] & 0xC0) == 0x80)
            len++;
        chars++;
    }
    char *cut = strndup(name, len);
    if (cut == NULL) {
        h->failed = true;
        return;
    }
    esc(h, cut);
    free(cut);
    if (name[len])
        put(h, "…");
    if (code) {
        put(h, " (");
        esc(h, code);
        put(h, ")");
    }
}

/* The largest of the values and previous values; 1 when there is none above 0. */
static double branch_max(const report_data_t *d)
{
    double max = 0;
    for (size_t i = 0; i < d->n_branches; i++) {
        const report_branch_value_t *x = &d->branches[i];
        max = fmax(max, drawn(x->value));
        if (x->has_previous)
            max = fmax(max, drawn(x->previous));
    }
    return max > 0 ? max : 1;
}

#define SVG_W       680
#define BAR_LABEL_W 160
#define BAR_X       (BAR_LABEL_W + 10)
#define BAR_MAX_W   380
#define BAR_ROW_H   40

static void put_bar(html_t *h, const report_data_t *d, const report_branch_value_t *x,
                    const char *series, double value, double y, double height, double max)
{
    double w = drawn(value) > 0 ? drawn(value) / max * BAR_MAX_W : 0;
    char v[48];
    value_human(v, value);
    bool current = strcmp(series, "current") == 0;
    putf(h, "<rect class=\"bar\" x=\"%d\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"%s\"%s",
         BAR_X, y, w, height, current ? "#1f4e79" : "#b8c7d9",
         current ? "" : " stroke=\"#1f4e79\" stroke-width=\"0.8\"");
    attr(h, "measure", d->branch_measure);
    attr(h, "branch", x->branch);
    attr(h, "series", series);
    attr(h, "period", d->period);
    attr_value(h, "value", value);
    put(h, "><title>");
    esc(h, x->branch);
    putf(h, " %s: %s</title></rect>\n", current ? "this period" : "a year earlier", v);
    putf(h,
         "<text x=\"%.2f\" y=\"%.1f\" font-size=\"%s\" dominant-baseline=\"middle\">%s%s</text>\n",
         BAR_X + w + 5, y + height / 2, current ? "11" : "9", current ? "" : "a year earlier: ", v);
}

static void put_branches(html_t *h, const report_data_t *d)
{
    put_section_head(h, "branches", d->branch_title, d->branch_measure, "by branch", d->from,
                     d->to);
    put(h, ". Dark bars: this period; light bars: the same days a year earlier.</p>\n");
    if (d->n_branches == 0) {
        put(h, "<p class=\"empty\">No branch had any in this period.</p>\n</section>\n");
        return;
    }
    double max = branch_max(d);
    int height = (int)d->n_branches * BAR_ROW_H + 30;
    putf(h,
         "<figure>\n<svg class=\"chart bars\" "
         "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\"",
         SVG_W, height, SVG_W, height);
    attr(h, "measure", d->branch_measure);
    put(h, " aria-label=\"");
    esc(h, d->branch_title ? d->branch_title : d->branch_measure);
    put(h, " by branch\">\n");
    for (size_t i = 0; i < d->n_branches; i++) {
        const report_branch_value_t *x = &d->branches[i];
        double y = 10 + (double)i * BAR_ROW_H;
        putf(h,
             "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\" "
             "dominant-baseline=\"middle\" font-weight=\"bold\">",
             BAR_LABEL_W, y + 9);
        bool named = x->name && x->name[0];
        put_branch_label(h, named ? NULL : x->branch, x->name, 22);
        put(h, "</text>\n");
        if (named) {
            putf(h,
                 "<text x=\"%d\" y=\"%.1f\" font-size=\"9\" text-anchor=\"end\" "
                 "dominant-baseline=\"middle\">",
                 BAR_LABEL_W, y + 23);
            esc(h, x->branch);
            put(h, "</text>\n");
        }
        put_bar(h, d, x, "current", x->value, y, 18, max);
        if (x->has_previous)
            put_bar(h, d, x, "previous", x->previous, y + 21, 9, max);
    }
    putf(h, "<line x1=\"%d\" y1=\"4\" x2=\"%d\" y2=\"%d\" stroke=\"#1a1a1a\"/>\n", BAR_X, BAR_X,
         height - 20);
    put(h, "</svg>\n<figcaption>Each bar is labelled with its value.</figcaption>\n</figure>\n"
           "</section>\n");
}

/* A round step for about four grid lines up to max: 1, 2 or 5 times a power of ten, at least 1. */
static double grid_step(double max)
{
    double raw = max / 4;
    if (raw <= 1)
        return 1;
    double p = pow(10, floor(log10(raw)));
    double f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

#define LINE_X0 60
#define LINE_X1 660
#define LINE_Y0 24
#define LINE_Y1 210
#define LINE_H  250

static double month_x(size_t i, size_t n)
{
    return LINE_X0 + ((double)i + 0.5) * (LINE_X1 - LINE_X0) / (double)n;
}

static double month_y(double v, double top)
{
    return LINE_Y1 - drawn(v) / top * (LINE_Y1 - LINE_Y0);
}

/* True for a month after the library's today: not drawn, shown as still to come. */
static bool month_pending(const report_data_t *d, const report_month_value_t *m)
{
    return d->today && m->period && strncmp(m->period, d->today, 7) > 0;
}

/* The polyline and points of one series (current or previous). */
static void put_month_series(html_t *h, const report_data_t *d, bool current, double top)
{
    put(h, current ? "<polyline fill=\"none\" stroke=\"#1f4e79\" stroke-width=\"2.5\" points=\""
                   : "<polyline fill=\"none\" stroke=\"#6b7f95\" stroke-width=\"1.5\" "
                     "stroke-dasharray=\"6 4\" points=\"");
    for (size_t i = 0; i < d->n_months; i++) {
        const report_month_value_t *m = &d->months[i];
        if ((!current && !m->has_previous) || (current && month_pending(d, m)))
            continue;
        putf(h, "%.2f,%.2f ", month_x(i, d->n_months),
             month_y(current ? m->value : m->previous, top));
    }
    put(h, "\"/>\n");
    for (size_t i = 0; i < d->n_months; i++) {
        const report_month_value_t *m = &d->months[i];
        if ((!current && !m->has_previous) || (current && month_pending(d, m)))
            continue;
        double v = current ? m->value : m->previous;
        double x = month_x(i, d->n_months), y = month_y(v, top);
        char s[48];
        value_human(s, v);
        if (current)
            putf(h, "<circle class=\"point\" cx=\"%.2f\" cy=\"%.2f\" r=\"4\" fill=\"#1f4e79\"", x,
                 y);
        else
            putf(h,
                 "<rect class=\"point\" x=\"%.2f\" y=\"%.2f\" width=\"6\" height=\"6\" "
                 "fill=\"#fff\" stroke=\"#6b7f95\"",
                 x - 3, y - 3);
        attr(h, "measure", d->month_measure);
        attr(h, "series", current ? "current" : "previous");
        attr(h, "period", m->period);
        attr_value(h, "value", v);
        put(h, "><title>");
        put_month(h, m->period, false);
        putf(h, "%s: %s</title>%s\n", current ? "" : " (a year earlier)", s,
             current ? "</circle>" : "</rect>");
        if (current)
            putf(h,
                 "<text x=\"%.2f\" y=\"%.2f\" font-size=\"9\" text-anchor=\"middle\">%s</text>\n",
                 x, y - 8, s);
    }
}

static void put_months_table(html_t *h, const report_data_t *d)
{
    put(h, "<table class=\"months\">\n<thead><tr><th>Month</th><th>");
    esc(h, d->month_title ? d->month_title : d->month_measure);
    put(h, "</th><th>A year earlier</th><th>Change</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < d->n_months; i++) {
        const report_month_value_t *m = &d->months[i];
        char v[48], p[48];
        value_human(v, m->value);
        put(h, "<tr><td>");
        put_month(h, m->period, false);
        putf(h, "</td><td>%s</td><td>", month_pending(d, m) ? "still to come" : v);
        if (m->has_previous) {
            value_human(p, m->previous);
            put(h, p);
        } else {
            put(h, "—");
        }
        put(h, "</td><td>");
        if (month_pending(d, m))
            put(h, "—");
        else
            put_change(h, m->has_previous, m->previous, m->value);
        put(h, "</td></tr>\n");
    }
    put(h, "</tbody>\n</table>\n");
}

static void put_months(html_t *h, const report_data_t *d)
{
    put_section_head(h, "months", d->month_title, d->month_measure, "by month", d->months_from,
                     d->months_to);
    put(h, ". Solid line and dots: these months; dashed line and squares: a year earlier.</p>\n");
    if (d->n_months == 0) {
        put(h, "<p class=\"empty\">No months to show.</p>\n</section>\n");
        return;
    }
    double max = 0;
    bool any_previous = false;
    for (size_t i = 0; i < d->n_months; i++) {
        if (!month_pending(d, &d->months[i]))
            max = fmax(max, drawn(d->months[i].value));
        if (d->months[i].has_previous) {
            max = fmax(max, drawn(d->months[i].previous));
            any_previous = true;
        }
    }
    double step = grid_step(max);
    double top = ceil(max / step) * step;
    if (top <= 0)
        top = step;
    putf(h,
         "<figure>\n<svg class=\"chart line\" "
         "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\"",
         SVG_W, LINE_H, SVG_W, LINE_H);
    attr(h, "measure", d->month_measure);
    put(h, " aria-label=\"");
    esc(h, d->month_title ? d->month_title : d->month_measure);
    put(h, " by month\">\n");
    for (double g = 0; g <= top + step / 2; g += step) {
        char s[48];
        value_human(s, g);
        double y = month_y(g, top);
        putf(h,
             "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" stroke=\"#ccc\"/>"
             "<text x=\"%d\" y=\"%.2f\" font-size=\"9\" text-anchor=\"end\" "
             "dominant-baseline=\"middle\">%s</text>\n",
             LINE_X0, y, LINE_X1, y, LINE_X0 - 6, y, s);
    }
    for (size_t i = 0; i < d->n_months; i++) {
        const char *p = d->months[i].period;
        bool first_of_year = i == 0 || (p && strlen(p) >= 7 && strcmp(p + 5, "01") == 0);
        putf(h, "<text x=\"%.2f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">",
             month_x(i, d->n_months), LINE_Y1 + 16);
        put_month(h, p, true);
        put(h, "</text>\n");
        if (first_of_year && p && strlen(p) >= 4)
            putf(h,
                 "<text x=\"%.2f\" y=\"%d\" font-size=\"9\" text-anchor=\"middle\">%.4s</text>\n",
                 month_x(i, d->n_months), LINE_Y1 + 30, p);
    }
    if (any_previous)
        put_month_series(h, d, false, top);
    put_month_series(h, d, true, top);
    put(h, "</svg>\n</figure>\n");
    put_months_table(h, d);
    put(h, "</section>\n");
}

#define HEAT_X     44
#define HEAT_CELL  26
#define HEAT_ROW   22
#define HEAT_TOP   18
#define HEAT_H     (HEAT_TOP + REPORT_WEEKDAYS * HEAT_ROW + 4)
#define HEAT_LEVEL 5

static const char *const weekday_names[REPORT_WEEKDAYS] = {"Mon", "Tue", "Wed", "Thu",
                                                           "Fri", "Sat", "Sun"};

/* Fill for a share t in [0, 1] of the busiest hour: white to dark blue, in HEAT_LEVEL steps. */
static const char *heat_fill(double t, bool *dark)
{
    static const char *const fills[HEAT_LEVEL + 1] = {"#ffffff", "#e3ecf6", "#b9cfe6",
                                                      "#7fa6cf", "#3f73ad", "#16406e"};
    int level = t <= 0 ? 0 : 1 + (int)fmin(HEAT_LEVEL - 1, floor(t * HEAT_LEVEL));
    *dark = level >= 4;
    return fills[level];
}

static double heat_max(const report_data_t *d)
{
    double max = 0;
    for (size_t b = 0; b < d->n_heat; b++)
        for (int w = 0; w < REPORT_WEEKDAYS; w++)
            for (int hr = 0; hr < REPORT_HOURS; hr++)
                max = fmax(max, drawn(d->heat[b].cells[w][hr]));
    return max > 0 ? max : 1;
}

static void put_heat_map(html_t *h, const report_data_t *d, const report_heat_t *x, double max)
{
    double total = 0;
    for (int w = 0; w < REPORT_WEEKDAYS; w++)
        for (int hr = 0; hr < REPORT_HOURS; hr++)
            total += drawn(x->cells[w][hr]);
    char t[48];
    value_human(t, total);
    put(h, "<figure class=\"heat\"");
    attr(h, "branch", x->branch);
    put(h, ">\n<h3>");
    put_branch_label(h, x->branch, x->name, 200);
    putf(h, " — %s in all</h3>\n", t);
    putf(h,
         "<svg class=\"chart heatmap\" viewBox=\"0 0 %d %d\" "
         "width=\"%d\" height=\"%d\" role=\"img\"",
         SVG_W, HEAT_H, SVG_W, HEAT_H);
    attr(h, "measure", d->heat_measure);
    attr(h, "branch", x->branch);
    put(h, " aria-label=\"");
    esc(h, d->heat_title ? d->heat_title : d->heat_measure);
    put(h, " by hour and weekday, ");
    esc(h, x->branch);
    put(h, "\">\n");
    for (int hr = 0; hr < REPORT_HOURS; hr++)
        putf(h, "<text x=\"%d\" y=\"12\" font-size=\"9\" text-anchor=\"middle\">%02d</text>\n",
             HEAT_X + hr * HEAT_CELL + HEAT_CELL / 2, hr);
    for (int w = 0; w < REPORT_WEEKDAYS; w++) {
        int y = HEAT_TOP + w * HEAT_ROW;
        putf(h,
             "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\" "
             "dominant-baseline=\"middle\">%s</text>\n",
             HEAT_X - 6, y + HEAT_ROW / 2, weekday_names[w]);
        for (int hr = 0; hr < REPORT_HOURS; hr++) {
            double v = drawn(x->cells[w][hr]);
            bool dark;
            const char *fill = heat_fill(v / max, &dark);
            char period[8], s[16];
            snprintf(period, sizeof(period), "%d-%02d", w + 1, hr);
            int cx = HEAT_X + hr * HEAT_CELL;
            putf(h,
                 "<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" "
                 "stroke=\"#d0d0d0\" stroke-width=\"0.5\"",
                 cx, y, HEAT_CELL, HEAT_ROW, fill);
            attr(h, "measure", d->heat_measure);
            attr(h, "branch", x->branch);
            attr(h, "period", period);
            attr_value(h, "value", v);
            value_short(s, v);
            putf(h, "><title>%s %02d:00: %s</title></rect>\n", weekday_names[w], hr, s);
            if (v != 0)
                putf(h,
                     "<text x=\"%d\" y=\"%d\" font-size=\"8\" text-anchor=\"middle\" "
                     "dominant-baseline=\"middle\"%s>%s</text>\n",
                     cx + HEAT_CELL / 2, y + HEAT_ROW / 2, dark ? " style=\"fill:#fff\"" : "", s);
        }
    }
    put(h, "</svg>\n</figure>\n");
}

static void put_heat(html_t *h, const report_data_t *d)
{
    put_section_head(h, "heat", d->heat_title, d->heat_measure, "by hour and weekday", d->from,
                     d->to);
    put(h, ", local time. ");
    if (d->heat_description) {
        esc(h, d->heat_description);
        put(h, " ");
    }
    put(h, "Each cell is one hour of one weekday, summed over the period, and shows its count; "
           "an empty cell is none. The darker the cell, the busier the hour "
           "(the same shades for every branch).</p>\n");
    if (d->n_heat == 0) {
        put(h, "<p class=\"empty\">No branch had any in this period.</p>\n</section>\n");
        return;
    }
    double max = heat_max(d);
    for (size_t b = 0; b < d->n_heat; b++)
        put_heat_map(h, d, &d->heat[b], max);
    put(h, "</section>\n");
}

static void put_foot(html_t *h, const report_data_t *d)
{
    put(h, "<footer>\n<p>Counts only: no patron is named or counted one by one. Dates are the "
           "library's local days; every range is inclusive.");
    if (d->generated) {
        put(h, " Made ");
        esc(h, d->generated);
        put(h, ".");
    }
    if (d->served_by) {
        put(h, " Figures from the ");
        esc(h, d->served_by);
        put(h, " database.");
    }
    put(h, "</p>\n</footer>\n</main>\n</body>\n</html>\n");
}

int report_html_render(const report_data_t *d, struct buf *out)
{
    html_t h = {.b = out, .failed = false};
    put_head(&h, d);
    put_headlines(&h, d);
    put_branches(&h, d);
    put_months(&h, d);
    put_heat(&h, d);
    put_foot(&h, d);
    return h.failed ? -1 : 0;
}
