-- 029: catalog search ranks a bounded set of candidates (sql/rules/catalog.sql,
-- catalog_search; docs/PROTOCOL.md "Details: catalog search").
--
-- A broad word ("history") matches a tenth of a large catalog; ranking and
-- counting every match made each search cost as much as the catalog is big.
-- Search now takes at most this many candidates, best first (the exact
-- title, then titles holding every word, then the other matches), ranks only
-- those, and reports "this many or more" (total_capped) beyond it. A search
-- with fewer matches ranks them all and counts them exactly. No new column
-- or index: title matches are found in bib.search (title words carry weight
-- A), so imports pay nothing for this.
INSERT INTO library_setting (name, value) VALUES
    ('catalog_rank_limit', '1000')
ON CONFLICT (name) DO NOTHING;
