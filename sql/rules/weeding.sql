-- Weeding: the CREW rules (crew_rule_list, crew_rule_save, item_collection),
-- the settings (dead days, keep months, wear per item type), the weeding list
-- and summary of a branch, and the decisions staff record about copies
-- (weeding_decide, weeding_decision_list). Called by server/weeding.c;
-- item_collection also by the display report (displays.sql). docs/WEEDING.md
-- describes the rules for staff. No patron appears in anything here.

-- ---------------------------------------------------------------- call numbers

-- The Dewey number a call number starts with, after the usual prefixes
-- (J, JUV, E, EASY, YA, TEEN, REF, LP, ...): "641.5 SMI" 641.5, "J 599.75 ROB"
-- 599.75, "REF 030 ENC" 30. The biography short forms "92 LINCOLN",
-- "B LINCOLN", "BIO LINCOLN" (also after a prefix: "J B LINCOLN") are 920,
-- biography, so that they fall in the 920s' rule (and count as
-- nonfiction). NULL when there is none ("FIC SMITH", "QA76.73 .P98": Library
-- of Congress numbers have no Dewey number, docs/WEEDING.md). Inlined by the
-- planner; one regular expression, the short one for a call number that
-- starts with its number; the short forms are mapped on the captured text
-- ('|92|' -> '|920|': plain string work, no second expression).
CREATE OR REPLACE FUNCTION dewey_of(p_call_number text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT btrim(replace(replace(replace(replace(replace(
        '|' || CASE WHEN left(ltrim(p_call_number), 1) BETWEEN '0' AND '9'
                 THEN substring(ltrim(p_call_number) FROM '^([0-9]{1,3}(?:\.[0-9]+)?)(?:[^0-9]|$)')
                 WHEN left(ltrim(p_call_number), 1) BETWEEN 'A' AND 'z'
                 THEN substring(upper(p_call_number) FROM
        '^[[:space:]]*(?:(?:J|JUV|JUVENILE|E|EASY|YA|TEEN|REF|REFERENCE|LP|LARGE[[:space:]]+PRINT'
        '|NF|OS|OVERSIZE|PRO|PROF|LOCAL|PB|CD|DVD|AB|AUDIO)[[:space:]./:-]+)*'
        '([0-9]{1,3}(?:\.[0-9]+)?(?=[^0-9]|$)|(?:BIOGRAPHY|BIOG|BIO|B)(?=[^0-9A-Z]|$))') END
        || '|', '|92|', '|920|'), '|B|', '|920|'), '|BIO|', '|920|'), '|BIOG|', '|920|'),
        '|BIOGRAPHY|', '|920|'), '|')::numeric
$$;

-- call_number_shelf_key (the shelf order of call numbers) is in migration
-- 026: the index item_shelf is built on it.

-- item.shelf_key, the copy's call_number_shelf_key: set when call_number (or
-- shelf_key itself) is written, so that a write of anything else (a
-- checkout, a checkin) does not compute it again (migration 038).
CREATE OR REPLACE FUNCTION item_shelf_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.shelf_key := call_number_shelf_key(NEW.call_number);
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER item_shelf_key BEFORE INSERT OR UPDATE OF call_number, shelf_key ON item
    FOR EACH ROW EXECUTE FUNCTION item_shelf_key();

-- The audience of a copy: the bib's (MARC 008/22), else what the call
-- number's prefix says (J, JUV, E, EASY: juvenile; YA, TEEN: young adult),
-- else '' (unknown).
CREATE OR REPLACE FUNCTION item_audience(p_bib_audience text, p_call_number text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- The call number's first word, without a regular expression (once per
    -- copy in the lists).
    SELECT CASE
        WHEN coalesce(p_bib_audience, '') <> '' THEN p_bib_audience
        WHEN upper(split_part(rtrim(split_part(btrim(p_call_number), ' ', 1), '.:/-'), '.', 1))
             IN ('J', 'JUV', 'JUVENILE', 'E', 'EASY') THEN 'juvenile'
        WHEN upper(split_part(rtrim(split_part(btrim(p_call_number), ' ', 1), '.:/-'), '.', 1))
             IN ('YA', 'TEEN') THEN 'young_adult'
        ELSE '' END
$$;

-- The kind of a copy as every CREW match reads it (weeding_list,
-- weeding_summary, item_collections, weeding_decide: one definition, so they
-- cannot drift apart): its call number (its own, else its bib's), that
-- number's Dewey number and the copy's audience. Inlined as a subquery that
-- OFFSET 0 keeps whole: worked out once per copy, not once per rule tried.
CREATE OR REPLACE FUNCTION copy_kind(p_item_call text, p_bib_call text, p_bib_audience text)
RETURNS TABLE (call_number text, dewey numeric, audience text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT k.cn, dewey_of(k.cn), item_audience(p_bib_audience, k.cn)
    FROM (SELECT coalesce(nullif(p_item_call, ''), p_bib_call) AS cn) k
    OFFSET 0
$$;

-- Whether a copy is kept (a keep decision at p_branch after p_keep_at, that
-- is within keep_months): the list leaves it out and the summary does not
-- count it as a candidate (one predicate for both). A keep binds the branch
-- that decided it: after a transfer the new owner judges the copy afresh.
CREATE OR REPLACE FUNCTION weeding_kept(p_item bigint, p_branch integer,
                                        p_keep_at timestamptz) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (SELECT 1 FROM weeding_decision d
                   WHERE d.item_id = p_item AND d.decision = 'keep'
                     AND d.decided_at > p_keep_at AND d.branch_id = p_branch)
$$;

-- ---------------------------------------------------------------- CREW rules

-- The rules in effect at a branch: its own rows, and the system rows it
-- does not override (same collection). p_branch NULL: the system rows.
CREATE OR REPLACE FUNCTION crew_rules_in_effect(p_branch integer) RETURNS SETOF crew_rule
LANGUAGE sql STABLE AS $$
    SELECT r.* FROM crew_rule r WHERE r.branch_id = p_branch
    UNION ALL
    SELECT s.* FROM crew_rule s
    WHERE s.branch_id IS NULL
      AND NOT EXISTS (SELECT 1 FROM crew_rule o
                      WHERE o.branch_id = p_branch AND o.collection = s.collection)
$$;

-- Does a copy meet a rule's conditions (every condition given)? Dewey: within
-- dewey_from..dewey_to (inclusive); location: the copy's location starts
-- with the rule's, case folded; audience: 'juvenile' is a juvenile copy,
-- 'adult' any other (young adult and unknown too); fiction: the bib's
-- literary form, or when unknown, fiction without a Dewey number and
-- nonfiction with one. One expression: inlined into the lists.
CREATE OR REPLACE FUNCTION crew_fits(p_from numeric, p_to numeric, p_rule_location text,
                                     p_rule_audience text, p_rule_fiction text,
                                     p_dewey numeric, p_location text, p_audience text,
                                     p_fiction text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (p_from IS NULL OR p_dewey BETWEEN p_from AND p_to)
       AND (p_rule_location = ''
            OR starts_with(lower(coalesce(p_location, '')), lower(p_rule_location)))
       AND (p_rule_audience = 'any'
            OR p_rule_audience = CASE WHEN p_audience = 'juvenile' THEN 'juvenile'
                                      ELSE 'adult' END)
       AND (p_rule_fiction = 'any'
            OR p_rule_fiction = CASE WHEN p_fiction IN ('fiction', 'nonfiction') THEN p_fiction
                                     WHEN p_dewey IS NULL THEN 'fiction'
                                     ELSE 'nonfiction' END)
$$;

-- The collection the rules in effect at p_branch give a copy with this Dewey
-- number (dewey_of), shelving location, audience ('juvenile', 'young_adult',
-- 'adult', ''; the lists pass item_audience(bib.audience, call number), which
-- reads a J or E prefix when the bib says nothing) and literary form
-- ('fiction', 'nonfiction', ''): the first rule by ord (then collection code)
-- it fits. NULL: no rule fits.
CREATE OR REPLACE FUNCTION item_collection(p_branch integer, p_dewey numeric, p_location text,
                                           p_audience text, p_fiction text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT r.collection FROM crew_rules_in_effect(p_branch) r
    WHERE crew_fits(r.dewey_from, r.dewey_to, r.location, r.audience, r.fiction,
                    p_dewey, p_location, p_audience, p_fiction)
    ORDER BY r.ord, r.collection
    LIMIT 1
$$;

-- The collection of every copy a branch owns (any status), in one pass:
-- the same answer as item_collection per copy, with the rules read once and
-- the Dewey number and audience worked out once per copy (the display
-- report's strata use it for a branch's whole stock). '' : no rule fits.
CREATE OR REPLACE FUNCTION item_collections(p_branch integer)
RETURNS TABLE (item_id bigint, collection text)
LANGUAGE sql STABLE AS $$
    WITH rules AS MATERIALIZED (
        SELECT r.collection, r.dewey_from, r.dewey_to, r.location, r.audience, r.fiction,
               r.ord
        FROM crew_rules_in_effect(p_branch) r)
    SELECT i.id, coalesce(m.collection, '')
    FROM item i
    JOIN bib b ON b.id = i.bib_id
    CROSS JOIN LATERAL copy_kind(i.call_number, b.call_number, b.audience) k
    LEFT JOIN LATERAL (
        SELECT r.collection FROM rules r
        WHERE crew_fits(r.dewey_from, r.dewey_to, r.location, r.audience, r.fiction,
                        k.dewey, i.location, k.audience, b.literary_form)
        ORDER BY r.ord, r.collection LIMIT 1) m ON true
    WHERE i.owning_branch_id = p_branch
$$;

-- Whether some rule in effect at the branch (code; NULL: the system table)
-- is a shipped default nobody has reviewed.
CREATE OR REPLACE FUNCTION crew_rules_unreviewed(p_branch text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM crew_rules_in_effect((SELECT id FROM branch
                                                       WHERE code = upper(p_branch))) r
                   WHERE NOT r.reviewed)
$$;

-- A rule as the daemon reads it (CrewRule order).
CREATE OR REPLACE FUNCTION crew_rule_row(r crew_rule)
RETURNS TABLE (id bigint, branch_code text, collection text, name text, dewey_from text,
               dewey_to text, location text, audience text, fiction text,
               max_age_years integer, max_idle_years integer, mustie text,
               dead_target_pct integer, ord integer, reviewed boolean, source text)
LANGUAGE sql STABLE AS $$
    SELECT r.id, coalesce((SELECT b.code FROM branch b WHERE b.id = r.branch_id), ''),
           r.collection, r.name, r.dewey_from::text, r.dewey_to::text, r.location, r.audience,
           r.fiction, r.max_age_years::integer, r.max_idle_years::integer, r.mustie,
           r.dead_target_pct::integer, r.ord, r.reviewed,
           CASE WHEN r.branch_id IS NULL THEN 'system' ELSE 'branch' END
$$;

-- The rules in effect at a branch (code; unknown: CR400 field:branch_code),
-- or with p_system_only the system table itself, in matching order.
CREATE OR REPLACE FUNCTION crew_rule_list(p_branch text, p_system_only boolean)
RETURNS TABLE (id bigint, branch_code text, collection text, name text, dewey_from text,
               dewey_to text, location text, audience text, fiction text,
               max_age_years integer, max_idle_years integer, mustie text,
               dead_target_pct integer, ord integer, reviewed boolean, source text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_branch integer;
BEGIN
    IF NOT coalesce(p_system_only, false) THEN
        v_branch := schedule_branch(upper(p_branch), 'branch_code');
    END IF;
    RETURN QUERY
    SELECT x.* FROM crew_rules_in_effect(v_branch) r, LATERAL crew_rule_row(r) x
    ORDER BY r.ord, r.collection;
END
$$;

-- A Dewey bound of a rule: NULL when absent or empty, else a number 0-999.999.
CREATE OR REPLACE FUNCTION crew_dewey(p_text text, p_field text) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF coalesce(btrim(p_text), '') = '' THEN
        RETURN NULL;
    END IF;
    IF btrim(p_text) !~ '^[0-9]{1,3}(\.[0-9]{1,10})?$' THEN
        PERFORM field_refuse(p_field, format('A Dewey number is 0 to 999.999..., not %s.',
                                             p_text));
    END IF;
    RETURN btrim(p_text)::numeric;
END
$$;

-- Create or replace the row (branch_code, collection) of the CREW table, or
-- remove it (p_remove). p_doc: CrewRuleSave ({"rule": {...}}) or the rule.
-- Absent fields other than X and Y are those of the row replaced (the
-- branch's own row, else the system row of the collection), else the
-- defaults; X (max_age_years) and Y (max_idle_years) absent are "not
-- applicable" (collections.proto). A saved row is reviewed. The system
-- table needs p_system_ok (coordinator, admin: CR403 role); a branch's rows
-- its scope (CR403 branch). Removing a row that does not exist: CR404
-- crew_rule. Returns the row (a removed one as it was).
CREATE OR REPLACE FUNCTION crew_rule_save(p_staff bigint, p_workstation bigint,
                                          p_scope integer, p_system_ok boolean, p_doc jsonb,
                                          p_remove boolean)
RETURNS TABLE (id bigint, branch_code text, collection text, name text, dewey_from text,
               dewey_to text, location text, audience text, fiction text,
               max_age_years integer, max_idle_years integer, mustie text,
               dead_target_pct integer, ord integer, reviewed boolean, source text)
LANGUAGE plpgsql AS $$
DECLARE
    d jsonb := coalesce(p_doc -> 'rule', p_doc, '{}');
    v_code text := nullif(upper(btrim(coalesce(d ->> 'branch_code', ''))), '');
    v_branch integer;
    v_coll text := lower(btrim(coalesce(d ->> 'collection', '')));
    v_old crew_rule;
    v_base crew_rule;
    v_new crew_rule;
BEGIN
    IF v_code IS NULL THEN
        IF NOT coalesce(p_system_ok, false) THEN
            RAISE EXCEPTION USING ERRCODE = 'CR403', DETAIL = 'role',
                MESSAGE = 'Only a coordinator or an administrator may change the system CREW '
                          'table; give a branch_code to change a branch''s rules.';
        END IF;
    ELSE
        v_branch := schedule_branch(v_code, 'branch_code');
        PERFORM branch_scope_check(p_scope, v_branch, 'change the CREW rules of');
    END IF;
    IF v_coll !~ '^[a-z][a-z0-9_-]{0,31}$' THEN
        PERFORM field_refuse('collection', 'A collection code is a lower-case letter, then up '
                             'to 31 letters, digits, - or _ (e.g. nf_600).');
    END IF;
    SELECT * INTO v_old FROM crew_rule c
    WHERE c.branch_id IS NOT DISTINCT FROM v_branch AND c.collection = v_coll FOR UPDATE;

    IF coalesce(p_remove, false) THEN
        IF v_old.id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'crew_rule',
                MESSAGE = format('%s has no CREW rule %s.', coalesce(v_code, 'The system table'),
                                 v_coll);
        END IF;
        DELETE FROM crew_rule c WHERE c.id = v_old.id;
        INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
        VALUES (p_staff, p_workstation, 'crew_rule_remove',
                coalesce(v_code, 'system') || '/' || v_coll, to_jsonb(v_old));
        RETURN QUERY SELECT * FROM crew_rule_row(v_old);
        RETURN;
    END IF;

    v_base := v_old;
    IF v_base.id IS NULL AND v_branch IS NOT NULL THEN
        SELECT * INTO v_base FROM crew_rule c WHERE c.branch_id IS NULL AND c.collection = v_coll;
    END IF;
    v_new.branch_id := v_branch;
    v_new.collection := v_coll;
    v_new.name := coalesce(nullif(btrim(d ->> 'name'), ''), v_base.name);
    IF v_new.name IS NULL OR length(v_new.name) > 100 THEN
        PERFORM field_refuse('name', 'A collection needs a name of 1 to 100 characters.');
    END IF;
    IF d ? 'dewey_from' OR d ? 'dewey_to' THEN
        v_new.dewey_from := crew_dewey(d ->> 'dewey_from', 'dewey_from');
        v_new.dewey_to := crew_dewey(d ->> 'dewey_to', 'dewey_to');
    ELSE
        v_new.dewey_from := v_base.dewey_from;
        v_new.dewey_to := v_base.dewey_to;
    END IF;
    IF (v_new.dewey_from IS NULL) <> (v_new.dewey_to IS NULL) THEN
        PERFORM field_refuse(CASE WHEN v_new.dewey_to IS NULL THEN 'dewey_to'
                                  ELSE 'dewey_from' END,
                             'A Dewey range needs both ends (or neither).');
    END IF;
    IF v_new.dewey_from > v_new.dewey_to THEN
        PERFORM field_refuse('dewey_to', format('The range ends (%s) before it starts (%s).',
                                                v_new.dewey_to, v_new.dewey_from));
    END IF;
    v_new.location := btrim(coalesce(d ->> 'location', v_base.location, ''));
    IF length(v_new.location) > 100 THEN
        PERFORM field_refuse('location', 'A location is at most 100 characters.');
    END IF;
    v_new.audience := coalesce(nullif(lower(d ->> 'audience'), ''), v_base.audience, 'any');
    IF v_new.audience NOT IN ('adult', 'juvenile', 'any') THEN
        PERFORM field_refuse('audience', 'The audience is adult, juvenile or any.');
    END IF;
    v_new.fiction := coalesce(nullif(lower(d ->> 'fiction'), ''), v_base.fiction, 'any');
    IF v_new.fiction NOT IN ('fiction', 'nonfiction', 'any') THEN
        PERFORM field_refuse('fiction', 'Fiction is fiction, nonfiction or any.');
    END IF;
    v_new.max_age_years := service_int(d, 'max_age_years', 'max_age_years');
    IF v_new.max_age_years NOT BETWEEN 1 AND 100 THEN
        PERFORM field_refuse('max_age_years', 'X is 1 to 100 years (or not applicable).');
    END IF;
    v_new.max_idle_years := service_int(d, 'max_idle_years', 'max_idle_years');
    IF v_new.max_idle_years NOT BETWEEN 1 AND 100 THEN
        PERFORM field_refuse('max_idle_years', 'Y is 1 to 100 years (or not applicable).');
    END IF;
    v_new.mustie := coalesce(d ->> 'mustie', v_base.mustie, '');
    IF length(v_new.mustie) > 500 THEN
        PERFORM field_refuse('mustie', 'MUSTIE notes are at most 500 characters.');
    END IF;
    v_new.dead_target_pct := coalesce(service_int(d, 'dead_target_pct', 'dead_target_pct'),
                                      v_base.dead_target_pct, 20);
    IF v_new.dead_target_pct NOT BETWEEN 0 AND 100 THEN
        PERFORM field_refuse('dead_target_pct', 'The dead target is 0 to 100 per cent.');
    END IF;
    v_new.ord := coalesce(service_int(d, 'ord', 'ord'), v_base.ord,
                          (SELECT max(r.ord) + 10 FROM crew_rules_in_effect(v_branch) r), 10);

    IF v_old.id IS NULL THEN
        INSERT INTO crew_rule (branch_id, collection, name, dewey_from, dewey_to, location,
                               audience, fiction, max_age_years, max_idle_years, mustie,
                               dead_target_pct, ord, reviewed, updated_by)
        VALUES (v_branch, v_coll, v_new.name, v_new.dewey_from, v_new.dewey_to,
                v_new.location, v_new.audience, v_new.fiction, v_new.max_age_years,
                v_new.max_idle_years, v_new.mustie, v_new.dead_target_pct, v_new.ord, true,
                p_staff)
        RETURNING * INTO v_new;
    ELSE
        UPDATE crew_rule c SET name = v_new.name, dewey_from = v_new.dewey_from,
            dewey_to = v_new.dewey_to, location = v_new.location, audience = v_new.audience,
            fiction = v_new.fiction, max_age_years = v_new.max_age_years,
            max_idle_years = v_new.max_idle_years, mustie = v_new.mustie,
            dead_target_pct = v_new.dead_target_pct, ord = v_new.ord, reviewed = true,
            updated_by = p_staff, updated_at = now()
        WHERE c.id = v_old.id
        RETURNING * INTO v_new;
    END IF;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_staff, p_workstation, 'crew_rule_save', coalesce(v_code, 'system') || '/' || v_coll,
            audit_diff(to_jsonb(v_old), to_jsonb(v_new),
                       '{id,updated_at,updated_by,reviewed}'));
    RETURN QUERY SELECT * FROM crew_rule_row(v_new);
END
$$;

-- ---------------------------------------------------------------- settings

CREATE OR REPLACE FUNCTION weeding_settings_get()
RETURNS TABLE (dead_days integer, keep_months integer, wear_types text[], wear_uses integer[])
LANGUAGE sql STABLE AS $$
    SELECT library_setting_text('weeding_dead_days')::integer,
           library_setting_text('weeding_keep_months')::integer,
           (SELECT array_agg(t.code ORDER BY t.code) FROM item_type t),
           (SELECT array_agg(t.wear_uses ORDER BY t.code) FROM item_type t)
$$;

-- p_doc: WeedingSettingsSave ({"settings": {...}}) or the settings. Absent
-- fields stay; a wear row replaces its item type's threshold. Coordinator,
-- admin (the daemon checks). One admin_audit row with what changed.
CREATE OR REPLACE FUNCTION weeding_settings_save(p_staff bigint, p_workstation bigint,
                                                 p_doc jsonb)
RETURNS TABLE (dead_days integer, keep_months integer, wear_types text[], wear_uses integer[])
LANGUAGE plpgsql AS $$
DECLARE
    d jsonb := coalesce(p_doc -> 'settings', p_doc, '{}');
    v_before jsonb := (SELECT to_jsonb(s) FROM weeding_settings_get() s);
    v_dead bigint := service_int(d, 'dead_days', 'dead_days');
    v_keep bigint := service_int(d, 'keep_months', 'keep_months');
    w jsonb;
    v_type text;
    v_uses bigint;
BEGIN
    IF v_dead IS NOT NULL THEN
        IF v_dead NOT BETWEEN 1 AND 3650 THEN
            PERFORM field_refuse('dead_days', 'Dead days are 1 to 3650.');
        END IF;
        UPDATE library_setting SET value = v_dead::text WHERE name = 'weeding_dead_days';
    END IF;
    IF v_keep IS NOT NULL THEN
        IF v_keep NOT BETWEEN 0 AND 120 THEN
            PERFORM field_refuse('keep_months', 'Keep months are 0 to 120.');
        END IF;
        UPDATE library_setting SET value = v_keep::text WHERE name = 'weeding_keep_months';
    END IF;
    FOR w IN SELECT * FROM jsonb_array_elements(coalesce(d -> 'wear', '[]')) LOOP
        v_type := item_type_resolve(w ->> 'item_type');
        IF v_type IS NULL THEN
            PERFORM field_refuse('wear', format('There is no item type %s.',
                                                coalesce(w ->> 'item_type', '(none)')));
        END IF;
        v_uses := service_int(w, 'max_uses', 'wear');
        IF v_uses IS NULL OR v_uses NOT BETWEEN 0 AND 100000 THEN
            PERFORM field_refuse('wear', format('The wear threshold of %s is 0 to 100000 '
                                                'checkouts.', v_type));
        END IF;
        UPDATE item_type SET wear_uses = v_uses WHERE code = v_type;
    END LOOP;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    SELECT p_staff, p_workstation, 'weeding_settings', 'weeding',
           audit_diff(v_before, to_jsonb(s), '{}')
    FROM weeding_settings_get() s;
    RETURN QUERY SELECT * FROM weeding_settings_get();
END
$$;

-- ---------------------------------------------------------------- the list

-- The cut-offs of a list at a branch, read once: the settings and the times
-- "dead" and "kept" are measured from.
CREATE OR REPLACE FUNCTION weeding_cutoffs(OUT dead_days integer, OUT keep_months integer,
                                           OUT dead_at timestamptz, OUT dead_on date,
                                           OUT keep_at timestamptz, OUT today date,
                                           OUT tz text)
LANGUAGE sql STABLE AS $$
    SELECT s.d, s.k, now() - make_interval(days => s.d), library_today() - s.d,
           now() - make_interval(months => s.k), library_today(),
           library_setting_text('timezone')
    FROM (SELECT library_setting_text('weeding_dead_days')::integer AS d,
                 library_setting_text('weeding_keep_months')::integer AS k) s
$$;

-- The weeding list of a branch (code) in shelf order: copies owned by the
-- branch and on its shelves (status available) that are past X (years since
-- the latest copyright) or Y (years since the last use, or since added when
-- never used) of their collection, worn (checkouts above their item type's
-- wear_uses), or with p_include_dead dead (no use in dead_days). Left out:
-- titles with holds waiting, copies kept within keep_months.
-- Recommendation: transfer (under-used here, not worn, and in demand at
-- another branch: its copies there used within dead_days or more per copy
-- than this one; transfer_to = the busiest such branch), review (the last
-- copy in the system; or only dead), replace (worn), else withdraw.
-- Shelf order: call_number_shelf_key of the copy's call number, then the
-- barcode. shelf_key = that key, chr(1), the barcode; p_after: the shelf_key
-- of the last row of the previous page. At most p_limit rows (the daemon asks
-- one more to know whether another page follows). p_collection: one
-- collection (CR404 crew_rule when no rule in effect at the branch has it).
--
-- Speed (target: a whole branch's list, 70,000 copies on its shelves, well
-- under 1 s): the copies are read in index order (item_shelf, on the stored
-- item.shelf_key, migration 030; since 036 over every copy of the branch,
-- those off the shelf skipped as read) from p_after and the scan stops at p_limit
-- candidates, so a page costs the rows it reads and all pages together one
-- pass over the shelf. Per row: its bib by key, the bounds every rule shares
-- (smallest X and Y, worn, dead) before anything else, then its kind
-- (copy_kind) and its class; the rules are tried once per class of the
-- chunk, not per copy. The holds and keep probes by index; the last-copy and
-- demand lookups only for the page's rows. circ_event is never read:
-- last_used_at is kept on the item by circulation. What is left per copy is
-- the bib probe and copy_kind's regular expression (about 3 s of CPU for a
-- whole 71k-copy branch on the loaded 2-core machine, issue 13's bench).
CREATE OR REPLACE FUNCTION weeding_list(p_branch text, p_collection text, p_after text,
                                        p_limit integer, p_include_dead boolean)
RETURNS TABLE (item_id bigint, barcode text, title text, author text, call_number text,
               year text, last_used text, uses integer, collection text,
               recommendation text, reason text, reasons text[], transfer_to text,
               last_copy boolean, location text, item_type text, status text,
               shelf_key text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_branch integer := schedule_branch(upper(p_branch), 'branch_code');
    v_coll text := nullif(lower(btrim(p_collection)), '');
    v_after_key text := coalesce(split_part(p_after, E'\x01', 1), '');
    v_after_barcode text := coalesce(split_part(p_after, E'\x01', 2), '');
    v_dead boolean := coalesce(p_include_dead, false);
    c record;
    v_year integer := extract(year FROM library_today())::integer;
    v_left integer := p_limit;
    v_chunk integer := least(greatest(p_limit, 250) * 2, 10000);
    v_end_key text;
    v_end_barcode text;
    v_got integer;
    v_min_x integer;
    v_min_y integer;
    v_froms numeric[];
    v_tos numeric[];
BEGIN
    IF v_coll IS NOT NULL AND NOT EXISTS (SELECT 1 FROM crew_rules_in_effect(v_branch) r
                                          WHERE r.collection = v_coll) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'crew_rule',
            MESSAGE = format('No CREW rule at %s has the collection %s.', upper(p_branch),
                             v_coll);
    END IF;
    IF p_limit IS NULL OR p_limit < 1 THEN
        PERFORM field_refuse('limit', 'The limit is at least 1.');
    END IF;
    SELECT * INTO c FROM weeding_cutoffs();
    -- What the rules in effect share: the smallest X and Y (a copy within
    -- both, not worn and not dead is no candidate whatever its rule), and
    -- the ends of their Dewey ranges, sorted (dewey_to negated: width_bucket
    -- counts the bounds <= its operand).
    SELECT min(r.max_age_years), min(r.max_idle_years),
           coalesce(array_agg(r.dewey_from ORDER BY r.dewey_from)
                        FILTER (WHERE r.dewey_from IS NOT NULL), '{}'),
           coalesce(array_agg(-r.dewey_to ORDER BY -r.dewey_to)
                        FILTER (WHERE r.dewey_to IS NOT NULL), '{}')
    INTO v_min_x, v_min_y, v_froms, v_tos
    FROM crew_rules_in_effect(v_branch) r;
    -- The shelf is read in chunks of copies in shelf order (a plain index
    -- range: its plan cannot turn into "judge every copy, then sort"), each
    -- chunk's candidates returned in order, until the page is full.
    LOOP
        SELECT x.k, x.b INTO v_end_key, v_end_barcode
        FROM (SELECT i.shelf_key AS k,
                     i.barcode COLLATE "C" AS b
              FROM item i
              WHERE i.owning_branch_id = v_branch AND i.status = 'available'
                AND (i.shelf_key, i.barcode COLLATE "C")
                    > (v_after_key COLLATE "C", v_after_barcode COLLATE "C")
              ORDER BY i.shelf_key, i.barcode COLLATE "C"
              LIMIT v_chunk) x
        ORDER BY x.k DESC, x.b DESC
        LIMIT 1;
        EXIT WHEN v_end_key IS NULL;
        RETURN QUERY
        WITH rules AS MATERIALIZED (
            SELECT r.collection, r.dewey_from, r.dewey_to, r.location, r.audience, r.fiction,
                   r.max_age_years, r.max_idle_years, r.ord
            FROM crew_rules_in_effect(v_branch) r),
        -- The chunk's copies that could be candidates under some rule in
        -- effect (older than the smallest X, idle longer than the smallest Y,
        -- worn, or dead when asked): a copy failing all four bounds fails
        -- them for its own rule too, and is not classified at all.
        copies AS MATERIALIZED (
            SELECT i.id, i.barcode, i.bib_id, b.title, b.author,
                   i.call_number AS item_call, b.call_number AS bib_call, b.pub_year,
                   b.audience AS bib_audience, b.literary_form,
                   i.last_used_at, i.date_added, i.circ_count, i.in_house_uses, i.location,
                   i.item_type, i.status, t.wear_uses,
                   i.shelf_key || E'\x01' || i.barcode AS key
            FROM item i
            JOIN bib b ON b.id = i.bib_id
            JOIN item_type t ON t.code = i.item_type
            WHERE i.owning_branch_id = v_branch AND i.status = 'available'
              AND (i.shelf_key, i.barcode COLLATE "C")
                  > (v_after_key COLLATE "C", v_after_barcode COLLATE "C")
              AND (i.shelf_key, i.barcode COLLATE "C")
                  <= (v_end_key COLLATE "C", v_end_barcode COLLATE "C")
              AND i.current_branch_id = v_branch
              AND ((v_min_x IS NOT NULL AND b.pub_year <> ''
                    AND v_year - b.pub_year::integer > v_min_x)
                   OR (v_min_y IS NOT NULL
                       AND CASE WHEN i.last_used_at IS NOT NULL
                                THEN i.last_used_at < now() - make_interval(years => v_min_y)
                                ELSE i.date_added < c.today - make_interval(years => v_min_y)
                           END)
                   OR (t.wear_uses > 0 AND i.circ_count > t.wear_uses)
                   OR (v_dead AND CASE WHEN i.last_used_at IS NOT NULL
                                       THEN i.last_used_at < c.dead_at
                                       ELSE i.date_added < c.dead_on END))),
        -- Each copy's kind once (Dewey number, audience), and its class: the
        -- Dewey number's place among the rules' range ends (how many
        -- dewey_from are <= it, how many dewey_to are >= it: copies alike in
        -- both fit the same ranges), its location, juvenile or not, literary
        -- form. Every copy of a class fits the same rules (crew_fits reads
        -- nothing else), so the rules are tried once per class, not per copy.
        kinds AS MATERIALIZED (
            SELECT p.*, k.call_number AS cn, k.dewey, k.audience,
                   k.dewey IS NULL AS k_none,
                   coalesce(width_bucket(k.dewey, v_froms), -1) AS k_from,
                   coalesce(width_bucket(-k.dewey, v_tos), -1) AS k_to,
                   lower(p.location) AS k_loc, k.audience = 'juvenile' AS k_juv
            FROM copies p
            -- copy_kind's OFFSET 0: worked out once per copy.
            CROSS JOIN LATERAL copy_kind(p.item_call, p.bib_call, p.bib_audience) k),
        classes AS MATERIALIZED (
            SELECT s.k_none, s.k_from, s.k_to, s.k_loc, s.k_juv, s.literary_form,
                   m.collection, m.max_age_years, m.max_idle_years
            FROM (SELECT g.k_none, g.k_from, g.k_to, g.k_loc, g.k_juv, g.literary_form,
                         min(g.dewey) AS dewey, min(g.location) AS location,
                         min(g.audience) AS audience
                  FROM kinds g
                  GROUP BY g.k_none, g.k_from, g.k_to, g.k_loc, g.k_juv, g.literary_form) s
            LEFT JOIN LATERAL (
                SELECT r.collection, r.max_age_years, r.max_idle_years FROM rules r
                WHERE crew_fits(r.dewey_from, r.dewey_to, r.location, r.audience, r.fiction,
                                s.dewey, s.location, s.audience, s.literary_form)
                ORDER BY r.ord, r.collection LIMIT 1) m ON true),
        page AS (
            SELECT g.id, g.barcode, g.bib_id, g.title, g.author, g.cn, g.pub_year,
                   g.last_used_at, g.date_added, g.circ_count, g.in_house_uses, g.location,
                   g.item_type, g.status, g.wear_uses, m.collection, m.max_age_years AS x,
                   m.max_idle_years AS y, f.past_x, f.past_y, f.dead, f.worn, g.key
            FROM kinds g
            JOIN classes m ON m.k_none = g.k_none AND m.k_from = g.k_from
                          AND m.k_to = g.k_to AND m.k_loc = g.k_loc AND m.k_juv = g.k_juv
                          AND m.literary_form = g.literary_form
            CROSS JOIN LATERAL (
                SELECT (m.max_age_years IS NOT NULL AND g.pub_year <> ''
                        AND v_year - g.pub_year::integer > m.max_age_years) AS past_x,
                       (m.max_idle_years IS NOT NULL
                        AND CASE WHEN g.last_used_at IS NOT NULL
                                 THEN g.last_used_at
                                      < now() - make_interval(years => m.max_idle_years)
                                 ELSE g.date_added
                                      < c.today - make_interval(years => m.max_idle_years)
                            END) AS past_y,
                       CASE WHEN g.last_used_at IS NOT NULL THEN g.last_used_at < c.dead_at
                            ELSE g.date_added < c.dead_on END AS dead,
                       (g.wear_uses > 0 AND g.circ_count > g.wear_uses) AS worn) f
            WHERE (v_coll IS NULL OR m.collection = v_coll)
              AND (f.past_x OR f.past_y OR f.worn OR (v_dead AND f.dead))
              AND NOT EXISTS (SELECT 1 FROM hold h WHERE h.bib_id = g.bib_id
                                                     AND h.status = 'waiting')
              AND NOT weeding_kept(g.id, v_branch, c.keep_at)
            ORDER BY g.key COLLATE "C"
            LIMIT v_left),
        judged AS MATERIALIZED (
            SELECT g.*,
                   NOT EXISTS (SELECT 1 FROM item o
                               WHERE o.bib_id = g.bib_id AND o.id <> g.id
                                 AND o.status NOT IN ('withdrawn', 'lost', 'missing'))
                       AS is_last,
                   dm.code AS demand_code
            FROM page g
            LEFT JOIN LATERAL (
                SELECT ob.code
                FROM item o JOIN branch ob ON ob.id = o.owning_branch_id
                WHERE o.bib_id = g.bib_id AND o.owning_branch_id <> v_branch
                  AND o.status NOT IN ('withdrawn', 'lost', 'missing')
                  AND (g.past_y OR g.dead) AND NOT g.worn
                GROUP BY ob.code
                HAVING max(o.last_used_at) >= c.dead_at
                    OR sum(o.circ_count + o.in_house_uses)::numeric / count(*)
                       > g.circ_count + g.in_house_uses
                ORDER BY sum(o.circ_count + o.in_house_uses)::numeric / count(*) DESC,
                         max(o.last_used_at) DESC NULLS LAST, ob.code
                LIMIT 1) dm ON true)
        SELECT j.id, j.barcode, j.title, j.author, j.cn, j.pub_year,
               coalesce(to_char(j.last_used_at AT TIME ZONE c.tz, 'YYYY-MM-DD'), ''),
               j.circ_count + j.in_house_uses, coalesce(j.collection, ''),
               CASE WHEN j.demand_code IS NOT NULL THEN 'transfer'
                    WHEN j.is_last THEN 'review'
                    WHEN j.worn THEN 'replace'
                    WHEN j.past_x OR j.past_y THEN 'withdraw'
                    ELSE 'review' END,
               weeding_sentence(concat_ws('; ',
                   CASE WHEN j.past_x THEN format('published %s, over %s years ago', j.pub_year,
                                                  j.x) END,
                   CASE WHEN j.past_y AND j.last_used_at IS NULL
                        THEN format('never used since added %s, over %s years', j.date_added, j.y)
                        WHEN j.past_y
                        THEN format('last used %s, over %s years ago',
                                    to_char(j.last_used_at AT TIME ZONE c.tz, 'YYYY-MM-DD'), j.y)
                        END,
                   CASE WHEN j.dead AND NOT j.past_y
                        THEN format('no use in %s days', c.dead_days) END,
                   CASE WHEN j.worn THEN format('worn: %s checkouts (a %s wears out at %s)',
                                                j.circ_count, j.item_type, j.wear_uses) END,
                   CASE WHEN j.demand_code IS NOT NULL
                        THEN format('in demand at %s: transfer it there', j.demand_code) END,
                   CASE WHEN j.is_last
                        THEN 'the last copy in the system: review before discarding' END)),
               array_remove(ARRAY[CASE WHEN j.past_x THEN 'age' END,
                                  CASE WHEN j.past_y THEN 'idle' END,
                                  CASE WHEN j.dead THEN 'dead' END,
                                  CASE WHEN j.worn THEN 'worn' END,
                                  CASE WHEN j.is_last THEN 'last_copy' END,
                                  CASE WHEN j.demand_code IS NOT NULL THEN 'demand_elsewhere' END],
                            NULL),
               j.demand_code, j.is_last, j.location, j.item_type, j.status::text, j.key
        FROM judged j
        ORDER BY j.key COLLATE "C";
        GET DIAGNOSTICS v_got = ROW_COUNT;
        v_left := v_left - v_got;
        EXIT WHEN v_left <= 0;
        v_after_key := v_end_key;
        v_after_barcode := v_end_barcode;
    END LOOP;
END
$$;

-- A reason as a sentence: its first letter upper-cased.
CREATE OR REPLACE FUNCTION weeding_sentence(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT upper(left(p_text, 1)) || substr(p_text, 2) $$;

-- ---------------------------------------------------------------- the summary

-- Evidence per collection at a branch (code), or at every branch (p_all):
-- copies owned (not withdrawn or lost), dead ones (on the shelf, no use in
-- dead_days) and their share of the copies against the collection's target,
-- candidates (on the shelf, past X or Y, not held for, not kept: as the
-- list), worn copies, the median age of those with a known year. Copies no
-- rule fits are one row with collection ''. Rows by branch code, then rule
-- order.
CREATE OR REPLACE FUNCTION weeding_summary(p_branch text, p_all boolean)
RETURNS TABLE (branch_code text, collection text, name text, copies integer, dead integer,
               dead_pct double precision, target_pct integer, over_target boolean,
               candidates integer, worn integer, median_age_years integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_branch branch;
    v_one integer;
    c record;
    v_year integer := extract(year FROM library_today())::integer;
BEGIN
    IF NOT coalesce(p_all, false) THEN
        v_one := schedule_branch(upper(p_branch), 'branch_code');
    END IF;
    SELECT * INTO c FROM weeding_cutoffs();
    FOR v_branch IN
        SELECT * FROM branch b WHERE v_one IS NULL OR b.id = v_one ORDER BY b.code
    LOOP
        RETURN QUERY
        WITH rules AS MATERIALIZED (
            SELECT r.collection, r.name, r.dewey_from, r.dewey_to, r.location, r.audience,
                   r.fiction, r.max_age_years, r.max_idle_years, r.dead_target_pct, r.ord
            FROM crew_rules_in_effect(v_branch.id) r),
        copies AS (
            SELECT m.collection,
                   (i.status = 'available' AND i.current_branch_id = v_branch.id) AS shelf,
                   CASE WHEN i.last_used_at IS NOT NULL THEN i.last_used_at < c.dead_at
                        ELSE i.date_added < c.dead_on END AS is_dead,
                   (m.max_age_years IS NOT NULL AND b.pub_year <> ''
                    AND v_year - b.pub_year::integer > m.max_age_years)
                   OR (m.max_idle_years IS NOT NULL
                       AND CASE WHEN i.last_used_at IS NOT NULL
                                THEN i.last_used_at < now()
                                                      - make_interval(years => m.max_idle_years)
                                ELSE i.date_added < c.today
                                                    - make_interval(years => m.max_idle_years)
                           END) AS past,
                   (t.wear_uses > 0 AND i.circ_count > t.wear_uses) AS is_worn,
                   CASE WHEN b.pub_year <> '' THEN v_year - b.pub_year::integer END AS age,
                   i.id, i.bib_id
            FROM item i
            JOIN bib b ON b.id = i.bib_id
            JOIN item_type t ON t.code = i.item_type
            CROSS JOIN LATERAL copy_kind(i.call_number, b.call_number, b.audience) k
            LEFT JOIN LATERAL (
                SELECT r.collection, r.max_age_years, r.max_idle_years FROM rules r
                WHERE crew_fits(r.dewey_from, r.dewey_to, r.location, r.audience, r.fiction,
                                k.dewey, i.location, k.audience, b.literary_form)
                ORDER BY r.ord, r.collection LIMIT 1) m ON true
            WHERE i.owning_branch_id = v_branch.id
              AND i.status NOT IN ('withdrawn', 'lost')),
        held AS MATERIALIZED (SELECT DISTINCT h.bib_id FROM hold h WHERE h.status = 'waiting'),
        sums AS (
            SELECT p.collection, count(*) AS n,
                   count(*) FILTER (WHERE p.shelf AND p.is_dead) AS n_dead,
                   count(*) FILTER (WHERE p.shelf AND p.past
                                      AND p.bib_id NOT IN (SELECT bib_id FROM held)
                                      AND NOT weeding_kept(p.id, v_branch.id, c.keep_at))
                       AS n_cand,
                   count(*) FILTER (WHERE p.is_worn) AS n_worn,
                   percentile_disc(0.5) WITHIN GROUP (ORDER BY p.age) AS med
            FROM copies p GROUP BY p.collection)
        SELECT v_branch.code, coalesce(s.collection, ''),
               coalesce(r.name, 'In no CREW collection'), s.n::integer, s.n_dead::integer,
               round(100.0 * s.n_dead / s.n, 1)::double precision,
               coalesce(r.dead_target_pct, 20)::integer,
               r.collection IS NOT NULL AND 100.0 * s.n_dead / s.n > r.dead_target_pct,
               s.n_cand::integer, s.n_worn::integer, s.med
        FROM sums s LEFT JOIN rules r ON r.collection = s.collection
        ORDER BY r.ord NULLS LAST, s.collection;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------- decisions

-- A decision about one copy, keyed (a retry returns the stored answer):
-- withdraw and replace withdraw the copy (refused while its title has holds
-- waiting: CR422 holds_waiting; the last copy in the system only with
-- p_last_copy_ok: CR422 last_copy); mend puts it in processing; keep leaves it
-- as it is (and off the list for keep_months); transfer makes transfer_to
-- its owning branch and sends it there (a transit, reason 'transfer'; status
-- in transit). A copy on loan, in transit or on the hold shelf: CR409
-- circulating; one already withdrawn, lost or missing: CR422 item_status
-- (nothing to decide, and a second withdrawal would count twice in the
-- statistics). The copy must be owned by the scope's branch (CR403 branch).
-- withdraw, replace and transfer take the copy off any display it is on
-- (its open display_item rows closed, audited display_remove), so that it
-- no longer reads "on display". Withdraw and replace lock the title's bib
-- row before counting its other copies: two staff withdrawing the last two
-- copies at once are served one after the other, and the second one sees
-- the last copy. Audited on the item; one weeding_decision row (the
-- statistics count them).
CREATE OR REPLACE FUNCTION weeding_decide(p_key uuid, p_staff bigint, p_workstation bigint,
                                          p_scope integer, p_barcode text, p_decision text,
                                          p_transfer_to text, p_note text,
                                          p_last_copy_ok boolean)
RETURNS TABLE (barcode text, title text, decision text, status text, transfer_to text,
               last_copy boolean, message text)
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    v_item item;
    v_new item;
    v_bib bib;
    v_to integer;
    v_to_code text;
    v_last boolean;
    v_coll text;
    v_note text := coalesce(btrim(p_note), '');
    v_message text;
    v_kind record;
    v_display bigint;
    r record;
BEGIN
    IF p_decision IS NULL OR p_decision NOT IN ('withdraw', 'keep', 'mend', 'replace',
                                                'transfer') THEN
        PERFORM field_refuse('decision', 'A decision is withdraw, keep, mend, replace or '
                                         'transfer.');
    END IF;
    IF length(v_note) > 500 THEN
        PERFORM field_refuse('note', 'A note is at most 500 characters.');
    END IF;
    IF p_decision = 'transfer' THEN
        IF coalesce(p_transfer_to, '') = '' THEN
            PERFORM field_refuse('transfer_to', 'A transfer needs the branch to send it to.');
        END IF;
        v_to := schedule_branch(upper(p_transfer_to), 'transfer_to');
        v_to_code := upper(p_transfer_to);
    END IF;
    SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'weeding_decide', p_barcode);
    IF v_key.stored IS NOT NULL THEN
        RETURN QUERY SELECT x.* FROM jsonb_to_record(v_key.stored)
            AS x(barcode text, title text, decision text, status text, transfer_to text,
                 last_copy boolean, message text);
        RETURN;
    END IF;
    v_item := v_key.item_row;
    PERFORM branch_scope_check(p_scope, v_item.owning_branch_id, 'weed the copies of');
    IF v_item.status IN ('checked_out', 'in_transit', 'on_hold_shelf') THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'circulating',
            MESSAGE = format('%s is %s: decide about it once it is back on the shelf.',
                             v_item.barcode, replace(v_item.status::text, '_', ' '));
    END IF;
    IF v_item.status IN ('withdrawn', 'lost', 'missing') THEN
        RAISE EXCEPTION USING ERRCODE = 'CR422', DETAIL = 'item_status',
            MESSAGE = format('%s is already %s: there is nothing to decide about it.',
                             v_item.barcode, v_item.status);
    END IF;
    IF v_to IS NOT NULL AND v_to = v_item.owning_branch_id THEN
        PERFORM field_refuse('transfer_to', format('%s already belongs to %s.', v_item.barcode,
                                                   v_to_code));
    END IF;
    IF p_decision IN ('withdraw', 'replace') THEN
        -- The title's lock orders the decisions that may take its last copy.
        SELECT * INTO v_bib FROM bib b WHERE b.id = v_item.bib_id FOR NO KEY UPDATE;
    ELSE
        SELECT * INTO v_bib FROM bib b WHERE b.id = v_item.bib_id;
    END IF;
    v_last := NOT EXISTS (SELECT 1 FROM item o
                          WHERE o.bib_id = v_item.bib_id AND o.id <> v_item.id
                            AND o.status NOT IN ('withdrawn', 'lost', 'missing'));
    IF p_decision IN ('withdraw', 'replace') THEN
        IF EXISTS (SELECT 1 FROM hold h WHERE h.bib_id = v_item.bib_id
                                          AND h.status = 'waiting') THEN
            RAISE EXCEPTION USING ERRCODE = 'CR422', DETAIL = 'holds_waiting',
                MESSAGE = format('"%s" has holds waiting: %s stays.', v_bib.title,
                                 v_item.barcode);
        END IF;
        IF v_last AND NOT coalesce(p_last_copy_ok, false) THEN
            RAISE EXCEPTION USING ERRCODE = 'CR422', DETAIL = 'last_copy',
                MESSAGE = format('%s is the last copy of "%s" in the system; confirm to %s it.',
                                 v_item.barcode, v_bib.title, p_decision);
        END IF;
    END IF;
    SELECT * INTO v_kind FROM copy_kind(v_item.call_number, v_bib.call_number, v_bib.audience);
    v_coll := coalesce(item_collection(v_item.owning_branch_id, v_kind.dewey, v_item.location,
                                       v_kind.audience, v_bib.literary_form), '');

    IF p_decision IN ('withdraw', 'replace', 'mend') THEN
        UPDATE item i SET status = CASE WHEN p_decision = 'mend' THEN 'in_processing'
                                        ELSE 'withdrawn' END::item_status,
            version = i.version + 1, updated_at = now()
        WHERE i.id = v_item.id RETURNING * INTO v_new;
    ELSIF p_decision = 'transfer' THEN
        IF v_item.current_branch_id <> v_to THEN
            UPDATE transit t SET cancelled_at = now()
            WHERE t.item_id = v_item.id AND t.received_at IS NULL AND t.cancelled_at IS NULL;
            INSERT INTO transit (item_id, from_branch_id, to_branch_id, reason, sent_by)
            VALUES (v_item.id, v_item.current_branch_id, v_to, 'transfer', p_staff);
        END IF;
        UPDATE item i SET owning_branch_id = v_to,
            status = CASE WHEN i.current_branch_id <> v_to THEN 'in_transit'
                          ELSE i.status END::item_status,
            version = i.version + 1, updated_at = now()
        WHERE i.id = v_item.id RETURNING * INTO v_new;
    ELSE
        v_new := v_item;
    END IF;
    IF p_decision IN ('withdraw', 'replace', 'transfer') THEN
        -- Off its displays: a running one's row closes now, an ended one's
        -- (history not yet closed) at the display's end, as display_item_add
        -- closes them.
        FOR v_display IN
            UPDATE display_item x
            SET removed_at = greatest(x.added_at, least(now(), display_end_at(o))),
                removed_by = p_staff
            FROM display o
            WHERE x.item_id = v_item.id AND x.removed_at IS NULL AND o.id = x.display_id
            RETURNING x.display_id
        LOOP
            PERFORM audit_write(p_staff, p_workstation, 'item', v_item.id, 'display_remove',
                                jsonb_build_object('display', jsonb_build_object(
                                    'before', v_display, 'after', NULL)));
        END LOOP;
    END IF;
    PERFORM audit_write(p_staff, p_workstation, 'item', v_item.id, 'weeding_' || p_decision,
                        audit_diff(item_audit_json(v_item), item_audit_json(v_new))
                        || jsonb_build_object('decision', jsonb_build_object(
                               'before', NULL, 'after', p_decision)));
    INSERT INTO weeding_decision (item_id, branch_id, decision, transfer_to, collection, note,
                                  staff_id, workstation_id)
    VALUES (v_item.id, v_item.owning_branch_id, p_decision, v_to, v_coll, v_note, p_staff,
            p_workstation);

    v_message := CASE p_decision
        WHEN 'withdraw' THEN 'Withdrawn: take it off the shelf and mark it discarded.'
        WHEN 'replace' THEN 'Withdrawn for replacement: order a new copy of this title.'
        WHEN 'mend' THEN 'To mending: in processing until it is edited back to available.'
        WHEN 'keep' THEN format('Kept: off the weeding list until %s.',
                                to_char(library_today()
                                        + make_interval(months => (SELECT k.keep_months
                                                                   FROM weeding_cutoffs() k)),
                                        'YYYY-MM-DD'))
        ELSE CASE WHEN v_new.status = 'in_transit'
                  THEN format('Transferred to %s: send it there.', v_to_code)
                  ELSE format('Transferred to %s, where it already is.', v_to_code) END
        END;
    IF v_last AND p_decision IN ('withdraw', 'replace') THEN
        v_message := v_message || ' It was the last copy in the system.';
    END IF;
    SELECT v_item.barcode AS barcode, v_bib.title AS title, p_decision AS decision,
           v_new.status::text AS status, coalesce(v_to_code, '') AS transfer_to,
           v_last AS last_copy, v_message AS message INTO r;
    PERFORM request_finish(p_key, p_staff, 'weeding_decide', to_jsonb(r));
    RETURN QUERY SELECT r.barcode, r.title, r.decision, r.status, r.transfer_to, r.last_copy,
                        r.message;
END
$$;

-- Decisions of a branch (code; NULL: every branch) between two local days
-- (default the last 30 days), one kind or all, newest first, at most p_limit
-- (default 200, 1-1000).
CREATE OR REPLACE FUNCTION weeding_decision_list(p_branch text, p_decision text, p_from text,
                                                 p_to text, p_limit integer)
RETURNS TABLE (barcode text, title text, call_number text, decision text, at text,
               username text, transfer_to text, note text, collection text,
               branch_code text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_branch integer;
    v_to date := local_day(p_to, 'to', library_today());
    v_from date := local_day(p_from, 'from', v_to - 30);
    v_tz text := library_setting_text('timezone');
BEGIN
    IF coalesce(p_branch, '') <> '' THEN
        v_branch := schedule_branch(upper(p_branch), 'branch_code');
    END IF;
    IF coalesce(p_decision, '') <> ''
       AND p_decision NOT IN ('withdraw', 'keep', 'mend', 'replace', 'transfer') THEN
        PERFORM field_refuse('decision', 'A decision is withdraw, keep, mend, replace or '
                                         'transfer.');
    END IF;
    IF v_from > v_to THEN
        PERFORM field_refuse('from', 'The first day comes after the last.');
    END IF;
    IF p_limit IS NOT NULL AND p_limit NOT BETWEEN 1 AND 1000 THEN
        PERFORM field_refuse('limit', 'The limit is 1 to 1000.');
    END IF;
    RETURN QUERY
    SELECT i.barcode, b.title, coalesce(nullif(i.call_number, ''), b.call_number), d.decision,
           local_text_in(d.decided_at, v_tz), coalesce(s.username, ''),
           coalesce(tb.code, ''), d.note, d.collection, db.code
    FROM weeding_decision d
    JOIN item i ON i.id = d.item_id
    JOIN bib b ON b.id = i.bib_id
    JOIN branch db ON db.id = d.branch_id
    LEFT JOIN branch tb ON tb.id = d.transfer_to
    LEFT JOIN staff s ON s.id = d.staff_id
    WHERE (v_branch IS NULL OR d.branch_id = v_branch)
      AND (coalesce(p_decision, '') = '' OR d.decision = p_decision)
      AND d.decided_at >= (v_from::timestamp AT TIME ZONE v_tz)
      AND d.decided_at < ((v_to + 1)::timestamp AT TIME ZONE v_tz)
    ORDER BY d.decided_at DESC, d.id DESC
    LIMIT coalesce(p_limit, 200);
END
$$;
