#!/usr/bin/env python3
"""Notices: the queue filled by holds and loans, email through a real SMTP
server (Debian's python3-aiosmtpd, run with Debian's /usr/bin/python3, by
harness.SmtpRelay: STARTTLS and AUTH required, as a real relay would),
SMS/phone export as CSV, the daily job on its timer, failure paths against a
small fake relay written here (refusals, silence, slowness), and shutdown in
the middle of a send."""

import csv
import email
import email.policy
import io
import mailbox
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import pb_message  # noqa: E402

REQ_PING, RESP_PONG = 13, 14
REQ_NOTICE_LIST, REQ_NOTICE_RUN, REQ_NOTICE_MARK_EXPORTED = 129, 130, 132
RESP_NOTICES, RESP_NOTICE_RUN = 129, 130
PASSWORD = "staff-password-123"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, where python3-aiosmtpd lives
FROM = "library@hpl.example.org"

env = None
main = None      # the daemon most tests use: timers off, email to `relay`
relay = None     # aiosmtpd



def sql_text(s):
    return "'" + s.replace("'", "''") + "'"


def new_item(branch="DWN", title="Notice test copy"):
    return env.new_item(title=title, branch=branch, price_cents=1500)


def new_patron(channel="email", first="Maria", email_addr=None, phone=None):
    """A patron who wants notices by `channel`; returns (card, address)."""
    n = env.next_number()
    if email_addr is None and channel in ("email", "none"):
        email_addr = "patron%d@example.org" % n
    if phone is None and channel in ("sms", "phone"):
        phone = "+1 860 555 %04d" % (n % 10000)
    card = env.new_patron(first=first, last="Tester", email=email_addr, phone=phone,
                          contact_channel=channel)
    return card, (email_addr if channel in ("email", "none") else phone)


def patron_id(card):
    return env.psql("SELECT id FROM patron WHERE card = '%s'" % card)


def carrel(*args, user="clara", ws="desk-dwn", daemon=None):
    pw = harness.ADMIN_PASSWORD if user == "admin" else PASSWORD
    return env.carrel(env.profile(daemon or main, ws, user, pw), *args)


def run_notices(daemon=None, user="manny"):
    r = carrel("notices", "run", user=user, daemon=daemon)
    assert r.code == 0, r
    return r.json


def notice_rows(card, columns="kind, channel, status, attempts"):
    out = env.psql("SELECT %s FROM notice WHERE patron_id = %s ORDER BY id"
                   % (columns, patron_id(card)))
    return [line.split("|") for line in out.splitlines()] if out else []


def queue_direct(card, kind="overdue_1", day="2031-01-01", title="Direct notice"):
    """A notice made by notice_queue itself (no loan): for the relay failure paths."""
    env.psql("SELECT notice_queue(%s, '%s', NULL, NULL, '%s', %s, 1)"
             % (patron_id(card), kind, day, sql_text(title)))
    return env.psql("SELECT id FROM notice WHERE patron_id = %s ORDER BY id DESC LIMIT 1"
                    % patron_id(card))


def wait_for(predicate, timeout=60, what="condition"):
    return harness.wait_until(predicate, timeout, what, interval=0.1)


# ---------------------------------------------------------------- SMTP servers

class FakeRelay:
    """A scripted SMTP server for the failure paths aiosmtpd cannot play.

    ehlo: 'ok' or 'refuse' (502, so the client falls back to HELO)
    greet: False to accept connections and never say anything
    rcpt: the reply to every RCPT TO
    data_delay: seconds to wait before answering the end of the data; None: until
        `release` is set (or the relay stops)
    data_hang: never answer the end of the data (until stopped)
    drop_after: hang up instead of answering MAIL FROM once this many messages were taken
    """

    def __init__(self, ehlo="ok", greet=True, rcpt="250 2.1.5 Ok", data_delay=0.0,
                 data_hang=False, drop_after=None):
        self.ehlo, self.greet, self.rcpt = ehlo, greet, rcpt
        self.data_delay, self.data_hang = data_delay, data_hang
        self.drop_after = drop_after
        self.commands = []      # every command line, in order, from every connection
        self.messages = []      # raw DATA contents (still dot-stuffed), with CRLFs
        self.connections = 0
        self.data_started = threading.Event()
        self.stopping = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.socks = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.socks.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            f = conn.makefile("rb")
            if not self.greet:
                self.stopping.wait()
                return
            conn.sendall(b"220 fake.example.org ESMTP\r\n")
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                with self.lock:
                    self.commands.append(cmd)
                verb = cmd.split(" ")[0].upper()
                if verb == "EHLO":
                    if self.ehlo == "ok":
                        conn.sendall(b"250-fake.example.org\r\n250-8BITMIME\r\n250 HELP\r\n")
                    else:
                        conn.sendall(b"502 5.5.2 Error: command not recognized\r\n")
                elif verb == "MAIL" and self.drop_after is not None and \
                        len(self.messages) >= self.drop_after:
                    return
                elif verb in ("HELO", "MAIL", "RSET", "NOOP"):
                    conn.sendall(b"250 2.0.0 Ok\r\n")
                elif verb == "RCPT":
                    conn.sendall(self.rcpt.encode() + b"\r\n")
                elif verb == "DATA":
                    conn.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    self.data_started.set()
                    data = b""
                    while True:
                        chunk = f.readline()
                        if not chunk or chunk == b".\r\n":
                            break
                        data += chunk
                    with self.lock:
                        self.messages.append(data)
                    if self.data_hang:
                        self.stopping.wait()
                        return
                    if self.data_delay is None:
                        self.release.wait()
                    else:
                        time.sleep(self.data_delay)
                    conn.sendall(b"250 2.0.0 Ok: queued\r\n")
                elif verb == "QUIT":
                    conn.sendall(b"221 2.0.0 Bye\r\n")
                    return
                else:
                    conn.sendall(b"500 5.5.2 Error: bad syntax\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopping.set()
        self.release.set()
        self.listener.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def notices_daemon(port, **settings):
    """A daemon of its own for the plain FakeRelay on `port` (smtp_tls none; timers off
    unless asked)."""
    base = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none", "smtp_from": FROM,
            "jobs_interval_s": 0, "notice_send_interval_s": 0}
    base.update(settings)
    return env.daemon(**base)


def drain():
    """Send every pending email through aiosmtpd, so a failure test only sees its own."""
    # A notice another test left after a failed try waits before its next one
    # (notice_claim_email); the clock moves on here instead.
    env.psql("UPDATE notice SET claimed_at = NULL WHERE status = 'pending'")
    run_notices()
    assert env.psql("SELECT count(*) FROM notice WHERE channel = 'email' AND status IN "
                    "('pending', 'sending')") == "0"


def shelf_date_text(hold_id):
    return env.psql("SELECT to_char(shelf_expires_on, 'FMDay, FMMonth FMDD') FROM hold "
                    "WHERE id = %s" % hold_id)


def place_hold(card, barcode, pickup="DWN"):
    """The hold handlers are another branch's work: make the hold row directly."""
    return env.psql("INSERT INTO hold (patron_id, bib_id, pickup_branch_id) SELECT %s, i.bib_id,"
                    " b.id FROM item i, branch b WHERE i.barcode = '%s' AND b.code = '%s'"
                    " RETURNING id" % (patron_id(card), barcode, pickup)).splitlines()[0]


# ---------------------------------------------------------------- module

def setUpModule():
    global env, main, relay
    env = harness.Env()
    try:
        env.start()
        relay = harness.SmtpRelay(env)
        main = env.daemon(smtp_from=FROM, jobs_interval_s=0, notice_send_interval_s=0,
                          **relay.daemon_settings())
        admin = env.profile(main)
        env.add_workstations(admin, {"desk-prk": "PRK"})
        for user, role, branch in [("clara", "clerk", "DWN"), ("manny", "branch_manager", "DWN"),
                                   ("libby", "librarian", "DWN"), ("pat", "clerk", "PRK")]:
            env.add_staff(admin, user, role, branch, PASSWORD)
    except BaseException:
        if relay:
            relay.stop()
        env.stop()
        raise


def tearDownModule():
    try:
        if relay:
            relay.stop()
    finally:
        env.stop()


# ---------------------------------------------------------------- email through aiosmtpd

class HoldReady(unittest.TestCase):
    def test_hold_ready_email_once(self):
        title = "Caf\u00e9 au lait \u2014 a history"
        card, addr = new_patron(first="Jos\u00e9")
        item = new_item(title=title)
        hold = place_hold(card, item)
        r = carrel("checkin", item)
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json[0]["route"], "hold_shelf")
        self.assertEqual(notice_rows(card), [["hold_ready", "email", "pending", "0"]])

        listed = carrel("notices").json["notices"]
        mine = [n for n in listed if n["card"] == card]
        self.assertEqual(len(mine), 1)
        self.assertEqual((mine[0]["kind"], mine[0]["channel"], mine[0]["address"]),
                         ("hold_ready", "email", addr))
        self.assertIn(title, mine[0]["subject"])

        out = run_notices()
        self.assertGreaterEqual(out["sent"], 1)
        self.assertEqual(out["failed"], 0)
        got = relay.messages(addr)
        self.assertEqual(len(got), 1)
        m = got[0]
        self.assertEqual(m["To"], addr)
        self.assertEqual(m["From"], FROM)
        self.assertEqual(m["X-MailFrom"], FROM)
        self.assertEqual(m["Subject"], "Your hold is ready: " + title)
        self.assertEqual(m.get_content_type(), "text/plain")
        self.assertEqual(m.get_content_charset(), "utf-8")
        self.assertEqual(m["Content-Transfer-Encoding"], "8bit")
        self.assertEqual(m["Auto-Submitted"], "auto-generated")
        self.assertTrue(m["Message-ID"].endswith("@hpl.example.org>"), m["Message-ID"])
        self.assertIsNotNone(m["Date"])
        body = m.get_content()
        self.assertIn("Dear Jos\u00e9 Tester", body)
        self.assertIn('"%s" is waiting for you at Downtown Library' % title, body)
        self.assertIn("We will keep it until %s." % shelf_date_text(hold), body)
        self.assertIn("Hartford Public Library", body)
        self.assertEqual(notice_rows(card, "status, sent_at IS NOT NULL, error IS NULL"),
                         [["sent", "t", "t"]])

        # Idempotent: the daily job again, a second scan of the copy, more runs: one email.
        r = carrel("checkin", item)
        self.assertEqual(r.code, 0, r)
        self.assertIn("Already on the hold shelf", r.json[0]["message"])
        again = run_notices()
        self.assertEqual(again["generated"], 0)
        run_notices()
        self.assertEqual(len(relay.messages(addr)), 1)
        self.assertEqual(len(notice_rows(card)), 1)
        sent = carrel("notices", "--status", "sent").json["notices"]
        self.assertIn(card, [n["card"] for n in sent])

    def test_shelf_expiry_warning_then_expiry(self):
        card, addr = new_patron()
        item = new_item(title="Left on the shelf")
        hold = place_hold(card, item)
        self.assertEqual(carrel("checkin", item).code, 0)
        run_notices()
        env.psql("UPDATE hold SET shelf_expires_on = library_today() + 1 WHERE id = %s" % hold)
        out = run_notices()
        self.assertGreaterEqual(out["generated"], 1)
        subjects = [m["Subject"] for m in relay.messages(addr)]
        self.assertEqual(subjects, ["Your hold is ready: Left on the shelf",
                                    "Last days to pick up: Left on the shelf"])
        self.assertIn("until %s." % shelf_date_text(hold), relay.messages(addr)[1].get_content())
        env.psql("UPDATE hold SET shelf_expires_on = library_today() - 1 WHERE id = %s" % hold)
        out = run_notices()
        self.assertGreaterEqual(out["expired_holds"], 1)
        self.assertEqual(env.psql("SELECT status FROM hold WHERE id = %s" % hold), "expired")
        self.assertEqual(run_notices()["expired_holds"], 0)
        self.assertEqual(len(relay.messages(addr)), 2)

    def test_transit_then_arrival(self):
        """Captured at another branch: the notice comes when it reaches the hold shelf."""
        card, addr = new_patron()
        item = new_item(branch="PRK", title="Travelling copy")
        place_hold(card, item, pickup="DWN")
        r = carrel("checkin", item, user="pat", ws="desk-prk")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json[0]["route"], "transit")
        self.assertEqual(notice_rows(card), [])
        r = carrel("checkin", item)
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json[0]["route"], "hold_shelf")
        run_notices()
        got = relay.messages(addr)
        self.assertEqual(len(got), 1)
        self.assertIn("at Downtown Library", got[0].get_content())


class LoanNotices(unittest.TestCase):
    def test_courtesy_then_overdue_each_once(self):
        card, addr = new_patron()
        item = new_item(title="Due dates explained")
        r = carrel("checkout", card, item)
        self.assertEqual(r.code, 0, r)
        loan = r.json[0]["loan_id"]
        try:
            # Due tomorrow: a courtesy reminder.
            env.psql("UPDATE loan SET due_at = now() + interval '1 day' WHERE id = %d" % loan)
            out = run_notices()
            self.assertGreaterEqual(out["generated"], 1)
            got = relay.messages(addr)
            self.assertEqual([m["Subject"] for m in got], ["Due soon: Due dates explained"])
            due_text = env.psql("SELECT to_char(library_local_date(due_at), 'FMDay, FMMonth FMDD')"
                                " FROM loan WHERE id = %d" % loan)
            self.assertIn("is due on %s." % due_text, got[0].get_content())
            run_notices()
            self.assertEqual(len(relay.messages(addr)), 1)

            # Three days late: the first overdue notice, once.
            env.psql("UPDATE loan SET due_at = now() - interval '3 days' WHERE id = %d" % loan)
            run_notices()
            run_notices()
            subjects = [m["Subject"] for m in relay.messages(addr)]
            self.assertEqual(subjects, ["Due soon: Due dates explained",
                                        "Overdue: Due dates explained"])

            # The second notice once its day comes (the setting, not the clock, moves
            # here), and as long after the first as the settings put between them.
            env.psql("UPDATE library_setting SET value = '3' WHERE name = 'notice_overdue_2_days'")
            try:
                run_notices()
                self.assertEqual(len(relay.messages(addr)), 2)  # the first was sent today
                env.psql("UPDATE notice SET created_at = created_at - interval '2 days'"
                         " WHERE loan_id = %d AND kind = 'overdue_1'" % loan)
                run_notices()
                run_notices()
            finally:
                env.psql("UPDATE library_setting SET value = '8' "
                         "WHERE name = 'notice_overdue_2_days'")
            subjects = [m["Subject"] for m in relay.messages(addr)]
            self.assertEqual(subjects[2:], ["Second notice, overdue: Due dates explained"])
            self.assertEqual([row[0] for row in notice_rows(card)],
                             ["courtesy", "overdue_1", "overdue_2"])
            self.assertEqual({row[2] for row in notice_rows(card)}, {"sent"})
        finally:
            carrel("checkin", item)

    def test_template_edits_and_dot_lines(self):
        """Text comes from the editable templates; a line of one dot survives SMTP."""
        card, addr = new_patron()
        item = new_item(title="Template test")
        old = env.psql("SELECT body FROM notice_template WHERE kind = 'courtesy'")
        env.psql("UPDATE notice_template SET body = E'Hello {name},\\n.\\n..two dots\\n"
                 ".{title} due {date}\\n' WHERE kind = 'courtesy'")
        try:
            r = carrel("checkout", card, item)
            self.assertEqual(r.code, 0, r)
            env.psql("UPDATE loan SET due_at = now() + interval '1 day' WHERE id = %d"
                     % r.json[0]["loan_id"])
            run_notices()
        finally:
            env.psql("UPDATE notice_template SET body = %s WHERE kind = 'courtesy'" % sql_text(old))
            carrel("checkin", item)
        got = relay.messages(addr)
        self.assertEqual(len(got), 1)
        name = env.psql("SELECT first_name || ' ' || last_name FROM patron WHERE card = '%s'"
                        % card)
        due = env.psql("SELECT to_char(about_date, 'FMDay, FMMonth FMDD') FROM notice"
                       " WHERE patron_id = %s" % patron_id(card))
        self.assertEqual(got[0].get_content().split("\n"),
                         ["Hello %s," % name, ".", "..two dots", ".Template test due " + due, ""])


class Channels(unittest.TestCase):
    def test_sms_and_phone_exported_once(self):
        sms_card, sms_phone = new_patron(channel="sms")
        phone_card, phone_number = new_patron(channel="phone")
        title = 'SMS, "quoted" title'
        items = [new_item(title=title), new_item(title=title)]
        for card, item in zip([sms_card, phone_card], items):
            r = carrel("checkout", card, item)
            self.assertEqual(r.code, 0, r)
            env.psql("UPDATE loan SET due_at = now() + interval '1 day' WHERE id = %d"
                     % r.json[0]["loan_id"])
        try:
            out = run_notices()
            self.assertGreaterEqual(out["generated"], 2)
            # Never sent by the daemon; waiting for export.
            self.assertEqual(notice_rows(sms_card), [["courtesy", "sms", "pending", "0"]])
            self.assertEqual(notice_rows(phone_card), [["courtesy", "phone", "pending", "0"]])
            listed = carrel("notices", "--channel", "sms").json["notices"]
            self.assertIn(sms_card, [n["card"] for n in listed])
            self.assertNotIn(phone_card, [n["card"] for n in listed])

            path = os.path.join(env.dir, "sms.csv")
            r = carrel("notices", "export", "--channel", "sms", "-o", path)
            self.assertEqual(r.code, 0, r)
            self.assertFalse(os.path.exists(path + ".partial"))
            with open(path, newline="") as f:
                text = f.read()
            self.assertTrue(text.startswith("notice_id,kind,channel,card,address,subject,body\r\n"))
            rows = list(csv.DictReader(io.StringIO(text)))
            mine = [row for row in rows if row["card"] == sms_card]
            self.assertEqual(len(mine), 1)
            self.assertEqual(mine[0]["channel"], "sms")
            self.assertEqual(mine[0]["kind"], "courtesy")
            self.assertEqual(mine[0]["address"], sms_phone)
            self.assertEqual(mine[0]["subject"], "Due soon: " + title)
            self.assertIn('"%s" is due on' % title, mine[0]["body"])
            self.assertIn("\n\n", mine[0]["body"])  # line breaks kept inside the quoted field
            self.assertNotIn(phone_card, [row["card"] for row in rows])
            self.assertEqual(notice_rows(sms_card, "status, sent_at IS NOT NULL"),
                             [["exported", "t"]])

            # Exporting again exports nothing (the header only).
            r = carrel("notices", "export", "--channel", "sms", "-o", path)
            self.assertEqual(r.code, 0, r)
            with open(path, newline="") as f:
                self.assertEqual(f.read(), "notice_id,kind,channel,card,address,subject,body\r\n")
            exported = carrel("notices", "--status", "exported").json["notices"]
            self.assertIn(sms_card, [n["card"] for n in exported])

            # Phone calls, to standard output.
            r = env.carrel(env.profile(main, "desk-dwn", "clara", PASSWORD), "notices", "export",
                           "--channel", "phone", json_out=False)
            self.assertEqual(r.code, 0, r)
            rows = list(csv.DictReader(io.StringIO(r.stdout)))
            self.assertEqual([row["address"] for row in rows if row["card"] == phone_card],
                             [phone_number])
            self.assertEqual(notice_rows(phone_card)[0][2], "exported")
        finally:
            for item in items:
                carrel("checkin", item)

    def test_export_marks_only_what_was_written(self):
        """A file that cannot be written marks nothing; a retried mark marks once."""
        card, phone = new_patron(channel="sms")
        nid = int(queue_direct(card, day="2033-05-05", title="Unwritten export"))
        r = carrel("notices", "export", "--channel", "sms", "-o",
                   os.path.join(env.dir, "no-such-dir", "sms.csv"))
        self.assertEqual(r.code, 1, r)
        self.assertEqual(notice_rows(card)[0][2], "pending")
        self.assertIn(nid, [n["id"] for n in carrel("notices", "--channel", "sms").json["notices"]])
        # The gateway's side of a lost answer: the same key twice marks once.
        w = main.logged_in_wire("desk-dwn", "clara", PASSWORD)
        try:
            key = str(uuid.uuid4())
            body = pb_message((1, nid))
            first = w.call(REQ_NOTICE_MARK_EXPORTED, body, key=key)
            again = w.call(REQ_NOTICE_MARK_EXPORTED, body, key=key)
            self.assertEqual((first.status, again.status), ("ok", "ok"))
            self.assertEqual(first.body(132), {1: [1]})  # marked = 1
            self.assertEqual(again.body(132), {1: [1]})  # the stored answer, not 0
        finally:
            w.close()
        self.assertEqual(notice_rows(card)[0][2], "exported")

    def test_channel_none_gets_nothing(self):
        card, addr = new_patron(channel="none")
        item = new_item(title="Quiet patron")
        r = carrel("checkout", card, item)
        self.assertEqual(r.code, 0, r)
        try:
            env.psql("UPDATE loan SET due_at = now() - interval '10 days' WHERE id = %d"
                     % r.json[0]["loan_id"])
            run_notices()
            self.assertEqual(notice_rows(card), [])
            self.assertEqual(relay.messages(addr), [])
        finally:
            carrel("checkin", item)

    def test_international_address(self):
        card, addr = new_patron(email_addr="jos\u00e9.garc\u00eda@example.org")
        queue_direct(card, kind="courtesy", day="2031-02-02", title="International")
        run_notices()
        got = relay.messages(addr)
        self.assertEqual(len(got), 1, [m["X-RcptTo"] for m in relay.messages()])
        self.assertEqual(notice_rows(card)[0][2], "sent")


class Requests(unittest.TestCase):
    def test_permissions(self):
        r = carrel("notices", "run", user="clara")
        self.assertEqual(r.code, 4, r)
        self.assertIn("forbidden", r.stdout + r.stderr)
        r = carrel("notices", "run", user="libby")
        self.assertEqual(r.code, 4, r)
        for user in ("manny", "admin"):
            r = carrel("notices", "run", user=user)
            self.assertEqual(r.code, 0, r)
            self.assertEqual(set(r.json), {"generated", "sent", "failed", "expired_holds"})
        self.assertEqual(carrel("notices", user="clara").code, 0)

    def test_bad_requests(self):
        w = main.logged_in_wire("desk-dwn", "clara", PASSWORD)
        try:
            for body, reason in [(pb_message((1, "bogus")), "field:status"),
                                 (pb_message((2, "fax")), "field:channel"),
                                 (pb_message((3, 0)), "field:limit"),
                                 (pb_message((3, 5000)), "field:limit"),
                                 (pb_message((2, "email"), (4, True)), "field:channel"),
                                 (pb_message((1, "sent"), (4, True)), "field:status")]:
                r = w.call(REQ_NOTICE_LIST, body)
                self.assertEqual((r.status, r.reason), ("bad_request", reason), body)
            r = w.call(REQ_NOTICE_LIST, b"")
            self.assertEqual(r.status, "ok")
            # Marking changes data: a request key, and 1 to 1000 ids.
            r = w.call(REQ_NOTICE_MARK_EXPORTED, pb_message((1, 1)))
            self.assertEqual((r.status, r.reason), ("bad_request", "request_key"))
            r = w.call(REQ_NOTICE_MARK_EXPORTED, pb_message((1, 1)), key="not-a-uuid")
            self.assertEqual((r.status, r.reason), ("bad_request", "request_key"))
            r = w.call(REQ_NOTICE_MARK_EXPORTED, b"", key=str(uuid.uuid4()))
            self.assertEqual((r.status, r.reason), ("bad_request", "field:ids"))
        finally:
            w.close()
        r = carrel("notices", "--limit", "0")
        self.assertEqual(r.code, 2, r)
        r = carrel("notices", "export")
        self.assertEqual(r.code, 2, r)
        r = carrel("notices", "export", "--channel", "email")
        self.assertEqual(r.code, 2, r)

    def test_text_output(self):
        card, _ = new_patron(channel="sms")
        queue_direct(card, kind="overdue_2", day="2031-03-03", title="Text table")
        r = env.carrel(env.profile(main, "desk-dwn", "clara", PASSWORD), "notices", "--channel",
                       "sms", json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertIn("Subject", r.stdout.splitlines()[0])
        self.assertIn(card, r.stdout)
        r = env.carrel(env.profile(main, "desk-dwn", "manny", PASSWORD), "notices", "run",
                       json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertIn("notices queued:", r.stdout)
        carrel("notices", "export", "--channel", "sms", "-o", os.path.join(env.dir, "x.csv"))


# ---------------------------------------------------------------- relay failures

class RelayDown(unittest.TestCase):
    def test_relay_down_then_back(self):
        drain()
        port = harness.free_port()
        d = env.daemon(smtp_from=FROM, jobs_interval_s=0, notice_send_interval_s=0,
                       **harness.smtp_settings(env, port))
        card, addr = new_patron()
        nid = queue_direct(card, day="2031-04-04", title="Waiting out an outage")
        out = run_notices(d)
        self.assertEqual(out["sent"], 0)
        self.assertGreaterEqual(out["failed"], 1)  # could not be sent in this run
        # Still pending, and an unreachable relay costs the notice no attempt.
        self.assertEqual(env.psql("SELECT status, attempts FROM notice WHERE id = %s" % nid),
                         "pending|0")
        run_notices(d)
        log = d.log_text()
        self.assertIn("cannot connect to the relay 127.0.0.1:%d" % port, log)
        self.assertEqual(log.count("email notice(s) wait"), 1)  # said once per outage
        back = harness.SmtpRelay(env, port=port)
        try:
            out = run_notices(d)
            self.assertEqual(out["sent"], 1)
            self.assertEqual(len(back.messages(addr)), 1)
            self.assertEqual(env.psql("SELECT status, attempts FROM notice WHERE id = %s" % nid),
                             "sent|1")
            self.assertIn("answers again", d.log_text())
        finally:
            back.stop()
        d.stop()

    def test_silent_relay_times_out(self):
        drain()
        fake = FakeRelay(greet=False)
        d = notices_daemon(fake.port, smtp_timeout_s=1)
        try:
            card, _ = new_patron()
            nid = queue_direct(card, day="2031-05-05", title="Silence")
            t0 = time.time()
            out = run_notices(d)
            # Given up after smtp_timeout_s, not at the client's 60 s; the margin is for a
            # busy machine.
            self.assertLess(time.time() - t0, 30)
            self.assertEqual(out["sent"], 0)
            self.assertEqual(env.psql("SELECT status, attempts FROM notice WHERE id = %s" % nid),
                             "pending|0")
            self.assertIn("no answer from the relay 127.0.0.1:%d within 1 s (waiting for the "
                          "greeting)" % fake.port, d.log_text())
        finally:
            d.stop()
            fake.stop()
        drain()

    def test_smtp_not_configured(self):
        d = env.daemon(jobs_interval_s=0, notice_send_interval_s=0)
        card, _ = new_patron()
        nid = queue_direct(card, day="2031-06-06", title="No relay configured")
        for _ in range(2):
            out = run_notices(d)
            self.assertEqual((out["sent"], out["failed"]), (0, 0))
        self.assertEqual(env.psql("SELECT status FROM notice WHERE id = %s" % nid), "pending")
        self.assertEqual(d.log_text().count("smtp_host is not set: email notices stay pending"),
                         1)
        d.stop()
        drain()

    def test_bad_sender_refused_at_start(self):
        d = harness.Daemon(env, smtp_host="127.0.0.1", smtp_from="not an address")
        d.start(expect_listen=False)
        self.assertEqual(d.wait(), 1)
        d.check_clean(1, expect_code=1)
        self.assertIn("smtp_from 'not an address' is not an email address", d.log_text())


class RelayRefuses(unittest.TestCase):
    def test_refused_recipient_fails_after_five_attempts(self):
        drain()
        fake = FakeRelay(rcpt="550 5.1.1 <nobody>: Recipient address rejected")
        d = notices_daemon(fake.port)
        try:
            card, addr = new_patron()
            nid = queue_direct(card, day="2031-07-07", title="Bounce")
            for attempt in range(1, 6):
                out = run_notices(d)
                self.assertEqual((out["sent"], out["failed"]), (0, 1))
                status, attempts, error = env.psql(
                    "SELECT status, attempts, error FROM notice WHERE id = %s" % nid).split("|")
                self.assertEqual(int(attempts), attempt)
                self.assertEqual(status, "pending" if attempt < 5 else "failed")
                self.assertEqual(error, "RCPT TO refused: 550 5.1.1 <nobody>: Recipient "
                                        "address rejected")
                if attempt == 1:
                    # Tried again only after a pause that grows with each try.
                    out = run_notices(d)
                    self.assertEqual((out["sent"], out["failed"]), (0, 0))
                # the pause is over
                env.psql("UPDATE notice SET claimed_at = claimed_at - interval '1 hour'"
                         " WHERE id = %s" % nid)
            out = run_notices(d)
            self.assertEqual((out["sent"], out["failed"]), (0, 0))
            self.assertEqual(env.psql("SELECT status, attempts FROM notice WHERE id = %s" % nid),
                             "failed|5")
            failed = carrel("notices", "--status", "failed").json["notices"]
            self.assertIn("550 5.1.1", [n for n in failed if n["card"] == card][0]["error"])
            self.assertIn("RCPT TO:<%s>" % addr, fake.commands)
            self.assertEqual(fake.messages, [])
        finally:
            d.stop()
            fake.stop()


class RelayBreaks(unittest.TestCase):
    def test_no_answer_after_the_data(self):
        """The relay took the data but never confirmed: one failed attempt, kept for retry."""
        drain()
        fake = FakeRelay(data_hang=True)
        d = notices_daemon(fake.port, smtp_timeout_s=1)
        try:
            card, _ = new_patron()
            nid = queue_direct(card, day="2032-01-01", title="Unconfirmed")
            out = run_notices(d)
            self.assertEqual((out["sent"], out["failed"]), (0, 1))
            status, attempts, error = env.psql(
                "SELECT status, attempts, error FROM notice WHERE id = %s" % nid).split("|")
            self.assertEqual((status, attempts), ("pending", "1"))
            self.assertIn("within 1 s (waiting for the relay to take the message)", error)
            self.assertIn("the relay did not confirm the message", error)
            self.assertEqual(len(fake.messages), 1)
        finally:
            d.stop()
            fake.stop()
        drain()

    def test_connection_lost_mid_batch(self):
        """The relay hangs up after one message: the next fails once, the rest go back."""
        drain()
        fake = FakeRelay(drop_after=1)
        d = notices_daemon(fake.port)
        try:
            ids = []
            for i in range(3):
                card, _ = new_patron()
                ids.append(queue_direct(card, day="2032-02-%02d" % (i + 1), title="Lost %d" % i))
            out = run_notices(d)
            self.assertEqual((out["sent"], out["failed"]), (1, 1))
            states = env.psql("SELECT status, attempts, coalesce(error, '') FROM notice"
                              " WHERE id IN (%s) ORDER BY id" % ",".join(ids)).splitlines()
            self.assertEqual(states[0], "sent|1|")
            self.assertEqual(states[1], "pending|1|the relay closed the connection (waiting for "
                                        "the answer to MAIL FROM)")
            self.assertEqual(states[2], "pending|0|")
        finally:
            d.stop()
            fake.stop()
        drain()


class Dialogue(unittest.TestCase):
    def test_one_connection_helo_fallback(self):
        drain()
        fake = FakeRelay(ehlo="refuse")
        d = notices_daemon(fake.port, smtp_helo="carreld.hpl.example.org")
        try:
            cards = [new_patron() for _ in range(3)]
            for i, (card, _) in enumerate(cards):
                queue_direct(card, day="2031-08-%02d" % (i + 1), title="Batch %d" % i)
            out = run_notices(d)
            self.assertEqual(out["sent"], 3)
            self.assertEqual(fake.connections, 1)
            verbs = [c.split(" ")[0].split(":")[0] for c in fake.commands]
            # libcurl needs no RSET between messages: a finished DATA ends the transaction.
            self.assertEqual(verbs, ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT",
                                     "DATA", "MAIL", "RCPT", "DATA", "QUIT"])
            self.assertEqual(fake.commands[0], "EHLO carreld.hpl.example.org")
            # No 8BITMIME offered (HELO): no BODY parameter.
            self.assertEqual(fake.commands[2], "MAIL FROM:<%s>" % FROM)
            self.assertEqual(fake.commands[3], "RCPT TO:<%s>" % cards[0][1])
            raw = fake.messages[0]
            self.assertTrue(raw.endswith(b"\r\n"))
            self.assertNotIn(b"\n", raw.replace(b"\r\n", b""))  # CRLF only
            head, _, body = raw.partition(b"\r\n\r\n")
            self.assertIn(b"Subject: Overdue: Batch 0\r\n", head + b"\r\n")
            self.assertIn(b"Content-Type: text/plain; charset=UTF-8", head)
            self.assertIn(b'"Batch 0" was due on', body)
        finally:
            d.stop()
            fake.stop()

    def test_eight_bit_text(self):
        drain()
        fake = FakeRelay()
        d = notices_daemon(fake.port)
        try:
            card, _ = new_patron()
            queue_direct(card, day="2031-09-09", title="Na\u00efve")
            self.assertEqual(run_notices(d)["sent"], 1)
            # libcurl (7.88) never adds BODY=8BITMIME; the 8-bit text goes as it is.
            self.assertEqual(fake.commands[1], "MAIL FROM:<%s>" % FROM)
            self.assertIn(b"Subject: =?UTF-8?B?", fake.messages[0])
            self.assertIn("Na\u00efve".encode(), fake.messages[0])
        finally:
            d.stop()
            fake.stop()

    def test_loop_keeps_serving_while_relay_is_slow(self):
        drain()
        fake = FakeRelay(data_delay=None)  # answers the data only when released
        d = notices_daemon(fake.port)
        try:
            card, _ = new_patron()
            queue_direct(card, day="2031-10-10", title="Slow relay")
            result = {}
            t = threading.Thread(target=lambda: result.update(run=run_notices(d)))
            t.start()
            self.assertTrue(fake.data_started.wait(60))
            w = d.wire()
            try:
                self.assertEqual(w.hello().status, "ok")
                for i in range(5):  # answered while the relay holds the send
                    r = w.call(REQ_PING, pb_message((1, "during-send-%d" % i)))
                    self.assertEqual(r.status, "ok")
                self.assertTrue(t.is_alive())  # the send was still waiting for the relay
            finally:
                w.close()
            fake.release.set()
            t.join(120)
            self.assertEqual(result["run"]["sent"], 1)
        finally:
            d.stop()
            fake.stop()


class Shutdown(unittest.TestCase):
    def test_graceful_shutdown_finishes_the_message_in_hand(self):
        drain()
        fake = FakeRelay(data_delay=None)  # answers the data only when released
        d = notices_daemon(fake.port, shutdown_timeout_s=300)
        try:
            ids = []
            for i in range(3):
                card, _ = new_patron()
                ids.append(queue_direct(card, day="2031-11-%02d" % (i + 1), title="Shut %d" % i))
            result = {}
            t = threading.Thread(target=lambda: result.update(
                run=carrel("notices", "run", user="manny", daemon=d)))
            t.start()
            self.assertTrue(fake.data_started.wait(60))
            d.signal(signal.SIGTERM)
            harness.wait_until(lambda: "SIGTERM: shutting down" in d.log_text())
            self.assertIsNone(d.proc.poll())  # waiting for the message in hand
            fake.release.set()
            self.assertEqual(d.wait(120), 0)
            t.join(120)
            d.check_clean(0)
            states = env.psql("SELECT status, attempts FROM notice WHERE id IN (%s) ORDER BY id"
                              % ",".join(ids)).splitlines()
            # The first went out; the other two are back in the queue, no attempt spent.
            self.assertEqual(states, ["sent|1", "pending|0", "pending|0"])
            self.assertEqual(len(fake.messages), 1)
            self.assertEqual(fake.commands[-1], "QUIT")
        finally:
            fake.stop()
        drain()

    def test_shutdown_timeout_drops_a_hung_relay(self):
        drain()
        fake = FakeRelay(data_hang=True)
        d = notices_daemon(fake.port, shutdown_timeout_s=1, smtp_timeout_s=600)
        try:
            card, _ = new_patron()
            nid = queue_direct(card, day="2031-12-12", title="Hung relay")
            t = threading.Thread(target=lambda: carrel("notices", "run", user="manny", daemon=d))
            t.start()
            self.assertTrue(fake.data_started.wait(60))
            t0 = time.time()
            d.signal(signal.SIGTERM)
            self.assertEqual(d.wait(120), 0)
            # After shutdown_timeout_s, not smtp_timeout_s; the margin is for a busy machine.
            self.assertLess(time.time() - t0, 60)
            t.join(120)
            d.check_clean(0)
            self.assertIn("dropping the SMTP connection", d.log_text())
            # Left 'sending'; the daily job puts it back in the queue after 10 minutes.
            self.assertEqual(env.psql("SELECT status FROM notice WHERE id = %s" % nid), "sending")
            env.psql("UPDATE notice SET claimed_at = now() - interval '11 minutes' WHERE id = %s"
                     % nid)
        finally:
            fake.stop()
        drain()
        self.assertEqual(env.psql("SELECT status FROM notice WHERE id = %s" % nid), "sent")


class SecondSignal(unittest.TestCase):
    def test_second_signal_drops_the_relay_at_once(self):
        drain()
        fake = FakeRelay(data_hang=True)
        d = notices_daemon(fake.port, shutdown_timeout_s=600, smtp_timeout_s=600)
        try:
            card, _ = new_patron()
            nid = queue_direct(card, day="2032-03-03", title="Twice told")
            t = threading.Thread(target=lambda: carrel("notices", "run", user="manny", daemon=d))
            t.start()
            self.assertTrue(fake.data_started.wait(60))
            t0 = time.time()
            d.signal(signal.SIGTERM)
            harness.wait_until(lambda: "SIGTERM: shutting down" in d.log_text())
            self.assertIsNone(d.proc.poll())  # waiting for the relay, as it should
            d.signal(signal.SIGINT)
            self.assertEqual(d.wait(120), 0)
            # At once, not after either 600 s timeout; the margin is for a busy machine.
            self.assertLess(time.time() - t0, 60)
            t.join(120)
            d.check_clean(0)
            env.psql("UPDATE notice SET claimed_at = now() - interval '11 minutes' WHERE id = %s"
                     % nid)
        finally:
            fake.stop()
        drain()


# ---------------------------------------------------------------- TLS, login, the text

def relay_daemon(relay_or_port, **settings):
    """A daemon of its own sending to a harness.SmtpRelay (or what would be one on a port),
    timers off; settings override the relay's."""
    if isinstance(relay_or_port, int):
        smtp = harness.smtp_settings(env, relay_or_port)
    else:
        smtp = relay_or_port.daemon_settings()
    smtp.update(settings)
    return env.daemon(smtp_from=FROM, jobs_interval_s=0, notice_send_interval_s=0, **smtp)


def self_signed(name):
    """A certificate for 127.0.0.1 that no CA of ours signed: (crt, key)."""
    crt, key = (os.path.join(env.dir, name + ext) for ext in (".crt", ".key"))
    env.run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1")
    return crt, key


class RelayRefusesUs(unittest.TestCase):
    """Each: the notice is not sent (and costs no attempt: the relay never saw it), one
    clear log line says why, and the daemon keeps serving."""

    def check_not_sent(self, d, relay, nid, log_line):
        out = run_notices(d)
        self.assertEqual(out["sent"], 0)
        self.assertGreaterEqual(out["failed"], 1)
        self.assertEqual(env.psql("SELECT status, attempts FROM notice WHERE id = %s" % nid),
                         "pending|0")
        self.assertEqual(relay.messages(), [])
        log = d.log_text()
        self.assertIn(log_line, log)
        self.assertEqual(log.count("email notice(s) wait"), 1)
        w = d.wire()
        try:
            self.assertEqual(w.hello().status, "ok")
            self.assertEqual(w.call(REQ_PING, pb_message((1, "still-here"))).status, "ok")
        finally:
            w.close()

    def test_wrong_password(self):
        drain()
        bad = harness.SmtpRelay(env)
        d = relay_daemon(bad, **harness.smtp_settings(env, bad.port, password="not-the-password"))
        try:
            card, _ = new_patron()
            nid = queue_direct(card, day="2032-04-01", title="Wrong password")
            self.check_not_sent(d, bad, nid, "the relay 127.0.0.1:%d refused the login of %s: "
                                "535 5.7.8 Authentication credentials invalid"
                                % (bad.port, harness.SMTP_USER))
            self.assertNotIn("not-the-password", d.log_text())
        finally:
            d.stop()
            bad.stop()
        drain()

    def test_relay_without_starttls(self):
        drain()
        plain = harness.SmtpRelay(env, tls=False)
        d = relay_daemon(plain.port)  # smtp_tls = starttls, with a login
        try:
            card, _ = new_patron()
            nid = queue_direct(card, day="2032-04-02", title="No STARTTLS")
            self.check_not_sent(d, plain, nid, "the relay 127.0.0.1:%d does not offer STARTTLS; "
                                "smtp_tls = starttls: nothing is sent in clear" % plain.port)
        finally:
            d.stop()
            plain.stop()
        drain()

    def test_untrusted_certificate(self):
        drain()
        crt, key = self_signed("untrusted-relay")
        rogue = harness.SmtpRelay(env, cert=crt, key=key)
        d = relay_daemon(rogue.port)  # smtp_ca_file: the harness CA only
        try:
            card, _ = new_patron()
            nid = queue_direct(card, day="2032-04-03", title="Untrusted")
            self.check_not_sent(d, rogue, nid, "TLS with the relay 127.0.0.1:%d failed: SSL "
                                "certificate problem: self-signed certificate" % rogue.port)
        finally:
            d.stop()
            rogue.stop()
        drain()


class RelayTls(unittest.TestCase):
    def test_implicit_tls(self):
        drain()
        smtps = harness.SmtpRelay(env, implicit=True)
        d = relay_daemon(smtps)
        try:
            card, addr = new_patron()
            queue_direct(card, day="2032-04-04", title="Implicit TLS")
            self.assertEqual(run_notices(d)["sent"], 1)
            self.assertEqual([m["Subject"] for m in smtps.messages(addr)],
                             ["Overdue: Implicit TLS"])
        finally:
            d.stop()
            smtps.stop()

    def test_utf8_and_dot_lines_arrive_intact(self):
        drain()
        card, addr = new_patron(first="Zo\u00eb")
        title = ".Caf\u00e9 \u2014 \u00fcber \u2713 \u65e5\u672c"
        queue_direct(card, day="2032-04-05", title=title)
        env.psql("UPDATE notice SET body = %s WHERE id = (SELECT max(id) FROM notice WHERE "
                 "patron_id = %s)" % (sql_text("Dear Zo\u00eb,\n.\n" + title + "\n..\n. end\n"),
                                      patron_id(card)))
        self.assertEqual(run_notices()["sent"], 1)
        got = relay.messages(addr)
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["Subject"], "Overdue: " + title)
        self.assertEqual(got[0].get_content().split("\n"),
                         ["Dear Zo\u00eb,", ".", title, "..", ". end", ""])

    def test_batch_reuses_one_connection(self):
        drain()
        relay.reset_connections()
        addrs = []
        for i in range(4):
            card, addr = new_patron()
            queue_direct(card, day="2032-04-%02d" % (10 + i), title="Reuse %d" % i)
            addrs.append(addr)
        self.assertEqual(run_notices()["sent"], 4)
        for addr in addrs:
            self.assertEqual(len(relay.messages(addr)), 1)
        # STARTTLS and AUTH once: the four went over one connection.
        self.assertEqual(relay.connections(), 1)


class Settings(unittest.TestCase):
    def start_refused(self, **settings):
        d = harness.Daemon(env, smtp_host="127.0.0.1", smtp_from=FROM, **settings)
        d.start(expect_listen=False)
        self.assertEqual(d.wait(), 1)
        d.check_clean(1, expect_code=1)
        return d.log_text()

    def test_bad_settings_refused_at_start(self):
        self.assertIn("smtp_tls 'ssl' must be starttls, tls or none",
                      self.start_refused(smtp_tls="ssl"))
        self.assertIn("smtp_user and smtp_password_file go together",
                      self.start_refused(smtp_user="carreld"))
        self.assertIn("smtp_password_file %s: No such file" % os.path.join(env.dir, "nope"),
                      self.start_refused(smtp_user="carreld",
                                         smtp_password_file=os.path.join(env.dir, "nope")))

    def test_warnings(self):
        pw = os.path.join(env.dir, "smtp-readable.pw")
        with open(pw, "w") as f:
            f.write("secret-123\n")
        os.chmod(pw, 0o644)
        d = env.daemon(smtp_host="127.0.0.1", smtp_from=FROM, smtp_tls="none",
                       smtp_user="carreld", smtp_password_file=pw, jobs_interval_s=0,
                       notice_send_interval_s=0)
        log = d.log_text()
        self.assertIn("smtp_password_file %s can be read by others (mode 644)" % pw, log)
        self.assertIn("smtp_tls = none: email notices and the relay password go to 127.0.0.1 "
                      "in clear", log)
        self.assertNotIn("secret-123", log)
        d.stop()


# ---------------------------------------------------------------- retention

class Retention(unittest.TestCase):
    def test_long_overdue_gets_one_notice_at_a_time_and_never_again(self):
        """A loan already 40 days late gets overdue_1 alone, overdue_2 a week later; once
        their text is gone (notice_keep_days) the rows still stop a second round."""
        card, addr = new_patron()
        item = new_item(title="Long overdue")
        r = carrel("checkout", card, item)
        self.assertEqual(r.code, 0, r)
        loan = r.json[0]["loan_id"]
        try:
            env.psql("UPDATE loan SET due_at = now() - interval '40 days' WHERE id = %d" % loan)
            run_notices()
            self.assertEqual([m["Subject"] for m in relay.messages(addr)],
                             ["Overdue: Long overdue"])
            env.psql("UPDATE notice SET created_at = created_at - interval '7 days'"
                     " WHERE loan_id = %d" % loan)
            run_notices()
            self.assertEqual(len(relay.messages(addr)), 2)  # now overdue_2
            env.psql("UPDATE notice SET sent_at = now() - interval '31 days' WHERE loan_id = %d"
                     % loan)
            run_notices()  # the clean-up blanks their text...
            self.assertEqual(env.psql("SELECT string_agg(kind || ':' || subject || ':' || address,"
                                      " ',' ORDER BY id) FROM notice WHERE loan_id = %d" % loan),
                             "overdue_1::,overdue_2::")
            run_notices()  # ...and nothing is queued again
            self.assertEqual(len(relay.messages(addr)), 2)
        finally:
            carrel("checkin", item)
        # The loan is over: its notices go at the next run.
        run_notices()
        self.assertEqual(env.psql("SELECT count(*) FROM notice WHERE loan_id = %d" % loan), "0")

    def test_placeholders_in_values_are_not_filled_again(self):
        card, addr = new_patron(first="{title}")
        item = new_item(title="The {date} of {branch}")
        r = carrel("checkout", card, item)
        self.assertEqual(r.code, 0, r)
        try:
            env.psql("UPDATE loan SET due_at = now() - interval '3 days' WHERE id = %d"
                     % r.json[0]["loan_id"])
            run_notices()
            got = relay.messages(addr)
            self.assertEqual([m["Subject"] for m in got], ["Overdue: The {date} of {branch}"])
            self.assertTrue(got[0].get_content().startswith("Dear {title} Tester"))
        finally:
            carrel("checkin", item)

    def test_no_courtesy_for_hourly_loans(self):
        card, addr = new_patron()
        item = new_item(title="Four-hour laptop")
        r = carrel("checkout", card, item)
        self.assertEqual(r.code, 0, r)
        try:
            env.psql("UPDATE loan SET checkout_at = now() - interval '1 hour',"
                     " due_at = now() + interval '3 hours' WHERE id = %d" % r.json[0]["loan_id"])
            run_notices()
            self.assertEqual(relay.messages(addr), [])
        finally:
            carrel("checkin", item)


# ---------------------------------------------------------------- timers

class Timers(unittest.TestCase):
    def test_jobs_run_on_their_timers(self):
        drain()
        # Made through `main`, whose timers are off: nothing goes out until `d` starts.
        card, addr = new_patron()
        item = new_item(title="Timer title")
        place_hold(card, item)
        self.assertEqual(carrel("checkin", item).code, 0)
        card2, addr2 = new_patron()
        item2 = new_item(title="Timer loan")
        r = carrel("checkout", card2, item2)
        self.assertEqual(r.code, 0, r)
        env.psql("UPDATE loan SET due_at = now() + interval '1 day' WHERE id = %d"
                 % r.json[0]["loan_id"])
        try:
            d = env.daemon(smtp_from=FROM, jobs_interval_s=3600, notice_send_interval_s=1,
                           **relay.daemon_settings())
            # The hold-ready notice goes out on the send timer, no request needed...
            wait_for(lambda: relay.messages(addr), what="the hold notice by the send timer")
            # ...and the due-soon loan is found by the daily job, 5 s after start.
            wait_for(lambda: relay.messages(addr2), timeout=30, what="the daily job's notice")
            self.assertRegex(d.log_text(), r"notices: daily job: \d+ hold\(s\) expired, [1-9]")
            d.stop()
        finally:
            carrel("checkin", item2)


if __name__ == "__main__":
    harness.main()
