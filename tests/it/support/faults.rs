//! A loopback fault proxy for the AWS stores' tests: an HTTP/1.1 proxy on 127.0.0.1 in front of
//! DynamoDB Local or the in-process S3 emulator (the SDK client's endpoint is the proxy). It
//! forwards every request as it came (headers, `Host` and signature included), except those a
//! [`Plan`] picks: the Nth matching request, or the next K, gets a fault instead, spoken in the
//! service's own wire format since the SDK parses it: DynamoDB's throttling (400
//! `ProvisionedThroughputExceededException`) or S3's (503 `SlowDown`), each service's 500, a
//! timeout (the request is held past the SDK's attempt timeout, then dropped), or a dropped
//! connection, before the request is forwarded or after (the write happened, its answer is
//! lost).
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, TRANSFER_ENCODING};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which service the proxy stands in front of (each speaks its own error format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    S3,
}

/// What a picked request gets instead of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// DynamoDB: 400 `ProvisionedThroughputExceededException`; S3: 503 `SlowDown`.
    Throttle,
    /// DynamoDB: 500 `InternalServerError`; S3: 500 `InternalError`.
    ServerError,
    /// No answer: held past the client's timeout, then the connection is closed.
    Timeout,
    /// The connection is closed before the request reaches the service.
    DropBefore,
    /// The request reaches the service (and takes effect); the connection is closed before
    /// its answer is sent back.
    DropAfter,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Throttle => "throttle",
            Fault::ServerError => "500",
            Fault::Timeout => "timeout",
            Fault::DropBefore => "drop before",
            Fault::DropAfter => "drop after",
        })
    }
}

/// A request as the proxy sees it.
pub struct Seen {
    pub method: String,
    /// Path-style S3: `/<bucket>/<key>`; DynamoDB: `/`.
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    /// DynamoDB's operation (`TransactWriteItems`), from `X-Amz-Target`.
    pub fn operation(&self) -> Option<&str> {
        let target = self.headers.get("x-amz-target")?.to_str().ok()?;
        target.rsplit('.').next()
    }

    pub fn body_contains(&self, needle: &str) -> bool {
        String::from_utf8_lossy(&self.body).contains(needle)
    }
}

/// Which requests a plan is about.
pub type Matcher = Arc<dyn Fn(&Seen) -> bool + Send + Sync>;

/// DynamoDB requests of `operation` whose body contains `needle` (empty: every one).
pub fn dynamo(operation: &'static str, needle: &'static str) -> Matcher {
    Arc::new(move |s: &Seen| s.operation() == Some(operation) && s.body_contains(needle))
}

/// S3 requests with `method` on a key under `prefix` (`blobs/`), where `also` holds.
pub fn s3(method: &'static str, prefix: &'static str, also: fn(&Seen) -> bool) -> Matcher {
    Arc::new(move |s: &Seen| {
        let key = s
            .path
            .trim_start_matches('/')
            .split_once('/')
            .map(|(_, k)| k);
        s.method == method && key.is_some_and(|k| k.starts_with(prefix)) && also(s)
    })
}

/// A server-side copy (`PUT` with `x-amz-copy-source`).
pub fn is_copy(s: &Seen) -> bool {
    s.headers.contains_key("x-amz-copy-source")
}

/// Any S3 request the matcher's method and prefix pick.
pub fn any(_: &Seen) -> bool {
    true
}

/// Which matching requests get `fault`: the `skip`+1-th and the `times`-1 after it.
#[derive(Clone)]
pub struct Plan {
    pub matcher: Matcher,
    pub skip: usize,
    pub times: usize,
    pub fault: Fault,
}

#[derive(Default)]
struct Armed {
    plan: Option<Plan>,
    matched: usize,
    injected: usize,
}

pub struct FaultProxy {
    pub endpoint: String,
    armed: Arc<Mutex<Armed>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Why the proxy closed a connection without answering: a fault, or forwarding failed.
#[derive(Debug)]
struct Dropped(String);

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection dropped by the fault proxy: {}", self.0)
    }
}

impl std::error::Error for Dropped {}

fn dropped(why: impl fmt::Display) -> Dropped {
    Dropped(why.to_string())
}

struct Proxy {
    service: Service,
    upstream: String,
    hold: Duration,
    armed: Arc<Mutex<Armed>>,
}

impl FaultProxy {
    /// A proxy for `service` at `upstream` (`http://127.0.0.1:port`); a timeout holds a request
    /// for `hold` before closing its connection.
    pub async fn start(service: Service, upstream: &str, hold: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let armed = Arc::new(Mutex::new(Armed::default()));
        let proxy = Arc::new(Proxy {
            service,
            upstream: upstream.trim_start_matches("http://").to_string(),
            hold,
            armed: armed.clone(),
        });
        let server = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let proxy = proxy.clone();
                let service = hyper::service::service_fn(move |request| {
                    let proxy = proxy.clone();
                    async move { proxy.handle(request).await }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        FaultProxy {
            endpoint,
            armed,
            server,
        }
    }

    /// From now on, apply `plan` (counting its matches from zero).
    pub fn arm(&self, plan: Plan) {
        *self.armed.lock().unwrap() = Armed {
            plan: Some(plan),
            ..Armed::default()
        };
    }

    /// Faults injected since the plan was armed.
    pub fn injected(&self) -> usize {
        self.armed.lock().unwrap().injected
    }

    /// Stop injecting; returns (requests the plan matched, faults injected).
    pub fn disarm(&self) -> (usize, usize) {
        let mut armed = self.armed.lock().unwrap();
        let counts = (armed.matched, armed.injected);
        *armed = Armed::default();
        counts
    }
}

impl Proxy {
    /// The fault for `seen`, if the plan picks it.
    fn pick(&self, seen: &Seen) -> Option<Fault> {
        let mut armed = self.armed.lock().unwrap();
        let plan = armed.plan.clone()?;
        if !(plan.matcher)(seen) {
            return None;
        }
        let n = armed.matched;
        armed.matched += 1;
        let picked = n >= plan.skip && n < plan.skip + plan.times;
        armed.injected += usize::from(picked);
        picked.then_some(plan.fault)
    }

    async fn handle(&self, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
        let (head, body) = request.into_parts();
        let body = body.collect().await.map_err(dropped)?.to_bytes();
        let seen = Seen {
            method: head.method.to_string(),
            path: head.uri.path().to_string(),
            query: head.uri.query().unwrap_or_default().to_string(),
            headers: head.headers.clone(),
            body: body.clone(),
        };
        match self.pick(&seen) {
            None => self.forward(Request::from_parts(head, body)).await,
            Some(Fault::Throttle) => Ok(self.error_answer(true)),
            Some(Fault::ServerError) => Ok(self.error_answer(false)),
            Some(Fault::Timeout) => {
                tokio::time::sleep(self.hold).await;
                Err(dropped("timeout"))
            }
            Some(Fault::DropBefore) => Err(dropped("before forwarding")),
            Some(Fault::DropAfter) => {
                self.forward(Request::from_parts(head, body)).await?;
                Err(dropped("after forwarding"))
            }
        }
    }

    /// Send the request on, over a connection of its own, and bring its answer back whole.
    async fn forward(&self, request: Request<Bytes>) -> Result<Response<Full<Bytes>>, Dropped> {
        let stream = tokio::net::TcpStream::connect(&self.upstream)
            .await
            .map_err(dropped)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(dropped)?;
        tokio::spawn(connection);
        let (mut head, body) = request.into_parts();
        head.headers.remove(hyper::header::EXPECT);
        let answer = sender
            .send_request(Request::from_parts(head, Full::new(body)))
            .await
            .map_err(dropped)?;
        let (mut head, body) = answer.into_parts();
        let body = body.collect().await.map_err(dropped)?.to_bytes();
        head.headers.remove(TRANSFER_ENCODING);
        Ok(Response::from_parts(head, Full::new(body)))
    }

    /// The service's throttling (`throttle`) or internal-error answer, in its wire format.
    fn error_answer(&self, throttle: bool) -> Response<Full<Bytes>> {
        let (status, content_type, body) = match (self.service, throttle) {
            (Service::DynamoDb, true) => (
                StatusCode::BAD_REQUEST,
                "application/x-amz-json-1.0",
                dynamo_error(
                    "ProvisionedThroughputExceededException",
                    "The level of configured provisioned throughput for the table was exceeded. \
                     Consider increasing your provisioning level with the UpdateTable API.",
                ),
            ),
            (Service::DynamoDb, false) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "application/x-amz-json-1.0",
                dynamo_error("InternalServerError", "Internal server error"),
            ),
            (Service::S3, true) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "application/xml",
                s3_error("SlowDown", "Please reduce your request rate."),
            ),
            (Service::S3, false) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "application/xml",
                s3_error(
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                ),
            ),
        };
        Response::builder()
            .status(status)
            .header(CONTENT_TYPE, content_type)
            .header(
                "x-amzn-requestid",
                "FAULTPROXY0000000000000000000000000000000",
            )
            .header("x-amz-request-id", "FAULTPROXY000000")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    }
}

/// A DynamoDB error body (JSON 1.0 protocol): `__type` is the namespaced error shape.
fn dynamo_error(code: &str, message: &str) -> String {
    serde_json::json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
        "message": message,
    })
    .to_string()
}

/// An S3 error body (REST-XML protocol).
fn s3_error(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>FAULTPROXY000000</RequestId>\
         <HostId>fault-proxy</HostId></Error>"
    )
}
