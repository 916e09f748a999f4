//! API Gateway (HTTP API, payload v2) event fixtures from `infra/events/` fed through
//! `lambda_http`'s own conversion into the router, on the AWS store pair: a base64 binary PUT,
//! a path whose `%2F` arrived decoded, Basic auth, a HEAD, a publish by a CI job's OIDC ID
//! token. Binary answers go back as binary.

use crate::support::{Backend, World, basic, sha256_hex};
use depot::domain::Scope;
use lambda_http::{Body, IntoResponse};
use tower::ServiceExt;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/infra/events");

struct Tokens {
    pat: String,
    basic: String,
    job: String,
    id_token: String,
}

/// Run one fixture (with its placeholders filled) through lambda_http and the router.
async fn invoke(w: &World, fixture: &str, t: &Tokens) -> lambda_http::Response<Body> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{fixture}")).unwrap();
    let text = text
        .replace("{{TOKEN}}", &t.pat)
        .replace("{{BASIC}}", &t.basic)
        .replace("{{JOB_TOKEN}}", &t.job)
        .replace("{{ID_TOKEN}}", &t.id_token);
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
        id_token: String::new(),
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
        id_token: String::new(),
    };
    let refused = invoke(&w, "http-put-binary.json", &anonymous).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(
        json(refused.body()),
        serde_json::json!({"message": "401 Unauthorized"})
    );
}

/// A CI job's OIDC ID token publishes through the Lambda's event path, as `curl --header
/// "JOB-TOKEN: $DEPOT_ID_TOKEN" --upload-file` sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oidc_publish_through_the_function() {
    use crate::support::oidc_issuer::OidcIssuer;
    use depot::domain::{ClaimCondition, Role};
    let w = World::new(Backend::Aws).await;
    let idp = OidcIssuer::start().await;
    let spec = depot::admin::TrustSpec {
        path: "grp/app".into(),
        issuer: idp.issuer(),
        audience: "https://depot.example".into(),
        conditions: vec![ClaimCondition::parse("project_path=grp/app").unwrap()],
        role: Role::Developer,
        scopes: vec![Scope::Api],
    };
    w.app.admin.add_trust_rule(spec).await.unwrap();
    let claims = idp.gitlab_claims("https://depot.example", serde_json::json!({}));
    let t = Tokens {
        pat: String::new(),
        basic: String::new(),
        job: String::new(),
        id_token: idp.mint(claims),
    };
    let put = invoke(&w, "http-put-oidc.json", &t).await;
    assert_eq!(put.status(), 201, "{:?}", put.body());
    assert_eq!(
        json(put.body()),
        serde_json::json!({"message": "201 Created"})
    );
    let (_, file) = w
        .app
        .newest(w.private_id, "release", "2.0.0", "release.txt")
        .await
        .expect("the file was published");
    assert_eq!(file.size, 45);
    // Signed with a key the issuer never published: refused the GitLab way.
    let forged = Tokens {
        id_token: idp.mint_with(
            crate::support::oidc_issuer::KeyChoice::Unpublished,
            idp.gitlab_claims("https://depot.example", serde_json::json!({})),
        ),
        ..t
    };
    let refused = invoke(&w, "http-put-oidc.json", &forged).await;
    assert_eq!(refused.status(), 401);
}

/// The web UI through the function's event path: a page (HTML with its security headers) and
/// a hashed asset (long-lived, of its type).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ui_through_the_function() {
    let w = World::new(Backend::Aws).await;
    let none = Tokens {
        pat: String::new(),
        basic: String::new(),
        job: String::new(),
        id_token: String::new(),
    };
    let home = invoke(&w, "http-get-ui-home.json", &none).await;
    assert_eq!(home.status(), 200);
    assert!(
        home.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(home.headers().contains_key("content-security-policy"));
    let html = match home.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8(b.clone()).unwrap(),
        _ => panic!("an empty page"),
    };
    assert!(
        html.contains("grp/pub") && !html.contains("grp/app"),
        "public projects only"
    );
    let css = html
        .split("href=\"/-/assets/")
        .find(|s| s.starts_with("app."))
        .and_then(|s| s.split('"').next())
        .expect("the stylesheet's hashed name")
        .to_string();
    let text = std::fs::read_to_string(format!("{FIXTURES}/http-get-ui-asset.json"))
        .unwrap()
        .replace("{{ASSET}}", &css);
    let request = lambda_http::request::from_str(&text).expect("a valid API Gateway event");
    let asset = w.app.router.clone().oneshot(request).await.unwrap();
    let asset = asset.into_response().await;
    assert_eq!(asset.status(), 200);
    assert_eq!(asset.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
}

/// Issue "lifecycle" through the function's event path: `latest` and a manifest, and a
/// protection rule made over it that then holds a developer's publish back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn latest_manifests_and_protection_through_the_function() {
    let w = World::new(Backend::Aws).await;
    let dev = ("PRIVATE-TOKEN", w.token("developer"));
    for version in ["1.0.0", "2.0.0", "10.0.0-rc.1"] {
        let uri = w.url(w.private_id, &format!("tool/{version}/bin/tool"));
        assert_eq!(
            w.app
                .put(&uri, &[dev], version.as_bytes())
                .await
                .status
                .as_u16(),
            201
        );
    }
    let with = |token: &str| Tokens {
        pat: token.to_string(),
        basic: String::new(),
        job: String::new(),
        id_token: String::new(),
    };
    let developer = with(w.token("developer"));
    let latest = invoke(&w, "http-get-latest.json", &developer).await;
    assert_eq!(latest.status(), 200);
    assert_eq!(latest.headers()["x-package-version"], "2.0.0");
    let manifest = json(
        invoke(&w, "http-get-manifest.json", &developer)
            .await
            .body(),
    );
    assert_eq!(manifest["package_version"], "2.0.0");
    assert_eq!(manifest["files"][0]["path"], "bin/tool");
    let made = invoke(
        &w,
        "http-post-protection-rule.json",
        &with(w.token("maintainer")),
    )
    .await;
    assert_eq!(made.status(), 201, "{:?}", made.body());
    let refused = invoke(&w, "http-put-binary.json", &developer).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        json(refused.body()),
        serde_json::json!({"message": "403 Forbidden - Package protected."})
    );
}
