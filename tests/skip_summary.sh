#!/usr/bin/env bash
# Run by ctest after the tests (CTEST_CUSTOM_POST_TEST, written into the build folder by
# tests/tests.cmake): one line per skipped test with the reason it gave, which ctest itself does not
# show. A test that skips prints its reason as its last line ("skipped: ..." or "NAME: skipped:
# ..."; "skip: ..." too) and exits 77; this reads those last lines from ctest's Testing/Temporary/LastTest.log.
# Always exits 0 (a failing post-test command would fail the ctest run).
log=${1:?usage: skip_summary.sh BUILD/Testing/Temporary/LastTest.log}
# While ctest runs (and so when it runs this) the log is still LastTest.log.tmp; it is renamed after.
[ -r "$log.tmp" ] && log=$log.tmp
[ -r "$log" ] || exit 0
awk '
  /^[0-9]+\/[0-9]+ Test: / { name = $3; last = ""; inout = 0; next }
  /^Output:$/ { inout = 1; next }
  inout && /^-+$/ && last == "" { next }
  /^<end of output>$/ { inout = 0
    if (last ~ /^([A-Za-z0-9_ ]+: )?skip(ped)?: /) { sub(/^[A-Za-z0-9_ ]+: skip/, "skip", last); n++; lines[n] = sprintf("  %-24s %s", name, last) }
    next }
  inout && NF { last = $0 }
  END { if (n) { print ""; print "Skipped tests and why (" n "):"; for (i = 1; i <= n; i++) print lines[i] } }
' "$log"
exit 0
