#!/usr/bin/env python3
"""Holds and transits: targeting, pull lists, capture at checkin, hold shelves,
transits, fairness, expiry, live events, and the races existing systems get wrong."""

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import pb_message  # noqa: E402

REQ_CHECKOUT, REQ_CHECKIN, REQ_HOLD_PLACE, REQ_HOLD_CHANGE, REQ_SUBSCRIBE = 80, 81, 120, 122, 131
REQ_ITEM_NOT_FOUND, RESP_ITEM = 125, 43
RESP_EVENT, RESP_CHECKIN, RESP_HOLD = 9, 81, 120
PASSWORD = "staff-password-123"
BRANCHES = ["ALB", "BAR", "CMP", "DWN", "DWT", "PRK", "RPK"]
WS = {"DWN": "desk-dwn", "PRK": "desk-prk", "ALB": "desk-alb", "BAR": "desk-bar",
      "CMP": "desk-cmp", "DWT": "desk-dwt", "RPK": "desk-rpk"}
env = None
main = None

def new_bib(title=None):
    return env.new_bib(title)


def new_item(bib, branch="DWN", item_type="book", status="available", location=""):
    return env.new_item(bib, branch=branch, item_type=item_type, status=status,
                        location=location)


def new_patron(category="adult", branch="DWN", contact="none"):
    return env.new_patron(category, branch, first="Holder", last="Number")


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        main = env.daemon(db_pool_size=8, max_inflight=256)
        admin = env.profile(main)
        env.add_workstations(admin, harness.BRANCH_DESKS)
        for user, role in [("roamer", "coordinator"), ("clara", "clerk"), ("libby", "librarian")]:
            env.add_staff(admin, user, role, "DWN", PASSWORD)
        # Branch preference: DWN pulls from PRK before ALB before the rest.
        env.psql("INSERT INTO branch_proximity (pickup_branch_id, branch_id, rank) "
                 "SELECT p.id, b.id, CASE b.code WHEN 'PRK' THEN 1 WHEN 'ALB' THEN 2 ELSE 9 END "
                 "FROM branch p, branch b WHERE p.code = 'DWN' AND b.code <> 'DWN'")
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    try:
        for check in ("circ_invariants", "hold_invariants"):
            rows = env.psql("SELECT count(*) FROM %s()" % check)
            assert rows == "0", env.psql("SELECT * FROM %s()" % check)
    finally:
        env.stop()


def carrel(*args, branch="DWN", user="roamer"):
    ws = WS[branch]
    return env.carrel(env.profile(main, ws, user, PASSWORD), *args)


def place(card, bib=None, item=None, pickup="DWN", *extra, **kw):
    args = ["hold", "place", card, "--pickup", pickup]
    args += ["--bib", str(bib)] if bib is not None else ["--item", item]
    r = carrel(*args, *extra, **kw)
    return r


def status(barcode):
    return env.psql("SELECT i.status || ' ' || b.code FROM item i JOIN branch b ON "
                    "b.id = i.current_branch_id WHERE i.barcode = '%s'" % barcode)


def hold_status(hold_id):
    return env.psql("SELECT status FROM hold WHERE id = %d" % hold_id)


def subscribe(branch):
    w = main.logged_in_wire(WS[branch], "roamer", PASSWORD)
    assert w.call(REQ_SUBSCRIBE).status == "ok"
    return w


def next_event(w, timeout=60):
    w.sock.settimeout(timeout)
    while True:
        r = w.recv()
        assert r is not None, "connection closed"
        if r.id == 0 and RESP_EVENT in r.fields:
            ev = r.body(RESP_EVENT)
            return {"kind": ev[1][0].decode(), "branch": ev[2][0].decode(),
                    "text": ev[3][0].decode()}


class Targeting(unittest.TestCase):
    def test_pickup_branch_copy_first_then_proximity(self):
        bib = new_bib()
        far = new_item(bib, "RPK")
        near = new_item(bib, "PRK")
        here = new_item(bib, "DWN")
        a, b, c = new_patron(), new_patron(), new_patron()
        ha = place(a, bib).json
        self.assertEqual((ha["status"], ha["position"]), ("waiting", 1))
        self.assertEqual(ha["target_barcode"], here)  # on the pickup branch's own shelf
        hb = place(b, bib).json
        self.assertEqual((hb["position"], hb["target_barcode"]), (2, near))  # PRK ranks first
        hc = place(c, bib).json
        self.assertEqual(hc["target_barcode"], far)
        pull = carrel("pull-list", branch="PRK").json
        self.assertEqual([e["barcode"] for e in pull["entries"] if e["hold_id"] == hb["id"]],
                         [near])
        queue = carrel("holds", "queue", str(bib)).json["holds"]
        self.assertEqual([h["id"] for h in queue], [ha["id"], hb["id"], hc["id"]])

    def test_not_found_and_new_copy_retarget_at_once(self):
        bib = new_bib()
        first = new_item(bib, "ALB")
        card = new_patron()
        h = place(card, bib).json
        self.assertEqual(h["target_barcode"], first)
        r = carrel("item", "not-found", first, branch="ALB")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(status(first), "missing ALB")
        h = carrel("hold", "list", card).json["holds"][0]
        self.assertNotIn("target_barcode", h)
        # A copy added to the catalog is asked for at once, not after a nightly batch.
        second = harness.mod10("3123481%06d" % random.randint(0, 999999))
        r = carrel("item", "add", second, "--bib", str(bib), "--branch", "DWN", user="libby")
        self.assertEqual(r.code, 0, r)
        h = carrel("hold", "list", card).json["holds"][0]
        self.assertEqual(h["target_barcode"], second)
        self.assertIn(second, [e["barcode"] for e in carrel("pull-list").json["entries"]])

    def test_item_level_hold_only_that_copy(self):
        bib = new_bib()
        one, two = new_item(bib, "DWN"), new_item(bib, "DWN")
        card = new_patron()
        h = place(card, item=two).json
        self.assertEqual((h["item_barcode"], h["target_barcode"]), (two, two))
        other = new_patron()
        checkout = carrel("checkout", other, one)
        self.assertEqual(checkout.code, 0)
        back = carrel("checkin", one).json[0]
        self.assertEqual(back["route"], "shelf")  # the item hold does not want this copy
        carrel("checkout", other, two)
        back = carrel("checkin", two).json[0]
        self.assertEqual(back["route"], "hold_shelf")

    def test_rules_for_placing(self):
        bib = new_bib()
        new_item(bib)
        card = new_patron()
        self.assertEqual(place(card, bib).code, 0)
        r = place(card, bib)
        self.assertEqual((r.code, r.json["reason"]), (4, "duplicate_hold"))
        env.psql("UPDATE patron_category SET max_holds = 1 WHERE code = 'juvenile'")
        kid = new_patron(category="juvenile")
        self.assertEqual(place(kid, bib).code, 0)
        other = new_bib()
        new_item(other)
        self.assertEqual(place(kid, other).json["reason"], "hold_limit")
        empty = new_bib()
        self.assertEqual(place(card, empty).json["reason"], "no_holdable_copies")
        expired = new_patron()
        env.psql("UPDATE patron SET expires_on = '2020-01-01' WHERE card = '%s'" % expired)
        self.assertEqual(place(expired, bib).json["reason"], "patron_expired")


class Capture(unittest.TestCase):
    def test_capture_here_goes_to_hold_shelf(self):
        bib = new_bib("The Capture at Home")
        copy = new_item(bib, "DWN")
        borrower, waiting = new_patron(), new_patron()
        carrel("checkout", borrower, copy)
        h = place(waiting, bib).json
        w = subscribe("DWN")
        back = carrel("checkin", copy).json[0]
        self.assertEqual((back["route"], back["hold_id"]), ("hold_shelf", h["id"]))
        self.assertIn("HOLD SHELF for Holder N.", back["message"])
        self.assertIn("card ending " + waiting[-4:], back["slip"])
        self.assertIn("Downtown Library", back["slip"])
        ev = next_event(w)
        self.assertEqual((ev["kind"], ev["branch"]), ("hold_captured", "DWN"))
        self.assertIn("The Capture at Home", ev["text"])
        w.close()
        self.assertEqual(status(copy), "on_hold_shelf DWN")
        held = carrel("hold", "list", waiting).json["holds"][0]
        self.assertEqual(held["status"], "ready")
        # Seven open days of Downtown (closed Sundays), not seven calendar days.
        self.assertEqual(held["shelf_expires_on"],
                         env.psql("SELECT branch_open_days_after(b.id, library_today(), 7)::text"
                                  " FROM branch b WHERE code = 'DWN'"))
        shelf = carrel("holds-shelf").json["entries"]
        self.assertIn(copy, [e["barcode"] for e in shelf])
        # The hold's patron takes it: the hold is filled; someone else is refused.
        other = new_patron()
        r = carrel("checkout", other, copy)
        self.assertIn("item_on_hold", r.stderr)
        self.assertIn("can be overridden", r.stderr)
        r = carrel("checkout", waiting, copy)
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json[0]["filled_hold_id"], h["id"])
        self.assertEqual(hold_status(h["id"]), "filled")
        carrel("checkin", copy)

    def test_capture_elsewhere_travels_and_arrives(self):
        bib = new_bib("The Long Way Round")
        copy = new_item(bib, "RPK")
        borrower, waiting = new_patron(), new_patron()
        carrel("checkout", borrower, copy, branch="RPK")
        h = place(waiting, bib, pickup="PRK").json
        w = subscribe("PRK")
        back = carrel("checkin", copy, branch="RPK").json[0]
        self.assertEqual((back["route"], back["destination_branch"]), ("transit", "PRK"))
        self.assertIn("ROUTE TO Park Street Branch at the Lyric for a hold", back["message"])
        ev = next_event(w)
        self.assertEqual((ev["kind"], ev["branch"]), ("transit_sent", "PRK"))
        self.assertEqual(hold_status(h["id"]), "in_transit")
        incoming = carrel("transit", "list", "--incoming", branch="PRK").json["transits"]
        self.assertIn(copy, [t["barcode"] for t in incoming])
        # Scanned at Albany on the way: same transit, same destination.
        fwd = carrel("checkin", copy, branch="ALB").json[0]
        self.assertEqual((fwd["route"], fwd["destination_branch"]), ("transit", "PRK"))
        self.assertEqual(env.psql("SELECT count(*) FROM transit t JOIN item i ON i.id = t.item_id "
                                  "WHERE i.barcode = '%s' AND t.cancelled_at IS NULL" % copy), "1")
        arrived = carrel("checkin", copy, branch="PRK").json[0]
        self.assertEqual(arrived["route"], "hold_shelf")
        self.assertIn("Arrived", arrived["message"])
        self.assertEqual(hold_status(h["id"]), "ready")
        self.assertEqual(status(copy), "on_hold_shelf PRK")
        ev = next_event(w)
        self.assertEqual(ev["kind"], "hold_captured")
        w.close()

    def test_queue_is_first_come_first_served(self):
        bib = new_bib()
        copies = [new_item(bib, "DWN") for _ in range(3)]
        borrower = new_patron()
        for c in copies:
            carrel("checkout", borrower, c)
        patrons = [new_patron() for _ in range(3)]
        holds = [place(p, bib).json["id"] for p in patrons]
        for c in reversed(copies):
            carrel("checkin", c)
        captured = env.psql("SELECT string_agg(h.id::text, ',' ORDER BY i.barcode DESC) FROM hold h "
                            "JOIN item i ON i.id = h.captured_item_id WHERE h.bib_id = %d" % bib)
        self.assertEqual(captured, ",".join(str(h) for h in holds))

    def test_suspended_keeps_place_and_is_skipped(self):
        bib = new_bib()
        copy = new_item(bib, "DWN")
        borrower, first, second = new_patron(), new_patron(), new_patron()
        carrel("checkout", borrower, copy)
        h1 = place(first, bib).json["id"]
        h2 = place(second, bib).json["id"]
        until = env.psql("SELECT (library_today() + 10)::text")
        r = carrel("hold", "suspend", str(h1), "--until", until)
        self.assertEqual(r.json["suspended_until"], until)
        back = carrel("checkin", copy).json[0]
        self.assertEqual(back["hold_id"], h2)
        self.assertEqual(carrel("hold", "activate", str(h1)).json["position"], 1)

    def test_local_first_policy_is_bounded(self):
        env.psql("UPDATE library_setting SET value = 'local_first' WHERE name = 'hold_policy'")
        env.psql("UPDATE library_setting SET value = '1' WHERE name = 'hold_max_skips'")
        try:
            bib = new_bib()
            copies = [new_item(bib, "DWT") for _ in range(3)]
            borrower = new_patron()
            for c in copies:
                carrel("checkout", borrower, c, branch="DWT")
            far = place(new_patron(), bib, pickup="RPK").json["id"]
            near1 = place(new_patron(), bib, pickup="DWT").json["id"]
            near2 = place(new_patron(), bib, pickup="DWT").json["id"]
            # First copy in at Dwight: the local hold goes first, passing the RPK hold once.
            self.assertEqual(carrel("checkin", copies[0], branch="DWT").json[0]["hold_id"], near1)
            # The RPK hold has now been passed over the most allowed: it is served next.
            self.assertEqual(carrel("checkin", copies[1], branch="DWT").json[0]["hold_id"], far)
            self.assertEqual(carrel("checkin", copies[2], branch="DWT").json[0]["hold_id"], near2)
        finally:
            env.psql("UPDATE library_setting SET value = 'fifo' WHERE name = 'hold_policy'")
            env.psql("UPDATE library_setting SET value = '3' WHERE name = 'hold_max_skips'")


class ShelfAndTransits(unittest.TestCase):
    def test_expiry_clearing_list_and_next_hold(self):
        bib = new_bib("Expiring Title")
        copy = new_item(bib, "DWN")
        borrower, first, second = new_patron(), new_patron(), new_patron()
        carrel("checkout", borrower, copy)
        h1 = place(first, bib).json["id"]
        h2 = place(second, bib).json["id"]
        self.assertEqual(carrel("checkin", copy).json[0]["hold_id"], h1)
        env.psql("UPDATE hold SET shelf_expires_on = library_today() - 1 WHERE id = %d" % h1)
        expired = env.psql("SELECT expired_holds FROM holds_daily()")
        self.assertEqual(expired, "1")
        self.assertEqual(hold_status(h1), "expired")
        clearing = carrel("holds-shelf", "--clearing").json["entries"]
        self.assertEqual([e["barcode"] for e in clearing if e["barcode"] == copy], [copy])
        back = carrel("checkin", copy).json[0]
        self.assertEqual(back["hold_id"], h2)
        self.assertNotIn(copy, [e["barcode"] for e in
                                carrel("holds-shelf", "--clearing").json["entries"]])

    def test_cancel_needs_reason_and_frees_the_copy(self):
        bib = new_bib()
        copy = new_item(bib, "DWN")
        borrower, waiting = new_patron(), new_patron()
        carrel("checkout", borrower, copy)
        h = place(waiting, bib).json["id"]
        carrel("checkin", copy)
        r = carrel("hold", "cancel", str(h))
        self.assertEqual(r.code, 2)  # usage: the reason is required
        w = main.logged_in_wire("desk-dwn", "roamer", PASSWORD)
        r = w.call(REQ_HOLD_CHANGE, pb_message((1, h), (2, "cancel")), key=str(uuid.uuid4()))
        self.assertEqual((r.status, r.reason), ("bad_request", "field:reason"))
        w.close()
        r = carrel("hold", "cancel", str(h), "--reason", "patron called: no longer needed")
        self.assertEqual(r.json["status"], "cancelled")
        self.assertIn(copy, [e["barcode"] for e in carrel("holds-shelf", "--clearing").json["entries"]])
        self.assertEqual(carrel("checkin", copy).json[0]["route"], "shelf")

    def test_closed_holds_forget_the_patron_unless_kept(self):
        """As with loans: who asked for a title is forgotten when the hold ends."""
        bib = new_bib()
        copy = new_item(bib, "DWN")
        private, keeper = new_patron(), new_patron()
        env.psql("UPDATE patron SET keep_history = true WHERE card = '%s'" % keeper)
        h1 = place(private, bib).json["id"]
        h2 = place(keeper, bib).json["id"]
        self.assertEqual(carrel("checkin", copy).json[0]["route"], "hold_shelf")  # for `private`
        self.assertEqual(carrel("checkout", private, copy).code, 0)  # fills h1
        self.assertEqual(env.psql("SELECT status, patron_id IS NULL FROM hold WHERE id = %d" % h1),
                         "filled|t")
        listed = carrel("hold", "list", private, "--all").json["holds"]
        self.assertNotIn(h1, [h["id"] for h in listed])
        r = carrel("hold", "cancel", str(h2), "--reason", "found a copy elsewhere")
        self.assertEqual(r.json["status"], "cancelled")
        self.assertEqual(env.psql("SELECT status, patron_id IS NULL FROM hold WHERE id = %d" % h2),
                         "cancelled|f")
        listed = carrel("hold", "list", keeper, "--all").json["holds"]
        self.assertIn(h2, [h["id"] for h in listed])
        carrel("checkin", copy)

    def test_transit_cancel_and_overdue(self):
        bib = new_bib()
        copy = new_item(bib, "PRK")
        card = new_patron()
        carrel("checkout", card, copy)
        self.assertEqual(carrel("checkin", copy).json[0]["route"], "transit")  # home to PRK
        out = carrel("transit", "list", "--outgoing").json["transits"]
        self.assertIn(copy, [t["barcode"] for t in out])
        env.psql("UPDATE transit SET sent_at = now() - interval '9 days' WHERE item_id = "
                 "(SELECT id FROM item WHERE barcode = '%s')" % copy)
        overdue = carrel("transit", "list", "--overdue").json["transits"]
        self.assertTrue([t for t in overdue if t["barcode"] == copy and t["overdue"]])
        r = carrel("transit", "cancel", copy)
        self.assertEqual(r.code, 0, r)
        self.assertEqual(status(copy), "available DWN")

    def test_floating_collection_stays(self):
        env.psql("INSERT INTO floating_location VALUES ('Floating Fiction') ON CONFLICT DO NOTHING")
        bib = new_bib()
        copy = new_item(bib, "PRK", location="Floating Fiction")
        card = new_patron()
        carrel("checkout", card, copy)
        back = carrel("checkin", copy, branch="BAR").json[0]
        self.assertEqual(back["route"], "shelf")
        self.assertEqual(status(copy), "available BAR")

    def test_hold_blocks_renewal_and_shows_on_account(self):
        bib = new_bib()
        copy = new_item(bib, "DWN")
        reader, waiting = new_patron(), new_patron()
        carrel("checkout", reader, copy)
        h = place(waiting, bib).json
        r = carrel("renew", reader, copy)
        self.assertEqual(r.json[0]["reason"], "renewal_hold")
        acc = carrel("account", waiting).json
        self.assertEqual([(x["id"], x["status"], x["position"]) for x in acc["holds"]],
                         [(h["id"], "waiting", 1)])

    def test_merge_moves_holds(self):
        bib = new_bib()
        new_item(bib)
        other = new_bib()
        new_item(other)
        keep, dup = new_patron(), new_patron()
        kept = place(keep, bib).json["id"]
        twin = place(dup, bib).json["id"]
        moved = place(dup, other).json["id"]
        r = carrel("patron", "merge", keep, dup, user="libby")
        self.assertEqual(r.code, 0, r)
        holds = carrel("hold", "list", keep).json["holds"]
        self.assertEqual(sorted(h["id"] for h in holds), sorted([kept, moved]))
        self.assertEqual(env.psql("SELECT status, cancel_reason FROM hold WHERE id = %d" % twin),
                         "cancelled|merged: duplicate of hold %d" % kept)


class EdgeCases(unittest.TestCase):
    def test_merge_keeps_the_hold_further_along(self):
        """The duplicate's hold is on the shelf: it stays, the kept record's waiting one goes."""
        bib = new_bib()
        copy = new_item(bib, "DWN")
        keep, dup = new_patron(), new_patron()
        on_shelf = place(dup, bib).json["id"]
        self.assertEqual(carrel("checkin", copy).json[0]["route"], "hold_shelf")
        waiting = place(keep, bib).json["id"]
        r = carrel("patron", "merge", keep, dup, user="libby")
        self.assertEqual(r.code, 0, r)
        holds = carrel("hold", "list", keep).json["holds"]
        self.assertEqual([(h["id"], h["status"]) for h in holds], [(on_shelf, "ready")])
        self.assertEqual(env.psql("SELECT status, cancel_reason FROM hold WHERE id = %d" % waiting),
                         "cancelled|merged: duplicate of hold %d" % on_shelf)
        self.assertEqual(carrel("checkout", keep, copy).code, 0)  # fills the kept hold

    def test_item_holds_need_a_holdable_copy_and_block_its_renewal(self):
        bib = new_bib()
        withdrawn = new_item(bib, "DWN", status="withdrawn")
        lent = new_item(bib, "DWN")
        reader, waiting = new_patron(), new_patron()
        r = place(waiting, item=withdrawn)
        self.assertEqual((r.code, r.json["reason"]), (4, "no_holdable_copies"), r)
        self.assertIn(withdrawn, r.json["message"])
        carrel("checkout", reader, lent)
        self.assertEqual(place(waiting, item=lent).code, 0)
        self.assertEqual(carrel("renew", reader, lent).json[0]["reason"], "renewal_hold")

    def test_unknown_card_and_wrong_branch(self):
        r = carrel("hold", "list", harness.mod10("2999999000001"))
        self.assertEqual((r.code, r.json["reason"]), (4, "patron_not_found"), r)
        bib = new_bib()
        copy = new_item(bib, "PRK")
        r = carrel("item", "not-found", copy)  # a Downtown desk, a Park Street copy
        self.assertEqual((r.code, r.json["reason"]), (4, "not_here"), r)
        self.assertEqual(status(copy), "available PRK")

    def test_cancelled_forwarded_transit_stays_where_it_is(self):
        bib = new_bib()
        copy = new_item(bib, "PRK")
        carrel("checkout", new_patron(), copy)
        self.assertEqual(carrel("checkin", copy).json[0]["route"], "transit")  # DWN to PRK
        self.assertEqual(carrel("checkin", copy, branch="BAR").json[0]["route"], "transit")
        self.assertEqual(carrel("transit", "cancel", copy, branch="BAR").code, 0)
        self.assertEqual(status(copy), "available BAR")

    def test_hold_cancelled_in_transit_is_no_invariant_problem(self):
        bib = new_bib()
        copy = new_item(bib, "DWN")
        h = place(new_patron(), bib, pickup="PRK").json["id"]
        self.assertEqual(carrel("checkin", copy).json[0]["route"], "transit")
        carrel("hold", "cancel", str(h), "--reason", "moved away")
        self.assertEqual(env.psql("SELECT count(*) FROM hold_invariants()"), "0",
                         env.psql("SELECT * FROM hold_invariants()"))
        self.assertEqual(carrel("checkin", copy, branch="PRK").json[0]["route"], "transit")  # home

    def test_hold_filled_by_another_copy_while_one_travels(self):
        bib = new_bib()
        far, near = new_item(bib, "PRK"), new_item(bib, "DWN", status="in_processing")
        card = new_patron()
        place(card, bib)  # pickup DWN
        self.assertEqual(carrel("checkin", far, branch="PRK").json[0]["route"], "transit")
        env.psql("UPDATE item SET status = 'available' WHERE barcode = '%s'" % near)
        r = carrel("checkout", card, near)  # the patron came in and took the copy here
        self.assertEqual(r.code, 0, r)
        self.assertEqual(env.psql("SELECT count(*) FROM hold_invariants()"), "0",
                         env.psql("SELECT * FROM hold_invariants()"))
        back = carrel("checkin", far).json[0]  # arrives at DWN: nobody waits, home to PRK
        self.assertEqual(back["route"], "transit")
        carrel("checkin", near)

    def test_repeated_not_found_answers_for_its_first_copy(self):
        bib = new_bib()
        first, second = new_item(bib, "DWN"), new_item(bib, "DWN")
        w = main.logged_in_wire("desk-dwn", "roamer", PASSWORD)
        key = str(uuid.uuid4())
        a = w.call(REQ_ITEM_NOT_FOUND, pb_message((1, first)), key=key)
        b = w.call(REQ_ITEM_NOT_FOUND, pb_message((1, second)), key=key)
        w.close()
        self.assertEqual((a.status, b.status), ("ok", "ok"))
        self.assertEqual(b.body(RESP_ITEM)[2][0].decode(), first)
        self.assertEqual((status(first), status(second)), ("missing DWN", "available DWN"))

    def test_options_are_not_barcodes(self):
        for args in [("account", "--bogus"), ("item", "not-found", "--bogus"),
                     ("transit", "cancel", "-x"), ("patron", "show", "--card"),
                     ("item", "show", "--all")]:
            r = carrel(*args)
            self.assertEqual(r.code, 2, (args, r))

    def test_retried_change_answers_for_its_own_hold(self):
        bib, other = new_bib(), new_bib()
        new_item(bib), new_item(other)
        card = new_patron()
        h1, h2 = place(card, bib).json["id"], place(card, other).json["id"]
        w = main.logged_in_wire("desk-dwn", "roamer", PASSWORD)
        key = str(uuid.uuid4())
        r = w.call(REQ_HOLD_CHANGE, pb_message((1, h1), (2, "suspend"), (4, "2099-01-01")), key=key)
        self.assertEqual(r.status, "ok", r)
        r = w.call(REQ_HOLD_CHANGE, pb_message((1, h2), (2, "suspend"), (4, "2099-01-01")), key=key)
        self.assertEqual(r.body(RESP_HOLD)[1], [h1])  # the first answer, not hold h2
        w.close()
        self.assertEqual(env.psql("SELECT suspended_until IS NULL FROM hold WHERE id = %d" % h2), "t")


class Events(unittest.TestCase):
    def test_logout_ends_the_subscription(self):
        """Whoever logs in next on a connection gets no events they did not ask for."""
        w = subscribe("DWN")
        control = subscribe("DWN")
        self.assertEqual(w.call(harness.REQ_LOGOUT).status, "ok")
        self.assertEqual(w.login(WS["DWN"], "roamer", PASSWORD).status, "ok")
        bib = new_bib("Events after logout")
        new_item(bib, "DWN")  # on the shelf: a hold placed tells Downtown
        place(new_patron(), bib, pickup="PRK")
        self.assertEqual(next_event(control)["kind"], "hold_placed")
        # Events go out to every desk in one turn of the loop: had `w` been
        # subscribed, its event would come before the answer to this ping.
        rid = w.send(harness.REQ_PING, b"")
        while True:
            r = w.recv()
            self.assertIsNotNone(r)
            self.assertNotEqual(r.id, 0, "an event reached a desk that did not subscribe")
            if r.id == rid:
                break
        w.close()
        control.close()


class Races(unittest.TestCase):
    def test_double_scan_captures_once(self):
        bib = new_bib()
        copy = new_item(bib, "RPK")
        borrower = new_patron()
        carrel("checkout", borrower, copy, branch="RPK")
        holds = [place(new_patron(), bib, pickup="PRK").json["id"] for _ in range(2)]
        wires = [main.logged_in_wire(WS[b], "roamer", PASSWORD) for b in ("RPK", "RPK", "ALB")]
        barrier = threading.Barrier(3)

        def scan(i):
            barrier.wait()
            return wires[i].call(REQ_CHECKIN, pb_message((1, copy)), key=str(uuid.uuid4()))
        results = harness.run_parallel(scan, [(0,), (1,), (2,)])
        self.assertTrue(all(r.status == "ok" for r in results), results)
        self.assertEqual(env.psql("SELECT count(*) FROM hold WHERE captured_item_id = "
                                  "(SELECT id FROM item WHERE barcode = '%s')" % copy), "1")
        self.assertEqual(hold_status(holds[0]), "in_transit")
        self.assertEqual(hold_status(holds[1]), "waiting")
        self.assertEqual(env.psql("SELECT count(*) FROM transit t JOIN item i ON i.id = t.item_id "
                                  "WHERE i.barcode = '%s' AND t.received_at IS NULL AND "
                                  "t.cancelled_at IS NULL" % copy), "1")
        for w in wires:
            w.close()

    def test_seven_branches_one_popular_title(self):
        """Copies come back at all seven branches at once while holds come and go."""
        bib = new_bib("The Popular Title")
        copies = {b: [new_item(bib, b) for _ in range(2)] for b in BRANCHES}
        borrower = new_patron()
        for b, items in copies.items():
            for c in items:
                self.assertEqual(carrel("checkout", borrower, c, branch=b).code, 0)
        patrons = [new_patron() for _ in range(18)]
        holds = []
        for i, p in enumerate(patrons[:12]):
            holds.append(place(p, bib, pickup=BRANCHES[i % 7]).json["id"])
        desks = {b: main.logged_in_wire(WS[b], "roamer", PASSWORD) for b in BRANCHES}
        clerk = main.logged_in_wire("desk-dwn-2", "roamer", PASSWORD)
        barrier = threading.Barrier(8)
        placed, cancelled = [], []

        def branch_desk(b):
            barrier.wait()
            out = []
            for c in copies[b]:
                r = desks[b].call(REQ_CHECKIN, pb_message((1, c)), key=str(uuid.uuid4()))
                assert r.status == "ok", r
                out.append(r)
            return out

        def hold_desk():
            barrier.wait()
            for p in patrons[12:15]:
                r = clerk.call(REQ_HOLD_PLACE, pb_message((1, p), (2, bib)),
                               key=str(uuid.uuid4()))
                assert r.status == "ok", r
                placed.append(r.body(120)[1][0])
            for h in holds[9:11]:
                r = clerk.call(REQ_HOLD_CHANGE, pb_message((1, h), (2, "cancel"),
                                                           (3, "changed mind")),
                               key=str(uuid.uuid4()))
                assert r.status in ("ok", "conflict"), r
                if r.status == "ok":
                    cancelled.append(h)
            return True

        jobs = [(lambda b=b: branch_desk(b)) for b in BRANCHES] + [hold_desk]
        harness.run_parallel(lambda f: f(), [(f,) for f in jobs])
        for w in list(desks.values()) + [clerk]:
            w.close()

        # Queue order: the captured holds are exactly the earliest live holds.
        live = env.psql("SELECT string_agg(id::text, ',' ORDER BY placed_at, id) FROM hold "
                        "WHERE bib_id = %d AND status <> 'cancelled'" % bib).split(",")
        captured = env.psql("SELECT string_agg(id::text, ',' ORDER BY placed_at, id) FROM hold "
                            "WHERE bib_id = %d AND status IN ('ready', 'in_transit')" % bib)
        captured = captured.split(",") if captured else []
        # A copy already sent on its way for a hold that is then cancelled travels on
        # (it is routed again when it arrives): it cannot be captured for another yet.
        # Whether a cancel comes before or after its copy's checkin is up to timing.
        travelling = int(env.psql("SELECT count(*) FROM hold WHERE bib_id = %d AND status ="
                                  " 'cancelled' AND captured_item_id IS NOT NULL" % bib))
        self.assertEqual(len(captured), min(14 - travelling, len(live)))
        self.assertEqual(captured, live[:len(captured)])
        # No copy assigned twice; every transit heads for its hold's pickup branch.
        self.assertEqual(env.psql("SELECT count(*) - count(DISTINCT captured_item_id) FROM hold "
                                  "WHERE bib_id = %d AND status IN ('ready', 'in_transit')" % bib),
                         "0")
        self.assertEqual(env.psql("SELECT count(*) FROM hold_invariants()"), "0",
                         env.psql("SELECT * FROM hold_invariants()"))
        # Deliver: every transit ends at the right branch, then each patron collects.
        for hid in captured:
            row = env.psql("SELECT i.barcode || ' ' || pb.code || ' ' || h.status || ' ' || p.card "
                           "FROM hold h JOIN item i ON i.id = h.captured_item_id "
                           "JOIN branch pb ON pb.id = h.pickup_branch_id "
                           "JOIN patron p ON p.id = h.patron_id WHERE h.id = %s" % hid)
            barcode, pickup, st, card = row.split()
            if st == "in_transit":
                got = carrel("checkin", barcode, branch=pickup).json[0]
                self.assertEqual(got["route"], "hold_shelf", got)
            r = carrel("checkout", card, barcode, branch=pickup)
            self.assertEqual(r.code, 0, r)
            self.assertEqual(str(r.json[0]["filled_hold_id"]), hid)
        filled = env.psql("SELECT count(*) FROM hold WHERE bib_id = %d AND status = 'filled'" % bib)
        self.assertEqual(int(filled), len(captured))
        self.assertEqual(env.psql("SELECT count(*) FROM circ_invariants()"), "0")


class EventsCommand(unittest.TestCase):
    """`carrel events` on a quiet connection: keepalive, pongs, signals."""

    def start_events(self, daemon, *args):
        prof = env.profile(daemon, "desk-dwn", "roamer", PASSWORD)
        e = dict(os.environ)
        e.pop("CARREL_PASSWORD", None)
        proc = subprocess.Popen([harness.CARREL, "-c", prof, "events"] + list(args),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
        lines = queue.Queue()

        def read():
            for line in proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()

        def cleanup():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            reader.join(5)
            proc.stdout.close()
            proc.stderr.close()
        self.addCleanup(cleanup)
        return proc, lines

    def expect(self, lines, pattern, timeout=60):
        deadline = time.time() + timeout
        seen = []
        while time.time() < deadline:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            if pattern in line:
                return line
        self.fail("no line with %r; saw %r" % (pattern, seen))

    def finish(self, proc, sig, timeout):
        """Send `sig`; the command must exit 0 within `timeout` with no sanitizer report."""
        start = time.monotonic()
        proc.send_signal(sig)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail("carrel events did not stop within %s s of signal %d" % (timeout, sig))
        took = time.monotonic() - start
        err = proc.stderr.read()
        for mark in harness.SANITIZER_MARKS:
            self.assertNotIn(mark, err)
        self.assertEqual(code, 0, err)
        return took

    def test_keepalive_outlives_the_idle_timeout(self):
        d = env.daemon(idle_timeout_s=4)
        try:
            title = "Quiet events title %d" % time.time_ns()
            bib = new_bib(title)
            new_item(bib, "DWN")  # on the shelf here: a hold elsewhere asks DWN for it
            card = new_patron(branch="PRK")
            proc, lines = self.start_events(d, "--keepalive", "1")
            self.expect(lines, "Listening for events")
            # Wait until a connection opened after it, that stays quiet, has been closed
            # as idle: the listener has been quiet at least as long.
            probe = d.logged_in_wire()
            self.assertTrue(probe.closed_by_server(120))
            self.assertIsNone(proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
            r = env.carrel(env.profile(d, "desk-prk", "roamer", PASSWORD), "hold", "place", card,
                           "--bib", str(bib), "--pickup", "PRK")
            self.assertEqual(r.code, 0, r)
            line = self.expect(lines, title)
            self.assertTrue(line.startswith("[DWN] "), line)
            self.finish(proc, signal.SIGTERM, timeout=90)
            self.assertEqual(d.log_text().count("closing idle connection"), 1)  # the probe
        finally:
            d.stop()

    def test_signals_stop_a_quiet_listener_at_once(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            proc, lines = self.start_events(main, "--all")
            self.expect(lines, "Listening for events")
            took = self.finish(proc, sig, timeout=90)
            # Within a tick (1 s), not at the next keepalive (60 s); the margin is for a
            # busy machine.
            self.assertLess(took, 30)

    def test_keepalive_option_is_checked(self):
        for bad in ("0", "3601", "x"):
            r = carrel("events", "--keepalive", bad)
            self.assertEqual(r.code, 2, r)
        r = carrel("events", "stray")
        self.assertEqual(r.code, 2, r)


class CommandLines(unittest.TestCase):
    """Command lines refused with a usage error, and text output for people."""

    def text(self, *args, branch="DWN", user="roamer"):
        return env.carrel(env.profile(main, WS[branch], user, PASSWORD), *args, json_out=False)

    def test_unknown_options_and_extra_arguments_are_usage_errors(self):
        for args in (["pull-list", "--clearing"], ["pull-list", "stray"],
                     ["pull-list", "--bogus"],
                     ["holds-shelf", "stray"], ["holds-shelf", "--clearing", "stray"],
                     ["holds-shelf", "--bogus"],
                     ["transit", "list", "stray"], ["transit", "list", "--incoming", "stray"],
                     ["transit", "list", "--bogus"]):
            r = carrel(*args)
            self.assertEqual(r.code, 2, (args, r))
            self.assertIn("usage", r.stderr, (args, r))
        # The same commands, used rightly, still work.
        self.assertEqual(carrel("pull-list", "--branch", "DWN").code, 0)
        self.assertEqual(carrel("holds-shelf", "--clearing", "--branch", "DWN").code, 0)
        self.assertEqual(carrel("transit", "list", "--incoming", "--branch", "DWN").code, 0)

    def test_holds_shelf_heads_the_status_column(self):
        bib = new_bib("Shelf Heading Title")
        copy = new_item(bib, "DWN")
        borrower, waiting = new_patron(), new_patron()
        carrel("checkout", borrower, copy)
        h = place(waiting, bib).json["id"]
        self.assertEqual(carrel("checkin", copy).json[0]["hold_id"], h)
        r = self.text("holds-shelf")
        self.assertEqual(r.code, 0, r)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["Barcode", "Title", "Patron", "Card", "Until",
                                            "Status"])
        row = [line for line in lines if line.startswith(copy)]
        self.assertEqual(len(row), 1, lines)
        self.assertTrue(row[0].endswith("ready"), row)

    def test_text_tables_are_freed(self):
        """account and policy list print tables and free them (LeakSanitizer watches)."""
        copy = new_item(new_bib("Account Loan Title"), "DWN")
        card = new_patron()
        self.assertEqual(carrel("checkout", card, copy).code, 0)
        r = carrel("charge", card, "1.50", "--note", "replacement card", user="libby")
        self.assertEqual(r.code, 0, r)
        r = self.text("account", card)
        self.assertEqual(r.code, 0, r)
        self.assertIn(copy + "  Account Loan Title", r.stdout)
        self.assertIn("replacement card", r.stdout)
        carrel("checkin", copy)
        r = self.text("policy", "list")
        self.assertEqual(r.code, 0, r)

    def test_account_text_shows_holds(self):
        bib = new_bib("Account Holds Waiting Title")
        copy = new_item(bib, "DWN")
        other = new_bib("Account Holds Ready Title")
        ready_copy = new_item(other, "DWN")
        borrower, first, card = new_patron(), new_patron(), new_patron()
        carrel("checkout", borrower, copy)
        carrel("checkout", borrower, ready_copy)
        place(first, bib)
        place(card, bib, pickup="PRK")  # second in the queue
        ready = place(card, other).json["id"]
        self.assertEqual(carrel("checkin", ready_copy).json[0]["hold_id"], ready)
        holds = carrel("hold", "list", card).json["holds"]
        until = [h for h in holds if h["id"] == ready][0]["shelf_expires_on"]
        r = self.text("account", card)
        self.assertEqual(r.code, 0, r)
        lines = r.stdout.splitlines()
        waiting = [line for line in lines if "Account Holds Waiting Title" in line]
        self.assertEqual(len(waiting), 1, r.stdout)
        self.assertRegex(waiting[0], r"Account Holds Waiting Title\s+PRK\s+waiting\s+#2 in queue$")
        shelf = [line for line in lines if "Account Holds Ready Title" in line]
        self.assertEqual(len(shelf), 1, r.stdout)
        self.assertRegex(shelf[0], r"Account Holds Ready Title\s+DWN\s+ready\s+on the shelf "
                                   r"until %s$" % until)


def assert_consistent(test):
    """Neither invariant check reports anything."""
    for check in ("hold_invariants", "circ_invariants"):
        test.assertEqual(env.psql("SELECT count(*) FROM %s()" % check), "0",
                         env.psql("SELECT * FROM %s()" % check))


def on_shelf_for(bib, copy, branch="DWN"):
    """A waiting hold (pickup `branch`) whose copy has just gone onto that hold shelf."""
    card = new_patron()
    h = place(card, bib, pickup=branch).json["id"]
    back = carrel("checkin", copy, branch=branch).json[0]
    assert (back["route"], back["hold_id"]) == ("hold_shelf", h), back
    return card, h


def hold_row(card):
    return carrel("hold", "list", card).json["holds"][0]


def incoming(branch):
    return [t["barcode"] for t in carrel("transit", "list", "--incoming",
                                         branch=branch).json["transits"]]


class SettlingHolds(unittest.TestCase):
    """Whatever changes a copy set aside for a hold, the hold follows (issue 8, 23-25)."""

    def test_every_status_change_of_a_shelf_copy_requeues_its_hold(self):
        ways = [
            ("lost", lambda c: carrel("item", "mark", c, "lost"),
             lambda c: carrel("item", "mark", c, "found")),
            ("missing", lambda c: carrel("item", "mark", c, "missing"),
             lambda c: carrel("item", "edit", c, "--status", "available", user="libby")),
            ("damaged", lambda c: carrel("item", "mark", c, "damaged"),
             lambda c: carrel("item", "mark", c, "found")),
            # Not through any request: an import or a hand-made SQL change.
            ("withdrawn", lambda c: env.psql("UPDATE item SET status = 'withdrawn' "
                                             "WHERE barcode = '%s'" % c),
             lambda c: env.psql("UPDATE item SET status = 'available' "
                                "WHERE barcode = '%s'" % c)),
        ]
        for name, change, undo in ways:
            with self.subTest(name):
                bib = new_bib("Settled When %s" % name.title())
                copy = new_item(bib, "DWN")
                card, h = on_shelf_for(bib, copy)
                spare = new_item(bib, "PRK")  # a copy the hold can ask for instead
                w = subscribe("DWN")
                r = change(copy)
                self.assertNotEqual(getattr(r, "code", 0), 4, r)
                ev = next_event(w)
                w.close()
                self.assertEqual(ev["kind"], "hold_released", ev)
                self.assertIn("Off the hold shelf: Settled When %s for Holder N." % name.title(),
                              ev["text"])
                held = hold_row(card)
                self.assertEqual((held["id"], held["status"], held["position"]),
                                 (h, "waiting", 1))  # back in the queue, at its place
                self.assertEqual(held.get("target_barcode"), spare)
                self.assertNotIn(copy, [e["barcode"] for e in carrel("holds-shelf").json["entries"]])
                assert_consistent(self)
                # Back in circulation, the copy is nobody's: another patron may take it.
                undo(copy)
                other = new_patron()
                r = carrel("checkout", other, copy)
                self.assertEqual(r.code, 0, r)
                self.assertNotIn("filled_hold_id", r.json[0])
                carrel("checkin", copy)
                assert_consistent(self)

    def test_override_lending_a_shelf_copy_requeues_its_hold(self):
        bib = new_bib("Taken By Override")
        copy = new_item(bib, "DWN")
        card, h = on_shelf_for(bib, copy)
        w = subscribe("DWN")
        r = carrel("checkout", new_patron(), copy, "--override", "patron in a hurry",
                   user="libby")
        self.assertEqual(r.code, 0, r)
        ev = next_event(w)
        w.close()
        self.assertEqual(ev["kind"], "hold_released", ev)
        self.assertIn("(lent to another patron)", ev["text"])
        held = hold_row(card)
        self.assertEqual((held["status"], held["position"]), ("waiting", 1))
        assert_consistent(self)
        self.assertEqual(carrel("checkin", copy).json[0]["hold_id"], h)  # its turn again
        assert_consistent(self)

    def test_copy_lost_on_its_way_gets_the_hold_another_copy(self):
        bib = new_bib("Lost In The Van")
        copy = new_item(bib, "RPK")
        card = new_patron()
        h = place(card, bib, pickup="PRK").json["id"]
        self.assertEqual(carrel("checkin", copy, branch="RPK").json[0]["route"], "transit")
        self.assertEqual(hold_status(h), "in_transit")
        spare = new_item(bib, "ALB")
        w = subscribe("PRK")
        r = carrel("item", "mark", copy, "lost", branch="RPK")
        self.assertEqual(r.code, 0, r)
        ev = next_event(w)
        w.close()
        self.assertEqual(ev["kind"], "hold_released", ev)
        self.assertIn("No longer on its way to you", ev["text"])
        held = hold_row(card)
        self.assertEqual((held["status"], held.get("target_barcode")), ("waiting", spare))
        self.assertNotIn(copy, incoming("PRK"))  # its transit is closed
        r = carrel("transit", "cancel", copy, branch="RPK")
        self.assertEqual((r.code, r.json["reason"]), (4, "not_in_transit"), r)
        self.assertEqual(status(copy), "lost RPK")
        assert_consistent(self)
        # The hold is served again: the spare copy, pulled at Albany, goes to Park Street.
        self.assertEqual(carrel("checkin", spare, branch="ALB").json[0]["hold_id"], h)
        assert_consistent(self)

    def test_checkin_of_a_lost_shelf_copy_puts_it_back_for_the_hold(self):
        bib = new_bib("Lost Then Scanned")
        copy = new_item(bib, "DWN")
        card, h = on_shelf_for(bib, copy)
        self.assertEqual(carrel("item", "mark", copy, "lost").code, 0)
        back = carrel("checkin", copy).json[0]
        self.assertIn("status corrected from lost", back["message"])
        self.assertEqual((back["route"], back["hold_id"]), ("hold_shelf", h), back)
        self.assertEqual(status(copy), "on_hold_shelf DWN")
        self.assertEqual(hold_status(h), "ready")
        assert_consistent(self)

    def test_editing_where_a_shelf_copy_is_requeues_its_hold(self):
        """Item 23, the whole class: an item edit that says a copy on a hold shelf
        is now at another branch leaves no ready hold claiming it."""
        bib = new_bib("Moved Off The Shelf")
        copy = new_item(bib, "DWN")
        card, h = on_shelf_for(bib, copy)
        w = subscribe("DWN")
        r = carrel("item", "edit", copy, "--at", "PRK", user="libby")
        self.assertEqual(r.code, 0, r)
        ev = next_event(w)
        w.close()
        self.assertEqual(ev["kind"], "hold_released", ev)
        self.assertIn("(now at Park Street Branch at the Lyric)", ev["text"])
        self.assertEqual(hold_status(h), "waiting")
        assert_consistent(self)

    def test_copy_captured_at_a_third_branch_ends_its_old_transit(self):
        bib = new_bib("Captured On The Way")
        copy = new_item(bib, "PRK")
        carrel("checkout", new_patron(), copy)
        self.assertEqual(carrel("checkin", copy).json[0]["destination_branch"], "PRK")  # home
        self.assertIn(copy, incoming("PRK"))
        card = new_patron()
        h = place(card, bib, pickup="BAR").json["id"]
        back = carrel("checkin", copy, branch="BAR").json[0]  # Barnard wants it for a hold
        self.assertEqual((back["route"], back["hold_id"]), ("hold_shelf", h), back)
        self.assertNotIn(copy, incoming("PRK"))
        r = carrel("transit", "cancel", copy, branch="BAR")
        self.assertEqual((r.code, r.json["reason"]), (4, "not_in_transit"), r)
        self.assertEqual(status(copy), "on_hold_shelf BAR")
        self.assertEqual(hold_status(h), "ready")
        assert_consistent(self)

    def test_ready_copy_scanned_elsewhere_goes_back_to_its_hold_shelf(self):
        bib = new_bib("Astray From The Shelf")
        copy = new_item(bib, "DWN")
        card, h = on_shelf_for(bib, copy)
        w = subscribe("DWN")
        back = carrel("checkin", copy, branch="ALB").json[0]
        self.assertEqual((back["route"], back["destination_branch"], back["hold_id"]),
                         ("transit", "DWN", h), back)
        self.assertIn("ROUTE TO Downtown Library for a hold", back["message"])
        self.assertIn("SEND TO Downtown Library (from Albany", back["slip"])
        ev = next_event(w)
        self.assertEqual(ev["kind"], "transit_sent", ev)
        self.assertEqual((hold_status(h), status(copy)), ("in_transit", "in_transit ALB"))
        self.assertIn(copy, incoming("DWN"))
        assert_consistent(self)
        again = carrel("checkin", copy, branch="BAR").json[0]  # forwarded: same transit
        self.assertEqual((again["route"], again["destination_branch"]), ("transit", "DWN"))
        self.assertEqual(env.psql("SELECT count(*) FROM transit t JOIN item i ON i.id = t.item_id"
                                  " WHERE i.barcode = '%s' AND t.received_at IS NULL"
                                  " AND t.cancelled_at IS NULL" % copy), "1")
        arrived = carrel("checkin", copy).json[0]
        self.assertEqual(arrived["route"], "hold_shelf")
        self.assertIn("Arrived: HOLD SHELF", arrived["message"])
        self.assertEqual(next_event(w)["kind"], "hold_captured")
        w.close()
        self.assertEqual((hold_status(h), status(copy)), ("ready", "on_hold_shelf DWN"))
        assert_consistent(self)
        self.assertEqual(carrel("checkout", card, copy).json[0]["filled_hold_id"], h)
        carrel("checkin", copy)
        assert_consistent(self)

    def test_invariants_report_both_directions(self):
        """Break the records by hand (triggers off, rolled back): each check speaks up."""
        bib = new_bib("Broken On Purpose")
        shelf, lent = new_item(bib, "DWN"), new_item(bib, "DWN")
        card, h = on_shelf_for(bib, shelf)
        borrower = new_patron()
        self.assertEqual(carrel("checkout", borrower, lent).code, 0)
        self.assertEqual(carrel("checkin", lent).json[0]["route"], "shelf")
        filled = place(borrower, bib).json["id"]
        self.assertEqual(carrel("checkout", borrower, lent).json[0]["filled_hold_id"], filled)
        out = env.psql(
            "BEGIN; SET LOCAL session_replication_role = replica;"
            # the shelf copy keeps a transit it should have lost, and is marked missing
            " INSERT INTO transit (item_id, from_branch_id, to_branch_id, reason)"
            " SELECT i.id, i.current_branch_id, (SELECT id FROM branch WHERE code = 'PRK'),"
            " 'home' FROM item i WHERE i.barcode = '%(shelf)s';"
            " UPDATE item SET status = 'missing' WHERE barcode = '%(shelf)s';"
            # the second loan began before the first ended
            " UPDATE loan SET checkout_at = checkout_at - interval '1 hour'"
            " WHERE returned_at IS NULL AND item_id = (SELECT id FROM item"
            " WHERE barcode = '%(lent)s');"
            # a hold filled before it was placed
            " UPDATE hold SET placed_at = filled_at + interval '1 hour' WHERE id = %(filled)d;"
            " SELECT problem FROM hold_invariants() UNION ALL"
            " SELECT problem FROM circ_invariants(); ROLLBACK"
            % {"shelf": shelf, "lent": lent, "filled": filled})
        for problem in ("captured copy not set aside", "copy on the hold shelf still in transit",
                        "open transit for an item not in transit", "loans of one item overlap",
                        "filled before it was placed"):
            self.assertIn(problem, out)
        out = env.psql(
            "BEGIN; SET LOCAL session_replication_role = replica;"
            " UPDATE hold SET status = 'in_transit' WHERE id = %d;"
            " UPDATE item SET status = 'in_transit', current_branch_id ="
            " (SELECT id FROM branch WHERE code = 'ALB') WHERE barcode = '%s';"
            " SELECT problem FROM hold_invariants(); ROLLBACK" % (h, shelf))
        self.assertIn("hold in transit without a transit", out)
        out = env.psql(
            "BEGIN; SET LOCAL session_replication_role = replica;"
            " UPDATE item SET current_branch_id = (SELECT id FROM branch WHERE code = 'ALB')"
            " WHERE barcode = '%s';"
            " SELECT problem FROM hold_invariants(); ROLLBACK" % shelf)
        self.assertIn("ready copy away from its pickup branch", out)
        assert_consistent(self)
        carrel("checkin", lent)


class Blocker:
    """A session of the harness holding a request key unconfirmed (an INSERT not
    yet committed): a request without a barcode sent with that key waits for
    it, with its transaction already begun, until release()."""

    def __init__(self, key):
        self.session = env.session()
        self.session.query("BEGIN; INSERT INTO request_log (key, staff_id, kind) "
                           "SELECT '%s', min(id), 'blocker' FROM staff" % key,
                           keep_transaction=True)

    def release(self):
        self.session.query("ROLLBACK")
        self.session.close()


class RowBlocker(Blocker):
    """A session of the harness holding the rows `select` reads locked (FOR
    UPDATE, or `lock`): a change of a copy (which locks the copy first, then
    its key is looked up) waits for them, with its transaction already begun,
    until release()."""

    def __init__(self, select, lock="FOR UPDATE"):
        self.session = env.session()
        self.session.query("BEGIN; %s %s" % (select, lock), keep_transaction=True)


def wait_for(condition, timeout=60):
    return harness.wait_until(condition, timeout)


def waiting_on_a_lock(function):
    return env.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%%%s(%%'" % function) == "1"


def reply_to(w, rid):
    w.sock.settimeout(120)
    while True:
        r = w.recv()
        assert r is not None, "connection closed"
        if r.id == rid:
            return r


class TimesAfterLocks(unittest.TestCase):
    """A change that waited for another desk is dated after it (issue 8, 25)."""

    def test_a_checkout_that_waited_begins_after_the_checkin(self):
        bib = new_bib("Two Desks One Copy")
        copy = new_item(bib, "DWN")
        first, second = new_patron(), new_patron()
        self.assertEqual(carrel("checkout", first, copy).code, 0)
        lender = main.logged_in_wire(WS["DWN"], "roamer", PASSWORD)
        returner = main.logged_in_wire("desk-dwn-2", "roamer", PASSWORD)  # a second desk here
        # The checkin holds the copy and waits on its loan...
        blocker = RowBlocker("SELECT 1 FROM loan WHERE returned_at IS NULL AND item_id ="
                             " (SELECT id FROM item WHERE barcode = '%s')" % copy)
        try:
            back = returner.send(REQ_CHECKIN, pb_message((1, copy)), key=str(uuid.uuid4()))
            wait_for(lambda: waiting_on_a_lock("circ_checkin"))
            # ... the checkout's transaction begins now and waits on the copy...
            rid = lender.send(REQ_CHECKOUT, pb_message((1, second), (2, copy)),
                              key=str(uuid.uuid4()))
            wait_for(lambda: waiting_on_a_lock("circ_checkout"))
        finally:
            blocker.release()
        # ... and the checkin commits first.
        r = reply_to(returner, back)
        self.assertEqual(r.status, "ok", r)
        r = reply_to(lender, rid)
        self.assertEqual(r.status, "ok", r)
        lender.close()
        returner.close()
        gap = env.psql("SELECT extract(epoch FROM b.checkout_at - a.returned_at) >= 0"
                       " FROM loan a, loan b, item i WHERE i.barcode = '%s' AND a.item_id = i.id"
                       " AND b.item_id = i.id AND a.returned_at IS NOT NULL"
                       " AND b.returned_at IS NULL" % copy)
        self.assertEqual(gap, "t")
        assert_consistent(self)
        carrel("checkin", copy)

    def test_a_fill_that_waited_is_after_the_hold_was_placed(self):
        bib = new_bib("Placed While Lending")
        copy = new_item(bib, "DWN")
        card = new_patron()
        lender = main.logged_in_wire(WS["DWN"], "roamer", PASSWORD)
        placer = main.logged_in_wire(WS["PRK"], "roamer", PASSWORD)
        # The copy held as a change of it holds it (a hold's foreign key to it
        # does not wait for that).
        blocker = RowBlocker("SELECT 1 FROM item WHERE barcode = '%s'" % copy,
                             lock="FOR NO KEY UPDATE")
        try:
            rid = lender.send(REQ_CHECKOUT, pb_message((1, card), (2, copy)),
                              key=str(uuid.uuid4()))
            wait_for(lambda: waiting_on_a_lock("circ_checkout"))
            r = placer.call(REQ_HOLD_PLACE, pb_message((1, card), (2, bib)),
                            key=str(uuid.uuid4()))
            self.assertEqual(r.status, "ok", r)
            h = r.body(RESP_HOLD)[1][0]
        finally:
            blocker.release()
        r = reply_to(lender, rid)
        self.assertEqual(r.status, "ok", r)
        lender.close()
        placer.close()
        self.assertEqual(env.psql("SELECT status || ' ' || (filled_at >= placed_at) FROM hold"
                                  " WHERE id = %d" % h), "filled true")
        assert_consistent(self)
        carrel("checkin", copy)


    def test_a_cancel_that_waited_is_after_its_copy_was_sent(self):
        """The race test's "hold transit without a hold": a cancel whose
        transaction began before a checkin sent the copy on its way was dated
        before the transit, as if the copy left for a hold already over."""
        bib = new_bib("Cancelled While Sent")
        copy = new_item(bib, "DWN")
        lender_card, waiting_card = new_patron(), new_patron()
        self.assertEqual(carrel("checkout", lender_card, copy).code, 0)
        r = place(waiting_card, bib=bib, pickup="PRK")
        self.assertEqual(r.code, 0, r)
        h = int(env.psql("SELECT id FROM hold WHERE bib_id = %d AND status = 'waiting'" % bib))
        canceller = main.logged_in_wire(WS["PRK"], "roamer", PASSWORD)
        returner = main.logged_in_wire(WS["DWN"], "roamer", PASSWORD)
        key = str(uuid.uuid4())
        blocker = Blocker(key)
        try:
            rid = canceller.send(REQ_HOLD_CHANGE, pb_message((1, h), (2, "cancel"),
                                                             (3, "changed mind")), key=key)
            wait_for(lambda: waiting_on_a_lock("hold_change"))
            r = returner.call(REQ_CHECKIN, pb_message((1, copy)), key=str(uuid.uuid4()))
            self.assertEqual(r.status, "ok", r)
            self.assertEqual(hold_status(h), "in_transit")
        finally:
            blocker.release()
        r = reply_to(canceller, rid)
        self.assertEqual(r.status, "ok", r)
        canceller.close()
        returner.close()
        self.assertEqual(env.psql("SELECT h.closed_at >= t.sent_at FROM hold h JOIN transit t"
                                  " ON t.item_id = h.captured_item_id WHERE h.id = %d" % h), "t")
        assert_consistent(self)
        carrel("transit", "receive", copy, branch="PRK")


class HoldListMarksCopyHolds(unittest.TestCase):
    """`hold list` (and `account`) say which holds are on one copy only."""

    def test_item_holds_are_marked(self):
        bib = new_bib()
        copy = new_item(bib, "PRK")
        new_item(bib, "PRK")
        card = new_patron()
        self.assertEqual(place(card, item=copy).code, 0)
        other = new_bib()
        new_item(other, "PRK")
        self.assertEqual(place(card, bib=other).code, 0)
        prof = env.profile(main, "desk-dwn", "roamer", PASSWORD)
        text = env.carrel(prof, "hold", "list", card, json_out=False).stdout.splitlines()
        self.assertEqual(len(text), 2, text)
        marked = [line for line in text if "[copy %s only]" % copy in line]
        self.assertEqual(len(marked), 1, text)
        self.assertNotIn("only]", [line for line in text if line not in marked][0])
        account = env.carrel(prof, "account", card, json_out=False).stdout
        self.assertIn("[copy %s only]" % copy, account)


if __name__ == "__main__":
    harness.main()
