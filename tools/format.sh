#!/usr/bin/env bash
# Formats the project's C++ files in place with clang-format and the
# repository's .clang-format: the files tools/check_format.sh checks, or the
# files given.
#
#   tools/format.sh              every C++ file (tools/check_format.sh --list)
#   tools/format.sh FILE...      just these
#
# CLANG_FORMAT names the program (default clang-format; the reference is
# clang-format 14, Debian 12).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
clang_format="${CLANG_FORMAT:-clang-format}"
if ! command -v "$clang_format" >/dev/null 2>&1; then
  echo "format: $clang_format not found (Debian: apt-get install clang-format, or tools/install-deps.sh)" >&2
  exit 2
fi

if [ $# -gt 0 ]; then
  files=("$@")
else
  cd "$root"
  mapfile -t files < <(bash "$root/tools/check_format.sh" --list)
fi
[ ${#files[@]} -gt 0 ] || exit 0
printf '%s\0' "${files[@]}" | xargs -0 "$clang_format" -i --style=file
echo "format: ${#files[@]} files formatted with $("$clang_format" --version)"
