/*
 * reload: read the configuration again while serving (SIGHUP, or the Reload
 * request of `carrel admin reload`).
 *
 * The file is read, the command line's -s/-p overrides applied over it and
 * the result checked on the thread pool: the same checks as at start,
 * including a new TLS context built from the certificate, key, client CA
 * and CRL, and the SMTP relay password read. Any error refuses the whole
 * reload and the running settings stay. Back on the loop, the settings that
 * changed are applied if their table entry is marked RELOAD
 * (server_config.c); the others are reported as needing a restart and keep
 * their running values. One reload runs at a time.
 */
#ifndef CARREL_RELOAD_H
#define CARREL_RELOAD_H

#include "server.h"

typedef enum {
    RELOAD_APPLIED,  /* read and applied (maybe nothing changed) */
    RELOAD_INVALID,  /* refused: error says why; nothing changed */
    RELOAD_STOPPING, /* the daemon began shutting down meanwhile; nothing changed */
} reload_status_t;

typedef struct reload_outcome {
    reload_status_t status;
    const char *error;       /* RELOAD_INVALID: the sentence, naming the file and line */
    const char *config_file; /* the file read, or NULL (overrides only) */
    /* Names of the settings that changed (table strings): applied, and kept
     * at their running values until the next start. */
    const char *const *applied;
    int napplied;
    const char *const *needs_restart;
    int nneeds_restart;
} reload_outcome_t;

/* Runs on the loop when a reload ends; o and what it points to live until it returns. */
typedef void (*reload_done_fn)(const reload_outcome_t *o, void *arg);

/*
 * Start a reload on behalf of `by` (a user name, or "SIGHUP"). 0: done will
 * be called once, later, on the loop. -1: another reload is running
 * (reload_running) or the daemon is shutting down; done is not called.
 */
__attribute__((warn_unused_result)) int reload_start(server_t *srv, const char *by,
                                                     reload_done_fn done, void *arg);

/* Shutdown: a reload not yet being read is dropped (its done sees RELOAD_STOPPING). */
void reload_cancel(server_t *srv);

/* SIGHUP: the handle (server_start) and its close (server_finish). */
void reload_signal_start(server_t *srv);
void reload_signal_close(server_t *srv);

#endif
