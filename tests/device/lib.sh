# The GPU session's helpers that can be checked without a GPU: sourced by tests/device/session.sh
# and speed.sh, and run on fake tools, wheels and logs by tests/device/test_lib.sh (ctest
# test_device_lib). Each one is a decision the one lent call must get right the first time.

# find_nvcc: 0 when nvcc is on PATH or was found in a toolkit's usual home, whose bin/ then goes first
# on PATH (CMake takes the nvcc on PATH: without it the build has no CUDA backend and every GPU stage
# is wasted). Homes: $CUDA_HOME, $CUDA_PATH, then DRNET_CUDA_HOMES (default /usr/local/cuda and the
# versioned /usr/local/cuda-*, newest first). FOUND_NVCC says where it came from.
find_nvcc() {
  FOUND_NVCC=""
  if command -v nvcc > /dev/null 2>&1; then FOUND_NVCC="$(command -v nvcc) (on PATH)"; return 0; fi
  local homes=${DRNET_CUDA_HOMES:-"/usr/local/cuda $(ls -d /usr/local/cuda-* 2> /dev/null | sort -rV | tr '\n' ' ')"}
  local d
  for d in ${CUDA_HOME:-} ${CUDA_PATH:-} $homes; do
    if [ -x "$d/bin/nvcc" ]; then
      export PATH="$d/bin:$PATH"
      FOUND_NVCC="$d/bin/nvcc (not on PATH: $d/bin added)"
      return 0
    fi
  done
  return 1
}

# find_python_tool NAME PY...: 0 when NAME (cmake or ninja) is on PATH or one of the Pythons has it as
# a pip package (module cmake: cmake.CMAKE_BIN_DIR; module ninja: ninja.BIN_DIR) or beside itself
# (pip's console scripts); that folder then goes first on PATH. FOUND_TOOL says where it came from.
find_python_tool() {
  local name=$1; shift
  FOUND_TOOL=""
  if command -v "$name" > /dev/null 2>&1; then FOUND_TOOL="$(command -v "$name") (on PATH)"; return 0; fi
  local py dir attr
  [ "$name" = cmake ] && attr=CMAKE_BIN_DIR || attr=BIN_DIR
  for py in "$@"; do
    command -v "$py" > /dev/null 2>&1 || continue
    for dir in "$("$py" -c "import $name; print($name.$attr)" 2> /dev/null)" \
               "$(dirname "$(command -v "$py")")"; do
      if [ -n "$dir" ] && [ -x "$dir/$name" ]; then
        export PATH="$dir:$PATH"
        FOUND_TOOL="$dir/$name (from $py's installation, not on PATH: $dir added)"
        return 0
      fi
    done
  done
  return 1
}

# data_source: where the session's CIFAR-10 comes from, printed: CIFAR10_PATH when it is readable,
# else .device/cifar10-jpeg.tar.gz (converted during the build); status 1 and nothing printed when
# there is neither. Run from the repository root.
data_source() {
  if [ -n "${CIFAR10_PATH:-}" ] && [ -r "$CIFAR10_PATH" ]; then echo "CIFAR10_PATH=$CIFAR10_PATH"; return 0; fi
  if [ -f .device/cifar10-jpeg.tar.gz ]; then echo ".device/cifar10-jpeg.tar.gz (converted while the code builds)"; return 0; fi
  return 1
}

# ctest_verdict LOG: 0 when the ctest output in LOG ran at least one test and every test passed. A
# skipped test is a failure here: under DRNET_REQUIRE_GPU=1 on a GPU machine nothing may skip, and
# ctest itself counts a skip as passed ("100% tests passed" with "***Skipped" lines). Prints one line
# either way: the counts and the names of the tests that failed, skipped or did not run.
ctest_verdict() {
  local log=$1
  local ran passed bad
  ran=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: ' "$log")
  passed=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* +Passed +[0-9.]+ sec' "$log")
  bad=$(grep -E '^ *[0-9]+/[0-9]+ Test +#[0-9]+: ' "$log" | grep -vE ' +Passed +[0-9.]+ sec' |
        sed -E 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+) \.*(\*\*\*)? *([A-Za-z ]*[a-z]).*$/\1 (\3)/' |
        paste -sd, - | sed 's/,/, /g')
  if grep -q 'No tests were found' "$log" || [ "$ran" = 0 ]; then echo "no test ran"; return 1; fi
  if [ "$passed" = "$ran" ]; then echo "$passed of $ran tests passed"; return 0; fi
  echo "$passed of $ran tests passed; not passed: $bad"
  return 1
}

# Our programs need cuDNN's folder on LD_LIBRARY_PATH (cuDNN 9 loads its sub-libraries by name), but
# PyTorch must not see it: a system cuDNN found before the one in PyTorch's wheel can break `import
# torch`. keep_ld_path saves the environment's own value once (exported, so a nested script keeps
# the first) and sets TORCH_ENV, a command prefix that restores it: run PyTorch as
# `"${TORCH_ENV[@]}" python3 ...`, which also works under `timeout` (a shell function would not).
keep_ld_path() {
  if [ -z "${DRNET_ORIG_LD_SET:-}" ]; then
    if [ -n "${LD_LIBRARY_PATH+set}" ]; then export DRNET_ORIG_LD_SET=1 DRNET_ORIG_LD_LIBRARY_PATH=$LD_LIBRARY_PATH
    else export DRNET_ORIG_LD_SET=0 DRNET_ORIG_LD_LIBRARY_PATH=""; fi
  fi
  if [ "$DRNET_ORIG_LD_SET" = 1 ]; then TORCH_ENV=(env LD_LIBRARY_PATH="$DRNET_ORIG_LD_LIBRARY_PATH")
  else TORCH_ENV=(env -u LD_LIBRARY_PATH); fi
}
