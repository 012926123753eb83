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
