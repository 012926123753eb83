/*
 * Unit tests for common/reason.c, and the cross-check that keeps the one
 * vocabulary of reasons one: every reason raised in sql/ (any .sql file at
 * any depth), every reason literal the C files of server/ answer with, and every reason
 * in docs/PROTOCOL.md's "Reasons" tables is in the table of common/reason.h
 * with the same status; and every entry of the table is documented and
 * used. The source tree is CARREL_SOURCE_ROOT (set by tests/unit/meson.build).
 *
 * What counts as "raised" follows the conventions of sql/rules/foundation.sql
 * and server/request.h:
 *   SQL  RAISE ... ERRCODE = 'CRnnn', DETAIL = '<reason>' (status from nnn),
 *        circ_refuse('<reason>', ...) (REFUSED), room_refuse('CRnnn',
 *        '<reason>', ...) (status from nnn), <...>reason := '<reason>'
 *        and <...>reasons || '<reason>'::text (reasons returned in rows),
 *        any 'field:<name>' literal;
 *   C    the reason argument of request_fail, request_fail_body,
 *        request_fail_fatal and any request_fail_* with the same arguments
 *        (each string literal in it outside nested calls), `reason = "<r>"`,
 *        any "field:<name>" literal; these must be in the table, with the
 *        status the call gives. Any REASON_<ENUM> named, and any literal
 *        that is a reason's name, counts as a use.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctype.h>
#include <dirent.h>
#include <regex.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "carrel.pb-c.h"
#include "reason.h"
#include "status.h"

#ifndef CARREL_SOURCE_ROOT
#error "tests/unit/meson.build defines CARREL_SOURCE_ROOT"
#endif

/* ---------------------------------------------------------------- helpers */

/* What a scan found: per table entry, where it was seen; names not in the table. */
typedef struct found {
    const char *seen[REASON_COUNT]; /* first place, or NULL */
    char unknown[4096];             /* "name (where); ..." */
    char mismatch[4096];            /* "name: status X in where, table says Y; ..." */
} found_t;

static void found_add(found_t *f, const char *name, int status, const char *where)
{
    reason_t r = reason_from_name(name);
    if (r == REASON_NONE) {
        size_t n = strlen(f->unknown);
        snprintf(f->unknown + n, sizeof(f->unknown) - n, "%s (%s); ", name, where);
        return;
    }
    if (f->seen[r] == NULL)
        f->seen[r] = where;
    if (status >= 0 && status != reason_status(r) && !(reason_flags(r) & REASON_STATUS_VARIES)) {
        size_t n = strlen(f->mismatch);
        snprintf(f->mismatch + n, sizeof(f->mismatch) - n, "%s: %s in %s, table says %s; ", name,
                 status_name(status), where, status_name(reason_status(r)));
    }
}

/* Names of the files scanned, for the messages: static, so never freed. */
static char places[512][160];
static int n_places;

static const char *place(const char *path)
{
    assert_true(n_places < 512);
    assert_true(strlen(path) < sizeof(places[0]));
    memcpy(places[n_places], path, strlen(path) + 1);
    return places[n_places++];
}

static char *read_text(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t n;
    while ((n = fread(s + len, 1, cap - len - 1, fp)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            s = realloc(s, cap);
            assert_non_null(s);
        }
    }
    fclose(fp);
    s[len] = '\0';
    return s;
}

/* Call fn for every match of `pattern` in text with the text of group 1. */
static void each_match(const char *text, const char *pattern,
                       void (*fn)(const char *group, void *arg), void *arg)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED), 0);
    regmatch_t m[2];
    const char *p = text;
    while (regexec(&re, p, 2, m, p == text ? 0 : REG_NOTBOL) == 0) {
        char group[128];
        int n = (int)(m[1].rm_eo - m[1].rm_so);
        snprintf(group, sizeof(group), "%.*s", n < 127 ? n : 127, p + m[1].rm_so);
        fn(group, arg);
        p += m[0].rm_eo > 0 ? m[0].rm_eo : 1;
    }
    regfree(&re);
}

typedef struct add_ctx {
    found_t *f;
    int status;
    const char *where;
} add_ctx_t;

static void add_group(const char *group, void *arg)
{
    add_ctx_t *a = arg;
    found_add(a->f, group, a->status, a->where);
}

static int status_of_sqlstate(const char *code)
{
    static const struct {
        const char *code;
        int status;
    } map[] = {
        {"CR400", CARREL__STATUS__STATUS_BAD_REQUEST}, {"CR403", CARREL__STATUS__STATUS_FORBIDDEN},
        {"CR404", CARREL__STATUS__STATUS_NOT_FOUND},   {"CR409", CARREL__STATUS__STATUS_CONFLICT},
        {"CR422", CARREL__STATUS__STATUS_REFUSED},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].code, code) == 0)
            return map[i].status;
    return -2; /* an SQLSTATE request_fail_db does not know */
}

/* ---------------------------------------------------------------- SQL */

/* Blank out "-- ..." comments (outside quotes) so that prose is not a reason. */
static void sql_strip_comments(char *s)
{
    bool quoted = false;
    for (char *p = s; *p; p++) {
        if (*p == '\n')
            quoted = false;
        else if (*p == '\'')
            quoted = !quoted;
        else if (!quoted && p[0] == '-' && p[1] == '-')
            while (*p && *p != '\n')
                *p++ = ' ';
        if (*p == '\0')
            break;
    }
}

/* Each RAISE statement with one of our SQLSTATEs: its DETAIL, checked. */
static void sql_scan_raises(found_t *f, const char *text, const char *where, char *problems,
                            size_t cap)
{
    regex_t re;
    assert_int_equal(regcomp(&re, "RAISE[^;]*ERRCODE *= *'(CR[0-9]+)'", REG_EXTENDED), 0);
    regmatch_t m[2];
    const char *p = text;
    while (regexec(&re, p, 2, m, 0) == 0) {
        char code[16];
        snprintf(code, sizeof(code), "%.*s", (int)(m[1].rm_eo - m[1].rm_so), p + m[1].rm_so);
        const char *stmt = p + m[0].rm_so;
        const char *end = strchr(stmt, ';');
        size_t len = end ? (size_t)(end - stmt) : strlen(stmt);
        char *raise = strndup(stmt, len);
        assert_non_null(raise);
        int status = status_of_sqlstate(code);
        const char *detail = strstr(raise, "DETAIL");
        size_t n = strlen(problems);
        if (status == -2)
            snprintf(problems + n, cap - n, "%s: SQLSTATE %s is not one of CR400..CR422; ", where,
                     code);
        else if (detail == NULL)
            snprintf(problems + n, cap - n, "%s: a RAISE of %s without a DETAIL (reason); ", where,
                     code);
        else {
            /* DETAIL = 'name', DETAIL = 'field:' || p_field, or a parameter
             * forwarded (p_reason, v_field: their values are literals seen
             * elsewhere in the scan). */
            add_ctx_t a = {f, status, where};
            each_match(detail, "^DETAIL *= *'([a-z_:]+)'", add_group, &a);
        }
        free(raise);
        p = stmt + len;
    }
    regfree(&re);
}

/* rooms.sql, programs.sql: room_refuse('CRnnn', '<reason>', message), the status from CRnnn. */
static void sql_scan_room_refuses(found_t *f, const char *text, const char *where, char *problems,
                                  size_t cap)
{
    regex_t re;
    assert_int_equal(regcomp(&re, "room_refuse\\([[:space:]]*'(CR[0-9]+)',[[:space:]]*'([a-z_:]+)'",
                             REG_EXTENDED),
                     0);
    regmatch_t m[3];
    const char *p = text;
    while (regexec(&re, p, 3, m, 0) == 0) {
        char code[16], name[128];
        snprintf(code, sizeof(code), "%.*s", (int)(m[1].rm_eo - m[1].rm_so), p + m[1].rm_so);
        int n = (int)(m[2].rm_eo - m[2].rm_so);
        snprintf(name, sizeof(name), "%.*s", n < 127 ? n : 127, p + m[2].rm_so);
        int status = status_of_sqlstate(code);
        if (status == -2) {
            size_t used = strlen(problems);
            snprintf(problems + used, cap - used, "%s: SQLSTATE %s is not one of CR400..CR422; ",
                     where, code);
        } else {
            found_add(f, name, status, where);
        }
        p += m[0].rm_eo;
    }
    regfree(&re);
}

static void sql_scan_text(found_t *f, char *text, const char *where, char *problems, size_t cap)
{
    sql_strip_comments(text);
    sql_scan_raises(f, text, where, problems, cap);
    add_ctx_t refused = {f, CARREL__STATUS__STATUS_REFUSED, where};
    each_match(text, "circ_refuse\\( *'([a-z_]+)'", add_group, &refused);
    sql_scan_room_refuses(f, text, where, problems, cap);
    add_ctx_t any = {f, -1, where};
    each_match(text, "reason *:= *'([a-z_:]+)'", add_group, &any);
    each_match(text, "reasons *\\|\\| *'([a-z_:]+)'", add_group, &any);
    each_match(text, "'(field:[a-z_]*)'", add_group, &any);
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

/* Every *.sql below dir, at any depth; returns how many were read. */
static int sql_scan_dir(found_t *f, const char *dir, char *problems, size_t cap)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            files += sql_scan_dir(f, path, problems, cap);
        } else if (ends_with(e->d_name, ".sql")) {
            char *text = read_text(path);
            assert_non_null(text);
            sql_scan_text(f, text, place(path + strlen(CARREL_SOURCE_ROOT) + 1), problems, cap);
            free(text);
            files++;
        }
    }
    closedir(d);
    return files;
}

/* ---------------------------------------------------------------- C */

/* Blank out comments, keep strings (a reason is a string literal). */
static void c_strip_comments(char *s)
{
    char quote = 0;
    for (char *p = s; *p; p++) {
        if (quote) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == quote)
                quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (p[0] == '/' && p[1] == '*') {
            while (*p && !(p[0] == '*' && p[1] == '/'))
                *p++ = ' ';
            if (*p)
                p[0] = p[1] = ' ';
        } else if (p[0] == '/' && p[1] == '/') {
            while (*p && *p != '\n')
                *p++ = ' ';
        }
        if (*p == '\0')
            break;
    }
}

/* The arguments of the call whose '(' is at open: up to 8, each [start, end). */
static int c_call_args(const char *open, const char *start[8], const char *end[8])
{
    int depth = 0, n = 0;
    char quote = 0;
    start[0] = open + 1;
    for (const char *p = open; *p; p++) {
        if (quote) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == quote)
                quote = 0;
            continue;
        }
        if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '(') {
            depth++;
        } else if (*p == ')') {
            if (--depth == 0) {
                end[n++] = p;
                return n;
            }
        } else if (*p == ',' && depth == 1 && n < 7) {
            end[n++] = p;
            start[n] = p + 1;
        }
    }
    return 0;
}

/*
 * The string literals of an argument outside nested calls: in
 * `strstr(err, "too long") ? "too_long" : "marc"` the reasons are the last
 * two, not the first.
 */
static void c_add_literals(found_t *f, const char *p, const char *end, int status,
                           const char *where)
{
    int depth = 0;
    for (; p < end; p++) {
        if (*p == '(') {
            depth++;
        } else if (*p == ')') {
            depth--;
        } else if (*p == '\'') {
            p += p[1] == '\\' ? 3 : 2;
        } else if (*p == '"') {
            const char *q = p + 1;
            while (q < end && *q != '"')
                q += *q == '\\' ? 2 : 1;
            if (depth == 0) {
                char lit[128];
                int n = (int)(q - p - 1);
                snprintf(lit, sizeof(lit), "%.*s", n < 127 ? n : 127, p + 1);
                found_add(f, lit, status, where);
            }
            p = q;
        }
    }
}

/*
 * Every call of request_fail, request_fail_body, request_fail_fatal (and any
 * request_fail_* to come with the same arguments: req, status, reason, ...).
 * request_fail_db, _exec and _reason take no literal reason.
 */
static void c_scan_fail_calls(found_t *f, const char *text, const char *where)
{
    static const char stem[] = "request_fail";
    for (const char *p = strstr(text, stem); p; p = strstr(p + 1, stem)) {
        if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
            continue;
        const char *open = p + strlen(stem);
        while (islower((unsigned char)*open) || *open == '_')
            open++;
        if (*open != '(')
            continue;
        const char *s[8], *e[8];
        int n = c_call_args(open, s, e);
        if (n < 3)
            continue;
        char status_text[64];
        snprintf(status_text, sizeof(status_text), "%.*s", (int)(e[1] - s[1]), s[1]);
        int status = -1;
        const char *sx = strstr(status_text, "CARREL__STATUS__STATUS_");
        if (sx) {
            char name[48];
            snprintf(name, sizeof(name), "%s", sx + strlen("CARREL__STATUS__STATUS_"));
            for (char *c = name; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            for (int st = 0; st < 32; st++)
                if (strcmp(status_name(st), name) == 0)
                    status = st;
        }
        c_add_literals(f, s[2], e[2], status, where);
    }
}

/* A literal that is a reason's name counts as a use of it, wherever it is
 * (a table of field checks, a helper's argument), but proves nothing else. */
static void use_group(const char *group, void *arg)
{
    add_ctx_t *a = arg;
    reason_t r = reason_from_name(group);
    if (r != REASON_NONE && a->f->seen[r] == NULL)
        a->f->seen[r] = a->where;
}

static void enum_group(const char *group, void *arg)
{
    add_ctx_t *a = arg;
#define X(e, name, status, exit_code, flags, sentence)                                             \
    if (strcmp(group, #e) == 0)                                                                    \
        found_add(a->f, name, -1, a->where);
    CARREL_REASON_TABLE(X)
#undef X
}

static void c_scan_text(found_t *f, char *text, const char *where)
{
    c_strip_comments(text);
    c_scan_fail_calls(f, text, where);
    add_ctx_t any = {f, -1, where};
    each_match(text, "reason *= *\"([a-z_:]+)\"", add_group, &any);
    each_match(text, "\"(field:[a-z_]+)\"", add_group, &any);
    each_match(text, "[^A-Za-z_]REASON_([A-Z_]+)", enum_group, &any);
    each_match(text, "\"([a-z_]+)\"", use_group, &any);
}

/* ---------------------------------------------------------------- PROTOCOL.md */

/* Status names as the docs write them ("BAD_REQUEST", "REFUSED, overridable"). */
static int doc_status(const char *cell)
{
    char word[48] = "";
    size_t n = 0;
    while (*cell == ' ')
        cell++;
    while ((isupper((unsigned char)*cell) || *cell == '_') && n < sizeof(word) - 1)
        word[n++] = (char)tolower((unsigned char)*cell++);
    word[n] = '\0';
    for (int st = 0; st < 32; st++)
        if (n > 0 && strcmp(status_name(st), word) == 0)
            return st;
    return -1;
}

/* The rows of the reason tables in "## Reasons": `name`[, `name`] | STATUS | when. */
static int doc_scan(found_t *f, const char *text)
{
    const char *sec = strstr(text, "\n## Reasons\n");
    assert_non_null(sec);
    const char *end = strstr(sec + 1, "\n## ");
    int rows = 0;
    for (const char *line = sec + 1; line && (end == NULL || line < end);) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len > 3 && strncmp(line, "| `", 3) == 0) {
            char *row = strndup(line, len);
            assert_non_null(row);
            char *bar = strchr(row + 1, '|');
            assert_non_null(bar);
            *bar = '\0';
            add_ctx_t a = {f, doc_status(bar + 1), "docs/PROTOCOL.md"};
            each_match(row, "`([a-z_:<>]+)`", add_group, &a);
            free(row);
            rows++;
        }
        line = nl ? nl + 1 : NULL;
    }
    return rows;
}

/* ---------------------------------------------------------------- the scans */

typedef struct tree {
    found_t sql, c, doc;
    char problems[4096];
    int sql_files, c_files, doc_rows;
} tree_t;

static tree_t *tree;

static int scan_tree(void **state)
{
    (void)state;
    tree = calloc(1, sizeof(*tree));
    assert_non_null(tree);
    tree->sql_files =
        sql_scan_dir(&tree->sql, CARREL_SOURCE_ROOT "/sql", tree->problems, sizeof(tree->problems));
    DIR *d = opendir(CARREL_SOURCE_ROOT "/server");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!ends_with(e->d_name, ".c"))
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/server/%s", CARREL_SOURCE_ROOT, e->d_name);
        char *text = read_text(path);
        assert_non_null(text);
        char where[300];
        snprintf(where, sizeof(where), "server/%s", e->d_name);
        c_scan_text(&tree->c, text, place(where));
        free(text);
        tree->c_files++;
    }
    closedir(d);
    char *doc = read_text(CARREL_SOURCE_ROOT "/docs/PROTOCOL.md");
    assert_non_null(doc);
    tree->doc_rows = doc_scan(&tree->doc, doc);
    free(doc);
    return 0;
}

static int free_tree(void **state)
{
    (void)state;
    free(tree);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_table_is_well_formed(void **state)
{
    (void)state;
    for (int r = REASON_NONE + 1; r < REASON_COUNT; r++) {
        const char *name = reason_name((reason_t)r);
        assert_non_null(name);
        for (const char *c = name; *c; c++)
            assert_true(islower((unsigned char)*c) || *c == '_');
        assert_int_equal(reason_from_name(name), r); /* names are unique */
        assert_string_not_equal(status_name(reason_status((reason_t)r)), "unknown");
        assert_int_not_equal(reason_status((reason_t)r), CARREL__STATUS__STATUS_OK);
        const char *s = reason_sentence((reason_t)r);
        assert_true(strlen(s) > 5 && s[strlen(s) - 1] == '.');
    }
#define X(e, name, status, exit_code, flags, sentence)                                             \
    {                                                                                              \
        char upper[64];                                                                            \
        size_t i = 0;                                                                              \
        for (; name[i] && i < sizeof(upper) - 1; i++)                                              \
            upper[i] = (char)toupper((unsigned char)name[i]);                                      \
        upper[i] = '\0';                                                                           \
        assert_string_equal(#e, upper); /* the enum is the name in capitals */                     \
    }
    CARREL_REASON_TABLE(X)
#undef X
}

static void test_lookup_by_name(void **state)
{
    (void)state;
    assert_int_equal(reason_from_name("item_not_found"), REASON_ITEM_NOT_FOUND);
    assert_int_equal(reason_from_name("field:email"), REASON_FIELD);
    assert_int_equal(reason_from_name("field:"), REASON_FIELD);
    assert_int_equal(reason_from_name("field"), REASON_FIELD);
    assert_int_equal(reason_from_name("item:x"), REASON_NONE); /* only "field" takes one */
    assert_int_equal(reason_from_name("item_not_foun"), REASON_NONE);
    assert_int_equal(reason_from_name("item_not_found_"), REASON_NONE);
    assert_int_equal(reason_from_name(""), REASON_NONE);
    assert_int_equal(reason_from_name(NULL), REASON_NONE);
    assert_null(reason_name(REASON_NONE));
    assert_null(reason_name(REASON_COUNT));
    assert_string_equal(reason_name(REASON_FIELD), "field");
    assert_int_equal(reason_status(REASON_PATRON_EXPIRED), CARREL__STATUS__STATUS_REFUSED);
    assert_int_equal(reason_status(REASON_BUSY), CARREL__STATUS__STATUS_UNAVAILABLE);
    assert_true(reason_flags(REASON_NOT_ON_LOAN) & REASON_STATUS_VARIES);
    assert_true(reason_flags(REASON_FIELD) & REASON_PARAM);
}

/* The sentences request.c sends from the table were its literals before:
 * clients and docs/PROTOCOL.md quote them. */
static void test_sentences_the_server_sends(void **state)
{
    (void)state;
    assert_string_equal(reason_sentence(REASON_OVERLOADED),
                        "The server is overloaded; try again in a moment.");
    assert_string_equal(reason_sentence(REASON_SHUTTING_DOWN),
                        "The server is shutting down; try again in a moment.");
    assert_string_equal(reason_sentence(REASON_DATABASE),
                        "The database is unavailable; try again in a moment.");
    assert_string_equal(reason_sentence(REASON_BUSY),
                        "Another desk is changing the same record; try again.");
    assert_string_equal(reason_sentence(REASON_CONTENTION),
                        "Too many desks changed the same records at once; try again.");
    assert_string_equal(reason_sentence(REASON_DUPLICATE), "That record already exists.");
    assert_string_equal(reason_sentence(REASON_INTERNAL), "Internal error; it has been logged.");
}

/* The exit codes of the client (docs/CIRCULATION.md): as they were before the table. */
static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(status_exit_code(CARREL__STATUS__STATUS_OK), 0);
    assert_int_equal(status_exit_code(CARREL__STATUS__STATUS_UNAUTHENTICATED), 3);
    assert_int_equal(status_exit_code(CARREL__STATUS__STATUS_UNSUPPORTED_VERSION), 5);
    assert_int_equal(status_exit_code(CARREL__STATUS__STATUS_REFUSED), 4);
    assert_int_equal(status_exit_code(CARREL__STATUS__STATUS_TOO_MANY_REQUESTS), 4);
    assert_int_equal(status_exit_code(99), 4);
    assert_int_equal(
        reason_exit_code(REASON_BAD_CREDENTIALS, CARREL__STATUS__STATUS_UNAUTHENTICATED), 3);
    assert_int_equal(reason_exit_code(REASON_NONE, CARREL__STATUS__STATUS_CONFLICT), 4);
    assert_int_equal(
        reason_exit_code(REASON_LOGIN_THROTTLED, CARREL__STATUS__STATUS_TOO_MANY_REQUESTS), 3);
    for (int r = REASON_NONE + 1; r < REASON_COUNT; r++) {
        int code = reason_exit_code((reason_t)r, reason_status((reason_t)r));
        assert_true(code >= CARREL_EXIT_AUTH && code <= CARREL_EXIT_NETWORK);
    }
}

/* The scanners themselves, on text made up for them. */
static void test_scanners_find_reasons(void **state)
{
    (void)state;
    static found_t found; /* static: a failed assertion leaves the function */
    found_t *f = &found;
    memset(f, 0, sizeof(*f));
    char problems[512] = "";
    char sql[] = "-- DETAIL = 'not_a_reason_in_a_comment'\n"
                 "RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'hold_closed',\n"
                 "    MESSAGE = 'x; y';\n"
                 "RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field;\n"
                 "PERFORM circ_refuse('hold_limit', 'm', false);\n"
                 "v_reasons := v_reasons || 'loan_limit'::text;\n"
                 "r.reason := 'renewal_hold';\n"
                 "RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'made_up_reason';\n"
                 "RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'hold_closed';\n"
                 "RAISE EXCEPTION USING ERRCODE = 'CR404', MESSAGE = 'no detail';\n"
                 "PERFORM room_refuse('CR409', 'slot_taken', 'm');\n"
                 "PERFORM room_refuse('CR404',\n    'booking_gap', 'm');\n"
                 "PERFORM room_refuse('CR499', 'room', 'm');\n";
    sql_scan_text(f, sql, "t.sql", problems, sizeof(problems));
    assert_non_null(f->seen[REASON_HOLD_CLOSED]);
    assert_non_null(f->seen[REASON_FIELD]);
    assert_non_null(f->seen[REASON_HOLD_LIMIT]);
    assert_non_null(f->seen[REASON_LOAN_LIMIT]);
    assert_non_null(f->seen[REASON_RENEWAL_HOLD]);
    assert_non_null(strstr(f->unknown, "made_up_reason"));
    assert_null(strstr(f->unknown, "in_a_comment"));
    assert_non_null(strstr(f->mismatch, "hold_closed: not_found")); /* CR404, table: CONFLICT */
    assert_non_null(strstr(problems, "without a DETAIL"));
    assert_non_null(f->seen[REASON_SLOT_TAKEN]);
    assert_null(strstr(f->mismatch, "slot_taken"));
    assert_non_null(strstr(f->mismatch, "booking_gap: not_found")); /* CR404, table: REFUSED */
    assert_non_null(strstr(problems, "SQLSTATE CR499"));

    memset(f, 0, sizeof(*f));
    char c[] =
        "/* request_fail(req, CARREL__STATUS__STATUS_CONFLICT, \"commented\", \"\"); */\n"
        "request_fail(req, CARREL__STATUS__STATUS_BAD_REQUEST,\n"
        "             strstr(err, \"too long\") ? \"too_long\" : \"marc\", \"%s.\", m);\n"
        "request_fail_body(req, CARREL__STATUS__STATUS_CONFLICT, \"stale_version\", "
        "\"x, y\");\n"
        "request_fail(req, CARREL__STATUS__STATUS_FORBIDDEN, \"made_up\", \"x\");\n"
        "r.reason = \"frame_too_large\"; x(\"field:limit\"); request_fail_reason(req, "
        "REASON_BUSY);\n"
        "request_fail_later(req, CARREL__STATUS__STATUS_CONFLICT, \"made_up_later\", \"\");\n"
        "const char *kinds[] = {\"hold\", \"json_key\"};\n";
    c_scan_text(f, c, "t.c");
    assert_non_null(f->seen[REASON_TOO_LONG]);
    assert_non_null(f->seen[REASON_MARC]);
    assert_non_null(f->seen[REASON_STALE_VERSION]);
    assert_non_null(f->seen[REASON_FRAME_TOO_LARGE]);
    assert_non_null(f->seen[REASON_FIELD]);
    assert_non_null(f->seen[REASON_BUSY]);
    assert_non_null(strstr(f->unknown, "made_up"));
    assert_non_null(strstr(f->unknown, "made_up_later"));
    assert_non_null(f->seen[REASON_HOLD]); /* a mere literal: used, not checked */
    assert_null(strstr(f->unknown, "json_key"));
    assert_null(strstr(f->unknown, "commented"));
    assert_null(strstr(f->unknown, "too long")); /* the literal in strstr() is an argument's */
}

static void assert_nothing(const char *what, const char *list)
{
    if (list[0])
        fail_msg("%s: %s", what, list);
}

static void test_sql_reasons_are_in_the_table(void **state)
{
    (void)state;
    assert_true(tree->sql_files >= 10);
    assert_nothing("SQL raises reasons missing from common/reason.h", tree->sql.unknown);
    assert_nothing("SQL raises reasons with another status than common/reason.h's",
                   tree->sql.mismatch);
    assert_nothing("SQL refusals not raised the documented way", tree->problems);
}

static void test_c_reasons_are_in_the_table(void **state)
{
    (void)state;
    assert_true(tree->c_files >= 10);
    assert_nothing("server/*.c answers with reasons missing from common/reason.h", tree->c.unknown);
    assert_nothing("server/*.c answers with another status than common/reason.h's",
                   tree->c.mismatch);
}

static void test_documented_reasons_are_in_the_table(void **state)
{
    (void)state;
    assert_true(tree->doc_rows >= 50);
    assert_nothing("docs/PROTOCOL.md documents reasons missing from common/reason.h",
                   tree->doc.unknown);
    assert_nothing("docs/PROTOCOL.md gives another status than common/reason.h",
                   tree->doc.mismatch);
}

static void test_table_entries_are_documented_and_used(void **state)
{
    (void)state;
    char undocumented[2048] = "", unused[2048] = "";
    for (int r = REASON_NONE + 1; r < REASON_COUNT; r++) {
        const char *name = reason_name((reason_t)r);
        if (tree->doc.seen[r] == NULL) {
            size_t n = strlen(undocumented);
            snprintf(undocumented + n, sizeof(undocumented) - n, "%s ", name);
        }
        if (tree->sql.seen[r] == NULL && tree->c.seen[r] == NULL) {
            size_t n = strlen(unused);
            snprintf(unused + n, sizeof(unused) - n, "%s ", name);
        }
    }
    assert_nothing("reasons of common/reason.h not in docs/PROTOCOL.md's \"Reasons\"",
                   undocumented);
    assert_nothing("reasons of common/reason.h that neither server/*.c nor sql/ use", unused);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_well_formed),
        cmocka_unit_test(test_lookup_by_name),
        cmocka_unit_test(test_sentences_the_server_sends),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_scanners_find_reasons),
        cmocka_unit_test(test_sql_reasons_are_in_the_table),
        cmocka_unit_test(test_c_reasons_are_in_the_table),
        cmocka_unit_test(test_documented_reasons_are_in_the_table),
        cmocka_unit_test(test_table_entries_are_documented_and_used),
    };
    return cmocka_run_group_tests(tests, scan_tree, free_tree);
}
