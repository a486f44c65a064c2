#!/usr/bin/env bash
# Installs the LibTorch 2.x the second supported build uses: the one inside the
# PyTorch wheel (a CUDA 13.0 build), into a virtual environment in a cache
# outside the clone, once per machine. Idempotent: a second run only prints
# the CMake prefix. Several GB (the wheel and its CUDA libraries).
#
#   bash tools/install-torch.sh          # installs if needed, prints the CMake prefix path
#   bash tools/install-torch.sh --python # the same, but prints the environment's python
#
# DM_CACHE (default ~/.cache/dm) chooses the cache; DM_TORCH_VERSION the pin.
# The pin is the GPU machines' PyTorch (2.11 with CUDA 13.0, matching nvcc 13.0 here).
set -euo pipefail

version="${DM_TORCH_VERSION:-2.11.0}"
cache="${DM_CACHE:-$HOME/.cache/dm}"
venv="$cache/torch-$version"
python="$venv/bin/python"

prefix() {
  if [ "${1:-}" = "--python" ]; then echo "$python"; return; fi
  "$python" -W ignore -c 'import torch; print(torch.utils.cmake_prefix_path)'
}

if [ -x "$python" ] && "$python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$version')" 2>/dev/null; then
  prefix "${1:-}"
  exit 0
fi

echo "install-torch: installing PyTorch $version (with its CUDA libraries) into $venv" >&2
mkdir -p "$cache"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --no-input --disable-pip-version-check "torch==$version" >&2
"$python" -c "import torch; print('install-torch: torch', torch.__version__, 'CUDA', torch.version.cuda)" >&2
prefix "${1:-}"
