#!/usr/bin/env python3
"""Public service through the daemon and the real client over TLS: tallies typed in
`carrel desk` (:q with a kind prefix, a number, the last tally repeated, a channel, a
backdated @HH:MM, --json lines) and from a script (`carrel inquiry add`, a keyed retry
recorded once); a gate counter's CSV export imported (bad lines reported by line number
and nothing applied, then --skip-bad, the same file again unchanged, a corrected one
replacing); door counts entered as readings; computer sessions; floor sweeps (a zero
recorded, an incomplete sweep refused naming the missing area); service levels for one
branch and for the coordinator; who may do what; and hostile requests over the wire,
each refused with its reason on the same connection while the daemon goes on serving."""

import json
import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = "staff-password-123"
# The library's time zone (settings 'timezone'): the client turns @HH:MM and --at HH:MM
# into today's date on its own clock, so it runs in the library's zone here.
TZ = {"TZ": "America/New_York"}
REQ_PING = 13
REQ_CODE_LIST, REQ_CODE_SAVE, REQ_INQUIRY_ADD, REQ_INQUIRY_REMOVE = 260, 261, 262, 263
REQ_INQUIRY_LIST, REQ_GATE_ADD, REQ_IMPORT, REQ_COMPUTERS = 264, 265, 266, 267
REQ_SWEEP_SAVE, REQ_SWEEP_LIST, REQ_LEVELS = 268, 269, 270

env = None
main = None

STAFF = [("clara", "clerk", "DWN"), ("libby", "librarian", "DWN"),
         ("mara", "branch_manager", "DWN"), ("pia", "clerk", "PRK"),
         ("cora", "coordinator", "DWN")]
WS = {"DWN": "desk-dwn", "PRK": "desk-prk"}


def profile(user):
    branch = dict((u, b) for u, _, b in STAFF).get(user, "DWN")
    pw = harness.ADMIN_PASSWORD if user == "admin" else PASSWORD
    return env.profile(main, WS[branch], user, pw)


def carrel(user, *args, json_out=True, input=None):
    return env.carrel(profile(user), *args, json_out=json_out, input=input, env=TZ)


def ok(r):
    assert r.code == 0, r
    return r.json


def refused(r, reason, code=4):
    assert r.code == code and (r.json or {}).get("reason") == reason, (reason, r)
    return r.json


def desk(user, lines, *args, json_out=False):
    """A whole desk session from a pipe (as a scanner or a script types): stdout lines."""
    text = "".join(line + "\n" for line in lines)
    r = env.carrel(profile(user), "desk", *args, json_out=json_out, input=text, env=TZ)
    assert r.code == 0, r
    return r.stdout.splitlines()


def local_hhmm(minutes_from_now):
    """HH:MM of the library's clock, and whether it is still today."""
    row = env.psql("SELECT to_char(t, 'HH24:MI') || '|' ||"
                   " ((t AT TIME ZONE 'UTC')::date = library_today())::text"
                   " FROM (SELECT (now() + interval '%d minutes') AT TIME ZONE"
                   "  library_setting_text('timezone') AS t) x" % minutes_from_now)
    hhmm, same_day = row.split("|")
    return hhmm, same_day == "true"


def days_ago(n):
    return env.psql("SELECT (library_today() - %d)::text" % n)


def us_date(iso):
    y, m, d = iso.split("-")
    return "%s/%s/%s" % (m, d, y)


def today_tallies(branch="DWN"):
    return int(env.psql("SELECT count(*) FROM inquiry i JOIN branch b ON b.id = i.branch_id"
                        " WHERE b.code = '%s' AND (i.asked_at AT TIME ZONE"
                        " library_setting_text('timezone'))::date = library_today()" % branch))


def write(name, text):
    path = os.path.join(env.dir, name)
    with open(path, "w", newline="") as f:
        f.write(text)
    return path


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        # An 8 MB frame, so that a CSV over the server's own 4 MB limit reaches it.
        main = env.daemon(jobs_interval_s=0, notice_send_interval_s=0,
                          max_frame_bytes=8 * 1024 * 1024)
        admin = env.profile(main)
        env.add_workstations(admin, {"desk-prk": "PRK"})
        for user, role, branch in STAFF:
            env.add_staff(admin, user, role, branch, PASSWORD)
        ok(carrel("mara", "schedule", "desk", "save", "--branch", "DWN", "--code", "ref",
                  "--name", "Reference desk", "--need", "1"))
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


class DeskTallies(unittest.TestCase):
    def test_tallies_typed_at_the_desk(self):
        """:q? lists the kinds; :q ref 2 is a prefix and a READ level; :q alone repeats;
        a channel and the number of a kind in the list; @HH:MM backdates within the day;
        mistakes are told on one line and record nothing."""
        before = today_tallies()
        earlier, same_day = local_hhmm(-3)
        later, later_same_day = local_hhmm(30)
        lines = [":q?", ":q ref 2", ":q", ":q dir 1 phone", ":q nothing 2", ":q reference 9",
                 ":q reference 2 @25:00"]
        if same_day:
            lines.append(":q 4 3 @" + earlier)
        if later_same_day:
            lines.append(":q reference 2 @" + later)
        out = desk("clara", lines, "--service-desk", "ref")
        text = "\n".join(out)
        self.assertIn("Inquiry kinds", text)
        self.assertRegex(text, r"\n\s+1\s+directional")
        tallies = [line for line in out if line.startswith("TALLY")]
        self.assertRegex(tallies[0], r"^TALLY reference READ 2 in person at \d\d:\d\d — %d today"
                         r" at DWN, \d+ at ref$" % (before + 1))
        self.assertRegex(tallies[1], r"^TALLY reference READ 2 in person .* — %d today"
                         % (before + 2))
        self.assertRegex(tallies[2], r"^TALLY directional READ 1 phone .* — %d today"
                         % (before + 3))
        self.assertIn("No inquiry kind is nothing", text)
        self.assertIn("9 is extra", text)
        self.assertIn("@25:00 is not a time", text)
        made = 3
        if same_day:
            # The kind by its number in :q?, the channel remembered from the last tally.
            self.assertRegex(tallies[3], r"^TALLY reference READ 3 phone at %s — %d today"
                             % (earlier, before + 4))
            made += 1
            self.assertEqual(env.psql(
                "SELECT to_char(asked_at AT TIME ZONE library_setting_text('timezone'),"
                " 'HH24:MI') FROM inquiry WHERE read_level = 3 AND channel = 'phone'"
                " ORDER BY id DESC LIMIT 1"), earlier)
        if later_same_day:
            self.assertRegex(text, r"field:at")  # not in the future
        self.assertEqual(len(tallies), made, text)
        self.assertEqual(today_tallies(), before + made)
        # The desk is recorded with each tally, and who typed it.
        self.assertEqual(env.psql(
            "SELECT count(*) FROM inquiry i JOIN service_desk d ON d.id = i.desk_id"
            " JOIN staff s ON s.id = i.staff_id WHERE d.code = 'ref' AND s.username = 'clara'"),
            str(made))

    def test_tallies_as_json_lines(self):
        before = today_tallies()
        out = desk("libby", [":q tech 4 chat", ":q", ":q bogus"], json_out=True)
        docs = [json.loads(line) for line in out]
        self.assertEqual(docs[0]["desk"]["staff"], "libby")
        adds = [d for d in docs if "inquiry_add" in d]
        self.assertEqual(len(adds), 2, out)
        self.assertTrue(all(d["ok"] for d in adds))
        first = adds[0]["inquiry_add"]
        self.assertEqual(first["inquiry"]["kind"], "technology")
        self.assertEqual(first["inquiry"]["read_level"], 4)
        self.assertEqual(first["inquiry"]["channel"], "chat")
        self.assertEqual(first["today_branch"], before + 1)
        self.assertEqual(adds[1]["inquiry_add"]["today_branch"], before + 2)
        bad = [d for d in docs if d.get("status") == "usage_error"]
        self.assertEqual(len(bad), 1, out)
        self.assertFalse(bad[0]["ok"])

    def test_service_desk_from_the_profile(self):
        """The profile's service_desk names the desk tallies go to, as --service-desk does."""
        with open(profile("libby")) as f:
            text = f.read()
        path = write("libby-ref.profile", text + "service_desk = ref\n")
        r = env.carrel(path, "desk", json_out=True, input=":q reference 2\n", env=TZ)
        self.assertEqual(r.code, 0, r)
        add = [json.loads(line) for line in r.stdout.splitlines() if "inquiry_add" in line][0]
        self.assertEqual(add["inquiry_add"]["inquiry"]["desk_code"], "ref")
        self.assertGreaterEqual(add["inquiry_add"]["today_desk"], 1)
        out = desk("libby", [":q reference 2"], "--service-desk", "nodesk")
        self.assertRegex("\n".join(out), r"NOT FOUND reference: .*\[desk\]")

    def test_help_names_q(self):
        out = desk("clara", [":help"])
        self.assertIn(":q KIND READ", "\n".join(out))


class ScriptTallies(unittest.TestCase):
    def test_inquiry_add_and_a_keyed_retry(self):
        """`inquiry add` from a script; the same request key again (a retry after a lost
        answer) gets the first answer and records nothing more."""
        key = str(uuid.uuid4())
        question = "Where are the tax forms? %s" % key
        args = ("--request-key", key, "inquiry", "add", "reference", "3", "--channel", "email",
                "--minutes", "12", "--question", question, "--answer", "Lobby rack")
        first = ok(carrel("libby", *args))
        again = ok(carrel("libby", *args))
        self.assertEqual(first["inquiry"]["id"], again["inquiry"]["id"])
        self.assertEqual(first["inquiry"]["minutes"], 12)
        self.assertEqual(first["inquiry"]["username"], "libby")
        self.assertEqual(env.psql("SELECT count(*) FROM inquiry WHERE question = '%s'"
                                  % question), "1")
        # Text output, and the list shows it.
        r = carrel("libby", "inquiry", "add", "directional", "1", json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertRegex(r.stdout, r"Recorded inquiry \d+: directional, READ 1, in person")
        listed = ok(carrel("libby", "inquiry", "list", "--limit", "1000"))["inquiries"]
        self.assertIn(first["inquiry"]["id"], [q["id"] for q in listed])
        r = carrel("libby", "inquiry", "list", json_out=False)
        self.assertIn("Question", r.stdout)

    def test_refusals(self):
        refused(carrel("libby", "inquiry", "add", "nosuchkind", "2"), "service_code")
        r = carrel("libby", "inquiry", "add", "reference", "7")
        self.assertEqual(r.code, 2, r)  # READ is 1-6 on the command line already
        refused(carrel("libby", "inquiry", "add", "reference", "2", "--channel", "pigeon"),
                "field:channel")
        refused(carrel("libby", "inquiry", "add", "reference", "2", "--desk", "nodesk"), "desk")
        refused(carrel("libby", "inquiry", "add", "reference", "2", "--at",
                       days_ago(1) + " 10:00"), "same_day")

    def test_take_back(self):
        """The recorder takes a tally back the same day; another clerk may not; a manager of
        the branch may."""
        mine = ok(carrel("clara", "inquiry", "add", "account", "2"))["inquiry"]["id"]
        ok(carrel("clara", "inquiry", "remove", str(mine)))
        theirs = ok(carrel("libby", "inquiry", "add", "account", "2"))["inquiry"]["id"]
        refused(carrel("clara", "inquiry", "remove", str(theirs)), "not_yours")
        removed = ok(carrel("mara", "inquiry", "remove", str(theirs)))
        self.assertEqual(removed["id"], theirs)
        refused(carrel("mara", "inquiry", "remove", str(theirs)), "inquiry")


class Counts(unittest.TestCase):
    def gate_rows(self, counter):
        return env.psql("SELECT count(*) FROM gate_count g JOIN branch b ON b.id = g.branch_id"
                        " WHERE b.code = 'DWN' AND g.counter = '%s'" % counter)

    def test_gate_counter_csv(self):
        """A counter's export with a byte order mark and CR LF: bad lines are told by number
        (the parser's and SQL's, in order) and nothing is applied; --skip-bad applies the
        good ones; the same lines again change nothing; a corrected count replaces."""
        d1, tomorrow = days_ago(2), env.psql("SELECT (library_today() + 1)::text")
        rows = ["\ufeffDate,Time,Count",          # 1
                "%s,09:00,10" % d1,               # 2
                "%s,10:00,12" % us_date(d1),      # 3: MM/DD/YYYY
                "13/45/2026,11:00,5",             # 4: no such day
                "%s,12:00,lots" % d1,             # 5: not a number
                "%s,13:00:00,7" % d1,             # 6: seconds
                "%s,09:00,3" % tomorrow]          # 7: the future (SQL)
        bad_file = write("north-bad.csv", "\r\n".join(rows) + "\r\n")
        r = carrel("clara", "visits", "import", bad_file, "--counter", "north", json_out=False)
        self.assertEqual(r.code, 4, r)
        out = r.stdout.splitlines()
        self.assertTrue(out[0].startswith("line 4: field:date: "), r.stdout)
        self.assertTrue(out[1].startswith("line 5: field:count: "), r.stdout)
        self.assertTrue(out[2].startswith("line 7: field:"), r.stdout)
        self.assertIn("6 lines read, 3 bad", r.stdout)
        self.assertIn("Nothing was imported", r.stdout)
        self.assertEqual(self.gate_rows("north"), "0")

        r = carrel("clara", "visits", "import", bad_file, "--counter", "north", "--skip-bad")
        res = ok(r)
        self.assertEqual((res["imported"], res.get("replaced", 0), res.get("unchanged", 0)),
                         (3, 0, 0))
        self.assertTrue(res["applied"])
        self.assertEqual([b["line"] for b in res["bad"]], [4, 5, 7])
        self.assertEqual(self.gate_rows("north"), "3")
        self.assertEqual(env.psql(
            "SELECT sum(crossings) FROM gate_count WHERE counter = 'north'"), "29")

        good = write("north.csv", "\n".join(rows[:3] + rows[5:6]) + "\n")
        res = ok(carrel("clara", "visits", "import", good, "--counter", "north"))
        self.assertEqual((res.get("imported", 0), res.get("unchanged", 0)), (0, 3))
        corrected = write("north-2.csv", "\n".join(
            [rows[0], rows[1], "%s,10:00,13" % d1, rows[5]]) + "\n")
        res = ok(carrel("clara", "visits", "import", corrected, "--counter", "north"))
        self.assertEqual((res.get("replaced", 0), res.get("unchanged", 0)), (1, 2))
        self.assertEqual(self.gate_rows("north"), "3")

        # A header without a count column: line 1, nothing applied.
        headless = write("nohead.csv", "date,time,total\n%s,09:00,1\n" % d1)
        res = refused_import(carrel("clara", "visits", "import", headless, "--counter", "x1"))
        self.assertEqual([(b["line"], b["reason"]) for b in res["bad"]], [(1, "field:count")])

    def test_gate_import_in_the_hour_the_clocks_skip(self):
        """Rows in the hour the clocks go forward are bad lines (field:time), not a failed
        import: 02:30 and 02:45 of the spring-forward Sunday (02:45 + 15 minutes ends at
        03:00, before its start once converted)."""
        day = env.psql("SELECT max(d)::date::text FROM generate_series(library_today() - 400,"
                       " library_today(), interval '1 day') d WHERE extract(month FROM d) = 3"
                       " AND extract(isodow FROM d) = 7 AND extract(day FROM d) BETWEEN 8 AND 14")
        f = write("dst.csv", "date,time,count\n%s,01:45,3\n%s,02:30,4\n%s,02:45,5\n"
                  "%s,03:00,6\n" % (day, day, day, day))
        res = refused_import(carrel("clara", "visits", "import", f, "--counter", "dst",
                                    "--period", "15"))
        self.assertEqual([(b["line"], b["reason"]) for b in res["bad"]],
                         [(3, "field:time"), (4, "field:time")], res)
        res = ok(carrel("clara", "visits", "import", f, "--counter", "dst", "--period", "15",
                        "--skip-bad"))
        self.assertEqual(res["imported"], 2)

    def test_computer_sessions(self):
        d1 = days_ago(3)
        f = write("pcs.csv", "Date,Sessions,Minutes\n%s,40,1200\n" % us_date(d1))
        res = ok(carrel("clara", "computers", "import", f))
        self.assertEqual(res["imported"], 1)
        got = ok(carrel("clara", "computers", "set", "12", "--day", days_ago(4), "--minutes",
                        "300"))
        self.assertEqual((got["sessions"], got["minutes"]), (12, 300))
        self.assertEqual(env.psql("SELECT sessions FROM computer_use WHERE day = '%s'" % d1),
                         "40")

    def test_visits_by_reading(self):
        """Readings of a counter's running total: the first is a baseline, the next counts
        the crossings since."""
        earlier, same_day = local_hhmm(-10)
        if not same_day:
            self.skipTest("too close to midnight for an earlier reading today")
        first = ok(carrel("clara", "visits", "add", "--reading", "1000", "--counter", "side",
                          "--at", earlier))
        self.assertEqual(first["counter"], "side")
        second = ok(carrel("clara", "visits", "add", "--reading", "1150", "--counter", "side"))
        self.assertEqual(second["crossings"], 150)
        self.assertGreaterEqual(second["visits_today"], 75)
        r = carrel("clara", "visits", "add", "--crossings", "40", "--counter", "back", "--day",
                   days_ago(1), json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertIn("40 crossings", r.stdout)
        self.assertEqual(carrel("clara", "visits", "add", "--reading", "5", "--crossings",
                                "5").code, 2)


def refused_import(r):
    """An import with nothing applied: exit 4 and the reply with its bad lines."""
    assert r.code == 4 and r.json and "bad" in r.json, r
    assert r.json.get("applied") in (False, None), r
    return r.json


class Sweeps(unittest.TestCase):
    def test_sweep_with_a_zero_and_an_incomplete_one(self):
        areas = [c["code"] for c in ok(carrel("clara", "codes", "floor_area"))["codes"]]
        self.assertIn("quiet_study", areas)
        # The first area is empty (a zero), the second split by activity.
        counts = ["%s=%d" % (a, 0 if i == 0 else 3) for i, a in enumerate(areas) if i != 1]
        counts += ["%s=2/reading" % areas[1], "%s=1/computers" % areas[1]]
        key = str(uuid.uuid4())
        sweep = ok(carrel("clara", "--request-key", key, "sweep", "add", *counts))
        again = ok(carrel("clara", "--request-key", key, "sweep", "add", *counts))
        self.assertEqual(sweep["id"], again["id"])
        self.assertEqual(sweep["total"], 3 * (len(areas) - 2) + 3)
        zero = [c for c in sweep["counts"] if c["area"] == areas[0]]
        self.assertEqual(zero[0].get("headcount", 0), 0)  # recorded, not skipped
        self.assertEqual(env.psql("SELECT count(*) FROM sweep WHERE id = %d" % sweep["id"]), "1")
        missing = [c for c in counts if not c.startswith("quiet_study=")]
        self.assertNotEqual(areas[1], "quiet_study")
        r = refused(carrel("clara", "sweep", "add", *missing), "sweep_incomplete")
        self.assertIn("quiet_study", r["message"])
        listed = ok(carrel("clara", "sweep", "list"))["sweeps"]
        self.assertIn(sweep["id"], [s["id"] for s in listed])
        r = carrel("clara", "sweep", "list", json_out=False)
        self.assertIn("Sweep %d at DWN" % sweep["id"], r.stdout)
        self.assertEqual(carrel("clara", "sweep", "add", "childrens").code, 2)


class ServiceLevels(unittest.TestCase):
    def test_one_branch_and_the_coordinator(self):
        ok(carrel("libby", "inquiry", "add", "reference", "2"))
        one = ok(carrel("libby", "service-levels", "--branch", "DWN"))
        self.assertTrue(one["week"])
        self.assertTrue(one["rows"], one)
        self.assertEqual({row["branch_code"] for row in one["rows"]}, {"DWN"})
        # A librarian asking for no branch sees their own.
        mine = ok(carrel("libby", "service-levels"))
        self.assertEqual({row["branch_code"] for row in mine["rows"]}, {"DWN"})
        text = carrel("libby", "service-levels", "--branch", "DWN", json_out=False)
        self.assertEqual(text.code, 0, text)
        self.assertIn("Per staff", text.stdout)
        every = ok(carrel("cora", "service-levels"))
        self.assertGreater(len({row["branch_code"] for row in every["rows"]}), 1)
        text = carrel("cora", "service-levels", json_out=False)
        self.assertIn("activity per staff", text.stdout)
        self.assertIn("PRK", text.stdout.splitlines()[1])
        # One row per half hour in time order, though branches open at different hours.
        slots = [tuple(line.split()[:2]) for line in text.stdout.splitlines()[3:]
                 if line[:4].isdigit()]
        self.assertEqual(slots, sorted(set(slots)))
        self.assertEqual(len(slots), len({(r["day"], r["time"]) for r in every["rows"]}))
        refused(carrel("cora", "service-levels", "--branch", "NOPE"), "field:branch")
        # Today's half hours count today's tallies made while the branch was open.
        today = env.psql("SELECT library_today()::text")
        counted = sum(row.get("inquiries", 0) for row in one["rows"] if row["day"] == today)
        self.assertEqual(counted, int(env.psql(
            "SELECT count(*) FROM inquiry i JOIN branch b ON b.id = i.branch_id"
            " JOIN schedule_slots(ARRAY[b.id], library_today(), library_today()) s"
            "   ON s.slot @> i.asked_at WHERE b.code = 'DWN'")))

    def test_inquiry_stats_and_visits(self):
        """`inquiry stats` and `visits` are the statistics measures inquiries and visits."""
        ok(carrel("libby", "inquiry", "add", "readers_advisory", "3"))
        stats = ok(carrel("libby", "inquiry", "stats", "--by", "kind"))
        self.assertEqual(stats["measure"], "inquiries")
        by_kind = dict((row["key"][0], row.get("value", 0)) for row in stats.get("rows", []))
        self.assertGreaterEqual(by_kind.get("readers_advisory", 0), 1, stats)
        text = carrel("libby", "inquiry", "stats", "--by", "kind,read_level", json_out=False)
        self.assertEqual(text.code, 0, text)
        self.assertIn("inquiries", text.stdout)
        ok(carrel("libby", "visits", "add", "--crossings", "31", "--counter", "stats",
                  "--day", days_ago(1)))
        # Other days are a branch manager's (librarians see today's statistics only).
        visits = ok(carrel("mara", "visits", "--from", days_ago(1), "--to", days_ago(1),
                           "--by", "counter"))
        self.assertEqual(visits["measure"], "visits")
        self.assertIn("stats", [row["key"][0] for row in visits.get("rows", [])], visits)


class Permissions(unittest.TestCase):
    def test_who_may_do_what(self):
        # A clerk records for their own branch only.
        refused(carrel("pia", "inquiry", "add", "reference", "2", "--branch", "DWN"), "branch")
        ok(carrel("pia", "inquiry", "add", "reference", "2"))
        refused(carrel("pia", "visits", "add", "--crossings", "5", "--branch", "DWN",
                       "--counter", "pia"), "branch")
        # Inquiry kinds are the coordinator's; floor areas the branch's managers'.
        refused(carrel("mara", "code", "save", "inquiry_kind", "zines", "--name", "Zines"),
                "role")
        refused(carrel("clara", "code", "save", "floor_area", "lab", "--name", "Lab"), "role")
        saved = ok(carrel("mara", "code", "save", "floor_area", "makerspace", "--name",
                          "Makerspace", "--inactive"))
        self.assertEqual((saved["branch_code"], saved["code"]), ("DWN", "makerspace"))
        kind = ok(carrel("cora", "code", "save", "inquiry_kind", "genealogy", "--name",
                         "Genealogy", "--order", "8"))
        self.assertTrue(kind["reference"])
        kinds = [c["code"] for c in ok(carrel("pia", "codes", "inquiry_kind"))["codes"]]
        self.assertIn("genealogy", kinds)
        # Service levels: librarians and up, their own branch.
        refused(carrel("clara", "service-levels"), "role")
        refused(carrel("libby", "service-levels", "--branch", "PRK"), "branch")


class HostileWire(unittest.TestCase):
    def test_malformed_requests_change_nothing(self):
        """Requests no client would send: no request key, bad UTF-8, a CSV over 4 MB, CR in
        a CSV, wrong wire types, huge and hostile codes. Each is refused with its reason on
        the same connection, nothing is written, and the daemon serves on."""
        counts_sql = ("SELECT (SELECT count(*) FROM inquiry) || '/' ||"
                      " (SELECT count(*) FROM gate_count) || '/' || (SELECT count(*) FROM sweep)"
                      " || '/' || (SELECT count(*) FROM service_code)")
        before = env.psql(counts_sql)
        w = main.logged_in_wire(user="clara", password=PASSWORD)
        pb = harness.pb_message

        def inquiry(**f):
            fields = {"branch_code": 2, "desk_code": 3, "channel": 4, "kind": 5,
                      "read_level": 6, "minutes": 7, "at": 8, "question": 9}
            return pb((1, pb(*[(fields[k], v) for k, v in f.items()])))

        good = dict(kind="reference", read_level=2)
        keyed = {REQ_INQUIRY_ADD, REQ_SWEEP_SAVE}
        big_csv = "date,time,count\n" + "2020-01-01,09:00,1\n" * (4 * 1024 * 1024 // 19 + 10)
        cases = [
            (REQ_INQUIRY_ADD, inquiry(**dict(good, question=b"caf\xc3")), "bad_request",
             "field:question"),
            (REQ_INQUIRY_ADD, inquiry(**dict(good, kind="k" * 10000)), "bad_request",
             "field:kind"),
            (REQ_INQUIRY_ADD, inquiry(**dict(good, question="q" * 9000)), "bad_request",
             "field:question"),
            (REQ_INQUIRY_ADD, inquiry(**dict(good, read_level=0)), "bad_request",
             "field:read_level"),
            (REQ_INQUIRY_ADD, inquiry(**dict(good, minutes=100000)), "bad_request",
             "field:minutes"),
            (REQ_INQUIRY_ADD, inquiry(**dict(good, branch_code="DWN' OR '1'='1")), "bad_request",
             "field:branch_code"),
            (REQ_INQUIRY_ADD, inquiry(kind="reference"), "bad_request", "field:read_level"),
            (REQ_INQUIRY_ADD, pb(), "bad_request", "field:kind"),
            (REQ_IMPORT, pb((1, "gate"), (5, big_csv)), "bad_request", "field:csv"),
            (REQ_IMPORT, pb((1, "gate"), (5, "date,count\r\n2020-01-01,1\r\n")), "bad_request",
             "field:csv"),
            (REQ_IMPORT, pb((1, "gate"), (5, b"date,count\n2020-01-01,\xff\n")), "bad_request",
             "field:csv"),
            (REQ_IMPORT, pb((1, "bogus"), (5, "date,count\n")), "bad_request", "field:kind"),
            (REQ_IMPORT, pb((1, "gate")), "bad_request", "field:csv"),
            (REQ_IMPORT, pb((1, "gate"), (4, 1), (5, "date,count\n2020-01-01,1\n")),
             "bad_request", "field:period_minutes"),
            (REQ_GATE_ADD, pb((2, "c" * 10000), (4, 5)), "bad_request", "field:counter"),
            (REQ_SWEEP_SAVE, pb((1, pb((2, "DWN")))), "bad_request", "field:counts"),
            (REQ_SWEEP_SAVE, pb((1, pb(*[(4, pb((1, "teen"), (3, 1)))] * 1001))), "bad_request",
             "field:counts"),
            (REQ_SWEEP_LIST, pb((2, "f" * 10000)), "bad_request", "field:from"),
            (REQ_INQUIRY_LIST, pb((4, 5000)), "bad_request", "field:limit"),
            (REQ_CODE_LIST, pb(), "bad_request", "field:list"),
            (REQ_CODE_LIST, pb((1, "nope")), "bad_request", "field:list"),
            (REQ_LEVELS, pb((2, "w" * 10000)), "forbidden", "role"),
            (REQ_INQUIRY_REMOVE, pb(), "bad_request", "field:id"),
        ]
        for body_field, body, status, reason in cases:
            key = str(uuid.uuid4()) if body_field in keyed else None
            r = w.call(body_field, body, key=key)
            self.assertIsNotNone(r, "the daemon closed the connection on %r" % (body[:40],))
            self.assertEqual((r.status, r.reason), (status, reason), (body[:60], r))
            self.assertTrue(r.message, r)
        # Wrong wire types (a string where a number goes, a number where a message goes)
        # are not a Request at all: answered undecodable, and that connection alone closes.
        for body_field, body in [(REQ_INQUIRY_ADD, pb((1, pb((6, "two"))))),
                                 (REQ_INQUIRY_ADD, pb((1, 7))),
                                 (REQ_IMPORT, pb((4, "sixty")))]:
            bad = main.logged_in_wire(user="clara", password=PASSWORD)
            r = bad.call(body_field, body, key=str(uuid.uuid4()))
            self.assertEqual((r.status, r.reason), ("bad_request", "undecodable"), r)
            self.assertTrue(bad.closed_by_server())
        # A keyed change without its key, then a key that is no UUID.
        r = w.call(REQ_INQUIRY_ADD, inquiry(**good))
        self.assertEqual((r.status, r.reason), ("bad_request", "request_key"), r)
        r = w.call(REQ_SWEEP_SAVE, pb((1, pb((4, pb((1, "teen"), (3, 1)))))), key="nope")
        self.assertEqual((r.status, r.reason), ("bad_request", "request_key"), r)
        self.assertEqual(w.call(REQ_PING).status, "ok")
        w.close()
        self.assertEqual(env.psql(counts_sql), before)
        # Served as before.
        ok(carrel("clara", "inquiry", "add", "reference", "1"))


if __name__ == "__main__":
    harness.main()
