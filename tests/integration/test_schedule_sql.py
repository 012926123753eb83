#!/usr/bin/env python3
"""The staff schedule rules (sql/rules/schedule.sql), called directly in SQL as carreld calls
them.

No daemon and no client, as in test_stats_sql.py: each test opens one transaction on a
harness session, makes its people, desks and shifts in it, calls shift_save, schedule_gaps,
schedule_week, shift_change ... and rolls everything back. The tests that need commits
from several sessions (the races, the sick call's NOTIFY) commit their rows and remove
them at their end (CommittedTest); tearDownModule checks that nothing was left behind.

The library's time zone is America/New_York (seed settings). Downtown (DWN) is open
Monday-Thursday 10:00-20:00, Friday-Saturday 10:00-17:00; the other branches weekdays
10:00-18:00 and Saturday 10:00-14:00; all are closed on Sunday (sql/seed/branches.sql).
"""

import itertools
import json
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

env = None
db = None      # the session every test's transaction runs on
ids = {}       # branch code -> id; "staff", "workstation": the administrator's

lit = harness.sql_literal
_names = itertools.count(1)

MONDAY = "2027-03-01"    # a plain week: Monday 1 to Sunday 7 March 2027
SATURDAY = "2027-03-06"


def setUpModule():
    global env, db
    env, db = harness.start_rule_session(ScheduleTest, ids)


def tearDownModule():
    harness.stop_rule_session(env, db,
                              "SELECT (SELECT count(*) FROM shift)"
                              " + (SELECT count(*) FROM time_off)"
                              " + (SELECT count(*) FROM shift_swap)"
                              " + (SELECT count(*) FROM service_desk)"
                              " + (SELECT count(*) FROM desk_need)")


def unique_name(prefix="s"):
    return "%s%d-%d" % (prefix, os.getpid() % 10000, next(_names))


def person_sql(username, role="clerk", mic=False, max_hours=40, name=None):
    return ("INSERT INTO staff (username, display_name, role, password_hash, mic_eligible,"
            " max_week_hours) VALUES (%s, %s, %s, '$argon2id$not-a-login', %s, %d)"
            " RETURNING id" % (lit(username), lit(name or username.title()), lit(role),
                               lit(mic), max_hours))


def shift_doc(user, start, end, branch="DWN", desk=None, mic=False, **extra):
    shift = {"branch_code": branch, "start": start, "end": end, "mic": mic}
    if user:
        shift["username"] = user
    if desk:
        shift["desk_code"] = desk
    doc = {"shift": shift}
    for k, v in extra.items():
        if k in ("id", "note"):
            shift[k] = v
        else:
            doc[k] = v
    return doc


def save_sql(doc, scope=None, override_ok=True, staff=None):
    return ("SELECT * FROM shift_save(NULL::uuid, %d, %d, %s, %s, %s::jsonb)"
            % (staff or ids["staff"], ids["workstation"], lit(scope), lit(override_ok),
               lit(json.dumps(doc))))


def change_sql(staff, action, shift=None, to=None, with_shift=None, swap=None, scope=None,
               key=None):
    return ("SELECT * FROM shift_change(%s::uuid, %d, %d, %s, %s, %s, %s, %s, %s)"
            % (lit(key or str(uuid.uuid4())), staff, ids["workstation"], lit(scope), lit(shift),
               lit(action), lit(to), lit(with_shift), lit(swap)))


def time_off_sql(doc, staff=None, scope=None):
    return ("SELECT * FROM time_off_save(%d, %d, %s, %s::jsonb)"
            % (staff or ids["staff"], ids["workstation"], lit(scope), lit(json.dumps(doc))))


def desk_doc(branch, code, needs=(), name=None):
    return {"desk": {"branch_code": branch, "code": code, "name": name or code.title(),
                     "needs": list(needs)}}


class ScheduleTest(harness.TransactionTest):
    """One transaction per test, rolled back whatever happens (harness.TransactionTest)."""

    # ---- rows made in the transaction

    def person(self, username=None, branches=("DWN",), role="clerk", mic=False, max_hours=40,
               name=None):
        """A staff member working at branches; returns (id, username)."""
        username = username or unique_name()
        pid = int(self.q(person_sql(username, role, mic, max_hours, name)).splitlines()[0])
        for b in branches:
            self.q("INSERT INTO staff_branch (staff_id, branch_id) VALUES (%d, %d)"
                   % (pid, ids[b]))
        return pid, username

    def desk(self, branch, code, needs=(), scope=None):
        return self.rows("SELECT * FROM desk_save(%d, %d, %s, %s::jsonb)"
                         % (ids["staff"], ids["workstation"], lit(scope),
                            lit(json.dumps(desk_doc(branch, code, needs)))))

    def shift(self, user, start, end, branch="DWN", desk=None, mic=False, **extra):
        """One shift made; its row."""
        rows = self.rows(save_sql(shift_doc(user, start, end, branch, desk, mic, **extra)))
        self.assertEqual(len(rows), 1, rows)
        self.assertTrue(rows[0]["made"], rows)
        return rows[0]

    def refuse_shift(self, user, start, end, sqlstate, reason, branch="DWN", desk=None,
                     mic=False, scope=None, override_ok=True, **extra):
        return self.refused(save_sql(shift_doc(user, start, end, branch, desk, mic, **extra),
                                     scope, override_ok), sqlstate, reason)

    def gaps(self, branches=None, frm=MONDAY, to=None, kind=None):
        codes = "NULL" if branches is None else \
            "ARRAY[%s]::integer[]" % ",".join(str(ids[b]) for b in branches)
        rows = self.rows("SELECT * FROM schedule_gaps(%s, %s::date, %s::date)"
                         % (codes, lit(frm), lit(to or frm)))
        return [r for r in rows if kind is None or r["kind"] == kind]

    def week(self, branch="DWN", week=MONDAY):
        return self.rows("SELECT * FROM schedule_week(%s, %s)" % (lit(branch), lit(week)))

    def approve_time_off(self, user, start, end):
        row = self.one(time_off_sql({"time_off": {"username": user, "start": start,
                                                  "end": end, "reason": "holiday"}}))
        return self.one(time_off_sql({"time_off": {"id": row["id"]}, "action": "approve"}))

    # ---- every refusal of the "Staff schedules" block of common/reason.h

    def test_every_refusal_reason(self):
        _, ann = self.person(mic=False, max_hours=8)
        bob_id, bob = self.person()
        clerk_id, _ = self.person()
        self.desk("DWN", "circ")
        self.refuse_shift(ann, MONDAY + " 10:00", MONDAY + " 12:00", "CR404", "desk",
                          desk="nosuch")
        self.refused(save_sql({"shift": {"id": 999999999}, "remove": True}), "CR404", "shift")
        self.refused(time_off_sql({"time_off": {"id": 999999999}, "action": "approve"}),
                     "CR404", "time_off_entry")
        self.refused(change_sql(ids["staff"], "approve_swap", swap=999999999), "CR404", "swap")
        self.refuse_shift(ann, MONDAY + " 10:00", MONDAY + " 12:00", "CR422",
                          "not_mic_eligible", mic=True)
        self.refuse_shift(ann, MONDAY + " 10:00", MONDAY + " 12:00", "CR422", "not_at_branch",
                          branch="ALB")
        first = self.shift(ann, MONDAY + " 10:00", MONDAY + " 14:00", desk="circ")
        self.refuse_shift(ann, MONDAY + " 13:30", MONDAY + " 15:00", "CR409",
                          "overlapping_shift")
        self.refuse_shift(ann, "2027-03-02 10:00", "2027-03-02 15:00", "CR422", "max_hours")
        self.approve_time_off(ann, "2027-03-03 00:00", "2027-03-04 00:00")
        self.refuse_shift(ann, "2027-03-03 10:00", "2027-03-03 12:00", "CR422", "time_off")
        self.refused(change_sql(bob_id, "claim", shift=first["id"]), "CR409", "shift_taken")
        self.refused(change_sql(clerk_id, "offer", shift=first["id"], scope=ids["DWN"]),
                     "CR403", "not_yours")
        t = self.one(time_off_sql({"time_off": {"username": ann, "start": MONDAY + " 09:00",
                                                "end": MONDAY + " 18:00"}}))
        e = self.refused(time_off_sql({"time_off": {"id": t["id"]}, "action": "approve"}),
                         "CR409", "shifts_scheduled")
        self.assertIn("DWN %s 10:00-14:00" % MONDAY, e.message)
        bobs = self.shift(bob, "2027-03-02 10:00", "2027-03-02 14:00")
        swap = self.swap_row(self.rows(change_sql(bob_id, "swap", shift=bobs["id"], to=ann)))
        self.rows(change_sql(ids["staff"], "deny_swap", swap=swap["swap_request_id"]))
        self.refused(change_sql(ids["staff"], "approve_swap", swap=swap["swap_request_id"]),
                     "CR409", "swap_decided")

    def swap_row(self, rows):
        swaps = [r for r in rows if r["kind"] == "swap"]
        self.assertEqual(len(swaps), 1, rows)
        return swaps[0]

    # ---- shifts

    def test_shift_rows_and_list(self):
        _, ann = self.person(name="Ann Archer")
        self.desk("DWN", "ref")
        row = self.shift(ann, MONDAY + " 10:00", MONDAY + " 14:00", desk="ref", note="desk A")
        self.assertEqual((row["username"], row["staff_name"], row["branch_code"],
                          row["desk_code"], row["start"], row["end"], row["mic"],
                          row["status"], row["note"], row["swap_id"]),
                         (ann, "Ann Archer", "DWN", "ref", MONDAY + " 10:00",
                          MONDAY + " 14:00", False, "assigned", "desk A", None))
        open_ = self.shift(None, MONDAY + " 14:00", MONDAY + " 18:00")
        self.assertEqual((open_["status"], open_["username"], open_["desk_code"]),
                         ("open", None, None))
        listed = self.rows("SELECT * FROM shift_list('DWN', NULL, %s, %s, false)"
                           % (lit(MONDAY), lit(MONDAY)))
        self.assertEqual([r["id"] for r in listed], [row["id"], open_["id"]])
        only_open = self.rows("SELECT * FROM shift_list(NULL, NULL, %s, NULL, true)"
                              % lit(MONDAY))
        self.assertEqual([r["id"] for r in only_open], [open_["id"]])
        mine = self.rows("SELECT * FROM shift_list(NULL, %s, %s, NULL, false)"
                         % (lit(ann), lit(MONDAY)))
        self.assertEqual([r["id"] for r in mine], [row["id"]])
        # Change it: a later start; then remove it.
        changed = self.shift(ann, MONDAY + " 11:00", MONDAY + " 14:00", desk="ref",
                             id=row["id"])
        self.assertEqual((changed["id"], changed["start"]), (row["id"], MONDAY + " 11:00"))
        self.rows(save_sql({"shift": {"id": row["id"]}, "remove": True}))
        self.assertEqual(self.q("SELECT count(*) FROM shift WHERE id = %d" % row["id"]), "0")
        self.assertEqual(self.q("SELECT array_agg(action ORDER BY id) FROM admin_audit"
                                " WHERE target = 'shift/%d'" % row["id"]),
                         "{shift_save,shift_save,shift_remove}")

    def test_shift_input_refused(self):
        _, ann = self.person()
        self.refuse_shift(ann, MONDAY + " 10:00", MONDAY + " 10:00", "CR400", "field:end")
        self.refuse_shift(ann, MONDAY + " 10:00", MONDAY + " 10:10", "CR400", "field:end")
        self.refuse_shift(ann, MONDAY + " 01:00", "2027-03-01 17:30", "CR400", "field:end")
        self.refuse_shift(ann, "tomorrow", MONDAY + " 12:00", "CR400", "field:start")
        self.refuse_shift(ann, MONDAY + " 10:00", MONDAY + " 12:00", "CR400",
                          "field:branch_code", branch="XXX")
        self.refuse_shift("nobody-here", MONDAY + " 10:00", MONDAY + " 12:00", "CR404",
                          "staff")
        self.refuse_shift(ann, MONDAY + " 10:00", MONDAY + " 12:00", "CR403", "branch",
                          scope=ids["ALB"])
        self.refuse_shift(ann, MONDAY + " 10:00", MONDAY + " 12:00", "CR400", "field:repeat",
                          repeat="daily")
        self.refuse_shift(ann, MONDAY + " 10:00", MONDAY + " 12:00", "CR400", "field:note",
                          note="x" * 201)
        self.refuse_shift(ann, MONDAY + " 10:00", MONDAY + " 12:00", "CR400", "field:until",
                          repeat="weekly", until="2027-12-31")
        self.refuse_shift(ann, MONDAY + " 10:00", MONDAY + " 12:00", "CR403", "override",
                          override=True, override_ok=False)
        # The day the clocks go forward has no 02:30.
        self.refuse_shift(ann, "2027-03-14 02:30", "2027-03-14 06:00", "CR400", "field:start",
                          branch="DWN")

    def test_repeat_weekly_reports_conflicts_and_keeps_local_time(self):
        _, ann = self.person(max_hours=0)
        self.shift(ann, "2026-11-09 09:00", "2026-11-09 12:00")
        rows = self.rows(save_sql(shift_doc(ann, "2026-10-26 10:00", "2026-10-26 14:00",
                                            repeat="weekly", until="2026-11-16")))
        made = [r for r in rows if r["made"]]
        refused = [r for r in rows if not r["made"]]
        # 26 Oct (EDT), 2 Nov (EST after the change), 16 Nov; 9 Nov overlaps.
        self.assertEqual([r["start"] for r in made],
                         ["2026-10-26 10:00", "2026-11-02 10:00", "2026-11-16 10:00"])
        self.assertEqual([(r["start"], r["reason"]) for r in refused],
                         [("2026-11-09 10:00", "overlapping_shift")])
        self.assertIn("already has a shift", refused[0]["message"])
        # Four real hours each, across the change.
        self.assertEqual(self.q("SELECT DISTINCT (extract(epoch FROM upper(during) -"
                                " lower(during)) / 3600)::integer FROM shift WHERE id IN (%s)"
                                % ",".join(str(r["id"]) for r in made)), "4")

    def test_max_hours_per_iso_week_and_override(self):
        _, ann = self.person(max_hours=20)
        for day in ("2027-03-01", "2027-03-02"):
            self.shift(ann, day + " 10:00", day + " 18:00")
        e = self.refuse_shift(ann, "2027-03-04 10:00", "2027-03-04 15:00", "CR422",
                              "max_hours")
        self.assertIn("21", e.message)
        # Exactly the limit is allowed; the next ISO week (from Monday 8 March) starts at 0.
        self.shift(ann, "2027-03-04 10:00", "2027-03-04 14:00")
        self.shift(ann, "2027-03-08 08:00", "2027-03-08 23:00")
        # The Sunday before belongs to the week before.
        self.shift(ann, "2027-02-28 08:00", "2027-02-28 23:00")
        # override (allowed) goes beyond; without the right it is refused.
        self.refuse_shift(ann, "2027-03-05 10:00", "2027-03-05 12:00", "CR403", "override",
                          override=True, override_ok=False)
        self.shift(ann, "2027-03-05 10:00", "2027-03-05 12:00", override=True)
        # 0 = no limit.
        _, bob = self.person(max_hours=0)
        for day in ("2027-03-01", "2027-03-02", "2027-03-03", "2027-03-04", "2027-03-05",
                    "2027-03-06"):
            self.shift(bob, day + " 06:00", day + " 20:00")
        # staff_schedule_set changes the limit; out of range refused.
        row = self.one("SELECT * FROM staff_schedule_set(%d, %d, NULL, %s, NULL, 30)"
                       % (ids["staff"], ids["workstation"], lit(ann)))
        self.assertEqual((row["max_week_hours"], row["mic_eligible"], row["branches"]),
                         (30, False, ["DWN"]))
        self.refused("SELECT * FROM staff_schedule_set(%d, %d, NULL, %s, NULL, 81)"
                     % (ids["staff"], ids["workstation"], lit(ann)),
                     "CR400", "field:max_week_hours")
        self.refused("SELECT * FROM staff_schedule_set(%d, %d, %d, %s, true, NULL)"
                     % (ids["staff"], ids["workstation"], ids["ALB"], lit(ann)),
                     "CR403", "branch")

    def test_mic_eligibility(self):
        _, ann = self.person()
        self.refuse_shift(ann, MONDAY + " 10:00", MONDAY + " 14:00", "CR422",
                          "not_mic_eligible", mic=True)
        self.one("SELECT * FROM staff_schedule_set(%d, %d, %d, %s, true, NULL)"
                 % (ids["staff"], ids["workstation"], ids["DWN"], lit(ann)))
        row = self.shift(ann, MONDAY + " 10:00", MONDAY + " 14:00", mic=True)
        self.assertTrue(row["mic"])

    def test_staff_at_two_branches(self):
        _, ann = self.person(branches=("DWN", "ALB"), max_hours=12)
        self.shift(ann, MONDAY + " 10:00", MONDAY + " 14:00", branch="DWN")
        self.shift(ann, MONDAY + " 15:00", MONDAY + " 18:00", branch="ALB")
        self.refuse_shift(ann, MONDAY + " 13:00", MONDAY + " 16:00", "CR409",
                          "overlapping_shift", branch="ALB")
        self.refuse_shift(ann, "2027-03-02 10:00", "2027-03-02 12:00", "CR422",
                          "not_at_branch", branch="BAR")
        # Hours count across branches: 7 + 6 > 12.
        self.refuse_shift(ann, "2027-03-02 10:00", "2027-03-02 16:00", "CR422", "max_hours",
                          branch="DWN")
        # A coordinator has no branch rows and works anywhere.
        _, coord = self.person(branches=(), role="coordinator")
        self.shift(coord, MONDAY + " 10:00", MONDAY + " 14:00", branch="RPK")
        self.shift(coord, "2027-03-02 10:00", "2027-03-02 14:00", branch="BAR")

    def test_time_off(self):
        ann_id, ann = self.person()
        clerk_id, _ = self.person()
        mgr_id, _ = self.person(role="branch_manager")
        # Requested for oneself; another clerk may not ask for ann.
        t = self.one(time_off_sql({"time_off": {"start": "2027-03-02 00:00",
                                                "end": "2027-03-04 00:00", "reason": "trip"}},
                                  staff=ann_id, scope=ids["DWN"]))
        self.assertEqual((t["username"], t["status"], t["start"], t["end"], t["reason"]),
                         (ann, "requested", "2027-03-02 00:00", "2027-03-04 00:00", "trip"))
        self.refused(time_off_sql({"time_off": {"username": ann, "start": "2027-03-08 00:00",
                                                "end": "2027-03-09 00:00"}},
                                  staff=clerk_id, scope=ids["DWN"]), "CR403", "not_yours")
        # Requested time off does not block a shift; approved does.
        shift = self.shift(ann, "2027-03-02 10:00", "2027-03-02 12:00")
        self.refused(time_off_sql({"time_off": {"id": t["id"]}, "action": "approve"},
                                  staff=clerk_id, scope=ids["DWN"]), "CR403", "role")
        self.refused(time_off_sql({"time_off": {"id": t["id"]}, "action": "approve"},
                                  staff=mgr_id, scope=ids["ALB"]), "CR403", "branch")
        e = self.refused(time_off_sql({"time_off": {"id": t["id"]}, "action": "approve"},
                                      staff=mgr_id, scope=ids["DWN"]),
                         "CR409", "shifts_scheduled")
        self.assertIn("2027-03-02 10:00-12:00", e.message)
        self.rows(save_sql({"shift": {"id": shift["id"]}, "remove": True}))
        ok = self.one(time_off_sql({"time_off": {"id": t["id"]}, "action": "approve"},
                                   staff=mgr_id, scope=ids["DWN"]))
        self.assertEqual(ok["status"], "approved")
        self.assertIsNotNone(ok["decided_by"])
        # A shift inside it, or overlapping it, is refused.
        self.refuse_shift(ann, "2027-03-03 10:00", "2027-03-03 12:00", "CR422", "time_off")
        self.refuse_shift(ann, "2027-03-01 22:00", "2027-03-02 02:00", "CR422", "time_off")
        self.refused(time_off_sql({"time_off": {"id": t["id"]}, "action": "deny"},
                                  staff=mgr_id, scope=ids["DWN"]), "CR400", "field:action")
        listed = self.rows("SELECT * FROM time_off_list('DWN', NULL, '2027-03-01',"
                           " '2027-03-31', false)")
        self.assertEqual([r["id"] for r in listed], [t["id"]])
        self.assertEqual(self.rows("SELECT * FROM time_off_list(NULL, %s, '2027-03-01',"
                                   " '2027-03-31', true)" % lit(ann)), [])
        # The person withdraws it; then the shift is possible again.
        w = self.one(time_off_sql({"time_off": {"id": t["id"]}, "action": "withdraw"},
                                  staff=ann_id, scope=ids["DWN"]))
        self.assertEqual(w["status"], "withdrawn")
        self.shift(ann, "2027-03-03 10:00", "2027-03-03 12:00")

    # ---- desks, needs, the grid and the gaps

    def test_desk_save_and_list(self):
        rows = self.desk("DWN", "circ", [{"staff": 2},
                                         {"weekdays": [6], "from": "12:00", "staff": 3}])
        self.assertEqual([(r["code"], r["need_weekdays"], r["need_from"], r["need_to"],
                           r["need_staff"]) for r in rows],
                         [("circ", None, None, None, 2), ("circ", [6], "12:00", None, 3)])
        desk_id = rows[0]["id"]
        # Needs are replaced as a whole; a desk without needs has one row of NULLs.
        rows = self.rows("SELECT * FROM desk_save(%d, %d, NULL, %s::jsonb)"
                         % (ids["staff"], ids["workstation"],
                            lit(json.dumps({"desk": {"id": desk_id, "name": "Circulation",
                                                     "active": False}}))))
        self.assertEqual([(r["id"], r["name"], r["active"], r["need_staff"]) for r in rows],
                         [(desk_id, "Circulation", False, None)])
        self.desk("ALB", "circ")
        listed = self.rows("SELECT * FROM desk_list('')")
        self.assertEqual([(r["branch_code"], r["code"]) for r in listed],
                         [("ALB", "circ"), ("DWN", "circ")])
        self.assertEqual(len(self.rows("SELECT * FROM desk_list('ALB')")), 1)
        save = "SELECT * FROM desk_save(%d, %d, %s, %s::jsonb)"
        for doc, scope, state, reason in [
                (desk_doc("DWN", "circ"), None, "CR409", "duplicate"),
                (desk_doc("DWN", "Bad Code"), None, "CR400", "field:code"),
                (desk_doc("DWN", "kids"), ids["ALB"], "CR403", "branch"),
                (desk_doc("NOPE", "kids"), None, "CR400", "field:branch_code"),
                (desk_doc("DWN", "kids", [{"weekdays": [8], "staff": 1}]), None, "CR400",
                 "field:needs"),
                (desk_doc("DWN", "kids", [{"from": "14:00", "to": "12:00", "staff": 1}]),
                 None, "CR400", "field:needs"),
                (desk_doc("DWN", "kids", [{"from": "25:00", "staff": 1}]), None, "CR400",
                 "field:needs"),
                (desk_doc("DWN", "kids", [{"staff": 51}]), None, "CR400", "field:needs")]:
            self.refused(save % (ids["staff"], ids["workstation"], lit(scope),
                                 lit(json.dumps(doc))), state, reason)

    def test_need_is_max_over_overlapping_rules(self):
        """ "2 from opening to close" + "3 on Saturday from 12:00" = 3 on Saturday
        afternoons, 2 otherwise."""
        self.desk("DWN", "circ", [{"staff": 2}, {"weekdays": [6], "from": "12:00", "staff": 3}])
        cells = {(c["day"], c["time"]): c["needed"] for c in self.week()
                 if c["desk_code"] == "circ"}
        self.assertEqual(cells[(SATURDAY, "10:00")], 2)
        self.assertEqual(cells[(SATURDAY, "11:30")], 2)
        self.assertEqual(cells[(SATURDAY, "12:00")], 3)
        self.assertEqual(cells[(SATURDAY, "16:30")], 3)
        self.assertEqual(cells[(MONDAY, "12:00")], 2)
        self.assertEqual(cells[(MONDAY, "19:30")], 2)
        gaps = self.gaps(["DWN"], SATURDAY, kind="under_minimum")
        self.assertEqual([(g["start"], g["end"], g["needed"], g["scheduled"], g["text"])
                          for g in gaps],
                         [("10:00", "12:00", 2, 0, "circ 10:00-12:00: 0 of 2"),
                          ("12:00", "17:00", 3, 0, "circ 12:00-17:00: 0 of 3")])

    def test_gaps_under_minimum_no_mic_merged(self):
        self.desk("DWN", "circ", [{"staff": 2}])
        self.desk("DWN", "ref", [{"staff": 1, "from": "12:00", "to": "16:00"}])
        _, ann = self.person(mic=True)
        _, bob = self.person()
        _, cat = self.person()
        self.shift(ann, MONDAY + " 10:00", MONDAY + " 15:00", desk="circ", mic=True)
        self.shift(bob, MONDAY + " 10:00", MONDAY + " 14:00", desk="circ")
        self.shift(cat, MONDAY + " 14:00", MONDAY + " 20:00", desk="circ")
        # An open shift and a shift starting mid-half-hour cover nothing.
        self.shift(None, MONDAY + " 12:00", MONDAY + " 16:00", desk="ref")
        _, dan = self.person()
        self.shift(dan, MONDAY + " 12:15", MONDAY + " 16:00", desk="ref")
        gaps = self.gaps(["DWN"])
        self.assertEqual([(g["branch_code"], g["day"], g["start"], g["end"], g["kind"],
                           g["desk_code"], g["needed"], g["scheduled"]) for g in gaps],
                         [("DWN", MONDAY, "12:00", "12:30", "under_minimum", "ref", 1, 0),
                          ("DWN", MONDAY, "15:00", "20:00", "under_minimum", "circ", 2, 1),
                          ("DWN", MONDAY, "15:00", "20:00", "no_mic", None, 1, 0)])
        self.assertEqual(gaps[2]["text"], "MIC 15:00-20:00: no manager in charge")
        self.assertIsNone(gaps[0]["program_session_id"])
        # All branches by default: the others have no MIC all day.
        everything = self.gaps(None)
        self.assertEqual(sorted({g["branch_code"] for g in everything}),
                         sorted(b for b in ids if b.isupper()))
        alb = [g for g in everything if g["branch_code"] == "ALB"]
        self.assertEqual([(g["start"], g["end"], g["kind"]) for g in alb],
                         [("10:00", "18:00", "no_mic")])
        # Ordered by branch, day, start, desk.
        keys = [(g["branch_code"], g["day"], g["start"]) for g in everything]
        self.assertEqual(keys, sorted(keys))
        self.refused("SELECT * FROM schedule_gaps(NULL, '2027-01-01', '2027-04-04')",
                     "CR400", "field:to")

    def test_closed_days_have_no_gaps(self):
        self.desk("DWN", "circ", [{"staff": 2}])
        self.q("INSERT INTO branch_closed (branch_id, day, reason) VALUES (%d, '2027-03-02',"
               " 'snow')" % ids["DWN"])
        gaps = self.gaps(["DWN"], MONDAY, "2027-03-07")
        days = sorted({g["day"] for g in gaps})
        # Tuesday closed, Sunday no hours.
        self.assertEqual(days, ["2027-03-01", "2027-03-03", "2027-03-04", "2027-03-05",
                                "2027-03-06"])
        self.assertNotIn("2027-03-02", {c["day"] for c in self.week()})

    def test_schedule_week_grid(self):
        self.desk("DWN", "ref", [{"staff": 1}])
        self.desk("DWN", "circ", [{"staff": 2}])
        _, ann = self.person(name="Ann", mic=True)
        _, bob = self.person(name="Bob")
        _, cy = self.person(name="Cy")
        self.shift(ann, MONDAY + " 10:00", MONDAY + " 12:00", desk="circ", mic=True)
        self.shift(bob, MONDAY + " 10:00", MONDAY + " 11:15", desk="circ")
        self.shift(cy, MONDAY + " 11:00", MONDAY + " 13:00")  # off desk
        cells = self.week(week="2027-03-04")  # any day of the week
        self.assertEqual(self.q("SELECT schedule_week_start('2027-03-04')"), MONDAY)
        monday_10 = [(c["desk_code"], c["needed"], c["names"]) for c in cells
                     if c["day"] == MONDAY and c["time"] == "10:00"]
        self.assertEqual(monday_10, [("circ", 2, ["Ann", "Bob"]), ("ref", 1, []),
                                     ("MIC", 1, ["Ann"]), ("", 0, [])])
        at_1030 = {c["desk_code"]: c["names"] for c in cells
                   if c["day"] == MONDAY and c["time"] == "10:30"}
        self.assertEqual(at_1030["circ"], ["Ann", "Bob"])
        at_11 = {c["desk_code"]: c["names"] for c in cells
                 if c["day"] == MONDAY and c["time"] == "11:00"}
        self.assertEqual(at_11, {"circ": ["Ann"], "ref": [], "MIC": ["Ann"], "": ["Cy"]})
        # Every open half hour, four rows each: Mon-Thu 20, Fri-Sat 14 half hours.
        self.assertEqual(len(cells), (4 * 20 + 2 * 14) * 4)
        self.assertEqual([c["time"] for c in cells if c["day"] == SATURDAY
                          and c["desk_code"] == "MIC"][-1], "16:30")

    # ---- sick call, claim, offer, swap

    def test_sick_call_in_a_transaction(self):
        self.desk("DWN", "circ", [{"staff": 1}])
        ann_id, ann = self.person(branches=("DWN", "ALB"), name="Ann Smith", mic=True)
        _, bob = self.person(mic=True)
        a = self.shift(ann, MONDAY + " 10:00", MONDAY + " 14:00", desk="circ", mic=True)
        b = self.shift(ann, MONDAY + " 15:00", MONDAY + " 18:00", branch="ALB")
        self.shift(bob, MONDAY + " 14:00", MONDAY + " 20:00", desk="circ", mic=True)
        other_day = self.shift(ann, "2027-03-02 10:00", "2027-03-02 14:00")
        key = str(uuid.uuid4())
        sql = ("SELECT * FROM schedule_absent(%s::uuid, %d, %d, NULL, %s, %s, 'flu')"
               % (lit(key), ids["staff"], ids["workstation"], lit(ann), lit(MONDAY)))
        rows = self.rows(sql)
        opened = [r for r in rows if r["kind"] == "opened"]
        self.assertEqual([(r["id"], r["status"], r["username"], r["note"]) for r in opened],
                         [(a["id"], "open", None, "sick call: Ann Smith"),
                          (b["id"], "open", None, "sick call: Ann Smith")])
        gaps = [(r["gap_branch_code"], r["gap_start"], r["gap_end"], r["gap_kind"],
                 r["gap_desk_code"]) for r in rows if r["kind"] == "gap"]
        self.assertEqual(gaps, [("ALB", "10:00", "18:00", "no_mic", None),
                                ("DWN", "10:00", "14:00", "under_minimum", "circ"),
                                ("DWN", "10:00", "14:00", "no_mic", None)])
        self.assertEqual(self.q("SELECT staff_id FROM shift WHERE id = %d" % other_day["id"]),
                         str(ann_id))
        # A retry with the same key returns the stored answer and changes nothing.
        self.assertEqual(self.rows(sql), rows)
        self.refused("SELECT * FROM schedule_absent(%s::uuid, %d, %d, %d, %s, %s, '')"
                     % (lit(str(uuid.uuid4())), ids["staff"], ids["workstation"], ids["BAR"],
                        lit(ann), lit(MONDAY)), "CR403", "branch")

    def test_claim_and_offer(self):
        mgr_id, _ = self.person(role="branch_manager")
        alb_mgr_id, _ = self.person(role="branch_manager", branches=("ALB",))
        ann_id, ann = self.person()
        bob_id, bob = self.person()
        far_id, _ = self.person(branches=("ALB",))
        mic_shift = self.shift(None, MONDAY + " 10:00", MONDAY + " 14:00", mic=True)
        self.refused(change_sql(bob_id, "claim", shift=mic_shift["id"]), "CR422",
                     "not_mic_eligible")
        plain = self.shift(None, MONDAY + " 10:00", MONDAY + " 14:00")
        self.refused(change_sql(far_id, "claim", shift=plain["id"]), "CR422", "not_at_branch")
        self.shift(ann, MONDAY + " 13:00", MONDAY + " 15:00")
        self.refused(change_sql(ann_id, "claim", shift=plain["id"]), "CR409",
                     "overlapping_shift")
        rows = self.rows(change_sql(bob_id, "claim", shift=plain["id"]))
        self.assertEqual([(r["kind"], r["id"], r["username"], r["status"]) for r in rows],
                         [("shift", plain["id"], bob, "assigned")])
        # Offer: the owner, or a manager of the branch; not another clerk or branch.
        self.refused(change_sql(ann_id, "offer", shift=plain["id"], scope=ids["DWN"]),
                     "CR403", "not_yours")
        self.refused(change_sql(alb_mgr_id, "offer", shift=plain["id"], scope=ids["ALB"]),
                     "CR403", "not_yours")
        rows = self.rows(change_sql(bob_id, "offer", shift=plain["id"], scope=ids["DWN"]))
        self.assertEqual((rows[0]["status"], rows[0]["username"]), ("offered", bob))
        self.refused(change_sql(bob_id, "offer", shift=plain["id"]), "CR409", "duplicate")
        self.rows(change_sql(bob_id, "claim", shift=plain["id"]))  # takes the offer back
        self.assertEqual(self.one("SELECT * FROM shift_rows(ARRAY[%d])" % plain["id"])
                         ["status"], "assigned")
        rows = self.rows(change_sql(mgr_id, "offer", shift=plain["id"], scope=ids["DWN"]))
        self.assertEqual(rows[0]["status"], "open")
        self.refused(change_sql(bob_id, "offer", shift=plain["id"]), "CR409", "shift_taken")
        self.refused(change_sql(bob_id, "dance", shift=plain["id"]), "CR400", "field:action")
        self.refused(change_sql(bob_id, "claim", shift=987654321), "CR404", "shift")

    def test_swap_simultaneous_shifts_approved(self):
        """ann and bob both work 10-14 on Monday (ann at circ, bob at ref): exchanging them
        passes through a moment where one person has both, which the deferred constraint
        allows; all rules are checked for both."""
        self.desk("DWN", "circ")
        self.desk("DWN", "ref")
        mgr_id, mgr = self.person(role="branch_manager")
        ann_id, ann = self.person()
        bob_id, bob = self.person()
        a = self.shift(ann, MONDAY + " 10:00", MONDAY + " 14:00", desk="circ")
        b = self.shift(bob, MONDAY + " 10:00", MONDAY + " 14:00", desk="ref")
        self.refused(change_sql(bob_id, "swap", shift=a["id"], to=bob), "CR403", "not_yours")
        self.refused(change_sql(ann_id, "swap", shift=a["id"], to=ann), "CR400",
                     "field:to_username")
        self.refused(change_sql(ann_id, "swap", shift=a["id"], to=bob, with_shift=a["id"]),
                     "CR400", "field:with_shift_id")
        swap = self.swap_row(self.rows(change_sql(ann_id, "swap", shift=a["id"], to=bob,
                                                  with_shift=b["id"])))
        self.assertEqual((swap["id"], swap["swap_status"], swap["swap_to"],
                          swap["swap_requested_by"], swap["swap_with_shift"], swap["swap_id"]),
                         (a["id"], "pending", bob, ann, b["id"], swap["swap_request_id"]))
        self.refused(change_sql(ann_id, "swap", shift=a["id"], to=bob), "CR409", "duplicate")
        listed = self.rows("SELECT * FROM swap_list('DWN', true)")
        self.assertEqual([r["swap_request_id"] for r in listed], [swap["swap_request_id"]])
        self.refused(change_sql(ann_id, "approve_swap", swap=swap["swap_request_id"],
                                scope=ids["DWN"]), "CR403", "role")
        self.refused(change_sql(mgr_id, "approve_swap", swap=swap["swap_request_id"],
                                scope=ids["ALB"]), "CR403", "branch")
        rows = self.rows(change_sql(mgr_id, "approve_swap", swap=swap["swap_request_id"],
                                    scope=ids["DWN"]))
        shifts = {r["id"]: r["username"] for r in rows if r["kind"] == "shift"}
        self.assertEqual(shifts, {a["id"]: bob, b["id"]: ann})
        done = self.swap_row(rows)
        self.assertEqual((done["swap_status"], done["swap_decided_by"]), ("approved", mgr))
        self.assertEqual(self.rows("SELECT * FROM swap_list('DWN', true)"), [])

    def test_swap_refused_by_rules_and_denied(self):
        mgr_id, _ = self.person(role="branch_manager")
        ann_id, ann = self.person(mic=True)
        bob_id, bob = self.person(mic=False)
        a = self.shift(ann, MONDAY + " 10:00", MONDAY + " 14:00", mic=True)
        swap = self.swap_row(self.rows(change_sql(ann_id, "swap", shift=a["id"], to=bob)))
        self.refused(change_sql(mgr_id, "approve_swap", swap=swap["swap_request_id"],
                                scope=ids["DWN"]), "CR422", "not_mic_eligible")
        self.assertEqual(self.q("SELECT staff_id FROM shift WHERE id = %d" % a["id"]),
                         str(ann_id))
        rows = self.rows(change_sql(mgr_id, "deny_swap", swap=swap["swap_request_id"],
                                    scope=ids["DWN"]))
        self.assertEqual(self.swap_row(rows)["swap_status"], "denied")
        self.refused(change_sql(mgr_id, "deny_swap", swap=swap["swap_request_id"],
                                scope=ids["DWN"]), "CR409", "swap_decided")
        # Giving a shift (no exchange) to someone who has a shift then.
        b = self.shift(bob, MONDAY + " 12:00", MONDAY + " 16:00")
        c = self.shift(ann, "2027-03-02 10:00", "2027-03-02 14:00")
        del b
        swap = self.swap_row(self.rows(change_sql(ann_id, "swap", shift=c["id"], to=bob)))
        rows = self.rows(change_sql(mgr_id, "approve_swap", swap=swap["swap_request_id"]))
        self.assertEqual([r["username"] for r in rows if r["kind"] == "shift"], [bob])

    def test_keyed_change_retry(self):
        ann_id, _ = self.person()
        s = self.shift(None, MONDAY + " 10:00", MONDAY + " 14:00")
        key = str(uuid.uuid4())
        first = self.rows(change_sql(ann_id, "claim", shift=s["id"], key=key))
        again = self.rows(change_sql(ann_id, "claim", shift=s["id"], key=key))
        self.assertEqual(first, again)
        bob_id, _ = self.person()
        self.refused(change_sql(bob_id, "claim", shift=s["id"], key=key), "CR409",
                     "request_key_reused")

    def test_swap_across_branches_needs_both(self):
        """Review 11 #2: approving a swap changes hands at both shifts' branches, so a
        branch manager approves only when both are theirs; denying stays theirs."""
        dwn_mgr, _ = self.person(role="branch_manager")
        ann_id, ann = self.person(branches=("DWN", "ALB"))
        bob_id, bob = self.person(branches=("DWN", "ALB"))
        a = self.shift(ann, MONDAY + " 10:00", MONDAY + " 14:00")
        b = self.shift(bob, "2027-03-02 10:00", "2027-03-02 14:00", branch="ALB")
        swap = self.swap_row(self.rows(change_sql(ann_id, "swap", shift=a["id"], to=bob,
                                                  with_shift=b["id"])))
        self.refused(change_sql(dwn_mgr, "approve_swap", swap=swap["swap_request_id"],
                                scope=ids["DWN"]), "CR403", "branch")
        self.assertEqual(self.q("SELECT staff_id FROM shift WHERE id = %d" % b["id"]),
                         str(bob_id))
        # The coordinator (no scope) approves it.
        rows = self.rows(change_sql(ids["staff"], "approve_swap",
                                    swap=swap["swap_request_id"]))
        self.assertEqual({r["id"]: r["username"] for r in rows if r["kind"] == "shift"},
                         {a["id"]: bob, b["id"]: ann})
        # Denying is the manager of the swap's shift's branch.
        c = self.shift(ann, "2027-03-03 10:00", "2027-03-03 14:00")
        d = self.shift(bob, "2027-03-04 10:00", "2027-03-04 14:00", branch="ALB")
        swap = self.swap_row(self.rows(change_sql(ann_id, "swap", shift=c["id"], to=bob,
                                                  with_shift=d["id"])))
        rows = self.rows(change_sql(dwn_mgr, "deny_swap", swap=swap["swap_request_id"],
                                    scope=ids["DWN"]))
        self.assertEqual(self.swap_row(rows)["swap_status"], "denied")

    def test_sick_call_keeps_worked_time(self):
        """Review 11 #3: a sick call today leaves a shift already ended as it was, splits
        one under way at the current minute (the worked part stays the person's, the rest
        is a new open shift), and a branch manager opens only their branch's shifts."""
        ann_id, ann = self.person(branches=("DWN", "ALB"), name="Ann Early")
        cut = self.q("SELECT date_trunc('minute', now())")
        ins = ("INSERT INTO shift (staff_id, branch_id, during, mic, note) VALUES"
               " (%d, %d, tstzrange(%s::timestamptz + interval '%d minutes',"
               " %s::timestamptz + interval '%d minutes'), false, 'early') RETURNING id")
        ended = int(self.q(ins % (ann_id, ids["DWN"], lit(cut), -50, lit(cut), -35))
                    .splitlines()[0])
        under_way = int(self.q(ins % (ann_id, ids["DWN"], lit(cut), -30, lit(cut), 60))
                        .splitlines()[0])
        at_alb = int(self.q(ins % (ann_id, ids["ALB"], lit(cut), 70, lit(cut), 130))
                     .splitlines()[0])
        mgr_id, _ = self.person(role="branch_manager")
        rows = self.rows("SELECT * FROM schedule_absent(%s::uuid, %d, %d, %d, %s, NULL, 'flu')"
                         % (lit(str(uuid.uuid4())), mgr_id, ids["workstation"], ids["DWN"],
                            lit(ann)))
        opened = [r for r in rows if r["kind"] == "opened"]
        self.assertEqual(len(opened), 1, rows)
        self.assertNotIn(opened[0]["id"], (ended, under_way, at_alb))
        self.assertEqual((opened[0]["status"], opened[0]["note"], opened[0]["branch_code"]),
                         ("open", "sick call: Ann Early", "DWN"))
        self.assertEqual(self.q("SELECT lower(during) = %s::timestamptz"
                                " AND upper(during) = %s::timestamptz + interval '60 minutes'"
                                " FROM shift WHERE id = %d"
                                % (lit(cut), lit(cut), opened[0]["id"])), "t")
        # The worked half hour stays Ann's; the ended shift and the ALB one untouched.
        self.assertEqual(self.q("SELECT staff_id = %d AND upper(during) = %s::timestamptz"
                                " AND note = 'early' FROM shift WHERE id = %d"
                                % (ann_id, lit(cut), under_way)), "t")
        self.assertEqual(self.q("SELECT staff_id = %d AND note = 'early' FROM shift"
                                " WHERE id = %d" % (ann_id, ended)), "t")
        self.assertEqual(self.q("SELECT staff_id FROM shift WHERE id = %d" % at_alb),
                         str(ann_id))

    def test_offered_shift_stays_covered_until_claimed(self):
        """Review 11 #6: an owner's offer keeps the shift (and the desk's coverage) theirs
        until someone claims it; open_only lists it."""
        self.desk("DWN", "circ", [{"staff": 1}])
        ann_id, ann = self.person(mic=True)
        bob_id, bob = self.person()
        s = self.shift(ann, MONDAY + " 10:00", MONDAY + " 20:00", desk="circ", mic=True)
        self.assertEqual(self.gaps(["DWN"]), [])
        self.rows(change_sql(ann_id, "offer", shift=s["id"]))
        self.assertEqual(self.gaps(["DWN"]), [])
        listed = self.rows("SELECT * FROM shift_list('DWN', NULL, %s, %s, true)"
                           % (lit(MONDAY), lit(MONDAY)))
        self.assertEqual([(r["id"], r["username"], r["status"]) for r in listed],
                         [(s["id"], ann, "offered")])
        # bob may not be in charge: refused, and the shift stays ann's.
        self.refused(change_sql(bob_id, "claim", shift=s["id"]), "CR422", "not_mic_eligible")
        self.q("UPDATE staff SET mic_eligible = true WHERE id = %d" % bob_id)
        rows = self.rows(change_sql(bob_id, "claim", shift=s["id"]))
        self.assertEqual((rows[0]["username"], rows[0]["status"]), (bob, "assigned"))
        self.refused(change_sql(ann_id, "claim", shift=s["id"]), "CR409", "shift_taken")

    def test_time_off_decision_reason_and_no_self_decision(self):
        """Review 11 #9, #10: a denial keeps its reason; a manager does not decide their own
        time off (the coordinator may)."""
        ann_id, ann = self.person()
        mgr_id, mgr = self.person(role="branch_manager")
        t = self.one(time_off_sql({"time_off": {"start": "2027-03-02 00:00",
                                                "end": "2027-03-03 00:00", "reason": "trip"}},
                                  staff=ann_id, scope=ids["DWN"]))
        d = self.one(time_off_sql({"time_off": {"id": t["id"], "reason": "inventory week"},
                                   "action": "deny"}, staff=mgr_id, scope=ids["DWN"]))
        self.assertEqual((d["status"], d["reason"], d["decision_reason"]),
                         ("denied", "trip", "inventory week"))
        listed = self.one("SELECT * FROM time_off_list(NULL, %s, '2027-03-01', '2027-03-31',"
                          " false)" % lit(ann))
        self.assertEqual(listed["decision_reason"], "inventory week")
        own = self.one(time_off_sql({"time_off": {"start": "2027-03-04 00:00",
                                                  "end": "2027-03-05 00:00"}},
                                    staff=mgr_id, scope=ids["DWN"]))
        for action in ("approve", "deny"):
            self.refused(time_off_sql({"time_off": {"id": own["id"]}, "action": action},
                                      staff=mgr_id, scope=ids["DWN"]), "CR403", "not_yours")
        ok = self.one(time_off_sql({"time_off": {"id": own["id"]}, "action": "approve"}))
        self.assertEqual(ok["status"], "approved")

    def test_keyed_shift_save_retry(self):
        """Review 11 #22: ShiftSave with a request key is done once; a retry of an open
        shift returns the first answer and makes no second shift."""
        key = str(uuid.uuid4())
        doc = shift_doc(None, MONDAY + " 10:00", MONDAY + " 14:00")
        sql = ("SELECT * FROM shift_save(%s::uuid, %d, %d, NULL, true, %s::jsonb)"
               % (lit(key), ids["staff"], ids["workstation"], lit(json.dumps(doc))))
        first = self.rows(sql)
        self.assertEqual([r["status"] for r in first], ["open"])
        self.assertEqual(self.rows(sql), first)
        self.assertEqual(self.q("SELECT count(*) FROM shift WHERE staff_id IS NULL"
                                " AND lower(during) = local_ts(%s, 's')"
                                % lit(MONDAY + " 10:00")), "1")
        other, _ = self.person(role="branch_manager")
        self.refused("SELECT * FROM shift_save(%s::uuid, %d, %d, NULL, true, %s::jsonb)"
                     % (lit(key), other, ids["workstation"], lit(json.dumps(doc))),
                     "CR409", "request_key_reused")
        # Without a key it is the plain save: a second open shift.
        self.rows("SELECT * FROM shift_save(NULL::uuid, %d, %d, NULL, true, %s::jsonb)"
                  % (ids["staff"], ids["workstation"], lit(json.dumps(doc))))
        self.assertEqual(self.q("SELECT count(*) FROM shift WHERE staff_id IS NULL"
                                " AND lower(during) = local_ts(%s, 's')"
                                % lit(MONDAY + " 10:00")), "2")

    def test_week_grid_mic_without_desk_once(self):
        """Review 11 #29: a MIC shift with no desk is on the MIC row only; #26: each cell
        says where it ends (the closing time for the last)."""
        _, ann = self.person(name="Ann", mic=True)
        self.shift(ann, MONDAY + " 10:00", MONDAY + " 12:00", mic=True)
        cells = self.week()
        at_10 = {c["desk_code"]: c["names"] for c in cells
                 if c["day"] == MONDAY and c["time"] == "10:00"}
        self.assertEqual(at_10, {"MIC": ["Ann"]})
        self.q("UPDATE branch_hours SET closes = '17:45' WHERE branch_id = %d AND weekday = 6"
               % ids["DWN"])
        sat = [c for c in self.week() if c["day"] == SATURDAY]
        self.assertEqual((sat[-1]["time"], sat[-1]["end"]), ("17:30", "17:45"))
        self.assertEqual(sat[0]["end"], "10:30")

    # ---- daylight saving

    def test_dst_sundays_have_their_half_hours(self):
        """Open 13:00-17:00 on the Sundays the clocks change: 8 half hours each, in the
        week grid and in the gaps."""
        self.q("INSERT INTO branch_hours (branch_id, weekday, opens, closes)"
               " VALUES (%d, 7, '13:00', '17:00')" % ids["DWN"])
        self.desk("DWN", "circ", [{"staff": 1}])
        for sunday in ("2026-03-08", "2026-11-01"):
            cells = [c for c in self.week(week=sunday)
                     if c["day"] == sunday and c["desk_code"] == "MIC"]
            self.assertEqual([c["time"] for c in cells],
                             ["13:00", "13:30", "14:00", "14:30", "15:00", "15:30", "16:00",
                              "16:30"])
            gaps = self.gaps(["DWN"], sunday)
            self.assertEqual([(g["start"], g["end"], g["kind"]) for g in gaps],
                             [("13:00", "17:00", "under_minimum"), ("13:00", "17:00", "no_mic")])
            # A shift 13:00-17:00 (four real hours) covers all eight.
            _, ann = self.person(mic=True)
            self.shift(ann, sunday + " 13:00", sunday + " 17:00", desk="circ", mic=True)
            self.assertEqual(self.gaps(["DWN"], sunday), [])

    def test_dst_night_counts_real_hours(self):
        """22:00 Saturday to 06:00 Sunday across the 01:00-02:00 hour that happens twice
        is nine hours: with 32 hours already that week and a 40-hour limit it is refused;
        the same night a week later (eight hours) fits."""
        _, ann = self.person(max_hours=40)
        for day in ("2026-10-26", "2026-10-27", "2026-10-28", "2026-10-29"):
            self.shift(ann, day + " 09:00", day + " 17:00")
        e = self.refuse_shift(ann, "2026-10-31 22:00", "2026-11-01 06:00", "CR422",
                              "max_hours")
        self.assertIn("41", e.message)
        for day in ("2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"):
            self.shift(ann, day + " 09:00", day + " 17:00")
        row = self.shift(ann, "2026-11-07 22:00", "2026-11-08 06:00")
        self.assertEqual((row["start"], row["end"]), ("2026-11-07 22:00", "2026-11-08 06:00"))
        # The spring night is seven hours: 33 + 7 = 40 fits.
        _, bob = self.person(max_hours=40)
        for day in ("2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"):
            self.shift(bob, day + " 09:00", day + " 17:00")
        self.shift(bob, "2026-03-06 09:00", "2026-03-06 10:00")
        self.shift(bob, "2026-03-07 22:00", "2026-03-08 06:00")
        self.assertEqual(self.q("SELECT schedule_week_hours(id, '2026-03-04 12:00-05', NULL)"
                                "::integer FROM staff WHERE username = %s" % lit(bob)), "40")

    # ---- programs

    def test_program_unstaffed(self):
        """A live program session whose responsible staff member has no shift at its
        branch covering it. Until part A's tables exist, they are made here (in this
        transaction) with the columns SPEC11 names."""
        if self.q("SELECT to_regclass('program_session') IS NULL") == "t":
            self.assertEqual(self.gaps(["DWN"], kind="program_unstaffed"), [])
            self.q("CREATE TABLE program (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                   " title text NOT NULL, branch_id integer, staff_id bigint,"
                   " venue text NOT NULL DEFAULT 'branch',"
                   " cancelled boolean NOT NULL DEFAULT false)")
            self.q("CREATE TABLE program_session (id bigint GENERATED ALWAYS AS IDENTITY"
                   " PRIMARY KEY, program_id bigint NOT NULL, during tstzrange NOT NULL,"
                   " staff_id bigint, cancelled boolean NOT NULL DEFAULT false)")
            program = "INSERT INTO program (title, branch_id, staff_id) VALUES (%s, %d, %s)"
        else:
            program = ("INSERT INTO program (title, description, audience, venue, branch_id,"
                       " location, presenter, staff_id, category, created_by) VALUES"
                       " (%%s, '', 'general', 'branch', %%d, '', '', %%s, '', %d)"
                       % ids["staff"])
        ann_id, ann = self.person(name="Ann")
        pid = int(self.q((program + " RETURNING id") % (lit("Story time"), ids["DWN"], ann_id))
                  .splitlines()[0])
        session = ("INSERT INTO program_session (program_id, during, staff_id) VALUES"
                   " (%d, tstzrange(local_ts(%s, 's'), local_ts(%s, 'e')), %s) RETURNING id")
        s1 = int(self.q(session % (pid, lit(MONDAY + " 11:00"), lit(MONDAY + " 12:00"), "NULL"))
                 .splitlines()[0])
        gaps = self.gaps(["DWN"], kind="program_unstaffed")
        self.assertEqual([(g["start"], g["end"], g["program_session_id"], g["text"])
                          for g in gaps],
                         [("11:00", "12:00", s1, "program Story time 11:00-12:00: Ann not"
                           " scheduled")])
        covers = ("SELECT schedule_covers(%d, tstzrange(local_ts(%s, 's'), local_ts(%s, 'e')),"
                  " %%s)" % (ann_id, lit(MONDAY + " 11:00"), lit(MONDAY + " 12:00")))
        self.assertEqual(self.q(covers % ids["DWN"]), "f")
        # A shift elsewhere does not count; at the branch, off desk, it does.
        # ann works at DWN only; she works at ALB too now.
        self.q("INSERT INTO staff_branch VALUES (%d, %d)" % (ann_id, ids["ALB"]))
        self.shift(ann, MONDAY + " 10:30", MONDAY + " 12:30", branch="ALB")
        self.assertEqual(len(self.gaps(["DWN"], kind="program_unstaffed")), 1)
        # One rule for the gap report and the session's staff_scheduled: at the
        # program's branch; any branch only for a program offsite or online.
        self.assertEqual(self.q(covers % ids["DWN"]), "f")
        self.assertEqual(self.q(covers % "NULL"), "t")
        if self.q("SELECT to_regprocedure('program_session_rows(bigint[])') IS NOT NULL") == "t":
            self.assertEqual(self.q("SELECT staff_scheduled FROM program_session_rows("
                                    "ARRAY[%d])" % s1), "f")
            self.q("UPDATE program SET venue = 'offsite' WHERE id = %d" % pid)
            self.assertEqual(self.q("SELECT staff_scheduled FROM program_session_rows("
                                    "ARRAY[%d])" % s1), "t")
        else:
            self.q("UPDATE program SET venue = 'offsite' WHERE id = %d" % pid)
        self.assertEqual(self.gaps(["DWN"], kind="program_unstaffed"), [])
        self.q("UPDATE program SET venue = 'branch' WHERE id = %d" % pid)
        self.q("DELETE FROM shift WHERE staff_id = %d" % ann_id)
        self.shift(ann, MONDAY + " 10:30", MONDAY + " 12:30")
        self.assertEqual(self.gaps(["DWN"], kind="program_unstaffed"), [])
        if self.q("SELECT to_regprocedure('program_session_rows(bigint[])') IS NOT NULL") == "t":
            self.assertEqual(self.q("SELECT staff_scheduled FROM program_session_rows("
                                    "ARRAY[%d])" % s1), "t")
        # Cancelled sessions are no gaps.
        self.q("DELETE FROM shift WHERE staff_id = %d" % ann_id)
        self.q("UPDATE program_session SET cancelled = true WHERE id = %d" % s1)
        self.assertEqual(self.gaps(["DWN"], kind="program_unstaffed"), [])

    # ---- a quarter across seven branches

    def test_quarter_of_seven_branches_is_fast(self):
        """Seven branches x 4 desks with needs, 15 staff each (a third of them MIC), two
        shifts a day per desk through a quarter (13 weeks): schedule_gaps over all of it,
        timed with EXPLAIN ANALYZE (best of five: the machine is shared)."""
        branches = sorted(b for b in ids if b.isupper())
        for b in branches:
            for code, needs in [("circ", [{"staff": 2}, {"weekdays": [6], "from": "12:00",
                                                         "staff": 3}]),
                                ("ref", [{"staff": 1}]),
                                ("kids", [{"staff": 1, "from": "14:00"}]),
                                ("tech", [{"weekdays": [1, 2, 3, 4, 5], "staff": 1}])]:
                self.desk(b, code, needs)
            for i in range(15):
                self.person("q%s%02d" % (b.lower(), i), branches=(b,), mic=(i % 3 == 0),
                            max_hours=0)
        # Per branch and open day: person i works desk (i % 4) morning (i < 8) or
        # afternoon; persons 0 and 3 are MIC (morning, afternoon) - one shift a day each.
        made = self.q("""
            WITH days AS (
                SELECT b.id AS branch_id, b.code, d::date AS day, h.opens, h.closes
                FROM branch b
                JOIN generate_series('2027-01-04'::date, '2027-04-04'::date, '1 day') d ON true
                JOIN branch_hours h ON h.branch_id = b.id AND h.weekday = extract(isodow FROM d)
            ), people AS (
                SELECT s.id, sb.branch_id, (regexp_match(s.username, '(\\d+)$'))[1]::int AS i
                FROM staff s JOIN staff_branch sb ON sb.staff_id = s.id
                WHERE s.username ~ '^q[a-z]+\\d\\d$'
            )
            INSERT INTO shift (staff_id, branch_id, desk_id, during, mic)
            SELECT p.id, d.branch_id,
                   (SELECT id FROM service_desk sd WHERE sd.branch_id = d.branch_id
                    ORDER BY code OFFSET p.i % 4 LIMIT 1),
                   CASE WHEN p.i < 8
                        THEN tstzrange(local_at(d.day, d.opens),
                                       local_at(d.day, d.opens + (d.closes - d.opens) / 2))
                        ELSE tstzrange(local_at(d.day, d.opens + (d.closes - d.opens) / 2),
                                       local_at(d.day, d.closes)) END,
                   p.i IN (0, 9)
            FROM days d JOIN people p ON p.branch_id = d.branch_id
            WHERE (p.i + extract(doy FROM d.day)::int) % 5 <> 0""")
        count = int(made.split()[-1])
        self.assertGreater(count, 5000)
        best = None
        for _ in range(5):
            plan = self.q("EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM"
                          " schedule_gaps(NULL, '2027-01-04', '2027-04-04')")
            ms = json.loads(plan)[0]["Execution Time"]
            best = ms if best is None else min(best, ms)
        gaps = self.gaps(None, "2027-01-04", "2027-04-04")
        kinds = {g["kind"] for g in gaps}
        self.assertEqual(kinds, {"under_minimum", "no_mic"})
        load = os.getloadavg()[0]
        sys.stderr.write("\nschedule_gaps: 7 branches x 91 days, %d shifts, %d gap rows:"
                         " %.1f ms (EXPLAIN ANALYZE, best of 5; load average %.1f on %d CPUs)\n"
                         % (count, len(gaps), best, load, os.cpu_count()))
        # The aim is well under 200 ms on an idle machine; the bound leaves room for a
        # shared, busy one and still fails a plan that goes per cell (seconds).
        self.assertLess(best, 200.0 * max(1.0, load / os.cpu_count()))


class CommittedTest(unittest.TestCase):
    """Tests whose rows several sessions must see: committed, and removed at the end."""

    def setUp(self):
        self.shift_ids = []
        self.addCleanup(self.cleanup)

    def cleanup(self):
        env.psql("DELETE FROM shift_swap; DELETE FROM shift; DELETE FROM time_off;"
                 " DELETE FROM desk_need; DELETE FROM service_desk")

    def person(self, branches=("DWN",), mic=False, name=None):
        username = unique_name("c")
        pid = int(env.psql(person_sql(username, mic=mic, name=name, max_hours=0))
                  .splitlines()[0])
        for b in branches:
            env.psql("INSERT INTO staff_branch VALUES (%d, %d)" % (pid, ids[b]))
        return pid, username

    def waiting(self, like, n):
        harness.wait_until(lambda: int(env.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE %s" % lit(like))) >= n, 60, "%d sessions waiting" % n)

    def test_seven_sessions_one_person_overlapping_shifts(self):
        """Seven sessions give one person overlapping shifts at once: exactly one is
        made. Through shift_save (which serialises on the person's row and answers
        overlapping_shift), and with bare INSERTs (the exclusion constraint itself)."""
        pid, ann = self.person()
        holder = env.session()
        holder.query("BEGIN; SELECT 1 FROM staff WHERE id = %d FOR UPDATE" % pid,
                     keep_transaction=True)
        sessions = [env.session() for _ in range(7)]
        for i, s in enumerate(sessions):
            s.send(save_sql(shift_doc(ann, "2027-05-03 %02d:00" % (9 + i % 3),
                                      "2027-05-03 %02d:30" % (13 + i % 2))))
        self.waiting("%shift_save%", 7)
        holder.query("COMMIT")
        made, refused = 0, []
        for s in sessions:
            try:
                s.finish()
                made += 1
            except harness.SqlError as e:
                refused.append((e.sqlstate, e.detail))
        self.assertEqual(made, 1)
        self.assertEqual(refused, [("CR409", "overlapping_shift")] * 6)
        # The constraint alone: one transaction inserts and stays open, six more insert
        # overlapping shifts and wait for it; it commits, and they all fail.
        insert = ("BEGIN; INSERT INTO shift (staff_id, branch_id, during) VALUES (%d, %d,"
                  " tstzrange('2027-05-04 1%d:00-04', '2027-05-04 16:00-04'))")
        first, others = sessions[0], sessions[1:]
        first.query(insert % (pid, ids["DWN"], 0), keep_transaction=True)
        for i, s in enumerate(others):
            s.send(insert % (pid, ids["DWN"], 1 + i % 5))
        self.waiting("%INSERT INTO shift%", 6)
        first.query("COMMIT")
        failed = []
        for s in others:
            with self.assertRaises(harness.SqlError) as cm:
                s.finish()
            failed.append(cm.exception.sqlstate)
        # exclusion_violation; two of the waiting six may also meet as a deadlock, which
        # PostgreSQL detects (one of them fails so; the other then sees the committed row).
        self.assertEqual(set(failed) - {"23P01", "40P01"}, set(), failed)
        self.assertIn("23P01", failed)
        self.assertEqual(env.psql("SELECT count(*) FROM shift WHERE staff_id = %d" % pid), "2")

    def race_for_shift(self, shift_id, first, second):
        """Send two shift_change statements from two sessions while a third holds the
        shift's row; release it once both wait. What each did, sorted: "made" or
        (sqlstate, detail). (The two race tests share it.)"""
        holder = env.session()
        holder.query("BEGIN; SELECT 1 FROM shift WHERE id = %d FOR UPDATE" % shift_id,
                     keep_transaction=True)
        a, b = env.session(), env.session()
        a.send(first)
        b.send(second)
        self.waiting("%shift_change%", 2)
        holder.query("COMMIT")
        return sorted(harness.finish_each((a, b)), key=str)

    def test_two_claims_race_for_one_open_shift(self):
        ann_id, _ = self.person()
        bob_id, _ = self.person()
        shift_id = int(env.psql("INSERT INTO shift (branch_id, during) VALUES (%d,"
                                " tstzrange('2027-05-05 10:00-04', '2027-05-05 14:00-04'))"
                                " RETURNING id" % ids["DWN"]).splitlines()[0])
        results = self.race_for_shift(shift_id, change_sql(ann_id, "claim", shift=shift_id),
                                      change_sql(bob_id, "claim", shift=shift_id))
        self.assertEqual(results, sorted(["made", ("CR409", "shift_taken")], key=str))
        owner = env.psql("SELECT staff_id FROM shift WHERE id = %d" % shift_id)
        self.assertIn(owner, (str(ann_id), str(bob_id)))

    def test_two_swap_requests_race_for_one_shift(self):
        """Review 11 #15: two sessions propose a swap of one shift at once: one is made,
        the other refused duplicate (never an internal unique_violation)."""
        ann_id, ann = self.person()
        bob_id, bob = self.person()
        cy_id, cy = self.person()
        shift_id = int(env.psql("INSERT INTO shift (staff_id, branch_id, during) VALUES"
                                " (%d, %d, tstzrange('2027-05-06 10:00-04',"
                                " '2027-05-06 14:00-04')) RETURNING id"
                                % (ann_id, ids["DWN"])).splitlines()[0])
        results = self.race_for_shift(shift_id,
                                      change_sql(ann_id, "swap", shift=shift_id, to=bob),
                                      change_sql(ann_id, "swap", shift=shift_id, to=cy))
        self.assertEqual(results, sorted(["made", ("CR409", "duplicate")], key=str))
        self.assertEqual(env.psql("SELECT count(*) FROM shift_swap WHERE shift_id = %d"
                                  " AND status = 'pending'" % shift_id), "1")

    def test_sick_call_notifies_the_branch(self):
        """The sick call's desk_event stores one event (carreld pushes it) with the
        branch's gaps of the day in one line."""
        env.psql("SELECT * FROM desk_save(%d, %d, NULL, %s::jsonb)"
                 % (ids["staff"], ids["workstation"],
                    lit(json.dumps(desk_doc("DWN", "ref", [{"staff": 2}])))))
        _, ann = self.person(name="Ann Sick", mic=True)
        _, bob = self.person(mic=True)
        today = env.psql("SELECT library_today() + 7")
        while env.psql("SELECT extract(isodow FROM %s::date) < 5" % lit(today)) != "t":
            today = env.psql("SELECT %s::date + 1" % lit(today))
        env.psql(save_sql(shift_doc(ann, today + " 14:00", today + " 16:00", desk="ref")))
        env.psql(save_sql(shift_doc(bob, today + " 10:00", today + " 16:00", desk="ref",
                                    mic=True)))
        mark = env.psql("SELECT coalesce(max(id), 0) FROM desk_event")
        out = env.psql("SELECT kind FROM schedule_absent(%s::uuid, %d, %d, NULL, %s, %s,"
                       " 'flu')" % (lit(str(uuid.uuid4())), ids["staff"], ids["workstation"],
                                    lit(ann), lit(today)))
        self.assertIn("opened", out.split())
        got = env.psql("SELECT concat_ws(E'\\t', branch_code, kind, coalesce(item_barcode, ''),"
                       " coalesce(bib_id::text, ''), text) FROM desk_event WHERE id > %s"
                       % mark).splitlines()
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0].split("\t"), [
            "DWN", "schedule_gap", "", "",
            "DWN: gaps on %s after Ann Sick's sick call: ref 10:00-16:00 1 of 2;"
            " ref 16:00-20:00 0 of 2; MIC 16:00-20:00" % today])
        self.assertEqual(env.psql("SELECT count(*) FROM shift WHERE staff_id IS NULL"
                                  " AND note = 'sick call: Ann Sick'"), "1")


if __name__ == "__main__":
    harness.main()
