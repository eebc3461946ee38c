#!/usr/bin/env bash
# tests/device/lib.sh, the GPU session's decisions, on fake toolkits, Python packages, data and ctest
# runs, so that a lent GPU's one call does not discover them:
#   find_nvcc          nvcc off PATH is found in a toolkit home and put on PATH
#   find_python_tool   cmake off PATH is found in a Python's pip package
#   data_source        no CIFAR10_PATH and no .device/ pack: nothing to train on (the session stops)
#   ctest_verdict      a skipped test is not a pass (a real ctest run: pass, skip, fail)
#   TORCH_ENV          PyTorch's commands see the environment's LD_LIBRARY_PATH, not ours
# Usage: test_lib.sh CTEST (ctest test_device_lib passes ${CMAKE_CTEST_COMMAND}).
set -u
here=$(cd "$(dirname "$0")" && pwd)
CTEST=${1:?usage: test_lib.sh CTEST}
. "$here/../lib.sh" # fail, finish
. "$here/lib.sh"
# check DESCRIPTION OK: OK is 1 when the check holds.
check() { if [ "${2:-}" = 1 ]; then echo "ok   $1"; else fail "$1"; fi; }
T=$(mktemp -d /tmp/drnet-device-lib-XXXXXX)
trap 'rm -rf "$T"' EXIT
# A PATH with the shell tools and nothing else (no toolkit, no cmake, no pip folder).
mkdir -p "$T/coreutils"
for t in bash sh dirname cat grep sed tr ls sort env paste; do ln -s "$(command -v "$t")" "$T/coreutils/$t"; done
bare_path=$T/coreutils

# find_nvcc
mkdir -p "$T/cuda-fake/bin"
printf '#!/bin/sh\necho "Cuda compilation tools, release 13.0"\n' > "$T/cuda-fake/bin/nvcc"
chmod +x "$T/cuda-fake/bin/nvcc"
out=$(PATH=$bare_path CUDA_HOME= CUDA_PATH= DRNET_CUDA_HOMES="$T/none $T/cuda-fake" bash -c \
      '. "$1"; find_nvcc && echo "found: $FOUND_NVCC; nvcc -> $(command -v nvcc)"' _ "$here/lib.sh")
check "find_nvcc: nvcc off PATH is found in a toolkit home ($out)" \
      "$([ "$out" = "found: $T/cuda-fake/bin/nvcc (not on PATH: $T/cuda-fake/bin added); nvcc -> $T/cuda-fake/bin/nvcc" ] && echo 1)"
out=$(PATH=$bare_path CUDA_HOME= CUDA_PATH= DRNET_CUDA_HOMES="$T/none" bash -c '. "$1"; find_nvcc; echo "rc $?"' _ "$here/lib.sh")
check "find_nvcc: no toolkit anywhere is reported ($out)" "$([ "$out" = "rc 1" ] && echo 1)"

# find_python_tool: a pip-installed cmake (module cmake, CMAKE_BIN_DIR) for a Python off PATH
py=$(python3 -c "import sys; print(sys.executable)" 2> /dev/null || echo /usr/bin/python3)
mkdir -p "$T/site/cmake" "$T/pipbin"
printf 'CMAKE_BIN_DIR = "%s"\n' "$T/pipbin" > "$T/site/cmake/__init__.py"
printf '#!/bin/sh\necho "cmake version 3.99 (fake)"\n' > "$T/pipbin/cmake"
chmod +x "$T/pipbin/cmake"
out=$(PATH=$bare_path PYTHONPATH="$T/site" bash -c '. "$1"; find_python_tool cmake "$2" && cmake --version' \
      _ "$here/lib.sh" "$py")
check "find_python_tool: cmake from a Python's pip package when none is on PATH ($out)" \
      "$([ "$out" = "cmake version 3.99 (fake)" ] && echo 1)"
out=$(PATH=$bare_path bash -c '. "$1"; find_python_tool ninja "$2"; echo "rc $?"' _ "$here/lib.sh" "$py")
check "find_python_tool: no ninja anywhere is reported ($out)" "$([ "$out" = "rc 1" ] && echo 1)"

# data_source, from an empty tree, with a pack, with CIFAR10_PATH
mkdir -p "$T/tree"
out=$(cd "$T/tree" && CIFAR10_PATH= bash -c '. "$1"; data_source; echo "rc $?"' _ "$here/lib.sh")
check "data_source: neither CIFAR10_PATH nor .device/: none ($out)" "$([ "$out" = "rc 1" ] && echo 1)"
out=$(cd "$T/tree" && CIFAR10_PATH="$T/missing.tar.gz" bash -c '. "$1"; data_source; echo "rc $?"' _ "$here/lib.sh")
check "data_source: an unreadable CIFAR10_PATH is none ($out)" "$([ "$out" = "rc 1" ] && echo 1)"
mkdir -p "$T/tree/.device" && : > "$T/tree/.device/cifar10-jpeg.tar.gz"
out=$(cd "$T/tree" && CIFAR10_PATH= bash -c '. "$1"; data_source' _ "$here/lib.sh")
check "data_source: the .device/ pack ($out)" "$(case $out in .device/cifar10-jpeg.tar.gz*) echo 1 ;; esac)"

# ctest_verdict on a real ctest run: one test passes, one skips (77), one fails
mkdir -p "$T/proj"
cat > "$T/proj/CMakeLists.txt" << 'EOF'
cmake_minimum_required(VERSION 3.10)
project(verdict NONE)
enable_testing()
add_test(NAME t_pass COMMAND sh -c "exit 0")
add_test(NAME t_skip COMMAND sh -c "exit 77")
set_tests_properties(t_skip PROPERTIES SKIP_RETURN_CODE 77)
add_test(NAME t_fail COMMAND sh -c "exit 1")
EOF
cmake_bin=$(dirname "$CTEST")/cmake
"$cmake_bin" -S "$T/proj" -B "$T/proj/b" > "$T/cfg.log" 2>&1 || { cat "$T/cfg.log"; exit 1; }
"$CTEST" --test-dir "$T/proj/b" -R 't_pass|t_skip' > "$T/skip.log" 2>&1
out=$(bash -c '. "$1"; ctest_verdict "$2"; echo "rc $?"' _ "$here/lib.sh" "$T/skip.log")
check "ctest_verdict: a skip is not a pass, although ctest says 100% ($(echo $out))" \
      "$(grep -q '100% tests passed' "$T/skip.log" && [ "$out" = "$(printf '1 of 2 tests passed; not passed: t_skip (Skipped)\nrc 1')" ] && echo 1)"
"$CTEST" --test-dir "$T/proj/b" > "$T/all.log" 2>&1
out=$(bash -c '. "$1"; ctest_verdict "$2"; echo "rc $?"' _ "$here/lib.sh" "$T/all.log")
check "ctest_verdict: a failure and a skip named ($(echo $out))" \
      "$([ "$out" = "$(printf '1 of 3 tests passed; not passed: t_skip (Skipped), t_fail (Failed)\nrc 1')" ] && echo 1)"
"$CTEST" --test-dir "$T/proj/b" -R t_pass > "$T/pass.log" 2>&1
out=$(bash -c '. "$1"; ctest_verdict "$2"; echo "rc $?"' _ "$here/lib.sh" "$T/pass.log")
check "ctest_verdict: all passed ($(echo $out))" "$([ "$out" = "$(printf '1 of 1 tests passed\nrc 0')" ] && echo 1)"
"$CTEST" --test-dir "$T/proj/b" -R no_such_test > "$T/none.log" 2>&1
out=$(bash -c '. "$1"; ctest_verdict "$2"; echo "rc $?"' _ "$here/lib.sh" "$T/none.log")
check "ctest_verdict: no test ran is a failure ($(echo $out))" "$([ "$out" = "$(printf 'no test ran\nrc 1')" ] && echo 1)"

# TORCH_ENV: the environment's own LD_LIBRARY_PATH (set or unset) after the session prepends
# cuDNN's, in a nested script (speed.sh under session.sh) and under `timeout`, as the scripts use it
cat > "$T/outer.sh" << 'EOF'
. "$1"; unset DRNET_ORIG_LD_SET
keep_ld_path
export LD_LIBRARY_PATH=/cudnn/lib:${LD_LIBRARY_PATH:-}
bash "$(dirname "$0")/inner.sh" "$1"
EOF
cat > "$T/inner.sh" << 'EOF'
. "$1"
keep_ld_path # keeps the outer script's saved value
echo "ours $LD_LIBRARY_PATH; torch $(timeout 5 "${TORCH_ENV[@]}" sh -c 'echo "${LD_LIBRARY_PATH-unset}"')"
EOF
for orig in "/orig/lib" "-"; do
  out=$(if [ "$orig" = - ]; then unset LD_LIBRARY_PATH; else export LD_LIBRARY_PATH=$orig; fi
        bash "$T/outer.sh" "$here/lib.sh")
  want="torch $([ "$orig" = - ] && echo unset || echo "$orig")"
  check "TORCH_ENV: PyTorch sees the original LD_LIBRARY_PATH ($out)" "$(case $out in *"; $want") echo 1 ;; esac)"
done
finish test_device_lib
