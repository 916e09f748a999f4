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
