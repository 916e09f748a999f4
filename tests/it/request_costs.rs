//! What one small publish, one download, one package-list page and one multipart handoff cost
//! on the AWS stores, in DynamoDB and S3 requests, counted by an SDK interceptor on the real
//! clients against the emulators. The exact counts are asserted so a change in cost is a
//! deliberate one.

use crate::support::dynamo::DynamoEmulator;
use crate::support::s3::S3Emulator;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use depot::admin::Admin;
use depot::domain::{FileName, NewFile, PackageName, PackageStatus, PackageVersion, Timestamp};
use depot::store::PackageStore;
use depot::store::dynamo::DynamoMetaStore;
use depot::store::s3::S3BlobStore;
use depot::{Limits, Registry, router};
use sha2::Digest;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

/// Records each request the SDK sends: the DynamoDB operation, or the S3 method.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "request-recorder"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = ctx.request();
        let what = match request.headers().get("x-amz-target") {
            Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
            // Presigning runs the same interceptors, but sends nothing.
            None if request.uri().contains("X-Amz-Signature=") => {
                format!("presigned S3 {}", request.method())
            }
            None => format!("S3 {}", request.method()),
        };
        self.0.lock().unwrap().push(what);
        Ok(())
    }
}

pub(crate) async fn send(
    router: &axum::Router,
    method: &str,
    uri: &str,
    token: &str,
    body: &[u8],
) -> u16 {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("PRIVATE-TOKEN", token)
        .body(axum::body::Body::from(body.to_vec()))
        .unwrap();
    router
        .clone()
        .oneshot(request)
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A registry on DynamoDB Local + s3s-fs whose SDK clients report every request to `recorder`.
async fn counted_registry(
    s3: &S3Emulator,
    recorder: &Recorder,
) -> (Arc<Registry>, Arc<DynamoMetaStore>) {
    let bucket = s3.bucket("depot-costs").await;
    let (dynamo_client, table) = DynamoEmulator::shared().fresh_table().await;
    let dynamo_client = aws_sdk_dynamodb::Client::from_conf(
        dynamo_client
            .config()
            .to_builder()
            .interceptor(recorder.clone())
            .build(),
    );
    let s3_client = s3.client();
    let s3_client = aws_sdk_s3::Client::from_conf(
        s3_client
            .config()
            .to_builder()
            .interceptor(recorder.clone())
            .build(),
    );
    let meta = Arc::new(DynamoMetaStore::new(dynamo_client, table));
    let registry = Arc::new(Registry::new(
        meta.clone(),
        Arc::new(S3BlobStore::new(s3_client, &bucket)),
        Limits::unlimited(),
    ));
    (registry, meta)
}

/// [`counted_registry`] with a group `g`, a project `g/p` and a developer `u` in it: the
/// registry, its store, the admin that provisioned them, the project's id and `u`'s token.
async fn counted_project(
    s3: &S3Emulator,
    recorder: &Recorder,
) -> (Arc<Registry>, Arc<DynamoMetaStore>, Admin, i64, String) {
    let (registry, meta) = counted_registry(s3, recorder).await;
    let admin = Admin::new(meta.clone());
    let (pid, token) = crate::support::provision_developer(&admin, "g", "p", "u").await;
    (registry, meta, admin, pid, token)
}

/// Publishes one 1-byte file into each of `count` packages `<prefix>-000`, ... of `pid`, a
/// millisecond apart from `first_ms` (so their created order is their number's).
async fn publish_packages(
    meta: &DynamoMetaStore,
    pid: i64,
    prefix: &str,
    count: usize,
    status: Option<PackageStatus>,
    first_ms: i64,
) {
    for i in 0..count {
        let file = NewFile {
            event: crate::support::draft(),
            project_id: pid,
            name: PackageName::parse(&format!("{prefix}-{i:03}")).unwrap(),
            version: PackageVersion::parse("1.0").unwrap(),
            status,
            file_name: FileName::parse(None, "f.bin").unwrap(),
            size: 1,
            sha256: "00".repeat(32),
            blob_key: depot::store::new_blob_key(),
            content: None,
            refuse_duplicate: false,
            now: Timestamp::from_millis(first_ms + i as i64),
            commits: None,
        };
        meta.publish(file).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_per_list_page() {
    let s3 = S3Emulator::start().await;
    let recorder = Recorder::default();
    let (registry, meta, _, pid, token) = counted_project(&s3, &recorder).await;
    publish_packages(&meta, pid, "pkg", 150, None, 1_700_000_000_000).await;
    let app = router(registry);
    let list = format!("/api/v4/projects/{pid}/packages");
    recorder.take();
    // One index Query, then the page's packages: 150 packages (about 60 KB) are one Query of
    // the project's range, which costs less than reading a page of 20 or 100 by key; a page
    // of 5 is read by key. In name order the project's range of live packages is the list
    // itself: one Query. Every request reads its token (never kept, so a revocation takes
    // effect at once); the first also writes down the token's use and reads the project and
    // memberships, which the others find in the identity cache.
    let mut first = ["GetItem", "UpdateItem", "GetItem", "Query"].to_vec();
    let cases: [(&str, &[&str]); 6] = [
        ("per_page=100", &["Query", "Query"]),
        ("per_page=100&page=2", &["Query", "Query"]),
        ("order_by=name&sort=desc&per_page=100", &["Query"]),
        ("order_by=name&per_page=5&page=3", &["Query"]),
        ("order_by=version&package_name=pkg-1", &["Query", "Query"]),
        ("per_page=5", &["Query", "BatchGetItem"]),
    ];
    for (query, page) in cases {
        let uri = format!("{list}?{query}");
        assert_eq!(send(&app, "GET", &uri, &token, b"").await, 200, "{query}");
        let requests = recorder.take();
        eprintln!(
            "list page {query}: {} requests: {requests:?}",
            requests.len()
        );
        first.extend(page.iter().copied());
        assert_eq!(requests, first, "{query}");
        first = vec!["GetItem"];
    }
}

/// The web UI's list page of a project (each row with its files' count and size) costs the
/// DynamoDB requests of the API's list page after its viewer's: the totals come with the
/// package items. Before, it read each row's files: one Query per package.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_list_page_costs_what_the_api_list_page_does() {
    let s3 = S3Emulator::start().await;
    let recorder = Recorder::default();
    let (registry, meta, _, pid, token) = counted_project(&s3, &recorder).await;
    publish_packages(&meta, pid, "pkg", 30, None, 1_700_000_000_000).await;
    let (session, _) = registry.sign_in(&token).await.unwrap();
    let app = router(registry);
    // Who is asking, looked up once (and the token's use written down).
    let warm = format!("/api/v4/projects/{pid}");
    assert_eq!(send(&app, "GET", &warm, &token, b"").await, 200);
    let web_page = |query: &str| {
        let request = axum::http::Request::builder()
            .uri(format!("/g/p/-/packages?{query}"))
            .header("Cookie", format!("depot_session={session}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
            let body = axum::body::to_bytes(response.into_body(), usize::MAX);
            String::from_utf8(body.await.unwrap().to_vec()).unwrap()
        }
    };
    // The project's path, looked up once.
    web_page("").await;
    recorder.take();
    let cases = [
        ("per_page=20", 20),
        ("per_page=20&page=2", 10),
        ("order_by=name&per_page=20", 20),
    ];
    for (query, rows) in cases {
        assert_eq!(
            send(
                &app,
                "GET",
                &format!("/api/v4/projects/{pid}/packages?{query}"),
                &token,
                b""
            )
            .await,
            200
        );
        let api = recorder.take();
        let html = web_page(query).await;
        assert_eq!(
            html.matches("<td class=\"num\">1</td>").count(),
            rows,
            "{query}"
        );
        let web = recorder.take();
        // The viewer: the session, its token (by id: the id's alias, then the token) and its
        // user; the API's request reads its token by hash.
        let (viewer, list) = web.split_at(4);
        assert_eq!(viewer, ["GetItem"; 4], "{query}: {web:?}");
        assert_eq!(list, &api[1..], "{query}: web {web:?}, api {api:?}");
    }
}

/// A project's range holds more than its index counted (here: hidden packages, which a list
/// of the default status leaves out): the range read stops at its bound, and the page's
/// packages it did not reach are read by key. The page is the same either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_list_range_cut_short_is_completed_by_key() {
    let s3 = S3Emulator::start().await;
    let recorder = Recorder::default();
    let (registry, meta, _, pid, token) = counted_project(&s3, &recorder).await;
    // Hidden packages sort first in the range (`a-…` before `z-…`).
    publish_packages(
        &meta,
        pid,
        "a",
        100,
        Some(PackageStatus::Hidden),
        1_700_000_000_000,
    )
    .await;
    publish_packages(&meta, pid, "z", 30, None, 1_800_000_000_000).await;
    let app = router(registry);
    let uri = format!("/api/v4/projects/{pid}/packages?per_page=20");
    let request = axum::http::Request::builder()
        .uri(&uri)
        .header("PRIVATE-TOKEN", &token)
        .body(axum::body::Body::empty())
        .unwrap();
    recorder.take();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-total"], "30");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> = listed.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("z-{i:03}")).collect();
    assert_eq!(names, expected);
    let requests = recorder.take();
    assert_eq!(
        requests,
        [
            "GetItem",
            "UpdateItem",
            "GetItem",
            "Query",
            "Query",
            "Query",
            "BatchGetItem"
        ],
        "who is asking (and its token's use), the index, the range (cut short), the rest by key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_per_publish_and_download() {
    let s3 = S3Emulator::start().await;
    let recorder = Recorder::default();
    let (registry, _, _, pid, token) = counted_project(&s3, &recorder).await;
    let app = router(registry);
    let url = |file: &str| format!("/api/v4/projects/{pid}/packages/generic/pkg/1.0/{file}");
    recorder.take();

    assert_eq!(
        send(&app, "PUT", &url("a.bin"), &token, &[1; 4096]).await,
        201
    );
    let first = recorder.take();
    assert_eq!(
        send(&app, "PUT", &url("b.bin"), &token, &[2; 4096]).await,
        201
    );
    let second = recorder.take();
    assert_eq!(send(&app, "GET", &url("a.bin"), &token, b"").await, 200);
    let download = recorder.take();
    assert_eq!(send(&app, "GET", &url("a.bin"), &token, b"").await, 200);
    let download_again = recorder.take();
    // Past the inline limit, the bytes are a blob of their own.
    let large = vec![3; depot::DEFAULT_INLINE_FILE_MAX as usize + 1];
    assert_eq!(send(&app, "PUT", &url("c.bin"), &token, &large).await, 201);
    let large_publish = recorder.take();
    assert_eq!(send(&app, "GET", &url("c.bin"), &token, b"").await, 200);
    let large_download = recorder.take();
    eprintln!(
        "publish, new package:      {} requests: {first:?}",
        first.len()
    );
    eprintln!(
        "publish, existing package: {} requests: {second:?}",
        second.len()
    );
    eprintln!(
        "download:                  {} requests: {download:?}",
        download.len()
    );

    // Every request reads its token. The first also writes down the token's use and reads
    // the project, memberships, the project's package protection rules (a Query, since
    // 2026-11-30) and the group's settings; later ones find those in the identity cache.
    let who = [
        "GetItem",
        "UpdateItem",
        "GetItem",
        "Query",
        "Query",
        "GetItem",
    ];
    let mut expected_first: Vec<&str> = who.to_vec();
    // The process's id slot (claimed once, then ids cost nothing), package lookup, then the
    // package's id alias, its rank entry for `latest` (since 2026-11-30), the file with its
    // bytes and the package (no transaction: duplicates are allowed). A 4 KiB file is kept
    // in its item: no S3 request.
    expected_first.extend([
        "PutItem", "GetItem", "PutItem", "PutItem", "PutItem", "PutItem",
    ]);
    assert_eq!(first, expected_first);
    // The token, package lookup, the file, then the package's file totals, on condition that
    // it is still the live one (the update replaced a read: the web UI's list page reads the
    // totals with the packages)
    assert_eq!(second, ["GetItem", "GetItem", "PutItem", "UpdateItem"]);
    // The token, package, newest file (with its bytes), last_downloaded_at with the package's
    // download count, and the file's count in its small item (since 2026-11-30; once a minute
    // per package and file, whatever the downloads in between).
    assert_eq!(
        download,
        ["GetItem", "GetItem", "Query", "UpdateItem", "UpdateItem"]
    );
    // Within a minute of the last recorded download, last_downloaded_at is not written again.
    assert_eq!(download_again, ["GetItem", "GetItem", "Query"]);
    // A larger file: the S3 PUT and GET besides.
    assert_eq!(
        large_publish,
        ["GetItem", "S3 PUT", "GetItem", "PutItem", "UpdateItem"]
    );
    assert_eq!(large_download, ["GetItem", "GetItem", "Query", "S3 GET"]);
}

/// Under the duplicate rule a publish keeps its one transaction (the name guard decides which
/// of two racing publishes wins); the reads before it look for a live file of the name.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_per_publish_under_the_duplicate_rule() {
    let s3 = S3Emulator::start().await;
    let recorder = Recorder::default();
    let (registry, _, admin, pid, token) = counted_project(&s3, &recorder).await;
    admin.set_settings("g", Some(false), None).await.unwrap();
    let app = router(registry);
    let url = |file: &str| format!("/api/v4/projects/{pid}/packages/generic/pkg/1.0/{file}");
    // Warm: who is asking, the group's settings and the id slot are read or claimed once.
    assert_eq!(send(&app, "PUT", &url("a.bin"), &token, b"a").await, 201);
    recorder.take();

    assert_eq!(send(&app, "PUT", &url("b.bin"), &token, b"b").await, 201);
    let existing = recorder.take();
    let url_new = format!("/api/v4/projects/{pid}/packages/generic/other/1.0/a.bin");
    assert_eq!(send(&app, "PUT", &url_new, &token, b"c").await, 201);
    let new = recorder.take();
    assert_eq!(send(&app, "PUT", &url("b.bin"), &token, b"d").await, 400);
    let refused = recorder.take();
    eprintln!("refusing duplicates, existing package: {existing:?}");
    eprintln!("refusing duplicates, new package: {new:?}");
    eprintln!("refusing duplicates, a duplicate: {refused:?}");

    // The token, the early check (package, its files of the name), then in the store the
    // package, its files of the name again, the name guard, and the transaction (the small
    // files' bytes in it: no S3 PUT).
    let early = ["GetItem", "GetItem", "Query"];
    let mut expected = early.to_vec();
    expected.extend(["GetItem", "Query", "GetItem", "TransactWriteItems"]);
    assert_eq!(existing, expected);
    // A new package: nothing to look for beyond the package itself.
    assert_eq!(new, ["GetItem", "GetItem", "GetItem", "TransactWriteItems"]);
    // A duplicate is refused by the early check, before any byte is stored.
    assert_eq!(refused, early);
}

/// PUT `data` to a presigned S3 request (`url` and `headers`, as an upload plan gives them);
/// the part as `complete` may tell of it (its number and the `ETag` S3 answered).
async fn put_part(request: &serde_json::Value, data: &[u8]) -> serde_json::Value {
    let mut put = reqwest::Client::new().put(request["url"].as_str().unwrap());
    for (k, v) in request["headers"].as_object().unwrap() {
        put = put.header(k, v.as_str().unwrap());
    }
    let answer = put.body(data.to_vec()).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let etag = answer.headers()["etag"].to_str().unwrap();
    serde_json::json!({"part_number": request["part_number"], "etag": etag})
}

/// A registry on `s3` whose sessions go in parts of 5 MiB, sent as one checked PUT up to
/// `single_max`; the app, the session route of `big.bin` and the developer's token.
async fn handoff_app(
    s3: &S3Emulator,
    recorder: &Recorder,
    single_max: u64,
) -> (axum::Router, String, String) {
    let (registry, meta) = counted_registry(s3, recorder).await;
    let registry = Arc::new(
        Arc::into_inner(registry)
            .unwrap()
            .with_uploads(depot::Uploads {
                part_size: 5 << 20,
                commit_inline_max: Some(128 << 20),
                single_max,
            }),
    );
    let admin = Admin::new(meta);
    let (pid, token) = crate::support::provision_developer(&admin, "g", "p", "u").await;
    let uploads = format!("/api/v4/projects/{pid}/packages/generic/pkg/1.0/big.bin/uploads");
    (router(registry), uploads, token)
}

/// Open a session declaring `declared` at `uploads`; the session as answered.
async fn open_session(
    app: &axum::Router,
    uploads: &str,
    token: &str,
    declared: serde_json::Value,
) -> serde_json::Value {
    let open = axum::http::Request::builder()
        .method("POST")
        .uri(uploads)
        .header("PRIVATE-TOKEN", token)
        .header("Content-Type", "application/json")
        .body(axum::body::Body::from(declared.to_string()))
        .unwrap();
    let opened = app.clone().oneshot(open).await.unwrap();
    assert_eq!(opened.status(), 201);
    let body = http_body_util::BodyExt::collect(opened.into_body())
        .await
        .unwrap();
    serde_json::from_slice(&body.to_bytes()).unwrap()
}

/// A multipart session that `complete` commits, telling of its parts: they are joined at the
/// blob key itself, so the commit lists nothing, copies nothing, seals nothing and looks at
/// nothing twice; the session as committed is answered without reading it, its package or its
/// file back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_per_multipart_handoff() {
    let s3 = S3Emulator::start().await;
    let recorder = Recorder::default();
    let (app, uploads, token) = handoff_app(&s3, &recorder, 0).await;
    let data: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 251) as u8).collect();
    let declared = serde_json::json!({"size": data.len()});
    let session = open_session(&app, &uploads, &token, declared).await;
    let parts = session["upload"]["parts"].as_array().unwrap();
    let sent = serde_json::json!({"parts": [
        put_part(&parts[0], &data[..5 << 20]).await,
        put_part(&parts[1], &data[5 << 20..]).await,
    ]});
    recorder.take();
    let complete = format!("{uploads}/{}/complete", session["id"].as_str().unwrap());
    let told = sent.to_string();
    assert_eq!(
        send(&app, "POST", &complete, &token, told.as_bytes()).await,
        200
    );
    let committed = recorder.take();
    eprintln!("complete: {} requests: {committed:?}", committed.len());
    assert_eq!(
        committed,
        [
            // the caller's token; the session; the claim; the join of the parts `complete`
            // told of (no listing, no HEAD: the size is the parts')
            "GetItem",
            "GetItem",
            "UpdateItem",
            "S3 POST",
            // the opener's token, still valid (by id: its hash, then the token); the bytes
            // read back and hashed at the blob key (no copy, no seal)
            "GetItem",
            "GetItem",
            "S3 GET",
            // the process's id slot (once per process), the live package, the publish that
            // settles the session; nothing read back for the answer
            "PutItem",
            "GetItem",
            "TransactWriteItems",
        ]
    );
}

/// A session declaring its SHA-256 goes as one PUT that S3 checks on arrival, straight to its
/// final key (above the part size too): the commit copies, seals and reads back nothing, and
/// takes the digest from S3's own checksum.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_per_checked_handoff() {
    let s3 = S3Emulator::start().await;
    let recorder = Recorder::default();
    let (app, uploads, token) = handoff_app(&s3, &recorder, 128 << 20).await;
    let data: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 247) as u8).collect();
    let sha = hex::encode(sha2::Sha256::digest(&data));
    let declared = serde_json::json!({"size": data.len(), "sha256": sha});
    recorder.take();
    let session = open_session(&app, &uploads, &token, declared).await;
    let opened = recorder.take();
    assert_eq!(
        opened.iter().filter(|r| r.starts_with("S3")).count(),
        0,
        "nothing is created in S3 to open it: {opened:?}"
    );
    assert!(
        opened.contains(&"presigned S3 PUT".to_string()),
        "{opened:?}"
    );
    assert!(session["upload"]["parts"].is_null(), "{session}");
    assert!(
        session["upload"]["url"]
            .as_str()
            .unwrap()
            .contains("/checked/")
    );
    put_part(&session["upload"], &data).await;
    recorder.take();
    let complete = format!("{uploads}/{}/complete", session["id"].as_str().unwrap());
    assert_eq!(send(&app, "POST", &complete, &token, b"").await, 200);
    let committed = recorder.take();
    eprintln!("complete: {} requests: {committed:?}", committed.len());
    assert_eq!(
        committed,
        [
            // the caller's token; the session; its object (arrived, whole); the claim
            "GetItem",
            "GetItem",
            "S3 HEAD",
            "UpdateItem",
            // the opener's token, still valid; the SHA-256 S3 checked on arrival (no copy,
            // no seal, no read-back)
            "GetItem",
            "GetItem",
            "S3 HEAD",
            // the process's id slot (once per process), the live package, the publish that
            // settles the session
            "PutItem",
            "GetItem",
            "TransactWriteItems",
        ]
    );
}

/// A publish by a CI job's OIDC ID token: no token item is read. The issuer's trust rules are
/// one Query, then kept with the other identity answers; the issuer's keys are fetched once
/// (discovery, then the JWKS) and then kept for their HTTP cache lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_per_oidc_publish() {
    use crate::support::oidc_issuer::OidcIssuer;
    let s3 = S3Emulator::start().await;
    let recorder = Recorder::default();
    let (registry, _, admin, pid, _) = counted_project(&s3, &recorder).await;
    let idp = OidcIssuer::start().await;
    let spec = depot::admin::TrustSpec {
        path: "g/p".into(),
        issuer: idp.issuer(),
        audience: "depot".into(),
        conditions: vec![depot::domain::ClaimCondition::parse("project_path=grp/app").unwrap()],
        role: depot::domain::Role::Developer,
        scopes: vec![depot::domain::Scope::Api],
    };
    admin.add_trust_rule(spec).await.unwrap();
    let app = router(registry);
    let token = idp.mint(idp.gitlab_claims("depot", serde_json::json!({})));
    let publish = |file: &str| {
        axum::http::Request::builder()
            .method("PUT")
            .uri(format!(
                "/api/v4/projects/{pid}/packages/generic/pkg/1.0/{file}"
            ))
            .header("JOB-TOKEN", &token)
            .body(axum::body::Body::from(vec![7u8; 4096]))
            .unwrap()
    };
    recorder.take();
    let first = app.clone().oneshot(publish("a.bin")).await.unwrap();
    assert_eq!(first.status(), 201);
    let first = recorder.take();
    let second = app.clone().oneshot(publish("b.bin")).await.unwrap();
    assert_eq!(second.status(), 201);
    let second = recorder.take();
    eprintln!("OIDC publish, first: {first:?}; then: {second:?}");
    // The issuer's rules, the project, its package protection rules, the group's settings;
    // then the publish as by a token.
    assert_eq!(
        first,
        [
            "Query", "GetItem", "Query", "GetItem", "PutItem", "GetItem", "PutItem", "PutItem",
            "PutItem", "PutItem"
        ]
    );
    // Kept: nothing about who is asking (a personal token's publish reads its token here).
    assert_eq!(second, ["GetItem", "PutItem", "UpdateItem"]);
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
}

/// What issue "lifecycle"'s reads cost on DynamoDB: a `latest` download (the literal version
/// looked up, the name's versions in one Query of their key range, then the chosen version's
/// package and newest file), a manifest (the package, then its partition: files and their
/// counts), and a checksum-checked publish (no request more than a plain one).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_per_latest_manifest_and_checked_publish() {
    let s3 = S3Emulator::start().await;
    let recorder = Recorder::default();
    let (registry, _, _, pid, token) = counted_project(&s3, &recorder).await;
    let app = router(registry);
    let url = |version: &str, file: &str| {
        format!("/api/v4/projects/{pid}/packages/generic/tool/{version}/{file}")
    };
    for version in ["1.0.0", "2.0.0", "3.0.0-rc.1"] {
        assert_eq!(
            send(&app, "PUT", &url(version, "f.bin"), &token, b"x").await,
            201
        );
    }
    // Downloads recorded (and their counts written) a moment ago: none is due again.
    assert_eq!(
        send(&app, "GET", &url("2.0.0", "f.bin"), &token, b"").await,
        200
    );
    recorder.take();
    assert_eq!(
        send(&app, "GET", &url("latest", "f.bin"), &token, b"").await,
        200
    );
    let latest = recorder.take();
    let manifest = format!("/api/v4/projects/{pid}/packages/generic/tool/2.0.0");
    assert_eq!(send(&app, "GET", &manifest, &token, b"").await, 200);
    let listed = recorder.take();
    let request = axum::http::Request::builder()
        .method("PUT")
        .uri(url("2.0.0", "g.bin"))
        .header("PRIVATE-TOKEN", &token)
        .header("X-Checksum-SHA256", sha256_hex(b"g"))
        .body(axum::body::Body::from("g"))
        .unwrap();
    assert_eq!(app.clone().oneshot(request).await.unwrap().status(), 201);
    let checked = recorder.take();
    eprintln!("latest: {latest:?}; manifest: {listed:?}; checked publish: {checked:?}");
    // The token; `latest` as a version (none); the best of the name's releases and of its
    // other versions from their rank entries (two small Queries, whatever the versions);
    // the chosen package and its newest file.
    assert_eq!(
        latest,
        ["GetItem", "GetItem", "Query", "Query", "GetItem", "Query"]
    );
    // The token; the package; its partition (files and counts).
    assert_eq!(listed, ["GetItem", "GetItem", "Query"]);
    // As any publish to an existing package.
    assert_eq!(checked, ["GetItem", "GetItem", "PutItem", "UpdateItem"]);
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}
