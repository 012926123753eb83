-- Staff schedules: service desks and their minimums, shifts, time off, the
-- week grid, coverage gaps, sick calls, open shifts and swaps (issue 11).
-- Called by server/schedule.c (requests 230-241); schedule_covers by
-- programs.sql. Local times in and out through localtime.sql. Lock order: a
-- person's staff row (FOR UPDATE: serialises their shifts, time off and
-- weekly hours), then shift rows. Changes write admin_audit rows.

-- ---------------------------------------------------------------- helpers

-- p_scope NULL: every branch; else only that one (CR403 branch: "You may
-- <p_doing> branch <code> only."). The one scope rule of schedules and
-- public service (service_scope_check).
CREATE OR REPLACE FUNCTION branch_scope_check(p_scope integer, p_branch integer, p_doing text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_scope IS NOT NULL AND p_scope IS DISTINCT FROM p_branch THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'branch',
            MESSAGE = format('You may %s branch %s only.', p_doing,
                             (SELECT code FROM branch WHERE id = p_scope));
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION schedule_scope_check(p_scope integer, p_branch integer) RETURNS void
LANGUAGE sql AS $$ SELECT branch_scope_check(p_scope, p_branch, 'change schedules of') $$;

-- Whether p_staff manages p_branch's schedule: a branch manager (or above)
-- whose scope covers it. Self-service requests (offer, withdraw) use it to
-- tell a manager from the owner.
CREATE OR REPLACE FUNCTION schedule_manages(p_staff bigint, p_scope integer, p_branch integer)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.role >= 'branch_manager' FROM staff s WHERE s.id = p_staff), false)
       AND (p_scope IS NULL OR p_scope = p_branch)
$$;

CREATE OR REPLACE FUNCTION schedule_branch(p_code text, p_field text) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id integer;
BEGIN
    SELECT b.id INTO v_id FROM branch b WHERE b.code = p_code;
    IF v_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
            MESSAGE = format('There is no branch with code %s.', coalesce(p_code, '(none)'));
    END IF;
    RETURN v_id;
END
$$;

-- A person by user name, locked (FOR UPDATE) when p_lock.
CREATE OR REPLACE FUNCTION schedule_person(p_username text, p_lock boolean) RETURNS staff
LANGUAGE plpgsql AS $$
DECLARE
    v staff;
BEGIN
    IF p_lock THEN
        SELECT * INTO v FROM staff s WHERE s.username = p_username FOR UPDATE;
    ELSE
        SELECT * INTO v FROM staff s WHERE s.username = p_username;
    END IF;
    IF v.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'staff',
            MESSAGE = format('No staff member has the user name %s.', coalesce(p_username, ''));
    END IF;
    RETURN v;
END
$$;

-- Whether a person may work at a branch: a staff_branch row, or a role
-- bound to no branch (coordinators and administrators work anywhere).
CREATE OR REPLACE FUNCTION schedule_works_at(p_person bigint, p_branch integer) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM staff_branch sb
                   WHERE sb.staff_id = p_person AND sb.branch_id = p_branch)
        OR EXISTS (SELECT 1 FROM staff s WHERE s.id = p_person AND s.role >= 'coordinator')
$$;

-- "10:00-14:00" (same day) or "2026-11-01 22:00-06:00" for messages.
CREATE OR REPLACE FUNCTION schedule_span(p_during tstzrange) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT local_text(lower(p_during)) || '-' || local_hhmm(upper(p_during))
$$;

-- Hours of a person's assigned shifts in the local ISO week containing
-- p_at, leaving out p_except (the shift being changed or swapped away).
-- Real elapsed hours: a night across the autumn clock change counts 9 for
-- 22:00-06:00.
CREATE OR REPLACE FUNCTION schedule_week_hours(p_person bigint, p_at timestamptz,
                                               p_except bigint[])
RETURNS numeric
LANGUAGE sql STABLE AS $$
    WITH w AS (
        SELECT date_trunc('week', (p_at AT TIME ZONE library_setting_text('timezone')))::date AS monday
    )
    SELECT coalesce(sum(extract(epoch FROM upper(s.during) - lower(s.during))) / 3600, 0)
    FROM shift s, w
    WHERE s.staff_id = p_person
      AND s.during && tstzrange(local_at(w.monday, '00:00'), local_at(w.monday + 7, '00:00'))
      AND (lower(s.during) AT TIME ZONE library_setting_text('timezone'))::date
          >= w.monday
      AND (lower(s.during) AT TIME ZONE library_setting_text('timezone'))::date
          < w.monday + 7
      AND NOT (s.id = ANY (coalesce(p_except, '{}')))
$$;

-- Every rule for a person taking a shift, in the documented order; raises
-- the first that fails. p_except: shifts to leave out of the overlap and
-- hours checks (the one being changed, or both shifts of a swap). Call with
-- the person's staff row locked.
CREATE OR REPLACE FUNCTION schedule_eligible(p_person staff, p_branch integer, p_mic boolean,
                                             p_during tstzrange, p_except bigint[],
                                             p_override boolean)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_other shift;
    v_hours numeric;
BEGIN
    IF NOT schedule_works_at(p_person.id, p_branch) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR422', DETAIL = 'not_at_branch',
            MESSAGE = format('%s does not work at %s.', p_person.display_name,
                             (SELECT code FROM branch WHERE id = p_branch));
    END IF;
    IF p_mic AND NOT p_person.mic_eligible THEN
        RAISE EXCEPTION USING ERRCODE = 'CR422', DETAIL = 'not_mic_eligible',
            MESSAGE = format('%s may not be the manager in charge.', p_person.display_name);
    END IF;
    IF EXISTS (SELECT 1 FROM time_off t WHERE t.staff_id = p_person.id
               AND t.status = 'approved' AND t.during && p_during) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR422', DETAIL = 'time_off',
            MESSAGE = format('%s has approved time off during %s.', p_person.display_name,
                             schedule_span(p_during));
    END IF;
    SELECT * INTO v_other FROM shift s
    WHERE s.staff_id = p_person.id AND s.during && p_during
      AND NOT (s.id = ANY (coalesce(p_except, '{}')))
    ORDER BY lower(s.during) LIMIT 1;
    IF v_other.id IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'overlapping_shift',
            MESSAGE = format('%s already has a shift %s at %s.', p_person.display_name,
                             schedule_span(v_other.during),
                             (SELECT code FROM branch WHERE id = v_other.branch_id));
    END IF;
    IF p_person.max_week_hours > 0 AND NOT p_override THEN
        v_hours := schedule_week_hours(p_person.id, lower(p_during), p_except)
                   + extract(epoch FROM upper(p_during) - lower(p_during)) / 3600;
        IF v_hours > p_person.max_week_hours THEN
            RAISE EXCEPTION USING ERRCODE = 'CR422', DETAIL = 'max_hours',
                MESSAGE = format('%s would work %s hours that week, over their %s.',
                                 p_person.display_name, round(v_hours, 2),
                                 p_person.max_week_hours);
        END IF;
    END IF;
END
$$;

-- The reply row of shifts: type shift_out (020_schedules.sql), Shift order.
CREATE OR REPLACE FUNCTION shift_rows(p_ids bigint[]) RETURNS SETOF shift_out
LANGUAGE sql STABLE AS $$
    SELECT s.id, p.username, p.display_name, b.code, d.code, local_text(lower(s.during)),
           local_text(upper(s.during)), s.mic,
           CASE WHEN s.staff_id IS NULL THEN 'open'
                WHEN s.offered_at IS NOT NULL THEN 'offered' ELSE 'assigned' END, s.note,
           (SELECT w.id FROM shift_swap w WHERE w.status = 'pending'
              AND (w.shift_id = s.id OR w.with_shift_id = s.id) ORDER BY w.id LIMIT 1)
    FROM shift s
    JOIN branch b ON b.id = s.branch_id
    LEFT JOIN staff p ON p.id = s.staff_id
    LEFT JOIN service_desk d ON d.id = s.desk_id
    WHERE s.id = ANY (p_ids)
    ORDER BY lower(s.during), b.code, d.code NULLS LAST, s.id
$$;

-- ------------------------------------------------------------------ desks

-- One row per need of each desk (need columns NULL for a desk without
-- needs), by branch code, desk code; C groups consecutive rows of one id.
CREATE OR REPLACE FUNCTION desk_list(p_branch text)
RETURNS TABLE (id bigint, branch_code text, code text, name text, active boolean,
               need_weekdays integer[], need_from text, need_to text, need_staff integer)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    v_branch integer;
BEGIN
    IF coalesce(p_branch, '') <> '' THEN
        v_branch := schedule_branch(p_branch, 'branch');
    END IF;
    RETURN QUERY
    SELECT d.id, b.code, d.code, d.name, d.active, n.weekdays::integer[],
           to_char(n.from_time, 'HH24:MI'), to_char(n.to_time, 'HH24:MI'), n.staff
    FROM service_desk d
    JOIN branch b ON b.id = d.branch_id
    LEFT JOIN desk_need n ON n.desk_id = d.id
    WHERE v_branch IS NULL OR d.branch_id = v_branch
    ORDER BY b.code, d.code, n.id;
END
$$;

-- "HH:MM" of a need, NULL for absent/empty; anything else CR400 field:needs.
CREATE OR REPLACE FUNCTION desk_need_time(p_text text) RETURNS time
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_text IS NULL OR p_text = '' THEN
        RETURN NULL;
    END IF;
    IF p_text !~ '^([01]\d|2[0-3]):[0-5]\d$' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:needs',
            MESSAGE = format('A need''s time must be HH:MM, not %s.', p_text);
    END IF;
    RETURN p_text::time;
END
$$;

-- Create (id absent or 0) or change a desk; its needs are replaced as a
-- whole (DeskSave's ServiceDesk as jsonb).
CREATE OR REPLACE FUNCTION desk_save(p_staff bigint, p_workstation bigint, p_scope integer,
                                     p_doc jsonb)
RETURNS TABLE (id bigint, branch_code text, code text, name text, active boolean,
               need_weekdays integer[], need_from text, need_to text, need_staff integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_doc jsonb := coalesce(p_doc -> 'desk', p_doc);
    v_id bigint := nullif((v_doc ->> 'id')::bigint, 0);
    v_old service_desk;
    v_branch integer;
    v_code text := v_doc ->> 'code';
    v_name text := v_doc ->> 'name';
    v_need jsonb;
    v_days smallint[];
    v_from time;
    v_to time;
    v_n integer;
BEGIN
    IF v_id IS NOT NULL THEN
        SELECT * INTO v_old FROM service_desk d WHERE d.id = v_id FOR UPDATE;
        IF v_old.id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'desk',
                MESSAGE = format('No service desk has id %s.', v_id);
        END IF;
        v_branch := v_old.branch_id;
        IF coalesce(v_doc ->> 'branch_code', '') <> ''
           AND schedule_branch(v_doc ->> 'branch_code', 'branch_code') <> v_branch THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:branch_code',
                MESSAGE = 'A desk cannot move to another branch; make a new one.';
        END IF;
        v_code := coalesce(nullif(v_code, ''), v_old.code);
        v_name := coalesce(nullif(v_name, ''), v_old.name);
    ELSE
        v_branch := schedule_branch(v_doc ->> 'branch_code', 'branch_code');
    END IF;
    PERFORM schedule_scope_check(p_scope, v_branch);
    IF v_code IS NULL OR v_code !~ '^[a-z][a-z0-9_]{1,31}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:code',
            MESSAGE = 'A desk code is 2-32 lower-case letters, digits or _, starting with a letter.';
    END IF;
    IF v_name IS NULL OR length(v_name) NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:name',
            MESSAGE = 'A desk needs a name (1-100 characters).';
    END IF;
    IF EXISTS (SELECT 1 FROM service_desk d WHERE d.branch_id = v_branch AND d.code = v_code
               AND d.id IS DISTINCT FROM v_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'duplicate',
            MESSAGE = format('The branch already has a desk with code %s.', v_code);
    END IF;
    IF v_id IS NULL THEN
        INSERT INTO service_desk (branch_id, code, name, active)
        VALUES (v_branch, v_code, v_name, coalesce((v_doc ->> 'active')::boolean, true))
        RETURNING service_desk.id INTO v_id;
    ELSE
        UPDATE service_desk d SET code = v_code, name = v_name,
               active = coalesce((v_doc ->> 'active')::boolean, d.active)
        WHERE d.id = v_id;
    END IF;
    DELETE FROM desk_need n WHERE n.desk_id = v_id;
    FOR v_need IN SELECT * FROM jsonb_array_elements(coalesce(v_doc -> 'needs', '[]')) LOOP
        BEGIN
            v_days := ARRAY(SELECT DISTINCT x::smallint
                            FROM jsonb_array_elements_text(coalesce(v_need -> 'weekdays', '[]')) x
                            ORDER BY 1);
            v_n := (v_need ->> 'staff')::integer;
        EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:needs',
                MESSAGE = 'A need''s weekdays and staff are numbers.';
        END;
        IF EXISTS (SELECT 1 FROM unnest(v_days) x WHERE x NOT BETWEEN 1 AND 7) THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:needs',
                MESSAGE = 'Weekdays are 1 (Monday) to 7 (Sunday).';
        END IF;
        IF v_n IS NULL OR v_n NOT BETWEEN 0 AND 50 THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:needs',
                MESSAGE = 'A need is 0 to 50 staff.';
        END IF;
        v_from := desk_need_time(v_need ->> 'from');
        v_to := desk_need_time(v_need ->> 'to');
        IF v_from >= v_to THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:needs',
                MESSAGE = format('A need from %s to %s ends before it starts.', v_need ->> 'from',
                       v_need ->> 'to');
        END IF;
        INSERT INTO desk_need (desk_id, weekdays, from_time, to_time, staff)
        VALUES (v_id, nullif(v_days, '{}'), v_from, v_to, v_n);
    END LOOP;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_staff, p_workstation, 'desk_save',
            (SELECT code FROM branch WHERE branch.id = v_branch) || '/' || v_code, v_doc);
    RETURN QUERY SELECT * FROM desk_list(NULL) l WHERE l.id = v_id;
END
$$;

-- ----------------------------------------------------------------- shifts

-- Place one shift (new when p_id is NULL, else change p_id) after every
-- rule; raises the first refusal. Returns the shift id.
CREATE OR REPLACE FUNCTION shift_place(p_staff bigint, p_id bigint, p_person text,
                                       p_branch integer, p_desk bigint, p_during tstzrange,
                                       p_mic boolean, p_note text, p_override boolean)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_person staff;
    v_id bigint := p_id;
BEGIN
    IF upper(p_during) - lower(p_during) NOT BETWEEN interval '15 minutes' AND interval '16 hours' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:end',
            MESSAGE = 'A shift is 15 minutes to 16 hours long.';
    END IF;
    IF coalesce(p_person, '') <> '' THEN
        v_person := schedule_person(p_person, true);
        PERFORM schedule_eligible(v_person, p_branch, p_mic, p_during,
                                  ARRAY[coalesce(p_id, 0)], p_override);
    END IF;
    BEGIN
        IF v_id IS NULL THEN
            INSERT INTO shift (staff_id, branch_id, desk_id, during, mic, note, created_by)
            VALUES (v_person.id, p_branch, p_desk, p_during, p_mic, coalesce(p_note, ''), p_staff)
            RETURNING id INTO v_id;
        ELSE
            -- Another person (or nobody) takes it: an offer of the old one ends.
            UPDATE shift SET staff_id = v_person.id, desk_id = p_desk, during = p_during,
                   mic = p_mic, note = coalesce(p_note, note),
                   offered_at = CASE WHEN staff_id IS NOT DISTINCT FROM v_person.id
                                     THEN offered_at END
            WHERE id = v_id;
        END IF;
    EXCEPTION WHEN exclusion_violation THEN
        -- Another transaction gave the person a shift then, after our check.
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'overlapping_shift',
            MESSAGE = format('%s already has a shift overlapping %s.', v_person.display_name,
                             schedule_span(p_during));
    END;
    RETURN v_id;
END
$$;

-- ShiftSave as jsonb: create, change or remove a shift, or a weekly series.
-- A single shift is refused by raising; in a series each occurrence is
-- placed on its own (a savepoint each) and refusals come back as rows with
-- made = false.
DROP FUNCTION IF EXISTS shift_save(bigint, bigint, integer, boolean, jsonb);
CREATE OR REPLACE FUNCTION shift_save_doc(p_staff bigint, p_workstation bigint, p_scope integer,
                                          p_override_ok boolean, p_doc jsonb)
RETURNS TABLE (made boolean, reason text, message text, id bigint, username text,
               staff_name text, branch_code text, desk_code text, start text, "end" text,
               mic boolean, status text, note text, swap_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_doc jsonb := coalesce(p_doc -> 'shift', '{}');
    v_id bigint := nullif((v_doc ->> 'id')::bigint, 0);
    v_old shift;
    v_override boolean := coalesce((p_doc ->> 'override')::boolean, false);
    v_repeat text := coalesce(p_doc ->> 'repeat', '');
    v_branch integer;
    v_desk bigint;
    v_start timestamptz;
    v_end timestamptz;
    v_until date;
    v_tz text := library_setting_text('timezone');
    v_n integer;
    v_i integer;
    v_during tstzrange;
    v_made bigint[] := '{}';
    v_state text;
    v_reason text;
    v_msg text;
BEGIN
    IF v_override AND NOT coalesce(p_override_ok, false) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'override',
            MESSAGE = 'You may not override weekly hours.';
    END IF;
    IF v_id IS NOT NULL THEN
        SELECT * INTO v_old FROM shift s WHERE s.id = v_id;
        IF v_old.id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'shift',
                MESSAGE = format('No shift has id %s.', v_id);
        END IF;
        PERFORM schedule_scope_check(p_scope, v_old.branch_id);
    END IF;
    IF coalesce((p_doc ->> 'remove')::boolean, false) THEN
        IF v_id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:id',
                MESSAGE = 'Say which shift to remove (its id).';
        END IF;
        RETURN QUERY SELECT true, NULL::text, NULL::text, r.* FROM shift_rows(ARRAY[v_id]) r;
        DELETE FROM shift s WHERE s.id = v_id;
        INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
        VALUES (p_staff, p_workstation, 'shift_remove', 'shift/' || v_id,
                jsonb_build_object('during', schedule_span(v_old.during),
                                   'staff_id', v_old.staff_id));
        RETURN;
    END IF;
    IF v_id IS NOT NULL AND coalesce(v_doc ->> 'branch_code', '') = '' THEN
        v_branch := v_old.branch_id;
    ELSE
        v_branch := schedule_branch(v_doc ->> 'branch_code', 'branch_code');
    END IF;
    PERFORM schedule_scope_check(p_scope, v_branch);
    IF coalesce(v_doc ->> 'desk_code', '') <> '' THEN
        SELECT d.id INTO v_desk FROM service_desk d
        WHERE d.branch_id = v_branch AND d.code = v_doc ->> 'desk_code';
        IF v_desk IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'desk',
                MESSAGE = format('No service desk has code %s at %s.', v_doc ->> 'desk_code',
                       (SELECT b.code FROM branch b WHERE b.id = v_branch));
        END IF;
    END IF;
    IF length(coalesce(v_doc ->> 'note', '')) > 200 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:note',
            MESSAGE = 'A note is at most 200 characters.';
    END IF;
    v_start := local_ts(v_doc ->> 'start', 'start');
    v_end := local_ts(v_doc ->> 'end', 'end');
    IF v_end <= v_start THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:end',
            MESSAGE = 'A shift ends after it starts.';
    END IF;
    IF v_repeat NOT IN ('', 'none', 'weekly') THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:repeat',
            MESSAGE = 'repeat is weekly or nothing.';
    END IF;
    IF v_repeat = 'weekly' THEN
        IF v_id IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:repeat',
                MESSAGE = 'Only a new shift can be repeated.';
        END IF;
        v_until := local_day(p_doc ->> 'until', 'until', NULL);
        IF v_until IS NULL OR v_until < library_local_date(v_start) THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:until',
                MESSAGE = 'A weekly shift needs an until date on or after its first day.';
        END IF;
        v_n := (v_until - library_local_date(v_start)) / 7 + 1;
        IF v_n > 26 THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:until',
                MESSAGE = 'A weekly series has at most 26 shifts.';
        END IF;
    ELSE
        v_n := 1;
    END IF;
    FOR v_i IN 0 .. v_n - 1 LOOP
        -- Same local times each week, whatever the clocks do in between.
        v_during := tstzrange(((v_start AT TIME ZONE v_tz) + make_interval(days => 7 * v_i))
                                  AT TIME ZONE v_tz,
                              ((v_end AT TIME ZONE v_tz) + make_interval(days => 7 * v_i))
                                  AT TIME ZONE v_tz);
        IF v_n = 1 THEN
            v_made := v_made || shift_place(p_staff, v_id, v_doc ->> 'username', v_branch,
                                            v_desk, v_during,
                                            coalesce((v_doc ->> 'mic')::boolean, false),
                                            v_doc ->> 'note', v_override);
            CONTINUE;
        END IF;
        BEGIN
            v_made := v_made || shift_place(p_staff, NULL, v_doc ->> 'username', v_branch,
                                            v_desk, v_during,
                                            coalesce((v_doc ->> 'mic')::boolean, false),
                                            v_doc ->> 'note', v_override);
        EXCEPTION WHEN SQLSTATE 'CR409' OR SQLSTATE 'CR422' OR SQLSTATE 'CR400' THEN
            GET STACKED DIAGNOSTICS v_reason = PG_EXCEPTION_DETAIL, v_msg = MESSAGE_TEXT;
            RETURN QUERY SELECT false, v_reason, v_msg, NULL::bigint, v_doc ->> 'username',
                                NULL::text, (SELECT b.code FROM branch b WHERE b.id = v_branch),
                                v_doc ->> 'desk_code', local_text(lower(v_during)),
                                local_text(upper(v_during)),
                                coalesce((v_doc ->> 'mic')::boolean, false), NULL::text,
                                NULL::text, NULL::bigint;
        END;
    END LOOP;
    IF cardinality(v_made) > 0 THEN
        INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
        VALUES (p_staff, p_workstation, 'shift_save',
                'shift/' || array_to_string(v_made, ','), p_doc);
    END IF;
    RETURN QUERY SELECT true, NULL::text, NULL::text, r.* FROM shift_rows(v_made) r;
END
$$;

-- ShiftSave with the request's key (server/schedule.c): shift_save_doc,
-- done once per key (request_claim / request_store, as the keyed changes),
-- so a retried `shift add` of an open shift makes no second one. The key is
-- optional (ShiftSave is a mutating route): without one it is the save.
CREATE OR REPLACE FUNCTION shift_save(p_key uuid, p_staff bigint, p_workstation bigint,
                                      p_scope integer, p_override_ok boolean, p_doc jsonb)
RETURNS TABLE (made boolean, reason text, message text, id bigint, username text,
               staff_name text, branch_code text, desk_code text, start text, "end" text,
               mic boolean, status text, note text, swap_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_stored jsonb;
BEGIN
    IF p_key IS NULL THEN
        RETURN QUERY SELECT * FROM shift_save_doc(p_staff, p_workstation, p_scope,
                                                  p_override_ok, p_doc);
        RETURN;
    END IF;
    v_stored := request_claim(p_key, p_staff, 'shift_save');
    IF v_stored IS NULL THEN
        SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.n), '[]') INTO v_stored
        FROM shift_save_doc(p_staff, p_workstation, p_scope, p_override_ok, p_doc)
             WITH ORDINALITY AS r(made, reason, message, id, username, staff_name,
                                  branch_code, desk_code, start, "end", mic, status, note,
                                  swap_id, n);
        PERFORM request_store(p_key, v_stored);
    END IF;
    RETURN QUERY SELECT x.made, x.reason, x.message, x.id, x.username, x.staff_name,
                        x.branch_code, x.desk_code, x.start, x."end", x.mic, x.status,
                        x.note, x.swap_id
                 FROM jsonb_to_recordset(v_stored)
                      AS x(made boolean, reason text, message text, id bigint,
                           username text, staff_name text, branch_code text, desk_code text,
                           start text, "end" text, mic boolean, status text, note text,
                           swap_id bigint);
END
$$;

-- The arguments shared by shift_list and time_off_list, checked in one place so both refuse
-- alike: the local days p_from..p_to (from defaults to today, to to from + p_default_days; CR400
-- field:to unless to is 0 to p_max_days after from), the branch (NULL when not given) and the
-- person (NULL when not given).
CREATE OR REPLACE FUNCTION schedule_list_args(p_branch text, p_username text, p_from text,
                                              p_to text, p_default_days integer,
                                              p_max_days integer, OUT from_day date,
                                              OUT to_day date, OUT branch_id integer,
                                              OUT person_id bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    from_day := local_day(p_from, 'from', library_today());
    to_day := local_day(p_to, 'to', NULL);
    to_day := coalesce(to_day, from_day + p_default_days);
    IF to_day < from_day OR to_day - from_day > p_max_days THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:to',
            MESSAGE = format('to is 0 to %s days after from.', p_max_days);
    END IF;
    IF coalesce(p_branch, '') <> '' THEN
        branch_id := schedule_branch(p_branch, 'branch');
    END IF;
    IF coalesce(p_username, '') <> '' THEN
        person_id := (schedule_person(p_username, false)).id;
    END IF;
END
$$;

-- Shifts overlapping the local days p_from..p_to (default today .. +6).
CREATE OR REPLACE FUNCTION shift_list(p_branch text, p_username text, p_from text, p_to text,
                                      p_open_only boolean)
RETURNS SETOF shift_out
LANGUAGE plpgsql STABLE AS $$
DECLARE
    a record := schedule_list_args(p_branch, p_username, p_from, p_to, 6, 92);
BEGIN
    RETURN QUERY SELECT * FROM shift_rows(ARRAY(
        SELECT s.id FROM shift s
        WHERE s.during && tstzrange(local_at(a.from_day, '00:00'),
                                    local_at(a.to_day + 1, '00:00'))
          AND (a.branch_id IS NULL OR s.branch_id = a.branch_id)
          AND (a.person_id IS NULL OR s.staff_id = a.person_id)
          AND (NOT coalesce(p_open_only, false) OR s.staff_id IS NULL
               OR s.offered_at IS NOT NULL)));
END
$$;

-- THE rule of "scheduled" for a program session, used by programs.sql
-- (session_out.staff_scheduled) and by the gap report (program_unstaffed):
-- an assigned shift of p_staff (any desk or off desk) covering the whole of
-- p_during at p_branch, the program's branch; p_branch NULL (a program
-- offsite or online) = a shift at any branch. An offered shift still
-- counts: it stays its owner's until someone claims it.
DROP FUNCTION IF EXISTS schedule_covers(bigint, tstzrange);
CREATE OR REPLACE FUNCTION schedule_covers(p_staff bigint, p_during tstzrange, p_branch integer)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM shift s WHERE s.staff_id = p_staff AND s.during @> p_during
                   AND (p_branch IS NULL OR s.branch_id = p_branch))
$$;

-- ------------------------------------------------------- week grid and gaps

-- Monday of the week containing a date (default: this week).
CREATE OR REPLACE FUNCTION schedule_week_start(p_week text) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT d - (extract(isodow FROM d)::integer - 1)
    FROM local_day(p_week, 'week', library_today()) d
$$;

-- THE rule of a desk's minimum: whether a desk_need rule (its weekdays,
-- from_time, to_time) applies to the half hour starting at local time p_t on
-- ISO weekday p_dow. A desk's need is the highest of the rules that apply.
-- Used by schedule_gaps, schedule_week and service_levels (service.sql);
-- inlined by the planner (one expression).
CREATE OR REPLACE FUNCTION desk_need_applies(p_weekdays smallint[], p_from time, p_to time,
                                             p_dow integer, p_t time)
RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (coalesce(cardinality(p_weekdays), 0) = 0 OR p_dow = ANY (p_weekdays))
       AND (p_from IS NULL OR p_t >= p_from)
       AND (p_to IS NULL OR p_t < p_to)
$$;

-- The open half hours of branches over local days: one row per half hour,
-- made in local time (so a day the clocks change still has its half hours
-- from opening to closing) and converted once. Closed days have none.
CREATE OR REPLACE FUNCTION schedule_slots(p_branches integer[], p_from date, p_to date)
RETURNS TABLE (branch_id integer, branch_code text, day date, k integer, l_from timestamp,
               l_to timestamp, slot tstzrange)
LANGUAGE sql STABLE AS $$
    WITH tz AS MATERIALIZED (SELECT library_setting_text('timezone') AS name),
    bd AS (
        SELECT b.id, b.code, p_from + i AS day, (p_from + i) + h.opens AS opens,
               (p_from + i) + h.closes AS closes
        FROM branch b
        JOIN generate_series(0, p_to - p_from) i ON true
        JOIN branch_hours h ON h.branch_id = b.id
                           AND h.weekday = extract(isodow FROM p_from + i)
        WHERE (coalesce(cardinality(p_branches), 0) = 0 OR b.id = ANY (p_branches))
          AND NOT EXISTS (SELECT 1 FROM branch_closed c
                          WHERE c.branch_id = b.id AND c.day = p_from + i)
    )
    -- At most 48 half hours a day: a constant series the planner counts right.
    SELECT bd.id, bd.code, bd.day, k, bd.opens + k * interval '30 minutes',
           least(bd.opens + (k + 1) * interval '30 minutes', bd.closes),
           tstzrange((bd.opens + k * interval '30 minutes') AT TIME ZONE tz.name,
                     least(bd.opens + (k + 1) * interval '30 minutes', bd.closes)
                         AT TIME ZONE tz.name)
    FROM bd, tz, generate_series(0, 47) k
    WHERE bd.opens + k * interval '30 minutes' < bd.closes
$$;

-- program_unstaffed gaps: live sessions of programs at these branches whose
-- responsible staff member (the session's, else the program's) is not
-- scheduled by schedule_covers (a shift at the program's branch, or any
-- branch for a program offsite or online). Reads part A's tables; called
-- only when they exist (schedule_gaps checks). Sessions with nobody
-- responsible (an outside presenter) are not gaps.
CREATE OR REPLACE FUNCTION schedule_program_gaps(p_branches integer[], p_from date, p_to date)
RETURNS schedule_gap_row[]
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN ARRAY(
        SELECT ROW(b.code, library_local_date(lower(ps.during)), local_hhmm(lower(ps.during)),
                   local_hhmm(upper(ps.during)), 'program_unstaffed', NULL, 1, 0,
                   format('program %s %s-%s: %s not scheduled', p.title,
                          local_hhmm(lower(ps.during)), local_hhmm(upper(ps.during)),
                          st.display_name),
                   ps.id)::schedule_gap_row
        FROM program_session ps
        JOIN program p ON p.id = ps.program_id
        JOIN branch b ON b.id = p.branch_id
        JOIN staff st ON st.id = coalesce(ps.staff_id, p.staff_id)
        WHERE NOT ps.cancelled AND NOT p.cancelled
          AND (coalesce(cardinality(p_branches), 0) = 0 OR p.branch_id = ANY (p_branches))
          AND ps.during && tstzrange(local_at(p_from, '00:00'), local_at(p_to + 1, '00:00'))
          AND NOT schedule_covers(st.id, ps.during,
                                  CASE WHEN p.venue = 'branch' THEN p.branch_id END));
END
$$;

-- Every half hour (merged into runs) where a desk is under its minimum, a
-- branch is open without a manager in charge, or a program session's
-- responsible staff is not scheduled. p_branches NULL or empty: all.
-- Set-based: the half-hour grid once, assigned shifts joined by branch and
-- local day with range containment, needs as the max of matching rules.
CREATE OR REPLACE FUNCTION schedule_gaps(p_branches integer[], p_from date, p_to date)
RETURNS TABLE (branch_code text, day date, start text, "end" text, kind text, desk_code text,
               needed integer, scheduled integer, text text, program_session_id bigint)
-- A grid query never repays JIT compilation (seconds when the planner
-- overestimates the grid; the answer takes milliseconds), and its sorts of
-- a quarter's half hours (about 80 000 narrow rows) belong in memory.
LANGUAGE plpgsql STABLE SET jit = off SET work_mem = '32MB' AS $$
#variable_conflict use_column
DECLARE
    v_tz text := library_setting_text('timezone');
    v_prog schedule_gap_row[] := '{}';
    v_range tstzrange := tstzrange(local_at(p_from, '00:00'), local_at(p_to + 1, '00:00'));
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR p_to < p_from OR p_to - p_from > 92 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:to',
            MESSAGE = 'Gaps are shown for 1 to 93 days.';
    END IF;
    IF to_regclass('program_session') IS NOT NULL THEN
        v_prog := schedule_program_gaps(p_branches, p_from, p_to);
    END IF;
    RETURN QUERY
    -- Each half hour gets a number, sid = (day index * 48 + half hour) * 100000
    -- + branch id: the aggregates below group and sort integers, and
    -- consecutive half hours of a day have consecutive sid / 100000.
    WITH sl AS MATERIALIZED (
        SELECT g.branch_id, g.day, g.slot,
               ((g.day - p_from) * 48 + g.k)::bigint * 100000 + g.branch_id AS sid,
               extract(isodow FROM g.day)::integer AS dow, g.l_from::time AS t
        FROM schedule_slots(p_branches, p_from, p_to) g
    ),
    -- Assigned shifts by the local day they start, and again by the day they
    -- end when they run past midnight (at most 16 hours: two days at most).
    sh0 AS MATERIALIZED (
        SELECT s.branch_id, s.desk_id, s.mic, s.during,
               (lower(s.during) AT TIME ZONE v_tz)::date AS day,
               (upper(s.during) AT TIME ZONE v_tz)::date AS last_day
        FROM shift s
        WHERE s.staff_id IS NOT NULL
          AND s.during && v_range
          AND (coalesce(cardinality(p_branches), 0) = 0 OR s.branch_id = ANY (p_branches))
    ),
    sh AS (
        SELECT sh0.branch_id, sh0.desk_id, sh0.mic, sh0.during, sh0.day FROM sh0
        UNION ALL
        SELECT sh0.branch_id, sh0.desk_id, sh0.mic, sh0.during, sh0.last_day FROM sh0
        WHERE sh0.last_day > sh0.day
    ),
    -- Who is on which half hour: shifts of the branch that day containing it.
    cov AS MATERIALIZED (
        SELECT sl.sid, sh.desk_id, sh.mic
        FROM sl JOIN sh ON sh.branch_id = sl.branch_id AND sh.day = sl.day
                       AND sh.during @> sl.slot
    ),
    -- Needs and people of a desk's half hour in one aggregate (no join of
    -- two large estimated sets): needed = max of the matching rules.
    desk_cells AS (
        SELECT x.sid, x.desk_id, max(x.needed) AS needed, count(x.one)::integer AS scheduled
        FROM (SELECT sl.sid, d.id AS desk_id, n.staff AS needed, NULL::integer AS one
              FROM sl
              JOIN service_desk d ON d.branch_id = sl.branch_id AND d.active
              JOIN desk_need n ON n.desk_id = d.id
               AND desk_need_applies(n.weekdays, n.from_time, n.to_time, sl.dow, sl.t)
              UNION ALL
              SELECT c.sid, c.desk_id, NULL, 1 FROM cov c WHERE c.desk_id IS NOT NULL) x
        GROUP BY x.sid, x.desk_id
        HAVING count(x.one) < max(x.needed)
    ),
    -- Open half hours without a manager in charge, the same way.
    mic_cells AS (
        SELECT x.sid
        FROM (SELECT sl.sid, false AS m FROM sl
              UNION ALL
              SELECT c.sid, true FROM cov c WHERE c.mic) x
        GROUP BY x.sid
        HAVING NOT bool_or(x.m)
    ),
    cells AS (
        SELECT dc.sid, 'under_minimum'::text AS ckind, dc.desk_id, dc.needed AS cneeded,
               dc.scheduled AS cscheduled
        FROM desk_cells dc
        UNION ALL
        SELECT mc.sid, 'no_mic', NULL, 1, 0 FROM mic_cells mc
    ),
    -- sid decoded: branch, day, half hour of the day.
    runs AS (
        SELECT c.*, (c.sid % 100000)::integer AS branch_id,
               p_from + (c.sid / 100000 / 48)::integer AS cday,
               (c.sid / 100000 % 48)::integer AS k,
               c.sid / 100000 - row_number() OVER (
                   PARTITION BY c.sid % 100000, c.sid / 100000 / 48, c.ckind, c.desk_id,
                                c.cneeded, c.cscheduled
                   ORDER BY c.sid) AS grp
        FROM cells c
    ),
    merged AS (
        SELECT r.branch_id, r.cday, r.ckind, r.desk_id, r.cneeded, r.cscheduled,
               min(r.k) AS k1, max(r.k) AS k2
        FROM runs r
        GROUP BY r.branch_id, r.cday, r.ckind, r.desk_id, r.cneeded, r.cscheduled, r.grp
    ),
    timed AS (
        SELECT m.*, to_char(h.opens + m.k1 * interval '30 minutes', 'HH24:MI') AS f,
               to_char(least(h.opens + (m.k2 + 1) * interval '30 minutes', h.closes),
                       'HH24:MI') AS t
        FROM merged m
        JOIN branch_hours h ON h.branch_id = m.branch_id
                           AND h.weekday = extract(isodow FROM m.cday)
    )
    SELECT b.code, m.cday, m.f, m.t, m.ckind, d.code, m.cneeded, m.cscheduled,
           CASE m.ckind
               WHEN 'under_minimum' THEN format('%s %s-%s: %s of %s', d.code, m.f, m.t,
                                                m.cscheduled, m.cneeded)
               ELSE format('MIC %s-%s: no manager in charge', m.f, m.t)
           END,
           NULL::bigint
    FROM timed m
    JOIN branch b ON b.id = m.branch_id
    LEFT JOIN service_desk d ON d.id = m.desk_id
    UNION ALL
    SELECT * FROM unnest(v_prog)
    ORDER BY 1, 2, 3, 6 NULLS LAST, 5;
END
$$;

-- Desks x half hours of one branch and week, with who is on each: one row
-- per open half hour per desk (code order), then 'MIC' (needed 1), then ''
-- (off-desk work) when anyone works off desk that week. names: display
-- names of assigned shifts covering the whole half hour. A MIC shift
-- without a desk is on the MIC row only (being in charge is its work).
-- "end": where the half hour ends, the closing time for the last one.
DROP FUNCTION IF EXISTS schedule_week(text, text);
CREATE OR REPLACE FUNCTION schedule_week(p_branch text, p_week text)
RETURNS TABLE (day date, "time" text, desk_code text, needed integer, names text[],
               "end" text)
LANGUAGE plpgsql STABLE SET jit = off AS $$
#variable_conflict use_column
DECLARE
    v_branch integer := schedule_branch(p_branch, 'branch');
    v_monday date := schedule_week_start(p_week);
    v_week tstzrange := tstzrange(local_at(v_monday, '00:00'), local_at(v_monday + 7, '00:00'));
BEGIN
    RETURN QUERY
    WITH sl AS MATERIALIZED (
        SELECT g.*, extract(isodow FROM g.day)::integer AS dow, g.l_from::time AS t
        FROM schedule_slots(ARRAY[v_branch], v_monday, v_monday + 6) g
    ),
    sh AS MATERIALIZED (
        SELECT s.desk_id, s.mic, s.during, p.display_name
        FROM shift s JOIN staff p ON p.id = s.staff_id
        WHERE s.branch_id = v_branch AND s.during && v_week
    ),
    rowsdef AS (
        SELECT d.id AS desk_id, d.code AS rcode, 0 AS ord FROM service_desk d
        WHERE d.branch_id = v_branch
          AND (d.active OR EXISTS (SELECT 1 FROM sh WHERE sh.desk_id = d.id))
        UNION ALL SELECT NULL, 'MIC', 1
        UNION ALL SELECT NULL, '', 2 WHERE EXISTS (SELECT 1 FROM sh
                                                   WHERE sh.desk_id IS NULL AND NOT sh.mic)
    )
    SELECT sl.day, to_char(sl.l_from, 'HH24:MI'), r.rcode,
           CASE r.ord
               WHEN 0 THEN coalesce((SELECT max(n.staff) FROM desk_need n
                                     WHERE n.desk_id = r.desk_id
                                       AND desk_need_applies(n.weekdays, n.from_time,
                                                             n.to_time, sl.dow, sl.t)), 0)
               WHEN 1 THEN 1 ELSE 0 END,
           ARRAY(SELECT sh.display_name FROM sh
                 WHERE sh.during @> sl.slot
                   AND CASE r.ord WHEN 0 THEN sh.desk_id = r.desk_id
                                  WHEN 1 THEN sh.mic
                                  ELSE sh.desk_id IS NULL AND NOT sh.mic END
                 ORDER BY sh.display_name),
           to_char(sl.l_to, 'HH24:MI')
    FROM sl CROSS JOIN rowsdef r
    ORDER BY sl.day, sl.k, r.ord, r.rcode;
END
$$;

-- --------------------------------------------------------------- time off

-- decision_reason (023) came after TimeOff's first seven fields: a new
-- last column, so the three functions are made again.
DROP FUNCTION IF EXISTS time_off_save(bigint, bigint, integer, jsonb);
DROP FUNCTION IF EXISTS time_off_list(text, text, text, text, boolean);
DROP FUNCTION IF EXISTS time_off_rows(bigint[]);
CREATE OR REPLACE FUNCTION time_off_rows(p_ids bigint[])
RETURNS TABLE (id bigint, username text, start text, "end" text, status text, reason text,
               decided_by text, decision_reason text)
LANGUAGE sql STABLE AS $$
    SELECT t.id, p.username, local_text(lower(t.during)), local_text(upper(t.during)),
           t.status, t.reason, d.username, t.decision_reason
    FROM time_off t JOIN staff p ON p.id = t.staff_id
    LEFT JOIN staff d ON d.id = t.decided_by
    WHERE t.id = ANY (p_ids)
    ORDER BY lower(t.during), p.username, t.id
$$;

-- May p_staff act on p_person's time off as a manager: a branch manager or
-- above whose scope holds a branch the person works at (all when NULL).
CREATE OR REPLACE FUNCTION time_off_manages(p_staff bigint, p_scope integer, p_person bigint)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.role >= 'branch_manager' FROM staff s WHERE s.id = p_staff), false)
       AND (p_scope IS NULL OR EXISTS (SELECT 1 FROM staff_branch sb
                                       WHERE sb.staff_id = p_person AND sb.branch_id = p_scope))
$$;

-- TimeOffSave as jsonb. request (default): anyone for themself, a manager
-- for people of their branch; approve / deny: managers, requests only;
-- approving over assigned shifts is refused (shifts_scheduled, naming
-- them); withdraw: the person (or a manager), requested or approved. A
-- decision's reason (the document's reason) is kept as decision_reason.
-- Nobody below coordinator decides their own time off (not_yours).
CREATE OR REPLACE FUNCTION time_off_save(p_staff bigint, p_workstation bigint, p_scope integer,
                                         p_doc jsonb)
RETURNS TABLE (id bigint, username text, start text, "end" text, status text, reason text,
               decided_by text, decision_reason text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_doc jsonb := coalesce(p_doc -> 'time_off', '{}');
    v_action text := coalesce(nullif(p_doc ->> 'action', ''), 'request');
    v_id bigint := nullif((v_doc ->> 'id')::bigint, 0);
    v_person staff;
    v_entry time_off;
    v_during tstzrange;
    v_shifts text;
    v_msg text;
BEGIN
    IF v_action = 'request' THEN
        IF coalesce(v_doc ->> 'username', '') = '' THEN
            SELECT * INTO v_person FROM staff s WHERE s.id = p_staff FOR UPDATE;
        ELSE
            v_person := schedule_person(v_doc ->> 'username', true);
        END IF;
        IF v_person.id <> p_staff AND NOT time_off_manages(p_staff, p_scope, v_person.id) THEN
            RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'not_yours',
                MESSAGE = format('Only %s or a manager of their branch may ask for their time off.',
                       v_person.display_name);
        END IF;
        v_during := tstzrange(local_ts(v_doc ->> 'start', 'start'), local_ts(v_doc ->> 'end', 'end'));
        IF isempty(v_during) THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:end',
                MESSAGE = 'Time off ends after it starts.';
        END IF;
        IF length(coalesce(v_doc ->> 'reason', '')) > 200 THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:reason',
                MESSAGE = 'A reason is at most 200 characters.';
        END IF;
        INSERT INTO time_off (staff_id, during, reason, requested_by)
        VALUES (v_person.id, v_during, coalesce(v_doc ->> 'reason', ''), p_staff)
        RETURNING time_off.id INTO v_id;
    ELSIF v_action IN ('approve', 'deny', 'withdraw') THEN
        SELECT * INTO v_entry FROM time_off t WHERE t.id = v_id;
        IF v_entry.id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'time_off_entry',
                MESSAGE = format('No time off has id %s.', coalesce(v_id::text, '(none)'));
        END IF;
        -- The person's row first (lock order), then the entry again, current.
        SELECT * INTO v_person FROM staff s WHERE s.id = v_entry.staff_id FOR UPDATE;
        SELECT * INTO v_entry FROM time_off t WHERE t.id = v_id FOR UPDATE;
        IF v_action = 'withdraw' AND v_person.id = p_staff THEN
            NULL;
        ELSIF NOT time_off_manages(p_staff, p_scope, v_person.id) THEN
            v_msg := format('Only a manager of %s''s branch may %s this time off.',
                            v_person.display_name, v_action);
            IF v_action = 'withdraw' THEN
                RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'not_yours',
                    MESSAGE = v_msg;
            ELSIF (SELECT s.role < 'branch_manager' FROM staff s WHERE s.id = p_staff) THEN
                RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'role',
                    MESSAGE = v_msg;
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'branch',
                MESSAGE = v_msg;
        END IF;
        IF v_action IN ('approve', 'deny') AND v_person.id = p_staff
           AND (SELECT s.role < 'coordinator' FROM staff s WHERE s.id = p_staff) THEN
            RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'not_yours',
                MESSAGE = 'Your own time off is decided by another manager or the coordinator.';
        END IF;
        IF length(coalesce(v_doc ->> 'reason', '')) > 200 THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:reason',
                MESSAGE = 'A reason is at most 200 characters.';
        END IF;
        IF v_entry.status NOT IN ('requested', 'approved')
           OR (v_action <> 'withdraw' AND v_entry.status <> 'requested') THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:action',
                MESSAGE = format('This time off is %s already; it cannot be %s.', v_entry.status,
                       CASE v_action WHEN 'approve' THEN 'approved' WHEN 'deny' THEN 'denied'
                                     ELSE 'withdrawn' END);
        END IF;
        IF v_action = 'approve' THEN
            SELECT string_agg(format('%s %s', b.code, schedule_span(s.during)), ', '
                              ORDER BY lower(s.during))
            INTO v_shifts
            FROM shift s JOIN branch b ON b.id = s.branch_id
            WHERE s.staff_id = v_person.id AND s.during && v_entry.during;
            IF v_shifts IS NOT NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'shifts_scheduled',
                    MESSAGE = format('%s has shifts then (%s); move them first.', v_person.display_name,
                           v_shifts);
            END IF;
        END IF;
        UPDATE time_off t
        SET status = CASE v_action WHEN 'approve' THEN 'approved' WHEN 'deny' THEN 'denied'
                                   ELSE 'withdrawn' END,
            decided_by = p_staff, decided_at = now(),
            decision_reason = coalesce(v_doc ->> 'reason', '')
        WHERE t.id = v_id;
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:action',
            MESSAGE = 'action is request, approve, deny or withdraw.';
    END IF;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_staff, p_workstation, 'time_off_' || v_action, 'time_off/' || v_id,
            jsonb_build_object('username', v_person.username));
    RETURN QUERY SELECT * FROM time_off_rows(ARRAY[v_id]);
END
$$;

-- Time off overlapping the local days p_from..p_to (default: today on,
-- 92 days), of a person or of the people of a branch.
CREATE OR REPLACE FUNCTION time_off_list(p_branch text, p_username text, p_from text, p_to text,
                                         p_pending boolean)
RETURNS TABLE (id bigint, username text, start text, "end" text, status text, reason text,
               decided_by text, decision_reason text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    a record := schedule_list_args(p_branch, p_username, p_from, p_to, 92, 366);
BEGIN
    RETURN QUERY SELECT * FROM time_off_rows(ARRAY(
        SELECT t.id FROM time_off t
        WHERE t.during && tstzrange(local_at(a.from_day, '00:00'),
                                    local_at(a.to_day + 1, '00:00'))
          AND (a.person_id IS NULL OR t.staff_id = a.person_id)
          AND (a.branch_id IS NULL OR EXISTS (SELECT 1 FROM staff_branch sb
                                              WHERE sb.staff_id = t.staff_id
                                                AND sb.branch_id = a.branch_id))
          AND (NOT coalesce(p_pending, false) OR t.status = 'requested')));
END
$$;

-- ---------------------------------------------------------------- sick call

-- The person's assigned shifts overlapping the local day become open
-- shifts; each branch concerned gets a schedule_gap desk event with that
-- day's gaps after it (one line). Keyed: a retry returns the stored rows.
-- Rows: kind 'opened' (shift columns) then kind 'gap' (gap columns).
-- What was worked stays as it was: shifts already ended are left alone, and
-- a shift under way is split at the current minute, the worked part staying
-- the person's and the rest becoming a new open shift. A shift is 15
-- minutes at least, so one started less than 15 minutes ago opens whole and
-- one ending within 15 minutes is left to its owner. A branch manager
-- (p_scope) opens only the shifts of their branch; the coordinator all.
CREATE OR REPLACE FUNCTION schedule_absent(p_key uuid, p_staff bigint, p_workstation bigint,
                                           p_scope integer, p_username text, p_date text,
                                           p_reason text)
RETURNS TABLE (kind text, id bigint, username text, staff_name text, branch_code text,
               desk_code text, start text, "end" text, mic boolean, status text, note text,
               swap_id bigint, gap_branch_code text, gap_day date, gap_start text,
               gap_end text, gap_kind text, gap_desk_code text, gap_needed integer,
               gap_scheduled integer, gap_text text, gap_program_session_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_stored jsonb := request_claim(p_key, p_staff, 'schedule_absent');
    v_person staff;
    v_day date;
    v_ids bigint[];
    v_branches integer[];
    v_b integer;
    v_line text;
    v_result jsonb;
    v_cut timestamptz := date_trunc('minute', now());
    v_s shift;
    v_new bigint;
    v_split bigint[] := '{}';
    v_note text;
BEGIN
    IF v_stored IS NOT NULL THEN
        RETURN QUERY SELECT r.* FROM jsonb_populate_recordset(NULL::schedule_absent_row, v_stored) r;
        RETURN;
    END IF;
    v_person := schedule_person(p_username, true);
    v_day := local_day(p_date, 'date', library_today());
    IF p_scope IS NOT NULL AND NOT EXISTS (SELECT 1 FROM staff_branch sb
                                           WHERE sb.staff_id = v_person.id
                                             AND sb.branch_id = p_scope) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'branch',
            MESSAGE = format('%s does not work at your branch.', v_person.display_name);
    END IF;
    IF length(coalesce(p_reason, '')) > 200 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:reason',
            MESSAGE = 'A reason is at most 200 characters.';
    END IF;
    v_note := left('sick call: ' || v_person.display_name, 200);
    FOR v_s IN SELECT * FROM shift s
               WHERE s.staff_id = v_person.id
                 AND s.during && tstzrange(local_at(v_day, '00:00'), local_at(v_day + 1, '00:00'))
                 AND upper(s.during) > v_cut
                 AND (p_scope IS NULL OR s.branch_id = p_scope)
               ORDER BY lower(s.during), s.id FOR UPDATE LOOP
        IF lower(v_s.during) > v_cut - interval '15 minutes' THEN
            UPDATE shift s SET staff_id = NULL, offered_at = now(), note = v_note
            WHERE s.id = v_s.id;
            v_new := v_s.id;
        ELSIF upper(v_s.during) - v_cut < interval '15 minutes' THEN
            CONTINUE;
        ELSE
            UPDATE shift s SET during = tstzrange(lower(v_s.during), v_cut) WHERE s.id = v_s.id;
            INSERT INTO shift (staff_id, branch_id, desk_id, during, mic, note, created_by,
                               offered_at)
            VALUES (NULL, v_s.branch_id, v_s.desk_id, tstzrange(v_cut, upper(v_s.during)),
                    v_s.mic, v_note, p_staff, now())
            RETURNING shift.id INTO v_new;
            v_split := v_split || v_s.id;
        END IF;
        v_ids := coalesce(v_ids, '{}') || v_new;
        IF NOT v_s.branch_id = ANY (coalesce(v_branches, '{}')) THEN
            v_branches := coalesce(v_branches, '{}') || v_s.branch_id;
        END IF;
    END LOOP;
    v_branches := ARRAY(SELECT DISTINCT x FROM unnest(v_branches) x ORDER BY 1);
    -- Pending swaps of those shifts (and of the split ones) have nothing left to swap.
    UPDATE shift_swap w SET status = 'denied', decided_by = p_staff, decided_at = now()
    WHERE w.status = 'pending'
      AND (w.shift_id = ANY (v_ids || v_split) OR w.with_shift_id = ANY (v_ids || v_split));
    FOREACH v_b IN ARRAY coalesce(v_branches, '{}') LOOP
        SELECT string_agg(CASE g.kind WHEN 'under_minimum'
                              THEN format('%s %s-%s %s of %s', g.desk_code, g.start, g."end",
                                          g.scheduled, g.needed)
                              WHEN 'no_mic' THEN format('MIC %s-%s', g.start, g."end")
                              ELSE g.text END, '; ')
        INTO v_line FROM schedule_gaps(ARRAY[v_b], v_day, v_day) g;
        PERFORM desk_event(v_b, 'schedule_gap', NULL, NULL,
            format('%s: %s after %s''s sick call: %s',
                   (SELECT b.code FROM branch b WHERE b.id = v_b),
                   CASE WHEN v_day = library_today() THEN 'gaps today'
                        ELSE 'gaps on ' || v_day END,
                   v_person.display_name, coalesce(v_line, 'covered')));
    END LOOP;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_staff, p_workstation, 'schedule_absent', v_person.username,
            jsonb_build_object('day', v_day, 'shifts', v_ids, 'split', v_split,
                               'reason', coalesce(p_reason, '')));
    SELECT coalesce(jsonb_agg(to_jsonb(x)), '[]') INTO v_result FROM (
        SELECT 'opened' AS kind, r.*, NULL::text AS gap_branch_code, NULL::date AS gap_day,
               NULL::text AS gap_start, NULL::text AS gap_end, NULL::text AS gap_kind,
               NULL::text AS gap_desk_code, NULL::integer AS gap_needed,
               NULL::integer AS gap_scheduled, NULL::text AS gap_text,
               NULL::bigint AS gap_program_session_id
        FROM shift_rows(coalesce(v_ids, '{}')) r
        UNION ALL
        SELECT 'gap', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, g.*
        FROM schedule_gaps(v_branches, v_day, v_day) g
        WHERE cardinality(v_branches) > 0) x;
    PERFORM request_store(p_key, v_result);
    RETURN QUERY SELECT r.* FROM jsonb_populate_recordset(NULL::schedule_absent_row, v_result) r;
END
$$;

-- --------------------------------------------------- open shifts and swaps

-- Swaps as rows of kind 'swap': the swap's shift in the shift columns, then
-- the swap.
CREATE OR REPLACE FUNCTION swap_rows(p_ids bigint[]) RETURNS SETOF shift_change_row
LANGUAGE sql STABLE AS $$
    SELECT 'swap', r.*, w.id, w.status, t.username, q.username, d.username, w.with_shift_id
    FROM shift_swap w
    CROSS JOIN LATERAL shift_rows(ARRAY[w.shift_id]) r
    JOIN staff t ON t.id = w.to_staff_id
    JOIN staff q ON q.id = w.requested_by
    LEFT JOIN staff d ON d.id = w.decided_by
    WHERE w.id = ANY (p_ids)
    ORDER BY w.created_at, w.id
$$;

CREATE OR REPLACE FUNCTION swap_list(p_branch text, p_pending boolean)
RETURNS SETOF shift_change_row
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_branch integer;
BEGIN
    IF coalesce(p_branch, '') <> '' THEN
        v_branch := schedule_branch(p_branch, 'branch');
    END IF;
    RETURN QUERY SELECT * FROM swap_rows(ARRAY(
        SELECT w.id FROM shift_swap w JOIN shift s ON s.id = w.shift_id
        WHERE (v_branch IS NULL OR s.branch_id = v_branch)
          AND (NOT coalesce(p_pending, false) OR w.status = 'pending')));
END
$$;

-- Lock staff rows in id order (no deadlock between two swaps), NULLs skipped.
CREATE OR REPLACE FUNCTION schedule_lock_people(p_ids bigint[]) RETURNS void
LANGUAGE sql AS $$
    SELECT count(*) FROM (SELECT 1 FROM staff s WHERE s.id = ANY (p_ids)
                          ORDER BY s.id FOR UPDATE) x
$$;

-- A shift by id, locked (after the people: lock order).
CREATE OR REPLACE FUNCTION schedule_shift(p_id bigint) RETURNS shift
LANGUAGE plpgsql AS $$
DECLARE
    v shift;
BEGIN
    SELECT * INTO v FROM shift s WHERE s.id = p_id FOR UPDATE;
    IF v.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'shift',
            MESSAGE = format('No shift has id %s.',
                                                         coalesce(p_id::text, '(none)'));
    END IF;
    RETURN v;
END
$$;

-- A shift locked after its owner and p_people (lock order: people, then the
-- shift). The owner is read before the locks, so the shift may change hands
-- in between: then the new owner is locked too and the shift read again.
CREATE OR REPLACE FUNCTION schedule_lock_shift(p_id bigint, p_people bigint[]) RETURNS shift
LANGUAGE plpgsql AS $$
DECLARE
    v shift;
    v_owner bigint;
BEGIN
    FOR i IN 1 .. 5 LOOP
        SELECT s.staff_id INTO v_owner FROM shift s WHERE s.id = p_id;
        PERFORM schedule_lock_people(p_people || v_owner);
        v := schedule_shift(p_id);
        IF v.staff_id IS NOT DISTINCT FROM v_owner THEN
            RETURN v;
        END IF;
    END LOOP;
    RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'shift_taken',
        MESSAGE = format('Shift %s keeps changing hands; try again.', p_id);
END
$$;

-- Approve a pending swap: exchange the people of the two shifts (or give
-- the one shift), with the no-overlap constraint deferred to the end of
-- the exchange and every rule checked for both people.
CREATE OR REPLACE FUNCTION shift_swap_approve(p_swap shift_swap, p_staff bigint)
RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    v_a shift;
    v_b shift;
    v_from staff;
    v_to staff;
    v_both bigint[] := ARRAY[p_swap.shift_id, coalesce(p_swap.with_shift_id, 0)];
BEGIN
    SELECT * INTO v_a FROM shift s WHERE s.id = p_swap.shift_id;
    PERFORM schedule_lock_people(ARRAY[v_a.staff_id, p_swap.to_staff_id]);
    v_a := schedule_shift(p_swap.shift_id);
    IF p_swap.with_shift_id IS NOT NULL THEN
        v_b := schedule_shift(p_swap.with_shift_id);
    END IF;
    IF v_a.staff_id IS DISTINCT FROM p_swap.requested_by
       OR (v_b.id IS NOT NULL AND v_b.staff_id IS DISTINCT FROM p_swap.to_staff_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'shift_taken',
            MESSAGE = 'A shift of this swap changed hands since it was proposed; deny it.';
    END IF;
    SELECT * INTO v_from FROM staff s WHERE s.id = v_a.staff_id;
    SELECT * INTO v_to FROM staff s WHERE s.id = p_swap.to_staff_id;
    PERFORM schedule_eligible(v_to, v_a.branch_id, v_a.mic, v_a.during, v_both, false);
    IF v_b.id IS NOT NULL THEN
        PERFORM schedule_eligible(v_from, v_b.branch_id, v_b.mic, v_b.during, v_both, false);
    END IF;
    SET CONSTRAINTS shift_staff_no_overlap DEFERRED;
    UPDATE shift s SET staff_id = v_to.id, offered_at = NULL WHERE s.id = v_a.id;
    IF v_b.id IS NOT NULL THEN
        UPDATE shift s SET staff_id = v_from.id, offered_at = NULL WHERE s.id = v_b.id;
    END IF;
    BEGIN
        SET CONSTRAINTS shift_staff_no_overlap IMMEDIATE;
    EXCEPTION WHEN exclusion_violation THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'overlapping_shift',
            MESSAGE = 'After the swap one of the two would have two shifts at once.';
    END;
    RETURN array_remove(ARRAY[v_a.id, v_b.id], NULL);
END
$$;

-- offer, claim, swap, approve_swap, deny_swap (see schedule.proto). Keyed.
-- An owner's offer keeps the shift theirs (status offered) until someone
-- claims it, so an offer never leaves a desk short; a manager of the branch
-- offering someone else's shift opens it outright. The owner claiming their
-- own offered shift takes the offer back.
CREATE OR REPLACE FUNCTION shift_change(p_key uuid, p_staff bigint, p_workstation bigint,
                                        p_scope integer, p_shift bigint, p_action text,
                                        p_to_username text, p_with_shift bigint, p_swap bigint)
RETURNS SETOF shift_change_row
LANGUAGE plpgsql AS $$
DECLARE
    v_stored jsonb := request_claim(p_key, p_staff, 'shift_change');
    v_shift shift;
    v_with shift;
    v_swap shift_swap;
    v_me staff;
    v_to staff;
    v_shifts bigint[] := '{}';
    v_swap_id bigint;
    v_result jsonb;
BEGIN
    IF v_stored IS NOT NULL THEN
        RETURN QUERY SELECT r.* FROM jsonb_populate_recordset(NULL::shift_change_row, v_stored) r;
        RETURN;
    END IF;
    CASE coalesce(p_action, '')
    WHEN 'offer' THEN
        v_shift := schedule_lock_shift(p_shift, '{}');
        IF v_shift.staff_id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'shift_taken',
                MESSAGE = 'The shift is open already.';
        END IF;
        IF v_shift.staff_id <> p_staff
           AND NOT schedule_manages(p_staff, p_scope, v_shift.branch_id) THEN
            RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'not_yours',
                MESSAGE = 'Only the shift''s owner or a manager of its branch may offer it.';
        END IF;
        IF v_shift.staff_id = p_staff AND v_shift.offered_at IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'duplicate',
                MESSAGE = format('Shift %s is offered already.', v_shift.id);
        END IF;
        IF v_shift.staff_id = p_staff THEN
            UPDATE shift s SET offered_at = now() WHERE s.id = v_shift.id;
        ELSE
            UPDATE shift s SET staff_id = NULL, offered_at = now() WHERE s.id = v_shift.id;
        END IF;
        UPDATE shift_swap w SET status = 'denied', decided_by = p_staff, decided_at = now()
        WHERE w.status = 'pending' AND (w.shift_id = v_shift.id OR w.with_shift_id = v_shift.id);
        v_shifts := ARRAY[v_shift.id];
    WHEN 'claim' THEN
        -- The claimant and an offering owner, then the shift.
        v_shift := schedule_lock_shift(p_shift, ARRAY[p_staff]);
        SELECT * INTO v_me FROM staff s WHERE s.id = p_staff;
        IF v_shift.staff_id IS NOT NULL AND v_shift.offered_at IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'shift_taken',
                MESSAGE = format('Shift %s is not open any more.', v_shift.id);
        END IF;
        IF v_shift.staff_id IS DISTINCT FROM p_staff THEN
            PERFORM schedule_eligible(v_me, v_shift.branch_id, v_shift.mic, v_shift.during,
                                      ARRAY[v_shift.id], false);
            -- The offering owner's pending swaps of it are theirs no more.
            UPDATE shift_swap w SET status = 'denied', decided_by = p_staff, decided_at = now()
            WHERE w.status = 'pending' AND (w.shift_id = v_shift.id OR w.with_shift_id = v_shift.id);
        END IF;
        UPDATE shift s SET staff_id = p_staff, offered_at = NULL WHERE s.id = v_shift.id;
        v_shifts := ARRAY[v_shift.id];
    WHEN 'swap' THEN
        v_shift := schedule_shift(p_shift);
        IF v_shift.staff_id IS DISTINCT FROM p_staff THEN
            RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'not_yours',
                MESSAGE = 'Only the shift''s owner may propose a swap.';
        END IF;
        IF coalesce(p_to_username, '') = '' THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:to_username',
                MESSAGE = 'Say who takes the shift.';
        END IF;
        v_to := schedule_person(p_to_username, false);
        IF v_to.id = p_staff THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:to_username',
                MESSAGE = 'A swap is with someone else.';
        END IF;
        IF p_with_shift IS NOT NULL AND p_with_shift <> 0 THEN
            SELECT * INTO v_with FROM shift s WHERE s.id = p_with_shift;
            IF v_with.id IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'shift',
                    MESSAGE = format('No shift has id %s.', p_with_shift);
            END IF;
            IF v_with.staff_id IS DISTINCT FROM v_to.id THEN
                RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:with_shift_id',
                    MESSAGE = format('Shift %s is not %s''s.', p_with_shift, v_to.display_name);
            END IF;
        END IF;
        IF EXISTS (SELECT 1 FROM shift_swap w WHERE w.shift_id = v_shift.id
                   AND w.status = 'pending') THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'duplicate',
                MESSAGE = 'This shift already has a pending swap.';
        END IF;
        BEGIN
            INSERT INTO shift_swap (shift_id, with_shift_id, to_staff_id, requested_by)
            VALUES (v_shift.id, v_with.id, v_to.id, p_staff)
            RETURNING id INTO v_swap_id;
        EXCEPTION WHEN unique_violation THEN
            -- shift_swap_pending: a concurrent request won (the check above
            -- ran before its commit).
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'duplicate',
                MESSAGE = 'This shift already has a pending swap.';
        END;
    WHEN 'approve_swap', 'deny_swap' THEN
        -- Lock order: the people, the shifts, then the swap (as offer and the
        -- sick call, which deny pending swaps, take them).
        SELECT * INTO v_swap FROM shift_swap w WHERE w.id = p_swap;
        IF v_swap.id IS NOT NULL THEN
            PERFORM schedule_lock_people(ARRAY[v_swap.requested_by, v_swap.to_staff_id,
                                               (SELECT s.staff_id FROM shift s
                                                WHERE s.id = v_swap.shift_id)]);
            PERFORM 1 FROM shift s WHERE s.id IN (v_swap.shift_id, v_swap.with_shift_id)
            ORDER BY s.id FOR UPDATE;
            SELECT * INTO v_swap FROM shift_swap w WHERE w.id = p_swap FOR UPDATE;
        END IF;
        IF v_swap.id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'swap',
                MESSAGE = format('No swap request has id %s.',
                                                            coalesce(p_swap::text, '(none)'));
        END IF;
        SELECT * INTO v_shift FROM shift s WHERE s.id = v_swap.shift_id;
        IF (SELECT s.role < 'branch_manager' FROM staff s WHERE s.id = p_staff) THEN
            RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'role',
                MESSAGE = 'Managers decide swaps.';
        END IF;
        PERFORM schedule_scope_check(p_scope, v_shift.branch_id);
        -- Approving changes hands at both shifts' branches: a branch manager
        -- approves only a swap within their branch (denying changes nothing).
        IF p_action = 'approve_swap' AND v_swap.with_shift_id IS NOT NULL THEN
            PERFORM schedule_scope_check(p_scope, (SELECT s.branch_id FROM shift s
                                                   WHERE s.id = v_swap.with_shift_id));
        END IF;
        IF v_swap.status <> 'pending' THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'swap_decided',
                MESSAGE = format('Swap %s was already %s.', v_swap.id, v_swap.status);
        END IF;
        IF p_action = 'approve_swap' THEN
            v_shifts := shift_swap_approve(v_swap, p_staff);
        END IF;
        UPDATE shift_swap w
        SET status = CASE p_action WHEN 'approve_swap' THEN 'approved' ELSE 'denied' END,
            decided_by = p_staff, decided_at = now()
        WHERE w.id = v_swap.id;
        v_swap_id := v_swap.id;
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:action',
            MESSAGE = 'action is offer, claim, swap, approve_swap or deny_swap.';
    END CASE;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_staff, p_workstation, 'shift_' || p_action,
            'shift/' || coalesce(p_shift, v_swap.shift_id),
            jsonb_build_object('swap', v_swap_id, 'to', p_to_username));
    SELECT coalesce(jsonb_agg(to_jsonb(x)), '[]') INTO v_result FROM (
        SELECT 'shift' AS kind, r.*, NULL::bigint AS swap_request_id, NULL::text AS swap_status,
               NULL::text AS swap_to, NULL::text AS swap_requested_by,
               NULL::text AS swap_decided_by, NULL::bigint AS swap_with_shift
        FROM shift_rows(v_shifts) r
        UNION ALL
        SELECT * FROM swap_rows(ARRAY[v_swap_id]) WHERE v_swap_id IS NOT NULL) x;
    PERFORM request_store(p_key, v_result);
    RETURN QUERY SELECT r.* FROM jsonb_populate_recordset(NULL::shift_change_row, v_result) r;
END
$$;

-- ------------------------------------------------------ a person's facts

CREATE OR REPLACE FUNCTION staff_schedule_set(p_staff bigint, p_workstation bigint,
                                              p_scope integer, p_username text, p_mic boolean,
                                              p_max integer)
RETURNS TABLE (username text, display_name text, mic_eligible boolean, max_week_hours integer,
               branches text[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_person staff := schedule_person(p_username, true);
BEGIN
    IF p_scope IS NOT NULL AND NOT EXISTS (SELECT 1 FROM staff_branch sb
                                           WHERE sb.staff_id = v_person.id
                                             AND sb.branch_id = p_scope) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'branch',
            MESSAGE = format('%s does not work at your branch.', v_person.display_name);
    END IF;
    IF p_max IS NOT NULL AND p_max NOT BETWEEN 0 AND 80 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:max_week_hours',
            MESSAGE = 'Weekly hours are 0 (no limit) to 80.';
    END IF;
    IF p_mic IS NOT NULL OR p_max IS NOT NULL THEN
        UPDATE staff s SET mic_eligible = coalesce(p_mic, s.mic_eligible),
               max_week_hours = coalesce(p_max, s.max_week_hours), updated_at = now()
        WHERE s.id = v_person.id;
        INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
        VALUES (p_staff, p_workstation, 'staff_schedule_set', v_person.username,
                jsonb_strip_nulls(jsonb_build_object('mic_eligible', p_mic,
                                                     'max_week_hours', p_max)));
    END IF;
    RETURN QUERY SELECT s.username, s.display_name, s.mic_eligible, s.max_week_hours,
                        staff_branch_codes(s.id)
                 FROM staff s WHERE s.id = v_person.id;
END
$$;
