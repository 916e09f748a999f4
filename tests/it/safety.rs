//! Streaming safety and races: aborted uploads leave nothing behind, concurrent first uploads
//! create one package, and racing uploads against a refused duplicate let exactly one win.

use crate::support::Backend;

use crate::support::{TestApp, World};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serve the world's router on a loopback port; the server task stops with the runtime.
async fn serve(w: &World) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = w.app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

/// The head of a raw `PUT` of `file` declaring `length` body bytes.
fn put_head(w: &World, file: &str, length: u64) -> String {
    format!(
        "PUT /api/v4/projects/{}/packages/generic/pkg/1.0/{file} HTTP/1.1\r\nHost: x\r\n\
         PRIVATE-TOKEN: {}\r\nContent-Length: {length}\r\n\r\n",
        w.private_id,
        w.token("developer"),
    )
}

async fn file_exists(app: &TestApp, project: i64, name: &str) -> bool {
    app.newest(project, "pkg", "1.0", name).await.is_some()
}

async fn client_disconnecting_midway_leaves_no_record_and_no_blob(backend: Backend) {
    let w = World::new(backend).await;
    let addr = serve(&w).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = put_head(&w, "big.bin", 64 << 20);
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![0xA5u8; 1 << 20];
    // 12 MiB: past the first multipart part on S3.
    for _ in 0..12 {
        stream.write_all(&chunk).await.unwrap();
    }
    stream.flush().await.unwrap();
    // The upload is in flight: its temp file exists.
    wait_until("the upload has started", || async {
        w.app.temp_count().await >= 1
    })
    .await;
    drop(stream);
    wait_until("the partial upload is removed", || async {
        w.app.temp_count().await == 0
    })
    .await;
    assert_eq!(w.app.stored_bodies().await, 0);
    assert!(!file_exists(&w.app, w.private_id, "big.bin").await);
    // The package was never created either: nothing under the name downloads.
    let a = w
        .app
        .get(
            &w.url(w.private_id, "pkg/1.0/big.bin"),
            &[("PRIVATE-TOKEN", w.token("developer"))],
        )
        .await;
    assert_eq!(a.status, 404);
}

async fn body_shorter_than_content_length_is_refused_and_cleaned(backend: Backend) {
    let w = World::new(backend).await;
    let addr = serve(&w).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = put_head(&w, "short.bin", 1000);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[1u8; 10]).await.unwrap();
    // Half-close: the server sees EOF before the declared length.
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    wait_until("the partial upload is removed", || async {
        w.app.temp_count().await == 0
    })
    .await;
    assert_eq!(w.app.stored_bodies().await, 0);
    assert!(!file_exists(&w.app, w.private_id, "short.bin").await);
}

async fn concurrent_first_uploads_create_exactly_one_package(backend: Backend) {
    let w = Arc::new(World::new(backend).await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let url = w.url(w.private_id, &format!("fresh/1.0/file-{i}.bin"));
            w.app
                .put(
                    &url,
                    &[("PRIVATE-TOKEN", w.token("developer"))],
                    format!("{i}").as_bytes(),
                )
                .await
                .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let mut package_ids = std::collections::BTreeSet::new();
    for i in 0..16 {
        let (package, file) = w
            .app
            .newest(w.private_id, "fresh", "1.0", &format!("file-{i}.bin"))
            .await
            .expect("every file was recorded");
        assert_eq!(file.size, format!("{i}").len() as u64);
        package_ids.insert(package.id);
    }
    assert_eq!(
        package_ids.len(),
        1,
        "all files belong to one package: {package_ids:?}"
    );
}

async fn racing_a_refused_duplicate_lets_exactly_one_win(backend: Backend) {
    let w = Arc::new(World::new(backend).await);
    w.app
        .admin
        .set_settings("grp", Some(false), None)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let url = w.url(w.private_id, "pkg/1.0/same.bin");
            let a = w
                .app
                .put(
                    &url,
                    &[("PRIVATE-TOKEN", w.token("developer"))],
                    &vec![i as u8; 50_000],
                )
                .await;
            (a.status.as_u16(), a.text())
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            (201, _) => won += 1,
            (400, body) => assert_eq!(
                body,
                r#"{"message":"400 Bad request - Duplicate package is not allowed"}"#
            ),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(w.app.stored_bodies().await, 1, "losers' blobs are removed");
    assert_eq!(w.app.temp_count().await, 0);
}

#[tokio::test]
async fn disk_error_while_storing_leaves_nothing() {
    let w = World::new(Backend::Local).await;
    // Make the blob directory unusable: a regular file where the directory should be.
    let blobs = w.app.local_dir().join("blobs");
    std::fs::remove_dir_all(&blobs).unwrap();
    std::fs::write(&blobs, b"not a directory").unwrap();
    let url = w.url(w.private_id, "pkg/1.0/f.bin");
    let a = w
        .app
        .put(
            &url,
            &[("PRIVATE-TOKEN", w.token("developer"))],
            &[1u8; 100_000],
        )
        .await;
    a.expect(
        500,
        serde_json::json!({"message": "500 Internal Server Error"}),
    );
    assert_eq!(w.app.temp_count().await, 0, "the partial upload is removed");
    assert!(!file_exists(&w.app, w.private_id, "f.bin").await);
}

#[tokio::test]
async fn failed_metadata_commit_removes_the_blob() {
    // Both files are above the inline limit: blobs of their own.
    let w = World::new(Backend::Local).await;
    let url = w.url(w.private_id, "pkg/1.0/f.bin");
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    w.app
        .put(&url, &dev, &[1u8; 20_000])
        .await
        .expect(201, serde_json::json!({"message": "201 Created"}));
    assert_eq!(w.app.blob_count().await, 1);
    // Break the metadata store underneath the running registry: the file table disappears.
    let db = rusqlite::Connection::open(depot::config::database_path(w.app.local_dir())).unwrap();
    db.execute_batch("ALTER TABLE package_files RENAME TO package_files_away")
        .unwrap();
    let a = w
        .app
        .put(&w.url(w.private_id, "pkg/1.0/g.bin"), &dev, &[2u8; 50_000])
        .await;
    a.expect(
        500,
        serde_json::json!({"message": "500 Internal Server Error"}),
    );
    assert_eq!(
        w.app.blob_count().await,
        1,
        "the new blob was deleted after the failed commit"
    );
    assert_eq!(w.app.temp_count().await, 0);
    db.execute_batch("ALTER TABLE package_files_away RENAME TO package_files")
        .unwrap();
    assert!(!file_exists(&w.app, w.private_id, "g.bin").await);
    assert!(file_exists(&w.app, w.private_id, "f.bin").await);
}

/// Read one HTTP/1.1 answer (head and a `Content-Length` body) from `stream`: its head, or
/// `None` if the connection was closed instead.
async fn read_answer(stream: &mut TcpStream) -> Option<String> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await {
            Ok(Ok(1)) => bytes.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(head)
}

/// An upload refused before its body is read (no token here) must not leave a kept-alive
/// client with a connection the server silently drops: either the answer says
/// `Connection: close`, or the next request on the connection is answered.
async fn a_refused_upload_never_drops_a_kept_connection_silently(backend: Backend) {
    let w = World::new(backend).await;
    let addr = serve(&w).await;
    let body = vec![b'x'; 256 << 10];
    for round in 0..4 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "PUT /api/v4/projects/{}/packages/generic/pkg/1.0/r{round}.bin HTTP/1.1\r\n\
             Host: x\r\nContent-Length: {}\r\n\r\n",
            w.private_id,
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // The body may be cut short by the server's answer; what it read is its business.
        let _ = stream.write_all(&body).await;
        let refused = read_answer(&mut stream)
            .await
            .expect("an answer to the upload");
        assert!(refused.starts_with("http/1.1 401"), "{refused}");
        let next = format!(
            "GET /api/v4/projects/{}/packages/generic/pkg/1.0/none HTTP/1.1\r\nHost: x\r\n\r\n",
            w.private_id
        );
        let _ = stream.write_all(next.as_bytes()).await;
        if read_answer(&mut stream).await.is_none() {
            assert!(
                refused.contains("connection: close"),
                "round {round}: the connection was dropped without saying so:\n{refused}"
            );
        }
    }
}

on_every_backend!(
    a_refused_upload_never_drops_a_kept_connection_silently,
    client_disconnecting_midway_leaves_no_record_and_no_blob,
    body_shorter_than_content_length_is_refused_and_cleaned,
    concurrent_first_uploads_create_exactly_one_package,
    racing_a_refused_duplicate_lets_exactly_one_win,
);
