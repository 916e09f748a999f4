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

#[path = "../tests/it/support/mod.rs"]
mod support;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use base64::Engine;
use depot::admin::Admin;
use depot::store::dynamo::DynamoMetaStore;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::dynamo::DynamoEmulator;
use support::s3::S3Emulator;
use tokio::sync::{mpsc, oneshot};

/// AWS list prices, us-east-1, USD (as published by AWS in 2025; this machine cannot reach
/// AWS to re-check them).
mod price {
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
}

/// The API function's memory setting in template.yaml (what Lambda bills by).
const API_MEMORY_MB: f64 = 512.0;
const SMALL: usize = 4096;
const RUNS: usize = 20;
const HANDOFF_RUNS: usize = 3;
const HANDOFF_MIB: usize = 100;
const STARTS: usize = 5;

/// One request seen at a store.
#[derive(Debug, Clone)]
struct Call {
    what: String,
    bytes_in: u64,
    bytes_out: u64,
    read_units: f64,
    write_units: f64,
    s3_class: Option<S3Class>,
    /// How long the store took to answer (DynamoDB only).
    millis: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum S3Class {
    Put,
    Get,
    Free,
}

#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<Call>>>);

impl Calls {
    fn push(&self, call: Call) {
        self.0.lock().unwrap().push(call);
    }
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

fn content_length(headers: &axum::http::HeaderMap) -> u64 {
    headers
        .get("x-amz-decoded-content-length")
        .or_else(|| headers.get("content-length"))
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0)
}

/// Name an S3 request by what it does, and its price class.
fn s3_call(request: &axum::http::request::Parts, response: &axum::http::response::Parts) -> Call {
    let query = request.uri.query().unwrap_or("");
    let has = |k: &str| {
        query
            .split('&')
            .any(|p| p == k || p.starts_with(&format!("{k}=")))
    };
    let method = request.method.as_str();
    let what = match method {
        "PUT" if request.headers.contains_key("x-amz-copy-source") && has("partNumber") => {
            "UploadPartCopy"
        }
        "PUT" if request.headers.contains_key("x-amz-copy-source") => "CopyObject",
        "PUT" if has("partNumber") => "UploadPart",
        "PUT" => "PutObject",
        "POST" if has("uploads") => "CreateMultipartUpload",
        "POST" if has("uploadId") => "CompleteMultipartUpload",
        "GET" if has("uploadId") => "ListParts",
        "GET" if has("list-type") => "ListObjectsV2",
        "GET" => "GetObject",
        "HEAD" => "HeadObject",
        "DELETE" if has("uploadId") => "AbortMultipartUpload",
        "DELETE" => "DeleteObject",
        _ => "other",
    };
    let class = match what {
        "GetObject" | "HeadObject" => S3Class::Get,
        "DeleteObject" | "AbortMultipartUpload" => S3Class::Free,
        _ => S3Class::Put,
    };
    Call {
        what: format!("S3 {what}"),
        bytes_in: content_length(&request.headers),
        // A HEAD's content-length is the object's size, not bytes sent.
        bytes_out: if method == "HEAD" {
            0
        } else {
            content_length(&response.headers)
        },
        read_units: 0.0,
        write_units: 0.0,
        s3_class: Some(class),
        millis: None,
    }
}

/// A proxy in front of DynamoDB Local that asks every request for its consumed capacity
/// (DynamoDB Local reports it, and does not check signatures) and records it.
async fn dynamo_proxy(target: String, calls: Calls) -> String {
    #[derive(Clone)]
    struct Proxy {
        target: String,
        calls: Calls,
        http: reqwest::Client,
    }
    async fn forward(State(p): State<Proxy>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
        let operation = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_string();
        let mut request: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
        if let Some(map) = request.as_object_mut()
            && !operation.starts_with("CreateTable")
            && !operation.starts_with("Describe")
        {
            map.insert("ReturnConsumedCapacity".into(), json!("TOTAL"));
        }
        let sent = serde_json::to_vec(&request).unwrap();
        let mut out = p.http.post(&p.target).body(sent.clone());
        for (k, v) in &headers {
            if k != "host" && k != "content-length" {
                out = out.header(k, v);
            }
        }
        let sent_at = Instant::now();
        let response = out.send().await.expect("DynamoDB Local answers");
        let status = response.status().as_u16();
        let mut back = HeaderMap::new();
        for (k, v) in response.headers() {
            if k != "content-length" && k != "transfer-encoding" && k != "x-amz-crc32" {
                back.insert(k.clone(), v.clone());
            }
        }
        let bytes = response.bytes().await.unwrap();
        let millis = Some(sent_at.elapsed().as_secs_f64() * 1000.0);
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(json!({}));
        let units: f64 = match &answer["ConsumedCapacity"] {
            Value::Array(all) => all.iter().filter_map(|c| c["CapacityUnits"].as_f64()).sum(),
            one => one["CapacityUnits"].as_f64().unwrap_or(0.0),
        };
        let reads = matches!(
            operation.as_str(),
            "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems"
        );
        p.calls.push(Call {
            what: operation,
            bytes_in: body.len() as u64,
            bytes_out: bytes.len() as u64,
            read_units: if reads { units } else { 0.0 },
            write_units: if reads { 0.0 } else { units },
            s3_class: None,
            millis,
        });
        (StatusCode::from_u16(status).unwrap(), back, bytes)
    }
    let app = Router::new().fallback(any(forward)).with_state(Proxy {
        target,
        calls,
        http: reqwest::Client::new(),
    });
    serve(app).await
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// An event for the function and where to send its answer.
struct Invocation {
    id: String,
    event: Value,
    answer: oneshot::Sender<(Value, Duration)>,
}

/// An invocation handed out: where its answer goes, and when it was handed out.
type Waiting = (oneshot::Sender<(Value, Duration)>, Instant);

/// The Lambda Runtime API, as far as a function uses it: `next` hands out queued invocations,
/// `response` completes them; the first `next` marks the end of the function's init.
#[derive(Clone)]
struct Runtime {
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Invocation>>>,
    waiting: Arc<Mutex<HashMap<String, Waiting>>>,
    ready: Arc<Mutex<Option<oneshot::Sender<Instant>>>>,
}

async fn runtime_api() -> (String, mpsc::Sender<Invocation>, oneshot::Receiver<Instant>) {
    async fn next(State(rt): State<Runtime>) -> impl IntoResponse {
        if let Some(ready) = rt.ready.lock().unwrap().take() {
            let _ = ready.send(Instant::now());
        }
        let Some(invocation) = rt.queue.lock().await.recv().await else {
            return (StatusCode::GONE, HeaderMap::new(), String::new());
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            "lambda-runtime-aws-request-id",
            invocation.id.parse().unwrap(),
        );
        let deadline = epoch_ms() + 29_000;
        headers.insert("lambda-runtime-deadline-ms", deadline.into());
        headers.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:depot-api"
                .parse()
                .unwrap(),
        );
        headers.insert("lambda-runtime-trace-id", "Root=1-0-0".parse().unwrap());
        rt.waiting
            .lock()
            .unwrap()
            .insert(invocation.id, (invocation.answer, Instant::now()));
        (StatusCode::OK, headers, invocation.event.to_string())
    }
    async fn respond(State(rt): State<Runtime>, Path(id): Path<String>, body: Bytes) -> StatusCode {
        let done = Instant::now();
        if let Some((answer, started)) = rt.waiting.lock().unwrap().remove(&id) {
            let value = serde_json::from_slice(&body).unwrap_or(json!({"raw": "unparsable"}));
            let _ = answer.send((value, done - started));
        }
        StatusCode::ACCEPTED
    }
    async fn failed(Path(id): Path<String>, body: Bytes) -> StatusCode {
        panic!("invocation {id} failed: {}", String::from_utf8_lossy(&body));
    }
    async fn init_failed(body: Bytes) -> StatusCode {
        panic!("function init failed: {}", String::from_utf8_lossy(&body));
    }
    let (queue, received) = mpsc::channel(16);
    let (ready, is_ready) = oneshot::channel();
    let rt = Runtime {
        queue: Arc::new(tokio::sync::Mutex::new(received)),
        waiting: Arc::default(),
        ready: Arc::new(Mutex::new(Some(ready))),
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(respond),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(failed))
        .route("/2018-06-01/runtime/init/error", post(init_failed))
        .with_state(rt);
    (serve(app).await, queue, is_ready)
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The release `lambda-api`, running against the runtime at `runtime` and the emulators.
struct Function {
    child: std::process::Child,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    fn spawn(runtime: &str, env: &[(&str, String)]) -> Self {
        let binary = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/lambda-api");
        let mut command = std::process::Command::new(binary);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", runtime)
            .env("AWS_LAMBDA_FUNCTION_NAME", "depot-api")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/depot-api")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary} (built by `make bench`): {e}"));
        Self { child }
    }

    /// Peak RSS of the process so far, MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }
}

/// An API Gateway HTTP API (payload 2.0) event.
fn event(method: &str, path_and_query: &str, token: &str, body: Option<&[u8]>) -> Value {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut e = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "host": "id.execute-api.us-east-1.amazonaws.com",
            "private-token": token,
        },
        "requestContext": {
            "accountId": "123456789012", "apiId": "id", "domainName": "id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "id", "requestId": "bench", "routeKey": "$default", "stage": "$default",
            "time": "24/Nov/2026:12:00:00 +0000", "timeEpoch": 1795521600000u64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "bench"},
        },
        "isBase64Encoded": false,
    });
    if let Some(body) = body {
        e["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
        e["isBase64Encoded"] = json!(true);
        e["headers"]["content-length"] = json!(body.len().to_string());
        e["headers"]["content-type"] = json!("application/octet-stream");
    }
    e
}

struct Lambda {
    queue: mpsc::Sender<Invocation>,
    count: u64,
}

impl Lambda {
    /// Invoke with `event`; the function's answer (status, parsed JSON body if any) and the
    /// handler's duration.
    async fn invoke(&mut self, event: Value) -> (u16, Value, Duration) {
        self.count += 1;
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Invocation {
                id: format!("req-{}", self.count),
                event,
                answer,
            })
            .await
            .unwrap();
        let (response, took) = tokio::time::timeout(Duration::from_secs(60), answered)
            .await
            .expect("the function answers within 60 s")
            .unwrap();
        let status = response["statusCode"].as_u64().unwrap_or(0) as u16;
        let body = response["body"].as_str().unwrap_or("");
        let body = if response["isBase64Encoded"].as_bool() == Some(true) {
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap_or_default()
        } else {
            body.as_bytes().to_vec()
        };
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, json, took)
    }
}

/// What one kind of operation cost, over its runs.
struct Measured {
    name: &'static str,
    runs: usize,
    calls: Vec<Call>,
    invocations: usize,
    durations_ms: Vec<f64>,
    egress_bytes: u64,
}

impl Measured {
    fn per_op<F: Fn(&Call) -> f64>(&self, f: F) -> f64 {
        self.calls.iter().map(f).sum::<f64>() / self.runs as f64
    }

    /// The requests per operation of the calls `at_s3` picks (S3's or DynamoDB's), by kind,
    /// and their total.
    fn requests(&self, at_s3: bool) -> (String, f64) {
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

    /// Handler milliseconds per operation (all its invocations), each run.
    fn billed_ms(&self) -> Vec<f64> {
        let per_run = self.invocations / self.runs;
        self.durations_ms
            .chunks(per_run)
            .map(|c| c.iter().map(|d| d.ceil()).sum())
            .collect()
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn spread(v: &[f64], digits: usize) -> String {
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.digits$} ({min:.digits$}-{max:.digits$})", median(v))
}

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
    let env = [
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

    // Start: spawn to the first poll for an event, SDK clients built.
    let mut starts = Vec::new();
    for _ in 0..STARTS {
        let (runtime, _queue, ready) = runtime_api().await;
        let spawned = Instant::now();
        let function = Function::spawn(&runtime, &env);
        let at = tokio::time::timeout(Duration::from_secs(30), ready)
            .await
            .expect("the function polls for an event within 30 s")
            .unwrap();
        starts.push((at - spawned).as_secs_f64() * 1000.0);
        drop(function);
    }
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
            for $i in 0..$runs {
                let (d, n, e): (Vec<Duration>, usize, u64) = $body;
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
                egress_bytes: egress,
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
        format!("handoff {HANDOFF_MIB} MiB (64 MiB parts; open, parts to S3, complete)")
            .into_boxed_str(),
    );
    measure!(handoff_name, HANDOFF_RUNS, |i| {
        let uri = format!("{base}/generic/big-{i}/1.0/big.bin/uploads");
        let open = json!({"size": big.len(), "sha256": sha}).to_string();
        let mut e = event("POST", &uri, &token, Some(open.as_bytes()));
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
            offset += size;
        }
        let id = session["id"].as_str().unwrap();
        let complete = format!("{uri}/{id}/complete");
        let (status, done, completed) = lambda
            .invoke(event("POST", &complete, &token, Some(b"")))
            .await;
        assert_eq!(status, 200, "complete: {done}");
        assert_eq!(done["package_file"]["file_sha256"], json!(sha));
        (vec![opened, completed], 2, 0)
    });
    let peak_mib = function.peak_rss_mib();
    drop(function);

    report(&results, &starts, peak_mib);
}

/// The Lambda zip `make package` built: the architecture of its `bootstrap` (from the ELF
/// header), its size unzipped and the zip's size.
fn deployed_bootstrap() -> Option<(String, u64, u64)> {
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

fn report(results: &[Measured], starts: &[f64], peak_mib: f64) {
    let dynamo_ms: Vec<f64> = results
        .iter()
        .flat_map(|m| m.calls.iter().filter_map(|c| c.millis))
        .collect();
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
         over the whole run: {peak_mib:.0} MiB of the {API_MEMORY_MB:.0} MB the template \
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
    println!(
        "\nIn dollars per million operations, with AWS list prices for us-east-1 (USD; the \
         prices AWS published in 2025, which this machine cannot reach AWS to re-check): HTTP \
         API ${:.2}/M requests; Lambda ${:.2}/M requests and ${:.10}/GB-s on arm64 at \
         {API_MEMORY_MB:.0} MB; DynamoDB on-demand ${:.3}/M WRU and ${:.3}/M RRU; S3 Standard \
         ${:.3}/1,000 PUT/COPY/POST/LIST and ${:.4}/1,000 GET (DELETE free); data out to the \
         internet ${:.2}/GB. Lambda duration is the billed milliseconds measured here, which \
         include the emulators' answers: DynamoDB Local took {} ms per request, median \
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
        let gateway = per_invocation * price::HTTP_API_REQUEST;
        let lambda_requests = per_invocation * price::LAMBDA_REQUEST;
        let gb_s = |ms: f64| ms / 1000.0 * API_MEMORY_MB / 1024.0 * price::LAMBDA_ARM_GB_SECOND;
        let billed = median(&m.billed_ms());
        let duration = gb_s(billed);
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

fn human(bytes: f64) -> String {
    if bytes >= (1 << 20) as f64 {
        format!("{:.1} MiB", bytes / (1 << 20) as f64)
    } else if bytes >= 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else {
        format!("{bytes:.0} B")
    }
}
