-- 034: stored desk events. desk_event()/desk_event_to() (sql/rules/events.sql)
-- insert a row here instead of NOTIFYing: NOTIFY takes a cluster-wide lock at
-- commit and holds it across the commit's flush, so notifying transactions
-- committed one at a time. carreld polls the table (server/events.c) and
-- pushes each new row to the desks it is for; a desk that reconnects asks for
-- the rows after the last it saw (Subscribe.since_event_id).
--
-- Invariants:
--   * xid is the inserting transaction's top-level id, assigned before id is
--     drawn (desk_event calls pg_current_xact_id() first); the daemon's poll
--     finds new rows by xid (server/events.c has the proof);
--   * no foreign keys: an event is a record of what was said, kept after its
--     branch, copy or ticket goes, and checking a key would lock a branch row
--     in every circulation transaction;
--   * rows older than event_retention_hours (carreld.conf, 48) are deleted
--     hourly (desk_event_prune); the text names a patron at most as
--     "Maria G.", as the pushed event always did.

CREATE TABLE desk_event (
    id bigserial PRIMARY KEY,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at timestamptz NOT NULL DEFAULT now(),
    branch_id integer,        -- NULL: a system-wide queue (desk_event_to)
    branch_code text NOT NULL DEFAULT '',
    kind text NOT NULL,
    item_barcode text,
    bib_id bigint,
    text text NOT NULL DEFAULT '',
    ticket_id bigint,
    -- desk_event_to: the staff it is addressed to (empty: the branch's desks).
    usernames text[] NOT NULL DEFAULT '{}'
);

CREATE INDEX desk_event_xid ON desk_event (xid);
CREATE INDEX desk_event_at ON desk_event (at);
