-- Weeding: the CREW rules (crew_rule_list, crew_rule_save, item_collection),
-- the settings (dead days, keep months, wear per item type), the weeding list
-- and summary of a branch, and the decisions staff record about copies
-- (weeding_decide, weeding_decision_list). Called by server/weeding.c;
-- item_collection also by the display report (displays.sql). docs/WEEDING.md
-- describes the rules for staff. No patron appears in anything here.

-- ---------------------------------------------------------------- call numbers

-- The Dewey number a call number starts with, after the usual prefixes
-- (J, JUV, E, EASY, YA, TEEN, REF, LP, ...): "641.5 SMI" 641.5, "J 599.75 ROB"
-- 599.75, "REF 030 ENC" 30. NULL when there is none ("FIC SMITH", "B LINCOLN",
-- "QA76.73 .P98"). Inlined by the planner (one regular expression).
CREATE OR REPLACE FUNCTION dewey_of(p_call_number text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT substring(upper(p_call_number) FROM
        '^[[:space:]]*(?:(?:J|JUV|JUVENILE|E|EASY|YA|TEEN|REF|REFERENCE|LP|LARGE[[:space:]]+PRINT'
        '|NF|OS|OVERSIZE|PRO|PROF|LOCAL|PB|CD|DVD|AB|AUDIO)[[:space:]./:-]+)*'
        '([0-9]{1,3}(?:\.[0-9]+)?)(?:[^0-9]|$)')::numeric
$$;

-- A key that sorts call numbers in shelf order with COLLATE "C": the call
-- number split into words and numbers (punctuation other than a decimal
-- point between digits is a separator), a number before a word, words
-- alphabetically (case folded), numbers by value with their decimals as
-- Dewey decimals: "92" < "641.5" < "641.5 SMI" < "641.59" < "641.6" <
-- "FIC ADAMS" < "FIC SMITH" < "FIC SMITH J" < "J 599". Integer parts are
-- padded to 9 digits (longer ones are left as they are). Plain regular
-- expressions, so that the planner inlines it and a list of 70,000 copies
-- keys them in well under a second.
CREATE OR REPLACE FUNCTION call_number_shelf_key(p_call_number text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT btrim(regexp_replace(
        -- 6. a padded integer keeps its last 9 digits
        regexp_replace(
            -- 5. every integer (not a decimal part) gets nine zeros in front
            regexp_replace(
                -- 4. a space between a digit and a letter, and a letter and a digit
                regexp_replace(regexp_replace(
                    -- 3. a point not between two digits is a separator
                    regexp_replace(regexp_replace(
                        -- 2. anything but letters, digits and points is a separator
                        regexp_replace(upper(coalesce(p_call_number, '')),
                                       '[^[:alnum:].]+', ' ', 'g'),
                        '\.(?![0-9])', ' ', 'g'),
                        '(^|[^0-9])\.', '\1 ', 'g'),
                    '([0-9])([^0-9. ])', '\1 \2', 'g'),
                    '([^0-9. ])([0-9])', '\1 \2', 'g'),
                '(^|[^0-9.])([0-9])', '\1000000000\2', 'g'),
            '(^|[^0-9.])0*([0-9]{9})(?![0-9])', '\1\2', 'g'),
        ' +', ' ', 'g'))
$$;

-- The audience of a copy: the bib's (MARC 008/22), else what the call
-- number's prefix says (J, JUV, E, EASY: juvenile; YA, TEEN: young adult),
-- else '' (unknown).
CREATE OR REPLACE FUNCTION item_audience(p_bib_audience text, p_call_number text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN coalesce(p_bib_audience, '') <> '' THEN p_bib_audience
        WHEN upper(p_call_number) ~ '^[[:space:]]*(J|JUV|JUVENILE|E|EASY)([^[:alnum:]]|$)'
            THEN 'juvenile'
        WHEN upper(p_call_number) ~ '^[[:space:]]*(YA|TEEN)([^[:alnum:]]|$)' THEN 'young_adult'
        ELSE '' END
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
-- number (dewey_of), shelving location, audience (bib.audience or
-- item_audience: 'juvenile', 'young_adult', 'adult', '') and literary form
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
