"""Test harness: real PostgreSQL, real carreld, real carrel, real TLS.

Each test module calls `Env.start()` once: a private PostgreSQL cluster in a
temporary directory (started with scripts/pg-cluster, as the unprivileged
'postgres' user when we are root; only our own account can connect to it, through
a private socket directory with peer authentication), development certificates
(scripts/mkcerts),
the seven branches, and an administrator. Daemons are started per test group
with the settings the group needs; each is stopped with SIGTERM and must exit 0
with no sanitizer report in its log.

SQL goes over database sessions kept open (Session: libpq through ctypes, no
package beyond the libpq5 that carreld links), one per thread, about a millisecond a
statement instead of the half second a psql process costs.

Tests wait for conditions, never for a fixed time (wait_until, TableLock,
AdvisoryLock below): the machine running them may be busy.

Email: SmtpRelay runs Debian's python3-aiosmtpd (smtp_relay.py) as a relay that
requires STARTTLS (the harness CA's certificate) and AUTH; relay.daemon_settings()
are the smtp_* settings of a daemon that sends through it.
"""

import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest

SOURCE = os.environ.get("CARREL_SOURCE") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("CARREL_BUILD") or os.path.join(SOURCE, "build")
CARRELD = os.path.join(BUILD, "server", "carreld")
CARREL = os.path.join(BUILD, "client", "carrel")
SCRIPTS = os.path.join(SOURCE, "scripts")

ADMIN_PASSWORD = "admin-password-for-tests"
# A workstation at every branch besides desk-dwn (which --init-admin registers): the
# certificates Env.start makes, for Env.add_workstations.
BRANCH_DESKS = {"desk-prk": "PRK", "desk-alb": "ALB", "desk-bar": "BAR", "desk-cmp": "CMP",
                "desk-dwt": "DWT", "desk-rpk": "RPK", "desk-dwn-2": "DWN"}
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")


def write_atomically(path, text):
    """Replace a file whole: tests call carrel from several threads at once, and a
    profile or password file rewritten in place can be read empty half way."""
    tmp = "%s.%d.%d.tmp" % (path, os.getpid(), threading.get_ident())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- a generic protobuf wire codec (enough to speak the envelope by hand) ----

def pb_varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_field(num, value):
    """Encode one field: int/bool -> varint, str/bytes -> length-delimited."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return pb_varint(num << 3) + pb_varint(value)
    if isinstance(value, str):
        value = value.encode()
    return pb_varint((num << 3) | 2) + pb_varint(len(value)) + value


def pb_message(*fields):
    """fields: (number, value) pairs; value may be bytes of a nested message."""
    return b"".join(pb_field(n, v) for n, v in fields if v is not None)


def pb_decode(data):
    """Decode into {field number: [values]}; nested messages stay bytes."""
    out = {}
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(data, i)
        elif wire == 2:
            n, i = _read_varint(data, i)
            v = data[i:i + n]
            i += n
        elif wire == 1:
            v = data[i:i + 8]
            i += 8
        elif wire == 5:
            v = data[i:i + 4]
            i += 4
        else:
            raise ValueError("bad wire type %d" % wire)
        out.setdefault(num, []).append(v)
    return out


def _read_varint(data, i):
    shift = 0
    n = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


# Field numbers from proto/carrel.proto.
REQ_ID, REQ_KEY = 1, 2
REQ_HELLO, REQ_LOGIN, REQ_LOGOUT, REQ_PING, REQ_WHOAMI, REQ_BRANCH_LIST = 10, 11, 12, 13, 14, 15
RESP_ID, RESP_STATUS, RESP_MESSAGE, RESP_REASON = 1, 2, 3, 4
RESP_EVENT, RESP_HELLO, RESP_PONG, RESP_BRANCHES = 9, 10, 14, 16
STATUS = {0: "ok", 1: "bad_request", 2: "unauthenticated", 3: "forbidden", 4: "not_found",
          5: "conflict", 6: "unavailable", 7: "internal", 8: "unsupported_version",
          9: "frame_too_large", 10: "refused", 11: "too_many_requests"}


class Response:
    def __init__(self, raw):
        self.fields = pb_decode(raw)
        self.id = self.fields.get(RESP_ID, [0])[0]
        self.status = STATUS.get(self.fields.get(RESP_STATUS, [0])[0], "?")
        self.message = self.fields.get(RESP_MESSAGE, [b""])[0].decode()
        self.reason = self.fields.get(RESP_REASON, [b""])[0].decode()

    def body(self, num):
        v = self.fields.get(num)
        return pb_decode(v[0]) if v else None

    def __repr__(self):
        return "Response(id=%d, %s, %r, %r)" % (self.id, self.status, self.reason, self.message)


class Wire:
    """A raw TLS client speaking the framing by hand."""

    # Timeouts here are deadlines for a busy machine, not expectations of speed.
    def __init__(self, env, port, cert=None, tls=True, context=None, timeout=60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            ctx = context or env.client_context(cert)
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.next_id = 0
        self.buffer = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data):
        self.sock.sendall(data)

    def frame(self, body_field, body=b"", rid=None, key=None):
        """(id, bytes of one Request frame), to send several in one write."""
        if rid is None:
            self.next_id += 1
            rid = self.next_id
        payload = pb_message((REQ_ID, rid), (REQ_KEY, key), (body_field, body))
        return rid, struct.pack(">I", len(payload)) + payload

    def send(self, body_field, body=b"", rid=None, key=None):
        rid, data = self.frame(body_field, body, rid, key)
        self.sock.sendall(data)
        return rid

    def recv(self):
        """Next frame as a Response, or None when the server closed the connection."""
        while True:
            if len(self.buffer) >= 4:
                (n,) = struct.unpack(">I", self.buffer[:4])
                if len(self.buffer) >= 4 + n:
                    frame = self.buffer[4:4 + n]
                    self.buffer = self.buffer[4 + n:]
                    return Response(frame)
            try:
                chunk = self.sock.recv(65536)
            except (ssl.SSLError, ConnectionResetError, ssl.SSLZeroReturnError):
                return None
            if not chunk:
                return None
            self.buffer += chunk

    def call(self, body_field, body=b"", key=None):
        rid = self.send(body_field, body, key=key)
        while True:
            r = self.recv()
            if r is None or r.id == rid or r.id == 0 and RESP_EVENT not in r.fields:
                return r

    def hello(self, version=1):
        return self.call(REQ_HELLO, pb_message((1, version), (2, "harness")))

    def login(self, workstation, user, password):
        return self.call(REQ_LOGIN, pb_message((1, workstation), (2, user), (3, password)))

    def closed_by_server(self, timeout=60):
        """True if the server closes the connection within timeout (data read is dropped)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                r = self.recv()
                if r is None:
                    self.close()
                    return True
        except (socket.timeout, TimeoutError):
            return False


class Result:
    def __init__(self, proc):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        try:
            self.json = json.loads(proc.stdout) if proc.stdout.strip() else None
        except json.JSONDecodeError:
            self.json = None

    def __repr__(self):
        return "Result(code=%d, stdout=%r, stderr=%r)" % (self.code, self.stdout[-2000:],
                                                           self.stderr[-2000:])




# ---- shared fixtures: check digits, SQL literals ----

def mod10(stem):
    """stem completed with the library's Codabar check digit (Luhn), as barcode_mod10_ok
    in sql/rules/barcodes.sql checks it."""
    total = 0
    for i, ch in enumerate(reversed(stem)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return stem + str((10 - total % 10) % 10)


def sql_literal(value):
    """value as an SQL literal: NULL, true/false, a number, or a quoted string."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


# ---- SQL sessions kept open: libpq through ctypes ----

def _load_libpq():
    lib = ctypes.CDLL(ctypes.util.find_library("pq") or "libpq.so.5")
    p, i, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    for name, res, args in [
            ("PQconnectdb", p, [s]), ("PQstatus", i, [p]), ("PQerrorMessage", s, [p]),
            ("PQfinish", None, [p]), ("PQsendQuery", i, [p, s]), ("PQgetResult", p, [p]),
            ("PQresultStatus", i, [p]), ("PQresultErrorMessage", s, [p]),
            ("PQntuples", i, [p]), ("PQnfields", i, [p]), ("PQgetvalue", s, [p, i, i]),
            ("PQgetisnull", i, [p, i, i]), ("PQcmdStatus", s, [p]), ("PQclear", None, [p]),
            ("PQtransactionStatus", i, [p]), ("PQconsumeInput", i, [p]), ("PQisBusy", i, [p]),
            ("PQresultErrorField", s, [p, i]), ("PQnotifies", p, [p]), ("PQfreemem", None, [p]),
            ("PQsetNoticeProcessor", p, [p, _NOTICE_PROCESSOR, p])]:
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


class _PGnotify(ctypes.Structure):  # libpq-fe.h's PGnotify, its public part
    _fields_ = [("relname", ctypes.c_char_p), ("be_pid", ctypes.c_int),
                ("extra", ctypes.c_char_p)]


_NOTICE_PROCESSOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)
_ignore_notices = _NOTICE_PROCESSOR(lambda arg, message: None)  # psql's went to stderr unread
_libpq = None
_CONNECTION_OK, _PGRES_COMMAND_OK, _PGRES_TUPLES_OK, _PQTRANS_IDLE = 0, 1, 2, 0
_STATUS_PRINTED_WITH_ROWS = (b"INSERT", b"UPDATE", b"DELETE", b"MERGE")


class SqlError(AssertionError):
    """A statement failed (an AssertionError, as a failed psql process was). sqlstate,
    message and detail are the error's fields: Carrel's refusals raise SQLSTATE CR4xx with
    the reason in DETAIL (sql/rules/foundation.sql)."""

    def __init__(self, text, sqlstate=None, message=None, detail=None):
        super().__init__(text)
        self.sqlstate, self.message, self.detail = sqlstate, message, detail


def _error_field(res, code):
    value = _libpq.PQresultErrorField(res, ord(code))
    return value.decode(errors="replace") if value is not None else None


class Session:
    """One database session as the superuser, kept open.

    query(sql) runs sql as `psql -At -c sql` did and returns what psql printed, stripped:
    the rows of every result (columns joined by '|', NULL as the empty string), the
    command tags psql prints (INSERT 0 1, UPDATE 2, BEGIN, ...), and raises SqlError
    when a statement fails. Several statements in one string run as psql -c ran them:
    one implicit transaction. After each call an open or failed transaction is rolled
    back, so a failure (or a forgotten COMMIT) never poisons the next call.

    Not for two threads at once: Env.psql gives each thread its own."""

    def __init__(self, conninfo):
        global _libpq
        if _libpq is None:
            _libpq = _load_libpq()
        self.conninfo = conninfo
        self.conn = None
        self.sent = None  # the SQL sent by send() and not yet finished

    def _connect(self):
        if self.conn is not None and _libpq.PQstatus(self.conn) == _CONNECTION_OK:
            return
        self.close()
        conn = _libpq.PQconnectdb(self.conninfo.encode())
        if not conn or _libpq.PQstatus(conn) != _CONNECTION_OK:
            why = _libpq.PQerrorMessage(conn).decode(errors="replace") if conn else "no memory"
            if conn:
                _libpq.PQfinish(conn)
            raise SqlError("cannot connect (%s): %s" % (self.conninfo, why))
        _libpq.PQsetNoticeProcessor(conn, _ignore_notices, None)
        self.conn = conn

    def close(self):
        if self.conn is not None:
            _libpq.PQfinish(self.conn)
            self.conn = None
            self.sent = None

    def send(self, sql):
        """Start sql and return at once; finish() waits for its results."""
        assert self.sent is None, "one statement at a time on a session"
        self._connect()
        if not _libpq.PQsendQuery(self.conn, sql.encode()):
            why = _libpq.PQerrorMessage(self.conn).decode(errors="replace")
            self.close()
            raise SqlError("could not send %r: %s" % (sql[:2000], why))
        self.sent = sql

    def busy(self):
        """True while the sent statement still runs (e.g. waits for a lock)."""
        if self.sent is None:
            return False
        if not _libpq.PQconsumeInput(self.conn):
            return False  # finish() reports the broken connection
        return bool(_libpq.PQisBusy(self.conn))

    def alive(self):
        """True while the connection is open and the server has not closed it."""
        return (self.conn is not None and bool(_libpq.PQconsumeInput(self.conn))
                and _libpq.PQstatus(self.conn) == _CONNECTION_OK)

    def notifications(self):
        """The NOTIFYs received so far (after LISTEN on this session) as (channel, payload)
        pairs, each returned once."""
        got = []
        if self.conn is None or not _libpq.PQconsumeInput(self.conn):
            return got
        while True:
            n = _libpq.PQnotifies(self.conn)
            if not n:
                return got
            note = ctypes.cast(n, ctypes.POINTER(_PGnotify)).contents
            got.append((note.relname.decode(), note.extra.decode()))
            _libpq.PQfreemem(n)

    def finish(self, keep_transaction=False):
        """Wait for the results of send()'s SQL; what psql would have printed."""
        sql, self.sent = self.sent, None
        out, error, fields = [], None, {}
        while True:
            res = _libpq.PQgetResult(self.conn)
            if not res:
                break
            try:
                st = _libpq.PQresultStatus(res)
                if st == _PGRES_TUPLES_OK:
                    out.extend(self._rows(res))
                    if _libpq.PQcmdStatus(res).startswith(_STATUS_PRINTED_WITH_ROWS):
                        out.append(_libpq.PQcmdStatus(res).decode())
                elif st == _PGRES_COMMAND_OK:
                    out.append(_libpq.PQcmdStatus(res).decode())
                elif st != 0 and error is None:  # an error (or COPY, which we never use)
                    error = _libpq.PQresultErrorMessage(res).decode(errors="replace")
                    fields = dict(sqlstate=_error_field(res, "C"),
                                  message=_error_field(res, "M"),
                                  detail=_error_field(res, "D"))
            finally:
                _libpq.PQclear(res)
        if _libpq.PQstatus(self.conn) != _CONNECTION_OK:
            error = error or _libpq.PQerrorMessage(self.conn).decode(errors="replace")
            self.close()  # the next call connects again
        elif not keep_transaction and _libpq.PQtransactionStatus(self.conn) != _PQTRANS_IDLE:
            self.query("ROLLBACK")
        if error is not None:
            raise SqlError("SQL failed: %s\n%s" % (error.strip(), sql[:3000]), **fields)
        return "\n".join(out).strip()

    @staticmethod
    def _rows(res):
        rows, cols = _libpq.PQntuples(res), _libpq.PQnfields(res)
        for r in range(rows):
            yield "|".join("" if _libpq.PQgetisnull(res, r, c)
                           else _libpq.PQgetvalue(res, r, c).decode() for c in range(cols))

    def query(self, sql, keep_transaction=False):
        """Run sql and return what `psql -At -c sql` printed (see the class comment).
        keep_transaction leaves a transaction sql opened open (for locks held by tests)."""
        self.send(sql)
        return self.finish(keep_transaction)


class Daemon:
    """A carreld. sip=True also opens the SIP2 port (plain TCP; sip_tls=True in settings for
    TLS) on a free port, self.sip_port; then start() waits for the SIP2 listener too."""

    def __init__(self, env, sip=False, **settings):
        self.env = env
        self.port = free_port()
        self.sip_port = free_port() if sip else None
        self.settings = {
            "listen_port": self.port,
            "tls_cert": env.tls("server.crt"),
            "tls_key": env.tls("server.key"),
            "tls_client_ca": env.tls("ca.crt"),
            # Raw-wire tests log in on many workstations without a certificate; the
            # production default (required) is tested on its own (test_foundation Tls).
            # A setting given as None is left out of the file: carreld's default applies.
            "tls_require_client_cert": False,
            "db_conninfo": env.conninfo,
            "password_memory_kib": 8192,
            "password_time_cost": 1,
            "db_pool_size": 4,
            "db_reconnect_ms": 200,
            "log_level": "info",
        }
        if sip:
            self.settings["sip_listen_port"] = self.sip_port
        self.settings.update(settings)
        self.sip_port = self.settings.get("sip_listen_port") or None
        self.proc = None
        self.name = "carreld-%d" % self.port
        self.config = os.path.join(env.dir, self.name + ".conf")
        self.log_path = os.path.join(env.dir, self.name + ".log")

    def write_config(self):
        with open(self.config, "w") as f:
            for k, v in self.settings.items():
                if v is None:
                    continue
                if isinstance(v, bool):
                    v = "true" if v else "false"
                f.write('%s = "%s"\n' % (k, v) if isinstance(v, str) else "%s = %s\n" % (k, v))

    def start(self, expect_listen=True):
        # The port free_port() found may be taken by another process before
        # carreld binds it (parallel suites, a bench): a daemon whose port the
        # harness chose starts again on another one.
        for _ in range(5):
            try:
                return self.start_once(expect_listen)
            except AssertionError as e:
                if ("address already in use" not in str(e)
                        or self.settings.get("listen_port") != self.port):
                    raise
                self.env.daemons.remove(self)
                self.move_to_port(free_port())
                if self.sip_port:
                    self.sip_port = self.settings["sip_listen_port"] = free_port()
        return self.start_once(expect_listen)

    def move_to_port(self, port):
        self.port = port
        self.settings["listen_port"] = port
        self.name = "carreld-%d" % port
        self.config = os.path.join(self.env.dir, self.name + ".conf")
        self.log_path = os.path.join(self.env.dir, self.name + ".log")

    def start_once(self, expect_listen):
        self.write_config()
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([CARRELD, "-c", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if self not in self.env.daemons:  # so a failing test cannot leak it
            self.env.daemons.append(self)
        if not expect_listen:
            return self
        deadline = time.time() + 120
        mark = "SIP2 listening on" if self.sip_port else "listening on"
        while time.time() < deadline:
            if mark in self.log_text():
                return self
            if self.proc.poll() is not None:
                raise AssertionError("carreld exited at start:\n" + self.log_text())
            time.sleep(0.05)
        raise AssertionError("carreld did not start:\n" + self.log_text())

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=120):
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout=120):
        """SIGTERM, wait, and check: exit 0, no sanitizer report."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            raise AssertionError("carreld did not stop within %d s" % timeout)
        self.check_clean(code)
        return code

    def check_clean(self, code, expect_code=0):
        if not self.log.closed:
            self.log.close()
        self.proc = None  # judged: env.stop() leaves it alone
        text = self.log_text()
        for mark in SANITIZER_MARKS:
            if mark in text:
                raise AssertionError("sanitizer report in carreld log:\n" + text[-6000:])
        if code != expect_code:
            raise AssertionError("carreld exited %s, expected %s:\n%s" % (code, expect_code,
                                                                         text[-4000:]))

    def wire(self, cert=None, **kw):
        return Wire(self.env, self.port, cert=cert, **kw)

    def sip(self, tls=None, timeout=60):
        """A SipClient (tests/integration/sip2client.py) on this daemon's SIP2 port; TLS
        (verified against the harness CA) when the daemon has sip_tls, or tls=True."""
        from sip2client import SipClient
        if tls is None:
            tls = bool(self.settings.get("sip_tls"))
        return SipClient("127.0.0.1", self.sip_port, tls=tls, timeout=timeout,
                         context=self.env.client_context() if tls else None)

    def logged_in_wire(self, workstation="desk-dwn", user="admin", password=ADMIN_PASSWORD):
        w = self.wire()
        r = w.hello()
        assert r.status == "ok", r
        r = w.login(workstation, user, password)
        assert r.status == "ok", r
        return w


class Standby:
    """A hot standby of env's cluster on this machine (Env.start_standby): a copy made by
    pg_basebackup -R (scripts/pg-cluster standby) streaming from the primary, with its own
    port and socket directory. stop() and start() take it down and bring it back;
    wait_replayed() waits until it has replayed everything the primary has written."""

    def __init__(self, env):
        self.env = env
        self.n = len(env.standbys) + 1
        self.pgdata = os.path.join(env.dir, "standby%d" % self.n)
        self.sockdir = tempfile.mkdtemp(prefix="csb-", dir="/tmp")
        self.pgport = free_port()
        self.conninfo = "host=%s port=%d dbname=carrel user=carrel" % (self.sockdir,
                                                                      self.pgport)
        self.admin_conninfo = ("host=%s port=%d dbname=carrel user=postgres "
                               "application_name=harness-standby" % (self.sockdir, self.pgport))
        self.running = False
        self._session = None
        env.run(os.path.join(SCRIPTS, "pg-cluster"), "standby", self.pgdata, env.pgdata,
                str(env.pgport), env.sockdir)

    def start(self, timeout=120):
        self.env.run(os.path.join(SCRIPTS, "pg-cluster"), "start", self.pgdata,
                     str(self.pgport), self.sockdir, "--fast")
        self.running = True
        self.wait_replayed(timeout)
        return self

    def stop(self):
        if self._session is not None:
            self._session.close()
            self._session = None
        self.env.run(os.path.join(SCRIPTS, "pg-cluster"), "stop", self.pgdata)
        self.running = False

    def psql(self, sql):
        """sql on the standby as the superuser (read-only, of course)."""
        if self._session is None:
            self._session = Session(self.admin_conninfo)
        return self._session.query(sql)

    def _replayed(self, target):
        try:
            return self.psql("SELECT pg_is_in_recovery() AND pg_last_wal_replay_lsn() >= '%s'"
                             % target) == "t"
        except SqlError:  # not accepting connections yet
            if self._session is not None:
                self._session.close()
            return False

    def wait_replayed(self, timeout=120):
        """Wait until the standby accepts read-only connections and has replayed the
        primary's WAL up to where it was when we asked: everything committed by then.

        The target is the primary's insert position just after a commit of our own
        (txid_current() makes the transaction write one): the end of a record the
        standby will replay. pg_current_wal_lsn() (written) would miss commits not yet
        written (the cluster commits asynchronously, --fast); an insert position taken
        when nothing happens may sit past a page header (after a segment switch, say)
        that no replayed record ends at until the next write. If the last record ends
        on a page boundary all the same, another commit each second moves it on."""
        self.env.psql("SELECT txid_current()")
        target = self.env.psql("SELECT pg_current_wal_insert_lsn()")
        nudge = [time.monotonic() + 1]

        def replayed():
            if self._replayed(target):
                return True
            if time.monotonic() >= nudge[0]:
                self.env.psql("SELECT txid_current()")
                nudge[0] = time.monotonic() + 1
            return False

        wait_until(replayed, timeout,
                   "the standby to replay the primary's WAL up to %s" % target)


class Env:
    """One PostgreSQL cluster, certificates and seed data for a test module."""

    WORKSTATIONS = ["desk-dwn", "desk-dwn-2", "desk-prk", "desk-alb", "desk-bar", "desk-cmp",
                    "desk-dwt", "desk-rpk"]

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="carrel-test-")
        os.chmod(self.dir, 0o755)
        self.pgdata = os.path.join(self.dir, "pg")
        # A short socket path: unix socket paths are limited to 107 bytes. pg-cluster
        # gives it to the cluster's owner, mode 0700: no other local account may connect.
        self.sockdir = tempfile.mkdtemp(prefix="cpg-", dir="/tmp")
        self.pgport = free_port()
        self.conninfo = "host=%s port=%d dbname=carrel user=carrel" % (self.sockdir,
                                                                      self.pgport)
        self.daemons = []
        self.standbys = []
        self.profiles = {}
        # The harness's own SQL: the superuser over the same socket, peer-authenticated
        # as psql was (scripts/pg-cluster maps the invoking account to role postgres).
        self.admin_conninfo = ("host=%s port=%d dbname=carrel user=postgres "
                               "application_name=harness" % (self.sockdir, self.pgport))
        self._local = threading.local()
        self._sessions = []
        self._sessions_lock = threading.Lock()
        self._fixture_seq = 1000

    def tls(self, name):
        return os.path.join(self.dir, "tls", name)

    def client_context(self, cert=None):
        ctx = ssl.create_default_context(cafile=self.tls("ca.crt"))
        if cert:
            ctx.load_cert_chain(self.tls(cert + ".crt"), self.tls(cert + ".key"))
        return ctx

    def run(self, *args, check=True, **kw):
        proc = subprocess.run(list(args), capture_output=True, text=True, **kw)
        if check and proc.returncode != 0:  # with what it said, to see why
            command = " ".join(map(str, args))
            raise AssertionError("%s exited %d:\n%s%s" % (command, proc.returncode,
                                                          proc.stdout[-3000:],
                                                          proc.stderr[-3000:]))
        return proc

    def start(self):
        self.run(os.path.join(SCRIPTS, "pg-cluster"), "init", self.pgdata, "--fast")
        self.start_pg()
        self.run(os.path.join(SCRIPTS, "mkcerts"), os.path.join(self.dir, "tls"),
                 *self.WORKSTATIONS)
        # Migrations, then seed data, then the first administrator.
        d = Daemon(self)
        d.write_config()
        self.run(CARRELD, "-c", d.config, "--migrate-only")
        self.psql_file(os.path.join(SOURCE, "sql", "seed", "branches.sql"))
        pw = os.path.join(self.dir, "admin.pw")
        with open(pw, "w") as f:
            f.write(ADMIN_PASSWORD + "\n")
        self.run(CARRELD, "-c", d.config, "--init-admin", "admin", "--password-file", pw,
                 "--branch", "DWN", "--workstation", "desk-dwn")
        return self

    def start_pg(self):
        self.run(os.path.join(SCRIPTS, "pg-cluster"), "start", self.pgdata, str(self.pgport),
                 self.sockdir, "--fast")

    def stop_pg(self):
        self.close_sessions()
        self.run(os.path.join(SCRIPTS, "pg-cluster"), "stop", self.pgdata)

    def start_standby(self, timeout=120):
        """A hot standby of this cluster (Standby), started and caught up; stopped by
        stop() at the latest."""
        sb = Standby(self)
        self.standbys.append(sb)
        return sb.start(timeout)

    def session(self):
        """A new Session of the harness's own (closed by close_sessions, at the latest
        by stop()): for a transaction that stays open, such as a held lock."""
        s = Session(self.admin_conninfo)
        with self._sessions_lock:
            self._sessions.append(s)
        return s

    def close_sessions(self):
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for s in sessions:
            s.close()

    def psql(self, sql):
        """Run sql as the superuser and return what `psql -At -c sql` printed (Session.query).
        Each thread has its own session, kept open: about a millisecond a call."""
        s = getattr(self._local, "session", None)
        if s is None or s not in self._sessions:
            s = self._local.session = self.session()
        return s.query(sql)

    def psql_file(self, path):
        """Run a file of SQL. Through the session (one transaction) unless it holds psql
        commands (a line starting with a backslash): then through psql itself."""
        with open(path) as f:
            text = f.read()
        if not any(line.startswith("\\") for line in text.splitlines()):
            self.psql(text)
            return
        # On stdin: we open the file, so it may sit where the cluster's owner cannot read.
        with open(path) as f:
            self.run(os.path.join(SCRIPTS, "pg-cluster"), "psql", self.pgdata,
                     str(self.pgport), self.sockdir, "-d", "carrel", "-q", "-v",
                     "ON_ERROR_STOP=1", stdin=f)

    # ---- shared fixtures: rows made directly in SQL, unique within this cluster ----

    def next_number(self):
        self._fixture_seq += 1
        return self._fixture_seq

    def _fixture_sql(self, sql, session):
        """sql on session (in its open transaction), or committed by psql()."""
        return session.query(sql, keep_transaction=True) if session else self.psql(sql)

    def new_bib(self, title=None, session=None):
        """A new bib (MARC left empty); its id."""
        title = title or "Test title %d" % self.next_number()
        out = self._fixture_sql("INSERT INTO bib (marc, title) VALUES ('\\x00', %s) RETURNING id"
                        % sql_literal(title), session)
        return int(out.splitlines()[0])

    def bib_titled(self, title):
        """The bib with this title, made the first time it is asked for; its id."""
        found = self.psql("SELECT min(id) FROM bib WHERE title = %s" % sql_literal(title))
        return int(found) if found else self.new_bib(title)

    def new_item(self, bib=None, title="Test copy", branch="DWN", item_type="book",
                 price_cents=2495, status="available", location="", session=None):
        """A new item of bib (or of the bib titled title) owned by and at branch (a code),
        with a valid barcode; its barcode. session: made in that session's transaction."""
        if bib is None:
            bib = self.bib_titled(title)
        barcode = mod10("3123490%06d" % self.next_number())
        self._fixture_sql("INSERT INTO item (barcode, bib_id, owning_branch_id, current_branch_id,"
                  " item_type, price_cents, status, location) SELECT %s, %d, b.id, b.id, %s, %d,"
                  " %s, %s FROM branch b WHERE b.code = %s"
                  % (sql_literal(barcode), bib, sql_literal(item_type), price_cents,
                     sql_literal(status), sql_literal(location), sql_literal(branch)), session)
        return barcode

    def new_patron(self, category="adult", branch="DWN", expires="2099-01-01", first="Test",
                   last="Patron", session=None, **columns):
        """A new patron of home branch branch (a code) with a valid card; the last name is
        last followed by a number. columns: more patron columns (email, desk_alert, ...).
        Its card."""
        n = self.next_number()
        card = mod10("2123490%06d" % n)
        values = dict(card=card, first_name=first, last_name="%s%d" % (last, n),
                      category=category, expires_on=expires, **columns)
        self._fixture_sql("INSERT INTO patron (%s, home_branch_id) SELECT %s, b.id FROM branch b"
                          " WHERE b.code = %s" % (", ".join(values),
                                                  ", ".join(sql_literal(v)
                                                            for v in values.values()),
                                                  sql_literal(branch)), session)
        return card

    def add_staff(self, profile, user, role="clerk", branch="DWN", password="staff-password-123",
                  name=None):
        """A staff account added by the administrator whose client profile is given."""
        pw = os.path.join(self.dir, "%s.new.pw" % user)
        with open(pw, "w") as f:
            f.write(password + "\n")
        r = self.carrel(profile, "admin", "staff", "add", user, "--name", name or user.title(),
                        "--role", role, "--branch", branch, "--new-password-file", pw)
        assert r.code == 0, r

    def add_selfcheck(self, profile, user, workstation, branch="DWN",
                      password="kiosk-password-123", options=()):
        """A self-check machine's login, made by the administrator whose profile is given,
        through the real client: a staff account of role selfcheck (carrel admin staff add
        --role selfcheck), a workstation at branch if none has that name, and its SIP2 login
        (carrel admin sip save USER --workstation WS, plus options such as "--no-pin",
        "--always-ct", "--hide", "AV,BK"). Returns the password."""
        self.add_staff(profile, user, role="selfcheck", branch=branch, password=password,
                       name="Kiosk %s" % user)
        if not self.psql("SELECT 1 FROM workstation WHERE name = %s" % sql_literal(workstation)):
            self.add_workstations(profile, {workstation: branch})
        r = self.carrel(profile, "admin", "sip", "save", user, "--workstation", workstation,
                        *options)
        assert r.code == 0, r
        return password

    def add_workstations(self, profile, workstations):
        """Workstations registered by the administrator: {name: branch code}."""
        for ws, branch in workstations.items():
            r = self.carrel(profile, "admin", "workstation", "add", ws, "--branch", branch)
            assert r.code == 0, r

    def daemon(self, sip=False, **settings):
        d = Daemon(self, sip=sip, **settings).start()
        self.daemons.append(d)
        return d

    def profile(self, daemon, workstation="desk-dwn", user="admin", password=ADMIN_PASSWORD,
                cert=True):
        """Write a client profile for (daemon, workstation, user) and return its path."""
        name = "%d-%s-%s" % (daemon.port, workstation, user)
        path = os.path.join(self.dir, name + ".profile")
        pwfile = os.path.join(self.dir, name + ".pw")
        write_atomically(pwfile, password + "\n")
        lines = [
            "host = 127.0.0.1",
            "port = %d" % daemon.port,
            "ca_file = %s" % self.tls("ca.crt"),
            "workstation = %s" % workstation,
            "user = %s" % user,
            "password_file = %s" % pwfile,
            "timeout_s = 60",
        ]
        if cert:
            lines += ["cert_file = %s" % self.tls(workstation + ".crt"),
                      "key_file = %s" % self.tls(workstation + ".key")]
        write_atomically(path, "\n".join(lines) + "\n")
        return path

    def carrel(self, profile, *args, json_out=True, input=None, timeout=120, env=None):
        argv = [CARREL, "-c", profile] + (["--json"] if json_out else []) + list(args)
        e = dict(os.environ)
        e.pop("CARREL_PASSWORD", None)
        if env:
            e.update(env)
        proc = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout,
                              env=e)
        for mark in SANITIZER_MARKS:
            if mark in proc.stderr:
                raise AssertionError("sanitizer report from carrel:\n" + proc.stderr)
        return Result(proc)

    def stop(self):
        errors = []
        for d in self.daemons:
            try:
                d.stop()
            except Exception as e:  # report all, stop all
                errors.append(e)
        for sb in self.standbys:
            try:
                sb.stop()
            except Exception as e:
                errors.append(e)
            shutil.rmtree(sb.sockdir, ignore_errors=True)
        try:
            self.stop_pg()
        finally:
            shutil.rmtree(self.sockdir, ignore_errors=True)
            if not errors and not os.environ.get("CARREL_KEEP_TEST_DIR"):
                shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise errors[0]


def run_parallel(fn, args_list):
    """Run fn(*args) in threads; return results in order, re-raising the first error."""
    results = [None] * len(args_list)
    errors = []

    def worker(i, args):
        try:
            results[i] = fn(*args)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, where python3-aiosmtpd lives
SMTP_USER = "carreld"
SMTP_PASSWORD = "relay-password-123"


def smtp_settings(env, port, tls=True, auth=True, password=SMTP_PASSWORD, **overrides):
    """carreld's smtp_* settings for a relay on 127.0.0.1:port as SmtpRelay runs it (it
    need not be up yet): STARTTLS with the harness CA, and AUTH with a password file of
    its own, mode 0600."""
    s = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "starttls" if tls else "none"}
    if tls:
        s["smtp_ca_file"] = env.tls("ca.crt")
    if tls and auth:
        pw = os.path.join(env.dir, "smtp-%d-%d.pw" % (port, env.next_number()))
        fd = os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        s.update(smtp_user=SMTP_USER, smtp_password_file=pw)
    s.update(overrides)
    return s


class SmtpRelay:
    """The test mail relay: python3-aiosmtpd in a subprocess (smtp_relay.py), storing
    what it takes in a Maildir. By default it is what a real relay should be: STARTTLS
    required (the harness CA's server certificate, for 127.0.0.1) and AUTH required
    (SMTP_USER / SMTP_PASSWORD). `daemon_settings()` is what a carreld config needs to
    send through it: `env.daemon(**relay.daemon_settings(), ...)`.

    tls=False: no STARTTLS offered (and no AUTH); implicit=True: TLS from the first
    byte (smtps) instead of STARTTLS; cert/key: another certificate; auth=False: no
    AUTH; password: the one the relay accepts."""

    def __init__(self, env, port=None, tls=True, auth=True, smtputf8=True, cert=None, key=None,
                 password=SMTP_PASSWORD, implicit=False):
        self.env = env
        self.port = port or free_port()
        self.tls, self.auth, self.implicit = tls, auth, implicit
        self.dir = os.path.join(env.dir, "maildir-%d" % self.port)
        self.count_path = os.path.join(env.dir, "%d.connections" % self.port)
        self.log = open(os.path.join(env.dir, "relay-%d.log" % self.port), "w")
        argv = [SYSTEM_PYTHON, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                            "smtp_relay.py"), str(self.port), self.dir]
        if tls:
            argv += ["--cert", cert or env.tls("server.crt"),
                     "--key", key or env.tls("server.key")] + (["--implicit"] if implicit else [])
        if tls and auth:
            relay_pw = os.path.join(env.dir, "relay-%d.pw" % self.port)
            write_atomically(relay_pw, password + "\n")
            argv += ["--user", SMTP_USER, "--password-file", relay_pw]
        if not smtputf8:
            argv.append("--no-smtputf8")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("the SMTP relay exited: see %s" % self.log.name)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                    if not implicit:
                        return s.recv(100).startswith(b"220")
                    ctx = ssl.create_default_context(cafile=env.tls("ca.crt"))
                    with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                        return t.recv(100).startswith(b"220")
            except OSError:
                return False
        wait_until(up, what="the SMTP relay on port %d" % self.port, interval=0.1)
        # The probe above was one: its line is written when aiosmtpd's factory runs, just
        # after the accept.
        wait_until(lambda: self.connections() >= 1 or self.proc.poll() is not None,
                   what="the relay to count a connection", interval=0.05)
        self.reset_connections()

    def daemon_settings(self, password=SMTP_PASSWORD, **overrides):
        """carreld settings for this relay (a password file of its own, mode 0600)."""
        if self.implicit:
            overrides.setdefault("smtp_tls", "tls")
        return smtp_settings(self.env, self.port, tls=self.tls, auth=self.auth,
                             password=password, **overrides)

    def connections(self):
        """How many TCP connections the relay accepted since the last reset."""
        try:
            with open(self.count_path) as f:
                return len(f.read().splitlines())
        except FileNotFoundError:
            return 0

    def reset_connections(self):
        with open(self.count_path, "w"):
            pass

    def messages(self, to=None):
        """Parsed messages (policy default: headers decoded) in order of arrival,
        optionally only those to one address (X-RcptTo, added by aiosmtpd)."""
        import email
        import email.policy
        import mailbox
        if not os.path.isdir(os.path.join(self.dir, "new")):
            return []
        md = mailbox.Maildir(self.dir, factory=None, create=False)

        def arrival(key):  # "seconds.M<microseconds>P<pid>Q<n>.host": not zero-padded
            seconds, rest = key.split(".", 1)
            return int(seconds), int(rest[1:rest.index("P")])
        out = []
        for key in sorted(md.keys(), key=arrival):
            msg = email.message_from_bytes(md.get_bytes(key), policy=email.policy.default)
            if to is None or msg["X-RcptTo"] == to:
                out.append(msg)
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_until(predicate, timeout=60, what="the condition", interval=0.05):
    """Call predicate() until it returns a true value, and return that value.

    Tests wait for a condition, never for a fixed time: the machine may be busy, so the
    deadline is generous and only matters when something is really wrong (AssertionError).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("waited %s s for %s" % (timeout, what))
        time.sleep(interval)


def rule_ids(session):
    """Branch code -> id, and "staff", "workstation": the administrator's and desk-dwn's ids,
    for the tests that call the SQL rules directly."""
    ids = {}
    for line in session.query("SELECT code, id FROM branch").splitlines():
        code, branch_id = line.split("|")
        ids[code] = int(branch_id)
    ids["staff"] = int(session.query("SELECT id FROM staff WHERE username = 'admin'"))
    ids["workstation"] = int(session.query("SELECT id FROM workstation WHERE name = 'desk-dwn'"))
    return ids


def start_rule_session(test_class, ids):
    """setUpModule of a test of the SQL rules: start the environment, give test_class
    (a TransactionTest) its session and fill ids (rule_ids). Returns (env, session).
    One copy for every such module."""
    env = Env()
    try:
        env.start()
        session = env.session()
        test_class.db = session
        ids.update(rule_ids(session))
    except BaseException:
        env.stop()
        raise
    return env, session


def finish_each(sessions):
    """Wait for each session's statement (sent with send): "made" for one that succeeded,
    (sqlstate, detail) for one refused. For the race tests, which all read them so."""
    results = []
    for s in sessions:
        try:
            s.finish()
            results.append("made")
        except SqlError as e:
            results.append((e.sqlstate, e.detail))
    return results


def stop_rule_session(env, session, count_sql):
    """tearDownModule of a test of the SQL rules: count_sql counts the rows a test's
    transaction should have rolled back (must be 0); the environment stops anyway."""
    try:
        left = session.query(count_sql)
        assert left == "0", "a test's rows outlived its transaction: %s" % left
    finally:
        env.stop()


class TransactionTest(unittest.TestCase):
    """One transaction per test on the session db (the module sets it before the tests
    run), rolled back whatever happens: a test sees only its own rows."""

    db = None

    def setUp(self):
        self.db.query("BEGIN", keep_transaction=True)
        self.addCleanup(self.db.query, "ROLLBACK")

    # ---- SQL inside the test's transaction

    def q(self, sql):
        return self.db.query(sql, keep_transaction=True)

    def rows(self, sql):
        """The rows of a query as dicts (by column name)."""
        return json.loads(self.q("SELECT coalesce(json_agg(r), '[]') FROM (%s) r" % sql))

    def one(self, sql):
        rows = self.rows(sql)
        self.assertEqual(len(rows), 1, rows)
        return rows[0]

    def refused(self, sql, sqlstate, reason):
        """sql must fail with sqlstate and DETAIL reason; the transaction goes on."""
        self.q("SAVEPOINT refusal")
        try:
            self.q(sql)
        except SqlError as e:
            self.q("ROLLBACK TO SAVEPOINT refusal")
            self.assertEqual((e.sqlstate, e.detail), (sqlstate, reason), str(e))
            return e
        self.fail("not refused: %s" % sql)

class HeldLock:
    """A lock held by another session until release(): what needs it waits for as long as
    the test wants, instead of for a guessed number of seconds. Use TableLock or
    AdvisoryLock, as a context manager or with release()."""

    def __init__(self, env, lock_sql, where, what, timeout=60):
        self.env = env
        self.where = where  # a condition on pg_locks l selecting this lock
        self.session = env.session()
        self.session.send("BEGIN; %s" % lock_sql)
        # Granted, or failed (finished without the lock): whichever comes first.
        wait_until(lambda: self._count("l.granted") > 0 or not self.session.busy(),
                   timeout, what)
        try:
            self.session.finish(keep_transaction=True)
        except AssertionError as e:
            self.session.close()
            raise AssertionError("could not take %s: %s" % (what, e))

    def _count(self, condition):
        return int(self.env.psql("SELECT count(*) FROM pg_locks l WHERE %s AND %s"
                                 % (self.where, condition)))

    def waiting(self):
        """How many other sessions wait for this lock."""
        return self._count("NOT l.granted")

    def wait_for_waiters(self, n=1, timeout=60):
        """Return once n sessions wait for the lock (requests have reached it)."""
        wait_until(lambda: self.waiting() >= n, timeout, "%d session(s) waiting" % n)

    def release(self):
        if self.session.conn is not None:
            try:
                self.session.query("COMMIT")
            finally:
                self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class TableLock(HeldLock):
    """ACCESS EXCLUSIVE on a table: every request that reads or writes it waits."""

    def __init__(self, env, table, timeout=60):
        where = "l.locktype = 'relation' AND l.relation = '%s'::regclass" % table
        super().__init__(env, "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE" % table,
                         where + " AND (l.mode = 'AccessExclusiveLock' OR NOT l.granted)",
                         "the lock on table %s" % table, timeout)


class AdvisoryLock(HeldLock):
    """pg_advisory_xact_lock(key) (a small key): SQL of the test's own, e.g. a trigger,
    calls pg_advisory_xact_lock(key) to wait for it."""

    def __init__(self, env, key, timeout=60):
        super().__init__(env, "SELECT pg_advisory_xact_lock(%d)" % key,
                         "l.locktype = 'advisory' AND l.classid = 0 AND l.objid = %d" % key,
                         "advisory lock %d" % key, timeout)


def main():
    unittest.main(verbosity=2)
