-- 003: barcode rules for item and patron (library card) barcodes.
--
-- One rule per kind: a regular expression the whole barcode must match and a
-- check-digit scheme. The defaults are the common US public-library layout:
-- 14-digit Codabar, items starting with 3 and cards with 2, the last digit a
-- mod-10 (Luhn) check digit. A library with another scheme updates the rows:
--   UPDATE barcode_rule SET pattern = '^[0-9]{8}$', check_digit = 'none'
--    WHERE kind = 'item';
-- Rules apply when staff create or change a barcode. MARC imports keep the
-- barcodes already on the books (legacy labels), checking only that they are
-- 1-32 printable characters and unique.

CREATE TABLE barcode_rule (
    kind text PRIMARY KEY CHECK (kind IN ('item', 'patron')),
    pattern text NOT NULL,
    check_digit text NOT NULL CHECK (check_digit IN ('none', 'mod10')),
    description text NOT NULL
);

INSERT INTO barcode_rule (kind, pattern, check_digit, description) VALUES
    ('item', '^3[0-9]{13}$', 'mod10',
     '14 digits starting with 3, the last a mod-10 check digit'),
    ('patron', '^2[0-9]{13}$', 'mod10',
     '14 digits starting with 2, the last a mod-10 check digit');

-- Luhn: double every second digit from the right (excluding the check digit's
-- own position), sum all digits, valid when the total is a multiple of 10.
CREATE FUNCTION barcode_mod10_ok(p_code text) RETURNS boolean
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
CREATE FUNCTION barcode_mod10_digit(p_stem text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT d::text FROM generate_series(0, 9) d
    WHERE barcode_mod10_ok(p_stem || d::text) LIMIT 1
$$;

-- Raise a field error unless p_code satisfies the rule for p_kind.
CREATE FUNCTION barcode_check(p_kind text, p_code text) RETURNS void
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
