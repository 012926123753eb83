-- Demo rooms and service desks: a few rooms at every branch (Downtown's
-- Community Hall splits into East and West), and the public desks with
-- their staffing minimums. Idempotent: existing rows are left alone.

INSERT INTO room (branch_id, name, capacity, features, bookable_by, category)
SELECT b.id, r.name, r.capacity, r.features, r.bookable_by, r.category
FROM branch b
JOIN (VALUES
    ('DWN', 'Community Hall', 120, '{projector,accessible,sound}'::text[], 'public', 'hall'),
    ('DWN', 'Hall East', 60, '{projector,accessible}'::text[], 'public', 'hall'),
    ('DWN', 'Hall West', 60, '{accessible}'::text[], 'public', 'hall'),
    ('DWN', 'Board Room', 16, '{projector,accessible}'::text[], 'public', 'meeting'),
    ('DWN', 'Study 1', 4, '{accessible}'::text[], 'public', 'study'),
    ('DWN', 'Study 2', 4, '{}'::text[], 'public', 'study'),
    ('DWN', 'Staff Training', 12, '{projector}'::text[], 'staff', 'meeting')
) AS r (branch, name, capacity, features, bookable_by, category) ON r.branch = b.code
ON CONFLICT (branch_id, name) DO NOTHING;

INSERT INTO room (branch_id, name, capacity, features, bookable_by, category)
SELECT b.id, r.name, r.capacity, r.features, 'public', r.category
FROM branch b
CROSS JOIN (VALUES
    ('Meeting Room', 30, '{projector,accessible}'::text[], 'meeting'),
    ('Study Room', 4, '{accessible}'::text[], 'study')
) AS r (name, capacity, features, category)
WHERE b.code <> 'DWN'
ON CONFLICT (branch_id, name) DO NOTHING;

INSERT INTO room_part (whole_id, part_id)
SELECT w.id, p.id
FROM room w JOIN branch b ON b.id = w.branch_id AND b.code = 'DWN'
JOIN room p ON p.branch_id = w.branch_id AND p.name IN ('Hall East', 'Hall West')
WHERE w.name = 'Community Hall'
ON CONFLICT DO NOTHING;

-- Desks: circulation everywhere (two staff, three on Saturdays at Downtown),
-- reference and children's at Downtown, one each.
INSERT INTO service_desk (branch_id, code, name)
SELECT b.id, d.code, d.name
FROM branch b
JOIN (VALUES ('circ', 'Circulation'), ('ref', 'Reference'), ('kids', 'Children''s')) AS d (code, name)
  ON d.code = 'circ' OR b.code = 'DWN'
ON CONFLICT (branch_id, code) DO NOTHING;

INSERT INTO desk_need (desk_id, weekdays, from_time, to_time, staff)
SELECT d.id, n.weekdays, n.from_time, n.to_time, n.staff
FROM service_desk d
JOIN branch b ON b.id = d.branch_id
JOIN (VALUES ('circ', NULL::smallint[], NULL::time, NULL::time, 2),
             ('ref', NULL, NULL, NULL, 1),
             ('kids', NULL, '12:00'::time, NULL, 1)) AS n (code, weekdays, from_time, to_time, staff)
  ON n.code = d.code
WHERE NOT EXISTS (SELECT 1 FROM desk_need x WHERE x.desk_id = d.id)
UNION ALL
SELECT d.id, '{6}'::smallint[], '12:00'::time, NULL::time, 3
FROM service_desk d JOIN branch b ON b.id = d.branch_id
WHERE b.code = 'DWN' AND d.code = 'circ'
  AND NOT EXISTS (SELECT 1 FROM desk_need x WHERE x.desk_id = d.id);
