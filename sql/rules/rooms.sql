-- Rooms and room bookings: rooms and categories (room_list, room_save,
-- room_category_list, room_category_save), free time (room_free,
-- room_free_rooms; the kept grid room_day_free and the triggers keeping it),
-- booking (room_book, room_change, room_bookings, room_patron_no_shows) and
-- the periodic job (rooms_tick: no-shows, completion, reminders,
-- anonymisation, room_day_free's daily step). Called by server/rooms.c; the
-- booking code (room_book_one) by programs.sql too. docs/ROOMS.md.
--
-- Times enter and leave as the library's local "YYYY-MM-DD HH:MM"
-- (localtime.sql). A double booking is impossible because of room_block's
-- exclusion constraint (migrations/019_rooms.sql); the checks here give the
-- reasons, the constraint the guarantee.
-- Lock order: room (only when changing the room itself) -> patron_circ
-- (serialises one patron's bookings, so the limits are exact) -> room_booking.

-- ---------------------------------------------------------------- helpers

CREATE OR REPLACE FUNCTION room_refuse(p_code text, p_reason text, p_message text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = p_code, DETAIL = p_reason, MESSAGE = p_message;
END
$$;

-- The units a booking of the room blocks: its parts, or itself.
CREATE OR REPLACE FUNCTION room_units(p_room bigint) RETURNS bigint[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT array_agg(p.part_id ORDER BY p.part_id) FROM room_part p
                     WHERE p.whole_id = p_room), ARRAY[p_room])
$$;

-- Statuses of a booking that hold the room.
CREATE OR REPLACE FUNCTION room_live(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$ SELECT p_status IN ('tentative', 'confirmed', 'checked_in') $$;

-- A branch code, or CR400 for p_field. NULL/'' gives NULL.
CREATE OR REPLACE FUNCTION room_branch_id(p_code text, p_field text) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v integer;
BEGIN
    IF coalesce(p_code, '') = '' THEN
        RETURN NULL;
    END IF;
    SELECT id INTO v FROM branch WHERE code = p_code;
    IF NOT FOUND THEN
        PERFORM room_refuse('CR400', 'field:' || p_field,
                            format('There is no branch %s.', left(p_code, 40)));
    END IF;
    RETURN v;
END
$$;

-- Refuses acting on a branch other than the caller's scope (NULL: any).
CREATE OR REPLACE FUNCTION room_scope_check(p_scope integer, p_branch integer) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_scope IS NOT NULL AND p_scope IS DISTINCT FROM p_branch THEN
        PERFORM room_refuse('CR403', 'branch', format(
            'That belongs to %s; you may act for %s only.',
            (SELECT name FROM branch WHERE id = p_branch),
            (SELECT name FROM branch WHERE id = p_scope)));
    END IF;
END
$$;

-- Local "Tue 2026-12-08 14:00-15:00" of a range, for messages.
CREATE OR REPLACE FUNCTION room_when(p_during tstzrange) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(lower(p_during) AT TIME ZONE library_setting_text('timezone'),
                   'Dy YYYY-MM-DD HH24:MI') || '-' || local_hhmm(upper(p_during))
$$;

-- The text of a number in a document, NULL when absent or null; CR400 "<key> must be <p_what>."
-- when it is not a number matching p_pattern. One check behind room_doc_int and room_doc_bigint,
-- so the two readers refuse alike and differ only in range and wording.
CREATE OR REPLACE FUNCTION room_doc_number(p_doc jsonb, p_key text, p_pattern text, p_what text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_doc -> p_key IS NULL OR jsonb_typeof(p_doc -> p_key) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_doc -> p_key) <> 'number' OR (p_doc ->> p_key) !~ p_pattern THEN
        PERFORM room_refuse('CR400', 'field:' || p_key, format('%s must be %s.', p_key, p_what));
    END IF;
    RETURN p_doc ->> p_key;
END
$$;

-- An integer of a document, or CR400 for p_field when it is not one.
CREATE OR REPLACE FUNCTION room_doc_int(p_doc jsonb, p_key text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT room_doc_number(p_doc, p_key, '^-?\d{1,9}$', 'a whole number')::integer
$$;

-- An id of a document (non-negative, fits a bigint), or CR400 for p_field when it is not one.
CREATE OR REPLACE FUNCTION room_doc_bigint(p_doc jsonb, p_key text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT room_doc_number(p_doc, p_key, '^\d{1,18}$', 'an id')::bigint
$$;

-- A text of a document: NULL when absent or empty; longer than p_max → CR400.
CREATE OR REPLACE FUNCTION room_doc_text(p_doc jsonb, p_key text, p_max integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v text := nullif(btrim(p_doc ->> p_key), '');
BEGIN
    IF length(v) > p_max THEN
        PERFORM room_refuse('CR400', 'field:' || p_key,
                            format('%s is longer than %s characters.', p_key, p_max));
    END IF;
    RETURN v;
END
$$;

-- The local start times of a booking and its repetitions: weekly, or
-- monthly on the same weekday of the month by its ordinal (the 2nd Tuesday;
-- a month without a 5th one is skipped), until p_until inclusive. Local
-- times, so a weekly 10:00 stays 10:00 across a daylight saving change.
CREATE OR REPLACE FUNCTION room_occurrences(p_start timestamp, p_repeat text, p_until date)
RETURNS SETOF timestamp
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_nth integer := (extract(day FROM p_start)::integer - 1) / 7 + 1;
    v_dow integer := extract(isodow FROM p_start)::integer;
    v_month date;
    v_day date;
    v_count integer := 0;
BEGIN
    IF coalesce(p_repeat, '') = '' THEN
        RETURN NEXT p_start;
        RETURN;
    END IF;
    IF p_repeat NOT IN ('weekly', 'monthly') THEN
        PERFORM room_refuse('CR400', 'field:repeat', 'repeat is weekly or monthly.');
    END IF;
    IF p_until IS NULL OR p_until < p_start::date THEN
        PERFORM room_refuse('CR400', 'field:until',
                            'A repeating booking needs until, on or after its first day.');
    END IF;
    IF p_repeat = 'weekly' THEN
        IF (p_until - p_start::date) / 7 + 1 > 120 THEN
            PERFORM room_refuse('CR400', 'field:until', 'At most 120 occurrences at once.');
        END IF;
        RETURN QUERY SELECT p_start + make_interval(weeks => k)
                     FROM generate_series(0, (p_until - p_start::date) / 7) k;
        RETURN;
    END IF;
    v_month := date_trunc('month', p_start)::date;
    WHILE v_month <= p_until LOOP
        -- the first v_dow of the month, then v_nth - 1 weeks on
        v_day := v_month + ((v_dow - extract(isodow FROM v_month)::integer + 7) % 7)
                 + (v_nth - 1) * 7;
        IF extract(month FROM v_day) = extract(month FROM v_month) AND v_day <= p_until THEN
            v_count := v_count + 1;
            IF v_count > 120 THEN
                PERFORM room_refuse('CR400', 'field:until', 'At most 120 occurrences at once.');
            END IF;
            RETURN NEXT v_day + p_start::time;
        END IF;
        v_month := (v_month + interval '1 month')::date;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------- rooms and categories

DROP FUNCTION IF EXISTS room_list(text, text, boolean);
DROP FUNCTION IF EXISTS room_save(bigint, bigint, integer, jsonb);
DROP FUNCTION IF EXISTS room_free_rooms(text, text, integer, bigint, text[], boolean);
DROP FUNCTION IF EXISTS room_rows(bigint[], date);
DROP FUNCTION IF EXISTS room_free_calc(bigint[], date, integer, timestamptz);
DROP TYPE IF EXISTS room_out;
-- A room as RoomList and RoomSave reply (proto Room field order).
CREATE TYPE room_out AS (
    id bigint, branch_code text, name text, capacity integer, features text[],
    bookable_by text, category text, part_ids bigint[], active boolean, part_names text[],
    whole_names text[], bookings_today integer, booked_minutes_today integer,
    open_minutes_today integer, now text, slot_minutes integer);

-- The rooms p_ids with their occupancy on local day p_day (now: only today),
-- in branch code, name order.
CREATE OR REPLACE FUNCTION room_rows(p_ids bigint[], p_day date) RETURNS SETOF room_out
LANGUAGE plpgsql STABLE AS $$
DECLARE
    -- computed once: inside the query they would be evaluated per row
    v_day tstzrange := tstzrange(local_at(p_day, '00:00'), local_at(p_day + 1, '00:00'));
    v_today date := library_today();
    v_tz text := library_setting_text('timezone');
BEGIN
    RETURN QUERY
    -- open: branch_open_range and units: room_units, written out, and the
    -- parts and wholes of all rooms aggregated once (calling them or a
    -- subquery for each room cost more than all the rest: RoomFree sends
    -- every room)
    WITH pw AS (
        SELECT p.whole_id, array_agg(p.part_id ORDER BY q.name) AS part_ids,
               array_agg(q.name ORDER BY q.name) AS part_names,
               array_agg(p.part_id ORDER BY p.part_id) AS units
        FROM room_part p JOIN room q ON q.id = p.part_id
        GROUP BY p.whole_id
    ), wp AS (
        SELECT p.part_id, array_agg(q.name ORDER BY q.name) AS whole_names
        FROM room_part p JOIN room q ON q.id = p.whole_id
        GROUP BY p.part_id
    ), r AS MATERIALIZED (
        SELECT r.*, b.code, c.slot_minutes,
               CASE WHEN h.opens IS NOT NULL
                    THEN tstzrange((p_day + h.opens) AT TIME ZONE v_tz,
                                   (p_day + h.closes) AT TIME ZONE v_tz) END AS open,
               v_day AS whole_day,
               coalesce(pw.units, ARRAY[r.id]) AS units,
               coalesce(pw.part_ids, '{}') AS part_ids, coalesce(pw.part_names, '{}') AS part_names,
               coalesce(wp.whole_names, '{}') AS whole_names
        FROM room r JOIN branch b ON b.id = r.branch_id
        LEFT JOIN pw ON pw.whole_id = r.id
        LEFT JOIN wp ON wp.part_id = r.id
        JOIN room_category c ON c.code = r.category
        LEFT JOIN branch_hours h ON h.branch_id = r.branch_id
                                AND h.weekday = extract(isodow FROM p_day)
                                AND NOT EXISTS (SELECT 1 FROM branch_closed bc
                                                WHERE bc.branch_id = r.branch_id
                                                  AND bc.day = p_day)
        WHERE r.id = ANY (p_ids)
    )
    SELECT r.id, r.code, r.name, r.capacity, r.features, r.bookable_by, r.category,
           r.part_ids, r.active, r.part_names, r.whole_names,
           t.n::integer, t.minutes::integer,
           coalesce((extract(epoch FROM upper(r.open) - lower(r.open)) / 60)::integer, 0),
           CASE WHEN r.open IS NULL THEN 'closed'
                WHEN p_day <> v_today THEN ''
                WHEN u.until IS NOT NULL THEN format('in use until %s (%s)', local_hhmm(u.until),
                                                     u.who)
                WHEN nx.at IS NOT NULL THEN format('booked from %s', local_hhmm(nx.at))
                ELSE 'free' END,
           r.slot_minutes
    FROM r
    -- The bookings shown on the room itself (a hall's booking is not counted
    -- on its halves: they show it as "in use").
    CROSS JOIN LATERAL (
        SELECT count(*) AS n,
               coalesce(sum(extract(epoch FROM upper(k.during * r.whole_day)
                                           - lower(k.during * r.whole_day)) / 60), 0) AS minutes
        FROM room_booking k
        WHERE k.room_id = r.id AND k.during && r.whole_day
          AND lower(k.during) >= lower(r.whole_day) - interval '2 days'
          AND lower(k.during) < upper(r.whole_day)
          AND k.status NOT IN ('cancelled', 'no_show')) t
    LEFT JOIN LATERAL (
        SELECT upper(k.during) AS until,
               coalesce((SELECT p.last_name FROM patron p WHERE p.id = k.patron_id),
                        k.group_name,
                        (SELECT g.title FROM program_session s JOIN program g ON g.id = s.program_id
                         WHERE s.id = k.program_session_id), 'staff') AS who
        FROM room_block bl JOIN room_booking k ON k.id = bl.booking_id
        WHERE bl.unit_id = ANY (r.units) AND bl.blocked @> now() AND k.during @> now()
          AND p_day = v_today
        ORDER BY upper(k.during) DESC LIMIT 1) u ON true
    LEFT JOIN LATERAL (
        SELECT min(lower(k.during)) AS at
        FROM room_block bl JOIN room_booking k ON k.id = bl.booking_id
        WHERE bl.unit_id = ANY (r.units) AND bl.blocked && tstzrange(now(), upper(r.whole_day))
          AND lower(k.during) > now() AND lower(k.during) < upper(r.whole_day)
          AND p_day = v_today) nx ON true
    ORDER BY r.code, r.name;
END
$$;

-- Rooms of a branch (NULL/'': all) with their occupancy on p_date (default today).
CREATE OR REPLACE FUNCTION room_list(p_branch text, p_date text, p_include_inactive boolean)
RETURNS SETOF room_out
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_branch integer := room_branch_id(p_branch, 'branch');
    v_day date := local_day(p_date, 'date', library_today());
BEGIN
    RETURN QUERY SELECT * FROM room_rows(
        ARRAY(SELECT r.id FROM room r
              WHERE (v_branch IS NULL OR r.branch_id = v_branch)
                AND (r.active OR coalesce(p_include_inactive, false))), v_day);
END
$$;

-- The rooms room_free reports on with the same filters (RoomFreeReply.rooms).
CREATE OR REPLACE FUNCTION room_free_rooms(p_branch text, p_date text, p_capacity integer,
                                           p_room bigint, p_features text[],
                                           p_staff_rooms boolean)
RETURNS SETOF room_out
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_branch integer := room_branch_id(p_branch, 'branch');
    v_day date := local_day(p_date, 'date', library_today());
BEGIN
    RETURN QUERY SELECT * FROM room_rows(
        room_free_ids(v_branch, p_capacity, p_room, p_features, p_staff_rooms), v_day);
END
$$;

-- Create (no id) or change a room. Parts: a whole is never a part, a part
-- never split, all of one branch; parts may not change while the room or a
-- part has live bookings to come (their blocks name the old units).
CREATE OR REPLACE FUNCTION room_save(p_staff bigint, p_workstation bigint, p_scope integer,
                                     p_doc jsonb) RETURNS SETOF room_out
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := nullif(room_doc_bigint(p_doc, 'id'), 0);
    v room;
    v_new boolean := v_id IS NULL;
    v_branch integer;
    v_parts bigint[];
    v_old_parts bigint[];
    v_features text[];
    v_bad text;
BEGIN
    IF v_new THEN
        IF room_doc_text(p_doc, 'branch_code', 8) IS NULL THEN
            PERFORM room_refuse('CR400', 'field:branch_code', 'A new room needs its branch.');
        END IF;
        v.branch_id := room_branch_id(p_doc ->> 'branch_code', 'branch_code');
        v.bookable_by := 'public';
        v.active := true;
        v.features := '{}';
        v.category := 'study';
    ELSE
        SELECT * INTO v FROM room WHERE id = v_id FOR UPDATE;
        IF NOT FOUND THEN
            PERFORM room_refuse('CR404', 'room', format('There is no room %s.', v_id));
        END IF;
        v_branch := room_branch_id(p_doc ->> 'branch_code', 'branch_code');
        IF v_branch IS NOT NULL AND v_branch <> v.branch_id THEN
            PERFORM room_refuse('CR400', 'field:branch_code',
                                'A room stays at its branch; make a new room instead.');
        END IF;
    END IF;
    PERFORM room_scope_check(p_scope, v.branch_id);

    v.name := coalesce(room_doc_text(p_doc, 'name', 100), v.name);
    IF v.name IS NULL THEN
        PERFORM room_refuse('CR400', 'field:name', 'A room needs a name.');
    END IF;
    v.capacity := coalesce(room_doc_int(p_doc, 'capacity'), v.capacity);
    IF v.capacity IS NULL OR v.capacity NOT BETWEEN 1 AND 10000 THEN
        PERFORM room_refuse('CR400', 'field:capacity', 'capacity is 1 to 10000 people.');
    END IF;
    IF p_doc ? 'features' THEN
        IF jsonb_typeof(p_doc -> 'features') <> 'array' THEN
            PERFORM room_refuse('CR400', 'field:features', 'features is a list of words.');
        END IF;
        SELECT coalesce(array_agg(DISTINCT lower(f) ORDER BY lower(f)), '{}') INTO v_features
        FROM jsonb_array_elements_text(p_doc -> 'features') f;
        SELECT f INTO v_bad FROM unnest(v_features) f WHERE f !~ '^[a-z][a-z0-9_-]{0,31}$' LIMIT 1;
        IF FOUND OR cardinality(v_features) > 30 THEN
            PERFORM room_refuse('CR400', 'field:features',
                                'Features are up to 30 lower-case words (letters, digits, _ -).');
        END IF;
        v.features := v_features;
    END IF;
    v.bookable_by := coalesce(room_doc_text(p_doc, 'bookable_by', 10), v.bookable_by);
    IF v.bookable_by NOT IN ('public', 'staff') THEN
        PERFORM room_refuse('CR400', 'field:bookable_by', 'bookable_by is public or staff.');
    END IF;
    v.category := coalesce(room_doc_text(p_doc, 'category', 40), v.category);
    IF NOT EXISTS (SELECT 1 FROM room_category WHERE code = v.category) THEN
        PERFORM room_refuse('CR404', 'room_category',
                            format('There is no room category %s.', v.category));
    END IF;
    IF p_doc ? 'active' AND jsonb_typeof(p_doc -> 'active') = 'boolean' THEN
        v.active := (p_doc ->> 'active')::boolean;
    END IF;

    BEGIN
        IF v_new THEN
            INSERT INTO room (branch_id, name, capacity, features, bookable_by, category, active)
            VALUES (v.branch_id, v.name, v.capacity, v.features, v.bookable_by, v.category,
                    v.active)
            RETURNING id INTO v_id;
        ELSE
            UPDATE room SET name = v.name, capacity = v.capacity, features = v.features,
                            bookable_by = v.bookable_by, category = v.category, active = v.active
            WHERE id = v_id;
        END IF;
    EXCEPTION WHEN unique_violation THEN
        PERFORM room_refuse('CR400', 'field:name',
                            format('The branch already has a room called %s.', v.name));
    END;

    IF p_doc ? 'part_ids' THEN
        IF jsonb_typeof(p_doc -> 'part_ids') <> 'array' THEN
            PERFORM room_refuse('CR400', 'field:part_ids', 'part_ids is a list of room ids.');
        END IF;
        BEGIN
            SELECT coalesce(array_agg(DISTINCT x::bigint ORDER BY x::bigint), '{}') INTO v_parts
            FROM jsonb_array_elements_text(p_doc -> 'part_ids') x;
        EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
            PERFORM room_refuse('CR400', 'field:part_ids', 'part_ids is a list of room ids.');
        END;
        SELECT coalesce(array_agg(part_id ORDER BY part_id), '{}') INTO v_old_parts
        FROM room_part WHERE whole_id = v_id;
        IF v_parts IS DISTINCT FROM v_old_parts THEN
            PERFORM room_parts_set(v_id, v.branch_id, v_parts, v_old_parts);
        END IF;
    END IF;

    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_staff, p_workstation, CASE WHEN v_new THEN 'room_add' ELSE 'room_save' END,
            (SELECT code FROM branch WHERE id = v.branch_id) || ' ' || v.name, p_doc);
    RETURN QUERY SELECT * FROM room_rows(ARRAY[v_id], library_today());
END
$$;

-- Replace the parts of split room p_whole (room_save checked the rest).
CREATE OR REPLACE FUNCTION room_parts_set(p_whole bigint, p_branch integer, p_parts bigint[],
                                          p_old bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_bad record;
BEGIN
    IF cardinality(p_parts) = 1 THEN
        PERFORM room_refuse('CR400', 'field:part_ids',
                            'A split room is made of at least two rooms.');
    END IF;
    -- Lock the parts (room rows, id order) before looking at their bookings.
    PERFORM 1 FROM room WHERE id = ANY (p_parts || p_old) ORDER BY id FOR UPDATE;
    SELECT p.id, r.id AS rid, r.branch_id,
           EXISTS (SELECT 1 FROM room_part x WHERE x.whole_id = p.id) AS split
    INTO v_bad
    FROM unnest(p_parts) p (id) LEFT JOIN room r ON r.id = p.id
    WHERE r.id IS NULL OR r.branch_id <> p_branch OR p.id = p_whole
       OR EXISTS (SELECT 1 FROM room_part x WHERE x.whole_id = p.id)
       OR EXISTS (SELECT 1 FROM room_part x WHERE x.part_id = p.id AND x.whole_id <> p_whole)
    LIMIT 1;
    IF FOUND THEN
        IF v_bad.rid IS NULL THEN
            PERFORM room_refuse('CR404', 'room', format('There is no room %s.', v_bad.id));
        END IF;
        PERFORM room_refuse('CR400', 'field:part_ids', format(
            'Room %s cannot be a part here: parts are other rooms of the same branch, not '
            'split themselves and not parts of another room.', v_bad.id));
    END IF;
    IF cardinality(p_parts) > 0
       AND EXISTS (SELECT 1 FROM room_part x WHERE x.part_id = p_whole) THEN
        PERFORM room_refuse('CR400', 'field:part_ids',
                            'This room is a part of another room and cannot be split itself.');
    END IF;
    IF EXISTS (SELECT 1 FROM room_booking k
               WHERE k.room_id = ANY (p_parts || p_old || p_whole) AND room_live(k.status)
                 AND upper(k.blocked) > now()) THEN
        PERFORM room_refuse('CR400', 'field:part_ids',
                            'The room or one of its parts has bookings to come; cancel or move '
                            'them before changing how the room is split.');
    END IF;
    DELETE FROM room_part WHERE whole_id = p_whole;
    INSERT INTO room_part (whole_id, part_id) SELECT p_whole, unnest(p_parts);
END
$$;

CREATE OR REPLACE FUNCTION room_category_list() RETURNS SETOF room_category
LANGUAGE sql STABLE AS $$ SELECT * FROM room_category ORDER BY code $$;

-- Create or change a category (RoomCategory document; absent fields keep
-- their value, or for a new one the defaults below).
CREATE OR REPLACE FUNCTION room_category_save(p_staff bigint, p_workstation bigint, p_doc jsonb)
RETURNS SETOF room_category
LANGUAGE plpgsql AS $$
DECLARE
    v room_category;
    v_new boolean;
    f text;
    v_n integer;
BEGIN
    v.code := p_doc ->> 'code';
    IF v.code IS NULL OR v.code !~ '^[a-z][a-z0-9_]{1,31}$' THEN
        PERFORM room_refuse('CR400', 'field:code',
                            'A category code is 2-32 lower-case letters, digits or _.');
    END IF;
    SELECT * INTO v FROM room_category WHERE code = v.code FOR UPDATE;
    v_new := NOT FOUND;
    IF v_new THEN
        v := ROW(p_doc ->> 'code', NULL, 30, 120, 30, 14, 0, 0, 0, 0, 0, 0, false, 0);
    END IF;
    v.name := coalesce(room_doc_text(p_doc, 'name', 100), v.name);
    IF v.name IS NULL THEN
        PERFORM room_refuse('CR400', 'field:name', 'A new category needs a name.');
    END IF;
    FOREACH f IN ARRAY ARRAY['min_minutes', 'max_minutes', 'slot_minutes', 'days_ahead',
                             'max_bookings', 'max_hours_week', 'max_hours_month', 'gap_minutes',
                             'setup_minutes', 'cleanup_minutes', 'checkin_minutes'] LOOP
        v_n := room_doc_int(p_doc, f);
        IF v_n IS NOT NULL THEN
            IF v_n < 0 THEN
                PERFORM room_refuse('CR400', 'field:' || f, format('%s may not be negative.', f));
            END IF;
            v := jsonb_populate_record(v, jsonb_build_object(f, v_n));
        END IF;
    END LOOP;
    IF p_doc ? 'needs_approval' AND jsonb_typeof(p_doc -> 'needs_approval') = 'boolean' THEN
        v.needs_approval := (p_doc ->> 'needs_approval')::boolean;
    END IF;
    IF v.slot_minutes NOT BETWEEN 5 AND 240 THEN
        PERFORM room_refuse('CR400', 'field:slot_minutes', 'slot_minutes is 5 to 240.');
    END IF;
    IF v.min_minutes < v.slot_minutes OR v.min_minutes % v.slot_minutes <> 0 THEN
        PERFORM room_refuse('CR400', 'field:min_minutes',
                            'min_minutes is a whole number of slots (at least one).');
    END IF;
    IF v.max_minutes < v.min_minutes OR v.max_minutes > 1440
       OR v.max_minutes % v.slot_minutes <> 0 THEN
        PERFORM room_refuse('CR400', 'field:max_minutes',
                            'max_minutes is a whole number of slots, at least min_minutes and '
                            'at most 1440.');
    END IF;
    BEGIN
        INSERT INTO room_category VALUES (v.*)
        ON CONFLICT (code) DO UPDATE SET name = excluded.name,
            min_minutes = excluded.min_minutes, max_minutes = excluded.max_minutes,
            slot_minutes = excluded.slot_minutes, days_ahead = excluded.days_ahead,
            max_bookings = excluded.max_bookings, max_hours_week = excluded.max_hours_week,
            max_hours_month = excluded.max_hours_month, gap_minutes = excluded.gap_minutes,
            setup_minutes = excluded.setup_minutes, cleanup_minutes = excluded.cleanup_minutes,
            needs_approval = excluded.needs_approval, checkin_minutes = excluded.checkin_minutes;
    EXCEPTION WHEN check_violation THEN
        PERFORM room_refuse('CR400', 'field:category',
                            'A value is out of range (days_ahead to 730, limits, buffers and '
                            'check-in to their maximum).');
    END;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_staff, p_workstation, 'room_category_save', v.code, p_doc);
    RETURN QUERY SELECT * FROM room_category WHERE code = v.code;
END
$$;

-- ---------------------------------------------------------------- free time

-- The free time computed from scratch: one row per room p_rooms (active or
-- not) per local day p_from .. p_from + p_days - 1 (none when p_days is 0),
-- in no order: the branch's opening period and the free periods in it where
-- a booking can start and end (on the room's slot grid, leaving room for
-- the category's set-up before and clean-up after where another booking's
-- block is next to it, at least min_minutes long, and none of it before
-- p_now; p_now NULL: nothing cut). free_from/free_to: each period in
-- minutes from local midnight (wall clock on the days the clocks change).
-- One set-based query: the blocks of all rooms' units over the whole range
-- are read once through the gist index and grouped per room and day.
-- Called through room_free_calc_planned (planned for each call's values:
-- many rooms or days; a generic plan was once five times slower there) or
-- room_free_calc_kept (one generic plan: a booking's few room-days, where
-- planning this query cost five times its run). room_free reads most days from room_day_free, which
-- room_free_refresh and room_free_span_move keep with this.
CREATE OR REPLACE FUNCTION room_free_calc(p_rooms bigint[], p_from date, p_days integer,
                                          p_now timestamptz)
RETURNS TABLE (room_id bigint, day date, opens text, closes text, free text[], closed boolean,
               free_from integer[], free_to integer[])
LANGUAGE plpgsql STABLE SET jit = off AS $$
#variable_conflict use_column
DECLARE
    v_from date := p_from;
    v_days integer := p_days;
    v_tz text := library_setting_text('timezone');
BEGIN
    RETURN QUERY
    WITH rooms AS (
        SELECT r.id, r.branch_id, b.code, r.name, c.slot_minutes, c.min_minutes,
               c.setup_minutes, c.cleanup_minutes
        FROM room r JOIN branch b ON b.id = r.branch_id
        JOIN room_category c ON c.code = r.category
        WHERE r.id = ANY (p_rooms)
    ), units AS (
        SELECT r.id AS room_id, coalesce(p.part_id, r.id) AS unit_id
        FROM rooms r LEFT JOIN room_part p ON p.whole_id = r.id
    ), span AS (
        SELECT tstzrange((v_from::timestamp) AT TIME ZONE v_tz,
                         ((v_from + v_days)::timestamp) AT TIME ZONE v_tz) AS r
    ), busy AS (
        -- each block under the local days it touches (a block is at most a
        -- day and its buffers long: three days at most)
        SELECT u.room_id, bd.d + k.k AS day, bd.blocked
        FROM units u JOIN room_block bl ON bl.unit_id = u.unit_id
        CROSS JOIN span
        CROSS JOIN LATERAL (SELECT (lower(bl.blocked) AT TIME ZONE v_tz)::date AS d,
                                   (upper(bl.blocked) AT TIME ZONE v_tz)::date AS d2,
                                   bl.blocked) bd
        JOIN (VALUES (0), (1), (2)) k (k) ON bd.d + k.k <= bd.d2
        WHERE bl.blocked && span.r
    ), branch_days AS (
        -- opening periods per branch and day, converted once; also as minutes
        -- from local midnight (m0) for the days without a clock change (dst
        -- false), which are done in integers below
        SELECT y.*, (extract(epoch FROM y.o - y.m0) / 60)::integer AS o_min,
               (extract(epoch FROM y.c - y.m0) / 60)::integer AS c_min,
               ceil(extract(epoch FROM p_now - y.m0) / 60)::integer AS now_min
        FROM (SELECT h.branch_id, d::date AS day, h.opens AS o_time, h.closes AS c_time,
                     ((d::date + h.opens) AT TIME ZONE v_tz) AS o,
                     ((d::date + h.closes) AT TIME ZONE v_tz) AS c,
                     (d::date::timestamp AT TIME ZONE v_tz) AS m0,
                     ((d::date + 1)::timestamp AT TIME ZONE v_tz)
                     - (d::date::timestamp AT TIME ZONE v_tz) <> interval '24 hours' AS dst
              FROM generate_series(v_from, v_from + v_days - 1, interval '1 day') d
              JOIN branch_hours h ON h.weekday = extract(isodow FROM d)
                                 AND h.branch_id IN (SELECT r.branch_id FROM rooms r)
              WHERE NOT EXISTS (SELECT 1 FROM branch_closed bc
                                WHERE bc.branch_id = h.branch_id AND bc.day = d::date)) y
    ), days AS (
        SELECT r.*, d::date AS day, bdy.o_time, bdy.c_time, bdy.o, bdy.c, bdy.m0, bdy.dst,
               bdy.o_min, bdy.c_min, bdy.now_min
        FROM rooms r
        CROSS JOIN generate_series(v_from, v_from + v_days - 1, interval '1 day') d
        LEFT JOIN branch_days bdy ON bdy.branch_id = r.branch_id AND bdy.day = d::date
    ), busy_day AS (
        SELECT b.room_id, b.day,
               range_agg(b.blocked) FILTER (WHERE x.dst) AS taken,
               range_agg(int4range(floor(extract(epoch FROM lower(b.blocked) - x.m0) / 60)::integer,
                                   ceil(extract(epoch FROM upper(b.blocked) - x.m0) / 60)::integer))
                   FILTER (WHERE NOT x.dst) AS taken_min
        FROM busy b JOIN days x ON x.id = b.room_id AND x.day = b.day
        WHERE x.o IS NOT NULL
        GROUP BY b.room_id, b.day
    ), fast AS (
        -- days without a clock change: free periods in minutes from midnight,
        -- shortened by the buffers where a block borders them, cut at now,
        -- onto the slot grid (start up, end down), long enough
        SELECT q.id, q.day, q.ls, q.le
        FROM (SELECT p.id, p.day, p.min_minutes,
                     (p.fs + p.slot_minutes - 1) / p.slot_minutes * p.slot_minutes AS ls,
                     p.fe / p.slot_minutes * p.slot_minutes AS le
              FROM (SELECT x.id, x.day, x.slot_minutes, x.min_minutes,
                           greatest(CASE WHEN lower(f.p) > x.o_min
                                         THEN lower(f.p) + x.setup_minutes
                                         ELSE lower(f.p) END, x.now_min) AS fs,
                           CASE WHEN upper(f.p) < x.c_min THEN upper(f.p) - x.cleanup_minutes
                                ELSE upper(f.p) END AS fe
                    FROM days x
                    LEFT JOIN busy_day bd ON bd.room_id = x.id AND bd.day = x.day
                    CROSS JOIN LATERAL unnest(int4multirange(int4range(x.o_min, x.c_min))
                                              - coalesce(bd.taken_min, '{}'::int4multirange)) f (p)
                    WHERE x.o IS NOT NULL AND NOT x.dst) p
              WHERE p.fe > p.fs) q
        WHERE q.le - q.ls >= q.min_minutes
    ), periods AS (
        -- the days the clocks change: the same in timestamps, in local time
        SELECT x.id, x.day, x.slot_minutes, x.min_minutes,
               greatest(CASE WHEN lower(f.p) > x.o
                             THEN lower(f.p) + make_interval(mins => x.setup_minutes)
                             ELSE lower(f.p) END, p_now) AT TIME ZONE v_tz AS fs,
               CASE WHEN upper(f.p) < x.c
                    THEN upper(f.p) - make_interval(mins => x.cleanup_minutes)
                    ELSE upper(f.p) END AT TIME ZONE v_tz AS fe
        FROM days x
        LEFT JOIN busy_day bd ON bd.room_id = x.id AND bd.day = x.day
        CROSS JOIN LATERAL unnest(tstzmultirange(tstzrange(x.o, x.c))
                                  - coalesce(bd.taken, '{}'::tstzmultirange)) f (p)
        WHERE x.o IS NOT NULL AND x.dst
    ), snapped AS (
        SELECT s.id, s.day, s.ls, s.le
        FROM (SELECT p.id, p.day, p.min_minutes,
                     p.day + make_interval(mins => (ceil(extract(epoch FROM p.fs - p.day)
                                                         / 60 / p.slot_minutes)
                                                    * p.slot_minutes)::integer) AS ls,
                     p.day + make_interval(mins => (floor(extract(epoch FROM p.fe - p.day)
                                                          / 60 / p.slot_minutes)
                                                    * p.slot_minutes)::integer) AS le
              FROM periods p WHERE p.fe > p.fs) s
        WHERE s.le > s.ls
          AND ((s.le AT TIME ZONE v_tz) - (s.ls AT TIME ZONE v_tz)
               >= make_interval(mins => s.min_minutes))
    ), free_day AS (
        SELECT a.id, a.day, array_agg(a.txt ORDER BY a.ord) AS periods,
               array_agg(a.ord ORDER BY a.ord) AS starts, array_agg(a.til ORDER BY a.ord) AS ends
        FROM (SELECT f.id, f.day, f.ls AS ord, f.le AS til,
                     lpad((f.ls / 60)::text, 2, '0') || ':' || lpad((f.ls % 60)::text, 2, '0')
                     || '-' || lpad((f.le / 60)::text, 2, '0') || ':'
                     || lpad((f.le % 60)::text, 2, '0') AS txt
              FROM fast f
              UNION ALL
              SELECT s.id, s.day, (extract(epoch FROM s.ls - s.day) / 60)::integer,
                     (extract(epoch FROM s.le - s.day) / 60)::integer,
                     to_char(s.ls, 'HH24:MI') || '-' || to_char(s.le, 'HH24:MI')
              FROM snapped s) a
        GROUP BY a.id, a.day
    )
    SELECT x.id, x.day, to_char(x.o_time, 'HH24:MI'), to_char(x.c_time, 'HH24:MI'),
           coalesce(fd.periods, '{}'), x.o IS NULL, coalesce(fd.starts, '{}'),
           coalesce(fd.ends, '{}')
    FROM days x LEFT JOIN free_day fd ON fd.id = x.id AND fd.day = x.day;
END
$$;

-- room_free_calc planned for the call's values (many rooms or days).
CREATE OR REPLACE FUNCTION room_free_calc_planned(p_rooms bigint[], p_from date,
                                                  p_days integer, p_now timestamptz)
RETURNS TABLE (room_id bigint, day date, opens text, closes text, free text[], closed boolean,
               free_from integer[], free_to integer[])
LANGUAGE sql STABLE SET jit = off SET plan_cache_mode = force_custom_plan
SET enable_bitmapscan = on SET enable_seqscan = on AS $$
    SELECT * FROM room_free_calc(p_rooms, p_from, p_days, p_now)
$$;

-- room_free_calc with one generic plan kept (a writer's few room-days).
CREATE OR REPLACE FUNCTION room_free_calc_kept(p_rooms bigint[], p_from date,
                                               p_days integer, p_now timestamptz)
RETURNS TABLE (room_id bigint, day date, opens text, closes text, free text[], closed boolean,
               free_from integer[], free_to integer[])
LANGUAGE sql STABLE SET jit = off SET plan_cache_mode = force_generic_plan
SET enable_bitmapscan = on SET enable_seqscan = on AS $$
    SELECT * FROM room_free_calc(p_rooms, p_from, p_days, p_now)
$$;

-- 'HH:MM' of minutes from local midnight (as room_free_calc renders them).
CREATE OR REPLACE FUNCTION room_hhmm(p_minutes integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT lpad((p_minutes / 60)::text, 2, '0') || ':' || lpad((p_minutes % 60)::text, 2, '0')
$$;

-- The rooms room_free and room_free_rooms report on: active, and the filters.
CREATE OR REPLACE FUNCTION room_free_ids(p_branch integer, p_capacity integer, p_room bigint,
                                         p_features text[], p_staff_rooms boolean)
RETURNS bigint[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(r.id), '{}') FROM room r
    WHERE r.active AND (p_branch IS NULL OR r.branch_id = p_branch)
      AND (p_room IS NULL OR p_room = 0 OR r.id = p_room)
      AND r.capacity >= coalesce(p_capacity, 0)
      AND r.features @> coalesce(p_features, '{}')
      AND (r.bookable_by = 'public' OR coalesce(p_staff_rooms, false))
$$;

-- room_free computed from scratch for every day (what room_free answered
-- before room_day_free; the tests compare the two).
CREATE OR REPLACE FUNCTION room_free_compute(p_branch text, p_date text, p_days integer,
                                             p_capacity integer, p_room bigint,
                                             p_features text[], p_staff_rooms boolean)
RETURNS TABLE (room_id bigint, day date, opens text, closes text, free text[], closed boolean)
LANGUAGE plpgsql STABLE SET jit = off AS $$
#variable_conflict use_column
DECLARE
    v_branch integer := room_branch_id(p_branch, 'branch');
    v_from date := local_day(p_date, 'date', library_today());
    v_days integer := coalesce(nullif(p_days, 0), 1);
BEGIN
    IF v_days NOT BETWEEN 1 AND 90 THEN
        PERFORM room_refuse('CR400', 'field:days', 'days is 1 to 90.');
    END IF;
    RETURN QUERY
    SELECT c.room_id, c.day, c.opens, c.closes, c.free, c.closed
    FROM room_free_calc_planned(room_free_ids(v_branch, p_capacity, p_room, p_features,
                                              p_staff_rooms), v_from, v_days, now()) c
    JOIN room r ON r.id = c.room_id JOIN branch b ON b.id = r.branch_id
    ORDER BY b.code, r.name, c.day;
END
$$;

-- room_free's answer as one row per room (room order: branch code, room
-- name), each day of it an element of the arrays (in day order): free holds
-- the day's periods joined by ';' ('' for none). RoomFree reads this: 30
-- rows cost the database and carreld much less than 2,700. The days of
-- room_free_span are read from room_day_free, today's cut at now (a period's
-- start moves up to the first slot not begun; too short then: dropped, as
-- room_free_calc does); the others (past days, days beyond the span, today
-- when the clocks change today, everything while the span is in another
-- time zone or not filled yet) are computed by room_free_calc.
CREATE OR REPLACE FUNCTION room_free_grid(p_branch text, p_date text, p_days integer,
                                          p_capacity integer, p_room bigint,
                                          p_features text[], p_staff_rooms boolean)
RETURNS TABLE (room_id bigint, days date[], opens text[], closes text[], free text[],
               closed boolean[])
-- bitmap and sequential scans off: each room's days are then read in index
-- (day) order, without a sort (a scan of the whole table per room, which the
-- planner costed the same as the index, took five times as long); the calc
-- wrappers turn them on again
LANGUAGE plpgsql STABLE SET jit = off SET enable_bitmapscan = off SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    v_branch integer := room_branch_id(p_branch, 'branch');
    v_today date := library_today();
    v_from date := local_day(p_date, 'date', v_today);
    v_days integer := coalesce(nullif(p_days, 0), 1);
    v_last date := v_from + v_days - 1;
    v_ids bigint[];
    v_span room_free_span;
    v_lo date;          -- the days read from room_day_free: v_lo .. v_hi
    v_hi date;
    v_now_min integer;  -- now in minutes from today's local midnight, rounded up
BEGIN
    IF v_days NOT BETWEEN 1 AND 90 THEN
        PERFORM room_refuse('CR400', 'field:days', 'days is 1 to 90.');
    END IF;
    v_ids := room_free_ids(v_branch, p_capacity, p_room, p_features, p_staff_rooms);
    SELECT * INTO v_span FROM room_free_span;
    v_lo := greatest(v_from, v_today, v_span.first_day);
    v_hi := least(v_last, v_span.last_day);
    -- today's cut at now is done in minutes: not on a day the clocks change
    IF v_lo = v_today AND local_at(v_today + 1, '00:00') - local_at(v_today, '00:00')
                          <> interval '24 hours' THEN
        v_lo := v_lo + 1;
    END IF;
    IF v_span.tz IS DISTINCT FROM library_setting_text('timezone') OR v_lo > v_hi THEN
        v_lo := v_last + 1;  -- nothing stored to use: all computed
        v_hi := v_last;
    END IF;
    v_now_min := ceil(extract(epoch FROM now() - local_at(v_today, '00:00')) / 60);
    IF v_lo = v_from AND v_hi = v_last THEN
        -- all kept (the usual case): each room's days in index order, aggregated
        -- in that order, no sort of the days
        RETURN QUERY
        WITH r AS MATERIALIZED (
            SELECT r.id, row_number() OVER (ORDER BY b.code, r.name) AS ord, c.slot_minutes,
                   c.min_minutes
            FROM room r JOIN branch b ON b.id = r.branch_id
            JOIN room_category c ON c.code = r.category
            WHERE r.id = ANY (v_ids)
        )
        SELECT r.id, g.days, g.opens, g.closes, g.free, g.closed
        FROM r
        CROSS JOIN LATERAL (
            SELECT array_agg(f.day) AS days, array_agg(f.opens) AS opens,
                   array_agg(f.closes) AS closes, array_agg(f.free) AS free,
                   array_agg(f.closed) AS closed
            FROM (SELECT f.day, f.opens, f.closes, f.closed,
                         CASE WHEN f.day > v_today THEN f.free
                              ELSE coalesce((SELECT string_agg(room_hhmm(greatest(a.s, n.n))
                                                               || '-' || room_hhmm(a.e), ';'
                                                               ORDER BY a.s)
                                             FROM unnest(f.free_from, f.free_to) a (s, e)
                                             CROSS JOIN (SELECT (v_now_min + r.slot_minutes - 1)
                                                                / r.slot_minutes
                                                                * r.slot_minutes AS n) n
                                             WHERE a.e - greatest(a.s, n.n) >= r.min_minutes),
                                            '') END AS free
                  FROM room_day_free f
                  WHERE f.room_id = r.id AND f.day BETWEEN v_lo AND v_hi
                  ORDER BY f.day) f) g
        ORDER BY r.ord;
        RETURN;
    END IF;
    RETURN QUERY
    -- ord: the rooms' order, so the rows are sorted on integers (sorting
    -- thousands of rows on the collated names cost more than the rest)
    WITH r AS MATERIALIZED (
        SELECT r.id, row_number() OVER (ORDER BY b.code, r.name) AS ord, c.slot_minutes,
               c.min_minutes
        FROM room r JOIN branch b ON b.id = r.branch_id
        JOIN room_category c ON c.code = r.category
        WHERE r.id = ANY (v_ids)
    ), answer AS (
        SELECT f.room_id, f.day, f.opens, f.closes,
               CASE WHEN f.day > v_today THEN f.free
                    ELSE coalesce((SELECT string_agg(room_hhmm(greatest(a.s, n.n)) || '-'
                                                     || room_hhmm(a.e), ';' ORDER BY a.s)
                                   FROM unnest(f.free_from, f.free_to) a (s, e)
                                   CROSS JOIN (SELECT (v_now_min + r.slot_minutes - 1)
                                                      / r.slot_minutes * r.slot_minutes AS n) n
                                   WHERE a.e - greatest(a.s, n.n) >= r.min_minutes), '')
               END AS free,
               f.closed
        FROM r JOIN room_day_free f ON f.room_id = r.id AND f.day BETWEEN v_lo AND v_hi
        UNION ALL
        SELECT c.room_id, c.day, c.opens, c.closes, array_to_string(c.free, ';'), c.closed
        FROM room_free_calc_planned(v_ids, v_from, v_lo - v_from, now()) c
        JOIN r ON r.id = c.room_id
        WHERE v_lo > v_from
        UNION ALL
        SELECT c.room_id, c.day, c.opens, c.closes, array_to_string(c.free, ';'), c.closed
        FROM room_free_calc_planned(v_ids, v_hi + 1, v_last - v_hi, now()) c
        JOIN r ON r.id = c.room_id
        WHERE v_hi < v_last
    )
    -- the aggregates take the rows in the order sorted below (one sort;
    -- an ORDER BY in each aggregate sorted each room five times over)
    SELECT min(x.id), array_agg(x.day), array_agg(x.opens), array_agg(x.closes),
           array_agg(x.free), array_agg(x.closed)
    FROM (SELECT r.id, r.ord, a.day, a.opens, a.closes, a.free, a.closed
          FROM answer a JOIN r ON r.id = a.room_id
          ORDER BY r.ord, a.day) x
    GROUP BY x.ord
    ORDER BY x.ord;
END
$$;

-- One row per room per local day from p_date (room order: branch code, room
-- name; then day): the branch's opening period and the free periods in it
-- where a booking can start and end (see room_free_calc and room_free_grid,
-- whose rows this spells out).
CREATE OR REPLACE FUNCTION room_free(p_branch text, p_date text, p_days integer,
                                     p_capacity integer, p_room bigint, p_features text[],
                                     p_staff_rooms boolean)
RETURNS TABLE (room_id bigint, day date, opens text, closes text, free text[], closed boolean)
LANGUAGE sql STABLE AS $$
    SELECT g.room_id, u.day, u.opens, u.closes,
           CASE WHEN u.free = '' THEN '{}'::text[] ELSE string_to_array(u.free, ';') END,
           u.closed
    FROM room_free_grid(p_branch, p_date, p_days, p_capacity, p_room, p_features,
                        p_staff_rooms) WITH ORDINALITY g (room_id, days, opens, closes, free,
                                                           closed, n)
    CROSS JOIN LATERAL unnest(g.days, g.opens, g.closes, g.free, g.closed)
        WITH ORDINALITY u (day, opens, closes, free, closed, k)
    ORDER BY g.n, u.k
$$;

-- ------------------------------------------------- room_day_free kept by the writers

-- Recompute the stored days of rooms p_rooms: the days p_days (pairs with
-- p_rooms), or every stored day when p_days is NULL. Called by the triggers
-- below in the writer's transaction. The span is locked shared (advisory
-- lock (21, 0): rooms_tick moves the span only when no writer holds it; a
-- row lock FOR KEY SHARE here made every booking write a MultiXact on the
-- one span row, a third of the throughput at 32 desks), then the rows in
-- (room, day) order, and only then, in a statement of its own (a snapshot
-- taken after the waits), the free time is computed: a writer that waited
-- for another's rows sees what that one committed.
CREATE OR REPLACE FUNCTION room_free_refresh(p_rooms bigint[], p_days date[]) RETURNS void
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    v_span room_free_span;
    v_r bigint[];
    v_d date[];
    v_first date;
    v_last date;
    v_small boolean;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(21, 0);
    SELECT * INTO v_span FROM room_free_span;
    IF v_span.tz IS DISTINCT FROM library_setting_text('timezone') THEN
        RETURN;  -- nothing kept (room_free computes it all)
    END IF;
    SELECT array_agg(x.r ORDER BY x.r, x.d), array_agg(x.d ORDER BY x.r, x.d),
           min(x.d), max(x.d)
    INTO v_r, v_d, v_first, v_last
    FROM (SELECT DISTINCT y.r, y.d
          FROM (SELECT u.r, u.d FROM unnest(p_rooms, p_days) u (r, d)
                WHERE p_days IS NOT NULL
                UNION ALL
                SELECT u.r, g::date FROM unnest(p_rooms) u (r),
                       generate_series(v_span.first_day, v_span.last_day, interval '1 day') g
                WHERE p_days IS NULL) y
          WHERE y.r IS NOT NULL AND y.d BETWEEN v_span.first_day AND v_span.last_day) x;
    IF v_r IS NULL THEN
        RETURN;
    END IF;
    PERFORM 1 FROM room_day_free f JOIN unnest(v_r, v_d) u (r, d)
                                   ON f.room_id = u.r AND f.day = u.d
    ORDER BY f.room_id, f.day FOR UPDATE OF f;
    -- a booking's few room-days: the kept plan; a bulk change: planned for it
    v_small := cardinality(v_r) <= 16;
    INSERT INTO room_day_free AS f (room_id, day, opens, closes, closed, free, free_from, free_to)
    SELECT c.room_id, c.day, c.opens, c.closes, c.closed, array_to_string(c.free, ';'),
           c.free_from, c.free_to
    FROM (SELECT * FROM room_free_calc_kept(ARRAY(SELECT DISTINCT unnest(v_r)), v_first,
                                            v_last - v_first + 1, NULL)
          WHERE v_small
          UNION ALL
          SELECT * FROM room_free_calc_planned(ARRAY(SELECT DISTINCT unnest(v_r)), v_first,
                                               v_last - v_first + 1, NULL)
          WHERE NOT v_small) c
    JOIN unnest(v_r, v_d) u (r, d) ON u.r = c.room_id AND u.d = c.day
    ON CONFLICT (room_id, day) DO UPDATE
    SET opens = excluded.opens, closes = excluded.closes, closed = excluded.closed,
        free = excluded.free, free_from = excluded.free_from, free_to = excluded.free_to
    WHERE (f.opens, f.closes, f.closed, f.free, f.free_from, f.free_to)
          IS DISTINCT FROM (excluded.opens, excluded.closes, excluded.closed, excluded.free,
                            excluded.free_from, excluded.free_to);
END
$$;

-- Blocks added or removed: the rooms holding the unit (the unit itself, and
-- the whole it is a part of) on each local day the block touches.
CREATE OR REPLACE FUNCTION room_free_blocks_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_tz text := library_setting_text('timezone');
    v_r bigint[] := '{}';
    v_d date[] := '{}';
    v_r2 bigint[];
    v_d2 date[];
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT array_agg(w.room_id), array_agg(g::date) INTO v_r, v_d
        FROM new_rows b
        CROSS JOIN LATERAL (SELECT b.unit_id AS room_id
                            UNION SELECT p.whole_id FROM room_part p
                                  WHERE p.part_id = b.unit_id) w
        CROSS JOIN LATERAL generate_series((lower(b.blocked) AT TIME ZONE v_tz)::date,
                                           (upper(b.blocked) AT TIME ZONE v_tz)::date,
                                           interval '1 day') g;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        SELECT array_agg(w.room_id), array_agg(g::date) INTO v_r2, v_d2
        FROM old_rows b
        CROSS JOIN LATERAL (SELECT b.unit_id AS room_id
                            UNION SELECT p.whole_id FROM room_part p
                                  WHERE p.part_id = b.unit_id) w
        CROSS JOIN LATERAL generate_series((lower(b.blocked) AT TIME ZONE v_tz)::date,
                                           (upper(b.blocked) AT TIME ZONE v_tz)::date,
                                           interval '1 day') g;
        v_r := coalesce(v_r, '{}') || coalesce(v_r2, '{}');
        v_d := coalesce(v_d, '{}') || coalesce(v_d2, '{}');
    END IF;
    PERFORM room_free_refresh(coalesce(v_r, '{}'), coalesce(v_d, '{}'));
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER room_block_free_insert AFTER INSERT ON room_block
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION room_free_blocks_changed();
CREATE OR REPLACE TRIGGER room_block_free_delete AFTER DELETE ON room_block
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION room_free_blocks_changed();
CREATE OR REPLACE TRIGGER room_block_free_update AFTER UPDATE ON room_block
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION room_free_blocks_changed();

-- New rooms: all their days.
CREATE OR REPLACE FUNCTION room_free_rooms_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM room_free_refresh(ARRAY(SELECT n.id FROM new_rows n), NULL);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER room_free_room_insert AFTER INSERT ON room
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION room_free_rooms_added();

-- A room moved to another category or branch; the parts of a whole changed
-- (its units); a category's grid, minimum or buffers changed: all the days
-- of the rooms concerned.
CREATE OR REPLACE FUNCTION room_free_rooms_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'room' THEN
        PERFORM room_free_refresh(ARRAY[NEW.id], NULL);
    ELSIF TG_TABLE_NAME = 'room_category' THEN
        PERFORM room_free_refresh(ARRAY(SELECT r.id FROM room r WHERE r.category = NEW.code),
                                  NULL);
    ELSIF TG_OP = 'INSERT' THEN  -- room_part
        PERFORM room_free_refresh(ARRAY(SELECT DISTINCT n.whole_id FROM new_rows n), NULL);
    ELSE
        PERFORM room_free_refresh(ARRAY(SELECT DISTINCT o.whole_id FROM old_rows o), NULL);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER room_free_room_update AFTER UPDATE ON room FOR EACH ROW
WHEN (OLD.category IS DISTINCT FROM NEW.category OR OLD.branch_id IS DISTINCT FROM NEW.branch_id)
EXECUTE FUNCTION room_free_rooms_changed();
CREATE OR REPLACE TRIGGER room_free_category_update AFTER UPDATE ON room_category FOR EACH ROW
WHEN ((OLD.slot_minutes, OLD.min_minutes, OLD.setup_minutes, OLD.cleanup_minutes)
      IS DISTINCT FROM (NEW.slot_minutes, NEW.min_minutes, NEW.setup_minutes,
                        NEW.cleanup_minutes))
EXECUTE FUNCTION room_free_rooms_changed();
CREATE OR REPLACE TRIGGER room_free_part_insert AFTER INSERT ON room_part
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION room_free_rooms_changed();
CREATE OR REPLACE TRIGGER room_free_part_delete AFTER DELETE ON room_part
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION room_free_rooms_changed();

-- Opening hours changed: every day of the branches' rooms. A closed day
-- added or removed: that day of the branch's rooms.
CREATE OR REPLACE FUNCTION room_free_branch_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_b integer[] := '{}';
    v_d date[] := '{}';
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        IF TG_TABLE_NAME = 'branch_hours' THEN
            SELECT v_b || array_agg(n.branch_id) INTO v_b FROM new_rows n;
        ELSE
            SELECT v_b || array_agg(n.branch_id), v_d || array_agg(n.day) INTO v_b, v_d
            FROM new_rows n;
        END IF;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        IF TG_TABLE_NAME = 'branch_hours' THEN
            SELECT coalesce(v_b, '{}') || array_agg(o.branch_id) INTO v_b FROM old_rows o;
        ELSE
            SELECT coalesce(v_b, '{}') || array_agg(o.branch_id),
                   coalesce(v_d, '{}') || array_agg(o.day)
            INTO v_b, v_d FROM old_rows o;
        END IF;
    END IF;
    IF TG_TABLE_NAME = 'branch_hours' THEN
        PERFORM room_free_refresh(ARRAY(SELECT r.id FROM room r
                                        WHERE r.branch_id = ANY (coalesce(v_b, '{}'))), NULL);
    ELSE
        PERFORM room_free_refresh(coalesce(array_agg(r.id), '{}'), coalesce(array_agg(x.d), '{}'))
        FROM unnest(v_b, v_d) x (b, d) JOIN room r ON r.branch_id = x.b;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER room_free_hours_insert AFTER INSERT ON branch_hours
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION room_free_branch_changed();
CREATE OR REPLACE TRIGGER room_free_hours_delete AFTER DELETE ON branch_hours
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION room_free_branch_changed();
CREATE OR REPLACE TRIGGER room_free_hours_update AFTER UPDATE ON branch_hours
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION room_free_branch_changed();
CREATE OR REPLACE TRIGGER room_free_closed_insert AFTER INSERT ON branch_closed
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION room_free_branch_changed();
CREATE OR REPLACE TRIGGER room_free_closed_delete AFTER DELETE ON branch_closed
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION room_free_branch_changed();
CREATE OR REPLACE TRIGGER room_free_closed_update AFTER UPDATE ON branch_closed
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION room_free_branch_changed();

-- The daily step (rooms_tick; tests call it with p_wait): the span becomes
-- today .. today + the longest days_ahead of any category (at most 400
-- days), in the library's time zone: past days dropped, new days computed
-- for every room; a new time zone or the first fill computes all. Takes the
-- span's advisory lock (21, 0) exclusively, so no writer is between its
-- shared lock and its commit;
-- without p_wait it gives up at once when one is (the next tick tries
-- again; room_free meanwhile computes the days not kept). Returns whether
-- it moved the span.
CREATE OR REPLACE FUNCTION room_free_span_move(p_wait boolean) RETURNS boolean
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    v_today date := library_today();
    v_last date := library_today() + least(400, coalesce((SELECT max(c.days_ahead)
                                                          FROM room_category c), 0));
    v_tz text := library_setting_text('timezone');
    v_span room_free_span;
    v_from date;
BEGIN
    SELECT * INTO v_span FROM room_free_span;
    IF v_span.first_day = v_today AND v_span.last_day = v_last AND v_span.tz = v_tz THEN
        RETURN false;
    END IF;
    IF p_wait THEN
        PERFORM pg_advisory_xact_lock(21, 0);
    ELSIF NOT pg_try_advisory_xact_lock(21, 0) THEN
        RETURN false;
    END IF;
    -- read again after the wait (a statement of its own: a fresh snapshot)
    SELECT * INTO v_span FROM room_free_span;
    IF v_span.tz IS DISTINCT FROM v_tz THEN
        DELETE FROM room_day_free;
        v_from := v_today;
    ELSE
        DELETE FROM room_day_free WHERE day < v_today OR day > v_last;
        -- the days kept already stay; the ones missing are computed
        v_from := CASE WHEN v_span.last_day < v_today OR v_span.first_day > v_today
                       THEN v_today ELSE v_span.last_day + 1 END;
        IF v_span.first_day > v_today THEN
            DELETE FROM room_day_free;
        END IF;
    END IF;
    UPDATE room_free_span SET first_day = v_today, last_day = v_last, tz = v_tz;
    IF v_from <= v_last THEN
        INSERT INTO room_day_free AS f (room_id, day, opens, closes, closed, free, free_from,
                                        free_to)
        SELECT c.room_id, c.day, c.opens, c.closes, c.closed, array_to_string(c.free, ';'),
               c.free_from, c.free_to
        FROM room_free_calc_planned(ARRAY(SELECT r.id FROM room r), v_from,
                                    v_last - v_from + 1, NULL) c
        ON CONFLICT (room_id, day) DO UPDATE
        SET opens = excluded.opens, closes = excluded.closes, closed = excluded.closed,
            free = excluded.free, free_from = excluded.free_from, free_to = excluded.free_to;
    END IF;
    RETURN true;
END
$$;

-- ---------------------------------------------------------------- bookings out

DROP FUNCTION IF EXISTS room_booking_rows(bigint[]);
DROP FUNCTION IF EXISTS room_bookings(text, bigint, text, text, text, boolean, integer);
DROP FUNCTION IF EXISTS room_change(uuid, bigint, bigint, integer, bigint, text, text, boolean);
DROP FUNCTION IF EXISTS room_book(uuid, bigint, bigint, boolean, jsonb);
DROP TYPE IF EXISTS room_book_row;
DROP TYPE IF EXISTS booking_out;
-- A booking as replies show it (proto RoomBooking field order).
CREATE TYPE booking_out AS (
    id bigint, room_id bigint, room_name text, branch_code text, start text, "end" text,
    status text, card text, patron_name text, group_name text, group_contact text,
    program_session_id bigint, program_title text, purpose text, attendees integer,
    blocked_from text, blocked_to text, cancel_reason text, series_id bigint,
    checked_in_at text, created_at text, created_by text, overridden boolean);

-- One occurrence of RoomBook: made (the booking columns) or refused (reason,
-- message, start and end only).
CREATE TYPE room_book_row AS (
    made boolean, reason text, message text,
    id bigint, room_id bigint, room_name text, branch_code text, start text, "end" text,
    status text, card text, patron_name text, group_name text, group_contact text,
    program_session_id bigint, program_title text, purpose text, attendees integer,
    blocked_from text, blocked_to text, cancel_reason text, series_id bigint,
    checked_in_at text, created_at text, created_by text, overridden boolean);

CREATE OR REPLACE FUNCTION room_booking_rows(p_ids bigint[]) RETURNS SETOF booking_out
LANGUAGE sql STABLE AS $$
    SELECT k.id, k.room_id, r.name, b.code, local_text(lower(k.during)),
           local_text(upper(k.during)), k.status, p.card,
           CASE WHEN p.id IS NOT NULL
                THEN coalesce(p.preferred_name, p.first_name) || ' ' || p.last_name END,
           k.group_name, k.group_contact, k.program_session_id, g.title, k.purpose, k.attendees,
           local_text(lower(k.blocked)), local_text(upper(k.blocked)), k.cancel_reason,
           k.series_id, local_text(k.checked_in_at), local_text(k.created_at), st.username,
           k.overridden
    FROM room_booking k JOIN room r ON r.id = k.room_id JOIN branch b ON b.id = r.branch_id
    LEFT JOIN patron p ON p.id = k.patron_id
    LEFT JOIN program_session s ON s.id = k.program_session_id
    LEFT JOIN program g ON g.id = s.program_id
    LEFT JOIN staff st ON st.id = k.created_by
    WHERE k.id = ANY (p_ids)
    ORDER BY lower(k.during), k.id
$$;

-- ---------------------------------------------------------------- booking

-- Hours of a patron's bookings in a category starting within p_range
-- (cancelled ones and no-shows not counted): the weekly and monthly limits.
CREATE OR REPLACE FUNCTION room_patron_hours(p_patron bigint, p_category text,
                                             p_range tstzrange) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(extract(epoch FROM upper(k.during) - lower(k.during))), 0) / 3600
    FROM room_booking k JOIN room r ON r.id = k.room_id
    WHERE k.patron_id = p_patron AND r.category = p_category
      AND k.status NOT IN ('cancelled', 'no_show') AND p_range @> lower(k.during)
$$;

-- Book one occurrence [p_start, p_end) of room p_room, every rule in order,
-- raising the first refusal; returns the booking's id. The party: a patron
-- (p_patron), a group (p_group), a program session, or none (staff use;
-- room_book checked who may). p_override: the overridable rules are skipped.
CREATE OR REPLACE FUNCTION room_book_one(p_staff bigint, p_room room, p_start timestamptz,
                                         p_end timestamptz, p_patron bigint, p_group text,
                                         p_contact text, p_session bigint, p_purpose text,
                                         p_attendees integer, p_override boolean,
                                         p_series bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c room_category;
    v_tz text := library_setting_text('timezone');
    v_ls timestamp := p_start AT TIME ZONE v_tz;
    v_le timestamp := p_end AT TIME ZONE v_tz;
    v_minutes numeric;
    v_open tstzrange;
    v_during tstzrange;
    v_blocked tstzrange;
    v_week tstzrange;
    v_month tstzrange;
    v_hours numeric;
    v_id bigint;
    v_status text;
BEGIN
    SELECT * INTO c FROM room_category WHERE code = p_room.category;
    IF p_end <= p_start THEN
        PERFORM room_refuse('CR400', 'field:end', 'The end must be after the start.');
    END IF;
    IF p_session IS NOT NULL THEN
        -- A program keeps its own times; its room is held on the room's grid
        -- around them (a 10:30-11:15 story time holds a 30-minute room
        -- 10:30-11:30), so staff need not round a session by hand.
        v_ls := v_ls - make_interval(mins => (extract(hour FROM v_ls) * 60
                                              + extract(minute FROM v_ls))::integer
                                             % c.slot_minutes);
        v_le := v_le + make_interval(mins => (c.slot_minutes
                                              - (extract(hour FROM v_le) * 60
                                                 + extract(minute FROM v_le))::integer
                                                % c.slot_minutes) % c.slot_minutes);
        p_start := v_ls AT TIME ZONE v_tz;
        p_end := v_le AT TIME ZONE v_tz;
    END IF;
    v_during := tstzrange(p_start, p_end);
    IF (extract(hour FROM v_ls) * 60 + extract(minute FROM v_ls))::integer % c.slot_minutes <> 0
       OR (extract(hour FROM v_le) * 60 + extract(minute FROM v_le))::integer
          % c.slot_minutes <> 0 THEN
        PERFORM room_refuse('CR422', 'off_slot', format(
            '%s is booked in steps of %s minutes from the hour (e.g. %s).', p_room.name,
            c.slot_minutes, to_char(date_trunc('hour', v_ls), 'HH24:MI')));
    END IF;
    -- real minutes: a booking over a daylight saving change is as long as it lasts
    v_minutes := extract(epoch FROM p_end - p_start) / 60;
    IF v_minutes < c.min_minutes AND NOT p_override THEN
        PERFORM room_refuse('CR422', 'too_short', format(
            '%s is booked for at least %s minutes.', p_room.name, c.min_minutes));
    END IF;
    IF v_minutes > c.max_minutes AND NOT p_override THEN
        PERFORM room_refuse('CR422', 'too_long', format(
            '%s is booked for at most %s minutes.', p_room.name, c.max_minutes));
    END IF;
    -- never overridable; the current slot may still be booked
    IF p_start < now() - make_interval(mins => c.slot_minutes) THEN
        PERFORM room_refuse('CR422', 'in_the_past', format(
            '%s has passed.', room_when(v_during)));
    END IF;
    IF v_ls::date > library_today() + c.days_ahead AND NOT p_override THEN
        PERFORM room_refuse('CR422', 'too_far_ahead', format(
            '%s is booked at most %s days ahead.', p_room.name, c.days_ahead));
    END IF;
    v_open := branch_open_range(p_room.branch_id, v_ls::date);
    IF (v_open IS NULL OR NOT v_open @> v_during) AND NOT p_override THEN
        PERFORM room_refuse('CR422', 'outside_hours', CASE WHEN v_open IS NULL
            THEN format('%s is closed on %s.', (SELECT name FROM branch WHERE id = p_room.branch_id),
                        to_char(v_ls, 'Dy YYYY-MM-DD'))
            ELSE format('%s is open %s-%s that day.',
                        (SELECT name FROM branch WHERE id = p_room.branch_id),
                        local_hhmm(lower(v_open)), local_hhmm(upper(v_open))) END);
    END IF;

    IF p_patron IS NOT NULL THEN
        -- serialises this patron's bookings: the counts below stay true
        PERFORM patron_circ_lock(p_patron);
        IF NOT p_override THEN
            IF c.max_bookings > 0 AND (
                SELECT count(*) FROM room_booking k JOIN room r ON r.id = k.room_id
                WHERE k.patron_id = p_patron AND r.category = c.code AND room_live(k.status)
                  AND upper(k.during) > now()) >= c.max_bookings THEN
                PERFORM room_refuse('CR422', 'patron_limit', format(
                    'The patron already has %s bookings of %s rooms to come.',
                    c.max_bookings, lower(c.name)));
            END IF;
            v_week := tstzrange(date_trunc('week', v_ls) AT TIME ZONE v_tz,
                                (date_trunc('week', v_ls) + interval '1 week') AT TIME ZONE v_tz);
            v_month := tstzrange(date_trunc('month', v_ls) AT TIME ZONE v_tz,
                                 (date_trunc('month', v_ls) + interval '1 month') AT TIME ZONE v_tz);
            IF c.max_hours_week > 0 THEN
                v_hours := room_patron_hours(p_patron, c.code, v_week) + v_minutes / 60;
                IF v_hours > c.max_hours_week THEN
                    PERFORM room_refuse('CR422', 'patron_limit', format(
                        'That would make %s hours of %s rooms in the week; at most %s.',
                        round(v_hours, 1), lower(c.name), c.max_hours_week));
                END IF;
            END IF;
            IF c.max_hours_month > 0 THEN
                v_hours := room_patron_hours(p_patron, c.code, v_month) + v_minutes / 60;
                IF v_hours > c.max_hours_month THEN
                    PERFORM room_refuse('CR422', 'patron_limit', format(
                        'That would make %s hours of %s rooms in the month; at most %s.',
                        round(v_hours, 1), lower(c.name), c.max_hours_month));
                END IF;
            END IF;
            IF c.gap_minutes > 0 AND EXISTS (
                SELECT 1 FROM room_booking k JOIN room r ON r.id = k.room_id
                WHERE k.patron_id = p_patron AND r.category = c.code AND room_live(k.status)
                  AND k.during && tstzrange(p_start - make_interval(mins => c.gap_minutes),
                                            p_end + make_interval(mins => c.gap_minutes))) THEN
                PERFORM room_refuse('CR422', 'booking_gap', format(
                    'The patron''s bookings of %s rooms need %s minutes between them.',
                    lower(c.name), c.gap_minutes));
            END IF;
        END IF;
    END IF;

    v_status := CASE WHEN c.needs_approval AND NOT p_override THEN 'tentative'
                     ELSE 'confirmed' END;
    v_blocked := tstzrange(p_start - make_interval(mins => c.setup_minutes),
                           p_end + make_interval(mins => c.cleanup_minutes));
    INSERT INTO room_booking (room_id, status, during, blocked, patron_id, group_name,
                              group_contact, program_session_id, purpose, attendees, series_id,
                              overridden, created_by)
    VALUES (p_room.id, v_status, v_during, v_blocked, p_patron, p_group, p_contact, p_session,
            coalesce(p_purpose, ''), p_attendees, p_series, p_override, p_staff)
    RETURNING id INTO v_id;
    -- Concurrent inserts into room_block that conflict would wait for each
    -- other (an exclusion constraint deadlocks then): one booking of a unit
    -- at a time, units in id order, taken last (after the patron's lock).
    -- The key is the unit's id negated: the negative keys of the one-bigint
    -- advisory lock space are room units' (other users take positive keys
    -- or the two-integer space), and every bigint id fits.
    PERFORM pg_advisory_xact_lock(-u)
    FROM unnest(room_units(p_room.id)) u ORDER BY u;
    BEGIN
        INSERT INTO room_block (booking_id, unit_id, blocked)
        SELECT v_id, u, v_blocked FROM unnest(room_units(p_room.id)) u;
    EXCEPTION WHEN exclusion_violation THEN
        PERFORM room_refuse('CR409', 'slot_taken', format(
            '%s is already booked at %s (with set-up and clean-up).', p_room.name,
            room_when(v_during)));
    END;
    IF v_status = 'confirmed' AND p_patron IS NOT NULL THEN
        PERFORM notice_queue(p_patron, 'room_confirmed', NULL, NULL, v_ls::date, NULL,
                             p_room.branch_id, v_id);
    END IF;
    RETURN v_id;
END
$$;

-- The row reporting one refused occurrence of a recurring booking or program session: made
-- false, the refusal's reason and message, the occurrence's local start and end, the other
-- columns NULL. p_type (a NULL of room_book_row or program_session_row) picks the row type, so
-- room_book and program_session_save report a refusal alike.
CREATE OR REPLACE FUNCTION room_refused_row(p_type anyelement, p_reason text, p_message text,
                                            p_at timestamp, p_length interval)
RETURNS anyelement
LANGUAGE sql STABLE AS $$
    SELECT jsonb_populate_record(p_type, jsonb_build_object(
        'made', false, 'reason', p_reason, 'message', p_message,
        'start', to_char(p_at, 'YYYY-MM-DD HH24:MI'),
        'end', to_char(p_at + p_length, 'YYYY-MM-DD HH24:MI')))
$$;

-- Book a room (RoomBook document), once per request key. One row per
-- occurrence. A single booking that is refused raises; a recurring one
-- reports each refused occurrence and makes the others.
CREATE OR REPLACE FUNCTION room_book(p_key uuid, p_staff bigint, p_workstation bigint,
                                     p_override_ok boolean, p_doc jsonb)
RETURNS SETOF room_book_row
LANGUAGE plpgsql AS $$
DECLARE
    v_stored jsonb;
    v_room room;
    v_override boolean := coalesce((p_doc ->> 'override')::boolean, false);
    v_card text := room_doc_text(p_doc, 'card', 40);
    v_group text := room_doc_text(p_doc, 'group_name', 200);
    v_contact text := room_doc_text(p_doc, 'group_contact', 200);
    v_session bigint := nullif(room_doc_bigint(p_doc, 'program_session_id'), 0);
    v_purpose text := room_doc_text(p_doc, 'purpose', 200);
    v_attendees integer := room_doc_int(p_doc, 'attendees');
    v_repeat text := room_doc_text(p_doc, 'repeat', 10);
    v_patron bigint;
    v_standing record;
    v_start timestamptz;
    v_end timestamptz;
    v_length interval;
    v_tz text := library_setting_text('timezone');
    v_series bigint;
    v_at timestamp;
    v_ids bigint[] := '{}';
    v_refused room_book_row[] := '{}';
    v_reason text;
    v_message text;
    v_result jsonb;
BEGIN
    v_stored := request_claim(p_key, p_staff, 'room_book');
    IF v_stored IS NOT NULL THEN
        RETURN QUERY SELECT * FROM jsonb_populate_recordset(NULL::room_book_row, v_stored);
        RETURN;
    END IF;
    IF v_override AND NOT coalesce(p_override_ok, false) THEN
        PERFORM room_refuse('CR403', 'override', 'Your role may not book beyond the rules.');
    END IF;
    SELECT * INTO v_room FROM room WHERE id = room_doc_bigint(p_doc, 'room_id');
    IF NOT FOUND THEN
        PERFORM room_refuse('CR404', 'room', format('There is no room %s.',
                                                    coalesce(p_doc ->> 'room_id', '(none)')));
    END IF;
    IF NOT v_room.active THEN
        PERFORM room_refuse('CR422', 'room_inactive',
                            format('%s is not taking bookings.', v_room.name));
    END IF;
    IF (v_card IS NOT NULL)::integer + (v_group IS NOT NULL)::integer
       + (v_session IS NOT NULL)::integer > 1 THEN
        PERFORM room_refuse('CR400', 'field:card', 'A booking is for a patron (card), a group '
                            'or a program session: one of them.');
    END IF;
    IF v_group IS NOT NULL AND v_contact IS NULL THEN
        PERFORM room_refuse('CR400', 'field:group_contact',
                            'A group booking needs the contact''s e-mail or phone.');
    END IF;
    IF v_card IS NULL AND v_group IS NULL AND v_session IS NULL
       AND v_room.bookable_by <> 'staff' AND NOT v_override THEN
        PERFORM room_refuse('CR400', 'field:card', format(
            'Say who %s is for: a patron''s card, a group or a program session (staff use is '
            'for staff rooms, or with override).', v_room.name));
    END IF;
    -- A session's room is booked with its session (program_session_save:
    -- the program's branch, the scope, the session's booking_id).
    IF v_session IS NOT NULL THEN
        PERFORM room_refuse('CR400', 'field:program_session_id',
                            'Book a program session''s room with program session add.');
    END IF;
    IF v_card IS NOT NULL THEN
        v_patron := patron_resolve_strict(v_card);
        v_standing := patron_standing(v_patron);
        IF v_standing.expired THEN
            PERFORM room_refuse('CR422', 'patron_expired', 'The patron''s card has expired.');
        END IF;
        IF v_standing.blocked THEN
            PERFORM room_refuse('CR422', 'patron_blocked', 'The patron is blocked.');
        END IF;
    END IF;
    IF v_room.bookable_by = 'staff' AND (v_patron IS NOT NULL OR v_group IS NOT NULL) THEN
        PERFORM room_refuse('CR422', 'staff_only',
                            format('%s is for staff and programs only.', v_room.name));
    END IF;
    IF v_attendees IS NOT NULL AND (v_attendees < 0 OR v_attendees > v_room.capacity) THEN
        IF v_attendees < 0 THEN
            PERFORM room_refuse('CR400', 'field:attendees', 'attendees may not be negative.');
        END IF;
        PERFORM room_refuse('CR422', 'over_capacity', format('%s holds %s people.', v_room.name,
                                                             v_room.capacity));
    END IF;
    v_start := local_ts(p_doc ->> 'start', 'start');
    v_end := local_ts(p_doc ->> 'end', 'end');
    IF v_end <= v_start THEN
        PERFORM room_refuse('CR400', 'field:end', 'The end must be after the start.');
    END IF;

    IF v_repeat IS NULL THEN
        v_ids := ARRAY[room_book_one(p_staff, v_room, v_start, v_end, v_patron, v_group,
                                     v_contact, v_session, v_purpose, v_attendees, v_override,
                                     NULL)];
    ELSE
        -- each occurrence at the same local times; its own subtransaction
        v_length := (v_end AT TIME ZONE v_tz) - (v_start AT TIME ZONE v_tz);
        v_series := nextval('room_series');
        FOR v_at IN SELECT * FROM room_occurrences(v_start AT TIME ZONE v_tz, v_repeat,
                                                   local_day(p_doc ->> 'until', 'until', NULL))
        LOOP
            BEGIN
                v_ids := v_ids || room_book_one(
                    p_staff, v_room, local_ts(to_char(v_at, 'YYYY-MM-DD HH24:MI'), 'start'),
                    local_ts(to_char(v_at + v_length, 'YYYY-MM-DD HH24:MI'), 'end'), v_patron,
                    v_group, v_contact, v_session, v_purpose, v_attendees, v_override,
                    v_series);
            EXCEPTION WHEN SQLSTATE 'CR409' OR SQLSTATE 'CR422' OR SQLSTATE 'CR400' THEN
                GET STACKED DIAGNOSTICS v_reason = PG_EXCEPTION_DETAIL,
                                        v_message = MESSAGE_TEXT;
                v_refused := v_refused || room_refused_row(NULL::room_book_row, v_reason,
                                                           v_message, v_at, v_length);
            END;
        END LOOP;
    END IF;

    SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.start, x.made DESC), '[]') INTO v_result
    FROM (SELECT true AS made, NULL::text AS reason, NULL::text AS message, b.*
          FROM room_booking_rows(v_ids) b
          UNION ALL
          SELECT * FROM unnest(v_refused)) x;
    PERFORM request_store(p_key, v_result);
    RETURN QUERY SELECT * FROM jsonb_populate_recordset(NULL::room_book_row, v_result);
END
$$;

-- Cancel one live booking (its blocks go, the room is free again).
CREATE OR REPLACE FUNCTION room_cancel_one(p_booking bigint, p_reason text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    k room_booking;
BEGIN
    UPDATE room_booking SET status = 'cancelled', cancelled_at = now(), cancel_reason = p_reason
    WHERE id = p_booking AND room_live(status)
    RETURNING * INTO k;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    DELETE FROM room_block WHERE booking_id = p_booking;
    -- what was queued about it is moot now
    DELETE FROM notice WHERE booking_id = p_booking AND status = 'pending'
                         AND kind IN ('room_confirmed', 'room_reminder');
    IF k.patron_id IS NOT NULL AND upper(k.during) > now() THEN
        PERFORM notice_queue(k.patron_id, 'room_cancelled', NULL, NULL,
                             library_local_date(lower(k.during)), NULL,
                             (SELECT branch_id FROM room WHERE id = k.room_id), k.id);
    END IF;
END
$$;

-- cancel, checkin, approve or deny a booking, once per request key.
CREATE OR REPLACE FUNCTION room_change(p_key uuid, p_staff bigint, p_workstation bigint,
                                       p_scope integer, p_booking bigint, p_action text,
                                       p_reason text, p_series boolean) RETURNS SETOF booking_out
LANGUAGE plpgsql AS $$
DECLARE
    v_stored jsonb;
    k room_booking;
    c room_category;
    v_branch integer;
    v_ids bigint[];
    v_reason text := nullif(btrim(p_reason), '');
    v_early integer := library_setting_text('room_checkin_early_minutes')::integer;
    v_result jsonb;
    v_until timestamptz;
BEGIN
    v_stored := request_claim(p_key, p_staff, 'room_change');
    IF v_stored IS NOT NULL THEN
        RETURN QUERY SELECT * FROM jsonb_populate_recordset(NULL::booking_out, v_stored);
        RETURN;
    END IF;
    IF p_action IS NULL OR p_action NOT IN ('cancel', 'checkin', 'approve', 'deny') THEN
        PERFORM room_refuse('CR400', 'field:action', 'action is cancel, checkin, approve or deny.');
    END IF;
    IF length(v_reason) > 200 THEN
        PERFORM room_refuse('CR400', 'field:reason', 'The reason is at most 200 characters.');
    END IF;
    SELECT * INTO k FROM room_booking WHERE id = p_booking FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM room_refuse('CR404', 'booking', format('There is no room booking %s.', p_booking));
    END IF;
    SELECT r.branch_id INTO v_branch FROM room r WHERE r.id = k.room_id;
    SELECT cat.* INTO c
    FROM room r JOIN room_category cat ON cat.code = r.category WHERE r.id = k.room_id;
    PERFORM room_scope_check(p_scope, v_branch);
    v_ids := ARRAY[k.id];

    IF p_action = 'cancel' THEN
        IF v_reason IS NULL THEN
            PERFORM room_refuse('CR400', 'field:reason', 'Say why the booking is cancelled.');
        END IF;
        IF NOT room_live(k.status) THEN
            PERFORM room_refuse('CR409', 'booking_closed',
                                format('The booking is %s already.', k.status));
        END IF;
        IF coalesce(p_series, false) AND k.series_id IS NOT NULL THEN
            SELECT array_agg(x.id ORDER BY x.id) INTO v_ids FROM (
                SELECT b.id FROM room_booking b
                WHERE b.series_id = k.series_id AND room_live(b.status)
                  AND lower(b.during) >= lower(k.during)
                ORDER BY b.id FOR UPDATE) x;
        END IF;
        PERFORM room_cancel_one(i, v_reason) FROM unnest(v_ids) i;
    ELSIF p_action = 'checkin' THEN
        IF k.status <> 'confirmed' THEN
            PERFORM room_refuse('CR409', 'booking_closed',
                                format('The booking is %s, not confirmed.', k.status));
        END IF;
        -- until the release (or the end, for a category without check-in)
        v_until := CASE WHEN c.checkin_minutes > 0
                        THEN lower(k.during) + make_interval(mins => c.checkin_minutes)
                        ELSE upper(k.during) END;
        IF now() < lower(k.during) - make_interval(mins => v_early) OR now() >= v_until THEN
            PERFORM room_refuse('CR422', 'checkin_window', format(
                'Check-in for this booking is from %s until %s.',
                local_hhmm(lower(k.during) - make_interval(mins => v_early)),
                local_hhmm(v_until)));
        END IF;
        UPDATE room_booking SET status = 'checked_in', checked_in_at = now() WHERE id = k.id;
    ELSE
        IF k.status <> 'tentative' THEN
            PERFORM room_refuse('CR409', 'booking_closed',
                                format('The booking is %s, not waiting for approval.', k.status));
        END IF;
        IF p_action = 'approve' THEN
            UPDATE room_booking SET status = 'confirmed' WHERE id = k.id;
            IF k.patron_id IS NOT NULL THEN
                PERFORM notice_queue(k.patron_id, 'room_confirmed', NULL, NULL,
                                     library_local_date(lower(k.during)), NULL, v_branch, k.id);
            END IF;
        ELSE
            PERFORM room_cancel_one(k.id, coalesce(v_reason, 'not approved'));
        END IF;
    END IF;

    SELECT coalesce(jsonb_agg(to_jsonb(b)), '[]') INTO v_result FROM room_booking_rows(v_ids) b;
    PERFORM request_store(p_key, v_result);
    RETURN QUERY SELECT * FROM jsonb_populate_recordset(NULL::booking_out, v_result);
END
$$;

-- Bookings by patron, room or branch over local days p_from..p_to (default
-- today .. +30), live ones only unless p_all; by start.
CREATE OR REPLACE FUNCTION room_bookings(p_card text, p_room bigint, p_branch text, p_from text,
                                         p_to text, p_all boolean, p_limit integer)
RETURNS SETOF booking_out
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_patron bigint;
    v_branch integer := room_branch_id(p_branch, 'branch');
    v_from date := local_day(p_from, 'from', library_today());
    v_to date := local_day(p_to, 'to', v_from + 30);
    v_limit integer := coalesce(nullif(p_limit, 0), 200);
BEGIN
    IF v_limit NOT BETWEEN 1 AND 2000 THEN
        PERFORM room_refuse('CR400', 'field:limit', 'limit is 1 to 2000.');
    END IF;
    IF v_to < v_from OR v_to - v_from > 366 THEN
        PERFORM room_refuse('CR400', 'field:to', 'to is on or after from, at most a year later.');
    END IF;
    IF coalesce(p_card, '') <> '' THEN
        v_patron := patron_resolve_strict(p_card);
    END IF;
    RETURN QUERY SELECT * FROM room_booking_rows(ARRAY(
        SELECT k.id FROM room_booking k JOIN room r ON r.id = k.room_id
        WHERE (v_patron IS NULL OR k.patron_id = v_patron)
          AND (p_room IS NULL OR p_room = 0 OR k.room_id = p_room)
          AND (v_branch IS NULL OR r.branch_id = v_branch)
          AND (coalesce(p_all, false) OR room_live(k.status))
          AND k.during && tstzrange(local_at(v_from, '00:00'), local_at(v_to + 1, '00:00'))
        ORDER BY lower(k.during), k.id LIMIT v_limit));
END
$$;

CREATE OR REPLACE FUNCTION room_patron_no_shows(p_card text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT pc.room_no_shows FROM patron_circ pc
                     WHERE pc.patron_id = patron_resolve_strict(p_card)), 0)
$$;

-- ---------------------------------------------------------------- the periodic job

-- Run by the daemon's rooms timer. Each step is idempotent and reads only
-- partial indexes, so a run with nothing to do is cheap:
--   released: confirmed patron or group bookings of a category with check-in,
--     not checked in by start + checkin_minutes: no_show, the room free again,
--     the patron's no-show count up (program and staff bookings are not
--     released: nobody checks them in);
--   completed: live bookings whose end has passed (tentative ones past their
--     start are cancelled: not approved in time);
--   reminded: room_reminder queued once for confirmed patron bookings
--     starting within room_reminder_hours;
--   anonymised: bookings ended more than room_booking_retention_days ago lose
--     the patron and the group's contact (the counts stay); their notices
--     and room blocks are deleted.
CREATE OR REPLACE FUNCTION rooms_tick(OUT released integer, OUT completed integer,
                                      OUT reminded integer, OUT anonymised integer)
RETURNS record
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_ids bigint[];
BEGIN
    WITH gone AS (
        UPDATE room_booking k SET status = 'no_show', released_at = now()
        FROM room r JOIN room_category c ON c.code = r.category
        WHERE r.id = k.room_id AND k.status = 'confirmed' AND c.checkin_minutes > 0
          AND (k.patron_id IS NOT NULL OR k.group_name IS NOT NULL)
          AND lower(k.during) <= now() - make_interval(mins => c.checkin_minutes)
          AND lower(k.during) < now()
        RETURNING k.id, k.patron_id)
    SELECT coalesce(array_agg(id), '{}') INTO v_ids FROM gone;
    released := cardinality(v_ids);
    IF released > 0 THEN
        DELETE FROM room_block WHERE booking_id = ANY (v_ids);
        INSERT INTO patron_circ AS pc (patron_id, room_no_shows)
        SELECT k.patron_id, count(*) FROM room_booking k
        WHERE k.id = ANY (v_ids) AND k.patron_id IS NOT NULL GROUP BY k.patron_id
        ON CONFLICT (patron_id) DO UPDATE SET room_no_shows = pc.room_no_shows
                                                              + excluded.room_no_shows;
        DELETE FROM notice WHERE booking_id = ANY (v_ids) AND status = 'pending';
    END IF;

    WITH done AS (
        UPDATE room_booking k SET status = 'completed'
        WHERE k.status IN ('confirmed', 'checked_in') AND lower(k.during) < now()
          AND upper(k.during) <= now()
        RETURNING 1)
    SELECT count(*) INTO completed FROM done;
    SELECT coalesce(array_agg(k.id), '{}') INTO v_ids FROM room_booking k
    WHERE k.status = 'tentative' AND lower(k.during) <= now();
    PERFORM room_cancel_one(i, 'not approved in time') FROM unnest(v_ids) i;

    SELECT coalesce(sum(notice_queue(k.patron_id, 'room_reminder', NULL, NULL,
                                     library_local_date(lower(k.during)), NULL, r.branch_id,
                                     k.id)), 0)
    INTO reminded
    FROM room_booking k JOIN room r ON r.id = k.room_id
    WHERE k.status = 'confirmed' AND k.patron_id IS NOT NULL
      AND lower(k.during) > now()
      AND lower(k.during) <= now() + make_interval(
              hours => library_setting_text('room_reminder_hours')::integer)
      AND NOT EXISTS (SELECT 1 FROM notice n
                      WHERE n.booking_id = k.id AND n.kind = 'room_reminder');

    WITH anon AS (
        UPDATE room_booking k SET patron_id = NULL, group_contact = NULL, anonymised = true
        WHERE NOT k.anonymised AND NOT room_live(k.status)
          AND upper(k.during) < now() - make_interval(
                  days => library_setting_text('room_booking_retention_days')::integer)
        RETURNING k.id)
    SELECT coalesce(array_agg(id), '{}') INTO v_ids FROM anon;
    anonymised := cardinality(v_ids);
    IF anonymised > 0 THEN
        -- Their notices (long sent) tie the patron to the room and the day;
        -- their blocks (completed bookings keep them) are past.
        DELETE FROM notice WHERE booking_id = ANY (v_ids);
        DELETE FROM room_block WHERE booking_id = ANY (v_ids);
    END IF;

    -- once a day: room_day_free moves on (last: the span lock is taken with
    -- nothing else to wait for after it)
    PERFORM room_free_span_move(false);
END
$$;
