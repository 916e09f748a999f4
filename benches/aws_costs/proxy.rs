//! The bench's view of the stores: every S3 request named and classed for pricing, and a proxy
//! in front of DynamoDB Local that records each request with the capacity it costs (DynamoDB
//! Local's own figure, or `billing`'s where Local reports it wrongly).

use super::billing::{self, Index};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::any;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One request seen at a store.
#[derive(Debug, Clone)]
pub struct Call {
    pub what: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub read_units: f64,
    pub write_units: f64,
    pub s3_class: Option<S3Class>,
    /// How long the store took to answer (DynamoDB only).
    pub millis: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum S3Class {
    Put,
    Get,
    Free,
}

#[derive(Clone, Default)]
pub struct Calls(Arc<Mutex<Vec<Call>>>);

impl Calls {
    pub fn push(&self, call: Call) {
        self.0.lock().unwrap().push(call);
    }
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

pub fn content_length(headers: &axum::http::HeaderMap) -> u64 {
    headers
        .get("x-amz-decoded-content-length")
        .or_else(|| headers.get("content-length"))
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0)
}

/// Name an S3 request by what it does, and its price class.
pub fn s3_call(
    request: &axum::http::request::Parts,
    response: &axum::http::response::Parts,
) -> Call {
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
/// (DynamoDB Local reports it, and does not check signatures) and records it; transactions
/// and refused conditional writes are priced by [`billing`] instead.
pub async fn dynamo_proxy(target: String, calls: Calls) -> String {
    let app = Router::new().fallback(any(forward)).with_state(Proxy {
        target,
        calls,
        http: reqwest::Client::new(),
        indexes: Arc::default(),
    });
    serve(app).await
}

#[derive(Clone)]
pub struct Proxy {
    pub target: String,
    pub calls: Calls,
    pub http: reqwest::Client,
    /// The table's indexes, read once.
    pub indexes: Arc<tokio::sync::OnceCell<Vec<Index>>>,
}

impl Proxy {
    /// Send `operation` with `body` to DynamoDB Local with the caller's headers; the status,
    /// the answer's headers and its bytes.
    async fn send(
        &self,
        headers: &HeaderMap,
        operation: &str,
        body: Vec<u8>,
    ) -> (u16, HeaderMap, Bytes) {
        let mut out = self.http.post(&self.target).body(body);
        for (k, v) in headers {
            if k != "host" && k != "content-length" && k != "x-amz-target" {
                out = out.header(k, v);
            }
        }
        let target = format!("DynamoDB_20120810.{operation}");
        let response = out
            .header("x-amz-target", target)
            .send()
            .await
            .expect("DynamoDB Local answers");
        let status = response.status().as_u16();
        let mut back = HeaderMap::new();
        for (k, v) in response.headers() {
            if k != "content-length" && k != "transfer-encoding" && k != "x-amz-crc32" {
                back.insert(k.clone(), v.clone());
            }
        }
        (status, back, response.bytes().await.unwrap())
    }

    /// The items at `keys` of `table` now (strongly consistent; not recorded).
    async fn images(
        &self,
        headers: &HeaderMap,
        table: &str,
        keys: &[(Value, bool)],
    ) -> Vec<Option<Value>> {
        let mut images = Vec::new();
        for (key, _) in keys {
            let get = json!({"TableName": table, "Key": key, "ConsistentRead": true});
            let (_, _, bytes) = self.send(headers, "GetItem", get.to_string().into()).await;
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(json!({}));
            images.push(answer.get("Item").cloned());
        }
        images
    }

    async fn indexes(&self, headers: &HeaderMap, table: &str) -> &[Index] {
        self.indexes
            .get_or_init(|| async {
                let describe = json!({"TableName": table}).to_string().into();
                let (_, _, bytes) = self.send(headers, "DescribeTable", describe).await;
                Index::all_of(&serde_json::from_slice(&bytes).unwrap_or(json!({})))
            })
            .await
    }
}

pub async fn forward(State(p): State<Proxy>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
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
    // A transaction's items as they were, to price it as DynamoDB does.
    let transaction = (operation == "TransactWriteItems").then(|| {
        let keys = billing::transaction_keys(&request);
        let table = request["TransactItems"][0]
            .as_object()
            .and_then(|entry| entry.values().next())
            .and_then(|body| body["TableName"].as_str())
            .unwrap_or_default()
            .to_string();
        (keys, table)
    });
    let before = match &transaction {
        Some((keys, table)) => p.images(&headers, table, keys).await,
        None => Vec::new(),
    };
    let sent_at = Instant::now();
    let sent = serde_json::to_vec(&request).unwrap();
    let (status, back, bytes) = p.send(&headers, &operation, sent).await;
    let millis = Some(sent_at.elapsed().as_secs_f64() * 1000.0);
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(json!({}));
    let mut units: f64 = match &answer["ConsumedCapacity"] {
        Value::Array(all) => all.iter().filter_map(|c| c["CapacityUnits"].as_f64()).sum(),
        one => one["CapacityUnits"].as_f64().unwrap_or(0.0),
    };
    if let Some((keys, table)) = &transaction
        && status == 200
    {
        let after = p.images(&headers, table, keys).await;
        let indexes = p.indexes(&headers, table).await;
        units = billing::transaction_units(keys, &before, &after, indexes);
    }
    let refused = answer["__type"]
        .as_str()
        .is_some_and(|t| t.ends_with("ConditionalCheckFailedException"));
    if refused {
        units = billing::REFUSED_WRITE_UNITS;
    }
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

/// Serves `app` on a free loopback port, with `TCP_NODELAY` (a stand-in must not add the 40 ms
/// of Nagle against a delayed ACK to what it measures).
pub async fn serve(app: Router) -> String {
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
