#!/usr/bin/env python3
"""The weeding rules (sql/rules/weeding.sql, migration 026, the last use kept by
circulation.sql and the weeding_decisions measure of stats.sql), called directly in SQL as
carreld calls them.

No daemon and no client, as in test_service_sql.py: each test opens one transaction on a
harness session, makes its rows in it (a branch of its own, WED, so that nothing else on the
shelves matters), calls crew_rule_save, weeding_list, weeding_decide ... and rolls everything
back. Copies get their ages and last uses by SQL (now() is the transaction's start).
"""

import json
import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

env = None
db = None      # the session every test's transaction runs on
ids = {}       # branch code -> id; "staff", "workstation": the administrator's

lit = harness.sql_literal


def setUpModule():
    global env, db
    env, db = harness.start_rule_session(WeedingTest, ids)


def tearDownModule():
    harness.stop_rule_session(env, db,
                              "SELECT (SELECT count(*) FROM weeding_decision)"
                              " + (SELECT count(*) FROM crew_rule WHERE branch_id IS NOT NULL"
                              "    OR reviewed)"
                              " + (SELECT count(*) FROM branch WHERE code = 'WED')")


def key():
    return str(uuid.uuid4())


def jdoc(doc):
    return lit(json.dumps(doc)) + "::jsonb"


class WeedingTest(harness.TransactionTest):
    """One transaction per test, rolled back whatever happens (harness.TransactionTest)."""

    def setUp(self):
        super().setUp()
        self.n = 0
        self.wed = int(self.q("INSERT INTO branch (code, name) VALUES ('WED', 'Weeding Branch')"
                              " RETURNING id").splitlines()[0])
        self.year = int(self.q("SELECT extract(year FROM library_today())::int"))

    # ---- fixtures

    def bib(self, title, year="", call_number="", audience="", form=""):
        return int(self.q(
            "INSERT INTO bib (marc, title, author, pub_year, call_number, audience,"
            " literary_form) VALUES ('\\x00', %s, 'Author', %s, %s, %s, %s) RETURNING id"
            % (lit(title), lit(str(year) if year else ""), lit(call_number), lit(audience),
               lit(form))).splitlines()[0])

    def copy(self, bib, call_number, branch="WED", used_days_ago=None, added_days_ago=30,
             checkouts=0, location="", status="available", item_type="book", at=None):
        """A copy of bib owned by branch (and at `at`, default the same), last used that many
        days ago (None: never); its barcode."""
        self.n += 1
        barcode = "WD%s%04d" % (branch, self.n)
        self.q("INSERT INTO item (barcode, bib_id, owning_branch_id, current_branch_id,"
               " call_number, item_type, status, location, date_added, last_used_at,"
               " circ_count) SELECT %s, %d, o.id, c.id, %s, %s, %s, %s,"
               " library_today() - %d, %s, %d FROM branch o, branch c"
               " WHERE o.code = %s AND c.code = %s"
               % (lit(barcode), bib, lit(call_number), lit(item_type), lit(status),
                  lit(location), added_days_ago,
                  "NULL" if used_days_ago is None else "now() - interval '%d days'"
                  % used_days_ago,
                  checkouts, lit(branch), lit(at or branch)))
        return barcode

    def item(self, barcode):
        return self.one("SELECT * FROM item WHERE barcode = %s" % lit(barcode))

    def hold(self, bib):
        card = env.new_patron(session=db)
        self.q("INSERT INTO hold (patron_id, bib_id, pickup_branch_id) SELECT p.id, %d, %d"
               " FROM patron p WHERE p.card = %s" % (bib, self.wed, lit(card)))

    # ---- calls

    def weed(self, branch="WED", collection=None, after=None, limit=100, dead=False):
        return self.rows("SELECT * FROM weeding_list(%s, %s, %s, %d, %s)"
                         % (lit(branch), lit(collection), lit(after), limit, lit(dead)))

    def listed(self, **kw):
        return {r["barcode"]: r for r in self.weed(**kw)}

    def rule_save(self, rule, scope=None, system_ok=True, remove=False):
        return self.one("SELECT * FROM crew_rule_save(%d, %d, %s, %s, %s, %s)"
                        % (ids["staff"], ids["workstation"], lit(scope), lit(system_ok),
                           jdoc({"rule": rule}), lit(remove)))

    def rule_save_sql(self, rule, scope=None, system_ok=True, remove=False):
        return ("SELECT * FROM crew_rule_save(%d, %d, %s, %s, %s, %s)"
                % (ids["staff"], ids["workstation"], lit(scope), lit(system_ok),
                   jdoc({"rule": rule}), lit(remove)))

    def decide_sql(self, barcode, decision, to=None, note=None, last_ok=False, scope=None,
                   k=None):
        return ("SELECT * FROM weeding_decide(%s::uuid, %d, %d, %s, %s, %s, %s, %s, %s)"
                % (lit(k or key()), ids["staff"], ids["workstation"], lit(scope), lit(barcode),
                   lit(decision), lit(to), lit(note), lit(last_ok)))

    def decide(self, *a, **kw):
        return self.one(self.decide_sql(*a, **kw))


# ---------------------------------------------------------------- call numbers and rules

class CallNumbers(WeedingTest):

    def test_dewey_of_reads_the_leading_number_after_prefixes(self):
        cases = {"641.5 SMI": "641.5", "J 599.75 ROB": "599.75", "REF 030 ENC": "30",
                 "YA 305.235 GRE": "305.235", "LP 813.54 KIN": "813.54", "004.165": "4.165",
                 "FIC SMITH": None, "E CARLE": None, "QA76.73 .P98": None, "": None,
                 "1234 X": None, "BOARD BOOK": None, "BIOLOGY 2": None,
                 # the biography short forms are the 920s
                 "92 LINCOLN": "920", "92": "920", "B LINCOLN": "920", "b lincoln": "920",
                 "BIO SMITH": "920", "J B LINCOLN": "920", "J 92 LINCOLN": "920",
                 "920.02 LIN": "920.02", "192 X": "192", "921 LINCOLN": "921"}
        for call, want in cases.items():
            got = self.q("SELECT dewey_of(%s)" % lit(call))
            self.assertEqual(got or None, want, call)

    def test_shelf_key_sorts_in_shelf_order(self):
        shelf = ["92 LINCOLN", "641.5", "641.5 SMI", "641.59", "641.6", "FIC ADAMS",
                 "FIC SMITH", "FIC SMITH 2", "FIC SMITH 10", "fic smith j", "J 64.2 ABC",
                 "J 599.75 ROB"]
        got = self.q("SELECT string_agg(c, '|' ORDER BY call_number_shelf_key(c) COLLATE \"C\")"
                     " FROM unnest(%s::text[]) c"
                     % lit("{" + ",".join('"%s"' % c for c in shelf) + "}"))
        self.assertEqual(got.split("|"), shelf)

    def test_item_audience_from_the_bib_or_the_call_number(self):
        for bib_audience, call, want in [("adult", "J 599", "adult"), ("", "J 599", "juvenile"),
                                         ("", "E CARLE", "juvenile"), ("", "YA FIC", "young_adult"),
                                         ("", "FIC SMITH", ""), ("", "JONES", "")]:
            self.assertEqual(self.q("SELECT item_audience(%s, %s)" % (lit(bib_audience),
                                                                      lit(call))), want, call)


class Rules(WeedingTest):

    def collection(self, dewey, location="", audience="", fiction="", branch=None):
        return self.q("SELECT item_collection(%s, %s, %s, %s, %s)"
                      % (lit(branch), dewey if dewey is not None else "NULL", lit(location),
                         lit(audience), lit(fiction)))

    def test_the_shipped_table_is_a_starting_point_to_review(self):
        rules = self.rows("SELECT * FROM crew_rule_list(NULL, true)")
        self.assertGreaterEqual(len(rules), 25)
        self.assertTrue(all(not r["reviewed"] and r["source"] == "system"
                            and r["branch_code"] == "" for r in rules))
        by = {r["collection"]: r for r in rules}
        self.assertEqual((by["nf_610"]["dewey_from"], by["nf_610"]["dewey_to"],
                          by["nf_610"]["max_age_years"], by["nf_610"]["max_idle_years"]),
                         ("610", "619.999", 5, 3))
        self.assertIsNone(by["fiction"]["max_age_years"])  # X not applicable
        self.assertEqual([r["ord"] for r in rules], sorted(r["ord"] for r in rules))
        self.assertEqual(self.q("SELECT crew_rules_unreviewed('WED')"), "t")

    def test_item_collection_takes_the_first_rule_that_fits(self):
        self.assertEqual(self.collection(641.5), "nf_600")
        self.assertEqual(self.collection(615.8), "nf_610")     # the special range first
        self.assertEqual(self.collection(5.133), "nf_004")
        self.assertEqual(self.collection(599, audience="juvenile"), "j_nonfiction")
        self.assertEqual(self.collection(None), "fiction")     # no Dewey, form unknown
        self.assertEqual(self.collection(None, audience="juvenile"), "j_fiction")
        self.assertEqual(self.collection(None, fiction="nonfiction"), "")
        self.assertEqual(self.collection(791.43, location="DVD shelf"), "av_dvd")
        self.assertEqual(self.collection(None, location="Picture books", audience="juvenile"),
                         "picture_books")

    def test_item_collections_of_a_branch_agree_with_item_collection(self):
        self.rule_save({"branch_code": "WED", "collection": "cookery", "name": "Cookery",
                        "dewey_from": "641", "dewey_to": "641.999", "ord": 5})
        made = {}
        for call, loc, aud in [("641.5 COO", "", ""), ("J 599 ANI", "", ""),
                               ("FIC NOV", "", ""), ("E CAR", "Picture books", ""),
                               ("616 MED", "", "juvenile"), ("", "", "")]:
            made[self.copy(self.bib("T " + call, 2000, call, audience=aud), call,
                           location=loc)] = call
        got = {r["barcode"]: r["collection"] for r in self.rows(
            "SELECT i.barcode, c.collection FROM item_collections(%d) c"
            " JOIN item i ON i.id = c.item_id" % self.wed)}
        self.assertEqual(got, {b: c for b, c in zip(made, [
            "cookery", "j_nonfiction", "fiction", "picture_books", "j_nonfiction", "fiction"])})
        for barcode, collection in got.items():
            one = self.q("SELECT coalesce(item_collection(%d, dewey_of(coalesce(nullif("
                         "i.call_number, ''), b.call_number)), i.location, item_audience("
                         "b.audience, coalesce(nullif(i.call_number, ''), b.call_number)),"
                         " b.literary_form), '') FROM item i JOIN bib b ON b.id = i.bib_id"
                         " WHERE i.barcode = %s" % (self.wed, lit(barcode)))
            self.assertEqual(one, collection, made[barcode])

    def test_a_branch_override_applies_at_that_branch_only(self):
        row = self.rule_save({"branch_code": "WED", "collection": "nf_600", "max_age_years": 20,
                              "max_idle_years": 5})
        self.assertEqual((row["branch_code"], row["source"], row["reviewed"], row["name"],
                          row["dewey_from"], row["dewey_to"], row["max_age_years"]),
                         ("WED", "branch", True, "Technology and applied science (600s)", "600",
                          "699.999", 20))
        # A collection of its own, before the others.
        self.rule_save({"branch_code": "WED", "collection": "cookery", "name": "Cookery",
                        "dewey_from": "641", "dewey_to": "641.999", "ord": 5,
                        "max_age_years": 8})
        self.assertEqual(self.collection(641.5, branch=self.wed), "cookery")
        self.assertEqual(self.collection(641.5), "nf_600")
        self.assertEqual(self.collection(641.5, branch=ids["DWN"]), "nf_600")
        rules = {r["collection"]: r for r in
                 self.rows("SELECT * FROM crew_rule_list('WED', false)")}
        self.assertEqual((rules["nf_600"]["source"], rules["nf_600"]["max_age_years"]),
                         ("branch", 20))
        self.assertEqual(rules["nf_500"]["source"], "system")
        self.assertEqual(self.rows("SELECT * FROM crew_rule_list('WED', false)")[0]["collection"],
                         "cookery")
        # Removing the override brings the system row back.
        gone = self.rule_save({"branch_code": "WED", "collection": "nf_600"}, remove=True)
        self.assertEqual(gone["max_age_years"], 20)
        rules = {r["collection"]: r for r in
                 self.rows("SELECT * FROM crew_rule_list('WED', false)")}
        self.assertEqual((rules["nf_600"]["source"], rules["nf_600"]["max_age_years"]),
                         ("system", 5))
        audit = self.rows("SELECT action, target FROM admin_audit WHERE target LIKE 'WED/%'"
                          " ORDER BY id")
        self.assertEqual([(a["action"], a["target"]) for a in audit],
                         [("crew_rule_save", "WED/nf_600"), ("crew_rule_save", "WED/cookery"),
                          ("crew_rule_remove", "WED/nf_600")])

    def test_reviewing_every_rule_clears_unreviewed(self):
        for r in self.rows("SELECT * FROM crew_rule_list('WED', false)"):
            self.rule_save({"branch_code": "WED", "collection": r["collection"],
                            "max_age_years": r["max_age_years"],
                            "max_idle_years": r["max_idle_years"]})
        self.assertEqual(self.q("SELECT crew_rules_unreviewed('WED')"), "f")
        self.assertEqual(self.q("SELECT crew_rules_unreviewed('DWN')"), "t")

    def test_saving_the_system_table_needs_a_coordinator(self):
        self.refused(self.rule_save_sql({"collection": "nf_600", "max_age_years": 4},
                                        system_ok=False), "CR403", "role")
        row = self.rule_save({"collection": "nf_600", "max_age_years": 4})
        self.assertEqual((row["branch_code"], row["source"], row["reviewed"]),
                         ("", "system", True))

    def test_rule_refusals(self):
        self.refused(self.rule_save_sql({"branch_code": "WED", "collection": "nf_600"},
                                        scope=ids["DWN"]), "CR403", "branch")
        self.refused(self.rule_save_sql({"branch_code": "WED", "collection": "Bad Code"}),
                     "CR400", "field:collection")
        self.refused(self.rule_save_sql({"branch_code": "NOPE", "collection": "nf_600"}),
                     "CR400", "field:branch_code")
        self.refused(self.rule_save_sql({"branch_code": "WED", "collection": "new_one"}),
                     "CR400", "field:name")
        self.refused(self.rule_save_sql({"branch_code": "WED", "collection": "x", "name": "X",
                                         "dewey_from": "600"}), "CR400", "field:dewey_to")
        self.refused(self.rule_save_sql({"branch_code": "WED", "collection": "x", "name": "X",
                                         "dewey_from": "700", "dewey_to": "600"}),
                     "CR400", "field:dewey_to")
        self.refused(self.rule_save_sql({"branch_code": "WED", "collection": "x", "name": "X",
                                         "dewey_from": "abc", "dewey_to": "600"}),
                     "CR400", "field:dewey_from")
        self.refused(self.rule_save_sql({"branch_code": "WED", "collection": "x", "name": "X",
                                         "max_age_years": 0}), "CR400", "field:max_age_years")
        self.refused(self.rule_save_sql({"branch_code": "WED", "collection": "x", "name": "X",
                                         "audience": "teen"}), "CR400", "field:audience")
        self.refused(self.rule_save_sql({"branch_code": "WED", "collection": "x", "name": "X",
                                         "dead_target_pct": 101}), "CR400",
                     "field:dead_target_pct")
        self.refused(self.rule_save_sql({"branch_code": "WED", "collection": "nf_600"},
                                        remove=True), "CR404", "crew_rule")


class Settings(WeedingTest):

    def test_settings_get_and_save(self):
        s = self.one("SELECT * FROM weeding_settings_get()")
        self.assertEqual((s["dead_days"], s["keep_months"]), (180, 12))
        wear = dict(zip(s["wear_types"], s["wear_uses"]))
        self.assertEqual((wear["book"], wear["equipment"]), (60, 0))
        s = self.one("SELECT * FROM weeding_settings_save(%d, %d, %s)"
                     % (ids["staff"], ids["workstation"],
                        jdoc({"settings": {"dead_days": 365,
                                           "wear": [{"item_type": "dvd", "max_uses": 40}]}})))
        wear = dict(zip(s["wear_types"], s["wear_uses"]))
        self.assertEqual((s["dead_days"], s["keep_months"], wear["dvd"], wear["book"]),
                         (365, 12, 40, 60))
        self.assertEqual(self.q("SELECT count(*) FROM admin_audit"
                                " WHERE action = 'weeding_settings'"), "1")
        for doc, field in [({"dead_days": 0}, "field:dead_days"),
                           ({"keep_months": 121}, "field:keep_months"),
                           ({"wear": [{"item_type": "spaceship", "max_uses": 3}]}, "field:wear"),
                           ({"wear": [{"item_type": "book", "max_uses": -1}]}, "field:wear")]:
            self.refused("SELECT * FROM weeding_settings_save(%d, %d, %s)"
                         % (ids["staff"], ids["workstation"], jdoc({"settings": doc})),
                         "CR400", field)


# ---------------------------------------------------------------- last use

class LastUse(WeedingTest):

    def test_checkout_renew_and_in_house_use_keep_the_last_use(self):
        bib = self.bib("Kept in use", 2020, "641.5 USE")
        barcode = self.copy(bib, "641.5 USE", branch="DWN", used_days_ago=900)
        card = env.new_patron(session=db)
        self.q("SELECT * FROM circ_in_house_use(gen_random_uuid(), %d, %d, %s)"
               % (ids["staff"], ids["DWN"], lit(barcode)))
        self.assertEqual(self.q("SELECT last_used_at = now() FROM item WHERE barcode = %s"
                                % lit(barcode)), "t")
        self.q("UPDATE item SET last_used_at = now() - interval '900 days' WHERE barcode = %s"
               % lit(barcode))
        self.q("SELECT * FROM circ_checkout(gen_random_uuid(), %d, %d, %d, %s, %s, false, NULL,"
               " false)" % (ids["staff"], ids["workstation"], ids["DWN"], lit(card),
                            lit(barcode)))
        # The checkout's own clock (clock_timestamp), as last_circulated.
        self.assertEqual(self.q("SELECT last_used_at = last_circulated AND last_used_at >= now()"
                                " FROM item WHERE barcode = %s" % lit(barcode)), "t")
        # A renewal on a loan from weeks ago, due yesterday.
        self.q("UPDATE item SET last_used_at = now() - interval '20 days' WHERE barcode = %s"
               % lit(barcode))
        self.q("UPDATE loan SET checkout_at = now() - interval '20 days',"
               " due_at = now() - interval '1 day' WHERE item_id = (SELECT id FROM item"
               " WHERE barcode = %s) AND returned_at IS NULL" % lit(barcode))
        renewed = self.one("SELECT * FROM circ_renew(gen_random_uuid(), %d, %d, %d, %s, %s,"
                           " false, NULL, false)" % (ids["staff"], ids["workstation"],
                                                     ids["DWN"], lit(card), lit(barcode)))
        self.assertTrue(renewed["renewed"], renewed)
        self.assertEqual(self.q("SELECT last_used_at = now() FROM item WHERE barcode = %s"
                                % lit(barcode)), "t")


# ---------------------------------------------------------------- the list

class List(WeedingTest):

    def shelf(self):
        """A small shelf at WED: {name: barcode}."""
        y = self.year
        s = {}
        s["old_medicine"] = self.copy(self.bib("Old medicine", y - 12, "616 OLD"), "616 OLD",
                                      used_days_ago=30)
        s["new_medicine"] = self.copy(self.bib("New medicine", y - 1, "616 NEW"), "616 NEW",
                                      used_days_ago=10)
        s["idle_history"] = self.copy(self.bib("Idle history", y - 3, "973 IDL"), "973 IDL",
                                      used_days_ago=4 * 365)
        s["never_used"] = self.copy(self.bib("Never used", y - 2, "973.2 NEV"), "973.2 NEV",
                                    added_days_ago=5 * 365)
        s["worn_novel"] = self.copy(self.bib("Worn novel", y - 2, "FIC WORN"), "FIC WORN",
                                    used_days_ago=5, checkouts=75)
        s["dead_novel"] = self.copy(self.bib("Dead novel", y - 1, "FIC DEAD"), "FIC DEAD",
                                    used_days_ago=300)
        s["on_loan"] = self.copy(self.bib("On loan", y - 30, "500 LOAN"), "500 LOAN",
                                 used_days_ago=3000, status="checked_out")
        s["elsewhere"] = self.copy(self.bib("Elsewhere", y - 30, "500 AWAY"), "500 AWAY",
                                   used_days_ago=3000, at="DWN")
        s["theirs"] = self.copy(self.bib("Theirs", y - 30, "500 THEIRS"), "500 THEIRS",
                                branch="DWN", used_days_ago=3000)
        # A title with a second copy, so that none of the above is... they are all last copies:
        # give every title one more copy, withdrawn ones do not count.
        return s

    def spare(self, barcode, branch="PRK", **kw):
        """Another copy of barcode's title, at branch."""
        it = self.item(barcode)
        return self.copy(it["bib_id"], it["call_number"], branch=branch, **kw)

    def test_candidates_in_shelf_order_with_reasons(self):
        s = self.shelf()
        for name in s:
            self.spare(s[name], used_days_ago=4000)  # not the last copy; no demand
        rows = self.weed()
        self.assertEqual([r["barcode"] for r in rows],
                         [s["old_medicine"], s["idle_history"], s["never_used"], s["worn_novel"]])
        by = {r["barcode"]: r for r in rows}
        om = by[s["old_medicine"]]
        self.assertEqual((om["collection"], om["recommendation"], om["reasons"], om["year"],
                          om["title"], om["call_number"], om["status"], om["last_copy"]),
                         ("nf_610", "withdraw", ["age"], str(self.year - 12), "Old medicine",
                          "616 OLD", "available", False))
        self.assertIn("over 5 years ago", om["reason"])
        ih = by[s["idle_history"]]
        self.assertEqual((ih["collection"], ih["recommendation"], ih["reasons"]),
                         ("nf_900", "withdraw", ["idle", "dead"]))
        self.assertRegex(ih["last_used"], r"^\d{4}-\d\d-\d\d$")
        nu = by[s["never_used"]]
        self.assertEqual((nu["last_used"], nu["reasons"]), ("", ["idle", "dead"]))
        self.assertIn("Never used since added", nu["reason"])
        wn = by[s["worn_novel"]]
        self.assertEqual((wn["collection"], wn["recommendation"], wn["reasons"], wn["uses"]),
                         ("fiction", "replace", ["worn"], 75))
        # Dead copies only with include_dead, for review.
        dead = self.listed(dead=True)
        self.assertEqual((dead[s["dead_novel"]]["recommendation"],
                          dead[s["dead_novel"]]["reasons"]), ("review", ["dead"]))
        self.assertNotIn(s["new_medicine"], dead)
        # Shelf keys page through the list.
        first = self.weed(limit=2)
        rest = self.weed(after=first[-1]["shelf_key"], limit=100)
        self.assertEqual([r["barcode"] for r in first + rest], [r["barcode"] for r in rows])

    def test_guards_holds_last_copy_keep_and_demand_elsewhere(self):
        y = self.year
        held = self.bib("Held title", y - 20, "500 HLD")
        h = self.copy(held, "500 HLD", used_days_ago=3000)
        self.spare(h, used_days_ago=4000)
        self.hold(held)
        last = self.copy(self.bib("Last copy", y - 20, "500 LST"), "500 LST", used_days_ago=3000)
        gone = self.spare(last, status="withdrawn")  # a withdrawn copy does not count
        wanted = self.copy(self.bib("Wanted elsewhere", y - 2, "500 WNT"), "500 WNT",
                           used_days_ago=3000)
        self.spare(wanted, branch="PRK", used_days_ago=20)
        busy = self.copy(self.bib("Busier elsewhere", y - 2, "500 BSY"), "500 BSY",
                         used_days_ago=3000, checkouts=1)
        self.spare(busy, branch="ALB", used_days_ago=400, checkouts=30)
        self.spare(busy, branch="BAR", used_days_ago=400, checkouts=10)
        old_but_used = self.copy(self.bib("Old but used", y - 30, "500 OBU"), "500 OBU",
                                 used_days_ago=3)
        self.spare(old_but_used, branch="PRK", used_days_ago=3)
        kept = self.copy(self.bib("Kept", y - 20, "500 KPT"), "500 KPT", used_days_ago=3000)
        self.spare(kept, used_days_ago=4000)
        self.decide(kept, "keep")

        rows = self.listed()
        self.assertNotIn(h, rows)          # holds waiting
        self.assertNotIn(kept, rows)       # kept within keep_months
        self.assertNotIn(gone, rows)
        self.assertEqual((rows[last]["recommendation"], rows[last]["last_copy"],
                          rows[last]["reasons"]), ("review", True, ["age", "idle", "dead",
                                                                     "last_copy"]))
        self.assertIn("last copy in the system", rows[last]["reason"])
        self.assertEqual((rows[wanted]["recommendation"], rows[wanted]["transfer_to"],
                          rows[wanted]["reasons"]),
                         ("transfer", "PRK", ["idle", "dead", "demand_elsewhere"]))
        self.assertEqual((rows[busy]["recommendation"], rows[busy]["transfer_to"]),
                         ("transfer", "ALB"))
        # Past X only, used here: not under-used, so no transfer.
        self.assertEqual((rows[old_but_used]["recommendation"],
                          rows[old_but_used]["transfer_to"]), ("withdraw", None))
        # A keep older than keep_months no longer hides it.
        self.q("UPDATE weeding_decision SET decided_at = now() - interval '13 months'")
        self.assertIn(kept, self.listed())

    def test_collection_filter_and_a_branch_override_change_the_list(self):
        y = self.year
        med = self.copy(self.bib("Medicine", y - 8, "616 MED"), "616 MED", used_days_ago=30)
        self.spare(med)
        fic = self.copy(self.bib("Novel", y - 8, "FIC NOV"), "FIC NOV", used_days_ago=900)
        self.spare(fic)
        self.assertEqual(set(self.listed()), {med, fic})
        self.assertEqual(set(self.listed(collection="nf_610")), {med})
        self.assertEqual(set(self.listed(collection="fiction")), {fic})
        self.refused("SELECT * FROM weeding_list('WED', 'no_such', NULL, 10, false)", "CR404",
                     "crew_rule")
        self.refused("SELECT * FROM weeding_list('NOPE', NULL, NULL, 10, false)", "CR400",
                     "field:branch_code")
        # WED keeps medicine ten years: the copy leaves its list, not DWN's rules.
        self.rule_save({"branch_code": "WED", "collection": "nf_610", "max_age_years": 10,
                        "max_idle_years": 3})
        self.assertEqual(set(self.listed()), {fic})
        self.assertEqual(self.q("SELECT item_collection(NULL, 616, '', '', '')"), "nf_610")

    def test_list_and_summary_agree_on_kept_copies(self):
        """A keep binds the branch that decided it: one kept at another branch (before a
        transfer) is on WED's list and counted among WED's candidates; one kept at WED is in
        neither."""
        y = self.year
        there = self.copy(self.bib("Kept there", y - 30, "616 KTH"), "616 KTH",
                          used_days_ago=3000)
        here = self.copy(self.bib("Kept here", y - 30, "616 KHR"), "616 KHR",
                         used_days_ago=3000)
        for barcode in (there, here):
            self.spare(barcode)
        self.q("INSERT INTO weeding_decision (item_id, branch_id, decision, collection)"
               " SELECT i.id, CASE WHEN i.barcode = %s THEN %d ELSE %d END, 'keep', 'nf_610'"
               " FROM item i WHERE i.barcode IN (%s, %s)"
               % (lit(there), ids["DWN"], self.wed, lit(there), lit(here)))
        listed = self.listed(collection="nf_610")
        self.assertIn(there, listed)
        self.assertNotIn(here, listed)
        summary = {r["collection"]: r for r in
                   self.rows("SELECT * FROM weeding_summary('WED', false)")}
        self.assertEqual(summary["nf_610"]["candidates"], len(listed))

    def test_summary_per_collection(self):
        y = self.year
        for i in range(4):
            b = self.copy(self.bib("Med %d" % i, y - 2 - 4 * i, "616 M%d" % i), "616 M%d" % i,
                          used_days_ago=[10, 200, 400, 2000][i])
            self.spare(b)
        self.copy(self.bib("Worn", y - 1, "616 W"), "616 W", used_days_ago=1, checkouts=99)
        self.copy(self.bib("Gone", y - 1, "616 G"), "616 G", status="withdrawn")
        rows = {r["collection"]: r for r in self.rows("SELECT * FROM weeding_summary('WED', false)")}
        m = rows["nf_610"]
        # 5 copies (the withdrawn one not counted); dead: 200, 400, 2000 days.
        self.assertEqual((m["branch_code"], m["copies"], m["dead"], m["dead_pct"], m["target_pct"],
                          m["over_target"], m["worn"], m["candidates"]),
                         ("WED", 5, 3, 60.0, 20, True, 1, 3))
        self.assertEqual(m["median_age_years"], 6)  # ages 2, 6, 10, 14, 1 -> 6
        every = self.rows("SELECT * FROM weeding_summary(NULL, true)")
        self.assertIn(("WED", "nf_610"), {(r["branch_code"], r["collection"]) for r in every})
        self.assertIn("PRK", {r["branch_code"] for r in every})


# ---------------------------------------------------------------- decisions

class Decide(WeedingTest):

    def two_copies(self, title="Weeded", year=None, call="500 WDD"):
        bib = self.bib(title, year or self.year - 20, call)
        a = self.copy(bib, call, used_days_ago=3000)
        b = self.copy(bib, call, branch="PRK", used_days_ago=3000)
        return bib, a, b

    def test_each_decision_and_what_it_does_to_the_copy(self):
        _, a, _ = self.two_copies("Withdrawn one")
        r = self.decide(a, "withdraw", note="yellowed")
        self.assertEqual((r["barcode"], r["title"], r["decision"], r["status"], r["last_copy"]),
                         (a, "Withdrawn one", "withdraw", "withdrawn", False))
        self.assertEqual(self.item(a)["status"], "withdrawn")
        audit = self.one("SELECT action, changes FROM audit_event WHERE entity = 'item'"
                         " AND entity_id = %d" % self.item(a)["id"])
        self.assertEqual(audit["action"], "weeding_withdraw")
        self.assertEqual(audit["changes"]["status"], {"before": "available",
                                                      "after": "withdrawn"})
        _, b, _ = self.two_copies("Replaced one", call="500 RPL")
        self.assertEqual(self.decide(b, "replace")["status"], "withdrawn")
        _, c, _ = self.two_copies("Mended one", call="500 MND")
        self.assertEqual(self.decide(c, "mend")["status"], "in_processing")
        _, d, _ = self.two_copies("Kept one", call="500 KPT")
        r = self.decide(d, "keep")
        self.assertEqual(r["status"], "available")
        self.assertIn("off the weeding list until", r["message"])
        self.assertNotIn(d, {x["barcode"] for x in self.weed()})
        _, e, _ = self.two_copies("Moved one", call="500 MVD")
        r = self.decide(e, "transfer", to="alb")
        self.assertEqual((r["status"], r["transfer_to"]), ("in_transit", "ALB"))
        it = self.item(e)
        self.assertEqual((it["owning_branch_id"], it["current_branch_id"], it["status"]),
                         (ids["ALB"], self.wed, "in_transit"))
        t = self.one("SELECT from_branch_id, to_branch_id, reason FROM transit"
                     " WHERE item_id = %d AND received_at IS NULL" % it["id"])
        self.assertEqual((t["from_branch_id"], t["to_branch_id"], t["reason"]),
                         (self.wed, ids["ALB"], "transfer"))
        rows = self.rows("SELECT * FROM weeding_decision_list('WED', NULL, NULL, NULL, NULL)")
        self.assertEqual([(x["barcode"], x["decision"]) for x in rows],
                         [(e, "transfer"), (d, "keep"), (c, "mend"), (b, "replace"),
                          (a, "withdraw")])
        self.assertEqual((rows[0]["transfer_to"], rows[-1]["note"], rows[-1]["username"],
                          rows[-1]["collection"], rows[-1]["branch_code"]),
                         ("ALB", "yellowed", "admin", "nf_500", "WED"))
        only = self.rows("SELECT * FROM weeding_decision_list('WED', 'keep', NULL, NULL, NULL)")
        self.assertEqual([x["barcode"] for x in only], [d])
        # Counted in the statistics, by decision and collection.
        today = self.q("SELECT library_today()")
        stats = {tuple(x["keys"]): float(x["value"]) for x in self.rows(
            "SELECT * FROM stats_query('weeding_decisions', %s, %s, 'none',"
            " ARRAY['branch', 'decision'], NULL, false, NULL)" % (lit(today), lit(today)))}
        self.assertEqual(stats[("WED", "withdraw")], 1.0)
        self.assertEqual(stats[("WED", "transfer")], 1.0)
        by_coll = {tuple(x["keys"]): float(x["value"]) for x in self.rows(
            "SELECT * FROM stats_query('weeding_decisions', %s, %s, 'none',"
            " ARRAY['collection'], ARRAY[%d], false, NULL)" % (lit(today), lit(today),
                                                                self.wed))}
        self.assertEqual(by_coll, {("nf_500",): 5.0})

    def test_a_retry_applies_once(self):
        _, a, _ = self.two_copies()
        k = key()
        first = self.decide(a, "mend", k=k)
        again = self.decide(a, "mend", k=k)
        self.assertEqual(first, again)
        self.assertEqual(self.q("SELECT count(*) FROM weeding_decision"), "1")

    def test_guards(self):
        bib, a, _ = self.two_copies()
        self.hold(bib)
        self.refused(self.decide_sql(a, "withdraw"), "CR422", "holds_waiting")
        self.assertEqual(self.decide(a, "keep")["status"], "available")
        last_bib = self.bib("Only copy", self.year - 30, "500 ONE")
        one = self.copy(last_bib, "500 ONE", used_days_ago=3000)
        self.refused(self.decide_sql(one, "replace"), "CR422", "last_copy")
        r = self.decide(one, "withdraw", last_ok=True)
        self.assertEqual((r["status"], r["last_copy"]), ("withdrawn", True))
        self.assertIn("last copy", r["message"])
        _, out, _ = self.two_copies("Out", call="500 OUT")
        self.q("UPDATE item SET status = 'checked_out' WHERE barcode = %s" % lit(out))
        self.refused(self.decide_sql(out, "withdraw"), "CR409", "circulating")
        _, mine, _ = self.two_copies("Mine", call="500 MIN")
        self.refused(self.decide_sql(mine, "withdraw", scope=ids["DWN"]), "CR403", "branch")
        self.refused(self.decide_sql(mine, "transfer", to="WED"), "CR400", "field:transfer_to")
        self.refused(self.decide_sql(mine, "transfer"), "CR400", "field:transfer_to")
        self.refused(self.decide_sql(mine, "transfer", to="NOPE"), "CR400", "field:transfer_to")
        self.refused(self.decide_sql(mine, "burn"), "CR400", "field:decision")
        self.refused(self.decide_sql(mine, "keep", note="x" * 501), "CR400", "field:note")
        self.refused(self.decide_sql("NO-SUCH", "keep"), "CR404", "item_not_found")
        self.refused("SELECT * FROM weeding_decision_list('WED', 'burn', NULL, NULL, NULL)",
                     "CR400", "field:decision")
        self.assertEqual(self.q("SELECT count(*) FROM weeding_decision"), "2")

    def test_no_decision_about_a_copy_already_gone(self):
        """Withdrawn, lost or missing: refused (item_status), whatever the decision, and
        nothing is counted twice."""
        for status in ("withdrawn", "lost", "missing"):
            _, gone, _ = self.two_copies("Gone " + status, call="500 G" + status[:2].upper())
            self.q("UPDATE item SET status = %s WHERE barcode = %s" % (lit(status), lit(gone)))
            for decision in ("withdraw", "replace", "keep", "mend"):
                e = self.refused(self.decide_sql(gone, decision), "CR422", "item_status")
                self.assertIn("already " + status, e.message)
            self.assertEqual(self.item(gone)["status"], status)
        self.assertEqual(self.q("SELECT count(*) FROM weeding_decision"), "0")

    def display_with(self, barcode, days=(-1, 5), ended=False):
        """A display at WED over today+days[0]..today+days[1] holding barcode; its id."""
        d = int(self.q("INSERT INTO display (branch_id, place, theme, curator_id, starts_on,"
                       " ends_on, ended_at) VALUES (%d, 'Front', 'Old things', %d,"
                       " library_today() + %d, library_today() + %d, %s) RETURNING id"
                       % (self.wed, ids["staff"], days[0], days[1],
                          "now()" if ended else "NULL")).splitlines()[0])
        self.q("INSERT INTO display_item (display_id, item_id, added_by, added_at)"
               " SELECT %d, i.id, %d, now() - interval '1 hour' FROM item i WHERE i.barcode = %s"
               % (d, ids["staff"], lit(barcode)))
        return d

    def test_withdraw_replace_and_transfer_take_the_copy_off_its_display(self):
        for decision in ("withdraw", "replace", "transfer"):
            _, a, _ = self.two_copies("Shown " + decision, call="500 S" + decision[:3].upper())
            d = self.display_with(a)
            self.assertEqual(self.q("SELECT item_display_text(id) <> '' FROM item"
                                    " WHERE barcode = %s" % lit(a)), "t")
            self.decide(a, decision, to="PRK" if decision == "transfer" else None)
            row = self.one("SELECT x.removed_at IS NOT NULL AS closed, x.removed_by"
                           " FROM display_item x JOIN item i ON i.id = x.item_id"
                           " WHERE i.barcode = %s AND x.display_id = %d" % (lit(a), d))
            self.assertEqual((row["closed"], row["removed_by"]), (True, ids["staff"]), decision)
            self.assertEqual(self.q("SELECT coalesce(item_display_text(id), '') FROM item"
                                    " WHERE barcode = %s" % lit(a)), "", decision)
            audit = self.rows("SELECT e.action, e.changes FROM audit_event e JOIN item i"
                              " ON i.id = e.entity_id WHERE e.entity = 'item'"
                              " AND i.barcode = %s AND e.action = 'display_remove'" % lit(a))
            self.assertEqual([r["changes"]["display"] for r in audit],
                             [{"before": d, "after": None}], decision)
        # keep and mend leave it on the display.
        _, kept, _ = self.two_copies("Shown kept", call="500 SKEEP")
        d = self.display_with(kept)
        self.decide(kept, "keep")
        self.assertEqual(self.q("SELECT count(*) FROM display_item x JOIN item i"
                                " ON i.id = x.item_id WHERE i.barcode = %s"
                                " AND x.removed_at IS NULL" % lit(kept)), "1")


class LastCopyRace(WeedingTest):
    """Two staff withdrawing the last two copies of a title at the same time: the second
    waits for the first (the bib's lock), so it cannot miss that the first took one. The
    copies are committed (another session must see them) and removed afterwards; the
    decisions themselves are rolled back."""

    def setUp(self):
        # Made before the test's transaction opens, so that they are removed after it is
        # rolled back (cleanups run last first): its locks never block the removal.
        self.bib_id = int(env.psql(
            "INSERT INTO bib (marc, title, author, call_number) VALUES ('\\x00', 'Race',"
            " 'Author', '500 RACE') RETURNING id").splitlines()[0])
        self.addCleanup(env.psql, "DELETE FROM bib WHERE id = %d" % self.bib_id)
        self.barcodes = ["WDRACE1", "WDRACE2"]
        env.psql("INSERT INTO item (barcode, bib_id, owning_branch_id, current_branch_id,"
                 " call_number, item_type) SELECT c, %d, %d, %d, '500 RACE', 'book'"
                 " FROM unnest(%s::text[]) c"
                 % (self.bib_id, ids["DWN"], ids["DWN"],
                    lit("{" + ",".join(self.barcodes) + "}")))
        self.addCleanup(env.psql, "DELETE FROM item WHERE bib_id = %d" % self.bib_id)
        super().setUp()

    def test_the_second_withdrawal_waits_for_the_first(self):
        first, second = self.barcodes
        self.q("SAVEPOINT first")
        self.assertEqual(self.decide(first, "withdraw")["last_copy"], False)
        other = env.session()
        self.addCleanup(other.close)
        other.send("BEGIN; " + self.decide_sql(second, "withdraw"))

        def waiting_or_done():
            if not other.busy():
                return True
            return env.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                            " 'Lock' AND query LIKE %s"
                            % lit("%%weeding_decide%%%s%%" % second)) == "1"

        harness.wait_until(waiting_or_done, 60, "the second withdrawal to wait or finish")
        self.assertTrue(other.busy(), "the second withdrawal did not wait for the first")
        # The first one gives up: the second goes on, and takes the last copy only when
        # confirmed (it is one now).
        self.q("ROLLBACK TO SAVEPOINT first")
        out = other.finish()
        self.assertIn("|withdrawn|", out)
        self.assertEqual(self.q("SELECT status FROM item WHERE barcode = %s" % lit(first)),
                         "available")


# ---------------------------------------------------------------- shelf order and paging

class ShelfOrder(WeedingTest):
    """The list's shelf order and paging on a small shelf that still spans several of the
    list's internal chunks (500 copies a chunk for small pages). Speed is the bench's
    (scripts/bench catalog), not this suite's."""

    def test_pages_follow_the_shelf_without_gaps_or_repeats(self):
        y = self.year
        self.q("CREATE TEMP TABLE nb ON COMMIT DROP AS WITH ins AS ("
               " INSERT INTO bib (marc, title, author, pub_year, call_number, audience,"
               " literary_form) SELECT '\\x00', 'Shelf ' || g, 'Author', %s,"
               " CASE g %% 5 WHEN 0 THEN 'FIC A' || (g %% 97) WHEN 1 THEN '92 P' || g"
               " ELSE ((g * 37) %% 1000)::text || '.' || (g %% 97) || ' AU' END, '', ''"
               " FROM generate_series(1, 600) g RETURNING id, call_number)"
               " SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, call_number FROM ins"
               % lit(str(y - 1)))
        # 1,300 copies on WED's shelves, one in three past Y; others at PRK.
        self.q("INSERT INTO item (barcode, bib_id, owning_branch_id, current_branch_id,"
               " call_number, item_type, date_added, last_used_at)"
               " SELECT 'SH' || g, nb.id, o.id, o.id, nb.call_number, 'book',"
               " library_today() - 400, now() - make_interval(days =>"
               " CASE WHEN g % 3 = 0 THEN 4000 ELSE 10 END)"
               " FROM generate_series(1, 1500) g JOIN nb ON nb.n = g % 600"
               " JOIN branch o ON o.code = CASE WHEN g % 8 = 0 THEN 'PRK' ELSE 'WED' END")
        whole = self.weed(limit=10000)
        keys = [r["shelf_key"] for r in whole]
        self.assertGreater(len(whole), 100)
        # Shelf order: call_number_shelf_key, then the barcode (byte order).
        want = self.q("SELECT string_agg(i.barcode, '|' ORDER BY call_number_shelf_key("
                      "i.call_number) COLLATE \"C\", i.barcode COLLATE \"C\") FROM item i"
                      " WHERE i.barcode = ANY(%s::text[])"
                      % lit("{" + ",".join(r["barcode"] for r in whole) + "}"))
        self.assertEqual([r["barcode"] for r in whole], want.split("|"))
        self.assertEqual(keys, sorted(keys, key=lambda k: k.encode()))
        # Pages of 37 (one more asked, as the daemon does) join up to the whole list.
        after, got = None, []
        while True:
            rows = self.weed(after=after, limit=38)
            got.extend(rows[:37])
            if len(rows) <= 37:
                break
            after = rows[36]["shelf_key"]
        self.assertEqual([r["barcode"] for r in got], [r["barcode"] for r in whole])


if __name__ == "__main__":
    unittest.main()


