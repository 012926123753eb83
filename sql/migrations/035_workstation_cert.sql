-- 035: the workstations' certificates. carreld --issue-cert (server/certs.c)
-- records each certificate it signs with the library CA; WorkstationRevoke
-- (workstation_revoke, sql/rules/foundation.sql) marks them revoked. Every
-- daemon refuses a revoked certificate at the TLS handshake: the one that
-- revoked it at once, the others when they next read the revoked serials
-- (every revocation_poll_s).
--
-- Invariants:
--   * serial is the certificate's serial number as `openssl x509 -serial`
--     prints it (upper-case hexadecimal, two digits a byte), unique: carreld
--     draws 16 random bytes for each;
--   * fingerprint is the SHA-256 of the certificate's DER, lower-case hex;
--   * revoked_at, revoked_by and reason are set together, once (a revoked
--     certificate stays revoked); revoked_by is NULL only for a revocation
--     made outside the protocol.

CREATE TABLE workstation_cert (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workstation_id bigint NOT NULL REFERENCES workstation,
    -- As tls_serial_hex prints it: no leading zero byte, so a row made by hand matches.
    serial text NOT NULL UNIQUE
        CHECK (serial ~ '^([0-9A-F]{2})+$' AND (serial = '00' OR serial !~ '^00')),
    not_before timestamptz NOT NULL,
    not_after timestamptz NOT NULL CHECK (not_after > not_before),
    fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    issued_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    revoked_by bigint REFERENCES staff,
    reason text CHECK (reason IS NULL OR length(reason) BETWEEN 1 AND 500),
    CHECK ((revoked_at IS NULL) = (reason IS NULL)),
    CHECK (revoked_at IS NOT NULL OR revoked_by IS NULL)
);

CREATE INDEX workstation_cert_workstation ON workstation_cert (workstation_id, issued_at);
-- The daemons' poll reads the revoked ones that have not expired.
CREATE INDEX workstation_cert_revoked ON workstation_cert (not_after) WHERE revoked_at IS NOT NULL;
