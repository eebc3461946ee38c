#!/usr/bin/env bash
# Step 1 of a GPU session on a machine that cannot download anything (see docs/gpu-session.md):
# fills the git-ignored folder .device/ with what the GPU machine needs and cannot fetch, about 20 MB:
#   - the CIFAR-10 JPEG pack (19 MB) and its converter, when the project's shared data folder has
#     them (a machine with the real archive needs neither: session.sh uses CIFAR10_PATH directly);
#   - zlib's development files, in case the GPU machine's image lacks zlib.h;
#   - the commit being tested, and any uncommitted changes, for the logs.
# Then run tests/device/session.sh there, with .device/ carried along.
set -euo pipefail
top=$(git rev-parse --show-toplevel)
cd "$top"
mkdir -p .device "$(git rev-parse --git-dir)/info"
grep -qx '/.device/' "$(git rev-parse --git-dir)/info/exclude" 2>/dev/null ||
  echo '/.device/' >> "$(git rev-parse --git-dir)/info/exclude"

prep=../shared/tools/device-prep.sh
if [ -x "$prep" ] || [ -f "$prep" ]; then
  bash "$prep" >/dev/null
  echo "data: $(du -h .device/cifar10-jpeg.tar.gz | cut -f1) JPEG pack and its converter in .device/"
else
  echo "data: no JPEG pack here; the GPU machine needs CIFAR10_PATH pointing at the CIFAR-10 archive"
fi

if [ ! -f .device/zlib/usr/include/zlib.h ]; then
  mkdir -p .device/zlib
  (cd /tmp && rm -f zlib1g-dev_*.deb && apt-get download zlib1g-dev >/dev/null 2>&1 &&
     dpkg -x zlib1g-dev_*.deb "$top/.device/zlib") ||
    echo "warning: could not fetch zlib1g-dev; the GPU build will rely on the image's zlib.h"
fi

git rev-parse HEAD > .device/COMMIT
git status --short --untracked-files=no > .device/STATUS
echo "commit $(cat .device/COMMIT)$( [ -s .device/STATUS ] && echo ' (with uncommitted changes: see .device/STATUS)')"
du -sh .device
