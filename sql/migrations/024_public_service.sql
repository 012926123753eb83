-- 024: public service at the desks (issue 12): the lists staff tally with
-- (inquiry kinds, floor areas, floor activities), inquiries (reference
-- tallies), door counts, public computer sessions and floor sweeps. The
-- rules are in sql/rules/service.sql (docs: docs/SERVICE.md).
--
-- Invariants:
--   * no patron identity anywhere here: a tally is a kind, a READ level, a
--     channel and a time (its question and answer are what staff typed);
--   * a counter's periods never overlap (gate_count_no_overlap), so a
--     crossing is counted once whatever mix of readings, day counts and
--     imports recorded it;
--   * a sweep counts every active area of its branch, a zero included (the
--     rule is sweep_save's: a missing area and an empty one differ).

-- ---------------------------------------------------------------- lists

-- inquiry_kind and floor_activity are system-wide (branch_id NULL);
-- floor_area belongs to one branch. reference: whether a kind counts as a
-- PLS reference transaction (REFERENC); meaningless for the other lists.
-- An entry in use is deactivated, never deleted (inquiries and sweeps keep
-- pointing at it).
CREATE TABLE service_code (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    list text NOT NULL CHECK (list IN ('inquiry_kind', 'floor_area', 'floor_activity')),
    branch_id integer REFERENCES branch,
    code text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{1,31}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    reference boolean NOT NULL DEFAULT true,
    active boolean NOT NULL DEFAULT true,
    ord integer NOT NULL DEFAULT 0,
    CHECK ((list = 'floor_area') = (branch_id IS NOT NULL)),
    CONSTRAINT service_code_unique UNIQUE NULLS NOT DISTINCT (list, branch_id, code)
);

INSERT INTO service_code (list, code, name, reference, ord) VALUES
    ('inquiry_kind', 'directional', 'Directional (where is ..., opening hours)', false, 1),
    ('inquiry_kind', 'item_location', 'Finding an item', true, 2),
    ('inquiry_kind', 'technology', 'Computers, printing, devices', true, 3),
    ('inquiry_kind', 'reference', 'Reference question', true, 4),
    ('inquiry_kind', 'readers_advisory', 'Readers'' advisory', true, 5),
    ('inquiry_kind', 'account', 'Library account', true, 6),
    ('inquiry_kind', 'other', 'Other', true, 7),
    ('floor_activity', 'reading', 'Reading', true, 1),
    ('floor_activity', 'computers', 'Using computers', true, 2),
    ('floor_activity', 'group_work', 'Group work', true, 3),
    ('floor_activity', 'studying', 'Studying', true, 4),
    ('floor_activity', 'events', 'At an event', true, 5),
    ('floor_activity', 'other', 'Other', true, 6);

-- The default floor areas of every branch there is; a branch made later
-- gets them from the trigger service_code_branch_areas (service.sql).
INSERT INTO service_code (list, branch_id, code, name, ord)
SELECT 'floor_area', b.id, a.code, a.name, a.ord
FROM branch b,
     (VALUES ('childrens', 'Children''s area', 1), ('teen', 'Teen area', 2),
             ('adult', 'Adult area', 3), ('computers', 'Public computers', 4),
             ('quiet_study', 'Quiet study', 5)) AS a (code, name, ord);

-- ---------------------------------------------------------------- inquiries

-- One question answered at a desk (a tally). ticket_id: the follow-up ticket
-- it became (the foreign key comes with the tickets, 025).
CREATE TABLE inquiry (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    branch_id integer NOT NULL REFERENCES branch,
    desk_id bigint REFERENCES service_desk,
    channel text NOT NULL DEFAULT 'in_person'
        CHECK (channel IN ('in_person', 'phone', 'email', 'chat', 'text')),
    kind_id integer NOT NULL REFERENCES service_code,
    read_level smallint NOT NULL CHECK (read_level BETWEEN 1 AND 6),
    minutes smallint NOT NULL DEFAULT 1 CHECK (minutes BETWEEN 0 AND 480),
    asked_at timestamptz NOT NULL,
    question text CHECK (length(question) <= 2000),
    answer text CHECK (length(answer) <= 4000),
    staff_id bigint NOT NULL REFERENCES staff,
    workstation_id bigint REFERENCES workstation,
    created_at timestamptz NOT NULL DEFAULT now(),
    ticket_id bigint
);
-- Today's tallies of a branch and of a desk (inquiry_add's answer) are
-- index-only range counts on these; the list of a day reads the first.
CREATE INDEX inquiry_branch_at ON inquiry (branch_id, asked_at);
CREATE INDEX inquiry_desk_at ON inquiry (desk_id, asked_at) WHERE desk_id IS NOT NULL;
-- The statistics read a range of days over every branch with what they
-- split by, from the index alone.
CREATE INDEX inquiry_stats ON inquiry (asked_at)
    INCLUDE (branch_id, desk_id, channel, kind_id, read_level, minutes);

-- ---------------------------------------------------------------- door counts

-- Crossings (in and out) a door counter counted over a period. A reading
-- at the desk stores the period since the counter's previous reading, with
-- the running total in `reading`; a day's crossings the local day; an
-- imported line its period. Visits = crossings / setting visits_divisor.
CREATE TABLE gate_count (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    branch_id integer NOT NULL REFERENCES branch,
    counter text NOT NULL CHECK (counter ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    period tstzrange NOT NULL CHECK (NOT isempty(period) AND lower_inc(period)
                                     AND NOT upper_inc(period) AND NOT lower_inf(period)
                                     AND NOT upper_inf(period)),
    crossings bigint NOT NULL CHECK (crossings >= 0),
    reading bigint CHECK (reading >= 0),
    source text NOT NULL CHECK (source IN ('desk', 'import')),
    staff_id bigint REFERENCES staff,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT gate_count_no_overlap
        EXCLUDE USING gist (branch_id WITH =, counter WITH =, period WITH &&)
);
-- Visits are counted on the day a period starts: by start, for a branch
-- today (gate_count_add's answer) and for ranges of days (statistics).
CREATE INDEX gate_count_start ON gate_count (lower(period), branch_id)
    INCLUDE (crossings, counter);

-- The last reading of each counter read at the desk: the baseline the next
-- reading is counted from. The very first reading of a counter is only
-- this baseline (no gate_count row: it counts nothing).
CREATE TABLE gate_counter (
    branch_id integer NOT NULL REFERENCES branch,
    counter text NOT NULL CHECK (counter ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    reading bigint NOT NULL CHECK (reading >= 0),
    read_at timestamptz NOT NULL,
    staff_id bigint REFERENCES staff,
    PRIMARY KEY (branch_id, counter)
);

-- ---------------------------------------------------------------- computers

-- Public computer sessions of a branch on a local day (entered at the desk
-- or imported from a booking system); minutes: their total, when known.
CREATE TABLE computer_use (
    branch_id integer NOT NULL REFERENCES branch,
    day date NOT NULL,
    sessions integer NOT NULL CHECK (sessions BETWEEN 0 AND 100000),
    minutes integer CHECK (minutes BETWEEN 0 AND 144000000),
    source text NOT NULL CHECK (source IN ('desk', 'import')),
    staff_id bigint REFERENCES staff,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (branch_id, day)
);

-- ---------------------------------------------------------------- sweeps

-- A floor sweep: people counted in every area of a branch at one time.
CREATE TABLE sweep (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    branch_id integer NOT NULL REFERENCES branch,
    taken_at timestamptz NOT NULL,
    staff_id bigint NOT NULL REFERENCES staff,
    workstation_id bigint REFERENCES workstation,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sweep_branch_at ON sweep (branch_id, taken_at);
CREATE INDEX sweep_at ON sweep (taken_at);

-- One count of a sweep: an area (activity NULL: not split), or an area
-- split by activity. A zero is a row: the area was looked at and empty.
CREATE TABLE sweep_count (
    sweep_id bigint NOT NULL REFERENCES sweep ON DELETE CASCADE,
    area_id integer NOT NULL REFERENCES service_code,
    activity_id integer REFERENCES service_code,
    headcount integer NOT NULL CHECK (headcount BETWEEN 0 AND 10000),
    CONSTRAINT sweep_count_unique UNIQUE NULLS NOT DISTINCT (sweep_id, area_id, activity_id)
);

-- ---------------------------------------------------------------- reply rows

-- inquiry_add, inquiry_remove and inquiry_list rows: proto Inquiry 1..12.
CREATE TYPE inquiry_out AS (id bigint, branch_code text, desk_code text, channel text,
                            kind text, read_level integer, minutes integer, at text,
                            question text, answer text, username text, ticket_id bigint);
-- sweep_save and sweep_list rows: one per count, the sweep's columns first.
CREATE TYPE sweep_out AS (id bigint, branch_code text, at text, username text, total integer,
                          area text, activity text, headcount integer);

-- ---------------------------------------------------------------- settings

INSERT INTO library_setting (name, value) VALUES
    -- Counter crossings per visit: a counter at the door counts everyone
    -- coming in and going out.
    ('visits_divisor', '2')
ON CONFLICT (name) DO NOTHING;
