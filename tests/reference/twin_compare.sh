#!/usr/bin/env bash
# ./train against its PyTorch twin (train_torch.py) on the whole of CIFAR-10: for each seed, the twin
# trains from PyTorch's initialisation and ./train from the same weights (--init), both on the same
# batches with the same recipe, EPOCHS epochs (cosine over the run); then one table of the test
# accuracy per epoch. Two correct implementations part after the first steps (float32 rounding at
# this network's initialisation is amplified), so the seeds show how far apart runs of one
# implementation fall, and the two columns of a seed whether ./train trains as PyTorch does.
# Needs PyTorch (/usr/bin/python3 or $DRNET_PYTHON) and CIFAR-10 where ./train finds it. About
# 14 minutes per seed at 3 epochs on 2 cores (12 with TWIN_LAYOUT=channels_last).
# PyTorch runs in NCHW by default: PyTorch 1.13's channels_last batch norm on the CPU sums its
# statistics less accurately (about 40 times float32's rounding per layer, measured), which at this
# network's initialisation puts its gradients about 11% from float64 against about 1% for NCHW and
# for ./train (tests/reference/twin_steps.sh shows the consequence step by step).
# Usage: twin_compare.sh PATH-TO-TRAIN EPOCHS SEED... (threads: $THREADS, default 2; TWIN_KEEP=DIR
# keeps each seed's two JSON-lines logs there; TWIN_LAYOUT=channels_last runs PyTorch in channels_last,
# faster and less accurate)
set -euo pipefail
train=$1 epochs=$2
shift 2
py=${DRNET_PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
threads=${THREADS:-2}
case ${TWIN_LAYOUT:-nchw} in
  nchw) layout=() ;;
  channels_last) layout=(--channels-last) ;;
  *) echo "error: TWIN_LAYOUT=$TWIN_LAYOUT: nchw or channels_last" >&2; exit 2 ;;
esac
work=$(mktemp -d /tmp/drnet-twin-XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "commit $(git -C "$here" rev-parse --short HEAD)$(git -C "$here" diff --quiet HEAD -- . || echo ' (modified)'), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "PyTorch layout: ${TWIN_LAYOUT:-nchw}"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $(free -g | awk '/^Mem/ {print $2}') GiB"
for seed in "$@"; do
  cmd=("$py" "$here/train_torch.py" --epochs "$epochs" --seed "$seed" --threads "$threads" "${layout[@]}"
       --init-out "$work/init$seed.ckpt" --log "$work/torch$seed.jsonl")
  echo; echo "\$ ${cmd[*]}"
  "${cmd[@]}"
  cmd=("$train" mobilenet cifar10 --device cpu --epochs "$epochs" --seed "$seed" --threads "$threads"
       --init "$work/init$seed.ckpt" --out "$work/ours$seed")
  echo; echo "\$ ${cmd[*]}"
  "${cmd[@]}" | grep -E '^(device|weights|data|model|recipe|summary|  test accuracy|epoch [0-9]+/[0-9]+:)'
  if [ -n "${TWIN_KEEP:-}" ]; then # a folder to keep both logs in
    cp "$work/torch$seed.jsonl" "$TWIN_KEEP/twin-torch-seed$seed.jsonl"
    cp "$work/ours$seed/log.jsonl" "$TWIN_KEEP/twin-ours-seed$seed.jsonl"
  fi
done
echo
"$py" - "$work" "$epochs" "$@" <<'PYEOF'
import json, statistics, sys
work, epochs, seeds = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def acc(path):
    return [r["test_acc"] for r in map(json.loads, open(path)) if r.get("kind") != "step"]
rows = [(s, acc(f"{work}/ours{s}/log.jsonl"), acc(f"{work}/torch{s}.jsonl")) for s in seeds]
head = " | ".join(f"epoch {e + 1} ours / PyTorch" for e in range(epochs))
print(f"| seed | {head} |")
print("| --- |" + " ---: |" * epochs)
for s, a, b in rows:
    print(f"| {s} | " + " | ".join(f"{x:.2f} / {y:.2f}" for x, y in zip(a, b)) + " |")
fa, fb = [a[-1] for _, a, _ in rows], [b[-1] for _, _, b in rows]
print(f"\nfinal test accuracy, mean over {len(seeds)} seeds: ours {statistics.mean(fa):.2f}%, PyTorch "
      f"{statistics.mean(fb):.2f}%; spread (max - min) ours {max(fa) - min(fa):.2f}, PyTorch {max(fb) - min(fb):.2f}; "
      f"ours - PyTorch per seed: {', '.join(f'{x - y:+.2f}' for x, y in zip(fa, fb))}")
PYEOF
