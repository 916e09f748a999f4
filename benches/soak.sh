#!/usr/bin/env bash
# `make soak`: the soak of benches/soak/ (release `depot serve` on each store pair, 64 concurrent
# publish/download/list/delete for SOAK_SECONDS each, then every file checked). Prints its
# Markdown; when it passes, writes it into the Soak section of BENCHMARKS.md (between the
# <!-- bench:soak --> markers). Exits non-zero on any failure. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
out=$(mktemp)
trap 'rm -f "$out"' EXIT
{
  echo "Last run $(date -u +%Y-%m-%d) on $(machine); depot $(git describe --always --dirty 2>/dev/null || echo '?'), release build."
  echo
  DEPOT_SOAK=1 SOAK_SECONDS=${SOAK_SECONDS:-300} cargo bench --quiet --bench soak
} | tee "$out"
python3 benches/update_section.py soak "$out"
echo "soak: passed; BENCHMARKS.md's Soak section updated" >&2
