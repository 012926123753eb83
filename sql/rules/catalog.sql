-- Catalog rules: saving bibs and items (bib_save, item_save), the catalog
-- search, and how imported values become branches, item types and prices
-- (the imports themselves are in import.sql). Called by server/catalog.c and
-- server/marcimport.c.

-- A refused write, as a table CHECK refuses it (SQLSTATE 23514, the
-- constraint's name): for a check kept as a trigger's WHEN clause, which
-- PostgreSQL reads only for a write of the columns it names (migration 038).
-- TG_ARGV[0]: the constraint's name.
CREATE OR REPLACE FUNCTION check_refused() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', CONSTRAINT = TG_ARGV[0],
        TABLE = TG_TABLE_NAME,
        MESSAGE = format('new row for relation "%s" violates check constraint "%s"',
                         TG_TABLE_NAME, TG_ARGV[0]);
END
$$;

-- A copy's barcode (1 to 32 printable characters, no space), call number and
-- location (at most 100 characters each), checked when written: a checkout
-- or checkin, which writes none of them, does not run it.
CREATE OR REPLACE TRIGGER item_text_check
    BEFORE INSERT OR UPDATE OF barcode, call_number, location ON item
    FOR EACH ROW
    WHEN (NOT coalesce(NEW.barcode ~ '^[[:graph:]]{1,32}$' AND length(NEW.call_number) <= 100
                       AND length(NEW.location) <= 100, true))
    EXECUTE FUNCTION check_refused('item_text_check');

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
                              'call_number', b.call_number, 'audience', b.audience,
                              'literary_form', b.literary_form)
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
--
-- Words are ranked over a bounded candidate set (migration 029): at most
-- v_cap + 1 matches are read, best first: the exact title, then titles holding
-- the words (bib_title_words, a GIN index of the title alone: a broad word's
-- title posting list is half its list in bib.search, and needs no recheck of
-- weights), then the other matches (weight A in bib.search tells the titles
-- apart on the row: the same test, as title words are bib.search's A part);
-- each tier stops as soon as the set is full, so a broad word costs about
-- v_cap rows, never the whole catalog. v_cap is catalog_rank_limit, or the end of the asked page
-- when that is further. Fewer matches than v_cap: they are all ranked and the
-- total is exact; more: the total is v_cap and total_capped is true. Searches
-- without words (filters, ISBN, barcode ...) take matches in id order, so the
-- same cap bounds their count. Copies, availability and displays are looked
-- up for the page's rows only.
DROP FUNCTION IF EXISTS catalog_search(text, text, text, text, text, text, text, boolean, integer,
                                       integer);
CREATE FUNCTION catalog_search(p_query text, p_isbn text, p_issn text, p_barcode text,
                               p_call_number text, p_branch text, p_format text,
                               p_available boolean, p_offset integer, p_limit integer)
RETURNS TABLE (id bigint, title text, author text, publisher text, pub_year text, format text,
               language text, call_number text, isbns text[], copies text[],
               total_copies integer, available_copies integer, total bigint,
               total_capped boolean, on_display text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_branch integer;
    v_tsq tsquery;
    v_tsq_title tsquery;
    v_filters text := '';
    v_cand text;
    v_prefix text;
    v_title_like text;
    v_cap integer;
    v_negated boolean;
    v_n bigint;
    v_page bigint[];
BEGIN
    IF p_branch IS NOT NULL THEN
        v_branch := (SELECT b.id FROM branch b WHERE b.code = upper(p_branch));
        IF v_branch IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:branch',
                MESSAGE = format('There is no branch with code %s.', p_branch);
        END IF;
    END IF;
    v_cap := greatest(coalesce(library_setting_text('catalog_rank_limit')::integer, 200),
                      p_offset + p_limit);
    IF p_isbn IS NOT NULL THEN
        v_filters := v_filters || ' AND b.isbns @> ARRAY[$2]';
    END IF;
    IF p_issn IS NOT NULL THEN
        v_filters := v_filters || ' AND b.issns @> ARRAY[$3]';
    END IF;
    IF p_barcode IS NOT NULL THEN
        v_filters := v_filters || ' AND b.id IN (SELECT i.bib_id FROM item i WHERE i.barcode = $4)';
    END IF;
    IF p_call_number IS NOT NULL THEN
        v_prefix := replace(replace(replace(lower(p_call_number), '\', '\\'), '%', '\%'), '_', '\_')
                    || '%';
        v_filters := v_filters || ' AND (lower(b.call_number) LIKE $5 OR b.id IN '
                           || '(SELECT i.bib_id FROM item i WHERE lower(i.call_number) LIKE $5))';
    END IF;
    IF p_format IS NOT NULL THEN
        v_filters := v_filters || ' AND b.format = $6';
    END IF;
    IF v_branch IS NOT NULL OR p_available THEN
        v_filters := v_filters || ' AND EXISTS (SELECT 1 FROM item i WHERE i.bib_id = b.id'
                           || CASE WHEN v_branch IS NOT NULL THEN ' AND i.current_branch_id = $7'
                                   ELSE '' END
                           || CASE WHEN p_available THEN ' AND i.status = ''available'''
                                   ELSE '' END
                           || ')';
    END IF;
    IF p_query IS NOT NULL THEN
        v_tsq := websearch_to_tsquery('carrel_english', p_query);
    END IF;
    IF p_query IS NULL THEN
        v_cand := 'SELECT b.id, false AS exact, 0::real AS rank FROM bib b WHERE true'
                  || v_filters || ' ORDER BY b.id LIMIT $12 + 1';
    ELSIF numnode(v_tsq) > 0 THEN
        -- The same words restricted to titles (every lexeme weight A): the
        -- third tier leaves out what the second read.
        v_tsq_title := regexp_replace(v_tsq::text, '(''(?:[^'']|'''')*'')', '\1:A', 'g')::tsquery;
        v_negated := strpos(v_tsq::text, '!') > 0;
        -- Without a "-word" a title match is a match: one GIN key, not two
        -- (the posting lists of a broad word are the cost).
        -- to_tsvector('carrel_english', b.title) is bib_title_words' expression.
        v_cand := '(SELECT b.id, true AS exact, ts_rank(b.search, $1) AS rank FROM bib b'
               || ' WHERE lower(b.title) = lower($11) AND b.search @@ $1' || v_filters || ')'
               || ' UNION ALL (SELECT b.id, false, ts_rank(b.search, $1) FROM bib b'
               || ' WHERE to_tsvector(''carrel_english'', b.title) @@ $1'
               || CASE WHEN v_negated THEN ' AND b.search @@ $1' ELSE '' END
               || ' AND lower(b.title) <> lower($11)' || v_filters || ' LIMIT $12 + 1)'
               || ' UNION ALL (SELECT b.id, false, ts_rank(b.search, $1) FROM bib b'
               || ' WHERE b.search @@ $1 AND NOT b.search @@ $13'
               || ' AND lower(b.title) <> lower($11)' || v_filters || ' LIMIT $12 + 1)'
               || ' LIMIT $12 + 1';
    ELSE
        -- Only stop words ("The The"): titles starting with them, exact first.
        v_title_like := replace(replace(replace(lower(p_query), '\', '\\'), '%', '\%'), '_', '\_')
                        || '%';
        v_cand := '(SELECT b.id, true AS exact, 0::real AS rank FROM bib b'
               || ' WHERE lower(b.title) = lower($11)' || v_filters || ')'
               || ' UNION ALL (SELECT b.id, false, 0::real FROM bib b'
               || ' WHERE lower(b.title) LIKE $14 AND lower(b.title) <> lower($11)'
               || v_filters || ' ORDER BY b.id LIMIT $12 + 1)'
               || ' LIMIT $12 + 1';
    END IF;
    -- The ranked set gives the page's ids and its size; the page's rows are
    -- a static statement (its plan cached for the session): planning the
    -- whole search as one dynamic statement cost as much as running it.
    IF v_filters = '' AND v_tsq_title IS NOT NULL THEN
        -- Words alone, the common search: the same tiers as v_cand, static so
        -- that its plan is cached too (a "-word" is then a filter, not a key).
        WITH m AS MATERIALIZED (
            (SELECT b.id, true AS exact, ts_rank(b.search, v_tsq) AS rank FROM bib b
             WHERE lower(b.title) = lower(p_query) AND b.search @@ v_tsq)
            UNION ALL
            (SELECT b.id, false, ts_rank(b.search, v_tsq) FROM bib b
             WHERE to_tsvector('carrel_english', b.title) @@ v_tsq
               AND (NOT v_negated OR b.search @@ v_tsq)
               AND lower(b.title) <> lower(p_query)
             LIMIT v_cap + 1)
            UNION ALL
            (SELECT b.id, false, ts_rank(b.search, v_tsq) FROM bib b
             WHERE b.search @@ v_tsq AND NOT b.search @@ v_tsq_title
               AND lower(b.title) <> lower(p_query)
             LIMIT v_cap + 1)
            LIMIT v_cap + 1)
        SELECT (SELECT count(*) FROM m),
               ARRAY(SELECT m.id FROM m ORDER BY m.exact DESC, m.rank DESC, m.id
                     LIMIT p_limit OFFSET p_offset)
        INTO v_n, v_page;
    ELSE
        EXECUTE 'WITH m AS MATERIALIZED (' || v_cand || ')'
            || ' SELECT (SELECT count(*) FROM m),'
            || '        ARRAY(SELECT m.id FROM m ORDER BY m.exact DESC, m.rank DESC, m.id'
            || '              LIMIT $8 OFFSET $9)'
        INTO v_n, v_page
        USING v_tsq, p_isbn, p_issn, p_barcode, v_prefix, p_format, v_branch,
              p_limit, p_offset, p_available, p_query, v_cap, v_tsq_title, v_title_like;
    END IF;
    RETURN QUERY
    SELECT b.id, b.title, b.author, b.publisher, b.pub_year, b.format, b.language,
           b.call_number, b.isbns, coalesce(c.copies, '{}'), coalesce(c.total, 0)::int,
           coalesce(c.available, 0)::int, least(v_n, v_cap), v_n > v_cap,
           -- Copies on a display: the open display_item rows (an index probe,
           -- none for nearly every copy), then B's text for those only. OFFSET 0
           -- keeps "t IS NOT NULL" out of the item scan: pushed down, it ran
           -- item_display_text (a query per call) on every copy of the page.
           ARRAY(SELECT DISTINCT d.code || ': ' || d.t
                 FROM (SELECT br.code, item_display_text(i.id) AS t
                       FROM item i JOIN branch br ON br.id = i.current_branch_id
                       WHERE i.bib_id = b.id
                         AND EXISTS (SELECT 1 FROM display_item di
                                     WHERE di.item_id = i.id AND di.removed_at IS NULL)
                       OFFSET 0) d
                 WHERE d.t IS NOT NULL
                 ORDER BY 1)
    FROM unnest(v_page) WITH ORDINALITY AS pg(bib, ord)
    JOIN bib b ON b.id = pg.bib
    LEFT JOIN LATERAL (SELECT array_agg(br.code || ':' || x.n || ':' || x.a
                                        ORDER BY br.code) AS copies,
                              sum(x.n) AS total, sum(x.a) AS available
                       FROM (SELECT i.current_branch_id, count(*) AS n,
                                    count(*) FILTER (WHERE i.status = 'available') AS a
                             FROM item i WHERE i.bib_id = b.id GROUP BY 1) x
                       JOIN branch br ON br.id = x.current_branch_id) c ON true
    ORDER BY pg.ord;
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
