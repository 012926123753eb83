/*
 * metrics: the daemon's counters and the one collector that reads them.
 *
 * Modules bump counters as things happen (metrics_request_done from
 * request.c, metrics_login_failed from auth.c, ...); gauges (connections by
 * state, the pool, the password queue, replica lag) are read from their
 * owners when someone asks. metrics_collect() walks both, family by family,
 * and hands each family and sample to a sink: the Prometheus text format
 * (metrics_text, served by metrics_http.c) and ServerStatus (status in
 * metrics.c) are two sinks of the same walk, so they cannot disagree.
 *
 * Everything here runs on the loop thread; nothing is locked.
 */
#ifndef CARREL_METRICS_H
#define CARREL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct server server_t;
typedef struct route route_t;

/* Histogram buckets of carrel_request_duration_seconds (upper bounds, seconds). */
#define METRICS_BUCKETS 13

/* Most series a labelled counter keeps; label values past it count as "_other". */
#define METRICS_MAX_SERIES 32

/* Start time and version (carreld --version); call once before the loop runs. */
void metrics_init(const char *version);
/* The process start time (ms since the epoch), as metrics_init saw it. */
int64_t metrics_started_ms(void);
const char *metrics_version(void);

/* A request ended: its route (NULL: refused before one was known), its status
 * (Carrel__Status) and how long it took. */
void metrics_request_done(const route_t *route, int status, uint64_t elapsed_ns);
/* A login failed after its checks ran (wrong_password, unknown_user, disabled, ...). */
void metrics_login_failed(const char *reason);
/* A login was refused by the throttle before any work; key: "user" or "address". */
void metrics_login_throttled(const char *key);
/* An event frame was pushed to a desk; kind as in Event.kind. */
void metrics_event_pushed(const char *kind);
/* A notice was handed to its channel (sent) or could not be (failed). */
void metrics_notice(const char *channel, bool sent);
/* A send attempt could not reach the channel's relay (the notices stay pending). */
void metrics_notice_relay_failed(const char *channel);
/* Email notices pending, as counted at the start of a send pass. */
void metrics_notices_pending(int64_t pending);

/*
 * Where metrics_collect() puts what it reads. family() comes once per metric
 * family, before its samples (a family may have none yet); sample() once per
 * line of the text format (histograms: _bucket with "le", _sum, _count).
 * Strings are valid only during the call.
 */
typedef struct metrics_sink {
    void (*family)(void *arg, const char *name, const char *type, const char *help);
    void (*sample)(void *arg, const char *name, int nlabels, const char *const *label_names,
                   const char *const *label_values, double value);
    void *arg;
} metrics_sink_t;

void metrics_collect(server_t *srv, const metrics_sink_t *sink);

/* The Prometheus text format (version 0.0.4) of metrics_collect, appended to out.
 * 0, or -1 when out of memory. */
__attribute__((warn_unused_result)) int metrics_text(server_t *srv, struct buf *out);

/* Pure, for tests: a label value escaped for the text format (\\, \" and \n)
 * into out (always terminated, cut only between whole escapes); the length it
 * needed, as snprintf. The text format itself never cuts. */
size_t metrics_escape(const char *value, char *out, size_t outlen);

/* ServerStatus: the same samples as the endpoint (route in dispatch.c). */
struct request;
void handle_server_status(struct request *req);

/* metrics_http.c: the endpoint (metrics_listen_port > 0). 0, or -1 (logged). */
__attribute__((warn_unused_result)) int metrics_http_start(server_t *srv);
/* Stop listening and close every scrape connection (drain). */
void metrics_http_stop(server_t *srv);

#endif
