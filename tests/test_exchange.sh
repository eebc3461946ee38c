#!/usr/bin/env bash
# Weights move both ways between ./train and PyTorch (tools/export.py, tools/torch_to_ckpt.py):
#  1. a model trained by ./train, converted to a PyTorch state_dict, classifies the CIFAR-10 test set
#     as `./train --eval-only` does: the same accuracy within 0.05 points (5 of 10000 images);
#     converted back, every tensor is bit-identical to the original;
#  2. a model trained in PyTorch, converted to our checkpoint, gets from `./train --eval-only --init`
#     the accuracy PyTorch gets, within the same 5 images;
#  3. a checkpoint of the wrong width and a corrupted one are refused with messages naming the problem.
# Needs PyTorch (/usr/bin/python3, or $DRNET_PYTHON) and the data (CIFAR10_PATH); exits 77 (skipped)
# without either. Takes ~100 s on 2 cores.
# Usage: test_exchange.sh PATH-TO-TRAIN
set -u
train=$1
py=${DRNET_PYTHON:-/usr/bin/python3} # a Python with torch and numpy
ref=$(cd "$(dirname "$0")/reference" && pwd)
tools=$(cd "$(dirname "$0")/../tools" && pwd)
width=0.25
max_diff=5 # images of 10000: 0.05 accuracy points

. "$(dirname "$0")/lib.sh"
need_python "$py" torch numpy
need_data
scratch exchange

# run NAME CMD...: runs CMD with its output in $tmp/NAME.out, shown if it fails.
run() {
  local name=$1; shift
  "$@" > "$tmp/$name.out" 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then
    fail "$name: '$*' exited $rc"
    sed 's/^/    | /' "$tmp/$name.out" | tail -15
    return 1
  fi
}

# Correct test images from './train --eval-only' output ("accuracy 32.11% (10000 images").
ours_correct() {
  sed -n 's/.*accuracy \([0-9.]*\)% (\([0-9]*\) images.*/\1 \2/p' "$1" |
    awk '{ printf "%d %d\n", $1 * $2 / 100 + 0.5, $2 }'
}
# Correct test images from 'exchange_torch.py eval' output ("correct 3211 10000").
torch_correct() { sed -n 's/^correct \([0-9]*\) \([0-9]*\)$/\1 \2/p' "$1"; }

# compare WHAT OURS-OUT TORCH-OUT: both evaluated the whole test set, within max_diff images.
compare() {
  local what=$1 a b
  a=$(ours_correct "$2"); b=$(torch_correct "$3")
  if [ -z "$a" ] || [ -z "$b" ]; then fail "$what: no accuracy in the output"; return; fi
  set -- $a $b
  local diff=$(($1 - $3))
  [ $diff -lt 0 ] && diff=$((-diff))
  if [ "$2" != 10000 ] || [ "$4" != 10000 ]; then fail "$what: evaluated $2 and $4 images, not the 10000 test images";
  elif [ $diff -gt $max_diff ]; then fail "$what: ours $1/10000, PyTorch $3/10000 correct: $diff images apart (at most $max_diff)";
  else awk -v w="$what" -v a="$1" -v b="$3" -v d=$diff \
    'BEGIN { printf "ok   %s: ours %.2f%%, PyTorch %.2f%% (%d of 10000 images apart)\n", w, a / 100, b / 100, d }'; fi
}

start=$SECONDS
common=(mobilenet cifar10 --threads 2)

# 1. Ours -> PyTorch.
run ours-train "$train" "${common[@]}" --width $width --epochs 1 --max-steps 100 --limit-test 256 \
  --checkpoint "$tmp/ours.ckpt" --out "$tmp/run" &&
run ours-eval "$train" "${common[@]}" --eval-only --init "$tmp/ours.ckpt" &&
run ours-convert "$py" "$tools/export.py" "$tmp/ours.ckpt" "$tmp/ours.pt" &&
run ours-torch-eval "$py" "$ref/exchange_torch.py" eval "$tmp/ours.pt" --width $width &&
compare "trained by ./train (100 steps), evaluated in PyTorch" "$tmp/ours-eval.out" "$tmp/ours-torch-eval.out"
if run ours-back "$py" "$tools/torch_to_ckpt.py" "$tmp/ours.pt" "$tmp/back.ckpt" --width $width &&
   run ours-same "$py" "$ref/exchange_torch.py" same "$tmp/back.ckpt" "$tmp/ours.ckpt"; then
  echo "ok   round trip ckpt -> pt -> ckpt: $(cat "$tmp/ours-same.out")"
fi

# 2. PyTorch -> ours.
run torch-train "$py" "$ref/exchange_torch.py" train "$tmp/theirs.pt" --width $width --steps 80 &&
run torch-convert "$py" "$tools/torch_to_ckpt.py" "$tmp/theirs.pt" "$tmp/theirs.ckpt" --width $width &&
run torch-eval "$py" "$ref/exchange_torch.py" eval "$tmp/theirs.pt" --width $width &&
run theirs-eval "$train" "${common[@]}" --eval-only --init "$tmp/theirs.ckpt" &&
compare "trained in PyTorch (80 steps), evaluated by ./train" "$tmp/theirs-eval.out" "$tmp/torch-eval.out"

# 3. Refusals.
if "$py" "$tools/torch_to_ckpt.py" "$tmp/theirs.pt" "$tmp/wrong.ckpt" --width 0.5 > "$tmp/wrong.out" 2>&1; then
  fail "torch_to_ckpt accepted a width-0.25 state_dict as width 0.5"
elif ! grep -q "does not fit MobileNet width 0.5" "$tmp/wrong.out"; then
  fail "torch_to_ckpt's refusal of the wrong width does not say why"; sed 's/^/    | /' "$tmp/wrong.out" | tail -3
else echo "ok   torch_to_ckpt refuses the wrong --width"; fi
if [ -s "$tmp/theirs.ckpt" ]; then
  cp "$tmp/theirs.ckpt" "$tmp/bad.ckpt"
  printf '\x42' | dd of="$tmp/bad.ckpt" bs=1 seek=$(($(stat -c %s "$tmp/bad.ckpt") - 9)) conv=notrunc 2> /dev/null
  if "$py" "$tools/export.py" "$tmp/bad.ckpt" "$tmp/bad.pt" > "$tmp/bad.out" 2>&1; then
    fail "export.py accepted a corrupted checkpoint"
  elif ! grep -q "fails its CRC32" "$tmp/bad.out"; then
    fail "export.py's refusal of a corrupted checkpoint does not say why"; sed 's/^/    | /' "$tmp/bad.out" | tail -3
  else echo "ok   export.py refuses a corrupted checkpoint (CRC32)"; fi
fi

echo "($((SECONDS - start)) s)"
finish test_exchange
