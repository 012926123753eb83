#!/usr/bin/env python3
"""What self-check machines read and change through SIP2, in SQL (sql/rules/sip.sql):
sip_patron (the 14 status flags, counts, the sentence), sip_patron_items (the lists of
message 63 and their ranges), sip_item (circulation status codes), sip_renew_all (each loan
through circ_renew, a resent message applied once), the PIN count and lock
(sip_pin_record), patron_pin_set and its audit row, and the hold-capture probe of logins
with held_checkin_blocked (sip_checkin_held), and message 01's block (sip_block_patron).

As test_displays_sql.py: one transaction per test on a harness session, rolled back. The
last class sets PINs through the real client and daemon (PatronPinSet), which commit.
"""

import json
import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

env = None
db = None      # the session every test's transaction runs on
main = None    # the daemon of the client tests
ids = {}       # branch code -> id; "staff", "workstation": the administrator's

lit = harness.sql_literal

# A well-formed Argon2id hash (of nothing in particular): the SQL only stores it.
FAKE_HASH = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g"
CLEAN = " " * 14


def setUpModule():
    global env, db, main
    env, db = harness.start_rule_session(SipSqlTest, ids)
    try:
        main = env.daemon()
        env.add_staff(env.profile(main), "pin-clerk", "clerk", "DWN", "clerk-password-123")
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    # The client tests commit PINs and audit rows; the SQL tests' loans must all be gone.
    harness.stop_rule_session(env, db, "SELECT (SELECT count(*) FROM loan)"
                                       " + (SELECT count(*) FROM hold)")


def key():
    return str(uuid.uuid4())


def flags(status, *positions):
    """The 14 flags with Y at positions."""
    return "".join("Y" if i in positions else " " for i in range(14)) == status


class SipSqlTest(harness.TransactionTest):

    # ---- rows made in the transaction

    def bib(self, title=None):
        return env.new_bib(title, session=db)

    def copy(self, bib=None, branch="DWN", **kw):
        return env.new_item(bib if bib is not None else self.bib(), branch=branch, session=db,
                            **kw)

    def patron(self, **kw):
        return env.new_patron("adult", "DWN", session=db, **kw)

    def patron_id(self, card):
        return int(self.q("SELECT id FROM patron WHERE card = %s" % lit(card)))

    def checkout(self, card, barcode, branch="DWN"):
        return self.one("SELECT * FROM circ_checkout(gen_random_uuid(), %d, %d, %d, %s, %s,"
                        " false, NULL, false)" % (ids["staff"], ids["workstation"], ids[branch],
                                                  lit(card), lit(barcode)))

    def checkin(self, barcode, branch="DWN"):
        return self.one("SELECT * FROM circ_checkin(gen_random_uuid(), %d, %d, %d, %s, NULL)"
                        % (ids["staff"], ids["workstation"], ids[branch], lit(barcode)))

    def place(self, card, bib, pickup="DWN", suspend=None):
        return self.one("SELECT * FROM hold_place(gen_random_uuid(), %d, %d, %s, %d, NULL, %s,"
                        " NULL, %s)" % (ids["staff"], ids["DWN"], lit(card), bib, lit(pickup),
                                        lit(suspend)))

    def waiting_bib(self, title=None):
        """A bib whose one copy is out with someone else: a hold on it waits."""
        bib = self.bib(title)
        self.checkout(self.patron(), self.copy(bib))
        return bib

    def charge(self, card, cents, note="overdue"):
        self.q("SELECT circ_ledger_add(%d, 'fine', %d, NULL, NULL, %d, %s)"
               % (self.patron_id(card), cents, ids["staff"], lit(note)))

    # ---- the functions, as carreld calls them

    def sip_patron(self, card, branch="DWN"):
        rows = self.rows("SELECT * FROM sip_patron(%s, %d)" % (lit(card), ids[branch]))
        return rows[0] if rows else None

    def items(self, card, kind, start, end):
        return [r["value"] for r in self.rows("SELECT * FROM sip_patron_items(%s, %s, %d, %d)"
                                              % (lit(card), lit(kind), start, end))]

    def sip_item(self, barcode, branch="DWN"):
        rows = self.rows("SELECT * FROM sip_item(%s, %d)" % (lit(barcode), ids[branch]))
        return rows[0] if rows else None

    def renew_all(self, card, k):
        return self.rows("SELECT * FROM sip_renew_all(%s, %d, %d, %d, %s)"
                         % (lit(k), ids["staff"], ids["workstation"], ids["DWN"], lit(card)))

    def set_pin(self, card, pin_hash=FAKE_HASH):
        return self.one("SELECT * FROM patron_pin_set(%d, %d, %s, %s)"
                        % (ids["staff"], ids["workstation"], lit(card), lit(pin_hash)))

    def pin_record(self, card, ok):
        return self.q("SELECT sip_pin_record(%d, %s)" % (self.patron_id(card), lit(ok)))

    def pin(self, card):
        return self.one("SELECT * FROM sip_patron_pin(%s)" % lit(card))

    def held(self, barcode, branch="DWN"):
        return self.q("SELECT sip_checkin_held(%s, %d)" % (lit(barcode), ids[branch])) == "t"


class PatronStatus(SipSqlTest):
    def test_a_clean_patron(self):
        card = self.patron(email="reader@example.org", phone="860-555-0100",
                           address_line1="1 Main St", city="Hartford", region="CT",
                           postal_code="06103")
        p = self.sip_patron(card)
        self.assertEqual(p["status"], CLEAN)
        self.assertIsNone(p["message"])
        self.assertEqual((p["expired"], p["blocked"], p["owes"]), (False, False, False))
        self.assertEqual([p[k] for k in ("hold_items", "overdue_items", "charged_items",
                                         "fine_items", "recall_items", "unavailable_holds")],
                         [0] * 6)
        self.assertEqual((p["balance_cents"], p["fee_limit_cents"], p["charged_limit"]),
                         (0, 1000, 50))
        self.assertEqual(p["hold_limit"], 25)
        self.assertTrue(p["name"].startswith("Test Patron"))
        self.assertEqual(p["address"], "1 Main St, Hartford, CT 06103")
        self.assertEqual((p["email"], p["phone"]), ("reader@example.org", "860-555-0100"))
        self.assertEqual((p["pin_hash"], p["pin_locked"], p["pin_failures"]), (None, False, None))

    def test_an_unknown_card_has_no_row(self):
        self.assertIsNone(self.sip_patron("29999999999999"))

    def test_a_blocked_patron(self):
        card = self.patron()
        self.q("INSERT INTO patron_block (patron_id, reason, placed_by) VALUES (%d, 'damage', %d)"
               % (self.patron_id(card), ids["staff"]))
        p = self.sip_patron(card)
        self.assertTrue(flags(p["status"], 0, 1, 2, 3), repr(p["status"]))
        self.assertTrue(p["blocked"])
        self.assertEqual(p["message"], "Please see the desk about your card.")

    def test_an_expired_patron(self):
        card = self.patron()
        self.q("UPDATE patron SET expires_on = library_today() - 1 WHERE card = %s" % lit(card))
        p = self.sip_patron(card)
        self.assertTrue(flags(p["status"], 0, 1, 2, 3), repr(p["status"]))
        self.assertTrue(p["expired"])
        self.assertIn("Your card expired on", p["message"])

    def test_a_patron_who_owes(self):
        card = self.patron()
        self.charge(card, 1500)
        p = self.sip_patron(card)
        self.assertTrue(flags(p["status"], 0, 1, 10, 11), repr(p["status"]))
        self.assertEqual((p["owes"], p["balance_cents"], p["fine_items"]), (True, 1500, 1))
        self.assertEqual(p["message"], "You owe $15.00; please see the desk or pay here.")

    def test_owing_less_than_the_threshold_is_clean(self):
        card = self.patron()
        self.charge(card, 250)
        p = self.sip_patron(card)
        self.assertEqual((p["status"], p["owes"], p["fine_items"]), (CLEAN, False, 1))

    def test_at_the_loan_limit(self):
        card = self.patron()
        self.q("INSERT INTO circ_policy (patron_category, branch_id, max_loans)"
               " VALUES ('adult', %d, 1)" % ids["DWN"])
        self.checkout(card, self.copy())
        p = self.sip_patron(card)
        self.assertTrue(flags(p["status"], 0, 5), repr(p["status"]))
        self.assertEqual(p["charged_limit"], 1)
        self.assertEqual(p["message"], "You have 1 items out, the most allowed.")
        # Another branch's rule: the kiosk's branch decides.
        self.assertEqual(self.sip_patron(card, "ALB")["status"], CLEAN)

    def test_counts(self):
        card = self.patron()
        loans = [self.copy() for _ in range(3)]
        for b in loans:
            self.checkout(card, b)
        self.q("UPDATE loan SET due_at = now() - interval '2 days' WHERE item_id ="
               " (SELECT id FROM item WHERE barcode = %s)" % lit(loans[1]))
        ready_bib = self.bib()
        ready_copy = self.copy(ready_bib)
        self.place(card, ready_bib)
        self.checkin(ready_copy)  # captured here: ready
        self.place(card, self.waiting_bib("Still waiting"))
        self.charge(card, 300)
        p = self.sip_patron(card)
        self.assertEqual([p[k] for k in ("hold_items", "overdue_items", "charged_items",
                                         "fine_items", "recall_items", "unavailable_holds")],
                         [1, 1, 3, 1, 0, 1])


class PatronItems(SipSqlTest):
    def test_charged_and_overdue_in_ranges(self):
        card = self.patron()
        loans = [self.copy() for _ in range(3)]
        for b in loans:
            self.checkout(card, b)
        for days, b in zip((3, 2, 1), loans):  # due soonest first: loans in this order
            self.q("UPDATE loan SET due_at = now() + interval '%d days' WHERE item_id ="
                   " (SELECT id FROM item WHERE barcode = %s)" % (days, lit(b)))
        order = [loans[2], loans[1], loans[0]]
        self.assertEqual(self.items(card, "charged", 1, 50), order)
        self.assertEqual(self.items(card, "charged", 1, 2), order[:2])
        self.assertEqual(self.items(card, "charged", 2, 3), order[1:])
        self.assertEqual(self.items(card, "charged", 3, 10), order[2:])
        self.assertEqual(self.items(card, "charged", 4, 5), [])
        self.assertEqual(self.items(card, "charged", 2, 1), [])
        self.assertEqual(self.items(card, "overdue", 1, 50), [])
        self.q("UPDATE loan SET due_at = now() - interval '1 day' WHERE item_id ="
               " (SELECT id FROM item WHERE barcode = %s)" % lit(loans[0]))
        self.assertEqual(self.items(card, "overdue", 1, 50), [loans[0]])
        self.assertEqual(self.items(card, "recall", 1, 50), [])

    def test_holds_ready_and_unavailable(self):
        card = self.patron()
        ready_bib = self.bib()
        ready_copy = self.copy(ready_bib)
        self.place(card, ready_bib)
        self.checkin(ready_copy)
        self.place(card, self.waiting_bib("A title nobody returned"))
        self.assertEqual(self.items(card, "hold", 1, 50), [ready_copy])
        self.assertEqual(self.items(card, "unavailable", 1, 50), ["A title nobody returned"])

    def test_fines_still_owed(self):
        card = self.patron()
        barcode = self.copy()
        self.q("SELECT circ_ledger_add(%d, 'fine', 200, i.id, NULL, %d, '4 days late')"
               " FROM item i WHERE i.barcode = %s" % (self.patron_id(card), ids["staff"],
                                                      lit(barcode)))
        self.charge(card, 500, "damaged cover")
        self.assertEqual(self.items(card, "fine", 1, 50),
                         ["5.00 fine damaged cover", "2.00 %s 4 days late" % barcode])
        # A payment pays the oldest charge first: what is owed is the newest.
        self.q("SELECT circ_ledger_add(%d, 'payment', -300, NULL, NULL, %d, '')"
               % (self.patron_id(card), ids["staff"]))
        self.assertEqual(self.items(card, "fine", 1, 50), ["4.00 fine damaged cover"])

    def test_an_unknown_card_or_list(self):
        self.assertEqual(self.items("29999999999999", "charged", 1, 50), [])
        self.refused("SELECT * FROM sip_patron_items(%s, 'loans', 1, 5)" % lit(self.patron()),
                     "CR400", "field:kind")


class ItemStatus(SipSqlTest):
    def status(self, barcode):
        return self.sip_item(barcode)["circulation_status"]

    def test_codes(self):
        available = self.copy(item_type="dvd")
        r = self.sip_item(available)
        self.assertEqual((r["circulation_status"], r["owner"], r["current"], r["media_type"]),
                         ("03", "DWN", "DWN", "006"))
        self.assertIsNone(r["due"])
        for status, code in (("lost", "12"), ("missing", "13"), ("claimed_returned", "11"),
                             ("in_processing", "06"), ("damaged", "01"), ("withdrawn", "01")):
            self.assertEqual(self.status(self.copy(status=status)), code, status)
        self.assertIn("damaged", self.sip_item(self.copy(status="damaged"))["message"])
        self.assertIsNone(self.sip_item("39999999999999"))

    def test_on_loan_with_its_due_date(self):
        barcode = self.copy()
        self.checkout(self.patron(), barcode)
        r = self.sip_item(barcode)
        self.assertEqual(r["circulation_status"], "04")
        self.assertRegex(r["due"], r"^\d{8}    235959$")
        self.assertEqual(r["due"], self.q("SELECT sip_date(due_at) FROM loan l JOIN item i"
                                          " ON i.id = l.item_id WHERE i.barcode = %s"
                                          % lit(barcode)))

    def test_in_transit_and_on_the_hold_shelf(self):
        home = self.copy(branch="ALB")
        self.checkin(home)  # owned by NTH, returned at DWN: goes home
        r = self.sip_item(home)
        self.assertEqual((r["circulation_status"], r["destination"], r["owner"]),
                         ("10", "ALB", "ALB"))
        self.assertIn("on its way", r["message"])
        bib = self.bib()
        held = self.copy(bib)
        self.place(self.patron(), bib)
        self.place(self.patron(), bib)
        self.checkin(held)
        r = self.sip_item(held)
        self.assertEqual((r["circulation_status"], r["hold_queue"]), ("08", 1))


class RenewAll(SipSqlTest):
    def test_some_renewed_some_refused_and_a_resend_applies_nothing(self):
        card = self.patron()
        ok, limit, held = self.copy(), self.copy(), self.copy(self.bib())
        for b in (ok, limit, held):
            self.checkout(card, b)
        # Lent ten days ago, so renewing today moves the due date.
        self.q("UPDATE loan SET due_at = due_at - interval '10 days', checkout_at ="
               " checkout_at - interval '10 days' WHERE returned_at IS NULL AND patron_id = %d"
               % self.patron_id(card))
        self.q("UPDATE loan SET renewals = 2 WHERE item_id = (SELECT id FROM item"
               " WHERE barcode = %s)" % lit(limit))
        self.place(self.patron(), int(self.q("SELECT bib_id FROM item WHERE barcode = %s"
                                             % lit(held))))
        k = key()
        rows = {r["barcode"]: r for r in self.renew_all(card, k)}
        self.assertEqual({b: (r["renewed"], r["reason"]) for b, r in rows.items()},
                         {ok: (True, None), limit: (False, "renewal_limit"),
                          held: (False, "renewal_hold")})
        self.assertRegex(rows[ok]["due"], r"^\d{8}    235959$")
        renewals = self.q("SELECT string_agg(renewals::text, ',' ORDER BY id) FROM loan"
                          " WHERE returned_at IS NULL AND patron_id = %d" % self.patron_id(card))
        again = {r["barcode"]: r for r in self.renew_all(card, k)}
        self.assertEqual(again, rows)
        self.assertEqual(self.q("SELECT string_agg(renewals::text, ',' ORDER BY id) FROM loan"
                                " WHERE returned_at IS NULL AND patron_id = %d"
                                % self.patron_id(card)), renewals)
        self.assertEqual(self.q("SELECT count(*) FROM circ_event WHERE action = 'renew'"
                                " AND item_id = (SELECT id FROM item WHERE barcode = %s)"
                                % lit(ok)), "1")

    def test_a_blocked_patron_renews_nothing(self):
        card = self.patron()
        barcode = self.copy()
        self.checkout(card, barcode)
        self.q("INSERT INTO patron_block (patron_id, reason) VALUES (%d, 'see desk')"
               % self.patron_id(card))
        rows = self.renew_all(card, key())
        self.assertEqual([(r["barcode"], r["renewed"], r["reason"]) for r in rows],
                         [(barcode, False, "patron_blocked")])

    def test_nothing_out_and_an_unknown_card(self):
        self.assertEqual(self.renew_all(self.patron(), key()), [])
        self.refused("SELECT * FROM sip_renew_all(%s, %d, %d, %d, '29999999999999')"
                     % (lit(key()), ids["staff"], ids["workstation"], ids["DWN"]),
                     "CR404", "patron_not_found")


class Pins(SipSqlTest):
    def test_five_wrong_lock_and_a_right_one_resets(self):
        card = self.patron()
        self.set_pin(card)
        for _ in range(3):
            self.assertEqual(self.pin_record(card, False), "f")
        self.assertEqual(self.pin(card)["failures"], 3)
        self.assertEqual(self.pin_record(card, True), "f")
        self.assertEqual(self.pin(card)["failures"], 0)
        for _ in range(4):
            self.assertEqual(self.pin_record(card, False), "f")
        self.assertEqual(self.pin_record(card, False), "t")  # the fifth in a row
        p = self.pin(card)
        self.assertEqual((p["locked"], p["failures"], p["pin_hash"]), (True, 0, FAKE_HASH))
        self.assertTrue(self.sip_patron(card)["pin_locked"])
        # Fifteen minutes later it opens again, with five more tries.
        self.assertEqual(self.q("SELECT locked_until - now() BETWEEN interval '14 minutes'"
                                " AND interval '15 minutes' FROM patron_pin WHERE patron_id = %d"
                                % self.patron_id(card)), "t")
        self.q("UPDATE patron_pin SET locked_until = now() - interval '1 second'"
               " WHERE patron_id = %d" % self.patron_id(card))
        self.assertFalse(self.pin(card)["locked"])
        self.assertEqual(self.pin_record(card, False), "f")

    def test_a_new_pin_unlocks(self):
        card = self.patron()
        self.set_pin(card)
        for _ in range(5):
            self.pin_record(card, False)
        self.assertTrue(self.pin(card)["locked"])
        self.set_pin(card)
        self.assertEqual((self.pin(card)["locked"], self.pin(card)["failures"]), (False, 0))

    def test_no_pin(self):
        card = self.patron()
        p = self.pin(card)
        self.assertEqual((p["pin_hash"], p["locked"]), (None, False))
        self.assertEqual(self.rows("SELECT * FROM sip_patron_pin('29999999999999')"), [])

    def test_set_and_clear_are_audited_without_the_pin(self):
        card = self.patron()
        self.assertEqual(self.set_pin(card), {"card": card, "has_pin": True})
        self.assertEqual(self.set_pin(card), {"card": card, "has_pin": True})
        self.assertEqual(self.set_pin(card, None), {"card": card, "has_pin": False})
        self.assertEqual(self.set_pin(card, None), {"card": card, "has_pin": False})  # no-op
        audit = self.rows("SELECT action, changes FROM audit_event WHERE entity = 'patron'"
                          " AND entity_id = %d ORDER BY id" % self.patron_id(card))
        self.assertEqual(audit, [
            {"action": "pin_set", "changes": {"pin": {"before": None, "after": "set"}}},
            {"action": "pin_set", "changes": {"pin": {"before": "set", "after": "set"}}},
            {"action": "pin_clear", "changes": {"pin": {"before": "set", "after": None}}}])

    def test_refusals(self):
        self.refused("SELECT * FROM patron_pin_set(%d, %d, %s, '1234')"
                     % (ids["staff"], ids["workstation"], lit(self.patron())),
                     "CR400", "field:pin")
        self.refused("SELECT * FROM patron_pin_set(%d, %d, '29999999999999', %s)"
                     % (ids["staff"], ids["workstation"], lit(FAKE_HASH)), "CR404", "patron")

    def test_merge_keeps_the_kept_records_pin(self):
        keep, merge = self.patron(), self.patron()
        self.set_pin(merge)
        self.q("SELECT patron_pin_merge(%d, %d)" % (self.patron_id(keep), self.patron_id(merge)))
        self.assertEqual(self.pin(keep)["pin_hash"], FAKE_HASH)
        # Through patron_merge itself (its handler is registered): both have a PIN.
        other = self.patron()
        self.set_pin(other, FAKE_HASH + "x")
        self.q("SELECT count(*) FROM patron_merge(%d, %d, %s, %s)"
               % (ids["staff"], ids["workstation"], lit(keep), lit(other)))
        self.assertEqual(self.pin(keep)["pin_hash"], FAKE_HASH)
        self.assertEqual(self.pin(other)["pin_hash"], FAKE_HASH)  # the merged card finds keep
        self.assertEqual(self.q("SELECT count(*) FROM patron_pin WHERE patron_id = %d"
                                % self.patron_id(other)), "0")


class HoldProbe(SipSqlTest):
    def test_would_capture(self):
        bib = self.bib()
        barcode = self.copy(bib)
        self.assertFalse(self.held(barcode))
        h = self.place(self.patron(), bib)
        self.assertTrue(self.held(barcode))
        self.q("UPDATE hold SET suspended_until = library_today() + 5 WHERE id = %d" % h["id"])
        self.assertFalse(self.held(barcode))  # a suspended hold takes nothing

    def test_already_set_aside_and_on_loan(self):
        bib = self.bib()
        barcode = self.copy(bib)
        self.place(self.patron(), bib)
        self.checkin(barcode)  # on the hold shelf now
        self.assertTrue(self.held(barcode))
        lent_bib = self.bib()
        lent = self.copy(lent_bib)
        self.checkout(self.patron(), lent)
        self.assertFalse(self.held(lent))
        self.place(self.patron(), lent_bib)
        self.assertTrue(self.held(lent))  # its return would fill the hold

    def test_what_cannot_fill_holds(self):
        bib = self.waiting_bib()
        ref = self.copy(bib, item_type="reference")
        withdrawn = self.copy(bib, status="withdrawn")
        self.place(self.patron(), bib)
        self.assertFalse(self.held(ref))
        self.assertFalse(self.held(withdrawn))
        self.assertFalse(self.held("39999999999999"))


class BlockPatron(SipSqlTest):
    def block(self, card, k, note="left in the machine", retained=False):
        return self.q("SELECT sip_block_patron(%s, %d, %d, %s, %s, %s)"
                      % (lit(k), ids["staff"], ids["workstation"], lit(card), lit(note),
                         lit(retained))) == "t"

    def active(self, card):
        return self.q("SELECT string_agg(reason, ';' ORDER BY id) FROM patron_block"
                      " WHERE patron_id = %d AND lifted_at IS NULL" % self.patron_id(card))

    def test_blocks_once_audited(self):
        card, k = self.patron(), key()
        self.assertTrue(self.block(card, k))
        self.assertTrue(self.block(card, k))  # resent: the stored answer, no second block
        self.assertFalse(self.block(card, key()))  # same reason, still active: none
        self.assertEqual(self.active(card), "Blocked by self-check: left in the machine")
        self.assertTrue(flags(self.sip_patron(card)["status"], 0, 1, 2, 3))
        self.assertEqual(self.q("SELECT count(*) FROM audit_event WHERE entity = 'patron'"
                                " AND action = 'block' AND entity_id = %d" % self.patron_id(card)),
                         "1")

    def test_retained_and_empty_note(self):
        card = self.patron()
        self.assertTrue(self.block(card, key(), note="  ", retained=True))
        self.assertEqual(self.active(card), "Blocked by self-check: no reason given (card retained)")

    def test_unknown_card(self):
        self.refused("SELECT sip_block_patron(%s, %d, %d, '29999999999996', 'x', false)"
                     % (lit(key()), ids["staff"], ids["workstation"]), "CR404", "patron_not_found")


class Dates(SipSqlTest):
    def test_sip_dates_are_library_time(self):
        self.assertEqual(self.q("SELECT sip_date(TIMESTAMPTZ '2027-01-05 04:59:59+00')"),
                         "20270104    235959")
        self.assertEqual(self.q("SELECT sip_parse_date('20270104    235959')"
                                " = TIMESTAMPTZ '2027-01-05 04:59:59+00'"), "t")
        self.assertEqual(self.q("SELECT sip_parse_date('20270105   Z045959')"
                                " = TIMESTAMPTZ '2027-01-05 04:59:59+00'"), "t")
        for bad in ("", "2027", "20271345    101010", "abcdefgh    ijklmn"):
            self.assertEqual(self.q("SELECT sip_parse_date(%s) IS NULL" % lit(bad)), "t", bad)

    def test_return_date_is_null_without_a_date(self):
        # No date (a checkin that is not "no block"), or no date at all: NULL, so that
        # circ_checkin takes the moment it locks the copy, as at the desk; a date in the
        # future is now; a past one stays.
        for text in (None, "", "20271345    101010"):
            self.assertEqual(self.q("SELECT sip_return_date(%s) IS NULL"
                                    % ("NULL" if text is None else lit(text))), "t", text)
        self.assertEqual(self.q("SELECT sip_return_date('20990101    000000') = now()"), "t")
        self.assertEqual(self.q("SELECT sip_return_date('20261101   Z045959')"
                                " = TIMESTAMPTZ '2026-11-01 04:59:59+00'"), "t")
        self.assertEqual(self.q("SELECT sip_parse_date('20260230    101010') IS NULL"), "t")

    def test_media_types_and_money(self):
        self.assertEqual(self.q("SELECT string_agg(sip_media_type(t), ',') FROM unnest("
                                "ARRAY['book','periodical','video','dvd','kit']) t"),
                         "001,002,005,006,000")
        self.assertEqual(self.q("SELECT sip_money(1250) || ' ' || sip_money(5)"), "12.50 0.05")


class PinThroughTheClient(unittest.TestCase):
    """PatronPinSet through carrel and carreld: committed, as a desk does it."""

    PIN = "918273"

    def carrel(self, *args, **kw):
        return env.carrel(env.profile(main), *args, **kw)

    def audit_text(self, card):
        return env.psql("SELECT coalesce(string_agg(action || ' ' || changes::text, ';'"
                        " ORDER BY id), '') FROM audit_event WHERE entity = 'patron'"
                        " AND entity_id = (SELECT id FROM patron WHERE card = %s)" % lit(card))

    def test_set_bad_formats_and_clear(self):
        card = env.new_patron("adult", "DWN")
        r = self.carrel("patron", "pin", card, input=self.PIN + "\n")
        self.assertEqual((r.code, r.json), (0, {"card": card, "has_pin": True}), r)
        stored = env.psql("SELECT pin_hash FROM patron_pin p JOIN patron x ON x.id = p.patron_id"
                          " WHERE x.card = %s" % lit(card))
        self.assertTrue(stored.startswith("$argon2id$"), stored)
        for bad in ("123", "12345678901234", "12ab", " 1234", ""):
            r = self.carrel("patron", "pin", card, input=bad + "\n")
            self.assertEqual((r.code, r.json and r.json.get("reason")), (4, "field:pin"),
                             (bad, r))
        self.assertEqual(env.psql("SELECT pin_hash FROM patron_pin p JOIN patron x"
                                  " ON x.id = p.patron_id WHERE x.card = %s" % lit(card)), stored)
        r = self.carrel("patron", "pin", card, "--clear", json_out=False)
        self.assertEqual((r.code, r.stdout), (0, "no PIN for card %s\n" % card), r)
        self.assertEqual(env.psql("SELECT count(*) FROM patron_pin p JOIN patron x"
                                  " ON x.id = p.patron_id WHERE x.card = %s" % lit(card)), "0")
        audit = self.audit_text(card)
        self.assertEqual(audit.count("pin_set"), 1, audit)
        self.assertEqual(audit.count("pin_clear"), 1, audit)
        self.assertNotIn(self.PIN, audit)
        self.assertNotIn("argon2", audit)
        # Nor in the daemon's log, nor anywhere in the audit trail.
        self.assertNotIn(self.PIN, main.log_text())
        self.assertEqual(env.psql("SELECT count(*) FROM audit_event WHERE changes::text LIKE %s"
                                  % lit("%" + self.PIN + "%")), "0")
        r = self.carrel("patron", "history", card)
        self.assertEqual(r.code, 0, r)
        self.assertIn("pin_set", json.dumps(r.json))

    def test_a_clerk_sets_a_pin(self):
        card = env.new_patron("adult", "DWN")
        r = env.carrel(env.profile(main, user="pin-clerk", password="clerk-password-123"),
                       "patron", "pin", card, input="2468\n")
        self.assertEqual((r.code, r.json), (0, {"card": card, "has_pin": True}), r)

    def test_unknown_card_and_usage(self):
        r = self.carrel("patron", "pin", "29999999999999", input="1234\n")
        self.assertEqual((r.code, r.json and r.json.get("reason")), (4, "patron"), r)
        r = self.carrel("patron", "pin")
        self.assertEqual(r.code, 2, r)
        r = self.carrel("patron", "pin", "--help", json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertIn("--clear", r.stdout)


if __name__ == "__main__":
    unittest.main()
