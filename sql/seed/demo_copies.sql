-- Demo copies: gives every title that has no copy one to three of them,
-- dealt round the seven branches, with valid 14-digit item barcodes
-- (3 + institution 1234 + sequence + mod-10 check digit). Idempotent: titles
-- that already have copies are left alone.
WITH bare AS (
    SELECT b.id, b.format, b.call_number, row_number() OVER (ORDER BY b.id) AS n
    FROM bib b
    WHERE NOT EXISTS (SELECT 1 FROM item i WHERE i.bib_id = b.id)
), copies AS (
    SELECT bare.*, k
    FROM bare, generate_series(1, 1 + (bare.id % 3)::int) k
), numbered AS (
    SELECT c.*, row_number() OVER (ORDER BY c.id, c.k)
                + coalesce((SELECT max(substr(barcode, 6, 8)::bigint) FROM item
                            WHERE barcode ~ '^31234[0-9]{9}$'), 0) AS seq
    FROM copies c
), branches AS (
    SELECT id, row_number() OVER (ORDER BY code) - 1 AS slot, count(*) OVER () AS total
    FROM branch
)
INSERT INTO item (barcode, bib_id, owning_branch_id, current_branch_id, location, call_number,
                  item_type, price_cents, date_added)
SELECT '31234' || lpad(n.seq::text, 8, '0')
           || barcode_mod10_digit('31234' || lpad(n.seq::text, 8, '0')),
       n.id, br.id, br.id,
       CASE n.format WHEN 'dvd' THEN 'Media' WHEN 'video' THEN 'Media'
                     WHEN 'music' THEN 'Media' WHEN 'audiobook' THEN 'Media'
                     WHEN 'serial' THEN 'Periodicals' ELSE 'Adult Nonfiction' END,
       n.call_number, item_type_for_format(n.format),
       1500 + (n.id * 37 % 3000), current_date - (n.id % 900)::int
FROM numbered n
JOIN branches br ON br.slot = (n.id + n.k) % br.total;
