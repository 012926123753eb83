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
    SELECT to_char(p_at AT TIME ZONE library_setting_text('timezone'), 'YYYY-MM-DD HH24:MI')
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
