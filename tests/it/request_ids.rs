//! Request ids: every answer carries `X-Request-Id` (API Gateway's when the request came
//! through it, a client's plain one, else a new one), and the request's log lines carry it.

use crate::support::captured::Captured;
use crate::support::{Backend, TestApp};

// One thread: the captured log sees every event of the request.
#[tokio::test(flavor = "current_thread")]
async fn answers_and_log_lines_carry_the_request_id() {
    let app = TestApp::start(Backend::Local).await;
    let (captured, _guard) = Captured::start();
    // A first event on this thread, so the capture is in place before the requests' (the
    // log's start; without it the first lines went uncaptured).
    tracing::info!("capture started");
    let uri = "/api/v4/projects/1/packages/generic/pkg/1.0/f.bin";
    let new = app.get(uri, &[]).await;
    let id = new.header("x-request-id").unwrap().to_string();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_ne!(
        app.get(uri, &[]).await.header("x-request-id"),
        Some(id.as_str())
    );
    let given = app.get(uri, &[("X-Request-Id", "ci-job-42.7")]).await;
    assert_eq!(given.header("x-request-id"), Some("ci-job-42.7"));
    let odd = app.get(uri, &[("X-Request-Id", "has space")]).await;
    assert_ne!(odd.header("x-request-id"), Some("has space"));
    let log = captured.text();
    let line = log
        .lines()
        .find(|l| l.contains("request_id=ci-job-42.7"))
        .unwrap_or_else(|| panic!("no line with the id: {log}"));
    assert!(line.contains("status=404"), "{line}");
}

/// Through the Lambda's event path the id is API Gateway's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_api_gateway_the_id_is_its_own() {
    use lambda_http::IntoResponse;
    use tower::ServiceExt;
    let app = TestApp::start(Backend::Local).await;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/infra/events/http-get-basic.json"
    ))
    .unwrap()
    .replace("{{BASIC}}", "");
    let request = lambda_http::request::from_str(&text).unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let response = response.into_response().await;
    assert_eq!(response.headers()["x-request-id"], "JKJaXmPLvHcESHA=");
}
