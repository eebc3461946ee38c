#!/usr/bin/env bash
# The device session's rehearsal on a stand-in for the GPU machine's image, for contributors before a
# GPU attempt (docs/DESIGN-NOTES.md, "A borrowed GPU"). That image has PyTorch 2.11 with its CUDA 13
# wheels (cuDNN, NCCL, cuBLAS under the namespace package `nvidia`), CMake 4 and Ninja from pip, and a
# CUDA toolkit that may lack cuDNN, NCCL or even cuBLAS. This script builds that situation here:
#   - a venv with torch==2.11.0 (and its nvidia wheels), cmake, ninja, pillow, numpy from PyPI
#     (about 3 GB, kept in $DRNET_IMAGE_DIR, default /tmp/drnet-image, for the next time);
#   - inside a private mount namespace (root and `unshare` needed; nothing outside it changes), the
#     toolkit and /usr/local/include, /usr/include seen without cuDNN and NCCL, and with --no-cublas
#     without cuBLAS too;
# then runs tests/device/session.sh with the venv first on PATH. Exit: the session's (3: rehearsal
# passed). Usage, from the repository root: bash tests/device/rehearse_image.sh [--no-cublas]
set -euo pipefail
strip="*cudnn* *nccl*"
[ "${1:-}" = --no-cublas ] && strip="$strip *cublas* *nvblas*"
root=${DRNET_IMAGE_DIR:-/tmp/drnet-image}
venv=$root/venv
mkdir -p "$root"
if ! "$venv/bin/python3" -c 'import torch, nvidia' 2>/dev/null; then
  echo "image: installing torch 2.11.0 and its CUDA 13 wheels into $venv (once)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch==2.11.0 cmake ninja pillow numpy
fi
tk=$(readlink -f "$(dirname "$(dirname "$(command -v nvcc)")")")

# hidden_copy SRC DEST: DEST = SRC without the files matching $strip (hard links: no space, no time).
hidden_copy() {
  rm -rf "$2"; cp -al "$1" "$2" 2>/dev/null || cp -a "$1" "$2"
  local args=() p
  for p in $strip; do args+=(${args[0]+-o} -name "$p"); done
  find "$2" \( "${args[@]}" \) -prune -exec rm -rf {} +
}
binds="mount --bind $root/toolkit $tk"
hidden_copy "$tk" "$root/toolkit"
n=0
for inc in /usr/local/include /usr/include; do
  if compgen -G "$inc/cudnn*.h" >/dev/null || compgen -G "$inc/nccl*.h" >/dev/null; then
    n=$((n + 1)); hidden_copy "$inc" "$root/include$n"; binds="$binds && mount --bind $root/include$n $inc"
  fi
done
echo "image: toolkit $tk seen without: $strip; python3: $venv/bin/python3 ($("$venv/bin/python3" -c 'import torch; print(torch.__version__)'))"
rm -rf "$root/build" # a fresh configure: the cached finds of another mode would answer otherwise
rc=0
unshare -m --propagation private bash -c "$binds && PATH='$venv/bin':\"\$PATH\" OUT='$root/out' \
  DRNET_DEVICE_BUILD='$root/build' bash tests/device/session.sh" || rc=$?
echo "image: session exit $rc; logs in $root/out"
exit $rc
