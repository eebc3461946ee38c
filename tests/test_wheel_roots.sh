#!/usr/bin/env bash
# cmake/nvidia_wheel_roots.py, which CMake and the GPU session use to find PyTorch's cuDNN and NCCL on
# a machine whose CUDA toolkit has neither: against a fake `nvidia` namespace package split over two
# folders (as pip's site and user folders can be), laid out like the CUDA 13 wheels. Usage:
# test_wheel_roots.sh [PYTHON]
set -u
py=${1:-python3}
script=$(cd "$(dirname "$0")/../cmake" && pwd)/nvidia_wheel_roots.py
source "$(dirname "$0")/lib.sh"
need_python "$py" os
scratch wheels

mkdir -p "$tmp/a/nvidia/cudnn/include" "$tmp/a/nvidia/cudnn/lib" "$tmp/a/nvidia/cu13/lib" \
         "$tmp/a/nvidia/__pycache__" "$tmp/b/nvidia/nccl/include" "$tmp/b/nvidia/nccl/lib"
touch "$tmp/a/nvidia/cudnn/include/cudnn.h" "$tmp/a/nvidia/notes.txt"
got=$(PYTHONPATH="$tmp/a:$tmp/b" "$py" "$script" | sort | tr '\n' ' ')
want="$tmp/a/nvidia/cu13 $tmp/a/nvidia/cudnn $tmp/b/nvidia/nccl "
if [ "$got" = "$want" ]; then echo "ok   the wheel folders with include/ or lib/, from both portions of the package"
else fail "found '$got', expected '$want'"; fi

mkdir -p "$tmp/empty"
out=$(cd "$tmp/empty" && PYTHONPATH="$tmp/empty" "$py" -S "$script" 2>&1); rc=$?
if [ $rc = 0 ] && [ -z "$out" ]; then echo "ok   without the package: nothing printed, exit 0"
else fail "without the package: exit $rc, printed '$out'"; fi

[ $failures = 0 ] && echo "test_wheel_roots: all passed" || echo "test_wheel_roots: $failures failed"
exit $((failures > 0))
