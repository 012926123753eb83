-- Barcode rules: the shape and the mod-10 check digit of item and patron
-- barcodes (barcode_rule rows). Called by the catalog and patron rules.

-- Luhn: double every second digit from the right (excluding the check digit's
-- own position), sum all digits, valid when the total is a multiple of 10.
CREATE OR REPLACE FUNCTION barcode_mod10_ok(p_code text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT p_code ~ '^[0-9]+$' AND
           sum(CASE WHEN (length(p_code) - i) % 2 = 1
                    THEN (CASE WHEN d * 2 > 9 THEN d * 2 - 9 ELSE d * 2 END)
                    ELSE d END) % 10 = 0
    FROM (SELECT i, substr(p_code, i, 1)::int AS d
          FROM generate_series(1, length(p_code)) i
          WHERE p_code ~ '^[0-9]+$') digits
$$;

-- The check digit that completes p_stem (all digits) under mod 10.
CREATE OR REPLACE FUNCTION barcode_mod10_digit(p_stem text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT d::text FROM generate_series(0, 9) d
    WHERE barcode_mod10_ok(p_stem || d::text) LIMIT 1
$$;

-- Raise a field error unless p_code satisfies the rule for p_kind.
CREATE OR REPLACE FUNCTION barcode_check(p_kind text, p_code text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r barcode_rule;
    v_field text := CASE p_kind WHEN 'patron' THEN 'field:card' ELSE 'field:barcode' END;
    v_what text := CASE p_kind WHEN 'patron' THEN 'library card number' ELSE 'item barcode' END;
BEGIN
    SELECT * INTO r FROM barcode_rule WHERE kind = p_kind;
    IF p_code IS NULL OR p_code = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = v_field,
            MESSAGE = format('An %s is required.', v_what);
    END IF;
    IF r.kind IS NOT NULL AND p_code !~ r.pattern THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = v_field,
            MESSAGE = format('%s is not a valid %s (%s).', p_code, v_what, r.description);
    END IF;
    IF r.check_digit = 'mod10' AND NOT barcode_mod10_ok(p_code) THEN
        RAISE EXCEPTION USING ERRCODE = 'CR400', DETAIL = v_field,
            MESSAGE = format('%s has a wrong check digit: mistyped or misread?', p_code);
    END IF;
END
$$;
