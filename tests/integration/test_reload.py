#!/usr/bin/env python3
"""Reload (issue 16, docs/OPERATIONS.md "Reload"): SIGHUP and `carrel admin reload` read the
configuration file again. Settings marked reload take effect (the log level; a limit on a new
connection; a lock timeout on database connections already open; a new TLS certificate for new
connections while open ones keep working; the relay settings, its password file read again),
the others are reported as needing a restart and keep their running values (listen_port: still
served on the old port); a bad file (syntax, range, an unreadable certificate, a missing
password file) is refused whole with its reason in the log and the reply; the -s/-p overrides
are applied again over the file; a clerk is refused; a reload while one is being read is
refused (reload_running), a SIGHUP then reads once more when it is over."""

import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import REQ_PING, pb_message  # noqa: E402

env = None
admin = None  # the administrator's profile of the daemon under test (per test)
STAFF_PASSWORD = "staff-password-123"
REQ_CATALOG_SEARCH = 40


def setUpModule():
    global env
    env = harness.Env()
    try:
        env.start()
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


def reload_ends(daemon, by):
    """How many reloads by `by` have ended (applied or refused) in the daemon's log."""
    return len(re.findall(r"reload \(%s\) (?:of |refused)" % re.escape(by), daemon.log_text()))


def sighup(daemon):
    """SIGHUP, then wait until that reload has ended; the log from then on."""
    before = reload_ends(daemon, "SIGHUP")
    mark = len(daemon.log_text())
    daemon.signal(signal.SIGHUP)
    harness.wait_until(lambda: reload_ends(daemon, "SIGHUP") > before, 60, "the SIGHUP reload")
    return daemon.log_text()[mark:]


def fingerprint_of_file(path):
    with open(path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def peer_fingerprint(wire):
    return hashlib.sha256(wire.sock.getpeercert(binary_form=True)).hexdigest()


class DaemonWithArgs(harness.Daemon):
    """A daemon started with extra command-line arguments after -c (the -s overrides),
    and its port given by -p."""

    def __init__(self, env, args, **settings):
        super().__init__(env, **settings)
        self.extra_args = list(args)

    def start_once(self, expect_listen):
        self.write_config()
        self.log = open(self.log_path, "w")
        args = self.extra_args + ["-p", str(self.port)]  # the port always from -p
        self.proc = subprocess.Popen([harness.CARRELD, "-c", self.config] + args,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if self not in self.env.daemons:
            self.env.daemons.append(self)
        harness.wait_until(lambda: "listening on" in self.log_text()
                           or self.proc.poll() is not None, 120, "carreld to listen")
        if self.proc.poll() is not None:
            raise AssertionError("carreld exited at start:\n" + self.log_text())
        return self


class ReloadTest(unittest.TestCase):
    """Each test has its own daemon, stopped (and checked clean: exit 0, no sanitizer
    report) at the end."""

    def setUp(self):
        self.d = env.daemon()
        self.admin = env.profile(self.d)

    def tearDown(self):
        if self.d.proc is not None:
            self.d.stop()

    def set(self, **settings):
        self.d.settings.update(settings)
        self.d.write_config()

    def reload(self, profile=None):
        return env.carrel(profile or self.admin, "admin", "reload")

    def assertApplied(self, r, applied, needs_restart=()):
        self.assertEqual(r.code, 0, r)
        self.assertEqual(sorted(r.json["applied"]), sorted(applied), r)
        self.assertEqual(sorted(r.json["needs_restart"]), sorted(needs_restart), r)
        self.assertEqual(r.json["config_file"], self.d.config, r)

    def assertInvalid(self, r, *needles):
        self.assertNotEqual(r.code, 0, r)
        doc = r.json[0] if isinstance(r.json, list) else r.json
        self.assertEqual(doc["status"], "refused", r)
        self.assertEqual(doc["reason"], "config_invalid", r)
        for n in needles:
            self.assertIn(n, doc["message"], r)

    def test_nothing_changed(self):
        r = self.reload()
        self.assertApplied(r, [])
        r = env.carrel(self.admin, "admin", "reload", json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertIn("applied: none", r.stdout)
        self.assertIn("needs restart: none", r.stdout)

    def test_log_level_by_sighup_and_by_request(self):
        self.assertNotIn(" DEBUG ", self.d.log_text())
        self.set(log_level="debug")
        text = sighup(self.d)
        self.assertIn("reload: log_level = debug (was info)", text)
        # Debug lines now appear: a connection's own, for one.
        mark = len(self.d.log_text())
        w = self.d.logged_in_wire()
        self.assertEqual(w.call(REQ_PING, pb_message((1, "x"))).status, "ok")
        w.close()
        harness.wait_until(lambda: " DEBUG " in self.d.log_text()[mark:], 30, "a debug line")
        # Back to info through the request: no debug lines after it.
        self.set(log_level="info")
        r = self.reload()
        self.assertApplied(r, ["log_level"])
        mark = len(self.d.log_text())
        w = self.d.logged_in_wire()
        self.assertEqual(w.call(REQ_PING, pb_message((1, "x"))).status, "ok")
        w.close()
        self.assertEqual(self.reload().code, 0)  # a request logged after the pings
        self.assertNotIn(" DEBUG ", self.d.log_text()[mark:])
        # Audited, as the administrator who asked.
        rows = env.psql("SELECT s.username, a.target, a.detail->'applied' FROM admin_audit a "
                        "JOIN staff s ON s.id = a.staff_id WHERE a.action = 'reload' "
                        "ORDER BY a.id")
        self.assertIn('admin|%s|["log_level"]' % self.d.config, rows)

    def test_limit_applies_to_new_connections(self):
        padding = "p" * 2000
        before = self.d.wire()  # accepted under the old limit (16 KiB before login)
        self.assertEqual(before.hello().status, "ok")
        self.assertEqual(before.call(REQ_PING, pb_message((1, padding))).status, "ok")
        self.set(max_frame_bytes_login=1024)
        self.assertApplied(self.reload(), ["max_frame_bytes_login"])
        new = self.d.wire()
        self.assertEqual(new.hello().status, "ok")
        r = new.call(REQ_PING, pb_message((1, padding)))
        self.assertEqual(r.status, "frame_too_large", r)
        self.assertIn("1024", r.message)
        new.close()
        # The connection opened before keeps the limit it was accepted with.
        self.assertEqual(before.call(REQ_PING, pb_message((1, padding))).status, "ok")
        before.close()

    def test_lock_timeout_reaches_open_database_connections(self):
        # Started without lock or statement timeouts: a statement waiting for a lock would
        # wait for as long as it is held, on connections already set up.
        self.d.stop()
        self.d = env.daemon(db_lock_timeout_ms=0, db_statement_timeout_ms=0)
        self.admin = env.profile(self.d)
        w = self.d.logged_in_wire()
        search = pb_message((1, "perl"), (10, 5))
        self.assertEqual(w.call(REQ_CATALOG_SEARCH, search).status, "ok")
        self.set(db_lock_timeout_ms=300)
        self.assertApplied(self.reload(), ["db_lock_timeout_ms"])
        w.sock.settimeout(30)  # a wait for the lock's release would end here, failing
        with harness.TableLock(env, "bib"):
            r = w.call(REQ_CATALOG_SEARCH, search)
            self.assertEqual((r.status, r.reason), ("unavailable", "busy"), r)
        self.assertEqual(w.call(REQ_CATALOG_SEARCH, search).status, "ok")
        w.close()

    def test_queue_timeout_set_to_no_limit_while_queries_wait(self):
        """db_queue_timeout_ms = 0 by a reload while searches wait for a connection: they
        wait on (0 is "no limit"), instead of all failing at the queue check's next tick."""
        self.d.stop()
        self.d = env.daemon(db_pool_size=2, db_pool_reserved_reads=0, db_queue_timeout_ms=60000,
                            db_statement_timeout_ms=0, db_lock_timeout_ms=0, jobs_interval_s=0,
                            notice_send_interval_s=0, stats_rollup_interval_s=0)
        w = self.d.logged_in_wire()
        search = pb_message((1, "perl"), (10, 5))
        with harness.TableLock(env, "bib") as lock:
            ids = [w.send(REQ_CATALOG_SEARCH, search) for _ in range(4)]
            lock.wait_for_waiters(2)  # both connections wait for the lock; two searches queue
            self.set(db_queue_timeout_ms=0)
            text = sighup(self.d)
            self.assertIn("reload: db_queue_timeout_ms = 0 (was 60000)", text)
            # The old check ticked every second: two ticks pass before the lock goes.
            time.sleep(2.5)
        got = sorted((r.id, r.status) for r in (w.recv() for _ in range(4)))
        self.assertEqual(got, sorted((i, "ok") for i in ids))
        self.assertNotIn("waited over", self.d.log_text())
        w.close()

    def test_argon2_cost_remakes_the_dummy_hash(self):
        """A new Argon2 cost: the dummy hash for unknown names is made again at it (else
        their logins would take the old time, and tell them from accounts hashed since)."""
        self.set(password_time_cost=2)
        self.assertApplied(self.reload(), ["password_time_cost"])
        harness.wait_until(lambda: "unknown user names are now checked at the new Argon2 cost"
                           in self.d.log_text(), 60, "the new dummy hash")
        w = self.d.logged_in_wire()  # logins still work
        self.assertEqual(w.call(REQ_PING, pb_message((1, "x"))).status, "ok")
        w.close()
        # Unchanged cost: no new dummy hash.
        mark = len(self.d.log_text())
        self.assertApplied(self.reload(), [])
        self.assertNotIn("new Argon2 cost", self.d.log_text()[mark:])

    def test_connection_limit_lowered_below_the_count(self):
        """max_connections_per_address lowered below the open count closes nothing; only
        new connections are refused (OPERATIONS.md says so)."""
        wires = [self.d.logged_in_wire() for _ in range(3)]
        self.set(max_connections_per_address=2)
        sighup(self.d)
        for w in wires:
            self.assertEqual(w.call(REQ_PING, pb_message((1, "x"))).status, "ok")
        try:
            extra = self.d.wire()
            r = extra.hello()
            extra.close()
        except (OSError, ssl.SSLError) as e:
            r = e
        self.assertNotEqual(getattr(r, "status", None), "ok", r)
        harness.wait_until(lambda: "from one address is the limit" in self.d.log_text(), 30,
                           "the refusal in the log")
        for w in wires:
            self.assertEqual(w.call(REQ_PING, pb_message((1, "y"))).status, "ok")
            w.close()

    def test_tls_certificate_swap(self):
        old_fp = fingerprint_of_file(env.tls("server.crt"))
        open_wire = self.d.logged_in_wire()
        self.assertEqual(peer_fingerprint(open_wire), old_fp)
        # A new certificate from the same CA, in a directory of its own.
        newdir = os.path.join(env.dir, "tls-%d" % self.d.port)
        os.makedirs(newdir)
        for name in ("ca.crt", "ca.key"):
            shutil.copy(env.tls(name), os.path.join(newdir, name))
        env.run(os.path.join(harness.SCRIPTS, "mkcerts"), newdir)
        new_crt, new_key = os.path.join(newdir, "server.crt"), os.path.join(newdir, "server.key")
        new_fp = fingerprint_of_file(new_crt)
        self.assertNotEqual(new_fp, old_fp)
        self.set(tls_cert=new_crt, tls_key=new_key)
        self.assertApplied(self.reload(), ["tls_cert", "tls_key"])
        w = self.d.logged_in_wire()
        self.assertEqual(peer_fingerprint(w), new_fp)
        w.close()
        # The connection open before the swap keeps working on its session.
        self.assertEqual(open_wire.call(REQ_PING, pb_message((1, "still"))).status, "ok")
        open_wire.close()
        # Renewed in place (same paths, new files): the context is read again all the same.
        shutil.copy(env.tls("server.crt"), new_crt)
        shutil.copy(env.tls("server.key"), new_key)
        sighup(self.d)
        w = self.d.logged_in_wire()
        self.assertEqual(peer_fingerprint(w), old_fp)
        w.close()

    def test_restart_setting_reported_and_kept(self):
        old_port = self.d.port
        other = harness.free_port()
        self.set(listen_port=other, max_inflight=5)
        r = self.reload()
        self.assertApplied(r, ["max_inflight"], ["listen_port"])
        self.assertIn("listen_port changed, but takes effect only at the next start",
                      self.d.log_text())
        # Still served on the old port; nothing listens on the new one.
        w = harness.Wire(env, old_port)
        self.assertEqual(w.hello().status, "ok")
        w.close()
        with self.assertRaises(OSError):
            harness.Wire(env, other, timeout=5)
        # Text output names both lists.
        r = env.carrel(self.admin, "admin", "reload", json_out=False)
        self.assertIn("needs restart: listen_port", r.stdout)
        # The file still says so: a second reload reports it again, max_inflight is done.
        self.assertApplied(self.reload(), [], ["listen_port"])
        # max_inflight = 5 in effect: the sixth request in flight is refused at once.
        w = self.d.logged_in_wire()
        search = pb_message((1, "perl"), (10, 5))
        with harness.TableLock(env, "bib"):
            ids = [w.send(REQ_CATALOG_SEARCH, search) for _ in range(6)]
            r = w.recv()
            self.assertEqual((r.id, r.status, r.reason),
                             (ids[5], "too_many_requests", "inflight_limit"), r)
        for _ in range(5):
            self.assertEqual(w.recv().status, "ok")
        w.close()
        # Put back for the harness's stop.
        self.d.settings["listen_port"] = old_port
        self.d.write_config()

    def test_bad_files_refused_whole(self):
        good = dict(self.d.settings)
        cases = [
            # (lines added to the file, what the message names)
            ("max_inflight = 3\nthis line has no equals sign\n", [".conf:", "'key = value'"]),
            ("max_inflight = 3\nmax_frame_bytes = 12\n", ["max_frame_bytes", "outside"]),
            ("max_inflight = 3\nlog_level = loud\n", ["log_level", "loud"]),
            ("max_inflight = 3\ntls_cert = \"%s\"\n" % os.path.join(env.dir, "no-such.crt"),
             ["no-such.crt"]),
            # Settings that need a restart are checked too: the next start would fail.
            ("max_inflight = 3\nlisten_host = \"localhost\"\n", ["listen_host", "localhost"]),
            ("max_inflight = 3\nsql_dir = \"%s\"\n" % os.path.join(env.dir, "no-such-sql"),
             ["sql_dir", "no-such-sql"]),
            ("max_inflight = 3\ndb_conninfo = \"host\"\n", ["db_conninfo does not parse"]),
        ]
        for extra, needles in cases:
            with self.subTest(extra=extra):
                self.d.write_config()
                with open(self.d.config, "a") as f:
                    f.write(extra)
                self.assertInvalid(self.reload(), *needles)
                text = sighup(self.d)
                self.assertIn("reload (SIGHUP) refused, the running settings are kept", text)
                for n in needles:
                    self.assertIn(n, text)
        # A certificate file that is not a certificate.
        junk = os.path.join(env.dir, "junk-%d.crt" % self.d.port)
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        self.set(tls_cert=junk, max_inflight=3)
        self.assertInvalid(self.reload(), "junk-")
        # The refusals by request are audited with their reason.
        rows = env.psql("SELECT a.detail->>'refused' FROM admin_audit a WHERE a.action = "
                        "'reload' AND a.target = '%s' AND a.detail ? 'refused'" % self.d.config)
        self.assertIn("max_frame_bytes", rows)
        self.assertIn("junk-", rows)
        # Nothing of the refused files took: the good file again changes nothing.
        self.d.settings = good
        self.d.write_config()
        self.assertApplied(self.reload(), [])
        w = self.d.logged_in_wire()
        self.assertEqual(w.call(REQ_PING, pb_message((1, "ok"))).status, "ok")
        w.close()

    def test_smtp_relay_settings_and_password_file(self):
        pw = os.path.join(env.dir, "relay-%d.pw" % self.d.port)
        harness.write_atomically(pw, "relay-secret\n")
        os.chmod(pw, 0o600)
        self.set(smtp_host="127.0.0.1", smtp_port=2525, smtp_user="notices",
                 smtp_password_file=pw)
        self.assertApplied(self.reload(), ["smtp_host", "smtp_port", "smtp_user",
                                           "smtp_password_file"])
        # The password file is read again by every reload (RelayPasswordTest checks that
        # the rotated password reaches the relay).
        harness.write_atomically(pw, "rotated-secret\n")
        self.assertApplied(self.reload(), [])
        os.remove(pw)
        self.assertInvalid(self.reload(), "smtp_password_file", pw)
        self.set(smtp_user=None, smtp_password_file=None)
        self.assertApplied(self.reload(), ["smtp_user", "smtp_password_file"])
        self.set(smtp_tls="sometimes")
        self.assertInvalid(self.reload(), "smtp_tls", "sometimes")

    def test_extra_argument_refused(self):
        r = env.carrel(self.admin, "admin", "reload", "now", json_out=False)
        self.assertEqual(r.code, 2, r)
        self.assertIn("usage: admin reload", r.stderr)
        self.assertNotIn("reload (", self.d.log_text())

    def test_clerk_is_refused(self):
        env.add_staff(self.admin, "clerk%d" % self.d.port, "clerk", "DWN", STAFF_PASSWORD)
        clerk = env.profile(self.d, user="clerk%d" % self.d.port, password=STAFF_PASSWORD)
        self.set(log_level="debug")
        r = self.reload(clerk)
        self.assertNotEqual(r.code, 0, r)
        doc = r.json[0] if isinstance(r.json, list) else r.json
        self.assertEqual((doc["status"], doc["reason"]), ("forbidden", "role"), r)
        self.assertNotIn("reload (", self.d.log_text())

    def test_config_file_not_regular_refused_at_once(self):
        """A FIFO where the file was is refused without being read (it would block the
        reload, and the shutdown waiting for it, for ever)."""
        os.remove(self.d.config)
        os.mkfifo(self.d.config, 0o600)
        try:
            self.assertInvalid(self.reload(), "not a regular file")
        finally:
            os.remove(self.d.config)
            self.d.write_config()
        self.assertApplied(self.reload(), [])

    def test_one_reload_at_a_time(self):
        """The first reload reads a FIFO put where the relay's password file is, so it waits
        while the second is refused and a SIGHUP is noted; writing the password into the
        FIFO lets it finish, and the SIGHUP then reads the (regular) file once more."""
        pw = os.path.join(env.dir, "relay-%d.pw" % self.d.port)
        regular = pw + ".regular"
        with open(regular, "w") as f:
            f.write("relay-secret\n")
        os.chmod(regular, 0o600)
        os.mkfifo(pw, 0o600)
        text = "relay-secret\n"
        self.set(max_inflight=9, smtp_host="127.0.0.1", smtp_port=2525, smtp_user="notices",
                 smtp_password_file=pw)
        first = {}
        t = threading.Thread(target=lambda: first.setdefault("r", self.reload()))
        t.start()
        fifo = None
        try:
            harness.wait_until(lambda: "reload (admin): reading" in self.d.log_text(), 60,
                               "the first reload to start")
            second = self.reload()
            self.assertNotEqual(second.code, 0, second)
            doc = second.json[0] if isinstance(second.json, list) else second.json
            self.assertEqual((doc["status"], doc["reason"]), ("conflict", "reload_running"),
                             second)
            self.d.signal(signal.SIGHUP)
            harness.wait_until(lambda: "SIGHUP: a reload is running; reading again"
                               in self.d.log_text(), 60, "the SIGHUP to be noted")
            # Blocks until the first reload opens the FIFO; the path is then a regular
            # file again before the FIFO's end is reached.
            fifo = open(pw, "w")
            os.replace(regular, pw)
            fifo.write(text)
        finally:
            if fifo is None:  # unblock the daemon whatever failed
                try:
                    os.close(os.open(pw, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass
            else:
                fifo.close()
            t.join(120)
        self.assertApplied(first["r"], ["max_inflight", "smtp_host", "smtp_port", "smtp_user",
                                        "smtp_password_file"])
        harness.wait_until(lambda: reload_ends(self.d, "SIGHUP") == 1, 60,
                           "the SIGHUP's reload")
        self.assertIn("reload (SIGHUP) of %s: 0 setting(s) applied" % self.d.config,
                      self.d.log_text())


class DrainTest(unittest.TestCase):
    def test_reload_ending_during_the_drain(self):
        """A reload still being read when SIGTERM starts the drain (its relay password file
        is a FIFO nobody writes yet): the shutdown waits for it, it is then dropped and
        answered shutting_down, and systemd hears STOPPING=1 and no READY=1 after it; a
        SIGHUP during the drain starts nothing. The daemon then exits 0."""
        import test_systemd
        notifier = test_systemd.Notifier(os.path.join(env.dir, "notify-drain.sock"))
        os.environ["NOTIFY_SOCKET"] = notifier.path
        try:
            d = env.daemon()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        notifier.port = d.port
        pw = os.path.join(env.dir, "drain-%d.pw" % d.port)
        os.mkfifo(pw, 0o600)
        try:
            admin = env.profile(d)
            harness.wait_until(lambda: notifier.count("READY=1"), what="READY=1")
            d.settings.update(smtp_host="127.0.0.1", smtp_port=2525, smtp_user="notices",
                              smtp_password_file=pw)
            d.write_config()
            first = {}
            t = threading.Thread(target=lambda: first.setdefault("r", env.carrel(admin, "admin",
                                                                                 "reload")))
            t.start()
            harness.wait_until(lambda: "reload (admin): reading" in d.log_text(), 60,
                               "the reload to start")
            d.signal(signal.SIGTERM)
            harness.wait_until(lambda: notifier.count("STOPPING=1"), 30, "STOPPING=1")
            d.signal(signal.SIGHUP)  # ignored while draining
            with open(pw, "w") as f:  # lets the read finish
                f.write("relay-secret\n")
            t.join(120)
            doc = first["r"].json[0] if isinstance(first["r"].json, list) else first["r"].json
            self.assertEqual((doc["status"], doc["reason"]), ("unavailable", "shutting_down"),
                             first["r"])
            self.assertEqual(d.wait(120), 0, d.log_text())
            lines = [l for _, l in notifier.lines()]
            self.assertNotIn("READY=1", lines[lines.index("STOPPING=1"):], lines)
            self.assertIn("dropped: shutting down", d.log_text())
            self.assertNotIn("reload (SIGHUP)", d.log_text())
        finally:
            if d.proc is not None and d.proc.poll() is None:
                try:
                    os.close(os.open(pw, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass
            d.stop()
            notifier.close()


class RelayPasswordTest(unittest.TestCase):
    def test_rotated_relay_password_reaches_the_relay(self):
        """The relay now accepts only the rotated password; the daemon started with the
        old one in its password file. After the file is rewritten and reloaded, a send
        pass authenticates with the new one and the notice is delivered."""
        relay = harness.SmtpRelay(env, password="rotated-secret")
        d = None
        try:
            settings = relay.daemon_settings(password="old-secret")
            d = env.daemon(smtp_from="library@hpl.example.org", jobs_interval_s=0,
                           notice_send_interval_s=0, **settings)
            admin = env.profile(d)
            addr = "rotation%d@example.org" % env.next_number()
            card = env.new_patron(email=addr, contact_channel="email")
            pid = env.psql("SELECT id FROM patron WHERE card = '%s'" % card)
            env.psql("SELECT notice_queue(%s, 'overdue_1', NULL, NULL, '2031-01-01', "
                     "'Rotation', 1)" % pid)
            harness.write_atomically(settings["smtp_password_file"], "rotated-secret\n")
            r = env.carrel(admin, "admin", "reload")
            self.assertEqual((r.code, r.json["applied"]), (0, []), r)
            r = env.carrel(admin, "notices", "run")
            self.assertEqual(r.code, 0, r)
            harness.wait_until(lambda: relay.messages(to=addr), 60, "the notice at the relay")
        finally:
            if d:
                d.stop()
            relay.stop()


class SipTlsTest(unittest.TestCase):
    def test_sip_tls_context_swapped(self):
        """sip_tls = true: a reload with a new certificate gives new SIP2 connections the new
        certificate, and the port keeps speaking TLS."""
        d = env.daemon(sip=True, sip_tls=True)
        try:
            admin = env.profile(d)

            def sip_fingerprint():
                return sip_tls_fingerprint(d)

            self.assertEqual(sip_fingerprint(), fingerprint_of_file(env.tls("server.crt")))
            newdir = os.path.join(env.dir, "tls-sip-%d" % d.port)
            os.makedirs(newdir)
            for name in ("ca.crt", "ca.key"):
                shutil.copy(env.tls(name), os.path.join(newdir, name))
            env.run(os.path.join(harness.SCRIPTS, "mkcerts"), newdir)
            new_crt = os.path.join(newdir, "server.crt")
            d.settings.update(tls_cert=new_crt, tls_key=os.path.join(newdir, "server.key"))
            d.write_config()
            r = env.carrel(admin, "admin", "reload")
            self.assertEqual(r.code, 0, r)
            self.assertEqual(sorted(r.json["applied"]), ["tls_cert", "tls_key"], r)
            self.assertEqual(sip_fingerprint(), fingerprint_of_file(new_crt))
        finally:
            d.stop()


def sip_tls_fingerprint(d):
    """The certificate the SIP2 port shows (a TLS handshake must succeed)."""
    ctx = ssl.create_default_context(cafile=env.tls("ca.crt"))
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", d.sip_port), timeout=30) as raw:
        with ctx.wrap_socket(raw) as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def sighup_taken(pid):
    """SIGHUP ignored or caught by pid (/proc/PID/status)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            fields = dict(line.split(":\t", 1) for line in f if ":\t" in line)
    except OSError:
        return False
    return bool((int(fields["SigIgn"], 16) | int(fields["SigCgt"], 16)) & (1 << (signal.SIGHUP - 1)))


class EarlySighupDaemon(DaemonWithArgs):
    """SIGHUP sent right after carreld is spawned: during option parsing, the migrations
    and the dummy hash, before (or while) the loop's handler is installed."""

    def start_once(self, expect_listen):
        self.write_config()
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([harness.CARRELD, "-c", self.config, "-p", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if self not in self.env.daemons:
            self.env.daemons.append(self)
        # Once carreld's main() has taken SIGHUP over (ignored, then the loop's handler),
        # SIGHUPs until it listens: none kills it, and a reload during the start is harmless.
        harness.wait_until(lambda: self.proc.poll() is not None or sighup_taken(self.proc.pid),
                           60, "carreld to take SIGHUP over")
        while self.proc.poll() is None and "listening on" not in self.log_text():
            self.proc.send_signal(signal.SIGHUP)
            time.sleep(0.01)
        harness.wait_until(lambda: "listening on" in self.log_text()
                           or self.proc.poll() is not None, 120, "carreld to listen")
        if self.proc.poll() is not None:
            raise AssertionError("carreld exited at start (rc %s):\n%s"
                                 % (self.proc.returncode, self.log_text()))
        return self


class EarlySighupTest(unittest.TestCase):
    def test_sighup_during_startup_and_sd_notify(self):
        """SIGHUPs from the start of main() until the port listens: none kills carreld, and
        no reload of that time says READY=1 before the port accepts (test_systemd's
        Notifier plays systemd). Once serving, a reload says RELOADING=1 with
        MONOTONIC_USEC, then READY=1."""
        import test_systemd
        notifier = test_systemd.Notifier(os.path.join(env.dir, "notify-reload.sock"))
        os.environ["NOTIFY_SOCKET"] = notifier.path
        try:
            d = EarlySighupDaemon(env, [], sip=True, sip_tls=True)
            notifier.port = d.port
            d.start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        try:
            w = harness.Wire(env, d.port)
            self.assertEqual(w.hello().status, "ok")
            w.close()
            harness.wait_until(lambda: notifier.count("READY=1"), what="READY=1")
            self.assertIs(notifier.port_accepted_at_ready, True,
                          "READY=1 came before the desks' port accepted")
            # The reloads started during the start end without a word to systemd; one
            # started after READY=1 (a SIGHUP just after "listening on") is framed by
            # RELOADING=1 ... READY=1.
            harness.wait_until(lambda: d.log_text().count("reload (SIGHUP): reading")
                               == reload_ends(d, "SIGHUP"), 60, "the start's reloads to end")
            lines = [l for _, l in notifier.lines()]
            self.assertEqual(lines.count("READY=1"), 1 + lines.count("RELOADING=1"), lines)
            # The SIP2 port still speaks TLS after the reloads that raced its start.
            self.assertEqual(sip_tls_fingerprint(d), fingerprint_of_file(env.tls("server.crt")))
            self.assertEqual(lines.index("READY=1"),
                             min(i for i, l in enumerate(lines) if l in ("READY=1",
                                                                          "RELOADING=1")),
                             lines)
            since = time.monotonic()
            sighup(d)
            harness.wait_until(lambda: notifier.count("RELOADING=1", since), 30, "RELOADING=1")
            harness.wait_until(
                lambda: "READY=1" in [l for _, l in notifier.lines(since)][
                    [l for _, l in notifier.lines(since)].index("RELOADING=1"):],
                30, "READY=1 after RELOADING=1")
            lines = [l for _, l in notifier.lines(since)]
            at = lines.index("RELOADING=1")
            self.assertTrue(lines[at + 2].startswith("MONOTONIC_USEC="), lines)
        finally:
            d.stop()
            notifier.close()


class OverridesTest(unittest.TestCase):
    def test_command_line_overrides_applied_again(self):
        d = DaemonWithArgs(env, ["-s", "max_inflight=7"]).start()
        try:
            profile = env.profile(d)
            d.settings["idle_timeout_s"] = 600
            d.settings["max_inflight"] = 50  # the file says 50; -s still says 7
            d.settings["listen_port"] = harness.free_port()  # the file moves; -p stays
            d.write_config()
            r = env.carrel(profile, "admin", "reload")
            self.assertEqual(r.code, 0, r)
            self.assertEqual(r.json["applied"], ["idle_timeout_s"], r)
            self.assertEqual(r.json["needs_restart"], [], r)
            # The file's other change applies; the overrides keep their values.
            self.assertIn("reload: idle_timeout_s = 600 (was 900)", d.log_text())
            self.assertNotIn("reload: max_inflight", d.log_text())
            self.assertNotIn("listen_port changed", d.log_text())
            d.settings["listen_port"] = d.port
        finally:
            d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
