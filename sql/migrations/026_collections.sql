-- 026: collections: weeding (CREW rules, decisions) and what it needs from
-- the catalog and circulation. The rules are in sql/rules/weeding.sql; the
-- guide for staff is docs/WEEDING.md.
--
--   * item.last_used_at: the last checkout, renewal or in-house use, kept by
--     circ_checkout, circ_renew and circ_in_house_use in the UPDATE each
--     already does, so the weeding report never reads circ_event;
--   * bib.audience, bib.literary_form: from MARC 008/22 and 008/33 (import and
--     bib_save fill them);
--   * item_type.wear_uses: checkouts above which a copy is worn;
--   * crew_rule: the CREW table (system rows, branch overrides), seeded from
--     the CREW manual as a starting point to review;
--   * weeding_decision: what staff decided about a copy;
--   * transit.reason 'transfer': a copy sent to its new owning branch.

-- ---------------------------------------------------------------- last use

ALTER TABLE item ADD COLUMN last_used_at timestamptz;

-- The latest of the last checkout and the latest renewal or in-house use
-- recorded, in one pass over circ_event (once, here; never again).
UPDATE item i SET last_used_at = u.at
FROM (SELECT it.id, greatest(it.last_circulated, e.at) AS at
      FROM item it
      LEFT JOIN (SELECT item_id, max(at) AS at FROM circ_event
                 WHERE action IN ('in_house_use', 'renew') GROUP BY item_id) e
        ON e.item_id = it.id
      WHERE it.last_circulated IS NOT NULL OR e.at IS NOT NULL) u
WHERE u.id = i.id;

-- The branch summary reads the copies a branch owns, whatever their status.
CREATE INDEX item_owner_status ON item (owning_branch_id, status);

-- A key that sorts call numbers in shelf order with COLLATE "C": the call
-- number upper-cased, its first number (after any leading words: "J 599.75",
-- "FIC SMITH 2", "QA76") with the integer part padded to 9 digits, so that
-- numbers sort by value and before words, and decimals as Dewey decimals:
-- "92" < "641.5" < "641.5 SMI" < "641.59" < "641.6" < "FIC ADAMS" <
-- "FIC SMITH" < "FIC SMITH 2" < "FIC SMITH 10" < "FIC SMITH J" < "J 599".
-- Only plain string functions (no regular expression): it is computed for
-- every copy written, for the index below. Here, not in sql/rules, because
-- the index is built on it: a changed key needs a new migration that
-- rebuilds the index (test_foundation lists it with the generated-column
-- helpers).
CREATE FUNCTION call_number_shelf_key(p_call_number text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    s text := btrim(upper(coalesce(p_call_number, '')));
    -- the leading words: letters, spaces and the punctuation between them
    p integer := length(s) - length(ltrim(s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ .,:;/-'));
    rest text := substr(s, p + 1);
    q integer := length(rest) - length(ltrim(rest, '0123456789'));
BEGIN
    IF q BETWEEN 1 AND 8 THEN
        RETURN left(s, p) || lpad(left(rest, q), 9, '0') || substr(rest, q + 1);
    END IF;
    RETURN s;
END
$$;

-- The weeding list of a branch, in shelf order: a page is read in index
-- order from the previous page's last key, so a page costs the rows it
-- reads, not the branch's whole shelf.
CREATE INDEX item_shelf ON item (owning_branch_id,
                                 call_number_shelf_key(call_number) COLLATE "C",
                                 barcode COLLATE "C")
    WHERE status = 'available';

-- ---------------------------------------------------------------- bib

ALTER TABLE bib
    ADD COLUMN audience text NOT NULL DEFAULT ''
        CHECK (audience IN ('', 'juvenile', 'young_adult', 'adult')),
    ADD COLUMN literary_form text NOT NULL DEFAULT ''
        CHECK (literary_form IN ('', 'fiction', 'nonfiction'));

-- ---------------------------------------------------------------- wear

ALTER TABLE item_type ADD COLUMN wear_uses integer NOT NULL DEFAULT 0 CHECK (wear_uses >= 0);
-- Checkouts a copy of the type takes before it is usually worn out (0: never
-- counted as worn). Starting points: a library changes them in the settings.
UPDATE item_type SET wear_uses = v.uses
FROM (VALUES ('book', 60), ('large_print', 60), ('dvd', 75), ('video', 50),
             ('audiobook', 75), ('music', 75), ('score', 40), ('kit', 40)) AS v(code, uses)
WHERE item_type.code = v.code;

INSERT INTO library_setting (name, value) VALUES
    -- A copy on the shelf with no loan or in-house use in this many days is dead.
    ('weeding_dead_days', '180'),
    -- A "keep" decision takes the copy off the weeding list for this many months.
    ('weeding_keep_months', '12')
ON CONFLICT (name) DO NOTHING;

-- ---------------------------------------------------------------- CREW

-- One collection of the CREW table. branch_id NULL: the system row; a
-- branch's row with the same collection replaces it at that branch. X is
-- max_age_years (since the latest copyright), Y max_idle_years (since the
-- last use); NULL: not applicable. A copy belongs to the first collection by
-- ord whose conditions (all those given) it meets.
CREATE TABLE crew_rule (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    branch_id integer REFERENCES branch,
    collection text NOT NULL CHECK (collection ~ '^[a-z][a-z0-9_-]{0,31}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    dewey_from numeric,
    dewey_to numeric,
    location text NOT NULL DEFAULT '' CHECK (length(location) <= 100),
    audience text NOT NULL DEFAULT 'any' CHECK (audience IN ('adult', 'juvenile', 'any')),
    fiction text NOT NULL DEFAULT 'any' CHECK (fiction IN ('fiction', 'nonfiction', 'any')),
    max_age_years smallint CHECK (max_age_years BETWEEN 1 AND 100),
    max_idle_years smallint CHECK (max_idle_years BETWEEN 1 AND 100),
    mustie text NOT NULL DEFAULT '' CHECK (length(mustie) <= 500),
    dead_target_pct smallint NOT NULL DEFAULT 20 CHECK (dead_target_pct BETWEEN 0 AND 100),
    ord integer NOT NULL DEFAULT 1000,
    reviewed boolean NOT NULL DEFAULT false,
    updated_by bigint REFERENCES staff,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((dewey_from IS NULL) = (dewey_to IS NULL)),
    CHECK (dewey_from IS NULL OR (dewey_from >= 0 AND dewey_to < 1000 AND dewey_from <= dewey_to)),
    UNIQUE NULLS NOT DISTINCT (branch_id, collection)
);

-- The CREW manual (Texas State Library and Archives Commission, 2012
-- revision) formulas, X/Y/MUSTIE, as a starting point: reviewed = false until
-- someone saves the row. Special ranges come before the hundreds they sit in;
-- picture books, audiovisual and young adult are found by shelving location,
-- juvenile copies by audience (008/22) before the adult Dewey rows.
INSERT INTO crew_rule (collection, name, dewey_from, dewey_to, location, audience, fiction,
                       max_age_years, max_idle_years, mustie, ord) VALUES
    ('picture_books', 'Picture books', NULL, NULL, 'picture', 'any', 'any', NULL, 2,
     'Worn, torn or dated illustrations; replace classics', 10),
    ('av_dvd', 'DVDs and videos', NULL, NULL, 'dvd', 'any', 'any', NULL, 3,
     'Scratched or damaged discs, outdated formats', 20),
    ('av_audiobook', 'Audiobooks', NULL, NULL, 'audio', 'any', 'any', NULL, 3,
     'Missing or damaged discs, abridged versions superseded', 30),
    ('av_music', 'Music recordings', NULL, NULL, 'cd', 'any', 'any', NULL, 3,
     'Damaged discs, dated popular music', 40),
    ('large_print', 'Large print', NULL, NULL, 'large print', 'any', 'any', NULL, 3,
     'Worn copies; keep titles in demand with older readers', 50),
    ('ya', 'Young adult', NULL, NULL, 'ya', 'any', 'any', NULL, 2,
     'Dated covers and slang; series with missing volumes', 60),
    ('j_fiction', 'Juvenile fiction', NULL, NULL, '', 'juvenile', 'fiction', NULL, 2,
     'Worn, dated covers; keep award winners in good copies', 100),
    ('j_computers', 'Juvenile computers (004-006)', 4, 6.999, '', 'juvenile', 'nonfiction',
     3, NULL, 'Superseded software and devices', 110),
    ('j_nonfiction', 'Juvenile nonfiction', 0, 999.999, '', 'juvenile', 'nonfiction', 5, 3,
     'Inaccurate science, dated photographs and stereotypes', 120),
    ('nf_004', 'Computers (004-006)', 4, 6.999, '', 'any', 'any', 3, NULL,
     'Superseded software, operating systems and devices', 200),
    ('nf_000', 'General works (000s)', 0, 99.999, '', 'any', 'any', 5, NULL,
     'Superseded editions of encyclopedias and guides', 210),
    ('nf_100', 'Philosophy and psychology (100s)', 100, 199.999, '', 'any', 'any', 10, 3,
     'Popular psychology and self-help date quickly', 220),
    ('nf_200', 'Religion (200s)', 200, 299.999, '', 'any', 'any', 10, 3,
     'Keep a balanced collection; dated commentary', 230),
    ('nf_310', 'Almanacs and statistics (310s)', 310, 319.999, '', 'any', 'any', 2, NULL,
     'Only the latest edition', 240),
    ('nf_330', 'Economics and finance (330s)', 330, 339.999, '', 'any', 'any', 5, 3,
     'Tax, investment and job guides superseded', 250),
    ('nf_340', 'Law (340s)', 340, 349.999, '', 'any', 'any', 10, NULL,
     'Superseded laws; keep the latest codes', 260),
    ('nf_360', 'Social services (360s)', 360, 369.999, '', 'any', 'any', 5, NULL,
     'Outdated programs and addresses', 270),
    ('nf_300', 'Social sciences (300s)', 300, 399.999, '', 'any', 'any', 10, 3,
     'Dated statistics and social attitudes', 280),
    ('nf_400', 'Language (400s)', 400, 499.999, '', 'any', 'any', 10, 3,
     'Keep current dictionaries and language courses', 290),
    ('nf_510', 'Mathematics (510s)', 510, 519.999, '', 'any', 'any', 10, 3,
     'Dated textbooks', 300),
    ('nf_500', 'Sciences (500s)', 500, 599.999, '', 'any', 'any', 5, 3,
     'Superseded science; keep classics of natural history', 310),
    ('nf_610', 'Medicine and health (610s)', 610, 619.999, '', 'any', 'any', 5, 3,
     'Outdated treatments are misleading: weed strictly', 320),
    ('nf_650', 'Business and management (650s)', 650, 659.999, '', 'any', 'any', 5, 3,
     'Dated practices, technology and addresses', 330),
    ('nf_600', 'Technology and applied science (600s)', 600, 699.999, '', 'any', 'any', 5, 3,
     'Superseded techniques and products; worn cookbooks', 340),
    ('nf_700', 'Arts and recreation (700s)', 700, 799.999, '', 'any', 'any', 10, 3,
     'Dated crafts and sports; keep fine art in good copies', 350),
    ('nf_800', 'Literature (800s)', 800, 899.999, '', 'any', 'any', NULL, 3,
     'Keep classics and local authors; worn copies replaced', 360),
    ('nf_910', 'Travel and geography (910s)', 910, 919.999, '', 'any', 'any', 5, 2,
     'Travel guides older than five years mislead', 370),
    ('nf_920', 'Biography (920s)', 920, 929.999, '', 'any', 'any', NULL, 3,
     'Subjects no longer of interest; keep local people', 380),
    ('nf_900', 'History (900s)', 900, 999.999, '', 'any', 'any', 15, 3,
     'Biased or dated accounts; keep local history', 390),
    ('fiction', 'Adult fiction', NULL, NULL, '', 'adult', 'fiction', NULL, 2,
     'Worn copies, unpopular series, extra copies of past bestsellers', 500);

-- ---------------------------------------------------------------- decisions

-- A decision about one copy (no patron in it). collection: the copy's
-- collection when decided, for the statistics.
CREATE TABLE weeding_decision (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id bigint NOT NULL REFERENCES item,
    branch_id integer NOT NULL REFERENCES branch,
    decision text NOT NULL CHECK (decision IN ('withdraw', 'keep', 'mend', 'replace',
                                               'transfer')),
    transfer_to integer REFERENCES branch,
    collection text NOT NULL DEFAULT '',
    note text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    staff_id bigint REFERENCES staff,
    workstation_id bigint REFERENCES workstation,
    decided_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((decision = 'transfer') = (transfer_to IS NOT NULL))
);
-- The decision list (a branch, newest first) and the statistics (by time).
CREATE INDEX weeding_decision_branch ON weeding_decision (branch_id, decided_at);
CREATE INDEX weeding_decision_at ON weeding_decision (decided_at);
-- The keep window: is there a recent keep of this copy?
CREATE INDEX weeding_decision_keep ON weeding_decision (item_id, decided_at)
    WHERE decision = 'keep';

-- ---------------------------------------------------------------- transfers

ALTER TABLE transit DROP CONSTRAINT transit_reason_check;
ALTER TABLE transit ADD CONSTRAINT transit_reason_check
    CHECK (reason IN ('home', 'hold', 'transfer'));
