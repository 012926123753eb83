/*
 * notify: telling systemd how carreld is doing (sd_notify(3)), for a unit
 * of Type=notify (dist/carreld.service.in):
 *   READY=1      once the desks' port (and the SIP2 port, when set) listens;
 *   RELOADING=1  when a reload starts (with MONOTONIC_USEC), READY=1 after;
 *   STOPPING=1   when the drain starts;
 *   STATUS=...   a line `systemctl status` shows;
 *   WATCHDOG=1   every WATCHDOG_USEC/2 from a timer on the event loop, so a
 *                loop that is stuck stops the pings and systemd restarts us.
 * Without NOTIFY_SOCKET (not under systemd) every call does nothing; a send
 * that fails is logged once and otherwise ignored: the service manager's
 * view is not worth stopping the daemon for.
 *
 * Called on the loop thread only. The messages are datagrams on a local
 * socket: sending one waits only if systemd's queue is full (see notify_send).
 * Built without libsystemd (meson -Dsystemd=disabled), every call does nothing.
 */
#ifndef CARREL_NOTIFY_H
#define CARREL_NOTIFY_H

#include <uv.h>

void notify_ready(void);
void notify_reloading(void);
void notify_stopping(void);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Starts the watchdog timer when systemd asks for pings (WATCHDOG_USEC set,
 * and WATCHDOG_PID, if set, ours). Returns 0 (started or not wanted), or -1
 * when the timer cannot start (logged).
 */
__attribute__((warn_unused_result)) int notify_watchdog_start(uv_loop_t *loop);
/* Stops the pings and closes the timer's handle (server_finish). */
void notify_watchdog_stop(void);

#endif
