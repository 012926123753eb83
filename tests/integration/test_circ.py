#!/usr/bin/env python3
"""Circulation: rules, refusals and overrides, routing, fines, renewals, marks,
idempotency, privacy, and the database invariants under racing desks."""

import os
import random
import select
import socket
import ssl
import struct
import sys
import threading
import time
import types
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import pb_message  # noqa: E402

REQ_CHECKOUT, REQ_CHECKIN, REQ_RENEW = 80, 81, 82
RESP_CHECKOUT, RESP_CHECKIN, RESP_RENEW = 80, 81, 82
PASSWORD = "staff-password-123"
env = None
main = None
BRANCHES = ["ALB", "BAR", "CMP", "DWN", "DWT", "PRK", "RPK"]



def new_item(branch="DWN", item_type="book", price="24.95", title="Circulation test copy"):
    """A fresh item with a valid barcode: one bib per title (harness.Env.new_item)."""
    return env.new_item(title=title, branch=branch, item_type=item_type,
                        price_cents=int(float(price) * 100))


def new_patron(category="adult", branch="DWN", expires="2099-01-01", keep_history=False):
    return env.new_patron(category, branch, expires, keep_history=keep_history)


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        main = env.daemon(db_pool_size=8, max_inflight=256)
        admin = env.profile(main)
        env.add_workstations(admin, harness.BRANCH_DESKS)
        for user, role, branch in [("clara", "clerk", "DWN"), ("libby", "librarian", "DWN"),
                                   ("pat", "clerk", "PRK"), ("roamer", "coordinator", "DWN")]:
            env.add_staff(admin, user, role, branch, PASSWORD)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    try:
        problems = env.psql("SELECT count(*) FROM circ_invariants()")
        assert problems == "0", env.psql("SELECT * FROM circ_invariants()")
    finally:
        env.stop()


def carrel(*args, user="clara", ws="desk-dwn"):
    pw = harness.ADMIN_PASSWORD if user == "admin" else PASSWORD
    return env.carrel(env.profile(main, ws, user, pw), *args)


def pair_rolled_back(before, after):
    """A checkout and checkin of a fresh copy to a fresh patron at desk-dwn by
    clara, called as carreld calls them, in one transaction between the
    statements `before` and `after`, rolled back: the lines psql printed."""
    card, item = new_patron(), new_item()
    ids = env.psql("SELECT s.id || ',' || w.id || ',' || w.branch_id FROM staff s,"
                   " workstation w WHERE s.username = 'clara' AND w.name = 'desk-dwn'")
    staff, ws, branch = ids.split(",")
    return env.psql(
        "BEGIN; %s; SELECT count(*) FROM circ_checkout(gen_random_uuid(), %s, '%s', '%s',"
        " false, NULL, false); SELECT count(*) FROM circ_checkin(gen_random_uuid(), %s, %s,"
        " %s, '%s', NULL); %s; ROLLBACK"
        % (before or "SELECT 1", ids, card, item, staff, ws, branch, item, after)).split("\n")


def checkout(card, barcode, *extra, **kw):
    r = carrel("checkout", card, barcode, *extra, **kw)
    return r


class Basics(unittest.TestCase):
    def test_checkout_checkin_and_account(self):
        card, item = new_patron(), new_item()
        r = checkout(card, item)
        self.assertEqual(r.code, 0, r)
        loan = r.json[0]
        self.assertEqual(loan["barcode"], item)
        self.assertIn("Due:", loan["slip"])
        self.assertIn("Circulation test copy", loan["slip"])
        self.assertIn("card ending " + card[-4:], loan["slip"])
        due = env.psql("SELECT library_today() + 21")
        # Downtown is closed on Sundays: a due date that lands there moves on.
        if env.psql("SELECT extract(isodow FROM library_today() + 21)") == "7":
            due = env.psql("SELECT library_today() + 22")
        self.assertEqual(loan["due_date"], due)
        # Times leave the server as ISO 8601 in UTC, whatever the session's zone.
        self.assertRegex(loan["due_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(env.psql("SELECT status FROM item WHERE barcode = '%s'" % item),
                         "checked_out")
        acc = carrel("account", card).json
        self.assertEqual(acc["loans_out"], 1)
        self.assertEqual(acc["loans"][0]["barcode"], item)
        self.assertFalse(acc["loans"][0]["overdue"])
        r = carrel("checkin", item)
        self.assertEqual(r.code, 0, r)
        back = r.json[0]
        self.assertTrue(back["was_on_loan"])
        self.assertEqual(back["route"], "shelf")
        self.assertIn("Return to shelf", back["message"])
        self.assertEqual(carrel("account", card).json["loans_out"], 0)
        self.assertEqual(env.psql("SELECT status FROM item WHERE barcode = '%s'" % item),
                         "available")

    def test_due_date_skips_closed_days(self):
        card, item = new_patron(), new_item()
        target = env.psql("SELECT library_today() + 21")
        nxt = env.psql("SELECT library_today() + 22")
        r = carrel("calendar", "close", "DWN", target, nxt, "--reason", "Inventory",
                   user="admin")
        self.assertEqual(r.code, 0, r)
        try:
            due = checkout(card, item).json[0]["due_date"]
            self.assertGreater(due, nxt)
            self.assertEqual(env.psql("SELECT branch_is_open(b.id, '%s') FROM branch b "
                                      "WHERE code = 'DWN'" % due), "t")
        finally:
            carrel("calendar", "open", "DWN", target, nxt, user="admin")
            carrel("checkin", item)

    def test_hourly_loans(self):
        r = carrel("policy", "set", "--type", "equipment", "--hours", "4", "--renewals", "0",
                   user="admin")
        self.assertEqual(r.code, 0, r)
        card, laptop = new_patron(), new_item(item_type="equipment", title="Laptop 7")
        loan = checkout(card, laptop).json[0]
        hours = float(env.psql("SELECT round(extract(epoch FROM (due_at - now())) / 3600) FROM loan"
                               " WHERE id = %d" % loan["loan_id"]))
        self.assertEqual(hours, 4)
        carrel("checkin", laptop)

    def test_request_key_required_and_checked(self):
        w = main.logged_in_wire("desk-dwn", "clara", PASSWORD)
        body = pb_message((1, new_patron()), (2, new_item()))
        r = w.call(REQ_CHECKOUT, body)
        self.assertEqual((r.status, r.reason), ("bad_request", "request_key"))
        r = w.call(REQ_CHECKOUT, body, key="not-a-uuid")
        self.assertEqual((r.status, r.reason), ("bad_request", "request_key"))
        w.close()


class Refusals(unittest.TestCase):
    def refused(self, r, reason, overridable=True):
        self.assertEqual(r.code, 4, r)
        self.assertIn("(%s)" % reason, r.stderr, r)
        if overridable:
            self.assertIn("can be overridden", r.stderr)
        else:
            self.assertNotIn("can be overridden", r.stderr)

    def test_patron_refusals_and_override(self):
        expired = new_patron(expires="2020-01-01")
        item = new_item()
        self.refused(checkout(expired, item), "patron_expired")
        # A clerk cannot override; a librarian can, with a reason that is kept.
        r = checkout(expired, item, "--override", "renewing card today")
        self.assertIn("forbidden", r.stderr)
        r = checkout(expired, item, "--override", "renewing card today", user="libby")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json[0]["overridden"], ["patron_expired"])
        self.assertEqual(env.psql("SELECT override_reason FROM loan WHERE id = %d"
                                  % r.json[0]["loan_id"]), "renewing card today")
        self.assertGreaterEqual(int(env.psql("SELECT count(*) FROM circ_event WHERE action = "
                                             "'override'")), 1)
        carrel("checkin", item)

        blocked = new_patron()
        self.assertEqual(carrel("patron", "block", blocked, "--reason", "Damaged books",
                                user="libby").code, 0)
        self.refused(checkout(blocked, new_item()), "patron_blocked")

    def test_owing_blocks_checkout(self):
        card = new_patron()
        self.assertEqual(carrel("charge", card, "12.00", "--note", "Lost card fee",
                                user="libby").code, 0)
        self.refused(checkout(card, new_item()), "patron_owes")
        self.assertEqual(carrel("pay", card, "5.00").code, 0)
        self.assertEqual(checkout(card, new_item()).code, 0)
        acc = carrel("account", card).json
        self.assertEqual(acc["balance_cents"], 700)
        kinds = [e["kind"] for e in acc["ledger"]]
        self.assertEqual(sorted(kinds), ["charge", "payment"])
        r = carrel("waive", card, "7.00", "--note", "goodwill")
        self.assertIn("forbidden", r.stderr)  # clerks record payments only
        self.assertEqual(carrel("waive", card, "7.00", "--note", "goodwill", user="libby").code, 0)
        self.assertEqual(carrel("account", card).json["balance_cents"], 0)

    def test_limits(self):
        r = carrel("policy", "set", "--category", "juvenile", "--days", "14", "--max", "2",
                   user="admin")
        self.assertEqual(r.code, 0, r)
        # The overall cap belongs on a rule without item type (it would never be read).
        r = carrel("policy", "set", "--category", "juvenile", "--type", "dvd", "--max", "1",
                   user="admin")
        self.assertEqual((r.code, r.json["reason"]), (4, "field:max_loans"), r)
        card = new_patron(category="juvenile")
        items = [new_item() for _ in range(3)]
        self.assertEqual(checkout(card, items[0]).code, 0)
        self.assertEqual(checkout(card, items[1]).code, 0)
        self.refused(checkout(card, items[2]), "loan_limit")
        due = env.psql("SELECT due_at::date - checkout_at::date FROM loan l JOIN item i "
                       "ON i.id = l.item_id WHERE i.barcode = '%s'" % items[0])
        self.assertIn(int(due), (14, 15, 16))  # 14 days, or past a closed day
        dvd_card = new_patron()
        dvds = [new_item(item_type="dvd", title="Some DVD") for _ in range(11)]
        for d in dvds[:10]:
            self.assertEqual(checkout(dvd_card, d).code, 0)
        self.refused(checkout(dvd_card, dvds[10]), "item_type_limit")
        for b in items[:2] + dvds[:10]:
            carrel("checkin", b)

    def test_item_refusals(self):
        a, b = new_patron(), new_patron()
        item = new_item()
        self.assertEqual(checkout(a, item).code, 0)
        r = checkout(a, item)
        self.refused(r, "already_checked_out", overridable=False)
        self.refused(checkout(b, item), "item_on_loan")
        # Overriding "on loan to another" ends that loan first.
        r = checkout(b, item, "--override", "patron A returned it at the desk", user="libby")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(carrel("account", a).json["loans_out"], 0)
        self.assertEqual(carrel("account", b).json["loans_out"], 1)
        carrel("checkin", item)
        ref = new_item(item_type="reference", title="Encyclopedia")
        self.refused(checkout(a, ref), "item_not_circulating")
        r = checkout(a, "31234999999999")
        self.assertEqual((r.code, "item_not_found" in r.stderr), (4, True), r)
        r = checkout("21234999999999", item)
        self.assertIn("patron_not_found", r.stderr)
        lost = new_item()
        self.assertEqual(carrel("item", "mark", lost, "missing").code, 0)
        self.refused(checkout(a, lost), "item_status")


class Routing(unittest.TestCase):
    def test_transit_home_forward_and_receive(self):
        card = new_patron()
        prk_item = new_item(branch="PRK")
        self.assertEqual(checkout(card, prk_item).code, 0)  # lent at Downtown
        back = carrel("checkin", prk_item).json[0]
        self.assertEqual(back["route"], "transit")
        self.assertEqual(back["destination_branch"], "PRK")
        self.assertIn("ROUTE TO Park Street Branch at the Lyric", back["message"])
        self.assertIn("TRANSIT", back["slip"])
        self.assertEqual(env.psql("SELECT status FROM item WHERE barcode = '%s'" % prk_item),
                         "in_transit")
        # Scanned on the way at Albany: forwarded, still one transit.
        fwd = carrel("checkin", prk_item, user="roamer", ws="desk-alb").json[0]
        self.assertEqual((fwd["route"], fwd["destination_branch"]), ("transit", "PRK"))
        self.assertEqual(env.psql("SELECT count(*) FROM transit t JOIN item i ON i.id = t.item_id "
                                  "WHERE i.barcode = '%s'" % prk_item), "1")
        got = carrel("checkin", prk_item, user="pat", ws="desk-prk").json[0]
        self.assertEqual(got["route"], "shelf")
        self.assertEqual(env.psql("SELECT status || ' ' || b.code FROM item i JOIN branch b ON "
                                  "b.id = i.current_branch_id WHERE barcode = '%s'" % prk_item),
                         "available PRK")
        self.assertEqual(env.psql("SELECT count(*) FROM transit t JOIN item i ON i.id = t.item_id"
                                  " WHERE i.barcode = '%s' AND received_at IS NOT NULL"
                                  % prk_item), "1")

    def test_checkin_fixes_status(self):
        item = new_item()
        env.psql("UPDATE item SET status = 'lost' WHERE barcode = '%s'" % item)
        back = carrel("checkin", item).json[0]
        self.assertFalse(back["was_on_loan"])
        self.assertIn("status corrected from lost", back["message"])
        self.assertEqual(env.psql("SELECT status FROM item WHERE barcode = '%s'" % item),
                         "available")
        again = carrel("checkin", item).json[0]
        self.assertIn("Was not checked out", again["message"])

    def test_checkin_of_a_lost_item_refunds_and_routes_it(self):
        """A lost item that turns up at a desk: routed, and its lost charge refunded."""
        card, item = new_patron(), new_item(price="12.00")
        self.assertEqual(checkout(card, item).code, 0)
        self.assertEqual(carrel("item", "mark", item, "lost").json["charged_cents"], 1200)
        back = carrel("checkin", item, user="pat", ws="desk-prk").json[0]
        self.assertIn("status corrected from lost (lost charge of $12.00 refunded)",
                      back["message"])
        self.assertEqual((back["route"], back["destination_branch"]), ("transit", "DWN"))
        self.assertEqual(env.psql("SELECT status FROM item WHERE barcode = '%s'" % item),
                         "in_transit")
        acc = carrel("account", card).json
        self.assertEqual((acc["balance_cents"], acc["ledger"][0]["kind"]), (0, "lost_refund"))
        self.assertEqual(carrel("checkin", item).json[0]["route"], "shelf")  # home
        self.assertEqual(env.psql("SELECT count(*) FROM circ_invariants()"), "0",
                         env.psql("SELECT * FROM circ_invariants()"))

    def test_checkin_of_a_display_copy_names_the_display(self):
        """CheckinReply.display and route display (docs/DISPLAYS.md), through the daemon."""
        card, item = new_patron(), new_item()
        env.psql("WITH d AS (INSERT INTO display (branch_id, place, theme, curator_id, starts_on,"
                 " ends_on) SELECT b.id, 'by the stairs', 'Rivers', s.id, library_today() - 1,"
                 " library_today() + 1 FROM branch b, staff s WHERE b.code = 'DWN'"
                 " AND s.username = 'admin' RETURNING id)"
                 " INSERT INTO display_item (display_id, item_id) SELECT d.id, i.id FROM d, item i"
                 " WHERE i.barcode = '%s'" % item)
        self.assertEqual(checkout(card, item).code, 0)
        back = carrel("checkin", item).json[0]
        self.assertEqual((back["route"], back["display"]), ("display", "Rivers (by the stairs)"))
        self.assertIn("Put back on the display: Rivers (by the stairs)", back["message"])
        plain = carrel("checkin", new_item()).json[0]
        self.assertEqual(plain["route"], "shelf")
        self.assertNotIn("display", plain)


class Fines(unittest.TestCase):
    def test_backdated_checkin_and_fines(self):
        self.assertEqual(carrel("policy", "set", "--category", "senior", "--days", "7",
                                "--fine", "0.25", "--fine-max", "1.00", "--grace", "1",
                                user="admin").code, 0)
        card = new_patron(category="senior")
        item = new_item()
        loan = checkout(card, item).json[0]
        # Pretend it was due six days ago; returned in the book drop four days ago.
        env.psql("UPDATE loan SET checkout_at = now() - interval '13 days', "
                 "due_at = now() - interval '6 days' WHERE id = %d" % loan["loan_id"])
        when = env.psql("SELECT to_json(now() - interval '4 days')#>>'{}'")
        back = carrel("checkin", item, "--date", when).json[0]
        # 2 days late, 1 of grace: one day at $0.25.
        self.assertEqual(back["fine_cents"], 25)
        self.assertIn("fine $0.25", back["message"])
        acc = carrel("account", card).json
        self.assertEqual(acc["balance_cents"], 25)
        self.assertEqual(acc["ledger"][0]["kind"], "fine")
        # Late by a lot: capped at the maximum.
        item2 = new_item()
        loan2 = checkout(card, item2).json[0]
        env.psql("UPDATE loan SET checkout_at = now() - interval '60 days', "
                 "due_at = now() - interval '40 days' WHERE id = %d" % loan2["loan_id"])
        self.assertEqual(carrel("checkin", item2).json[0]["fine_cents"], 100)
        r = carrel("checkin", new_item(), "--date", "2999-01-01T00:00:00Z")
        self.assertIn("future", r.stderr)

    def test_fine_free_by_default(self):
        card, item = new_patron(), new_item()
        loan = checkout(card, item).json[0]
        env.psql("UPDATE loan SET checkout_at = now() - interval '60 days', "
                 "due_at = now() - interval '30 days' WHERE id = %d" % loan["loan_id"])
        self.assertTrue(carrel("account", card).json["loans"][0]["overdue"])
        self.assertEqual(carrel("checkin", item).json[0]["fine_cents"], 0)


class Renewals(unittest.TestCase):
    def test_renew_one_all_and_limit(self):
        card = new_patron()
        items = [new_item(), new_item(), new_item(item_type="dvd", title="Renewable DVD")]
        for b in items:
            self.assertEqual(checkout(card, b).code, 0)
        env.psql("UPDATE loan SET due_at = now() + interval '1 day' WHERE returned_at IS NULL "
                 "AND item_id IN (SELECT id FROM item WHERE barcode IN ('%s'))" % "','".join(items))
        r = carrel("renew", card, items[0])
        self.assertEqual(r.code, 0, r)
        self.assertTrue(r.json[0]["renewed"])
        self.assertEqual(r.json[0]["renewals"], 1)
        # A renewal moves the due date; bring them near again so the next ones can.
        push_back = ("UPDATE loan SET due_at = now() + interval '1 day' WHERE returned_at IS NULL "
                     "AND item_id IN (SELECT id FROM item WHERE barcode IN ('%s'))"
                     % "','".join(items))
        env.psql(push_back)
        r = carrel("renew", card, "--all")
        self.assertEqual(r.code, 0, r)
        by = {x["barcode"]: x for x in r.json}
        self.assertTrue(by[items[0]]["renewed"])
        self.assertTrue(by[items[1]]["renewed"])
        self.assertTrue(by[items[2]]["renewed"])
        env.psql(push_back)
        r = carrel("renew", card, "--all")
        self.assertEqual(r.code, 4, r)  # the DVD allows one renewal only
        by = {x["barcode"]: x for x in r.json}
        self.assertEqual(by[items[2]]["reason"], "renewal_limit")
        self.assertTrue(by[items[1]]["renewed"])
        r = carrel("renew", card, items[2], "--override", "patron is homebound", user="libby")
        self.assertTrue(r.json[0]["renewed"], r)
        r = carrel("renew", card, new_item())
        self.assertIn("not_on_loan", r.stderr)
        for b in items:
            carrel("checkin", b)

    def test_expired_patron_cannot_renew(self):
        card, item = new_patron(), new_item()
        checkout(card, item)
        env.psql("UPDATE patron SET expires_on = '2021-01-01' WHERE card = '%s'" % card)
        r = carrel("renew", card, item)
        self.assertEqual(r.json[0]["reason"], "patron_expired")
        carrel("checkin", item)


class Marks(unittest.TestCase):
    def test_lost_found_claims_damaged_use(self):
        card, item = new_patron(), new_item(price="30.00")
        checkout(card, item)
        r = carrel("item", "mark", item, "lost")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["charged_cents"], 3000)
        self.assertEqual(r.json["item"]["status"], "lost")
        acc = carrel("account", card).json
        self.assertEqual((acc["loans_out"], acc["balance_cents"]), (0, 3000))
        r = carrel("item", "mark", item, "found")
        self.assertEqual(r.json["charged_cents"], -3000)
        self.assertEqual(r.json["item"]["status"], "available")
        self.assertEqual(carrel("account", card).json["balance_cents"], 0)

        other = new_item()
        checkout(card, other)
        r = carrel("item", "mark", other, "claims_returned")
        self.assertEqual(r.json["item"]["status"], "claimed_returned")
        self.assertEqual(carrel("account", card).json["loans_out"], 0)
        self.assertEqual(carrel("item", "mark", other, "found").json["item"]["status"],
                         "available")

        shelf = new_item()
        self.assertEqual(carrel("item", "mark", shelf, "damaged").json["item"]["status"],
                         "damaged")
        checkout(card, (busy := new_item()))
        r = carrel("item", "mark", busy, "missing")
        self.assertIn("on_loan", r.stderr)
        carrel("checkin", busy)
        r = carrel("item", "use", shelf, shelf)
        self.assertEqual(r.code, 0, r)
        self.assertEqual(env.psql("SELECT in_house_uses FROM item WHERE barcode = '%s'" % shelf),
                         "2")
        events = env.psql("SELECT string_agg(action, ',' ORDER BY e.id) FROM circ_event e "
                          "JOIN item i ON i.id = e.item_id WHERE i.barcode = '%s'" % item)
        self.assertEqual(events, "checkout,lost,found")


class Privacy(unittest.TestCase):
    def test_history_only_when_chosen(self):
        private, keeper = new_patron(), new_patron(keep_history=True)
        a, b = new_item(), new_item()
        checkout(private, a)
        checkout(keeper, b)
        self.assertEqual(env.psql("SELECT count(*) FROM loan l JOIN patron p ON p.id = l.patron_id"
                                  " WHERE p.card = '%s'" % private), "1")
        carrel("checkin", a)
        carrel("checkin", b)
        self.assertEqual(env.psql("SELECT count(*) FROM loan l JOIN patron p ON p.id = l.patron_id"
                                  " WHERE p.card = '%s'" % private), "0")
        self.assertEqual(env.psql("SELECT count(*) FROM loan l JOIN patron p ON p.id = l.patron_id"
                                  " WHERE p.card = '%s'" % keeper), "1")
        # Statistics still count the loan, without anyone's identity.
        self.assertEqual(env.psql("SELECT count(*) FROM circ_event e JOIN item i ON "
                                  "i.id = e.item_id WHERE i.barcode = '%s' AND "
                                  "e.patron_category = 'adult'" % a), "2")
        cols = env.psql("SELECT string_agg(column_name, ',') FROM information_schema.columns "
                        "WHERE table_name = 'circ_event'")
        self.assertNotIn("patron_id", cols)


class Consistency(unittest.TestCase):
    def test_one_open_loan_per_item_is_a_constraint(self):
        card, item = new_patron(), new_item()
        checkout(card, item)
        with self.assertRaises(Exception):
            env.psql("INSERT INTO loan (item_id, patron_id, patron_category, item_type, "
                     "checkout_branch_id, due_at) SELECT i.id, p.id, 'adult', 'book', 1, now() "
                     "FROM item i, patron p WHERE i.barcode = '%s' AND p.card = '%s'"
                     % (item, card))
        carrel("checkin", item)

    def test_retry_with_same_key_applies_once(self):
        card, item = new_patron(), new_item()
        key = str(uuid.uuid4())
        w1 = main.logged_in_wire("desk-dwn", "clara", PASSWORD)
        w2 = main.logged_in_wire("desk-dwn-2", "clara", PASSWORD)
        body = pb_message((1, card), (2, item))
        # Both at once (a retry racing the original), then once more later.
        i1 = w1.send(REQ_CHECKOUT, body, key=key)
        i2 = w2.send(REQ_CHECKOUT, body, key=key)
        r1 = w1.recv()
        r2 = w2.recv()
        self.assertEqual((r1.status, r2.status), ("ok", "ok"), (r1, r2))
        r3 = w1.call(REQ_CHECKOUT, body, key=key)
        loan_ids = {r.body(RESP_CHECKOUT)[1][0] for r in (r1, r2, r3)}
        self.assertEqual(len(loan_ids), 1)
        self.assertEqual(env.psql("SELECT count(*) FROM loan l JOIN item i ON i.id = l.item_id "
                                  "WHERE i.barcode = '%s'" % item), "1")
        self.assertEqual(env.psql("SELECT loans_out FROM patron_circ pc JOIN patron p ON "
                                  "p.id = pc.patron_id WHERE p.card = '%s'" % card), "1")
        # The same key for another request is refused.
        r = w1.call(REQ_CHECKIN, pb_message((1, item)), key=key)
        self.assertEqual((r.status, r.reason), ("conflict", "request_key_reused"))
        self.assertIsNotNone(i1 and i2)
        w1.close()
        w2.close()
        carrel("checkin", item)

    def test_one_key_for_two_copies_at_once_applies_once(self):
        """A change of a copy writes its key once, at its end (request_finish):
        two requests with one key and different copies both get that far; the
        second is retried (40001) and answers what the first one did."""
        card, first, second = new_patron(), new_item(), new_item()
        key = str(uuid.uuid4())
        ids = env.psql("SELECT s.id || ',' || w.id || ',' || w.branch_id FROM staff s,"
                       " workstation w WHERE s.username = 'clara' AND w.name = 'desk-dwn'")
        held = env.session()
        try:
            loan = held.query("BEGIN; SELECT loan_id FROM circ_checkout('%s', %s, '%s', '%s',"
                              " false, NULL, false)" % (key, ids, card, first),
                              keep_transaction=True).split("\n")[-1]
            w = main.logged_in_wire("desk-dwn", "clara", PASSWORD)
            rid = w.send(REQ_CHECKOUT, pb_message((1, card), (2, second)), key=key)
            # It has done its work and waits to write the key the first one holds.
            harness.wait_until(lambda: env.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%circ_checkout(%'") == "1", 60)
            held.query("COMMIT")
        finally:
            held.close()
        r = w.recv()
        self.assertEqual((r.id, r.status), (rid, "ok"), r)
        self.assertEqual(str(r.body(RESP_CHECKOUT)[1][0]), loan)
        w.close()
        self.assertEqual(env.psql("SELECT status || ' ' || (SELECT count(*) FROM loan l"
                                  " WHERE l.item_id = i.id) FROM item i"
                                  " WHERE barcode = '%s'" % second), "available 0")
        self.assertEqual(env.psql("SELECT loans_out FROM patron_circ pc JOIN patron p ON "
                                  "p.id = pc.patron_id WHERE p.card = '%s'" % card), "1")
        carrel("checkin", first)

    def test_a_copy_circulates_by_heap_only_updates(self):
        """No index of item reads a column circulation writes (migration 036):
        a checkout's and a checkin's update of the copy stay on its page."""
        written = {"status", "current_branch_id", "status_changed_at", "last_circulated",
                   "last_used_at", "circ_count", "in_house_uses", "version", "updated_at"}
        indexed = set(env.psql(
            "SELECT a.attname FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid"
            " WHERE x.indrelid = 'item'::regclass AND a.attnum > 0 AND (a.attnum = ANY (x.indkey)"
            "  OR pg_get_expr(x.indexprs, x.indrelid) ~ ('\\m' || a.attname || '\\M')"
            "  OR pg_get_expr(x.indpred, x.indrelid) ~ ('\\m' || a.attname || '\\M'))"
        ).split())
        self.assertIn("barcode", indexed)
        self.assertEqual(written & indexed, set())
        counts = pair_rolled_back("", "SELECT n_tup_upd || ' ' || n_tup_hot_upd"
                                  " FROM pg_stat_xact_user_tables WHERE relname = 'item'")
        self.assertEqual([c for c in counts if " " in c], ["2 2"], counts)

    def test_counts_and_names_are_checked_by_the_database(self):
        """The single-column rules of the tables circulation writes are domains
        (migration 037), the others one check a table (038): still refused by
        PostgreSQL, check_violation."""
        item = new_item()
        card = new_patron()
        self.assertEqual(checkout(card, item).code, 0)
        for sql in ("UPDATE item SET circ_count = -1 WHERE barcode = '%s'" % item,
                    "UPDATE item SET in_house_uses = in_house_uses - 1 WHERE barcode = '%s'"
                    % item,
                    "UPDATE item SET price_cents = 100000001 WHERE barcode = '%s'" % item,
                    "UPDATE loan SET renewals = -1 WHERE item_id = (SELECT id FROM item"
                    " WHERE barcode = '%s')" % item,
                    "UPDATE loan SET outcome = 'vanished', returned_at = now() WHERE item_id ="
                    " (SELECT id FROM item WHERE barcode = '%s')" % item,
                    "UPDATE patron_circ SET loans_out = -1 WHERE patron_id = (SELECT id"
                    " FROM patron WHERE card = '%s')" % card,
                    "UPDATE patron_type_loans SET loans_out = -1 WHERE patron_id = (SELECT id"
                    " FROM patron WHERE card = '%s')" % card,
                    "UPDATE circ_event SET action = 'borrowed' WHERE item_id = (SELECT id"
                    " FROM item WHERE barcode = '%s')" % item,
                    "UPDATE circ_event SET via = 'drone' WHERE item_id = (SELECT id"
                    " FROM item WHERE barcode = '%s')" % item,
                    # The checks of several columns, one a table (migration 038).
                    "UPDATE loan SET returned_at = checkout_at - interval '1 day',"
                    " outcome = 'returned' WHERE item_id = (SELECT id FROM item"
                    " WHERE barcode = '%s')" % item,
                    "UPDATE loan SET returned_at = now() WHERE item_id = (SELECT id FROM item"
                    " WHERE barcode = '%s')" % item,
                    "UPDATE item SET barcode = 'two words' WHERE barcode = '%s'" % item,
                    "UPDATE item SET call_number = repeat('x', 101) WHERE barcode = '%s'" % item,
                    "UPDATE item SET location = repeat('x', 101) WHERE barcode = '%s'" % item):
            with self.assertRaises(harness.SqlError) as e:
                env.psql(sql)
            self.assertEqual(e.exception.sqlstate, "23514", sql)
        self.assertEqual(carrel("checkin", item).code, 0)

    def test_a_pair_calls_only_the_helpers_it_needs(self):
        """A checkout and a checkin of a copy no hold wants, by the patron's
        current card, call no helper whose work they do not need (issue 15):
        not the status stamp (the checkin's update stamps itself), not the
        holds' trigger for the checkout, not item_text_check's refusal, not the
        shelf key (only a write of call_number computes it, migration 038),
        not patron_resolve (the card is current), not item_can_fill_holds (no
        hold waits). Counted by PostgreSQL (track_functions) in one
        transaction, rolled back."""
        rows = pair_rolled_back("SET LOCAL track_functions = 'all'",
                                "SELECT funcname || '=' || calls FROM pg_stat_xact_user_functions")
        calls = dict(r.split("=") for r in rows if "=" in r)
        self.assertEqual((calls.get("circ_checkout"), calls.get("circ_checkin")), ("1", "1"),
                         rows)
        for helper in ("item_status_stamp", "item_shelf_key", "call_number_shelf_key",
                       "patron_resolve", "item_can_fill_holds", "check_refused"):
            self.assertNotIn(helper, calls, rows)
        # The checkin's return to the shelf offers the copy to waiting holds;
        # the checkout's update calls no trigger (hold_targeting.sql).
        self.assertEqual(calls.get("item_hold_settle"), "1", rows)

    def test_a_copy_with_an_old_card_and_a_new_call_number(self):
        """The paths the pair no longer takes still work: a checkout by a
        card the patron no longer carries (a merged record's, patron_card:
        patron_resolve), and a copy whose call number changes gets its shelf
        key, which cannot be written apart from it."""
        card, item = new_patron(), new_item()
        old_card = harness.mod10("2%012d" % (int(card[1:-1]) + 7000000))
        env.psql("INSERT INTO patron_card (card, patron_id) SELECT '%s', id FROM patron"
                 " WHERE card = '%s'" % (old_card, card))
        r = checkout(old_card, item)
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual(env.psql("SELECT p.card FROM loan l JOIN item i ON i.id = l.item_id"
                                  " JOIN patron p ON p.id = l.patron_id WHERE i.barcode = '%s'"
                                  " AND l.returned_at IS NULL" % item), card)
        self.assertEqual(carrel("checkin", item).code, 0)
        env.psql("UPDATE item SET call_number = 'FIC Smith 7' WHERE barcode = '%s'" % item)
        env.psql("UPDATE item SET shelf_key = 'A' WHERE barcode = '%s'" % item)
        self.assertEqual(env.psql("SELECT (shelf_key = call_number_shelf_key('FIC Smith 7'))"
                                  " || ' ' || shelf_key FROM item WHERE barcode = '%s'" % item),
                         "true FIC SMITH 000000007")

    def test_a_setting_is_read_once_a_transaction(self):
        """library_setting_text keeps what it read for the rest of the
        transaction; a change the transaction makes itself is seen at once,
        another's from the next transaction."""
        was = env.psql("SELECT value FROM library_setting WHERE name = 'library_name'")
        self.addCleanup(env.psql, "UPDATE library_setting SET value = %s WHERE name ="
                        " 'library_name'" % harness.sql_literal(was))
        read = "SELECT library_setting_text('library_name')"
        s = env.session()
        try:
            s.query("BEGIN", keep_transaction=True)
            self.assertEqual(s.query(read, keep_transaction=True), was)
            env.psql("UPDATE library_setting SET value = 'Elsewhere' WHERE name = 'library_name'")
            self.assertEqual(s.query(read, keep_transaction=True), was)
            s.query("UPDATE library_setting SET value = 'Here' WHERE name = 'library_name'",
                    keep_transaction=True)
            self.assertEqual(s.query(read, keep_transaction=True), "Here")
            s.query("ROLLBACK")
            self.assertEqual(s.query(read), "Elsewhere")
            self.assertEqual(s.query("SELECT coalesce(library_setting_text('no_such'), 'none')"),
                             "none")
            self.assertEqual(s.query("SELECT coalesce(library_setting_text('No such.'), 'none')"),
                             "none")
        finally:
            s.close()

    def test_limit_exact_under_concurrency(self):
        self.assertEqual(carrel("policy", "set", "--category", "homebound", "--days", "30",
                                "--max", "5", user="admin").code, 0)
        card = new_patron(category="homebound")
        items = [new_item() for _ in range(10)]
        wires = [main.logged_in_wire("desk-dwn", "clara", PASSWORD) for _ in range(10)]
        barrier = threading.Barrier(10)

        def desk(i):
            barrier.wait()
            return wires[i].call(REQ_CHECKOUT, pb_message((1, card), (2, items[i])),
                                 key=str(uuid.uuid4()))
        results = harness.run_parallel(desk, [(i,) for i in range(10)])
        ok = [r for r in results if r.status == "ok"]
        refused = [r for r in results if r.status == "refused"]
        self.assertEqual((len(ok), len(refused)), (5, 5), results)
        self.assertTrue(all(r.reason == "loan_limit" for r in refused))
        self.assertEqual(env.psql("SELECT count(*) FROM loan l JOIN patron p ON p.id = l.patron_id"
                                  " WHERE p.card = '%s' AND l.returned_at IS NULL" % card), "5")
        for w in wires:
            w.close()
        for b in items:
            carrel("checkin", b)

    def test_serialization_failures_are_retried(self):
        # A trigger that fails the first two attempts like a serialization failure would.
        env.psql("CREATE SEQUENCE flaky_attempts; "
                 "CREATE FUNCTION flaky() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                 "IF nextval('flaky_attempts') <= 2 THEN RAISE EXCEPTION 'simulated' USING "
                 "ERRCODE = '40001'; END IF; RETURN NEW; END $$; "
                 "CREATE TRIGGER flaky BEFORE INSERT ON loan FOR EACH ROW EXECUTE FUNCTION flaky();"
                 "ALTER SEQUENCE flaky_attempts OWNER TO carrel")
        try:
            card, item = new_patron(), new_item()
            r = checkout(card, item)
            self.assertEqual(r.code, 0, r)
            self.assertEqual(env.psql("SELECT last_value FROM flaky_attempts"), "3")
            self.assertEqual(env.psql("SELECT count(*) FROM loan l JOIN item i ON "
                                      "i.id = l.item_id WHERE i.barcode = '%s'" % item), "1")
        finally:
            env.psql("DROP TRIGGER flaky ON loan; DROP FUNCTION flaky(); "
                     "DROP SEQUENCE flaky_attempts")
        carrel("checkin", item)

    def test_seven_branches_racing(self):
        """7 branches x 3 desks race checkouts, checkins and renewals on shared items."""
        desks = []
        wsnames = {"DWN": ["desk-dwn", "desk-dwn-2"], "PRK": ["desk-prk"], "ALB": ["desk-alb"],
                   "BAR": ["desk-bar"], "CMP": ["desk-cmp"], "DWT": ["desk-dwt"],
                   "RPK": ["desk-rpk"]}
        for branch in BRANCHES:
            for k in range(3):
                ws = wsnames[branch][k % len(wsnames[branch])]
                desks.append(main.logged_in_wire(ws, "roamer", PASSWORD))
        items = [new_item(branch=random.choice(BRANCHES)) for _ in range(40)]
        patrons = [new_patron() for _ in range(12)]
        ops_per_desk = 100
        counts = {"ok": 0, "refused": 0, "conflict": 0, "not_found": 0}
        lock = threading.Lock()

        def desk(i):
            rnd = random.Random(i)
            w = desks[i]
            for _ in range(ops_per_desk):
                op = rnd.random()
                item = rnd.choice(items)
                card = rnd.choice(patrons)
                if op < 0.45:
                    r = w.call(REQ_CHECKOUT, pb_message((1, card), (2, item)),
                               key=str(uuid.uuid4()))
                elif op < 0.85:
                    r = w.call(REQ_CHECKIN, pb_message((1, item)), key=str(uuid.uuid4()))
                else:
                    r = w.call(REQ_RENEW, pb_message((1, card), (2, item)),
                               key=str(uuid.uuid4()))
                assert r is not None, "connection closed"
                assert r.status in counts, (r, r.message)
                with lock:
                    counts[r.status] += 1
            return True
        t0 = time.time()
        harness.run_parallel(desk, [(i,) for i in range(len(desks))])
        took = time.time() - t0
        for w in desks:
            w.close()
        total = sum(counts.values())
        self.assertEqual(total, len(desks) * ops_per_desk)
        self.assertGreater(counts["ok"], total // 3, counts)
        self.assertEqual(env.psql("SELECT count(*) FROM circ_invariants()"), "0",
                         env.psql("SELECT * FROM circ_invariants()"))
        # Every item's status matches its loans, and events match loans.
        self.assertEqual(env.psql("SELECT count(*) FROM item i WHERE (i.status = 'checked_out') "
                                  "<> EXISTS (SELECT 1 FROM loan l WHERE l.item_id = i.id AND "
                                  "l.returned_at IS NULL)"), "0")
        print("\n    %d operations by %d desks in %.1f s: %s" % (total, len(desks), took, counts),
              file=sys.stderr)


class Rules(unittest.TestCase):
    def test_policy_admin_only_and_listed(self):
        r = carrel("policy", "set", "--type", "book", "--days", "28")
        self.assertIn("forbidden", r.stderr)
        r = carrel("policy", "list")
        self.assertEqual(r.code, 0, r)
        default = [p for p in r.json["policies"] if not p["patron_category"] and
                   not p["item_type"] and not p["branch"]][0]
        self.assertEqual((default["loan_days"], default["renewals"], default["fine_cents_per_day"]),
                         (21, 2, 0))
        r = carrel("policy", "set", "--branch", "RPK", "--type", "book", "--days", "28",
                   user="admin")
        self.assertEqual(r.code, 0, r)
        rid = r.json["id"]
        # Most specific wins: branch beats category beats item type.
        self.assertEqual(env.psql("SELECT loan_days FROM circ_rule('adult', 'book', "
                                  "(SELECT id FROM branch WHERE code = 'RPK'))"), "28")
        self.assertEqual(env.psql("SELECT loan_days FROM circ_rule('adult', 'book', "
                                  "(SELECT id FROM branch WHERE code = 'DWN'))"), "21")
        self.assertEqual(carrel("policy", "set", "--remove", str(rid), user="admin").code, 0)

    def test_calendar_permissions(self):
        r = carrel("calendar", "close", "PRK", "2099-12-24", user="libby")
        self.assertIn("forbidden", r.stderr)
        r = carrel("calendar", "hours", "DWN", "1=09:00-17:00", user="clara")
        self.assertIn("forbidden", r.stderr)
        r = carrel("calendar", "show", "DWN")
        self.assertEqual(len(r.json["hours"]), 6, r)


def proxy_profile(proxy, user="clara", ws="desk-dwn"):
    """A profile that reaches the daemon through `proxy` (FaultProxy), which
    presents desk-dwn's certificate upstream."""
    pw = harness.ADMIN_PASSWORD if user == "admin" else PASSWORD
    return env.profile(types.SimpleNamespace(port=proxy.port), ws, user, pw, cert=False)


class FaultProxy:
    """TLS in front of the daemon, passing frames both ways, that spoils the
    first `times` OK answers to requests with body field `field` (a change the
    database has committed): mode "unavailable" answers UNAVAILABLE
    `database` in its place, mode "drop" closes the client's connection
    instead. What a database that commits and then fails, or a network that
    fails after the commit, looks like to a client."""

    def __init__(self, daemon, field, mode, times=1):
        self.daemon, self.field, self.mode, self.times = daemon, field, mode, times
        self.spoiled = 0
        self.connections = 0
        self.server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_ctx.load_cert_chain(env.tls("server.crt"), env.tls("server.key"))
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.listener.close()

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    @staticmethod
    def _frames(buf):
        out = []
        while len(buf) >= 4:
            (n,) = struct.unpack(">I", buf[:4])
            if len(buf) < 4 + n:
                break
            out.append(buf[:4 + n])
            buf = buf[4 + n:]
        return out, buf

    def _serve(self, raw):
        try:
            client = self.server_ctx.wrap_socket(raw, server_side=True)
            upstream = env.client_context("desk-dwn").wrap_socket(
                socket.create_connection(("127.0.0.1", self.daemon.port)),
                server_hostname="localhost")
        except (OSError, ssl.SSLError):
            raw.close()
            return
        with self.lock:
            self.connections += 1
        watched = set()
        bufs = {client: b"", upstream: b""}
        try:
            while True:
                ready = [s for s in (client, upstream) if s.pending()]
                if not ready:
                    ready, _, _ = select.select([client, upstream], [], [], 1.0)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    frames, bufs[s] = self._frames(bufs[s] + data)
                    for f in frames:
                        if s is client:
                            fields = harness.pb_decode(f[4:])
                            if self.field in fields:
                                watched.add(fields.get(1, [0])[0])
                            upstream.sendall(f)
                            continue
                        resp = harness.Response(f[4:])
                        with self.lock:
                            spoil = resp.id in watched and resp.status == "ok" and \
                                self.spoiled < self.times
                            if spoil:
                                self.spoiled += 1
                        if not spoil:
                            client.sendall(f)
                        elif self.mode == "drop":
                            return
                        else:
                            body = pb_message((1, resp.id), (2, 6), (4, "database"), (
                                3, "The database is unavailable; try again in a moment."))
                            client.sendall(struct.pack(">I", len(body)) + body)
        except (OSError, ssl.SSLError):
            return
        finally:
            for s in (client, upstream):
                try:
                    s.close()
                except OSError:
                    pass


def in_house_uses(item):
    return env.psql("SELECT in_house_uses FROM item WHERE barcode = '%s'" % item)


class Overrides(unittest.TestCase):
    """One rule for `override`, on every request that has it: only roles with
    the override permission may send it, refused or not."""

    def assertForbiddenOverride(self, r):
        self.assertEqual(r.code, 4, r)
        self.assertIn("forbidden (override)", r.stderr, r)

    def test_clerk_override_forbidden_even_when_nothing_is_refused(self):
        card, item = new_patron(), new_item()
        self.assertForbiddenOverride(checkout(card, item, "--override", "just because"))
        self.assertEqual(env.psql("SELECT status FROM item WHERE barcode = '%s'" % item),
                         "available")
        # Without the flag the same clerk lends it; a librarian's flag is ignored
        # when nothing is refused.
        self.assertEqual(checkout(card, item).code, 0)
        carrel("checkin", item)
        r = checkout(card, item, "--override", "nothing to override", user="libby")
        self.assertEqual((r.code, r.json[0].get("overridden", [])), (0, []), r)
        carrel("checkin", item)
        # Allowed to override, but without a reason: refused the same way on both.
        w = main.logged_in_wire("desk-dwn", "libby", PASSWORD)
        for req, body in ((REQ_CHECKOUT, pb_message((1, card), (2, item), (3, True), (4, " "))),
                          (REQ_RENEW, pb_message((1, card), (3, True)))):
            r = w.call(req, body, key=str(uuid.uuid4()))
            self.assertEqual((r.status, r.reason), ("bad_request", "field:override_reason"), r)
        w.close()
        self.assertEqual(env.psql("SELECT status FROM item WHERE barcode = '%s'" % item),
                         "available")

    def test_clerk_override_on_renew_forbidden(self):
        card, item = new_patron(), new_item()
        self.assertEqual(checkout(card, item).code, 0)
        env.psql("UPDATE loan SET due_at = now() + interval '1 day', renewals = 2 "
                 "WHERE returned_at IS NULL AND item_id = (SELECT id FROM item "
                 "WHERE barcode = '%s')" % item)
        # Refused by the limit: a clerk's override must not renew it...
        self.assertForbiddenOverride(carrel("renew", card, item, "--override", "please"))
        # ...nor be silently ignored on a renewal that would go through.
        env.psql("UPDATE loan SET renewals = 0 WHERE returned_at IS NULL AND item_id = "
                 "(SELECT id FROM item WHERE barcode = '%s')" % item)
        self.assertForbiddenOverride(carrel("renew", card, item, "--override", "please"))
        self.assertEqual(env.psql("SELECT renewals FROM loan WHERE returned_at IS NULL AND "
                                  "item_id = (SELECT id FROM item WHERE barcode = '%s')" % item),
                         "0")
        w = main.logged_in_wire("desk-dwn", "clara", PASSWORD)
        r = w.call(REQ_RENEW, pb_message((1, card), (3, True), (4, "please")),
                   key=str(uuid.uuid4()))
        self.assertEqual((r.status, r.reason), ("forbidden", "override"))
        w.close()
        r = carrel("renew", card, item, "--override", "homebound", user="libby")
        self.assertEqual(r.code, 0, r)
        self.assertTrue(r.json[0]["renewed"], r)
        carrel("checkin", item)


class ListLimits(unittest.TestCase):
    """Every list request's limit: absent is the default, 1 to the maximum is
    taken, 0, negative or over the maximum is BAD_REQUEST field:<name>."""

    def test_every_list_limit_follows_one_rule(self):
        card = new_patron()
        w = main.logged_in_wire()
        # (request field, body without the limit, limit field, reason, maximum)
        cases = [
            (40, [(1, "test")], 10, "field:limit", 100),           # CatalogSearch
            # MarcExport, after every record (this module's bibs have no real MARC)
            (46, [(1, 1 << 40)], 2, "field:limit", 500),
            (52, [(1, "Test")], 4, "field:limit", 100),            # PatronFind
            (55, [(1, card)], 2, "field:limit", 500),              # PatronHistory
            (85, [(1, card)], 2, "field:ledger_limit", 1000),      # AccountGet
            (129, [], 3, "field:limit", 1000),                     # NoticeList
        ]
        for req, body, field, reason, most in cases:
            for limit in (None, 1, most):
                r = w.call(req, pb_message(*body, (field, limit)))
                self.assertEqual(r.status, "ok", (req, limit, r))
            for limit in (0, -1, most + 1):
                r = w.call(req, pb_message(*body, (field, limit)))
                self.assertEqual((r.status, r.reason), ("bad_request", reason), (req, limit, r))
        w.close()


class Protocol(unittest.TestCase):
    def test_requests_behind_a_pending_login_are_refused_first(self):
        w = main.wire()
        self.assertEqual(w.hello().status, "ok")
        _, login = w.frame(harness.REQ_LOGIN, pb_message((1, "desk-dwn"), (2, "clara"),
                                                           (3, PASSWORD)))
        _, whoami = w.frame(harness.REQ_WHOAMI)
        w.send_raw(login + whoami)
        first, second = w.recv(), w.recv()
        self.assertEqual((first.id, first.status, first.reason),
                         (3, "unauthenticated", "login_required"))
        self.assertEqual((second.id, second.status), (2, "ok"))
        w.close()


class Desk(unittest.TestCase):
    def test_item_show_says_on_loan_and_due(self):
        card, item = new_patron(), new_item()
        due = checkout(card, item).json[0]
        r = carrel("item", "show", item)
        self.assertEqual(r.code, 0, r)
        self.assertEqual((r.json["on_loan"], r.json["due_date"], r.json["due_at"]),
                         (True, due["due_date"], due["due_at"]), r)
        text = env.carrel(env.profile(main, "desk-dwn", "clara", PASSWORD), "item", "show", item,
                          json_out=False)
        self.assertIn("on loan, due %s" % due["due_date"], text.stdout)
        self.assertNotIn("Patron", text.stdout)  # the copy, not who has it
        carrel("checkin", item)
        r = carrel("item", "show", item)
        self.assertFalse(r.json["on_loan"])
        self.assertNotIn("due_date", r.json)

    def test_renewal_that_moves_nothing_is_refused_and_not_counted(self):
        card, item = new_patron(), new_item()
        self.assertEqual(checkout(card, item).code, 0)
        for user, extra in (("clara", ()), ("libby", ("--override", "homebound"))):
            r = carrel("renew", card, item, *extra, user=user)
            self.assertEqual(r.code, 4, r)
            self.assertFalse(r.json[0]["renewed"])
            self.assertEqual((r.json[0]["reason"], r.json[0]["renewals"]),
                             ("renewal_no_change", 0), r)
            self.assertIn("no renewal used", r.json[0]["message"])
        self.assertEqual(env.psql("SELECT renewals FROM loan WHERE returned_at IS NULL AND "
                                  "item_id = (SELECT id FROM item WHERE barcode = '%s')" % item),
                         "0")
        carrel("checkin", item)

    def test_money_and_plurals(self):
        card = new_patron()
        prof = env.profile(main, "desk-dwn", "libby", PASSWORD)
        r = env.carrel(prof, "charge", card, "12.00", "--note", "card", json_out=False)
        self.assertEqual(r.stdout.strip(), "recorded charge of $12.00", r)
        r = env.carrel(prof, "pay", card, "5.00", json_out=False)
        self.assertEqual(r.stdout.strip(), "recorded payment of $5.00", r)
        r = env.carrel(prof, "account", card, json_out=False)
        self.assertIn("balance $7.00", r.stdout)
        self.assertIn("-$5.00", r.stdout)  # the ledger signs a payment
        carrel("waive", card, "7.00", "--note", "goodwill", user="libby")
        r = carrel("policy", "set", "--branch", "ALB", "--type", "reference", "--days", "1",
                   user="admin")
        self.assertEqual(r.code, 0, r)
        text = env.carrel(prof, "policy", "list", json_out=False).stdout
        carrel("policy", "set", "--remove", str(r.json["id"]), user="admin")
        self.assertRegex(text, r"\b1 day\b")
        self.assertNotRegex(text, r"\b1 days")
        self.assertIn("21 days", text)


class RequestKeys(unittest.TestCase):
    """Keyed commands retry with the same key, and take --request-key."""

    def test_request_key_option_applies_once(self):
        item = new_item()
        key = str(uuid.uuid4())
        for args in (("item", "use", item, "--request-key", key),
                     ("--request-key", key, "item", "use", item)):
            r = carrel(*args)
            self.assertEqual(r.code, 0, r)
        self.assertEqual(in_house_uses(item), "1")
        # Several changes in one command: the key, then the key plus one, ...
        a, b = new_item(), new_item()
        key = str(uuid.uuid4())
        for _ in range(2):
            self.assertEqual(carrel("item", "use", a, b, "--request-key", key.upper()).code, 0)
        self.assertEqual((in_house_uses(a), in_house_uses(b)), ("1", "1"))
        r = carrel("item", "use", a, "--request-key", "not-a-key")
        self.assertEqual(r.code, 2, r)

    def test_unavailable_after_commit_is_retried_with_the_same_key(self):
        item = new_item()
        proxy = FaultProxy(main, 84, "unavailable")  # InHouseUse
        try:
            r = env.carrel(proxy_profile(proxy), "item", "use", item)
        finally:
            proxy.close()
        self.assertEqual(proxy.spoiled, 1)
        self.assertEqual(r.code, 0, r)
        self.assertIn("sending again with the same request key", r.stderr)
        self.assertEqual(in_house_uses(item), "1")

    def test_lost_connection_after_commit_is_retried_with_the_same_key(self):
        card, item = new_patron(), new_item()
        proxy = FaultProxy(main, 80, "drop")  # Checkout
        try:
            r = env.carrel(proxy_profile(proxy), "checkout", card, item)
        finally:
            proxy.close()
        self.assertEqual(proxy.spoiled, 1)
        self.assertGreaterEqual(proxy.connections, 2)
        self.assertEqual(r.code, 0, r)  # not already_checked_out: the first answer again
        self.assertEqual(r.json[0]["barcode"], item)
        self.assertEqual(env.psql("SELECT count(*) FROM loan l JOIN item i ON i.id = l.item_id "
                                  "WHERE i.barcode = '%s'" % item), "1")
        carrel("checkin", item)

    def test_outcome_unknown_prints_the_key(self):
        item = new_item()
        proxy = FaultProxy(main, 84, "unavailable", times=1000)  # every answer
        key = str(uuid.uuid4())
        try:
            r = env.carrel(proxy_profile(proxy), "item", "use", item, "--request-key", key)
        finally:
            proxy.close()
        self.assertEqual(r.code, 4, r)
        self.assertIn("--request-key %s" % key, r.stderr)
        # Running it again with that key finishes it, applied once.
        self.assertEqual(carrel("item", "use", item, "--request-key", key).code, 0)
        self.assertEqual(in_house_uses(item), "1")

    def test_desk_resends_the_same_key_after_unavailable(self):
        card, item = new_patron(), new_item()
        proxy = FaultProxy(main, 80, "unavailable")  # the checkout commits, then "unavailable"
        try:
            r = env.carrel(proxy_profile(proxy, user="libby"), "desk", json_out=False,
                           input="%s\n%s\n\n" % (card, item), timeout=120)
        finally:
            proxy.close()
        self.assertEqual(proxy.spoiled, 1)
        self.assertEqual(r.code, 0, r)
        self.assertIn("again in 1 s with the same request key", r.stdout)
        self.assertRegex(r.stdout, r"(?m)^OK %s " % item)
        self.assertNotIn("already_checked_out", r.stdout)
        self.assertEqual(env.psql("SELECT count(*) FROM loan l JOIN item i ON i.id = l.item_id "
                                  "WHERE i.barcode = '%s'" % item), "1")
        carrel("checkin", item)


class ReasonStatuses(unittest.TestCase):
    """A reason keeps the status its SQL raised it with, the one the reason
    table (common/reason.h) gives it; not_on_loan is the one with two."""

    def test_not_on_loan_keeps_its_two_statuses(self):
        card, item = new_patron(), new_item()
        r = carrel("renew", card, item)  # Renew: not on loan to this patron
        self.assertEqual(r.code, 4, r)
        self.assertIn("not_found (not_on_loan)", r.stderr)
        r = carrel("item", "mark", item, "claims_returned")  # ItemMark: not checked out
        self.assertEqual(r.code, 4, r)
        self.assertEqual((r.json["status"], r.json["reason"]), ("conflict", "not_on_loan"), r)

    def test_refusal_status_comes_with_its_reason(self):
        card, item = new_patron(), new_item()
        checkout(card, item)
        r = carrel("item", "mark", item, "missing")
        self.assertEqual((r.code, r.json["status"], r.json["reason"]), (4, "conflict", "on_loan"),
                         r)
        carrel("checkin", item)


if __name__ == "__main__":
    harness.main()
