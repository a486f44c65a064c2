#!/usr/bin/env bash
# The test suite: installs what is missing, builds, and runs every test with
# ctest (library unit tests, each chapter's --quick run, exercises, notebooks,
# the book) against Debian's LibTorch 1.13; then the second supported build,
# against a PyTorch wheel's LibTorch 2.x with CUDA compiled in (its unit tests
# and chapter 01's --quick run on the CPU; DM_TORCH2=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
start=$SECONDS
ctest --preset default "$@"
echo "tests: done in $((SECONDS - start)) s"
if [ "${DM_TORCH2:-1}" != "0" ]; then
  bash tools/test-torch2.sh
fi
