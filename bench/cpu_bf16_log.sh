#!/bin/bash
# Writes the bf16 CPU benchmark log: FP32 against bf16 mixed precision, ours and PyTorch's, with the
# machine, commit, load and exact commands.
#
#   CIFAR10_PATH=... bench/cpu_bf16_log.sh BUILD_DIR [ROUNDS] > docs/results/cpu-bf16-<date>.log
#
# bench-gemm --bf16 (the GEMM shapes, FP32 and bf16 side by side), bench-depthwise in FP32 and bf16
# (the depthwise layers, where bf16 costs the rounding and gains nothing), then ROUNDS (default 2)
# rounds of `train --bench-steps` in fp32 and bf16 alternating (batch 128, 2 threads, g = 1: the same step as
# bench-cpu; on a CPU with AMX also bf16 on its tile kernel, DRNET_CPU_AMX=1), PyTorch 1.13
# (bench_train_torch.py, both layouts: NCHW and channels_last, FP32 and torch.autocast bf16), and a
# real one-epoch-slice run of ./train in bf16 for the throughput with the data loader. Speed only: no
# figure here is a test. Each command is preceded by the load: on a shared machine a figure is only
# worth what that says.
set -u
build=${1:-build}
rounds=${2:-2}
src=$(cd "$(dirname "$0")/.." && pwd)
train=$build/train

section() {
    echo
    echo "=================================================================================================="
    echo "$ $*"
    echo "--- load: $(cat /proc/loadavg)"
    "$@" 2>&1
}

echo "CPU bf16 benchmark log, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) CPUs, flags: $(grep -o -w 'avx512f\|avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "hypervisor: $(lscpu | grep 'Hypervisor vendor' | sed 's/.*: *//')"
echo "commit: $(git -C "$src" rev-parse HEAD) ($(git -C "$src" log -1 --format=%s | cut -c1-80))"
echo "compiler: $(gcc --version | head -1)"

# AMX: the CPU's flag (Linux must still grant the tile state: the device line says what ran)
amx=$(grep -q -w amx_bf16 /proc/cpuinfo && echo 1 || echo 0)

section "$build/bench-gemm" --threads 2 --bf16 --reps 5 # (with the AMX kernel's columns where the CPU has it)
for p in fp32 bf16; do # the depthwise layers (DR at g = 1), where bf16 only adds rounding
    section "$build/bench-depthwise" --groups 1 --reps 10 --precision $p
done
for r in $(seq 1 "$rounds"); do
    for p in fp32 bf16; do
        section "$train" mobilenet cifar10 --device cpu --threads 2 --dw-group 1 --batch 128 --precision $p \
            --bench-steps 10 --bench-repeats 5
    done
    if [ "$amx" = 1 ]; then
        section env DRNET_CPU_AMX=1 "$train" mobilenet cifar10 --device cpu --threads 2 --dw-group 1 --batch 128 \
            --precision bf16 --bench-steps 10 --bench-repeats 5
    fi
    for ac in off bf16; do
        section /usr/bin/python3 "$src/tests/reference/bench_train_torch.py" --device cpu --threads 2 \
            --modes eager,channels_last --batch 128 --warmup 3 --steps 5 --repeats 3 --run-timeout 400 --autocast $ac |
            sed "s#$src/##g" # the log names files as the repository does, not where this clone lives
    done
done
# The real trainer with its data loader on the same two cores: 60 steps of 128 images.
out=$(mktemp -d)
section "$train" mobilenet cifar10 --device cpu --threads 2 --dw-group 1 --precision bf16 --epochs 1 \
    --limit-train 7680 --limit-test 512 --out "$out/run" | sed "s#$out#<scratch>#g"
rm -rf "$out"
