#!/usr/bin/env python3
"""The client as a whole: every command answers --help on its own, and every
--json answer has one shape for refusals, single and batch commands alike."""

import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import mod10  # noqa: E402

PASSWORD = "staff-password-123"
env = None
main = None


def new_item(branch="DWN", title="Client test copy"):
    return env.new_item(title=title, branch=branch, price_cents=2000)


def new_patron(branch="DWN"):
    return env.new_patron(branch=branch, first="Client")


def unknown_barcode():
    """A barcode of the right form that no item has."""
    return mod10("3123499%06d" % env.next_number())


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        main = env.daemon()
        admin = env.profile(main)
        pw = os.path.join(env.dir, "staff.pw")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        r = env.carrel(admin, "admin", "staff", "add", "clara", "--name", "Clara", "--role",
                       "clerk", "--branch", "DWN", "--new-password-file", pw)
        assert r.code == 0, r
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


def carrel(*args, json_out=True):
    return env.carrel(env.profile(main, "desk-dwn", "clara", PASSWORD), *args,
                      json_out=json_out)


def run_offline(*args):
    """carrel with a profile that does not exist: anything that needs it fails."""
    proc = subprocess.run([harness.CARREL, "-c", os.path.join(env.dir, "no-such-profile")]
                          + list(args), capture_output=True, text=True, timeout=60)
    return proc


def command_paths():
    """Every command's words, from `carrel --help`."""
    out = subprocess.run([harness.CARREL, "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    paths = []
    for line in out.splitlines():
        if not line.startswith("  ") or line.startswith("   "):
            continue
        words = []
        for w in line.split():
            if not re.fullmatch(r"[a-z][a-z-]*", w):
                break
            words.append(w)
        if words:
            paths.append(words)
    return paths


class Help(unittest.TestCase):
    """Every command answers --help and `help COMMAND` with its own usage."""

    def test_every_command_answers_help_without_a_server(self):
        paths = command_paths()
        self.assertGreater(len(paths), 50, paths)
        for words in paths:
            name = " ".join(words)
            for argv in (words + ["--help"], ["help"] + words):
                p = run_offline(*argv)
                self.assertEqual(p.returncode, 0, (argv, p.stderr))
                first = p.stdout.splitlines()[0]
                self.assertTrue(first.startswith("usage: carrel [-c PROFILE] [--json] %s" % name),
                                (argv, first))
                self.assertNotIn("carrel:", p.stderr, argv)

    def test_help_after_arguments_and_for_unknown_commands(self):
        p = run_offline("checkout", "2123", "--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("CARD ITEM...", p.stdout)
        p = run_offline("help", "no-such-command")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no command 'no-such-command'", p.stderr)
        p = run_offline("help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("Commands", p.stdout)

    def test_desk_help_lists_the_desk_commands(self):
        p = run_offline("desk", "--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(":checkin", p.stdout)


class JsonRefusals(unittest.TestCase):
    """A refusal's reason is in the JSON: {"ok": false, status, reason, message}."""

    def assertRefusal(self, doc, status, reason=None):
        self.assertIs(doc.get("ok"), False, doc)
        self.assertEqual(doc["status"], status, doc)
        if reason is not None:
            self.assertEqual(doc["reason"], reason, doc)
        self.assertTrue(doc["message"], doc)

    def test_refused_checkout_is_an_element_with_its_reason(self):
        card, other, item = new_patron(), new_patron(), new_item()
        self.assertEqual(carrel("checkout", card, item).code, 0)
        r = carrel("checkout", other, item)
        self.assertEqual(r.code, 4, r)  # exit codes as before
        self.assertEqual(len(r.json), 1, r)
        self.assertRefusal(r.json[0], "refused", "item_on_loan")
        self.assertIs(r.json[0]["overridable"], True)
        self.assertEqual(r.json[0]["barcode"], item)
        self.assertIn("item_on_loan", r.stderr)  # the sentence stays on stderr

    def test_batch_elements_carry_their_own_outcome(self):
        card, held, free = new_patron(), new_item(), new_item()
        self.assertEqual(carrel("checkout", new_patron(), held).code, 0)
        r = carrel("checkout", card, free, held)
        self.assertEqual(r.code, 4, r)
        self.assertEqual([e.get("barcode") for e in r.json], [free, held], r)
        self.assertIs(r.json[0]["ok"], True, r)  # the loan, with "ok": true
        self.assertTrue(r.json[0]["due_date"], r)
        self.assertRefusal(r.json[1], "refused", "item_on_loan")
        back = carrel("checkin", free, unknown_barcode())
        self.assertEqual(back.code, 4, back)
        self.assertEqual(back.json[0]["barcode"], free)
        self.assertIs(back.json[0]["ok"], True, back)
        self.assertRefusal(back.json[1], "not_found", "item_not_found")

    def test_every_batch_element_says_ok(self):
        """A script tests one key: "ok" is in every element, answer or refusal."""
        card, item, missing = new_patron(), new_item(), unknown_barcode()
        r = carrel("checkout", card, item)
        self.assertEqual(r.code, 0, r)
        # A renewal answered but not made (today's due date would not change)
        # says "ok": false, as the refusal of a loan the patron does not have.
        r = carrel("renew", card, item, missing)
        self.assertEqual(r.code, 4, r)
        self.assertEqual([e["ok"] for e in r.json], [False, False], r)
        self.assertEqual((r.json[0]["renewed"], r.json[0]["reason"]),
                         (False, "renewal_no_change"), r)
        self.assertRefusal(r.json[1], "not_found", "not_on_loan")
        r = carrel("item", "use", new_item(), missing)
        self.assertEqual([e["ok"] for e in r.json], [True, False], r)
        r = carrel("transit", "receive", item)
        self.assertEqual(r.code, 0, r)
        self.assertEqual([e["ok"] for e in r.json], [True], r)

    def test_unknown_barcode(self):
        missing = unknown_barcode()
        r = carrel("checkout", new_patron(), missing)
        self.assertEqual(r.code, 4, r)
        self.assertRefusal(r.json[0], "not_found", "item_not_found")
        self.assertEqual(r.json[0]["barcode"], missing)
        # A single command answers with the refusal as its one document.
        r = carrel("item", "mark", missing, "lost")
        self.assertEqual(r.code, 4, r)
        self.assertRefusal(r.json, "not_found")
        r = carrel("item", "use", missing, new_item())
        self.assertEqual(r.code, 4, r)
        self.assertRefusal(r.json[0], "not_found")
        self.assertEqual(r.json[0]["barcode"], missing)
        self.assertEqual(len(r.json), 2, r)

    def test_usage_errors_have_the_same_shape(self):
        r = carrel("account")
        self.assertEqual(r.code, 2, r)
        self.assertRefusal(r.json, "usage_error")
        self.assertIn("usage: account CARD", r.json["message"])


class DeskJson(unittest.TestCase):
    """The desk's --json lines: an answer says "ok": true, a refusal or failure "ok": false."""

    def test_desk_lines_say_ok(self):
        card, item = new_patron(), new_item()
        lines = [card, item, item, ":nonsense", ":quit"]
        r = env.carrel(env.profile(main, "desk-dwn", "clara", PASSWORD), "desk",
                       input="\n".join(lines) + "\n")
        self.assertEqual(r.code, 0, r)
        docs = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertNotIn("ok", docs[0], docs)  # the desk's own first line is no answer
        self.assertEqual((docs[1]["ok"], docs[1]["patron"]["card"]), (True, card), docs)
        self.assertEqual((docs[2]["ok"], docs[2]["checkout"]["barcode"]), (True, item), docs)
        self.assertEqual((docs[3]["ok"], docs[3]["status"], docs[3]["scan"]),
                         (False, "conflict", item), docs)  # already checked out
        self.assertEqual((docs[4]["ok"], docs[4]["status"]), (False, "usage_error"), docs)
        self.assertNotIn("ok", docs[-1], docs)  # the visit's summary
        self.assertIn("done", docs[-1], docs)


if __name__ == "__main__":
    harness.main()
