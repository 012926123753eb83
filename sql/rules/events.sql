-- Desk events: desk_event and desk_event_to store a row in desk_event
-- (migration 034); carreld polls the table and pushes an Event frame to the
-- desks it is for (server/events.c), and replays the stored rows to a desk
-- that reconnects (Subscribe.since_event_id). Called by the hold,
-- circulation and schedule rules (desk_event) and the ticket rules
-- (desk_event_to).
--
-- No NOTIFY: it takes a cluster-wide lock at commit and holds it across the
-- commit's flush, so every transaction with an event committed one at a
-- time. A row is seen by the daemon only once its transaction commits.
--
-- The row's xid is assigned before its id is drawn (pg_current_xact_id()
-- first): the daemon finds new rows by xid against its last snapshot, and
-- the ids then follow the xids of the transactions that drew them.
--
-- `at` is the insert's clock (clock_timestamp()), not the transaction's
-- start: the daemon's first poll looks back by it (a transaction begun
-- before the daemon started whose event was written after is still pushed
-- live), and a desk tells old history from what it missed by it.

-- The event's text as a desk shows it: one line.
CREATE OR REPLACE FUNCTION desk_event_line(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT translate(coalesce(p_text, ''), E'\t\n\r', '   ')
$$;

-- Tell the desks of a branch: a hold captured for its shelf, a transit sent
-- to it, a hold placed on a title it holds, a gap in its schedule. Delivered
-- only if the transaction commits.
CREATE OR REPLACE FUNCTION desk_event(p_branch integer, p_kind text, p_item bigint, p_bib bigint,
                                      p_text text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_current_xact_id(); -- the xid before the id (see above)
    INSERT INTO desk_event (xid, at, branch_id, branch_code, kind, item_barcode, bib_id, text)
    VALUES (pg_current_xact_id(), clock_timestamp(), p_branch,
            coalesce((SELECT code FROM branch WHERE id = p_branch), ''), p_kind,
            (SELECT barcode FROM item WHERE id = p_item), p_bib, desk_event_line(p_text));
END
$$;

-- An event for named staff (a ticket's): carreld sends it to the subscribed
-- connections of those users and to every coordinator and administrator;
-- with no usernames, to the branch's desks as desk_event. At most 100
-- usernames and 1,000 characters of text are kept. p_branch NULL (a
-- system-wide queue) leaves the branch code empty.
CREATE OR REPLACE FUNCTION desk_event_to(p_branch integer, p_kind text, p_ticket bigint,
                                         p_usernames text[], p_text text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_current_xact_id(); -- the xid before the id (see above)
    INSERT INTO desk_event (xid, at, branch_id, branch_code, kind, text, ticket_id, usernames)
    VALUES (pg_current_xact_id(), clock_timestamp(), p_branch,
            coalesce((SELECT code FROM branch WHERE id = p_branch), ''), p_kind,
            left(desk_event_line(p_text), 1000), p_ticket,
            coalesce((SELECT array_agg(u ORDER BY n) FROM unnest(p_usernames) WITH ORDINALITY
                      AS x(u, n) WHERE n <= 100 AND u IS NOT NULL AND u <> ''), '{}'));
END
$$;

-- Retention, run hourly by carreld with event_retention_hours: deletes the
-- stored events older than that; returns how many went.
CREATE OR REPLACE FUNCTION desk_event_prune(p_hours integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_n bigint;
BEGIN
    IF p_hours IS NULL OR p_hours < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:hours',
            MESSAGE = 'The retention period must be at least one hour.';
    END IF;
    DELETE FROM desk_event WHERE at < now() - make_interval(hours => p_hours);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
