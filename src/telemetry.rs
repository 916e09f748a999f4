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
/// client's address and the request id). Set once per request by `api::log_request`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub id: String,
    pub address: Option<String>,
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
