#!/usr/bin/env bash
# The tutorial: builds the project, then runs every chapter in order with its
# default sizes (pass --quick for the CI sizes; other flags go to every chapter).
# Figures and metrics.json land in runs/<chapter>/; the book is then built from
# them into build/book/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
chapters=$(ls -d chapters/[0-9][0-9]_*/ | xargs -n1 basename)
for chapter in $chapters; do
  echo
  echo "################ $chapter ################"
  start=$SECONDS
  "build/bin/$chapter" --out "runs/$chapter" "$@"
  echo "$chapter: done in $((SECONDS - start)) s; figures and metrics.json in runs/$chapter/"
done
echo
echo "All chapters ran. Outputs:"
for chapter in $chapters; do echo "  runs/$chapter/"; done
echo
python3 tools/book/build.py --runs runs --out build/book
echo "Open the book: file://$(pwd)/build/book/index.html"
