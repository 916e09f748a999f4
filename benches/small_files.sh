#!/usr/bin/env bash
# Small-file publish and download, side by side: `depot serve` (release, local store) and nginx
# with its WebDAV PUT module (the reference), both writing under the same directory on the same
# disk, driven by wrk from another process on loopback. 4 KiB files; concurrency 1, 8 and 64;
# each cell run BENCH_RUNS times for BENCH_DURATION seconds: median, and the spread (min-max).
# Prints a Markdown table; bounded: 3 x 2 x 2 x RUNS x DURATION seconds of load.
# Usage: benches/small_files.sh   (env: BENCH_RUNS=3 BENCH_DURATION=5 BENCH_COUNT=200)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/target/release/depot
RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-5}
COUNT=${BENCH_COUNT:-200}
mkdir -p target
work=$(mktemp -d -p "$PWD/target" bench-small.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# depot
"$BIN" serve --listen 127.0.0.1:0 --data-dir "$work/depot" --purge-interval 0 >"$work/banner" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do grep -q '^  curl' "$work/banner" 2>/dev/null && break; sleep 0.1; done
DEPOT_URL=$(sed -n 's/^depot is serving \([^ ]*\).*/\1/p' "$work/banner")
TOKEN=$(grep -o 'dpat-[0-9a-f]*' "$work/banner" | head -1)
DEPOT_PREFIX=/api/v4/projects/1/packages/generic/bench/1.0/

# nginx, WebDAV PUT, same disk
NGINX_PORT=$(free_port)
mkdir -p "$work/nginx/root/bench" "$work/nginx/tmp" "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<CONF
user root;
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $work/nginx/tmp;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $work/nginx/root;
    location / { dav_methods PUT DELETE; create_full_put_path on; dav_access user:rw; }
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)
NGINX_URL=http://127.0.0.1:$NGINX_PORT
for _ in $(seq 50); do curl -s -o /dev/null "$NGINX_URL/" && break; sleep 0.1; done
NGINX_PREFIX=/bench/

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
