/*
 * rooms: the rooms timer, besides the requests in handlers.h.
 *
 * Every rooms_tick_interval_s (0: never), rooms_tick() on the primary:
 * bookings not checked in by the end of their check-in window are released
 * as no-shows (the room is free again), ended ones completed, reminders
 * queued, old bookings anonymised. One run at a time, never on the loop.
 *
 * It is a jobtimer (jobtimer.h), srv->rooms: the server stops, aborts and
 * closes it as the statistics rollup job (jobtimer_stop, jobtimer_abort,
 * jobtimer_gone, jobtimer_close).
 */
#ifndef CARREL_ROOMS_H
#define CARREL_ROOMS_H

#include "jobtimer.h"

typedef struct server server_t;

/* Start the rooms timer as srv->rooms (after the primary pool). */
void rooms_start(server_t *srv);

#endif
