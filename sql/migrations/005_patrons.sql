-- 005: patrons (library customers): categories, records, blocks, merged cards.
--
-- Every change is one function (sql/rules/patrons.sql), called by carreld
-- with the acting staff member and workstation first; each checks its rules,
-- makes the change and writes audit_event rows (entity 'patron') in the same
-- transaction.
--
-- Name search uses pg_trgm on a folded copy of the names (lower case, accents
-- removed with unaccent): staff type fragments ("smi", "jos garc") in any
-- order and expect infix matches, which trigram indexes serve for LIKE
-- '%...%'. A tsvector would only find whole words or prefixes and would stem
-- names as if they were English words. Both extensions are trusted, so the
-- database owner may create them.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- Lower case without accents, for name search and duplicate detection.
-- unaccent() is only STABLE (its dictionary could be changed); naming the
-- dictionary explicitly makes the result depend on the input alone, the usual
-- way to index it.
CREATE FUNCTION patron_fold(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(public.unaccent('public.unaccent'::regdictionary, coalesce(p_text, '')))
$$;

-- The digits of a phone number as compared for search and duplicates: every
-- non-digit dropped, and the North American country code 1 in front of a
-- ten-digit number too, so "+1 (860) 555-0123" and "860.555.0123" agree.
CREATE FUNCTION patron_phone_digits(p_phone text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN d ~ '^1[0-9]{10}$' THEN substr(d, 2) ELSE nullif(d, '') END
    FROM (SELECT regexp_replace(coalesce(p_phone, ''), '[^0-9]', '', 'g') AS d) x
$$;

CREATE TABLE patron_category (
    code text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{1,19}$'),
    name text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    card_years integer NOT NULL CHECK (card_years BETWEEN 1 AND 10)
);

INSERT INTO patron_category (code, name, card_years) VALUES
    ('adult', 'Adult', 3),
    ('juvenile', 'Juvenile (under 18)', 3),
    ('senior', 'Senior (65 and over)', 5),
    ('staff', 'Library staff', 2),
    ('homebound', 'Homebound delivery', 3),
    ('nonresident', 'Non-resident', 1),
    ('institutional', 'Institution (school, agency)', 1);

CREATE TABLE patron (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card text NOT NULL UNIQUE CHECK (card ~ '^[[:graph:]]{1,32}$'),
    first_name text NOT NULL CHECK (length(first_name) BETWEEN 1 AND 100
                                    AND first_name = btrim(first_name)),
    last_name text NOT NULL CHECK (length(last_name) BETWEEN 1 AND 100
                                   AND last_name = btrim(last_name)),
    preferred_name text CHECK (length(preferred_name) BETWEEN 1 AND 100),
    birth_date date CHECK (birth_date >= DATE '1900-01-01'),
    address_line1 text CHECK (length(address_line1) BETWEEN 1 AND 200),
    address_line2 text CHECK (length(address_line2) BETWEEN 1 AND 200),
    city text CHECK (length(city) BETWEEN 1 AND 100),
    region text CHECK (length(region) BETWEEN 1 AND 100),
    postal_code text CHECK (length(postal_code) BETWEEN 1 AND 20),
    -- As entered; phone_digits is what search and duplicate checks compare.
    phone text CHECK (phone ~ '^\+?[0-9 ().-]{7,30}$'),
    phone_digits text GENERATED ALWAYS AS (patron_phone_digits(phone)) STORED
        CHECK (phone_digits ~ '^[0-9]{7,15}$'),
    -- Stored lower-cased; one @, a dot in the domain, no spaces.
    email text CHECK (length(email) <= 254 AND email = lower(email)
                      AND email ~ '^[^@[:space:]]+@[^@[:space:].]+(\.[^@[:space:].]+)+$'),
    contact_channel text NOT NULL DEFAULT 'none'
        CHECK (contact_channel IN ('email', 'sms', 'phone', 'none')),
    home_branch_id integer NOT NULL REFERENCES branch,
    category text NOT NULL REFERENCES patron_category,
    expires_on date NOT NULL CHECK (expires_on BETWEEN DATE '1990-01-01' AND DATE '2199-12-31'),
    staff_notes text CHECK (length(staff_notes) BETWEEN 1 AND 4000),
    desk_alert text CHECK (length(desk_alert) BETWEEN 1 AND 500),
    -- The patron's choice to keep a reading history; off unless they ask.
    keep_history boolean NOT NULL DEFAULT false,
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Set when this record was merged into another; it is then read-only and
    -- its card finds the kept record (patron_card).
    merged_into bigint REFERENCES patron CHECK (merged_into <> id),
    -- Folded names for search (see the top of this file).
    search_name text GENERATED ALWAYS AS (
        patron_fold(first_name || ' ' || coalesce(preferred_name || ' ', '') || last_name)) STORED,
    CHECK (contact_channel <> 'email' OR email IS NOT NULL),
    CHECK (contact_channel NOT IN ('sms', 'phone') OR phone IS NOT NULL),
    CHECK (birth_date IS NULL OR birth_date < expires_on)
);

CREATE INDEX patron_search_name ON patron USING gin (search_name gin_trgm_ops);
CREATE INDEX patron_email ON patron USING gin (email gin_trgm_ops);
CREATE INDEX patron_phone_digits ON patron (phone_digits);
-- Phone search matches the end of the number ("555-0123" finds the full
-- number), which a btree serves on the reversed digits.
CREATE INDEX patron_phone_suffix ON patron (reverse(phone_digits) text_pattern_ops);
CREATE INDEX patron_birth_date ON patron (birth_date);
CREATE INDEX patron_merged_into ON patron (merged_into) WHERE merged_into IS NOT NULL;

-- Manual blocks placed by staff; a lifted block stays for the record.
CREATE TABLE patron_block (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patron_id bigint NOT NULL REFERENCES patron,
    reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500 AND reason = btrim(reason)),
    placed_by bigint REFERENCES staff,
    placed_at timestamptz NOT NULL DEFAULT now(),
    lifted_by bigint REFERENCES staff,
    lifted_at timestamptz,
    CHECK (lifted_by IS NULL OR lifted_at IS NOT NULL),
    CHECK (lifted_at IS NULL OR lifted_at >= placed_at)
);
CREATE INDEX patron_block_active ON patron_block (patron_id) WHERE lifted_at IS NULL;

-- Cards of records merged into another: a lookup by one finds patron_id.
CREATE TABLE patron_card (
    card text PRIMARY KEY,
    patron_id bigint NOT NULL REFERENCES patron,
    added_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patron_card_patron ON patron_card (patron_id);

-- Tables whose rows cannot simply be repointed when two patrons merge (for
-- example holds unique per patron and title: both records may hold the same
-- title). The rules file of such a table registers a function
-- f(p_keep bigint, p_merge bigint) that moves or resolves that table's rows;
-- patron_merge calls it instead of the plain UPDATE. Tables without a row
-- here are repointed column by column.
CREATE TABLE patron_merge_handler (
    table_name regclass PRIMARY KEY,
    handler regproc NOT NULL
);
