#!/usr/bin/env bash
# The gate of the tests labelled `slow` (tests/tests.cmake): the long comparisons (PyTorch twins,
# whole-trainer runs, long fuzzing) that would take the default `ctest` past a few minutes on two
# cores. Without DRNET_SLOW_TESTS=1 they skip, saying how to run them; .ci/run runs them.
#   bash tests/slow.sh SECONDS COMMAND...   (SECONDS: what the test takes on an idle 2-core machine)
secs=${1:?usage: slow.sh SECONDS COMMAND...}; shift
if [ "${DRNET_SLOW_TESTS:-0}" = 1 ]; then exec "$@"; fi
echo "skipped: a slow test (about $secs s on 2 idle cores); DRNET_SLOW_TESTS=1 ctest --test-dir build -L slow runs the slow ones"
exit 77
