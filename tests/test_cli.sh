#!/usr/bin/env bash
# ./train's command line: bad flags and values exit with code 2 and name the flag; --help and
# --print-model work without data; missing data says where to get it; Ctrl-C saves a checkpoint
# that --resume accepts; NaN loss stops with a clear message and keeps the last good checkpoint.
# Usage: test_cli.sh PATH-TO-TRAIN
set -u
train=$1
. "$(dirname "$0")/lib.sh"
scratch cli

expect 0 "usage: train MODEL DATASET" --help
expect 0 "MODEL    mobilenet   (MobileNet v1, CIFAR-10 variant)" --help # the registry (models/model.c) lists the models
expect 2 "expected MODEL and DATASET"
expect 2 "unknown model 'resnet': known models: mobilenet, mobilenetv2" resnet cifar10
expect 2 "unknown dataset 'imagenet': known datasets: cifar10" mobilenet imagenet
expect 0 "DATASET  cifar10" --help # the registry (data/dataset.c) lists the data sets
expect 2 "--bogus: unknown option" mobilenet cifar10 --bogus
expect 2 "--epochs: needs a value" mobilenet cifar10 --epochs
expect 2 "--epochs 0: expected an integer" mobilenet cifar10 --epochs 0
expect 2 "--lr abc: expected a number" mobilenet cifar10 --lr abc
expect 2 "--lr -1: expected a number" mobilenet cifar10 --lr=-1
expect 2 "--batch 1: expected an integer" mobilenet cifar10 --batch 1
expect 2 "--width 0: expected a number" mobilenet cifar10 --width 0
expect 2 "--width 0.02: expected a number in 0.03125..16" mobilenet cifar10 --width 0.02 # a layer would have no channels
expect 2 "--threads 100000: expected an integer in 1..1024" mobilenet cifar10 --threads 100000
expect 2 "--threads 0: expected an integer in 1..1024" mobilenet cifar10 --threads 0
expect 2 "--dw-group x: expected an integer" mobilenet cifar10 --dw-group x
expect 2 "--device tpu: expected auto, cpu, cuda or ref" mobilenet cifar10 --device tpu
expect 2 "--nesterov maybe: expected on or off" mobilenet cifar10 --nesterov maybe
expect 2 "--schedule linear: expected cosine, step or constant" mobilenet cifar10 --schedule linear
expect 2 "--precision fp16: expected fp32 or bf16" mobilenet cifar10 --precision fp16
expect 0 "precision: bf16 mixed precision: the layers marked bf16 above" mobilenet cifar10 --print-model --precision bf16
# The arithmetic per layer (OpDef.bf16_products): products in bf16 for conv, depthwise and linear only.
expect 0 "layers.0.conv1   dw 3x3       bf16" mobilenet cifar10 --print-model --precision bf16
expect 0 "linear       bf16" mobilenet cifar10 --print-model --precision bf16
expect 0 "layers.0.bn1     bn+relu      fp32" mobilenet cifar10 --print-model --precision bf16
expect 0 "layers.0.conv1   dw 3x3       fp32" mobilenet cifar10 --print-model
expect 0 "precision: fp32 throughout" mobilenet cifar10 --print-model
expect 2 "--eval-only: needs weights" mobilenet cifar10 --eval-only
expect 2 "--print-model yes: takes no value" mobilenet cifar10 --print-model=yes
expect 2 "--bench-repeats: needs --bench-steps N" mobilenet cifar10 --bench-repeats 3
expect 2 "--out r: cannot be combined with --resume" mobilenet cifar10 --resume r --out r
expect 2 "--out r: only a training run writes it" mobilenet cifar10 --profile --out r
expect 2 "--out r: only a training run writes it" mobilenet cifar10 --eval-only --init x --out r
expect 2 "--checkpoint c: only a training run writes it" mobilenet cifar10 --eval-only --init x --checkpoint c
expect 2 "--log l: only a training run writes it" mobilenet cifar10 --print-model --log l
expect 0 "3.217 M parameters, 46.35 M multiply-adds" mobilenet cifar10 --print-model
expect 0 "layers.12.conv2" mobilenet cifar10 --print-model --width 0.5
expect 0 "         mobilenetv2 (MobileNetV2, CIFAR-10 variant)" --help
expect 0 "layers.16.shortcut.0" mobilenetv2 cifar10 --print-model
expect 0 "depthwise layers: g = 1, the ref backend's default" mobilenet cifar10 --print-model --device ref
expect 1 "cannot open checkpoint '$tmp/none.ckpt'" mobilenet cifar10 --resume "$tmp/none.ckpt"
CIFAR10_PATH= expect 1 "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" mobilenet cifar10 --data "$tmp/nothing.tar.gz" --device cpu
expect 1 "$tmp/nothing.tar.gz" mobilenet cifar10 --data "$tmp/nothing.tar.gz" --device cpu
mkdir "$tmp/wrong-folder" # --data pointing at a folder without the data: say what belongs there
expect 1 "$tmp/wrong-folder: a directory with no CIFAR-10 files (data_batch_1..5.bin, test_batch.bin): expected an extracted cifar-10-batches-bin folder (or the folder holding it), or the cifar-10-binary.tar.gz archive" mobilenet cifar10 --data "$tmp/wrong-folder" --device cpu
# Data that is a FIFO (open() would wait for a writer forever) or a device (read forever) is refused
# by name, as the archive or as a member of a data folder.
mkfifo "$tmp/fifo" && mkdir "$tmp/fifo-data" && mkfifo "$tmp/fifo-data/data_batch_1.bin"
EXPECT_TIMEOUT=60 expect 1 "$tmp/fifo: is a FIFO (not a regular file)" mobilenet cifar10 --data "$tmp/fifo" --device cpu
EXPECT_TIMEOUT=60 expect 1 "$tmp/fifo-data/data_batch_1.bin: is a FIFO" mobilenet cifar10 --data "$tmp/fifo-data" --device cpu
EXPECT_TIMEOUT=60 expect 1 "/dev/zero: is a character device" mobilenet cifar10 --data /dev/zero --device cpu

missing=$(data_missing)
if [ -n "$missing" ]; then
  echo "skipping the runs that need data: $missing"
else
  # Pinned to the CPU: on a GPU machine --device auto would train there, which is not what this tests.
  small=(mobilenet cifar10 --width 0.125 --batch 32 --limit-train 4096 --limit-test 64 --threads 2 --device cpu)
  # started NAME [nohup]: a training run in the background (output in $tmp/NAME.out, checkpoint
  # $tmp/NAME.ckpt, pid in $pid), once its first progress line shows that it trains.
  started() {
    ${2:-} "$train" "${small[@]}" --checkpoint "$tmp/$1.ckpt" --out "$tmp/run-$1" > "$tmp/$1.out" 2>&1 &
    pid=$!
    for _ in $(seq 1 300); do grep -q "\[ *[0-9]*/128\]" "$tmp/$1.out" 2>/dev/null && break; sleep 0.1; done
  }
  # Ctrl-C (SIGINT), and a closed terminal (SIGHUP): the run saves its state and exits 130; --resume
  # continues from there.
  for sig in INT HUP; do
    started "$sig"
    kill -$sig $pid
    wait $pid
    rc=$?
    if [ $rc = 130 ] && grep -q "interrupted: saved '$tmp/$sig.ckpt'" "$tmp/$sig.out" && [ -s "$tmp/$sig.ckpt" ]; then
      echo "ok   SIG$sig saved $(grep -o 'at epoch.*step [0-9]*)' "$tmp/$sig.out")"
    else fail "SIG$sig exited $rc, expected 130 and a saved checkpoint"; show "$sig" 5; fi
  done
  saved=$(grep -o 'step [0-9]*)' "$tmp/INT.out" | grep -o '[0-9]*')
  # Under nohup (SIGHUP ignored) the run goes on.
  started nohup nohup
  kill -HUP $pid
  sleep 1
  if kill -0 $pid 2>/dev/null && ! grep -q interrupted "$tmp/nohup.out"; then echo "ok   under nohup, SIGHUP leaves the run training"
  else fail "under nohup, SIGHUP stopped the run"; show nohup 5; fi
  kill -INT $pid 2>/dev/null
  wait $pid
  # A second interrupt exits at once without saving (exit 130), after a line saying that the last
  # checkpoint is intact, and it is, byte for byte. Wide steps (about half a second each) let the
  # second come while the step the first interrupted still runs; the first is acknowledged on stderr.
  # Should the run save and exit before the second comes (a busy machine), the attempt is repeated.
  slow=(mobilenet cifar10 --width 1 --batch 128 --limit-train 1280 --limit-test 32 --threads 2 --device cpu)
  timeout -k 10 300 "$train" "${slow[@]}" --max-steps 1 --checkpoint "$tmp/twice.ckpt" --out "$tmp/run-twice" \
    > "$tmp/twice.out" 2>&1 || { fail "the wide run's first step exited $?"; show twice; }
  cp "$tmp/twice.ckpt" "$tmp/twice-before.ckpt"
  for attempt in 1 2 3; do
    cp "$tmp/twice-before.ckpt" "$tmp/twice.ckpt"
    "$train" "${slow[@]}" --resume "$tmp/twice.ckpt" --max-steps 1000 > "$tmp/twice.out" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do grep -q "\[ *[0-9]*/10\]" "$tmp/twice.out" 2>/dev/null && break; sleep 0.1; done
    kill -INT $pid
    for _ in $(seq 1 500); do grep -q "^stopping: finishing this step" "$tmp/twice.out" && break; sleep 0.01; done
    kill -INT $pid 2>/dev/null
    wait $pid
    rc=$?
    grep -q "interrupted: saved" "$tmp/twice.out" || break
  done
  intact="interrupted again: exiting without saving; the last checkpoint '$tmp/twice.ckpt' (epoch 1, batch 1/10, step 1) is intact"
  if [ $rc = 130 ] && grep -qF "$intact" "$tmp/twice.out" && cmp -s "$tmp/twice.ckpt" "$tmp/twice-before.ckpt"; then
    echo "ok   a second Ctrl-C exits 130 at once, saying the last checkpoint (step 1) is intact, and it is"
  elif [ $rc = 130 ] && grep -qF "interrupted again: exiting without saving; it came during a save" "$tmp/twice.out"; then
    echo "ok   a second Ctrl-C exits 130 at once (it came during the save, and says so)"
  else fail "a second Ctrl-C: exit $rc, expected 130 and '$intact' with the checkpoint unchanged"; show twice 5; fi
  expect 0 "resuming '$tmp/INT.ckpt' at epoch 1, batch ${saved:-?}/128" "${small[@]}" --resume "$tmp/INT.ckpt" --max-steps $((${saved:-0} + 2))
  expect 0 "test: loss" "${small[@]}" --eval-only --init "$tmp/INT.ckpt"
  expect 0 "then 1 step without and 1 with the profiler" "${small[@]}" --profile-steps 1 --max-steps 1 # implies --profile
  # The reference backend trains and profiles through the same engine (slowly: a smaller batch).
  expect 0 "then 1 step without and 1 with the profiler" "${small[@]}" --device ref --batch 8 --profile-steps 1 --max-steps 1
  expect 0 "stopped at --max-steps 2" "${small[@]}" --device ref --batch 8 --max-steps 2 --out "$tmp/run-ref"
  # A thread count the machine cannot serve is said on the device line (the last --threads wins).
  expect 0 "256 threads (--threads 1000: at most 256)" "${small[@]}" --threads 1000 --limit-train 64 --max-steps 1 \
    --out "$tmp/run-threads-max"
  cpus=$(nproc) # the CPUs this process may use (its affinity), as the device line counts them
  # In FP32 the device line points to bf16 where its fast kernel would run (AVX512_BF16), and not
  # where bf16 would run the portable kernel, slower than FP32 (DRNET_CPU_ISA=avx2 forces that here).
  hint="FP32 (this CPU has AVX512_BF16: --precision bf16 is faster)"
  if grep -q -w avx512_bf16 /proc/cpuinfo; then
    expect 0 "$hint" "${small[@]}" --limit-train 64 --max-steps 1 --out "$tmp/run-hint"
  fi
  DRNET_CPU_ISA=avx2 expect 0 "device: CPU:" "${small[@]}" --limit-train 64 --max-steps 1 --out "$tmp/run-nohint"
  if grep -qF -- "$hint" "$tmp/expect.out"; then fail "DRNET_CPU_ISA=avx2: the device line still points to bf16"; fi
  if [ "$cpus" -lt 256 ]; then
    expect 0 "$((cpus + 1)) threads (more than the $cpus CPUs this process may use: usually slower)" "${small[@]}" \
      --threads $((cpus + 1)) --limit-train 64 --max-steps 1 --out "$tmp/run-threads-over"
  fi
  # A diverging run stops with a clear message, without overwriting the checkpoint it started from.
  # lr 100 with weight decay 1 multiplies every weight by -99 per step: a certain overflow within
  # about twenty steps, whatever the rounding of the kernels.
  cp "$tmp/INT.ckpt" "$tmp/good.ckpt"
  expect 1 "the training loss became" "${small[@]}" --init "$tmp/INT.ckpt" --lr 100 --wd 1 --momentum 0 --checkpoint "$tmp/INT.ckpt" --out "$tmp/run-nan" --epochs 1
  grep -o "became.*step [0-9]*" "$tmp/expect.out" | sed 's/^/     (/; s/$/)/'
  cmp -s "$tmp/INT.ckpt" "$tmp/good.ckpt" || fail "the diverging run changed the last good checkpoint"
fi

finish test_cli
