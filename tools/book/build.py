#!/usr/bin/env python3
"""Builds the book: Markdown pages in book/ -> a static HTML site.

    python3 tools/book/build.py [--book book] [--runs runs] [--out build/book]

The page order is book/SUMMARY.md (one line per page: `- [Title](file.md)`).
Before pandoc sees a page, three directives are expanded:

  {{#include ../common/src/methods/langevin.cpp:ula_step}}
      the lines between `// ANCHOR: ula_step` and `// ANCHOR_END: ula_step`
      of that file (path relative to the page), as a highlighted C++ block;
      without `:anchor`, the whole file. Nested ANCHOR lines are dropped.
  ![caption](runs:01_langevin/bias_vs_dt.svg)
      a figure a chapter wrote into the runs folder (--runs); it is copied
      into the site.
  {{#metric 01_langevin:mixing.plain.right_fraction:.3f}}
      a number from that chapter's metrics.json (dotted path, list indices
      allowed, optional Python format spec), so the text quotes the run the
      reader just made.

Math ($...$, $$...$$) is rendered at build time by KaTeX (Debian's
libjs-katex, run by node), so pages need no JavaScript for math and a TeX
error fails the build. The build fails, naming page and line, on: an include
whose file or anchor is missing or empty, a figure or metric the chapters
did not produce, a math error, a broken local link.
"""
import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KATEX_DIR = Path("/usr/share/javascript/katex")


class BookError(Exception):
    pass


# ---------------------------------------------------------------------------
# SUMMARY.md: the page order
# ---------------------------------------------------------------------------
def read_summary(book: Path):
    summary = book / "SUMMARY.md"
    if not summary.exists():
        raise BookError(f"{summary}: missing (it lists the pages in order)")
    pages = []
    for lineno, line in enumerate(summary.read_text(encoding="utf-8").splitlines(), 1):
        m = re.match(r"\s*[-*]\s*\[(.+?)\]\((.+?\.md)\)\s*$", line)
        if not m:
            continue
        title, rel = m.group(1), m.group(2)
        if not (book / rel).exists():
            raise BookError(f"{summary}:{lineno}: page {rel} does not exist")
        pages.append({"title": title, "source": book / rel, "html": Path(rel).with_suffix(".html").name})
    if not pages:
        raise BookError(f"{summary}: lists no pages (expected lines like `- [Title](page.md)`)")
    pages[0]["html"] = "index.html"  # the first page is the front page
    return pages


# ---------------------------------------------------------------------------
# Directives
# ---------------------------------------------------------------------------
INCLUDE_RE = re.compile(r"\{\{#include\s+([^}:\s]+)(?::([\w-]+))?\s*\}\}")
METRIC_RE = re.compile(r"\{\{#metric\s+([\w-]+):([\w.\-]+)(?::([^}\s]+))?\s*\}\}")
FIGURE_RE = re.compile(r"(!\[[^\]]*\]\()runs:([^)\s]+)(\))")
ANCHOR_LINE_RE = re.compile(r"^\s*(//|#)\s*ANCHOR(_END)?:\s*[\w-]+\s*$")
LANGUAGES = {".cpp": "cpp", ".hpp": "cpp", ".h": "cpp", ".cc": "cpp", ".py": "python",
             ".sh": "bash", ".cmake": "cmake", ".txt": "cmake", ".json": "json"}


def extract_region(path: Path, anchor: str, where: str) -> str:
    if not path.exists():
        raise BookError(f"{where}: include file not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    if anchor:
        start = end = None
        for i, line in enumerate(lines):
            if re.match(rf"^\s*(//|#)\s*ANCHOR:\s*{re.escape(anchor)}\s*$", line):
                start = i + 1
            elif re.match(rf"^\s*(//|#)\s*ANCHOR_END:\s*{re.escape(anchor)}\s*$", line) and start is not None:
                end = i
                break
        if start is None or end is None:
            raise BookError(f"{where}: anchor '{anchor}' not found in {path} "
                            f"(expected `// ANCHOR: {anchor}` ... `// ANCHOR_END: {anchor}`)")
        lines = lines[start:end]
    lines = [l for l in lines if not ANCHOR_LINE_RE.match(l)]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise BookError(f"{where}: include {path}{':' + anchor if anchor else ''} is empty")
    indent = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
    return "\n".join(l[indent:] for l in lines)


def lookup_metric(runs: Path, chapter: str, dotted: str, fmt: str, where: str, cache: dict) -> str:
    path = runs / chapter / "metrics.json"
    if path not in cache:
        if not path.exists():
            raise BookError(f"{where}: {path} not found: run chapter {chapter} first "
                            f"(bash tools/tutorial.sh, or build/bin/{chapter} --out {runs / chapter})")
        cache[path] = json.loads(path.read_text(encoding="utf-8"))
    value = cache[path]
    for key in dotted.split("."):
        try:
            value = value[int(key)] if isinstance(value, list) else value[key]
        except (KeyError, IndexError, ValueError, TypeError):
            raise BookError(f"{where}: metric {chapter}:{dotted} not found in {path} (no '{key}')")
    if isinstance(value, (dict, list)):
        raise BookError(f"{where}: metric {chapter}:{dotted} is not a single value")
    try:
        return format(value, fmt) if fmt else str(value)
    except ValueError as e:
        raise BookError(f"{where}: metric {chapter}:{dotted}: bad format '{fmt}': {e}")


def expand(page: dict, runs: Path, out: Path, stats: dict, metric_cache: dict) -> str:
    source = page["source"]
    text = source.read_text(encoding="utf-8")
    result = []
    in_fence = False
    for lineno, line in enumerate(text.splitlines(), 1):
        where = f"{source.relative_to(ROOT) if source.is_relative_to(ROOT) else source}:{lineno}"
        if line.lstrip().startswith("```") and not INCLUDE_RE.search(line):
            in_fence = not in_fence
        if in_fence:
            result.append(line)
            continue

        m = INCLUDE_RE.fullmatch(line.strip())
        if m:
            rel, anchor = m.group(1), m.group(2) or ""
            path = (source.parent / rel).resolve()
            code = extract_region(path, anchor, where)
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            lang = LANGUAGES.get(path.suffix, "")
            label = f"`{shown}`" + (f" · `{anchor}`" if anchor else "")
            # Keep the directive's indentation so an include inside a list item stays in it.
            indent = line[: len(line) - len(line.lstrip())]
            block = ["::: {.include}", f"[{label}]{{.include-path}}", "", f"```{lang}", *code.split("\n"), "```", ":::"]
            result += [""] + [indent + b if b else "" for b in block] + [""]
            stats["includes"] += 1
            continue
        if INCLUDE_RE.search(line):
            raise BookError(f"{where}: {{{{#include ...}}}} must stand alone on its line")

        def metric(mm):
            stats["metrics"] += 1
            return lookup_metric(runs, mm.group(1), mm.group(2), mm.group(3) or "", where, metric_cache)

        line = METRIC_RE.sub(metric, line)
        if "{{#" in line:
            raise BookError(f"{where}: unknown or malformed directive: {line.strip()}")

        def figure(mm):
            rel = mm.group(2)
            src = runs / rel
            if not src.exists():
                chapter = rel.split("/")[0]
                raise BookError(f"{where}: figure {src} not found: run chapter {chapter} first")
            dest = out / "figures" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            stats["figures"] += 1
            return f"{mm.group(1)}figures/{rel}{mm.group(3)}"

        result.append(FIGURE_RE.sub(figure, line))
    return "\n".join(result) + "\n"


# ---------------------------------------------------------------------------
# Math: pandoc marks it, KaTeX renders it
# ---------------------------------------------------------------------------
MATH_RE = re.compile(r'<span\s+class="math (inline|display)">(.*?)</span>', re.S)


def render_math(pages_html: dict) -> dict:
    """Replaces pandoc's math spans by KaTeX HTML in every page (one node call)."""
    items, where = [], []
    for name, text in pages_html.items():
        for m in MATH_RE.finditer(text):
            tex = html.unescape(m.group(2))
            tex = tex[2:-2] if tex.startswith(("\\(", "\\[")) else tex
            items.append({"tex": tex, "display": m.group(1) == "display"})
            where.append(name)
    if not items:
        return pages_html
    if shutil.which("node") is None:
        raise BookError("node not found: the book renders math with KaTeX under node "
                        "(apt-get install nodejs, or bash tools/install-deps.sh)")
    katex_js = KATEX_DIR / "katex.js"
    if not katex_js.exists():
        raise BookError(f"{katex_js} not found (apt-get install libjs-katex)")
    proc = subprocess.run(["node", str(Path(__file__).with_name("katex_render.js")), str(katex_js)],
                          input=json.dumps(items), capture_output=True, text=True)
    if proc.returncode != 0:
        raise BookError(f"KaTeX renderer failed: {proc.stderr.strip()}")
    rendered = json.loads(proc.stdout)
    errors = [f"{where[i]}: math error in `{items[i]['tex']}`: {r['error']}"
              for i, r in enumerate(rendered) if "error" in r]
    if errors:
        raise BookError("\n".join(errors))
    it = iter(rendered)
    return {name: MATH_RE.sub(lambda m: next(it)["html"], text) for name, text in pages_html.items()}


# ---------------------------------------------------------------------------
# Navigation and the page shell
# ---------------------------------------------------------------------------
def nav_html(pages, current: int) -> str:
    items = []
    for i, p in enumerate(pages):
        cls = ' class="current"' if i == current else ""
        items.append(f'<li{cls}><a href="{p["html"]}">{html.escape(p["title"])}</a></li>')
    return "<ol>" + "".join(items) + "</ol>"


def prev_next_html(pages, i: int) -> str:
    prev_link = (f'<a class="prev" href="{pages[i-1]["html"]}">← {html.escape(pages[i-1]["title"])}</a>'
                 if i > 0 else "<span></span>")
    next_link = (f'<a class="next" href="{pages[i+1]["html"]}">{html.escape(pages[i+1]["title"])} →</a>'
                 if i + 1 < len(pages) else "<span></span>")
    return prev_link + next_link


def run_pandoc(markdown: str, title: str, template: Path) -> str:
    if shutil.which("pandoc") is None:
        raise BookError("pandoc not found (apt-get install pandoc, or bash tools/install-deps.sh)")
    with tempfile.NamedTemporaryFile("w", suffix=".md", encoding="utf-8", delete=False) as f:
        f.write(markdown)
        name = f.name
    try:
        proc = subprocess.run(
            ["pandoc", name, "-f", "markdown+tex_math_dollars-raw_tex", "-t", "html5", "--standalone",
             "--template", str(template), "--katex", "--toc", "--toc-depth=2",
             "--highlight-style=tango", "--section-divs", "--wrap=none", "--metadata", f"pagetitle={title}"],
            capture_output=True, text=True)
    finally:
        os.unlink(name)
    if proc.returncode != 0:
        raise BookError(f"pandoc failed on {title}: {proc.stderr.strip()}")
    return proc.stdout


CODE_RE = re.compile(r"<(pre|code)\b.*?</\1>", re.S)
STRAY_TEX_RE = re.compile(r"\$[^$<]{0,40}\\[A-Za-z]+|\\(?:frac|nabla|alpha|beta|sigma|mathcal|mathbb)\b")


def check_stray_tex(name: str, text: str):
    """Math pandoc did not recognise (e.g. `$x = $` with a space before the
    closing dollar) would reach the reader as raw TeX: refuse it."""
    body = text[text.find("<main>"):] if "<main>" in text else text
    body = CODE_RE.sub("", body)
    body = re.sub(r'<span class="katex.*?</annotation>', "", body, flags=re.S)  # rendered math keeps its TeX source
    m = STRAY_TEX_RE.search(body)
    if m:
        raise BookError(f"{name}: TeX outside math (unclosed $...$?): ...{m.group(0)}...")


LOCAL_REF_RE = re.compile(r'(?:src|href)="([^"#:]+)(?:#[^"]*)?"')


def check_links(out: Path, name: str, text: str):
    for ref in LOCAL_REF_RE.findall(text):
        if ref and not (out / ref).exists():
            raise BookError(f"{name}: broken local link or image: {ref}")


def copy_katex_assets(out: Path):
    # cp -rL: in Debian's package fonts/ is a symlink; the site must hold real files.
    dest = out / "katex"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copyfile(KATEX_DIR / "katex.min.css", dest / "katex.min.css")
    shutil.copytree((KATEX_DIR / "fonts").resolve(), dest / "fonts")


def build(book: Path, runs: Path, out: Path) -> dict:
    pages = read_summary(book)
    out.mkdir(parents=True, exist_ok=True)
    stats = {"pages": len(pages), "includes": 0, "figures": 0, "metrics": 0, "formulas": 0}
    template = book / "theme" / "template.html"
    metric_cache = {}
    pages_html = {}
    for i, page in enumerate(pages):
        markdown = expand(page, runs, out, stats, metric_cache)
        text = run_pandoc(markdown, page["title"], template)
        text = text.replace("<!--NAV-->", nav_html(pages, i)).replace("<!--PREVNEXT-->", prev_next_html(pages, i))
        pages_html[page["html"]] = text
    stats["formulas"] = sum(len(MATH_RE.findall(t)) for t in pages_html.values())
    pages_html = render_math(pages_html)
    copy_katex_assets(out)
    for asset in ("book.css", "book.js"):
        shutil.copyfile(book / "theme" / asset, out / asset)
    for name, text in pages_html.items():
        (out / name).write_text(text, encoding="utf-8")
    for name, text in pages_html.items():
        check_links(out, name, text)
        check_stray_tex(name, text)
    return stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--book", type=Path, default=ROOT / "book", help="Markdown sources (default book/)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs", help="chapter outputs (default runs/)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "book", help="site folder (default build/book)")
    args = ap.parse_args(argv)
    try:
        stats = build(args.book.resolve(), args.runs.resolve(), args.out.resolve())
    except BookError as e:
        print(f"book: error: {e}", file=sys.stderr)
        return 1
    print(f"book: {stats['pages']} pages, {stats['includes']} code includes, {stats['figures']} figures, "
          f"{stats['metrics']} numbers from metrics.json, {stats['formulas']} formulas "
          f"-> {args.out.resolve() / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
