-- 001: branches, staff, workstations, login and administration audit.
--
-- Conventions for every migration:
--   * Business rules are constraints or functions here, never only C checks.
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

-- How every timestamp leaves the database in replies: ISO 8601 in UTC to the
-- second ("2026-11-29T21:10:04Z"), whatever the session's TimeZone is.
CREATE FUNCTION api_time(p_at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- Branch codes of a staff member, sorted, for replies.
CREATE FUNCTION staff_branch_codes(p_staff bigint) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(b.code ORDER BY b.code), '{}')
    FROM staff_branch sb JOIN branch b ON b.id = sb.branch_id
    WHERE sb.staff_id = p_staff
$$;

-- Resolve branch codes to ids; an unknown code is a bad request.
CREATE FUNCTION branch_ids_for(p_codes text[]) RETURNS integer[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_ids integer[];
    v_missing text;
BEGIN
    SELECT c INTO v_missing FROM unnest(p_codes) c
    WHERE NOT EXISTS (SELECT 1 FROM branch b WHERE b.code = c) LIMIT 1;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:branch',
            MESSAGE = format('There is no branch with code %s.', v_missing);
    END IF;
    SELECT array_agg(DISTINCT b.id) INTO v_ids FROM branch b WHERE b.code = ANY (p_codes);
    RETURN v_ids;
END
$$;

CREATE FUNCTION staff_add(p_actor bigint, p_workstation bigint, p_username text,
                          p_display_name text, p_role staff_role, p_branches text[],
                          p_hash text)
RETURNS TABLE (id bigint, username text, display_name text, role staff_role,
               branch_codes text[], disabled boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    IF cardinality(p_branches) = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:branch',
            MESSAGE = 'A staff account needs at least one branch.';
    END IF;
    IF EXISTS (SELECT 1 FROM staff s WHERE s.username = p_username) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'username_taken',
            MESSAGE = format('The user name %s is already taken.', p_username);
    END IF;
    INSERT INTO staff (username, display_name, role, password_hash)
    VALUES (p_username, p_display_name, p_role, p_hash)
    RETURNING staff.id INTO v_id;
    INSERT INTO staff_branch (staff_id, branch_id)
    SELECT v_id, unnest(branch_ids_for(p_branches));
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_actor, p_workstation, 'staff_add', p_username,
            jsonb_build_object('role', p_role, 'branches', p_branches));
    RETURN QUERY SELECT s.id, s.username, s.display_name, s.role, staff_branch_codes(s.id),
                        s.disabled
                 FROM staff s WHERE s.id = v_id;
END
$$;

CREATE FUNCTION staff_set_password(p_actor bigint, p_workstation bigint, p_username text,
                                   p_hash text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE staff SET password_hash = p_hash, updated_at = now() WHERE username = p_username;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'staff',
            MESSAGE = format('There is no staff account %s.', p_username);
    END IF;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target)
    VALUES (p_actor, p_workstation, 'staff_set_password', p_username);
END
$$;

CREATE FUNCTION staff_set_disabled(p_actor bigint, p_workstation bigint, p_username text,
                                   p_disabled boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE staff SET disabled = p_disabled, updated_at = now() WHERE username = p_username;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'staff',
            MESSAGE = format('There is no staff account %s.', p_username);
    END IF;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_actor, p_workstation, 'staff_set_disabled', p_username,
            jsonb_build_object('disabled', p_disabled));
END
$$;

CREATE FUNCTION workstation_add(p_actor bigint, p_workstation bigint, p_name text,
                                p_branch text)
RETURNS TABLE (id bigint, name text, branch_code text)
LANGUAGE plpgsql AS $$
DECLARE
    v_branch integer;
    v_id bigint;
BEGIN
    SELECT b.id INTO v_branch FROM branch b WHERE b.code = p_branch;
    IF v_branch IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:branch',
            MESSAGE = format('There is no branch with code %s.', p_branch);
    END IF;
    IF EXISTS (SELECT 1 FROM workstation w WHERE w.name = p_name) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'workstation_taken',
            MESSAGE = format('A workstation named %s is already registered.', p_name);
    END IF;
    INSERT INTO workstation (name, branch_id, created_by)
    VALUES (p_name, v_branch, p_actor) RETURNING workstation.id INTO v_id;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_actor, p_workstation, 'workstation_add', p_name,
            jsonb_build_object('branch', p_branch));
    RETURN QUERY SELECT v_id, p_name, p_branch;
END
$$;
