//! `make bench`: how fast the web UI renders a project's package list of 100 packages on the
//! local store, in process (no network: the router is called directly), against the API's
//! list of the same page; and the weight of the UI's assets. Prints Markdown.
//!
//! Run by `make bench` (`cargo bench --bench ui_render`); under `cargo test` it only says so.

use axum::body::Body;
use axum::http::Request;
use depot::admin::{Admin, TokenSpec};
use depot::domain::{Role, Scope};
use depot::{Limits, local_registry, router};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const PACKAGES: usize = 100;
const RUNS: usize = 300;

async fn send(app: &axum::Router, request: Request<Body>) -> (u16, usize, Vec<String>) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, body.len(), cookies)
}

/// Median, 95th percentile and maximum of `times`, in milliseconds.
fn spread(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| ms(times[((times.len() - 1) as f64 * q) as usize]);
    (at(0.5), at(0.95), ms(*times.last().unwrap()))
}

/// A session cookie for `token` (signing in through the form).
async fn sign_in(app: &axum::Router, token: &str) -> String {
    let form = Request::get("/-/sign_in").body(Body::empty()).unwrap();
    let (_, _, cookies) = send(app, form).await;
    let csrf = cookies[0]
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    let post = Request::post("/-/sign_in")
        .header("cookie", format!("depot_sign_in={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={token}&csrf={csrf}")))
        .unwrap();
    let (status, _, cookies) = send(app, post).await;
    assert_eq!(status, 303, "signed in");
    cookies
        .iter()
        .find(|c| c.starts_with("depot_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

async fn timed(app: &axum::Router, uri: &str, header: (&str, &str)) -> (Vec<Duration>, usize) {
    let mut times = Vec::with_capacity(RUNS);
    let mut bytes = 0;
    for i in 0..RUNS + 20 {
        let request = Request::get(uri)
            .header(header.0, header.1)
            .body(Body::empty())
            .unwrap();
        let started = Instant::now();
        let (status, size, _) = send(app, request).await;
        let took = started.elapsed();
        assert_eq!(status, 200, "{uri}");
        bytes = size;
        if i >= 20 {
            times.push(took);
        }
    }
    (times, bytes)
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("ui_render is a benchmark: `make bench` runs it (cargo bench --bench ui_render)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(local_registry(dir.path(), Limits::unlimited()).unwrap());
    let admin: Admin = registry.admin();
    admin.create_group("g").await.unwrap();
    admin.create_project("g/app", false).await.unwrap();
    admin.create_user("u").await.unwrap();
    admin.add_member("u", "g", Role::Maintainer).await.unwrap();
    let spec = TokenSpec::Personal {
        user: "u".into(),
        scopes: vec![Scope::Api],
        expires_at: None,
    };
    let token = admin.create_token(spec).await.unwrap().secret;
    let app = router(registry.clone());
    for i in 0..PACKAGES {
        let uri = format!("/api/v4/projects/g%2Fapp/packages/generic/pkg-{i:03}/1.0.{i}/file.bin");
        let put = Request::put(uri)
            .header("private-token", &token)
            .body(Body::from(vec![7u8; 4096]))
            .unwrap();
        assert_eq!(send(&app, put).await.0, 201);
    }
    let cookie = sign_in(&app, &token).await;
    let (ui, ui_bytes) = timed(&app, "/g/app/-/packages?per_page=100", ("cookie", &cookie)).await;
    let (api, api_bytes) = timed(
        &app,
        "/api/v4/projects/g%2Fapp/packages?per_page=100",
        ("private-token", &token),
    )
    .await;
    let (ui_med, ui_p95, ui_max) = spread(ui);
    let (api_med, api_p95, api_max) = spread(api);
    println!(
        "In process on the local store (SQLite + files), release build, {PACKAGES} packages of one 4 KiB file each, {RUNS} requests each after 20 warm-up requests; the router called directly (no network, no TLS). Times are median / 95th percentile / maximum."
    );
    println!();
    println!("| page | ms | bytes |");
    println!("|---|---|---|");
    println!(
        "| UI: project packages, 100 per page (signed in) | {ui_med:.2} / {ui_p95:.2} / {ui_max:.2} | {ui_bytes} |"
    );
    println!(
        "| API: `GET /projects/:id/packages?per_page=100` | {api_med:.2} / {api_p95:.2} / {api_max:.2} | {api_bytes} |"
    );
    println!();
    println!(
        "The UI's CSS, JavaScript and icon: {} bytes in all (uncompressed), served under content-hashed names with a year's cache.",
        depot::ui::asset_bytes()
    );
}
