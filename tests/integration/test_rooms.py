#!/usr/bin/env python3
"""Rooms, bookings and programs through the daemon and the real client: a room
made, booked for a patron (a confirmation notice queued), listed, shown free or
taken on the grid, checked in, cancelled; a tentative booking approved; seven
desks at seven branches racing for one slot over the wire end with exactly one
booking; the daemon's own timer releases a no-show; a recurring booking with a
conflict reports it and makes the others; who may do what (a clerk cannot
override or manage rooms, a branch manager manages their branch only); programs
with sessions and attendance; and hostile requests over the wire, each refused
with a reason on the same connection while the daemon keeps serving."""

import os
import sys
import threading
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = "staff-password-123"
REQ_PING = 13
REQ_ROOM_LIST, REQ_ROOM_SAVE, REQ_ROOM_CATEGORY_SAVE = 200, 201, 203
REQ_ROOM_FREE, REQ_ROOM_BOOK, REQ_ROOM_CHANGE, REQ_ROOM_BOOKINGS = 204, 205, 206, 207
REQ_PROGRAM_ATTENDANCE, REQ_PROGRAM_LIST = 212, 213
RESP_ROOM_BOOK = 205

BRANCH_DESKS = {"DWN": "desk-dwn", "PRK": "desk-prk", "ALB": "desk-alb", "BAR": "desk-bar",
                "CMP": "desk-cmp", "DWT": "desk-dwt", "RPK": "desk-rpk"}

env = None
main = None  # the rooms timer off: tests move time by writing bookings in SQL

STAFF = [("clara", "clerk", "DWN"), ("libby", "librarian", "DWN"),
         ("manny", "branch_manager", "DWN"), ("parker", "branch_manager", "PRK"),
         ("cora", "coordinator", "DWN")]


def carrel(*args, user="cora", ws="desk-dwn", daemon=None, json_out=True):
    pw = harness.ADMIN_PASSWORD if user == "admin" else PASSWORD
    return env.carrel(env.profile(daemon or main, ws, user, pw), *args, json_out=json_out)


def q(sql):
    """The first line psql printed (a value; not the command tag of a WITH ... INSERT)."""
    out = env.psql(sql)
    return out.splitlines()[0] if out else out


def slot(branch="DWN", nth=0, after_open_min=60, minutes=60):
    """(start, end) local texts of a booking on the nth open day of branch from tomorrow,
    after_open_min minutes after it opens."""
    row = q("SELECT local_text(lower(o) + make_interval(mins => %d)) || '|' ||"
            " local_text(lower(o) + make_interval(mins => %d))"
            " FROM (SELECT g::date AS d, branch_open_range(b.id, g::date) AS o"
            "       FROM branch b, generate_series(library_today() + 1, library_today() + 13,"
            "            interval '1 day') g WHERE b.code = '%s') x"
            " WHERE o IS NOT NULL ORDER BY d OFFSET %d LIMIT 1"
            % (after_open_min, after_open_min + minutes, branch, nth))
    start, end = row.split("|")
    return start, end


_room_seq = [0]


def new_room(branch="DWN", category="study", capacity=6, user="cora", *extra, ws="desk-dwn"):
    """A room made through `carrel room save`; its id."""
    _room_seq[0] += 1
    name = "Room %s %d" % (category, _room_seq[0])
    r = carrel("room", "save", "--branch", branch, "--name", name, "--capacity", str(capacity),
               "--category", category, *extra, user=user, ws=ws)
    assert r.code == 0, r
    return r.json["id"]


def patron():
    return env.new_patron(email="patron%d@example.org" % env.next_number(),
                          contact_channel="email")


def book(room, start, end, *extra, card=None, user="clara", ws="desk-dwn"):
    args = ["room", "book", str(room), "--start", start, "--end", end]
    if card is not False:
        args += ["--card", card or patron()]
    return carrel(*(args + list(extra)), user=user, ws=ws)


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        main = env.daemon(rooms_tick_interval_s=0, jobs_interval_s=0, notice_send_interval_s=0,
                          stats_rollup_interval_s=0)
        admin = env.profile(main)
        env.add_workstations(admin, {ws: b for b, ws in BRANCH_DESKS.items() if b != "DWN"})
        for user, role, branch in STAFF:
            env.add_staff(admin, user, role, branch, PASSWORD)
        for branch in BRANCH_DESKS:
            env.add_staff(admin, "desk_" + branch.lower(), "clerk", branch, PASSWORD)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


class Booking(unittest.TestCase):
    def test_book_list_free_checkin_cancel(self):
        room = new_room()
        start, end = slot(nth=1, after_open_min=120)
        card = patron()
        r = book(room, start, end, "--purpose", "Study group", card=card)
        self.assertEqual(r.code, 0, r)
        made = r.json["made"]
        self.assertEqual(len(made), 1, r)
        b = made[0]
        self.assertEqual((b["status"], b["card"], b["start"], b["end"]),
                         ("confirmed", card, start, end))
        # A confirmation notice for the patron, queued once.
        self.assertEqual(q("SELECT count(*) FROM notice WHERE booking_id = %d"
                           " AND kind = 'room_confirmed'" % b["id"]), "1")

        # Listed by patron, with the no-show count; and by room.
        r = carrel("room", "bookings", "--patron", card)
        self.assertEqual(r.code, 0, r)
        self.assertEqual([x["id"] for x in r.json["bookings"]], [b["id"]])
        self.assertEqual(r.json.get("noShows", r.json.get("no_shows", 0)), 0)
        r = carrel("room", "bookings", "--room", str(room), "--from", start[:10],
                   json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertIn("Study group", r.stdout)

        # The free grid: the booked hour is no longer free, in JSON and as '#' in text.
        r = carrel("rooms", "free", "--room", str(room), "--date", start[:10])
        self.assertEqual(r.code, 0, r)
        day = r.json["days"][0]
        hhmm = start[11:]
        self.assertFalse(any(p.split("-")[0] <= hhmm < p.split("-")[1] for p in day["free"]),
                         day)
        self.assertEqual([x["id"] for x in r.json["rooms"]], [room])
        r = carrel("rooms", "free", "--room", str(room), "--date", start[:10], json_out=False)
        self.assertEqual(r.code, 0, r)
        # The room's row: one column per half hour from opening; the booked hour is "##".
        row = [line for line in r.stdout.splitlines() if line.rstrip().endswith(".")
               and "(6)" in line]
        self.assertEqual(len(row), 1, r.stdout)
        cells = row[0].split()[-1]
        opens = q("SELECT local_hhmm(lower(branch_open_range(b.id, '%s'::date)))"
                  " FROM branch b WHERE b.code = 'DWN'" % start[:10])
        to_min = lambda hhmm: int(hhmm[:2]) * 60 + int(hhmm[3:5])  # noqa: E731
        at = (to_min(start[11:]) - to_min(opens)) // 30
        self.assertEqual(cells, "." * at + "##" + "." * (len(cells) - at - 2), r.stdout)

        # The room list shows it.
        r = carrel("rooms", "--branch", "DWN")
        self.assertEqual(r.code, 0, r)
        self.assertIn(room, [x["id"] for x in r.json["rooms"]])

        # A second booking of the same slot: slot_taken, exit 4.
        r = book(room, start, end)
        self.assertEqual((r.code, r.json["reason"]), (4, "slot_taken"), r)

        # Check-in is refused this early (window), cancel needs a reason, then works.
        r = carrel("room", "checkin", str(b["id"]), user="clara")
        self.assertEqual((r.code, r.json["reason"]), (4, "checkin_window"), r)
        r = carrel("room", "cancel", str(b["id"]), user="clara")
        self.assertEqual(r.code, 2, r)  # usage: --reason
        r = carrel("room", "cancel", str(b["id"]), "--reason", "patron called", user="clara")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["bookings"][0]["status"], "cancelled")
        self.assertEqual(q("SELECT count(*) FROM notice WHERE booking_id = %d"
                           " AND kind = 'room_cancelled'" % b["id"]), "1")
        # Free again: the same slot can be booked.
        r = book(room, start, end)
        self.assertEqual(r.code, 0, r)

    def test_checkin_of_a_booking_under_way(self):
        room = new_room()
        card = patron()
        bid = q("WITH k AS (INSERT INTO room_booking (room_id, status, during, blocked,"
                " patron_id, created_by) SELECT %d, 'confirmed', tstzrange(now() - interval"
                " '5 minutes', now() + interval '55 minutes'), tstzrange(now() - interval"
                " '5 minutes', now() + interval '55 minutes'), p.id, NULL FROM patron p"
                " WHERE p.card = '%s' RETURNING id, room_id, blocked)"
                " INSERT INTO room_block (booking_id, unit_id, blocked)"
                " SELECT id, room_id, blocked FROM k RETURNING booking_id" % (room, card))
        r = carrel("room", "checkin", bid, user="clara")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["bookings"][0]["status"], "checked_in")
        r = carrel("rooms", "--branch", "DWN", json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertIn("in use until", r.stdout)

    def test_tentative_booking_approved_by_the_branch_manager(self):
        hall = new_room("DWN", "hall", 80)
        start, end = slot(nth=2, after_open_min=60, minutes=120)
        r = book(hall, start, end, card=False, user="libby", *("--group", "Chess club",
                                                              "--contact", "chess@example.org"))
        self.assertEqual(r.code, 0, r)
        b = r.json["made"][0]
        self.assertEqual(b["status"], "tentative")
        # A clerk may not approve; the manager of another branch may not either.
        r = carrel("room", "approve", str(b["id"]), user="clara")
        self.assertEqual((r.code, r.json["reason"]), (4, "role"), r)
        r = carrel("room", "approve", str(b["id"]), user="parker", ws="desk-prk")
        self.assertEqual((r.code, r.json["reason"]), (4, "branch"), r)
        r = carrel("room", "approve", str(b["id"]), user="manny")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["bookings"][0]["status"], "confirmed")
        r = carrel("room", "approve", str(b["id"]), user="manny")
        self.assertEqual((r.code, r.json["reason"]), (4, "booking_closed"), r)

    def test_recurring_with_a_conflict(self):
        room = new_room("DWN", "meeting", 12)
        start, end = slot(nth=0, after_open_min=120, minutes=60)
        # The second week's occurrence is taken already.
        week2 = q("SELECT local_text(local_ts('%s', 'start') + interval '7 days') || '|' ||"
                  " local_text(local_ts('%s', 'end') + interval '7 days')" % (start, end))
        s2, e2 = week2.split("|")
        r = book(room, s2, e2, user="clara")
        self.assertEqual(r.code, 0, r)
        until = q("SELECT (local_ts('%s', 'start')::date + 14)::text" % start)
        # Clerks may not make recurring bookings.
        r = book(room, start, end, "--repeat", "weekly", "--until", until, card=False,
                 user="clara", *("--group", "Book club", "--contact", "555-0100"))
        self.assertEqual((r.code, r.json["reason"]), (4, "role"), r)
        r = book(room, start, end, "--repeat", "weekly", "--until", until, card=False,
                 user="libby", *("--group", "Book club", "--contact", "555-0100"))
        self.assertEqual(r.code, 0, r)
        self.assertEqual(len(r.json["made"]), 2, r)
        self.assertEqual([(x["start"], x["reason"]) for x in r.json["refused"]],
                         [(s2, "slot_taken")], r)
        self.assertEqual(len({x["seriesId"] if "seriesId" in x else x["series_id"]
                              for x in r.json["made"]}), 1)
        # In text: made and refused lines.
        start3, end3 = slot(nth=0, after_open_min=240, minutes=60)
        r = book(room, start3, end3, "--repeat", "weekly", "--until", until, card=False,
                 user="libby", *("--group", "Knitting", "--contact", "555-0101"))
        self.assertEqual(r.code, 0, r)
        r = carrel("room", "book", str(room), "--start", start3, "--end", end3, "--group",
                   "Knitting 2", "--contact", "555-0102", "--repeat", "weekly", "--until",
                   until, user="libby", json_out=False)
        self.assertEqual(r.code, 4, r)  # every occurrence refused: a refusal's exit code
        self.assertIn("slot_taken", r.stdout)


class FreeGrid(unittest.TestCase):
    def test_free_grid_is_room_free(self):
        """RoomFree through carreld (room_free_grid, one row per room) gives the rooms and
        days of room_free, from the kept grid and from the days computed beyond it."""
        a = new_room()
        new_room(category="meeting", capacity=10)
        new_room(branch="PRK", capacity=4, ws="desk-prk", user="parker")
        start, end = slot(nth=2, after_open_min=90)
        self.assertEqual(book(a, start, end).code, 0)
        q("SELECT room_free_span_move(true)")
        for date, days in ((None, 30), (q("SELECT library_today() + 170"), 20)):
            args = ["rooms", "free", "--days", str(days)] + (["--date", date] if date else [])
            r = carrel(*args)
            self.assertEqual(r.code, 0, r)
            got = [(d.get("roomId", d.get("room_id")), d["date"], d.get("opens"),
                    d.get("closes"), d.get("free", []), d.get("closed", False))
                   for d in r.json["days"]]
            want = [tuple(x) for x in harness.json.loads(q(
                "SELECT json_agg(json_build_array(room_id, day, opens, closes, free, closed))"
                " FROM room_free(NULL, %s, %d, NULL, NULL, NULL, false)"
                % ("NULL" if date is None else "'%s'" % date, days)))]
            self.assertEqual(len(got), len(want))
            self.assertEqual(got, want)
            self.assertEqual([x["id"] for x in r.json["rooms"]],
                             [int(i) for i in q("SELECT string_agg(id::text, ',') FROM"
                                                " room_free_rooms(NULL, %s, NULL, NULL, NULL,"
                                                " false)" % ("NULL" if date is None
                                                             else "'%s'" % date)).split(",")])
            self.assertIn(a, {g[0] for g in got})


class Race(unittest.TestCase):
    def test_seven_desks_one_slot(self):
        """Seven desks at seven branches book the same room and slot at once, over the
        wire: exactly one booking is made, the six others are refused slot_taken."""
        room = new_room()
        start, end = slot(nth=3, after_open_min=60)
        wires = [main.logged_in_wire(ws, "desk_" + b.lower(), PASSWORD)
                 for b, ws in BRANCH_DESKS.items()]
        cards = [patron() for _ in wires]
        barrier = threading.Barrier(len(wires))

        def one(w, card):
            body = harness.pb_message((1, room), (2, start), (3, end), (4, card))
            barrier.wait()
            return w.call(REQ_ROOM_BOOK, body, key=str(uuid.uuid4()))

        try:
            results = harness.run_parallel(one, list(zip(wires, cards)))
        finally:
            for w in wires:
                w.close()
        statuses = sorted((r.status, r.reason) for r in results)
        self.assertEqual(statuses, [("conflict", "slot_taken")] * 6 + [("ok", "")], statuses)
        self.assertEqual(q("SELECT count(*) FROM room_booking WHERE room_id = %d"
                           " AND status IN ('tentative', 'confirmed')" % room), "1")
        self.assertEqual(q("SELECT count(*) FROM room_block b JOIN room_booking k"
                           " ON k.id = b.booking_id WHERE k.room_id = %d" % room), "1")

    def test_a_retry_with_the_same_key_returns_the_same_booking(self):
        room = new_room()
        start, end = slot(nth=4, after_open_min=60)
        w = main.logged_in_wire("desk-dwn", "clara", PASSWORD)
        try:
            body = harness.pb_message((1, room), (2, start), (3, end), (4, patron()))
            key = str(uuid.uuid4())
            first = w.call(REQ_ROOM_BOOK, body, key=key)
            again = w.call(REQ_ROOM_BOOK, body, key=key)
            self.assertEqual((first.status, again.status), ("ok", "ok"), (first, again))
            self.assertEqual(first.body(RESP_ROOM_BOOK), again.body(RESP_ROOM_BOOK))
            no_key = w.call(REQ_ROOM_BOOK, body)
            self.assertEqual(no_key.status, "bad_request", no_key)
        finally:
            w.close()
        self.assertEqual(q("SELECT count(*) FROM room_booking WHERE room_id = %d" % room), "1")


class Timer(unittest.TestCase):
    def test_the_timer_releases_a_no_show(self):
        room = new_room()  # study: check in within 15 minutes
        card = patron()
        bid = q("WITH k AS (INSERT INTO room_booking (room_id, status, during, blocked,"
                " patron_id) SELECT %d, 'confirmed', tstzrange(now() - interval '40 minutes',"
                " now() + interval '20 minutes'), tstzrange(now() - interval '40 minutes',"
                " now() + interval '20 minutes'), p.id FROM patron p WHERE p.card = '%s'"
                " RETURNING id, room_id, blocked)"
                " INSERT INTO room_block (booking_id, unit_id, blocked)"
                " SELECT id, room_id, blocked FROM k RETURNING booking_id" % (room, card))
        ticker = env.daemon(rooms_tick_interval_s=1, jobs_interval_s=0,
                            notice_send_interval_s=0, stats_rollup_interval_s=0)
        try:
            harness.wait_until(
                lambda: q("SELECT status FROM room_booking WHERE id = %s" % bid) == "no_show",
                what="the rooms timer to release the no-show")
            self.assertEqual(q("SELECT count(*) FROM room_block WHERE booking_id = %s" % bid),
                             "0")
            r = carrel("room", "bookings", "--patron", card, "--all", daemon=ticker)
            self.assertEqual(r.code, 0, r)
            self.assertEqual(r.json.get("noShows", r.json.get("no_shows")), 1, r)
            self.assertEqual(r.json["bookings"][0]["status"], "no_show")
        finally:
            ticker.stop()  # exits 0, sanitizers clean: the timer stopped cleanly


class Permissions(unittest.TestCase):
    def test_clerk_cannot_override_or_manage_rooms(self):
        room = new_room()
        start, end = slot(nth=1, after_open_min=0, minutes=600)  # longer than study allows
        r = book(room, start, end, "--override", user="clara")
        self.assertEqual((r.code, r.json["reason"]), (4, "override"), r)
        r = book(room, start, end, user="libby")
        self.assertEqual((r.code, r.json["reason"]), (4, "too_long"), r)
        r = book(room, start, end, "--override", user="libby")
        self.assertEqual(r.code, 0, r)
        self.assertTrue(r.json["made"][0]["overridden"])
        r = carrel("room", "save", "--branch", "DWN", "--name", "Clerk room", "--capacity", "2",
                   "--category", "study", user="clara")
        self.assertEqual((r.code, r.json["reason"]), (4, "role"), r)
        r = carrel("room", "category", "save", "study", "--max", "600", user="manny")
        self.assertEqual((r.code, r.json["reason"]), (4, "role"), r)

    def test_branch_manager_only_their_branch(self):
        r = carrel("room", "save", "--branch", "PRK", "--name", "Manny's", "--capacity", "4",
                   "--category", "study", user="manny")
        self.assertEqual((r.code, r.json["reason"]), (4, "branch"), r)
        mine = new_room("DWN", "study", 4, "manny")
        prk = new_room("PRK", "study", 4, "parker", ws="desk-prk")
        r = carrel("room", "save", str(prk), "--capacity", "5", user="manny")
        self.assertEqual((r.code, r.json["reason"]), (4, "branch"), r)
        r = carrel("room", "save", str(mine), "--capacity", "5", "--feature", "projector",
                   user="manny")
        self.assertEqual(r.code, 0, r)
        self.assertEqual((r.json["capacity"], r.json["features"]), (5, ["projector"]))
        # An edit that names no features keeps them.
        r = carrel("room", "save", str(mine), "--capacity", "6", user="manny")
        self.assertEqual(r.code, 0, r)
        self.assertEqual((r.json["capacity"], r.json["features"]), (6, ["projector"]))
        # Clearing the features, and un-splitting a room, say so.
        r = carrel("room", "save", str(mine), "--clear-features", user="manny")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json.get("features", []), [], r)
        r = carrel("room", "save", str(mine), "--clear-features", "--feature", "tv",
                   user="manny")
        self.assertEqual((r.code, r.json["reason"]), (4, "field:clear_features"), r)
        other = new_room("DWN", "study", 4, "manny")
        whole = new_room("DWN", "study", 8, "manny", "--part", str(mine), "--part", str(other))
        self.assertEqual(q("SELECT count(*) FROM room_part WHERE whole_id = %d" % whole), "2")
        r = carrel("room", "save", str(whole), "--capacity", "9", user="manny")
        self.assertEqual(q("SELECT count(*) FROM room_part WHERE whole_id = %d" % whole), "2")
        r = carrel("room", "save", str(whole), "--clear-parts", user="manny")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json.get("part_ids", r.json.get("partIds", [])), [], r)
        self.assertEqual(q("SELECT count(*) FROM room_part WHERE whole_id = %d" % whole), "0")
        # The coordinator changes categories.
        r = carrel("room", "category", "save", "quiet", "--name", "Quiet rooms", "--min", "30",
                   "--max", "120", "--slot", "30", "--days-ahead", "7", "--max-bookings", "1",
                   "--max-hours-week", "4", "--max-hours-month", "8", "--gap", "0", "--setup",
                   "0", "--cleanup", "0", "--checkin", "10", "--no-approval", user="cora")
        self.assertEqual(r.code, 0, r)
        r = carrel("room", "categories", user="clara")
        self.assertIn("quiet", [c["code"] for c in r.json["categories"]])


class Programs(unittest.TestCase):
    def test_program_sessions_and_attendance(self):
        room = new_room("DWN", "meeting", 30)
        r = carrel("program", "add", "--title", "Story time", "--audience", "0-5", "--venue",
                   "branch", "--branch", "DWN", "--presenter", "Ms. Reed", "--category",
                   "story_time", user="manny")
        self.assertEqual(r.code, 0, r)
        pid = r.json["id"]
        r = carrel("program", "add", "--title", "Elsewhere", "--audience", "19+", "--venue",
                   "branch", "--branch", "PRK", user="manny")
        self.assertEqual((r.code, r.json["reason"]), (4, "branch"), r)
        start, end = slot(nth=2, after_open_min=300, minutes=60)
        r = carrel("program", "session", "add", str(pid), "--start", start, "--end", end,
                   "--room", str(room), user="manny")
        self.assertEqual(r.code, 0, r)
        ses = r.json["made"][0]
        self.assertTrue(ses.get("bookingId") or ses.get("booking_id"), ses)
        # The session's room is taken for that hour.
        r = book(room, start, end)
        self.assertEqual((r.code, r.json["reason"]), (4, "slot_taken"), r)
        r = carrel("program", "show", str(pid), user="clara")
        self.assertEqual(r.code, 0, r)
        self.assertEqual([s["id"] for s in r.json["programs"][0]["sessions"]], [ses["id"]])
        # Attendance: librarians and up; a future session is refused with a reason.
        r = carrel("program", "attendance", str(ses["id"]), "12", user="clara")
        self.assertEqual((r.code, r.json["reason"]), (4, "role"), r)
        r = carrel("program", "attendance", str(ses["id"]), "12", user="libby")
        self.assertEqual(r.code, 4, r)
        self.assertEqual(r.json["reason"], "field:session_id", r)
        q("UPDATE program_session SET during = tstzrange(now() - interval '2 hours',"
          " now() - interval '1 hour') WHERE id = %d" % ses["id"])
        r = carrel("program", "attendance", str(ses["id"]), "12", user="libby")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["attendance"], 12)
        r = carrel("programs", "--from", q("SELECT (library_today() - 1)::text"),
                   json_out=False, user="clara")
        self.assertEqual(r.code, 0, r)
        self.assertIn("Story time", r.stdout)

        # A second session, cancelled: its room booking goes and the room is free again.
        start2, end2 = slot(nth=3, after_open_min=300, minutes=60)
        r = carrel("program", "session", "add", str(pid), "--start", start2, "--end", end2,
                   "--room", str(room), user="manny")
        self.assertEqual(r.code, 0, r)
        ses2 = r.json["made"][0]
        r = carrel("program", "session", "cancel", str(ses2["id"]), user="manny")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(q("SELECT status FROM room_booking WHERE id = %d"
                           % ses2["booking_id"]), "cancelled")
        r = book(room, start2, end2)
        self.assertEqual(r.code, 0, r)

    def test_session_override_only_when_asked_and_moved_with_room_checks(self):
        """A manager's session is booked under the public rules unless --override is given;
        `program session move` moves it (and its booking) under the same room checks."""
        room = new_room("DWN", "study", 6, "manny")
        far = new_room("PRK", "study", 6, "parker", ws="desk-prk")
        r = carrel("program", "add", "--title", "Long read", "--audience", "19+", "--venue",
                   "branch", "--branch", "DWN", user="manny")
        self.assertEqual(r.code, 0, r)
        pid = r.json["id"]
        start, end = slot(nth=4, after_open_min=0, minutes=600)  # longer than study allows
        r = carrel("program", "session", "add", str(pid), "--start", start, "--end", end,
                   "--room", str(room), user="manny")
        self.assertEqual((r.code, r.json["reason"]), (4, "too_long"), r)
        r = carrel("program", "session", "add", str(pid), "--start", start, "--end", end,
                   "--room", str(room), "--override", user="manny")
        self.assertEqual(r.code, 0, r)
        ses = r.json["made"][0]
        self.assertEqual(q("SELECT overridden FROM room_booking WHERE id = %d"
                           % ses["booking_id"]), "t")
        # moved: to another branch's room refused; in time, its room comes along
        start2, end2 = slot(nth=5, after_open_min=60, minutes=60)
        r = carrel("program", "session", "move", str(ses["id"]), "--start", start2, "--end",
                   end2, "--room", str(far), user="manny")
        self.assertEqual((r.code, r.json["reason"]), (4, "field:room_id"), r)
        r = carrel("program", "session", "move", str(ses["id"]), "--start", start2, "--end",
                   end2, user="manny", json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertIn(start2, r.stdout)
        self.assertEqual(q("SELECT status FROM room_booking WHERE id = %d" % ses["booking_id"]),
                         "cancelled")
        self.assertEqual(q("SELECT k.room_id || ' ' || local_text(lower(k.during)) FROM"
                           " program_session s JOIN room_booking k ON k.id = s.booking_id"
                           " WHERE s.id = %d" % ses["id"]), "%d %s" % (room, start2))


class Hostile(unittest.TestCase):
    def test_hostile_requests_refused_on_the_same_connection(self):
        """Requests no client would send — bad times, huge day counts, negative
        capacities, 10,000 features, SQL in names, unknown ids — each get a clear
        refusal on the same connection, and the daemon goes on serving."""
        room = new_room()
        start, end = slot(nth=5, after_open_min=60)
        rooms_before = q("SELECT count(*) FROM room")
        w = main.logged_in_wire("desk-dwn", "cora", PASSWORD)
        neg = lambda n: (1 << 64) - n  # noqa: E731 (a negative int32 on the wire)
        card = patron()
        room_msg = lambda *f: harness.pb_message(*f)  # noqa: E731
        cases = [
            (REQ_ROOM_BOOK, [(1, room), (2, "2026-13-45 25:99"), (3, end), (4, card)],
             ("bad_request", "field:start")),
            (REQ_ROOM_BOOK, [(1, room), (2, "'; DROP TABLE room; --"), (3, end), (4, card)],
             ("bad_request", "field:start")),
            (REQ_ROOM_BOOK, [(1, room), (2, end), (3, start), (4, card)],
             ("bad_request", "field:end")),
            (REQ_ROOM_BOOK, [(1, 999999999), (2, start), (3, end), (4, card)],
             ("not_found", "room")),
            (REQ_ROOM_BOOK, [(1, room), (2, start), (3, end), (4, card), (9, neg(3))],
             ("bad_request", "field:attendees")),
            (REQ_ROOM_BOOK, [(1, room), (2, start), (3, end), (4, card), (8, "x" * 100000)],
             ("bad_request", "field:purpose")),
            (REQ_ROOM_FREE, [(3, 100000)], ("bad_request", "field:days")),
            (REQ_ROOM_FREE, [(3, neg(1))], ("bad_request", "field:days")),
            (REQ_ROOM_FREE, [(4, neg(5))], ("bad_request", "field:capacity")),
            (REQ_ROOM_FREE, [(6, "f%d" % i) for i in range(10000)],
             ("bad_request", "field:features")),
            (REQ_ROOM_FREE, [(1, "DWN' OR '1'='1")], ("bad_request", "field:branch")),
            (REQ_ROOM_FREE, [(2, "yesterday")], ("bad_request", "field:date")),
            (REQ_ROOM_SAVE, [(1, room_msg((2, "DWN"), (3, "Neg"), (4, neg(5)),
                                          (7, "study")))],
             ("bad_request", "field:capacity")),
            (REQ_ROOM_SAVE, [(1, room_msg((2, "DWN"), (3, "Many"), (4, 5), (7, "study"),
                                          *[(5, "f%d" % i) for i in range(10000)]))],
             ("bad_request", "field:features")),
            (REQ_ROOM_SAVE, [(1, room_msg((2, "DWN"), (3, "Bad cat"), (4, 5),
                                          (7, "study'; DROP TABLE room; --")))],
             ("not_found", "room_category")),
            (REQ_ROOM_SAVE, [(1, room_msg((1, 999999999), (2, "DWN"), (3, "Ghost"), (4, 5),
                                          (7, "study")))],
             ("not_found", "room")),
            (REQ_ROOM_CHANGE, [(1, 999999999), (2, "cancel"), (3, "why")],
             ("not_found", "booking")),
            (REQ_ROOM_CHANGE, [(1, 1), (2, "explode")], ("bad_request", "field:action")),
            (REQ_ROOM_BOOKINGS, [(7, 1000000)], ("bad_request", "field:limit")),
            (REQ_ROOM_BOOKINGS, [(1, "no such card")], ("not_found", "patron")),
            (REQ_PROGRAM_ATTENDANCE, [(1, 999999999), (2, 5)], ("not_found", "program_session")),
            (REQ_PROGRAM_ATTENDANCE, [(1, 1), (2, neg(7))], ("bad_request", "field:attendance")),
            (REQ_PROGRAM_ATTENDANCE, [(1, 1)], ("bad_request", "field:attendance")),
            (REQ_ROOM_BOOK, [(2, start), (3, end), (4, card)], ("bad_request", "field:room_id")),
            (REQ_ROOM_BOOK, [(1, room), (2, start), (3, end), (4, card), (11, "daily"),
                             (12, "2099-01-01")], ("bad_request", "field:repeat")),
            (REQ_PROGRAM_LIST, [(4, "'; DELETE FROM program; --")],
             ("bad_request", "field:audience")),
            # a session's room is booked with the session (ProgramSessionSave)
            (REQ_ROOM_BOOK, [(1, room), (2, start), (3, end), (7, 1)],
             ("bad_request", "field:program_session_id")),
        ]
        for body_field, fields, want in cases:
            key = str(uuid.uuid4()) if body_field in (REQ_ROOM_BOOK, REQ_ROOM_CHANGE) else None
            r = w.call(body_field, harness.pb_message(*fields), key=key)
            self.assertIsNotNone(r, "the daemon closed the connection on %r" % (fields[:3],))
            self.assertEqual((r.status, r.reason), want, (body_field, fields[:3], r))
            self.assertTrue(r.message, r)
        # A name with SQL in it is only a name.
        r = w.call(REQ_ROOM_SAVE, harness.pb_message((1, room_msg(
            (2, "DWN"), (3, "Robert'); DROP TABLE room; --"), (4, 3), (7, "study")))))
        self.assertEqual(r.status, "ok", r)
        self.assertEqual(w.call(REQ_PING).status, "ok")
        w.close()
        self.assertEqual(int(q("SELECT count(*) FROM room")), int(rooms_before) + 1)
        self.assertEqual(q("SELECT count(*) FROM room_booking WHERE room_id = %d" % room), "0")
        # Another desk is served as before.
        r = book(room, start, end)
        self.assertEqual(r.code, 0, r)


if __name__ == "__main__":
    harness.main()
