-- 008: a copy set aside for a hold stays consistent with its hold, and the
-- times of loans and holds are the times the changes happened.
--
-- Every change of a copy's status passes through one trigger on item
-- (item_hold_settle): whatever made the change (a mark, not-found, an item
-- edit, an import, SQL by hand), a copy that stops travelling loses its open
-- transit, a hold whose copy is no longer on its hold shelf or on its way
-- goes back to waiting at its place in the queue (hold_release) and looks for
-- another copy, and waiting holds whose target left the shelf ask for another.
-- Checkout is the one change the trigger leaves alone: it settles the holds
-- of the copy it lends itself (fills the borrower's, releases another's).
--
-- Checkin routes a copy on a hold shelf that turns up at another branch back
-- to its pickup branch; a capture at a branch that was not the copy's
-- destination closes the transit it was on. Checkout, checkin, fill, capture
-- and placing a hold take their time after their row locks
-- (clock_timestamp()), not at the start of their transaction, so a loan never
-- begins before the previous loan of its copy ended, and a hold is never
-- filled before it was placed.
--
-- hold_invariants() and circ_invariants() check all of this in both
-- directions. At the end, this migration settles the rows the earlier
-- functions left inconsistent.
-- Lock order, unchanged: item, loan, patron_circ, bib, hold.
-- The rules this describes are in sql/rules/hold_targeting.sql (settling) and
-- hold_capture.sql (capture, fill, send).

-- ---------------------------------------------------------------- repair

-- What the earlier functions may have left behind: holds whose copy was
-- marked or edited away go back to waiting, and transits of copies that no
-- longer travel are closed.
-- hold_release is a rule (sql/rules/hold_targeting.sql), applied after all
-- migrations: on a database these files create, the tables are still empty
-- here and the loop calls nothing; the databases made before the rules left
-- the migrations ran it with the hold_release of their day.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT h.id, h.captured_item_id FROM hold h JOIN item i ON i.id = h.captured_item_id
             WHERE h.status IN ('ready', 'in_transit')
               AND (i.bib_id <> h.bib_id
                    OR (h.status = 'ready' AND i.status <> 'on_hold_shelf')
                    OR (h.status = 'in_transit' AND i.status <> 'in_transit'))
             ORDER BY h.bib_id, h.id
    LOOP
        PERFORM hold_release(r.id, r.captured_item_id);
    END LOOP;
    UPDATE transit t SET cancelled_at = now()
    FROM item i
    WHERE i.id = t.item_id AND t.received_at IS NULL AND t.cancelled_at IS NULL
      AND i.status <> 'in_transit';
END
$$;
