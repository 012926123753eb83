-- The service bench's library (scripts/bench service): desks and the people
-- who tally at them, a year of inquiries, and a year of follow-up tickets.
-- Run once on a fresh database after the migrations, the branch seed and
-- `carreld --init-admin bench`:
--   psql -v ON_ERROR_STOP=1 -v tickets=100000 -d carrel -f tests/bench/service-seed.sql
--
-- Reproducible: no random(); every choice is a hash of its own name (as in
-- rooms-seed.sql). Set-based: one INSERT ... SELECT generate_series per
-- table, rows inserted directly (not through inquiry_add/ticket_open).
--
--   desks      circ and ref at every branch (service_desk).
--   staff      5 clerks a branch (<code>.desk01..05), each with a
--              workstation of the branch (<code>-desk-01..05) and the bench
--              admin's password, so the tally desks log in as they would;
--              a coordinator coord.bench (logs in at bench-desk).
--   inquiries  a year before today: 40-80 tallies a branch an open day
--              (twice that Downtown), in opening hours, the kinds of
--              tests/bench/tally.h's proportions.
--   queues     the migration's (reference, ill, it, circulation) and a
--              ref-<code> queue a branch (made here if the trigger has not);
--              the system queues' members are desk01 and desk02 of DWN and
--              desk01 of ALB, BAR, CMP and PRK. dwn.desk01 (the bench's
--              member) works reference, circulation and ref-dwn.
--   tickets    :tickets (default 100,000) over the year, ids in the order
--              they were opened. The last ones, of about two weeks, are
--              mostly live: about 3% of all (3,000 of 100,000), spread over
--              the queues (system reference a quarter, the branch queues
--              almost half); of the running ones (new, open) a tenth flagged
--              and a twentieth escalated; the rest closed, those closed more
--              than 90 days ago anonymised (as tickets_tick leaves them).
--              Owners: the queue's people; a card or an e-mail address or
--              a phone number.
--   messages   1-4 a ticket: the 'opened' event, notes and replies, a
--              'closed' event; anonymised ones keep only the events' text.
-- The three big inserts (tallies, tickets, messages) run with
-- session_replication_role = replica, like gen-circ's load: no foreign-key
-- trigger per row (every reference is looked up from its table here); the
-- seed refuses to run if those tables ever get triggers of their own.
-- The clock columns are set directly (due_at / flag_at as intervals from
-- now, not through open_add): the bench runs with the tickets timer off.
\set ON_ERROR_STOP 1
\if :{?tickets}
\else
\set tickets 100000
\endif
BEGIN;
-- Compiling these few big statements costs more than it saves.
SET LOCAL jit = off;

CREATE FUNCTION pg_temp.rnd(p text) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT ('x' || substr(md5(p), 1, 8))::bit(32)::bigint / 4294967296.0
$$;

INSERT INTO service_desk (branch_id, code, name, active)
SELECT b.id, d.code, d.name, true
FROM branch b CROSS JOIN (VALUES ('circ', 'Circulation'), ('ref', 'Reference')) AS d(code, name)
ON CONFLICT (branch_id, code) DO NOTHING;

-- People and their workstations. The hash is the bench admin's: they log in
-- with the bench password.
INSERT INTO staff (username, display_name, role, password_hash)
SELECT format('%s.desk%s', lower(b.code), lpad(k::text, 2, '0')),
       format('%s Desk %s', b.code, k), 'clerk',
       (SELECT password_hash FROM staff WHERE username = 'bench')
FROM branch b, generate_series(1, 5) k;
INSERT INTO staff (username, display_name, role, password_hash)
VALUES ('coord.bench', 'Bench Coordinator', 'coordinator',
        (SELECT password_hash FROM staff WHERE username = 'bench'));
INSERT INTO staff_branch (staff_id, branch_id)
SELECT s.id, b.id FROM staff s JOIN branch b ON s.username LIKE lower(b.code) || '.desk%'
UNION ALL
SELECT s.id, b.id FROM staff s, branch b WHERE s.username = 'coord.bench' AND b.code = 'DWN';
INSERT INTO workstation (name, branch_id)
SELECT format('%s-desk-%s', lower(b.code), lpad(k::text, 2, '0')), b.id
FROM branch b, generate_series(1, 5) k;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_trigger
               WHERE tgrelid IN ('inquiry'::regclass, 'ticket'::regclass,
                                 'ticket_message'::regclass) AND NOT tgisinternal) THEN
        RAISE EXCEPTION 'inquiry, ticket or ticket_message has a trigger that this seed would '
                        'skip (session_replication_role = replica): seed it another way';
    END IF;
END
$$;

-- A year of tallies. The kinds as tally.h has them: of twenty, 6
-- directional, 4 item_location, 3 technology, 3 reference, 2 account, one
-- readers' advisory and one other.
SET LOCAL session_replication_role = replica;
INSERT INTO inquiry (branch_id, desk_id, channel, kind_id, read_level, minutes, asked_at,
                     staff_id, workstation_id)
SELECT d.branch_id, d.desk_id, CASE WHEN x.r < 0.2 THEN 'phone' ELSE 'in_person' END, c.id,
       CASE WHEN x.kind = 'directional' THEN 1 ELSE 1 + (x.r * 100)::int % 3 END,
       1 + (x.r * 1000)::int % 10,
       lower(d.open) + (upper(d.open) - lower(d.open)) * x.r,
       d.staff_id, d.workstation_id
FROM (SELECT b.id AS branch_id, b.code, n.n, o.open, sd.id AS desk_id, s.id AS staff_id,
             w.id AS workstation_id
      FROM branch b
      JOIN service_desk sd ON sd.branch_id = b.id AND sd.code = 'ref'
      JOIN staff s ON s.username = lower(b.code) || '.desk01'
      JOIN workstation w ON w.name = lower(b.code) || '-desk-01'
      CROSS JOIN generate_series(1, 365) AS n(n)
      CROSS JOIN LATERAL branch_open_range(b.id, library_today() - n.n) AS o(open)
      WHERE o.open IS NOT NULL) d
CROSS JOIN LATERAL generate_series(
    1, (CASE WHEN d.code = 'DWN' THEN 2 ELSE 1 END)
       * (40 + (pg_temp.rnd(d.code || d.n) * 40)::int)) AS t(t)
-- OFFSET 0: the hash once a tally, not once a use.
CROSS JOIN LATERAL (
    SELECT h.r, CASE WHEN h.r < 0.30 THEN 'directional' WHEN h.r < 0.50 THEN 'item_location'
                     WHEN h.r < 0.65 THEN 'technology' WHEN h.r < 0.80 THEN 'reference'
                     WHEN h.r < 0.90 THEN 'account' WHEN h.r < 0.95 THEN 'readers_advisory'
                     ELSE 'other' END AS kind
    FROM (SELECT pg_temp.rnd(format('%s/%s/%s', d.code, d.n, t.t)) AS r OFFSET 0) h) x
JOIN service_code c ON c.list = 'inquiry_kind' AND c.branch_id IS NULL AND c.code = x.kind;
SET LOCAL session_replication_role = origin;

-- Queues: a branch made after the migration has its reference queue from
-- the trigger; made here too, so the seed does not depend on it.
INSERT INTO ticket_queue (code, name, branch_id, hours_branch_id)
SELECT 'ref-' || lower(b.code), left('Reference, ' || b.name, 100), b.id, b.id
FROM branch b
ON CONFLICT (code) DO NOTHING;
INSERT INTO ticket_queue_member (queue_id, staff_id)
SELECT q.id, s.id
FROM ticket_queue q, staff s
WHERE q.branch_id IS NULL
  AND s.username IN ('dwn.desk01', 'dwn.desk02', 'alb.desk01', 'bar.desk01', 'cmp.desk01',
                     'prk.desk01')
ON CONFLICT DO NOTHING;

INSERT INTO patron (card, first_name, last_name, home_branch_id, category, expires_on)
SELECT format('SVC-P-%s', lpad(n::text, 5, '0')), 'Service', 'Patron' || n,
       (SELECT id FROM branch ORDER BY id OFFSET n % 7 LIMIT 1), 'adult', '2099-01-01'
FROM generate_series(0, 999) n;

-- The tickets, one row each: n in 1..:tickets, opened evenly over the year.
CREATE TEMP TABLE seed_ticket AS
WITH p AS MATERIALIZED (
    SELECT :tickets::int AS total,
           greatest(1, :tickets::int * 3 / 100) AS live,
           (SELECT coalesce(max(id), 0) FROM ticket) AS base
), t AS MATERIALIZED ( -- each hash once
    SELECT n, p.base + n AS id, p.total, p.live,
           now() - interval '365 days' * (p.total - n) / p.total - interval '1 hour' AS created_at,
           pg_temp.rnd('q/' || n) AS rq, pg_temp.rnd('s/' || n) AS rs,
           pg_temp.rnd('o/' || n) AS ro, pg_temp.rnd('c/' || n) AS rc
    FROM p, generate_series(1, p.total) n
), q AS (
    -- Queue weights: reference 25%, ill, it and circulation 10% each, the
    -- branch queues the rest (Downtown's twice a branch's share).
    SELECT t.*,
           CASE WHEN rq < 0.25 THEN 'reference' WHEN rq < 0.35 THEN 'ill'
                WHEN rq < 0.45 THEN 'it' WHEN rq < 0.55 THEN 'circulation'
                WHEN rq < 0.55 + 0.45 * 2 / 8 THEN 'ref-dwn'
                ELSE (ARRAY['ref-alb', 'ref-bar', 'ref-cmp', 'ref-dwt', 'ref-prk',
                            'ref-rpk'])[1 + floor((rq - 0.6625) / 0.3375 * 6)::int % 6]
           END AS queue,
           -- live: three in four of the last live/0.75 tickets
           n > total - (live / 0.75)::int AND rs < 0.75 AS is_live
    FROM t
)
SELECT q.*, tq.id AS queue_id, tq.branch_id AS queue_branch,
       CASE WHEN NOT is_live THEN 'closed'
            WHEN ro < 0.3 THEN 'new' WHEN ro < 0.7 THEN 'open' ELSE 'waiting' END AS status
FROM q JOIN ticket_queue tq ON tq.code = q.queue;

-- The clock of a live ticket (see the top); a closed ticket's closing time;
-- who owns it and whose it is (by name: joined below).
CREATE TEMP TABLE seed_clock AS
SELECT k.*, k.status = 'closed' AND k.ended_at < now() - interval '90 days' AS anonymised,
       CASE WHEN k.status = 'new' THEN NULL
            WHEN k.status <> 'closed' AND k.ro < 0.35 THEN NULL -- open and unclaimed
            WHEN k.queue_branch IS NULL
            THEN (ARRAY['dwn.desk01', 'dwn.desk02', 'alb.desk01', 'bar.desk01', 'cmp.desk01',
                        'prk.desk01'])[1 + k.n % 6]
            ELSE format('%s.desk%s', substr(k.queue, 5), lpad((1 + k.n % 5)::text, 2, '0'))
       END AS owner_name,
       CASE WHEN k.rc < 0.4 THEN format('SVC-P-%s', lpad((k.n % 1000)::text, 5, '0')) END AS card
FROM (SELECT s.*,
             s.status IN ('new', 'open') AS running,
             -- live is rs < 0.75: a tenth flagged, half of those escalated
             s.status IN ('new', 'open') AND s.rs >= 0.6875 AND s.rs < 0.725 AS escalated,
             s.status IN ('new', 'open') AND s.rs >= 0.65 AND s.rs < 0.725 AS flagged,
             s.rs < 0.05 AS kb,
             least(now() - interval '1 minute',
                   s.created_at + interval '2 hours' + interval '70 hours' * s.rc) AS ended_at
      FROM seed_ticket s) k;

SET LOCAL session_replication_role = replica;
INSERT INTO ticket (id, queue_id, status, subject, question, owner_id, patron_id, contact_email,
                    contact_phone, reply_channel, channel, kb, created_at, created_by, updated_at,
                    closed_at, clock_used_s, clock_since, flag_at, due_at, flagged_at,
                    escalated_at, anonymised_at)
OVERRIDING SYSTEM VALUE
SELECT c.id, c.queue_id, c.status,
       CASE WHEN c.anonymised AND NOT c.kb THEN '' ELSE format('Question %s about %s', c.n,
           (ARRAY['a local history photograph', 'an interlibrary loan', 'printing from a phone',
                  'a lost card', 'a book club set', 'census records', 'a late fee',
                  'a tax form'])[1 + c.n % 8]) END,
       CASE WHEN c.anonymised AND NOT c.kb THEN '' ELSE format(
           'A patron asked at the desk (%s) and needs a fuller answer than we could give then; '
           'follow up with sources and call or write back. Ticket seed %s.', c.queue, c.n) END,
       o.id, CASE WHEN NOT c.anonymised THEN p.id END,
       CASE WHEN NOT c.anonymised AND c.rc >= 0.4 AND c.rc < 0.9
            THEN format('patron%s@example.org', c.n % 5000) END,
       CASE WHEN NOT c.anonymised AND c.rc >= 0.9
            THEN format('860-555-%s', lpad((c.n % 10000)::text, 4, '0')) END,
       CASE WHEN c.rc < 0.9 THEN 'email' ELSE 'sms' END,
       (ARRAY['in_person', 'in_person', 'phone', 'email', 'chat'])[1 + c.n % 5],
       c.kb, c.created_at, bench.id,
       CASE WHEN c.status = 'closed' THEN c.ended_at
            ELSE c.created_at + (now() - c.created_at) * c.ro END,
       CASE WHEN c.status = 'closed' THEN c.ended_at END,
       CASE WHEN c.running THEN (3600 * 8 * c.rc)::bigint ELSE (3600 * 4 * c.rc)::bigint END,
       CASE WHEN c.running THEN c.created_at + (now() - c.created_at) * c.ro END,
       -- flag_at / due_at: passed for the flagged / escalated, ahead for the others
       CASE WHEN NOT c.running THEN NULL
            WHEN c.flagged THEN now() - interval '6 hours' * (1 + c.rc)
            ELSE now() + interval '4 hours' + interval '40 hours' * c.rc END,
       CASE WHEN NOT c.running THEN NULL
            WHEN c.escalated THEN now() - interval '1 hour' * (1 + c.rc)
            WHEN c.flagged THEN now() + interval '3 hours' * c.rc + interval '1 minute'
            ELSE now() + interval '8 hours' + interval '60 hours' * c.rc END,
       CASE WHEN c.flagged THEN now() - interval '6 hours' * (1 + c.rc) END,
       CASE WHEN c.escalated THEN now() - interval '1 hour' * (1 + c.rc) END,
       CASE WHEN c.anonymised THEN c.ended_at + interval '90 days' END
FROM seed_clock c
JOIN staff bench ON bench.username = 'bench'
LEFT JOIN staff o ON o.username = c.owner_name
LEFT JOIN patron p ON p.card = c.card
ORDER BY c.id;
SELECT setval(pg_get_serial_sequence('ticket', 'id'), (SELECT max(id) FROM ticket));

-- The history: 'opened', then notes and replies, then 'closed'.
INSERT INTO ticket_message (ticket_id, kind, at, staff_id, text)
SELECT t.id, m.kind, m.at, (SELECT id FROM staff WHERE username = 'bench'),
       CASE WHEN m.kind = 'event' THEN m.text WHEN t.anonymised_at IS NOT NULL THEN NULL
            ELSE m.text END
FROM ticket t
JOIN seed_ticket s ON s.id = t.id
CROSS JOIN LATERAL (
    SELECT 'event' AS kind, t.created_at AS at, 'opened in ' || s.queue AS text, 0 AS ord
    UNION ALL
    SELECT CASE WHEN k % 2 = 1 THEN 'note' ELSE 'reply' END,
           t.created_at + (t.updated_at - t.created_at) * k / 4,
           CASE WHEN k % 2 = 1 THEN 'Checked the catalogue and the local history files; '
                                    || 'asked the branch for the binder.'
                ELSE 'Thank you for your question. We found two sources and set them aside '
                     || 'for you at the desk; they are held until Friday.' END, k
    FROM generate_series(1, (s.rc * 100)::int % 3) k
    UNION ALL
    SELECT 'event', t.closed_at, 'closed', 9 WHERE t.status = 'closed'
) m
ORDER BY t.id, m.ord;
SET LOCAL session_replication_role = origin;

COMMIT;
VACUUM ANALYZE;
