-- 038: less work for PostgreSQL at each write of a copy and of a loan
-- (issue 15).
--
-- item.shelf_key was a stored generated column. PostgreSQL 15 computes a
-- generated column again at every UPDATE of the row, whatever the UPDATE
-- changes, and reads its expression back from its stored text once a
-- statement: a call of call_number_shelf_key at each checkout and each
-- checkin. It becomes a plain column that a trigger (item_shelf_key,
-- sql/rules/weeding.sql) sets when call_number or shelf_key is written, from
-- the same function. The values stay; the index on it stays.
--
-- The table checks left by migration 037 are each read back from their
-- stored text, prepared and run again for every statement that writes the
-- table, whatever it changes: three for item, three for loan, a checkout and
-- checkin writing each table twice (callgrind: 6% of a pair's instructions,
-- item's regular expression the most).
--   * loan's three read several columns, and the checkin changes them: one
--     check now, loan_consistent, prepared once a statement instead of three
--     times.
--   * item's barcode, call_number and location cannot be domains (several
--     functions return them with RETURN QUERY as text, migration 037), and
--     circulation never writes them. Their check is now the WHEN clause of a
--     trigger that fires only on an INSERT or an UPDATE that writes one of
--     them (item_text_check, sql/rules/catalog.sql): PostgreSQL looks at the
--     columns an UPDATE sets before it reads the clause, so a checkout or
--     checkin of a copy does not prepare or run it. A bad value is refused
--     as before: SQLSTATE 23514 (check_violation), constraint
--     item_text_check. The rows already stored passed the same rules.

ALTER TABLE item ALTER COLUMN shelf_key DROP EXPRESSION;

ALTER TABLE item
    DROP CONSTRAINT item_barcode_check,
    DROP CONSTRAINT item_call_number_check,
    DROP CONSTRAINT item_location_check;

ALTER TABLE loan
    DROP CONSTRAINT loan_check,
    DROP CONSTRAINT loan_check1,
    DROP CONSTRAINT loan_check2,
    ADD CONSTRAINT loan_consistent
        CHECK ((returned_at IS NULL) = (outcome IS NULL)
               AND (returned_at IS NULL OR returned_at >= checkout_at)
               AND (returned_at IS NOT NULL OR patron_id IS NOT NULL));
