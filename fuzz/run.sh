#!/usr/bin/env bash
# `make fuzz`: build every fuzz target once (cargo-fuzz, sanitizer build in fuzz/target), replay
# the committed regression inputs (fuzz/regressions/<target>/), then fuzz each target for
# FUZZ_SECONDS from its committed seed corpus (fuzz/corpus/<target>/; what libFuzzer adds goes
# to fuzz/work/corpus/<target>/, not committed). Prints, per target, the executions run, the
# wall time and the crashes (inputs saved under fuzz/artifacts/<target>/); exits 1 on any crash.
#
# Usage: CARGO_FUZZ=path/to/cargo-fuzz FUZZ_SECONDS=60 bash fuzz/run.sh target...
set -uo pipefail

cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
tools=$(dirname "${CARGO_FUZZ:?the cargo-fuzz binary (make fuzz-tools)}")
export PATH="$tools:$PATH" RUSTC_BOOTSTRAP=1
work=fuzz/work
mkdir -p "$work"

echo "fuzz: building the fuzz targets (the first sanitizer build takes a while)"
cargo fuzz build --fuzz-dir fuzz || exit 2

rows=()
failed=0
for target in "$@"; do
  log="$work/$target.log"
  regressions="fuzz/regressions/$target"
  if compgen -G "$regressions/*" >/dev/null; then
    echo "fuzz: $target: replaying $(ls "$regressions" | wc -l) regression input(s)"
    if ! cargo fuzz run --fuzz-dir fuzz "$target" "$regressions" -- -runs=0 >"$work/$target.replay.log" 2>&1; then
      tail -n 30 "$work/$target.replay.log"
      rows+=("$target|replay failed|-|see $work/$target.replay.log")
      failed=1
      continue
    fi
  fi
  mkdir -p "$work/corpus/$target" "fuzz/artifacts/$target"
  before=$(ls "fuzz/artifacts/$target" | wc -l)
  echo "fuzz: $target for ${seconds}s"
  started=$(date +%s)
  cargo fuzz run --fuzz-dir fuzz "$target" "$work/corpus/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=25 -print_final_stats=1 >"$log" 2>&1
  status=$?
  wall=$(( $(date +%s) - started ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  [ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$log" | tail -n 1)
  [ -n "$runs" ] || runs="?"
  crashes=$(( $(ls "fuzz/artifacts/$target" | wc -l) - before ))
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    grep -m 5 -E "panicked at|ERROR: |SUMMARY|Test unit written" "$log"
    found=$(ls -t "fuzz/artifacts/$target" | head -n "$(( crashes > 0 ? crashes : 1 ))" | tr '\n' ' ')
    rows+=("$target|$runs|$wall|$crashes (exit $status) $found")
  else
    rows+=("$target|$runs|$wall|0")
  fi
done

echo
printf '%-18s %14s %8s  %s\n' target executions seconds crashes
for row in "${rows[@]}"; do
  IFS='|' read -r target runs wall crashes <<<"$row"
  printf '%-18s %14s %8s  %s\n' "$target" "$runs" "$wall" "$crashes"
done
exit "$failed"
