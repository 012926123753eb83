-- 010: session tokens (a client's saved login), login_event summaries and
-- retention.
--
-- A session token lets a client log in again without the password (and
-- without the daemon's Argon2 check). Only its SHA-256 is stored, bound to
-- the staff member and the workstation it was issued to, with an absolute
-- expiry (session_token_ttl_s after the login that made it). Logout deletes
-- it; a password change or a disabled account deletes every token of that
-- staff member (trigger staff_session_revoke), whoever made the change.

CREATE TABLE staff_session (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    staff_id bigint NOT NULL REFERENCES staff ON DELETE CASCADE,
    workstation_id bigint NOT NULL REFERENCES workstation ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX staff_session_staff ON staff_session (staff_id);
CREATE INDEX staff_session_expires ON staff_session (expires_at);

CREATE FUNCTION staff_session_revoke() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash
       OR (NEW.disabled AND NOT OLD.disabled) THEN
        DELETE FROM staff_session WHERE staff_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER staff_session_revoke AFTER UPDATE OF password_hash, disabled ON staff
    FOR EACH ROW EXECUTE FUNCTION staff_session_revoke();

-- Attempts refused by the throttle are written as one row per key and
-- interval (login_throttle_report_s) carrying how many there were.
ALTER TABLE login_event ADD COLUMN attempts integer NOT NULL DEFAULT 1
    CHECK (attempts >= 1);

-- Retention: run hourly by the daemon with login_event_retention_days.
-- Deletes login_event rows older than that and session tokens that have
-- expired; returns how many rows went.
CREATE FUNCTION login_event_prune(p_days integer) RETURNS bigint
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
