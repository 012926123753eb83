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
-- The table checks that read several columns, or that several functions'
-- RETURN QUERY keeps from being domains (migration 037), are each read back
-- from their stored text and prepared again for every statement that writes
-- the table: three for item, three for loan, a checkout and checkin writing
-- each table twice. The same rules in one check per table are prepared
-- once a statement. They still break with SQLSTATE 23514 (check_violation),
-- now under one name: item_text_check, loan_consistent.

ALTER TABLE item ALTER COLUMN shelf_key DROP EXPRESSION;

ALTER TABLE item
    DROP CONSTRAINT item_barcode_check,
    DROP CONSTRAINT item_call_number_check,
    DROP CONSTRAINT item_location_check,
    ADD CONSTRAINT item_text_check
        CHECK (barcode ~ '^[[:graph:]]{1,32}$' AND length(call_number) <= 100
               AND length(location) <= 100);

ALTER TABLE loan
    DROP CONSTRAINT loan_check,
    DROP CONSTRAINT loan_check1,
    DROP CONSTRAINT loan_check2,
    ADD CONSTRAINT loan_consistent
        CHECK ((returned_at IS NULL) = (outcome IS NULL)
               AND (returned_at IS NULL OR returned_at >= checkout_at)
               AND (returned_at IS NOT NULL OR patron_id IS NOT NULL));
