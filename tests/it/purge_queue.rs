//! The purge's queue on both stores: a file deleted on its own and then forgotten with its
//! package must not leave an entry that blocks the files queued after it. On DynamoDB such
//! entries stayed at the head of the queue, and once a pass's worth of them piled up, no file
//! deleted on its own was purged again (the soak's leak check found thousands of blobs left).

use crate::support::{Backend, TestApp};
use depot::domain::{Role, Scope, Timestamp};

async fn queued_files_behind_forgotten_ones_are_purged(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.group("g").await;
    let project = app.project("g/p", false).await;
    app.user("dev").await;
    app.member("dev", "g", Role::Maintainer).await;
    let token = app.pat("dev", &[Scope::Api], None).await.1;
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
    meta.delete_file(&a, Timestamp::now()).await.unwrap();
    meta.delete_package(&package, Timestamp::now())
        .await
        .unwrap();
    while app.registry.purge(100).await.unwrap() != Default::default() {}
    assert_eq!(app.blob_count().await, 0);
    // A file deleted on its own later, with a batch of one: a spent entry must not hold it up.
    put("second", "c.bin").await;
    put("second", "d.bin").await;
    let (_, c) = app.newest(project, "second", "1.0", "c.bin").await.unwrap();
    meta.delete_file(&c, Timestamp::now()).await.unwrap();
    for _ in 0..3 {
        app.registry.purge(1).await.unwrap();
    }
    assert_eq!(app.blob_count().await, 1, "d's blob alone is left");
}

crate::on_every_backend!(queued_files_behind_forgotten_ones_are_purged);
