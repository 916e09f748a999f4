//! The local store's own presigned URLs, as use cases: check a signed request, then read the
//! blob it names or take exactly the bytes it grants. These routes carry no token: the HMAC
//! signature, expiry and method are the whole authorization, as with S3's presigned URLs.

use super::{Error, Missing, Registry};
use crate::domain::Timestamp;
use crate::store::signing::Grant;
use crate::store::{
    Accept, BlobBody, ByteStream, Declared, StoreError, StoredBlob, session_of_staging_key,
};
use std::ops::Range;

/// Why a signed request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedRefusal {
    /// Not signed by us, tampered with, expired, or for another method.
    BadSignature(String),
    /// A PUT whose grant names no size.
    NoSizeGranted,
    /// More bytes than the grant allows.
    LargerThanGranted,
    /// Fewer bytes than granted.
    SizeMismatch,
    /// Other bytes than the SHA-256 granted.
    DigestMismatch,
    /// The URL was used already (a staged object is written once), or its upload session is
    /// final (committed or aborted: the staged object is sealed, the multipart upload gone).
    Spent,
}

impl Registry {
    /// Does this registry serve signed URLs of its own (the local store)?
    pub fn serves_signed_urls(&self) -> bool {
        self.blobs.url_signer().is_some()
    }

    /// What a `method` request for `key` with `query` is allowed to do.
    pub fn verify_signed(
        &self,
        method: &str,
        key: &str,
        query: &[(String, String)],
    ) -> Result<Grant, Error> {
        let signer = self
            .blobs
            .url_signer()
            .ok_or(Error::NotFound(Missing::Blob))?;
        let now = Timestamp::now().millis() / 1000;
        signer
            .verify(method, key, query, now)
            .map_err(|e| Error::Signed(SignedRefusal::BadSignature(e.to_string())))
    }

    /// The size of the blob a GET grant names.
    pub async fn signed_size(&self, key: &str) -> Result<u64, Error> {
        self.blobs.head(key).await.map_err(blob_error)
    }

    /// The bytes (or the byte `range`) of the blob a GET grant names.
    pub async fn signed_read(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<BlobBody, Error> {
        self.blobs.get(key, range).await.map_err(blob_error)
    }

    /// Store exactly the bytes `grant` allows: more than its size, fewer or other bytes than
    /// declared are refused before anything is in place; a spent URL writes nothing.
    pub async fn signed_write(&self, grant: &Grant, body: ByteStream) -> Result<StoredBlob, Error> {
        let size = grant
            .size
            .ok_or(Error::Signed(SignedRefusal::NoSizeGranted))?;
        // Refused before the body is read when it is plain that nothing can be written (the
        // store's write-once placement decides the race).
        if session_of_staging_key(&grant.key).is_some() && self.blobs.head(&grant.key).await.is_ok()
        {
            return Err(Error::Signed(SignedRefusal::Spent));
        }
        let accept = Accept::exactly(size, grant.sha256.clone());
        self.blobs
            .put(&grant.key, body, &accept)
            .await
            .map_err(|e| match e {
                StoreError::TooLarge => Error::Signed(SignedRefusal::LargerThanGranted),
                StoreError::NotAsDeclared(Declared::Size) => {
                    Error::Signed(SignedRefusal::SizeMismatch)
                }
                StoreError::NotAsDeclared(Declared::Sha256) => {
                    Error::Signed(SignedRefusal::DigestMismatch)
                }
                StoreError::AlreadyExists { .. } | StoreError::NotFound { .. } => {
                    Error::Signed(SignedRefusal::Spent)
                }
                StoreError::BodyFailed(e) => Error::BodyFailed(e),
                other => other.into(),
            })
    }
}

fn blob_error(e: StoreError) -> Error {
    match e {
        StoreError::NotFound { .. } => Error::NotFound(Missing::Blob),
        other => other.into(),
    }
}
