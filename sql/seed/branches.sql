-- The seven branches of the demo library system (modelled on Hartford Public
-- Library) with weekly hours. Idempotent: existing rows are left alone.
-- Real deployments load their own branches the same way:
--   psql -d carrel -f sql/seed/branches.sql

INSERT INTO branch (code, name, address, phone) VALUES
    ('DWN', 'Downtown Library', '500 Main Street, Hartford, CT 06103', '860-695-6300'),
    ('ALB', 'Albany Branch', '1250 Albany Avenue, Hartford, CT 06112', '860-695-7380'),
    ('BAR', 'Barbour Branch', '261 Barbour Street, Hartford, CT 06120', '860-695-7400'),
    ('CMP', 'Camp Field Branch', '30 Campfield Avenue, Hartford, CT 06114', '860-695-7440'),
    ('DWT', 'Dwight Branch', '7 New Park Avenue, Hartford, CT 06106', '860-695-7460'),
    ('PRK', 'Park Street Branch at the Lyric', '603 Park Street, Hartford, CT 06106', '860-695-7500'),
    ('RPK', 'Ropkins Branch', '1750 Main Street, Hartford, CT 06120', '860-695-7520')
ON CONFLICT (code) DO NOTHING;

-- Downtown: Monday to Thursday late, Friday and Saturday to five, closed Sunday.
INSERT INTO branch_hours (branch_id, weekday, opens, closes)
SELECT b.id, d, '10:00', CASE WHEN d <= 4 THEN '20:00'::time ELSE '17:00'::time END
FROM branch b, generate_series(1, 6) d WHERE b.code = 'DWN'
ON CONFLICT DO NOTHING;

-- Neighbourhood branches: weekdays ten to six, Saturday morning; closed Sunday.
INSERT INTO branch_hours (branch_id, weekday, opens, closes)
SELECT b.id, d, '10:00', CASE WHEN d <= 5 THEN '18:00'::time ELSE '14:00'::time END
FROM branch b, generate_series(1, 6) d WHERE b.code <> 'DWN'
ON CONFLICT DO NOTHING;
