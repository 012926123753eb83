/*
 * report_html: the monthly (or yearly) report a library director reads and
 * prints, as one self-contained HTML document: headline figures against a
 * year earlier, circulation per branch, circulation per month, and an
 * hour-by-weekday heat map of desk activity per branch, drawn as inline SVG
 * with inline CSS (no script, no font and no URL from outside).
 *
 * A pure renderer: the caller gathers the figures (cmd_report.c asks the
 * server) and owns every string in report_data_t; report_html_render only
 * reads them. Every drawn value also carries machine-readable attributes
 * (data-measure, data-branch, data-period, data-series, data-value) so that
 * tests compare the picture's numbers with the server's.
 *
 * Counts only: nothing here names a patron.
 */
#ifndef CARREL_REPORT_HTML_H
#define CARREL_REPORT_HTML_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* One headline figure: the period's value and the same range a year earlier. */
typedef struct report_headline {
    const char *measure; /* "circulation" */
    const char *title;   /* "Circulation" */
    double value;
    bool has_previous;
    double previous;
} report_headline_t;

/* One branch's bar: the period's value and, when known, a year earlier. */
typedef struct report_branch_value {
    const char *branch; /* branch code (data-branch) */
    const char *name;   /* its name for people (NULL: the code alone) */
    double value;
    bool has_previous;
    double previous;
} report_branch_value_t;

/* One month of the line: "2026-11", its value and a year earlier. */
typedef struct report_month_value {
    const char *period;
    double value;
    bool has_previous;
    double previous;
} report_month_value_t;

#define REPORT_WEEKDAYS 7
#define REPORT_HOURS    24

/* One branch's week: cells[ISO weekday - 1][hour], local time. */
typedef struct report_heat {
    const char *branch; /* branch code (data-branch) */
    const char *name;   /* its name for people (NULL: the code alone) */
    double cells[REPORT_WEEKDAYS][REPORT_HOURS];
} report_heat_t;

typedef struct report_data {
    const char *title;  /* "Monthly report" (escaped; NULL: that) */
    const char *period; /* "2026-11" or "2026": data-period of the period's figures */
    const char *from;   /* the period, inclusive: YYYY-MM-DD */
    const char *to;
    const char *previous_from; /* a year earlier (NULL: not compared) */
    const char *previous_to;
    const char *generated; /* when it was made, as text (NULL: not stated) */
    /* The library's today (YYYY-MM-DD; NULL: not known): a period that ends
     * later is stated as so far, and months after today's are not drawn. */
    const char *today;
    const char *served_by; /* "primary" / "standby" (NULL: not stated) */

    report_headline_t *headlines;
    size_t n_headlines;

    const char *branch_measure; /* "circulation" */
    const char *branch_title;   /* "Circulation" */
    report_branch_value_t *branches;
    size_t n_branches;

    const char *month_measure;
    const char *month_title;
    const char *months_from; /* the months' range, inclusive */
    const char *months_to;
    report_month_value_t *months;
    size_t n_months;

    const char *heat_measure;     /* "desk_transactions" */
    const char *heat_title;       /* "Desk transactions" */
    const char *heat_description; /* one sentence: what a cell counts */
    report_heat_t *heat;
    size_t n_heat;
} report_data_t;

/*
 * Append the report to `out` as one HTML document (UTF-8). Returns 0, or -1
 * when out of memory (out then holds a partial document; the caller frees it
 * with buf_free either way). Non-finite values are drawn as 0.
 */
__attribute__((warn_unused_result)) int report_html_render(const report_data_t *d, struct buf *out);

/* Append `text` escaped for HTML text and attribute values. Returns 0 or -1. */
__attribute__((warn_unused_result)) int report_html_escape(struct buf *out, const char *text);

#endif
