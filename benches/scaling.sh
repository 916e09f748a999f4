#!/usr/bin/env bash
# Scaling with the registry's size: `depot serve` (release, local store) seeded with 10, 1,000 and
# 100,000 packages in turn; publish, download and list latency measured at each level by
# benches/scaling.py over loopback. Bounded: seeding 100,000 4 KiB files takes about a minute.
# Usage: benches/scaling.sh   (env: BENCH_RUNS=3 BENCH_LEVELS=10,1000,100000)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
bench_init bench-scaling
start_depot "$work/depot"
python3 benches/scaling.py "$DEPOT_URL" "$TOKEN"
