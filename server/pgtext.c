#include "pgtext.h"

#include <stdio.h>
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

char **pgtext_array_strings(arena_t *a, const char *literal, size_t *n)
{
    char **items = pgtext_array_parse(a, literal, n);
    for (size_t i = 0; i < *n; i++)
        if (items[i] == NULL)
            items[i] = "";
    return items;
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

char *pgtext_int_array(arena_t *a, const int64_t *v, const bool *has, size_t n)
{
    /* At most 20 characters and a comma an element ("-9223372036854775808"). */
    char *out = arena_alloc(a, 3 + 21 * n);
    size_t len = 0;
    out[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[len++] = ',';
        if (has && !has[i]) {
            memcpy(out + len, "NULL", 4);
            len += 4;
        } else {
            len += (size_t)snprintf(out + len, 21, "%lld", (long long)v[i]);
        }
    }
    out[len++] = '}';
    out[len] = '\0';
    return out;
}

static int pgtext_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

uint8_t *pgtext_bytea_decode(arena_t *a, const char *text, size_t *len)
{
    *len = 0;
    if (text == NULL || text[0] != '\\' || text[1] != 'x')
        return NULL;
    size_t n = strlen(text + 2);
    if (n % 2)
        return NULL;
    uint8_t *out = arena_alloc(a, n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = pgtext_hex(text[2 + 2 * i]), lo = pgtext_hex(text[3 + 2 * i]);
        if (hi < 0 || lo < 0)
            return NULL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return out;
}

char *pgtext_int(arena_t *a, int64_t v)
{
    return arena_printf(a, "%lld", (long long)v);
}

const char *pgtext_bool(bool v)
{
    return v ? "true" : "false";
}
