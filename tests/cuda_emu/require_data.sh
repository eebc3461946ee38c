#!/usr/bin/env bash
# A GPU test that cannot run fails under DRNET_REQUIRE_GPU=1, whatever the reason, so that a GPU
# session never reports a skip as a pass. Here the reason is missing data (no CIFAR10_PATH), on the
# CUDA emulator, where the device itself is there: test_resume cuda and the session's command lines
# must fail with it and skip (77) without it. (test_dist nccl has the same rule; this build has no NCCL.)
#   bash tests/cuda_emu/require_data.sh TEST_RESUME TRAIN BENCH_DEPTHWISE
set -u
here=$(cd "$(dirname "$0")" && pwd)
RESUME=${1:?usage: require_data.sh TEST_RESUME TRAIN BENCH_DEPTHWISE} TRAIN=${2:?} BENCH=${3:?}
failures=0
# expect_rc WANT REQUIRE CMD...: CMD without CIFAR10_PATH, DRNET_REQUIRE_GPU=REQUIRE, must exit WANT.
expect_rc() {
  local want=$1 req=$2; shift 2
  local out rc
  out=$(env -u CIFAR10_PATH DRNET_REQUIRE_GPU="$req" "$@" 2>&1)
  rc=$?
  if [ "$rc" = "$want" ]; then echo "ok   exit $rc with DRNET_REQUIRE_GPU=$req: $(basename "$1") ${*:2}"
  else echo "FAIL: exit $rc, expected $want, with DRNET_REQUIRE_GPU=$req: $*"; echo "$out" | tail -3; failures=$((failures + 1)); fi
}
expect_rc 1 1 "$RESUME" "$TRAIN" cuda
expect_rc 77 0 "$RESUME" "$TRAIN" cuda
expect_rc 1 1 bash "$here/commands.sh" "$TRAIN" "$BENCH"
expect_rc 77 0 bash "$here/commands.sh" "$TRAIN" "$BENCH"
[ $failures = 0 ] && echo "require_data: all checks passed" || { echo "require_data: $failures check(s) FAILED"; exit 1; }
