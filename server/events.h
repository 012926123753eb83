/*
 * events: what the database says happened at a branch (a copy captured for
 * its hold shelf, a transit sent to it, a hold placed on a title it has on
 * its shelves), pushed to the desks of that branch that subscribed.
 *
 * SQL functions call desk_event(), which NOTIFYs on the channel
 * carrel_events when their transaction commits; the pool's listening
 * connection (db_pool_listen) hands each payload here.
 */
#ifndef CARREL_EVENTS_H
#define CARREL_EVENTS_H

#include "server.h"

#define EVENTS_CHANNEL "carrel_events"

/* The pool's notification callback (arg is the server). */
void events_on_notify(void *arg, const char *payload);

#endif
