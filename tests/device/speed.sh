#!/usr/bin/env bash
# Our training step against PyTorch's on the same machine, side by side, in one table:
#   ours    train --bench-steps: the defaults (on CUDA: --gpu-data on, --cuda-graph on, batch-norm
#           statistics split over many blocks, depthwise g = 1), --precision bf16 (bf16 mixed
#           precision), then each default undone in turn to show what it is worth:
#           DRNET_CUDA_POINTWISE=cudnn (no 1x1 convolution as one GEMM), --dw-group 32 (the paper's g),
#           --gpu-data off --cuda-graph off (eager steps fed by the CPU loader); BN_BLOCK in a config
#           list means DRNET_CUDA_BN_SPLIT=0 (one block per channel)
#   PyTorch tests/reference/bench_train_torch.py: eager NCHW, eager channels_last, torch.compile,
#           torch.compile(mode="max-autotune") if it compiles in time; then eager NCHW and
#           channels_last under torch.autocast(bfloat16), beside our bf16 row
#   peaks   tests/reference/gpu_peaks.py: the device's copy bandwidth and TF32 matmul rate, for the
#           share of the machine each row's step achieves
# all MobileNet-CIFAR width 1, batch 128, TF32 on for convolutions, medians of 5 timed runs.
#
#   bash tests/device/speed.sh SECONDS [LOG]
# SECONDS: the deadline for the whole script (every command runs under `timeout`, none past it).
# Output goes to stdout (the device session appends it to its speed.log); the script writes no file
# of its own under $OUT. Environment: BUILD (the build folder, default build-gpu), PY (a python with
# PyTorch; default python3), GPU (1: a GPU is present; default: ask nvidia-smi), CIFAR10_PATH.
# Without a GPU it rehearses on the CPU with tiny sizes (our side with --gpu-data, PyTorch eager), so
# that the script and the table cannot rot. DRNET_SPEED_TINY=1 takes the tiny sizes on the GPU too,
# without PyTorch (the CUDA emulator's test runs it so). Exit: 0 when our side and at least one
# PyTorch mode ran (a rehearsal without PyTorch: our side alone).
#
# Graph capture: a configuration with --cuda-graph on whose capture fails in the default mode
# (global) is retried with DRNET_CUDA_CAPTURE_MODE=thread-local, then relaxed; the log and the
# table say which mode ran. PyTorch's commands run with the environment's own LD_LIBRARY_PATH
# ("${TORCH_ENV[@]}", tests/device/lib.sh), not the one our programs get.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
keep_ld_path
T0=$(date +%s)
LIMIT=${1:?usage: speed.sh SECONDS [LOG]}
BUILD=${BUILD:-build-gpu}
PY=${PY:-python3}
if [ -z "${GPU:-}" ]; then
  GPU=0
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU ' && GPU=1
fi
left() { echo $((LIMIT - ($(date +%s) - T0))); }
BENCH=$(mktemp /tmp/drnet-speed-XXXXXX) # the BENCH lines, for the table (removed at exit)
trap 'rm -f "$BENCH" "$BENCH.last"' EXIT

# go CAP CMD...: runs CMD under `timeout` of at most CAP seconds and never past the deadline; its
# output goes to stdout and its BENCH lines also to $BENCH.
go() {
  local cap=$1; shift
  local rest; rest=$(( $(left) - 3 ))
  [ "$cap" -gt "$rest" ] && cap=$rest
  if [ "$cap" -lt 5 ]; then echo "\$ $*  -- not started: the deadline is reached"; return 124; fi
  echo "\$ $*    (limit $cap s)"
  timeout -k 5 "$cap" "$@" 2>&1 | tee -a "$BENCH.all" | grep -v '^BENCH ' ; local rc=${PIPESTATUS[0]}
  grep -E '^(BENCH|PEAK) ' "$BENCH.all" >> "$BENCH"; mv -f "$BENCH.all" "$BENCH.last"
  [ "$rc" = 124 ] && echo "(timed out after $cap s)"
  echo "(exit $rc)"
  return "$rc"
}

echo "speed: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), deadline ${LIMIT} s, build $BUILD, python $PY, GPU $GPU"
if [ "$GPU" = 1 ] && [ "${DRNET_SPEED_TINY:-0}" = 1 ]; then
  echo "gpu: tiny sizes (DRNET_SPEED_TINY=1; the numbers mean nothing), our side only"
  dev=(--device cuda --width 0.125 --batch 16 --limit-train 64 --limit-test 32 --threads 2)
  ours_steps=(--bench-steps 2 --bench-repeats 2)
  configs=("--gpu-data on --cuda-graph on")
  modes=none
  cap=120
elif [ "$GPU" = 1 ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
  dev=(--device cuda)
  ours_steps=(--bench-steps 100 --bench-repeats 5)
  # PyTorch eager is host-bound and speeds up over its first hundred steps (GPU clocks, allocator):
  # a longer warm-up than ours, so that its median is its steady state.
  torch_args=(--device cuda --warmup 50 --steps 100 --repeats 5 --compile-timeout 90)
  # Most informative first: the deadline may cut the list short. "" is the defaults.
  # (BN_BLOCK, the one-block-per-channel batch norm, was measured in both H200 sessions: 1.37x and 1.35x
  # slower; left out so that the PyTorch rows keep their time.)
  configs=("" "PW_CUDNN" "--dw-group 32" "--precision bf16" "--gpu-data off --cuda-graph off")
  modes=eager,channels_last,compile,max-autotune
  cap=45
else
  echo "gpu: none: a CPU rehearsal with tiny sizes (the numbers mean nothing)"
  dev=(--device cpu --width 0.25 --batch 16 --limit-train 256 --limit-test 64)
  ours_steps=(--bench-steps 2 --bench-repeats 2)
  torch_args=(--device cpu --width 0.25 --batch 16 --warmup 1 --steps 2 --repeats 2 --threads 2)
  configs=("--gpu-data off" "--gpu-data on" "--gpu-data off --precision bf16")
  modes=eager
  cap=60
fi
if [ ! -x "$BUILD/train" ]; then echo "speed: no $BUILD/train: build first"; exit 1; fi

# A graph capture that failed in this mode (the message names DRNET_CUDA_CAPTURE_MODE), in the
# output of the last `go`, which tee kept in $BENCH.last.
capture_failed() { grep -q 'DRNET_CUDA_CAPTURE_MODE=' "$BENCH.last" 2>/dev/null; }

ours_ok=0
for c in "${configs[@]}"; do
  split=1 pw=auto # the defaults; BN_BLOCK: the one-block-per-channel kernels; PW_CUDNN: 1x1 convolutions by cuDNN only
  case $c in BN_BLOCK*) split=0; c=${c#BN_BLOCK} ;; PW_CUDNN*) pw=cudnn; c=${c#PW_CUDNN} ;; esac
  ok=0
  # shellcheck disable=SC2086
  if DRNET_CUDA_POINTWISE=$pw DRNET_CUDA_BN_SPLIT=$split go "$cap" "$BUILD/train" mobilenet cifar10 "${dev[@]}" $c "${ours_steps[@]}"; then
    ok=1
  elif case " $c " in *" --cuda-graph off "*) false ;; *) capture_failed ;; esac; then
    # The capture failed in the default mode: the other modes, in order of strictness.
    for mode in thread-local relaxed; do
      echo "speed: the graph capture failed in mode ${tried:-global}; retrying with DRNET_CUDA_CAPTURE_MODE=$mode"
      tried=$mode
      # shellcheck disable=SC2086
      if DRNET_CUDA_CAPTURE_MODE=$mode DRNET_CUDA_POINTWISE=$pw DRNET_CUDA_BN_SPLIT=$split go "$cap" "$BUILD/train" mobilenet cifar10 "${dev[@]}" $c "${ours_steps[@]}"; then
        ok=1
        echo "speed: graph capture works in mode $mode (not in the default, global): the row says so"
        # The row's BENCH line (the last one) records the mode.
        sed -i "\$ s/^BENCH {/BENCH {\"capture_mode\": \"$mode\", /" "$BENCH"
        break
      fi
      capture_failed || break # failed for another reason: no other mode will help
    done
    [ $ok = 0 ] && echo "speed: the graph capture failed in every mode (global, thread-local, relaxed): see above"
    unset tried
  fi
  if [ $ok = 1 ]; then
    ours_ok=1
  else # a row that says so, in the table too
    gd=$([ "$GPU" = 1 ] && echo true || echo false) cg=$gd # the defaults: on with CUDA
    case " $c " in *" --gpu-data on "*) gd=true ;; *" --gpu-data off "*) gd=false ;; esac
    case " $c " in *" --cuda-graph on "*) cg=true ;; *" --cuda-graph off "*) cg=false ;; esac
    echo "BENCH {\"impl\": \"drnet\", \"status\": \"failed\", \"note\": \"see the output above\", \"gpu_data\": $gd, \"cuda_graph\": $cg, \"bn_split\": $([ $split = 1 ] && echo true || echo false), \"pointwise\": \"$pw\"}" >> "$BENCH"
  fi
done

torch_ok=0 torch_there=0
[ "$modes" != none ] && "${TORCH_ENV[@]}" "$PY" -c 'import torch' 2>/dev/null && torch_there=1
if [ "$torch_there" = 1 ]; then
  # The device's measured best (copy bandwidth, TF32 matmul rate), for the table's fraction columns.
  go 30 "${TORCH_ENV[@]}" "$PY" tests/reference/gpu_peaks.py --device "${dev[1]}"
  rest=$(( $(left) - 10 ))
  go "$rest" "${TORCH_ENV[@]}" "$PY" tests/reference/bench_train_torch.py "${torch_args[@]}" --modes "$modes" --deadline $((rest - 5)) && torch_ok=1
  # PyTorch's bf16 (autocast) beside our bf16 row, in the eager layouts, with what time is left.
  rest=$(( $(left) - 10 ))
  if [ "$rest" -ge 20 ]; then
    go "$rest" "${TORCH_ENV[@]}" "$PY" tests/reference/bench_train_torch.py "${torch_args[@]}" --modes eager,channels_last --autocast bf16 --deadline $((rest - 5))
  else
    echo "speed: no time left for PyTorch's autocast bf16 rows"
  fi
else
  echo "speed: $PY has no PyTorch: the PyTorch side is skipped"
fi

# The table: every BENCH line, ours and PyTorch's, with the ratio to PyTorch's best eager mode.
echo
TPY=$PY; "$TPY" -c 'import json' 2>/dev/null || TPY=python3
"$TPY" - "$BENCH" <<'EOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
rows = [json.loads(l[6:]) for l in lines if l.startswith("BENCH ")]
peaks = [json.loads(l[5:]) for l in lines if l.startswith("PEAK ")]
peak = peaks[-1] if peaks else {}
# The step's work is the model's, the same for every row: FLOP as the model defines them (DR's extra
# executed work not counted) and the least bytes the layers and the optimizer must move.
work = next((r for r in rows if r.get("impl") == "drnet" and "flop_model" in r), None)
ok = [r for r in rows if r.get("status", "ok") == "ok" and "img_per_s" in r]
# The ratios are to PyTorch's FP32 (TF32 convolutions) figures; its autocast rows stand beside ours in bf16.
eager = [r["img_per_s"] for r in ok if r.get("impl") == "torch" and r.get("mode") in ("eager", "channels_last")
         and r.get("autocast", "off") != "bf16"]
comp = [r["img_per_s"] for r in ok if r.get("impl") == "torch" and r.get("mode") in ("compile", "max-autotune")]
best_eager, best_comp = (max(eager) if eager else None), (max(comp) if comp else None)
def machine(ms):
    """TFLOP/s and least GB/s of a step taking ms, with their shares of the measured peaks."""
    if not work or ms <= 0:
        return "- | -"
    tf, gb = work["flop_model"] / ms / 1e9, work["bytes_least"] / ms / 1e6
    tfp = f" ({100 * tf / peak['matmul_tflop_s']:.1f} %)" if peak.get("matmul_tflop_s") else ""
    gbp = f" ({100 * gb / peak['copy_gb_s']:.1f} %)" if peak.get("copy_gb_s") else ""
    return f"{tf:.2f}{tfp} | {gb:.0f}{gbp}"
print("| implementation | img/s | ms/step | vs PyTorch eager (best layout) | vs torch.compile (best) "
      "| TFLOP/s (% of matmul peak) | least GB/s (% of copy bandwidth) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    if r.get("impl") == "drnet":
        name = f"drnet, gpu-data {'on' if r['gpu_data'] else 'off'}, cuda-graph {'on' if r['cuda_graph'] else 'off'}"
        name += f", capture mode {r['capture_mode']}" if r.get("capture_mode") else ""
        if r.get("device") == "cuda":
            name += ", BN split" if r.get("bn_split") else ", BN one block per channel"
            name += ", 1x1 convs by cuDNN only" if r.get("pointwise") == "cudnn" else ""
        name += f", g = {r['dw_group']}" if r.get("dw_group") else ""
        name += ", bf16 mixed precision" if r.get("precision") == "bf16" else ""
    else:
        name = f"PyTorch {r.get('torch', '')} {r.get('mode')}".replace("  ", " ")
        name += ", autocast bf16" if r.get("autocast") == "bf16" else ""
    if r in ok:
        v = r["img_per_s"]
        e = f"{v / best_eager:.2f}x" if best_eager else "-"
        c = f"{v / best_comp:.2f}x" if best_comp else "-"
        print(f"| {name} | {v:.0f} | {r['median_ms']:.3f} | {e} | {c} | {machine(r['median_ms'])} |")
    else:
        note = str(r.get("note", "")).replace("|", "/")  # a '|' would split the table's cell
        print(f"| {name} | - | - | {r.get('status')}: {note} | | | |")
if work:
    print(f"\nper step (batch {work['batch']}): {work['flop_model'] / 1e9:.2f} GFLOP as the model defines them "
          f"({work['flop_executed'] / 1e9:.2f} executed by ours, DR included); at least "
          f"{work['bytes_least'] / 1e6:.0f} MB moved (each layer's inputs read and outputs written once per "
          "pass, and the optimizer's 24 bytes per parameter)")
if peak:
    print(f"measured peaks on {peak['device']} (PyTorch {peak['torch']}): device-to-device copy "
          f"{peak['copy_gb_s']} GB/s (read + write, {peak['copy_mib']} MiB), {peak['matmul_precision']} "
          f"matmul {peak['matmul_tflop_s']} TFLOP/s (n = {peak['matmul_n']})")
else:
    print("measured peaks: none (tests/reference/gpu_peaks.py did not run)")
EOF
echo
echo "speed: done in $(( $(date +%s) - T0 )) s (ours ran: $ours_ok, PyTorch ran: $torch_ok)"
# A CPU rehearsal may lack PyTorch (CI does not install it): then our side alone must have run.
[ "$GPU" = 0 ] && [ "$torch_there" = 0 ] && torch_ok=1
[ "$modes" = none ] && torch_ok=1 # DRNET_SPEED_TINY: our side alone
[ "$ours_ok" = 1 ] && [ "$torch_ok" = 1 ]
