#!/usr/bin/env bash
# Installs the dependencies (Debian packages), configures and builds everything
# into build/. Used by tools/tutorial.sh and tools/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
start=$SECONDS
cmake --preset default >/dev/null
cmake --build --preset default -- -k 0
echo "build: done in $((SECONDS - start)) s (build/)"
