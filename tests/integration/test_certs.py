#!/usr/bin/env python3
"""Workstation certificates end to end, over real TLS (issue 16, OPERATIONS.md
"certificates"): the desk makes its key and request (carrel cert request), IT
signs it on the server with the harness CA (carreld --issue-cert), the desk logs
in with it; a request for another name is refused. Revoking a workstation
(carrel admin workstation revoke) refuses its next handshakes and closes its open
connections on the daemon that revoked it at once, and on a second daemon on the
same database within its poll; other workstations carry on. A CRL file
(tls_crl_file, made here with openssl ca) refuses what it lists from the start.
A certificate about to expire is flagged in the list and in the log. Clerks may
not revoke, nor managers of another branch."""

import base64
import getpass
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# Request.workstation_revoke and Response.workstation (proto/carrel.proto).
REQ_WORKSTATION_REVOKE = 22
RESP_WORKSTATION = 20

env = None
main = None    # the daemon the revocations go through
second = None  # another daemon on the same database, polling every second
admin = None   # the administrator's profile on main

DESKS = {"desk-cert-a": "DWN", "desk-cert-b": "DWN", "desk-cert-c": "DWN",
         "desk-cert-d": "PRK", "desk-cert-e": "DWN", "desk-cert-f": "DWN",
         "desk-cert-g": "DWN", "desk-cert-h": "DWN", "desk-cert-i": "DWN",
         "desk-cert-j": "DWN", "desk-cert-k": "DWN", "desk-cert-l": "DWN",
         "desk-cert-m": "DWN", "desk-prk": "PRK"}


def setUpModule():
    global env, main, second, admin
    env = harness.Env()
    try:
        env.start()
        main = env.daemon()
        second = env.daemon(revocation_poll_s=1)
        admin = env.profile(main)
        env.add_workstations(admin, DESKS)
        env.add_staff(admin, "cert.clerk", role="clerk", branch="DWN")
        env.add_staff(admin, "cert.prkmgr", role="branch_manager", branch="PRK")
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


def checked(proc):
    """A Result, after checking that the sanitizers found nothing."""
    for mark in harness.SANITIZER_MARKS:
        if mark in proc.stderr:
            raise AssertionError("sanitizer report:\n" + proc.stderr)
    return harness.Result(proc)


def request(ws, name=None):
    """carrel cert request for workstation `name` (default ws) into the harness's TLS
    directory as ws.key / ws.csr; the Result. No profile: it needs no server."""
    e = dict(os.environ)
    e.pop("CARREL_PROFILE", None)
    return checked(subprocess.run(
        [harness.CARREL, "cert", "request", "--workstation", name or ws,
         "--key", env.tls(ws + ".key"), "--out", env.tls(ws + ".csr")],
        capture_output=True, text=True, env=e, timeout=60))


def issue(ws, csr_of=None, days=None, out=True):
    """carreld --issue-cert ws with csr_of's request (default ws's) into ws.crt; the Result."""
    argv = [harness.CARRELD, "-c", main.config, "--issue-cert", ws,
            "--csr", env.tls((csr_of or ws) + ".csr"),
            "--ca-cert", env.tls("ca.crt"), "--ca-key", env.tls("ca.key")]
    if days:
        argv += ["--days", str(days)]
    if out:
        argv += ["--out", env.tls(ws + ".crt")]
    return checked(subprocess.run(argv, capture_output=True, text=True, timeout=120))


def make_cert(ws, days=None):
    """A key, request and certificate for ws, as a desk and IT make them; its serial."""
    r = request(ws)
    assert r.code == 0, r
    r = issue(ws, days=days)
    assert r.code == 0, r
    return serial_of(ws)


def serial_of(ws):
    out = env.run("openssl", "x509", "-in", env.tls(ws + ".crt"), "-noout", "-serial").stdout
    return out.strip().split("=", 1)[1]


def context(ws):
    ctx = ssl.create_default_context(cafile=env.tls("ca.crt"))
    ctx.load_cert_chain(env.tls(ws + ".crt"), env.tls(ws + ".key"))
    return ctx


def logged_in(daemon, ws):
    """A raw connection logged in as the administrator at ws with ws's certificate."""
    w = harness.Wire(env, daemon.port, context=context(ws))
    r = w.hello()
    assert r is not None and r.status == "ok", r
    r = w.login(ws, "admin", harness.ADMIN_PASSWORD)
    assert r is not None and r.status == "ok", r
    return w


def refused(daemon, ws):
    """True when a new TLS connection with ws's certificate is refused: at the handshake
    (TLS 1.2), or, TLS 1.3 finishing the client's side first, at its first read. A daemon
    that is gone (connection refused) fails the test instead of counting as a refusal."""
    assert daemon.proc is not None and daemon.proc.poll() is None, "the daemon is gone"
    try:
        w = harness.Wire(env, daemon.port, context=context(ws), timeout=30)
    except ConnectionRefusedError:
        raise AssertionError("the daemon does not accept connections")
    except (ssl.SSLError, OSError):
        return True
    try:
        return w.hello() is None
    except (ssl.SSLError, OSError):
        return True
    finally:
        w.close()


def resumable_session(daemon, ws):
    """(context, session) of a login at ws, ended cleanly (our close_notify sent) so that
    the session stays resumable."""
    ctx = context(ws)
    w = harness.Wire(env, daemon.port, context=ctx)
    r = w.hello()  # the TLS 1.3 ticket comes with the first answer
    assert r is not None and r.status == "ok", r
    session = w.sock.session
    try:
        w.sock.unwrap()
    except (ssl.SSLError, OSError):
        pass  # ours was sent: all that matters
    w.close()
    return ctx, session


def resumed_and_closed(daemon, ctx, session):
    """Resume session on a new connection: True when the handshake resumed it (no
    certificate checked) and the daemon then closed the connection unanswered."""
    raw = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
    try:
        s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    except (ssl.SSLError, OSError):
        raw.close()
        return False
    w = harness.Wire.__new__(harness.Wire)
    w.sock, w.next_id, w.buffer = s, 0, b""
    try:
        return s.session_reused and w.hello() is None
    except (ssl.SSLError, OSError):
        return s.session_reused
    finally:
        w.close()


def pings(w):
    r = w.call(harness.REQ_PING)
    return r is not None and r.status == "ok"


def revoke(profile, ws, reason="laptop stolen"):
    return env.carrel(profile, "admin", "workstation", "revoke", ws, "--reason", reason)


def listed(ws):
    r = env.carrel(admin, "admin", "workstation", "list")
    assert r.code == 0, r
    return next(w for w in r.json["workstations"] if w["name"] == ws)


class Issue(unittest.TestCase):
    def test_request_issue_and_login(self):
        serial = make_cert("desk-cert-a")
        mode = stat.S_IMODE(os.stat(env.tls("desk-cert-a.key")).st_mode)
        self.assertEqual(mode, 0o600)
        text = env.run("openssl", "x509", "-in", env.tls("desk-cert-a.crt"), "-noout",
                       "-text").stdout
        self.assertIn("Subject: CN = desk-cert-a", text)
        self.assertIn("TLS Web Client Authentication", text)
        self.assertIn("CA:FALSE", text)
        self.assertIn("Digital Signature", text)
        self.assertIn("X509v3 Subject Key Identifier", text)
        self.assertIn("X509v3 Authority Key Identifier", text)
        self.assertEqual(len(serial), 32)
        env.run("openssl", "verify", "-CAfile", env.tls("ca.crt"), "-purpose", "sslclient",
                env.tls("desk-cert-a.crt"))
        fp = env.run("openssl", "x509", "-in", env.tls("desk-cert-a.crt"), "-noout",
                     "-fingerprint", "-sha256").stdout.strip().split("=", 1)[1]
        row = env.psql("SELECT c.serial || ' ' || c.fingerprint || ' ' ||"
                       " (c.revoked_at IS NULL) || ' ' ||"
                       " (c.not_after - c.not_before > interval '396 days')"
                       " FROM workstation_cert c JOIN workstation w ON w.id = c.workstation_id"
                       " WHERE w.name = 'desk-cert-a'")
        self.assertEqual(row, "%s %s true true" % (serial, fp.replace(":", "").lower()))
        self.assertEqual(env.psql("SELECT count(*) FROM admin_audit WHERE action ="
                                  " 'workstation_cert_issue' AND target = 'desk-cert-a'"
                                  " AND detail->>'serial' = '%s'" % serial), "1")
        # Who signed, where, with which CA (REVIEW16B 7).
        ca_fp = env.run("openssl", "x509", "-in", env.tls("ca.crt"), "-noout", "-fingerprint",
                        "-sha256").stdout.strip().split("=", 1)[1].replace(":", "").lower()
        detail = env.psql("SELECT concat_ws('|', detail->>'os_user', detail->>'host',"
                          " detail->>'db_user' IS NOT NULL, detail->>'not_before' IS NOT NULL,"
                          " detail->>'ca_sha256', detail->>'ca_subject')"
                          " FROM admin_audit WHERE action = 'workstation_cert_issue'"
                          " AND detail->>'serial' = '%s'" % serial)
        self.assertEqual(detail.split("|")[:5],
                         [getpass.getuser(), socket.gethostname(), "t", "t", ca_fp])
        self.assertIn("Carrel development CA", detail)
        # The desk logs in with it: the real client, and a raw connection.
        r = env.carrel(env.profile(main, "desk-cert-a"), "whoami")
        self.assertEqual(r.code, 0, r)
        w = logged_in(main, "desk-cert-a")
        self.assertTrue(pings(w))
        w.close()
        listing = listed("desk-cert-a")
        self.assertEqual(listing["cert_serial"], serial)
        self.assertFalse(listing.get("cert_revoked", False))
        self.assertFalse(listing.get("cert_expiring", False))
        # Client certificates optional here (the harness): a connection without one may
        # not log in naming a workstation that has certificates on record (REVIEW16B 2).
        w = harness.Wire(env, main.port)
        r = w.hello()
        r = w.login("desk-cert-a", "admin", harness.ADMIN_PASSWORD)
        self.assertEqual((r.status, r.reason), ("unauthenticated", "certificate_mismatch"), r)
        w.close()
        harness.wait_until(lambda: "at workstation desk-cert-a without its client certificate"
                           in main.log_text(), what="the refusal in the log")

    def test_wrong_name_refused(self):
        self.assertEqual(request("desk-cert-g").code, 0)
        before = env.psql("SELECT count(*) FROM workstation_cert")
        # desk-cert-g's request presented as desk-cert-c's: refused, nothing issued.
        r = issue("desk-cert-c", csr_of="desk-cert-g")
        self.assertEqual(r.code, 1, r)
        self.assertIn("CN=desk-cert-g, not for workstation desk-cert-c", r.stderr)
        self.assertFalse(os.path.exists(env.tls("desk-cert-c.crt")))
        # A name nobody registered.
        r = request("desk-nobody")
        self.assertEqual(r.code, 0, r)
        r = issue("desk-nobody")
        self.assertEqual(r.code, 1, r)
        self.assertIn("no workstation desk-nobody", r.stderr)
        self.assertFalse(os.path.exists(env.tls("desk-nobody.crt")))
        self.assertEqual(env.psql("SELECT count(*) FROM workstation_cert"), before)
        # Too many days; a key is never overwritten.
        r = issue("desk-cert-g", days=826)
        self.assertEqual(r.code, 2, r)
        r = request("desk-cert-g")
        self.assertEqual(r.code, 1, r)
        self.assertIn("never overwritten", r.stderr)
        # Nor is a certificate file: refused before anything is signed or recorded.
        with open(env.tls("desk-cert-g.crt"), "w") as f:
            f.write("kept\n")
        r = issue("desk-cert-g")
        self.assertEqual(r.code, 1, r)
        self.assertIn("never overwritten", r.stderr)
        with open(env.tls("desk-cert-g.crt")) as f:
            self.assertEqual(f.read(), "kept\n")
        self.assertEqual(env.psql("SELECT count(*) FROM workstation_cert"), before)


def carreld_run(*args, conninfo=None, sql_dir=None):
    """carreld -c main's file with args (and overrides); the Result."""
    argv = [harness.CARRELD, "-c", main.config]
    if conninfo:
        argv += ["-s", "db_conninfo=" + conninfo]
    if sql_dir:
        argv += ["-s", "sql_dir=" + sql_dir]
    return checked(subprocess.run(argv + list(args), capture_output=True, text=True,
                                  timeout=120))


# A database nobody can reach: what must be refused before any connection says no more.
NOWHERE = "host=/nonexistent-carrel port=1 dbname=none connect_timeout=1"


class Arguments(unittest.TestCase):
    """REVIEW16B 1, REVIEW16AE 4 and 5: usage errors before the database, and no schema
    change from --issue-cert or --init-admin."""

    def ca_args(self, ws="desk-cert-g"):
        return ["--csr", env.tls(ws + ".csr"), "--ca-cert", env.tls("ca.crt"),
                "--ca-key", env.tls("ca.key")]

    def test_usage_errors_touch_no_database(self):
        for args in (["--issue-cert", "x"],
                     ["--issue-cert", "x", "--csr", "a.csr"],
                     ["--issue-cert", "x"] + self.ca_args() + ["--migrate-only"],
                     ["--issue-cert", "x"] + self.ca_args() + ["--init-admin", "y"],
                     ["--issue-cert", "x"] + self.ca_args() + ["--check-config"],
                     ["--issue-cert", "x"] + self.ca_args() + ["--dump-config"],
                     ["--issue-cert", "x"] + self.ca_args() + ["--migrate-only", "--dry-run"],
                     ["--migrate-only", "--dry-run", "--check-config"],
                     ["--migrate-only", "--dry-run", "--dump-config"],
                     ["--migrate-only", "--dry-run", "--init-admin", "y"],
                     ["--migrate-only", "--init-admin", "y"]):
            r = carreld_run(*args, conninfo=NOWHERE)
            self.assertEqual(r.code, 2, (args, r))
            self.assertNotIn("database", r.stderr, (args, r))
            self.assertNotIn("connect", r.stderr, (args, r))

    def test_bad_input_refused_before_the_database(self):
        # A request file that is not there, a CA key others may read: said, no connection.
        r = carreld_run("--issue-cert", "x", "--csr", env.tls("nothing.csr"),
                        "--ca-cert", env.tls("ca.crt"), "--ca-key", env.tls("ca.key"),
                        conninfo=NOWHERE)
        self.assertEqual(r.code, 1, r)
        self.assertIn("cannot read a PEM certificate signing request", r.stderr)
        self.assertNotIn("database", r.stderr)
        if not os.path.exists(env.tls("desk-cert-k.csr")):
            self.assertEqual(request("desk-cert-k").code, 0)
        loose = os.path.join(env.dir, "loose-ca.key")
        shutil.copyfile(env.tls("ca.key"), loose)
        os.chmod(loose, 0o644)
        r = carreld_run("--issue-cert", "desk-cert-k", "--csr", env.tls("desk-cert-k.csr"),
                        "--ca-cert", env.tls("ca.crt"), "--ca-key", loose, conninfo=NOWHERE)
        self.assertEqual(r.code, 1, r)
        self.assertIn("may be read by others", r.stderr)
        self.assertNotIn("database", r.stderr)

    def test_pending_migration_refused(self):
        """A carreld newer than the schema neither issues nor creates an administrator: it
        says to run --migrate-only first and leaves the schema as it is."""
        sql = os.path.join(env.dir, "sql-newer")
        if not os.path.exists(sql):
            shutil.copytree(os.path.join(harness.SOURCE, "sql"), sql)
            with open(os.path.join(sql, "migrations", "998_certfix_pending.sql"), "w") as f:
                f.write("CREATE TABLE certfix_pending (x integer);\n")
        self.assertEqual(request("desk-cert-i").code, 0)
        before = env.psql("SELECT count(*) FROM workstation_cert")
        r = carreld_run("--issue-cert", "desk-cert-i", *self.ca_args("desk-cert-i"),
                        sql_dir=sql)
        self.assertEqual(r.code, 1, r)
        self.assertIn("run carreld --migrate-only first", r.stderr)
        pw = os.path.join(env.dir, "certfix-pw")
        with open(pw, "w") as f:
            f.write("a-long-password-123\n")
        r = carreld_run("--init-admin", "certfix.admin", "--password-file", pw, "--branch",
                        "DWN", sql_dir=sql)
        self.assertEqual(r.code, 1, r)
        self.assertIn("run carreld --migrate-only first", r.stderr)
        self.assertEqual(env.psql("SELECT to_regclass('certfix_pending') IS NULL"), "t")
        self.assertEqual(env.psql("SELECT count(*) FROM schema_migration WHERE version = 998"),
                         "0")
        self.assertEqual(env.psql("SELECT count(*) FROM staff WHERE username = 'certfix.admin'"),
                         "0")
        self.assertEqual(env.psql("SELECT count(*) FROM workstation_cert"), before)

    def test_bad_requests_and_cas(self):
        if not os.path.exists(env.tls("desk-cert-k.csr")):
            self.assertEqual(request("desk-cert-k").code, 0)
        # A request whose signature does not verify (one bit of it flipped).
        der = subprocess.run(["openssl", "req", "-in", env.tls("desk-cert-k.csr"), "-outform",
                              "DER"], capture_output=True, check=True).stdout
        der = der[:-3] + bytes([der[-3] ^ 0x01]) + der[-2:]
        bad = env.tls("desk-cert-k-bad.csr")
        with open(bad, "w") as f:
            f.write("-----BEGIN CERTIFICATE REQUEST-----\n")
            b64 = base64.b64encode(der).decode()
            f.write("\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)))
            f.write("\n-----END CERTIFICATE REQUEST-----\n")
        r = carreld_run("--issue-cert", "desk-cert-k", "--csr", bad, "--ca-cert",
                        env.tls("ca.crt"), "--ca-key", env.tls("ca.key"))
        self.assertEqual(r.code, 1, r)
        self.assertIn("signature does not verify", r.stderr)
        # Requests carreld does not sign: two common names; an Ed25519 key; RSA-1024.
        odd = [("two-cn", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                "/CN=desk-cert-k/CN=desk-cert-a", "exactly one common name"),
               ("ed25519", ["-newkey", "ed25519"], "/CN=desk-cert-k", "a key of type ED25519"),
               ("rsa1024", ["-newkey", "rsa:1024"], "/CN=desk-cert-k", "RSA key of 1024 bits")]
        for name, key_args, subj, said in odd:
            csr = os.path.join(env.dir, "odd-%s.csr" % name)
            env.run("openssl", "req", "-new", *key_args, "-nodes", "-keyout",
                    os.path.join(env.dir, "odd-%s.key" % name), "-subj", subj, "-out", csr)
            r = carreld_run("--issue-cert", "desk-cert-k", "--csr", csr, "--ca-cert",
                            env.tls("ca.crt"), "--ca-key", env.tls("ca.key"))
            self.assertEqual(r.code, 1, (name, r))
            self.assertIn(said, r.stderr, name)
        # A CA the daemons do not trust (not in tls_client_ca).
        other_key = os.path.join(env.dir, "other-ca.key")
        other_crt = os.path.join(env.dir, "other-ca.crt")
        if not os.path.exists(other_crt):
            env.run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", other_key, "-out", other_crt,
                    "-days", "30", "-subj", "/CN=Another CA", "-addext",
                    "basicConstraints=critical,CA:TRUE", "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign")
            os.chmod(other_key, 0o600)
        r = carreld_run("--issue-cert", "desk-cert-k", "--csr", env.tls("desk-cert-k.csr"),
                        "--ca-cert", other_crt, "--ca-key", other_key)
        self.assertEqual(r.code, 1, r)
        self.assertIn("not in tls_client_ca", r.stderr)
        # A CA key that is not the CA certificate's.
        r = carreld_run("--issue-cert", "desk-cert-k", "--csr", env.tls("desk-cert-k.csr"),
                        "--ca-cert", env.tls("ca.crt"), "--ca-key", other_key)
        self.assertEqual(r.code, 1, r)
        self.assertIn("is not the key of", r.stderr)
        self.assertEqual(env.psql("SELECT count(*) FROM workstation_cert c JOIN workstation w"
                                  " ON w.id = c.workstation_id WHERE w.name = 'desk-cert-k'"), "0")


class Schema(unittest.TestCase):
    def test_serial_form_and_revoke_checks(self):
        # A serial with a leading zero byte could never match what the daemon reads.
        with self.assertRaises(harness.SqlError):
            env.psql("INSERT INTO workstation_cert (workstation_id, serial, not_before,"
                     " not_after, fingerprint) SELECT id, '00AB', now(), now() + interval '1 day',"
                     " repeat('a', 64) FROM workstation WHERE name = 'desk-cert-k'")
        # workstation_revoke checks the workstation the permission was checked on.
        with self.assertRaises(harness.SqlError) as e:
            env.psql("SELECT * FROM workstation_revoke(NULL, NULL, (SELECT id FROM workstation"
                     " WHERE name = 'desk-cert-k'), 'PRK', 'desk-cert-k', 'x')")
        self.assertIn("changed while it was being revoked", str(e.exception))


class Revoke(unittest.TestCase):
    def test_revoke_closes_and_refuses_here_and_on_the_other_daemon(self):
        serial = make_cert("desk-cert-b")
        make_cert("desk-cert-c")
        on_main = logged_in(main, "desk-cert-b")
        on_second = logged_in(second, "desk-cert-b")
        other = logged_in(main, "desk-cert-c")
        ctx, session = resumable_session(main, "desk-cert-b")
        r = revoke(admin, "desk-cert-b")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["cert_serial"], serial)
        self.assertTrue(r.json["cert_revoked"])
        # Client certificates are optional here: IT is told only Login refuses the desk.
        harness.wait_until(lambda: "does not require client certificates" in main.log_text(),
                           what="the warning in the log")
        # This daemon: the open connection is closed, a new handshake refused.
        self.assertTrue(on_main.closed_by_server(timeout=60))
        self.assertTrue(refused(main, "desk-cert-b"))
        harness.wait_until(lambda: "client certificate %s (desk-cert-b) is revoked" % serial
                           in main.log_text(), what="the closing in the log")
        # Refused by the verify hook, in the handshake itself.
        harness.wait_until(lambda: "certificate verification failed: certificate revoked"
                           in main.log_text(), what="the handshake refusal in the log")
        # A session resumed skips the certificate check: refused all the same.
        self.assertTrue(resumed_and_closed(main, ctx, session))
        harness.wait_until(lambda: "(desk-cert-b) is revoked, resumed" in main.log_text(),
                           what="the resumed session's closing in the log")
        # Another workstation is not affected.
        self.assertTrue(pings(other))
        self.assertFalse(refused(main, "desk-cert-c"))
        # The other daemon follows within its poll (revocation_poll_s = 1).
        self.assertTrue(on_second.closed_by_server(timeout=60))
        harness.wait_until(lambda: refused(second, "desk-cert-b"), timeout=60,
                           what="the second daemon refusing the revoked certificate")
        self.assertFalse(refused(second, "desk-cert-c"))
        other.close()
        # Recorded and audited; the list says so.
        self.assertEqual(env.psql("SELECT reason || ' ' || (revoked_by IS NOT NULL)"
                                  " FROM workstation_cert WHERE serial = '%s'" % serial),
                         "laptop stolen true")
        self.assertEqual(env.psql("SELECT count(*) FROM admin_audit WHERE action ="
                                  " 'workstation_revoke' AND target = 'desk-cert-b'"), "1")
        self.assertTrue(listed("desk-cert-b")["cert_revoked"])
        r = env.carrel(admin, "admin", "workstation", "list", json_out=False)
        self.assertRegex(r.stdout, r"desk-cert-b +DWN +%s .*REVOKED" % serial)
        # Nothing left to revoke; an unknown name; no reason.
        r = revoke(admin, "desk-cert-b")
        self.assertEqual((r.code, r.json["reason"]), (4, "no_certificate"), r)
        r = revoke(admin, "desk-nobody")
        self.assertEqual((r.code, r.json["reason"]), (4, "workstation"), r)
        r = env.carrel(admin, "admin", "workstation", "revoke", "desk-cert-c")
        self.assertEqual(r.code, 2, r)
        # A new certificate for the desk works again.
        for ext in (".key", ".csr", ".crt"):
            os.unlink(env.tls("desk-cert-b" + ext))
        make_cert("desk-cert-b")
        self.assertFalse(refused(main, "desk-cert-b"))

    def test_revoking_ones_own_desk(self):
        """The connection that revoked its own certificate gets its answer, then is closed."""
        serial = make_cert("desk-cert-h")
        w = logged_in(main, "desk-cert-h")
        r = w.call(REQ_WORKSTATION_REVOKE,
                   harness.pb_message((1, "desk-cert-h"), (2, "desk sold")))
        self.assertIsNotNone(r)
        self.assertEqual(r.status, "ok", r)
        self.assertEqual(r.body(RESP_WORKSTATION)[4][0].decode(), serial)
        self.assertTrue(w.closed_by_server(timeout=60))
        self.assertTrue(refused(main, "desk-cert-h"))

    def test_who_may_revoke(self):
        make_cert("desk-cert-d")
        clerk = env.profile(main, "desk-dwn", user="cert.clerk", password="staff-password-123")
        r = revoke(clerk, "desk-cert-d")
        self.assertEqual((r.code, r.json["status"], r.json["reason"]), (4, "forbidden", "role"),
                         r)
        mgr = env.profile(main, "desk-prk", user="cert.prkmgr", password="staff-password-123")
        r = revoke(mgr, "desk-cert-a")  # a DWN desk, a PRK manager
        self.assertEqual((r.code, r.json["status"], r.json["reason"]),
                         (4, "forbidden", "branch"), r)
        self.assertEqual(env.psql("SELECT count(*) FROM workstation_cert c JOIN workstation w"
                                  " ON w.id = c.workstation_id WHERE w.name IN"
                                  " ('desk-cert-a', 'desk-cert-d') AND c.revoked_at IS NOT NULL"),
                         "0")
        # Their own branch's desk: allowed.
        r = revoke(mgr, "desk-cert-d")
        self.assertEqual(r.code, 0, r)
        self.assertTrue(refused(main, "desk-cert-d"))


class Expiry(unittest.TestCase):
    def test_expiring_flagged_in_list_and_log(self):
        serial = make_cert("desk-cert-e", days=5)
        listing = listed("desk-cert-e")
        self.assertEqual(listing["cert_serial"], serial)
        self.assertTrue(listing["cert_expiring"])
        r = env.carrel(admin, "admin", "workstation", "list", json_out=False)
        self.assertRegex(r.stdout, r"desk-cert-e +DWN +%s .*EXPIRES SOON" % serial)
        # A daemon warns at start.
        d = env.daemon()
        harness.wait_until(
            lambda: re.search(r"workstation desk-cert-e: its certificate %s expires" % serial,
                              d.log_text()), timeout=60, what="the expiry warning")
        d.stop()


def crl_ca(name):
    """(openssl ca configuration, its directory) for CRLs of the harness CA, kept apart per
    test."""
    cadir = os.path.join(env.dir, name)
    os.makedirs(cadir, exist_ok=True)
    open(os.path.join(cadir, "index.txt"), "w").close()
    with open(os.path.join(cadir, "crlnumber"), "w") as f:
        f.write("01\n")
    cnf = os.path.join(cadir, "ca.cnf")
    with open(cnf, "w") as f:
        f.write("[ca]\ndefault_ca = library\n[library]\n"
                "database = %s/index.txt\ncrlnumber = %s/crlnumber\n"
                "certificate = %s\nprivate_key = %s\ndefault_md = sha256\n"
                "default_crl_days = 30\n"
                % (cadir, cadir, env.tls("ca.crt"), env.tls("ca.key")))
    return cnf, cadir


class StartWindow(unittest.TestCase):
    def test_revoked_before_the_start_never_logs_in(self):
        """Until a daemon has read the revoked certificates, the login of a desk with a
        certificate waits (fail closed); once they are read, a revoked one is closed
        unanswered (REVIEW16B 3). The poll is held back by a lock on workstation_cert."""
        make_cert("desk-cert-l")
        self.assertEqual(revoke(admin, "desk-cert-l").code, 0)
        lock = env.session()
        lock.query("BEGIN", keep_transaction=True)
        lock.query("LOCK TABLE workstation_cert IN ACCESS EXCLUSIVE MODE", keep_transaction=True)
        try:
            d = env.daemon()
            w = harness.Wire(env, d.port, context=context("desk-cert-l"))
            r = w.hello()
            self.assertEqual(r.status, "ok", r)
            w.send(harness.REQ_LOGIN, harness.pb_message(
                (1, "desk-cert-l"), (2, "admin"), (3, harness.ADMIN_PASSWORD)))
            harness.wait_until(lambda: "login at desk-cert-l waits until the revoked"
                               in d.log_text(), what="the login waiting")
        finally:
            lock.query("ROLLBACK")
        self.assertIsNone(w.recv())  # closed, never answered
        harness.wait_until(lambda: "(desk-cert-l) is revoked" in d.log_text(),
                           what="the closing in the log")
        self.assertTrue(refused(d, "desk-cert-l"))
        d.stop()


class CrlReload(unittest.TestCase):
    def test_renewed_crl_closes_open_connections(self):
        """A CRL renewed and reloaded closes the open connections it revokes, not only
        new handshakes (REVIEW16B 4); the others carry on."""
        make_cert("desk-cert-j")
        make_cert("desk-cert-m")
        cnf, cadir = crl_ca("ca-reload")
        crl = os.path.join(cadir, "crl.pem")
        env.run("openssl", "ca", "-config", cnf, "-gencrl", "-out", crl)
        d = env.daemon(tls_crl_file=crl)
        harness.wait_until(lambda: "revocation list (tls_crl_file) is valid until"
                           in d.log_text(), what="the CRL's next update in the log")
        w = logged_in(d, "desk-cert-j")
        other = logged_in(d, "desk-cert-m")
        env.run("openssl", "ca", "-config", cnf, "-revoke", env.tls("desk-cert-j.crt"))
        env.run("openssl", "ca", "-config", cnf, "-gencrl", "-out", crl + ".new")
        os.rename(crl + ".new", crl)
        d.signal(signal.SIGHUP)
        self.assertTrue(w.closed_by_server(timeout=60))
        harness.wait_until(lambda: "(desk-cert-j) is revoked by the revocation list"
                           in d.log_text(), what="the closing in the log")
        self.assertTrue(pings(other))
        other.close()
        self.assertTrue(refused(d, "desk-cert-j"))
        d.stop()

    def test_expired_crl_refused(self):
        """A CRL past its next update would refuse every desk: the daemon does not start
        with it, and says why (REVIEW16B 5)."""
        cnf, cadir = crl_ca("ca-expired")
        crl = os.path.join(cadir, "crl.pem")
        env.run("openssl", "ca", "-config", cnf, "-gencrl", "-crlsec", "1", "-out", crl)
        t0 = time.time()
        harness.wait_until(lambda: time.time() > t0 + 2, what="the CRL to expire")
        d = harness.Daemon(env, tls_crl_file=crl).start(expect_listen=False)
        code = d.wait()
        self.assertIn("expired at", d.log_text())
        d.check_clean(code, expect_code=1)


class Crl(unittest.TestCase):
    def test_crl_file_at_start(self):
        make_cert("desk-cert-f")
        cnf, cadir = crl_ca("ca")
        env.run("openssl", "ca", "-config", cnf, "-revoke", env.tls("desk-cert-f.crt"),
                "-crl_reason", "keyCompromise")
        crl = os.path.join(cadir, "crl.pem")
        env.run("openssl", "ca", "-config", cnf, "-gencrl", "-out", crl)
        d = env.daemon(tls_crl_file=crl)
        self.assertTrue(refused(d, "desk-cert-f"))
        harness.wait_until(lambda: "certificate verification failed: certificate revoked"
                           in d.log_text(), what="the handshake refusal in the log")
        self.assertFalse(refused(main, "desk-cert-f"))  # the CRL is d's alone
        w = logged_in(d, "desk-dwn")  # a certificate the CRL does not list
        self.assertTrue(pings(w))
        w.close()
        d.stop()
        # A file that is not a CRL: the daemon does not start, and says why.
        bad = os.path.join(cadir, "bad.pem")
        with open(bad, "w") as f:
            f.write("not a CRL\n")
        d = harness.Daemon(env, tls_crl_file=bad).start(expect_listen=False)
        code = d.wait()
        self.assertIn("cannot load the revocation list", d.log_text())
        d.check_clean(code, expect_code=1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
