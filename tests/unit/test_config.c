/*
 * Unit tests for common/config.c, on a small table of our own, plus sanity
 * checks of the two real tables: the daemon's and the client profile's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "profile.h"
#include "server_config.h"

struct test_conf {
    char *name;
    long count;
    int verbose;
    char *extra; /* no default: NULL until set */
};

#define T(field) offsetof(struct test_conf, field)

static const conf_entry_t test_table[] = {
    {"name", CONF_STRING, T(name), "carrel", 0, 0, "a name", 0},
    {"count", CONF_INT, T(count), "10", 1, 100, "how many", 0},
    {"verbose", CONF_BOOL, T(verbose), "false", 0, 0, "talk more", 0},
    {"extra", CONF_STRING, T(extra), NULL, 0, 0, "optional", 0},
    CONF_END,
};

/* Each test gets a struct loaded with defaults; teardown frees it. */
static int conf_setup(void **state)
{
    struct test_conf *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    if (conf_defaults(test_table, c) != 0) {
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static int conf_teardown(void **state)
{
    struct test_conf *c = *state;
    conf_free(test_table, c);
    free(c);
    return 0;
}

/* Parse `text` expecting success. */
static void parse_ok(struct test_conf *c, const char *text)
{
    char err[256] = "";
    int rc = conf_parse(test_table, c, text, "test.conf", err, sizeof(err));
    if (rc != 0)
        fail_msg("conf_parse failed: %s", err);
}

/* Parse `text` expecting failure; the message must contain each of the needles. */
static void parse_fails(struct test_conf *c, const char *text, const char *needle1,
                        const char *needle2)
{
    char err[256] = "";
    assert_int_equal(conf_parse(test_table, c, text, "test.conf", err, sizeof(err)), -1);
    if (needle1 && strstr(err, needle1) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, needle1);
    if (needle2 && strstr(err, needle2) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, needle2);
}

static void test_defaults(void **state)
{
    struct test_conf *c = *state;
    assert_string_equal(c->name, "carrel");
    assert_int_equal(c->count, 10);
    assert_int_equal(c->verbose, 0);
    assert_null(c->extra);
}

/* Defaults again over set values: strings replaced (ASan sees no leak). */
static void test_defaults_reset_values(void **state)
{
    struct test_conf *c = *state;
    parse_ok(c, "name = other\ncount = 50\nverbose = true\nextra = x\n");
    assert_int_equal(conf_defaults(test_table, c), 0);
    assert_string_equal(c->name, "carrel");
    assert_int_equal(c->count, 10);
    assert_int_equal(c->verbose, 0);
    assert_null(c->extra);
}

static void test_parse_comments_and_blank_lines(void **state)
{
    struct test_conf *c = *state;
    parse_ok(c, "# a comment\n"
                "\n"
                "   \n"
                "\t\n"
                "name = desk-1\n"
                "    # an indented comment\n"
                "count=42\n"
                "  verbose   =   yes  \n"
                "extra = last line without newline");
    assert_string_equal(c->name, "desk-1");
    assert_int_equal(c->count, 42);
    assert_int_equal(c->verbose, 1);
    assert_string_equal(c->extra, "last line without newline");
}

static void test_parse_empty_text(void **state)
{
    struct test_conf *c = *state;
    parse_ok(c, "");
    parse_ok(c, "\n\n# nothing\n");
    assert_string_equal(c->name, "carrel");
    assert_int_equal(c->count, 10);
}

static void test_parse_crlf_lines(void **state)
{
    struct test_conf *c = *state;
    parse_ok(c, "name = desk\r\ncount = 3\r\nextra = \"q\"\r\n");
    assert_string_equal(c->name, "desk");
    assert_int_equal(c->count, 3);
    assert_string_equal(c->extra, "q");
}

static void test_parse_quoted_values(void **state)
{
    struct test_conf *c = *state;
    parse_ok(c, "name = \"Main # Branch\"\n");
    assert_string_equal(c->name, "Main # Branch");
    parse_ok(c, "name = \"  padded  \" # and a comment\n");
    assert_string_equal(c->name, "  padded  ");
    parse_ok(c, "name = \"a = b\"\n");
    assert_string_equal(c->name, "a = b");
    parse_ok(c, "name = \"\"\n");
    assert_string_equal(c->name, "");
    parse_ok(c, "count = \"77\"\n");
    assert_int_equal(c->count, 77);
}

static void test_parse_unquoted_trailing_comment(void **state)
{
    struct test_conf *c = *state;
    parse_ok(c, "name = desk # the front desk\n"
                "count = 7 # seven\n"
                "verbose = on#no space\n");
    assert_string_equal(c->name, "desk");
    assert_int_equal(c->count, 7);
    assert_int_equal(c->verbose, 1);
}

static void test_parse_empty_string_value(void **state)
{
    struct test_conf *c = *state;
    parse_ok(c, "extra =\n");
    assert_non_null(c->extra);
    assert_string_equal(c->extra, "");
}

static void test_parse_later_line_wins(void **state)
{
    struct test_conf *c = *state;
    parse_ok(c, "name = first\nname = second\n");
    assert_string_equal(c->name, "second");
}

static void test_parse_unknown_key(void **state)
{
    struct test_conf *c = *state;
    parse_fails(c, "name = ok\n\n# comment\nbogus_key = 1\ncount = 5\n", "bogus_key",
                "test.conf:4");
    /* Lines before the error were applied; the ones after were not. */
    assert_string_equal(c->name, "ok");
    assert_int_equal(c->count, 10);
}

static void test_parse_bad_int(void **state)
{
    struct test_conf *c = *state;
    parse_fails(c, "count = 12abc\n", "count", "test.conf:1");
    parse_fails(c, "\ncount = abc\n", "'abc'", "test.conf:2");
    parse_fails(c, "count = 1.5\n", "count", NULL);
    parse_fails(c, "count =\n", "count", "number");
    parse_fails(c, "count = 99999999999999999999999999\n", "count", NULL);
    /* A failed line leaves the old value. */
    assert_int_equal(c->count, 10);
}

static void test_parse_int_bounds(void **state)
{
    struct test_conf *c = *state;
    parse_fails(c, "count = 0\n", "count", "1..100");
    parse_fails(c, "count = 101\n", "101", "1..100");
    parse_fails(c, "count = -5\n", "-5", NULL);
    assert_int_equal(c->count, 10);
    parse_ok(c, "count = 1\n");
    assert_int_equal(c->count, 1);
    parse_ok(c, "count = 100\n");
    assert_int_equal(c->count, 100);
}

static void test_parse_bools(void **state)
{
    struct test_conf *c = *state;
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    char line[64];
    for (size_t i = 0; i < 4; i++) {
        snprintf(line, sizeof(line), "verbose = %s\n", yes[i]);
        parse_ok(c, line);
        assert_int_equal(c->verbose, 1);
        snprintf(line, sizeof(line), "verbose = %s\n", no[i]);
        parse_ok(c, line);
        assert_int_equal(c->verbose, 0);
    }
    parse_fails(c, "verbose = maybe\n", "verbose", "maybe");
    parse_fails(c, "verbose = 2\n", "verbose", NULL);
    parse_fails(c, "verbose =\n", "verbose", NULL);
    assert_int_equal(c->verbose, 0);
}

static void test_parse_missing_equals(void **state)
{
    struct test_conf *c = *state;
    parse_fails(c, "name = a\ncount 5\n", "test.conf:2", "key = value");
    assert_int_equal(c->count, 10);
}

static void test_parse_unterminated_quote(void **state)
{
    struct test_conf *c = *state;
    parse_fails(c, "\n\nname = \"Main Branch\n", "test.conf:3", "unterminated");
    assert_string_equal(c->name, "carrel");
}

static void test_parse_empty_key(void **state)
{
    struct test_conf *c = *state;
    parse_fails(c, " = value\n", "test.conf:1", NULL);
}

static void test_parse_error_truncated_to_buffer(void **state)
{
    struct test_conf *c = *state;
    char err[16];
    memset(err, 'x', sizeof(err));
    assert_int_equal(conf_parse(test_table, c, "a_very_long_unknown_setting_name = 1\n",
                                "somewhere.conf", err, sizeof(err)),
                     -1);
    assert_int_equal(strlen(err), sizeof(err) - 1);
}

static void test_set_pair(void **state)
{
    struct test_conf *c = *state;
    char err[256];
    assert_int_equal(conf_set_pair(test_table, c, "count=5", err, sizeof(err)), 0);
    assert_int_equal(c->count, 5);
    assert_int_equal(conf_set_pair(test_table, c, "name=a=b", err, sizeof(err)), 0);
    assert_string_equal(c->name, "a=b");
    assert_int_equal(conf_set_pair(test_table, c, "extra=", err, sizeof(err)), 0);
    assert_string_equal(c->extra, "");
    assert_int_equal(conf_set_pair(test_table, c, "verbose=on", err, sizeof(err)), 0);
    assert_int_equal(c->verbose, 1);

    assert_int_equal(conf_set_pair(test_table, c, "=5", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "key=value"));
    assert_int_equal(conf_set_pair(test_table, c, "count", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "key=value"));
    assert_int_equal(conf_set_pair(test_table, c, "nope=1", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nope"));
    assert_int_equal(conf_set_pair(test_table, c, "count=1000", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "count"));
    assert_int_equal(c->count, 5);

    char longkey[300];
    memset(longkey, 'k', 200);
    strcpy(longkey + 200, "=1");
    assert_int_equal(conf_set_pair(test_table, c, longkey, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "too long"));
}

static void test_set_by_name(void **state)
{
    struct test_conf *c = *state;
    char err[256];
    assert_int_equal(conf_set(test_table, c, "extra", "x", err, sizeof(err)), 0);
    assert_string_equal(c->extra, "x");
    /* A NULL string value unsets it. */
    assert_int_equal(conf_set(test_table, c, "extra", NULL, err, sizeof(err)), 0);
    assert_null(c->extra);
    assert_int_equal(conf_set(test_table, c, "count", NULL, err, sizeof(err)), -1);
    assert_int_equal(conf_set(test_table, c, "verbose", NULL, err, sizeof(err)), -1);
}

/* Write text to a fresh temporary file; returns its path (static buffer). */
static const char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/carrel-test-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

/*
 * conf_load_file grows its buffer to twice (length + 1) for a small file.
 * Leave a freed block of that size full of non-zero bytes, so that the loader
 * is likely to get it back from malloc (glibc reuses it at once): text that
 * is not terminated then shows up as garbage instead of passing by luck.
 * Under ASan, fresh blocks are filled with 0xbe anyway.
 */
static void dirty_heap_for(const char *text)
{
    size_t n = 2 * (strlen(text) + 1);
    char *p = malloc(n);
    assert_non_null(p);
    memset(p, 'x', n);
    /* Keep the compiler from dropping the stores to a block about to be freed. */
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
}

/* Only a regular file is read: a FIFO (whose read would block a reload's worker, and the
 * shutdown waiting for it, for ever) or a directory is refused at once. */
static void test_load_file_not_regular(void **state)
{
    struct test_conf *c = *state;
    char dir[] = "/tmp/carrel-test-conf-dir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char fifo[sizeof(dir) + 8];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    char err[256];
    assert_int_equal(conf_load_file(test_table, c, fifo, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a regular file"));
    assert_int_equal(conf_load_file(test_table, c, dir, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a regular file"));
    unlink(fifo);
    rmdir(dir);
}

/*
 * Regression: conf_load_file must terminate the text it read; otherwise what
 * follows the file's bytes in the heap block is parsed too (a spurious
 * "expected 'key = value'", or a heap-buffer-overflow under ASan).
 */
static void test_load_file(void **state)
{
    struct test_conf *c = *state;
    const char *text = "# desk profile\nname = \"Reading Room\"\ncount = 12\n";
    const char *path = write_temp(text);
    char err[256] = "";
    dirty_heap_for(text);
    int rc = conf_load_file(test_table, c, path, err, sizeof(err));
    unlink(path);
    if (rc != 0)
        fail_msg("conf_load_file: %s", err);
    assert_string_equal(c->name, "Reading Room");
    assert_int_equal(c->count, 12);
}

/* A file larger than the loader's read chunk, with the setting at the very end. */
static void test_load_large_file(void **state)
{
    struct test_conf *c = *state;
    size_t pad = 20000;
    char *text = malloc(pad + 64);
    assert_non_null(text);
    for (size_t i = 0; i < pad; i += 10)
        memcpy(text + i, "# padding\n", 10);
    strcpy(text + pad, "count = 99\n");
    const char *path = write_temp(text);
    free(text);
    char err[256] = "";
    int rc = conf_load_file(test_table, c, path, err, sizeof(err));
    unlink(path);
    assert_int_equal(rc, 0);
    assert_int_equal(c->count, 99);
}

static void test_load_file_error_names_path(void **state)
{
    struct test_conf *c = *state;
    const char *text = "name = x\ncount = zero\n";
    const char *path = write_temp(text);
    char err[256] = "";
    char saved[64];
    snprintf(saved, sizeof(saved), "%s", path);
    dirty_heap_for(text);
    int rc = conf_load_file(test_table, c, path, err, sizeof(err));
    unlink(path);
    assert_int_equal(rc, -1);
    char where[80];
    snprintf(where, sizeof(where), "%s:2", saved);
    if (strstr(err, where) == NULL)
        fail_msg("error '%s' does not name '%s'", err, where);
}

static void test_load_empty_file(void **state)
{
    struct test_conf *c = *state;
    const char *path = write_temp("");
    char err[256] = "";
    int rc = conf_load_file(test_table, c, path, err, sizeof(err));
    unlink(path);
    assert_int_equal(rc, 0);
    assert_string_equal(c->name, "carrel");
}

static void test_load_missing_file(void **state)
{
    struct test_conf *c = *state;
    char err[256] = "";
    const char *path = "/nonexistent/carrel/test.conf";
    assert_int_equal(conf_load_file(test_table, c, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(ENOENT)));
    assert_string_equal(c->name, "carrel");
}

/* conf_dump writes what conf_parse reads back to the same values. */
static void test_dump_parses_back(void **state)
{
    struct test_conf *c = *state;
    parse_ok(c, "name = \"Main # Branch\"\ncount = 64\nverbose = true\n");
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    conf_dump(test_table, c, out);
    fclose(out);
    assert_non_null(strstr(text, "count = 64\n"));
    assert_non_null(strstr(text, "verbose = true\n"));
    assert_non_null(strstr(text, "extra is not set"));

    struct test_conf back;
    memset(&back, 0, sizeof(back));
    assert_int_equal(conf_defaults(test_table, &back), 0);
    char err[256] = "";
    int rc = conf_parse(test_table, &back, text, "dump", err, sizeof(err));
    free(text);
    if (rc != 0)
        fail_msg("dump does not parse back: %s", err);
    assert_string_equal(back.name, "Main # Branch");
    assert_int_equal(back.count, 64);
    assert_int_equal(back.verbose, 1);
    assert_null(back.extra);
    conf_free(test_table, &back);
}

static void test_print_help_lists_every_entry(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    conf_print_help(test_table, out);
    fclose(out);
    assert_non_null(strstr(text, "count"));
    assert_non_null(strstr(text, "how many (default: 10)"));
    assert_non_null(strstr(text, "optional (default: unset)"));
    assert_null(strstr(text, "reload"));
    free(text);
    /* A setting a reload applies says so; the others say nothing. */
    static const conf_entry_t flagged[] = {
        {"level", CONF_STRING, T(name), "info", 0, 0, "how much", CONF_RELOADABLE},
        {"port", CONF_INT, T(count), "7", 1, 9, "where", 0},
        CONF_END,
    };
    out = open_memstream(&text, &len);
    assert_non_null(out);
    conf_print_help(flagged, out);
    fclose(out);
    assert_non_null(strstr(text, "how much (default: info; a reload applies it)\n"));
    assert_non_null(strstr(text, "where (default: 7)\n"));
    free(text);
}

static void test_free_clears_strings(void **state)
{
    struct test_conf *c = *state;
    parse_ok(c, "name = a\nextra = b\n");
    conf_free(test_table, c);
    assert_null(c->name);
    assert_null(c->extra);
    /* A second free is harmless; the teardown does a third. */
    conf_free(test_table, c);
    assert_int_equal(c->count, 10);
}

/*
 * The real tables: defaults load, every entry has help text, and every
 * integer default lies within its bounds.
 */
static void check_table(const conf_entry_t *table, void *target)
{
    size_t entries = 0;
    for (const conf_entry_t *e = table; e->name; e++, entries++) {
        if (e->help == NULL || e->help[0] == '\0')
            fail_msg("%s has no help text", e->name);
        if (e->type == CONF_INT) {
            if (e->def == NULL)
                fail_msg("%s: an integer needs a default", e->name);
            char *end;
            long v = strtol(e->def, &end, 10);
            if (*end != '\0')
                fail_msg("%s: default '%s' is not a number", e->name, e->def);
            if (e->min > e->max)
                fail_msg("%s: bounds %ld..%ld are reversed", e->name, e->min, e->max);
            if (v < e->min || v > e->max)
                fail_msg("%s: default %ld is outside %ld..%ld", e->name, v, e->min, e->max);
            if (*(const long *)((const char *)target + e->offset) != v)
                fail_msg("%s: conf_defaults did not store %ld", e->name, v);
        } else if (e->type == CONF_BOOL) {
            assert_non_null(e->def);
        } else if (e->def) {
            const char *s = *(char *const *)((const char *)target + e->offset);
            assert_non_null(s);
            assert_string_equal(s, e->def);
        }
        for (const conf_entry_t *f = table; f != e; f++)
            if (strcmp(f->name, e->name) == 0)
                fail_msg("%s appears twice", e->name);
    }
    assert_true(entries > 0);
}

static void test_server_config_table(void **state)
{
    (void)state;
    struct server_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(conf_defaults(server_config_table, &cfg), 0);
    check_table(server_config_table, &cfg);
    assert_string_equal(cfg.listen_host, "127.0.0.1");
    assert_int_equal(cfg.listen_port, 7420);
    assert_int_equal(cfg.tls_require_client_cert, 1); /* with a client CA, required */
    assert_null(cfg.tls_cert);
    assert_true(cfg.max_frame_bytes_login <= cfg.max_frame_bytes);
    conf_free(server_config_table, &cfg);
    assert_null(cfg.listen_host);
}

static void test_profile_table(void **state)
{
    (void)state;
    profile_t p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(conf_defaults(profile_table, &p), 0);
    check_table(profile_table, &p);
    assert_string_equal(p.host, "127.0.0.1");
    assert_int_equal(p.port, 7420);
    assert_int_equal(p.timeout_s, 30);
    assert_null(p.user);
    profile_free(&p);
    assert_null(p.host);
}

/* profile_load: paths in a profile are taken relative to the profile's directory. */
static void test_profile_load_resolves_paths(void **state)
{
    (void)state;
    const char *text = "host = lib.example\nca_file = ca.pem\ncert_file = /abs/ws.pem\n";
    const char *path = write_temp(text);
    char saved[64];
    snprintf(saved, sizeof(saved), "%s", path);
    profile_t p;
    char err[256] = "";
    dirty_heap_for(text);
    int rc = profile_load(&p, saved, err, sizeof(err));
    unlink(saved);
    if (rc != 0) {
        profile_free(&p); /* profile_load leaves the defaults allocated on failure */
        fail_msg("profile_load: %s", err);
    }
    assert_string_equal(p.host, "lib.example");
    assert_string_equal(p.ca_file, "/tmp/ca.pem");
    assert_string_equal(p.cert_file, "/abs/ws.pem");
    assert_null(p.key_file);
    profile_free(&p);
}

/* ---- the reload's diff helpers ---- */

/* A second struct with defaults, freed by the caller. */
static struct test_conf *conf_other(void)
{
    struct test_conf *o = calloc(1, sizeof(*o));
    assert_non_null(o);
    assert_int_equal(conf_defaults(test_table, o), 0);
    return o;
}

static void conf_other_free(struct test_conf *o)
{
    conf_free(test_table, o);
    free(o);
}

static void test_diff_none_when_equal(void **state)
{
    struct test_conf *c = *state;
    struct test_conf *o = conf_other();
    const conf_entry_t *changed[4];
    assert_int_equal(conf_diff(test_table, c, o, changed, 4), 0);
    /* The same strings at other addresses are still equal. */
    assert_ptr_not_equal(c->name, o->name);
    for (const conf_entry_t *e = test_table; e->name; e++)
        assert_true(conf_entry_equal(e, c, o));
    conf_other_free(o);
}

static void test_diff_lists_each_changed_entry_in_order(void **state)
{
    struct test_conf *c = *state;
    struct test_conf *o = conf_other();
    parse_ok(c, "verbose = true\nname = other\n");
    const conf_entry_t *changed[4];
    assert_int_equal(conf_diff(test_table, c, o, changed, 4), 2);
    assert_string_equal(changed[0]->name, "name");
    assert_string_equal(changed[1]->name, "verbose");
    /* Symmetric. */
    assert_int_equal(conf_diff(test_table, o, c, changed, 4), 2);
    conf_other_free(o);
}

static void test_diff_null_string_against_set(void **state)
{
    struct test_conf *c = *state;
    struct test_conf *o = conf_other();
    parse_ok(o, "extra = \"\"\n"); /* set, empty: not the same as unset */
    const conf_entry_t *changed[4];
    assert_int_equal(conf_diff(test_table, c, o, changed, 4), 1);
    assert_string_equal(changed[0]->name, "extra");
    parse_ok(c, "extra = \"\"\n");
    assert_int_equal(conf_diff(test_table, c, o, changed, 4), 0);
    conf_other_free(o);
}

static void test_diff_counts_past_max(void **state)
{
    struct test_conf *c = *state;
    struct test_conf *o = conf_other();
    parse_ok(c, "name = a\ncount = 11\nverbose = yes\nextra = b\n");
    const conf_entry_t *changed[2] = {NULL, NULL};
    assert_int_equal(conf_diff(test_table, c, o, changed, 2), 4);
    assert_string_equal(changed[0]->name, "name");
    assert_string_equal(changed[1]->name, "count");
    assert_int_equal(conf_diff(test_table, c, o, NULL, 0), 4);
    conf_other_free(o);
}

/* A move hands the string over: the pointer stays valid, the source's slot is emptied. */
static void test_entry_move_keeps_pointer(void **state)
{
    struct test_conf *c = *state;
    struct test_conf *o = conf_other();
    parse_ok(o, "name = moved\ncount = 42\n");
    char *before = o->name;
    conf_entry_move(&test_table[0], c, o);
    conf_entry_move(&test_table[1], c, o);
    assert_ptr_equal(c->name, before);
    assert_string_equal(c->name, "moved");
    assert_null(o->name);
    assert_int_equal(c->count, 42);
    conf_other_free(o); /* frees nothing it gave away (ASan: no double free) */
}

static void test_copy_is_deep(void **state)
{
    struct test_conf *c = *state;
    parse_ok(c, "name = deep\nextra = e\ncount = 7\n");
    struct test_conf *o = conf_other();
    assert_int_equal(conf_copy(test_table, o, c), 0);
    assert_int_equal(conf_diff(test_table, c, o, NULL, 0), 0);
    assert_ptr_not_equal(c->name, o->name);
    assert_ptr_not_equal(c->extra, o->extra);
    conf_other_free(o);
    assert_string_equal(c->name, "deep"); /* still ours */
}

static void test_entry_format(void **state)
{
    struct test_conf *c = *state;
    char buf[32];
    conf_entry_format(&test_table[0], c, buf, sizeof(buf));
    assert_string_equal(buf, "carrel");
    conf_entry_format(&test_table[1], c, buf, sizeof(buf));
    assert_string_equal(buf, "10");
    conf_entry_format(&test_table[2], c, buf, sizeof(buf));
    assert_string_equal(buf, "false");
    conf_entry_format(&test_table[3], c, buf, sizeof(buf));
    assert_string_equal(buf, "unset");
}

/* The daemon's table: a diff of defaults against a reloaded copy with one reloadable and
 * one restart-only change names exactly those two, with the flags the table gives. */
static void test_server_config_diff_flags(void **state)
{
    (void)state;
    struct server_config a = {0}, b = {0};
    assert_int_equal(conf_defaults(server_config_table, &a), 0);
    assert_int_equal(conf_defaults(server_config_table, &b), 0);
    char err[256];
    assert_int_equal(conf_set_pair(server_config_table, &b, "max_inflight=5", err, sizeof(err)), 0);
    assert_int_equal(conf_set_pair(server_config_table, &b, "listen_port=1", err, sizeof(err)), 0);
    const conf_entry_t *changed[8];
    assert_int_equal(conf_diff(server_config_table, &a, &b, changed, 8), 2);
    assert_string_equal(changed[0]->name, "listen_port");
    assert_int_equal(changed[0]->flags & CONF_RELOADABLE, 0);
    assert_string_equal(changed[1]->name, "max_inflight");
    assert_int_not_equal(changed[1]->flags & CONF_RELOADABLE, 0);
    conf_free(server_config_table, &a);
    conf_free(server_config_table, &b);
}

/* server_config_validate checks the restart-only settings too: a file the next start would
 * refuse is refused by --check-config and by a reload. */
static void test_server_config_validate_restart_settings(void **state)
{
    (void)state;
    const char *bad[][2] = {
        {"listen_host=localhost", "listen_host"},
        {"sip_listen_port=6001", NULL},  /* with sip_listen_host below */
        {"metrics_listen_host=x", NULL}, /* ignored while metrics_listen_port is 0 */
        {"db_conninfo=host", "db_conninfo does not parse"},
        {"stats_conninfo=dbname='x", "stats_conninfo does not parse"},
        {"sql_dir=/nonexistent/carrel-sql", "sql_dir"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct server_config cfg = {0};
        char err[512] = "";
        assert_int_equal(conf_defaults(server_config_table, &cfg), 0);
        assert_int_equal(
            conf_set_pair(server_config_table, &cfg, "tls_cert=a.crt", err, sizeof(err)), 0);
        assert_int_equal(
            conf_set_pair(server_config_table, &cfg, "tls_key=a.key", err, sizeof(err)), 0);
        assert_int_equal(conf_set_pair(server_config_table, &cfg, "sql_dir=/", err, sizeof(err)),
                         0);
        assert_int_equal(server_config_validate(&cfg, err, sizeof(err)), 0);
        assert_int_equal(conf_set_pair(server_config_table, &cfg, bad[i][0], err, sizeof(err)), 0);
        if (bad[i][1] == NULL) {
            assert_int_equal(server_config_validate(&cfg, err, sizeof(err)), 0);
        } else {
            assert_int_equal(server_config_validate(&cfg, err, sizeof(err)), -1);
            if (strstr(err, bad[i][1]) == NULL)
                fail_msg("%s: %s", bad[i][0], err);
        }
        if (i == 1) { /* the SIP2 port on: its host is checked */
            assert_int_equal(
                conf_set_pair(server_config_table, &cfg, "sip_listen_host=foo", err, sizeof(err)),
                0);
            assert_int_equal(server_config_validate(&cfg, err, sizeof(err)), -1);
            assert_non_null(strstr(err, "sip_listen_host"));
        }
        conf_free(server_config_table, &cfg);
    }
}

#define CONF_TEST(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CONF_TEST(test_defaults),
        CONF_TEST(test_defaults_reset_values),
        CONF_TEST(test_parse_comments_and_blank_lines),
        CONF_TEST(test_parse_empty_text),
        CONF_TEST(test_parse_crlf_lines),
        CONF_TEST(test_parse_quoted_values),
        CONF_TEST(test_parse_unquoted_trailing_comment),
        CONF_TEST(test_parse_empty_string_value),
        CONF_TEST(test_parse_later_line_wins),
        CONF_TEST(test_parse_unknown_key),
        CONF_TEST(test_parse_bad_int),
        CONF_TEST(test_parse_int_bounds),
        CONF_TEST(test_parse_bools),
        CONF_TEST(test_parse_missing_equals),
        CONF_TEST(test_parse_unterminated_quote),
        CONF_TEST(test_parse_empty_key),
        CONF_TEST(test_parse_error_truncated_to_buffer),
        CONF_TEST(test_set_pair),
        CONF_TEST(test_set_by_name),
        CONF_TEST(test_load_file),
        CONF_TEST(test_load_file_not_regular),
        CONF_TEST(test_load_large_file),
        CONF_TEST(test_load_file_error_names_path),
        CONF_TEST(test_load_empty_file),
        CONF_TEST(test_load_missing_file),
        CONF_TEST(test_dump_parses_back),
        CONF_TEST(test_print_help_lists_every_entry),
        CONF_TEST(test_free_clears_strings),
        CONF_TEST(test_diff_none_when_equal),
        CONF_TEST(test_diff_lists_each_changed_entry_in_order),
        CONF_TEST(test_diff_null_string_against_set),
        CONF_TEST(test_diff_counts_past_max),
        CONF_TEST(test_entry_move_keeps_pointer),
        CONF_TEST(test_copy_is_deep),
        CONF_TEST(test_entry_format),
        cmocka_unit_test(test_server_config_diff_flags),
        cmocka_unit_test(test_server_config_table),
        cmocka_unit_test(test_server_config_validate_restart_settings),
        cmocka_unit_test(test_profile_table),
        cmocka_unit_test(test_profile_load_resolves_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
