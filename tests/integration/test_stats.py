#!/usr/bin/env python3
"""Statistics through the daemon and the real client: counts of checkouts made at
the desk (from the queue of unfolded events and after the rollup job has folded
them: the same), text, JSON and CSV output, --compare, who may see what (a clerk
today and their branch only, a branch manager their branch, the coordinator
all), refusals of bad input, the live view pushed by the server, the PLS report,
the rebuild (administrators only), and that no output ever names a patron."""

import csv
import io
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = "staff-password-123"
REQ_CHECKOUT = 80
REQ_PING, RESP_PONG = 13, 14
REQ_STATS_LIVE = RESP_STATS_LIVE = 162
REQ_STATS_MEASURES = 161
REQ_LOGOUT, REQ_LOGIN = 12, 11

env = None
main = None  # rollup timer off: events stay in the queue until a test folds them

STAFF = [("clara", "clerk", "DWN"), ("libby", "librarian", "DWN"),
         ("manny", "branch_manager", "DWN"), ("cora", "coordinator", "DWN"),
         ("pat", "clerk", "PRK")]


def carrel(*args, user="cora", ws="desk-dwn", daemon=None, json_out=True):
    pw = harness.ADMIN_PASSWORD if user == "admin" else PASSWORD
    return env.carrel(env.profile(daemon or main, ws, user, pw), *args, json_out=json_out)


def today():
    return env.psql("SELECT library_today()")


def pending():
    return int(env.psql("SELECT stats_rollup_pending()"))


def checkouts_by_branch(user="cora", daemon=None, *extra):
    """{branch code: count} of today's checkouts, from `carrel stats checkouts --by branch`."""
    r = carrel("stats", "checkouts", "--by", "branch", *extra, user=user, daemon=daemon)
    assert r.code == 0, r
    return {row["key"][0]: row.get("value", 0) for row in r.json.get("rows", [])}


def lend(n, branch="DWN", ws="desk-dwn", user="clara", card=None, daemon=None):
    """n checkouts at the desk of `branch` through the real client; the card."""
    card = card or env.new_patron(branch=branch)
    items = [env.new_item(branch=branch, title="Stats copy") for _ in range(n)]
    r = carrel("checkout", card, *items, user=user, ws=ws, daemon=daemon)
    assert r.code == 0, r
    return card, items


def raw_checkouts_today(branch):
    return int(env.psql(
        "SELECT count(*) FROM circ_event e JOIN branch b ON b.id = e.branch_id"
        " WHERE e.action = 'checkout' AND b.code = '%s'"
        " AND library_local_date(e.at) = library_today()" % branch))


def live(*args, user="cora", ws="desk-dwn"):
    """`carrel stats live --json ARGS` running."""
    profile = env.profile(main, ws, user, PASSWORD)
    return subprocess.Popen([harness.CARREL, "-c", profile, "stats", "live", "--json"]
                            + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        main = env.daemon(stats_rollup_interval_s=0, jobs_interval_s=0, notice_send_interval_s=0)
        admin = env.profile(main)
        env.add_workstations(admin, {"desk-prk": "PRK"})
        for user, role, branch in STAFF:
            env.add_staff(admin, user, role, branch, PASSWORD)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


class Counts(unittest.TestCase):
    def test_checkouts_counted_from_queue_and_after_rollup(self):
        before = checkouts_by_branch()
        lend(3, "DWN")
        lend(2, "PRK", ws="desk-prk", user="pat")
        self.assertGreater(pending(), 0, "the timer is off: the events wait in the queue")
        queued = checkouts_by_branch()
        self.assertEqual(queued.get("DWN", 0), before.get("DWN", 0) + 3)
        self.assertEqual(queued.get("PRK", 0), before.get("PRK", 0) + 2)
        self.assertEqual(queued["DWN"], raw_checkouts_today("DWN"))

        # A daemon whose rollup job runs every second folds them; the answers stay the same.
        folder = env.daemon(stats_rollup_interval_s=1, jobs_interval_s=0,
                            notice_send_interval_s=0)
        try:
            harness.wait_until(lambda: pending() == 0, what="the rollup job to fold the queue")
            self.assertEqual(checkouts_by_branch(daemon=folder), queued)
            self.assertEqual(checkouts_by_branch(), queued)
        finally:
            folder.stop()  # exits 0, sanitizers clean: the job stopped cleanly

    def test_checkins_and_time_groupings(self):
        def checkins():
            r = carrel("stats", "checkins", "--by", "branch", "--branch", "DWN")
            self.assertEqual(r.code, 0, r)
            return sum(row["value"] for row in r.json["rows"])
        before = checkins()
        _, items = lend(2)
        r = carrel("checkin", *items, user="clara")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(checkins(), before + 2)
        r = carrel("stats", "checkouts", "--time", "hour_of_week", "--by", "via")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["time"], "hour_of_week")
        for row in r.json["rows"]:
            self.assertRegex(row["period"], r"^[1-7]-[0-2][0-9]$")
            self.assertIn(row["key"][0], ("desk", "selfcheck", "auto"))
        self.assertIn("desk", [row["key"][0] for row in r.json["rows"]])
        r = carrel("stats", "checkouts", "--time", "week", "--from", "2026-11-01", "--to",
                   today())
        self.assertEqual(r.code, 0, r)
        for row in r.json["rows"]:  # weeks are Mondays
            self.assertEqual(env.psql("SELECT extract(isodow FROM date '%s')" % row["period"]),
                             "1")

    def test_text_states_the_range(self):
        lend(1)
        r = carrel("stats", "checkouts", "--by", "branch", json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertIn(today(), r.stdout.splitlines()[0])
        self.assertIn("DWN", r.stdout)

    def test_csv_header_and_rows(self):
        lend(2)
        j = carrel("stats", "checkouts", "--by", "branch,item_type")
        self.assertEqual(j.code, 0, j)
        r = carrel("stats", "checkouts", "--by", "branch,item_type", "--csv", json_out=False)
        self.assertEqual(r.code, 0, r)
        rows = list(csv.reader(io.StringIO(r.stdout)))
        self.assertEqual(rows[0], ["measure", "from", "to", "period", "branch", "item_type",
                                   "value"])
        self.assertEqual(len(rows) - 1, len(j.json["rows"]))
        for row, jrow in zip(rows[1:], j.json["rows"]):
            self.assertEqual(row[:3], ["checkouts", today(), today()])
            self.assertEqual(row[4:6], jrow["key"])
            self.assertEqual(float(row[6]), jrow["value"])
        self.assertIn(["checkouts", today(), today(), "", "DWN", "book"],
                      [row[:6] for row in rows[1:]])

    def test_csv_and_json_together_is_a_usage_error(self):
        r = carrel("stats", "checkouts", "--csv")
        self.assertEqual(r.code, 2, r)

    def test_compare_with_a_year_earlier(self):
        # Three checkouts at DWN a year ago today (local noon), and today's.
        env.psql("INSERT INTO circ_event (at, action, branch_id, item_id, item_type,"
                 " patron_category)"
                 " SELECT ((library_today() - interval '1 year')::date + time '12:00')"
                 "          AT TIME ZONE library_setting_text('timezone'),"
                 "        'checkout', b.id, (SELECT min(id) FROM item), 'book', 'adult'"
                 "   FROM branch b, generate_series(1, 3) WHERE b.code = 'DWN'")
        lend(1)
        r = carrel("stats", "checkouts", "--by", "branch", "--branch", "DWN", "--compare")
        self.assertEqual(r.code, 0, r)
        x = r.json
        self.assertEqual(x["previous_from"],
                         env.psql("SELECT (library_today() - interval '1 year')::date"))
        self.assertEqual(x["previous_to"], x["previous_from"])
        (row,) = x["rows"]
        self.assertEqual(row["key"], ["DWN"])
        self.assertGreaterEqual(row["previous"], 3)
        self.assertAlmostEqual(row["change_pct"],
                               (row["value"] - row["previous"]) / row["previous"] * 100)
        t = carrel("stats", "checkouts", "--branch", "DWN", "--compare", json_out=False)
        self.assertEqual(t.code, 0, t)
        self.assertIn("compared with " + x["previous_from"], t.stdout)
        self.assertIn("%", t.stdout)

    def test_measures_listed(self):
        r = carrel("stats", "measures")
        self.assertEqual(r.code, 0, r)
        names = {m["name"]: m for m in r.json["measures"]}
        for name in ("checkouts", "renewals", "checkins", "circulation", "holds_placed",
                     "registered_users"):
            self.assertIn(name, names)
        self.assertIn("branch", names["checkouts"]["dims"])
        t = carrel("stats", "measures", json_out=False)
        self.assertEqual(t.code, 0, t)
        self.assertIn("checkouts", t.stdout)

    def test_measures_as_csv(self):
        c = carrel("stats", "measures", "--csv", json_out=False)
        self.assertEqual(c.code, 0, c)
        rows = list(csv.reader(io.StringIO(c.stdout)))
        self.assertEqual(rows[0], ["name", "title", "unit", "kind", "dims", "times",
                                   "description"])
        byname = {row[0]: row for row in rows[1:]}
        self.assertEqual(len(byname), len(carrel("stats", "measures").json["measures"]))
        self.assertEqual(byname["checkouts"][3], "range")
        self.assertIn("branch", byname["checkouts"][4].split(","))
        self.assertEqual(byname["holds_waiting_now"][3], "now")

    def test_now_measures_say_as_of(self):
        r = carrel("stats", "holds_waiting_now")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["kind"], "now")
        t = carrel("stats", "holds_waiting_now", json_out=False)
        self.assertEqual(t.code, 0, t)
        self.assertIn("as of " + today(), t.stdout.splitlines()[0])
        t = carrel("stats", "checkouts", json_out=False)
        self.assertNotIn("as of", t.stdout)
        self.assertEqual(carrel("stats", "checkouts").json["kind"], "range")


class Permissions(unittest.TestCase):
    def refused(self, r, status, reason):
        self.assertEqual(r.code, 4, r)
        self.assertEqual((r.json["status"], r.json["reason"]), (status, reason), r)
        self.assertTrue(r.json["message"].endswith("."), r)

    def test_clerk_today_at_own_branch_only(self):
        lend(1)
        for user in ("clara", "libby"):
            mine = checkouts_by_branch(user=user)
            self.assertEqual(set(mine), {"DWN"})
            r = carrel("stats", "checkouts", "--from", today(), "--to", today(), user=user)
            self.assertEqual(r.code, 0, r)
            r = carrel("stats", "checkouts", "--from", "2026-01-01", "--to", "2026-01-31",
                       user=user)
            self.refused(r, "forbidden", "role")
            self.assertIn("today", r.json["message"])
            r = carrel("stats", "checkouts", "--branch", "PRK", user=user)
            self.refused(r, "forbidden", "branch")
            # Refused before the measure runs (an unknown one would be field:measure).
            r = carrel("stats", "no_such_measure", "--from", "2016-01-01", "--to", "2025-12-31",
                       user=user)
            self.refused(r, "forbidden", "role")
        r = carrel("stats", "checkouts", "--by", "branch", user="pat", ws="desk-prk")
        self.assertEqual(r.code, 0, r)
        self.assertEqual({row["key"][0] for row in r.json["rows"]}, {"PRK"})

    def test_manager_own_branch_any_day(self):
        lend(1, "PRK", ws="desk-prk", user="pat")
        r = carrel("stats", "checkouts", "--by", "branch", "--from", "2026-01-01", "--to",
                   today(), user="manny")
        self.assertEqual(r.code, 0, r)
        self.assertEqual({row["key"][0] for row in r.json["rows"]}, {"DWN"})
        self.refused(carrel("stats", "checkouts", "--branch", "PRK", user="manny"),
                     "forbidden", "branch")
        self.refused(carrel("stats", "checkouts", "--branch", "DWN,PRK", user="manny"),
                     "forbidden", "branch")

    def test_coordinator_sees_all(self):
        lend(1, "PRK", ws="desk-prk", user="pat")
        lend(1, "DWN")
        seen = checkouts_by_branch(user="cora")
        self.assertTrue({"DWN", "PRK"} <= set(seen), seen)
        only = checkouts_by_branch("cora", None, "--branch", "PRK")
        self.assertEqual(set(only), {"PRK"})

    def test_bad_input(self):
        self.refused(carrel("stats", "no_such_measure"), "bad_request", "field:measure")
        self.refused(carrel("stats", "checkouts", "--from", "2026-13-01"), "bad_request",
                     "field:from")
        self.refused(carrel("stats", "checkouts", "--to", "yesterday"), "bad_request",
                     "field:to")
        self.refused(carrel("stats", "checkouts", "--from", "2026-02-01", "--to", "2026-01-01"),
                     "bad_request", "field:from")
        self.refused(carrel("stats", "checkouts", "--by", "patron_name"), "bad_request",
                     "field:by")
        self.refused(carrel("stats", "checkouts", "--time", "fortnight"), "bad_request",
                     "field:time")
        self.refused(carrel("stats", "checkouts", "--branch", "NOPE"), "bad_request",
                     "field:branch")
        # An unknown branch is answered before the measure runs (no field:measure).
        self.refused(carrel("stats", "no_such_measure", "--branch", "NOPE"), "bad_request",
                     "field:branch")
        r = carrel("stats", "no_such_measure", json_out=False)
        self.assertEqual(r.code, 4, r)
        self.assertIn("measure", r.stderr)
        self.assertEqual(carrel("stats").code, 2)

    def test_rebuild_admin_only(self):
        lend(2)
        before = checkouts_by_branch()
        self.refused(carrel("admin", "stats", "rebuild", user="cora"), "forbidden", "role")
        self.refused(carrel("admin", "stats", "rebuild", user="manny"), "forbidden", "role")
        r = carrel("admin", "stats", "rebuild", user="admin")
        self.assertEqual(r.code, 0, r)
        self.assertGreaterEqual(r.json["events"], sum(before.values()))
        self.assertEqual(checkouts_by_branch(), before)

    def test_pls_report(self):
        lend(1)
        year = today()[:4]
        r = carrel("report", "pls", "--year", year, user="cora")
        self.assertEqual(r.code, 0, r)
        x = r.json
        self.assertEqual((x["from"], x["to"]), (year + "-01-01", year + "-12-31"))
        codes = {(line["code"], line.get("branch_code", "")) for line in x["lines"]}
        for code in ("PHYSCIR", "KIDPHYSCIR", "REGBOR", "HOURS", "WKS_OPEN"):
            self.assertIn((code, ""), codes)
            self.assertIn((code, "DWN"), codes)
        physcir = [line for line in x["lines"] if line["code"] == "PHYSCIR"
                   and line.get("branch_code") == "DWN"][0]
        self.assertGreaterEqual(physcir["value"], 1)
        c = carrel("report", "pls", "--year", year, "--csv", user="manny", json_out=False)
        self.assertEqual(c.code, 0, c)
        rows = list(csv.reader(io.StringIO(c.stdout)))
        self.assertEqual(rows[0], ["year", "from", "to", "code", "branch", "value", "basis",
                                   "how"])
        self.assertEqual({row[4] for row in rows[1:]} - {""}, {"DWN"})
        t = carrel("report", "pls", "--year", year, json_out=False)
        self.assertIn("PHYSCIR", t.stdout)
        self.assertIn(year + "-01-01 to " + year + "-12-31", t.stdout)
        self.refused(carrel("report", "pls", "--year", year, user="clara"), "forbidden", "role")
        self.refused(carrel("report", "pls", "--year", year, "--branch", "PRK", user="manny"),
                     "forbidden", "branch")
        for outside in ("1989", "2200"):  # what pls_report() accepts: 1990-2199
            r = carrel("report", "pls", "--year", outside, user="cora")
            self.refused(r, "bad_request", "field:year")
            self.assertIn("1990 to 2199", r.json["message"])

    def test_buy_more(self):
        r = carrel("stats", "buy-more", "--threshold", "1", user="manny")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["threshold"], 1)
        r = carrel("stats", "buy-more", user="cora")
        self.assertEqual(r.code, 0, r)
        self.assertIn("threshold", r.json)
        self.refused(carrel("stats", "buy-more", user="clara"), "forbidden", "role")


class Live(unittest.TestCase):
    def test_updates_stop_by_themselves(self):
        p = live("--updates", "2", "--interval", "1")
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, err)
        docs = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(len(docs), 2)
        for d in docs:
            self.assertIn("DWN", [b["branch_code"] for b in d["branches"]])

    def test_sees_a_checkout_between_updates(self):
        # Waits for the condition, not for a number of pushes: the client runs with many
        # updates and is stopped once an update shows the checkout (or a new hour began).
        card = env.new_patron()
        item = env.new_item(title="Stats live copy")
        w = main.logged_in_wire(user="clara", password=PASSWORD)
        p = live("--updates", "1000", "--interval", "1")
        docs = []
        reader = threading.Thread(target=lambda: docs.extend(json.loads(line)
                                                             for line in p.stdout))
        reader.start()

        def dwn(doc):
            return [b for b in doc["branches"] if b["branch_code"] == "DWN"][0]

        try:
            harness.wait_until(lambda: docs, what="the first live figures")
            first = docs[0]
            self.assertGreaterEqual(dwn(first)["workstations_connected"], 1)  # this client
            r = w.call(REQ_CHECKOUT, harness.pb_message((1, card), (2, item)),
                       key=str(uuid.uuid4()))
            self.assertEqual(r.status, "ok", r)

            def counted():
                return any(d["hour"] != first["hour"] and dwn(d)["circ_this_hour"] >= 1
                           or dwn(d)["circ_this_hour"] >= dwn(first)["circ_this_hour"] + 1
                           for d in list(docs[1:]))
            harness.wait_until(counted, timeout=60, what="an update counting the checkout")
        finally:
            w.close()
            if p.poll() is None:
                p.kill()
            p.wait()
            reader.join(timeout=60)
            p.stdout.close()
            p.stderr.close()

    def test_pushes_keep_their_interval(self):
        """The schedule is anchored: no gap between two pushes exceeds the interval (plus
        the time a push takes to arrive), however long each tick's query took."""
        w = main.logged_in_wire(user="cora", password=PASSWORD)
        try:
            r = w.call(REQ_STATS_LIVE, harness.pb_message((2, 2)))  # every 2 s
            self.assertEqual(r.status, "ok", r)
            times = []
            for _ in range(4):
                push = w.recv()
                self.assertEqual(push.id, 0, push)
                times.append(time.monotonic())
            gaps = [b - a for a, b in zip(times, times[1:])]
            self.assertTrue(all(g < 2.5 for g in gaps), gaps)
        finally:
            w.close()

    def test_pushes_on_the_wire_and_stop(self):
        w = main.logged_in_wire(user="cora", password=PASSWORD)
        try:
            r = w.call(REQ_STATS_LIVE, harness.pb_message((2, 1)))  # every second
            self.assertEqual(r.status, "ok", r)
            self.assertEqual(len(r.body(RESP_STATS_LIVE)[3]), 7)  # every branch
            push = w.recv()
            self.assertEqual((push.id, push.status), (0, "ok"))
            self.assertEqual(len(push.body(RESP_STATS_LIVE)[3]), 7)
            rid = w.send(REQ_STATS_LIVE, harness.pb_message((1, 1)))  # stop
            while True:  # pushes sent before the answer may still come first
                r = w.recv()
                if r.id == rid:
                    break
                self.assertIn(RESP_STATS_LIVE, r.fields)
            self.assertEqual(r.status, "ok", r)
            # Nothing more is pushed: for a few ticks, each Ping's Pong is the next frame.
            until = time.monotonic() + 3
            while time.monotonic() < until:
                rid = w.send(REQ_PING, b"")
                r = w.recv()
                self.assertEqual((r.id, r.status), (rid, "ok"), r)
                self.assertIn(RESP_PONG, r.fields)
                self.assertNotIn(RESP_STATS_LIVE, r.fields)
            r = w.call(REQ_STATS_LIVE, harness.pb_message((2, 9)))
            self.assertEqual((r.status, r.reason), ("bad_request", "field:interval_s"))
        finally:
            w.close()

    def call_past_pushes(self, w, field, body=b""):
        """The answer to a request, past any live push sent before it."""
        rid = w.send(field, body)
        while True:
            r = w.recv()
            if r.id == rid:
                return r
            self.assertEqual(r.id, 0, r)
            self.assertIn(RESP_STATS_LIVE, r.fields)

    def assert_no_push_for_a_while(self, w):
        """For a few ticks, each Ping's Pong is the next frame."""
        until = time.monotonic() + 3
        while time.monotonic() < until:
            rid = w.send(REQ_PING, b"")
            r = w.recv()
            self.assertEqual((r.id, r.status), (rid, "ok"), r)
            self.assertIn(RESP_PONG, r.fields)

    def test_the_next_login_on_a_connection_is_not_subscribed(self):
        w = main.logged_in_wire(user="cora", password=PASSWORD)
        try:
            r = w.call(REQ_STATS_LIVE, harness.pb_message((2, 1)))
            self.assertEqual(r.status, "ok", r)
            self.assertEqual(w.recv().id, 0)  # a push
            self.assertEqual(self.call_past_pushes(w, REQ_LOGOUT).status, "ok")
            r = self.call_past_pushes(w, REQ_LOGIN, harness.pb_message(
                (1, "desk-dwn"), (2, "clara"), (3, PASSWORD)))
            self.assertEqual(r.status, "ok", r)
            self.assert_no_push_for_a_while(w)  # cora's subscription ended with her session
            r = w.call(REQ_STATS_LIVE, harness.pb_message((2, 1)))
            self.assertEqual(r.status, "ok", r)
            push = w.recv()
            self.assertEqual(push.id, 0)
            codes = [harness.pb_decode(b)[1][0].decode()
                     for b in push.body(RESP_STATS_LIVE)[3]]
            self.assertEqual(codes, ["DWN"])  # clara's scope, not cora's
        finally:
            w.close()

    def test_clerk_sees_own_branch(self):
        p = live("--updates", "1", user="clara")
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, err)
        (doc,) = [json.loads(line) for line in out.splitlines()]
        self.assertEqual([b["branch_code"] for b in doc["branches"]], ["DWN"])
        p = live("--updates", "1", "--branch", "PRK", user="clara")
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 4, err)
        self.assertEqual(json.loads(out)["reason"], "branch")


class Standby(unittest.TestCase):
    """The stats pool (stats_conninfo). A real streaming replica is test_standby's; here
    the pool's failure paths: nothing listening, a database without our schema, and the
    pool pointed at the primary itself."""

    def stats_daemon(self, conninfo, **settings):
        return env.daemon(stats_conninfo=conninfo, stats_rollup_interval_s=0, jobs_interval_s=0,
                          notice_send_interval_s=0, **settings)

    def nowhere(self):
        return "host=127.0.0.1 port=%d dbname=carrel user=carrel connect_timeout=2" % (
            harness.free_port())

    def assert_desks_work(self, d):
        lend(1, daemon=d)

    def test_unreachable_standby_answers_unavailable(self):
        d = self.stats_daemon(self.nowhere())
        try:
            r = carrel("stats", "checkouts", daemon=d)
            self.assertEqual(r.code, 4, r)
            self.assertEqual((r.json["status"], r.json["reason"]),
                             ("unavailable", "stats_unavailable"))
            self.assertIn("standby", r.json["message"])
            self.assert_desks_work(d)
            p = live("--updates", "1")  # main's: not affected
            self.assertEqual(p.wait(timeout=120), 0)
            p.stdout.close()
            p.stderr.close()
            profile = env.profile(d, "desk-dwn", "cora", PASSWORD)
            r = env.carrel(profile, "stats", "live", "--updates", "1")
            self.assertEqual((r.code, (r.json or {}).get("reason")), (4, "stats_unavailable"), r)
        finally:
            d.stop()

    def test_a_host_name_is_refused_at_start(self):
        """libpq would look a name up in DNS on the loop at every reconnect: carreld says
        so and does not start; with hostaddr (host kept for TLS) it would."""
        d = harness.Daemon(env, stats_conninfo="host=standby.invalid dbname=carrel"
                           " user=carrel").start(expect_listen=False)
        code = d.wait()
        d.check_clean(code, expect_code=1)
        self.assertIn("stats_conninfo: the host 'standby.invalid' is a name", d.log_text())
        self.assertIn("hostaddr=", d.log_text())

    def test_fallback_to_the_primary(self):
        d = self.stats_daemon(self.nowhere(), stats_fallback_primary=True)
        try:
            lend(1, daemon=d)
            r = carrel("stats", "checkouts", "--by", "branch", daemon=d)
            self.assertEqual(r.code, 0, r)
            self.assertEqual(r.json["served_by"], "primary")
            self.assertEqual(r.json["rows"], carrel("stats", "checkouts", "--by",
                                                    "branch").json["rows"])
        finally:
            d.stop()

    def test_standby_without_our_schema_stops_nothing(self):
        d = self.stats_daemon(env.conninfo.replace("dbname=carrel", "dbname=postgres"))
        try:
            harness.wait_until(lambda: "cannot serve statistics" in d.log_text(),
                               what="the stats pool to find the schema missing")
            r = carrel("stats", "checkouts", daemon=d)
            self.assertEqual((r.code, (r.json or {}).get("reason")), (4, "stats_unavailable"), r)
            self.assert_desks_work(d)
        finally:
            d.stop()  # still running, and stops cleanly

    def test_stats_pool_serves(self):
        # The primary itself, through the stats pool: its sessions are named apart.
        d = self.stats_daemon(env.conninfo + " application_name=carrel_stats_pool")
        try:
            lend(2, daemon=d)
            r = carrel("stats", "checkouts", "--by", "branch", daemon=d)
            self.assertEqual(r.code, 0, r)
            self.assertEqual(r.json["served_by"], "primary")
            self.assertEqual(r.json["rows"], carrel("stats", "checkouts", "--by",
                                                    "branch").json["rows"])
            profile = env.profile(d, "desk-dwn", "cora", PASSWORD)
            r = env.carrel(profile, "stats", "live", "--updates", "1")
            self.assertEqual(r.code, 0, r)
            self.assertEqual(env.psql("SELECT count(*) FROM pg_stat_activity"
                                      " WHERE application_name = 'carrel_stats_pool'"), "2")
        finally:
            d.stop()


class PrimaryShare(unittest.TestCase):
    def test_reports_never_take_the_desks_connections(self):
        """Without a standby, at most stats_pool_size statistics statements run at once on
        the primary: six reports stuck behind a lock hold one connection, and a checkout
        through the same daemon goes through meanwhile."""
        d = env.daemon(stats_pool_size=1, db_pool_size=4, db_lock_timeout_ms=120000,
                       db_statement_timeout_ms=120000, stats_rollup_interval_s=0,
                       jobs_interval_s=0, notice_send_interval_s=0)
        profile = env.profile(d, "desk-dwn", "cora", PASSWORD)
        reports = []
        try:
            with harness.TableLock(env, "stat_measure") as lock:
                reports = [subprocess.Popen([harness.CARREL, "-c", profile, "--json", "stats",
                                             "measures"], stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)
                           for _ in range(6)]
                lock.wait_for_waiters(1)
                harness.wait_until(lambda: d.log_text().count("login: cora") >= 6,
                                   what="the six reports to log in")
                lend(1, daemon=d)  # the desks still have connections
                self.assertEqual(lock.waiting(), 1)
            for p in reports:
                out, err = p.communicate(timeout=120)
                self.assertEqual(p.returncode, 0, err)
                self.assertTrue(json.loads(out)["measures"])
        finally:
            for p in reports:
                if p.poll() is None:
                    p.kill()
                    p.communicate()
            d.stop()


class FreezableProxy:
    """A Unix-socket relay in front of PostgreSQL, for a standby that hangs: once frozen
    it relays nothing more on the connections it has (a network cut mid-query) and
    accepts new ones without ever answering (a host that accepts TCP and is silent)."""

    def __init__(self, target):
        self.target = target
        self.dir = tempfile.mkdtemp(prefix="cpx-", dir="/tmp")
        self.port = 5999
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(os.path.join(self.dir, ".s.PGSQL.%d" % self.port))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.frozen = threading.Event()
        self.parked = set()  # pumps that have seen the freeze
        self.closing = threading.Event()
        self.sockets = []
        self.threads = [threading.Thread(target=self.accept_loop, daemon=True)]
        self.threads[0].start()
        self.conninfo = "host=%s port=%d dbname=carrel user=carrel" % (self.dir, self.port)

    def accept_loop(self):
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.sockets.append(client)
            if self.frozen.is_set():
                continue  # held open, never answered
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            self.sockets.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self.pump, args=(a, b), daemon=True)
                t.start()
                self.threads.append(t)

    def pump(self, a, b):
        while not self.closing.is_set():
            if self.frozen.is_set():
                self.parked.add(threading.get_ident())
                time.sleep(0.05)
                continue
            try:
                ready, _, _ = select.select([a], [], [], 0.1)
                if not ready:
                    continue
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
            except OSError:
                break
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def freeze(self):
        # Frozen means no byte passes any more: wait until every pump that is still
        # running has seen the flag (one may be inside select() when it is set).
        self.frozen.set()
        harness.wait_until(lambda: all(t.ident in self.parked or not t.is_alive()
                                       for t in self.threads[1:]),
                           what="the relay's pumps to stop")

    def close(self):
        self.closing.set()
        self.listener.close()
        for x in self.sockets:
            try:
                x.close()
            except OSError:
                pass
        for t in self.threads:
            t.join(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


class Hostile(unittest.TestCase):
    def test_malformed_statistics_requests_change_nothing(self):
        """Statistics requests no client would send — thousands of dimensions and branches,
        quotes and SQL in names, negative and huge numbers, an empty measure, a year of
        zero, a live subscription for 10,000 branches — each get a clear refusal on the
        same connection, and the daemon goes on serving it and every other desk."""
        card, _ = lend(1)
        before = checkouts_by_branch()
        w = main.logged_in_wire(user="cora", password=PASSWORD)
        q = 160  # StatsQuery
        many = [(5, "branch")] * 5000
        cases = [
            (q, [(1, "")], "field:measure"),
            (q, [(1, "checkouts'; DROP TABLE circ_event; --")], "field:measure"),
            (q, [(1, "checkouts"), (4, "day' OR '1'='1")], "field:time"),
            (q, [(1, "checkouts")] + many, "field:by"),
            (q, [(1, "checkouts"), (5, "branch\\"), (5, "{x,y}")], "field:by"),
            (q, [(1, "checkouts")] + [(6, "B%05d" % i) for i in range(5000)], "field:branch"),
            (q, [(1, "checkouts"), (2, "0000-00-00")], "field:from"),
            (q, [(1, "checkouts"), (2, "2026-01-01"), (3, "9999-12-31")], "field:from"),
            (q, [(1, "copies_idle"), (8, (1 << 64) - 1)], "field:arg"),  # -1 as int32
            (163, [(1, 0)], "field:year"),  # PlsReport
            (164, [(2, (1 << 64) - 5)], "field:limit"),  # StatsBuyMore, limit -5
            (162, [(3, "B%05d" % i) for i in range(10000)], "field:branch"),
        ]
        for body_field, fields, reason in cases:
            r = w.call(body_field, harness.pb_message(*fields))
            self.assertIsNotNone(r, "the daemon closed the connection on %r" % (fields[:2],))
            self.assertEqual((r.status, r.reason), ("bad_request", reason), (fields[:2], r))
        # The same connection, another desk and the numbers are as they were.
        self.assertEqual(w.call(REQ_PING).status, "ok")
        w.close()
        self.assertEqual(env.psql("SELECT count(*) > 0 FROM circ_event"), "t")
        self.assertEqual(checkouts_by_branch(), before)
        lend(1, card=card)
        self.assertEqual(checkouts_by_branch()["DWN"], before["DWN"] + 1)


class HungStandby(unittest.TestCase):
    def test_a_standby_that_stops_answering(self):
        """A standby that stops answering mid-statement (and then accepts connections
        without answering them): a statistics request is answered stats_unavailable
        within statement_timeout + the margin, live subscribers are told the figures are
        unavailable (on the wire and by the client), and the desks go on."""
        proxy = FreezableProxy(os.path.join(env.sockdir, ".s.PGSQL.%d" % env.pgport))
        d = env.daemon(stats_conninfo=proxy.conninfo, db_statement_timeout_ms=2000,
                       stats_rollup_interval_s=0, jobs_interval_s=0, notice_send_interval_s=0)
        w = None
        p = None
        lines = []
        try:
            r = carrel("stats", "checkouts", daemon=d)
            self.assertEqual(r.code, 0, r)  # through the relay
            w = d.logged_in_wire(user="cora", password=PASSWORD)
            self.assertEqual(w.call(REQ_STATS_LIVE, harness.pb_message((2, 1))).status, "ok")
            self.assertEqual(w.recv().id, 0)
            p = subprocess.Popen([harness.CARREL, "-c", env.profile(d, "desk-dwn", "cora",
                                                                     PASSWORD),
                                  "stats", "live", "--interval", "1", "--updates", "1000"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            reader = threading.Thread(target=lambda: lines.extend(p.stdout), daemon=True)
            reader.start()
            harness.wait_until(lambda: any("Circ this hour" in x for x in lines),
                               what="the live view's first figures")
            proxy.freeze()
            started = time.monotonic()
            r = carrel("stats", "checkouts", daemon=d)
            self.assertEqual((r.code, (r.json or {}).get("reason")), (4, "stats_unavailable"), r)
            self.assertLess(time.monotonic() - started, 30)  # 2 s + 5 s margin, not never
            deadline = time.monotonic() + 60
            while True:  # the wire subscriber: a push that says why there are no figures
                push = w.recv()
                self.assertEqual(push.id, 0, push)
                body = push.body(RESP_STATS_LIVE)
                if 5 in body:
                    self.assertIn(b"standby", body[5][0])
                    self.assertNotIn(3, body)  # no figures
                    break
                self.assertLess(time.monotonic(), deadline)
            harness.wait_until(lambda: any(x.startswith("unavailable: ") for x in lines),
                               what="the client to show the live figures unavailable")
            lend(1, daemon=d)  # the desks are not affected
            self.assertIn("no answer from the server within", d.log_text())
        finally:
            if w:
                w.close()
            if p:
                p.kill()
                p.wait()
                p.stdout.close()
                p.stderr.close()
            proxy.close()
            d.stop()


class InFlight(unittest.TestCase):
    def test_two_statistics_in_flight_per_connection(self):
        """A third statistics request on a connection is refused at once; a waiting one is
        answered overloaded after db_queue_timeout_ms instead of waiting for ever."""
        d = env.daemon(stats_pool_size=1, db_pool_size=4, db_lock_timeout_ms=120000,
                       db_statement_timeout_ms=120000, db_queue_timeout_ms=2000,
                       stats_rollup_interval_s=0, jobs_interval_s=0, notice_send_interval_s=0)
        w = d.logged_in_wire(user="cora", password=PASSWORD)
        try:
            with harness.TableLock(env, "stat_measure") as lock:
                ids = [w.send(REQ_STATS_MEASURES, b"") for _ in range(3)]
                r = w.recv()
                self.assertEqual((r.id, r.status, r.reason),
                                 (ids[2], "too_many_requests", "inflight_limit"), r)
                lock.wait_for_waiters(1)
                r = w.recv()  # the second waited for its turn behind the first
                self.assertEqual((r.id, r.status, r.reason),
                                 (ids[1], "unavailable", "overloaded"), r)
                self.assertIn("waited over 2000 ms", r.message)
            r = w.recv()
            self.assertEqual((r.id, r.status), (ids[0], "ok"), r)
            # Answered, they no longer count: the next two go.
            ids = [w.send(REQ_STATS_MEASURES, b"") for _ in range(2)]
            got = sorted((x.id, x.status) for x in (w.recv(), w.recv()))
            self.assertEqual(got, sorted((i, "ok") for i in ids))
        finally:
            w.close()
            d.stop()


class NoPatronIdentity(unittest.TestCase):
    def test_no_output_names_a_patron(self):
        first, last = "Zebulon", "Quixotic"
        card = env.new_patron(first=first, last=last)
        lend(2, card=card)
        secrets = [card, first, last]
        outputs = []
        measures = carrel("stats", "measures")
        self.assertEqual(measures.code, 0, measures)
        outputs.append(measures.stdout)
        for m in measures.json["measures"]:
            dims = ",".join(m["dims"][:2])
            args = ["stats", m["name"]] + (["--by", dims] if dims else [])
            for user in ("cora", "manny"):
                outputs.append(carrel(*args, user=user).stdout)
                outputs.append(carrel(*(args + ["--csv"]), user=user, json_out=False).stdout)
        year = today()[:4]
        for fmt in ([], ["--csv"]):
            outputs.append(carrel("report", "pls", "--year", year, *fmt,
                                  json_out=not fmt).stdout)
            outputs.append(carrel("stats", "buy-more", "--threshold", "0.01", *fmt,
                                  json_out=not fmt).stdout)
        p = live("--updates", "1")
        out, _ = p.communicate(timeout=120)
        outputs.append(out)
        self.assertTrue(len(outputs) > 10)
        for text in outputs:
            for s in secrets:
                self.assertNotIn(s, text)


if __name__ == "__main__":
    unittest.main()
