#!/usr/bin/env python3
"""The room and program rules (sql/rules/rooms.sql, programs.sql), called directly in SQL.

As test_stats_sql.py: each test runs in one transaction on a harness session and rolls it
back (harness.TransactionTest), except the seven-session race, which commits and removes
its rows. Times are the library's local time (America/New_York in the seed settings);
tests that need the past insert bookings directly (now() is the transaction's start).
"""

import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

env = None
db = None
ids = {}
lit = harness.sql_literal


def setUpModule():
    global env, db
    env, db = harness.start_rule_session(RoomsTest, ids)


def tearDownModule():
    harness.stop_rule_session(env, db,
                              "SELECT (SELECT count(*) FROM room)"
                              " + (SELECT count(*) FROM room_booking)"
                              " + (SELECT count(*) FROM program)")


def key():
    return lit(str(uuid.uuid4()))


class RoomsTest(harness.TransactionTest):

    # ---- fixtures in the transaction

    def day(self, n):
        """Local date n days from today, as text."""
        return self.q("SELECT to_char(library_today() + %d, 'YYYY-MM-DD')" % n)

    def weekday_ahead(self, isodow, at_least=1):
        """The first local date at least at_least days ahead with that ISO weekday."""
        return self.q("SELECT to_char(d, 'YYYY-MM-DD') FROM generate_series(library_today() + %d,"
                      " library_today() + %d + 7, '1 day') d WHERE extract(isodow FROM d) = %d"
                      " LIMIT 1" % (at_least, at_least, isodow))

    def room(self, name, category="study", branch="DWN", capacity=6, parts=None, **more):
        doc = dict(branch_code=branch, name=name, capacity=capacity, category=category, **more)
        if parts is not None:
            doc["part_ids"] = parts
        return int(self.q("SELECT id FROM room_save(%d, %d, NULL, %s)"
                          % (ids["staff"], ids["workstation"], lit(harness.json.dumps(doc)))))

    def patron(self, **columns):
        return env.new_patron(session=db, **columns) if not columns else \
            env.new_patron(session=db, **columns)

    def book(self, room, start, end, override_ok=False, **doc):
        doc.update(room_id=room, start=start, end=end)
        return self.rows("SELECT * FROM room_book(%s, %d, %d, %s, %s)"
                         % (key(), ids["staff"], ids["workstation"],
                            "true" if override_ok else "false", lit(harness.json.dumps(doc))))

    def book_sql(self, room, start, end, override_ok=False, **doc):
        doc.update(room_id=room, start=start, end=end)
        return ("SELECT * FROM room_book(%s, %d, %d, %s, %s)"
                % (key(), ids["staff"], ids["workstation"], "true" if override_ok else "false",
                   lit(harness.json.dumps(doc))))

    def refused_book(self, reason, room, start, end, state="CR422", **doc):
        return self.refused(self.book_sql(room, start, end, **doc), state, reason)

    def change(self, booking, action, reason=None, series=False, scope=None):
        return self.rows("SELECT * FROM room_change(%s, %d, %d, %s, %d, %s, %s, %s)"
                         % (key(), ids["staff"], ids["workstation"],
                            "NULL" if scope is None else scope, booking, lit(action),
                            "NULL" if reason is None else lit(reason),
                            "true" if series else "false"))

    def change_sql(self, booking, action, reason=None, scope=None):
        return ("SELECT * FROM room_change(%s, %d, %d, %s, %d, %s, %s, false)"
                % (key(), ids["staff"], ids["workstation"], "NULL" if scope is None else scope,
                   booking, lit(action), "NULL" if reason is None else lit(reason)))

    def free(self, room, day, days=1, staff=True):
        return {r["day"]: r for r in self.rows(
            "SELECT * FROM room_free(NULL, %s, %d, NULL, %d, NULL, %s)"
            % (lit(day), days, room, "true" if staff else "false"))}

    def past_booking(self, room, start_sql, minutes, status="confirmed", patron=None,
                     blocks=True):
        """A booking inserted directly (the rules refuse the past); start_sql is SQL."""
        pid = ("(SELECT id FROM patron WHERE card = %s)" % lit(patron)) if patron else "NULL"
        bid = int(self.q(
            "WITH ins AS (INSERT INTO room_booking (room_id, status, during, blocked, patron_id, group_name,"
            " group_contact) SELECT %d, %s, tstzrange(s, s + make_interval(mins => %d)),"
            " tstzrange(s, s + make_interval(mins => %d)), %s, %s, %s FROM (SELECT %s AS s) x"
            " RETURNING id) SELECT id FROM ins" % (room, lit(status), minutes, minutes, pid,
                               "NULL" if patron else "'club'", "NULL" if patron else "'c@x'",
                               start_sql)))
        if blocks:
            self.q("INSERT INTO room_block (booking_id, unit_id, blocked) SELECT id, unnest("
                   "room_units(room_id)), blocked FROM room_booking WHERE id = %d" % bid)
        return bid


class Rooms(RoomsTest):

    def test_every_refusal_reason(self):
        study = self.room("Study 1", capacity=4)
        staff_room = self.room("Work room", bookable_by="staff")
        inactive = self.room("Old room", active=False)
        card = env.new_patron(session=db)
        d = self.weekday_ahead(2)
        self.refused_book("room", 999999999, d + " 10:00", d + " 11:00", "CR404", card=card)
        self.refused_book("room_inactive", inactive, d + " 10:00", d + " 11:00", card=card)
        self.refused_book("field:card", study, d + " 10:00", d + " 11:00", "CR400", card=card,
                          group_name="x", group_contact="y")
        self.refused_book("field:card", study, d + " 10:00", d + " 11:00", "CR400")
        expired = env.new_patron(session=db, expires="2020-01-01")
        self.refused_book("patron_expired", study, d + " 10:00", d + " 11:00", card=expired)
        self.refused_book("staff_only", staff_room, d + " 10:00", d + " 11:00", card=card)
        self.refused_book("over_capacity", study, d + " 10:00", d + " 11:00", card=card,
                          attendees=5)
        self.refused_book("field:end", study, d + " 10:00", d + " 10:00", "CR400", card=card)
        self.refused_book("off_slot", study, d + " 10:15", d + " 11:15", card=card)
        self.refused_book("too_long", study, d + " 10:00", d + " 14:00", card=card)
        self.refused_book("in_the_past", study, self.day(-1) + " 10:00",
                          self.day(-1) + " 11:00", card=card)
        self.refused_book("too_far_ahead", study, self.day(30) + " 10:00",
                          self.day(30) + " 11:00", card=card)
        self.refused_book("outside_hours", study, d + " 08:00", d + " 09:00", card=card)
        self.refused_book("override", study, d + " 08:00", d + " 09:00", "CR403", card=card,
                          override=True)
        self.refused_book("field:start", study, d + " 25:00", d + " 26:00", "CR400", card=card)
        self.q("UPDATE room_category SET min_minutes = 60 WHERE code = 'study'")
        self.refused_book("too_short", study, d + " 10:00", d + " 10:30", card=card)
        # patron_blocked
        self.q("INSERT INTO patron_block (patron_id, reason) SELECT id, 'test' FROM patron"
               " WHERE card = %s" % lit(card))
        self.refused_book("patron_blocked", study, d + " 10:00", d + " 11:00", card=card)
        self.q("UPDATE patron_block SET lifted_at = now()")
        made = self.book(study, d + " 10:00", d + " 11:00", card=card)
        self.assertTrue(made[0]["made"])
        self.refused_book("slot_taken", study, d + " 10:30", d + " 11:30", "CR409",
                          group_name="Club", group_contact="c@x")
        bid = made[0]["id"]
        self.refused(self.change_sql(bid, "cancel"), "CR400", "field:reason")
        self.refused(self.change_sql(bid, "fly"), "CR400", "field:action")
        self.refused(self.change_sql(bid, "approve"), "CR409", "booking_closed")
        self.refused(self.change_sql(bid, "checkin"), "CR422", "checkin_window")
        self.refused(self.change_sql(999999999, "cancel", "x"), "CR404", "booking")
        self.refused(self.change_sql(bid, "cancel", "x", scope=ids["ALB"]), "CR403", "branch")
        self.change(bid, "cancel", "no longer needed")
        self.refused(self.change_sql(bid, "cancel", "again"), "CR409", "booking_closed")
        # the room is free again
        self.assertTrue(self.book(study, d + " 10:00", d + " 11:00", card=card)[0]["made"])
        self.refused("SELECT * FROM room_save(1, 1, NULL, '{\"branch_code\": \"DWN\","
                     " \"name\": \"X\", \"capacity\": 2, \"category\": \"nope\"}')",
                     "CR404", "room_category")
        self.refused("SELECT * FROM program_attendance(1, 1, NULL, 999999999, 3)", "CR404",
                     "program_session")
        self.refused("SELECT * FROM program_save(1, 1, NULL, '{\"id\": 999999999}')", "CR404",
                     "program")

    def test_patron_limits_and_gap(self):
        self.q("UPDATE room_category SET days_ahead = 60 WHERE code IN ('study', 'meeting')")
        a = self.room("Study A")
        b = self.room("Study B")
        card = env.new_patron(session=db)
        mon = self.weekday_ahead(1, 8)
        tue = self.q("SELECT to_char(%s::date + 1, 'YYYY-MM-DD')" % lit(mon))
        # max_bookings 2 live from now on
        self.book(a, mon + " 10:00", mon + " 13:00", card=card)
        self.book(b, tue + " 10:00", tue + " 12:00", card=card)
        self.refused_book("patron_limit", a, tue + " 14:00", tue + " 15:00", card=card)
        # with override it is made, and marked
        r = self.book(a, tue + " 14:00", tue + " 15:00", override_ok=True, card=card,
                      override=True)
        self.assertTrue(r[0]["overridden"])
        # hours per week: 6 (3 + 2 + 1 = 6 so far); another patron's hours do not count
        self.q("UPDATE room_category SET max_bookings = 0 WHERE code = 'study'")
        self.refused_book("patron_limit", a, tue + " 16:00", tue + " 16:30", card=card)
        other = env.new_patron(session=db)
        self.book(a, tue + " 16:00", tue + " 16:30", card=other)
        # hours per month
        self.q("UPDATE room_category SET max_hours_week = 0, max_hours_month = 6"
               " WHERE code = 'study'")
        wed = self.q("SELECT to_char(%s::date + 9, 'YYYY-MM-DD')" % lit(mon))
        if wed[:7] == mon[:7]:
            self.refused_book("patron_limit", b, wed + " 10:00", wed + " 10:30", card=card)
        # the gap between one patron's meeting room bookings
        m = self.room("Meeting 1", "meeting", capacity=10)
        m2 = self.room("Meeting 2", "meeting", capacity=10)
        self.book(m, tue + " 10:00", tue + " 11:00", card=other)
        self.refused_book("booking_gap", m2, tue + " 11:00", tue + " 12:00", card=other)
        self.assertTrue(self.book(m2, tue + " 11:30", tue + " 12:30", card=other)[0]["made"])

    def test_open_hours_and_closed_day(self):
        r = self.room("Study 1")
        card = env.new_patron(session=db)
        sun = self.weekday_ahead(7)
        sat = self.weekday_ahead(6)
        self.refused_book("outside_hours", r, sun + " 10:00", sun + " 11:00", card=card)
        self.refused_book("outside_hours", r, sat + " 16:30", sat + " 17:30", card=card)
        self.assertTrue(self.book(r, sat + " 16:00", sat + " 17:00", card=card)[0]["made"])
        free = self.free(r, sun, 1)
        self.assertTrue(free[sun]["closed"])
        self.assertEqual(free[sun]["free"], [])
        # a closed day in the calendar
        mon = self.weekday_ahead(1)
        self.q("INSERT INTO branch_closed (branch_id, day) VALUES (%d, %s)" % (ids["DWN"], lit(mon)))
        self.refused_book("outside_hours", r, mon + " 10:00", mon + " 11:00", card=card)
        self.assertTrue(self.free(r, mon)[mon]["closed"])

    def test_split_rooms_block_each_other(self):
        self.q("UPDATE room_category SET needs_approval = false WHERE code = 'hall'")
        a = self.room("Hall A", "hall", capacity=40)
        b = self.room("Hall B", "hall", capacity=40)
        hall = self.room("Hall", "hall", capacity=80, parts=[a, b])
        d = self.weekday_ahead(2)
        g = dict(group_name="Club", group_contact="c@x")
        self.book(hall, d + " 12:00", d + " 14:00", **g)
        # each half is taken (with the buffers)
        self.refused_book("slot_taken", a, d + " 14:00", d + " 15:00", "CR409", **g)
        self.refused_book("slot_taken", b, d + " 11:00", d + " 12:00", "CR409", **g)
        self.assertTrue(self.book(b, d + " 15:00", d + " 16:00", **g)[0]["made"])
        # the other way round: a half's booking blocks the hall, not the other half
        self.refused_book("slot_taken", hall, d + " 16:00", d + " 17:00", "CR409", **g)
        self.assertTrue(self.book(a, d + " 16:00", d + " 17:00", **g)[0]["made"])
        free = self.free(hall, d)[d]
        # before: 10:00 until 11:30 (the hall's set-up) less its own clean-up; after: 17:30
        # (Hall A's clean-up) plus its set-up
        self.assertEqual(free["free"], ["10:00-11:00", "18:00-20:00"])
        # parts may not change while bookings are to come
        self.refused("SELECT * FROM room_save(%d, %d, NULL, '{\"id\": %d, \"part_ids\": []}')"
                     % (ids["staff"], ids["workstation"], hall), "CR400", "field:part_ids")
        room = self.one("SELECT * FROM room_list('DWN', NULL, false) WHERE id = %d" % a)
        self.assertEqual(room["whole_names"], ["Hall"])

    def test_buffers_block_but_are_not_shown(self):
        m = self.room("Meeting 1", "meeting", capacity=10)
        d = self.weekday_ahead(2)
        g = dict(group_name="Club", group_contact="c@x")
        r = self.book(m, d + " 12:00", d + " 13:00", **g)[0]
        self.assertEqual((r["start"][-5:], r["end"][-5:]), ("12:00", "13:00"))
        self.assertEqual((r["blocked_from"][-5:], r["blocked_to"][-5:]), ("11:45", "13:15"))
        # the next booking's set-up may not overlap this one's clean-up
        self.refused_book("slot_taken", m, d + " 13:00", d + " 14:00", "CR409", **g)
        self.refused_book("slot_taken", m, d + " 11:00", d + " 12:00", "CR409", **g)
        self.assertTrue(self.book(m, d + " 13:30", d + " 14:30", **g)[0]["made"])
        # free time: where a booking can start/end with its buffers
        self.assertEqual(self.free(m, d)[d]["free"], ["10:00-11:30", "15:00-20:00"])

    def test_room_free_hand_checked(self):
        s = self.room("Study 1")
        d = self.weekday_ahead(3)  # Wednesday: 10:00-20:00 downtown
        self.assertEqual(self.free(s, d)[d]["free"], ["10:00-20:00"])
        g = dict(group_name="Club", group_contact="c@x")
        self.book(s, d + " 10:00", d + " 10:30", **g)
        self.book(s, d + " 11:00", d + " 12:00", **g)
        self.book(s, d + " 19:30", d + " 20:00", **g)
        f = self.free(s, d, 2)
        self.assertEqual(f[d]["free"], ["10:30-11:00", "12:00-19:30"])
        self.assertEqual((f[d]["opens"], f[d]["closes"]), ("10:00", "20:00"))
        self.assertEqual(len(f), 2)
        # shorter than min_minutes: dropped
        self.q("UPDATE room_category SET min_minutes = 60 WHERE code = 'study'")
        self.assertEqual(self.free(s, d)[d]["free"], ["12:00-19:30"])
        # filters: capacity, features, staff rooms
        self.room("Big", capacity=30, features=["projector"])
        self.room("Staff", bookable_by="staff")
        ids_of = lambda sql: {r["room_id"] for r in self.rows(sql)}  # noqa: E731
        self.assertEqual(len(ids_of("SELECT * FROM room_free('DWN', %s, 1, 10, NULL, NULL, false)"
                                    % lit(d))), 1)
        self.assertEqual(len(ids_of("SELECT * FROM room_free('DWN', %s, 1, NULL, NULL,"
                                    " '{projector}', false)" % lit(d))), 1)
        self.assertEqual(len(ids_of("SELECT * FROM room_free('DWN', %s, 1, NULL, NULL, NULL,"
                                    " false)" % lit(d))), 2)
        self.assertEqual(len(ids_of("SELECT * FROM room_free('DWN', %s, 1, NULL, NULL, NULL,"
                                    " true)" % lit(d))), 3)
        self.assertEqual(len(self.rows("SELECT * FROM room_free_rooms('DWN', %s, NULL, NULL,"
                                       " NULL, true)" % lit(d))), 3)
        # today: nothing before now is free (a day the branch is open today or not)
        today = self.day(0)
        now = self.q("SELECT local_hhmm(now())")
        for period in self.free(s, today)[today]["free"]:
            self.assertGreaterEqual(period[6:], now)
            self.assertGreaterEqual(period[:5], now[:3] + "00")
        self.refused("SELECT * FROM room_free('DWN', NULL, 91, NULL, NULL, NULL, false)",
                     "CR400", "field:days")
        self.refused("SELECT * FROM room_free('XXX', NULL, 1, NULL, NULL, NULL, false)",
                     "CR400", "field:branch")

    def test_recurring_weekly_and_monthly_with_conflicts(self):
        self.q("UPDATE room_category SET days_ahead = 400 WHERE code = 'meeting'")
        m = self.room("Meeting 1", "meeting", capacity=10)
        g = dict(group_name="Club", group_contact="c@x")
        tue = self.weekday_ahead(2)
        third = self.q("SELECT to_char(%s::date + 14, 'YYYY-MM-DD')" % lit(tue))
        self.book(m, third + " 18:00", third + " 19:00", group_name="Other", group_contact="o@x")
        until = self.q("SELECT to_char(%s::date + 35, 'YYYY-MM-DD')" % lit(tue))
        rows = self.book(m, tue + " 18:00", tue + " 19:00", override_ok=True, repeat="weekly",
                         until=until, **g)
        self.assertEqual(len(rows), 6)
        refused = [r for r in rows if not r["made"]]
        self.assertEqual([(r["start"], r["reason"]) for r in refused],
                         [(third + " 18:00", "slot_taken")])
        self.assertEqual(len({r["series_id"] for r in rows if r["made"]}), 1)
        # cancelling the series from the 4th on
        fourth = [r for r in rows if r["made"]][2]
        changed = self.change(fourth["id"], "cancel", "club closed", series=True)
        self.assertEqual(len(changed), 3)
        # monthly: the 2nd Tuesday; a 5th-weekday series skips months without one
        start = self.q("SELECT to_char(d, 'YYYY-MM-DD') FROM generate_series(library_today()"
                       " + 1, library_today() + 60, '1 day') d WHERE extract(isodow FROM d) = 2"
                       " AND extract(day FROM d) BETWEEN 8 AND 14 LIMIT 1")
        until = self.q("SELECT to_char(%s::date + 150, 'YYYY-MM-DD')" % lit(start))
        rows = self.book(m, start + " 12:00", start + " 13:00", override_ok=True,
                         repeat="monthly", until=until, **g)
        for r in rows:
            dd = self.q("SELECT extract(isodow FROM %s::date) || '/' || ((extract(day FROM"
                        " %s::date)::int - 1) / 7 + 1)" % (lit(r["start"][:10]),
                                                          lit(r["start"][:10])))
            self.assertEqual(dd, "2/2")
        self.assertIn(len(rows), (5, 6))
        fifth = self.q("SELECT occ FROM (SELECT count(*) AS occ FROM room_occurrences("
                       "'2027-01-29 10:00'::timestamp, 'monthly', '2027-12-31')) x")
        # Friday 29 January 2027 is the 5th Friday: only months with a 5th Friday
        self.assertEqual(fifth, self.q("SELECT count(*) FROM generate_series('2027-01-01'::date,"
                                       " '2027-12-01', '1 month') m WHERE (SELECT count(*) FROM"
                                       " generate_series(m, m + interval '1 month' - interval"
                                       " '1 day', '1 day') d WHERE extract(isodow FROM d) = 5)"
                                       " = 5"))
        self.refused(self.book_sql(m, tue + " 18:00", tue + " 19:00", repeat="weekly",
                                   until=self.day(2000), **g), "CR400", "field:until")

    def test_tick_no_show_completed_reminders_anonymise(self):
        s = self.room("Study 1")
        hall = self.room("Hall", "hall", capacity=50)
        card = env.new_patron(session=db, contact_channel="email", email="p@example.org")
        # started 20 minutes ago, never checked in: released (check-in 15 minutes)
        late = self.past_booking(s, "date_trunc('minute', now()) - interval '20 minutes'", 60,
                                 patron=card)
        # a study booking that ended an hour ago, checked in: completed
        done = self.past_booking(s, "now() - interval '3 hours'", 60, status="checked_in",
                                 patron=card)
        # a tentative hall booking past its start: cancelled
        tent = self.past_booking(hall, "now() - interval '1 hour'", 60, status="tentative")
        # ended 40 days ago: anonymised
        old = self.past_booking(s, "now() - interval '40 days'", 60, status="completed",
                                patron=card, blocks=False)
        # one starting in 3 hours: reminded once
        soon = self.past_booking(s, "date_trunc('hour', now()) + interval '3 hours'", 60,
                                 patron=card)
        t = self.one("SELECT * FROM rooms_tick()")
        self.assertEqual(t, {"released": 1, "completed": 1, "reminded": 1, "anonymised": 1})
        st = {r["id"]: r for r in self.rows("SELECT id, status, patron_id, anonymised,"
                                            " released_at IS NOT NULL AS rel FROM room_booking")}
        self.assertEqual(st[late]["status"], "no_show")
        self.assertTrue(st[late]["rel"])
        self.assertEqual(st[done]["status"], "completed")
        self.assertEqual(st[tent]["status"], "cancelled")
        self.assertIsNone(st[old]["patron_id"])
        self.assertTrue(st[old]["anonymised"])
        self.assertEqual(self.q("SELECT count(*) FROM room_block WHERE booking_id IN (%d, %d)"
                                % (late, tent)), "0")
        self.assertEqual(self.q("SELECT room_patron_no_shows(%s)" % lit(card)), "1")
        self.assertEqual(self.q("SELECT count(*) FROM notice WHERE kind = 'room_reminder'"
                                " AND booking_id = %d" % soon), "1")
        # idempotent: nothing more
        self.assertEqual(self.one("SELECT * FROM rooms_tick()"),
                         {"released": 0, "completed": 0, "reminded": 0, "anonymised": 0})
        # counts kept after anonymising
        day = self.q("SELECT library_local_date(lower(during)) FROM room_booking WHERE id = %d"
                     % old)
        self.assertEqual(self.q("SELECT value FROM stats_query('room_bookings', %s, %s, 'none',"
                                " '{}', NULL, false, NULL)" % (lit(day), lit(day))), "1")
        self.assertEqual(self.q("SELECT sum(value) FROM stats_query('room_no_shows',"
                                " library_today() - 1, library_today(), 'none', '{}', NULL,"
                                " false, NULL)"), "1")

    def test_checkin_confirm_notice_and_approval(self):
        card = env.new_patron(session=db, contact_channel="email", email="p@example.org")
        s = self.room("Study 1")
        bid = self.past_booking(s, "date_trunc('minute', now()) + interval '10 minutes'", 60,
                                patron=card)
        r = self.change(bid, "checkin")
        self.assertEqual(r[0]["status"], "checked_in")
        self.q("UPDATE room_category SET needs_approval = true, days_ahead = 60 WHERE code = 'study'")
        d = self.weekday_ahead(2)
        made = self.book(s, d + " 10:00", d + " 11:00", card=card)[0]
        self.assertEqual(made["status"], "tentative")
        self.assertEqual(self.q("SELECT count(*) FROM notice WHERE booking_id = %d" % made["id"]),
                         "0")
        self.refused(self.change_sql(made["id"], "approve", scope=ids["ALB"]), "CR403", "branch")
        self.assertEqual(self.change(made["id"], "approve", scope=ids["DWN"])[0]["status"],
                         "confirmed")
        self.assertEqual(self.q("SELECT kind FROM notice WHERE booking_id = %d" % made["id"]),
                         "room_confirmed")
        self.change(made["id"], "cancel", "ill")
        self.assertEqual(self.q("SELECT string_agg(kind, ',' ORDER BY kind) FROM notice"
                                " WHERE booking_id = %d" % made["id"]), "room_cancelled")
        # a repeated key gives the stored answer and books nothing more
        k = key()
        doc = lit(harness.json.dumps(dict(room_id=s, start=d + " 12:00", end=d + " 13:00",
                                          card=card)))
        sql = "SELECT id FROM room_book(%s, %d, %d, false, %s)" % (k, ids["staff"],
                                                                    ids["workstation"], doc)
        self.assertEqual(self.q(sql), self.q(sql))

    def test_daylight_saving(self):
        self.q("UPDATE room_category SET days_ahead = 700 WHERE code = 'study'")
        self.q("INSERT INTO branch_hours (branch_id, weekday, opens, closes) VALUES"
               " (%d, 7, '00:00', '23:30')" % ids["DWN"])
        s = self.room("Study 1")
        g = dict(group_name="Club", group_contact="c@x")
        # 2027-03-14: clocks go forward at 02:00
        self.refused_book("field:start", s, "2027-03-14 02:30", "2027-03-14 03:30", "CR400", **g)
        r = self.book(s, "2027-03-14 01:00", "2027-03-14 03:00", **g)[0]
        self.assertEqual((r["start"], r["end"]), ("2027-03-14 01:00", "2027-03-14 03:00"))
        self.assertEqual(self.q("SELECT (extract(epoch FROM upper(during) - lower(during)) / 60)"
                                "::int FROM room_booking WHERE id = %d" % r["id"]), "60")
        f = self.free(s, "2027-03-14")["2027-03-14"]
        self.assertEqual(f["free"], ["00:00-01:00", "03:00-23:30"])
        # 2027-11-07: clocks go back at 02:00: 01:00-02:00 lasts two hours
        r = self.book(s, "2027-11-07 00:00", "2027-11-07 02:00", **g)[0]
        self.assertEqual(self.q("SELECT (extract(epoch FROM upper(during) - lower(during)) / 60)"
                                "::int FROM room_booking WHERE id = %d" % r["id"]), "180")
        self.assertEqual(self.free(s, "2027-11-07")["2027-11-07"]["free"], ["02:00-23:30"])
        # hours by real duration: 3 real hours count toward the 6 a week
        card = env.new_patron(session=db)
        self.q("UPDATE room_category SET max_bookings = 0, max_hours_week = 3 WHERE code = 'study'")
        self.book(s, "2027-11-07 03:00", "2027-11-07 05:00", card=card)  # 2 hours
        self.refused_book("patron_limit", s, "2027-11-07 00:30", "2027-11-07 01:30", card=card)

    def test_programs_sessions_attendance_and_pls(self):
        hall = self.room("Hall", "hall", capacity=50)
        sid = ids["staff"]
        p = self.one("SELECT * FROM program_save(%d, %d, NULL, '{\"title\": \"Story time\","
                     " \"audience\": \"0-5\", \"branch_code\": \"DWN\", \"staff_username\":"
                     " \"admin\"}')" % (sid, ids["workstation"]))
        self.refused("SELECT * FROM program_save(%d, %d, %d, '{\"title\": \"X\", \"audience\":"
                     " \"0-5\", \"branch_code\": \"DWN\"}')" % (sid, ids["workstation"],
                                                                  ids["ALB"]), "CR403", "branch")
        self.refused("SELECT * FROM program_save(%d, %d, NULL, '{\"title\": \"X\", \"audience\":"
                     " \"kids\", \"branch_code\": \"DWN\"}')" % (sid, ids["workstation"]),
                     "CR400", "field:audience")
        d = self.weekday_ahead(2)
        doc = {"session": {"program_id": p["id"], "start": d + " 11:00", "end": d + " 12:00",
                           "room_id": hall}}
        rows = self.rows("SELECT * FROM program_session_save(%s, %d, %d, NULL, true, %s)"
                         % (key(), sid, ids["workstation"], lit(harness.json.dumps(doc))))
        self.assertTrue(rows[0]["made"])
        self.assertEqual(rows[0]["room_name"], "Hall")
        self.assertEqual(rows[0]["staff_username"], "admin")
        b = self.one("SELECT * FROM room_booking WHERE id = %d" % rows[0]["booking_id"])
        self.assertEqual(b["program_session_id"], rows[0]["id"])
        self.assertIsNone(b["patron_id"])
        self.refused("SELECT * FROM program_attendance(%d, %d, NULL, %d, 12)"
                     % (sid, ids["workstation"], rows[0]["id"]), "CR400", "field:session_id")
        self.refused("SELECT * FROM program_attendance(%d, %d, NULL, %d, -1)"
                     % (sid, ids["workstation"], rows[0]["id"]), "CR400", "field:attendance")
        listed = self.rows("SELECT kind, id, session_id FROM program_list('DWN', NULL, NULL,"
                           " NULL, NULL)")
        self.assertEqual([r["kind"] for r in listed], ["program", "session"])
        # past sessions for the PLS lines: inserted directly (sessions in the past)
        teen = self.one("SELECT * FROM program_save(%d, %d, NULL, '{\"title\": \"Teens\","
                        " \"audience\": \"12-18\", \"venue\": \"online\", \"branch_code\":"
                        " \"ALB\"}')" % (sid, ids["workstation"]))
        for pid, day, att, cancelled in ((p["id"], "2025-03-04 10:00", 12, False),
                                         (p["id"], "2025-03-11 10:00", None, False),
                                         (p["id"], "2025-03-18 10:00", 40, True),
                                         (teen["id"], "2025-05-01 18:00", 30, False)):
            self.q("INSERT INTO program_session (program_id, during, attendance, cancelled)"
                   " VALUES (%d, tstzrange(local_ts(%s, 's'), local_ts(%s, 's') + interval"
                   " '1 hour'), %s, %s)" % (pid, lit(day), lit(day),
                                            "NULL" if att is None else att, cancelled))
        sess = self.rows("SELECT id FROM program_session WHERE attendance = 12")
        self.assertEqual(self.one("SELECT attendance FROM program_attendance(%d, %d, NULL, %d,"
                                  " 15)" % (sid, ids["workstation"], sess[0]["id"]))
                         ["attendance"], 15)
        lines = {(r["code"], r["branch_code"]): r
                 for r in self.rows("SELECT * FROM pls_report(2025, NULL)")}
        v = lambda c, b=None: float(lines[(c, b)]["value"])  # noqa: E731
        self.assertEqual(v("TOTPRO"), 3)
        self.assertEqual(v("TOTATTEN"), 45)
        self.assertEqual(v("KIDPRO"), 2)
        self.assertEqual(v("K0_5PRO"), 2)
        self.assertEqual(v("K0_5ATTEN"), 15)
        self.assertEqual(v("K6_11PRO"), 0)
        self.assertEqual(v("YAPRO"), 1)
        self.assertEqual(v("YAATTEN"), 30)
        self.assertEqual(v("VIRPRO"), 1)
        self.assertEqual(v("ONSITEPRO"), 2)
        self.assertEqual(v("OFFSITEPRO"), 0)
        self.assertEqual(v("TOTPRO", "DWN"), 2)
        self.assertEqual(v("TOTPRO", "ALB"), 1)
        self.assertEqual(lines[("TOTPRO", None)]["basis"], "counted")
        self.assertIn("1 such sessions", lines[("K0_5ATTEN", "DWN")]["how"])
        # the measures
        by = {tuple(r["keys"]): float(r["value"]) for r in self.rows(
            "SELECT keys, value FROM stats_query('program_attendance', '2025-01-01',"
            " '2025-12-31', 'none', '{audience,venue}', NULL, false, NULL)")}
        self.assertEqual(by, {("0-5", "branch"): 15.0, ("12-18", "online"): 30.0})
        self.assertEqual(self.q("SELECT value FROM stats_query('program_sessions', '2025-01-01',"
                                " '2025-12-31', 'none', '{}', NULL, false, NULL)"), "3")


class FreeKept(RoomsTest):
    """room_day_free (migrations/021_room_free.sql): what room_free reads is what
    room_free_compute computes from scratch, after every kind of change."""

    def setUp(self):
        super().setUp()
        # the span is today's, in the library's zone (as rooms_tick leaves it)
        self.q("SELECT room_free_span_move(true)")

    def none_left(self, sql):
        if self.q("SELECT count(*) FROM (%s) x" % sql) != "0":
            self.fail("rows differ: %s" % self.rows("SELECT * FROM (%s) x LIMIT 3" % sql))

    def kept(self):
        """Every kept row equals room_free_calc over the span, both ways; returns the count."""
        calc = ("SELECT c.room_id, c.day, c.opens, c.closes, c.closed,"
                " array_to_string(c.free, ';'), c.free_from, c.free_to FROM room_free_span s, room_free_calc(ARRAY(SELECT id FROM room),"
                " s.first_day, s.last_day - s.first_day + 1, NULL) c")
        kept = ("SELECT room_id, day, opens, closes, closed, free, free_from, free_to"
                " FROM room_day_free")
        for a, b in ((calc, kept), (kept, calc)):
            self.none_left("(%s) EXCEPT ALL (%s)" % (a, b))
        n = int(self.q("SELECT count(*) FROM room_day_free"))
        self.assertEqual(n, int(self.q("SELECT count(*) * (SELECT last_day - first_day + 1"
                                       " FROM room_free_span) FROM room")))
        return n

    def same(self, date=None, days=90, branch=None):
        """room_free and room_free_compute give the same rows in the same order."""
        args = "%s, %s, %d, NULL, NULL, NULL, true" % (
            "NULL" if branch is None else lit(branch), "NULL" if date is None else lit(date), days)
        kept = "SELECT * FROM room_free(%s)" % args
        scratch = "SELECT * FROM room_free_compute(%s)" % args
        for a, b in ((kept, scratch), (scratch, kept)):
            self.none_left("(%s) EXCEPT (%s)" % (a, b))
        got = self.rows(kept)
        self.assertEqual(got, self.rows(scratch))
        return got

    def check(self, *dates):
        self.kept()
        self.same()
        for d in dates:
            self.same(d, 3)

    def rooms(self):
        self.q("UPDATE room_category SET needs_approval = false WHERE code = 'hall'")
        s = self.room("Study 1")
        m = self.room("Meeting 1", "meeting", capacity=10)
        a = self.room("Hall A", "hall", capacity=40)
        b = self.room("Hall B", "hall", capacity=40)
        hall = self.room("Hall", "hall", capacity=80, parts=[a, b])
        self.room("Branch study", branch="ALB")
        return s, m, a, b, hall

    def test_kept_after_bookings_cancels_and_halls(self):
        s, m, a, b, hall = self.rooms()
        self.assertGreater(self.kept(), 5 * 60)
        d = self.weekday_ahead(2)
        e = self.weekday_ahead(4, 8)
        g = dict(group_name="Club", group_contact="c@x")
        card = env.new_patron(session=db)
        mine = self.book(s, d + " 10:30", d + " 12:00", card=card)[0]["id"]
        self.book(m, d + " 12:00", d + " 13:00", **g)
        self.book(hall, d + " 14:00", d + " 16:00", **g)  # both halves change
        self.book(a, e + " 10:00", e + " 12:00", **g)     # the hall changes
        self.check(d, e)
        self.assertNotEqual(self.free(hall, d)[d]["free"], ["10:00-20:00"])
        self.change(mine, "cancel", reason="ill")
        self.check(d)
        self.assertEqual(self.free(s, d)[d]["free"], ["10:00-20:00"])
        # a recurring series, then one occurrence cancelled
        made = self.book(m, d + " 17:00", d + " 18:00", repeat="weekly",
                         until=self.day(40), **g)
        self.assertGreater(len(made), 3)
        self.change(made[1]["id"], "cancel", reason="moved")
        self.check(d, made[1]["start"][:10])

    def test_kept_after_no_show_release(self):
        # open all day today, so the bookings around now are inside the hours
        self.q("INSERT INTO branch_hours (branch_id, weekday, opens, closes) VALUES"
               " (%d, extract(isodow FROM library_today()), '00:00', '23:59')"
               " ON CONFLICT (branch_id, weekday) DO UPDATE SET opens = '00:00', closes = '23:59'"
               % ids["DWN"])
        s, m, a, b, hall = self.rooms()
        card = env.new_patron(session=db)
        # started 20 minutes ago, never checked in; and one later today
        late = self.past_booking(s, "date_trunc('minute', now()) - interval '20 minutes'", 120,
                                 patron=card)
        self.past_booking(a, "date_trunc('hour', now()) + interval '2 hours'", 60)
        self.check(self.day(0))
        self.assertEqual(self.one("SELECT * FROM rooms_tick()")["released"], 1)
        self.assertEqual(self.q("SELECT count(*) FROM room_block WHERE booking_id = %d" % late),
                         "0")
        self.check(self.day(0))

    def test_kept_after_hours_closed_days_categories_parts(self):
        s, m, a, b, hall = self.rooms()
        d = self.weekday_ahead(3)
        g = dict(group_name="Club", group_contact="c@x")
        self.book(m, d + " 12:00", d + " 13:00", **g)
        self.q("UPDATE branch_hours SET opens = '09:00', closes = '18:00'"
               " WHERE branch_id = %d AND weekday = 3" % ids["DWN"])
        self.check(d)
        self.assertEqual(self.free(s, d)[d]["opens"], "09:00")
        self.q("INSERT INTO branch_hours (branch_id, weekday, opens, closes) VALUES"
               " (%d, 7, '12:00', '16:00')" % ids["DWN"])
        self.check()
        self.q("DELETE FROM branch_hours WHERE branch_id = %d AND weekday = 7" % ids["DWN"])
        self.check()
        self.q("INSERT INTO branch_closed (branch_id, day) VALUES (%d, %s)" % (ids["DWN"], lit(d)))
        self.check(d)
        self.assertTrue(self.free(s, d)[d]["closed"])
        self.q("DELETE FROM branch_closed WHERE branch_id = %d AND day = %s"
               % (ids["DWN"], lit(d)))
        self.check(d)
        self.q("UPDATE room_category SET setup_minutes = 30, cleanup_minutes = 45"
               " WHERE code = 'meeting'")
        self.check(d)
        self.q("UPDATE room_category SET slot_minutes = 60, min_minutes = 120 WHERE code = 'study'")
        self.check(d)
        self.q("UPDATE room SET category = 'meeting' WHERE id = %d" % s)
        self.check(d)
        # a whole without bookings to come loses a part, then gets it back
        self.q("DELETE FROM room_part WHERE whole_id = %d AND part_id = %d" % (hall, b))
        self.check(d)
        self.q("INSERT INTO room_part (whole_id, part_id) VALUES (%d, %d)" % (hall, b))
        self.check(d)
        # a later days_ahead widens the span; rooms_tick's step fills the new days
        self.q("UPDATE room_category SET days_ahead = 300 WHERE code = 'hall'")
        self.assertEqual(self.q("SELECT room_free_span_move(true)"), "t")
        self.assertEqual(self.q("SELECT last_day - first_day FROM room_free_span"), "300")
        self.check(d)

    def test_kept_on_daylight_saving_days(self):
        # open through the night on Sundays, when the clocks change (2027-03-14 and
        # 2027-11-07 in New York); a span of 400 days holds both
        self.q("UPDATE room_category SET days_ahead = 700 WHERE code IN ('study', 'meeting')")
        self.q("INSERT INTO branch_hours (branch_id, weekday, opens, closes) VALUES"
               " (%d, 7, '00:00', '23:30')" % ids["DWN"])
        s, m, a, b, hall = self.rooms()
        self.q("SELECT room_free_span_move(true)")
        g = dict(group_name="Club", group_contact="c@x")
        self.book(s, "2027-03-14 01:00", "2027-03-14 03:00", **g)
        self.book(m, "2027-03-14 04:00", "2027-03-14 05:00", **g)
        self.book(s, "2027-11-07 01:00", "2027-11-07 02:00", **g)
        self.book(m, "2027-11-07 00:30", "2027-11-07 01:30", **g)
        n = self.kept()
        self.assertEqual(n, 6 * 401)
        for day in ("2027-03-12", "2027-11-05"):
            rows = self.same(day, 4)
            self.assertEqual(len(rows), 6 * 4)
        fwd = {r["day"]: r for r in self.rows("SELECT * FROM room_free(NULL, '2027-03-14', 1,"
                                              " NULL, %d, NULL, true)" % s)}
        self.assertEqual(fwd["2027-03-14"]["free"], ["00:00-01:00", "03:00-23:30"])
        # a new time zone: computed until the step refills the span in it
        self.q("UPDATE library_setting SET value = 'Europe/London' WHERE name = 'timezone'")
        self.same(days=30)
        self.same("2027-03-26", 5)
        self.q("SELECT room_free_span_move(true)")
        self.assertEqual(self.q("SELECT tz FROM room_free_span"), "Europe/London")
        self.kept()
        self.same("2027-03-26", 5)

    def test_today_cut_at_now(self):
        # open all day today: the kept row has the whole day, the answer only what is to come
        self.q("INSERT INTO branch_hours (branch_id, weekday, opens, closes) VALUES"
               " (%d, extract(isodow FROM library_today()), '00:00', '23:59')"
               " ON CONFLICT (branch_id, weekday) DO UPDATE SET opens = '00:00', closes = '23:59'"
               % ids["DWN"])
        s, m, a, b, hall = self.rooms()
        today = self.day(0)
        self.past_booking(m, "date_trunc('hour', now()) + interval '90 minutes'", 60)
        self.check(today)
        kept = self.q("SELECT free FROM room_day_free WHERE room_id = %d AND day = %s"
                      % (s, lit(today)))
        self.assertEqual(kept, "00:00-23:30")
        now = self.q("SELECT local_hhmm(now())")
        shown = self.free(s, today)[today]["free"]
        if now > "00:00" and now < "23:00":
            self.assertEqual(len(shown), 1)
            self.assertGreaterEqual(shown[0][:5], now)
            self.assertLess(shown[0][:5], "23:00")
        for row in self.rows("SELECT * FROM room_free(NULL, NULL, 1, NULL, NULL, NULL, true)"):
            for period in row["free"]:
                self.assertGreaterEqual(period[6:], now)

    def test_first_fill_and_computed_days(self):
        # nothing kept yet: everything computed; the step fills it
        self.q("UPDATE room_free_span SET tz = NULL; DELETE FROM room_day_free")
        s, m, a, b, hall = self.rooms()
        d = self.weekday_ahead(2)
        self.book(hall, d + " 14:00", d + " 16:00", group_name="Club", group_contact="c@x")
        self.assertEqual(self.q("SELECT count(*) FROM room_day_free"), "0")
        self.same()
        self.same(d, 3)
        self.assertEqual(self.q("SELECT room_free_span_move(true)"), "t")
        self.check(d)
        # days before today and after the span: computed, joined to the kept ones
        self.same(self.day(-5), 10)
        self.same(self.day(150), 90)


class Saves(RoomsTest):

    def test_categories_rooms_parts_and_session_changes(self):
        cat = self.one("SELECT * FROM room_category_save(%d, %d, '{\"code\": \"lab\", \"name\":"
                       " \"Lab\", \"slot_minutes\": 15, \"min_minutes\": 15, \"max_minutes\":"
                       " 90}')" % (ids["staff"], ids["workstation"]))
        self.assertEqual((cat["slot_minutes"], cat["days_ahead"]), (15, 14))
        self.refused("SELECT * FROM room_category_save(1, 1, '{\"code\": \"lab\","
                     " \"min_minutes\": 20}')", "CR400", "field:min_minutes")
        self.refused("SELECT * FROM room_category_save(1, 1, '{\"code\": \"Lab!\"}')",
                     "CR400", "field:code")
        self.assertEqual(self.q("SELECT count(*) FROM admin_audit WHERE action ="
                                " 'room_category_save' AND target = 'lab'"), "1")
        a = self.room("A", "lab")
        b = self.room("B", "lab")
        other = self.room("Far", "lab", branch="ALB")
        self.refused("SELECT * FROM room_save(1, 1, NULL, '{\"branch_code\": \"DWN\","
                     " \"name\": \"A\", \"capacity\": 2}')", "CR400", "field:name")
        self.refused("SELECT * FROM room_save(1, 1, NULL, '{\"branch_code\": \"DWN\","
                     " \"name\": \"AB\", \"capacity\": 2, \"part_ids\": [%d, %d]}')"
                     % (a, other), "CR400", "field:part_ids")
        self.refused("SELECT * FROM room_save(1, 1, %d, '{\"branch_code\": \"DWN\","
                     " \"name\": \"Z\", \"capacity\": 2}')" % ids["ALB"], "CR403", "branch")
        ab = self.room("AB", "lab", parts=[a, b])
        # a part is not split itself; a whole is not a part
        self.refused("SELECT * FROM room_save(1, 1, NULL, '{\"id\": %d, \"part_ids\": [%d, %d]}')"
                     % (a, b, ab), "CR400", "field:part_ids")
        self.assertEqual(self.one("SELECT part_names FROM room_list('DWN', NULL, false)"
                                  " WHERE id = %d" % ab)["part_names"], ["A", "B"])
        # unsplit again (no bookings)
        self.q("SELECT * FROM room_save(1, 1, NULL, '{\"id\": %d, \"part_ids\": []}')" % ab)
        self.assertEqual(self.q("SELECT room_units(%d)" % ab), "{%d}" % ab)

        # a patron's confirmation names the room and the time
        card = env.new_patron(session=db, contact_channel="email", email="p@example.org")
        d = self.weekday_ahead(4)
        bid = self.book(a, d + " 10:15", d + " 11:00", card=card)[0]["id"]
        body = self.q("SELECT body FROM notice WHERE booking_id = %d" % bid)
        self.assertIn("A at Downtown Library", body)
        self.assertIn("10:15-11:00", body)

        # a session moved to another time takes its booking along; cancelled, frees it
        p = self.one("SELECT * FROM program_save(1, 1, NULL, '{\"title\": \"Code club\","
                     " \"audience\": \"12-18\", \"branch_code\": \"DWN\"}')")
        doc = {"session": {"program_id": p["id"], "start": d + " 15:00", "end": d + " 16:00",
                           "room_id": b}}
        s1 = self.rows("SELECT * FROM program_session_save(%s, 1, 1, NULL, false, %s)"
                       % (key(), lit(harness.json.dumps(doc))))[0]
        moved = self.rows("SELECT * FROM program_session_save(%s, 1, 1, NULL, false, %s)"
                          % (key(), lit(harness.json.dumps(
                              {"session": {"id": s1["id"], "start": d + " 16:00",
                                           "end": d + " 17:00"}}))))[0]
        self.assertEqual((moved["start"][-5:], moved["room_id"]), ("16:00", b))
        self.assertNotEqual(moved["booking_id"], s1["booking_id"])
        self.assertEqual(self.q("SELECT status FROM room_booking WHERE id = %d"
                                % s1["booking_id"]), "cancelled")
        self.rows("SELECT * FROM program_session_save(%s, 1, 1, NULL, false, %s)"
                  % (key(), lit(harness.json.dumps({"session": {"id": s1["id"]},
                                                    "cancel": True}))))
        self.assertEqual(self.q("SELECT status FROM room_booking WHERE id = %d"
                                % moved["booking_id"]), "cancelled")
        self.assertEqual(self.free(b, d)[d]["free"], ["10:00-20:00"])


class ReviewFixes(RoomsTest):
    """The findings of the issue 11 review (REVIEW11.md), each shown fixed."""

    def session_sql(self, doc, override_ok=False, scope=None):
        return ("SELECT * FROM program_session_save(%s, %d, %d, %s, %s, %s)"
                % (key(), ids["staff"], ids["workstation"], "NULL" if scope is None else scope,
                   "true" if override_ok else "false", lit(harness.json.dumps(doc))))

    def program(self, branch="DWN"):
        return self.one("SELECT * FROM program_save(%d, %d, NULL, %s)"
                        % (ids["staff"], ids["workstation"], lit(harness.json.dumps(
                            {"title": "Chess", "audience": "19+", "branch_code": branch}))))["id"]

    def test_moving_a_session_checks_the_room(self):
        """Finding 1: a moved session's room exists, is at the program's branch, is active."""
        mine = self.room("Meeting 1", "meeting", capacity=10)
        far = self.room("Far room", "meeting", branch="ALB", capacity=10)
        old = self.room("Old room", "meeting", capacity=10, active=False)
        d = self.weekday_ahead(3)
        s = self.rows(self.session_sql({"session": {"program_id": self.program(),
                                                    "start": d + " 15:00", "end": d + " 16:00",
                                                    "room_id": mine}}))[0]
        move = lambda room: self.session_sql({"session": {"id": s["id"],  # noqa: E731
                                                          "room_id": room}})
        self.refused(move(999999999), "CR404", "room")
        self.refused(move(far), "CR400", "field:room_id")
        self.refused(move(old), "CR422", "room_inactive")
        # the refused moves left the session and its booking as they were
        self.assertEqual(self.q("SELECT status FROM room_booking WHERE id = %d"
                                % s["booking_id"]), "confirmed")
        # a move in time keeps the room, through the same checks
        moved = self.rows(self.session_sql({"session": {"id": s["id"], "start": d + " 17:00",
                                                        "end": d + " 18:00"}}))[0]
        self.assertEqual((moved["room_id"], moved["start"]), (mine, d + " 17:00"))

    def test_a_session_is_booked_beyond_the_rules_only_when_asked(self):
        """Finding 7: override is the document's, p_override_ok only allows it."""
        study = self.room("Study 1")
        d = self.weekday_ahead(2)
        doc = {"session": {"program_id": self.program(), "start": d + " 08:00",
                           "end": d + " 09:00", "room_id": study}}
        self.refused(self.session_sql(doc, override_ok=True), "CR422", "outside_hours")
        doc["override"] = True
        self.refused(self.session_sql(doc, override_ok=False), "CR403", "override")
        made = self.rows(self.session_sql(doc, override_ok=True))[0]
        self.assertTrue(made["made"])
        self.assertEqual(self.q("SELECT overridden FROM room_booking WHERE id = %d"
                                % made["booking_id"]), "t")

    def test_a_session_off_the_grid_holds_the_room_on_it(self):
        """A 10:40-11:15 session in a 30-minute room holds it 10:30-11:30; the session
        keeps its own times."""
        study = self.room("Study 1")
        d = self.weekday_ahead(2)
        made = self.rows(self.session_sql({"session": {
            "program_id": self.program(), "start": d + " 10:40", "end": d + " 11:15",
            "room_id": study}}))[0]
        self.assertTrue(made["made"])
        self.assertEqual(self.q("SELECT local_text(lower(during)) || ' ' || local_text(upper(during))"
                                " FROM room_booking WHERE id = %d" % made["booking_id"]),
                         "%s 10:30 %s 11:30" % (d, d))
        self.assertEqual(self.q("SELECT local_text(lower(during)) || ' ' || local_text(upper(during))"
                                " FROM program_session WHERE id = %d" % made["id"]),
                         "%s 10:40 %s 11:15" % (d, d))

    def test_room_book_refuses_a_program_session(self):
        """Finding 16: a session's room is booked with its session, not with room_book."""
        study = self.room("Study 1")
        d = self.weekday_ahead(2)
        s = self.rows(self.session_sql({"session": {"program_id": self.program(),
                                                    "start": d + " 15:00",
                                                    "end": d + " 16:00"}}))[0]
        self.refused_book("field:program_session_id", study, d + " 10:00", d + " 11:00",
                          "CR400", program_session_id=s["id"])
        self.assertEqual(self.q("SELECT count(*) FROM room_booking WHERE room_id = %d" % study),
                         "0")

    def test_anonymising_deletes_notices_and_blocks(self):
        """Findings 5 and 19: no notice ties the patron to an anonymised booking; its past
        blocks go."""
        s = self.room("Study 1")
        card = env.new_patron(session=db, contact_channel="email", email="p@example.org")
        old = self.past_booking(s, "now() - interval '40 days'", 60, status="completed",
                                patron=card)
        kept = self.past_booking(s, "now() - interval '3 days'", 60, status="completed",
                                 patron=card)
        for bid in (old, kept):
            self.q("SELECT notice_queue(patron_id, 'room_confirmed', NULL, NULL,"
                   " library_local_date(lower(during)), NULL, %d, id) FROM room_booking"
                   " WHERE id = %d" % (ids["DWN"], bid))
        self.assertEqual(self.q("SELECT count(*) FROM notice WHERE booking_id = %d" % old), "1")
        self.assertEqual(self.one("SELECT * FROM rooms_tick()")["anonymised"], 1)
        self.assertEqual(self.q("SELECT count(*) FROM notice WHERE booking_id = %d" % old), "0")
        self.assertEqual(self.q("SELECT count(*) FROM room_block WHERE booking_id = %d" % old),
                         "0")
        # a booking within the retention period keeps both
        self.assertEqual(self.q("SELECT count(*) FROM notice WHERE booking_id = %d" % kept), "1")
        self.assertEqual(self.q("SELECT count(*) FROM room_block WHERE booking_id = %d" % kept),
                         "1")

    def test_a_room_id_beyond_32_bits_is_booked(self):
        """Finding 18: the per-unit lock takes any bigint id."""
        self.q("INSERT INTO room (id, branch_id, name, capacity, category) OVERRIDING SYSTEM"
               " VALUE VALUES (3000000000, %d, 'Big id', 4, 'study')" % ids["DWN"])
        d = self.weekday_ahead(2)
        made = self.book(3000000000, d + " 10:00", d + " 11:00", group_name="Club",
                         group_contact="c@x")
        self.assertTrue(made[0]["made"])
        self.refused_book("slot_taken", 3000000000, d + " 10:00", d + " 11:00", "CR409",
                          group_name="Club", group_contact="c@x")

    def test_stats_label_rooms_by_branch_and_pls_counts_started_sessions(self):
        """Finding 24: same-named rooms at two branches stay apart; a session still to come
        is not counted in the PLS."""
        a = self.room("Study 1")
        b = self.room("Study 1", branch="ALB")
        for room in (a, b):
            self.past_booking(room, "now() - interval '2 days'", 60, status="completed")
        day = self.q("SELECT library_today() - 2")
        by = {tuple(r["keys"]): float(r["value"]) for r in self.rows(
            "SELECT keys, value FROM stats_query('room_bookings', %s, %s, 'none', '{room}',"
            " NULL, false, NULL)" % (lit(day), lit(day)))}
        self.assertEqual(by, {("DWN/Study 1",): 1.0, ("ALB/Study 1",): 1.0})
        pid = self.program()
        for at in ("now() - interval '2 minutes'", "now() + interval '2 minutes'"):
            self.q("INSERT INTO program_session (program_id, during, attendance) VALUES"
                   " (%d, tstzrange(%s, %s + interval '1 hour'), NULL)" % (pid, at, at))
        years = self.q("SELECT string_agg(DISTINCT extract(year FROM library_local_date("
                       "lower(during)))::text, ',') FROM program_session WHERE program_id = %d"
                       % pid)
        if "," in years:
            self.skipTest("the two sessions fall in two years")
        lines = {(r["code"], r["branch_code"]): r["value"]
                 for r in self.rows("SELECT * FROM pls_report(%s, NULL)" % years)}
        self.assertEqual(float(lines[("TOTPRO", "DWN")]), 1)
        self.assertEqual(float(lines[("ADULTPRO", None)]), 1)


class Race(unittest.TestCase):

    def test_seven_sessions_one_slot(self):
        """Seven sessions book the same slot at once: one booking, six slot_taken. It
        commits, so it removes its own rows afterwards (only its own: a request_log and an
        admin_audit row of the same kinds written before it are still there after)."""
        other_key = str(uuid.uuid4())
        db.query("INSERT INTO request_log (key, staff_id, kind) VALUES (%s, %d, 'room_book');"
                 " INSERT INTO admin_audit (staff_id, workstation_id, action, target)"
                 " VALUES (%d, %d, 'room_add', 'not the race')"
                 % (lit(other_key), ids["staff"], ids["staff"], ids["workstation"]))
        keys = [str(uuid.uuid4()) for _ in range(7)]
        room = int(db.query("SELECT id FROM room_save(%d, %d, NULL, '{\"branch_code\": \"DWN\","
                            " \"name\": \"Race room\", \"capacity\": 4, \"category\":"
                            " \"study\"}')" % (ids["staff"], ids["workstation"])))
        try:
            d = db.query("SELECT to_char(d, 'YYYY-MM-DD') FROM generate_series(library_today()"
                         " + 1, library_today() + 8, '1 day') d WHERE extract(isodow FROM d)"
                         " = 3 LIMIT 1")
            sessions = [env.session() for _ in range(7)]
            lock = env.session()
            # hold the room's row so that all seven are in flight before any commits
            lock.query("BEGIN; SELECT 1 FROM room WHERE id = %d FOR UPDATE" % room,
                       keep_transaction=True)
            for n, s in enumerate(sessions):
                doc = harness.json.dumps(dict(room_id=room, start=d + " 14:00",
                                              end=d + " 15:00", group_name="Desk %d" % n,
                                              group_contact="d@x"))
                s.send("SELECT made FROM room_book(%s, %d, %d, false, %s)"
                       % (lit(keys[n]), ids["staff"], ids["workstation"], lit(doc)))
            harness.wait_until(lambda: int(env.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")) >= 7,
                60, "all seven sessions waiting")
            lock.query("COMMIT")
            results = harness.finish_each(sessions)
            self.assertEqual(results.count("made"), 1)
            self.assertEqual([r for r in results if r != "made"], [("CR409", "slot_taken")] * 6)
            self.assertEqual(db.query("SELECT count(*) FROM room_booking WHERE room_id = %d"
                                      % room), "1")
        finally:
            db.query("DELETE FROM notice WHERE booking_id IN (SELECT id FROM room_booking"
                     " WHERE room_id = %d); DELETE FROM room_block WHERE unit_id = %d;"
                     " DELETE FROM room_booking WHERE room_id = %d;"
                     " DELETE FROM request_log WHERE key = ANY (%s::uuid[]);"
                     " DELETE FROM admin_audit WHERE action = 'room_add' AND target ="
                     " 'DWN Race room';"
                     " DELETE FROM room WHERE id = %d"
                     % (room, room, room, lit("{%s}" % ",".join(keys)), room))
            kept = db.query("SELECT (SELECT count(*) FROM request_log WHERE key = %s) + (SELECT"
                            " count(*) FROM admin_audit WHERE target = 'not the race')"
                            % lit(other_key))
            db.query("DELETE FROM request_log WHERE key = %s; DELETE FROM admin_audit"
                     " WHERE target = 'not the race'" % lit(other_key))
            self.assertEqual(kept, "2", "the race's clean-up removed rows not its own")


if __name__ == "__main__":
    unittest.main()
