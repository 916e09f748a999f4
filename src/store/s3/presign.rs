//! Presigned requests on S3 (the `Presign` capability): downloads and uploads that go
//! straight to S3 without credentials, and what S3 itself checked of an upload on arrival.

use super::{S3BlobStore, presigned};
use crate::store::{Presign, Presigned, StoreError, StoreResult, StoredBlob};
use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use base64::Engine;
use std::time::Duration;

#[async_trait]
impl Presign for S3BlobStore {
    async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
        content_disposition: &str,
    ) -> StoreResult<Presigned> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(content_disposition)
            .response_content_type("application/octet-stream")
            .presigned(PresigningConfig::expires_in(ttl).map_err(StoreError::backend)?)
            .await
            .map_err(StoreError::backend)?;
        Ok(presigned(request))
    }

    async fn presign_put(
        &self,
        key: &str,
        ttl: Duration,
        size: u64,
        sha256: Option<&str>,
    ) -> StoreResult<Presigned> {
        let checksum = match sha256 {
            Some(hex_digest) => {
                let raw = hex::decode(hex_digest).map_err(|_| {
                    StoreError::Rejected(format!("{hex_digest:?} is not a SHA-256"))
                })?;
                Some(base64::engine::general_purpose::STANDARD.encode(raw))
            }
            None => None,
        };
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(size as i64)
            .set_checksum_sha256(checksum)
            // Written once: a second PUT (a replay, or after a commit or an abort sealed the
            // key) is refused by S3 with 412 and writes nothing.
            .if_none_match("*")
            .presigned(PresigningConfig::expires_in(ttl).map_err(StoreError::backend)?)
            .await
            .map_err(StoreError::backend)?;
        Ok(presigned(request))
    }

    async fn checked_on_arrival(&self, key: &str) -> StoreResult<Option<StoredBlob>> {
        let out = self.head_object(key, true).await?;
        let size = out.content_length().unwrap_or_default().max(0) as u64;
        Ok(out
            .checksum_sha256()
            .and_then(whole_object_sha256)
            .map(|sha256| StoredBlob { size, sha256 }))
    }
}

/// The lower-case hex SHA-256 of a whole object from S3's base64 `ChecksumSHA256`; `None` for
/// a composite checksum of parts (`<base64>-<parts>`) or anything else that is not one.
fn whole_object_sha256(checksum: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(checksum)
        .ok()?;
    (raw.len() == 32).then(|| hex::encode(raw))
}

#[cfg(test)]
mod tests {
    use super::whole_object_sha256;

    #[test]
    fn only_a_whole_object_checksum_is_a_sha256() {
        let sha = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        assert_eq!(
            whole_object_sha256(sha).as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(whole_object_sha256(&format!("{sha}-2")), None);
        assert_eq!(whole_object_sha256("AAAA"), None);
    }
}
