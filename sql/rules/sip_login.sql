-- SIP2 logins (docs/SIP2.md): the rows that tie a selfcheck staff account to
-- a workstation, with its machine's options. Called by server/sip_admin.c
-- (SipLoginSave, SipLoginList, SipLoginRemove, audited in admin_audit) and
-- server/sip.c (sip_login_auth at message 93, sip_login_touch after it).

-- One login as the admin commands show it.
CREATE OR REPLACE FUNCTION sip_login_list()
RETURNS TABLE (username text, workstation text, branch_code text, institution text,
               always_send_ct boolean, cv_00_on_success boolean, hide_fields text,
               held_checkin_blocked boolean, pin_required boolean, disabled boolean,
               last_login_at timestamptz, version integer)
LANGUAGE sql STABLE AS $$
    SELECT s.username, w.name, b.code, l.institution, l.always_send_ct, l.cv_00_on_success,
           l.hide_fields, l.held_checkin_blocked, l.pin_required, s.disabled, l.last_login_at,
           l.version
      FROM sip_login l
      JOIN staff s ON s.id = l.staff_id
      JOIN workstation w ON w.id = l.workstation_id
      JOIN branch b ON b.id = w.branch_id
     ORDER BY s.username
$$;

-- Create (p_version NULL) or change (p_version: the version read) a login.
-- The account must be of role selfcheck (not_selfcheck), the workstation
-- must exist (field:workstation); options given as NULL keep their value
-- (their default for a new row).
CREATE OR REPLACE FUNCTION sip_login_save(p_actor bigint, p_workstation_actor bigint,
                                          p_username text, p_workstation text,
                                          p_institution text, p_always_send_ct boolean,
                                          p_cv_00 boolean, p_hide text, p_held_blocked boolean,
                                          p_pin_required boolean, p_version integer)
RETURNS TABLE (username text, workstation text, branch_code text, institution text,
               always_send_ct boolean, cv_00_on_success boolean, hide_fields text,
               held_checkin_blocked boolean, pin_required boolean, disabled boolean,
               last_login_at timestamptz, version integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_staff bigint;
    v_role staff_role;
    v_ws bigint;
    v_row sip_login%ROWTYPE;
BEGIN
    SELECT s.id, s.role INTO v_staff, v_role FROM staff s WHERE s.username = p_username;
    IF v_staff IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'staff',
            MESSAGE = format('There is no staff account %s.', p_username);
    END IF;
    IF v_role <> 'selfcheck' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'not_selfcheck',
            MESSAGE = format('%s is a %s account; only a staff account of role selfcheck can '
                             'be a SIP2 login.', p_username, v_role);
    END IF;
    IF p_workstation IS NOT NULL THEN
        SELECT w.id INTO v_ws FROM workstation w WHERE w.name = p_workstation;
        IF v_ws IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:workstation',
                MESSAGE = format('There is no workstation named %s.', p_workstation);
        END IF;
    END IF;
    SELECT * INTO v_row FROM sip_login l WHERE l.staff_id = v_staff FOR UPDATE;
    IF NOT FOUND THEN
        IF p_version IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'sip_login',
                MESSAGE = format('%s has no SIP2 login to change.', p_username);
        END IF;
        IF v_ws IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'field:workstation',
                MESSAGE = 'A new SIP2 login needs a workstation.';
        END IF;
        INSERT INTO sip_login (staff_id, workstation_id, institution, always_send_ct,
                               cv_00_on_success, hide_fields, held_checkin_blocked, pin_required)
        VALUES (v_staff, v_ws, nullif(p_institution, ''), coalesce(p_always_send_ct, false),
                coalesce(p_cv_00, false), coalesce(p_hide, ''), coalesce(p_held_blocked, false),
                coalesce(p_pin_required, true));
    ELSE
        IF p_version IS NOT NULL AND p_version <> v_row.version THEN
            RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'stale_version',
                MESSAGE = format('The SIP2 login %s was changed meanwhile (version %s, not %s); '
                                 'read it again.', p_username, v_row.version, p_version);
        END IF;
        UPDATE sip_login l
           SET workstation_id = coalesce(v_ws, l.workstation_id),
               institution = CASE WHEN p_institution IS NULL THEN l.institution
                                  ELSE nullif(p_institution, '') END,
               always_send_ct = coalesce(p_always_send_ct, l.always_send_ct),
               cv_00_on_success = coalesce(p_cv_00, l.cv_00_on_success),
               hide_fields = coalesce(p_hide, l.hide_fields),
               held_checkin_blocked = coalesce(p_held_blocked, l.held_checkin_blocked),
               pin_required = coalesce(p_pin_required, l.pin_required),
               version = l.version + 1, updated_at = now()
         WHERE l.staff_id = v_staff;
    END IF;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target, detail)
    SELECT p_actor, p_workstation_actor, 'sip_login_save', p_username,
           to_jsonb(l) - 'staff_id' - 'created_at' - 'updated_at' - 'last_login_at'
      FROM sip_login l WHERE l.staff_id = v_staff;
    RETURN QUERY SELECT * FROM sip_login_list() x WHERE x.username = p_username;
END
$$;

CREATE OR REPLACE FUNCTION sip_login_remove(p_actor bigint, p_workstation_actor bigint,
                                            p_username text)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sip_login l USING staff s WHERE s.id = l.staff_id AND s.username = p_username;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'sip_login',
            MESSAGE = format('%s has no SIP2 login.', p_username);
    END IF;
    INSERT INTO admin_audit (staff_id, workstation_id, action, target)
    VALUES (p_actor, p_workstation_actor, 'sip_login_remove', p_username);
    RETURN p_username;
END
$$;

-- Message 93: always one row, so an unknown name costs the same Argon2 check
-- (against the dummy hash) as a known one. has_login: the account has a
-- sip_login row; the rest describes it.
CREATE OR REPLACE FUNCTION sip_login_auth(p_username text)
RETURNS TABLE (staff_id bigint, password_hash text, disabled boolean, role text,
               has_login boolean, workstation_id bigint, workstation_name text,
               branch_id integer, branch_code text, branch_name text, institution text,
               always_send_ct boolean, cv_00_on_success boolean, hide_fields text,
               held_checkin_blocked boolean, pin_required boolean)
LANGUAGE sql STABLE AS $$
    SELECT s.id, s.password_hash, s.disabled, s.role::text, l.staff_id IS NOT NULL,
           w.id, w.name, b.id, b.code, b.name, coalesce(l.institution, b.code),
           l.always_send_ct, l.cv_00_on_success, l.hide_fields, l.held_checkin_blocked,
           l.pin_required
      FROM (SELECT 1) AS one
      LEFT JOIN staff s ON s.username = p_username
      LEFT JOIN sip_login l ON l.staff_id = s.id
      LEFT JOIN workstation w ON w.id = l.workstation_id
      LEFT JOIN branch b ON b.id = w.branch_id
$$;

CREATE OR REPLACE FUNCTION sip_login_touch(p_staff bigint)
RETURNS void
LANGUAGE sql AS $$
    UPDATE sip_login SET last_login_at = now() WHERE staff_id = p_staff;
$$;

-- The library's offset from UTC now, in seconds (setting `timezone`): the
-- SIP2 gateway dates its answers with it (sip_date_now), whatever the
-- daemon's own zone is.
CREATE OR REPLACE FUNCTION sip_utc_offset_s() RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT extract(epoch FROM (now() AT TIME ZONE library_setting_text('timezone'))
                              - (now() AT TIME ZONE 'UTC'))::integer
$$;
