#!/usr/bin/env python3
"""Patrons: records, validation, duplicates, search, field permissions,
versions, blocks, history, merge, concurrency, demo data."""

import datetime
import itertools
import os
import pty
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import pb_message  # noqa: E402

env = None
main = None
STAFF_PASSWORD = "staff-password-123"
REQ_PATRON_SAVE, REQ_PATRON_GET = 50, 51

# Test cards use institution 9876 so they never meet the demo's 1234.
_seq = itertools.count(1)


def new_card():
    stem = "2" + "9876" + "%08d" % next(_seq)
    return harness.mod10(stem)


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        main = env.daemon()
        admin = env.profile(main)
        env.add_workstations(admin, {"desk-dwn-2": "DWN"})
        for user, name, role in [("clara", "Clara Clerk", "clerk"),
                                 ("carl", "Carl Clerk", "clerk"),
                                 ("libby", "Libby Librarian", "librarian")]:
            env.add_staff(admin, user, role, "DWN", STAFF_PASSWORD, name)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


def profile(user="clara", ws="desk-dwn"):
    return env.profile(main, ws, user, STAFF_PASSWORD)



def clerk():
    return profile("clara")


def librarian():
    return profile("libby")


def count(sql):
    return int(env.psql(sql))


def add(prof, card, first, last, *extra):
    return env.carrel(prof, "patron", "add", card, "--first", first, "--last", last, *extra)


def show(card, prof=None):
    r = env.carrel(prof or clerk(), "patron", "show", card)
    assert r.code == 0, r
    return r.json


def today_plus(days=0, years=0):
    d = datetime.date.today() + datetime.timedelta(days=days)
    if years:
        try:
            d = d.replace(year=d.year + years)
        except ValueError:  # 29 February
            d = d.replace(year=d.year + years, day=28)
    return d.isoformat()


class Records(unittest.TestCase):
    def test_create_and_show(self):
        card = new_card()
        r = add(clerk(), card, " Amélie ", "Poulain", "--preferred", "Amy",
                "--birth", "1985-04-25", "--address1", "15 Rue Lepic", "--address2", "Apt 3",
                "--city", "Hartford", "--state", "CT", "--postal", "06103",
                "--phone", "(860) 555-1234", "--email", "Amelie.Poulain@Example.ORG",
                "--contact", "sms", "--branch", "PRK", "--category", "adult",
                "--keep-history", "yes")
        self.assertEqual(r.code, 0, r)
        p = r.json
        self.assertEqual(p["card"], card)
        self.assertEqual(p["first_name"], "Amélie")  # trimmed
        self.assertEqual(p["email"], "amelie.poulain@example.org")  # lower-cased
        self.assertEqual(p["phone"], "(860) 555-1234")  # as entered
        self.assertEqual(p["contact_channel"], "sms")
        self.assertEqual(p["home_branch"], "PRK")
        self.assertEqual(p["home_branch_name"], "Park Street Branch at the Lyric")
        self.assertEqual(p["category"], "adult")
        self.assertEqual(p["expires_on"], today_plus(years=3))  # adult: 3 years
        self.assertTrue(p["keep_history"])
        self.assertEqual(p["version"], 1)
        self.assertFalse(p["expired"])
        self.assertEqual(p["blocks"], [])
        again = show(card)
        self.assertEqual(again["id"], p["id"])
        self.assertEqual(again["preferred_name"], "Amy")
        self.assertEqual(env.psql("SELECT phone_digits FROM patron WHERE card = '%s'" % card),
                         "8605551234")
        # Audited with staff, workstation and branch.
        row = env.psql("SELECT s.username, w.name, b.code, e.action, "
                       "e.changes->'email'->>'after' FROM audit_event e "
                       "JOIN staff s ON s.id = e.staff_id "
                       "JOIN workstation w ON w.id = e.workstation_id "
                       "JOIN branch b ON b.id = e.branch_id "
                       "WHERE e.entity = 'patron' AND e.entity_id = %d" % p["id"])
        self.assertEqual(row, "clara|desk-dwn|DWN|create|amelie.poulain@example.org")

    def test_defaults_and_privacy_choice(self):
        card = new_card()
        r = add(clerk(), card, "Default", "Person")
        self.assertEqual(r.code, 0, r)
        self.assertFalse(r.json["keep_history"])  # the default is no
        self.assertEqual(r.json["home_branch"], "DWN")  # the workstation's branch
        self.assertEqual(r.json["category"], "adult")
        self.assertEqual(r.json["contact_channel"], "none")
        self.assertEqual(env.psql("SELECT keep_history FROM patron WHERE card = '%s'" % card),
                         "f")

    def test_human_show(self):
        card = new_card()
        r = env.carrel(librarian(), "patron", "add", card, "--first", "Desk", "--last", "Alerted",
                       "--alert", "Ask for photo ID", "--email", "desk.alerted@test.example",
                       "--notes", "Prefers mornings.")
        self.assertEqual(r.code, 0, r)
        r = env.carrel(clerk(), "patron", "show", card, json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertIn("Alerted, Desk", r.stdout)
        self.assertIn("ALERT: Ask for photo ID", r.stdout)
        self.assertIn("Downtown Library (DWN)", r.stdout)
        self.assertIn("Prefers mornings.", r.stdout)
        self.assertIn("Status:       active", r.stdout)

    def test_not_found(self):
        r = env.carrel(clerk(), "patron", "show", new_card())
        self.assertEqual(r.code, 4, r)
        self.assertEqual(r.json["status"], "not_found")
        self.assertEqual(r.json["reason"], "patron")

    def test_categories(self):
        r = env.carrel(clerk(), "patron", "categories")
        self.assertEqual(r.code, 0, r)
        codes = {c["code"]: c["card_years"] for c in r.json["categories"]}
        for c in ("adult", "juvenile", "senior", "staff", "homebound", "nonresident",
                  "institutional"):
            self.assertIn(c, codes)
        r = env.carrel(clerk(), "patron", "categories", json_out=False)
        self.assertIn("homebound", r.stdout)

    def test_patron_data_needs_login(self):
        w = main.wire()
        self.assertEqual(w.hello().status, "ok")
        r = w.call(REQ_PATRON_GET, pb_message((1, new_card())))
        self.assertEqual((r.status, r.reason), ("unauthenticated", "login_required"))
        w.close()

    def test_save_checks_on_the_wire(self):
        card = new_card()
        self.assertEqual(add(clerk(), card, "Wire", "Checked").code, 0)
        pid = show(card)["id"]
        w = main.logged_in_wire()
        before = count("SELECT count(*) FROM audit_event")
        r = w.call(REQ_PATRON_SAVE, b"", key="not-a-uuid")
        self.assertEqual((r.status, r.reason), ("bad_request", "request_key"))
        r = w.call(REQ_PATRON_SAVE, b"")
        self.assertEqual((r.status, r.reason), ("bad_request", "field:patron"))
        edit = pb_message((1, pid), (2, card), (3, "Wire"), (4, "Changed"), (15, "DWN"),
                          (16, "adult"), (17, show(card)["expires_on"]))
        r = w.call(REQ_PATRON_SAVE, pb_message((1, edit)))  # no version
        self.assertEqual((r.status, r.reason), ("bad_request", "field:version"))
        r = w.call(REQ_PATRON_SAVE, pb_message((1, edit + pb_message((22, 1)))))
        self.assertEqual(r.status, "ok", r)
        self.assertEqual(count("SELECT count(*) FROM audit_event"), before + 1)
        w.close()

    def test_log_has_no_personal_data(self):
        card = new_card()
        r = add(clerk(), card, "Zebulon", "Privatestone", "--email", "zeb.private@test.example",
                "--phone", "860 555 8642")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(env.carrel(clerk(), "patron", "find", "privatestone").code, 0)
        log = main.log_text()
        self.assertIn(card, log)
        for secret in ("Zebulon", "Privatestone", "privatestone", "zeb.private",
                       "555 8642", "5558642"):
            self.assertFalse(secret in log, secret)


class Validation(unittest.TestCase):
    def counts(self):
        return (count("SELECT count(*) FROM patron"), count("SELECT count(*) FROM audit_event"))

    def assert_refused(self, args, reason, status="bad_request", prof=None):
        before = self.counts()
        r = env.carrel(prof or clerk(), "patron", "add", *args)
        self.assertEqual(r.code, 4, r)
        self.assertEqual(r.json["status"], status, r)
        self.assertEqual(r.json["reason"], reason, r)
        self.assertRegex(r.json["message"], r"[.?]$")  # a sentence
        self.assertEqual(self.counts(), before)
        return r

    def test_every_field_error_changes_nothing(self):
        future = today_plus(days=10)
        cases = [
            (["--first", ""], "field:first_name"),
            (["--first", "   "], "field:first_name"),
            (["--last", ""], "field:last_name"),
            (["--first", "x" * 101], "field:first_name"),
            (["--email", "no-at-sign.example"], "field:email"),
            (["--email", "two@@example.org"], "field:email"),
            (["--email", "a b@example.org"], "field:email"),
            (["--email", "name@nodot"], "field:email"),
            (["--phone", "12ab34567"], "field:phone"),
            (["--phone", "123"], "field:phone"),
            (["--phone", "1234567890123456789"], "field:phone"),
            (["--birth", "1980-02-30"], "field:birth_date"),
            (["--birth", "30/01/1980"], "field:birth_date"),
            (["--birth", future], "field:birth_date"),
            (["--birth", "1850-01-01"], "field:birth_date"),
            (["--expires", "2030-13-01"], "field:expires_on"),
            (["--expires", "tomorrow"], "field:expires_on"),
            (["--expires", "2001-01-01"], "field:expires_on"),
            (["--contact", "email"], "field:contact_channel"),
            (["--contact", "sms"], "field:contact_channel"),
            (["--contact", "phone", "--email", "x@test.example"], "field:contact_channel"),
            (["--category", "pirate"], "field:category"),
            (["--category", ""], "field:category"),
            (["--branch", "XYZ"], "field:home_branch"),
            (["--branch", ""], "field:home_branch"),
        ]
        for extra, reason in cases:
            with self.subTest(extra=extra):
                base = {"--first": "Valid", "--last": "Person"}
                args = [new_card()]
                for k, v in base.items():
                    if k not in extra:
                        args += [k, v]
                self.assert_refused(args + extra, reason)

    def test_card_check_digit(self):
        card = new_card()
        wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
        r = self.assert_refused([wrong, "--first", "Check", "--last", "Digit"], "field:card")
        self.assertIn("check digit", r.json["message"])
        # An item barcode (starts with 3) is not a library card.
        item = "3" + card[1:-1]
        item = harness.mod10(item)
        self.assert_refused([item, "--first", "Item", "--last", "Barcode"], "field:card")
        self.assert_refused(["", "--first", "No", "--last", "Card"], "field:card")
        r = add(clerk(), card, "Check", "Digit")
        self.assertEqual(r.code, 0, r)
        # A card in use.
        self.assert_refused([card, "--first", "Other", "--last", "Person"], "card_taken",
                            status="conflict")

    def test_clerk_may_not_set_account_fields_at_creation(self):
        r = self.assert_refused([new_card(), "--first", "A", "--last", "B", "--notes", "n"],
                                "role", status="forbidden")
        self.assertIn("staff notes", r.json["message"])
        r = self.assert_refused([new_card(), "--first", "A", "--last", "B", "--alert", "a"],
                                "role", status="forbidden")
        self.assertIn("desk alert", r.json["message"])
        r = self.assert_refused([new_card(), "--first", "A", "--last", "B", "--expires",
                                 today_plus(years=5)], "role", status="forbidden")
        self.assertIn("expiry", r.json["message"])

    def test_invalid_edit_changes_nothing(self):
        card = new_card()
        self.assertEqual(add(clerk(), card, "Edit", "Invalid").code, 0)
        before = self.counts()
        for args, reason in [(["--email", "bad"], "field:email"),
                             (["--birth", "2001-02-29"], "field:birth_date"),
                             (["--expires", ""], "field:expires_on"),
                             (["--first", ""], "field:first_name"),
                             (["--card", "123"], "field:card")]:
            r = env.carrel(clerk(), "patron", "edit", card, *args)
            self.assertEqual((r.code, r.json["reason"]), (4, reason), r)
        self.assertEqual(self.counts(), before)
        self.assertEqual(show(card)["version"], 1)


class Duplicates(unittest.TestCase):
    def test_same_name_and_birth_date(self):
        first = new_card()
        r = add(clerk(), first, "Bartholomew", "Quince", "--birth", "1971-03-04")
        self.assertEqual(r.code, 0, r)
        n = count("SELECT count(*) FROM patron")
        second = new_card()
        r = add(clerk(), second, "BARTHOLOMEW", "quince", "--birth", "1971-03-04")
        self.assertEqual(r.code, 4, r)
        self.assertEqual(r.json["status"], "conflict")
        self.assertEqual(r.json["reason"], "possible_duplicate")
        self.assertEqual([p["card"] for p in r.json["patron_find"]["patrons"]], [first])
        self.assertEqual(count("SELECT count(*) FROM patron"), n)
        # People see the look-alikes.
        r = env.carrel(clerk(), "patron", "add", second, "--first", "Bartholomew", "--last",
                       "Quince", "--birth", "1971-03-04", json_out=False)
        self.assertEqual(r.code, 4, r)
        self.assertIn(first, r.stdout)
        self.assertIn("--allow-duplicate", r.stdout)
        # A different birth date is a different person.
        r = add(clerk(), new_card(), "Bartholomew", "Quince", "--birth", "1999-03-04")
        self.assertEqual(r.code, 0, r)
        # Saved anyway when staff say so.
        r = add(clerk(), second, "Bartholomew", "Quince", "--birth", "1971-03-04",
                "--allow-duplicate")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(count("SELECT count(*) FROM patron"), n + 2)

    def test_same_email_or_phone(self):
        first = new_card()
        r = add(clerk(), first, "Ottoline", "Vance", "--email", "ottoline@test.example",
                "--phone", "+1 (203) 555-9001")
        self.assertEqual(r.code, 0, r)
        r = add(clerk(), new_card(), "Someone", "Else", "--email", "OTTOLINE@test.example")
        self.assertEqual((r.code, r.json["reason"]), (4, "possible_duplicate"), r)
        r = add(clerk(), new_card(), "Someone", "Else", "--phone", "203.555.9001")
        self.assertEqual((r.code, r.json["reason"]), (4, "possible_duplicate"), r)
        self.assertEqual(r.json["patron_find"]["patrons"][0]["card"], first)


class Search(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cards = {}
        for key, first, last, extra in [
            ("jose", "José", "Ñúñez-Searchable", ["--phone", "(959) 555-4321",
                                                  "--email", "Jose.Nunez@Test.Example"]),
            ("joan", "Joanne", "Searchable", ["--phone", "959-555-9876"]),
            ("pat", "Patrick", "Otherwise", ["--email", "pat.searchable@test.example"]),
        ]:
            cls.cards[key] = new_card()
            r = add(clerk(), cls.cards[key], first, last, *extra)
            assert r.code == 0, r

    def find(self, *args):
        r = env.carrel(clerk(), "patron", "find", *args)
        self.assertEqual(r.code, 0, r)
        return [p["card"] for p in r.json["patrons"]]

    def test_by_name_partial_case_and_accent_insensitive(self):
        c = self.cards
        self.assertEqual(set(self.find("searchable")), {c["jose"], c["joan"]})
        self.assertEqual(self.find("SEARCHABLE", "jos"), [c["jose"]])
        self.assertEqual(self.find("jose", "nunez"), [c["jose"]])  # accents ignored
        self.assertEqual(self.find("núñez"), [c["jose"]])
        self.assertEqual(self.find("anne", "searcha"), [c["joan"]])  # infix
        self.assertEqual(self.find("searchable", "nobody"), [])
        self.assertEqual(self.find("100%_"), [])  # wildcards are literal

    def test_by_phone_any_formatting(self):
        c = self.cards
        for q in ["(959) 555-4321", "959.555.4321", "+1 959 555 4321", "9595554321",
                  "555-4321", "4321"]:
            with self.subTest(q=q):
                self.assertIn(c["jose"], self.find("--phone", q))
        self.assertEqual(self.find("--phone", "959-555-9876"), [c["joan"]])
        r = env.carrel(clerk(), "patron", "find", "--phone", "12")
        self.assertEqual((r.code, r.json["reason"]), (4, "field:phone"), r)

    def test_by_email(self):
        c = self.cards
        self.assertEqual(self.find("--email", "JOSE.NUNEZ@test.example"), [c["jose"]])
        self.assertEqual(self.find("--email", "pat.searchable"), [c["pat"]])
        # Criteria combine.
        self.assertEqual(self.find("searchable", "--email", "jose"), [c["jose"]])

    def test_table_for_people(self):
        r = env.carrel(clerk(), "patron", "find", "searchable", json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertIn("Card", r.stdout.splitlines()[0])
        self.assertIn("Searchable, Joanne", r.stdout)


class Permissions(unittest.TestCase):
    def setUp(self):
        self.card = new_card()
        r = add(clerk(), self.card, "Perm", "Tester", "--email", "perm.%s@test.example" % self.card)
        self.assertEqual(r.code, 0, r)

    def test_clerk_edits_contact_details(self):
        r = env.carrel(clerk(), "patron", "edit", self.card, "--phone", "860-555-2222",
                       "--address1", "1 Main Street", "--city", "Hartford", "--branch", "ALB",
                       "--keep-history", "yes", "--preferred", "Permy", "--contact", "sms")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["version"], 2)
        self.assertEqual(r.json["phone"], "860-555-2222")
        self.assertEqual(r.json["home_branch"], "ALB")
        self.assertTrue(r.json["keep_history"])
        # An empty value clears an optional field.
        r = env.carrel(clerk(), "patron", "edit", self.card, "--preferred", "")
        self.assertEqual(r.code, 0, r)
        self.assertNotIn("preferred_name", r.json)

    def test_clerk_may_not_edit_account_fields(self):
        for args, word in [(["--category", "senior"], "category"),
                           (["--notes", "a note"], "staff notes"),
                           (["--alert", "an alert"], "desk alert"),
                           (["--expires", today_plus(years=9)], "expiry"),
                           (["--expires", today_plus(days=30)], "expiry")]:
            with self.subTest(args=args):
                r = env.carrel(clerk(), "patron", "edit", self.card, *args)
                self.assertEqual(r.code, 4, r)
                self.assertEqual(r.json["status"], "forbidden")
                self.assertEqual(r.json["reason"], "role")
                self.assertIn(word, r.json["message"])
        self.assertEqual(show(self.card)["version"], 1)

    def test_clerk_renews_within_card_years(self):
        card = new_card()
        r = env.carrel(librarian(), "patron", "add", card, "--first", "Renew", "--last", "Me",
                       "--expires", today_plus(days=20))
        self.assertEqual(r.code, 0, r)
        r = env.carrel(clerk(), "patron", "edit", card, "--expires", today_plus(years=3))
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["expires_on"], today_plus(years=3))

    def test_librarian_edits_account_fields(self):
        r = env.carrel(librarian(), "patron", "edit", self.card, "--category", "senior",
                       "--notes", "Moved to senior rate.", "--alert", "Check address",
                       "--expires", today_plus(years=7))
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["category"], "senior")
        self.assertEqual(r.json["desk_alert"], "Check address")
        self.assertEqual(r.json["expires_on"], today_plus(years=7))

    def test_clerk_cannot_block_merge_or_read_history(self):
        for args in [("block", self.card, "--reason", "x"), ("unblock", self.card),
                     ("merge", self.card, new_card()), ("history", self.card)]:
            with self.subTest(args=args):
                r = env.carrel(clerk(), "patron", *args)
                self.assertEqual(r.code, 4, r)
                self.assertEqual((r.json["status"], r.json["reason"]), ("forbidden", "role"))
                self.assertIn("clerk", r.json["message"])


class Versions(unittest.TestCase):
    def test_second_desk_gets_conflict_and_current_record(self):
        card = new_card()
        self.assertEqual(add(clerk(), card, "Two", "Desks").code, 0)
        desk1 = profile("clara", "desk-dwn")
        desk2 = profile("carl", "desk-dwn-2")
        v1 = show(card, desk1)["version"]
        v2 = show(card, desk2)["version"]
        self.assertEqual(v1, v2)
        r = env.carrel(desk1, "patron", "edit", card, "--version", str(v1),
                       "--phone", "860-555-3030")
        self.assertEqual(r.code, 0, r)
        r = env.carrel(desk2, "patron", "edit", card, "--version", str(v2),
                       "--email", "two.desks@test.example")
        self.assertEqual(r.code, 4, r)
        self.assertEqual(r.json["status"], "conflict")
        self.assertEqual(r.json["reason"], "stale_version")
        self.assertEqual(r.json["patron"]["phone"], "860-555-3030")  # the current record
        self.assertEqual(r.json["patron"]["version"], v1 + 1)
        p = show(card)
        self.assertNotIn("email", p)  # desk 2's edit did not land
        self.assertEqual(p["phone"], "860-555-3030")
        # People see the current record too.
        r = env.carrel(desk2, "patron", "edit", card, "--version", str(v2),
                       "--email", "two.desks@test.example", json_out=False)
        self.assertEqual(r.code, 4, r)
        self.assertIn("860-555-3030", r.stdout)
        self.assertIn("another desk", r.stderr)

    def test_ten_parallel_edits_one_wins(self):
        card = new_card()
        self.assertEqual(add(clerk(), card, "Parallel", "Edits").code, 0)
        v = show(card)["version"]
        profiles = [profile("clara", "desk-dwn"), profile("carl", "desk-dwn-2")]

        def edit(i):
            return env.carrel(profiles[i % 2], "patron", "edit", card, "--version", str(v),
                              "--city", "City %d" % i)

        results = harness.run_parallel(edit, [(i,) for i in range(10)])
        ok = [r for r in results if r.code == 0]
        conflicts = [r for r in results if r.code == 4 and r.json["reason"] == "stale_version"]
        self.assertEqual(len(ok), 1, results)
        self.assertEqual(len(conflicts), 9, results)
        p = show(card)
        self.assertEqual(p["version"], v + 1)
        self.assertEqual(p["city"], ok[0].json["city"])
        self.assertEqual(count("SELECT count(*) FROM audit_event WHERE action = 'edit' AND "
                               "entity_id = %d" % p["id"]), 1)

    def test_unchanged_save_keeps_version(self):
        card = new_card()
        self.assertEqual(add(clerk(), card, "Same", "Same").code, 0)
        r = env.carrel(clerk(), "patron", "edit", card, "--first", "Same")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["version"], 1)


class BlocksAndHistory(unittest.TestCase):
    def test_block_unblock_with_reason_and_audit(self):
        card = new_card()
        self.assertEqual(add(clerk(), card, "Blocky", "McBlock").code, 0)
        r = env.carrel(librarian(), "patron", "block", card, "--reason", "  ")
        self.assertEqual((r.code, r.json["reason"]), (4, "field:reason"), r)
        r = env.carrel(librarian(), "patron", "block", card, "--reason", "Unpaid lost book")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(len(r.json["blocks"]), 1)
        b = r.json["blocks"][0]
        self.assertEqual((b["reason"], b["placed_by"]), ("Unpaid lost book", "libby"))
        r = env.carrel(clerk(), "patron", "show", card, json_out=False)
        self.assertIn("BLOCKED", r.stdout)
        self.assertIn("Unpaid lost book", r.stdout)
        r = env.carrel(librarian(), "patron", "block", card, "--reason", "Second reason")
        self.assertEqual(len(r.json["blocks"]), 2)
        r = env.carrel(librarian(), "patron", "unblock", card)
        self.assertEqual((r.code, r.json["reason"]), (4, "field:block_id"), r)
        r = env.carrel(librarian(), "patron", "unblock", card, "--block", str(b["id"]))
        self.assertEqual(r.code, 0, r)
        self.assertEqual([x["reason"] for x in r.json["blocks"]], ["Second reason"])
        r = env.carrel(librarian(), "patron", "unblock", card)
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["blocks"], [])
        r = env.carrel(librarian(), "patron", "unblock", card)
        self.assertEqual((r.code, r.json["reason"]), (4, "not_blocked"), r)
        self.assertEqual(count("SELECT count(*) FROM patron_block k JOIN patron p "
                               "ON p.id = k.patron_id WHERE p.card = '%s' AND "
                               "k.lifted_at IS NOT NULL" % card), 2)
        r = env.carrel(librarian(), "patron", "history", card)
        actions = [e["action"] for e in r.json["entries"]]
        self.assertEqual(actions, ["unblock", "unblock", "block", "block", "create"])
        first_block = r.json["entries"][3]["changes"][0]
        self.assertEqual(first_block, {"field": "block", "after": "Unpaid lost book"})
        self.assertEqual(r.json["entries"][0]["changes"][0],
                         {"field": "block", "before": "Second reason"})

    def test_history_shows_before_and_after(self):
        card = new_card()
        self.assertEqual(add(clerk(), card, "Hist", "Ory", "--email", "hist@test.example").code,
                         0)
        r = env.carrel(profile("carl", "desk-dwn-2"), "patron", "edit", card, "--email",
                       "history@test.example", "--city", "Hartford")
        self.assertEqual(r.code, 0, r)
        r = env.carrel(librarian(), "patron", "history", card)
        self.assertEqual(r.code, 0, r)
        edit, create = r.json["entries"]
        self.assertEqual((edit["action"], edit["staff"], edit["workstation"],
                          edit["branch_code"]), ("edit", "carl", "desk-dwn-2", "DWN"))
        self.assertEqual(edit["changes"], [
            {"field": "city", "after": "Hartford"},
            {"field": "email", "before": "hist@test.example", "after": "history@test.example"}])
        self.assertEqual((create["action"], create["staff"]), ("create", "clara"))
        self.assertIn({"field": "last_name", "after": "Ory"}, create["changes"])
        self.assertRegex(edit["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        r = env.carrel(librarian(), "patron", "history", card, json_out=False)
        self.assertIn("email: hist@test.example \u2192 history@test.example", r.stdout)
        self.assertIn("desk-dwn-2", r.stdout)


class Merge(unittest.TestCase):
    def test_merge_moves_everything_and_old_card_finds_kept(self):
        keep, dup = new_card(), new_card()
        r = add(clerk(), keep, "Mergeable", "Keeper", "--birth", "1960-06-06")
        self.assertEqual(r.code, 0, r)
        keep_id = r.json["id"]
        r = env.carrel(librarian(), "patron", "add", dup, "--first", "Mergeable", "--last",
                       "Keeper", "--birth", "1960-06-06", "--allow-duplicate",
                       "--email", "mergeable@test.example", "--notes", "Old card note.",
                       "--alert", "Old alert")
        self.assertEqual(r.code, 0, r)
        dup_id = r.json["id"]
        r = env.carrel(librarian(), "patron", "block", dup, "--reason", "Damaged DVD")
        self.assertEqual(r.code, 0, r)
        # A table added later (like loans) with a foreign key to patron follows.
        env.psql("CREATE TABLE IF NOT EXISTS test_loan (id serial PRIMARY KEY, "
                 "patron_id bigint NOT NULL REFERENCES patron, item text); "
                 "GRANT ALL ON test_loan TO carrel; "
                 "INSERT INTO test_loan (patron_id, item) VALUES (%d, 'loan-a'), (%d, 'loan-b')"
                 % (dup_id, dup_id))

        r = env.carrel(librarian(), "patron", "merge", keep, dup)
        self.assertEqual(r.code, 0, r)
        p = r.json
        self.assertEqual(p["card"], keep)
        self.assertEqual(p["former_cards"], [dup])
        self.assertEqual([b["reason"] for b in p["blocks"]], ["Damaged DVD"])
        self.assertEqual(p["email"], "mergeable@test.example")  # filled from the duplicate
        self.assertIn("Old card note.", p["staff_notes"])
        self.assertIn("Old alert", p["desk_alert"])
        self.assertEqual(count("SELECT count(*) FROM test_loan WHERE patron_id = %d" % keep_id),
                         2)
        self.assertEqual(env.psql("SELECT merged_into FROM patron WHERE id = %d" % dup_id),
                         str(keep_id))
        # The merged card finds the kept record.
        again = show(dup)
        self.assertEqual((again["id"], again["card"]), (keep_id, keep))
        r = env.carrel(clerk(), "patron", "show", dup, json_out=False)
        self.assertIn("was merged into this record", r.stdout)
        # Search shows only the kept record.
        r = env.carrel(clerk(), "patron", "find", "mergeable", "keeper")
        self.assertEqual([x["card"] for x in r.json["patrons"]], [keep])
        # The history of the kept record includes the duplicate's.
        r = env.carrel(librarian(), "patron", "history", keep)
        entries = [(e["action"], e["card"]) for e in r.json["entries"]]
        self.assertIn(("merge", keep), entries)
        self.assertIn(("merge", dup), entries)
        self.assertIn(("block", dup), entries)
        self.assertIn(("create", dup), entries)
        self.assertIn(("create", keep), entries)
        merge_entry = [e for e in r.json["entries"] if e["action"] == "merge"
                       and e["card"] == keep][0]
        self.assertIn({"field": "merged_card", "after": dup}, merge_entry["changes"])
        # Refusals.
        r = env.carrel(librarian(), "patron", "merge", keep, keep)
        self.assertEqual((r.code, r.json["status"], r.json["reason"]),
                         (4, "bad_request", "self"), r)
        r = env.carrel(librarian(), "patron", "merge", keep, dup)
        self.assertEqual((r.code, r.json["status"], r.json["reason"]),
                         (4, "conflict", "already_merged"), r)
        r = env.carrel(librarian(), "patron", "merge", dup, keep)
        self.assertEqual((r.code, r.json["reason"]), (4, "already_merged"), r)
        r = env.carrel(librarian(), "patron", "merge", keep, new_card())
        self.assertEqual((r.code, r.json["reason"]), (4, "patron"), r)
        # Editing through the old card edits the kept record.
        r = env.carrel(clerk(), "patron", "edit", dup, "--city", "Hartford")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["card"], keep)
        # The merged card cannot be given to someone new.
        r = add(clerk(), dup, "New", "Person")
        self.assertEqual((r.code, r.json["reason"]), (4, "card_taken"), r)

    def test_chained_merges(self):
        a, b, c = new_card(), new_card(), new_card()
        for card in (a, b, c):
            r = add(clerk(), card, "Chain", "Link", "--allow-duplicate")
            self.assertEqual(r.code, 0, r)
        self.assertEqual(env.carrel(librarian(), "patron", "merge", b, a).code, 0)
        r = env.carrel(librarian(), "patron", "merge", c, b)
        self.assertEqual(r.code, 0, r)
        self.assertEqual(sorted(r.json["former_cards"]), sorted([a, b]))
        self.assertEqual(show(a)["card"], c)
        r = env.carrel(librarian(), "patron", "history", c)
        self.assertIn(a, {e["card"] for e in r.json["entries"]})


class DemoData(unittest.TestCase):
    def test_demo_seed_loads_and_is_idempotent(self):
        path = os.path.join(harness.SOURCE, "sql", "seed", "demo_patrons.sql")
        env.psql_file(path)
        stats = env.psql("SELECT count(*), count(DISTINCT home_branch_id), "
                         "count(DISTINCT category), count(*) FILTER (WHERE expires_on < "
                         "current_date), count(email), count(phone), "
                         "bool_and(barcode_mod10_ok(card)) FROM patron WHERE card LIKE '21234%'")
        n, branches, cats, expired, emails, phones, cards_ok = stats.split("|")
        self.assertGreaterEqual(int(n), 250)
        self.assertEqual(int(branches), 7)
        self.assertEqual(int(cats), 7)
        self.assertGreater(int(expired), 0)
        self.assertGreater(int(emails), 0)
        self.assertGreater(int(phones), 0)
        self.assertEqual(cards_ok, "t")
        self.assertGreater(count("SELECT count(*) FROM patron_block k JOIN patron p ON "
                                 "p.id = k.patron_id WHERE p.card LIKE '21234%'"), 0)
        audit = count("SELECT count(*) FROM audit_event")
        env.psql_file(path)
        self.assertEqual(count("SELECT count(*) FROM patron WHERE card LIKE '21234%'"), int(n))
        self.assertEqual(count("SELECT count(*) FROM audit_event"), audit)
        # Demo patrons are ordinary records.
        card = env.psql("SELECT card FROM patron WHERE card LIKE '21234%' ORDER BY id LIMIT 1")
        self.assertEqual(show(card)["card"], card)
        r = env.carrel(librarian(), "patron", "history", card)
        self.assertEqual(r.json["entries"][-1]["action"], "create")
        self.assertNotIn("staff", r.json["entries"][-1])


def on_terminal(prof, *args):
    """Run carrel with its stdout on a pseudo-terminal: (exit code, output, stderr)."""
    master, slave = pty.openpty()
    e = dict(os.environ)
    e.pop("CARREL_PASSWORD", None)
    proc = subprocess.Popen([harness.CARREL, "-c", prof] + list(args), stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=subprocess.PIPE, env=e)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the program has gone and closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.wait(timeout=120)
    for mark in harness.SANITIZER_MARKS:
        assert mark not in err, err
    return proc.returncode, out.decode(), err


class Escaping(unittest.TestCase):
    """Stored text with terminal escape sequences (from before the server refused
    them, or written by other means) is printed escaped, never raw."""

    @classmethod
    def setUpClass(cls):
        cls.card = new_card()
        r = env.carrel(librarian(), "patron", "add", cls.card, "--first", "Tess",
                       "--last", "Escapade", "--alert", "plain", "--notes", "plain")
        assert r.code == 0, r
        env.psql("UPDATE patron SET last_name = 'Escapade' || chr(27) || ']0;owned' || chr(7),"
                 " staff_notes = 'Line one' || chr(10) || 'Paid ' || chr(27) || '[31mred'"
                 " || chr(27) || '[0m',"
                 " desk_alert = 'Look' || chr(155) || '2J here'"
                 " WHERE card = '%s'" % cls.card)

    def assert_no_controls(self, text):
        for c in ["\x1b", "\x07", "\x9b"]:
            self.assertNotIn(c, text)

    def test_detail_view_on_a_terminal(self):
        code, out, err = on_terminal(clerk(), "patron", "show", self.card)
        self.assertEqual(code, 0, err)
        self.assert_no_controls(out)
        self.assertIn("Escapade\\e]0;owned\\x07, Tess", out)
        self.assertIn("Paid \\e[31mred\\e[0m", out)
        self.assertIn("Look\\u{009B}2J here", out)
        self.assertIn("Line one", out)

    def test_table(self):
        r = env.carrel(clerk(), "patron", "find", "Escapade", json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assert_no_controls(r.stdout)
        self.assertIn("Escapade\\e]0;owned\\x07, Tess", r.stdout)

    def test_json(self):
        r = env.carrel(clerk(), "patron", "show", self.card)
        self.assertEqual(r.code, 0, r)
        self.assert_no_controls(r.stdout)
        self.assertIn("\\u001b[31m", r.stdout)
        self.assertIn("\\u009b", r.stdout)
        self.assertEqual(r.json["desk_alert"], "Look\x9b2J here")


if __name__ == "__main__":
    harness.main()
