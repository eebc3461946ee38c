#!/usr/bin/env bash
# The user tools on a Python without their libraries (python3 -S: no site-packages, so no PyTorch,
# numpy or matplotlib): each exits 1 with one line naming what to install, never a traceback.
# Usage: test_tools_deps.sh [PYTHON]
set -u
py=${1:-python3}
tools=$(cd "$(dirname "$0")/../tools" && pwd)
source "$(dirname "$0")/lib.sh"
command -v "$py" > /dev/null || { echo "skipped: no $py"; exit 77; }
scratch tools-deps

# check NAME WANT ARGS...: tools/NAME ARGS under python -S must exit 1 saying WANT, without a traceback.
check() {
  local name=$1 want=$2; shift 2
  (cd "$tmp" && "$py" -S "$tools/$name" "$@") > "$tmp/tool.out" 2>&1
  local rc=$?
  if [ $rc = 1 ] && grep -qF -- "$want" "$tmp/tool.out" && ! grep -q Traceback "$tmp/tool.out"; then
    echo "ok   $name without its libraries: $(head -1 "$tmp/tool.out" | cut -c1-90)..."
  else
    fail "$name without its libraries: exit $rc, expected 1 and '$want'"; show tool
  fi
}
check export.py "error: export.py needs PyTorch and numpy" run model.pt
check torch_to_ckpt.py "error: torch_to_ckpt.py needs PyTorch and numpy" model.pt model.ckpt --width 1
check plot_runs.py "error: plotting needs matplotlib" log.jsonl
finish test_tools_deps
