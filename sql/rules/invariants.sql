-- Invariants: circ_invariants() and hold_invariants() list every row that
-- breaks a rule of circulation or holds (no rows: all is well). Called by the
-- integration tests after each test, and by hand.

-- What should never happen in circulation, as rows (empty when all is well):
-- copies, loans, counters and balances agree; an open transit belongs to a
-- copy in transit (not one on a hold shelf, lent or on a shelf), and the loans
-- of one copy never overlap in time. The tests run it after racing desks;
-- staff can run it any time.
CREATE OR REPLACE FUNCTION circ_invariants() RETURNS TABLE (problem text, detail text)
LANGUAGE sql STABLE AS $$
    SELECT 'checked out without a loan', i.barcode FROM item i
    WHERE i.status = 'checked_out'
      AND NOT EXISTS (SELECT 1 FROM loan l WHERE l.item_id = i.id AND l.returned_at IS NULL)
    UNION ALL
    SELECT 'open loan on an item not checked out', i.barcode || ' is ' || i.status
    FROM loan l JOIN item i ON i.id = l.item_id
    WHERE l.returned_at IS NULL AND i.status <> 'checked_out'
    UNION ALL
    SELECT 'loan counter differs', pc.patron_id || ': ' || pc.loans_out || ' vs ' ||
           (SELECT count(*) FROM loan l WHERE l.patron_id = pc.patron_id AND l.returned_at IS NULL)
    FROM patron_circ pc
    WHERE pc.loans_out <> (SELECT count(*) FROM loan l
                           WHERE l.patron_id = pc.patron_id AND l.returned_at IS NULL)
    UNION ALL
    SELECT 'type counter differs', t.patron_id || '/' || t.item_type
    FROM patron_type_loans t
    WHERE t.loans_out <> (SELECT count(*) FROM loan l WHERE l.patron_id = t.patron_id
                          AND l.item_type = t.item_type AND l.returned_at IS NULL)
    UNION ALL
    SELECT 'balance differs', pc.patron_id::text FROM patron_circ pc
    WHERE pc.balance_cents <> coalesce((SELECT sum(amount_cents) FROM patron_ledger x
                                        WHERE x.patron_id = pc.patron_id), 0)
    UNION ALL
    SELECT 'checkouts and loans differ',
           (SELECT count(*) FROM circ_event WHERE action = 'checkout') || ' events, ' ||
           (SELECT count(*) FROM loan) || ' loans'
    WHERE (SELECT count(*) FROM circ_event WHERE action = 'checkout')
          <> (SELECT count(*) FROM loan)
    UNION ALL
    SELECT 'in transit without a transit', i.barcode FROM item i
    WHERE i.status = 'in_transit'
      AND NOT EXISTS (SELECT 1 FROM transit t WHERE t.item_id = i.id AND t.received_at IS NULL
                                                AND t.cancelled_at IS NULL)
    UNION ALL
    SELECT 'open transit for an item not in transit', i.barcode || ' is ' || i.status
    FROM transit t JOIN item i ON i.id = t.item_id
    WHERE t.received_at IS NULL AND t.cancelled_at IS NULL AND i.status <> 'in_transit'
    UNION ALL
    SELECT 'loans of one item overlap',
           i.barcode || ': loan ' || o.id || ' began before loan ' || o.previous_id || ' ended'
    FROM (SELECT l.id, l.item_id, l.checkout_at,
                 lag(l.id) OVER w AS previous_id,
                 lag(coalesce(l.returned_at, 'infinity')) OVER w AS previous_end
          FROM loan l
          WINDOW w AS (PARTITION BY l.item_id ORDER BY l.checkout_at, l.id)) o
    JOIN item i ON i.id = o.item_id
    WHERE o.previous_end > o.checkout_at
$$;

-- The same for holds, in both directions: a copy set aside is where its
-- hold says (on the hold shelf of its pickup branch, or on a transit) and a
-- live hold's copy is in the state the hold says, a copy on a hold shelf is
-- on no transit, hold transits end at the pickup branch, a filled hold has
-- its loan, and a hold is filled after it was placed.
CREATE OR REPLACE FUNCTION hold_invariants() RETURNS TABLE (problem text, detail text)
LANGUAGE sql STABLE AS $$
    SELECT 'captured copy not set aside', i.barcode || ' is ' || i.status
    FROM hold h JOIN item i ON i.id = h.captured_item_id
    WHERE (h.status = 'ready' AND i.status <> 'on_hold_shelf')
       OR (h.status = 'in_transit' AND i.status <> 'in_transit')
    UNION ALL
    SELECT 'captured copy of another title', i.barcode || ' for hold ' || h.id
    FROM hold h JOIN item i ON i.id = h.captured_item_id
    WHERE h.status IN ('ready', 'in_transit') AND i.bib_id <> h.bib_id
    UNION ALL
    SELECT 'ready copy away from its pickup branch', i.barcode || ' is at ' || b.code
    FROM hold h JOIN item i ON i.id = h.captured_item_id
    JOIN branch b ON b.id = i.current_branch_id
    WHERE h.status = 'ready' AND i.current_branch_id <> h.pickup_branch_id
    UNION ALL
    SELECT 'copy on the hold shelf still in transit', i.barcode || ' to ' || b.code
    FROM hold h JOIN item i ON i.id = h.captured_item_id
    JOIN transit t ON t.item_id = i.id AND t.received_at IS NULL AND t.cancelled_at IS NULL
    JOIN branch b ON b.id = t.to_branch_id
    WHERE h.status = 'ready'
    UNION ALL
    SELECT 'hold in transit without a transit', i.barcode || ' for hold ' || h.id
    FROM hold h JOIN item i ON i.id = h.captured_item_id
    WHERE h.status = 'in_transit'
      AND NOT EXISTS (SELECT 1 FROM transit t WHERE t.item_id = i.id AND t.received_at IS NULL
                                                AND t.cancelled_at IS NULL)
    UNION ALL
    SELECT 'hold transit without a hold', i.barcode FROM transit t JOIN item i ON i.id = t.item_id
    WHERE t.reason = 'hold' AND t.received_at IS NULL AND t.cancelled_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM hold h WHERE h.captured_item_id = t.item_id
                                             AND h.status = 'in_transit')
      -- the hold ended while the copy travelled (cancelled or ran out): it
      -- goes on and is routed again where it arrives
      AND NOT EXISTS (SELECT 1 FROM hold h WHERE h.captured_item_id = t.item_id
                                             AND h.status IN ('cancelled', 'expired')
                                             AND h.closed_at >= t.sent_at)
      AND i.status = 'in_transit'
    UNION ALL
    SELECT 'transit ends at the wrong branch', i.barcode FROM hold h
    JOIN transit t ON t.item_id = h.captured_item_id AND t.received_at IS NULL
                  AND t.cancelled_at IS NULL
    JOIN item i ON i.id = h.captured_item_id
    WHERE h.status = 'in_transit' AND t.to_branch_id <> h.pickup_branch_id
    UNION ALL
    SELECT 'filled hold without its loan', h.id::text FROM hold h
    WHERE h.status = 'filled' AND NOT EXISTS (SELECT 1 FROM loan l WHERE l.id = h.filled_loan_id)
    UNION ALL
    SELECT 'filled before it was placed',
           'hold ' || h.id || ' filled ' || (h.placed_at - h.filled_at) || ' before it was placed'
    FROM hold h WHERE h.filled_at < h.placed_at
$$;
