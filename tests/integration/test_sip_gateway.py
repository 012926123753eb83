#!/usr/bin/env python3
"""The SIP2 gateway (server/sip.c, docs/SIP2.md) without the library messages: login (93)
and its refusals and throttle, status (99), end session (35), resend (97), what is answered
before login, the standard's 96 for bad checksums, garbage and overlong lines (and the daemon
serving everyone else meanwhile), split and pipelined input, the login deadline, TLS, the
selfcheck role refused at the Carrel protocol's Login, and the SIP2 logins' admin commands."""

import datetime
import os
import re
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import sip2client  # noqa: E402
from sip2client import build, checksum, parse, sip_date  # noqa: E402

env = None
main = None   # plain TCP, the usual login deadline
secure = None  # sip_tls, a 2 s login deadline, closed after 3 s idle
admin = None
KIOSK = "kiosk-dwn"
KIOSK_PW = None
REQ_PATRON_PIN_SET = 353
BX_ORDER = ["23", "11", "09", "01", "99", "97", "93", "63", "35", "37", "17", "19", "25", "15",
            "29", "65"]


def setUpModule():
    global env, main, secure, admin, KIOSK_PW
    env = harness.Env()
    try:
        env.start()
        # Every test here connects from 127.0.0.1: the address throttle is not under test.
        main = env.daemon(sip=True, login_throttle_after_address=1000)
        secure = env.daemon(sip=True, sip_tls=True, sip_login_timeout_s=2, sip_idle_timeout_s=3,
                            login_throttle_after_address=1000)
        admin = env.profile(main)
        KIOSK_PW = env.add_selfcheck(admin, KIOSK, "sc-dwn-1")
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


def logged_in(daemon=None, user=KIOSK, password=None):
    c = (daemon or main).sip()
    if not c.login(user, password or KIOSK_PW):
        c.close()
        raise AssertionError("SIP2 login of %s failed" % user)
    return c


def status(c, seq=0):
    return c.send("9900302.00", seq=seq)


class Login(unittest.TestCase):
    def test_login_opens_the_session_and_records_it(self):
        with main.sip() as c:
            m = c.send("9300CN%s|CO%s|CPsomewhere|" % (KIOSK, KIOSK_PW), seq=3)
            self.assertEqual((m.code, m.fixed), ("94", "1"), m)
            self.assertEqual(m.seq, 3)
            self.assertIs(m.checksum_ok, True)
        harness.wait_until(lambda: env.psql(
            "SELECT l.last_login_at IS NOT NULL FROM sip_login l JOIN staff s ON s.id = l.staff_id"
            " WHERE s.username = '%s'" % KIOSK) == "t", what="last_login_at")
        harness.wait_until(lambda: env.psql(
            "SELECT success, workstation FROM login_event WHERE username = '%s'"
            " AND reason = 'ok_sip2' LIMIT 1" % KIOSK) == "t|sc-dwn-1", what="login_event")

    def refused(self, user, password, reason):
        with main.sip() as c:
            self.assertFalse(c.login(user, password))
            # still usable: status answers, before login
            self.assertEqual(status(c).code, "98")
        harness.wait_until(lambda: env.psql(
            "SELECT count(*) FROM login_event WHERE username = '%s' AND reason = '%s'"
            % (user, reason)) != "0", what="login_event %s" % reason)

    def test_wrong_password_is_940(self):
        user = "kiosk-wrongpw"
        env.add_selfcheck(admin, user, "sc-wrongpw")
        self.refused(user, "not-the-password", "wrong_password")

    def test_unknown_user_is_940(self):
        self.refused("nobody-here", "whatever-password", "unknown_user")

    def test_disabled_account_is_940(self):
        user = "kiosk-disabled"
        pw = env.add_selfcheck(admin, user, "sc-disabled")
        self.assertEqual(env.carrel(admin, "admin", "staff", "disable", user).code, 0)
        self.refused(user, pw, "disabled")

    def test_staff_of_another_role_is_940(self):
        env.add_staff(admin, "clerk-sip", role="clerk", password="clerk-password-123")
        self.refused("clerk-sip", "clerk-password-123", "not_selfcheck")

    def test_selfcheck_without_sip_login_is_940(self):
        env.add_staff(admin, "kiosk-nologin", role="selfcheck", password="kiosk-password-123")
        self.refused("kiosk-nologin", "kiosk-password-123", "sip_login")

    def test_login_without_password_is_940(self):
        with main.sip() as c:
            m = c.send("9300CN%s|" % KIOSK)
            self.assertEqual((m.code, m.fixed), ("94", "0"))

    def test_failed_login_again_logs_the_connection_out(self):
        with logged_in() as c:
            self.assertFalse(c.login(KIOSK, "wrong-password-here"))
            m = c.send("11YN%s%sAOx|AAcard|ABitem|" % (sip_date(), " " * 18))
            self.assertEqual((m.code, m.fixed[0]), ("12", "0"), m)
        # the failure counted; a right password clears it for the next tests
        with logged_in():
            pass

    def test_throttle_after_failed_logins(self):
        user = "kiosk-throttled"
        pw = env.add_selfcheck(admin, user, "sc-throttled")
        with main.sip() as c:
            for _ in range(3):  # login_throttle_after
                self.assertFalse(c.login(user, "guess-password"))
            self.assertFalse(c.login(user, pw), "the right password is refused while throttled")
        harness.wait_until(lambda: "SIP2 login for %s from" % user in main.log_text()
                           and "throttled" in main.log_text(), what="the throttle's log line")


class Status(unittest.TestCase):
    def test_status_after_login(self):
        with logged_in() as c:
            m = status(c, seq=5)
            self.assertEqual(m.code, "98")
            self.assertEqual(m.fixed[:12], "YYYYNN030003", m)
            self.assertEqual(len(m.fixed), 34)
            self.assertEqual(m.fixed[30:], "2.00")
            self.assertEqual(m.get("AO"), "DWN")
            self.assertEqual(m.get("AM"), env.psql("SELECT name FROM branch WHERE code = 'DWN'"))
            self.assertEqual(m.get("AN"), "sc-dwn-1")
            bx = m.get("BX")
            self.assertEqual(len(bx), 16, bx)
            for code in ("99", "97", "93", "35"):
                self.assertEqual(bx[BX_ORDER.index(code)], "Y", bx)
            self.assertEqual(bx[BX_ORDER.index("25")], "N", bx)
            self.assertEqual((m.seq, m.checksum_ok), (5, True))

    def test_dates_are_in_the_library_time_zone(self):
        # The daemon runs in whatever zone its host has; answers are dated in the
        # library's (setting timezone), as its due dates are.
        with logged_in() as c:
            m = status(c)
            lib = env.psql("SELECT to_char(now() AT TIME ZONE library_setting_text('timezone'), "
                           "'YYYYMMDD HH24MISS')")
            got = m.fixed[12:20] + " " + m.fixed[24:30]
            fmt = "%Y%m%d %H%M%S"
            delta = abs((datetime.datetime.strptime(got, fmt)
                         - datetime.datetime.strptime(lib, fmt)).total_seconds())
            self.assertLess(delta, 600, (got, lib))
            self.assertEqual(m.fixed[20:24], "    ")

    def test_institution_option(self):
        user = "kiosk-inst"
        pw = env.add_selfcheck(admin, user, "sc-inst", options=("--institution", "CARREL"))
        with logged_in(user=user, password=pw) as c:
            self.assertEqual(status(c).get("AO"), "CARREL")

    def test_end_session_keeps_the_connection(self):
        with logged_in() as c:
            m = c.send("35%sAODWN|AA21234000|" % sip_date())
            self.assertEqual((m.code, m.fixed[0], m.get("AA")), ("36", "Y", "21234000"), m)
            self.assertEqual(status(c).code, "98")

    def test_unsupported_message_is_96(self):
        # A well-formed message no handler takes (here a login response sent to the
        # ACS): 96, and the connection goes on.
        with logged_in() as c:
            m = c.send("941")
            self.assertEqual(m.code, "96")
            self.assertEqual(status(c).code, "98")


class BeforeLogin(unittest.TestCase):
    def test_status_and_end_session_are_answered(self):
        with main.sip() as c:
            m = status(c)
            self.assertEqual((m.code, m.fixed[:6]), ("98", "YYYYNN"))
            self.assertEqual(len(m.get("BX")), 16)
            self.assertIsNone(m.get("AN"))
            self.assertEqual(c.send("35%sAA1|" % sip_date()).code, "36")

    def test_circulation_is_answered_not_ok_and_nothing_is_done(self):
        with main.sip() as c:
            m = c.send("11YN%s%sAODWN|AAcard|ABitem|AC|" % (sip_date(), " " * 18))
            self.assertEqual((m.code, m.fixed[0]), ("12", "0"), m)
            self.assertEqual((m.get("AA"), m.get("AB")), ("card", "item"))
            self.assertTrue(m.get("AF"))
            m = c.send("09N%s%sAPx|AODWN|ABitem|" % (sip_date(), sip_date()))
            self.assertEqual((m.code, m.fixed[0]), ("10", "0"), m)
            m = c.send("37%s0100USDBV1.00|AODWN|AAcard|" % sip_date())
            self.assertEqual((m.code, m.fixed[0]), ("38", "N"), m)
            # still open, and the login works afterwards
            self.assertTrue(c.login(KIOSK, KIOSK_PW))

    def test_answers_before_login_have_the_required_fields(self):
        """12/30: AO AA AB AJ AH; 10: AO AB AQ; 38: AO AA; 66: AO (empty when unknown)."""
        with main.sip() as c:
            m = c.send("11YN%s%sAODWN|AAcard|ABitem|" % (sip_date(), " " * 18))
            self.assertEqual(list(m.fields)[:5], ["AO", "AA", "AB", "AJ", "AH"], m)
            self.assertEqual((m.get("AO"), m.get("AJ"), m.get("AH")), ("DWN", "", ""))
            m = c.send("29YN%s%sAODWN|AAcard|ABitem|" % (sip_date(), " " * 18))
            self.assertEqual(list(m.fields)[:5], ["AO", "AA", "AB", "AJ", "AH"], m)
            m = c.send("09N%s%sAPx|AODWN|ABitem|" % (sip_date(), sip_date()))
            self.assertEqual(list(m.fields)[:3], ["AO", "AB", "AQ"], m)
            self.assertEqual(m.get("AQ"), "")
            m = c.send("37%s0100USDBV1.00|AAcard|" % sip_date())  # no AO: sent empty
            self.assertEqual(list(m.fields)[:2], ["AO", "AA"], m)
            self.assertEqual((m.get("AO"), m.get("AA")), ("", "card"))
            m = c.send("65%sAODWN|AAcard|" % sip_date())
            self.assertEqual((m.code, list(m.fields)[0]), ("66", "AO"), m)

    def test_patron_information_before_login_closes(self):
        with main.sip() as c:
            c.send_raw(build("63001%s          AODWN|AAcard|" % sip_date(), 0))
            self.assertTrue(c.closed_by_server(60))


class Resend(unittest.TestCase):
    def test_97_repeats_the_last_answer_byte_for_byte(self):
        with logged_in() as c:
            first = status(c, seq=7)
            again = c.send("97", seq=None)
            self.assertEqual(again.raw, first.raw)
            again = c.send("97AZ" + checksum("97AZ"), seq=None)
            self.assertEqual(again.raw, first.raw)

    def test_97_after_end_session(self):
        with logged_in() as c:
            end = c.send("35%sAA42|" % sip_date(), seq=2)
            self.assertEqual(c.send("97", seq=None).raw, end.raw)

    def test_97_with_no_last_answer_is_96(self):
        with main.sip() as c:
            self.assertEqual(c.send("97", seq=None).code, "96")


class BadInput(unittest.TestCase):
    def test_bad_checksum_is_96_and_the_next_message_works(self):
        with logged_in() as c:
            line = build("9900302.00", 1).decode()
            good = line[-5:-1]
            bad = "%04X" % ((int(good, 16) + 1) & 0xFFFF)
            c.send_raw((line[:-5] + bad + "\r").encode())
            m = parse(c.read_line())
            self.assertEqual((m.code, m.seq, m.checksum_ok), ("96", 1, True))
            self.assertEqual(status(c, seq=2).code, "98")

    def test_lowercase_checksum_is_accepted(self):
        with logged_in() as c:
            line = build("9900302.00", 1).decode()
            c.send_raw((line[:-5] + line[-5:-1].lower() + "\r").encode())
            self.assertEqual(parse(c.read_line()).code, "98")

    def test_garbage_and_overlong_lines_get_96_and_everyone_is_still_served(self):
        with logged_in() as c:
            for junk in (b"\x00\xff\xfe\x01garbage", b"hello", b"9", b"99\x07x",
                         b"\xc3\x28 not utf-8", b"X" * (5000), b"11" + b"Y" * 9000):
                c.send_raw(junk + b"\r")
                m = parse(c.read_line())
                self.assertEqual(m.code, "96", junk[:20])
            self.assertEqual(status(c).code, "98")
            with logged_in() as other:
                self.assertEqual(status(other).code, "98")
            w = main.logged_in_wire()
            self.assertEqual(w.call(harness.REQ_WHOAMI).status, "ok")
            w.close()

    def test_empty_lines_are_ignored(self):
        with logged_in() as c:
            c.send_raw(b"\r\n\r   \r")
            self.assertEqual(status(c).code, "98")

    def test_lf_around_the_line_is_tolerated(self):
        with logged_in() as c:
            c.send_raw(b"\n" + build("9900302.00", 4) + b"\n")
            m = parse(c.read_line())
            self.assertEqual((m.code, m.seq), ("98", 4))

    def test_many_bad_lines_in_a_row_close_the_connection(self):
        with logged_in() as c:
            c.send_raw(b"garbage\r" * 25)
            answers = 0
            while c.read_line() is not None:
                answers += 1
            self.assertEqual(answers, 21)  # 96 for each, up to the 21st, then goodbye


class Framing(unittest.TestCase):
    def test_a_message_split_over_many_writes(self):
        with logged_in() as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for b in build("9900302.00", 6):
                c.send_raw(bytes([b]))
            m = parse(c.read_line())
            self.assertEqual((m.code, m.seq), ("98", 6))

    def test_several_messages_in_one_write_are_answered_in_order(self):
        with logged_in() as c:
            c.send_raw(build("9900302.00", 1) + build("35%sAAfirst|" % sip_date(), 2)
                       + build("97") + build("35%sAAsecond|" % sip_date(), 3)
                       + build("9900302.00", 4))
            got = [parse(c.read_line()) for _ in range(5)]
            self.assertEqual([m.code for m in got], ["98", "36", "36", "36", "98"])
            self.assertEqual(got[2].raw, got[1].raw)
            self.assertEqual([got[1].get("AA"), got[3].get("AA")], ["first", "second"])
            self.assertEqual([m.seq for m in got], [1, 2, 2, 3, 4])

    def test_login_and_status_in_one_write(self):
        with main.sip() as c:
            c.send_raw(build("9300CN%s|CO%s|" % (KIOSK, KIOSK_PW), 0) + build("9900302.00", 1))
            login, st = parse(c.read_line()), parse(c.read_line())
            self.assertEqual((login.code, login.fixed), ("94", "1"))
            self.assertEqual((st.code, st.get("AN")), ("98", "sc-dwn-1"))


class Lifetime(unittest.TestCase):
    def test_a_kiosk_gone_before_its_login_is_answered(self):
        """The lookup and the Argon2 check answer a closed connection: dropped, recorded."""
        user = "kiosk-gone"
        pw = env.add_selfcheck(admin, user, "sc-gone")
        for _ in range(5):
            c = main.sip()
            c.send_raw(build("9300CN%s|CO%s|" % (user, pw), 0) + build(sip2client.SC_STATUS, 1))
            c.close()
        harness.wait_until(lambda: env.psql(
            "SELECT count(*) FROM login_event WHERE username = '%s'" % user) == "5",
            what="the five logins recorded")
        with logged_in(user=user, password=pw) as c:
            self.assertEqual(c.status().code, "98")

    def test_kiosks_sharing_a_login_all_get_in_at_once(self):
        """More logins at once than login_pending_per_user (3): the rest wait, none is
        refused as if throttled."""
        user = "kiosk-shared"
        pw = env.add_selfcheck(admin, user, "sc-shared")
        clients = [main.sip() for _ in range(8)]
        try:
            for c in clients:
                c.send_raw(build("9300CN%s|CO%s|" % (user, pw), 0))
            answers = [parse(c.read_line()) for c in clients]
            self.assertEqual([(m.code, m.fixed) for m in answers], [("94", "1")] * 8)
        finally:
            for c in clients:
                c.close()

    def test_shutdown_closes_kiosks_and_exits_cleanly(self):
        d = env.daemon(sip=True)
        c = logged_in(d)
        idle = d.sip()
        d.stop()  # exit 0, no sanitizer report
        self.assertTrue(c.closed_by_server(60))
        self.assertTrue(idle.closed_by_server(60))
        c.close()
        idle.close()


class InFlight(unittest.TestCase):
    """A kiosk that goes away while its message is being answered: the database goes on
    with it, the answer is dropped, the daemon stays up and exits clean (ASan)."""

    def test_kiosk_gone_with_a_checkout_held_in_the_database_and_a_pin_check(self):
        d = env.daemon(sip=True, login_throttle_after_address=1000)
        open_user, pin_user = "kiosk-gone-open", "kiosk-gone-pin"
        open_pw = env.add_selfcheck(admin, open_user, "sc-gone-open", options=("--no-pin",))
        pin_pw = env.add_selfcheck(admin, pin_user, "sc-gone-pin")
        card = env.new_patron()
        slow = env.new_item(title="Slow SIP copy")
        quick = env.new_item()
        w = main.logged_in_wire()
        try:
            r = w.call(REQ_PATRON_PIN_SET, harness.pb_message((1, card), (2, "4321")))
            self.assertEqual(r.status, "ok", r)
        finally:
            w.close()

        def loans(barcode):
            return env.psql("SELECT count(*) FROM loan l JOIN item i ON i.id = l.item_id"
                            " WHERE i.barcode = '%s'" % barcode)

        # A checkout of this title waits for an advisory lock the test holds.
        env.psql("CREATE FUNCTION sip_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                 "IF (SELECT b.title FROM item i JOIN bib b ON b.id = i.bib_id "
                 "WHERE i.id = NEW.item_id) = 'Slow SIP copy' THEN "
                 "PERFORM pg_advisory_xact_lock(8402); END IF; "
                 "RETURN NEW; END $$; CREATE TRIGGER sip_slow BEFORE INSERT ON loan "
                 "FOR EACH ROW EXECUTE FUNCTION sip_slow()")
        self.addCleanup(env.psql, "DROP TRIGGER sip_slow ON loan; DROP FUNCTION sip_slow()")
        lock = harness.AdvisoryLock(env, 8402)
        self.addCleanup(lock.release)
        c = logged_in(d, user=open_user, password=open_pw)
        c.send_raw(build("11YN%s%sAODWN|AA%s|AB%s|AC|" % (sip_date(), " " * 18, card, slow), 1))
        lock.wait_for_waiters(1)
        c.close()  # gone while the checkout waits in the database
        # the PIN check (Argon2) starts, and the kiosk is gone before it ends
        p = logged_in(d, user=pin_user, password=pin_pw)
        p.send_raw(build("11YN%s%sAODWN|AA%s|AB%s|AC|AD4321|" % (sip_date(), " " * 18, card,
                                                                 quick), 2))
        p.close()
        lock.release()
        harness.wait_until(lambda: loans(slow) == "1", what="the held checkout to commit")
        harness.wait_until(lambda: loans(quick) == "1", what="the checkout after the PIN")
        with logged_in(d, user=open_user, password=open_pw) as again:  # still serving
            self.assertEqual(status(again).code, "98")
        d.stop()  # exit 0, no sanitizer report
        self.assertEqual((loans(slow), loans(quick)), ("1", "1"))


class Sessions(unittest.TestCase):
    """A kiosk's session ends when its account or its SIP2 login changes (sip_end_sessions)."""

    def test_disabling_the_account_closes_its_kiosks(self):
        user = "kiosk-disable-live"
        pw = env.add_selfcheck(admin, user, "sc-disable-live")
        c = logged_in(user=user, password=pw)
        other = logged_in()  # another login's kiosk stays
        try:
            self.assertEqual(env.carrel(admin, "admin", "staff", "disable", user).code, 0)
            self.assertTrue(c.closed_by_server(60))
            with main.sip() as again:
                self.assertFalse(again.login(user, pw))
            self.assertEqual(status(other).code, "98")
        finally:
            c.close()
            other.close()
        harness.wait_until(lambda: "ending the SIP2 session of %s" % user in main.log_text(),
                           what="the session end's log line")

    def test_removing_the_sip_login_closes_its_kiosks(self):
        user = "kiosk-remove-live"
        pw = env.add_selfcheck(admin, user, "sc-remove-live")
        with logged_in(user=user, password=pw) as c:
            self.assertEqual(env.carrel(admin, "admin", "sip", "remove", user).code, 0)
            self.assertTrue(c.closed_by_server(60))
        with main.sip() as again:
            self.assertFalse(again.login(user, pw))

    def test_changing_the_sip_login_closes_its_kiosks(self):
        """Options are copied at 93: the kiosk logs in again and gets the new ones."""
        user = "kiosk-change-live"
        pw = env.add_selfcheck(admin, user, "sc-change-live")
        with logged_in(user=user, password=pw) as c:
            self.assertEqual(env.carrel(admin, "admin", "sip", "save", user, "--institution",
                                        "NEWINST").code, 0)
            self.assertTrue(c.closed_by_server(60))
        with logged_in(user=user, password=pw) as c:
            self.assertEqual(status(c).get("AO"), "NEWINST")


class Limits(unittest.TestCase):
    def test_a_kiosk_that_floods_and_never_reads(self):
        """97 after a long answer, sent thousands of times in one write by a kiosk that
        never reads: the daemon stops taking lines once write_high_water is queued, drops
        the kiosk as stuck, and serves everyone else meanwhile."""
        high_water = 65536
        d = env.daemon(sip=True, write_high_water=high_water, login_throttle_after_address=1000)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
        sock.settimeout(60)
        sock.connect(("127.0.0.1", d.sip_port))
        c = sip2client.SipClient.__new__(sip2client.SipClient)
        c.sock, c.buffer, c.seq = sock, b"", 0
        try:
            self.assertTrue(c.login(KIOSK, KIOSK_PW))
            long_answer = c.send("35%sAA%s|" % (sip_date(), "x" * 255), seq=1)
            self.assertEqual(long_answer.code, "36")
            sock.settimeout(5)
            flood = b"97\r" * 65536
            sent = 0
            try:
                while sent < 4 * len(flood):  # until the daemon stops reading, or 768 KB
                    sent += sock.send(flood)
            except (socket.timeout, TimeoutError):
                pass
            self.assertGreater(sent, 65536)
            with logged_in(d) as other:  # everyone else is served meanwhile
                self.assertEqual(status(other).code, "98")
            harness.wait_until(lambda: "is not reading what we send" in d.log_text(),
                               what="the flooding kiosk dropped as stuck")
            waiting = int(re.search(r"is not reading what we send \((\d+) bytes waiting\)",
                                    d.log_text()).group(1))
            # at most the high water mark and one answer, not an answer per line read
            self.assertLessEqual(waiting, high_water + 4097)
            self.assertTrue(c.closed_by_server(60))
            with logged_in(d) as other:
                self.assertEqual(status(other).code, "98")
        finally:
            c.close()
        d.stop()  # exit 0, no sanitizer report

    def test_one_address_cannot_take_every_slot(self):
        d = env.daemon(sip=True, max_connections_per_address=3,
                       login_throttle_after_address=1000)
        kiosks = [d.sip() for _ in range(3)]
        try:
            for k in kiosks:
                self.assertEqual(status(k).code, "98")
            with d.sip() as fourth:
                self.assertTrue(fourth.closed_by_server(60))
            harness.wait_until(lambda: "connections from one address is the limit"
                               in d.log_text(), what="the per-address refusal")
            kiosks.pop().close()

            def served():
                try:
                    with d.sip() as k:
                        return status(k).code == "98"
                except (ConnectionError, OSError):
                    return False
            harness.wait_until(served, what="a slot free again")
        finally:
            for k in kiosks:
                k.close()
        d.stop()


class Tls(unittest.TestCase):
    def test_login_and_status_over_tls(self):
        with logged_in(secure) as c:
            m = status(c)
            self.assertEqual((m.code, m.get("AN")), ("98", "sc-dwn-1"))

    def test_login_deadline_closes(self):
        with secure.sip() as c:
            self.assertTrue(c.closed_by_server(60))
        harness.wait_until(lambda: "no login within 2 s" in secure.log_text(),
                           what="the deadline's log line")

    def test_idle_timeout_closes_a_logged_in_connection(self):
        with logged_in(secure) as c:
            self.assertTrue(c.closed_by_server(60))
        harness.wait_until(lambda: "closing idle SIP2 connection" in secure.log_text(),
                           what="the idle timeout's log line")

    def test_plain_tcp_on_the_tls_port_is_refused(self):
        with secure.sip(tls=False) as c:
            c.send_raw(build("9900302.00", 0))
            self.assertTrue(c.closed_by_server(60))


class CarrelLogin(unittest.TestCase):
    def test_selfcheck_account_cannot_log_in_at_a_desk(self):
        w = main.wire()
        self.assertEqual(w.hello().status, "ok")
        r = w.login("desk-dwn", KIOSK, KIOSK_PW)
        self.assertEqual((r.status, r.reason), ("forbidden", "selfcheck_account"), r)
        w.close()

    def test_wrong_password_says_nothing_about_the_role(self):
        w = main.wire()
        self.assertEqual(w.hello().status, "ok")
        r = w.login("desk-dwn", KIOSK, "not-the-kiosk-password")
        self.assertEqual((r.status, r.reason), ("unauthenticated", "bad_credentials"), r)
        w.close()
        with logged_in():  # clear the user's failure count for the other tests
            pass


class AdminCommands(unittest.TestCase):
    def test_save_list_change_remove(self):
        user = "kiosk-admin"
        pw = env.add_selfcheck(admin, user, "sc-admin",
                               options=("--always-ct", "--hide", "AV,BK", "--no-pin"))
        r = env.carrel(admin, "admin", "sip", "list")
        self.assertEqual(r.code, 0, r)
        row = [x for x in r.json["logins"] if x["username"] == user][0]
        self.assertEqual((row["workstation"], row["branch_code"], row["hide_fields"]),
                         ("sc-admin", "DWN", "AV,BK"))
        self.assertIs(row["always_send_ct"], True)
        self.assertIs(row["pin_required"], False)
        self.assertIs(row.get("cv_00_on_success", False), False)
        version = row["version"]
        # a change keeps what it does not name
        r = env.carrel(admin, "admin", "sip", "save", user, "--cv-00", "--held-checkin-blocked")
        self.assertEqual(r.code, 0, r)
        self.assertIs(r.json["always_send_ct"], True)
        self.assertIs(r.json["cv_00_on_success"], True)
        self.assertIs(r.json["held_checkin_blocked"], True)
        self.assertEqual(r.json["version"], version + 1)
        self.assertEqual(env.psql("SELECT count(*) FROM admin_audit WHERE action = "
                                  "'sip_login_save' AND target = '%s'" % user), "2")
        r = env.carrel(admin, "admin", "sip", "save", user, "--hide", "A;B")
        self.assertNotEqual(r.code, 0, r)
        self.assertEqual(r.json["reason"], "field:hide_fields", r)
        # removed: the login is refused, the account stays
        r = env.carrel(admin, "admin", "sip", "remove", user)
        self.assertEqual((r.code, r.json["username"]), (0, user), r)
        with main.sip() as c:
            self.assertFalse(c.login(user, pw))
        self.assertEqual(env.psql("SELECT count(*) FROM staff WHERE username = '%s'" % user), "1")
        r = env.carrel(admin, "admin", "sip", "remove", user)
        self.assertEqual((r.code, r.json["status"], r.json["reason"]),
                         (r.code, "not_found", "sip_login"), r)
        self.assertNotEqual(r.code, 0)

    def test_only_selfcheck_accounts(self):
        env.add_staff(admin, "clerk-nosip", role="clerk")
        r = env.carrel(admin, "admin", "sip", "save", "clerk-nosip", "--workstation", "desk-dwn")
        self.assertNotEqual(r.code, 0)
        self.assertEqual((r.json["status"], r.json["reason"]), ("conflict", "not_selfcheck"), r)

    def test_unknown_staff_and_workstation(self):
        r = env.carrel(admin, "admin", "sip", "save", "no-such-user", "--workstation", "desk-dwn")
        self.assertEqual((r.json["status"], r.json["reason"]), ("not_found", "staff"), r)
        env.add_staff(admin, "kiosk-nows", role="selfcheck")
        r = env.carrel(admin, "admin", "sip", "save", "kiosk-nows", "--workstation", "no-such-ws")
        self.assertEqual((r.json["status"], r.json["reason"]),
                         ("bad_request", "field:workstation"), r)
        r = env.carrel(admin, "admin", "sip", "save", "kiosk-nows")
        self.assertEqual(r.json["reason"], "field:workstation", r)

    def test_stale_version_in_sql(self):
        user = "kiosk-stale"
        env.add_selfcheck(admin, user, "sc-stale")
        with self.assertRaises(harness.SqlError) as e:
            env.psql("SELECT * FROM sip_login_save(NULL, NULL, '%s', NULL, NULL, NULL, NULL,"
                     " NULL, NULL, NULL, 99)" % user)
        self.assertIn("stale_version", str(e.exception.detail))

    def test_not_for_other_roles(self):
        env.add_staff(admin, "manager-sip", role="branch_manager",
                      password="manager-password-123")
        prof = env.profile(main, user="manager-sip", password="manager-password-123")
        for args in (("list",), ("remove", KIOSK), ("save", KIOSK, "--cv-00")):
            r = env.carrel(prof, "admin", "sip", *args)
            self.assertNotEqual(r.code, 0)
            self.assertEqual(r.json["status"], "forbidden", r)

    def test_a_manager_cannot_create_a_selfcheck_account(self):
        prof = env.profile(main, user="manager-sip2", password="manager-password-123")
        env.add_staff(admin, "manager-sip2", role="branch_manager",
                      password="manager-password-123")
        pwfile = os.path.join(env.dir, "mk.pw")
        with open(pwfile, "w") as f:
            f.write("kiosk-password-123\n")
        r = env.carrel(prof, "admin", "staff", "add", "kiosk-bymanager", "--name", "K",
                       "--role", "selfcheck", "--branch", "DWN", "--new-password-file", pwfile)
        self.assertEqual(r.json["status"], "forbidden", r)


class ZDatabaseAway(unittest.TestCase):
    """Last (it stops PostgreSQL): 98 says off-line while the pool has no connection."""

    def test_status_says_offline_without_the_database(self):
        with logged_in() as c:
            self.assertEqual(status(c).fixed[0], "Y")
            env.stop_pg()
            try:
                def offline():
                    # a checkin makes the pool use (and find dead) its connections
                    c.send("09N%s%sAPx|AODWN|ABnothing|" % (sip_date(), sip_date()))
                    return status(c).fixed[0] == "N"
                harness.wait_until(offline, what="98 on-line N", interval=0.2)
            finally:
                env.start_pg()
            harness.wait_until(lambda: status(c).fixed[0] == "Y", timeout=120,
                               what="98 on-line Y again", interval=0.2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
