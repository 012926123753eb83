-- 018: daily snapshots of the patron activity counts (IMLS registered users,
-- active borrowers), so that a report for a past day (the PLS REGBOR of a
-- year, run months later) shows the counts as they were at that day's end:
-- the activity dates on patron_circ hold only the latest day, so a patron
-- idle through the year who came back since would otherwise be counted. The
-- rules (the snapshot taken by stats_rollup_run, the readers) are in
-- sql/rules/stats.sql; docs/STATISTICS.md, "Patron counts as of a day".
--
-- Invariants:
--   * one snapshot per local day at most: stat_patron_snapshot's key; its
--     rows in stat_patron_day are written in the same transaction;
--   * counts only: per home branch and patron category, never a patron id.

-- A snapshot of the end of local day `day`, taken at taken_at (normally
-- seconds after that day's local midnight, by the first rollup run of the
-- next day; later when the daemon was not running then). Kept even when it
-- has no rows (no patrons), so that "taken" is known.
CREATE TABLE stat_patron_snapshot (
    day date PRIMARY KEY,
    taken_at timestamptz NOT NULL DEFAULT now()
);

-- The counts of the snapshot of `day`, per home branch and category, of the
-- patron records registered by that day's end (merged duplicates not
-- counted): registered_users (used or renewed in the 3 years up to `day`),
-- active_borrowers (a checkout or renewal in the 12 months up to `day`),
-- patrons (all of them). No foreign key to branch or patron_category: like
-- the rollups, these are derived counts that outlive a code's removal.
CREATE TABLE stat_patron_day (
    day date NOT NULL REFERENCES stat_patron_snapshot ON DELETE CASCADE,
    branch_id integer NOT NULL,
    patron_category text NOT NULL,
    registered_users bigint NOT NULL CHECK (registered_users >= 0),
    active_borrowers bigint NOT NULL CHECK (active_borrowers >= 0),
    patrons bigint NOT NULL CHECK (patrons > 0),
    PRIMARY KEY (day, branch_id, patron_category)
);
