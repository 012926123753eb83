-- 007: holds, their targeting and capture, hold shelves, transits for holds,
-- floating collections, notices, and the events desks are told about. The
-- rules are in sql/rules/ (holds.sql, hold_capture.sql, hold_targeting.sql,
-- pull_list_and_shelf.sql, notices.sql, events.sql).
--
-- Invariants held by the database:
--   * a copy is captured for at most one live hold (hold_one_per_copy);
--   * a hold is filled at most once (status moves to 'filled' once, with the loan);
--   * a copy is targeted by at most one waiting hold, and a hold targets at
--     most one copy (hold_one_target_per_copy and the target column);
--   * one live hold per patron and title (hold_one_per_patron_title);
--   * queue order: every function that captures or targets copies of a title
--     first locks that title's bib row, so the queue is served in order even
--     when seven branches check in copies of it at the same moment.
-- Lock order (with circulation's): item, loan, patron_circ, bib, hold.
-- Patron merge and transit cancel can take bib and hold rows in another
-- order; a deadlock between them and a desk is rare and the daemon retries
-- the loser (40P01), so it costs a retry, never a wrong record.

INSERT INTO library_setting (name, value) VALUES
    -- Open days a ready hold waits on the shelf.
    ('hold_shelf_days', '7'),
    -- 'fifo' (strict first come, first served) or 'local_first' (a copy
    -- checked in at a branch goes to the first hold picked up there, unless
    -- an earlier hold has already been passed over hold_max_skips times).
    ('hold_policy', 'fifo'),
    ('hold_max_skips', '3'),
    ('transit_overdue_days', '5'),
    -- Notices: warn this many days before a hold shelf expiry, remind this
    -- many days before a due date; overdue notices this many days late.
    ('notice_expiry_warning_days', '2'),
    ('notice_courtesy_days', '2'),
    ('notice_overdue_1_days', '1'),
    ('notice_overdue_2_days', '8'),
    -- Notices name titles: after this many days a sent, exported or failed
    -- notice keeps no text or address (the row stays while its loan or hold
    -- is open, so it is not generated again).
    ('notice_keep_days', '30');

ALTER TABLE patron_category ADD COLUMN max_holds integer NOT NULL DEFAULT 25
    CHECK (max_holds BETWEEN 0 AND 1000);

-- Floating collections: copies of these item types, or shelved at these
-- locations, stay at the branch that checks them in instead of going home.
ALTER TABLE item_type ADD COLUMN floating boolean NOT NULL DEFAULT false;
CREATE TABLE floating_location (
    location text PRIMARY KEY
);

-- Which branches' shelves a pickup branch prefers to pull copies from:
-- lower rank first. The pickup branch itself always comes first; branches
-- without a row come last.
CREATE TABLE branch_proximity (
    pickup_branch_id integer NOT NULL REFERENCES branch,
    branch_id integer NOT NULL REFERENCES branch,
    rank integer NOT NULL CHECK (rank >= 0),
    PRIMARY KEY (pickup_branch_id, branch_id)
);

CREATE TABLE hold (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patron_id bigint REFERENCES patron,           -- NULL: closed, and forgotten (privacy)
    bib_id bigint NOT NULL REFERENCES bib,
    item_id bigint REFERENCES item,               -- item-level hold: only this copy
    pickup_branch_id integer NOT NULL REFERENCES branch,
    placed_at timestamptz NOT NULL DEFAULT now(),
    placed_by bigint REFERENCES staff,
    not_needed_after date,
    suspended_until date,
    status text NOT NULL DEFAULT 'waiting'
        CHECK (status IN ('waiting', 'in_transit', 'ready', 'filled', 'cancelled', 'expired')),
    target_item_id bigint REFERENCES item,        -- the copy a pull list asks for
    targeted_at timestamptz,
    captured_item_id bigint REFERENCES item,      -- the copy set aside for it
    captured_at timestamptz,
    shelf_expires_on date,
    skipped integer NOT NULL DEFAULT 0,           -- times passed over (local_first)
    filled_at timestamptz,
    filled_loan_id bigint REFERENCES loan,
    closed_at timestamptz,
    closed_by bigint REFERENCES staff,
    cancel_reason text,
    CHECK (status NOT IN ('in_transit', 'ready') OR captured_item_id IS NOT NULL),
    CHECK (status <> 'ready' OR shelf_expires_on IS NOT NULL),
    CHECK (status <> 'filled' OR (filled_at IS NOT NULL AND filled_loan_id IS NOT NULL)),
    CHECK (status <> 'waiting' OR captured_item_id IS NULL),
    CHECK (target_item_id IS NULL OR status = 'waiting'),
    CHECK (status <> 'cancelled' OR cancel_reason IS NOT NULL),
    CHECK (patron_id IS NOT NULL OR status IN ('filled', 'cancelled', 'expired'))
);

CREATE UNIQUE INDEX hold_one_per_copy ON hold (captured_item_id)
    WHERE status IN ('in_transit', 'ready');
CREATE UNIQUE INDEX hold_one_target_per_copy ON hold (target_item_id)
    WHERE status = 'waiting' AND target_item_id IS NOT NULL;
CREATE UNIQUE INDEX hold_one_per_patron_title ON hold (patron_id, bib_id)
    WHERE status IN ('waiting', 'in_transit', 'ready');
CREATE INDEX hold_queue ON hold (bib_id, placed_at, id) WHERE status = 'waiting';
CREATE INDEX hold_patron ON hold (patron_id, status);
CREATE INDEX hold_shelf ON hold (pickup_branch_id, status) WHERE status IN ('ready', 'in_transit');

-- ---------------------------------------------------------------- notices

CREATE TABLE notice_template (
    kind text PRIMARY KEY CHECK (kind IN ('hold_ready', 'hold_expiring', 'courtesy',
                                          'overdue_1', 'overdue_2')),
    subject text NOT NULL,
    body text NOT NULL
);
-- Placeholders: {name} {title} {branch} {date} {library}
INSERT INTO notice_template (kind, subject, body) VALUES
    ('hold_ready', 'Your hold is ready: {title}',
     E'Dear {name},\n\n"{title}" is waiting for you at {branch}. We will keep it until {date}.\n\n{library}\n'),
    ('hold_expiring', 'Last days to pick up: {title}',
     E'Dear {name},\n\n"{title}" is still waiting for you at {branch}, until {date}.\n\n{library}\n'),
    ('courtesy', 'Due soon: {title}',
     E'Dear {name},\n\n"{title}" is due on {date}. You can renew it at any branch or online.\n\n{library}\n'),
    ('overdue_1', 'Overdue: {title}',
     E'Dear {name},\n\n"{title}" was due on {date}. Please return or renew it.\n\n{library}\n'),
    ('overdue_2', 'Second notice, overdue: {title}',
     E'Dear {name},\n\n"{title}" was due on {date} and is still out. Please return it to any branch.\n\n{library}\n');

CREATE TABLE notice (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patron_id bigint NOT NULL REFERENCES patron,
    kind text NOT NULL REFERENCES notice_template,
    channel text NOT NULL CHECK (channel IN ('email', 'sms', 'phone')),
    address text NOT NULL,
    hold_id bigint REFERENCES hold,
    loan_id bigint REFERENCES loan,
    about_date date,        -- the due date or shelf date it is about
    subject text NOT NULL,
    body text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'exported')),
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    claimed_at timestamptz,
    sent_at timestamptz,
    error text
);
-- Each notice is generated once: per kind, per hold or per loan and date.
CREATE UNIQUE INDEX notice_once ON notice (kind, coalesce(hold_id, 0), coalesce(loan_id, 0),
                                           coalesce(about_date, '1900-01-01'));
CREATE INDEX notice_pending ON notice (channel, status) WHERE status IN ('pending', 'sending');

-- ---------------------------------------------------------------- placing and changing holds

-- What staff see of a hold, in the column order server/holds.c reads.
CREATE TYPE hold_row AS (
    id bigint, card text, patron_name text, bib_id bigint, title text, item_barcode text,
    pickup_branch text, placed_at text, not_needed_after text, suspended_until text,
    status text, queue_position integer, captured_barcode text, shelf_expires_on text,
    target_barcode text, target_branch text, cancel_reason text);
