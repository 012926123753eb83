-- Request keys: a keyed change (checkout, checkin, hold place, ...) is done
-- once per key; a retry with the same key gets the stored answer
-- (request_claim, request_store), and request_log rows expire. Called by the
-- keyed rules of circulation, holds, transits and notices.

-- NULL when p_key is new (it is now claimed), else the stored answer.
CREATE OR REPLACE FUNCTION request_claim(p_key uuid, p_staff bigint, p_kind text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v request_log;
BEGIN
    IF p_key IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = 'request_key',
            MESSAGE = 'This request changes data and needs a request key (a UUID).';
    END IF;
    INSERT INTO request_log (key, staff_id, kind) VALUES (p_key, p_staff, p_kind)
    ON CONFLICT (key) DO NOTHING;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v FROM request_log WHERE key = p_key;
    IF v.kind <> p_kind OR v.staff_id <> p_staff THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'request_key_reused',
            MESSAGE = 'This request key was already used for a different request.';
    END IF;
    RETURN v.result;
END
$$;

CREATE OR REPLACE FUNCTION request_store(p_key uuid, p_result jsonb) RETURNS void
LANGUAGE sql AS $$ UPDATE request_log SET result = p_result WHERE key = p_key $$;

CREATE OR REPLACE FUNCTION request_log_expire() RETURNS integer
LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM request_log WHERE created_at < now() - interval '2 days'
                  RETURNING 1)
    SELECT count(*)::integer FROM gone
$$;
