-- Statistics: the measure registry and its sources (stats_query,
-- stats_measures), the circulation rollups (the queue trigger,
-- stats_rollup_run, stats_rollup_rebuild, stats_rollup_pending), live service
-- levels (stats_live), "buy more copies" (stats_buy_more) and the IMLS Public
-- Libraries Survey lines (pls_report). Called by server/stats.c (the stats
-- pool, which may be a hot standby: everything here but the rollup job and
-- the triggers only reads). docs/STATISTICS.md describes every measure.
--
-- Counts only: no function here returns a patron's id, card or name.
-- The functions the daemon calls run with jit off: their range estimates are
-- rough (bounds computed at run time), and compiling a plan the planner
-- wrongly thinks expensive costs far more than running it (700 ms against
-- 10 ms for stats_live).
-- Dynamic SQL: the only identifiers put into a statement are a measure's
-- source (a regproc from stat_measure) and fragments chosen from the
-- whitelists below by CASE; every value is bound (USING).

-- ---------------------------------------------------------------- helpers

-- A local timestamp standing for its bucket of grain p_time: the start of its
-- day, week, month or year; for hour, weekday and hour_of_week a time in the
-- week of Monday 2001-01-01 with the same weekday and hour. Grouping on it
-- is cheap; stats_period turns it into the label.
CREATE OR REPLACE FUNCTION stats_bucket(p_time text, p_ts timestamp) RETURNS timestamp
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_time
        WHEN 'day' THEN date_trunc('day', p_ts)
        WHEN 'week' THEN date_trunc('week', p_ts)
        WHEN 'month' THEN date_trunc('month', p_ts)
        WHEN 'year' THEN date_trunc('year', p_ts)
        WHEN 'hour' THEN timestamp '2001-01-01' + (date_trunc('hour', p_ts)
                                                   - date_trunc('day', p_ts))
        WHEN 'weekday' THEN timestamp '2001-01-01' + (date_trunc('day', p_ts)
                                                      - date_trunc('week', p_ts))
        WHEN 'hour_of_week' THEN timestamp '2001-01-01' + (date_trunc('hour', p_ts)
                                                           - date_trunc('week', p_ts))
        ELSE timestamp '2001-01-01' END
$$;

-- The label of a bucket (stats.proto StatsRow.period): day and week
-- YYYY-MM-DD (a week by its Monday), month YYYY-MM, year YYYY, hour 00-23,
-- weekday 1-7 (ISO, Monday 1), hour_of_week "1-09"; '' for none.
CREATE OR REPLACE FUNCTION stats_period(p_time text, p_bucket timestamp) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE p_time
        WHEN 'day' THEN to_char(p_bucket, 'YYYY-MM-DD')
        WHEN 'week' THEN to_char(p_bucket, 'YYYY-MM-DD')
        WHEN 'month' THEN to_char(p_bucket, 'YYYY-MM')
        WHEN 'year' THEN to_char(p_bucket, 'YYYY')
        WHEN 'hour' THEN to_char(p_bucket, 'HH24')
        WHEN 'weekday' THEN to_char(p_bucket, 'ID')
        WHEN 'hour_of_week' THEN to_char(p_bucket, 'ID-HH24')
        ELSE '' END
$$;

-- The label a bucket of the year-earlier range has in the current range:
-- dates a year later (weeks 364 days later, so they stay Mondays); hours and
-- weekdays are the same labels.
CREATE OR REPLACE FUNCTION stats_period_later(p_time text, p_period text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_time
        WHEN 'day' THEN to_char(p_period::date + interval '1 year', 'YYYY-MM-DD')
        WHEN 'week' THEN to_char(p_period::date + 364, 'YYYY-MM-DD')
        WHEN 'month' THEN to_char((p_period || '-01')::date + interval '1 year', 'YYYY-MM')
        WHEN 'year' THEN (p_period::integer + 1)::text
        ELSE p_period END
$$;

-- The label of a dimension value ('' and NULL: "(none)").
CREATE OR REPLACE FUNCTION stats_label(p_value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN coalesce(p_value, '') = '' THEN '(none)' ELSE p_value END
$$;

-- The keys expression of p_by over a relation x (with branch joins b, fb,
-- tb), from the whitelist of dimensions; raises on anything else. The
-- measure's own list (stat_measure.dims) has been checked before.
CREATE OR REPLACE FUNCTION stats_keys_sql(p_by text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_parts text[] := '{}';
    d text;
BEGIN
    FOREACH d IN ARRAY coalesce(p_by, '{}') LOOP
        v_parts := v_parts || CASE d
            WHEN 'branch' THEN 'b.code'
            WHEN 'item_type' THEN 'stats_label(x.item_type)'
            WHEN 'patron_category' THEN 'stats_label(x.patron_category)'
            WHEN 'location' THEN 'stats_label(x.location)'
            WHEN 'via' THEN 'x.via'
            WHEN 'channel' THEN 'x.channel'
            WHEN 'from_branch' THEN 'fb.code'
            WHEN 'to_branch' THEN 'tb.code'
            WHEN 'room' THEN 'x.room'
            WHEN 'category' THEN 'x.category'
            WHEN 'status' THEN 'x.status'
            WHEN 'audience' THEN 'x.audience'
            WHEN 'venue' THEN 'x.venue'
            WHEN 'desk' THEN 'stats_label(x.desk)'
            WHEN 'kind' THEN 'x.kind'
            WHEN 'read_level' THEN 'x.read_level'
            WHEN 'counter' THEN 'x.counter'
            WHEN 'area' THEN 'x.area'
            WHEN 'activity' THEN 'stats_label(x.activity)'
            WHEN 'decision' THEN 'x.decision'
            WHEN 'collection' THEN 'stats_label(x.collection)'
        END;
        IF v_parts[cardinality(v_parts)] IS NULL THEN
            PERFORM field_refuse('by', format('There is no dimension %s.', d));
        END IF;
    END LOOP;
    RETURN 'ARRAY[' || array_to_string(v_parts, ', ') || ']::text[]';
END
$$;

-- The three rows an event has in the one-dimension rollups.
CREATE OR REPLACE FUNCTION stats_dims(p_item_type text, p_patron_category text, p_location text)
RETURNS TABLE (dim text, value text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    VALUES ('item_type', p_item_type), ('patron_category', p_patron_category),
           ('location', p_location)
$$;

-- ---------------------------------------------------------------- the queue

-- Every new circ_event is queued for the rollups in its own transaction, one
-- insert per statement (a COPY of millions of events is one statement).
CREATE OR REPLACE FUNCTION stat_circ_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stat_circ_queue (event_id, at, branch_id, action, via, item_type,
                                 patron_category, location)
    SELECT id, at, branch_id, action, via, item_type, coalesce(patron_category, ''),
           coalesce(location, '')
    FROM new_events;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER stat_circ_enqueue AFTER INSERT ON circ_event
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION stat_circ_enqueue();

-- ---------------------------------------------------------------- rollup job

-- One rollup writer at a time (the daemon's timer, a rebuild, a test).
CREATE OR REPLACE FUNCTION stats_rollup_lock() RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(17, 1) $$;

-- Folds up to p_limit queued events into the rollups and deletes their
-- queue rows, in one statement (one snapshot) and one transaction: a reader
-- sees each event either queued or folded, never both, never neither.
-- Returns how many were folded; the daemon calls again until it gets fewer
-- than p_limit. Also keeps the daily snapshot of the patron counts (below,
-- "patron counts"): the daemon calls this every few seconds on the primary,
-- which is what a once-a-day write needs.
CREATE OR REPLACE FUNCTION stats_rollup_run(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_tz text := library_setting_text('timezone');
    v_done integer;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        PERFORM field_refuse('limit', 'Fold at least one event at a time.');
    END IF;
    PERFORM stats_rollup_lock();
    -- The first run of a local day keeps yesterday's patron counts (one
    -- index probe on every other run).
    IF NOT EXISTS (SELECT 1 FROM stat_patron_snapshot s WHERE s.day = library_today() - 1) THEN
        PERFORM stats_patron_snapshot(library_today() - 1);
    END IF;
    WITH q AS (
        DELETE FROM stat_circ_queue
        WHERE event_id IN (SELECT event_id FROM stat_circ_queue ORDER BY event_id
                           LIMIT p_limit)
        RETURNING *
    ), ev AS MATERIALIZED (
        SELECT (q.at AT TIME ZONE v_tz) AS lt, q.branch_id, q.action, q.via, q.item_type,
               q.patron_category, q.location
        FROM q
    ), h AS (
        INSERT INTO stat_circ_hour AS r (hour, branch_id, action, via, n)
        SELECT date_trunc('hour', lt), branch_id, action, via, count(*)
        FROM ev GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (hour, branch_id, action, via) DO UPDATE SET n = r.n + excluded.n
    ), d AS (
        INSERT INTO stat_circ_day AS r (day, branch_id, action, via, item_type,
                                        patron_category, location, n)
        SELECT lt::date, branch_id, action, via, item_type, patron_category, location,
               count(*)
        FROM ev GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (day, branch_id, action, via, item_type, patron_category, location)
            DO UPDATE SET n = r.n + excluded.n
    ), bd AS (
        INSERT INTO stat_circ_branch_day AS r (day, branch_id, action, via, n)
        SELECT lt::date, branch_id, action, via, count(*)
        FROM ev GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (day, branch_id, action, via) DO UPDATE SET n = r.n + excluded.n
    ), m AS (
        INSERT INTO stat_circ_month AS r (month, branch_id, action, via, item_type,
                                          patron_category, location, n)
        SELECT date_trunc('month', lt)::date, branch_id, action, via, item_type,
               patron_category, location, count(*)
        FROM ev GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (month, branch_id, action, via, item_type, patron_category, location)
            DO UPDATE SET n = r.n + excluded.n
    ), dd AS (
        INSERT INTO stat_circ_dim_day AS r (action, dim, day, branch_id, via, value, n)
        SELECT action, d.dim, lt::date, branch_id, via, d.value, count(*)
        FROM ev, stats_dims(item_type, patron_category, location) d
        GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (action, dim, day, branch_id, via, value) DO UPDATE SET n = r.n + excluded.n
    ), dm AS (
        INSERT INTO stat_circ_dim_month AS r (action, dim, month, branch_id, via, value, n)
        SELECT action, d.dim, date_trunc('month', lt)::date, branch_id, via, d.value, count(*)
        FROM ev, stats_dims(item_type, patron_category, location) d
        GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (action, dim, month, branch_id, via, value)
            DO UPDATE SET n = r.n + excluded.n
    )
    SELECT count(*) INTO v_done FROM q;
    RETURN v_done;
END
$$;

-- Rebuilds the rollups from circ_event. The rollups are emptied, then one
-- statement (one snapshot) empties the queue of what it can see and counts
-- every event it can see: events committed later keep their queue rows and
-- are folded by the next run. Readers of the rollups wait for the rebuild.
CREATE OR REPLACE FUNCTION stats_rollup_rebuild() RETURNS TABLE (events bigint, rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_tz text := library_setting_text('timezone');
BEGIN
    PERFORM stats_rollup_lock();
    -- Millions of groups: room to hash them in memory (this transaction only).
    PERFORM set_config('work_mem', '128MB', true);
    TRUNCATE stat_circ_hour, stat_circ_day, stat_circ_branch_day, stat_circ_month,
             stat_circ_dim_day, stat_circ_dim_month;
    RETURN QUERY
    WITH q AS (
        DELETE FROM stat_circ_queue RETURNING event_id
    ), ev AS NOT MATERIALIZED (
        SELECT (e.at AT TIME ZONE v_tz) AS lt, e.branch_id, e.action, e.via, e.item_type,
               coalesce(e.patron_category, '') AS patron_category,
               coalesce(e.location, '') AS location
        FROM circ_event e
    ), dayagg AS MATERIALIZED (
        SELECT lt::date AS day, branch_id, action, via, item_type, patron_category, location,
               count(*) AS n
        FROM ev GROUP BY 1, 2, 3, 4, 5, 6, 7
    ), h AS (
        INSERT INTO stat_circ_hour (hour, branch_id, action, via, n)
        SELECT date_trunc('hour', lt), branch_id, action, via, count(*)
        FROM ev GROUP BY 1, 2, 3, 4 ORDER BY 3, 1, 2, 4
        RETURNING 1
    ), d AS (
        INSERT INTO stat_circ_day (day, branch_id, action, via, item_type, patron_category,
                                   location, n)
        SELECT * FROM dayagg ORDER BY 3, 1, 2, 4, 5, 6, 7
        RETURNING 1
    ), bd AS (
        INSERT INTO stat_circ_branch_day (day, branch_id, action, via, n)
        SELECT day, branch_id, action, via, sum(n)
        FROM dayagg GROUP BY 1, 2, 3, 4 ORDER BY 3, 1, 2, 4
        RETURNING 1
    ), m AS (
        INSERT INTO stat_circ_month (month, branch_id, action, via, item_type,
                                     patron_category, location, n)
        SELECT date_trunc('month', day)::date, branch_id, action, via, item_type,
               patron_category, location, sum(n)
        FROM dayagg GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 3, 1, 2, 4, 5, 6, 7
        RETURNING 1
    ), dimday AS MATERIALIZED (
        SELECT action, d.dim, day, branch_id, via, d.value, sum(n) AS n
        FROM dayagg, stats_dims(item_type, patron_category, location) d
        GROUP BY 1, 2, 3, 4, 5, 6
    ), dd AS (
        INSERT INTO stat_circ_dim_day (action, dim, day, branch_id, via, value, n)
        SELECT * FROM dimday ORDER BY 1, 2, 3, 4, 5, 6
        RETURNING 1
    ), dm AS (
        INSERT INTO stat_circ_dim_month (action, dim, month, branch_id, via, value, n)
        SELECT action, dim, date_trunc('month', day)::date, branch_id, via, value, sum(n)
        FROM dimday GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
        RETURNING 1
    )
    SELECT (SELECT coalesce(sum(n), 0) FROM dayagg)::bigint,
           (SELECT count(*) FROM h) + (SELECT count(*) FROM d) + (SELECT count(*) FROM bd)
           + (SELECT count(*) FROM m) + (SELECT count(*) FROM dd) + (SELECT count(*) FROM dm)
           + 0 * (SELECT count(*) FROM q);
END
$$;

-- Events not folded yet.
CREATE OR REPLACE FUNCTION stats_rollup_pending() RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT count(*) FROM stat_circ_queue $$;

-- ---------------------------------------------------------------- circulation source

-- Circulation events (actions p_param, comma separated) from the rollups plus
-- the still-queued events, in one statement (one snapshot, so the sum is the
-- raw count at that moment). The hour rollup serves hour, weekday and
-- hour_of_week (by branch and via only); the branch-day rollup every other
-- grain split by branch and via only; the one-dimension rollups a split by
-- one of item type, category and location; the wide ones the rest. Month
-- rollups serve ranges of whole months grouped by month, year or not at all.
CREATE OR REPLACE FUNCTION stats_src_circ(p_from date, p_to date, p_time text, p_by text[],
                                          p_branches integer[], p_arg integer, p_param text)
RETURNS TABLE (period text, keys text[], value numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_tz text := library_setting_text('timezone');
    v_actions text[] := string_to_array(p_param, ',');
    v_wide text[] := ARRAY(SELECT d FROM unnest(p_by) d
                           WHERE d IN ('item_type', 'patron_category', 'location'));
    -- Whole months grouped by month, year or not at all: the month rollups.
    v_months boolean := p_time IN ('month', 'year', 'none')
                        AND p_from = date_trunc('month', p_from)::date
                        AND p_to + 1 = date_trunc('month', p_to + 1)::date;
    v_unit text;
    v_rollup text;
    v_sql text;
BEGIN
    v_unit := CASE WHEN v_months THEN 'month' ELSE 'day' END;
    IF p_time IN ('hour', 'weekday', 'hour_of_week') THEN
        IF NOT (coalesce(p_by, '{}') <@ ARRAY['branch', 'via']) THEN
            PERFORM field_refuse('by', 'By hour, weekday or hour of week, circulation can be '
                                       'split by branch and via only.');
        END IF;
        v_rollup := 'SELECT r.hour AS ts, r.branch_id, r.action, r.via, '''' AS item_type, '
                    ''''' AS patron_category, '''' AS location, r.n FROM stat_circ_hour r '
                    'WHERE r.hour >= $1::timestamp AND r.hour < ($2 + 1)::timestamp';
    ELSIF coalesce(p_by, '{}') <@ ARRAY['branch', 'via'] THEN
        v_rollup := 'SELECT r.day::timestamp AS ts, r.branch_id, r.action, r.via, '
                    ''''' AS item_type, '''' AS patron_category, '''' AS location, r.n '
                    'FROM stat_circ_branch_day r WHERE r.day >= $1 AND r.day <= $2';
    ELSIF cardinality(v_wide) = 1 THEN
        -- The value goes to its own column; the other two stay empty.
        v_rollup := format(
            'SELECT r.%s::timestamp AS ts, r.branch_id, r.action, r.via, %s, r.n '
            'FROM stat_circ_dim_%s r WHERE r.dim = $7 AND r.%s >= $1 AND r.%s <= $2',
            v_unit, CASE v_wide[1]
                WHEN 'item_type' THEN 'r.value AS item_type, '''' AS patron_category, '
                                      ''''' AS location'
                WHEN 'patron_category' THEN ''''' AS item_type, r.value AS patron_category, '
                                            ''''' AS location'
                ELSE ''''' AS item_type, '''' AS patron_category, r.value AS location' END,
            v_unit, v_unit, v_unit);
    ELSIF v_months THEN
        v_rollup := 'SELECT r.month::timestamp AS ts, r.branch_id, r.action, r.via, '
                    'r.item_type, r.patron_category, r.location, r.n FROM stat_circ_month r '
                    'WHERE r.month >= $1 AND r.month <= $2';
    ELSE
        v_rollup := 'SELECT r.day::timestamp AS ts, r.branch_id, r.action, r.via, '
                    'r.item_type, r.patron_category, r.location, r.n FROM stat_circ_day r '
                    'WHERE r.day >= $1 AND r.day <= $2';
    END IF;
    v_sql := format(
        'SELECT stats_period($5, x.bucket), %1$s, sum(x.n)::numeric '
        'FROM (SELECT stats_bucket($5, y.ts) AS bucket, y.branch_id, y.via, y.item_type, '
        '             y.patron_category, y.location, sum(y.n) AS n '
        '      FROM (%2$s AND r.action = ANY ($3) '
        '                AND ($4 IS NULL OR r.branch_id = ANY ($4)) '
        '            UNION ALL '
        '            SELECT (q.at AT TIME ZONE $6), q.branch_id, q.action, q.via, q.item_type, '
        '                   q.patron_category, q.location, 1 '
        '            FROM stat_circ_queue q '
        '            WHERE q.at >= ($1::timestamp AT TIME ZONE $6) '
        '              AND q.at < (($2 + 1)::timestamp AT TIME ZONE $6) '
        '              AND q.action = ANY ($3) AND ($4 IS NULL OR q.branch_id = ANY ($4))) y '
        '      GROUP BY 1, 2, 3, 4, 5, 6) x '
        'JOIN branch b ON b.id = x.branch_id '
        'GROUP BY x.bucket, 2',
        stats_keys_sql(p_by), v_rollup);
    RETURN QUERY EXECUTE v_sql USING p_from, p_to, v_actions, p_branches, p_time, v_tz,
                                     v_wide[1];
END
$$;

-- ---------------------------------------------------------------- facts source

-- The rows ("facts") a measure counts or summarises, from the whitelist:
-- each yields ts (when, timestamptz), branch_id, item_type, patron_category,
-- location, via, channel, from_branch_id, to_branch_id and v (the value a
-- median sums up). Bound: $1 and $2 the range as timestamptz [from, to),
-- $3 the branches (NULL: all), $4 the range's last day, $5 the argument,
-- $7 the time zone.
-- "now" facts describe the present and ignore the range.
CREATE OR REPLACE FUNCTION stats_fact_sql(p_fact text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_cols text := 'NULL::text AS patron_category, NULL::text AS location, NULL::text AS via, '
                   'NULL::text AS channel, NULL::integer AS from_branch_id, '
                   'NULL::integer AS to_branch_id';
    v_hold_type text := '(SELECT i.item_type FROM item i WHERE i.id = coalesce(h.captured_item_id, '
                        'h.item_id)) AS item_type';
    -- A transit's columns after branch_id (its two branches), and its scope: either end.
    v_transit_cols text := 'NULL::text AS item_type, NULL::text AS patron_category, '
                           'NULL::text AS location, NULL::text AS via, NULL::text AS channel, '
                           't.from_branch_id, t.to_branch_id';
    v_transit_scope text := 'AND ($3 IS NULL OR t.from_branch_id = ANY ($3) '
                            'OR t.to_branch_id = ANY ($3))';
    -- The notices of one outcome (%L).
    v_notices text := 'SELECT n.at AS ts, n.branch_id, NULL::text AS item_type, '
                      'NULL::text AS patron_category, NULL::text AS location, NULL::text AS via, '
                      'n.channel, NULL::integer AS from_branch_id, NULL::integer AS to_branch_id, '
                      '1::numeric AS v FROM stat_notice_event n '
                      'WHERE n.at >= $1 AND n.at < $2 AND n.outcome = %L '
                      'AND ($3 IS NULL OR n.branch_id = ANY ($3))';
BEGIN
    RETURN CASE p_fact
        WHEN 'holds_placed' THEN
            'SELECT h.placed_at AS ts, h.pickup_branch_id AS branch_id, ' || v_hold_type
            || ', ' || v_cols || ', 1::numeric AS v FROM hold h '
            'WHERE h.placed_at >= $1 AND h.placed_at < $2 '
            'AND ($3 IS NULL OR h.pickup_branch_id = ANY ($3))'
        WHEN 'holds_filled' THEN
            'SELECT h.filled_at AS ts, h.pickup_branch_id AS branch_id, ' || v_hold_type
            || ', ' || v_cols || ', 1::numeric AS v FROM hold h '
            'WHERE h.filled_at >= $1 AND h.filled_at < $2 AND h.status = ''filled'' '
            'AND ($3 IS NULL OR h.pickup_branch_id = ANY ($3))'
        WHEN 'holds_expired' THEN
            'SELECT h.closed_at AS ts, h.pickup_branch_id AS branch_id, ' || v_hold_type
            || ', ' || v_cols || ', 1::numeric AS v FROM hold h '
            'WHERE h.closed_at >= $1 AND h.closed_at < $2 AND h.status = ''expired'' '
            'AND h.captured_item_id IS NOT NULL '
            'AND ($3 IS NULL OR h.pickup_branch_id = ANY ($3))'
        WHEN 'holds_cancelled' THEN
            'SELECT h.closed_at AS ts, h.pickup_branch_id AS branch_id, ' || v_hold_type
            || ', ' || v_cols || ', 1::numeric AS v FROM hold h '
            'WHERE h.closed_at >= $1 AND h.closed_at < $2 AND h.status = ''cancelled'' '
            'AND ($3 IS NULL OR h.pickup_branch_id = ANY ($3))'
        WHEN 'hold_wait' THEN
            'SELECT h.ready_at AS ts, h.pickup_branch_id AS branch_id, ' || v_hold_type
            || ', ' || v_cols || ', (extract(epoch FROM h.ready_at - h.placed_at) / 3600)::numeric'
            ' AS v FROM hold h '
            'WHERE h.ready_at >= $1 AND h.ready_at < $2 '
            'AND ($3 IS NULL OR h.pickup_branch_id = ANY ($3))'
        WHEN 'holds_waiting_now' THEN
            'SELECT NULL::timestamptz AS ts, h.pickup_branch_id AS branch_id, ' || v_hold_type
            || ', ' || v_cols || ', 1::numeric AS v FROM hold h '
            'WHERE h.status = ''waiting'' AND ($3 IS NULL OR h.pickup_branch_id = ANY ($3))'
        WHEN 'holds_on_shelf_now' THEN
            'SELECT NULL::timestamptz AS ts, h.pickup_branch_id AS branch_id, ' || v_hold_type
            || ', ' || v_cols || ', 1::numeric AS v FROM hold h '
            'WHERE h.status = ''ready'' AND ($3 IS NULL OR h.pickup_branch_id = ANY ($3))'
        WHEN 'transits_sent' THEN
            'SELECT t.sent_at AS ts, t.from_branch_id AS branch_id, ' || v_transit_cols
            || ', 1::numeric AS v FROM transit t WHERE t.sent_at >= $1 AND t.sent_at < $2 '
            || v_transit_scope
        WHEN 'transit_time' THEN
            'SELECT t.sent_at AS ts, t.from_branch_id AS branch_id, ' || v_transit_cols
            || ', (extract(epoch FROM t.received_at - t.sent_at) / 3600)::numeric AS v '
            'FROM transit t WHERE t.sent_at >= $1 AND t.sent_at < $2 '
            'AND t.received_at IS NOT NULL ' || v_transit_scope
        WHEN 'transits_overdue_now' THEN
            'SELECT NULL::timestamptz AS ts, t.to_branch_id AS branch_id, ' || v_transit_cols
            || ', 1::numeric AS v FROM transit t '
            'WHERE t.received_at IS NULL AND t.cancelled_at IS NULL AND transit_overdue(t) '
            || v_transit_scope
        WHEN 'registrations' THEN
            'SELECT p.created_at AS ts, p.home_branch_id AS branch_id, NULL::text AS item_type, '
            'p.category AS patron_category, NULL::text AS location, NULL::text AS via, '
            'NULL::text AS channel, NULL::integer AS from_branch_id, '
            'NULL::integer AS to_branch_id, 1::numeric AS v FROM patron p '
            'WHERE p.created_at >= $1 AND p.created_at < $2 AND p.merged_into IS NULL '
            'AND ($3 IS NULL OR p.home_branch_id = ANY ($3))'
        WHEN 'copies_idle' THEN
            'SELECT NULL::timestamptz AS ts, i.owning_branch_id AS branch_id, i.item_type, '
            'NULL::text AS patron_category, i.location, NULL::text AS via, NULL::text AS channel, '
            'NULL::integer AS from_branch_id, NULL::integer AS to_branch_id, 1::numeric AS v '
            'FROM item i '
            'WHERE i.status NOT IN (''withdrawn'', ''lost'', ''missing'') '
            'AND i.date_added <= ($4 - make_interval(months => $5))::date '
            'AND (i.last_circulated IS NULL OR i.last_circulated '
            '     < ((($4 - make_interval(months => $5))::date + 1)::timestamp AT TIME ZONE $7)) '
            'AND ($3 IS NULL OR i.owning_branch_id = ANY ($3))'
        WHEN 'notices_sent' THEN format(v_notices, 'sent')
        WHEN 'notices_failed' THEN format(v_notices, 'failed')
        WHEN 'notices_exported' THEN format(v_notices, 'exported')
    END;
END
$$;

-- A measure over facts: p_param is "fact:aggregate" (aggregate count,
-- median or p90), e.g. 'hold_wait:median'.
CREATE OR REPLACE FUNCTION stats_src_facts(p_from date, p_to date, p_time text, p_by text[],
                                           p_branches integer[], p_arg integer, p_param text)
RETURNS TABLE (period text, keys text[], value numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_tz text := library_setting_text('timezone');
    v_facts text := stats_fact_sql(split_part(p_param, ':', 1));
    v_agg text := CASE split_part(p_param, ':', 2)
        WHEN 'count' THEN 'count(*)::numeric'
        WHEN 'median' THEN 'round((percentile_cont(0.5) WITHIN GROUP (ORDER BY x.v))::numeric, 2)'
        WHEN 'p90' THEN 'round((percentile_cont(0.9) WITHIN GROUP (ORDER BY x.v))::numeric, 2)'
        END;
BEGIN
    IF v_facts IS NULL OR v_agg IS NULL THEN
        RAISE EXCEPTION 'stat_measure param % names no fact and aggregate', p_param;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT stats_period($6, stats_bucket($6, x.ts AT TIME ZONE $7)), %1$s, %2$s '
        'FROM (%3$s) x '
        'LEFT JOIN branch b ON b.id = x.branch_id '
        'LEFT JOIN branch fb ON fb.id = x.from_branch_id '
        'LEFT JOIN branch tb ON tb.id = x.to_branch_id '
        'GROUP BY 1, 2',
        stats_keys_sql(p_by), v_agg, v_facts)
    USING (p_from::timestamp AT TIME ZONE v_tz), ((p_to + 1)::timestamp AT TIME ZONE v_tz),
          p_branches, p_to, p_arg, p_time, v_tz;
END
$$;

-- Turnover: circulation (checkouts and renewals) at the branch in the range
-- divided by the copies the branch owns now (not withdrawn, lost or
-- missing), matched on branch and item type: the numerator is counted where
-- the loan was made (the rollups know no owner), the denominator by owning
-- branch. So a branch lending many copies it does not own shows a high
-- turnover, and a pair (branch, item type) with circulation but no copy owned
-- has no row. Without the branch split it is all circulation at the branches
-- over all copies they own.
CREATE OR REPLACE FUNCTION stats_src_turnover(p_from date, p_to date, p_time text, p_by text[],
                                              p_branches integer[], p_arg integer,
                                              p_param text)
RETURNS TABLE (period text, keys text[], value numeric)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH held AS (SELECT %1$s AS keys, count(*) AS copies '
        '              FROM (SELECT i.owning_branch_id AS branch_id, i.item_type FROM item i '
        '                    WHERE i.status NOT IN (''withdrawn'', ''lost'', ''missing'') '
        '                      AND ($1 IS NULL OR i.owning_branch_id = ANY ($1))) x '
        '              JOIN branch b ON b.id = x.branch_id GROUP BY 1) '
        'SELECT c.period, c.keys, round(c.value / h.copies, 3) '
        'FROM stats_src_circ($2, $3, $4, $5, $1, NULL, ''checkout,renew'') c '
        'JOIN held h ON h.keys = c.keys',
        stats_keys_sql(p_by))
    USING p_branches, p_from, p_to, p_time, p_by;
END
$$;

-- ---------------------------------------------------------------- patron counts

-- Patron activity counts as of the end of local day p_day, per home branch
-- and category (branches p_branches, NULL: all), from the activity dates as
-- they stand now: the records registered by that day's end (merged
-- duplicates not counted), those used or renewed in the 3 years up to it
-- (last_activity_on, else the registration day: IMLS registered users), and
-- those with a checkout or renewal in the 12 months up to it
-- (last_borrowed_on). A date after p_day counts too (what the record did
-- before it is not kept): exact for today, for a past day an overcount by the
-- patrons idle then who came back since; the daily snapshots below keep it
-- exact for the days they were taken.
CREATE OR REPLACE FUNCTION stats_patron_count(p_day date, p_branches integer[])
RETURNS TABLE (branch_id integer, patron_category text, registered_users bigint,
               active_borrowers bigint, records bigint)
LANGUAGE sql STABLE AS $$
    SELECT p.home_branch_id, p.category,
           count(*) FILTER (WHERE coalesce(pc.last_activity_on, library_local_date(p.created_at))
                                  > (p_day - interval '3 years')::date),
           count(*) FILTER (WHERE pc.last_borrowed_on > (p_day - interval '12 months')::date),
           count(*)
    FROM patron p LEFT JOIN patron_circ pc ON pc.patron_id = p.id
    WHERE p.merged_into IS NULL
      AND p.created_at < ((p_day + 1)::timestamp AT TIME ZONE library_setting_text('timezone'))
      AND (p_branches IS NULL OR p.home_branch_id = ANY (p_branches))
    GROUP BY 1, 2
$$;

-- Keeps the counts of the end of local day p_day (stat_patron_day) unless a
-- snapshot of that day exists. stats_rollup_run calls it for yesterday on the
-- first run of each day, seconds after midnight while the daemon runs; one
-- scan of patron and patron_circ. True when it wrote the snapshot.
CREATE OR REPLACE FUNCTION stats_patron_snapshot(p_day date) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stat_patron_snapshot (day) VALUES (p_day) ON CONFLICT (day) DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO stat_patron_day (day, branch_id, patron_category, registered_users,
                                 active_borrowers, patrons)
    SELECT p_day, c.branch_id, c.patron_category, c.registered_users, c.active_borrowers,
           c.records
    FROM stats_patron_count(p_day, NULL) c;
    RETURN true;
END
$$;

-- Where the patron counts as of the end of local day p_day come from, and a
-- sentence saying so (pls_report's how):
--   * p_day today or later: counted now, as of today (asof today);
--   * a past day: its snapshot, else the first one taken within 31 days
--     after it (asof that day): a later one would count registrations and
--     activity of another period (the first snapshot after an upgrade, for
--     every year before it);
--   * else counted now from the activity dates as they stand, as of p_day.
CREATE OR REPLACE FUNCTION stats_patron_basis(p_day date, OUT asof date, OUT snapshot boolean,
                                              OUT how text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_today date := library_today();
BEGIN
    IF p_day >= v_today THEN
        asof := v_today;
        snapshot := false;
        how := format('Counted when the report ran (%s).', v_today);
        RETURN;
    END IF;
    SELECT s.day INTO asof FROM stat_patron_snapshot s
    WHERE s.day >= p_day AND s.day <= p_day + 31
    ORDER BY s.day LIMIT 1;
    snapshot := FOUND;
    IF snapshot AND asof = p_day THEN
        how := format('From the counts kept at the end of %s.', p_day);
    ELSIF snapshot THEN
        how := format('From the counts kept at the end of %s, the first kept after %s.', asof,
                      p_day);
    ELSE
        asof := p_day;
        how := format('No counts were kept at the end of %s: counted from the activity dates '
                      'as they stood when the report ran (%s), so patrons idle then who came '
                      'back since are counted.', p_day, v_today);
    END IF;
END
$$;

-- The patron counts as of the end of local day p_day (stats_patron_basis
-- says from where), per home branch and category.
CREATE OR REPLACE FUNCTION stats_patron_figures(p_day date, p_branches integer[])
RETURNS TABLE (branch_id integer, patron_category text, registered_users bigint,
               active_borrowers bigint, records bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_basis record := stats_patron_basis(p_day);
BEGIN
    IF v_basis.snapshot THEN
        RETURN QUERY
        SELECT d.branch_id, d.patron_category, d.registered_users, d.active_borrowers, d.patrons
        FROM stat_patron_day d
        WHERE d.day = v_basis.asof AND (p_branches IS NULL OR d.branch_id = ANY (p_branches));
    ELSE
        RETURN QUERY SELECT * FROM stats_patron_count(v_basis.asof, p_branches);
    END IF;
END
$$;

-- registered_users and active_borrowers (p_param, one of them) as of the
-- range's end, by home branch and category.
CREATE OR REPLACE FUNCTION stats_src_patrons(p_from date, p_to date, p_time text, p_by text[],
                                             p_branches integer[], p_arg integer,
                                             p_param text)
RETURNS TABLE (period text, keys text[], value numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_column text := CASE p_param WHEN 'registered_users' THEN 'registered_users'
                                  WHEN 'active_borrowers' THEN 'active_borrowers' END;
BEGIN
    IF v_column IS NULL THEN
        RAISE EXCEPTION 'stat_measure param % names no patron count', p_param;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT ''''::text, %1$s, sum(x.%2$s)::numeric '
        'FROM stats_patron_figures($1, $2) x JOIN branch b ON b.id = x.branch_id '
        'GROUP BY 2 HAVING sum(x.%2$s) > 0',
        stats_keys_sql(p_by), v_column)
    USING p_to, p_branches;
END
$$;

-- ---------------------------------------------------------------- rooms and programs

-- The one shape of the range sources below: the rows p_rows (a SELECT over
-- our own tables giving branch_id and what p_at, p_value and the keys
-- read), where $1 and $2 are the local midnights starting p_from and ending
-- p_to, $3 the branches (NULL: all), $5 the time zone, $6 p_extra, $7 and
-- $8 p_from and p_to themselves (rows kept by day); each row counted in the
-- period of p_at (a local timestamp over x), p_value (an aggregate over x)
-- per period and keys of p_by. Only our own SQL text goes in.
CREATE OR REPLACE FUNCTION stats_grouped(p_rows text, p_at text, p_value text, p_from date,
                                         p_to date, p_time text, p_by text[],
                                         p_branches integer[], p_extra numeric DEFAULT NULL)
RETURNS TABLE (period text, keys text[], value numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_tz text := library_setting_text('timezone');
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT stats_period($4, stats_bucket($4, %1$s)), %2$s, %3$s '
        'FROM (%4$s) x '
        'JOIN branch b ON b.id = x.branch_id '
        'GROUP BY 1, 2',
        p_at, stats_keys_sql(p_by), p_value, p_rows)
    USING (p_from::timestamp AT TIME ZONE v_tz), ((p_to + 1)::timestamp AT TIME ZONE v_tz),
          p_branches, p_time, v_tz, p_extra, p_from, p_to;
END
$$;

-- Room bookings by the local day they start: p_param 'bookings' (count, by
-- status: all of them, cancelled and no-shows too), 'hours' (booked hours
-- of the bookings that were used or are to come: tentative, confirmed,
-- checked in, completed), 'no_shows' (count). A hall's booking counts once,
-- on the hall. No patron is named: the rows read room, category and status.
-- A room is labelled BRANCH/name: two branches may each have a "Study 1".
CREATE OR REPLACE FUNCTION stats_src_rooms(p_from date, p_to date, p_time text, p_by text[],
                                           p_branches integer[], p_arg integer, p_param text)
RETURNS TABLE (period text, keys text[], value numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_value text := CASE p_param
        WHEN 'bookings' THEN 'count(*)::numeric'
        WHEN 'no_shows' THEN 'count(*)::numeric'
        WHEN 'hours' THEN 'round(sum(extract(epoch FROM upper(x.during) - lower(x.during)))'
                          '::numeric / 3600, 2)' END;
    v_where text := CASE p_param
        WHEN 'bookings' THEN 'true'
        WHEN 'no_shows' THEN 'k.status = ''no_show'''
        WHEN 'hours' THEN 'k.status NOT IN (''cancelled'', ''no_show'')' END;
BEGIN
    IF v_value IS NULL THEN
        RAISE EXCEPTION 'stat_measure param % names no room count', p_param;
    END IF;
    RETURN QUERY SELECT * FROM stats_grouped(
        format('SELECT k.during, k.status, r.branch_id, rb.code || ''/'' || r.name AS room, '
               '       r.category '
               'FROM room_booking k JOIN room r ON r.id = k.room_id '
               'JOIN branch rb ON rb.id = r.branch_id '
               'WHERE lower(k.during) >= $1 AND lower(k.during) < $2 '
               '  AND ($3 IS NULL OR r.branch_id = ANY ($3)) AND %s', v_where),
        'lower(x.during) AT TIME ZONE $5', v_value, p_from, p_to, p_time, p_by, p_branches);
END
$$;

-- Program sessions held (started, not cancelled) by the local day they start, by the
-- program's branch, audience and venue: p_param 'sessions' (count) or
-- 'attendance' (sum; a session without attendance recorded counts 0).
CREATE OR REPLACE FUNCTION stats_src_programs(p_from date, p_to date, p_time text, p_by text[],
                                              p_branches integer[], p_arg integer,
                                              p_param text)
RETURNS TABLE (period text, keys text[], value numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_value text := CASE p_param
        WHEN 'sessions' THEN 'count(*)::numeric'
        WHEN 'attendance' THEN 'coalesce(sum(x.attendance), 0)::numeric' END;
BEGIN
    IF v_value IS NULL THEN
        RAISE EXCEPTION 'stat_measure param % names no program count', p_param;
    END IF;
    RETURN QUERY SELECT * FROM stats_grouped(
        'SELECT s.during, s.attendance, g.branch_id, g.audience, g.venue '
        'FROM program_session s JOIN program g ON g.id = s.program_id '
        'WHERE lower(s.during) >= $1 AND lower(s.during) < $2 AND NOT s.cancelled '
        '  AND lower(s.during) <= now() '
        '  AND ($3 IS NULL OR g.branch_id = ANY ($3))',
        'lower(x.during) AT TIME ZONE $5', v_value, p_from, p_to, p_time, p_by, p_branches);
END
$$;

-- ---------------------------------------------------------------- public service

-- Inquiries (desk tallies) by the local time they were asked: p_param
-- 'count' (all of them), 'reference' (those whose kind counts as reference:
-- service_code.reference as it is now, so every kind but directional
-- unless a coordinator changed that) or 'hours' (time spent, minutes / 60).
-- By branch, desk, channel, kind and READ level; never by who asked.
CREATE OR REPLACE FUNCTION stats_src_inquiries(p_from date, p_to date, p_time text,
                                               p_by text[], p_branches integer[], p_arg integer,
                                               p_param text)
RETURNS TABLE (period text, keys text[], value numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_value text := CASE p_param
        WHEN 'count' THEN 'count(*)::numeric'
        WHEN 'reference' THEN 'count(*)::numeric'
        WHEN 'hours' THEN 'round(sum(x.minutes)::numeric / 60, 2)' END;
    v_where text := CASE p_param
        WHEN 'count' THEN 'true'
        WHEN 'reference' THEN 'k.reference'
        WHEN 'hours' THEN 'true' END;
BEGIN
    IF v_value IS NULL THEN
        RAISE EXCEPTION 'stat_measure param % names no inquiry count', p_param;
    END IF;
    RETURN QUERY SELECT * FROM stats_grouped(
        format('SELECT q.asked_at, q.branch_id, q.channel, q.minutes, '
               '       q.read_level::text AS read_level, k.code AS kind, d.code AS desk '
               'FROM inquiry q JOIN service_code k ON k.id = q.kind_id '
               'LEFT JOIN service_desk d ON d.id = q.desk_id '
               'WHERE q.asked_at >= $1 AND q.asked_at < $2 '
               '  AND ($3 IS NULL OR q.branch_id = ANY ($3)) AND %s', v_where),
        'x.asked_at AT TIME ZONE $5', v_value, p_from, p_to, p_time, p_by, p_branches);
END
$$;

-- Visits: door counter crossings over the setting visits_divisor, rounded
-- down, each period counted on the local day (and hour) it starts.
CREATE OR REPLACE FUNCTION stats_src_visits(p_from date, p_to date, p_time text, p_by text[],
                                            p_branches integer[], p_arg integer, p_param text)
RETURNS TABLE (period text, keys text[], value numeric)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT * FROM stats_grouped(
        'SELECT g.period, g.branch_id, g.counter, g.crossings FROM gate_count g '
        'WHERE lower(g.period) >= $1 AND lower(g.period) < $2 '
        '  AND ($3 IS NULL OR g.branch_id = ANY ($3))',
        'lower(x.period) AT TIME ZONE $5', 'floor(sum(x.crossings) / $6)::numeric',
        p_from, p_to, p_time, p_by, p_branches, service_visits_divisor());
END
$$;

-- Headcount: the average number of people per sweep, by the local time the
-- sweeps were taken: the people counted (in the area and activity split
-- by) over the number of sweeps (of the branch, when split by branch) in
-- the period. Every sweep counts every area, so an area's zeros lower its
-- average; an activity not counted in a sweep counts 0 in it.
CREATE OR REPLACE FUNCTION stats_src_headcount(p_from date, p_to date, p_time text,
                                               p_by text[], p_branches integer[], p_arg integer,
                                               p_param text)
RETURNS TABLE (period text, keys text[], value numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_tz text := library_setting_text('timezone');
    v_bk text := CASE WHEN 'branch' = ANY (p_by) THEN 'b.code' ELSE '''''' END;
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH w AS MATERIALIZED ('
        '    SELECT w.id, stats_bucket($4, w.taken_at AT TIME ZONE $5) AS bucket, w.branch_id '
        '    FROM sweep w WHERE w.taken_at >= $1 AND w.taken_at < $2 '
        '      AND ($3 IS NULL OR w.branch_id = ANY ($3))), '
        'sums AS ('
        '    SELECT w.bucket, %1$s AS keys, %2$s AS bk, sum(x.headcount) AS n '
        '    FROM w JOIN (SELECT c.sweep_id, c.headcount, a.code AS area, v.code AS activity '
        '                 FROM sweep_count c JOIN service_code a ON a.id = c.area_id '
        '                 LEFT JOIN service_code v ON v.id = c.activity_id) x '
        '      ON x.sweep_id = w.id '
        '    JOIN branch b ON b.id = w.branch_id '
        '    GROUP BY 1, 2, 3), '
        'sweeps AS ('
        '    SELECT w.bucket, %2$s AS bk, count(*) AS n '
        '    FROM w JOIN branch b ON b.id = w.branch_id GROUP BY 1, 2) '
        'SELECT stats_period($4, s.bucket), s.keys, round(s.n::numeric / c.n, 1) '
        'FROM sums s JOIN sweeps c ON c.bucket = s.bucket AND c.bk = s.bk',
        stats_keys_sql(p_by), v_bk)
    USING (p_from::timestamp AT TIME ZONE v_tz), ((p_to + 1)::timestamp AT TIME ZONE v_tz),
          p_branches, p_time, v_tz;
END
$$;

-- Weeding decisions (weeding_decision) by the local time they were made, by
-- the copy's branch when decided, the decision and the copy's collection
-- then. No staff member and no patron in the rows.
CREATE OR REPLACE FUNCTION stats_src_weeding(p_from date, p_to date, p_time text, p_by text[],
                                             p_branches integer[], p_arg integer, p_param text)
RETURNS TABLE (period text, keys text[], value numeric)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT * FROM stats_grouped(
        'SELECT d.decided_at, d.branch_id, d.decision, d.collection FROM weeding_decision d '
        'WHERE d.decided_at >= $1 AND d.decided_at < $2 '
        '  AND ($3 IS NULL OR d.branch_id = ANY ($3))',
        'x.decided_at AT TIME ZONE $5', 'count(*)::numeric', p_from, p_to, p_time, p_by,
        p_branches);
END
$$;

-- Public computer sessions by local day (computer_use).
CREATE OR REPLACE FUNCTION stats_src_computers(p_from date, p_to date, p_time text,
                                               p_by text[], p_branches integer[], p_arg integer,
                                               p_param text)
RETURNS TABLE (period text, keys text[], value numeric)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT * FROM stats_grouped(
        'SELECT u.day, u.branch_id, u.sessions FROM computer_use u '
        'WHERE u.day >= $7 AND u.day <= $8 '
        '  AND ($3 IS NULL OR u.branch_id = ANY ($3))',
        'x.day::timestamp', 'sum(x.sessions)::numeric', p_from, p_to, p_time, p_by,
        p_branches);
END
$$;

-- ---------------------------------------------------------------- the registry

INSERT INTO stat_measure (name, title, unit, source, param, dims, times, kind, description, ord)
VALUES
    ('checkouts', 'Checkouts', 'count', 'stats_src_circ', 'checkout',
     '{branch,item_type,patron_category,location,via}',
     '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Loans made (circ_event checkout), at the branch that lent the copy.', 10),
    ('renewals', 'Renewals', 'count', 'stats_src_circ', 'renew',
     '{branch,item_type,patron_category,location,via}',
     '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Loans renewed (circ_event renew), at the branch that renewed; via tells desk, '
     'self-check and automatic renewals apart.', 20),
    ('checkins', 'Checkins', 'count', 'stats_src_circ', 'checkin',
     '{branch,item_type,patron_category,location,via}',
     '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Loans ended by a return (circ_event checkin), at the branch the copy came back to.', 30),
    ('in_house_uses', 'In-house uses', 'count', 'stats_src_circ', 'in_house_use',
     '{branch,item_type,location,via}',
     '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Copies used in the library and recorded by a scan (circ_event in_house_use).', 40),
    ('circulation', 'Circulation (checkouts and renewals)', 'count', 'stats_src_circ',
     'checkout,renew', '{branch,item_type,patron_category,location,via}',
     '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Checkouts plus renewals: the IMLS PLS physical circulation (PHYSCIR).', 50),
    ('turnover', 'Turnover (circulation per copy held)', 'ratio', 'stats_src_turnover', '',
     '{branch,item_type}', '{none,month,year}', 'range',
     'Circulation at the branch ÷ copies the branch owns: checkouts and renewals made at '
     'the branch in the range divided by the copies it owns now (not withdrawn, lost or '
     'missing), matched on branch and item type.', 60),
    ('copies_idle', 'Copies not borrowed', 'count', 'stats_src_facts', 'copies_idle:count',
     '{branch,item_type,location}', '{none}', 'now',
     'Copies held (not withdrawn, lost or missing) that were not checked out in the arg '
     'months (default: setting stats_idle_months) up to the range''s end, and were added '
     'before that.', 70),
    ('holds_placed', 'Holds placed', 'count', 'stats_src_facts', 'holds_placed:count',
     '{branch}', '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Holds placed, by pickup branch.', 100),
    ('holds_filled', 'Holds filled', 'count', 'stats_src_facts', 'holds_filled:count',
     '{branch,item_type}', '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Holds whose copy went out to the patron, by pickup branch and the copy''s item type.',
     110),
    ('holds_expired', 'Holds expired on the shelf', 'count', 'stats_src_facts',
     'holds_expired:count', '{branch,item_type}',
     '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Holds whose copy waited on the hold shelf until the shelf time ran out.', 120),
    ('holds_cancelled', 'Holds cancelled', 'count', 'stats_src_facts', 'holds_cancelled:count',
     '{branch}', '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Holds cancelled (by staff, a merge or the patron), by pickup branch.', 130),
    ('hold_wait_median_hours', 'Hold wait, median', 'hours', 'stats_src_facts',
     'hold_wait:median', '{branch,item_type}', '{none,day,week,month,year}', 'range',
     'Hours from placing a hold to its copy being on the hold shelf (median), for holds '
     'that became ready in the range.', 140),
    ('hold_wait_p90_hours', 'Hold wait, 90th percentile', 'hours', 'stats_src_facts',
     'hold_wait:p90', '{branch,item_type}', '{none,day,week,month,year}', 'range',
     'Hours from placing a hold to its copy being on the hold shelf (90th percentile), for '
     'holds that became ready in the range.', 150),
    ('holds_waiting_now', 'Holds waiting now', 'count', 'stats_src_facts',
     'holds_waiting_now:count', '{branch}', '{none}', 'now',
     'Holds waiting for a copy now, by pickup branch.', 160),
    ('holds_on_shelf_now', 'Holds on the shelf now', 'count', 'stats_src_facts',
     'holds_on_shelf_now:count', '{branch,item_type}', '{none}', 'now',
     'Copies waiting on a hold shelf for their patron now, by pickup branch.', 170),
    ('transits_sent', 'Transits sent', 'count', 'stats_src_facts', 'transits_sent:count',
     '{from_branch,to_branch}', '{none,day,week,month,year,hour,weekday,hour_of_week}',
     'range', 'Copies sent from one branch to another (holds and returns home).', 200),
    ('transit_median_hours', 'Transit time, median', 'hours', 'stats_src_facts',
     'transit_time:median', '{from_branch,to_branch}', '{none,day,week,month,year}', 'range',
     'Hours from sending to receiving (median), for transits sent in the range that arrived.',
     210),
    ('transits_overdue_now', 'Transits overdue now', 'count', 'stats_src_facts',
     'transits_overdue_now:count', '{from_branch,to_branch}', '{none}', 'now',
     'Copies on their way longer than transit_overdue_days now.', 220),
    ('registrations', 'Registrations', 'count', 'stats_src_facts', 'registrations:count',
     '{branch,patron_category}', '{none,day,week,month,year,hour,weekday,hour_of_week}',
     'range', 'Patron records created, by home branch and category (merged duplicates '
     'not counted).', 300),
    ('active_borrowers', 'Active borrowers', 'count', 'stats_src_patrons',
     'active_borrowers', '{branch,patron_category}', '{none}', 'now',
     'Patrons registered by the range''s end with a checkout or renewal in the 12 months up '
     'to it, by home branch and category; for a past end, the counts kept at the end of '
     'that day.', 310),
    ('registered_users', 'Registered users (IMLS)', 'count', 'stats_src_patrons',
     'registered_users', '{branch,patron_category}', '{none}', 'now',
     'Patron records registered by the range''s end and used or renewed in the 3 years up '
     'to it (IMLS PLS REGBOR), by home branch and category; for a past end, the counts kept '
     'at the end of that day.', 320),
    ('notices_sent', 'Notices sent', 'count', 'stats_src_facts', 'notices_sent:count',
     '{branch,channel}', '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Notices sent by e-mail.', 400),
    ('notices_failed', 'Notices failed', 'count', 'stats_src_facts', 'notices_failed:count',
     '{branch,channel}', '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Notices given up after failed attempts.', 410),
    ('notices_exported', 'Notices exported', 'count', 'stats_src_facts',
     'notices_exported:count', '{branch,channel}',
     '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Notices exported for sending by text message or phone call.', 420),
    ('room_bookings', 'Room bookings', 'count', 'stats_src_rooms', 'bookings',
     '{branch,room,category,status}', '{none,day,week,month,year,hour,weekday,hour_of_week}',
     'range', 'Room bookings by the day they start, whatever became of them (status tells '
     'tentative, confirmed, checked in, completed, cancelled and no-show apart).', 500),
    ('room_hours', 'Room hours booked', 'hours', 'stats_src_rooms', 'hours',
     '{branch,room,category}', '{none,day,week,month,year,weekday}', 'range',
     'Hours of room bookings that were used or are to come (cancelled and no-show ones not '
     'counted), by the day they start; real hours, so a booking over a clock change counts '
     'what it lasted.', 510),
    ('room_no_shows', 'Room no-shows', 'count', 'stats_src_rooms', 'no_shows',
     '{branch,room,category}', '{none,day,week,month,year,weekday}', 'range',
     'Room bookings released because nobody checked in.', 520),
    ('program_sessions', 'Program sessions', 'count', 'stats_src_programs', 'sessions',
     '{branch,audience,venue}', '{none,day,week,month,year,weekday}', 'range',
     'Program sessions held (started, not cancelled), by the program''s branch, audience and '
     'venue.',
     530),
    ('program_attendance', 'Program attendance', 'count', 'stats_src_programs', 'attendance',
     '{branch,audience,venue}', '{none,day,week,month,year,weekday}', 'range',
     'People at program sessions (online: peak concurrent viewers); a session without '
     'attendance recorded counts 0.', 540),
    ('inquiries', 'Inquiries (desk tallies)', 'count', 'stats_src_inquiries', 'count',
     '{branch,desk,channel,kind,read_level}',
     '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Questions answered at the desks (tallies), by the local time they were asked.', 600),
    ('reference_transactions', 'Reference transactions', 'count', 'stats_src_inquiries',
     'reference', '{branch,desk,channel,kind,read_level}',
     '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Inquiries whose kind counts as reference (IMLS PLS REFERENC): every kind but '
     'directional, unless a coordinator changed a kind''s reference flag.', 610),
    ('inquiry_minutes', 'Time spent on inquiries', 'hours', 'stats_src_inquiries', 'hours',
     '{branch,desk,channel,kind,read_level}', '{none,day,week,month,year,weekday}', 'range',
     'Hours staff spent answering inquiries (the minutes of each tally).', 620),
    ('visits', 'Visits (door counts)', 'count', 'stats_src_visits', '',
     '{branch,counter}', '{none,day,week,month,year,hour,weekday,hour_of_week}', 'range',
     'Door counter crossings divided by the setting visits_divisor (rounded down), each '
     'counted period on the local day and hour it starts.', 630),
    ('headcount', 'Headcount per sweep (average)', 'ratio', 'stats_src_headcount', '',
     '{branch,area,activity}', '{none,day,week,month,year,hour,weekday,hour_of_week}',
     'range', 'People counted by floor sweeps: the average per sweep of the period (zeros '
     'included), in the areas and activities split by.', 640),
    ('computer_sessions', 'Public computer sessions', 'count', 'stats_src_computers', '',
     '{branch}', '{none,day,week,month,year,weekday}', 'range',
     'Public computer sessions entered or imported per branch and day (IMLS PLS PITUSR).',
     650),
    ('weeding_decisions', 'Weeding decisions', 'count', 'stats_src_weeding', '',
     '{branch,decision,collection}', '{none,day,week,month,year,weekday}', 'range',
     'Decisions recorded about copies on the weeding list (withdraw, keep, mend, replace, '
     'transfer), by the copy''s branch and CREW collection when decided.', 700)
ON CONFLICT (name) DO UPDATE SET title = excluded.title, unit = excluded.unit,
    source = excluded.source, param = excluded.param, dims = excluded.dims,
    times = excluded.times, kind = excluded.kind, description = excluded.description,
    ord = excluded.ord;

-- ---------------------------------------------------------------- stats_query

CREATE OR REPLACE FUNCTION stats_measures()
RETURNS TABLE (name text, title text, unit text, dims text[], times text[], kind text,
               description text)
LANGUAGE sql STABLE AS $$
    SELECT m.name, m.title, m.unit, m.dims, m.times, m.kind, m.description
    FROM stat_measure m ORDER BY m.ord, m.name
$$;

-- One measure over local days p_from..p_to (inclusive), grouped by p_time
-- and the dimensions p_by, for branches p_branches (NULL: all), with the same
-- range a year earlier beside it when p_compare. See docs/STATISTICS.md.
CREATE OR REPLACE FUNCTION stats_query(p_measure text, p_from date, p_to date, p_time text,
                                       p_by text[], p_branches integer[], p_compare boolean,
                                       p_arg integer)
RETURNS TABLE (period text, keys text[], value numeric, previous numeric)
LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    m stat_measure;
    v_time text := coalesce(nullif(p_time, ''), 'none');
    v_by text[] := coalesce(p_by, '{}');
    v_from date := coalesce(p_from, library_today());
    v_to date := coalesce(p_to, p_from, library_today());
    v_arg integer := p_arg;
    v_shift interval;
    v_call text;
BEGIN
    SELECT * INTO m FROM stat_measure s WHERE s.name = p_measure;
    IF NOT FOUND THEN
        PERFORM field_refuse('measure', format('There is no measure %s; carrel stats measures '
                                               'lists them.', coalesce(p_measure, '(none)')));
    END IF;
    IF NOT v_time = ANY (m.times) THEN
        PERFORM field_refuse('time', format('%s can be grouped by %s, not %s.', m.name,
                                            array_to_string(m.times, ', '), v_time));
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(v_by) d WHERE d IS NULL OR NOT d = ANY (m.dims))
       OR cardinality(v_by) <> (SELECT count(DISTINCT d) FROM unnest(v_by) d) THEN
        PERFORM field_refuse('by', CASE WHEN cardinality(m.dims) = 0
                                        THEN format('%s cannot be split.', m.name)
                                        ELSE format('%s can be split by %s (each once).', m.name,
                                                    array_to_string(m.dims, ', ')) END);
    END IF;
    IF v_from > v_to THEN
        PERFORM field_refuse('from', format('The range starts (%s) after it ends (%s).',
                                           v_from, v_to));
    END IF;
    IF v_to >= v_from + interval '10 years' THEN
        PERFORM field_refuse('from', 'A range may cover at most 10 years.');
    END IF;
    IF m.name = 'copies_idle' THEN
        v_arg := coalesce(v_arg, library_setting_text('stats_idle_months')::integer);
        IF v_arg NOT BETWEEN 1 AND 600 THEN
            PERFORM field_refuse('arg', 'Months without a checkout: 1 to 600.');
        END IF;
    END IF;
    v_shift := CASE WHEN v_time = 'week' THEN interval '364 days' ELSE interval '1 year' END;
    -- A year later, 29 February is 28 February: its figures join those of
    -- the 28th (summed, or averaged for hours and ratios). A range that starts
    -- on 29 February compares with one starting on the 28th, whose day would
    -- land before the range: by day, that day is left out.
    -- The source comes from our registry, never from the caller. $1 and $2
    -- are the range, $8 and $9 the range a year earlier.
    v_call := 'SELECT s.period, s.keys, s.value FROM ' || m.source::text
              || '(%s, %s, $3, $4, $5, $6, $7) s';
    IF NOT coalesce(p_compare, false) OR m.kind = 'now' THEN
        RETURN QUERY EXECUTE format(
            'SELECT c.period, c.keys, c.value, NULL::numeric FROM (%s) c ORDER BY 1, 2',
            format(v_call, '$1', '$2'))
        USING v_from, v_to, v_time, v_by, p_branches, v_arg, m.param;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'WITH cur AS (%s), '
        'prev AS (SELECT stats_period_later($3, p.period) AS period, p.keys, '
        '                CASE WHEN $10 = ''count'' THEN sum(p.value) '
        '                     ELSE round(avg(p.value), 2) END AS value '
        '         FROM (%s) p '
        '         WHERE $3 <> ''day'' OR stats_period_later($3, p.period)::date >= $1 '
        '         GROUP BY 1, 2) '
        'SELECT coalesce(c.period, p.period), coalesce(c.keys, p.keys), '
        '       CASE WHEN $10 = ''count'' THEN coalesce(c.value, 0) ELSE c.value END, p.value '
        'FROM cur c FULL JOIN prev p ON p.period = c.period AND p.keys = c.keys '
        'ORDER BY 1, 2',
        format(v_call, '$1', '$2'), format(v_call, '$8', '$9'))
    USING v_from, v_to, v_time, v_by, p_branches, v_arg, m.param,
          (v_from - v_shift)::date, (v_to - v_shift)::date, m.unit;
END
$$;

-- ---------------------------------------------------------------- live

-- Per branch (p_branches, NULL: all), now: circulation (checkouts, renewals,
-- checkins) this local hour so far, the average of the same hour on the same
-- weekday over the last four weeks, holds on the shelf and waiting, transits
-- overdue to the branch, notices failed in the last 24 hours. Index scans
-- only (circ_event_branch, hold_shelf, hold_waiting_pickup, transit_to_open,
-- stat_notice_event_failed): the daemon runs it every few seconds.
CREATE OR REPLACE FUNCTION stats_live(p_branches integer[])
RETURNS TABLE (branch_id integer, branch_code text, branch_name text, hour text,
               circ_this_hour bigint, circ_hour_average numeric, holds_on_shelf bigint,
               holds_waiting bigint, transits_overdue bigint, notices_failing bigint)
LANGUAGE sql STABLE SET jit = off AS $$
    WITH h AS (SELECT library_setting_text('timezone') AS tz,
                      date_trunc('hour', now() AT TIME ZONE library_setting_text('timezone'))
                          AS local_hour)
    SELECT b.id, b.code, b.name, to_char(h.local_hour, 'YYYY-MM-DD HH24:00'),
           (SELECT count(*) FROM circ_event e
            WHERE e.branch_id = b.id AND e.at >= (h.local_hour AT TIME ZONE h.tz)
              AND e.at < ((h.local_hour + interval '1 hour') AT TIME ZONE h.tz)
              AND e.action IN ('checkout', 'renew', 'checkin')),
           (SELECT round(count(*) / 4.0, 1)
            FROM generate_series(1, 4) w
            JOIN circ_event e ON e.branch_id = b.id
             AND e.at >= ((h.local_hour - make_interval(weeks => w)) AT TIME ZONE h.tz)
             AND e.at < ((h.local_hour - make_interval(weeks => w) + interval '1 hour')
                         AT TIME ZONE h.tz)
             AND e.action IN ('checkout', 'renew', 'checkin')),
           (SELECT count(*) FROM hold x WHERE x.pickup_branch_id = b.id AND x.status = 'ready'),
           (SELECT count(*) FROM hold x
            WHERE x.pickup_branch_id = b.id AND x.status = 'waiting'),
           (SELECT count(*) FROM transit t
            WHERE t.to_branch_id = b.id AND t.received_at IS NULL AND t.cancelled_at IS NULL
              AND transit_overdue(t)),
           (SELECT count(*) FROM stat_notice_event n
            WHERE n.branch_id = b.id AND n.outcome = 'failed'
              AND n.at > now() - interval '24 hours')
    FROM branch b, h
    WHERE p_branches IS NULL OR b.id = ANY (p_branches)
    ORDER BY b.code
$$;

-- ---------------------------------------------------------------- notices

-- A notice sent, failed or exported is counted here: notices themselves are
-- deleted once their loan or hold has ended.
CREATE OR REPLACE FUNCTION stat_notice_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stat_notice_event (at, branch_id, channel, kind, outcome)
    SELECT clock_timestamp(),
           coalesce((SELECT h.pickup_branch_id FROM hold h WHERE h.id = NEW.hold_id),
                    (SELECT l.checkout_branch_id FROM loan l WHERE l.id = NEW.loan_id),
                    (SELECT r.branch_id FROM room_booking k JOIN room r ON r.id = k.room_id
                     WHERE k.id = NEW.booking_id),
                    -- a ticket's reply: its queue's branch, else the hours it
                    -- keeps, else the replying staff member's first branch
                    (SELECT coalesce(q.branch_id, q.hours_branch_id,
                                     (SELECT min(sb.branch_id) FROM staff_branch sb
                                      WHERE sb.staff_id = m.staff_id))
                     FROM ticket_message m JOIN ticket t ON t.id = m.ticket_id
                     JOIN ticket_queue q ON q.id = t.queue_id
                     WHERE m.id = NEW.ticket_message_id),
                    (SELECT p.home_branch_id FROM patron p WHERE p.id = NEW.patron_id),
                    -- no branch at all (a patron-less reply by a staff member
                    -- of no branch): the first branch, so it is still counted
                    (SELECT min(b.id) FROM branch b)),
           NEW.channel, NEW.kind, NEW.status;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER stat_notice_count AFTER UPDATE OF status ON notice
    FOR EACH ROW
    WHEN (NEW.status IN ('sent', 'failed', 'exported') AND OLD.status <> NEW.status)
    EXECUTE FUNCTION stat_notice_count();

-- ---------------------------------------------------------------- buy more

-- Titles with at least p_threshold live holds (waiting, in transit, on the
-- shelf; picked up at p_branches, NULL: all) per copy that can serve them
-- (not withdrawn, lost, missing or damaged; any branch), most per copy first.
-- A title with no such copy counts as one copy. NULL threshold: the setting
-- buy_more_holds_per_copy.
CREATE OR REPLACE FUNCTION stats_buy_more(p_branches integer[], p_threshold numeric,
                                          p_limit integer)
RETURNS TABLE (bib_id bigint, title text, author text, holds bigint, copies bigint,
               ratio numeric)
LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    v_threshold numeric := coalesce(p_threshold,
                                    library_setting_text('buy_more_holds_per_copy')::numeric);
BEGIN
    IF v_threshold < 0 THEN
        PERFORM field_refuse('threshold', 'The threshold is a number of holds per copy, 0 or '
                                          'more.');
    END IF;
    IF p_limit IS NOT NULL AND p_limit NOT BETWEEN 1 AND 1000 THEN
        PERFORM field_refuse('limit', 'List 1 to 1000 titles.');
    END IF;
    RETURN QUERY
    SELECT x.bib_id, b.title, b.author, x.holds, x.copies,
           round(x.holds::numeric / greatest(x.copies, 1), 2) AS ratio
    FROM (SELECT h.bib_id, count(*) AS holds,
                 (SELECT count(*) FROM item i
                  WHERE i.bib_id = h.bib_id
                    AND i.status NOT IN ('withdrawn', 'lost', 'missing', 'damaged')) AS copies
          FROM hold h
          WHERE h.status IN ('waiting', 'in_transit', 'ready')
            AND (p_branches IS NULL OR h.pickup_branch_id = ANY (p_branches))
          GROUP BY h.bib_id) x
    JOIN bib b ON b.id = x.bib_id
    WHERE x.holds::numeric / greatest(x.copies, 1) >= v_threshold
    ORDER BY 6 DESC, x.holds DESC, x.bib_id
    LIMIT coalesce(p_limit, 50);
END
$$;

-- ---------------------------------------------------------------- PLS

-- Public hours of branch p_branch on the days p_from..p_to: its weekly hours
-- (branch_hours) on every day that is not a closed day (branch_closed).
CREATE OR REPLACE FUNCTION stats_public_hours(p_branch integer, p_from date, p_to date)
RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT coalesce(round(sum(extract(epoch FROM bh.closes - bh.opens) / 3600)::numeric, 2), 0)
    FROM generate_series(p_from, p_to, interval '1 day') d
    JOIN branch_hours bh ON bh.branch_id = p_branch
                        AND bh.weekday = extract(isodow FROM d)
    WHERE NOT EXISTS (SELECT 1 FROM branch_closed c
                      WHERE c.branch_id = p_branch AND c.day = d::date)
$$;

-- The IMLS Public Libraries Survey lines the ILS can know for p_year, per
-- outlet (branches p_branches, NULL: all) and for the whole system
-- (branch_code NULL): counted, from the calendar or from settings. The
-- outlets added up are the whole system only when every outlet is asked for
-- (p_branches NULL): for some outlets (a branch manager's report) those rows
-- are left out, and only the lines that are the system's own (settings)
-- have branch_code NULL. VISITS, REFERENC and PITUSR come from the public
-- service tables (service.sql).
-- docs/STATISTICS.md says how each is made.
CREATE OR REPLACE FUNCTION pls_report(p_year integer, p_branches integer[])
RETURNS TABLE (code text, branch_code text, value numeric, basis text, how text)
LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    v_from date;
    v_to date;
    v_patrons record;
    v_kids text[] := string_to_array(replace(coalesce(
                         library_setting_text('pls_child_categories'), ''), ' ', ''), ',');
BEGIN
    IF p_year IS NULL OR p_year NOT BETWEEN 1990 AND 2199 THEN
        PERFORM field_refuse('year', 'Give the report''s year, 1990 to 2199, e.g. 2026.');
    END IF;
    v_from := make_date(p_year, 1, 1);
    v_to := make_date(p_year, 12, 31);
    -- REGBOR as of the year's end: its snapshot when the year is over.
    v_patrons := stats_patron_basis(v_to);
    RETURN QUERY
    WITH outlet AS (
        SELECT b.id, b.code FROM branch b
        WHERE p_branches IS NULL OR b.id = ANY (p_branches)
    ), circ AS (
        SELECT c.keys[1] AS code, c.keys[2] AS category, c.value
        FROM stats_src_circ(v_from, v_to, 'none', '{branch,patron_category}', p_branches,
                            NULL, 'checkout,renew') c
    ), regbor AS (
        SELECT f.branch_id AS id, sum(f.registered_users) AS n
        FROM stats_patron_figures(v_to, p_branches) f
        GROUP BY 1
    ), prog AS (
        -- program sessions held in the year (cancelled ones and those still to
        -- start not), per outlet
        SELECT g.branch_id AS id, g.audience, g.venue, count(*) AS n,
               coalesce(sum(s.attendance), 0) AS att,
               count(*) FILTER (WHERE s.attendance IS NULL) AS unrecorded
        FROM program_session s JOIN program g ON g.id = s.program_id
        WHERE lower(s.during) >= (v_from::timestamp AT TIME ZONE library_setting_text('timezone'))
          AND lower(s.during) < ((v_to + 1)::timestamp
                                 AT TIME ZONE library_setting_text('timezone'))
          AND lower(s.during) <= now()
          AND NOT s.cancelled AND (p_branches IS NULL OR g.branch_id = ANY (p_branches))
        GROUP BY 1, 2, 3
    ), prog_line (ord, code, audiences, venue, attendance, what) AS (
        VALUES (20, 'TOTPRO', NULL::text[], NULL::text, false, 'All program sessions'),
               (21, 'TOTATTEN', NULL, NULL, true, 'Attendance at all program sessions'),
               (22, 'KIDPRO', '{0-5,6-11}', NULL, false, 'Sessions for children 0-11'),
               (23, 'KIDATTEN', '{0-5,6-11}', NULL, true, 'Attendance at sessions for children 0-11'),
               (24, 'K0_5PRO', '{0-5}', NULL, false, 'Sessions for children 0-5'),
               (25, 'K0_5ATTEN', '{0-5}', NULL, true, 'Attendance at sessions for children 0-5'),
               (26, 'K6_11PRO', '{6-11}', NULL, false, 'Sessions for children 6-11'),
               (27, 'K6_11ATTEN', '{6-11}', NULL, true, 'Attendance at sessions for children 6-11'),
               (28, 'YAPRO', '{12-18}', NULL, false, 'Sessions for young adults 12-18'),
               (29, 'YAATTEN', '{12-18}', NULL, true, 'Attendance at sessions for young adults 12-18'),
               (30, 'ADULTPRO', '{19+}', NULL, false, 'Sessions for adults 19+'),
               (31, 'ADULTATTEN', '{19+}', NULL, true, 'Attendance at sessions for adults 19+'),
               (32, 'GENPRO', '{general}', NULL, false, 'Sessions for a general audience'),
               (33, 'GENATTEN', '{general}', NULL, true, 'Attendance at sessions for a general audience'),
               (34, 'ONSITEPRO', NULL, 'branch', false, 'Sessions held at the library'),
               (35, 'ONSITEATTEN', NULL, 'branch', true, 'Attendance at sessions held at the library'),
               (36, 'OFFSITEPRO', NULL, 'offsite', false, 'Sessions held elsewhere (offsite)'),
               (37, 'OFFSITEATTEN', NULL, 'offsite', true, 'Attendance at offsite sessions'),
               (38, 'VIRPRO', NULL, 'online', false, 'Live online sessions'),
               (39, 'VIRATTEN', NULL, 'online', true, 'Attendance at live online sessions (peak concurrent viewers)')
    ), open_day AS (
        -- the days of the year each outlet was open, up to today
        SELECT o.id, d::date AS day
        FROM outlet o
        JOIN generate_series(v_from, least(v_to, library_today()), interval '1 day') d ON true
        JOIN branch_hours bh ON bh.branch_id = o.id AND bh.weekday = extract(isodow FROM d)
        WHERE NOT EXISTS (SELECT 1 FROM branch_closed c
                          WHERE c.branch_id = o.id AND c.day = d::date)
    ), visit AS (
        -- door counter periods starting in the year, and the open days no
        -- counted period covers
        SELECT o.id,
               (SELECT floor(coalesce(sum(g.crossings), 0) / service_visits_divisor())
                FROM gate_count g
                WHERE g.branch_id = o.id AND lower(g.period) >= local_at(v_from, '00:00')
                  AND lower(g.period) < local_at(v_to + 1, '00:00')) AS n,
               (SELECT count(*) FROM open_day od
                WHERE od.id = o.id
                  AND NOT EXISTS (SELECT 1 FROM gate_count g
                                  WHERE g.branch_id = o.id
                                    AND g.period && service_day_range(od.day))) AS uncounted
        FROM outlet o
    ), refq AS (
        SELECT q.branch_id AS id, count(*) AS n
        FROM inquiry q JOIN service_code k ON k.id = q.kind_id AND k.reference
        WHERE q.asked_at >= local_at(v_from, '00:00') AND q.asked_at < local_at(v_to + 1, '00:00')
          AND (p_branches IS NULL OR q.branch_id = ANY (p_branches))
        GROUP BY 1
    ), pc AS (
        SELECT o.id,
               (SELECT coalesce(sum(u.sessions), 0) FROM computer_use u
                WHERE u.branch_id = o.id AND u.day BETWEEN v_from AND v_to) AS n,
               (SELECT count(*) FROM open_day od
                WHERE od.id = o.id
                  AND NOT EXISTS (SELECT 1 FROM computer_use u
                                  WHERE u.branch_id = o.id AND u.day = od.day)) AS uncounted
        FROM outlet o
    ), per_outlet AS (
        SELECT 1 AS ord, 'PHYSCIR' AS code, o.code AS branch_code,
               coalesce((SELECT sum(c.value) FROM circ c WHERE c.code = o.code), 0) AS value,
               'counted' AS basis,
               'Checkouts and renewals at the outlet in the year (circulation events).' AS how
        FROM outlet o
        UNION ALL
        SELECT 2, 'KIDPHYSCIR', o.code,
               coalesce((SELECT sum(c.value) FROM circ c
                         WHERE c.code = o.code AND c.category = ANY (v_kids)), 0),
               'counted',
               format('Checkouts and renewals at the outlet for patrons of the categories %s '
                      '(setting pls_child_categories).', array_to_string(v_kids, ', '))
        FROM outlet o
        UNION ALL
        SELECT 3, 'REGBOR', o.code, coalesce((SELECT r.n FROM regbor r WHERE r.id = o.id), 0),
               'counted',
               format('Patron records of this home branch registered by %s and used or '
                      'renewed after %s (merged duplicates not counted). %s',
                      v_patrons.asof, (v_patrons.asof - interval '3 years')::date,
                      v_patrons.how)
        FROM outlet o
        UNION ALL
        SELECT 4, 'HOURS', o.code, stats_public_hours(o.id, v_from, v_to), 'calendar',
               'The weekly opening hours on every day of the year, closed days subtracted '
               '(branch calendar).'
        FROM outlet o
        UNION ALL
        SELECT 5, 'WKS_OPEN', o.code, library_setting_text('pls_weeks_open')::numeric,
               'setting', 'Setting pls_weeks_open.'
        FROM outlet o
        UNION ALL
        SELECT l.ord, l.code, o.code,
               coalesce((SELECT sum(CASE WHEN l.attendance THEN g.att ELSE g.n END) FROM prog g
                         WHERE g.id = o.id AND (l.audiences IS NULL OR g.audience = ANY (l.audiences))
                           AND (l.venue IS NULL OR g.venue = l.venue)), 0),
               'counted',
               l.what || ' of the outlet''s programs held in the year (program sessions, '
               'cancelled ones not counted).'
               || CASE WHEN l.attendance THEN format(
                      ' A session without attendance recorded counts 0 (%s such sessions).',
                      coalesce((SELECT sum(g.unrecorded) FROM prog g
                                WHERE g.id = o.id
                                  AND (l.audiences IS NULL OR g.audience = ANY (l.audiences))
                                  AND (l.venue IS NULL OR g.venue = l.venue)), 0))
                       ELSE '' END
        FROM outlet o CROSS JOIN prog_line l
        UNION ALL
        SELECT 11, 'VISITS', o.code, v.n, 'counted',
               format('Door counter crossings at the outlet in the year (periods starting in '
                      'it) divided by %s (setting visits_divisor: crossings per visit), '
                      'rounded down. Open days no count covers: %s.',
                      service_visits_divisor(), v.uncounted)
        FROM outlet o JOIN visit v ON v.id = o.id
        UNION ALL
        SELECT 12, 'REFERENC', o.code, coalesce((SELECT r.n FROM refq r WHERE r.id = o.id), 0),
               'counted',
               format('Inquiries tallied at the outlet in the year whose kind counts as '
                      'reference; not counted: %s.',
                      coalesce((SELECT string_agg(k.code, ', ' ORDER BY k.ord, k.code)
                                FROM service_code k
                                WHERE k.list = 'inquiry_kind' AND NOT k.reference),
                               'no kind'))
        FROM outlet o
        UNION ALL
        SELECT 13, 'PITUSR', o.code, p.n, 'counted',
               format('Public computer sessions entered or imported for the outlet in the '
                      'year. Open days without a figure: %s.', p.uncounted)
        FROM outlet o JOIN pc p ON p.id = o.id
    )
    SELECT x.code, x.branch_code, x.value, x.basis, x.how FROM (
        SELECT p.ord, p.code, p.branch_code, p.value, p.basis, p.how FROM per_outlet p
        UNION ALL
        SELECT p.ord, p.code, NULL, CASE WHEN p.code = 'WKS_OPEN' THEN max(p.value)
                                         ELSE sum(p.value) END,
               min(p.basis),
               CASE p.code WHEN 'HOURS' THEN 'The outlets'' public hours added up.'
                           WHEN 'WKS_OPEN' THEN 'Setting pls_weeks_open.'
                           WHEN 'REGBOR' THEN 'The outlets'' figures added up. '
                                              || v_patrons.how
                           ELSE 'The outlets'' figures added up.' END
        FROM per_outlet p
        WHERE p_branches IS NULL
        GROUP BY p.ord, p.code
        UNION ALL
        SELECT 6, 'ODFINE', NULL,
               CASE WHEN lower(library_setting_text('pls_odfine')) = 'yes' THEN 1 ELSE 0 END,
               'setting', format('Setting pls_odfine (%s): 1 when fines are charged for '
                                 'overdue materials, else 0.',
                                 library_setting_text('pls_odfine'))
        UNION ALL
        SELECT 7, 'AUTORENEW', NULL,
               CASE WHEN lower(library_setting_text('pls_autorenew')) = 'yes' THEN 1 ELSE 0 END,
               'setting', format('Setting pls_autorenew (%s): 1 when loans renew '
                                 'automatically, else 0.',
                                 library_setting_text('pls_autorenew'))
    ) x
    ORDER BY x.ord, x.branch_code NULLS LAST;
END
$$;
