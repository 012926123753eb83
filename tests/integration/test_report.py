#!/usr/bin/env python3
"""The director's report: `carrel report monthly --html FILE` after real circulation
through the real client, rendered by headless Chromium (DOM, layout and a screenshot),
its numbers equal to what `carrel stats ... --json` answers for the same range, and the
file self-contained (no URL, script, font or stylesheet from outside).

Chromium is a dependency like PostgreSQL (scripts/deps installs Debian's `chromium`):
when it is missing the test fails, it is never skipped."""

import html.parser
import json
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = "staff-password-123"
HEADLINES = ["circulation", "checkouts", "renewals", "checkins", "holds_filled", "registrations"]
env = None
main = None
admin = None
# What the module's circulation made, per branch: checkouts, renewals, checkins.
MADE = {"DWN": (4, 2, 1), "PRK": (2, 0, 2)}
# And self-check checkouts: circulation, but not desk activity (the heat map).
SELFCHECK = {"DWN": 1}


def setUpModule():
    global env, main, admin
    env = harness.Env()
    try:
        env.start()
        main = env.daemon()
        admin = env.profile(main)
        env.add_workstations(admin, harness.BRANCH_DESKS)
        env.add_staff(admin, "cora", "coordinator", "DWN", PASSWORD)
        env.add_staff(admin, "pat", "clerk", "PRK", PASSWORD)
        env.add_staff(admin, "mona", "branch_manager", "PRK", PASSWORD)
        circulate()
    except BaseException:
        env.stop()
        raise


def tearDownModule():
    env.stop()


def carrel(*args, user="cora", ws="desk-dwn", json_out=True):
    pw = harness.ADMIN_PASSWORD if user == "admin" else PASSWORD
    return env.carrel(env.profile(main, ws, user, pw), *args, json_out=json_out)


def ok(r):
    assert r.code == 0, r
    return r


def circulate():
    """Checkouts, renewals and checkins at two branches' desks, through the client."""
    desks = {"DWN": ("cora", "desk-dwn"), "PRK": ("pat", "desk-prk")}
    for branch, (checkouts, renewals, checkins) in MADE.items():
        user, ws = desks[branch]
        card = env.new_patron(branch=branch)
        items = [env.new_item(branch=branch, title="Report copy %s" % branch)
                 for _ in range(checkouts)]
        ok(carrel("checkout", card, *items, user=user, ws=ws))
        if renewals:
            # Due soon, so that renewing today moves the due date (else nothing is renewed).
            env.psql("UPDATE loan SET due_at = now() + interval '1 day' WHERE returned_at IS NULL"
                     " AND item_id IN (SELECT id FROM item WHERE barcode IN ('%s'))"
                     % "','".join(items[:renewals]))
            r = ok(carrel("renew", card, *items[:renewals], user=user, ws=ws))
            assert all(x["renewed"] for x in r.json), r
        if checkins:
            ok(carrel("checkin", *items[-checkins:], user=user, ws=ws))
    # No client command checks out at a self-check yet: the event as one would record it.
    for branch, n in SELFCHECK.items():
        item = env.new_item(branch=branch, title="Report copy self-check")
        env.psql("INSERT INTO circ_event (action, branch_id, item_id, item_type, patron_category,"
                 " via) SELECT 'checkout', b.id, i.id, i.item_type, 'adult', 'selfcheck'"
                 " FROM branch b, item i, generate_series(1, %d) WHERE b.code = %s"
                 " AND i.barcode = %s" % (n, harness.sql_literal(branch),
                                          harness.sql_literal(item)))


def circulation(branch):
    c, r, _ = MADE[branch]
    return c + r + SELFCHECK.get(branch, 0)


def this_month():
    return env.psql("SELECT to_char(library_today(), 'YYYY-MM')")


# ---- reading the report ----

class DataElements(html.parser.HTMLParser):
    """Every element with a data-value: (tag, class, {data-*: value})."""

    def __init__(self):
        super().__init__()
        self.found = []
        self.main = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        data = {k[5:]: v for k, v in a.items() if k.startswith("data-")}
        if tag == "main":
            self.main = data
        if "value" in data:
            self.found.append((tag, a.get("class", ""), data))


def data_elements(text):
    p = DataElements()
    p.feed(text)
    return p


def number(text):
    return float(text)


# ---- asking the server the same questions ----

def stats(measure, frm, to, *extra):
    r = ok(carrel("stats", measure, "--from", frm, "--to", to, *extra))
    assert isinstance(r.json, dict) and "rows" in r.json, r
    return r.json


def rows(reply):
    return reply.get("rows") or []


def row_value(row, field="value"):
    return float(row.get(field, 0) or 0)


# ---- chromium ----

def chromium_path():
    path = shutil.which("chromium")
    if path is None:
        raise AssertionError("chromium is not installed: run scripts/deps (Debian package "
                             "chromium); the report test needs it and is never skipped")
    return path


def chromium(*args, timeout=300):
    """Run headless Chromium with a private profile and no network at all."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=env.dir)
    argv = [chromium_path(), "--headless", "--no-sandbox", "--disable-gpu",
            "--user-data-dir=" + profile, "--no-first-run", "--disable-extensions",
            "--disable-sync", "--disable-background-networking", "--disable-component-update",
            "--disable-default-apps", "--no-default-browser-check", "--mute-audio",
            # No network: every host resolves to nothing, through no proxy that answers.
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
            "--hide-scrollbars", "--window-size=1000,3000"] + list(args)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, HOME=profile))
    assert proc.returncode == 0, "chromium exited %d: %s" % (proc.returncode,
                                                             proc.stderr[-3000:])
    return proc


# Added to a copy of the report only (the report itself has no script): the laid-out size
# of every chart and drawn element, written into the DOM that --dump-dom prints.
MEASURE_SCRIPT = """<script>
(function () {
  var out = [];
  document.querySelectorAll('svg, rect.bar, rect.cell, .point, polyline').forEach(function (e) {
    var r = e.getBoundingClientRect();
    out.push({tag: e.tagName.toLowerCase(), cls: e.getAttribute('class') || '',
              branch: e.getAttribute('data-branch') || '', w: r.width, h: r.height});
  });
  var pre = document.createElement('pre');
  pre.id = 'measured';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def png_pixels(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA PNG, with zlib only."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * channels
    prev = bytearray(stride)
    out = []
    for y in range(height):
        base = y * (stride + 1)
        kind, line = raw[base], bytearray(raw[base + 1:base + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append([tuple(line[i:i + 3]) for i in range(0, stride, channels)])
        prev = line
    return width, height, out


class MonthlyReport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.month = this_month()
        cls.path = os.path.join(env.dir, "report <%s>.html" % cls.month)
        cls.made = ok(carrel("report", "monthly", "--month", cls.month, "--html", cls.path)).json
        with open(cls.path, encoding="utf-8") as f:
            cls.text = f.read()
        cls.data = data_elements(cls.text)

    def elements(self, cls_name, **want):
        return [d for tag, c, d in self.data.found
                if cls_name in c.split() and all(d.get(k) == v for k, v in want.items())]

    def test_written_where_it_says_with_the_range(self):
        y, m = map(int, self.month.split("-"))
        last = env.psql("SELECT (date '%s-01' + interval '1 month' - interval '1 day')::date"
                        % self.month)
        self.assertEqual(self.made["file"], self.path)
        self.assertEqual(self.made["from"], "%s-01" % self.month)
        self.assertEqual(self.made["to"], last)
        self.assertEqual(self.data.main, {"period": self.month, "from": "%s-01" % self.month,
                                          "to": last})
        today = env.psql("SELECT library_today()")
        if today < last:
            self.assertIn("figures up to today", self.text)
        # No temporary file left beside it.
        self.assertEqual([n for n in os.listdir(env.dir) if n.startswith("report <")],
                         [os.path.basename(self.path)])
        # Text output says where it went.
        again = os.path.join(env.dir, "again.html")
        r = ok(carrel("report", "monthly", "--month", self.month, "--html", again,
                      json_out=False))
        self.assertIn(again, r.stdout)
        self.assertTrue(os.path.getsize(again) > 1000)

    def test_self_contained(self):
        t = self.text
        self.assertNotRegex(t, r"(?i)https?:")
        self.assertNotRegex(t, r"(?i)<script")
        self.assertNotRegex(t, r"(?i)<link|<iframe|<img|<object|<embed")
        self.assertNotRegex(t, r"(?i)@import|@font-face|url\(")
        self.assertNotRegex(t, r"(?i)\bsrc\s*=|\bhref\s*=")
        self.assertIn("@media print", t)
        # No patron named: the cards and names of the module's patrons are nowhere.
        for name in env.psql("SELECT card || ' ' || last_name FROM patron").split():
            self.assertNotIn(name, t)

    def test_headlines_equal_stats(self):
        frm, to = self.made["from"], self.made["to"]
        for measure in HEADLINES:
            reply = stats(measure, frm, to, "--compare")
            want = row_value(rows(reply)[0]) if rows(reply) else 0.0
            got = self.elements("headline", measure=measure, period=self.month)
            self.assertEqual(len(got), 1, measure)
            self.assertEqual(number(got[0]["value"]), want, measure)
            if rows(reply) and "previous" in rows(reply)[0]:
                self.assertEqual(number(got[0]["previous"]), row_value(rows(reply)[0],
                                                                       "previous"), measure)
        circ = self.elements("headline", measure="circulation")[0]
        self.assertEqual(number(circ["value"]), sum(map(circulation, MADE)))

    def test_branch_bars_equal_stats(self):
        reply = stats("circulation", self.made["from"], self.made["to"], "--by", "branch")
        want = {row["key"][0]: row_value(row) for row in rows(reply)}
        got = {d["branch"]: number(d["value"])
               for d in self.elements("bar", series="current", measure="circulation")}
        self.assertEqual(got, want)
        self.assertEqual(len(self.elements("bar", series="current")), len(want))
        for branch in MADE:
            self.assertEqual(got[branch], circulation(branch), branch)
        # The same figures month by month, for the one month of the report.
        reply = stats("circulation", self.made["from"], self.made["to"], "--by", "branch",
                      "--time", "month")
        self.assertEqual({row["key"][0]: row_value(row) for row in rows(reply)
                          if row["period"] == self.month}, got)

    def test_months_equal_stats(self):
        frm, to = self.made["months_from"], self.made["months_to"]
        reply = stats("circulation", frm, to, "--time", "month")
        want = {row["period"]: row_value(row) for row in rows(reply)}
        got = {d["period"]: number(d["value"])
               for d in self.elements("point", series="current", measure="circulation")}
        self.assertEqual(len(got), 12)
        self.assertEqual(max(got), self.month)
        for period, value in got.items():
            self.assertEqual(value, want.get(period, 0.0), period)
        self.assertEqual(set(want) - set(got), set())

    def test_heat_equals_stats(self):
        frm, to = self.made["from"], self.made["to"]
        want = {}
        for measure in ("circulation", "checkins"):
            reply = stats(measure, frm, to, "--by", "branch,via", "--time", "hour_of_week")
            for row in rows(reply):
                if row["key"][1] == "desk":
                    k = (row["key"][0], row["period"])
                    want[k] = want.get(k, 0.0) + row_value(row)
        cells = self.elements("cell", measure="desk_transactions")
        branches = {d["branch"] for d in cells}
        self.assertEqual(branches, set(MADE))
        for b in branches:
            self.assertEqual(len([d for d in cells if d["branch"] == b]), 7 * 24, b)
        got = {(d["branch"], d["period"]): number(d["value"]) for d in cells}
        self.assertEqual({k: v for k, v in got.items() if v}, want)
        for b, (c, r, i) in MADE.items():
            self.assertEqual(sum(v for (cb, _), v in got.items() if cb == b), c + r + i, b)

    def test_rendered_by_chromium(self):
        # The DOM Chromium builds: every chart and drawn element laid out with a size.
        copy = os.path.join(env.dir, "measured.html")
        with open(copy, "w", encoding="utf-8") as f:
            f.write(self.text.replace("</body>", MEASURE_SCRIPT + "</body>"))
        dom = chromium("--dump-dom", pathlib.Path(copy).as_uri()).stdout
        m = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
        self.assertIsNotNone(m, dom[-2000:])
        measured = json.loads(html.unescape(m.group(1)))
        svgs = [e for e in measured if e["tag"] == "svg"]
        # The bar chart, the month line and one heat map per branch.
        self.assertEqual(len(svgs), 2 + len(MADE))
        for e in svgs:
            self.assertGreater(e["w"], 300, e)
            self.assertGreater(e["h"], 50, e)
        bars = [e for e in measured if e["cls"] == "bar"]
        self.assertEqual(len(bars), len(MADE) + len(
            self.elements("bar", series="previous")))
        self.assertTrue(all(e["w"] > 0 and e["h"] > 0 for e in bars
                            if e["branch"] in MADE), bars)
        cells = [e for e in measured if e["cls"] == "cell"]
        self.assertEqual(len(cells), 7 * 24 * len(MADE))
        self.assertTrue(all(e["w"] > 5 and e["h"] > 5 for e in cells))
        points = [e for e in measured if e["cls"] == "point"]
        self.assertGreaterEqual(len(points), 12)
        self.assertTrue(all(e["w"] > 0 and e["h"] > 0 for e in points))
        # The report itself as Chromium parsed it: its charts are there without our script.
        dom = chromium("--dump-dom", pathlib.Path(self.path).as_uri()).stdout
        self.assertEqual(len(re.findall(r'<svg class="chart', dom)), 2 + len(MADE))
        self.assertNotIn('id="measured"', dom)

    def test_screenshot_not_blank(self):
        shot = os.path.join(env.dir, "report.png")
        chromium("--screenshot=" + shot, pathlib.Path(self.path).as_uri())
        width, height, pixels = png_pixels(shot)
        self.assertEqual((width, height), (1000, 3000))
        total = width * height
        white = sum(1 for row in pixels for p in row if p == (255, 255, 255))
        colours = {p for row in pixels[::4] for p in row[::4]}
        self.assertLess(white, total * 0.97, "the screenshot is (nearly) blank")
        self.assertGreater(len(colours), 8)
        # The bars' dark blue (#1f4e79) is painted: the charts were drawn, not just text.
        dark = sum(1 for row in pixels for p in row
                   if abs(p[0] - 0x1f) <= 6 and abs(p[1] - 0x4e) <= 6 and abs(p[2] - 0x79) <= 6)
        self.assertGreater(dark, 500)

    def test_prints_one_section_a_page(self):
        pdf = os.path.join(env.dir, "report.pdf")
        chromium("--no-pdf-header-footer", "--print-to-pdf=" + pdf, pathlib.Path(self.path).as_uri())
        with open(pdf, "rb") as f:
            data = f.read()
        pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
        # Four sections, each starting a page; a heat map never split across two.
        self.assertGreaterEqual(pages, 4)


class Refusals(unittest.TestCase):
    def test_usage(self):
        for args in (["--html", "x.html"], ["--month", "2026-13", "--html", "x.html"],
                     ["--month", "2026-+1", "--html", "x.html"], ["--month", "2026-1"],
                     ["--month", "2026-11"], ["--month", "2026-11", "--year", "2026",
                                              "--html", "x.html"], ["--year", "26",
                                                                    "--html", "x.html"]):
            r = carrel("report", "monthly", *args)
            self.assertEqual(r.code, 2, (args, r))

    def test_clerk_refused_and_nothing_written(self):
        path = os.path.join(env.dir, "clerk.html")
        r = carrel("report", "monthly", "--month", this_month(), "--html", path, user="pat",
                   ws="desk-prk")
        self.assertEqual(r.code, 4, r)
        self.assertEqual(r.json["status"], "forbidden", r)
        self.assertFalse(os.path.exists(path))
        self.assertEqual([n for n in os.listdir(env.dir) if n.startswith("clerk.html")], [])

    def test_unwritable_file(self):
        path = os.path.join(env.dir, "no-such-dir", "r.html")
        r = carrel("report", "monthly", "--month", this_month(), "--html", path)
        self.assertEqual(r.code, 1, r)


class Scope(unittest.TestCase):
    """A branch manager's report is their branch's; --branch narrows a coordinator's."""

    def report_branches(self, path, *args, **kw):
        ok(carrel("report", "monthly", "--month", this_month(), "--html", path, *args, **kw))
        with open(path, encoding="utf-8") as f:
            data = data_elements(f.read())
        bars = {d["branch"] for _, c, d in data.found if c == "bar"}
        maps = {d["branch"] for _, c, d in data.found if c == "cell"}
        heads = {d["measure"]: number(d["value"]) for _, c, d in data.found
                 if "headline" in c.split()}
        return bars, maps, heads

    def test_branch_manager_sees_own_branch(self):
        path = os.path.join(env.dir, "manager.html")
        bars, maps, heads = self.report_branches(path, user="mona", ws="desk-prk")
        self.assertEqual((bars, maps), ({"PRK"}, {"PRK"}))
        self.assertEqual(heads["circulation"], circulation("PRK"))
        self.assertEqual(heads["checkins"], MADE["PRK"][2])
        # Asking for another branch is refused, and nothing is written.
        other = os.path.join(env.dir, "manager-dwn.html")
        r = carrel("report", "monthly", "--month", this_month(), "--html", other, "--branch",
                   "DWN", user="mona", ws="desk-prk")
        self.assertEqual((r.code, r.json["status"]), (4, "forbidden"), r)
        self.assertFalse(os.path.exists(other))

    def test_branch_option(self):
        path = os.path.join(env.dir, "dwn.html")
        bars, maps, heads = self.report_branches(path, "--branch", "DWN")
        self.assertEqual((bars, maps), ({"DWN"}, {"DWN"}))
        self.assertEqual(heads["circulation"], circulation("DWN"))


class YearlyReport(unittest.TestCase):
    def test_year_month_by_month(self):
        year = this_month()[:4]
        path = os.path.join(env.dir, "year.html")
        made = ok(carrel("report", "monthly", "--year", year, "--html", path)).json
        self.assertEqual((made["from"], made["to"]), (year + "-01-01", year + "-12-31"))
        with open(path, encoding="utf-8") as f:
            data = data_elements(f.read())
        points = [d for _, c, d in data.found if c == "point" and d["series"] == "current"]
        # The months of the year so far: those after this one are still to come, not 0.
        self.assertEqual([d["period"] for d in points],
                         ["%s-%02d" % (year, m) for m in range(1, int(this_month()[5:]) + 1)])
        reply = stats("circulation", made["from"], made["to"], "--by", "branch")
        want = {row["key"][0]: row_value(row) for row in rows(reply)}
        got = {d["branch"]: number(d["value"]) for _, c, d in data.found
               if c == "bar" and d["series"] == "current"}
        self.assertEqual(got, want)
        self.assertEqual(data.main["period"], year)


if __name__ == "__main__":
    unittest.main(verbosity=2)
