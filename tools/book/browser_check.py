#!/usr/bin/env python3
"""Opens built book pages in headless Chromium and checks what a reader sees.

    python3 tools/book/browser_check.py SITE_DIR [--pages a.html b.html]
                                        [--screenshot-dir DIR]

For every page (default: all *.html in SITE_DIR) it loads the page from disk,
lets its scripts run, and reads the DOM that book.js annotated:
  - math: KaTeX output present where the page has math, no KaTeX error
    elements, and the KaTeX fonts loaded from the site's own katex/fonts;
  - figures: every <img> loaded (naturalWidth > 0).
With --screenshot-dir it also saves a PNG screenshot of each page there.
Exits 1 with one line per problem. Needs Debian's `chromium`.
"""
import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=8000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("browser check: error: chromium not found (apt-get install chromium, or bash tools/install-deps.sh)")


def run_chromium(args, profile: str) -> subprocess.CompletedProcess:
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def body_attrs(dom: str) -> dict:
    m = re.search(r"<body([^>]*)>", dom)
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', m.group(1))) if m else {}


def check_page(page: Path, screenshot_dir) -> list:
    problems = []
    source = page.read_text(encoding="utf-8")
    has_math = 'class="katex' in source
    with tempfile.TemporaryDirectory() as profile:
        proc = run_chromium(["--dump-dom", page.as_uri()], profile)
        dom = proc.stdout
        if proc.returncode != 0 or "<body" not in dom:
            return [f"{page.name}: chromium could not load the page: {proc.stderr.strip()[-300:]}"]
        attrs = body_attrs(dom)
        if "images-total" not in attrs:
            problems.append(f"{page.name}: book.js did not run (no data-images-total on <body>)")
        else:
            if attrs.get("images-broken") != "0":
                broken = re.findall(r'<img[^>]*src="([^"]+)"', dom)
                problems.append(f"{page.name}: {attrs['images-broken']} of {attrs['images-total']} images "
                                f"did not load ({', '.join(broken)})")
            if has_math:
                if int(attrs.get("math-elements", "0")) == 0:
                    problems.append(f"{page.name}: no rendered math in the browser")
                if int(attrs.get("math-fonts", "0") or 0) == 0:
                    problems.append(f"{page.name}: the KaTeX fonts did not load (site katex/fonts missing?)")
        raw = len(re.findall(r'class="math (?:inline|display)"', dom))
        if raw:
            problems.append(f"{page.name}: {raw} formula(s) left as raw TeX")
        errors = len(re.findall(r'class="katex-error"', dom))
        if errors:
            problems.append(f"{page.name}: {errors} KaTeX error element(s)")
        if screenshot_dir is not None:
            shot = Path(screenshot_dir) / (page.stem + ".png")
            shot.parent.mkdir(parents=True, exist_ok=True)
            run_chromium([f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri()], profile)
            if not shot.exists() or shot.stat().st_size < 10000:
                problems.append(f"{page.name}: screenshot {shot} was not written")
        summary = (f"{page.name}: {attrs.get('images-total', '?')} images "
                   f"({attrs.get('images-broken', '?')} broken), {attrs.get('math-elements', 0)} math elements, "
                   f"{attrs.get('math-fonts', 0)} KaTeX fonts loaded")
        print("  " + summary)
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("site", type=Path)
    ap.add_argument("--pages", nargs="*", help="page file names (default: every .html)")
    ap.add_argument("--screenshot-dir", type=Path)
    args = ap.parse_args(argv)
    site = args.site.resolve()
    pages = [site / p for p in args.pages] if args.pages else sorted(site.glob("*.html"))
    if not pages:
        print(f"browser check: error: no pages in {site}", file=sys.stderr)
        return 1
    problems = []
    for page in pages:
        if not page.exists():
            problems.append(f"{page}: no such page")
            continue
        problems += check_page(page, args.screenshot_dir)
    for p in problems:
        print(f"browser check: {p}", file=sys.stderr)
    print(f"browser check: {len(pages)} page(s), {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
