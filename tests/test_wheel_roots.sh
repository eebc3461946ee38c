#!/usr/bin/env bash
# How CMake and the GPU session find PyTorch's cuDNN, NCCL and cuBLAS wheels, on fakes:
# 1. cmake/nvidia_wheel_roots.py against a fake `nvidia` namespace package split over two folders (as
#    pip's site and user folders can be), laid out like the CUDA 13 wheels;
# 2. cmake/nvidia_libraries.cmake (through tests/find_libraries) against fake toolkits and wheels:
#    each library from beside its own header, the wheel's cuBLAS only where the toolkit has none and
#    only of the toolkit's major version. Usage: test_wheel_roots.sh [PYTHON [CMAKE]]
set -u
py=${1:-python3}
cmake=${2:-cmake}
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

# --- 2. cmake/nvidia_libraries.cmake ------------------------------------------------------------
W=$tmp/w/nvidia
for d in "$tmp"/tk/include "$tmp"/tk/lib "$tmp"/bare/include "$tmp"/bare/lib "$W"/cudnn/include "$W"/cudnn/lib \
         "$W"/nccl/include "$W"/nccl/lib "$W"/cu13/include "$W"/cu13/lib; do mkdir -p "$d"; done
touch "$tmp/tk/include/cudnn.h" "$tmp/tk/include/nccl.h" "$tmp/tk/lib/libcudnn.so" "$tmp/tk/lib/libnccl.so" \
      "$tmp/tk/lib/libcublas.so" "$W/cudnn/include/cudnn.h" "$W/cudnn/lib/libcudnn.so.9" \
      "$W/nccl/include/nccl.h" "$W/nccl/lib/libnccl.so.2" "$W/cu13/include/cublas_v2.h" \
      "$W/cu13/include/cuda_runtime.h" "$W/cu13/lib/libcublas.so.13" "$W/cu13/lib/libcublas.so" "$W/cu13/lib/libcublasLt.so.13" \
      "$W/cu13/lib/libcudart.so.13"
printf '#define CUBLAS_VER_MAJOR 13\n#define CUBLAS_VER_MINOR 1\n' > "$W/cu13/include/cublas_api.h"
src=$(cd "$(dirname "$0")/.." && pwd)
pybin=$(command -v "$py")
n=0
# configure TOOLKIT MAJOR HAVE_CUBLAS [-DVAR=VALUE...]: the fake project's RESULT lines in $tmp/r
configure() {
  n=$((n + 1)); B=$tmp/b$n
  local tk=$1 major=$2 have=$3; shift 3
  PYTHONPATH="$tmp/w" "$cmake" -S "$src/tests/find_libraries" -B "$B" -DDRNET_ROOT="$src" -D_python3="$pybin" \
    -DFAKE_TOOLKIT="$tmp/$tk" -DFAKE_MAJOR="$major" -DHAVE_CUBLAS="$have" "$@" > "$B.log" 2>&1 ||
    { fail "configure $n failed:"; tail -5 "$B.log"; }
  sed -n 's/^-- RESULT //p' "$B.log" > "$tmp/r"
}
# want NAME VALUE WHAT
want() {
  local got; got=$(sed -n "s|^$1=||p" "$tmp/r")
  if [ "$got" = "$2" ]; then echo "ok   $3"; else fail "$3: $1 is '$got', expected '$2'"; fi
}

configure tk 13 1 -DCUDNN_ROOT="$W/cudnn" -DNCCL_ROOT="$W/nccl"
want CUDNN_INCLUDE_DIR "$W/cudnn/include" "CUDNN_ROOT names a wheel next to a toolkit with its own cuDNN: the wheel's header"
want CUDNN_LIBRARY "$W/cudnn/lib/libcudnn.so.9" "... and the wheel's libcudnn.so.9, not the toolkit's libcudnn.so"
want NCCL_LIBRARY "$W/nccl/lib/libnccl.so.2" "NCCL_ROOT likewise: the wheel's libnccl.so.2"
want CUBLAS_LIBRARY "$tmp/tk/lib/libcublas.so" "a toolkit with cuBLAS keeps its own"

configure tk 13 1
want CUDNN_INCLUDE_DIR "$tmp/tk/include" "no CUDNN_ROOT: the toolkit's cuDNN before the wheel's"
want CUDNN_LIBRARY "$tmp/tk/lib/libcudnn.so" "... header and library both"

configure bare 13 0
want CUDNN_LIBRARY "$W/cudnn/lib/libcudnn.so.9" "a toolkit without cuDNN: the wheel's, found through python3"
want NCCL_INCLUDE_DIR "$W/nccl/include" "... and NCCL's"
want CUBLAS_LIBRARY "$B/wheel-cublas/lib/libcublas.so.13" "a toolkit without cuBLAS: the CUDA 13 wheel's, through a folder of its own"
if [ -e "$B/wheel-cublas/include/cublas_api.h" ] && [ ! -e "$B/wheel-cublas/include/cuda_runtime.h" ] &&
   [ -e "$B/wheel-cublas/lib/libcublasLt.so.13" ] && [ ! -e "$B/wheel-cublas/lib/libcudart.so.13" ]; then
  echo "ok   ... holding the cuBLAS headers and libraries only (not the wheel's runtime)"
else fail "the wheel-cublas folder holds the wrong files: $(cd "$B/wheel-cublas" 2>/dev/null && find . -type f -o -type l | tr '\n' ' ')"; fi

configure bare 12 0
want CUBLAS_LIBRARY none "a CUDA 12 toolkit does not take the CUDA 13 wheel's cuBLAS"

[ $failures = 0 ] && echo "test_wheel_roots: all passed" || echo "test_wheel_roots: $failures failed"
exit $((failures > 0))
