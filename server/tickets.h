/*
 * tickets: the tickets timer, besides the requests in handlers.h.
 *
 * Every tickets_tick_interval_s (0: never), tickets_tick() on the primary:
 * running tickets past 75% of their queue's target (in open hours, by the
 * SLA clock ticket_now()) are flagged, past the target escalated, each with
 * one event to the queue's staff (desk_event_to, routed by events.c); closed
 * tickets older than ticket_retention_days are anonymised.
 *
 * It is a jobtimer (jobtimer.h), srv->tickets: the server stops, aborts and
 * closes it as the rooms timer.
 */
#ifndef CARREL_TICKETS_H
#define CARREL_TICKETS_H

#include "jobtimer.h"

typedef struct server server_t;

/* Start the tickets timer as srv->tickets (after the primary pool). */
void tickets_start(server_t *srv);

#endif
