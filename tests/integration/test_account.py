#!/usr/bin/env python3
"""AccountGet: one statement, one snapshot. The patron's counters agree with
the loans and ledger listed beside them, even while other desks check items
out and in, and the reply keeps its shape (patron, loans, ledger, holds)."""

import os
import sys
import threading
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import mod10, pb_message  # noqa: E402

REQ_CHECKOUT, REQ_CHECKIN, REQ_ACCOUNT_GET = 80, 81, 85
RESP_ACCOUNT = 85
# Account's fields (proto/circ.proto)
ACC_CARD, ACC_LOANS_OUT, ACC_LOANS, ACC_LEDGER, ACC_BALANCE = 1, 9, 11, 12, 8
env = None
main = None


def new_item(title="Account test copy"):
    return env.new_item(title=title, price_cents=2000)


def new_patron():
    return env.new_patron(last="Account")


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        main = env.daemon(db_pool_size=4)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


def carrel(*args):
    return env.carrel(env.profile(main), *args)


def account_over_wire(w, card, ledger_limit=None):
    body = pb_message((1, card), (2, ledger_limit))
    r = w.call(REQ_ACCOUNT_GET, body)
    return r, (r.body(RESP_ACCOUNT) if r.status == "ok" else None)


class Shape(unittest.TestCase):
    def test_account_lists_what_its_counters_count(self):
        card = new_patron()
        items = [new_item() for _ in range(3)]
        for item in items:
            r = carrel("checkout", card, item)
            self.assertEqual(r.code, 0, r)
        # One loan overdue; a charge and a payment on the ledger.
        env.psql("UPDATE loan SET due_at = now() - interval '3 days' WHERE item_id ="
                 " (SELECT id FROM item WHERE barcode = '%s') AND returned_at IS NULL" % items[1])
        self.assertEqual(carrel("charge", card, "12.00", "--note", "Lost card").code, 0)
        self.assertEqual(carrel("pay", card, "5.00").code, 0)
        # A hold on a title whose only copy is out, placed by this patron.
        held = new_item(title="Account held title")
        other = new_patron()
        self.assertEqual(carrel("checkout", other, held).code, 0)
        bib = env.psql("SELECT bib_id FROM item WHERE barcode = '%s'" % held)
        r = carrel("hold", "place", card, "--pickup", "DWN", "--bib", bib)
        self.assertEqual(r.code, 0, r)

        acc = carrel("account", card).json
        for key in ("card", "name", "category", "expires_on", "expired", "blocked",
                    "balance_cents", "loans_out", "overdue", "block_threshold_cents", "loans",
                    "ledger", "holds"):
            self.assertIn(key, acc)
        self.assertEqual(acc["card"], card)
        self.assertEqual(acc["name"], "Test Account%s" % str(int(card[7:13])))
        self.assertFalse(acc["expired"])
        self.assertFalse(acc["blocked"])
        # The counters agree with the lists beside them and with the tables.
        self.assertEqual(acc["loans_out"], 3)
        self.assertEqual(len(acc["loans"]), acc["loans_out"])
        self.assertEqual(sorted(loan["barcode"] for loan in acc["loans"]), sorted(items))
        self.assertEqual(acc["overdue"], sum(1 for loan in acc["loans"] if loan["overdue"]))
        self.assertEqual(acc["overdue"], 1)
        self.assertEqual(acc["balance_cents"], sum(e["amount_cents"] for e in acc["ledger"]))
        self.assertEqual(acc["balance_cents"], 700)
        # Loans by due time (the overdue one first), the ledger newest first.
        self.assertEqual(acc["loans"][0]["barcode"], items[1])
        dues = [loan["due_at"] for loan in acc["loans"]]
        self.assertEqual(dues, sorted(dues))
        self.assertEqual([e["kind"] for e in acc["ledger"]], ["payment", "charge"])
        loan = acc["loans"][0]
        for key in ("id", "barcode", "title", "checkout_at", "checkout_branch", "due_at",
                    "due_date", "overdue", "renewals", "renewals_allowed", "item_type"):
            self.assertIn(key, loan)
        self.assertEqual((loan["title"], loan["checkout_branch"], loan["item_type"]),
                         ("Account test copy", "DWN", "book"))
        entry = acc["ledger"][1]
        self.assertEqual((entry["amount_cents"], entry["note"], entry["staff"]),
                         (1200, "Lost card", "admin"))
        self.assertEqual(len(acc["holds"]), 1)
        hold = acc["holds"][0]
        self.assertEqual((hold["title"], hold["status"], hold["position"], hold["pickup_branch"]),
                         ("Account held title", "waiting", 1, "DWN"))
        carrel("checkin", held)

    def test_ledger_limit_keeps_the_newest(self):
        card = new_patron()
        for amount in ("1.00", "2.00", "3.00"):
            self.assertEqual(carrel("charge", card, amount, "--note", "x").code, 0)
        w = main.logged_in_wire()
        try:
            r, acc = account_over_wire(w, card, ledger_limit=1)
            self.assertEqual(r.status, "ok", r)
            self.assertEqual(len(acc.get(ACC_LEDGER, [])), 1)
            newest = harness.pb_decode(acc[ACC_LEDGER][0])
            self.assertEqual(newest[4][0], 300)  # amount_cents of the last charge
            self.assertEqual(acc[ACC_BALANCE][0], 600)  # the balance is not cut by the limit
            r, acc = account_over_wire(w, card)
            self.assertEqual(len(acc.get(ACC_LEDGER, [])), 3)
            r, _ = account_over_wire(w, card, ledger_limit=0)
            self.assertEqual((r.status, r.reason), ("bad_request", "field:ledger_limit"))
        finally:
            w.close()

    def test_unknown_card(self):
        w = main.logged_in_wire()
        try:
            r, _ = account_over_wire(w, mod10("2999999999999"))
            self.assertEqual((r.status, r.reason), ("not_found", "patron_not_found"))
        finally:
            w.close()
        r = carrel("account", mod10("2999999999999"))
        self.assertNotEqual(r.code, 0, r)


class Snapshot(unittest.TestCase):
    def test_counters_agree_with_lists_while_desks_circulate(self):
        """Another desk checks items out and in for the patron without pause;
        every account read meanwhile lists exactly as many loans as it counts.
        Read in several transactions, the count and the list drift apart."""
        card = new_patron()
        items = [new_item() for _ in range(4)]
        stop = threading.Event()
        errors = []

        def circulate():
            w = main.logged_in_wire()
            try:
                while not stop.is_set():
                    for item in items:
                        r = w.call(REQ_CHECKOUT, pb_message((1, card), (2, item)),
                                   key=str(uuid.uuid4()))
                        if r.status != "ok":
                            errors.append(r)
                    for item in items:
                        r = w.call(REQ_CHECKIN, pb_message((1, item)), key=str(uuid.uuid4()))
                        if r.status != "ok":
                            errors.append(r)
            finally:
                w.close()

        writer = threading.Thread(target=circulate)
        writer.start()
        reads, changes, seen = 0, set(), set()
        w = main.logged_in_wire()
        try:
            # Enough reads to see the count change many times over.
            while reads < 400 or len(changes) < 10:
                r, acc = account_over_wire(w, card)
                self.assertEqual(r.status, "ok", r)
                loans_out = acc.get(ACC_LOANS_OUT, [0])[0]
                listed = len(acc.get(ACC_LOANS, []))
                self.assertEqual(loans_out, listed, "read %d: counted %d loans, listed %d"
                                 % (reads, loans_out, listed))
                if seen and loans_out not in seen:
                    changes.add((reads, loans_out))
                seen = {loans_out}
                reads += 1
                self.assertLess(reads, 20000, "the loans never changed")
        finally:
            stop.set()
            writer.join()
            w.close()
        self.assertEqual(errors, [])


if __name__ == "__main__":
    harness.main()
