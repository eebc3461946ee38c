#!/usr/bin/env bash
# The settings table is the one list of ./train's flags: --help prints exactly its flags in its
# order, a run's config.json holds every key it names, and the run's checkpoint every record it
# names. The lists come from the table (test_settings.c), none is written here.
# Usage: test_settings.sh PATH-TO-TRAIN PATH-TO-TEST_SETTINGS
set -u
train=$1
dump=$2
. "$(dirname "$0")/lib.sh"
scratch settings

"$dump" flags > "$tmp/table-flags" || fail "test_settings flags failed"
"$train" --help > "$tmp/help" 2>&1 || fail "train --help exited $?"
# A flag's line of --help starts with two spaces and the flag.
sed -n 's/^  \(--[a-z0-9-]*\).*/\1/p' "$tmp/help" > "$tmp/help-flags"
if [ ! -s "$tmp/table-flags" ]; then fail "the table lists no flags"
elif cmp -s "$tmp/table-flags" "$tmp/help-flags"; then
  echo "ok   --help lists the table's $(wc -l < "$tmp/table-flags") flags in its order"
else
  fail "--help's flags differ from the table's (< table, > --help):"; diff "$tmp/table-flags" "$tmp/help-flags" | sed 's/^/    | /'
fi

[ "$failures" -eq 0 ] || finish settings # a failure above is not hidden by a skip below
need_data
# The smallest training run that writes config.json and a checkpoint.
run=(mobilenet cifar10 --width 0.125 --batch 16 --limit-train 32 --limit-test 16 --max-steps 1 --threads 2
     --device cpu --out "$tmp/run")
if ! timeout 300 "$train" "${run[@]}" > "$tmp/run.out" 2>&1; then
  fail "train ${run[*]} exited $?"; show run
else
  "$dump" keys > "$tmp/table-keys" || fail "test_settings keys failed"
  # config.json: one top-level "key": value a line, indented by two spaces.
  sed -n 's/^  "\([a-z_0-9]*\)": .*/\1/p' "$tmp/run/config.json" | sort > "$tmp/config-keys"
  missing=$(sort "$tmp/table-keys" | comm -23 - "$tmp/config-keys")
  if [ ! -s "$tmp/table-keys" ]; then fail "the table lists no config.json keys"
  elif [ -n "$missing" ]; then fail "config.json lacks the table's keys: $(echo $missing)"
  else echo "ok   config.json holds the table's $(wc -l < "$tmp/table-keys") keys"; fi
  if missing=$("$dump" records "$tmp/run/checkpoint.ckpt"); then
    echo "ok   the checkpoint holds every record the table names"
  else fail "the checkpoint lacks the table's records: $(echo $missing)"; fi
fi
finish settings
