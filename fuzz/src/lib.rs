//! What the fuzz targets share: one depot app per fuzzing process, on a local store (SQLite and
//! files) in a temporary directory, holding the demo group `demo`, project `demo/app`, its
//! owner's token and two published files; one request at a time through its router; and the
//! checks every answer must pass (never a 5xx, every refusal a JSON body).

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use std::path::PathBuf;
use std::sync::OnceLock;
use tower::ServiceExt;

/// The project every seeded file lives in, as a URL names it.
pub const PROJECT: &str = "demo%2Fapp";

/// A running app: its router, the runtime that drives it and the owner's token.
pub struct App {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    /// The demo owner's personal token (`api` scope).
    pub token: String,
}

/// An answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON; panics (a finding) when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "a {} answer whose body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// What every answer must be: no server error, and a refusal that says why in JSON, or
    /// GitLab's plain `Bad Request` to a URL that is not UTF-8.
    pub fn check(&self, method: &Method) {
        assert!(
            !self.status.is_server_error(),
            "a server error: {} {:?}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        let malformed = self.status == StatusCode::BAD_REQUEST
            && self
                .headers
                .get("content-type")
                .is_some_and(|v| v == "text/plain")
            && (self.body == b"Bad Request" || method == Method::HEAD);
        if self.status.is_client_error() && method != Method::HEAD && !malformed {
            self.json();
        }
    }
}

/// The app of this process, set up on first use.
pub fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(App::start)
}

impl App {
    fn start() -> App {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = data_dir();
        let (router, token) = runtime.block_on(async {
            let meta = depot::local_meta(&dir).expect("a local store");
            let demo = depot::admin::Admin::new(meta)
                .bootstrap_demo()
                .await
                .expect("the demo data")
                .expect("an empty store");
            let limits = depot::Limits { max_file_size: 0 };
            let registry = depot::local_registry(&dir, limits).expect("a local registry");
            (depot::router(std::sync::Arc::new(registry)), demo.token)
        });
        let app = App {
            runtime,
            router,
            token,
        };
        for file in ["file.txt", "dir/sub/file.txt"] {
            let uri = format!("/api/v4/projects/{PROJECT}/packages/generic/pkg/1.0.0/{file}");
            let request = app
                .authorized(Method::PUT, &uri)
                .body(Body::from("hello, fuzzer\n"))
                .expect("a request");
            let answer = app.send(request);
            assert_eq!(answer.status, StatusCode::CREATED, "seeding {file}");
        }
        app
    }

    /// A request builder carrying the owner's token.
    pub fn authorized(&self, method: Method, uri: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("PRIVATE-TOKEN", &self.token)
    }

    /// Send `request` through the router and read the whole answer.
    pub fn send(&self, request: Request<Body>) -> Answer {
        self.runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .unwrap_or_else(|never| match never {});
            let status = response.status();
            let headers = response.headers().clone();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a readable body")
                .to_vec();
            Answer {
                status,
                headers,
                body,
            }
        })
    }
}

/// A fresh data directory for this process, under the system's temporary directory. libFuzzer
/// ends a run with `exit`, which drops nothing: the directories of processes that are gone are
/// removed here instead.
fn data_dir() -> PathBuf {
    let root = std::env::temp_dir().join("depot-fuzz");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !PathBuf::from("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = root.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a data directory");
    dir
}

/// `CGI.unescape` as GitLab's path check decodes (`+` a space, `%XX` a byte, invalid escapes
/// kept): the fuzz targets' reference decoding.
pub fn cgi_unescape(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// `%XX` decoded, invalid escapes and invalid UTF-8 kept as the replacement character.
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
