//! Upstream GitLab job tokens, on both store pairs: a `CI_JOB_TOKEN` depot does not know is
//! asked of a loopback stand-in for GitLab's `GET /api/v4/job` (its documented answer: the
//! job entity, or 401 for a token that is unknown or whose job finished), mapped to a depot
//! project, and kept for the configured time.

use crate::support::{Backend, TestApp};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use depot::auth::upstream::{ProjectMapping, UpstreamConfig};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// GitLab's `/api/v4/job` for the jobs it knows: token → (job id, project id, project path).
#[derive(Default)]
struct FakeGitlab {
    jobs: Mutex<HashMap<String, (i64, i64, String)>>,
    asked: AtomicUsize,
    down: std::sync::atomic::AtomicBool,
}

async fn job(State(gitlab): State<Arc<FakeGitlab>>, headers: HeaderMap) -> Response {
    gitlab.asked.fetch_add(1, Ordering::SeqCst);
    if gitlab.down.load(Ordering::SeqCst) {
        return (StatusCode::BAD_GATEWAY, "502 Bad Gateway").into_response();
    }
    let token = headers
        .get("job-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some((id, project_id, path)) = gitlab.jobs.lock().unwrap().get(token).cloned() else {
        let body = json!({"message": "401 Unauthorized"});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    };
    let base = "http://gitlab.invalid";
    Json(json!({
        "id": id, "status": "running", "stage": "deploy", "name": "publish",
        "ref": "main", "tag": false, "coverage": null, "allow_failure": false,
        "created_at": "2026-11-30T10:00:00.000Z", "started_at": "2026-11-30T10:00:05.000Z",
        "finished_at": null, "erased_at": null, "duration": 12.5, "queued_duration": 0.4,
        "user": {"id": 1, "username": "alice", "name": "Alice", "state": "active"},
        "pipeline": {"id": 6, "iid": 2, "project_id": project_id, "sha": "abc", "ref": "main",
                     "status": "running", "source": "push",
                     "created_at": "2026-11-30T10:00:00.000Z",
                     "updated_at": "2026-11-30T10:00:00.000Z",
                     "web_url": format!("{base}/{path}/-/pipelines/6")},
        "web_url": format!("{base}/{path}/-/jobs/{id}"),
        "project": {"ci_job_token_scope_enabled": false},
        "artifacts": [], "runner": null, "tag_list": [], "archived": false
    }))
    .into_response()
}

/// The stand-in on a loopback port, and its URL.
async fn fake_gitlab() -> (Arc<FakeGitlab>, String) {
    let gitlab = Arc::new(FakeGitlab::default());
    let app = axum::Router::new()
        .route("/api/v4/job", get(job))
        .with_state(gitlab.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (gitlab, url)
}

const FILE: &str = "/api/v4/projects/g%2Fapp/packages/generic/tool/1.0.0/tool.bin";

/// Depot projects `g/app` and `g/other`; GitLab project 20 (`team/app`) maps to `g/app`, and
/// `team/lib` (by path) to `g/other` as maintainer. Confirmed jobs are kept for `cache`.
async fn setup(backend: Backend, cache: Duration) -> (TestApp, Arc<FakeGitlab>) {
    let mut app = TestApp::start(backend).await;
    app.group("g").await;
    app.project("g/app", false).await;
    app.project("g/other", false).await;
    let (gitlab, url) = fake_gitlab().await;
    let config = UpstreamConfig {
        url: "http://gitlab.invalid".into(),
        projects: ProjectMapping::parse_list("20=g/app,team/lib=g/other:maintainer").unwrap(),
        cache_ttl: cache,
    };
    // The jobs' web_url names the GitLab's public URL; depot asks it where it listens.
    let config = UpstreamConfig { url, ..config };
    app.reconfigure(|r| r.with_upstream(Some(config)));
    let mut jobs = gitlab.jobs.lock().unwrap();
    jobs.insert("glcbt-app".into(), (101, 20, "team/app".into()));
    jobs.insert("glcbt-lib".into(), (102, 21, "team/lib".into()));
    jobs.insert("glcbt-stray".into(), (103, 99, "team/stray".into()));
    drop(jobs);
    (app, gitlab)
}

async fn publish(app: &TestApp, token: &str, uri: &str) -> u16 {
    let answer = app.put(uri, &[("JOB-TOKEN", token)], b"job bytes").await;
    answer.status.as_u16()
}

async fn a_gitlab_job_publishes_with_its_own_token(backend: Backend) {
    let (app, gitlab) = setup(backend, Duration::from_secs(30)).await;
    assert_eq!(publish(&app, "glcbt-app", FILE).await, 201);
    let query = format!("{FILE}?job_token=glcbt-app");
    assert_eq!(app.get(&query, &[]).await.status.as_u16(), 200);
    for _ in 0..5 {
        assert_eq!(
            app.get(FILE, &[("JOB-TOKEN", "glcbt-app")])
                .await
                .status
                .as_u16(),
            200
        );
    }
    // Asked once: the answer is kept for the configured time.
    assert_eq!(gitlab.asked.load(Ordering::SeqCst), 1);
    // Only where its project maps, with the mapped role.
    let other = FILE.replace("g%2Fapp", "g%2Fother");
    assert_eq!(publish(&app, "glcbt-app", &other).await, 404);
    assert_eq!(publish(&app, "glcbt-lib", &other).await, 201);
    assert_eq!(publish(&app, "glcbt-stray", FILE).await, 403);
    // An unknown token is refused, and the refusal kept too (a client retrying it costs GitLab
    // one call); depot's own secrets are never sent to GitLab.
    assert_eq!(publish(&app, "glcbt-nobody", FILE).await, 401);
    assert_eq!(publish(&app, "glcbt-nobody", FILE).await, 401);
    assert_eq!(publish(&app, "dpat-0123456789abcdef", FILE).await, 401);
    assert_eq!(gitlab.asked.load(Ordering::SeqCst), 4);
}

async fn a_finished_jobs_token_is_refused(backend: Backend) {
    let (app, gitlab) = setup(backend, Duration::ZERO).await;
    assert_eq!(publish(&app, "glcbt-app", FILE).await, 201);
    // The job finished: GitLab now answers 401 for its token.
    gitlab.jobs.lock().unwrap().remove("glcbt-app");
    let second = FILE.replace("tool.bin", "again.bin");
    assert_eq!(publish(&app, "glcbt-app", &second).await, 401);
    // GitLab unreachable: the client is told to try again, not that its token is bad.
    gitlab.down.store(true, Ordering::SeqCst);
    let answer = app.put(&second, &[("JOB-TOKEN", "glcbt-lib")], b"x").await;
    assert_eq!(answer.status.as_u16(), 503);
    assert_eq!(answer.header("retry-after"), Some("2"));
}

/// GitLab's documented CI job, with only `CI_API_V4_URL` pointed at depot: the job names its
/// GitLab project (`$CI_PROJECT_ID`, or `$CI_PROJECT_PATH`), which is the depot project it maps
/// to.
async fn the_seed_ci_job_works_with_only_the_api_url_changed(backend: Backend) {
    let (app, _) = setup(backend, Duration::from_secs(30)).await;
    let by_id = "/api/v4/projects/20/packages/generic/my_package/0.0.1/file.txt";
    assert_eq!(publish(&app, "glcbt-app", by_id).await, 201);
    let mapped = "/api/v4/projects/g%2Fapp/packages/generic/my_package/0.0.1/file.txt";
    let got = app.get(mapped, &[("JOB-TOKEN", "glcbt-app")]).await;
    assert_eq!(
        (got.status.as_u16(), got.body.as_slice()),
        (200, &b"job bytes"[..])
    );
    let by_path = "/api/v4/projects/team%2Flib/packages/generic/lib/1.0/lib.txt";
    assert_eq!(publish(&app, "glcbt-lib", by_path).await, 201);
    let other = "/api/v4/projects/g%2Fother/packages/generic/lib/1.0/lib.txt";
    let got = app.get(other, &[("JOB-TOKEN", "glcbt-lib")]).await;
    assert_eq!(got.status.as_u16(), 200);
    // Another GitLab project's id means nothing to this job.
    let elsewhere = "/api/v4/projects/21/packages/generic/my_package/0.0.1/file.txt";
    assert_eq!(publish(&app, "glcbt-app", elsewhere).await, 404);
}

on_every_backend!(
    the_seed_ci_job_works_with_only_the_api_url_changed,
    a_gitlab_job_publishes_with_its_own_token,
    a_finished_jobs_token_is_refused,
);
