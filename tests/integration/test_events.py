#!/usr/bin/env python3
"""Stored desk events (issue 15): desk_event() stores a row, carreld polls the table
and pushes each committed event once, with Event.id; out-of-order commits, dropped
database connections, replay on Subscribe.since_event_id, the desk resubscribing after
a reconnect, and retention."""

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import pb_message  # noqa: E402

REQ_SUBSCRIBE = 131
RESP_EVENT = 9
PASSWORD = "staff-password-123"
env = None
main = None


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        main = env.daemon(db_pool_size=4, event_poll_ms=100,
                          db_conninfo=env.conninfo + " application_name=events_main")
        admin = env.profile(main)
        env.add_workstations(admin, harness.BRANCH_DESKS)
        for user, role in [("libby", "librarian"), ("paula", "librarian")]:
            env.add_staff(admin, user, role, "DWN" if user == "libby" else "PRK", PASSWORD)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


def branch_id(code):
    return env.psql("SELECT id FROM branch WHERE code = '%s'" % code)


def emit(text, branch="DWN", session=None):
    """desk_event() committed through psql (or run on `session`, left open)."""
    sql = ("SELECT desk_event(%s, 'test', NULL, NULL, %s)"
           % (branch_id(branch), harness.sql_literal(text)))
    if session is not None:
        return session.query("BEGIN; " + sql, keep_transaction=True)
    return env.psql(sql)


def stored_id(text):
    return int(env.psql("SELECT id FROM desk_event WHERE text = %s"
                        % harness.sql_literal(text)))


def subscribe(daemon, ws="desk-dwn", user="libby"):
    """A desk of ws's branch subscribed, with nothing pending: an event an
    earlier test committed just before may reach a new subscriber when the
    daemon's next poll finds it (a loaded machine delays that poll), so a
    marker of our own is sent and read first."""
    w = daemon.logged_in_wire(ws, user, PASSWORD)
    r = w.call(REQ_SUBSCRIBE)
    assert r.status == "ok", r
    marker = unique("Subscribed")
    emit(marker, ws.split("-")[1].upper())
    events_until(w, marker)
    return w


def subscribe_since(w, since, all_branches=None):
    """Subscribe on w with since_event_id; the events pushed before the answer."""
    rid = w.send(REQ_SUBSCRIBE, pb_message((1, all_branches), (2, since)))
    got = []
    while True:
        r = w.recv()
        assert r is not None, "connection closed"
        if r.id == rid:
            assert r.status == "ok", r
            return got
        if r.id == 0 and RESP_EVENT in r.fields:
            got.append(event_of(r))


def event_of(r):
    ev = r.body(RESP_EVENT)
    return {"id": ev.get(8, [0])[0], "kind": ev[1][0].decode(), "branch": ev[2][0].decode(),
            "text": ev.get(3, [b""])[0].decode(), "time_ms": ev.get(4, [0])[0]}


def next_event(w, timeout=60):
    w.sock.settimeout(timeout)
    while True:
        r = w.recv()
        assert r is not None, "connection closed"
        if r.id == 0 and RESP_EVENT in r.fields:
            return event_of(r)


def events_until(w, marker, timeout=60):
    """The events pushed to w up to and including the one whose text is `marker`."""
    got = []
    while not got or got[-1]["text"] != marker:
        got.append(next_event(w, timeout))
    return got


def unique(prefix):
    return "%s %d" % (prefix, time.time_ns())


class Delivery(unittest.TestCase):
    def test_an_event_reaches_the_subscribed_desk_with_its_id(self):
        w = subscribe(main)
        other = subscribe(main, "desk-prk", "paula")
        text = unique("Delivered")
        emit(text)
        ev = next_event(w)
        self.assertEqual((ev["kind"], ev["branch"], ev["text"]), ("test", "DWN", text))
        self.assertEqual(ev["id"], stored_id(text))
        self.assertGreater(ev["time_ms"], 0)
        # The other branch hears its own event, not DWN's.
        marker = unique("PRK marker")
        emit(marker, "PRK")
        self.assertEqual([e["text"] for e in events_until(other, marker)], [marker])
        w.close()
        other.close()

    def test_a_change_made_through_the_daemon_is_pushed(self):
        """A hold placed at PRK on a title DWN has on its shelf (a write through the
        daemon) reaches DWN's desk: the write lane wakes the poll."""
        title = unique("Events title")
        env.new_item(title=title, branch="DWN")
        bib = env.psql("SELECT min(id) FROM bib WHERE title = '%s'" % title)
        card = env.new_patron("adult", "PRK")
        w = subscribe(main)
        r = env.carrel(env.profile(main, "desk-prk"), "hold", "place", card, "--bib", bib,
                       "--pickup", "PRK")
        self.assertEqual(r.code, 0, r)
        ev = next_event(w)
        self.assertEqual(ev["kind"], "hold_placed")
        self.assertIn(title, ev["text"])
        self.assertEqual(ev["id"], int(env.psql(
            "SELECT max(id) FROM desk_event WHERE kind = 'hold_placed'")))
        w.close()

    def test_refused_and_failed_requests_send_none(self):
        title = unique("Refused title")
        env.new_item(title=title, branch="DWN")
        bib = env.psql("SELECT min(id) FROM bib WHERE title = '%s'" % title)
        expired = env.new_patron("adult", "PRK", "2001-01-01")
        w = subscribe(main)
        # Refused by the rules: no hold, so no hold_placed event for DWN.
        r = env.carrel(env.profile(main, "desk-prk"), "hold", "place", expired, "--bib", bib,
                       "--pickup", "PRK")
        self.assertNotEqual(r.code, 0, r)
        # A failed request: a checkin of a barcode nobody has.
        r = env.carrel(env.profile(main), "checkin", "39999000000000")
        self.assertNotEqual(r.code, 0, r)
        # An event rolled back with its transaction.
        s = env.session()
        emit(unique("Rolled back"), session=s)
        s.query("ROLLBACK")
        s.close()
        marker = unique("After the refusals")
        emit(marker)
        self.assertEqual([e["text"] for e in events_until(w, marker)], [marker])
        w.close()


class Ordering(unittest.TestCase):
    def check_held(self, xid_first):
        """A transaction holds an event open while a later one commits and is pushed;
        then the first commits and is pushed too. Each exactly once. With xid_first, the
        later transaction took its xid first: the held one's xid is newer but its event id
        older, and the poll that pushes the later event (xmax = the later xid + 1, an empty
        xip) lists the held xid nowhere: `id > max_seen OR xid = ANY(xip)` would lose it."""
        w = subscribe(main)
        held, later = env.session(), env.session()
        first_text, second_text = unique("Held"), unique("Committed first")
        if xid_first:
            later.query("BEGIN; SELECT pg_current_xact_id()", keep_transaction=True)
            emit(first_text, session=held)
            later.query("SELECT desk_event(%s, 'test', NULL, NULL, %s); COMMIT"
                        % (branch_id("DWN"), harness.sql_literal(second_text)))
        else:
            emit(first_text, session=held)
            emit(second_text)
        ev = next_event(w)
        self.assertEqual(ev["text"], second_text)
        if not xid_first:
            # Polls go on (every 100 ms) while the first is held; it must not be lost.
            settle = unique("While held")
            emit(settle)
            self.assertEqual(next_event(w)["text"], settle)
        held.query("COMMIT")
        ev = next_event(w)
        self.assertEqual(ev["text"], first_text)
        self.assertLess(ev["id"], stored_id(second_text))
        marker = unique("Held marker")
        emit(marker)
        self.assertEqual([e["text"] for e in events_until(w, marker)], [marker])
        held.close()
        later.close()
        w.close()

    def test_an_event_held_open_is_delivered_when_it_commits(self):
        self.check_held(False)

    def test_a_newer_xid_with_an_older_id_is_not_lost(self):
        self.check_held(True)

    def test_many_concurrent_commits_each_once(self):
        w = subscribe(main)
        texts = [unique("Burst %d" % i) for i in range(40)]
        threads = [threading.Thread(target=emit, args=(t,)) for t in texts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        marker = unique("Burst marker")
        emit(marker)
        got = [e["text"] for e in events_until(w, marker)]
        self.assertEqual(sorted(got[:-1]), sorted(texts))
        w.close()


class Connections(unittest.TestCase):
    def test_database_connections_killed_while_an_event_commits(self):
        d = env.daemon(event_poll_ms=100, db_reconnect_ms=1000,
                       db_conninfo=env.conninfo + " application_name=events_kill")
        try:
            w = subscribe(d)
            warm = unique("Before the kill")
            emit(warm)
            self.assertEqual(next_event(w)["text"], warm)
            mine = "FROM pg_stat_activity WHERE application_name = 'events_kill'"
            pool = int(env.psql("SELECT count(*) " + mine))
            texts = []
            s = env.session()
            for i in range(3):
                # Each event must commit while the daemon has no connection (REVIEW15 17):
                # kill its connections, write the event, and commit only when the daemon
                # was still away after the write (else roll back and try again).
                while True:
                    # All connections back first, so that one kill takes them all down.
                    harness.wait_until(
                        lambda: int(env.psql("SELECT count(*) " + mine)) >= pool,
                        what="the daemon connected again")
                    env.psql("SELECT count(pg_terminate_backend(pid, 5000)) " + mine)
                    text = unique("Killed %d" % i)
                    emit(text, session=s)
                    # pg_stat_activity's first read in this transaction: fresh.
                    if s.query("SELECT count(*) " + mine, keep_transaction=True) == "0":
                        s.query("COMMIT")
                        texts.append(text)
                        break
                    s.query("ROLLBACK")
            s.close()
            got = []
            harness.wait_until(lambda: got.append(next_event(w)) or len(got) >= len(texts),
                               what="the events committed while the connections were down")
            self.assertEqual(sorted(e["text"] for e in got), sorted(texts))
            marker = unique("Kill marker")
            emit(marker)
            self.assertEqual([e["text"] for e in events_until(w, marker)], [marker])
            w.close()
        finally:
            d.stop()


class Replay(unittest.TestCase):
    def test_resubscribing_with_since_gets_exactly_the_missed_ones_of_its_branch(self):
        control = subscribe(main)  # stays: tells when the daemon has seen the events
        w = subscribe(main)
        seen_text = unique("Seen")
        emit(seen_text)
        seen = next_event(w)
        self.assertEqual(seen["text"], seen_text)
        w.close()  # the desk goes away
        missed = [unique("Missed %d" % i) for i in range(3)]
        for t in missed:
            emit(t)
        emit(unique("Other branch"), "PRK")
        env.psql("SELECT desk_event_to(%s, 'ticket_assigned', 1, ARRAY['paula'], 'For Paula')"
                 % branch_id("DWN"))
        env.psql("SELECT desk_event_to(%s, 'ticket_assigned', 1, ARRAY['libby'], %s)"
                 % (branch_id("PRK"), harness.sql_literal(missed[0] + " for libby")))
        missed.append(missed[0] + " for libby")
        events_until(control, missed[-1])  # all pushed live (to the desks still there)
        control.close()
        w = main.logged_in_wire("desk-dwn", "libby", PASSWORD)
        got = subscribe_since(w, seen["id"])
        self.assertNotIn("events_missed", [e["kind"] for e in got])
        ids = [e["id"] for e in got]
        self.assertEqual(len(ids), len(set(ids)), got)
        self.assertEqual(ids, sorted(ids))  # oldest first
        after = [e["text"] for e in got if e["id"] > seen["id"]]
        self.assertEqual(after, missed)  # not PRK's, not Paula's
        # Below since_event_id only the window of ids a late commit may have, all DWN's
        # (or libby's): the desk drops those it showed.
        below = [e for e in got if e["id"] <= seen["id"]]
        self.assertIn(seen["id"], [e["id"] for e in below])
        self.assertTrue(all(e["id"] > seen["id"] - 256 for e in below), below)
        self.assertTrue(all(e["branch"] == "DWN" for e in below
                            if not e["text"].endswith("for libby")), below)
        # Nothing more: none of them again, live.
        marker = unique("Replay marker")
        emit(marker)
        self.assertEqual([e["text"] for e in events_until(w, marker)], [marker])
        w.close()
        # Without since_event_id, nothing is replayed.
        w = subscribe(main)
        marker = unique("No replay marker")
        emit(marker)
        self.assertEqual([e["text"] for e in events_until(w, marker)], [marker])
        w.close()

    def test_a_late_committer_far_below_since_is_replayed(self):
        """REVIEW15 3: a transaction drew its id before the desk's last event, 300 ids
        earlier (past the old window of 256), and commits while the desk is away: the
        replay from the poller's marks sends it, and says nothing is missing."""
        control = subscribe(main)
        w = subscribe(main)
        held = env.session()
        late = unique("Late committer")
        emit(late, session=held)
        env.psql("SELECT desk_event(%s, 'test', NULL, NULL, 'Bulk') FROM generate_series(1, 300)"
                 % branch_id("PRK"))
        last = unique("Last seen")
        emit(last)
        self.assertEqual(events_until(w, last)[-1]["text"], last)
        seen_id = stored_id(last)
        w.close()  # the desk goes away; the held transaction commits
        held.query("COMMIT")
        held.close()
        self.assertGreater(seen_id - stored_id(late), 256)
        events_until(control, late)  # the daemon pushed it live
        control.close()
        w = main.logged_in_wire("desk-dwn", "libby", PASSWORD)
        got = subscribe_since(w, seen_id)
        self.assertIn(late, [e["text"] for e in got])
        self.assertNotIn("events_missed", [e["kind"] for e in got])
        self.assertNotIn("Bulk", [e["text"] for e in got])  # PRK's
        w.close()

    def test_more_than_the_cap_missed_is_said(self):
        """REVIEW15 3b: more than 1,000 missed: the newest 1,000 come, and an events_missed
        event (no id) tells the desk the rest did not."""
        control = subscribe(main)
        w = subscribe(main)
        first = unique("Before the flood")
        emit(first)
        self.assertEqual(next_event(w)["text"], first)
        w.close()
        flood = unique("Flood")
        env.psql("SELECT desk_event(%s, 'test', NULL, NULL, %s || ' ' || n)"
                 " FROM generate_series(1, 1100) n"
                 % (branch_id("DWN"), harness.sql_literal(flood)))
        live = [e for e in events_until(control, flood + " 1100", timeout=120)
                if e["text"].startswith(flood)]
        # One transaction, three pages of the poll (REVIEW15 5): each once, in id order.
        self.assertEqual([e["text"] for e in live],
                         ["%s %d" % (flood, n) for n in range(1, 1101)])
        control.close()
        w = main.logged_in_wire("desk-dwn", "libby", PASSWORD)
        got = subscribe_since(w, stored_id(first))
        stored = [e for e in got if e["id"]]
        self.assertEqual(len(stored), 1000)
        self.assertEqual(stored[-1]["text"], flood + " 1100")
        self.assertEqual([e["kind"] for e in got if not e["id"]], ["events_missed"])
        w.close()

    def test_since_zero_is_no_replay(self):
        """REVIEW15 15: since_event_id 0 replays nothing (as absent)."""
        w = main.logged_in_wire("desk-dwn", "libby", PASSWORD)
        self.assertEqual(subscribe_since(w, 0), [])
        w.close()

    def test_coordinator_replay_hears_every_branch_with_all_branches(self):
        control = main.logged_in_wire("desk-dwn", "admin", harness.ADMIN_PASSWORD)
        # An id no poll delivered: the window, empty; and said (events_missed, no id).
        self.assertEqual([e for e in subscribe_since(control, 2**62, True) if e["id"]], [])
        emit(unique("Before"), "PRK")
        since = int(env.psql("SELECT max(id) FROM desk_event"))
        texts = [unique("All %s" % b) for b in ("DWN", "PRK", "ALB")]
        for t, b in zip(texts, ("DWN", "PRK", "ALB")):
            emit(t, b)
        events_until(control, texts[-1])
        w = main.logged_in_wire("desk-dwn", "admin", harness.ADMIN_PASSWORD)
        got = [e["text"] for e in subscribe_since(w, since, True) if e["id"] > since]
        self.assertEqual(got, texts)
        # A branch's desk (no all_branches) replays its branch's only.
        w2 = main.logged_in_wire("desk-prk", "paula", PASSWORD)
        got = [e["text"] for e in subscribe_since(w2, since) if e["id"] > since]
        self.assertEqual(got, [texts[1]])
        w.close()
        w2.close()
        control.close()


class Desk:
    """A `carrel --json desk` process on pipes."""

    def __init__(self, prof):
        argv = [harness.CARREL, "-c", prof, "--json", "desk"]
        e = dict(os.environ)
        e.pop("CARREL_PASSWORD", None)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=e)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send(self, *lines):
        self.proc.stdin.write("".join(line + "\n" for line in lines))
        self.proc.stdin.flush()

    def expect(self, pattern, timeout=60):
        deadline = time.time() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                raise AssertionError("no line matching %r; seen:\n%s"
                                     % (pattern, "\n".join(self.seen)))
            if line is None:
                raise AssertionError("desk ended before %r; seen:\n%s"
                                     % (pattern, "\n".join(self.seen)))
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def events(self):
        out = []
        for line in self.seen:
            doc = json.loads(line)
            if "event" in doc:
                out.append(doc["event"])
        return out

    def finish(self):
        self.proc.stdin.close()
        code = self.proc.wait(timeout=60)
        stderr = self.proc.stderr.read()
        self.proc.stderr.close()
        for mark in harness.SANITIZER_MARKS:
            if mark in stderr:
                raise AssertionError("sanitizer report from carrel desk:\n" + stderr)
        return code


class DeskReconnect(unittest.TestCase):
    def test_the_desk_is_sent_what_it_missed_after_a_reconnect(self):
        d = env.daemon(event_poll_ms=100)
        try:
            prof = env.profile(d, "desk-dwn", "libby", PASSWORD)
            with open(prof, "a") as f:
                f.write("offline_dir = off\n")  # reconnecting, not offline
            s = Desk(prof)
            s.expect('"desk"')
            s.send(":ping")
            s.expect('"pong"')  # the subscription went before the ping
            first = unique("Desk first")
            emit(first)
            s.expect(re.escape(first))
            d.stop()
            s.expect('"network_error"')
            missed = [unique("Desk missed %d" % i) for i in range(2)]
            for t in missed:
                emit(t)
            emit(unique("Desk other branch"), "PRK")
            d.start()  # same port
            s.expect(re.escape(missed[-1]), timeout=120)
            marker = unique("Desk marker")
            emit(marker)
            s.expect(re.escape(marker))
            stored = [e for e in s.events() if e.get("id")]  # not the ping's test event
            # The daemon restarted: its replay falls back to the window of ids, which may
            # hold other tests' events written just before the desk started.
            mine = [first] + missed + [marker]
            self.assertEqual([e["text"] for e in stored if e["text"] in mine], mine)
            self.assertTrue(any(e.get("kind") == "events_missed" for e in s.events()))
            ids = [e["id"] for e in stored]
            self.assertEqual(len(ids), len(set(ids)))
            self.assertEqual(s.finish(), 0)
        finally:
            d.stop()

    def test_a_late_commit_below_the_desks_first_event_is_shown(self):
        """REVIEW15 1: a transaction draws its id before the desk's first event and
        commits while the desk is away: the replay sends it and the desk shows it (the
        old floor dropped every id below the first shown)."""
        d = env.daemon(event_poll_ms=100)
        try:
            prof = env.profile(d, "desk-dwn", "libby", PASSWORD)
            with open(prof, "a") as f:
                f.write("offline_dir = off\n")
            s = Desk(prof)
            s.expect('"desk"')
            s.send(":ping")
            s.expect('"pong"')
            held = env.session()
            late = unique("Desk late")
            emit(late, session=held)
            first = unique("Desk first shown")
            emit(first)
            s.expect(re.escape(first))
            d.stop()
            s.expect('"network_error"')
            held.query("COMMIT")
            held.close()
            d.start()
            s.expect(re.escape(late), timeout=120)
            marker = unique("Desk late marker")
            emit(marker)
            s.expect(re.escape(marker))
            texts = [e["text"] for e in s.events() if e.get("id")]
            self.assertEqual([t for t in texts if t in (first, late, marker)],
                             [first, late, marker])
            self.assertEqual(s.finish(), 0)
        finally:
            d.stop()


class Retention(unittest.TestCase):
    def test_old_events_are_deleted(self):
        old, recent = unique("Old"), unique("Recent")
        env.psql("INSERT INTO desk_event (branch_code, kind, text, at) VALUES"
                 " ('DWN', 'test', %s, now() - interval '49 hours'),"
                 " ('DWN', 'test', %s, now() - interval '47 hours')"
                 % (harness.sql_literal(old), harness.sql_literal(recent)))
        d = env.daemon(event_poll_ms=100)  # the first tick prunes
        try:
            harness.wait_until(lambda: env.psql(
                "SELECT count(*) FROM desk_event WHERE text = %s"
                % harness.sql_literal(old)) == "0", what="the old event deleted")
            self.assertEqual(env.psql("SELECT count(*) FROM desk_event WHERE text = %s"
                                      % harness.sql_literal(recent)), "1")
            harness.wait_until(lambda: "desk_event retention: " in d.log_text(),
                               what="the retention log line")
        finally:
            d.stop()
        d = env.daemon(event_poll_ms=100, event_retention_hours=46)
        try:
            harness.wait_until(lambda: env.psql(
                "SELECT count(*) FROM desk_event WHERE text = %s"
                % harness.sql_literal(recent)) == "0", what="the 47-hour-old event deleted")
        finally:
            d.stop()
        self.assertIn("retention period must be at least one hour",
                      self.sql_error("SELECT desk_event_prune(0)"))

    def sql_error(self, sql):
        try:
            env.psql(sql)
        except harness.SqlError as e:
            return str(e)
        self.fail("no error from %s" % sql)


if __name__ == "__main__":
    harness.main()
