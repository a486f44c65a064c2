#!/usr/bin/env bash
# Measures what the glibc malloc tuning of dm/base/alloc.hpp buys: runs the
# benchmarks below with DM_MALLOC_TUNING=0 (glibc's defaults) and with the
# tuning (the default), interleaved REPS times each so that a change in the
# machine's load hits both sides alike, and prints the median time of each
# side and their ratio.
#
#   tools/bench_allocator.sh                 # build/bin/dm_bench, 3 reps
#   REPS=5 MIN_TIME=2 tools/bench_allocator.sh
#   FILTER='BM_UlaStep' tools/bench_allocator.sh
#
# Environment:
#   DM_BENCH    the benchmark program (default build/bin/dm_bench)
#   FILTER      --benchmark_filter regex (default: the CPU U-Net training
#               step and sampling forward at batch 64, the 2D chain benchmarks)
#   REPS        runs per side (default 3)
#   MIN_TIME    --benchmark_min_time in seconds (default 1)
#   DM_BENCH_THREADS  torch threads of the U-Net benchmarks (see bench_nn.cpp;
#               use 1 on a busy machine)
# The JSON of every run is kept in a temporary folder, named at the end.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${DM_BENCH:-$root/build/bin/dm_bench}"
reps="${REPS:-3}"
min_time="${MIN_TIME:-1}"
# U-Net: tests/bench/bench_nn.cpp (cuda:0 = the CPU runs). 2D chains:
# tests/bench/bench_toy.cpp (BM_UlaStep: one step of 16384 2D chains, whose
# [N, 2] float64 tensors are 256 KiB, above glibc's default mmap threshold),
# and any benchmark whose name says Ancestral (the 2D ancestral DDPM chain).
filter="${FILTER:-^BM_UNetTrainStep/batch:64/cuda:0|^BM_UNetSampleForward/batch:64/cuda:0|^BM_UlaStep/16384|Ancestral}"

if [ ! -x "$bin" ]; then
  echo "bench_allocator: no benchmark program at $bin (build it: cmake --build build --target dm_bench)" >&2
  exit 1
fi

out="$(mktemp -d "${TMPDIR:-/tmp}/dm_bench_allocator.XXXXXX")"
run() {  # run <side> <rep>
  local side=$1 rep=$2 tuning
  if [ "$side" = glibc ]; then tuning=0; else tuning=1; fi
  echo "bench_allocator: rep $rep/$reps, $side malloc" >&2
  DM_MALLOC_TUNING=$tuning "$bin" --benchmark_filter="$filter" --benchmark_min_time="$min_time" \
    --benchmark_format=json >"$out/$side.$rep.json"
}
for rep in $(seq 1 "$reps"); do
  run glibc "$rep"
  run tuned "$rep"
done

python3 - "$out" "$reps" <<'EOF'
import glob, json, os, statistics, sys

out, reps = sys.argv[1], sys.argv[2]
to_ms = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
times = {}  # name -> side -> [ms]
order = []
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    side = os.path.basename(path).split(".")[0]
    with open(path) as f:
        doc = json.load(f)
    for b in doc.get("benchmarks", []):
        if b.get("error_occurred") or b.get("run_type", "iteration") != "iteration":
            continue
        name = b["name"]
        if name not in times:
            times[name] = {}
            order.append(name)
        times[name].setdefault(side, []).append(b["real_time"] * to_ms[b.get("time_unit", "ns")])

if not times:
    sys.exit("bench_allocator: no benchmark matched the filter")
if not any("Ancestral" in n for n in order):
    print("note: no benchmark named *Ancestral* exists yet; BM_UlaStep stands in for the 2D chain\n")

w = max(len(n) for n in order)
print(f"{'benchmark':<{w}}  {'glibc default':>14}  {'tuned':>10}  {'speedup':>8}  {'time saved':>10}")
for name in order:
    d, t = times[name].get("glibc"), times[name].get("tuned")
    if not d or not t:
        continue
    md, mt = statistics.median(d), statistics.median(t)
    print(f"{name:<{w}}  {md:>11.4g} ms  {mt:>7.4g} ms  {md / mt:>7.2f}x  {100 * (1 - mt / md):>9.1f}%")
print(f"\nmedians of {reps} runs per side (real time per iteration); JSON in {out}")
EOF
