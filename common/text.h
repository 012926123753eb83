/*
 * text: what counts as acceptable text, on the wire and on a terminal.
 *
 * Carrel's text is UTF-8 without control characters, except TAB and LF
 * (multi-line notes). Everything else (NUL, which C strings would silently
 * cut at; CR, ESC and the rest of C0; DEL; C1 U+0080-U+009F) is refused when
 * a client sends it (wirecheck.c) and escaped when a program prints it, so
 * that no stored text can move a cursor or start a terminal escape sequence
 * on another desk.
 */
#ifndef CARREL_TEXT_H
#define CARREL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef enum text_problem {
    TEXT_OK = 0,
    TEXT_NUL,      /* a NUL byte */
    TEXT_BAD_UTF8, /* not UTF-8: a stray byte, overlong form, surrogate, beyond U+10FFFF */
    TEXT_CONTROL,  /* a control character other than TAB and LF */
} text_problem_t;

/*
 * Decode one UTF-8 sequence at s (n > 0 bytes available). Returns its length
 * (1-4) and the code point in *cp, or 0 when the bytes there are not the
 * shortest UTF-8 form of a Unicode scalar value (also when cut short).
 */
size_t text_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* True for C0 controls except TAB and LF, DEL, and C1 controls. */
bool text_is_control(uint32_t cp);
/*
 * Check n bytes of text. On a problem, *at is the byte offset where it
 * starts and *cp the code point (the byte for TEXT_BAD_UTF8); either may be NULL.
 */
text_problem_t text_check(const uint8_t *s, size_t n, size_t *at, uint32_t *cp);
/* A sentence fragment for a problem: "contains a NUL byte", ... */
const char *text_problem_describe(text_problem_t p);

/*
 * Make a NUL-terminated string safe to send or print, in place: each byte
 * that does not start valid UTF-8, and each control character (TAB and LF
 * included unless keep_lines), becomes '?'. Never lengthens the string.
 * For text the program built itself, as a last guard (e.g. a message cut by
 * a fixed buffer in the middle of a character).
 */
void text_sanitize(char *s, bool keep_lines);

#define TEXT_ESCAPE_KEEP_LINES 1u /* LF and TAB pass unchanged (multi-line output) */
#define TEXT_ESCAPE_KEEP_CR    2u /* CR passes unchanged (a progress line redrawn in place) */

/*
 * Append s to out (not NUL-terminated) with every control character and
 * every byte that is not valid UTF-8 written as a visible escape: \n, \t and \r for those three
 * (unless TEXT_ESCAPE_KEEP_LINES keeps LF and TAB), \e for ESC, \xHH for
 * other single bytes, \u{HHHH} for C1 controls. Printable text, including
 * backslashes, is copied as it is. Returns 0, or -1 when out of memory.
 */
__attribute__((warn_unused_result)) int text_escape(struct buf *out, const char *s, unsigned flags);
/* The same for n bytes that may include NULs (written as \x00). */
__attribute__((warn_unused_result)) int text_escape_n(struct buf *out, const uint8_t *s, size_t n,
                                                      unsigned flags);
/*
 * How many bytes at the end of s[0..n) are the start of a UTF-8 character
 * cut short (0-3): a stream filter keeps them for its next write instead of
 * escaping half a character.
 */
size_t text_utf8_incomplete(const uint8_t *s, size_t n);

#endif
