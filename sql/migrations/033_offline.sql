-- 033: offline circulation at the desk: when each copy's status last
-- changed (what "the item changed after the offline transaction" is read
-- from), and the exceptions report of replayed offline transactions. The
-- rules are in sql/rules/offline.sql (docs/OFFLINE.md).
--
-- Invariants:
--   * item.status_changed_at is the time of the copy's last change of
--     status (trigger item_status_stamp, offline.sql); NULL for copies whose
--     status has not changed since this migration (not known: older);
--   * one offline_exception row per journal entry at most (key UNIQUE): a
--     resent upload writes no second row, and gets the row's answer even
--     once the request key's log row has expired;
--   * a resolved row goes 90 days after its resolution
--     (offline_exception_expire, run daily by holds_daily): it ties a card
--     to a copy.

ALTER TABLE item ADD COLUMN status_changed_at timestamptz;

CREATE TABLE offline_exception (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The journal entry's own key (the OfflineReplay's request key).
    key uuid NOT NULL UNIQUE,
    branch_id integer NOT NULL REFERENCES branch,
    workstation_id bigint REFERENCES workstation,
    uploaded_by bigint REFERENCES staff,
    -- Who was at the desk, as the desk journaled it (a username; not checked).
    clerk text CHECK (length(clerk) <= 100),
    op text NOT NULL CHECK (op IN ('checkout', 'checkin', 'renew')),
    -- As scanned: an unknown card or barcode is kept as it was read.
    card text CHECK (length(card) <= 64),
    barcode text CHECK (length(barcode) <= 64),
    item_id bigint REFERENCES item,
    patron_id bigint REFERENCES patron,
    -- When it happened, on the server's clock (workstation clock + offset),
    -- and as the workstation's clock read it.
    offline_at timestamptz NOT NULL,
    workstation_at timestamptz,
    offset_ms bigint,
    uploaded_at timestamptz NOT NULL DEFAULT now(),
    outcome text NOT NULL CHECK (outcome IN ('warning', 'skipped')),
    reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 40),
    message text NOT NULL CHECK (length(message) BETWEEN 1 AND 1000),
    -- A checkin's route as answered (hold, transit: check it in again).
    route text CHECK (length(route) <= 20),
    resolved_at timestamptz,
    resolved_by bigint REFERENCES staff,
    resolution text CHECK (length(resolution) BETWEEN 1 AND 500),
    CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE INDEX offline_exception_branch ON offline_exception (branch_id, uploaded_at);
CREATE INDEX offline_exception_resolved ON offline_exception (resolved_at)
    WHERE resolved_at IS NOT NULL;
