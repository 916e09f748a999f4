//! Upload sessions that declare a SHA-256, on both stores. On S3 such a session is one PUT to
//! its final key (`checked/<id>`) that S3 checks against the digest as the bytes arrive: other
//! bytes are refused before they are in place, the key is written once, the commit takes the
//! digest from S3's checksum, and a session that ends without publishing seals its key. On the
//! local store the same promises hold through the staged path; each test says what it expects
//! of both.

use crate::http_uploads::{download, object_created, open, send_bytes, session};
use crate::support::{Backend, World, sha256_hex};
use crate::upload_guards::{bytes_of, spent};
use depot::wire::{UploadPlan, UploadSessionBody};
use serde_json::json;

/// Where the session's bytes land as the upload event names them.
fn event_key(backend: Backend, id: &str) -> String {
    match backend {
        Backend::Local => format!("uploads/{id}"),
        Backend::Aws => format!("checked/{id}"),
    }
}

async fn a_declared_digest_is_checked_as_the_bytes_arrive(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let file = "checked/1.0/f.bin";
    let data = bytes_of(1, 100_000);
    let declared = json!({"size": data.len(), "sha256": sha256_hex(&data)});
    let opened = open(&w, dev, file, declared).await;
    assert_eq!(opened.status, 201, "{}", opened.text());
    let typed: UploadSessionBody = opened.wire();
    let Some(UploadPlan::Single(request)) = &typed.upload else {
        panic!("one PUT: {typed:?}");
    };
    if backend == Backend::Aws {
        assert!(request.url.contains("/checked/"), "{}", request.url);
        assert!(
            request.headers.contains_key("x-amz-checksum-sha256"),
            "the digest is signed into the URL: {:?}",
            request.headers
        );
    }
    let body = opened.json();
    let id = typed.id.clone();
    // Other bytes of the same size are refused before anything is in place.
    assert_eq!(
        send_bytes(&w, &body["upload"], &bytes_of(2, data.len())).await,
        400
    );
    assert_eq!(w.app.stored_bodies().await, 0, "nothing of them was kept");
    assert_eq!(w.app.sealed_count().await, 0);
    // The declared bytes arrive once; the same URL writes nothing more.
    assert_eq!(send_bytes(&w, &body["upload"], &data).await, 200);
    assert_eq!(send_bytes(&w, &body["upload"], &data).await, spent(backend));
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let record = a.wire::<UploadSessionBody>().package_file.unwrap();
    assert_eq!(record.file_sha256, sha256_hex(&data));
    assert_eq!(record.size, data.len() as u64);
    let got = download(&w, dev, file).await;
    assert_eq!((got.status.as_u16(), &got.body), (200, &data));
    let (_, stored) = w
        .app
        .newest(w.private_id, "checked", "1.0", "f.bin")
        .await
        .unwrap();
    if backend == Backend::Aws {
        // The bytes stayed where they arrived: no copy.
        assert_eq!(stored.blob_key, format!("checked/{id}"));
    }
    assert_eq!(w.app.stored_bodies().await, 1);
    assert_eq!(
        (w.app.staged_count().await, w.app.sealed_count().await),
        (0, 1 - aws(backend))
    );
    // Still spent after the commit.
    assert_eq!(send_bytes(&w, &body["upload"], &data).await, spent(backend));
    assert_eq!(download(&w, dev, file).await.body, data);
}

/// 1 on S3 (where a committed checked upload's key is its blob, not a sealed staging key).
fn aws(backend: Backend) -> usize {
    usize::from(backend == Backend::Aws)
}

async fn a_checked_session_that_publishes_nothing_keeps_nothing(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let data = bytes_of(3, 20_000);
    let declared = json!({"size": data.len(), "sha256": sha256_hex(&data)});
    // Aborted before its bytes arrived: its URL is spent.
    let file = "ends/1.0/aborted.bin";
    let body = open(&w, dev, file, declared.clone()).await.json();
    let id = body["id"].as_str().unwrap().to_string();
    let a = session(&w, "DELETE", dev, file, &id, "").await;
    assert_eq!(a.json()["state"], "aborted");
    assert_eq!(send_bytes(&w, &body["upload"], &data).await, spent(backend));
    // Refused at commit after its bytes arrived (the group came to refuse duplicates and the
    // file was published directly meanwhile): the bytes go, and the URL stays spent.
    let file = "ends/1.0/duplicate.bin";
    let body = open(&w, dev, file, declared).await.json();
    let id = body["id"].as_str().unwrap().to_string();
    w.app
        .admin
        .set_settings("grp", Some(false), None)
        .await
        .unwrap();
    let direct = w
        .app
        .put(
            &w.url(w.private_id, file),
            &[("PRIVATE-TOKEN", dev)],
            b"first",
        )
        .await;
    assert_eq!(direct.status, 201);
    assert_eq!(send_bytes(&w, &body["upload"], &data).await, 200);
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.json()["state"], "refused", "{}", a.text());
    assert_eq!(send_bytes(&w, &body["upload"], &data).await, spent(backend));
    assert_eq!(download(&w, dev, file).await.text(), "first");
    // Only the direct publish's bytes are kept; both sessions' keys are sealed.
    assert_eq!(w.app.stored_bodies().await, 1);
    assert_eq!(w.app.staged_count().await, 0);
    assert_eq!(w.app.sealed_count().await, 2);
}

async fn the_upload_event_commits_a_checked_session_the_client_left(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let file = "left/1.0/f.bin";
    let data = bytes_of(5, 30_000);
    let declared = json!({"size": data.len(), "sha256": sha256_hex(&data)});
    let body = open(&w, dev, file, declared).await.json();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(send_bytes(&w, &body["upload"], &data).await, 200);
    // The client never calls `complete`: the store's event commits the session.
    let event = object_created(&event_key(backend, &id), data.len());
    let settled = depot::finalizer::on_s3_event(&w.app.registry, &event)
        .await
        .unwrap();
    assert_eq!(settled[0]["state"], "committed", "{settled:?}");
    assert_eq!(download(&w, dev, file).await.body, data);
    // A late `complete` and a repeated event see it committed, once.
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let record = a.wire::<UploadSessionBody>().package_file.unwrap();
    assert_eq!(record.file_sha256, sha256_hex(&data));
    let again = depot::finalizer::on_s3_event(&w.app.registry, &event)
        .await
        .unwrap();
    assert_eq!(again[0]["state"], "committed");
    assert_eq!(w.app.stored_bodies().await, 1);
}

on_every_backend!(
    a_declared_digest_is_checked_as_the_bytes_arrive,
    a_checked_session_that_publishes_nothing_keeps_nothing,
    the_upload_event_commits_a_checked_session_the_client_left,
);
