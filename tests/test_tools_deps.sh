#!/usr/bin/env bash
# The user tools on a Python without their libraries (python3 -S: no site-packages, so no PyTorch,
# numpy or matplotlib): each exits 1 with one line naming the interpreter and what to install for
# it, never a traceback; run with PYTHON and, where it is another, with /usr/bin/python3 too.
# Usage: test_tools_deps.sh [PYTHON]
set -u
py=${1:-python3}
tools=$(cd "$(dirname "$0")/../tools" && pwd)
source "$(dirname "$0")/lib.sh"
command -v "$py" > /dev/null || { echo "skipped: no $py"; exit 77; }
scratch tools-deps

# check NAME WANT ARGS...: tools/NAME ARGS under $py -S must exit 1 saying WANT in one line, without a traceback.
check() {
  local name=$1 want=$2; shift 2
  (cd "$tmp" && "$py" -S "$tools/$name" "$@") > "$tmp/tool.out" 2>&1
  local rc=$?
  if [ $rc = 1 ] && grep -qF -- "$want" "$tmp/tool.out" && ! grep -q Traceback "$tmp/tool.out" &&
     [ "$(wc -l < "$tmp/tool.out")" = 1 ]; then
    echo "ok   $name without its libraries ($py): $(head -1 "$tmp/tool.out" | cut -c1-120)..."
  else
    fail "$name without its libraries ($py): exit $rc, expected 1 and one line '$want'"; show tool
  fi
}
# The message names the interpreter that ran the tool, and suggests apt only where apt installs for it.
for py in "$py" /usr/bin/python3; do
  command -v "$py" > /dev/null || continue
  exe=$("$py" -S -c 'import sys; print(sys.executable)')
  if [ "$exe" = /usr/bin/python3 ]; then
    torch="(try: apt install python3-torch, or /usr/bin/python3 -m pip install torch)"
    plot="(try: apt install python3-matplotlib, or /usr/bin/python3 -m pip install matplotlib)"
  else
    torch="(try: $exe -m pip install torch, or run with /usr/bin/python3 after apt install python3-torch)"
    plot="(try: $exe -m pip install matplotlib, or run with /usr/bin/python3 after apt install python3-matplotlib)"
  fi
  check export.py "error: tools/export.py: PyTorch is not installed for $exe $torch" run model.pt
  check torch_to_ckpt.py "error: tools/torch_to_ckpt.py: PyTorch is not installed for $exe $torch" model.pt model.ckpt --width 1
  check plot_runs.py "error: tools/plot_runs.py: matplotlib is not installed for $exe $plot" log.jsonl
  [ "$exe" = /usr/bin/python3 ] && break
done
finish test_tools_deps
