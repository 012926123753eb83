/*
 * offline: what the desk keeps to work while the daemon is unreachable, and
 * the upload of its journal once the daemon is back (docs/OFFLINE.md, "At
 * the desk"):
 *
 *   - the directory: the profile's offline_dir, else $XDG_STATE_HOME/carrel,
 *     else ~/.local/state/carrel (mode 0700); "off" turns offline mode off;
 *   - the cache, <dir>/<workstation>.cache: the packed OfflineCache of the
 *     last OfflineCacheGet, written to a temporary file, fsynced and renamed
 *     over the old one, so that a crash leaves the old cache or the new one.
 *     The measured clock offset travels in the same file as field 1000 of
 *     the message (a field the protocol does not use: any reader of an
 *     OfflineCache skips it);
 *   - the clock offset: server_time_ms - (sent_ms + received_ms) / 2, both
 *     read on the workstation's wall clock around the OfflineCacheGet;
 *   - the provisional due date told to the patron: the branch's default loan
 *     days from the scan's date, moved past the branch's closed days;
 *   - the upload: the journal's pending entries in the order scanned (seq),
 *     each dated at_ms clamped non-decreasing (a clock stepped back does not
 *     reorder a checkout and its checkin), one OfflineReplay each, keyed
 *     with the entry's own UUID, each answer marked done in the journal
 *     before the next is sent, so that an interrupted upload resumes and a
 *     resent one applies nothing twice.
 */
#ifndef CARREL_OFFLINE_H
#define CARREL_OFFLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carrel.pb-c.h"
#include "check.h"
#include "journal.h"

typedef struct cli cli_t;

#define OFFLINE_CACHE_REFRESH_MS (15u * 60u * 1000u) /* while online */
#define OFFLINE_OFFSET_FIELD     1000                /* the offset's field in the cache file */
#define OFFLINE_DONE_KEEP_DAYS   7 /* uploaded journals kept this long, then removed */
/* The longest card or barcode the server applies (server/offline.c): a longer
 * scan (a mis-scan, a QR code) is refused at the desk, not journaled. */
#define OFFLINE_SCAN_MAX 64

/*
 * The offline directory for this profile (malloc'd), or NULL with *off set
 * when the profile says offline_dir = off; NULL without *off when no
 * directory can be named (no HOME).
 */
char *offline_dir(const cli_t *cli, bool *off);
/* "<dir>/<workstation>.cache" (malloc'd). */
char *offline_cache_path(const char *dir, const char *workstation);

/*
 * Remove this workstation's uploaded journals (<workstation>.journal.*.done)
 * older than OFFLINE_DONE_KEEP_DAYS: they tie cards to copies, which the
 * library keeps nowhere once a loan ends (the server's report has what is
 * needed to settle an exception). Returns how many were removed.
 */
int offline_prune_done(const char *dir, const char *workstation);

/* Write the cache and the offset atomically (temp file, fsync, rename, fsync dir). */
CARREL_MUST_USE int offline_cache_save(const char *path, const Carrel__OfflineCache *c,
                                       int64_t offset_ms, char *err, size_t errlen);
/*
 * Read the cache (free with carrel__offline_cache__free_unpacked) and its
 * offset. NULL with err set when missing (errno ENOENT) or unreadable.
 */
Carrel__OfflineCache *offline_cache_load(const char *path, int64_t *offset_ms, char *err,
                                         size_t errlen);

/* Server minus workstation: server_ms against the middle of [sent_ms, received_ms]. */
int64_t offline_offset(int64_t server_ms, int64_t sent_ms, int64_t received_ms);
/*
 * The due date ("YYYY-MM-DD") of a loan begun at at_ms (server clock): the
 * cache's default loan days later (the workstation's time zone), moved on
 * past closed days. false when the cache gives no loan period.
 */
bool offline_due_date(const Carrel__OfflineCache *c, int64_t at_ms, char out[11]);
/* The reason a card must not borrow offline ("blocked", "expired", ...), or NULL. */
const char *offline_blocked(const Carrel__OfflineCache *c, const char *card);

typedef struct offline_summary {
    int applied, warnings, skipped;
    int left;      /* entries not uploaded (the upload stopped) */
    bool stopped;  /* the upload stopped before the end */
    char why[300]; /* ...because of this */
    bool renamed;  /* every entry done: the journal was renamed .done */
} offline_summary_t;

/*
 * Upload the journal's pending entries on cli's connection (logged in), in
 * journal order, with synchronous calls (not from inside a loop callback). A
 * permanent refusal (BAD_REQUEST, CONFLICT request_key_reused: the same
 * entry would be refused again) is told to on_entry as skipped with the
 * server's reason, marked done and passed over; anything else not OK (the
 * connection lost, unavailable, forbidden) stops the upload with the entry
 * still pending, for the next upload, and the reason in s->why. When
 * every entry is done the journal is renamed. on_entry (optional) is told
 * each answer. Returns 0 (see s->stopped), or -1 when the journal could not
 * be written (s->why).
 */
int offline_upload(cli_t *cli, journal_t *j, offline_summary_t *s,
                   void (*on_entry)(void *arg, const journal_entry_t *e,
                                    const Carrel__OfflineReplayReply *r),
                   void *arg);

#endif
