-- 036: a copy's circulation changes are HOT updates (issue 15).
--
-- Every checkout and checkin rewrites the copy's row (status, the branch it
-- is at, its counters and dates). PostgreSQL can update a row in place on its
-- page, without a new entry in every index of the table (a heap-only tuple),
-- only when no index reads a column that changed. Three indexes read status
-- (item_bib and item_owner_status as a key column, item_shelf in its WHERE)
-- and item_bib also current_branch_id: so each circulation wrote six index
-- entries for the copy, and later vacuumed them. Measured on the bench's
-- 2-core machine, one desk, the same SQL: 1.45 ms of PostgreSQL CPU a
-- checkout+checkin pair with them, 1.31 ms with these (minimum of four
-- runs each), and every item update HOT.
--
-- What reads them now:
--   * item_bib (bib_id): a title's copies (holds, availability, the catalog);
--     the few copies of one title are then filtered by branch and status.
--   * item_shelf (owning_branch_id, shelf_key, barcode): the weeding list's
--     shelf order (weeding.sql), which now skips the copies not on the shelf
--     as it reads them, and every per-branch count (the branch summary,
--     collection reports) by its first column; item_owner_status is gone.
--
-- fillfactor leaves room on each page for the new version of a row, which
-- HOT needs (the same page). It applies to pages written from now on (an
-- import, VACUUM FULL); pages already full make room as old versions are
-- pruned.

DROP INDEX item_bib;
CREATE INDEX item_bib ON item (bib_id);

DROP INDEX item_owner_status;

DROP INDEX item_shelf;
CREATE INDEX item_shelf ON item (owning_branch_id, shelf_key, barcode COLLATE "C");

ALTER TABLE item SET (fillfactor = 85);
