//! The Lambda side of the bench: a Runtime API served on loopback, the release `lambda-api`
//! polling it, and API Gateway events sent through it.

use super::proxy::serve;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// An event for the function and where to send its answer.
pub struct Invocation {
    pub id: String,
    pub event: Value,
    pub answer: oneshot::Sender<(Value, Duration)>,
}

/// An invocation handed out: where its answer goes, and when it was handed out.
type Waiting = (oneshot::Sender<(Value, Duration)>, Instant);

/// The Lambda Runtime API, as far as a function uses it: `next` hands out queued invocations,
/// `response` completes them; the first `next` marks the end of the function's init.
#[derive(Clone)]
pub struct Runtime {
    pub queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Invocation>>>,
    pub waiting: Arc<Mutex<HashMap<String, Waiting>>>,
    pub ready: Arc<Mutex<Option<oneshot::Sender<Instant>>>>,
}

pub async fn runtime_api() -> (String, mpsc::Sender<Invocation>, oneshot::Receiver<Instant>) {
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

pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A release function binary (`lambda-api`, `lambda-finalize`), running against the runtime
/// at `runtime` and the emulators.
pub struct Function {
    pub child: std::process::Child,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    pub fn spawn(runtime: &str, env: &[(&str, String)]) -> Self {
        Self::spawn_binary("lambda-api", "ApiFunction", runtime, env)
    }

    /// The release `binary`, deployed as the template's `resource` (its memory setting).
    pub fn spawn_binary(
        binary: &str,
        resource: &str,
        runtime: &str,
        env: &[(&str, String)],
    ) -> Self {
        let binary = format!("{}/target/release/{binary}", env!("CARGO_MANIFEST_DIR"));
        let mut command = std::process::Command::new(&binary);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", runtime)
            .env("AWS_LAMBDA_FUNCTION_NAME", "depot-api")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                super::memory_mb(resource).to_string(),
            )
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

    /// Time the process has spent on a CPU so far (all its threads), ms: from each task's
    /// `schedstat`, in nanoseconds (the tick-based `utime` is too coarse for one request).
    pub fn cpu_ms(&self) -> f64 {
        let tasks = format!("/proc/{}/task", self.child.id());
        let ns: u64 = std::fs::read_dir(tasks)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        ns as f64 / 1e6
    }

    /// Peak RSS of the process so far, MiB.
    pub fn peak_rss_mib(&self) -> f64 {
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
pub fn event(method: &str, path_and_query: &str, token: &str, body: Option<&[u8]>) -> Value {
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

pub struct Lambda {
    pub queue: mpsc::Sender<Invocation>,
    pub count: u64,
}

impl Lambda {
    /// Invoke with `event`; the function's answer (status, parsed JSON body if any) and the
    /// handler's duration.
    pub async fn invoke(&mut self, event: Value) -> (u16, Value, Duration) {
        let (response, took) = self.invoke_raw(event).await;
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

    /// Invoke with `event`; the function's response as it is, and the handler's duration.
    pub async fn invoke_raw(&mut self, event: Value) -> (Value, Duration) {
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
        tokio::time::timeout(Duration::from_secs(60), answered)
            .await
            .expect("the function answers within 60 s")
            .unwrap()
    }
}
