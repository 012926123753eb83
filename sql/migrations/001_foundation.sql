-- 001: branches, staff, workstations, login and administration audit.
--
-- Conventions for every migration:
--   * Business rules are constraints here or functions in sql/rules/ (one
--     file per domain, applied again at every start), never only C checks.
--     Migrations hold tables, constraints, indexes, data moves and seed rows.
--   * Functions called by the daemon report rule violations with our own
--     SQLSTATEs, which the daemon maps to protocol statuses:
--       CR400 bad request   CR403 forbidden   CR404 not found
--       CR409 conflict      CR422 refused by a library rule
--     MESSAGE is the sentence shown to staff; DETAIL is the machine-readable
--     reason (e.g. 'field:email'); HINT 'overridable' marks a refusal that
--     staff with the override permission may override.

CREATE TABLE branch (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code text NOT NULL UNIQUE CHECK (code ~ '^[A-Z][A-Z0-9]{1,7}$'),
    name text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    address text NOT NULL DEFAULT '',
    phone text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Weekly opening hours; a weekday without a row is a closed day.
-- weekday follows ISO 8601 (extract(isodow ...)): 1 = Monday ... 7 = Sunday.
CREATE TABLE branch_hours (
    branch_id integer NOT NULL REFERENCES branch ON DELETE CASCADE,
    weekday smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    opens time NOT NULL,
    closes time NOT NULL,
    PRIMARY KEY (branch_id, weekday),
    CHECK (closes > opens)
);

CREATE TYPE staff_role AS ENUM ('clerk', 'librarian', 'branch_manager', 'coordinator', 'admin');

CREATE TABLE staff (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text NOT NULL UNIQUE CHECK (username ~ '^[a-z][a-z0-9._-]{1,31}$'),
    display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    role staff_role NOT NULL,
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    disabled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE staff_branch (
    staff_id bigint NOT NULL REFERENCES staff ON DELETE CASCADE,
    branch_id integer NOT NULL REFERENCES branch,
    PRIMARY KEY (staff_id, branch_id)
);

CREATE TABLE workstation (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    branch_id integer NOT NULL REFERENCES branch,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by bigint REFERENCES staff
);

-- Every login attempt, kept for security review (no passwords, ever).
CREATE TABLE login_event (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    username text NOT NULL,
    workstation text NOT NULL,
    peer text NOT NULL,
    success boolean NOT NULL,
    reason text NOT NULL
);
CREATE INDEX login_event_at ON login_event (at);

-- Administrative changes (staff and workstations): who, where, what.
CREATE TABLE admin_audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    staff_id bigint REFERENCES staff,
    workstation_id bigint REFERENCES workstation,
    action text NOT NULL,
    target text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}'
);
