#!/usr/bin/env bash
# One fuzz harness as a CTest entry. With clang's libFuzzer available: builds the harness with
# -fsanitize=fuzzer,address,undefined, fuzzes for SECONDS from the committed seed corpus (new inputs
# go to a scratch corpus under WORKDIR, the committed one is only read), prints executions and
# coverage, and fails on any finding or on fewer than MIN_EXECS executions. Without clang, or with
# SECONDS 0 (the sanitizer build; or DRNET_FUZZ_SECONDS=0 in the environment): replays the seed
# corpus and the crafted regression inputs through REPLAY, the harness built with the project's
# compiler. Usage: run_fuzz.sh NAME SECONDS MIN_EXECS REPLAY WORKDIR
set -euo pipefail
name=$1 seconds=${DRNET_FUZZ_SECONDS:-$2} min_execs=$3 replay=$4 work=$5
src=$(cd "$(dirname "$0")/../.." && pwd)
seeds=$src/tests/fuzz/corpus/$name
case $name in
  cifar10) sources=("$src/data/cifar10.c" "$src/nn/util.c") ;;
  checkpoint) sources=("$src/nn/checkpoint.c" "$src/nn/util.c") ;;
  *) echo "unknown harness $name"; exit 2 ;;
esac
mkdir -p "$work"
clang=${CLANG:-clang}
fuzzer=$work/fuzz_$name
if [ "$seconds" != 0 ] && command -v "$clang" > /dev/null &&
   "$clang" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I"$src" \
     "$src/tests/fuzz/fuzz_$name.c" "${sources[@]}" -lz -o "$fuzzer" 2> "$work/build_$name.log"; then
  rm -rf "$work/corpus_$name" && mkdir -p "$work/corpus_$name"
  log=$work/fuzz_$name.log
  set +e
  (cd "$work" && "$fuzzer" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
     -max_len=32768 -artifact_prefix="$work/" "$work/corpus_$name" "$seeds") > "$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  edges=$(grep -o 'Loaded 1 modules *([0-9]* inline 8-bit counters)' "$log" | grep -o '([0-9]*' | tr -d '(' || true)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*' || true)
  echo "fuzz_$name: libFuzzer ($("$clang" --version | head -1)), ${seconds} s: $execs executions, coverage" \
       "${cov:-?} of ${edges:-?} instrumented edges (reader + util); last status: $last"
  if [ $rc != 0 ]; then
    echo "FAIL: fuzz_$name found a problem (exit $rc); the input is saved under $work:"
    grep -E 'ERROR|runtime error|SUMMARY|Test unit written|deadly signal|Timeout' "$log" | head -20
    exit 1
  fi
  if [ "${execs:-0}" -lt "$min_execs" ]; then
    echo "FAIL: fuzz_$name ran only $execs executions in $seconds s (at least $min_execs wanted)"
    exit 1
  fi
  echo "fuzz_$name: no finding"
else
  [ "$seconds" != 0 ] && echo "fuzz_$name: clang with libFuzzer not available (see $work/build_$name.log); replaying the corpus"
  crafted=()
  [ $name = checkpoint ] && crafted=("$src"/tests/crafted/*.bin)
  "$replay" "$seeds" "${crafted[@]}"
fi
