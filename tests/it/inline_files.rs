//! Small files kept in their metadata record: a body within the inline limit makes no blob,
//! downloads (whole, ranged, HEAD) answer its bytes from the record, deletes and the purge
//! take them with it; a body past the limit, declared or chunked, goes to a blob as before; and
//! each store returns a file's bytes with the newest file of its name.

use crate::support::{Answer, Backend, World};
use axum::body::Body;
use depot::{DEFAULT_INLINE_FILE_MAX, Limits};
use sha2::Digest;

const MAX: usize = DEFAULT_INLINE_FILE_MAX as usize;

/// Bytes that tell their own offsets apart.
fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// PUT with the body's length declared, as curl sends it.
async fn publish(w: &World, file: &str, bytes: &[u8]) {
    let url = w.url(w.private_id, &format!("pkg/1.0/{file}"));
    let len = bytes.len().to_string();
    let headers = [
        ("PRIVATE-TOKEN", w.token("developer")),
        ("Content-Length", len.as_str()),
    ];
    w.app
        .put(&url, &headers, bytes)
        .await
        .expect(201, serde_json::json!({"message": "201 Created"}));
}

/// PUT without a declared length, the body arriving in pieces of `piece` bytes.
async fn put_chunked(w: &World, url: &str, bytes: &[u8], piece: usize) -> Answer {
    let pieces: Vec<Result<bytes::Bytes, std::io::Error>> = bytes
        .chunks(piece)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let headers = [("PRIVATE-TOKEN", w.token("developer"))];
    let body = Body::from_stream(futures::stream::iter(pieces));
    w.app.send("PUT", url, &headers, body).await
}

async fn download(w: &World, file: &str, headers: &[(&str, &str)]) -> Answer {
    let url = w.url(w.private_id, &format!("pkg/1.0/{file}"));
    let mut all = vec![("PRIVATE-TOKEN", w.token("developer"))];
    all.extend_from_slice(headers);
    w.app.get(&url, &all).await
}

async fn small_files_are_kept_in_their_record(backend: Backend) {
    let w = World::new(backend).await;
    let (small, limit, past) = (body(4096), body(MAX), body(MAX + 1));
    publish(&w, "small.bin", &small).await;
    publish(&w, "limit.bin", &limit).await;
    assert_eq!(
        w.app.blob_count().await,
        0,
        "no blob for files within the limit"
    );
    publish(&w, "past.bin", &past).await;
    assert_eq!(w.app.blob_count().await, 1, "a blob for the file past it");
    assert_eq!(w.app.stored_bodies().await, 3);

    for (file, bytes) in [
        ("small.bin", &small),
        ("limit.bin", &limit),
        ("past.bin", &past),
    ] {
        let got = download(&w, file, &[]).await;
        assert_eq!(got.status.as_u16(), 200, "{file}");
        assert_eq!(&got.body[..], &bytes[..], "{file}");
        let sha = hex::encode(sha2::Sha256::digest(bytes));
        assert_eq!(got.headers["x-checksum-sha256"], sha.as_str());
    }
    let ranged = download(&w, "small.bin", &[("Range", "bytes=100-199")]).await;
    assert_eq!(ranged.status.as_u16(), 206);
    assert_eq!(&ranged.body[..], &small[100..200]);
    assert_eq!(ranged.headers["content-range"], "bytes 100-199/4096");
    let tail = download(&w, "small.bin", &[("Range", "bytes=-10")]).await;
    assert_eq!(&tail.body[..], &small[4086..]);

    // Deleted, then purged: the bytes go with the record.
    let package = w
        .app
        .meta()
        .newest_file(
            w.private_id,
            &depot::domain::PackageName::parse("pkg").unwrap(),
            &depot::domain::PackageVersion::parse("1.0").unwrap(),
            &depot::domain::FileName::parse(None, "small.bin").unwrap(),
        )
        .await
        .unwrap()
        .unwrap()
        .0;
    let url = format!("/api/v4/projects/{}/packages/{}", w.private_id, package.id);
    let deleted = w
        .app
        .send(
            "DELETE",
            &url,
            &[("PRIVATE-TOKEN", w.token("maintainer"))],
            Body::empty(),
        )
        .await;
    assert_eq!(deleted.status.as_u16(), 204, "{}", deleted.text());
    assert_eq!(download(&w, "small.bin", &[]).await.status.as_u16(), 404);
    let purged = w.app.registry.purge(100).await.unwrap();
    assert_eq!((purged.files, purged.blobs), (3, 1), "{purged:?}");
    assert_eq!(w.app.stored_bodies().await, 0);
}

/// A body sent without a length (chunked) is read up to the limit: within it, kept in the
/// record; past it, the bytes read so far and the rest go to a blob whole.
async fn chunked_bodies_are_sorted_by_what_arrives(backend: Backend) {
    let w = World::new(backend).await;
    for (file, len) in [
        ("chunked-small.bin", 1000),
        ("chunked-large.bin", 3 * MAX + 5),
    ] {
        let bytes = body(len);
        let url = w.url(w.private_id, &format!("pkg/1.0/{file}"));
        let put = put_chunked(&w, &url, &bytes, 700).await;
        assert_eq!(put.status.as_u16(), 201, "{}", put.text());
        assert_eq!(
            &download(&w, file, &[]).await.body[..],
            &bytes[..],
            "{file}"
        );
    }
    assert_eq!(
        (w.app.blob_count().await, w.app.stored_bodies().await),
        (1, 2)
    );
}

/// With the limit at 0 every file is a blob, and a size limit below the inline limit holds.
async fn the_limits_hold_for_inline_files(backend: Backend) {
    let off = World::with_limits(
        backend,
        Limits {
            inline_file_max: 0,
            ..Limits::unlimited()
        },
    )
    .await;
    publish(&off, "tiny.bin", b"tiny").await;
    assert_eq!(off.app.blob_count().await, 1);

    let w = World::with_limits(backend, Limits::at_most(100)).await;
    publish(&w, "ok.bin", &body(99)).await;
    let url = w.url(w.private_id, "pkg/1.0/big.bin");
    let refused = w
        .app
        .put(&url, &[("PRIVATE-TOKEN", w.token("developer"))], &body(100))
        .await;
    assert_eq!(refused.status.as_u16(), 400, "{}", refused.text());
    let chunked = put_chunked(&w, &url, &body(100), 30).await;
    assert_eq!(chunked.status.as_u16(), 400, "{}", chunked.text());
    assert_eq!(w.app.stored_bodies().await, 1);
}

/// The store contract: a file published with its bytes is found with them, the newest of its
/// name each time (an older duplicate's bytes once the newer one is deleted).
async fn stores_return_the_bytes_of_the_newest_file(backend: Backend) {
    use depot::domain::{FileName, NewFile, PackageName, PackageVersion, Timestamp};
    let w = World::new(backend).await;
    let meta = w.app.meta();
    assert!(meta.inline_file_max() >= DEFAULT_INLINE_FILE_MAX);
    let publish = |bytes: &'static [u8]| NewFile {
        event: crate::support::draft(),
        project_id: w.private_id,
        name: PackageName::parse("pkg").unwrap(),
        version: PackageVersion::parse("1.0").unwrap(),
        status: None,
        file_name: FileName::parse(None, "f.bin").unwrap(),
        size: bytes.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        blob_key: depot::store::new_inline_key(),
        content: Some(bytes::Bytes::from_static(bytes)),
        refuse_duplicate: false,
        now: Timestamp::now(),
        commits: None,
    };
    let newest = || async {
        meta.newest_file(
            w.private_id,
            &PackageName::parse("pkg").unwrap(),
            &PackageVersion::parse("1.0").unwrap(),
            &FileName::parse(None, "f.bin").unwrap(),
        )
        .await
        .unwrap()
        .unwrap()
        .1
    };
    let (_, older) = meta.publish(publish(b"older bytes")).await.unwrap();
    assert_eq!(older.content.as_deref(), Some(&b"older bytes"[..]));
    let (package, newer) = meta.publish(publish(b"newer")).await.unwrap();
    assert_eq!(newest().await.content.as_deref(), Some(&b"newer"[..]));
    meta.delete_file(&package, &newer, Timestamp::now(), &crate::support::ev())
        .await
        .unwrap();
    let found = newest().await;
    assert_eq!((found.id, found.size), (older.id, 11));
    assert_eq!(found.content.as_deref(), Some(&b"older bytes"[..]));
}

crate::on_every_backend!(
    stores_return_the_bytes_of_the_newest_file,
    small_files_are_kept_in_their_record,
    chunked_bodies_are_sorted_by_what_arrives,
    the_limits_hold_for_inline_files
);
