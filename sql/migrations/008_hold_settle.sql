-- 008: a copy set aside for a hold stays consistent with its hold, and the
-- times of loans and holds are the times the changes happened.
--
-- Every change of a copy's status passes through one trigger on item
-- (item_hold_settle): whatever made the change (a mark, not-found, an item
-- edit, an import, SQL by hand), a copy that stops travelling loses its open
-- transit, a hold whose copy is no longer on its hold shelf or on its way
-- goes back to waiting at its place in the queue (hold_release) and looks for
-- another copy, and waiting holds whose target left the shelf ask for another.
-- Checkout is the one change the trigger leaves alone: it settles the holds
-- of the copy it lends itself (fills the borrower's, releases another's).
--
-- Checkin routes a copy on a hold shelf that turns up at another branch back
-- to its pickup branch; a capture at a branch that was not the copy's
-- destination closes the transit it was on. Checkout, checkin, fill, capture
-- and placing a hold take their time after their row locks
-- (clock_timestamp()), not at the start of their transaction, so a loan never
-- begins before the previous loan of its copy ended, and a hold is never
-- filled before it was placed.
--
-- hold_invariants() and circ_invariants() check all of this in both
-- directions. At the end, this migration settles the rows the earlier
-- functions left inconsistent.
-- Lock order, unchanged: item, loan, patron_circ, bib, hold.

-- ---------------------------------------------------------------- times after locks

-- As in 006, with the loan's times taken after the locks on the copy, its
-- loan and the patron.
CREATE OR REPLACE FUNCTION circ_checkout(p_key uuid, p_staff bigint, p_workstation bigint,
                              p_branch integer, p_card text, p_barcode text,
                              p_override boolean, p_override_reason text,
                              p_may_override boolean)
RETURNS SETOF checkout_result
LANGUAGE plpgsql AS $$
DECLARE
    v_prev jsonb;
    v_patron patron;
    v_pc patron_circ;
    v_item item;
    v_open loan;
    v_rule circ_policy;
    v_type_out integer;
    v_reasons text[] := '{}';
    v_messages text[] := '{}';
    v_loan loan;
    v_title text;
    v_branch_name text;
    v_held record;
    v_cap integer;
    v_now timestamptz;
    r checkout_result;
BEGIN
    v_prev := request_claim(p_key, p_staff, 'checkout');
    IF v_prev IS NOT NULL THEN
        RETURN QUERY SELECT * FROM jsonb_populate_record(NULL::checkout_result, v_prev);
        RETURN;
    END IF;

    SELECT * INTO v_item FROM item WHERE barcode = p_barcode FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'item_not_found',
            MESSAGE = format('No item has barcode %s.', p_barcode);
    END IF;
    SELECT * INTO v_patron FROM patron WHERE id = patron_resolve(p_card, NULL);
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'patron_not_found',
            MESSAGE = format('No patron has card %s.', p_card);
    END IF;
    SELECT * INTO v_open FROM loan WHERE item_id = v_item.id AND returned_at IS NULL FOR UPDATE;
    IF FOUND AND v_open.patron_id = v_patron.id THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'already_checked_out',
            MESSAGE = format('%s is already checked out to this patron, due %s; renew it instead.',
                             p_barcode, circ_local_text(v_open.due_at));
    END IF;
    v_pc := patron_circ_lock(v_patron.id);
    -- The loan begins now, with the copy and the patron locked, not when this
    -- transaction began: a checkin that committed while we waited for the copy
    -- ended the previous loan later than that, and loans must not overlap.
    v_now := clock_timestamp();
    v_rule := circ_rule(v_patron.category, v_item.item_type, p_branch);

    -- Refusals, patron first; all of these may be overridden.
    IF v_patron.expires_on < library_today() THEN
        v_reasons := v_reasons || 'patron_expired'::text;
        v_messages := v_messages || format('The card expired on %s.', v_patron.expires_on);
    END IF;
    IF EXISTS (SELECT 1 FROM patron_block b WHERE b.patron_id = v_patron.id
                                               AND b.lifted_at IS NULL) THEN
        v_reasons := v_reasons || 'patron_blocked'::text;
        v_messages := v_messages || 'The patron is blocked: see the record for the reason.'::text;
    END IF;
    IF v_pc.balance_cents >= library_setting_text('block_threshold_cents')::bigint THEN
        v_reasons := v_reasons || 'patron_owes'::text;
        v_messages := v_messages || format('The patron owes $%s.',
                                           to_char(v_pc.balance_cents / 100.0, 'FM999990.00'));
    END IF;
    -- The overall cap comes from the rule that ignores item type: a DVD rule
    -- that says nothing about totals must not lift the patron's limit.
    v_cap := (circ_rule(v_patron.category, NULL, p_branch)).max_loans;
    IF v_cap IS NOT NULL AND v_pc.loans_out >= v_cap THEN
        v_reasons := v_reasons || 'loan_limit'::text;
        v_messages := v_messages || format('The patron has %s items out, the limit.',
                                           v_pc.loans_out);
    END IF;
    IF v_rule.max_loans_of_type IS NOT NULL THEN
        SELECT loans_out INTO v_type_out FROM patron_type_loans
        WHERE patron_id = v_patron.id AND item_type = v_item.item_type;
        IF coalesce(v_type_out, 0) >= v_rule.max_loans_of_type THEN
            v_reasons := v_reasons || 'item_type_limit'::text;
            v_messages := v_messages || format('The patron has %s items of type %s out, the limit.',
                                               coalesce(v_type_out, 0), v_item.item_type);
        END IF;
    END IF;
    IF NOT v_rule.circulates OR NOT (SELECT t.circulates FROM item_type t
                                     WHERE t.code = v_item.item_type) THEN
        v_reasons := v_reasons || 'item_not_circulating'::text;
        v_messages := v_messages || format('Items of type %s do not circulate.', v_item.item_type);
    END IF;
    SELECT * INTO v_held FROM circ_hold_check(v_item, v_patron);
    IF v_open.id IS NOT NULL THEN
        v_reasons := v_reasons || 'item_on_loan'::text;
        v_messages := v_messages || format('%s is checked out to another patron.', p_barcode);
    ELSIF v_held.reason IS NOT NULL THEN
        v_reasons := v_reasons || v_held.reason;
        v_messages := v_messages || v_held.message;
    ELSIF v_item.status = 'on_hold_shelf' THEN
        NULL; -- its hold is no more (expired, cancelled): it may go out
    ELSIF v_item.status = 'in_transit' THEN
        v_reasons := v_reasons || 'item_in_transit'::text;
        v_messages := v_messages || format('%s is in transit.', p_barcode);
    ELSIF v_item.status NOT IN ('available', 'checked_out') THEN
        v_reasons := v_reasons || 'item_status'::text;
        v_messages := v_messages || format('%s is marked %s.', p_barcode,
                                           replace(v_item.status::text, '_', ' '));
    END IF;

    IF cardinality(v_reasons) > 0 THEN
        IF NOT coalesce(p_override, false) THEN
            PERFORM circ_refuse(v_reasons[1],
                v_messages[1] || CASE WHEN cardinality(v_reasons) > 1
                                      THEN format(' (and %s more)', cardinality(v_reasons) - 1)
                                      ELSE '' END, true);
        END IF;
        IF NOT p_may_override THEN
            RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'override',
                MESSAGE = 'Only librarians and above may override a refusal.';
        END IF;
        IF coalesce(btrim(p_override_reason), '') = '' THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:override_reason',
                MESSAGE = 'An override needs a reason.';
        END IF;
        IF v_open.id IS NOT NULL THEN
            -- Overriding "on loan to another patron": that loan ends here first.
            PERFORM circ_end_loan(v_open, v_now, p_branch, 'returned_by_override');
            INSERT INTO circ_event (action, branch_id, item_id, item_type, patron_category,
                                    staff_id)
            VALUES ('checkin', p_branch, v_item.id, v_item.item_type, v_open.patron_category,
                    p_staff);
        END IF;
    END IF;

    INSERT INTO loan (item_id, patron_id, patron_category, item_type, checkout_at,
                      checkout_branch_id, checkout_staff_id, due_at, override_reason)
    VALUES (v_item.id, v_patron.id, v_patron.category, v_item.item_type, v_now, p_branch,
            p_staff, circ_due(p_branch, v_now, v_rule),
            CASE WHEN cardinality(v_reasons) > 0 THEN p_override_reason END)
    RETURNING * INTO v_loan;
    UPDATE item SET status = 'checked_out', current_branch_id = p_branch,
        last_circulated = v_now, circ_count = circ_count + 1, version = version + 1,
        updated_at = v_now
    WHERE id = v_item.id;
    UPDATE transit SET cancelled_at = v_now
    WHERE item_id = v_item.id AND received_at IS NULL AND cancelled_at IS NULL;
    UPDATE patron_circ SET loans_out = loans_out + 1 WHERE patron_id = v_patron.id
    RETURNING * INTO v_pc;
    INSERT INTO patron_type_loans (patron_id, item_type, loans_out)
    VALUES (v_patron.id, v_item.item_type, 1)
    ON CONFLICT (patron_id, item_type)
        DO UPDATE SET loans_out = patron_type_loans.loans_out + 1;
    INSERT INTO circ_event (action, branch_id, item_id, item_type, patron_category, staff_id)
    VALUES ('checkout', p_branch, v_item.id, v_item.item_type, v_patron.category, p_staff);
    IF cardinality(v_reasons) > 0 THEN
        INSERT INTO circ_event (action, branch_id, item_id, item_type, patron_category, staff_id)
        VALUES ('override', p_branch, v_item.id, v_item.item_type, v_patron.category, p_staff);
    END IF;

    r.filled_hold_id := circ_hold_after_checkout(v_item, v_patron, v_loan,
                                                 cardinality(v_reasons) > 0);
    SELECT b.title INTO v_title FROM bib b WHERE b.id = v_item.bib_id;
    SELECT b.name INTO v_branch_name FROM branch b WHERE b.id = p_branch;
    r.loan_id := v_loan.id;
    r.barcode := v_item.barcode;
    r.title := v_title;
    r.due_at := v_loan.due_at;
    r.due_date := library_local_date(v_loan.due_at);
    r.patron_name := patron_short_name(v_patron);
    r.overridden := v_reasons;
    r.loans_out := v_pc.loans_out;
    r.slip := format(E'%s — %s\n%s\n\n%s (card ending %s)\n\n%s\n  %s\n  Due: %s\n',
                     library_setting_text('library_name'), v_branch_name,
                     circ_local_text(v_now), r.patron_name, right(v_patron.card, 4),
                     left(v_title, 60), v_item.barcode, circ_local_text(v_loan.due_at));
    PERFORM request_store(p_key, to_jsonb(r));
    RETURN NEXT r;
END
$$;

-- As in 006, with the return time (when not given) taken after the locks on
-- the copy and its loan.
CREATE OR REPLACE FUNCTION circ_checkin(p_key uuid, p_staff bigint, p_workstation bigint,
                             p_branch integer, p_barcode text, p_returned_at timestamptz)
RETURNS SETOF checkin_result
LANGUAGE plpgsql AS $$
DECLARE
    v_prev jsonb;
    v_item item;
    v_loan loan;
    v_patron patron;
    v_rule circ_policy;
    v_when timestamptz := coalesce(p_returned_at, now());
    v_late integer;
    v_route record;
    v_refund bigint := 0;
    r checkin_result;
BEGIN
    v_prev := request_claim(p_key, p_staff, 'checkin');
    IF v_prev IS NOT NULL THEN
        RETURN QUERY SELECT * FROM jsonb_populate_record(NULL::checkin_result, v_prev);
        RETURN;
    END IF;
    IF v_when > now() + interval '1 minute' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:returned_at',
            MESSAGE = 'A return cannot be dated in the future.';
    END IF;
    SELECT * INTO v_item FROM item WHERE barcode = p_barcode FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'item_not_found',
            MESSAGE = format('No item has barcode %s.', p_barcode);
    END IF;
    SELECT b.title INTO r.title FROM bib b WHERE b.id = v_item.bib_id;
    r.barcode := v_item.barcode;
    r.previous_status := v_item.status::text;
    r.fine_cents := 0;
    SELECT * INTO v_loan FROM loan WHERE item_id = v_item.id AND returned_at IS NULL FOR UPDATE;
    r.was_on_loan := FOUND;
    -- Returned now, with the copy and its loan locked, not when this transaction
    -- began (it may have waited for another desk's change of the copy).
    v_when := coalesce(p_returned_at, clock_timestamp());
    IF r.was_on_loan THEN
        -- A return is never before its checkout.
        IF p_returned_at IS NULL THEN
            v_when := greatest(v_when, v_loan.checkout_at);
        END IF;
        IF v_when < v_loan.checkout_at THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:returned_at',
                MESSAGE = format('The item was checked out on %s, after that return date.',
                                 circ_local_text(v_loan.checkout_at));
        END IF;
        SELECT * INTO v_patron FROM patron WHERE id = v_loan.patron_id;
        r.patron_name := patron_short_name(v_patron);
        v_rule := circ_rule(v_loan.patron_category, v_loan.item_type, v_loan.checkout_branch_id);
        -- Fines, by the library's days, after the grace period, up to the maximum.
        v_late := library_local_date(v_when) - library_local_date(v_loan.due_at)
                  - v_rule.grace_days;
        IF v_late > 0 AND v_rule.fine_cents_per_day > 0 THEN
            r.fine_cents := v_late::bigint * v_rule.fine_cents_per_day;
            IF v_rule.fine_max_cents > 0 THEN
                r.fine_cents := least(r.fine_cents, v_rule.fine_max_cents);
            END IF;
            PERFORM circ_ledger_add(v_loan.patron_id, 'fine', r.fine_cents, v_item.id,
                                    v_loan.id, p_staff,
                                    format('%s days late', v_late + v_rule.grace_days));
        END IF;
        PERFORM circ_end_loan(v_loan, v_when, p_branch, 'returned');
        INSERT INTO circ_event (action, branch_id, item_id, item_type, patron_category, staff_id)
        VALUES ('checkin', p_branch, v_item.id, v_item.item_type, v_loan.patron_category,
                p_staff);
    ELSIF v_item.status IN ('checked_out', 'lost', 'missing', 'claimed_returned') THEN
        INSERT INTO circ_event (action, branch_id, item_id, item_type, staff_id)
        VALUES ('status_fixed', p_branch, v_item.id, v_item.item_type, p_staff);
        IF v_item.status = 'lost' THEN
            v_refund := circ_refund_lost(v_item, p_staff);
        END IF;
    ELSIF v_item.status IN ('withdrawn', 'damaged', 'in_processing') THEN
        -- Statuses staff set on purpose are not undone by a scan at the desk.
        r.route := 'keep';
        r.message := format('Marked %s: not returned to circulation; set aside for staff.',
                            replace(v_item.status::text, '_', ' '));
        PERFORM request_store(p_key, to_jsonb(r));
        RETURN NEXT r;
        RETURN;
    END IF;

    SELECT * INTO v_route FROM circ_checkin_route(v_item, p_branch, p_staff);
    r.route := v_route.route;
    r.hold_id := v_route.hold_id;
    SELECT b.code, b.name INTO r.destination_code, r.destination_name
    FROM branch b WHERE b.id = v_route.destination;
    r.message := CASE
        WHEN NOT r.was_on_loan AND r.previous_status IN ('checked_out', 'lost', 'missing',
                                                         'claimed_returned')
            THEN format('Was not on loan; status corrected from %s%s. ',
                        replace(r.previous_status, '_', ' '),
                        CASE WHEN v_refund > 0
                             THEN format(' (lost charge of $%s refunded)',
                                         to_char(v_refund / 100.0, 'FM999990.00'))
                             ELSE '' END)
        WHEN NOT r.was_on_loan AND r.previous_status NOT IN ('in_transit')
            THEN 'Was not checked out. '
        ELSE '' END
        || coalesce(v_route.message,
                    CASE WHEN r.route = 'transit' THEN 'ROUTE TO ' || r.destination_name
                         ELSE 'Return to shelf' END)
        || CASE WHEN r.fine_cents > 0
                THEN format(' (fine $%s)', to_char(r.fine_cents / 100.0, 'FM999990.00'))
                ELSE '' END;
    r.slip := v_route.slip;
    IF r.slip IS NULL AND r.route = 'transit' THEN
        r.slip := format(E'TRANSIT\n\nTo: %s (%s)\nFrom: %s\n%s\n\n%s\n  %s\n',
                         r.destination_name, r.destination_code,
                         (SELECT b.name FROM branch b WHERE b.id = p_branch),
                         circ_local_text(clock_timestamp()), left(r.title, 60), r.barcode);
    END IF;
    PERFORM request_store(p_key, to_jsonb(r));
    RETURN NEXT r;
END
$$;

-- ---------------------------------------------------------------- repair

-- What the earlier functions may have left behind: holds whose copy was
-- marked or edited away go back to waiting, and transits of copies that no
-- longer travel are closed.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT h.id, h.captured_item_id FROM hold h JOIN item i ON i.id = h.captured_item_id
             WHERE h.status IN ('ready', 'in_transit')
               AND (i.bib_id <> h.bib_id
                    OR (h.status = 'ready' AND i.status <> 'on_hold_shelf')
                    OR (h.status = 'in_transit' AND i.status <> 'in_transit'))
             ORDER BY h.bib_id, h.id
    LOOP
        PERFORM hold_release(r.id, r.captured_item_id);
    END LOOP;
    UPDATE transit t SET cancelled_at = now()
    FROM item i
    WHERE i.id = t.item_id AND t.received_at IS NULL AND t.cancelled_at IS NULL
      AND i.status <> 'in_transit';
END
$$;
