#!/usr/bin/env bash
# The large-file handoff on the local store (release build, loopback only, bounded): `depot push`
# of a 1 GiB file through an upload session (parts of 64 MiB, 4 in flight) to `depot serve`, then
# `depot pull` of it (SHA-256 verified). Time, throughput, the client's peak RSS and the server's
# peak RSS during each. One run each; prints Markdown.
# Usage: benches/handoff_footprint.sh   (env: BENCH_HANDOFF_MIB=1024)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
SIZE_MIB=${BENCH_HANDOFF_MIB:-1024}
bench_init bench-handoff
start_depot "$work/data" --max-file-size 0 --upload-part-size 64MiB

# Run a command; print its wall seconds, peak RSS (KiB) and exit code on one line.
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

head -c "$((SIZE_MIB << 20))" /dev/urandom >"$work/big.bin"
export DEPOT_STATE_DIR="$work/state"
target=(--url "$DEPOT_URL" --project demo/app --package big --version 1.0 --token "$TOKEN")
mbps() { awk -v s="$SIZE_MIB" -v t="$1" 'BEGIN {printf "%.0f", s*1.048576/t}'; }

sync; reset_peak "$DEPOT_PID"
read -r push_s push_peak rc < <(measure "$BIN" push "$work/big.bin" "${target[@]}" --jobs 4)
[ "$rc" = 0 ] || { echo "push failed ($rc)" >&2; exit 1; }
push_server=$(peak_kib "$DEPOT_PID")
sync; reset_peak "$DEPOT_PID"
read -r pull_s pull_peak rc < <(measure "$BIN" pull big.bin "${target[@]}" -o "$work/copy.bin")
[ "$rc" = 0 ] || { echo "pull failed ($rc)" >&2; exit 1; }
pull_server=$(peak_kib "$DEPOT_PID")
cmp -s "$work/big.bin" "$work/copy.bin" || { echo "pulled copy differs" >&2; exit 1; }

echo "One ${SIZE_MIB} MiB file, one run each; the pulled copy is byte-identical."
echo
echo "| op | time | throughput | client peak RSS | server peak RSS |"
echo "|---|---|---|---|---|"
echo "| \`depot push\` (session, 64 MiB parts, 4 in flight; hashing the file first included) | ${push_s} s | $(mbps "$push_s") MB/s | $((push_peak / 1024)) MiB | $((push_server / 1024)) MiB |"
echo "| \`depot pull\` (SHA-256 verified) | ${pull_s} s | $(mbps "$pull_s") MB/s | $((pull_peak / 1024)) MiB | $((pull_server / 1024)) MiB |"
