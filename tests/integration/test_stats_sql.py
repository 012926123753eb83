#!/usr/bin/env python3
"""The statistics rules (sql/rules/stats.sql), called directly in SQL as carreld calls them.

No daemon and no client, as in test_rules.py: each test opens one transaction on a harness
session, makes its rows in it (circulation events straight into circ_event, or through
the circulation rules), calls stats_query, stats_rollup_run, pls_report ... and rolls
everything back. The one test that needs commits from two sessions (events committed out
of id order) removes its rows and rebuilds the rollups at its end. tearDownModule checks
that nothing was left behind.

The answers are checked against counts made here from the raw circ_event rows, in the
library's local time (America/New_York in the seed settings), so a rollup that lost,
doubled or misplaced an event fails.
"""

import json
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

env = None
db = None      # the session every test's transaction runs on
ids = {}       # branch code -> id; "staff", "workstation": the administrator's

lit = harness.sql_literal


def setUpModule():
    global env, db
    env, db = harness.start_rule_session(StatsTest, ids)


def tearDownModule():
    harness.stop_rule_session(env, db,
                              "SELECT (SELECT count(*) FROM circ_event)"
                              " + (SELECT count(*) FROM loan)"
                              " + (SELECT count(*) FROM hold) + (SELECT count(*) FROM patron)"
                              " + (SELECT count(*) FROM stat_circ_queue)"
                              " + (SELECT count(*) FROM stat_circ_hour)"
                              " + (SELECT count(*) FROM stat_circ_day)"
                              " + (SELECT count(*) FROM stat_circ_branch_day)"
                              " + (SELECT count(*) FROM stat_circ_month)"
                              " + (SELECT count(*) FROM stat_circ_dim_day)"
                              " + (SELECT count(*) FROM stat_circ_dim_month)"
                              " + (SELECT count(*) FROM stat_patron_snapshot)")


ACTIONS = ["checkout", "renew", "checkin", "in_house_use", "lost"]
ITEM_TYPES = ["book", "dvd", "audiobook"]
CATEGORIES = ["adult", "juvenile", None]
LOCATIONS = ["", "adult fiction", "kids", None]
VIAS = ["desk", "desk", "selfcheck", "auto"]
BRANCHES = ["DWN", "ALB", "PRK"]


class StatsTest(harness.TransactionTest):
    """One transaction per test, rolled back whatever happens (harness.TransactionTest)."""

    def setUp(self):
        super().setUp()
        self._item = None

    # ---- rows made in the transaction

    def item_id(self):
        """One copy every event of the test may name (circ_event needs an item)."""
        if self._item is None:
            barcode = env.new_item(env.new_bib(session=db), session=db)
            self._item = int(self.q("SELECT id FROM item WHERE barcode = %s" % lit(barcode)))
        return self._item

    def event(self, at, action="checkout", branch="DWN", item_type="book", category="adult",
              location="", via="desk"):
        """A circulation event at local time at (text, 'YYYY-MM-DD HH:MI')."""
        self.q("INSERT INTO circ_event (at, action, branch_id, item_id, item_type,"
               " patron_category, location, via) VALUES ((%s::timestamp AT TIME ZONE"
               " library_setting_text('timezone')), %s, %d, %d, %s, %s, %s, %s)"
               % (lit(at), lit(action), ids[branch], self.item_id(), lit(item_type),
                  lit(category), lit(location), lit(via)))

    def random_events(self, n, first="2024-01-01", days=760, seed=10):
        """n events spread over days local days from first, every dimension varied, in
        one statement (as a bulk load would)."""
        rnd = random.Random(seed)
        values = []
        for _ in range(n):
            minute = rnd.randrange(days * 1440)
            values.append("(%s::timestamp + make_interval(mins => %d), %s, %d, %s, %s, %s, %s)"
                          % (lit(first), minute, lit(rnd.choice(ACTIONS)),
                             ids[rnd.choice(BRANCHES)], lit(rnd.choice(ITEM_TYPES)),
                             lit(rnd.choice(CATEGORIES)), lit(rnd.choice(LOCATIONS)),
                             lit(rnd.choice(VIAS))))
        self.q("INSERT INTO circ_event (at, action, branch_id, item_id, item_type,"
               " patron_category, location, via)"
               " SELECT v.t AT TIME ZONE library_setting_text('timezone'), v.a, v.b, %d, v.it,"
               " v.pc, v.loc, v.via FROM (VALUES %s) v (t, a, b, it, pc, loc, via)"
               % (self.item_id(), ", ".join(values)))

    # ---- the functions

    def stats(self, measure, frm, to, time="none", by=(), branches=None, compare=False,
              arg=None):
        """stats_query's rows as {(period, keys...): (value, previous)}, values as floats."""
        sql = ("SELECT period, keys, value::float8 AS value, previous::float8 AS previous"
               " FROM stats_query(%s, %s, %s, %s, %s, %s, %s, %s)"
               % (lit(measure), lit(frm), lit(to), lit(time),
                  "ARRAY[%s]::text[]" % ", ".join(lit(b) for b in by),
                  "NULL" if branches is None
                  else "ARRAY[%s]::integer[]" % ", ".join(str(ids[b]) for b in branches),
                  lit(compare), "NULL" if arg is None else str(arg)))
        out = {}
        for r in self.rows(sql):
            key = (r["period"],) + tuple(r["keys"])
            self.assertNotIn(key, out, "one row per bucket and keys")
            out[key] = (r["value"], r["previous"])
        return out

    def values(self, *args, **kw):
        return {k: v[0] for k, v in self.stats(*args, **kw).items()}

    def stats_sql(self, measure, frm, to, time="none", by="{}", compare=False):
        return ("SELECT * FROM stats_query(%s, %s, %s, %s, %s, NULL, %s, NULL)"
                % (lit(measure), lit(frm), lit(to), lit(time), lit(by), lit(compare)))

    # ---- raw counts, made here from circ_event

    PERIOD = {
        "none": "''",
        "day": "to_char(l, 'YYYY-MM-DD')",
        "week": "to_char(date_trunc('week', l), 'YYYY-MM-DD')",
        "month": "to_char(l, 'YYYY-MM')",
        "year": "to_char(l, 'YYYY')",
        "hour": "to_char(l, 'HH24')",
        "weekday": "extract(isodow FROM l)::text",
        "hour_of_week": "extract(isodow FROM l)::text || '-' || to_char(l, 'HH24')",
    }
    KEY = {
        "branch": "b.code",
        "item_type": "e.item_type",
        "patron_category": "coalesce(nullif(e.patron_category, ''), '(none)')",
        "location": "coalesce(nullif(e.location, ''), '(none)')",
        "via": "e.via",
    }

    def raw(self, actions, frm, to, time="none", by=()):
        keys = ", ".join(self.KEY[d] for d in by)
        sql = ("SELECT %s AS period, ARRAY[%s]::text[] AS keys, count(*)::float8 AS n"
               " FROM (SELECT e.*, e.at AT TIME ZONE library_setting_text('timezone') AS l"
               "       FROM circ_event e) e JOIN branch b ON b.id = e.branch_id"
               " WHERE e.l >= %s::date AND e.l < %s::date + 1 AND e.action = ANY (%s)"
               " GROUP BY 1, 2" % (self.PERIOD[time], keys, lit(frm), lit(to),
                                   lit("{" + ",".join(actions) + "}")))
        return {(r["period"],) + tuple(r["keys"]): r["n"] for r in self.rows(sql)}

    QUESTIONS = [
        # (measure, actions, from, to, time, by): each rollup path at least once (hour;
        # branch-day; one-dimension day and month; wide day and month)
        ("checkouts", ["checkout"], "2024-01-01", "2025-12-31", "month", ("branch",)),
        ("circulation", ["checkout", "renew"], "2024-03-01", "2025-02-28", "year",
         ("item_type", "patron_category")),
        ("checkins", ["checkin"], "2024-02-03", "2024-11-17", "week", ("via",)),
        ("checkouts", ["checkout"], "2024-05-01", "2024-06-30", "day", ("branch", "location")),
        ("in_house_uses", ["in_house_use"], "2024-01-01", "2025-06-30", "none", ("location",)),
        ("renewals", ["renew"], "2024-01-15", "2025-01-14", "none", ("patron_category", "via")),
        ("checkouts", ["checkout"], "2024-01-01", "2025-12-31", "hour_of_week", ("branch",)),
        ("circulation", ["checkout", "renew"], "2024-04-10", "2024-09-09", "hour", ("via",)),
        ("checkins", ["checkin"], "2024-01-01", "2024-12-31", "weekday", ()),
        ("circulation", ["checkout", "renew"], "2024-01-01", "2025-12-31", "month", ()),
        ("checkouts", ["checkout"], "2024-02-10", "2024-08-20", "week", ("item_type", "location")),
        ("checkins", ["checkin"], "2024-01-01", "2024-12-31", "month",
         ("branch", "patron_category")),
        ("checkouts", ["checkout"], "2024-07-04", "2025-07-03", "month", ("via", "item_type")),
        ("circulation", ["checkout", "renew"], "2024-06-01", "2025-05-31", "none",
         ("location", "branch", "patron_category")),
    ]

    def assert_answers_equal_raw(self):
        for measure, actions, frm, to, time, by in self.QUESTIONS:
            with self.subTest(measure=measure, time=time, by=by):
                want = self.raw(actions, frm, to, time, by)
                self.assertTrue(want, "the question counts some events")
                self.assertEqual(self.values(measure, frm, to, time, by), want)


class Rollups(StatsTest):
    def test_rollups_rebuilt_from_raw_equal_the_raw_counts(self):
        self.random_events(1500)
        self.assertEqual(self.q("SELECT stats_rollup_pending()"), "1500")
        rebuilt = self.one("SELECT * FROM stats_rollup_rebuild()")
        self.assertEqual(rebuilt["events"], 1500)
        self.assertGreater(rebuilt["rows"], 0)
        self.assertEqual(self.q("SELECT stats_rollup_pending()"), "0")
        # Every rollup holds every event once.
        for table in ("stat_circ_hour", "stat_circ_day", "stat_circ_branch_day",
                      "stat_circ_month"):
            self.assertEqual(self.q("SELECT sum(n) FROM %s" % table), "1500", table)
        # ... and the one-dimension rollups once per dimension.
        for table in ("stat_circ_dim_day", "stat_circ_dim_month"):
            self.assertEqual(self.q("SELECT string_agg(dim || '=' || n, ',' ORDER BY dim) FROM"
                                    " (SELECT dim, sum(n) AS n FROM %s GROUP BY dim) x" % table),
                             "item_type=1500,location=1500,patron_category=1500", table)
        self.assert_answers_equal_raw()

    def test_answers_with_events_still_queued_equal_the_raw_counts(self):
        self.random_events(900, seed=11)
        self.assertEqual(self.q("SELECT stats_rollup_run(400)"), "400")
        self.assertEqual(self.q("SELECT stats_rollup_pending()"), "500")
        self.assert_answers_equal_raw()
        # More events while some are still queued; then everything folded.
        self.random_events(300, seed=12)
        self.assert_answers_equal_raw()
        while int(self.q("SELECT stats_rollup_run(250)")) == 250:
            pass
        self.assertEqual(self.q("SELECT stats_rollup_pending()"), "0")
        self.assert_answers_equal_raw()
        # A rebuild after folding changes nothing.
        before = self.q("SELECT string_agg(format('%s', r), ';' ORDER BY r::text)"
                        " FROM stat_circ_day r")
        self.q("SELECT stats_rollup_rebuild()")
        self.assertEqual(self.q("SELECT string_agg(format('%s', r), ';' ORDER BY r::text)"
                                " FROM stat_circ_day r"), before)

    def test_every_event_of_the_desk_rules_is_queued_with_its_location(self):
        card = env.new_patron(session=db)
        barcode = env.new_item(env.new_bib(session=db), location="kids", session=db)
        self.q("SELECT * FROM circ_checkout(gen_random_uuid(), %d, %d, %d, %s, %s, false, NULL,"
               " false)" % (ids["staff"], ids["workstation"], ids["DWN"], lit(card),
                            lit(barcode)))
        self.q("SELECT * FROM circ_checkin(gen_random_uuid(), %d, %d, %d, %s, NULL)"
               % (ids["staff"], ids["workstation"], ids["PRK"], lit(barcode)))
        events = self.rows("SELECT e.action, e.location, e.via, q.event_id IS NOT NULL AS queued"
                           " FROM circ_event e LEFT JOIN stat_circ_queue q ON q.event_id = e.id"
                           " ORDER BY e.id")
        self.assertEqual(events, [
            {"action": "checkout", "location": "kids", "via": "desk", "queued": True},
            {"action": "checkin", "location": "kids", "via": "desk", "queued": True}])
        today = self.q("SELECT library_today()")
        self.assertEqual(self.values("checkouts", today, today, "none", ("location",)),
                         {("", "kids"): 1.0})
        self.assertEqual(self.values("checkins", today, today, "none", ("branch",)),
                         {("", "PRK"): 1.0})


class OutOfOrderCommits(unittest.TestCase):
    """Two desks: the event with the lower id commits after the rollup job has folded the
    higher one. A watermark ("everything up to id N is folded") would lose it."""

    def test_events_committed_out_of_id_order_are_all_counted(self):
        bib = env.new_bib()
        barcode = env.new_item(bib)
        item = int(env.psql("SELECT id FROM item WHERE barcode = %s" % lit(barcode)))
        insert = ("INSERT INTO circ_event (at, action, branch_id, item_id, item_type,"
                  " patron_category) VALUES ('2025-06-02 15:00-04', 'checkout', %d, %d, 'book',"
                  " 'adult') RETURNING id" % (ids["DWN"], item))
        first, second = env.session(), env.session()
        try:
            first.query("BEGIN", keep_transaction=True)
            low = int(first.query(insert, keep_transaction=True).splitlines()[0])
            high = int(second.query(insert).splitlines()[0])  # committed at once
            self.assertLess(low, high)
            self.assertEqual(env.psql("SELECT stats_rollup_run(10000)"), "1")
            first.query("COMMIT", keep_transaction=True)
            answer = ("SELECT value FROM stats_query('checkouts', '2025-06-02', '2025-06-02',"
                      " 'day', '{branch}', NULL, false, NULL)")
            self.assertEqual(env.psql(answer), "2")  # one folded, one queued
            self.assertEqual(env.psql("SELECT stats_rollup_run(10000)"), "1")
            self.assertEqual(env.psql("SELECT stats_rollup_pending()"), "0")
            self.assertEqual(env.psql(answer), "2")
            self.assertEqual(env.psql("SELECT sum(n) FROM stat_circ_day"), "2")
        finally:
            first.close()
            second.close()
            env.psql("DELETE FROM circ_event WHERE item_id = %d; DELETE FROM item WHERE id = %d;"
                     " DELETE FROM bib WHERE id = %d; SELECT stats_rollup_rebuild();"
                     " DELETE FROM stat_patron_snapshot" % (item, item, bib))


    def test_a_rebuild_leaves_events_committed_meanwhile_queued(self):
        bib = env.new_bib()
        barcode = env.new_item(bib)
        item = int(env.psql("SELECT id FROM item WHERE barcode = %s" % lit(barcode)))
        insert = ("INSERT INTO circ_event (at, action, branch_id, item_id, item_type)"
                  " VALUES ('2025-06-03 11:00-04', 'renew', %d, %d, 'dvd')" % (ids["ALB"], item))
        desk = env.session()
        try:
            env.psql(insert)
            desk.query("BEGIN", keep_transaction=True)
            desk.query(insert, keep_transaction=True)
            self.assertEqual(env.psql("SELECT events FROM stats_rollup_rebuild()"), "1")
            desk.query("COMMIT", keep_transaction=True)
            self.assertEqual(env.psql("SELECT stats_rollup_pending()"), "1")
            answer = ("SELECT value FROM stats_query('renewals', '2025-06-01', '2025-06-30',"
                      " 'month', '{item_type}', NULL, false, NULL)")
            self.assertEqual(env.psql(answer), "2")
            self.assertEqual(env.psql("SELECT stats_rollup_run(10)"), "1")
            self.assertEqual(env.psql(answer), "2")
            self.assertEqual(env.psql("SELECT sum(n) FROM stat_circ_dim_month"
                                      " WHERE dim = 'item_type'"), "2")
        finally:
            desk.close()
            env.psql("DELETE FROM circ_event WHERE item_id = %d; DELETE FROM item WHERE id = %d;"
                     " DELETE FROM bib WHERE id = %d; SELECT stats_rollup_rebuild();"
                     " DELETE FROM stat_patron_snapshot" % (item, item, bib))


class Registry(StatsTest):
    def test_the_measures_of_the_issue_are_registered(self):
        measures = {m["name"]: m for m in self.rows("SELECT * FROM stats_measures()")}
        for name in ("checkouts", "renewals", "checkins", "in_house_uses", "circulation",
                     "turnover", "copies_idle", "holds_placed", "holds_filled", "holds_expired",
                     "holds_cancelled", "hold_wait_median_hours", "hold_wait_p90_hours",
                     "holds_waiting_now", "holds_on_shelf_now", "transits_sent",
                     "transit_median_hours", "transits_overdue_now", "registrations",
                     "active_borrowers", "registered_users", "notices_sent", "notices_failed",
                     "notices_exported"):
            self.assertIn(name, measures)
            m = measures[name]
            self.assertIn(m["unit"], ("count", "ratio", "hours"))
            self.assertIn(m["kind"], ("range", "now"))
            self.assertTrue(m["title"] and m["description"] and m["times"], name)
            if m["kind"] == "now":
                self.assertEqual(m["times"], ["none"], name)
        self.assertEqual(measures["checkouts"]["dims"],
                         ["branch", "item_type", "patron_category", "location", "via"])
        self.assertEqual(measures["transits_sent"]["dims"], ["from_branch", "to_branch"])
        self.assertEqual(measures["notices_sent"]["dims"], ["branch", "channel"])
        self.assertEqual(measures["turnover"]["dims"], ["branch", "item_type"])

    def test_a_new_row_plugs_in_a_measure(self):
        # What a future domain does: a row naming a source; stats_query needs nothing more.
        self.q("INSERT INTO stat_measure (name, title, unit, source, param, dims, times, kind,"
               " description) VALUES ('lost_marks', 'Copies marked lost', 'count',"
               " 'stats_src_circ', 'lost', '{branch}', '{none,month}', 'range', 'test')")
        self.event("2025-09-09 10:00", "lost", "PRK")
        self.assertEqual(self.values("lost_marks", "2025-09-01", "2025-09-30", "month",
                                     ("branch",)), {("2025-09", "PRK"): 1.0})


class LocalTime(StatsTest):
    def test_an_event_late_in_the_evening_lands_on_its_local_day(self):
        # 23:30 in Hartford is 04:30 UTC the next day.
        self.event("2025-01-15 23:30")
        self.assertEqual(self.q("SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
                                " FROM circ_event"), "2025-01-16 04:30")
        for label in ("queued", "folded"):
            with self.subTest(label):
                self.assertEqual(self.values("checkouts", "2025-01-15", "2025-01-16", "day"),
                                 {("2025-01-15",): 1.0})
                self.assertEqual(self.values("checkouts", "2025-01-15", "2025-01-15", "hour"),
                                 {("23",): 1.0})
                self.assertEqual(self.values("checkouts", "2025-01-16", "2025-01-16"), {})
                self.assertEqual(self.values("checkouts", "2025-01-01", "2025-01-31", "month"),
                                 {("2025-01",): 1.0})
                self.q("SELECT stats_rollup_run(100)")

    def test_days_when_the_clocks_change(self):
        # 2025-03-09: 02:00 EST became 03:00 EDT (a 23-hour day);
        # 2025-11-02: 02:00 EDT became 01:00 EST (01:00-02:00 twice).
        self.q("INSERT INTO circ_event (at, action, branch_id, item_id, item_type)"
               " SELECT t, 'checkout', %d, %d, 'book' FROM unnest(ARRAY["
               "'2025-03-09 00:30-05', '2025-03-09 01:59-05', '2025-03-09 03:01-04',"
               "'2025-03-09 23:59-04', '2025-03-10 00:00-04',"
               "'2025-11-02 01:30-04', '2025-11-02 01:30-05', '2025-11-02 23:30-05',"
               "'2025-11-03 00:10-05']::timestamptz[]) t" % (ids["DWN"], self.item_id()))
        for label in ("queued", "folded"):
            with self.subTest(label):
                self.assertEqual(self.values("checkouts", "2025-03-08", "2025-03-10", "day"),
                                 {("2025-03-09",): 4.0, ("2025-03-10",): 1.0})
                self.assertEqual(self.values("checkouts", "2025-03-09", "2025-03-09", "hour"),
                                 {("00",): 1.0, ("01",): 1.0, ("03",): 1.0, ("23",): 1.0})
                self.assertEqual(self.values("checkouts", "2025-11-02", "2025-11-03", "day"),
                                 {("2025-11-02",): 3.0, ("2025-11-03",): 1.0})
                self.assertEqual(self.values("checkouts", "2025-11-02", "2025-11-02", "hour"),
                                 {("01",): 2.0, ("23",): 1.0})
                self.assertEqual(self.values("checkouts", "2025-03-01", "2025-11-30", "month"),
                                 {("2025-03",): 5.0, ("2025-11",): 4.0})
                self.q("SELECT stats_rollup_run(100)")

    def test_hour_of_week_weekday_and_hour_labels(self):
        self.event("2025-06-02 09:15")   # a Monday
        self.event("2025-06-08 23:59")   # a Sunday
        self.event("2025-06-09 09:45")   # the next Monday
        self.q("SELECT stats_rollup_run(100)")
        self.assertEqual(self.values("checkouts", "2025-06-01", "2025-06-30", "hour_of_week"),
                         {("1-09",): 2.0, ("7-23",): 1.0})
        self.assertEqual(self.values("checkouts", "2025-06-01", "2025-06-30", "weekday"),
                         {("1",): 2.0, ("7",): 1.0})
        self.assertEqual(self.values("checkouts", "2025-06-01", "2025-06-30", "hour"),
                         {("09",): 2.0, ("23",): 1.0})
        self.assertEqual(self.values("checkouts", "2025-06-01", "2025-06-30", "week"),
                         {("2025-06-02",): 2.0, ("2025-06-09",): 1.0})
        self.assertEqual(self.values("checkouts", "2025-06-01", "2025-06-30", "year"),
                         {("2025",): 3.0})


class Compare(StatsTest):
    def test_the_same_range_a_year_earlier(self):
        for at in ("2025-05-05 10:00", "2025-05-05 11:00", "2025-05-06 10:00",
                   "2024-05-05 10:00", "2024-05-07 10:00", "2024-05-07 12:00",
                   "2024-04-30 10:00"):   # outside the earlier range
            self.event(at)
        got = self.stats("checkouts", "2025-05-01", "2025-05-10", "day", compare=True)
        self.assertEqual(got, {("2025-05-05",): (2.0, 1.0), ("2025-05-06",): (1.0, None),
                               ("2025-05-07",): (0.0, 2.0)})
        got = self.stats("checkouts", "2025-05-01", "2025-05-31", "month", compare=True)
        self.assertEqual(got, {("2025-05",): (3.0, 3.0)})
        got = self.stats("checkouts", "2025-05-01", "2025-05-10", compare=True)
        self.assertEqual(got, {("",): (3.0, 3.0)})
        # Without compare: no previous.
        self.assertEqual(self.stats("checkouts", "2025-05-01", "2025-05-10"),
                         {("",): (3.0, None)})

    def test_weeks_compare_with_the_week_364_days_earlier(self):
        self.event("2025-05-07 10:00")   # Wednesday of the week of Monday 2025-05-05
        self.event("2024-05-08 10:00")   # Wednesday of the week of Monday 2024-05-06
        got = self.stats("checkouts", "2025-05-05", "2025-05-11", "week", compare=True)
        self.assertEqual(got, {("2025-05-05",): (1.0, 1.0)})

    def test_compare_by_branch_matches_each_branch(self):
        self.event("2025-02-03 10:00", branch="DWN")
        self.event("2024-02-03 10:00", branch="ALB")
        got = self.stats("checkouts", "2025-02-01", "2025-02-28", "month", ("branch",),
                         compare=True)
        self.assertEqual(got, {("2025-02", "ALB"): (0.0, 1.0), ("2025-02", "DWN"): (1.0, None)})

    def test_the_leap_day_folds_onto_the_28th(self):
        for at in ("2024-02-28 10:00", "2024-02-29 10:00", "2024-02-29 11:00",
                   "2025-02-28 10:00", "2023-02-28 10:00", "2023-03-01 10:00",
                   "2024-03-01 10:00"):
            self.event(at)
        got = self.stats("checkouts", "2025-02-27", "2025-03-01", "day", compare=True)
        self.assertEqual(got, {("2025-02-28",): (1.0, 3.0), ("2025-03-01",): (0.0, 1.0)})
        # A range starting on the 29th: a year earlier starts on the 28th, a day that has
        # no place in the range by day (no row before the range) ...
        got = self.stats("checkouts", "2024-02-29", "2024-03-01", "day", compare=True)
        self.assertEqual(got, {("2024-02-29",): (2.0, None), ("2024-03-01",): (1.0, 1.0)})
        # ... and joins its month.
        got = self.stats("checkouts", "2024-02-29", "2024-03-01", "month", compare=True)
        self.assertEqual(got, {("2024-02",): (2.0, 1.0), ("2024-03",): (1.0, 1.0)})


class Refusals(StatsTest):
    def test_unknown_measure(self):
        e = self.refused(self.stats_sql("loans_per_moon", "2025-01-01", "2025-01-31"),
                         "CR400", "field:measure")
        self.assertIn("loans_per_moon", e.message)

    def test_a_dimension_the_measure_does_not_offer(self):
        e = self.refused(self.stats_sql("checkouts", "2025-01-01", "2025-01-31", by="{channel}"),
                         "CR400", "field:by")
        self.assertIn("branch, item_type, patron_category, location, via", e.message)
        self.refused(self.stats_sql("holds_placed", "2025-01-01", "2025-01-31",
                                    by="{patron_category}"), "CR400", "field:by")
        self.refused(self.stats_sql("checkouts", "2025-01-01", "2025-01-31",
                                    by="{branch,branch}"), "CR400", "field:by")
        # Hours come from the hour rollup: branch and via only.
        e = self.refused(self.stats_sql("checkouts", "2025-01-01", "2025-01-31", "hour_of_week",
                                        by="{item_type}"), "CR400", "field:by")
        self.assertIn("branch and via", e.message)

    def test_a_time_grouping_the_measure_does_not_offer(self):
        e = self.refused(self.stats_sql("holds_waiting_now", "2025-01-01", "2025-01-31", "day"),
                         "CR400", "field:time")
        self.assertIn("none", e.message)
        self.refused(self.stats_sql("checkouts", "2025-01-01", "2025-01-31", "fortnight"),
                     "CR400", "field:time")

    def test_a_range_that_ends_before_it_starts_or_is_too_long(self):
        self.refused(self.stats_sql("checkouts", "2025-02-01", "2025-01-31"),
                     "CR400", "field:from")
        self.refused(self.stats_sql("checkouts", "2015-01-01", "2025-01-01"),
                     "CR400", "field:from")
        self.assertEqual(self.values("checkouts", "2015-01-02", "2025-01-01"), {})

    def test_a_bad_argument(self):
        self.refused("SELECT * FROM stats_query('copies_idle', NULL, NULL, NULL, NULL, NULL,"
                     " false, 0)", "CR400", "field:arg")
        self.refused("SELECT * FROM pls_report(12, NULL)", "CR400", "field:year")
        for year in (1989, 2200, None):
            e = self.refused("SELECT * FROM pls_report(%s, NULL)" % lit(year), "CR400",
                             "field:year")
            self.assertIn("1990 to 2199", str(e))
        for year in (1990, 2199):
            self.assertEqual(self.q("SELECT count(*) > 0 FROM pls_report(%d, NULL)" % year), "t")
        self.refused("SELECT * FROM stats_buy_more(NULL, -1, NULL)", "CR400", "field:threshold")


class Patrons(StatsTest):
    def patron_id(self, card):
        return int(self.q("SELECT id FROM patron WHERE card = %s" % lit(card)))

    def activity(self, card):
        return self.one("SELECT pc.last_activity_on::text AS activity,"
                        " pc.last_borrowed_on::text AS borrowed, pc.ctid::text AS ctid"
                        " FROM patron_circ pc WHERE pc.patron_id = %d" % self.patron_id(card))

    def set_activity(self, card, activity, borrowed):
        self.q("INSERT INTO patron_circ (patron_id, last_activity_on, last_borrowed_on)"
               " VALUES (%d, %s, %s) ON CONFLICT (patron_id) DO UPDATE SET"
               " last_activity_on = excluded.last_activity_on,"
               " last_borrowed_on = excluded.last_borrowed_on"
               % (self.patron_id(card), lit(activity), lit(borrowed)))

    def test_checkout_and_renewal_set_both_dates_once_a_day(self):
        today = self.q("SELECT library_today()")
        card = env.new_patron(session=db)
        barcode = env.new_item(env.new_bib(session=db), session=db)
        self.q("SELECT * FROM circ_checkout(gen_random_uuid(), %d, %d, %d, %s, %s, false, NULL,"
               " false)" % (ids["staff"], ids["workstation"], ids["DWN"], lit(card),
                            lit(barcode)))
        self.assertEqual(self.activity(card)["activity"], today)
        self.assertEqual(self.activity(card)["borrowed"], today)
        # Renewed: a loan made a week ago, due today, so a renewal moves its due date.
        self.set_activity(card, "2024-01-01", "2024-01-01")
        self.q("UPDATE loan SET checkout_at = now() - interval '7 days', due_at = now()")
        renew = ("SELECT count(*) FILTER (WHERE renewed) FROM circ_renew(gen_random_uuid(), %d,"
                 " %d, %d, %s, NULL, %s, 'test', true)")
        self.assertEqual(self.q(renew % (ids["staff"], ids["workstation"], ids["DWN"],
                                         lit(card), "false")), "1")
        after = self.activity(card)
        self.assertEqual((after["activity"], after["borrowed"]), (today, today))
        # Renewed again the same day (by override): no second write of the row.
        self.q("UPDATE loan SET due_at = now()")
        self.assertEqual(self.q(renew % (ids["staff"], ids["workstation"], ids["DWN"],
                                         lit(card), "true")), "1")
        self.assertEqual(self.activity(card), after)

    def test_placing_a_hold_sets_the_activity_date_only(self):
        today = self.q("SELECT library_today()")
        card = env.new_patron(session=db)
        self.set_activity(card, "2024-01-01", "2024-02-02")
        place = ("SELECT id FROM hold_place(gen_random_uuid(), %d, %d, %s, %d, NULL, NULL, NULL,"
                 " NULL)")
        for _ in range(2):
            bib = env.new_bib(session=db)
            env.new_item(bib, session=db)
            self.q(place % (ids["staff"], ids["DWN"], lit(card), bib))
            if _ == 0:
                first = self.activity(card)
                self.assertEqual((first["activity"], first["borrowed"]), (today, "2024-02-02"))
        self.assertEqual(self.activity(card), first, "written once a day")

    def test_registration_and_card_renewal_set_the_activity_date(self):
        today = self.q("SELECT library_today()")
        card = harness.mod10("2123499%06d" % env.next_number())
        doc = {"card": card, "first_name": "Reg", "last_name": "Istered", "home_branch": "PRK",
               "category": "adult", "expires_on": "2028-01-01"}
        save = "SELECT outcome FROM patron_save(%d, %d, true, true, %s::jsonb)"
        self.assertEqual(self.q(save % (ids["staff"], ids["workstation"], lit(json.dumps(doc)))),
                         "ok")
        self.assertEqual(self.activity(card)["activity"], today)
        self.assertIsNone(self.activity(card)["borrowed"])
        # An edit that does not extend the card leaves the date alone ...
        self.set_activity(card, "2024-01-01", None)
        edit = ("SELECT outcome FROM patron_save(%d, %d, true, true, (SELECT patron_doc(p)"
                " || jsonb_build_object('id', p.id, 'version', p.version) || %s::jsonb"
                " FROM patron p WHERE p.card = %s))")
        self.q(edit % (ids["staff"], ids["workstation"], lit('{"first_name": "Rega"}'),
                       lit(card)))
        self.assertEqual(self.activity(card)["activity"], "2024-01-01")
        # ... a card renewal (expiry later) moves it to today.
        self.q(edit % (ids["staff"], ids["workstation"], lit('{"expires_on": "2031-01-01"}'),
                       lit(card)))
        self.assertEqual(self.activity(card)["activity"], today)
        # Not an audited edit of the record: the audit has the create and two edits only.
        self.assertEqual(self.q("SELECT count(*) FROM audit_event WHERE entity = 'patron'"
                                " AND entity_id = %d" % self.patron_id(card)), "3")

    def test_registered_users_and_active_borrowers_come_from_the_activity_dates(self):
        def patron(branch, activity, borrowed, created="2020-01-01", **kw):
            card = env.new_patron(branch=branch, session=db, **kw)
            self.q("UPDATE patron SET created_at = %s WHERE card = %s" % (lit(created),
                                                                         lit(card)))
            if activity or borrowed:
                self.set_activity(card, activity, borrowed)
            return card
        patron("DWN", "2023-06-01", "2023-06-01")            # used within 3 years of 2025-12-31
        patron("DWN", "2025-12-31", "2025-03-01")
        patron("DWN", "2022-12-31", "2022-12-31")            # exactly 3 years before: out
        patron("ALB", "2025-01-10", None, category="juvenile")
        patron("ALB", None, None, created="2024-05-05")      # no row: registration counts
        patron("ALB", None, None, created="2019-05-05")      # no row, registered long ago
        merged = patron("PRK", "2025-05-05", "2025-05-05")
        keep = patron("PRK", "2025-06-06", None)
        self.q("UPDATE patron SET merged_into = (SELECT id FROM patron WHERE card = %s)"
               " WHERE card = %s" % (lit(keep), lit(merged)))
        pls = {(r["code"], r["branch_code"]): r for r in
               self.rows("SELECT * FROM pls_report(2025, NULL) WHERE code = 'REGBOR'")}
        self.assertEqual({k: v["value"] for k, v in pls.items()},
                         {("REGBOR", "ALB"): 2, ("REGBOR", "BAR"): 0, ("REGBOR", "CMP"): 0,
                          ("REGBOR", "DWN"): 2, ("REGBOR", "DWT"): 0, ("REGBOR", "PRK"): 1,
                          ("REGBOR", "RPK"): 0, ("REGBOR", None): 5})
        self.assertEqual(self.values("registered_users", "2025-12-31", "2025-12-31", "none",
                                     ("branch",)),
                         {("", "ALB"): 2.0, ("", "DWN"): 2.0, ("", "PRK"): 1.0})
        self.assertEqual(self.values("active_borrowers", "2025-12-31", "2025-12-31", "none",
                                     ("branch", "patron_category")),
                         {("", "DWN", "adult"): 1.0})
        self.assertEqual(self.values("active_borrowers", "2024-05-31", "2024-05-31"),
                         {("",): 2.0})

    def aged_patron(self, branch, created, activity=None, borrowed=None, **kw):
        """A patron registered at local time created (text) with the activity dates given."""
        card = env.new_patron(branch=branch, session=db, **kw)
        self.q("UPDATE patron SET created_at = %s::timestamp AT TIME ZONE"
               " library_setting_text('timezone') WHERE card = %s" % (lit(created), lit(card)))
        if activity or borrowed:
            self.set_activity(card, activity, borrowed)
        return card

    def regbor(self, year, branches=None):
        """pls_report's REGBOR lines: {branch_code: (value, how)}."""
        return {r["branch_code"]: (r["value"], r["how"]) for r in self.rows(
            "SELECT branch_code, value::float8 AS value, how FROM pls_report(%d, %s)"
            " WHERE code = 'REGBOR' AND (value > 0 OR branch_code IS NULL)"
            % (year, "NULL" if branches is None
               else "ARRAY[%s]" % ", ".join(str(ids[b]) for b in branches)))}

    def test_a_patron_registered_after_the_years_end_is_not_counted_for_it(self):
        self.aged_patron("RPK", "2025-12-31 23:30", "2025-12-31")   # the year's last evening
        self.aged_patron("RPK", "2026-01-01 00:30", "2026-01-01")   # local 2026, UTC still
        self.aged_patron("RPK", "2026-02-01 10:00", "2026-02-01", "2026-02-01")
        got = self.regbor(2025)
        self.assertEqual((got["RPK"][0], got[None][0]), (1.0, 1.0), got)
        self.assertIn("registered by 2025-12-31", got["RPK"][1])
        asof = ("2025-12-31", "2025-12-31", "none", ("branch",))
        self.assertEqual(self.values("registered_users", *asof), {("", "RPK"): 1.0})
        self.assertEqual(self.values("active_borrowers", *asof), {})
        today = self.q("SELECT library_today()")
        self.assertEqual(self.values("registered_users", today, today, "none", ("branch",)),
                         {("", "RPK"): 3.0})
        self.assertEqual(self.values("active_borrowers", today, today), {("",): 1.0})

    def test_the_counts_kept_at_the_years_end_are_what_later_reports_show(self):
        regular = self.aged_patron("RPK", "2020-01-01 10:00", "2025-06-01", "2025-06-01")
        idle = self.aged_patron("RPK", "2020-01-01 10:00", "2021-05-01", "2021-05-01")
        self.aged_patron("RPK", "2020-01-01 10:00", "2025-12-20", None, category="juvenile")
        # The first rollup run of 2026-01-01 keeps the counts of 2025-12-31.
        self.assertEqual(self.q("SELECT stats_patron_snapshot('2025-12-31')"), "t")
        self.assertEqual(self.q("SELECT stats_patron_snapshot('2025-12-31')"), "f", "once")
        kept = self.rows("SELECT branch_id, patron_category, registered_users, active_borrowers,"
                         " patrons FROM stat_patron_day WHERE day = '2025-12-31'"
                         " ORDER BY patron_category")
        self.assertEqual(kept, [
            {"branch_id": ids["RPK"], "patron_category": "adult", "registered_users": 1,
             "active_borrowers": 1, "patrons": 2},
            {"branch_id": ids["RPK"], "patron_category": "juvenile", "registered_users": 1,
             "active_borrowers": 0, "patrons": 1}])
        # 2026: the idle patron comes back, the regular one borrows again, a new one joins.
        self.set_activity(idle, "2026-03-01", "2026-03-01")
        self.set_activity(regular, "2026-03-02", "2026-03-02")
        self.aged_patron("RPK", "2026-04-01 10:00", "2026-04-01", "2026-04-01")
        got = self.regbor(2025)
        self.assertEqual((got["RPK"][0], got[None][0]), (2.0, 2.0), got)
        self.assertIn("From the counts kept at the end of 2025-12-31.", got["RPK"][1])
        self.assertIn("kept at the end of 2025-12-31", got[None][1])
        asof = ("2025-12-31", "2025-12-31", "none", ("patron_category",))
        self.assertEqual(self.values("registered_users", *asof),
                         {("", "adult"): 1.0, ("", "juvenile"): 1.0})
        self.assertEqual(self.values("active_borrowers", *asof), {("", "adult"): 1.0})
        # Kept a few days late (the daemon was down): the first kept after the year's end.
        self.q("DELETE FROM stat_patron_snapshot")
        self.assertEqual(self.q("SELECT stats_patron_snapshot('2026-01-03')"), "t")
        self.set_activity(idle, "2026-05-01", "2026-05-01")
        got = self.regbor(2025)
        self.assertEqual(got["RPK"][0], 3.0)   # as of 2026-01-03: the idle one is back
        self.assertIn("kept at the end of 2026-01-03, the first kept after 2025-12-31",
                      got["RPK"][1])
        # Kept more than a month after: not that year's; counted from the dates as they are.
        self.q("DELETE FROM stat_patron_snapshot")
        self.assertEqual(self.q("SELECT stats_patron_snapshot('2026-02-01')"), "t")
        got = self.regbor(2025)
        self.assertEqual(got["RPK"][0], 3.0)   # regular, idle (came back: counted), juvenile
        self.assertIn("No counts were kept at the end of 2025-12-31", got["RPK"][1])
        self.assertIn("when the report ran (%s)" % self.q("SELECT library_today()"),
                      got["RPK"][1])
        # The year in progress is counted when the report runs.
        year = int(self.q("SELECT extract(year FROM library_today())"))
        got = self.regbor(year)
        self.assertEqual(got["RPK"][0], 4.0)
        self.assertIn("Counted when the report ran", got["RPK"][1])

    def test_the_rollup_run_keeps_yesterdays_counts_once(self):
        self.aged_patron("RPK", "2020-01-01 10:00", "2025-06-01", "2025-06-01")
        yesterday = self.q("SELECT library_today() - 1")
        self.q("DELETE FROM stat_patron_snapshot")
        self.assertEqual(self.q("SELECT stats_rollup_run(10)"), "0")
        self.assertEqual(self.q("SELECT string_agg(day::text, ',') FROM stat_patron_snapshot"),
                         yesterday)
        counts = ("SELECT string_agg(format('%s', d), ';' ORDER BY d::text)"
                  " FROM stat_patron_day d WHERE branch_id = " + str(ids["RPK"]))
        before = self.q(counts)
        self.assertIn("(%s,%d,adult,1,0,1)" % (yesterday, ids["RPK"]), before)
        self.aged_patron("RPK", "2020-01-01 10:00", "2025-06-01", "2025-06-01")
        self.assertEqual(self.q("SELECT stats_rollup_run(10)"), "0")
        self.assertEqual(self.q(counts), before, "one snapshot a day")
        self.assertEqual(self.q("SELECT count(*) FROM stat_patron_snapshot"), "1")
        # Yesterday is in the past: its kept counts answer.
        self.assertEqual(self.values("registered_users", yesterday, yesterday, "none",
                                     ("branch",), branches=["RPK"]), {("", "RPK"): 1.0})

    def test_registrations(self):
        for branch, category in (("DWN", "adult"), ("DWN", "juvenile"), ("ALB", "adult")):
            card = env.new_patron(branch=branch, category=category, session=db)
            self.q("UPDATE patron SET created_at = '2025-03-03 12:00-05' WHERE card = %s"
                   % lit(card))
        self.assertEqual(self.values("registrations", "2025-03-01", "2025-03-31", "month",
                                     ("branch", "patron_category")),
                         {("2025-03", "ALB", "adult"): 1.0, ("2025-03", "DWN", "adult"): 1.0,
                          ("2025-03", "DWN", "juvenile"): 1.0})


class Pls(StatsTest):
    def test_hours_come_from_the_calendar_with_closed_days_subtracted(self):
        dwn, alb = ids["DWN"], ids["ALB"]
        self.q("DELETE FROM branch_hours WHERE branch_id IN (%d, %d)" % (dwn, alb))
        self.q("INSERT INTO branch_hours (branch_id, weekday, opens, closes)"
               " SELECT %d, d, '09:00'::time, '17:00'::time FROM generate_series(1, 5) d"
               " UNION ALL SELECT %d, 6, '10:00', '14:30'"
               " UNION ALL SELECT %d, 3, '12:00', '20:00'" % (dwn, dwn, alb))
        # Two weekdays and a Sunday (closed anyway) closed in 2025; one in 2024.
        self.q("INSERT INTO branch_closed (branch_id, day) VALUES (%d, '2025-01-01'),"
               " (%d, '2025-12-25'), (%d, '2025-12-28'), (%d, '2024-12-25'),"
               " (%d, '2025-07-02')" % (dwn, dwn, dwn, dwn, alb))
        lines = {(r["code"], r["branch_code"]): r for r in
                 self.rows("SELECT * FROM pls_report(2025, ARRAY[%d, %d])" % (dwn, alb))}
        # 2025: 261 weekdays and 52 Saturdays; 53 Wednesdays.
        self.assertEqual(float(lines[("HOURS", "DWN")]["value"]), 261 * 8 + 52 * 4.5 - 2 * 8)
        self.assertEqual(float(lines[("HOURS", "ALB")]["value"]), (53 - 1) * 8)
        self.assertEqual(lines[("HOURS", "DWN")]["basis"], "calendar")
        self.assertNotIn(("HOURS", "PRK"), lines)
        # Two outlets are not the whole system: no system row for them ...
        self.assertNotIn(("HOURS", None), lines)
        # ... which every outlet makes.
        self.assertEqual(self.q("SELECT value FROM pls_report(2025, NULL) WHERE code = 'HOURS'"
                                " AND branch_code IS NULL"),
                         self.q("SELECT sum(value) FROM pls_report(2025, NULL) WHERE code ="
                                " 'HOURS' AND branch_code IS NOT NULL"))

    def test_an_outlets_report_has_no_system_totals(self):
        self.event("2025-03-03 10:00", "checkout", "DWN")
        self.event("2025-03-03 10:00", "checkout", "ALB")
        own = self.rows("SELECT code, branch_code, value::float8 AS value, basis"
                        " FROM pls_report(2025, ARRAY[%d])" % ids["DWN"])
        totals = {r["code"] for r in own if r["branch_code"] is None}
        # Only the system's own lines (settings) are the system's.
        self.assertEqual(totals, {"ODFINE", "AUTORENEW"})
        self.assertTrue(all(r["basis"] == "setting" for r in own
                            if r["branch_code"] is None), own)
        self.assertEqual({r["branch_code"] for r in own} - {None}, {"DWN"})
        self.assertIn({"code": "PHYSCIR", "branch_code": "DWN", "value": 1.0,
                       "basis": "counted"}, own)
        everything = self.rows("SELECT code, value::float8 AS value FROM pls_report(2025, NULL)"
                               " WHERE branch_code IS NULL AND code = 'PHYSCIR'")
        self.assertEqual(everything, [{"code": "PHYSCIR", "value": 2.0}])

    def test_circulation_lines_and_settings(self):
        self.event("2025-03-03 10:00", "checkout", "DWN", category="juvenile")
        self.event("2025-03-03 10:00", "renew", "DWN", category="adult")
        self.event("2025-03-03 10:00", "renew", "ALB", category="juvenile")
        self.event("2025-03-03 10:00", "checkin", "ALB", category="juvenile")
        self.event("2024-12-31 23:30", "checkout", "ALB", category="juvenile")
        self.q("UPDATE library_setting SET value = 'yes' WHERE name = 'pls_autorenew'")
        lines = {(r["code"], r["branch_code"]): r
                 for r in self.rows("SELECT * FROM pls_report(2025, NULL)")}
        self.assertEqual(float(lines[("PHYSCIR", "DWN")]["value"]), 2)
        self.assertEqual(float(lines[("PHYSCIR", "ALB")]["value"]), 1)
        self.assertEqual(float(lines[("PHYSCIR", "PRK")]["value"]), 0)
        self.assertEqual(float(lines[("PHYSCIR", None)]["value"]), 3)
        self.assertEqual(float(lines[("KIDPHYSCIR", None)]["value"]), 2)
        self.assertEqual(float(lines[("WKS_OPEN", None)]["value"]), 52)
        self.assertEqual(float(lines[("ODFINE", None)]["value"]), 0)
        self.assertEqual(float(lines[("AUTORENEW", None)]["value"]), 1)
        # Counted since issue 12 (test_service_sql.py): nothing recorded here, so 0.
        for code in ("VISITS", "REFERENC", "PITUSR"):
            self.assertEqual(float(lines[(code, None)]["value"]), 0)
            self.assertEqual(lines[(code, "DWN")]["basis"], "counted")
        self.assertTrue(all(r["how"] for r in lines.values()))
        # Children's categories are a setting.
        self.q("UPDATE library_setting SET value = 'juvenile, adult' WHERE name ="
               " 'pls_child_categories'")
        self.assertEqual(self.q("SELECT value FROM pls_report(2025, NULL) WHERE code ="
                                " 'KIDPHYSCIR' AND branch_code IS NULL"), "3")


class OtherMeasures(StatsTest):
    def hold(self, bib, pickup="DWN", **columns):
        card = env.new_patron(session=db)
        cols = dict(columns)
        names = ", ".join(["patron_id", "bib_id", "pickup_branch_id"] + list(cols))
        values = ", ".join(["(SELECT id FROM patron WHERE card = %s)" % lit(card), str(bib),
                            str(ids[pickup])] + [lit(v) for v in cols.values()])
        return int(self.q("INSERT INTO hold (%s) VALUES (%s) RETURNING id"
                          % (names, values)).splitlines()[0])

    def test_holds_and_the_time_to_ready(self):
        bib = env.new_bib(session=db)
        copy = int(self.q("SELECT id FROM item WHERE barcode = %s"
                          % lit(env.new_item(bib, item_type="dvd", session=db))))
        self.hold(bib, placed_at="2025-04-01 10:00-04")
        self.hold(bib, placed_at="2025-04-02 10:00-04", status="ready",
                  captured_item_id=copy, shelf_expires_on="2025-04-20",
                  ready_at="2025-04-03 12:00-04")
        self.hold(bib, pickup="ALB", placed_at="2025-04-01 10:00-04",
                  ready_at="2025-04-01 20:00-04", status="cancelled", cancel_reason="test",
                  closed_at="2025-04-05 10:00-04")
        self.assertEqual(self.values("holds_placed", "2025-04-01", "2025-04-30", "day",
                                     ("branch",)),
                         {("2025-04-01", "ALB"): 1.0, ("2025-04-01", "DWN"): 1.0,
                          ("2025-04-02", "DWN"): 1.0})
        self.assertEqual(self.values("holds_cancelled", "2025-04-01", "2025-04-30"),
                         {("",): 1.0})
        self.assertEqual(self.values("hold_wait_median_hours", "2025-04-01", "2025-04-30"),
                         {("",): 18.0})   # 26 and 10 hours
        self.assertEqual(self.values("hold_wait_median_hours", "2025-04-01", "2025-04-30",
                                     "none", ("branch", "item_type")),
                         {("", "ALB", "(none)"): 10.0, ("", "DWN", "dvd"): 26.0})
        self.assertEqual(self.values("holds_on_shelf_now", "2025-04-01", "2025-04-30", "none",
                                     ("branch",)), {("", "DWN"): 1.0})
        self.assertEqual(self.values("holds_waiting_now", "2025-04-01", "2025-04-30", "none",
                                     ("branch",)), {("", "DWN"): 1.0})

    def test_a_hold_made_ready_is_dated(self):
        bib = env.new_bib(session=db)
        copy = int(self.q("SELECT id FROM item WHERE barcode = %s"
                          % lit(env.new_item(bib, session=db))))
        h = self.hold(bib, status="in_transit", captured_item_id=copy)
        self.assertEqual(self.q("SELECT ready_at IS NULL FROM hold WHERE id = %d" % h), "t")
        self.q("UPDATE hold SET status = 'ready', shelf_expires_on = '2099-01-01' WHERE id = %d"
               % h)
        self.assertEqual(self.q("SELECT ready_at > placed_at FROM hold WHERE id = %d" % h), "t")

    def test_buy_more_lists_titles_with_many_holds_per_copy(self):
        busy, quiet = env.new_bib("Busy title", session=db), env.new_bib(session=db)
        env.new_item(busy, session=db)
        env.new_item(busy, status="withdrawn", session=db)   # does not count as a copy
        env.new_item(quiet, session=db)
        for _ in range(5):
            self.hold(busy)
        self.hold(quiet)
        self.hold(busy, pickup="ALB")
        rows = self.rows("SELECT * FROM stats_buy_more(NULL, NULL, NULL)")
        self.assertEqual([(r["bib_id"], r["title"], r["holds"], r["copies"], r["ratio"])
                          for r in rows], [(busy, "Busy title", 6, 1, 6)])
        self.assertEqual(self.q("SELECT count(*) FROM stats_buy_more(ARRAY[%d], 5.5, 10)"
                                % ids["DWN"]), "0")
        self.assertEqual(self.q("SELECT holds FROM stats_buy_more(ARRAY[%d], 5, 10)"
                                % ids["DWN"]), "5")
        self.assertEqual(self.q("SELECT count(*) FROM stats_buy_more(NULL, 0, 10)"), "2")

    def test_notices_are_counted_when_sent_failed_or_exported(self):
        card = env.new_patron(branch="PRK", session=db)
        notices = []
        for channel in ("email", "email", "sms", "phone"):
            notices.append(int(self.q(
                "INSERT INTO notice (patron_id, kind, channel, address, subject, body, status,"
                " attempts, about_date) SELECT id, 'courtesy', %s, 'x', 's', 'b', 'sending', %d,"
                " DATE '2025-01-01' + %d FROM patron WHERE card = %s RETURNING id"
                % (lit(channel), 5 if not notices else 1, len(notices),
                   lit(card))).splitlines()[0]))
        self.q("SELECT notice_done(%d, false, 'bounced')" % notices[0])  # 5th attempt: failed
        self.q("SELECT notice_done(%d, true, NULL)" % notices[1])
        self.q("UPDATE notice SET status = 'pending' WHERE id IN (%d, %d)" % tuple(notices[2:]))
        self.q("SELECT notice_mark_exported(gen_random_uuid(), %d, ARRAY[%d, %d])"
               % ((ids["staff"],) + tuple(notices[2:])))
        today = self.q("SELECT library_today()")
        self.assertEqual(self.values("notices_sent", today, today, "none", ("channel",)),
                         {("", "email"): 1.0})
        self.assertEqual(self.values("notices_failed", today, today, "none",
                                     ("branch", "channel")), {("", "PRK", "email"): 1.0})
        self.assertEqual(self.values("notices_exported", today, today, "day", ("channel",)),
                         {(today, "phone"): 1.0, (today, "sms"): 1.0})
        live = {r["branch_code"]: r for r in self.rows("SELECT * FROM stats_live(NULL)")}
        self.assertEqual(live["PRK"]["notices_failing"], 1)
        self.assertEqual(live["DWN"]["notices_failing"], 0)

    def test_transits_between_branches(self):
        bib = env.new_bib(session=db)
        copy = int(self.q("SELECT id FROM item WHERE barcode = %s"
                          % lit(env.new_item(bib, session=db))))
        for sent, received in (("2025-04-01 10:00-04", "2025-04-02 10:00-04"),
                               ("2025-04-03 10:00-04", "2025-04-03 16:00-04"),
                               ("2025-04-05 10:00-04", "2025-04-06 14:00-04")):
            self.q("INSERT INTO transit (item_id, from_branch_id, to_branch_id, reason, sent_at,"
                   " received_at) VALUES (%d, %d, %d, 'home', %s, %s)"
                   % (copy, ids["DWN"], ids["ALB"], lit(sent), lit(received)))
        self.q("INSERT INTO transit (item_id, from_branch_id, to_branch_id, reason, sent_at)"
               " VALUES (%d, %d, %d, 'hold', now() - interval '30 days')"
               % (copy, ids["ALB"], ids["PRK"]))
        self.assertEqual(self.values("transits_sent", "2025-04-01", "2025-04-30", "none",
                                     ("from_branch", "to_branch")),
                         {("", "DWN", "ALB"): 3.0})
        self.assertEqual(self.values("transit_median_hours", "2025-04-01", "2025-04-30", "none",
                                     ("from_branch", "to_branch")),
                         {("", "DWN", "ALB"): 24.0})
        self.assertEqual(self.values("transits_overdue_now", "2025-04-01", "2025-04-30", "none",
                                     ("to_branch",)), {("", "PRK"): 1.0})
        live = {r["branch_code"]: r for r in self.rows("SELECT * FROM stats_live(NULL)")}
        self.assertEqual((live["PRK"]["transits_overdue"], live["ALB"]["transits_overdue"]),
                         (1, 0))

    def test_turnover_and_copies_idle(self):
        bib = env.new_bib(session=db)
        for _ in range(4):
            env.new_item(bib, branch="ALB", item_type="dvd", location="dvd wall", session=db)
        env.new_item(bib, branch="ALB", item_type="dvd", status="lost", session=db)
        for at in ("2025-02-01 10:00", "2025-02-02 10:00", "2025-02-03 10:00"):
            self.event(at, "checkout", "ALB", item_type="dvd")
        self.event("2025-02-04 10:00", "renew", "ALB", item_type="dvd")
        self.event("2025-02-04 10:00", "checkin", "ALB", item_type="dvd")
        self.assertEqual(self.values("turnover", "2025-02-01", "2025-02-28", "none",
                                     ("branch", "item_type")), {("", "ALB", "dvd"): 1.0})
        # Circulation at the branch over the copies the branch owns: two loans at DWN of
        # ALB's copies count for DWN, whose own copy makes it 2.0; ALB's stays 1.0.
        env.new_item(bib, branch="DWN", item_type="dvd", session=db)
        self.event("2025-02-05 10:00", "checkout", "DWN", item_type="dvd")
        self.event("2025-02-06 10:00", "checkout", "DWN", item_type="dvd")
        self.assertEqual(self.values("turnover", "2025-02-01", "2025-02-28", "none",
                                     ("branch", "item_type")),
                         {("", "ALB", "dvd"): 1.0, ("", "DWN", "dvd"): 2.0})
        self.assertIn("Circulation at the branch ÷ copies the branch owns",
                      self.q("SELECT description FROM stats_measures() WHERE name ="
                             " 'turnover'"))
        # Copies added long ago: idle unless borrowed in the months before the range's end.
        self.q("UPDATE item SET date_added = '2020-01-01'")
        self.q("UPDATE item SET last_circulated = '2025-01-15 12:00-05' WHERE id = (SELECT"
               " min(id) FROM item WHERE location = 'dvd wall')")
        idle = ("copies_idle", "2025-12-31", "2025-12-31", "none", ("branch", "location"))
        self.assertEqual(self.values(*idle, branches=["ALB"]), {("", "ALB", "dvd wall"): 3.0})
        self.assertEqual(self.values(*idle, branches=["ALB"], arg=6),
                         {("", "ALB", "dvd wall"): 4.0})

    def test_live_counts_this_hour_against_the_same_hour_of_the_last_four_weeks(self):
        for weeks, n in ((0, 3), (1, 2), (2, 4), (4, 2), (5, 100)):
            self.q("INSERT INTO circ_event (at, action, branch_id, item_id, item_type)"
                   " SELECT date_trunc('hour', now() AT TIME ZONE"
                   " library_setting_text('timezone')) AT TIME ZONE"
                   " library_setting_text('timezone') - make_interval(weeks => %d)"
                   " + interval '1 second', 'checkout', %d, %d, 'book' FROM generate_series(1,"
                   " %d)" % (weeks, ids["DWT"], self.item_id(), n))
        live = {r["branch_code"]: r for r in self.rows("SELECT * FROM stats_live(NULL)")}
        self.assertEqual(len(live), 7)
        self.assertEqual(live["DWT"]["circ_this_hour"], 3)
        self.assertEqual(float(live["DWT"]["circ_hour_average"]), 2.0)  # (2 + 4 + 0 + 2) / 4
        self.assertEqual(live["DWN"]["circ_this_hour"], 0)
        self.assertRegex(live["DWT"]["hour"], r"^\d{4}-\d\d-\d\d \d\d:00$")
        only = self.rows("SELECT branch_code FROM stats_live(ARRAY[%d])" % ids["DWT"])
        self.assertEqual(only, [{"branch_code": "DWT"}])


class Privacy(StatsTest):
    PATRONISH = ("patron_id", "card", "first_name", "last_name", "email", "phone",
                 "address", "birth_date", "patron")

    def test_no_statistics_function_returns_a_patron_identifier(self):
        funcs = self.rows(
            "SELECT p.proname, coalesce(p.proargnames, '{}') AS names,"
            " coalesce(p.proargmodes::text[], '{}') AS modes FROM pg_proc p"
            " WHERE p.pronamespace = 'public'::regnamespace"
            " AND (p.proname LIKE 'stats\\_%' OR p.proname LIKE 'pls\\_%')")
        names = {f["proname"] for f in funcs}
        self.assertTrue({"stats_query", "stats_measures", "stats_live", "pls_report",
                         "stats_buy_more", "stats_rollup_rebuild", "stats_src_circ",
                         "stats_src_facts"} <= names, names)
        for f in funcs:
            out = [n for n, m in zip(f["names"], f["modes"]) if m in ("o", "t", "b")]
            for column in out:
                self.assertNotIn(column, self.PATRONISH, f["proname"])
                self.assertFalse(column.startswith("patron") and column != "patron_category",
                                 (f["proname"], column))

    def test_every_measure_split_every_way_shows_codes_only(self):
        card = env.new_patron(branch="ALB", category="juvenile", first="Zelda", last="Secret",
                              session=db)
        barcode = env.new_item(env.new_bib(session=db), location="kids", session=db)
        self.q("SELECT * FROM circ_checkout(gen_random_uuid(), %d, %d, %d, %s, %s, false, NULL,"
               " false)" % (ids["staff"], ids["workstation"], ids["DWN"], lit(card),
                            lit(barcode)))
        allowed = set(ids) | {"(none)", "kids", "desk", "selfcheck", "auto", "email", "sms",
                              "phone"}
        allowed |= set(self.q("SELECT string_agg(code, ',') FROM item_type").split(","))
        allowed |= set(self.q("SELECT string_agg(code, ',') FROM patron_category").split(","))
        today = self.q("SELECT library_today()")
        measures = self.rows("SELECT name, dims FROM stats_measures()")
        self.assertGreaterEqual(len(measures), 24)
        seen = set()
        for m in measures:
            got = self.stats(m["name"], today, today, "none", tuple(m["dims"]))
            for key in got:
                self.assertEqual(len(key), 1 + len(m["dims"]))
                seen |= set(key[1:])
                self.assertTrue(set(key[1:]) <= allowed, (m["name"], key))
        self.assertTrue({"DWN", "ALB", "juvenile", "kids"} <= seen, seen)
        self.assertNotIn(card, seen)


if __name__ == "__main__":
    unittest.main(verbosity=2)
