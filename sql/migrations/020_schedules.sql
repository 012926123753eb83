-- Staff schedules (issue 11): service desks and their staffing minimums,
-- shifts, time off and shift swaps. The rules are in sql/rules/schedule.sql.
-- Two constraints carry the weight: a person never has two shifts at once
-- (an exclusion constraint, deferrable so that a swap of two simultaneous
-- shifts can exchange them in one transaction), and gaps are found by
-- range containment on (branch_id, during), hence btree_gist.

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Scheduling facts of a person. max_week_hours 0 = no limit.
ALTER TABLE staff ADD COLUMN mic_eligible boolean NOT NULL DEFAULT false;
ALTER TABLE staff ADD COLUMN max_week_hours integer NOT NULL DEFAULT 40
    CHECK (max_week_hours BETWEEN 0 AND 80);

CREATE TABLE service_desk (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    branch_id integer NOT NULL REFERENCES branch,
    code text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{1,31}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    active boolean NOT NULL DEFAULT true,
    UNIQUE (branch_id, code)
);

-- A staffing minimum of a desk: `staff` people on these ISO weekdays (NULL
-- or empty: every day) from from_time to to_time (NULL: opening, closing).
-- The need of a half hour is the highest of the rules that match it.
CREATE TABLE desk_need (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    desk_id bigint NOT NULL REFERENCES service_desk ON DELETE CASCADE,
    weekdays smallint[] CHECK (weekdays <@ ARRAY[1, 2, 3, 4, 5, 6, 7]::smallint[]),
    from_time time,
    to_time time,
    staff integer NOT NULL CHECK (staff BETWEEN 0 AND 50),
    CHECK (from_time IS NULL OR to_time IS NULL OR from_time < to_time)
);
CREATE INDEX desk_need_desk ON desk_need (desk_id);

-- A shift: a person (NULL: an open shift, offered to eligible staff) at a
-- branch, at a desk (NULL: off-desk work), possibly as manager in charge.
CREATE TABLE shift (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id bigint REFERENCES staff,
    branch_id integer NOT NULL REFERENCES branch,
    desk_id bigint REFERENCES service_desk,
    during tstzrange NOT NULL CHECK (NOT isempty(during) AND lower_inc(during)
                                     AND NOT upper_inc(during)
                                     AND upper(during) - lower(during)
                                         BETWEEN interval '15 minutes' AND interval '16 hours'),
    mic boolean NOT NULL DEFAULT false,
    note text NOT NULL DEFAULT '' CHECK (length(note) <= 200),
    created_by bigint REFERENCES staff,
    created_at timestamptz NOT NULL DEFAULT now(),
    offered_at timestamptz,
    -- One person, one place at a time. Deferrable: approving a swap of two
    -- simultaneous shifts passes through a moment where one person has both.
    CONSTRAINT shift_staff_no_overlap EXCLUDE USING gist (staff_id WITH =, during WITH &&)
        WHERE (staff_id IS NOT NULL) DEFERRABLE INITIALLY IMMEDIATE
);
-- Gaps and the week grid join shifts to half hours of a branch by containment.
CREATE INDEX shift_branch_during ON shift USING gist (branch_id, during);
CREATE INDEX shift_open ON shift (branch_id, lower(during)) WHERE staff_id IS NULL;

CREATE TABLE time_off (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id bigint NOT NULL REFERENCES staff,
    during tstzrange NOT NULL CHECK (NOT isempty(during)),
    status text NOT NULL DEFAULT 'requested'
        CHECK (status IN ('requested', 'approved', 'denied', 'withdrawn')),
    reason text NOT NULL DEFAULT '' CHECK (length(reason) <= 200),
    requested_by bigint REFERENCES staff,
    created_at timestamptz NOT NULL DEFAULT now(),
    decided_by bigint REFERENCES staff,
    decided_at timestamptz
);
CREATE INDEX time_off_staff_during ON time_off USING gist (staff_id, during);

-- A proposed swap: shift_id given to to_staff_id (in exchange for
-- with_shift_id of theirs, when set); a manager of the branch decides.
CREATE TABLE shift_swap (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shift_id bigint NOT NULL REFERENCES shift ON DELETE CASCADE,
    with_shift_id bigint REFERENCES shift ON DELETE CASCADE,
    to_staff_id bigint NOT NULL REFERENCES staff,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied')),
    requested_by bigint NOT NULL REFERENCES staff,
    decided_by bigint REFERENCES staff,
    created_at timestamptz NOT NULL DEFAULT now(),
    decided_at timestamptz,
    CHECK (with_shift_id IS DISTINCT FROM shift_id)
);
-- One pending swap per shift.
CREATE UNIQUE INDEX shift_swap_pending ON shift_swap (shift_id) WHERE status = 'pending';
CREATE INDEX shift_swap_with ON shift_swap (with_shift_id) WHERE with_shift_id IS NOT NULL;

-- Reply rows of the rules (schedule.sql), in proto field order.
CREATE TYPE shift_out AS (id bigint, username text, staff_name text, branch_code text,
                          desk_code text, start text, "end" text, mic boolean, status text,
                          note text, swap_id bigint);
CREATE TYPE schedule_gap_row AS (branch_code text, day date, start text, "end" text,
                                 kind text, desk_code text, needed integer, scheduled integer,
                                 text text, program_session_id bigint);
-- schedule_absent's rows (kind, shift_out columns, gap columns), also the
-- stored answer of a retried sick call.
CREATE TYPE schedule_absent_row AS (kind text, id bigint, username text, staff_name text,
    branch_code text, desk_code text, start text, "end" text, mic boolean, status text,
    note text, swap_id bigint, gap_branch_code text, gap_day date, gap_start text,
    gap_end text, gap_kind text, gap_desk_code text, gap_needed integer,
    gap_scheduled integer, gap_text text, gap_program_session_id bigint);
-- shift_change's and swap_list's rows (kind, shift_out columns, the swap).
CREATE TYPE shift_change_row AS (kind text, id bigint, username text, staff_name text,
    branch_code text, desk_code text, start text, "end" text, mic boolean, status text,
    note text, swap_id bigint, swap_request_id bigint, swap_status text, swap_to text,
    swap_requested_by text, swap_decided_by text, swap_with_shift bigint);
