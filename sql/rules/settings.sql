-- Library settings (library_setting rows) and the library's local date.
-- Called by the circulation, hold and notice rules, and by statements of
-- server/circ.c, server/holds.c and server/marcimport.c.

-- PL/pgSQL, not SQL: a SQL function with a FROM is not inlined, and its
-- statement is parsed and planned again at every call (its plan lives as
-- long as the calling expression, one transaction); PL/pgSQL keeps the plan
-- for the session. A circulation reads settings a dozen times.
CREATE OR REPLACE FUNCTION library_setting_text(p_name text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT s.value FROM library_setting s WHERE s.name = p_name);
END
$$;

CREATE OR REPLACE FUNCTION library_today() RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT (now() AT TIME ZONE library_setting_text('timezone'))::date
$$;

CREATE OR REPLACE FUNCTION library_local_date(p_at timestamptz) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT (p_at AT TIME ZONE library_setting_text('timezone'))::date
$$;
