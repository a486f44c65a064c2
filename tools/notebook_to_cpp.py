#!/usr/bin/env python3
"""Turn a C++ notebook (notebooks/NN_name.ipynb, kernel xcpp17) into a program.

No C++ kernel can run in CI, so CMake converts every notebook with this tool,
compiles the program against the build tree and ctest runs it: a notebook that
no longer compiles or runs fails the tests. Python 3 standard library only.

    notebook_to_cpp.py notebooks/01_langevin.ipynb -o build/notebooks/01_langevin.cpp

The rule
--------
* A code cell tagged ``declarations`` (cell metadata ``"tags"``) holds what
  lives at file scope: functions, structs, constants. These cells are copied,
  in notebook order, to file scope.
* Every other code cell is a statement cell. They are copied, in notebook
  order, into the body of ``int main()``, all in one scope, so a name declared
  in one cell is visible in the next ones, as in the kernel. Each starts with a
  ``// cell N`` comment (N counts all cells from 1, as Jupyter lists them).
  main runs them inside try/catch: an exception is printed and main returns 1.
* ``#include`` and ``#pragma`` lines of any cell are hoisted, in order and
  without duplicates, to the top of the file. The include of
  ``dm_notebook.hpp`` (by whatever relative path the notebook uses) becomes
  ``#include "dm_notebook.hpp"``: the build directory is on the include path.
  Other preprocessor lines (``#define``, ``#if`` ...) stay in place and are
  allowed in declarations cells only.
* Markdown cells become ``//`` comments above the next code cell; raw cells
  are dropped. ``#line`` directives make compiler errors name the notebook
  cell ("01_langevin.ipynb cell 7:3: error: ...").

What it refuses
---------------
Anything that would behave differently in the kernel and in the program is
refused: exit status 1 and a message naming the cell.

* A kernelspec other than ``xcpp17``, and a first code cell that does not
  include ``dm_notebook.hpp``.
* A cell whose code ends in an expression without ``;``: the kernel would
  display its value, the program would not compile. Write
  ``xcpp::display(x);`` to show something.
* Magics and kernel commands: a line starting with ``%`` (``%%timeit``,
  ``%load``), help requests (``?name``, ``name?``), shell escapes (``!ls``)
  and cling's dot commands (``.L file``).
* An absolute path in an ``#include`` or ``#pragma`` line: notebooks hold no
  machine paths (the generated header has them).
* A lambda with captures (``[&]``, ``[=]``, ``[x, &y]``) in a cell that is not
  tagged ``declarations``: in the program it sits inside ``main`` and compiles;
  in the kernel the cell's declarations are at file scope, where a lambda may
  not capture. Put such code in a function in a declarations cell.
"""

import argparse
import json
import os
import re
import sys

KERNEL = "xcpp17"
DECLARATIONS_TAG = "declarations"
HEADER = "dm_notebook.hpp"


class NotebookError(Exception):
    """A notebook the tool refuses; `cell` is the 1-based cell number or None."""

    def __init__(self, message, cell=None):
        super().__init__(message)
        self.cell = cell

    def __str__(self):
        where = f"cell {self.cell}: " if self.cell is not None else ""
        return where + super().__str__()


def code_mask(text):
    """For each character of `text`, True if it is code: not inside a comment,
    a string or a character literal (raw strings included). Comments count as
    not code; the quotes of a literal count as code, its contents do not."""
    mask = [True] * len(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            mask[i:end] = [False] * (end - i)
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            mask[i:end] = [False] * (end - i)
            i = end
        elif c == '"' and re.search(r"(?<!\w)(?:u8|[uUL])?R$", text[max(0, i - 4):i]):
            delimiter = re.match(r'"([^()\\\s]*)\(', text[i:])
            close = ")" + (delimiter.group(1) if delimiter else "") + '"'
            end = text.find(close, i + 1)
            end = n - 1 if end < 0 else end + len(close) - 1
            mask[i + 1:end] = [False] * (end - i - 1)
            i = end + 1
        elif c == "'" and re.search(r"(?<![\w.])\d[\w'.]*$", text[max(0, i - 64):i]):
            i += 1  # a digit separator: 1'000'000
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j, n)
            mask[i + 1:j] = [False] * (j - i - 1)
            i = j + 1
        else:
            i += 1
    return mask


def split_lines(source):
    """A cell's source (a string or a list of strings) as a list of lines."""
    text = "".join(source) if isinstance(source, list) else source
    return text.split("\n")


class Cell:
    """One code cell split into hoisted directives and the code that stays."""

    def __init__(self, number, lines, declarations):
        self.number = number
        self.declarations = declarations
        self.lines = lines  # the cell's lines; hoisted ones replaced by ""
        self.hoisted = []  # the #include / #pragma lines, rewritten
        self.significant = []  # code-only text of each kept line (comments removed)


def analyse(number, lines, declarations):
    text = "\n".join(lines)
    mask = code_mask(text)
    cell = Cell(number, list(lines), declarations)
    offset, in_directive = 0, False
    for index, line in enumerate(lines):
        line_mask = mask[offset:offset + len(line)]
        offset += len(line) + 1
        code = "".join(ch if keep else " " for ch, keep in zip(line, line_mask)).strip()
        first = len(line) - len(line.lstrip())
        if in_directive:  # the continuation of a preprocessor line ending in '\'
            in_directive = line.rstrip().endswith("\\")
            cell.significant.append("")
            continue
        if code.startswith("#") and line_mask[first]:
            directive = re.match(r"#\s*(\w*)", code).group(1)
            if directive in ("include", "pragma"):
                cell.hoisted.append(rewrite_directive(line.strip(), number))
                cell.lines[index] = ""
            elif not declarations:
                raise NotebookError(
                    f"'#{directive}' in a statement cell: a preprocessor line other than "
                    f"#include/#pragma belongs in a cell tagged '{DECLARATIONS_TAG}'", number)
            in_directive = line.rstrip().endswith("\\")
            cell.significant.append("")
            continue
        if code.startswith("%"):
            raise NotebookError(
                f"the magic '{code.split()[0]}' only exists in a kernel; "
                "write it as C++ (a notebook is also compiled as a program)", number)
        cell.significant.append(code)
    check_kernel_commands(cell)
    check_last_statement(cell)
    if not declarations:
        check_lambda_captures(cell)
    return cell


LAMBDA_INTRODUCER = re.compile(
    r"\[\s*(?:[&=]|&?\s*[A-Za-z_]\w*(?:\s*=[^\]]*)?)(?:\s*,\s*[^\]]*)?\]\s*(?:\(|\{|mutable\b|->)")


def check_lambda_captures(cell):
    text = "\n".join(cell.significant)
    for match in LAMBDA_INTRODUCER.finditer(text):
        before = text[:match.start()].rstrip()
        if before and (before[-1].isalnum() or before[-1] in "_)]"):
            continue  # a subscript, a[i](…), or an attribute [[…]]
        line = text[:match.start()].count("\n") + 1
        raise NotebookError(
            f"line {line}: the lambda '{match.group(0).strip()}…' captures; in the kernel a cell's "
            "declarations are at file scope, where a lambda may not capture. Move the code into a "
            f"function in a cell tagged '{DECLARATIONS_TAG}' (captures are fine there)", cell.number)


def rewrite_directive(line, number):
    """An #include / #pragma line as it goes to the top of the program."""
    for quoted in re.findall(r'"([^"]*)"|<([^>]*)>', line):
        path = quoted[0] or quoted[1]
        if path.startswith(("/", "~")) or re.match(r"[A-Za-z]:[\\/]", path):
            raise NotebookError(
                f"absolute path in '{line}': notebooks hold no machine paths "
                f"(the generated {HEADER} has them)", number)
    include = re.match(r'#\s*include\s*[<"]([^">]*)[">]', line)
    if include and os.path.basename(include.group(1)) == HEADER:
        return f'#include "{HEADER}"'
    return line


def check_kernel_commands(cell):
    code = [s for s in cell.significant if s]
    if not code:
        return
    first, last = code[0], code[-1]
    if first.startswith("?") or last.endswith("?"):
        raise NotebookError("a help request ('?name' / 'name?') only works in a kernel", cell.number)
    if first.startswith("!"):
        raise NotebookError(f"the shell escape '{first}' only works in a kernel", cell.number)
    if re.match(r"\.[A-Za-z]", first):
        raise NotebookError(f"the cling command '{first}' only works in a kernel", cell.number)


def check_last_statement(cell):
    code = [s for s in cell.significant if s]
    if code and not code[-1].endswith((";", "}")):
        raise NotebookError(
            f"the cell ends in '{code[-1]}' without ';': a kernel would display the value "
            "of that expression, the program would not compile. Show it with "
            "xcpp::display(...); or end the line with ';'", cell.number)


def markdown_comment(source):
    lines = []
    for line in split_lines(source):
        # A trailing backslash would continue the // comment onto the next line.
        line = line.rstrip().rstrip("\\").rstrip()
        lines.append(("// " + line) if line else "//")
    return lines


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def convert(notebook, name, output_name=None):
    """The program (a string) for a notebook (parsed JSON). `name` (the
    notebook's file name) and `output_name` (the program's) appear in comments
    and #line directives. Raises NotebookError."""
    output_name = output_name or os.path.splitext(name)[0] + ".cpp"
    if notebook.get("nbformat") != 4:
        raise NotebookError(f"nbformat {notebook.get('nbformat')}: only version 4 is read")
    kernel = notebook.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != KERNEL:
        raise NotebookError(f"kernelspec '{kernel}': notebooks here use '{KERNEL}' "
                            "(xeus-cling and xeus-cpp both provide it)")

    cells, pending_markdown, comments = [], [], {}
    for number, raw in enumerate(notebook.get("cells", []), start=1):
        kind = raw.get("cell_type")
        if kind == "markdown":
            pending_markdown += (["//"] if pending_markdown else []) + markdown_comment(
                raw.get("source", ""))
        elif kind == "code":
            lines = split_lines(raw.get("source", ""))
            if not "".join(lines).strip():
                continue
            if lines[0].strip().startswith("%%"):
                raise NotebookError(f"the cell magic '{lines[0].strip()}' only exists in a kernel",
                                    number)
            cell = analyse(number, lines, DECLARATIONS_TAG in tags(raw))
            comments[number], pending_markdown = pending_markdown, []
            cells.append(cell)
    if not cells:
        raise NotebookError("no code cells")
    if f'#include "{HEADER}"' not in cells[0].hoisted:
        raise NotebookError(f'the first code cell must include the generated header: '
                            f'#include "../build/{HEADER}"', cells[0].number)

    out = [f"// GENERATED from {name} by tools/notebook_to_cpp.py: do not edit.",
           "// Cells tagged 'declarations' are at file scope; the other code cells",
           "// run in order inside main().", ""]
    seen = set()
    for cell in cells:
        for line in cell.hoisted:
            key = re.sub(r"\s+", "", line)
            if key not in seen:
                seen.add(key)
                out.append(line)
    for line in ("#include <exception>", "#include <iostream>"):
        if re.sub(r"\s+", "", line) not in seen:
            out.append(line)

    # A cell's lines are copied unchanged (not re-indented: a raw string may
    # span lines), under a #line that numbers them as in the notebook.
    def emit(cell):
        out.append("")
        out.extend(comments[cell.number])
        kind = " (declarations)" if cell.declarations else ""
        out.append(f"// cell {cell.number}{kind}")
        out.append(f'#line 1 "{name} cell {cell.number}"')
        out.extend(cell.lines)
        out.append(f'#line {len(out) + 2} "{output_name}"')

    for cell in cells:
        if cell.declarations:
            emit(cell)
    out += ["", "int main() {", "  try {"]
    for cell in cells:
        if not cell.declarations:
            emit(cell)
    out += ["  } catch (const std::exception& error) {",
            '    std::cerr << "error: " << error.what() << std::endl;',
            "    return 1;",
            "  }",
            "  return 0;",
            "}", ""]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Convert a C++ notebook (kernel xcpp17) into a program; "
                    "see the module docstring for the rule.")
    parser.add_argument("notebook", help="the .ipynb file")
    parser.add_argument("-o", "--output", required=True, help="the .cpp file to write")
    args = parser.parse_args(argv)
    name = os.path.basename(args.notebook)
    try:
        with open(args.notebook, encoding="utf-8") as f:
            notebook = json.load(f)
        program = convert(notebook, name, os.path.basename(args.output))
    except (OSError, json.JSONDecodeError, NotebookError) as error:
        print(f"notebook_to_cpp: {args.notebook}: {error}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    temporary = args.output + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(program)
    os.replace(temporary, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
