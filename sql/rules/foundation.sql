-- Foundation rules: staff accounts, workstations, staff sessions, the time
-- format of every reply (api_time), and circ_refuse, the helper for the
-- error convention (our SQLSTATEs CR4xx; see migrations/001_foundation.sql).
-- Called by server/admin.c (StaffAdd, StaffSetPassword, StaffSetDisabled,
-- WorkstationAdd), server/auth.c (login_event_prune, staff_branch_codes) and
-- server/main.c (--init-admin); api_time by every module's statements.

-- How every timestamp leaves the database in replies: ISO 8601 in UTC to the
-- second ("2026-11-29T21:10:04Z"), whatever the session's TimeZone is.
CREATE OR REPLACE FUNCTION api_time(p_at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- Branch codes of a staff member, sorted, for replies.
CREATE OR REPLACE FUNCTION staff_branch_codes(p_staff bigint) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(b.code ORDER BY b.code), '{}')
    FROM staff_branch sb JOIN branch b ON b.id = sb.branch_id
    WHERE sb.staff_id = p_staff
$$;

-- Resolve branch codes to ids; an unknown code is a bad request.
CREATE OR REPLACE FUNCTION branch_ids_for(p_codes text[]) RETURNS integer[]
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

CREATE OR REPLACE FUNCTION staff_add(p_actor bigint, p_workstation bigint, p_username text,
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

CREATE OR REPLACE FUNCTION staff_set_password(p_actor bigint, p_workstation bigint, p_username text,
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

CREATE OR REPLACE FUNCTION staff_set_disabled(p_actor bigint, p_workstation bigint, p_username text,
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

CREATE OR REPLACE FUNCTION workstation_add(p_actor bigint, p_workstation bigint, p_name text,
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

-- Record a certificate carreld --issue-cert signed for a workstation (server/
-- certs.c), audited as workstation_cert_issue with no staff (IT on the server):
-- the detail says who signed (the operating system's user and host, the
-- database user and the client address) and with which CA. Returns the
-- workstation's id.
DROP FUNCTION IF EXISTS workstation_cert_record(text, text, timestamptz, timestamptz, text);
CREATE OR REPLACE FUNCTION workstation_cert_record(p_name text, p_serial text,
                                                   p_not_before timestamptz,
                                                   p_not_after timestamptz,
                                                   p_fingerprint text, p_os_user text,
                                                   p_host text, p_ca_subject text,
                                                   p_ca_sha256 text)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_ws bigint;
BEGIN
    SELECT w.id INTO v_ws FROM workstation w WHERE w.name = p_name;
    IF v_ws IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'workstation',
            MESSAGE = format('There is no workstation %s; register it first.', p_name);
    END IF;
    INSERT INTO workstation_cert (workstation_id, serial, not_before, not_after, fingerprint)
    VALUES (v_ws, p_serial, p_not_before, p_not_after, p_fingerprint);
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (NULL, NULL, 'workstation_cert_issue', p_name,
            jsonb_build_object('serial', p_serial, 'not_before', api_time(p_not_before),
                               'not_after', api_time(p_not_after), 'sha256', p_fingerprint,
                               'os_user', p_os_user, 'host', p_host,
                               'db_user', session_user::text,
                               'client_addr', inet_client_addr()::text,
                               'ca_subject', p_ca_subject, 'ca_sha256', p_ca_sha256));
    RETURN v_ws;
END
$$;

-- WorkstationRevoke (server/admin.c): revoke every certificate of the
-- workstation not revoked yet, audited; the serials revoked, newest first,
-- and the newest one's expiry, for the reply and the daemon's revoked set.
-- The caller checked the branch permission on the workstation it read (id
-- p_id at branch p_branch): one renamed, re-added or moved since is refused
-- (CR409 stale_version) rather than revoked under the wrong permission.
DROP FUNCTION IF EXISTS workstation_revoke(bigint, bigint, text, text);
CREATE OR REPLACE FUNCTION workstation_revoke(p_actor bigint, p_workstation bigint, p_id bigint,
                                              p_branch text, p_name text, p_reason text)
RETURNS TABLE (id bigint, name text, branch_code text, serials text[], not_after_ms bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_ws bigint;
    v_branch text;
    v_serials text[];
    v_not_after timestamptz;
BEGIN
    SELECT w.id, b.code INTO v_ws, v_branch
    FROM workstation w JOIN branch b ON b.id = w.branch_id WHERE w.name = p_name
    FOR UPDATE OF w;
    IF v_ws IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'workstation',
            MESSAGE = format('There is no workstation %s.', p_name);
    END IF;
    IF v_ws <> p_id OR v_branch <> p_branch THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'stale_version',
            MESSAGE = format('Workstation %s changed while it was being revoked; try again.',
                             p_name);
    END IF;
    WITH revoked AS (
        UPDATE workstation_cert c SET revoked_at = now(), revoked_by = p_actor, reason = p_reason
        WHERE c.workstation_id = v_ws AND c.revoked_at IS NULL
        RETURNING c.serial, c.not_after, c.issued_at, c.id
    )
    SELECT array_agg(r.serial ORDER BY r.issued_at DESC, r.id DESC), max(r.not_after)
    INTO v_serials, v_not_after FROM revoked r;
    IF v_serials IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'no_certificate',
            MESSAGE = format('Workstation %s has no certificate that is not revoked already.',
                             p_name);
    END IF;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    VALUES (p_actor, p_workstation, 'workstation_revoke', p_name,
            jsonb_build_object('serials', v_serials, 'reason', p_reason));
    RETURN QUERY SELECT v_ws, p_name, v_branch, v_serials,
                        (extract(epoch FROM v_not_after) * 1000)::bigint;
END
$$;

-- Raise a refusal: CR422 with the reason as DETAIL; overridable ones say so.
CREATE OR REPLACE FUNCTION circ_refuse(p_reason text, p_message text, p_overridable boolean)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_overridable THEN
        RAISE EXCEPTION USING ERRCODE = 'CR422', DETAIL = p_reason, MESSAGE = p_message,
            HINT = 'overridable';
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'CR422', DETAIL = p_reason, MESSAGE = p_message;
END
$$;

-- A saved session token still logs its staff member in at that workstation:
-- it was issued to them there and has not expired (a new password or a
-- disabled account deletes it: staff_session_revoke).
CREATE OR REPLACE FUNCTION staff_session_valid(p_token_hex text, p_staff bigint,
                                               p_workstation bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT p_token_hex IS NOT NULL AND EXISTS (
        SELECT 1 FROM staff_session t
         WHERE t.token_hash = decode(p_token_hex, 'hex') AND t.staff_id = p_staff
           AND t.workstation_id = p_workstation AND t.expires_at > now())
$$;

CREATE OR REPLACE FUNCTION staff_session_revoke() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash
       OR (NEW.disabled AND NOT OLD.disabled) THEN
        DELETE FROM staff_session WHERE staff_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER staff_session_revoke AFTER UPDATE OF password_hash, disabled ON staff
    FOR EACH ROW EXECUTE FUNCTION staff_session_revoke();

-- Retention: run hourly by the daemon with login_event_retention_days.
-- Deletes login_event rows older than that and session tokens that have
-- expired; returns how many rows went.
CREATE OR REPLACE FUNCTION login_event_prune(p_days integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_events bigint;
    v_sessions bigint;
BEGIN
    IF p_days IS NULL OR p_days < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:days',
            MESSAGE = 'The retention period must be at least one day.';
    END IF;
    DELETE FROM login_event WHERE at < now() - make_interval(days => p_days);
    GET DIAGNOSTICS v_events = ROW_COUNT;
    DELETE FROM staff_session WHERE expires_at <= now();
    GET DIAGNOSTICS v_sessions = ROW_COUNT;
    RETURN v_events + v_sessions;
END
$$;
