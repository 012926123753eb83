#!/usr/bin/env python3
"""Statistics from a hot standby: a real streaming replica of the test cluster
(pg_basebackup -R on this machine, harness.Standby) answers the statistics
queries when stats_conninfo points at it, while desks keep writing to the
primary; when it is down, stats answer unavailable (or come from the primary
with stats_fallback_primary) and desks are never affected."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

env = None
standby = None
# A daemon whose statistics come from the standby, and one that falls back to the primary.
main = None
fallback = None
BRANCH_DESKS = {"desk-dwn": "DWN", "desk-prk": "PRK", "desk-alb": "ALB"}


def setUpModule():
    global env, standby, main, fallback
    env = harness.Env()
    try:
        env.start()
        standby = env.start_standby()
        main = env.daemon(stats_conninfo=standby.conninfo, db_pool_size=4)
        env.add_workstations(env.profile(main), {"desk-prk": "PRK", "desk-alb": "ALB"})
        fallback = env.daemon(stats_conninfo=standby.conninfo, stats_fallback_primary=True)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


def carrel(daemon, *args, ws="desk-dwn"):
    return env.carrel(env.profile(daemon, ws), *args)


def checkouts_by_branch(daemon):
    """Today's checkouts by branch as `carrel stats` answers: ({code: n}, served_by),
    or the failed Result."""
    r = carrel(daemon, "stats", "checkouts", "--by", "branch")
    if r.code != 0:
        return r
    reply = r.json
    return {row["key"][0]: int(row["value"]) for row in reply["rows"]}, reply["served_by"]


def checkouts_on_primary():
    """The same figure counted from the raw events on the primary."""
    out = env.psql("SELECT b.code || '=' || count(*) FROM circ_event e"
                   " JOIN branch b ON b.id = e.branch_id WHERE e.action = 'checkout'"
                   " AND library_local_date(e.at) = library_today() GROUP BY b.code")
    return {line.split("=")[0]: int(line.split("=")[1]) for line in out.split()}


def desk_checkouts(ws, n):
    """n checkouts at workstation ws on the primary, each of a new item and patron of
    the desk's branch; every one must succeed."""
    branch = BRANCH_DESKS[ws]
    for _ in range(n):
        card = env.new_patron(branch=branch)
        item = env.new_item(branch=branch, title="Standby test copy")
        r = carrel(main, "checkout", card, item, ws=ws)
        assert r.code == 0, r


def standby_answers(daemon):
    """True once the daemon's stats come from the standby again (it reconnects by itself)."""
    got = checkouts_by_branch(daemon)
    return isinstance(got, tuple) and got[1] == "standby"


class Replica(unittest.TestCase):
    """The harness's standby itself: read-only, and it follows the primary."""

    def test_follows_the_primary_read_only(self):
        self.assertEqual(standby.psql("SELECT pg_is_in_recovery()"), "t")
        title = "Standby title %d" % env.next_number()
        bib = env.new_bib(title)
        standby.wait_replayed()
        self.assertEqual(standby.psql("SELECT id FROM bib WHERE title = %s"
                                      % harness.sql_literal(title)), str(bib))
        with self.assertRaises(harness.SqlError) as e:
            standby.psql("INSERT INTO bib (marc, title) VALUES ('\\x00', 'never')")
        self.assertEqual(e.exception.sqlstate, "25006")  # read_only_sql_transaction

    def test_stop_and_start_again_catches_up(self):
        standby.stop()
        title = "Written while the standby was down %d" % env.next_number()
        env.new_bib(title)
        with self.assertRaises(harness.SqlError):
            standby.psql("SELECT 1")
        standby.start()  # waits until it has replayed what the primary wrote meanwhile
        self.assertEqual(standby.psql("SELECT count(*) FROM bib WHERE title = %s"
                                      % harness.sql_literal(title)), "1")


class ServedByStandby(unittest.TestCase):
    def test_reports_from_the_standby_while_desks_write_to_the_primary(self):
        # Desks at three branches check out on the primary while reports are asked.
        answers = harness.run_parallel(
            lambda *job: (desk_checkouts(*job[1:]) if job[0] == "desk"
                         else [checkouts_by_branch(main) for _ in range(5)]),
            [("desk", "desk-dwn", 4), ("desk", "desk-prk", 3), ("desk", "desk-alb", 2),
             ("stats",)])
        for got in answers[3]:
            self.assertIsInstance(got, tuple, got)  # never refused while desks write
            self.assertEqual(got[1], "standby")
        standby.wait_replayed()
        counts, served_by = checkouts_by_branch(main)
        self.assertEqual(served_by, "standby")
        primary = checkouts_on_primary()
        self.assertGreaterEqual(primary.get("PRK", 0), 3)
        self.assertGreaterEqual(primary.get("ALB", 0), 2)
        self.assertEqual(counts, primary)
        # The standby really answered: the session that did is in recovery.
        self.assertEqual(standby.psql("SELECT pg_is_in_recovery()"), "t")


class StandbyDown(unittest.TestCase):
    def tearDown(self):
        if not standby.running:
            standby.start()

    def test_unavailable_then_back_and_desks_never_affected(self):
        standby.stop()
        r = carrel(main, "stats", "checkouts", "--by", "branch")
        self.assertEqual(r.code, 4, r)  # UNAVAILABLE: the reason table's exit code
        self.assertEqual(r.json["reason"], "stats_unavailable", r)
        self.assertIn("standby", r.json["message"])
        self.assertIn("desks are not affected", r.json["message"])
        text = env.carrel(env.profile(main), "stats", "checkouts", json_out=False)
        self.assertEqual(text.code, 4, text)
        self.assertIn("stats_unavailable", text.stderr)
        # Desks go on as before, on the primary.
        before = checkouts_on_primary().get("DWN", 0)
        desk_checkouts("desk-dwn", 3)
        self.assertEqual(checkouts_on_primary().get("DWN", 0), before + 3)
        self.assertIsNone(main.proc.poll(), "the daemon must keep running")
        # The standby returns: statistics come from it again, caught up.
        standby.start()
        harness.wait_until(lambda: standby_answers(main), 60, "stats from the standby again")
        standby.wait_replayed()
        self.assertEqual(checkouts_by_branch(main), (checkouts_on_primary(), "standby"))

    def test_fallback_to_the_primary_when_allowed(self):
        harness.wait_until(lambda: standby_answers(fallback), 60, "stats from the standby")
        standby.stop()
        desk_checkouts("desk-prk", 2)  # written while the standby is down
        got = checkouts_by_branch(fallback)
        self.assertIsInstance(got, tuple, got)
        self.assertEqual(got, (checkouts_on_primary(), "primary"))
        # The daemon without the fallback still refuses meanwhile.
        self.assertEqual(carrel(main, "stats", "checkouts").code, 4)
        standby.start()
        harness.wait_until(lambda: standby_answers(fallback), 60, "stats from the standby again")


if __name__ == "__main__":
    harness.main()
