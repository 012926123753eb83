#!/usr/bin/env python3
"""Backup, restore and upgrade as docs/OPERATIONS.md (section backup) tells IT to do them:
WAL archiving and a base backup (pg_basebackup) of a cluster the real daemon works on, a
restore of that backup into a fresh cluster up to a named point in time, and
`carreld --migrate-only --dry-run`, which lists what an upgrade would apply and changes
nothing.

The clusters are the harness's (scripts/pg-cluster: archive, backup, restore)."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = "staff-password-123"
PG_CLUSTER = os.path.join(harness.SCRIPTS, "pg-cluster")
MIGRATIONS = sorted(f for f in os.listdir(os.path.join(harness.SOURCE, "sql", "migrations"))
                    if f.endswith(".sql"))
RULES = sorted(f for f in os.listdir(os.path.join(harness.SOURCE, "sql", "rules"))
               if f.endswith(".sql"))
# Everything a migration or a rule file can change, in one text: tables and their
# columns, functions with their bodies, triggers, views with their definitions, indexes,
# constraints (CHECK, keys, domains' checks); and the bookkeeping
# rows (BOOKKEEPING_SQL, once the tables exist).
SCHEMA_SQL = """
SELECT md5(string_agg(x, E'\\n' ORDER BY x)) FROM (
  SELECT 'class ' || c.relname || ' ' || c.relkind::text || ' ' ||
         coalesce((SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod),
                                     ',' ORDER BY a.attnum)
                     FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                      AND NOT a.attisdropped), '')
    FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'proc ' || p.oid::regprocedure::text || ' ' || md5(p.prosrc)
    FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'trigger ' || t.tgname || ' ' || t.tgrelid::regclass::text
    FROM pg_trigger t WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'index ' || i.indexrelid::regclass::text || ' ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
   WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'view ' || c.relname || ' ' || md5(pg_get_viewdef(c.oid))
    FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'constraint ' || co.conname || ' ' || co.conrelid::regclass::text || ' ' ||
         co.contypid::regtype::text || ' ' || pg_get_constraintdef(co.oid)
    FROM pg_constraint co WHERE co.connamespace = 'public'::regnamespace
) s(x)
"""
BOOKKEEPING_SQL = """
SELECT (SELECT string_agg(version || ' ' || coalesce(checksum, '-') || ' ' || applied_at, ','
                          ORDER BY version) FROM schema_migration),
       (SELECT checksum || ' ' || applied_at FROM schema_rules)
"""
env = None
main = None


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        # WAL archiving takes a restart (archive_mode); archive_command copies each
        # finished segment into the archive directory.
        env.archive = os.path.join(env.dir, "archive")
        env.run(PG_CLUSTER, "archive", env.pgdata, env.archive)
        env.stop_pg()
        env.start_pg()
        main = env.daemon()
        admin = env.profile(main)
        env.add_staff(admin, "clara", "clerk", "DWN", PASSWORD)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


def carreld(conninfo, *args):
    """carreld with a configuration whose db_conninfo is conninfo; the finished process."""
    d = harness.Daemon(env, db_conninfo=conninfo)
    d.write_config()
    proc = subprocess.run([harness.CARRELD, "-c", d.config] + list(args),
                          capture_output=True, text=True, timeout=300)
    for mark in harness.SANITIZER_MARKS:
        if mark in proc.stderr:
            raise AssertionError("sanitizer report from carreld:\n" + proc.stderr)
    return proc


def dry_run(conninfo):
    proc = carreld(conninfo, "--migrate-only", "--dry-run")
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout.splitlines()


def planned(lines, prefix):
    return [line[len(prefix):] for line in lines if line.startswith(prefix)]


class DryRun(unittest.TestCase):
    """--migrate-only --dry-run on a database of its own."""

    def setUp(self):
        self.db = "carrel_dry_%d" % env.next_number()
        env.psql("CREATE DATABASE %s OWNER carrel" % self.db)
        self.conninfo = "host=%s port=%d dbname=%s user=carrel" % (env.sockdir, env.pgport,
                                                                   self.db)
        self.admin = harness.Session("host=%s port=%d dbname=%s user=postgres"
                                     % (env.sockdir, env.pgport, self.db))

    def tearDown(self):
        self.admin.close()
        env.psql("DROP DATABASE %s" % self.db)

    def schema(self):
        text = self.admin.query(SCHEMA_SQL)
        if self.admin.query("SELECT to_regclass('schema_rules') IS NOT NULL") == "t":
            text += "\n" + self.admin.query(BOOKKEEPING_SQL)
        return text

    def test_empty_database_then_migrated(self):
        before = self.schema()
        lines = dry_run(self.conninfo)
        self.assertEqual(planned(lines, "would apply migration "), MIGRATIONS)
        self.assertEqual(planned(lines, "would apply rules/"), RULES)
        self.assertIn("database schema is at version 000, this carreld's newest is %s: "
                      "%d migrations to apply" % (MIGRATIONS[-1][:3], len(MIGRATIONS)), lines)
        # Not even the bookkeeping tables: nothing was created.
        self.assertEqual(self.schema(), before)
        self.assertEqual(self.admin.query(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"), "0")

        proc = carreld(self.conninfo, "--migrate-only")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        migrated = self.schema()
        self.assertNotEqual(migrated, before)
        lines = dry_run(self.conninfo)
        self.assertEqual(planned(lines, "would apply"), [], lines)
        self.assertIn("0 migrations to apply", lines[-2])
        self.assertEqual(lines[-1], "rules are current (%d files)" % len(RULES))
        self.assertEqual(self.schema(), migrated)

        # One migration not yet applied (as after installing a newer carreld), and
        # rules that differ from the ones last applied: both listed, neither applied.
        last = int(MIGRATIONS[-1][:3])
        self.admin.query("DELETE FROM schema_migration WHERE version = %d;"
                         " UPDATE schema_rules SET checksum = 'older rules'" % last)
        changed = self.schema()
        lines = dry_run(self.conninfo)
        self.assertEqual(planned(lines, "would apply migration "), [MIGRATIONS[-1]])
        self.assertEqual(planned(lines, "would apply rules/"), RULES)
        self.assertEqual(self.schema(), changed)
        self.assertEqual(self.admin.query("SELECT checksum FROM schema_rules"), "older rules")

        # A row recorded without a checksum (an older carreld): the start would record
        # it; the dry run says so and leaves it.
        self.admin.query("UPDATE schema_migration SET checksum = NULL WHERE version = %d"
                         % int(MIGRATIONS[-2][:3]))
        changed = self.schema()
        lines = dry_run(self.conninfo)
        self.assertEqual(planned(lines, "would record the checksum of migration "),
                         [MIGRATIONS[-2]])
        self.assertEqual(self.schema(), changed)

    def test_refusals_are_the_real_runs(self):
        """What the start would refuse, the dry run refuses the same way (exit 1, the
        reason on stderr), still changing nothing."""
        self.assertEqual(carreld(self.conninfo, "--migrate-only").returncode, 0)
        self.admin.query("INSERT INTO schema_migration (version, name, checksum)"
                         " VALUES (998, '998_from_the_future.sql', 'x')")
        before = self.schema()
        proc = carreld(self.conninfo, "--migrate-only", "--dry-run")
        self.assertEqual(proc.returncode, 1, proc)
        self.assertIn("the database schema is at version 998, newer than this carreld knows",
                      proc.stderr)
        self.assertNotIn("would apply", proc.stdout)
        self.assertEqual(self.schema(), before)

    def test_dry_run_alone_is_a_usage_error(self):
        proc = carreld(self.conninfo, "--dry-run")
        self.assertEqual(proc.returncode, 2, proc)
        self.assertIn("--dry-run goes with --migrate-only", proc.stderr)
        self.assertEqual(self.admin.query(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"), "0")


class SchemaFingerprint(unittest.TestCase):
    """SCHEMA_SQL sees a change to a view's definition or to a constraint alone (what a
    rules file might change), so the dry run's "schema unchanged" means something."""

    def test_views_and_constraints_count(self):
        db = "carrel_fp_%d" % env.next_number()
        env.psql("CREATE DATABASE %s OWNER carrel" % db)
        s = harness.Session("host=%s port=%d dbname=%s user=postgres"
                            % (env.sockdir, env.pgport, db))
        try:
            s.query("CREATE TABLE t (a integer CHECK (a > 0));"
                    " CREATE VIEW v AS SELECT a FROM t WHERE a > 1")
            first = s.query(SCHEMA_SQL)
            s.query("CREATE OR REPLACE VIEW v AS SELECT a FROM t WHERE a > 2")
            second = s.query(SCHEMA_SQL)
            self.assertNotEqual(second, first, "a view's definition changed unseen")
            s.query("ALTER TABLE t DROP CONSTRAINT t_a_check;"
                    " ALTER TABLE t ADD CONSTRAINT t_a_check CHECK (a > 5)")
            self.assertNotEqual(s.query(SCHEMA_SQL), second, "a CHECK changed unseen")
        finally:
            s.close()
            env.psql("DROP DATABASE %s" % db)


ARCHIVE_WAL = os.path.join(harness.SOURCE, "dist", "carrel-archive-wal")


class ArchiveCommand(unittest.TestCase):
    """dist/carrel-archive-wal, the archive_command OPERATIONS.md recommends and this
    file's cluster archives with (scripts/pg-cluster archive)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=env.dir)
        self.archive = os.path.join(self.dir, "archive")
        os.mkdir(self.archive)
        self.segment = os.path.join(self.dir, "segment")
        with open(self.segment, "wb") as f:
            f.write(os.urandom(65536))

    def tearDown(self):
        shutil.rmtree(self.dir)

    def archive_wal(self, src, name="000000010000000000000042"):
        return subprocess.run([ARCHIVE_WAL, src, name, self.archive],
                              capture_output=True, text=True, timeout=60)

    def archived(self, name="000000010000000000000042"):
        with open(os.path.join(self.archive, name), "rb") as f:
            return f.read()

    def test_the_cluster_archives_with_it(self):
        # pg-cluster copies it beside the archive: the server's user may not enter
        # the checkout (a home directory of mode 0700).
        copy = os.path.realpath(env.archive) + ".bin/carrel-archive-wal"
        self.assertEqual(env.psql("SHOW archive_command"),
                         "%s %%p %%f %s" % (copy, os.path.realpath(env.archive)))
        with open(copy, "rb") as a, open(ARCHIVE_WAL, "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_copies_and_leaves_no_temporary_file(self):
        proc = self.archive_wal(self.segment)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(self.segment, "rb") as f:
            self.assertEqual(self.archived(), f.read())
        self.assertEqual(os.listdir(self.archive), ["000000010000000000000042"])

    def test_an_identical_file_already_there_is_success(self):
        # PostgreSQL crashed after the copy, before it noted the success: it tries again.
        self.assertEqual(self.archive_wal(self.segment).returncode, 0)
        proc = self.archive_wal(self.segment)
        self.assertEqual((proc.returncode, proc.stderr), (0, ""))

    def test_a_different_file_is_refused_and_kept(self):
        self.assertEqual(self.archive_wal(self.segment).returncode, 0)
        kept = self.archived()
        other = os.path.join(self.dir, "other")
        with open(other, "wb") as f:
            f.write(b"not the same segment")
        proc = self.archive_wal(other)
        self.assertEqual(proc.returncode, 1, proc)
        self.assertIn("exists and differs", proc.stderr)
        self.assertEqual(self.archived(), kept)

    def test_a_crash_mid_copy_does_not_jam_it(self):
        # What a crash during the copy leaves: a partial temporary file, no real name.
        with open(os.path.join(self.archive, ".000000010000000000000042.tmp"), "wb") as f:
            f.write(b"partial")
        proc = self.archive_wal(self.segment)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(self.segment, "rb") as f:
            self.assertEqual(self.archived(), f.read())
        self.assertEqual(os.listdir(self.archive), ["000000010000000000000042"])

    def test_a_missing_source_fails_and_leaves_nothing(self):
        proc = self.archive_wal(os.path.join(self.dir, "absent"))
        self.assertNotEqual(proc.returncode, 0)
        self.assertEqual(os.listdir(self.archive), [])


class Restored:
    """backup restored into a fresh cluster of its own, recovered from the archive up to
    the target its settings name, promoted, on its own port and socket directory; with
    `with`, started and waited for (session: the superuser on it), stopped at the end."""

    def __init__(self, name, backup, *settings):
        self.datadir = os.path.join(env.dir, name)
        self.sockdir = tempfile.mkdtemp(prefix="crs-", dir="/tmp")
        self.port = harness.free_port()
        self.conninfo = "host=%s port=%d dbname=carrel user=carrel" % (self.sockdir, self.port)
        self.session = harness.Session("host=%s port=%d dbname=carrel user=postgres"
                                       % (self.sockdir, self.port))
        env.run(PG_CLUSTER, "restore", self.datadir, backup,
                "restore_command='cp %s/%%f %%p'" % env.archive,
                "recovery_target_action='promote'",
                # A trial restore: it must not write into the original's archive.
                "archive_mode='off'", *settings)

    def promoted(self):
        try:
            return self.session.query("SELECT pg_is_in_recovery()") == "f"
        except harness.SqlError:  # not accepting connections yet
            self.session.close()
            return False

    def __enter__(self):
        try:
            env.run(PG_CLUSTER, "start", self.datadir, str(self.port), self.sockdir, "--fast")
            harness.wait_until(self.promoted, 120, "the restored cluster to finish recovery")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        self.session.close()
        env.run(PG_CLUSTER, "stop", self.datadir, check=False)
        shutil.rmtree(self.sockdir, ignore_errors=True)


class PointInTimeRestore(unittest.TestCase):
    """A base backup plus the archived WAL, restored to a point into a fresh cluster
    (a named restore point, then a time): the loans made before the point are there,
    none made after."""

    def checkout(self, card, item):
        r = env.carrel(self.clerk, "checkout", card, item)
        self.assertEqual(r.code, 0, r)

    def loans_of(self, session, items):
        """The items of items out on loan in session's database (a Session or env)."""
        query = session.psql if session is env else session.query
        return query("SELECT i.barcode FROM loan l JOIN item i ON i.id = l.item_id"
                     " WHERE l.returned_at IS NULL AND i.barcode IN (%s)"
                     " ORDER BY i.barcode"
                     % ", ".join(harness.sql_literal(b) for b in items)).split()

    def test_restore_to_a_point(self):
        self.clerk = env.profile(main, "desk-dwn", "clara", PASSWORD)
        patrons = [env.new_patron() for _ in range(4)]
        items = [env.new_item(title="Backup test copy") for _ in range(5)]
        self.checkout(patrons[0], items[0])  # in the base backup itself

        backup = os.path.join(env.dir, "base-backup")
        env.run(PG_CLUSTER, "backup", backup, env.pgdata, str(env.pgport), env.sockdir)
        self.assertTrue(os.path.exists(os.path.join(backup, "base.tar.gz")))

        # After the backup: only the archived WAL brings these back.
        self.checkout(patrons[1], items[1])
        self.checkout(patrons[2], items[2])
        env.psql("SELECT pg_create_restore_point('before-the-mistake')")
        self.checkout(patrons[3], items[3])
        # A time after that checkout's commit (it was answered) and before the next.
        moment = env.psql("SELECT clock_timestamp()")
        self.checkout(patrons[1], items[4])
        self.assertEqual(self.loans_of(env, items), sorted(items))

        # The segment holding all of it, finished and archived.
        segment = env.psql("SELECT pg_walfile_name(pg_switch_wal())")

        def archived():
            last = env.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
            return last >= segment and os.path.exists(os.path.join(env.archive, segment))

        harness.wait_until(archived, 120, "segment %s to be archived" % segment)

        before, after = sorted(items[:3]), sorted(items[3:])
        with Restored("restored-by-name", backup,
                      "recovery_target_name='before-the-mistake'") as restored:
            self.assertEqual(self.loans_of(restored.session, items), before)
            self.assertEqual(restored.session.query(
                "SELECT count(*) FROM item WHERE status = 'available' AND barcode IN (%s)"
                % ", ".join(harness.sql_literal(b) for b in after)), str(len(after)))

            # The restored database is current for this carreld: nothing to migrate.
            lines = dry_run(restored.conninfo)
            self.assertEqual(planned(lines, "would apply"), [], lines)
            self.assertIn("0 migrations to apply", lines[-2])
            self.assertIn("rules are current", lines[-1])

            # And a daemon serves from it: the clerk checks in a loan from before.
            daemon = harness.Daemon(env, db_conninfo=restored.conninfo).start()
            try:
                clerk = env.profile(daemon, "desk-dwn", "clara", PASSWORD)
                r = env.carrel(clerk, "checkin", before[1])
                self.assertEqual(r.code, 0, r)
                self.assertEqual(self.loans_of(restored.session, items),
                                 [before[0], before[2]])
            finally:
                daemon.stop()

        with Restored("restored-by-time", backup,
                      "recovery_target_time='%s'" % moment) as restored:
            self.assertEqual(self.loans_of(restored.session, items), sorted(items[:4]))


if __name__ == "__main__":
    unittest.main()
