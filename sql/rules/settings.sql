-- Library settings (library_setting rows) and the library's local date.
-- Called by the circulation, hold and notice rules, and by statements of
-- server/circ.c, server/holds.c and server/marcimport.c.

CREATE OR REPLACE FUNCTION library_setting_text(p_name text) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT value FROM library_setting WHERE name = p_name $$;

CREATE OR REPLACE FUNCTION library_today() RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT (now() AT TIME ZONE library_setting_text('timezone'))::date
$$;

CREATE OR REPLACE FUNCTION library_local_date(p_at timestamptz) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT (p_at AT TIME ZONE library_setting_text('timezone'))::date
$$;
