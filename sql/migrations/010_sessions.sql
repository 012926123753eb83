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

-- Attempts refused by the throttle are written as one row per key and
-- interval (login_throttle_report_s) carrying how many there were.
ALTER TABLE login_event ADD COLUMN attempts integer NOT NULL DEFAULT 1
    CHECK (attempts >= 1);
