-- Holds: placing, changing (suspend, cancel, pickup branch, ...), listing
-- (hold_out, hold_list), not-found copies, merging two patrons' holds, and the
-- triggers that keep a hold row's patron and closing time right. Called by
-- server/holds.c.

-- Privacy, as for loans: when a hold ends, who asked for the title is
-- forgotten unless the patron chose to keep a reading history. Statistics
-- keep the hold (title, branch, times) without the person.
CREATE OR REPLACE FUNCTION hold_forget_patron() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('filled', 'cancelled', 'expired') AND NEW.patron_id IS NOT NULL
       AND NOT (SELECT keep_history FROM patron WHERE id = NEW.patron_id) THEN
        NEW.patron_id := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER hold_forget_patron BEFORE INSERT OR UPDATE OF status ON hold
    FOR EACH ROW EXECUTE FUNCTION hold_forget_patron();

-- Merging patrons: holds follow the kept record. Where both held the same
-- title, the hold further along stays (a copy on the hold shelf, then one in
-- transit, then the earlier place in the queue) and the other is cancelled.
CREATE OR REPLACE FUNCTION hold_merge(p_keep bigint, p_merge bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT m.bib_id,
               CASE WHEN (hold_stage(m.status), k.placed_at, k.id)
                         > (hold_stage(k.status), m.placed_at, m.id)
                    THEN m.id ELSE k.id END AS winner,
               CASE WHEN (hold_stage(m.status), k.placed_at, k.id)
                         > (hold_stage(k.status), m.placed_at, m.id)
                    THEN k.id ELSE m.id END AS loser
        FROM hold m JOIN hold k ON k.bib_id = m.bib_id
        WHERE m.patron_id = p_merge AND k.patron_id = p_keep
          AND m.status IN ('waiting', 'in_transit', 'ready')
          AND k.status IN ('waiting', 'in_transit', 'ready')
        ORDER BY m.bib_id
    LOOP
        PERFORM 1 FROM bib WHERE id = r.bib_id FOR UPDATE;
        -- A copy set aside for the loser goes on the clearing list (or is
        -- routed again at its next scan), as with any cancelled hold.
        UPDATE hold SET status = 'cancelled', cancel_reason = 'merged: duplicate of hold ' || r.winner,
            closed_at = now(), target_item_id = NULL
        WHERE id = r.loser;
        PERFORM hold_retarget(r.bib_id);
    END LOOP;
    UPDATE hold SET patron_id = p_keep WHERE patron_id = p_merge;
END
$$;

-- How far along a live hold is: on the shelf, travelling, waiting.
CREATE OR REPLACE FUNCTION hold_stage(p_status text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_status WHEN 'ready' THEN 2 WHEN 'in_transit' THEN 1 ELSE 0 END
$$;

-- patron_merge calls hold_merge for the hold rows (patron_merge_handler,
-- migrations/005_patrons.sql). A registration, not data: kept with its rule.
INSERT INTO patron_merge_handler (table_name, handler) VALUES ('hold', 'hold_merge')
ON CONFLICT (table_name) DO UPDATE SET handler = EXCLUDED.handler;

CREATE OR REPLACE FUNCTION hold_out(p_ids bigint[]) RETURNS SETOF hold_row
LANGUAGE sql STABLE AS $$
    SELECT h.id, coalesce(p.card, ''), coalesce(patron_short_name(p), ''), h.bib_id, b.title,
           hi.barcode, pb.code,
           api_time(h.placed_at), h.not_needed_after::text, h.suspended_until::text,
           h.status,
           CASE WHEN h.status = 'waiting' THEN
               (SELECT count(*) FROM hold q WHERE q.bib_id = h.bib_id AND q.status = 'waiting'
                  AND (q.placed_at, q.id) <= (h.placed_at, h.id))::integer END,
           ci.barcode, h.shelf_expires_on::text, ti.barcode, tb.code, h.cancel_reason
    FROM unnest(p_ids) WITH ORDINALITY AS x(hid, n)
    JOIN hold h ON h.id = x.hid
    LEFT JOIN patron p ON p.id = h.patron_id  -- NULL once a closed hold is forgotten
    JOIN bib b ON b.id = h.bib_id
    JOIN branch pb ON pb.id = h.pickup_branch_id
    LEFT JOIN item hi ON hi.id = h.item_id
    LEFT JOIN item ci ON ci.id = h.captured_item_id
    LEFT JOIN item ti ON ti.id = h.target_item_id
    LEFT JOIN branch tb ON tb.id = ti.current_branch_id
    ORDER BY x.n
$$;

-- A patron's holds (with p_all, also the closed ones kept by their choice).
CREATE OR REPLACE FUNCTION hold_list(p_card text, p_all boolean) RETURNS SETOF hold_row
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_patron bigint := patron_resolve(p_card, NULL);
BEGIN
    IF v_patron IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'patron_not_found',
            MESSAGE = format('No patron has card %s.', p_card);
    END IF;
    RETURN QUERY SELECT * FROM hold_out(ARRAY(
        SELECT h.id FROM hold h
        WHERE h.patron_id = v_patron
          AND (p_all OR h.status IN ('waiting', 'in_transit', 'ready'))
        ORDER BY h.placed_at, h.id));
END
$$;

-- Place a hold for p_card on title p_bib (or on the copy p_item_barcode),
-- picked up at p_pickup: the patron's limits and standing, one live hold per
-- patron and title, and the queue's first target. The time of placing is
-- taken after its locks.
CREATE OR REPLACE FUNCTION hold_place(p_key uuid, p_staff bigint, p_branch integer, p_card text,
                           p_bib bigint, p_item_barcode text, p_pickup text,
                           p_not_after date, p_suspend date)
RETURNS SETOF hold_row
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    v_patron patron;
    v_item item;
    v_bib bigint := p_bib;
    v_pickup integer;
    v_max integer;
    v_active integer;
    v_hold hold;
    v_standing record;
BEGIN
    SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'hold_place');
    IF v_key.stored IS NOT NULL THEN
        RETURN QUERY SELECT * FROM hold_out(ARRAY[(v_key.stored ->> 'id')::bigint]);
        RETURN;
    END IF;
    SELECT * INTO v_patron FROM patron WHERE id = patron_resolve(p_card, NULL);
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'patron_not_found',
            MESSAGE = format('No patron has card %s.', p_card);
    END IF;
    IF p_item_barcode IS NOT NULL THEN
        SELECT * INTO v_item FROM item WHERE barcode = p_item_barcode;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'item_not_found',
                MESSAGE = format('No item has barcode %s.', p_item_barcode);
        END IF;
        v_bib := v_item.bib_id;
    ELSIF NOT EXISTS (SELECT 1 FROM bib WHERE id = v_bib) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'bib',
            MESSAGE = format('There is no title %s.', coalesce(v_bib::text, '(none)'));
    END IF;
    v_pickup := coalesce((SELECT id FROM branch WHERE code = p_pickup), p_branch);
    IF p_pickup IS NOT NULL AND NOT EXISTS (SELECT 1 FROM branch WHERE code = p_pickup) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:pickup_branch',
            MESSAGE = format('There is no branch with code %s.', p_pickup);
    END IF;
    IF p_not_after IS NOT NULL AND p_not_after < library_today() THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:not_needed_after',
            MESSAGE = 'The "not needed after" date has already passed.';
    END IF;
    IF p_suspend IS NOT NULL AND p_suspend <= library_today() THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:suspended_until',
            MESSAGE = 'Suspend until a date after today.';
    END IF;
    SELECT * INTO v_standing FROM patron_standing(v_patron.id);
    IF v_standing.expired THEN
        PERFORM circ_refuse('patron_expired',
                            format('The card expired on %s.', v_patron.expires_on), false);
    END IF;
    IF v_standing.blocked THEN
        PERFORM circ_refuse('patron_blocked', 'The patron is blocked.', false);
    END IF;
    -- One patron's holds: counted under the patron's lock (as loans are).
    PERFORM patron_circ_lock(v_patron.id);
    -- Placing a hold is using the record (statistics: registered users).
    PERFORM patron_activity_touch(v_patron.id, false);
    SELECT max_holds INTO v_max FROM patron_category WHERE code = v_patron.category;
    SELECT count(*) INTO v_active FROM hold WHERE patron_id = v_patron.id
                                              AND status IN ('waiting', 'in_transit', 'ready');
    IF v_active >= v_max THEN
        PERFORM circ_refuse('hold_limit', format('The patron has %s holds, the limit.', v_active),
                            false);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM item i WHERE i.bib_id = v_bib AND item_can_fill_holds(i)
                                          AND i.status NOT IN ('withdrawn', 'lost')
                                          AND (v_item.id IS NULL OR i.id = v_item.id)) THEN
        IF v_item.id IS NOT NULL THEN
            PERFORM circ_refuse('no_holdable_copies',
                                format('%s cannot fill a hold (%s).', v_item.barcode,
                                       replace(v_item.status::text, '_', ' ')), false);
        END IF;
        PERFORM circ_refuse('no_holdable_copies',
                            'No copy of this title can fill a hold.', false);
    END IF;
    IF EXISTS (SELECT 1 FROM hold WHERE patron_id = v_patron.id AND bib_id = v_bib
                                    AND status IN ('waiting', 'in_transit', 'ready')) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'duplicate_hold',
            MESSAGE = 'The patron already has a hold on this title.';
    END IF;
    PERFORM 1 FROM bib WHERE id = v_bib FOR UPDATE;
    -- Placed now, once the title's queue is locked, not when this transaction
    -- began: with the start time, a hold that waited for the lock would join
    -- the queue ahead of holds already served.
    INSERT INTO hold (patron_id, bib_id, item_id, pickup_branch_id, placed_at, placed_by,
                      not_needed_after, suspended_until)
    VALUES (v_patron.id, v_bib, v_item.id, v_pickup, clock_timestamp(), p_staff, p_not_after,
            p_suspend)
    RETURNING * INTO v_hold;
    PERFORM hold_retarget(v_bib);
    -- Branches with a copy on their shelves hear of it (a pull may follow).
    PERFORM desk_event(br, 'hold_placed', NULL, v_bib,
                       format('Hold placed on %s (pickup %s); you have it on the shelf',
                              (SELECT title FROM bib WHERE id = v_bib),
                              (SELECT name FROM branch WHERE id = v_pickup)))
    FROM (SELECT DISTINCT i.current_branch_id AS br FROM item i
          WHERE i.bib_id = v_bib AND i.status = 'available'
            AND (v_item.id IS NULL OR i.id = v_item.id)) shelves;
    PERFORM request_store(p_key, jsonb_build_object('id', v_hold.id));
    RETURN QUERY SELECT * FROM hold_out(ARRAY[v_hold.id]);
END
$$;

CREATE OR REPLACE FUNCTION hold_change(p_key uuid, p_staff bigint, p_hold bigint, p_action text,
                            p_reason text, p_until date, p_pickup text)
RETURNS SETOF hold_row
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    h hold;
BEGIN
    SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'hold_change');
    IF v_key.stored IS NOT NULL THEN
        RETURN QUERY SELECT * FROM hold_out(ARRAY[(v_key.stored ->> 'id')::bigint]);
        RETURN;
    END IF;
    SELECT * INTO h FROM hold WHERE id = p_hold;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'hold',
            MESSAGE = format('There is no hold %s.', p_hold);
    END IF;
    PERFORM 1 FROM bib WHERE id = h.bib_id FOR UPDATE;
    SELECT * INTO h FROM hold WHERE id = p_hold FOR UPDATE;
    IF h.status IN ('filled', 'cancelled', 'expired') THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'hold_closed',
            MESSAGE = format('Hold %s is already %s.', p_hold, h.status);
    END IF;
    IF p_action = 'cancel' THEN
        IF coalesce(btrim(p_reason), '') = '' THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:reason',
                MESSAGE = 'Say why the hold is cancelled.';
        END IF;
        -- A copy set aside for it goes on the clearing list (hold shelf) or
        -- is routed again at its next scan (in transit).
        UPDATE hold SET status = 'cancelled', cancel_reason = p_reason, closed_at = now(),
            closed_by = p_staff, target_item_id = NULL
        WHERE id = p_hold;
    ELSIF p_action = 'suspend' THEN
        IF h.status <> 'waiting' THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'hold_captured',
                MESSAGE = 'A copy is already set aside for this hold; it cannot be suspended.';
        END IF;
        IF p_until IS NULL OR p_until <= library_today() THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:until',
                MESSAGE = 'Suspend until a date after today.';
        END IF;
        UPDATE hold SET suspended_until = p_until, target_item_id = NULL WHERE id = p_hold;
    ELSIF p_action = 'activate' THEN
        UPDATE hold SET suspended_until = NULL WHERE id = p_hold;
    ELSIF p_action = 'pickup' THEN
        IF h.status <> 'waiting' THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'hold_captured',
                MESSAGE = 'A copy is already set aside for this hold at its pickup branch.';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM branch WHERE code = p_pickup) THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:pickup_branch',
                MESSAGE = format('There is no branch with code %s.', coalesce(p_pickup, '(none)'));
        END IF;
        UPDATE hold SET pickup_branch_id = (SELECT id FROM branch WHERE code = p_pickup),
            target_item_id = NULL
        WHERE id = p_hold;
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:action',
            MESSAGE = 'Cancel, suspend, activate, or change the pickup branch.';
    END IF;
    PERFORM hold_retarget(h.bib_id);
    PERFORM request_store(p_key, jsonb_build_object('id', p_hold));
    RETURN QUERY SELECT * FROM hold_out(ARRAY[p_hold]);
END
$$;

-- A copy on the pull list was not on the shelf.
CREATE OR REPLACE FUNCTION hold_item_not_found(p_key uuid, p_staff bigint, p_branch integer,
                                    p_barcode text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    v_item item;
BEGIN
    SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'item_not_found', p_barcode);
    IF v_key.stored IS NOT NULL THEN
        RETURN (v_key.stored ->> 'id')::bigint;
    END IF;
    v_item := v_key.item_row;
    IF v_item.current_branch_id <> p_branch THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'not_here',
            MESSAGE = format('%s is on the shelves of %s, not this branch.', p_barcode,
                             (SELECT name FROM branch WHERE id = v_item.current_branch_id));
    END IF;
    IF v_item.status <> 'available' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'not_on_shelf',
            MESSAGE = format('%s is %s, not on the shelf.', p_barcode,
                             replace(v_item.status::text, '_', ' '));
    END IF;
    UPDATE item SET status = 'missing', version = version + 1, updated_at = now()
    WHERE id = v_item.id;
    INSERT INTO circ_event (action, branch_id, item_id, item_type, staff_id, location)
    VALUES ('missing', p_branch, v_item.id, v_item.item_type, p_staff, v_item.location);
    PERFORM hold_retarget(v_item.bib_id);
    PERFORM request_finish(p_key, p_staff, 'item_not_found', jsonb_build_object('id', v_item.id));
    RETURN v_item.id;
END
$$;

CREATE OR REPLACE FUNCTION hold_closed_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A fill dates itself after its locks (closed_at = filled_at).
    IF NEW.status IN ('cancelled', 'expired')
       AND OLD.status NOT IN ('filled', 'cancelled', 'expired') THEN
        NEW.closed_at := clock_timestamp();
    END IF;
    -- When the copy reached the hold shelf (statistics: time to ready).
    IF NEW.status = 'ready' AND OLD.status <> 'ready' THEN
        NEW.ready_at := clock_timestamp();
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER hold_closed_at BEFORE UPDATE OF status ON hold
    FOR EACH ROW EXECUTE FUNCTION hold_closed_at();
