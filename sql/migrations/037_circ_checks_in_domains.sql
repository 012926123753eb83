-- 037: the single-column checks of the tables every checkout and checkin
-- writes become domains (issue 15).
--
-- PostgreSQL reads a table's CHECK constraints back from their stored text
-- (stringToNode) and prepares them again for every statement that writes
-- the table, and a PL/pgSQL function's INSERT or UPDATE is a new statement
-- each time. A checkout+checkin pair writes item, loan, patron_circ,
-- patron_type_loans and circ_event thirteen times, and so read back 32 such
-- texts (circ_event's two lists of names the longest) and checked every
-- column again, changed or not. A domain's constraints are prepared once a
-- session (the type cache) and checked only when a value is stored into the
-- column. Measured with callgrind on one backend, 200 pairs: 5.77 million
-- instructions a pair before, 5.23 after (-9%). The rules are the same, still
-- in PostgreSQL, and break with the same SQLSTATE (23514, check_violation).
--
-- Left as table constraints: the checks that read several columns (loan's
-- three), item.call_number's length (the generated column shelf_key is built
-- on it), and item.barcode and item.location, which many functions return
-- as text with RETURN QUERY: PL/pgSQL refuses a domain where its result
-- declares the base type, and the two cost 3% of the pair.
--
-- A PL/pgSQL RETURN QUERY that returns one of these columns as it is must
-- cast it to the base type its result declares (none does today).

CREATE DOMAIN nonneg_count AS integer CHECK (VALUE >= 0);
CREATE DOMAIN price_cents AS bigint CHECK (VALUE BETWEEN 0 AND 100000000);
CREATE DOMAIN loan_outcome AS text
    CHECK (VALUE IN ('returned', 'lost', 'claimed_returned', 'returned_by_override'));
CREATE DOMAIN circ_action AS text
    CHECK (VALUE IN ('checkout', 'checkin', 'renew', 'lost', 'claims_returned', 'damaged',
                     'missing', 'found', 'in_house_use', 'override', 'status_fixed'));
CREATE DOMAIN circ_via AS text CHECK (VALUE IN ('desk', 'selfcheck', 'auto'));

ALTER TABLE item
    DROP CONSTRAINT item_price_cents_check,
    DROP CONSTRAINT item_circ_count_check,
    DROP CONSTRAINT item_in_house_uses_check,
    ALTER COLUMN price_cents TYPE price_cents,
    ALTER COLUMN circ_count TYPE nonneg_count,
    ALTER COLUMN in_house_uses TYPE nonneg_count;

ALTER TABLE loan
    DROP CONSTRAINT loan_renewals_check,
    DROP CONSTRAINT loan_outcome_check,
    ALTER COLUMN renewals TYPE nonneg_count,
    ALTER COLUMN outcome TYPE loan_outcome;

ALTER TABLE patron_circ
    DROP CONSTRAINT patron_circ_loans_out_check,
    DROP CONSTRAINT patron_circ_room_no_shows_check,
    ALTER COLUMN loans_out TYPE nonneg_count,
    ALTER COLUMN room_no_shows TYPE nonneg_count;

ALTER TABLE patron_type_loans
    DROP CONSTRAINT patron_type_loans_loans_out_check,
    ALTER COLUMN loans_out TYPE nonneg_count;

ALTER TABLE circ_event
    DROP CONSTRAINT circ_event_action_check,
    DROP CONSTRAINT circ_event_via_check,
    ALTER COLUMN action TYPE circ_action,
    ALTER COLUMN via TYPE circ_via;
