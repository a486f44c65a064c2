#!/usr/bin/env python3
"""Self-test of the book builder: a small good book builds; each kind of
mistake the builder must catch (missing include file, missing or empty
anchor, missing figure, missing metric, bad TeX, broken link, unknown
directive) fails the build with a message naming the page and the problem."""
import json
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402

THEME = Path(__file__).resolve().parents[2] / "book" / "theme"

SOURCE = """\
int before;
// ANCHOR: step
double step(double x) { return x + 1; }
  // ANCHOR: inner
  int nested;
  // ANCHOR_END: inner
// ANCHOR_END: step
// ANCHOR: empty
// ANCHOR_END: empty
"""


class BookBuilderTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="dm_book_test_"))
        self.book = self.tmp / "book"
        shutil.copytree(THEME, self.book / "theme")
        (self.book / "SUMMARY.md").write_text("- [Intro](intro.md)\n- [One](one.md)\n")
        (self.book / "intro.md").write_text("# Intro\n\nSee [chapter one](one.html).\n")
        (self.tmp / "src.cpp").write_text(SOURCE)
        runs = self.tmp / "runs" / "01_toy"
        runs.mkdir(parents=True)
        (runs / "fig.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
        (runs / "metrics.json").write_text(json.dumps({"a": {"b": [0.5, 0.123456]}}))

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def page(self, body: str):
        (self.book / "one.md").write_text("# One\n\n" + body + "\n")

    def build(self):
        return build.build(self.book, self.tmp / "runs", self.tmp / "site")

    def assert_fails(self, body: str, *fragments):
        self.page(body)
        with self.assertRaises(build.BookError) as ctx:
            self.build()
        message = str(ctx.exception)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message

    def test_good_book_builds(self):
        self.page("Math $\\nabla \\log p(x)$ and $$\\int p = 1$$\n\n"
                  "{{#include ../src.cpp:step}}\n\n"
                  "![a figure](runs:01_toy/fig.svg)\n\n"
                  "Value {{#metric 01_toy:a.b.1:.3f}}.\n\n"
                  "```\n{{#metric not:expanded}} inside a code fence stays as is\n```\n")
        stats = self.build()
        self.assertEqual(stats["pages"], 2)
        self.assertEqual(stats["includes"], 1)
        self.assertEqual(stats["figures"], 1)
        self.assertEqual(stats["formulas"], 2)
        html = (self.tmp / "site" / "one.html").read_text()
        self.assertIn("double", html)
        self.assertIn("nested<", html)  # a nested region's code is kept, its marker lines dropped
        self.assertNotIn("ANCHOR", html)
        self.assertIn("0.123", html)
        self.assertIn('class="katex"', html)
        self.assertNotIn('class="math', html)
        self.assertIn("{{#metric not:expanded}}", html)
        self.assertTrue((self.tmp / "site" / "figures" / "01_toy" / "fig.svg").exists())
        self.assertTrue(any((self.tmp / "site" / "katex" / "fonts").glob("KaTeX_Main-Regular.*")))
        index = (self.tmp / "site" / "index.html").read_text()
        self.assertIn('href="one.html"', index)  # navigation

    def test_missing_include_file(self):
        self.assert_fails("{{#include ../nope.cpp:step}}", "one.md:3", "include file not found", "nope.cpp")

    def test_missing_anchor(self):
        self.assert_fails("{{#include ../src.cpp:absent}}", "one.md:3", "anchor 'absent' not found")

    def test_empty_anchor(self):
        self.assert_fails("{{#include ../src.cpp:empty}}", "one.md:3", "is empty")

    def test_missing_figure(self):
        self.assert_fails("![x](runs:01_toy/absent.svg)", "one.md:3", "absent.svg not found", "run chapter 01_toy")

    def test_missing_metric(self):
        self.assert_fails("{{#metric 01_toy:a.c}}", "metric 01_toy:a.c not found")
        self.assert_fails("{{#metric 02_none:a}}", "run chapter 02_none first")

    def test_math_error(self):
        self.assert_fails("Broken $\\frac{1}{$ here", "math error", "\\frac{1}{")

    def test_stray_tex(self):
        # A space before the closing dollar: pandoc leaves it as text.
        self.assert_fails("Then $\\Delta t = $0.1 here", "TeX outside math")

    def test_broken_link(self):
        self.assert_fails("![x](nowhere.png)", "broken local link", "nowhere.png")

    def test_unknown_directive(self):
        self.assert_fails("{{#inclde ../src.cpp:step}}", "unknown or malformed directive")

    def test_page_missing_from_disk(self):
        (self.book / "SUMMARY.md").write_text("- [Ghost](ghost.md)\n")
        with self.assertRaises(build.BookError) as ctx:
            self.build()
        self.assertIn("ghost.md does not exist", str(ctx.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
