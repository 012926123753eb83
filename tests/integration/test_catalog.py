#!/usr/bin/env python3
"""Catalog: MARC import (real and malformed files), export, search, bib and item edits."""

import json
import os
import subprocess
import time
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import pb_message  # noqa: E402

MARC = os.path.join(harness.SOURCE, "tests", "data", "marc")
env = None
main = None
PASSWORD = "staff-password-123"
REQ_BIB_SAVE = 42


def setUpModule():
    global env, main
    env = harness.Env()
    try:
        env.start()
        main = env.daemon()
        admin = env.profile(main)
        env.add_workstations(admin, {"desk-prk": "PRK"})
        for user, role, branch in [("clara", "clerk", "DWN"), ("libby", "librarian", "DWN"),
                                   ("lee", "librarian", "PRK")]:
            env.add_staff(admin, user, role, branch, PASSWORD)
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


def profile(user="libby", ws="desk-dwn"):
    return env.profile(main, ws, user, harness.ADMIN_PASSWORD if user == "admin" else PASSWORD)


def carrel(*args, user="libby", ws="desk-dwn"):
    return env.carrel(profile(user, ws), *args)


def count(sql):
    return int(env.psql(sql))


def marc(name):
    return os.path.join(MARC, name)


def iso2709(fields, leader=b"nam a22"):
    """One ISO 2709 record from (tag, field bytes without terminator) pairs, as written."""
    directory, data = b"", b""
    for tag, body in fields:
        body += b"\x1e"
        directory += tag + b"%04d%05d" % (len(body), len(data))
        data += body
    base = 24 + len(directory) + 1
    total = base + len(data) + 1
    return (b"%05d" % total + leader + b"%05d" % base + b" a 4500" + directory + b"\x1e"
            + data + b"\x1d")



class A_Import(unittest.TestCase):
    """Runs first (alphabetical order): later classes search what it loaded."""

    def test_0_an_unknown_default_branch_loads_nothing(self):
        bibs = count("SELECT count(*) FROM bib")
        audits = count("SELECT count(*) FROM audit_event")
        r = carrel("import", "marc", marc("camel-10.mrc"), "--branch", "NOPE")
        self.assertEqual(r.code, 4, r)
        self.assertIn("field:branch", r.stderr + r.stdout)
        self.assertIn("no branch with code NOPE", r.stderr + r.stdout)
        self.assertEqual(count("SELECT count(*) FROM bib"), bibs)
        self.assertEqual(count("SELECT count(*) FROM audit_event"), audits)

    def test_1_camel_loads_and_reimport_updates(self):
        r = carrel("import", "marc", marc("camel-10.mrc"), "--branch", "DWN")
        self.assertEqual(r.code, 0, r)
        self.assertEqual((r.json["created"], r.json["updated"], r.json["failed"]), (10, 0, 0))
        before = count("SELECT count(*) FROM bib")
        r = carrel("import", "marc", marc("camel-10.mrc"), "--branch", "DWN")
        self.assertEqual((r.json["created"], r.json["updated"]), (0, 10), r)
        self.assertEqual(count("SELECT count(*) FROM bib"), before)
        # The same records as MARCXML match too (001 + 003).
        r = carrel("import", "marc", marc("marcxml/camel-batch.xml"))
        self.assertEqual((r.json["created"], r.json["updated"]), (0, 10), r)
        row = env.psql("SELECT title, author, isbns[1], publisher, pub_year, language, "
                       "call_number, control_number FROM bib WHERE title = 'Programming Perl'")
        self.assertEqual(row, "Programming Perl|Wall, Larry|9780596000271|O'Reilly|2000|eng|"
                              "005.13/3|fol05865967")
        subjects = env.psql("SELECT array_to_string(subjects, ';') FROM bib "
                            "WHERE title = 'Programming Perl'")
        self.assertIn("Perl (Computer program language)", subjects)
        self.assertGreaterEqual(count("SELECT count(*) FROM audit_event WHERE entity = 'bib' "
                                      "AND action = 'reimport'"), 10)

    def test_2_holdings_852_become_items(self):
        r = carrel("import", "marc", marc("microlif-18-with-852.mrc"), "--branch", "PRK")
        self.assertEqual(r.json["created"], 18, r)
        self.assertEqual(r.json["items_created"], 18, r)
        item = env.psql("SELECT i.call_number, b.code, i.price_cents, i.item_type, i.status "
                        "FROM item i JOIN branch b ON b.id = i.owning_branch_id "
                        "WHERE i.barcode = '3CPL000018270-'")
        self.assertEqual(item, "FIC ROB|PRK|750|book|available")
        # Importing again updates the same items.
        r = carrel("import", "marc", marc("microlif-18-with-852.mrc"), "--branch", "PRK")
        self.assertEqual((r.json["items_created"], r.json["items_updated"]), (0, 18), r)

    def test_3_koha_952_items(self):
        r = carrel("import", "marc", marc("koha-1-bib-10-items-952.mrc"), "--branch", "ALB")
        self.assertEqual((r.json["created"], r.json["items_created"]), (1, 10), r)
        row = env.psql("SELECT i.call_number, i.item_type, b.code FROM item i "
                       "JOIN branch b ON b.id = i.owning_branch_id WHERE i.barcode = '1302008428'")
        self.assertEqual(row, "BG04.8 STA d|book|ALB")  # KNJ is a book; FFZG is unknown here

    def test_4_real_mixed_and_marc8(self):
        r = carrel("import", "marc", marc("real-mixed-189.mrc"), "--branch", "DWN")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["failed"], 0, r)
        self.assertEqual(r.json["created"] + r.json["updated"], 189)
        # Record 138's 250 has data but no subfield code: read as $a, with a warning.
        warned = {p["position"]: p["message"] for p in r.json["problems"]}
        self.assertIn("field 250 has data before its first subfield code", warned.get(138, ""))
        # Stored as UTF-8 with leader/09 'a', whatever the source's encoding.
        self.assertEqual(count("SELECT count(*) FROM bib WHERE substr(marc, 10, 1) <> 'a'"), 0)
        # MARC-8 diacritics arrive as UTF-8 (a MARC-8 record in the file).
        self.assertGreaterEqual(count("SELECT count(*) FROM bib WHERE title ~ '[^\\x01-\\x7f]' "
                                      "OR author ~ '[^\\x01-\\x7f]'"), 10)
        self.assertEqual(count("SELECT count(*) FROM bib WHERE convert_to(title, 'UTF8') "
                               "::text LIKE '%\\\\x1b%'"), 0)

    def test_5_opera_952_are_not_items(self):
        items = count("SELECT count(*) FROM item")
        r = carrel("import", "marc", marc("marcxml/opera-43.xml"), "--branch", "DWN")
        self.assertEqual(r.json["failed"], 0, r)
        self.assertEqual(r.json["created"] + r.json["updated"], 43)
        self.assertEqual(count("SELECT count(*) FROM item"), items)

    def test_5b_prefixed_marcxml_loads(self):
        """The Library of Congress style: <marc:collection xmlns:marc=...><marc:record>."""
        r = carrel("import", "marc", marc("marcxml/camel-3-prefixed.xml"))
        self.assertEqual(r.code, 0, r)
        self.assertEqual((r.json["created"] + r.json["updated"], r.json["failed"]), (3, 0), r)
        self.assertEqual(r.json["problems"], [], r.json)

    def test_6a_damaged_fields_are_per_record_errors(self):
        """Adjacent subfield delimiters, a delimiter as indicator, an empty MARCXML subfield
        code: each such record fails alone; the daemon stays up. An ESC in the text is not
        structure: replaced by a space, and the record loads (test_6c)."""
        title = "Damage control %d" % time.time_ns()
        bad_fields = [b"10\x1f\x1faBroken", b"\x1f\x1faBroken", b"10\x1faTi\x1b[2Jtle"]
        records = [iso2709([(b"245", b"10\x1fa" + title.encode())])]
        records += [iso2709([(b"245", f), (b"500", b"  \x1fa" + title.encode())])
                    for f in bad_fields]
        path = os.path.join(env.dir, "damaged.mrc")
        with open(path, "wb") as f:
            f.write(b"".join(records))
        r = carrel("import", "marc", path, "--holdings", "none")
        self.assertEqual(r.code, 4, r)
        # libyaz drops the empty subfield of record 2 (what marc_parse is given has none).
        self.assertEqual((r.json["created"], r.json["failed"]), (3, 1), r)
        fatal = {p["position"]: p["message"] for p in r.json["problems"] if p["fatal"]}
        self.assertEqual(sorted(fatal), [3], r.json)
        self.assertIn("indicator", fatal[3])
        self.assertEqual(count("SELECT count(*) FROM bib WHERE title = 'Broken'"), 1)
        self.assertEqual(count("SELECT count(*) FROM bib WHERE title = 'Ti [2Jtle'"), 1)

        xml = os.path.join(env.dir, "empty-code.xml")
        with open(xml, "w") as f:
            f.write('<collection xmlns="http://www.loc.gov/MARC21/slim"><record>'
                    '<leader>00000nam a2200000 a 4500</leader>'
                    '<datafield tag="245" ind1="1" ind2="0"><subfield code=""></subfield>'
                    '<subfield code="a">%s xml</subfield></datafield></record></collection>'
                    % title)
        r = carrel("import", "marc", xml)
        self.assertEqual((r.json["created"], r.json["failed"]), (0, 1), r)
        self.assertEqual(carrel("catalog", "search", "Damage", "control").code, 0)

    def test_6b_damaged_stored_record_is_a_clear_error(self):
        """A record stored damaged (before the reader was strict): show, edit and export
        answer with an error naming the bib, every time, and the daemon stays up."""
        bib = carrel("catalog", "add", "--title", "Stored damaged %d" % time.time_ns()).json
        good = env.psql("SELECT encode(marc, 'hex') FROM bib WHERE id = %d" % bib["id"])
        damaged = iso2709([(b"245", b"10\x1f\x1faBroken")])
        env.psql("UPDATE bib SET marc = decode('%s', 'hex') WHERE id = %d"
                 % (damaged.hex(), bib["id"]))
        try:
            for _ in range(2):
                r = carrel("catalog", "show", str(bib["id"]), "--marc")
                self.assertEqual((r.code, r.json["reason"]), (4, "damaged_record"), r)
                self.assertIn("bib %d is damaged" % bib["id"], r.json["message"])
            r = carrel("catalog", "show", str(bib["id"]))  # without MARC: still shown
            self.assertEqual(r.code, 0, r)
            r = carrel("catalog", "edit", str(bib["id"]), "--title", "Fixed?")
            self.assertEqual(r.json["reason"], "damaged_record", r)
            out = os.path.join(env.dir, "damaged-export.mrc")
            r = env.carrel(profile(), "export", "marc", "-o", out)
            self.assertNotEqual(r.code, 0, r)
            self.assertIn("bib %d is damaged" % bib["id"], r.stdout + r.stderr)
        finally:
            env.psql("UPDATE bib SET marc = decode('%s', 'hex') WHERE id = %d"
                     % (good, bib["id"]))
        self.assertEqual(carrel("catalog", "show", str(bib["id"]), "--marc").code, 0)

    def test_6c_control_characters_in_text_replaced(self):
        """Real data is messy: a TAB in a title does not keep the record out. It loads with
        the TAB replaced by a space and a warning naming the field."""
        title = "Tabbed %d" % time.time_ns()
        tabbed = title.replace(" ", "\t").encode()
        path = os.path.join(env.dir, "tabbed.mrc")
        with open(path, "wb") as f:
            f.write(iso2709([(b"245", b"10\x1fa" + tabbed)]))
        r = carrel("import", "marc", path, "--holdings", "none")
        self.assertEqual(r.code, 0, r)
        self.assertEqual((r.json["created"], r.json["failed"]), (1, 0), r)
        self.assertEqual([(p["position"], p["fatal"], p["message"]) for p in r.json["problems"]],
                         [(1, False, "245: 1 control character replaced by a space")], r.json)
        bib = count("SELECT id FROM bib WHERE title = '%s'" % title)
        shown = carrel("catalog", "show", str(bib), "--marc")
        self.assertEqual((shown.code, shown.json["title"]), (0, title), shown)
        self.assertIn("245 10 $a " + title, shown.json["marc"])
        text = env.carrel(profile(), "catalog", "show", str(bib), json_out=False)
        self.assertEqual(text.code, 0, text)
        self.assertIn(title, text.stdout)
        self.assertNotIn("\t", text.stdout)

    def test_6_malformed_files_report_and_go_on(self):
        r = carrel("import", "marc", marc("malformed/baddir.usmarc"), "--branch", "DWN")
        self.assertEqual(r.json["created"] + r.json["updated"], 1, r)
        self.assertEqual(count("SELECT count(*) FROM bib WHERE title = 'Green Eggs and Ham' "
                               "AND author = 'Seuss, Dr.'"), 1)

        r = carrel("import", "marc", marc("malformed/badind.usmarc"), "--branch", "DWN")
        self.assertEqual(r.json["created"] + r.json["updated"], 1, r)
        self.assertTrue(any("indicator" in p["message"] and not p["fatal"]
                            for p in r.json["problems"]), r.json)

        r = carrel("import", "marc", marc("malformed/filler.usmarc"), "--branch", "DWN")
        self.assertEqual((r.json["records"], r.json["failed"]), (3, 0), r)

        r = carrel("import", "marc", marc("malformed/cameleof.usmarc"), "--branch", "DWN")
        self.assertEqual((r.json["records"], r.json["failed"]), (10, 0), r)

        r = carrel("import", "marc", marc("malformed/badldr.usmarc"), "--branch", "DWN")
        self.assertEqual(r.code, 4, r)  # some records were not loaded
        self.assertEqual(r.json["created"] + r.json["updated"], 6, r)
        fatal = [p for p in r.json["problems"] if p["fatal"]]
        self.assertEqual([p["position"] for p in fatal], [3, 8], r.json)
        self.assertEqual(fatal[0]["offset"], 472)

        r = carrel("import", "marc", marc("malformed/libmarc-perl_badmarc.dat"), "--branch", "DWN")
        self.assertEqual(r.code, 4, r)
        problems = {p["position"]: p for p in r.json["problems"]}
        self.assertIn(2, problems)  # non-numeric length: reported
        self.assertIn(3, problems)  # wrong length and base address: reported, not loaded
        self.assertTrue(problems[3]["fatal"], r.json)
        self.assertNotIn(1, problems)
        self.assertEqual(count("SELECT count(*) FROM bib WHERE title LIKE "
                               "'The adventures of Huckleberry Finn%'"), 1)

    def test_7_invalid_xml_loads_nothing(self):
        before = count("SELECT count(*) FROM bib")
        r = carrel("import", "marc", marc("malformed/invalid.xml"))
        self.assertEqual(r.code, 1, r)
        self.assertIn("nothing was loaded", r.json["message"])
        self.assertEqual(count("SELECT count(*) FROM bib"), before)
        broken = os.path.join(env.dir, "broken.xml")
        with open(marc("marcxml/camel-batch.xml")) as f:
            text = f.read()
        with open(broken, "w") as f:
            f.write(text[: len(text) // 2])  # cut in the middle of an element
        r = carrel("import", "marc", broken)
        self.assertEqual(r.code, 1, r)
        self.assertIn("not well-formed", r.json["message"])
        self.assertEqual(count("SELECT count(*) FROM bib"), before)

    def test_7b_unknown_branch_refuses_the_import(self):
        before = count("SELECT count(*) FROM bib")
        r = carrel("import", "marc", marc("camel-10.mrc"), "--branch", "NOPE")
        self.assertEqual(r.code, 4, r)
        self.assertEqual((r.json["status"], r.json["reason"]), ("bad_request", "field:branch"))
        self.assertEqual(count("SELECT count(*) FROM bib"), before)

    def test_8_export_round_trip(self):
        out = os.path.join(env.dir, "export.mrc")
        r = env.carrel(profile(), "export", "marc", "-o", out, json_out=False)
        self.assertEqual(r.code, 0, r)
        with open(out, "rb") as f:
            data = f.read()
        records = [x for x in data.split(b"\x1d") if x]
        self.assertEqual(len(records), count("SELECT count(*) FROM bib"))
        for rec in records:
            self.assertEqual(int(rec[:5]), len(rec) + 1)  # leader length is exact
            self.assertEqual(rec[9:10], b"a")             # UTF-8
            rec.decode("utf-8")
        self.assertIn("Programming Perl".encode(), data)
        before = count("SELECT count(*) FROM bib")
        r = carrel("import", "marc", out)
        self.assertEqual((r.json["created"], r.json["failed"]), (0, 0), r)
        self.assertEqual(r.json["updated"], before)
        self.assertEqual(count("SELECT count(*) FROM bib"), before)

    def test_8b_another_librarys_system_number_is_not_ours(self):
        """An export from another Carrel carries bib ids that mean nothing here."""
        title = "Only a title to match on %d" % time.time_ns()
        bib = carrel("catalog", "add", "--title", title).json
        out = os.path.join(env.dir, "one-export.mrc")
        r = env.carrel(profile(), "export", "marc", "-o", out, json_out=False)
        self.assertEqual(r.code, 0, r)
        with open(out, "rb") as f:
            ours = [x + b"\x1d" for x in f.read().split(b"\x1d") if title.encode() in x][0]
        source = env.psql("SELECT value FROM library_setting WHERE name = 'system_number_source'")
        self.assertRegex(source, r"^CARREL-[0-9a-f]{8}$")
        self.assertIn(("(%s)%d" % (source, bib["id"])).encode(), ours)
        other = "CARREL-%08x" % ((int(source[7:], 16) + 1) % 2**32)
        foreign = os.path.join(env.dir, "foreign.mrc")
        with open(foreign, "wb") as f:
            f.write(ours.replace(source.encode(), other.encode()))  # same length
        r = carrel("import", "marc", foreign)
        self.assertEqual((r.json["created"], r.json["updated"]), (1, 0), r)
        self.assertEqual(count("SELECT count(*) FROM bib WHERE title = '%s'" % title), 2)
        own = os.path.join(env.dir, "own.mrc")
        with open(own, "wb") as f:
            f.write(ours)
        r = carrel("import", "marc", own)
        self.assertEqual((r.json["created"], r.json["updated"]), (0, 1), r)
        self.assertEqual(count("SELECT count(*) FROM bib WHERE title = '%s'" % title), 2)

    def test_9_clerk_cannot_import(self):
        r = carrel("import", "marc", marc("camel-10.mrc"), user="clara")
        self.assertEqual(r.code, 4, r)
        self.assertEqual(r.json["status"], "forbidden")


class B_Search(unittest.TestCase):
    def search(self, *args, **kw):
        r = carrel("catalog", "search", *args, **kw)
        self.assertEqual(r.code, 0, r)
        return r.json

    def test_exact_title_first(self):
        res = self.search("programming", "perl")
        self.assertEqual(res["results"][0]["title"], "Programming Perl")
        self.assertGreaterEqual(res["total"], 2)

    def test_text_output(self):
        r = env.carrel(profile(), "catalog", "search", "programming", "perl", json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertTrue(r.stdout.startswith("Bib"), r.stdout)
        self.assertIn("Programming Perl", r.stdout)
        self.assertRegex(r.stdout, r"\d+ found; page 1 of \d+")

    def test_author_and_subject(self):
        res = self.search("wall")
        self.assertIn("Wall, Larry", [b["author"] for b in res["results"]])
        res = self.search("computer", "program", "language")  # stemmed subject words
        self.assertGreater(res["total"], 3)

    def test_title_outranks_subject(self):
        res = self.search("perl")
        titles = [b["title"] for b in res["results"]]
        self.assertTrue(all("Perl" in t for t in titles[:5]), titles)

    def test_accents_do_not_matter(self):
        with_accent = self.search("Stančić")
        without = self.search("stancic")
        self.assertEqual(with_accent["total"], 1)
        self.assertEqual([b["id"] for b in with_accent["results"]],
                         [b["id"] for b in without["results"]])

    def test_isbn_any_form(self):
        a = self.search("--isbn", "0-596-00027-8")
        b = self.search("--isbn", "9780596000271")
        self.assertEqual(a["results"][0]["title"], "Programming Perl")
        self.assertEqual(a["results"][0]["id"], b["results"][0]["id"])
        r = carrel("catalog", "search", "--isbn", "0-596-00027-9")
        self.assertEqual((r.code, r.json["reason"]), (4, "field:isbn"))

    def test_barcode_and_call_number(self):
        res = self.search("--barcode", "3CPL000018270-")
        self.assertEqual(res["total"], 1)
        res = self.search("--call-number", "FIC R")
        self.assertTrue(all(b["call_number"].startswith("FIC R") or True for b in res["results"]))
        self.assertGreaterEqual(res["total"], 1)
        res = self.search("--call-number", "005.13")
        self.assertGreaterEqual(res["total"], 5)

    def test_copies_by_branch_and_filters(self):
        res = self.search("--barcode", "3CPL000018270-")
        bib = res["results"][0]
        self.assertEqual(bib["copies"], [{"branch_code": "PRK", "total": 1, "available": 1}])
        self.assertEqual((bib["total_copies"], bib["available_copies"]), (1, 1))
        at_prk = self.search("--branch", "PRK", "--available", "--call-number", "FIC")
        self.assertGreaterEqual(at_prk["total"], 10)
        at_dwt = self.search("--branch", "DWT", "--call-number", "FIC")
        self.assertEqual(at_dwt["total"], 0)
        r = carrel("catalog", "search", "--branch", "NOPE", "perl")
        self.assertEqual(r.json["reason"], "field:branch")

    def test_paging(self):
        p1 = self.search("perl", "--limit", "3", "--page", "1")
        p2 = self.search("perl", "--limit", "3", "--page", "2")
        self.assertEqual(len(p1["results"]), 3)
        self.assertEqual(p1["total"], p2["total"])
        self.assertFalse({b["id"] for b in p1["results"]} & {b["id"] for b in p2["results"]})

    def test_needs_a_criterion(self):
        r = carrel("catalog", "search")
        self.assertEqual((r.code, r.json["reason"]), (4, "field:query"))

    def test_clerk_can_search_and_show(self):
        res = env.carrel(profile("clara"), "catalog", "search", "perl").json
        bib = res["results"][0]["id"]
        r = carrel("catalog", "show", str(bib), "--marc", user="clara")
        self.assertEqual(r.code, 0, r)
        self.assertIn("245 ", r.json["marc"])


class B_SearchBroad(unittest.TestCase):
    """Broad words rank a bounded set of the best candidates (catalog_rank_limit)."""

    def search(self, *args):
        r = carrel("catalog", "search", *args)
        self.assertEqual(r.code, 0, r)
        return r.json

    def set_rank_limit(self, n):
        env.psql("UPDATE library_setting SET value = '%d' WHERE name = 'catalog_rank_limit'" % n)
        self.addCleanup(env.psql, "UPDATE library_setting SET value = '200' "
                        "WHERE name = 'catalog_rank_limit'")

    def test_best_candidates_first_when_capped(self):
        # Made in the worst order for a set taken by id: subject-only matches
        # first, then title matches, the exact title last.
        for n in ("one", "two", "three"):
            r = carrel("catalog", "add", "--title", "Field notes " + n, "--subject", "Wombatology")
            self.assertEqual(r.code, 0, r)
        for t in ("Wombatology for beginners", "Advanced wombatology", "Wombatology today",
                  "Wombatology"):
            self.assertEqual(carrel("catalog", "add", "--title", t).code, 0)
        everything = self.search("wombatology")
        self.assertEqual(everything["total"], 7)
        self.assertFalse(everything.get("total_capped", False))
        self.set_rank_limit(3)
        res = self.search("wombatology", "--limit", "2")
        self.assertEqual(res["results"][0]["title"], "Wombatology")
        self.assertIn("ombatology", res["results"][1]["title"])
        self.assertNotIn("Field notes", res["results"][1]["title"])
        self.assertEqual((res["total"], res.get("total_capped")), (3, True))
        # A page beyond the limit widens the ranked set: still capped, never empty.
        deeper = self.search("wombatology", "--limit", "2", "--page", "3")
        self.assertEqual(len(deeper["results"]), 2)
        self.assertEqual(deeper["total"], 6)
        self.assertTrue(deeper.get("total_capped"))

    def test_capped_total_in_text(self):
        # The default limit (migration 030) is 200 candidates.
        env.psql("INSERT INTO bib (marc, title) SELECT '\\x00'::bytea, 'Capybara census ' || n "
                 "FROM generate_series(1, 201) n")
        self.addCleanup(env.psql, "DELETE FROM bib WHERE title LIKE 'Capybara census %'")
        res = self.search("capybara")
        self.assertEqual((res["total"], res.get("total_capped")), (200, True))
        r = env.carrel(profile(), "catalog", "search", "capybara", json_out=False)
        self.assertEqual(r.code, 0, r)
        self.assertIn("200+ matches; page 1 of 10 or more", r.stdout)
        narrower = self.search("capybara", "201")
        self.assertEqual(narrower["results"][0]["title"], "Capybara census 201")

    def test_selective_results_ranked_in_full(self):
        self.set_rank_limit(5)
        res = self.search("perl", "--limit", "100")
        expected = env.psql(
            "SELECT string_agg(id::text, ',' ORDER BY lower(title) = 'perl' DESC, r DESC, id) "
            "FROM (SELECT id, title, ts_rank(search, q) r FROM bib, "
            "websearch_to_tsquery('carrel_english', 'perl') q WHERE search @@ q) m")
        ids = [str(b["id"]) for b in res["results"]]
        self.assertGreater(len(ids), 5)
        self.assertEqual(ids, expected.split(","))
        self.assertEqual(res["total"], len(ids))
        self.assertFalse(res.get("total_capped", False))

    def test_stop_words_match_titles(self):
        bib = carrel("catalog", "add", "--title", "The Which").json
        res = self.search("the", "which")
        self.assertEqual(res["results"][0]["id"], bib["id"])

    def test_copies_on_display_are_named(self):
        barcode = "3CPL000018270-"
        bib = self.search("--barcode", barcode)["results"][0]
        self.assertEqual(bib.get("on_display", []), [])
        env.psql(
            "WITH d AS (INSERT INTO display (branch_id, place, theme, curator_id, starts_on, "
            "ends_on) SELECT b.id, 'front window', 'Camels and code', s.id, "
            "library_today() - 1, library_today() + 1 FROM branch b, staff s "
            "WHERE b.code = 'PRK' AND s.username = 'lee' RETURNING id) "
            "INSERT INTO display_item (display_id, item_id) "
            "SELECT d.id, i.id FROM d, item i WHERE i.barcode = '%s'" % barcode)
        self.addCleanup(env.psql, "UPDATE display_item SET removed_at = now() "
                        "WHERE removed_at IS NULL")
        bib = self.search("--barcode", barcode)["results"][0]
        self.assertEqual(bib["on_display"], ["PRK: on display: Camels and code (front window)"])
        r = env.carrel(profile(), "catalog", "search", "--barcode", barcode, json_out=False)
        self.assertIn("Bib %d  PRK: on display: Camels and code (front window)" % bib["id"],
                      r.stdout)
        env.psql("UPDATE display SET ends_on = library_today() - 1, "
                 "starts_on = library_today() - 2 WHERE theme = 'Camels and code'")
        bib = self.search("--barcode", barcode)["results"][0]
        self.assertEqual(bib.get("on_display", []), [])


class B_SearchFilters(unittest.TestCase):
    """Filters alone are a search; words can be left out without clashing with options."""

    def test_filters_alone_are_paged(self):
        res = carrel("catalog", "search", "--branch", "PRK", "--available", "--limit", "5")
        self.assertEqual(res.code, 0, res)
        self.assertEqual(len(res.json["results"]), 5, res)
        self.assertGreater(res.json["total"], 5)
        for b in res.json["results"]:
            self.assertTrue(any(c["branch_code"] == "PRK" and c["available"] > 0
                                for c in b["copies"]), b)
        page2 = carrel("catalog", "search", "--branch", "PRK", "--available", "--limit", "5",
                       "--page", "2").json
        self.assertFalse({b["id"] for b in res.json["results"]} &
                         {b["id"] for b in page2["results"]})
        books = carrel("catalog", "search", "--format", "book")
        self.assertEqual(books.code, 0, books)
        self.assertGreater(books.json["total"], 0)
        self.assertTrue(all(b["format"] == "book" for b in books.json["results"]))
        r = carrel("catalog", "search", "--available", user="clara")
        self.assertEqual(r.code, 0, r)
        r = carrel("catalog", "search", "--limit", "0")
        self.assertEqual(r.code, 2, r)  # refused here; the server says field:limit

    def test_leaving_words_out(self):
        def titles(*args):
            r = carrel("catalog", "search", *args)
            self.assertEqual(r.code, 0, r)
            return [b["title"] for b in r.json["results"]]
        conference = "Proceedings of the Perl Conference 4.0 : July 17-20, 2000, Monterey, " \
            "California"
        perl = titles("perl", "--limit", "100")
        self.assertIn(conference, perl)
        without = titles("perl", "--not", "conference", "--limit", "100")
        self.assertNotIn(conference, without)
        self.assertIn("Programming Perl", without)
        self.assertTrue(set(without) < set(perl), without)
        self.assertEqual(titles("--limit", "100", "--", "perl", "-conference"), without)
        r = carrel("catalog", "search", "perl", "-conference")
        self.assertEqual(r.code, 2, r)
        self.assertIn("--not WORD", r.stderr)


class C_Edit(unittest.TestCase):
    def test_add_and_edit_bib_keeps_marc_in_step(self):
        r = carrel("catalog", "add", "--title", "Hartford : a city history", "--author",
                   "Grant, Ellsworth", "--isbn", "0-262-03384-4", "--subject", "Hartford (Conn.)",
                   "--year", "1986", "--language", "eng", "--call-number", "974.63 GRA")
        self.assertEqual(r.code, 0, r)
        bib = r.json
        self.assertEqual(bib["isbns"], ["9780262033848"])
        self.assertEqual(bib["version"], 1)
        self.assertRegex(bib["updated_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        r = carrel("catalog", "edit", str(bib["id"]), "--title", "Hartford : the city and the river")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.json["version"], 2)
        self.assertEqual(r.json["author"], "Grant, Ellsworth")
        shown = carrel("catalog", "show", str(bib["id"]), "--marc").json
        self.assertIn("245 10 $a Hartford : $b the city and the river", shown["marc"])
        self.assertIn("020    $a 9780262033848", shown["marc"])
        audit = env.psql("SELECT changes->'title'->>'before' || ' -> ' || "
                         "(changes->'title'->>'after') FROM audit_event "
                         "WHERE entity = 'bib' AND entity_id = %d AND action = 'edit'" % bib["id"])
        self.assertEqual(audit, "Hartford : a city history -> Hartford : the city and the river")
        found = carrel("catalog", "search", "river", "hartford").json
        self.assertEqual(found["results"][0]["id"], bib["id"])

    def test_stale_version_conflict(self):
        bib = carrel("catalog", "add", "--title", "Two desks one record").json
        w = main.logged_in_wire("desk-dwn", "libby", PASSWORD)
        stale = pb_message((1, pb_message((1, bib["id"]), (2, "Changed by desk one"),
                                          (14, bib["version"]))))
        self.assertEqual(w.call(REQ_BIB_SAVE, stale).status, "ok")
        again = pb_message((1, pb_message((1, bib["id"]), (2, "Changed by desk two"),
                                          (14, bib["version"]))))
        r = w.call(REQ_BIB_SAVE, again)
        self.assertEqual((r.status, r.reason), ("conflict", "stale_version"))
        self.assertEqual(env.psql("SELECT title FROM bib WHERE id = %d" % bib["id"]),
                         "Changed by desk one")
        w.close()

    def test_control_characters_never_reach_the_marc(self):
        """A title or subject with subfield delimiters or an escape sequence would store a
        record the reader refuses (the daemon once crashed showing it): refused on save."""
        before = count("SELECT count(*) FROM bib")
        w = main.logged_in_wire("desk-dwn", "libby", PASSWORD)
        for fields in [((2, "Evil\x1f\x1fTitle"),), ((2, "Tit\x1b[2Jle"),),
                       ((2, "Fine title"), (4, "Sub\x1eject")), ((2, "Tab\there"),)]:
            r = w.call(REQ_BIB_SAVE, pb_message((1, pb_message(*fields))))
            self.assertEqual(r.status, "bad_request", (fields, r.reason, r.message))
        w.close()
        self.assertEqual(count("SELECT count(*) FROM bib"), before)
        self.assertEqual(count("SELECT count(*) FROM bib WHERE title = 'Fine title'"), 0)

    def test_bad_fields_change_nothing(self):
        before = count("SELECT count(*) FROM bib")
        for args, reason in [(["--title", ""], "field:title"),
                             (["--title", "X", "--isbn", "123"], "field:isbns"),
                             (["--title", "X", "--year", "19x6"], "field:year"),
                             (["--title", "X", "--language", "english"], "field:language")]:
            r = carrel("catalog", "add", *args)
            self.assertEqual((r.code, r.json.get("reason")), (4, reason), r)
        self.assertEqual(count("SELECT count(*) FROM bib"), before)
        r = carrel("catalog", "add", "--title", "Not allowed", user="clara")
        self.assertEqual(r.json["status"], "forbidden")

    def test_items_add_edit_and_rules(self):
        bib = carrel("catalog", "add", "--title", "Copies for tests").json["id"]
        good = harness.mod10("3123400000123")
        r = carrel("item", "add", good, "--bib", str(bib), "--branch", "DWN", "--type", "book",
                   "--location", "Adult Nonfiction", "--price", "24.95")
        self.assertEqual(r.code, 0, r)
        self.assertEqual((r.json["status"], r.json["price_cents"]), ("available", 2495))
        wrong_check = good[:-1] + str((int(good[-1]) + 1) % 10)
        r = carrel("item", "add", wrong_check, "--bib", str(bib), "--branch", "DWN")
        self.assertEqual((r.code, r.json["reason"]), (4, "field:barcode"), r)
        self.assertIn("check digit", r.json["message"])
        r = carrel("item", "add", good, "--bib", str(bib), "--branch", "DWN")
        self.assertEqual(r.json["reason"], "barcode_taken")
        # A Downtown librarian cannot add Park Street's items; Park Street's can.
        other = harness.mod10("3123400000124")
        r = carrel("item", "add", other, "--bib", str(bib), "--branch", "PRK")
        self.assertEqual((r.json["status"], r.json["reason"]), ("forbidden", "branch"))
        r = carrel("item", "add", other, "--bib", str(bib), "--branch", "PRK", user="lee",
                   ws="desk-prk")
        self.assertEqual(r.code, 0, r)
        r = carrel("item", "edit", other, "--location", "Teen", user="libby")
        self.assertEqual(r.json["status"], "forbidden")
        r = carrel("item", "edit", good, "--status", "withdrawn", "--location", "Storage")
        self.assertEqual((r.json["status"], r.json["location"], r.json["version"]),
                         ("withdrawn", "Storage", 2), r)
        r = carrel("item", "edit", good, "--status", "checked_out")
        self.assertEqual(r.json["reason"], "field:status", r)
        r = carrel("item", "add", harness.mod10("3123400000125"), "--bib", str(bib),
                   "--branch", "DWN", user="clara")
        self.assertEqual(r.json["status"], "forbidden")
        shown = carrel("item", "show", good).json
        self.assertEqual(shown["title"], "Copies for tests")
        self.assertEqual(count("SELECT count(*) FROM audit_event WHERE entity = 'item' "
                               "AND entity_id = %d" % shown["id"]), 2)

    def test_items_from_csv(self):
        bib = carrel("catalog", "add", "--title", "CSV copies", "--isbn", "0-306-40615-2").json
        csv = os.path.join(env.dir, "items.csv")
        with open(csv, "w") as f:
            f.write("bib,barcode,branch,location,call_number,item_type,price\n")
            f.write('9780306406157,CSV-0001,DWT,"Adult, Fiction",F SMI,book,12.50\n')
            f.write("#%d,CSV-0002,RPK,Teen,F SMI,large_print,\n" % bib["id"])
            f.write("no-such-title,CSV-0003,DWN,,,,\n")
        r = carrel("import", "items", csv)
        self.assertEqual(r.code, 4, r)  # one row failed
        self.assertEqual((r.json["items_created"], r.json["failed"]), (2, 1), r)
        self.assertEqual(r.json["problems"][0]["line"], 4)
        row = env.psql("SELECT i.location, b.code, i.price_cents FROM item i "
                       "JOIN branch b ON b.id = i.owning_branch_id WHERE barcode = 'CSV-0001'")
        self.assertEqual(row, "Adult, Fiction|DWT|1250")


def control(tag, value):
    return (tag, value.encode())


def data(tag, ind, *subfields):
    """A data field: indicators, then (code, value) pairs."""
    body = ind.encode()
    for code, value in subfields:
        body += b"\x1f" + code.encode() + value.encode()
    return (tag, body)


def write_records(name, records):
    path = os.path.join(env.dir, name)
    with open(path, "wb") as f:
        f.write(b"".join(iso2709(r) for r in records))
    return path


class D_ImportSetBased(unittest.TestCase):
    """The set-based import answers as loading the records one after the other would:
    matches within a batch in file order, one audit row per bib and item, every problem
    line, and the one-by-one retry that finds a record breaking its batch."""

    def test_matches_within_a_batch_in_file_order(self):
        tag = "W%d" % time.time_ns()
        isbn = "9780306406157"  # used by no other record of this suite's files
        env.psql("DELETE FROM audit_event WHERE entity = 'bib' AND entity_id IN "
                 "(SELECT id FROM bib WHERE isbns @> ARRAY['%s']);"
                 "UPDATE bib SET isbns = '{}' WHERE isbns @> ARRAY['%s']" % (isbn, isbn))
        path = write_records("waves.mrc", [
            # 1 creates a bib with 001/003 and the ISBN, and copy -1.
            [control(b"001", tag), control(b"003", "TST"), data(b"020", "  ", ("a", isbn)),
             data(b"245", "10", ("a", tag + " one")),
             data(b"852", "  ", ("a", "DWN"), ("p", tag + "-1"))],
            # 2 matches 1 by 001/003 and replaces it: the ISBN is gone; copy -2.
            [control(b"001", tag), control(b"003", "TST"),
             data(b"245", "10", ("a", tag + " two")),
             data(b"852", "  ", ("a", "DWN"), ("p", tag + "-2"))],
            # 3 has 1's ISBN, which 2 took away: a new bib; copy -1 is 1's (a problem).
            [data(b"020", "  ", ("a", isbn)), data(b"245", "10", ("a", tag + " three")),
             data(b"852", "  ", ("a", "DWN"), ("p", tag + "-1"))],
            # 4 names copy -4 twice: made, then refreshed (the second call number wins).
            [data(b"245", "10", ("a", tag + " four")),
             data(b"852", "  ", ("a", "DWN"), ("p", tag + "-4"), ("h", "FIC A")),
             data(b"852", "  ", ("a", "DWN"), ("p", tag + "-4"), ("h", "FIC B"))],
            # 5: the problems a holding can have.
            [data(b"245", "10", ("a", tag + " five")),
             data(b"852", "  ", ("a", "DWN"), ("h", "no barcode")),
             data(b"852", "  ", ("a", "DWN"), ("p", "two words")),
             data(b"852", "  ", ("a", "NOWHERE"), ("p", tag + "-5"))],
        ])
        r = carrel("import", "marc", path, "--holdings", "852")
        self.assertEqual(r.code, 0, r)
        self.assertEqual((r.json["created"], r.json["updated"], r.json["failed"]), (4, 1, 0),
                         r.json)
        self.assertEqual((r.json["items_created"], r.json["items_updated"]), (3, 1), r.json)
        one = count("SELECT id FROM bib WHERE control_number = '%s'" % tag)
        # In file order, as the records and their holdings come.
        problems = [(p["position"], p["message"]) for p in r.json["problems"]]
        self.assertEqual(problems, [
            (3, "barcode %s-1 already belongs to another title (bib %d); item skipped"
             % (tag, one)),
            (5, "holding 1 has no barcode; no item made"),
            (5, "barcode two words is not 1-32 printable characters; skipped"),
            (5, "item %s-5: branch NOWHERE is unknown and no default branch was given; "
                "skipped" % tag)], r.json)
        self.assertEqual(env.psql("SELECT title || '|' || cardinality(isbns) FROM bib "
                                  "WHERE id = %d" % one), tag + " two|0")
        self.assertEqual(count("SELECT count(*) FROM bib WHERE title = '%s three' "
                               "AND isbns = ARRAY['%s']" % (tag, isbn)), 1)
        self.assertEqual(env.psql("SELECT string_agg(barcode || ':' || bib_id || ':' "
                                  "|| call_number, ',' ORDER BY barcode) FROM item "
                                  "WHERE barcode LIKE '%s-%%'" % tag),
                         "%s-1:%d:,%s-2:%d:,%s-4:%d:FIC B"
                         % (tag, one, tag, one, tag,
                            count("SELECT id FROM bib WHERE title = '%s four'" % tag)))
        # One audit row per bib created or replaced, per copy made or changed.
        audits = env.psql("SELECT string_agg(a.action, ',' ORDER BY a.id) FROM audit_event a "
                          "WHERE a.entity = 'bib' AND a.entity_id = %d" % one)
        self.assertEqual(audits, "import,reimport")
        self.assertEqual(count("SELECT count(*) FROM audit_event a JOIN bib b ON "
                               "a.entity = 'bib' AND a.entity_id = b.id "
                               "WHERE b.title LIKE '%s %%'" % tag), 5)
        audits = env.psql("SELECT string_agg(i.barcode || ':' || a.action, ',' "
                          "ORDER BY i.barcode, a.id) FROM audit_event a JOIN item i ON "
                          "a.entity = 'item' AND a.entity_id = i.id "
                          "WHERE i.barcode LIKE '%s-%%'" % tag)
        self.assertEqual(audits, "%s-1:import,%s-2:import,%s-4:import,%s-4:reimport"
                         % (tag, tag, tag, tag))
        # The reimport says what changed; the imports say what was made, as
        # audit_diff(NULL, ...) of the row would.
        self.assertEqual(env.psql(
            "SELECT a.changes FROM audit_event a JOIN item i ON a.entity = 'item' "
            "AND a.entity_id = i.id WHERE i.barcode = '%s-4' AND a.action = 'reimport'" % tag),
            '{"call_number": {"after": "FIC B", "before": "FIC A"}}')
        self.assertEqual(count(
            "SELECT count(*) FROM audit_event a JOIN item i ON a.entity = 'item' "
            "AND a.entity_id = i.id AND a.action = 'import' WHERE i.barcode LIKE '%s-%%' "
            "AND i.version = 1 AND a.changes = audit_diff(NULL, item_audit_json(i))" % tag), 2)
        self.assertEqual(count(
            "SELECT count(*) FROM audit_event a JOIN bib b ON a.entity = 'bib' "
            "AND a.entity_id = b.id AND a.action = 'import' WHERE b.title LIKE '%s %%' "
            "AND b.version = 1 AND a.changes = audit_diff(NULL, bib_audit_json(b))" % tag), 3)
        self.assertEqual(count("SELECT count(*) FROM audit_event WHERE workstation_id IS NULL "
                               "OR branch_id IS NULL OR staff_id IS NULL"), 0)

    def test_a_record_breaking_its_batch_is_found(self):
        """A copy priced past the item table's limit fails the statement of the whole
        batch; the daemon loads the records one by one, so only that record fails, named
        by its position, and the others load once (one audit row each)."""
        tag = "F%d" % time.time_ns()
        records = [[data(b"245", "10", ("a", "%s %d" % (tag, n))),
                    data(b"852", "  ", ("a", "DWN"), ("p", "%s-%d" % (tag, n)),
                         ("9", "9999999.00" if n == 3 else "5.00"))] for n in range(1, 6)]
        r = carrel("import", "marc", write_records("breaks.mrc", records))
        self.assertEqual(r.code, 4, r)
        self.assertEqual((r.json["created"], r.json["failed"], r.json["items_created"]),
                         (4, 1, 4), r.json)
        fatal = [p for p in r.json["problems"] if p["fatal"]]
        self.assertEqual([p["position"] for p in fatal], [3], r.json)
        self.assertIn("price_cents", fatal[0]["message"])
        self.assertEqual(count("SELECT count(*) FROM bib WHERE title = '%s 3'" % tag), 0)
        self.assertEqual(count("SELECT count(*) FROM audit_event a JOIN bib b ON "
                               "a.entity = 'bib' AND a.entity_id = b.id "
                               "WHERE b.title LIKE '%s %%'" % tag), 4)
        self.assertEqual(count("SELECT count(*) FROM audit_event a JOIN item i ON "
                               "a.entity = 'item' AND a.entity_id = i.id "
                               "WHERE i.barcode LIKE '%s-%%'" % tag), 4)

    def test_batches_in_flight_wait_their_turn(self):
        """The client keeps several batches in flight; they queue on the import lock for
        as long as a statement may run, not for the desks' lock timeout (before, each
        one failed after it and so did its records one by one)."""
        d = env.daemon(db_lock_timeout_ms=100)
        try:
            prof = env.profile(d)
            waiting = ("SELECT count(*) FROM pg_stat_activity WHERE datname = 'carrel'"
                       " AND wait_event = 'advisory' AND query LIKE '%bib_import_batch%'"
                       " AND now() - query_start > interval '1 s'")
            with harness.AdvisoryLock(env, 74200002):
                proc = subprocess.Popen(
                    [harness.CARREL, "-c", prof, "--json", "import", "marc",
                     marc("camel-10.mrc"), "--branch", "DWN", "--batch", "2"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                harness.wait_until(lambda: int(env.psql(waiting)) >= 2 or proc.poll() is not None,
                                   60, "two batches waiting on the import lock")
                if proc.poll() is not None:
                    self.fail("the import ended while the lock was held: %s %s"
                              % proc.communicate())
            out, err = proc.communicate(timeout=120)
            self.assertEqual(proc.returncode, 0, err)
            r = json.loads(out)
            self.assertEqual(r["failed"], 0, r)
            self.assertEqual(r["created"] + r["updated"], 10, r)
        finally:
            d.stop()

    def test_audience_literary_form_and_copyright_year(self):
        tag = "J%d" % time.time_ns()
        f008 = list("000107t20102008nyu" + " " * 22)
        f008[22], f008[33] = "j", "1"
        path = write_records("juvenile.mrc", [
            [control(b"008", "".join(f008)), data(b"245", "10", ("a", tag)),
             data(b"264", " 1", ("c", "2010")), data(b"264", " 4", ("c", "\u00a92009"))]])
        r = carrel("import", "marc", path, "--holdings", "none")
        self.assertEqual(r.json["created"], 1, r)
        row = env.psql("SELECT id || '|' || audience || '|' || literary_form || '|' || pub_year "
                       "FROM bib WHERE title = '%s'" % tag)
        bib, audience, form, year = row.split("|")
        self.assertEqual((audience, form, year), ("juvenile", "fiction", "2009"))
        shown = carrel("catalog", "show", bib).json
        self.assertEqual((shown["audience"], shown["literary_form"]), ("juvenile", "fiction"),
                         shown)
        # An edit keeps them (bib_save takes them from the record), and the year edited
        # reads back although the record's year was its copyright date.
        r = carrel("catalog", "edit", bib, "--year", "2021")
        self.assertEqual(r.code, 0, r)
        self.assertEqual(env.psql("SELECT audience || '|' || literary_form || '|' || pub_year "
                                  "FROM bib WHERE id = %s" % bib), "juvenile|fiction|2021")

    def test_csv_rows_in_file_order(self):
        tag = "C%d" % time.time_ns()
        a = carrel("catalog", "add", "--title", tag + " a").json["id"]
        b = carrel("catalog", "add", "--title", tag + " b").json["id"]
        csv = os.path.join(env.dir, "order.csv")
        with open(csv, "w") as f:
            f.write("bib,barcode,branch,call_number\n")
            f.write("#%d,%s-1,DWN,F ONE\n" % (a, tag))
            f.write("#%d,%s-1,DWN,F TWO\n" % (a, tag))   # the same copy: refreshed
            f.write("#%d,%s-1,DWN,F THREE\n" % (b, tag))  # another title's copy: refused
            f.write("#%d,,DWN,\n" % b)
        r = carrel("import", "items", csv)
        self.assertEqual(r.code, 4, r)
        self.assertEqual((r.json["items_created"], r.json["items_updated"], r.json["failed"]),
                         (1, 1, 2), r.json)
        self.assertEqual([(p["line"], p["message"]) for p in r.json["problems"]], [
            (4, "barcode %s-1 already belongs to another title (bib %d); item skipped"
             % (tag, a)),
            (5, "holding 1 has no barcode; no item made")])
        self.assertEqual(env.psql("SELECT call_number FROM item WHERE barcode = '%s-1'" % tag),
                         "F TWO")


if __name__ == "__main__":
    harness.main()
