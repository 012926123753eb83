-- Local time on the wire: rooms, programs and staff schedules take and give
-- times as the library's local "YYYY-MM-DD HH:MM" (library setting
-- `timezone`; the seven branches share it) and store timestamptz. Also a
-- branch's opening period on a day as a time range, with daylight saving
-- applied. Called by rooms.sql, programs.sql and schedule.sql.

-- "2026-12-08 14:30" in the library's time zone. Anything else (seconds, a
-- zone, a day that does not exist) is refused as CR400 field:<p_field>. A
-- local time that does not exist (the hour skipped when clocks go forward)
-- is refused too: nobody books 02:30 on that night, and PostgreSQL would
-- silently move it.
CREATE OR REPLACE FUNCTION local_ts(p_text text, p_field text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_local timestamp;
    v_at timestamptz;
    v_tz text := library_setting_text('timezone');
BEGIN
    IF p_text IS NULL OR p_text !~ '^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
            MESSAGE = format('%s must be a local time as YYYY-MM-DD HH:MM.', p_field);
    END IF;
    BEGIN
        v_local := p_text::timestamp;
    EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
            MESSAGE = format('%s is not a real date and time: %s.', p_field, p_text);
    END;
    IF extract(year FROM v_local) NOT BETWEEN 1990 AND 2199 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
            MESSAGE = format('%s must be between the years 1990 and 2199.', p_field);
    END IF;
    v_at := v_local AT TIME ZONE v_tz;
    IF (v_at AT TIME ZONE v_tz) <> v_local THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
            MESSAGE = format('%s does not exist in local time (the clocks go forward then).',
                             p_text);
    END IF;
    RETURN v_at;
END
$$;

-- A local day "YYYY-MM-DD"; NULL text gives p_default.
CREATE OR REPLACE FUNCTION local_day(p_text text, p_field text, p_default date) RETURNS date
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_text IS NULL OR p_text = '' THEN
        RETURN p_default;
    END IF;
    IF p_text !~ '^\d{4}-\d{2}-\d{2}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
            MESSAGE = format('%s must be a date as YYYY-MM-DD.', p_field);
    END IF;
    BEGIN
        IF extract(year FROM p_text::date) NOT BETWEEN 1990 AND 2199 THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
                MESSAGE = format('%s must be between the years 1990 and 2199.', p_field);
        END IF;
        RETURN p_text::date;
    EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
            MESSAGE = format('%s is not a real date: %s.', p_field, p_text);
    END;
END
$$;

-- How a time leaves in replies of these domains: local "YYYY-MM-DD HH:MM".
CREATE OR REPLACE FUNCTION local_text(p_at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT local_text_in(p_at, library_setting_text('timezone'))
$$;

-- local_text in a time zone read once by the caller: a list of many rows
-- looks the setting up once, not once per time. STABLE as to_char is, so that
-- it is inlined.
CREATE OR REPLACE FUNCTION local_text_in(p_at timestamptz, p_tz text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE p_tz, 'YYYY-MM-DD HH24:MI')
$$;

-- Local "HH:MM" of a time.
CREATE OR REPLACE FUNCTION local_hhmm(p_at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE library_setting_text('timezone'), 'HH24:MI')
$$;

-- A local day and time of day as a timestamptz (daylight saving applied).
CREATE OR REPLACE FUNCTION local_at(p_day date, p_time time) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT (p_day + p_time) AT TIME ZONE library_setting_text('timezone')
$$;

-- When the branch is open on a local day: [opens, closes), or NULL when it
-- is closed (no hours that weekday, or a closed day in its calendar).
CREATE OR REPLACE FUNCTION branch_open_range(p_branch integer, p_day date) RETURNS tstzrange
LANGUAGE sql STABLE AS $$
    SELECT tstzrange(local_at(p_day, h.opens), local_at(p_day, h.closes))
    FROM branch_hours h
    WHERE h.branch_id = p_branch AND h.weekday = extract(isodow FROM p_day)
      AND NOT EXISTS (SELECT 1 FROM branch_closed c
                      WHERE c.branch_id = p_branch AND c.day = p_day)
$$;

-- ---------------------------------------------------------------- open hours

-- When branches are open between two local days (inclusive): one row per
-- branch of p_branches with every open period of its weekly hours, less its
-- closed days, as one multirange (daylight saving applied). A NULL element
-- stands for "any branch": the union of every branch's periods. Set-based
-- over the days and branches; the ticket clock (tickets.sql) counts in these.
CREATE OR REPLACE FUNCTION open_periods_of(p_branches integer[], p_from date, p_to date)
RETURNS TABLE (branch_id integer, periods tstzmultirange)
LANGUAGE plpgsql STABLE ROWS 8
-- Kept out of its callers' plans (plpgsql is never inlined): inlined, its
-- generic estimate (a thousand days of every branch) made callers costly
-- enough to be JIT-compiled, a second per call; jit off for the same reason.
SET jit = off AS $$
DECLARE
    v_tz text := library_setting_text('timezone');
BEGIN
    RETURN QUERY
    SELECT w.b, coalesce(range_agg(tstzrange((d.day + h.opens) AT TIME ZONE v_tz,
                                             (d.day + h.closes) AT TIME ZONE v_tz))
                         FILTER (WHERE h.branch_id IS NOT NULL), '{}'::tstzmultirange)
    FROM (SELECT DISTINCT b FROM unnest(p_branches) b) w
    CROSS JOIN (SELECT p_from + i AS day FROM generate_series(0, p_to - p_from) i) d
    LEFT JOIN branch_hours h ON h.weekday = extract(isodow FROM d.day)
                            AND (w.b IS NULL OR h.branch_id = w.b)
                            AND NOT EXISTS (SELECT 1 FROM branch_closed c
                                            WHERE c.branch_id = h.branch_id AND c.day = d.day)
    GROUP BY w.b;
END
$$;

-- open_periods_of for one branch (NULL: any branch). plpgsql, so that its
-- plan is kept for the session.
CREATE OR REPLACE FUNCTION open_periods(p_branch integer, p_from date, p_to date)
RETURNS tstzmultirange
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v tstzmultirange;
BEGIN
    SELECT o.periods INTO v FROM open_periods_of(ARRAY[p_branch], p_from, p_to) o;
    RETURN coalesce(v, '{}');
END
$$;

-- The seconds a multirange of times covers (NULL bounds count as nothing).
CREATE OR REPLACE FUNCTION period_seconds(p_periods tstzmultirange) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(sum(extract(epoch FROM upper(r)) - extract(epoch FROM lower(r))), 0)::bigint
    FROM unnest(p_periods) r
$$;

-- Seconds the branch (NULL: any branch) is open in [p_from, p_to); 0 when
-- p_to is not after p_from.
CREATE OR REPLACE FUNCTION open_seconds(p_branch integer, p_from timestamptz,
                                        p_to timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_to > p_from
                THEN period_seconds(open_periods(p_branch, library_local_date(p_from),
                                                 library_local_date(p_to))
                                    * tstzmultirange(tstzrange(p_from, p_to)))
                ELSE 0 END
$$;

-- The moment p_seconds of open time (of the branch; NULL: any branch) have
-- passed from p_from: p_from itself for 0 seconds or fewer, NULL when the
-- branch is not open that long within a year. Looks two weeks ahead first
-- (nearly every answer), then the year.
CREATE OR REPLACE FUNCTION open_add(p_branch integer, p_from timestamptz, p_seconds bigint)
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_day date := library_local_date(p_from);
    v_days integer;
    v_at timestamptz;
BEGIN
    IF p_seconds IS NULL OR p_from IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_seconds <= 0 THEN
        RETURN p_from;
    END IF;
    FOREACH v_days IN ARRAY ARRAY[14, 366] LOOP
        -- the running total of open seconds at the end of each period: the
        -- answer lies in the first period whose total reaches p_seconds
        SELECT upper(x.r) - make_interval(secs => x.total - p_seconds) INTO v_at
        FROM (SELECT r, sum(extract(epoch FROM upper(r)) - extract(epoch FROM lower(r)))
                            OVER (ORDER BY lower(r)) AS total
              FROM unnest(open_periods(p_branch, v_day, v_day + v_days)
                          * tstzmultirange(tstzrange(p_from, NULL))) r) x
        WHERE x.total >= p_seconds
        ORDER BY lower(x.r) LIMIT 1;
        IF v_at IS NOT NULL THEN
            RETURN v_at;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
