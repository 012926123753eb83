-- 004: the catalog: bibliographic records, items (copies), search, MARC import.
--
-- A bib keeps its full MARC21 record (UTF-8 ISO 2709, exported as stored)
-- next to the fields staff search and sort on, which the daemon extracts from
-- the record (server/marc.c) on every import and edit, so the two never
-- disagree. Items are the copies on the shelves.

CREATE EXTENSION IF NOT EXISTS unaccent;

-- English stemming, accents folded: "Café" finds "cafe", "running" finds "run".
CREATE TEXT SEARCH CONFIGURATION carrel_english (COPY = english);
ALTER TEXT SEARCH CONFIGURATION carrel_english
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;

CREATE TYPE item_status AS ENUM (
    'available', 'checked_out', 'in_transit', 'on_hold_shelf', 'missing', 'lost', 'damaged',
    'withdrawn', 'in_processing', 'claimed_returned');

CREATE TABLE item_type (
    code text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{0,31}$'),
    name text NOT NULL,
    circulates boolean NOT NULL DEFAULT true
);

INSERT INTO item_type (code, name, circulates) VALUES
    ('book', 'Book', true),
    ('large_print', 'Large print book', true),
    ('periodical', 'Magazine or journal issue', true),
    ('dvd', 'DVD or Blu-ray', true),
    ('video', 'Video', true),
    ('audiobook', 'Audiobook', true),
    ('music', 'Music recording', true),
    ('map', 'Map', true),
    ('score', 'Printed music', true),
    ('kit', 'Kit', true),
    ('equipment', 'Equipment (laptops, hotspots)', true),
    ('reference', 'Reference (in library use only)', false);

-- array_to_string is only STABLE; for text[] it is in fact immutable.
CREATE FUNCTION bib_words(p_items text[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT array_to_string(p_items, ' ') $$;

CREATE TABLE bib (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    marc bytea NOT NULL,
    title text NOT NULL CHECK (title <> '' AND length(title) <= 2000),
    author text NOT NULL DEFAULT '',
    subjects text[] NOT NULL DEFAULT '{}',
    isbns text[] NOT NULL DEFAULT '{}',
    issns text[] NOT NULL DEFAULT '{}',
    publisher text NOT NULL DEFAULT '',
    pub_year text NOT NULL DEFAULT '' CHECK (pub_year ~ '^([0-9]{4})?$'),
    format text NOT NULL DEFAULT 'book' CHECK (format ~ '^[a-z_]{1,32}$'),
    language text NOT NULL DEFAULT '' CHECK (language ~ '^([a-z]{3})?$'),
    call_number text NOT NULL DEFAULT '',
    control_number text NOT NULL DEFAULT '',
    control_source text NOT NULL DEFAULT '',
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Title first, then author, then subjects.
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('carrel_english', title), 'A') ||
        setweight(to_tsvector('carrel_english', author), 'B') ||
        setweight(to_tsvector('carrel_english', bib_words(subjects)), 'C')) STORED
);
CREATE INDEX bib_search ON bib USING gin (search);
CREATE INDEX bib_isbns ON bib USING gin (isbns);
CREATE INDEX bib_issns ON bib USING gin (issns);
CREATE INDEX bib_control ON bib (control_number, control_source);
CREATE INDEX bib_call_number ON bib (lower(call_number) text_pattern_ops);
CREATE INDEX bib_title ON bib (lower(title));

CREATE TABLE item (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    barcode text NOT NULL UNIQUE CHECK (barcode ~ '^[[:graph:]]{1,32}$'),
    bib_id bigint NOT NULL REFERENCES bib,
    owning_branch_id integer NOT NULL REFERENCES branch,
    current_branch_id integer NOT NULL REFERENCES branch,
    location text NOT NULL DEFAULT '' CHECK (length(location) <= 100),
    call_number text NOT NULL DEFAULT '' CHECK (length(call_number) <= 100),
    item_type text NOT NULL REFERENCES item_type,
    price_cents bigint NOT NULL DEFAULT 0 CHECK (price_cents BETWEEN 0 AND 100000000),
    status item_status NOT NULL DEFAULT 'available',
    date_added date NOT NULL DEFAULT current_date,
    last_circulated timestamptz,
    circ_count integer NOT NULL DEFAULT 0 CHECK (circ_count >= 0),
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX item_bib ON item (bib_id, current_branch_id, status);
CREATE INDEX item_call_number ON item (lower(call_number) text_pattern_ops);

-- How holdings fields (852, 952) become items: which subfield feeds which
-- item field. Where several subfields feed one target, the lowest priority
-- number present wins. Libraries adjust these rows to their exports.
CREATE TABLE holdings_map (
    tag text NOT NULL CHECK (tag ~ '^[0-9]{3}$'),
    subfield text NOT NULL CHECK (length(subfield) = 1),
    target text NOT NULL CHECK (target IN ('barcode', 'owning_branch', 'current_branch',
                                           'location', 'call_number', 'call_number_suffix',
                                           'item_type', 'price')),
    priority integer NOT NULL DEFAULT 1,
    PRIMARY KEY (tag, subfield)
);

INSERT INTO holdings_map (tag, subfield, target, priority) VALUES
    -- MARC 21 holdings: $a institution, $b sublocation, $h/$i call number,
    -- $p piece designation (the barcode), $9 local price.
    ('852', 'p', 'barcode', 1), ('852', 'a', 'owning_branch', 1),
    ('852', 'b', 'location', 1), ('852', 'c', 'location', 2),
    ('852', 'h', 'call_number', 1), ('852', 'i', 'call_number_suffix', 1),
    ('852', '9', 'price', 1),
    -- Koha items: $a home branch, $b holding branch, $c shelving location,
    -- $o call number, $p barcode, $y item type, $v replacement / $g purchase price.
    ('952', 'p', 'barcode', 1), ('952', 'a', 'owning_branch', 1),
    ('952', 'b', 'current_branch', 1), ('952', 'c', 'location', 1),
    ('952', 'o', 'call_number', 1), ('952', 'y', 'item_type', 1),
    ('952', 'v', 'price', 1), ('952', 'g', 'price', 2);

-- Codes other systems use for our branches and item types (e.g. Koha's
-- "CPL"); branch codes and item type codes match themselves without a row.
CREATE TABLE branch_alias (
    alias text PRIMARY KEY,
    branch_id integer NOT NULL REFERENCES branch
);
CREATE TABLE item_type_alias (
    alias text PRIMARY KEY,
    item_type text NOT NULL REFERENCES item_type
);
INSERT INTO item_type_alias (alias, item_type) VALUES
    ('BK', 'book'), ('BOOK', 'book'), ('KNJ', 'book'), ('LP', 'large_print'),
    ('DVD', 'dvd'), ('VIDEO', 'video'), ('CD', 'music'), ('AB', 'audiobook'),
    ('CDBOOK', 'audiobook'), ('MAG', 'periodical'), ('SER', 'periodical'), ('REF', 'reference');
