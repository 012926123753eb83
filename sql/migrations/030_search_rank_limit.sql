-- 030: catalog search ranks at most 200 candidates by default, not 1000
-- (catalog_rank_limit, migration 029; sql/rules/catalog.sql, catalog_search).
--
-- A broad word's search costs about as much as the candidates it reads: each
-- is a heap row fetched, filtered and ranked. Measured at 200k bibs (scripts/
-- bench catalog, broad queries, 16 desks on 2 cores): 1000 candidates gave
-- p50 82 ms / p99 133 ms, 200 gave p50 41 ms / p99 85 ms. 200 is also where
-- the titles holding both of two common words usually fill the set, so the
-- third tier (a bitmap over two long posting lists of bib_search) is not read.
-- A page shows 20; 200 is ten pages of the best candidates, and paging
-- further still widens the set. A library that changed the value keeps it.
UPDATE library_setting SET value = '200'
WHERE name = 'catalog_rank_limit' AND value = '1000';
