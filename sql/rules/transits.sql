-- Checkin routing and transits: where a copy goes when it is checked in
-- (its hold's pickup branch, another hold, or home: circ_checkin_route,
-- circ_route), cancelling a transit, and the transit lists (outgoing,
-- incoming, overdue). Called by circ_checkin (circulation.sql) and
-- server/holds.c (TransitList, TransitChange).

-- Where an item goes after it is handled at p_branch: stays ('shelf') or
-- travels ('transit' to the returned branch). Completes or forwards a transit
-- already under way. Holds capture before this runs (circ_checkin_route).
-- Its updates stamp a change of status themselves (status_changed_at), so
-- that item_status_stamp (offline.sql) is not called for them.
CREATE OR REPLACE FUNCTION circ_route(p_item item, p_branch integer, p_staff bigint,
                           OUT route text, OUT destination integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_transit transit;
BEGIN
    SELECT * INTO v_transit FROM transit
    WHERE item_id = p_item.id AND received_at IS NULL AND cancelled_at IS NULL FOR UPDATE;
    IF FOUND THEN
        IF v_transit.to_branch_id = p_branch THEN
            UPDATE transit SET received_at = now(), received_by = p_staff WHERE id = v_transit.id;
        ELSE
            -- Scanned on the way: it travels on under the same transit.
            UPDATE item SET status = 'in_transit', current_branch_id = p_branch,
                status_changed_at = CASE WHEN status = 'in_transit' THEN status_changed_at
                                     ELSE clock_timestamp() END,
                version = version + 1, updated_at = now()
            WHERE id = p_item.id;
            route := 'transit';
            destination := v_transit.to_branch_id;
            RETURN;
        END IF;
    END IF;
    IF p_item.owning_branch_id = p_branch THEN
        UPDATE item SET status = 'available', current_branch_id = p_branch,
            status_changed_at = CASE WHEN status = 'available' THEN status_changed_at
                                     ELSE clock_timestamp() END,
            version = version + 1, updated_at = now()
        WHERE id = p_item.id;
        route := 'shelf';
        destination := p_branch;
        RETURN;
    END IF;
    INSERT INTO transit (item_id, from_branch_id, to_branch_id, reason, sent_by)
    VALUES (p_item.id, p_branch, p_item.owning_branch_id, 'home', p_staff);
    UPDATE item SET status = 'in_transit', current_branch_id = p_branch,
        status_changed_at = CASE WHEN status = 'in_transit' THEN status_changed_at
                                     ELSE clock_timestamp() END,
        version = version + 1, updated_at = now()
    WHERE id = p_item.id;
    route := 'transit';
    destination := p_item.owning_branch_id;
END
$$;

-- At checkin, once any loan is closed: where the copy goes. hold_id, message
-- and slip are set when a hold took it; otherwise circ_checkin words them.
-- A copy set aside for a hold that turns up away from its pickup branch goes
-- there (back to its hold shelf, if it was taken off it); "Already on the
-- hold shelf" only at the pickup branch, for a copy that is on it.
CREATE OR REPLACE FUNCTION circ_checkin_route(p_item item, p_branch integer, p_staff bigint,
                                              OUT route text, OUT destination integer,
                                              OUT hold_id bigint, OUT message text,
                                              OUT slip text)
LANGUAGE plpgsql AS $$
DECLARE
    h hold;
    v record;
    v_float boolean;
BEGIN
    SELECT * INTO h FROM hold WHERE captured_item_id = p_item.id
                                AND status IN ('in_transit', 'ready') FOR UPDATE;
    IF h.id IS NULL THEN
        h := hold_capture(p_item, p_branch, p_staff);
        IF h.id IS NOT NULL THEN
            hold_id := h.id;
            destination := h.pickup_branch_id;
            slip := hold_slip(h, p_branch);
            IF h.status = 'ready' THEN
                route := 'hold_shelf';
                message := format('HOLD SHELF for %s', (SELECT patron_short_name(p) FROM patron p
                                                         WHERE p.id = h.patron_id));
            ELSE
                route := 'transit';
                message := format('ROUTE TO %s for a hold', (SELECT name FROM branch
                                                              WHERE id = h.pickup_branch_id));
            END IF;
            RETURN;
        END IF;
    ELSE
        -- Already set aside for a hold: scanned again, arriving, or astray.
        hold_id := h.id;
        destination := h.pickup_branch_id;
        IF h.pickup_branch_id = p_branch AND h.status = 'ready'
           AND p_item.status = 'on_hold_shelf' THEN
            route := 'hold_shelf';
            message := format('Already on the hold shelf for %s',
                              (SELECT patron_short_name(p) FROM patron p WHERE p.id = h.patron_id));
            RETURN;
        ELSIF h.pickup_branch_id = p_branch THEN
            PERFORM hold_make_ready(h, p_item, p_staff);
            SELECT * INTO h FROM hold WHERE id = h.id;
            route := 'hold_shelf';
            slip := hold_slip(h, p_branch);
            message := format('Arrived: HOLD SHELF for %s',
                              (SELECT patron_short_name(p) FROM patron p WHERE p.id = h.patron_id));
            RETURN;
        END IF;
        -- Away from its pickup branch: on its way there, it travels on under the
        -- same transit; off its hold shelf, it goes back, with a hold slip.
        IF hold_send(h, p_item, p_branch, p_staff) THEN
            SELECT * INTO h FROM hold WHERE id = h.id;
            slip := hold_slip(h, p_branch);
        END IF;
        route := 'transit';
        message := format('ROUTE TO %s for a hold', (SELECT name FROM branch
                                                      WHERE id = h.pickup_branch_id));
        RETURN;
    END IF;
    -- Floating copies stay where they are returned. (Two statements: the
    -- transit is looked for only for a floating copy.)
    v_float := (SELECT t.floating FROM item_type t WHERE t.code = p_item.item_type)
               OR EXISTS (SELECT 1 FROM floating_location f WHERE f.location = p_item.location);
    IF v_float THEN
        v_float := NOT EXISTS (SELECT 1 FROM transit t WHERE t.item_id = p_item.id
                                  AND t.received_at IS NULL AND t.cancelled_at IS NULL);
    END IF;
    IF v_float THEN
        UPDATE item SET status = 'available', current_branch_id = p_branch,
            status_changed_at = CASE WHEN status = 'available' THEN status_changed_at
                                     ELSE clock_timestamp() END,
            version = version + 1, updated_at = clock_timestamp()
        WHERE id = p_item.id;
        route := 'shelf';
        destination := p_branch;
        message := 'Return to shelf (floating collection)';
    ELSE
        v := circ_route(p_item, p_branch, p_staff);
        route := v.route;
        destination := v.destination;
    END IF;
    -- Waiting holds look at a copy back on the shelf. A copy that was not
    -- available before was offered to them by item_hold_settle when its
    -- status changed; only one that was (checked in from the shelf) is
    -- offered here.
    IF route = 'shelf' AND p_item.status = 'available' THEN
        PERFORM hold_retarget(p_item.bib_id);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION transit_cancel(p_key uuid, p_staff bigint, p_barcode text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    v_item item;
    v_transit transit;
BEGIN
    SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'transit_cancel', p_barcode);
    IF v_key.stored IS NOT NULL THEN
        RETURN (v_key.stored ->> 'id')::bigint;
    END IF;
    v_item := v_key.item_row;
    SELECT * INTO v_transit FROM transit WHERE item_id = v_item.id AND received_at IS NULL
                                           AND cancelled_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'not_in_transit',
            MESSAGE = format('%s is not in transit.', p_barcode);
    END IF;
    UPDATE transit SET cancelled_at = now() WHERE id = v_transit.id;
    -- Back on the shelf of the branch that sent it last (the sender, or the
    -- branch that forwarded it); a hold it was going to asks again.
    UPDATE hold SET status = 'waiting', captured_item_id = NULL, captured_at = NULL
    WHERE captured_item_id = v_item.id AND status = 'in_transit';
    UPDATE item SET status = 'available', version = version + 1, updated_at = now()
    WHERE id = v_item.id;
    PERFORM hold_retarget(v_item.bib_id);
    PERFORM request_finish(p_key, p_staff, 'transit_cancel', jsonb_build_object('id', v_transit.id));
    RETURN v_transit.id;
END
$$;

-- A transit is overdue once it has been on its way longer than
-- transit_overdue_days (library setting) without arriving.
CREATE OR REPLACE FUNCTION transit_overdue(t transit) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT t.sent_at < now() - make_interval(days =>
               library_setting_text('transit_overdue_days')::integer)
$$;

-- Transits as staff see them (TransitList, TransitChange), p_ids in that
-- order: branch codes, reason, when sent, and whether overdue.
CREATE OR REPLACE FUNCTION transit_out(p_ids bigint[])
RETURNS TABLE (id bigint, barcode text, title text, from_branch text, to_branch text,
               reason text, sent_at text, overdue boolean)
LANGUAGE sql STABLE AS $$
    SELECT t.id, i.barcode, b.title, fb.code, tb.code, t.reason, api_time(t.sent_at),
           transit_overdue(t)
    FROM unnest(p_ids) WITH ORDINALITY AS x (id, n)
    JOIN transit t ON t.id = x.id
    JOIN item i ON i.id = t.item_id JOIN bib b ON b.id = i.bib_id
    JOIN branch fb ON fb.id = t.from_branch_id JOIN branch tb ON tb.id = t.to_branch_id
    ORDER BY x.n
$$;

-- The open transits leaving branch p_branch (p_which 'outgoing'), coming to
-- it ('incoming'), or, for any other p_which, every overdue one (the
-- overdue-transit list; p_branch unused), oldest first.
CREATE OR REPLACE FUNCTION transit_list(p_branch text, p_which text)
RETURNS TABLE (id bigint, barcode text, title text, from_branch text, to_branch text,
               reason text, sent_at text, overdue boolean)
LANGUAGE sql STABLE AS $$
    SELECT * FROM transit_out(ARRAY(
        SELECT t.id FROM transit t
        JOIN branch fb ON fb.id = t.from_branch_id JOIN branch tb ON tb.id = t.to_branch_id
        WHERE t.received_at IS NULL AND t.cancelled_at IS NULL
          AND CASE p_which WHEN 'outgoing' THEN fb.code = p_branch
                           WHEN 'incoming' THEN tb.code = p_branch
                           ELSE transit_overdue(t) END
        ORDER BY t.sent_at, t.id))
$$;
