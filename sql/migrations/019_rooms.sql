-- Rooms, room bookings and programs (issue 11). The rules are in
-- sql/rules/rooms.sql and sql/rules/programs.sql; docs/ROOMS.md tells staff
-- how it works.
--
-- A double booking is made impossible by one constraint: room_block holds one
-- row per unit of the booked room (its parts, or itself when it has none) for
-- every live booking, and no two rows of one unit overlap (EXCLUDE USING
-- gist). A hall made of two halves blocks both halves' units; a half blocks
-- its own, which the hall shares.

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- The rules a room follows. Limits of 0 mean "no limit".
CREATE TABLE room_category (
    code text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{1,31}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    min_minutes integer NOT NULL,
    max_minutes integer NOT NULL,
    slot_minutes integer NOT NULL CHECK (slot_minutes BETWEEN 5 AND 240),
    days_ahead integer NOT NULL CHECK (days_ahead BETWEEN 0 AND 730),
    max_bookings integer NOT NULL DEFAULT 0 CHECK (max_bookings BETWEEN 0 AND 1000),
    max_hours_week integer NOT NULL DEFAULT 0 CHECK (max_hours_week BETWEEN 0 AND 168),
    max_hours_month integer NOT NULL DEFAULT 0 CHECK (max_hours_month BETWEEN 0 AND 744),
    gap_minutes integer NOT NULL DEFAULT 0 CHECK (gap_minutes BETWEEN 0 AND 1440),
    setup_minutes integer NOT NULL DEFAULT 0 CHECK (setup_minutes BETWEEN 0 AND 240),
    cleanup_minutes integer NOT NULL DEFAULT 0 CHECK (cleanup_minutes BETWEEN 0 AND 240),
    needs_approval boolean NOT NULL DEFAULT false,
    checkin_minutes integer NOT NULL DEFAULT 0 CHECK (checkin_minutes BETWEEN 0 AND 240),
    CHECK (min_minutes >= slot_minutes AND min_minutes % slot_minutes = 0),
    CHECK (max_minutes >= min_minutes AND max_minutes <= 1440 AND max_minutes % slot_minutes = 0)
);
INSERT INTO room_category (code, name, min_minutes, max_minutes, slot_minutes, days_ahead,
                           max_bookings, max_hours_week, max_hours_month, gap_minutes,
                           setup_minutes, cleanup_minutes, needs_approval, checkin_minutes)
VALUES
    ('study', 'Study room', 30, 180, 30, 14, 2, 6, 20, 0, 0, 0, false, 15),
    ('meeting', 'Meeting room', 60, 240, 30, 60, 3, 8, 24, 30, 15, 15, false, 15),
    ('hall', 'Hall', 60, 480, 60, 180, 2, 12, 24, 0, 30, 30, true, 0);

CREATE TABLE room (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    branch_id integer NOT NULL REFERENCES branch,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    capacity integer NOT NULL CHECK (capacity BETWEEN 1 AND 10000),
    features text[] NOT NULL DEFAULT '{}',
    bookable_by text NOT NULL DEFAULT 'public' CHECK (bookable_by IN ('public', 'staff')),
    category text NOT NULL REFERENCES room_category ON UPDATE CASCADE,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (branch_id, name)
);

-- A split room: whole_id is made of its parts (one level; same branch;
-- checked by room_save).
CREATE TABLE room_part (
    whole_id bigint NOT NULL REFERENCES room,
    part_id bigint NOT NULL REFERENCES room,
    PRIMARY KEY (whole_id, part_id),
    CHECK (whole_id <> part_id)
);
CREATE INDEX room_part_part ON room_part (part_id);

-- ---------------------------------------------------------------- programs

CREATE TABLE program (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    audience text NOT NULL CHECK (audience IN ('0-5', '6-11', '12-18', '19+', 'general')),
    venue text NOT NULL CHECK (venue IN ('branch', 'offsite', 'online')),
    branch_id integer NOT NULL REFERENCES branch,
    location text NOT NULL DEFAULT '' CHECK (length(location) <= 500),
    presenter text NOT NULL DEFAULT '' CHECK (length(presenter) <= 200),
    staff_id bigint REFERENCES staff,
    category text NOT NULL DEFAULT '' CHECK (category ~ '^([a-z][a-z0-9_]{0,31})?$'),
    cancelled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by bigint REFERENCES staff
);
CREATE INDEX program_branch ON program (branch_id);

CREATE TABLE program_session (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id bigint NOT NULL REFERENCES program,
    during tstzrange NOT NULL CHECK (NOT isempty(during) AND NOT lower_inf(during)
                                     AND NOT upper_inf(during)),
    booking_id bigint,      -- REFERENCES room_booking, below
    staff_id bigint REFERENCES staff,
    attendance integer CHECK (attendance BETWEEN 0 AND 100000),
    cancelled boolean NOT NULL DEFAULT false
);
CREATE INDEX program_session_program ON program_session (program_id);
CREATE INDEX program_session_start ON program_session (lower(during));

-- ---------------------------------------------------------------- bookings

CREATE SEQUENCE room_series;

CREATE TABLE room_booking (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id bigint NOT NULL REFERENCES room,
    status text NOT NULL CHECK (status IN ('tentative', 'confirmed', 'checked_in', 'completed',
                                           'cancelled', 'no_show')),
    during tstzrange NOT NULL CHECK (NOT isempty(during) AND NOT lower_inf(during)
                                     AND NOT upper_inf(during)),
    blocked tstzrange NOT NULL CHECK (blocked @> during),
    patron_id bigint REFERENCES patron,
    group_name text CHECK (length(group_name) BETWEEN 1 AND 200),
    group_contact text CHECK (length(group_contact) <= 200),
    program_session_id bigint REFERENCES program_session,
    purpose text NOT NULL DEFAULT '' CHECK (length(purpose) <= 200),
    attendees integer CHECK (attendees BETWEEN 0 AND 10000),
    series_id bigint,
    overridden boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by bigint REFERENCES staff,
    checked_in_at timestamptz,
    cancelled_at timestamptz,
    cancel_reason text CHECK (length(cancel_reason) <= 200),
    released_at timestamptz,
    anonymised boolean NOT NULL DEFAULT false
);
CREATE INDEX room_booking_room ON room_booking (room_id, lower(during));
CREATE INDEX room_booking_start ON room_booking (lower(during));
CREATE INDEX room_booking_patron ON room_booking (patron_id) WHERE patron_id IS NOT NULL;
CREATE INDEX room_booking_series ON room_booking (series_id) WHERE series_id IS NOT NULL;
-- rooms_tick's work, cheap when there is none: the live ones and the ones
-- not yet anonymised.
CREATE INDEX room_booking_live ON room_booking (lower(during))
    WHERE status IN ('tentative', 'confirmed', 'checked_in');
CREATE INDEX room_booking_named ON room_booking (upper(during)) WHERE NOT anonymised;

ALTER TABLE program_session ADD FOREIGN KEY (booking_id) REFERENCES room_booking;

-- One row per unit of the booked room while the booking is live. The
-- exclusion constraint's gist index (unit_id, blocked) also serves room_free.
CREATE TABLE room_block (
    booking_id bigint NOT NULL REFERENCES room_booking,
    unit_id bigint NOT NULL REFERENCES room,
    blocked tstzrange NOT NULL,
    PRIMARY KEY (booking_id, unit_id),
    CONSTRAINT room_block_no_overlap EXCLUDE USING gist (unit_id WITH =, blocked WITH &&)
);

-- The patron's record counts their no-shows (like loans_out: a counter).
ALTER TABLE patron_circ ADD COLUMN room_no_shows integer NOT NULL DEFAULT 0
    CHECK (room_no_shows >= 0);

-- ---------------------------------------------------------------- notices

ALTER TABLE notice_template DROP CONSTRAINT notice_template_kind_check;
ALTER TABLE notice_template ADD CONSTRAINT notice_template_kind_check
    CHECK (kind IN ('hold_ready', 'hold_expiring', 'courtesy', 'overdue_1', 'overdue_2',
                    'room_confirmed', 'room_reminder', 'room_cancelled'));
-- Placeholders of the room notices: {name} {room} {branch} {date} {time} {library}
INSERT INTO notice_template (kind, subject, body) VALUES
    ('room_confirmed', 'Room booked: {room}, {date}',
     E'Dear {name},\n\n{room} at {branch} is booked for you on {date}, {time}.\n\n{library}\n'),
    ('room_reminder', 'Reminder: {room}, {date} {time}',
     E'Dear {name},\n\nA reminder of your booking of {room} at {branch} on {date}, {time}. '
     || E'Please check in at the desk when you arrive, or cancel if you no longer need it.\n\n'
     || E'{library}\n'),
    ('room_cancelled', 'Booking cancelled: {room}, {date}',
     E'Dear {name},\n\nYour booking of {room} at {branch} on {date}, {time} has been '
     || E'cancelled.\n\n{library}\n');

ALTER TABLE notice ADD COLUMN booking_id bigint REFERENCES room_booking;
DROP INDEX notice_once;
CREATE UNIQUE INDEX notice_once ON notice (kind, coalesce(hold_id, 0), coalesce(loan_id, 0),
                                           coalesce(booking_id, 0),
                                           coalesce(about_date, '1900-01-01'));
CREATE INDEX notice_booking ON notice (booking_id) WHERE booking_id IS NOT NULL;

-- ---------------------------------------------------------------- settings

INSERT INTO library_setting (name, value) VALUES
    -- Patrons are reminded of a confirmed booking this many hours before it.
    ('room_reminder_hours', '24'),
    -- Bookings that ended this many days ago lose the patron's identity.
    ('room_booking_retention_days', '30'),
    -- Check-in opens this many minutes before the start.
    ('room_checkin_early_minutes', '15')
ON CONFLICT (name) DO NOTHING;
