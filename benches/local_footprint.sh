#!/usr/bin/env bash
# Benchmark of the local registry (release build, loopback only, bounded):
#  - peak RSS growth of `depot serve` while a 1 GiB file is uploaded, then downloaded
#  - latency of small (4 KiB) uploads and downloads, sequential, p50/p99 over N requests
# Usage: benches/local_footprint.sh [SIZE_MIB=1024] [SMALL_N=300]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/depot
SIZE_MIB=${1:-1024}
SMALL_N=${2:-300}
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$BIN" serve --listen 127.0.0.1:0 --data-dir "$work/data" --max-file-size 0 >"$work/banner" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q '^  curl' "$work/banner" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^depot is serving \([^ ]*\).*/\1/p' "$work/banner")
TOKEN=$(grep -o 'dpat-[0-9a-f]*' "$work/banner" | head -1)
API="$URL/api/v4/projects/1/packages/generic"
kib() { awk -v k="$1" '/^'"$1"':/ {print $2}' "/proc/$pid/status"; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "depot: $("$BIN" --version)"

# Small files: warm up, then measure.
head -c 4096 /dev/urandom >"$work/small"
curl -s -o /dev/null -H "PRIVATE-TOKEN: $TOKEN" --upload-file "$work/small" "$API/warm/1/f"
: >"$work/put.times"; : >"$work/get.times"
for i in $(seq "$SMALL_N"); do
  curl -s -o /dev/null -w '%{time_total}\n' -H "PRIVATE-TOKEN: $TOKEN" --upload-file "$work/small" \
    "$API/small/1.0/f$i.bin" >>"$work/put.times"
done
for i in $(seq "$SMALL_N"); do
  curl -s -o /dev/null -w '%{time_total}\n' -H "PRIVATE-TOKEN: $TOKEN" "$API/small/1.0/f$i.bin" >>"$work/get.times"
done
pct() { sort -n "$1" | awk -v p="$2" '{a[NR]=$1} END {i=int((NR-1)*p/100)+1; printf "%.2f", a[i]*1000}'; }
echo "small 4 KiB upload   (n=$SMALL_N, sequential, curl time_total): p50 $(pct "$work/put.times" 50) ms, p99 $(pct "$work/put.times" 99) ms"
echo "small 4 KiB download (n=$SMALL_N, sequential, curl time_total): p50 $(pct "$work/get.times" 50) ms, p99 $(pct "$work/get.times" 99) ms"

# One large file.
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$work/big"
before=$(kib VmHWM); rss0=$(kib VmRSS)
up=$(curl -s -o /dev/null -w '%{time_total}' -H "PRIVATE-TOKEN: $TOKEN" --upload-file "$work/big" "$API/big/1.0/big.bin")
after_up=$(kib VmHWM)
down=$(curl -s -o /dev/null -w '%{time_total}' -H "PRIVATE-TOKEN: $TOKEN" "$API/big/1.0/big.bin")
after_down=$(kib VmHWM)
mbps() { awk -v s="$SIZE_MIB" -v t="$1" 'BEGIN {printf "%.0f", s*1.048576/t}'; }
echo "large ${SIZE_MIB} MiB upload:   $(mbps "$up") MB/s; peak RSS before ${before} KiB (RSS ${rss0} KiB), after ${after_up} KiB: +$(( (after_up - before) / 1024 )) MiB"
echo "large ${SIZE_MIB} MiB download: $(mbps "$down") MB/s; peak RSS after ${after_down} KiB: +$(( (after_down - before) / 1024 )) MiB over the pre-upload peak"
