#!/usr/bin/env bash
# tools/plot_runs.py on hand-written logs: per epoch and against wall-clock time (--time), the run's
# time from run_seconds or, in logs from before it, from the epochs' training time; step lines and a
# partial epoch's first line left out; a file that is not a log refused naming it. Skipped without
# matplotlib. Usage: test_plot.sh [PYTHON]
set -u
py=${1:-/usr/bin/python3}
plot=$(cd "$(dirname "$0")/../tools" && pwd)/plot_runs.py
source "$(dirname "$0")/lib.sh"
need_python "$py" matplotlib
scratch plot

line() { # epoch test_acc seconds [extra JSON fields]
  echo "{\"epoch\": $1, \"step\": $((100 * $1)), \"train_loss\": 1.0, \"train_acc\": 60.0, \"test_loss\": 1.1, \"test_acc\": $2, \"lr\": 0.1, \"seconds\": $3, \"img_per_s\": 300.0${4:-}}"
}
{ line 1 40.0 1000 ', "run_seconds": 1100.0'; line 2 55.5 1000 ', "run_seconds": 2250.0'
  line 3 50.0 1000 ', "run_seconds": 7500.0'; } > "$tmp/new.jsonl"
{ line 1 30.0 600; echo '{"kind": "step", "epoch": 2, "batch": 5, "step": 105, "loss": 1.0, "acc": 50.0, "lr": 0.1}'
  line 2 20.0 100 ', "partial": true'; line 2 45.25 900; } > "$tmp/old.jsonl"

# plot ARGS...: runs the tool in $tmp; its output in $tmp/plot.out, exit status in $rc.
plot() { (cd "$tmp" && "$py" "$plot" "$@") > "$tmp/plot.out" 2>&1; rc=$?; }
png() { [ "$(head -c 4 "$1" | tail -c 3)" = PNG ]; }
has() { grep -qF -- "$1" "$tmp/plot.out" || { fail "$2: output lacks '$1'"; show plot; }; }

plot new.jsonl old.jsonl -o epochs.png
if [ $rc = 0 ] && png "$tmp/epochs.png"; then echo "ok   per epoch: a PNG from two logs"; else fail "per epoch: exit $rc"; show plot; fi
has "new.jsonl: 3 epochs, final test accuracy 50.00% (epoch 3), best 55.50% (epoch 2), 2 h 05 min of run time" "run_seconds"
has "old.jsonl: 2 epochs, final test accuracy 45.25% (epoch 2), best 45.25% (epoch 2), 25.0 min of run time" "an older log"
plot new.jsonl old.jsonl --time -o time.png
if [ $rc = 0 ] && png "$tmp/time.png"; then echo "ok   --time: a PNG against wall-clock time"; else fail "--time: exit $rc"; show plot; fi

printf 'hello\n' > "$tmp/junk.jsonl"
plot junk.jsonl
if [ $rc != 0 ] && grep -q "junk.jsonl:1: not JSON" "$tmp/plot.out"; then echo "ok   a file that is not JSON: refused naming it and the line"
else fail "a file that is not JSON: exit $rc"; show plot; fi
echo '{"kind": "step", "epoch": 1}' > "$tmp/steps.jsonl"
plot steps.jsonl
if [ $rc != 0 ] && grep -q "steps.jsonl has no per-epoch lines" "$tmp/plot.out"; then echo "ok   a log without epoch lines: refused naming it"
else fail "a log without epoch lines: exit $rc"; show plot; fi
# A path that does not exist, and a directory without a log: one line naming it, no traceback.
mkdir "$tmp/empty-run"
for arg in missing.jsonl empty-run; do
  plot "$arg"
  if [ $rc = 1 ] && [ "$(wc -l < "$tmp/plot.out")" = 1 ] && grep -qF "$arg" "$tmp/plot.out" && ! grep -q Traceback "$tmp/plot.out"; then
    echo "ok   $arg: refused in one line: $(cat "$tmp/plot.out")"
  else fail "$arg: exit $rc, expected 1 and one line naming it"; show plot; fi
done
[ "$failures" = 0 ] || { echo "test_plot: $failures failure(s)"; exit 1; }
echo "test_plot: all passed"
