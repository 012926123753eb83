-- 016: a hold is dated closed when it closes, not when its transaction began.
--
-- Issue 8, item 25's class: times taken at transaction start (now()) come
-- before any lock wait. A cancel that waited while another desk sent the
-- copy on its way for that hold was dated before the transit
-- (hold_invariants: "hold transit without a hold"). Every path that
-- cancels or expires a hold (cancel, expiry, merge, release) passes through
-- this trigger, which runs once the row is locked.

-- What this migration made is now in sql/rules/holds.sql.
-- It keeps one statement: a file without any cannot be applied.
SELECT 1;
