#!/usr/bin/env bash
# Shared by the benchmark scripts (sourced, not run): start `depot serve` (release, local store)
# and the reference nginx (WebDAV PUT) on loopback, under a work directory removed on exit.
#   bench_init NAME           work dir target/NAME.XXXXXX in $work; kills what was started, on exit
#   start_depot DIR [ARGS..]  sets DEPOT_URL, TOKEN, DEPOT_PID
#   start_nginx DIR           sets NGINX_URL, NGINX_PID (the master; workers are its children)
#   peak_kib PID...           the largest VmHWM (peak RSS, KiB) among PIDs and their children
#   reset_peak PID...         resets VmHWM of PIDs and their children to their current RSS
BIN=${BIN:-$PWD/target/release/depot}
pids=()

bench_init() {
  mkdir -p target
  work=$(mktemp -d -p "$PWD/target" "$1.XXXXXX")
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_depot() {
  local dir=$1; shift
  "$BIN" serve --listen 127.0.0.1:0 --data-dir "$dir" --purge-interval 0 "$@" >"$dir.banner" 2>/dev/null &
  DEPOT_PID=$!
  pids+=("$DEPOT_PID")
  for _ in $(seq 100); do grep -q '^  curl' "$dir.banner" 2>/dev/null && break; sleep 0.1; done
  DEPOT_URL=$(sed -n 's/^depot is serving \([^ ]*\).*/\1/p' "$dir.banner")
  TOKEN=$(grep -o 'dpat-[0-9a-f]*' "$dir.banner" | head -1)
  [ -n "$DEPOT_URL" ] && [ -n "$TOKEN" ] || { echo "depot did not start" >&2; exit 1; }
}

start_nginx() {
  local dir=$1 port
  port=$(free_port)
  mkdir -p "$dir/root" "$dir/tmp" "$dir/logs"
  cat >"$dir/nginx.conf" <<CONF
user root;
worker_processes auto;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $dir/tmp;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:$port;
    root $dir/root;
    location / { dav_methods PUT DELETE; create_full_put_path on; dav_access user:rw; }
  }
}
CONF
  nginx -p "$dir" -c "$dir/nginx.conf" &
  NGINX_PID=$!
  pids+=("$NGINX_PID")
  NGINX_URL=http://127.0.0.1:$port
  for _ in $(seq 50); do curl -s -o /dev/null "$NGINX_URL/" && break; sleep 0.1; done
}

_family() { for p in "$@"; do echo "$p"; pgrep -P "$p" || true; done; }

peak_kib() {
  local max=0 v
  for p in $(_family "$@"); do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    [ "${v:-0}" -gt "$max" ] && max=$v
  done
  echo "$max"
}

reset_peak() { for p in $(_family "$@"); do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done; }

machine() {
  echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r | cut -d- -f1)"
}
