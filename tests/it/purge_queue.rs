//! The purge's queue on both stores: a file deleted on its own and then forgotten with its
//! package must not leave an entry that blocks the files queued after it. On DynamoDB such
//! entries stayed at the head of the queue, and once a pass's worth of them piled up, no file
//! deleted on its own was purged again (the soak's leak check found thousands of blobs left).

use crate::support::{Backend, TestApp};
use depot::domain::{Package, Role, Scope, Timestamp};

/// An app on `backend` with project `g/p` and a maintainer's token: (app, project id, token).
async fn app_with_maintainer(backend: Backend) -> (TestApp, i64, String) {
    let app = TestApp::start(backend).await;
    app.group("g").await;
    let project = app.project("g/p", false).await;
    app.user("dev").await;
    app.member("dev", "g", Role::Maintainer).await;
    let token = app.pat("dev", &[Scope::Api], None).await.1;
    (app, project, token)
}

async fn queued_files_behind_forgotten_ones_are_purged(backend: Backend) {
    let (app, project, token) = app_with_maintainer(backend).await;
    let put = |package: &'static str, file: &'static str| {
        let uri = format!("/api/v4/projects/{project}/packages/generic/{package}/1.0/{file}");
        let token = token.clone();
        let app = &app;
        async move {
            let a = app.put(&uri, &[("PRIVATE-TOKEN", &token)], b"bytes").await;
            assert_eq!(a.status.as_u16(), 201, "{}", a.text());
        }
    };
    put("first", "a.bin").await;
    put("first", "b.bin").await;
    let meta = app.meta();
    // File a deleted on its own, then its whole package: a's entry is spent once the package
    // is forgotten.
    let (package, a) = app.newest(project, "first", "1.0", "a.bin").await.unwrap();
    meta.delete_file(&package, &a, Timestamp::now(), &crate::support::ev())
        .await
        .unwrap();
    meta.delete_package(&package, Timestamp::now(), &crate::support::ev())
        .await
        .unwrap();
    while app.registry.purge(100).await.unwrap() != Default::default() {}
    assert_eq!(app.stored_bodies().await, 0);
    // A file deleted on its own later, with a batch of one: a spent entry must not hold it up.
    put("second", "c.bin").await;
    put("second", "d.bin").await;
    let (second, c) = app.newest(project, "second", "1.0", "c.bin").await.unwrap();
    meta.delete_file(&second, &c, Timestamp::now(), &crate::support::ev())
        .await
        .unwrap();
    for _ in 0..3 {
        app.registry.purge(1).await.unwrap();
    }
    assert_eq!(app.stored_bodies().await, 1, "d's blob alone is left");
}

/// The live package of slot `p<slot>` 1.0, found by any of its file names.
async fn live_package(app: &TestApp, project: i64, slot: u32) -> Option<Package> {
    for f in 0..3 {
        let file = format!("f{f}.bin");
        if let Some((package, _)) = app.newest(project, &format!("p{slot}"), "1.0", &file).await {
            return Some(package);
        }
    }
    None
}

/// Workers publish into four name/version slots, deleting the slots' packages as they go (so
/// each slot is recreated many times), while the purge runs with a small batch; then every
/// package is deleted and purged. No blob may be left, and the pending list must stay
/// truthful to the end.
async fn purging_alongside_publishes_and_deletes_leaves_no_blob(backend: Backend) {
    let (app, project, token) = app_with_maintainer(backend).await;
    let worker = |w: u32| {
        let (app, token) = (&app, token.clone());
        async move {
            for i in 0..30u32 {
                let (slot, file) = ((i + w) % 4, (i + w) % 3);
                let uri =
                    format!("/api/v4/projects/{project}/packages/generic/p{slot}/1.0/f{file}.bin");
                let a = app.put(&uri, &[("PRIVATE-TOKEN", &token)], b"bytes").await;
                assert_eq!(a.status.as_u16(), 201, "{}", a.text());
                if i % 3 == 2
                    && let Some(package) = live_package(app, project, (i / 3 + w) % 4).await
                {
                    // A racing worker may have deleted it first.
                    let _ = app
                        .meta()
                        .delete_package(&package, Timestamp::now(), &crate::support::ev())
                        .await;
                }
            }
        }
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    let purge = async {
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            app.registry.purge(3).await.unwrap();
        }
    };
    let work = async {
        futures::future::join_all((0..8).map(worker)).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    tokio::join!(purge, work);
    for slot in 0..4 {
        if let Some(package) = live_package(&app, project, slot).await {
            app.meta()
                .delete_package(&package, Timestamp::now(), &crate::support::ev())
                .await
                .unwrap();
        }
    }
    let pending = format!("/api/v4/projects/{project}/packages?status=pending_destruction");
    loop {
        let listed = app.get(&pending, &[("PRIVATE-TOKEN", &token)]).await;
        let purged = app.registry.purge(2).await.unwrap();
        if purged == Default::default() {
            assert_eq!(
                listed.text(),
                "[]",
                "nothing is pending once the purge is done"
            );
            break;
        }
        assert_ne!(listed.text(), "[]", "the purge still had {purged:?} to do");
    }
    assert_eq!(app.stored_bodies().await, 0);
}

crate::on_every_backend!(
    queued_files_behind_forgotten_ones_are_purged,
    purging_alongside_publishes_and_deletes_leaves_no_blob
);
