# Shared by the shell tests (each sources it after setting `train`, the binary under test): a
# scratch directory, failure counting, skips that name what is missing, and `expect`.

failures=0
# The Python helpers under tests/reference import each other: no __pycache__ left in the checkout.
export PYTHONDONTWRITEBYTECODE=1
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# scratch NAME: $tmp, a fresh directory removed at exit.
scratch() {
  tmp=$(mktemp -d "/tmp/drnet-$1-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
}

# show NAME [N]: the last N (8) lines of $tmp/NAME.out, indented.
show() { sed 's/^/    | /' "$tmp/$1.out" | tail -"${2:-8}"; }

# data_missing: why CIFAR10_PATH cannot be read (ctest sets it to the path CMake chose), in the same
# words as test_data_path in test_util.c; nothing when it can.
data_missing() {
  if [ -z "${CIFAR10_PATH:-}" ]; then
    echo "no CIFAR-10 data: CIFAR10_PATH is not set (ctest sets it to the path CMake chose)"
  elif [ ! -r "$CIFAR10_PATH" ]; then
    echo "no CIFAR-10 data at $CIFAR10_PATH (the path CMake chose when it configured;" \
      "\`cmake -P cmake/fetch_cifar10.cmake\` puts the archive in data/, -DCIFAR10_PATH=... names another)"
  fi
}

# need_data: skipped (exit 77), saying why, without readable data.
need_data() {
  local why
  why=$(data_missing)
  if [ -n "$why" ]; then
    echo "skipped: $why"
    exit 77
  fi
}

# need_python PYTHON MODULE...: skipped (exit 77) unless PYTHON imports every MODULE.
need_python() {
  local py=$1; shift
  local modules
  modules=$(IFS=,; echo "$*")
  if ! "$py" -c "import $modules" > /dev/null 2>&1; then
    echo "skipped: $py cannot import $*"
    exit 77
  fi
}

# expect CODE NEEDLE ARGS...: $train ARGS (./train, or a benchmark) must exit with CODE and print NEEDLE.
# A run that blocks is stopped after EXPECT_TIMEOUT seconds (300) and fails with exit 124 (137 when
# it survived the SIGTERM: it is killed 10 s later).
expect() {
  local code=$1 needle=$2; shift 2
  timeout -k 10 "${EXPECT_TIMEOUT:-300}" "$train" "$@" > "$tmp/expect.out" 2>&1
  local rc=$? name
  name=$(basename "$train")
  if [ "$rc" != "$code" ]; then fail "$name $* exited $rc, expected $code"; show expect 5; return; fi
  if ! grep -qF -- "$needle" "$tmp/expect.out"; then fail "$name $*: output lacks '$needle'"; show expect 5; return; fi
  echo "ok   exit $rc: $name $*"
}

# finish NAME: prints the verdict and exits 1 if any check failed.
finish() {
  if [ "$failures" -ne 0 ]; then echo "$1: $failures check(s) FAILED"; exit 1; fi
  echo "$1: all checks passed"
  exit 0
}
