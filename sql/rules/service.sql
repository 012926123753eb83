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

-- p_scope NULL: every branch; else only that one (CR403 branch).
CREATE OR REPLACE FUNCTION service_scope_check(p_scope integer, p_branch integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_scope IS NOT NULL AND p_scope IS DISTINCT FROM p_branch THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'branch',
            MESSAGE = format('You may record public service for branch %s only.',
                             (SELECT code FROM branch WHERE id = p_scope));
    END IF;
END
$$;

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
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:list',
            MESSAGE = format('There is no list %s: inquiry_kind, floor_area or floor_activity.',
                             coalesce(p_list, '(none)'));
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
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:code',
            MESSAGE = 'A code is 2-32 lower-case letters, digits or _, starting with a letter.';
    END IF;
    IF length(v_name) > 100 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:name',
            MESSAGE = 'A name is 1-100 characters.';
    END IF;
    IF v_ord IS NOT NULL AND v_ord NOT BETWEEN -1000000 AND 1000000 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:ord',
            MESSAGE = 'ord is a display position, -1000000 to 1000000.';
    END IF;
    -- The list's row lock: two saves of one entry do not both insert it.
    PERFORM pg_advisory_xact_lock(24, hashtext(v_list || '/' || coalesce(v_branch, 0)));
    SELECT c.id INTO v_id FROM service_code c
    WHERE c.list = v_list AND c.branch_id IS NOT DISTINCT FROM v_branch AND c.code = v_code
    FOR UPDATE;
    IF v_id IS NULL THEN
        IF v_name IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:name',
                MESSAGE = format('A new entry %s needs a name (1-100 characters).', v_code);
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
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:kind',
                MESSAGE = 'Which kind of question was it? (carrel codes inquiry_kind)';
        END IF;
        v_kind := service_code_id('inquiry_kind', NULL, v_doc ->> 'kind');
        v_read := service_int(v_doc, 'read_level', 'read_level');
        IF v_read IS NULL OR v_read NOT BETWEEN 1 AND 6 THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:read_level',
                MESSAGE = 'The READ level is 1 to 6.';
        END IF;
        IF v_channel NOT IN ('in_person', 'phone', 'email', 'chat', 'text') THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:channel',
                MESSAGE = 'The channel is in_person, phone, email, chat or text.';
        END IF;
        v_minutes := coalesce(service_int(v_doc, 'minutes', 'minutes'), 1);
        IF v_minutes NOT BETWEEN 0 AND 480 THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:minutes',
                MESSAGE = 'Minutes spent: 0 to 480.';
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
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:id',
            MESSAGE = format('Inquiry %s became ticket %s; it cannot be taken back.', v.id,
                             v.ticket_id);
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
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:limit',
            MESSAGE = 'List 1 to 1000 tallies.';
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
