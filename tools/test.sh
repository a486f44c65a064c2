#!/usr/bin/env bash
# The test suite: installs what is missing, builds, and runs every test with
# ctest (library unit tests, each chapter's --quick run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
start=$SECONDS
ctest --preset default "$@"
echo "tests: done in $((SECONDS - start)) s"
