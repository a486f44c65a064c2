#!/usr/bin/env bash
# Stages, on this machine, what the GPU machine cannot install: the header-only
# libraries, GoogleTest and Google Benchmark (with their CMake files) and the
# Fashion-MNIST files, copied from Debian's packages into .gpu-deps/ (ignored
# by git, ~50 MB) with /usr's layout, so that CMake finds them there as a
# prefix. Then one call of the device tool carries it:
#
#   bash tools/gpu/stage.sh
#   run(command="bash tools/gpu/run.sh", carry=[".gpu-deps"])   # the device tool
#
# tools/gpu/run.sh puts .gpu-deps on CMAKE_PREFIX_PATH and DM_DATA_DIR when it
# is there.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/install-deps.sh >/dev/null
dest=.gpu-deps
rm -rf "$dest"
mkdir -p "$dest"
arch=lib/x86_64-linux-gnu
paths=(
  include/eigen3 share/eigen3/cmake
  include/nlohmann share/cmake/nlohmann_json
  include/CLI share/cmake/CLI11
  include/stb
  include/gtest include/gmock "$arch/cmake/GTest"
  "$arch/libgtest.a" "$arch/libgtest_main.a" "$arch/libgmock.a" "$arch/libgmock_main.a"
  include/benchmark "$arch/cmake/benchmark" "$arch/libbenchmark_main.a"
  include/zlib.h include/zconf.h "$arch/libz.a"
  share/datasets/fashion-mnist
)
for p in "${paths[@]}"; do
  if [ -e "/usr/$p" ]; then
    (cd /usr && cp -a --parents "$p" "$OLDPWD/$dest/")
  else
    echo "stage: /usr/$p is missing" >&2
    exit 1
  fi
done
# Google Benchmark is a shared library in Debian: its files, links included.
(cd /usr && cp -a --parents "$arch"/libbenchmark.so* "$OLDPWD/$dest/")
echo "stage: $(du -sh "$dest" | cut -f1) in $dest/ (carry it: carry=[\"$dest\"])"
