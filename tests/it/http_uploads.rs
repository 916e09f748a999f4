//! The upload handoff over HTTP, on both stores: open a session, send the bytes to the URL it
//! names (the local store's own signed URL, or a presigned S3 URL), complete it; the same
//! rules as a direct PUT at open and again at commit; refusals, aborts and expiry leave no
//! package file.

use crate::support::prerequisites::on_path;
use crate::support::{Answer, Backend, World, sha256_hex};
use depot::wire::{UploadPlan, UploadSessionBody};
use serde_json::{Value, json};

/// Open a session for `file` in the private project.
pub(crate) async fn open(w: &World, token: &str, file: &str, declared: Value) -> Answer {
    let url = format!("{}/uploads", w.url(w.private_id, file));
    w.app
        .send(
            "POST",
            &url,
            &[
                ("PRIVATE-TOKEN", token),
                ("Content-Type", "application/json"),
            ],
            declared.to_string(),
        )
        .await
}

/// A session route (`uploads/<id>` + `suffix`) of `file`.
pub(crate) async fn session(
    w: &World,
    method: &str,
    token: &str,
    file: &str,
    id: &str,
    suffix: &str,
) -> Answer {
    let url = format!("{}/uploads/{id}{suffix}", w.url(w.private_id, file));
    w.app
        .send(method, &url, &[("PRIVATE-TOKEN", token)], Vec::<u8>::new())
        .await
}

/// `GET` the file `file` of the private project with `token`.
pub(crate) async fn download(w: &World, token: &str, file: &str) -> Answer {
    w.app
        .get(&w.url(w.private_id, file), &[("PRIVATE-TOKEN", token)])
        .await
}

/// Send `data` as the upload instruction says: through the router for the local store's
/// own URLs, with curl to S3. The HTTP status.
pub(crate) async fn send_bytes(w: &World, upload: &Value, data: &[u8]) -> u16 {
    let url = upload["url"].as_str().unwrap();
    let headers: Vec<(String, String)> = upload["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    if let Some(path) = url.strip_prefix("http://localhost") {
        assert!(path.starts_with("/-/blob/"), "{url}");
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        return w
            .app
            .send("PUT", path, &headers, data.to_vec())
            .await
            .status
            .as_u16();
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, data).unwrap();
    let mut curl = on_path("curl");
    curl.args([
        "-s",
        "--max-time",
        "60",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "PUT",
    ]);
    // curl sends the body's real length (a signed Content-Length that differs is refused).
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
    {
        curl.arg("-H").arg(format!("{k}: {v}"));
    }
    let out = curl
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).parse().unwrap()
}

async fn a_session_commits_once_with_the_file_record(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let sha = sha256_hex(&data);
    let file = "big/1.0/data.bin";
    let opened = open(&w, dev, file, json!({"size": data.len(), "sha256": sha})).await;
    assert_eq!(opened.status, 201, "{}", opened.text());
    let body = opened.json();
    let typed: UploadSessionBody = opened.wire();
    assert!(
        matches!(typed.upload, Some(UploadPlan::Single(_))),
        "{typed:?}"
    );
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(body["state"], "pending");
    assert_eq!(body["size"], data.len());
    assert_eq!(body["upload"]["method"], "PUT");
    // Nothing sent yet: pending (202), and not downloadable.
    let a = session(&w, "GET", dev, file, &id, "").await;
    assert_eq!(
        (a.status.as_u16(), a.json()["state"].clone()),
        (202, json!("pending"))
    );
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.status, 202, "{}", a.text());
    assert_eq!(download(&w, dev, file).await.status, 404);

    assert_eq!(send_bytes(&w, &body["upload"], &data).await, 200);
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let committed: UploadSessionBody = a.wire();
    assert_eq!(committed.state, "committed");
    let record = committed
        .package_file
        .clone()
        .expect("a committed session's file");
    assert_eq!(record.file_sha256, sha);
    assert_eq!(record.size, data.len() as u64);
    assert_eq!(record.file_name, "data.bin");
    // Idempotent: the same answer again, and one file only.
    let again = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.wire::<UploadSessionBody>().package_file, Some(record));
    let got = download(&w, dev, file).await;
    assert_eq!(
        (got.status.as_u16(), got.body.as_slice()),
        (200, data.as_slice())
    );
    assert_eq!(w.app.stored_bodies().await, 1);
    assert_eq!(w.app.staged_count().await, 0, "the staged bytes are gone");
    // Aborting a committed session changes nothing.
    let a = session(&w, "DELETE", dev, file, &id, "").await;
    assert_eq!(a.json()["state"], "committed");
    assert_eq!(download(&w, dev, file).await.status, 200);
}

async fn a_session_is_checked_like_a_direct_put(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    // Auth and roles.
    let a = open(&w, w.token("reporter"), "p/1.0/f.bin", json!({"size": 3})).await;
    assert_eq!(a.status, 403, "{}", a.text());
    let a = open(&w, w.token("stranger"), "p/1.0/f.bin", json!({"size": 3})).await;
    assert_eq!(a.status, 404, "{}", a.text());
    // Validation of the coordinates and of the declaration.
    let a = open(&w, dev, "p/1.0/bad%20name.bin", json!({"size": 3})).await;
    assert_eq!(a.status, 400, "{}", a.text());
    let a = open(&w, dev, "p/1.0/f.bin", json!({"sha256": "zz"})).await;
    a.expect(
        400,
        json!({"error": "size is missing or invalid, sha256 is invalid"}),
    );
    let a = open(&w, dev, "p/1.0/f.bin", json!({"size": 3, "status": "nope"})).await;
    assert_eq!(a.status, 400, "{}", a.text());
    // The size limit.
    let a = open(&w, dev, "p/1.0/f.bin", json!({"size": 6u64 << 30})).await;
    a.expect(
        400,
        json!({"message": "400 Bad request - File is too large"}),
    );
    // Another project's session is not found through this one.
    let opened = open(&w, dev, "p/1.0/f.bin", json!({"size": 3})).await;
    let id = opened.json()["id"].as_str().unwrap().to_string();
    let url = format!("{}/uploads/{id}", w.url(w.public_id, "p/1.0/f.bin"));
    let a = w.app.get(&url, &[("PRIVATE-TOKEN", dev)]).await;
    assert_eq!(a.status, 404);
    assert_eq!(
        session(&w, "GET", dev, "p/1.0/f.bin", &"0".repeat(32), "")
            .await
            .status,
        404
    );
    assert_eq!(w.app.stored_bodies().await, 0);
}

async fn wrong_bytes_are_refused_and_leave_nothing(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let file = "p/1.0/f.bin";
    let declared = b"the declared bytes";
    let opened = open(
        &w,
        dev,
        file,
        json!({"size": declared.len(), "sha256": sha256_hex(declared)}),
    )
    .await;
    let body = opened.json();
    let id = body["id"].as_str().unwrap().to_string();
    // Same size, other bytes: the store refuses them (the SHA-256 is bound into the URL).
    let status = send_bytes(&w, &body["upload"], b"other bytes, same!").await;
    assert_eq!(status, 400);
    // A wrong size is refused too.
    let status = send_bytes(&w, &body["upload"], b"short").await;
    assert!(status == 400 || status == 403, "{status}");
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(download(&w, dev, file).await.status, 404);
    // Nothing of the refused bytes was kept: the session still waits.
    assert_eq!(
        (a.status.as_u16(), a.json()["state"].clone()),
        (202, json!("pending"))
    );
    assert_eq!(w.app.staged_count().await, 0);
    // The right bytes still go through.
    assert_eq!(send_bytes(&w, &body["upload"], declared).await, 200);
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(w.app.stored_bodies().await, 1);
}

async fn a_duplicate_is_refused_at_commit_when_the_setting_changed(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let file = "lib/2.0/lib.tar";
    // Duplicates are allowed when the session opens...
    let opened = open(&w, dev, file, json!({"size": 4})).await;
    assert_eq!(opened.status, 201);
    let body = opened.json();
    let id = body["id"].as_str().unwrap().to_string();
    // ...then the group refuses them and the same file is published directly.
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
            b"1st!",
        )
        .await;
    assert_eq!(direct.status, 201);
    assert_eq!(send_bytes(&w, &body["upload"], b"2nd!").await, 200);
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.json()["state"], "refused");
    assert_eq!(
        a.json()["message"],
        "400 Bad request - Duplicate package is not allowed"
    );
    // The refusal is final, and reads the same later.
    let later = session(&w, "GET", dev, file, &id, "").await;
    assert_eq!((later.status, later.json()), (a.status, a.json()));
    let got = download(&w, dev, file).await;
    assert_eq!(got.text(), "1st!");
    assert_eq!(w.app.stored_bodies().await, 1, "the refused bytes are gone");
    assert_eq!(w.app.staged_count().await, 0);
    // And a session opened now is refused at once.
    let a = open(&w, dev, file, json!({"size": 4})).await;
    a.expect(
        400,
        json!({"message": "400 Bad request - Duplicate package is not allowed"}),
    );
}

async fn an_abandoned_session_leaves_no_package_file(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let file = "p/1.0/f.bin";
    let opened = open(&w, dev, file, json!({"size": 5})).await;
    let body = opened.json();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(send_bytes(&w, &body["upload"], b"bytes").await, 200);
    let a = session(&w, "DELETE", dev, file, &id, "").await;
    assert_eq!(
        (a.status.as_u16(), a.json()["state"].clone()),
        (200, json!("aborted"))
    );
    // Aborted is final: complete does not bring it back, the URL's bytes are gone.
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.json()["state"], "aborted");
    assert_eq!(download(&w, dev, file).await.status, 404);
    assert_eq!(w.app.stored_bodies().await, 0);
    assert_eq!(w.app.staged_count().await, 0);
    let listed = w
        .app
        .get(
            &format!("/api/v4/projects/{}/packages", w.private_id),
            &[("PRIVATE-TOKEN", dev)],
        )
        .await;
    assert_eq!(listed.json(), json!([]));
}

async fn a_revoked_opener_cannot_commit(backend: Backend) {
    let w = World::new(backend).await;
    let (token_id, token) = w
        .app
        .pat("developer", &[depot::domain::Scope::Api], None)
        .await;
    let file = "p/1.0/f.bin";
    let opened = open(&w, &token, file, json!({"size": 5})).await;
    let body = opened.json();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(send_bytes(&w, &body["upload"], b"bytes").await, 200);
    w.app.admin.revoke_token(token_id).await.unwrap();
    // The same user completes it with another token, but the bytes were sent on the revoked
    // token's authority.
    let (_, other) = w
        .app
        .pat("developer", &[depot::domain::Scope::Api], None)
        .await;
    let a = session(&w, "POST", &other, file, &id, "/complete").await;
    assert_eq!(a.status, 401, "{}", a.text());
    assert_eq!(a.json()["state"], "refused");
    assert_eq!(w.app.stored_bodies().await, 0);
    assert_eq!(w.app.staged_count().await, 0);
}

/// A world whose sessions go in parts of 5 MiB (S3's smallest) and always commit inline.
pub(crate) async fn in_parts_of_5_mib(backend: Backend) -> World {
    let mut w = World::new(backend).await;
    w.app.reconfigure(|r| {
        r.with_uploads(depot::Uploads {
            part_size: 5 << 20,
            commit_inline_max: None,
            single_max: 0,
        })
    });
    w
}

async fn a_large_session_goes_in_parts_and_resumes(backend: Backend) {
    let w = in_parts_of_5_mib(backend).await;
    let dev = w.token("developer");
    let data: Vec<u8> = (0..(10u32 << 20) + 5).map(|i| (i % 253) as u8).collect();
    let file = "big/2.0/data.bin";
    let opened = open(&w, dev, file, json!({"size": data.len()})).await;
    assert_eq!(opened.status, 201, "{}", opened.text());
    let body = opened.json();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(body["part_size"], 5 << 20);
    let parts = body["upload"]["parts"].as_array().unwrap().clone();
    let numbers: Vec<(u64, u64)> = parts
        .iter()
        .map(|p| {
            (
                p["part_number"].as_u64().unwrap(),
                p["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(numbers, vec![(1, 5 << 20), (2, 5 << 20), (3, 5)]);
    let chunk = |n: usize| &data[(n - 1) * (5 << 20)..(n * (5 << 20)).min(data.len())];
    // Parts 3 and 1 arrive; then the client stops.
    for n in [3, 1] {
        assert_eq!(send_bytes(&w, &parts[n - 1], chunk(n)).await, 200);
    }
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.status, 202, "{}", a.text());
    // Resuming: the session lists what arrived and offers fresh URLs for the rest only.
    let a = session(&w, "GET", dev, file, &id, "").await;
    let shown = a.json();
    let received: Vec<u64> = shown["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["part_number"].as_u64().unwrap())
        .collect();
    assert_eq!(received, vec![1, 3]);
    let missing = shown["upload"]["parts"].as_array().unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["part_number"], 2);
    assert_eq!(send_bytes(&w, &missing[0], chunk(2)).await, 200);
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["package_file"]["file_sha256"], sha256_hex(&data));
    let got = download(&w, dev, file).await;
    assert!(got.body == data, "the download is byte-identical");
    assert_eq!(w.app.staged_count().await, 0);
    assert_eq!(w.app.temp_count().await, 0);

    // An abandoned multipart session leaves no parts and no file.
    let other = "big/2.0/other.bin";
    let opened = open(&w, dev, other, json!({"size": data.len()})).await;
    let body = opened.json();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(
        send_bytes(&w, &body["upload"]["parts"][0], chunk(1)).await,
        200
    );
    let a = session(&w, "DELETE", dev, other, &id, "").await;
    assert_eq!(a.json()["state"], "aborted");
    assert_eq!(download(&w, dev, other).await.status, 404);
    assert_eq!(w.app.staged_count().await, 0);
    assert_eq!(w.app.temp_count().await, 0);
    assert_eq!(w.app.stored_bodies().await, 1);
}

/// An S3 `ObjectCreated:Put` notification for `key`, as S3 sends it.
pub(crate) fn object_created(key: &str, size: usize) -> depot::finalizer::S3Event {
    serde_json::from_value(json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-24T12:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "uploads",
            "bucket": {"name": "depot-test", "arn": "arn:aws:s3:::depot-test"},
            "object": {"key": key, "size": size, "sequencer": "0055AED6DCD90281E5"}
        }
    }]}))
    .unwrap()
}

async fn the_finalizer_and_complete_race_and_commit_once(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let rounds = 8;
    let mut sessions = Vec::new();
    for i in 0..rounds {
        let file = format!("race/1.0/f{i}.bin");
        let data = format!("bytes of file {i}").into_bytes();
        let opened = open(&w, dev, &file, json!({"size": data.len()})).await;
        let body = opened.json();
        assert_eq!(send_bytes(&w, &body["upload"], &data).await, 200);
        sessions.push((file, body["id"].as_str().unwrap().to_string(), data));
    }
    for (file, id, data) in &sessions {
        let event = object_created(&format!("uploads/{id}"), data.len());
        // The event on another worker thread, the client's complete on this one.
        let registry = w.app.registry.clone();
        let finalizer =
            tokio::spawn(async move { depot::finalizer::on_s3_event(&registry, &event).await });
        let by_client = session(&w, "POST", dev, file, id, "/complete").await;
        let by_event = finalizer.await.unwrap().unwrap();
        let event = object_created(&format!("uploads/{id}"), data.len());
        // Whoever lost saw the winner at work (committing) or done (committed).
        assert!(
            ["committed", "committing"].contains(&by_event[0]["state"].as_str().unwrap()),
            "{by_event:?}"
        );
        assert!(
            [200, 202].contains(&by_client.status.as_u16()),
            "{}",
            by_client.text()
        );
        let shown = session(&w, "GET", dev, file, id, "").await;
        assert_eq!(shown.status, 200, "{}", shown.text());
        assert_eq!(shown.json()["state"], "committed");
        // A late duplicate event changes nothing.
        let again = depot::finalizer::on_s3_event(&w.app.registry, &event)
            .await
            .unwrap();
        assert_eq!(again[0]["state"], "committed");
        let got = download(&w, dev, file).await;
        assert_eq!(&got.body, data);
    }
    // Exactly one file per session.
    let files = w
        .app
        .get(
            &format!(
                "/api/v4/projects/{}/packages?package_name=race",
                w.private_id
            ),
            &[("PRIVATE-TOKEN", dev)],
        )
        .await
        .json();
    let package_id = files[0]["id"].as_i64().unwrap();
    let listed = w
        .app
        .get(
            &format!(
                "/api/v4/projects/{}/packages/{package_id}/package_files?per_page=100",
                w.private_id
            ),
            &[("PRIVATE-TOKEN", dev)],
        )
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), rounds);
    assert_eq!(w.app.stored_bodies().await, rounds);
    assert_eq!(w.app.staged_count().await, 0);
    // Objects that are not staged uploads, and uploads of no session, are skipped.
    let stray = depot::finalizer::on_s3_event(&w.app.registry, &object_created("blobs/x", 1))
        .await
        .unwrap();
    assert_eq!(stray[0]["skipped"], true);
    let unknown = object_created(&format!("uploads/{}", "a".repeat(32)), 1);
    let unknown = depot::finalizer::on_s3_event(&w.app.registry, &unknown)
        .await
        .unwrap();
    assert_eq!(unknown[0]["skipped"], true);
}

async fn files_too_large_to_hash_in_a_request_are_committed_by_the_event(backend: Backend) {
    let mut w = World::new(backend).await;
    w.app.reconfigure(|r| {
        r.with_uploads(depot::Uploads {
            part_size: 5 << 20,
            commit_inline_max: Some(1 << 20),
            single_max: 0,
        })
    });
    let dev = w.token("developer");
    let data: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 241) as u8).collect();
    let file = "huge/1.0/huge.bin";
    let opened = open(&w, dev, file, json!({"size": data.len()})).await;
    let body = opened.json();
    let id = body["id"].as_str().unwrap().to_string();
    let parts = body["upload"]["parts"].as_array().unwrap();
    assert_eq!(send_bytes(&w, &parts[0], &data[..5 << 20]).await, 200);
    assert_eq!(send_bytes(&w, &parts[1], &data[5 << 20..]).await, 200);
    // complete joins the parts but leaves hashing and publishing to the finalizer.
    let a = session(&w, "POST", dev, file, &id, "/complete").await;
    assert_eq!(a.status, 202, "{}", a.text());
    assert_eq!(
        a.json()["parts"],
        json!([{"part_number": 1, "size": data.len()}])
    );
    assert!(a.json().get("upload").is_none(), "nothing more to send");
    assert_eq!(w.app.staged_count().await, 1);
    assert_eq!(download(&w, dev, file).await.status, 404);
    // Asking again is harmless.
    assert_eq!(
        session(&w, "POST", dev, file, &id, "/complete")
            .await
            .status,
        202
    );
    // The object-created event of the joined object commits it.
    let event = object_created(&format!("uploads/{id}"), data.len());
    let by_event = depot::finalizer::on_s3_event(&w.app.registry, &event)
        .await
        .unwrap();
    assert_eq!(by_event[0]["state"], "committed");
    let a = session(&w, "GET", dev, file, &id, "").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["package_file"]["file_sha256"], sha256_hex(&data));
    let got = download(&w, dev, file).await;
    assert!(got.body == data);
    assert_eq!(w.app.staged_count().await, 0);
}

on_every_backend!(
    files_too_large_to_hash_in_a_request_are_committed_by_the_event,
    the_finalizer_and_complete_race_and_commit_once,
    a_large_session_goes_in_parts_and_resumes,
    a_session_commits_once_with_the_file_record,
    a_session_is_checked_like_a_direct_put,
    wrong_bytes_are_refused_and_leave_nothing,
    a_duplicate_is_refused_at_commit_when_the_setting_changed,
    an_abandoned_session_leaves_no_package_file,
    a_revoked_opener_cannot_commit,
);
