-- account: what the desk sees of a patron's account, in one statement and so
-- one snapshot (server/circ.c, AccountGet). The patron's flags come from
-- patron_standing (circulation.sql), the definition checkout uses.

-- The rows of one account, told apart by kind: 'a' the patron, 'l' the open
-- loans (by due date), 'g' the newest p_ledger_limit ledger entries (newest
-- first), 'h' the live holds (as hold_out gives them, oldest first). Each
-- kind puts its own columns first, as text, and n keeps each kind's order;
-- the columns of a kind are those of its enum in server/circ.c (patron:
-- ACCOUNT_PATRON_*, loan: ACCOUNT_LOAN_*, ledger: LEDGER_*, hold: HOLD_*).
-- No row at all: no patron has that card.
CREATE OR REPLACE FUNCTION account_get(p_card text, p_ledger_limit integer)
RETURNS TABLE (c0 text, c1 text, c2 text, c3 text, c4 text, c5 text, c6 text, c7 text,
               c8 text, c9 text, c10 text, c11 text, c12 text, c13 text, c14 text, c15 text,
               c16 text, kind text, n bigint)
LANGUAGE sql STABLE AS $$
    WITH a AS (
        SELECT p.id, p.card, p.first_name || ' ' || p.last_name AS name, p.category,
               p.expires_on, s.expired, s.blocked, coalesce(p.desk_alert, '') AS desk_alert,
               s.balance_cents, s.loans_out,
               (SELECT count(*) FROM loan l WHERE l.patron_id = p.id AND l.returned_at IS NULL
                                              AND l.due_at < now()) AS overdue,
               s.block_threshold_cents
          FROM patron p CROSS JOIN LATERAL patron_standing(p.id) s
         WHERE p.id = patron_resolve(p_card, NULL)),
    loans AS (
        SELECT l.id::text AS id, i.barcode, b.title, api_time(l.checkout_at) AS at,
               cb.code, api_time(l.due_at) AS due_at,
               library_local_date(l.due_at)::text AS due_date,
               (l.due_at < now())::text AS overdue, l.renewals::text AS renewals,
               (circ_rule(l.patron_category, l.item_type,
                          l.checkout_branch_id)).renewals::text AS allowed,
               l.item_type, row_number() OVER (ORDER BY l.due_at, l.id) AS n
          FROM a JOIN loan l ON l.patron_id = a.id AND l.returned_at IS NULL
          JOIN item i ON i.id = l.item_id JOIN bib b ON b.id = i.bib_id
          JOIN branch cb ON cb.id = l.checkout_branch_id),
    ledger AS (
        SELECT x.id::text AS id, api_time(x.at) AS at, x.kind,
               x.amount_cents::text AS amount_cents, coalesce(i.barcode, '') AS barcode, x.note,
               coalesce(s.username, '') AS staff,
               row_number() OVER (ORDER BY x.at DESC, x.id DESC) AS n
          FROM a JOIN patron_ledger x ON x.patron_id = a.id
          LEFT JOIN item i ON i.id = x.item_id LEFT JOIN staff s ON s.id = x.staff_id
         ORDER BY x.at DESC, x.id DESC LIMIT p_ledger_limit),
    holds AS (
        SELECT h.*
          FROM a, hold_out(ARRAY(SELECT y.id FROM hold y WHERE y.patron_id = a.id
                                    AND y.status IN ('waiting', 'in_transit', 'ready')
                                  ORDER BY y.placed_at, y.id)) WITH ORDINALITY AS h)
    SELECT a.id::text, a.card::text, a.name::text, a.category::text, a.expires_on::text,
           a.expired::text, a.blocked::text, a.desk_alert::text, a.balance_cents::text,
           a.loans_out::text, a.overdue::text, a.block_threshold_cents::text,
           NULL, NULL, NULL, NULL, NULL, 'a', 0::bigint FROM a
    UNION ALL
    SELECT l.id, l.barcode, l.title, l.at, l.code, l.due_at, l.due_date, l.overdue,
           l.renewals, l.allowed, l.item_type,
           NULL, NULL, NULL, NULL, NULL, NULL, 'l', l.n FROM loans l
    UNION ALL
    SELECT g.id, g.at, g.kind, g.amount_cents, g.barcode, g.note, g.staff,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'g', g.n FROM ledger g
    UNION ALL
    SELECT h.id::text, h.card::text, h.patron_name::text, h.bib_id::text, h.title::text,
           h.item_barcode::text, h.pickup_branch::text, h.placed_at::text,
           h.not_needed_after::text, h.suspended_until::text, h.status::text,
           h.queue_position::text, h.captured_barcode::text, h.shelf_expires_on::text,
           h.target_barcode::text, h.target_branch::text, h.cancel_reason::text,
           'h', h.ordinality FROM holds h
    ORDER BY 18, 19
$$;
