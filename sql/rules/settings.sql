-- Library settings (library_setting rows) and the library's local date.
-- Called by the circulation, hold and notice rules, and by statements of
-- server/circ.c, server/holds.c and server/marcimport.c.

-- PL/pgSQL, not SQL: a SQL function with a FROM is not inlined, and its
-- statement is parsed and planned again at every call (its plan lives as
-- long as the calling expression, one transaction); PL/pgSQL keeps the plan
-- for the session. A circulation reads settings a dozen times.
--
-- Read once a transaction: the value is kept in a transaction-local
-- configuration variable (carrel.setting_NAME, '=' and the value, or '-' for
-- a setting that does not exist), so that the next reads in the same
-- transaction (a checkout asks for the time zone three times) cost no
-- statement. Assignments of simple expressions, not PERFORM: PL/pgSQL runs
-- them without an executor. A change of library_setting forgets the names
-- it touches in its own transaction (library_setting_forget); another
-- transaction's change is seen by the next transaction, as the settings of
-- one transaction should not move under it anyway.
CREATE OR REPLACE FUNCTION library_setting_text(p_name text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_kept text := current_setting('carrel.setting_' || p_name, true);
    v text;
BEGIN
    IF left(v_kept, 1) = '=' THEN
        RETURN substr(v_kept, 2);
    ELSIF v_kept = '-' THEN
        RETURN NULL;
    END IF;
    v := (SELECT s.value FROM library_setting s WHERE s.name = p_name);
    -- A name that cannot name a variable is read every time.
    IF p_name ~ '^[a-z_][a-z0-9_]*$' THEN
        v_kept := set_config('carrel.setting_' || p_name, coalesce('=' || v, '-'), true);
    END IF;
    RETURN v;
END
$$;

-- A change of a setting is seen by the rest of its own transaction.
CREATE OR REPLACE FUNCTION library_setting_forget() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_ignored text;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.name ~ '^[a-z_][a-z0-9_]*$' THEN
        v_ignored := set_config('carrel.setting_' || OLD.name, '', true);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.name ~ '^[a-z_][a-z0-9_]*$' THEN
        v_ignored := set_config('carrel.setting_' || NEW.name, '', true);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER library_setting_forget
    AFTER INSERT OR UPDATE OR DELETE ON library_setting
    FOR EACH ROW EXECUTE FUNCTION library_setting_forget();

CREATE OR REPLACE FUNCTION library_today() RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT (now() AT TIME ZONE library_setting_text('timezone'))::date
$$;

CREATE OR REPLACE FUNCTION library_local_date(p_at timestamptz) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT (p_at AT TIME ZONE library_setting_text('timezone'))::date
$$;
