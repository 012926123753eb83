-- 009: a renewal that cannot move the due date is refused.
--
-- Renewing a loan on its checkout day (or twice on one day) computed the same
-- due date again, yet used up a renewal and answered "renewed". circ_renew
-- now refuses such a loan with reason 'renewal_no_change' and leaves its
-- renewal count alone. Everything else is as in 006.

-- What this migration made is now in sql/rules/circulation.sql.
-- It keeps one statement: a file without any cannot be applied.
SELECT 1;
