//! API Gateway (HTTP API, payload v2) event fixtures from `infra/events/` fed through
//! `lambda_http`'s own conversion into the router, on the AWS store pair: a base64 binary PUT,
//! a path whose `%2F` arrived decoded, Basic auth, a HEAD. Binary answers go back as binary.

use crate::support::{Backend, World, basic, sha256_hex};
use depot::domain::Scope;
use lambda_http::{Body, IntoResponse};
use tower::ServiceExt;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/infra/events");

struct Tokens {
    pat: String,
    basic: String,
    job: String,
}

/// Run one fixture (with its placeholders filled) through lambda_http and the router.
async fn invoke(w: &World, fixture: &str, t: &Tokens) -> lambda_http::Response<Body> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{fixture}")).unwrap();
    let text = text
        .replace("{{TOKEN}}", &t.pat)
        .replace("{{BASIC}}", &t.basic)
        .replace("{{JOB_TOKEN}}", &t.job);
    let request = lambda_http::request::from_str(&text).expect("a valid API Gateway event");
    let response = w.app.router.clone().oneshot(request).await.unwrap();
    response.into_response().await
}

fn json(body: &Body) -> serde_json::Value {
    match body {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        Body::Binary(b) => serde_json::from_slice(b).unwrap(),
        Body::Empty => panic!("empty body"),
        _ => panic!("unexpected body"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_gateway_events_reach_the_router() {
    let w = World::new(Backend::Aws).await;
    let (_, pat) = w.app.pat("developer", &[Scope::Api], None).await;
    let (_, job) = w
        .app
        .job_token(
            "developer",
            "grp/app",
            depot::domain::Timestamp::now().plus_seconds(600),
        )
        .await;
    let basic_pair = basic("someone", &pat);
    let t = Tokens {
        basic: basic_pair.trim_start_matches("Basic ").to_string(),
        pat,
        job,
    };
    let payload: Vec<u8> = (0..=255u8).cycle().take(1024).collect();

    // A base64-encoded binary PUT with directories and select=package_file.
    let put = invoke(&w, "http-put-binary.json", &t).await;
    assert_eq!(put.status(), 200, "{:?}", put.body());
    let record = json(put.body());
    assert_eq!(record["size"], 1024);
    assert_eq!(record["file_sha256"], sha256_hex(&payload));
    assert_eq!(record["file_name"], "linux%2Famd64%2Fpayload.bin");

    // The %2F of the project path arrived decoded; the file comes back as binary (base64).
    let get = invoke(&w, "http-get-decoded-slash.json", &t).await;
    assert_eq!(get.status(), 200);
    assert_eq!(
        get.headers()["x-checksum-sha256"],
        sha256_hex(&payload).as_str()
    );
    match get.body() {
        Body::Binary(bytes) => assert!(bytes == &payload, "bytes differ"),
        other => panic!("a binary download must be a binary body, got {other:?}"),
    }

    // HTTP Basic with the token as password, the directory through `path=`.
    let via_basic = invoke(&w, "http-get-basic.json", &t).await;
    assert_eq!(via_basic.status(), 200);
    assert!(matches!(via_basic.body(), Body::Binary(b) if b == &payload));

    // HEAD with a job token: headers, no body.
    let head = invoke(&w, "http-head.json", &t).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "1024");
    assert!(
        matches!(head.body(), Body::Empty)
            || matches!(head.body(), Body::Binary(b) if b.is_empty())
    );

    // Without the token the same event is refused the GitLab way.
    let anonymous = Tokens {
        pat: "dpat-unknown".into(),
        basic: String::new(),
        job: String::new(),
    };
    let refused = invoke(&w, "http-put-binary.json", &anonymous).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(
        json(refused.body()),
        serde_json::json!({"message": "401 Unauthorized"})
    );
}
