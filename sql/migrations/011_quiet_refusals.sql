-- 011: let carreld keep its refusals out of the PostgreSQL server log.
--
-- Our functions refuse by raising SQLSTATE CR4xx (see 001's error
-- convention). PostgreSQL logs every raised error with its statement, so each
-- ordinary refusal at a desk ("the item is on loan") became an ERROR in the
-- server log. carreld's pool sessions set log_min_messages = log, and log the
-- unexpected errors (not CR4xx) themselves (docs/ARCHITECTURE.md, "db.c").
--
-- Setting log_min_messages needs a privilege only a superuser can grant
-- (PostgreSQL 15: GRANT SET ON PARAMETER). scripts/pg-cluster grants it to
-- role carrel; a deployment whose DBA runs the migrations as a superuser gets
-- it here, for the database's owner (the role carreld connects as). When the
-- migrations run as the owner itself, nothing can be done here: carreld warns
-- at start and PostgreSQL keeps logging refusals until a superuser runs
--   GRANT SET ON PARAMETER log_min_messages TO carrel;
DO $$
DECLARE
    owner name;
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        SELECT r.rolname INTO owner
          FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
         WHERE d.datname = current_database();
        IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = owner) THEN
            EXECUTE format('GRANT SET ON PARAMETER log_min_messages TO %I', owner);
        END IF;
    END IF;
END
$$;
