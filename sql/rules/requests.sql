-- Request keys: a keyed change (checkout, checkin, hold place, ...) is done
-- once per key; a retry with the same key gets the stored answer
-- (request_claim and request_store, or request_begin with a barcode and
-- request_finish), and request_log rows expire. Every keyed
-- rule (circulation, holds, transits, notices) starts with request_begin.
-- request_log_expire is called by holds_daily (notices.sql).

-- A stored answer for p_key, if any: NULL when the key was never used (or its
-- change did not store one). A key used by another staff member or for
-- another kind of change is refused.
CREATE OR REPLACE FUNCTION request_stored(p_key uuid, p_staff bigint, p_kind text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v request_log;
BEGIN
    SELECT * INTO v FROM request_log WHERE key = p_key;
    IF FOUND AND (v.kind <> p_kind OR v.staff_id <> p_staff) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR409', DETAIL = 'request_key_reused',
            MESSAGE = 'This request key was already used for a different request.';
    END IF;
    RETURN v.result;
END
$$;

-- NULL when p_key is new (it is now claimed), else the stored answer.
CREATE OR REPLACE FUNCTION request_claim(p_key uuid, p_staff bigint, p_kind text) RETURNS jsonb
LANGUAGE plpgsql AS $$
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
    RETURN request_stored(p_key, p_staff, p_kind);
END
$$;

-- The start of every keyed change. A key used before gives its stored answer
-- in `stored`: the caller returns it and changes nothing. Use:
--     SELECT * INTO v_key FROM request_begin(p_key, p_staff, 'checkout', p_barcode);
--     IF v_key.stored IS NOT NULL THEN <return the stored answer>; END IF;
--     v_item := v_key.item_row;
-- Without p_barcode the key is claimed now (request_claim: a row written at
-- once, which a retry running at the same time waits for) and the answer is
-- stored at the end with request_store.
-- With p_barcode (a change of one copy) the copy is locked first and returned
-- in `item_row` (an unknown barcode is refused: item_not_found); the copy is
-- the first lock of every change of a copy (lock order: item, loan,
-- patron_circ, bib, hold). The lock orders the retries of one request, so the
-- key is only looked up here and written once, with its answer, at the end:
-- request_finish. (Written at the start and again at the end, the key cost a
-- checkout+checkin pair about a twelfth of PostgreSQL's CPU, issue 15.)
CREATE OR REPLACE FUNCTION request_begin(p_key uuid, p_staff bigint, p_kind text,
                                         p_barcode text DEFAULT NULL,
                                         OUT stored jsonb, OUT item_row item)
LANGUAGE plpgsql AS $$
DECLARE
    v_found boolean;
BEGIN
    IF p_barcode IS NULL THEN
        stored := request_claim(p_key, p_staff, p_kind);
        RETURN;
    END IF;
    IF p_key IS NULL THEN
        PERFORM request_claim(NULL, p_staff, p_kind); -- refuses a missing key
    END IF;
    -- FOR NO KEY UPDATE, the lock an UPDATE of the row takes itself: it orders
    -- every change of the copy, and leaves the foreign-key checks of rows that
    -- refer to the copy (a hold targeting it, say) free to go on meanwhile.
    SELECT * INTO item_row FROM item i WHERE i.barcode = p_barcode FOR NO KEY UPDATE;
    v_found := FOUND;
    stored := request_stored(p_key, p_staff, p_kind);
    IF stored IS NULL AND NOT v_found THEN
        RAISE EXCEPTION USING ERRCODE = 'CR404', DETAIL = 'item_not_found',
            MESSAGE = format('No item has barcode %s.', p_barcode);
    END IF;
END
$$;

-- The end of a change begun with a barcode (request_begin): its key and
-- answer, written once. Two requests with one key and different copies can
-- both get here (nothing ordered them); the second is told to run again
-- (40001, which carreld retries), and then gets the first one's answer.
-- Returns true, so that a hot path can call it as an expression
-- (`v_done := request_finish(...)`): a PERFORM is a statement of its own, with
-- an executor, where an assignment of a simple expression has none.
DROP FUNCTION IF EXISTS request_finish(uuid, bigint, text, jsonb);
CREATE OR REPLACE FUNCTION request_finish(p_key uuid, p_staff bigint, p_kind text,
                                          p_result jsonb) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO request_log (key, staff_id, kind, result)
    VALUES (p_key, p_staff, p_kind, p_result)
    ON CONFLICT (key) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = '40001',
            MESSAGE = 'Another request with this key finished first; run it again.';
    END IF;
    RETURN true;
END
$$;

-- PL/pgSQL for its kept plan (see library_setting_text, settings.sql).
-- The answer of a change whose key request_begin claimed (no barcode).
CREATE OR REPLACE FUNCTION request_store(p_key uuid, p_result jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE request_log SET result = p_result WHERE key = p_key;
    IF NOT FOUND THEN
        -- A change begun with a barcode stores its answer with request_finish.
        RAISE EXCEPTION 'request_store: key % was not claimed', p_key;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION request_log_expire() RETURNS integer
LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM request_log WHERE created_at < now() - interval '2 days'
                  RETURNING 1)
    SELECT count(*)::integer FROM gone
$$;
