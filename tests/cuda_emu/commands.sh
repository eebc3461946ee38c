#!/usr/bin/env bash
# The GPU session's own command lines (tests/device/session.sh and speed.sh), at tiny sizes, on the
# CUDA emulator: a flag combination the trainer refuses, or a path only these commands reach (the
# profiler and --dw-group auto on CUDA, graph capture inside the real trainer, a checkpoint written
# from device memory and resumed) fails here instead of during the few minutes of a lent GPU.
#
#   bash tests/cuda_emu/commands.sh TRAIN BENCH_DEPTHWISE   (programs of a -DDRNET_CUDA_EMU=ON build)
# Needs CIFAR10_PATH (ctest test_emu_commands sets it); exits 77 (skip) without it, or fails under
# DRNET_REQUIRE_GPU=1 (a GPU test that cannot run fails there, whatever the reason).
set -uo pipefail
TRAIN=${1:?usage: commands.sh TRAIN BENCH_DEPTHWISE}
BENCH=${2:?usage: commands.sh TRAIN BENCH_DEPTHWISE}
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${CIFAR10_PATH:-}" ] || [ ! -r "$CIFAR10_PATH" ]; then
  if [ -n "${DRNET_REQUIRE_GPU:-}" ] && [ "$DRNET_REQUIRE_GPU" != 0 ]; then
    echo "FAIL commands.sh: DRNET_REQUIRE_GPU is set but CIFAR10_PATH is not set to a readable CIFAR-10 archive"; exit 1
  fi
  echo "skip: no CIFAR10_PATH"; exit 77
fi
TRAIN=$(realpath "$TRAIN") BENCH=$(realpath "$BENCH")
T=$(mktemp -d /tmp/drnet-emu-XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1 # run folders (runs/) go here, not into the checkout
small=(--width 0.125 --batch 16 --limit-train 64 --limit-test 32 --threads 2)

# run CMD...: prints the command and the last lines of its output; on failure all of it, then exits 1.
run() {
  echo "\$ $*"
  "$@" > "$T/out" 2>&1
  local rc=$?
  if [ $rc != 0 ]; then cat "$T/out"; echo "FAILED (exit $rc): $*"; exit 1; fi
  tail -n 2 "$T/out" | sed 's/^/    /'
}

# train: the 3-epoch stage's command (the session's flags, fewer images), stopped after 3 steps and
# resumed from its checkpoint to the end.
run "$TRAIN" mobilenet cifar10 --device cuda --epochs 2 "${small[@]}" --log "$T/train.jsonl" --checkpoint "$T/a.ckpt" \
    --out "$T/run" --max-steps 3
run "$TRAIN" mobilenet cifar10 --device cuda --epochs 2 "${small[@]}" --resume "$T/a.ckpt" --max-steps 0
# bench: the depthwise benchmark (with its direct-kernel baseline), TF32 on and off; the profiler.
run "$BENCH" --device cuda --reps 1 --batch 1
run "$BENCH" --device cuda --reps 1 --batch 1 --tf32 off
run "$TRAIN" mobilenet cifar10 --device cuda "${small[@]}" --profile --profile-steps 2 --profile-json "$T/profile.json"
run "$TRAIN" mobilenet cifar10 --device cuda "${small[@]}" --dw-group auto --profile --profile-steps 2
# speed: every configuration speed.sh times: the defaults, --dw-group 32, the one-block batch norm, eager.
for c in "" "--dw-group 32" "--gpu-data off --cuda-graph off" "--gpu-data on --cuda-graph off"; do
  # shellcheck disable=SC2086
  run "$TRAIN" mobilenet cifar10 --device cuda "${small[@]}" $c --bench-steps 2 --bench-repeats 2
done
run env DRNET_CUDA_BN_SPLIT=0 "$TRAIN" mobilenet cifar10 --device cuda "${small[@]}" --bench-steps 2 --bench-repeats 2
# The CUDA defaults, as measured on the first GPU run: device batches, graph replay, batch-norm split, g = 1.
"$TRAIN" mobilenet cifar10 --device cuda "${small[@]}" --bench-steps 2 --bench-repeats 1 > "$T/auto.out" 2>&1
if ! grep -q '"device": "cuda", "gpu_data": 1, "cuda_graph": 1, "bn_split": 1, "pointwise": "auto", "dw_group": "1"' "$T/auto.out" ||
   ! grep -q '^step: batches built on the device (--gpu-data on), replayed as a CUDA graph' "$T/auto.out"; then
  cat "$T/auto.out"; echo "FAILED: --device cuda without flags must default to --gpu-data on --cuda-graph on, split, g = 1"; exit 1
fi
echo "ok: --device cuda defaults to device batches, graph replay, batch-norm split and g = 1"
# Graph capture modes: each one captures; a capture that fails (the emulator fails the global mode's on
# request) says how to select another mode; speed.sh then retries with the others and says so.
for mode in thread-local relaxed; do
  run env DRNET_CUDA_CAPTURE_MODE=$mode "$TRAIN" mobilenet cifar10 --device cuda "${small[@]}" --gpu-data on \
      --cuda-graph on --bench-steps 2 --bench-repeats 1
done
DRNET_EMU_CAPTURE_FAILS=global "$TRAIN" mobilenet cifar10 --device cuda "${small[@]}" --gpu-data on --cuda-graph on \
    --bench-steps 2 --bench-repeats 1 > "$T/capture.out" 2>&1
rc=$?
if [ $rc = 0 ] || ! grep -q 'DRNET_CUDA_CAPTURE_MODE=thread-local or relaxed' "$T/capture.out"; then
  cat "$T/capture.out"; echo "FAILED: a failed global-mode capture (exit $rc) must stop and name DRNET_CUDA_CAPTURE_MODE"; exit 1
fi
echo "ok: a failed global-mode capture exits $rc naming DRNET_CUDA_CAPTURE_MODE"
DRNET_CUDA_CAPTURE_MODE=bogus "$TRAIN" mobilenet cifar10 --device cuda "${small[@]}" --max-steps 1 > "$T/bogus.out" 2>&1
if ! grep -q 'DRNET_CUDA_CAPTURE_MODE=bogus: expected global' "$T/bogus.out"; then
  cat "$T/bogus.out"; echo "FAILED: DRNET_CUDA_CAPTURE_MODE=bogus must be refused by name"; exit 1
fi
GPU=1 DRNET_SPEED_TINY=1 DRNET_EMU_CAPTURE_FAILS=global BUILD=$(dirname "$TRAIN") \
  bash "$here/../device/speed.sh" 300 > "$T/speed.out" 2>&1
rc=$?
if [ $rc != 0 ] || ! grep -q 'graph capture works in mode thread-local' "$T/speed.out" ||
   ! grep -qE 'cuda-graph on, capture mode thread-local[,|]' "$T/speed.out"; then
  cat "$T/speed.out"; echo "FAILED: speed.sh must fall back to another capture mode and say so (exit $rc)"; exit 1
fi
echo "ok: speed.sh fell back to capture mode thread-local and its table says so"
# long: the fast path over two epochs (a short last batch runs eagerly between replays), with a checkpoint.
run "$TRAIN" mobilenet cifar10 --device cuda --epochs 2 --width 0.125 --batch 24 --limit-train 64 --limit-test 32 \
    --threads 2 --gpu-data on --cuda-graph on --checkpoint "$T/long.ckpt" --log "$T/long.jsonl"
echo "commands.sh: every GPU-session command ran on the CUDA emulator"
