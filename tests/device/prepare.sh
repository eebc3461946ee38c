#!/usr/bin/env bash
# Run on the development machine before a GPU session: fills the ignored folder .device/ with what
# the GPU machine cannot fetch — the 19 MB CIFAR-10 JPEG pack and its converter (from
# ../shared/tools/device-prep.sh), zlib's development files (in case the GPU image lacks zlib.h),
# and the commit being tested. Then call the device tool with carry [".device"] and the command
#   bash tests/gpu_session.sh all
set -euo pipefail
top=$(git rev-parse --show-toplevel)
cd "$top"
mkdir -p "$(git rev-parse --git-dir)/info"
bash ../shared/tools/device-prep.sh
mkdir -p .device/zlib
if [ ! -f .device/zlib/usr/include/zlib.h ]; then
  (cd /tmp && rm -f zlib1g-dev_*.deb && apt-get download zlib1g-dev >/dev/null 2>&1 && dpkg -x zlib1g-dev_*.deb "$top/.device/zlib") \
    || echo "warning: could not fetch zlib1g-dev; the GPU build will rely on the image's zlib.h"
fi
git rev-parse HEAD > .device/COMMIT
git status --short > .device/STATUS
echo "commit $(cat .device/COMMIT)$( [ -s .device/STATUS ] && echo ' (with uncommitted changes: see .device/STATUS)')"
du -sh .device
