#!/usr/bin/env bash
# CPU scaling of data-parallel training: one process against two MPI processes on the same global
# batch (128, width 1, real data, loader included), each configuration twice, alternating. The
# img/s is the trainer's own figure for the training epoch (evaluation excluded).
#   CIFAR10_PATH=cifar-10-binary.tar.gz bash bench/bench_dist.sh [BUILD_DIR] > docs/results/cpu-dist-scaling.log
set -u
build=${1:-build}
train="$build/train"
common="mobilenet cifar10 --device cpu --batch 128 --epochs 1 --limit-train 3840 --limit-test 128"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!docs' || echo ' (with uncommitted changes)')"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
echo "data: $(basename "${CIFAR10_PATH:-unset}") (CIFAR-10, JPEG round-trip copy)"
echo "mpi: $(mpirun --version 2>&1 | head -1)"
run() { # run LABEL CMD...: prints the command, the load before it, and the trainer's summary lines
  local label=$1; shift
  echo
  echo "== $label   (load before: $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "\$ $*"
  "$@" 2>&1 | grep -E "^(parallel|micro-batches|epoch 1/1:)|error" | sed 's/^/  /'
}
for round in 1 2; do
  run "1 process, 1 thread" "$train" $common --threads 1
  run "1 process, 2 threads" "$train" $common --threads 2
  run "1 process, 2 threads, --accum-steps 2 (the arithmetic of 2 processes)" "$train" $common --threads 2 --accum-steps 2
  run "2 processes (mpirun), 1 thread each" mpirun -np 2 --bind-to core "$train" $common --threads 1
done
