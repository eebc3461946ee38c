#!/usr/bin/env bash
# The CPU GEMM micro-kernels and packers keep their accumulators and transposed blocks in registers:
# no `rep stos` (GCC turning an accumulator-zeroing loop into a memset of a stack array) and no call
# to memset in any of them. Each cost 5-17 % of its kernel when it crept in (docs/cpu-performance.md,
# "What the compiler kept in memory"), with the same results, so no numeric test sees it.
#   bash tests/test_cpu_kernel_codegen.sh LIBDRNET.a   (skips with 77 without objdump)
set -uo pipefail
LIB=$1
command -v objdump > /dev/null 2>&1 || { echo "skip: no objdump"; exit 77; }
[ -f "$LIB" ] || { echo "FAIL: no library $LIB"; exit 1; }
# Functions of the kernel objects (the ISA files), by name: the tiles, the one-row and dot forms,
# the packers.
objdump -d --no-show-raw-insn "$LIB" 2> /dev/null | awk '
  /^In archive/ || /file format/ { obj = $1 }
  /^[0-9a-f]+ <[^>]+>:$/ {
    fn = $2; gsub(/[<>:]/, "", fn)
    take = obj ~ /cpu_gemm_(avx512|avx512bf16|avx2)\.c\.o/ && fn ~ /(tile|threes|^dot|pairs|transpose)/
    if (take) { seen++; names[fn] = 1 }
    next
  }
  take && (/rep stos/ || /call.*memset/) { bad[fn]++ }
  END {
    n = 0
    for (f in bad) { printf "FAIL %s: %d memset-like instruction(s) (rep stos / call memset)\n", f, bad[f]; n++ }
    printf "%d kernel functions checked, %d with a memset\n", length(names), n
    if (length(names) < 20) { print "FAIL: expected the kernel objects in the library (found too few functions)"; exit 1 }
    exit n > 0
  }'
