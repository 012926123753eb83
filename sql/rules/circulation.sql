-- Circulation rules: checkout, checkin, renewal, item marks (lost, missing,
-- damaged, claims returned, ...), in-house use, the patron ledger, loan
-- policies (circ_rule, circ_due) and branch calendars. Called by
-- server/circ.c; circ_checkin also by server/holds.c (ItemNotFound's
-- checkin). Holds are settled at checkout and checkin by hold_capture.sql,
-- and a returned copy is routed by transits.sql.

-- The loan rule for a patron category, item type and branch: the most
-- specific matching circ_policy row; NULL when none matches. The hot helpers
-- here are PL/pgSQL rather than SQL (see library_setting_text, settings.sql):
-- their plans are kept for the session instead of made again at every call.
CREATE OR REPLACE FUNCTION circ_rule(p_category text, p_item_type text, p_branch integer)
RETURNS circ_policy
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v circ_policy;
BEGIN
    SELECT * INTO v FROM circ_policy c
    WHERE (c.patron_category IS NULL OR c.patron_category = p_category)
      AND (c.item_type IS NULL OR c.item_type = p_item_type)
      AND (c.branch_id IS NULL OR c.branch_id = p_branch)
    ORDER BY (c.branch_id IS NOT NULL)::int * 4 + (c.patron_category IS NOT NULL)::int * 2
             + (c.item_type IS NOT NULL)::int DESC
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION branch_is_open(p_branch integer, p_day date) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM branch_hours h
                   WHERE h.branch_id = p_branch AND h.weekday = extract(isodow FROM p_day))
       AND NOT EXISTS (SELECT 1 FROM branch_closed c WHERE c.branch_id = p_branch AND c.day = p_day);
END
$$;

-- When a loan made now at p_branch under p_rule falls due. Day loans are due
-- at the end of the due day, moved forward past days the branch is closed
-- (the checkout branch's calendar counts: the item is due back where it was
-- lent); hourly loans are due that many hours on.
CREATE OR REPLACE FUNCTION circ_due(p_branch integer, p_from timestamptz, p_rule circ_policy)
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_tz text := library_setting_text('timezone');
    v_day date;
BEGIN
    IF p_rule.loan_hours > 0 THEN
        RETURN p_from + make_interval(hours => p_rule.loan_hours);
    END IF;
    v_day := (p_from AT TIME ZONE v_tz)::date + p_rule.loan_days;
    FOR i IN 1..60 LOOP
        EXIT WHEN branch_is_open(p_branch, v_day);
        v_day := v_day + 1;
    END LOOP;
    RETURN (v_day + time '23:59:59') AT TIME ZONE v_tz;
END
$$;

-- Merging patrons: counters add up, the duplicate's rows go.
CREATE OR REPLACE FUNCTION patron_circ_merge(p_keep bigint, p_merge bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO patron_circ (patron_id) VALUES (p_keep) ON CONFLICT DO NOTHING;
    UPDATE patron_circ k SET loans_out = k.loans_out + m.loans_out,
                             balance_cents = k.balance_cents + m.balance_cents,
                             room_no_shows = k.room_no_shows + m.room_no_shows,
                             last_activity_on = greatest(k.last_activity_on, m.last_activity_on),
                             last_borrowed_on = greatest(k.last_borrowed_on, m.last_borrowed_on)
    FROM patron_circ m WHERE k.patron_id = p_keep AND m.patron_id = p_merge;
    DELETE FROM patron_circ WHERE patron_id = p_merge;
END
$$;

CREATE OR REPLACE FUNCTION patron_type_loans_merge(p_keep bigint, p_merge bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO patron_type_loans (patron_id, item_type, loans_out)
    SELECT p_keep, item_type, loans_out FROM patron_type_loans WHERE patron_id = p_merge
    ON CONFLICT (patron_id, item_type)
        DO UPDATE SET loans_out = patron_type_loans.loans_out + EXCLUDED.loans_out;
    DELETE FROM patron_type_loans WHERE patron_id = p_merge;
END
$$;

-- patron_merge calls these for their tables' rows (patron_merge_handler,
-- migrations/005_patrons.sql). A registration, not data: kept with its rule.
INSERT INTO patron_merge_handler (table_name, handler) VALUES
    ('patron_circ', 'patron_circ_merge'),
    ('patron_type_loans', 'patron_type_loans_merge')
ON CONFLICT (table_name) DO UPDATE SET handler = EXCLUDED.handler;

-- The patron_circ row, created on first use, locked.
CREATE OR REPLACE FUNCTION patron_circ_lock(p_patron bigint) RETURNS patron_circ
LANGUAGE plpgsql AS $$
DECLARE
    v patron_circ;
BEGIN
    SELECT * INTO v FROM patron_circ WHERE patron_id = p_patron FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO patron_circ (patron_id) VALUES (p_patron) ON CONFLICT DO NOTHING;
        SELECT * INTO v FROM patron_circ WHERE patron_id = p_patron FOR UPDATE;
    END IF;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION circ_local_text(p_at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT circ_local_text_in(p_at, library_setting_text('timezone'))
$$;

-- circ_local_text in a time zone the caller read once (as local_text_in,
-- localtime.sql). STABLE as to_char is, so that it is inlined.
CREATE OR REPLACE FUNCTION circ_local_text_in(p_at timestamptz, p_tz text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE p_tz, 'Dy Mon DD YYYY')
$$;

-- End an open loan (returned, lost, claims returned): counters, privacy.
-- p_keep: the patron's keep_history, when the caller has read the patron
-- already (NULL: read here). Returns true (an expression for the checkin:
-- request_finish, requests.sql).
DROP FUNCTION IF EXISTS circ_end_loan(loan, timestamptz, integer, text);
DROP FUNCTION IF EXISTS circ_end_loan(loan, timestamptz, integer, text, boolean);
CREATE OR REPLACE FUNCTION circ_end_loan(p_loan loan, p_when timestamptz, p_branch integer,
                              p_outcome text, p_keep boolean DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_keep boolean := p_keep;
BEGIN
    IF v_keep IS NULL THEN
        SELECT keep_history INTO v_keep FROM patron WHERE id = p_loan.patron_id;
    END IF;
    -- greatest(): a transaction's now() can precede a checkout it waited for.
    UPDATE loan SET returned_at = greatest(p_when, p_loan.checkout_at),
        return_branch_id = p_branch, outcome = p_outcome,
        -- Privacy: the link to the patron goes unless they chose to keep it.
        patron_id = CASE WHEN v_keep THEN patron_id END
    WHERE id = p_loan.id;
    -- The update locks the patron_circ row; only a patron without one yet
    -- needs patron_circ_lock (which makes it).
    UPDATE patron_circ SET loans_out = loans_out - 1 WHERE patron_id = p_loan.patron_id;
    IF NOT FOUND THEN
        PERFORM patron_circ_lock(p_loan.patron_id);
        UPDATE patron_circ SET loans_out = loans_out - 1 WHERE patron_id = p_loan.patron_id;
    END IF;
    UPDATE patron_type_loans SET loans_out = loans_out - 1
    WHERE patron_id = p_loan.patron_id AND item_type = p_loan.item_type;
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION circ_ledger_add(p_patron bigint, p_kind text, p_amount bigint, p_item bigint,
                                p_loan bigint, p_staff bigint, p_note text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO patron_ledger (patron_id, kind, amount_cents, item_id, loan_id, staff_id, note)
    VALUES (p_patron, p_kind, p_amount, p_item, p_loan, p_staff, coalesce(p_note, ''));
    PERFORM patron_circ_lock(p_patron);
    UPDATE patron_circ SET balance_cents = balance_cents + p_amount WHERE patron_id = p_patron;
END
$$;

-- A lost item is back: its lost charge, if not yet refunded, is refunded.
CREATE OR REPLACE FUNCTION circ_refund_lost(p_item item, p_staff bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_charge record;
BEGIN
    SELECT l.* INTO v_charge FROM patron_ledger l
    WHERE l.item_id = p_item.id AND l.kind = 'lost_charge'
      AND NOT EXISTS (SELECT 1 FROM patron_ledger x WHERE x.kind = 'lost_refund'
                                                     AND x.loan_id = l.loan_id)
    ORDER BY l.at DESC LIMIT 1;
    IF v_charge.id IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM circ_ledger_add(v_charge.patron_id, 'lost_refund', -v_charge.amount_cents,
                            p_item.id, v_charge.loan_id, p_staff, 'item found');
    RETURN v_charge.amount_cents;
END
$$;

-- A patron's standing at the desk, defined once: the card has expired
-- (before the library's today), a block is active, what the patron owes
-- (balance_cents) and whether that is too much (owes: at least the library
-- setting block_threshold_cents), and the loans out. Checkout and renewal
-- refuse on expired, blocked and owes, placing a hold on expired and
-- blocked; AccountGet shows them (server/circ.c). Reads one patron's rows:
-- as cheap for a patron with 500 loans as for one with none. NULLs for an
-- unknown patron.
CREATE OR REPLACE FUNCTION patron_standing(p_patron bigint, OUT expired boolean,
                                           OUT blocked boolean, OUT balance_cents bigint,
                                           OUT owes boolean, OUT block_threshold_cents bigint,
                                           OUT loans_out integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_cents bigint;
    v_today date;
BEGIN
    -- The two settings in one read: the threshold, and the time zone for
    -- library_today() (settings.sql).
    SELECT (now() AT TIME ZONE max(s.value) FILTER (WHERE s.name = 'timezone'))::date,
           (max(s.value) FILTER (WHERE s.name = 'block_threshold_cents'))::bigint
    INTO v_today, v_cents
    FROM library_setting s WHERE s.name IN ('timezone', 'block_threshold_cents');
    SELECT p.expires_on < v_today,
           EXISTS (SELECT 1 FROM patron_block b WHERE b.patron_id = p.id AND b.lifted_at IS NULL),
           coalesce(pc.balance_cents, 0),
           coalesce(pc.balance_cents, 0) >= v_cents,
           v_cents,
           coalesce(pc.loans_out, 0)
    INTO expired, blocked, balance_cents, owes, block_threshold_cents, loans_out
    FROM patron p
    LEFT JOIN patron_circ pc ON pc.patron_id = p.id
    WHERE p.id = p_patron;
END
$$;

-- The refusals the patron's standing makes (expired, blocked, owes), in
-- the order the desk gives them: reasons and their sentences, empty when
-- none. For circ_checkout_refusals and circ_renew_refusals.
CREATE OR REPLACE FUNCTION circ_standing_refusals(p_patron patron, OUT reasons text[],
                                                  OUT messages text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_standing record := patron_standing(p_patron.id);
BEGIN
    reasons := '{}';
    messages := '{}';
    IF v_standing.expired THEN
        reasons := reasons || 'patron_expired'::text;
        messages := messages || format('The card expired on %s.', p_patron.expires_on);
    END IF;
    IF v_standing.blocked THEN
        reasons := reasons || 'patron_blocked'::text;
        messages := messages || 'The patron is blocked: see the record for the reason.'::text;
    END IF;
    IF v_standing.owes THEN
        reasons := reasons || 'patron_owes'::text;
        messages := messages || format('The patron owes $%s.',
                                       to_char(v_standing.balance_cents / 100.0, 'FM999990.00'));
    END IF;
END
$$;

-- Why a checkout of p_item to p_patron (p_pc locked, p_open the copy's open
-- loan or NULL, p_rule its loan rule at p_branch) goes against the library's
-- rules, patron first: reasons and their sentences, empty when none. Defined
-- once, for circ_checkout (which refuses unless overridden) and
-- offline_replay (offline.sql: a copy lent offline has left the building, so
-- these become warnings).
CREATE OR REPLACE FUNCTION circ_checkout_refusals(p_patron patron, p_pc patron_circ, p_item item,
                                                  p_open loan, p_rule circ_policy,
                                                  p_branch integer, OUT reasons text[],
                                                  OUT messages text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_standing record;
    v_type_out integer;
    v_reasons text[] := '{}';
    v_messages text[] := '{}';
    v_held record;
    v_cap integer;
BEGIN
    -- Functions of one row are called as expressions, not as SELECT * FROM f():
    -- no executor, function scan and tuple store for each call.
    v_standing := circ_standing_refusals(p_patron);
    v_reasons := v_standing.reasons;
    v_messages := v_standing.messages;
    -- The overall cap comes from the rule that ignores item type: a DVD rule
    -- that says nothing about totals must not lift the patron's limit.
    v_cap := (circ_rule(p_patron.category, NULL, p_branch)).max_loans;
    IF v_cap IS NOT NULL AND p_pc.loans_out >= v_cap THEN
        v_reasons := v_reasons || 'loan_limit'::text;
        v_messages := v_messages || format('The patron has %s items out, the limit.',
                                           p_pc.loans_out);
    END IF;
    IF p_rule.max_loans_of_type IS NOT NULL THEN
        SELECT loans_out INTO v_type_out FROM patron_type_loans
        WHERE patron_id = p_patron.id AND item_type = p_item.item_type;
        IF coalesce(v_type_out, 0) >= p_rule.max_loans_of_type THEN
            v_reasons := v_reasons || 'item_type_limit'::text;
            v_messages := v_messages || format('The patron has %s items of type %s out, the limit.',
                                               coalesce(v_type_out, 0), p_item.item_type);
        END IF;
    END IF;
    IF NOT p_rule.circulates OR NOT (SELECT t.circulates FROM item_type t
                                     WHERE t.code = p_item.item_type) THEN
        v_reasons := v_reasons || 'item_not_circulating'::text;
        v_messages := v_messages || format('Items of type %s do not circulate.', p_item.item_type);
    END IF;
    v_held := circ_hold_check(p_item, p_patron);
    IF p_open.id IS NOT NULL THEN
        v_reasons := v_reasons || 'item_on_loan'::text;
        v_messages := v_messages || format('%s is checked out to another patron.', p_item.barcode);
    ELSIF v_held.reason IS NOT NULL THEN
        v_reasons := v_reasons || v_held.reason;
        v_messages := v_messages || v_held.message;
    ELSIF p_item.status = 'on_hold_shelf' THEN
        NULL; -- its hold is no more (expired, cancelled): it may go out
    ELSIF p_item.status = 'in_transit' THEN
        v_reasons := v_reasons || 'item_in_transit'::text;
        v_messages := v_messages || format('%s is in transit.', p_item.barcode);
    ELSIF p_item.status NOT IN ('available', 'checked_out') THEN
        v_reasons := v_reasons || 'item_status'::text;
        v_messages := v_messages || format('%s is marked %s.', p_item.barcode,
                                           replace(p_item.status::text, '_', ' '));
    END IF;
    reasons := v_reasons;
    messages := v_messages;
END
$$;

-- The loan of p_item (locked, its open loan ended) to p_patron (patron_circ
-- locked) as of p_at at p_branch by p_staff, due p_due, with p_note as its
-- override reason (NULL: none): the loan row, the copy checked out (its
-- status stamped p_at, so that an offline journal's next entry does not find
-- it changed after), its open transit cancelled, the patron's counters and
-- activity dates, and the checkout counted in the statistics at p_at. Defined
-- once, for circ_checkout and offline_checkout (offline.sql); each then fills
-- or releases holds (circ_hold_after_checkout).
CREATE OR REPLACE FUNCTION circ_make_loan(p_item item, p_patron patron, p_at timestamptz,
                                          p_branch integer, p_staff bigint, p_due timestamptz,
                                          p_note text) RETURNS loan
LANGUAGE plpgsql AS $$
DECLARE
    v_loan loan;
    v_day date;
BEGIN
    INSERT INTO loan (item_id, patron_id, patron_category, item_type, checkout_at,
                      checkout_branch_id, checkout_staff_id, due_at, override_reason)
    VALUES (p_item.id, p_patron.id, p_patron.category, p_item.item_type, p_at, p_branch,
            p_staff, p_due, p_note)
    RETURNING * INTO v_loan;
    UPDATE item SET status = 'checked_out', status_changed_at = p_at,
        current_branch_id = p_branch, last_circulated = p_at,
        last_used_at = greatest(last_used_at, p_at), circ_count = circ_count + 1,
        version = version + 1, updated_at = clock_timestamp()
    WHERE id = p_item.id;
    -- Only a copy in transit has an open transit (hold_invariants).
    IF p_item.status = 'in_transit' THEN
        UPDATE transit SET cancelled_at = clock_timestamp()
        WHERE item_id = p_item.id AND received_at IS NULL AND cancelled_at IS NULL;
    END IF;
    -- The activity dates (statistics) ride on the write the count needs anyway.
    v_day := library_local_date(p_at);
    UPDATE patron_circ SET loans_out = loans_out + 1,
        last_activity_on = greatest(last_activity_on, v_day),
        last_borrowed_on = greatest(last_borrowed_on, v_day)
    WHERE patron_id = p_patron.id;
    INSERT INTO patron_type_loans (patron_id, item_type, loans_out)
    VALUES (p_patron.id, p_item.item_type, 1)
    ON CONFLICT (patron_id, item_type)
        DO UPDATE SET loans_out = patron_type_loans.loans_out + 1;
    -- Statistics at the time of the loan: the day and hour it happened.
    INSERT INTO circ_event (at, action, branch_id, item_id, item_type, patron_category,
                            staff_id, location)
    VALUES (p_at, 'checkout', p_branch, p_item.id, p_item.item_type, p_patron.category, p_staff,
            p_item.location);
    RETURN v_loan;
END
$$;

-- Check out p_barcode to p_card: every refusal a library rule makes (the
-- overridable ones only when p_override and p_may_override), the loan with
-- its due date, counters, the hold it fills, and the slip. The loan's times
-- are taken after the locks on the copy, its loan and the patron.
CREATE OR REPLACE FUNCTION circ_checkout(p_key uuid, p_staff bigint, p_workstation bigint,
                              p_branch integer, p_card text, p_barcode text,
                              p_override boolean, p_override_reason text,
                              p_may_override boolean)
RETURNS SETOF checkout_result
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    v_patron patron;
    v_pc patron_circ;
    v_item item;
    v_open loan;
    v_rule circ_policy;
    v_refusals record;
    v_reasons text[];
    v_messages text[];
    v_loan loan;
    v_title text;
    v_branch_name text;
    v_now timestamptz;
    v_tz text;
    v_done boolean;
    r checkout_result;
BEGIN
    v_key := request_begin(p_key, p_staff, 'checkout', p_barcode);
    IF v_key.stored IS NOT NULL THEN
        RETURN QUERY SELECT * FROM jsonb_populate_record(NULL::checkout_result, v_key.stored);
        RETURN;
    END IF;
    v_item := v_key.item_row;
    -- A patron's own current card, in one statement; any other card (an old
    -- one, a merged record's) through patron_resolve.
    SELECT * INTO v_patron FROM patron WHERE card = p_card AND merged_into IS NULL;
    IF NOT FOUND THEN
        SELECT * INTO v_patron FROM patron WHERE id = patron_resolve(p_card, NULL);
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'patron_not_found',
                MESSAGE = format('No patron has card %s.', p_card);
        END IF;
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
    v_refusals := circ_checkout_refusals(v_patron, v_pc, v_item, v_open, v_rule, p_branch);
    v_reasons := v_refusals.reasons;
    v_messages := v_refusals.messages;

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
                                    staff_id, location)
            VALUES ('checkin', p_branch, v_item.id, v_item.item_type, v_open.patron_category,
                    p_staff, v_item.location);
        END IF;
    END IF;

    v_loan := circ_make_loan(v_item, v_patron, v_now, p_branch, p_staff,
                             circ_due(p_branch, v_now, v_rule),
                             CASE WHEN cardinality(v_reasons) > 0 THEN p_override_reason END);
    IF cardinality(v_reasons) > 0 THEN
        INSERT INTO circ_event (action, branch_id, item_id, item_type, patron_category, staff_id,
                                location)
        VALUES ('override', p_branch, v_item.id, v_item.item_type, v_patron.category, p_staff,
                v_item.location);
    END IF;

    r.filled_hold_id := circ_hold_after_checkout(v_item, v_patron, v_loan,
                                                 cardinality(v_reasons) > 0);
    SELECT (SELECT b.title FROM bib b WHERE b.id = v_item.bib_id),
           (SELECT b.name FROM branch b WHERE b.id = p_branch)
    INTO v_title, v_branch_name;
    -- The time zone read once for the due date and the slip's two times
    -- (library_local_date, circ_local_text).
    v_tz := library_setting_text('timezone');
    r.loan_id := v_loan.id;
    r.barcode := v_item.barcode;
    r.title := v_title;
    r.due_at := v_loan.due_at;
    r.due_date := (v_loan.due_at AT TIME ZONE v_tz)::date;
    r.patron_name := patron_short_name(v_patron);
    r.overridden := v_reasons;
    -- The patron's count, locked since patron_circ_lock, went up by this loan
    -- (an overridden loan that ended was another patron's).
    r.loans_out := v_pc.loans_out + 1;
    r.slip := format(E'%s — %s\n%s\n\n%s (card ending %s)\n\n%s\n  %s\n  Due: %s\n',
                     library_setting_text('library_name'), v_branch_name,
                     circ_local_text_in(v_now, v_tz), r.patron_name, right(v_patron.card, 4),
                     left(v_title, 60), v_item.barcode, circ_local_text_in(v_loan.due_at, v_tz));
    v_done := request_finish(p_key, p_staff, 'checkout', to_jsonb(r));
    RETURN NEXT r;
END
$$;

-- The fine for p_loan returned at p_when, by the library's days, after the
-- grace period, up to the maximum, posted to the patron's ledger; 0 when
-- none. For circ_checkin and offline_replay (offline.sql), which end a loan
-- as of the time the copy came back.
CREATE OR REPLACE FUNCTION circ_loan_fine(p_loan loan, p_item bigint, p_when timestamptz,
                                          p_staff bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_rule circ_policy := circ_rule(p_loan.patron_category, p_loan.item_type,
                                    p_loan.checkout_branch_id);
    v_late integer;
    v_fine bigint;
BEGIN
    -- No fine by this rule: the local dates (the time zone, read twice) are not needed.
    IF v_rule.fine_cents_per_day <= 0 THEN
        RETURN 0;
    END IF;
    v_late := library_local_date(p_when) - library_local_date(p_loan.due_at) - v_rule.grace_days;
    IF v_late <= 0 OR v_rule.fine_cents_per_day <= 0 THEN
        RETURN 0;
    END IF;
    v_fine := v_late::bigint * v_rule.fine_cents_per_day;
    IF v_rule.fine_max_cents > 0 THEN
        v_fine := least(v_fine, v_rule.fine_max_cents);
    END IF;
    PERFORM circ_ledger_add(p_loan.patron_id, 'fine', v_fine, p_item, p_loan.id, p_staff,
                            format('%s days late', v_late + v_rule.grace_days));
    RETURN v_fine;
END
$$;

-- Check in p_barcode at p_branch: closes its loan (fine, counters), then
-- routes the copy (circ_checkin_route, transits.sql: a hold, the hold shelf,
-- a transit home, or the shelf; a copy for the shelf that is on a display
-- running here goes back on it: route display). The return time (when not given) is taken
-- after the locks on the copy and its loan.
CREATE OR REPLACE FUNCTION circ_checkin(p_key uuid, p_staff bigint, p_workstation bigint,
                             p_branch integer, p_barcode text, p_returned_at timestamptz)
RETURNS SETOF checkin_result
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    v_item item;
    v_loan loan;
    v_patron patron;
    v_when timestamptz := coalesce(p_returned_at, now());
    v_route record;
    v_message text;
    v_refund bigint := 0;
    v_done boolean;
    r checkin_result;
BEGIN
    IF v_when > now() + interval '1 minute' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:returned_at',
            MESSAGE = 'A return cannot be dated in the future.';
    END IF;
    v_key := request_begin(p_key, p_staff, 'checkin', p_barcode);
    IF v_key.stored IS NOT NULL THEN
        RETURN QUERY SELECT * FROM jsonb_populate_record(NULL::checkin_result, v_key.stored);
        RETURN;
    END IF;
    v_item := v_key.item_row;
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
        r.fine_cents := circ_loan_fine(v_loan, v_item.id, v_when, p_staff);
        v_done := circ_end_loan(v_loan, v_when, p_branch, 'returned', v_patron.keep_history);
        INSERT INTO circ_event (action, branch_id, item_id, item_type, patron_category, staff_id,
                                location)
        VALUES ('checkin', p_branch, v_item.id, v_item.item_type, v_loan.patron_category,
                p_staff, v_item.location);
    ELSIF v_item.status IN ('checked_out', 'lost', 'missing', 'claimed_returned') THEN
        INSERT INTO circ_event (action, branch_id, item_id, item_type, staff_id, location)
        VALUES ('status_fixed', p_branch, v_item.id, v_item.item_type, p_staff,
                v_item.location);
        IF v_item.status = 'lost' THEN
            v_refund := circ_refund_lost(v_item, p_staff);
        END IF;
    ELSIF v_item.status IN ('withdrawn', 'damaged', 'in_processing') THEN
        -- Statuses staff set on purpose are not undone by a scan at the desk.
        r.route := 'keep';
        SELECT b.title INTO r.title FROM bib b WHERE b.id = v_item.bib_id;
        r.message := format('Marked %s: not returned to circulation; set aside for staff.',
                            replace(v_item.status::text, '_', ' '));
        PERFORM request_finish(p_key, p_staff, 'checkin', to_jsonb(r));
        RETURN NEXT r;
        RETURN;
    END IF;

    v_route := circ_checkin_route(v_item, p_branch, p_staff);
    r.route := v_route.route;
    r.hold_id := v_route.hold_id;
    v_message := v_route.message;
    -- Going to the shelf here (no hold took it): back on the display running
    -- here that it is on, if any. One probe of display_item_open, only on
    -- this path (displays.sql).
    IF r.route = 'shelf' AND v_route.destination = p_branch THEN
        r.display := display_checkin_text(v_item.id, p_branch);
        IF r.display IS NOT NULL THEN
            r.route := 'display';
            v_message := 'Put back on the display: ' || r.display;
        END IF;
    END IF;
    -- The title with the destination, one statement.
    SELECT b.code, b.name, (SELECT t.title FROM bib t WHERE t.id = v_item.bib_id)
    INTO r.destination_code, r.destination_name, r.title
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
        || coalesce(v_message,
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
    v_done := request_finish(p_key, p_staff, 'checkin', to_jsonb(r));
    RETURN NEXT r;
END
$$;

-- Why a renewal of a loan of p_patron (p_renewals renewals so far, of copy
-- p_item of title p_bib, under p_rule) goes against the library's rules, in
-- the order the desk refuses by: the patron's standing (expired, blocked,
-- owes), the renewal limit, another patron waiting for the title. Reasons and
-- their sentences, empty when none; only the first when p_first_only (the
-- hold is then not looked for when there is one already). Defined once, for
-- circ_renew (which refuses by the first unless overridden) and
-- offline_renew (offline.sql: the patron was told the new date, so these are
-- warnings).
CREATE OR REPLACE FUNCTION circ_renew_refusals(p_patron patron, p_rule circ_policy,
                                               p_renewals integer, p_item bigint, p_bib bigint,
                                               p_first_only boolean, OUT reasons text[],
                                               OUT messages text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_standing record;
BEGIN
    v_standing := circ_standing_refusals(p_patron);
    reasons := v_standing.reasons;
    messages := v_standing.messages;
    IF p_first_only AND cardinality(reasons) > 0 THEN
        reasons := reasons[1:1];
        messages := messages[1:1];
        RETURN;
    END IF;
    IF p_renewals >= p_rule.renewals THEN
        reasons := reasons || 'renewal_limit'::text;
        messages := messages || format('Renewed %s times already, the most allowed.', p_renewals);
        IF p_first_only THEN
            RETURN;
        END IF;
    END IF;
    IF p_rule.hold_blocks_renewal AND circ_renewal_held(p_bib, p_patron.id, p_item) THEN
        reasons := reasons || 'renewal_hold'::text;
        messages := messages || 'Another patron is waiting for this title.'::text;
    END IF;
END
$$;

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
    v_key record;
    v_patron patron;
    v_reasons text[];
    v_messages text[];
    v_loan record;
    v_rule circ_policy;
    v_due timestamptz;
    v_results jsonb := '[]';
    v_found boolean := false;
    v_override boolean := coalesce(p_override, false);
    r renew_result;
BEGIN
    SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'renew');
    IF v_key.stored IS NOT NULL THEN
        RETURN QUERY SELECT * FROM jsonb_populate_recordset(NULL::renew_result, v_key.stored);
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

    FOR v_loan IN
        SELECT l.*, i.barcode, i.bib_id, i.location, b.title AS bib_title
        FROM loan l JOIN item i ON i.id = l.item_id JOIN bib b ON b.id = i.bib_id
        WHERE l.patron_id = v_patron.id AND l.returned_at IS NULL
          AND (p_barcode IS NULL OR i.barcode = p_barcode)
        ORDER BY l.due_at, l.id
        -- The copy first, as every change of a copy locks it (checkin: item,
        -- then loan): a renewal writes the copy's last use.
        FOR NO KEY UPDATE OF i FOR UPDATE OF l
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
        v_reasons := '{}';
        IF NOT v_override THEN
            SELECT f.reasons, f.messages INTO v_reasons, v_messages
            FROM circ_renew_refusals(v_patron, v_rule, v_loan.renewals, v_loan.item_id,
                                     v_loan.bib_id, true) f;
        END IF;
        IF cardinality(v_reasons) > 0 THEN
            r.reason := v_reasons[1];
            r.message := v_messages[1];
        ELSIF v_due <= v_loan.due_at THEN
            -- A renewal today would not move the due date (renewed on the
            -- checkout day, or again the same day): refused, and no renewal
            -- is used up. Not overridable: there is nothing to override.
            r.reason := 'renewal_no_change';
            r.message := format('Already due %s; renewing today would not change that, so it '
                                'was not renewed (no renewal used).',
                                circ_local_text(v_loan.due_at));
        ELSE
            -- The copy's last use (weeding) rides on the loan's update: one
            -- statement, as before.
            WITH l AS (
                UPDATE loan SET due_at = v_due, renewals = renewals + 1,
                    override_reason = CASE WHEN v_override THEN p_override_reason
                                           ELSE override_reason END
                WHERE id = v_loan.id
                RETURNING item_id)
            UPDATE item SET last_used_at = now() FROM l WHERE item.id = l.item_id;
            INSERT INTO circ_event (action, branch_id, item_id, item_type, patron_category,
                                    staff_id, location)
            VALUES ('renew', p_branch, v_loan.item_id, v_loan.item_type, v_loan.patron_category,
                    p_staff, v_loan.location);
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
    IF v_results @> '[{"renewed": true}]' THEN
        PERFORM patron_activity_touch(v_patron.id, true);
    END IF;
    PERFORM request_store(p_key, v_results);
END
$$;

CREATE OR REPLACE FUNCTION circ_item_mark(p_key uuid, p_staff bigint, p_workstation bigint,
                               p_branch integer, p_barcode text, p_mark text, p_note text)
RETURNS SETOF item_mark_result
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    v_item item;
    v_loan loan;
    v_rule circ_policy;
    v_charge record;
    v_route record;
    r item_mark_result;
BEGIN
    IF p_mark IS NULL OR p_mark NOT IN ('lost', 'claims_returned', 'damaged', 'missing', 'found')
    THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:mark',
            MESSAGE = 'Mark an item lost, claims_returned, damaged, missing or found.';
    END IF;
    SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'item_mark', p_barcode);
    IF v_key.stored IS NOT NULL THEN
        RETURN QUERY SELECT * FROM jsonb_populate_record(NULL::item_mark_result, v_key.stored);
        RETURN;
    END IF;
    v_item := v_key.item_row;
    SELECT * INTO v_loan FROM loan WHERE item_id = v_item.id AND returned_at IS NULL FOR UPDATE;
    r.barcode := v_item.barcode;
    r.charged_cents := 0;
    IF p_mark = 'lost' THEN
        IF v_loan.id IS NOT NULL THEN
            v_rule := circ_rule(v_loan.patron_category, v_loan.item_type,
                                v_loan.checkout_branch_id);
            IF v_rule.charge_lost AND v_item.price_cents > 0 THEN
                r.charged_cents := v_item.price_cents;
                PERFORM circ_ledger_add(v_loan.patron_id, 'lost_charge', v_item.price_cents,
                                        v_item.id, v_loan.id, p_staff, p_note);
            END IF;
            PERFORM circ_end_loan(v_loan, now(), p_branch, 'lost');
        END IF;
        UPDATE item SET status = 'lost', version = version + 1, updated_at = now()
        WHERE id = v_item.id;
        r.message := CASE WHEN r.charged_cents > 0
                          THEN format('Marked lost; $%s charged to the patron.',
                                      to_char(r.charged_cents / 100.0, 'FM999990.00'))
                          ELSE 'Marked lost.' END;
    ELSIF p_mark = 'claims_returned' THEN
        IF v_loan.id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'not_on_loan',
                MESSAGE = format('%s is not checked out.', p_barcode);
        END IF;
        PERFORM circ_end_loan(v_loan, now(), p_branch, 'claimed_returned');
        UPDATE item SET status = 'claimed_returned', version = version + 1, updated_at = now()
        WHERE id = v_item.id;
        r.message := 'The patron says it was returned; the loan is closed, the item flagged.';
    ELSIF p_mark IN ('damaged', 'missing') THEN
        IF v_loan.id IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'on_loan',
                MESSAGE = format('%s is checked out; check it in first.', p_barcode);
        END IF;
        UPDATE item SET status = p_mark::item_status, version = version + 1, updated_at = now()
        WHERE id = v_item.id;
        r.message := 'Marked ' || p_mark || '.';
    ELSE -- found
        IF v_item.status NOT IN ('lost', 'missing', 'claimed_returned', 'damaged') THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'not_missing',
                MESSAGE = format('%s is %s, not lost or missing.', p_barcode,
                                 replace(v_item.status::text, '_', ' '));
        END IF;
        IF v_loan.id IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'on_loan',
                MESSAGE = format('%s is checked out; check it in instead.', p_barcode);
        END IF;
        IF v_item.status = 'lost' THEN
            r.charged_cents := -circ_refund_lost(v_item, p_staff);
        END IF;
        SELECT * INTO v_route FROM circ_route(v_item, p_branch, p_staff);
        r.message := 'Found. ' || CASE WHEN v_route.route = 'transit'
                                       THEN 'ROUTE TO ' || (SELECT b.name FROM branch b
                                                            WHERE b.id = v_route.destination)
                                       ELSE 'Return to shelf.' END;
    END IF;
    INSERT INTO circ_event (action, branch_id, item_id, item_type, patron_category, staff_id,
                            location)
    VALUES (p_mark, p_branch, v_item.id, v_item.item_type, v_loan.patron_category, p_staff,
            v_item.location);
    PERFORM request_finish(p_key, p_staff, 'item_mark', to_jsonb(r));
    RETURN NEXT r;
END
$$;

CREATE OR REPLACE FUNCTION circ_in_house_use(p_key uuid, p_staff bigint, p_branch integer,
                                  p_barcode text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    v_item item;
BEGIN
    SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'in_house_use', p_barcode);
    IF v_key.stored IS NOT NULL THEN
        RETURN (v_key.stored ->> 'item_id')::bigint;
    END IF;
    UPDATE item SET in_house_uses = in_house_uses + 1, last_used_at = now()
    WHERE id = (v_key.item_row).id
    RETURNING * INTO v_item;
    INSERT INTO circ_event (action, branch_id, item_id, item_type, staff_id, location)
    VALUES ('in_house_use', p_branch, v_item.id, v_item.item_type, p_staff, v_item.location);
    PERFORM request_finish(p_key, p_staff, 'in_house_use', jsonb_build_object('item_id', v_item.id));
    RETURN v_item.id;
END
$$;

CREATE OR REPLACE FUNCTION circ_ledger_entry(p_id bigint)
RETURNS TABLE (id bigint, at text, kind text, amount_cents bigint, barcode text, note text,
               staff text)
LANGUAGE sql STABLE AS $$
    SELECT x.id, api_time(x.at), x.kind, x.amount_cents, coalesce(i.barcode, ''), x.note,
           coalesce(s.username, '')
    FROM patron_ledger x LEFT JOIN item i ON i.id = x.item_id
    LEFT JOIN staff s ON s.id = x.staff_id
    WHERE x.id = p_id
$$;

CREATE OR REPLACE FUNCTION circ_ledger_post(p_key uuid, p_staff bigint, p_card text, p_kind text,
                                 p_amount bigint, p_note text, p_may_adjust boolean)
RETURNS TABLE (id bigint, at text, kind text, amount_cents bigint, barcode text, note text,
               staff text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_key record;
    v_patron bigint;
    v_id bigint;
BEGIN
    SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'ledger_post');
    IF v_key.stored IS NOT NULL THEN
        RETURN QUERY SELECT * FROM circ_ledger_entry((v_key.stored ->> 'id')::bigint);
        RETURN;
    END IF;
    IF p_kind IS NULL OR p_kind NOT IN ('payment', 'waiver', 'charge') THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:kind',
            MESSAGE = 'Record a payment, a waiver or a charge.';
    END IF;
    IF p_amount IS NULL OR p_amount <= 0 OR p_amount > 100000000 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:amount',
            MESSAGE = 'The amount must be positive.';
    END IF;
    IF p_kind <> 'payment' AND NOT p_may_adjust THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'role',
            MESSAGE = 'Only librarians and above may waive amounts or add charges.';
    END IF;
    IF p_kind = 'waiver' AND coalesce(btrim(p_note), '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:note',
            MESSAGE = 'A waiver needs a note saying why.';
    END IF;
    v_patron := patron_resolve_strict(p_card);
    PERFORM circ_ledger_add(v_patron, p_kind,
                            CASE WHEN p_kind = 'charge' THEN p_amount ELSE -p_amount END,
                            NULL, NULL, p_staff, p_note);
    SELECT max(x.id) INTO v_id FROM patron_ledger x WHERE x.patron_id = v_patron;
    PERFORM request_store(p_key, jsonb_build_object('id', v_id));
    RETURN QUERY SELECT * FROM circ_ledger_entry(v_id);
END
$$;

CREATE OR REPLACE FUNCTION circ_policy_save(p_id integer, p_remove boolean, p_category text,
                                 p_item_type text, p_branch text, p_loan_days integer,
                                 p_loan_hours integer, p_renewals integer, p_circulates boolean,
                                 p_max_loans integer, p_max_type integer, p_fine integer,
                                 p_fine_max integer, p_grace integer, p_hold_blocks boolean,
                                 p_charge_lost boolean)
RETURNS TABLE (id integer, patron_category text, item_type text, branch text, loan_days integer,
               loan_hours integer, renewals integer, circulates boolean, max_loans integer,
               max_loans_of_type integer, fine_cents_per_day integer, fine_max_cents integer,
               grace_days integer, hold_blocks_renewal boolean, charge_lost boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_branch integer;
    v_id integer;
BEGIN
    IF p_branch IS NOT NULL THEN
        v_branch := (SELECT id FROM branch WHERE code = p_branch);
        IF v_branch IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:branch',
                MESSAGE = format('There is no branch with code %s.', p_branch);
        END IF;
    END IF;
    IF p_remove THEN
        DELETE FROM circ_policy c WHERE c.id = p_id
          AND NOT (c.patron_category IS NULL AND c.item_type IS NULL AND c.branch_id IS NULL)
        RETURNING c.id INTO v_id;
        IF v_id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'policy',
                MESSAGE = 'No such rule (the default rule cannot be removed).';
        END IF;
        RETURN;
    END IF;
    -- The overall cap is read from rules without an item type; on a typed rule
    -- it would be stored and never used.
    IF p_item_type IS NOT NULL AND p_max_loans IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:max_loans',
            MESSAGE = 'The overall loan limit goes on a rule without an item type; '
                      'use the limit per item type here.';
    END IF;
    INSERT INTO circ_policy AS c (patron_category, item_type, branch_id, loan_days, loan_hours,
                             renewals, circulates, max_loans, max_loans_of_type,
                             fine_cents_per_day, fine_max_cents, grace_days,
                             hold_blocks_renewal, charge_lost)
    VALUES (p_category, p_item_type, v_branch, p_loan_days, p_loan_hours, p_renewals,
            p_circulates, p_max_loans, p_max_type, p_fine, p_fine_max, p_grace, p_hold_blocks,
            p_charge_lost)
    ON CONFLICT (patron_category, item_type, branch_id) DO UPDATE SET
        loan_days = EXCLUDED.loan_days, loan_hours = EXCLUDED.loan_hours,
        renewals = EXCLUDED.renewals, circulates = EXCLUDED.circulates,
        max_loans = EXCLUDED.max_loans, max_loans_of_type = EXCLUDED.max_loans_of_type,
        fine_cents_per_day = EXCLUDED.fine_cents_per_day,
        fine_max_cents = EXCLUDED.fine_max_cents, grace_days = EXCLUDED.grace_days,
        hold_blocks_renewal = EXCLUDED.hold_blocks_renewal, charge_lost = EXCLUDED.charge_lost
    RETURNING c.id INTO v_id;
    RETURN QUERY
        SELECT p.id, coalesce(p.patron_category, ''), coalesce(p.item_type, ''),
               coalesce(b.code, ''), p.loan_days, p.loan_hours, p.renewals, p.circulates,
               p.max_loans, p.max_loans_of_type, p.fine_cents_per_day, p.fine_max_cents,
               p.grace_days, p.hold_blocks_renewal, p.charge_lost
        FROM circ_policy p LEFT JOIN branch b ON b.id = p.branch_id WHERE p.id = v_id;
END
$$;

CREATE OR REPLACE FUNCTION calendar_save(p_branch text, p_hours_set boolean, p_weekdays integer[],
                              p_opens time[], p_closes time[], p_add_days date[],
                              p_add_reasons text[], p_remove_days date[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_branch integer := (SELECT id FROM branch WHERE code = p_branch);
BEGIN
    IF v_branch IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:branch',
            MESSAGE = format('There is no branch with code %s.', coalesce(p_branch, '(none)'));
    END IF;
    IF p_hours_set THEN
        DELETE FROM branch_hours WHERE branch_id = v_branch;
        INSERT INTO branch_hours (branch_id, weekday, opens, closes)
        SELECT v_branch, w, o, c FROM unnest(p_weekdays, p_opens, p_closes) AS x(w, o, c);
    END IF;
    INSERT INTO branch_closed (branch_id, day, reason)
    SELECT v_branch, d, coalesce(r, '') FROM unnest(p_add_days, p_add_reasons) AS x(d, r)
    WHERE d IS NOT NULL
    ON CONFLICT (branch_id, day) DO UPDATE SET reason = EXCLUDED.reason;
    DELETE FROM branch_closed WHERE branch_id = v_branch AND day = ANY (p_remove_days);
END
$$;

-- The date n open days of p_branch after p_from (p_from itself not counted).
CREATE OR REPLACE FUNCTION branch_open_days_after(p_branch integer, p_from date, p_days integer)
RETURNS date
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_day date := p_from;
    v_left integer := p_days;
BEGIN
    FOR i IN 1..400 LOOP
        EXIT WHEN v_left <= 0;
        v_day := v_day + 1;
        IF branch_is_open(p_branch, v_day) THEN
            v_left := v_left - 1;
        END IF;
    END LOOP;
    RETURN v_day;
END
$$;
