//! Checksums on upload, on both stores: a `PUT` that declares its SHA-256 (`X-Checksum-SHA256`
//! or `Content-Digest: sha-256=:…:`) is published only if its bytes match; otherwise 400 and
//! nothing stored, small files (kept in their records) and large ones (blobs) alike. Downloads
//! carry the digest, redirects included.

use crate::support::{Backend, World, sha256_hex};
use base64::Engine;

fn content_digest(data: &[u8]) -> String {
    use sha2::Digest;
    let b64 = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(data));
    format!("sha-256=:{b64}:")
}

async fn a_mismatched_checksum_stores_nothing(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let auth = ("PRIVATE-TOKEN", dev);
    let small = b"small bytes".to_vec();
    // Above the inline limit: a blob of its own, removed again.
    let large = vec![7u8; depot::DEFAULT_INLINE_FILE_MAX as usize + 10];
    let other = sha256_hex(b"other bytes");
    let other_digest = content_digest(b"other bytes");
    for (file, data) in [("small.bin", &small), ("large.bin", &large)] {
        let uri = w.url(w.private_id, &format!("pkg/1.0/{file}"));
        for header in [
            ("X-Checksum-SHA256", other.as_str()),
            ("Content-Digest", other_digest.as_str()),
        ] {
            let refused = w.app.put(&uri, &[auth, header], data).await;
            assert_eq!(refused.status.as_u16(), 400, "{file} {header:?}");
            assert_eq!(
                refused.json()["message"],
                "400 Bad request - the uploaded bytes do not match the declared SHA-256"
            );
            assert_eq!(w.app.stored_bodies().await, 0, "{file}: nothing kept");
            assert_eq!(w.app.get(&uri, &[auth]).await.status.as_u16(), 404);
        }
    }
    let listed = w
        .app
        .get(
            &format!("/api/v4/projects/{}/packages", w.private_id),
            &[auth],
        )
        .await;
    assert_eq!(listed.json(), serde_json::json!([]), "no package was made");
}

async fn a_matching_checksum_publishes(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let auth = ("PRIVATE-TOKEN", dev);
    let large = vec![9u8; depot::DEFAULT_INLINE_FILE_MAX as usize + 10];
    let upper = sha256_hex(&large).to_ascii_uppercase();
    let digest = content_digest(&large);
    let cases: [(&str, Vec<(&str, &str)>); 3] = [
        ("hex.bin", vec![("X-Checksum-SHA256", upper.as_str())]),
        ("field.bin", vec![("Content-Digest", digest.as_str())]),
        (
            "both.bin",
            vec![
                ("X-Checksum-SHA256", upper.as_str()),
                ("Content-Digest", digest.as_str()),
            ],
        ),
    ];
    for (file, headers) in cases {
        let uri = w.url(w.private_id, &format!("pkg/1.0/{file}"));
        let mut with = vec![auth];
        with.extend(headers);
        let put = w.app.put(&uri, &with, &large).await;
        assert_eq!(put.status.as_u16(), 201, "{file}: {}", put.text());
        let got = w.app.get(&uri, &[auth]).await;
        let checksum = got
            .headers
            .get("x-checksum-sha256")
            .map(|v| v.to_str().unwrap());
        assert_eq!(checksum, Some(sha256_hex(&large).as_str()), "{file}");
    }
}

async fn bad_checksum_headers_are_refused_first(backend: Backend) {
    let w = World::new(backend).await;
    let dev = w.token("developer");
    let uri = w.url(w.private_id, "pkg/1.0/f.bin");
    let good = sha256_hex(b"data");
    let other = content_digest(b"other");
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("X-Checksum-SHA256", "abc")],
            "X-Checksum-SHA256 is invalid",
        ),
        (
            &[("Content-Digest", "sha-256=:AAAA:")],
            "Content-Digest is invalid",
        ),
        (
            &[("Content-Digest", "sha-256=nocolons")],
            "Content-Digest is invalid",
        ),
        (
            &[
                ("X-Checksum-SHA256", good.as_str()),
                ("Content-Digest", other.as_str()),
            ],
            "X-Checksum-SHA256 and Content-Digest differ",
        ),
    ];
    for (headers, error) in cases {
        let mut with = vec![("PRIVATE-TOKEN", dev)];
        with.extend_from_slice(headers);
        let refused = w.app.put(&uri, &with, b"data").await;
        assert_eq!(refused.status.as_u16(), 400, "{headers:?}");
        assert_eq!(refused.json()["error"], error, "{headers:?}");
    }
    // Another algorithm alone declares nothing depot checks.
    let put = w
        .app
        .put(
            &uri,
            &[("PRIVATE-TOKEN", dev), ("Content-Digest", "sha-512=:AAAA:")],
            b"data",
        )
        .await;
    assert_eq!(put.status.as_u16(), 201);
    assert_eq!(w.app.stored_bodies().await, 1);
}

on_every_backend!(
    a_mismatched_checksum_stores_nothing,
    a_matching_checksum_publishes,
    bad_checksum_headers_are_refused_first,
);
