-- 032: patron PINs, for self-check machines (SIP2 field AD).
--
-- A PIN is stored only as an Argon2id hash (set by staff with PatronPinSet,
-- hashed by the daemon on its password queue); it never reaches the audit
-- trail, which only says that it was set or cleared. Wrong PINs are counted:
-- five in a row lock the PIN for fifteen minutes (sql/rules/sip.sql,
-- sip_pin_record), so a card found in the street cannot be tried against
-- ten thousand PINs at a kiosk.

CREATE TABLE patron_pin (
    patron_id bigint PRIMARY KEY REFERENCES patron,
    pin_hash text NOT NULL CHECK (pin_hash LIKE '$argon2id$%'),
    set_at timestamptz NOT NULL DEFAULT now(),
    set_by bigint REFERENCES staff,
    failures integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    locked_until timestamptz
);
