#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const conf_entry_t *conf_find(const conf_entry_t *table, const char *name)
{
    for (const conf_entry_t *e = table; e->name; e++)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static int conf_assign(const conf_entry_t *e, void *target, const char *value, char *err,
                       size_t errlen)
{
    char *slot = (char *)target + e->offset;
    switch (e->type) {
    case CONF_STRING: {
        char **sp = (char **)slot;
        char *copy = NULL;
        if (value && (copy = strdup(value)) == NULL) {
            snprintf(err, errlen, "%s: out of memory", e->name);
            return -1;
        }
        free(*sp);
        *sp = copy;
        return 0;
    }
    case CONF_INT: {
        if (value == NULL || *value == '\0') {
            snprintf(err, errlen, "%s: a number is required", e->name);
            return -1;
        }
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno != 0 || *end != '\0') {
            snprintf(err, errlen, "%s: '%s' is not a whole number", e->name, value);
            return -1;
        }
        if (v < e->min || v > e->max) {
            snprintf(err, errlen, "%s: %ld is outside %ld..%ld", e->name, v, e->min, e->max);
            return -1;
        }
        *(long *)slot = v;
        return 0;
    }
    case CONF_BOOL: {
        int v;
        if (value && (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on") ||
                      !strcmp(value, "1")))
            v = 1;
        else if (value && (!strcmp(value, "false") || !strcmp(value, "no") ||
                           !strcmp(value, "off") || !strcmp(value, "0")))
            v = 0;
        else {
            snprintf(err, errlen, "%s: expected true or false, got '%s'", e->name,
                     value ? value : "");
            return -1;
        }
        *(int *)slot = v;
        return 0;
    }
    }
    snprintf(err, errlen, "%s: unknown type", e->name);
    return -1;
}

int conf_defaults(const conf_entry_t *table, void *target)
{
    char err[256];
    for (const conf_entry_t *e = table; e->name; e++)
        if (conf_assign(e, target, e->def, err, sizeof(err)) != 0)
            return -1;
    return 0;
}

int conf_set(const conf_entry_t *table, void *target, const char *name, const char *value,
             char *err, size_t errlen)
{
    const conf_entry_t *e = conf_find(table, name);
    if (e == NULL) {
        snprintf(err, errlen, "unknown setting '%s'", name);
        return -1;
    }
    return conf_assign(e, target, value, err, errlen);
}

int conf_set_pair(const conf_entry_t *table, void *target, const char *pair, char *err,
                  size_t errlen)
{
    const char *eq = strchr(pair, '=');
    if (eq == NULL || eq == pair) {
        snprintf(err, errlen, "'%s': expected key=value", pair);
        return -1;
    }
    char name[128];
    size_t n = (size_t)(eq - pair);
    if (n >= sizeof(name)) {
        snprintf(err, errlen, "'%s': key too long", pair);
        return -1;
    }
    memcpy(name, pair, n);
    name[n] = '\0';
    return conf_set(table, target, name, eq + 1, err, errlen);
}

static char *conf_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

int conf_parse(const conf_entry_t *table, void *target, const char *text, const char *origin,
               char *err, size_t errlen)
{
    char *copy = strdup(text);
    if (copy == NULL) {
        snprintf(err, errlen, "%s: out of memory", origin);
        return -1;
    }
    int rc = 0, lineno = 0;
    char *save = NULL;
    /* strtok_r would skip empty lines and so miscount them; split by hand. */
    for (char *line = copy; line && rc == 0; line = save) {
        lineno++;
        char *nl = strchr(line, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        char *hash = strchr(line, '#');
        char *s = conf_trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%d: expected 'key = value'", origin, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = conf_trim(s);
        char *value = conf_trim(eq + 1);
        if (*value == '"') {
            char *close = strchr(value + 1, '"');
            if (close == NULL) {
                snprintf(err, errlen, "%s:%d: unterminated quote", origin, lineno);
                rc = -1;
                break;
            }
            *close = '\0';
            value++;
        } else if (hash && hash > eq) {
            /* An unquoted value ends at a comment. */
            *hash = '\0';
            value = conf_trim(value);
        }
        char inner[256];
        if (conf_set(table, target, key, value, inner, sizeof(inner)) != 0) {
            snprintf(err, errlen, "%s:%d: %s", origin, lineno, inner);
            rc = -1;
        }
    }
    free(copy);
    return rc;
}

int conf_load_file(const conf_entry_t *table, void *target, const char *path, char *err,
                   size_t errlen)
{
    /* Only a regular file: a FIFO or a device could block the read for ever (a reload's
     * worker thread, and the shutdown that waits for it). O_NONBLOCK: opening a FIFO
     * without a writer does not wait. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    char *text = NULL;
    size_t cap = 0, len = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *p = realloc(text, cap);
            if (p == NULL) {
                free(text);
                fclose(f);
                snprintf(err, errlen, "%s: out of memory", path);
                return -1;
            }
            text = p;
        }
        memcpy(text + len, chunk, n);
        len += n;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(text);
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    if (text)
        text[len] = '\0';
    int rc = conf_parse(table, target, text ? text : "", path, err, errlen);
    free(text);
    return rc;
}

void conf_dump(const conf_entry_t *table, const void *target, FILE *out)
{
    for (const conf_entry_t *e = table; e->name; e++) {
        const char *slot = (const char *)target + e->offset;
        switch (e->type) {
        case CONF_STRING: {
            const char *v = *(char *const *)slot;
            if (v)
                fprintf(out, "%s = \"%s\"\n", e->name, v);
            else
                fprintf(out, "# %s is not set\n", e->name);
            break;
        }
        case CONF_INT:
            fprintf(out, "%s = %ld\n", e->name, *(const long *)slot);
            break;
        case CONF_BOOL:
            fprintf(out, "%s = %s\n", e->name, *(const int *)slot ? "true" : "false");
            break;
        }
    }
}

void conf_print_help(const conf_entry_t *table, FILE *out)
{
    for (const conf_entry_t *e = table; e->name; e++)
        fprintf(out, "  %-28s %s (default: %s%s)\n", e->name, e->help, e->def ? e->def : "unset",
                (e->flags & CONF_RELOADABLE) ? "; a reload applies it" : "");
}

void conf_free(const conf_entry_t *table, void *target)
{
    for (const conf_entry_t *e = table; e->name; e++)
        if (e->type == CONF_STRING) {
            char **sp = (char **)((char *)target + e->offset);
            free(*sp);
            *sp = NULL;
        }
}

static const void *conf_slot(const conf_entry_t *e, const void *target)
{
    return (const char *)target + e->offset;
}

bool conf_entry_equal(const conf_entry_t *e, const void *a, const void *b)
{
    switch (e->type) {
    case CONF_STRING: {
        const char *x = *(char *const *)conf_slot(e, a);
        const char *y = *(char *const *)conf_slot(e, b);
        if (x == NULL || y == NULL)
            return x == y;
        return strcmp(x, y) == 0;
    }
    case CONF_INT:
        return *(const long *)conf_slot(e, a) == *(const long *)conf_slot(e, b);
    case CONF_BOOL:
        return *(const int *)conf_slot(e, a) == *(const int *)conf_slot(e, b);
    }
    return false;
}

int conf_diff(const conf_entry_t *table, const void *a, const void *b, const conf_entry_t **out,
              int max)
{
    int n = 0;
    for (const conf_entry_t *e = table; e->name; e++) {
        if (conf_entry_equal(e, a, b))
            continue;
        if (n < max)
            out[n] = e;
        n++;
    }
    return n;
}

void conf_entry_move(const conf_entry_t *e, void *dst, void *src)
{
    char *d = (char *)dst + e->offset;
    char *s = (char *)src + e->offset;
    switch (e->type) {
    case CONF_STRING:
        if (d == s)
            return;
        free(*(char **)d);
        *(char **)d = *(char **)s;
        *(char **)s = NULL;
        return;
    case CONF_INT:
        *(long *)d = *(long *)s;
        return;
    case CONF_BOOL:
        *(int *)d = *(int *)s;
        return;
    }
}

int conf_copy(const conf_entry_t *table, void *dst, const void *src)
{
    for (const conf_entry_t *e = table; e->name; e++) {
        char *d = (char *)dst + e->offset;
        const char *s = conf_slot(e, src);
        switch (e->type) {
        case CONF_STRING: {
            const char *v = *(char *const *)s;
            char *copy = NULL;
            if (v && (copy = strdup(v)) == NULL)
                return -1;
            free(*(char **)d);
            *(char **)d = copy;
            break;
        }
        case CONF_INT:
            *(long *)d = *(const long *)s;
            break;
        case CONF_BOOL:
            *(int *)d = *(const int *)s;
            break;
        }
    }
    return 0;
}

void conf_entry_format(const conf_entry_t *e, const void *target, char *buf, size_t len)
{
    const void *slot = conf_slot(e, target);
    switch (e->type) {
    case CONF_STRING: {
        const char *v = *(char *const *)slot;
        snprintf(buf, len, "%s", v ? v : "unset");
        return;
    }
    case CONF_INT:
        snprintf(buf, len, "%ld", *(const long *)slot);
        return;
    case CONF_BOOL:
        snprintf(buf, len, "%s", *(const int *)slot ? "true" : "false");
        return;
    }
    snprintf(buf, len, "?");
}
