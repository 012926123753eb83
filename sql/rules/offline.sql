-- Offline circulation (docs/OFFLINE.md): the cache a desk keeps to lend
-- while the daemon is unreachable (offline_cache), the replay of its journal
-- once the daemon is back (offline_replay: Evergreen's rules, each journal
-- entry keyed), the exceptions report for the branch manager
-- (offline_exception_list, offline_exception_resolve) and its daily purge
-- (offline_exception_expire, from holds_daily in notices.sql). Called by
-- server/offline.c. The loan rules themselves are circulation.sql's
-- (circ_checkout_refusals, circ_make_loan, circ_renew_refusals, circ_loan_fine,
-- circ_end_loan, circ_due, circ_rule).

-- ---------------------------------------------------------------- status time

-- A copy's status change is stamped with its time (item.status_changed_at,
-- migration 033), unless the change sets the stamp itself: a replayed offline
-- transaction dates the change at the time it happened at the desk, so the
-- next entry of the same journal does not find the copy "changed after".
CREATE OR REPLACE FUNCTION item_status_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status_changed_at IS NOT DISTINCT FROM OLD.status_changed_at THEN
        NEW.status_changed_at := clock_timestamp();
    END IF;
    RETURN NEW;
END
$$;

-- The WHEN clause tests the stamp too: a change that sets it (a checkout)
-- costs no call of the function.
CREATE OR REPLACE TRIGGER item_status_stamp BEFORE UPDATE OF status ON item
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND OLD.status_changed_at IS NOT DISTINCT FROM NEW.status_changed_at)
    EXECUTE FUNCTION item_status_stamp();

-- ---------------------------------------------------------------- the rules

-- A time as the desk shows it: the library's local date and time.
CREATE OR REPLACE FUNCTION offline_local_text(p_at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE library_setting_text('timezone'), 'Dy Mon DD YYYY HH24:MI')
$$;

-- What happened to copy p_item after p_at that an offline transaction at
-- p_at did not know of (Evergreen: "the item's status changed after the
-- offline transaction"), as a few words for the report; NULL when nothing.
-- From the data kept: a loan began after p_at (item.last_circulated, set by
-- every checkout, the override of a copy on loan included), the status
-- changed after p_at (item.status_changed_at: a loan ended by a checkin, a
-- lost or claims-returned mark; a transit sent or received; a capture for a
-- hold or the hold shelf; damaged, missing, found, withdrawn, an edit of the
-- status), or the copy's open transit or hold capture began after p_at
-- (these change the status too; checked for a copy rerouted while staying
-- in transit). A renewal is not a change of the copy.
CREATE OR REPLACE FUNCTION offline_changed_after(p_item item, p_at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p_item.last_circulated > p_at
            THEN format('it was checked out at %s', offline_local_text(p_item.last_circulated))
        WHEN p_item.status_changed_at > p_at
            THEN format('it became %s at %s', replace(p_item.status::text, '_', ' '),
                        offline_local_text(p_item.status_changed_at))
        WHEN EXISTS (SELECT 1 FROM transit t
                     WHERE t.item_id = p_item.id AND t.received_at IS NULL
                       AND t.cancelled_at IS NULL AND t.sent_at > p_at)
            THEN 'it was sent in transit'
        WHEN EXISTS (SELECT 1 FROM hold h
                     WHERE h.captured_item_id = p_item.id AND h.status IN ('in_transit', 'ready')
                       AND h.captured_at > p_at)
            THEN 'it was set aside for a hold'
    END
$$;

-- The due date of a loan or renewal made offline at p_at under p_rule: the
-- date the desk gave the patron (p_due) when it is sane (after p_at's day,
-- at most a year on, and the rule counts days, not hours), else the rule's
-- due date counted from p_at (circ_due).
CREATE OR REPLACE FUNCTION offline_due(p_branch integer, p_at timestamptz, p_rule circ_policy,
                                       p_due date) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p_due IS NOT NULL AND p_rule.loan_hours = 0
             AND p_due > library_local_date(p_at) AND p_due <= library_local_date(p_at) + 366
            THEN (p_due + time '23:59:59') AT TIME ZONE library_setting_text('timezone')
        ELSE circ_due(p_branch, p_at, p_rule)
    END
$$;

-- The loan p_open of another patron ends as of p_at (fines to p_at): the copy
-- was lent again offline, so it had come back.
CREATE OR REPLACE FUNCTION offline_end_loan(p_open loan, p_item item, p_at timestamptz,
                                            p_branch integer, p_staff bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_fine bigint := circ_loan_fine(p_open, p_item.id, p_at, p_staff);
BEGIN
    PERFORM circ_end_loan(p_open, p_at, p_branch, 'returned');
    INSERT INTO circ_event (at, action, branch_id, item_id, item_type, patron_category,
                            staff_id, location)
    VALUES (p_at, 'checkin', p_branch, p_item.id, p_item.item_type, p_open.patron_category,
            p_staff, p_item.location);
    RETURN v_fine;
END
$$;

-- An offline checkout of p_item to p_patron at p_at (p_item locked).
-- How a checkout or renewal replayed in spite of the rules in p_reasons
-- ended: a warning with p_message, p_although (' Lent although: ') and what
-- the rules said, or applied with p_message alone.
CREATE OR REPLACE FUNCTION offline_outcome(p_message text, p_although text, p_reasons text[],
                                           p_messages text[], OUT outcome text,
                                           OUT reason text, OUT message text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN cardinality(p_reasons) > 0 THEN 'warning' ELSE 'applied' END,
           p_reasons[1],
           CASE WHEN cardinality(p_reasons) > 0
                THEN p_message || p_although || array_to_string(p_messages, ' ')
                ELSE p_message END
$$;

CREATE OR REPLACE FUNCTION offline_checkout(p_staff bigint, p_branch integer, p_item item,
                                            p_patron patron, p_at timestamptz, p_due date,
                                            OUT outcome text, OUT reason text,
                                            OUT message text, OUT route text)
LANGUAGE plpgsql AS $$
DECLARE
    v_open loan;
    v_changed text;
    v_pc patron_circ;
    v_rule circ_policy;
    v_refusals record;
    v_reasons text[] := '{}';
    v_messages text[] := '{}';
    v_loan loan;
BEGIN
    SELECT * INTO v_open FROM loan WHERE item_id = p_item.id AND returned_at IS NULL FOR UPDATE;
    -- Already this patron's (the request in flight when the line dropped was
    -- applied, or the copy was scanned twice): nothing to do.
    IF v_open.id IS NOT NULL AND v_open.patron_id = p_patron.id THEN
        outcome := 'applied';
        message := format('%s is checked out to this patron already, due %s.', p_item.barcode,
                          circ_local_text(v_open.due_at));
        RETURN;
    END IF;
    v_changed := offline_changed_after(p_item, p_at);
    IF v_changed IS NOT NULL THEN
        outcome := 'skipped';
        reason := 'changed_after';
        message := format('Not lent: %s changed after the offline checkout (%s).',
                          p_item.barcode, v_changed);
        RETURN;
    END IF;
    v_pc := patron_circ_lock(p_patron.id);
    IF v_open.id IS NOT NULL THEN
        -- On loan to another patron since before p_at, yet lent at the desk:
        -- it had come back. That loan ends as of p_at, then the copy is lent.
        PERFORM offline_end_loan(v_open, p_item, p_at, p_branch, p_staff);
        v_reasons := v_reasons || 'on_loan'::text;
        v_messages := v_messages
                      || format('%s was on loan to another patron; that loan was ended as of %s.',
                                p_item.barcode, offline_local_text(p_at));
    END IF;
    v_rule := circ_rule(p_patron.category, p_item.item_type, p_branch);
    -- The rules a desk checkout applies; offline the copy has already left
    -- the building, so each is a warning, not a refusal.
    SELECT * INTO v_refusals FROM circ_checkout_refusals(p_patron, v_pc, p_item, NULL::loan,
                                                         v_rule, p_branch);
    v_reasons := v_reasons || v_refusals.reasons;
    v_messages := v_messages || v_refusals.messages;

    -- The loan as a desk checkout makes it (circulation.sql), as of p_at.
    v_loan := circ_make_loan(p_item, p_patron, p_at, p_branch, p_staff,
                             offline_due(p_branch, p_at, v_rule, p_due),
                             CASE WHEN cardinality(v_reasons) > 0
                                  THEN 'Lent offline: ' || array_to_string(v_reasons, ', ') END);
    -- The patron's own hold on the title is filled; a copy taken from another
    -- patron's hold sends that hold back to waiting (hold_release).
    PERFORM circ_hold_after_checkout(p_item, p_patron, v_loan, cardinality(v_reasons) > 0);

    SELECT o.outcome, o.reason, o.message INTO outcome, reason, message
    FROM offline_outcome(format('Checked out as of %s, due %s.', offline_local_text(p_at),
                                circ_local_text(v_loan.due_at)),
                         ' Lent although: ', v_reasons, v_messages) o;
END
$$;

-- Does a waiting hold want copy p_item (the test hold_capture makes, without
-- capturing)?
CREATE OR REPLACE FUNCTION offline_hold_wants(p_item item) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT item_can_fill_holds(p_item)
       AND EXISTS (SELECT 1 FROM hold x
                   WHERE x.bib_id = p_item.bib_id AND hold_eligible(x)
                     AND (x.item_id IS NULL OR x.item_id = p_item.id))
$$;

-- An offline checkin of p_item at p_branch at p_at (p_item locked): the loan
-- ends as of p_at, fines to p_at. The copy is routed now but no hold captures
-- it unseen: a copy a hold wants, or one that belongs at another branch,
-- waits at p_branch as available (a warning says: check it in again at the
-- desk, which routes it); otherwise it goes to the shelf (or its display).
CREATE OR REPLACE FUNCTION offline_checkin(p_staff bigint, p_branch integer, p_item item,
                                           p_at timestamptz, OUT outcome text, OUT reason text,
                                           OUT message text, OUT route text)
LANGUAGE plpgsql AS $$
DECLARE
    v_changed text := offline_changed_after(p_item, p_at);
    v_loan loan;
    v_fine bigint;
    v_display text;
    v_float boolean;
BEGIN
    IF v_changed IS NOT NULL THEN
        outcome := 'skipped';
        reason := 'changed_after';
        message := format('Not checked in: %s changed after the offline checkin (%s).',
                          p_item.barcode, v_changed);
        RETURN;
    END IF;
    SELECT * INTO v_loan FROM loan WHERE item_id = p_item.id AND returned_at IS NULL FOR UPDATE;
    IF v_loan.id IS NULL THEN
        outcome := 'skipped';
        reason := 'not_on_loan';
        message := format('Not checked in: %s was not on loan (it is %s).', p_item.barcode,
                          replace(p_item.status::text, '_', ' '));
        RETURN;
    END IF;
    v_fine := offline_end_loan(v_loan, p_item, p_at, p_branch, p_staff);
    UPDATE item SET status = 'available', status_changed_at = p_at,
        current_branch_id = p_branch, version = version + 1, updated_at = now()
    WHERE id = p_item.id;
    message := format('Returned as of %s.', offline_local_text(p_at))
               || CASE WHEN v_fine > 0
                       THEN format(' Fine $%s.', to_char(v_fine / 100.0, 'FM999990.00'))
                       ELSE '' END;
    v_float := (SELECT t.floating FROM item_type t WHERE t.code = p_item.item_type)
               OR EXISTS (SELECT 1 FROM floating_location f WHERE f.location = p_item.location);
    IF offline_hold_wants(p_item) THEN
        outcome := 'warning';
        reason := 'holds_waiting';
        route := 'hold';
        message := message || ' A hold wants this copy: check it in again at the desk to route it.';
    ELSIF p_item.owning_branch_id <> p_branch AND NOT v_float THEN
        outcome := 'warning';
        reason := 'not_owned_here';
        route := 'transit';
        message := message || format(' It belongs to %s: check it in again at the desk to route it.',
                                     (SELECT b.name FROM branch b
                                      WHERE b.id = p_item.owning_branch_id));
    ELSE
        outcome := 'applied';
        v_display := display_checkin_text(p_item.id, p_branch);
        route := CASE WHEN v_display IS NULL THEN 'shelf' ELSE 'display' END;
        message := message || coalesce(' Put back on the display: ' || v_display,
                                       ' Return to shelf.');
    END IF;
END
$$;

-- An offline renewal of p_item for p_patron at p_at (p_item locked): the
-- loan must be that patron's since before p_at. Due: the date the desk gave
-- or the rule's from p_at, never earlier than it was. The rules a renewal at
-- the desk applies (standing, renewal limit, holds) are warnings.
CREATE OR REPLACE FUNCTION offline_renew(p_staff bigint, p_branch integer, p_item item,
                                         p_patron patron, p_at timestamptz, p_due date,
                                         OUT outcome text, OUT reason text, OUT message text,
                                         OUT route text)
LANGUAGE plpgsql AS $$
DECLARE
    v_changed text := offline_changed_after(p_item, p_at);
    v_loan loan;
    v_rule circ_policy;
    v_due timestamptz;
    v_reasons text[];
    v_messages text[];
BEGIN
    IF v_changed IS NOT NULL THEN
        outcome := 'skipped';
        reason := 'changed_after';
        message := format('Not renewed: %s changed after the offline renewal (%s).',
                          p_item.barcode, v_changed);
        RETURN;
    END IF;
    SELECT * INTO v_loan FROM loan WHERE item_id = p_item.id AND returned_at IS NULL FOR UPDATE;
    IF v_loan.id IS NULL OR v_loan.patron_id <> p_patron.id OR v_loan.checkout_at > p_at THEN
        outcome := 'skipped';
        reason := 'not_on_loan';
        message := format('Not renewed: %s was not on loan to this patron.', p_item.barcode);
        RETURN;
    END IF;
    v_rule := circ_rule(v_loan.patron_category, v_loan.item_type, v_loan.checkout_branch_id);
    v_due := offline_due(v_loan.checkout_branch_id, p_at, v_rule, p_due);
    IF v_due <= v_loan.due_at THEN
        outcome := 'applied';
        message := format('Already due %s; nothing changed (no renewal used).',
                          circ_local_text(v_loan.due_at));
        RETURN;
    END IF;
    -- The rules a renewal at the desk refuses by (circulation.sql), all of them.
    SELECT f.reasons, f.messages INTO v_reasons, v_messages
    FROM circ_renew_refusals(p_patron, v_rule, v_loan.renewals, p_item.id, p_item.bib_id,
                             false) f;
    UPDATE loan SET due_at = v_due, renewals = renewals + 1,
        override_reason = CASE WHEN cardinality(v_reasons) > 0
                               THEN 'Renewed offline: ' || array_to_string(v_reasons, ', ')
                               ELSE override_reason END
    WHERE id = v_loan.id;
    UPDATE item SET last_used_at = greatest(last_used_at, p_at) WHERE id = p_item.id;
    INSERT INTO circ_event (at, action, branch_id, item_id, item_type, patron_category,
                            staff_id, location)
    VALUES (p_at, 'renew', p_branch, p_item.id, v_loan.item_type, v_loan.patron_category,
            p_staff, p_item.location);
    PERFORM patron_activity_touch(p_patron.id, true);
    SELECT o.outcome, o.reason, o.message INTO outcome, reason, message
    FROM offline_outcome(format('Renewed as of %s; due %s.', offline_local_text(p_at),
                                circ_local_text(v_due)),
                         ' Renewed although: ', v_reasons, v_messages) o;
END
$$;

-- Replay one journaled transaction (op checkout, checkin or renew of
-- p_barcode, for p_card, at p_at on the server's clock) at p_branch, keyed
-- by the journal entry's key: a resent upload gets the stored answer and
-- changes nothing (no second exception row either). Outcome applied (done),
-- warning (done, and listed in the report) or skipped (not done, listed).
-- A time more than 5 minutes ahead of the server is taken as now (warning
-- too_far_ahead unless another warning is given); one more than 30 days old
-- is skipped (in_the_past): the report lists it for staff to settle by hand.
-- p_session_at: when the uploading session logged in (NULL: not checked). An
-- entry dated after it is skipped (while_online): the uploader was online
-- then, so it is no offline transaction, and a replay is no way around the
-- online rules (an override is librarian's work).
-- p_bad: why the entry can never be applied (a barcode or card longer than
-- any, a clock before 2001), said by server/offline.c: skipped (bad_entry)
-- and listed, so that the rest of the journal goes on; p_at may then be NULL
-- (the report dates it at the upload).
DROP FUNCTION IF EXISTS offline_replay(uuid, bigint, bigint, integer, text, text, text,
                                       timestamptz, timestamptz, bigint, date, text);
CREATE OR REPLACE FUNCTION offline_replay(p_key uuid, p_staff bigint, p_ws bigint,
                                          p_branch integer, p_op text, p_card text,
                                          p_barcode text, p_at timestamptz,
                                          p_ws_at timestamptz, p_offset_ms bigint, p_due date,
                                          p_clerk text, p_session_at timestamptz DEFAULT NULL,
                                          p_bad text DEFAULT NULL)
RETURNS TABLE (outcome text, reason text, message text, route text, exception_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    v_stored jsonb;
    v_at timestamptz := p_at;
    v_ahead boolean := p_at > now() + interval '5 minutes';
    v_patron patron;
    v_item item;
    v_outcome text;
    v_reason text;
    v_message text;
    v_route text;
    v_exception bigint;
BEGIN
    IF p_op IS NULL OR p_op NOT IN ('checkout', 'checkin', 'renew') THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:op',
            MESSAGE = 'An offline transaction is a checkout, a checkin or a renew.';
    END IF;
    IF p_at IS NULL AND p_bad IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:at_ms',
            MESSAGE = 'An offline transaction needs its time.';
    END IF;
    IF coalesce(p_barcode, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:barcode',
            MESSAGE = 'An offline transaction needs the item barcode.';
    END IF;
    IF p_op <> 'checkin' AND coalesce(p_card, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:card',
            MESSAGE = 'An offline checkout or renewal needs the patron''s card.';
    END IF;
    -- A resend gets the stored answer whoever uploads it: the key is the
    -- journal entry's, and an upload cut short may be finished by the next
    -- person to log in at the desk. After the key's log row has expired (two
    -- days), an entry in the report still answers from its row.
    SELECT r.result INTO v_stored FROM request_log r
    WHERE r.key = p_key AND r.kind = 'offline' AND r.result IS NOT NULL;
    IF v_stored IS NULL THEN
        SELECT jsonb_build_object('outcome', x.outcome, 'reason', x.reason,
                                  'message', x.message, 'route', x.route,
                                  'exception_id', x.id)
        INTO v_stored FROM offline_exception x WHERE x.key = p_key;
    END IF;
    IF v_stored IS NULL THEN
        SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'offline');
        v_stored := v_key.stored;
    END IF;
    IF v_stored IS NOT NULL THEN
        RETURN QUERY SELECT x.outcome, x.reason, x.message, x.route, x.exception_id
                     FROM jsonb_to_record(v_stored)
                          AS x(outcome text, reason text, message text, route text,
                               exception_id bigint);
        RETURN;
    END IF;
    IF p_bad IS NOT NULL THEN
        v_at := coalesce(p_at, now());
        v_ahead := false;
        v_outcome := 'skipped';
        v_reason := 'bad_entry';
        v_message := format('Not applied: %s; settle it by hand.', p_bad);
    ELSIF p_op <> 'checkin' THEN
        SELECT * INTO v_patron FROM patron WHERE id = patron_resolve(p_card, NULL);
    END IF;
    -- The copy first, as every change of a copy locks it (lock order: item,
    -- loan, patron_circ, bib, hold).
    IF p_bad IS NULL THEN
        SELECT * INTO v_item FROM item WHERE barcode = p_barcode FOR UPDATE;
    END IF;
    IF v_ahead THEN
        v_at := clock_timestamp();
    END IF;
    IF p_bad IS NOT NULL THEN
        NULL; -- said above
    ELSIF p_at > p_session_at THEN
        v_outcome := 'skipped';
        v_reason := 'while_online';
        v_message := format('Not applied: dated %s, after this upload''s session logged in (%s);'
                            ' an offline transaction cannot happen while the desk is online.'
                            ' Check the workstation''s clock; settle it by hand.',
                            offline_local_text(p_at), offline_local_text(p_session_at));
    ELSIF p_at < now() - interval '30 days' THEN
        v_outcome := 'skipped';
        v_reason := 'in_the_past';
        v_message := format('Not applied: more than 30 days old (%s); settle it by hand.',
                            offline_local_text(p_at));
    ELSIF p_op <> 'checkin' AND v_patron.id IS NULL THEN
        v_outcome := 'skipped';
        v_reason := 'patron_not_found';
        v_message := format('Not applied: no patron has card %s.', p_card);
    ELSIF v_item.id IS NULL THEN
        v_outcome := 'skipped';
        v_reason := 'item_not_found';
        v_message := format('Not applied: no item has barcode %s.', p_barcode);
    ELSIF p_op = 'checkout' THEN
        SELECT * INTO v_outcome, v_reason, v_message, v_route
        FROM offline_checkout(p_staff, p_branch, v_item, v_patron, v_at, p_due);
    ELSIF p_op = 'checkin' THEN
        SELECT * INTO v_outcome, v_reason, v_message, v_route
        FROM offline_checkin(p_staff, p_branch, v_item, v_at);
    ELSE
        SELECT * INTO v_outcome, v_reason, v_message, v_route
        FROM offline_renew(p_staff, p_branch, v_item, v_patron, v_at, p_due);
    END IF;
    IF v_ahead AND v_outcome <> 'skipped' THEN
        IF v_outcome = 'applied' THEN
            v_outcome := 'warning';
            v_reason := 'too_far_ahead';
        END IF;
        v_message := v_message || format(' The workstation''s time (%s) was ahead of the '
                                         'server''s: recorded as of the upload.',
                                         offline_local_text(p_at));
    END IF;
    IF v_outcome <> 'applied' THEN
        INSERT INTO offline_exception AS x (key, branch_id, workstation_id, uploaded_by, clerk, op,
                                       card, barcode, item_id, patron_id, offline_at,
                                       workstation_at, offset_ms, outcome, reason, message,
                                       route)
        VALUES (p_key, p_branch, p_ws, p_staff, left(p_clerk, 100), p_op, left(p_card, 64),
                left(p_barcode, 64), v_item.id, v_patron.id, v_at, p_ws_at, p_offset_ms,
                v_outcome, v_reason, left(v_message, 1000), v_route)
        RETURNING x.id INTO v_exception;
    END IF;
    PERFORM request_store(p_key, jsonb_build_object('outcome', v_outcome, 'reason', v_reason,
                                                    'message', v_message, 'route', v_route,
                                                    'exception_id', v_exception));
    RETURN QUERY SELECT v_outcome, v_reason, v_message, v_route, v_exception;
END
$$;

-- ---------------------------------------------------------------- the cache

-- What a desk at p_branch needs to lend offline, as rows told apart by kind:
--   head:    a = branch code, b = generated_at (ISO 8601), n = default loan
--            days, ms = the server's time in ms since the epoch;
--   blocked: a = card, b = why (merged, blocked, expired, fines): every card
--            a checkout would refuse for the patron's standing (as
--            patron_standing decides it), old cards of merged records that find such
--            a patron included, and cards of records merged into another; but
--            no card of a patron expired more than 3 years ago;
--   rule:    a = patron category, b = item type, n = loan days here (0: an
--            hourly loan, due the same day);
--   closed:  a = YYYY-MM-DD, a day of the next 90 the branch is closed.
-- Default loan days: the rule for no particular patron category and the item
-- type the branch lent most in the last year (stat_circ_day), or for no item
-- type when it lent nothing.
CREATE OR REPLACE FUNCTION offline_cache(p_branch integer)
RETURNS TABLE (kind text, a text, b text, n integer, ms bigint)
LANGUAGE sql STABLE AS $$
    WITH top AS (
        SELECT d.item_type FROM stat_circ_day d
        WHERE d.branch_id = p_branch AND d.action = 'checkout'
          AND d.day > library_today() - 365
        GROUP BY d.item_type ORDER BY sum(d.n) DESC, d.item_type LIMIT 1),
    -- patron_standing's three tests (expired, blocked, owes), for every
    -- patron in one pass: called per patron it would cost a query each
    -- (test_offline_sql checks the two agree).
    blocks AS (
        SELECT DISTINCT b.patron_id FROM patron_block b WHERE b.lifted_at IS NULL),
    standing AS (
        SELECT p.id, p.card,
               CASE WHEN k.patron_id IS NOT NULL THEN 'blocked'
                    WHEN p.expires_on < library_today() THEN 'expired'
                    ELSE 'fines' END AS why
        FROM patron p
        LEFT JOIN patron_circ pc ON pc.patron_id = p.id
        LEFT JOIN blocks k ON k.patron_id = p.id
        WHERE p.merged_into IS NULL
          -- Privacy and size: a card expired more than 3 years ago is not
          -- sent (it would list every card ever expired); the replay still
          -- warns of it (patron_expired).
          AND p.expires_on >= (library_today() - interval '3 years')::date
          AND (k.patron_id IS NOT NULL OR p.expires_on < library_today()
               OR coalesce(pc.balance_cents, 0)
                  >= library_setting_text('block_threshold_cents')::bigint))
    SELECT 'head', b.code, api_time(now()),
           (SELECT CASE WHEN r.loan_hours > 0 THEN 0 ELSE r.loan_days END
            FROM circ_rule(NULL, (SELECT item_type FROM top), p_branch) r),
           (extract(epoch FROM clock_timestamp()) * 1000)::bigint
    FROM branch b WHERE b.id = p_branch
    UNION ALL
    SELECT 'blocked', s.card, s.why, NULL, NULL FROM standing s
    UNION ALL
    SELECT 'blocked', c.card, s.why, NULL, NULL
    FROM standing s JOIN patron_card c ON c.patron_id = s.id
    UNION ALL
    SELECT 'blocked', p.card, 'merged', NULL, NULL FROM patron p WHERE p.merged_into IS NOT NULL
    UNION ALL
    SELECT 'rule', c.code, t.code,
           CASE WHEN r.loan_hours > 0 THEN 0 ELSE r.loan_days END, NULL
    FROM patron_category c CROSS JOIN item_type t
    CROSS JOIN LATERAL circ_rule(c.code, t.code, p_branch) r
    UNION ALL
    SELECT 'closed', to_char(d, 'YYYY-MM-DD'), NULL, NULL, NULL
    FROM generate_series(library_today()::timestamp, (library_today() + 89)::timestamp,
                         interval '1 day') g(d)
    WHERE NOT branch_is_open(p_branch, d::date)
$$;

-- ---------------------------------------------------------------- the report

-- One exception as the OfflineException message, in proto order.
CREATE OR REPLACE FUNCTION offline_exception_out(x offline_exception)
RETURNS TABLE (id bigint, branch_code text, workstation text, clerk text, op text, card text,
               barcode text, title text, offline_at text, uploaded_at text, outcome text,
               reason text, message text, resolved_at text, resolved_by text, resolution text)
LANGUAGE sql STABLE AS $$
    SELECT x.id, b.code, w.name, x.clerk, x.op, x.card, x.barcode, bib.title,
           api_time(x.offline_at), api_time(x.uploaded_at), x.outcome, x.reason, x.message,
           api_time(x.resolved_at), s.username, x.resolution
    FROM branch b
    LEFT JOIN workstation w ON w.id = x.workstation_id
    LEFT JOIN item i ON i.id = x.item_id
    LEFT JOIN bib ON bib.id = i.bib_id
    LEFT JOIN staff s ON s.id = x.resolved_by
    WHERE b.id = x.branch_id
$$;

-- The exceptions of branch p_branch_code uploaded since p_since (the
-- library's date; default 30 days ago), unresolved only unless
-- p_include_resolved, newest first, at most p_limit. p_scope: the caller's
-- branch for branch-bound roles (another branch: CR403 branch), NULL for
-- system-wide ones.
CREATE OR REPLACE FUNCTION offline_exception_list(p_scope integer, p_branch_code text,
                                                  p_since date, p_include_resolved boolean,
                                                  p_limit integer)
RETURNS TABLE (id bigint, branch_code text, workstation text, clerk text, op text, card text,
               barcode text, title text, offline_at text, uploaded_at text, outcome text,
               reason text, message text, resolved_at text, resolved_by text, resolution text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    v_branch integer := (SELECT b.id FROM branch b WHERE b.code = p_branch_code);
    v_since date := coalesce(p_since, library_today() - 30);
BEGIN
    IF v_branch IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:branch_code',
            MESSAGE = format('There is no branch with code %s.', coalesce(p_branch_code, ''));
    END IF;
    IF p_scope IS NOT NULL AND p_scope <> v_branch THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'branch',
            MESSAGE = 'You may see the offline exceptions of your own branch only.';
    END IF;
    RETURN QUERY
        SELECT o.* FROM offline_exception x CROSS JOIN LATERAL offline_exception_out(x) o
        WHERE x.branch_id = v_branch
          AND x.uploaded_at >= (v_since::timestamp AT TIME ZONE library_setting_text('timezone'))
          AND (p_include_resolved OR x.resolved_at IS NULL)
        ORDER BY x.uploaded_at DESC, x.id DESC
        LIMIT p_limit;
END
$$;

-- Mark exception p_id dealt with, with a note (again: the newer note and
-- time replace the older). p_scope as in offline_exception_list.
CREATE OR REPLACE FUNCTION offline_exception_resolve(p_actor bigint, p_scope integer,
                                                     p_id bigint, p_note text)
RETURNS TABLE (id bigint, branch_code text, workstation text, clerk text, op text, card text,
               barcode text, title text, offline_at text, uploaded_at text, outcome text,
               reason text, message text, resolved_at text, resolved_by text, resolution text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v offline_exception;
BEGIN
    IF coalesce(btrim(p_note), '') = '' OR length(p_note) > 500 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:note',
            MESSAGE = 'Say in 1 to 500 characters how it was dealt with.';
    END IF;
    SELECT * INTO v FROM offline_exception x WHERE x.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'offline_exception',
            MESSAGE = format('No offline exception has id %s.', p_id);
    END IF;
    IF p_scope IS NOT NULL AND p_scope <> v.branch_id THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'branch',
            MESSAGE = 'You may resolve the offline exceptions of your own branch only.';
    END IF;
    UPDATE offline_exception x SET resolved_at = now(), resolved_by = p_actor,
        resolution = btrim(p_note)
    WHERE x.id = p_id
    RETURNING * INTO v;
    RETURN QUERY SELECT * FROM offline_exception_out(v);
END
$$;

-- Privacy: a resolved exception ties a card to a copy; 90 days after its
-- resolution it goes. Run daily by holds_daily (notices.sql). The number gone.
CREATE OR REPLACE FUNCTION offline_exception_expire() RETURNS integer
LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM offline_exception
                  WHERE resolved_at < now() - interval '90 days' RETURNING 1)
    SELECT count(*)::integer FROM gone
$$;
