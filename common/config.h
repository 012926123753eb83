/*
 * config: one declarative table per program drives parsing of "key = value"
 * files, command-line overrides, validation, defaults and the dump of the
 * effective configuration. The daemon's table is in server/server_config.c,
 * the client profile's in client/profile.c.
 */
#ifndef CARREL_CONFIG_H
#define CARREL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum { CONF_STRING, CONF_INT, CONF_BOOL } conf_type_t;

typedef struct conf_entry {
    const char *name;
    conf_type_t type;
    size_t offset;   /* into the target struct: char * for STRING, long for INT, int for BOOL */
    const char *def; /* default as text; NULL means unset (STRING only) */
    long min, max;   /* bounds for INT */
    const char *help;
    unsigned flags; /* CONF_RELOADABLE, or 0: a new value takes effect at the next start */
} conf_entry_t;

/* The entry's new value is applied by a reload (SIGHUP, carrel admin reload). */
#define CONF_RELOADABLE 1u

#define CONF_END                                                                                   \
    {                                                                                              \
        NULL, CONF_STRING, 0, NULL, 0, 0, NULL, 0                                                  \
    }

/* Reset every entry of `target` to its default. Strings are owned by target. */
__attribute__((warn_unused_result)) int conf_defaults(const conf_entry_t *table, void *target);
/*
 * Set one entry from text. On error returns -1 and writes a sentence naming
 * the key and what was wrong into err.
 */
__attribute__((warn_unused_result)) int conf_set(const conf_entry_t *table, void *target,
                                                 const char *name, const char *value, char *err,
                                                 size_t errlen);
/* Apply "key=value" (as given to --set). */
__attribute__((warn_unused_result)) int conf_set_pair(const conf_entry_t *table, void *target,
                                                      const char *pair, char *err, size_t errlen);
/*
 * Parse a whole file's text: "key = value" lines, '#' comments, blank lines;
 * values may be double-quoted. `origin` names the source in error messages.
 */
__attribute__((warn_unused_result)) int conf_parse(const conf_entry_t *table, void *target,
                                                   const char *text, const char *origin, char *err,
                                                   size_t errlen);
__attribute__((warn_unused_result)) int conf_load_file(const conf_entry_t *table, void *target,
                                                       const char *path, char *err, size_t errlen);
/* Write the effective configuration in the file syntax; secrets are not special-cased. */
void conf_dump(const conf_entry_t *table, const void *target, FILE *out);
/* Print one line per entry: name, default and help, for --help; "a reload applies it"
 * on the CONF_RELOADABLE ones. */
void conf_print_help(const conf_entry_t *table, FILE *out);
void conf_free(const conf_entry_t *table, void *target);

/* ---- Comparing two configurations, for a reload ---- */

/* True when entry e has the same value in a and b (two NULL strings are equal). */
bool conf_entry_equal(const conf_entry_t *e, const void *a, const void *b);
/*
 * The entries whose values differ between a and b, in table order: up to
 * `max` of them stored in out (may be NULL when max is 0). Returns how many
 * differ in all, which may be more than max.
 */
int conf_diff(const conf_entry_t *table, const void *a, const void *b, const conf_entry_t **out,
              int max);
/*
 * Move entry e's value from src to dst: dst's old string is freed and src's
 * is handed over (src's slot becomes NULL), so a pointer to the string stays
 * valid; numbers are copied.
 */
void conf_entry_move(const conf_entry_t *e, void *dst, void *src);
/* Deep-copy every entry of src into dst (dst's old strings are freed). 0, or -1 on out of
 * memory (dst then holds a mix; conf_free it). */
__attribute__((warn_unused_result)) int conf_copy(const conf_entry_t *table, void *dst,
                                                  const void *src);
/* Entry e's value in target as text ("unset" for a NULL string), for logs and replies. */
void conf_entry_format(const conf_entry_t *e, const void *target, char *buf, size_t len);

#endif
