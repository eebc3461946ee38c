#!/usr/bin/env bash
# cmake/fetch_cifar10.cmake, against a small fake archive served from a file:// URL: the right MD5
# gives the file at DEST; a second run keeps it; a wrong MD5 fails naming both hashes and leaves no
# file; an unreachable URL fails naming it. Usage: test_fetch.sh [CMAKE]
set -u
cmake=${1:-cmake}
script=$(cd "$(dirname "$0")/../cmake" && pwd)/fetch_cifar10.cmake
tmp=$(mktemp -d /tmp/drnet-fetch-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

mkdir -p "$tmp/src/cifar-10-batches-bin"
head -c 3073 /dev/urandom > "$tmp/src/cifar-10-batches-bin/test_batch.bin"
tar -czf "$tmp/fake.tar.gz" -C "$tmp/src" cifar-10-batches-bin
md5=$(md5sum "$tmp/fake.tar.gz" | cut -d' ' -f1)
url="file://$tmp/fake.tar.gz"

# CMake wraps its messages: $tmp/out holds the output as one line.
fetch() {
  "$cmake" -DURL="$1" -DMD5="$2" -DDEST="$3" -P "$script" > "$tmp/raw" 2>&1
  local rc=$?
  tr '\n' ' ' < "$tmp/raw" | tr -s ' ' > "$tmp/out"
  return $rc
}

if ! fetch "$url" "$md5" "$tmp/data/cifar.tar.gz"; then fail "fetch with the right MD5 failed"; sed 's/^/    | /' "$tmp/raw"
elif ! cmp -s "$tmp/fake.tar.gz" "$tmp/data/cifar.tar.gz"; then fail "the fetched file differs from the source"
else echo "ok   fetched $url into a new data/ directory (MD5 verified)"; fi

if fetch "file://$tmp/nowhere.tar.gz" "$md5" "$tmp/data/cifar.tar.gz" && grep -q "already there" "$tmp/out"; then
  echo "ok   a second fetch keeps the verified file without downloading"
else fail "a second fetch did not recognize the file already there"; sed 's/^/    | /' "$tmp/raw"; fi

wrong=00000000000000000000000000000000
if fetch "$url" "$wrong" "$tmp/other/cifar.tar.gz"; then fail "a wrong MD5 was accepted"
elif ! grep -q "has MD5 $md5, expected $wrong" "$tmp/out"; then fail "the MD5 failure does not name both hashes"; sed 's/^/    | /' "$tmp/raw"
elif ! grep -qF -- "-DMD5=$md5" "$tmp/out"; then fail "the MD5 failure does not say how to accept another copy (-DMD5=)"; sed 's/^/    | /' "$tmp/raw"
elif [ -e "$tmp/other/cifar.tar.gz" ] || [ -e "$tmp/other/cifar.tar.gz.part" ]; then fail "a failed fetch left a file behind"
else echo "ok   a wrong MD5 fails, names both hashes and -DMD5= for a deliberate other copy, and leaves no file"; fi

# A file already at DEST with another MD5: the same way out.
mkdir -p "$tmp/kept" && printf 'other copy' > "$tmp/kept/cifar.tar.gz"
other=$(md5sum "$tmp/kept/cifar.tar.gz" | cut -d' ' -f1)
if fetch "$url" "$md5" "$tmp/kept/cifar.tar.gz"; then fail "a file with another MD5 at DEST was accepted"
elif ! grep -qF -- "-DMD5=$other" "$tmp/out"; then fail "the existing-file MD5 failure does not mention -DMD5="; sed 's/^/    | /' "$tmp/raw"
else echo "ok   a file at DEST with another MD5 is refused, with -DMD5= for a deliberate other copy"; fi

if fetch "file://$tmp/nowhere.tar.gz" "$md5" "$tmp/third/cifar.tar.gz"; then fail "an unreachable URL was accepted"
elif ! grep -q "could not download file://$tmp/nowhere.tar.gz" "$tmp/out"; then fail "the download failure does not name the URL"; sed 's/^/    | /' "$tmp/raw"
else echo "ok   an unreachable URL fails naming it"; fi

if [ $failures -ne 0 ]; then echo "test_fetch: $failures check(s) FAILED"; exit 1; fi
echo "test_fetch: all checks passed"
