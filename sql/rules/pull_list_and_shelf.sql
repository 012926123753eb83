-- Hold lists: what a branch's staff work from. The pull list (copies on this
-- branch's shelves that waiting holds ask for), the hold shelf (copies ready
-- for their patrons), the clearing list (copies still on the hold shelf
-- whose hold is over) and a title's queue in order. Read only. Called by
-- server/holds.c (PullList, HoldShelf, HoldQueue).

-- The pull list of branch p_branch (its code): the copies on its shelves
-- that a waiting hold asks for (hold_retarget, hold_targeting.sql), in shelf
-- order: location, call number, barcode. A copy on a display running there
-- has "on display: THEME (place)" as its location (item_display_text), so
-- staff look for it on the display, not on its usual shelf; those sort
-- together, by display.
CREATE OR REPLACE FUNCTION pull_list(p_branch text)
RETURNS TABLE (barcode text, title text, call_number text, location text, hold_id bigint,
               pickup_branch text, placed_at text)
LANGUAGE sql STABLE AS $$
    SELECT p.barcode, p.title, p.call_number, p.location, p.id, p.code, p.placed_at
    FROM (SELECT i.barcode, b.title, i.call_number,
                 coalesce(item_display_text(i.id), i.location) AS location, h.id, pb.code,
                 api_time(h.placed_at) AS placed_at
          FROM hold h JOIN item i ON i.id = h.target_item_id JOIN bib b ON b.id = h.bib_id
          JOIN branch pb ON pb.id = h.pickup_branch_id
          JOIN branch cb ON cb.id = i.current_branch_id
          WHERE h.status = 'waiting' AND i.status = 'available' AND cb.code = p_branch) p
    ORDER BY p.location, p.call_number, p.barcode
$$;

-- The hold shelf of pickup branch p_branch: the ready holds and their
-- copies, by the patron's last and first name. The patron is named as on
-- slips (patron_short_name) with the last four characters of the card.
CREATE OR REPLACE FUNCTION hold_shelf(p_branch text)
RETURNS TABLE (barcode text, title text, hold_id bigint, patron_name text, card_end text,
               shelf_expires_on text, status text)
LANGUAGE sql STABLE AS $$
    SELECT i.barcode, b.title, h.id, patron_short_name(p), right(p.card, 4),
           h.shelf_expires_on::text, h.status
    FROM hold h JOIN item i ON i.id = h.captured_item_id JOIN bib b ON b.id = h.bib_id
    JOIN patron p ON p.id = h.patron_id JOIN branch pb ON pb.id = h.pickup_branch_id
    WHERE h.status = 'ready' AND pb.code = p_branch
    ORDER BY p.last_name, p.first_name, h.id
$$;

-- The clearing list of branch p_branch: copies on its hold shelf that no
-- live hold holds any more (expired, cancelled, or released), with the last
-- hold that had them when there is one (else empty texts and a NULL id).
-- Staff pull them and check them in, which routes them on.
CREATE OR REPLACE FUNCTION hold_clearing_list(p_branch text)
RETURNS TABLE (barcode text, title text, hold_id bigint, patron_name text, card_end text,
               shelf_expires_on text, status text)
LANGUAGE sql STABLE AS $$
    SELECT i.barcode, b.title, h.id, coalesce(patron_short_name(p), ''),
           coalesce(right(p.card, 4), ''), coalesce(h.shelf_expires_on::text, ''),
           coalesce(h.status, '')
    FROM item i JOIN branch cb ON cb.id = i.current_branch_id JOIN bib b ON b.id = i.bib_id
    LEFT JOIN LATERAL (SELECT * FROM hold x WHERE x.captured_item_id = i.id
                       ORDER BY x.captured_at DESC NULLS LAST, x.id DESC LIMIT 1) h ON true
    LEFT JOIN patron p ON p.id = h.patron_id
    WHERE i.status = 'on_hold_shelf' AND cb.code = p_branch
      AND NOT EXISTS (SELECT 1 FROM hold y WHERE y.captured_item_id = i.id
                                             AND y.status IN ('ready', 'in_transit'))
    ORDER BY i.call_number, i.barcode
$$;

-- The live holds of title p_bib in queue order: holds whose copy is on the
-- hold shelf or on its way come first, then the waiting ones, first come,
-- first served (placed_at, then id).
CREATE OR REPLACE FUNCTION bib_hold_queue(p_bib bigint) RETURNS SETOF hold_row
LANGUAGE sql STABLE AS $$
    SELECT * FROM hold_out(ARRAY(
        SELECT h.id FROM hold h
        WHERE h.bib_id = p_bib AND h.status IN ('waiting', 'in_transit', 'ready')
        ORDER BY h.status = 'waiting', h.placed_at, h.id))
$$;
