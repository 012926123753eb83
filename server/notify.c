#include "notify.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"

#ifndef HAVE_LIBSYSTEMD
/* Built without libsystemd (meson -Dsystemd=disabled, or none found): nobody to tell,
 * as when NOTIFY_SOCKET is unset; the unit's Type=notify needs a build with it. */
static int sd_notify(int unset_environment, const char *state)
{
    (void)unset_environment;
    (void)state;
    return 0;
}

static int sd_watchdog_enabled(int unset_environment, uint64_t *usec)
{
    (void)unset_environment;
    *usec = 0;
    return 0;
}
#endif

/* One daemon per process: the module's state is the process's. */
static uv_timer_t notify_watchdog_timer;
static bool notify_watchdog_open;
static bool notify_failed_logged;

/*
 * Sends one message; nothing without NOTIFY_SOCKET (sd_notify returns 0 then).
 * On the loop thread, and sd_notify's sendmsg is a blocking call: accepted
 * here because it is one small datagram on a local AF_UNIX socket, which
 * returns at once unless systemd's receive queue is full, and systemd (PID 1)
 * drains it continuously; a ping every WATCHDOG_USEC/2 and a few status
 * lines per run are all we send. If PID 1 were so stuck that the queue filled,
 * the watchdog would be the least of the machine's troubles.
 */
static void notify_send(const char *message)
{
    int rc = sd_notify(0, message);
    if (rc < 0 && !notify_failed_logged) {
        notify_failed_logged = true;
        log_warn(0, "cannot notify systemd (%s): %s", message, strerror(-rc));
    }
}

void notify_ready(void)
{
    notify_send("READY=1\nSTATUS=serving");
}

void notify_reloading(void)
{
    /* systemd (253 and later, Type=notify-reload) wants the moment the reload began, on
     * CLOCK_MONOTONIC; older ones ignore it. */
    struct timespec ts;
    char message[96];
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(message, sizeof(message), "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    notify_send(message);
}

void notify_stopping(void)
{
    notify_send("STOPPING=1\nSTATUS=stopping");
}

void notify_status(const char *fmt, ...)
{
    char message[512] = "STATUS=";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message + 7, sizeof(message) - 7, fmt, ap);
    va_end(ap);
    notify_send(message);
}

static void notify_on_watchdog(uv_timer_t *t)
{
    (void)t;
    notify_send("WATCHDOG=1");
}

int notify_watchdog_start(uv_loop_t *loop)
{
    uint64_t usec = 0;
    /* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is ours. */
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    /* Half the timeout, as sd_watchdog_enabled(3) advises; at least a millisecond. */
    uint64_t every_ms = usec / 2000;
    if (every_ms == 0)
        every_ms = 1;
    int rc = uv_timer_init(loop, &notify_watchdog_timer);
    if (rc != 0) {
        log_error(0, "watchdog timer: %s", uv_strerror(rc));
        return -1;
    }
    notify_watchdog_open = true;
    uv_unref((uv_handle_t *)&notify_watchdog_timer); /* never what keeps the loop running */
    rc = uv_timer_start(&notify_watchdog_timer, notify_on_watchdog, 0, every_ms);
    if (rc != 0) {
        log_error(0, "watchdog timer: %s", uv_strerror(rc));
        return -1;
    }
    log_info(0, "systemd watchdog: a ping every %llu ms", (unsigned long long)every_ms);
    return 0;
}

void notify_watchdog_stop(void)
{
    if (!notify_watchdog_open)
        return;
    notify_watchdog_open = false;
    uv_timer_stop(&notify_watchdog_timer);
    uv_close((uv_handle_t *)&notify_watchdog_timer, NULL);
}
