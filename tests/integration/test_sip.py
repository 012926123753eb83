#!/usr/bin/env python3
"""Self-check sessions end to end (docs/SIP2.md): kiosks speak SIP2 to the real carreld
over a real socket (tests/integration/sip2client.py, written from the standard), and
every answer that says something changed is checked in the database too: login, status,
patron status and information with each item list and BP/BQ ranges, checkout and its
resends (same message after a timeout, a new transaction date, 97), renew, renew all,
item information, checkin to the shelf / a hold here / a hold elsewhere / home, fee paid
once, end session, PINs, the per-login options, refusals, and framing (bad checksums,
split input, garbage between good messages)."""

import datetime
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import sip2client  # noqa: E402
from harness import pb_message, sql_literal as lit, wait_until  # noqa: E402
from sip2client import build, sip_date  # noqa: E402

PASSWORD = "kiosk-password-123"
UNAVAILABLE = "The library system is unavailable; please see the desk."
RETURN_HOLD = "Thank you. Please leave this item in the return; it is wanted by another reader."
BLOCKED_NOW = "This card is blocked; please see the desk."
REQ_PATRON_PIN_SET = 353
env = None
main = None
SIP_PORT = None
IDS = {}

# The SIP2 logins of these tests, all at workstation kiosk-dwn (Downtown): name -> the
# options of `carrel admin sip save` (pin_required is on unless --no-pin).
LOGINS = {
    "kiosk-pin": [],
    "kiosk-open": ["--no-pin"],
    "kiosk-ct": ["--no-pin", "--always-ct"],
    "kiosk-cv": ["--no-pin", "--cv-00"],
    "kiosk-hide": ["--no-pin", "--hide", "AJ,AQ"],
    "kiosk-held": ["--no-pin", "--held-checkin-blocked"],
    "kiosk-screen": ["--no-pin", "--hide", "CY,DA"],
}


def q(sql):
    return env.psql(sql)


def setUpModule():
    global env, main, SIP_PORT
    env = harness.Env()
    try:
        env.start()
        main = env.daemon(sip=True, db_pool_size=8, sip_login_timeout_s=60)
        SIP_PORT = main.sip_port
        admin = env.profile(main)
        IDS["admin"] = int(q("SELECT id FROM staff WHERE username = 'admin'"))
        IDS["desk"] = int(q("SELECT id FROM workstation WHERE name = 'desk-dwn'"))
        IDS["dwn"] = int(q("SELECT id FROM branch WHERE code = 'DWN'"))
        for user, options in LOGINS.items():
            env.add_selfcheck(admin, user, "kiosk-dwn", password=PASSWORD, options=options)
        # A selfcheck account without a sip_login row, and a clerk.
        env.add_staff(admin, "kiosk-norow", "selfcheck", "DWN", PASSWORD)
        env.add_staff(admin, "clerk-sip", "clerk", "DWN", PASSWORD)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    try:
        problems = q("SELECT count(*) FROM circ_invariants()")
        assert problems == "0", q("SELECT * FROM circ_invariants()")
    finally:
        env.stop()


# ---------------------------------------------------------------- fixtures


def new_patron(**kw):
    return env.new_patron(**kw)


def new_item(title=None, branch="DWN", item_type="book"):
    title = title or "SIP copy %d" % env.next_number()
    return env.new_item(title=title, branch=branch, item_type=item_type)


def lend(card, barcode):
    """A loan made at the desk (admin at desk-dwn)."""
    q("SELECT loan_id FROM circ_checkout(gen_random_uuid(), %d, %d, %d, %s, %s, false, NULL,"
      " false)" % (IDS["admin"], IDS["desk"], IDS["dwn"], lit(card), lit(barcode)))


def place_hold(card, barcode, pickup="DWN"):
    """A title hold for card on the bib of barcode, to be picked up at pickup; its id."""
    return int(q("SELECT id FROM hold_place(gen_random_uuid(), %d, %d, %s,"
                 " (SELECT bib_id FROM item WHERE barcode = %s), NULL, %s, NULL, NULL)"
                 % (IDS["admin"], IDS["dwn"], lit(card), lit(barcode), lit(pickup))))


def charge(card, cents):
    q("SELECT 1 FROM circ_ledger_post(gen_random_uuid(), %d, %s, 'charge', %d, 'SIP test',"
      " true)" % (IDS["admin"], lit(card), cents))


def block(card):
    q("INSERT INTO patron_block (patron_id, reason, placed_by) SELECT id, 'SIP test', %d"
      " FROM patron WHERE card = %s" % (IDS["admin"], lit(card)))


def set_pin(card, pin):
    """PatronPinSet over the Carrel protocol (the PIN is hashed by the daemon)."""
    w = main.logged_in_wire()
    try:
        r = w.call(REQ_PATRON_PIN_SET, pb_message((1, card), (2, pin)))
        assert r.status == "ok", r
    finally:
        w.close()


def open_loans(barcode):
    return int(q("SELECT count(*) FROM loan l JOIN item i ON i.id = l.item_id"
                 " WHERE i.barcode = %s AND l.returned_at IS NULL" % lit(barcode)))


def loans(barcode):
    return int(q("SELECT count(*) FROM loan l JOIN item i ON i.id = l.item_id"
                 " WHERE i.barcode = %s" % lit(barcode)))


def events(barcode, action):
    return int(q("SELECT count(*) FROM circ_event e JOIN item i ON i.id = e.item_id"
                 " WHERE i.barcode = %s AND e.action = %s" % (lit(barcode), lit(action))))


def item_status(barcode):
    return q("SELECT status FROM item WHERE barcode = %s" % lit(barcode))


def balance(card):
    return int(q("SELECT coalesce(sum(l.amount_cents), 0) FROM patron_ledger l"
                 " JOIN patron p ON p.id = l.patron_id WHERE p.card = %s" % lit(card)))


def loan_row(barcode):
    """(renewals, due_at as epoch seconds) of the open loan of barcode."""
    r, due = q("SELECT renewals, extract(epoch FROM due_at)::bigint FROM loan l"
               " JOIN item i ON i.id = l.item_id WHERE i.barcode = %s AND l.returned_at IS NULL"
               % lit(barcode)).split("|")
    return int(r), int(due)


def patron_name(card):
    return q("SELECT patron_short_name(p) FROM patron p WHERE card = %s" % lit(card))


# ---------------------------------------------------------------- messages

NO_DATE = " " * 18


def co(card, barcode, date=None, pin=None, inst="DWN"):
    """11 checkout: SC renewal policy Y, no block N."""
    return "11YN%s%sAO%s|AA%s|AB%s|AC|%s" % (date or sip_date(), NO_DATE, inst, card, barcode,
                                               "AD%s|" % pin if pin is not None else "")


def ci(barcode, date=None, no_block="N", returned=None):
    """09 checkin."""
    d = date or sip_date()
    return "09%s%s%sAPDWN|AODWN|AB%s|AC|" % (no_block, d, returned or d, barcode)


def renew(card, barcode, pin=None):
    return "29NN%s%sAODWN|AA%s|AB%s|AC|%s" % (sip_date(), NO_DATE, card, barcode,
                                              "AD%s|" % pin if pin is not None else "")


def renew_all(card, pin=None):
    return "65%sAODWN|AA%s|AC|%s" % (sip_date(), card, "AD%s|" % pin if pin is not None else "")


def item_info(barcode):
    return "17%sAODWN|AB%s|AC|" % (sip_date(), barcode)


def fee_paid(card, amount, pin=None, tx="T1", date=None):
    return "37%s0100USDBV%s|AODWN|AA%s|AC|%sBK%s|" % (
        date or sip_date(), amount, card, "AD%s|" % pin if pin is not None else "", tx)


def patron_status(card, pin=None):
    return "23001%sAODWN|AA%s|AC|%s" % (sip_date(), card, "AD%s|" % pin if pin is not None else "")


SUMMARY = {"holds": 0, "overdue": 1, "charged": 2, "fines": 3, "recalls": 4, "unavailable": 5}


def patron_info(card, summary=None, start=None, end=None, pin=None):
    s = [" "] * 10
    if summary is not None:
        s[SUMMARY[summary]] = "Y"
    rng = ("BP%d|" % start if start is not None else "") + ("BQ%d|" % end if end else "")
    return "63001%s%sAODWN|AA%s|AC|%s%s" % (sip_date(), "".join(s), card,
                                             "AD%s|" % pin if pin is not None else "", rng)


def end_session(card):
    return "35%sAODWN|AA%s|AC|AD|" % (sip_date(), card)


def sc_status():
    return "9900302.00"


def ok(m):
    """The ok / accepted flag of a response (first fixed character)."""
    return m.fixed[:1]


def counts(m64):
    """64's six counts: holds, overdue, charged, fines, recalls, unavailable holds."""
    c = m64.fixed[35:59]
    return [int(c[i:i + 4]) for i in range(0, 24, 4)]


def kiosk(user="kiosk-open", password=PASSWORD):
    k = main.sip(timeout=120)
    assert k.login(user, password), "%s could not log in" % user
    return k


def assert_good(test, m):
    """Every answer carries AY and a right AZ."""
    test.assertIsNotNone(m.checksum_ok, m)
    test.assertTrue(m.checksum_ok, m)
    test.assertIsNotNone(m.seq, m)


# ---------------------------------------------------------------- login and status


class T01Login(unittest.TestCase):
    def test_status_before_login_answers_98(self):
        with main.sip() as k:
            m = k.send(sc_status(), seq=1)
            self.assertEqual(m.code, "98", m)
            assert_good(self, m)
            self.assertEqual(m.seq, 1)
            self.assertEqual(m.fixed[0], "Y")
            self.assertEqual(len(m.get("BX", "")), 16, m)
            # Not logged in: no branch or workstation to name.
            self.assertNotIn("AM", m.fields)
            self.assertNotIn("AN", m.fields)

    def test_patron_question_before_login_closes_the_connection(self):
        with main.sip() as k:
            k.send_raw(build(patron_status(new_patron()), 0))
            self.assertTrue(k.closed_by_server(timeout=60))

    def test_failed_login_logs_the_connection_out(self):
        card, item = new_patron(), new_item()
        with kiosk() as k:
            m = k.send("9300CNkiosk-open|COnot-the-password|CP|")
            self.assertEqual((m.code, m.fixed), ("94", "0"), m)
            m = k.send(co(card, item))
            self.assertEqual((m.code, ok(m)), ("12", "0"), m)
            self.assertTrue(m.get("AF"), m)
        self.assertEqual(loans(item), 0)

    def test_login_refusals_answer_940(self):
        for user, pw in [("kiosk-open", "wrong-password"), ("nobody-here", PASSWORD),
                         ("clerk-sip", PASSWORD), ("kiosk-norow", PASSWORD)]:
            with main.sip() as k:
                m = k.send("9300CN%s|CO%s|CP|" % (user, pw))
                self.assertEqual((m.code, m.fixed), ("94", "0"), (user, m))
                assert_good(self, m)
        self.assertEqual(q("SELECT count(*) FROM sip_login l JOIN staff s ON s.id = l.staff_id"
                           " WHERE s.username = 'kiosk-norow'"), "0")

    def test_login_records_last_login(self):
        q("UPDATE sip_login SET last_login_at = NULL WHERE staff_id ="
          " (SELECT id FROM staff WHERE username = 'kiosk-cv')")
        with kiosk("kiosk-cv"):
            pass
        # Recorded beside the answer (941 does not wait for it).
        wait_until(lambda: q("SELECT last_login_at IS NOT NULL FROM sip_login WHERE staff_id ="
                             " (SELECT id FROM staff WHERE username = 'kiosk-cv')") == "t",
                   what="last_login_at")

    def test_checkout_before_login_is_refused_and_lends_nothing(self):
        card, item = new_patron(), new_item()
        with main.sip() as k:
            m = k.send(co(card, item))
            self.assertEqual(m.code, "12", m)
            self.assertEqual(ok(m), "0", m)
            assert_good(self, m)
        self.assertEqual(loans(item), 0)

    def test_status_after_login(self):
        with kiosk() as k:
            m = k.send(sc_status(), seq=4)
            self.assertEqual(m.code, "98")
            assert_good(self, m)
            self.assertEqual(m.seq, 4)
            self.assertEqual(m.fixed[:12], "YYYYNN030003", m)
            self.assertEqual(m.fixed[-4:], "2.00", m)
            self.assertEqual(m.get("AO"), "DWN")
            self.assertEqual(m.get("AM"), q("SELECT name FROM branch WHERE code = 'DWN'"))
            self.assertEqual(m.get("AN"), "kiosk-dwn")
            bx = m.get("BX")
            # patron status, checkout, checkin, block patron, status, resend, login,
            # patron information, end session, fee paid, item information, ..., renew, renew all
            for pos in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15):
                self.assertEqual(bx[pos], "Y", (pos, bx))
            # item status update, patron enable, hold: answered only to refuse
            for pos in (11, 12, 13):
                self.assertEqual(bx[pos], "N", (pos, bx))


# ---------------------------------------------------------------- patron status and information


class T02Patron(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.card = new_patron(email="reader@example.org")
        cls.charged = [new_item() for _ in range(3)]
        for b in cls.charged:
            lend(cls.card, b)
        # The first loan is overdue.
        q("UPDATE loan SET due_at = now() - interval '3 days' WHERE returned_at IS NULL"
          " AND item_id = (SELECT id FROM item WHERE barcode = %s)" % lit(cls.charged[0]))
        charge(cls.card, 350)
        # A hold ready on the shelf here, and one still waiting.
        other = new_patron()
        cls.ready_copy = new_item()
        lend(other, cls.ready_copy)
        place_hold(cls.card, cls.ready_copy)
        q("SELECT 1 FROM circ_checkin(gen_random_uuid(), %d, %d, %d, %s, NULL)"
          % (IDS["admin"], IDS["desk"], IDS["dwn"], lit(cls.ready_copy)))
        assert item_status(cls.ready_copy) == "on_hold_shelf", item_status(cls.ready_copy)
        cls.waiting_copy = new_item(title="SIP waiting title %d" % env.next_number())
        lend(other, cls.waiting_copy)
        place_hold(cls.card, cls.waiting_copy)
        cls.k = kiosk()

    @classmethod
    def tearDownClass(cls):
        cls.k.close()

    def test_patron_status(self):
        m = self.k.send(patron_status(self.card))
        self.assertEqual(m.code, "24", m)
        assert_good(self, m)
        self.assertEqual(len(m.fixed), 14 + 3 + 18)
        self.assertEqual(m.get("AA"), self.card)
        self.assertEqual(m.get("BL"), "Y")
        self.assertEqual(m.get("BH"), "USD")
        self.assertEqual(m.get("BV"), "3.50")
        self.assertTrue(m.get("AE"), m)

    def test_unknown_patron_is_not_valid(self):
        m = self.k.send(patron_status("29999999999999"))
        self.assertEqual(m.code, "24")
        self.assertEqual(m.get("BL"), "N", m)
        m = self.k.send(patron_info("29999999999999", "charged"))
        self.assertEqual(m.code, "64")
        self.assertEqual(m.get("BL"), "N", m)
        self.assertNotIn("AU", m.fields)

    def test_counts(self):
        m = self.k.send(patron_info(self.card))
        self.assertEqual(m.code, "64", m)
        assert_good(self, m)
        holds, overdue, charged, fines, recalls, unavailable = counts(m)
        self.assertEqual((holds, overdue, charged, recalls, unavailable), (1, 1, 3, 0, 1), m)
        self.assertGreaterEqual(fines, 1)
        self.assertEqual(m.get("BV"), "3.50")
        for fid in ("AS", "AT", "AU", "AV", "BU", "CD"):
            self.assertNotIn(fid, m.fields, "no list asked, %s sent: %r" % (fid, m))

    def test_each_list(self):
        m = self.k.send(patron_info(self.card, "holds"))
        self.assertEqual(m.fields.get("AS"), [self.ready_copy], m)
        m = self.k.send(patron_info(self.card, "overdue"))
        self.assertEqual(m.fields.get("AT"), [self.charged[0]], m)
        m = self.k.send(patron_info(self.card, "charged"))
        self.assertEqual(sorted(m.fields.get("AU", [])), sorted(self.charged), m)
        m = self.k.send(patron_info(self.card, "fines"))
        self.assertEqual(len(m.fields.get("AV", [])), 1, m)
        self.assertIn("3.50", m.fields["AV"][0])
        m = self.k.send(patron_info(self.card, "unavailable"))
        self.assertEqual(len(m.fields.get("CD", [])), 1, m)
        m = self.k.send(patron_info(self.card, "recalls"))
        self.assertNotIn("BU", m.fields)

    def test_bare_card_gets_no_personal_details(self):
        """A login without PINs, a card number and no AD: the short name the kiosk greets
        with, the counts, and no address, e-mail or phone."""
        m = self.k.send(patron_info(self.card))
        self.assertEqual(m.code, "64", m)
        for fid in ("BD", "BE", "BF"):
            self.assertNotIn(fid, m.fields, m)
        self.assertEqual(m.get("AE"), patron_name(self.card), m)
        self.assertNotIn("reader@example.org", m.raw)
        m = self.k.send(patron_status(self.card))
        self.assertEqual(m.get("AE"), patron_name(self.card), m)

    def test_verified_pin_gets_the_details(self):
        card = new_patron(email="pinned@example.org", phone="555-0100", first="Verity",
                          address_line1="1 Main St")
        set_pin(card, "7315")
        m = self.k.send(patron_info(card, pin="7315"))
        self.assertEqual((m.code, m.get("CQ")), ("64", "Y"), m)
        self.assertEqual(m.get("BE"), "pinned@example.org", m)
        self.assertEqual(m.get("BF"), "555-0100", m)
        self.assertIn("1 Main St", m.get("BD", ""), m)
        self.assertTrue(m.get("AE", "").startswith("Verity "), m)
        self.assertNotEqual(m.get("AE"), patron_name(card), m)
        # A wrong one: nothing personal, no name.
        m = self.k.send(patron_info(card, pin="0000"))
        self.assertEqual(m.get("CQ"), "N", m)
        for fid in ("BD", "BE", "BF"):
            self.assertNotIn(fid, m.fields, m)
        self.assertEqual(m.get("AE"), "", m)

    def test_ranges(self):
        whole = self.k.send(patron_info(self.card, "charged")).fields["AU"]
        self.assertEqual(len(whole), 3)
        m = self.k.send(patron_info(self.card, "charged", 2, 3))
        self.assertEqual(m.fields.get("AU"), whole[1:3], m)
        m = self.k.send(patron_info(self.card, "charged", 1, 1))
        self.assertEqual(m.fields.get("AU"), whole[:1], m)
        m = self.k.send(patron_info(self.card, "charged", 3, 10))
        self.assertEqual(m.fields.get("AU"), whole[2:], m)
        m = self.k.send(patron_info(self.card, "charged", 4, 9))
        self.assertNotIn("AU", m.fields, m)
        # The counts stay the totals whatever the range.
        self.assertEqual(counts(m)[2], 3)


# ---------------------------------------------------------------- checkout and resends


class T03Checkout(unittest.TestCase):
    def setUp(self):
        self.k = kiosk()
        self.kiosk_id = q("SELECT id FROM staff WHERE username = 'kiosk-open'")

    def tearDown(self):
        self.k.close()

    def test_checkout(self):
        card, item = new_patron(), new_item(title="The SIP checkout")
        m = self.k.send(co(card, item), seq=2)
        self.assertEqual(m.code, "12", m)
        assert_good(self, m)
        self.assertEqual(m.seq, 2)
        self.assertEqual(ok(m), "1", m)
        self.assertEqual(m.fixed[1], "N", m)  # renewal ok: a new loan
        self.assertEqual(m.fixed[3], "Y", m)  # desensitize
        self.assertEqual(m.get("AA"), card)
        self.assertEqual(m.get("AB"), item)
        self.assertEqual(m.get("AJ"), "The SIP checkout")
        self.assertEqual(m.get("AO"), "DWN")
        due = m.get("AH")
        self.assertEqual(len(due), 18, m)
        self.assertEqual(due[:8], q("SELECT to_char(l.due_at AT TIME ZONE"
                                    " library_setting_text('timezone'), 'YYYYMMDD') FROM loan l"
                                    " JOIN item i ON i.id = l.item_id WHERE i.barcode = %s"
                                    % lit(item)))
        self.assertEqual(m.get("CK"), "001")
        self.assertEqual(open_loans(item), 1)
        self.assertEqual(events(item, "checkout"), 1)
        self.assertEqual(q("SELECT l.checkout_staff_id || ' ' || b.code FROM loan l"
                           " JOIN item i ON i.id = l.item_id JOIN branch b"
                           " ON b.id = l.checkout_branch_id WHERE i.barcode = %s" % lit(item)),
                         "%s DWN" % self.kiosk_id)
        self.assertEqual(item_status(item), "checked_out")

    def test_same_message_resent_lends_once(self):
        card, item = new_patron(), new_item()
        raw = build(co(card, item), 5)
        self.k.send_raw(raw)
        first = self.k.read()
        self.k.send_raw(raw)
        again = self.k.read()
        self.assertEqual((ok(first), ok(again)), ("1", "1"), (first, again))
        self.assertEqual(first.get("AH"), again.get("AH"))
        self.assertEqual(loans(item), 1)
        self.assertEqual(events(item, "checkout"), 1)

    def test_resent_after_a_timeout_on_a_new_connection_lends_once(self):
        """The kiosk never read the first answer (the connection died); it connects again
        and resends the same message: one loan, one circulation event."""
        card, item = new_patron(), new_item()
        raw = build(co(card, item), 7)
        lost = kiosk()
        lost.send_raw(raw)
        wait_until(lambda: loans(item) == 1, what="the first checkout")
        lost.close()  # its answer never read
        self.k.send_raw(raw)
        again = self.k.read()
        self.assertEqual(ok(again), "1", again)
        self.assertEqual(loans(item), 1)
        self.assertEqual(events(item, "checkout"), 1)

    def test_resend_with_a_new_date_lends_once(self):
        """The Koha bug: the resend carries a new transaction date (a new key)."""
        card, item = new_patron(), new_item()
        now = datetime.datetime.now()
        first = self.k.send(co(card, item, date=sip_date(now - datetime.timedelta(seconds=5))))
        again = self.k.send(co(card, item, date=sip_date(now)))
        self.assertEqual((ok(first), ok(again)), ("1", "1"), (first, again))
        self.assertEqual(first.get("AH"), again.get("AH"))
        self.assertEqual(loans(item), 1)
        self.assertEqual(events(item, "checkout"), 1)

    def test_already_on_loan_to_the_patron_from_the_desk(self):
        card, item = new_patron(), new_item()
        lend(card, item)
        m = self.k.send(co(card, item))
        self.assertEqual(ok(m), "1", m)
        self.assertEqual(m.fixed[1], "Y", m)  # renewal ok: the patron already has it
        self.assertEqual(len(m.get("AH", "")), 18, m)
        self.assertEqual(loans(item), 1)
        self.assertEqual(events(item, "checkout"), 1)

    def test_97_sends_the_last_answer_again_and_applies_nothing(self):
        card, item = new_patron(), new_item()
        first = self.k.send(co(card, item), seq=3)
        self.assertEqual(ok(first), "1", first)
        text = "97AZ"
        self.k.send_raw((text + sip2client.checksum(text) + "\r").encode())
        again = self.k.read()
        self.assertEqual(again.raw, first.raw)
        # Without error detection too.
        self.k.send_raw(b"97\r")
        self.assertEqual(self.k.read().raw, first.raw)
        self.assertEqual(loans(item), 1)
        self.assertEqual(events(item, "checkout"), 1)

    def test_97_right_after_login_repeats_94(self):
        with main.sip() as k:
            login = k.send("9300CNkiosk-open|CO%s|CP|" % PASSWORD, seq=6)
            self.assertEqual(login.fixed, "1")
            k.send_raw(b"97\r")
            self.assertEqual(k.read().raw, login.raw)

    def test_blocked_patron_is_refused_and_nothing_changes(self):
        card, item = new_patron(), new_item()
        block(card)
        m = self.k.send(co(card, item))
        self.assertEqual(m.code, "12")
        assert_good(self, m)
        self.assertEqual(ok(m), "0", m)
        self.assertEqual(m.fixed[3], "N", m)  # not desensitized
        self.assertTrue(m.get("AF"), m)
        self.assertEqual(m.get("AH", ""), "", m)  # required in 12, empty: nothing is due
        self.assertEqual(loans(item), 0)
        self.assertEqual(events(item, "checkout"), 0)
        self.assertEqual(item_status(item), "available")

    def test_unknown_item_and_unknown_patron_are_refused(self):
        card, item = new_patron(), new_item()
        before = q("SELECT count(*) FROM loan")
        m = self.k.send(co(card, "39999999999999"))
        self.assertEqual((m.code, ok(m)), ("12", "0"), m)
        self.assertTrue(m.get("AF"), m)
        m = self.k.send(co("29999999999999", item))
        self.assertEqual((m.code, ok(m)), ("12", "0"), m)
        self.assertTrue(m.get("AF"), m)
        self.assertEqual(q("SELECT count(*) FROM loan"), before)
        self.assertEqual(item_status(item), "available")

    def test_copy_on_loan_to_someone_else_is_refused(self):
        card, other, item = new_patron(), new_patron(), new_item()
        lend(other, item)
        m = self.k.send(co(card, item))
        self.assertEqual(ok(m), "0", m)
        self.assertTrue(m.get("AF"), m)
        self.assertEqual(loans(item), 1)
        self.assertEqual(q("SELECT p.card FROM loan l JOIN item i ON i.id = l.item_id JOIN patron p"
                           " ON p.id = l.patron_id WHERE i.barcode = %s" % lit(item)), other)


# ---------------------------------------------------------------- renew, renew all, item information


def pull_due(barcode, days=2):
    """Make the open loan of barcode due in days (so a renewal moves the due date)."""
    q("UPDATE loan SET due_at = now() + interval '%d days' WHERE returned_at IS NULL"
      " AND item_id = (SELECT id FROM item WHERE barcode = %s)" % (days, lit(barcode)))


class T04Renew(unittest.TestCase):
    def setUp(self):
        self.k = kiosk()

    def tearDown(self):
        self.k.close()

    def test_renew(self):
        card, item = new_patron(), new_item(title="The SIP renewal")
        lend(card, item)
        pull_due(item)
        _, due_before = loan_row(item)
        raw = build(renew(card, item), 1)
        self.k.send_raw(raw)
        m = self.k.read()
        self.assertEqual(m.code, "30", m)
        assert_good(self, m)
        self.assertEqual(ok(m), "1", m)
        self.assertEqual(m.fixed[1], "Y", m)  # renewal ok
        self.assertEqual(m.get("AB"), item)
        self.assertEqual(m.get("AJ"), "The SIP renewal")
        self.assertEqual(len(m.get("AH", "")), 18)
        renewals, due = loan_row(item)
        self.assertEqual(renewals, 1)
        self.assertGreater(due, due_before)
        # The same message again (a timeout): renewed once.
        self.k.send_raw(raw)
        again = self.k.read()
        self.assertEqual(ok(again), "1", again)
        self.assertEqual(loan_row(item), (renewals, due))
        self.assertEqual(events(item, "renew"), 1)

    def test_renew_refused_changes_nothing(self):
        card, item = new_patron(), new_item()
        lend(card, item)
        pull_due(item)
        place_hold(new_patron(), item)  # the only copy is wanted
        before = loan_row(item)
        m = self.k.send(renew(card, item))
        self.assertEqual((m.code, ok(m)), ("30", "0"), m)
        self.assertTrue(m.get("AF"), m)
        self.assertEqual(loan_row(item), before)
        self.assertEqual(events(item, "renew"), 0)

    def test_renew_all(self):
        card = new_patron()
        items = [new_item(), new_item()]
        for b in items:
            lend(card, b)
            pull_due(b)
        raw = build(renew_all(card), 2)
        self.k.send_raw(raw)
        m = self.k.read()
        self.assertEqual(m.code, "66", m)
        assert_good(self, m)
        self.assertEqual(ok(m), "1", m)
        self.assertEqual(m.fixed[1:9], "00020000", m)
        self.assertEqual(sorted(m.fields.get("BM", [])), sorted(items), m)
        self.assertNotIn("BN", m.fields)
        self.assertEqual([loan_row(b)[0] for b in items], [1, 1])
        # Resent: nothing renewed twice.
        self.k.send_raw(raw)
        again = self.k.read()
        self.assertEqual(again.code, "66", again)
        self.assertEqual([loan_row(b)[0] for b in items], [1, 1])
        self.assertEqual(sum(events(b, "renew") for b in items), 2)

    def test_renew_all_with_one_refused(self):
        card = new_patron()
        good, held = new_item(), new_item()
        for b in (good, held):
            lend(card, b)
            pull_due(b)
        place_hold(new_patron(), held)
        m = self.k.send(renew_all(card))
        self.assertEqual(m.fixed[1:9], "00010001", m)
        self.assertEqual(m.fields.get("BM"), [good], m)
        self.assertEqual(m.fields.get("BN"), [held], m)
        self.assertEqual((loan_row(good)[0], loan_row(held)[0]), (1, 0))


class T05ItemInformation(unittest.TestCase):
    def setUp(self):
        self.k = kiosk()

    def tearDown(self):
        self.k.close()

    def test_available_copy(self):
        item = new_item(title="The SIP item")
        m = self.k.send(item_info(item))
        self.assertEqual(m.code, "18", m)
        assert_good(self, m)
        self.assertEqual(m.fixed[:2], "03", m)
        self.assertEqual(m.get("AB"), item)
        self.assertEqual(m.get("AJ"), "The SIP item")
        self.assertEqual(m.get("AQ"), "DWN")
        self.assertEqual(m.get("CK"), "001")
        self.assertNotIn("AH", m.fields)

    def test_charged_copy_with_holds(self):
        card, item = new_patron(), new_item()
        lend(card, item)
        place_hold(new_patron(), item)
        m = self.k.send(item_info(item))
        self.assertEqual(m.fixed[:2], "04", m)
        self.assertEqual(len(m.get("AH", "")), 18, m)
        self.assertEqual(m.get("CF"), "1", m)

    def test_copy_in_transit(self):
        card, item = new_patron(), new_item(branch="PRK")
        lend(card, item)
        q("SELECT 1 FROM circ_checkin(gen_random_uuid(), %d, %d, %d, %s, NULL)"
          % (IDS["admin"], IDS["desk"], IDS["dwn"], lit(item)))
        self.assertEqual(item_status(item), "in_transit")
        m = self.k.send(item_info(item))
        self.assertEqual(m.fixed[:2], "10", m)
        self.assertEqual(m.get("CT"), "PRK", m)

    def test_unknown_item(self):
        m = self.k.send(item_info("39999999999999"))
        self.assertEqual(m.code, "18", m)
        self.assertEqual(m.fixed[:2], "01", m)
        self.assertTrue(m.get("AF"), m)


# ---------------------------------------------------------------- checkin and sorting


class T06Checkin(unittest.TestCase):
    def setUp(self):
        self.k = kiosk()

    def tearDown(self):
        self.k.close()

    def test_back_to_the_shelf(self):
        card, item = new_patron(), new_item(title="The SIP return")
        lend(card, item)
        raw = build(ci(item), 4)
        self.k.send_raw(raw)
        m = self.k.read()
        self.assertEqual(m.code, "10", m)
        assert_good(self, m)
        self.assertEqual(ok(m), "1", m)
        self.assertEqual(m.fixed[1], "Y", m)  # resensitize
        self.assertEqual(m.fixed[3], "N", m)  # no alert
        self.assertEqual(m.get("AB"), item)
        self.assertEqual(m.get("AQ"), "DWN")
        self.assertEqual(m.get("AJ"), "The SIP return")
        self.assertEqual(m.get("CL"), "1", m)
        self.assertNotIn("CT", m.fields)  # this login has neither option
        self.assertNotIn("CV", m.fields)
        self.assertEqual(open_loans(item), 0)
        self.assertEqual(item_status(item), "available")
        self.assertEqual(events(item, "checkin"), 1)
        # Resent: still one checkin.
        self.k.send_raw(raw)
        self.assertEqual(ok(self.k.read()), "1")
        self.assertEqual(events(item, "checkin"), 1)

    def test_hold_here_is_captured(self):
        card, holder, item = new_patron(), new_patron(), new_item()
        lend(card, item)
        hold = place_hold(holder, item)
        m = self.k.send(ci(item))
        self.assertEqual((m.code, ok(m)), ("10", "1"), m)
        assert_good(self, m)
        self.assertEqual(m.fixed[1], "N", m)  # not resensitized: it goes to the hold shelf
        self.assertEqual(m.fixed[3], "Y", m)  # alert
        self.assertEqual(m.get("CL"), "2", m)
        self.assertEqual(m.get("CV"), "01", m)
        self.assertNotIn("CT", m.fields)  # it stays here
        self.assertEqual(m.get("CY"), holder, m)
        self.assertEqual(m.get("DA"), patron_name(holder), m)
        # The screen line is public: it never names the patron the copy is held for.
        self.assertEqual(m.get("AF"), RETURN_HOLD, m)
        self.assertNotIn(patron_name(holder), m.get("AF"), m)
        self.assertEqual(open_loans(item), 0)
        self.assertEqual(q("SELECT status || ' ' || (captured_item_id = (SELECT id FROM item"
                           " WHERE barcode = %s)) FROM hold WHERE id = %d" % (lit(item), hold)),
                         "ready true")
        self.assertEqual(item_status(item), "on_hold_shelf")
        # Scanned again ("Already on the hold shelf for ..." at the desk): still anonymous.
        later = datetime.datetime.now() + datetime.timedelta(seconds=2)
        m = self.k.send(ci(item, date=sip_date(later)))
        self.assertEqual((m.code, m.get("CL"), m.get("AF")), ("10", "2", RETURN_HOLD), m)

    def test_no_screen_line_names_the_holder(self):
        """Checkout, renew and item information of a copy another patron holds: the
        refusals and sentences speak of "another patron", never of who."""
        card, holder, item = new_patron(), new_patron(), new_item()
        lend(card, item)
        place_hold(holder, item)
        name = patron_name(holder)
        m = self.k.send(renew(card, item))
        self.assertEqual((m.code, ok(m)), ("30", "0"), m)
        self.assertNotIn(name, m.raw)
        self.k.send(ci(item))  # to the hold shelf
        self.assertEqual(item_status(item), "on_hold_shelf")
        m = self.k.send(co(new_patron(), item))
        self.assertEqual((m.code, ok(m)), ("12", "0"), m)
        self.assertTrue(m.get("AF"), m)
        self.assertNotIn(name, m.raw)
        m = self.k.send(item_info(item))
        self.assertEqual((m.code, m.fixed[:2]), ("18", "08"), m)
        self.assertNotIn(name, m.raw)
        self.assertNotIn(holder, m.raw)

    def test_hold_for_another_branch_goes_in_transit(self):
        card, holder, item = new_patron(), new_patron(), new_item()
        lend(card, item)
        hold = place_hold(holder, item, pickup="PRK")
        m = self.k.send(ci(item))
        self.assertEqual((m.code, ok(m)), ("10", "1"), m)
        self.assertEqual(m.fixed[3], "Y", m)
        self.assertEqual(m.get("CL"), "3", m)
        self.assertEqual(m.get("CV"), "02", m)
        self.assertEqual(m.get("CT"), "PRK", m)
        self.assertEqual(m.get("CY"), holder, m)
        self.assertEqual(m.get("AF"), RETURN_HOLD, m)
        self.assertEqual(q("SELECT status FROM hold WHERE id = %d" % hold), "in_transit")
        self.assertEqual(item_status(item), "in_transit")
        self.assertEqual(q("SELECT b.code FROM transit t JOIN item i ON i.id = t.item_id"
                           " JOIN branch b ON b.id = t.to_branch_id WHERE i.barcode = %s"
                           " AND t.received_at IS NULL" % lit(item)), "PRK")

    def test_copy_of_another_branch_goes_home(self):
        card, item = new_patron(), new_item(branch="PRK")
        lend(card, item)
        m = self.k.send(ci(item))
        self.assertEqual((m.code, ok(m)), ("10", "1"), m)
        self.assertEqual(m.fixed[3], "Y", m)
        self.assertEqual(m.get("CL"), "3", m)
        self.assertEqual(m.get("CV"), "04", m)
        self.assertEqual(m.get("CT"), "PRK", m)
        self.assertEqual(m.get("AQ"), "PRK")
        self.assertNotIn("CY", m.fields)
        self.assertEqual(item_status(item), "in_transit")

    def test_no_block_checkin_ends_the_loan_at_its_return_date(self):
        card, item = new_patron(), new_item()
        lend(card, item)
        q("UPDATE loan SET checkout_at = now() - interval '10 days' WHERE returned_at IS NULL"
          " AND item_id = (SELECT id FROM item WHERE barcode = %s)" % lit(item))
        back = datetime.datetime.now() - datetime.timedelta(days=3)
        m = self.k.send(ci(item, no_block="Y", returned=sip_date(back)))
        self.assertEqual((m.code, ok(m)), ("10", "1"), m)
        self.assertEqual(q("SELECT to_char(l.returned_at AT TIME ZONE"
                           " library_setting_text('timezone'), 'YYYYMMDD') FROM loan l"
                           " JOIN item i ON i.id = l.item_id WHERE i.barcode = %s" % lit(item)),
                         back.strftime("%Y%m%d"))

    def test_unknown_item_is_refused(self):
        m = self.k.send(ci("39999999999999"))
        self.assertEqual((m.code, ok(m)), ("10", "0"), m)
        self.assertEqual(m.fixed[3], "Y", m)  # alert: to the desk
        self.assertTrue(m.get("AF"), m)


# ---------------------------------------------------------------- fee paid, end session


class T07FeePaid(unittest.TestCase):
    def setUp(self):
        self.k = kiosk()

    def tearDown(self):
        self.k.close()

    def payments(self, card):
        return int(q("SELECT count(*) FROM patron_ledger l JOIN patron p ON p.id = l.patron_id"
                     " WHERE p.card = %s AND l.kind = 'payment'" % lit(card)))

    def test_fee_paid_once_when_resent(self):
        card = new_patron()
        charge(card, 500)
        raw = build(fee_paid(card, "2.00", tx="KIOSK-TX-1"), 8)
        self.k.send_raw(raw)
        m = self.k.read()
        self.assertEqual(m.code, "38", m)
        assert_good(self, m)
        self.assertEqual(ok(m), "Y", m)
        self.assertEqual(m.get("AA"), card)
        self.assertEqual(m.get("BK"), "KIOSK-TX-1")
        self.assertEqual(balance(card), 300)
        self.k.send_raw(raw)
        again = self.k.read()
        self.assertEqual(ok(again), "Y", again)
        self.assertEqual(balance(card), 300)
        self.assertEqual(self.payments(card), 1)

    def test_bad_amount_is_refused(self):
        card = new_patron()
        charge(card, 500)
        for amount in ("0.00", "-1.00", "abc"):
            m = self.k.send(fee_paid(card, amount))
            self.assertEqual((m.code, ok(m)), ("38", "N"), (amount, m))
            self.assertTrue(m.get("AF"), m)
        self.assertEqual(balance(card), 500)
        self.assertEqual(self.payments(card), 0)


class T08EndSession(unittest.TestCase):
    def test_end_session_keeps_the_connection(self):
        card = new_patron()
        with kiosk() as k:
            m = k.send(end_session(card), seq=9)
            self.assertEqual(m.code, "36", m)
            assert_good(self, m)
            self.assertEqual(m.seq, 9)
            self.assertEqual(m.fixed[0], "Y")
            self.assertEqual(m.get("AA"), card)
            self.assertEqual(k.send(sc_status()).code, "98")
            # Still logged in: a checkout works.
            item = new_item()
            self.assertEqual(ok(k.send(co(card, item))), "1")
            self.assertEqual(open_loans(item), 1)


# ---------------------------------------------------------------- PINs


class T09Pin(unittest.TestCase):
    PIN = "4821"

    def setUp(self):
        self.card = new_patron()
        set_pin(self.card, self.PIN)
        self.k = kiosk("kiosk-pin")

    def tearDown(self):
        self.k.close()

    def failures(self):
        return q("SELECT failures || ' ' || (locked_until IS NOT NULL) FROM patron_pin"
                 " WHERE patron_id = (SELECT id FROM patron WHERE card = %s)" % lit(self.card))

    def test_pin_is_stored_hashed(self):
        h = q("SELECT pin_hash FROM patron_pin WHERE patron_id = (SELECT id FROM patron"
              " WHERE card = %s)" % lit(self.card))
        self.assertTrue(h.startswith("$argon2id$"), h)
        self.assertNotIn(self.PIN, h)

    def test_checkout_needs_the_pin(self):
        item = new_item()
        m = self.k.send(co(self.card, item))
        self.assertEqual(ok(m), "0", m)
        self.assertTrue(m.get("AF"), m)
        m = self.k.send(co(self.card, item, pin="0000"))
        self.assertEqual(ok(m), "0", m)
        self.assertTrue(m.get("AF"), m)
        self.assertEqual(loans(item), 0)
        self.assertEqual(self.failures(), "1 false")
        m = self.k.send(co(self.card, item, pin=self.PIN))
        self.assertEqual(ok(m), "1", m)
        self.assertEqual(open_loans(item), 1)
        self.assertEqual(self.failures(), "0 false")

    def test_renew_and_fee_paid_need_the_pin(self):
        item = new_item()
        lend(self.card, item)
        pull_due(item)
        charge(self.card, 300)
        self.assertEqual(ok(self.k.send(renew(self.card, item))), "0")
        self.assertEqual(ok(self.k.send(renew_all(self.card, pin="9999"))), "0")
        self.assertEqual(ok(self.k.send(fee_paid(self.card, "1.00"))), "N")
        self.assertEqual(loan_row(item)[0], 0)
        self.assertEqual(balance(self.card), 300)
        self.assertEqual(ok(self.k.send(renew(self.card, item, pin=self.PIN))), "1")
        self.assertEqual(ok(self.k.send(fee_paid(self.card, "1.00", pin=self.PIN))), "Y")
        self.assertEqual(loan_row(item)[0], 1)
        self.assertEqual(balance(self.card), 200)

    def test_patron_status_says_whether_the_pin_is_right(self):
        m = self.k.send(patron_status(self.card, pin=self.PIN))
        self.assertEqual((m.get("BL"), m.get("CQ")), ("Y", "Y"), m)
        m = self.k.send(patron_status(self.card, pin="1111"))
        self.assertEqual(m.get("CQ"), "N", m)
        m = self.k.send(patron_info(self.card, "charged", pin="1111"))
        self.assertEqual(m.get("CQ"), "N", m)
        self.assertNotIn("AU", m.fields)

    def test_five_wrong_pins_lock_it(self):
        item = new_item()
        for _ in range(5):
            self.assertEqual(ok(self.k.send(co(self.card, item, pin="0000"))), "0")
        self.assertEqual(self.failures().split()[1], "true")
        m = self.k.send(co(self.card, item, pin=self.PIN))
        self.assertEqual(ok(m), "0", m)
        self.assertTrue(m.get("AF"), m)
        self.assertEqual(loans(item), 0)
        m = self.k.send(patron_status(self.card, pin=self.PIN))
        self.assertEqual(m.get("CQ"), "N", m)


# ---------------------------------------------------------------- per-login options


class T10Options(unittest.TestCase):
    def checkin_after_loan(self, user, item=None):
        card, item = new_patron(), item or new_item()
        lend(card, item)
        with kiosk(user) as k:
            return k.send(ci(item)), item

    def test_always_send_ct(self):
        m, _ = self.checkin_after_loan("kiosk-ct")
        self.assertEqual(ok(m), "1", m)
        self.assertEqual(m.fields.get("CT"), [""], m)
        m, _ = self.checkin_after_loan("kiosk-open")
        self.assertNotIn("CT", m.fields)
        # With a destination, CT carries it.
        m, _ = self.checkin_after_loan("kiosk-ct", new_item(branch="PRK"))
        self.assertEqual(m.get("CT"), "PRK", m)

    def test_cv_00_on_success(self):
        m, _ = self.checkin_after_loan("kiosk-cv")
        self.assertEqual(ok(m), "1", m)
        self.assertEqual(m.get("CV"), "00", m)
        m, _ = self.checkin_after_loan("kiosk-open")
        self.assertNotIn("CV", m.fields)
        # Something to sort: the alert type, not 00.
        m, _ = self.checkin_after_loan("kiosk-cv", new_item(branch="PRK"))
        self.assertEqual(m.get("CV"), "04", m)

    def test_hold_patron_fields_can_be_hidden(self):
        """A machine with a screen the next patron reads: CY/DA hidden, AF anonymous."""
        card, holder, item = new_patron(), new_patron(), new_item()
        lend(card, item)
        place_hold(holder, item)
        with kiosk("kiosk-screen") as k:
            m = k.send(ci(item))
        self.assertEqual((m.code, ok(m), m.get("CL")), ("10", "1", "2"), m)
        self.assertNotIn("CY", m.fields)
        self.assertNotIn("DA", m.fields)
        self.assertNotIn(holder, m.raw)
        self.assertNotIn(patron_name(holder), m.raw)

    def test_hidden_fields(self):
        card, item = new_patron(), new_item(title="Hidden title")
        with kiosk("kiosk-hide") as k:
            m = k.send(co(card, item))
            self.assertEqual(ok(m), "1", m)
            self.assertNotIn("AJ", m.fields)
            assert_good(self, m)
            m = k.send(item_info(item))
            self.assertNotIn("AJ", m.fields)
            self.assertNotIn("AQ", m.fields)
            self.assertEqual(m.get("AB"), item)
        with kiosk("kiosk-open") as k:
            m = k.send(item_info(item))
            self.assertEqual(m.get("AJ"), "Hidden title")
            self.assertEqual(m.get("AQ"), "DWN")

    def test_held_checkin_blocked(self):
        card, holder, item = new_patron(), new_patron(), new_item()
        lend(card, item)
        hold = place_hold(holder, item)
        with kiosk("kiosk-held") as k:
            m = k.send(ci(item))
        self.assertEqual((m.code, ok(m)), ("10", "0"), m)
        assert_good(self, m)
        self.assertTrue(m.get("AF"), m)
        # Nothing changed: the loan is open, the hold waits, no checkin was recorded.
        self.assertEqual(open_loans(item), 1)
        self.assertEqual(item_status(item), "checked_out")
        self.assertEqual(q("SELECT status FROM hold WHERE id = %d" % hold), "waiting")
        self.assertEqual(events(item, "checkin"), 0)
        # A copy nobody waits for checks in as usual at that kiosk.
        m, item2 = self.checkin_after_loan("kiosk-held")
        self.assertEqual(ok(m), "1", m)
        self.assertEqual(open_loans(item2), 0)


# ---------------------------------------------------------------- framing


class T11Framing(unittest.TestCase):
    def setUp(self):
        self.k = kiosk()

    def tearDown(self):
        self.k.close()

    def test_bad_checksum_answers_96_and_applies_nothing(self):
        card, item = new_patron(), new_item()
        good = build(co(card, item), 1).decode()
        bad = good[:-5] + ("0000" if good[-5:-1] != "0000" else "FFFF") + "\r"
        self.k.send_raw(bad.encode())
        m = self.k.read()
        self.assertEqual(m.code, "96", m)
        self.assertEqual(loans(item), 0)
        # The kiosk resends it right: lent once.
        self.k.send_raw(good.encode())
        self.assertEqual(ok(self.k.read()), "1")
        self.assertEqual(loans(item), 1)

    def test_no_error_detection_and_lowercase_checksum(self):
        m = self.k.send(sc_status(), seq=None)
        self.assertEqual(m.code, "98", m)
        assert_good(self, m)
        text = sc_status() + "AY2AZ"
        self.k.send_raw((text + sip2client.checksum(text).lower() + "\r").encode())
        m = self.k.read()
        self.assertEqual((m.code, m.seq), ("98", 2), m)

    def test_split_input(self):
        card, item = new_patron(), new_item()
        raw = build(co(card, item), 3)
        for i in range(0, len(raw), 7):
            self.k.send_raw(raw[i:i + 7])
        m = self.k.read()
        self.assertEqual((m.code, ok(m)), ("12", "1"), m)
        self.assertEqual(loans(item), 1)

    def test_two_messages_in_one_write(self):
        card, item = new_patron(), new_item()
        self.k.send_raw(build(co(card, item), 1) + build(item_info(item), 2))
        a, b = self.k.read(), self.k.read()
        self.assertEqual((a.code, ok(a), a.seq), ("12", "1", 1), a)
        self.assertEqual((b.code, b.fixed[:2], b.seq), ("18", "04", 2), b)

    def test_garbage_between_good_messages(self):
        card, item = new_patron(), new_item()
        self.k.send_raw(build(sc_status(), 1) + b"garbage\r" + b"\x00\x01\xff junk|\r"
                        + b"1\r" + build(co(card, item), 2) + b"\n" + build(sc_status(), 3))
        codes = [self.k.read().code for _ in range(5)]
        self.assertEqual(codes, ["98", "96", "96", "96", "12"])
        self.assertEqual(self.k.read().code, "98")
        self.assertEqual(open_loans(item), 1)

    def test_crlf_and_blank_lines_are_tolerated(self):
        self.k.send_raw(b"\r\n\r\n" + build(sc_status(), 1) + b"\n")
        self.assertEqual(self.k.read().code, "98")
        self.assertEqual(self.k.send(sc_status()).code, "98")

    def test_overlong_line(self):
        self.k.send_raw(b"17" + b"X" * 6000 + b"\r")
        self.assertEqual(self.k.read().code, "96")
        self.assertEqual(self.k.send(sc_status()).code, "98")

    def test_message_without_a_handler_answers_96(self):
        # A response code sent to the ACS: well formed, but nothing a kiosk asks.
        m = self.k.send("941")
        self.assertEqual(m.code, "96", m)
        self.assertEqual(self.k.send(sc_status()).code, "98")

    def test_field_after_the_checksum_is_malformed(self):
        text = sc_status() + "AY1AZ"
        self.k.send_raw((text + sip2client.checksum(text) + "AOX|\r").encode())
        self.assertEqual(self.k.read().code, "96")

    def test_many_bad_lines_in_a_row_close_the_connection(self):
        self.k.send_raw(b"nonsense\r" * 25)
        self.assertTrue(self.k.closed_by_server(timeout=60))

    def test_answers_are_one_line_each(self):
        # A value with a pipe or a control character never breaks the answer's framing.
        card = new_patron(first="Pipe|Name")
        m = self.k.send(patron_status(card))
        self.assertEqual(m.code, "24", m)
        assert_good(self, m)
        self.assertNotIn("|Name", m.raw)



# ---------------------------------------------------------------- 01, 15, 19, 25


def blocks(card):
    """The active blocks of card: [(reason, placed_by username)]."""
    rows = q("SELECT b.reason || '|' || s.username FROM patron_block b JOIN patron p"
             " ON p.id = b.patron_id JOIN staff s ON s.id = b.placed_by WHERE p.card = %s"
             " AND b.lifted_at IS NULL ORDER BY b.id" % lit(card))
    return [tuple(r.split("|")) for r in rows.splitlines() if r]


def block_patron(card, note="card left in the machine", retained="N", date=None):
    return "01%s%sAODWN|AL%s|AA%s|AC|" % (retained, date or sip_date(), note, card)


class T11PatronBlockAndRefusals(unittest.TestCase):
    def setUp(self):
        self.k = kiosk()

    def tearDown(self):
        self.k.close()

    def test_block_patron_blocks_the_card_and_answers_24(self):
        card, item = new_patron(), new_item()
        raw = build(block_patron(card), 3)
        self.k.send_raw(raw)
        m = self.k.read()
        self.assertEqual((m.code, m.seq), ("24", 3), m)
        assert_good(self, m)
        self.assertEqual(len(m.fixed), 14 + 3 + 18, m)
        self.assertEqual(m.fixed[:4], "YYYY", m)  # charge, renew, recall, hold denied
        self.assertEqual(m.fixed[14:17], "000", m)  # 01 carries no language
        self.assertEqual((m.get("AA"), m.get("BL"), m.get("CQ")), (card, "Y", "N"), m)
        self.assertEqual(m.get("AE"), "", m)  # nothing personal
        self.assertNotIn("BV", m.fields)
        self.assertEqual(m.get("AF"), BLOCKED_NOW, m)
        self.assertEqual(blocks(card),
                         [("Blocked by self-check: card left in the machine", "kiosk-open")])
        self.assertEqual(q("SELECT count(*) FROM audit_event a JOIN patron p ON p.id = a.entity_id"
                           " WHERE a.entity = 'patron' AND a.action = 'block' AND p.card = %s"
                           " AND a.staff_id = (SELECT id FROM staff WHERE username = 'kiosk-open')"
                           % lit(card)), "1")
        # Resent (same line, then a new date with the same note): still one block.
        self.k.send_raw(raw)
        self.assertEqual(self.k.read().code, "24")
        later = datetime.datetime.now() + datetime.timedelta(seconds=2)
        self.assertEqual(self.k.send(block_patron(card, date=sip_date(later))).code, "24")
        self.assertEqual(len(blocks(card)), 1)
        # The card is blocked for the desk's rules too.
        m = self.k.send(co(card, item))
        self.assertEqual(ok(m), "0", m)
        self.assertEqual(loans(item), 0)

    def test_card_retained_is_in_the_note(self):
        card = new_patron()
        m = self.k.send(block_patron(card, note="reported stolen", retained="Y"))
        self.assertEqual(m.code, "24", m)
        self.assertEqual(blocks(card),
                         [("Blocked by self-check: reported stolen (card retained)", "kiosk-open")])

    def test_block_of_an_unknown_card(self):
        m = self.k.send(block_patron("29999999999998"))
        self.assertEqual((m.code, m.get("BL")), ("24", "N"), m)

    def test_hold_is_refused_with_16(self):
        card, item = new_patron(), new_item()
        m = self.k.send("15+%sAODWN|AA%s|AB%s|AC|" % (sip_date(), card, item))
        self.assertEqual(m.code, "16", m)
        assert_good(self, m)
        self.assertEqual(m.fixed[:2], "0N", m)
        self.assertEqual(len(m.fixed), 20, m)
        self.assertEqual((m.get("AA"), m.get("AB")), (card, item), m)
        self.assertIn("desk", m.get("AF"), m)
        self.assertEqual(q("SELECT count(*) FROM hold h JOIN patron p ON p.id = h.patron_id"
                           " WHERE p.card = %s" % lit(card)), "0")

    def test_item_status_update_is_refused_with_20(self):
        item = new_item()
        before = q("SELECT version FROM item WHERE barcode = %s" % lit(item))
        m = self.k.send("19%sAODWN|AB%s|AC|CHnew properties|" % (sip_date(), item))
        self.assertEqual(m.code, "20", m)
        assert_good(self, m)
        self.assertEqual((m.fixed[:1], len(m.fixed)), ("0", 19), m)
        self.assertEqual(m.get("AB"), item, m)
        self.assertTrue(m.get("AF"), m)
        self.assertEqual(q("SELECT version FROM item WHERE barcode = %s" % lit(item)), before)

    def test_patron_enable_tells_the_status_and_enables_nothing(self):
        card = new_patron()
        block(card)
        m = self.k.send("25%sAODWN|AA%s|AC|" % (sip_date(), card))
        self.assertEqual(m.code, "26", m)
        assert_good(self, m)
        self.assertEqual(len(m.fixed), 35, m)
        self.assertEqual(m.fixed[:4], "YYYY", m)
        self.assertEqual(m.fixed[14:17], "000", m)
        self.assertEqual((m.get("AA"), m.get("BL")), (card, "Y"), m)
        self.assertEqual(len(blocks(card)), 1)  # still blocked
        # A card in good standing: its status, all privileges.
        good = new_patron()
        m = self.k.send("25%sAODWN|AA%s|AC|" % (sip_date(), good))
        self.assertEqual((m.code, m.fixed[:4], m.get("BL")), ("26", "    ", "Y"), m)
        m = self.k.send("25%sAODWN|AA%s|AC|" % (sip_date(), "29999999999997"))
        self.assertEqual((m.code, m.get("BL")), ("26", "N"), m)


# ---------------------------------------------------------------- the database away (last: it stops PostgreSQL)


class T12DatabaseAway(unittest.TestCase):
    def test_every_message_is_answered_while_the_database_is_away(self):
        card, item, later = new_patron(), new_item(), new_item()
        k = kiosk()
        try:
            env.stop_pg()
            try:
                # The pool notices the dead sockets within moments; meanwhile every answer
                # is already a refusal (nothing can be lent without the database).
                deadline = time.monotonic() + 60
                while True:
                    m = k.send(co(card, item))
                    self.assertEqual((m.code, ok(m)), ("12", "0"), m)
                    if "unavailable" in m.get("AF", "") or time.monotonic() > deadline:
                        break
                self.assertEqual(m.get("AF"), UNAVAILABLE, m)
                assert_good(self, m)
                m = k.send(ci(item))
                self.assertEqual((m.code, ok(m), m.get("AF")), ("10", "0", UNAVAILABLE), m)
                m = k.send(item_info(item))
                self.assertEqual((m.code, m.fixed[:2], m.get("AF")), ("18", "01", UNAVAILABLE), m)
                m = k.send(patron_status(card))
                self.assertEqual((m.code, m.get("AF")), ("24", UNAVAILABLE), m)
                self.assertNotIn("BL", m.fields)  # the card may well be valid
                m = k.send(fee_paid(card, "1.00"))
                self.assertEqual((m.code, ok(m), m.get("AF")), ("38", "N", UNAVAILABLE), m)
                self.assertEqual(k.send(sc_status()).code, "98")
            finally:
                env.start_pg()

            def lent():
                m = k.send(co(card, later))
                return m if ok(m) == "1" else None
            wait_until(lent, timeout=120, what="the pool to reconnect", interval=0.2)
        finally:
            k.close()
        self.assertEqual(loans(item), 0)
        self.assertEqual(open_loans(later), 1)
        self.assertEqual(events(later, "checkout"), 1)


if __name__ == "__main__":
    unittest.main()
