-- The weeding list reads a branch's shelf in shelf order. The shelf key of
-- each copy (call_number_shelf_key, migration 026: plain string work, but a
-- PL/pgSQL call) was worked out again for every copy the list read, twice
-- per copy per page (where a chunk of the shelf ends, then its rows): most
-- of the time of a whole branch's report. Stored once per copy as a
-- generated column (kept by PostgreSQL whenever call_number changes), the
-- list reads it with the row. The index item_shelf is rebuilt on the column
-- (same order: the key in "C" collation, then the barcode).
ALTER TABLE item ADD COLUMN shelf_key text COLLATE "C"
    GENERATED ALWAYS AS (call_number_shelf_key(call_number)) STORED;

DROP INDEX item_shelf;
CREATE INDEX item_shelf ON item (owning_branch_id, shelf_key, barcode COLLATE "C")
    WHERE status = 'available';
