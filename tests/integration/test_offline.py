#!/usr/bin/env python3
"""Offline circulation at the desk (issue 14): `carrel desk` fed by a scanner
script keeps lending when the daemon dies (SIGKILL) and uploads its journal
when the daemon is back, every scan in the database exactly once or in the
exceptions report with its reason; a desk started while the daemon is down
works from its cache; an upload sent twice applies nothing twice; a blocked
card is refused offline; `carrel offline status|upload|exceptions|resolve`.
The replay rules themselves are test_offline_sql.py's."""

import json
import os
import pty
import queue
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = "staff-password-123"
env = None
main = None


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        main = env.daemon()
        admin = env.profile(main)
        for user, role in [("clara", "clerk"), ("manny", "branch_manager")]:
            env.add_staff(admin, user, role, "DWN", PASSWORD)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    try:
        problems = env.psql("SELECT count(*) FROM circ_invariants()")
        assert problems == "0", env.psql("SELECT * FROM circ_invariants()")
    finally:
        env.stop()


def profile(daemon, user="clara"):
    return env.profile(daemon, "desk-dwn", user, PASSWORD)


def offline_dir(prof):
    with open(prof) as f:
        for line in f:
            if line.startswith("offline_dir = "):
                return line.split(" = ", 1)[1].strip()
    raise AssertionError("no offline_dir in " + prof)


def wait_for(cond, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def q(sql):
    return env.psql(sql)


def loans(item):
    """(loans ever, open loans) of an item."""
    out = q("SELECT count(*), count(*) FILTER (WHERE l.returned_at IS NULL) FROM loan l"
            " JOIN item i ON i.id = l.item_id WHERE i.barcode = '%s'" % item)
    return tuple(int(x) for x in out.split("|"))


def open_loan_card(item):
    return q("SELECT p.card FROM loan l JOIN item i ON i.id = l.item_id JOIN patron p"
             " ON p.id = l.patron_id WHERE i.barcode = '%s' AND l.returned_at IS NULL" % item)


def events(item, action):
    return int(q("SELECT count(*) FROM circ_event e JOIN item i ON i.id = e.item_id"
                 " WHERE i.barcode = '%s' AND e.action = '%s'" % (item, action)))


def exceptions_of(barcode):
    """[(op, outcome, reason)] of the offline exceptions of a barcode."""
    out = q("SELECT op, outcome, reason FROM offline_exception WHERE barcode = '%s'"
            " ORDER BY id" % barcode)
    return [tuple(line.split("|")) for line in out.splitlines() if line]


class Desk:
    """`carrel --json desk` on pipes, driven one scan at a time, as a scanner script does."""

    def __init__(self, prof, *args):
        argv = [harness.CARREL, "-c", prof, "--json", "desk"] + list(args)
        e = dict(os.environ)
        e.pop("CARREL_PASSWORD", None)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=e)
        self.lines = queue.Queue()
        self.seen = []
        self.stderr = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send(self, *lines):
        self.proc.stdin.write("".join(line + "\n" for line in lines))
        self.proc.stdin.flush()

    def expect(self, test, timeout=60):
        """Read JSON lines until test(obj) is true; return obj."""
        deadline = time.time() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                raise AssertionError("no line as expected within %ss; seen:\n%s"
                                     % (timeout, "\n".join(self.seen)))
            if line is None:
                raise AssertionError("desk ended; seen:\n%s\nstderr:\n%s"
                                     % ("\n".join(self.seen), self.finish()))
            self.seen.append(line)
            try:
                obj = json.loads(line)
            except ValueError:
                raise AssertionError("not a JSON line: %r" % line)
            if test(obj):
                return obj

    def scan_offline(self, scan, op):
        """Scan; expect it journaled offline as op."""
        self.send(scan)
        return self.expect(lambda o: o.get("offline", {}).get("barcode") == scan
                           and o["offline"]["op"] == op)

    def finish(self, timeout=60):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        code = self.proc.wait(timeout=timeout)
        self.stderr = self.proc.stderr.read()
        self.proc.stderr.close()
        while True:
            line = self.lines.get(timeout=10)
            if line is None:
                break
            self.seen.append(line)
        self.proc.stdout.close()
        for mark in harness.SANITIZER_MARKS:
            if mark in self.stderr:
                raise AssertionError("sanitizer report from carrel desk:\n" + self.stderr)
        return code


def offline_notice(o):
    return o.get("status") == "offline" and "OFFLINE" in o.get("message", "")


def desk_with_cache(daemon, prof):
    """A desk that has been online long enough to save its offline cache."""
    s = Desk(prof)
    s.expect(lambda o: "desk" in o and o["desk"]["status"] == "online")
    cache = os.path.join(offline_dir(prof), "desk-dwn.cache")
    wait_for(lambda: os.path.exists(cache), "the offline cache " + cache)
    return s


class KillTheDaemon(unittest.TestCase):
    def test_scans_survive_a_killed_daemon_exactly_once(self):
        d = env.daemon()
        prof = profile(d)
        p1, p2 = env.new_patron(), env.new_patron()
        blocked = env.new_patron()
        q("INSERT INTO patron_block (patron_id, reason) SELECT id, 'Test' FROM patron"
          " WHERE card = '%s'" % blocked)
        out1, out2 = env.new_item(), env.new_item()  # lent before the session
        for item in (out1, out2):
            r = env.carrel(profile(d), "checkout", p1, item)
            self.assertEqual(r.code, 0, r)
        online, inflight, a, b, c, e = (env.new_item() for _ in range(6))
        slow = env.new_item(title="Slow offline copy")
        unknown = harness.mod10("3123499%06d" % env.next_number())
        # A checkout of this title waits for an advisory lock the test holds, so that the
        # daemon dies with it in flight however busy the machine is.
        q("CREATE FUNCTION offline_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
          "IF (SELECT b.title FROM item i JOIN bib b ON b.id = i.bib_id "
          "WHERE i.id = NEW.item_id) = 'Slow offline copy' THEN "
          "PERFORM pg_advisory_xact_lock(8301); END IF; "
          "RETURN NEW; END $$; CREATE TRIGGER offline_slow BEFORE INSERT ON loan "
          "FOR EACH ROW EXECUTE FUNCTION offline_slow()")
        self.addCleanup(q, "DROP TRIGGER offline_slow ON loan; DROP FUNCTION offline_slow()")
        lock = harness.AdvisoryLock(env, 8301)
        self.addCleanup(lock.release)

        s = desk_with_cache(d, prof)
        s.send(p1)
        s.expect(lambda o: "patron" in o)
        s.send(online)
        s.expect(lambda o: o.get("checkout", {}).get("barcode") == online)
        s.send(slow)
        lock.wait_for_waiters(1)

        d.proc.kill()  # SIGKILL in the middle of the session, a checkout in flight
        d.check_clean(d.proc.wait(), expect_code=-signal.SIGKILL)
        s.expect(offline_notice)
        # The scan in flight is journaled with a key of its own; the database goes on
        # with it without the daemon, so the server has it too: the replay must not
        # lend it twice.
        s.expect(lambda o: o.get("offline", {}).get("barcode") == slow)
        s.expect(lambda o: o.get("status") == "offline" and "in flight" in o["message"])
        lock.release()
        wait_for(lambda: loans(slow) == (1, 1), "the checkout in flight to commit")
        journaled = [slow]

        # The daemon is gone: the next scans are journaled.
        s.send(inflight)
        s.expect(lambda o: o.get("offline", {}).get("barcode") == inflight)
        journaled.append(inflight)
        for item in (a, b):
            o = s.scan_offline(item, "checkout")
            self.assertRegex(o["offline"]["due"], r"^\d{4}-\d\d-\d\d$")
            journaled.append(item)
        # The next patron's card switches patron; a blocked card is refused.
        s.send(p2)
        s.expect(lambda o: o.get("offline", {}).get("patron") == p2)
        journaled.append(s.scan_offline(c, "checkout")["offline"]["barcode"])
        s.send(blocked)
        o = s.expect(lambda o: o.get("reason") == "offline_blocked")
        self.assertEqual((o["ok"], o["blocked"], o["scan"]), (False, "blocked", blocked))
        s.send(e)  # no patron after the refusal: nothing is lent to the blocked card
        s.expect(lambda o: o.get("status") == "usage_error" or "offline" in o)
        s.send(":checkin")
        for item in (out1, out2, online, unknown):
            journaled.append(s.scan_offline(item, "checkin")["offline"]["barcode"])

        d.start()  # same port, same database
        up = s.expect(lambda o: "offline_upload" in o, timeout=120)["offline_upload"]
        self.assertTrue(up["complete"], up)
        self.assertEqual(up["left"], 0)
        self.assertEqual(up["applied"] + up["warnings"] + up["skipped"], len(journaled), up)
        # Online again: the next scan goes to the server.
        s.send(":checkout", p2, e)
        s.expect(lambda o: o.get("checkout", {}).get("barcode") == e)
        self.assertEqual(s.finish(), 0)

        # Every scan once in the database, or in the report with its reason.
        for item in (slow, inflight, a, b):
            self.assertEqual(loans(item), (1, 1), item)
            self.assertEqual(open_loan_card(item), p1)
            self.assertEqual(events(item, "checkout"), 1, item)
        self.assertEqual(loans(c), (1, 1))
        self.assertEqual(open_loan_card(c), p2)
        for item in (out1, out2, online):
            self.assertEqual(loans(item), (1, 0), item)
            self.assertEqual(events(item, "checkout"), 1, item)
            self.assertEqual(events(item, "checkin"), 1, item)
        self.assertEqual(exceptions_of(unknown), [("checkin", "skipped", "item_not_found")])
        # The checkout in flight: already lent when replayed (nothing to do), or its
        # loan began after the scan's time (changed_after): listed, never lent twice.
        self.assertIn(exceptions_of(slow), ([], [("checkout", "skipped", "changed_after")]))
        self.assertEqual(q("SELECT count(*) FROM loan l JOIN patron p ON p.id = l.patron_id"
                           " WHERE p.card = '%s'" % blocked), "0")
        self.assertEqual(loans(e), (1, 1))
        # The journal was renamed when every entry was done.
        names = os.listdir(offline_dir(prof))
        self.assertTrue(any(re.match(r"^desk-dwn\.journal\.\d{8}T\d{6}\.done$", n)
                            for n in names), names)
        r = env.carrel(prof, "offline", "status")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["journal"]["pending"], 0, r)
        self.assertEqual(r.json["cache"]["branch_code"], "DWN", r)
        d.stop()


class StartOffline(unittest.TestCase):
    def test_desk_started_while_the_daemon_is_down_and_an_upload_sent_twice(self):
        d = env.daemon()
        prof = profile(d)
        card = env.new_patron()
        out = env.new_item()
        self.assertEqual(env.carrel(prof, "checkout", card, out).code, 0)
        x, y = env.new_item(), env.new_item()
        s = desk_with_cache(d, prof)
        self.assertEqual(s.finish(), 0)
        d.stop()

        s = Desk(prof)
        header = s.expect(lambda o: "desk" in o)
        self.assertEqual(header["desk"]["status"], "offline")
        s.expect(offline_notice)
        s.send(card)
        s.expect(lambda o: o.get("offline", {}).get("patron") == card)
        s.scan_offline(x, "checkout")
        s.scan_offline(y, "checkout")
        s.send(":renew " + x)
        s.expect(lambda o: o.get("offline", {}).get("op") == "renew")
        s.send(":account")  # needs the server
        s.expect(lambda o: o.get("status") == "offline" and ":account" in o["message"])
        s.send(":checkin")
        s.scan_offline(out, "checkin")
        # The running desk holds its journal: an upload beside it is refused.
        r = env.carrel(prof, "offline", "upload")
        self.assertEqual(r.code, 1, r)
        self.assertIn("in use", r.json["message"])
        self.assertEqual(s.finish(), 0)  # leaves with the journal kept
        self.assertTrue(any("not uploaded yet" in line for line in s.seen), s.seen)

        journal = os.path.join(offline_dir(prof), "desk-dwn.journal")
        r = env.carrel(prof, "offline", "status")
        self.assertEqual((r.code, r.json["journal"]["pending"]), (0, 4), r)
        copy = journal + ".copy"
        shutil.copy(journal, copy)

        d.start()
        r = env.carrel(prof, "offline", "upload")
        self.assertEqual(r.code, 0, r)
        first = (r.json["applied"], r.json["warnings"], r.json["skipped"])
        self.assertEqual(sum(first), 4, r)
        self.assertTrue(r.json["complete"])
        # The renewal the same day as the loan changes nothing (already due then).
        state = [loans(x), loans(y), loans(out), events(x, "renew")]
        self.assertEqual(state, [(1, 1), (1, 1), (1, 0), 0])
        nexc = q("SELECT count(*) FROM offline_exception")

        # The same journal again (an upload whose done marks were lost): nothing twice.
        shutil.move(copy, journal)
        r = env.carrel(prof, "offline", "upload")
        self.assertEqual(r.code, 0, r)
        self.assertEqual((r.json["applied"], r.json["warnings"], r.json["skipped"]), first)
        self.assertEqual([loans(x), loans(y), loans(out), events(x, "renew")], state)
        self.assertEqual(events(x, "checkout"), 1)
        self.assertEqual(q("SELECT count(*) FROM offline_exception"), nexc)
        r = env.carrel(prof, "offline", "upload")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["left"], 0)
        d.stop()

    def test_offline_prompt_on_a_terminal(self):
        d = env.daemon()
        prof = profile(d)
        card = env.new_patron()
        s = desk_with_cache(d, prof)
        self.assertEqual(s.finish(), 0)
        d.stop()
        home = os.path.join(env.dir, "home-offline-tty")
        os.makedirs(home, exist_ok=True)
        pid, fd = pty.fork()
        if pid == 0:
            os.environ["HOME"] = home
            os.environ.pop("CARREL_PASSWORD", None)
            try:
                os.execv(harness.CARREL, [harness.CARREL, "-c", prof, "desk"])
            finally:
                os._exit(127)
        seen = b""

        def until(marker, timeout=60):
            nonlocal seen
            deadline = time.time() + timeout
            while marker.encode() not in seen:
                self.assertLess(time.time(), deadline, "no %r on the terminal: %r"
                                % (marker, seen))
                r, _, _ = select.select([fd], [], [], 0.2)
                if r:
                    try:
                        chunk = os.read(fd, 4096)
                    except OSError:
                        chunk = b""
                    self.assertTrue(chunk, "terminal closed before %r: %r" % (marker, seen))
                    seen += chunk

        try:
            until("Carrel desk — OFFLINE — clara at desk-dwn")
            until("OFFLINE checkout> ")
            os.write(fd, (card + "\r").encode())
            until("OFFLINE checkout card %s> " % card)
            os.write(fd, b":checkin\r")
            until("OFFLINE checkin> ")
            os.write(fd, b":quit\r")
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        finally:
            os.close(fd)
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass

    def test_probing_a_server_that_never_answers_keeps_the_desk_responsive(self):
        # The daemon's port taken by a listener that never speaks: each
        # reconnect attempt connects and then waits for TLS. Scans made
        # meanwhile wait for the attempt, so it must give up soon (2 s).
        import socket
        d = env.daemon()
        prof = profile(d)
        s = desk_with_cache(d, prof)
        self.assertEqual(s.finish(), 0)
        d.stop()
        s = Desk(prof)
        s.expect(offline_notice)
        mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        mute.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        mute.bind(("127.0.0.1", d.port))
        mute.listen(64)  # never accepted: the kernel completes the handshakes
        try:
            s.send(":checkin")
            worst = 0.0
            end = time.time() + 9  # probes at about 1, 3 and 7 s
            n = 0
            while time.time() < end:
                n += 1
                scan = "3999%010d" % n
                t = time.time()
                s.scan_offline(scan, "checkin")
                worst = max(worst, time.time() - t)
                time.sleep(0.2)
            self.assertLess(worst, 4.5, "a scan waited %.1f s" % worst)
            self.assertEqual(s.finish(), 0)
        finally:
            mute.close()

    def test_no_cache_no_offline(self):
        d = env.daemon()
        prof = profile(d)
        d.stop()
        s = Desk(prof)
        self.assertEqual(s.finish(), 5)


class Exceptions(unittest.TestCase):
    def write_journal(self, prof, entries):
        """A journal written as a desk writes it: (op, card, barcode) each, or
        (op, card, barcode, {field: value}) to write some fields otherwise."""
        path = os.path.join(offline_dir(prof), "desk-dwn.journal")
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        now = int(time.time() * 1000) - 60000
        with open(path, "a") as f:
            for n, (op, card, barcode, *other) in enumerate(entries, 1):
                line = {"v": 1, "seq": n, "key": str(uuid.uuid4()), "op": op, "card": card,
                        "barcode": barcode, "ws_ms": now + n, "offset_ms": 0, "at_ms": now + n,
                        "due": "", "clerk": "clara"}
                line.update(other[0] if other else {})
                f.write(json.dumps(line) + "\n")
        return path

    def test_entries_never_applicable_do_not_block_the_rest(self):
        # Between good scans: a 70-byte mis-scan, a scan from a desk whose clock
        # read 1970, an entry the server refuses outright (a due date that is
        # no date), and one dated after the upload's login (no offline scan).
        clerk = profile(main, "clara")
        card = env.new_patron()
        good = [env.new_item() for _ in range(3)]
        long_scan = "3" * 70
        ahead = int(time.time() * 1000) + 3600 * 1000
        dead_clock = env.new_item()
        # (The 1970 one first: later in the journal its time would be raised
        # to the one before it, as after a clock stepped back.)
        path = self.write_journal(clerk, [
            ("checkin", "", dead_clock, {"at_ms": 5, "ws_ms": 5}),
            ("checkout", card, good[0]),
            ("checkout", card, long_scan),
            ("checkout", card, good[1]),
            ("checkout", card, env.new_item(), {"due": "soon"}),
            ("checkout", card, good[2], {"at_ms": ahead, "ws_ms": ahead}),
        ])
        r = env.carrel(clerk, "offline", "upload")
        self.assertEqual(r.code, 0, r)
        self.assertEqual((r.json["applied"], r.json["skipped"], r.json["complete"]),
                         (2, 4, True), r)
        self.assertEqual([loans(g) for g in good], [(1, 1), (1, 1), (0, 0)])
        self.assertFalse(os.path.exists(path))  # every entry done: renamed
        self.assertEqual(exceptions_of(long_scan[:64]), [("checkout", "skipped", "bad_entry")])
        self.assertEqual(exceptions_of(dead_clock), [("checkin", "skipped", "bad_entry")])
        self.assertEqual(exceptions_of(good[2]), [("checkout", "skipped", "while_online")])
        r = env.carrel(profile(main, "manny"), "offline", "exceptions")
        listed = dict((x.get("barcode"), x["reason"]) for x in r.json["exceptions"])
        self.assertEqual(listed.get(long_scan[:64]), "bad_entry", r)
        self.assertEqual(listed.get(good[2]), "while_online", r)
        r = env.carrel(clerk, "offline", "upload")
        self.assertEqual((r.code, r.json["left"]), (0, 0), r)

    def test_desk_refuses_a_scan_longer_than_any_barcode(self):
        d = env.daemon()
        prof = profile(d)
        card = env.new_patron()
        s = desk_with_cache(d, prof)
        self.assertEqual(s.finish(), 0)
        d.stop()
        scans = env.carrel(prof, "offline", "status").json["journal"]["scans"]
        s = Desk(prof)
        s.expect(offline_notice)
        s.send(card)
        s.expect(lambda o: o.get("offline", {}).get("patron") == card)
        s.send("3" * 70)
        s.expect(lambda o: "NOT RECORDED" in o.get("message", "")
                 and "70 characters" in o["message"])
        s.send(":checkin", "4" * 65)
        s.expect(lambda o: "65 characters" in o.get("message", ""))
        self.assertEqual(s.finish(), 0)
        r = env.carrel(prof, "offline", "status")
        self.assertEqual((r.code, r.json["journal"]["scans"]), (0, scans), r)

    def test_manager_lists_and_resolves_clerk_may_not(self):
        d = main
        clerk = profile(d, "clara")
        missing = harness.mod10("3123498%06d" % env.next_number())
        self.write_journal(clerk, [("checkin", "", missing)])
        r = env.carrel(clerk, "offline", "upload")
        self.assertEqual((r.code, r.json["skipped"]), (0, 1), r)

        manager = profile(d, "manny")
        r = env.carrel(manager, "offline", "exceptions")
        self.assertEqual(r.code, 0, r)
        mine = [x for x in r.json["exceptions"] if x.get("barcode") == missing]
        self.assertEqual(len(mine), 1, r)
        self.assertEqual((mine[0]["reason"], mine[0]["clerk"]), ("item_not_found", "clara"))
        ident = str(mine[0]["id"])
        text = env.carrel(manager, "offline", "exceptions", json_out=False)
        self.assertIn(missing, text.stdout)

        r = env.carrel(clerk, "offline", "exceptions")
        self.assertEqual((r.code, r.json["status"]), (4, "forbidden"), r)
        r = env.carrel(clerk, "offline", "resolve", ident, "--note", "Found on the cart")
        self.assertEqual((r.code, r.json["status"]), (4, "forbidden"), r)

        r = env.carrel(manager, "offline", "resolve", ident, "--note", "Found on the cart")
        self.assertEqual(r.code, 0, r)
        r = env.carrel(manager, "offline", "exceptions")
        self.assertEqual([x for x in r.json["exceptions"] if x.get("barcode") == missing], [])
        r = env.carrel(manager, "offline", "exceptions", "--all")
        done = [x for x in r.json["exceptions"] if x.get("barcode") == missing]
        self.assertEqual(done[0]["resolution"], "Found on the cart", r)
        r = env.carrel(manager, "offline", "resolve", ident)
        self.assertEqual(r.code, 2, r)  # --note is required

    def test_status_without_a_journal_and_with_offline_off(self):
        prof = profile(main, "manny")
        r = env.carrel(prof, "offline", "status")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["journal"]["scans"], 0)
        with open(prof, "a") as f:
            f.write("offline_dir = off\n")
        r = env.carrel(prof, "offline", "status")
        self.assertEqual(r.code, 2, r)


if __name__ == "__main__":
    harness.main()
