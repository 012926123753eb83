#include "manpage.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HELP_COLUMN 25

/* Whether the last thing written was a heading: a paragraph macro right after one is
 * redundant (mandoc -Tlint warns), so the first paragraph of a section has none. */
static int man_after_heading;

static void man_start_paragraph(FILE *out)
{
    if (!man_after_heading)
        fputs(".PP\n", out);
    man_after_heading = 0;
}

void cli_options_print(const cli_option_t *opts, FILE *out)
{
    for (const cli_option_t *o = opts; o->long_name; o++) {
        char left[64];
        int n;
        if (o->short_name)
            n = snprintf(left, sizeof(left), "  -%c, --%s%s%s", o->short_name, o->long_name,
                         o->arg ? " " : "", o->arg ? o->arg : "");
        else
            n = snprintf(left, sizeof(left), "      --%s%s%s", o->long_name, o->arg ? " " : "",
                         o->arg ? o->arg : "");
        /* A name too long for the column still gets one space before its help. */
        fprintf(out, "%s%*s", left, n < HELP_COLUMN ? HELP_COLUMN - n : 1, "");
        for (const char *p = o->help; *p; p++) {
            fputc(*p, out);
            if (*p == '\n')
                fprintf(out, "%*s", HELP_COLUMN, "");
        }
        fputc('\n', out);
    }
}

void cli_synopsis_print(const char *program, const char *const *synopsis, FILE *out)
{
    /* "usage: " and the blanks under it have the same width. */
    int indent = (int)(strlen("usage: ") + strlen(program) + 1);
    for (size_t i = 0; synopsis[i]; i++) {
        fprintf(out, "%s%s ", i == 0 ? "usage: " : "       ", program);
        for (const char *p = synopsis[i]; *p; p++) {
            fputc(*p, out);
            if (*p == '\n')
                fprintf(out, "%*s", indent, "");
        }
        fputc('\n', out);
    }
}

/* Writes text without its leading blanks, starting a new roff input line. */
static void man_line(FILE *out, const char *text, size_t len)
{
    while (len > 0 && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    if (len == 0)
        return;
    /* A line starting with '.' or '\'' would be a request: \& makes it text. */
    if (*text == '.' || *text == '\'')
        fputs("\\&", out);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\\')
            fputs("\\e", out);
        else
            fputc(text[i], out);
    }
    fputc('\n', out);
}

void man_escape(FILE *out, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        man_line(out, p, len);
        p += len;
        if (*p == '\n')
            p++;
    }
}

void man_escape_inline(FILE *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\\')
            fputs("\\e", out);
        else if (*p == '-')
            fputs("\\-", out);
        else if (*p == '\n')
            fputc(' ', out);
        else
            fputc(*p, out);
    }
}

void man_begin(FILE *out, const man_page_t *page)
{
    time_t now = time(NULL);
    const char *epoch = getenv("SOURCE_DATE_EPOCH");
    if (epoch && *epoch) {
        char *end;
        long long v = strtoll(epoch, &end, 10);
        if (*end == '\0' && v >= 0)
            now = (time_t)v;
    }
    struct tm tm;
    char date[32] = "1970-01-01";
    if (gmtime_r(&now, &tm))
        strftime(date, sizeof(date), "%Y-%m-%d", &tm);
    fputs(".TH ", out);
    for (const char *p = page->name; *p; p++)
        fputc(toupper((unsigned char)*p), out);
    fprintf(out, " %s %s \"Carrel %s\" \"Carrel Manual\"\n", page->section, date, page->version);
    man_section(out, "NAME");
    fprintf(out, "%s \\- ", page->name);
    man_escape_inline(out, page->summary);
    fputc('\n', out);
}

void man_section(FILE *out, const char *title)
{
    fprintf(out, ".SH %s\n", title);
    man_after_heading = 1;
}

void man_subsection(FILE *out, const char *title)
{
    fputs(".SS ", out);
    man_escape_inline(out, title);
    fputc('\n', out);
    man_after_heading = 1;
}

void man_paragraph(FILE *out, const char *text)
{
    man_start_paragraph(out);
    const char *p = text;
    while (*p) {
        const char *para = strstr(p, "\n\n");
        size_t len = para ? (size_t)(para - p) : strlen(p);
        char *chunk = strndup(p, len);
        if (chunk == NULL)
            return;
        man_escape(out, chunk);
        free(chunk);
        p += len;
        if (*p) {
            while (*p == '\n')
                p++;
            if (*p)
                fputs(".PP\n", out);
        }
    }
}

void man_synopsis(FILE *out, const char *program, const char *args)
{
    man_start_paragraph(out);
    fprintf(out, ".B %s\n", program);
    /* One filled paragraph; .PP between two synopsis lines keeps them apart. */
    man_escape(out, args);
}

void man_item(FILE *out, const char *tag, const char *text)
{
    man_after_heading = 0;
    fputs(".TP\n\\fB", out);
    man_escape_inline(out, tag);
    fputs("\\fR\n", out);
    man_escape(out, text);
}

void man_options(FILE *out, const cli_option_t *opts)
{
    man_after_heading = 0;
    for (const cli_option_t *o = opts; o->long_name; o++) {
        fputs(".TP\n", out);
        if (o->short_name)
            fprintf(out, "\\fB\\-%c\\fR, ", o->short_name);
        fputs("\\fB\\-\\-", out);
        man_escape_inline(out, o->long_name);
        fputs("\\fR", out);
        if (o->arg) {
            fputs(" \\fI", out);
            man_escape_inline(out, o->arg);
            fputs("\\fR", out);
        }
        fputc('\n', out);
        man_escape(out, o->help);
    }
}

static const char *man_type_name(conf_type_t type)
{
    switch (type) {
    case CONF_STRING:
        return "text";
    case CONF_INT:
        return "integer";
    case CONF_BOOL:
        return "boolean";
    }
    return "value";
}

void man_settings(FILE *out, const conf_entry_t *table, int reload)
{
    man_after_heading = 0;
    for (const conf_entry_t *e = table; e->name; e++) {
        fputs(".TP\n\\fB", out);
        man_escape_inline(out, e->name);
        fprintf(out, "\\fR = \\fI%s\\fR", man_type_name(e->type));
        if (e->type == CONF_INT)
            fprintf(out, " (%ld to %ld)", e->min, e->max);
        fputc('\n', out);
        man_escape(out, e->help);
        fputs(".br\nDefault: ", out);
        if (e->def && *e->def) {
            fputs("\\fB", out);
            man_escape_inline(out, e->def);
            fputs("\\fR.\n", out);
        } else {
            fputs("unset.\n", out);
        }
        if (reload)
            fputs((e->flags & CONF_RELOADABLE) ? "A reload applies a new value.\n"
                                               : "A new value takes effect at the next start.\n",
                  out);
    }
}

/* The names of the entries whose reload flag is `want`, as one filled line. */
static void man_reload_names(FILE *out, const conf_entry_t *table, unsigned want)
{
    int first = 1;
    for (const conf_entry_t *e = table; e->name; e++) {
        if ((e->flags & CONF_RELOADABLE) != want)
            continue;
        fputs(first ? "\\fB" : ",\n\\fB", out);
        man_escape_inline(out, e->name);
        fputs("\\fR", out);
        first = 0;
    }
    fputs(first ? "(none)\n" : ".\n", out);
}

void man_reload_table(FILE *out, const conf_entry_t *table)
{
    man_after_heading = 0;
    fputs(".TP\nApplied by a reload:\n", out);
    man_reload_names(out, table, CONF_RELOADABLE);
    fputs(".TP\nNeed a restart:\n", out);
    man_reload_names(out, table, 0);
}
