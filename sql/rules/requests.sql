-- Request keys: a keyed change (checkout, checkin, hold place, ...) is done
-- once per key; a retry with the same key gets the stored answer
-- (request_claim, request_store), and request_log rows expire. Every keyed
-- rule (circulation, holds, transits, notices) starts with request_begin.
-- request_log_expire is called by holds_daily (notices.sql).

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

-- The start of every keyed change, written once. Claims p_key for this staff
-- member and kind of change (request_claim). A key used before gives its
-- stored answer in `stored`: the caller returns it and changes nothing.
-- Otherwise, when p_barcode is given, the item is locked and returned in
-- `item_row` (an unknown barcode is refused: item_not_found); the item is the
-- first lock of every change of a copy (lock order: item, loan, patron_circ,
-- bib, hold). Use:
--     SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'checkout', p_barcode);
--     IF v_key.stored IS NOT NULL THEN <return the stored answer>; END IF;
--     v_item := v_key.item_row;
CREATE OR REPLACE FUNCTION request_begin(p_key uuid, p_staff bigint, p_kind text,
                                         p_barcode text DEFAULT NULL,
                                         OUT stored jsonb, OUT item_row item)
LANGUAGE plpgsql AS $$
BEGIN
    stored := request_claim(p_key, p_staff, p_kind);
    IF stored IS NOT NULL OR p_barcode IS NULL THEN
        RETURN;
    END IF;
    SELECT * INTO item_row FROM item i WHERE i.barcode = p_barcode FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'item_not_found',
            MESSAGE = format('No item has barcode %s.', p_barcode);
    END IF;
END
$$;

-- PL/pgSQL for its kept plan (see library_setting_text, settings.sql).
CREATE OR REPLACE FUNCTION request_store(p_key uuid, p_result jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE request_log SET result = p_result WHERE key = p_key;
END
$$;

CREATE OR REPLACE FUNCTION request_log_expire() RETURNS integer
LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM request_log WHERE created_at < now() - interval '2 days'
                  RETURNING 1)
    SELECT count(*)::integer FROM gone
$$;
