#!/usr/bin/env bash
# ./train and its PyTorch twin (tests/reference/train_torch.py) see the same batches and follow the
# same recipe, so that their training runs compare like with like:
#  1. with lr 0 (the weights stay at the twin's initial weights, which ./train loads with --init),
#     every step's training loss and accuracy and every epoch's test loss agree to float32 rounding,
#     over two epochs with a short last batch: the epoch order, every crop and flip, and the pixel
#     normalization are the same on both sides;
#  2. ./train without augmentation differs from the twin at the first step (the comparison can see a
#     wrong batch);
#  3. with the recipe's lr: the first step's loss agrees, and so does the learning rate of every
#     step (cosine per step, no warm-up). Later steps are not compared: at PyTorch's initialisation
#     this network's float32 gradients are about 1% from float64 ones (PyTorch's and ours alike),
#     so two correct implementations part after the first update.
# Needs PyTorch (/usr/bin/python3, or $DRNET_PYTHON) and the data (CIFAR10_PATH); exits 77 (skipped)
# without either. Takes ~1 minute on 2 cores.
# Usage: test_twin_torch.sh PATH-TO-TRAIN
set -u
train=$1
py=${DRNET_PYTHON:-/usr/bin/python3} # a Python with torch and numpy
twin=$(cd "$(dirname "$0")/reference" && pwd)/train_torch.py

. "$(dirname "$0")/lib.sh"
need_python "$py" torch numpy
need_data
scratch twin

# 320 images at batch 128: batches of 128, 128 and 64 in each of 2 epochs.
common=(--epochs 2 --limit-train 320 --limit-test 200 --seed 5 --log-every 1 --threads 2)

# twin NAME ARGS...: the PyTorch twin, its log in $tmp/NAME.jsonl.
twin() {
  local name=$1; shift
  if ! "$py" "$twin" "${common[@]}" --log "$tmp/$name.jsonl" "$@" > "$tmp/$name.out" 2>&1; then
    fail "$name: train_torch.py $* failed"; show "$name"; return 1
  fi
}
# ours NAME ARGS...: ./train from the twin's initial weights, its log in $tmp/NAME/log.jsonl.
ours() {
  local name=$1; shift
  if ! "$train" mobilenet cifar10 --device cpu --init "$tmp/init.ckpt" "${common[@]}" --out "$tmp/$name" "$@" \
      > "$tmp/$name.out" 2>&1; then
    fail "$name: train $* failed"; show "$name"; return 1
  fi
}
# agree OURS TORCH MODE: whether two logs agree line by line (MODE all: every value; first: the
# first step's loss; lr: every learning rate); prints what agreed or the first disagreements.
agree() {
  "$py" - "$@" 2>&1 <<'EOF'
import json, sys
ours, torch, mode = sys.argv[1:]
a = [json.loads(l) for l in open(ours)]
b = [json.loads(l) for l in open(torch)]
keys = {"all": ["loss", "acc", "lr", "train_loss", "train_acc", "test_loss", "test_acc"],
        "first": ["loss"], "lr": ["lr"]}[mode]
tol = {"loss": 2e-5, "train_loss": 2e-5, "test_loss": 2e-5, "lr": 1e-6,
       "acc": 0.0, "train_acc": 0.0, "test_acc": 0.0}  # relative; accuracies exact (to the log's 4 decimals)
if len(a) != len(b):
    sys.exit(f"{len(a)} log lines against {len(b)}")
if mode == "first":
    a, b = a[:1], b[:1]
bad = []
for x, y in zip(a, b):
    where = f"epoch {x['epoch']} " + (f"step {x['step']}" if x.get("kind") == "step" else "end")
    for k in keys:
        if k in x or k in y:
            u, v = x.get(k), y.get(k)
            if u is None or v is None or abs(u - v) > tol[k] * abs(v) + 1e-4 * (tol[k] == 0):
                bad.append(f"{where}: {k} {u} against PyTorch's {v}")
print("; ".join(bad[:4]) if bad else f"{len(a)} log lines agree ({', '.join(keys)})")
sys.exit(1 if bad else 0)
EOF
}
# compare WHAT OURS TORCH MODE: a check that the two logs agree.
compare() {
  local out
  if out=$(agree "$2" "$3" "$4"); then echo "ok   $1: $out"; else fail "$1: $out"; fi
}

start=$SECONDS
# 1. lr 0: the same batches on both sides.
if twin lr0 --lr 0 --init-out "$tmp/init.ckpt" && ours lr0 --lr 0; then
  compare "lr 0, every step's loss and accuracy, every epoch's test loss" "$tmp/lr0/log.jsonl" "$tmp/lr0.jsonl" all
  # 2. The comparison must see a different batch: ./train without augmentation.
  if ours noaug --lr 0 --augment off; then
    if out=$(agree "$tmp/noaug/log.jsonl" "$tmp/lr0.jsonl" first); then
      fail "without augmentation ./train's first loss still agrees with the twin's: the comparison cannot see the batch"
    else
      echo "ok   without augmentation the first step differs, as it must: $out"
    fi
  fi
fi
# 3. The recipe's learning rate: the first step and the schedule.
if twin recipe && ours recipe; then
  compare "recipe lr 0.1, first step's loss" "$tmp/recipe/log.jsonl" "$tmp/recipe.jsonl" first
  compare "recipe lr 0.1, every step's learning rate" "$tmp/recipe/log.jsonl" "$tmp/recipe.jsonl" lr
fi
echo "($((SECONDS - start)) s)"
finish test_twin_torch
