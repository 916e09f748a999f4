//! Stand-ins for where events go, on loopback: a webhook receiver that refuses its first
//! requests and records every one, and an EventBridge endpoint that speaks `PutEvents`
//! (AWS JSON 1.1, `X-Amz-Target: AWSEvents.PutEvents`) and records the entries it takes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Book {
    refuse: AtomicUsize,
    got: Mutex<Vec<Received>>,
}

/// A webhook receiver on loopback: it answers 500 to its first `refuse` requests, then 200.
pub struct Receiver {
    pub url: String,
    book: Arc<Book>,
    server: tokio::task::JoinHandle<()>,
}

async fn serve(router: Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (url, server)
}

impl Receiver {
    pub async fn start(refuse: usize) -> Self {
        let book = Arc::new(Book::default());
        book.refuse.store(refuse, Ordering::SeqCst);
        async fn take(
            State(book): State<Arc<Book>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let refused = book
                .refuse
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let status = if refused {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            let got = Received {
                headers,
                body,
                status: status.as_u16(),
            };
            book.got.lock().unwrap().push(got);
            status
        }
        let router = Router::new()
            .route("/hook", axum::routing::post(take))
            .with_state(book.clone());
        let (base, server) = serve(router).await;
        Self {
            url: format!("{base}/hook"),
            book,
            server,
        }
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.book.got.lock().unwrap().clone()
    }

    /// The requests answered 200.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.status == 200)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// An EventBridge endpoint on loopback: `PutEvents` only; it fails the next `fail` entries
/// (an entry-level `InternalFailure`, as EventBridge reports one) and records the others.
pub struct EventBus {
    pub url: String,
    book: Arc<Book>,
    entries: Arc<Mutex<Vec<Value>>>,
    server: tokio::task::JoinHandle<()>,
}

type BusState = (Arc<Book>, Arc<Mutex<Vec<Value>>>);

async fn put_events(
    State((book, entries)): State<BusState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    if target != Some("AWSEvents.PutEvents") {
        let body = json!({"__type": "UnknownOperationException"});
        return (StatusCode::BAD_REQUEST, body.to_string()).into_response();
    }
    let request: Value = serde_json::from_slice(&body).unwrap();
    let mut results = Vec::new();
    let mut failed = 0;
    for entry in request["Entries"].as_array().cloned().unwrap_or_default() {
        let fail = book
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            failed += 1;
            results.push(json!({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}));
        } else {
            entries.lock().unwrap().push(entry);
            results.push(json!({"EventId": depot::domain::new_event_id()}));
        }
    }
    let answer = json!({"FailedEntryCount": failed, "Entries": results});
    (
        [("content-type", "application/x-amz-json-1.1")],
        answer.to_string(),
    )
        .into_response()
}

impl EventBus {
    pub async fn start() -> Self {
        let book = Arc::new(Book::default());
        let entries = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .fallback(axum::routing::post(put_events))
            .with_state((book.clone(), entries.clone()));
        let (url, server) = serve(router).await;
        Self {
            url,
            book,
            entries,
            server,
        }
    }

    /// Fail the next `n` entries.
    pub fn fail_next(&self, n: usize) {
        self.book.refuse.store(n, Ordering::SeqCst);
    }

    /// The entries taken so far (`Source`, `DetailType`, `Detail`, `EventBusName`, `Time`).
    pub fn entries(&self) -> Vec<Value> {
        self.entries.lock().unwrap().clone()
    }

    /// depot's client of this bus.
    pub fn bus(&self) -> depot::delivery::eventbridge::Bus {
        depot::delivery::eventbridge::Bus::new(&super::sdk_config(), Some(&self.url), "depot-test")
    }
}

impl Drop for EventBus {
    fn drop(&mut self) {
        self.server.abort();
    }
}
