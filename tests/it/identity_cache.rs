//! The identity cache, on both stores: a request whose project and memberships were read a
//! moment ago asks the store nothing more about them (its token it reads every time); a token
//! revoked by another process takes effect at once, a setting changed there within the cache's
//! lifetime, and one changed through this process at once.

use crate::request_costs::send;
use crate::support::provision_developer;
use crate::support::{Backend, TestApp};
use depot::admin::Admin;
use depot::domain::{Role, Scope};
use depot::store::fs::FsBlobStore;
use depot::store::sqlite::SqliteMetaStore;
use depot::{Limits, Registry, router};
use std::sync::Arc;
use std::time::Duration;

/// The lifetime these tests give the cache.
const TTL: Duration = Duration::from_millis(1500);

/// An app whose registry keeps identity answers for [`TTL`], with a developer `dev` of project
/// `g/p`; returns it and dev's token (id and secret).
async fn app(backend: Backend) -> (TestApp, i64, String) {
    let mut app = TestApp::start(backend).await;
    app.reconfigure(|r| r.with_identity_ttl(TTL));
    app.group("g").await;
    app.project("g/p", false).await;
    app.user("dev").await;
    app.member("dev", "g", Role::Developer).await;
    let (id, token) = app.pat("dev", &[Scope::Api], None).await;
    (app, id, token)
}

const FILE: &str = "/api/v4/projects/g%2Fp/packages/generic/pkg/1.0/f.txt";

async fn status_of_download(app: &TestApp, token: &str) -> u16 {
    app.get(FILE, &[("PRIVATE-TOKEN", token)])
        .await
        .status
        .as_u16()
}

/// `depot admin` of another process (or another function instance): its changes reach this
/// registry only through the store.
fn elsewhere(app: &TestApp) -> Admin {
    Admin::new(app.meta().clone())
}

async fn a_revocation_elsewhere_takes_effect_at_once(backend: Backend) {
    let (app, id, token) = app(backend).await;
    let put = app.put(FILE, &[("PRIVATE-TOKEN", &token)], b"hello").await;
    assert_eq!(put.status.as_u16(), 201);
    assert_eq!(status_of_download(&app, &token).await, 200);
    // Revoked by another process (another function instance): the very next request here,
    // within the cache's lifetime, is refused.
    elsewhere(&app).revoke_token(id).await.unwrap();
    assert_eq!(status_of_download(&app, &token).await, 401);
}

async fn a_revocation_through_this_process_takes_effect_at_once(backend: Backend) {
    let (app, id, token) = app(backend).await;
    let put = app.put(FILE, &[("PRIVATE-TOKEN", &token)], b"hello").await;
    assert_eq!(put.status.as_u16(), 201);
    assert_eq!(status_of_download(&app, &token).await, 200);
    app.registry.admin().revoke_token(id).await.unwrap();
    assert_eq!(status_of_download(&app, &token).await, 401);
}

async fn a_member_added_through_this_process_is_one_at_once(backend: Backend) {
    let (app, _, _) = app(backend).await;
    app.user("newcomer").await;
    let token = app.pat("newcomer", &[Scope::Api], None).await.1;
    let refused = app.put(FILE, &[("PRIVATE-TOKEN", &token)], b"x").await;
    assert_eq!(
        refused.status.as_u16(),
        404,
        "not a member yet: {}",
        refused.text()
    );
    app.member("newcomer", "g/p", Role::Developer).await;
    let put = app.put(FILE, &[("PRIVATE-TOKEN", &token)], b"x").await;
    assert_eq!(put.status.as_u16(), 201, "{}", put.text());
}

crate::on_every_backend!(
    a_revocation_elsewhere_takes_effect_at_once,
    a_revocation_through_this_process_takes_effect_at_once,
    a_member_added_through_this_process_is_one_at_once,
);

/// On the embedded store: a download whose identity answers are kept asks the store only for
/// its token and the file; with the cache off, for the project and memberships too.
#[tokio::test]
async fn a_warm_request_reads_no_identity() {
    let mut calls = Vec::new();
    for ttl in [TTL, Duration::ZERO] {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Arc::new(SqliteMetaStore::open(&dir.path().join("depot.db")).unwrap());
        let blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
        let registry =
            Registry::new(sqlite.clone(), blobs, Limits::unlimited()).with_identity_ttl(ttl);
        let (pid, token) = provision_developer(&registry.admin(), "g", "p", "u").await;
        let app = router(Arc::new(registry));
        let url = format!("/api/v4/projects/{pid}/packages/generic/pkg/1.0/f.txt");
        assert_eq!(send(&app, "PUT", &url, &token, b"hello").await, 201);
        assert_eq!(send(&app, "GET", &url, &token, b"").await, 200);
        let before = sqlite.round_trips();
        assert_eq!(send(&app, "GET", &url, &token, b"").await, 200);
        calls.push(sqlite.round_trips() - before);
    }
    // The token and the newest file; then project and memberships besides.
    assert_eq!(calls, [2, 4]);
}
