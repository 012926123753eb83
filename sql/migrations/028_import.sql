-- 028: import at full speed (issue 13).
--
-- bib_import_batch (sql/rules/import.sql) looks every record's ISBNs up in
-- bib_isbns. With GIN's fast update, new entries wait in a pending list
-- that every lookup reads in full (up to gin_pending_list_limit, 4 MB) until
-- a vacuum or a full list moves them into the index: during a large import
-- each ISBN lookup read megabytes, and matching slowed as the file went on.
-- An ISBN array has one or two entries, so inserting them directly costs
-- little; lookups then stay a few index pages. (bib_search keeps fast update:
-- a title's dozens of words per insert are what it is for.)
ALTER INDEX bib_isbns SET (fastupdate = off);
ALTER INDEX bib_issns SET (fastupdate = off);
SELECT gin_clean_pending_list('bib_isbns'::regclass);
SELECT gin_clean_pending_list('bib_issns'::regclass);
