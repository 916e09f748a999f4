//! The two storage seams: `BlobStore` (file bytes) and `MetaStore` (records), their semantic
//! errors, and the one place that decides object keys.

pub mod dynamo;
pub mod fs;
pub mod s3;
pub mod signing;
pub mod sqlite;

use crate::domain::{
    FileName, Group, GroupSettings, Listed, Membership, MembershipTarget, NewFile, NewToken,
    Package, PackageFile, PackageName, PackageQuery, PackageVersion, Project, Role, SessionState,
    Timestamp, Token, UploadSession, User, Visibility,
};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};
use std::ops::Range;

/// Errors every store speaks, whatever is behind it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    /// The body grew past the allowed size while it was being stored.
    #[error("body exceeds the size limit")]
    TooLarge,
    /// The body stream failed (client went away); nothing was kept.
    #[error("body stream failed: {0}")]
    BodyFailed(std::io::Error),
    /// A request the store cannot satisfy (e.g. a parent that does not exist).
    #[error("{0}")]
    Invalid(String),
    /// The disk (or the user's quota) is full: nothing was kept, and trying again will fail the
    /// same way until space is freed.
    #[error("storage is full: {0}")]
    Full(Box<dyn std::error::Error + Send + Sync>),
    #[error("storage backend: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// A backend failure; `Full` when it is (or wraps) an I/O error saying the disk or the
    /// quota is full.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        if is_storage_full(&e) {
            StoreError::Full(Box::new(e))
        } else {
            StoreError::Backend(Box::new(e))
        }
    }
}

/// True when `e`, or an error it wraps, is ENOSPC or EDQUOT.
fn is_storage_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{QuotaExceeded, StorageFull};
            if matches!(io.kind(), StorageFull | QuotaExceeded) {
                return true;
            }
        }
        next = e.source();
    }
    false
}

pub type StoreResult<T> = Result<T, StoreError>;

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

/// Counts, hashes and bounds a body while a store writes it: shared by every `BlobStore`.
pub struct BodyMeter {
    hasher: Sha256,
    size: u64,
    max_bytes: Option<u64>,
}

impl BodyMeter {
    pub fn new(max_bytes: Option<u64>) -> Self {
        Self {
            hasher: Sha256::new(),
            size: 0,
            max_bytes,
        }
    }

    /// Account for one chunk; `TooLarge` as soon as the body passes `max_bytes`.
    pub fn feed(&mut self, chunk: &[u8]) -> StoreResult<()> {
        self.size += chunk.len() as u64;
        if self.max_bytes.is_some_and(|max| self.size > max) {
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
}

/// The one place object keys are decided: a fresh blob key never reused or rewritten.
pub fn new_blob_key() -> String {
    format!("blobs/{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// Where the bytes of upload session `session_id` are staged (expired by the bucket's
/// lifecycle rule and by the session's own expiry).
pub fn staging_key(session_id: &str) -> String {
    format!("{STAGING_PREFIX}{session_id}")
}

/// The prefix of every staged upload.
pub const STAGING_PREFIX: &str = "uploads/";

/// The session whose bytes are staged at `key` (as an S3 event names it), if it is one.
pub fn session_of_staging_key(key: &str) -> Option<&str> {
    let id = key.strip_prefix(STAGING_PREFIX)?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
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

/// File bytes. Keys come from [`new_blob_key`]; a key is written once and never changes.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stream `body` to `key` while hashing it. Readers never see a partial blob: on any error
    /// (`TooLarge`, `BodyFailed`, backend) nothing is left behind.
    async fn put(
        &self,
        key: &str,
        body: ByteStream,
        max_bytes: Option<u64>,
    ) -> StoreResult<StoredBlob>;

    /// Read a blob, or the byte `range` of it (already checked against its size by the caller).
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StoreResult<BlobBody>;

    /// Size of a stored blob.
    async fn head(&self, key: &str) -> StoreResult<u64>;

    /// Remove a blob; removing a missing blob is not an error.
    async fn delete(&self, key: &str) -> StoreResult<()>;

    /// Move the finished object at `from` (a staged upload) to `to` (a fresh blob key), inside
    /// the store; `from` is gone afterwards. `NotFound` if there is nothing at `from`.
    async fn promote(&self, from: &str, to: &str) -> StoreResult<()>;

    /// A URL that downloads the blob until `ttl` passes, answering with `content_disposition`.
    /// `None` where the backend cannot presign.
    async fn presign_get(
        &self,
        _key: &str,
        _ttl: std::time::Duration,
        _content_disposition: &str,
    ) -> StoreResult<Option<Presigned>> {
        Ok(None)
    }

    /// A request that uploads exactly `size` bytes to `key` until `ttl` passes; with `sha256`
    /// (lower-case hex) the store refuses any other bytes. `None` where the backend cannot
    /// presign.
    async fn presign_put(
        &self,
        _key: &str,
        _ttl: std::time::Duration,
        _size: u64,
        _sha256: Option<&str>,
    ) -> StoreResult<Option<Presigned>> {
        Ok(None)
    }

    /// Begin a multipart upload to `key` whose parts clients send by presigned URL; its id.
    async fn start_multipart(&self, key: &str) -> StoreResult<String>;

    /// A request that uploads part `part` (1-based) of exactly `size` bytes.
    async fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        size: u64,
        ttl: std::time::Duration,
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

    /// Remove staged uploads (objects and multipart parts under [`STAGING_PREFIX`]) last
    /// written more than `older_than` ago: abandoned sessions. The number removed.
    async fn expire_staged(&self, older_than: std::time::Duration) -> StoreResult<usize>;

    /// The signer of this store's own presigned URLs, which depot serves itself (the local
    /// store); `None` where presigned URLs point elsewhere (S3) or do not exist.
    fn url_signer(&self) -> Option<&signing::UrlSigner> {
        None
    }

    /// GitLab's `file_store` code for files kept here: 1 local, 2 object storage.
    fn file_store_code(&self) -> i64;
}

/// Records, in domain terms. Every implementation passes the same conformance suite.
#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    /// True when nothing was ever provisioned (first start).
    async fn is_empty(&self) -> StoreResult<bool>;

    /// Create a group; its parent (the path minus its last segment) must exist.
    async fn create_group(&self, path: &str, now: Timestamp) -> StoreResult<Group>;
    async fn group_by_path(&self, path: &str) -> StoreResult<Option<Group>>;
    async fn group_by_id(&self, id: i64) -> StoreResult<Option<Group>>;

    async fn create_project(
        &self,
        group: &Group,
        name: &str,
        visibility: Visibility,
        now: Timestamp,
    ) -> StoreResult<Project>;
    async fn project_by_id(&self, id: i64) -> StoreResult<Option<Project>>;
    async fn project_by_path(&self, path: &str) -> StoreResult<Option<Project>>;
    /// The projects directly in `group` and, with `subgroups`, in every group below it.
    async fn projects_in_group(&self, group: &Group, subgroups: bool) -> StoreResult<Vec<Project>>;

    async fn create_user(&self, username: &str, now: Timestamp) -> StoreResult<User>;
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>>;

    /// Add a membership, or change the role of an existing one.
    async fn set_membership(
        &self,
        user_id: i64,
        target: &MembershipTarget,
        role: Role,
    ) -> StoreResult<Membership>;
    async fn memberships_of(&self, user_id: i64) -> StoreResult<Vec<Membership>>;

    async fn create_token(&self, token: NewToken, now: Timestamp) -> StoreResult<Token>;
    async fn token_by_sha256(&self, sha256: &[u8; 32]) -> StoreResult<Option<Token>>;
    async fn token_by_id(&self, id: i64) -> StoreResult<Option<Token>>;
    /// `NotFound` for an unknown id.
    async fn revoke_token(&self, id: i64) -> StoreResult<Token>;

    /// Settings of a group (defaults when never set).
    async fn group_settings(&self, group_id: i64) -> StoreResult<GroupSettings>;
    async fn set_group_settings(
        &self,
        group_id: i64,
        settings: &GroupSettings,
    ) -> StoreResult<GroupSettings>;

    /// Does the live package (project, name, version) have a live file named `file_name`?
    async fn live_file_exists(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
        file_name: &FileName,
    ) -> StoreResult<bool>;

    /// Atomically find-or-create the package and add the file. With `refuse_duplicate` and a
    /// live file of the same name already there: `AlreadyExists`, and nothing changes.
    async fn publish(&self, file: NewFile) -> StoreResult<(Package, PackageFile)>;

    /// The newest live file `file_name` of the package (project, name, version), with its
    /// package, when the package is `default` or `hidden`.
    async fn newest_file(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
        file_name: &FileName,
    ) -> StoreResult<Option<(Package, PackageFile)>>;

    /// Record a download.
    async fn mark_downloaded(&self, package: &Package, at: Timestamp) -> StoreResult<()>;

    /// A package by id, whatever its status (callers decide what is visible).
    async fn package_by_id(&self, id: i64) -> StoreResult<Option<Package>>;

    /// One page of the packages of `projects` that match `query` ([`PackageQuery::matches`]),
    /// in its order (ties broken by creation, then id), counted up to
    /// [`crate::domain::COUNT_LIMIT`].
    async fn list_packages(
        &self,
        projects: &[Project],
        query: &PackageQuery,
    ) -> StoreResult<Listed<Package>>;

    /// The live files of a package, in no particular order.
    async fn files_of(&self, package_id: i64) -> StoreResult<Vec<PackageFile>>;

    /// Mark a live package pending destruction: it leaves lists and downloads at once, and
    /// its name and version are free for a new package. `NotFound` if it is not live.
    async fn delete_package(&self, package: &Package, now: Timestamp) -> StoreResult<()>;

    /// Mark one live file pending destruction (gone from downloads and file lists at once; its
    /// name no longer counts as a duplicate unless another live file has it). `NotFound` if it
    /// is not live.
    async fn delete_file(&self, file: &PackageFile, now: Timestamp) -> StoreResult<()>;

    /// Up to `limit` packages pending destruction and up to `limit` files pending destruction
    /// (of live packages), for the purge.
    async fn doomed(&self, limit: usize) -> StoreResult<(Vec<Package>, Vec<PackageFile>)>;

    /// Every file record of a package, whatever its status (for the purge).
    async fn all_files_of(&self, package_id: i64) -> StoreResult<Vec<PackageFile>>;

    /// Does a file record other than `file` point at its blob? Records are counted until they
    /// are forgotten, so a blob is kept while any record, live or doomed, still names it.
    async fn blob_shared(&self, file: &PackageFile) -> StoreResult<bool>;

    /// Remove a purged file's record for good.
    async fn forget_file(&self, file: &PackageFile) -> StoreResult<()>;

    /// Remove a purged package's record (and whatever it still holds) for good.
    async fn forget_package(&self, package: &Package) -> StoreResult<()>;

    /// Record a new upload session; `AlreadyExists` if its id is taken.
    async fn create_upload_session(&self, session: &UploadSession) -> StoreResult<()>;

    async fn upload_session(&self, id: &str) -> StoreResult<Option<UploadSession>>;

    /// Claim a session for committing until `until`: from `Pending`, or from a `Committing`
    /// whose lease lapsed before `now`. `None` (and no change) when someone else holds it or
    /// it is settled; callers then read it again.
    async fn claim_upload_session(
        &self,
        id: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<UploadSession>>;

    /// Give a session its final `state` (committed, refused, aborted) unless it is settled
    /// already; `None` (and no change) in that case.
    async fn settle_upload_session(
        &self,
        id: &str,
        state: &SessionState,
    ) -> StoreResult<Option<UploadSession>>;
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

    #[test]
    fn a_full_disk_is_told_apart_from_other_failures() {
        use std::io::Write;
        // The kernel's own ENOSPC: every write to /dev/full fails with it.
        let mut full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let enospc = full.write_all(&[0u8; 4096]).unwrap_err();
        assert_eq!(enospc.raw_os_error(), Some(28), "{enospc}");
        assert!(matches!(StoreError::backend(enospc), StoreError::Full(_)));
        let quota = std::io::Error::from(std::io::ErrorKind::QuotaExceeded);
        assert!(matches!(StoreError::backend(quota), StoreError::Full(_)));
        // Wrapped, as a failed persist of a temporary file wraps it.
        #[derive(Debug, thiserror::Error)]
        #[error("persisting failed")]
        struct Wrapper(#[source] std::io::Error);
        let wrapped = Wrapper(std::io::Error::from_raw_os_error(28));
        assert!(matches!(StoreError::backend(wrapped), StoreError::Full(_)));
        // Anything else stays a plain backend failure.
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(matches!(
            StoreError::backend(denied),
            StoreError::Backend(_)
        ));
    }

    #[test]
    fn blob_keys_are_unique_and_safe() {
        let a = new_blob_key();
        assert_ne!(a, new_blob_key());
        assert!(a.starts_with("blobs/") && a.len() == 6 + 32);
        assert!(a[6..].bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
