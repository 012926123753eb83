#!/usr/bin/env python3
"""`carrel desk`: the circulation desk for a barcode scanner, driven through a
pipe (as scripts and scanners on a serial line do) and through a
pseudo-terminal (libedit); answers, overrides, patron switching, checkin
routing, JSON lines, pushed events, keepalive, and reconnecting with the same
request key."""

import json
import os
import pty
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = "staff-password-123"
EVENT_TEXT = "Test event: pushed by the server on request."
PRK_NAME = "Park Street Branch at the Lyric"
env = None
main = None



def new_item(branch="DWN", item_type="book", price="24.95", title="Desk test copy"):
    """A fresh item with a valid barcode: one bib per title (harness.Env.new_item)."""
    return env.new_item(title=title, branch=branch, item_type=item_type,
                        price_cents=int(float(price) * 100))


def new_patron(category="adult", branch="DWN", expires="2099-01-01", alert=None):
    return env.new_patron(category, branch, expires, desk_alert=alert)


def item_status(barcode):
    return env.psql("SELECT status FROM item WHERE barcode = '%s'" % barcode)


def open_loans(card):
    return env.psql("SELECT coalesce(string_agg(i.barcode, ',' ORDER BY i.barcode), '') FROM loan l"
                    " JOIN item i ON i.id = l.item_id JOIN patron p ON p.id = l.patron_id"
                    " WHERE p.card = '%s' AND l.returned_at IS NULL" % card)


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        main = env.daemon(db_pool_size=4)
        admin = env.profile(main)
        env.add_workstations(admin, {"desk-prk": "PRK"})
        for user, role in [("clara", "clerk"), ("libby", "librarian")]:
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


def profile(user="libby", daemon=None, ws="desk-dwn"):
    pw = harness.ADMIN_PASSWORD if user == "admin" else PASSWORD
    return env.profile(daemon or main, ws, user, pw)


def no_offline(prof):
    """The profile with offline mode off (offline_dir = off): the desk as before issue 14."""
    with open(prof, "a") as f:
        f.write("offline_dir = off\n")
    return prof


def desk(lines, user="libby", json_out=False, args=(), daemon=None):
    """Run a whole desk session from a pipe; returns (Result, stdout lines)."""
    text = "".join(line + "\n" for line in lines)
    r = env.carrel(profile(user, daemon), "desk", *args, json_out=json_out, input=text,
                   timeout=120)
    return r, r.stdout.splitlines()


class Session:
    """A desk process on pipes, driven one line at a time."""

    def __init__(self, prof, *args, json_out=False):
        argv = [harness.CARREL, "-c", prof] + (["--json"] if json_out else []) + ["desk"] + \
            list(args)
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

    def expect(self, pattern, timeout=60):
        """Read lines until one matches `pattern` (a regex); return it."""
        deadline = time.time() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                raise AssertionError("no line matching %r within %ss; seen:\n%s"
                                     % (pattern, timeout, "\n".join(self.seen)))
            if line is None:
                raise AssertionError("desk ended before %r; seen:\n%s\nstderr:\n%s"
                                     % (pattern, "\n".join(self.seen), self.finish()))
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def finish(self, timeout=60):
        """Close stdin (EOF), wait; returns the exit code, with the rest of stdout in seen."""
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


class Checkout(unittest.TestCase):
    def test_session_with_override_and_checkin(self):
        card = new_patron(alert="Prefers large print")
        a, prk, ref = new_item(), new_item(branch="PRK"), new_item(item_type="reference",
                                                                   title="Encyclopedia")
        r, out = desk([card, a, prk, ref, ":override reading room copy, patron is a researcher",
                       "", ":checkin", a, prk, ref, ":quit", "ignored after :quit"])
        self.assertEqual(r.code, 0, r)
        self.assertTrue(out[0].startswith("Carrel desk — Libby (libby, librarian) at desk-dwn, "
                                          "Downtown Library (DWN)"), out)
        self.assertEqual(out[1], "Mode: checkout. Scan a library card to start, or type :help")
        self.assertRegex(out[2], r"^PATRON Patron\d+, Test — card %s — 0 out — "
                                 r"ALERT: Prefers large print$" % card)
        self.assertRegex(out[3], r"^OK %s Desk test copy — due \d{4}-\d\d-\d\d$" % a)
        self.assertRegex(out[4], r"^OK %s Desk test copy — due " % prk)
        self.assertEqual(out[5], "REFUSED %s: Items of type reference do not circulate. "
                                 "[item_not_circulating] — can be overridden: :override REASON"
                         % ref)
        self.assertRegex(out[6], r"^OK %s Encyclopedia — due .* \(override recorded: "
                                 r"item_not_circulating\)$" % ref)
        self.assertEqual(out[7], "3 checked out for Test P.")
        self.assertEqual(out[8], "Checkin mode: every scan is a return.")
        self.assertEqual(out[9], "IN %s Desk test copy — Return to shelf" % a)
        self.assertEqual(out[10], "IN %s Desk test copy — ROUTE TO %s" % (prk, PRK_NAME))
        self.assertEqual(out[11], "    TRANSIT")  # the slip, indented
        self.assertIn("    To: %s (PRK)" % PRK_NAME, out)
        self.assertIn("IN %s Encyclopedia — Return to shelf" % ref, out)
        self.assertFalse(any("ignored" in line for line in out), out)
        self.assertEqual(env.psql("SELECT override_reason FROM loan l JOIN item i ON "
                                  "i.id = l.item_id WHERE i.barcode = '%s'" % ref),
                         "reading room copy, patron is a researcher")
        self.assertEqual((item_status(a), item_status(prk), item_status(ref)),
                         ("available", "in_transit", "available"))
        self.assertEqual(open_loans(card), "")

    def test_session_json(self):
        card = new_patron()
        a, prk, ref = new_item(), new_item(branch="PRK"), new_item(item_type="reference",
                                                                   title="Encyclopedia")
        r, out = desk([card, a, prk, ref, ":override researcher", "", ":checkin", a, prk, ref,
                       ":nonsense", ":quit"], json_out=True)
        self.assertEqual(r.code, 0, r)
        docs = [json.loads(line) for line in out]  # every line is one JSON object
        self.assertEqual(docs[0]["desk"]["staff"], "libby")
        self.assertEqual(docs[0]["desk"]["mode"], "checkout")
        self.assertEqual(docs[1]["patron"]["card"], card)
        self.assertEqual(docs[1]["loans_out"], 0)
        self.assertEqual(docs[2]["checkout"]["barcode"], a)
        self.assertEqual(docs[3]["checkout"]["barcode"], prk)
        self.assertEqual(docs[4], {"ok": False, "status": "refused", "reason": "item_not_circulating",
                                   "message": "Items of type reference do not circulate.",
                                   "overridable": True, "request": "checkout", "scan": ref})
        self.assertEqual(docs[5]["checkout"]["overridden"], ["item_not_circulating"])
        self.assertEqual(docs[6], {"done": {"card": card, "name": "Test P.", "checked_out": 3}})
        self.assertEqual(docs[7], {"mode": "checkin"})
        self.assertEqual(docs[8]["checkin"]["route"], "shelf")
        self.assertEqual((docs[9]["checkin"]["route"], docs[9]["checkin"]["destination_branch"]),
                         ("transit", "PRK"))
        self.assertIn("TRANSIT", docs[9]["checkin"]["slip"])
        self.assertTrue(docs[10]["checkin"]["was_on_loan"])
        self.assertEqual(docs[11]["status"], "usage_error")
        self.assertIn(":help", docs[11]["message"])
        self.assertEqual(len(docs), 12)
        self.assertEqual(item_status(prk), "in_transit")

    def test_clerk_cannot_override(self):
        card = new_patron()
        ref = new_item(item_type="reference", title="Encyclopedia")
        r, out = desk([card, ref, ":override please"], user="clara")
        self.assertEqual(r.code, 0, r)  # EOF ends the session normally
        self.assertIn("REFUSED %s: Items of type reference do not circulate. "
                      "[item_not_circulating] — can be overridden: :override REASON" % ref, out)
        self.assertIn("REFUSED %s: Only librarians and above may override a refusal. "
                      "[forbidden: override]" % ref, out)
        self.assertEqual(out[-1], "0 checked out for Test P.")
        r, out = desk([card, ref, ":override please"], user="clara", json_out=True)
        refusal = json.loads(out[-2])
        self.assertEqual((refusal["status"], refusal["reason"], refusal["scan"]),
                         ("forbidden", "override", ref))
        self.assertEqual(item_status(ref), "available")
        self.assertEqual(open_loans(card), "")

    def test_refusals_that_cannot_be_overridden_and_unknown_scans(self):
        card = new_patron()
        a = new_item()
        r, out = desk(["31234999999999", card, a, a, "31234999999999", ":override why",
                       ":done", ":checkin", a, "31234999999999"])
        self.assertEqual(r.code, 0, r)
        self.assertEqual(out[2], "NOT FOUND 31234999999999: No patron has card 31234999999999. "
                                 "Scan the patron's library card first.")
        self.assertTrue(out[4].startswith("OK %s" % a), out)
        self.assertRegex(out[5], r"^REFUSED %s: .*renew it instead\. \[already_checked_out\] — "
                                 r"not overridable$" % a)
        self.assertEqual(out[6], "NOT FOUND 31234999999999: No item has barcode 31234999999999. "
                                 "(not a library card either)")
        self.assertEqual(out[7], "Nothing to override: no checkout was refused for this patron.")
        self.assertEqual(out[8], "1 checked out for Test P.")
        self.assertEqual(out[10], "IN %s Desk test copy — Return to shelf" % a)
        self.assertEqual(out[11], "NOT FOUND 31234999999999: No item has barcode "
                                  "31234999999999. [item_not_found]")

    def test_scanning_a_card_switches_patron(self):
        first, second = new_patron(), new_patron()
        a, b = new_item(), new_item()
        r, out = desk([first, a, second, b, ""])
        self.assertEqual(r.code, 0, r)
        self.assertTrue(out[2].startswith("PATRON ") and first in out[2], out)
        self.assertTrue(out[3].startswith("OK %s" % a), out)
        self.assertEqual(out[4], "1 checked out for Test P.")
        self.assertTrue(out[5].startswith("PATRON ") and second in out[5], out)
        self.assertTrue(out[6].startswith("OK %s" % b), out)
        self.assertEqual(out[7], "1 checked out for Test P.")
        self.assertEqual(len(out), 8, out)
        self.assertEqual((open_loans(first), open_loans(second)), (a, b))
        # :patron does the same; an empty line with no patron prints nothing.
        r, out = desk(["", ":patron " + first, ":account", ":renew", ":checkin", a, b])
        self.assertEqual(r.code, 0, r)
        self.assertRegex(out[2], r"^PATRON .* — card %s — 1 out$" % first)
        self.assertRegex(out[3], r"^ACCOUNT Test Patron\d+ — card %s — 1 out, 0 overdue — "
                                 r"balance \$0\.00$" % first)
        self.assertRegex(out[4], r"^    %s Desk test copy — due \d{4}-\d\d-\d\d$" % a)
        # Renewed on its checkout day, the due date would not move: refused, not counted.
        self.assertRegex(out[5], r"^NOT RENEWED %s Desk test copy: .* \[renewal_no_change\]$"
                         % a)
        self.assertEqual(out[6], "0 renewed, 1 refused")
        self.assertEqual(out[7], "0 checked out for Test P.")
        self.assertEqual(env.psql("SELECT count(*) FROM circ_event e JOIN item i ON "
                                  "i.id = e.item_id WHERE i.barcode = '%s' AND action = 'renew'"
                                  % a), "0")
        self.assertEqual(open_loans(first) + open_loans(second), "")


class Commands(unittest.TestCase):
    def test_eof_exits_zero_and_help(self):
        r, out = desk([":help", ":what"])
        self.assertEqual(r.code, 0, r)
        self.assertIn("  :override REASON   lend the last refused item anyway, with a reason "
                      "(librarians)", out)
        self.assertEqual(out[-1], "Unknown command :what — type :help for the list.")
        r, _ = desk([])
        self.assertEqual(r.code, 0, r)
        r = env.carrel(profile(), "desk", json_out=False, input="")  # no newline at all
        self.assertEqual(r.code, 0, r)

    def test_scans_from_a_file(self):
        """A regular file cannot be polled: it is read directly, to its end."""
        a = new_item()
        path = os.path.join(env.dir, "scans.txt")
        with open(path, "w") as f:
            f.write(":checkin\n%s\n:ping" % a)  # no newline after the last line
        with open(path) as f:
            proc = subprocess.run([harness.CARREL, "-c", profile(), "desk"], stdin=f,
                                  capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        out = proc.stdout.splitlines()
        self.assertEqual(out[3], "IN %s Desk test copy — Was not checked out. Return to shelf" % a)
        self.assertEqual(out[4], "[event] " + EVENT_TEXT)
        with open(os.devnull) as f:
            proc = subprocess.run([harness.CARREL, "-c", profile(), "desk"], stdin=f,
                                  capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for mark in harness.SANITIZER_MARKS:
            self.assertNotIn(mark, proc.stderr)

    def test_control_characters_are_not_printed(self):
        a = new_item(title="Escape title")
        env.psql("UPDATE bib SET title = 'Escape' || chr(27) || '[2J title' "
                 "WHERE title = 'Escape title'")
        r, out = desk([a], args=["--checkin"])
        self.assertEqual(r.code, 0, r)
        self.assertEqual(out[2], "IN %s Escape\\e[2J title — Was not checked out. "
                         "Return to shelf" % a)
        self.assertNotIn("\x1b", r.stdout)

    def test_checkin_mode_from_the_start(self):
        a = new_item()
        r, out = desk([a, ":renew"], args=["--checkin"])
        self.assertEqual(r.code, 0, r)
        self.assertEqual(out[1], "Mode: checkin. Scan items to return them, or type :help")
        self.assertEqual(out[2], "IN %s Desk test copy — Was not checked out. Return to shelf" % a)
        self.assertEqual(out[3], "No patron: scan a library card first (in checkout mode, "
                                 ":checkout).")

    def test_usage(self):
        r = env.carrel(profile(), "desk", "extra", json_out=False, input="")
        self.assertEqual(r.code, 2, r)
        r = env.carrel(profile(), "desk", "--keepalive", "0", json_out=False, input="")
        self.assertEqual(r.code, 2, r)

    def test_wrong_password_exits_3(self):
        prof = env.profile(main, "desk-dwn", "nobody", "not the password")
        r = env.carrel(prof, "desk", json_out=False, input=":quit\n")
        self.assertEqual(r.code, 3, r)


class Events(unittest.TestCase):
    def test_ping_shows_the_pushed_event(self):
        r, out = desk([":ping"])
        self.assertEqual(r.code, 0, r)
        self.assertEqual(out[2], "[event] " + EVENT_TEXT)
        self.assertRegex(out[3], r"^PONG in \d+ ms$")
        r, out = desk([":ping"], json_out=True)
        docs = [json.loads(line) for line in out]
        self.assertEqual(docs[1]["event"]["kind"], "test")
        self.assertEqual(docs[1]["event"]["branch_code"], "DWN")
        self.assertEqual(docs[1]["event"]["text"], EVENT_TEXT)
        self.assertIn("server_time_ms", docs[2]["pong"])

    def test_branch_events_reach_the_desk(self):
        """A hold placed elsewhere on a title this branch has on its shelf shows at once."""
        title = "Desk event title %d" % time.time_ns()
        new_item(title=title)  # on the shelf at DWN
        card = new_patron(branch="PRK")
        bib = env.psql("SELECT min(id) FROM bib WHERE title = '%s'" % title)
        s = Session(profile())
        s.send(":ping")
        s.expect(r"^PONG in")  # the subscription went before the ping
        r = env.carrel(env.profile(main, "desk-prk", "admin", harness.ADMIN_PASSWORD),
                       "hold", "place", card, "--bib", bib, "--pickup", "PRK")
        self.assertEqual(r.code, 0, r)
        line = s.expect(r"^\[event\] Hold placed on %s" % title)
        self.assertIn("you have it on the shelf", line)
        self.assertEqual(s.finish(), 0)

    def test_scans_wait_for_answers_in_order(self):
        """Lines that arrive while a request is in flight are answered in order."""
        card = new_patron()
        items = [new_item() for _ in range(6)]
        s = Session(profile())
        s.send(card, *items)  # all at once, as a fast scanner would
        for b in items:
            s.expect(r"^OK %s " % b)
        s.send(":checkin", *items)
        for b in items:
            s.expect(r"^IN %s " % b)
        self.assertEqual(s.finish(), 0)
        lines = [line for line in s.seen if line.startswith(("OK ", "IN "))]
        self.assertEqual([line.split()[1] for line in lines], items + items)


class Connection(unittest.TestCase):
    def test_keepalive_keeps_an_idle_desk_connected(self):
        d = env.daemon(idle_timeout_s=4)
        try:
            s = Session(profile("libby", d), "--keepalive", "1")
            s.expect("^Mode: ")
            # Wait until a connection opened after the desk's, that stays quiet, has been
            # closed as idle: the desk has been idle at least as long.
            probe = d.logged_in_wire()
            self.assertTrue(probe.closed_by_server(120))
            s.send(":ping")
            s.expect("^PONG")
            self.assertEqual(s.finish(), 0)
            self.assertFalse(any("Connection lost" in line for line in s.seen), s.seen)
            # Without it the server drops the desk; the desk logs in again by itself.
            s = Session(profile("libby", d))
            s.expect("^Mode: ")
            s.expect("^Connection lost .*; reconnecting", timeout=120)
            s.expect("^Reconnected.$")
            s.send(":ping")
            s.expect(r"^\[event\] ")
            s.expect("^PONG")
            self.assertEqual(s.finish(), 0)
        finally:
            d.stop()

    def test_reconnect_resends_the_scan_with_the_same_key(self):
        d = env.daemon()
        card, item = new_patron(), new_item(title="Slow copy")
        # Checkouts of this title wait for an advisory lock the test holds, so that the
        # daemon is lost with the checkout in flight however busy the machine is.
        env.psql("CREATE FUNCTION desk_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                 "IF (SELECT b.title FROM item i JOIN bib b ON b.id = i.bib_id "
                 "WHERE i.id = NEW.item_id) = 'Slow copy' THEN "
                 "PERFORM pg_advisory_xact_lock(8201); END IF; "
                 "RETURN NEW; END $$; CREATE TRIGGER desk_slow BEFORE INSERT ON loan "
                 "FOR EACH ROW EXECUTE FUNCTION desk_slow()")
        lock = harness.AdvisoryLock(env, 8201)
        try:
            s = Session(no_offline(profile("libby", d)))  # reconnecting, not offline
            s.send(card)
            s.expect("^PATRON ")
            s.send(item)
            lock.wait_for_waiters(1)
            d.proc.kill()  # the daemon dies with the checkout in flight
            d.check_clean(d.proc.wait(), expect_code=-signal.SIGKILL)
            s.expect("^Connection lost .*; reconnecting")
            lock.release()  # the first checkout goes on in the database, without a daemon
            d.start()  # same port
            s.expect(r"^Reconnected\. Sending the last scan \(%s\) again with the same request "
                     r"key, so it cannot be recorded twice\.$" % item, timeout=60)
            s.expect("^OK %s Slow copy" % item, timeout=60)
            s.send("")
            s.expect("^1 checked out for Test P.")
            self.assertEqual(s.finish(), 0)
            self.assertEqual(env.psql("SELECT count(*) FROM loan l JOIN item i ON "
                                      "i.id = l.item_id WHERE i.barcode = '%s'" % item), "1")
            self.assertEqual(open_loans(card), item)
        finally:
            lock.release()
            env.psql("DROP TRIGGER desk_slow ON loan; DROP FUNCTION desk_slow()")
            d.stop()
        r, _ = desk([":checkin", item])
        self.assertEqual(r.code, 0, r)

    def test_no_server_to_come_back_to_exits_5(self):
        d = env.daemon()
        prof = profile("libby", d)
        with open(prof) as f:
            text = f.read().replace("timeout_s = 60", "timeout_s = 2")
        with open(prof, "w") as f:
            f.write(text)
        no_offline(prof)  # with a cache it would go offline (test_offline.py)
        s = Session(prof, json_out=True)
        s.expect('"desk"')
        d.stop()
        line = s.expect('"network_error"')
        self.assertIn("Connection lost", json.loads(line)["message"])
        s.expect("Cannot reconnect")
        self.assertEqual(s.finish(), 5)
        # And when there is no server at all to begin with.
        r = env.carrel(prof, "desk", json_out=False, input="")
        self.assertEqual(r.code, 5, r)


class Terminal(unittest.TestCase):
    """The libedit path, on a pseudo-terminal."""

    def read_until(self, fd, marker, timeout=60):
        """Terminal output up to and including `marker`; what follows stays buffered."""
        deadline = time.time() + timeout
        while marker.encode() not in self.pending:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("no %r on the terminal; got %r" % (marker, self.pending))
            r, _, _ = select.select([fd], [], [], min(left, 0.2))
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError("terminal closed before %r; got %r"
                                         % (marker, self.pending))
                self.pending += chunk
        end = self.pending.index(marker.encode()) + len(marker.encode())
        out, self.pending = self.pending[:end], self.pending[end:]
        return out.decode(errors="replace")

    def run_tty(self, home):
        self.pending = b""
        prof = profile()
        pid, fd = pty.fork()
        if pid == 0:
            os.environ["HOME"] = home
            os.environ.pop("CARREL_PASSWORD", None)
            try:
                os.execv(harness.CARREL, [harness.CARREL, "-c", prof, "desk"])
            finally:
                os._exit(127)
        return pid, fd

    def wait_exit(self, pid, fd, timeout=60):
        deadline = time.time() + timeout
        rest = self.pending
        while time.time() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    rest += os.read(fd, 4096)
                except OSError:
                    pass
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("desk did not exit on the terminal")
        text = rest.decode(errors="replace")
        for mark in harness.SANITIZER_MARKS:
            self.assertNotIn(mark, text)
        os.close(fd)
        return os.waitstatus_to_exitcode(status), text

    def test_prompt_scan_event_and_quit(self):
        home = os.path.join(env.dir, "home-tty")
        os.makedirs(home, exist_ok=True)
        card, a = new_patron(), new_item()
        pid, fd = self.run_tty(home)
        self.read_until(fd, "checkout> ")
        os.write(fd, (card + "\r").encode())
        out = self.read_until(fd, "checkout Test P.> ")
        self.assertIn("PATRON ", out)
        os.write(fd, (a + "\r").encode())
        out = self.read_until(fd, "OK " + a)
        # The answer clears the prompt line before it is printed.
        self.assertIn("\r\x1b[KOK " + a, out)
        # An event arriving while a line is typed: the line is cleared, the event
        # printed, then the prompt and the partial input are drawn again.
        os.write(fd, b":ping\rabc")
        out = self.read_until(fd, "PONG")
        self.assertIn("\r\x1b[K[event] " + EVENT_TEXT, out)
        out = self.read_until(fd, "checkout Test P.> abc")
        os.write(fd, b"\x15:quit\r")  # Ctrl-U drops "abc"
        code, rest = self.wait_exit(pid, fd)
        self.assertEqual(code, 0, rest)
        self.assertIn("1 checked out for Test P.", rest)
        self.assertEqual(open_loans(card), a)
        # The history file keeps commands, never cards or barcodes.
        with open(os.path.join(home, ".carrel_desk_history")) as f:
            history = f.read()
        self.assertIn(":ping", history)
        self.assertNotIn(card, history)
        self.assertNotIn(a, history)
        self.assertEqual(os.stat(os.path.join(home, ".carrel_desk_history")).st_mode & 0o077, 0)

        # Ctrl-D on an empty line leaves; Ctrl-C drops the line being typed.
        pid, fd = self.run_tty(home)
        self.read_until(fd, "checkout> ")
        os.write(fd, b":checkin\r")
        self.read_until(fd, "checkin> ")
        os.write(fd, b"xyz\x03")
        self.read_until(fd, "^C")
        self.read_until(fd, "checkin> ")
        os.write(fd, (a + "\r").encode())
        self.read_until(fd, "Return to shelf")
        os.write(fd, b"\x04")
        code, rest = self.wait_exit(pid, fd)
        self.assertEqual(code, 0, rest)
        self.assertEqual(open_loans(card), "")
        self.assertEqual(item_status(a), "available")


if __name__ == "__main__":
    harness.main()
