-- weeding-seed: the catalog bench's copies get a life on the shelf, so the
-- weeding report has a public library's evidence to work on. Run after the
-- import of gen-marc's file (scripts/bench catalog). Set-based: one UPDATE of
-- bib, one of item. Reproducible: every draw is a hash of the row's id.
--
-- bib: audience and literary form from the call number where the import left
-- them empty (an import that reads 008/22 and 008/33 fills them from the same
-- draw: gen-marc writes both): FIC/E/J FIC fiction, J and E juvenile, YA
-- young adult. pub_year stays as imported (gen-marc: 65% under 5 years old).
--
-- item, by its title's age A (whole years since pub_year) and three draws
-- u1-u3, a collection that circulates but was never weeded:
--   10% never used (no checkout, no in-house use, last_used_at NULL), most
--     of them added lately (u2^2 * 2,000 days ago at most);
--   the rest last used within a year (70%), one to two years ago (15%) or
--     two to two + min(A, 8) years ago (15%), never before publication;
--   checkouts 1 + 12 u3 + 80 u3^10 (median 7; about 5% past 60, worn books);
--   in-house uses 10 u1 u3;
--   date_added half a year after publication (not before 1990) and before
--   the last use.
\set ON_ERROR_STOP on

UPDATE bib b
SET audience = CASE WHEN b.call_number ~ '^(J|E) ' THEN 'juvenile'
                    WHEN b.call_number ~ '^YA ' THEN 'young_adult'
                    ELSE 'adult' END,
    literary_form = CASE WHEN b.call_number ~ '^((J|YA) )?FIC |^E ' THEN 'fiction'
                         ELSE 'nonfiction' END
WHERE b.audience = '' AND b.literary_form = '';

WITH draw AS (
    SELECT i.id,
           greatest(0, extract(year FROM library_today())::int
                       - coalesce(nullif(b.pub_year, '')::int, 2000)) AS age,
           coalesce(nullif(b.pub_year, '')::int, 2000) AS year,
           (('x' || substr(md5('u1' || i.id), 1, 8))::bit(32)::bigint & 2147483647)
               / 2147483648.0 AS u1,
           (('x' || substr(md5('u2' || i.id), 1, 8))::bit(32)::bigint & 2147483647)
               / 2147483648.0 AS u2,
           (('x' || substr(md5('u3' || i.id), 1, 8))::bit(32)::bigint & 2147483647)
               / 2147483648.0 AS u3
    FROM item i JOIN bib b ON b.id = i.bib_id
),
life AS (
    SELECT d.id, d.u1 < 0.10 AS never,
           least(CASE WHEN d.u2 < 0.70 THEN d.u2 / 0.70 * 365
                      WHEN d.u2 < 0.85 THEN 365 + (d.u2 - 0.70) / 0.15 * 365
                      ELSE 730 + (d.u2 - 0.85) / 0.15 * 365 * least(d.age, 8) END,
                 greatest(d.age * 365 + 182, 0))::int AS idle_days,
           floor(d.u2 * d.u2 * 2000)::int AS new_days,
           (1 + floor(12 * d.u3 + 80 * d.u3 ^ 10))::int AS checkouts,
           floor(d.u1 * d.u3 * 10)::int AS in_house,
           greatest(make_date(d.year, 1, 1) + 182, date '1990-01-01') AS added
    FROM draw d
)
UPDATE item i
SET last_used_at = CASE WHEN l.never THEN NULL ELSE now() - make_interval(days => l.idle_days) END,
    last_circulated = CASE WHEN l.never THEN NULL
                           ELSE now() - make_interval(days => l.idle_days) END,
    circ_count = CASE WHEN l.never THEN 0 ELSE l.checkouts END,
    in_house_uses = CASE WHEN l.never THEN 0 ELSE l.in_house END,
    date_added = least(l.added, library_today() - CASE WHEN l.never THEN l.new_days
                                                       ELSE l.idle_days + 1 END)
FROM life l
WHERE l.id = i.id;

VACUUM ANALYZE bib, item;
