#!/usr/bin/env bash
# The prepared script for a lent GPU machine (one call of the device tool, under
# 10 minutes): configure and build against that machine's PyTorch with CUDA,
# run the unit tests there (the CUDA ones no longer skip), run the image
# chapters at a GPU size (with and without CUDA graphs; a short training run
# in float32 and in bf16 + channels-last), the C++-vs-PyTorch benchmark (graphs
# off and on) and the benchmarks, and write every number to one results
# folder ($OUT if set, else gpu-results/); run.log gathers the summaries.
#
#   bash tools/gpu/run.sh
#
# Nothing is installed: the machine's python3 must import torch (its
# torch.utils.cmake_prefix_path is the LibTorch); the header-only libraries,
# GoogleTest, Google Benchmark, zlib and Fashion-MNIST come staged from this
# project's machine by tools/gpu/stage.sh into .gpu-deps/ — carry it:
#   bash tools/gpu/stage.sh        # here, before the device call
#   device tool: command "bash tools/gpu/run.sh", carry [".gpu-deps"]
# (GoogleTest is Debian 12's static build, GCC 12: a machine whose libstdc++ is
# older than GCC 12's may fail to link the unit tests; the chapters and the
# benchmark do not need it.)
# NOTE: written without a GPU at hand; it has not run on a GPU yet.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
log() { echo "[gpu $(date +%H:%M:%S)] $*" | tee -a "$out/run.log"; }
start=$SECONDS
# The device tool allows 10 minutes a call: a stage starts only before 8.
time_left() {
  if [ $((SECONDS - start)) -lt 480 ]; then return 0; fi
  log "skipped (over 8 minutes gone): $*"
  return 1
}

prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')" || { log "no torch in python3"; exit 1; }
python3 -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))' | tee -a "$out/run.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$out/run.log"

deps=()
if [ -d .gpu-deps ]; then
  prefix="$prefix;$PWD/.gpu-deps"
  deps=(-DZLIB_ROOT="$PWD/.gpu-deps")
  export DM_DATA_DIR="$PWD/.gpu-deps/share/datasets/fashion-mnist"
else
  log "no .gpu-deps/ (tools/gpu/stage.sh makes it): the machine must have the dependencies"
fi
log "configure + build (CUDA LibTorch and dependencies from $prefix)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)  # else CMake's default (Makefiles)
cmake -S . -B build-gpu "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" "${deps[@]}" \
  -DTORCH_CUDA_ARCH_LIST="9.0" >"$out/configure.log" 2>&1 || { log "configure failed"; tail -30 "$out/configure.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" --target dm 03_ncsn 04_ddpm dm_vs_pytorch \
  >"$out/build.log" 2>&1 || { log "build failed"; grep -m20 error "$out/build.log"; exit 1; }
# The tests and benchmarks link GoogleTest / Google Benchmark: a failure there
# leaves the rest of the run standing.
cmake --build build-gpu -j "$(nproc)" --target dm_unit_tests dm_bench >"$out/build_tests.log" 2>&1 ||
  { log "unit tests or benchmarks did not build"; grep -m10 error "$out/build_tests.log" | tee -a "$out/run.log"; }
log "built in $((SECONDS - start)) s"

if [ -x build-gpu/bin/dm_unit_tests ]; then
  log "unit tests on the GPU machine"
  timeout 120 build-gpu/bin/dm_unit_tests --gtest_brief=1 >"$out/unit_tests.log" 2>&1
  tail -3 "$out/unit_tests.log" | tee -a "$out/run.log"
fi

for chapter in 04_ddpm 03_ncsn; do
  for graphs in "" "--cuda-graphs"; do
    name="$chapter${graphs:+_graphs}"
    time_left "$name" || continue
    log "$chapter on cuda $graphs (shipped checkpoint, 1024 samples)"
    timeout 150 "build-gpu/bin/$chapter" --device cuda --samples 1024 $graphs --out "$out/$name" \
      >"$out/$name.log" 2>&1
    log "$name exit $? ($(grep -o '"wall_seconds": [0-9.]*' "$out/$name/metrics.json" 2>/dev/null))"
  done
done

log "04_ddpm: 2000 training steps on cuda, float32 and bf16 + channels-last"
for mode in "" "--bf16 --channels-last"; do
  name="04_train${mode:+_bf16}"
  time_left "$name" || continue
  timeout 150 build-gpu/bin/04_ddpm --device cuda --train --steps 2000 --samples 256 $mode \
    --out "$out/$name" >"$out/$name.log" 2>&1
  log "$name exit $? ($(grep -o '"seconds": [0-9.]*' "$out/$name/metrics.json" 2>/dev/null | head -1))"
done

log "C++ vs PyTorch on cuda, CUDA graphs off and on"
for graphs in 0 1; do
  time_left "vs_pytorch graphs=$graphs" || continue
  BUILDS=build-gpu DEVICE=cuda GRAPHS=$graphs REPS=2 THREADS=1 timeout 150 \
    bash tools/bench_vs_pytorch.sh >"$out/vs_pytorch_graphs$graphs.txt" 2>"$out/vs_pytorch_graphs$graphs.log"
  cat "$out/vs_pytorch_graphs$graphs.txt" | tee -a "$out/run.log"
done

[ -x build-gpu/bin/dm_bench ] && time_left "dm_bench" && log "benchmarks (CUDA cases)" && timeout 60 build-gpu/bin/dm_bench --benchmark_filter='cuda:1|Ancestral' --benchmark_min_time=0.3 \
  --benchmark_format=json --benchmark_out="$out/bench.json" >"$out/bench.log" 2>&1
[ -f "$out/bench.log" ] && tail -15 "$out/bench.log" | tee -a "$out/run.log"
log "done in $((SECONDS - start)) s; results in $out/"
