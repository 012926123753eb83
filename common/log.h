/*
 * log: one line per event on stderr: UTC time, level, connection id, message.
 *   2026-11-29T19:40:01.123Z INFO  [c12] login ok: user=ada workstation=dwn-desk-1
 * Connection id 0 means "not about a connection" and prints as [-].
 * When stderr is the systemd journal (JOURNAL_STREAM names it), a line starts
 * with its syslog priority instead of the time, which journald adds itself:
 *   <6>INFO  [c12] login ok: user=ada workstation=dwn-desk-1
 * (<3> error, <4> warn, <6> info, <7> debug), so `journalctl -p warning` works.
 */
#ifndef CARREL_LOG_H
#define CARREL_LOG_H

#include <stdint.h>

#include "check.h"

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

void log_set_level(log_level_t level);
/*
 * Looks again whether stderr is the journal (done by itself before the first
 * line). Only for a program that changes its stderr or JOURNAL_STREAM later
 * (the unit tests); not meant to race with other threads' log lines.
 */
void log_detect_stream(void);
/* Parse "debug", "info", "warn" or "error"; returns -1 for anything else. */
CARREL_MUST_USE int log_level_parse(const char *name);
void log_msg(log_level_t level, uint64_t conn_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(cid, ...) log_msg(LOG_DEBUG, (cid), __VA_ARGS__)
#define log_info(cid, ...)  log_msg(LOG_INFO, (cid), __VA_ARGS__)
#define log_warn(cid, ...)  log_msg(LOG_WARN, (cid), __VA_ARGS__)
#define log_error(cid, ...) log_msg(LOG_ERROR, (cid), __VA_ARGS__)

#endif
