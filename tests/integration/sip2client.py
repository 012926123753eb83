"""A small SIP2 (3M Standard Interchange Protocol 2.00) client for the tests.

Independent of carreld's codec (common/sip2.c) on purpose: it is written from the
standard, so a test that passes checks both sides against it, not against themselves.

    checksum(text)          -> 'XXXX': the AZ of text (everything up to and including "AZ")
    build(body, seq=None)   -> bytes: body + "AYnAZxxxx" + CR when seq is given, else body + CR
    parse(line)             -> Msg: .code .fixed .fields (id -> [values]) .get(id) .seq
                               .checksum_ok (None when there was no AZ) .raw
    sip_date(dt=None)       -> "YYYYMMDDZZZZHHMMSS" (ZZZZ four spaces, local time)
    SipClient(host, port, tls=False, timeout=60, context=None)
        .send(body, seq=0)  -> Msg: one message (with AY/AZ unless seq=None), one answer
        .send_raw(bytes)    .read_line() -> str (without the CR; None when closed)
        .login(user, password, location="") -> bool (94's ok flag)
        .status(seq=0)      -> Msg: 99 (SC_STATUS) and its 98
        .closed_by_server(timeout) -> bool    .close()

Fixed-field lengths per response code (from the standard) let parse() split the fixed
part from the variable fields; an unknown code keeps everything up to the first
two-letter field id in .fixed only when no length is known (best effort).
"""

import datetime
import socket
import ssl

# The length of the fixed part (after the two-digit code) of each message, SIP2 2.00.
FIXED = {
    # requests
    "93": 2, "99": 1 + 3 + 4, "23": 3 + 18, "63": 3 + 18 + 10, "11": 1 + 1 + 18 + 18,
    "09": 1 + 18 + 18, "29": 1 + 1 + 18 + 18, "65": 18, "17": 18, "37": 18 + 2 + 2 + 3,
    "35": 18, "97": 0, "01": 1 + 18, "15": 1 + 18, "19": 1 + 18, "25": 18,
    # responses
    "94": 1, "98": 1 + 1 + 1 + 1 + 1 + 1 + 3 + 3 + 18 + 4, "24": 14 + 3 + 18,
    "64": 14 + 3 + 18 + 4 * 6, "12": 1 + 1 + 1 + 1 + 18, "10": 1 + 1 + 1 + 1 + 18,
    "30": 1 + 1 + 1 + 1 + 18, "66": 1 + 4 + 4 + 18, "18": 2 + 2 + 2 + 18, "38": 1 + 18,
    "36": 1 + 18, "96": 0, "16": 1 + 1 + 18, "20": 1 + 18, "26": 14 + 3 + 18,
}


# 99: status code 0 (ok), max print width 030, protocol version 2.00.
SC_STATUS = "99" + "0" + "030" + "2.00"


def checksum(text):
    """The AZ value of text: the two's complement of the byte sum, low 16 bits, 4 hex."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return "%04X" % ((-sum(data)) & 0xFFFF)


def build(body, seq=None):
    """The bytes of one message: body (code, fixed part, fields with their pipes), then
    AY/AZ when seq is not None, then CR."""
    if seq is None:
        return (body + "\r").encode("utf-8")
    text = "%sAY%dAZ" % (body, seq)
    return (text + checksum(text) + "\r").encode("utf-8")


def sip_date(dt=None):
    """A SIP2 date: YYYYMMDD, four spaces (local time zone), HHMMSS."""
    dt = dt or datetime.datetime.now()
    return dt.strftime("%Y%m%d") + "    " + dt.strftime("%H%M%S")


class Msg:
    def __init__(self, raw, code, fixed, fields, seq, checksum_ok):
        self.raw = raw
        self.code = code
        self.fixed = fixed
        self.fields = fields
        self.seq = seq
        self.checksum_ok = checksum_ok

    def get(self, fid, default=None):
        """The first value of field fid, or default."""
        values = self.fields.get(fid)
        return values[0] if values else default

    def __repr__(self):
        return "Msg(%r)" % self.raw


def parse(line):
    """Parse one message (str or bytes, with or without its CR)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.rstrip("\r\n")
    code = line[:2]
    rest = line[2:]
    n = FIXED.get(code)
    if n is None:
        n = 0
    fixed, var = rest[:n], rest[n:]
    seq = None
    checksum_ok = None
    az = var.rfind("AZ")
    if az >= 0 and len(var) - az == 6 and (az == 0 or var[az - 1] in "|0123456789"):
        text = line[:2 + n + az + 2]
        checksum_ok = checksum(text) == var[az + 2:].upper()
        var = var[:az]
        ay = var.rfind("AY")
        if ay >= 0 and len(var) - ay == 3:
            seq = int(var[ay + 2]) if var[ay + 2].isdigit() else None
            var = var[:ay]
    fields = {}
    for part in var.split("|"):
        if len(part) >= 2:
            fields.setdefault(part[:2], []).append(part[2:])
    return Msg(line, code, fixed, fields, seq, checksum_ok)


class SipClient:
    """One connection to a SIP2 port: a message, then its answer."""

    def __init__(self, host, port, tls=False, timeout=60, context=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            ctx = context or ssl.create_default_context()
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.buffer = b""
        self.seq = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self):
        """The next CR-terminated line, without the CR (LFs around it dropped), or None
        when the server closed the connection."""
        while b"\r" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except (ssl.SSLError, ConnectionResetError, ssl.SSLZeroReturnError):
                return None
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r", 1)
        return line.strip(b"\n").decode("utf-8", errors="replace")

    def read(self):
        line = self.read_line()
        if line is None:
            raise ConnectionError("the SIP2 server closed the connection")
        return parse(line)

    def send(self, body, seq=0):
        """Send one message (AY seq + AZ unless seq is None) and return the answer.
        seq="auto": the next digit 0-9 of this connection."""
        if seq == "auto":
            seq = self.seq
            self.seq = (self.seq + 1) % 10
        self.send_raw(build(body, seq))
        return self.read()

    def login(self, user, password, location="", seq=0):
        """93 with CN/CO (and CP); True when 94 says ok."""
        m = self.send("9300CN%s|CO%s|CP%s|" % (user, password, location), seq=seq)
        return m.code == "94" and m.fixed == "1"

    def status(self, seq=0):
        """99 and its answer (98)."""
        return self.send(SC_STATUS, seq=seq)

    def closed_by_server(self, timeout=60):
        """True when the server closes the connection within timeout (lines read are dropped)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if self.read_line() is None:
                    return True
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True
