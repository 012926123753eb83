-- Displays: copies on a theme at a place in a branch for a while (issue 13).
-- Saving and listing displays, scanning copies on and off, what a copy's
-- location says while it is on one (item_display_text: item rows of
-- server/catalog.c, catalog_search), and the lift report (display_report).
-- Called by server/displays.c (requests 335-339); the checkin route
-- "display" is decided in circ_checkin (circulation.sql) through
-- display_checkin_text. docs/DISPLAYS.md.
--
-- A display is planned before starts_on, running from starts_on to ends_on
-- (library local days, inclusive) and ended after ends_on, or from the
-- moment staff end it early (ended_at). Copies: display_item rows, open
-- (removed_at NULL) while the copy is on it. No patron identity anywhere.

-- ---------------------------------------------------------------- helpers

-- planned | running | ended, on the library's day p_today.
CREATE OR REPLACE FUNCTION display_status(d display, p_today date) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN d.ended_at IS NOT NULL OR d.ends_on < p_today THEN 'ended'
                WHEN d.starts_on > p_today THEN 'planned'
                ELSE 'running' END
$$;

-- "on display: THEME (place)" while copy p_item is on a display running
-- today and is there to be found: on the shelf (available) at the display's
-- branch. A copy checked out, in transit, withdrawn, lost or missing keeps
-- its open row (checkout does not take it off; checkin puts it back) but is
-- not on the display, so it does not read so. NULL otherwise. One probe of
-- display_item_open (nearly every copy has no open row); the display row,
-- then the item row (by its key) are read only for one that has. Two
-- statements, in that order: in one join the planner starts from the item
-- and scans the branch's displays. Item rows (G), search results (D) and
-- the pull list call it per row; PL/pgSQL keeps its plans for the session.
CREATE OR REPLACE FUNCTION item_display_text(p_item bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_today date := library_today();
    v_text text;
    v_branch integer;
BEGIN
    SELECT 'on display: ' || d.theme || ' (' || d.place || ')', d.branch_id
    INTO v_text, v_branch
    FROM display_item di
    JOIN display d ON d.id = di.display_id
    WHERE di.item_id = p_item AND di.removed_at IS NULL
      AND d.ended_at IS NULL AND d.starts_on <= v_today AND d.ends_on >= v_today
    ORDER BY d.starts_on DESC, d.id DESC
    LIMIT 1;
    IF v_text IS NULL OR NOT EXISTS (SELECT 1 FROM item i
                                     WHERE i.id = p_item AND i.status = 'available'
                                       AND i.current_branch_id = v_branch) THEN
        RETURN NULL;
    END IF;
    RETURN v_text;
END
$$;

-- At checkin: "THEME (place)" of the display running today at p_branch
-- that copy p_item is on; NULL otherwise (the common case: one probe of
-- display_item_open that finds nothing). A display at another branch does
-- not count: the copy goes home first. PL/pgSQL: its plan is kept for the
-- session, not made again at every checkin.
CREATE OR REPLACE FUNCTION display_checkin_text(p_item bigint, p_branch integer) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_today date := library_today();
BEGIN
    RETURN (SELECT d.theme || ' (' || d.place || ')'
            FROM display_item di
            JOIN display d ON d.id = di.display_id
            WHERE di.item_id = p_item AND di.removed_at IS NULL AND d.branch_id = p_branch
              AND d.ended_at IS NULL AND d.starts_on <= v_today AND d.ends_on >= v_today
            ORDER BY d.starts_on DESC, d.id DESC
            LIMIT 1);
END
$$;

-- A display as its Display message, column order of display_get.
CREATE OR REPLACE FUNCTION display_out(d display)
RETURNS TABLE (id bigint, branch_code text, place text, theme text, curator text,
               starts_on text, ends_on text, status text, copies integer, note text,
               version integer)
LANGUAGE sql STABLE AS $$
    SELECT d.id, (SELECT b.code FROM branch b WHERE b.id = d.branch_id), d.place, d.theme,
           (SELECT s.username FROM staff s WHERE s.id = d.curator_id),
           to_char(d.starts_on, 'YYYY-MM-DD'), to_char(d.ends_on, 'YYYY-MM-DD'),
           display_status(d, library_today()),
           (SELECT count(*)::integer FROM display_item di
            WHERE di.display_id = d.id AND di.removed_at IS NULL),
           d.note, d.version
$$;

-- The display p_id, locked when p_lock; CR404 display when there is none.
CREATE OR REPLACE FUNCTION display_find(p_id bigint, p_lock boolean) RETURNS display
LANGUAGE plpgsql AS $$
DECLARE
    d display;
BEGIN
    IF p_lock THEN
        SELECT * INTO d FROM display x WHERE x.id = p_id FOR UPDATE;
    ELSE
        SELECT * INTO d FROM display x WHERE x.id = p_id;
    END IF;
    IF d.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'display',
            MESSAGE = format('There is no display %s.', coalesce(p_id::text, '(none)'));
    END IF;
    RETURN d;
END
$$;

-- The display's last moment counted: the end of ends_on (local), or when
-- staff ended it early.
CREATE OR REPLACE FUNCTION display_end_at(d display) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT least(local_at(d.ends_on + 1, '00:00'), coalesce(d.ended_at, 'infinity'))
$$;

-- Checkouts and in-house uses of copies p_items at branch p_branch in
-- [p_from, p_to), per copy. Read through circ_event_branch (branch_id, at):
-- circ_event has no index by item and gets none (the circulation path must
-- not get slower). A display is about the branch's shelves, so only the
-- branch's own events count (a hold filled elsewhere is not a display's use).
-- The copies are joined (hashed), not searched with = ANY: a control group
-- has thousands of copies.
CREATE OR REPLACE FUNCTION display_uses(p_branch integer, p_items bigint[], p_from timestamptz,
                                        p_to timestamptz)
RETURNS TABLE (item_id bigint, action text, at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT e.item_id, e.action, e.at FROM circ_event e
    WHERE e.branch_id = p_branch AND e.at >= p_from AND e.at < p_to
      AND e.action IN ('checkout', 'in_house_use')
      AND e.item_id IN (SELECT x.id FROM unnest(p_items) AS x (id))
$$;

-- The copies of display d, present and past, as DisplayItem rows in shelf
-- order (on it first); p_item: that copy's rows only. checkouts: during the
-- display so far, each copy counted while it was on it.
CREATE OR REPLACE FUNCTION display_item_rows(d display, p_item bigint)
RETURNS TABLE (barcode text, title text, call_number text, added_on text, removed_on text,
               status text, checkouts integer)
LANGUAGE sql STABLE AS $$
    WITH r AS (
        SELECT di.*, greatest(di.added_at, local_at(d.starts_on, '00:00')) AS w_from,
               least(coalesce(di.removed_at, 'infinity'), display_end_at(d), now()) AS w_to
        FROM display_item di
        WHERE di.display_id = d.id AND (p_item IS NULL OR di.item_id = p_item)
    ), ev AS (
        SELECT u.item_id, u.action, u.at FROM display_uses(
            d.branch_id, ARRAY(SELECT DISTINCT r.item_id FROM r),
            (SELECT min(r.w_from) FROM r), (SELECT max(r.w_to) FROM r)) u
    )
    SELECT i.barcode, b.title, i.call_number,
           to_char(library_local_date(r.added_at), 'YYYY-MM-DD'),
           coalesce(to_char(library_local_date(r.removed_at), 'YYYY-MM-DD'), ''),
           i.status::text,
           (SELECT count(*)::integer FROM ev e
            WHERE e.item_id = r.item_id AND e.action = 'checkout' AND e.at >= r.w_from
              AND e.at < r.w_to)
    FROM r JOIN item i ON i.id = r.item_id JOIN bib b ON b.id = i.bib_id
    ORDER BY r.removed_at IS NOT NULL, lower(i.call_number), i.barcode, r.added_at
$$;

-- ---------------------------------------------------------------- displays

-- CR409 on_display when a copy on display d (open row) is also open on
-- another display, not ended, whose days overlap d's: the check of
-- display_item_add, for a date change of display_save.
CREATE OR REPLACE FUNCTION display_days_check(d display, p_today date) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v record;
BEGIN
    SELECT i.barcode, o.id, o.theme, o.place INTO v
    FROM display_item di
    JOIN display_item x ON x.item_id = di.item_id AND x.removed_at IS NULL
                       AND x.display_id <> d.id
    JOIN display o ON o.id = x.display_id
    JOIN item i ON i.id = di.item_id
    WHERE di.display_id = d.id AND di.removed_at IS NULL
      AND display_status(o, p_today) <> 'ended'
      AND o.starts_on <= d.ends_on AND o.ends_on >= d.starts_on
    ORDER BY i.barcode
    LIMIT 1;
    IF v.id IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'on_display',
            MESSAGE = format('On those days %s would be on two displays: it is also on '
                             'display %s, %s (%s); take it off one first.',
                             v.barcode, v.id, v.theme, v.place);
    END IF;
END
$$;

-- DisplaySave as jsonb ({"display": {...}} or the Display itself). Without
-- id: a new display (branch_code, place, theme, starts_on, ends_on needed;
-- curator: a staff user name, default p_staff). With id: an edit of the
-- fields given, at the version read (stale_version otherwise; p_end_now
-- alone needs no version, and checks one given); a display
-- does not move to another branch, and one ended early is not edited
-- (display_ended). p_end_now ends it now: ends_on today (a planned one: its
-- first day) and ended_at set, so its copies are no longer on display (their
-- rows stay open: the record of what was on it at its end). One admin_audit
-- row per save.
CREATE OR REPLACE FUNCTION display_save(p_staff bigint, p_workstation bigint, p_scope integer,
                                        p_doc jsonb, p_end_now boolean)
RETURNS TABLE (id bigint, branch_code text, place text, theme text, curator text,
               starts_on text, ends_on text, status text, copies integer, note text,
               version integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_doc jsonb := CASE WHEN jsonb_typeof(p_doc -> 'display') = 'object' THEN p_doc -> 'display'
                        ELSE p_doc END;
    v_id bigint := nullif(v_doc ->> 'id', '')::bigint;
    v_branch integer;
    v_curator bigint;
    v_today date := library_today();
    v_old display;
    v_new display;
    v_action text;
BEGIN
    IF nullif(v_doc ->> 'branch_code', '') IS NOT NULL THEN
        SELECT b.id INTO v_branch FROM branch b WHERE b.code = upper(v_doc ->> 'branch_code');
        IF v_branch IS NULL THEN
            PERFORM field_refuse('branch_code',
                format('There is no branch with code %s.', v_doc ->> 'branch_code'));
        END IF;
    END IF;
    IF nullif(v_doc ->> 'curator', '') IS NOT NULL THEN
        SELECT s.id INTO v_curator FROM staff s WHERE s.username = lower(v_doc ->> 'curator');
        IF v_curator IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'staff',
                MESSAGE = format('No staff account has user name %s (the curator).',
                                 v_doc ->> 'curator');
        END IF;
    END IF;
    IF length(v_doc ->> 'place') NOT BETWEEN 1 AND 100 THEN
        PERFORM field_refuse('place', 'A place is 1-100 characters, e.g. "front window".');
    END IF;
    IF length(v_doc ->> 'theme') NOT BETWEEN 1 AND 100 THEN
        PERFORM field_refuse('theme', 'A theme is 1-100 characters.');
    END IF;
    IF length(v_doc ->> 'note') > 500 THEN
        PERFORM field_refuse('note', 'A note is at most 500 characters.');
    END IF;

    IF v_id IS NULL THEN
        IF coalesce(p_end_now, false) THEN
            PERFORM field_refuse('id', 'Only a saved display can be ended: give its id.');
        END IF;
        IF v_branch IS NULL THEN
            PERFORM field_refuse('branch_code', 'A new display needs its branch.');
        END IF;
        PERFORM branch_scope_check(p_scope, v_branch, 'make displays at');
        IF coalesce(v_doc ->> 'place', '') = '' THEN
            PERFORM field_refuse('place', 'A new display needs its place, e.g. "front window".');
        END IF;
        IF coalesce(v_doc ->> 'theme', '') = '' THEN
            PERFORM field_refuse('theme', 'A new display needs a theme.');
        END IF;
        IF coalesce(v_doc ->> 'starts_on', '') = '' THEN
            PERFORM field_refuse('starts_on', 'A new display needs its first day (starts_on).');
        END IF;
        IF coalesce(v_doc ->> 'ends_on', '') = '' THEN
            PERFORM field_refuse('ends_on', 'A new display needs its last day (ends_on).');
        END IF;
        v_new.branch_id := v_branch;
        v_new.place := v_doc ->> 'place';
        v_new.theme := v_doc ->> 'theme';
        v_new.curator_id := coalesce(v_curator, p_staff);
        v_new.starts_on := local_day(v_doc ->> 'starts_on', 'starts_on', NULL);
        v_new.ends_on := local_day(v_doc ->> 'ends_on', 'ends_on', NULL);
        v_new.note := coalesce(v_doc ->> 'note', '');
        v_action := 'display_create';
    ELSE
        v_old := display_find(v_id, true);
        PERFORM branch_scope_check(p_scope, v_old.branch_id, 'change displays of');
        IF v_branch IS NOT NULL AND v_branch <> v_old.branch_id THEN
            PERFORM field_refuse('branch_code',
                'A display stays at its branch; end it and make one at the other branch.');
        END IF;
        IF v_old.ended_at IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'display_ended',
                MESSAGE = format('Display %s (%s) was ended on %s; it can no longer be changed.',
                                 v_old.id, v_old.theme, library_local_date(v_old.ended_at));
        END IF;
        -- Ending it needs no version (nothing read is overwritten); an edit does.
        IF v_doc ->> 'version' IS NULL AND NOT coalesce(p_end_now, false)
           OR (v_doc ->> 'version') !~ '^[0-9]{1,9}$' THEN
            PERFORM field_refuse('version', 'An edit needs the version of the display you read.');
        END IF;
        IF (v_doc ->> 'version')::integer <> v_old.version THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'stale_version',
                MESSAGE = format('Someone else changed display %s since you read it; '
                                 'look at it again.', v_old.id);
        END IF;
        v_new := v_old;
        v_new.place := coalesce(nullif(v_doc ->> 'place', ''), v_old.place);
        v_new.theme := coalesce(nullif(v_doc ->> 'theme', ''), v_old.theme);
        v_new.curator_id := coalesce(v_curator, v_old.curator_id);
        v_new.starts_on := local_day(v_doc ->> 'starts_on', 'starts_on', v_old.starts_on);
        v_new.ends_on := local_day(v_doc ->> 'ends_on', 'ends_on', v_old.ends_on);
        v_new.note := coalesce(v_doc ->> 'note', v_old.note);
        v_action := 'display_edit';
        IF coalesce(p_end_now, false) THEN
            v_new.ends_on := CASE WHEN v_new.starts_on > v_today THEN v_new.starts_on
                                  ELSE least(v_new.ends_on, v_today) END;
            v_new.ended_at := now();
            v_action := 'display_end';
        END IF;
    END IF;
    IF v_new.ends_on < v_new.starts_on THEN
        PERFORM field_refuse('ends_on', format('The last day (%s) is before the first (%s).',
                                               v_new.ends_on, v_new.starts_on));
    END IF;
    -- New days must not put one of its copies on two displays at once (the
    -- rule display_item_add keeps when a copy is scanned on).
    -- (Ending it only shortens its days: no new overlap.)
    IF v_id IS NOT NULL AND NOT coalesce(p_end_now, false)
       AND (v_new.starts_on, v_new.ends_on) IS DISTINCT FROM (v_old.starts_on, v_old.ends_on) THEN
        PERFORM display_days_check(v_new, v_today);
    END IF;

    IF v_id IS NULL THEN
        INSERT INTO display (branch_id, place, theme, curator_id, starts_on, ends_on, note,
                             created_by)
        VALUES (v_new.branch_id, v_new.place, v_new.theme, v_new.curator_id, v_new.starts_on,
                v_new.ends_on, v_new.note, p_staff)
        RETURNING * INTO v_new;
    ELSE
        UPDATE display x SET place = v_new.place, theme = v_new.theme,
               curator_id = v_new.curator_id, starts_on = v_new.starts_on,
               ends_on = v_new.ends_on, note = v_new.note, ended_at = v_new.ended_at,
               version = x.version + 1, updated_at = now()
        WHERE x.id = v_id
        RETURNING * INTO v_new;
    END IF;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_staff, p_workstation, v_action, 'display/' || v_new.id,
            audit_diff(CASE WHEN v_old.id IS NOT NULL THEN to_jsonb(v_old) END,
                       to_jsonb(v_new), '{version,updated_at,created_at,created_by,id}'));
    RETURN QUERY SELECT * FROM display_out(v_new);
END
$$;

-- The displays of branch p_branch (NULL: every branch), running and planned
-- first (running: the soonest to end first; planned: the soonest to start),
-- then, with p_include_ended, the ended ones, the latest first.
CREATE OR REPLACE FUNCTION display_list(p_branch text, p_include_ended boolean)
RETURNS TABLE (id bigint, branch_code text, place text, theme text, curator text,
               starts_on text, ends_on text, status text, copies integer, note text,
               version integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_branch integer;
    v_today date := library_today();
BEGIN
    IF p_branch IS NOT NULL THEN
        SELECT b.id INTO v_branch FROM branch b WHERE b.code = upper(p_branch);
        IF v_branch IS NULL THEN
            PERFORM field_refuse('branch_code', format('There is no branch with code %s.',
                                                       p_branch));
        END IF;
    END IF;
    RETURN QUERY
    SELECT o.* FROM display d
    CROSS JOIN LATERAL display_out(d) o
    WHERE (v_branch IS NULL OR d.branch_id = v_branch)
      AND (coalesce(p_include_ended, false) OR display_status(d, v_today) <> 'ended')
    ORDER BY CASE display_status(d, v_today) WHEN 'running' THEN 0 WHEN 'planned' THEN 1
                                             ELSE 2 END,
             CASE WHEN display_status(d, v_today) = 'running' THEN d.ends_on END,
             CASE WHEN display_status(d, v_today) = 'planned' THEN d.starts_on END,
             CASE WHEN display_status(d, v_today) = 'ended' THEN d.ends_on END DESC,
             d.id;
END
$$;

-- One display (DisplayShow), CR404 display when there is none.
CREATE OR REPLACE FUNCTION display_get(p_id bigint)
RETURNS TABLE (id bigint, branch_code text, place text, theme text, curator text,
               starts_on text, ends_on text, status text, copies integer, note text,
               version integer)
LANGUAGE sql STABLE AS $$
    SELECT * FROM display_out(display_find(p_id, false))
$$;

-- The copies of display p_id (DisplayShow), present and past, shelf order.
CREATE OR REPLACE FUNCTION display_items(p_id bigint)
RETURNS TABLE (barcode text, title text, call_number text, added_on text, removed_on text,
               status text, checkouts integer)
LANGUAGE sql STABLE AS $$
    SELECT * FROM display_item_rows(display_find(p_id, false), NULL)
$$;

-- ---------------------------------------------------------------- copies

-- Scan copy p_barcode onto display p_display (or, p_remove, off it). Keyed
-- (p_key: a retry returns the stored answer). Refused: no such display
-- (display), another branch's display outside p_scope (branch), an ended
-- display (display_ended), no such copy (item_not_found), a copy owned by
-- another branch (not_owned_here), a copy on another display whose days
-- overlap this one's (on_display). A copy already on this display, or not on
-- it for a removal, changes nothing and says so. A copy's open rows on ended
-- displays are closed when it goes on a new one. Lock order: display, then
-- the copy. The change is audited on the item (display_add, display_remove).
-- One row: display_id, the DisplayItem columns, copies on it now, message.
CREATE OR REPLACE FUNCTION display_item_add(p_key uuid, p_staff bigint, p_workstation bigint,
                                            p_scope integer, p_display bigint,
                                            p_barcode text, p_remove boolean)
RETURNS TABLE (display_id bigint, barcode text, title text, call_number text, added_on text,
               removed_on text, status text, checkouts integer, copies integer, message text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_stored jsonb;
    d display;
    v_item item;
    v_today date := library_today();
    v_open display_item;
    v_other record;
    v_message text;
    v_row jsonb;
    v_label text;
BEGIN
    v_stored := request_claim(p_key, p_staff, 'display_item');
    IF v_stored IS NOT NULL THEN
        RETURN QUERY SELECT * FROM jsonb_to_record(v_stored) AS x (
                 display_id bigint, barcode text, title text, call_number text, added_on text,
                 removed_on text, status text, checkouts integer, copies integer, message text);
        RETURN;
    END IF;
    d := display_find(p_display, true);
    PERFORM branch_scope_check(p_scope, d.branch_id, 'change displays of');
    v_label := d.theme || ' (' || d.place || ')';
    IF display_status(d, v_today) = 'ended' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'display_ended',
            MESSAGE = format('Display %s, %s, has ended; copies can no longer be added '
                             'or taken off.', d.id, v_label);
    END IF;
    SELECT * INTO v_item FROM item i WHERE i.barcode = p_barcode FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'item_not_found',
            MESSAGE = format('No item has barcode %s.', coalesce(p_barcode, '(none)'));
    END IF;
    SELECT * INTO v_open FROM display_item di
    WHERE di.display_id = d.id AND di.item_id = v_item.id AND di.removed_at IS NULL;

    IF coalesce(p_remove, false) THEN
        IF v_open.id IS NULL THEN
            v_message := format('%s was not on %s: nothing changed.', v_item.barcode, v_label);
        ELSE
            UPDATE display_item x SET removed_at = greatest(now(), x.added_at),
                   removed_by = p_staff
            WHERE x.id = v_open.id;
            PERFORM audit_write(p_staff, p_workstation, 'item', v_item.id, 'display_remove',
                                jsonb_build_object('display', jsonb_build_object(
                                    'before', d.id, 'after', NULL)));
            v_message := format('Taken off %s.', v_label);
        END IF;
    ELSIF v_open.id IS NOT NULL THEN
        v_message := format('%s is already on %s: nothing changed.', v_item.barcode, v_label);
    ELSE
        -- A copy that is gone from the collection cannot be shelved on one.
        IF v_item.status IN ('withdrawn', 'lost', 'missing') THEN
            RAISE EXCEPTION USING ERRCODE = 'CR422', DETAIL = 'item_status',
                MESSAGE = format('%s is %s: it cannot go on a display.', v_item.barcode,
                                 v_item.status);
        END IF;
        IF v_item.owning_branch_id <> d.branch_id THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'not_owned_here',
                MESSAGE = format('%s belongs to %s, not to %s: only the branch''s own '
                                 'copies go on its displays.', v_item.barcode,
                                 (SELECT b.code FROM branch b WHERE b.id = v_item.owning_branch_id),
                                 (SELECT b.code FROM branch b WHERE b.id = d.branch_id));
        END IF;
        SELECT o.id, o.theme, o.place INTO v_other
        FROM display_item di JOIN display o ON o.id = di.display_id
        WHERE di.item_id = v_item.id AND di.removed_at IS NULL AND o.id <> d.id
          AND display_status(o, v_today) <> 'ended'
          AND o.starts_on <= d.ends_on AND o.ends_on >= d.starts_on
        LIMIT 1;
        IF v_other.id IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'on_display',
                MESSAGE = format('%s is on display %s, %s (%s), over the same days; '
                                 'take it off that one first.',
                                 v_item.barcode, v_other.id, v_other.theme, v_other.place);
        END IF;
        -- Its rows of ended displays are history now: closed at their end,
        -- so that the copy's open rows (the checkin probe) stay few.
        UPDATE display_item x
        SET removed_at = greatest(x.added_at, least(now(), display_end_at(o))),
            removed_by = p_staff
        FROM display o
        WHERE x.item_id = v_item.id AND x.removed_at IS NULL AND o.id = x.display_id
          AND display_status(o, v_today) = 'ended';
        INSERT INTO display_item (display_id, item_id, added_by)
        VALUES (d.id, v_item.id, p_staff);
        PERFORM audit_write(p_staff, p_workstation, 'item', v_item.id, 'display_add',
                            jsonb_build_object('display', jsonb_build_object(
                                'before', NULL, 'after', d.id)));
        v_message := format('On %s.', v_label);
    END IF;

    SELECT to_jsonb(x) INTO v_row FROM (
        SELECT d.id AS display_id, r.*,
               (SELECT count(*)::integer FROM display_item di
                WHERE di.display_id = d.id AND di.removed_at IS NULL) AS copies,
               v_message AS message
        FROM display_item_rows(d, v_item.id) r
        ORDER BY r.removed_on = '' DESC, r.removed_on DESC
        LIMIT 1) x;
    IF v_row IS NULL THEN
        -- Never on this display (a removal that changed nothing).
        v_row := jsonb_build_object(
            'display_id', d.id, 'barcode', v_item.barcode,
            'title', (SELECT b.title FROM bib b WHERE b.id = v_item.bib_id),
            'call_number', v_item.call_number, 'added_on', '', 'removed_on', '',
            'status', v_item.status, 'checkouts', 0,
            'copies', (SELECT count(*)::integer FROM display_item di
                       WHERE di.display_id = d.id AND di.removed_at IS NULL),
            'message', v_message);
    END IF;
    PERFORM request_store(p_key, v_row);
    RETURN QUERY SELECT * FROM jsonb_to_record(v_row) AS x (
                 display_id bigint, barcode text, title text, call_number text, added_on text,
                 removed_on text, status text, checkouts integer, copies integer, message text);
END
$$;

-- ---------------------------------------------------------------- the report

-- The age band of a copy published in p_pub_year ('YYYY' or '') on day
-- p_on: 0-2, 3-5, 6-10, 11-20, 21+ years, or unknown.
CREATE OR REPLACE FUNCTION display_age_band(p_pub_year text, p_on date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN coalesce(p_pub_year, '') !~ '^[0-9]{4}$' THEN 'unknown'
                ELSE CASE WHEN extract(year FROM p_on)::integer - p_pub_year::integer <= 2
                               THEN '0-2'
                          WHEN extract(year FROM p_on)::integer - p_pub_year::integer <= 5
                               THEN '3-5'
                          WHEN extract(year FROM p_on)::integer - p_pub_year::integer <= 10
                               THEN '6-10'
                          WHEN extract(year FROM p_on)::integer - p_pub_year::integer <= 20
                               THEN '11-20'
                          ELSE '21+' END END
$$;

-- The report's figures per stratum (collection, age band) of display d:
-- during [p_lo, p_hi), before: the same span p_shift earlier. Displayed
-- copies: each row of display_item counted while the copy was on it
-- (exposure in copy-days), and before over that same stretch shifted back.
-- Control: copies owned by the branch since before the before period, not
-- withdrawn, lost or missing, on no display in either period, of the strata
-- of the displayed copies (collection by item_collection with dewey_of and
-- item_audience of the copy's call number, else the bib's, as weeding.sql's
-- item_collections does; item_collection once per kind of copy, and only
-- for the age bands of the displayed copies), at most 2,000 per stratum in a fixed
-- pseudo-random order (hashint8 of the id: the same sample on every run).
-- Events read once (display_uses). PL/pgSQL so that the rules load before
-- weeding.sql's functions exist.
CREATE OR REPLACE FUNCTION display_strata(d display, p_lo timestamptz, p_hi timestamptz,
                                          p_shift interval)
RETURNS TABLE (collection text, age_band text, copies integer, exposure_days double precision,
               uses_during integer, uses_before integer, control_copies integer,
               control_during integer, control_before integer)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    -- Constants of the query, worked out once (not once per copy looked at).
    v_since date := library_local_date(p_lo - p_shift);
    v_bands text[];
    v_busy bigint[];
    v_froms numeric[];
    v_tos numeric[];
BEGIN
    -- The ends of the Dewey ranges of the rules in effect, sorted (dewey_to
    -- negated: width_bucket counts the bounds <= its operand): copies with
    -- the same count of dewey_from <= their number and of dewey_to >= it fit
    -- the same ranges (the control's classes below).
    SELECT coalesce(array_agg(r.dewey_from ORDER BY r.dewey_from)
                        FILTER (WHERE r.dewey_from IS NOT NULL), '{}'),
           coalesce(array_agg(-r.dewey_to ORDER BY -r.dewey_to)
                        FILTER (WHERE r.dewey_to IS NOT NULL), '{}')
    INTO v_froms, v_tos
    FROM crew_rules_in_effect(d.branch_id) r;
    SELECT array_agg(DISTINCT display_age_band(b.pub_year, d.starts_on)) INTO v_bands
    FROM display_item di JOIN item i ON i.id = di.item_id JOIN bib b ON b.id = i.bib_id
    WHERE di.display_id = d.id;
    SELECT coalesce(array_agg(DISTINCT x.item_id), '{}') INTO v_busy
    FROM display o JOIN display_item x ON x.display_id = o.id
    WHERE o.starts_on <= library_local_date(p_hi) AND o.ends_on >= v_since
      AND x.added_at < p_hi AND coalesce(x.removed_at, 'infinity') > p_lo - p_shift;
    RETURN QUERY
    WITH shown_rows AS MATERIALIZED (
        SELECT x.item_id, x.w_from, x.w_to FROM (
            SELECT di.item_id, greatest(di.added_at, p_lo) AS w_from,
                   least(coalesce(di.removed_at, 'infinity'), p_hi) AS w_to
            FROM display_item di WHERE di.display_id = d.id) x
        WHERE x.w_to > x.w_from
    ), shown AS MATERIALIZED (
        SELECT i.id,
               coalesce(item_collection(d.branch_id, dewey_of(k.call_number), i.location,
                                        item_audience(b.audience, k.call_number),
                                        b.literary_form), '') AS coll,
               display_age_band(b.pub_year, d.starts_on) AS band
        FROM item i JOIN bib b ON b.id = i.bib_id
        CROSS JOIN LATERAL (SELECT coalesce(nullif(i.call_number, ''), b.call_number)
                            AS call_number) k
        WHERE i.id IN (SELECT r.item_id FROM shown_rows r)
    ), cand AS MATERIALIZED (
        SELECT c0.*, c0.dewey = -1 AS k_none,
               coalesce(width_bucket(c0.dewey, v_froms), -1) AS k_from,
               coalesce(width_bucket(-c0.dewey, v_tos), -1) AS k_to,
               lower(c0.location) AS k_loc, c0.audience = 'juvenile' AS k_juv
        FROM (
        SELECT i.id, coalesce(dewey_of(k.call_number), -1) AS dewey, i.location,
               item_audience(b.audience, k.call_number) AS audience, b.literary_form,
               display_age_band(b.pub_year, d.starts_on) AS band
        FROM item i JOIN bib b ON b.id = i.bib_id
        CROSS JOIN LATERAL (SELECT coalesce(nullif(i.call_number, ''), b.call_number)
                            AS call_number) k
        WHERE i.owning_branch_id = d.branch_id
          AND i.status NOT IN ('withdrawn', 'lost', 'missing')
          AND i.date_added <= v_since
          AND display_age_band(b.pub_year, d.starts_on) = ANY (v_bands)
          AND i.id NOT IN (SELECT x.id FROM unnest(v_busy) AS x (id))
        OFFSET 0) c0
    ), strata AS MATERIALIZED (
        SELECT DISTINCT s.coll, s.band FROM shown s
    ), kinds AS MATERIALIZED (
        -- item_collection once per class of copy (the Dewey number's place
        -- among the rules' range ends, location, juvenile or not, literary
        -- form: every copy of a class fits the same rules, crew_fits reads
        -- nothing else), not once per copy or Dewey number; only the classes
        -- in a collection of the displayed copies.
        SELECT k.* FROM (
            SELECT k0.*, coalesce(item_collection(d.branch_id, nullif(k0.dewey, -1),
                                                  k0.location, k0.audience,
                                                  k0.literary_form), '') AS coll
            FROM (SELECT c.k_none, c.k_from, c.k_to, c.k_loc, c.k_juv, c.literary_form,
                         min(c.dewey) AS dewey, min(c.location) AS location,
                         min(c.audience) AS audience
                  FROM cand c
                  GROUP BY c.k_none, c.k_from, c.k_to, c.k_loc, c.k_juv,
                           c.literary_form) k0) k
        WHERE k.coll IN (SELECT t.coll FROM strata t)
    ), control AS MATERIALIZED (
        SELECT y.id, y.coll, y.band FROM (
            SELECT ck.id, ck.coll, ck.band,
                   row_number() OVER (PARTITION BY ck.coll, ck.band
                                      ORDER BY hashint8(ck.id), ck.id) AS n
            FROM (SELECT c.id, k.coll, c.band FROM kinds k
                  JOIN cand c ON c.k_none = k.k_none AND c.k_from = k.k_from
                             AND c.k_to = k.k_to AND c.k_loc = k.k_loc
                             AND c.k_juv = k.k_juv AND c.literary_form = k.literary_form
                  OFFSET 0) ck  -- the copies of the kinds first: few, once matched
            JOIN strata t ON t.coll = ck.coll AND t.band = ck.band) y
        WHERE y.n <= 2000
    ), ev AS MATERIALIZED (
        SELECT u.item_id, u.at FROM display_uses(
            d.branch_id,
            ARRAY(SELECT s.id FROM shown s UNION ALL SELECT c.id FROM control c),
            p_lo - p_shift, p_hi) u
    ), shown_figures AS (
        SELECT s.coll, s.band, count(DISTINCT s.id)::integer AS copies,
               sum(extract(epoch FROM r.w_to - r.w_from) / 86400.0)::double precision AS exposure,
               sum((SELECT count(*) FROM ev e WHERE e.item_id = r.item_id
                      AND e.at >= r.w_from AND e.at < r.w_to))::integer AS during,
               sum((SELECT count(*) FROM ev e WHERE e.item_id = r.item_id
                      AND e.at >= r.w_from - p_shift AND e.at < r.w_to - p_shift))::integer
                   AS before
        FROM shown_rows r JOIN shown s ON s.id = r.item_id
        GROUP BY s.coll, s.band
    ), control_figures AS (
        SELECT c.coll, c.band, count(*)::integer AS copies,
               coalesce(sum(u.during), 0)::integer AS during,
               coalesce(sum(u.before), 0)::integer AS before
        FROM control c
        LEFT JOIN (SELECT e.item_id,
                          count(*) FILTER (WHERE e.at >= p_lo) AS during,
                          count(*) FILTER (WHERE e.at < p_hi - p_shift) AS before
                   FROM ev e GROUP BY e.item_id) u ON u.item_id = c.id
        GROUP BY c.coll, c.band
    )
    SELECT f.coll, f.band, f.copies, f.exposure, f.during, f.before,
           coalesce(c.copies, 0), coalesce(c.during, 0), coalesce(c.before, 0)
    FROM shown_figures f
    LEFT JOIN control_figures c ON c.coll = f.coll AND c.band = f.band
    ORDER BY f.coll, f.band;
END
$$;

-- The lift of display p_id (DisplayReport): one row, the display's columns
-- (display_get), then during_from, during_to (ends_on, or today while it
-- runs), before_from, before_to (the same number of days just before; the
-- last three NULL for a display not started),
-- days, copies, uses_during, uses_before, control_copies, control_during,
-- control_before, the ratios (NULL when the denominator is 0), strata
-- ([{collection, age_band, copies, control_copies}]) and a note for a person.
-- Uses: checkouts and in-house uses at the branch (display_strata).
--   lift_vs_before  = uses_during / uses_before (the same copies, the same
--                     stretch of days before);
--   lift_vs_control = uses_during / what the control's rate per copy-day,
--                     stratum by stratum, predicts for the displayed copies'
--                     copy-days (strata without control copies left out of
--                     both);
--   control_change  = control_during / control_before (below 1: the display
--                     drew uses away from the rest of the shelves);
--   net_lift        = lift_vs_before / control_change.
CREATE OR REPLACE FUNCTION display_report(p_id bigint)
RETURNS TABLE (id bigint, branch_code text, place text, theme text, curator text,
               starts_on text, ends_on text, status text, copies integer, note text,
               version integer, during_from text, during_to text, before_from text,
               before_to text, days integer, shown_copies integer, uses_during integer,
               uses_before integer, control_copies integer, control_during integer,
               control_before integer, lift_vs_before double precision,
               lift_vs_control double precision, control_change double precision,
               net_lift double precision, strata jsonb, report_note text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    d display := display_find(p_id, false);
    v_today date := library_today();
    v_to date := least(d.ends_on, v_today);
    v_days integer := greatest(least(d.ends_on, v_today) - d.starts_on + 1, 0);
    v_shift interval;
    v_lo timestamptz := local_at(d.starts_on, '00:00');
    v_hi timestamptz;
    v_window double precision;
    s record;
    v_new integer;
    v_notes text[] := '{}';
BEGIN
    v_shift := make_interval(days => v_days);
    -- The during window [v_lo, v_hi): to now while it runs, to ended_at when
    -- ended early; never negative (a planned display ended early).
    v_hi := greatest(least(local_at(v_to + 1, '00:00'), display_end_at(d), now()), v_lo);
    IF v_days = 0 THEN
        v_hi := v_lo;
    END IF;
    -- Its length in days: the control's rate per copy-day is over this, as
    -- the displayed copies' exposure is (whole days would overstate it).
    v_window := extract(epoch FROM v_hi - v_lo) / 86400.0;
    SELECT coalesce(sum(f.copies), 0)::integer AS copies,
           coalesce(sum(f.uses_during), 0)::integer AS during,
           coalesce(sum(f.uses_before), 0)::integer AS before,
           coalesce(sum(f.control_copies), 0)::integer AS c_copies,
           coalesce(sum(f.control_during), 0)::integer AS c_during,
           coalesce(sum(f.control_before), 0)::integer AS c_before,
           sum(f.uses_during) FILTER (WHERE f.control_copies > 0) AS observed,
           sum(f.exposure_days * f.control_during / (f.control_copies * v_window))
               FILTER (WHERE f.control_copies > 0 AND v_window > 0) AS expected,
           coalesce(jsonb_agg(jsonb_build_object(
               'collection', f.collection, 'age_band', f.age_band, 'copies', f.copies,
               'control_copies', f.control_copies) ORDER BY f.collection, f.age_band)
               FILTER (WHERE f.collection IS NOT NULL), '[]') AS strata,
           count(*) FILTER (WHERE f.control_copies = 0) AS bare
    INTO s
    FROM display_strata(d, v_lo, v_hi, v_shift) f
    WHERE v_days > 0;

    IF display_status(d, v_today) = 'planned' THEN
        v_notes := v_notes || format('Planned: it starts on %s; nothing to measure yet.',
                                     d.starts_on);
    ELSIF display_status(d, v_today) = 'running' THEN
        v_notes := v_notes || 'Still running: the figures are to today.'::text;
    END IF;
    IF v_days > 0 AND s.copies < 10 THEN
        v_notes := v_notes || format('Only %s copies: read the lift with care.', s.copies);
    END IF;
    IF s.bare > 0 THEN
        v_notes := v_notes || format('%s of the strata have no control copies; they are '
                                     'left out of the lift against the control.', s.bare);
    END IF;
    IF v_days > 0 AND s.before = 0 THEN
        v_notes := v_notes || 'The copies had no uses before: no lift against before.'::text;
    END IF;
    -- A copy new to the shelves had no "before" to be used in.
    SELECT count(DISTINCT i.id) INTO v_new FROM display_item di JOIN item i ON i.id = di.item_id
    WHERE di.display_id = d.id AND i.date_added > d.starts_on - v_days;
    IF v_days > 0 AND v_new > 0 THEN
        v_notes := v_notes || format('%s of the copies were added to the collection after the '
                                     'period before began: their lift against before is '
                                     'overstated.', v_new);
    END IF;

    RETURN QUERY
    SELECT o.*, to_char(d.starts_on, 'YYYY-MM-DD'),
           CASE WHEN v_days > 0 THEN to_char(v_to, 'YYYY-MM-DD') END,
           CASE WHEN v_days > 0 THEN to_char(d.starts_on - v_days, 'YYYY-MM-DD') END,
           CASE WHEN v_days > 0 THEN to_char(d.starts_on - 1, 'YYYY-MM-DD') END,
           v_days, s.copies, s.during, s.before, s.c_copies, s.c_during, s.c_before,
           s.during::double precision / nullif(s.before, 0),
           s.observed::double precision / nullif(s.expected, 0),
           s.c_during::double precision / nullif(s.c_before, 0),
           (s.during::double precision / nullif(s.before, 0))
               / nullif(s.c_during::double precision / nullif(s.c_before, 0), 0),
           s.strata, array_to_string(v_notes, ' ')
    FROM display_out(d) o;
END
$$;
