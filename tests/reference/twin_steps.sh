#!/usr/bin/env bash
# Where ./train and its PyTorch twin part, measured against float64: for each seed, the first STEPS
# steps of the standard recipe (whole data set, lr 0.1, the cosine schedule of a 200-epoch run) from
# the same initial weights on the same batches, by
#   PyTorch in float64 (train_torch.py --double; the reference),
#   PyTorch in float32, NCHW and channels_last,
#   ./train (float32) with the CPU's default diagonalwise group g = 1, and with the paper's g = 32,
# and each step's loss as a deviation from float64's. Step 1's loss comes before any update, so it
# agrees to rounding; from step 2 on every run follows its own rounding. If ./train's update differed
# from PyTorch's in substance, its losses would stray from float64's more than PyTorch's own float32
# runs do. About a minute and a half per seed at 8 steps on 2 cores (float64 is slow on the CPU).
# Needs PyTorch (/usr/bin/python3 or $DRNET_PYTHON) and CIFAR-10 where ./train finds it.
# Usage: twin_steps.sh PATH-TO-TRAIN STEPS SEED...   (threads: $THREADS, default 2)
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 PATH-TO-TRAIN STEPS SEED..." >&2
  exit 2
fi
train=$1 steps=$2
shift 2
py=${DRNET_PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
threads=${THREADS:-2}
work=$(mktemp -d /tmp/drnet-twin-steps-XXXXXX)
trap 'rm -rf "$work"' EXIT
common=(--epochs 200 --max-steps "$steps" --log-every 1 --threads "$threads")
echo "commit $(git -C "$here" rev-parse --short HEAD)$(git -C "$here" diff --quiet HEAD -- . || echo ' (modified)'), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $(free -g | awk '/^Mem/ {print $2}') GiB"
echo "each run: ${common[*]} --seed SEED"
for seed in "$@"; do
  d="$work/$seed"
  mkdir -p "$d"
  run() { # run NAME COMMAND...: the command's output in $d/NAME.out, shown on failure
    local name=$1; shift
    if ! "$@" > "$d/$name.out" 2>&1; then
      echo "error: seed $seed, $name failed: $*" >&2; cat "$d/$name.out" >&2; exit 1
    fi
  }
  run torch64 "$py" "$here/train_torch.py" "${common[@]}" --seed "$seed" --double --init-out "$d/init.ckpt" --log "$d/torch64.jsonl"
  run torch32 "$py" "$here/train_torch.py" "${common[@]}" --seed "$seed" --log "$d/torch32.jsonl"
  run torch32cl "$py" "$here/train_torch.py" "${common[@]}" --seed "$seed" --channels-last --log "$d/torch32cl.jsonl"
  for g in 1 32; do
    run "ours_g$g" "$train" mobilenet cifar10 --device cpu --init "$d/init.ckpt" "${common[@]}" --seed "$seed" \
      --dw-group "$g" --out "$d/ours_g$g"
    mv "$d/ours_g$g/log.jsonl" "$d/ours_g$g.jsonl"
  done
done
"$py" - "$work" "$@" <<'PYEOF'
import json, statistics, sys
work, seeds = sys.argv[1], sys.argv[2:]
runs = [("torch64", "PyTorch f64"), ("torch32", "PyTorch f32"), ("torch32cl", "PyTorch f32 CL"),
        ("ours_g1", "ours g=1"), ("ours_g32", "ours g=32")]

def losses(path):
    """Each step's own loss, from the logged running mean of the epoch (step lines only)."""
    steps = [json.loads(l) for l in open(path) if '"kind": "step"' in l]
    out, prev = [], 0.0
    for i, s in enumerate(steps, 1):
        out.append(s["loss"] * i - prev)
        prev = s["loss"] * i
    return out

summary = {name: [] for name, _ in runs[1:]}
for seed in seeds:
    L = {name: losses(f"{work}/{seed}/{name}.jsonl") for name, _ in runs}
    ref = L["torch64"]
    print(f"\nseed {seed}: each step's loss; after float32 runs, its deviation from float64's (relative)")
    print("step  " + "".join(f"{label:>22}" for _, label in runs))
    for i, r in enumerate(ref):
        cells = [f"{r:22.4f}"]
        for name, _ in runs[1:]:
            v = L[name][i]
            cells.append(f"{v:10.4f} ({(v - r) / r:+.2e})")
        print(f"{i + 1:4d}  " + "".join(cells))
    for name, _ in runs[1:]:
        summary[name].append(statistics.mean(abs(L[name][i] - ref[i]) / ref[i] for i in range(1, len(ref))))

print("\nmean |deviation from float64| over steps 2 and later, per seed")
print("seed  " + "".join(f"{label:>16}" for _, label in runs[1:]))
for k, seed in enumerate(seeds):
    print(f"{seed:>4}  " + "".join(f"{summary[name][k]:16.2e}" for name, _ in runs[1:]))
if len(seeds) > 1:
    print("mean  " + "".join(f"{statistics.mean(summary[name]):16.2e}" for name, _ in runs[1:]))
PYEOF
