#!/usr/bin/env python3
"""Runs a notebook's code cells, in order, in a real C++ interpreter (clang-repl,
the interpreter xeus-cpp is built on), and fails on anything a learner would
see go wrong:

  * a cell that does not compile (clang's diagnostics are shown, with the cell);
  * a cell that stops the interpreter (an uncaught exception, a crash);
  * a cell that calls xcpp::display but shows nothing (or shows a broken file);
  * a number the notebook prints outside the bounds its cell metadata gives:
        "metadata": {"dm": {"expect": [{"pattern": "KS distance = ([0-9.eE+-]+)",
                                       "min": 0, "max": 0.05}]}}
    (the first match of `pattern`, a Python regex whose group 1 is the number).

Every cell is one input to clang-repl (given on its command line), followed by
a marker input that prints "@@dm-cell <index> <seconds>": the output between
two markers is that cell's, so an error is pinned to its cell, and a run that
ends before a marker says which cell stopped it. After the last cell the
runner prints a marker of its own; if the interpreter fails after that (a
crash at teardown, with every cell run and checked), it is reported as such
and does not fail the run: the cells' results are already known.

    tools/run_notebook.py notebooks/01_langevin.ipynb --repl clang-repl \\
        --header build/dm_notebook.hpp --include common/include \\
        --include /usr/include/eigen3 --run-dir build/notebook-runs/01_langevin

The first cell's `#include "…/dm_notebook.hpp"` is pointed at --header (the
notebook's relative path is for a kernel started in notebooks/). Figures land
in --run-dir as display_NNN.svg / .png; run.json there lists every cell with
its wall time (compile + run) and what it showed.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

MARKER = re.compile(r"^@@dm-cell (\d+) ([0-9.]+)$", re.M)
DONE = "@@dm-all-cells-ran"
# clang's diagnostics ("input_line_12:3:5: error: ...") and the interpreter's
# own ("error: Parsing failed.", "error: Failed to materialize symbols ...").
ERROR = re.compile(r"^(\S+:\d+:\d+: (fatal )?error: |error: )", re.M)
DISPLAY = re.compile(r"^\[display\] (display_\d+\.(svg|png)) \((\d+) bytes\)$", re.M)
HEADER_INCLUDE = re.compile(r'^\s*#\s*include\s*"[^"]*dm_notebook\.hpp"', re.M)

PRELUDE = r"""#include <chrono>
#include <cstdio>
inline const int dm_runner_unbuffered = std::setvbuf(stdout, nullptr, _IONBF, 0);
inline const auto dm_runner_start = std::chrono::steady_clock::now();
inline double dm_runner_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - dm_runner_start).count();
}"""


def code_cells(notebook):
    """(index in the notebook, source, metadata) of every code cell."""
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        cells.append((index, source, cell.get("metadata", {})))
    return cells


def first_line(source):
    for line in source.splitlines():
        if line.strip() and not line.strip().startswith("//"):
            return line.strip()[:70]
    return ""


class Failure(Exception):
    pass


TOP_CONST = re.compile(r"^(?:(?:static|inline)\s+)*const\s+(?!expr)")
NUMBER = re.compile(r"\d[\d.]*(?:[eE][-+]?\d+)?")


def const_globals(source):
    """Line numbers of top-level `const` variables whose value is computed at
    run time. clang-repl gives const globals the linkage of inline variables
    (llvm-project pull request 65257), whose dynamic initialisation is unordered:
    `std::vector<int> a{1, 2}; const auto b = a;` in one cell sets b from a
    before a is set (b comes out empty). A literal (`const double dt = 0.1;`) or
    a reference (`const auto& b = a;`) is safe; so is `auto b = a;`."""
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        if not TOP_CONST.match(line):
            continue
        line = re.sub(r"\s*//.*$", "", line)  # a trailing comment is not part of the value
        head = re.split(r"[=({;]", line, maxsplit=1)[0]
        if "&" in head:
            continue  # a reference: bound in order, nothing is copied
        cut = re.search(r"[=({;]", line)
        if cut is None:
            continue
        if cut.group(0) == "(" and not line.rstrip().endswith(";"):
            continue  # a function definition returning const
        if cut.group(0) == "=":
            value = re.sub(r"\b[A-Za-z_]\w*\s*=", "", line[cut.end():])  # `a = 1, b = 2`
            if not re.search(r"[A-Za-z_\[\]{}]", NUMBER.sub("", value)):
                continue  # numbers only: constant-initialised
        found.append(number)
    return found


def check_cell(index, source, meta, output, run_dir):
    """Checks one cell's output; returns its displays; raises Failure."""
    if ERROR.search(output):
        raise Failure(f"cell {index} does not compile or run:\n{output.rstrip()}")
    shown = []
    for name, _, size in DISPLAY.findall(output):
        path = os.path.join(run_dir, name)
        if not os.path.isfile(path) or os.path.getsize(path) != int(size):
            raise Failure(f"cell {index} displayed {name}, but {path} is missing or has another size")
        shown.append(name)
    if "xcpp::display(" in source and not shown:
        raise Failure(f"cell {index} calls xcpp::display but displayed nothing:\n{output.rstrip()}")
    checks = []
    for expect in meta.get("dm", {}).get("expect", []):
        found = re.search(expect["pattern"], output, re.M)
        if not found:
            raise Failure(f"cell {index}: no output matches the expected pattern {expect['pattern']!r}:\n"
                          f"{output.rstrip()}")
        value = float(found.group(1))
        lo, hi = expect.get("min", float("-inf")), expect.get("max", float("inf"))
        ok = lo <= value <= hi
        checks.append(f"{found.group(0).strip()} in [{lo}, {hi}]")
        if not ok:
            raise Failure(f"cell {index}: {found.group(0).strip()!r} is outside [{lo}, {hi}]:\n{output.rstrip()}")
    return shown, checks


def run(args):
    with open(args.notebook, encoding="utf-8") as f:
        notebook = json.load(f)
    cells = code_cells(notebook)
    if not cells:
        raise Failure(f"{args.notebook} has no code cells")
    header = os.path.abspath(args.header)
    if not os.path.isfile(header):
        raise Failure(f"{header} does not exist (configure the build first)")
    kernel = notebook.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "xcpp17":
        raise Failure(f"the kernelspec is {kernel!r}, not 'xcpp17' (the name xeus-cling and xeus-cpp both install)")
    for index, source, _ in cells:
        for number, line in enumerate(source.splitlines(), 1):
            stripped = line.strip()
            if re.match(r"^(%|!|\?\w|\.L\s)", stripped):
                raise Failure(f"cell {index}, line {number}: {stripped!r} is a kernel command (magic, shell "
                              "escape, help or cling dot command); notebooks hold C++ only")
            if re.match(r'^#\s*(include|pragma)\b.*"/', stripped):
                raise Failure(f"cell {index}, line {number}: {stripped!r} names an absolute path; notebooks hold "
                              "no machine paths (the first cell's relative include finds the build)")
        lines = const_globals(source)
        if lines:
            raise Failure(f"cell {index}, line {lines[0]}: {source.splitlines()[lines[0] - 1].strip()!r} is a "
                          "top-level const variable computed at run time. clang-repl initialises such variables "
                          "out of order (it gives them the linkage of inline variables, llvm-project pull request "
                          "65257): it may read a variable of the same cell before that one is set. Write `auto` "
                          "(or `const auto&`) instead.")
    first = cells[0][1]
    if not HEADER_INCLUDE.search(first):
        raise Failure(f"the first code cell of {args.notebook} does not include dm_notebook.hpp")
    sent = [source for _, source, _ in cells]  # what the interpreter gets: the header by its path here
    sent[0] = HEADER_INCLUDE.sub(f'#include "{header}"', first, count=1)

    inputs = [PRELUDE]
    for (index, _, _), source in zip(cells, sent):
        inputs.append(source)
        inputs.append(f'std::printf("\\n@@dm-cell {index} %.3f\\n", dm_runner_seconds());')
    inputs.append(f'std::printf("\\n{DONE}\\n");')

    os.makedirs(args.run_dir, exist_ok=True)
    for name in os.listdir(args.run_dir):
        if name.startswith("display_") or name == "run.json":
            os.remove(os.path.join(args.run_dir, name))
    command = [args.repl]
    for d in args.include:
        command += ["-Xcc", "-I" + os.path.abspath(d)]
    command += inputs
    started = time.monotonic()
    try:
        proc = subprocess.run(command, cwd=args.run_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=args.timeout)
        output, returncode = proc.stdout.decode("utf-8", "replace"), proc.returncode
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode("utf-8", "replace")
        returncode = None
    wall = time.monotonic() - started

    # Split the output at the markers: piece k is the output of code cell k.
    markers = list(MARKER.finditer(output))
    pieces, times, begin, previous = [], [], 0, 0.0
    for m in markers:
        pieces.append(output[begin:m.start()])
        times.append(float(m.group(2)) - previous)
        previous = float(m.group(2))
        begin = m.end()
    tail = output[begin:]
    if args.verbose:
        sys.stdout.write(output)

    report = {"notebook": os.path.basename(args.notebook), "interpreter": args.repl, "wall_s": round(wall, 2),
              "cells": []}
    for k, (index, source, meta) in enumerate(cells):
        if k >= len(pieces):
            how = (f"the interpreter ran past --timeout {args.timeout} s" if returncode is None else
                   f"the interpreter stopped ({describe_exit(returncode)})")
            raise Failure(f"cell {index} did not finish: {how}; its output:\n{tail.rstrip()}")
        shown, checks = check_cell(index, source, meta, pieces[k], args.run_dir)
        report["cells"].append({"cell": index, "seconds": round(times[k], 2), "first_line": first_line(source),
                                "displays": shown, "checks": checks})
        print(f"cell {index:3d}  {times[k]:7.2f} s  {len(shown)} shown  {first_line(source)}")
        for c in checks:
            print(f"             check: {c}")
    if DONE not in tail:
        raise Failure(f"the interpreter stopped after the last cell, before the runner's marker "
                      f"({describe_exit(returncode)}):\n{tail.rstrip()}")
    after = tail.split(DONE, 1)[1]
    if ERROR.search(tail):
        raise Failure(f"the interpreter reported an error after the last cell:\n{tail.rstrip()}")
    report["teardown"] = "clean" if returncode == 0 else describe_exit(returncode)
    with open(os.path.join(args.run_dir, "run.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    displays = sum(len(c["displays"]) for c in report["cells"])
    print(f"{report['notebook']}: all {len(cells)} code cells ran in {wall:.1f} s (clang-repl), "
          f"{displays} figures/images in {args.run_dir}")
    if returncode != 0:
        print(f"note: every cell ran and was checked; the interpreter then exited at teardown with "
              f"{describe_exit(returncode)}{(': ' + after.strip()[-500:]) if after.strip() else ''}")


def describe_exit(returncode):
    if returncode is None:
        return "timed out"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook")
    parser.add_argument("--repl", default="clang-repl", help="the interpreter (Debian: /usr/lib/llvm-19/bin/clang-repl)")
    parser.add_argument("--header", required=True, help="the build's generated dm_notebook.hpp")
    parser.add_argument("--include", action="append", default=[], help="an include path (repeatable)")
    parser.add_argument("--run-dir", required=True, help="working directory (figures, run.json)")
    parser.add_argument("--timeout", type=float, default=540, help="seconds for the whole notebook")
    parser.add_argument("--verbose", action="store_true", help="print the interpreter's whole output")
    args = parser.parse_args()
    try:
        run(args)
    except Failure as e:
        print(f"{os.path.basename(args.notebook)}: FAILED: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
