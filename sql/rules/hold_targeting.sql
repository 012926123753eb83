-- Hold targeting and settling: which holds may be filled and by which copies
-- (hold_eligible, item_can_fill_holds), the copy each waiting hold asks for
-- (hold_retarget, what the pull list shows), whether a renewal is blocked by
-- a hold (circ_renewal_held), and the item trigger that settles a hold whose
-- copy left its shelf or its way (item_hold_settle, hold_release). Called by
-- the hold and circulation rules and by every change of an item row.

-- At renewal: does a waiting hold stop it (on the title, or on this copy)?
CREATE OR REPLACE FUNCTION circ_renewal_held(p_bib bigint, p_patron bigint, p_item bigint)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM hold x WHERE x.bib_id = p_bib AND x.patron_id <> p_patron
                                          AND hold_eligible(x)
                                          AND (x.item_id IS NULL OR x.item_id = p_item))
$$;

-- Holds that may be served today, in queue order.
CREATE OR REPLACE FUNCTION hold_eligible(h hold) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT h.status = 'waiting'
       AND (h.suspended_until IS NULL OR h.suspended_until <= library_today())
       AND (h.not_needed_after IS NULL OR h.not_needed_after >= library_today())
$$;

-- PL/pgSQL for its kept plan (see library_setting_text, settings.sql).
CREATE OR REPLACE FUNCTION item_can_fill_holds(i item) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce((SELECT t.circulates FROM item_type t WHERE t.code = i.item_type), false);
END
$$;

-- Give every eligible waiting hold of a title that has no copy in view one
-- available copy: at the pickup branch first, then by branch_proximity. In
-- queue order, so earlier holds get the nearer copies. Drops targets that no
-- longer make sense (the copy went out, the hold is suspended).
CREATE OR REPLACE FUNCTION hold_retarget(p_bib bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    h hold;
    v_item bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM hold WHERE bib_id = p_bib AND status = 'waiting') THEN
        RETURN;
    END IF;
    PERFORM 1 FROM bib WHERE id = p_bib FOR UPDATE;
    UPDATE hold x SET target_item_id = NULL, targeted_at = NULL
    WHERE x.bib_id = p_bib AND x.status = 'waiting' AND x.target_item_id IS NOT NULL
      AND (NOT hold_eligible(x)
           OR NOT EXISTS (SELECT 1 FROM item i WHERE i.id = x.target_item_id
                                                  AND i.status = 'available'));
    FOR h IN SELECT * FROM hold x
             WHERE x.bib_id = p_bib AND x.status = 'waiting' AND x.target_item_id IS NULL
               AND hold_eligible(x)
             ORDER BY x.placed_at, x.id
    LOOP
        SELECT i.id INTO v_item
        FROM item i
        LEFT JOIN branch_proximity bp ON bp.pickup_branch_id = h.pickup_branch_id
                                      AND bp.branch_id = i.current_branch_id
        WHERE i.bib_id = p_bib AND i.status = 'available' AND item_can_fill_holds(i)
          AND (h.item_id IS NULL OR i.id = h.item_id)
          AND NOT EXISTS (SELECT 1 FROM hold t WHERE t.target_item_id = i.id
                                                 AND t.status = 'waiting')
        ORDER BY (i.current_branch_id = h.pickup_branch_id) DESC, coalesce(bp.rank, 1000),
                 i.current_branch_id, i.id
        LIMIT 1;
        IF v_item IS NOT NULL THEN
            UPDATE hold SET target_item_id = v_item, targeted_at = now() WHERE id = h.id;
        END IF;
    END LOOP;
END
$$;

-- Gone: item_hold_settle (below) does its work. Dropped here for databases
-- made before the rules moved out of the migrations.
DROP TRIGGER IF EXISTS item_hold_retarget ON item;
DROP FUNCTION IF EXISTS item_hold_retarget();

-- The copy set aside for hold p_hold is not where the hold says any more
-- (marked lost, missing, damaged or withdrawn, edited, moved to another
-- title, lent by override to another patron): the hold waits again at its
-- place in the queue, a hold transit the copy is still on becomes an ordinary
-- one (routed afresh where it arrives), the patron is not told it is ready,
-- the pickup branch's desks hear of it (hold_released), and the hold looks for
-- another copy; also a ready hold's copy said to be away from its pickup
-- branch. Does nothing when the hold no longer holds that copy.
CREATE OR REPLACE FUNCTION hold_release(p_hold bigint, p_item bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    h hold;
    v_item item;
BEGIN
    SELECT * INTO h FROM hold WHERE id = p_hold;
    PERFORM 1 FROM bib WHERE id = h.bib_id FOR UPDATE;
    SELECT * INTO h FROM hold WHERE id = p_hold FOR UPDATE;
    IF h.status NOT IN ('in_transit', 'ready') OR h.captured_item_id IS DISTINCT FROM p_item THEN
        RETURN;
    END IF;
    SELECT * INTO v_item FROM item WHERE id = p_item;
    UPDATE hold SET status = 'waiting', captured_item_id = NULL, captured_at = NULL,
        shelf_expires_on = NULL
    WHERE id = h.id;
    UPDATE transit SET reason = 'home'
    WHERE item_id = p_item AND reason = 'hold' AND received_at IS NULL AND cancelled_at IS NULL;
    PERFORM hold_notices_withdraw(h.id);
    PERFORM desk_event(h.pickup_branch_id, 'hold_released', p_item, h.bib_id,
        format(CASE WHEN h.status = 'ready' THEN 'Off the hold shelf: %s for %s (%s); '
                    ELSE 'No longer on its way to you: %s for %s (%s); ' END
               || 'the hold waits for another copy',
               (SELECT title FROM bib WHERE id = h.bib_id),
               (SELECT patron_short_name(p) FROM patron p WHERE p.id = h.patron_id),
               CASE WHEN v_item.bib_id <> h.bib_id THEN 'moved to another title'
                    WHEN v_item.status = 'checked_out' THEN 'lent to another patron'
                    WHEN v_item.status = 'on_hold_shelf'
                         AND v_item.current_branch_id <> h.pickup_branch_id
                        THEN 'now at ' || (SELECT name FROM branch
                                           WHERE id = v_item.current_branch_id)
                    ELSE 'now ' || replace(v_item.status::text, '_', ' ') END));
    PERFORM hold_retarget(h.bib_id);
END
$$;

-- After every insert of a copy and every change of its status, title or
-- branch: a copy that stops travelling loses its open transit, the hold of a
-- copy no longer on its hold shelf (or said to be at another branch than the
-- hold's pickup branch) or on its way is released (hold_release), and waiting
-- holds whose target left the shelf ask for another. Checkout settles the
-- holds of the copy it lends itself (circ_hold_after_checkout).
CREATE OR REPLACE FUNCTION item_hold_settle() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_hold bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- A copy that stops travelling is on no transit any more. (Receiving,
        -- transit cancel and capture close theirs before they change the status;
        -- this closes the ones a mark or an edit would leave open.)
        IF OLD.status = 'in_transit' AND NEW.status <> 'in_transit' THEN
            UPDATE transit SET cancelled_at = clock_timestamp()
            WHERE item_id = NEW.id AND received_at IS NULL AND cancelled_at IS NULL;
        END IF;
        -- The hold this copy is set aside for, if the copy is no longer where
        -- the hold says. Functions that move a copy for its hold change the
        -- hold first, so they never come here. Only a copy that was set aside
        -- (on the hold shelf or on its way for a hold) can have such a hold
        -- (hold_invariants): a checkin of a copy that was out does not look.
        IF NEW.status <> 'checked_out' AND OLD.status IN ('in_transit', 'on_hold_shelf') THEN
            SELECT h.id INTO v_hold FROM hold h
            WHERE h.captured_item_id = NEW.id AND h.status IN ('in_transit', 'ready')
              AND (h.bib_id <> NEW.bib_id
                   OR NEW.status <> CASE h.status WHEN 'ready' THEN 'on_hold_shelf'::item_status
                                                  ELSE 'in_transit'::item_status END
                   OR (h.status = 'ready' AND NEW.current_branch_id <> h.pickup_branch_id));
            IF v_hold IS NOT NULL THEN
                PERFORM hold_release(v_hold, NEW.id);
            END IF;
        END IF;
        -- A copy a pull list asks for left the shelf: its hold asks for another.
        IF OLD.status = 'available' AND NEW.status <> 'available'
           AND EXISTS (SELECT 1 FROM hold t WHERE t.target_item_id = NEW.id
                                              AND t.status = 'waiting') THEN
            PERFORM hold_retarget(OLD.bib_id);
        END IF;
    END IF;
    -- A new copy, or one that became available outside a checkin (found,
    -- edited, transit cancelled): waiting holds look at it at once.
    IF NEW.status = 'available'
       AND (TG_OP = 'INSERT' OR OLD.status <> 'available' OR OLD.bib_id <> NEW.bib_id)
       AND EXISTS (SELECT 1 FROM hold WHERE bib_id = NEW.bib_id AND status = 'waiting') THEN
        PERFORM hold_retarget(NEW.bib_id);
    END IF;
    RETURN NULL;
END
$$;

-- Not for a copy checked out: only circ_make_loan lends a copy (item_save
-- refuses the status), it closes the copy's transit itself, and its callers
-- settle the copy's holds (circ_hold_after_checkout), so a checkout calls
-- no trigger (issue 15).
CREATE OR REPLACE TRIGGER item_hold_settle AFTER INSERT OR UPDATE OF status, bib_id, current_branch_id ON item
    FOR EACH ROW WHEN (NEW.status <> 'checked_out') EXECUTE FUNCTION item_hold_settle();
