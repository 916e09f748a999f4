-- wrk script for the small-file benchmark: PUT a 4 KiB body to a fresh path each request, or GET
-- one of the COUNT files uploaded beforehand. Configured by environment:
--   BENCH_MODE=put|get  BENCH_PREFIX=/path/prefix/  BENCH_TOKEN=... (sent as PRIVATE-TOKEN)
--   BENCH_COUNT=N (files to GET, named f0.bin .. f<N-1>.bin)
-- Prints one JSON line at the end: requests/s, p50/p99 latency (ms), errors.
local mode = os.getenv("BENCH_MODE") or "get"
local prefix = os.getenv("BENCH_PREFIX") or "/"
local token = os.getenv("BENCH_TOKEN")
local count = tonumber(os.getenv("BENCH_COUNT") or "100")
local body = string.rep("x", 4096)
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  wrk.headers["Connection"] = "keep-alive"
  if token then wrk.headers["PRIVATE-TOKEN"] = token end
end

function request()
  n = n + 1
  if mode == "put" then
    return wrk.format("PUT", prefix .. "t" .. id .. "-" .. n .. ".bin", nil, body)
  end
  return wrk.format("GET", prefix .. "f" .. (n % count) .. ".bin")
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"rps": %.1f, "p50_ms": %.3f, "p99_ms": %.3f, "requests": %d, "errors": %d}\n',
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, errors))
end
