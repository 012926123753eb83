-- Demo patrons: 300 generated customers spread over the seven branches and
-- the categories, with plausible names, addresses, some emails and phones, a
-- few expired cards, a few blocks, desk alerts and notes. Deterministic
-- (setseed) for a given day: dates are relative to today.
--
-- Cards: 2 + institution 1234 + 8-digit sequence + mod-10 check digit, e.g.
-- 21234000000018. Every patron gets a 'create' audit row (no staff: loaded by
-- the demo script).
--
-- Idempotent: does nothing if demo patrons (cards 21234...) already exist.
-- Run after the migrations and sql/seed/branches.sql:
--   scripts/pg-cluster psql DATADIR PORT SOCKDIR -d carrel -f sql/seed/demo_patrons.sql

DO $$
DECLARE
    firsts text[] := ARRAY['James', 'Maria', 'Robert', 'Patricia', 'Michael', 'Jennifer',
        'William', 'Linda', 'David', 'Elizabeth', 'José', 'Ana', 'Luis', 'Carmen', 'Kwame',
        'Aaliyah', 'Darnell', 'Keisha', 'Nguyen', 'Mei', 'Chloé', 'Zoë', 'Andrés', 'Sofía',
        'Malik', 'Imani', 'Thomas', 'Margaret', 'Anthony', 'Dorothy', 'Marcus', 'Renée',
        'Jamal', 'Yesenia', 'Piotr', 'Agnieszka', 'Samuel', 'Grace', 'Omar', 'Fatima'];
    lasts text[] := ARRAY['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'García',
        'Rodríguez', 'Martínez', 'Hernández', 'López', 'González', 'Pérez', 'Rivera', 'Torres',
        'Davis', 'Miller', 'Wilson', 'Moore', 'Taylor', 'Anderson', 'Jackson', 'White',
        'Harris', 'Martin', 'Thompson', 'Robinson', 'Clark', 'Lewis', 'Walker', 'Young',
        'Nowak', 'Kowalski', 'Tran', 'Nguyen', 'Chen', 'Okafor', 'Mensah', 'Díaz', 'Ortiz',
        'O''Brien'];
    nicknames text[] := ARRAY['Jim', 'Bill', 'Liz', 'Tony', 'Dot', 'Sam', 'Peg', 'Manny'];
    streets text[] := ARRAY['Main Street', 'Albany Avenue', 'Park Street', 'Farmington Avenue',
        'Wethersfield Avenue', 'Franklin Avenue', 'Blue Hills Avenue', 'Capitol Avenue',
        'Zion Street', 'Broad Street', 'Washington Street', 'Barbour Street'];
    zips text[] := ARRAY['06103', '06105', '06106', '06112', '06114', '06120'];
    reasons text[] := ARRAY['Unpaid replacement charge for lost items',
        'Returned check; pay by cash or card',
        'Incident at the branch: see the branch manager before lending',
        'Mail returned as undeliverable; confirm the address'];
    alerts text[] := ARRAY['Please confirm the address: mail came back',
        'Prefers large print; ask about the large-print shelf',
        'A guardian signs for this card',
        'Has items on hold at another branch'];
    notes text[] := ARRAY['Homebound delivery on Tuesdays.',
        'Asked not to be called before 10 am.',
        'Volunteers at the literacy program.',
        'Replacement card issued after a theft report.'];
    cats text[] := ARRAY['staff', 'homebound', 'nonresident', 'institutional'];
    branches integer[];
    v_id bigint;
    v_card text;
    v_first text;
    v_last text;
    v_birth date;
    v_age integer;
    v_cat text;
    v_email text;
    v_phone text;
    v_channel text;
    v_years integer;
    v_expires date;
    v_created timestamptz;
    v_zip integer;
    p patron;
BEGIN
    IF EXISTS (SELECT 1 FROM patron WHERE card LIKE '21234%') THEN
        RAISE NOTICE 'demo patrons are already loaded';
        RETURN;
    END IF;
    SELECT array_agg(id ORDER BY code) INTO branches FROM branch;
    IF branches IS NULL THEN
        RAISE EXCEPTION 'no branches: load sql/seed/branches.sql first';
    END IF;
    PERFORM setseed(0.2024);

    FOR i IN 1..300 LOOP
        v_card := '21234' || lpad(i::text, 8, '0');
        v_card := v_card || barcode_mod10_digit(v_card);
        v_first := firsts[1 + floor(random() * cardinality(firsts))::int];
        v_last := lasts[1 + floor(random() * cardinality(lasts))::int];
        v_birth := CASE WHEN random() < 0.85
                        THEN DATE '1935-01-01' + floor(random() * 31000)::int END;
        v_age := extract(year FROM age(current_date, coalesce(v_birth, DATE '1980-01-01')));
        v_cat := CASE WHEN random() < 0.12 THEN cats[1 + floor(random() * 4)::int]
                      WHEN v_age < 18 THEN 'juvenile'
                      WHEN v_age >= 65 THEN 'senior'
                      ELSE 'adult' END;
        v_email := CASE WHEN random() < 0.6
                        THEN replace(patron_fold(v_first || '.' || v_last), '''', '')
                             || i || '@example.org' END;
        v_phone := CASE WHEN random() < 0.7
                        THEN format(CASE floor(random() * 3)::int
                                        WHEN 0 THEN '(%s) 555-01%s'
                                        WHEN 1 THEN '%s-555-01%s'
                                        ELSE '%s.555.01%s' END,
                                    (ARRAY['860', '959', '203'])[1 + i % 3],
                                    lpad(((i / 3) % 100)::text, 2, '0')) END;
        v_channel := CASE WHEN v_email IS NOT NULL AND random() < 0.75 THEN 'email'
                          WHEN v_phone IS NOT NULL THEN
                              (ARRAY['sms', 'phone'])[1 + floor(random() * 2)::int]
                          WHEN v_email IS NOT NULL THEN 'email'
                          ELSE 'none' END;
        SELECT card_years INTO v_years FROM patron_category WHERE code = v_cat;
        v_created := now() - make_interval(days => floor(random() * 1800)::int);
        v_expires := CASE WHEN random() < 0.06
                          THEN current_date - (1 + floor(random() * 400)::int)
                          ELSE current_date + (30 + floor(random() * 365 * v_years)::int) END;
        v_zip := 1 + floor(random() * cardinality(zips))::int;

        INSERT INTO patron (card, first_name, last_name, preferred_name, birth_date,
                            address_line1, address_line2, city, region, postal_code, phone,
                            email, contact_channel, home_branch_id, category, expires_on,
                            staff_notes, desk_alert, keep_history, created_at, updated_at)
        VALUES (v_card, v_first, v_last,
                CASE WHEN random() < 0.05 THEN nicknames[1 + floor(random() * 8)::int] END,
                v_birth,
                (10 + floor(random() * 1900)::int) || ' '
                    || streets[1 + floor(random() * cardinality(streets))::int],
                CASE WHEN random() < 0.15 THEN 'Apt ' || (1 + floor(random() * 30)::int) END,
                'Hartford', 'CT', zips[v_zip], v_phone, v_email, v_channel,
                branches[1 + (i + floor(random() * 3)::int) % cardinality(branches)],
                v_cat, v_expires,
                CASE WHEN random() < 0.05 THEN notes[1 + floor(random() * 4)::int] END,
                CASE WHEN random() < 0.03 THEN alerts[1 + floor(random() * 4)::int] END,
                random() < 0.25, v_created, v_created)
        RETURNING * INTO p;
        v_id := p.id;
        INSERT INTO audit_event (at, entity, entity_id, action, changes)
        VALUES (v_created, 'patron', v_id, 'create',
                audit_diff(NULL, jsonb_strip_nulls(patron_doc(p))));

        IF random() < 0.04 THEN
            INSERT INTO patron_block (patron_id, reason, placed_at)
            VALUES (v_id, reasons[1 + floor(random() * 4)::int],
                    least(now(), v_created + interval '1 day'));
            INSERT INTO audit_event (at, entity, entity_id, action, changes)
            SELECT k.placed_at, 'patron', v_id, 'block',
                   jsonb_build_object('block', jsonb_build_object('before', NULL,
                                                                  'after', k.reason))
            FROM patron_block k WHERE k.patron_id = v_id;
        END IF;
    END LOOP;
END
$$;
