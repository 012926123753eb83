/*
 * journal: the offline desk's append-only journal of scans (docs/OFFLINE.md,
 * "At the desk"). One file per workstation, <offline_dir>/<workstation>.journal,
 * mode 0600 in a directory of mode 0700. Text, one JSON object a line:
 *
 *   {"v":1,"seq":N,"key":UUID,"op":"checkout","card":...,"barcode":...,
 *    "ws_ms":...,"offset_ms":...,"at_ms":...,"due":"YYYY-MM-DD","clerk":...}
 *
 * for a scan, written with one write() and one fsync() before the desk
 * answers it, and
 *
 *   {"v":1,"done":UUID,"outcome":"applied","reason":...}
 *
 * once the server has answered its replay, so that an interrupted upload
 * goes on where it stopped. A crash can tear the last line only (one write
 * each, appended): the reader ignores a last line with no newline (counted in
 * `torn`), and journal_open cuts it off before appending. When every entry is
 * done the file is renamed <workstation>.journal.<YYYYmmddTHHMMSS>.done.
 *
 * Nothing here touches the network: the desk (desk.c) and the upload
 * (offline.c) use it. Every function that writes returns -1 with a sentence
 * in err when the disk refused, so that the desk can refuse the scan.
 */
#ifndef CARREL_JOURNAL_H
#define CARREL_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"

#define JOURNAL_FIELD_MAX 128 /* a card or barcode (as the desk's) */
#define JOURNAL_CLERK_MAX 64
#define JOURNAL_LINE_MAX  2048 /* longer lines are not ours: refused when read */

typedef struct journal_entry {
    int64_t seq; /* 1, 2, ... in the order written */
    char key[37];
    char op[16]; /* checkout | checkin | renew */
    char card[JOURNAL_FIELD_MAX];
    char barcode[JOURNAL_FIELD_MAX];
    int64_t ws_ms;     /* the workstation's clock at the scan */
    int64_t offset_ms; /* server minus workstation, as last measured */
    int64_t at_ms;     /* ws_ms + offset_ms: the scan on the server's clock */
    char due[11];      /* the due date the patron was told, or "" */
    char clerk[JOURNAL_CLERK_MAX];
    /* at_ms, or the greatest at_ms of the entries before it (by seq) when a
     * clock stepped back: what the upload sends (journal_upload_order sets it) */
    int64_t upload_at_ms;
    /* from a done line */
    bool done;
    char outcome[16];
} journal_entry_t;

typedef struct journal {
    char *dir;
    char *path;
    int fd; /* open for appending; -1 when closed */
    journal_entry_t *entries;
    size_t n, cap;
    size_t ndone;
    int64_t last_seq;
    size_t torn; /* a torn last line was found (and cut off by journal_open) */
    size_t bad;  /* whole lines that were not ours (skipped) */
} journal_t;

/*
 * The fsync the journal uses (tests put a failing one here to check that a
 * failed sync is reported and the scan refused). Default: fsync(2).
 */
extern int (*journal_sync)(int fd);

/*
 * Make `dir` (and its parents) with mode 0700 where missing, each new one
 * made durable by an fsync of its parent. Returns 0, or -1 with err set.
 */
CARREL_MUST_USE int journal_dir_make(const char *dir, char *err, size_t errlen);
/* fsync a directory (after a rename or a create in it). 0 or -1 (errno set). */
CARREL_MUST_USE int journal_dir_sync(const char *dir);

/*
 * Open (creating it, mode 0600) <dir>/<name>.journal, lock it (flock: one
 * writer, a running desk or an upload; another is refused) and read what is
 * in it. A torn last line is cut off (the scan it held was never answered).
 * Returns 0, or -1 with err set (j is then closed).
 */
CARREL_MUST_USE int journal_open(journal_t *j, const char *dir, const char *name, char *err,
                                 size_t errlen);
/*
 * Read a journal file without opening it for appending (carrel offline
 * status): entries, done markers, torn and bad lines. 0, or -1 with err set;
 * a missing file is an empty journal.
 */
CARREL_MUST_USE int journal_read(journal_t *j, const char *path, char *err, size_t errlen);
/*
 * Append a scan: e->seq is set, the line written with one write() and made
 * durable with one fsync(). Returns 0, or -1 with err set; then nothing of it
 * stays in the file (a partial write is cut off again).
 */
CARREL_MUST_USE int journal_append(journal_t *j, journal_entry_t *e, char *err, size_t errlen);
/* Append the done marker of the entry with `key` (outcome: applied | warning | skipped). */
CARREL_MUST_USE int journal_mark_done(journal_t *j, const char *key, const char *outcome,
                                      const char *reason, char *err, size_t errlen);
/* Entries not done yet. */
size_t journal_pending(const journal_t *j);
/*
 * The entries not done, in upload order: by seq (the order they were
 * scanned), each entry's upload_at_ms set (at_ms clamped non-decreasing in
 * seq order). Returns a malloc'd array of indexes into j->entries (free it),
 * their count in *n.
 */
size_t *journal_upload_order(journal_t *j, size_t *n);
/*
 * When every entry is done (and there is at least one): close the file and
 * rename it <path>.<stamp>.done, stamp "YYYYmmddTHHMMSS" (the directory is
 * synced). Returns 1 when renamed, 0 when entries are left, -1 with err set.
 */
CARREL_MUST_USE int journal_finish(journal_t *j, const char *stamp, char *err, size_t errlen);
void journal_close(journal_t *j);

/* One line parsed (exposed for the unit tests): 1 an entry, 2 a done marker, 0 not ours. */
int journal_parse_line(const char *line, size_t len, journal_entry_t *e);

#endif
