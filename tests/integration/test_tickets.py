#!/usr/bin/env python3
"""Follow-up tickets through the daemon and the real client: a ticket's whole life
(opened from a tally at the desk, claimed, noted, replied to by email — the message
arriving at the harness's real SMTP relay with the ticket number in its subject —,
waiting for the patron, reopened, transferred, closed for the knowledge base);
escalation with the tickets timer at 1 s and the SLA clock moved by the
`ticket_clock_offset_minutes` setting (never by sleeping): flagged, then escalated,
each event reaching a queue member's `carrel events` and the coordinators' (with or
without `--all`) but no one else; who works which queue (`not_queue_staff`, the
coordinator sees all); retried keyed requests; and hostile requests over the wire,
each refused with its reason on the same connection while the daemon serves on."""

import csv
import os
import queue
import subprocess
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = "staff-password-123"
REQ_PING = 13
REQ_QUEUE_LIST, REQ_QUEUE_SAVE, REQ_OPEN, REQ_LIST = 290, 291, 292, 293
REQ_SHOW, REQ_CHANGE, REQ_POST = 294, 295, 296
FROM = "library@carrel.example.org"

env = None
main = None
relay = None

# (user, role, branch); display names are user.title().
STAFF = [("clara", "clerk", "DWN"), ("libby", "librarian", "DWN"), ("dora", "clerk", "DWN"),
         ("pia", "clerk", "PRK"), ("paul", "librarian", "PRK"), ("cora", "coordinator", "DWN"),
         ("cole", "coordinator", "PRK")]
WS = {"DWN": "desk-dwn", "PRK": "desk-prk"}


def carrel(user, *args, json_out=True, input=None):
    branch = dict((u, b) for u, _, b in STAFF).get(user, "DWN")
    pw = harness.ADMIN_PASSWORD if user == "admin" else PASSWORD
    return env.carrel(env.profile(main, WS[branch], user, pw), *args, json_out=json_out,
                      input=input)


def ok(r):
    assert r.code == 0, r
    return r.json


def refused(r, reason, code=4):
    assert r.code == code and (r.json or {}).get("reason") == reason, (reason, r)
    return r.json


def staff_id(user):
    return env.psql("SELECT id FROM staff WHERE username = '%s'" % user)


def set_clock(minutes):
    env.psql("UPDATE library_setting SET value = '%d' WHERE name = 'ticket_clock_offset_minutes'"
             % minutes)


def setUpModule():
    global env, main, relay
    env = harness.Env()
    try:
        env.start()
        # A real relay: STARTTLS and AUTH required.
        relay = harness.SmtpRelay(env)
        main = env.daemon(jobs_interval_s=0, notice_send_interval_s=0, smtp_from=FROM,
                          tickets_tick_interval_s=1, **relay.daemon_settings())
        admin = env.profile(main)
        env.add_workstations(admin, {"desk-prk": "PRK"})
        for user, role, branch in STAFF:
            env.add_staff(admin, user, role, branch, PASSWORD)
    except BaseException:
        if relay:
            relay.stop()
        env.stop()
        raise


def tearDownModule():
    if relay:
        relay.stop()
    env.stop()


class Listener:
    """`carrel events` running, its lines in a queue."""

    def __init__(self, user, *args, json_out=False):
        branch = dict((u, b) for u, _, b in STAFF)[user]
        prof = env.profile(main, WS[branch], user, PASSWORD)
        e = dict(os.environ)
        e.pop("CARREL_PASSWORD", None)
        self.proc = subprocess.Popen([harness.CARREL, "-c", prof] + (["--json"] if json_out else [])
                                     + ["events"] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=e)
        self.lines = queue.Queue()
        self.seen = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if pattern in line:
                return line
        raise AssertionError("no line with %r; saw %r; stderr %r"
                             % (pattern, self.seen, self.proc.stderr.read()
                                if self.proc.poll() is not None else ""))

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=60)
        self.reader.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        while not self.lines.empty():
            line = self.lines.get()
            if line is not None:
                self.seen.append(line)


def new_queue(*extra, branch="DWN"):
    """A queue of its own for a test (tests share one database)."""
    code = "t%d-%s" % (env.next_number(), branch.lower())
    ok(carrel("cora", "ticket", "queue", "save", code, "--name", "Test " + code, "--branch",
              branch, "--hours-branch", branch, *extra))
    return code


def open_ticket(user, q, *extra, subject="A question", question="Where are the 1901 census "
                "records?"):
    r = ok(carrel(user, "ticket", "open", "--queue", q, "--subject", subject, "--question",
                  question, *extra))
    return r["ticket"]["id"], r


def history(r):
    return [(m["kind"], m.get("username"), m.get("text", "")) for m in r.get("messages", [])]


def new_inquiry(user, question):
    """A tally recorded at the desk (part A's inquiry_add, as the daemon calls it)."""
    doc = harness.sql_literal('{"branch_code": "DWN", "kind": "reference", "read_level": 3,'
                              ' "channel": "phone", "question": "%s"}' % question)
    return int(env.psql("SELECT id FROM inquiry_add(gen_random_uuid(), %s, NULL, NULL, %s::jsonb)"
                        % (staff_id(user), doc)))


# ---------------------------------------------------------------- a ticket's life


class Life(unittest.TestCase):
    def test_a_ticket_from_tally_to_knowledge_base(self):
        addr = "ann.patron@example.org"
        inquiry = new_inquiry("clara", "Census records 1901")
        tid, r = open_ticket("clara", "ref-dwn", "--email", addr, "--channel", "phone",
                             "--inquiry", str(inquiry), subject="Census records 1901")
        t = r["ticket"]
        self.assertEqual((t["status"], t["queue"], t["reply_channel"], t["inquiry_id"],
                          t["created_by"]), ("new", "ref-dwn", "email", inquiry, "clara"))
        self.assertNotIn("owner", t)
        self.assertTrue(t.get("due_at"), t)
        # The tally knows its ticket.
        self.assertEqual(env.psql("SELECT ticket_id FROM inquiry WHERE id = %d" % inquiry),
                         str(tid))
        # Libby works the branch's queue: she claims it and notes something.
        r = ok(carrel("libby", "ticket", "claim", str(tid)))
        self.assertEqual(r["ticket"]["owner"], "libby")
        refused(carrel("clara", "ticket", "claim", str(tid)), "ticket_owned")
        ok(carrel("libby", "ticket", "note", str(tid), "Asked the genealogy desk"))
        # The reply from standard input, by email: the ticket waits for the patron.
        answer = "Dear Ann,\n.\nThe 1901 census is on microfilm in the local history room.\n"
        r = ok(carrel("libby", "ticket", "reply", str(tid), "-", input=answer))
        self.assertEqual(r["ticket"]["status"], "waiting")
        self.assertNotIn("due_at", r["ticket"])
        last = r["messages"][-1]
        self.assertEqual((last["kind"], last["sent_to"]), ("reply", addr))
        # The notice goes out through the relay, the ticket number in its subject.
        ok(carrel("cora", "notices", "run"))
        got = harness.wait_until(lambda: relay.messages(addr), what="the reply at the relay")
        self.assertEqual(len(got), 1)
        self.assertIn("ticket %d" % tid, got[0]["Subject"])
        self.assertIn("Census records 1901", got[0]["Subject"])
        body = got[0].get_content()
        self.assertIn("microfilm in the local history room", body)
        self.assertIn("\n.\n", body.replace("\r\n", "\n"))
        def sent():
            s = ok(carrel("libby", "ticket", "show", str(tid)))
            return s if any(m.get("delivery") == "sent" for m in s["messages"]) else None
        shown = harness.wait_until(sent, what="the reply marked sent")
        kinds = [k for k, _, _ in history(shown)]
        self.assertIn("note", kinds)
        self.assertIn("reply", kinds)
        # The patron answers by phone: open again; then to interlibrary loan.
        r = ok(carrel("libby", "ticket", "status", str(tid), "open", "--note", "Ann called"))
        self.assertEqual(r["ticket"]["status"], "open")
        self.assertTrue(r["ticket"].get("due_at"))
        r = ok(carrel("libby", "ticket", "transfer", str(tid), "ill"))
        self.assertEqual((r["ticket"]["queue"], r["ticket"].get("owner")), ("ill", None))
        # Libby does not work ill (a system queue without her): she no longer sees it.
        refused(carrel("libby", "ticket", "show", str(tid)), "not_queue_staff", code=4)
        # The coordinator sees every queue: closes it for the knowledge base.
        r = ok(carrel("cora", "ticket", "close", str(tid), "--kb"))
        self.assertEqual((r["ticket"]["status"], r["ticket"]["kb"]), ("closed", True))
        self.assertTrue(r["ticket"].get("closed_at"))
        refused(carrel("cora", "ticket", "note", str(tid), "late"), "ticket_closed")
        refused(carrel("cora", "ticket", "claim", str(tid)), "ticket_closed")
        r = ok(carrel("cora", "ticket", "reopen", str(tid)))
        self.assertEqual(r["ticket"]["status"], "open")
        r = ok(carrel("cora", "ticket", "close", str(tid)))
        # Every change is in the history, oldest first.
        shown = ok(carrel("cora", "ticket", "show", str(tid)))
        events = [text for kind, _, text in history(shown) if kind == "event"]
        self.assertGreaterEqual(len(events), 6, events)
        self.assertTrue(any("ill" in e for e in events), events)
        # The text view prints the ticket and its history.
        out = carrel("cora", "ticket", "show", str(tid), json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn("Ticket %d [closed] in ill" % tid, out.stdout)
        self.assertIn("Asked the genealogy desk", out.stdout)
        self.assertIn("-> %s" % addr, out.stdout)

    def test_reply_without_address_and_question_from_stdin(self):
        q = new_queue()
        r = ok(carrel("clara", "ticket", "open", "--queue", q, "--subject", "No contact",
                      input="A question read\nfrom standard input\n"))
        t = r["ticket"]
        self.assertEqual(t["question"], "A question read\nfrom standard input")
        self.assertEqual(t["reply_channel"], "none")
        refused(carrel("clara", "ticket", "reply", str(t["id"]), "Hello"), "no_reply_address")
        # A note is fine, and a reply that keeps it open (nothing to send) is still refused.
        ok(carrel("clara", "ticket", "note", str(t["id"]), "Called back instead"))

    def test_list_order_and_filters(self):
        q = new_queue()
        a, _ = open_ticket("clara", q, subject="first")
        b, _ = open_ticket("clara", q, subject="second")
        ok(carrel("dora", "ticket", "claim", str(b)))
        got = ok(carrel("clara", "tickets", "--queue", q))
        self.assertEqual([t["id"] for t in got["tickets"]], [a, b])
        mine = ok(carrel("dora", "tickets", "--queue", q, "--mine"))
        self.assertEqual([t["id"] for t in mine["tickets"]], [b])
        ok(carrel("clara", "ticket", "close", str(a)))
        self.assertEqual([t["id"] for t in ok(carrel("clara", "tickets", "--queue", q))
                          ["tickets"]], [b])
        both = ok(carrel("clara", "tickets", "--queue", q, "--status", "all"))
        self.assertEqual(sorted(t["id"] for t in both["tickets"]), [a, b])
        self.assertEqual(len(ok(carrel("clara", "tickets", "--queue", q, "--status", "all",
                                       "--limit", "1"))["tickets"]), 1)
        out = carrel("clara", "tickets", "--queue", q, json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn("second", out.stdout)
        refused(carrel("clara", "tickets", "--status", "lost"), "field:status")
        self.assertEqual(carrel("clara", "tickets", "--queue", q, "--limit", "501").code, 2)

    def test_a_retried_change_answers_the_same(self):
        """Sent again with the same request key (a lost answer), a reply is not queued
        twice and a note not written twice."""
        q = new_queue()
        tid, _ = open_ticket("clara", q, "--email", "retry@example.org")
        w = main.logged_in_wire(user="clara", password=PASSWORD)
        key = str(uuid.uuid4())
        body = harness.pb_message((1, tid), (2, "reply"), (3, "Once only"))
        first = w.call(REQ_POST, body, key=key)
        self.assertEqual(first.status, "ok", first)
        again = w.call(REQ_POST, body, key=key)
        self.assertEqual(again.status, "ok", again)
        # Opening twice with one key makes one ticket, and answers with it both times.
        key = str(uuid.uuid4())
        doc = harness.pb_message((1, harness.pb_message((2, q), (5, "Once"), (6, "Only once"))))
        opened = [w.call(REQ_OPEN, doc, key=key) for _ in range(2)]
        ids = [harness.pb_decode(r.body(REQ_OPEN)[1][0])[1][0] for r in opened]
        self.assertEqual(ids[0], ids[1], opened)
        self.assertEqual(env.psql("SELECT count(*) FROM ticket WHERE subject = 'Once'"
                                  " AND queue_id = (SELECT id FROM ticket_queue"
                                  " WHERE code = '%s')" % q), "1")
        # The same key for another request is refused.
        r = w.call(REQ_POST, harness.pb_message((1, tid), (2, "note"), (3, "x")), key=key)
        self.assertEqual((r.status, r.reason), ("conflict", "request_key_reused"), r)
        w.close()
        self.assertEqual(env.psql("SELECT count(*) FROM ticket_message WHERE ticket_id = %d"
                                  " AND kind = 'reply'" % tid), "1")
        self.assertEqual(env.psql("SELECT count(*) FROM notice n JOIN ticket_message m"
                                  " ON m.id = n.ticket_message_id WHERE m.ticket_id = %d" % tid),
                         "1")


# ---------------------------------------------------------------- who works what


class Permissions(unittest.TestCase):
    def test_queue_staff_and_the_coordinator(self):
        q = new_queue()
        tid, r = open_ticket("pia", q)  # anyone may open a ticket in any active queue
        self.assertEqual(r["ticket"]["id"], tid)
        # Pia (PRK, not a member of a DWN queue) may not work it or see it.
        refused(carrel("pia", "ticket", "show", str(tid)), "not_queue_staff")
        refused(carrel("pia", "ticket", "claim", str(tid)), "not_queue_staff")
        refused(carrel("pia", "ticket", "note", str(tid), "hi"), "not_queue_staff")
        self.assertNotIn(tid, [t["id"] for t in ok(carrel("pia", "tickets", "--status",
                                                            "all"))["tickets"]])
        # Assigning to someone who does not work the queue is refused too.
        refused(carrel("clara", "ticket", "assign", str(tid), "pia"), "not_queue_staff")
        refused(carrel("clara", "ticket", "assign", str(tid), "nobody"), "staff")
        # A named member at another branch works it.
        ok(carrel("cora", "ticket", "queue", "save", q, "--members", "paul"))
        assignee, bystander = Listener("paul"), Listener("pia")
        try:
            for listener in (assignee, bystander):
                listener.expect("Listening for events")
            r = ok(carrel("clara", "ticket", "assign", str(tid), "paul"))
            self.assertEqual(r["ticket"]["owner"], "paul")
            # The assignee hears of it at his own branch (PRK), the queue's branch named.
            line = assignee.expect("ticket_assigned ticket %d" % tid)
            self.assertTrue(line.startswith("[DWN] ticket_assigned ticket %d: " % tid), line)
        finally:
            for listener in (assignee, bystander):
                listener.close()
        self.assertEqual([x for x in bystander.seen if "ticket" in x], [])
        ok(carrel("paul", "ticket", "note", str(tid), "On it"))
        # The coordinator sees every queue.
        self.assertIn(tid, [t["id"] for t in ok(carrel("cora", "tickets", "--queue", q))
                            ["tickets"]])
        ok(carrel("cora", "ticket", "show", str(tid)))
        # Only coordinators and admins change queues.
        refused(carrel("libby", "ticket", "queue", "save", q, "--target-hours", "2"), "role")
        out = carrel("pia", "ticket", "queues", json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn(q, out.stdout)
        queues = ok(carrel("pia", "ticket", "queues"))["queues"]
        mine = [x for x in queues if x["code"] == q][0]
        self.assertEqual((mine["members"], mine["open_count"]), (["paul"], 1))
        self.assertIn("ref-prk", [x["code"] for x in queues])
        refused(carrel("clara", "ticket", "transfer", str(tid), "no-such-queue"), "ticket_queue")
        refused(carrel("clara", "ticket", "show", "999999999"), "ticket")
        # A save without --members keeps them; --no-members clears them (not both).

        def queue_row():
            return [x for x in ok(carrel("pia", "ticket", "queues"))["queues"]
                    if x["code"] == q][0]
        ok(carrel("cora", "ticket", "queue", "save", q, "--target-hours", "20"))
        self.assertEqual((queue_row()["members"], queue_row()["target_hours"]), (["paul"], 20))
        self.assertEqual(carrel("cora", "ticket", "queue", "save", q, "--no-members",
                                "--members", "paul").code, 2)
        ok(carrel("cora", "ticket", "queue", "save", q, "--no-members"))
        self.assertEqual(queue_row().get("members", []), [])
        refused(carrel("paul", "ticket", "show", str(tid)), "not_queue_staff")


# ---------------------------------------------------------------- escalation


class Escalation(unittest.TestCase):
    def test_flagged_then_escalated_pushed_to_the_queue_and_the_coordinator(self):
        """A one-hour target: the SLA clock is moved just past the 75% mark, then past the
        target (ticket_clock_offset_minutes), and the tickets timer (1 s) flags, then
        escalates, each once, each with an event to the queue's staff and to a
        coordinator listening to every branch."""
        q = new_queue("--target-hours", "1", "--members", "pia")
        member = Listener("pia", "--keepalive", "5")      # a named member at PRK
        branch_staff = Listener("dora")                   # works the DWN queue by branch
        coordinator = Listener("cora", "--all")
        # A coordinator at another branch, not subscribed for every branch: hears the
        # queue's events all the same (whatever the branch, as at `carrel desk`).
        plain_coordinator = Listener("cole")
        elsewhere = Listener("paul")                      # PRK, not a member
        listeners = (member, branch_staff, coordinator, plain_coordinator, elsewhere)
        try:
            for listener in listeners:
                listener.expect("Listening for events")
            tid, r = open_ticket("clara", q, subject="Escalate me")
            due = r["ticket"]["due_at"]
            self.assertTrue(due, r)

            def minutes_until(column):
                return int(env.psql(
                    "SELECT ceil(extract(epoch FROM %s - now()) / 60)::int + 1"
                    " FROM ticket WHERE id = %d" % (column, tid)))
            try:
                set_clock(minutes_until("flag_at"))
                line = member.expect("ticket_flagged ticket %d" % tid)
                self.assertTrue(line.startswith("[DWN] ticket_flagged ticket %d: " % tid), line)
                branch_staff.expect("ticket_flagged ticket %d" % tid)
                coordinator.expect("ticket_flagged ticket %d" % tid)
                plain_coordinator.expect("ticket_flagged ticket %d" % tid)
                t = ok(carrel("clara", "tickets", "--queue", q, "--flagged"))["tickets"]
                self.assertEqual([(x["id"], x.get("flagged"), x.get("escalated", False))
                                  for x in t], [(tid, True, False)])
                set_clock(minutes_until("due_at"))
                member.expect("ticket_escalated ticket %d" % tid)
                branch_staff.expect("ticket_escalated ticket %d" % tid)
                coordinator.expect("ticket_escalated ticket %d" % tid)
                plain_coordinator.expect("ticket_escalated ticket %d" % tid)
                over = ok(carrel("cora", "tickets", "--overdue"))["tickets"]
                self.assertEqual(over[0]["id"], tid)  # escalated first
                self.assertTrue(over[0]["escalated"])
                self.assertGreaterEqual(over[0]["used_pct"], 100)
            finally:
                set_clock(0)
            shown = ok(carrel("clara", "ticket", "show", str(tid)))
            timer = [text for kind, user, text in history(shown) if kind == "event" and not user]
            self.assertEqual(len(timer), 2, history(shown))
            # Waiting stops the clock: no due date while the patron has it.
            r = ok(carrel("clara", "ticket", "status", str(tid), "waiting"))
            self.assertNotIn("due_at", r["ticket"])
        finally:
            for listener in listeners:
                listener.close()
        # Once each, and never to a PRK clerk outside the queue.
        self.assertEqual(len([x for x in member.seen if "ticket_flagged ticket %d" % tid in x]),
                         1, member.seen)
        for kind in ("ticket_flagged", "ticket_escalated"):
            self.assertEqual(len([x for x in plain_coordinator.seen
                                  if "%s ticket %d" % (kind, tid) in x]), 1,
                             plain_coordinator.seen)
        self.assertEqual([x for x in elsewhere.seen if "ticket" in x], [])
        self.assertRegex(main.log_text(), r"tickets: \d+ flagged, \d+ escalated")

    def test_the_event_on_the_wire_carries_the_ticket_id(self):
        """Event.ticket_id (7) as a raw Subscribe sees it, to a member logged in at
        another branch than the queue's."""
        q = new_queue("--target-hours", "1", "--members", "pia")
        w = main.logged_in_wire(workstation="desk-prk", user="pia", password=PASSWORD)
        try:
            self.assertEqual(w.call(131, b"").status, "ok")  # Subscribe
            tid, _ = open_ticket("clara", q, subject="Wire event")
            flag = int(env.psql("SELECT ceil(extract(epoch FROM flag_at - now()) / 60)::int + 1"
                                " FROM ticket WHERE id = %d" % tid))
            try:
                set_clock(flag)
                while True:
                    r = w.recv()
                    self.assertIsNotNone(r, "the connection closed before the event")
                    ev = r.body(harness.RESP_EVENT)
                    if ev and ev.get(7, [0])[0] == tid:
                        break
            finally:
                set_clock(0)
        finally:
            w.close()
        self.assertEqual(ev[1][0].decode(), "ticket_flagged")
        self.assertEqual(ev[2][0].decode(), "DWN")
        self.assertTrue(ev[3][0], ev)  # a line of text for the desk


# ---------------------------------------------------------------- hostile input


class Hostile(unittest.TestCase):
    def test_malformed_ticket_requests_change_nothing(self):
        """Requests no client would send. Each is refused with its reason on the same
        connection, nothing is written, and the daemon serves on."""
        q = new_queue()
        tid, _ = open_ticket("clara", q)
        before = env.psql("SELECT count(*) FROM ticket") + "/" + env.psql(
            "SELECT count(*) FROM ticket_message")
        w = main.logged_in_wire(user="clara", password=PASSWORD)
        pb = harness.pb_message

        def ticket(**f):
            fields = {"queue": 2, "subject": 5, "question": 6, "card": 8, "contact_email": 10,
                      "contact_phone": 11, "reply_channel": 12, "channel": 13, "inquiry_id": 22}
            return pb(*[(fields[k], v) for k, v in f.items()])

        good = dict(queue=q, subject="s", question="q")
        cases = [
            (REQ_OPEN, pb(), "bad_request", "field:ticket"),
            (REQ_OPEN, pb((1, ticket(subject="s", question="q"))), "bad_request", "field:queue"),
            (REQ_OPEN, pb((1, ticket(**dict(good, subject="")))), "bad_request", "field:subject"),
            (REQ_OPEN, pb((1, ticket(**dict(good, subject="s" * 5000)))), "bad_request",
             "field:subject"),
            (REQ_OPEN, pb((1, ticket(**dict(good, question="q" * 40000)))), "bad_request",
             "field:question"),
            (REQ_OPEN, pb((1, ticket(**dict(good, subject="Hi\x1b[2J")))), "bad_request",
             "field:subject"),
            (REQ_OPEN, pb((1, ticket(**dict(good, reply_channel="pigeon")))), "bad_request",
             "field:reply_channel"),
            (REQ_OPEN, pb((1, ticket(**dict(good, channel="telepathy")))), "bad_request",
             "field:channel"),
            (REQ_OPEN, pb((1, ticket(**dict(good, queue="x'; DROP TABLE ticket; --")))),
             "not_found", "ticket_queue"),
            (REQ_OPEN, pb((1, ticket(**dict(good, contact_email="e" * 5000)))), "bad_request",
             "field:contact_email"),
            (REQ_OPEN, pb((1, ticket(**dict(good, inquiry_id=0)))), "bad_request",
             "field:inquiry_id"),
            (REQ_LIST, pb((7, 100000)), "bad_request", "field:limit"),
            (REQ_LIST, pb((5, "closed' OR '1'='1")), "bad_request", "field:status"),
            (REQ_LIST, pb((1, "q" * 10000)), "bad_request", "field:queue"),
            (REQ_SHOW, pb(), "bad_request", "field:id"),
            (REQ_SHOW, pb((1, 999999999)), "not_found", "ticket"),
            (REQ_CHANGE, pb((1, tid), (2, "explode")), "bad_request", "field:action"),
            (REQ_CHANGE, pb((1, tid)), "bad_request", "field:action"),
            (REQ_CHANGE, pb((1, tid), (2, "assign")), "bad_request", "field:to_username"),
            (REQ_CHANGE, pb((1, tid), (2, "transfer")), "bad_request", "field:to_queue"),
            (REQ_CHANGE, pb((1, tid), (2, "status"), (5, "closed")), "bad_request",
             "field:status"),
            (REQ_CHANGE, pb((1, tid), (2, "kb")), "bad_request", "field:kb"),
            (REQ_CHANGE, pb((1, tid), (2, "claim"), (7, "n" * 40000)), "bad_request",
             "field:note"),
            (REQ_CHANGE, pb((1, tid), (2, "assign"), (3, "u" * 10000)), "bad_request",
             "field:to_username"),
            (REQ_POST, pb((1, tid), (2, "shout"), (3, "x")), "bad_request", "field:kind"),
            (REQ_POST, pb((1, tid), (2, "note")), "bad_request", "field:text"),
            (REQ_POST, pb((1, tid), (2, "note"), (3, "t" * 40000)), "bad_request", "field:text"),
            (REQ_POST, pb((1, tid), (2, "note"), (3, "bell\x07")), "bad_request", "field:text"),
            (REQ_POST, pb((1, -5), (2, "note"), (3, "x")), "bad_request", "field:id"),
            (REQ_QUEUE_SAVE, pb((1, pb((2, "x")))), "forbidden", "role"),
        ]
        for body_field, body, status, reason in cases:
            keyed = body_field in (REQ_OPEN, REQ_CHANGE, REQ_POST)
            r = w.call(body_field, body, key=str(uuid.uuid4()) if keyed else None)
            self.assertIsNotNone(r, "the daemon closed the connection on %r" % (body[:40],))
            self.assertEqual((r.status, r.reason), (status, reason), (body[:60], r))
            self.assertTrue(r.message, r)
        # Keyed requests without a key, or with one that is no UUID.
        r = w.call(REQ_POST, pb((1, tid), (2, "note"), (3, "x")))
        self.assertEqual((r.status, r.reason), ("bad_request", "request_key"), r)
        r = w.call(REQ_OPEN, pb((1, ticket(**good))), key="not-a-uuid")
        self.assertEqual((r.status, r.reason), ("bad_request", "request_key"), r)
        # Invalid UTF-8 never reaches a handler.
        r = w.call(REQ_POST, pb((1, tid), (2, "note"), (3, b"\xff\xfe")), key=str(uuid.uuid4()))
        self.assertEqual(r.status, "bad_request", r)
        self.assertEqual(w.call(REQ_PING).status, "ok")
        w.close()
        after = env.psql("SELECT count(*) FROM ticket") + "/" + env.psql(
            "SELECT count(*) FROM ticket_message")
        self.assertEqual(after, before)
        # A coordinator's queue with too many members, or SQL in its code.
        w = main.logged_in_wire(user="cora", password=PASSWORD)
        r = w.call(REQ_QUEUE_SAVE, pb((1, pb((2, "big"), *[(8, "u%d" % i) for i in range(501)]))))
        self.assertEqual((r.status, r.reason), ("bad_request", "field:members"), r)
        r = w.call(REQ_QUEUE_SAVE, pb((1, pb((2, q), (8, "paul"))), (2, 1)))
        self.assertEqual((r.status, r.reason), ("bad_request", "field:clear_members"), r)
        r = w.call(REQ_QUEUE_SAVE, pb((1, pb((2, "x'; DROP TABLE ticket; --"), (3, "X")))))
        self.assertEqual((r.status, r.reason), ("bad_request", "field:code"), r)
        w.close()
        # Another desk is served as before.
        open_ticket("clara", q)


# ---------------------------------------------------------------- replies to patrons


class Replies(unittest.TestCase):
    def test_a_reply_goes_to_the_patrons_own_email(self):
        addr = "patron%d@example.org" % env.next_number()
        card = env.new_patron(email=addr, contact_channel="email")
        tid, r = open_ticket("clara", "ref-dwn", "--card", card, subject="Large print")
        t = r["ticket"]
        self.assertEqual((t["card"], t["reply_channel"]), (card, "email"))
        self.assertTrue(t["patron_name"])
        self.assertNotIn("contact_email", t)
        r = ok(carrel("libby", "ticket", "reply", str(tid), "We have it in large print.",
                      "--keep-open"))
        self.assertEqual(r["ticket"]["status"], "open")  # kept open: new -> open
        self.assertEqual(r["messages"][-1]["sent_to"], addr)
        ok(carrel("cora", "notices", "run"))
        got = harness.wait_until(lambda: relay.messages(addr), what="the reply at the relay")
        self.assertIn("ticket %d" % tid, got[0]["Subject"])
        self.assertIn("We have it in large print.", got[0].get_content())

    def test_an_sms_reply_goes_to_the_export(self):
        phone = "+1 555 %07d" % env.next_number()
        tid, r = open_ticket("clara", "ref-dwn", "--phone", phone, subject="Opening hours")
        self.assertEqual(r["ticket"]["reply_channel"], "sms")
        ok(carrel("libby", "ticket", "reply", str(tid), "We open at nine on Sundays."))
        # A notice without a patron is listed (no card) and exported like the others.
        listed = ok(carrel("cora", "notices", "--channel", "sms"))["notices"]
        self.assertIn(phone, [n["address"] for n in listed if "card" not in n])
        out = carrel("cora", "notices", "--channel", "sms", json_out=False)
        self.assertEqual(out.code, 0, out)
        self.assertIn("ticket_reply", out.stdout)
        path = os.path.join(env.dir, "tickets-sms-%d.csv" % tid)
        ok(carrel("cora", "notices", "export", "--channel", "sms", "-o", path))
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        mine = [row for row in rows if row["address"] == phone]
        self.assertEqual(len(mine), 1, rows)
        self.assertEqual((mine[0]["kind"], mine[0]["card"]), ("ticket_reply", ""))
        self.assertIn("We open at nine on Sundays.", mine[0]["body"])
        shown = ok(carrel("libby", "ticket", "show", str(tid)))
        self.assertEqual(shown["messages"][-1].get("delivery"), "exported")


# ---------------------------------------------------------------- retention


class Retention(unittest.TestCase):
    def test_closed_tickets_lose_the_patron_after_the_retention_period(self):
        """With ticket_retention_days 0, the tickets timer anonymises closed tickets at
        its next run: contact details, replies and notes go; the question stays only for
        the knowledge base; the history's event lines stay."""
        q = new_queue()
        plain, _ = open_ticket("clara", q, "--email", "forget.me@example.org",
                               subject="Private matter", question="About my fines")
        kept, _ = open_ticket("clara", q, "--email", "keep.q@example.org",
                              subject="Local history", question="Who built the mill?")
        for tid in (plain, kept):
            ok(carrel("clara", "ticket", "note", str(tid), "Internal remark"))
            ok(carrel("clara", "ticket", "reply", str(tid), "Our answer"))
        ok(carrel("clara", "ticket", "close", str(plain)))
        ok(carrel("clara", "ticket", "close", str(kept), "--kb"))
        env.psql("UPDATE library_setting SET value = '0' WHERE name = 'ticket_retention_days'")
        try:
            harness.wait_until(lambda: env.psql(
                "SELECT count(*) FROM ticket WHERE id IN (%d, %d) AND anonymised_at IS NOT NULL"
                % (plain, kept)) == "2", what="the tickets anonymised")
        finally:
            env.psql("UPDATE library_setting SET value = '90'"
                     " WHERE name = 'ticket_retention_days'")
        a = ok(carrel("clara", "ticket", "show", str(plain)))
        b = ok(carrel("clara", "ticket", "show", str(kept)))
        for shown in (a, b):
            t = shown["ticket"]
            self.assertTrue(t["anonymised"], t)
            self.assertNotIn("contact_email", t)
            texts = [m.get("text") for m in shown["messages"] if m["kind"] in ("reply", "note")]
            self.assertEqual(texts, [None, None], shown["messages"])
            self.assertTrue([m for m in shown["messages"] if m["kind"] == "event"])
        self.assertEqual((a["ticket"].get("subject", ""), a["ticket"].get("question", "")),
                         ("", ""))
        self.assertEqual((b["ticket"]["subject"], b["ticket"]["question"]),
                         ("Local history", "Who built the mill?"))
        self.assertEqual(env.psql("SELECT count(*) FROM notice n JOIN ticket_message m"
                                  " ON m.id = n.ticket_message_id WHERE m.ticket_id IN (%d, %d)"
                                  % (plain, kept)), "0")
        # Reopened, an anonymised ticket has nobody to reply to.
        ok(carrel("clara", "ticket", "reopen", str(kept)))
        refused(carrel("clara", "ticket", "reply", str(kept), "Hello again"), "no_reply_address")
        out = carrel("clara", "ticket", "show", str(kept), json_out=False)
        self.assertIn("(anonymised)", out.stdout)


if __name__ == "__main__":
    harness.main()
