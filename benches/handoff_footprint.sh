#!/usr/bin/env bash
# Benchmark of the large-file handoff (release build, loopback only, bounded): `depot push` of a
# 1 GiB file through an upload session (parts of 64 MiB, 4 in flight) to `depot serve` on the
# local store, then `depot pull` of it. Reports time, throughput, the client's peak RSS and the
# server's peak RSS growth.
# Usage: benches/handoff_footprint.sh [SIZE_MIB=1024]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/target/release/depot
SIZE_MIB=${1:-1024}
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$BIN" serve --listen 127.0.0.1:0 --data-dir "$work/data" --max-file-size 0 \
  --upload-part-size 64MiB >"$work/banner" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q '^  curl' "$work/banner" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^depot is serving \([^ ]*\).*/\1/p' "$work/banner")
TOKEN=$(grep -o 'dpat-[0-9a-f]*' "$work/banner" | head -1)
kib() { awk '/^'"$1"':/ {print $2}' "/proc/$pid/status"; }

# Run a command; print its wall seconds and peak RSS (KiB) on one line.
measure() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
start = time.monotonic()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
elapsed = time.monotonic() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{elapsed:.2f} {peak} {done.returncode}")
PY
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "depot: $("$BIN" --version)"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$work/big.bin"
export DEPOT_STATE_DIR="$work/state"
target=(--url "$URL" --project demo/app --package big --version 1.0 --token "$TOKEN")
mbps() { awk -v s="$SIZE_MIB" -v t="$1" 'BEGIN {printf "%.0f", s*1.048576/t}'; }

before=$(kib VmHWM)
read -r secs peak rc < <(measure "$BIN" push "$work/big.bin" "${target[@]}" --jobs 4)
[ "$rc" = 0 ] || { echo "push failed ($rc)"; exit 1; }
after_push=$(kib VmHWM)
echo "push ${SIZE_MIB} MiB (session, 64 MiB parts, 4 in flight; includes hashing the file first): ${secs} s, $(mbps "$secs") MB/s; client peak RSS $((peak / 1024)) MiB; server peak RSS +$(( (after_push - before) / 1024 )) MiB"

read -r secs peak rc < <(measure "$BIN" pull big.bin "${target[@]}" -o "$work/copy.bin")
[ "$rc" = 0 ] || { echo "pull failed ($rc)"; exit 1; }
after_pull=$(kib VmHWM)
echo "pull ${SIZE_MIB} MiB (verified SHA-256): ${secs} s, $(mbps "$secs") MB/s; client peak RSS $((peak / 1024)) MiB; server peak RSS +$(( (after_pull - before) / 1024 )) MiB over the pre-push peak"
cmp -s "$work/big.bin" "$work/copy.bin" && echo "pulled copy: byte-identical"
