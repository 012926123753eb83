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


def setUpModule():
    global env, standby
    env = harness.Env()
    try:
        env.start()
        standby = env.start_standby()
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


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


if __name__ == "__main__":
    harness.main()
