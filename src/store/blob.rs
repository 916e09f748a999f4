//! The blob seam, object_store-style: a small core (`BlobStore`: put, get, head, delete,
//! promote, expire) and optional capabilities as traits of their own (`Presign`, `Multipart`)
//! that a backend offers through `BlobStore::presign` / `BlobStore::multipart`.

use super::error::{StoreError, StoreResult};
use super::signing::UrlSigner;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::time::Duration;

/// A body of bytes arriving or leaving in chunks.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// What a finished `put` learned about the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub size: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

/// A blob (or a byte range of it) being read.
pub struct BlobBody {
    /// Length of the whole blob.
    pub total_size: u64,
    /// The range being returned (`0..total_size` without a range).
    pub range: Range<u64>,
    pub stream: ByteStream,
}

/// A presigned request: where to send it, and the headers that must go with it (they are
/// part of the signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// What a `put` keeps: at most `max_bytes`, and (when given) exactly `size` bytes whose
/// SHA-256 is `sha256`. Other bytes are refused before they are in place, nothing left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    pub max_bytes: Option<u64>,
    pub size: Option<u64>,
    /// Lower-case hex SHA-256.
    pub sha256: Option<String>,
}

impl Accept {
    /// Whatever arrives.
    pub fn any() -> Self {
        Self::default()
    }

    /// Up to `max_bytes`.
    pub fn at_most(max_bytes: u64) -> Self {
        Self {
            max_bytes: Some(max_bytes),
            ..Self::default()
        }
    }

    /// Exactly `size` bytes, and these bytes when `sha256` is given.
    pub fn exactly(size: u64, sha256: Option<String>) -> Self {
        Self {
            max_bytes: Some(size),
            size: Some(size),
            sha256,
        }
    }
}

/// Which declared property a body did not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    Size,
    Sha256,
}

/// Counts, hashes and bounds a body while a store writes it: shared by every `BlobStore`.
pub struct BodyMeter {
    hasher: Sha256,
    size: u64,
    accept: Accept,
}

impl BodyMeter {
    pub fn new(max_bytes: Option<u64>) -> Self {
        Self::accepting(&Accept {
            max_bytes,
            ..Accept::default()
        })
    }

    /// A meter that [`Self::verified`] checks against `accept`.
    pub fn accepting(accept: &Accept) -> Self {
        Self {
            hasher: Sha256::new(),
            size: 0,
            accept: accept.clone(),
        }
    }

    /// Account for one chunk; `TooLarge` as soon as the body passes `max_bytes`.
    pub fn feed(&mut self, chunk: &[u8]) -> StoreResult<()> {
        self.size += chunk.len() as u64;
        if self.accept.max_bytes.is_some_and(|max| self.size > max) {
            return Err(StoreError::TooLarge);
        }
        self.hasher.update(chunk);
        Ok(())
    }

    pub fn finish(self) -> StoredBlob {
        StoredBlob {
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }

    /// What was received, if it is what the `Accept` asked for.
    pub fn verified(self) -> StoreResult<StoredBlob> {
        let accept = self.accept.clone();
        let stored = self.finish();
        if accept.size.is_some_and(|size| size != stored.size) {
            return Err(StoreError::NotAsDeclared(Declared::Size));
        }
        if accept.sha256.is_some_and(|d| d != stored.sha256) {
            return Err(StoreError::NotAsDeclared(Declared::Sha256));
        }
        Ok(stored)
    }
}

/// The smallest part of a multipart upload but the last (S3's rule; the local store keeps it).
pub const MIN_PART_SIZE: u64 = 5 << 20;

/// Where a backend keeps bytes: on this machine's disk, or in object storage (which can hand
/// clients URLs of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobLocation {
    Local,
    ObjectStorage,
}

/// A part of a multipart upload that the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedPart {
    /// 1-based.
    pub number: u32,
    pub size: u64,
    /// The store's tag for the part, where it has one (S3 needs it to complete).
    pub etag: Option<String>,
}

/// File bytes. Keys come from [`super::keys::new_blob_key`]; a key is written once and never
/// changes.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stream `body` to `key` while hashing it, keeping it only if it is what `accept` asks
    /// for. Readers never see a partial blob: on any error (`TooLarge`, `NotAsDeclared`,
    /// `BodyFailed`, backend) nothing is left behind. A staged upload's object (a key
    /// [`super::keys::staging_key`] made) is written once: `AlreadyExists` if something is there.
    async fn put(&self, key: &str, body: ByteStream, accept: &Accept) -> StoreResult<StoredBlob>;

    /// Read a blob, or the byte `range` of it (already checked against its size by the caller).
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StoreResult<BlobBody>;

    /// Size of a stored blob.
    async fn head(&self, key: &str) -> StoreResult<u64>;

    /// Remove a blob; removing a missing blob is not an error.
    async fn delete(&self, key: &str) -> StoreResult<()>;

    /// Copy the finished object at `from` (a staged upload) to `to` (its blob key), inside the
    /// store; `from` stays until it is sealed or deleted. A copy is whole or absent; one whose
    /// answer was lost may be at `to` (the caller's next attempt finds it there). `NotFound` if
    /// nothing is at `from`.
    async fn promote(&self, from: &str, to: &str) -> StoreResult<()>;

    /// Replace what is at `key` (a staged upload's object) by an empty object, in one step, so
    /// that its write-once upload URL can write nothing more.
    async fn seal(&self, key: &str) -> StoreResult<()>;

    /// Remove staged uploads (objects and multipart parts under
    /// [`super::keys::STAGING_PREFIX`]) last written more than `older_than` ago: abandoned
    /// sessions. The number removed.
    async fn expire_staged(&self, older_than: Duration) -> StoreResult<usize>;

    /// Where this backend keeps bytes.
    fn location(&self) -> BlobLocation;

    /// Presigned URLs, where the backend can make them.
    fn presign(&self) -> Option<&dyn Presign> {
        None
    }

    /// Multipart uploads whose parts clients send by presigned URL, where the backend has them.
    fn multipart(&self) -> Option<&dyn Multipart> {
        None
    }

    /// The signer of this store's own presigned URLs, which depot serves itself (the local
    /// store); `None` where presigned URLs point elsewhere (S3) or do not exist.
    fn url_signer(&self) -> Option<&UrlSigner> {
        None
    }
}

/// Capability: URLs that let a client read or write one object without credentials.
#[async_trait]
pub trait Presign: Send + Sync {
    /// A URL that downloads the blob until `ttl` passes, answering with `content_disposition`.
    async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
        content_disposition: &str,
    ) -> StoreResult<Presigned>;

    /// A request that uploads exactly `size` bytes to `key` until `ttl` passes; with `sha256`
    /// (lower-case hex) the store refuses any other bytes.
    async fn presign_put(
        &self,
        key: &str,
        ttl: Duration,
        size: u64,
        sha256: Option<&str>,
    ) -> StoreResult<Presigned>;

    /// Size and SHA-256 of the object at `key` as the store itself checked them when a
    /// [`Presign::presign_put`] with `sha256` wrote it (whole-object checksums only); `None`
    /// where the store keeps no such checksum, and the caller must read the bytes back.
    async fn checked_on_arrival(&self, _key: &str) -> StoreResult<Option<StoredBlob>> {
        Ok(None)
    }
}

/// Capability: an object uploaded in parts, each sent by presigned URL, then joined.
#[async_trait]
pub trait Multipart: Send + Sync {
    /// Begin a multipart upload to `key`; its id.
    async fn start_multipart(&self, key: &str) -> StoreResult<String>;

    /// A request that uploads part `part` (1-based) of exactly `size` bytes.
    async fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        size: u64,
        ttl: Duration,
    ) -> StoreResult<Presigned>;

    /// The parts received so far, by number. `NotFound` if the upload is unknown (completed
    /// or aborted).
    async fn list_parts(&self, key: &str, upload_id: &str) -> StoreResult<Vec<ReceivedPart>>;

    /// Join `parts` (as listed, in order) into the object at `key`.
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[ReceivedPart],
    ) -> StoreResult<()>;

    /// Drop an unfinished multipart upload and its parts; an unknown one is not an error.
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_hashes_counts_and_bounds() {
        let mut m = BodyMeter::new(Some(5));
        m.feed(b"abc").unwrap();
        m.feed(b"").unwrap();
        assert_eq!(
            m.finish(),
            StoredBlob {
                size: 3,
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()
            }
        );
        let mut m = BodyMeter::new(Some(5));
        m.feed(b"12345").unwrap();
        assert!(matches!(m.feed(b"6"), Err(StoreError::TooLarge)));
        let empty = BodyMeter::new(None).finish();
        assert_eq!(
            empty.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
