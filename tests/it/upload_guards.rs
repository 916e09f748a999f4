//! What upload sessions refuse, on both stores: staged bytes change no more once they arrived
//! (so what a commit measures is what it records), a final session's upload URLs write
//! nothing, and a session answers only its opener, only through its own file's path.

use crate::http_uploads::{download, in_parts_of_5_mib, open, send_bytes, session};
use crate::support::{Backend, World, sha256_hex};
use depot::wire::UploadSessionBody;
use serde_json::{Value, json};

/// A spent upload URL's status: depot's own URL answers 409; S3's write-once condition 412.
pub(crate) fn spent(backend: Backend) -> u16 {
    match backend {
        Backend::Local => 409,
        Backend::Aws => 412,
    }
}

pub(crate) fn bytes_of(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

async fn staged_bytes_cannot_change_once_they_arrived(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let file = "race/1.0/f.bin";
    let opened = open(&w, dev, file, json!({"size": 4096})).await;
    let body = opened.json();
    let (id, upload) = (body["id"].as_str().unwrap().to_string(), &body["upload"]);
    // Writers race each other and a committer with bytes of the same size.
    let w = &w;
    let writers = (0..6u8).map(|seed| async move {
        let data = bytes_of(seed, 4096);
        (send_bytes(w, upload, &data).await, data)
    });
    let committer = async {
        let mut last = None;
        for _ in 0..20 {
            let a = session(w, "POST", dev, file, &id, "/complete").await;
            let done = a.status != 202;
            last = Some(a);
            if done {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        last.unwrap()
    };
    let (sent, _) = futures::join!(futures::future::join_all(writers), committer);
    let accepted: Vec<&Vec<u8>> = sent
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        accepted.len(),
        1,
        "one write only: {:?}",
        sent.iter().map(|s| s.0).collect::<Vec<_>>()
    );
    for (status, _) in sent.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, spent(backend));
    }
    let a = session(w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let record = a.wire::<UploadSessionBody>().package_file.unwrap();
    let got = download(w, dev, file).await;
    assert_eq!(
        record.file_sha256,
        sha256_hex(&got.body),
        "the record is of the served bytes"
    );
    assert_eq!(
        &got.body, accepted[0],
        "the bytes that got 200 are the ones published"
    );
    assert_eq!(
        got.header("x-checksum-sha256"),
        Some(record.file_sha256.as_str())
    );
}

async fn a_final_sessions_urls_write_nothing(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let data = bytes_of(7, 1000);
    // Committed: the same URL again is refused, and nothing is staged.
    let file = "final/1.0/committed.bin";
    let body = open(&w, dev, file, json!({"size": 1000})).await.json();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(send_bytes(&w, &body["upload"], &data).await, 200);
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        send_bytes(&w, &body["upload"], &bytes_of(8, 1000)).await,
        spent(backend)
    );
    assert_eq!(download(&w, dev, file).await.body, data);
    // Aborted before any byte arrived: its URL is spent too.
    let file = "final/1.0/aborted.bin";
    let body = open(&w, dev, file, json!({"size": 1000})).await.json();
    let id = body["id"].as_str().unwrap().to_string();
    let a = session(&w, "DELETE", dev, file, &id, "").await;
    assert_eq!(a.json()["state"], "aborted");
    assert_eq!(send_bytes(&w, &body["upload"], &data).await, spent(backend));
    // Refused at commit (its opener's token was revoked): the staged bytes are dropped and
    // the URL stays spent.
    let (token_id, token) = w
        .app
        .pat("developer", &[depot::domain::Scope::Api], None)
        .await;
    let file = "final/1.0/refused.bin";
    let body = open(&w, &token, file, json!({"size": 1000})).await.json();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(send_bytes(&w, &body["upload"], &data).await, 200);
    w.app.admin.revoke_token(token_id).await.unwrap();
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.json()["state"], "refused", "{}", a.text());
    assert_eq!(send_bytes(&w, &body["upload"], &data).await, spent(backend));
    assert_eq!(download(&w, dev, file).await.status, 404);
    // Nothing was written by the refused URLs: one blob, no staged bytes, three sealed keys.
    assert_eq!(w.app.stored_bodies().await, 1);
    assert_eq!(w.app.staged_count().await, 0);
    assert_eq!(w.app.sealed_count().await, 3);
}

async fn a_final_sessions_part_urls_write_nothing(backend: Backend) {
    let w = in_parts_of_5_mib(backend).await;
    let dev = w.token("developer");
    let data = bytes_of(3, (5 << 20) + 10);
    let file = "parts/1.0/f.bin";
    let body = open(&w, dev, file, json!({"size": data.len()}))
        .await
        .json();
    let id = body["id"].as_str().unwrap().to_string();
    let parts: Vec<Value> = body["upload"]["parts"].as_array().unwrap().clone();
    assert_eq!(send_bytes(&w, &parts[0], &data[..5 << 20]).await, 200);
    assert_eq!(send_bytes(&w, &parts[1], &data[5 << 20..]).await, 200);
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.status, 200, "{}", a.text());
    // The upload id went with the commit: S3 answers NoSuchUpload (s3s-fs: AccessDenied).
    let again = send_bytes(&w, &parts[1], &data[5 << 20..]).await;
    match backend {
        Backend::Local => assert_eq!(again, 409),
        Backend::Aws => assert!(again == 404 || again == 403, "{again}"),
    }
    assert_eq!(w.app.staged_count().await, 0, "nothing was written");
    assert_eq!(download(&w, dev, file).await.body, data);
}

async fn a_session_answers_only_its_opener_through_its_own_path(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let file = "mine/1.0/f.bin";
    let body = open(&w, dev, file, json!({"size": 3})).await.json();
    let id = body["id"].as_str().unwrap().to_string();
    // Another writer of the project: as if there were no such session.
    let maintainer = w.token("maintainer");
    for (method, suffix) in [("GET", ""), ("POST", "/complete"), ("DELETE", "")] {
        let a = session(&w, method, maintainer, file, &id, suffix).await;
        assert_eq!(a.status, 404, "{method} {suffix}: {}", a.text());
        assert_eq!(a.json(), json!({"message": "404 Not found"}));
    }
    // The opener, through another file's path (name, version or file name).
    for other in [
        "yours/1.0/f.bin",
        "mine/2.0/f.bin",
        "mine/1.0/g.bin",
        "mine/1.0/d/f.bin",
    ] {
        for (method, suffix) in [("GET", ""), ("POST", "/complete"), ("DELETE", "")] {
            let a = session(&w, method, dev, other, &id, suffix).await;
            assert_eq!(a.status, 404, "{other} {method}: {}", a.text());
        }
    }
    // Still pending, untouched; the opener's user with another personal token may resume it.
    let (_, again) = w
        .app
        .pat("developer", &[depot::domain::Scope::Api], None)
        .await;
    let a = session(&w, "GET", &again, file, &id, "").await;
    assert_eq!(
        (a.status.as_u16(), a.json()["state"].clone()),
        (202, json!("pending"))
    );
    let upload = a.json()["upload"].clone();
    assert_eq!(send_bytes(&w, &upload, b"abc").await, 200);
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.status, 200, "{}", a.text());
}

on_every_backend!(
    staged_bytes_cannot_change_once_they_arrived,
    a_final_sessions_urls_write_nothing,
    a_final_sessions_part_urls_write_nothing,
    a_session_answers_only_its_opener_through_its_own_path,
);
