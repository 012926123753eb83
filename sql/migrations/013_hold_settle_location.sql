-- 013: a copy on a hold shelf stays on the shelf of its hold's pickup
-- branch. 008's item_hold_settle watched a copy's status and title only, so
-- an item edit (or an import, or SQL by hand) saying that a copy on a hold
-- shelf is now at another branch left its hold `ready` at a branch where the
-- copy no longer is (hold_invariants: "ready copy away from its pickup
-- branch"). Such a change now releases the hold (hold_release) like any other
-- that takes a copy off its hold shelf, and the rows left that way are
-- settled. Checkin, capture and transits move a copy for its hold by changing
-- the hold first (008), so they never come here.

-- As in 008, and: a hold's copy said to be away from its pickup branch.
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

-- As in 008, and: a ready hold's copy said to be at another branch than the
-- hold's pickup branch is released too.
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
        -- hold first, so they never come here.
        IF NEW.status <> 'checked_out' THEN
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
DROP TRIGGER item_hold_settle ON item;
CREATE TRIGGER item_hold_settle AFTER INSERT OR UPDATE OF status, bib_id, current_branch_id ON item
    FOR EACH ROW EXECUTE FUNCTION item_hold_settle();

-- The ready holds whose copy an edit moved away before this migration.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT h.id, h.captured_item_id FROM hold h JOIN item i ON i.id = h.captured_item_id
             WHERE h.status = 'ready' AND i.current_branch_id <> h.pickup_branch_id
             ORDER BY h.bib_id, h.id
    LOOP
        PERFORM hold_release(r.id, r.captured_item_id);
    END LOOP;
END
$$;
