-- Hold capture and fill: a checked-in copy is captured for the first hold it
-- can fill (hold_capture), sent to the pickup branch (hold_send) or put on the
-- hold shelf (hold_make_ready, with its slip); at checkout a copy held for
-- another patron is refused (circ_hold_check) and the borrower's hold is
-- filled (circ_hold_after_checkout). Called by circ_checkin_route
-- (transits.sql) and circ_checkout (circulation.sql), which server/circ.c runs.

-- At checkout: a refusal (reason, message) if the copy is held for someone else.
CREATE OR REPLACE FUNCTION circ_hold_check(p_item item, p_patron patron, OUT reason text,
                                           OUT message text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    h hold;
BEGIN
    -- Only a copy set aside (on the hold shelf, or on its way for a hold) has
    -- a captured hold (hold_invariants, kept by item_hold_settle): a copy on
    -- the shelf costs no statement.
    IF p_item.status NOT IN ('in_transit', 'on_hold_shelf') THEN
        RETURN;
    END IF;
    SELECT * INTO h FROM hold WHERE captured_item_id = p_item.id
                                AND status IN ('in_transit', 'ready');
    IF h.id IS NOT NULL AND h.patron_id <> p_patron.id THEN
        reason := 'item_on_hold';
        message := CASE WHEN h.status = 'ready'
                        THEN format('%s is on the hold shelf for another patron.', p_item.barcode)
                        ELSE format('%s is on its way to fill another patron''s hold.',
                                    p_item.barcode) END;
    END IF;
END
$$;

-- After a checkout: the hold it filled, if any (p_override: the copy was taken
-- from someone else's hold). The fill's time is taken after its locks; a hold
-- whose copy is lent to another patron by override is released (hold_release).
CREATE OR REPLACE FUNCTION circ_hold_after_checkout(p_item item, p_patron patron, p_loan loan,
                                                    p_override boolean) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    h hold;
    v_now timestamptz;
    v_other bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM hold WHERE bib_id = p_item.bib_id
                                        AND status IN ('waiting', 'in_transit', 'ready')) THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM bib WHERE id = p_item.bib_id FOR UPDATE;
    -- The patron's own hold on this title (set aside for them, or still waiting) is filled.
    SELECT * INTO h FROM hold
    WHERE patron_id = p_patron.id AND bib_id = p_item.bib_id
      AND status IN ('waiting', 'in_transit', 'ready')
      AND (item_id IS NULL OR item_id = p_item.id)
    FOR UPDATE;
    -- Filled now, with the title and the hold locked: a hold placed while this
    -- checkout waited for them is never filled before it was placed.
    v_now := clock_timestamp();
    IF h.id IS NOT NULL THEN
        UPDATE hold SET status = 'filled', filled_at = v_now, filled_loan_id = p_loan.id,
            closed_at = v_now, target_item_id = NULL,
            captured_item_id = coalesce(captured_item_id, p_item.id)
        WHERE id = h.id;
        -- Another copy set aside for the same hold would stay stranded: release it.
        -- On the hold shelf it goes on the clearing list; on its way, it travels
        -- on as an ordinary transit and is routed again where it arrives.
        IF h.captured_item_id IS NOT NULL AND h.captured_item_id <> p_item.id THEN
            UPDATE hold SET captured_item_id = p_item.id WHERE id = h.id;
            UPDATE transit SET reason = 'home'
            WHERE item_id = h.captured_item_id AND reason = 'hold'
              AND received_at IS NULL AND cancelled_at IS NULL;
        END IF;
    END IF;
    -- A copy taken (by override) from someone else's hold: that hold waits
    -- again, and its pickup branch hears of it (hold_release).
    SELECT x.id INTO v_other FROM hold x
    WHERE x.captured_item_id = p_item.id AND x.status IN ('in_transit', 'ready')
      AND x.patron_id <> p_patron.id;
    IF v_other IS NOT NULL THEN
        PERFORM hold_release(v_other, p_item.id);
    END IF;
    PERFORM hold_retarget(p_item.bib_id);
    RETURN h.id;
END
$$;

-- A copy arrived for hold h at its pickup branch: onto the hold shelf. The
-- trip it was on ends here even when it was headed elsewhere (a copy captured
-- at a branch that was not its destination), so the branch it was going to no
-- longer expects it.
CREATE OR REPLACE FUNCTION hold_make_ready(h hold, p_item item, p_staff bigint) RETURNS date
LANGUAGE plpgsql AS $$
DECLARE
    v_until date := branch_open_days_after(h.pickup_branch_id, library_today(),
                                           library_setting_text('hold_shelf_days')::integer);
    v_title text := (SELECT title FROM bib WHERE id = h.bib_id);
    v_now timestamptz := clock_timestamp();
BEGIN
    UPDATE transit SET received_at = v_now, received_by = p_staff
    WHERE item_id = p_item.id AND received_at IS NULL AND cancelled_at IS NULL
      AND to_branch_id = h.pickup_branch_id;
    UPDATE transit SET cancelled_at = v_now
    WHERE item_id = p_item.id AND received_at IS NULL AND cancelled_at IS NULL;
    UPDATE hold SET status = 'ready', shelf_expires_on = v_until WHERE id = h.id;
    UPDATE item SET status = 'on_hold_shelf', current_branch_id = h.pickup_branch_id,
        version = version + 1, updated_at = v_now
    WHERE id = p_item.id;
    PERFORM notice_queue(h.patron_id, 'hold_ready', h.id, NULL, v_until, v_title,
                         h.pickup_branch_id);
    PERFORM desk_event(h.pickup_branch_id, 'hold_captured', p_item.id, h.bib_id,
                       format('Hold shelf: %s for %s, until %s', v_title,
                              (SELECT patron_short_name(p) FROM patron p WHERE p.id = h.patron_id),
                              v_until));
    RETURN v_until;
END
$$;

-- Checked in at p_branch and on no loan: does a hold want this copy? Takes
-- the first eligible hold by the policy (see library_setting hold_policy),
-- sets the copy aside for it (hold shelf here, or transit to its pickup
-- branch), and returns it. The capture's times are taken after its locks; a
-- capture for a hold picked up here ends the trip the copy was on
-- (hold_make_ready).
CREATE OR REPLACE FUNCTION hold_capture(p_item item, p_branch integer, p_staff bigint) RETURNS hold
LANGUAGE plpgsql AS $$
DECLARE
    v_first hold;
    v_local hold;
    v_choice hold;
    v_max integer;
    v_now timestamptz;
BEGIN
    -- The common answer first: no hold waits for the title (one statement;
    -- item_can_fill_holds is then not called).
    IF NOT EXISTS (SELECT 1 FROM hold WHERE bib_id = p_item.bib_id AND status = 'waiting')
       OR NOT item_can_fill_holds(p_item) THEN
        RETURN NULL;
    END IF;
    v_max := library_setting_text('hold_max_skips')::integer;
    PERFORM 1 FROM bib WHERE id = p_item.bib_id FOR UPDATE;
    SELECT * INTO v_first FROM hold x
    WHERE x.bib_id = p_item.bib_id AND hold_eligible(x) AND (x.item_id IS NULL OR x.item_id = p_item.id)
    ORDER BY x.placed_at, x.id LIMIT 1 FOR UPDATE;
    IF v_first.id IS NULL THEN
        RETURN NULL;
    END IF;
    v_choice := v_first;
    IF library_setting_text('hold_policy') = 'local_first' AND v_first.pickup_branch_id <> p_branch
    THEN
        SELECT * INTO v_local FROM hold x
        WHERE x.bib_id = p_item.bib_id AND hold_eligible(x)
          AND (x.item_id IS NULL OR x.item_id = p_item.id) AND x.pickup_branch_id = p_branch
        ORDER BY x.placed_at, x.id LIMIT 1 FOR UPDATE;
        -- Served locally unless that would pass over a hold once too often.
        IF v_local.id IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM hold x
               WHERE x.bib_id = p_item.bib_id AND hold_eligible(x)
                 AND (x.item_id IS NULL OR x.item_id = p_item.id)
                 AND (x.placed_at, x.id) < (v_local.placed_at, v_local.id)
                 AND x.skipped >= v_max) THEN
            UPDATE hold x SET skipped = skipped + 1
            WHERE x.bib_id = p_item.bib_id AND hold_eligible(x)
              AND (x.item_id IS NULL OR x.item_id = p_item.id)
              AND (x.placed_at, x.id) < (v_local.placed_at, v_local.id);
            v_choice := v_local;
        END IF;
    END IF;
    -- Captured now, with the copy, the title and the hold locked.
    v_now := clock_timestamp();
    -- Nobody else asks for this copy now; the one who had it targeted asks again.
    UPDATE hold SET target_item_id = NULL, targeted_at = NULL
    WHERE target_item_id = p_item.id AND status = 'waiting';
    UPDATE hold SET status = 'in_transit', captured_item_id = p_item.id, captured_at = v_now,
        target_item_id = NULL, targeted_at = NULL
    WHERE id = v_choice.id
    RETURNING * INTO v_choice;
    IF v_choice.pickup_branch_id = p_branch THEN
        PERFORM hold_make_ready(v_choice, p_item, p_staff);
        SELECT * INTO v_choice FROM hold WHERE id = v_choice.id;
    ELSE
        UPDATE transit SET cancelled_at = v_now
        WHERE item_id = p_item.id AND received_at IS NULL AND cancelled_at IS NULL;
        INSERT INTO transit (item_id, from_branch_id, to_branch_id, reason, sent_at, sent_by)
        VALUES (p_item.id, p_branch, v_choice.pickup_branch_id, 'hold', v_now, p_staff);
        UPDATE item SET status = 'in_transit', current_branch_id = p_branch,
            version = version + 1, updated_at = v_now
        WHERE id = p_item.id;
        PERFORM desk_event(v_choice.pickup_branch_id, 'transit_sent', p_item.id, p_item.bib_id,
                           format('In transit to you for a hold: %s (from %s)',
                                  (SELECT title FROM bib WHERE id = p_item.bib_id),
                                  (SELECT name FROM branch WHERE id = p_branch)));
    END IF;
    PERFORM hold_retarget(p_item.bib_id);
    RETURN v_choice;
END
$$;

-- A routing slip for a captured copy.
CREATE OR REPLACE FUNCTION hold_slip(h hold, p_branch integer) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format(E'HOLD\n\n%s (card ending %s)\nPickup: %s\nPlaced %s\n%s\n\n%s\n  %s\n',
                  patron_short_name(p), right(p.card, 4), pb.name,
                  to_char(h.placed_at AT TIME ZONE library_setting_text('timezone'), 'Mon DD YYYY'),
                  CASE WHEN h.status = 'ready'
                       THEN 'On the hold shelf until ' || h.shelf_expires_on
                       ELSE 'SEND TO ' || pb.name || ' (from ' || fb.name || ')' END,
                  left(b.title, 60), i.barcode)
    FROM patron p, branch pb, branch fb, bib b, item i
    WHERE p.id = h.patron_id AND pb.id = h.pickup_branch_id AND fb.id = p_branch
      AND b.id = h.bib_id AND i.id = h.captured_item_id
$$;

-- Send the copy set aside for hold h from p_branch, which is not its pickup
-- branch, to the pickup branch. A copy already on a hold transit there
-- travels on under it (scanned on the way); otherwise any other trip it was
-- on ends here and a hold transit starts, and the pickup branch is told. The
-- hold is in transit until the copy arrives (a copy taken off its hold shelf
-- by mistake goes back, and is ready again when it arrives). Returns true
-- when a new transit started.
CREATE OR REPLACE FUNCTION hold_send(h hold, p_item item, p_branch integer, p_staff bigint)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_new boolean;
BEGIN
    v_new := NOT EXISTS (SELECT 1 FROM transit t
                         WHERE t.item_id = p_item.id AND t.received_at IS NULL
                           AND t.cancelled_at IS NULL AND t.reason = 'hold'
                           AND t.to_branch_id = h.pickup_branch_id);
    IF v_new THEN
        UPDATE transit SET cancelled_at = v_now
        WHERE item_id = p_item.id AND received_at IS NULL AND cancelled_at IS NULL;
        INSERT INTO transit (item_id, from_branch_id, to_branch_id, reason, sent_at, sent_by)
        VALUES (p_item.id, p_branch, h.pickup_branch_id, 'hold', v_now, p_staff);
    END IF;
    IF h.status = 'ready' THEN
        UPDATE hold SET status = 'in_transit', shelf_expires_on = NULL WHERE id = h.id;
        PERFORM hold_notices_withdraw(h.id);
    END IF;
    -- The hold first, then the copy: item_hold_settle finds them agreeing.
    UPDATE item SET status = 'in_transit', current_branch_id = p_branch,
        version = version + 1, updated_at = v_now
    WHERE id = p_item.id;
    IF v_new THEN
        PERFORM desk_event(h.pickup_branch_id, 'transit_sent', p_item.id, p_item.bib_id,
                           format('In transit to you for a hold: %s (from %s)',
                                  (SELECT title FROM bib WHERE id = p_item.bib_id),
                                  (SELECT name FROM branch WHERE id = p_branch)));
    END IF;
    RETURN v_new;
END
$$;
