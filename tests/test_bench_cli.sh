#!/usr/bin/env bash
# The benchmarks' command lines: --help exits 0, an unknown flag 2 with the usage, and a value that is
# not what its flag takes (a typo such as "12O", out of range, not on/off) exits 2 naming the flag and
# the value, before anything is timed.
# Usage: test_bench_cli.sh BENCH-CPU BENCH-DEPTHWISE BENCH-GEMM
set -u
. "$(dirname "$0")/lib.sh"
scratch bench-cli

# Each bad value comes with flags that keep the benchmark short, so that a value accepted by mistake
# fails the test in seconds (the benchmark runs and exits 0) rather than at its time limit.
quick_cpu="--steps 1 --reps 1 --warmup 0 --torch off"
train=$1 # `expect` runs $train
expect 0 "usage:" --help
expect 2 "usage:" --bogus
expect 2 "error: --batch 12O: expected an integer in 2..65536 (see bench-cpu --help)" --batch 12O $quick_cpu
expect 2 "error: --reps 33: expected an integer in 1..32" --reps 33 --batch 2 --steps 1 --warmup 0 --torch off
expect 2 "error: --width 0: expected a number" --width 0 $quick_cpu
expect 2 "error: --model resnet: expected mobilenet, mobilenetv2 (see bench-cpu --help)" --model resnet $quick_cpu
train=$2
expect 0 "usage: bench-depthwise" --help
expect 2 "error: --tf32 maybe: expected on or off (see bench-depthwise --help)" --tf32 maybe --batch 1 --reps 1
expect 2 "error: --precision fp16: expected fp32 or bf16 (see bench-depthwise --help)" --precision fp16 --batch 1 --reps 1
expect 2 "error: --batch 0: expected an integer" --batch 0 --reps 1
expect 2 "error: --reps x: expected an integer" --reps x --batch 1
expect 2 "error: --groups 3,C: expected a comma-separated list of 1, 2, 4, 8, 16, 32, 64 and C" --groups 3,C --batch 1 --reps 1
expect 2 "error: --groups ,: expected a comma-separated list" --groups , --batch 1 --reps 1
expect 2 "error: --model resnet: expected mobilenet, mobilenetv2 (see bench-depthwise --help)" --model resnet --batch 1 --reps 1
train=$3
expect 0 "usage:" --help
expect 2 "error: --threads 2x: expected an integer in 1..1024 (see bench-gemm --help)" --threads 2x --reps 1
expect 2 "error: --bf16-also amx3: expected amx, amx-emulated, avx512bf16 or generic, one this CPU runs (see bench-gemm --help)" --bf16 --bf16-also amx3 --reps 1 --threads 1
expect 2 "error: --bf16-also generic: needs --bf16 (see bench-gemm --help)" --bf16-also generic --reps 1 --threads 1
finish test_bench_cli
