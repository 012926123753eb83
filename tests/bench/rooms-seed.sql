-- The rooms bench's library (scripts/bench rooms): the seven branches of
-- sql/seed/branches.sql with their rooms, a quarter of room bookings and a
-- quarter of staff schedules. Run once on a fresh database after the
-- migrations, the branch seed and `carreld --init-admin bench`:
--   psql -v ON_ERROR_STOP=1 -d carrel -f tests/bench/rooms-seed.sql
--
-- Reproducible: no random(); every choice is a hash of its own name (the
-- room, the day's offset from today, the position), so the same day of the
-- quarter gets the same bookings and shifts on every run. Rows are inserted
-- directly (not through room_book/shift_save) to be fast: the exclusion
-- constraints of room_block and shift still hold every row.
--
--   rooms      Downtown: two study rooms, a meeting room and the Hall, split
--              into Hall East and Hall West; each other branch 3-5 rooms
--              (study rooms, a meeting room, a community room, a staff-only
--              room). Categories are the migration's study/meeting/hall.
--   bookings   days 1-90 from today, in each room's opening hours, about
--              half the open time booked: study rooms by the hour, meeting
--              rooms 90 minutes in two-hour windows, halls three hours in
--              four-hour windows (the windows leave room for set-up and
--              clean-up). The whole Hall on Saturdays, its halves on other
--              days. 60% for patrons (ROOM-P-00000..00499), 30% groups, the
--              rest staff use; a tenth of hall bookings tentative.
--   desks      circ (2; 3 on Saturday afternoons), ref (1), kids (1 from
--              noon), Downtown also teen (1 on weekdays 15:00-20:00).
--   staff      15 per branch (<code>.s01..s15): a branch manager, three
--              librarians (those four and s05 MIC-eligible), clerks; the
--              s15 of Downtown, Albany and Barbour also work at the next
--              branch.
--   shifts     days 0-90, each open day in one or two halves (a half per
--              position of each desk's highest need that day); the ref
--              position carries the MIC. About 7% of positions are left
--              unstaffed (half of those as open shifts), so ScheduleGaps has
--              gaps to find.
--   programs   story time at each branch on Wednesday mornings (the
--              responsible librarian not always on shift).
\set ON_ERROR_STOP 1
BEGIN;

-- A number in [0, 1) from a name: the same name, the same number.
CREATE FUNCTION pg_temp.rnd(p text) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT ('x' || substr(md5(p), 1, 8))::bit(32)::bigint / 4294967296.0
$$;

-- Patrons who book rooms.
INSERT INTO patron (card, first_name, last_name, home_branch_id, category, expires_on)
SELECT format('ROOM-P-%s', lpad(n::text, 5, '0')), 'Room', 'Patron' || n,
       (SELECT id FROM branch ORDER BY id OFFSET n % 7 LIMIT 1), 'adult', '2099-01-01'
FROM generate_series(0, 499) n;

-- Rooms: (branch, name, capacity, features, bookable_by, category).
INSERT INTO room (branch_id, name, capacity, features, bookable_by, category, active)
SELECT b.id, r.name, r.capacity, r.features, r.bookable_by, r.category, true
FROM branch b
JOIN (VALUES
    ('DWN', 'Study 1', 4, '{whiteboard}'::text[], 'public', 'study'),
    ('DWN', 'Study 2', 6, '{whiteboard,accessible}', 'public', 'study'),
    ('DWN', 'Meeting A', 12, '{projector,accessible}', 'public', 'meeting'),
    ('DWN', 'Hall', 120, '{projector,accessible,stage}', 'public', 'hall'),
    ('DWN', 'Hall East', 60, '{projector,accessible}', 'public', 'hall'),
    ('DWN', 'Hall West', 60, '{accessible}', 'public', 'hall'),
    ('ALB', 'Study 1', 4, '{}', 'public', 'study'),
    ('ALB', 'Meeting Room', 10, '{projector}', 'public', 'meeting'),
    ('ALB', 'Community Room', 40, '{projector,accessible}', 'public', 'hall'),
    ('ALB', 'Staff Room', 8, '{}', 'staff', 'meeting'),
    ('BAR', 'Study 1', 4, '{}', 'public', 'study'),
    ('BAR', 'Meeting Room', 10, '{accessible}', 'public', 'meeting'),
    ('BAR', 'Community Room', 35, '{projector}', 'public', 'hall'),
    ('CMP', 'Study 1', 4, '{}', 'public', 'study'),
    ('CMP', 'Study 2', 4, '{accessible}', 'public', 'study'),
    ('CMP', 'Meeting Room', 12, '{projector}', 'public', 'meeting'),
    ('CMP', 'Community Room', 50, '{projector,accessible}', 'public', 'hall'),
    ('CMP', 'Staff Room', 6, '{}', 'staff', 'meeting'),
    ('DWT', 'Study 1', 4, '{}', 'public', 'study'),
    ('DWT', 'Study 2', 6, '{whiteboard}', 'public', 'study'),
    ('DWT', 'Meeting Room', 10, '{projector}', 'public', 'meeting'),
    ('DWT', 'Community Room', 30, '{accessible}', 'public', 'hall'),
    ('PRK', 'Study 1', 4, '{}', 'public', 'study'),
    ('PRK', 'Study 2', 4, '{}', 'public', 'study'),
    ('PRK', 'Meeting Room', 14, '{projector,accessible}', 'public', 'meeting'),
    ('PRK', 'Lyric Room', 60, '{projector,accessible,stage}', 'public', 'hall'),
    ('PRK', 'Staff Room', 6, '{}', 'staff', 'meeting'),
    ('RPK', 'Study 1', 4, '{}', 'public', 'study'),
    ('RPK', 'Meeting Room', 10, '{accessible}', 'public', 'meeting'),
    ('RPK', 'Community Room', 30, '{projector}', 'public', 'hall')
) AS r(code, name, capacity, features, bookable_by, category) ON r.code = b.code;

INSERT INTO room_part (whole_id, part_id)
SELECT w.id, p.id
FROM room w JOIN branch b ON b.id = w.branch_id AND b.code = 'DWN'
JOIN room p ON p.branch_id = w.branch_id AND p.name IN ('Hall East', 'Hall West')
WHERE w.name = 'Hall';

-- Bookings. A room's windows each day: study 60 minutes, meeting 120, hall
-- 240; a booking fills the window less its category's set-up and clean-up
-- (rounded up to the slot), so neighbouring bookings never overlap.
CREATE TEMP TABLE seed_booking AS
WITH slot AS (
    SELECT r.id AS room_id, r.name, b.code, d.n, c.setup_minutes, c.cleanup_minutes,
           c.slot_minutes, r.bookable_by, r.category, r.capacity,
           CASE r.category WHEN 'study' THEN 60 WHEN 'meeting' THEN 120 ELSE 240 END AS win,
           branch_open_range(b.id, library_today() + d.n) AS open
    FROM room r
    JOIN branch b ON b.id = r.branch_id
    JOIN room_category c ON c.code = r.category
    CROSS JOIN generate_series(1, 90) AS d(n)
    -- The whole Hall on Saturdays, its halves on the other days.
    WHERE CASE WHEN EXISTS (SELECT 1 FROM room_part p WHERE p.whole_id = r.id)
               THEN extract(isodow FROM library_today() + d.n) = 6
               WHEN EXISTS (SELECT 1 FROM room_part p WHERE p.part_id = r.id)
               THEN extract(isodow FROM library_today() + d.n) <> 6
               ELSE true END
), win AS (
    SELECT s.*, w.ws,
           s.win - s.slot_minutes * ceil((s.setup_minutes + s.cleanup_minutes)::numeric
                                         / s.slot_minutes)::int AS len,
           format('%s/%s/%s/%s', s.code, s.name, s.n, w.ws) AS tag
    FROM slot s,
         LATERAL generate_series(lower(s.open), upper(s.open) - make_interval(mins => s.win),
                                 make_interval(mins => s.win)) AS w(ws)
    WHERE s.open IS NOT NULL
)
SELECT room_id, category, bookable_by, capacity, tag,
       tstzrange(ws, ws + make_interval(mins => len)) AS during,
       tstzrange(ws - make_interval(mins => setup_minutes),
                 ws + make_interval(mins => len + cleanup_minutes)) AS blocked,
       pg_temp.rnd(tag || '/who') AS who
FROM win
-- About half the open time: len / win of each window taken, so the odds are
-- 0.5 * win / len.
WHERE len > 0 AND pg_temp.rnd(tag) < 0.5 * win / len;

CREATE TEMP TABLE seed_made (id bigint, room_id bigint, blocked tstzrange);
WITH ins AS (
    INSERT INTO room_booking (room_id, status, during, blocked, patron_id, group_name,
                              group_contact, purpose, attendees, created_by)
    SELECT s.room_id,
           CASE WHEN s.category = 'hall' AND pg_temp.rnd(s.tag || '/ok') < 0.1
                THEN 'tentative' ELSE 'confirmed' END,
           s.during, s.blocked,
           CASE WHEN s.bookable_by = 'public' AND s.who < 0.6
                THEN (SELECT p.id FROM patron p
                      WHERE p.card = format('ROOM-P-%s',
                                            lpad(((s.who * 1e6)::int % 500)::text, 5, '0')))
           END,
           CASE WHEN s.bookable_by = 'public' AND s.who >= 0.6 AND s.who < 0.9
                THEN format('Group %s', (s.who * 1e4)::int % 97) END,
           CASE WHEN s.bookable_by = 'public' AND s.who >= 0.6 AND s.who < 0.9
                THEN format('group%s@example.org', (s.who * 1e4)::int % 97) END,
           CASE WHEN s.bookable_by = 'public' AND s.who < 0.9 THEN 'seeded booking'
                ELSE 'staff meeting' END,
           greatest(1, least(s.capacity, 1 + (s.who * 1e3)::int % s.capacity)),
           (SELECT id FROM staff WHERE username = 'bench')
    FROM seed_booking s
    RETURNING id, room_id, blocked
)
INSERT INTO seed_made SELECT * FROM ins;

-- A booking blocks its room's units: the parts of a split room, else itself.
INSERT INTO room_block (booking_id, unit_id, blocked)
SELECT m.id, coalesce(p.part_id, m.room_id), m.blocked
FROM seed_made m LEFT JOIN room_part p ON p.whole_id = m.room_id;

-- Service desks and their minimums.
INSERT INTO service_desk (branch_id, code, name, active)
SELECT b.id, d.code, d.name, true
FROM branch b
CROSS JOIN (VALUES ('circ', 'Circulation'), ('ref', 'Reference'), ('kids', 'Children''s'),
                   ('teen', 'Teen')) AS d(code, name)
WHERE d.code <> 'teen' OR b.code = 'DWN';

INSERT INTO desk_need (desk_id, weekdays, from_time, to_time, staff)
SELECT d.id, n.weekdays, n.from_time, n.to_time, n.staff
FROM service_desk d
JOIN (VALUES ('circ', '{}'::smallint[], NULL::time, NULL::time, 2),
             ('circ', '{6}', '12:00', NULL, 3),
             ('ref', '{}', NULL, NULL, 1),
             ('kids', '{}', '12:00', NULL, 1),
             ('teen', '{1,2,3,4,5}', '15:00', '20:00', 1)) AS n(code, weekdays, from_time,
                                                              to_time, staff)
  ON n.code = d.code;

-- Staff: 15 a branch. They never log in (the hash is a placeholder).
INSERT INTO staff (username, display_name, role, password_hash, mic_eligible)
SELECT format('%s.s%s', lower(b.code), lpad(k::text, 2, '0')),
       format('%s Staff %s', b.code, k),
       (CASE WHEN k = 1 THEN 'branch_manager' WHEN k <= 4 THEN 'librarian'
             ELSE 'clerk' END)::staff_role,
       '$argon2id$bench-seed-no-login', k <= 5
FROM branch b, generate_series(1, 15) k;

INSERT INTO staff_branch (staff_id, branch_id)
SELECT s.id, b.id FROM staff s JOIN branch b ON s.username LIKE lower(b.code) || '.s%';
-- A few work at two branches: s15 of the first three also at the next one.
INSERT INTO staff_branch (staff_id, branch_id)
SELECT s.id, nb.id
FROM branch b
JOIN staff s ON s.username = lower(b.code) || '.s15'
JOIN branch nb ON nb.id = (SELECT min(id) FROM branch WHERE id > b.id)
WHERE b.code IN ('DWN', 'ALB', 'BAR');

-- Shifts for the quarter. Each open day is one half (open five hours or
-- less) or two; each half has one position per person a desk needs at most
-- that weekday; ref's first position is the MIC, taken by one of the five
-- MIC-eligible people in turn, the others by s06..s15 in turn.
CREATE TEMP TABLE seed_position AS
WITH day AS (
    SELECT b.id AS branch_id, b.code, d.n, library_today() + d.n AS day,
           branch_open_range(b.id, library_today() + d.n) AS open
    FROM branch b CROSS JOIN generate_series(0, 90) AS d(n)
), half AS (
    SELECT d.*, h.k,
           CASE WHEN upper(d.open) - lower(d.open) <= interval '5 hours' THEN 1 ELSE 2 END AS halves
    FROM day d CROSS JOIN generate_series(0, 1) AS h(k)
    WHERE d.open IS NOT NULL
), span AS (
    SELECT h.*,
           tstzrange(CASE WHEN h.k = 0 THEN lower(h.open) ELSE h.mid END,
                     CASE WHEN h.k = 1 OR h.halves = 1 THEN upper(h.open) ELSE h.mid END)
               AS during
    FROM (SELECT h.*, lower(h.open) + make_interval(mins => 30 * floor(
                     extract(epoch FROM upper(h.open) - lower(h.open)) / 3600)::int) AS mid
          FROM half h) h
    WHERE h.k < h.halves
), need AS (
    -- A desk's need in a half: the highest of its rules for that weekday
    -- whose hours meet the half.
    SELECT s.branch_id, s.code, s.n, s.k, s.during, d.id AS desk_id, d.code AS desk_code,
           max(dn.staff) AS staff
    FROM span s
    JOIN service_desk d ON d.branch_id = s.branch_id
    JOIN desk_need dn ON dn.desk_id = d.id
    WHERE (coalesce(cardinality(dn.weekdays), 0) = 0
           OR extract(isodow FROM s.day)::smallint = ANY (dn.weekdays))
      AND (dn.from_time IS NULL
           OR dn.from_time < (upper(s.during) AT TIME ZONE library_setting_text('timezone'))::time)
      AND (dn.to_time IS NULL
           OR dn.to_time > (lower(s.during) AT TIME ZONE library_setting_text('timezone'))::time)
    GROUP BY 1, 2, 3, 4, 5, 6, 7
)
SELECT n.*, p.j,
       n.desk_code = 'ref' AND p.j = 1 AS mic,
       row_number() OVER (PARTITION BY n.branch_id, n.n, n.k
                          ORDER BY n.desk_code = 'ref' AND p.j = 1, n.desk_code, p.j) AS pos,
       format('%s/%s/%s/%s/%s', n.code, n.n, n.k, n.desk_code, p.j) AS tag
FROM need n CROSS JOIN LATERAL generate_series(1, n.staff) AS p(j);

INSERT INTO shift (staff_id, branch_id, desk_id, during, mic, note, created_by)
SELECT CASE WHEN pg_temp.rnd(p.tag) < 0.035 THEN NULL
            ELSE (SELECT s.id FROM staff s
                  WHERE s.username = format('%s.s%s', lower(p.code), lpad(
                      CASE WHEN p.mic THEN 1 + (p.n * 2 + p.k) % 5
                           ELSE 6 + (p.n * 7 + p.k * 3 + p.pos::int) % 10 END::text, 2, '0')))
       END,
       p.branch_id, p.desk_id, p.during, p.mic,
       CASE WHEN pg_temp.rnd(p.tag) < 0.035 THEN 'unfilled' ELSE '' END,
       (SELECT id FROM staff WHERE username = 'bench')
FROM seed_position p
-- About 7% of positions are gaps: half of them open shifts, half nothing.
WHERE pg_temp.rnd(p.tag) >= 0.035 * 2 OR pg_temp.rnd(p.tag) < 0.035;

-- Programs: story time at every branch on Wednesdays 10:30-11:15, with a
-- librarian (s02) responsible, who is on shift some Wednesday mornings and
-- not others (ScheduleGaps reports those sessions as program_unstaffed).
INSERT INTO program (title, description, audience, venue, branch_id, presenter, staff_id,
                     category, created_by)
SELECT 'Story time', 'Stories and songs for the youngest.', '0-5', 'branch', b.id,
       'Children''s librarian', s.id, 'story_time', (SELECT id FROM staff WHERE username = 'bench')
FROM branch b JOIN staff s ON s.username = lower(b.code) || '.s02';

INSERT INTO program_session (program_id, during)
SELECT p.id, tstzrange(local_at(library_today() + d, '10:30'), local_at(library_today() + d, '11:15'))
FROM program p, generate_series(1, 90) d
WHERE p.title = 'Story time' AND extract(isodow FROM library_today() + d) = 3;

COMMIT;
VACUUM ANALYZE;
