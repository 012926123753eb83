-- 009: a renewal that cannot move the due date is refused.
--
-- Renewing a loan on its checkout day (or twice on one day) computed the same
-- due date again, yet used up a renewal and answered "renewed". circ_renew
-- now refuses such a loan with reason 'renewal_no_change' and leaves its
-- renewal count alone. Everything else is as in 006.

-- Renew one loan (p_barcode) or all of a patron's loans. Each loan is
-- renewed or refused on its own; patron-level refusals (expired, blocked,
-- owes) refuse them all unless overridden; a loan whose due date a renewal
-- today would not move is refused (renewal_no_change) even with an override.
CREATE OR REPLACE FUNCTION circ_renew(p_key uuid, p_staff bigint, p_workstation bigint,
                           p_branch integer, p_card text, p_barcode text, p_override boolean,
                           p_override_reason text, p_may_override boolean)
RETURNS SETOF renew_result
LANGUAGE plpgsql AS $$
DECLARE
    v_prev jsonb;
    v_patron patron;
    v_pc patron_circ;
    v_patron_reason text;
    v_patron_message text;
    v_loan record;
    v_rule circ_policy;
    v_due timestamptz;
    v_results jsonb := '[]';
    v_found boolean := false;
    v_override boolean := coalesce(p_override, false);
    r renew_result;
BEGIN
    v_prev := request_claim(p_key, p_staff, 'renew');
    IF v_prev IS NOT NULL THEN
        RETURN QUERY SELECT * FROM jsonb_populate_recordset(NULL::renew_result, v_prev);
        RETURN;
    END IF;
    SELECT * INTO v_patron FROM patron WHERE id = patron_resolve(p_card, NULL);
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'patron_not_found',
            MESSAGE = format('No patron has card %s.', p_card);
    END IF;
    -- The daemon answers an override from a role without the right FORBIDDEN
    -- before it gets here (docs/PROTOCOL.md); this stays as a second guard.
    v_override := v_override AND p_may_override;
    IF v_override AND coalesce(btrim(p_override_reason), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:override_reason',
            MESSAGE = 'An override needs a reason.';
    END IF;
    SELECT * INTO v_pc FROM patron_circ WHERE patron_id = v_patron.id;
    IF v_patron.expires_on < library_today() THEN
        v_patron_reason := 'patron_expired';
        v_patron_message := format('The card expired on %s.', v_patron.expires_on);
    ELSIF EXISTS (SELECT 1 FROM patron_block b WHERE b.patron_id = v_patron.id
                                                 AND b.lifted_at IS NULL) THEN
        v_patron_reason := 'patron_blocked';
        v_patron_message := 'The patron is blocked: see the record for the reason.';
    ELSIF coalesce(v_pc.balance_cents, 0)
          >= library_setting_text('block_threshold_cents')::bigint THEN
        v_patron_reason := 'patron_owes';
        v_patron_message := format('The patron owes $%s.',
                                   to_char(v_pc.balance_cents / 100.0, 'FM999990.00'));
    END IF;

    FOR v_loan IN
        SELECT l.*, i.barcode, i.bib_id, b.title AS bib_title
        FROM loan l JOIN item i ON i.id = l.item_id JOIN bib b ON b.id = i.bib_id
        WHERE l.patron_id = v_patron.id AND l.returned_at IS NULL
          AND (p_barcode IS NULL OR i.barcode = p_barcode)
        ORDER BY l.due_at, l.id
        FOR UPDATE OF l
    LOOP
        v_found := true;
        r := NULL;
        r.barcode := v_loan.barcode;
        r.title := v_loan.bib_title;
        r.renewals := v_loan.renewals;
        r.due_at := v_loan.due_at;
        r.due_date := library_local_date(v_loan.due_at);
        v_rule := circ_rule(v_loan.patron_category, v_loan.item_type, v_loan.checkout_branch_id);
        v_due := circ_due(v_loan.checkout_branch_id, now(), v_rule);
        IF v_patron_reason IS NOT NULL AND NOT v_override THEN
            r.reason := v_patron_reason;
            r.message := v_patron_message;
        ELSIF v_loan.renewals >= v_rule.renewals AND NOT v_override THEN
            r.reason := 'renewal_limit';
            r.message := format('Renewed %s times already, the most allowed.', v_loan.renewals);
        ELSIF v_rule.hold_blocks_renewal AND NOT v_override
              AND circ_renewal_held(v_loan.bib_id, v_patron.id, v_loan.item_id) THEN
            r.reason := 'renewal_hold';
            r.message := 'Another patron is waiting for this title.';
        ELSIF v_due <= v_loan.due_at THEN
            -- A renewal today would not move the due date (renewed on the
            -- checkout day, or again the same day): refused, and no renewal
            -- is used up. Not overridable: there is nothing to override.
            r.reason := 'renewal_no_change';
            r.message := format('Already due %s; renewing today would not change that, so it '
                                'was not renewed (no renewal used).',
                                circ_local_text(v_loan.due_at));
        ELSE
            UPDATE loan SET due_at = v_due, renewals = renewals + 1,
                override_reason = CASE WHEN v_override THEN p_override_reason
                                       ELSE override_reason END
            WHERE id = v_loan.id;
            INSERT INTO circ_event (action, branch_id, item_id, item_type, patron_category,
                                    staff_id)
            VALUES ('renew', p_branch, v_loan.item_id, v_loan.item_type, v_loan.patron_category,
                    p_staff);
            r.renewed := true;
            r.renewals := v_loan.renewals + 1;
            r.due_at := v_due;
            r.due_date := library_local_date(v_due);
            r.message := 'Renewed; due ' || circ_local_text(v_due);
        END IF;
        r.renewed := coalesce(r.renewed, false);
        v_results := v_results || to_jsonb(r);
        RETURN NEXT r;
    END LOOP;
    IF NOT v_found AND p_barcode IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'not_on_loan',
            MESSAGE = format('%s is not checked out to this patron.', p_barcode);
    END IF;
    PERFORM request_store(p_key, v_results);
END
$$;
