#!/usr/bin/env bash
# The second supported build: the whole project against the LibTorch 2.x inside
# a PyTorch wheel (CUDA compiled in; tools/install-torch.sh fetches it once per
# machine into a cache outside the clone), then its unit tests and one
# chapter's --quick run on the CPU. Called by tools/test.sh after the Debian
# (LibTorch 1.13) suite; DM_TORCH2=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
DM_TORCH_PREFIX="$(bash tools/install-torch.sh)"
export DM_TORCH_PREFIX
# That environment's Python checks that the PyTorch baseline's networks are
# the C++ ones (ctest pytorch_baseline_same_networks).
cmake --preset torch2 -DDM_PYTORCH_PYTHON="$(bash tools/install-torch.sh --python)" >/dev/null
cmake --build --preset torch2 -- -k 0
echo "torch2 build: done in $((SECONDS - start)) s (build-torch2/, LibTorch from $DM_TORCH_PREFIX)"
# The library's unit tests, chapter 01's --quick run and the PyTorch baseline
# check (exercises, notebooks, the book and the other chapters run in the
# Debian build's suite).
ctest --preset torch2 -E '^(stubs:|Exercise|chapter_0[2-9]|format|book_|notebook_)'
echo "torch2 tests: done in $((SECONDS - start)) s"
