/*
 * stats: the daemon's side of statistics (sql/rules/stats.sql), besides the
 * requests in handlers.h.
 *
 *   - The stats pool: with stats_conninfo set, statistics, reports and the
 *     live view run on a second pool connected to a read-only hot standby,
 *     so that no report competes with the desks for the primary. That pool
 *     prepares only the statistics statements. A standby that is down,
 *     goes away or does not have our schema never stops the daemon: its
 *     requests answer UNAVAILABLE `stats_unavailable` (or, with
 *     stats_fallback_primary, run on the primary), the pool keeps
 *     reconnecting, and a schema mismatch closes the pool and makes a new
 *     one a minute later. Without stats_conninfo, statistics use the
 *     primary's short lane (the read connections), never the write lane.
 *   - The rollup job: every stats_rollup_interval_s, stats_rollup_run(10000)
 *     on the PRIMARY (it writes), again at once while a batch comes back
 *     full; one run at a time.
 *   - Live pushes: connections subscribed with StatsLiveSubscribe get a
 *     StatsLive (Response id 0) every interval; one stats_live() query per
 *     tick serves every subscriber, each filtered to its own scope.
 *
 * Shutdown: stats_stop() stops the timers; stats_gone() is true once no job
 * of ours is on the primary pool (server_jobs_gone() is called when that
 * happens), stats_abort() stops waiting; stats_close() closes the stats pool
 * and frees the rest once its handles are closed.
 */
#ifndef CARREL_STATS_H
#define CARREL_STATS_H

#include <stdbool.h>

typedef struct server server_t;
typedef struct stats stats_t;

/* The stats pool and the rollup timer (after the primary pool). 0, or -1 (logged). */
__attribute__((warn_unused_result)) int stats_start(server_t *srv);
void stats_stop(stats_t *s);
void stats_abort(stats_t *s);
/* True once the jobs no longer use the primary pool (or never ran). */
bool stats_gone(const stats_t *s);
/* After stats_stop, once the server closes its pools: close the stats pool, free s (later). */
void stats_close(stats_t *s);

/* The standby's replay lag as last sampled, against the primary's current WAL
 * position: seconds and bytes; false when there is no standby or the last sample
 * failed. */
bool stats_replica_lag(const stats_t *s, double *seconds, double *bytes);
/* The stats standby's pool, or NULL (none, or being replaced). */
typedef struct db_pool db_pool_t;
const db_pool_t *stats_pool_of(const stats_t *s);
/* A reload changed the database timeouts: the standby pool (if open) takes them. NULL: nothing. */
void stats_limits_apply(stats_t *s);

#endif
