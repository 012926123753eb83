-- 025: follow-up tickets: queues and their staff, tickets with a clock that
-- counts open hours, their history (replies, internal notes, events), and
-- replies sent as notices (a notice no longer needs a patron: a ticket may
-- have only an e-mail address or a phone number). The rules are in
-- sql/rules/tickets.sql (notices.sql for the reply notice, localtime.sql for
-- open hours, events.sql for desk_event_to). docs/TICKETS.md.
--
-- Invariants held by the database:
--   * the clock runs (clock_since set) exactly while a ticket is new or open;
--     its deadlines (flag_at, due_at) are set only while it runs;
--   * a closed ticket has closed_at, a live one has none;
--   * subject and question are empty only once the ticket is anonymised;
--   * a notice without a patron is a ticket reply.

INSERT INTO library_setting (name, value) VALUES
    -- Closed tickets lose the patron, the contact details, the text of the
    -- replies and notes (and, unless kept for the knowledge base, subject and
    -- question) this many days after closing.
    ('ticket_retention_days', '90'),
    -- Moves the tickets' clock (ticket_now()) forward by this many minutes:
    -- for tests and drills of flagging and escalation. 0 in production.
    ('ticket_clock_offset_minutes', '0')
ON CONFLICT (name) DO NOTHING;

-- ---------------------------------------------------------------- queues

CREATE TABLE ticket_queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code text NOT NULL UNIQUE CHECK (code ~ '^[a-z][a-z0-9_-]{1,31}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- NULL: system-wide (its members work it); else every staff member of
    -- the branch works it too
    branch_id integer REFERENCES branch,
    -- whose opening hours the clock runs in; NULL: while any branch is open
    hours_branch_id integer REFERENCES branch,
    -- open hours to the answer; flagged at 75%, escalated past 100%
    target_hours integer NOT NULL DEFAULT 16 CHECK (target_hours BETWEEN 1 AND 2000),
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ticket_queue_member (
    queue_id bigint NOT NULL REFERENCES ticket_queue ON DELETE CASCADE,
    staff_id bigint NOT NULL REFERENCES staff ON DELETE CASCADE,
    PRIMARY KEY (queue_id, staff_id)
);
CREATE INDEX ticket_queue_member_staff ON ticket_queue_member (staff_id);

-- The system-wide queues, and a reference queue for each branch there is now
-- (a branch made later gets its own from the trigger ticket_queue_for_branch,
-- sql/rules/tickets.sql). A system-wide queue's clock runs while any branch
-- is open.
INSERT INTO ticket_queue (code, name) VALUES
    ('reference', 'Reference (system-wide)'),
    ('ill', 'Interlibrary loan'),
    ('it', 'Technology help'),
    ('circulation', 'Circulation and accounts');
INSERT INTO ticket_queue (code, name, branch_id, hours_branch_id)
SELECT 'ref-' || lower(b.code), left('Reference, ' || b.name, 100), b.id, b.id
FROM branch b ORDER BY b.id
ON CONFLICT (code) DO NOTHING;

-- ---------------------------------------------------------------- tickets

CREATE TABLE ticket (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_id bigint NOT NULL REFERENCES ticket_queue,
    status text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'open', 'waiting', 'closed')),
    subject text NOT NULL CHECK (length(subject) <= 200),
    question text NOT NULL CHECK (length(question) <= 8000),
    owner_id bigint REFERENCES staff,
    patron_id bigint REFERENCES patron,
    contact_email text CHECK (length(contact_email) <= 254 AND contact_email = lower(contact_email)
                              AND contact_email
                                  ~ '^[^@[:space:]]+@[^@[:space:].]+(\.[^@[:space:].]+)+$'),
    contact_phone text CHECK (contact_phone ~ '^\+?[0-9 ().-]{7,30}$'),
    reply_channel text NOT NULL DEFAULT 'none' CHECK (reply_channel IN ('email', 'sms', 'none')),
    -- how it was asked (as inquiry.channel)
    channel text NOT NULL DEFAULT 'in_person'
        CHECK (channel IN ('in_person', 'phone', 'email', 'chat', 'text')),
    inquiry_id bigint,
    -- keep subject and question for the knowledge base when anonymised
    kb boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by bigint REFERENCES staff,
    updated_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    -- open seconds used while the clock ran, before clock_since
    clock_used_s bigint NOT NULL DEFAULT 0 CHECK (clock_used_s >= 0),
    -- when the clock last started (ticket_now()); NULL: stopped
    clock_since timestamptz,
    -- when 75% / 100% of the target will have been used (precomputed from the
    -- open hours whenever the clock starts or the queue changes; NULL: not
    -- running, or no open hours within a year)
    flag_at timestamptz,
    due_at timestamptz,
    flagged_at timestamptz,
    escalated_at timestamptz,
    anonymised_at timestamptz,
    CHECK ((clock_since IS NOT NULL) = (status IN ('new', 'open'))),
    CHECK (clock_since IS NOT NULL OR (flag_at IS NULL AND due_at IS NULL)),
    CHECK ((closed_at IS NOT NULL) = (status = 'closed')),
    CHECK (anonymised_at IS NOT NULL OR (length(subject) >= 1 AND length(question) >= 1)),
    -- escalation raises the flag too
    CHECK (escalated_at IS NULL OR flagged_at IS NOT NULL)
);
-- Live tickets are few among many closed ones: the lists, the counts and the
-- timer read only these partial indexes. ticket_list takes the marked
-- tickets (flagged, or past the flag time) and the first by due time, each
-- from an index holding what it filters and sorts by (index-only scans).
CREATE INDEX ticket_live_queue ON ticket (queue_id) WHERE status <> 'closed';
CREATE INDEX ticket_live_owner ON ticket (owner_id) WHERE status <> 'closed';
CREATE INDEX ticket_live_due ON ticket (due_at, id)
    INCLUDE (queue_id, owner_id, status, flag_at, flagged_at, escalated_at)
    WHERE status <> 'closed';
CREATE INDEX ticket_live_flagged ON ticket (id)
    INCLUDE (queue_id, owner_id, status, due_at, escalated_at)
    WHERE status <> 'closed' AND flagged_at IS NOT NULL;
CREATE INDEX ticket_flag_due ON ticket (flag_at)
    INCLUDE (id, queue_id, owner_id, status, due_at)
    WHERE flagged_at IS NULL AND flag_at IS NOT NULL;
CREATE INDEX ticket_escalation_due ON ticket (due_at)
    WHERE escalated_at IS NULL AND due_at IS NOT NULL;
CREATE INDEX ticket_to_anonymise ON ticket (closed_at)
    WHERE status = 'closed' AND anonymised_at IS NULL;
CREATE INDEX ticket_closed_queue ON ticket (queue_id, id) WHERE status = 'closed';
CREATE INDEX ticket_patron ON ticket (patron_id) WHERE patron_id IS NOT NULL;
CREATE INDEX ticket_inquiry ON ticket (inquiry_id) WHERE inquiry_id IS NOT NULL;

CREATE TABLE ticket_message (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id bigint NOT NULL REFERENCES ticket ON DELETE CASCADE,
    -- reply: sent to the patron; note: internal; event: a change (the history)
    kind text NOT NULL CHECK (kind IN ('reply', 'note', 'event')),
    at timestamptz NOT NULL DEFAULT now(),
    -- NULL: the timer
    staff_id bigint REFERENCES staff,
    -- NULL once the ticket is anonymised (replies and notes)
    text text CHECK (length(text) BETWEEN 1 AND 8000),
    -- a reply's notice (set after the notice is queued)
    notice_id bigint
);
CREATE INDEX ticket_message_ticket ON ticket_message (ticket_id, id);

-- ---------------------------------------------------------------- replies as notices

ALTER TABLE notice ALTER COLUMN patron_id DROP NOT NULL;
ALTER TABLE notice ADD COLUMN ticket_message_id bigint REFERENCES ticket_message ON DELETE CASCADE;
ALTER TABLE notice ADD CONSTRAINT notice_patron_or_ticket
    CHECK (patron_id IS NOT NULL OR ticket_message_id IS NOT NULL);
ALTER TABLE ticket_message ADD FOREIGN KEY (notice_id) REFERENCES notice ON DELETE SET NULL;
DROP INDEX notice_once;
CREATE UNIQUE INDEX notice_once ON notice (kind, coalesce(hold_id, 0), coalesce(loan_id, 0),
                                           coalesce(booking_id, 0),
                                           coalesce(ticket_message_id, 0),
                                           coalesce(about_date, '1900-01-01'));
CREATE INDEX notice_ticket_message ON notice (ticket_message_id)
    WHERE ticket_message_id IS NOT NULL;

ALTER TABLE notice_template DROP CONSTRAINT notice_template_kind_check;
ALTER TABLE notice_template ADD CONSTRAINT notice_template_kind_check
    CHECK (kind IN ('hold_ready', 'hold_expiring', 'courtesy', 'overdue_1', 'overdue_2',
                    'room_confirmed', 'room_reminder', 'room_cancelled', 'ticket_reply'));
-- Placeholders of the reply: {subject} {ticket} {text} (the staff's reply)
-- {staff} (their name) {queue} {library} {name} (the patron's, or empty).
-- The patron answers by replying to the message: the answer arrives in the
-- library's inbox (the From address, smtp_from), with the ticket number in
-- the subject.
INSERT INTO notice_template (kind, subject, body) VALUES
    ('ticket_reply', '[{library}] Re: {subject} (ticket {ticket})',
     E'{text}\n\n-- \n{staff}\n{queue}, {library}\n'
     || E'To answer, reply to this message and keep "ticket {ticket}" in the subject.\n');

-- ---------------------------------------------------------------- inquiries

-- A tally that needed follow-up and the ticket it became (both ways: the
-- inquiry list shows the ticket, the ticket its tally).
ALTER TABLE ticket ADD FOREIGN KEY (inquiry_id) REFERENCES inquiry;
ALTER TABLE inquiry ADD FOREIGN KEY (ticket_id) REFERENCES ticket;
