#!/usr/bin/env bash
# `make bench`: every benchmark in turn, each writing its generated section of BENCHMARKS.md
# (between its <!-- bench:NAME --> markers; the prose around them is kept). Loopback only; about
# ten minutes in all. BENCH_ONLY="small large" runs only those sections.
set -euo pipefail
cd "$(dirname "$0")/.."
only=${BENCH_ONLY:-machine small large scaling aws handoff ui}
section() {
  local name=$1; shift
  case " $only " in *" $name "*) ;; *) return 0 ;; esac
  echo "bench: $name" >&2
  local out
  out=$(mktemp)
  "$@" >"$out"
  python3 benches/update_section.py "$name" "$out"
  rm -f "$out"
}
machine_line() {
  source benches/lib.sh
  echo "Last run $(date -u +%Y-%m-%d) on $(machine); depot $(git describe --always --dirty 2>/dev/null || echo '?'), release build;"
  echo "reference nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), load from $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)."
}
section machine machine_line
section small bash benches/small_files.sh
section large bash benches/large_files.sh
section scaling bash benches/scaling.sh
section aws cargo bench --quiet --bench aws_costs
section handoff bash benches/handoff_footprint.sh
section ui cargo bench --quiet --bench ui_render
