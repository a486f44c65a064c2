#!/usr/bin/env python3
"""Self-test of tools/run_notebook.py (ctest: notebook_runner_selftest): small
notebooks run in the real interpreter, one that passes and one for each way a
notebook can fail, each of which the runner must report, naming the cell.

    tools/test_run_notebook.py --repl clang-repl --header build/dm_notebook.hpp \\
        --include common/include --include /usr/include/eigen3 --run-dir /tmp/selftest
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "run_notebook.py")

HEADER = '#include "../build/dm_notebook.hpp"'
INCLUDES = "#include <iostream>\n#include \"dm/notebook.hpp\""
SETUP = ("dm::nb::Generator gen(1);\n"
         "auto p = dm::nb::Mixture::isotropic({0.5, 0.5}, dm::nb::points({{-1, 0}, {1, 0}}), {0.3, 0.3});\n"
         "auto x = p.sample(400, gen);\n"
         "std::cout << \"mean of x_1: \" << x.col(0).mean() << \"\\n\";")
FIGURE = ("dm::plot::Figure fig(1, 1, 400, 300);\n"
          "fig.ax().points(dm::nb::column(x, 0), dm::nb::column(x, 1), \"x\");\n"
          "xcpp::display(fig);")


def notebook(cells, expect=None):
    """A notebook of code cells (markdown cell 0 first, so cell numbers are the
    notebook's own); expect: {code cell position: [expectation, ...]}."""
    out = [{"cell_type": "markdown", "metadata": {}, "source": "# a test notebook"}]
    for k, source in enumerate(cells):
        meta = {"dm": {"expect": expect[k]}} if expect and k in expect else {}
        out.append({"cell_type": "code", "metadata": meta, "source": source, "outputs": [],
                    "execution_count": None})
    kernel = {"kernelspec": {"display_name": "C++17", "language": "C++17", "name": "xcpp17"}}
    return {"cells": out, "metadata": kernel, "nbformat": 4, "nbformat_minor": 5}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repl", required=True)
    parser.add_argument("--header", required=True)
    parser.add_argument("--include", action="append", default=[])
    parser.add_argument("--run-dir", required=True)
    args = parser.parse_args()
    shutil.rmtree(args.run_dir, ignore_errors=True)
    os.makedirs(args.run_dir)

    mean_ok = [{"pattern": r"mean of x_1: ([-0-9.e]+)", "min": -0.3, "max": 0.3}]
    cases = [
        # (name, cells, expectations, should pass, text the report must contain)
        ("passes", [HEADER, INCLUDES, SETUP, FIGURE], {2: mean_ok}, True, "all 4 code cells ran"),
        ("compile_error", [HEADER, INCLUDES, SETUP, "double y = undefined_name + 1;", FIGURE], None, False,
         "cell 4 does not compile or run"),
        ("exception", [HEADER, INCLUDES, SETUP, "auto c = dm::nb::column(x, 7);", FIGURE], None, False,
         "cell 4 did not finish"),
        ("no_display", [HEADER, INCLUDES, SETUP, "if (x.rows() < 0) xcpp::display(dm::plot::Figure());"], None,
         False, "cell 4 calls xcpp::display but displayed nothing"),
        ("out_of_bounds", [HEADER, INCLUDES, SETUP],
         {2: [{"pattern": r"mean of x_1: ([-0-9.e]+)", "min": 0.5, "max": 1.0}]}, False, "is outside [0.5, 1.0]"),
        ("missing_output", [HEADER, INCLUDES, SETUP], {2: [{"pattern": r"KS = ([0-9.]+)", "max": 1}]}, False,
         "no output matches the expected pattern"),
        ("magic", [HEADER, INCLUDES, "%timeit dm::nb::linspace(0, 1, 10);"], None, False,
         "is a kernel command"),
        ("const_global", [HEADER, INCLUDES, SETUP + "\nconst auto y = x;"], None, False,
         "is a top-level const variable computed at run time"),
    ]
    failures = 0
    for name, cells, expect, should_pass, text in cases:
        path = os.path.join(args.run_dir, name + ".ipynb")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(notebook(cells, expect), f)
        command = [sys.executable, RUNNER, path, "--repl", args.repl, "--header", args.header,
                   "--run-dir", os.path.join(args.run_dir, name)]
        for d in args.include:
            command += ["--include", d]
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
        report = proc.stdout.decode("utf-8", "replace")
        passed = proc.returncode == 0
        ok = passed == should_pass and text in report
        if name == "passes" and ok:
            shown = [n for n in os.listdir(os.path.join(args.run_dir, name)) if n.startswith("display_")]
            ok = shown == ["display_001.svg"]
        print(f"{'ok  ' if ok else 'FAIL'} {name}: runner {'passed' if passed else 'failed'}"
              f" (expected it to {'pass' if should_pass else 'fail'}, reporting {text!r})")
        if not ok:
            failures += 1
            print("  " + report.replace("\n", "\n  "))
    if failures:
        sys.exit(f"{failures} of {len(cases)} runner checks failed")
    print(f"all {len(cases)} runner checks passed")


if __name__ == "__main__":
    main()
