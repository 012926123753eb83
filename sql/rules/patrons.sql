-- Patron rules: what staff see of a patron (the patron_out view), finding a
-- patron by card, saving a record, blocks, merging two records, search and
-- reading history, and the activity dates statistics count (patron_activity_touch).
-- Called by server/patrons.c; patron_resolve and
-- patron_short_name by the circulation and hold rules too.

-- A LIKE pattern matching p_text anywhere, with LIKE's wildcards escaped.
CREATE OR REPLACE FUNCTION patron_like_infix(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '%' || regexp_replace(p_text, '([\\%_])', '\\\1', 'g') || '%'
$$;

-- What staff see of a patron: every column a reply carries, in the order
-- server/patrons.c reads them. `outcome` is 'ok' here; patron_save replaces it
-- to say why it returns rows without saving.
CREATE OR REPLACE VIEW patron_out AS
SELECT 'ok'::text AS outcome,
       p.id, p.card, p.first_name, p.last_name, p.preferred_name,
       to_char(p.birth_date, 'YYYY-MM-DD') AS birth_date,
       p.address_line1, p.address_line2, p.city, p.region, p.postal_code,
       p.phone, p.email, p.contact_channel, b.code AS home_branch, p.category,
       to_char(p.expires_on, 'YYYY-MM-DD') AS expires_on,
       p.staff_notes, p.desk_alert, p.keep_history, p.version,
       api_time(p.created_at) AS created_at,
       api_time(p.updated_at) AS updated_at,
       coalesce((SELECT array_agg(pc.card ORDER BY pc.added_at, pc.card)
                 FROM patron_card pc WHERE pc.patron_id = p.id), '{}') AS former_cards,
       p.expires_on < current_date AS expired,
       coalesce(bl.ids, '{}') AS block_ids,
       coalesce(bl.reasons, '{}') AS block_reasons,
       coalesce(bl.placed_by, '{}') AS block_placed_by,
       coalesce(bl.placed_at, '{}') AS block_placed_at,
       c.name AS category_name, b.name AS home_branch_name
FROM patron p
JOIN branch b ON b.id = p.home_branch_id
JOIN patron_category c ON c.code = p.category
LEFT JOIN LATERAL (
    SELECT array_agg(k.id ORDER BY k.placed_at, k.id) AS ids,
           array_agg(k.reason ORDER BY k.placed_at, k.id) AS reasons,
           array_agg(coalesce(s.username, '') ORDER BY k.placed_at, k.id) AS placed_by,
           array_agg(api_time(k.placed_at)
                     ORDER BY k.placed_at, k.id) AS placed_at
    FROM patron_block k LEFT JOIN staff s ON s.id = k.placed_by
    WHERE k.patron_id = p.id AND k.lifted_at IS NULL) bl ON true;

-- patron_out rows for p_ids, in that order, with outcome p_outcome.
CREATE OR REPLACE FUNCTION patron_out_as(p_outcome text, p_ids bigint[]) RETURNS SETOF patron_out
LANGUAGE sql STABLE AS $$
    SELECT (jsonb_populate_record(o, jsonb_build_object('outcome', p_outcome))).*
    FROM patron_out o WHERE o.id = ANY (p_ids)
    ORDER BY array_position(p_ids, o.id)
$$;

-- The patron a card (or id) names today: an unmerged record with that card,
-- or the record a merged card now belongs to. NULL if none.
-- PL/pgSQL for its kept plan (see library_setting_text, settings.sql).
CREATE OR REPLACE FUNCTION patron_resolve(p_card text, p_id bigint) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(
        (SELECT p.id FROM patron p WHERE p.card = p_card AND p.merged_into IS NULL),
        (SELECT pc.patron_id FROM patron_card pc WHERE pc.card = p_card),
        (SELECT coalesce(p.merged_into, p.id) FROM patron p WHERE p.id = p_id));
END
$$;

-- patron_resolve, or CR404 naming what was looked for.
CREATE OR REPLACE FUNCTION patron_resolve_strict(p_card text, p_id bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id bigint := patron_resolve(p_card, p_id);
BEGIN
    IF v_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'patron',
            MESSAGE = CASE WHEN p_card IS NOT NULL
                           THEN format('No patron has card %s.', p_card)
                           ELSE format('There is no patron with id %s.', p_id) END;
    END IF;
    RETURN v_id;
END
$$;

-- The audited view of a record: what staff entered, with the home branch as
-- its code, without bookkeeping and derived columns.
CREATE OR REPLACE FUNCTION patron_doc(p patron) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(p) - '{id,version,created_at,updated_at,phone_digits,search_name,home_branch_id,merged_into}'::text[]
           || jsonb_build_object('home_branch', (SELECT b.code FROM branch b
                                                 WHERE b.id = p.home_branch_id))
$$;

-- A YYYY-MM-DD date from a request, or CR400 for p_field. NULL stays NULL.
CREATE OR REPLACE FUNCTION patron_date(p_text text, p_field text, p_what text) RETURNS date
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_text IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_text ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
        BEGIN
            RETURN p_text::date;
        EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
            NULL;
        END;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
        MESSAGE = format('%s is not a valid %s: write it as YYYY-MM-DD, e.g. 2031-06-30.',
                         p_text, p_what);
END
$$;

-- Trimmed text from a request; empty becomes NULL.
CREATE OR REPLACE FUNCTION patron_text(p_doc jsonb, p_key text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT nullif(btrim(p_doc ->> p_key, E' \t\r\n'), '')
$$;

-- Raise CR400 for p_field unless p_value is at most p_max characters.
CREATE OR REPLACE FUNCTION patron_check_length(p_value text, p_max integer, p_field text, p_what text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF length(p_value) > p_max THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
            MESSAGE = format('The %s is too long (at most %s characters).', p_what, p_max);
    END IF;
    IF p_value ~ '[[:cntrl:]]' AND p_field NOT IN ('staff_notes', 'desk_alert') THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:' || p_field,
            MESSAGE = format('The %s contains control characters.', p_what);
    END IF;
END
$$;

-- Turn a PatronSave's patron (as JSON, field names as in proto/patron.proto)
-- into a validated patron row. p_old is the current record for an edit, NULL
-- for a create. Raises CR400 with DETAIL 'field:<name>' for the first invalid
-- field; never writes.
CREATE OR REPLACE FUNCTION patron_from_doc(p_doc jsonb, p_old patron) RETURNS patron
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r patron;
    v_channel text;
    v_branch text := patron_text(p_doc, 'home_branch');
    v_digits text;
BEGIN
    IF p_old.id IS NOT NULL THEN
        r := p_old;
    END IF;

    r.card := patron_text(p_doc, 'card');
    -- The card rule applies to new cards; a legacy card on file stays valid.
    IF p_old.id IS NULL OR r.card IS DISTINCT FROM p_old.card THEN
        PERFORM barcode_check('patron', r.card);
    END IF;

    r.first_name := patron_text(p_doc, 'first_name');
    IF r.first_name IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:first_name',
            MESSAGE = 'A first name is required.';
    END IF;
    PERFORM patron_check_length(r.first_name, 100, 'first_name', 'first name');
    r.last_name := patron_text(p_doc, 'last_name');
    IF r.last_name IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:last_name',
            MESSAGE = 'A last name is required.';
    END IF;
    PERFORM patron_check_length(r.last_name, 100, 'last_name', 'last name');
    r.preferred_name := patron_text(p_doc, 'preferred_name');
    PERFORM patron_check_length(r.preferred_name, 100, 'preferred_name', 'preferred name');

    r.birth_date := patron_date(patron_text(p_doc, 'birth_date'), 'birth_date', 'birth date');
    IF r.birth_date < DATE '1900-01-01' OR r.birth_date > current_date THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:birth_date',
            MESSAGE = format('A birth date of %s cannot be right.', r.birth_date);
    END IF;

    r.address_line1 := patron_text(p_doc, 'address_line1');
    PERFORM patron_check_length(r.address_line1, 200, 'address_line1', 'address');
    r.address_line2 := patron_text(p_doc, 'address_line2');
    PERFORM patron_check_length(r.address_line2, 200, 'address_line2', 'second address line');
    r.city := patron_text(p_doc, 'city');
    PERFORM patron_check_length(r.city, 100, 'city', 'city');
    r.region := patron_text(p_doc, 'region');
    PERFORM patron_check_length(r.region, 100, 'region', 'state');
    r.postal_code := patron_text(p_doc, 'postal_code');
    PERFORM patron_check_length(r.postal_code, 20, 'postal_code', 'postal code');

    r.phone := patron_text(p_doc, 'phone');
    v_digits := patron_phone_digits(r.phone);
    IF r.phone IS NOT NULL AND (r.phone !~ '^\+?[0-9 ().-]{7,30}$'
                                OR v_digits !~ '^[0-9]{7,15}$') THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:phone',
            MESSAGE = format('%s is not a phone number: use 7 to 15 digits, with spaces, '
                             'dashes, dots, brackets or a leading + if you like.', r.phone);
    END IF;

    r.email := lower(patron_text(p_doc, 'email'));
    IF r.email IS NOT NULL AND (length(r.email) > 254 OR
            r.email !~ '^[^@[:space:]]+@[^@[:space:].]+(\.[^@[:space:].]+)+$') THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:email',
            MESSAGE = format('%s is not an email address (name@example.org).', r.email);
    END IF;

    v_channel := coalesce(nullif(p_doc ->> 'contact_channel', 'unspecified'),
                          CASE WHEN r.email IS NOT NULL THEN 'email'
                               WHEN r.phone IS NOT NULL THEN 'phone'
                               ELSE 'none' END);
    IF v_channel NOT IN ('email', 'sms', 'phone', 'none') THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:contact_channel',
            MESSAGE = 'The preferred contact is email, sms, phone or none.';
    END IF;
    IF v_channel = 'email' AND r.email IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:contact_channel',
            MESSAGE = 'Contact by email needs an email address.';
    END IF;
    IF v_channel IN ('sms', 'phone') AND r.phone IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:contact_channel',
            MESSAGE = format('Contact by %s needs a phone number.',
                             CASE v_channel WHEN 'sms' THEN 'text message' ELSE 'phone' END);
    END IF;
    r.contact_channel := v_channel;

    IF v_branch IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:home_branch',
            MESSAGE = 'A home branch is required.';
    END IF;
    SELECT b.id INTO r.home_branch_id FROM branch b WHERE b.code = v_branch;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:home_branch',
            MESSAGE = format('There is no branch with code %s.', v_branch);
    END IF;

    r.category := patron_text(p_doc, 'category');
    IF r.category IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:category',
            MESSAGE = 'A patron category is required (see carrel patron categories).';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM patron_category c WHERE c.code = r.category) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:category',
            MESSAGE = format('There is no patron category %s (see carrel patron categories).',
                             r.category);
    END IF;

    r.expires_on := patron_date(patron_text(p_doc, 'expires_on'), 'expires_on', 'expiry date');
    IF r.expires_on IS NULL AND p_old.id IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:expires_on',
            MESSAGE = 'An expiry date is required.';
    END IF;
    IF r.expires_on IS NULL THEN
        SELECT current_date + make_interval(years => c.card_years) INTO r.expires_on
        FROM patron_category c WHERE c.code = r.category;
    END IF;
    IF r.expires_on > current_date + interval '10 years'
       OR r.expires_on < DATE '1990-01-01' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:expires_on',
            MESSAGE = format('An expiry date of %s cannot be right (at most ten years ahead).',
                             r.expires_on);
    END IF;
    IF p_old.id IS NULL AND r.expires_on <= current_date THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:expires_on',
            MESSAGE = 'A new card must expire after today.';
    END IF;
    IF r.birth_date >= r.expires_on THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:birth_date',
            MESSAGE = 'The birth date is after the expiry date.';
    END IF;

    r.staff_notes := patron_text(p_doc, 'staff_notes');
    PERFORM patron_check_length(r.staff_notes, 4000, 'staff_notes', 'staff note');
    r.desk_alert := patron_text(p_doc, 'desk_alert');
    PERFORM patron_check_length(r.desk_alert, 500, 'desk_alert', 'desk alert');
    r.keep_history := coalesce((p_doc ->> 'keep_history')::boolean, false);
    RETURN r;
END
$$;

-- Refuse a change a clerk may not make. Clerks (without the account
-- permission) may create patrons and change contact details, the home branch
-- and the history choice; renewing a card is allowed up to today plus the
-- category's card years. Category (on an edit), notes, alert and any other
-- expiry date need a librarian or above.
CREATE OR REPLACE FUNCTION patron_check_account_fields(p_new patron, p_old patron) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_years integer;
    v_limit date;
    v_field text;
BEGIN
    SELECT c.card_years INTO v_years FROM patron_category c WHERE c.code = p_new.category;
    v_limit := current_date + make_interval(years => v_years);
    IF p_old.id IS NOT NULL AND p_new.category IS DISTINCT FROM p_old.category THEN
        v_field := 'category';
    ELSIF p_new.staff_notes IS DISTINCT FROM p_old.staff_notes THEN
        v_field := 'staff notes';
    ELSIF p_new.desk_alert IS DISTINCT FROM p_old.desk_alert THEN
        v_field := 'desk alert';
    END IF;
    IF v_field IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'role',
            MESSAGE = format('Only a librarian or above may change a patron''s %s.', v_field);
    END IF;
    IF p_old.id IS NULL AND p_new.expires_on > v_limit THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'role',
            MESSAGE = format('A new %s card may run to %s at most; only a librarian or above '
                             'may set a later expiry date.', p_new.category, v_limit);
    END IF;
    IF p_old.id IS NOT NULL AND p_new.expires_on IS DISTINCT FROM p_old.expires_on
       AND (p_new.expires_on < p_old.expires_on OR p_new.expires_on > v_limit) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'role',
            MESSAGE = format('A renewal may extend the expiry date to %s at most; only a '
                             'librarian or above may set another expiry date.', v_limit);
    END IF;
END
$$;

-- Unmerged patrons that look like p: same folded first and last name and
-- birth date, or the same email, or the same phone digits. At most 10.
CREATE OR REPLACE FUNCTION patron_lookalikes(p patron) RETURNS bigint[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(x.id ORDER BY x.last_name, x.first_name, x.id), '{}')
    FROM (SELECT o.id, o.last_name, o.first_name FROM patron o
          WHERE o.merged_into IS NULL AND o.id IS DISTINCT FROM p.id
            AND ((p.birth_date IS NOT NULL AND o.birth_date = p.birth_date
                  AND patron_fold(o.first_name) = patron_fold(p.first_name)
                  AND patron_fold(o.last_name) = patron_fold(p.last_name))
                 OR o.email = p.email
                 OR o.phone_digits = patron_phone_digits(p.phone))
          ORDER BY o.last_name, o.first_name, o.id LIMIT 10) x
$$;

-- Create (no "id" in p_doc) or edit a patron. Returns patron_out rows:
--   outcome 'ok': the saved record;
--   outcome 'stale_version': the current record (nothing saved);
--   outcome 'possible_duplicate': the look-alikes (nothing saved).
-- p_may_edit_account: the caller holds PERM_PATRON_EDIT_ACCOUNT (decided by
-- carreld's permission table).
CREATE OR REPLACE FUNCTION patron_save(p_staff bigint, p_workstation bigint, p_may_edit_account boolean,
                            p_allow_duplicate boolean, p_doc jsonb)
RETURNS SETOF patron_out
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := (p_doc ->> 'id')::bigint;
    v_old patron;
    v_new patron;
    v_dups bigint[];
    v_changes jsonb;
    v_merged_card text;
BEGIN
    IF v_id IS NOT NULL THEN
        SELECT * INTO v_old FROM patron WHERE id = v_id FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'patron',
                MESSAGE = format('There is no patron with id %s.', v_id);
        END IF;
        IF v_old.merged_into IS NOT NULL THEN
            SELECT p.card INTO v_merged_card FROM patron p WHERE p.id = v_old.merged_into;
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'merged',
                MESSAGE = format('Card %s was merged into card %s; edit that record.',
                                 v_old.card, v_merged_card);
        END IF;
        IF p_doc ->> 'version' IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:version',
                MESSAGE = 'An edit must carry the version of the record it was made from.';
        END IF;
        IF (p_doc ->> 'version')::integer <> v_old.version THEN
            RETURN QUERY SELECT * FROM patron_out_as('stale_version', ARRAY[v_id]);
            RETURN;
        END IF;
    END IF;

    v_new := patron_from_doc(p_doc, v_old);
    IF v_new.card IS DISTINCT FROM v_old.card
       AND EXISTS (SELECT 1 FROM patron p WHERE p.card = v_new.card
                   UNION ALL SELECT 1 FROM patron_card pc WHERE pc.card = v_new.card) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'card_taken',
            MESSAGE = format('Card %s already belongs to another patron.', v_new.card);
    END IF;
    IF NOT p_may_edit_account THEN
        PERFORM patron_check_account_fields(v_new, v_old);
    END IF;

    IF v_id IS NULL THEN
        IF NOT p_allow_duplicate THEN
            v_dups := patron_lookalikes(v_new);
            IF cardinality(v_dups) > 0 THEN
                RETURN QUERY SELECT * FROM patron_out_as('possible_duplicate', v_dups);
                RETURN;
            END IF;
        END IF;
        INSERT INTO patron (card, first_name, last_name, preferred_name, birth_date,
                            address_line1, address_line2, city, region, postal_code, phone,
                            email, contact_channel, home_branch_id, category, expires_on,
                            staff_notes, desk_alert, keep_history)
        VALUES (v_new.card, v_new.first_name, v_new.last_name, v_new.preferred_name,
                v_new.birth_date, v_new.address_line1, v_new.address_line2, v_new.city,
                v_new.region, v_new.postal_code, v_new.phone, v_new.email,
                v_new.contact_channel, v_new.home_branch_id, v_new.category, v_new.expires_on,
                v_new.staff_notes, v_new.desk_alert, v_new.keep_history)
        RETURNING * INTO v_new;
        PERFORM patron_activity_touch(v_new.id, false);
        PERFORM audit_write(p_staff, p_workstation, 'patron', v_new.id, 'create',
                            audit_diff(NULL, jsonb_strip_nulls(patron_doc(v_new))));
        RETURN QUERY SELECT * FROM patron_out_as('ok', ARRAY[v_new.id]);
        RETURN;
    END IF;

    v_changes := audit_diff(patron_doc(v_old), patron_doc(v_new));
    IF v_changes <> '{}' THEN
        UPDATE patron SET card = v_new.card, first_name = v_new.first_name,
               last_name = v_new.last_name, preferred_name = v_new.preferred_name,
               birth_date = v_new.birth_date, address_line1 = v_new.address_line1,
               address_line2 = v_new.address_line2, city = v_new.city, region = v_new.region,
               postal_code = v_new.postal_code, phone = v_new.phone, email = v_new.email,
               contact_channel = v_new.contact_channel, home_branch_id = v_new.home_branch_id,
               category = v_new.category, expires_on = v_new.expires_on,
               staff_notes = v_new.staff_notes, desk_alert = v_new.desk_alert,
               keep_history = v_new.keep_history, version = version + 1, updated_at = now()
        WHERE id = v_id;
        PERFORM audit_write(p_staff, p_workstation, 'patron', v_id, 'edit', v_changes);
        -- A card renewed (expiry moved later) is activity (IMLS registered users).
        IF v_new.expires_on > v_old.expires_on THEN
            PERFORM patron_activity_touch(v_id, false);
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM patron_out_as('ok', ARRAY[v_id]);
END
$$;

-- Place a block on the patron p_card names (p_reason required), or lift one
-- (p_unblock; p_block_id may be NULL when exactly one block is active).
-- Returns the patron as it is afterwards.
CREATE OR REPLACE FUNCTION patron_block_set(p_staff bigint, p_workstation bigint, p_card text,
                                 p_unblock boolean, p_reason text, p_block_id bigint)
RETURNS SETOF patron_out
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := patron_resolve_strict(p_card);
    v_reason text := nullif(btrim(p_reason), '');
    v_block patron_block;
    v_active integer;
    v_into bigint;
BEGIN
    SELECT merged_into INTO v_into FROM patron WHERE id = v_id FOR UPDATE;
    IF v_into IS NOT NULL THEN
        -- Merged at another desk while we waited for the lock.
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'merged',
            MESSAGE = format('Card %s was merged into another record just now; try again.',
                             p_card);
    END IF;
    IF NOT p_unblock THEN
        IF v_reason IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:reason',
                MESSAGE = 'A block needs a reason the next desk can read.';
        END IF;
        IF length(v_reason) > 500 THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:reason',
                MESSAGE = 'The reason is too long (at most 500 characters).';
        END IF;
        INSERT INTO patron_block (patron_id, reason, placed_by)
        VALUES (v_id, v_reason, p_staff) RETURNING * INTO v_block;
        PERFORM audit_write(p_staff, p_workstation, 'patron', v_id, 'block',
                            jsonb_build_object('block', jsonb_build_object(
                                'before', NULL, 'after', v_reason)));
    ELSE
        SELECT count(*) INTO v_active FROM patron_block
        WHERE patron_id = v_id AND lifted_at IS NULL;
        IF p_block_id IS NULL AND v_active = 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'not_blocked',
                MESSAGE = format('Card %s has no block to lift.', p_card);
        END IF;
        IF p_block_id IS NULL AND v_active > 1 THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:block_id',
                MESSAGE = format('Card %s has %s blocks; name the one to lift.', p_card,
                                 v_active);
        END IF;
        UPDATE patron_block SET lifted_by = p_staff, lifted_at = now()
        WHERE patron_id = v_id AND lifted_at IS NULL
          AND (p_block_id IS NULL OR id = p_block_id)
        RETURNING * INTO v_block;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'block',
                MESSAGE = format('Card %s has no active block %s.', p_card, p_block_id);
        END IF;
        PERFORM audit_write(p_staff, p_workstation, 'patron', v_id, 'unblock',
                            jsonb_build_object('block', jsonb_build_object(
                                'before', v_block.reason, 'after', NULL)));
    END IF;
    RETURN QUERY SELECT * FROM patron_out_as('ok', ARRAY[v_id]);
END
$$;

-- Two texts combined for a merged record: both, the second labelled with the
-- card it came from, unless it adds nothing.
CREATE OR REPLACE FUNCTION patron_merge_text(p_keep text, p_merge text, p_card text, p_max integer)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_merge IS NULL OR p_merge = p_keep THEN p_keep
        WHEN p_keep IS NULL THEN left(p_merge, p_max)
        ELSE left(p_keep || E'\n' || format('(from card %s) ', p_card) || p_merge, p_max)
    END
$$;

-- Merge the patron with card p_merge_card into the one with card p_keep_card.
--
-- Every row of every table with a foreign key to patron(id) that points at the
-- merged record is repointed to the kept one (found in pg_constraint now, so
-- tables added by later migrations, such as loans and holds, follow without a
-- change here); a table registered in patron_merge_handler is handed to its
-- function instead. Blocks move with the rest. Notes and the desk alert are
-- combined, empty contact fields of the kept record are filled from the merged
-- one, and the later expiry date wins. The merged record stays, read-only,
-- with merged_into set; its card is recorded in patron_card so it finds the
-- kept record. Both records get an audit row. Returns the kept record.
CREATE OR REPLACE FUNCTION patron_merge(p_staff bigint, p_workstation bigint, p_keep_card text,
                             p_merge_card text)
RETURNS SETOF patron_out
LANGUAGE plpgsql AS $$
DECLARE
    v_keep patron;
    v_merge patron;
    v_after patron;
    v_into text;
    v_fk record;
    v_handler regproc;
BEGIN
    IF p_keep_card = p_merge_card THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'self',
            MESSAGE = 'A patron record cannot be merged into itself.';
    END IF;
    -- Lock both in id order so two merges of the same pair cannot deadlock.
    PERFORM 1 FROM patron WHERE card IN (p_keep_card, p_merge_card) ORDER BY id FOR UPDATE;
    SELECT * INTO v_keep FROM patron WHERE card = p_keep_card;
    SELECT * INTO v_merge FROM patron WHERE card = p_merge_card;
    IF v_keep.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'patron',
            MESSAGE = format('No patron has card %s.', p_keep_card);
    END IF;
    IF v_merge.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'patron',
            MESSAGE = format('No patron has card %s.', p_merge_card);
    END IF;
    IF v_keep.merged_into IS NOT NULL OR v_merge.merged_into IS NOT NULL THEN
        SELECT p.card INTO v_into FROM patron p
        WHERE p.id = coalesce(v_merge.merged_into, v_keep.merged_into);
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'already_merged',
            MESSAGE = format('Card %s was already merged into card %s.',
                             CASE WHEN v_merge.merged_into IS NOT NULL
                                  THEN v_merge.card ELSE v_keep.card END, v_into);
    END IF;

    FOR v_fk IN
        SELECT c.conrelid::regclass AS tbl, n.nspname AS sch, t.relname AS rel,
               a.attname AS col
        FROM pg_constraint c
        JOIN pg_class t ON t.oid = c.conrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND c.confrelid = 'patron'::regclass
          AND cardinality(c.conkey) = 1
        ORDER BY n.nspname, t.relname, a.attname
    LOOP
        SELECT h.handler INTO v_handler FROM patron_merge_handler h WHERE h.table_name = v_fk.tbl;
        IF v_handler IS NOT NULL THEN
            CONTINUE; -- called once per table below
        END IF;
        -- Identifiers come from the catalog, never from a request.
        EXECUTE format('UPDATE %I.%I SET %I = $1 WHERE %I = $2',
                       v_fk.sch, v_fk.rel, v_fk.col, v_fk.col)
        USING v_keep.id, v_merge.id;
    END LOOP;
    FOR v_handler IN SELECT h.handler FROM patron_merge_handler h ORDER BY h.table_name::text LOOP
        EXECUTE format('SELECT %s($1, $2)', v_handler) USING v_keep.id, v_merge.id;
    END LOOP;

    INSERT INTO patron_card (card, patron_id) VALUES (v_merge.card, v_keep.id);

    UPDATE patron p SET
        staff_notes = patron_merge_text(p.staff_notes, v_merge.staff_notes, v_merge.card, 4000),
        desk_alert = patron_merge_text(p.desk_alert, v_merge.desk_alert, v_merge.card, 500),
        preferred_name = coalesce(p.preferred_name, v_merge.preferred_name),
        birth_date = coalesce(p.birth_date, v_merge.birth_date),
        phone = coalesce(p.phone, v_merge.phone),
        email = coalesce(p.email, v_merge.email),
        address_line1 = CASE WHEN p.address_line1 IS NULL THEN v_merge.address_line1
                             ELSE p.address_line1 END,
        address_line2 = CASE WHEN p.address_line1 IS NULL THEN v_merge.address_line2
                             ELSE p.address_line2 END,
        city = CASE WHEN p.address_line1 IS NULL THEN v_merge.city ELSE p.city END,
        region = CASE WHEN p.address_line1 IS NULL THEN v_merge.region ELSE p.region END,
        postal_code = CASE WHEN p.address_line1 IS NULL THEN v_merge.postal_code
                           ELSE p.postal_code END,
        expires_on = greatest(p.expires_on, v_merge.expires_on),
        version = p.version + 1, updated_at = now()
    WHERE p.id = v_keep.id
    RETURNING * INTO v_after;
    UPDATE patron SET merged_into = v_keep.id, version = version + 1, updated_at = now()
    WHERE id = v_merge.id;

    PERFORM audit_write(p_staff, p_workstation, 'patron', v_keep.id, 'merge',
                        audit_diff(patron_doc(v_keep), patron_doc(v_after))
                        || jsonb_build_object('merged_card', jsonb_build_object(
                               'before', NULL, 'after', v_merge.card)));
    PERFORM audit_write(p_staff, p_workstation, 'patron', v_merge.id, 'merge',
                        jsonb_build_object('merged_into', jsonb_build_object(
                            'before', NULL, 'after', v_keep.card)));
    RETURN QUERY SELECT * FROM patron_out_as('ok', ARRAY[v_keep.id]);
END
$$;

-- The audit trail of the patron p_card names, including the records merged
-- into it, newest first: one row per event with its changes as parallel
-- arrays (field, before, after; values as text, NULL for none).
CREATE OR REPLACE FUNCTION patron_history(p_card text, p_limit integer)
RETURNS TABLE (id bigint, at text, staff text, workstation text, branch_code text,
               action text, card text, fields text[], befores text[], afters text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id bigint := patron_resolve_strict(p_card);
BEGIN
    RETURN QUERY
    SELECT e.id, api_time(e.at),
           s.username, w.name, b.code, e.action, p.card,
           coalesce(array_agg(c.key ORDER BY c.key) FILTER (WHERE c.key IS NOT NULL), '{}'),
           coalesce(array_agg(c.value -> 'before' #>> '{}' ORDER BY c.key)
                    FILTER (WHERE c.key IS NOT NULL), '{}'),
           coalesce(array_agg(c.value -> 'after' #>> '{}' ORDER BY c.key)
                    FILTER (WHERE c.key IS NOT NULL), '{}')
    FROM audit_event e
    JOIN patron p ON p.id = e.entity_id
    LEFT JOIN staff s ON s.id = e.staff_id
    LEFT JOIN workstation w ON w.id = e.workstation_id
    LEFT JOIN branch b ON b.id = e.branch_id
    LEFT JOIN LATERAL jsonb_each(e.changes) c ON true
    WHERE e.entity = 'patron'
      AND (e.entity_id = v_id OR e.entity_id IN (SELECT m.id FROM patron m
                                                  WHERE m.merged_into = v_id))
    GROUP BY e.id, s.username, w.name, b.code, p.card
    ORDER BY e.at DESC, e.id DESC
    LIMIT p_limit;
END
$$;

-- Search unmerged patrons: every word of p_name somewhere in the names
-- (case and accents ignored), the end of the phone digits (at least four),
-- part of the email. Criteria given together must all match.
CREATE OR REPLACE FUNCTION patron_find(p_name text, p_phone text, p_email text, p_limit integer)
RETURNS SETOF patron_out
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_words text[];
    v_digits text := regexp_replace(coalesce(p_phone, ''), '[^0-9]', '', 'g');
    v_email text := lower(nullif(btrim(p_email), ''));
BEGIN
    SELECT array_agg(w ORDER BY length(w) DESC) INTO v_words
    FROM regexp_split_to_table(patron_fold(p_name), '[[:space:],]+') w WHERE w <> '';
    IF v_digits ~ '^1[0-9]{10}$' THEN
        v_digits := substr(v_digits, 2);
    END IF;
    IF p_phone IS NOT NULL AND length(v_digits) < 4 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:phone',
            MESSAGE = 'Search by phone needs at least four digits.';
    END IF;
    IF v_words IS NULL AND p_phone IS NULL AND v_email IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:name',
            MESSAGE = 'Give a name, phone number or email address to search for.';
    END IF;
    RETURN QUERY
    SELECT o.* FROM patron p JOIN patron_out o ON o.id = p.id
    WHERE p.merged_into IS NULL
      AND (v_words IS NULL OR
           (p.search_name LIKE patron_like_infix(v_words[1])
            AND p.search_name LIKE ALL (SELECT patron_like_infix(w) FROM unnest(v_words) w)))
      AND (p_phone IS NULL OR reverse(p.phone_digits) LIKE reverse(v_digits) || '%')
      AND (v_email IS NULL OR p.email LIKE patron_like_infix(v_email))
    ORDER BY p.last_name, p.first_name, p.card
    LIMIT p_limit;
END
$$;

-- "Maria G." : how slips and desk lines name a patron (first or preferred
-- name and initial: enough for the desk, little for anyone reading over a
-- shoulder).
CREATE OR REPLACE FUNCTION patron_short_name(p patron) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(p.preferred_name, p.first_name) || ' ' || left(p.last_name, 1) || '.'
$$;

-- The record was used (p_borrowed: to borrow) today: its activity dates on
-- patron_circ (statistics: registered users, active borrowers) move to today,
-- written at most once a day per patron (no write when they already say
-- today). Not an edit of the record: no version, no audit. Checkout sets them
-- in its own update of patron_circ instead.
CREATE OR REPLACE FUNCTION patron_activity_touch(p_patron bigint, p_borrowed boolean)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO patron_circ AS pc (patron_id, last_activity_on, last_borrowed_on)
    VALUES (p_patron, library_today(), CASE WHEN p_borrowed THEN library_today() END)
    ON CONFLICT (patron_id) DO UPDATE
        SET last_activity_on = greatest(pc.last_activity_on, excluded.last_activity_on),
            last_borrowed_on = greatest(pc.last_borrowed_on, excluded.last_borrowed_on)
        WHERE pc.last_activity_on IS NULL OR pc.last_activity_on < excluded.last_activity_on
           OR (p_borrowed AND (pc.last_borrowed_on IS NULL
                               OR pc.last_borrowed_on < excluded.last_borrowed_on))
$$;
