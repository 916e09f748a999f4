//! `make bench`: what depot costs per operation on the AWS shape, and how fast its Lambda starts.
//!
//! The release `lambda-api` binary runs as on Lambda, polling a Lambda Runtime API served here on
//! loopback, with DynamoDB Local (behind a counting proxy that also asks for the consumed
//! capacity) and s3s-fs (observed in-process) as its stores. Each operation is sent as an API
//! Gateway (HTTP API) event; the S3 and DynamoDB requests it causes, their bytes and capacity
//! units, the handler's duration and the process's peak RSS are measured, then priced with the
//! list prices below. The start: the time from spawning the binary to its first poll for an
//! event (SDK clients built), over several starts.
//!
//! Run by `make bench` (`cargo bench --bench aws_costs`); under `cargo test` it only says so.
//! Prints Markdown.

#[path = "../../tests/it/support/mod.rs"]
mod support;

mod billing;
mod events;
mod lambda;
mod proxy;
mod report;

use depot::admin::Admin;
use depot::store::dynamo::DynamoMetaStore;
use lambda::{Function, Lambda, event, runtime_api};
use proxy::{Calls, dynamo_proxy, s3_call};
use report::{Measured, report};
use serde_json::json;
use sha2::Digest;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::dynamo::DynamoEmulator;
use support::s3::S3Emulator;

/// The API function's memory setting in template.yaml (what Lambda bills by), read from it.
fn api_memory_mb() -> f64 {
    memory_mb("ApiFunction")
}

/// The memory setting of the template's function `resource`.
fn memory_mb(resource: &str) -> f64 {
    let template = include_str!("../../template.yaml");
    let at = template
        .find(&format!("  {resource}:"))
        .unwrap_or_else(|| panic!("template.yaml has no {resource}"));
    let line = template[at..]
        .lines()
        .find_map(|l| l.trim().strip_prefix("MemorySize:"));
    line.and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{resource}'s MemorySize"))
}
const SMALL: usize = 4096;
const RUNS: usize = 20;
const HANDOFF_RUNS: usize = 3;
const HANDOFF_MIB: usize = 100;
const STARTS: usize = 5;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("aws_costs is a benchmark: `make bench` runs it (cargo bench --bench aws_costs)");
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    let (calls, _s3, env, project, token) = stores().await;
    let starts = starts(&env).await;
    assert!(calls.take().is_empty(), "init makes no store requests");

    let (runtime, queue, ready) = runtime_api().await;
    let function = Function::spawn(&runtime, &env);
    ready.await.unwrap();
    let mut lambda = Lambda { queue, count: 0 };
    let base = format!("/api/v4/projects/{project}/packages");
    let small = vec![7u8; SMALL];
    let mut results = Vec::new();

    // Runs `runs` times: the operation's invocations (their count, durations) and egress bytes.
    macro_rules! measure {
        ($name:expr, $runs:expr, |$i:ident| $body:expr) => {{
            calls.take();
            let (mut durations, mut invocations, mut egress) = (Vec::new(), 0usize, 0u64);
            let mut cpu = Vec::new();
            for $i in 0..$runs {
                let on_cpu = function.cpu_ms();
                let (d, n, e): (Vec<Duration>, usize, u64) = $body;
                cpu.push(function.cpu_ms() - on_cpu);
                durations.extend(d.iter().map(|d| d.as_secs_f64() * 1000.0));
                invocations += n;
                egress += e;
            }
            results.push(Measured {
                name: $name,
                runs: $runs,
                calls: calls.take(),
                invocations,
                durations_ms: durations,
                cpu_ms: cpu,
                egress_bytes: egress,
                event_ms: Vec::new(),
            });
        }};
    }

    measure!("publish 4 KiB, new package", RUNS, |i| {
        let uri = format!("{base}/generic/pkg-{i}/1.0/f.bin");
        let (status, _, took) = lambda
            .invoke(event("PUT", &uri, &token, Some(&small)))
            .await;
        assert_eq!(status, 201, "publish");
        (vec![took], 1, 0)
    });
    measure!("publish 4 KiB, existing package", RUNS, |i| {
        let uri = format!("{base}/generic/pkg-0/1.0/g{i}.bin");
        let (status, _, took) = lambda
            .invoke(event("PUT", &uri, &token, Some(&small)))
            .await;
        assert_eq!(status, 201, "publish");
        (vec![took], 1, 0)
    });
    // What their events cost: the events function on the table's stream so far.
    let mut pump = stores_pump(&env).await;
    let event_runs = events::measure(&calls, &env, &mut pump, 10).await;
    // The first download of a package also records last_downloaded_at (kept to the minute).
    let uri = format!("{base}/generic/pkg-1/1.0/f.bin");
    measure!("download 4 KiB, first in a minute", 1, |_i| {
        let (status, _, took) = lambda.invoke(event("GET", &uri, &token, None)).await;
        assert_eq!(status, 200, "download");
        (vec![took], 1, SMALL as u64)
    });
    measure!("download 4 KiB", RUNS, |_i| {
        let (status, _, took) = lambda.invoke(event("GET", &uri, &token, None)).await;
        assert_eq!(status, 200, "download");
        (vec![took], 1, SMALL as u64)
    });
    measure!("list page (20 of 20 packages)", RUNS, |_i| {
        let uri = format!("{base}?per_page=20");
        let (status, body, took) = lambda.invoke(event("GET", &uri, &token, None)).await;
        assert_eq!(status, 200, "list");
        assert_eq!(body.as_array().map(Vec::len), Some(20));
        (vec![took], 1, 0)
    });

    // The large-file handoff: open a session, PUT the parts straight to S3, complete.
    let big: Vec<u8> = (0..HANDOFF_MIB << 20)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let sha = hex::encode(sha2::Sha256::digest(&big));
    let http = reqwest::Client::new();
    let handoff_name: &'static str = Box::leak(
        format!(
            "handoff {HANDOFF_MIB} MiB (declared SHA-256; open, PUT to S3, complete, S3's event)"
        )
        .into_boxed_str(),
    );
    // S3 tells the finalizer function of the object, as the template has it do.
    let (runtime, queue, ready) = runtime_api().await;
    let finalize = Function::spawn_binary("lambda-finalize", "FinalizeFunction", &runtime, &env);
    ready.await.unwrap();
    let mut finalizer = Lambda { queue, count: 0 };
    let mut event_ms = Vec::new();
    measure!(handoff_name, HANDOFF_RUNS, |i| {
        let uri = format!("{base}/generic/big-{i}/1.0/big.bin/uploads");
        let to = Handoff {
            http: &http,
            uri: &uri,
            token: &token,
            finalizer: &mut finalizer,
        };
        let (d, n, e, events) = handoff(&mut lambda, to, &big, &sha).await;
        event_ms.extend(events);
        (d, n, e)
    });
    results.last_mut().unwrap().event_ms = event_ms;
    let peak_mib = function.peak_rss_mib();
    drop(function);
    drop(finalize);

    report(&results, &starts, peak_mib);
    events::report(&event_runs);
    report::sizing(&results);
}

/// From spawning the function to its first poll for an event (SDK clients built), ms, each of
/// [`STARTS`] starts.
async fn starts(env: &[(&str, String)]) -> Vec<f64> {
    let mut starts = Vec::new();
    for _ in 0..STARTS {
        let (runtime, _queue, ready) = runtime_api().await;
        let spawned = Instant::now();
        let function = Function::spawn(&runtime, env);
        let at = tokio::time::timeout(Duration::from_secs(30), ready)
            .await
            .expect("the function polls for an event within 30 s")
            .unwrap();
        starts.push((at - spawned).as_secs_f64() * 1000.0);
        drop(function);
    }
    starts
}

/// Where a handoff goes: the session route `uri`, and the finalizer S3 notifies.
struct Handoff<'a> {
    http: &'a reqwest::Client,
    uri: &'a str,
    token: &'a str,
    finalizer: &'a mut Lambda,
}

/// One large-file handoff (declaring its SHA-256, as `depot push` does): open a session, PUT
/// the bytes (or parts) straight to S3, complete (telling of any parts), then the event S3
/// sends the finalizer for an object under a notified prefix (after the client's `complete`,
/// as it comes in practice: a second or so later). The API invocations' durations, their
/// count, no egress, and the finalizer invocations' durations (ms).
async fn handoff(
    lambda: &mut Lambda,
    to: Handoff<'_>,
    big: &[u8],
    sha: &str,
) -> (Vec<Duration>, usize, u64, Vec<f64>) {
    let Handoff {
        http,
        uri,
        token,
        finalizer,
    } = to;
    let open = json!({"size": big.len(), "sha256": sha}).to_string();
    let mut e = event("POST", uri, token, Some(open.as_bytes()));
    e["headers"]["content-type"] = json!("application/json");
    let (status, session, opened) = lambda.invoke(e).await;
    assert_eq!(status, 201, "open: {session}");
    let parts = session["upload"]["parts"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| {
            let mut single = session["upload"].clone();
            single["part_number"] = json!(1);
            single["size"] = json!(big.len());
            vec![single]
        });
    let mut offset = 0usize;
    // Each part's ETag, told to `complete` as `depot push` tells it.
    let mut sent = Vec::new();
    for part in &parts {
        let size = part["size"].as_u64().unwrap() as usize;
        let mut put = http
            .put(part["url"].as_str().unwrap())
            .body(big[offset..offset + size].to_vec());
        for (k, v) in part["headers"].as_object().into_iter().flatten() {
            if !k.eq_ignore_ascii_case("content-length") {
                put = put.header(k, v.as_str().unwrap());
            }
        }
        let answer = put.send().await.unwrap();
        assert!(answer.status().is_success(), "part: {}", answer.status());
        if let Some(etag) = answer.headers().get("etag") {
            let etag = etag.to_str().unwrap();
            sent.push(json!({"part_number": part["part_number"], "etag": etag}));
        }
        offset += size;
    }
    let id = session["id"].as_str().unwrap();
    let complete = format!("{uri}/{id}/complete");
    let told = json!({ "parts": sent }).to_string();
    let mut e = event("POST", &complete, token, Some(told.as_bytes()));
    e["headers"]["content-type"] = json!("application/json");
    let (status, done, completed) = lambda.invoke(e).await;
    assert_eq!(status, 200, "complete: {done}");
    assert_eq!(done["package_file"]["file_sha256"], json!(sha));
    let mut events = Vec::new();
    let url = parts[0]["url"].as_str().unwrap();
    let path = url.split('?').next().unwrap();
    if let Some(at) = ["/checked/", "/uploads/"].iter().find_map(|p| path.find(p)) {
        let (answer, took) = finalizer
            .invoke_raw(s3_event(&path[at + 1..], big.len()))
            .await;
        assert_eq!(
            answer["records"][0]["state"], "committed",
            "the event: {answer}"
        );
        events.push(took.as_secs_f64() * 1000.0);
    }
    (vec![opened, completed], 2, 0, events)
}

/// An S3 `ObjectCreated:Put` notification for `key`, as S3 sends it.
fn s3_event(key: &str, size: usize) -> serde_json::Value {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-30T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "uploads",
            "bucket": {"name": "depot-bench", "arn": "arn:aws:s3:::depot-bench"},
            "object": {"key": key, "size": size, "sequencer": "0055AED6DCD90281E5"}}
    }]})
}

/// The stream of the function's table (read directly: a Lambda trigger's stream reads are
/// free, and nothing of them is counted).
async fn stores_pump(env: &[(&str, String)]) -> support::stream::StreamPump {
    let table = &env.iter().find(|(k, _)| *k == "DEPOT_TABLE").unwrap().1;
    let dynamo = DynamoEmulator::shared();
    support::stream::StreamPump::of(&dynamo.client(), &dynamo.endpoint, table).await
}

/// The emulators behind the function, every request recorded in the returned `Calls`; the
/// function's environment, and a developer's project and token. The S3 emulator lives as long
/// as the returned value.
async fn stores() -> (Calls, S3Emulator, Vec<(&'static str, String)>, i64, String) {
    let calls = Calls::default();
    let seen = calls.clone();
    let s3 = S3Emulator::start_observed(Some(Arc::new(move |request, response| {
        seen.push(s3_call(request, response))
    })))
    .await;
    let bucket = s3.bucket("depot-bench").await;
    let dynamo = DynamoEmulator::shared();
    let (client, table) = dynamo.fresh_table().await;
    let proxy = dynamo_proxy(dynamo.endpoint.clone(), calls.clone()).await;
    let admin = Admin::new(Arc::new(DynamoMetaStore::new(client, table.clone())));
    let (project, token) = support::provision_developer(&admin, "bench", "app", "dev").await;
    calls.take();
    let env = vec![
        ("DEPOT_STORE", "aws".to_string()),
        ("DEPOT_TABLE", table),
        ("DEPOT_BUCKET", bucket),
        ("DEPOT_S3_ENDPOINT", s3.endpoint.clone()),
        ("DEPOT_DYNAMODB_ENDPOINT", format!("http://{proxy}")),
        ("AWS_ACCESS_KEY_ID", support::s3::ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", support::s3::SECRET_KEY.to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ];
    (calls, s3, env, project, token)
}
