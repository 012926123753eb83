-- Catalog rules: saving bibs and items (bib_save, item_save), the catalog
-- search, and how imported values become branches, item types and prices
-- (the imports themselves are in import.sql). Called by server/catalog.c and
-- server/marcimport.c.

-- The item type a copy gets from its bib's format when its holdings do not say.
CREATE OR REPLACE FUNCTION item_type_for_format(p_format text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_format
        WHEN 'large_print' THEN 'large_print' WHEN 'serial' THEN 'periodical'
        WHEN 'dvd' THEN 'dvd' WHEN 'video' THEN 'video' WHEN 'audiobook' THEN 'audiobook'
        WHEN 'music' THEN 'music' WHEN 'map' THEN 'map' WHEN 'score' THEN 'score'
        WHEN 'kit' THEN 'kit' ELSE 'book' END
$$;

CREATE OR REPLACE FUNCTION branch_resolve(p_value text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT id FROM branch WHERE code = upper(p_value)),
                    (SELECT branch_id FROM branch_alias WHERE alias = upper(p_value)))
$$;

CREATE OR REPLACE FUNCTION item_type_resolve(p_value text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT code FROM item_type WHERE code = lower(p_value)),
                    (SELECT item_type FROM item_type_alias WHERE alias = upper(p_value)))
$$;

-- "P7.50usd", "p8.95", "$12.00" -> cents; 0 when there is no number.
CREATE OR REPLACE FUNCTION price_cents_from_text(p_text text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(round(((regexp_match(p_text, '([0-9]{1,7}(\.[0-9]{1,2})?)'))[1])::numeric
                          * 100)::bigint, 0)
$$;

-- The bib's row as the JSON an audit diff compares (main fields only).
CREATE OR REPLACE FUNCTION bib_audit_json(b bib) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('title', b.title, 'author', b.author, 'subjects', b.subjects,
                              'isbns', b.isbns, 'issns', b.issns, 'publisher', b.publisher,
                              'year', b.pub_year, 'format', b.format, 'language', b.language,
                              'call_number', b.call_number)
$$;

CREATE OR REPLACE FUNCTION item_audit_json(i item) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('barcode', i.barcode, 'bib_id', i.bib_id,
                              'owning_branch', (SELECT code FROM branch WHERE id = i.owning_branch_id),
                              'current_branch', (SELECT code FROM branch WHERE id = i.current_branch_id),
                              'location', i.location, 'call_number', i.call_number,
                              'item_type', i.item_type, 'price_cents', i.price_cents,
                              'status', i.status)
$$;

-- Search. Builds the query from fixed fragments for the criteria given (so
-- each runs with the right index) and binds every value; never concatenates
-- user input. Results: exact title matches first, then by relevance.
CREATE OR REPLACE FUNCTION catalog_search(p_query text, p_isbn text, p_issn text, p_barcode text,
                               p_call_number text, p_branch text, p_format text,
                               p_available boolean, p_offset integer, p_limit integer)
RETURNS TABLE (id bigint, title text, author text, publisher text, pub_year text, format text,
               language text, call_number text, isbns text[], copies text[],
               total_copies integer, available_copies integer, total bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_branch integer;
    v_tsq tsquery;
    v_where text := '';
    v_rank text := '0::real';
    v_exact text := 'false';
    v_prefix text;
BEGIN
    IF p_branch IS NOT NULL THEN
        v_branch := (SELECT b.id FROM branch b WHERE b.code = upper(p_branch));
        IF v_branch IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:branch',
                MESSAGE = format('There is no branch with code %s.', p_branch);
        END IF;
    END IF;
    IF p_query IS NOT NULL THEN
        v_tsq := websearch_to_tsquery('carrel_english', p_query);
        IF numnode(v_tsq) > 0 THEN
            v_where := v_where || ' AND b.search @@ $1';
            v_rank := 'ts_rank(b.search, $1)';
        ELSE
            -- Only stop words ("The The"): match titles instead.
            v_where := v_where || ' AND lower(b.title) LIKE lower($11) || ''%''';
        END IF;
        v_exact := 'lower(b.title) = lower($11)';
    END IF;
    IF p_isbn IS NOT NULL THEN
        v_where := v_where || ' AND b.isbns @> ARRAY[$2]';
    END IF;
    IF p_issn IS NOT NULL THEN
        v_where := v_where || ' AND b.issns @> ARRAY[$3]';
    END IF;
    IF p_barcode IS NOT NULL THEN
        v_where := v_where || ' AND b.id IN (SELECT i.bib_id FROM item i WHERE i.barcode = $4)';
    END IF;
    IF p_call_number IS NOT NULL THEN
        v_prefix := replace(replace(replace(lower(p_call_number), '\', '\\'), '%', '\%'), '_', '\_')
                    || '%';
        v_where := v_where || ' AND (lower(b.call_number) LIKE $5 OR b.id IN '
                           || '(SELECT i.bib_id FROM item i WHERE lower(i.call_number) LIKE $5))';
    END IF;
    IF p_format IS NOT NULL THEN
        v_where := v_where || ' AND b.format = $6';
    END IF;
    IF v_branch IS NOT NULL OR p_available THEN
        v_where := v_where || ' AND EXISTS (SELECT 1 FROM item i WHERE i.bib_id = b.id'
                           || CASE WHEN v_branch IS NOT NULL THEN ' AND i.current_branch_id = $7'
                                   ELSE '' END
                           || CASE WHEN p_available THEN ' AND i.status = ''available'''
                                   ELSE '' END
                           || ')';
    END IF;
    RETURN QUERY EXECUTE
        'WITH m AS (SELECT b.id, ' || v_rank || ' AS rank, ' || v_exact || ' AS exact'
        || ' FROM bib b WHERE true' || v_where || '),'
        || ' page AS (SELECT m.*, count(*) OVER () AS total FROM m'
        || '          ORDER BY m.exact DESC, m.rank DESC, m.id LIMIT $8 OFFSET $9)'
        || ' SELECT b.id, b.title, b.author, b.publisher, b.pub_year, b.format, b.language,'
        || '        b.call_number, b.isbns,'
        || '        coalesce(c.copies, ''{}''), coalesce(c.total, 0)::int,'
        || '        coalesce(c.available, 0)::int, page.total'
        || ' FROM page JOIN bib b ON b.id = page.id'
        || ' LEFT JOIN LATERAL (SELECT array_agg(br.code || '':'' || x.n || '':'' || x.a'
        || '                                     ORDER BY br.code) AS copies,'
        || '                           sum(x.n) AS total, sum(x.a) AS available'
        || '                    FROM (SELECT i.current_branch_id, count(*) AS n,'
        || '                                 count(*) FILTER (WHERE i.status = ''available'') AS a'
        || '                          FROM item i WHERE i.bib_id = b.id GROUP BY 1) x'
        || '                    JOIN branch br ON br.id = x.current_branch_id) c ON true'
        || ' ORDER BY page.exact DESC, page.rank DESC, page.id'
    USING v_tsq, p_isbn, p_issn, p_barcode, v_prefix, p_format, v_branch,
          p_limit, p_offset, p_available, p_query;
END
$$;

-- Staff edits of a bib's main fields; the daemon passes the updated MARC
-- record with the fields it extracted from it (audience and literary form
-- from 008/22 and 008/33). p_id NULL creates.
DROP FUNCTION IF EXISTS bib_save(bigint, bigint, bigint, integer, bytea, text, text, text[], text[],
                                 text[], text, text, text, text, text);
CREATE OR REPLACE FUNCTION bib_save(p_staff bigint, p_workstation bigint, p_id bigint, p_version integer,
                         p_marc bytea, p_title text, p_author text, p_subjects text[],
                         p_isbns text[], p_issns text[], p_publisher text, p_year text,
                         p_format text, p_language text, p_call_number text,
                         p_audience text DEFAULT '', p_literary_form text DEFAULT '')
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_old bib;
    v_new bib;
BEGIN
    IF p_title IS NULL OR trim(p_title) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:title',
            MESSAGE = 'A title is required.';
    END IF;
    IF p_year !~ '^([0-9]{4})?$' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:year',
            MESSAGE = format('%s is not a year (four digits).', p_year);
    END IF;
    IF p_language !~ '^([a-z]{3})?$' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:language',
            MESSAGE = format('%s is not a MARC language code (three letters, e.g. eng).',
                             p_language);
    END IF;
    IF p_id IS NULL THEN
        INSERT INTO bib (marc, title, author, subjects, isbns, issns, publisher, pub_year,
                         format, language, call_number, audience, literary_form)
        VALUES (p_marc, p_title, p_author, p_subjects, p_isbns, p_issns, p_publisher, p_year,
                p_format, p_language, p_call_number, coalesce(p_audience, ''),
                coalesce(p_literary_form, ''))
        RETURNING * INTO v_new;
        PERFORM audit_write(p_staff, p_workstation, 'bib', v_new.id, 'create',
                            audit_diff(NULL, bib_audit_json(v_new)));
        RETURN v_new.id;
    END IF;
    SELECT * INTO v_old FROM bib WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'bib',
            MESSAGE = format('There is no bibliographic record %s.', p_id);
    END IF;
    IF v_old.version <> p_version THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'stale_version',
            MESSAGE = 'Someone else changed this record since you read it; look at it again.';
    END IF;
    UPDATE bib SET marc = p_marc, title = p_title, author = p_author, subjects = p_subjects,
        isbns = p_isbns, issns = p_issns, publisher = p_publisher, pub_year = p_year,
        format = p_format, language = p_language, call_number = p_call_number,
        audience = coalesce(p_audience, ''), literary_form = coalesce(p_literary_form, ''),
        version = version + 1, updated_at = now()
    WHERE id = p_id RETURNING * INTO v_new;
    PERFORM audit_write(p_staff, p_workstation, 'bib', p_id, 'edit',
                        audit_diff(bib_audit_json(v_old), bib_audit_json(v_new)));
    RETURN p_id;
END
$$;

-- Create (p_id NULL) or edit an item. p_scope_branch is the branch a
-- branch-bound caller acts for (NULL for system-wide roles): such a caller may
-- only create or change items owned by that branch.
CREATE OR REPLACE FUNCTION item_save(p_staff bigint, p_workstation bigint, p_scope_branch integer,
                          p_id bigint, p_version integer, p_barcode text, p_bib bigint,
                          p_owning text, p_current text, p_location text, p_call_number text,
                          p_item_type text, p_price_cents bigint, p_status item_status)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_old item;
    v_new item;
    v_owning integer;
    v_current integer;
BEGIN
    v_owning := (SELECT id FROM branch WHERE code = p_owning);
    IF v_owning IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:owning_branch',
            MESSAGE = format('There is no branch with code %s.', coalesce(p_owning, '(none)'));
    END IF;
    v_current := coalesce((SELECT id FROM branch WHERE code = p_current), v_owning);
    IF NOT EXISTS (SELECT 1 FROM item_type WHERE code = p_item_type) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:item_type',
            MESSAGE = format('There is no item type %s.', coalesce(p_item_type, '(none)'));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM bib WHERE id = p_bib) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:bib_id',
            MESSAGE = format('There is no bibliographic record %s.', coalesce(p_bib::text, '(none)'));
    END IF;
    IF p_status IS NOT NULL AND p_status NOT IN ('available', 'in_processing', 'damaged',
                                                  'missing', 'withdrawn') THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:status',
            MESSAGE = format('Status %s is set by circulation, not by editing the item.',
                             p_status);
    END IF;
    IF p_scope_branch IS NOT NULL AND v_owning <> p_scope_branch THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'branch',
            MESSAGE = 'You may add or edit only items owned by the branch of this workstation.';
    END IF;
    IF p_id IS NULL THEN
        PERFORM barcode_check('item', p_barcode);
        IF EXISTS (SELECT 1 FROM item WHERE barcode = p_barcode) THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'barcode_taken',
                MESSAGE = format('Barcode %s is already on another item.', p_barcode);
        END IF;
        INSERT INTO item (barcode, bib_id, owning_branch_id, current_branch_id, location,
                          call_number, item_type, price_cents, status)
        VALUES (p_barcode, p_bib, v_owning, v_current, coalesce(p_location, ''),
                coalesce(p_call_number, ''), p_item_type, coalesce(p_price_cents, 0),
                coalesce(p_status, 'available'))
        RETURNING * INTO v_new;
        PERFORM audit_write(p_staff, p_workstation, 'item', v_new.id, 'create',
                            audit_diff(NULL, item_audit_json(v_new)));
        RETURN v_new.id;
    END IF;
    SELECT * INTO v_old FROM item WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'item',
            MESSAGE = format('There is no item %s.', p_id);
    END IF;
    IF p_scope_branch IS NOT NULL AND v_old.owning_branch_id <> p_scope_branch THEN
        RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'branch',
            MESSAGE = 'You may add or edit only items owned by the branch of this workstation.';
    END IF;
    IF v_old.version <> p_version THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'stale_version',
            MESSAGE = 'Someone else changed this item since you read it; look at it again.';
    END IF;
    IF p_barcode IS DISTINCT FROM v_old.barcode THEN
        PERFORM barcode_check('item', p_barcode);
        IF EXISTS (SELECT 1 FROM item WHERE barcode = p_barcode) THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'barcode_taken',
                MESSAGE = format('Barcode %s is already on another item.', p_barcode);
        END IF;
    END IF;
    IF p_status IS NOT NULL AND p_status <> v_old.status AND
       v_old.status IN ('checked_out', 'in_transit', 'on_hold_shelf', 'lost',
                        'claimed_returned') THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'circulating',
            MESSAGE = format('The item is %s; circulation changes its status, not an edit.',
                             replace(v_old.status::text, '_', ' '));
    END IF;
    UPDATE item SET barcode = p_barcode, bib_id = p_bib, owning_branch_id = v_owning,
        current_branch_id = v_current, location = coalesce(p_location, ''),
        call_number = coalesce(p_call_number, ''), item_type = p_item_type,
        price_cents = coalesce(p_price_cents, 0), status = coalesce(p_status, status),
        version = version + 1, updated_at = now()
    WHERE id = p_id RETURNING * INTO v_new;
    PERFORM audit_write(p_staff, p_workstation, 'item', p_id, 'edit',
                        audit_diff(item_audit_json(v_old), item_audit_json(v_new)));
    RETURN p_id;
END
$$;
