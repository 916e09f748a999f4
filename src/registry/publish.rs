//! The write half of a publish after its checks: measure a small file's bytes, stream a larger
//! one into the blob store, and commit the records (or clean up the blob) where a dropped
//! request cannot stop it halfway.

use super::lost_answers::{Landed, published};
use super::{Error, Registry};
use crate::domain::{NewFile, Package, PackageFile, Sha256Hex};

/// What a client declares of the bytes it sends: their length (`Content-Length`) and SHA-256
/// (`X-Checksum-SHA256` or `Content-Digest`). A publish whose bytes do not match the digest is
/// refused and leaves nothing.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub size: Option<u64>,
    pub sha256: Option<Sha256Hex>,
}

/// The refusal of bytes that do not match their declared SHA-256 (as an upload session's).
pub const DIGEST_MISMATCH: &str = "the uploaded bytes do not match the declared SHA-256";
use crate::store::{
    Accept, BodyMeter, ByteStream, StoreError, StoredBlob, is_inline_key, new_blob_key,
};

impl Registry {
    /// What a publish accepts: below the size limit (a file of that size or more is refused).
    fn accepted(&self) -> Accept {
        match self.limits.max_file_size {
            0 => Accept::any(),
            max => Accept::at_most(max - 1),
        }
    }

    /// Size and SHA-256 of a small file's bytes, under the size limit.
    pub(super) fn metered(&self, bytes: &[u8]) -> Result<StoredBlob, Error> {
        let mut meter = BodyMeter::accepting(&self.accepted());
        meter.feed(bytes).map_err(|_| Error::TooLarge)?;
        Ok(meter.finish())
    }

    /// Stream `body` into the blob store under a new key.
    pub(super) async fn put_blob(&self, body: ByteStream) -> Result<(String, StoredBlob), Error> {
        let key = new_blob_key();
        match self.blobs.put(&key, body, &self.accepted()).await {
            Ok(stored) => Ok((key, stored)),
            Err(StoreError::TooLarge) => Err(Error::TooLarge),
            Err(StoreError::BodyFailed(io)) => Err(Error::BodyFailed(io)),
            Err(other) => {
                // The object may be there even so (the store's answer was lost): nothing
                // would ever name it.
                self.discard_blob(&key).await;
                Err(other.into())
            }
        }
    }

    /// Remove the blob of a publish that will not be recorded (an inline key has none).
    pub(super) async fn discard_blob(&self, key: &str) {
        if is_inline_key(key) {
            return;
        }
        if let Err(e) = self.blobs.delete(key).await {
            tracing::error!(blob_key = %key, error = %e, "could not remove the blob of a failed upload");
        }
    }

    /// Commit a publish's records (or clean up its blob) in a task of its own: if the client
    /// goes away now and this future is dropped, the blob is still either recorded or removed.
    pub(super) async fn commit_publish(
        &self,
        new_file: NewFile,
    ) -> Result<(Package, PackageFile), Error> {
        let (meta, blobs) = (self.meta.clone(), self.blobs.clone());
        let commit = tokio::spawn(async move {
            let result = meta.publish(new_file.clone()).await;
            let unrecorded = match &result {
                Ok(_) => false,
                // The answer may have been lost after the records were written.
                Err(e) if e.is_transient() => match published(meta.as_ref(), &new_file).await {
                    Landed::Yes(published) => return Ok(published),
                    Landed::No => true,
                    Landed::Unknown => false,
                },
                Err(_) => true,
            };
            let key = &new_file.blob_key;
            if unrecorded
                && !is_inline_key(key)
                && let Err(e) = blobs.delete(key).await
            {
                tracing::error!(blob_key = %key, error = %e, "could not remove the blob of a failed publish");
            }
            result
        });
        match commit.await.map_err(StoreError::backend)? {
            Ok(published) => Ok(published),
            Err(StoreError::AlreadyExists { .. }) => Err(Error::Duplicate),
            Err(e) => Err(e.into()),
        }
    }
}
