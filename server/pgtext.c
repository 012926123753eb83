#include "pgtext.h"

#include <string.h>

char **pgtext_array_parse(arena_t *a, const char *s, size_t *n)
{
    *n = 0;
    if (s == NULL || s[0] != '{')
        return NULL;
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        if (*p == ',')
            cap++;
    char **items = arena_new(a, char *, cap);
    const char *p = s + 1;
    char *tmp = arena_alloc(a, strlen(s) + 1);
    while (*p && *p != '}' && *n < cap) {
        size_t len = 0;
        int quoted = 0;
        if (*p == '"') {
            quoted = 1;
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    p++;
                tmp[len++] = *p++;
            }
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',' && *p != '}')
                tmp[len++] = *p++;
        }
        tmp[len] = '\0';
        if (!quoted && strcmp(tmp, "NULL") == 0)
            items[*n] = NULL;
        else
            items[*n] = arena_strndup(a, tmp, len);
        (*n)++;
        if (*p == ',')
            p++;
    }
    return *n ? items : NULL;
}

char *pgtext_array_build(arena_t *a, char *const *items, size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++)
        len += 2 * strlen(items[i] ? items[i] : "") + 4;
    char *out = arena_alloc(a, len);
    char *q = out;
    *q++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *q++ = ',';
        *q++ = '"';
        for (const char *p = items[i] ? items[i] : ""; *p; p++) {
            if (*p == '"' || *p == '\\')
                *q++ = '\\';
            *q++ = *p;
        }
        *q++ = '"';
    }
    *q++ = '}';
    *q = '\0';
    return out;
}

char *pgtext_int(arena_t *a, int64_t v)
{
    return arena_printf(a, "%lld", (long long)v);
}
