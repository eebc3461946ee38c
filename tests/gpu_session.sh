#!/usr/bin/env bash
# The whole GPU session in one script, run on the lent GPU machine from the repository root with
# .device/ carried (prepare it here first: bash tests/gpu_prepare.sh). Writes its logs under $OUT
# (at most 8 files come back): session.log (nvidia-smi, commit, build), ctest.log, bench-depthwise.log,
# bench-torch.log, profile.log, profile.json, train.log, train.jsonl.
#   bash tests/gpu_session.sh [all|build|test|bench|train]    (all: every stage in order)
set -uo pipefail
stage=${1:-all}
OUT=${OUT:-/tmp/drnet-out}
mkdir -p "$OUT"
top=$(pwd)
log="$OUT/session.log"
say() { echo "== $*" | tee -a "$log"; }
run() { # run LOGFILE CMD...: prints the command, runs it with output to the log, returns its status
  local file=$1; shift
  echo "\$ $*" | tee -a "$file"
  "$@" >> "$file" 2>&1
  local rc=$?
  echo "(exit $rc)" | tee -a "$file"
  return $rc
}

header() { # what every log starts with: the machine, the commit, the time
  {
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "commit: $(cat .device/COMMIT 2>/dev/null || echo unknown)"
    if [ -s .device/STATUS ]; then echo "uncommitted changes:"; sed 's/^/  /' .device/STATUS; fi
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
  } >> "$1"
}

# ---------------------------------------------------------------------------------------------------
# Environment: cuDNN (the toolkit's or the Python wheel's), zlib (the image's or the carried one), data.
CUDNN_ROOT=""
wheel=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)
for d in /usr/local/cuda /usr "$wheel"; do
  if [ -n "$d" ] && [ -f "$d/include/cudnn.h" ]; then CUDNN_ROOT=$d; break; fi
done
if [ -n "$CUDNN_ROOT" ] && [ -d "$CUDNN_ROOT/lib" ]; then export LD_LIBRARY_PATH="$CUDNN_ROOT/lib:${LD_LIBRARY_PATH:-}"; fi
zlib_flags=()
if [ ! -f /usr/include/zlib.h ] && [ -f .device/zlib/usr/include/zlib.h ]; then
  zlib_flags=(-DZLIB_INCLUDE_DIR="$top/.device/zlib/usr/include"
              -DZLIB_LIBRARY="$(ls "$top"/.device/zlib/usr/lib/*/libz.a 2>/dev/null | head -1)")
fi
export CIFAR10_PATH=/tmp/cifar
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-16}
export DRNET_REQUIRE_GPU=1 # GPU tests fail instead of skipping if the device is unusable here

build() {
  : > "$log"
  header "$log"
  { nvidia-smi; echo; nvcc --version | tail -2; cmake --version | head -1; echo "cuDNN root: ${CUDNN_ROOT:-not found}";
    echo "zlib: ${zlib_flags[*]:-system}"; } >> "$log" 2>&1
  say "data"
  [ -d /tmp/cifar/cifar-10-batches-bin ] || run "$log" python3 .device/cifar10_from_jpeg.py .device/cifar10-jpeg.tar.gz /tmp/cifar
  say "build"
  run "$log" cmake -B build-gpu -S . -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
      ${CUDNN_ROOT:+-DCUDNN_ROOT="$CUDNN_ROOT"} "${zlib_flags[@]}" -DCIFAR10_PATH=/tmp/cifar || return 1
  run "$log" cmake --build build-gpu -j 16 || return 1
  grep -q "CUDA backend: on" "$log" || { say "the CUDA backend was not configured: see session.log"; return 1; }
}

tests() {
  : > "$OUT/ctest.log"
  header "$OUT/ctest.log"
  say "tests"
  run "$OUT/ctest.log" ctest --test-dir build-gpu --output-on-failure -j 8 --timeout 900
  tail -25 "$OUT/ctest.log" | tee -a "$log"
}

bench() {
  for f in bench-depthwise.log bench-torch.log profile.log; do : > "$OUT/$f"; header "$OUT/$f"; done
  say "benchmarks"
  run "$OUT/bench-depthwise.log" ./build-gpu/bench-depthwise --device cuda --reps 30
  run "$OUT/bench-depthwise.log" ./build-gpu/bench-depthwise --device cuda --reps 30 --tf32 off
  run "$OUT/bench-torch.log" python3 tests/reference/bench_depthwise_torch.py --device cuda --reps 30
  run "$OUT/profile.log" ./build-gpu/train mobilenet cifar10 --device cuda --profile --profile-steps 50 \
      --profile-json "$OUT/profile.json"
  run "$OUT/profile.log" ./build-gpu/train mobilenet cifar10 --device cuda --dw-group auto --profile --profile-steps 50
  tail -4 "$OUT/bench-depthwise.log" "$OUT/profile.log" | tee -a "$log"
}

train() {
  : > "$OUT/train.log"
  header "$OUT/train.log"
  say "training: 3 epochs on CIFAR-10 (JPEG round-trip copy)"
  run "$OUT/train.log" ./build-gpu/train mobilenet cifar10 --device cuda --epochs 3 --log "$OUT/train.jsonl" \
      --checkpoint /tmp/drnet-gpu.ckpt
  grep "^epoch [0-9]*/3:" "$OUT/train.log" | tee -a "$log"
}

case $stage in
  build) build ;;
  test) tests ;;
  bench) bench ;;
  train) train ;;
  all) build && { tests; bench; train; } ;;
  *) echo "usage: gpu_session.sh [all|build|test|bench|train]"; exit 2 ;;
esac
say "done ($stage)"
