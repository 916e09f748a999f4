#!/usr/bin/env bash
# Large-file throughput, side by side: a 1 GiB upload (curl --upload-file, one PUT) and download
# (curl to /dev/null) through `depot serve` (release, local store, generic API with a token) and
# through nginx with WebDAV PUT (the reference), same disk, loopback. Each op BENCH_RUNS times;
# median MB/s (min-max), and each server's peak RSS during the op (VmHWM, reset before each op;
# for nginx the largest of its processes). Prints a Markdown table.
# Usage: benches/large_files.sh   (env: BENCH_RUNS=5 BENCH_LARGE_MIB=1024; 5 runs by default
# because this VM's disk swings 3x from run to run on 1 GiB writes, for both servers)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
RUNS=${BENCH_RUNS:-5}
MIB=${BENCH_LARGE_MIB:-1024}
bench_init bench-large
start_depot "$work/depot" --max-file-size 0
start_nginx "$work/nginx"
head -c "$((MIB << 20))" /dev/urandom >"$work/big.bin"

results="$work/results.txt"
# server op run -> "server op run seconds peak_kib"
transfer() {
  local server=$1 op=$2 run=$3 url pid auth=() secs
  if [ "$server" = depot ]; then
    url="$DEPOT_URL/api/v4/projects/1/packages/generic/big/1.0/big-$run.bin" pid=$DEPOT_PID
    auth=(-H "PRIVATE-TOKEN: $TOKEN")
  else
    url="$NGINX_URL/big/big-$run.bin" pid=$NGINX_PID
  fi
  sync; reset_peak "$pid"   # earlier writes flushed first: each op starts from a quiet disk
  if [ "$op" = upload ]; then
    secs=$(curl -sf -o /dev/null -w '%{time_total}' "${auth[@]}" --upload-file "$work/big.bin" "$url")
  else
    secs=$(curl -sf -o /dev/null -w '%{time_total}' "${auth[@]}" "$url")
  fi
  echo "$server $op $run $secs $(peak_kib "$pid")" >>"$results"
}

for run in $(seq "$RUNS"); do
  for server in depot nginx; do
    transfer "$server" upload "$run"
    transfer "$server" download "$run"
  done
done
# Both kept byte-identical copies.
cmp -s "$work/big.bin" "$work/nginx/root/big/big-1.bin"
curl -sf -H "PRIVATE-TOKEN: $TOKEN" "$DEPOT_URL/api/v4/projects/1/packages/generic/big/1.0/big-1.bin" | cmp -s - "$work/big.bin"

python3 - "$results" "$RUNS" "$MIB" <<'PY'
import statistics, sys
runs, mib = sys.argv[2], int(sys.argv[3])
cells = {}
for line in open(sys.argv[1]):
    server, op, _, secs, peak = line.split()
    cells.setdefault((op, server), []).append((mib * 1.048576 / float(secs), int(peak) / 1024))
print(f"One {mib} MiB file of random bytes, curl on loopback, {runs} runs per cell; median (min-max).\n")
print("| op | depot MB/s | nginx MB/s | depot/nginx | depot peak RSS MiB | nginx peak RSS MiB |")
print("|---|---|---|---|---|---|")
for op in ("upload", "download"):
    d, n = cells[(op, "depot")], cells[(op, "nginx")]
    f = lambda v, p=0: f"{statistics.median(v):.{p}f} ({min(v):.{p}f}-{max(v):.{p}f})"
    dm, nm = [x[0] for x in d], [x[0] for x in n]
    print(f"| {op} | {f(dm)} | {f(nm)} | {statistics.median(dm) / statistics.median(nm):.2f} | "
          f"{f([x[1] for x in d])} | {f([x[1] for x in n])} |")
PY
