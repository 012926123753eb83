/*
 * manpage: the programs' help as data, printed two ways. A program keeps its
 * command-line options in one cli_option_t table (and its settings in its
 * conf_entry_t table, common/config.h); `--help` prints them for the
 * terminal (cli_options_print, conf_print_help) and the hidden `--man` as
 * roff for man(7) (man_*), so the man pages installed by meson (carreld.8,
 * carrel.1) are generated at build time from the same strings and cannot
 * drift from --help.
 *
 * Everything here writes to a FILE and allocates nothing.
 */
#ifndef CARREL_MANPAGE_H
#define CARREL_MANPAGE_H

#include <stdio.h>

#include "config.h"

/* One command-line option, as --help and the man page show it. */
typedef struct cli_option {
    char short_name;       /* 'c', or 0 when there is only the long name */
    const char *long_name; /* "config" */
    const char *arg;       /* "FILE", or NULL when the option takes no argument */
    const char *help;      /* '\n' separates the lines --help prints one under the other */
} cli_option_t;

/* Ends a cli_option_t table. */
#define CLI_OPTION_END                                                                             \
    {                                                                                              \
        0, NULL, NULL, NULL                                                                        \
    }

/*
 * The options for --help, one per line: "  -c, --config FILE      help",
 * the help starting in column 25 and its further lines indented to it.
 */
void cli_options_print(const cli_option_t *opts, FILE *out);

/*
 * The usage lines for --help: "usage: PROGRAM ARGS", the next ones under it
 * ("       PROGRAM ARGS"); a '\n' in ARGS continues under the arguments.
 * `synopsis` ends with NULL.
 */
void cli_synopsis_print(const char *program, const char *const *synopsis, FILE *out);

/* What a man page's head needs. */
typedef struct man_page {
    const char *name;    /* "carreld" */
    const char *section; /* "8" */
    const char *version; /* "0.1.0" */
    const char *summary; /* the NAME line after the dash: "the Carrel daemon" */
} man_page_t;

/*
 * .TH and NAME. The date is $SOURCE_DATE_EPOCH's (reproducible builds) when
 * set, else today's.
 */
void man_begin(FILE *out, const man_page_t *page);
/* .SH TITLE */
void man_section(FILE *out, const char *title);
/* .SS TITLE */
void man_subsection(FILE *out, const char *title);
/*
 * A paragraph of plain text: its lines are joined and filled by the
 * formatter; a blank line ("\n\n") starts a new paragraph. Escaped.
 */
void man_paragraph(FILE *out, const char *text);
/*
 * One synopsis line: the program's name in bold, then its arguments (a
 * '\n' in them continues the same line: --help's wrapping).
 */
void man_synopsis(FILE *out, const char *program, const char *args);
/* A tagged paragraph (.TP): the tag in bold, then the text (escaped, filled). */
void man_item(FILE *out, const char *tag, const char *text);
/* Every option of the table as a tagged paragraph. */
void man_options(FILE *out, const cli_option_t *opts);
/*
 * Every entry of a settings table as a tagged paragraph: its name, type,
 * default, range (integers) and help; with `reload` also whether a reload
 * applies it or it waits for the next start (conf_entry_t.flags).
 */
void man_settings(FILE *out, const conf_entry_t *table, int reload);
/*
 * The settings a reload applies and those that need a restart, as two
 * lists of names: the reload table of the daemon's man page.
 */
void man_reload_table(FILE *out, const conf_entry_t *table);
/*
 * Text within a line being written (a tag): backslashes and dashes escaped,
 * a '\n' as a blank.
 */
void man_escape_inline(FILE *out, const char *text);
/* Text escaped for roff: backslashes, and a leading '.' or '\'' made literal. */
void man_escape(FILE *out, const char *text);

#endif
