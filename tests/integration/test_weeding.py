#!/usr/bin/env python3
"""Weeding through the daemon and the real client: a branch's weeding list in shelf
order (every page; a table, CSV for a handheld, JSON), each recommendation (withdraw,
review for the last copy, transfer to a branch where the title is in demand, replace a
worn copy) and each guard (holds waiting, on loan); decisions of every kind and what
they do to the copy (status, owner, transit, audit), scanned from standard input, keyed
so that a retry applies once; CREW rules: a branch's override changing its list and
not another branch's, the system table the coordinator's; the settings; who may do
what; and malformed requests over the wire, each refused with its reason while the
daemon serves on.

Tests share one database: each makes its own copies on a shelving location of its own
and a CREW collection that holds only that location (ord 0: before the shipped rules),
so that its list is its own."""

import csv
import io
import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = "staff-password-123"
REQ_PING = 13
REQ_CREW_LIST, REQ_CREW_SAVE, REQ_SETTINGS_GET, REQ_SETTINGS_SAVE = 320, 321, 322, 323
REQ_LIST, REQ_SUMMARY, REQ_DECIDE, REQ_DECISIONS = 324, 325, 326, 327

env = None
main = None

# (user, role, branch)
STAFF = [("clara", "clerk", "DWN"), ("libby", "librarian", "DWN"),
         ("mona", "branch_manager", "DWN"), ("paul", "librarian", "PRK"),
         ("pam", "branch_manager", "PRK"), ("cora", "coordinator", "DWN")]
WS = {"DWN": "desk-dwn", "PRK": "desk-prk"}
THIS_YEAR = None


def carrel(user, *args, json_out=True, input=None):
    branch = dict((u, b) for u, _, b in STAFF).get(user, "DWN")
    pw = harness.ADMIN_PASSWORD if user == "admin" else PASSWORD
    return env.carrel(env.profile(main, WS[branch], user, pw), *args, json_out=json_out,
                      input=input)


def ok(r):
    assert r.code == 0, r
    return r.json


def refused(r, reason, code=4):
    assert r.code == code and (r.json or {}).get("reason") == reason, (reason, r)
    return r.json


def q(sql):
    return env.psql(sql)


def setUpModule():
    global env, main, THIS_YEAR
    env = harness.Env()
    try:
        env.start()
        main = env.daemon(jobs_interval_s=0)
        admin = env.profile(main)
        env.add_workstations(admin, {"desk-prk": "PRK"})
        for user, role, branch in STAFF:
            env.add_staff(admin, user, role, branch, PASSWORD)
        THIS_YEAR = int(q("SELECT extract(year FROM now())::int"))
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


# ---------------------------------------------------------------- fixtures


def shelf(x=5, y=3, branch="DWN", user="cora", **more):
    """A collection of this test's own: a branch rule (ord 0) holding the copies shelved at
    a location of its own. Returns (collection, location)."""
    n = env.next_number()
    coll, loc = "t%d" % n, "wtest%d" % n
    args = ["crew", "save", coll, "--branch", branch, "--name", "Test shelf %d" % n,
            "--location", loc, "--x", str(x) if x else "n/a", "--y", str(y) if y else "n/a",
            "--ord", "0"]
    for k, v in more.items():
        args += ["--" + k, str(v)]
    ok(carrel(user, *args))
    return coll, loc


def new_title(title=None, year=None, author="Author, Test"):
    title = title or "Weeding title %d" % env.next_number()
    out = q("INSERT INTO bib (marc, title, author, pub_year) VALUES ('\\x00', %s, %s, %s)"
            " RETURNING id" % (harness.sql_literal(title), harness.sql_literal(author),
                               harness.sql_literal(str(year) if year else "")))
    return int(out.splitlines()[0])


def copy(bib, loc, call="", branch="DWN", used_days_ago=None, uses=0, status="available",
         item_type="book"):
    """A copy of bib owned by and at branch, last used so many days ago (None: never,
    added today); its barcode."""
    barcode = harness.mod10("3123490%06d" % env.next_number())
    used = "now() - interval '%d days'" % used_days_ago if used_days_ago is not None else "NULL"
    q("INSERT INTO item (barcode, bib_id, owning_branch_id, current_branch_id, item_type,"
      " status, location, call_number, circ_count, last_used_at, last_circulated)"
      " SELECT %s, %d, b.id, b.id, %s, %s, %s, %s, %d, %s, %s FROM branch b WHERE b.code = %s"
      % (harness.sql_literal(barcode), bib, harness.sql_literal(item_type),
         harness.sql_literal(status), harness.sql_literal(loc), harness.sql_literal(call), uses,
         used, used, harness.sql_literal(branch)))
    return barcode


def old_pair(loc, call="600 OLD", year=1990):
    """An old copy at DWN in loc whose title has another copy (on loan elsewhere in DWN):
    a plain withdraw candidate. Its barcode."""
    bib = new_title(year=year)
    copy(bib, "stacks", "600 OLD", status="checked_out", used_days_ago=1)
    return copy(bib, loc, call, used_days_ago=4000)


def listing(user, coll, *more, branch=None):
    args = ["weeding", "--collection", coll] + (["--branch", branch] if branch else [])
    return ok(carrel(user, *args, *more))


def barcodes(doc):
    return [c["barcode"] for c in doc["candidates"]]


def item(barcode):
    row = q("SELECT i.status, o.code, c.code FROM item i JOIN branch o ON o.id ="
            " i.owning_branch_id JOIN branch c ON c.id = i.current_branch_id"
            " WHERE i.barcode = '%s'" % barcode)
    return tuple(row.split("|"))


def decide(user, decision, *args, input=None):
    """`weeding decide` with --json: (exit code, the array of outcomes)."""
    r = carrel(user, "weeding", "decide", decision, *args, input=input)
    return r.code, r.json


def pb(*fields):
    return harness.pb_message(*fields)


# ---------------------------------------------------------------- the list


class TheList(unittest.TestCase):
    def test_the_list_is_in_shelf_order_with_what_staff_need(self):
        coll, loc = shelf()
        calls = ["641.59 SMI", "92 JON", "005.133 KER", "641.5 ABC", "641.5 ABA"]
        made = {call: old_pair(loc, call) for call in calls}
        fresh = copy(new_title(year=THIS_YEAR), loc, "500 NEW", used_days_ago=3)
        doc = listing("clara", coll)
        got = barcodes(doc)
        want = ["005.133 KER", "92 JON", "641.5 ABA", "641.5 ABC", "641.59 SMI"]
        self.assertEqual(got, [made[c] for c in want])
        self.assertNotIn(fresh, got)
        c = doc["candidates"][0]
        self.assertEqual((c["call_number"], c["year"], c["collection"], c["recommendation"]),
                         ("005.133 KER", "1990", coll, "withdraw"))
        self.assertIn("age", c["reasons"])
        self.assertTrue(c["reason"])
        self.assertTrue(c["last_used"] < "%d" % THIS_YEAR, c)
        self.assertEqual((c["status"], c["location"], c["item_type"]),
                         ("available", loc, "book"))
        # The shipped rules are a starting point nobody has reviewed yet: the list says so.
        self.assertTrue(doc["rules_unreviewed"])
        # The table for people: every copy, and the note.
        out = carrel("clara", "weeding", "--collection", coll, json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn("005.133 KER", out.stdout)
        self.assertIn("5 copies to review", out.stdout)
        self.assertIn("reviewed", out.stdout)
        self.assertLess(out.stdout.index("92 JON"), out.stdout.index("641.59 SMI"))

    def test_csv_for_a_handheld(self):
        coll, loc = shelf()
        title = 'A title, with "quotes"'
        b1 = copy(new_title(title, 1985), loc, "310 CSV", used_days_ago=5000)
        b2 = old_pair(loc, "100 CSV")
        path = os.path.join(env.dir, "weeding-%s.csv" % coll)
        r = carrel("libby", "weeding", "--collection", coll, "--csv", path, json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertFalse(os.path.exists(path + ".partial"))
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        self.assertEqual(rows[0], ["barcode", "call_number", "collection", "title", "author",
                                   "year", "last_used", "uses", "recommendation", "reason"])
        self.assertEqual([row[0] for row in rows[1:]], [b2, b1])
        self.assertEqual(rows[2][3], title)
        self.assertEqual(rows[2][5], "1985")
        # With --json, the file is still CSV and what was written is one document.
        done = ok(carrel("libby", "weeding", "--collection", coll, "--csv", path + ".2"))
        self.assertEqual((done["copies"], done["file"]), (2, path + ".2"))
        with open(path + ".2", newline="") as f:
            self.assertEqual(list(csv.reader(f)), rows)
        # To standard output with -.
        r = carrel("libby", "weeding", "--collection", coll, "--csv", "-", json_out=False)
        self.assertEqual(r.code, 0, r)
        again = list(csv.reader(io.StringIO(r.stdout)))
        self.assertEqual(again, rows)

    def test_pages_follow_the_shelf_key(self):
        coll, loc = shelf()
        made = [old_pair(loc, "%03d PAGE" % n) for n in range(100, 105)]
        w = main.logged_in_wire(user="clara", password=PASSWORD)
        seen, after = [], None
        for _ in range(5):
            r = w.call(REQ_LIST, pb((2, coll), (3, after), (4, 2)))
            self.assertEqual(r.status, "ok", r)
            body = r.body(REQ_LIST)
            cands = [harness.pb_decode(c) for c in body.get(1, [])]
            self.assertLessEqual(len(cands), 2)
            seen += [c[2][0].decode() for c in cands]
            more = body.get(2, [0])[0]
            if not more:
                break
            after = cands[-1][18][0].decode()
        w.close()
        self.assertEqual(seen, made)
        # The client fetches every page itself.
        self.assertEqual(barcodes(listing("clara", coll)), made)

    def test_the_client_reads_every_page(self):
        """More copies than the client's page (1000): every one, once, in shelf order."""
        coll, loc = shelf()
        bib = new_title(year=1975)
        n = 1203
        q("INSERT INTO item (barcode, bib_id, owning_branch_id, current_branch_id, item_type,"
          " location, call_number, last_used_at)"
          " SELECT 'WP%d-' || lpad(g::text, 5, '0'), %d, b.id, b.id, 'book', %s,"
          " (100 + g %% 700)::text || '.' || (g %% 10)::text || ' P', now() - interval '9 years'"
          " FROM branch b, generate_series(1, %d) g WHERE b.code = 'DWN'"
          % (bib, bib, harness.sql_literal(loc), n))
        r = carrel("clara", "weeding", "--collection", coll, "--csv", "-", json_out=False)
        self.assertEqual(r.code, 0, r)
        rows = list(csv.reader(io.StringIO(r.stdout)))[1:]
        self.assertEqual(len(rows), n)
        self.assertEqual(len({row[0] for row in rows}), n)
        keys = [(float(row[1].split()[0]), row[0]) for row in rows]
        self.assertEqual(keys, sorted(keys))
        doc = listing("clara", coll)
        self.assertEqual(barcodes(doc), [row[0] for row in rows])

    def test_recommendations_and_guards(self):
        coll, loc = shelf()
        # The last copy in the system: listed for review, saying so.
        last = copy(new_title(year=1980), loc, "100 LAST", used_days_ago=4000)
        # Used last week at PRK: transfer there rather than discard.
        bib = new_title(year=1980)
        copy(bib, "stacks", "200 DEM", branch="PRK", used_days_ago=7, uses=30)
        demand = copy(bib, loc, "200 DEM", used_days_ago=4000)
        # Worn out: replace (another copy of the title, so not the last one).
        bib = new_title(year=THIS_YEAR)
        worn = copy(bib, loc, "300 WORN", used_days_ago=2, uses=90000)
        copy(bib, "stacks", "300 WORN", status="checked_out", used_days_ago=1)
        # Holds waiting: never listed.
        bib = new_title(year=1980)
        held = copy(bib, loc, "400 HELD", used_days_ago=4000)
        copy(bib, "stacks", "400 HELD", used_days_ago=4000)
        card = env.new_patron()
        ok(carrel("clara", "hold", "place", card, "--bib", str(bib), "--pickup", "PRK"))
        # Dead but within X and Y: only with --dead.
        dead = copy(new_title(year=THIS_YEAR), loc, "500 DEAD", used_days_ago=400)
        doc = listing("clara", coll)
        by = {c["barcode"]: c for c in doc["candidates"]}
        self.assertEqual(set(by), {last, demand, worn})
        self.assertEqual(by[last]["recommendation"], "review")
        self.assertTrue(by[last]["last_copy"])
        self.assertIn("last_copy", by[last]["reasons"])
        self.assertEqual((by[demand]["recommendation"], by[demand]["transfer_to"]),
                         ("transfer", "PRK"))
        self.assertIn("demand_elsewhere", by[demand]["reasons"])
        self.assertEqual(by[worn]["recommendation"], "replace")
        self.assertIn("worn", by[worn]["reasons"])
        self.assertGreaterEqual(by[worn]["uses"], 90000)
        out = carrel("clara", "weeding", "--collection", coll, json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn("transfer to PRK", out.stdout)
        with_dead = barcodes(listing("clara", coll, "--dead"))
        self.assertIn(dead, with_dead)
        self.assertNotIn(held, with_dead)

    def test_another_branchs_list_and_the_summary(self):
        coll, loc = shelf(branch="PRK", user="pam")
        bib = new_title(year=1970)
        there = copy(bib, loc, "900 PRK", branch="PRK", used_days_ago=4000)
        copy(bib, "stacks", "900 PRK", branch="PRK", status="checked_out", used_days_ago=1)
        # Anyone reads any branch's list; the rule is PRK's, so DWN has no such collection.
        self.assertEqual(barcodes(listing("clara", coll, branch="PRK")), [there])
        refused(carrel("clara", "weeding", "--collection", coll), "crew_rule")
        s = ok(carrel("paul", "weeding", "summary"))
        self.assertGreater(s["dead_days"], 0)
        mine = [h for h in s["collections"] if h["collection"] == coll]
        self.assertEqual(len(mine), 1, s)
        self.assertEqual((mine[0]["branch_code"], mine[0]["copies"], mine[0]["candidates"]),
                         ("PRK", 1, 1))
        # Every branch at once: coordinators only.
        refused(carrel("paul", "weeding", "summary", "--all"), "role")
        every = ok(carrel("cora", "weeding", "summary", "--all"))
        self.assertIn("PRK", {h["branch_code"] for h in every["collections"]})
        out = carrel("paul", "weeding", "summary", json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn(coll, out.stdout)


# ---------------------------------------------------------------- decisions


class Decisions(unittest.TestCase):
    def test_each_decision_and_its_effect_on_the_copy(self):
        coll, loc = shelf()
        w, r, m, k = (old_pair(loc, "%d DEC" % n) for n in (100, 200, 300, 400))
        t = old_pair(loc, "500 DEC")
        before = int(q("SELECT count(*) FROM audit_event WHERE entity = 'item'"))
        code, out = decide("libby", "withdraw", w, "--note", "Water damage")
        self.assertEqual(code, 0, out)
        self.assertEqual((out[0]["ok"], out[0]["decision"], out[0]["status"]),
                         (True, "withdraw", "withdrawn"))
        self.assertTrue(out[0]["message"])
        self.assertEqual(item(w), ("withdrawn", "DWN", "DWN"))
        code, out = decide("libby", "replace", r)
        self.assertEqual((code, item(r)[0]), (0, "withdrawn"), out)
        code, out = decide("libby", "mend", m)
        self.assertEqual((code, item(m)[0]), (0, "in_processing"), out)
        code, out = decide("libby", "keep", k)
        self.assertEqual((code, item(k)[0]), (0, "available"), out)
        code, out = decide("libby", "transfer", "--to", "PRK", t)
        self.assertEqual(code, 0, out)
        self.assertEqual(out[0]["transfer_to"], "PRK")
        self.assertEqual(item(t), ("in_transit", "PRK", "DWN"))
        self.assertEqual(q("SELECT t.reason || ' ' || b.code FROM transit t JOIN item i ON"
                           " i.id = t.item_id JOIN branch b ON b.id = t.to_branch_id WHERE"
                           " i.barcode = '%s' AND t.received_at IS NULL AND t.cancelled_at"
                           " IS NULL" % t), "transfer PRK")
        # Every change is audited; decided copies are off the list (keep: for keep_months).
        after = int(q("SELECT count(*) FROM audit_event WHERE entity = 'item'"))
        self.assertGreaterEqual(after - before, 4)
        self.assertEqual(barcodes(listing("libby", coll)), [])
        # The decisions recorded, newest first, with who and the note.
        d = ok(carrel("clara", "weeding", "decisions"))["decisions"]
        mine = [x for x in d if x["barcode"] in (w, r, m, k, t)]
        self.assertEqual([x["barcode"] for x in mine], [t, k, m, r, w])
        self.assertEqual((mine[-1]["username"], mine[-1]["note"], mine[-1]["decision"]),
                         ("libby", "Water damage", "withdraw"))
        self.assertEqual(mine[0]["transfer_to"], "PRK")
        only = ok(carrel("clara", "weeding", "decisions", "--decision", "mend"))["decisions"]
        self.assertEqual({x["decision"] for x in only}, {"mend"})
        out = carrel("clara", "weeding", "decisions", json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn(w, out.stdout)

    def test_barcodes_scanned_on_standard_input(self):
        coll, loc = shelf()
        a, b = old_pair(loc, "100 SCAN"), old_pair(loc, "200 SCAN")
        code, out = decide("libby", "mend", input="%s\r\n\n  %s  \n" % (a, b))
        self.assertEqual(code, 0, out)
        self.assertEqual([x["barcode"] for x in out], [a, b])
        self.assertEqual((item(a)[0], item(b)[0]), ("in_processing", "in_processing"))
        # Text: one line per copy as it comes; a refused copy does not stop the rest.
        c = old_pair(loc, "300 SCAN")
        r = carrel("libby", "weeding", "decide", "keep", json_out=False,
                   input="NO-SUCH-COPY\n%s\n" % c)
        self.assertNotEqual(r.code, 0, r)
        self.assertIn(c, r.stdout)
        self.assertEqual(int(q("SELECT count(*) FROM weeding_decision d JOIN item i ON"
                               " i.id = d.item_id WHERE i.barcode = '%s'" % c)), 1)

    def test_a_retry_with_the_same_key_applies_once(self):
        coll, loc = shelf()
        b = old_pair(loc, "100 KEY")
        key = str(uuid.uuid4())
        for _ in range(2):
            code, out = decide("libby", "mend", b, "--request-key", key)
            self.assertEqual(code, 0, out)
            self.assertEqual(out[0]["status"], "in_processing")
        self.assertEqual(q("SELECT count(*) FROM weeding_decision d JOIN item i ON"
                           " i.id = d.item_id WHERE i.barcode = '%s'" % b), "1")
        # Over the wire: the same key answers the same, and changes nothing more.
        c = old_pair(loc, "200 KEY")
        w = main.logged_in_wire(user="libby", password=PASSWORD)
        key = str(uuid.uuid4())
        first = w.call(REQ_DECIDE, pb((1, c), (2, "keep")), key=key)
        again = w.call(REQ_DECIDE, pb((1, c), (2, "keep")), key=key)
        self.assertEqual((first.status, again.status), ("ok", "ok"), (first, again))
        self.assertEqual(first.body(REQ_DECIDE), again.body(REQ_DECIDE))
        w.close()
        self.assertEqual(q("SELECT count(*) FROM weeding_decision d JOIN item i ON"
                           " i.id = d.item_id WHERE i.barcode = '%s'" % c), "1")
        self.assertEqual(item(c)[0], "available")

    def test_guards(self):
        coll, loc = shelf()
        # The last copy: refused unless confirmed.
        last = copy(new_title(year=1980), loc, "100 LAST", used_days_ago=4000)
        code, out = decide("libby", "withdraw", last)
        self.assertEqual((code, out[0]["ok"], out[0]["reason"]), (4, False, "last_copy"), out)
        self.assertEqual(item(last)[0], "available")
        code, out = decide("libby", "withdraw", "--last-copy-ok", last)
        self.assertEqual(code, 0, out)
        self.assertTrue(out[0]["last_copy"])
        self.assertEqual(item(last)[0], "withdrawn")
        # Holds waiting: refused.
        bib = new_title(year=1980)
        held = copy(bib, loc, "200 HELD", used_days_ago=4000)
        copy(bib, "stacks", "200 HELD", used_days_ago=4000)
        ok(carrel("clara", "hold", "place", env.new_patron(), "--bib", str(bib), "--pickup",
                  "PRK"))
        code, out = decide("libby", "replace", held)
        self.assertEqual(out[0]["reason"], "holds_waiting", out)
        # On loan: refused (circulating); so is an unknown copy.
        card = env.new_patron()
        loaned = old_pair(loc, "300 LOAN")
        ok(carrel("clara", "checkout", card, loaned))
        code, out = decide("libby", "withdraw", loaned)
        self.assertEqual(out[0]["reason"], "circulating", out)
        code, out = decide("libby", "withdraw", "NOSUCH1")
        self.assertEqual(out[0]["reason"], "item_not_found", out)
        # A transfer to the copy's own branch is no transfer.
        t = old_pair(loc, "400 SELF")
        code, out = decide("libby", "transfer", "--to", "DWN", t)
        self.assertEqual(out[0]["reason"], "field:transfer_to", out)
        self.assertEqual(item(t)[0], "available")

    def test_who_may_decide(self):
        coll, loc = shelf()
        b = old_pair(loc, "100 WHO")
        code, out = decide("clara", "withdraw", b)
        self.assertEqual((code, out[0]["reason"]), (4, "role"), out)
        # A librarian of another branch: not their copy.
        code, out = decide("paul", "withdraw", b)
        self.assertEqual(out[0]["reason"], "branch", out)
        self.assertEqual(item(b)[0], "available")
        # The coordinator decides at every branch.
        code, out = decide("cora", "keep", b)
        self.assertEqual(code, 0, out)


# ---------------------------------------------------------------- CREW rules and settings


class Rules(unittest.TestCase):
    def test_a_branch_override_changes_that_branchs_list_only(self):
        n = env.next_number()
        coll, loc = "tsys%d" % n, "wsys%d" % n
        # The coordinator adds a rule to the system table; branch managers may not.
        refused(carrel("mona", "crew", "save", coll, "--system", "--name", "X", "--location",
                       loc, "--x", "10"), "role")
        saved = ok(carrel("cora", "crew", "save", coll, "--system", "--name", "System shelf",
                          "--location", loc, "--x", "10", "--y", "n/a", "--ord", "1",
                          "--mustie", "Misleading, Ugly"))
        self.assertFalse(saved.get("branch_code"), saved)
        self.assertTrue(saved["reviewed"])
        mid = new_title(year=THIS_YEAR - 15)
        dwn = copy(mid, loc, "700 MID", used_days_ago=10)
        copy(mid, "stacks", "700 MID", status="checked_out", used_days_ago=1)
        prk = copy(mid, loc, "700 MID", branch="PRK", used_days_ago=10)
        self.assertEqual(barcodes(listing("clara", coll)), [dwn])
        self.assertEqual(barcodes(listing("clara", coll, branch="PRK")), [prk])
        # DWN's manager allows 20 years at DWN: the rest of the rule is kept.
        r = ok(carrel("mona", "crew", "save", coll, "--x", "20"))
        self.assertEqual((r["branch_code"], r["max_age_years"], r["location"], r["name"]),
                         ("DWN", 20, loc, "System shelf"))
        self.assertNotIn("max_idle_years", r)
        self.assertEqual(barcodes(listing("clara", coll)), [])
        self.assertEqual(barcodes(listing("clara", coll, branch="PRK")), [prk])
        rules = ok(carrel("clara", "crew", "list"))
        mine = [x for x in rules["rules"] if x["collection"] == coll]
        self.assertEqual([(x["source"], x["max_age_years"]) for x in mine], [("branch", 20)])
        system = ok(carrel("clara", "crew", "list", "--system"))
        mine = [x for x in system["rules"] if x["collection"] == coll]
        self.assertEqual([x.get("max_age_years") for x in mine], [10])
        # PRK's manager may not change DWN's rules.
        refused(carrel("pam", "crew", "save", coll, "--branch", "DWN", "--x", "30"), "branch")
        # A librarian changes no rule at all.
        refused(carrel("libby", "crew", "save", coll, "--x", "30"), "role")
        # Removing the override: the system rule applies again.
        ok(carrel("mona", "crew", "remove", coll))
        self.assertEqual(barcodes(listing("clara", coll)), [dwn])
        out = carrel("clara", "crew", "list", json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn(coll, out.stdout)

    def test_dewey_none_clears_the_range(self):
        n = env.next_number()
        coll = "tdew%d" % n
        r = ok(carrel("cora", "crew", "save", coll, "--branch", "DWN", "--name", "Dewey shelf",
                      "--dewey", "700-799.999", "--x", "10"))
        self.assertEqual((r["dewey_from"], r["dewey_to"]), ("700", "799.999"))
        r = ok(carrel("cora", "crew", "save", coll, "--branch", "DWN", "--dewey", "none"))
        self.assertEqual((r.get("dewey_from", ""), r.get("dewey_to", "")), ("", ""), r)
        self.assertEqual((r["name"], r["max_age_years"]), ("Dewey shelf", 10))
        rules = ok(carrel("cora", "crew", "list", "--branch", "DWN"))["rules"]
        mine = [x for x in rules if x["collection"] == coll]
        self.assertEqual([x.get("dewey_from", "") for x in mine], [""])
        ok(carrel("cora", "crew", "remove", coll, "--branch", "DWN"))

    def test_an_unknown_collection(self):
        refused(carrel("clara", "weeding", "--collection", "no_such_collection"), "crew_rule")

    def test_settings(self):
        s = ok(carrel("clara", "weeding", "settings"))
        self.assertEqual((s["dead_days"], s["keep_months"]), (180, 12))
        types = {w["item_type"]: w["max_uses"] for w in s["wear"]}
        self.assertIn("book", types)
        refused(carrel("mona", "weeding", "settings", "--dead-days", "90"), "role")
        saved = ok(carrel("cora", "weeding", "settings", "--dead-days", "200", "--wear",
                          "dvd=150"))
        self.assertEqual((saved["dead_days"], saved["keep_months"]), (200, 12))
        self.assertEqual({w["item_type"]: w["max_uses"] for w in saved["wear"]}["dvd"], 150)
        self.assertEqual(ok(carrel("clara", "weeding", "summary"))["dead_days"], 200)
        ok(carrel("cora", "weeding", "settings", "--dead-days", "180", "--wear",
                  "dvd=%d" % types.get("dvd", 0)))
        self.assertEqual(q("SELECT count(*) > 0 FROM admin_audit"), "t")
        out = carrel("clara", "weeding", "settings", json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn("180 days", out.stdout)


# ---------------------------------------------------------------- malformed requests


class Malformed(unittest.TestCase):
    def test_hostile_requests_are_refused_and_the_daemon_serves_on(self):
        coll, loc = shelf()
        b = old_pair(loc, "100 BAD")
        before = q("SELECT count(*) FROM weeding_decision")
        w = main.logged_in_wire(user="libby", password=PASSWORD)
        cases = [
            (REQ_LIST, pb((4, 0)), "bad_request", "field:limit"),
            (REQ_LIST, pb((4, 5001)), "bad_request", "field:limit"),
            (REQ_LIST, pb((3, "k" * 5000)), "bad_request", "field:after"),
            (REQ_LIST, pb((2, "x\x1b[2J")), "bad_request", "field:collection"),
            (REQ_DECISIONS, pb((5, 1001)), "bad_request", "field:limit"),
            (REQ_DECISIONS, pb((2, "burn")), "bad_request", "field:decision"),
            (REQ_DECIDE, pb((2, "withdraw")), "bad_request", "field:barcode"),
            (REQ_DECIDE, pb((1, b), (2, "burn")), "bad_request", "field:decision"),
            (REQ_DECIDE, pb((1, b)), "bad_request", "field:decision"),
            (REQ_DECIDE, pb((1, b), (2, "transfer")), "bad_request", "field:transfer_to"),
            (REQ_DECIDE, pb((1, b), (2, "keep"), (3, "PRK")), "bad_request",
             "field:transfer_to"),
            (REQ_DECIDE, pb((1, b), (2, "keep"), (4, "n" * 3000)), "bad_request", "field:note"),
            (REQ_DECIDE, pb((1, "B" * 100), (2, "keep")), "bad_request", "field:barcode"),
            (REQ_LIST, pb((3, "100 PAGE%zz")), "bad_request", "field:after"),
            (REQ_LIST, pb((3, "100 PAGE%00")), "bad_request", "field:after"),
            (REQ_CREW_SAVE, pb((1, pb((3, "x'; DROP TABLE crew_rule; --")))), "forbidden",
             "role"),
            (REQ_SETTINGS_SAVE, pb((1, pb((1, 10)))), "forbidden", "role"),
            (REQ_SUMMARY, pb((2, 1)), "forbidden", "role"),
        ]
        for body_field, body, status, reason in cases:
            keyed = body_field == REQ_DECIDE
            r = w.call(body_field, body, key=str(uuid.uuid4()) if keyed else None)
            self.assertIsNotNone(r, "the daemon closed the connection on %r" % (body[:40],))
            self.assertEqual((r.status, r.reason), (status, reason), (body_field, body[:60], r))
            self.assertTrue(r.message, r)
        # A decision needs a request key.
        r = w.call(REQ_DECIDE, pb((1, b), (2, "keep")))
        self.assertEqual((r.status, r.reason), ("bad_request", "request_key"), r)
        self.assertEqual(w.call(REQ_PING).status, "ok")
        w.close()
        self.assertEqual(q("SELECT count(*) FROM weeding_decision"), before)
        self.assertEqual(item(b)[0], "available")
        # The coordinator's malformed rules and settings, refused by field.
        w = main.logged_in_wire(user="cora", password=PASSWORD)
        for body_field, body, reason in [
                (REQ_CREW_SAVE, pb((1, pb((4, "No code")))), "field:collection"),
                (REQ_CREW_SAVE, pb(), "field:collection"),
                (REQ_CREW_SAVE, pb((1, pb((3, "x'; DROP TABLE crew_rule; --"), (4, "X")))),
                 "field:collection"),
                (REQ_CREW_SAVE, pb((1, pb((3, "tbad"), (4, "X"), (10, 0)))),
                 "field:max_age_years"),
                (REQ_CREW_SAVE, pb((1, pb((3, "tbad"), (4, "X"), (8, "elderly")))),
                 "field:audience"),
                (REQ_SETTINGS_SAVE, pb((1, pb((3, pb((1, "no_such_type"), (2, 5)))))),
                 "field:wear")]:
            r = w.call(body_field, body)
            self.assertEqual((r.status, r.reason), ("bad_request", reason), (body[:60], r))
        self.assertEqual(w.call(REQ_PING).status, "ok")
        w.close()
        # The client refuses what it can tell is wrong before sending.
        for args in (["weeding", "decide", "burn", b], ["weeding", "decide", "transfer", b],
                     ["weeding", "decide", "keep", "--to", "PRK", b],
                     ["crew", "save", "x", "--x", "0"], ["weeding", "--bogus"],
                     ["weeding", "summary", "--all", "--branch", "DWN"]):
            r = carrel("cora", *args, json_out=False)
            self.assertEqual(r.code, 2, (args, r))


if __name__ == "__main__":
    unittest.main(verbosity=2)
