-- Self-check machines (issue 14, docs/SIP2.md). A kiosk logs in to the SIP2
-- port (message 93) as a staff account of role selfcheck; its sip_login row
-- ties it to a workstation (so a branch) and holds the options for the quirks
-- of the machine behind it. The role sorts below clerk so that comparisons
-- such as role >= 'branch_manager' keep their meaning.
ALTER TYPE staff_role ADD VALUE IF NOT EXISTS 'selfcheck' BEFORE 'clerk';

CREATE TABLE sip_login (
    staff_id bigint PRIMARY KEY REFERENCES staff ON DELETE CASCADE,
    workstation_id bigint NOT NULL REFERENCES workstation,
    institution text CHECK (length(institution) BETWEEN 1 AND 63),
    always_send_ct boolean NOT NULL DEFAULT false,
    cv_00_on_success boolean NOT NULL DEFAULT false,
    hide_fields text NOT NULL DEFAULT ''
        CHECK (hide_fields ~ '^([A-Z][A-Z0-9](,[A-Z][A-Z0-9])*)?$' AND length(hide_fields) < 128),
    held_checkin_blocked boolean NOT NULL DEFAULT false,
    pin_required boolean NOT NULL DEFAULT true,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);
CREATE INDEX sip_login_workstation ON sip_login (workstation_id);
