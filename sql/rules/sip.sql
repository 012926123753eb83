-- What self-check machines ask (SIP2, server/sip_msgs.c; docs/SIP2.md): a
-- patron's status and lists (messages 23 and 63), an item's status (17),
-- renew all (65), whether a checkin would capture a hold (for logins with
-- held_checkin_blocked), and patron PINs (patron_pin, 032): set by staff
-- (patron_pin_set, audited without the PIN), wrong ones counted and locked
-- (sip_pin_record). Checkout, checkin, renew and fee paid call the desk's
-- own functions (circulation.sql) with the kiosk's staff account, so a
-- self-check transaction is a desk transaction.
--
-- Dates a kiosk prints (due dates) are written here, in the library's time
-- zone, in SIP's form "YYYYMMDDZZZZHHMMSS" with the zone as four blanks
-- (local time): a due date at 23:59:59 library time must not print as the
-- next day because the daemon runs in UTC.

-- A timestamp as a SIP2 date in library time; NULL stays NULL.
CREATE OR REPLACE FUNCTION sip_date(p_at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE library_setting_text('timezone'), 'YYYYMMDD"    "HH24MISS')
$$;

-- SIP2 media type (CK, three digits) of an item type: 001 book, 002
-- magazine, 005 video tape, 006 CD/CD-ROM (any disc: DVDs, music, audio
-- books), 000 other (maps, kits, equipment).
CREATE OR REPLACE FUNCTION sip_media_type(p_item_type text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_item_type IN ('book', 'large_print', 'score', 'reference') THEN '001'
        WHEN p_item_type = 'periodical' THEN '002'
        WHEN p_item_type = 'video' THEN '005'
        WHEN p_item_type IN ('dvd', 'music', 'audiobook') THEN '006'
        ELSE '000' END
$$;

-- Money as SIP sends it (BV, CC): dollars with two decimals, "12.50".
CREATE OR REPLACE FUNCTION sip_money(p_cents bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(p_cents / 100.0, 'FM9999999990.00')
$$;

-- ---------------------------------------------------------------- PINs

-- The PIN of the patron a card names, for the daemon to verify AD against
-- (Argon2id, on its password queue). No row: unknown card. pin_hash NULL:
-- no PIN set. locked: five wrong PINs in a row, less than 15 minutes ago.
CREATE OR REPLACE FUNCTION sip_patron_pin(p_card text)
RETURNS TABLE (patron_id bigint, pin_hash text, locked boolean, failures integer)
LANGUAGE sql STABLE AS $$
    SELECT p.id, pp.pin_hash, coalesce(pp.locked_until > now(), false), pp.failures
    FROM patron p LEFT JOIN patron_pin pp ON pp.patron_id = p.id
    WHERE p.id = patron_resolve(p_card, NULL)
$$;

-- Record a PIN check of p_patron: right (p_ok) resets the count; wrong adds
-- one, and the fifth in a row locks the PIN for 15 minutes and starts the
-- count again (after the lock, five more tries). Returns whether the PIN is
-- now locked. A check while locked is not recorded: the daemon does not
-- verify a locked PIN at all.
CREATE OR REPLACE FUNCTION sip_pin_record(p_patron bigint, p_ok boolean) RETURNS boolean
LANGUAGE sql AS $$
    UPDATE patron_pin SET
        failures = CASE WHEN p_ok OR failures + 1 >= 5 THEN 0 ELSE failures + 1 END,
        locked_until = CASE WHEN p_ok THEN NULL
                            WHEN failures + 1 >= 5 THEN now() + interval '15 minutes'
                            ELSE locked_until END
    WHERE patron_id = p_patron
    RETURNING coalesce(locked_until > now(), false)
$$;

-- Set (p_hash, an Argon2id hash the daemon made) or clear (p_hash NULL) the
-- PIN of the patron p_card names. The audit row on the patron says "set" or
-- "cleared", never the PIN or its hash. Setting a PIN unlocks it. Clearing
-- a card without a PIN changes nothing and writes no audit row.
CREATE OR REPLACE FUNCTION patron_pin_set(p_staff bigint, p_workstation bigint, p_card text,
                                          p_hash text)
RETURNS TABLE (card text, has_pin boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := patron_resolve_strict(p_card);
    v_card text;
    v_had boolean;
BEGIN
    -- The patron row first, as every change of the record takes it.
    SELECT p.card INTO v_card FROM patron p WHERE p.id = v_id FOR UPDATE;
    v_had := EXISTS (SELECT 1 FROM patron_pin x WHERE x.patron_id = v_id);
    IF p_hash IS NULL THEN
        IF v_had THEN
            DELETE FROM patron_pin x WHERE x.patron_id = v_id;
            PERFORM audit_write(p_staff, p_workstation, 'patron', v_id, 'pin_clear',
                                jsonb_build_object('pin', jsonb_build_object(
                                    'before', 'set', 'after', NULL)));
        END IF;
        RETURN QUERY SELECT v_card, false;
        RETURN;
    END IF;
    IF p_hash NOT LIKE '$argon2id$%' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:pin',
            MESSAGE = 'The PIN was not hashed as it should be.';
    END IF;
    INSERT INTO patron_pin AS x (patron_id, pin_hash, set_by)
    VALUES (v_id, p_hash, p_staff)
    ON CONFLICT (patron_id) DO UPDATE
        SET pin_hash = excluded.pin_hash, set_at = now(), set_by = excluded.set_by,
            failures = 0, locked_until = NULL;
    PERFORM audit_write(p_staff, p_workstation, 'patron', v_id, 'pin_set',
                        jsonb_build_object('pin', jsonb_build_object(
                            'before', CASE WHEN v_had THEN 'set' END, 'after', 'set')));
    RETURN QUERY SELECT v_card, true;
END
$$;

-- Merging two records: the kept record's PIN stays; the merged record's
-- goes to it only when it has none.
CREATE OR REPLACE FUNCTION patron_pin_merge(p_keep bigint, p_merge bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM patron_pin WHERE patron_id = p_keep) THEN
        DELETE FROM patron_pin WHERE patron_id = p_merge;
    ELSE
        UPDATE patron_pin SET patron_id = p_keep WHERE patron_id = p_merge;
    END IF;
END
$$;

INSERT INTO patron_merge_handler (table_name, handler) VALUES ('patron_pin', 'patron_pin_merge')
ON CONFLICT (table_name) DO UPDATE SET handler = EXCLUDED.handler;

-- ---------------------------------------------------------------- patrons

-- A patron as messages 23 and 63 describe one; no row for an unknown card.
-- status: SIP's 14 flags, 'Y' or blank, in the standard's order:
--   0 charge privileges denied   expired, blocked, owes too much, or at the loan limit
--   1 renewal privileges denied  expired, blocked or owes (what renewal refuses)
--   2 recall privileges denied   as holds (a recall is a kind of hold)
--   3 hold privileges denied     expired, blocked, or at the category's hold limit
--   4 card reported lost         never (no such record)
--   5 too many items charged     at the loan limit (the rule for the kiosk's branch)
--   6-9 overdue/renewal/claims/lost limits: never (no such limits)
--   10 excessive fines, 11 excessive fees: owes (one balance: both)
--   12 recall overdue, 13 too many billed: never
-- The counts: ready holds (hold items), overdue and open loans, charges
-- still owed (fine items, as sip_patron_items 'fine' lists them), recalls
-- (none), holds not yet ready (unavailable holds). message: the sentence
-- for the screen (AF) when something stops the patron. The PIN's hash, lock
-- and count of wrong tries, for the daemon to check AD (as sip_patron_pin).
CREATE OR REPLACE FUNCTION sip_patron(p_card text, p_branch integer)
RETURNS TABLE (patron_id bigint, card text, name text, status text, expired boolean,
               blocked boolean, owes boolean, hold_items integer, overdue_items integer,
               charged_items integer, fine_items integer, recall_items integer,
               unavailable_holds integer, balance_cents bigint, fee_limit_cents bigint,
               hold_limit integer, charged_limit integer, email text, phone text,
               address text, message text, pin_hash text, pin_locked boolean,
               pin_failures integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p patron;
    s record;
    v_loan_cap integer;
    v_hold_cap integer;
    v_holds_live integer;
    v_at_loan_cap boolean;
    v_at_hold_cap boolean;
    v_flags text[];
BEGIN
    SELECT * INTO p FROM patron x WHERE x.id = patron_resolve(p_card, NULL);
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO s FROM patron_standing(p.id);
    v_loan_cap := (circ_rule(p.category, NULL, p_branch)).max_loans;
    SELECT c.max_holds INTO v_hold_cap FROM patron_category c WHERE c.code = p.category;
    SELECT count(*) FILTER (WHERE h.status IN ('waiting', 'in_transit', 'ready')),
           count(*) FILTER (WHERE h.status = 'ready'),
           count(*) FILTER (WHERE h.status IN ('waiting', 'in_transit'))
    INTO v_holds_live, hold_items, unavailable_holds
    FROM hold h WHERE h.patron_id = p.id AND h.status IN ('waiting', 'in_transit', 'ready');
    SELECT count(*) FILTER (WHERE l.due_at < now()), count(*)
    INTO overdue_items, charged_items
    FROM loan l WHERE l.patron_id = p.id AND l.returned_at IS NULL;
    v_at_loan_cap := v_loan_cap IS NOT NULL AND s.loans_out >= v_loan_cap;
    v_at_hold_cap := v_holds_live >= v_hold_cap;
    v_flags := ARRAY[
        s.expired OR s.blocked OR s.owes OR v_at_loan_cap,
        s.expired OR s.blocked OR s.owes,
        s.expired OR s.blocked OR v_at_hold_cap,
        s.expired OR s.blocked OR v_at_hold_cap,
        false,
        v_at_loan_cap,
        false, false, false, false,
        s.owes, s.owes,
        false, false]::text[];
    status := (SELECT string_agg(CASE WHEN f::boolean THEN 'Y' ELSE ' ' END, '' ORDER BY n)
               FROM unnest(v_flags) WITH ORDINALITY AS t(f, n));
    patron_id := p.id;
    card := p.card;
    name := coalesce(p.preferred_name, p.first_name) || ' ' || p.last_name;
    expired := s.expired;
    blocked := s.blocked;
    owes := s.owes;
    fine_items := (SELECT count(*) FROM sip_patron_charges(p.id, s.balance_cents));
    recall_items := 0;
    balance_cents := s.balance_cents;
    fee_limit_cents := s.block_threshold_cents;
    hold_limit := v_hold_cap;
    charged_limit := v_loan_cap;
    email := p.email;
    phone := p.phone;
    address := nullif(concat_ws(', ', p.address_line1, p.address_line2, p.city,
                                concat_ws(' ', p.region, p.postal_code)), '');
    message := CASE
        WHEN s.expired THEN format('Your card expired on %s; please see the desk.',
                                   to_char(p.expires_on, 'FMMonth FMDD, YYYY'))
        WHEN s.blocked THEN 'Please see the desk about your card.'
        WHEN s.owes THEN format('You owe $%s; please see the desk or pay here.',
                                sip_money(s.balance_cents))
        WHEN v_at_loan_cap THEN format('You have %s items out, the most allowed.', s.loans_out)
        END;
    SELECT x.pin_hash, coalesce(x.locked_until > now(), false), x.failures
    INTO pin_hash, pin_locked, pin_failures
    FROM patron_pin x WHERE x.patron_id = p.id;
    pin_locked := coalesce(pin_locked, false);
    RETURN NEXT;
END
$$;

-- The charges a patron still owes, newest first: payments and waivers pay
-- the oldest charges first, so the outstanding ones are the newest whose
-- amounts add up to the balance (the oldest of them perhaps in part: owed
-- is what is left of it).
CREATE OR REPLACE FUNCTION sip_patron_charges(p_patron bigint, p_balance bigint)
RETURNS TABLE (ledger_id bigint, owed_cents bigint, item_id bigint, kind text, note text,
               at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.id, least(c.amount_cents, p_balance - c.before), c.item_id, c.kind, c.note, c.at
    FROM (SELECT x.*, coalesce(sum(x.amount_cents) OVER (ORDER BY x.at DESC, x.id DESC
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
          FROM patron_ledger x
          WHERE x.patron_id = p_patron AND x.amount_cents > 0) c
    WHERE p_balance > 0 AND c.before < p_balance
    ORDER BY c.at DESC, c.id DESC
$$;

-- One of a patron's lists for message 63 (the summary field): 'hold' ready
-- holds (AS: the barcode of the copy on the hold shelf), 'overdue' (AT) and
-- 'charged' (AU) open loans (barcodes, soonest due first), 'fine' charges
-- still owed (AV: "amount barcode-or-kind note"), 'recall' (BU: none: no
-- recalls), 'unavailable' holds not yet ready (CD: titles, oldest first).
-- Rows p_start to p_end, 1-based and inclusive, in that order.
CREATE OR REPLACE FUNCTION sip_patron_items(p_card text, p_kind text, p_start integer,
                                            p_end integer)
RETURNS TABLE (n integer, value text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id bigint := patron_resolve(p_card, NULL);
BEGIN
    IF v_id IS NULL OR p_start IS NULL OR p_end IS NULL OR p_start < 1 OR p_end < p_start THEN
        RETURN;
    END IF;
    IF p_kind NOT IN ('hold', 'overdue', 'charged', 'fine', 'recall', 'unavailable') THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:kind',
            MESSAGE = format('No list of patron items is called %s.', p_kind);
    END IF;
    RETURN QUERY
    SELECT x.n::integer, x.value FROM (
        SELECT row_number() OVER (ORDER BY l.due_at, l.id) AS n, i.barcode AS value
        FROM loan l JOIN item i ON i.id = l.item_id
        WHERE p_kind IN ('overdue', 'charged') AND l.patron_id = v_id AND l.returned_at IS NULL
          AND (p_kind = 'charged' OR l.due_at < now())
        UNION ALL
        SELECT row_number() OVER (ORDER BY h.shelf_expires_on, h.id), i.barcode
        FROM hold h JOIN item i ON i.id = h.captured_item_id
        WHERE p_kind = 'hold' AND h.patron_id = v_id AND h.status = 'ready'
        UNION ALL
        SELECT row_number() OVER (ORDER BY h.placed_at, h.id), b.title
        FROM hold h JOIN bib b ON b.id = h.bib_id
        WHERE p_kind = 'unavailable' AND h.patron_id = v_id
          AND h.status IN ('waiting', 'in_transit')
        UNION ALL
        SELECT row_number() OVER (ORDER BY c.at DESC, c.ledger_id DESC),
               concat_ws(' ', sip_money(c.owed_cents), coalesce(i.barcode, c.kind),
                         nullif(c.note, ''))
        FROM sip_patron_charges(v_id, (SELECT pc.balance_cents FROM patron_circ pc
                                       WHERE pc.patron_id = v_id)) c
        LEFT JOIN item i ON i.id = c.item_id
        WHERE p_kind = 'fine') x
    WHERE x.n BETWEEN p_start AND p_end
    ORDER BY x.n;
END
$$;

-- A SIP2 date ("YYYYMMDDZZZZHHMMSS") as a time: four blanks (or any zone
-- but Z) is library time, a Z in the last place of the zone UTC. NULL for
-- anything else (a kiosk's blank or broken date: the caller uses now).
CREATE OR REPLACE FUNCTION sip_parse_date(p_text text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_local timestamp;
BEGIN
    IF p_text IS NULL OR p_text !~ '^[0-9]{8}.{4}[0-9]{6}$' THEN
        RETURN NULL;
    END IF;
    -- Only a date of the right shape enters the block with a handler (each
    -- entry is a subtransaction).
    BEGIN
        v_local := to_timestamp(substr(p_text, 1, 8) || substr(p_text, 13, 6),
                                'YYYYMMDDHH24MISS')::timestamp;
    EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
        RETURN NULL;
    END;
    RETURN v_local AT TIME ZONE CASE WHEN substr(p_text, 12, 1) = 'Z' THEN 'UTC'
                                     ELSE library_setting_text('timezone') END;
END
$$;

-- The return date a "no block" checkin gives (09's third fixed field), never
-- after now; NULL when there is none or it is no date, so that circ_checkin
-- takes the moment the copy and its loan are locked, as at the desk.
CREATE OR REPLACE FUNCTION sip_return_date(p_text text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN d IS NULL THEN NULL ELSE least(d, now()) END FROM sip_parse_date(p_text) d
$$;

-- ---------------------------------------------------------------- items

-- An item as message 17 describes one; no row for an unknown barcode.
-- circulation_status, SIP's two digits: 01 other (damaged, withdrawn), 03
-- available, 04 charged, 06 in process, 08 waiting on the hold shelf, 10 in
-- transit, 11 claimed returned, 12 lost, 13 missing. (02 on order, 05, 07
-- recalled and 09 waiting to be re-shelved: Carrel has no such states.)
-- hold_queue: holds waiting for the title that this copy could fill.
-- destination: the branch code an item in transit is going to. due: the
-- open loan's due date (sip_date). message: a sentence for the screen.
CREATE OR REPLACE FUNCTION sip_item(p_barcode text, p_branch integer)
RETURNS TABLE (barcode text, title text, circulation_status text, due text,
               hold_queue integer, owner text, current text, media_type text,
               destination text, message text)
LANGUAGE sql STABLE AS $$
    SELECT i.barcode, b.title,
           CASE i.status
               WHEN 'available' THEN '03' WHEN 'checked_out' THEN '04'
               WHEN 'in_processing' THEN '06' WHEN 'on_hold_shelf' THEN '08'
               WHEN 'in_transit' THEN '10' WHEN 'claimed_returned' THEN '11'
               WHEN 'lost' THEN '12' WHEN 'missing' THEN '13'
               ELSE '01' END,
           sip_date(l.due_at),
           (SELECT count(*)::integer FROM hold h
            WHERE h.bib_id = i.bib_id AND hold_eligible(h)
              AND (h.item_id IS NULL OR h.item_id = i.id)),
           ob.code, cb.code, sip_media_type(i.item_type), tb.code,
           CASE i.status
               WHEN 'damaged' THEN 'This item is damaged; please take it to the desk.'
               WHEN 'withdrawn' THEN 'This item has been withdrawn; please take it to the desk.'
               WHEN 'on_hold_shelf' THEN 'This item is waiting for a patron who asked for it.'
               WHEN 'in_transit' THEN format('This item is on its way to %s.', tb.name)
               END
    FROM item i
    JOIN bib b ON b.id = i.bib_id
    JOIN branch ob ON ob.id = i.owning_branch_id
    JOIN branch cb ON cb.id = i.current_branch_id
    LEFT JOIN loan l ON l.item_id = i.id AND l.returned_at IS NULL
    LEFT JOIN transit t ON t.item_id = i.id AND t.received_at IS NULL AND t.cancelled_at IS NULL
    LEFT JOIN branch tb ON tb.id = t.to_branch_id
    WHERE i.barcode = p_barcode
$$;

-- Would checking this copy in at p_branch set it aside for a hold? True
-- when it is set aside already (ready or on its way) or when a waiting hold
-- could take it (the test hold_capture starts with). A cheap read without
-- locks, for the logins whose sorters must not capture holds
-- (held_checkin_blocked): such a checkin is not done at all, so nothing
-- happens between this answer and the desk's checkin.
CREATE OR REPLACE FUNCTION sip_checkin_held(p_barcode text, p_branch integer) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((
        SELECT EXISTS (SELECT 1 FROM hold h WHERE h.captured_item_id = i.id
                                             AND h.status IN ('in_transit', 'ready'))
            OR (item_can_fill_holds(i)
                AND i.status NOT IN ('withdrawn', 'damaged', 'in_processing')
                AND EXISTS (SELECT 1 FROM hold h
                            WHERE h.bib_id = i.bib_id AND hold_eligible(h)
                              AND (h.item_id IS NULL OR h.item_id = i.id)))
        FROM item i WHERE i.barcode = p_barcode), false)
$$;

-- ---------------------------------------------------------------- renew all

-- Renew every open loan of the patron p_card names (message 65), each
-- through circ_renew's rules with a key of its own derived from the
-- message's key and the loan (md5 -> uuid), so a loan is renewed once
-- however often the message comes; the message's own key stores the whole
-- answer, so a resent 65 gets the same answer. Loans are locked copy first,
-- soonest due first, as circ_renew does for all of a patron's loans.
-- One row per loan: its barcode, whether it was renewed, the reason and
-- sentence of a refusal, the new due date (sip_date).
CREATE OR REPLACE FUNCTION sip_renew_all(p_key uuid, p_staff bigint, p_workstation bigint,
                                         p_branch integer, p_card text)
RETURNS TABLE (barcode text, renewed boolean, reason text, message text, due text)
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    v_patron bigint;
    v_loan record;
    v_results jsonb := '[]';
    r record;
BEGIN
    SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'sip_renew_all');
    IF v_key.stored IS NOT NULL THEN
        RETURN QUERY SELECT x.barcode, x.renewed, x.reason, x.message, x.due
                     FROM jsonb_to_recordset(v_key.stored)
                          AS x(barcode text, renewed boolean, reason text, message text,
                               due text);
        RETURN;
    END IF;
    v_patron := patron_resolve(p_card, NULL);
    IF v_patron IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'patron_not_found',
            MESSAGE = format('No patron has card %s.', p_card);
    END IF;
    FOR v_loan IN
        SELECT l.id, i.barcode FROM loan l JOIN item i ON i.id = l.item_id
        WHERE l.patron_id = v_patron AND l.returned_at IS NULL
        ORDER BY l.due_at, l.id
        FOR NO KEY UPDATE OF i FOR UPDATE OF l
    LOOP
        SELECT * INTO r FROM circ_renew(md5(p_key::text || '/' || v_loan.id)::uuid, p_staff,
                                        p_workstation, p_branch, p_card, v_loan.barcode,
                                        false, NULL, false);
        barcode := v_loan.barcode;
        renewed := coalesce(r.renewed, false);
        reason := r.reason;
        message := r.message;
        due := sip_date(r.due_at);
        v_results := v_results || jsonb_build_object('barcode', barcode, 'renewed', renewed,
                                                     'reason', reason, 'message', message,
                                                     'due', due);
        RETURN NEXT;
    END LOOP;
    PERFORM request_store(p_key, v_results);
END
$$;

-- ---------------------------------------------------------------- block patron

-- Message 01 (Block Patron): the kiosk asks the library to block the card
-- p_card names (a card left in the machine, a card it believes stolen).
-- The block goes through patron_block_set, so it is audited like a desk's,
-- placed by the kiosk's staff account, with the reason "Blocked by
-- self-check: " and the kiosk's message (AL), and "(card retained)" when
-- the kiosk kept the card. The message's key makes a resent 01 place one
-- block; a second 01 with the same reason while that block is still active
-- places none. True when a block was placed by this call (or by the first
-- of the resends). Refused (CR404 patron_not_found) for an unknown card.
CREATE OR REPLACE FUNCTION sip_block_patron(p_key uuid, p_staff bigint, p_workstation bigint,
                                            p_card text, p_message text, p_retained boolean)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    v_patron bigint;
    v_reason text;
    v_placed boolean := false;
BEGIN
    SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'sip_block_patron');
    IF v_key.stored IS NOT NULL THEN
        RETURN (v_key.stored ->> 'placed')::boolean;
    END IF;
    v_patron := patron_resolve(p_card, NULL);
    IF v_patron IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'patron_not_found',
            MESSAGE = format('No patron has card %s.', p_card);
    END IF;
    v_reason := 'Blocked by self-check: '
                || coalesce(nullif(left(btrim(p_message), 400), ''), 'no reason given')
                || CASE WHEN p_retained THEN ' (card retained)' ELSE '' END;
    IF NOT EXISTS (SELECT 1 FROM patron_block b WHERE b.patron_id = v_patron
                                                   AND b.lifted_at IS NULL
                                                   AND b.reason = v_reason) THEN
        PERFORM 1 FROM patron_block_set(p_staff, p_workstation, p_card, false, v_reason, NULL);
        v_placed := true;
    END IF;
    PERFORM request_store(p_key, jsonb_build_object('placed', v_placed));
    RETURN v_placed;
END
$$;
