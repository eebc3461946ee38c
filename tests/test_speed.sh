#!/usr/bin/env bash
# --gpu-data, --cuda-graph and --bench-steps from the command line, on the CPU (a GPU run of the
# same flags is tests/test_cuda_speed.c and tests/device/speed.sh):
#  - training with --gpu-data on (batches built by the backend from resident records, the shared
#    definition in nn/augment.h) gives bit-identical weights, momentum, statistics and metrics
#    to the loader's batches (--gpu-data off), over two epochs with a short last batch and
#    evaluation; the checkpoints are compared tensor by tensor (all but the wall-clock seconds);
#  - --cuda-graph on the CPU, and --profile with --cuda-graph, exit 2 naming the flag;
#  - --bench-steps prints its BENCH line.
# Needs the real data (CIFAR10_PATH) and /usr/bin/python3 with numpy for the comparison (exit 77
# without them). Usage: test_speed.sh PATH-TO-TRAIN
set -u
train=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/lib.sh"
need_data
need_python /usr/bin/python3 numpy
scratch speed

common=(mobilenet cifar10 --device cpu --width 0.25 --limit-train 300 --limit-test 130 --batch 64 --epochs 2)
for g in off on; do
  if ! "$train" "${common[@]}" --gpu-data $g --checkpoint "$tmp/$g.ckpt" --out "$tmp/run-$g" --log "$tmp/$g.log" > "$tmp/$g.out" 2>&1; then
    fail "train --gpu-data $g exited non-zero"; sed 's/^/    | /' "$tmp/$g.out" | tail -5
  fi
done
REF="$here/../tools" /usr/bin/python3 - "$tmp/off.ckpt" "$tmp/on.ckpt" <<'EOF' || fail "checkpoints differ"
import os, sys
sys.path.insert(0, os.environ["REF"])
import numpy as np
import drnet_ckpt
a, b = drnet_ckpt.read(sys.argv[1]), drnet_ckpt.read(sys.argv[2])
skip = {"train.epoch_seconds", "train.run_seconds"}  # wall clock
bad = [k for k in a if k not in skip and (k not in b or not np.array_equal(np.asarray(a[k]), np.asarray(b[k])))]
bad += [k for k in b if k not in a]
print(f"{'ok  ' if not bad else 'FAIL'} --gpu-data on == off: {len(a) - len(skip)} checkpoint entries compared, differing: {len(bad)} {bad[:5]}")
sys.exit(1 if bad else 0)
EOF
# The per-epoch log lines agree in everything but the timing.
strip() { sed -E 's/, "seconds": [^,]*, "img_per_s": [^,}]*, "run_seconds": [^,}]*//' "$1"; }
if [ "$(strip "$tmp/off.log")" != "$(strip "$tmp/on.log")" ] || [ ! -s "$tmp/on.log" ]; then
  fail "epoch logs differ"; diff <(strip "$tmp/off.log") <(strip "$tmp/on.log") | head -5
else
  echo "ok   --gpu-data on == off: epoch logs (losses, accuracies, lr)"
fi

expect 2 "--cuda-graph on: the cpu backend cannot capture graphs" "${common[@]}" --cuda-graph on --max-steps 1
expect 2 "--gpu-data maybe: expected on, off or auto" "${common[@]}" --gpu-data maybe
expect 2 "--profile times every op" "${common[@]}" --profile --cuda-graph on
expect 0 'BENCH {"impl": "drnet", "device": "cpu", "gpu_data": 1, "cuda_graph": 0' "${common[@]}" --gpu-data on --bench-steps 2 --bench-repeats 1
# auto (the default) is off on the CPU: the loader builds the batches, the step runs eagerly.
expect 0 'BENCH {"impl": "drnet", "device": "cpu", "gpu_data": 0, "cuda_graph": 0' "${common[@]}" --bench-steps 2 --bench-repeats 1

finish test_speed
