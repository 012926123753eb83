/*
 * journal: the offline desk's append-only journal (journal.h).
 */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "util.h"

int (*journal_sync)(int fd) = fsync;

/* ---- directories ---- */

int journal_dir_sync(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = journal_sync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int journal_dir_make(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s is not a directory", dir);
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    /* The parent first (mkdir -p), then this one, made durable in its parent. */
    char *copy = util_xstrdup(dir);
    char *parent = util_xstrdup(dirname(copy));
    free(copy);
    int rc = 0;
    if (strcmp(parent, dir) != 0 && strcmp(parent, "/") != 0 && strcmp(parent, ".") != 0)
        rc = journal_dir_make(parent, err, errlen);
    if (rc == 0 && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot make %s: %s", dir, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && journal_dir_sync(parent) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", parent, strerror(errno));
        rc = -1;
    }
    free(parent);
    return rc;
}

/*
 * One writer a journal: a desk keeps its journal locked while it runs, so
 * that `carrel offline upload` beside it (or a second desk of the same
 * workstation) cannot rename the file under it; the lock goes with the file
 * descriptor.
 */
static int journal_lock(journal_t *j, char *err, size_t errlen)
{
    if (flock(j->fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    if (errno == EWOULDBLOCK)
        snprintf(err, errlen,
                 "the journal %s is in use (a desk of this workstation is running; it uploads "
                 "by itself)",
                 j->path);
    else
        snprintf(err, errlen, "cannot lock %s: %s", j->path, strerror(errno));
    return -1;
}

/* ---- reading ---- */

/* A JSON string at *p (after its opening quote) into out; false if malformed or too long. */
static bool journal_parse_string(const char **p, const char *end, char *out, size_t outlen)
{
    size_t n = 0;
    const char *s = *p;
    while (s < end && *s != '"') {
        unsigned char c = (unsigned char)*s++;
        char buf[4];
        size_t len = 1;
        buf[0] = (char)c;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (s >= end)
                return false;
            char e = *s++;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                buf[0] = e;
                break;
            case 'n':
                buf[0] = '\n';
                break;
            case 'r':
                buf[0] = '\r';
                break;
            case 't':
                buf[0] = '\t';
                break;
            case 'b':
                buf[0] = '\b';
                break;
            case 'f':
                buf[0] = '\f';
                break;
            case 'u': {
                if (end - s < 4)
                    return false;
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = s[i];
                    v <<= 4;
                    if (h >= '0' && h <= '9')
                        v |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f')
                        v |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F')
                        v |= (unsigned)(h - 'A' + 10);
                    else
                        return false;
                }
                s += 4;
                if (v == 0)
                    return false;
                if (v < 0x80) {
                    buf[0] = (char)v;
                } else if (v < 0x800) {
                    buf[0] = (char)(0xC0 | (v >> 6));
                    buf[1] = (char)(0x80 | (v & 0x3F));
                    len = 2;
                } else {
                    buf[0] = (char)(0xE0 | (v >> 12));
                    buf[1] = (char)(0x80 | ((v >> 6) & 0x3F));
                    buf[2] = (char)(0x80 | (v & 0x3F));
                    len = 3;
                }
                break;
            }
            default:
                return false;
            }
        }
        if (n + len >= outlen)
            return false;
        memcpy(out + n, buf, len);
        n += len;
    }
    if (s >= end)
        return false;
    out[n] = '\0';
    *p = s + 1;
    return true;
}

static void journal_skip_space(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
}

/* Store a string value under its key; false when it does not fit. */
static bool journal_set_string(journal_entry_t *e, const char *key, const char *value,
                               bool *is_done)
{
    struct {
        const char *name;
        char *field;
        size_t size;
    } fields[] = {
        {"key", e->key, sizeof(e->key)},
        {"op", e->op, sizeof(e->op)},
        {"card", e->card, sizeof(e->card)},
        {"barcode", e->barcode, sizeof(e->barcode)},
        {"due", e->due, sizeof(e->due)},
        {"clerk", e->clerk, sizeof(e->clerk)},
        {"outcome", e->outcome, sizeof(e->outcome)},
        {"done", e->key, sizeof(e->key)},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (strcmp(key, fields[i].name) != 0)
            continue;
        if (strlen(value) >= fields[i].size)
            return false;
        memcpy(fields[i].field, value, strlen(value) + 1);
        if (strcmp(key, "done") == 0)
            *is_done = true;
        return true;
    }
    return true; /* a field a later version added: ignored */
}

static void journal_set_int(journal_entry_t *e, const char *key, int64_t v, int64_t *version)
{
    if (strcmp(key, "v") == 0)
        *version = v;
    else if (strcmp(key, "seq") == 0)
        e->seq = v;
    else if (strcmp(key, "ws_ms") == 0)
        e->ws_ms = v;
    else if (strcmp(key, "offset_ms") == 0)
        e->offset_ms = v;
    else if (strcmp(key, "at_ms") == 0)
        e->at_ms = v;
}

/*
 * A line of our own format: a flat object of strings and whole numbers, no
 * nesting (we wrote it; anything else is not ours and is skipped).
 */
int journal_parse_line(const char *line, size_t len, journal_entry_t *e)
{
    memset(e, 0, sizeof(*e));
    const char *p = line, *end = line + len;
    bool is_done = false;
    int64_t version = 0;
    journal_skip_space(&p, end);
    if (p >= end || *p++ != '{')
        return 0;
    journal_skip_space(&p, end);
    if (p < end && *p == '}')
        return 0;
    for (;;) {
        char key[16], value[JOURNAL_FIELD_MAX * 2];
        journal_skip_space(&p, end);
        if (p >= end || *p++ != '"' || !journal_parse_string(&p, end, key, sizeof(key)))
            return 0;
        journal_skip_space(&p, end);
        if (p >= end || *p++ != ':')
            return 0;
        journal_skip_space(&p, end);
        if (p < end && *p == '"') {
            p++;
            if (!journal_parse_string(&p, end, value, sizeof(value)) ||
                !journal_set_string(e, key, value, &is_done))
                return 0;
        } else {
            size_t n = 0;
            while (p + n < end && (p[n] == '-' || (p[n] >= '0' && p[n] <= '9')) && n < 24)
                n++;
            if (n == 0 || n >= 24)
                return 0;
            memcpy(value, p, n);
            value[n] = '\0';
            int64_t v;
            if (!util_parse_int(value, INT64_MIN, INT64_MAX, &v))
                return 0;
            journal_set_int(e, key, v, &version);
            p += n;
        }
        journal_skip_space(&p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '}') {
            p++;
            break;
        }
        return 0;
    }
    journal_skip_space(&p, end);
    if (p != end || version != 1 || !util_is_uuid(e->key))
        return 0;
    if (is_done)
        return e->outcome[0] ? 2 : 0;
    if (e->seq <= 0 || (strcmp(e->op, "checkout") != 0 && strcmp(e->op, "checkin") != 0 &&
                        strcmp(e->op, "renew") != 0))
        return 0;
    return 1;
}

static journal_entry_t *journal_find(journal_t *j, const char *key)
{
    for (size_t i = 0; i < j->n; i++)
        if (strcmp(j->entries[i].key, key) == 0)
            return &j->entries[i];
    return NULL;
}

static void journal_add(journal_t *j, const journal_entry_t *e)
{
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 32;
        journal_entry_t *grown = realloc(j->entries, cap * sizeof(*grown));
        if (grown == NULL) {
            fputs("carrel: out of memory\n", stderr);
            exit(1);
        }
        j->entries = grown;
        j->cap = cap;
    }
    j->entries[j->n++] = *e;
    if (e->seq > j->last_seq)
        j->last_seq = e->seq;
}

/* Take one whole line: an entry, a done marker (for an entry before it), or not ours. */
static void journal_take_line(journal_t *j, const char *line, size_t len)
{
    journal_entry_t e;
    int kind = journal_parse_line(line, len, &e);
    if (kind == 1 && journal_find(j, e.key) == NULL) {
        journal_add(j, &e);
        return;
    }
    if (kind == 2) {
        journal_entry_t *old = journal_find(j, e.key);
        if (old) {
            if (!old->done)
                j->ndone++;
            old->done = true;
            util_strlcpy(old->outcome, e.outcome, sizeof(old->outcome));
            return;
        }
    }
    j->bad++;
}

/* Parse the file's bytes; the length of the whole lines (where a torn tail begins). */
static size_t journal_parse(journal_t *j, const char *data, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        if (nl == NULL) {
            j->torn++; /* written in part when the desk stopped: never answered */
            break;
        }
        size_t n = (size_t)(nl - (data + pos));
        if (n > 0 && n <= JOURNAL_LINE_MAX)
            journal_take_line(j, data + pos, n);
        else if (n > JOURNAL_LINE_MAX)
            j->bad++;
        pos += n + 1;
    }
    return pos;
}

int journal_read(journal_t *j, const char *path, char *err, size_t errlen)
{
    memset(j, 0, sizeof(*j));
    j->fd = -1;
    j->path = util_xstrdup(path);
    size_t len = 0;
    uint8_t *data = util_read_all(path, &len);
    if (data == NULL) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        journal_close(j);
        return -1;
    }
    (void)journal_parse(j, (const char *)data, len);
    free(data);
    return 0;
}

int journal_open(journal_t *j, const char *dir, const char *name, char *err, size_t errlen)
{
    memset(j, 0, sizeof(*j));
    j->fd = -1;
    if (journal_dir_make(dir, err, errlen) != 0)
        return -1;
    j->dir = util_xstrdup(dir);
    if (asprintf(&j->path, "%s/%s.journal", dir, name) < 0) {
        j->path = NULL;
        snprintf(err, errlen, "out of memory");
        journal_close(j);
        return -1;
    }
    bool existed = access(j->path, F_OK) == 0;
    j->fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0 || journal_lock(j, err, errlen) != 0) {
        if (j->fd < 0)
            snprintf(err, errlen, "cannot open %s: %s", j->path, strerror(errno));
        journal_close(j);
        return -1;
    }
    if (!existed && journal_dir_sync(dir) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", dir, strerror(errno));
        journal_close(j);
        return -1;
    }
    size_t len = 0;
    uint8_t *data = util_read_all(j->path, &len);
    if (data == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", j->path, strerror(errno));
        journal_close(j);
        return -1;
    }
    size_t whole = journal_parse(j, (const char *)data, len);
    free(data);
    /* Appending after a torn tail would glue the next line to it: cut it off. */
    if (whole < len && (ftruncate(j->fd, (off_t)whole) != 0 || journal_sync(j->fd) != 0)) {
        snprintf(err, errlen, "cannot cut the torn last line of %s: %s", j->path, strerror(errno));
        journal_close(j);
        return -1;
    }
    return 0;
}

/* ---- writing ---- */

/* One line with one write() and one fsync(); on failure the file is cut back. */
static int journal_write_line(journal_t *j, json_t *line, char *err, size_t errlen)
{
    if (j->fd < 0 && j->path && j->dir) {
        /* After journal_finish: the next scan starts a new file. */
        j->fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (j->fd < 0 || journal_dir_sync(j->dir) != 0) {
            snprintf(err, errlen, "cannot open %s: %s", j->path, strerror(errno));
            return -1;
        }
        if (journal_lock(j, err, errlen) != 0) {
            close(j->fd);
            j->fd = -1;
            return -1;
        }
    }
    if (j->fd < 0) {
        snprintf(err, errlen, "the journal is not open");
        return -1;
    }
    if (buf_append(&line->out, "\n", 1) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct stat st;
    if (fstat(j->fd, &st) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", j->path, strerror(errno));
        return -1;
    }
    ssize_t n = write(j->fd, line->out.data, line->out.len);
    const char *what = "write";
    if (n == (ssize_t)line->out.len) {
        if (journal_sync(j->fd) == 0)
            return 0;
        what = "sync";
    } else if (n >= 0) {
        errno = ENOSPC; /* a short write: the disk is full */
    }
    int saved = errno;
    /* Nothing half-written may stay: the next line would be glued to it. The
     * line may also be whole but not durable; it is removed as well, since
     * the desk refuses the scan it holds. */
    (void)!ftruncate(j->fd, st.st_size);
    snprintf(err, errlen, "cannot %s %s: %s", what, j->path, strerror(saved));
    return -1;
}

int journal_append(journal_t *j, journal_entry_t *e, char *err, size_t errlen)
{
    e->seq = j->last_seq + 1;
    e->done = false;
    e->outcome[0] = '\0';
    json_t line;
    json_init(&line);
    json_object_begin(&line);
    json_key(&line, "v");
    json_int(&line, 1);
    json_key(&line, "seq");
    json_int(&line, e->seq);
    json_key(&line, "key");
    json_string(&line, e->key);
    json_key(&line, "op");
    json_string(&line, e->op);
    json_key(&line, "card");
    json_string(&line, e->card);
    json_key(&line, "barcode");
    json_string(&line, e->barcode);
    json_key(&line, "ws_ms");
    json_int(&line, e->ws_ms);
    json_key(&line, "offset_ms");
    json_int(&line, e->offset_ms);
    json_key(&line, "at_ms");
    json_int(&line, e->at_ms);
    json_key(&line, "due");
    json_string(&line, e->due);
    json_key(&line, "clerk");
    json_string(&line, e->clerk);
    json_object_end(&line);
    int rc = journal_write_line(j, &line, err, errlen);
    json_free(&line);
    if (rc == 0)
        journal_add(j, e);
    return rc;
}

int journal_mark_done(journal_t *j, const char *key, const char *outcome, const char *reason,
                      char *err, size_t errlen)
{
    journal_entry_t *e = journal_find(j, key);
    if (e == NULL) {
        snprintf(err, errlen, "no journal entry has key %s", key);
        return -1;
    }
    json_t line;
    json_init(&line);
    json_object_begin(&line);
    json_key(&line, "v");
    json_int(&line, 1);
    json_key(&line, "done");
    json_string(&line, key);
    json_key(&line, "outcome");
    json_string(&line, outcome);
    if (reason && reason[0]) {
        json_key(&line, "reason");
        json_string(&line, reason);
    }
    json_object_end(&line);
    int rc = journal_write_line(j, &line, err, errlen);
    json_free(&line);
    if (rc == 0) {
        if (!e->done)
            j->ndone++;
        e->done = true;
        util_strlcpy(e->outcome, outcome, sizeof(e->outcome));
    }
    return rc;
}

size_t journal_pending(const journal_t *j)
{
    return j->n - j->ndone;
}

static const journal_entry_t *journal_sort_base;

static int journal_seq_cmp(const void *a, const void *b)
{
    const journal_entry_t *x = &journal_sort_base[*(const size_t *)a];
    const journal_entry_t *y = &journal_sort_base[*(const size_t *)b];
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

size_t *journal_upload_order(journal_t *j, size_t *n)
{
    size_t *order = util_xcalloc(j->n ? j->n : 1, sizeof(*order));
    for (size_t i = 0; i < j->n; i++)
        order[i] = i;
    journal_sort_base = j->entries; /* qsort takes no argument; the client is one thread */
    qsort(order, j->n, sizeof(*order), journal_seq_cmp);
    /* Within one journal seq is the order things happened; a clock stepped
     * back (NTP) must not put a checkin before its checkout. Done entries
     * count too, so that a resumed upload clamps as the first one did. */
    int64_t floor = INT64_MIN;
    size_t k = 0;
    for (size_t i = 0; i < j->n; i++) {
        journal_entry_t *e = &j->entries[order[i]];
        e->upload_at_ms = e->at_ms > floor ? e->at_ms : floor;
        floor = e->upload_at_ms;
        if (!e->done)
            order[k++] = order[i];
    }
    *n = k;
    return order;
}

int journal_finish(journal_t *j, const char *stamp, char *err, size_t errlen)
{
    if (j->n == 0 || journal_pending(j) > 0 || j->path == NULL)
        return 0;
    char *done = NULL;
    if (asprintf(&done, "%s.%s.done", j->path, stamp) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (j->fd >= 0) {
        close(j->fd);
        j->fd = -1;
    }
    int rc = rename(j->path, done);
    if (rc != 0)
        snprintf(err, errlen, "cannot rename %s: %s", j->path, strerror(errno));
    else if (j->dir && journal_dir_sync(j->dir) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", j->dir, strerror(errno));
        rc = -1;
    }
    free(done);
    if (rc != 0)
        return -1;
    /* An empty journal again: the next scan starts a new file. */
    free(j->entries);
    j->entries = NULL;
    j->n = j->cap = j->ndone = 0;
    j->last_seq = 0;
    return 1;
}

void journal_close(journal_t *j)
{
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    free(j->entries);
    free(j->path);
    free(j->dir);
    memset(j, 0, sizeof(*j));
    j->fd = -1;
}
