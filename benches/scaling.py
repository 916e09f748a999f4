#!/usr/bin/env python3
"""Scaling of `depot serve` (local store) with the registry's size: publish, download and list
latency with LEVELS packages already in one project. Seeds packages over keep-alive connections
(SEED_THREADS in parallel), then at each level times, sequentially over one keep-alive
connection: PUBLISHES publishes of a new package (4 KiB), as many downloads of seeded files, and
LISTS first pages of the project's package list. Each measurement is run RUNS times; prints a
Markdown table of the median (min-max) over runs of each run's p50 and p99, in ms.

Usage: scaling.py URL TOKEN   (env: BENCH_RUNS=3 BENCH_LEVELS=10,1000,100000)
"""
import http.client
import os
import random
import statistics
import sys
import threading
import time
import urllib.parse

URL, TOKEN = sys.argv[1], sys.argv[2]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
LEVELS = [int(x) for x in os.environ.get("BENCH_LEVELS", "10,1000,100000").split(",")]
PUBLISHES, LISTS, SEED_THREADS = 100, 20, 8
BODY = os.urandom(4096)
ROOT = "/api/v4/projects/1/packages"
host = urllib.parse.urlsplit(URL)


def connect():
    return http.client.HTTPConnection(host.hostname, host.port, timeout=30)


def call(conn, method, path, body=None):
    conn.request(method, path, body=body, headers={"PRIVATE-TOKEN": TOKEN})
    response = conn.getresponse()
    response.read()
    if response.status >= 300:
        raise SystemExit(f"{method} {path}: {response.status}")


def seed(start, end):
    """Publish packages seed-<start>..seed-<end-1>, split over SEED_THREADS connections."""

    def worker(ids):
        conn = connect()
        for i in ids:
            call(conn, "PUT", f"{ROOT}/generic/seed-{i}/1.0/f.bin", BODY)

    threads = [
        threading.Thread(target=worker, args=(range(start + k, end, SEED_THREADS),))
        for k in range(SEED_THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def timed(conn, requests):
    """Milliseconds of each (method, path, body) request, sent in order on `conn`."""
    times = []
    for method, path, body in requests:
        start = time.perf_counter()
        call(conn, method, path, body)
        times.append((time.perf_counter() - start) * 1000)
    return times


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def cell(runs):
    """'median (min-max)' of the runs' p50, and of their p99."""
    out = []
    for p in (50, 99):
        v = [pct(r, p) for r in runs]
        out.append(f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})")
    return out


rows, seeded, published = [], 0, 0
for level in LEVELS:
    started = time.monotonic()
    seed(seeded, level)
    seed_secs = time.monotonic() - started
    seeded = level
    # A connection of its own per level: depot closes one left idle past its header timeout
    # (30 s), as seeding 100,000 packages does.
    conn = connect()
    publish, download, listing = [], [], []
    for run in range(RUNS):
        names = [f"new-{level}-{run}-{i}" for i in range(PUBLISHES)]
        publish.append(timed(conn, [("PUT", f"{ROOT}/generic/{n}/1.0/f.bin", BODY) for n in names]))
        picks = [random.randrange(level) for _ in range(PUBLISHES)]
        download.append(timed(conn, [("GET", f"{ROOT}/generic/seed-{i}/1.0/f.bin", None) for i in picks]))
        listing.append(timed(conn, [("GET", f"{ROOT}?per_page=20", None)] * LISTS))
    published += RUNS * PUBLISHES
    rows.append((level, seed_secs, cell(publish), cell(download), cell(listing)))
    print(f"level {level}: seeded in {seed_secs:.1f} s", file=sys.stderr)

print(f"One project; at each level, {RUNS} runs of {PUBLISHES} publishes of a new 4 KiB package, "
      f"{PUBLISHES} downloads of random seeded files and {LISTS} list pages (`per_page=20`), "
      "sequential over one keep-alive connection (Python `http.client`, its own overhead "
      "included); each run's p50 and p99, median (min-max) over runs, in ms. The packages "
      f"published by the measurement itself add up to {len(LEVELS) * RUNS * PUBLISHES} over "
      "the levels.\n")
print("| packages in the store | publish p50 | publish p99 | download p50 | download p99 | list page p50 | list page p99 |")
print("|---|---|---|---|---|---|---|")
for level, _, p, d, l in rows:
    print(f"| {level:,} | {p[0]} | {p[1]} | {d[0]} | {d[1]} | {l[0]} | {l[1]} |")
