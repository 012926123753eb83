/*
 * offline: the desk's cache, clock offset, provisional due dates and the
 * upload of its journal (offline.h).
 */
#include "offline.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "status.h"
#include "util.h"

/* ---- where ---- */

char *offline_dir(const cli_t *cli, bool *off)
{
    *off = false;
    const char *set = cli->profile.offline_dir;
    if (set && strcmp(set, "off") == 0) {
        *off = true;
        return NULL;
    }
    if (set && set[0])
        return util_xstrdup(set);
    char *dir = NULL;
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    if (state && state[0] == '/') {
        if (asprintf(&dir, "%s/carrel", state) < 0)
            dir = NULL;
    } else if (home && home[0]) {
        if (asprintf(&dir, "%s/.local/state/carrel", home) < 0)
            dir = NULL;
    }
    return dir;
}

char *offline_cache_path(const char *dir, const char *workstation)
{
    char *path = NULL;
    if (asprintf(&path, "%s/%s.cache", dir, workstation) < 0)
        return NULL;
    return path;
}

int offline_prune_done(const char *dir, const char *workstation)
{
    DIR *dh = opendir(dir);
    if (dh == NULL)
        return 0;
    char prefix[300];
    snprintf(prefix, sizeof(prefix), "%s.journal.", workstation);
    size_t plen = strlen(prefix);
    time_t before = time(NULL) - (time_t)OFFLINE_DONE_KEEP_DAYS * 86400;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n <= plen + 5 || strncmp(de->d_name, prefix, plen) != 0 ||
            strcmp(de->d_name + n - 5, ".done") != 0)
            continue;
        char *path = NULL;
        struct stat st;
        if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
            break;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime < before &&
            unlink(path) == 0)
            removed++;
        free(path);
    }
    closedir(dh);
    return removed;
}

/* ---- the cache file ---- */

static size_t offline_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/* Write all of data to fd; 0 or -1 (errno set). */
static int offline_write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int offline_cache_save(const char *path, const Carrel__OfflineCache *c, int64_t offset_ms,
                       char *err, size_t errlen)
{
    size_t len = carrel__offline_cache__get_packed_size(c);
    uint8_t *data = malloc(len + 24);
    if (data == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    carrel__offline_cache__pack(c, data);
    /* The offset as field 1000, a sint64 (zigzag varint). */
    len += offline_varint(data + len, (uint64_t)OFFLINE_OFFSET_FIELD << 3);
    len += offline_varint(data + len, ((uint64_t)offset_ms << 1) ^ (uint64_t)(offset_ms >> 63));

    char *tmp = NULL, *copy = util_xstrdup(path);
    int rc = -1, fd = -1;
    if (asprintf(&tmp, "%s.tmp", path) < 0) {
        tmp = NULL;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || offline_write_all(fd, data, len) != 0 || journal_sync(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
        goto out;
    }
    char *slash = strrchr(copy, '/');
    if (slash)
        *slash = '\0';
    if (journal_dir_sync(slash ? copy : ".") != 0) {
        snprintf(err, errlen, "cannot sync the directory of %s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp)
        (void)unlink(tmp);
    free(tmp);
    free(copy);
    free(data);
    return rc;
}

Carrel__OfflineCache *offline_cache_load(const char *path, int64_t *offset_ms, char *err,
                                         size_t errlen)
{
    *offset_ms = 0;
    size_t len = 0;
    uint8_t *data = util_read_all(path, &len);
    if (data == NULL) {
        int saved = errno;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(saved));
        errno = saved;
        return NULL;
    }
    Carrel__OfflineCache *c = carrel__offline_cache__unpack(NULL, len, data);
    free(data);
    if (c == NULL) {
        snprintf(err, errlen, "%s is not an offline cache", path);
        errno = EINVAL;
        return NULL;
    }
    for (unsigned i = 0; i < c->base.n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *f = &c->base.unknown_fields[i];
        if (f->tag != OFFLINE_OFFSET_FIELD || f->wire_type != PROTOBUF_C_WIRE_TYPE_VARINT)
            continue;
        uint64_t v = 0;
        for (size_t k = 0; k < f->len && k < 10; k++)
            v |= (uint64_t)(f->data[k] & 0x7F) << (7 * k);
        *offset_ms = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
    }
    return c;
}

/* ---- clock and rules ---- */

int64_t offline_offset(int64_t server_ms, int64_t sent_ms, int64_t received_ms)
{
    return server_ms - (sent_ms + (received_ms - sent_ms) / 2);
}

static bool offline_closed(const Carrel__OfflineCache *c, const char *day)
{
    for (size_t i = 0; i < c->n_closed_days; i++)
        if (c->closed_days[i] && strcmp(c->closed_days[i], day) == 0)
            return true;
    return false;
}

bool offline_due_date(const Carrel__OfflineCache *c, int64_t at_ms, char out[11])
{
    out[0] = '\0';
    if (c == NULL || !c->has_default_loan_days || c->default_loan_days <= 0)
        return false;
    time_t at = (time_t)(at_ms / 1000);
    struct tm tm;
    if (localtime_r(&at, &tm) == NULL)
        return false;
    /* Noon, so that a daylight-saving change never moves the date. */
    tm.tm_hour = 12;
    tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    tm.tm_mday += c->default_loan_days;
    /* Closed days are at most the next 90; a year of them is a broken cache. */
    for (int tries = 0; tries < 366; tries++) {
        struct tm day = tm;
        if (mktime(&day) == (time_t)-1)
            return false;
        char text[16];
        if (strftime(text, sizeof(text), "%Y-%m-%d", &day) != 10)
            return false;
        if (!offline_closed(c, text)) {
            memcpy(out, text, 11);
            return true;
        }
        tm.tm_mday++;
    }
    return false;
}

const char *offline_blocked(const Carrel__OfflineCache *c, const char *card)
{
    if (c == NULL || card == NULL)
        return NULL;
    for (size_t i = 0; i < c->n_blocked; i++) {
        const Carrel__OfflineBlockedCard *b = c->blocked[i];
        if (b->card && strcmp(b->card, card) == 0)
            return b->reason && b->reason[0] ? b->reason : "blocked";
    }
    return NULL;
}

/* ---- upload ---- */

/* A refusal the same entry would get again, whoever sent it: not worth keeping. */
static bool offline_refusal_permanent(const Carrel__Response *r)
{
    return r->status == CARREL__STATUS__STATUS_BAD_REQUEST ||
           (r->status == CARREL__STATUS__STATUS_CONFLICT && r->reason &&
            strcmp(r->reason, "request_key_reused") == 0);
}

/*
 * Send one entry's replay and wait. The answer (free it), with *refused set
 * when it is a permanent refusal (offline_refusal_permanent); or NULL with
 * why set (the connection lost, or a refusal that may pass later).
 */
static Carrel__Response *offline_replay_one(cli_t *cli, const journal_entry_t *e, bool *refused,
                                            char *why, size_t whylen)
{
    Carrel__Request req = CARREL__REQUEST__INIT;
    Carrel__OfflineReplay rp = CARREL__OFFLINE_REPLAY__INIT;
    rp.op = (char *)e->op;
    rp.card = e->card[0] ? (char *)e->card : NULL;
    rp.barcode = e->barcode[0] ? (char *)e->barcode : NULL;
    rp.has_at_ms = rp.has_workstation_ms = rp.has_offset_ms = 1;
    rp.at_ms = e->upload_at_ms;
    rp.workstation_ms = e->ws_ms;
    rp.offset_ms = e->offset_ms;
    rp.due = e->due[0] ? (char *)e->due : NULL;
    rp.clerk = e->clerk[0] ? (char *)e->clerk : NULL;
    req.body_case = CARREL__REQUEST__BODY_OFFLINE_REPLAY;
    req.offline_replay = &rp;
    req.request_key = (char *)e->key;
    Carrel__Response *r = NULL;
    *refused = false;
    if (client_call(&cli->conn, &req, &r) != 0) {
        snprintf(why, whylen, "%s", cli->conn.error[0] ? cli->conn.error : "connection lost");
        return NULL;
    }
    if (r->status == CARREL__STATUS__STATUS_OK &&
        r->body_case == CARREL__RESPONSE__BODY_OFFLINE_REPLAYED)
        return r;
    if (offline_refusal_permanent(r)) {
        *refused = true;
        return r;
    }
    snprintf(why, whylen, "the server refused the replay of %s [%s]: %s",
             e->barcode[0] ? e->barcode : e->card,
             r->reason && r->reason[0] ? r->reason : status_name(r->status),
             r->message && r->message[0] ? r->message : "(no message)");
    carrel__response__free_unpacked(r, NULL);
    return NULL;
}

int offline_upload(cli_t *cli, journal_t *j, offline_summary_t *s,
                   void (*on_entry)(void *arg, const journal_entry_t *e,
                                    const Carrel__OfflineReplayReply *r),
                   void *arg)
{
    memset(s, 0, sizeof(*s));
    size_t n = 0;
    size_t *order = journal_upload_order(j, &n);
    int rc = 0;
    for (size_t k = 0; k < n; k++) {
        const journal_entry_t *e = &j->entries[order[k]];
        bool refused;
        Carrel__Response *r = offline_replay_one(cli, e, &refused, s->why, sizeof(s->why));
        if (r == NULL) {
            s->stopped = true;
            s->left = (int)(n - k);
            break;
        }
        /* A permanent refusal goes on as a skipped entry with the server's
         * reason: kept pending it would stop every later upload here. */
        Carrel__OfflineReplayReply said = CARREL__OFFLINE_REPLAY_REPLY__INIT;
        if (refused) {
            said.outcome = "skipped";
            said.reason = r->reason && r->reason[0] ? r->reason : "bad_request";
            said.message = r->message;
        }
        const Carrel__OfflineReplayReply *x = refused ? &said : r->offline_replayed;
        const char *outcome = x->outcome && x->outcome[0] ? x->outcome : "applied";
        if (strcmp(outcome, "warning") == 0)
            s->warnings++;
        else if (strcmp(outcome, "skipped") == 0)
            s->skipped++;
        else
            s->applied++;
        if (on_entry)
            on_entry(arg, e, x);
        char err[300];
        /* Marked before the next is sent: a resumed upload starts after it. Were
         * the mark lost, the resend would get the stored answer (same key). */
        if (journal_mark_done(j, e->key, outcome, x->reason, err, sizeof(err)) != 0) {
            snprintf(s->why, sizeof(s->why), "%s", err);
            s->stopped = true;
            s->left = (int)(n - k - 1);
            rc = -1;
            carrel__response__free_unpacked(r, NULL);
            break;
        }
        carrel__response__free_unpacked(r, NULL);
    }
    free(order);
    if (rc == 0 && !s->stopped) {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
        char err[300];
        int fin = journal_finish(j, stamp, err, sizeof(err));
        if (fin < 0) {
            snprintf(s->why, sizeof(s->why), "%s", err);
            rc = -1;
        }
        s->renamed = fin == 1;
    }
    return rc;
}
