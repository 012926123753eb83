#include "text.h"

#include <stdio.h>
#include <string.h>

size_t text_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t b = s[0];
    size_t len;
    uint32_t v, min;
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if (b >= 0xC2 && b <= 0xDF) { /* 0xC0, 0xC1 only start overlong forms */
        len = 2;
        v = b & 0x1Fu;
        min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        v = b & 0x0Fu;
        min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        v = b & 0x07u;
        min = 0x10000;
    } else {
        return 0; /* a continuation byte, or 0xC0, 0xC1, 0xF5-0xFF */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0; /* overlong, beyond Unicode, or a UTF-16 surrogate */
    *cp = v;
    return len;
}

bool text_is_control(uint32_t cp)
{
    if (cp == '\t' || cp == '\n')
        return false;
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

text_problem_t text_check(const uint8_t *s, size_t n, size_t *at, uint32_t *cp)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = 0;
        size_t len = text_utf8_decode(s + i, n - i, &c);
        text_problem_t p = TEXT_OK;
        if (len == 0) {
            p = TEXT_BAD_UTF8;
            c = s[i];
        } else if (c == 0) {
            p = TEXT_NUL;
        } else if (text_is_control(c)) {
            p = TEXT_CONTROL;
        }
        if (p != TEXT_OK) {
            if (at)
                *at = i;
            if (cp)
                *cp = c;
            return p;
        }
        i += len;
    }
    return TEXT_OK;
}

const char *text_problem_describe(text_problem_t p)
{
    switch (p) {
    case TEXT_OK:
        return "is acceptable text";
    case TEXT_NUL:
        return "contains a NUL byte";
    case TEXT_BAD_UTF8:
        return "is not valid UTF-8";
    case TEXT_CONTROL:
        return "contains a control character";
    }
    return "is not acceptable text";
}

void text_sanitize(char *s, bool keep_lines)
{
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n) {
        uint32_t c = 0;
        size_t len = text_utf8_decode((const uint8_t *)s + i, n - i, &c);
        if (len == 0) {
            s[i++] = '?';
            continue;
        }
        if (text_is_control(c) || (!keep_lines && (c == '\t' || c == '\n'))) {
            /* A C1 control is two bytes: mark the first, drop the second. */
            s[i] = '?';
            if (len > 1)
                memmove(s + i + 1, s + i + len, n - i - len + 1);
            n -= len - 1;
            i++;
            continue;
        }
        i += len;
    }
}

/* The visible form of one control character or stray byte. */
static void text_escape_one(char *esc, size_t size, uint32_t c, bool stray)
{
    if (stray)
        snprintf(esc, size, "\\x%02X", (unsigned)c);
    else if (c == '\n')
        snprintf(esc, size, "\\n");
    else if (c == '\t')
        snprintf(esc, size, "\\t");
    else if (c == '\r')
        snprintf(esc, size, "\\r");
    else if (c == 0x1B)
        snprintf(esc, size, "\\e");
    else if (c < 0x80)
        snprintf(esc, size, "\\x%02X", (unsigned)c);
    else
        snprintf(esc, size, "\\u{%04X}", (unsigned)c);
}

int text_escape_n(struct buf *out, const uint8_t *p, size_t n, unsigned flags)
{
    size_t i = 0, run = 0; /* printable bytes from i - run not yet copied */
    while (i < n) {
        uint32_t c = 0;
        size_t len = text_utf8_decode(p + i, n - i, &c);
        bool kept = ((flags & TEXT_ESCAPE_KEEP_LINES) && (c == '\n' || c == '\t')) ||
                    ((flags & TEXT_ESCAPE_KEEP_CR) && c == '\r');
        if (len != 0 && (kept || (!text_is_control(c) && c != '\n' && c != '\t'))) {
            i += len;
            run += len;
            continue;
        }
        if (buf_append(out, p + i - run, run) != 0)
            return -1;
        run = 0;
        char esc[16];
        text_escape_one(esc, sizeof(esc), len == 0 ? p[i] : c, len == 0);
        if (buf_append(out, esc, strlen(esc)) != 0)
            return -1;
        i += len == 0 ? 1 : len;
    }
    return buf_append(out, p + i - run, run);
}

int text_escape(struct buf *out, const char *s, unsigned flags)
{
    return text_escape_n(out, (const uint8_t *)s, strlen(s), flags);
}

size_t text_utf8_incomplete(const uint8_t *s, size_t n)
{
    /* Look back at most three bytes for a lead byte whose sequence is longer
     * than what is there, with only continuation bytes after it. */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        uint8_t b = s[n - back];
        if ((b & 0xC0) == 0x80)
            continue;
        size_t need = b >= 0xC2 && b <= 0xDF   ? 2
                      : b >= 0xE0 && b <= 0xEF ? 3
                      : b >= 0xF0 && b <= 0xF4 ? 4
                                               : 0;
        return need > back ? back : 0;
    }
    return 0;
}
