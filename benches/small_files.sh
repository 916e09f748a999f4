#!/usr/bin/env bash
# Small-file publish and download, side by side: `depot serve` (release, local store) and nginx
# with its WebDAV PUT module (the reference), both writing under the same directory on the same
# disk, driven by wrk from another process on loopback. 4 KiB files; concurrency 1, 8 and 64;
# each cell run BENCH_RUNS times for BENCH_DURATION seconds: median, and the spread (min-max).
# Prints a Markdown table; bounded: 3 x 2 x 2 x RUNS x DURATION seconds of load.
# Usage: benches/small_files.sh   (env: BENCH_RUNS=3 BENCH_DURATION=5 BENCH_COUNT=200)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-5}
COUNT=${BENCH_COUNT:-200}
bench_init bench-small
start_depot "$work/depot"
start_nginx "$work/nginx"
DEPOT_PREFIX=/api/v4/projects/1/packages/generic/bench/1.0/
NGINX_PREFIX=/bench/
mkdir -p "$work/nginx/root/bench"

# Files to GET.
head -c 4096 /dev/urandom >"$work/small"
for i in $(seq 0 $((COUNT - 1))); do
  curl -sf -o /dev/null -H "PRIVATE-TOKEN: $TOKEN" --upload-file "$work/small" "$DEPOT_URL${DEPOT_PREFIX}f$i.bin"
  curl -sf -o /dev/null --upload-file "$work/small" "$NGINX_URL${NGINX_PREFIX}f$i.bin"
done

run() { # server op concurrency -> one JSON line
  local server=$1 op=$2 c=$3 url prefix token=
  if [ "$server" = depot ]; then url=$DEPOT_URL prefix=$DEPOT_PREFIX token=$TOKEN; else url=$NGINX_URL prefix=$NGINX_PREFIX; fi
  local threads=$(( c < 2 ? c : 2 ))
  BENCH_MODE=$op BENCH_PREFIX=$prefix BENCH_TOKEN=$token BENCH_COUNT=$COUNT \
    wrk -t"$threads" -c"$c" -d"${DURATION}s" -s benches/wrk_generic.lua "$url" | grep '^{'
}

results="$work/results.jsonl"
for c in 1 8 64; do
  for op in put get; do
    for server in depot nginx; do
      for r in $(seq "$RUNS"); do
        line=$(run "$server" "$op" "$c")
        echo "{\"server\": \"$server\", \"op\": \"$op\", \"c\": $c, \"run\": $r, \"m\": $line}" >>"$results"
      done
    done
  done
done

python3 - "$results" "$RUNS" "$DURATION" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
runs, duration = sys.argv[2], sys.argv[3]
cell = {}
for r in rows:
    cell.setdefault((r["op"], r["c"], r["server"]), []).append(r["m"])
def stat(ms, key):
    v = [m[key] for m in ms]
    return statistics.median(v), min(v), max(v)
print(f"4 KiB files, wrk from another process on loopback, {runs} runs x {duration} s per cell; "
      "median (min-max).\n")
print("| op | conc. | depot req/s | nginx req/s | depot/nginx | depot p50 ms | depot p99 ms | nginx p50 ms | nginx p99 ms | errors (depot/nginx) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for op in ("put", "get"):
    for c in (1, 8, 64):
        d, n = cell[(op, c, "depot")], cell[(op, c, "nginx")]
        dr, nr = stat(d, "rps"), stat(n, "rps")
        f = lambda s: f"{s[0]:.0f} ({s[1]:.0f}-{s[2]:.0f})"
        g = lambda s: f"{s[0]:.2f} ({s[1]:.2f}-{s[2]:.2f})"
        errs = f"{sum(m['errors'] for m in d)}/{sum(m['errors'] for m in n)}"
        print(f"| {op.upper()} | {c} | {f(dr)} | {f(nr)} | {dr[0]/nr[0]:.2f} | {g(stat(d,'p50_ms'))} | {g(stat(d,'p99_ms'))} | {g(stat(n,'p50_ms'))} | {g(stat(n,'p99_ms'))} | {errs} |")
PY
