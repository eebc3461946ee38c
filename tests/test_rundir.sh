#!/usr/bin/env bash
# Run directories (train/rundir.c, train/runlog.c): a training run keeps config.json, the checkpoint,
# the log and the final weights in its directory; --resume DIR continues it with every setting it had
# (it keeps saving, keeps --limit-test and --max-steps) unless overridden; a new run creates or
# overwrites its log, a resumed one appends; a failed log write stops the run naming the file.
# Needs the data (CIFAR10_PATH or data/cifar-10-binary.tar.gz); exits 77 (skipped) without it.
# Usage: test_rundir.sh PATH-TO-TRAIN
set -u
train=$1
. "$(dirname "$0")/lib.sh"
need_data
scratch rundir

# run NAME ARGS...: ./train ARGS with the output in $tmp/NAME.out; returns its exit status (124 when
# it ran longer than RUN_TIMEOUT seconds, 300 by default, 137 when it also ignored that SIGTERM: a run
# that blocks fails instead of hanging).
run() {
  local name=$1; shift
  timeout -k 10 "${RUN_TIMEOUT:-300}" "$train" "$@" > "$tmp/$name.out" 2>&1
}
has() { grep -qF -- "$2" "$tmp/$1.out" || { fail "$1: output lacks '$2'"; show "$1"; return 1; }; }
# refused NAME NEEDLE ARGS...: ./train ARGS must stop at start-up (within a minute) with exit 1 and NEEDLE.
refused() {
  local name=$1 needle=$2; shift 2
  RUN_TIMEOUT=60 run "$name" "$@"
  local rc=$?
  if [ $rc != 1 ]; then fail "$name: exit $rc, expected 1"; show "$name"; return 1; fi
  has "$name" "$needle" && echo "ok   $name: refused at start-up ($needle)"
}

# 8 steps per epoch; the first run stops at step 10, in epoch 2.
small=(mobilenet cifar10 --width 0.125 --batch 32 --limit-train 256 --device cpu --threads 2 --epochs 3)
d=$tmp/run
run fresh "${small[@]}" --limit-test 64 --max-steps 10 --out "$d" || { fail "fresh run exited $?"; show fresh; }
for f in config.json checkpoint.ckpt log.jsonl final.ckpt; do
  [ -s "$d/$f" ] || fail "the run directory lacks $f"
done
[ "$(wc -l < "$d/log.jsonl")" = 2 ] || fail "the fresh run logged $(wc -l < "$d/log.jsonl") lines, expected 2 (epoch 1, partial epoch 2)"
head -1 "$d/log.jsonl" > "$tmp/first-line"
echo "ok   a new run keeps config.json, checkpoint.ckpt, log.jsonl and final.ckpt in --out"

# --init DIR takes the run's final weights, else its checkpoint, and says which and how far the run had got.
run initdir mobilenet cifar10 --eval-only --init "$d" --limit-test 32 --device cpu --threads 2 ||
  { fail "--eval-only --init DIR exited $?"; show initdir; }
has initdir "weights: $d/final.ckpt (the weights a run ended with, after step 10)" &&
  echo "ok   --init DIR loads final.ckpt and says so"
mkdir "$tmp/only-ckpt" && cp "$d/checkpoint.ckpt" "$tmp/only-ckpt/"
run initckpt mobilenet cifar10 --eval-only --init "$tmp/only-ckpt" --limit-test 32 --device cpu --threads 2 ||
  { fail "--eval-only --init DIR (checkpoint only) exited $?"; show initckpt; }
has initckpt "weights: $tmp/only-ckpt/checkpoint.ckpt (a training checkpoint in epoch 2 of 3, after batch 2 of 8, step 10)" &&
  echo "ok   --init DIR without final.ckpt loads checkpoint.ckpt and says where in the run it was saved"
# Data that has moved since the run started: the error names the path as the run's (from config.json)
# and how to go on; with --data the run continues.
cp -r "$d" "$tmp/moved"
sed -i 's|"data": ".*"|"data": "/nonexistent/cifar-10-binary.tar.gz"|' "$tmp/moved/config.json"
run moved mobilenet cifar10 --resume "$tmp/moved" --max-steps 11
rc=$?
if [ $rc = 1 ] && has moved "error: the run's data '/nonexistent/cifar-10-binary.tar.gz' (from its config.json) cannot be read" &&
   has moved "resume with --data PATH"; then echo "ok   data moved since the run started: named as the run's, --data suggested"
else fail "resuming a run whose data moved: exit $rc (expected 1) or the message above"; fi
run moved2 mobilenet cifar10 --resume "$tmp/moved" --max-steps 11 --data "$CIFAR10_PATH" &&
  has moved2 "stopped at --max-steps 11" && echo "ok   ... and --data NEW_PATH resumes it"
# A config.json value the flag would refuse is refused from the file too, by the same range, naming
# the file and the key (once: --threads 100000 crashed in libgomp, --limit-test 2147483648 reached an
# internal assert).
bad_config() { # NAME KEY VALUE NEEDLE: resuming with "KEY": VALUE in config.json exits 1 saying NEEDLE
  rm -rf "$tmp/$1" && cp -r "$d" "$tmp/$1"
  sed -i "s|\"$2\": [^,]*,|\"$2\": $3,|" "$tmp/$1/config.json"
  run "$1" mobilenet cifar10 --resume "$tmp/$1" --max-steps 11
  local rc=$?
  if [ $rc = 1 ] && has "$1" "$tmp/$1/config.json: \"$2\": $4" && ! grep -q Segmentation "$tmp/$1.out"; then
    echo "ok   config.json \"$2\": $3 refused naming the file and the key"
  else fail "config.json \"$2\": $3: exit $rc, expected 1 and the message above"; fi
}
bad_config threads threads 100000 "100000 is out of range (1..1024)"
# "threads": 0 is what versions before the settings table wrote for a run without --threads (every
# core): such a run directory still resumes, and the banner says what 0 means.
rm -rf "$tmp/threads0" && cp -r "$d" "$tmp/threads0"
sed -i 's|"threads": [^,]*,|"threads": 0,|' "$tmp/threads0/config.json"
run threads0 mobilenet cifar10 --resume "$tmp/threads0" --max-steps 11 &&
  has threads0 'every core ("threads": 0, as older versions wrote a run without --threads)' &&
  echo "ok   an older run's \"threads\": 0 resumes on every core, saying so" ||
  fail "an older run directory's \"threads\": 0 did not resume with a note"
bad_config limit limit_test 2147483648 "2147483648 is out of range (0..1073741824)"
bad_config negative log_every -5 "-5 is out of range (0..1073741824)"
bad_config tf32 tf32 7 "7 is not on or off"
bad_config device device '"tpu"' '"tpu" is not auto, cpu, cuda or ref'
# A resumed run whose files are not regular files stops at start-up naming them, before it trains: a
# FIFO or a directory left at checkpoint.ckpt.tmp (the first save would block or fail, an epoch
# later), a FIFO at config.json.tmp, and a log that is a device, given with --log or restored from
# config.json (/dev/zero would be read forever for the run's earlier epochs, /dev/full never written).
bad=$tmp/bad-paths
cp -r "$d" "$bad"
mkfifo "$bad/checkpoint.ckpt.tmp"
refused tmp-fifo "its temporary file '$bad/checkpoint.ckpt.tmp' is a FIFO" mobilenet cifar10 --resume "$bad" --max-steps 11
rm -f "$bad/checkpoint.ckpt.tmp" && mkdir "$bad/checkpoint.ckpt.tmp"
refused tmp-dir "its temporary file '$bad/checkpoint.ckpt.tmp' is a directory" mobilenet cifar10 --resume "$bad" --max-steps 11
rmdir "$bad/checkpoint.ckpt.tmp" && mkfifo "$bad/config.json.tmp"
refused config-tmp-fifo "cannot write the run configuration '$bad/config.json.tmp': is a FIFO" \
  mobilenet cifar10 --resume "$bad" --max-steps 11
rm -f "$bad/config.json.tmp"
refused log-zero "--log '/dev/zero' is a character device" mobilenet cifar10 --resume "$bad" --max-steps 11 --log /dev/zero
sed -i 's|"log": ".*"|"log": "/dev/zero"|' "$bad/config.json"
refused config-log-zero "the run's log '/dev/zero' (from its config.json) is a character device" \
  mobilenet cifar10 --resume "$bad" --max-steps 11

# --eval-only --resume continues nothing: it names what it evaluates, not how a continued run would differ.
run evalres mobilenet cifar10 --eval-only --resume "$d" --limit-test 32 --threads 1 ||
  { fail "--eval-only --resume DIR exited $?"; show evalres; }
has evalres "weights: $d/checkpoint.ckpt (a training checkpoint in epoch 2 of 3, after batch 2 of 8, step 10)" &&
if grep -q "^note:" "$tmp/evalres.out"; then fail "--eval-only --resume printed a note about continuing the run"; show evalres
else echo "ok   --eval-only --resume DIR names the checkpoint it evaluates"; fi

# Resume by directory with no other flag: the limits come back, and the run stops at its --max-steps.
run again mobilenet cifar10 --resume "$d" || fail "resume without a larger --max-steps exited $?"
has again "already took --max-steps 10" && echo "ok   --resume DIR keeps --max-steps (nothing to do at step 10)"
has again "64 test images" && echo "ok   --resume DIR keeps --limit-test 64"

# A longer limit: the resumed run must keep saving into the run directory and appending to its log.
run more mobilenet cifar10 --resume "$d" --max-steps 20 || { fail "resume to step 20 exited $?"; show more; }
has more "restored from $d/config.json" &&
has more "stopped at --max-steps 20; saved $d/checkpoint.ckpt" && echo "ok   the resumed run saved its checkpoint again"
run after mobilenet cifar10 --resume "$d/checkpoint.ckpt"
has after "resuming '$d/checkpoint.ckpt' at epoch 3, batch 4/8 (step 20)" &&
has after "already took --max-steps 20" && echo "ok   the saved state is at step 20 (--resume PATH inside the run directory finds its config)"
# config.json keeps the run's first command; each --resume that trained (or found nothing to do) is
# added to "resumed" with its time, and readers of the flat keys are not disturbed (the resumes above
# found their settings in it).
if ! grep -q "^  \"command\": \".* --max-steps 10 --out $d\",\$" "$d/config.json"; then
  fail "config.json lost the run's first command"; grep -E 'command' "$d/config.json" | sed 's/^/    | /'
elif [ "$(grep -c '^    {"command": ".* --resume .*", "time": "[0-9T:+-]*"}' "$d/config.json")" != 3 ] ||
     ! grep -q -- "--resume $d --max-steps 20\", \"time\"" "$d/config.json"; then
  fail "config.json's \"resumed\" lacks the three resumes (again, more, after)"; grep -A5 resumed "$d/config.json" | sed 's/^/    | /'
elif command -v python3 > /dev/null && ! python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$d/config.json"; then
  fail "config.json is not valid JSON"
else echo "ok   config.json keeps the first command and lists the three resumes in \"resumed\""; fi
lines=$(wc -l < "$d/log.jsonl")
if [ "$lines" != 4 ]; then fail "after resuming the log has $lines lines, expected 4 (2 + 2 appended)"
elif ! head -1 "$d/log.jsonl" | cmp -s - "$tmp/first-line"; then fail "resuming rewrote the log's first line"
else echo "ok   the resumed run appended to the log (4 lines, the first unchanged)"; fi

# A new run overwrites an old log it is pointed at; --log-every adds step lines.
printf 'OLD LOG LINE\n' > "$tmp/given.jsonl"
run given "${small[@]}" --epochs 1 --limit-test 32 --out "$tmp/run2" --log "$tmp/given.jsonl" --log-every 3 ||
  { fail "run with --log exited $?"; show given; }
if grep -q "OLD LOG LINE" "$tmp/given.jsonl"; then fail "a new run appended to an existing --log instead of overwriting it"
elif [ "$(grep -c '"kind": "step"' "$tmp/given.jsonl")" != 2 ] || [ "$(grep -c '"test_acc"' "$tmp/given.jsonl")" != 1 ]; then
  fail "--log-every 3 over 8 steps: expected 2 step lines and 1 epoch line"; sed 's/^/    | /' "$tmp/given.jsonl"
else echo "ok   a new run overwrites its --log; --log-every 3 adds 2 step lines"; fi
mkdir "$tmp/epoch-end" && cp "$tmp/run2/checkpoint.ckpt" "$tmp/epoch-end/"
run initend mobilenet cifar10 --eval-only --init "$tmp/epoch-end" --limit-test 32 --device cpu --threads 2 &&
has initend "weights: $tmp/epoch-end/checkpoint.ckpt (a training checkpoint after epoch 1 of 1, step 8)" &&
  echo "ok   --init of a checkpoint saved at an epoch's end names that epoch"

# The run directory of a finished run is not reused by mistake.
run reuse "${small[@]}" --out "$d"
[ $? = 1 ] && has reuse "already holds a run" && echo "ok   --out refuses a directory that holds a run"

# A checkpoint outside any run directory: --resume keeps saving to it.
cp "$d/checkpoint.ckpt" "$tmp/loose.ckpt"
run loose mobilenet cifar10 --resume "$tmp/loose.ckpt" --max-steps 22 --limit-test 32 --device cpu --threads 2 ||
  { fail "resuming a loose checkpoint exited $?"; show loose; }
has loose "saved $tmp/loose.ckpt" && echo "ok   --resume PATH without a run directory keeps saving to PATH"

# --init DIR takes the run's latest weights: its checkpoint.ckpt when that is further on than final.ckpt
# (a run resumed after --max-steps, then interrupted); a damaged final.ckpt is reported, not skipped.
mkdir "$tmp/ahead" && cp "$d/final.ckpt" "$tmp/ahead/final.ckpt" && cp "$tmp/loose.ckpt" "$tmp/ahead/checkpoint.ckpt"
run ahead mobilenet cifar10 --eval-only --init "$tmp/ahead" --limit-test 32 --device cpu --threads 2 &&
has ahead "weights: $tmp/ahead/checkpoint.ckpt (a training checkpoint in epoch 3 of 3, after batch 6 of 8, step 22)" &&
  echo "ok   --init DIR takes checkpoint.ckpt when it is further on than final.ckpt (step 22 > 20)"
head -c 1000 "$d/final.ckpt" > "$tmp/ahead/final.ckpt"
run damaged mobilenet cifar10 --eval-only --init "$tmp/ahead" --limit-test 32 --device cpu --threads 2
rc=$?
if [ $rc != 0 ] && grep -q "$tmp/ahead/final.ckpt" "$tmp/damaged.out"; then echo "ok   a damaged final.ckpt is refused by name, not skipped"
else fail "--init DIR with a damaged final.ckpt: exit $rc, expected an error naming it"; show damaged; fi

# Ctrl-C, then exactly the command the tool prints: every later epoch is saved into the run directory.
c=$tmp/ctrlc
"$train" mobilenet cifar10 --width 0.125 --batch 32 --limit-train 2048 --limit-test 32 --device cpu --threads 2 \
  --epochs 2 --out "$c" > "$tmp/int.out" 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q "\[ *[0-9]*/64\]" "$tmp/int.out" 2> /dev/null && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
resume=$(sed -n 's/.*continue with \(.*\)$/\1/p' "$tmp/int.out")
if [ $rc != 130 ] || [ "$resume" != "$train mobilenet cifar10 --resume $c" ]; then
  fail "Ctrl-C exited $rc and said '${resume:-nothing}', expected 130 and '$train mobilenet cifar10 --resume $c'"; show int
else
  eval "timeout -k 10 300 $resume" > "$tmp/cont.out" 2>&1 || { fail "the printed resume command exited $?"; show cont; }
  step=$(sed -n 's/.*"step": \([0-9]*\).*/\1/p' "$c/log.jsonl" | tail -1)
  if ! grep -q "epoch 2/2: train loss" "$tmp/cont.out" || [ "$step" != 128 ] || [ ! -s "$c/final.ckpt" ]; then
    fail "after '$resume' the run did not finish its 2 epochs (last logged step ${step:-none})"; show cont
  else
    cp "$c/config.json" "$tmp/done-config"
    run done mobilenet cifar10 --resume "$c" # the checkpoint itself must be at the run's end
    has done "resuming '$c/checkpoint.ckpt' at epoch 2, batch 64/64 (step 128)" && echo "ok   Ctrl-C, then '$resume' as printed: the run finished and saved every epoch"
    # ... and resuming it again says that it is finished, why --resume cannot extend it and what can
    has done "the run is finished: all 2 epochs done (step 128)" && has done "--resume cannot add epochs" &&
      has done "$train mobilenet cifar10 --init $c --epochs N" && cmp -s "$c/config.json" "$tmp/done-config" &&
      echo "ok   resuming a finished run says so and how to train on (--init DIR --epochs N), config.json untouched"
  fi
fi

# One process per run: while a run trains, a second --resume of it, or a new run pointed at its
# checkpoint, stops at once (exit 1) naming the process, and changes nothing; once the run has
# stopped its lock file is gone and --resume works. A lock file left by a killed process is harmless.
l=$tmp/live
"$train" "${small[@]}" --epochs 100000 --limit-test 32 --out "$l" > "$tmp/live.out" 2>&1 &
live=$!
for _ in $(seq 1 600); do [ -e "$l/checkpoint.ckpt" ] && break; sleep 0.1; done
cp "$l/config.json" "$tmp/live-config" 2> /dev/null
run second mobilenet cifar10 --resume "$l" --max-steps 3
rc=$?
if [ $rc != 1 ]; then fail "a second --resume of a live run exited $rc, expected 1"; show second
elif has second "the checkpoint '$l/checkpoint.ckpt' is in use: training process $live holds its lock" &&
  cmp -s "$l/config.json" "$tmp/live-config"; then echo "ok   a second --resume of a live run exits 1 naming its process, config.json untouched"
else fail "the refused --resume changed the live run's config.json"; fi
run same "${small[@]}" --out "$tmp/run6" --checkpoint "$l/checkpoint.ckpt"
rc=$?
if [ $rc != 1 ] || [ -e "$tmp/run6" ]; then fail "a new run onto a live run's checkpoint: exit $rc, expected 1 and no run directory"; show same
else has same "is in use" && echo "ok   a new run onto a live run's --checkpoint exits 1 before creating its directory"; fi
kill -INT $live
wait $live
if [ -e "$l/checkpoint.ckpt.lock" ]; then fail "the lock file outlived the run it belonged to"
else
  touch "$l/checkpoint.ckpt.lock" # as a kill -9 leaves it: the lock itself died with the process
  run freed mobilenet cifar10 --resume "$l" --epochs 100000 --max-steps 1 ||
    { fail "--resume after the run stopped exited $?"; show freed; }
  [ -e "$l/checkpoint.ckpt.lock" ] && fail "the resumed run left its lock file behind"
  has freed "nothing to do" && echo "ok   after the run stopped (a stale lock file there), --resume runs and removes the lock file"
fi

# Two new runs on one --out, started together: one trains, the other stops (exit 1) at the lock or
# at the config.json the first wrote, and config.json is the training run's (its --seed, its
# command), so a later --resume continues that run with its settings. The directory is created, then
# locked, then written: before, the second run rewrote config.json and only then met the lock.
two=$tmp/two
"$train" "${small[@]}" --epochs 100000 --limit-test 32 --seed 11 --out "$two" > "$tmp/two-11.out" 2>&1 &
p11=$!
"$train" "${small[@]}" --epochs 100000 --limit-test 32 --seed 22 --out "$two" > "$tmp/two-22.out" 2>&1 &
p22=$!
for _ in $(seq 1 600); do { kill -0 $p11 && kill -0 $p22; } 2> /dev/null || break; sleep 0.1; done
if kill -0 $p11 2> /dev/null; then live=$p11 seed=11 lost=$p22 other=22; else live=$p22 seed=22 lost=$p11 other=11; fi
kill -INT $lost 2> /dev/null # both still training after a minute: a failure, but no hang
wait $lost
rc=$?
for _ in $(seq 1 600); do [ -e "$two/checkpoint.ckpt" ] && break; sleep 0.1; done
kill -INT $live 2> /dev/null
wait $live
if [ $rc != 1 ] || ! grep -qE "is in use|already holds a run" "$tmp/two-$other.out"; then
  fail "the second run on one --out exited $rc, expected 1 at the lock"; show "two-$other"
elif ! grep -q "\"seed\": $seed," "$two/config.json" || ! grep -q -- "--seed $seed --out" "$two/config.json"; then
  fail "config.json is not the training run's (--seed $seed): the refused run rewrote it"; sed 's/^/    | /' "$two/config.json" | grep -E 'seed|command'
else echo "ok   two runs on one --out: the second stops at the lock, config.json stays the first's"; fi

# Two runs without --out started in the same second get a directory each (the second one's name
# ends in -2): the name is taken by an atomic mkdir, not by a check made seconds before.
w=$tmp/cwd
mkdir "$w"
abs_train=$(cd "$(dirname "$train")" && pwd)/$(basename "$train") # the runs start in $w
while [ "$(date +%N | cut -c1)" -gt 3 ]; do sleep 0.01; done # early in a second: one time stamp for both
( cd "$w" && exec timeout -k 10 300 "$abs_train" "${small[@]}" --epochs 1 --max-steps 1 --limit-test 32 ) > "$tmp/same-a.out" 2>&1 &
pa=$!
( cd "$w" && exec timeout -k 10 300 "$abs_train" "${small[@]}" --epochs 1 --max-steps 1 --limit-test 32 ) > "$tmp/same-b.out" 2>&1 &
pb=$!
wait $pa
ra=$?
wait $pb
rb=$?
n=$(ls "$w/runs" 2> /dev/null | wc -l)
if [ $ra != 0 ] || [ $rb != 0 ] || [ "$n" != 2 ]; then
  fail "two runs without --out in one second: exits $ra and $rb, $n run directories (expected 0, 0 and 2)"; show same-a 3; show same-b 3
elif [ "$(cat "$w"/runs/*/config.json | grep -c '"checkpoint": "checkpoint.ckpt"')" != 2 ] ||
     ! ls "$w/runs" | grep -q -- '-2$'; then
  fail "two runs without --out: not one directory each"; ls "$w/runs"
else echo "ok   two runs without --out in the same second: $(ls "$w/runs" | tr '\n' ' ')"; fi

# The speed and reproducibility switches are run settings too: --resume DIR brings them back.
run sw "${small[@]}" --epochs 1 --limit-test 32 --out "$tmp/run4" --max-steps 2 --gpu-data on --deterministic ||
  { fail "run with --gpu-data on --deterministic exited $?"; show sw; }
run swr mobilenet cifar10 --resume "$tmp/run4" --max-steps 3 || { fail "its resume exited $?"; show swr; }
has swr "--gpu-data on" && has swr "--deterministic" && echo "ok   --resume DIR keeps --gpu-data and --deterministic"
# A CUDA run's config.json says the fast path was on; resumed on the CPU, where it cannot run, it is
# turned off (a flag given again would be refused, below).
sed -i 's/"gpu_data": [01]/"gpu_data": 1/; s/"cuda_graph": [01]/"cuda_graph": 1/' "$tmp/run4/config.json"
run swc mobilenet cifar10 --resume "$tmp/run4" --device cpu --max-steps 4 || { fail "resuming a CUDA-graph run on the CPU exited $?"; show swc; }
grep -q '"cuda_graph": 0' "$tmp/run4/config.json" && ! grep -q "replayed as a CUDA graph" "$tmp/swc.out" &&
  echo "ok   a run recorded with --cuda-graph on resumes on the CPU with it off" ||
  { fail "a run recorded with --cuda-graph on, resumed on the CPU: config.json or banner wrong"; show swc; }
# A switch the backend cannot honour is refused at start-up, before the run directory exists.
run graph "${small[@]}" --out "$tmp/run5" --cuda-graph on
rc=$?
if [ $rc != 2 ] || [ -e "$tmp/run5" ]; then fail "--cuda-graph on the CPU: exit $rc, run directory $([ -e "$tmp/run5" ] && echo created || echo absent)"; show graph
else has graph "--cuda-graph on: the cpu backend cannot capture graphs" && echo "ok   --cuda-graph on the CPU exits 2 before creating the run directory"; fi

# A log that cannot be written stops the run with its name, exit 1. The file-size limit stands in for a
# full disk (/dev/full is refused at start-up: a device is not a log): 2 KiB hold config.json and
# about 16 step lines of --log-every 1, and the epoch's 32 steps come before the first save. The
# output goes through a pipe, which the limit does not cover.
( ulimit -f 2; trap '' XFSZ; exec timeout -k 10 300 "$train" "${small[@]}" --limit-train 1024 --epochs 1 --limit-test 32 \
    --out "$tmp/run3" --log-every 1 ) 2>&1 | cat > "$tmp/full.out"
rc=${PIPESTATUS[0]}
if [ "$rc" != 1 ]; then fail "a run whose log hit the file-size limit exited $rc, expected 1"; show full
else has full "cannot write the log '$tmp/run3/log.jsonl': File too large" && echo "ok   a failed log write exits 1 naming the file"; fi

finish test_rundir
