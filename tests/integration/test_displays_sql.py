#!/usr/bin/env python3
"""The display rules (sql/rules/displays.sql) and the checkin route "display"
(circ_checkin, circulation.sql), called directly in SQL as carreld calls them.

No daemon and no client, as in test_rules.py and test_service_sql.py: each test opens one
transaction on a harness session, makes its bibs, copies and displays in it, calls
display_save, display_item_add, circ_checkin, display_report ... and rolls everything back.
tearDownModule checks that nothing was left.

Uses for the report are circ_event rows inserted with the times the test needs (the rules
read the events, whoever wrote them); the days are the library's (America/New_York).
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
ids = {}       # branch code -> id; "staff", "workstation": the administrator's

lit = harness.sql_literal

DISPLAY_COLS = ["id", "branch_code", "place", "theme", "curator", "starts_on", "ends_on",
                "status", "copies", "note", "version"]


def setUpModule():
    global env, db
    env, db = harness.start_rule_session(DisplayTest, ids)


def tearDownModule():
    harness.stop_rule_session(env, db,
                              "SELECT (SELECT count(*) FROM display)"
                              " + (SELECT count(*) FROM display_item)"
                              " + (SELECT count(*) FROM loan)")


def key():
    return str(uuid.uuid4())


def jdoc(doc):
    return lit(json.dumps(doc)) + "::jsonb"


class DisplayTest(harness.TransactionTest):
    """One transaction per test, rolled back whatever happens (harness.TransactionTest)."""

    # ---- rows made in the transaction

    def today(self, days=0):
        return self.q("SELECT to_char(library_today() + %d, 'YYYY-MM-DD')" % days)

    def bib(self, title=None, year=""):
        bib = env.new_bib(title, session=db)
        if year:
            self.q("UPDATE bib SET pub_year = %s WHERE id = %d" % (lit(year), bib))
        return bib

    def copy(self, bib=None, branch="DWN", **kw):
        return env.new_item(bib if bib is not None else self.bib(), branch=branch, session=db,
                            **kw)

    def patron(self):
        return env.new_patron("adult", "DWN", session=db)

    def item_id(self, barcode):
        return int(self.q("SELECT id FROM item WHERE barcode = %s" % lit(barcode)))

    # ---- the rule functions, as carreld calls them

    def save_sql(self, scope=None, end_now=False, staff=None, **display):
        return ("SELECT * FROM display_save(%d, %d, %s, %s, %s)"
                % (staff or ids["staff"], ids["workstation"], lit(scope),
                   jdoc({"display": display}), lit(end_now)))

    def save(self, **kw):
        return self.one(self.save_sql(**kw))

    def make(self, theme="Winter reads", place="front window", branch="DWN", start=0, end=13,
             **kw):
        return self.save(theme=theme, place=place, branch_code=branch,
                         starts_on=self.today(start), ends_on=self.today(end), **kw)

    def scan_sql(self, display, barcode, remove=False, scope=None, k=None):
        return ("SELECT * FROM display_item_add(%s::uuid, %d, %d, %s, %s, %s, %s)"
                % (lit(k or key()), ids["staff"], ids["workstation"], lit(scope), lit(display),
                   lit(barcode), lit(remove)))

    def scan(self, display, barcode, **kw):
        return self.one(self.scan_sql(display, barcode, **kw))

    def checkin(self, barcode, branch="DWN"):
        return self.one("SELECT * FROM circ_checkin(gen_random_uuid(), %d, %d, %d, %s, NULL)"
                        % (ids["staff"], ids["workstation"], ids[branch], lit(barcode)))

    def checkout(self, card, barcode, branch="DWN"):
        return self.one("SELECT * FROM circ_checkout(gen_random_uuid(), %d, %d, %d, %s, %s,"
                        " false, NULL, false)"
                        % (ids["staff"], ids["workstation"], ids[branch], lit(card),
                           lit(barcode)))

    def display_text(self, barcode):
        return self.q("SELECT coalesce(item_display_text(id), '-') FROM item WHERE barcode = %s"
                      % lit(barcode))


class Save(DisplayTest):
    def test_a_new_display_is_running_today(self):
        d = self.make(note="Cosy books")
        self.assertEqual(list(d), DISPLAY_COLS)
        self.assertEqual((d["branch_code"], d["place"], d["theme"], d["curator"], d["status"],
                          d["copies"], d["note"], d["version"]),
                         ("DWN", "front window", "Winter reads", "admin", "running", 0,
                          "Cosy books", 1))
        self.assertEqual((d["starts_on"], d["ends_on"]), (self.today(), self.today(13)))
        self.assertEqual(self.q("SELECT action FROM admin_audit ORDER BY id DESC LIMIT 1"),
                         "display_create")

    def test_planned_and_ended_by_their_days(self):
        self.assertEqual(self.make(start=3, end=5)["status"], "planned")
        self.assertEqual(self.make(start=-9, end=-2)["status"], "ended")

    def test_the_days_and_fields_are_checked(self):
        base = dict(theme="T", place="P", branch_code="DWN", starts_on=self.today(),
                    ends_on=self.today(3))
        self.refused(self.save_sql(**dict(base, ends_on=self.today(-1))), "CR400",
                     "field:ends_on")
        self.refused(self.save_sql(**dict(base, starts_on="2026-13-01")), "CR400",
                     "field:starts_on")
        self.refused(self.save_sql(**dict(base, theme="")), "CR400", "field:theme")
        self.refused(self.save_sql(**dict(base, place="x" * 101)), "CR400", "field:place")
        self.refused(self.save_sql(**dict(base, branch_code="NOPE")), "CR400",
                     "field:branch_code")
        self.refused(self.save_sql(**dict(base, note="n" * 501)), "CR400", "field:note")
        self.refused(self.save_sql(**dict(base, curator="nobody-here")), "CR404", "staff")

    def test_an_edit_needs_the_version_read(self):
        d = self.make()
        e = self.save(id=d["id"], version=1, theme="Snow", curator="admin")
        self.assertEqual((e["theme"], e["place"], e["version"]), ("Snow", "front window", 2))
        self.refused(self.save_sql(id=d["id"], version=1, theme="Ice"), "CR409",
                     "stale_version")
        self.refused(self.save_sql(id=d["id"], theme="Ice"), "CR400", "field:version")
        self.refused(self.save_sql(id=d["id"], version=2, branch_code="ALB"), "CR400",
                     "field:branch_code")
        self.refused(self.save_sql(id=987654321, version=1), "CR404", "display")

    def test_only_the_scope_branch(self):
        self.refused(self.save_sql(scope=ids["ALB"], theme="T", place="P", branch_code="DWN",
                                   starts_on=self.today(), ends_on=self.today()),
                     "CR403", "branch")
        d = self.make()
        self.refused(self.save_sql(scope=ids["ALB"], id=d["id"], version=1, theme="X"),
                     "CR403", "branch")

    def test_end_now_takes_the_copies_off_display(self):
        d = self.make()
        barcode = self.copy()
        self.scan(d["id"], barcode)
        self.assertNotEqual(self.display_text(barcode), "-")
        e = self.save(id=d["id"], version=1, end_now=True)
        self.assertEqual((e["status"], e["ends_on"], e["copies"]), ("ended", self.today(), 1))
        audit = self.one("SELECT action, target, detail FROM admin_audit ORDER BY id DESC LIMIT 1")
        self.assertEqual((audit["action"], audit["target"]),
                         ("display_end", "display/%d" % d["id"]))
        self.assertEqual(sorted(audit["detail"]), ["ended_at", "ends_on"])
        self.assertEqual(self.display_text(barcode), "-")
        self.refused(self.save_sql(id=d["id"], version=2, theme="Again"), "CR409",
                     "display_ended")
        self.refused(self.scan_sql(d["id"], barcode, remove=True), "CR409", "display_ended")

    def test_new_days_may_not_put_a_copy_on_two_displays(self):
        """display_item_add keeps a copy off two displays over the same days; an edit of
        the days must not get round that."""
        first = self.make(theme="One", start=0, end=10)
        later = self.make(theme="Two", start=11, end=20)
        barcode = self.copy()
        self.scan(first["id"], barcode)
        self.scan(later["id"], barcode)
        e = self.refused(self.save_sql(id=later["id"], version=later["version"],
                                       starts_on=self.today(5)), "CR409", "on_display")
        self.assertIn(barcode, str(e))
        self.assertIn("One", str(e))
        e = self.refused(self.save_sql(id=first["id"], version=first["version"],
                                       ends_on=self.today(15)), "CR409", "on_display")
        self.assertIn("Two", str(e))
        # Days that stay apart are fine; so is an edit that leaves the days alone, and
        # a copy taken off the other display no longer counts.
        self.assertEqual(self.save(id=later["id"], version=later["version"],
                                   starts_on=self.today(12))["starts_on"], self.today(12))
        self.assertEqual(self.save(id=first["id"], version=first["version"],
                                   theme="One again")["theme"], "One again")
        self.scan(later["id"], barcode, remove=True)
        self.assertEqual(self.save(id=first["id"], version=first["version"] + 1,
                                   ends_on=self.today(15))["ends_on"], self.today(15))

    def test_end_now_needs_no_version_but_checks_one_given(self):
        d = self.make()
        self.save(id=d["id"], version=1, note="changed")
        self.refused(self.save_sql(id=d["id"], version=1, end_now=True), "CR409",
                     "stale_version")
        self.assertEqual(self.save(id=d["id"], end_now=True)["status"], "ended")

    def test_end_now_of_a_planned_display(self):
        d = self.make(start=5, end=9)
        e = self.save(id=d["id"], version=1, end_now=True)
        self.assertEqual((e["status"], e["starts_on"], e["ends_on"]),
                         ("ended", self.today(5), self.today(5)))


class List(DisplayTest):
    def test_running_then_planned_then_ended(self):
        later = self.make(theme="Later", start=4, end=8)
        soon = self.make(theme="Soon", start=1, end=8)
        long_ = self.make(theme="Long", start=-3, end=30)
        short = self.make(theme="Short", start=-3, end=2)
        old = self.make(theme="Old", start=-30, end=-20)
        older = self.make(theme="Older", start=-60, end=-50)
        self.make(theme="Elsewhere", branch="ALB")
        mine = [d["theme"] for d in self.rows("SELECT * FROM display_list('DWN', false)")
                if d["id"] >= later["id"]]
        self.assertEqual(mine, ["Short", "Long", "Soon", "Later"])
        mine = [d["theme"] for d in self.rows("SELECT * FROM display_list('dwn', true)")
                if d["id"] >= later["id"]]
        self.assertEqual(mine, ["Short", "Long", "Soon", "Later", "Old", "Older"])
        every = [d["theme"] for d in self.rows("SELECT * FROM display_list(NULL, false)")]
        self.assertIn("Elsewhere", every)
        self.refused("SELECT * FROM display_list('NOPE', false)", "CR400", "field:branch_code")
        del long_, short, old, older, soon

    def test_get_and_items(self):
        d = self.make()
        a = self.copy(self.bib("Alpha"))
        b = self.copy(self.bib("Beta"))
        self.q("UPDATE item SET call_number = 'FIC B' WHERE barcode = %s" % lit(a))
        self.q("UPDATE item SET call_number = 'FIC A' WHERE barcode = %s" % lit(b))
        self.scan(d["id"], a)
        self.scan(d["id"], b)
        self.scan(d["id"], b, remove=True)
        got = self.one("SELECT * FROM display_get(%d)" % d["id"])
        self.assertEqual((got["copies"], got["status"]), (1, "running"))
        items = self.rows("SELECT * FROM display_items(%d)" % d["id"])
        self.assertEqual([list(r) for r in items][0],
                         ["barcode", "title", "call_number", "added_on", "removed_on", "status",
                          "checkouts"])
        # on it first, then the copies taken off
        self.assertEqual([(r["barcode"], r["removed_on"]) for r in items],
                         [(a, ""), (b, self.today())])
        self.refused("SELECT * FROM display_get(987654321)", "CR404", "display")


class Scan(DisplayTest):
    def test_a_copy_goes_on_and_its_location_says_so(self):
        d = self.make(theme="Winter reads", place="front window")
        barcode = self.copy(self.bib("Snow Falling"))
        self.assertEqual(self.display_text(barcode), "-")
        r = self.scan(d["id"], barcode)
        self.assertEqual((r["display_id"], r["barcode"], r["title"], r["added_on"],
                          r["removed_on"], r["status"], r["checkouts"], r["copies"]),
                         (d["id"], barcode, "Snow Falling", self.today(), "", "available", 0, 1))
        self.assertEqual(r["message"], "On Winter reads (front window).")
        self.assertEqual(self.display_text(barcode), "on display: Winter reads (front window)")
        audit = self.one("SELECT action, changes FROM audit_event WHERE entity = 'item'"
                         " AND entity_id = %d ORDER BY id DESC LIMIT 1" % self.item_id(barcode))
        self.assertEqual(audit["action"], "display_add")
        self.assertEqual(audit["changes"]["display"]["after"], d["id"])

    def test_twice_changes_nothing_and_says_so(self):
        d = self.make()
        barcode = self.copy()
        self.scan(d["id"], barcode)
        r = self.scan(d["id"], barcode)
        self.assertIn("already on", r["message"])
        self.assertEqual(r["copies"], 1)
        self.assertEqual(self.q("SELECT count(*) FROM display_item WHERE display_id = %d"
                                % d["id"]), "1")

    def test_taken_off(self):
        d = self.make()
        barcode = self.copy()
        self.scan(d["id"], barcode)
        r = self.scan(d["id"], barcode, remove=True)
        self.assertEqual((r["removed_on"], r["copies"]), (self.today(), 0))
        self.assertEqual(self.display_text(barcode), "-")
        again = self.scan(d["id"], barcode, remove=True)
        self.assertIn("was not on", again["message"])
        other = self.copy()
        never = self.scan(d["id"], other, remove=True)
        self.assertEqual((never["barcode"], never["added_on"], never["copies"]), (other, "", 0))

    def test_a_retry_with_the_key_applies_once(self):
        d = self.make()
        barcode = self.copy()
        k = key()
        first = self.scan(d["id"], barcode, k=k)
        self.scan(d["id"], barcode, remove=True)
        retry = self.scan(d["id"], barcode, k=k)
        self.assertEqual(retry, first)
        self.assertEqual(self.display_text(barcode), "-")

    def test_planned_display_shows_nothing_yet(self):
        d = self.make(start=2, end=9)
        barcode = self.copy()
        self.scan(d["id"], barcode)
        self.assertEqual(self.display_text(barcode), "-")

    def test_refusals(self):
        d = self.make()
        self.refused(self.scan_sql(987654321, self.copy()), "CR404", "display")
        self.refused(self.scan_sql(d["id"], "no-such-copy"), "CR404", "item_not_found")
        self.refused(self.scan_sql(d["id"], self.copy(branch="ALB")), "CR409", "not_owned_here")
        self.refused(self.scan_sql(d["id"], self.copy(), scope=ids["ALB"]), "CR403", "branch")
        ended = self.make(start=-9, end=-1)
        self.refused(self.scan_sql(ended["id"], self.copy()), "CR409", "display_ended")

    def test_a_copy_gone_from_the_collection_is_refused(self):
        d = self.make()
        for status in ("withdrawn", "lost", "missing"):
            barcode = self.copy(status=status)
            e = self.refused(self.scan_sql(d["id"], barcode), "CR422", "item_status")
            self.assertIn(status, str(e))
        self.assertEqual(self.q("SELECT count(*) FROM display_item WHERE display_id = %d"
                                % d["id"]), "0")

    def test_on_display_only_while_on_the_shelf_there(self):
        """A copy keeps its open row when it is checked out (checkin puts it back), but
        reads "on display" only while it is on the shelf at the display's branch."""
        d = self.make(theme="Winter reads", place="front window")
        barcode = self.copy()
        self.scan(d["id"], barcode)
        shown = "on display: Winter reads (front window)"
        self.assertEqual(self.display_text(barcode), shown)
        self.checkout(self.patron(), barcode)
        self.assertEqual(self.display_text(barcode), "-")
        self.checkin(barcode)
        self.assertEqual(self.display_text(barcode), shown)
        self.q("UPDATE item SET current_branch_id = %d WHERE barcode = %s"
               % (ids["ALB"], lit(barcode)))
        self.assertEqual(self.display_text(barcode), "-")
        self.q("UPDATE item SET current_branch_id = %d WHERE barcode = %s"
               % (ids["DWN"], lit(barcode)))
        for status in ("withdrawn", "lost", "missing", "in_transit"):
            self.q("UPDATE item SET status = %s WHERE barcode = %s" % (lit(status), lit(barcode)))
            self.assertEqual(self.display_text(barcode), "-", status)

    def test_the_pull_list_says_on_display(self):
        d = self.make(theme="Winter reads", place="front window")
        bib = self.bib()
        barcode = self.copy(bib, location="Fiction")
        self.scan(d["id"], barcode)
        h = self.one("SELECT * FROM hold_place(gen_random_uuid(), %d, %d, %s, %d, NULL, 'DWN',"
                     " NULL, NULL)" % (ids["staff"], ids["DWN"], lit(self.patron()), bib))
        self.assertEqual(h["status"], "waiting")
        rows = self.rows("SELECT * FROM pull_list('DWN') WHERE barcode = %s" % lit(barcode))
        self.assertEqual([r["location"] for r in rows],
                         ["on display: Winter reads (front window)"])
        self.scan(d["id"], barcode, remove=True)
        rows = self.rows("SELECT * FROM pull_list('DWN') WHERE barcode = %s" % lit(barcode))
        self.assertEqual([r["location"] for r in rows], ["Fiction"])

    def test_not_on_two_displays_at_once(self):
        d = self.make(theme="One", end=10)
        barcode = self.copy()
        self.scan(d["id"], barcode)
        overlapping = self.make(theme="Two", start=5, end=20)
        e = self.refused(self.scan_sql(overlapping["id"], barcode), "CR409", "on_display")
        self.assertIn("One", str(e))
        later = self.make(theme="Three", start=11, end=20)
        self.assertEqual(self.scan(later["id"], barcode)["copies"], 1)

    def test_a_new_display_closes_the_rows_of_ended_ones(self):
        old = self.make(theme="Old", start=-20, end=-10)
        barcode = self.copy()
        self.q("INSERT INTO display_item (display_id, item_id, added_at) VALUES (%d, %d,"
               " now() - interval '15 days')" % (old["id"], self.item_id(barcode)))
        d = self.make()
        self.scan(d["id"], barcode)
        self.assertEqual(self.q("SELECT count(*) FROM display_item WHERE item_id = %d"
                                " AND removed_at IS NULL" % self.item_id(barcode)), "1")
        closed = self.q("SELECT removed_at <= local_at(library_today() - 9, '00:00')"
                        " FROM display_item WHERE display_id = %d" % old["id"])
        self.assertEqual(closed, "t")


class Checkin(DisplayTest):
    def test_back_on_the_display_at_its_branch(self):
        d = self.make(theme="Winter reads", place="front window")
        barcode = self.copy()
        self.scan(d["id"], barcode)
        self.checkout(self.patron(), barcode)
        r = self.checkin(barcode)
        self.assertEqual((r["route"], r["display"], r["destination_code"]),
                         ("display", "Winter reads (front window)", "DWN"))
        self.assertEqual(r["message"], "Put back on the display: Winter reads (front window)")
        self.assertEqual(self.q("SELECT status FROM item WHERE barcode = %s" % lit(barcode)),
                         "available")

    def test_a_copy_not_on_loan_says_so_too(self):
        d = self.make()
        barcode = self.copy()
        self.scan(d["id"], barcode)
        r = self.checkin(barcode)
        self.assertEqual(r["route"], "display")
        self.assertTrue(r["message"].startswith("Was not checked out. Put back on the display"),
                        r["message"])

    def test_at_another_branch_it_goes_home(self):
        d = self.make()
        barcode = self.copy()
        self.scan(d["id"], barcode)
        self.checkout(self.patron(), barcode)
        r = self.checkin(barcode, branch="ALB")
        self.assertEqual((r["route"], r["display"], r["destination_code"]),
                         ("transit", None, "DWN"))
        # arriving home: back on the display
        arrived = self.checkin(barcode)
        self.assertEqual((arrived["route"], arrived["display"]),
                         ("display", "Winter reads (front window)"))

    def test_a_hold_always_wins(self):
        d = self.make()
        bib = self.bib()
        barcode = self.copy(bib)
        self.scan(d["id"], barcode)
        self.checkout(self.patron(), barcode)
        waiting = self.patron()
        self.one("SELECT * FROM hold_place(gen_random_uuid(), %d, %d, %s, %d, NULL, 'DWN',"
                 " NULL, NULL)" % (ids["staff"], ids["DWN"], lit(waiting), bib))
        r = self.checkin(barcode)
        self.assertEqual((r["route"], r["display"]), ("hold_shelf", None))

    def test_not_on_a_display_or_not_running_the_shelf(self):
        plain = self.copy()
        self.assertEqual((self.checkin(plain)["route"], self.checkin(plain)["display"]),
                         ("shelf", None))
        planned = self.make(start=3, end=9)
        later = self.copy()
        self.scan(planned["id"], later)
        self.assertEqual(self.checkin(later)["route"], "shelf")
        ended = self.make()
        gone = self.copy()
        self.scan(ended["id"], gone)
        self.save(id=ended["id"], version=1, end_now=True)
        self.assertEqual(self.checkin(gone)["route"], "shelf")

    def test_a_withdrawn_copy_is_still_set_aside(self):
        d = self.make()
        barcode = self.copy()
        self.scan(d["id"], barcode)
        self.q("UPDATE item SET status = 'withdrawn' WHERE barcode = %s" % lit(barcode))
        self.assertEqual(self.checkin(barcode)["route"], "keep")

    def test_the_stored_answer_keeps_the_display(self):
        d = self.make()
        barcode = self.copy()
        self.scan(d["id"], barcode)
        k = key()
        sql = ("SELECT * FROM circ_checkin(%s::uuid, %d, %d, %d, %s, NULL)"
               % (lit(k), ids["staff"], ids["workstation"], ids["DWN"], lit(barcode)))
        first = self.one(sql)
        self.save(id=d["id"], version=1, end_now=True)
        self.assertEqual(self.one(sql), first)

    def test_the_probe_has_its_index(self):
        """The shelf path's query (display_checkin_text) is one probe of the open-rows
        index, among thousands of rows of copies that were on displays."""
        d = self.make(start=-30, end=-1)
        bib = self.bib()
        self.q("INSERT INTO item (barcode, bib_id, owning_branch_id, current_branch_id,"
               " item_type) SELECT 'probe-' || n, %d, %d, %d, 'book'"
               " FROM generate_series(1, 3000) n" % (bib, ids["DWN"], ids["DWN"]))
        self.q("INSERT INTO display_item (display_id, item_id, added_at, removed_at)"
               " SELECT %d, i.id, now() - interval '20 days',"
               " CASE WHEN i.id %% 10 <> 0 THEN now() - interval '10 days' END"
               " FROM item i WHERE i.barcode LIKE 'probe-%%'" % d["id"])
        self.q("ANALYZE display_item")
        probe = self.item_id("probe-7")
        plan = self.q("EXPLAIN (COSTS OFF) SELECT d.theme FROM display_item di"
                      " JOIN display d ON d.id = di.display_id"
                      " WHERE di.item_id = %d AND di.removed_at IS NULL AND d.branch_id = %d"
                      % (probe, ids["DWN"]))
        self.assertIn("display_item_open", plan)
        self.assertNotIn("Seq Scan on display_item", plan)
        # item_display_text's first query (it reads the item only for an open row).
        plan = self.q("EXPLAIN (COSTS OFF) SELECT d.theme, d.branch_id FROM display_item di"
                      " JOIN display d ON d.id = di.display_id"
                      " WHERE di.item_id = %d AND di.removed_at IS NULL AND d.ended_at IS NULL"
                      " AND d.starts_on <= library_today() AND d.ends_on >= library_today()"
                      " ORDER BY d.starts_on DESC, d.id DESC LIMIT 1" % probe)
        self.assertIn("display_item_open", plan)
        self.assertNotIn("Seq Scan", plan)
        self.assertEqual(self.q("SELECT coalesce(item_display_text(%d), '-')" % probe), "-")
        self.assertEqual(self.q("SELECT coalesce(display_checkin_text(%d, %d), '-')"
                                % (probe, ids["DWN"])), "-")


class AgeBands(DisplayTest):
    def test_the_age_bands(self):
        self.assertEqual(self.q("SELECT string_agg(display_age_band(y, '2026-06-01'), ',')"
                                " FROM unnest(ARRAY['2026', '2024', '2023', '2021', '2020',"
                                " '2016', '2015', '2006', '2005', '', '19x0', '2030']) y"),
                         "0-2,0-2,3-5,3-5,6-10,6-10,11-20,11-20,21+,unknown,unknown,0-2")


class Report(DisplayTest):
    """Lift against the same copies before and against a control group. The display of
    the first tests ran from 20 days ago to 11 days ago (10 days); before: 30 to 21 days
    ago. Every copy has been in the collection for a year; events are at noon."""

    def kind(self, year, call="FIC ADAMS", branch="DWN", status="available", location=""):
        barcode = self.copy(self.bib(year=str(year)), branch=branch, status=status,
                            location=location)
        self.q("UPDATE item SET call_number = %s, date_added = library_today() - 400"
               " WHERE barcode = %s" % (lit(call), lit(barcode)))
        return barcode

    def recent(self):
        return int(self.q("SELECT extract(year FROM library_today())::integer")) - 1

    def on(self, display, barcode, added=-25, removed=None):
        self.q("INSERT INTO display_item (display_id, item_id, added_at, removed_at) VALUES"
               " (%d, %d, local_at(library_today() + %d, '09:00'), %s)"
               % (display, self.item_id(barcode), added,
                  "NULL" if removed is None
                  else "local_at(library_today() + %d, '09:00')" % removed))

    def use(self, barcode, day, action="checkout", branch="DWN", times=1):
        for _ in range(times):
            self.q("INSERT INTO circ_event (at, action, branch_id, item_id, item_type)"
                   " VALUES (local_at(library_today() + %d, '12:00'), %s, %d, %d, 'book')"
                   % (day, lit(action), ids[branch], self.item_id(barcode)))

    def report(self, display):
        return self.one("SELECT * FROM display_report(%d)" % display)

    def test_lift_against_before_and_against_the_control(self):
        d = self.make(start=-20, end=-11)
        year = self.recent()
        a, b = self.kind(year), self.kind(year)
        self.on(d["id"], a)
        self.on(d["id"], b)
        self.use(a, -18, times=3)
        self.use(a, -12, action="in_house_use")
        self.use(a, -25)
        self.use(b, -15, times=2)
        self.use(b, -29)
        self.use(a, -14, branch="ALB")       # another branch's: not the display's use
        self.use(a, -14, action="renew")     # not a use
        self.use(a, -5)                      # after the display
        controls = [self.kind(year) for _ in range(4)]
        self.use(controls[0], -19, times=2)
        self.use(controls[1], -22, times=3)
        self.use(controls[2], -30)
        # not in the control: another collection, another age band, withdrawn, another
        # branch's, on a display
        cooking = self.kind(year, call="641.5 SMITH")
        self.use(cooking, -15, times=9)
        old = self.kind(1990)
        self.use(old, -15, times=9)
        gone = self.kind(year, status="withdrawn")
        self.use(gone, -15, times=9)
        theirs = self.kind(year, branch="ALB")
        self.use(theirs, -15, times=9, branch="ALB")
        other = self.make(theme="Other", start=-40, end=-26)
        busy = self.kind(year)
        self.on(other["id"], busy, added=-40, removed=-27)
        self.use(busy, -15, times=9)

        r = self.report(d["id"])
        self.assertEqual(list(r)[:11], DISPLAY_COLS)
        self.assertEqual((r["status"], r["during_from"], r["during_to"], r["before_from"],
                          r["before_to"], r["days"]),
                         ("ended", self.today(-20), self.today(-11), self.today(-30),
                          self.today(-21), 10))
        self.assertEqual((r["shown_copies"], r["uses_during"], r["uses_before"]), (2, 6, 2))
        self.assertEqual((r["control_copies"], r["control_during"], r["control_before"]),
                         (4, 2, 4))
        self.assertAlmostEqual(r["lift_vs_before"], 3.0)
        # control: 2 uses in 40 copy-days; the display's 20 copy-days predict 1 use
        self.assertAlmostEqual(r["lift_vs_control"], 6.0)
        self.assertAlmostEqual(r["control_change"], 0.5)
        self.assertAlmostEqual(r["net_lift"], 6.0)
        collection = self.q("SELECT coalesce(item_collection(%d, dewey_of('FIC ADAMS'), '',"
                            " item_audience('', 'FIC ADAMS'), ''), '')" % ids["DWN"])
        self.assertNotEqual(collection, "")
        self.assertNotEqual(collection, self.q(
            "SELECT item_collection(%d, dewey_of('641.5 SMITH'), '',"
            " item_audience('', '641.5 SMITH'), '')" % ids["DWN"]))
        self.assertEqual(r["strata"], [{"collection": collection, "age_band": "0-2",
                                        "copies": 2, "control_copies": 4}])
        self.assertIn("Only 2 copies", r["report_note"])
        self.assertEqual(self.report(d["id"]), r)   # the same sample every time

    def test_a_copy_counts_only_while_on_the_display(self):
        d = self.make(start=-20, end=-11)
        a = self.kind(self.recent())
        self.on(d["id"], a, added=-15, removed=-13)
        self.use(a, -14)          # on it
        self.use(a, -12)          # taken off by then
        self.use(a, -16)          # not yet on it
        self.use(a, -24)          # the same stretch before (-25 to -23)
        self.use(a, -28)          # before, but not that stretch
        r = self.report(d["id"])
        self.assertEqual((r["shown_copies"], r["uses_during"], r["uses_before"]), (1, 1, 1))
        self.assertAlmostEqual(r["lift_vs_before"], 1.0)
        self.assertNotIn("added to the collection", r["report_note"])
        self.q("UPDATE item SET date_added = library_today() - 25 WHERE barcode = %s" % lit(a))
        self.assertIn("1 of the copies were added to the collection",
                      self.report(d["id"])["report_note"])

    def test_strata_by_collection_and_age(self):
        d = self.make(start=-20, end=-11)
        young, middle, unknown = (self.kind(self.recent()), self.kind(self.recent() - 7),
                                  self.kind(""))
        for barcode in (young, middle, unknown):
            self.on(d["id"], barcode)
        self.kind(self.recent() - 8)
        r = self.report(d["id"])
        bands = sorted((s["age_band"], s["copies"], s["control_copies"]) for s in r["strata"])
        self.assertEqual(bands, [("0-2", 1, 0), ("6-10", 1, 1), ("unknown", 1, 0)])
        self.assertIsNone(r["lift_vs_before"])
        self.assertIn("no control copies", r["report_note"])

    def test_a_copy_without_a_call_number_has_its_bibs(self):
        d = self.make(start=-20, end=-11)
        year = self.recent()
        shown = self.kind(year, call="")
        self.q("UPDATE bib SET call_number = '641.5 SMITH' FROM item i WHERE i.barcode = %s"
               " AND bib.id = i.bib_id" % lit(shown))
        self.on(d["id"], shown)
        self.kind(year, call="641.59 JONES")    # the same collection: a control copy
        self.kind(year, call="FIC ADAMS")       # another: not
        r = self.report(d["id"])
        cooking = self.q("SELECT item_collection(%d, dewey_of('641.5'), '',"
                         " item_audience('', '641.5'), '')" % ids["DWN"])
        self.assertEqual(r["strata"], [{"collection": cooking, "age_band": "0-2",
                                        "copies": 1, "control_copies": 1}])

    def test_lift_against_the_control_while_running(self):
        """Running for 4 days and today so far: the control's rate per copy-day is over
        that window, as the displayed copy's exposure is, not over 5 whole days (which
        inflated the lift on every running display, most in the morning)."""
        d = self.make(start=-4, end=5)
        year = self.recent()
        a = self.kind(year)
        self.q("INSERT INTO display_item (display_id, item_id, added_at) VALUES"
               " (%d, %d, local_at(library_today() - 4, '00:00'))"
               % (d["id"], self.item_id(a)))
        self.use(a, -2, times=2)
        controls = [self.kind(year) for _ in range(2)]
        self.use(controls[0], -3)
        r = self.report(d["id"])
        self.assertEqual((r["status"], r["days"], r["uses_during"], r["control_copies"],
                          r["control_during"]), ("running", 5, 2, 2, 1))
        # The control: 1 use in 2 copies x the window; the copy: the window. 2 / (1/2).
        self.assertAlmostEqual(r["lift_vs_control"], 4.0, places=6)

    def test_a_planned_display_ended_early_measures_nothing(self):
        d = self.make(start=2, end=9)
        a = self.kind(self.recent())
        self.scan(d["id"], a)
        self.kind(self.recent())
        ended = self.save(id=d["id"], end_now=True)
        self.assertEqual(ended["status"], "ended")
        r = self.report(d["id"])
        self.assertEqual((r["days"], r["uses_during"], r["lift_vs_control"]), (0, 0, None))

    def test_running_and_planned(self):
        running = self.make(start=-4, end=5)
        a = self.kind(self.recent())
        self.on(running["id"], a, added=-4)
        self.use(a, -1)
        r = self.report(running["id"])
        self.assertEqual((r["status"], r["days"], r["during_to"], r["before_from"],
                          r["uses_during"]), ("running", 5, self.today(), self.today(-9), 1))
        self.assertIn("Still running", r["report_note"])
        planned = self.make(start=3, end=9)
        p = self.report(planned["id"])
        self.assertEqual((p["days"], p["during_to"], p["shown_copies"], p["strata"],
                          p["lift_vs_before"]), (0, None, 0, [], None))
        self.assertIn("Planned", p["report_note"])
        self.refused("SELECT * FROM display_report(987654321)", "CR404", "display")

# ---------------------------------------------------------------- a race

class Race(unittest.TestCase):

    def test_one_copy_scanned_onto_two_displays_at_once(self):
        """Two desks scan the same copy onto two displays of the same days: the second waits
        for the first (the copy's lock) and is then refused on_display. Committed, then
        removed."""
        made = []
        try:
            for theme in ("Race one", "Race two"):
                made.append(int(db.query(
                    "SELECT id FROM display_save(%d, %d, NULL, %s, false)"
                    % (ids["staff"], ids["workstation"],
                       jdoc({"theme": theme, "place": "hall", "branch_code": "DWN",
                             "starts_on": db.query("SELECT library_today()"),
                             "ends_on": db.query("SELECT library_today() + 3")})))))
            barcode = env.new_item(title="Race copy")
            sql = ("SELECT message FROM display_item_add(gen_random_uuid(), %d, %d, NULL, %%d,"
                   " %s, false)" % (ids["staff"], ids["workstation"], lit(barcode)))
            first, second = env.session(), env.session()
            first.query("BEGIN; " + sql % made[0], keep_transaction=True)
            second.send(sql % made[1])
            harness.wait_until(lambda: int(env.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")) >= 1,
                60, "the second scan waiting")
            first.query("COMMIT")
            self.assertEqual(harness.finish_each([second]), [("CR409", "on_display")])
            self.assertEqual(db.query("SELECT count(*) FROM display_item WHERE display_id IN"
                                      " (%d, %d)" % tuple(made)), "1")
        finally:
            if made:
                ids_sql = ", ".join(str(m) for m in made)
                db.query("DELETE FROM display_item WHERE display_id IN (%s);"
                         " DELETE FROM display WHERE id IN (%s)" % (ids_sql, ids_sql))


if __name__ == "__main__":
    unittest.main(verbosity=2)
