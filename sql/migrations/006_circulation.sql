-- 006: circulation: loan rules, branch calendars, loans, checkin routing,
-- renewals, item marks, the patron's ledger, statistics events, and the
-- idempotency log that makes retried requests safe. The rules are in
-- sql/rules/ (circulation.sql, requests.sql, settings.sql, transits.sql).
--
-- Invariants held by the database:
--   * at most one open loan per item (loan_one_open_per_item);
--   * an item is 'checked_out' exactly when it has an open loan (enforced by
--     the functions below, which alone write loans and statuses; checked by
--     circ_invariants());
--   * loan limits are exact under concurrency: every checkout of a patron
--     locks that patron's patron_circ row first;
--   * a request key is applied once (request_log primary key).
-- Lock order, to keep concurrent desks free of deadlocks: item, then loan,
-- then patron_circ.

-- ---------------------------------------------------------------- settings

CREATE TABLE library_setting (
    name text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO library_setting (name, value) VALUES
    ('library_name', 'Hartford Public Library'),
    -- Due dates, closed days and fines are counted in the library's local time.
    ('timezone', 'America/New_York'),
    -- Patrons owing this much or more are refused checkouts (overridable).
    ('block_threshold_cents', '1000'),
    -- Names this installation in the system numbers its MARC exports carry
    -- (035 $a "(CARREL-1a2b3c4d)42"): re-importing our own export updates
    -- bib 42, while another library's Carrel export never matches our ids.
    ('system_number_source',
     'CARREL-' || left(replace(gen_random_uuid()::text, '-', ''), 8));

-- ---------------------------------------------------------------- idempotency

-- One row per request key: claimed at the start of a change, holding the
-- answer once it commits. A retry finds the row and gets the same answer; a
-- concurrent duplicate waits on the row's insert and then does the same. A
-- request that failed leaves no row (its transaction rolled back), so its
-- retry runs afresh. Rows older than two days are removed by
-- request_log_expire(), which the daemon runs hourly.
CREATE TABLE request_log (
    key uuid PRIMARY KEY,
    staff_id bigint NOT NULL REFERENCES staff,
    kind text NOT NULL,
    result jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX request_log_created ON request_log (created_at);

-- ---------------------------------------------------------------- rules

-- Loan rules. A rule applies when each of its keys is NULL or equal to the
-- loan's; of the rules that apply, the most specific wins, weighing a branch
-- key 4, a patron category key 2 and an item type key 1 (so "this branch"
-- beats "this category" beats "this item type"). The rule with no keys is the
-- library's default and must exist.
CREATE TABLE circ_policy (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patron_category text REFERENCES patron_category,
    item_type text REFERENCES item_type,
    branch_id integer REFERENCES branch,
    loan_days integer NOT NULL DEFAULT 21 CHECK (loan_days BETWEEN 0 AND 365),
    loan_hours integer NOT NULL DEFAULT 0 CHECK (loan_hours BETWEEN 0 AND 168),
    renewals integer NOT NULL DEFAULT 2 CHECK (renewals BETWEEN 0 AND 99),
    circulates boolean NOT NULL DEFAULT true,
    max_loans integer CHECK (max_loans BETWEEN 0 AND 10000),
    max_loans_of_type integer CHECK (max_loans_of_type BETWEEN 0 AND 10000),
    -- Fines are off unless a rule sets a rate (many public libraries are fine-free).
    fine_cents_per_day integer NOT NULL DEFAULT 0 CHECK (fine_cents_per_day >= 0),
    fine_max_cents integer NOT NULL DEFAULT 0 CHECK (fine_max_cents >= 0),
    grace_days integer NOT NULL DEFAULT 0 CHECK (grace_days BETWEEN 0 AND 60),
    hold_blocks_renewal boolean NOT NULL DEFAULT true,
    charge_lost boolean NOT NULL DEFAULT true,
    CHECK (loan_days > 0 OR loan_hours > 0),
    CHECK (item_type IS NULL OR max_loans IS NULL),  -- the overall cap is untyped
    UNIQUE NULLS NOT DISTINCT (patron_category, item_type, branch_id)
);

INSERT INTO circ_policy (patron_category, item_type, loan_days, renewals, max_loans,
                         max_loans_of_type, circulates) VALUES
    (NULL, NULL, 21, 2, 50, NULL, true),
    (NULL, 'dvd', 7, 1, NULL, 10, true),
    (NULL, 'periodical', 7, 1, NULL, NULL, true),
    (NULL, 'equipment', 14, 0, NULL, 1, true),
    (NULL, 'reference', 1, 0, NULL, NULL, false);

-- ---------------------------------------------------------------- calendars

CREATE TABLE branch_closed (
    branch_id integer NOT NULL REFERENCES branch ON DELETE CASCADE,
    day date NOT NULL,
    reason text NOT NULL DEFAULT '' CHECK (length(reason) <= 200),
    PRIMARY KEY (branch_id, day)
);

-- ---------------------------------------------------------------- loans

ALTER TABLE item ADD COLUMN in_house_uses integer NOT NULL DEFAULT 0 CHECK (in_house_uses >= 0);

CREATE TABLE loan (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id bigint NOT NULL REFERENCES item,
    -- NULL once the loan ended for a patron who keeps no reading history.
    patron_id bigint REFERENCES patron,
    patron_category text NOT NULL,
    item_type text NOT NULL,
    checkout_at timestamptz NOT NULL DEFAULT now(),
    checkout_branch_id integer NOT NULL REFERENCES branch,
    checkout_staff_id bigint REFERENCES staff,
    due_at timestamptz NOT NULL,
    renewals integer NOT NULL DEFAULT 0 CHECK (renewals >= 0),
    returned_at timestamptz,
    return_branch_id integer REFERENCES branch,
    -- How it ended: returned, lost, claimed_returned, returned_by_override.
    outcome text CHECK (outcome IN ('returned', 'lost', 'claimed_returned',
                                    'returned_by_override')),
    override_reason text,
    CHECK ((returned_at IS NULL) = (outcome IS NULL)),
    CHECK (returned_at IS NULL OR returned_at >= checkout_at),
    CHECK (returned_at IS NOT NULL OR patron_id IS NOT NULL)
);
-- The heart of it: an item is lent to at most one patron at a time.
CREATE UNIQUE INDEX loan_one_open_per_item ON loan (item_id) WHERE returned_at IS NULL;
CREATE INDEX loan_patron_open ON loan (patron_id, due_at) WHERE returned_at IS NULL;
CREATE INDEX loan_patron ON loan (patron_id) WHERE patron_id IS NOT NULL;
CREATE INDEX loan_due_open ON loan (due_at) WHERE returned_at IS NULL;

-- Per-patron counters, so that a checkout costs the same for a patron with
-- 500 loans as for one with none, and so that concurrent checkouts of one
-- patron serialize on one row and limits stay exact.
CREATE TABLE patron_circ (
    patron_id bigint PRIMARY KEY REFERENCES patron,
    loans_out integer NOT NULL DEFAULT 0 CHECK (loans_out >= 0),
    balance_cents bigint NOT NULL DEFAULT 0
);

CREATE TABLE patron_type_loans (
    patron_id bigint NOT NULL REFERENCES patron,
    item_type text NOT NULL REFERENCES item_type,
    loans_out integer NOT NULL DEFAULT 0 CHECK (loans_out >= 0),
    PRIMARY KEY (patron_id, item_type)
);

-- The account: charges positive, payments and waivers negative. Payments are
-- recorded here, not processed.
CREATE TABLE patron_ledger (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patron_id bigint NOT NULL REFERENCES patron,
    at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL CHECK (kind IN ('fine', 'lost_charge', 'lost_refund', 'charge',
                                       'payment', 'waiver')),
    amount_cents bigint NOT NULL CHECK (amount_cents <> 0),
    item_id bigint REFERENCES item,
    loan_id bigint REFERENCES loan,
    staff_id bigint REFERENCES staff,
    note text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    CHECK ((kind IN ('payment', 'waiver', 'lost_refund')) = (amount_cents < 0))
);
CREATE INDEX patron_ledger_patron ON patron_ledger (patron_id, at);

-- Statistics: every circulation event, with no patron identity: the branch,
-- the item's type, the patron's category, the time.
CREATE TABLE circ_event (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    action text NOT NULL CHECK (action IN ('checkout', 'checkin', 'renew', 'lost',
                                           'claims_returned', 'damaged', 'missing', 'found',
                                           'in_house_use', 'override', 'status_fixed')),
    branch_id integer NOT NULL REFERENCES branch,
    item_id bigint NOT NULL REFERENCES item,
    item_type text NOT NULL,
    patron_category text,
    staff_id bigint REFERENCES staff
);
CREATE INDEX circ_event_at ON circ_event (at);
CREATE INDEX circ_event_branch ON circ_event (branch_id, at);

-- Items on their way between branches. One open transit per item.
CREATE TABLE transit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id bigint NOT NULL REFERENCES item,
    from_branch_id integer NOT NULL REFERENCES branch,
    to_branch_id integer NOT NULL REFERENCES branch,
    reason text NOT NULL CHECK (reason IN ('home', 'hold')),
    sent_at timestamptz NOT NULL DEFAULT now(),
    sent_by bigint REFERENCES staff,
    received_at timestamptz,
    received_by bigint REFERENCES staff,
    cancelled_at timestamptz,
    CHECK (from_branch_id <> to_branch_id),
    CHECK (received_at IS NULL OR cancelled_at IS NULL)
);
CREATE UNIQUE INDEX transit_one_open ON transit (item_id)
    WHERE received_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX transit_to_open ON transit (to_branch_id) WHERE received_at IS NULL
    AND cancelled_at IS NULL;

-- ---------------------------------------------------------------- checkout

CREATE TYPE checkout_result AS (
    loan_id bigint, barcode text, title text, due_at timestamptz, due_date date,
    patron_name text, slip text, overridden text[], loans_out integer, filled_hold_id bigint);

-- ---------------------------------------------------------------- checkin

CREATE TYPE checkin_result AS (
    barcode text, title text, was_on_loan boolean, route text, destination_code text,
    destination_name text, fine_cents bigint, message text, slip text, previous_status text,
    patron_name text, hold_id bigint);

-- ---------------------------------------------------------------- renew

CREATE TYPE renew_result AS (
    barcode text, title text, renewed boolean, due_at timestamptz, due_date date,
    reason text, message text, renewals integer);

-- ---------------------------------------------------------------- item marks

CREATE TYPE item_mark_result AS (barcode text, charged_cents bigint, message text);
