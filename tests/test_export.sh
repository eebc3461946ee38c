#!/usr/bin/env bash
# tools/export.py: a run's weights exported to a PyTorch state_dict (loaded into tools/mobilenet.py,
# or tools/mobilenetv2.py for a MobileNetV2 run) and to ONNX classify the first 1000 CIFAR-10 test
# images as `./train --eval-only` does, for each model. The state_dict and ./train may differ on at
# most 1 image of 1000 (a near tie of two logits can flip under different float summation orders);
# the ONNX graph must agree with the state_dict on every
# image, logits within 1e-3. The ONNX graph runs on onnxruntime, else on a numpy interpreter after
# onnx's checker; without the onnx package that half is skipped, saying so.
# Crafted checkpoints with bad meta records or record names are refused in one line, no traceback.
# Needs PyTorch (/usr/bin/python3, or $DRNET_PYTHON), exits 77 (skipped) without it; the runs need
# the data too.
# Usage: test_export.sh PATH-TO-TRAIN
set -u
train=$1
py=${DRNET_PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
limit=1000
. "$(dirname "$0")/lib.sh"
need_python "$py" torch numpy
scratch export

# CRC-valid checkpoints whose meta records or record names ./train refuses: export.py must refuse
# each too, in one line naming the file and the problem, exit 1, no traceback (no data needed).
"$py" "$here/crafted/make_export_cases.py" "$tmp" > "$tmp/craft.out" 2>&1 || { fail "make_export_cases.py exited $?"; show craft; }
while IFS=$'\t' read -r name want; do
  "$py" "$here/../tools/export.py" "$tmp/$name.ckpt" "$tmp/$name.pt" > "$tmp/$name.out" 2>&1
  rc=$?
  if [ $rc = 1 ] && [ "$(wc -l < "$tmp/$name.out")" = 1 ] && grep -qF -- "$want" "$tmp/$name.out" &&
     grep -qF -- "$tmp/$name.ckpt" "$tmp/$name.out" && [ ! -e "$tmp/$name.pt" ]; then
    echo "ok   $name refused: $(cut -c1-110 "$tmp/$name.out")..."
  else fail "$name: exit $rc, expected 1 and one line naming the file and '$want'"; show "$name" 6; fi
done < "$tmp/cases.txt"
if [ -z "${CIFAR10_PATH:-}" ] || [ ! -r "$CIFAR10_PATH" ]; then
  echo "skipping the export of a trained run: CIFAR10_PATH is not set to a readable archive"
  finish test_export
fi

# MODEL trained briefly into RUN_DIR (a few percent above chance is enough to make predictions
# distinct), evaluated by ./train, exported, and classified again by PyTorch and ONNX.
check_model() {
  local model=$1 run=$2
  "$train" "$model" cifar10 --width 0.25 --batch 64 --epochs 1 --max-steps 60 --limit-test 64 --device cpu \
    --threads 2 --out "$run" > "$tmp/train.out" 2>&1 || { fail "$model: training exited $?"; show train; exit 1; }
  "$train" "$model" cifar10 --eval-only --init "$run" --limit-test $limit --device cpu --threads 2 \
    > "$tmp/eval.out" 2>&1 || { fail "$model: --eval-only exited $?"; show eval; }
  ours=$(sed -n 's/.*accuracy \([0-9.]*\)% (\([0-9]*\) images.*/\1 \2/p' "$tmp/eval.out" | awk '{ printf "%d", $1 * $2 / 100 + 0.5 }')

  "$py" "$here/../tools/export.py" "$run" "$tmp/model.pt" "$tmp/model.onnx" > "$tmp/export.out" 2>&1 ||
    { fail "$model: tools/export.py exited $?"; show export; exit 1; }
  echo "ok   exported: $(head -1 "$tmp/export.out" | cut -c1-100)..."
  "$py" "$here/reference/export_check.py" "$tmp/model.pt" --model "$model" --width 0.25 --onnx "$tmp/model.onnx" \
    --limit $limit > "$tmp/check.out" 2>&1 || { fail "$model: export_check.py exited $?"; show check; exit 1; }

  torch=$(sed -n 's/^torch correct \([0-9]*\) .*/\1/p' "$tmp/check.out")
  if [ -z "$ours" ] || [ -z "$torch" ]; then fail "$model: no accuracy in the outputs"; show eval; show check
  else
    diff=$((ours - torch)); [ $diff -lt 0 ] && diff=$((-diff))
    if [ $diff -gt 1 ]; then fail "$model: ./train --eval-only: $ours/$limit correct, the exported state_dict in PyTorch: $torch/$limit"
    else echo "ok   $model: state_dict in PyTorch: $torch/$limit correct, ./train --eval-only: $ours/$limit"; fi
  fi

  if grep -q "^onnx skipped" "$tmp/check.out"; then
    echo "skipped the ONNX half: $(sed -n 's/^onnx skipped: //p' "$tmp/check.out")"
  else
    set -- $(sed -n 's/^onnx agree \([0-9]*\) \([0-9]*\) maxdiff \(.*\)/\1 \2 \3/p' "$tmp/check.out")
    if [ $# != 3 ]; then fail "$model: no ONNX result"; show check
    elif [ "$1" != "$2" ] || ! awk -v d="$3" 'BEGIN { exit !(d < 1e-3) }'; then
      fail "$model: ONNX vs the state_dict: $1 of $2 predictions agree, largest logit difference $3"
    else echo "ok   $model: ONNX ($(sed -n 's/^onnx run by //p' "$tmp/check.out")): all $2 predictions equal the state_dict's, logits within $3"; fi
  fi
}
check_model mobilenet "$tmp/run"
check_model mobilenetv2 "$tmp/v2" # the residual adds, the 1x1 shortcuts, kuangliu's MobileNetV2 names

# A run directory whose checkpoint.ckpt is further on than its final.ckpt (resumed after --max-steps,
# then stopped): export.py takes the checkpoint, as ./train --init DIR does.
mkdir "$tmp/ahead" && cp "$tmp/run/final.ckpt" "$tmp/ahead/" && cp "$tmp/run/checkpoint.ckpt" "$tmp/ahead.ckpt"
"$train" mobilenet cifar10 --resume "$tmp/ahead.ckpt" --max-steps 62 --limit-test 64 --device cpu --threads 2 \
  > "$tmp/ahead.out" 2>&1 && mv "$tmp/ahead.ckpt" "$tmp/ahead/checkpoint.ckpt" || { fail "resuming to step 62 exited $?"; show ahead; }
"$py" "$here/../tools/export.py" "$tmp/ahead" "$tmp/ahead.pt" > "$tmp/ahead.out" 2>&1
if grep -q "from $tmp/ahead/checkpoint.ckpt," "$tmp/ahead.out"; then echo "ok   export.py takes checkpoint.ckpt when it is further on than final.ckpt"
else fail "export.py of a run whose checkpoint is further on than final.ckpt"; show ahead; fi

# A corrupted checkpoint is refused, naming the problem.
cp "$tmp/run/final.ckpt" "$tmp/bad.ckpt"
printf '\x42' | dd of="$tmp/bad.ckpt" bs=1 seek=$(($(stat -c %s "$tmp/bad.ckpt") - 9)) conv=notrunc 2> /dev/null
if "$py" "$here/../tools/export.py" "$tmp/bad.ckpt" "$tmp/bad.pt" > "$tmp/bad.out" 2>&1; then fail "export.py accepted a corrupted checkpoint"
elif ! grep -q "fails its CRC32" "$tmp/bad.out"; then fail "export.py's refusal does not say why"; show bad 3
else echo "ok   export.py refuses a corrupted checkpoint (CRC32)"; fi

finish test_export
