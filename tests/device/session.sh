#!/usr/bin/env bash
# The whole GPU session in one call, from the repository root (docs/gpu-session.md):
#
#   bash tests/device/session.sh            # on a GPU machine: build, GPU tests, train, benchmarks
#   DRNET_DEVICE_BUILD=build bash tests/device/session.sh   # reuse an existing build folder
#   DRNET_DEVICE_STAGES="speed long" bash tests/device/session.sh   # a second call: only these stages
#                                   (env, build and data always run; long takes its epoch time from
#                                   the train stage, else from DRNET_DEVICE_EPOCH_S, and uses the fast
#                                   path when this call's tests, or DRNET_DEVICE_FAST=1, proved it)
# The summary ends with the exact "next call:" line for the stages that failed or did not fit.
#
# Stages, in order of value, each under its own `timeout` (a cap) and all under one deadline
# (DRNET_DEVICE_DEADLINE seconds, default 580: a 600 s call less 20 s for the transfers), continuing
# past a failed stage wherever later ones can still run:
#   env    nvcc (PATH, else the toolkit's home), cmake (PATH, else a Python's pip package), cuDNN
#          (header and library), NCCL, zlib, PyTorch, the GPU and its free memory: a line each. On a
#          GPU with no data (no CIFAR10_PATH, no .device/ pack) the call stops here, before building.
#   build  data conversion in the background while CMake builds only the targets needed here (200 s)
#   data   waits for the conversion (or takes CIFAR10_PATH as it is) and checks it
#   tests  the GPU tests (ctest -L gpu) with DRNET_REQUIRE_GPU=1: a broken device fails, and so does
#          a skip (after a CUDA error, the failed tests again with DRNET_CUDA_SYNC=1, and memcheck) (170 s)
#   train  train mobilenet cifar10 --epochs 3 --device cuda (110 s)
#   speed  tests/device/speed.sh: our training step against PyTorch's, side by side (210 s)
#   bench  bench-depthwise (TF32 on: every g; off: g = 1, 32 and C), its PyTorch companion, --profile (75 s)
#   long   the standard recipe for as many epochs as the remaining time allows
#
# Logs go to $OUT (default /tmp/drnet-device), at most 8 files, flat, appended as the stages run so
# that a call killed at its limit still returns what was done: session.log (environment, build,
# ldd, the summary), tests.log, train.log, train.jsonl, speed.log, bench.log, profile.json, long.log.
# The summary table is printed last.
#
# Without a GPU this is the rehearsal: every stage that does not need the device runs (environment,
# data conversion, configure, build, CPU checks of the built programs and of the GPU tests' refusal
# to skip), the same files are written, the last line says "no GPU here", and the exit code is 3.
# Exit codes: 0 every stage passed on a GPU; 1 a stage failed; 3 rehearsal passed (no GPU).
set -uo pipefail
. "$(dirname "$0")/lib.sh" # find_nvcc, find_python_tool, data_source, ctest_verdict, keep_ld_path
keep_ld_path               # PyTorch's commands get the environment's own LD_LIBRARY_PATH ("${TORCH_ENV[@]}")

T0=$(date +%s)
DEADLINE=${DRNET_DEVICE_DEADLINE:-580}
OUT=${OUT:-/tmp/drnet-device}
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the checkout from the PyTorch companions
BUILD=${DRNET_DEVICE_BUILD:-build-gpu}
JOBS=$(nproc 2>/dev/null || echo 4)
top=$(pwd)
mkdir -p "$OUT"
LOG=$OUT/session.log
FILES=(session.log tests.log train.log train.jsonl speed.log bench.log profile.json long.log)
for f in "${FILES[@]}"; do : > "$OUT/$f"; done

left() { echo $((DEADLINE - ($(date +%s) - T0))); }
say() { echo "== [$(($(date +%s) - T0)) s] $*" | tee -a "$LOG"; }
# A new, empty run directory for one ./train run's --out (without --out, train makes one under runs/
# in the checkout).
run_dir() { mktemp -d /tmp/drnet-run-XXXXXX; }

# run FILE LIMIT CMD...: runs CMD with its output appended to FILE, under `timeout` of at most
# LIMIT seconds and never past the deadline; prints the command and its status.
run() {
  local file=$1 limit=$2; shift 2
  local rest; rest=$(left)
  [ "$limit" -gt $((rest - 5)) ] && limit=$((rest - 5))
  if [ "$limit" -lt 5 ]; then echo "\$ $* -- not started: the deadline is reached" | tee -a "$file"; return 124; fi
  echo "\$ $*    (limit ${limit} s)" >> "$file"
  timeout -k 5 "$limit" "$@" >> "$file" 2>&1
  local rc=$?
  [ $rc = 124 ] && echo "(timed out after $limit s)" >> "$file"
  echo "(exit $rc)" >> "$file"
  return $rc
}

# "52.1% @ 9000 img/s, ..." from the per-epoch lines of a JSON log (train --log).
epochs_of() {
  grep '"test_acc"' "$1" 2>/dev/null | sed -E 's/.*"test_acc": ([0-9.]+).*"img_per_s": ([0-9.]+).*/\1% @ \2 img\/s/' |
    awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $0 }'
}

# The seconds of the train stage's last epoch, else DRNET_DEVICE_EPOCH_S (a second call), else nothing.
epoch_seconds() {
  local s
  s=$(grep '"test_acc"' "$OUT/train.jsonl" 2>/dev/null | grep -o '"seconds": [0-9.]*' | tail -1 | awk '{print $2}')
  echo "${s:-${DRNET_DEVICE_EPOCH_S:-}}"
}

# The summary: one row per stage.
STAGES=() STATUS=() SECS=() NOTES=()
FAILED=0
stage_begin() { S_NAME=$1; S_T=$(date +%s); say "$1: $2"; }
stage_end() { # stage_end ok|FAIL|skipped NOTE
  STAGES+=("$S_NAME") STATUS+=("$1") SECS+=($(($(date +%s) - S_T))) NOTES+=("$2")
  [ "$1" = FAIL ] && FAILED=1
  say "$S_NAME: $1${2:+ ($2)}"
}

# DRNET_DEVICE_STAGES="tests speed": run only these of tests, train, speed, bench, long (env, build
# and data always run): a second call on the same machine repeats only what the first did not finish.
STAGES_WANTED=${DRNET_DEVICE_STAGES:-tests train speed bench long}
for s in ${STAGES_WANTED//,/ }; do
  case $s in tests|train|bench|speed|long) ;; *) echo "DRNET_DEVICE_STAGES: unknown stage '$s' (tests train speed bench long)"; exit 2 ;; esac
done
wanted() { # wanted STAGE: 0 when asked for, else the stage is recorded as skipped
  case " ${STAGES_WANTED//,/ } " in *" $1 "*) return 0 ;; esac
  STAGES+=("$1") STATUS+=(skipped) SECS+=(0) NOTES+=("not in DRNET_DEVICE_STAGES")
  return 1
}

header() { # what every log starts with: time, commit, machine
  {
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "commit: $(cat .device/COMMIT 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)"
    if [ -s .device/STATUS ]; then echo "uncommitted changes:"; sed 's/^/  /' .device/STATUS; fi
    echo "command: ${DRNET_DEVICE_STAGES:+DRNET_DEVICE_STAGES=\"$DRNET_DEVICE_STAGES\" }bash tests/device/session.sh (deadline ${DEADLINE} s)"
    if [ "$GPU" = 1 ]; then
      nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
    else
      echo "gpu: none (rehearsal)"
    fi
  } >> "$1"
}

# ---------------------------------------------------------------------------------------------------
# env
GPU=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then GPU=1; fi
for f in "${FILES[@]}"; do case $f in *.json|*.jsonl) ;; *) header "$OUT/$f" ;; esac; done
stage_begin env "what this machine has"
check() { printf '  %-12s %s\n' "$1" "$2" | tee -a "$LOG"; }
env_missing=""
if [ "$GPU" = 1 ]; then
  check GPU "$(nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version --format=csv,noheader | head -1) (name, total, free, driver)"
else
  check GPU "none: nvidia-smi $(command -v nvidia-smi >/dev/null && echo 'lists no GPU' || echo 'is not installed')"
fi
# nvcc off PATH (a toolkit installed but not set up for this shell) would build without CUDA.
if find_nvcc; then check nvcc "$(nvcc --version | grep -o 'release [0-9.]*'): $FOUND_NVCC"
else check nvcc "MISSING: no CUDA compiler on PATH, in \$CUDA_HOME or in /usr/local/cuda*"; env_missing+=" nvcc"; fi

# Python: the one with PyTorch (the GPU image's python3), else one with Pillow for the converter.
PY=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch' 2>/dev/null; then PY=$p; break; fi
done
if [ -n "$PY" ]; then
  check PyTorch "$("$PY" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda, "available" if torch.cuda.is_available() else "not available")' 2>&1) ($PY)"
else
  check PyTorch "not found (the PyTorch comparisons are skipped)"
fi
# cmake (and ninja, below) may come from a Python's pip packages rather than PATH.
find_python_tool cmake $PY python3 /usr/bin/python3 && [ "${FOUND_TOOL% (on PATH)}" = "$FOUND_TOOL" ] && check cmake "$FOUND_TOOL"
PYIMG=""
for p in $PY python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import PIL' 2>/dev/null; then PYIMG=$p; break; fi
done

# cuDNN and NCCL: the toolkit's, the system's, PyTorch's wheels (cmake/nvidia_wheel_roots.py), else
# (cuDNN) anywhere on the file system. CMake searches the same places in the same order.
WHEELS=()
for p in $PY python3; do
  mapfile -t WHEELS < <("$p" cmake/nvidia_wheel_roots.py 2>/dev/null) && [ ${#WHEELS[@]} -gt 0 ] && break
done
# The toolkit of the nvcc on PATH (CMake takes that one too), which need not be /usr/local/cuda.
TOOLKIT=""
command -v nvcc >/dev/null 2>&1 && TOOLKIT=$(dirname "$(dirname "$(command -v nvcc)")")
# find_root HEADER LIBGLOB: the first candidate folder holding include/HEADER and lib*/LIBGLOB.
find_root() {
  local d
  for d in $TOOLKIT /usr/local/cuda /usr "${WHEELS[@]}"; do
    # compgen, not ls: ls fails when any one of its patterns matches nothing.
    if [ -f "$d/include/$1" ] && { compgen -G "$d/lib*/$2" || compgen -G "$d/lib/*/$2"; } >/dev/null; then
      echo "$d"; return 0
    fi
  done
  return 1
}
CUDNN_ROOT=${CUDNN_ROOT:-$(find_root cudnn.h 'libcudnn.so*')}
if [ -z "$CUDNN_ROOT" ]; then
  h=$(find / -xdev -name cudnn.h -path '*include*' 2>/dev/null | head -1)
  [ -n "$h" ] && CUDNN_ROOT=$(dirname "$(dirname "$h")")
fi
CUDNN_LIB=""
if [ -n "$CUDNN_ROOT" ]; then
  CUDNN_LIB=$(ls "$CUDNN_ROOT"/lib*/libcudnn.so* "$CUDNN_ROOT"/lib/*/libcudnn.so* 2>/dev/null | head -1)
  [ -z "$CUDNN_LIB" ] && CUDNN_LIB=$(find / -xdev -name 'libcudnn.so*' 2>/dev/null | head -1)
  ver=$(grep -hE '#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ' "$CUDNN_ROOT"/include/cudnn_version.h 2>/dev/null | awk '{printf "%s.", $3}' | sed 's/\.$//')
  check cuDNN "${ver:-?} headers in $CUDNN_ROOT/include, library ${CUDNN_LIB:-MISSING}"
  # The library's folder goes on the loader's path too: cuDNN 9 dlopens its sub-libraries by name.
  # Ours only: PyTorch's commands run with "${TORCH_ENV[@]}", the environment's own value.
  [ -n "$CUDNN_LIB" ] && export LD_LIBRARY_PATH="$(dirname "$CUDNN_LIB")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  [ -z "$CUDNN_LIB" ] && env_missing+=" cuDNN-library"
else
  check cuDNN "MISSING: no cudnn.h in the toolkit, the system, PyTorch's wheel or the file system"
  env_missing+=" cuDNN"
fi
# NCCL is optional for training, but test_dist_nccl (a GPU test) fails without it.
NCCL_ROOT=${NCCL_ROOT:-$(find_root nccl.h 'libnccl.so*')}
if [ -n "$NCCL_ROOT" ]; then
  check NCCL "$(grep -hE '#define NCCL_(MAJOR|MINOR|PATCH) ' "$NCCL_ROOT"/include/nccl.h 2>/dev/null | awk '{printf "%s.", $3}' | sed 's/\.$//') in $NCCL_ROOT"
else
  check NCCL "not found (test_dist_nccl will fail: the build has no NCCL)"
fi
check wheels "${#WHEELS[@]} NVIDIA wheel folders searched${WHEELS:+ (${WHEELS[*]##*/})}"
zlib_flags=()
if [ -f /usr/include/zlib.h ]; then check zlib "system ($(grep -o 'ZLIB_VERSION "[^"]*"' /usr/include/zlib.h | cut -d'"' -f2))"
elif [ -f .device/zlib/usr/include/zlib.h ]; then
  zlib_flags=(-DZLIB_INCLUDE_DIR="$top/.device/zlib/usr/include"
              -DZLIB_LIBRARY="$(ls "$top"/.device/zlib/usr/lib/*/libz.a 2>/dev/null | head -1)")
  check zlib "carried in .device/zlib (no zlib.h on this system)"
else check zlib "MISSING: no zlib.h (run tests/device/prepare.sh before the session)"; env_missing+=" zlib"; fi
# The build tool: make, else Ninja (the GPU image has Ninja among its Python packages; make is not
# promised), else CMake's configure would fail with no build program.
gen=()
cmake_v=$(cmake --version 2>/dev/null | head -1 | awk '{print $3}')
if command -v make >/dev/null 2>&1; then check build "make, cmake $cmake_v"
elif find_python_tool ninja $PY python3 /usr/bin/python3; then gen=(-G Ninja); check build "ninja (no make here: $FOUND_TOOL), cmake $cmake_v"
else check build "MISSING: neither make nor ninja"; env_missing+=" make"; fi
# compute-sanitizer: used only to explain a CUDA fault in the tests stage; its absence is no failure.
SANITIZER=$(command -v compute-sanitizer 2>/dev/null)
for cand in "$TOOLKIT/bin/compute-sanitizer" "$TOOLKIT/compute-sanitizer/compute-sanitizer"; do
  [ -z "$SANITIZER" ] && [ -n "$TOOLKIT" ] && [ -x "$cand" ] && SANITIZER=$cand
done
check sanitizer "${SANITIZER:-not found (a CUDA fault in the tests is then explained by DRNET_CUDA_SYNC=1 alone)}"
command -v cmake >/dev/null 2>&1 || { check cmake "MISSING: not on PATH"; env_missing+=" cmake"; }
command -v gcc >/dev/null 2>&1 || { check gcc "MISSING: not on PATH (the C compiler CMake needs)"; env_missing+=" gcc"; }
# What PyTorch's commands will see: the environment's LD_LIBRARY_PATH, without the cuDNN folder above.
py_ld=$("${TORCH_ENV[@]}" sh -c 'echo "${LD_LIBRARY_PATH-}"')
if [ -n "$CUDNN_LIB" ] && [ -n "${LD_LIBRARY_PATH:-}" ] && [ "$py_ld" = "$LD_LIBRARY_PATH" ] &&
   [ "$LD_LIBRARY_PATH" != "${DRNET_ORIG_LD_LIBRARY_PATH:-}" ]; then
  check ld-path "LEAK: PyTorch's commands would see ours ($LD_LIBRARY_PATH)"; env_missing+=" ld-path"
else
  check ld-path "ours: ${LD_LIBRARY_PATH:-(unset)}; PyTorch's: ${py_ld:-(unset)}"
fi
DATA_FROM=$(data_source)
check data "${DATA_FROM:-NONE: no readable CIFAR10_PATH and no .device/cifar10-jpeg.tar.gz (run tests/device/prepare.sh)}"
check cores "$JOBS; deadline ${DEADLINE} s; logs in $OUT"
if [ -n "$env_missing" ]; then stage_end FAIL "missing:$env_missing"; else stage_end ok "GPU: $([ $GPU = 1 ] && echo yes || echo none)"; fi
# On a GPU, no data means no stage but the build could run: stop now rather than spend the call.
if [ "$GPU" = 1 ] && [ -z "$DATA_FROM" ]; then
  say "stopping before the build: no CIFAR-10 here. Carry .device/ with the tree (bash tests/device/prepare.sh fills it) or set CIFAR10_PATH"
  exit 1
fi

# ---------------------------------------------------------------------------------------------------
# build (the data conversion runs meanwhile)
DATA=""
CONVERT_PID=""
if [ -n "${CIFAR10_PATH:-}" ] && [ -r "$CIFAR10_PATH" ]; then
  DATA=$CIFAR10_PATH
elif [ -f .device/cifar10-jpeg.tar.gz ] && [ -n "$PYIMG" ]; then
  DATA=/tmp/drnet-cifar
  if [ ! -f "$DATA/cifar-10-batches-bin/test_batch.bin" ]; then
    (echo "\$ $PYIMG .device/cifar10_from_jpeg.py .device/cifar10-jpeg.tar.gz $DATA"
     timeout 120 "$PYIMG" .device/cifar10_from_jpeg.py .device/cifar10-jpeg.tar.gz "$DATA.tmp" &&
       rm -rf "$DATA" && mv "$DATA.tmp" "$DATA"; echo "(exit $?)") > "$OUT/.convert" 2>&1 &
    CONVERT_PID=$!
  fi
fi

stage_begin build "configure and build into $BUILD (CUDA architecture 90), $JOBS jobs"
TARGETS=(train bench-depthwise)
# The GPU tests (labelled gpu in tests/tests.cmake) and the optional benchmark targets that exist.
TARGETS+=($(sed -n 's/^set(DRNET_GPU_TESTS \(.*\))$/\1/p' tests/tests.cmake))
for t in bench-train; do grep -qE "add_executable\($t[ )]" CMakeLists.txt tests/tests.cmake && TARGETS+=("$t"); done
build_ok=1
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  # No MPI: one GPU needs none, and an MPI found among the GPU image's Python packages is one more
  # thing that could break the build.
  # CC: GCC by name (CMake takes `cc` first, which may be another compiler; the build needs GCC).
  run "$LOG" 150 env CC="${CC:-gcc}" cmake -B "$BUILD" -S . -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DWITH_MPI=OFF "${gen[@]}" \
      ${CUDNN_ROOT:+-DCUDNN_ROOT="$CUDNN_ROOT"} ${NCCL_ROOT:+-DNCCL_ROOT="$NCCL_ROOT"} "${zlib_flags[@]}" ${DATA:+-DCIFAR10_PATH="$DATA"} || build_ok=0
else
  # A reused build folder keeps its settings but is regenerated: one configured before a target was
  # added would otherwise answer "No rule to make target".
  run "$LOG" 150 cmake "$BUILD" || build_ok=0
fi
if [ $build_ok = 1 ]; then
  run "$LOG" 200 cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}" || build_ok=0
fi
cuda_on=0
[ -f "$BUILD/libdrnet_cuda.a" ] && cuda_on=1
if [ -x "$BUILD/train" ]; then
  { echo "\$ ldd $BUILD/train"; ldd "$BUILD/train" | grep -E 'cudnn|cublas|cudart|nccl|libz|libgomp|not found'; } >> "$LOG" 2>&1
  ldd "$BUILD/train" | grep -q 'not found' && { say "ldd: a library of train is not found (see session.log)"; build_ok=0; }
  # The cuDNN loaded must be the one whose header was compiled in (two cuDNNs on one machine: the
  # toolkit's and PyTorch's wheel).
  # Compared by root folder: .../include[/triplet] against .../lib[64][/triplet].
  inc=$(sed -n 's/^CUDNN_INCLUDE_DIR:PATH=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
  lib=$(ldd "$BUILD/train" | awk '$1 ~ /^libcudnn\.so/ { print $3 }')
  if [ -d "$inc" ] && [ -f "$lib" ]; then
    inc_root=$(cd "$inc" && pwd -P | sed -E 's#/include(/[^/]*)?$##')
    lib_root=$(cd "$(dirname "$lib")" && pwd -P | sed -E 's#/lib(64)?(/[^/]*)?$##')
    [ "$inc_root" != "$lib_root" ] && { say "cuDNN mismatch: header from $inc, library loaded from $lib"; build_ok=0; }
  fi
  "$BUILD/train" --help > /dev/null 2>&1 || { say "the built train does not start"; build_ok=0; }
fi
if [ $build_ok = 1 ] && [ $cuda_on = 1 ]; then stage_end ok "${#TARGETS[@]} targets, CUDA backend on"
elif [ $build_ok = 1 ]; then stage_end FAIL "built, but without the CUDA backend (see CMake's 'CUDA backend' line)"
else stage_end FAIL "see session.log"; grep -E 'error|CUDA backend: off' "$LOG" | head -5; fi

# ---------------------------------------------------------------------------------------------------
# data
stage_begin data "CIFAR-10 (JPEG round-trip copy) for the runs"
if [ -n "$CONVERT_PID" ]; then wait "$CONVERT_PID"; fi
[ -f "$OUT/.convert" ] && { cat "$OUT/.convert" >> "$LOG"; rm -f "$OUT/.convert"; }
if [ -z "$DATA" ]; then
  stage_end FAIL "no data: set CIFAR10_PATH, or run tests/device/prepare.sh first (needs Pillow here)"
elif [ -x "$BUILD/train" ] && run "$LOG" 60 "$BUILD/train" mobilenet cifar10 --data "$DATA" --device cpu \
       --width 0.125 --batch 32 --limit-train 64 --limit-test 64 --max-steps 2 --threads 2 --out "$(run_dir)"; then
  stage_end ok "$DATA read by train"
else
  stage_end FAIL "train could not read $DATA (see session.log)"
fi
export CIFAR10_PATH=$DATA

# ---------------------------------------------------------------------------------------------------
# tests
if wanted tests; then
  stage_begin tests "GPU tests (ctest -L gpu) with DRNET_REQUIRE_GPU=1"
  if [ "$GPU" = 1 ]; then
    DRNET_REQUIRE_GPU=1 run "$OUT/tests.log" 170 ctest --test-dir "$BUILD" -L gpu --output-on-failure --timeout 150 -j 2
    rc=$?
    # ctest counts a skip as passed; here a skip is a failure (ctest_verdict names each one).
    line=$(ctest_verdict "$OUT/tests.log") || rc=${rc/#0/1}
    # A CUDA fault (an illegal address, a failed launch) is reported at the next call that waits,
    # not where it happened. So that this call's own log names the culprit, a failed run with such
    # an error reruns its failed tests once with a wait after every kernel and library call, and the
    # small op cases under compute-sanitizer's memcheck where it is installed (slow with cuDNN).
    if [ $rc != 0 ] && grep -qE '^error: .*: (CUDA|cuDNN|cuBLAS) call failed' "$OUT/tests.log"; then
      echo "== a CUDA error above: the failed tests again, with DRNET_CUDA_SYNC=1" >> "$OUT/tests.log"
      DRNET_REQUIRE_GPU=1 DRNET_CUDA_SYNC=1 run "$OUT/tests.log" 80 ctest --test-dir "$BUILD" --rerun-failed --output-on-failure --timeout 70 -j 2
      [ -n "$SANITIZER" ] && DRNET_REQUIRE_GPU=1 DRNET_CUDA_SYNC=1 run "$OUT/tests.log" 60 \
        "$SANITIZER" --tool memcheck --print-limit 10 "$BUILD/test_cuda_ops" --quick
      line="$line (CUDA error: reruns with DRNET_CUDA_SYNC=1${SANITIZER:+ and memcheck} in tests.log)"
    fi
    [ $rc = 0 ] && stage_end ok "$line" || stage_end FAIL "$line (exit $rc), see tests.log"
  else
    # The rehearsal checks the other half of the contract: without a device each GPU test must FAIL
    # under DRNET_REQUIRE_GPU=1 (and skip without it), never pass or skip silently.
    DRNET_REQUIRE_GPU=1 run "$OUT/tests.log" 120 ctest --test-dir "$BUILD" -L gpu --timeout 60 --output-on-failure
    n=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*\*\*\*Failed' "$OUT/tests.log")
    all=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#' "$OUT/tests.log")
    # The NCCL test says how NCCL will report and which interface it bootstraps on (seen here in its output).
    nccl_diag=0
    grep -q 'NCCL_DEBUG=WARN, NCCL_SOCKET_IFNAME=lo' "$OUT/tests.log" && nccl_diag=1
    if [ "$all" -ge 4 ] && [ "$n" = "$all" ] && [ $nccl_diag = 1 ]; then stage_end ok "rehearsal: all $all GPU tests fail under DRNET_REQUIRE_GPU=1 without a GPU, as they must"
    elif [ $nccl_diag = 0 ]; then stage_end FAIL "rehearsal: test_dist_nccl did not print its NCCL_DEBUG and bootstrap interface"
    else stage_end FAIL "rehearsal: $n of $all GPU tests failed under DRNET_REQUIRE_GPU=1 without a GPU (all must)"; fi
  fi
fi

# ---------------------------------------------------------------------------------------------------
# train
if wanted train; then
  stage_begin train "3 epochs, standard recipe, on CIFAR-10 (JPEG round-trip copy)"
  if [ "$GPU" = 1 ]; then
    run "$OUT/train.log" 110 "$BUILD/train" mobilenet cifar10 --device cuda --epochs 3 \
        --log "$OUT/train.jsonl" --checkpoint /tmp/drnet-device-3ep.ckpt --out "$(run_dir)"
    rc=$?
    acc=$(epochs_of "$OUT/train.jsonl")
    [ $rc = 0 ] && stage_end ok "test acc per epoch: $acc" || stage_end FAIL "exit $rc; ${acc:-no epoch finished}"
  else
    run "$OUT/train.log" 60 "$BUILD/train" mobilenet cifar10 --device cpu --width 0.25 --epochs 1 \
        --limit-train 512 --limit-test 256 --log "$OUT/train.jsonl" --out "$(run_dir)" &&
      stage_end ok "rehearsal: CPU, 512 images: $(epochs_of "$OUT/train.jsonl")" ||
      stage_end FAIL "rehearsal run failed (see train.log)"
  fi
fi

# ---------------------------------------------------------------------------------------------------
# speed (our step vs PyTorch's, when the script exists)
if wanted speed; then
  stage_begin speed "training step against PyTorch eager and torch.compile"
  if [ -f tests/device/speed.sh ]; then
    # Its cap leaves the bench stage and a few epochs of the long run their share.
    limit=$(( $(left) - 120 )); [ $limit -gt 210 ] && limit=210
    if [ $limit -ge 30 ]; then
      BUILD=$BUILD PY=$PY GPU=$GPU run "$OUT/speed.log" "$limit" bash tests/device/speed.sh "$limit" "$OUT/speed.log" &&
        stage_end ok "see speed.log" || stage_end FAIL "see speed.log"
    else stage_end skipped "not enough time left"; fi
  else
    echo "no tests/device/speed.sh in this tree" >> "$OUT/speed.log"; stage_end skipped "no speed script yet"
  fi
fi

# ---------------------------------------------------------------------------------------------------
# bench
if wanted bench; then
  stage_begin bench "depthwise benchmark, PyTorch companion, per-layer profile"
  if [ "$GPU" = 1 ]; then
    # Each g costs three cuDNN algorithm searches per layer shape (~230 searches for every g): TF32
    # on (PyTorch's default for convolutions) times every g, TF32 off only g = 1 (the default), the
    # paper's g = 32 and C.
    # The whole stage is capped at 75 s so that the long run keeps its minutes.
    bfail=0 bend=$(( $(left) - 75 ))
    bleft() { local r=$(( $(left) - bend )); [ "$r" -gt "$1" ] && r=$1; echo "$r"; }
    run "$OUT/bench.log" "$(bleft 30)" "$BUILD/bench-depthwise" --device cuda --reps 10 || bfail=1
    run "$OUT/bench.log" "$(bleft 15)" "$BUILD/bench-depthwise" --device cuda --reps 10 --tf32 off --groups 1,32,C || bfail=1
    [ -n "$PY" ] && { run "$OUT/bench.log" "$(bleft 15)" "${TORCH_ENV[@]}" "$PY" tests/reference/bench_depthwise_torch.py --device cuda --reps 10 || bfail=1; }
    # DRNET_CUDA_REPORT=1: after the table, the algorithm (or GEMM over the batch) each convolution ran.
    run "$OUT/bench.log" "$(bleft 20)" env DRNET_CUDA_REPORT=1 "$BUILD/train" mobilenet cifar10 --device cuda --profile \
        --profile-steps 20 --profile-json "$OUT/profile.json" || bfail=1
    run "$OUT/bench.log" "$(bleft 20)" "$BUILD/train" mobilenet cifar10 --device cuda --dw-group auto --profile --profile-steps 20 || bfail=1
    [ $bfail = 0 ] && stage_end ok "see bench.log" || stage_end FAIL "see bench.log"
  else
    run "$OUT/bench.log" 60 "$BUILD/bench-depthwise" --device cpu --reps 1 --batch 8 &&
    run "$OUT/bench.log" 60 "$BUILD/bench-depthwise" --device cpu --reps 1 --batch 8 --tf32 off --groups 1,32,C &&
    run "$OUT/bench.log" 60 "$BUILD/train" mobilenet cifar10 --device cpu --width 0.25 --batch 16 --profile \
        --profile-steps 2 --profile-json "$OUT/profile.json" && stage_end ok "rehearsal: CPU, tiny sizes" ||
      stage_end FAIL "rehearsal benchmark failed (see bench.log)"
  fi
fi

# Whether this call (or, by DRNET_DEVICE_FAST=1, an earlier one) showed the fast path right.
fast_proven() {
  # (Every run of test_cuda_speed in the log passed: one that passed only on the rerun after a CUDA
  # error does not count.)
  [ "${DRNET_DEVICE_FAST:-0}" = 1 ] && return 0
  local runs; runs=$(grep -E 'Test +#[0-9]+: test_cuda_speed \.' "$OUT/tests.log" 2>/dev/null)
  [ -n "$runs" ] && ! grep -qv ' Passed ' <<< "$runs"
}

# ---------------------------------------------------------------------------------------------------
# long: the standard recipe (cosine over the run) for as many epochs as fit
if wanted long; then
  stage_begin long "the standard recipe for as many epochs as the remaining time allows"
  # The epoch time comes from the train stage, or (when only this stage runs) DRNET_DEVICE_EPOCH_S.
  if [ "$GPU" = 1 ] && { [ -s "$OUT/train.jsonl" ] || [ -n "${DRNET_DEVICE_EPOCH_S:-}" ]; }; then
    per=$(epoch_seconds)
    # The fast path, once this call has shown it right: test_cuda_speed passed (graph replay and GPU
    # batches bit-identical to the eager step). Its epoch time then comes from the speed stage's
    # measured rate, plus a third for evaluation and the short last batch, which run eagerly.
    fast=()
    # (A second call that does not rerun the tests says so with DRNET_DEVICE_FAST=1.)
    if fast_proven; then
      fast=(--gpu-data on --cuda-graph on)
      rate=$(grep -h '^| drnet, gpu-data on, cuda-graph on |' "$OUT/speed.log" 2>/dev/null | awk -F'|' '{ print $3 + 0 }' | head -1)
      [ "${rate:-0}" = 0 ] && rate=
      [ -n "$rate" ] && per=$(awk -v r="$rate" -v p="${per:-0}" 'BEGIN { f = 50000 / r * 1.33; print (p > 0 && p < f) ? p : f }')
    fi
    rest=$(( $(left) - 25 ))
    # Each epoch costs its training time plus evaluation (~15 %) and start-up; 200 is the recipe's length.
    epochs=$(awk -v r="$rest" -v p="${per:-0}" 'BEGIN { if (p <= 0) { print 0; exit } n = int((r - 20) / (p * 1.2)); print (n > 200 ? 200 : n) }')
    if [ "$epochs" -ge 5 ]; then
      run "$OUT/long.log" "$rest" "$BUILD/train" mobilenet cifar10 --device cuda --epochs "$epochs" "${fast[@]}" \
          --checkpoint /tmp/drnet-device-long.ckpt --log /tmp/drnet-device-long.jsonl --out "$(run_dir)"
      rc=$?
      { echo "per-epoch JSON log:"; cat /tmp/drnet-device-long.jsonl; } >> "$OUT/long.log" 2>&1
      done_n=$(grep -c '"test_acc"' /tmp/drnet-device-long.jsonl 2>/dev/null)
      last=$(epochs_of /tmp/drnet-device-long.jsonl | awk -F', ' '{ print $NF }')
      [ $rc = 0 ] && stage_end ok "$epochs epochs${fast:+ (${fast[*]})}, last: $last" || stage_end FAIL "exit $rc after ${done_n:-0} of $epochs epochs${last:+, last: $last}"
    else stage_end skipped "time for only ${epochs} epochs (at ${per:-?} s each)"; fi
  else
    echo "rehearsal: no GPU, no long run" >> "$OUT/long.log"; stage_end skipped "$([ $GPU = 1 ] && echo 'no epoch time from the train stage or DRNET_DEVICE_EPOCH_S' || echo 'no GPU')"
  fi
fi

# ---------------------------------------------------------------------------------------------------
{
  echo
  echo "summary ($(($(date +%s) - T0)) s of a ${DEADLINE} s deadline; logs in $OUT: ${FILES[*]})"
  printf '  %-6s %-8s %6s  %s\n' stage status seconds note
  for i in "${!STAGES[@]}"; do printf '  %-6s %-8s %6s  %s\n' "${STAGES[$i]}" "${STATUS[$i]}" "${SECS[$i]}" "${NOTES[$i]}"; done
  # The command for a second call on the same machine (docs/DESIGN-NOTES.md, "A borrowed GPU"): the
  # stages that failed or did not fit, with what they need from this call. DEADLINE: the device
  # time left, less a minute.
  again=""
  for i in "${!STAGES[@]}"; do
    case "${STAGES[$i]}:${STATUS[$i]}:${NOTES[$i]}" in
      env:*|build:*|data:*|*:ok:*|*:skipped:"not in DRNET_DEVICE_STAGES"|*:skipped:"no GPU") ;;
      *) again+="${again:+ }${STAGES[$i]}" ;;
    esac
  done
  if [ -n "$again" ]; then
    per=$(epoch_seconds)
    echo "next call: DRNET_DEVICE_STAGES=\"$again\"${per:+ DRNET_DEVICE_EPOCH_S=$per}$(fast_proven && echo ' DRNET_DEVICE_FAST=1') DRNET_DEVICE_DEADLINE=<device seconds left - 60> bash tests/device/session.sh"
  fi
} | tee -a "$LOG"
if [ "$GPU" != 1 ]; then
  if [ $FAILED = 0 ]; then echo "no GPU here: rehearsal passed (every stage that needs no device ran); exit 3" | tee -a "$LOG"; exit 3; fi
  echo "no GPU here: rehearsal FAILED (see above)" | tee -a "$LOG"; exit 1
fi
[ $FAILED = 0 ] && { echo "all stages passed" | tee -a "$LOG"; exit 0; }
echo "some stage FAILED (see above)" | tee -a "$LOG"; exit 1
