#!/usr/bin/env python3
"""carreld under a service manager (issue 16): the sd_notify(3) protocol as systemd
speaks it, with this test playing systemd. NOTIFY_SOCKET names a datagram socket we
read; WATCHDOG_USEC asks for pings. carreld must say READY=1 only once its port
accepts, ping WATCHDOG=1 from its event loop (so a stopped loop stops the pings, and
pings resume when it runs again), say RELOADING=1 then READY=1 around every SIGHUP
reload (applied or refused) and survive it, and say STOPPING=1 when SIGTERM starts the
drain. Without NOTIFY_SOCKET (every other suite) none of this happens.

Its stderr is "the journal" too: JOURNAL_STREAM names the daemon's log file (its
device and inode, as systemd names the journal's stream), so every line carries its
sd-daemon priority (<3> error ... <7> debug) for journald, instead of the time.

Skipped when carreld was built without libsystemd (meson -Dsystemd=disabled)."""

import ctypes
import json
import os
import re
import signal
import subprocess
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

WATCHDOG_USEC = 400000  # carreld pings every 200 ms
INTERVAL_S = WATCHDOG_USEC / 1e6 / 2

env = None
notifier = None
daemon = None


class Notifier:
    """The service manager's end of NOTIFY_SOCKET: every datagram, split into its
    KEY=VALUE lines, with the monotonic time it arrived. When READY=1 arrives, the
    daemon's port is tried at once: it must already accept."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.lock = threading.Lock()
        self.messages = []  # (monotonic time, [lines])
        self.port = None
        self.port_accepted_at_ready = None
        self.stopped = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopped:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            lines = data.decode().split("\n")
            if "READY=1" in lines and self.port_accepted_at_ready is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
                    self.port_accepted_at_ready = True
                except OSError:
                    self.port_accepted_at_ready = False
            with self.lock:
                self.messages.append((time.monotonic(), lines))

    def lines(self, since=0.0):
        with self.lock:
            return [(t, line) for t, lines in self.messages if t >= since for line in lines]

    def count(self, line, since=0.0):
        return sum(1 for _, l in self.lines(since) if l == line)

    def close(self):
        self.stopped = True
        self.thread.join()
        self.sock.close()


def built_with_libsystemd():
    out = subprocess.run(["meson", "introspect", "--dependencies", harness.BUILD],
                         capture_output=True, text=True, check=True).stdout
    return any(d["name"] == "libsystemd" for d in json.loads(out))


def setUpModule():
    global env, notifier, daemon
    if not built_with_libsystemd():
        raise unittest.SkipTest("carreld built without libsystemd (-Dsystemd=disabled)")
    env = harness.Env()
    try:
        env.start()
        notifier = Notifier(os.path.join(env.dir, "notify.sock"))
        # The daemon inherits our environment, as systemd gives a service its own.
        os.environ["NOTIFY_SOCKET"] = notifier.path
        os.environ["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
        try:
            daemon = harness.Daemon(env)
            notifier.port = daemon.port
            # The log file exists before the start, which opens it again with "w"
            # (truncating: the same inode), as the daemon's stderr.
            open(daemon.log_path, "w").close()
            st = os.stat(daemon.log_path)
            os.environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
            daemon.start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
            del os.environ["WATCHDOG_USEC"]
            os.environ.pop("JOURNAL_STREAM", None)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    try:
        env.stop()
    finally:
        if notifier:
            notifier.close()


def process_state(pid):
    """The state letter of /proc/PID/stat: 'T' once SIGSTOP has taken effect."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


# ptrace(2) requests: stopping one thread of the daemon (the loop's) and not the others.
PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000


def ptrace(request, tid):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(request, tid, None, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "ptrace(%#x, %d): %s" % (request, tid, os.strerror(err)))


def thread_states(pid):
    """{tid: state letter} of every thread of pid."""
    states = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            states[int(tid)] = f.read().rsplit(")", 1)[1].split()[0]
    return states


class Notify(unittest.TestCase):
    # The tests run in name order and share one daemon: the last one stops it.

    def test_1_ready_once_the_port_accepts(self):
        harness.wait_until(lambda: notifier.count("READY=1"), what="READY=1")
        self.assertIs(notifier.port_accepted_at_ready, True,
                      "READY=1 came before the desks' port accepted")
        self.assertEqual(notifier.count("READY=1"), 1)
        harness.wait_until(
            lambda: ("STATUS=serving desks on port %d" % daemon.port
                     in [l for _, l in notifier.lines()]),
            what="the STATUS line naming the port")
        # The migrations' status came first, before the loop.
        lines = [l for _, l in notifier.lines()]
        self.assertLess(lines.index("STATUS=applying database migrations"),
                        lines.index("READY=1"))
        self.assertIn("systemd watchdog: a ping every 200 ms", daemon.log_text())

    def test_2_watchdog_pings_from_the_loop(self):
        since = time.monotonic()
        harness.wait_until(lambda: notifier.count("WATCHDOG=1", since) >= 5,
                           what="five WATCHDOG=1")
        times = [t for t, l in notifier.lines(since) if l == "WATCHDOG=1"]
        gaps = [b - a for a, b in zip(times, times[1:])]
        # Every WATCHDOG_USEC/2; a busy machine may delay one, but never by a whole timeout.
        self.assertLess(sorted(gaps)[len(gaps) // 2], WATCHDOG_USEC / 1e6)
        # The daemon still serves meanwhile.
        w = daemon.wire()
        self.assertEqual(w.hello().status, "ok")
        w.close()

    def test_3_a_stopped_loop_stops_the_pings(self):
        pid = daemon.proc.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            harness.wait_until(lambda: process_state(pid) == "T", what="the daemon stopped")
            start = time.monotonic()
            # The one fixed wait of this file, and it is inherent: we are showing that
            # nothing arrives for a while, so we must let that while pass. 2.5 ping
            # intervals (more than two) with no WATCHDOG=1 is what systemd would notice.
            time.sleep(INTERVAL_S * 2.5 + 0.1)
            # A ping sent just before the stop may be stamped by our reader just after
            # `start`: the window counts from 100 ms later (well under one interval).
            during = notifier.count("WATCHDOG=1", start + 0.1)
            self.assertEqual(during, 0, "WATCHDOG=1 while the daemon was stopped")
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        harness.wait_until(lambda: notifier.count("WATCHDOG=1", resumed) >= 2,
                           what="pings again after SIGCONT")

    def test_3_b_a_blocked_loop_thread_alone_stops_the_pings(self):
        """SIGSTOP (above) stops every thread, so pings from a helper thread would stop
        too. Here only the event loop's thread (the main one: its id is the pid) is
        stopped, with ptrace (the daemon is our child, which Yama's default allows); the
        thread pool and any other thread run on. Pings sent from anywhere but the loop
        would go on, and fail this test."""
        pid = daemon.proc.pid
        ptrace(PTRACE_SEIZE, pid)
        try:
            ptrace(PTRACE_INTERRUPT, pid)
            # The main thread's ptrace-stop, collected here (not by Popen: no poll() meanwhile).
            _, status = os.waitpid(pid, WALL)
            self.assertTrue(os.WIFSTOPPED(status), status)
            states = thread_states(pid)
            self.assertEqual(states.pop(pid), "t")
            self.assertTrue(states, "carreld has no thread besides its loop's")
            for tid, state in states.items():
                self.assertIn(state, "RSD", "thread %d is stopped too" % tid)
            start = time.monotonic()
            # Inherent fixed wait, as in the test above.
            time.sleep(INTERVAL_S * 2.5 + 0.1)
            during = notifier.count("WATCHDOG=1", start + 0.1)
            self.assertEqual(during, 0, "WATCHDOG=1 while the loop's thread was stopped")
        finally:
            ptrace(PTRACE_DETACH, pid)
        resumed = time.monotonic()
        harness.wait_until(lambda: notifier.count("WATCHDOG=1", resumed) >= 2,
                           what="pings again once the loop runs")
        self.assertIsNone(daemon.proc.poll())

    def sighup(self):
        """SIGHUP; the lines sent from then until READY=1 came after a RELOADING=1."""
        since = time.monotonic()
        before = time.clock_gettime(time.CLOCK_MONOTONIC)
        daemon.signal(signal.SIGHUP)

        def done():
            lines = [l for _, l in notifier.lines(since)]
            return "RELOADING=1" in lines and "READY=1" in lines[lines.index("RELOADING=1"):]

        harness.wait_until(done, 60, "RELOADING=1 then READY=1")
        lines = [l for _, l in notifier.lines(since)]
        # READY=1 ends the reload, and the status line naming the port follows it.
        harness.wait_until(
            lambda: ("STATUS=serving desks on port %d" % daemon.port
                     in [l for _, l in notifier.lines(since)][lines.index("READY=1"):]),
            what="the status line again after the reload")
        lines = [l for _, l in notifier.lines(since)]
        self.assertEqual(lines.count("RELOADING=1"), 1, lines)
        self.assertEqual(lines.count("READY=1"), 1, lines)
        # MONOTONIC_USEC: when the reload began, on CLOCK_MONOTONIC (Type=notify-reload).
        usec = [int(l.split("=", 1)[1]) for l in lines if l.startswith("MONOTONIC_USEC=")]
        self.assertEqual(len(usec), 1, lines)
        self.assertGreaterEqual(usec[0], int(before * 1e6))
        self.assertLessEqual(usec[0], int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6))
        return lines

    def still_serving(self):
        self.assertIsNone(daemon.proc.poll(), "the daemon died")
        w = daemon.wire()
        self.assertEqual(w.hello().status, "ok")
        w.close()
        since = time.monotonic()
        harness.wait_until(lambda: notifier.count("WATCHDOG=1", since) >= 2,
                           what="pings after the reload")

    def test_3a_sighup_reload_says_reloading_then_ready(self):
        self.sighup()
        self.assertIn("reload (SIGHUP) of ", daemon.log_text())
        self.still_serving()

    def test_3b_a_refused_reload_says_ready_too(self):
        # Without READY=1 after a refused reload, systemd would leave the unit
        # "reloading" for good.
        with open(daemon.config, "a") as f:
            f.write("this line has no equals sign\n")
        try:
            self.sighup()
            harness.wait_until(lambda: "reload (SIGHUP) refused" in daemon.log_text(),
                               what="the refusal in the log")
            self.still_serving()
        finally:
            daemon.write_config()

    def test_3c_log_lines_carry_journal_priorities(self):
        # stderr is the stream JOURNAL_STREAM names: every line starts with its
        # priority and level, no time (journald adds its own).
        lines = daemon.log_text().splitlines()
        self.assertGreater(len(lines), 5)
        for line in lines:
            self.assertRegex(line, r"^(<3>ERROR|<4>WARN |<6>INFO |<7>DEBUG) \[(-|c\d+)\] ",
                             line)
        self.assertIn("<6>INFO  [-] systemd watchdog: a ping every 200 ms", lines)
        # The refused reload above was an error: journalctl -p err shows it.
        self.assertTrue(any(re.match(r"<3>ERROR \[-\] reload \(SIGHUP\) refused", l)
                            for l in lines), lines)

    def test_4_sigterm_says_stopping(self):
        self.assertEqual(notifier.count("STOPPING=1"), 0)
        daemon.stop()  # SIGTERM; exits 0 with no sanitizer report
        harness.wait_until(lambda: notifier.count("STOPPING=1"), what="STOPPING=1")
        lines = [l for _, l in notifier.lines()]
        self.assertGreater(lines.index("STOPPING=1"), lines.index("READY=1"))
        # Nothing is pinged once the daemon has gone.
        self.assertIsNone(daemon.proc)


if __name__ == "__main__":
    unittest.main()
