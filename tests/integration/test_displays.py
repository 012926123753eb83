#!/usr/bin/env python3
"""Displays through the daemon and the real client (issue 13): a display set up,
copies scanned onto it (on the command line and from standard input, as a scanner
types), `item show` and a bib's copies saying where the copy is ("on display: THEME
(place)") and when it was last used, a checkin at the display's branch saying to put
it back (`checkin` and desk mode), at another branch not; copies taken off, the
display edited and ended; the report with figures set up through real checkouts and
circ_event rows dated in the past by SQL for the before period; who may do what; and
malformed requests over the wire, each refused with its reason while the daemon
serves on."""

import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = "staff-password-123"
REQ_PING = 13
REQ_SAVE, REQ_LIST, REQ_ITEM_ADD, REQ_SHOW, REQ_REPORT = 335, 336, 337, 338, 339

env = None
main = None

# (user, role, branch)
STAFF = [("clara", "clerk", "DWN"), ("libby", "librarian", "DWN"), ("pia", "clerk", "PRK"),
         ("paul", "librarian", "PRK"), ("cora", "coordinator", "DWN")]
WS = {"DWN": "desk-dwn", "PRK": "desk-prk"}


def profile(user):
    branch = dict((u, b) for u, _, b in STAFF).get(user, "DWN")
    pw = harness.ADMIN_PASSWORD if user == "admin" else PASSWORD
    return env.profile(main, WS[branch], user, pw)


def carrel(user, *args, json_out=True, input=None):
    return env.carrel(profile(user), *args, json_out=json_out, input=input)


def ok(r):
    assert r.code == 0, r
    return r.json


def refused(r, reason, code=4):
    """A refusal with its reason; a scan answers with an array (one element a copy)."""
    doc = r.json[0] if isinstance(r.json, list) and len(r.json) == 1 else r.json
    assert r.code == code and (doc or {}).get("reason") == reason, (reason, r)
    return doc


def day(offset=0):
    """The library's day, offset days from today, as YYYY-MM-DD."""
    return env.psql("SELECT (library_today() + %d)::text" % offset)


def new_display(theme=None, place="front window", start=0, end=30, user="libby"):
    theme = theme or "Theme %d" % env.next_number()
    r = ok(carrel(user, "display", "add", theme, "--place", place, "--from", day(start),
                  "--to", day(end)))
    return r["id"], theme


def checkout(barcode, user="libby"):
    card = env.new_patron()
    ok(carrel(user, "checkout", card, barcode))
    return card


def item(barcode, user="clara"):
    return ok(carrel(user, "item", "show", barcode))


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        main = env.daemon(jobs_interval_s=0, notice_send_interval_s=0)
        admin = env.profile(main)
        env.add_workstations(admin, {"desk-prk": "PRK"})
        for user, role, branch in STAFF:
            env.add_staff(admin, user, role, branch, PASSWORD)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


# ---------------------------------------------------------------- a display's life


class Lifecycle(unittest.TestCase):
    def test_set_up_scan_and_every_desk_sees_it(self):
        did, theme = new_display(place="front window")
        shown = ok(carrel("clara", "display", "show", str(did)))
        d = shown["display"]
        self.assertEqual((d["branch_code"], d["curator"], d["status"], d["place"]),
                         ("DWN", "libby", "running", "front window"))
        self.assertEqual(d["starts_on"], day(0))
        copies = [env.new_item(location="Adult Fiction") for _ in range(3)]
        # Two on the command line, one from standard input as a scanner types it.
        r = ok(carrel("clara", "display", "scan", str(did), copies[0], copies[1]))
        self.assertEqual([x["item"]["barcode"] for x in r], copies[:2])
        self.assertEqual(r[-1]["copies"], 2)
        out = carrel("clara", "display", "scan", str(did), input="\n  %s \r\n\n" % copies[2],
                     json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertEqual(len(out.stdout.splitlines()), 1, out)
        self.assertIn("%s (front window)" % theme, out.stdout)
        self.assertIn("(3 on display %d)" % did, out.stdout)
        listed = ok(carrel("clara", "display", "show", str(did)))
        self.assertEqual(sorted(i["barcode"] for i in listed["items"]), sorted(copies))
        self.assertEqual(listed["display"]["copies"], 3)
        self.assertIn(did, [x["id"] for x in ok(carrel("pia", "display", "list"))["displays"]])
        self.assertIn(did, [x["id"] for x in ok(carrel("pia", "display", "list", "--branch",
                                                       "DWN"))["displays"]])
        self.assertNotIn(did, [x["id"] for x in ok(carrel("pia", "display", "list", "--branch",
                                                          "PRK"))["displays"]])
        out = carrel("pia", "display", "list", json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn(theme, out.stdout)
        # Every desk (another branch's too) sees where the copy is; the shelf stays.
        label = "on display: %s (front window)" % theme
        for user in ("clara", "pia"):
            it = item(copies[0], user)
            self.assertEqual((it["display"], it["location"]), (label, "Adult Fiction"))
        text = carrel("pia", "item", "show", copies[0], json_out=False)
        self.assertEqual(text.code, 0, text)
        self.assertIn("location: Adult Fiction; " + label, text.stdout)
        bib = env.psql("SELECT bib_id FROM item WHERE barcode = '%s'" % copies[0])
        out = carrel("clara", "catalog", "show", bib, json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn(label, out.stdout)
        # Scanning it again changes nothing and says so.
        again = ok(carrel("clara", "display", "scan", str(did), copies[0]))
        self.assertEqual(again[0]["copies"], 3)
        self.assertIn("already", again[0]["message"])
        # Taken off: the copy is on its shelf again.
        r = ok(carrel("clara", "display", "remove", str(did), copies[2]))
        self.assertEqual(r[0]["copies"], 2)
        self.assertNotIn("display", item(copies[2]))
        shown = ok(carrel("clara", "display", "show", str(did)))
        gone = [i for i in shown["items"] if i["barcode"] == copies[2]]
        self.assertEqual(gone[0]["removed_on"], day(0))
        text = carrel("clara", "display", "show", str(did), json_out=False)
        self.assertEqual(text.code, 0, text)
        self.assertIn(theme, text.stdout)
        self.assertIn(copies[0], text.stdout)

    def test_item_show_gives_the_last_use(self):
        barcode = env.new_item()
        self.assertNotIn("last_used", item(barcode))
        out = carrel("clara", "item", "show", barcode, json_out=False)
        self.assertIn("last used: never", out.stdout)
        checkout(barcode)
        self.assertEqual(item(barcode)["last_used"], day(0))
        out = carrel("clara", "item", "show", barcode, json_out=False)
        self.assertIn("last used: %s" % day(0), out.stdout)
        # An in-house use is a use too.
        other = env.new_item()
        ok(carrel("clara", "item", "use", other))
        self.assertEqual(item(other)["last_used"], day(0))

    def test_checkin_at_the_branch_says_put_it_back(self):
        did, theme = new_display(place="hall")
        here, away = env.new_item(), env.new_item()
        ok(carrel("clara", "display", "scan", str(did), here, away))
        checkout(here)
        r = ok(carrel("clara", "checkin", here))[0]
        self.assertEqual((r["route"], r["display"]), ("display", "%s (hall)" % theme))
        checkout(here)
        out = carrel("clara", "checkin", here, json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn("PUT BACK ON DISPLAY: %s (hall)" % theme, out.stdout)
        self.assertNotIn("Put back on the display", out.stdout)
        # Desk mode says it too.
        checkout(here)
        r = env.carrel(profile("clara"), "desk", "--checkin", json_out=False,
                       input=here + "\n")
        self.assertEqual(r.code, 0, r)
        self.assertIn("PUT BACK ON DISPLAY: %s (hall)" % theme, r.stdout)
        # At another branch the copy goes home, not onto a display it is not at.
        checkout(away)
        r = ok(carrel("pia", "checkin", away))[0]
        self.assertEqual(r["route"], "transit")
        self.assertNotIn("display", r)
        out = carrel("pia", "checkin", env.new_item(), json_out=False)
        self.assertNotIn("DISPLAY", out.stdout)

    def test_edit_and_end(self):
        did, theme = new_display(place="stairs", end=10)
        copy = env.new_item()
        ok(carrel("clara", "display", "scan", str(did), copy))
        r = ok(carrel("libby", "display", "edit", str(did), "--place", "landing", "--note",
                      "Moved upstairs"))
        self.assertEqual((r["place"], r["theme"], r["note"], r["ends_on"]),
                         ("landing", theme, "Moved upstairs", day(10)))
        self.assertEqual(item(copy)["display"], "on display: %s (landing)" % theme)
        out = carrel("libby", "display", "edit", str(did), "--to", day(12), json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn("changed display %d" % did, out.stdout)
        self.assertEqual(ok(carrel("clara", "display", "show", str(did)))["display"]["ends_on"],
                         day(12))
        # Ended: the copy is on its shelf again, and the display is off the list.
        r = ok(carrel("libby", "display", "end", str(did)))
        self.assertEqual((r["status"], r["ends_on"]), ("ended", day(0)))
        self.assertNotIn("display", item(copy))
        self.assertNotIn(did, [x["id"] for x in ok(carrel("clara", "display", "list"))
                               ["displays"]])
        self.assertIn(did, [x["id"] for x in ok(carrel("clara", "display", "list", "--all"))
                            ["displays"]])
        refused(carrel("clara", "display", "scan", str(did), env.new_item()), "display_ended")
        checkout(copy)
        self.assertNotEqual(ok(carrel("clara", "checkin", copy))[0]["route"], "display")

    def test_a_planned_display_is_not_on_show_yet(self):
        did, _ = new_display(start=5, end=20)
        copy = env.new_item()
        ok(carrel("clara", "display", "scan", str(did), copy))
        self.assertEqual(ok(carrel("clara", "display", "show", str(did)))["display"]["status"],
                         "planned")
        self.assertNotIn("display", item(copy))


# ---------------------------------------------------------------- the report


class Report(unittest.TestCase):
    def test_the_lift_from_real_checkouts_and_past_events(self):
        """Ten days into a display: its two copies were used 3 times during it (real
        checkouts) and once in the ten days before (a circ_event dated by SQL); the three
        control copies (same collection, same age band, on no display) once during and
        twice before. lift_vs_before 3.0, control_change 0.5 (displacement), net_lift 6.0;
        lift_vs_control against the control's rate per copy-day."""
        # An age band of their own (published 1950: 21+), so that only these copies
        # make the stratum; the same collection (no call number, no location).
        bib = env.new_bib("Report title %d" % env.next_number())
        env.psql("UPDATE bib SET pub_year = '1950' WHERE id = %d" % bib)
        shown = [env.new_item(bib=bib) for _ in range(2)]
        control = [env.new_item(bib=bib) for _ in range(3)]
        env.psql("UPDATE item SET date_added = library_today() - 60 WHERE barcode IN (%s)"
                 % ", ".join("'%s'" % b for b in shown + control))
        did, theme = new_display(start=-9, end=20)
        ok(carrel("clara", "display", "scan", str(did), *shown))
        # On the display since its first morning.
        env.psql("UPDATE display_item SET added_at = local_at(library_today() - 9, '00:00')"
                 " WHERE display_id = %d" % did)
        # During: three checkouts of the displayed copies, one of a control copy.
        checkout(shown[0])
        ok(carrel("clara", "checkin", shown[0]))
        checkout(shown[0])
        checkout(shown[1])
        checkout(control[0])
        # Before (days 19 to 10 ago): one use of a displayed copy, two of control copies.
        env.psql(
            "INSERT INTO circ_event (at, action, branch_id, item_id, item_type, staff_id)"
            " SELECT local_at(library_today() - 14, '12:00'), 'checkout', i.owning_branch_id,"
            "        i.id, i.item_type, NULL FROM item i WHERE i.barcode IN ('%s', '%s', '%s')"
            % (shown[0], control[0], control[1]))
        r = ok(carrel("cora", "display", "report", str(did)))
        self.assertEqual(r["display"]["theme"], theme)
        self.assertEqual((r["during_from"], r["during_to"], r["before_from"], r["before_to"],
                          r["days"]), (day(-9), day(0), day(-19), day(-10), 10))
        self.assertEqual((r["copies"], r["uses_during"], r["uses_before"]), (2, 3, 1))
        self.assertEqual((r["control_copies"], r["control_during"], r["control_before"]),
                         (3, 1, 2))
        self.assertAlmostEqual(r["lift_vs_before"], 3.0)
        self.assertAlmostEqual(r["control_change"], 0.5)
        self.assertAlmostEqual(r["net_lift"], 6.0)
        # Expected from the control: its rate per copy-day (1 use / 3 copies over the
        # window so far: 9 days and today until now, not 10 whole days) over the
        # displayed copies' copy-days so far (2 copies over that same window): 2/3 of
        # a use, so the lift is 4.5 at any hour of the day.
        self.assertAlmostEqual(r["lift_vs_control"], 4.5, places=3)
        self.assertEqual(len(r["strata"]), 1, r)
        self.assertEqual((r["strata"][0]["age_band"], r["strata"][0]["copies"],
                          r["strata"][0]["control_copies"]), ("21+", 2, 3))
        self.assertIn("Still running", r["note"])
        out = carrel("cora", "display", "report", str(did), json_out=False)
        self.assertEqual(out.code, 0, out)
        for text in ("Lift against before:    3.00x", "Control change:         0.50x",
                     "Net lift:               6.00x", "21+",
                     "Lift against control:   4.50x (against what similar copies predict)"):
            self.assertIn(text, out.stdout)

    def test_a_report_with_nothing_to_compare(self):
        did, _ = new_display(start=3, end=9)
        r = ok(carrel("clara", "display", "report", str(did)))
        self.assertEqual(r["copies"], 0)
        self.assertNotIn("lift_vs_before", r)
        self.assertNotIn("net_lift", r)
        self.assertIn("Planned", r["note"])
        out = carrel("clara", "display", "report", str(did), json_out=False)
        self.assertIn("Net lift:               n/a", out.stdout)


# ---------------------------------------------------------------- who may do what


class Permissions(unittest.TestCase):
    def test_roles_and_branches(self):
        # Clerks scan, librarians set up; a librarian of another branch may not
        # touch this branch's display; the coordinator may.
        refused(carrel("clara", "display", "add", "Clerk's own", "--place", "desk", "--from",
                       day(0), "--to", day(3)), "role")
        did, _ = new_display()
        refused(carrel("paul", "display", "edit", str(did), "--place", "elsewhere"), "branch")
        refused(carrel("paul", "display", "end", str(did)), "branch")
        refused(carrel("paul", "display", "add", "Not mine", "--place", "x", "--from", day(0),
                       "--to", day(1), "--branch", "DWN"), "branch")
        ok(carrel("cora", "display", "edit", str(did), "--note", "Checked by the coordinator"))
        refused(carrel("pia", "display", "scan", str(did), env.new_item()), "branch")
        # A copy of another branch, and a copy on another running display.
        refused(carrel("clara", "display", "scan", str(did), env.new_item(branch="PRK")),
                "not_owned_here")
        other, _ = new_display()
        busy = env.new_item()
        ok(carrel("clara", "display", "scan", str(other), busy))
        refused(carrel("clara", "display", "scan", str(did), busy), "on_display")
        refused(carrel("clara", "display", "scan", str(did), "31234999999999"), "item_not_found")
        # Anyone reads displays and their reports; an unknown display is not found.
        ok(carrel("pia", "display", "report", str(did)))
        refused(carrel("pia", "display", "show", "99999999"), "display")
        refused(carrel("pia", "display", "report", "99999999"), "display")
        refused(carrel("clara", "display", "scan", "99999999", env.new_item()), "display")
        # A copy gone from the collection does not go on a display.
        refused(carrel("clara", "display", "scan", str(did), env.new_item(status="withdrawn")),
                "item_status")
        # A curator must be staff.
        refused(carrel("libby", "display", "add", "Nobody's", "--place", "x", "--from", day(0),
                       "--to", day(1), "--curator", "nobody"), "staff")
        # The scans went on with the rest after a refusal, and said which failed.
        good = env.new_item()
        r = carrel("clara", "display", "scan", str(did), "31234999999999", good)
        self.assertEqual(r.code, 4, r)
        self.assertEqual([x.get("reason") for x in r.json], ["item_not_found", None])
        self.assertEqual(item(good)["display"].split(":")[0], "on display")

    def test_command_line_mistakes(self):
        for args in (["display", "add", "No place", "--from", day(0), "--to", day(1)],
                     ["display", "show", "x"], ["display", "show", "0"],
                     ["display", "scan"], ["display", "remove", "3"],
                     ["display", "end", "1", "--place", "x"], ["display", "list", "extra"]):
            r = carrel("libby", *args)
            self.assertEqual(r.code, 2, (args, r))


# ---------------------------------------------------------------- over the wire


def pb(*fields):
    return harness.pb_message(*fields)


class Wire(unittest.TestCase):
    def test_malformed_requests_are_refused_with_their_reason(self):
        did, _ = new_display()
        before = env.psql("SELECT count(*) FROM display") + "/" + env.psql(
            "SELECT count(*) FROM display_item")
        w = main.logged_in_wire(user="libby", password=PASSWORD)
        cases = [
            (REQ_SAVE, pb(), None, "field:display"),
            (REQ_SAVE, pb((1, pb((1, 0), (3, "x")))), None, "field:id"),
            (REQ_SAVE, pb((1, pb((3, "x"), (4, "y"))), (2, 1)), None, "field:id"),
            (REQ_SAVE, pb((1, pb((3, "p"), (4, "t" * 5000)))), None, "field:theme"),
            (REQ_SAVE, pb((1, pb((3, "p"), (4, "t"), (10, "n" * 9000)))), None, "field:note"),
            (REQ_ITEM_ADD, pb((1, did), (2, "31234")), None, "request_key"),
            (REQ_ITEM_ADD, pb((2, "31234")), str(uuid.uuid4()), "field:display_id"),
            (REQ_ITEM_ADD, pb((1, -5), (2, "31234")), str(uuid.uuid4()), "field:display_id"),
            (REQ_ITEM_ADD, pb((1, did)), str(uuid.uuid4()), "field:barcode"),
            (REQ_ITEM_ADD, pb((1, did), (2, "3" * 500)), str(uuid.uuid4()), "field:barcode"),
            (REQ_SHOW, pb(), None, "field:id"),
            (REQ_REPORT, pb((1, 0)), None, "field:id"),
        ]
        for req, body, key, reason in cases:
            r = w.call(req, body, key=key)
            self.assertEqual((r.status, r.reason), ("bad_request", reason), (req, reason, r))
        # Control characters never reach a handler.
        r = w.call(REQ_SAVE, pb((1, pb((3, "front\x1bwindow"), (4, "t")))))
        self.assertEqual(r.status, "bad_request", r)
        # An edit at an old version is refused; dates the wrong way round too.
        cur = ok(carrel("libby", "display", "show", str(did)))["display"]
        r = w.call(REQ_SAVE, pb((1, pb((1, did), (3, "moved"), (4, cur["theme"]),
                                       (6, cur["starts_on"]), (7, cur["ends_on"]),
                                       (11, cur["version"] + 5)))))
        self.assertEqual((r.status, r.reason), ("conflict", "stale_version"), r)
        r = w.call(REQ_SAVE, pb((1, pb((3, "p"), (4, "Backwards"), (6, day(5)), (7, day(1))))))
        self.assertEqual(r.status, "bad_request", r)
        self.assertEqual(w.call(REQ_PING).status, "ok")
        w.close()
        after = env.psql("SELECT count(*) FROM display") + "/" + env.psql(
            "SELECT count(*) FROM display_item")
        self.assertEqual(after, before)

    def test_a_retried_scan_applies_once(self):
        did, _ = new_display()
        copy = env.new_item()
        w = main.logged_in_wire(user="clara", password=PASSWORD)
        key = str(uuid.uuid4())
        body = pb((1, did), (2, copy))
        first = w.call(REQ_ITEM_ADD, body, key=key)
        self.assertEqual(first.status, "ok", first)
        # Taken off in between, the retry of the first scan still answers as it did.
        off = w.call(REQ_ITEM_ADD, pb((1, did), (2, copy), (3, 1)), key=str(uuid.uuid4()))
        self.assertEqual(off.status, "ok", off)
        again = w.call(REQ_ITEM_ADD, body, key=key)
        self.assertEqual(again.status, "ok", again)
        self.assertEqual(again.body(REQ_ITEM_ADD), first.body(REQ_ITEM_ADD))
        w.close()
        self.assertEqual(env.psql(
            "SELECT count(*) FROM display_item di JOIN item i ON i.id = di.item_id"
            " WHERE i.barcode = '%s'" % copy), "1")
        self.assertNotIn("display", item(copy))


if __name__ == "__main__":
    unittest.main()
