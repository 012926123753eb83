/*
 * rooms: the rooms timer, besides the requests in handlers.h.
 *
 * Every rooms_tick_interval_s (0: never), rooms_tick() on the primary:
 * bookings not checked in by the end of their check-in window are released
 * as no-shows (the room is free again), ended ones completed, reminders
 * queued, old bookings anonymised. One run at a time, never on the loop.
 *
 * Shutdown as the statistics rollup job: rooms_stop() stops the timer;
 * rooms_gone() is true once no run of ours is on the pool (server_jobs_gone()
 * is called when that happens), rooms_abort() stops waiting; rooms_close()
 * closes the timer and frees the rest once nothing is out.
 */
#ifndef CARREL_ROOMS_H
#define CARREL_ROOMS_H

#include <stdbool.h>

typedef struct server server_t;
typedef struct rooms_jobs rooms_jobs_t;

/* The rooms timer (after the primary pool). */
void rooms_start(server_t *srv);
void rooms_stop(rooms_jobs_t *s);
void rooms_abort(rooms_jobs_t *s);
/* True once the job no longer uses the pool (or never ran). */
bool rooms_gone(const rooms_jobs_t *s);
/* After rooms_stop, once the server closes its pools: close the timer, free s (later). */
void rooms_close(rooms_jobs_t *s);

#endif
