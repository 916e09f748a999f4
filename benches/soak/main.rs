//! `make soak`: a bounded loopback soak of the release `depot serve` on each store pair (local:
//! SQLite + fs; aws: DynamoDB Local + s3s-fs), a mixed load of publishes, downloads, lists and
//! deletes from 64 concurrent workers for `SOAK_SECONDS` (default 300) each. It fails on any
//! 5xx or other answer a request may not give, on any file lost or corrupted (every file that
//! got 201 and was not deleted is downloaded and hashed at the end; deleted ones answer 404),
//! on any error the server logged, on memory that does not stay flat, and on bytes left that
//! no record names (after the end check deletes everything and the purge runs, only the last
//! publish's blob, or its row or item if it is small, may remain).
//!
//! Memory: the server's VmRSS is sampled every second. The start is taken after a warm-up (a
//! fifth of the run, at most 15 s: connection pools, allocator arenas, SQLite's page cache and
//! the SDK clients have grown by then); the end once the load has stopped. The end may exceed
//! the start by max(64 MiB, the start itself): allocators keep freed 2 MiB bodies of 64
//! concurrent requests around, so some drift is no leak, while a leak of even 1 KiB per request
//! over the hundred thousand or more requests of five minutes would pass that bound.
//!
//! Run by `make soak` (`DEPOT_SOAK=1 cargo bench --bench soak`; `SOAK_STORES="local aws"`,
//! `SOAK_CONCURRENCY=64`, `DEPOT_BIN` to soak another build of depot); without `DEPOT_SOAK=1`
//! it only says so. Prints Markdown on stdout and progress on stderr; exits 1 on any failure.

#[path = "../../tests/it/support/mod.rs"]
mod support;

mod ids;
mod model;
mod report;
mod server;
mod verify;
mod workload;

use report::{Memory, Run, Stats};
use server::{Pair, Server};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::Ctx;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

fn main() -> std::process::ExitCode {
    if std::env::var("DEPOT_SOAK").as_deref() != Ok("1") {
        println!(
            "soak is a soak test: `make soak` runs it (DEPOT_SOAK=1 cargo bench --bench soak)"
        );
        return std::process::ExitCode::SUCCESS;
    }
    let seconds: f64 = env_or("SOAK_SECONDS", 300.0);
    let workers: usize = env_or("SOAK_CONCURRENCY", 64);
    let stores = std::env::var("SOAK_STORES").unwrap_or_else(|_| "local aws".into());
    let pairs: Vec<Pair> = stores
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(|s| Pair::parse(s).unwrap_or_else(|| panic!("SOAK_STORES: unknown store {s:?}")))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut passed = true;
    println!(
        "Each store pair: {seconds:.0} s of load from {workers} concurrent workers, then the end check."
    );
    for pair in pairs {
        let run = runtime.block_on(run_pair(pair, seconds, workers));
        passed &= run.passed();
        println!("\n{}", run.markdown().trim_end());
    }
    if passed {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// One store pair: start it, load it until the deadline, check it, judge it.
async fn run_pair(pair: Pair, seconds: f64, workers: usize) -> Run {
    eprintln!("soak: {} for {seconds:.0} s", pair.describe());
    let mut server = Server::start(pair).await;
    let ctx = Arc::new(Ctx::new(
        server.base.clone(),
        server.project,
        server.token.clone(),
    ));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let seed: u64 = rand::random();
    let handles: Vec<_> = (0..workers as u64)
        .map(|i| {
            tokio::spawn(workload::worker(
                ctx.clone(),
                seed.wrapping_add(i),
                deadline,
            ))
        })
        .collect();
    let mut memory = watch(&server, &ctx, started, deadline).await;
    let mut stats = Stats::default();
    for handle in handles {
        stats.merge(handle.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    memory.end = server.rss_mib();
    memory.peak = memory.peak.max(memory.end);
    eprintln!("soak: {}: load done; end check", pair.describe());
    let (end, mut violations) = verify::verify(ctx.clone(), &mut stats).await;
    violations.splice(0..0, std::mem::take(&mut ctx.model().violations));
    // Every package but the last publish's was deleted and purged: its bytes (a blob, or a
    // small file's row or item) are the only ones left.
    let bodies = server.stored_bodies().await;
    if bodies != 1 {
        violations.push(format!(
            "{bodies} files' bytes left after everything but one file was deleted and purged: \
             bytes no live record names"
        ));
    }
    let logged = server.logged_problems();
    let mut failures = stats.failures();
    failures.extend(violations.iter().take(20).cloned());
    if violations.len() > 20 {
        failures.push(format!("... {} violations in all", violations.len()));
    }
    failures.extend(
        logged
            .iter()
            .filter(|l| l.contains(" ERROR "))
            .take(10)
            .cloned(),
    );
    if memory.end > memory.bound() {
        failures.push(format!(
            "memory grew: {:.1} MiB after warm-up, {:.1} MiB at the end",
            memory.start, memory.end
        ));
    }
    if !server.alive() {
        failures.push("the server exited during the soak".into());
    }
    if !failures.is_empty() {
        // The server's own account (`SOAK_RUST_LOG` sets its detail), kept past the temp dir.
        let kept = format!(
            "{}/target/soak-{pair:?}-server.log",
            env!("CARGO_MANIFEST_DIR")
        );
        if std::fs::copy(&server.log, &kept).is_ok() {
            eprintln!("soak: the server's log is kept at {kept}");
        }
    }
    Run {
        pair: pair.describe(),
        seconds: elapsed,
        workers,
        stats,
        memory,
        end,
        violations,
        logged,
        failures,
    }
}

/// Sample the server's RSS every second until `deadline` (the start after the warm-up, the
/// peak from then on) and say how far the load has got every 30 s.
async fn watch(server: &Server, ctx: &Ctx, started: Instant, deadline: Instant) -> Memory {
    let total = deadline - started;
    let warmup = (total / 5).min(Duration::from_secs(15));
    let mut memory = Memory::default();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut said = Instant::now();
    while Instant::now() < deadline {
        ticks.tick().await;
        let rss = server.rss_mib();
        if memory.start == 0.0 && started.elapsed() >= warmup {
            memory.start = rss;
        }
        if memory.start > 0.0 {
            memory.peak = memory.peak.max(rss);
        }
        if said.elapsed() >= Duration::from_secs(30) {
            said = Instant::now();
            let model = ctx.model();
            eprintln!(
                "soak: {:>4.0} s, {} requests, {} live files in {} packages, RSS {rss:.1} MiB",
                started.elapsed().as_secs_f64(),
                ctx.requests(),
                model.live_files.len(),
                model.live_packages.len(),
            );
        }
    }
    if memory.start == 0.0 {
        memory.start = server.rss_mib();
    }
    memory
}
