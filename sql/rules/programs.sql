-- Programs and their sessions: program_save, program_session_save (books the
-- session's room through room_book_one, rooms.sql), program_attendance,
-- program_list. Called by server/rooms.c. docs/ROOMS.md.
-- Whether the responsible person has a shift covering a session comes from
-- schedule_covers (schedule.sql, the staff schedules), when it is there.

DROP FUNCTION IF EXISTS program_save(bigint, bigint, integer, jsonb);
DROP FUNCTION IF EXISTS program_rows(bigint[]);
DROP TYPE IF EXISTS program_out;
-- A program as replies show it (proto Program order, without sessions).
CREATE TYPE program_out AS (
    id bigint, title text, description text, audience text, venue text, branch_code text,
    location text, presenter text, staff_username text, category text, cancelled boolean);

DROP FUNCTION IF EXISTS program_session_save(uuid, bigint, bigint, integer, boolean, jsonb);
DROP FUNCTION IF EXISTS program_attendance(bigint, bigint, integer, bigint, integer);
DROP FUNCTION IF EXISTS program_session_rows(bigint[]);
DROP FUNCTION IF EXISTS program_list(text, text, text, text, bigint);
DROP TYPE IF EXISTS program_session_row;
DROP TYPE IF EXISTS session_out;
-- A session as replies show it (proto ProgramSession order).
CREATE TYPE session_out AS (
    id bigint, program_id bigint, start text, "end" text, room_id bigint, booking_id bigint,
    room_name text, attendance integer, cancelled boolean, staff_username text,
    staff_scheduled boolean);

-- One occurrence of ProgramSessionSave: made (the session) or refused.
CREATE TYPE program_session_row AS (
    made boolean, reason text, message text,
    id bigint, program_id bigint, start text, "end" text, room_id bigint, booking_id bigint,
    room_name text, attendance integer, cancelled boolean, staff_username text,
    staff_scheduled boolean);

-- Whether p_staff has a shift covering p_during at p_branch (NULL: any
-- branch, for programs offsite or online): schedule_covers of the staff
-- schedules (schedule.sql, the same rule as the gap report) when it
-- exists, else NULL (not known).
DROP FUNCTION IF EXISTS program_staff_scheduled(bigint, tstzrange);
CREATE OR REPLACE FUNCTION program_staff_scheduled(p_staff bigint, p_during tstzrange,
                                                   p_branch integer)
RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v boolean;
BEGIN
    IF p_staff IS NULL
       OR to_regprocedure('schedule_covers(bigint,tstzrange,integer)') IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT schedule_covers($1, $2, $3)' INTO v USING p_staff, p_during, p_branch;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION program_rows(p_ids bigint[]) RETURNS SETOF program_out
LANGUAGE sql STABLE AS $$
    SELECT g.id, g.title, g.description, g.audience, g.venue, b.code, g.location, g.presenter,
           s.username, g.category, g.cancelled
    FROM program g JOIN branch b ON b.id = g.branch_id LEFT JOIN staff s ON s.id = g.staff_id
    WHERE g.id = ANY (p_ids)
    ORDER BY g.id
$$;

CREATE OR REPLACE FUNCTION program_session_rows(p_ids bigint[]) RETURNS SETOF session_out
LANGUAGE sql STABLE AS $$
    SELECT s.id, s.program_id, local_text(lower(s.during)), local_text(upper(s.during)),
           k.room_id, s.booking_id, r.name, s.attendance, s.cancelled, st.username,
           program_staff_scheduled(coalesce(s.staff_id, g.staff_id), s.during,
                                   CASE WHEN g.venue = 'branch' THEN g.branch_id END)
    FROM program_session s JOIN program g ON g.id = s.program_id
    LEFT JOIN room_booking k ON k.id = s.booking_id
    LEFT JOIN room r ON r.id = k.room_id
    LEFT JOIN staff st ON st.id = coalesce(s.staff_id, g.staff_id)
    WHERE s.id = ANY (p_ids)
    ORDER BY lower(s.during), s.id
$$;

-- A staff user name of a document, or CR404 staff. NULL when absent/empty.
CREATE OR REPLACE FUNCTION program_staff_id(p_username text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v bigint;
BEGIN
    IF coalesce(p_username, '') = '' THEN
        RETURN NULL;
    END IF;
    SELECT id INTO v FROM staff WHERE username = p_username;
    IF NOT FOUND THEN
        PERFORM room_refuse('CR404', 'staff',
                            format('No staff account is called %s.', left(p_username, 40)));
    END IF;
    RETURN v;
END
$$;

-- Create (no id) or change a program (Program document, sessions ignored).
-- Cancelling a program cancels its sessions to come and their bookings.
CREATE OR REPLACE FUNCTION program_save(p_staff bigint, p_workstation bigint, p_scope integer,
                                        p_doc jsonb) RETURNS SETOF program_out
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := nullif(room_doc_bigint(p_doc, 'id'), 0);
    v program;
    v_new boolean := v_id IS NULL;
    v_branch integer;
BEGIN
    IF v_new THEN
        v.branch_id := room_branch_id(p_doc ->> 'branch_code', 'branch_code');
        IF v.branch_id IS NULL THEN
            PERFORM room_refuse('CR400', 'field:branch_code', 'A program needs its branch.');
        END IF;
        v.venue := 'branch';
        v.description := '';
        v.location := '';
        v.presenter := '';
        v.category := '';
        v.cancelled := false;
    ELSE
        SELECT * INTO v FROM program WHERE id = v_id FOR UPDATE;
        IF NOT FOUND THEN
            PERFORM room_refuse('CR404', 'program', format('There is no program %s.', v_id));
        END IF;
        PERFORM room_scope_check(p_scope, v.branch_id);
        v_branch := room_branch_id(p_doc ->> 'branch_code', 'branch_code');
        v.branch_id := coalesce(v_branch, v.branch_id);
    END IF;
    PERFORM room_scope_check(p_scope, v.branch_id);
    v.title := coalesce(room_doc_text(p_doc, 'title', 200), v.title);
    IF v.title IS NULL THEN
        PERFORM room_refuse('CR400', 'field:title', 'A program needs a title.');
    END IF;
    v.description := coalesce(room_doc_text(p_doc, 'description', 4000), v.description);
    v.audience := coalesce(room_doc_text(p_doc, 'audience', 10), v.audience);
    IF v.audience IS NULL OR v.audience NOT IN ('0-5', '6-11', '12-18', '19+', 'general') THEN
        PERFORM room_refuse('CR400', 'field:audience',
                            'audience is 0-5, 6-11, 12-18, 19+ or general.');
    END IF;
    v.venue := coalesce(room_doc_text(p_doc, 'venue', 10), v.venue);
    IF v.venue NOT IN ('branch', 'offsite', 'online') THEN
        PERFORM room_refuse('CR400', 'field:venue', 'venue is branch, offsite or online.');
    END IF;
    v.location := coalesce(room_doc_text(p_doc, 'location', 500), v.location);
    v.presenter := coalesce(room_doc_text(p_doc, 'presenter', 200), v.presenter);
    v.category := coalesce(room_doc_text(p_doc, 'category', 32), v.category);
    IF v.category !~ '^([a-z][a-z0-9_]{0,31})?$' THEN
        PERFORM room_refuse('CR400', 'field:category',
                            'category is one lower-case word (letters, digits, _).');
    END IF;
    IF p_doc ? 'staff_username' THEN
        v.staff_id := program_staff_id(p_doc ->> 'staff_username');
    END IF;
    IF p_doc ? 'cancelled' AND jsonb_typeof(p_doc -> 'cancelled') = 'boolean' THEN
        v.cancelled := (p_doc ->> 'cancelled')::boolean;
    END IF;
    IF v_new THEN
        INSERT INTO program (title, description, audience, venue, branch_id, location, presenter,
                             staff_id, category, cancelled, created_by)
        VALUES (v.title, v.description, v.audience, v.venue, v.branch_id, v.location,
                v.presenter, v.staff_id, v.category, v.cancelled, p_staff)
        RETURNING id INTO v_id;
    ELSE
        UPDATE program SET title = v.title, description = v.description, audience = v.audience,
                           venue = v.venue, branch_id = v.branch_id, location = v.location,
                           presenter = v.presenter, staff_id = v.staff_id,
                           category = v.category, cancelled = v.cancelled
        WHERE id = v_id;
    END IF;
    IF v.cancelled THEN
        PERFORM room_cancel_one(s.booking_id, 'program cancelled')
        FROM program_session s
        WHERE s.program_id = v_id AND NOT s.cancelled AND lower(s.during) > now()
          AND s.booking_id IS NOT NULL;
        UPDATE program_session SET cancelled = true
        WHERE program_id = v_id AND NOT cancelled AND lower(during) > now();
    END IF;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_staff, p_workstation, CASE WHEN v_new THEN 'program_add' ELSE 'program_save' END,
            v_id::text, p_doc);
    RETURN QUERY SELECT * FROM program_rows(ARRAY[v_id]);
END
$$;

-- The room p_room for a session of program p: it exists, is at the
-- program's branch and takes bookings (new sessions and moved ones alike).
CREATE OR REPLACE FUNCTION program_session_room(p program, p_room bigint) RETURNS room
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_room room;
BEGIN
    SELECT * INTO v_room FROM room WHERE id = p_room;
    IF NOT FOUND THEN
        PERFORM room_refuse('CR404', 'room', format('There is no room %s.', p_room));
    END IF;
    IF v_room.branch_id <> p.branch_id THEN
        PERFORM room_refuse('CR400', 'field:room_id',
                            format('%s is not at the program''s branch.', v_room.name));
    END IF;
    IF NOT v_room.active THEN
        PERFORM room_refuse('CR422', 'room_inactive',
                            format('%s is not taking bookings.', v_room.name));
    END IF;
    RETURN v_room;
END
$$;

-- Make one session of program p at [p_start, p_end), booking p_room (NULL:
-- none) through the room rules; raises the first refusal.
CREATE OR REPLACE FUNCTION program_session_one(p_staff bigint, p program, p_room bigint,
                                               p_start timestamptz, p_end timestamptz,
                                               p_person bigint, p_override boolean,
                                               p_series bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_room room;
    v_id bigint;
    v_booking bigint;
BEGIN
    IF p_end <= p_start THEN
        PERFORM room_refuse('CR400', 'field:end', 'The end must be after the start.');
    END IF;
    INSERT INTO program_session (program_id, during, staff_id)
    VALUES (p.id, tstzrange(p_start, p_end), p_person) RETURNING id INTO v_id;
    IF p_room IS NOT NULL THEN
        v_room := program_session_room(p, p_room);
        v_booking := room_book_one(p_staff, v_room, p_start, p_end, NULL, NULL, NULL, v_id,
                                   left(p.title, 200), NULL, p_override, p_series);
        UPDATE program_session SET booking_id = v_booking WHERE id = v_id;
    END IF;
    RETURN v_id;
END
$$;

-- Add sessions to a program (with their room bookings), change one, or
-- cancel one (ProgramSessionSave document), once per request key.
-- p_override_ok: the caller may book beyond the public room rules (days
-- ahead, hours, length); the document's override asks for it (refused
-- without p_override_ok, as in room_book).
CREATE OR REPLACE FUNCTION program_session_save(p_key uuid, p_staff bigint, p_workstation bigint,
                                                p_scope integer, p_override_ok boolean,
                                                p_doc jsonb)
RETURNS SETOF program_session_row
LANGUAGE plpgsql AS $$
DECLARE
    v_stored jsonb;
    v_s jsonb := coalesce(p_doc -> 'session', '{}');
    v_sid bigint := nullif(room_doc_bigint(v_s, 'id'), 0);
    v_session program_session;
    p program;
    v_room bigint := nullif(room_doc_bigint(v_s, 'room_id'), 0);
    v_person bigint;
    v_start timestamptz;
    v_end timestamptz;
    v_tz text := library_setting_text('timezone');
    v_length interval;
    v_at timestamp;
    v_series bigint;
    v_ids bigint[] := '{}';
    v_refused program_session_row[] := '{}';
    v_reason text;
    v_message text;
    v_result jsonb;
    v_override boolean := coalesce((p_doc ->> 'override')::boolean, false);
BEGIN
    v_stored := request_claim(p_key, p_staff, 'program_session_save');
    IF v_stored IS NOT NULL THEN
        RETURN QUERY SELECT * FROM jsonb_populate_recordset(NULL::program_session_row, v_stored);
        RETURN;
    END IF;
    IF v_override AND NOT coalesce(p_override_ok, false) THEN
        PERFORM room_refuse('CR403', 'override', 'Your role may not book beyond the rules.');
    END IF;
    IF v_sid IS NOT NULL THEN
        SELECT * INTO v_session FROM program_session WHERE id = v_sid FOR UPDATE;
        IF NOT FOUND THEN
            PERFORM room_refuse('CR404', 'program_session',
                                format('There is no program session %s.', v_sid));
        END IF;
        SELECT * INTO p FROM program WHERE id = v_session.program_id;
    ELSE
        SELECT * INTO p FROM program WHERE id = room_doc_bigint(v_s, 'program_id');
        IF NOT FOUND THEN
            PERFORM room_refuse('CR404', 'program', format('There is no program %s.',
                                                           coalesce(v_s ->> 'program_id', '(none)')));
        END IF;
    END IF;
    PERFORM room_scope_check(p_scope, p.branch_id);
    IF v_s ? 'staff_username' THEN
        v_person := program_staff_id(v_s ->> 'staff_username');
    END IF;

    IF v_sid IS NOT NULL AND coalesce((p_doc ->> 'cancel')::boolean, false) THEN
        IF NOT v_session.cancelled THEN
            PERFORM room_cancel_one(v_session.booking_id, 'session cancelled')
            WHERE v_session.booking_id IS NOT NULL;
            UPDATE program_session SET cancelled = true WHERE id = v_sid;
        END IF;
        v_ids := ARRAY[v_sid];
    ELSIF v_sid IS NOT NULL THEN
        -- a change: the person, or the time or room (the booking is made anew)
        IF v_session.cancelled THEN
            PERFORM room_refuse('CR400', 'field:session_id', 'The session is cancelled.');
        END IF;
        IF v_s ? 'staff_username' THEN
            UPDATE program_session SET staff_id = v_person WHERE id = v_sid;
        END IF;
        IF v_s ? 'start' OR v_s ? 'end' OR v_s ? 'room_id' THEN
            v_start := CASE WHEN v_s ? 'start' THEN local_ts(v_s ->> 'start', 'start')
                            ELSE lower(v_session.during) END;
            v_end := CASE WHEN v_s ? 'end' THEN local_ts(v_s ->> 'end', 'end')
                          ELSE upper(v_session.during) END;
            IF NOT v_s ? 'room_id' THEN
                v_room := (SELECT room_id FROM room_booking WHERE id = v_session.booking_id
                           AND room_live(status));
            END IF;
            IF v_end <= v_start THEN
                PERFORM room_refuse('CR400', 'field:end', 'The end must be after the start.');
            END IF;
            PERFORM room_cancel_one(v_session.booking_id, 'session moved')
            WHERE v_session.booking_id IS NOT NULL;
            UPDATE program_session SET during = tstzrange(v_start, v_end), booking_id = NULL
            WHERE id = v_sid;
            IF v_room IS NOT NULL THEN
                UPDATE program_session SET booking_id = room_book_one(
                    p_staff, program_session_room(p, v_room), v_start, v_end, NULL,
                    NULL, NULL, v_sid, left(p.title, 200), NULL, v_override, NULL)
                WHERE id = v_sid;
            END IF;
        END IF;
        v_ids := ARRAY[v_sid];
    ELSE
        IF p.cancelled THEN
            PERFORM room_refuse('CR400', 'field:program_id', 'The program is cancelled.');
        END IF;
        v_start := local_ts(v_s ->> 'start', 'start');
        v_end := local_ts(v_s ->> 'end', 'end');
        IF v_end <= v_start THEN
            PERFORM room_refuse('CR400', 'field:end', 'The end must be after the start.');
        END IF;
        IF room_doc_text(p_doc, 'repeat', 10) IS NULL THEN
            v_ids := ARRAY[program_session_one(p_staff, p, v_room, v_start, v_end, v_person,
                                               v_override, NULL)];
        ELSE
            v_length := (v_end AT TIME ZONE v_tz) - (v_start AT TIME ZONE v_tz);
            v_series := nextval('room_series');
            FOR v_at IN SELECT * FROM room_occurrences(v_start AT TIME ZONE v_tz,
                                                       p_doc ->> 'repeat',
                                                       local_day(p_doc ->> 'until', 'until', NULL))
            LOOP
                BEGIN
                    v_ids := v_ids || program_session_one(
                        p_staff, p, v_room, local_ts(to_char(v_at, 'YYYY-MM-DD HH24:MI'), 'start'),
                        local_ts(to_char(v_at + v_length, 'YYYY-MM-DD HH24:MI'), 'end'),
                        v_person, v_override, v_series);
                EXCEPTION WHEN SQLSTATE 'CR409' OR SQLSTATE 'CR422' OR SQLSTATE 'CR400' THEN
                    GET STACKED DIAGNOSTICS v_reason = PG_EXCEPTION_DETAIL,
                                            v_message = MESSAGE_TEXT;
                    v_refused := v_refused || room_refused_row(NULL::program_session_row,
                                                               v_reason, v_message, v_at,
                                                               v_length);
                END;
            END LOOP;
        END IF;
    END IF;

    SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.start, x.made DESC), '[]') INTO v_result
    FROM (SELECT true AS made, NULL::text AS reason, NULL::text AS message, s.*
          FROM program_session_rows(v_ids) s
          UNION ALL
          SELECT * FROM unnest(v_refused)) x;
    PERFORM request_store(p_key, v_result);
    RETURN QUERY SELECT * FROM jsonb_populate_recordset(NULL::program_session_row, v_result);
END
$$;

-- Record a session's attendance (after it started; not for a cancelled one).
CREATE OR REPLACE FUNCTION program_attendance(p_staff bigint, p_workstation bigint,
                                              p_scope integer, p_session bigint,
                                              p_attendance integer) RETURNS SETOF session_out
LANGUAGE plpgsql AS $$
DECLARE
    s program_session;
    v_branch integer;
BEGIN
    IF p_attendance IS NULL OR p_attendance NOT BETWEEN 0 AND 100000 THEN
        PERFORM room_refuse('CR400', 'field:attendance', 'attendance is 0 to 100000.');
    END IF;
    SELECT * INTO s FROM program_session WHERE id = p_session FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM room_refuse('CR404', 'program_session',
                            format('There is no program session %s.', p_session));
    END IF;
    SELECT branch_id INTO v_branch FROM program WHERE id = s.program_id;
    PERFORM room_scope_check(p_scope, v_branch);
    IF s.cancelled THEN
        PERFORM room_refuse('CR400', 'field:session_id',
                            'The session was cancelled: it has no attendance.');
    END IF;
    IF lower(s.during) > now() THEN
        PERFORM room_refuse('CR400', 'field:session_id', format(
            'The session starts %s; record its attendance once it has begun.',
            local_text(lower(s.during))));
    END IF;
    UPDATE program_session SET attendance = p_attendance WHERE id = p_session;
    RETURN QUERY SELECT * FROM program_session_rows(ARRAY[p_session]);
END
$$;

-- Programs having a session in local days p_from..p_to (default today ..
-- +30), or program p_id (all its sessions), each followed by its sessions
-- in range: one result told apart by kind ('program' | 'session').
CREATE OR REPLACE FUNCTION program_list(p_branch text, p_from text, p_to text, p_audience text,
                                        p_id bigint)
RETURNS TABLE (kind text,
               id bigint, title text, description text, audience text, venue text,
               branch_code text, location text, presenter text, staff_username text,
               category text, cancelled boolean,
               session_id bigint, session_program_id bigint, start text, "end" text,
               room_id bigint, booking_id bigint, room_name text, attendance integer,
               session_cancelled boolean, session_staff_username text, staff_scheduled boolean)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    v_branch integer := room_branch_id(p_branch, 'branch');
    v_from date := local_day(p_from, 'from', library_today());
    v_to date := local_day(p_to, 'to', v_from + 30);
    v_range tstzrange;
    v_sessions bigint[];
BEGIN
    IF v_to < v_from OR v_to - v_from > 400 THEN
        PERFORM room_refuse('CR400', 'field:to', 'to is on or after from, at most 400 days later.');
    END IF;
    IF coalesce(p_audience, '') <> ''
       AND p_audience NOT IN ('0-5', '6-11', '12-18', '19+', 'general') THEN
        PERFORM room_refuse('CR400', 'field:audience',
                            'audience is 0-5, 6-11, 12-18, 19+ or general.');
    END IF;
    IF coalesce(p_id, 0) <> 0 AND NOT EXISTS (SELECT 1 FROM program g WHERE g.id = p_id) THEN
        PERFORM room_refuse('CR404', 'program', format('There is no program %s.', p_id));
    END IF;
    v_range := tstzrange(local_at(v_from, '00:00'), local_at(v_to + 1, '00:00'));
    SELECT coalesce(array_agg(s.id), '{}') INTO v_sessions
    FROM program_session s JOIN program g ON g.id = s.program_id
    WHERE CASE WHEN coalesce(p_id, 0) <> 0 THEN g.id = p_id
               ELSE s.during && v_range
                    AND (v_branch IS NULL OR g.branch_id = v_branch)
                    AND (coalesce(p_audience, '') = '' OR g.audience = p_audience) END;
    RETURN QUERY
    SELECT x.kind, x.pid, x.title, x.description, x.audience, x.venue, x.branch_code, x.location,
           x.presenter, x.staff_username, x.category, x.cancelled,
           x.sid, x.spid, x.start, x."end", x.room_id, x.booking_id, x.room_name, x.attendance,
           x.scancelled, x.sstaff, x.staff_scheduled
    FROM (
        SELECT 'program'::text AS kind, 0 AS ord, g.id AS pid, g.title, g.description,
               g.audience, g.venue, g.branch_code, g.location, g.presenter, g.staff_username,
               g.category, g.cancelled, NULL::bigint AS sid, NULL::bigint AS spid,
               NULL::text AS start, NULL::text AS "end", NULL::bigint AS room_id,
               NULL::bigint AS booking_id, NULL::text AS room_name, NULL::integer AS attendance,
               NULL::boolean AS scancelled, NULL::text AS sstaff,
               NULL::boolean AS staff_scheduled, NULL::text AS sort_start
        FROM program_rows(ARRAY(SELECT DISTINCT s.program_id FROM program_session s
                                WHERE s.id = ANY (v_sessions))
                          || CASE WHEN coalesce(p_id, 0) <> 0 THEN ARRAY[p_id]
                                  ELSE '{}'::bigint[] END) g
        UNION ALL
        SELECT 'session', 1, s.program_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, s.id, s.program_id, s.start, s."end", s.room_id, s.booking_id, s.room_name,
               s.attendance, s.cancelled, s.staff_username, s.staff_scheduled, s.start
        FROM program_session_rows(v_sessions) s
    ) x
    ORDER BY x.pid, x.ord, x.sort_start, x.sid;
END
$$;
