#!/usr/bin/env bash
# Installs every Debian package the project needs (see CONVENTIONS.md in the
# design notes and README.md). Idempotent: packages already present are skipped,
# so a second run costs a second. Needs root or sudo; prints what it installs.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git clang-format   # clang-format: ctest `format`
  libtorch-dev libopenblas0-openmp   # LibTorch 1.13 (CPU); OpenBLAS or torch runs ~8x slower
  libeigen3-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  zlib1g-dev libstb-dev gnuplot-nox
  dataset-fashion-mnist
  pandoc libjs-katex nodejs python3 chromium   # the book: pandoc, KaTeX rendered by node, browser check
  clang-tools-19   # its clang-repl (the interpreter under xeus-cpp) runs every notebook in the tests
)
# --bench: also Debian's PyTorch 1.13 for Python (/usr/bin/python3), the
# baseline tools/bench_vs_pytorch.sh runs against the Debian build.
if [ "${1:-}" = "--bench" ]; then
  packages+=(python3-torch)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
