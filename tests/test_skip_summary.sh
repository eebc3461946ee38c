#!/usr/bin/env bash
# tests/skip_summary.sh and tests/slow.sh on a real ctest run of a small project: after the tests,
# ctest prints each skipped test with its reason (a slow one says how to run it), and a slow test
# runs when DRNET_SLOW_TESTS=1.   Usage: test_skip_summary.sh CTEST
set -u
here=$(cd "$(dirname "$0")" && pwd)
CTEST=${1:?usage: test_skip_summary.sh CTEST}
. "$here/lib.sh"
scratch skip-summary
cat > "$tmp/CMakeLists.txt" << EOF2
cmake_minimum_required(VERSION 3.10)
project(skips NONE)
enable_testing()
add_test(NAME t_pass COMMAND sh -c "echo fine")
add_test(NAME t_nodata COMMAND sh -c "echo 'some output'; echo 't_nodata: skipped: no data here'; exit 77")
add_test(NAME t_slow COMMAND bash $here/slow.sh 42 sh -c "echo 'ran the slow one'")
set_tests_properties(t_nodata t_slow PROPERTIES SKIP_RETURN_CODE 77)
file(WRITE \${CMAKE_BINARY_DIR}/CTestCustom.cmake
     "set(CTEST_CUSTOM_POST_TEST \\"bash $here/skip_summary.sh \${CMAKE_BINARY_DIR}/Testing/Temporary/LastTest.log\\")\\n")
EOF2
"$(dirname "$CTEST")/cmake" -S "$tmp" -B "$tmp/b" > "$tmp/cfg.out" 2>&1 || { show cfg; fail "cmake"; finish test_skip_summary; }
env -u DRNET_SLOW_TESTS "$CTEST" --test-dir "$tmp/b" > "$tmp/run.out" 2>&1 # as a user runs it
grep -qE '^ +t_nodata +skipped: no data here$' "$tmp/run.out" && echo "ok   a skip's reason is printed" || { fail "no reason line for t_nodata"; show run 12; }
grep -qE '^ +t_slow +skipped: a slow test \(about 42 s on 2 idle cores\)' "$tmp/run.out" && echo "ok   a slow test skips by default, saying why" ||
  { fail "no slow-skip line for t_slow"; show run 12; }
grep -q 't_pass' <(sed -n '/Skipped tests and why/,$p' "$tmp/run.out") && { fail "a passing test is listed as skipped"; show run 12; }
DRNET_SLOW_TESTS=1 "$CTEST" --test-dir "$tmp/b" -R t_slow -V > "$tmp/slow.out" 2>&1
grep -q 'ran the slow one' "$tmp/slow.out" && grep -q '100% tests passed' "$tmp/slow.out" && echo "ok   DRNET_SLOW_TESTS=1 runs it" ||
  { fail "DRNET_SLOW_TESTS=1 did not run the slow test"; show slow 12; }
finish test_skip_summary
