-- Import rules: MARC record batches (bib_import_batch) and CSV copies
-- (item_import_rows), set-based. Called by server/marcimport.c.
--
-- A batch is loaded into two session-private scratch tables (import_rec: one
-- row per record; import_hold: one row per holding or CSV row), then matched,
-- stored and audited with one statement per step for the whole batch: the
-- cost per record is that of the rows written and their indexes, not of a
-- PL/pgSQL loop. The answers are the same as loading the records one after
-- the other in file order:
--   * Records that could influence each other (the same 001+003, a shared
--     ISBN, a shared barcode, or the same existing bib among the ones they
--     match) are loaded in waves: a record waits for the next wave while an
--     earlier record of the batch it shares one of those with is still
--     waiting. A file without duplicates is one wave.
--   * A barcode that appears twice within a wave (two holdings of one record)
--     is handled in sub-waves in file order, so the second finds the first.
-- Expected problems (a barcode on another title, a holding without barcode)
-- are reported per record; an unexpected error fails the whole batch, and the
-- daemon then loads its records one per statement to find and report the bad
-- one.

DROP FUNCTION IF EXISTS bib_import_items(bigint, bigint, bigint, jsonb, integer, boolean);
-- Before audience and literary form were audited.
DROP FUNCTION IF EXISTS import_bib_created(text, text, text[], text[], text[], text, text, text,
                                          text, text);

-- The import's default branch for copies whose holdings name none: NULL when
-- none is given; an unknown code refuses the whole request (field:branch).
CREATE OR REPLACE FUNCTION import_default_branch(p_code text) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id integer;
BEGIN
    IF p_code IS NULL OR p_code = '' THEN
        RETURN NULL;
    END IF;
    v_id := branch_resolve(p_code);
    IF v_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:branch',
            MESSAGE = format('There is no branch with code %s.', p_code);
    END IF;
    RETURN v_id;
END
$$;

-- The scratch tables, made once per session. ON COMMIT DELETE ROWS empties
-- them at every commit (a truncation: temporary tables are never vacuumed,
-- so deleting rows would leave them to grow).
CREATE OR REPLACE FUNCTION import_scratch() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.import_rec') IS NULL THEN
        CREATE TEMP TABLE import_rec (
            ord integer PRIMARY KEY, pos bigint, marc bytea, title text, author text,
            subjects text[], isbns text[], issns text[], publisher text, pub_year text,
            format text, language text, call_number text, cn text, cs text, audience text,
            literary_form text, sid bigint, holdings jsonb,
            wave integer, sid_hit bigint, cn_hits bigint[], isbn_hits bigint[],
            bib_id bigint, action text, old jsonb, problems text[]
        ) ON COMMIT DELETE ROWS;
        CREATE TEMP TABLE import_hold (
            ord integer, n integer, wave integer, barcode text, owning_code text,
            location text, callno text, price text, has_price boolean, bib_id bigint,
            owning integer, current_id integer, itype text,
            iw integer, item_id bigint, old jsonb, result text, problem text,
            PRIMARY KEY (ord, n)
        ) ON COMMIT DELETE ROWS;
    END IF;
    -- Called twice in one transaction (a test), the last batch's rows are still there.
    DELETE FROM import_rec;
    DELETE FROM import_hold;
END
$$;

-- An item as its audit JSON (item_audit_json's fields), from its columns:
-- item_audit_json looks the branch codes up itself, once per call; here the
-- statement joins them. Plain expressions (STABLE like jsonb_build_object),
-- so PostgreSQL inlines them instead of calling a function per row.
CREATE OR REPLACE FUNCTION import_item_json(p_barcode text, p_bib bigint, p_owning text,
                                            p_current text, p_location text, p_call_number text,
                                            p_item_type text, p_price_cents bigint,
                                            p_status item_status)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('barcode', p_barcode, 'bib_id', p_bib, 'owning_branch', p_owning,
                              'current_branch', p_current, 'location', p_location,
                              'call_number', p_call_number, 'item_type', p_item_type,
                              'price_cents', p_price_cents, 'status', p_status)
$$;

-- What audit_diff(NULL, <the JSON>) gives for a new item or bib: every field,
-- before null. Built directly: audit_diff aggregates over the keys, a
-- function call and an aggregate per row. (test_catalog checks both agree.)
CREATE OR REPLACE FUNCTION import_item_created(p_barcode text, p_bib bigint, p_owning text,
                                               p_current text, p_location text,
                                               p_call_number text, p_item_type text,
                                               p_price_cents bigint, p_status item_status)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'barcode', jsonb_build_object('before', NULL::jsonb, 'after', p_barcode),
        'bib_id', jsonb_build_object('before', NULL::jsonb, 'after', p_bib),
        'owning_branch', jsonb_build_object('before', NULL::jsonb, 'after', p_owning),
        'current_branch', jsonb_build_object('before', NULL::jsonb, 'after', p_current),
        'location', jsonb_build_object('before', NULL::jsonb, 'after', p_location),
        'call_number', jsonb_build_object('before', NULL::jsonb, 'after', p_call_number),
        'item_type', jsonb_build_object('before', NULL::jsonb, 'after', p_item_type),
        'price_cents', jsonb_build_object('before', NULL::jsonb, 'after', p_price_cents),
        'status', jsonb_build_object('before', NULL::jsonb, 'after', p_status))
$$;

CREATE OR REPLACE FUNCTION import_bib_created(p_title text, p_author text, p_subjects text[],
                                              p_isbns text[], p_issns text[], p_publisher text,
                                              p_year text, p_format text, p_language text,
                                              p_call_number text, p_audience text,
                                              p_literary_form text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'title', jsonb_build_object('before', NULL::jsonb, 'after', p_title),
        'author', jsonb_build_object('before', NULL::jsonb, 'after', p_author),
        'subjects', jsonb_build_object('before', NULL::jsonb, 'after', p_subjects),
        'isbns', jsonb_build_object('before', NULL::jsonb, 'after', p_isbns),
        'issns', jsonb_build_object('before', NULL::jsonb, 'after', p_issns),
        'publisher', jsonb_build_object('before', NULL::jsonb, 'after', p_publisher),
        'year', jsonb_build_object('before', NULL::jsonb, 'after', p_year),
        'format', jsonb_build_object('before', NULL::jsonb, 'after', p_format),
        'language', jsonb_build_object('before', NULL::jsonb, 'after', p_language),
        'call_number', jsonb_build_object('before', NULL::jsonb, 'after', p_call_number),
        'audience', jsonb_build_object('before', NULL::jsonb, 'after', p_audience),
        'literary_form', jsonb_build_object('before', NULL::jsonb, 'after', p_literary_form))
$$;

-- Holdings of import_rec (852/952 as {"tag", "sf": [[code, value], ...]}
-- mapped through holdings_map, or CSV rows already named) into import_hold,
-- in one statement, checked as far as the database's state does not matter:
-- barcode present and printable, a branch. Where a barcode's copy already is
-- is looked at per wave (import_items_apply). iw numbers the repeats of a
-- barcode in file order: within a record (p_per_record: the waves keep
-- records sharing a barcode apart), or within the whole batch (CSV rows).
CREATE OR REPLACE FUNCTION import_holdings_load(p_default integer, p_spread boolean,
                                                p_per_record boolean)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_branches integer[] := ARRAY(SELECT id FROM branch ORDER BY id);
BEGIN
    WITH h AS (
        SELECT r.ord, h.n::integer AS n, h.x, h.x ? 'sf' AS marc
        FROM import_rec r
        CROSS JOIN LATERAL jsonb_array_elements(r.holdings) WITH ORDINALITY h(x, n)),
    -- Where several subfields feed one target, the lowest priority present
    -- wins, then the first in the field.
    mapped AS (
        SELECT DISTINCT ON (h.ord, h.n, m.target COLLATE "C") h.ord, h.n, m.target, sf.s ->> 1 AS value
        FROM h
        CROSS JOIN LATERAL jsonb_array_elements(h.x -> 'sf') WITH ORDINALITY sf(s, k)
        JOIN holdings_map m ON m.tag = h.x ->> 'tag' AND m.subfield = sf.s ->> 0
        WHERE h.marc AND trim(sf.s ->> 1) <> ''
        ORDER BY h.ord, h.n, m.target COLLATE "C", m.priority, sf.k),
    pivot AS (
        SELECT ord, n,
               max(value) FILTER (WHERE target = 'barcode') AS barcode,
               max(value) FILTER (WHERE target = 'owning_branch') AS owning_branch,
               max(value) FILTER (WHERE target = 'current_branch') AS current_branch,
               max(value) FILTER (WHERE target = 'location') AS location,
               max(value) FILTER (WHERE target = 'call_number') AS call_number,
               max(value) FILTER (WHERE target = 'call_number_suffix') AS call_number_suffix,
               max(value) FILTER (WHERE target = 'item_type') AS item_type,
               max(value) FILTER (WHERE target = 'price') AS price
        FROM mapped GROUP BY ord, n),
    v AS (
        SELECT h.ord, h.n,
               trim(CASE WHEN h.marc THEN p.barcode ELSE h.x ->> 'barcode' END) AS barcode,
               CASE WHEN h.marc THEN p.owning_branch ELSE h.x ->> 'owning_branch' END AS oc,
               CASE WHEN h.marc THEN p.current_branch ELSE h.x ->> 'current_branch' END AS cc,
               CASE WHEN h.marc THEN p.location ELSE h.x ->> 'location' END AS location,
               trim(CASE WHEN h.marc THEN concat_ws(' ', p.call_number, p.call_number_suffix)
                         ELSE concat_ws(' ', h.x ->> 'call_number',
                                        h.x ->> 'call_number_suffix') END) AS callno,
               CASE WHEN h.marc THEN p.item_type ELSE h.x ->> 'item_type' END AS tc,
               CASE WHEN h.marc THEN p.price ELSE h.x ->> 'price' END AS price,
               CASE WHEN h.marc THEN p.price IS NOT NULL ELSE h.x ? 'price' END AS has_price
        FROM h LEFT JOIN pivot p ON p.ord = h.ord AND p.n = h.n),
    -- Branches and item types: a code first, then an alias (branch_resolve,
    -- item_type_resolve), joined rather than called per row.
    resolved AS (
        SELECT v.*,
               coalesce(bo.id, ao.branch_id,
                        CASE WHEN p_spread
                             THEN v_branches[abs(hashtext(v.barcode)) % cardinality(v_branches) + 1]
                             ELSE p_default END) AS owning,
               coalesce(bc.id, ac.branch_id) AS current_id,
               coalesce(t.code, ta.item_type) AS itype
        FROM v
        LEFT JOIN branch bo ON bo.code = upper(v.oc)
        LEFT JOIN branch_alias ao ON ao.alias = upper(v.oc)
        LEFT JOIN branch bc ON bc.code = upper(v.cc)
        LEFT JOIN branch_alias ac ON ac.alias = upper(v.cc)
        LEFT JOIN item_type t ON t.code = lower(v.tc)
        LEFT JOIN item_type_alias ta ON ta.alias = upper(v.tc))
    INSERT INTO import_hold (ord, n, barcode, owning_code, location, callno, price, has_price,
                             owning, current_id, itype, iw, result, problem)
    SELECT x.ord, x.n, x.barcode, x.oc, x.location, x.callno, x.price, x.has_price, x.owning,
           coalesce(x.current_id, x.owning), x.itype,
           row_number() OVER (PARTITION BY CASE WHEN p_per_record THEN x.ord END,
                                           x.barcode COLLATE "C"
                              ORDER BY x.ord, x.n),
           CASE WHEN x.problem IS NOT NULL THEN 'problem' END, x.problem
    FROM (SELECT resolved.*, CASE
              WHEN barcode IS NULL OR barcode = '' THEN
                  format('holding %s has no barcode; no item made', n)
              WHEN barcode !~ '^[[:graph:]]{1,32}$' THEN
                  format('barcode %s is not 1-32 printable characters; skipped', barcode)
              WHEN owning IS NULL THEN
                  format('item %s: branch %s is unknown and no default branch was given; '
                         'skipped', barcode, coalesce(oc, '(none)')) END AS problem
          FROM resolved) x;
END
$$;

-- Store the copies of wave p_wave (import_hold rows with bib_id set): a new
-- barcode makes an item, a barcode of the same title refreshes its
-- descriptive data (status and circulation stay; what the record does not
-- say is kept), a barcode of another title is a problem. Audited: one row
-- per item created, one per item changed.
CREATE OR REPLACE FUNCTION import_items_apply(p_staff bigint, p_workstation bigint,
                                              p_wave integer)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_wsb integer := (SELECT w.branch_id FROM workstation w WHERE w.id = p_workstation);
    v_code text[]; -- branch code by branch id, for the audit rows
    v_max integer;
    b record;
BEGIN
    FOR b IN SELECT id, code FROM branch LOOP
        v_code[b.id] := b.code;
    END LOOP;
    SELECT max(iw) INTO v_max FROM import_hold WHERE wave = p_wave AND result IS NULL;
    FOR v_iw IN 1 .. coalesce(v_max, 0) LOOP
        -- The copies these barcodes already name, locked, as they are now.
        -- Each barcode is looked up by its index; the answers are matched back
        -- by the scratch table's key. (Joining the scratch table, whose size
        -- the planner cannot know, to a set of unknown size made it nest one
        -- in the other: quadratic in a batch of re-imported copies.)
        WITH x AS MATERIALIZED (
            SELECT h.ord, h.n, i.id, i.bib_id,
                   import_item_json(i.barcode, i.bib_id, v_code[i.owning_branch_id],
                                    v_code[i.current_branch_id], i.location, i.call_number,
                                    i.item_type, i.price_cents, i.status) AS j
            FROM import_hold h
            JOIN item i ON i.barcode = h.barcode
            WHERE h.wave = p_wave AND h.iw = v_iw AND h.result IS NULL
            FOR UPDATE OF i)
        UPDATE import_hold h SET item_id = x.id, old = x.j,
            result = CASE WHEN x.bib_id = h.bib_id THEN 'update' ELSE 'problem' END,
            problem = CASE WHEN x.bib_id <> h.bib_id
                           THEN format('barcode %s already belongs to another title (bib %s); '
                                       'item skipped', h.barcode, x.bib_id) END
        FROM x
        WHERE h.ord = x.ord AND h.n = x.n;
        UPDATE import_hold SET result = 'create'
        WHERE wave = p_wave AND iw = v_iw AND result IS NULL;

        WITH ins AS (
            INSERT INTO item (barcode, bib_id, owning_branch_id, current_branch_id, location,
                              call_number, item_type, price_cents)
            SELECT h.barcode, h.bib_id, h.owning, h.current_id,
                   left(coalesce(h.location, ''), 100), left(h.callno, 100), h.itype,
                   price_cents_from_text(h.price)
            FROM import_hold h
            WHERE h.wave = p_wave AND h.iw = v_iw AND h.result = 'create'
            ORDER BY h.ord, h.n
            RETURNING *)
        INSERT INTO audit_event (staff_id, workstation_id, branch_id, entity, entity_id, action,
                                 changes)
        SELECT p_staff, p_workstation, v_wsb, 'item', ins.id, 'import',
               import_item_created(ins.barcode, ins.bib_id, v_code[ins.owning_branch_id],
                                   v_code[ins.current_branch_id], ins.location,
                                   ins.call_number, ins.item_type, ins.price_cents, ins.status)
        FROM ins;

        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM import_hold
                                  WHERE wave = p_wave AND iw = v_iw AND result = 'update');
        WITH upd AS (
            UPDATE item i
            SET location = left(coalesce(nullif(h.location, ''), i.location), 100),
                call_number = coalesce(nullif(left(h.callno, 100), ''), i.call_number),
                item_type = h.itype,
                price_cents = CASE WHEN h.has_price AND h.price <> ''
                                   THEN price_cents_from_text(h.price)
                                   ELSE i.price_cents END,
                version = i.version + 1, updated_at = now()
            FROM import_hold h
            WHERE h.item_id = i.id AND h.wave = p_wave
              AND h.iw = v_iw AND h.result = 'update'
            RETURNING i.id, h.old,
                      import_item_json(i.barcode, i.bib_id, v_code[i.owning_branch_id],
                                       v_code[i.current_branch_id], i.location, i.call_number,
                                       i.item_type, i.price_cents, i.status) AS new)
        INSERT INTO audit_event (staff_id, workstation_id, branch_id, entity, entity_id, action,
                                 changes)
        SELECT p_staff, p_workstation, v_wsb, 'item', upd.id, 'reimport',
               audit_diff(upd.old, upd.new)
        FROM upd WHERE upd.old IS DISTINCT FROM upd.new
        ORDER BY upd.id;
    END LOOP;
END
$$;

-- Load one batch of records. p_batch is a JSON array built by the daemon:
--   [{"pos": 1, "off": 0, "marc": "<UTF-8 ISO 2709>", "title": ..., "author": ...,
--     "subjects": [...], "isbns": [...], "issns": [...], "publisher": ..., "year": ...,
--     "format": ..., "language": ..., "call_number": ..., "cn": 001, "cs": 003,
--     "audience": ..., "literary_form": ..., "sids": ["(CARREL-1a2b3c4d)42", ...],
--     "holdings": [{"tag": "852", "sf": [["p", "..."], ...]}]}]
-- A record matches an existing bib on our system number (035
-- "(CARREL-xxxx)id", written by our export), then on 001+003, then on any
-- ISBN (the lowest bib id when several match); it then replaces that bib's
-- record instead of adding a second. One row per record, in batch order.
CREATE OR REPLACE FUNCTION bib_import_batch(p_staff bigint, p_workstation bigint, p_batch jsonb,
                                 p_default_branch text, p_spread boolean)
RETURNS TABLE (pos bigint, bib_id bigint, action text, items_created integer,
               items_updated integer, problems text[])
LANGUAGE plpgsql
-- The scratch tables have no statistics, so the planner guesses them large
-- and would compile each statement (JIT, seconds) for a few hundred rows.
SET jit = off AS $$
DECLARE
    v_default integer;
    v_source text := '(' || library_setting_text('system_number_source') || ')';
    v_wsb integer := (SELECT w.branch_id FROM workstation w WHERE w.id = p_workstation);
    v_seq text := pg_get_serial_sequence('bib', 'id');
    v_lock_timeout text := current_setting('lock_timeout');
    v_wave integer := 0;
    v_ids bigint[];
BEGIN
    v_default := import_default_branch(p_default_branch);
    PERFORM import_scratch();

    INSERT INTO import_rec (ord, pos, marc, title, author, subjects, isbns, issns, publisher,
                            pub_year, format, language, call_number, cn, cs, audience,
                            literary_form, sid, holdings)
    SELECT e.n, (e.r ->> 'pos')::bigint, convert_to(e.r ->> 'marc', 'UTF8'), e.r ->> 'title',
           e.r ->> 'author', ARRAY(SELECT jsonb_array_elements_text(e.r -> 'subjects')),
           ARRAY(SELECT jsonb_array_elements_text(coalesce(e.r -> 'isbns', '[]'))),
           ARRAY(SELECT jsonb_array_elements_text(e.r -> 'issns')), e.r ->> 'publisher',
           e.r ->> 'year', e.r ->> 'format', e.r ->> 'language', e.r ->> 'call_number',
           coalesce(e.r ->> 'cn', ''), coalesce(e.r ->> 'cs', ''),
           coalesce(e.r ->> 'audience', ''), coalesce(e.r ->> 'literary_form', ''),
           -- Our own exports carry the bib id (035 "(CARREL-xxxx)n"): that match
           -- is exact. Another installation's number is only an identifier.
           (SELECT substring(x FROM '\)(\d+)$')::bigint
            FROM jsonb_array_elements_text(e.r -> 'sids') x
            WHERE starts_with(x, v_source) LIMIT 1),
           coalesce(e.r -> 'holdings', '[]') || coalesce(e.r -> 'items', '[]')
    FROM jsonb_array_elements(p_batch) WITH ORDINALITY e(r, n);
    PERFORM import_holdings_load(v_default, p_spread, true);

    -- Imports of the same titles must not interleave their matching. Reading
    -- the batch into the scratch tables (above) needs no lock, so it overlaps
    -- with the batch before, which a client keeps in flight; the batches
    -- queue here for as long as the statement may run, not for the desks'
    -- lock_timeout.
    PERFORM set_config('lock_timeout', '0', true);
    PERFORM pg_advisory_xact_lock(74200002);
    PERFORM set_config('lock_timeout', v_lock_timeout, true);

    WHILE EXISTS (SELECT 1 FROM import_rec r WHERE r.wave IS NULL) LOOP
        v_wave := v_wave + 1;
        -- Every bib each waiting record could match, by index: the system
        -- number, 001+003, any ISBN. (The fenced subqueries keep the planner
        -- from walking the primary key in id order looking for a match.)
        UPDATE import_rec r SET
            sid_hit = (SELECT b.id FROM bib b WHERE b.id = r.sid),
            cn_hits = CASE WHEN r.cn = '' THEN '{}' ELSE ARRAY(
                SELECT m.id FROM (SELECT b.id FROM bib b WHERE b.control_number = r.cn
                                  AND b.control_source = r.cs OFFSET 0) m ORDER BY m.id) END,
            isbn_hits = CASE WHEN cardinality(r.isbns) = 0 THEN '{}' ELSE ARRAY(
                SELECT m.id FROM (SELECT b.id FROM bib b WHERE b.isbns && r.isbns
                                  OFFSET 0) m ORDER BY m.id) END
        WHERE r.wave IS NULL;
        -- This wave: the waiting records that share nothing with an earlier
        -- waiting record.
        WITH t AS (
            SELECT r.ord, 'k' || r.cn || chr(31) || r.cs AS tok
            FROM import_rec r WHERE r.wave IS NULL AND r.cn <> ''
            UNION ALL
            SELECT r.ord, 'i' || x FROM import_rec r, unnest(r.isbns) x WHERE r.wave IS NULL
            UNION ALL
            SELECT r.ord, 'b' || x
            FROM import_rec r, unnest(r.cn_hits || r.isbn_hits || r.sid_hit) x
            WHERE r.wave IS NULL AND x IS NOT NULL
            UNION ALL
            SELECT h.ord, 'c' || h.barcode
            FROM import_hold h JOIN import_rec r ON r.ord = h.ord
            WHERE r.wave IS NULL AND h.result IS NULL),
        late AS (SELECT DISTINCT t1.ord FROM t t1 JOIN t t2 ON t2.tok = t1.tok AND t2.ord < t1.ord)
        UPDATE import_rec r
        SET wave = v_wave,
            bib_id = coalesce(r.sid_hit, r.cn_hits[1], r.isbn_hits[1], nextval(v_seq)),
            action = CASE WHEN coalesce(r.sid_hit, r.cn_hits[1], r.isbn_hits[1]) IS NULL
                          THEN 'created' ELSE 'updated' END
        WHERE r.wave IS NULL AND r.ord NOT IN (SELECT late.ord FROM late);

        -- Records replacing a bib: the bib as it was, locked.
        v_ids := ARRAY(SELECT r.bib_id FROM import_rec r
                       WHERE r.wave = v_wave AND r.action = 'updated');
        IF cardinality(v_ids) > 0 THEN
            WITH x AS MATERIALIZED (
                SELECT b.id, bib_audit_json(b) AS j FROM bib b WHERE b.id = ANY (v_ids) FOR UPDATE)
            UPDATE import_rec r SET old = x.j
            FROM x
            WHERE r.wave = v_wave AND r.action = 'updated' AND r.bib_id = x.id;
            WITH upd AS (
                UPDATE bib b SET marc = r.marc, title = r.title, author = r.author,
                    subjects = r.subjects, isbns = r.isbns, issns = r.issns,
                    publisher = r.publisher, pub_year = r.pub_year, format = r.format,
                    language = r.language, call_number = r.call_number,
                    control_number = r.cn, control_source = r.cs, audience = r.audience,
                    literary_form = r.literary_form, version = b.version + 1,
                    updated_at = now()
                FROM import_rec r
                WHERE r.bib_id = b.id AND r.wave = v_wave
                  AND r.action = 'updated'
                RETURNING b.id, r.old, bib_audit_json(b) AS new)
            INSERT INTO audit_event (staff_id, workstation_id, branch_id, entity, entity_id,
                                     action, changes)
            SELECT p_staff, p_workstation, v_wsb, 'bib', upd.id, 'reimport',
                   audit_diff(upd.old, upd.new)
            FROM upd ORDER BY upd.id;
        END IF;

        WITH ins AS (
            INSERT INTO bib AS b (id, marc, title, author, subjects, isbns, issns, publisher,
                                  pub_year, format, language, call_number, control_number,
                                  control_source, audience, literary_form)
            OVERRIDING SYSTEM VALUE
            SELECT r.bib_id, r.marc, r.title, r.author, r.subjects, r.isbns, r.issns,
                   r.publisher, r.pub_year, r.format, r.language, r.call_number, r.cn, r.cs,
                   r.audience, r.literary_form
            FROM import_rec r WHERE r.wave = v_wave AND r.action = 'created'
            ORDER BY r.ord
            RETURNING b.id, import_bib_created(b.title, b.author, b.subjects, b.isbns, b.issns,
                                               b.publisher, b.pub_year, b.format, b.language,
                                               b.call_number, b.audience, b.literary_form) AS new)
        INSERT INTO audit_event (staff_id, workstation_id, branch_id, entity, entity_id, action,
                                 changes)
        SELECT p_staff, p_workstation, v_wsb, 'bib', ins.id, 'import',
               ins.new
        FROM ins;

        UPDATE import_hold h SET wave = v_wave, bib_id = r.bib_id,
            itype = coalesce(h.itype, item_type_for_format(r.format))
        FROM import_rec r
        WHERE r.ord = h.ord AND r.wave = v_wave;
        PERFORM import_items_apply(p_staff, p_workstation, v_wave);
    END LOOP;

    RETURN QUERY
    SELECT r.pos, r.bib_id, r.action, coalesce(c.created, 0), coalesce(c.updated, 0),
           coalesce(c.problems, '{}')
    FROM import_rec r
    LEFT JOIN (SELECT h.ord, count(*) FILTER (WHERE h.result = 'create')::integer AS created,
                      count(*) FILTER (WHERE h.result = 'update')::integer AS updated,
                      array_agg(h.problem ORDER BY h.n)
                          FILTER (WHERE h.problem IS NOT NULL) AS problems
               FROM import_hold h GROUP BY h.ord) c ON c.ord = r.ord
    ORDER BY r.ord;
END
$$;

-- Copies from a CSV (ItemImportBatch). p_rows: [{"line": 2, "bib": "9780...",
-- "isbn": "978..." (normalized by the daemon when the key is an ISBN),
-- "barcode": ..., "owning_branch": ..., ...}]. The title is found by "#id",
-- by ISBN, or by 001. Answers per row like bib_import_batch, with pos = the
-- CSV line; a row whose title is not found fails, the others load.
CREATE OR REPLACE FUNCTION item_import_rows(p_staff bigint, p_workstation bigint, p_rows jsonb,
                                 p_default_branch text)
RETURNS TABLE (pos bigint, bib_id bigint, action text, items_created integer,
               items_updated integer, problems text[])
LANGUAGE plpgsql
-- The scratch tables have no statistics, so the planner guesses them large
-- and would compile each statement (JIT, seconds) for a few hundred rows.
SET jit = off AS $$
DECLARE
    v_default integer;
BEGIN
    v_default := import_default_branch(p_default_branch);
    PERFORM import_scratch();
    INSERT INTO import_rec (ord, pos, cn, isbns, holdings)
    SELECT e.n, (e.r ->> 'line')::bigint, trim(coalesce(e.r ->> 'bib', '')),
           CASE WHEN e.r ->> 'isbn' IS NULL THEN NULL ELSE ARRAY[e.r ->> 'isbn'] END,
           jsonb_build_array(e.r)
    FROM jsonb_array_elements(p_rows) WITH ORDINALITY e(r, n);
    UPDATE import_rec r SET bib_id = CASE
        WHEN r.cn ~ '^#[0-9]{1,18}$' THEN
            (SELECT b.id FROM bib b WHERE b.id = substr(r.cn, 2)::bigint)
        WHEN r.isbns IS NOT NULL THEN
            (SELECT min(m.id) FROM (SELECT b.id FROM bib b
                                    WHERE b.isbns @> r.isbns OFFSET 0) m)
        ELSE
            (SELECT min(m.id) FROM (SELECT b.id FROM bib b
                                    WHERE b.control_number = r.cn AND r.cn <> ''
                                    OFFSET 0) m) END;
    UPDATE import_rec r SET action = 'failed', wave = 0,
        problems = ARRAY[format('no title matches %s', CASE WHEN r.cn = '' THEN '(empty)'
                                                            ELSE r.cn END)]
    WHERE r.bib_id IS NULL;
    UPDATE import_rec r SET wave = 1, format = b.format FROM bib b
    WHERE r.bib_id IS NOT NULL AND b.id = r.bib_id;
    PERFORM import_holdings_load(v_default, false, false);
    DELETE FROM import_hold h USING import_rec r WHERE r.ord = h.ord AND r.wave = 0;
    UPDATE import_hold h SET wave = 1, bib_id = r.bib_id,
        itype = coalesce(h.itype, item_type_for_format(r.format))
    FROM import_rec r
    WHERE r.ord = h.ord AND r.wave = 1;
    PERFORM import_items_apply(p_staff, p_workstation, 1);

    RETURN QUERY
    SELECT r.pos, r.bib_id,
           CASE WHEN coalesce(c.created, 0) + coalesce(c.updated, 0) > 0 THEN 'updated'
                ELSE 'failed' END,
           coalesce(c.created, 0), coalesce(c.updated, 0),
           coalesce(r.problems, c.problems, '{}')
    FROM import_rec r
    LEFT JOIN (SELECT h.ord, count(*) FILTER (WHERE h.result = 'create')::integer AS created,
                      count(*) FILTER (WHERE h.result = 'update')::integer AS updated,
                      array_agg(h.problem ORDER BY h.n)
                          FILTER (WHERE h.problem IS NOT NULL) AS problems
               FROM import_hold h GROUP BY h.ord) c ON c.ord = r.ord
    ORDER BY r.ord;
END
$$;
