//! One `BlobStore` conformance suite, run against every backend: the local directory store and
//! S3 (s3s-fs, in-process, checking SigV4). Same cases, same assertions.

use crate::support::backends::Subject as _;
use crate::support::s3::S3Emulator;
use crate::support::sha256_hex;
use bytes::Bytes;
use depot::store::fs::{FsBlobStore, count_files};
use depot::store::s3::S3BlobStore;
use depot::store::{Accept, BlobStore, ByteStream, StoreError, new_blob_key};
use futures::{StreamExt, TryStreamExt};
use std::sync::Arc;

/// A store under test, with a way to count what it holds (finished or not).
struct Subject {
    store: Arc<dyn BlobStore>,
    backend: Backend,
}

enum Backend {
    Fs(tempfile::TempDir),
    S3 {
        emulator: S3Emulator,
        bucket: String,
    },
}

impl crate::support::backends::Subject for Subject {
    async fn local() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FsBlobStore::open(dir.path()).unwrap());
        Self {
            store,
            backend: Backend::Fs(dir),
        }
    }

    async fn aws() -> Self {
        let emulator = S3Emulator::start().await;
        let bucket = emulator.bucket("depot-test").await;
        // The smallest part size S3 allows, so multipart paths run with small test data.
        let store = Arc::new(S3BlobStore::new(emulator.client(), &bucket).with_part_size(5 << 20));
        Self {
            store,
            backend: Backend::S3 { emulator, bucket },
        }
    }
}

impl Subject {
    /// Every object, temp file or unfinished multipart part the backend holds.
    async fn everything_stored(&self) -> usize {
        match &self.backend {
            Backend::Fs(dir) => count_files(dir.path()),
            Backend::S3 { emulator, bucket } => {
                emulator.keys(bucket).await.len() + emulator.unfinished_parts()
            }
        }
    }
}

fn body_of(data: Vec<u8>, chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

fn random(len: usize) -> Vec<u8> {
    (0..len).map(|_| rand::random::<u8>()).collect()
}

async fn collect(stream: ByteStream) -> Vec<u8> {
    stream
        .try_fold(Vec::new(), |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await
        .unwrap()
}

async fn read_all(
    store: &dyn BlobStore,
    key: &str,
    range: Option<std::ops::Range<u64>>,
) -> Vec<u8> {
    let body = store.get(key, range).await.unwrap();
    collect(body.stream).await
}

async fn round_trip(s: Subject) {
    let key = new_blob_key();
    let stored = s
        .store
        .put(&key, body_of(b"hello blob".to_vec(), 3), &Accept::any())
        .await
        .unwrap();
    assert_eq!(stored.size, 10);
    assert_eq!(stored.sha256, sha256_hex(b"hello blob"));
    assert_eq!(s.store.head(&key).await.unwrap(), 10);
    let body = s.store.get(&key, None).await.unwrap();
    assert_eq!((body.total_size, body.range.clone()), (10, 0..10));
    assert_eq!(collect(body.stream).await, b"hello blob");
    assert_eq!(s.everything_stored().await, 1);
}

async fn empty_blob(s: Subject) {
    let key = new_blob_key();
    let stored = s
        .store
        .put(&key, body_of(Vec::new(), 1), &Accept::any())
        .await
        .unwrap();
    assert_eq!(stored.size, 0);
    assert_eq!(
        stored.sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(s.store.head(&key).await.unwrap(), 0);
    assert!(read_all(s.store.as_ref(), &key, None).await.is_empty());
}

async fn large_blob_in_many_chunks(s: Subject) {
    // 12 MiB + a bit: three parts on S3 at a 5 MiB part size.
    let data = random((12 << 20) + 12345);
    let key = new_blob_key();
    let stored = s
        .store
        .put(&key, body_of(data.clone(), 64 << 10), &Accept::any())
        .await
        .unwrap();
    assert_eq!(stored.size, data.len() as u64);
    assert_eq!(stored.sha256, sha256_hex(&data));
    assert_eq!(s.store.head(&key).await.unwrap(), data.len() as u64);
    assert!(
        read_all(s.store.as_ref(), &key, None).await == data,
        "bytes differ"
    );
    assert_eq!(s.everything_stored().await, 1, "no parts left behind");
}

async fn ranges(s: Subject) {
    let key = new_blob_key();
    s.store
        .put(&key, body_of(b"0123456789".to_vec(), 4), &Accept::any())
        .await
        .unwrap();
    let body = s.store.get(&key, Some(2..6)).await.unwrap();
    assert_eq!((body.total_size, body.range.clone()), (10, 2..6));
    assert_eq!(collect(body.stream).await, b"2345");
    assert_eq!(read_all(s.store.as_ref(), &key, Some(9..10)).await, b"9");
}

async fn missing_blobs(s: Subject) {
    let key = new_blob_key();
    assert!(matches!(
        s.store.get(&key, None).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.store.head(&key).await,
        Err(StoreError::NotFound { .. })
    ));
    s.store
        .delete(&key)
        .await
        .expect("deleting a missing blob is fine");
}

async fn delete_removes(s: Subject) {
    let key = new_blob_key();
    s.store
        .put(&key, body_of(b"x".to_vec(), 1), &Accept::any())
        .await
        .unwrap();
    s.store.delete(&key).await.unwrap();
    assert!(matches!(
        s.store.head(&key).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.everything_stored().await, 0);
}

async fn too_large_leaves_nothing(s: Subject) {
    let key = new_blob_key();
    let r = s
        .store
        .put(&key, body_of(vec![1; 20], 7), &Accept::at_most(10))
        .await;
    assert!(matches!(r, Err(StoreError::TooLarge)), "{r:?}");
    // Exactly at the limit is fine.
    let ok = new_blob_key();
    assert_eq!(
        s.store
            .put(&ok, body_of(vec![1; 10], 7), &Accept::at_most(10))
            .await
            .unwrap()
            .size,
        10
    );
    // Over the limit after several parts were already sent.
    let big = new_blob_key();
    let r = s
        .store
        .put(
            &big,
            body_of(random(12 << 20), 1 << 20),
            &Accept::at_most(11 << 20),
        )
        .await;
    assert!(matches!(r, Err(StoreError::TooLarge)), "{r:?}");
    assert!(matches!(
        s.store.head(&key).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.store.head(&big).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        s.everything_stored().await,
        1,
        "only the blob within the limit"
    );
}

async fn failing_body_leaves_nothing(s: Subject) {
    for size_before_failure in [100, 7 << 20] {
        let key = new_blob_key();
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from(vec![1u8; size_before_failure])),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "client went away",
            )),
        ];
        let r = s
            .store
            .put(&key, futures::stream::iter(chunks).boxed(), &Accept::any())
            .await;
        assert!(matches!(r, Err(StoreError::BodyFailed(_))), "{r:?}");
        assert!(matches!(
            s.store.head(&key).await,
            Err(StoreError::NotFound { .. })
        ));
    }
    assert_eq!(s.everything_stored().await, 0);
}

const STAGED: &str = "uploads/0123456789abcdef0123456789abcdef";

async fn promote_copies_and_seal_closes_the_staged_object(s: Subject) {
    let data = random(3000);
    s.store
        .put(STAGED, body_of(data.clone(), 1000), &Accept::any())
        .await
        .unwrap();
    let key = new_blob_key();
    s.store.promote(STAGED, &key).await.unwrap();
    assert_eq!(read_all(s.store.as_ref(), &key, None).await, data);
    assert_eq!(read_all(s.store.as_ref(), STAGED, None).await, data);
    // Sealed: empty, and its write-once URL can write nothing more.
    s.store.seal(STAGED).await.unwrap();
    assert_eq!(s.store.head(STAGED).await.unwrap(), 0);
    let again = s
        .store
        .put(STAGED, body_of(random(10), 5), &Accept::any())
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{again:?}"
    );
    assert_eq!(read_all(s.store.as_ref(), &key, None).await, data);
    // Nothing staged: NotFound, and nothing appears at the target.
    let other = new_blob_key();
    let missing = "uploads/ffff456789abcdef0123456789abcdef";
    let r = s.store.promote(missing, &other).await;
    assert!(matches!(r, Err(StoreError::NotFound { .. })), "{r:?}");
    assert!(matches!(
        s.store.head(&other).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn staged_objects_are_written_once(s: Subject) {
    let first = random(2000);
    s.store
        .put(STAGED, body_of(first.clone(), 700), &Accept::any())
        .await
        .unwrap();
    let second = s
        .store
        .put(STAGED, body_of(random(2000), 700), &Accept::any())
        .await;
    assert!(
        matches!(second, Err(StoreError::AlreadyExists { .. })),
        "{second:?}"
    );
    assert_eq!(read_all(s.store.as_ref(), STAGED, None).await, first);
    assert_eq!(
        s.everything_stored().await,
        1,
        "the refused bytes are not kept"
    );
}

async fn declared_size_and_digest_are_checked_before_anything_is_in_place(s: Subject) {
    use depot::store::Declared;
    let data = random(4000);
    let digest = sha256_hex(&data);
    for (accept, declared) in [
        (Accept::exactly(4001, None), Declared::Size),
        (
            Accept::exactly(4000, Some(sha256_hex(b"other"))),
            Declared::Sha256,
        ),
    ] {
        let r = s
            .store
            .put(STAGED, body_of(data.clone(), 999), &accept)
            .await;
        assert!(
            matches!(r, Err(StoreError::NotAsDeclared(d)) if d == declared),
            "{r:?}"
        );
        assert!(
            s.store.head(STAGED).await.is_err(),
            "refused bytes were placed"
        );
    }
    assert_eq!(s.everything_stored().await, 0);
    // The key is still free for the right bytes.
    let stored = s
        .store
        .put(
            STAGED,
            body_of(data.clone(), 999),
            &Accept::exactly(4000, Some(digest.clone())),
        )
        .await
        .unwrap();
    assert_eq!((stored.size, stored.sha256), (4000, digest));
}

on_every_backend!(
    round_trip,
    empty_blob,
    large_blob_in_many_chunks,
    ranges,
    missing_blobs,
    delete_removes,
    too_large_leaves_nothing,
    failing_body_leaves_nothing,
    promote_copies_and_seal_closes_the_staged_object,
    staged_objects_are_written_once,
    declared_size_and_digest_are_checked_before_anything_is_in_place,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_emulator_checks_signatures() {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
    let emulator = S3Emulator::start().await;
    let bucket = emulator.bucket("signed").await;
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            crate::support::s3::ACCESS_KEY,
            "wrong-secret",
            None,
            None,
            "test",
        )))
        .build();
    let forged = S3BlobStore::new(
        S3BlobStore::client_from(&sdk, Some(&emulator.endpoint), &Default::default()),
        &bucket,
    );
    let r = forged
        .put(&new_blob_key(), body_of(b"x".to_vec(), 1), &Accept::any())
        .await;
    assert!(
        matches!(r, Err(StoreError::Backend(_))),
        "a bad signature must be refused: {r:?}"
    );
    assert!(emulator.keys(&bucket).await.is_empty());
}

/// `curl` a presigned request; returns (status, body).
fn curl(
    method: &str,
    presigned: &depot::store::Presigned,
    upload: Option<&std::path::Path>,
) -> (String, Vec<u8>) {
    let mut cmd = crate::support::prerequisites::on_path("curl");
    cmd.args([
        "-s",
        "--max-time",
        "60",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ]);
    // curl sends the real length of what it uploads: a signed Content-Length that differs
    // is the store's to refuse (sending it as a header would leave the store waiting).
    for (k, v) in presigned
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
    {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    if let Some(file) = upload {
        cmd.arg("--upload-file").arg(file);
    }
    let out = cmd.arg(&presigned.url).output().unwrap();
    let split = out.stdout.iter().rposition(|&b| b == b'\n').unwrap();
    (
        String::from_utf8_lossy(&out.stdout[split + 1..]).into_owned(),
        out.stdout[..split].to_vec(),
    )
}

/// A finished upload is unknown (S3: `NoSuchUpload`; s3s-fs lists it as empty).
async fn assert_no_parts(store: &dyn BlobStore, key: &str, upload_id: &str) {
    match store.multipart().unwrap().list_parts(key, upload_id).await {
        Err(StoreError::NotFound { .. }) => {}
        Ok(parts) => assert!(parts.is_empty(), "{parts:?}"),
        Err(e) => panic!("{e:?}"),
    }
}

/// A multipart upload whose parts arrive by presigned URL (`absolute` makes a URL callable):
/// parts listed as they arrive, a part of the wrong size refused, the whole joined in order;
/// an aborted upload leaves nothing.
async fn multipart_by_urls(
    store: &dyn BlobStore,
    absolute: impl Fn(depot::store::Presigned) -> depot::store::Presigned,
) {
    use std::time::Duration;
    let ttl = Duration::from_secs(300);
    let part = 5usize << 20;
    let data = random(2 * part + 1234);
    let key = "uploads/00112233445566778899aabbccddeeff";
    let upload_id = store
        .multipart()
        .unwrap()
        .start_multipart(key)
        .await
        .unwrap();
    assert!(
        store
            .multipart()
            .unwrap()
            .list_parts(key, &upload_id)
            .await
            .unwrap()
            .is_empty()
    );
    let work = tempfile::tempdir().unwrap();
    let chunks: Vec<&[u8]> = data.chunks(part).collect();
    // Sent out of order, as parallel clients do; the last part first.
    for (i, chunk) in chunks.iter().enumerate().rev() {
        let number = i as u32 + 1;
        let url = absolute(
            store
                .multipart()
                .unwrap()
                .presign_part(key, &upload_id, number, chunk.len() as u64, ttl)
                .await
                .unwrap(),
        );
        if number == 2 {
            // A part of another size than granted is refused.
            let short = work.path().join("short");
            std::fs::write(&short, &chunk[..100]).unwrap();
            assert_ne!(curl("PUT", &url, Some(&short)).0, "200");
        }
        let path = work.path().join(format!("part{number}"));
        std::fs::write(&path, chunk).unwrap();
        let (code, body) = curl("PUT", &url, Some(&path));
        assert_eq!(code, "200", "{}", String::from_utf8_lossy(&body));
    }
    let parts = store
        .multipart()
        .unwrap()
        .list_parts(key, &upload_id)
        .await
        .unwrap();
    let listed: Vec<(u32, u64)> = parts.iter().map(|p| (p.number, p.size)).collect();
    assert_eq!(
        listed,
        vec![(1, part as u64), (2, part as u64), (3, 1234)],
        "{parts:?}"
    );
    assert!(matches!(
        store.head(key).await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .multipart()
        .unwrap()
        .complete_multipart(key, &upload_id, &parts)
        .await
        .unwrap();
    assert_eq!(read_all(store, key, None).await, data);
    assert_no_parts(store, key, &upload_id).await;
    store.delete(key).await.unwrap();

    // Aborted: its parts are gone and it is unknown afterwards.
    let upload_id = store
        .multipart()
        .unwrap()
        .start_multipart(key)
        .await
        .unwrap();
    let url = absolute(
        store
            .multipart()
            .unwrap()
            .presign_part(key, &upload_id, 1, 3, ttl)
            .await
            .unwrap(),
    );
    let path = work.path().join("tiny");
    std::fs::write(&path, b"abc").unwrap();
    assert_eq!(curl("PUT", &url, Some(&path)).0, "200");
    store
        .multipart()
        .unwrap()
        .abort_multipart(key, &upload_id)
        .await
        .unwrap();
    assert_no_parts(store, key, &upload_id).await;
    assert!(matches!(
        store.head(key).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_multipart_by_presigned_parts() {
    let s = Subject::aws().await;
    multipart_by_urls(s.store.as_ref(), |p| p).await;
    assert_eq!(s.everything_stored().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_multipart_by_signed_parts() {
    let dir = tempfile::tempdir().unwrap();
    let registry =
        std::sync::Arc::new(depot::local_registry(dir.path(), depot::Limits::unlimited()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(axum::serve(listener, depot::router(registry.clone())).into_future());
    multipart_by_urls(registry.blobs().as_ref(), |mut p| {
        p.url = format!("{base}{}", p.url);
        p
    })
    .await;
    // Aborting an unknown upload is fine (S3 answers NoSuchUpload, which the S3 store
    // accepts; s3s-fs answers AccessDenied instead, so this is checked here only).
    let store = registry.blobs();
    let id = store
        .multipart()
        .unwrap()
        .start_multipart("uploads/abcdef")
        .await
        .unwrap();
    store
        .multipart()
        .unwrap()
        .abort_multipart("uploads/abcdef", &id)
        .await
        .unwrap();
    store
        .multipart()
        .unwrap()
        .abort_multipart("uploads/abcdef", &id)
        .await
        .unwrap();
    assert_eq!(count_files(&dir.path().join("uploads")), 0);
    assert_eq!(count_files(&dir.path().join("tmp")), 0);
    server.abort();
}

/// Objects larger than one copy allows are promoted part by part, server-side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_promotes_large_objects_in_copied_parts() {
    let emulator = S3Emulator::start().await;
    let bucket = emulator.bucket("depot-test").await;
    let store = S3BlobStore::new(emulator.client(), &bucket)
        .with_part_size(5 << 20)
        .with_copy_part_size(5 << 20);
    let data = random((12 << 20) + 77);
    let staged = "uploads/ffeeddccbbaa99887766554433221100";
    store
        .put(staged, body_of(data.clone(), 1 << 20), &Accept::any())
        .await
        .unwrap();
    let key = new_blob_key();
    store.promote(staged, &key).await.unwrap();
    assert_eq!(read_all(&store, &key, None).await, data);
    let mut keys = emulator.keys(&bucket).await;
    keys.sort();
    assert_eq!(
        keys,
        vec![key, staged.to_string()],
        "copied, the staged object left"
    );
    assert_eq!(emulator.unfinished_parts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_presigned_urls_work_and_are_checked() {
    use std::time::Duration;
    let s = Subject::aws().await;
    let key = new_blob_key();
    s.store
        .put(
            &key,
            body_of(b"presigned bytes".to_vec(), 5),
            &Accept::any(),
        )
        .await
        .unwrap();
    let disposition = "attachment; filename=\"f.bin\"";
    let get = s
        .store
        .presign()
        .unwrap()
        .presign_get(&key, Duration::from_secs(300), disposition)
        .await
        .unwrap();
    assert!(
        get.url.contains("response-content-disposition="),
        "{}",
        get.url
    );
    let (code, body) = curl("GET", &get, None);
    assert_eq!(
        (code.as_str(), body.as_slice()),
        ("200", &b"presigned bytes"[..])
    );
    // Tampered: another key under the same signature.
    let mut tampered = get.clone();
    tampered.url = get.url.replace(&key, &new_blob_key());
    assert_eq!(curl("GET", &tampered, None).0, "403");
    // Wrong method.
    assert_eq!(curl("DELETE", &get, None).0, "403");
    assert_eq!(s.store.head(&key).await.unwrap(), 15, "still there");
    // Expired.
    let short = s
        .store
        .presign()
        .unwrap()
        .presign_get(&key, Duration::from_secs(1), disposition)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(curl("GET", &short, None).0, "403");

    // Presigned PUT of a declared size and SHA-256.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("up.bin");
    std::fs::write(&file, b"uploaded directly").unwrap();
    let target = new_blob_key();
    let put = s
        .store
        .presign()
        .unwrap()
        .presign_put(
            &target,
            Duration::from_secs(300),
            17,
            Some(&sha256_hex(b"uploaded directly")),
        )
        .await
        .unwrap();
    assert!(
        put.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("x-amz-checksum-sha256")),
        "{put:?}"
    );
    // Other bytes of the same length are refused by the store itself.
    let wrong = dir.path().join("wrong.bin");
    std::fs::write(&wrong, b"uploaded wrongly!").unwrap();
    let (code, body) = curl("PUT", &put, Some(&wrong));
    assert_eq!(
        code,
        "400",
        "bytes that do not match the declared SHA-256 are refused: {}",
        String::from_utf8_lossy(&body)
    );
    assert!(
        String::from_utf8_lossy(&body).contains("BadDigest"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // Nothing of the refused bytes is kept: the right ones still go in, once.
    assert_eq!(curl("PUT", &put, Some(&file)).0, "200");
    let (code, body) = curl("PUT", &put, Some(&file));
    assert_eq!(
        code,
        "412",
        "a write-once URL: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(
        read_all(s.store.as_ref(), &target, None).await,
        b"uploaded directly"
    );
    // S3 vouches for what it checked on arrival; of bytes put without a checksum it knows
    // nothing, and they must be read back.
    let presign = s.store.presign().unwrap();
    let checked = presign.checked_on_arrival(&target).await.unwrap();
    assert_eq!(
        checked,
        Some(depot::store::StoredBlob {
            size: 17,
            sha256: sha256_hex(b"uploaded directly")
        })
    );
    assert_eq!(presign.checked_on_arrival(&key).await.unwrap(), None);
}

/// The local store signs its own URLs, which `depot serve` answers: the same checks as S3's
/// (size, SHA-256, expiry, tampering, method), so the handoff works without AWS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_presigned_urls_work_and_are_checked() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let registry =
        std::sync::Arc::new(depot::local_registry(dir.path(), depot::Limits::unlimited()).unwrap());
    let store = registry.blobs().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(axum::serve(listener, depot::router(registry.clone())).into_future());
    let absolute = |mut p: depot::store::Presigned| {
        p.url = format!("{base}{}", p.url);
        p
    };

    let key = new_blob_key();
    store
        .put(
            &key,
            body_of(b"presigned bytes".to_vec(), 5),
            &Accept::any(),
        )
        .await
        .unwrap();
    let disposition = "attachment; filename=\"f.bin\"";
    let get = absolute(
        store
            .presign()
            .unwrap()
            .presign_get(&key, Duration::from_secs(300), disposition)
            .await
            .unwrap(),
    );
    let (code, body) = curl("GET", &get, None);
    assert_eq!(
        (code.as_str(), body.as_slice()),
        ("200", &b"presigned bytes"[..])
    );
    // Tampered: another key under the same signature; wrong method.
    let mut tampered = get.clone();
    tampered.url = get.url.replace(&key, &new_blob_key());
    assert_eq!(curl("GET", &tampered, None).0, "403");
    assert_eq!(curl("DELETE", &get, None).0, "403");
    assert_eq!(curl("PUT", &get, None).0, "403");
    assert_eq!(store.head(&key).await.unwrap(), 15, "still there");
    // Expired.
    let short = absolute(
        store
            .presign()
            .unwrap()
            .presign_get(&key, Duration::from_secs(0), disposition)
            .await
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(curl("GET", &short, None).0, "403");

    // Presigned PUT of a declared size and SHA-256 into the staging area.
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("up.bin");
    std::fs::write(&file, b"uploaded directly").unwrap();
    let target = "uploads/0123456789abcdef";
    let put = absolute(
        store
            .presign()
            .unwrap()
            .presign_put(
                target,
                Duration::from_secs(300),
                17,
                Some(&sha256_hex(b"uploaded directly")),
            )
            .await
            .unwrap(),
    );
    // Other bytes of the same length are refused and not kept; so are fewer or more bytes.
    for (name, bytes) in [
        ("wrong.bin", &b"uploaded wrongly!"[..]),
        ("short.bin", &b"uploaded"[..]),
        ("long.bin", &b"uploaded directly, and more"[..]),
    ] {
        let path = work.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (code, body) = curl("PUT", &put, Some(&path));
        assert_eq!(code, "400", "{name}: {}", String::from_utf8_lossy(&body));
        assert!(matches!(
            store.head(target).await,
            Err(StoreError::NotFound { .. })
        ));
    }
    assert_eq!(curl("PUT", &put, Some(&file)).0, "200");
    assert_eq!(
        read_all(store.as_ref(), target, None).await,
        b"uploaded directly"
    );
    // A GET grant does not allow a PUT of the same key.
    let get_target = absolute(
        store
            .presign()
            .unwrap()
            .presign_get(target, Duration::from_secs(300), disposition)
            .await
            .unwrap(),
    );
    assert_eq!(curl("PUT", &get_target, Some(&file)).0, "403");
    server.abort();
}

/// The local store expires abandoned staged uploads itself (S3 has its lifecycle rule):
/// objects and multipart part directories older than the limit go, recent ones stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_expires_abandoned_staged_uploads() {
    use std::time::{Duration, SystemTime};
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let old = "uploads/0000000000000000000000000000000a";
    let fresh = "uploads/0000000000000000000000000000000b";
    for key in [old, fresh] {
        store
            .put(key, body_of(b"staged".to_vec(), 3), &Accept::any())
            .await
            .unwrap();
    }
    // Without a URL signer the store offers no multipart capability to the registry, but
    // part directories can still be left behind by one that had it.
    let parts_of_old = depot::store::Multipart::start_multipart(
        &store,
        "uploads/0000000000000000000000000000000c",
    )
    .await
    .unwrap();
    let blob = new_blob_key();
    store
        .put(&blob, body_of(b"published".to_vec(), 3), &Accept::any())
        .await
        .unwrap();
    let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    let age = |path: std::path::PathBuf| {
        std::fs::File::open(path)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
    };
    age(dir.path().join(old));
    age(dir.path().join(format!(
        "uploads/0000000000000000000000000000000c_{parts_of_old}"
    )));
    let removed = store
        .expire_staged(Duration::from_secs(24 * 3600))
        .await
        .unwrap();
    assert_eq!(removed, 2);
    assert!(matches!(
        store.head(old).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.head(fresh).await.unwrap(), 6);
    assert_eq!(
        store.head(&blob).await.unwrap(),
        9,
        "published blobs are never touched"
    );
    assert_eq!(count_files(&dir.path().join("uploads")), 1);
}
