//! Telemetry: how depot logs. Human-readable lines on stderr for `depot`, JSON on stdout for
//! the Lambda functions (CloudWatch); both filtered by `RUST_LOG` (default `info`). Request logs
//! never carry a query string or a token (`api::log_request`); every line logged while a
//! request is served carries its `request_id`, which its answer carries as `X-Request-Id`.

/// JSON logs on stdout (CloudWatch), filtered by `RUST_LOG` (default `info`).
pub fn init_json_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .without_time()
        // The `request` span: every line of a request carries its `request_id`.
        .with_current_span(true)
        .with_span_list(false)
        .try_init();
}

/// Human-readable logs on stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// What is known of the request being served, for the records it writes (events name the
/// client's address and the request id) and its metrics (time spent waiting for the stores).
/// Set once per request by `api::log_request`.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub id: String,
    pub address: Option<String>,
    pub store: std::sync::Arc<StoreClock>,
}

/// Calls a request made to its stores (SQLite, DynamoDB, S3) and the time they took.
#[derive(Debug, Default)]
pub struct StoreClock {
    nanos: std::sync::atomic::AtomicU64,
    calls: std::sync::atomic::AtomicU64,
}

impl StoreClock {
    /// Store calls so far, and their time in all.
    pub fn read(&self) -> (u64, std::time::Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let nanos = self.nanos.load(Relaxed);
        (
            self.calls.load(Relaxed),
            std::time::Duration::from_nanos(nanos),
        )
    }
}

/// Count one store call of `took` to the request being served, if any.
pub fn store_call(took: std::time::Duration) {
    use std::sync::atomic::Ordering::Relaxed;
    let _ = REQUEST.try_with(|r| {
        r.store.calls.fetch_add(1, Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        r.store.nanos.fetch_add(nanos, Relaxed);
    });
}

tokio::task_local! {
    static REQUEST: RequestInfo;
}

/// Run `work` as the request `info`.
pub async fn serving<F: std::future::Future>(info: RequestInfo, work: F) -> F::Output {
    REQUEST.scope(info, work).await
}

/// The request being served, if any (none in `depot admin`, background tasks and tests that
/// call the registry directly).
pub fn current_request() -> Option<RequestInfo> {
    REQUEST.try_with(Clone::clone).ok()
}
