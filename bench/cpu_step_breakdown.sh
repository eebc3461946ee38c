#!/bin/bash
# Where a CPU training step goes, ours and PyTorch's side by side, by kind of layer: the 1x1
# convolutions, the depthwise layers, the stem, batch norm with ReLU, and the rest.
#
#   CIFAR10_PATH=... bench/cpu_step_breakdown.sh BUILD_DIR [ROUNDS] > docs/results/cpu-step-breakdown-<date>.log
#
# Each round runs, in this order: ours in FP32, PyTorch 1.13 channels_last in FP32, ours in bf16,
# PyTorch under torch.autocast bf16 (batch 128, 2 threads, MobileNet-CIFAR width 1, g = 1). Ours:
# `train --profile` (each layer timed on its own, summed here by kind); PyTorch's:
# tests/reference/profile_train_torch.py (the operators' self time under torch.profiler, which adds
# a cost of its own to every call: compare the kinds in proportion). Speed only: no figure here is
# a test. Each command is preceded by the load: on a shared machine a figure is only worth what that
# says.
set -u
build=${1:-build}
rounds=${2:-1}
src=$(cd "$(dirname "$0")/.." && pwd)

section() {
    echo
    echo "=================================================================================================="
    echo "$ $*"
    echo "--- load: $(cat /proc/loadavg)"
}

# Our profile table summed by kind (MobileNet's layer names: conv1 is the stem).
ours() {
    local cmd=("$build/train" mobilenet cifar10 --device cpu --threads 2 --dw-group 1 --batch 128 --precision "$1"
        --profile --profile-steps 10)
    section "${cmd[@]}"
    "${cmd[@]}" 2>&1 | awk '
        $2 == "conv2d" && $1 == "conv1" { k = "stem" }
        $2 == "conv2d" && $1 != "conv1" { k = "1x1" }
        $2 == "depthwise" { k = "depthwise" }
        $2 ~ /^batchnorm/ { k = "bn+relu" }
        $2 ~ /^(linear|avgpool|cross_entropy|add|relu)$/ { k = "other" }
        k != "" && $5 ~ /^[0-9.]+$/ { f[k] += $5; b[k] += $6; all += $5 + $6 }
        $1 == "optimizer" { o = $4; all += o }
        /^measured step/ || /^profiler overhead/ || /^total of the layers/ { print }
        { k = "" }
        END {
            printf "milliseconds per step, each layer timed on its own (other: pooling, classifier, loss, SGD)\n"
            printf "%-10s %8s %8s %8s %7s\n", "kind", "fwd ms", "bwd ms", "total", "share"
            n = split("1x1 depthwise stem bn+relu", ks, " ")
            for (i = 1; i <= n; i++)
                printf "%-10s %8.2f %8.2f %8.2f %6.1f%%\n", ks[i], f[ks[i]], b[ks[i]], f[ks[i]] + b[ks[i]],
                       100 * (f[ks[i]] + b[ks[i]]) / all
            printf "%-10s %8s %8s %8.2f %6.1f%%\n", "other", "-", "-", f["other"] + b["other"] + o,
                   100 * (f["other"] + b["other"] + o) / all
            printf "%-10s %8s %8s %8.2f\n", "all", "", "", all
        }'
}

theirs() { # (the log names the script as the repository does, not where this clone lives)
    section /usr/bin/python3 tests/reference/profile_train_torch.py --threads 2 --autocast "$1"
    /usr/bin/python3 "$src/tests/reference/profile_train_torch.py" --threads 2 --autocast "$1" 2>&1
}

echo "CPU training-step breakdown, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) CPUs, flags: $(grep -o -w 'avx512f\|avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "hypervisor: $(lscpu | grep 'Hypervisor vendor' | sed 's/.*: *//')"
echo "commit: $(git -C "$src" rev-parse HEAD) ($(git -C "$src" log -1 --format=%s | cut -c1-80))"
for r in $(seq 1 "$rounds"); do
    ours fp32
    theirs off
    ours bf16
    theirs bf16
done
