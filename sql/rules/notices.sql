-- Notice rules: templates rendered (notice_render), notices queued for a
-- patron (notice_queue) or as a ticket's reply (notice_queue_reply) and
-- withdrawn when moot, claimed for e-mail, marked sent or exported, and the
-- daily work (holds_daily: expiries, courtesy and overdue notices, clean-up).
-- Called by server/notices.c; notice_queue by the hold and room rules,
-- notice_queue_reply by the ticket rules.
--
-- A ticket's reply may have no patron (an e-mail address or phone number
-- given for the ticket alone): every query here reads notice.patron_id as
-- possibly NULL (none joins patron), and ticket replies are kept as long as
-- their ticket keeps its text (tickets_tick removes them when it anonymises
-- the ticket), not by notice_keep_days.

-- Fill a template's placeholders in one pass: a value is never scanned
-- again, so a title such as "The {date} Book" stays as it is.
CREATE OR REPLACE FUNCTION notice_render(p_text text, p_values jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_out text := '';
    v_rest text := p_text;
    v_at integer;
    v_name text;
BEGIN
    LOOP
        v_at := regexp_instr(v_rest, '\{(name|title|branch|date|library|room|time'
                                     '|subject|ticket|text|staff|queue)\}');
        EXIT WHEN v_at = 0;
        v_name := substring(v_rest FROM v_at + 1 FOR position('}' IN substring(v_rest FROM v_at)) - 2);
        v_out := v_out || left(v_rest, v_at - 1) || coalesce(p_values ->> v_name, '');
        v_rest := substring(v_rest FROM v_at + length(v_name) + 2);
    END LOOP;
    RETURN v_out || v_rest;
END
$$;

-- Queue one notice for a patron by their chosen channel; nothing when the
-- patron asked for none or has no address for it. Idempotent. Returns 1 when
-- a notice was queued, 0 otherwise. A room booking's notice (p_booking) also
-- fills {room} and {time} (its local start and end) from the booking.
DROP FUNCTION IF EXISTS notice_queue(bigint, text, bigint, bigint, date, text, integer);
CREATE OR REPLACE FUNCTION notice_queue(p_patron bigint, p_kind text, p_hold bigint, p_loan bigint,
                             p_date date, p_title text, p_branch integer,
                             p_booking bigint DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    p patron;
    t notice_template;
    v_address text;
    v_values jsonb;
    v_rows integer;
    v_room text := '';
    v_time text := '';
BEGIN
    IF p_booking IS NOT NULL THEN
        SELECT r.name, local_hhmm(lower(k.during)) || '-' || local_hhmm(upper(k.during))
        INTO v_room, v_time
        FROM room_booking k JOIN room r ON r.id = k.room_id WHERE k.id = p_booking;
    END IF;
    SELECT * INTO p FROM patron WHERE id = p_patron;
    v_address := CASE p.contact_channel WHEN 'email' THEN p.email
                                        WHEN 'sms' THEN p.phone WHEN 'phone' THEN p.phone END;
    IF v_address IS NULL THEN
        RETURN 0;
    END IF;
    SELECT * INTO t FROM notice_template WHERE kind = p_kind;
    v_values := jsonb_build_object(
        'name', coalesce(p.preferred_name, p.first_name) || ' ' || p.last_name,
        'title', coalesce(p_title, ''),
        'branch', coalesce((SELECT name FROM branch WHERE id = p_branch), ''),
        'date', coalesce(to_char(p_date, 'FMDay, FMMonth FMDD'), ''),
        'library', library_setting_text('library_name'),
        'room', coalesce(v_room, ''), 'time', coalesce(v_time, ''));
    INSERT INTO notice (patron_id, kind, channel, address, hold_id, loan_id, about_date, subject,
                        body, booking_id)
    VALUES (p_patron, p_kind, p.contact_channel, v_address, p_hold, p_loan, p_date,
            notice_render(t.subject, v_values), notice_render(t.body, v_values), p_booking)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;

-- Queue a ticket's reply (ticket_message p_message) to p_address by p_channel
-- ('email', or 'sms' for the SMS export), for the patron p_patron if there
-- is one. p_values fills the ticket_reply template ({subject} {ticket}
-- {text} {staff} {queue}; {library} and {name} are added here). Idempotent
-- per message (notice_once). Returns the notice's id.
CREATE OR REPLACE FUNCTION notice_queue_reply(p_message bigint, p_patron bigint, p_channel text,
                                              p_address text, p_values jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    t notice_template;
    v_values jsonb;
    v_id bigint;
BEGIN
    SELECT * INTO t FROM notice_template WHERE kind = 'ticket_reply';
    v_values := p_values || jsonb_build_object(
        'library', library_setting_text('library_name'),
        'name', coalesce((SELECT coalesce(p.preferred_name, p.first_name) || ' ' || p.last_name
                          FROM patron p WHERE p.id = p_patron), ''));
    INSERT INTO notice (patron_id, kind, channel, address, ticket_message_id, subject, body)
    VALUES (p_patron, 'ticket_reply', p_channel, p_address, p_message,
            notice_render(t.subject, v_values), notice_render(t.body, v_values))
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        SELECT n.id INTO v_id FROM notice n WHERE n.ticket_message_id = p_message;
    END IF;
    RETURN v_id;
END
$$;

-- Expire holds whose shelf time or "not needed after" date has passed, queue
-- due notices, and forget what privacy says to forget. Idempotent: the daemon
-- runs it on a timer (hourly) and on request.
CREATE OR REPLACE FUNCTION holds_daily(OUT expired_holds integer, OUT generated integer)
LANGUAGE plpgsql AS $$
DECLARE
    h record;
    v_today date := library_today();
BEGIN
    expired_holds := 0;
    FOR h IN SELECT x.id, x.bib_id FROM hold x
             WHERE (x.status = 'ready' AND x.shelf_expires_on < v_today)
                OR (x.status = 'waiting' AND x.not_needed_after < v_today)
             ORDER BY x.bib_id
    LOOP
        PERFORM 1 FROM bib WHERE id = h.bib_id FOR UPDATE;
        -- The copy stays on the hold shelf until staff clear it (clearing list).
        UPDATE hold SET status = 'expired', closed_at = now(), target_item_id = NULL
        WHERE id = h.id AND status IN ('ready', 'waiting');
        expired_holds := expired_holds + 1;
        PERFORM hold_retarget(h.bib_id);
    END LOOP;

    generated := 0;
    SELECT generated + coalesce(sum(notice_queue(x.patron_id, 'hold_expiring', x.id, NULL,
                                                       x.shelf_expires_on, b.title,
                                                       x.pickup_branch_id)), 0)
    INTO generated FROM hold x JOIN bib b ON b.id = x.bib_id
    WHERE x.status = 'ready'
      AND x.shelf_expires_on - library_setting_text('notice_expiry_warning_days')::integer
          <= v_today;
    -- Courtesy reminders are for loans of days, not a four-hour laptop loan.
    SELECT generated + coalesce(sum(notice_queue(l.patron_id, 'courtesy', NULL, l.id,
                                                       library_local_date(l.due_at), b.title,
                                                       l.checkout_branch_id)), 0)
    INTO generated FROM loan l JOIN item i ON i.id = l.item_id JOIN bib b ON b.id = i.bib_id
    WHERE l.returned_at IS NULL AND l.due_at >= now()
      AND l.due_at - l.checkout_at >= interval '1 day'
      AND library_local_date(l.due_at) - library_setting_text('notice_courtesy_days')::integer
          <= v_today;
    SELECT generated + coalesce(sum(notice_queue(l.patron_id, 'overdue_1', NULL, l.id,
                                                       library_local_date(l.due_at), b.title,
                                                       l.checkout_branch_id)), 0)
    INTO generated FROM loan l JOIN item i ON i.id = l.item_id JOIN bib b ON b.id = i.bib_id
    WHERE l.returned_at IS NULL
      AND library_local_date(l.due_at) + library_setting_text('notice_overdue_1_days')::integer
          <= v_today;
    -- The second notice follows the first by the days between them, even for a
    -- loan that was already long overdue when the first went out.
    SELECT generated + coalesce(sum(notice_queue(l.patron_id, 'overdue_2', NULL, l.id,
                                                       library_local_date(l.due_at), b.title,
                                                       l.checkout_branch_id)), 0)
    INTO generated FROM loan l JOIN item i ON i.id = l.item_id JOIN bib b ON b.id = i.bib_id
    JOIN notice first ON first.loan_id = l.id AND first.kind = 'overdue_1'
    WHERE l.returned_at IS NULL
      AND library_local_date(l.due_at) + library_setting_text('notice_overdue_2_days')::integer
          <= v_today
      AND library_local_date(first.created_at)
          + (library_setting_text('notice_overdue_2_days')::integer
             - library_setting_text('notice_overdue_1_days')::integer) <= v_today;

    -- Notices whose sender died mid-send go back to the queue.
    UPDATE notice SET status = 'pending'
    WHERE status = 'sending' AND claimed_at < now() - interval '10 minutes';
    -- Privacy: a notice names a title. Once its loan or hold has ended, it is
    -- of no further use and goes (unsent ones too: nobody needs them now).
    DELETE FROM notice n WHERE n.status <> 'sending' AND notice_moot(n);
    -- Older than notice_keep_days: the text and address go. The row stays while
    -- its loan or hold is open, so the same notice is never generated twice;
    -- one about neither goes entirely. A ticket's reply stays with its ticket
    -- (the ticket shows its address and delivery) until tickets_tick
    -- anonymises the ticket (ticket_retention_days after closing).
    DELETE FROM notice
    WHERE status IN ('sent', 'exported', 'failed') AND loan_id IS NULL AND hold_id IS NULL
      AND ticket_message_id IS NULL
      AND coalesce(sent_at, created_at)
          < now() - make_interval(days => library_setting_text('notice_keep_days')::integer);
    UPDATE notice SET subject = '', body = '', address = '', error = NULL
    WHERE status IN ('sent', 'exported', 'failed') AND subject <> ''
      AND ticket_message_id IS NULL
      AND coalesce(sent_at, created_at)
          < now() - make_interval(days => library_setting_text('notice_keep_days')::integer);
    PERFORM request_log_expire();
    PERFORM offline_exception_expire();
END
$$;

-- A notice whose loan has ended or whose hold has closed: nobody needs it now.
CREATE OR REPLACE FUNCTION notice_moot(n notice) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM loan l WHERE l.id = n.loan_id AND l.returned_at IS NOT NULL)
        OR EXISTS (SELECT 1 FROM hold h WHERE h.id = n.hold_id
                                          AND h.status IN ('filled', 'cancelled', 'expired'))
$$;

-- Email notices for the sender: claimed in batches so two senders never send one twice.
CREATE OR REPLACE FUNCTION notice_claim_email(p_limit integer)
RETURNS TABLE (id bigint, address text, subject text, body text)
LANGUAGE sql AS $$
    UPDATE notice n SET status = 'sending', attempts = attempts + 1, claimed_at = now()
    WHERE n.id IN (SELECT x.id FROM notice x
                   WHERE x.channel = 'email' AND x.status = 'pending'
                     -- a refused message waits longer after each try (5, 10, 15,
                     -- 20 minutes), not five tries in one pass
                     AND (x.claimed_at IS NULL
                          OR x.claimed_at < now() - x.attempts * interval '5 minutes')
                     AND NOT notice_moot(x)
                   ORDER BY x.id LIMIT p_limit FOR UPDATE SKIP LOCKED)
    RETURNING n.id, n.address, n.subject, n.body
$$;

-- Claimed email notices the sender never tried (shutdown, lost relay) go
-- back to the queue, and their claim's attempt is given back. The number
-- put back.
CREATE OR REPLACE FUNCTION notice_release(p_ids bigint[]) RETURNS integer
LANGUAGE sql AS $$
    WITH back AS (
        UPDATE notice SET status = 'pending', attempts = greatest(attempts - 1, 0),
                          claimed_at = NULL
         WHERE id = ANY(p_ids) AND status = 'sending'
        RETURNING 1)
    SELECT count(*)::integer FROM back
$$;

-- What an SMS/phone export takes, a page at a time (after p_after, by id):
-- pending and not moot. Nothing is marked here; the client marks what it
-- wrote (notice_mark_exported), so a lost answer or a full disk never loses
-- a notice.
CREATE OR REPLACE FUNCTION notice_export_page(p_channel text, p_limit integer, p_after bigint)
RETURNS SETOF notice
LANGUAGE sql STABLE AS $$
    SELECT n.* FROM notice n
     WHERE n.status = 'pending' AND n.channel IN ('sms', 'phone') AND NOT notice_moot(n)
       AND (p_channel IS NULL OR n.channel = p_channel) AND n.id > p_after
     ORDER BY n.id LIMIT p_limit
$$;

-- An export was written: mark its notices. Keyed, so a retry answers as the
-- first call did.
CREATE OR REPLACE FUNCTION notice_mark_exported(p_key uuid, p_staff bigint, p_ids bigint[])
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    v_marked integer;
BEGIN
    SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'notice_mark_exported');
    IF v_key.stored IS NOT NULL THEN
        RETURN (v_key.stored ->> 'marked')::integer;
    END IF;
    UPDATE notice SET status = 'exported', sent_at = now()
    WHERE id = ANY (p_ids) AND status = 'pending' AND channel IN ('sms', 'phone');
    GET DIAGNOSTICS v_marked = ROW_COUNT;
    PERFORM request_store(p_key, jsonb_build_object('marked', v_marked));
    RETURN v_marked;
END
$$;

CREATE OR REPLACE FUNCTION notice_done(p_id bigint, p_ok boolean, p_error text) RETURNS void
LANGUAGE sql AS $$
    UPDATE notice SET status = CASE WHEN p_ok THEN 'sent'
                                    WHEN attempts >= 5 THEN 'failed' ELSE 'pending' END,
        sent_at = CASE WHEN p_ok THEN now() END, error = p_error
    -- A notice put back in the queue meanwhile (its sender looked dead) is not
    -- this sender's any more.
    WHERE id = p_id AND status = 'sending'
$$;

-- A hold's "ready" notice, or its shelf expiry warning, not sent yet, is no
-- longer true once its copy has left the hold shelf.
CREATE OR REPLACE FUNCTION hold_notices_withdraw(p_hold bigint) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM notice WHERE hold_id = p_hold AND status = 'pending'
                         AND kind IN ('hold_ready', 'hold_expiring')
$$;
