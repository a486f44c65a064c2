#!/usr/bin/env bash
# Checks that every C++ file of the project is formatted by clang-format with
# the repository's .clang-format; lists the ones that are not. Exit 1 if any.
# Registered with ctest as the test `format` (tests/format/CMakeLists.txt).
#
#   tools/check_format.sh          check (fix with tools/format.sh)
#   tools/check_format.sh --list   print the files checked, one a line
#
# The files: the C++ sources and headers git knows (tracked, or new and not
# ignored), *.cpp *.hpp *.h *.cc and *.cpp.in/*.hpp.in templates, except those
# in EXCLUDED below. Without git (a source archive), the same patterns under
# the tree, build folders left out.
# CLANG_FORMAT names the program (default clang-format). The reference is
# clang-format 14 (Debian 12), whose output other versions do not always match.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# CMake templates whose @VARIABLE@ placeholders clang-format mangles
# (`@X@` becomes `@X @`, a line of placeholders is joined to the next).
EXCLUDED=(
  notebooks/dm_notebook.hpp.in
)

list_files() {
  local patterns=('*.cpp' '*.hpp' '*.h' '*.cc' '*.cpp.in' '*.hpp.in')
  {
    if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
      git ls-files --cached --others --exclude-standard -- "${patterns[@]}"
    else
      local args=() p
      for p in "${patterns[@]}"; do args+=(-o -name "$p"); done
      find . \( -path './build*' -o -path './.git' \) -prune -o -type f \( "${args[@]:1}" \) -print |
        sed 's|^\./||'
    fi
  } | sort -u | while IFS= read -r f; do
    [ -f "$f" ] || continue  # deleted in the work tree, not yet in the index
    local skip=0 e
    for e in "${EXCLUDED[@]}"; do [ "$f" = "$e" ] && skip=1; done
    [ "$skip" = 0 ] && printf '%s\n' "$f"
  done
}

if [ "${1:-}" = "--list" ]; then
  list_files
  exit 0
fi

clang_format="${CLANG_FORMAT:-clang-format}"
if ! command -v "$clang_format" >/dev/null 2>&1; then
  echo "check_format: $clang_format not found (Debian: apt-get install clang-format, or tools/install-deps.sh)" >&2
  exit 2
fi
version="$("$clang_format" --version)"
major="$(printf '%s\n' "$version" | sed -n 's/.*clang-format version \([0-9]*\).*/\1/p')"
if [ "$major" != "14" ]; then
  echo "check_format: warning: $version; the reference is clang-format 14 (Debian 12)," >&2
  echo "  whose output other versions do not always match" >&2
fi

mapfile -t files < <(list_files)
bad=()
for f in "${files[@]}"; do
  if ! "$clang_format" --dry-run --Werror --style=file "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done

if [ ${#bad[@]} -eq 0 ]; then
  echo "check_format: all ${#files[@]} C++ files formatted ($version)"
  exit 0
fi
echo "check_format: ${#bad[@]} of ${#files[@]} C++ files are not formatted ($version):"
printf '  %s\n' "${bad[@]}"
echo "Fix: tools/format.sh (all files), or tools/format.sh FILE... ;"
echo "see the changes first with: $clang_format --style=file FILE | diff -u FILE -"
exit 1
