-- Public service at the desks (issue 12): the lists staff tally with
-- (service_code_list / _save), inquiries (inquiry_add, inquiry_remove,
-- inquiry_list), door counts (gate_count_add, count_import), public
-- computer sessions (computer_sessions_set, count_import), floor sweeps
-- (sweep_save, sweep_list) and service levels by half hour
-- (service_levels). Called by server/service.c (requests 260-270); the
-- statistics of these tables are in stats.sql. Local times in and out
-- through localtime.sql; docs/SERVICE.md says what staff see.
-- No patron identity is taken or kept by anything here.
-- Lock order: a door counter's advisory lock (service_counter_lock), then
-- its gate_counter row.

-- ---------------------------------------------------------------- helpers

-- A bad field: CR400 field:<p_field>. The one such refusal of public
-- service and of statistics (stats.sql).
CREATE OR REPLACE FUNCTION field_refuse(p_field text, p_message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field, MESSAGE = p_message;
END
$$;

-- p_scope NULL: every branch; else only that one (CR403 branch).
CREATE OR REPLACE FUNCTION service_scope_check(p_scope integer, p_branch integer) RETURNS void
LANGUAGE sql AS $$ SELECT branch_scope_check(p_scope, p_branch, 'record public service for') $$;

-- A branch by code for a change: CR400 field:<p_field> when unknown, CR403
-- branch when outside p_scope.
CREATE OR REPLACE FUNCTION service_branch(p_code text, p_field text, p_scope integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_branch integer := schedule_branch(p_code, p_field);
BEGIN
    PERFORM service_scope_check(p_scope, v_branch);
    RETURN v_branch;
END
$$;

-- An optional text of a document: NULL when absent or empty, else at most
-- p_max characters (CR400 field:<p_field>).
CREATE OR REPLACE FUNCTION service_text(p_text text, p_field text, p_max integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF coalesce(p_text, '') = '' THEN
        RETURN NULL;
    END IF;
    IF length(p_text) > p_max THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
            MESSAGE = format('%s is at most %s characters (this one has %s).', p_field, p_max,
                             length(p_text));
    END IF;
    RETURN p_text;
END
$$;

-- An integer of a document (NULL when absent); anything else CR400
-- field:<p_field>.
CREATE OR REPLACE FUNCTION service_int(p_doc jsonb, p_name text, p_field text) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_doc -> p_name IS NULL OR jsonb_typeof(p_doc -> p_name) = 'null' THEN
        RETURN NULL;
    END IF;
    RETURN (p_doc ->> p_name)::numeric::bigint;
EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
    RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
        MESSAGE = format('%s must be a whole number.', p_field);
END
$$;

-- When something at the desk happened: absent or empty = now; "HH:MM" =
-- today at that time; else a local "YYYY-MM-DD HH:MM" (local_ts). Earlier
-- today at the latest: later than a minute from now is CR400
-- field:<p_field>, another day CR422 same_day.
CREATE OR REPLACE FUNCTION service_at(p_text text, p_field text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_at timestamptz;
BEGIN
    IF coalesce(p_text, '') = '' THEN
        RETURN now();
    END IF;
    IF p_text ~ '^\d{2}:\d{2}$' THEN
        v_at := local_ts(to_char(library_today(), 'YYYY-MM-DD') || ' ' || p_text, p_field);
    ELSE
        v_at := local_ts(p_text, p_field);
    END IF;
    IF v_at > now() + interval '1 minute' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
            MESSAGE = format('%s (%s) is in the future.', p_field, local_text(v_at));
    END IF;
    IF library_local_date(v_at) <> library_today() THEN
        RAISE EXCEPTION USING ERRCODE = 'CR422', DETAIL = 'same_day',
            MESSAGE = format('%s must be today (%s): tallies and counts are backdated on the '
                             'same day only.', p_field, library_today());
    END IF;
    RETURN v_at;
END
$$;

-- The local day [00:00, next 00:00) as a time range (23 or 25 hours on the
-- days the clocks change).
CREATE OR REPLACE FUNCTION service_day_range(p_day date) RETURNS tstzrange
LANGUAGE sql STABLE AS $$
    SELECT tstzrange(local_at(p_day, '00:00'), local_at(p_day + 1, '00:00'))
$$;

-- ---------------------------------------------------------------- lists

-- Every branch gets the default floor areas when it is made (the branches
-- there were when 024 ran got them there).
CREATE OR REPLACE FUNCTION service_code_branch_areas() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO service_code (list, branch_id, code, name, ord)
    SELECT 'floor_area', NEW.id, a.code, a.name, a.ord
    FROM (VALUES ('childrens', 'Children''s area', 1), ('teen', 'Teen area', 2),
                 ('adult', 'Adult area', 3), ('computers', 'Public computers', 4),
                 ('quiet_study', 'Quiet study', 5)) AS a (code, name, ord)
    ON CONFLICT ON CONSTRAINT service_code_unique DO NOTHING;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER service_code_branch_areas AFTER INSERT ON branch
    FOR EACH ROW EXECUTE FUNCTION service_code_branch_areas();

CREATE OR REPLACE FUNCTION service_list_check(p_list text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_list IS NULL OR p_list NOT IN ('inquiry_kind', 'floor_area', 'floor_activity') THEN
        PERFORM field_refuse('list',
            format('There is no list %s: inquiry_kind, floor_area or floor_activity.',
                   coalesce(p_list, '(none)')));
    END IF;
END
$$;

-- The entries of a list, by ord and code; floor_area those of p_branch
-- (required). reference is NULL outside inquiry_kind.
CREATE OR REPLACE FUNCTION service_code_list(p_list text, p_branch text,
                                             p_include_inactive boolean)
RETURNS TABLE (list text, branch_code text, code text, name text, reference boolean,
               active boolean, ord integer)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    v_branch integer;
BEGIN
    PERFORM service_list_check(p_list);
    IF p_list = 'floor_area' THEN
        v_branch := schedule_branch(nullif(p_branch, ''), 'branch');
    END IF;
    RETURN QUERY
    SELECT c.list, b.code, c.code, c.name,
           CASE WHEN c.list = 'inquiry_kind' THEN c.reference END, c.active, c.ord
    FROM service_code c
    LEFT JOIN branch b ON b.id = c.branch_id
    WHERE c.list = p_list AND c.branch_id IS NOT DISTINCT FROM v_branch
      AND (c.active OR coalesce(p_include_inactive, false))
    ORDER BY c.ord, c.code;
END
$$;

-- ServiceCode (or ServiceCodeSave) as jsonb: create the entry (list, branch,
-- code) or change its name, reference, active and ord (absent: kept; new:
-- reference and active true, ord after the last). p_scope applies to floor
-- areas (a branch's managers); C checked the role for the list. Writes an
-- admin_audit row.
CREATE OR REPLACE FUNCTION service_code_save(p_staff bigint, p_workstation bigint,
                                             p_scope integer, p_doc jsonb)
RETURNS TABLE (list text, branch_code text, code text, name text, reference boolean,
               active boolean, ord integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_doc jsonb := CASE WHEN jsonb_typeof(p_doc -> 'code') = 'object' THEN p_doc -> 'code'
                        ELSE p_doc END;
    v_list text := v_doc ->> 'list';
    v_code text := v_doc ->> 'code';
    v_name text := nullif(v_doc ->> 'name', '');
    v_ord bigint := service_int(v_doc, 'ord', 'ord');
    v_branch integer;
    v_id integer;
BEGIN
    PERFORM service_list_check(v_list);
    IF v_list = 'floor_area' THEN
        v_branch := service_branch(nullif(v_doc ->> 'branch_code', ''), 'branch_code', p_scope);
    END IF;
    IF v_code IS NULL OR v_code !~ '^[a-z][a-z0-9_]{1,31}$' THEN
        PERFORM field_refuse('code',
            'A code is 2-32 lower-case letters, digits or _, starting with a letter.');
    END IF;
    IF length(v_name) > 100 THEN
        PERFORM field_refuse('name', 'A name is 1-100 characters.');
    END IF;
    IF v_ord IS NOT NULL AND v_ord NOT BETWEEN -1000000 AND 1000000 THEN
        PERFORM field_refuse('ord', 'ord is a display position, -1000000 to 1000000.');
    END IF;
    -- The list's row lock: two saves of one entry do not both insert it.
    PERFORM pg_advisory_xact_lock(24, hashtext(v_list || '/' || coalesce(v_branch, 0)));
    SELECT c.id INTO v_id FROM service_code c
    WHERE c.list = v_list AND c.branch_id IS NOT DISTINCT FROM v_branch AND c.code = v_code
    FOR UPDATE;
    IF v_id IS NULL THEN
        IF v_name IS NULL THEN
            PERFORM field_refuse('name',
                format('A new entry %s needs a name (1-100 characters).', v_code));
        END IF;
        INSERT INTO service_code (list, branch_id, code, name, reference, active, ord)
        VALUES (v_list, v_branch, v_code, v_name,
                coalesce((v_doc ->> 'reference')::boolean, true),
                coalesce((v_doc ->> 'active')::boolean, true),
                coalesce(v_ord, (SELECT coalesce(max(c.ord), 0) + 1 FROM service_code c
                                 WHERE c.list = v_list
                                   AND c.branch_id IS NOT DISTINCT FROM v_branch)))
        RETURNING service_code.id INTO v_id;
    ELSE
        UPDATE service_code c SET name = coalesce(v_name, c.name),
               reference = coalesce((v_doc ->> 'reference')::boolean, c.reference),
               active = coalesce((v_doc ->> 'active')::boolean, c.active),
               ord = coalesce(v_ord, c.ord)
        WHERE c.id = v_id;
    END IF;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_staff, p_workstation, 'service_code_save',
            concat_ws('/', v_list, (SELECT b.code FROM branch b WHERE b.id = v_branch), v_code),
            v_doc);
    RETURN QUERY
    SELECT c.list, b.code, c.code, c.name,
           CASE WHEN c.list = 'inquiry_kind' THEN c.reference END, c.active, c.ord
    FROM service_code c LEFT JOIN branch b ON b.id = c.branch_id
    WHERE c.id = v_id;
END
$$;

-- An active entry of a list by code (floor_area: of p_branch), else CR404
-- service_code naming it.
CREATE OR REPLACE FUNCTION service_code_id(p_list text, p_branch integer, p_code text)
RETURNS integer
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id integer;
BEGIN
    SELECT c.id INTO v_id FROM service_code c
    WHERE c.list = p_list AND c.branch_id IS NOT DISTINCT FROM p_branch AND c.code = p_code
      AND c.active;
    IF v_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'service_code',
            MESSAGE = format('There is no active %s %s%s.', replace(p_list, '_', ' '),
                             coalesce(p_code, '(none)'),
                             CASE WHEN p_branch IS NOT NULL
                                  THEN ' at ' || (SELECT code FROM branch WHERE id = p_branch)
                                  ELSE '' END);
    END IF;
    RETURN v_id;
END
$$;

-- ---------------------------------------------------------------- inquiries

-- The reply rows of inquiries (type inquiry_out, proto Inquiry order),
-- newest first.
CREATE OR REPLACE FUNCTION inquiry_rows(p_ids bigint[]) RETURNS SETOF inquiry_out
LANGUAGE sql STABLE AS $$
    SELECT q.id, b.code, d.code, q.channel, k.code, q.read_level::integer, q.minutes::integer,
           local_text(q.asked_at), q.question, q.answer, s.username, q.ticket_id
    FROM inquiry q
    JOIN branch b ON b.id = q.branch_id
    JOIN service_code k ON k.id = q.kind_id
    JOIN staff s ON s.id = q.staff_id
    LEFT JOIN service_desk d ON d.id = q.desk_id
    WHERE q.id = ANY (p_ids)
    ORDER BY q.asked_at DESC, q.id DESC
$$;

-- A service desk of the branch by code (CR404 desk).
CREATE OR REPLACE FUNCTION service_desk_id(p_branch integer, p_code text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id bigint;
BEGIN
    SELECT d.id INTO v_id FROM service_desk d WHERE d.branch_id = p_branch AND d.code = p_code;
    IF v_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'desk',
            MESSAGE = format('%s has no service desk %s.',
                             (SELECT code FROM branch WHERE id = p_branch), p_code);
    END IF;
    RETURN v_id;
END
$$;

-- Record one tally (InquiryAdd's Inquiry as jsonb), once per key. Cheap: a
-- few primary-key probes, one insert, and today's tallies of the branch
-- and the desk counted from their indexes (no row every desk updates).
CREATE OR REPLACE FUNCTION inquiry_add(p_key uuid, p_staff bigint, p_workstation bigint,
                                       p_scope integer, p_doc jsonb)
RETURNS TABLE (id bigint, branch_code text, desk_code text, channel text, kind text,
               read_level integer, minutes integer, at text, question text, answer text,
               username text, ticket_id bigint, today_branch bigint, today_desk bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_stored jsonb := request_claim(p_key, p_staff, 'inquiry_add');
    v_doc jsonb := coalesce(p_doc -> 'inquiry', p_doc);
    v_branch integer;
    v_kind integer;
    v_desk bigint;
    v_read bigint;
    v_minutes bigint;
    v_channel text := coalesce(nullif(v_doc ->> 'channel', ''), 'in_person');
    v_at timestamptz;
    v_day tstzrange;
    v_id bigint;
BEGIN
    IF v_stored IS NULL THEN
        v_branch := service_branch(nullif(v_doc ->> 'branch_code', ''), 'branch_code',
                                   p_scope);
        IF coalesce(v_doc ->> 'kind', '') = '' THEN
            PERFORM field_refuse('kind',
                'Which kind of question was it? (carrel codes inquiry_kind)');
        END IF;
        v_kind := service_code_id('inquiry_kind', NULL, v_doc ->> 'kind');
        v_read := service_int(v_doc, 'read_level', 'read_level');
        IF v_read IS NULL OR v_read NOT BETWEEN 1 AND 6 THEN
            PERFORM field_refuse('read_level', 'The READ level is 1 to 6.');
        END IF;
        IF v_channel NOT IN ('in_person', 'phone', 'email', 'chat', 'text') THEN
            PERFORM field_refuse('channel',
                'The channel is in_person, phone, email, chat or text.');
        END IF;
        v_minutes := coalesce(service_int(v_doc, 'minutes', 'minutes'), 1);
        IF v_minutes NOT BETWEEN 0 AND 480 THEN
            PERFORM field_refuse('minutes', 'Minutes spent: 0 to 480.');
        END IF;
        IF coalesce(v_doc ->> 'desk_code', '') <> '' THEN
            v_desk := service_desk_id(v_branch, v_doc ->> 'desk_code');
        END IF;
        v_at := service_at(v_doc ->> 'at', 'at');
        INSERT INTO inquiry (branch_id, desk_id, channel, kind_id, read_level, minutes,
                             asked_at, question, answer, staff_id, workstation_id)
        VALUES (v_branch, v_desk, v_channel, v_kind, v_read, v_minutes, v_at,
                service_text(v_doc ->> 'question', 'question', 2000),
                service_text(v_doc ->> 'answer', 'answer', 4000), p_staff, p_workstation)
        RETURNING inquiry.id INTO v_id;
        v_day := service_day_range(library_today());
        SELECT to_jsonb(r) || jsonb_build_object(
                   'today_branch', (SELECT count(*) FROM inquiry q
                                    WHERE q.branch_id = v_branch AND q.asked_at >= lower(v_day)
                                      AND q.asked_at < upper(v_day)),
                   'today_desk', CASE WHEN v_desk IS NULL THEN 0 ELSE
                                     (SELECT count(*) FROM inquiry q
                                      WHERE q.desk_id = v_desk AND q.asked_at >= lower(v_day)
                                        AND q.asked_at < upper(v_day)) END)
        INTO v_stored
        FROM inquiry_rows(ARRAY[v_id]) r;
        PERFORM request_store(p_key, v_stored);
    END IF;
    RETURN QUERY
    SELECT r.id, r.branch_code, r.desk_code, r.channel, r.kind, r.read_level, r.minutes, r.at,
           r.question, r.answer, r.username, r.ticket_id, (v_stored ->> 'today_branch')::bigint,
           (v_stored ->> 'today_desk')::bigint
    FROM jsonb_populate_record(NULL::inquiry_out, v_stored) r;
END
$$;

-- Take back a tally recorded by mistake (returns it): the recorder, or a
-- manager of the branch (p_manager, decided by C; p_scope their branch),
-- on the day it was asked. A tally that became a ticket stays.
CREATE OR REPLACE FUNCTION inquiry_remove(p_staff bigint, p_workstation bigint, p_scope integer,
                                          p_manager boolean, p_id bigint)
RETURNS SETOF inquiry_out
LANGUAGE plpgsql AS $$
DECLARE
    v inquiry;
    v_row inquiry_out;
BEGIN
    SELECT * INTO v FROM inquiry q WHERE q.id = p_id FOR UPDATE;
    IF v.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'inquiry',
            MESSAGE = format('No inquiry has id %s.', coalesce(p_id::text, '(none)'));
    END IF;
    PERFORM service_scope_check(p_scope, v.branch_id);
    IF v.staff_id IS DISTINCT FROM p_staff AND NOT coalesce(p_manager, false) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'not_yours',
            MESSAGE = format('Inquiry %s was recorded by %s: only they or a manager of the '
                             'branch may take it back.', v.id,
                             (SELECT username FROM staff WHERE id = v.staff_id));
    END IF;
    IF library_local_date(v.asked_at) <> library_today() THEN
        RAISE EXCEPTION USING ERRCODE = 'CR422', DETAIL = 'same_day',
            MESSAGE = format('Inquiry %s was asked on %s: a tally is taken back on the same '
                             'day only.', v.id, library_local_date(v.asked_at));
    END IF;
    IF v.ticket_id IS NOT NULL THEN
        PERFORM field_refuse('id',
            format('Inquiry %s became ticket %s; it cannot be taken back.', v.id,
                   v.ticket_id));
    END IF;
    SELECT * INTO v_row FROM inquiry_rows(ARRAY[v.id]);
    DELETE FROM inquiry q WHERE q.id = v.id;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_staff, p_workstation, 'inquiry_remove', 'inquiry/' || v.id,
            jsonb_build_object('branch_code', v_row.branch_code, 'kind', v_row.kind,
                               'at', v_row.at, 'recorded_by', v_row.username));
    RETURN NEXT v_row;
END
$$;

-- The tallies of a branch on a local day (default today), of one desk when
-- p_desk, newest first; p_limit 1-1000 (NULL or 0: 50).
CREATE OR REPLACE FUNCTION inquiry_list(p_branch text, p_day text, p_desk text,
                                        p_limit integer)
RETURNS SETOF inquiry_out
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_branch integer := schedule_branch(nullif(p_branch, ''), 'branch');
    v_day tstzrange := service_day_range(local_day(p_day, 'day', library_today()));
    v_desk bigint;
    v_limit integer := coalesce(nullif(p_limit, 0), 50);
BEGIN
    IF v_limit NOT BETWEEN 1 AND 1000 THEN
        PERFORM field_refuse('limit', 'List 1 to 1000 tallies.');
    END IF;
    IF coalesce(p_desk, '') <> '' THEN
        v_desk := service_desk_id(v_branch, p_desk);
    END IF;
    RETURN QUERY
    SELECT * FROM inquiry_rows(ARRAY(
        SELECT q.id FROM inquiry q
        WHERE q.branch_id = v_branch AND q.asked_at >= lower(v_day)
          AND q.asked_at < upper(v_day) AND (v_desk IS NULL OR q.desk_id = v_desk)
        ORDER BY q.asked_at DESC, q.id DESC
        LIMIT v_limit));
END
$$;

-- ---------------------------------------------------------------- door counts

-- Crossings per visit (setting visits_divisor, default 2; never below 1).
CREATE OR REPLACE FUNCTION service_visits_divisor() RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT greatest(coalesce(CASE WHEN v ~ '^\d+(\.\d+)?$' THEN v::numeric END, 2), 1)
    FROM (SELECT library_setting_text('visits_divisor') AS v) s
$$;

-- One door counter's changes at a time (desk readings, day counts and
-- imports of that counter), for the transaction.
CREATE OR REPLACE FUNCTION service_counter_lock(p_branch integer, p_counter text) RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(242, hashtext(p_branch || '/' || p_counter)) $$;

CREATE OR REPLACE FUNCTION service_counter_check(p_counter text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_counter IS NULL OR p_counter !~ '^[a-z0-9][a-z0-9_-]{0,31}$' THEN
        PERFORM field_refuse('counter',
            'A counter''s name is 1-32 lower-case letters, digits, _ or -.');
    END IF;
END
$$;

-- "2026-12-07 10:00-11:00" or "2026-12-07 00:00-2026-12-08 00:00".
CREATE OR REPLACE FUNCTION service_span(p_period tstzrange) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT local_text(lower(p_period)) || '-'
           || CASE WHEN library_local_date(lower(p_period)) = library_local_date(upper(p_period))
                   THEN local_hhmm(upper(p_period)) ELSE local_text(upper(p_period)) END
$$;

-- Visits at a branch on a local day so far: the crossings of the periods
-- starting that day, over the divisor, rounded down.
CREATE OR REPLACE FUNCTION service_visits_on(p_branch integer, p_day date) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT floor(coalesce(sum(g.crossings), 0) / service_visits_divisor())::bigint
    FROM gate_count g, service_day_range(p_day) d
    WHERE lower(g.period) >= lower(d) AND lower(g.period) < upper(d) AND g.branch_id = p_branch
$$;

-- Record a period's crossings of a counter (called under its lock): an
-- existing count of exactly that period is replaced; one overlapping it is
-- CR409 count_overlap.
CREATE OR REPLACE FUNCTION gate_count_put(p_branch integer, p_counter text, p_period tstzrange,
                                          p_crossings bigint, p_reading bigint,
                                          p_staff bigint)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_other tstzrange;
BEGIN
    UPDATE gate_count g SET crossings = p_crossings, reading = p_reading, source = 'desk',
           staff_id = p_staff, created_at = now()
    WHERE g.branch_id = p_branch AND g.counter = p_counter AND g.period = p_period;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT g.period INTO v_other FROM gate_count g
    WHERE g.branch_id = p_branch AND g.counter = p_counter AND g.period && p_period
    ORDER BY lower(g.period) LIMIT 1;
    IF v_other IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'count_overlap',
            MESSAGE = format('Counter %s already has counts for %s, which overlaps %s.',
                             p_counter, service_span(v_other), service_span(p_period));
    END IF;
    INSERT INTO gate_count (branch_id, counter, period, crossings, reading, source, staff_id)
    VALUES (p_branch, p_counter, p_period, p_crossings, p_reading, 'desk', p_staff);
END
$$;

-- GateCountAdd as jsonb: a counter's running total (reading, at) or the
-- crossings of a local day (crossings, day). A reading counts the
-- crossings since the counter's previous reading (a lower total: the
-- counter was reset, so all of it); the very first reading of a counter is
-- its baseline and counts nothing (from = to = at, crossings 0). A day's
-- crossings replace an earlier figure for that day. Today to a year back.
CREATE OR REPLACE FUNCTION gate_count_add(p_staff bigint, p_workstation bigint, p_scope integer,
                                          p_doc jsonb)
RETURNS TABLE (branch_code text, counter text, "from" text, "to" text, crossings bigint,
               visits_today bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_doc jsonb := coalesce(p_doc -> 'gate_count', p_doc);
    v_branch integer := service_branch(nullif(v_doc ->> 'branch_code', ''), 'branch_code',
                                       p_scope);
    v_counter text := coalesce(nullif(v_doc ->> 'counter', ''), 'main');
    v_reading bigint := service_int(v_doc, 'reading', 'reading');
    v_crossings bigint := service_int(v_doc, 'crossings', 'crossings');
    v_last gate_counter;
    v_at timestamptz;
    v_day date;
    v_period tstzrange;
BEGIN
    PERFORM service_counter_check(v_counter);
    IF (v_reading IS NULL) = (v_crossings IS NULL) THEN
        PERFORM field_refuse('reading',
            'Give either the counter''s reading or the crossings of a day.');
    END IF;
    PERFORM service_counter_lock(v_branch, v_counter);
    IF v_reading IS NOT NULL THEN
        IF v_reading < 0 THEN
            PERFORM field_refuse('reading', 'A counter''s reading is 0 or more.');
        END IF;
        v_at := service_at(v_doc ->> 'at', 'at');
        SELECT * INTO v_last FROM gate_counter c
        WHERE c.branch_id = v_branch AND c.counter = v_counter FOR UPDATE;
        IF v_last.read_at IS NULL THEN
            INSERT INTO gate_counter (branch_id, counter, reading, read_at, staff_id)
            VALUES (v_branch, v_counter, v_reading, v_at, p_staff);
            v_period := tstzrange(v_at, v_at, '[]');
            v_crossings := 0;
        ELSE
            IF v_at <= v_last.read_at THEN
                PERFORM field_refuse('at',
                    format('Counter %s was last read at %s; a reading comes after it.',
                           v_counter, local_text(v_last.read_at)));
            END IF;
            v_crossings := CASE WHEN v_reading >= v_last.reading
                                THEN v_reading - v_last.reading ELSE v_reading END;
            v_period := tstzrange(v_last.read_at, v_at);
            PERFORM gate_count_put(v_branch, v_counter, v_period, v_crossings, v_reading,
                                   p_staff);
            UPDATE gate_counter c SET reading = v_reading, read_at = v_at, staff_id = p_staff
            WHERE c.branch_id = v_branch AND c.counter = v_counter;
        END IF;
    ELSE
        IF v_crossings < 0 THEN
            PERFORM field_refuse('crossings', 'Crossings are 0 or more.');
        END IF;
        v_day := local_day(v_doc ->> 'day', 'day', library_today());
        IF v_day > library_today() OR v_day < library_today() - interval '1 year' THEN
            PERFORM field_refuse('day',
                'A day''s crossings are entered for today or a day of the past year.');
        END IF;
        v_period := service_day_range(v_day);
        PERFORM gate_count_put(v_branch, v_counter, v_period, v_crossings, NULL, p_staff);
    END IF;
    RETURN QUERY SELECT b.code, v_counter, local_text(lower(v_period)),
                        local_text(upper(v_period)), v_crossings,
                        service_visits_on(v_branch, library_today())
                 FROM branch b WHERE b.id = v_branch;
END
$$;

-- A date "YYYY-MM-DD" that exists (years 1990-2199), else NULL: checked
-- without raising, so a file's bad lines are found in one statement.
CREATE OR REPLACE FUNCTION service_date_or_null(p_text text) RETURNS date
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_text ~ '^\d{4}-\d{2}-\d{2}$' THEN
        CASE WHEN substr(p_text, 1, 4)::integer BETWEEN 1990 AND 2199
                  AND substr(p_text, 6, 2)::integer BETWEEN 1 AND 12 THEN
            CASE WHEN substr(p_text, 9, 2)::integer BETWEEN 1 AND extract(day FROM
                          make_date(substr(p_text, 1, 4)::integer,
                                    substr(p_text, 6, 2)::integer, 1)
                          + interval '1 month' - interval '1 day')
                 THEN p_text::date END END END
$$;

-- Import the lines of a counter's CSV export (p_kind 'gate') or of a
-- computer booking system's daily counts ('computers'). The server parsed
-- the file and sends one array element per line it could read: line
-- number, counter ('' = p_counter), day, time ('' = the whole day), count
-- (crossings or sessions), minutes (computers). Every line is checked
-- (day and time exist, the hour skipped when the clocks go forward
-- included; counts in range; periods overlapping recorded counts of other
-- periods or other lines of the file: count_overlap); rows 'bad' (one per
-- bad line) then one 'summary'. The good lines are applied, set-based, when
-- p_apply and no line is bad or p_skip_bad: a period recorded again with
-- the same count is unchanged, with another count replaced. A gate line
-- counts p_period_minutes of local time from its time.
CREATE OR REPLACE FUNCTION count_import(p_staff bigint, p_workstation bigint, p_scope integer,
                                        p_kind text, p_branch text, p_counter text,
                                        p_period_minutes integer, p_skip_bad boolean,
                                        p_apply boolean, p_lines integer[],
                                        p_counters text[], p_days text[], p_times text[],
                                        p_counts bigint[], p_minutes integer[])
RETURNS TABLE (kind text, line integer, reason text, message text, lines integer,
               imported integer, replaced integer, unchanged integer, applied boolean)
-- The lines meet the recorded counts through the counter index (gist), a
-- probe per line: never a scan of gate_count per line, which a planner that
-- believes the table small (rows added since its last analyse, as when a
-- file is imported twice in a row) would otherwise choose.
LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $$
#variable_conflict use_column
DECLARE
    v_branch integer;
    v_counter text := coalesce(nullif(p_counter, ''), 'main');
    v_minutes integer := coalesce(nullif(p_period_minutes, 0), 60);
    v_n integer := coalesce(cardinality(p_lines), 0);
    v_tz text := library_setting_text('timezone');
    v_today date := library_today();
    v_gate boolean := p_kind = 'gate';
    v_count_field text := CASE WHEN p_kind = 'gate' THEN 'field:count' ELSE 'field:sessions' END;
    v_bad integer;
    v_apply boolean;
    v_imported integer := 0;
    v_replaced integer := 0;
    v_unchanged integer := 0;
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('gate', 'computers') THEN
        PERFORM field_refuse('kind',
            'Import gate (door counter) or computers (sessions) counts.');
    END IF;
    v_branch := service_branch(nullif(p_branch, ''), 'branch_code', p_scope);
    IF v_gate THEN
        PERFORM service_counter_check(v_counter);
        IF v_minutes NOT BETWEEN 5 AND 1440 THEN
            PERFORM field_refuse('period_minutes', 'A counter''s period is 5 to 1440 minutes.');
        END IF;
    END IF;
    IF v_n > 1000000 OR coalesce(cardinality(p_days), 0) <> v_n
       OR coalesce(cardinality(p_counts), 0) <> v_n
       OR coalesce(cardinality(p_counters), v_n) <> v_n
       OR coalesce(cardinality(p_times), v_n) <> v_n
       OR coalesce(cardinality(p_minutes), v_n) <> v_n THEN
        PERFORM field_refuse('csv',
            'The lines of an import come as arrays of one length (at most 1000000).');
    END IF;
    IF to_regclass('pg_temp.count_import_row') IS NULL THEN
        CREATE TEMP TABLE count_import_row (
            n integer PRIMARY KEY, line integer, counter text, day date, period tstzrange,
            cnt bigint, mins integer, reason text, message text, old_id bigint,
            old_count bigint, old_minutes integer
        ) ON COMMIT DROP;
    ELSE
        TRUNCATE count_import_row;
    END IF;
    -- Each line checked, its period made and the recorded count overlapping
    -- it found (at most one: recorded periods do not overlap each other, so
    -- one equal to the line's is the only one overlapping it).
    INSERT INTO count_import_row
    SELECT x.n, x.line, x.counter, x.day, x.period, x.cnt, x.mins, x.reason,
           CASE x.reason
               WHEN 'field:counter' THEN format('The counter %s is not a counter name.', x.counter)
               WHEN 'field:date' THEN format('%s is not a date of the past as YYYY-MM-DD.', x.dtext)
               WHEN 'field:time' THEN CASE WHEN x.gap THEN format(
                        '%s %s does not exist in local time (the clocks go forward then).',
                        x.dtext, x.ttext)
                    ELSE format('%s is not a time HH:MM of the past.', x.ttext) END
               WHEN 'field:count' THEN format('The count (%s) must be 0 or more.', x.cnt)
               WHEN 'field:sessions' THEN format('Sessions (%s) are 0 to 100000.', x.cnt)
               WHEN 'field:minutes' THEN format('Minutes (%s) are 0 or more.', x.mins)
           END,
           NULL, NULL, NULL
    FROM (
        SELECT y.*, CASE
                   WHEN v_gate AND y.counter !~ '^[a-z0-9][a-z0-9_-]{0,31}$' THEN 'field:counter'
                   WHEN y.day IS NULL OR y.day > v_today THEN 'field:date'
                   WHEN v_gate AND (y.ttext <> '' AND y.t IS NULL OR y.gap
                                    OR lower(y.period) > now()) THEN 'field:time'
                   WHEN y.cnt IS NULL OR y.cnt < 0 OR NOT v_gate AND y.cnt > 100000
                       THEN v_count_field
                   WHEN NOT v_gate AND y.mins IS NOT NULL AND y.mins NOT BETWEEN 0 AND 144000000
                       THEN 'field:minutes'
               END AS reason
        FROM (
            SELECT z.*,
                   CASE WHEN v_gate AND z.day IS NOT NULL AND z.t IS NOT NULL
                        THEN ((z.day + z.t) AT TIME ZONE v_tz) AT TIME ZONE v_tz <> z.day + z.t
                        ELSE false END AS gap,
                   -- A time the clocks skip has no period (its line is bad).
                   CASE WHEN NOT v_gate OR z.day IS NULL OR z.ttext <> '' AND z.t IS NULL
                            THEN NULL
                        WHEN z.t IS NULL THEN tstzrange(z.day::timestamp AT TIME ZONE v_tz,
                                                        (z.day + 1)::timestamp AT TIME ZONE v_tz)
                        WHEN ((z.day + z.t) AT TIME ZONE v_tz) AT TIME ZONE v_tz = z.day + z.t
                            THEN tstzrange((z.day + z.t) AT TIME ZONE v_tz,
                                           (z.day + z.t + make_interval(mins => v_minutes))
                                               AT TIME ZONE v_tz) END AS period
            FROM (
                SELECT u.n, u.line, CASE WHEN v_gate THEN coalesce(nullif(u.counter, ''), v_counter)
                                END AS counter,
                       u.dtext, service_date_or_null(u.dtext) AS day,
                       coalesce(u.ttext, '') AS ttext,
                       CASE WHEN u.ttext ~ '^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$'
                            THEN substr(u.ttext, 1, 5)::time END AS t,
                       u.cnt, u.mins
                FROM unnest(p_lines, p_counters, p_days, p_times, p_counts, p_minutes)
                     WITH ORDINALITY AS u (line, counter, dtext, ttext, cnt, mins, n)
                -- OFFSET 0: each level is computed once per line, not copied into
                -- every expression of the level above (which multiplied the work
                -- a hundredfold).
                OFFSET 0
            ) z
            OFFSET 0
        ) y
        OFFSET 0
    ) x;
    -- The joins below are planned from real row counts.
    ANALYZE count_import_row;
    IF v_gate THEN
        -- The counters the file names, locked (in lock-key order) before
        -- their recorded counts are read.
        PERFORM service_counter_lock(v_branch, c.counter)
        FROM (SELECT DISTINCT r.counter FROM count_import_row r
              WHERE r.reason IS DISTINCT FROM 'field:counter') c
        ORDER BY hashtext(v_branch || '/' || c.counter);
        -- The recorded counts of the file's counters over the file's span (one
        -- index range scan); a line of exactly a recorded period is matched by
        -- hashing, and only the other lines are probed for an overlap, one
        -- index probe each, when anything is recorded in the span at all.
        IF to_regclass('pg_temp.count_import_old') IS NULL THEN
            CREATE TEMP TABLE count_import_old (id bigint, counter text, period tstzrange,
                                                crossings bigint) ON COMMIT DROP;
        ELSE
            TRUNCATE count_import_old;
        END IF;
        INSERT INTO count_import_old
        SELECT g.id, g.counter, g.period, g.crossings FROM gate_count g
        WHERE g.branch_id = v_branch
          AND g.counter = ANY (ARRAY(SELECT DISTINCT r.counter FROM count_import_row r
                                     WHERE r.reason IS NULL))
          AND g.period && (SELECT tstzrange(min(lower(r.period)), max(upper(r.period)))
                           FROM count_import_row r WHERE r.reason IS NULL);
        IF FOUND THEN
            ANALYZE count_import_old;
            UPDATE count_import_row r SET old_id = o.id, old_count = o.crossings
            FROM count_import_old o
            WHERE r.reason IS NULL AND o.counter = r.counter AND o.period = r.period;
            UPDATE count_import_row r SET reason = 'count_overlap', message = format(
                   'The period %s overlaps counts already recorded for counter %s (%s).',
                   service_span(r.period), r.counter, service_span(m.gp))
            FROM (SELECT c.n, g.period AS gp
                  FROM count_import_row c
                  CROSS JOIN LATERAL (SELECT g.period FROM gate_count g
                                      WHERE g.branch_id = v_branch AND g.counter = c.counter
                                        AND g.period && c.period
                                      LIMIT 1) g
                  WHERE c.reason IS NULL AND c.old_id IS NULL) m
            WHERE m.n = r.n;
        END IF;
        -- Lines of the file overlapping an earlier one of the same counter.
        UPDATE count_import_row r SET reason = 'count_overlap',
               message = format('The period %s overlaps that of line %s.',
                                service_span(r.period), o.prev_line)
        FROM (SELECT c.n, c.period,
                     max(upper(c.period)) OVER w AS prev_end, lag(c.line) OVER w AS prev_line
              FROM count_import_row c WHERE c.reason IS NULL
              WINDOW w AS (PARTITION BY c.counter ORDER BY lower(c.period), c.line
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) o
        WHERE o.n = r.n AND lower(o.period) < o.prev_end AND r.reason IS NULL;
    ELSE
        UPDATE count_import_row r SET old_id = 0, old_count = u.sessions,
               old_minutes = u.minutes
        FROM computer_use u
        WHERE r.reason IS NULL AND u.branch_id = v_branch AND u.day = r.day;
        UPDATE count_import_row r SET reason = 'count_overlap',
               message = format('%s is on line %s already.', r.day, o.first_line)
        FROM (SELECT c.n, c.line,
                     first_value(c.line) OVER (PARTITION BY c.day ORDER BY c.line, c.n)
                         AS first_line,
                     row_number() OVER (PARTITION BY c.day ORDER BY c.line, c.n) AS k
              FROM count_import_row c WHERE c.reason IS NULL) o
        WHERE o.n = r.n AND o.k > 1 AND r.reason IS NULL;
    END IF;
    SELECT count(*) FILTER (WHERE c.reason IS NOT NULL) INTO v_bad FROM count_import_row c;
    v_apply := coalesce(p_apply, true) AND (v_bad = 0 OR coalesce(p_skip_bad, false));
    IF v_apply AND v_gate THEN
        UPDATE gate_count g SET crossings = r.cnt, reading = NULL, source = 'import',
               staff_id = p_staff, created_at = now()
        FROM count_import_row r
        WHERE r.reason IS NULL AND g.id = r.old_id AND g.crossings <> r.cnt;
        GET DIAGNOSTICS v_replaced = ROW_COUNT;
        INSERT INTO gate_count (branch_id, counter, period, crossings, source, staff_id)
        SELECT v_branch, r.counter, r.period, r.cnt, 'import', p_staff
        FROM count_import_row r WHERE r.reason IS NULL AND r.old_id IS NULL;
        GET DIAGNOSTICS v_imported = ROW_COUNT;
        SELECT count(*) INTO v_unchanged FROM count_import_row r
        WHERE r.reason IS NULL AND r.old_id IS NOT NULL AND r.old_count = r.cnt;
    ELSIF v_apply THEN
        INSERT INTO computer_use AS u (branch_id, day, sessions, minutes, source, staff_id)
        SELECT v_branch, r.day, r.cnt, r.mins, 'import', p_staff
        FROM count_import_row r WHERE r.reason IS NULL
        ON CONFLICT (branch_id, day) DO UPDATE
            SET sessions = excluded.sessions, minutes = excluded.minutes, source = 'import',
                staff_id = excluded.staff_id, updated_at = now()
            WHERE (u.sessions, u.minutes) IS DISTINCT FROM (excluded.sessions, excluded.minutes);
        SELECT count(*) FILTER (WHERE r.old_id IS NULL),
               count(*) FILTER (WHERE r.old_id IS NOT NULL
                                  AND (r.old_count, r.old_minutes)
                                      IS DISTINCT FROM (r.cnt, r.mins::integer)),
               count(*) FILTER (WHERE r.old_id IS NOT NULL
                                  AND (r.old_count, r.old_minutes)
                                      IS NOT DISTINCT FROM (r.cnt, r.mins::integer))
        INTO v_imported, v_replaced, v_unchanged
        FROM count_import_row r WHERE r.reason IS NULL;
    END IF;
    RETURN QUERY
    SELECT 'bad', r.line, r.reason, r.message, NULL::integer, NULL::integer, NULL::integer,
           NULL::integer, NULL::boolean
    FROM count_import_row r WHERE r.reason IS NOT NULL
    UNION ALL
    SELECT 'summary', NULL, NULL, NULL, v_n, v_imported, v_replaced, v_unchanged, v_apply
    ORDER BY 1, 2;
END
$$;

-- ---------------------------------------------------------------- computers

-- Public computer sessions of a branch on a local day (today to a year
-- back), replacing that day's figure.
CREATE OR REPLACE FUNCTION computer_sessions_set(p_staff bigint, p_workstation bigint,
                                                 p_scope integer, p_branch text, p_day text,
                                                 p_sessions integer, p_minutes integer)
RETURNS TABLE (branch_code text, day text, sessions integer, minutes integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_branch integer := service_branch(nullif(p_branch, ''), 'branch_code', p_scope);
    v_day date := local_day(p_day, 'day', library_today());
BEGIN
    IF v_day > library_today() OR v_day < library_today() - interval '1 year' THEN
        PERFORM field_refuse('day', 'Sessions are entered for today or a day of the past year.');
    END IF;
    IF p_sessions IS NULL OR p_sessions NOT BETWEEN 0 AND 100000 THEN
        PERFORM field_refuse('sessions', 'Sessions are 0 to 100000.');
    END IF;
    IF p_minutes IS NOT NULL AND p_minutes NOT BETWEEN 0 AND 144000000 THEN
        PERFORM field_refuse('minutes', 'Minutes are 0 or more.');
    END IF;
    INSERT INTO computer_use AS u (branch_id, day, sessions, minutes, source, staff_id)
    VALUES (v_branch, v_day, p_sessions, p_minutes, 'desk', p_staff)
    ON CONFLICT (branch_id, day) DO UPDATE
        SET sessions = excluded.sessions, minutes = excluded.minutes, source = 'desk',
            staff_id = excluded.staff_id, updated_at = now();
    RETURN QUERY SELECT b.code, to_char(v_day, 'YYYY-MM-DD'), p_sessions, p_minutes
                 FROM branch b WHERE b.id = v_branch;
END
$$;

-- ---------------------------------------------------------------- sweeps

-- The reply rows of sweeps (type sweep_out): one per count, by time, sweep,
-- area order and activity order (an area not split first).
CREATE OR REPLACE FUNCTION sweep_rows(p_ids bigint[]) RETURNS SETOF sweep_out
LANGUAGE sql STABLE AS $$
    SELECT w.id, b.code, local_text(w.taken_at), s.username,
           (sum(c.headcount) OVER (PARTITION BY w.id))::integer, a.code, v.code, c.headcount
    FROM sweep w
    JOIN branch b ON b.id = w.branch_id
    JOIN staff s ON s.id = w.staff_id
    JOIN sweep_count c ON c.sweep_id = w.id
    JOIN service_code a ON a.id = c.area_id
    LEFT JOIN service_code v ON v.id = c.activity_id
    WHERE w.id = ANY (p_ids)
    ORDER BY w.taken_at, w.id, a.ord, a.code, v.ord NULLS FIRST, v.code
$$;

-- Sweep (or SweepSave) as jsonb, once per key: every active floor area of
-- the branch counted (zeros included: CR422 sweep_incomplete names the
-- missing ones), each (area, activity) once and an area either split by
-- activity or not (field:counts), headcounts 0-10000, taken earlier today
-- at the latest.
CREATE OR REPLACE FUNCTION sweep_save(p_key uuid, p_staff bigint, p_workstation bigint,
                                      p_scope integer, p_doc jsonb)
RETURNS TABLE (id bigint, branch_code text, at text, username text, total integer,
               area text, activity text, headcount integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_stored jsonb := request_claim(p_key, p_staff, 'sweep_save');
    v_doc jsonb := coalesce(p_doc -> 'sweep', p_doc);
    v_branch integer;
    v_at timestamptz;
    v_c jsonb;
    v_areas integer[] := '{}';
    v_acts integer[] := '{}';
    v_heads integer[] := '{}';
    v_head bigint;
    v_missing text;
    v_id bigint;
BEGIN
    IF v_stored IS NULL THEN
        v_branch := service_branch(nullif(v_doc ->> 'branch_code', ''), 'branch_code',
                                   p_scope);
        v_at := service_at(v_doc ->> 'at', 'at');
        FOR v_c IN SELECT * FROM jsonb_array_elements(coalesce(v_doc -> 'counts', '[]')) LOOP
            IF coalesce(v_c ->> 'area', '') = '' THEN
                PERFORM field_refuse('counts', 'Every count names its floor area.');
            END IF;
            v_head := service_int(v_c, 'headcount', 'headcount');
            IF v_head IS NULL OR v_head NOT BETWEEN 0 AND 10000 THEN
                PERFORM field_refuse('headcount',
                    format('The headcount of %s is 0 to 10000 (0 for nobody).',
                           v_c ->> 'area'));
            END IF;
            v_areas := v_areas || service_code_id('floor_area', v_branch, v_c ->> 'area');
            v_acts := v_acts || CASE WHEN coalesce(v_c ->> 'activity', '') <> ''
                                     THEN service_code_id('floor_activity', NULL,
                                                          v_c ->> 'activity') END;
            v_heads := v_heads || v_head::integer;
        END LOOP;
        SELECT string_agg(DISTINCT a.code, ', ') INTO v_missing
        FROM unnest(v_areas, v_acts) AS x (area, act)
        JOIN service_code a ON a.id = x.area
        WHERE x.area IN (SELECT y.area FROM unnest(v_areas, v_acts) AS y (area, act)
                         GROUP BY y.area
                         HAVING count(*) > count(DISTINCT coalesce(y.act, 0))
                             OR bool_or(y.act IS NULL) AND count(*) > 1);
        IF v_missing IS NOT NULL THEN
            PERFORM field_refuse('counts',
                format('Count each area once, or once per activity (not both): %s.',
                       v_missing));
        END IF;
        SELECT string_agg(a.code, ', ' ORDER BY a.ord, a.code) INTO v_missing
        FROM service_code a
        WHERE a.list = 'floor_area' AND a.branch_id = v_branch AND a.active
          AND NOT a.id = ANY (v_areas);
        IF v_missing IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR422', DETAIL = 'sweep_incomplete',
                MESSAGE = format('A sweep counts every area, zeros included; missing: %s.',
                                 v_missing);
        END IF;
        IF cardinality(v_areas) = 0 THEN
            PERFORM field_refuse('counts',
                format('%s has no floor areas to count.',
                       (SELECT code FROM branch WHERE branch.id = v_branch)));
        END IF;
        INSERT INTO sweep (branch_id, taken_at, staff_id, workstation_id)
        VALUES (v_branch, v_at, p_staff, p_workstation)
        RETURNING sweep.id INTO v_id;
        INSERT INTO sweep_count (sweep_id, area_id, activity_id, headcount)
        SELECT v_id, x.area, x.act, x.head
        FROM unnest(v_areas, v_acts, v_heads) AS x (area, act, head);
        SELECT jsonb_agg(to_jsonb(r) ORDER BY r.n) INTO v_stored
        FROM sweep_rows(ARRAY[v_id]) WITH ORDINALITY AS r (id, branch_code, at, username, total,
                                                          area, activity, headcount, n);
        PERFORM request_store(p_key, v_stored);
    END IF;
    RETURN QUERY SELECT * FROM jsonb_populate_recordset(NULL::sweep_out, v_stored);
END
$$;

-- The sweeps of a branch over local days p_from..p_to (default today; at
-- most 92 days), by time.
CREATE OR REPLACE FUNCTION sweep_list(p_branch text, p_from text, p_to text)
RETURNS SETOF sweep_out
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_branch integer := schedule_branch(nullif(p_branch, ''), 'branch');
    v_from date := local_day(p_from, 'from', library_today());
    v_to date := local_day(p_to, 'to', v_from);
BEGIN
    IF v_to < v_from OR v_to - v_from > 91 THEN
        PERFORM field_refuse('to', 'Sweeps are listed for 1 to 92 days (to on or after from).');
    END IF;
    RETURN QUERY SELECT * FROM sweep_rows(ARRAY(
        SELECT w.id FROM sweep w
        WHERE w.branch_id = v_branch AND w.taken_at >= local_at(v_from, '00:00')
          AND w.taken_at < local_at(v_to + 1, '00:00')));
END
$$;

-- ---------------------------------------------------------------- service levels

-- Per open half hour of a week (schedule_slots; p_week any day of it) at
-- branches p_branches (NULL or empty: all), by branch code, day and time:
-- staff_on_desk (assigned shifts at a desk of the branch covering the whole
-- half hour), staff_needed (the sum over the branch's active desks of their
-- need, desk_need_applies as schedule_gaps), circulation (checkouts,
-- renewals, checkins, in-house uses at the branch), inquiries, headcount
-- (the total of the latest sweep taken in the half hour; NULL: none),
-- per_staff ((circulation + inquiries) / staff_on_desk, NULL with nobody on
-- desk) and heavy (among the top tenth of the branch's half hours of the
-- week by circulation + inquiries, ties included, and busy at all).
-- Set-based: each source read once over the week and put in its half hour
-- by a binary search of the branch's half-hour bounds (width_bucket).
CREATE OR REPLACE FUNCTION service_levels(p_branches integer[], p_week text)
RETURNS TABLE (week date, branch_code text, day date, "time" text, staff_on_desk integer,
               staff_needed integer, circulation integer, inquiries integer, headcount integer,
               per_staff double precision, heavy boolean)
LANGUAGE plpgsql STABLE SET jit = off AS $$
#variable_conflict use_column
DECLARE
    v_monday date := schedule_week_start(p_week);
    v_tz text := library_setting_text('timezone');
    v_from timestamptz := local_at(v_monday, '00:00');
    v_to timestamptz := local_at(v_monday + 7, '00:00');
    v_all boolean := coalesce(cardinality(p_branches), 0) = 0;
BEGIN
    RETURN QUERY
    WITH sl AS MATERIALIZED (
        SELECT g.branch_id, g.branch_code, g.day, g.k, g.l_from, g.slot,
               extract(isodow FROM g.day)::integer AS dow, g.l_from::time AS t
        FROM schedule_slots(p_branches, v_monday, v_monday + 6) g
    ),
    -- Each branch's half-hour boundaries of the week in order (starts and
    -- closing times): width_bucket puts a time in its half hour by binary
    -- search, with no time zone arithmetic per event. A time between a
    -- closing and the next opening lands on a closing bound, which starts
    -- no half hour, and drops out of the join.
    bounds AS MATERIALIZED (
        SELECT x.branch_id, array_agg(x.b ORDER BY x.b) AS b
        FROM (SELECT sl.branch_id, lower(sl.slot) AS b FROM sl
              UNION
              SELECT sl.branch_id, upper(sl.slot) FROM sl) x
        GROUP BY x.branch_id
    ),
    -- Public activity of the week: circulation and tallies.
    ev AS (
        SELECT e.branch_id, e.at, 1 AS circ, 0 AS inq
        FROM circ_event e
        WHERE e.at >= v_from AND e.at < v_to
          AND e.action IN ('checkout', 'renew', 'checkin', 'in_house_use')
          AND (v_all OR e.branch_id = ANY (p_branches))
        UNION ALL
        SELECT q.branch_id, q.asked_at, 0, 1
        FROM inquiry q
        WHERE q.asked_at >= v_from AND q.asked_at < v_to
          AND (v_all OR q.branch_id = ANY (p_branches))
    ),
    act AS (
        SELECT y.branch_id, bounds.b[y.i] AS start, y.circ, y.inq
        FROM (SELECT ev.branch_id, width_bucket(ev.at, bounds.b) AS i,
                     sum(ev.circ) AS circ, sum(ev.inq) AS inq
              FROM ev JOIN bounds ON bounds.branch_id = ev.branch_id
              GROUP BY 1, 2) y
        JOIN bounds ON bounds.branch_id = y.branch_id
        WHERE y.i > 0
    ),
    -- The latest sweep of each half hour, and its total.
    sw AS (
        SELECT DISTINCT ON (y.branch_id, y.i) y.branch_id, y.b[y.i] AS start, y.id
        FROM (SELECT w.branch_id, w.id, w.taken_at, bounds.b,
                     width_bucket(w.taken_at, bounds.b) AS i
              FROM sweep w JOIN bounds ON bounds.branch_id = w.branch_id
              WHERE w.taken_at >= v_from AND w.taken_at < v_to) y
        WHERE y.i > 0
        ORDER BY y.branch_id, y.i, y.taken_at DESC, y.id DESC
    ),
    swt AS (
        SELECT sw.branch_id, sw.start, sum(c.headcount) AS total
        FROM sw JOIN sweep_count c ON c.sweep_id = sw.id
        GROUP BY 1, 2
    ),
    -- People at a desk of the branch for the whole half hour.
    cov AS (
        SELECT sl.branch_id, sl.day, sl.k, count(*) AS n
        FROM sl JOIN shift s ON s.branch_id = sl.branch_id AND s.during @> sl.slot
        WHERE s.staff_id IS NOT NULL AND s.desk_id IS NOT NULL
          AND s.during && tstzrange(v_from, v_to)
        GROUP BY 1, 2, 3
    ),
    -- Each active desk's need (the highest rule that applies), summed.
    need AS (
        SELECT x.branch_id, x.day, x.k, sum(x.need) AS n
        FROM (SELECT sl.branch_id, sl.day, sl.k, d.id, max(n.staff) AS need
              FROM sl
              JOIN service_desk d ON d.branch_id = sl.branch_id AND d.active
              JOIN desk_need n ON n.desk_id = d.id
               AND desk_need_applies(n.weekdays, n.from_time, n.to_time, sl.dow, sl.t)
              GROUP BY sl.branch_id, sl.day, sl.k, d.id) x
        GROUP BY 1, 2, 3
    ),
    grid AS (
        SELECT sl.branch_id, sl.branch_code, sl.day, sl.k, sl.l_from,
               coalesce(cov.n, 0)::integer AS on_desk, coalesce(need.n, 0)::integer AS needed,
               coalesce(act.circ, 0)::integer AS circ, coalesce(act.inq, 0)::integer AS inq,
               swt.total::integer AS total
        FROM sl
        LEFT JOIN act ON act.branch_id = sl.branch_id AND act.start = lower(sl.slot)
        LEFT JOIN swt ON swt.branch_id = sl.branch_id AND swt.start = lower(sl.slot)
        LEFT JOIN cov ON cov.branch_id = sl.branch_id AND cov.day = sl.day AND cov.k = sl.k
        LEFT JOIN need ON need.branch_id = sl.branch_id AND need.day = sl.day
                      AND need.k = sl.k
    )
    SELECT v_monday, g.branch_code, g.day, to_char(g.l_from, 'HH24:MI'), g.on_desk, g.needed,
           g.circ, g.inq, g.total,
           CASE WHEN g.on_desk > 0
                THEN round((g.circ + g.inq)::numeric / g.on_desk, 2)::double precision END,
           g.circ + g.inq > 0
           AND rank() OVER (PARTITION BY g.branch_id ORDER BY g.circ + g.inq DESC)
               <= ceil(count(*) OVER (PARTITION BY g.branch_id) / 10.0)
    FROM grid g
    ORDER BY g.branch_code, g.day, g.k;
END
$$;
