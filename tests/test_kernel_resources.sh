#!/usr/bin/env bash
# Every CUDA kernel fits a launch of any block size: ptxas's register count for sm_90 is at most 64
# per thread (65536 registers per block at 1024 threads), its static shared memory is within 48 KiB,
# and nothing spills to local memory. On a GPU, a kernel over these limits fails at launch ("too many
# resources requested") or runs slowly; here it is caught at build time, without a GPU.
#   bash tests/test_kernel_resources.sh NVCC [FLAG...]   (e.g. -I/path/to/cudnn/include; skips with 77 without nvcc)
set -uo pipefail
NVCC=${1:-nvcc}
shift
FLAGS=("$@")
command -v "$NVCC" > /dev/null 2>&1 || { echo "skip: no nvcc ($NVCC)"; exit 77; }
cd "$(dirname "$0")/.." || exit 1
T=$(mktemp -d /tmp/drnet-ptxas-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0 kernels=0
for f in kernels/cuda/*.cu; do
  case $f in *cuda_nccl.cu) continue ;; esac # needs nccl.h; launches no kernel of its own
  if ! "$NVCC" -std=c++17 -O3 -arch=sm_90 -I. "${FLAGS[@]}" -Xptxas -v -c "$f" -o "$T/x.o" > "$T/log" 2>&1; then
    cat "$T/log"; echo "FAIL $f does not compile"; fail=1; continue
  fi
  # ptxas prints, per kernel: "Compiling entry function 'NAME' for 'sm_90'", then its stack/spill
  # line, then "Used N registers, ... M bytes smem".
  out=$(awk -v file="$f" '
    /Compiling entry function/ { match($0, /function .[^ ]*/); name = substr($0, RSTART + 10, RLENGTH - 11) }
    /spill stores/ { split($0, a, ","); gsub(/[^0-9]/, "", a[2]); spill = a[2] + 0 }
    /Used [0-9]+ registers/ {
      match($0, /Used [0-9]+ registers/); regs = substr($0, RSTART + 5, RLENGTH - 15) + 0
      smem = 0; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11) + 0
      bad = regs > 64 || smem > 49152 || spill > 0
      printf "%s %3d registers %6d bytes shared %4d bytes spilled  %s %s\n", bad ? "FAIL" : "ok  ", regs, smem, spill, file, name
    }' "$T/log" | c++filt -p)
  [ -n "$out" ] && echo "$out"
  kernels=$((kernels + $(grep -c . <<< "$out")))
  grep -q '^FAIL' <<< "$out" && fail=1
done
[ "$kernels" -ge 20 ] || { echo "FAIL: only $kernels kernels found in ptxas's report (expected every kernel)"; fail=1; }
[ $fail = 0 ] && echo "test_kernel_resources: $kernels kernels within the limits" || echo "test_kernel_resources: FAILED"
exit $fail
