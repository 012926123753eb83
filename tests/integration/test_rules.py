#!/usr/bin/env python3
"""The circulation and hold rules, called directly in SQL: checkout, checkin routing,
hold capture, hold targeting, renewal.

No daemon and no client: each test opens one transaction on a harness session, makes
its patrons, bibs and copies in it, calls the rule functions as carreld does
(SELECT * FROM circ_checkout(...)), checks the rows, and rolls everything back, so a
test takes milliseconds and sees only its own rows. A refusal is an SQL error with
SQLSTATE CR4xx and the reason in DETAIL (sql/rules/foundation.sql); refused() catches it
inside a savepoint so the test can go on. tearDownModule checks that nothing was left
behind (every transaction really rolled back).
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

env = None
db = None      # the session every test's transaction runs on
ids = {}       # branch code -> id; "staff", "workstation": the administrator's


def setUpModule():
    global env, db
    env, db = harness.start_rule_session(RuleTest, ids)


def tearDownModule():
    harness.stop_rule_session(env, db,
                              "SELECT (SELECT count(*) FROM loan) + (SELECT count(*) FROM hold)"
                              " + (SELECT count(*) FROM transit) + (SELECT count(*) FROM patron)")


lit = harness.sql_literal


class RuleTest(harness.TransactionTest):
    """One transaction per test, rolled back whatever happens (harness.TransactionTest)."""

    # ---- rows made in the transaction

    def patron(self, category="adult", branch="DWN", **columns):
        return env.new_patron(category, branch, session=db, **columns)

    def bib(self):
        return env.new_bib(session=db)

    def copy(self, bib, branch="DWN", item_type="book", **kw):
        return env.new_item(bib, branch=branch, item_type=item_type, session=db, **kw)

    # ---- the rule functions, as carreld calls them

    def checkout(self, card, barcode, branch="DWN", override=False, reason=None,
                 may_override=False, key="gen_random_uuid()"):
        return self.one("SELECT * FROM circ_checkout(%s, %d, %d, %d, %s, %s, %s, %s, %s)"
                        % (key, ids["staff"], ids["workstation"], ids[branch], lit(card),
                           lit(barcode), lit(override), lit(reason), lit(may_override)))

    def checkout_sql(self, card, barcode, branch="DWN", override=False, reason=None,
                     may_override=False):
        return ("SELECT * FROM circ_checkout(gen_random_uuid(), %d, %d, %d, %s, %s, %s, %s, %s)"
                % (ids["staff"], ids["workstation"], ids[branch], lit(card), lit(barcode),
                   lit(override), lit(reason), lit(may_override)))

    def checkin(self, barcode, branch="DWN"):
        return self.one("SELECT * FROM circ_checkin(gen_random_uuid(), %d, %d, %d, %s, NULL)"
                        % (ids["staff"], ids["workstation"], ids[branch], lit(barcode)))

    def renew(self, card, barcode=None):
        return self.rows("SELECT * FROM circ_renew(gen_random_uuid(), %d, %d, %d, %s, %s,"
                         " false, NULL, false)" % (ids["staff"], ids["workstation"],
                                                   ids["DWN"], lit(card), lit(barcode)))

    def place(self, card, bib, pickup="DWN", suspend=None):
        return self.one("SELECT * FROM hold_place(gen_random_uuid(), %d, %d, %s, %d, NULL, %s,"
                        " NULL, %s)" % (ids["staff"], ids["DWN"], lit(card), bib, lit(pickup),
                                        lit(suspend)))

    # ---- state

    def item(self, barcode):
        return self.one("SELECT i.status, b.code AS at FROM item i JOIN branch b"
                        " ON b.id = i.current_branch_id WHERE i.barcode = %s" % lit(barcode))

    def hold(self, hold_id):
        return self.one("SELECT h.status, h.skipped, t.barcode AS target, c.barcode AS captured"
                        " FROM hold h LEFT JOIN item t ON t.id = h.target_item_id"
                        " LEFT JOIN item c ON c.id = h.captured_item_id WHERE h.id = %d"
                        % hold_id)

    def open_transits(self, barcode):
        return self.rows("SELECT f.code AS from, t.code AS to, x.reason FROM transit x"
                         " JOIN item i ON i.id = x.item_id JOIN branch f ON f.id = x.from_branch_id"
                         " JOIN branch t ON t.id = x.to_branch_id WHERE i.barcode = %s"
                         " AND x.received_at IS NULL AND x.cancelled_at IS NULL" % lit(barcode))

    def out_on_loan(self, card):
        """A patron with one copy of a new bib checked out: (bib, barcode)."""
        bib = self.bib()
        barcode = self.copy(bib)
        self.checkout(card, barcode)
        return bib, barcode


class Checkout(RuleTest):
    def test_lends_an_available_copy(self):
        card = self.patron()
        barcode = self.copy(self.bib())
        r = self.checkout(card, barcode)
        self.assertIsNotNone(r["loan_id"])
        self.assertEqual((r["barcode"], r["loans_out"], r["overridden"]), (barcode, 1, []))
        self.assertEqual(self.item(barcode), {"status": "checked_out", "at": "DWN"})
        due = self.q("SELECT due_at::date - checkout_at::date BETWEEN 21 AND 28 FROM loan"
                     " WHERE id = %d" % r["loan_id"])
        self.assertEqual(due, "t")  # 21 days, moved past closed days

    def test_refuses_a_blocked_patron(self):
        card = self.patron()
        self.q("INSERT INTO patron_block (patron_id, reason) SELECT id, 'Lost property'"
               " FROM patron WHERE card = %s" % lit(card))
        barcode = self.copy(self.bib())
        self.refused(self.checkout_sql(card, barcode), "CR422", "patron_blocked")
        self.assertEqual(self.item(barcode)["status"], "available")

    def test_refuses_an_expired_card(self):
        card = self.patron(expires="2020-01-01")
        self.refused(self.checkout_sql(card, self.copy(self.bib())), "CR422", "patron_expired")

    def test_refuses_a_patron_who_owes_too_much(self):
        card = self.patron()
        self.q("INSERT INTO patron_circ (patron_id, balance_cents) SELECT id, 1000 FROM patron"
               " WHERE card = %s ON CONFLICT (patron_id) DO UPDATE SET balance_cents = 1000"
               % lit(card))
        self.refused(self.checkout_sql(card, self.copy(self.bib())), "CR422", "patron_owes")

    def test_refuses_a_copy_out_to_another_patron(self):
        _, barcode = self.out_on_loan(self.patron())
        self.refused(self.checkout_sql(self.patron(), barcode), "CR422", "item_on_loan")

    def test_refuses_the_same_patron_twice(self):
        card = self.patron()
        _, barcode = self.out_on_loan(card)
        self.refused(self.checkout_sql(card, barcode), "CR409", "already_checked_out")

    def test_refuses_a_copy_that_does_not_circulate(self):
        barcode = self.copy(self.bib(), item_type="reference")
        self.refused(self.checkout_sql(self.patron(), barcode), "CR422", "item_not_circulating")

    def test_refuses_an_unknown_item(self):
        self.refused(self.checkout_sql(self.patron(), harness.mod10("3999999999999")),
                     "CR404", "item_not_found")

    def test_refuses_a_copy_on_the_hold_shelf_for_another_patron(self):
        bib = self.bib()
        barcode = self.copy(bib)
        waiting = self.patron()
        self.place(waiting, bib)
        self.assertEqual(self.checkin(barcode)["route"], "hold_shelf")
        self.refused(self.checkout_sql(self.patron(), barcode), "CR422", "item_on_hold")

    def test_fills_the_patrons_own_hold(self):
        bib = self.bib()
        barcode = self.copy(bib)
        card = self.patron()
        h = self.place(card, bib)["id"]
        self.checkin(barcode)
        self.assertEqual(self.checkout(card, barcode)["filled_hold_id"], h)
        self.assertEqual(self.hold(h)["status"], "filled")

    def test_override_needs_the_right_and_a_reason(self):
        card = self.patron()
        self.q("INSERT INTO patron_block (patron_id, reason) SELECT id, 'Ask at the desk'"
               " FROM patron WHERE card = %s" % lit(card))
        barcode = self.copy(self.bib())
        self.refused(self.checkout_sql(card, barcode, override=True, reason="ok"),
                     "CR403", "override")
        self.refused(self.checkout_sql(card, barcode, override=True, reason=" ",
                                       may_override=True), "CR400", "field:override_reason")
        r = self.checkout(card, barcode, override=True, reason="Manager said so",
                          may_override=True)
        self.assertEqual(r["overridden"], ["patron_blocked"])
        self.assertEqual(self.q("SELECT override_reason FROM loan WHERE id = %d" % r["loan_id"]),
                         "Manager said so")

    def test_the_same_request_key_lends_once(self):
        card = self.patron()
        barcode = self.copy(self.bib())
        key = "'6f1c2d9e-1111-4a5b-9c3d-000000000001'::uuid"
        first = self.checkout(card, barcode, key=key)
        again = self.checkout(card, barcode, key=key)
        self.assertEqual(again["loan_id"], first["loan_id"])
        self.assertEqual(self.q("SELECT count(*) FROM loan l JOIN item i ON i.id = l.item_id"
                                " WHERE i.barcode = %s" % lit(barcode)), "1")


class Checkin(RuleTest):
    def test_at_the_owning_branch_back_to_the_shelf(self):
        _, barcode = self.out_on_loan(self.patron())
        r = self.checkin(barcode)
        self.assertEqual((r["was_on_loan"], r["route"], r["destination_code"]),
                         (True, "shelf", "DWN"))
        self.assertEqual(self.item(barcode), {"status": "available", "at": "DWN"})
        self.assertEqual(self.open_transits(barcode), [])

    def test_at_another_branch_in_transit_home(self):
        _, barcode = self.out_on_loan(self.patron())
        r = self.checkin(barcode, branch="PRK")
        self.assertEqual((r["route"], r["destination_code"]), ("transit", "DWN"))
        self.assertIn("TRANSIT", r["slip"])
        self.assertEqual(self.item(barcode), {"status": "in_transit", "at": "PRK"})
        self.assertEqual(self.open_transits(barcode),
                         [{"from": "PRK", "to": "DWN", "reason": "home"}])

    def test_transit_received_at_home(self):
        _, barcode = self.out_on_loan(self.patron())
        self.checkin(barcode, branch="PRK")
        self.assertEqual(self.checkin(barcode, branch="ALB")["destination_code"], "DWN")
        r = self.checkin(barcode)
        self.assertEqual(r["route"], "shelf")
        self.assertEqual(self.item(barcode), {"status": "available", "at": "DWN"})
        self.assertEqual(self.open_transits(barcode), [])

    def test_a_floating_copy_stays_where_it_is_returned(self):
        self.q("INSERT INTO floating_location VALUES ('Floating rules')")
        bib = self.bib()
        barcode = self.copy(bib, location="Floating rules")
        self.checkout(self.patron(), barcode)
        r = self.checkin(barcode, branch="PRK")
        self.assertEqual((r["route"], r["destination_code"]), ("shelf", "PRK"))
        self.assertEqual(self.item(barcode), {"status": "available", "at": "PRK"})

    def test_a_withdrawn_copy_is_set_aside(self):
        barcode = self.copy(self.bib(), status="withdrawn")
        r = self.checkin(barcode)
        self.assertEqual(r["route"], "keep")
        self.assertEqual(self.item(barcode)["status"], "withdrawn")

    def test_a_late_return_is_fined_by_the_rule(self):
        self.q("INSERT INTO circ_policy (patron_category, item_type, fine_cents_per_day,"
               " fine_max_cents) VALUES ('senior', NULL, 25, 100)")
        card = self.patron(category="senior")
        _, barcode = self.out_on_loan(card)
        self.q("UPDATE loan SET checkout_at = now() - interval '30 days',"
               " due_at = now() - interval '9 days' WHERE returned_at IS NULL AND item_id ="
               " (SELECT id FROM item WHERE barcode = %s)" % lit(barcode))
        self.assertEqual(self.checkin(barcode)["fine_cents"], 100)  # 9 days at 25, capped


class Capture(RuleTest):
    def test_the_first_in_the_queue_gets_the_copy(self):
        bib = self.bib()
        barcode = self.copy(bib, status="checked_out")  # comes back below, at the pickup branch
        first, second = self.patron(), self.patron()
        h1 = self.place(first, bib)["id"]
        h2 = self.place(second, bib)["id"]
        r = self.checkin(barcode)
        self.assertEqual((r["route"], r["hold_id"]), ("hold_shelf", h1))
        self.assertEqual(self.hold(h1)["status"], "ready")
        self.assertEqual(self.hold(h2)["status"], "waiting")
        self.assertEqual(self.item(barcode)["status"], "on_hold_shelf")

    def test_a_suspended_hold_is_passed_over(self):
        bib = self.bib()
        barcode = self.copy(bib, status="checked_out")
        h1 = self.place(self.patron(), bib, suspend="2099-01-01")["id"]
        h2 = self.place(self.patron(), bib)["id"]
        self.assertEqual(self.checkin(barcode)["hold_id"], h2)
        self.assertEqual(self.hold(h1)["status"], "waiting")

    def test_a_hold_for_another_branch_sends_the_copy_there(self):
        bib = self.bib()
        barcode = self.copy(bib, status="checked_out")
        h = self.place(self.patron(), bib, pickup="PRK")["id"]
        r = self.checkin(barcode)
        self.assertEqual((r["route"], r["destination_code"], r["hold_id"]), ("transit", "PRK", h))
        self.assertEqual(self.hold(h)["status"], "in_transit")
        self.assertEqual(self.open_transits(barcode),
                         [{"from": "DWN", "to": "PRK", "reason": "hold"}])
        arrived = self.checkin(barcode, branch="PRK")
        self.assertEqual((arrived["route"], arrived["hold_id"]), ("hold_shelf", h))
        self.assertEqual(self.hold(h)["status"], "ready")
        self.assertEqual(self.item(barcode), {"status": "on_hold_shelf", "at": "PRK"})

    def test_local_first_serves_the_returning_branch(self):
        self.q("UPDATE library_setting SET value = 'local_first' WHERE name = 'hold_policy'")
        bib = self.bib()
        barcode = self.copy(bib, status="checked_out")
        far = self.place(self.patron(), bib, pickup="PRK")["id"]
        near = self.place(self.patron(), bib)["id"]
        self.assertEqual(self.checkin(barcode)["hold_id"], near)
        self.assertEqual(self.hold(far), {"status": "waiting", "skipped": 1, "target": None,
                                          "captured": None})

    def test_a_non_circulating_copy_fills_no_hold(self):
        bib = self.bib()
        reference = self.copy(bib, item_type="reference", status="checked_out")
        self.refused("SELECT * FROM hold_place(gen_random_uuid(), %d, %d, %s, %d, NULL, 'DWN',"
                     " NULL, NULL)" % (ids["staff"], ids["DWN"], lit(self.patron()), bib),
                     "CR422", "no_holdable_copies")
        self.copy(bib, status="checked_out")
        h = self.place(self.patron(), bib)["id"]
        self.assertEqual(self.checkin(reference)["route"], "shelf")
        self.assertEqual(self.hold(h)["status"], "waiting")


class Targeting(RuleTest):
    def test_a_copy_at_the_pickup_branch_first(self):
        bib = self.bib()
        self.copy(bib, branch="ALB")
        here = self.copy(bib, branch="DWN")
        h = self.place(self.patron(), bib)["id"]
        self.assertEqual(self.hold(h)["target"], here)

    def test_then_the_nearest_branch(self):
        self.q("INSERT INTO branch_proximity (pickup_branch_id, branch_id, rank) VALUES"
               " (%d, %d, 1), (%d, %d, 2)" % (ids["DWN"], ids["PRK"], ids["DWN"], ids["ALB"]))
        bib = self.bib()
        self.copy(bib, branch="ALB")
        near = self.copy(bib, branch="PRK")
        self.copy(bib, branch="BAR")  # no rank: last
        h = self.place(self.patron(), bib)["id"]
        self.assertEqual(self.hold(h)["target"], near)

    def test_two_holds_ask_for_two_different_copies(self):
        bib = self.bib()
        copies = {self.copy(bib, branch="PRK"), self.copy(bib, branch="ALB")}
        h1 = self.place(self.patron(), bib)["id"]
        h2 = self.place(self.patron(), bib)["id"]
        self.assertEqual({self.hold(h1)["target"], self.hold(h2)["target"]}, copies)

    def test_a_copy_on_loan_is_not_targeted(self):
        bib = self.bib()
        lent = self.copy(bib)
        self.checkout(self.patron(), lent)
        h = self.place(self.patron(), bib)["id"]
        self.assertIsNone(self.hold(h)["target"])
        self.assertEqual(self.checkin(lent)["hold_id"], h)  # captured when it comes back


class Renew(RuleTest):
    def backdate(self, barcode, days=10):
        self.q("UPDATE loan SET checkout_at = checkout_at - interval '%d days', due_at = due_at"
               " - interval '%d days' WHERE returned_at IS NULL AND item_id = (SELECT id FROM"
               " item WHERE barcode = %s)" % (days, days, lit(barcode)))

    def test_on_the_checkout_day_nothing_changes(self):
        card = self.patron()
        _, barcode = self.out_on_loan(card)
        [r] = self.renew(card, barcode)
        self.assertEqual((r["renewed"], r["reason"], r["renewals"]),
                         (False, "renewal_no_change", 0))

    def test_later_the_due_date_moves(self):
        card = self.patron()
        _, barcode = self.out_on_loan(card)
        self.backdate(barcode)
        before = self.q("SELECT due_at FROM loan WHERE returned_at IS NULL")
        [r] = self.renew(card, barcode)
        self.assertEqual((r["renewed"], r["reason"], r["renewals"]), (True, None, 1))
        self.assertEqual(self.q("SELECT due_at > %s FROM loan WHERE returned_at IS NULL"
                                % lit(before)), "t")

    def test_refused_when_another_patron_waits(self):
        card = self.patron()
        bib, barcode = self.out_on_loan(card)
        self.backdate(barcode)
        self.place(self.patron(), bib)
        [r] = self.renew(card, barcode)
        self.assertEqual((r["renewed"], r["reason"]), (False, "renewal_hold"))

    def test_refused_past_the_limit(self):
        card = self.patron()
        _, barcode = self.out_on_loan(card)
        self.backdate(barcode)
        self.q("UPDATE loan SET renewals = 2 WHERE returned_at IS NULL")
        [r] = self.renew(card, barcode)
        self.assertEqual((r["renewed"], r["reason"]), (False, "renewal_limit"))

    def test_a_copy_not_on_loan_to_the_patron(self):
        card = self.patron()
        _, barcode = self.out_on_loan(self.patron())
        self.refused("SELECT * FROM circ_renew(gen_random_uuid(), %d, %d, %d, %s, %s, false,"
                     " NULL, false)" % (ids["staff"], ids["workstation"], ids["DWN"], lit(card),
                                        lit(barcode)), "CR404", "not_on_loan")


class Helpers(RuleTest):
    """The helpers every checkout and checkin calls, made faster (docs/CIRCULATION.md,
    Performance) with the same answers."""

    def test_the_hot_helpers_keep_their_plans(self):
        # A SQL function with a FROM is planned again at every call; PL/pgSQL keeps
        # its plans for the session. These run several times per checkout.
        hot = ["library_setting_text", "circ_rule", "branch_is_open", "patron_standing",
               "patron_resolve", "request_store", "item_can_fill_holds"]
        langs = self.rows("SELECT p.proname, l.lanname FROM pg_proc p"
                          " JOIN pg_language l ON l.oid = p.prolang"
                          " WHERE p.proname = ANY (%s)" % lit("{%s}" % ",".join(hot)))
        self.assertEqual(sorted((r["proname"], r["lanname"]) for r in langs),
                         sorted((name, "plpgsql") for name in hot))

    def test_no_loan_rule_is_null(self):
        self.q("DELETE FROM circ_policy")
        self.assertEqual(self.q("SELECT circ_rule('adult', 'book', %d) IS NULL"
                                " AND (circ_rule('adult', 'book', %d)).max_loans IS NULL"
                                % (ids["DWN"], ids["DWN"])), "t")
        self.assertEqual(self.q("SELECT count(*) FROM circ_rule('adult', NULL, %d) r"
                                " WHERE r.id IS NULL" % ids["DWN"]), "1")

    def test_the_standing_of_no_patron_is_empty(self):
        r = self.one("SELECT * FROM patron_standing(-1)")
        self.assertEqual(set(r.values()), {None})

    def test_the_standing_reads_the_threshold_and_the_library_day(self):
        card = self.patron()
        self.q("UPDATE library_setting SET value = '0' WHERE name = 'block_threshold_cents'")
        self.q("UPDATE patron SET expires_on = library_today() - 1 WHERE card = %s" % lit(card))
        r = self.one("SELECT s.* FROM patron p, patron_standing(p.id) s WHERE p.card = %s"
                     % lit(card))
        self.assertEqual((r["expired"], r["owes"], r["block_threshold_cents"]), (True, True, 0))

    def test_the_slip_and_due_date_are_in_the_library_time_zone(self):
        self.q("UPDATE library_setting SET value = 'Pacific/Kiritimati' WHERE name = 'timezone'")
        card = self.patron()
        barcode = self.copy(self.bib())
        r = self.checkout(card, barcode)
        self.assertEqual(self.q("SELECT %s = library_local_date(due_at)::text"
                                " AND position(circ_local_text(due_at) IN %s) > 0"
                                " AND position(circ_local_text(checkout_at) IN %s) > 0"
                                " FROM loan WHERE id = %d"
                                % (lit(r["due_date"]), lit(r["slip"]), lit(r["slip"]),
                                   r["loan_id"])), "t")

    def test_a_checkout_keeps_its_status_stamp_and_a_checkin_stamps_its_own(self):
        card = self.patron()
        barcode = self.copy(self.bib())
        loan = self.checkout(card, barcode)["loan_id"]
        stamp = "(SELECT status_changed_at FROM item WHERE barcode = %s)" % lit(barcode)
        self.assertEqual(self.q("SELECT %s = checkout_at FROM loan WHERE id = %d"
                                % (stamp, loan)), "t")
        self.checkin(barcode)
        self.assertEqual(self.q("SELECT %s >= returned_at FROM loan WHERE id = %d"
                                % (stamp, loan)), "t")


if __name__ == "__main__":
    harness.main()
