#!/usr/bin/env python3
"""The benchmark tools' own modes, briefly, against a real daemon (issue 15): so that
scripts/bench's measurements cannot silently break. carrel-bench and raw-desk run for a
second or two at a few desks; each test checks the keys of the line printed and errors=0:
PostgreSQL's CPU per operation (-C, children that exit inside the window included, a
postmaster gone failing the run), the open loop (-R: unanswered scans counted in the tail,
the bench's own send lag), desks sharing a session token (-S) or each with its own (-K),
logins sent again when the daemon says "try later", and the login workload's two rounds
(password, then session token)."""

import os
import resource
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BENCH = os.path.join(harness.BUILD, "tests", "bench", "carrel-bench")
RAW_DESK = os.path.join(harness.BUILD, "tests", "bench", "raw-desk")
env = None
daemon = None
profile = None


def setUpModule():
    global env, daemon, profile
    env = harness.Env()
    try:
        env.start()
        # scripts/bench's circ fixtures, small: desks 0-3 (carrel-bench) and 32-33 (raw-desk).
        env.psql("""
INSERT INTO bib (marc, title) VALUES ('\\x00', 'Bench title');
INSERT INTO patron (card, first_name, last_name, home_branch_id, category, expires_on)
SELECT format('BENCH-P-%s', lpad(d::text, 5, '0')), 'Desk', 'Patron' || d, 1, 'adult',
       '2099-01-01'
FROM generate_series(0, 33) d;
INSERT INTO item (barcode, bib_id, owning_branch_id, current_branch_id, item_type)
SELECT format('BENCH-I-%s-%s', lpad(d::text, 5, '0'), lpad(k::text, 2, '0')),
       (SELECT id FROM bib WHERE title = 'Bench title'), 1, 1, 'book'
FROM generate_series(0, 33) d, generate_series(0, 9) k;
""")
        # OpenFiles opens a few hundred desks from 127.0.0.1.
        daemon = env.daemon(max_connections_per_address=1000)
        profile = env.profile(daemon, cert=False)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


def fields(line):
    """A bench line's key=value pairs."""
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def bench(*args, profile_path=None, timeout=300):
    r = env.run(BENCH, "-c", profile_path or profile, *args, timeout=timeout)
    for mark in harness.SANITIZER_MARKS:
        assert mark not in r.stderr, r.stderr
    return r.stdout.strip().splitlines()


def bench_until_ready(*args, profile_path=None):
    """carrel-bench started in the background, returned once every desk is logged in
    (its "all N connections ready"), with what it said so far on stderr."""
    p = subprocess.Popen([BENCH, "-c", profile_path or profile, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    said = []
    for line in p.stderr:
        said.append(line)
        if "connections ready" in line:
            return p, said
    p.wait(timeout=60)
    raise AssertionError("carrel-bench ended before its desks were ready:\n" + "".join(said))


def finish(p, said, timeout=300):
    out, err = p.communicate(timeout=timeout)
    err = "".join(said) + err
    for mark in harness.SANITIZER_MARKS:
        assert mark not in err, err
    return p.returncode, out.strip().splitlines(), err


def reset():
    """Whatever the desks left checked out comes back (no checkout is refused next)."""
    env.psql("SELECT count(*) FROM item i, LATERAL circ_checkin(gen_random_uuid(), 1, 1, 1,"
             " i.barcode, NULL) c WHERE i.barcode LIKE 'BENCH-I-%'"
             " AND i.status = 'checked_out'")


class PgCpu(unittest.TestCase):
    """pg_cpu_ms_per_op: PostgreSQL's children's CPU over the measured window."""

    def test_circ_prints_pg_cpu_per_op_and_per_pair(self):
        reset()
        [line] = bench("-n", "2", "-d", "2", "-w", "0.5", "-C", env.pgdata, "circ")
        f = fields(line)
        self.assertEqual(f["workload"], "circ", line)
        self.assertEqual(f["errors"], "0", line)
        self.assertGreater(int(f["ops"]), 0, line)
        # Checkouts and checkins cost the database something, and a pair is two ops.
        self.assertGreater(float(f["pg_cpu_ms_per_op"]), 0, line)
        self.assertAlmostEqual(float(f["pg_cpu_ms_per_pair"]),
                               2 * float(f["pg_cpu_ms_per_op"]), delta=0.002)
        for key in ("pg_cpu_ms", "checkout_p99_ms", "login_retries", "reconnects"):
            self.assertIn(key, f, line)

    def test_postmaster_pid_works_as_well_as_the_data_directory(self):
        with open(os.path.join(env.pgdata, "postmaster.pid")) as pidfile:
            pid = pidfile.readline().strip()
        [line] = bench("-n", "1", "-d", "1", "-w", "0.2", "-C", pid, "branches")
        f = fields(line)
        self.assertEqual(f["errors"], "0", line)
        self.assertIn("pg_cpu_ms_per_op", f, line)
        self.assertNotIn("pg_cpu_ms_per_pair", f, line)

    def test_raw_desk_prints_pg_cpu(self):
        reset()
        ids = env.psql("SELECT s.id || ' ' || w.id || ' ' || w.branch_id FROM staff s,"
                       " workstation w WHERE s.username = 'admin' AND w.name = 'desk-dwn'")
        r = env.run(RAW_DESK, "-C", env.pgdata, daemon.settings["db_conninfo"], "2", "1.5",
                    "0.3", "circ", *ids.split(), timeout=120)
        f = fields(r.stdout.strip())
        self.assertEqual(f["workload"], "raw-circ", r.stdout)
        self.assertEqual(f["errors"], "0", r.stdout)
        self.assertGreater(float(f["pg_cpu_ms_per_op"]), 0, r.stdout)
        self.assertIn("pg_cpu_ms_per_pair", f, r.stdout)

    def test_children_that_exit_inside_the_window_count(self):
        # A stand-in postmaster whose children each burn a little CPU and exit, one after
        # another, as autovacuum workers do: at most one is alive at either sample, so
        # only the postmaster's reaped CPU (cutime + cstime) sees the rest.
        burner = 'i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done'
        fake = subprocess.Popen(["bash", "-c", 'while :; do sh -c "$0"; done', burner])
        try:
            [line] = bench("-n", "1", "-d", "3", "-w", "0.2", "-C", str(fake.pid), "branches")
        finally:
            fake.kill()
            fake.wait()
        f = fields(line)
        self.assertEqual(f["errors"], "0", line)
        # A child lives tens of ms; three seconds of them, even on a busy machine, are more.
        self.assertGreater(float(f["pg_cpu_ms"]), 150, line)

    def test_a_postmaster_gone_at_the_end_fails_the_run(self):
        # No figure is better than a wrong one: the run fails as raw-desk's does.
        fake = subprocess.Popen(["sleep", "600"])
        try:
            p, said = bench_until_ready("-n", "1", "-d", "4", "-w", "0", "-C", str(fake.pid),
                                        "branches")
            time.sleep(1.5)  # inside the measured window
        finally:
            fake.kill()
            fake.wait()  # reaped: no zombie left in /proc
        rc, out, err = finish(p, said)
        self.assertEqual(rc, 1, out + [err])
        self.assertEqual(out, [], err)
        self.assertIn("could not be measured", err)

    def test_no_postmaster_is_refused(self):
        r = env.run(BENCH, "-c", profile, "-C", os.path.join(env.dir, "nowhere"), "circ",
                    check=False)
        self.assertEqual(r.returncode, 2, r.stderr)


class OpenLoop(unittest.TestCase):
    """-R: scans at a rate, latency from when each was due, late scans counted."""

    def test_rate_sets_the_pace_not_the_answers(self):
        reset()
        [line] = bench("-n", "4", "-d", "2", "-w", "0.5", "-R", "20", "circ")
        f = fields(line)
        self.assertEqual(f["errors"], "0", line)
        self.assertEqual(f["rate"], "20", line)
        self.assertIn("late", f, line)
        # Poisson arrivals at 20/s for 2 s: about 40 scans; a closed loop of four desks
        # would do many more. Never more than a few times the rate.
        self.assertGreater(int(f["ops"]), 5, line)
        self.assertLess(float(f["ops_per_s"]), 60, line)
        for key in ("p50_ms", "p99_ms", "max_ms", "checkout_p99_ms"):
            self.assertIn(key, f, line)
        # The bench's own lag, from due to sent for desks idle when a scan fell due.
        lag50, lag99 = float(f["send_lag_p50_ms"]), float(f["send_lag_p99_ms"])
        self.assertLessEqual(0, lag50, line)
        self.assertLessEqual(lag50, lag99, line)
        self.assertLessEqual(lag99, float(f["max_ms"]), line)

    def test_slow_answers_make_scans_late(self):
        # Far more than one desk can do: nearly every scan waits for the answer before it.
        reset()
        [line] = bench("-n", "1", "-d", "1.5", "-w", "0.3", "-R", "5000", "circ")
        f = fields(line)
        self.assertEqual(f["errors"], "0", line)
        self.assertGreater(int(f["late"]), int(f["ops"]) // 2, line)
        # The latency counts from when a scan was due: it grows with the backlog.
        self.assertGreater(float(f["max_ms"]), 100, line)
        # At the end nearly all the scans due were never answered: they are counted,
        # not dropped (ops counts only the answered ones).
        self.assertGreater(int(f["unanswered"]), int(f["ops"]), line)

    def test_a_daemon_stalled_at_the_end_shows_in_p99(self):
        # The daemon stops answering (SIGSTOP) for the last seconds of the window: the
        # scans due then are unanswered, and their time so far is the tail.
        d = env.daemon()
        try:
            p = env.profile(d, cert=False)
            reset()
            proc, said = bench_until_ready("-n", "2", "-d", "3", "-w", "0.3", "-R", "20",
                                           "circ", profile_path=p)
            time.sleep(1.3)
            d.signal(signal.SIGSTOP)
            try:
                rc, out, err = finish(proc, said, timeout=120)
            finally:
                d.signal(signal.SIGCONT)
        finally:
            d.stop()
        self.assertEqual(rc, 0, err)
        f = fields(out[0])
        self.assertEqual(f["errors"], "0", out)
        # 20 scans a second, the last ~2 s unanswered: dozens, well over 1% of the scans.
        self.assertGreaterEqual(int(f["unanswered"]), 5, out)
        self.assertGreater(float(f["max_ms"]), 1000, out)
        self.assertGreater(float(f["p99_ms"]), 1000, out)

    def test_open_loop_needs_depth_one(self):
        r = env.run(BENCH, "-c", profile, "-R", "10", "-D", "2", "circ", check=False)
        self.assertEqual(r.returncode, 2, r.stderr)


class SharedToken(unittest.TestCase):
    def test_desks_log_in_with_desk_zeros_token(self):
        reset()
        last = env.psql("SELECT coalesce(max(id), 0) FROM login_event")
        [line] = bench("-n", "3", "-d", "1", "-w", "0.2", "-S", "circ")
        f = fields(line)
        self.assertEqual(f["errors"], "0", line)
        self.assertEqual(f["connections"], "3", line)
        self.assertGreater(int(f["ops"]), 0, line)
        # One password check (desk 0), the others by its token.
        reasons = env.psql("SELECT string_agg(reason, ',' ORDER BY reason) FROM login_event"
                           " WHERE id > %s" % last)
        self.assertEqual(reasons, "ok,ok_token,ok_token")


class OwnSessions(unittest.TestCase):
    def test_each_desk_logs_in_with_its_own_session(self):
        # -K: sessions stored beforehand (as scripts/bench openloop does), one per
        # workstation: each desk its own session and workstation, no password check.
        env.psql("INSERT INTO workstation (name, branch_id)"
                 " SELECT format('bench-ws-%s', d), 1 FROM generate_series(0, 2) d")
        token = "encode(sha256(convert_to('bench-key-' || w.name, 'UTF8')), 'hex')"
        env.psql("INSERT INTO staff_session (token_hash, staff_id, workstation_id, expires_at)"
                 " SELECT sha256(convert_to(%s, 'UTF8')), s.id, w.id, now() + interval '1 day'"
                 " FROM staff s, workstation w"
                 " WHERE s.username = 'admin' AND w.name LIKE 'bench-ws-%%'" % token)
        rows = env.psql("SELECT string_agg('admin ' || w.name || ' ' || %s, E'\\n'"
                        " ORDER BY w.name) FROM workstation w WHERE w.name LIKE 'bench-ws-%%'"
                        % token)
        keys = os.path.join(env.dir, "bench.keys")
        with open(keys, "w") as f:
            f.write(rows + "\n")
        self.assertEqual(len(rows.split("\n")), 3, rows)
        reset()
        last = env.psql("SELECT coalesce(max(id), 0) FROM login_event")
        [line] = bench("-n", "3", "-d", "1", "-w", "0.2", "-R", "20", "-K", keys, "circ")
        f = fields(line)
        self.assertEqual(f["errors"], "0", line)
        self.assertGreater(int(f["ops"]), 0, line)
        logins = env.psql("SELECT string_agg(reason || '@' || workstation, ','"
                          " ORDER BY workstation) FROM login_event WHERE id > %s" % last)
        self.assertEqual(logins, "ok_token@bench-ws-0,ok_token@bench-ws-1,ok_token@bench-ws-2")

    def test_keys_are_not_for_shared_tokens(self):
        keys = os.path.join(env.dir, "one.keys")
        with open(keys, "w") as f:
            f.write("admin desk-dwn " + "0" * 64 + "\n")
        r = env.run(BENCH, "-c", profile, "-S", "-K", keys, "circ", check=False)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("not with -S", r.stderr)


class Logins(unittest.TestCase):
    def test_login_workload_prints_both_rounds(self):
        lines = bench("-n", "4", "login")
        self.assertEqual(len(lines), 2, lines)
        first, second = fields(lines[0]), fields(lines[1])
        self.assertEqual(first["round"], "password", lines)
        self.assertEqual(second["round"], "token", lines)
        for f in (first, second):
            self.assertEqual(f["workload"], "login", lines)
            self.assertEqual(f["desks"], "4", lines)
            self.assertEqual(f["logins"], "4", lines)
            self.assertEqual(f["errors"], "0", lines)
            for key in ("all_logged_in_s", "login_p50_ms", "login_p99_ms", "login_max_ms",
                        "retries", "reconnects"):
                self.assertIn(key, f, lines)

    def test_logins_refused_try_later_are_sent_again(self):
        # One password check at a time: logins arriving together are refused
        # UNAVAILABLE password_queue and the desks try again until all are in.
        d = env.daemon(password_queue_max=1)
        try:
            p = env.profile(d, cert=False)
            lines = bench("-n", "6", "login", profile_path=p)
            first = fields(lines[0])
            self.assertEqual(first["logins"], "6", lines)
            self.assertGreater(int(first["retries"]), 0, lines)
            self.assertIn("refused", d.log_text())
            # Session tokens need no password check: no queue.
            self.assertEqual(fields(lines[1])["logins"], "6", lines)
            # Every workload logs in through the same path.
            reset()
            [line] = bench("-n", "4", "-d", "1", "-w", "0.2", "circ", profile_path=p)
            f = fields(line)
            self.assertEqual(f["errors"], "0", line)
            self.assertGreater(int(f["login_retries"]), 0, line)
        finally:
            d.stop()


class OpenFiles(unittest.TestCase):
    """A thousand desks are a thousand sockets: carreld and carrel-bench raise their
    open-file soft limit to the hard limit at start."""

    LOW = 200

    def low_soft_limit(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard <= self.LOW * 2:
            self.skipTest("the hard limit (%d) is too low to tell" % hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.LOW, hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        return hard

    def test_carreld_raises_its_soft_limit(self):
        hard = self.low_soft_limit()
        d = env.daemon()  # inherits the low soft limit
        try:
            with open("/proc/%d/limits" % d.proc.pid) as f:
                line = [l for l in f if l.startswith("Max open files")][0]
            soft_now = line.split()[3]
            self.assertEqual(soft_now, "unlimited" if hard == resource.RLIM_INFINITY
                             else str(hard), line)
        finally:
            d.stop()

    def test_carrel_bench_opens_more_desks_than_the_soft_limit(self):
        self.low_soft_limit()
        [line] = bench("-n", str(self.LOW + 50), "-d", "0.5", "-w", "0", "ping")
        f = fields(line)
        self.assertEqual(f["connections"], str(self.LOW + 50), line)
        self.assertEqual(f["errors"], "0", line)


if __name__ == "__main__":
    harness.main()
