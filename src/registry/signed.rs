//! The local store's own presigned URLs, as use cases: check a signed request, then read the
//! blob it names or take exactly the bytes it grants. These routes carry no token: the HMAC
//! signature, expiry and method are the whole authorization, as with S3's presigned URLs.

use super::{Error, Missing, Registry};
use crate::domain::Timestamp;
use crate::store::signing::Grant;
use crate::store::{BlobBody, ByteStream, StoreError, StoredBlob};
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

    /// Store exactly the bytes `grant` allows: more than its size is cut off, fewer or other
    /// bytes than declared are removed again and refused.
    pub async fn signed_write(&self, grant: &Grant, body: ByteStream) -> Result<StoredBlob, Error> {
        let size = grant
            .size
            .ok_or(Error::Signed(SignedRefusal::NoSizeGranted))?;
        let stored = match self.blobs.put(&grant.key, body, Some(size)).await {
            Ok(stored) => stored,
            Err(StoreError::TooLarge) => {
                return Err(Error::Signed(SignedRefusal::LargerThanGranted));
            }
            Err(StoreError::BodyFailed(e)) => return Err(Error::BodyFailed(e)),
            Err(e) => return Err(e.into()),
        };
        let refusal = if stored.size != size {
            Some(SignedRefusal::SizeMismatch)
        } else if grant.sha256.as_deref().is_some_and(|d| d != stored.sha256) {
            Some(SignedRefusal::DigestMismatch)
        } else {
            None
        };
        let Some(refusal) = refusal else {
            return Ok(stored);
        };
        if let Err(e) = self.blobs.delete(&grant.key).await {
            tracing::error!(error = %e, "could not remove refused upload bytes");
        }
        Err(Error::Signed(refusal))
    }
}

fn blob_error(e: StoreError) -> Error {
    match e {
        StoreError::NotFound { .. } => Error::NotFound(Missing::Blob),
        other => other.into(),
    }
}
