#!/bin/bash
# Writes the CPU benchmark log: machine, commit, and the exact commands with their output.
#
#   bench/cpu_bench_log.sh BUILD_DIR [all|sweep|mobilenetv2] > docs/results/cpu-<date>.log
#
# Runs bench-gemm (GEMM against the measured FMA peak, 1 and 2 threads), bench-cpu (our training step
# against PyTorch's, NCHW and channels_last, batch 128, 2 threads; twice, the first with the per-layer
# profile) at the recommended g = 1, ours at the paper's g = 32, and the g sweep; mobilenetv2: bench-cpu
# --model mobilenetv2 and train --bench-steps at widths 1 and 0.5. Each command is preceded by the load
# and the busiest processes: on a shared 2-core machine a figure is only worth what that says.
set -u
build=${1:-build}
what=${2:-all}
src=$(cd "$(dirname "$0")/.." && pwd)

section() {
    echo
    echo "=================================================================================================="
    echo "$ $*"
    echo "--- load: $(cat /proc/loadavg); busiest processes over the last second:"
    top -b -n 2 -d 1 | awk '/^top -/ { frame++ } frame == 2' | sed -n '8,10p'
    echo "---"
    "$@" 2>&1
}

echo "CPU benchmark log, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) CPUs, $(lscpu | grep '^Flags' | grep -o 'avx512f' | head -1) $(lscpu | grep -o 'L2 cache:.*' | sed 's/  */ /g'), $(lscpu | grep -o 'L3 cache:.*' | sed 's/  */ /g')"
echo "hypervisor: $(lscpu | grep 'Hypervisor vendor' | sed 's/.*: *//')"
echo "commit: $(git -C "$src" rev-parse HEAD) ($(git -C "$src" log -1 --format=%s | cut -c1-80))"
echo "uncommitted changes under kernels/ bench/: $(git -C "$src" status --short -- kernels bench | wc -l)"
echo "compiler: $(gcc --version | head -1); build: cmake -B $build -S . && cmake --build $build -j2 (Release, -O3)"
echo "pytorch: $(/usr/bin/python3 -c 'import torch; print(torch.__version__, "oneDNN", torch.backends.mkldnn.is_available())' 2>&1)"

if [ "$what" = mobilenetv2 ]; then
    # MobileNetV2: our step against PyTorch's in one run, then the trainer's own step (real batches from
    # the loader) at widths 1 and 0.5, from which an epoch's time follows (390 full batches of 128).
    section "$build/bench-cpu" --model mobilenetv2 --dw-group 1 --batch 128 --threads 2 --steps 3 --reps 3 --warmup 2
    section "$build/train" mobilenetv2 cifar10 --device cpu --threads 2 --width 1 --bench-steps 3 --bench-repeats 3
    section "$build/train" mobilenetv2 cifar10 --device cpu --threads 2 --width 0.5 --bench-steps 3 --bench-repeats 3
    echo
    echo "end: $(date -u '+%H:%M UTC'), load $(cat /proc/loadavg)"
    exit 0
fi
if [ "$what" = all ]; then
    section "$build/bench-gemm" --reps 7
    section "$build/bench-cpu" --dw-group 1 --batch 128 --threads 2 --steps 5 --reps 5 --profile
    section "$build/bench-cpu" --dw-group 1 --batch 128 --threads 2 --steps 5 --reps 5
    section "$build/bench-cpu" --dw-group 32 --batch 128 --threads 2 --steps 5 --reps 3 --torch off
fi
section "$build/bench-cpu" --sweep-g --batch 128 --threads 2 --steps 5 --reps 5
echo
echo "end: $(date -u '+%H:%M UTC'), load $(cat /proc/loadavg)"
