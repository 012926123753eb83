-- 029: catalog search ranks a bounded set of candidates (sql/rules/catalog.sql,
-- catalog_search; docs/PROTOCOL.md "Details: catalog search").
--
-- A broad word ("history") matches a tenth of a large catalog; ranking and
-- counting every match made each search cost as much as the catalog is big.
-- Search now takes at most this many candidates, best first (the exact
-- title, then titles holding every word, then the other matches), ranks only
-- those, and reports "this many or more" (total_capped) beyond it. A search
-- with fewer matches ranks them all and counts them exactly.
--
-- 200 by default: a broad word's search costs about as much as the candidates
-- it reads (a heap row fetched, filtered and ranked each). Measured at 200k
-- bibs (scripts/bench catalog, broad queries, 16 desks on 2 cores): 1000
-- candidates gave p50 82 ms / p99 133 ms, 200 gave p50 41 ms / p99 85 ms. 200
-- is also where the titles holding both of two common words usually fill the
-- set, so the third tier (a bitmap over two long posting lists of bib_search)
-- is not read. A page shows 20; 200 is ten pages, and paging further widens
-- the set.
INSERT INTO library_setting (name, value) VALUES
    ('catalog_rank_limit', '200')
ON CONFLICT (name) DO NOTHING;

-- The title words alone, for the "titles holding every word" candidates: a
-- broad word's posting list here is about half of its list in bib_search and
-- needs no recheck of weights on the row (measured at 200k bibs: that tier
-- read 3-5 times faster than through bib_search with weight A). Costs the
-- import one more small GIN entry set per bib.
CREATE INDEX bib_title_words ON bib USING gin (to_tsvector('carrel_english', title));
