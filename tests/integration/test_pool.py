#!/usr/bin/env python3
"""The database pool and the daemon's memory under load: a row locked by
another session must not stop the library (lock, statement and queue
deadlines, connections kept for logins and reads); refusals stay out of the
PostgreSQL server log while unexpected errors reach carreld's; clients that
stop reading cannot make the daemon hold unbounded output."""

import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import pb_message  # noqa: E402

REQ_BRANCH_LIST, REQ_CATALOG_SEARCH, REQ_CHECKOUT = 15, 40, 80
RESP_CATALOG_SEARCH = 40
env = None


def new_item(title="Pool test copy"):
    return env.new_item(title=title, price_cents=1000)


def new_patron():
    return env.new_patron(first="Pool")


def wait_for(what, predicate, timeout=60):
    return harness.wait_until(predicate, timeout, what)


def desk(daemon):
    """A logged-in raw connection with the workstation's certificate."""
    w = daemon.wire(cert="desk-dwn", timeout=60)
    r = w.hello()
    assert r.status == "ok", r
    r = w.login("desk-dwn", "admin", harness.ADMIN_PASSWORD)
    assert r.status == "ok", r
    return w


def recv_answer(w, rid):
    while True:
        r = w.recv()
        if r is None or r.id == rid:
            return r


class RowLock:
    """A harness SQL session holding one item row FOR UPDATE in an open transaction."""

    def __init__(self, barcode):
        self.session = env.session()
        out = self.session.query("BEGIN; SELECT 'locked' FROM item WHERE barcode = '%s' "
                                 "FOR UPDATE" % barcode, keep_transaction=True)
        if out.splitlines()[-1:] != ["locked"]:
            self.release()
            raise AssertionError("the harness could not lock the row: %r" % out)

    def release(self):
        if self.session.conn is not None:
            self.session.query("COMMIT")
            self.session.close()


def lock_waiters():
    return int(env.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'carrel'"
                        " AND wait_event_type = 'Lock'"))


def pg_log_size():
    return os.path.getsize(os.path.join(env.pgdata, "server.log"))


def pg_log_since(offset):
    with open(os.path.join(env.pgdata, "server.log"), errors="replace") as f:
        f.seek(offset)
        return f.read()


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


class LockedRow(unittest.TestCase):
    """Item 26: one row locked elsewhere must not stop logins, reads or other changes."""

    def test_locked_row_blocks_only_its_own_desks(self):
        # 6 connections, 2 kept for reads: at most 4 checkouts wait on the lock.
        d = env.daemon(db_pool_size=6, db_pool_reserved_reads=2, db_lock_timeout_ms=10000,
                       db_statement_timeout_ms=30000, db_queue_timeout_ms=60000,
                       max_inflight=256)
        try:
            locked, other = new_item(), new_item()
            cards = [new_patron() for _ in range(7)]
            desks = [desk(d) for _ in range(6)]
            reader = desk(d)
            holder = RowLock(locked)
            try:
                keys = [str(uuid.uuid4()) for _ in desks]
                ids = [w.send(REQ_CHECKOUT, pb_message((1, cards[i]), (2, locked)), key=keys[i])
                       for i, w in enumerate(desks)]
                wait_for("four checkouts waiting on the lock", lambda: lock_waiters() == 4)
                # The pool's writers are all stuck: reads and logins still pass at once.
                r = reader.call(REQ_BRANCH_LIST)
                self.assertEqual(r.status, "ok", r)
                late = desk(d)  # a new login
                self.assertEqual(late.call(REQ_BRANCH_LIST).status, "ok")
                late.close()
                # Answered while the four checkouts still wait: without the reserved
                # connections the reads would have waited for a lock timeout to free one.
                self.assertEqual(lock_waiters(), 4, "reads waited behind the locked row")
                res = env.carrel(env.profile(d), "branches")
                self.assertEqual(res.code, 0, res)
                self.assertTrue(holder.session.alive(), "the lock holder went away")
                # Another change (a checkout of another item) is served after one round.
                r = reader.call(REQ_CHECKOUT, pb_message((1, cards[6]), (2, other)),
                                key=str(uuid.uuid4()))
                self.assertEqual(r.status, "ok", r)
                # Each desk on the locked item is answered: busy, safe to retry.
                answers = [recv_answer(w, ids[i]) for i, w in enumerate(desks)]
                # lock_timeout applies to each lock a statement waits for (the row's queue,
                # then the holder), so a later one may meet the statement timeout first.
                lock_msg = "Another desk is changing the same record; try again."
                slow_msg = "The database took too long to answer; try again."
                for a in answers:
                    self.assertIsNotNone(a)
                    self.assertEqual((a.status, a.reason), ("unavailable", "busy"), a)
                    self.assertIn(a.message, (lock_msg, slow_msg))
                self.assertIn(lock_msg, [a.message for a in answers])
                self.assertTrue(holder.session.alive(), "the lock holder went away")
            finally:
                holder.release()
            # Nothing committed: the same key now checks the item out.
            r = desks[0].call(REQ_CHECKOUT, pb_message((1, cards[0]), (2, locked)), key=keys[0])
            self.assertEqual(r.status, "ok", r)
            # carreld logged the lock timeouts (unexpected errors), not the refusals.
            self.assertIn("database error in circ_checkout: 55P03", d.log_text())
            for w in desks + [reader]:
                w.close()
        finally:
            d.stop()

    def test_queued_job_has_a_deadline(self):
        # 2 connections, 1 kept for reads: one checkout waits on the lock, the next waits
        # for a connection and is answered when its queue deadline passes.
        d = env.daemon(db_pool_size=2, db_pool_reserved_reads=1, db_lock_timeout_ms=20000,
                       db_queue_timeout_ms=500)
        try:
            locked = new_item()
            cards = [new_patron() for _ in range(2)]
            desks = [desk(d) for _ in range(2)]
            holder = RowLock(locked)
            try:
                first = desks[0].send(REQ_CHECKOUT, pb_message((1, cards[0]), (2, locked)),
                                      key=str(uuid.uuid4()))
                wait_for("a checkout waiting on the lock", lambda: lock_waiters() == 1)
                second = desks[1].send(REQ_CHECKOUT, pb_message((1, cards[1]), (2, locked)),
                                       key=str(uuid.uuid4()))
                a = recv_answer(desks[1], second)
                self.assertEqual((a.status, a.reason), ("unavailable", "overloaded"), a)
                self.assertEqual(lock_waiters(), 1, "the first one should still be waiting")
                wait_for("the queue deadline logged",
                         lambda: "waited over 500 ms for a connection" in d.log_text())
            finally:
                holder.release()
            a = recv_answer(desks[0], first)
            self.assertEqual(a.status, "ok", a)
            for w in desks:
                w.close()
        finally:
            d.stop()


class LongStatements(unittest.TestCase):
    """Bulk and background statements (an import batch, the hourly jobs) grow with the
    library: they run under db_long_statement_timeout_ms, not the desks' statement timeout."""

    def test_import_batch_outlasts_the_statement_timeout(self):
        # A trigger makes every bib insert or update wait for the test's advisory lock; no
        # lock timeout, so only a statement timeout can end the wait.
        env.psql("CREATE FUNCTION test_wait_for_4242() RETURNS trigger LANGUAGE plpgsql AS"
                 " $$BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NEW; END$$;"
                 " CREATE TRIGGER test_wait_for_4242 BEFORE INSERT OR UPDATE ON bib"
                 " FOR EACH ROW EXECUTE FUNCTION test_wait_for_4242()")
        d = env.daemon(db_statement_timeout_ms=1000, db_lock_timeout_ms=0)
        try:
            profile = env.profile(d)
            source = os.path.join(harness.SOURCE, "tests", "data", "marc", "camel-10.mrc")
            waited = "SELECT count(*) FROM pg_stat_activity WHERE datname = 'carrel'" \
                     " AND wait_event = 'advisory' AND query LIKE '%bib_import_batch%'" \
                     " AND now() - query_start > interval '3 s'"
            with harness.AdvisoryLock(env, 4242):
                proc = subprocess.Popen(
                    [harness.CARREL, "-c", profile, "--json", "import", "marc", source,
                     "--branch", "DWN"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True)
                # Three times the statement timeout, or the import gave up (the bug).
                wait_for("the batch waiting past the statement timeout",
                         lambda: int(env.psql(waited)) > 0 or proc.poll() is not None)
                if proc.poll() is not None:
                    self.fail("the import ended while the lock was held: %s %s"
                              % proc.communicate())
            out, err = proc.communicate(timeout=120)
            self.assertEqual(proc.returncode, 0, err)
            r = json.loads(out)
            self.assertEqual(r["failed"], 0, r)
            self.assertEqual(r["created"] + r["updated"], 10, r)
            # The desks' statements keep the short bound, on every connection (including
            # the one the batch used: 4 reads in parallel take all of them).
            desks = [desk(d) for _ in range(4)]
            with harness.TableLock(env, "bib"):
                ids = [w.send(REQ_CATALOG_SEARCH, pb_message((1, "perl"), (10, 5)))
                       for w in desks]
                for w, rid in zip(desks, ids):
                    a = recv_answer(w, rid)
                    self.assertEqual((a.status, a.reason), ("unavailable", "busy"), a)
                    self.assertEqual(a.message, "The database took too long to answer; try again.")
            for w in desks:
                w.close()
        finally:
            d.stop()
            env.psql("DROP TRIGGER test_wait_for_4242 ON bib; DROP FUNCTION test_wait_for_4242()")


class PrepareUnderLock(unittest.TestCase):
    def test_table_locked_while_connecting_is_not_fatal(self):
        # Statements are prepared on each new connection; a table locked past lock_timeout
        # (a DBA's ALTER TABLE or VACUUM FULL) must delay it, not stop the daemon as if the
        # schema did not match.
        with harness.TableLock(env, "bib"):
            d = env.daemon(db_lock_timeout_ms=200)
            try:
                wait_for("a prepare timed out", lambda: "cannot prepare statement" in
                         d.log_text() or d.proc.poll() is not None)
                self.assertIsNone(d.proc.poll(), d.log_text()[-2000:])
            except BaseException:
                d.stop()
                raise
        try:
            w = wait_for("a login once the table is free", lambda: self._login(d))
            self.assertEqual(w.call(REQ_BRANCH_LIST).status, "ok")
            w.close()
            self.assertNotIn("schema mismatch", d.log_text())
        finally:
            d.stop()

    @staticmethod
    def _login(d):
        try:
            return desk(d)
        except AssertionError:  # answered unavailable while connections are prepared
            return None


class QuietRefusals(unittest.TestCase):
    """Item 29: refusals are answers, not errors in the PostgreSQL log."""

    def test_refusals_leave_no_errors_in_the_server_log(self):
        d = env.daemon()
        try:
            w = desk(d)
            card, item = new_patron(), new_item()
            r = w.call(REQ_CHECKOUT, pb_message((1, card), (2, item)), key=str(uuid.uuid4()))
            self.assertEqual(r.status, "ok", r)
            start = pg_log_size()
            n = 30
            for _ in range(n):
                # The item is on loan: an ordinary refusal, raised as CR4xx by SQL.
                r = w.call(REQ_CHECKOUT, pb_message((1, new_patron()), (2, item)),
                           key=str(uuid.uuid4()))
                self.assertIn(r.status, ("conflict", "refused"), r)
            errors = [l for l in pg_log_since(start).splitlines() if "ERROR:" in l]
            self.assertEqual(errors, [], "refusals were logged by PostgreSQL")
            self.assertNotIn("cannot set log_min_messages", d.log_text())
            self.assertNotIn("database error in", d.log_text())
            # An unexpected error is still logged, by carreld, with its statement.
            env.psql("REVOKE SELECT ON branch FROM carrel")
            try:
                r = w.call(REQ_BRANCH_LIST)
            finally:
                env.psql("GRANT SELECT ON branch TO carrel")
            self.assertEqual((r.status, r.reason), ("internal", "internal"), r)
            self.assertIn("database error in admin_branch_list: 42501", d.log_text())
            w.close()
        finally:
            d.stop()

    def test_missing_grant_is_a_warning(self):
        env.psql("REVOKE SET ON PARAMETER log_min_messages FROM carrel")
        try:
            d = env.daemon()
            try:
                w = desk(d)  # it serves all the same
                self.assertEqual(w.call(REQ_BRANCH_LIST).status, "ok")
                w.close()
                wait_for("the warning", lambda: "cannot set log_min_messages" in d.log_text())
            finally:
                d.stop()
        finally:
            env.psql("GRANT SET ON PARAMETER log_min_messages TO carrel")


class QuietRefusalsSetup(unittest.TestCase):
    def test_migration_grants_when_run_by_a_superuser(self):
        privilege = "SELECT has_parameter_privilege('carrel', 'log_min_messages', 'SET')"
        env.psql("REVOKE SET ON PARAMETER log_min_messages FROM carrel")
        try:
            self.assertEqual(env.psql(privilege), "f")
            env.psql_file(os.path.join(harness.SOURCE, "sql", "migrations", "011_quiet_refusals.sql"))
            self.assertEqual(env.psql(privilege), "t")
        finally:
            env.psql("GRANT SET ON PARAMETER log_min_messages TO carrel")


class NonReader(harness.Wire):
    """A desk with a tiny receive buffer, so what it does not read stays in carreld."""

    def __init__(self, daemon):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(60)
        raw.connect(("127.0.0.1", daemon.port))
        self.sock = env.client_context("desk-dwn").wrap_socket(raw, server_hostname="localhost")
        self.next_id = 0
        self.buffer = b""


class OutputCap(unittest.TestCase):
    """Item 28: the output held for clients that stop reading is bounded as a whole."""

    def test_total_output_cap_drops_slowest_readers(self):
        env.psql("INSERT INTO bib (marc, title) SELECT '\\x00', 'Outputcap ' || g || ' '"
                 " || repeat('filler ', 60) FROM generate_series(1, 100) g")
        search = pb_message((1, "outputcap"), (10, 100))
        # Each client alone stays under write_high_water; together they pass the total.
        d = env.daemon(max_output_total_bytes=2 * 1024 * 1024, write_high_water=64 * 1024 * 1024,
                       max_inflight=100000, log_level="debug")
        try:
            w = desk(d)
            r = w.call(REQ_CATALOG_SEARCH, search)
            self.assertEqual(r.status, "ok", r)
            self.assertGreater(len(r.fields[RESP_CATALOG_SEARCH][0]), 30000, "reply too small")
            w.close()
            hogs = []
            for _ in range(3):
                h = NonReader(d)
                self.assertEqual(h.hello().status, "ok")
                self.assertEqual(h.login("desk-dwn", "admin", harness.ADMIN_PASSWORD).status,
                                 "ok")
                hogs.append(h)
            # In turns, ~400 KB of replies each, never read, until the total is passed
            # (the kernel's socket buffers take an unknown part first).
            sent = 0
            for _ in range(100):
                if "over max_output_total_bytes" in d.log_text():
                    break
                for h in hogs:
                    h.send_raw(b"".join(h.frame(REQ_CATALOG_SEARCH, search)[1] for _ in range(10)))
                    sent += 10
                    # The debug log has a line per answer: wait for this turn's.
                    wait_for("replies queued", lambda: "over max_output_total_bytes" in
                             d.log_text() or d.log_text().count("catalog_search id=") >= sent + 1)
            wait_for("a slow reader dropped",
                     lambda: "over max_output_total_bytes" in d.log_text(), timeout=120)
            wait_for("the drop logged as a close",
                     lambda: "output limit for all clients reached" in d.log_text())
            # Only as many as needed to come back under the total: not all of them.
            drops = d.log_text().count("output limit for all clients reached")
            self.assertLess(drops, 3, d.log_text()[-3000:])
            # Everyone else is served as usual.
            w = desk(d)
            r = w.call(REQ_CATALOG_SEARCH, search)
            self.assertEqual(r.status, "ok", r)
            w.close()
            for h in hogs:
                h.close()
        finally:
            d.stop()


if __name__ == "__main__":
    harness.main()
