#!/usr/bin/env python3
"""Offline circulation on the server (issue 14): the replay rules of sql/rules/offline.sql
(Evergreen's, docs/OFFLINE.md), the desk's cache, the exceptions report and its purge,
called directly in SQL as carreld calls them; then the four requests (360-363) over the
wire against a real daemon, with who may do what.

The SQL tests follow test_weeding_sql.py: each test opens one transaction on a harness
session, makes its rows in it, calls offline_replay ... and rolls everything back. Times
are relative to now(), the transaction's start (an online change made in the test is
stamped with clock_timestamp(), a little later).
"""

import json
import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

env = None
db = None      # the session every SQL test's transaction runs on
ids = {}       # branch code -> id; "staff", "workstation": the administrator's
main = None    # the daemon of the wire tests

lit = harness.sql_literal
PASSWORD = "staff-password-123"
CLERK = "sql-test"   # the clerk of every SQL test's replays: none may outlive its test

REQ_PING = 13
REQ_CACHE, REQ_REPLAY, REQ_LIST, REQ_RESOLVE = 360, 361, 362, 363
STAFF = [("olga", "clerk", "DWN"), ("omar", "branch_manager", "DWN"),
         ("pete", "branch_manager", "PRK")]
WS = {"DWN": "desk-dwn", "PRK": "desk-prk"}


def setUpModule():
    global env, db, main
    env, db = harness.start_rule_session(OfflineTest, ids)
    try:
        main = env.daemon(jobs_interval_s=0, notice_send_interval_s=0)
        admin = env.profile(main)
        env.add_workstations(admin, {"desk-prk": "PRK"})
        for user, role, branch in STAFF:
            env.add_staff(admin, user, role, branch, PASSWORD)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    harness.stop_rule_session(env, db,
                              "SELECT count(*) FROM offline_exception WHERE clerk = %s"
                              % lit(CLERK))


def key():
    return str(uuid.uuid4())


class OfflineTest(harness.TransactionTest):
    """One transaction per test, rolled back whatever happens (harness.TransactionTest)."""

    def tearDown(self):
        # Whatever a test replayed, the database's invariants hold (before the rollback).
        self.assertEqual(self.rows("SELECT * FROM circ_invariants() UNION ALL"
                                   " SELECT * FROM hold_invariants()"), [])
        super().tearDown()

    # ---- fixtures

    def patron(self, **kw):
        return env.new_patron(session=db, **kw)

    def item(self, branch="DWN", item_type="book", title=None):
        bib = env.new_bib(title, session=db)
        return env.new_item(bib=bib, branch=branch, item_type=item_type, session=db)

    def item_row(self, barcode):
        return self.one("SELECT * FROM item WHERE barcode = %s" % lit(barcode))

    def loans(self, barcode):
        return self.rows("SELECT l.*, p.card FROM loan l JOIN item i ON i.id = l.item_id"
                         " LEFT JOIN patron p ON p.id = l.patron_id"
                         " WHERE i.barcode = %s ORDER BY l.id" % lit(barcode))

    def open_loan(self, barcode):
        open_ = [x for x in self.loans(barcode) if x["returned_at"] is None]
        return open_[0] if open_ else None

    def exceptions(self, k=None):
        return self.rows("SELECT * FROM offline_exception WHERE %s ORDER BY id"
                         % ("key = %s::uuid" % lit(k) if k else "clerk = %s" % lit(CLERK)))

    def same_time(self, a_sql, b_sql):
        return self.q("SELECT (%s) = (%s)" % (a_sql, b_sql)) == "t"

    # ---- calls

    def replay_sql(self, op, card, barcode, at="now() - interval '1 hour'", due=None, k=None,
                   branch="DWN"):
        return ("SELECT * FROM offline_replay(%s::uuid, %d, %d, %d, %s, %s, %s, %s,"
                " %s - interval '3 seconds', 3000, %s::date, %s)"
                % (lit(k or key()), ids["staff"], ids["workstation"], ids[branch], lit(op),
                   lit(card), lit(barcode), at, at, lit(due), lit(CLERK)))

    def replay(self, *a, **kw):
        return self.one(self.replay_sql(*a, **kw))

    def checkout_online(self, card, barcode):
        return self.one("SELECT * FROM circ_checkout(%s::uuid, %d, %d, %d, %s, %s, false, NULL,"
                        " false)" % (lit(key()), ids["staff"], ids["workstation"], ids["DWN"],
                                     lit(card), lit(barcode)))

    def checkin_online(self, barcode, branch="DWN"):
        return self.one("SELECT * FROM circ_checkin(%s::uuid, %d, %d, %d, %s, NULL)"
                        % (lit(key()), ids["staff"], ids["workstation"], ids[branch],
                           lit(barcode)))

    def assert_outcome(self, r, outcome, reason=None):
        self.assertEqual((r["outcome"], r["reason"]), (outcome, reason), r)
        if outcome == "applied":
            self.assertIsNone(r["exception_id"], r)
        else:
            self.assertIsNotNone(r["exception_id"], r)
            x = self.one("SELECT * FROM offline_exception WHERE id = %d" % r["exception_id"])
            self.assertEqual((x["outcome"], x["reason"], x["message"]),
                             (outcome, reason, r["message"]))

    # ---- checkout

    def test_checkout_applied_as_of_its_time_with_the_rule_due_date_and_statistics(self):
        card, copy = self.patron(), self.item()
        at = "now() - interval '2 hours'"
        r = self.replay("checkout", card, copy, at=at)
        self.assert_outcome(r, "applied")
        self.assertIn("Checked out", r["message"])
        loan = self.open_loan(copy)
        self.assertEqual(loan["card"], card)
        self.assertTrue(self.same_time("'%s'::timestamptz" % loan["checkout_at"], at))
        # No due date given: the rule's, counted from the time of the loan.
        self.assertTrue(self.same_time(
            "'%s'::timestamptz" % loan["due_at"],
            "circ_due(%d, %s, circ_rule('adult', 'book', %d))" % (ids["DWN"], at, ids["DWN"])))
        it = self.item_row(copy)
        self.assertEqual(it["status"], "checked_out")
        self.assertTrue(self.same_time("'%s'::timestamptz" % it["last_circulated"], at))
        self.assertEqual(it["circ_count"], 1)
        self.assertEqual(self.q("SELECT loans_out FROM patron_circ pc JOIN patron p"
                                " ON p.id = pc.patron_id WHERE p.card = %s" % lit(card)), "1")
        # Statistics at the time it happened, without the patron.
        ev = self.one("SELECT e.* FROM circ_event e JOIN item i ON i.id = e.item_id"
                      " WHERE i.barcode = %s" % lit(copy))
        self.assertEqual((ev["action"], ev["patron_category"], ev["via"]),
                         ("checkout", "adult", "desk"))
        self.assertTrue(self.same_time("'%s'::timestamptz" % ev["at"], at))
        self.assertEqual(self.q("SELECT count(*) FROM stat_circ_queue WHERE event_id = %d"
                                " AND at = %s" % (ev["id"], at)), "1")
        self.assertEqual(self.exceptions(), [])

    def test_due_date_given_is_kept_when_sane_else_the_rule(self):
        at = "now() - interval '1 hour'"
        given = self.q("SELECT library_local_date(%s) + 10" % at)
        card, copy = self.patron(), self.item()
        self.assert_outcome(self.replay("checkout", card, copy, at=at, due=given), "applied")
        self.assertEqual(self.q("SELECT library_local_date(due_at) FROM loan WHERE id = %d"
                                % self.open_loan(copy)["id"]), given)
        rule = "circ_due(%d, %s, circ_rule('adult', 'book', %d))" % (ids["DWN"], at, ids["DWN"])
        for bad in (self.q("SELECT library_local_date(%s) - 1" % at),
                    self.q("SELECT library_local_date(%s) + 400" % at)):
            other = self.item()
            self.assert_outcome(self.replay("checkout", card, other, at=at, due=bad), "applied")
            self.assertTrue(self.same_time("'%s'::timestamptz" % self.open_loan(other)["due_at"],
                                           rule), bad)

    def test_unknown_card_or_item_is_skipped(self):
        card, copy = self.patron(), self.item()
        r = self.replay("checkout", "29999999999999", copy)
        self.assert_outcome(r, "skipped", "patron_not_found")
        self.assertIsNone(self.open_loan(copy))
        r = self.replay("checkout", card, "39999999999999")
        self.assert_outcome(r, "skipped", "item_not_found")
        x = self.one("SELECT * FROM offline_exception WHERE id = %d" % r["exception_id"])
        self.assertEqual((x["barcode"], x["item_id"], x["op"]), ("39999999999999", None,
                                                                  "checkout"))
        self.assert_outcome(self.replay("checkin", None, "39999999999999"), "skipped",
                            "item_not_found")

    def test_already_on_loan_to_the_same_patron_is_applied_with_nothing_to_do(self):
        card, copy = self.patron(), self.item()
        self.checkout_online(card, copy)
        # The checkout in flight when the line dropped, journaled a moment before it
        # was applied: nothing changes, nothing is listed.
        r = self.replay("checkout", card, copy, at="now() - interval '1 second'")
        self.assert_outcome(r, "applied")
        self.assertEqual(len(self.loans(copy)), 1)

    def test_changed_after_a_loan_began(self):
        a, b, copy = self.patron(), self.patron(), self.item()
        self.checkout_online(a, copy)
        r = self.replay("checkout", b, copy, at="now() - interval '1 hour'")
        self.assert_outcome(r, "skipped", "changed_after")
        self.assertIn("checked out", r["message"])
        self.assertEqual(self.open_loan(copy)["card"], a)

    def test_changed_after_a_loan_ended(self):
        card, copy = self.patron(), self.item()
        self.replay("checkout", card, copy, at="now() - interval '3 hours'")
        self.checkin_online(copy)
        r = self.replay("renew", card, copy, at="now() - interval '1 hour'")
        self.assert_outcome(r, "skipped", "changed_after")
        self.assertIn("became available", r["message"])
        r = self.replay("checkin", None, copy, at="now() - interval '1 hour'")
        self.assert_outcome(r, "skipped", "changed_after")

    def test_changed_after_a_transit(self):
        card, copy = self.patron(), self.item(branch="PRK")
        # Returned online at DWN: it goes home to PRK in transit.
        self.q("UPDATE item SET current_branch_id = %d WHERE barcode = %s"
               % (ids["DWN"], lit(copy)))
        self.q("UPDATE item SET status_changed_at = now() - interval '1 day'"
               " WHERE barcode = %s" % lit(copy))
        self.assertEqual(self.checkin_online(copy)["route"], "transit")
        r = self.replay("checkout", card, copy, at="now() - interval '1 hour'")
        self.assert_outcome(r, "skipped", "changed_after")
        # A copy in transit for days, sent on again (a new transit) after the offline time:
        # its status did not change, its trip did.
        other = self.item(branch="PRK")
        self.q("UPDATE item SET status = 'in_transit', current_branch_id = %d,"
               " status_changed_at = now() - interval '2 days' WHERE barcode = %s"
               % (ids["DWN"], lit(other)))
        self.q("INSERT INTO transit (item_id, from_branch_id, to_branch_id, reason, sent_at)"
               " SELECT id, %d, %d, 'home', now() - interval '2 days' FROM item"
               " WHERE barcode = %s" % (ids["DWN"], ids["PRK"], lit(other)))
        self.q("UPDATE transit SET cancelled_at = now() WHERE item_id = (SELECT id FROM item"
               " WHERE barcode = %s)" % lit(other))
        self.q("INSERT INTO transit (item_id, from_branch_id, to_branch_id, reason)"
               " SELECT id, %d, %d, 'home' FROM item WHERE barcode = %s"
               % (ids["DWN"], ids["PRK"], lit(other)))
        r = self.replay("checkout", card, other, at="now() - interval '1 hour'")
        self.assert_outcome(r, "skipped", "changed_after")
        self.assertIn("transit", r["message"])

    def test_changed_after_a_hold_capture(self):
        holder, card = self.patron(), self.patron()
        bib = env.new_bib(session=db)
        copy = env.new_item(bib=bib, session=db)
        self.q("INSERT INTO hold (patron_id, bib_id, pickup_branch_id, placed_at)"
               " SELECT p.id, %d, %d, now() - interval '1 day' FROM patron p WHERE p.card = %s"
               % (bib, ids["DWN"], lit(holder)))
        self.assertEqual(self.checkin_online(copy)["route"], "hold_shelf")
        r = self.replay("checkout", card, copy, at="now() - interval '1 hour'")
        self.assert_outcome(r, "skipped", "changed_after")
        self.assertIsNone(self.open_loan(copy))

    def test_on_loan_to_another_patron_since_before_is_checked_in_then_lent(self):
        a, b, copy = self.patron(), self.patron(), self.item()
        self.replay("checkout", a, copy, at="now() - interval '5 hours'")
        at = "now() - interval '1 hour'"
        r = self.replay("checkout", b, copy, at=at)
        self.assert_outcome(r, "warning", "on_loan")
        first, second = self.loans(copy)
        self.assertEqual(first["outcome"], "returned")
        self.assertTrue(self.same_time("'%s'::timestamptz" % first["returned_at"], at))
        self.assertEqual(second["card"], b)
        self.assertTrue(self.same_time("'%s'::timestamptz" % second["checkout_at"], at))
        self.assertEqual(self.q("SELECT string_agg(action, ',' ORDER BY e.at, e.id) FROM circ_event e"
                                " JOIN item i ON i.id = e.item_id WHERE i.barcode = %s"
                                % lit(copy)), "checkout,checkin,checkout")
        self.assertEqual(self.q("SELECT string_agg(pc.loans_out::text, ',' ORDER BY p.card)"
                                " FROM patron_circ pc JOIN patron p ON p.id = pc.patron_id"
                                " WHERE p.card IN (%s, %s)" % (lit(a), lit(b))),
                         "0,1" if a < b else "1,0")

    def test_blocked_expired_or_owing_patron_is_lent_with_a_warning(self):
        copy = self.item()
        blocked = self.patron()
        self.q("INSERT INTO patron_block (patron_id, reason) SELECT id, 'Test' FROM patron"
               " WHERE card = %s" % lit(blocked))
        r = self.replay("checkout", blocked, copy)
        self.assert_outcome(r, "warning", "patron_blocked")
        self.assertEqual(self.open_loan(copy)["card"], blocked)
        self.assertIn("Lent offline", self.open_loan(copy)["override_reason"])
        expired = self.patron(expires="2001-01-01")
        self.assert_outcome(self.replay("checkout", expired, self.item()), "warning",
                            "patron_expired")
        owing = self.patron()
        self.q("SELECT circ_ledger_add(id, 'charge', 5000, NULL, NULL, %d, 'test') FROM patron"
               " WHERE card = %s" % (ids["staff"], lit(owing)))
        self.assert_outcome(self.replay("checkout", owing, self.item()), "warning",
                            "patron_owes")

    def test_copy_on_the_hold_shelf_for_another_is_lent_and_the_hold_waits_again(self):
        holder, card = self.patron(), self.patron()
        bib = env.new_bib(session=db)
        copy = env.new_item(bib=bib, session=db)
        self.q("INSERT INTO hold (patron_id, bib_id, pickup_branch_id, placed_at)"
               " SELECT p.id, %d, %d, now() - interval '3 days' FROM patron p"
               " WHERE p.card = %s" % (bib, ids["DWN"], lit(holder)))
        self.checkin_online(copy)
        self.q("UPDATE item SET status_changed_at = now() - interval '2 days',"
               " updated_at = now() - interval '2 days' WHERE barcode = %s" % lit(copy))
        self.q("UPDATE hold SET captured_at = now() - interval '2 days' WHERE bib_id = %d" % bib)
        r = self.replay("checkout", card, copy, at="now() - interval '1 hour'")
        self.assert_outcome(r, "warning", "item_on_hold")
        self.assertEqual(self.open_loan(copy)["card"], card)
        self.assertEqual(self.q("SELECT status FROM hold WHERE bib_id = %d" % bib), "waiting")

    # ---- checkin

    def test_checkin_not_on_loan_is_skipped(self):
        r = self.replay("checkin", None, self.item())
        self.assert_outcome(r, "skipped", "not_on_loan")

    def test_checkin_ends_the_loan_as_of_its_time_with_fines_to_then(self):
        self.q("UPDATE circ_policy SET fine_cents_per_day = 25, grace_days = 0"
               " WHERE patron_category IS NULL AND item_type IS NULL AND branch_id IS NULL")
        card, copy = self.patron(), self.item()
        out = "now() - interval '20 days'"
        due = self.q("SELECT library_local_date(%s) + 7" % out)
        self.assert_outcome(self.replay("checkout", card, copy, at=out, due=due), "applied")
        back = "now() - interval '3 days'"
        r = self.replay("checkin", None, copy, at=back)
        self.assert_outcome(r, "applied")
        self.assertEqual(r["route"], "shelf")
        late = int(self.q("SELECT library_local_date(%s) - %s::date" % (back, lit(due))))
        self.assertIn("Fine $%.2f" % (late * 25 / 100), r["message"])
        loan = self.loans(copy)[0]
        self.assertTrue(self.same_time("'%s'::timestamptz" % loan["returned_at"], back))
        self.assertEqual(self.q("SELECT amount_cents FROM patron_ledger x JOIN patron p"
                                " ON p.id = x.patron_id WHERE p.card = %s AND kind = 'fine'"
                                % lit(card)), str(late * 25))
        it = self.item_row(copy)
        self.assertEqual(it["status"], "available")
        self.assertTrue(self.same_time("'%s'::timestamptz" % it["status_changed_at"], back))
        # A later entry of the same journal is not "changed after" by this one.
        self.assert_outcome(self.replay("checkout", card, copy, at="now() - interval '2 days'"),
                            "applied")

    def test_checkin_of_a_copy_a_hold_wants_is_not_captured(self):
        holder, card = self.patron(), self.patron()
        bib = env.new_bib(session=db)
        copy = env.new_item(bib=bib, session=db)
        self.replay("checkout", card, copy, at="now() - interval '5 hours'")
        self.q("INSERT INTO hold (patron_id, bib_id, pickup_branch_id)"
               " SELECT p.id, %d, %d FROM patron p WHERE p.card = %s"
               % (bib, ids["DWN"], lit(holder)))
        r = self.replay("checkin", None, copy, at="now() - interval '1 hour'")
        self.assert_outcome(r, "warning", "holds_waiting")
        self.assertEqual(r["route"], "hold")
        self.assertIn("check it in again", r["message"])
        self.assertIsNone(self.open_loan(copy))
        self.assertEqual(self.item_row(copy)["status"], "available")
        self.assertEqual(self.q("SELECT status || '/' || (captured_item_id IS NULL)::text"
                                " FROM hold WHERE bib_id = %d" % bib), "waiting/true")
        # Checked in again at the desk, online: now it is captured.
        self.assertEqual(self.checkin_online(copy)["route"], "hold_shelf")

    def test_checkin_of_a_copy_of_another_branch_waits_for_routing(self):
        card, copy = self.patron(), self.item(branch="PRK")
        self.replay("checkout", card, copy, at="now() - interval '5 hours'")
        r = self.replay("checkin", None, copy, at="now() - interval '1 hour'")
        self.assert_outcome(r, "warning", "not_owned_here")
        self.assertEqual(r["route"], "transit")
        self.assertEqual(self.q("SELECT count(*) FROM transit t JOIN item i ON i.id = t.item_id"
                                " WHERE i.barcode = %s" % lit(copy)), "0")
        self.assertEqual(self.checkin_online(copy)["route"], "transit")

    # ---- renew

    def test_renew_an_open_loan_as_of_its_time(self):
        card, copy = self.patron(), self.item()
        self.replay("checkout", card, copy, at="now() - interval '15 days'")
        at = "now() - interval '1 hour'"
        r = self.replay("renew", card, copy, at=at)
        self.assert_outcome(r, "applied")
        loan = self.open_loan(copy)
        self.assertEqual(loan["renewals"], 1)
        self.assertTrue(self.same_time(
            "'%s'::timestamptz" % loan["due_at"],
            "circ_due(%d, %s, circ_rule('adult', 'book', %d))" % (ids["DWN"], at, ids["DWN"])))
        self.assertEqual(self.q("SELECT count(*) FROM circ_event e JOIN item i ON i.id = e.item_id"
                                " WHERE i.barcode = %s AND action = 'renew' AND e.at = %s"
                                % (lit(copy), at)), "1")
        # Given a due date: that one.
        given = self.q("SELECT library_local_date(now()) + 30")
        self.assert_outcome(self.replay("renew", card, copy, at="now() - interval '30 minutes'",
                                        due=given), "applied")
        self.assertEqual(self.q("SELECT library_local_date(due_at) FROM loan WHERE id = %d"
                                % loan["id"]), given)
        # Over the limit (2 renewals for a book): renewed, with a warning.
        self.q("UPDATE loan SET renewals = 5 WHERE id = %d" % loan["id"])
        later = self.q("SELECT library_local_date(now()) + 40")
        self.assert_outcome(self.replay("renew", card, copy, at="now() - interval '10 minutes'",
                                        due=later), "warning", "renewal_limit")

    def test_renew_not_on_loan_to_that_patron_is_skipped(self):
        a, b, copy = self.patron(), self.patron(), self.item()
        self.assert_outcome(self.replay("renew", a, copy), "skipped", "not_on_loan")
        self.replay("checkout", a, copy, at="now() - interval '3 hours'")
        self.assert_outcome(self.replay("renew", b, copy), "skipped", "not_on_loan")

    # ---- clock, keys

    def test_a_time_in_the_future_is_taken_as_now_and_an_old_one_is_skipped(self):
        card, copy = self.patron(), self.item()
        r = self.replay("checkout", card, copy, at="now() + interval '1 hour'")
        self.assert_outcome(r, "warning", "too_far_ahead")
        loan = self.open_loan(copy)
        self.assertEqual(self.q("SELECT '%s'::timestamptz BETWEEN now() AND clock_timestamp()"
                                % loan["checkout_at"]), "t")
        # A few minutes ahead is a clock's ordinary error: taken as it is.
        self.assert_outcome(self.replay("checkout", card, self.item(),
                                        at="now() + interval '2 minutes'"), "applied")
        r = self.replay("checkout", card, self.item(), at="now() - interval '31 days'")
        self.assert_outcome(r, "skipped", "in_the_past")

    def test_a_resent_key_returns_the_stored_answer_and_writes_nothing_again(self):
        card, copy = self.patron(), self.item()
        k = key()
        first = self.replay("checkout", "29999999999999", copy, k=k)
        again_skipped = self.replay("checkout", "29999999999999", copy, k=k)
        self.assertEqual(first, again_skipped)
        self.assertEqual(len(self.exceptions(k)), 1)
        k2 = key()
        first = self.replay("checkout", card, copy, k=k2)
        again = self.replay("checkout", card, copy, k=k2)
        self.assertEqual(first, again)
        self.assertEqual(len(self.loans(copy)), 1)
        self.assertEqual(self.q("SELECT count(*) FROM circ_event e JOIN item i"
                                " ON i.id = e.item_id WHERE i.barcode = %s" % lit(copy)), "1")
        # The key of another kind of request is refused.
        self.refused("SELECT * FROM circ_checkin(%s::uuid, %d, %d, %d, %s, NULL)"
                     % (lit(k2), ids["staff"], ids["workstation"], ids["DWN"], lit(copy)),
                     "CR409", "request_key_reused")
        # Resent by whoever logs in next at the desk: the same answer.
        other = int(self.q("SELECT id FROM staff WHERE username = 'olga'"))
        by_other = self.one(self.replay_sql("checkout", card, copy, k=k2).replace(
            "uuid, %d," % ids["staff"], "uuid, %d," % other))
        self.assertEqual(by_other, first)
        # Two days on, the key's log row is gone; an entry of the report still answers
        # from its row, and is not listed twice.
        self.q("DELETE FROM request_log WHERE key IN (%s, %s)" % (lit(k), lit(k2)))
        first = self.replay("checkout", "29999999999999", copy, k=k)
        self.assertEqual(first, again_skipped)
        self.assertEqual(len(self.exceptions(k)), 1)
        # An applied one replayed again finds the loan it made: nothing twice.
        self.assert_outcome(self.replay("checkout", card, copy, k=k2), "applied")
        self.assertEqual(len(self.loans(copy)), 1)

    def test_malformed_entries_are_refused(self):
        card, copy = self.patron(), self.item()
        self.refused(self.replay_sql("lend", card, copy), "CR400", "field:op")
        self.refused(self.replay_sql("checkout", None, copy), "CR400", "field:card")
        self.refused(self.replay_sql("checkout", card, ""), "CR400", "field:barcode")
        self.refused(self.replay_sql("checkout", card, copy, at="NULL::timestamptz"),
                     "CR400", "field:at_ms")
        self.assertEqual(self.exceptions(), [])

    # ---- the cache

    def cache(self, branch="DWN"):
        rows = self.rows("SELECT * FROM offline_cache(%d)" % ids[branch])
        return {k: [r for r in rows if r["kind"] == k] for k in ("head", "blocked", "rule",
                                                                 "closed")}

    def test_cache_lists_blocked_cards_rules_and_closed_days(self):
        fine, blocked, expired, owing, long_gone = (self.patron() for _ in range(5))
        for card in (blocked, long_gone):
            self.q("INSERT INTO patron_block (patron_id, reason) SELECT id, 'Test' FROM patron"
                   " WHERE card = %s" % lit(card))
        # Expired more than 3 years ago: not in the cache, blocked or not.
        self.q("UPDATE patron SET expires_on = library_today() - 1100 WHERE card = %s"
               % lit(long_gone))
        self.q("UPDATE patron SET expires_on = library_today() - 1 WHERE card = %s"
               % lit(expired))
        self.q("SELECT circ_ledger_add(id, 'charge', 1000, NULL, NULL, %d, 'test') FROM patron"
               " WHERE card = %s" % (ids["staff"], lit(owing)))
        self.q("INSERT INTO patron_card (card, patron_id) SELECT 'OLDCARD-1', id FROM patron"
               " WHERE card = %s" % lit(blocked))
        merged = self.patron()
        self.q("UPDATE patron SET merged_into = (SELECT id FROM patron WHERE card = %s)"
               " WHERE card = %s" % (lit(fine), lit(merged)))
        self.q("INSERT INTO branch_closed (branch_id, day, reason) VALUES"
               " (%d, library_today() + 10, 'Test'), (%d, library_today() + 120, 'Later')"
               % (ids["DWN"], ids["DWN"]))
        c = self.cache()
        head, = c["head"]
        self.assertEqual(head["a"], "DWN")
        self.assertEqual(head["n"], int(self.q("SELECT loan_days FROM circ_rule(NULL, 'book',"
                                               " %d)" % ids["DWN"])), head)
        self.assertLess(abs(head["ms"] - int(self.q(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"))), 60000)
        why = {r["a"]: r["b"] for r in c["blocked"]}
        self.assertEqual([why.get(x) for x in (fine, blocked, expired, owing, merged,
                                               "OLDCARD-1", long_gone)],
                         [None, "blocked", "expired", "fines", "merged", "blocked", None])
        rules = {(r["a"], r["b"]): r["n"] for r in c["rule"]}
        self.assertEqual(rules[("adult", "dvd")], 7)
        self.assertEqual(rules[("adult", "book")], 21)
        self.assertEqual(len(rules), int(self.q(
            "SELECT (SELECT count(*) FROM patron_category) * (SELECT count(*) FROM item_type)")))
        # The same patrons as patron_standing, the definition checkout uses.
        self.assertEqual(self.q(
            "SELECT count(*) FROM patron p, patron_standing(p.id) s WHERE p.merged_into IS NULL"
            " AND p.expires_on >= library_today() - 1095"
            " AND (s.expired OR s.blocked OR s.owes) AND NOT EXISTS (SELECT 1 FROM"
            " offline_cache(%d) c WHERE c.kind = 'blocked' AND c.a = p.card)" % ids["DWN"]), "0")
        self.assertEqual(self.q(
            "SELECT count(*) FROM offline_cache(%d) c JOIN patron p ON p.card = c.a"
            " CROSS JOIN LATERAL patron_standing(p.id) s WHERE c.kind = 'blocked'"
            " AND p.merged_into IS NULL AND NOT (s.expired OR s.blocked OR s.owes)"
            % ids["DWN"]), "0")
        closed = [r["a"] for r in c["closed"]]
        self.assertIn(self.q("SELECT (library_today() + 10)::text"), closed)
        self.assertNotIn(self.q("SELECT (library_today() + 120)::text"), closed)
        # Days the branch has no opening hours are closed too.
        self.q("DELETE FROM branch_hours WHERE branch_id = %d AND weekday = extract(isodow FROM"
               " library_today() + 3)" % ids["DWN"])
        self.assertIn(self.q("SELECT (library_today() + 3)::text"),
                      [r["a"] for r in self.cache()["closed"]])

    # ---- the report

    def test_list_resolve_and_scope(self):
        card = self.patron()
        r = self.replay("checkin", None, self.item())
        xid = r["exception_id"]
        listed = self.rows("SELECT * FROM offline_exception_list(NULL, 'DWN', NULL, false, 10)")
        self.assertIn(xid, [x["id"] for x in listed])
        x = [x for x in listed if x["id"] == xid][0]
        self.assertEqual((x["branch_code"], x["workstation"], x["clerk"], x["op"], x["outcome"],
                          x["reason"]), ("DWN", "desk-dwn", CLERK, "checkin", "skipped",
                                         "not_on_loan"))
        self.assertIsNotNone(x["title"])
        self.refused("SELECT * FROM offline_exception_list(%d, 'DWN', NULL, false, 10)"
                     % ids["PRK"], "CR403", "branch")
        self.refused("SELECT * FROM offline_exception_list(NULL, 'NOPE', NULL, false, 10)",
                     "CR400", "field:branch_code")
        self.refused("SELECT * FROM offline_exception_resolve(%d, %d, %d, 'done')"
                     % (ids["staff"], ids["PRK"], xid), "CR403", "branch")
        self.refused("SELECT * FROM offline_exception_resolve(%d, NULL, -1, 'done')"
                     % ids["staff"], "CR404", "offline_exception")
        self.refused("SELECT * FROM offline_exception_resolve(%d, NULL, %d, ' ')"
                     % (ids["staff"], xid), "CR400", "field:note")
        done = self.one("SELECT * FROM offline_exception_resolve(%d, %d, %d, 'Shelved it')"
                        % (ids["staff"], ids["DWN"], xid))
        self.assertEqual((done["resolution"], done["resolved_by"]), ("Shelved it", "admin"))
        self.assertIsNotNone(done["resolved_at"])
        ids_open = [x["id"] for x in self.rows(
            "SELECT * FROM offline_exception_list(NULL, 'DWN', NULL, false, 10)")]
        self.assertNotIn(xid, ids_open)
        ids_all = [x["id"] for x in self.rows(
            "SELECT * FROM offline_exception_list(NULL, 'DWN', NULL, true, 10)")]
        self.assertIn(xid, ids_all)
        # Since: uploaded before that day, not listed.
        self.assertNotIn(xid, [x["id"] for x in self.rows(
            "SELECT * FROM offline_exception_list(NULL, 'DWN', library_today() + 1, true, 10)")])
        self.assertTrue(card)

    def test_resolved_exceptions_are_purged_90_days_after_by_the_daily_job(self):
        made = []
        for days in (91, 89, None):
            r = self.replay("checkin", None, self.item())
            made.append(r["exception_id"])
            if days:
                self.q("UPDATE offline_exception SET resolved_at = now() - interval '%d days',"
                       " resolved_by = %d, resolution = 'ok' WHERE id = %d"
                       % (days, ids["staff"], r["exception_id"]))
        self.q("SELECT * FROM holds_daily()")
        left = [x["id"] for x in self.exceptions()]
        self.assertEqual(left, made[1:])


# ---------------------------------------------------------------- over the wire


def pb(*fields):
    return harness.pb_message(*fields)


def wire(user):
    branch = dict((u, b) for u, _, b in STAFF)[user]
    return main.logged_in_wire(workstation=WS[branch], user=user, password=PASSWORD)


def replay_body(op, card, barcode, at_ms=None, due=None, clerk="wire-test"):
    import time
    at_ms = at_ms or int(time.time() * 1000) - 60000
    return pb((1, op), (2, card), (3, barcode), (4, at_ms), (5, at_ms - 2000), (6, 2000),
              (7, due), (8, clerk))


class Wire(unittest.TestCase):
    def test_clerk_replays_at_own_branch_and_manager_sees_the_report(self):
        card = env.new_patron()
        copy = env.new_item()
        w = wire("olga")
        k = key()
        r = w.call(REQ_REPLAY, replay_body("checkout", card, copy), key=k)
        self.assertEqual(r.status, "ok", r)
        body = r.body(REQ_REPLAY)
        self.assertEqual(body[1], [b"applied"])
        self.assertEqual(env.psql("SELECT b.code || '/' || s.username FROM loan l"
                                  " JOIN item i ON i.id = l.item_id JOIN branch b"
                                  " ON b.id = l.checkout_branch_id JOIN staff s"
                                  " ON s.id = l.checkout_staff_id WHERE i.barcode = '%s'"
                                  % copy), "DWN/olga")
        again = w.call(REQ_REPLAY, replay_body("checkout", card, copy), key=k)
        self.assertEqual(again.body(REQ_REPLAY), body)
        # A skipped one: listed for the manager, not for the clerk.
        r = w.call(REQ_REPLAY, replay_body("checkin", None, env.new_item()), key=key())
        skipped = r.body(REQ_REPLAY)
        self.assertEqual((skipped[1], skipped[2]), ([b"skipped"], [b"not_on_loan"]))
        xid = skipped[5][0]
        r = w.call(REQ_LIST, pb())
        self.assertEqual((r.status, r.reason), ("forbidden", "role"), r)
        r = w.call(REQ_RESOLVE, pb((1, xid), (2, "done")))
        self.assertEqual((r.status, r.reason), ("forbidden", "role"), r)
        # The cache: every staff role at its branch.
        r = w.call(REQ_CACHE, pb())
        self.assertEqual(r.status, "ok", r)
        cache = r.body(REQ_CACHE)
        self.assertEqual(cache[2], [b"DWN"])
        self.assertIn(5, cache)
        w.close()

        m = wire("omar")
        r = m.call(REQ_LIST, pb())
        self.assertEqual(r.status, "ok", r)
        rows = [harness.pb_decode(x) for x in r.body(REQ_LIST).get(1, [])]
        mine = [x for x in rows if x[1] == [xid]]
        self.assertEqual(len(mine), 1, rows)
        self.assertEqual((mine[0][2], mine[0][3], mine[0][4]), ([b"DWN"], [b"desk-dwn"],
                                                                 [b"wire-test"]))
        r = m.call(REQ_RESOLVE, pb((1, xid), (2, "Found on the shelf")))
        self.assertEqual(r.status, "ok", r)
        resolved = r.body(REQ_RESOLVE)
        self.assertEqual((resolved[15], resolved[16]), ([b"omar"], [b"Found on the shelf"]))
        r = m.call(REQ_RESOLVE, pb((1, 10 ** 12), (2, "x")))
        self.assertEqual((r.status, r.reason), ("not_found", "offline_exception"), r)
        m.close()

        # Another branch's manager: not this branch's report.
        p = wire("pete")
        r = p.call(REQ_LIST, pb((1, "DWN")))
        self.assertEqual((r.status, r.reason), ("forbidden", "branch"), r)
        r = p.call(REQ_RESOLVE, pb((1, xid), (2, "mine?")))
        self.assertEqual((r.status, r.reason), ("forbidden", "branch"), r)
        r = p.call(REQ_LIST, pb())
        self.assertEqual(r.status, "ok", r)
        self.assertNotIn(xid, [harness.pb_decode(x)[1][0] for x in r.body(REQ_LIST).get(1, [])])
        p.close()

    def test_entries_never_applicable_are_skipped_and_listed(self):
        # A mis-scan longer than any barcode, a desk clock reading 1970, a card
        # longer than any: answered OK, skipped (bad_entry), in the report, so
        # that the desk goes on with the rest of its journal.
        w = wire("olga")
        copy, card = env.new_item(), env.new_patron()
        cases = [("checkout", card, "3" * 70, None), ("checkin", None, copy, 5),
                 ("checkout", "2" * 65, copy, None)]
        for op, c, barcode, at_ms in cases:
            k = key()
            r = w.call(REQ_REPLAY, replay_body(op, c, barcode, at_ms=at_ms), key=k)
            self.assertEqual(r.status, "ok", r)
            body = r.body(REQ_REPLAY)
            self.assertEqual((body[1], body[2]), ([b"skipped"], [b"bad_entry"]), body)
            self.assertEqual(w.call(REQ_REPLAY, replay_body(op, c, barcode, at_ms=at_ms),
                                    key=k).body(REQ_REPLAY), body)  # resent: the same
            self.assertEqual(env.psql("SELECT reason || '/' || coalesce(left(card, 1), '') FROM"
                                      " offline_exception WHERE id = %d" % body[5][0]),
                             "bad_entry/" + (c or "")[:1])
        self.assertEqual(env.psql("SELECT count(*) FROM loan l JOIN item i ON i.id = l.item_id"
                                  " WHERE i.barcode = '%s'" % copy), "0")
        w.close()

    def test_replay_dated_after_the_login_is_no_override(self):
        # A blocked patron and a copy on another patron's loan: offline, both
        # would be lent with a warning. Dated after the session logged in, the
        # entry is no offline scan: skipped (while_online), nothing changed.
        card, other = env.new_patron(), env.new_patron()
        copy = env.new_item()
        env.psql("INSERT INTO patron_block (patron_id, reason) SELECT id, 'Test' FROM patron"
                 " WHERE card = '%s'" % card)
        w = wire("olga")
        import time
        r = w.call(REQ_REPLAY, replay_body("checkout", other, copy), key=key())
        self.assertEqual(r.body(REQ_REPLAY)[1], [b"applied"])
        later = int(time.time() * 1000) + 60000  # not too far ahead to be taken as now
        r = w.call(REQ_REPLAY, replay_body("checkout", card, copy, at_ms=later), key=key())
        self.assertEqual(r.status, "ok", r)
        body = r.body(REQ_REPLAY)
        self.assertEqual((body[1], body[2]), ([b"skipped"], [b"while_online"]), body)
        self.assertIn(b"after this upload's session logged in", body[3][0])
        self.assertEqual(env.psql("SELECT p.card FROM loan l JOIN item i ON i.id = l.item_id"
                                  " JOIN patron p ON p.id = l.patron_id WHERE i.barcode = '%s'"
                                  " AND l.returned_at IS NULL" % copy), other)
        self.assertEqual(env.psql("SELECT outcome || '/' || reason FROM offline_exception"
                                  " WHERE id = %d" % body[5][0]), "skipped/while_online")
        w.close()

    def test_malformed_requests_are_refused_with_their_reason(self):
        w = wire("omar")
        copy, card = env.new_item(), env.new_patron()
        before = env.psql("SELECT count(*) FROM loan") + "/" + env.psql(
            "SELECT count(*) FROM offline_exception")
        cases = [
            (REQ_REPLAY, replay_body("checkout", card, copy), None, "request_key"),
            (REQ_REPLAY, replay_body("lend", card, copy), key(), "field:op"),
            (REQ_REPLAY, replay_body("checkout", None, copy), key(), "field:card"),
            (REQ_REPLAY, replay_body("checkout", card, None), key(), "field:barcode"),
            (REQ_REPLAY, replay_body("checkout", card, "3" * 300), key(), "field:barcode"),
            (REQ_REPLAY, pb((1, "checkin"), (3, copy)), key(), "field:at_ms"),
            (REQ_REPLAY, replay_body("checkout", card, copy, due="soon"), key(), "field:due"),
            (REQ_REPLAY, replay_body("checkout", card, copy, clerk="c" * 200), key(),
             "field:clerk"),
            (REQ_LIST, pb((2, "yesterday")), None, "field:since"),
            (REQ_LIST, pb((4, 5000)), None, "field:limit"),
            (REQ_LIST, pb((1, "NOPE")), None, "field:branch_code"),
            (REQ_RESOLVE, pb((2, "x")), None, "field:id"),
            (REQ_RESOLVE, pb((1, 1)), None, "field:note"),
            (REQ_RESOLVE, pb((1, 1), (2, "n" * 3000)), None, "field:note"),
        ]
        for req, body, k, reason in cases:
            r = w.call(req, body, key=k)
            self.assertEqual((r.status, r.reason), ("bad_request", reason), (req, reason, r))
        self.assertEqual(w.call(REQ_PING).status, "ok")
        w.close()
        after = env.psql("SELECT count(*) FROM loan") + "/" + env.psql(
            "SELECT count(*) FROM offline_exception")
        self.assertEqual(after, before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
