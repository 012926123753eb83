-- Follow-up tickets: queues (ticket_queue_list, ticket_queue_save, and the
-- reference queue every new branch gets), tickets (ticket_open, ticket_list,
-- ticket_show, ticket_change, ticket_post) and the periodic job
-- (tickets_tick: flagging, escalation, anonymisation). Called by
-- server/tickets.c. docs/TICKETS.md.
--
-- The clock: each queue has a target in open hours (of its hours branch, or
-- of any branch). A ticket's clock runs while it is new or open and stops
-- while it waits for the patron or is closed; clock_used_s holds the open
-- seconds used before the clock last started (clock_since), and flag_at and
-- due_at (when 75% and 100% of the target will have been used) are computed
-- from the opening hours whenever the clock starts or the queue changes, so
-- the timer only compares times. Every clock reading uses ticket_now()
-- (now() moved by the setting ticket_clock_offset_minutes, for tests and
-- drills).
--
-- Lock order: ticket (FOR UPDATE, one at a time), then inquiry, then notice.
-- The document readers (room_doc_text, room_doc_bigint, room_doc_int,
-- room_branch_id, room_refuse) are the ones rooms.sql defines.

DROP FUNCTION IF EXISTS ticket_rows(bigint[]);
DROP FUNCTION IF EXISTS ticket_message_rows(bigint);
DROP FUNCTION IF EXISTS ticket_show_rows(bigint);
DROP FUNCTION IF EXISTS ticket_show(bigint, boolean, bigint);
DROP FUNCTION IF EXISTS ticket_open(uuid, bigint, bigint, jsonb, bigint);
DROP FUNCTION IF EXISTS ticket_open(uuid, bigint, bigint, jsonb, bigint, integer);
DROP FUNCTION IF EXISTS ticket_list(bigint, boolean, text, boolean, boolean, boolean, text, text,
                                    integer, bigint);
DROP FUNCTION IF EXISTS ticket_change(uuid, bigint, bigint, boolean, jsonb);
DROP FUNCTION IF EXISTS ticket_post(uuid, bigint, bigint, boolean, bigint, text, text, boolean);
DROP FUNCTION IF EXISTS ticket_queue_rows(bigint[]);
DROP FUNCTION IF EXISTS ticket_queue_list(bigint, boolean);
DROP FUNCTION IF EXISTS ticket_queue_save(bigint, bigint, jsonb);
DROP FUNCTION IF EXISTS ticket_keyed(uuid, jsonb, bigint);
DROP FUNCTION IF EXISTS ticket_replay(uuid, bigint, text);
DROP TYPE IF EXISTS ticket_show_row;
DROP TYPE IF EXISTS ticket_out;
DROP TYPE IF EXISTS ticket_message_out;
DROP TYPE IF EXISTS ticket_queue_out;

-- A ticket as replies show it (proto Ticket, fields 1-24 in order).
CREATE TYPE ticket_out AS (
    id bigint, queue text, branch_code text, status text, subject text, question text,
    owner text, card text, patron_name text, contact_email text, contact_phone text,
    reply_channel text, channel text, created_at text, updated_at text, due_at text,
    used_pct integer, flagged boolean, escalated boolean, kb boolean, closed_at text,
    inquiry_id bigint, anonymised boolean, created_by text);

-- One line of a ticket's history (proto TicketMessage, fields 1-7 in order).
CREATE TYPE ticket_message_out AS (
    id bigint, kind text, at text, username text, text text, sent_to text, delivery text);

-- TicketShowReply as rows: kind 'ticket' (the ticket columns) first, then
-- kind 'message' (the m_ columns) oldest first.
CREATE TYPE ticket_show_row AS (
    kind text,
    id bigint, queue text, branch_code text, status text, subject text, question text,
    owner text, card text, patron_name text, contact_email text, contact_phone text,
    reply_channel text, channel text, created_at text, updated_at text, due_at text,
    used_pct integer, flagged boolean, escalated boolean, kb boolean, closed_at text,
    inquiry_id bigint, anonymised boolean, created_by text,
    m_id bigint, m_kind text, m_at text, m_username text, m_text text, m_sent_to text,
    m_delivery text);

-- A queue as replies show it (proto TicketQueue, fields 1-10 in order).
CREATE TYPE ticket_queue_out AS (
    id bigint, code text, name text, branch_code text, hours_branch_code text,
    target_hours integer, active boolean, members text[], open_count integer,
    overdue_count integer);

-- ---------------------------------------------------------------- the clock

-- The tickets' clock: now, moved forward by ticket_clock_offset_minutes
-- (tests and drills drive flagging and escalation with it, never by waiting).
CREATE OR REPLACE FUNCTION ticket_now() RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT now() + make_interval(
        mins => coalesce(library_setting_text('ticket_clock_offset_minutes')::integer, 0))
$$;

-- When a clock started at p_since with p_used open seconds already used
-- reaches 75% (flag_at) and 100% (due_at) of the queue's target, counted in
-- the queue's open hours. NULL when that is more than a year of open hours
-- away (a queue whose hours branch is never open).
CREATE OR REPLACE FUNCTION ticket_deadlines(p_queue bigint, p_since timestamptz, p_used bigint,
                                            OUT flag_at timestamptz, OUT due_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    q ticket_queue;
    v_target bigint;
    v_flag bigint;
BEGIN
    SELECT * INTO q FROM ticket_queue WHERE id = p_queue;
    v_target := q.target_hours::bigint * 3600;
    v_flag := (v_target * 3 + 3) / 4;  -- 75%, rounded up
    flag_at := open_add(q.hours_branch_id, p_since, greatest(v_flag - p_used, 0));
    -- the rest of the way from the flag, unless the flag is already past
    due_at := CASE WHEN p_used < v_flag AND flag_at IS NOT NULL
                   THEN open_add(q.hours_branch_id, flag_at, v_target - v_flag)
                   ELSE open_add(q.hours_branch_id, p_since, greatest(v_target - p_used, 0)) END;
END
$$;

-- Move a ticket (already locked) to a status and queue, keeping its clock
-- true: the open seconds the running clock used (in the old queue's hours)
-- are added to clock_used_s; if the new status runs the clock, it starts
-- again now and the deadlines are computed for the (new) queue. p_reset
-- clears flagged_at and escalated_at (a transfer: the new queue's staff are
-- told again when its target is near).
CREATE OR REPLACE FUNCTION ticket_move(p_id bigint, p_status text, p_queue bigint,
                                       p_reset boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
    v_now timestamptz := ticket_now();
    v_used bigint;
    v_since timestamptz;
    v_flag timestamptz;
    v_due timestamptz;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_id;
    v_used := t.clock_used_s;
    IF t.clock_since IS NOT NULL THEN
        v_used := v_used + open_seconds((SELECT q.hours_branch_id FROM ticket_queue q
                                         WHERE q.id = t.queue_id), t.clock_since, v_now);
    END IF;
    IF p_status IN ('new', 'open') THEN
        v_since := v_now;
        SELECT d.flag_at, d.due_at INTO v_flag, v_due
        FROM ticket_deadlines(p_queue, v_since, v_used) d;
    END IF;
    UPDATE ticket SET status = p_status, queue_id = p_queue, clock_used_s = v_used,
                      clock_since = v_since, flag_at = v_flag, due_at = v_due,
                      flagged_at = CASE WHEN p_reset THEN NULL ELSE flagged_at END,
                      escalated_at = CASE WHEN p_reset THEN NULL ELSE escalated_at END,
                      closed_at = CASE WHEN p_status = 'closed' THEN coalesce(closed_at, now()) END,
                      updated_at = now()
    WHERE id = p_id;
END
$$;

-- Whether a mark is up (flagged: flagged_at, flag_at; escalated:
-- escalated_at, due_at): raised by the timer, or its time has passed and the
-- timer has not run since.
CREATE OR REPLACE FUNCTION ticket_past(p_raised timestamptz, p_at timestamptz,
                                       p_now timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_raised IS NOT NULL OR coalesce(p_at <= p_now, false)
$$;

-- ---------------------------------------------------------------- who works a queue

-- Whether a staff member works a queue: p_all (coordinators and admins: the
-- server decides), a member of the queue, or (a branch's queue) staff of the
-- branch.
CREATE OR REPLACE FUNCTION ticket_works(p_staff bigint, p_all boolean, p_queue bigint)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(p_all, false)
        OR EXISTS (SELECT 1 FROM ticket_queue_member m
                   WHERE m.queue_id = p_queue AND m.staff_id = p_staff)
        OR EXISTS (SELECT 1 FROM ticket_queue q JOIN staff_branch sb ON sb.branch_id = q.branch_id
                   WHERE q.id = p_queue AND sb.staff_id = p_staff)
$$;

-- The usernames a ticket's events go to: the owner, the queue's members and
-- (a branch's queue) the branch's staff; enabled accounts, at most 100,
-- ranked so a cut drops the branch's staff first: the owner, then the named
-- members, then the rest. Coordinators get every event anyway ("all
-- branches").
CREATE OR REPLACE FUNCTION ticket_recipients(p_ticket bigint) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(x.username ORDER BY x.rank, x.username), '{}')
    FROM (SELECT s.username, min(w.rank) AS rank
          FROM ticket t JOIN ticket_queue q ON q.id = t.queue_id
          CROSS JOIN LATERAL (SELECT t.owner_id, 0
                              UNION ALL
                              SELECT m.staff_id, 1 FROM ticket_queue_member m
                              WHERE m.queue_id = q.id
                              UNION ALL
                              SELECT sb.staff_id, 2 FROM staff_branch sb
                              WHERE sb.branch_id = q.branch_id) w (staff_id, rank)
          JOIN staff s ON s.id = w.staff_id AND NOT s.disabled
          WHERE t.id = p_ticket
          GROUP BY s.username
          ORDER BY min(w.rank), s.username
          LIMIT 100) x
$$;

-- Refuse unless the staff member works the ticket's queue.
CREATE OR REPLACE FUNCTION ticket_check_works(p_staff bigint, p_all boolean, t ticket)
RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT ticket_works(p_staff, p_all, t.queue_id) THEN
        PERFORM room_refuse('CR403', 'not_queue_staff', format(
            'Ticket %s is in queue %s; only its staff may see or change it.', t.id,
            (SELECT q.code FROM ticket_queue q WHERE q.id = t.queue_id)));
    END IF;
END
$$;

-- Refuse a ticket number no ticket has (CR404 ticket): ticket_lock and
-- ticket_show, which read the ticket with and without a lock.
CREATE OR REPLACE FUNCTION ticket_missing(p_id bigint) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM room_refuse('CR404', 'ticket', format('There is no ticket %s.',
                                                  coalesce(p_id::text, '(none)')));
END
$$;

-- The ticket p_id, locked, or CR404 ticket.
CREATE OR REPLACE FUNCTION ticket_lock(p_id bigint) RETURNS ticket
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ticket_missing(p_id);
    END IF;
    RETURN t;
END
$$;

-- A line of the ticket's history.
CREATE OR REPLACE FUNCTION ticket_note(p_ticket bigint, p_kind text, p_staff bigint, p_text text)
RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO ticket_message (ticket_id, kind, staff_id, text)
    VALUES (p_ticket, p_kind, p_staff, p_text)
    RETURNING id
$$;

-- A staff member's name for the history.
CREATE OR REPLACE FUNCTION ticket_staff_name(p_staff bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.display_name FROM staff s WHERE s.id = p_staff), 'the system')
$$;

-- ---------------------------------------------------------------- rows out

-- Open seconds from the start of a span of open periods up to p_at: the
-- periods' lower and upper bounds (lo, hi, sorted, not overlapping) and the
-- open seconds before each (before). A binary search (width_bucket), so a
-- long span costs each ticket nothing more; exact (numeric seconds), so
-- f(b) - f(a) is the seconds of the periods within [a, b) to the microsecond.
CREATE OR REPLACE FUNCTION ticket_open_upto(p_lo timestamptz[], p_hi timestamptz[],
                                            p_before numeric[], p_at timestamptz)
RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN i = 0 THEN 0
                ELSE p_before[i] + extract(epoch FROM least(p_at, p_hi[i]))
                     - extract(epoch FROM p_lo[i]) END
    FROM width_bucket(p_at, p_lo) i
$$;

-- The tickets p_ids as replies show them, in the order of the array. The
-- share of the target used is computed here only, for these rows: one span
-- of open periods per hours branch (one open_periods_of call, from the
-- earliest running clock to now), as sorted arrays with the running total of
-- open seconds, so that each running clock's open seconds are two binary
-- searches (ticket_open_upto), not an intersection with the whole span.
CREATE OR REPLACE FUNCTION ticket_rows(p_ids bigint[]) RETURNS SETOF ticket_out
LANGUAGE sql STABLE AS $$
    WITH n AS (SELECT ticket_now() AS now, library_setting_text('timezone') AS tz),
    t AS (SELECT t.*, u.ord, q.code AS q_code, q.branch_id AS q_branch,
                 q.hours_branch_id AS q_hours, q.target_hours
          FROM unnest(p_ids) WITH ORDINALITY u (id, ord)
          JOIN ticket t ON t.id = u.id JOIN ticket_queue q ON q.id = t.queue_id),
    running AS (SELECT array_agg(DISTINCT t.q_hours) AS branches,
                       library_local_date(min(t.clock_since)) AS since
                FROM t WHERE t.clock_since IS NOT NULL),
    periods AS (SELECT o.branch_id, lower(r) AS lo, upper(r) AS hi,
                       coalesce(sum(extract(epoch FROM upper(r)) - extract(epoch FROM lower(r)))
                                    OVER (PARTITION BY o.branch_id ORDER BY lower(r)
                                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                                0) AS before
                FROM running x CROSS JOIN n
                CROSS JOIN LATERAL open_periods_of(x.branches, x.since,
                                                   library_local_date(n.now)) o
                CROSS JOIN LATERAL unnest(o.periods) r),
    hours AS (SELECT branch_id, array_agg(lo ORDER BY lo) AS lo, array_agg(hi ORDER BY lo) AS hi,
                     array_agg(before ORDER BY lo) AS before
              FROM periods GROUP BY branch_id)
    SELECT t.id, t.q_code, b.code, t.status, t.subject, t.question, o.username, p.card,
           CASE WHEN p.id IS NOT NULL
                THEN coalesce(p.preferred_name, p.first_name) || ' ' || p.last_name END,
           t.contact_email, t.contact_phone, t.reply_channel, t.channel,
           local_text_in(t.created_at, n.tz), local_text_in(t.updated_at, n.tz),
           local_text_in(t.due_at, n.tz),
           (100 * (t.clock_used_s
                   + coalesce((ticket_open_upto(h.lo, h.hi, h.before,
                                                greatest(t.clock_since, n.now))
                               - ticket_open_upto(h.lo, h.hi, h.before, t.clock_since))::bigint,
                              0))
            / (t.target_hours::bigint * 3600))::integer,
           ticket_past(t.flagged_at, t.flag_at, n.now),
           ticket_past(t.escalated_at, t.due_at, n.now),
           t.kb, local_text_in(t.closed_at, n.tz), t.inquiry_id, t.anonymised_at IS NOT NULL,
           c.username
    FROM t CROSS JOIN n
    LEFT JOIN hours h ON t.clock_since IS NOT NULL AND h.branch_id IS NOT DISTINCT FROM t.q_hours
    LEFT JOIN branch b ON b.id = t.q_branch
    LEFT JOIN staff o ON o.id = t.owner_id
    LEFT JOIN patron p ON p.id = t.patron_id
    LEFT JOIN staff c ON c.id = t.created_by
    ORDER BY t.ord
$$;

-- A ticket's history, oldest first; a reply shows where it went and how its
-- notice fared.
CREATE OR REPLACE FUNCTION ticket_message_rows(p_ticket bigint) RETURNS SETOF ticket_message_out
LANGUAGE sql STABLE AS $$
    SELECT m.id, m.kind, local_text(m.at), s.username, m.text, nullif(n.address, ''), n.status
    FROM ticket_message m
    LEFT JOIN staff s ON s.id = m.staff_id
    LEFT JOIN notice n ON n.id = m.notice_id
    WHERE m.ticket_id = p_ticket
    ORDER BY m.id
$$;

-- TicketShowReply's rows (no access check: ticket_show does that).
CREATE OR REPLACE FUNCTION ticket_show_rows(p_id bigint) RETURNS SETOF ticket_show_row
LANGUAGE sql STABLE AS $$
    SELECT 'ticket', r.*, (NULL::ticket_message_out).* FROM ticket_rows(ARRAY[p_id]) r
    UNION ALL
    (SELECT 'message', (NULL::ticket_out).*, m.* FROM ticket_message_rows(p_id) m)
$$;

-- The answer of a keyed change: stored under p_key (a retry gets it back)
-- and returned as rows.
CREATE OR REPLACE FUNCTION ticket_keyed(p_key uuid, p_stored jsonb, p_id bigint)
RETURNS SETOF ticket_show_row
LANGUAGE plpgsql AS $$
DECLARE
    v jsonb := p_stored;
BEGIN
    IF v IS NULL THEN
        SELECT coalesce(jsonb_agg(to_jsonb(r)), '[]') INTO v FROM ticket_show_rows(p_id) r;
        PERFORM request_store(p_key, v);
    END IF;
    RETURN QUERY SELECT * FROM jsonb_populate_recordset(NULL::ticket_show_row, v);
END
$$;

-- The start of a keyed change (ticket_open, ticket_change, ticket_post):
-- claims the key (request_claim); a retry gets the stored answer back as
-- rows (never none: a stored answer holds the ticket), a new key nothing, and
-- the caller goes on.
CREATE OR REPLACE FUNCTION ticket_replay(p_key uuid, p_staff bigint, p_kind text)
RETURNS SETOF ticket_show_row
LANGUAGE plpgsql AS $$
DECLARE
    v_stored jsonb := request_claim(p_key, p_staff, p_kind);
BEGIN
    IF v_stored IS NOT NULL THEN
        RETURN QUERY SELECT * FROM ticket_keyed(p_key, v_stored, NULL);
    END IF;
END
$$;

-- ---------------------------------------------------------------- queues

CREATE OR REPLACE FUNCTION ticket_queue_rows(p_ids bigint[]) RETURNS SETOF ticket_queue_out
LANGUAGE sql STABLE AS $$
    SELECT q.id, q.code, q.name, b.code, h.code, q.target_hours, q.active,
           coalesce((SELECT array_agg(s.username ORDER BY s.username)
                     FROM ticket_queue_member m JOIN staff s ON s.id = m.staff_id
                     WHERE m.queue_id = q.id), '{}'),
           coalesce(c.open, 0)::integer, coalesce(c.overdue, 0)::integer
    FROM ticket_queue q
    LEFT JOIN branch b ON b.id = q.branch_id
    LEFT JOIN branch h ON h.id = q.hours_branch_id
    LEFT JOIN (SELECT t.queue_id, count(*) AS open,
                      count(*) FILTER (WHERE ticket_past(t.escalated_at, t.due_at,
                                                         ticket_now())) AS overdue
               FROM ticket t WHERE t.status <> 'closed'
                 AND (p_ids IS NULL OR t.queue_id = ANY (p_ids))
               GROUP BY t.queue_id) c ON c.queue_id = q.id
    WHERE p_ids IS NULL OR q.id = ANY (p_ids)
    ORDER BY q.branch_id IS NOT NULL, q.code
$$;

-- Every queue (anyone may open a ticket in any active one), system-wide
-- queues first, with its members and counts of live and overdue tickets.
CREATE OR REPLACE FUNCTION ticket_queue_list(p_staff bigint, p_all boolean)
RETURNS SETOF ticket_queue_out
LANGUAGE sql STABLE AS $$
    SELECT * FROM ticket_queue_rows(NULL)
$$;

-- Create or change a queue by its code (proto TicketQueue). Absent fields
-- keep their value (a new queue: name required, system-wide, 16 hours,
-- active); branch_code or hours_branch_code given empty mean system-wide and
-- any branch's hours; hours default to the branch's. members replace the
-- queue's members as a whole when present. The running tickets' deadlines
-- follow a change of hours or target. Writes admin_audit.
CREATE OR REPLACE FUNCTION ticket_queue_save(p_staff bigint, p_workstation bigint, p_doc jsonb)
RETURNS SETOF ticket_queue_out
LANGUAGE plpgsql AS $$
DECLARE
    v_code text := room_doc_text(p_doc, 'code', 32);
    v_name text := room_doc_text(p_doc, 'name', 100);
    v_target integer := room_doc_int(p_doc, 'target_hours');
    q ticket_queue;
    v_new boolean;
    v_branch integer;
    v_hours integer;
    v_missing text;
BEGIN
    IF v_code IS NULL OR v_code !~ '^[a-z][a-z0-9_-]{1,31}$' THEN
        PERFORM room_refuse('CR400', 'field:code', 'A queue code is 2-32 characters: a-z first, '
                            'then a-z, 0-9, _ or -.');
    END IF;
    IF v_target IS NOT NULL AND v_target NOT BETWEEN 1 AND 2000 THEN
        PERFORM room_refuse('CR400', 'field:target_hours',
                            'The target is 1 to 2000 open hours.');
    END IF;
    SELECT * INTO q FROM ticket_queue WHERE code = v_code FOR UPDATE;
    v_new := NOT FOUND;
    IF v_new AND v_name IS NULL THEN
        PERFORM room_refuse('CR400', 'field:name',
                            format('A new queue (%s) needs a name.', v_code));
    END IF;
    v_branch := CASE WHEN p_doc ? 'branch_code' THEN room_branch_id(p_doc ->> 'branch_code',
                                                                     'branch_code')
                     ELSE q.branch_id END;
    v_hours := CASE WHEN p_doc ? 'hours_branch_code'
                    THEN room_branch_id(p_doc ->> 'hours_branch_code', 'hours_branch_code')
                    -- the hours followed the branch: they go on following it
                    WHEN v_new OR q.hours_branch_id IS NOT DISTINCT FROM q.branch_id THEN v_branch
                    ELSE q.hours_branch_id END;
    IF v_new THEN
        INSERT INTO ticket_queue (code, name, branch_id, hours_branch_id, target_hours, active)
        VALUES (v_code, v_name, v_branch, v_hours, coalesce(v_target, 16),
                coalesce((p_doc ->> 'active')::boolean, true))
        RETURNING * INTO q;
    ELSE
        UPDATE ticket_queue SET name = coalesce(v_name, name), branch_id = v_branch,
                                hours_branch_id = v_hours,
                                target_hours = coalesce(v_target, target_hours),
                                active = coalesce((p_doc ->> 'active')::boolean, active)
        WHERE id = q.id;
        IF v_hours IS DISTINCT FROM q.hours_branch_id
           OR coalesce(v_target, q.target_hours) <> q.target_hours THEN
            UPDATE ticket t SET (flag_at, due_at) = (SELECT d.flag_at, d.due_at
                                                     FROM ticket_deadlines(t.queue_id,
                                                                           t.clock_since,
                                                                           t.clock_used_s) d)
            WHERE t.queue_id = q.id AND t.status <> 'closed' AND t.clock_since IS NOT NULL;
        END IF;
    END IF;
    IF jsonb_typeof(p_doc -> 'members') = 'array' THEN
        SELECT m INTO v_missing FROM jsonb_array_elements_text(p_doc -> 'members') m
        WHERE NOT EXISTS (SELECT 1 FROM staff s WHERE s.username = m) LIMIT 1;
        IF v_missing IS NOT NULL THEN
            PERFORM room_refuse('CR404', 'staff', format('No staff member has the user name %s.',
                                                         left(v_missing, 40)));
        END IF;
        DELETE FROM ticket_queue_member WHERE queue_id = q.id;
        INSERT INTO ticket_queue_member (queue_id, staff_id)
        SELECT DISTINCT q.id, s.id FROM jsonb_array_elements_text(p_doc -> 'members') m
        JOIN staff s ON s.username = m;
    END IF;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_staff, p_workstation, 'ticket_queue_save', v_code,
            p_doc - '{id,open_count,overdue_count}'::text[]);
    RETURN QUERY SELECT * FROM ticket_queue_rows(ARRAY[q.id]);
END
$$;

-- Every branch has its reference queue: a branch made later gets one too
-- (025_tickets.sql made those of the branches there were).
CREATE OR REPLACE FUNCTION ticket_queue_for_branch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_queue (code, name, branch_id, hours_branch_id)
    VALUES ('ref-' || lower(NEW.code), left('Reference, ' || NEW.name, 100), NEW.id, NEW.id)
    ON CONFLICT (code) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER ticket_queue_for_branch AFTER INSERT ON branch
    FOR EACH ROW EXECUTE FUNCTION ticket_queue_for_branch();

-- ---------------------------------------------------------------- tickets

-- A ticket with its history. CR404 ticket; CR403 not_queue_staff unless the
-- caller works its queue.
CREATE OR REPLACE FUNCTION ticket_show(p_staff bigint, p_all boolean, p_id bigint)
RETURNS SETOF ticket_show_row
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t ticket;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_id;
    IF NOT FOUND THEN
        PERFORM ticket_missing(p_id);
    END IF;
    PERFORM ticket_check_works(p_staff, p_all, t);
    RETURN QUERY SELECT * FROM ticket_show_rows(p_id);
END
$$;

-- An e-mail address or phone number of a document, checked as the patron
-- record checks them (the address lower-cased).
CREATE OR REPLACE FUNCTION ticket_contact(p_doc jsonb, p_key text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v text := room_doc_text(p_doc, p_key, 254);
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_key = 'contact_email' THEN
        v := lower(v);
        IF v !~ '^[^@[:space:]]+@[^@[:space:].]+(\.[^@[:space:].]+)+$' THEN
            PERFORM room_refuse('CR400', 'field:contact_email',
                                format('%s is not an e-mail address.', left(v, 60)));
        END IF;
    ELSIF v !~ '^\+?[0-9 ().-]{7,30}$'
          OR length(regexp_replace(v, '[^0-9]', '', 'g')) NOT BETWEEN 7 AND 15 THEN
        PERFORM room_refuse('CR400', 'field:contact_phone',
                            format('%s is not a phone number (7-15 digits).', left(v, 40)));
    END IF;
    RETURN v;
END
$$;

-- Open a ticket (keyed; proto Ticket). Anyone may open one in any active
-- queue; the answer carries the ticket even to someone who does not work the
-- queue. The reply channel defaults to the patron's (email or sms), else
-- email with a contact address, sms with a contact phone, else none; a
-- channel without an address is refused. p_inquiry (or inquiry_id): the
-- tally it came from, linked both ways; p_scope (the caller's branch when
-- branch-bound, NULL: any) refuses another branch's tally (CR403 branch), as
-- linking locks it against its recorder.
CREATE OR REPLACE FUNCTION ticket_open(p_key uuid, p_staff bigint, p_workstation bigint,
                                       p_doc jsonb, p_inquiry bigint,
                                       p_scope integer DEFAULT NULL)
RETURNS SETOF ticket_show_row
LANGUAGE plpgsql AS $$
DECLARE
    q ticket_queue;
    v_queue text := room_doc_text(p_doc, 'queue', 32);
    v_subject text := room_doc_text(p_doc, 'subject', 200);
    v_question text := room_doc_text(p_doc, 'question', 8000);
    v_card text := room_doc_text(p_doc, 'card', 40);
    v_email text := ticket_contact(p_doc, 'contact_email');
    v_phone text := ticket_contact(p_doc, 'contact_phone');
    v_reply text := room_doc_text(p_doc, 'reply_channel', 10);
    v_channel text := room_doc_text(p_doc, 'channel', 10);
    v_inquiry bigint := coalesce(p_inquiry, nullif(room_doc_bigint(p_doc, 'inquiry_id'), 0));
    p patron;
    v_inquiry_channel text;
    v_inquiry_ticket bigint;
    v_inquiry_branch integer;
    v_since timestamptz := ticket_now();
    v_flag timestamptz;
    v_due timestamptz;
    v_id bigint;
BEGIN
    RETURN QUERY SELECT * FROM ticket_replay(p_key, p_staff, 'ticket_open');
    IF FOUND THEN
        RETURN;  -- a retry: the stored answer
    END IF;
    IF v_queue IS NULL THEN
        PERFORM room_refuse('CR400', 'field:queue', 'Say which queue the ticket goes to.');
    END IF;
    SELECT * INTO q FROM ticket_queue WHERE code = v_queue;
    IF NOT FOUND OR NOT q.active THEN
        PERFORM room_refuse('CR404', 'ticket_queue', format('There is no active ticket queue %s.',
                                                            v_queue));
    END IF;
    IF v_subject IS NULL THEN
        PERFORM room_refuse('CR400', 'field:subject',
                            'A ticket needs a subject (1-200 characters).');
    END IF;
    IF v_question IS NULL THEN
        PERFORM room_refuse('CR400', 'field:question',
                            'A ticket needs the question (1-8000 characters).');
    END IF;
    IF v_card IS NOT NULL THEN
        SELECT * INTO p FROM patron WHERE id = patron_resolve_strict(v_card);
    END IF;
    IF v_reply IS NULL THEN
        v_reply := CASE WHEN p.contact_channel IN ('email', 'sms') THEN p.contact_channel
                        WHEN v_email IS NOT NULL THEN 'email'
                        WHEN v_phone IS NOT NULL THEN 'sms' ELSE 'none' END;
    ELSIF v_reply NOT IN ('email', 'sms', 'none') THEN
        PERFORM room_refuse('CR400', 'field:reply_channel',
                            'Replies go by email, sms or none.');
    ELSIF v_reply = 'email' AND coalesce(v_email, p.email) IS NULL THEN
        PERFORM room_refuse('CR400', 'field:reply_channel',
                            'Replies by email need an e-mail address (the contact''s or '
                            'the patron''s).');
    ELSIF v_reply = 'sms' AND coalesce(v_phone, p.phone) IS NULL THEN
        PERFORM room_refuse('CR400', 'field:reply_channel',
                            'Replies by text message need a phone number (the contact''s or '
                            'the patron''s).');
    END IF;
    IF v_inquiry IS NOT NULL THEN
        SELECT i.channel, i.ticket_id, i.branch_id
        INTO v_inquiry_channel, v_inquiry_ticket, v_inquiry_branch FROM inquiry i
        WHERE i.id = v_inquiry FOR UPDATE;
        IF NOT FOUND THEN
            PERFORM room_refuse('CR404', 'inquiry', format('There is no inquiry %s.', v_inquiry));
        END IF;
        PERFORM room_scope_check(p_scope, v_inquiry_branch);
        IF v_inquiry_ticket IS NOT NULL THEN
            PERFORM room_refuse('CR400', 'field:inquiry_id', format(
                'Inquiry %s already became ticket %s.', v_inquiry, v_inquiry_ticket));
        END IF;
    END IF;
    v_channel := coalesce(v_channel, v_inquiry_channel, 'in_person');
    IF v_channel NOT IN ('in_person', 'phone', 'email', 'chat', 'text') THEN
        PERFORM room_refuse('CR400', 'field:channel',
                            'A question is asked in_person, or by phone, email, chat or text.');
    END IF;
    SELECT d.flag_at, d.due_at INTO v_flag, v_due FROM ticket_deadlines(q.id, v_since, 0) d;
    INSERT INTO ticket (queue_id, status, subject, question, patron_id, contact_email,
                        contact_phone, reply_channel, channel, inquiry_id, kb, created_by,
                        clock_since, flag_at, due_at)
    VALUES (q.id, 'new', v_subject, v_question, p.id, v_email, v_phone, v_reply, v_channel,
            v_inquiry, coalesce((p_doc ->> 'kb')::boolean, false), p_staff, v_since,
            v_flag, v_due)
    RETURNING id INTO v_id;
    IF v_inquiry IS NOT NULL THEN
        UPDATE inquiry SET ticket_id = v_id WHERE id = v_inquiry;
    END IF;
    PERFORM ticket_note(v_id, 'event', p_staff,
                        format('opened in %s by %s', q.code, ticket_staff_name(p_staff))
                        || CASE WHEN v_inquiry IS NOT NULL
                                THEN format(' (from inquiry %s)', v_inquiry) ELSE '' END);
    RETURN QUERY SELECT * FROM ticket_keyed(p_key, NULL, v_id);
END
$$;

-- Whether a ticket passes ticket_list's filters: in p_queues (NULL: any),
-- owned by p_staff when p_mine, of p_status ('live': not closed; 'all'),
-- below p_before. Inlined into each of the list's scans.
CREATE OR REPLACE FUNCTION ticket_listed(p_id bigint, p_queue bigint, p_owner bigint,
                                         p_status text, p_queues bigint[], p_staff bigint,
                                         p_mine boolean, p_want text, p_before bigint)
RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (p_queues IS NULL OR p_queue = ANY (p_queues))
       AND (NOT coalesce(p_mine, false) OR p_owner = p_staff)
       AND (p_want IN ('live', 'all') OR p_status = p_want)
       AND (p_before IS NULL OR p_id < p_before)
$$;

-- The tickets of the queues the caller works (p_all: every queue), most
-- urgent first: escalated, flagged, by due time, then by id; waiting tickets
-- (no due time) after the running ones. p_status: NULL or '' every live
-- status, 'all', or one status; closed tickets come after the live ones,
-- newest first. p_before (ids below it) pages the closed list only, the one
-- ordered by id (refused with any other status: field:before_id).
-- Reads only the live tickets' partial index (or, for closed ones, by id
-- downwards); the used share is computed for the returned rows only.
CREATE OR REPLACE FUNCTION ticket_list(p_staff bigint, p_all boolean, p_queue text,
                                       p_mine boolean, p_overdue boolean, p_flagged boolean,
                                       p_status text, p_branch text, p_limit integer,
                                       p_before bigint)
RETURNS SETOF ticket_out
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_limit integer := coalesce(nullif(p_limit, 0), 100);
    v_status text := coalesce(nullif(p_status, ''), 'live');
    v_branch integer := room_branch_id(p_branch, 'branch');
    v_queue ticket_queue;
    v_queues bigint[];
    v_now timestamptz := ticket_now();
    v_ids bigint[];
    v_more bigint[];
BEGIN
    IF v_limit NOT BETWEEN 1 AND 500 THEN
        PERFORM room_refuse('CR400', 'field:limit', 'A list shows 1 to 500 tickets.');
    END IF;
    IF v_status NOT IN ('live', 'all', 'new', 'open', 'waiting', 'closed') THEN
        PERFORM room_refuse('CR400', 'field:status',
                            'The status is new, open, waiting, closed or all.');
    END IF;
    -- live tickets come by urgency, not by number: "below the last number" would
    -- skip some and repeat others, so only the closed list (by number) pages
    IF p_before IS NOT NULL AND v_status <> 'closed' THEN
        PERFORM room_refuse('CR400', 'field:before_id', 'Only the closed list (status closed) '
                            'pages by number; live tickets come most urgent first: narrow the '
                            'list (queue, mine, overdue, flagged, status) or raise the limit '
                            '(up to 500).');
    END IF;
    IF coalesce(p_queue, '') <> '' THEN
        SELECT * INTO v_queue FROM ticket_queue WHERE code = p_queue;
        IF NOT FOUND THEN
            PERFORM room_refuse('CR404', 'ticket_queue',
                                format('There is no ticket queue %s.', left(p_queue, 40)));
        END IF;
        IF NOT ticket_works(p_staff, p_all, v_queue.id) THEN
            PERFORM room_refuse('CR403', 'not_queue_staff',
                                format('Only the staff of queue %s see its tickets.', p_queue));
        END IF;
    END IF;
    -- the queues to read; NULL: every queue (p_all, no queue or branch asked)
    IF v_queue.id IS NOT NULL THEN
        v_queues := ARRAY[v_queue.id];
    ELSIF NOT coalesce(p_all, false) OR v_branch IS NOT NULL THEN
        SELECT coalesce(array_agg(q.id), '{}') INTO v_queues FROM ticket_queue q
        WHERE (v_branch IS NULL OR q.branch_id = v_branch)
          AND ticket_works(p_staff, p_all, q.id);
    END IF;
    IF v_branch IS NOT NULL AND v_queue.id IS NOT NULL
       AND v_queue.branch_id IS DISTINCT FROM v_branch THEN
        v_queues := '{}';
    END IF;

    IF v_status <> 'closed' THEN
        -- the marked tickets (flagged by the timer, or past their flag time) and
        -- the first v_limit by due time: the most urgent v_limit are among them
        SELECT coalesce(array_agg(x.id ORDER BY x.escalated DESC, x.flagged DESC, x.due_at,
                                  x.id), '{}')
        INTO v_ids
        FROM (SELECT u.* FROM (
                  SELECT t.id, t.due_at, ticket_past(t.escalated_at, t.due_at, v_now) AS escalated,
                         true AS flagged
                  FROM ticket t WHERE t.status <> 'closed' AND t.flagged_at IS NOT NULL
                    AND ticket_listed(t.id, t.queue_id, t.owner_id, t.status, v_queues,
                                      p_staff, p_mine, v_status, p_before)
                  UNION
                  SELECT t.id, t.due_at, coalesce(t.due_at <= v_now, false), true
                  FROM ticket t WHERE t.flagged_at IS NULL AND t.flag_at IS NOT NULL
                                  AND t.flag_at <= v_now
                                  AND ticket_listed(t.id, t.queue_id, t.owner_id, t.status,
                                                    v_queues, p_staff, p_mine, v_status,
                                                    p_before)
                  UNION
                  (SELECT t.id, t.due_at, ticket_past(t.escalated_at, t.due_at, v_now),
                          ticket_past(t.flagged_at, t.flag_at, v_now)
                   FROM ticket t
                   WHERE t.status <> 'closed'
                     AND ticket_listed(t.id, t.queue_id, t.owner_id, t.status, v_queues,
                                       p_staff, p_mine, v_status, p_before)
                   ORDER BY t.due_at, t.id
                   LIMIT v_limit)) u
              WHERE (u.escalated OR NOT coalesce(p_overdue, false))
                AND (u.flagged OR NOT coalesce(p_flagged, false))
              ORDER BY u.escalated DESC, u.flagged DESC, u.due_at, u.id
              LIMIT v_limit) x;
    ELSE
        v_ids := '{}';
    END IF;
    IF v_status IN ('all', 'closed') AND cardinality(v_ids) < v_limit THEN
        SELECT coalesce(array_agg(x.id ORDER BY x.id DESC), '{}') INTO v_more
        FROM (SELECT t.id FROM ticket t
              WHERE t.status = 'closed'
                AND ticket_listed(t.id, t.queue_id, t.owner_id, t.status, v_queues, p_staff,
                                  p_mine, 'closed', p_before)
                AND (NOT coalesce(p_overdue, false) OR t.escalated_at IS NOT NULL)
                AND (NOT coalesce(p_flagged, false) OR t.flagged_at IS NOT NULL)
              ORDER BY t.id DESC
              LIMIT v_limit - cardinality(v_ids)) x;
        v_ids := v_ids || v_more;
    END IF;
    RETURN QUERY SELECT * FROM ticket_rows(v_ids);
END
$$;

-- Change a ticket (keyed; proto TicketChange): claim, assign, transfer,
-- status, close, reopen, kb. Closed tickets take only reopen and kb. Each
-- change writes an 'event' line (and the optional note as a 'note' line)
-- and moves updated_at.
CREATE OR REPLACE FUNCTION ticket_change(p_key uuid, p_staff bigint, p_workstation bigint,
                                         p_all boolean, p_doc jsonb)
RETURNS SETOF ticket_show_row
LANGUAGE plpgsql AS $$
DECLARE
    v_action text := room_doc_text(p_doc, 'action', 20);
    v_note text := room_doc_text(p_doc, 'note', 8000);
    t ticket;
    q ticket_queue;
    v_to record;
    v_event text;
    v_status text;
BEGIN
    RETURN QUERY SELECT * FROM ticket_replay(p_key, p_staff, 'ticket_change');
    IF FOUND THEN
        RETURN;  -- a retry: the stored answer
    END IF;
    IF v_action IS NULL OR v_action NOT IN ('claim', 'assign', 'transfer', 'status', 'close',
                                            'reopen', 'kb') THEN
        PERFORM room_refuse('CR400', 'field:action', 'The action is claim, assign, transfer, '
                            'status, close, reopen or kb.');
    END IF;
    t := ticket_lock(room_doc_bigint(p_doc, 'id'));
    PERFORM ticket_check_works(p_staff, p_all, t);
    IF t.status = 'closed' AND v_action NOT IN ('reopen', 'kb') THEN
        PERFORM room_refuse('CR409', 'ticket_closed',
                            format('Ticket %s is closed; reopen it first.', t.id));
    END IF;
    SELECT * INTO q FROM ticket_queue WHERE id = t.queue_id;

    IF v_action = 'claim' THEN
        IF t.owner_id IS NOT NULL AND t.owner_id <> p_staff THEN
            PERFORM room_refuse('CR409', 'ticket_owned', format(
                'Ticket %s is claimed by %s; assign it to take it over.', t.id,
                ticket_staff_name(t.owner_id)));
        END IF;
        IF t.owner_id IS NULL THEN
            UPDATE ticket SET owner_id = p_staff WHERE id = t.id;
            v_event := format('claimed by %s', ticket_staff_name(p_staff));
        END IF;
        IF t.status = 'new' THEN
            PERFORM ticket_move(t.id, 'open', t.queue_id);
        END IF;
    ELSIF v_action = 'assign' THEN
        IF room_doc_text(p_doc, 'to_username', 32) IS NULL THEN
            PERFORM room_refuse('CR400', 'field:to_username', 'Say whom to assign the ticket to.');
        END IF;
        SELECT s.id, s.username, s.display_name, s.disabled, s.role >= 'coordinator' AS all_queues
        INTO v_to FROM staff s WHERE s.username = room_doc_text(p_doc, 'to_username', 32);
        IF NOT FOUND THEN
            PERFORM room_refuse('CR404', 'staff', format(
                'No staff member has the user name %s.',
                coalesce(left(p_doc ->> 'to_username', 40), '(none)')));
        END IF;
        IF v_to.disabled OR NOT ticket_works(v_to.id, v_to.all_queues, t.queue_id) THEN
            PERFORM room_refuse('CR403', 'not_queue_staff', format(
                '%s does not work queue %s; add them to it first.', v_to.display_name, q.code));
        END IF;
        UPDATE ticket SET owner_id = v_to.id WHERE id = t.id;
        v_event := format('assigned to %s by %s', v_to.display_name, ticket_staff_name(p_staff));
        IF t.status = 'new' THEN
            PERFORM ticket_move(t.id, 'open', t.queue_id);
        END IF;
        PERFORM desk_event_to(q.branch_id, 'ticket_assigned', t.id, ARRAY[v_to.username],
                              format('Ticket %s assigned to you: %s', t.id, t.subject));
    ELSIF v_action = 'transfer' THEN
        IF room_doc_text(p_doc, 'to_queue', 32) IS NULL THEN
            PERFORM room_refuse('CR400', 'field:to_queue', 'Say which queue to transfer it to.');
        END IF;
        SELECT * INTO v_to FROM ticket_queue x
        WHERE x.code = room_doc_text(p_doc, 'to_queue', 32) AND x.active;
        IF NOT FOUND THEN
            PERFORM room_refuse('CR404', 'ticket_queue', format(
                'There is no active ticket queue %s.',
                coalesce(left(p_doc ->> 'to_queue', 40), '(none)')));
        END IF;
        IF v_to.id = t.queue_id THEN
            PERFORM room_refuse('CR400', 'field:to_queue',
                                format('Ticket %s is already in %s.', t.id, q.code));
        END IF;
        UPDATE ticket SET owner_id = NULL WHERE id = t.id;
        PERFORM ticket_move(t.id, t.status, v_to.id, true);
        v_event := format('transferred from %s to %s by %s', q.code, v_to.code,
                          ticket_staff_name(p_staff));
        PERFORM desk_event_to(v_to.branch_id, 'ticket_transferred', t.id,
                              ticket_recipients(t.id),
                              format('Ticket %s came to %s from %s: %s', t.id, v_to.code, q.code,
                                     t.subject));
    ELSIF v_action = 'status' THEN
        v_status := room_doc_text(p_doc, 'status', 10);
        IF v_status IS NULL OR v_status NOT IN ('open', 'waiting') THEN
            PERFORM room_refuse('CR400', 'field:status',
                                'A ticket''s status changes to open or waiting.');
        END IF;
        IF v_status <> t.status THEN
            PERFORM ticket_move(t.id, v_status, t.queue_id);
            v_event := CASE WHEN v_status = 'waiting'
                            THEN format('waiting for the patron (%s); the clock stops',
                                        ticket_staff_name(p_staff))
                            WHEN t.status = 'waiting'
                            THEN format('open again (%s); the clock runs again',
                                        ticket_staff_name(p_staff))
                            ELSE format('opened by %s', ticket_staff_name(p_staff)) END;
        END IF;
    ELSIF v_action = 'close' THEN
        IF p_doc ? 'kb' THEN
            UPDATE ticket SET kb = (p_doc ->> 'kb')::boolean WHERE id = t.id;
        END IF;
        PERFORM ticket_move(t.id, 'closed', t.queue_id);
        v_event := format('closed by %s', ticket_staff_name(p_staff))
                   || CASE WHEN (p_doc ->> 'kb')::boolean THEN ', kept for the knowledge base'
                           ELSE '' END;
    ELSIF v_action = 'reopen' THEN
        IF t.status <> 'closed' THEN
            PERFORM room_refuse('CR400', 'field:action',
                                format('Ticket %s is not closed.', t.id));
        END IF;
        PERFORM ticket_move(t.id, 'open', t.queue_id);
        v_event := format('reopened by %s', ticket_staff_name(p_staff));
    ELSIF v_action = 'kb' THEN
        IF jsonb_typeof(p_doc -> 'kb') IS DISTINCT FROM 'boolean' THEN
            PERFORM room_refuse('CR400', 'field:kb', 'Say whether to keep the question (kb).');
        END IF;
        IF (p_doc ->> 'kb')::boolean <> t.kb THEN
            UPDATE ticket SET kb = (p_doc ->> 'kb')::boolean WHERE id = t.id;
            v_event := CASE WHEN (p_doc ->> 'kb')::boolean
                            THEN format('kept for the knowledge base by %s',
                                        ticket_staff_name(p_staff))
                            ELSE format('no longer kept for the knowledge base (%s)',
                                        ticket_staff_name(p_staff)) END;
        END IF;
    END IF;

    IF v_event IS NOT NULL OR v_note IS NOT NULL THEN
        UPDATE ticket SET updated_at = now() WHERE id = t.id;
    END IF;
    IF v_event IS NOT NULL THEN
        PERFORM ticket_note(t.id, 'event', p_staff, v_event);
    END IF;
    IF v_note IS NOT NULL THEN
        PERFORM ticket_note(t.id, 'note', p_staff, v_note);
    END IF;
    RETURN QUERY SELECT * FROM ticket_keyed(p_key, NULL, t.id);
END
$$;

-- Reply to the patron or add an internal note (keyed; proto TicketPost). A
-- reply goes to the address of the reply channel (the ticket's contact, else
-- the patron's), queued as a notice (email: sent by the daemon; sms: the SMS
-- export); no address (or an anonymised ticket) is refused as
-- no_reply_address. The ticket then waits for the patron (the clock stops)
-- unless p_keep_open (a new ticket becomes open).
CREATE OR REPLACE FUNCTION ticket_post(p_key uuid, p_staff bigint, p_workstation bigint,
                                       p_all boolean, p_id bigint, p_kind text, p_text text,
                                       p_keep_open boolean)
RETURNS SETOF ticket_show_row
LANGUAGE plpgsql AS $$
DECLARE
    v_text text := nullif(btrim(p_text, E' \t\r\n'), '');
    t ticket;
    q ticket_queue;
    p patron;
    v_address text;
    v_message bigint;
    v_notice bigint;
BEGIN
    RETURN QUERY SELECT * FROM ticket_replay(p_key, p_staff, 'ticket_post');
    IF FOUND THEN
        RETURN;  -- a retry: the stored answer
    END IF;
    IF p_kind IS NULL OR p_kind NOT IN ('reply', 'note') THEN
        PERFORM room_refuse('CR400', 'field:kind', 'Post a reply or a note.');
    END IF;
    IF v_text IS NULL OR length(v_text) > 8000 THEN
        PERFORM room_refuse('CR400', 'field:text', 'The text is 1 to 8000 characters.');
    END IF;
    t := ticket_lock(p_id);
    PERFORM ticket_check_works(p_staff, p_all, t);
    IF t.status = 'closed' THEN
        PERFORM room_refuse('CR409', 'ticket_closed',
                            format('Ticket %s is closed; reopen it first.', t.id));
    END IF;
    IF p_kind = 'note' THEN
        PERFORM ticket_note(t.id, 'note', p_staff, v_text);
        UPDATE ticket SET updated_at = now() WHERE id = t.id;
        RETURN QUERY SELECT * FROM ticket_keyed(p_key, NULL, t.id);
        RETURN;
    END IF;

    SELECT * INTO p FROM patron WHERE id = t.patron_id;
    v_address := CASE WHEN t.anonymised_at IS NOT NULL THEN NULL
                      WHEN t.reply_channel = 'email' THEN coalesce(t.contact_email, p.email)
                      WHEN t.reply_channel = 'sms' THEN coalesce(t.contact_phone, p.phone) END;
    IF v_address IS NULL THEN
        PERFORM room_refuse('CR422', 'no_reply_address', format(
            'Ticket %s has no %s to reply to; add the patron''s contact details or change '
            'the reply channel.', t.id,
            CASE t.reply_channel WHEN 'sms' THEN 'phone number' WHEN 'email' THEN 'e-mail address'
                                 ELSE 'e-mail address or phone number' END));
    END IF;
    SELECT * INTO q FROM ticket_queue WHERE id = t.queue_id;
    v_message := ticket_note(t.id, 'reply', p_staff, v_text);
    v_notice := notice_queue_reply(v_message, t.patron_id, t.reply_channel, v_address,
                                   jsonb_build_object('subject', t.subject, 'ticket', t.id::text,
                                                      'text', v_text,
                                                      'staff', ticket_staff_name(p_staff),
                                                      'queue', q.name));
    UPDATE ticket_message SET notice_id = v_notice WHERE id = v_message;
    IF NOT coalesce(p_keep_open, false) THEN
        IF t.status <> 'waiting' THEN
            PERFORM ticket_move(t.id, 'waiting', t.queue_id);
        END IF;
    ELSIF t.status = 'new' THEN
        PERFORM ticket_move(t.id, 'open', t.queue_id);
    END IF;
    UPDATE ticket SET updated_at = now() WHERE id = t.id;
    RETURN QUERY SELECT * FROM ticket_keyed(p_key, NULL, t.id);
END
$$;

-- ---------------------------------------------------------------- the periodic job

-- A mark the timer raised (p_kind ticket_flagged or ticket_escalated): the
-- history's event line p_note, and one event p_text to the queue's staff.
CREATE OR REPLACE FUNCTION ticket_mark_told(p_ticket bigint, p_branch integer, p_kind text,
                                            p_note text, p_text text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticket_note(p_ticket, 'event', NULL, p_note);
    PERFORM desk_event_to(p_branch, p_kind, p_ticket, ticket_recipients(p_ticket), p_text);
END
$$;

-- Run by the daemon's tickets timer; idempotent, and cheap when nothing is
-- due (each step reads one small partial index):
--   escalated: running tickets whose due_at has passed (ticket_now()) get
--     escalated_at (and flagged_at, if the flag was never raised);
--   flagged: running tickets past flag_at get flagged_at;
--   each writes an 'event' line and pushes ONE event (ticket_escalated or
--   ticket_flagged) to the queue's staff (desk_event_to), so a ticket that
--   passed both at once is told about once, as escalated;
--   anonymised: tickets closed more than ticket_retention_days ago lose the
--     patron, the contact details, their reply notices, the text of their
--     replies and notes, and (unless kept for the knowledge base) subject
--     and question; the inquiry they came from loses its answer and (unless
--     kept) its question; the event lines (who did what, when) and the
--     counts stay.
CREATE OR REPLACE FUNCTION tickets_tick(OUT flagged integer, OUT escalated integer,
                                        OUT anonymised integer)
RETURNS record
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := ticket_now();
    r record;
    v_ids bigint[];
BEGIN
    escalated := 0;
    FOR r IN UPDATE ticket t SET escalated_at = now(), flagged_at = coalesce(t.flagged_at, now())
             FROM ticket_queue q
             WHERE q.id = t.queue_id AND t.escalated_at IS NULL AND t.due_at IS NOT NULL
               AND t.due_at <= v_now
             RETURNING t.id, t.subject, q.code, q.branch_id, q.target_hours
    LOOP
        PERFORM ticket_mark_told(r.id, r.branch_id, 'ticket_escalated',
                                 format('escalated: %s open hours passed', r.target_hours),
                                 format('Ticket %s (%s) is past its %s open hours: %s', r.id,
                                        r.code, r.target_hours, r.subject));
        escalated := escalated + 1;
    END LOOP;

    flagged := 0;
    FOR r IN UPDATE ticket t SET flagged_at = now()
             FROM ticket_queue q
             WHERE q.id = t.queue_id AND t.flagged_at IS NULL AND t.flag_at IS NOT NULL
               AND t.flag_at <= v_now
             RETURNING t.id, t.subject, q.code, q.branch_id, q.target_hours
    LOOP
        PERFORM ticket_mark_told(r.id, r.branch_id, 'ticket_flagged',
                                 format('flagged: 75%% of the %s open hours used',
                                        r.target_hours),
                                 format('Ticket %s (%s) has used 75%% of its %s open hours: %s',
                                        r.id, r.code, r.target_hours, r.subject));
        flagged := flagged + 1;
    END LOOP;

    WITH gone AS (
        UPDATE ticket t SET patron_id = NULL, contact_email = NULL, contact_phone = NULL,
                            subject = CASE WHEN t.kb THEN t.subject ELSE '' END,
                            question = CASE WHEN t.kb THEN t.question ELSE '' END,
                            anonymised_at = now()
        WHERE t.status = 'closed' AND t.anonymised_at IS NULL
          AND t.closed_at < now() - make_interval(
                  days => library_setting_text('ticket_retention_days')::integer)
        RETURNING t.id)
    SELECT coalesce(array_agg(id), '{}') INTO v_ids FROM gone;
    anonymised := cardinality(v_ids);
    IF anonymised > 0 THEN
        -- the replies' notices hold the address and the text
        DELETE FROM notice n USING ticket_message m
        WHERE m.ticket_id = ANY (v_ids) AND n.ticket_message_id = m.id;
        UPDATE ticket_message SET text = NULL
        WHERE ticket_id = ANY (v_ids) AND kind IN ('reply', 'note') AND text IS NOT NULL;
        -- the tally the ticket came from holds the question and the answer too
        -- (inquiry list shows them to every recorder): kept only as the ticket is
        UPDATE inquiry i SET question = CASE WHEN t.kb THEN i.question END, answer = NULL
        FROM ticket t
        WHERE t.id = ANY (v_ids) AND i.ticket_id = t.id;
    END IF;
END
$$;
