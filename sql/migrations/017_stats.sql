-- 017: statistics: what circulation events record for them (how and where on
-- the shelves), rollups of circulation events by hour, day and month, the
-- queue that feeds the rollups, the measure registry, notice outcomes, the
-- patron activity dates (IMLS registered users, active borrowers), and the
-- settings of the PLS report. The rules are in sql/rules/stats.sql (docs:
-- docs/STATISTICS.md).
--
-- Invariants:
--   * every circ_event is counted exactly once by rollups + queue: the
--     trigger stat_circ_enqueue puts each new event's id in stat_circ_queue in
--     the event's own transaction; stats_rollup_run folds queued events into
--     the rollups and deletes their queue rows in one transaction. So a
--     reader that adds the still-queued events to the rollups sees exactly
--     the raw events, whatever order transactions commit in (no watermark).
--   * rollup times are the library's local time (library_setting
--     'timezone'); changing the timezone needs stats_rollup_rebuild().
--   * nothing here holds a patron identity: rollups are counts by branch,
--     action, how, item type, patron category and shelving location.

-- ---------------------------------------------------------------- events

-- How the event came about: at a desk, at a self-check machine, or by the
-- system (an automatic renewal). Everything before this migration was a desk.
ALTER TABLE circ_event ADD COLUMN via text NOT NULL DEFAULT 'desk'
    CHECK (via IN ('desk', 'selfcheck', 'auto'));
-- The copy's shelving location when the event happened (item.location); NULL
-- for the events recorded before this migration (not known).
ALTER TABLE circ_event ADD COLUMN location text;

-- ---------------------------------------------------------------- rollups

-- Counts of circ_event rows. Keys start with the action: every question
-- asks for some actions over a time range, which is then one index range per
-- action. Local times; '' stands for "none" in
-- patron_category (events without a patron) and location. No foreign keys:
-- rollups are derived, and rebuilt from circ_event by stats_rollup_rebuild().
-- The hour rollup keeps only branch and via, so that an hour-of-week heat map
-- over years reads a few hundred thousand rows at most.
CREATE TABLE stat_circ_hour (
    hour timestamp NOT NULL,
    branch_id integer NOT NULL,
    action text NOT NULL,
    via text NOT NULL,
    n bigint NOT NULL CHECK (n > 0),
    PRIMARY KEY (action, hour, branch_id, via)
);
-- Every run adds to the rows of the current hour (and day): room on their
-- pages keeps those updates HOT (n is in no index).
ALTER TABLE stat_circ_hour SET (fillfactor = 90);

CREATE TABLE stat_circ_day (
    day date NOT NULL,
    branch_id integer NOT NULL,
    action text NOT NULL,
    via text NOT NULL,
    item_type text NOT NULL,
    patron_category text NOT NULL,
    location text NOT NULL,
    n bigint NOT NULL CHECK (n > 0),
    PRIMARY KEY (action, day, branch_id, via, item_type, patron_category, location)
);

-- The same by day without item type, category and location: what most
-- questions ask (by branch, by day, week, month or year) reads a few
-- thousand rows of this one instead of the wide day or month rollup.
CREATE TABLE stat_circ_branch_day (
    day date NOT NULL,
    branch_id integer NOT NULL,
    action text NOT NULL,
    via text NOT NULL,
    n bigint NOT NULL CHECK (n > 0),
    PRIMARY KEY (action, day, branch_id, via)
);
ALTER TABLE stat_circ_branch_day SET (fillfactor = 90);

-- By one of the three wide dimensions at a time (dim: item_type,
-- patron_category or location; value: its code or text): three rows per
-- event. A split by one of them (with branch or via or not) reads these
-- instead of the wide rollups, whose rows multiply with every dimension.
CREATE TABLE stat_circ_dim_day (
    action text NOT NULL,
    dim text NOT NULL CHECK (dim IN ('item_type', 'patron_category', 'location')),
    day date NOT NULL,
    branch_id integer NOT NULL,
    via text NOT NULL,
    value text NOT NULL,
    n bigint NOT NULL CHECK (n > 0),
    PRIMARY KEY (action, dim, day, branch_id, via, value)
);

CREATE TABLE stat_circ_dim_month (
    action text NOT NULL,
    dim text NOT NULL CHECK (dim IN ('item_type', 'patron_category', 'location')),
    month date NOT NULL CHECK (extract(day FROM month) = 1),
    branch_id integer NOT NULL,
    via text NOT NULL,
    value text NOT NULL,
    n bigint NOT NULL CHECK (n > 0),
    PRIMARY KEY (action, dim, month, branch_id, via, value)
);

-- month: the first day of the local calendar month.
CREATE TABLE stat_circ_month (
    month date NOT NULL CHECK (extract(day FROM month) = 1),
    branch_id integer NOT NULL,
    action text NOT NULL,
    via text NOT NULL,
    item_type text NOT NULL,
    patron_category text NOT NULL,
    location text NOT NULL,
    n bigint NOT NULL CHECK (n > 0),
    PRIMARY KEY (action, month, branch_id, via, item_type, patron_category, location)
);

-- Events not yet folded into the rollups (filled by the statement-level
-- trigger stat_circ_enqueue on circ_event, emptied by stats_rollup_run),
-- with the columns the rollups count by: a question adds the queued events
-- to the rollups reading this small table alone, never circ_event.
CREATE TABLE stat_circ_queue (
    event_id bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    branch_id integer NOT NULL,
    action text NOT NULL,
    via text NOT NULL,
    item_type text NOT NULL,
    patron_category text NOT NULL,
    location text NOT NULL
);
-- Rows come and go all day: vacuum it after every few runs, not after a
-- fifth of its (small) size has turned over.
ALTER TABLE stat_circ_queue SET (autovacuum_vacuum_scale_factor = 0,
                                 autovacuum_vacuum_threshold = 20000);
-- The events already recorded are folded by the first rollup runs.
INSERT INTO stat_circ_queue (event_id, at, branch_id, action, via, item_type, patron_category,
                             location)
SELECT id, at, branch_id, action, via, item_type, coalesce(patron_category, ''),
       coalesce(location, '')
FROM circ_event;

-- ---------------------------------------------------------------- measures

-- One row per measure (rows in sql/rules/stats.sql, beside their sources).
-- stats_query checks the time grain and dimensions asked for against times
-- and dims, then calls source(from, to, time, by, branches, arg, param).
-- kind: 'range' (counted over from..to) or 'now' (the state as of today).
CREATE TABLE stat_measure (
    name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{1,40}$'),
    title text NOT NULL,
    unit text NOT NULL CHECK (unit IN ('count', 'ratio', 'hours', 'days')),
    source regproc NOT NULL,
    param text NOT NULL DEFAULT '',
    dims text[] NOT NULL DEFAULT '{}',
    times text[] NOT NULL DEFAULT '{none}',
    kind text NOT NULL CHECK (kind IN ('range', 'now')),
    description text NOT NULL,
    ord integer NOT NULL DEFAULT 0
);

-- ---------------------------------------------------------------- holds and transits

-- When the hold's copy was set on the hold shelf (the last time, when it
-- went back to waiting and came again). Set by the trigger hold_closed_at.
-- Not known for holds made ready before this migration.
ALTER TABLE hold ADD COLUMN ready_at timestamptz;

CREATE INDEX hold_placed_at ON hold (placed_at);
CREATE INDEX hold_closed_at ON hold (closed_at) WHERE closed_at IS NOT NULL;
CREATE INDEX hold_filled_at ON hold (filled_at) WHERE filled_at IS NOT NULL;
CREATE INDEX hold_ready_at ON hold (ready_at) WHERE ready_at IS NOT NULL;
CREATE INDEX hold_waiting_pickup ON hold (pickup_branch_id) WHERE status = 'waiting';
CREATE INDEX transit_sent_at ON transit (sent_at);
CREATE INDEX patron_created_at ON patron (created_at);

-- ---------------------------------------------------------------- notices

-- Outcomes of notices, for counting: notices themselves are deleted once
-- their loan or hold has ended (privacy). No patron, no text: when, which
-- branch (the hold's pickup branch, the loan's checkout branch, else the
-- patron's home branch), which channel, what happened.
CREATE TABLE stat_notice_event (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    branch_id integer NOT NULL,
    channel text NOT NULL CHECK (channel IN ('email', 'sms', 'phone')),
    kind text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('sent', 'failed', 'exported'))
);
CREATE INDEX stat_notice_event_at ON stat_notice_event (at);
CREATE INDEX stat_notice_event_failed ON stat_notice_event (branch_id, at)
    WHERE outcome = 'failed';

INSERT INTO stat_notice_event (at, branch_id, channel, kind, outcome)
SELECT coalesce(n.sent_at, n.claimed_at, n.created_at),
       coalesce(h.pickup_branch_id, l.checkout_branch_id, p.home_branch_id),
       n.channel, n.kind, n.status
FROM notice n
JOIN patron p ON p.id = n.patron_id
LEFT JOIN hold h ON h.id = n.hold_id
LEFT JOIN loan l ON l.id = n.loan_id
WHERE n.status IN ('sent', 'failed', 'exported')
ORDER BY n.id;

-- ---------------------------------------------------------------- patron activity

-- Kept on patron_circ, the row checkout already locks and writes: setting
-- them at a checkout costs no extra write, and they are not edits of the
-- customer record (no version bump, no audit). Not indexed, so that the
-- checkout's update of this row stays a HOT update.
--   last_activity_on: the last local day the record was used (checkout,
--     renewal, hold placed) or renewed (registration, card renewal);
--   last_borrowed_on: the last local day of a checkout or renewal.
ALTER TABLE patron_circ ADD COLUMN last_activity_on date;
ALTER TABLE patron_circ ADD COLUMN last_borrowed_on date;

-- From what exists, never from a borrowing history: registration, the open
-- loans and the live holds.
INSERT INTO patron_circ (patron_id) SELECT id FROM patron ON CONFLICT DO NOTHING;
UPDATE patron_circ pc
SET last_borrowed_on = x.borrowed, last_activity_on = greatest(x.registered, x.borrowed, x.held)
FROM (SELECT p.id,
             (p.created_at AT TIME ZONE tz.value)::date AS registered,
             (SELECT max(l.checkout_at AT TIME ZONE tz.value)::date FROM loan l
              WHERE l.patron_id = p.id AND l.returned_at IS NULL) AS borrowed,
             (SELECT max(h.placed_at AT TIME ZONE tz.value)::date FROM hold h
              WHERE h.patron_id = p.id AND h.status IN ('waiting', 'in_transit', 'ready'))
                 AS held
      FROM patron p, library_setting tz
      WHERE tz.name = 'timezone') x
WHERE x.id = pc.patron_id;

-- ---------------------------------------------------------------- settings

INSERT INTO library_setting (name, value) VALUES
    -- Patron categories whose circulation is children's (PLS KIDPHYSCIR),
    -- comma separated.
    ('pls_child_categories', 'juvenile'),
    -- PLS lines the ILS cannot count: weeks open, fines for overdue
    -- materials (yes/no), automatic renewal (yes/no).
    ('pls_weeks_open', '52'),
    ('pls_odfine', 'no'),
    ('pls_autorenew', 'no'),
    -- "Buy more copies": titles with at least this many live holds per copy.
    ('buy_more_holds_per_copy', '4'),
    -- copies_idle: months without a checkout, when the query gives none.
    ('stats_idle_months', '12')
ON CONFLICT (name) DO NOTHING;
