#!/usr/bin/env python3
"""Self-tests of tools/notebook_to_cpp.py on small synthetic notebooks: the
declarations-tag rule, hoisting, the include rewrite, #line numbering, and
every refusal. ctest runs them as `notebook_converter_selftest`.

    python3 tools/test_notebook_to_cpp.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)
sys.dont_write_bytecode = True  # no __pycache__ left in tools/

import notebook_to_cpp as nb  # noqa: E402

HEADER_CELL = '#include "../build/dm_notebook.hpp"'


def code(source, *tags):
    return {"cell_type": "code", "execution_count": None, "metadata": {"tags": list(tags)} if tags else {},
            "outputs": [], "source": source}


def markdown(source):
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def notebook(*cells, kernel="xcpp17"):
    return {"nbformat": 4, "nbformat_minor": 5, "cells": list(cells),
            "metadata": {"kernelspec": {"name": kernel, "display_name": "C++17", "language": "C++17"}}}


def convert(*cells, **kwargs):
    return nb.convert(notebook(*cells, **kwargs), "test.ipynb")


def main_body(program):
    return program[program.index("int main() {"):]


class Rule(unittest.TestCase):
    def test_declarations_at_file_scope_statements_in_main_in_order(self):
        program = convert(code(HEADER_CELL),
                          code("int a = 1;"),
                          code("int twice(int x) { return 2 * x; }", "declarations"),
                          code("a = twice(a);"),
                          code("struct Point { int x; };", "other-tag", "declarations"))
        head, body = program[:program.index("int main() {")], main_body(program)
        self.assertIn("int twice(int x)", head)
        self.assertIn("struct Point", head)
        self.assertLess(head.index("int twice"), head.index("struct Point"))
        self.assertNotIn("int a = 1;", head)
        self.assertLess(body.index("// cell 2"), body.index("int a = 1;"))
        self.assertLess(body.index("int a = 1;"), body.index("// cell 4"))
        self.assertLess(body.index("// cell 4"), body.index("a = twice(a);"))
        self.assertIn("// cell 3 (declarations)", head)

    def test_main_catches_and_returns_one(self):
        body = main_body(convert(code(HEADER_CELL), code("throw 1.0;")))
        self.assertIn("try {", body)
        self.assertIn("catch (const std::exception& error)", body)
        self.assertIn("return 1;", body)

    def test_includes_and_pragmas_are_hoisted_once(self):
        program = convert(code(HEADER_CELL + "\n#include <vector>"),
                          code("#include <vector>\n#include <map>\nstd::vector<int> v;"),
                          code("#pragma cling load(\"libfoo\")\nv.push_back(1);"))
        head, body = program[:program.index("int main() {")], main_body(program)
        self.assertEqual(program.count("#include <vector>"), 1)
        self.assertIn("#include <map>", head)
        self.assertIn('#pragma cling load("libfoo")', head)
        self.assertNotIn("#include", body)
        self.assertNotIn("#pragma", body)
        self.assertLess(head.index('#include "dm_notebook.hpp"'), head.index("#include <vector>"))

    def test_header_include_is_rewritten_from_any_relative_path(self):
        for path in ("../build/dm_notebook.hpp", "../../build-debug/dm_notebook.hpp", "dm_notebook.hpp"):
            program = convert(code(f'#include "{path}"'), code("int a = 0;"))
            self.assertIn('#include "dm_notebook.hpp"', program)
            if "/" in path:
                self.assertNotIn(path, program)

    def test_other_directives_stay_in_declarations_cells(self):
        macro = "#define TWICE(x) \\\n  (2 * (x))"
        program = convert(code(HEADER_CELL), code(macro + "\nint f() { return TWICE(1); }", "declarations"))
        head = program[:program.index("int main() {")]
        self.assertIn(macro, head)

    def test_markdown_becomes_comments_without_line_continuations(self):
        program = convert(markdown("# Title\nA formula: $a \\\\\nb$ \\"), code(HEADER_CELL))
        self.assertIn("// # Title", program)
        for line in program.splitlines():
            if line.startswith("//"):
                self.assertFalse(line.endswith("\\"), line)

    def test_line_directives_number_cells_as_in_the_notebook(self):
        program = convert(code(HEADER_CELL), code("#include <vector>\nint a = 1;\nint b = 2;"))
        lines = program.splitlines()
        start = lines.index('#line 1 "test.ipynb cell 2"')
        # The hoisted include leaves an empty line, so `int b` stays on line 3.
        self.assertEqual(lines[start + 1:start + 4], ["", "int a = 1;", "int b = 2;"])
        resync = lines[start + 4]
        self.assertEqual(resync, f'#line {start + 6} "test.cpp"')

    def test_comments_and_literals_do_not_hide_the_last_semicolon(self):
        convert(code(HEADER_CELL),
                code('auto url = "http://example.org"; // a comment'),
                code("int big = 1'000'000;  /* spans\n lines */"),
                code('auto raw = R"x(no ; here)x";\n// trailing comment'),
                code("for (int i = 0; i < 3; ++i) {\n  big += i;\n}"))


class Refusals(unittest.TestCase):
    def assertRefused(self, cells, cell, words, **kwargs):
        with self.assertRaises(nb.NotebookError) as caught:
            convert(*cells, **kwargs)
        self.assertEqual(caught.exception.cell, cell)
        message = str(caught.exception)
        if cell is not None:
            self.assertTrue(message.startswith(f"cell {cell}: "), message)
        for word in words:
            self.assertIn(word, message)

    def test_expression_without_semicolon(self):
        self.assertRefused([code(HEADER_CELL), code("int a = 1;"), code("a + 1")], 3,
                           ["'a + 1'", "xcpp::display"])
        self.assertRefused([code(HEADER_CELL), code("auto fig = 1;\nfig  // show it")], 2, ["'fig'"])

    def test_magics(self):
        self.assertRefused([code(HEADER_CELL), code("%%timeit\nint a = 1;")], 2, ["%%timeit"])
        self.assertRefused([code(HEADER_CELL), code("int a = 1;\n%timeit a++;")], 2, ["%timeit"])

    def test_help_requests_shell_and_dot_commands(self):
        self.assertRefused([code(HEADER_CELL), code("?std::vector")], 2, ["help"])
        self.assertRefused([code(HEADER_CELL), code("std::vector<int>?")], 2, ["help"])
        self.assertRefused([code(HEADER_CELL), code("!ls -l")], 2, ["shell"])
        self.assertRefused([code(HEADER_CELL), code(".L extra.cpp")], 2, ["cling command"])

    def test_kernelspec(self):
        self.assertRefused([code(HEADER_CELL)], None, ["xcpp14", "xcpp17"], kernel="xcpp14")
        self.assertRefused([code(HEADER_CELL)], None, ["python3"], kernel="python3")

    def test_first_code_cell_includes_the_header(self):
        self.assertRefused([markdown("intro"), code("int a = 1;"), code(HEADER_CELL)], 2,
                           ["dm_notebook.hpp"])

    def test_machine_paths(self):
        self.assertRefused([code('#include "/abs/dm/build/dm_notebook.hpp"')], 1, ["absolute path"])
        self.assertRefused([code(HEADER_CELL + '\n#pragma cling add_include_path("/opt/x/include")')], 1,
                           ["absolute path"])

    def test_capturing_lambdas_in_a_statement_cell(self):
        for source in ["int n = 2;\nauto f = [&](int k) { return k * n; };",
                       "int n = 2;\nauto f = [=]() { return n; };",
                       "int n = 2;\nauto f = [n, &m = n](int k)\n{ return k + n; };",
                       "int n = 2;\nauto g = std::function<int()>([&] { return n; });"]:
            self.assertRefused([code(HEADER_CELL), code(source)], 2, ["captures", "declarations"])

    def test_allowed_brackets_and_lambdas(self):
        # No captures, subscripts, attributes, captures inside a declarations cell, and text.
        program = convert(code(HEADER_CELL),
                          code("int scale(int n) {\n  auto f = [&](int k) { return k * n; };\n  return f(2);\n}",
                               "declarations"),
                          code("int a[3] = {1, 2, 3};\nauto sq = [](int k) { return k * k; };\n"
                               "std::vector<std::function<int(int)>> fs = {sq};\nint b = fs[0](a[1]);\n"
                               "[[maybe_unused]] int c = b;\n// [&](int) in a comment\n"
                               "const char* s = \"[&]() in a string\";"))
        self.assertIn("auto sq = [](int k)", program)

    def test_preprocessor_logic_in_a_statement_cell(self):
        self.assertRefused([code(HEADER_CELL), code("#define N 3\nint a = N;")], 2,
                           ["#define", "declarations"])


class CommandLine(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="nb_selftest_")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def run_tool(self, cells, **kwargs):
        path = os.path.join(self.dir, "demo.ipynb")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(notebook(*cells, **kwargs), f)
        output = os.path.join(self.dir, "out", "demo.cpp")
        result = subprocess.run([sys.executable, os.path.join(TOOLS, "notebook_to_cpp.py"), path,
                                 "-o", output], capture_output=True, text=True)
        return result, output

    def test_refusal_exits_1_naming_the_cell(self):
        result, output = self.run_tool([code(HEADER_CELL), code("1 + 1")])
        self.assertEqual(result.returncode, 1)
        self.assertIn("demo.ipynb: cell 2:", result.stderr)
        self.assertFalse(os.path.exists(output))

    @unittest.skipUnless(shutil.which("c++"), "no C++ compiler")
    def test_program_compiles_and_runs(self):
        # A stand-in for the generated header: xcpp::display prints its argument.
        with open(os.path.join(self.dir, "dm_notebook.hpp"), "w") as f:
            f.write("#pragma once\n#include <iostream>\n#include <stdexcept>\n"
                    "namespace xcpp { template <class T> void display(const T& x) "
                    "{ std::cout << \"shown \" << x << \"\\n\"; } }\n")
        result, output = self.run_tool([
            markdown("A demo."),
            code(HEADER_CELL + "\n#include <vector>"),
            code("int square(int x) { return x * x; }", "declarations"),
            code("std::vector<int> squares;\nfor (int i = 1; i <= 3; ++i) squares.push_back(square(i));"),
            code("xcpp::display(squares.back());\n"
                 "if (squares.size() != 3) throw std::runtime_error(\"size\");"),
        ])
        self.assertEqual(result.returncode, 0, result.stderr)
        program = os.path.join(self.dir, "demo")
        subprocess.run(["c++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-I", self.dir, output,
                        "-o", program], check=True)
        run = subprocess.run([program], capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout, "shown 9\n")

    @unittest.skipUnless(shutil.which("c++"), "no C++ compiler")
    def test_compiler_errors_name_the_notebook_cell(self):
        with open(os.path.join(self.dir, "dm_notebook.hpp"), "w") as f:
            f.write("#pragma once\n")
        result, output = self.run_tool([code(HEADER_CELL), code("int a = 1;\n\nint b = undefined_name;")])
        self.assertEqual(result.returncode, 0, result.stderr)
        compiled = subprocess.run(["c++", "-std=c++17", "-fsyntax-only", "-I", self.dir, output],
                                  capture_output=True, text=True)
        self.assertNotEqual(compiled.returncode, 0)
        self.assertIn("demo.ipynb cell 2:3:", compiled.stderr)


if __name__ == "__main__":
    unittest.main()
