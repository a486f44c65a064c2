#!/usr/bin/env bash
# C++ against PyTorch: chapter 04's U-Net training step and sampling step and
# its 2D MLP training step and 2D sampling chain, run by this project's C++
# (build*/bin/dm_vs_pytorch) and by PyTorch in Python
# (tests/bench/pytorch/baseline.py) on the same LibTorch, interleaved — each
# repetition runs every case on both sides, alternating which side goes first
# — and prints the median times and the ratio Python time / C++ time
# (above 1: the C++ is faster).
#
#   tools/bench_vs_pytorch.sh               # every LibTorch build that is here
#   REPS=5 THREADS=2 tools/bench_vs_pytorch.sh
#   CASES='mlp_sample mlp_sample@64' BUILDS=build-torch2 tools/bench_vs_pytorch.sh
#                                           # case@N: that case at batch N
#
# The pairs (C++ build, Python with the same torch):
#   build/         Debian's LibTorch 1.13 — /usr/bin/python3 with Debian's
#                  python3-torch (tools/install-deps.sh --bench installs it)
#   build-torch2/  the PyTorch wheel's LibTorch 2.x — that wheel's Python
#                  (tools/install-torch.sh)
#   build-gpu/     (tools/gpu/run.sh) the GPU machine's PyTorch — its python3
# PYTHON names another Python for every build.
# Environment: BUILDS (default: both, where built), CASES (default all four),
# REPS (repetitions per side, default 3), THREADS (torch threads on both sides,
# default 1: on a shared 2-core machine a second thread mostly waits),
# DEVICE (cpu or cuda, default cpu), GRAPHS=1 (sampling cases replay the
# network from CUDA graphs, on both sides; CUDA only), ITERS (iterations per run; default per
# case). The JSON lines of every run are kept in a temporary folder, named at
# the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
reps="${REPS:-3}"
threads="${THREADS:-1}"
device="${DEVICE:-cpu}"
# Chapter 04's sizes, and the 2D chain at batch 64 and 1, where per-operation
# overhead rather than arithmetic sets the time.
cases="${CASES:-unet_train unet_sample mlp_train mlp_sample mlp_sample@64 mlp_sample@1}"
builds="${BUILDS:-build build-torch2}"
graphs_arg=()
[ "${GRAPHS:-0}" = "1" ] && graphs_arg=(--cuda-graphs)
iters_arg=()
[ -n "${ITERS:-}" ] && iters_arg=(--iters "$ITERS")
out="$(mktemp -d "${TMPDIR:-/tmp}/dm_vs_pytorch.XXXXXX")"

python_for() {  # the Python whose torch is the build's LibTorch ($PYTHON overrides)
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  case "$1" in
    build-gpu) echo python3 ;;  # tools/gpu/run.sh: the GPU machine's own PyTorch
    build-torch2) echo "${DM_CACHE:-$HOME/.cache/dm}/torch-${DM_TORCH_VERSION:-2.11.0}/bin/python" ;;
    *) echo /usr/bin/python3 ;;
  esac
}

pairs=()
for b in $builds; do
  cpp="$b/bin/dm_vs_pytorch"
  py="$(python_for "$b")"
  if [ ! -x "$cpp" ]; then
    echo "bench_vs_pytorch: skipping $b (no $cpp; build it: cmake --build $b --target dm_vs_pytorch)" >&2
    continue
  fi
  if ! "$py" -c 'import torch' 2>/dev/null; then
    echo "bench_vs_pytorch: skipping $b ($py cannot import torch;" \
      "$( [ "$b" = build-torch2 ] && echo 'run tools/install-torch.sh' || echo 'run tools/install-deps.sh --bench'))" >&2
    continue
  fi
  pairs+=("$b")
done
[ ${#pairs[@]} -gt 0 ] || { echo "bench_vs_pytorch: nothing to run" >&2; exit 1; }

for b in "${pairs[@]}"; do
  cpp="$b/bin/dm_vs_pytorch"
  py="$(python_for "$b")"
  for rep in $(seq 1 "$reps"); do
    for c in $cases; do
      batch_arg=()
      case "$c" in *@*) batch_arg=(--batch "${c#*@}") ;; esac
      args=(--case "${c%@*}" "${batch_arg[@]}" --threads "$threads" --device "$device" --seed "$rep" "${iters_arg[@]}" "${graphs_arg[@]}")
      run_cpp() { OMP_NUM_THREADS=$threads "$cpp" "${args[@]}" >>"$out/$b.jsonl"; }
      run_py() { OMP_NUM_THREADS=$threads "$py" -W ignore tests/bench/pytorch/baseline.py "${args[@]}" >>"$out/$b.jsonl"; }
      echo "bench_vs_pytorch: $b rep $rep/$reps $c" >&2
      if [ $((rep % 2)) -eq 1 ]; then run_cpp; run_py; else run_py; run_cpp; fi
    done
  done
done

python3 - "$out" <<'EOF'
import collections, glob, json, os, statistics, sys

out = sys.argv[1]
rows = collections.OrderedDict()  # (build, case) -> impl -> [median_ms per run]
info = {}
for path in sorted(glob.glob(os.path.join(out, "*.jsonl"))):
    build = os.path.basename(path)[: -len(".jsonl")]
    for line in open(path):
        r = json.loads(line)
        r["case"] = f'{r["case"]}@{r["batch"]}'
        rows.setdefault((build, r["case"]), {}).setdefault(r["impl"], []).append(r["median_ms"])
        info[(build, r["case"], r["impl"])] = r
print(f"{'build':<13} {'torch':<7} {'case@batch':<16} {'params':>8} {'C++ ms':>9} {'Python ms':>10} "
      f"{'Python/C++':>10}  per-run ratios")
problems = []
for (build, case), d in rows.items():
    cpp, py = d.get("c++"), d.get("python")
    if not cpp or not py:
        continue
    ic, ip = info[(build, case, "c++")], info[(build, case, "python")]
    if ic["params"] != ip["params"]:
        problems.append(f"{build} {case}: {ic['params']} parameters in C++, {ip['params']} in Python")
    if ic["torch"].split(".")[:2] != ip["torch"].split(".")[:2]:
        problems.append(f"{build}: C++ on LibTorch {ic['torch']}, Python on torch {ip['torch']}")
    mc, mp = statistics.median(cpp), statistics.median(py)
    per_run = ", ".join(f"{p / c:.2f}" for c, p in zip(cpp, py))
    print(f"{build:<13} {ic['torch']:<7} {case:<16} {ic['params']:>8} {mc:>9.3f} {mp:>10.3f} "
          f"{mp / mc:>10.2f}  {per_run}")
print(f"\nmedian over {len(next(iter(rows.values()))['c++'])} runs per side of each run's median "
      f"time per iteration; threads {info[next(iter(info))]['threads']}, "
      f"device {info[next(iter(info))]['device']}. JSON lines in {out}")
for p in problems:
    print("MISMATCH:", p)
sys.exit(1 if problems else 0)
EOF
