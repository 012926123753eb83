-- 013: a copy on a hold shelf stays on the shelf of its hold's pickup
-- branch. 008's item_hold_settle watched a copy's status and title only, so
-- an item edit (or an import, or SQL by hand) saying that a copy on a hold
-- shelf is now at another branch left its hold `ready` at a branch where the
-- copy no longer is (hold_invariants: "ready copy away from its pickup
-- branch"). Such a change now releases the hold (hold_release) like any other
-- that takes a copy off its hold shelf, and the rows left that way are
-- settled. Checkin, capture and transits move a copy for its hold by changing
-- the hold first (008), so they never come here.

-- The ready holds whose copy an edit moved away before this migration.
-- hold_release is a rule (sql/rules/hold_targeting.sql), applied after all
-- migrations: on a database these files create, the tables are still empty
-- here and the loop calls nothing; the databases made before the rules left
-- the migrations ran it with the hold_release of their day.
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
