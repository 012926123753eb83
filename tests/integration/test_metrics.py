#!/usr/bin/env python3
"""Metrics (issue 16, docs/OPERATIONS.md "Metrics"): the Prometheus endpoint is off
unless configured; every line it serves parses (a strict reading of the text format,
and prometheus_client's parser); HELP and TYPE come once per family, before its
samples; histograms are cumulative with +Inf equal to _count; counters move after a
checkout and a failed login; bad methods, paths and headers are answered; a
connection that sends nothing is closed; `carrel admin status` (ServerStatus) shows the
same samples; a clerk may not ask."""

import json
import math
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # meson's python3 may not be Debian's, where python3-prometheus-client is
    if os.path.realpath(sys.executable) != os.path.realpath(harness.SYSTEM_PYTHON):
        os.execv(harness.SYSTEM_PYTHON, [harness.SYSTEM_PYTHON] + sys.argv)
    raise

env = None

# The text format, version 0.0.4, read strictly: names, labels with escaped values,
# a float (or +Inf, -Inf, NaN), no timestamps (we never send them).
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\\\|\\"|\\n)*"'
LABELS = r"\{(?:%s=%s)(?:,%s=%s)*\}" % (NAME, LABEL_VALUE, NAME, LABEL_VALUE)
FLOAT = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)"
SAMPLE_RE = re.compile(r"^(%s)(%s)? (%s)$" % (NAME, LABELS, FLOAT))
HELP_RE = re.compile(r"^# HELP (%s) (.+)$" % NAME)
TYPE_RE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)
LABEL_RE = re.compile(r'(%s)="((?:[^"\\]|\\.)*)"' % NAME)

REQUIRED = [
    "carrel_build_info", "carrel_start_time_seconds", "carrel_connections",
    "carrel_requests_in_flight", "carrel_logins_waiting", "carrel_requests_total",
    "carrel_request_duration_seconds", "carrel_db_connections", "carrel_db_queries_waiting",
    "carrel_password_checks", "carrel_logins_failed_total", "carrel_logins_throttled_total",
    "carrel_events_pushed_total", "carrel_notices_sent_total", "carrel_notices_failed_total",
]


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


def read_to_close(sock):
    """Everything the endpoint sends until it closes the connection."""
    raw = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return raw
        raw += chunk


def http(port, data, timeout=30):
    """Send raw bytes to the metrics port; (status code, headers dict, body) of the answer,
    read until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        raw = read_to_close(s)
    finally:
        s.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    code = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in
               (line.split(":", 1) for line in lines[1:])}
    assert int(headers["content-length"]) == len(body), (headers, len(body))
    return code, headers, body.decode()


def scrape(port):
    code, headers, body = http(port, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert code == 200, (code, body)
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    assert headers["connection"] == "close", headers
    return body


def unescape(v):
    return v.replace('\\n', '\n').replace('\\"', '"').replace('\\\\', '\\')


def parse_strict(text):
    """Every line checked; {(name, frozenset(labels)): value}, {family: type}, {family: help}."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    samples, types, helps = {}, {}, {}
    current = None  # the family whose samples may follow
    for n, line in enumerate(text.split("\n")[:-1], 1):
        m = HELP_RE.match(line)
        if m:
            assert m.group(1) not in helps, "HELP twice for %s (line %d)" % (m.group(1), n)
            helps[m.group(1)] = m.group(2)
            current = m.group(1)
            continue
        m = TYPE_RE.match(line)
        if m:
            assert m.group(1) not in types, "TYPE twice for %s (line %d)" % (m.group(1), n)
            assert m.group(1) == current, "TYPE without its HELP first (line %d)" % n
            types[m.group(1)] = m.group(2)
            continue
        m = SAMPLE_RE.match(line)
        assert m, "line %d does not parse: %r" % (n, line)
        name = m.group(1)
        family = name
        if types.get(current) == "histogram":
            family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert family == current and current in types, \
            "sample %s outside its family's block (line %d)" % (name, n)
        labels = frozenset((k, unescape(v)) for k, v in LABEL_RE.findall(m.group(2) or ""))
        key = (name, labels)
        assert key not in samples, "sample repeated (line %d): %r" % (n, line)
        samples[key] = float(m.group(3))
    assert set(types) == set(helps), "every family has HELP and TYPE"
    return samples, types, helps


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def check_histograms(samples, types):
    for family, t in types.items():
        if t != "histogram":
            continue
        series = {}
        for (name, labels), v in samples.items():
            if name == family + "_bucket":
                d = dict(labels)
                le = d.pop("le")
                series.setdefault(frozenset(d.items()), []).append(
                    (math.inf if le == "+Inf" else float(le), v))
        for labels, buckets in series.items():
            buckets.sort()
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), "%s %s not cumulative" % (family, dict(labels))
            assert buckets[-1][0] == math.inf, "%s %s without +Inf" % (family, dict(labels))
            count = samples[(family + "_count", labels)]
            assert buckets[-1][1] == count, "%s %s: +Inf %s != _count %s" % (
                family, dict(labels), buckets[-1][1], count)
            assert (family + "_sum", labels) in samples
            assert buckets[0][0] <= 0.001 and 10 <= buckets[-2][0], "1 ms ... 10 s buckets"


def listening_ports(pid):
    """The TCP ports process pid listens on (its sockets' inodes against /proc/net/tcp*)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


class Endpoint(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mport = harness.free_port()
        cls.d = env.daemon(metrics_listen_port=cls.mport)
        cls.admin = env.profile(cls.d)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def carrel(self, *args, **kw):
        return env.carrel(self.admin, *args, **kw)

    def checkout(self):
        card, barcode = env.new_patron(first="Metrics"), env.new_item(title="Metrics copy")
        r = self.carrel("checkout", card, barcode)
        self.assertEqual(r.code, 0, r)

    def failed_login(self):
        w = self.d.wire()
        try:
            self.assertEqual(w.hello().status, "ok")
            r = w.login("desk-dwn", "admin", "not-the-password")
            self.assertEqual(r.status, "unauthenticated", r)
        finally:
            w.close()

    def test_every_line_parses(self):
        self.checkout()
        self.failed_login()
        text = scrape(self.mport)
        samples, types, helps = parse_strict(text)
        for family in REQUIRED:
            self.assertIn(family, types, family)
        for family, t in types.items():
            self.assertTrue(family.startswith("carrel_"), family)
            if t == "counter":
                self.assertTrue(family.endswith("_total"), family)
            if t == "histogram":
                self.assertTrue(family.endswith("_seconds"), family)
        check_histograms(samples, types)
        self.assertEqual(value(samples, "carrel_build_info", version="0.1.0"), 1)
        self.assertAlmostEqual(value(samples, "carrel_start_time_seconds"), time.time(),
                               delta=3600)
        for state in ("handshake", "hello", "login", "session", "draining"):
            self.assertIn(("carrel_connections", frozenset({("state", state)})), samples)
        for state in ("busy", "idle", "connecting", "broken"):
            self.assertIn(("carrel_db_connections",
                           frozenset({("pool", "primary"), ("state", state)})), samples)
        self.assertEqual(sum(value(samples, "carrel_db_connections", pool="primary", state=s)
                             for s in ("busy", "idle", "connecting", "broken")), 4)
        self.assertIn(("carrel_password_checks", frozenset({("state", "queued")})), samples)
        # No standby configured: no replica lag.
        self.assertNotIn("carrel_replica_lag_seconds", types)

        # prometheus_client's parser agrees on the families and every sample.
        parsed = {}
        for fam in text_string_to_metric_families(text):
            self.assertEqual(fam.type, types[fam.name if fam.type != "counter"
                                             else fam.name + "_total"], fam.name)
            for s in fam.samples:
                parsed[(s.name, frozenset(s.labels.items()))] = s.value
        self.assertEqual(parsed, samples)

    def test_counters_move(self):
        before, _, _ = parse_strict(scrape(self.mport))
        self.checkout()
        self.failed_login()
        after, _, _ = parse_strict(scrape(self.mport))
        self.assertEqual(value(after, "carrel_requests_total", type="checkout", status="ok")
                         - value(before, "carrel_requests_total", type="checkout", status="ok"),
                         1)
        self.assertEqual(value(after, "carrel_request_duration_seconds_count", type="checkout")
                         - value(before, "carrel_request_duration_seconds_count",
                                 type="checkout"), 1)
        self.assertEqual(value(after, "carrel_logins_failed_total", reason="wrong_password")
                         - value(before, "carrel_logins_failed_total",
                                 reason="wrong_password"), 1)
        self.assertEqual(value(after, "carrel_requests_total", type="login",
                               status="unauthenticated")
                         - value(before, "carrel_requests_total", type="login",
                                 status="unauthenticated"), 1)

    def test_event_counter_moves(self):
        before, _, _ = parse_strict(scrape(self.mport))
        w = self.d.logged_in_wire()
        try:
            r = w.call(harness.REQ_PING, harness.pb_message((1, "x"), (2, 1)))
            self.assertEqual(r.status, "ok", r)
        finally:
            w.close()
        after, _, _ = parse_strict(scrape(self.mport))
        self.assertEqual(value(after, "carrel_events_pushed_total", kind="test")
                         - value(before, "carrel_events_pushed_total", kind="test"), 1)

    def test_idle_connections_cannot_lock_scrapers_out(self):
        # Memory is bounded to 16 scrape connections, but idle ones do not hold the slots
        # against a scraper: a new connection takes the slot of the oldest idle one.
        socks = []
        try:
            for _ in range(16):
                socks.append(socket.create_connection(("127.0.0.1", self.mport), timeout=60))
            samples, _, _ = parse_strict(scrape(self.mport))  # served at once
            self.assertIn("carrel_build_info", {k[0] for k in samples})
            try:
                self.assertEqual(socks[0].recv(100), b"")  # the oldest idle one went
            except ConnectionResetError:
                pass
        finally:
            for s in socks:
                s.close()

    def test_refusals_logged_once_a_minute(self):
        # Only when every slot has its answer on the way is a new connection closed at
        # accept, and that is said once a minute with a count, not once a connection.
        holders = []
        try:
            for _ in range(16):  # ask, never read, never close: answered, lingering 2 s
                c = socket.create_connection(("127.0.0.1", self.mport), timeout=60)
                c.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
                holders.append(c)
            for c in holders:
                self.assertTrue(c.recv(1, socket.MSG_PEEK))  # the answer is on its way
            extra = [socket.create_connection(("127.0.0.1", self.mport), timeout=60)
                     for _ in range(30)]
            for c in extra:
                try:
                    self.assertEqual(c.recv(100), b"")
                except ConnectionResetError:
                    pass
                c.close()
        finally:
            for c in holders:
                c.close()
        harness.wait_until(lambda: "closed at accept" in self.d.log_text(), 30,
                           "the refusals said")
        self.assertEqual(self.d.log_text().count("closed at accept"), 1)

        def served():
            try:
                return parse_strict(scrape(self.mport))
            except (ConnectionError, IndexError, ValueError, AssertionError):
                return None  # the holders' slots are not free yet
        harness.wait_until(served, 60, "scrapes served again")

    def test_half_closed_scraper_gets_the_whole_answer(self):
        # A scraper that shuts its sending side after the request (nc -N, some proxies)
        # still gets every byte. (The loss needs an answer larger than the socket
        # buffers, which a test daemon's few kilobytes are not: this keeps the path
        # working, it cannot show the old truncation.)
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        c.settimeout(60)
        c.connect(("127.0.0.1", self.mport))
        try:
            c.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
            c.shutdown(socket.SHUT_WR)
            raw = read_to_close(c)
        finally:
            c.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        self.assertEqual(len(body), length)
        parse_strict(body.decode())

    def test_request_in_pieces(self):
        # A request split across segments is put together before it is answered.
        c = socket.create_connection(("127.0.0.1", self.mport), timeout=60)
        try:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for piece in (b"GET /met", b"rics HTTP/1.1\r\nHost: x\r", b"\n\r\n"):
                c.sendall(piece)
            raw = read_to_close(c)
        finally:
            c.close()
        self.assertTrue(raw.startswith(b"HTTP/1.1 200 "), raw[:100])
        parse_strict(raw.partition(b"\r\n\r\n")[2].decode())

    def test_first_event_of_a_status_is_an_increase(self):
        # Every status and the known login reasons are there at 0 before their first
        # event, so that increase() sees the first internal error or failed login.
        s, _, _ = parse_strict(scrape(self.mport))
        for status in ("internal", "unavailable", "ok", "too_many_requests"):
            self.assertIn(("carrel_responses_total", frozenset({("status", status)})), s)
        for reason in ("wrong_password", "unknown_user", "disabled"):
            self.assertIn(("carrel_logins_failed_total", frozenset({("reason", reason)})), s)
        for reason in ("abandoned", "session_ended"):
            self.assertIn(("carrel_logins_dropped_total", frozenset({("reason", reason)})), s)
        self.assertIn(("carrel_notice_relay_failures_total",
                       frozenset({("channel", "email")})), s)
        total = sum(v for (n, _), v in s.items() if n == "carrel_responses_total")
        by_type = sum(v for (n, _), v in s.items() if n == "carrel_requests_total")
        self.assertEqual(total, by_type)

    def test_connection_states(self):
        w = self.d.logged_in_wire()
        try:
            s, _, _ = parse_strict(scrape(self.mport))
            self.assertGreaterEqual(value(s, "carrel_connections", state="session"), 1)
        finally:
            w.close()
        harness.wait_until(
            lambda: value(parse_strict(scrape(self.mport))[0], "carrel_connections",
                          state="session") == 0, 60, "the session gone from the gauge")

    def test_bad_requests_answered(self):
        code, headers, _ = http(self.mport, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(code, 405)
        self.assertEqual(headers.get("allow"), "GET")
        code, _, _ = http(self.mport, b"GET /nothing HTTP/1.1\r\n\r\n")
        self.assertEqual(code, 404)
        code, _, _ = http(self.mport, b"GET / HTTP/1.0\r\n\r\n")
        self.assertEqual(code, 404)
        code, _, _ = http(self.mport, b"\x16\x03\x01 not http at all\r\n\r\n")
        self.assertEqual(code, 400)
        # A header over 8 KiB: refused, not buffered on.
        code, _, _ = http(self.mport, b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 9000)
        self.assertEqual(code, 431)
        # A query string is no other path.
        code, _, body = http(self.mport, b"GET /metrics?x=1 HTTP/1.1\r\n\r\n")
        self.assertEqual(code, 200)
        parse_strict(body)

    def test_silent_connection_closed(self):
        # A scraper that connects and sends nothing (or half a request) is closed by the
        # server's 5 s read deadline; the socket's own timeout only bounds a broken test.
        for data in (b"", b"GET /metrics HTTP/1.1\r\n"):
            s = socket.create_connection(("127.0.0.1", self.mport), timeout=60)
            try:
                if data:
                    s.sendall(data)
                start = time.monotonic()
                self.assertEqual(s.recv(100), b"")
                self.assertLess(time.monotonic() - start, 30)
                self.assertGreater(time.monotonic() - start, 4)  # not before the deadline
            finally:
                s.close()
        # The daemon still serves afterwards.
        parse_strict(scrape(self.mport))

    def test_status_agrees_with_endpoint(self):
        self.checkout()
        self.failed_login()
        text = scrape(self.mport)
        samples, types, _ = parse_strict(text)
        r = self.carrel("admin", "status")
        self.assertEqual(r.code, 0, r)
        reply = r.json
        self.assertEqual(reply["version"], "0.1.0")
        got = {}
        fam_types = {}
        for s in reply["samples"]:
            labels = frozenset(zip(s.get("label_names", []), s.get("label_values", [])))
            got[(s["name"], labels)] = s.get("value", 0.0)
            if "type" in s:
                fam_types[s["name"].removesuffix("_bucket")] = s["type"]
        # The same families and, for what the status request itself cannot change, the
        # same values; the connections and request counts moved with the client's own call.
        self.assertEqual({k for k, v in fam_types.items()},
                         {k for k, v in types.items() if any(
                             n == k or n.startswith(k + "_") for n, _ in samples)})
        stable = ("carrel_build_info", "carrel_start_time_seconds", "carrel_logins_failed_total",
                  "carrel_logins_throttled_total", "carrel_notices_sent_total",
                  "carrel_notices_failed_total", "carrel_events_pushed_total")
        for key, v in samples.items():
            if key[0] in stable:
                self.assertIn(key, got)
                self.assertAlmostEqual(got[key], v, places=3, msg=key)
        checkout = ("carrel_requests_total", frozenset({("type", "checkout"), ("status", "ok")}))
        self.assertEqual(got[checkout], samples[checkout])
        self.assertGreaterEqual(value(got, "carrel_connections", state="session"), 1)
        self.assertEqual(reply["started_ms"] // 1000,
                         int(value(samples, "carrel_start_time_seconds")))

        # For people: grouped lines and the request table.
        r = self.carrel("admin", "status", json_out=False)
        self.assertEqual(r.code, 0, r)
        for word in ("Connections:", "Database connections:", "Logins failed:",
                     "since the daemon started",
                     "wrong_password", "checkout", "Mean ms"):
            self.assertIn(word, r.stdout)

    def test_clerk_forbidden(self):
        env.add_staff(self.admin, "metricsclerk", role="clerk")
        clerk = env.profile(self.d, user="metricsclerk", password="staff-password-123")
        r = env.carrel(clerk, "admin", "status")
        self.assertEqual(r.code, 4, r)
        self.assertIn("role", r.stdout + r.stderr)


class Throttle(unittest.TestCase):
    def test_throttled_and_failed_logins_counted(self):
        mport = harness.free_port()
        d = env.daemon(metrics_listen_port=mport, login_throttle_after=1)
        try:
            before, _, _ = parse_strict(scrape(mport))
            self.assertEqual(value(before, "carrel_logins_throttled_total", key="user"), 0)
            statuses = []
            for _ in range(2):
                w = d.wire()
                try:
                    self.assertEqual(w.hello().status, "ok")
                    statuses.append(w.login("desk-dwn", "guesser", "nope").status)
                finally:
                    w.close()
            self.assertEqual(statuses, ["unauthenticated", "too_many_requests"])
            after, _, _ = parse_strict(scrape(mport))
            self.assertEqual(value(after, "carrel_logins_failed_total", reason="unknown_user"), 1)
            self.assertEqual(value(after, "carrel_logins_throttled_total", key="user"), 1)
            self.assertEqual(value(after, "carrel_requests_total", type="login",
                                   status="too_many_requests"), 1)
        finally:
            d.stop()


class Off(unittest.TestCase):
    def test_off_by_default(self):
        d = env.daemon()
        try:
            self.assertNotIn("metrics on", d.log_text())
            self.assertEqual(listening_ports(d.proc.pid), {d.port})
            # ServerStatus works without the endpoint.
            r = env.carrel(env.profile(d), "admin", "status")
            self.assertEqual(r.code, 0, r)
            names = {s["name"] for s in r.json["samples"]}
            self.assertIn("carrel_requests_total", names)
        finally:
            d.stop()


class RelayDown(unittest.TestCase):
    def test_unreachable_relay_counted(self):
        # With the relay down nothing is sent or failed (the notices wait, untried), so
        # the relay's own counter and the pending gauge are what an alert can see.
        mport = harness.free_port()
        d = env.daemon(metrics_listen_port=mport, smtp_from="library@hpl.example.org",
                       jobs_interval_s=0, notice_send_interval_s=0,
                       **harness.smtp_settings(env, harness.free_port(), tls=False))
        try:
            before, _, _ = parse_strict(scrape(mport))
            self.assertEqual(value(before, "carrel_notice_relay_failures_total",
                                   channel="email"), 0)
            card = env.new_patron(first="Relay", email="relay%d@example.org"
                                  % env.next_number(), contact_channel="email")
            env.psql("SELECT notice_queue(p.id, 'overdue_1', NULL, NULL, '2031-06-06', "
                     "'Relay down', 1) FROM patron p WHERE p.card = '%s'" % card)
            r = env.carrel(env.profile(d), "notices", "run")
            self.assertEqual(r.code, 0, r)
            self.assertEqual(r.json["sent"], 0, r.json)
            after, _, _ = parse_strict(scrape(mport))
            self.assertEqual(value(after, "carrel_notice_relay_failures_total",
                                   channel="email"), 1)
            self.assertGreaterEqual(value(after, "carrel_notices_pending", channel="email"), 1)
            self.assertEqual(value(after, "carrel_notices_sent_total", channel="email"), 0)
        finally:
            d.stop()


class ReplicaLag(unittest.TestCase):
    def test_lag_of_the_stats_standby(self):
        standby = env.start_standby()
        mport = harness.free_port()
        d = env.daemon(metrics_listen_port=mport, stats_conninfo=standby.conninfo)
        try:
            def lag():
                s, types, _ = parse_strict(scrape(mport))
                return types.get("carrel_replica_lag_seconds") and \
                    types.get("carrel_replica_lag_bytes") and s
            s = harness.wait_until(lag, 60, "the replica lag sampled")
            self.assertGreaterEqual(value(s, "carrel_replica_lag_seconds"), 0)
            self.assertLess(value(s, "carrel_replica_lag_seconds"), 600)
            self.assertIn(("carrel_db_connections",
                           frozenset({("pool", "stats"), ("state", "idle")})), s)
            # Streaming: the standby catches up with what the primary writes.
            env.new_patron(first="Lag")
            harness.wait_until(
                lambda: value(parse_strict(scrape(mport))[0], "carrel_replica_lag_bytes") == 0,
                60, "the standby caught up")

            # Cut off from the primary, the standby replays all it received and stops
            # there: the lag must grow with what the primary writes, not read 0.
            standby.psql("ALTER SYSTEM SET primary_conninfo = ''")
            standby.psql("SELECT pg_reload_conf()")
            harness.wait_until(
                lambda: standby.psql("SELECT count(*) FROM pg_stat_wal_receiver") == "0", 60,
                "the standby's walreceiver gone")
            for _ in range(3):
                env.new_patron(first="Unreplayed")

            def behind():
                s, _, _ = parse_strict(scrape(mport))
                return value(s, "carrel_replica_lag_bytes") > 0 and \
                    value(s, "carrel_replica_lag_seconds") > 0 and s
            harness.wait_until(behind, 60, "the lag seen while the standby is cut off")
        finally:
            d.stop()  # the standby: env.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
