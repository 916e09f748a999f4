//! Pricing and the report: AWS list prices, what one kind of operation cost over its runs, and
//! the Markdown tables `make bench` writes into BENCHMARKS.md.

use super::proxy::{Call, S3Class};
use super::{HANDOFF_RUNS, RUNS, api_memory_mb};
use std::collections::BTreeMap;

/// AWS list prices, us-east-1, USD (as published by AWS in 2025; this machine cannot reach
/// AWS to re-check them).
pub mod price {
    /// API Gateway HTTP API, per request (first 300 million a month).
    pub const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
    /// Lambda, per request.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// Lambda arm64, per GB-second (first 6 billion GB-s a month).
    pub const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
    /// DynamoDB on-demand, per write request unit and per read request unit.
    pub const DYNAMO_WRU: f64 = 0.625 / 1e6;
    pub const DYNAMO_RRU: f64 = 0.125 / 1e6;
    /// S3 Standard: PUT, COPY, POST, LIST per request; GET and others per request; DELETE free.
    pub const S3_PUT: f64 = 0.005 / 1e3;
    pub const S3_GET: f64 = 0.0004 / 1e3;
    /// Data transfer out to the internet, per GB (first 10 TB a month).
    pub const EGRESS_GB: f64 = 0.09;
    /// EventBridge, per custom event put (64 KB each).
    pub const EVENTBRIDGE_EVENT: f64 = 1.00 / 1e6;
}

/// What one kind of operation cost, over its runs.
pub struct Measured {
    pub name: &'static str,
    pub runs: usize,
    pub calls: Vec<Call>,
    pub invocations: usize,
    pub durations_ms: Vec<f64>,
    /// The function's time on a CPU, all its threads, each run.
    pub cpu_ms: Vec<f64>,
    pub egress_bytes: u64,
    /// Invocations of the finalizer that S3's events cause, ms each (billed at its memory).
    pub event_ms: Vec<f64>,
}

impl Measured {
    pub fn per_op<F: Fn(&Call) -> f64>(&self, f: F) -> f64 {
        self.calls.iter().map(f).sum::<f64>() / self.runs as f64
    }

    /// The requests per operation of the calls `at_s3` picks (S3's or DynamoDB's), by kind,
    /// and their total.
    pub fn requests(&self, at_s3: bool) -> (String, f64) {
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for c in self.calls.iter().filter(|c| c.s3_class.is_some() == at_s3) {
            *by.entry(c.what.as_str()).or_default() += 1;
        }
        let total = by.values().sum::<usize>() as f64 / self.runs as f64;
        let listed = by
            .iter()
            .map(|(what, n)| {
                let per = *n as f64 / self.runs as f64;
                if per.fract() == 0.0 {
                    format!("{per:.0} {what}")
                } else {
                    format!("{per:.2} {what}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        (listed, total)
    }

    /// The wall time of the median run, ms (a run's invocations summed).
    pub fn median_wall_ms(&self) -> f64 {
        let per_run = self.invocations / self.runs;
        let walls: Vec<f64> = self
            .durations_ms
            .chunks(per_run)
            .map(|c| c.iter().sum())
            .collect();
        median(&walls)
    }

    /// The billed milliseconds of the median run at `memory_mb` ([`modelled_ms`]).
    pub fn modelled_ms(&self, memory_mb: f64) -> f64 {
        modelled_ms(self.median_wall_ms(), median(&self.cpu_ms), memory_mb)
    }

    /// Handler milliseconds per operation (all its invocations), each run.
    pub fn billed_ms(&self) -> Vec<f64> {
        let per_run = self.invocations / self.runs;
        self.durations_ms
            .chunks(per_run)
            .map(|c| c.iter().map(|d| d.ceil()).sum())
            .collect()
    }
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn spread(v: &[f64], digits: usize) -> String {
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.digits$} ({min:.digits$}-{max:.digits$})", median(v))
}

/// The Lambda zip `make package` built: the architecture of its `bootstrap` (from the ELF
/// header), its size unzipped and the zip's size.
pub fn deployed_bootstrap() -> Option<(String, u64, u64)> {
    let zip = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/lambda/lambda-api/bootstrap.zip"
    );
    let zipped = std::fs::metadata(zip).ok()?.len();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); i=z.getinfo('bootstrap'); \
             h=z.open(i).read(20); print({183:'arm64',62:'x86_64'}.get(h[18]|h[19]<<8,'?'), i.file_size)",
        ])
        .arg(zip)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let (arch, size) = text.trim().split_once(' ')?;
    Some((arch.to_string(), size.parse().ok()?, zipped))
}

pub fn report(results: &[Measured], starts: &[f64], peak_mib: f64) {
    let memory_mb = api_memory_mb();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let binary = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/release/lambda-api"
    ));
    let size = std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0);
    println!("### Lambda start\n");
    match deployed_bootstrap() {
        Some((arch, unzipped, zipped)) => println!(
            "The bootstrap `make package` builds for deployment (`target/lambda/lambda-api/\
             bootstrap.zip`, {arch}) is {:.1} MiB, {:.1} MiB zipped.",
            mib(unzipped),
            mib(zipped)
        ),
        None => println!(
            "`target/lambda/lambda-api/bootstrap.zip` is missing: run `make package` (which \
             `make bench` does) to measure the deployed bootstrap."
        ),
    }
    println!(
        "Init was measured with this machine's x86_64 release build of the same code ({:.1} MiB): \
         from spawning it to its first poll of the Runtime API (config read, S3 and DynamoDB \
         clients built), **{} ms**, median (min-max) of {} starts.\n",
        mib(size),
        spread(starts, 1),
        starts.len()
    );
    println!("### Cost per operation on AWS\n");
    println!(
        "Measured by running the release `lambda-api` against a local Lambda Runtime API, \
         DynamoDB Local (behind a proxy that asks each request for its consumed capacity) and \
         s3s-fs (requests observed as they arrive), each operation sent as an API Gateway \
         HTTP API event, {RUNS} runs each ({HANDOFF_RUNS} for the handoff). Counts and units \
         are per operation (averaged over the runs when they differ). The handler's peak RSS \
         over the whole run: {peak_mib:.0} MiB of the {memory_mb:.0} MB the template \
         gives the function.\n"
    );
    println!(
        "| operation | DynamoDB requests | RRU / WRU | S3 requests | store bytes in / out | handler ms (billed, median (min-max)) |"
    );
    println!("|---|---|---|---|---|---|");
    for m in results {
        let ((dynamo, dynamo_n), (s3, s3_n)) = (m.requests(false), m.requests(true));
        println!(
            "| {} | {} ({:.2}) | {:.1} / {:.1} | {} ({:.2}) | {} / {} | {} |",
            m.name,
            dynamo,
            dynamo_n,
            m.per_op(|c| c.read_units),
            m.per_op(|c| c.write_units),
            s3,
            s3_n,
            human(m.per_op(|c| c.bytes_in as f64)),
            human(m.per_op(|c| c.bytes_out as f64)),
            spread(&m.billed_ms(), 0),
        );
    }
    dollars(results, memory_mb);
}

/// The table of dollars per million operations, with the prices it uses.
fn dollars(results: &[Measured], memory_mb: f64) {
    let dynamo_ms: Vec<f64> = results
        .iter()
        .flat_map(|m| m.calls.iter().filter_map(|c| c.millis))
        .collect();
    println!(
        "\nIn dollars per million operations, with AWS list prices for us-east-1 (USD; the \
         prices AWS published in 2025, which this machine cannot reach AWS to re-check): HTTP \
         API ${:.2}/M requests; Lambda ${:.2}/M requests and ${:.10}/GB-s on arm64 at \
         {memory_mb:.0} MB; DynamoDB on-demand ${:.3}/M WRU and ${:.3}/M RRU; S3 Standard \
         ${:.3}/1,000 PUT/COPY/POST/LIST and ${:.4}/1,000 GET (DELETE free); data out to the \
         internet ${:.2}/GB. Lambda duration is the billed milliseconds at {memory_mb:.0} MB as \
         the Lambda memory table below models them from the time measured here (which \
         includes the emulators' answers): DynamoDB Local took {} ms per request, median \
         (min-max), of the order of DynamoDB's own single-digit milliseconds in-region.\n",
        price::HTTP_API_REQUEST * 1e6,
        price::LAMBDA_REQUEST * 1e6,
        price::LAMBDA_ARM_GB_SECOND,
        price::DYNAMO_WRU * 1e6,
        price::DYNAMO_RRU * 1e6,
        price::S3_PUT * 1e3,
        price::S3_GET * 1e3,
        price::EGRESS_GB,
        spread(&dynamo_ms, 1),
    );
    println!(
        "| operation | API Gateway | Lambda requests | Lambda duration | DynamoDB | S3 | data out | total $ per million |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for m in results {
        let per_invocation = m.invocations as f64 / m.runs as f64;
        let per_event = m.event_ms.len() as f64 / m.runs as f64;
        let gateway = per_invocation * price::HTTP_API_REQUEST;
        let lambda_requests = (per_invocation + per_event) * price::LAMBDA_REQUEST;
        let gb_s = |ms: f64, mb: f64| ms / 1000.0 * mb / 1024.0 * price::LAMBDA_ARM_GB_SECOND;
        let events_ms: f64 = m.event_ms.iter().map(|ms| ms.ceil()).sum();
        let duration = gb_s(m.modelled_ms(memory_mb), memory_mb)
            + gb_s(
                events_ms / m.runs as f64,
                super::memory_mb("FinalizeFunction"),
            );
        let dynamo = m.per_op(|c| c.read_units) * price::DYNAMO_RRU
            + m.per_op(|c| c.write_units) * price::DYNAMO_WRU;
        let s3 = m.per_op(|c| match c.s3_class {
            Some(S3Class::Put) => price::S3_PUT,
            Some(S3Class::Get) => price::S3_GET,
            _ => 0.0,
        });
        let egress = m.egress_bytes as f64 / m.runs as f64 / 1e9 * price::EGRESS_GB;
        let fixed = gateway + lambda_requests + dynamo + s3 + egress;
        let m6 = |v: f64| format!("{:.3}", v * 1e6);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | **{}** |",
            m.name,
            m6(gateway),
            m6(lambda_requests),
            m6(duration),
            m6(dynamo),
            m6(s3),
            m6(egress),
            m6(fixed + duration),
        );
    }
}

/// Lambda gives a function one full vCPU at this memory size, a share in proportion below it.
const FULL_VCPU_MB: f64 = 1769.0;

/// The memory sizes the sizing table compares.
const SIZES_MB: [f64; 5] = [128.0, 256.0, 512.0, 1024.0, FULL_VCPU_MB];

/// An operation's billed milliseconds at `memory_mb`, modelled from one run here: its time
/// waiting (wall minus CPU) stays, its CPU time stretches by the share of a vCPU Lambda gives
/// (a core of this machine taken as a Lambda vCPU).
fn modelled_ms(wall_ms: f64, cpu_ms: f64, memory_mb: f64) -> f64 {
    let waiting = (wall_ms - cpu_ms).max(0.0);
    (waiting + cpu_ms * (FULL_VCPU_MB / memory_mb).max(1.0)).ceil()
}

/// The sizing table: each operation's Lambda duration cost at each memory size.
pub fn sizing(results: &[Measured]) {
    println!(
        "\n### Lambda memory\n\nThe function's CPU time per operation (all its threads, from \
         `/proc/<pid>/task/*/schedstat`) against its wall time: what is left is waiting for \
         DynamoDB and S3, which does not shrink with more memory. Lambda gives a full vCPU at \
         {FULL_VCPU_MB:.0} MB and a proportional share below; taking one core of this machine \
         as one Lambda vCPU, the billed duration at each size is modelled as waiting + CPU \
         time / share, and priced at ${:.10}/GB-s (arm64). Lambda duration $ per million \
         operations, median run:\n",
        price::LAMBDA_ARM_GB_SECOND
    );
    let header: Vec<String> = SIZES_MB.iter().map(|m| format!("{m:.0} MB")).collect();
    println!("| operation | wall ms | CPU ms | {} |", header.join(" | "));
    println!("|---|---|---|{}", "---|".repeat(SIZES_MB.len()));
    for m in results {
        let (wall, cpu) = (m.median_wall_ms(), median(&m.cpu_ms));
        let costs: Vec<String> = SIZES_MB
            .iter()
            .map(|&mb| {
                let ms = m.modelled_ms(mb);
                let dollars = ms / 1000.0 * mb / 1024.0 * price::LAMBDA_ARM_GB_SECOND * 1e6;
                format!("{dollars:.3} ({ms:.0} ms)")
            })
            .collect();
        println!(
            "| {} | {wall:.1} | {cpu:.1} | {} |",
            m.name,
            costs.join(" | ")
        );
    }
}

pub fn human(bytes: f64) -> String {
    if bytes >= (1 << 20) as f64 {
        format!("{:.1} MiB", bytes / (1 << 20) as f64)
    } else if bytes >= 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else {
        format!("{bytes:.0} B")
    }
}
