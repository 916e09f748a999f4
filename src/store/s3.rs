//! `BlobStore` on S3 (or an S3-compatible endpoint). Bodies stream through one part buffer:
//! a body that fits in one part is a single `PutObject`; a larger one becomes a multipart
//! upload, aborted on any failure. Either way the object appears whole or not at all.

mod presign;

use super::aws::{retry_config, s3_timeouts, sdk_failure};
use super::blob::MIN_PART_SIZE;
use super::{
    Accept, BlobBody, BlobLocation, BlobStore, BodyMeter, ByteStream, Multipart, Presign,
    Presigned, ReceivedPart, Record, StoreError, StoreResult, StoredBlob, session_of_staging_key,
};
use crate::config::AwsPatience;
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::ops::Range;
use std::time::Duration;
use tokio_util::io::ReaderStream;

/// S3's smallest part (except the last) is 5 MiB; 8 MiB keeps memory small and requests few.
pub const DEFAULT_PART_SIZE: usize = 8 << 20;

/// The largest object one `CopyObject` may copy; larger ones are copied part by part.
pub const MAX_SINGLE_COPY: u64 = 5 << 30;

pub struct S3BlobStore {
    client: Client,
    bucket: String,
    part_size: usize,
    copy_part_size: u64,
}

impl S3BlobStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            part_size: DEFAULT_PART_SIZE,
            copy_part_size: MAX_SINGLE_COPY,
        }
    }

    /// Objects above `bytes` are promoted by `UploadPartCopy` in parts of `bytes` (at least
    /// S3's 5 MiB; the default, 5 GiB, is the most one `CopyObject` takes).
    pub fn with_copy_part_size(mut self, bytes: u64) -> Self {
        self.copy_part_size = bytes.clamp(MIN_PART_SIZE, MAX_SINGLE_COPY);
        self
    }

    /// Join the `parts` of multipart upload `upload_id` into `key`.
    async fn finish_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> StoreResult<()> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(())
    }

    /// A server-side copy too large for `CopyObject`: a multipart upload whose parts are
    /// ranges of the source, copied by S3 itself; aborted on any failure.
    async fn copy_in_parts(&self, from: &str, to: &str, size: u64) -> StoreResult<()> {
        let upload_id = self.start_multipart(to).await?;
        let result: StoreResult<()> = async {
            let mut parts = Vec::new();
            let mut start = 0u64;
            while start < size {
                let end = (start + self.copy_part_size).min(size);
                let number = parts.len() as i32 + 1;
                let copied = self
                    .client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(to)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .copy_source(format!("{}/{from}", self.bucket))
                    .copy_source_range(format!("bytes={start}-{}", end - 1))
                    .send()
                    .await
                    .map_err(sdk_failure)?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(
                            copied
                                .copy_part_result()
                                .and_then(|r| r.e_tag())
                                .map(str::to_string),
                        )
                        .build(),
                );
                start = end;
            }
            self.finish_multipart(to, &upload_id, parts).await
        }
        .await;
        if result.is_err() {
            self.abort_after_failure(to, &upload_id).await;
        }
        result
    }

    /// Bytes buffered per part (at least S3's 5 MiB minimum).
    pub fn with_part_size(mut self, part_size: usize) -> Self {
        self.part_size = part_size.max(MIN_PART_SIZE as usize);
        self
    }

    /// An S3 client from the environment's AWS configuration (credentials, region,
    /// `AWS_ENDPOINT_URL_S3`), with path-style addressing so emulators work too, waiting and
    /// retrying as `patience` says.
    pub fn client_from(
        sdk: &aws_config::SdkConfig,
        endpoint: Option<&str>,
        patience: &AwsPatience,
    ) -> Client {
        let mut config = aws_sdk_s3::config::Builder::from(sdk)
            .retry_config(retry_config(patience))
            .timeout_config(s3_timeouts(patience))
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .interceptor(super::aws::StoreTiming);
        if let Some(url) = endpoint {
            config = config.endpoint_url(url);
        }
        Client::from_conf(config.build())
    }

    /// `HeadObject` of `key` (with its stored checksums when `checksums`); `NotFound` if
    /// nothing is there.
    async fn head_object(&self, key: &str, checksums: bool) -> StoreResult<HeadObjectOutput> {
        let mut request = self.client.head_object().bucket(&self.bucket).key(key);
        if checksums {
            request = request.checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled);
        }
        request.send().await.map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_not_found()) {
                StoreError::not_found(Record::Blob, key)
            } else {
                sdk_failure(e)
            }
        })
    }

    async fn put_multipart(
        &self,
        key: &str,
        first: Bytes,
        mut body: ByteStream,
        mut meter: BodyMeter,
    ) -> StoreResult<StoredBlob> {
        let upload_id = self.start_multipart(key).await?;
        let result: StoreResult<StoredBlob> = async {
            let mut parts = Vec::new();
            let mut pending = Some(first);
            let mut buffer = BytesMut::with_capacity(self.part_size);
            let mut done = false;
            loop {
                if let Some(part) = pending.take() {
                    let number = parts.len() as i32 + 1;
                    let uploaded = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(&upload_id)
                        .part_number(number)
                        .content_length(part.len() as i64)
                        .body(S3Body::from(part))
                        .send()
                        .await
                        .map_err(sdk_failure)?;
                    parts.push(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(uploaded.e_tag().map(str::to_string))
                            .build(),
                    );
                }
                if done {
                    break;
                }
                match body.next().await {
                    Some(chunk) => {
                        let chunk = chunk.map_err(StoreError::BodyFailed)?;
                        meter.feed(&chunk)?;
                        buffer.extend_from_slice(&chunk);
                        if buffer.len() >= self.part_size {
                            pending = Some(buffer.split().freeze());
                        }
                    }
                    None => {
                        done = true;
                        if !buffer.is_empty() {
                            pending = Some(buffer.split().freeze());
                        }
                    }
                }
            }
            let stored = meter.verified()?;
            self.finish_multipart(key, &upload_id, parts).await?;
            Ok(stored)
        }
        .await;
        if result.is_err() {
            self.abort_after_failure(key, &upload_id).await;
        }
        result
    }

    /// Abort a multipart upload that failed; a failure to abort is logged (the bucket's
    /// lifecycle rule removes what is left).
    async fn abort_after_failure(&self, key: &str, upload_id: &str) {
        if let Err(e) = self.abort_multipart(key, upload_id).await {
            tracing::warn!(error = %e, "could not abort a failed multipart upload (the lifecycle rule will)");
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(
        &self,
        key: &str,
        mut body: ByteStream,
        accept: &Accept,
    ) -> StoreResult<StoredBlob> {
        let mut meter = BodyMeter::accepting(accept);
        let mut buffer = BytesMut::with_capacity(self.part_size.min(1 << 20));
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(StoreError::BodyFailed)?;
            meter.feed(&chunk)?;
            buffer.extend_from_slice(&chunk);
            if buffer.len() >= self.part_size {
                return self.put_multipart(key, buffer.freeze(), body, meter).await;
            }
        }
        let bytes = buffer.freeze();
        let stored = meter.verified()?;
        let mut request = self.client.put_object().bucket(&self.bucket).key(key);
        if session_of_staging_key(key).is_some() {
            // A staged upload's object is written once, as its presigned URL does.
            request = request.if_none_match("*");
        }
        request
            .content_length(bytes.len() as i64)
            .body(S3Body::from(bytes))
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().map(|s| s.code()) == Some(Some("PreconditionFailed")) {
                    StoreError::already_exists(Record::Blob, key)
                } else {
                    sdk_failure(e)
                }
            })?;
        Ok(stored)
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StoreResult<BlobBody> {
        let mut request = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(r) = &range {
            if r.start >= r.end {
                return Err(StoreError::Rejected(format!("empty range {r:?}")));
            }
            request = request.range(format!("bytes={}-{}", r.start, r.end - 1));
        }
        let out = request.send().await.map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                StoreError::not_found(Record::Blob, key)
            } else {
                sdk_failure(e)
            }
        })?;
        let length = out.content_length().unwrap_or_default().max(0) as u64;
        let total_size = out
            .content_range()
            .and_then(|cr| cr.rsplit_once('/'))
            .and_then(|(_, total)| total.parse().ok())
            .unwrap_or(length);
        let range = range.unwrap_or(0..total_size);
        let stream = ReaderStream::with_capacity(out.body.into_async_read(), 64 << 10).boxed();
        Ok(BlobBody {
            total_size,
            range,
            stream,
        })
    }

    async fn head(&self, key: &str) -> StoreResult<u64> {
        let out = self.head_object(key, false).await?;
        Ok(out.content_length().unwrap_or_default().max(0) as u64)
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(())
    }

    async fn promote(&self, from: &str, to: &str) -> StoreResult<()> {
        // A server-side copy: no bytes pass through here.
        let size = self.head(from).await?;
        let copied = if size > self.copy_part_size {
            self.copy_in_parts(from, to, size).await
        } else {
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .copy_source(format!("{}/{from}", self.bucket))
                .key(to)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| not_found_if(e, "NoSuchKey", Record::Blob, from))
        };
        if let Err(e) = copied {
            // A copy whose answer was lost may be there even so: nothing would name it.
            if let Err(cleanup) = self.delete(to).await {
                tracing::error!(key = to, error = %cleanup, "could not remove the copy of a failed move");
            }
            return Err(e);
        }
        Ok(())
    }

    async fn seal(&self, key: &str) -> StoreResult<()> {
        // An empty object where the staged one was: the write-once URL (`If-None-Match: *`)
        // is refused from now on. The lifecycle rule removes it with the other staged objects.
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(0)
            .body(S3Body::from(Bytes::new()))
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(())
    }

    async fn expire_staged(&self, _older_than: Duration) -> StoreResult<usize> {
        // The bucket's lifecycle rules do this on S3 (template.yaml: `expire-staged-uploads`
        // and `abort-incomplete-multipart-uploads`, after StagedUploadExpiryDays).
        Ok(0)
    }

    fn location(&self) -> BlobLocation {
        BlobLocation::ObjectStorage
    }

    fn presign(&self) -> Option<&dyn Presign> {
        Some(self)
    }

    fn multipart(&self) -> Option<&dyn Multipart> {
        Some(self)
    }
}

#[async_trait]
impl Multipart for S3BlobStore {
    async fn start_multipart(&self, key: &str) -> StoreResult<String> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(sdk_failure)?;
        created
            .upload_id()
            .map(str::to_string)
            .ok_or_else(|| StoreError::backend(std::io::Error::other("no upload id")))
    }

    async fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        size: u64,
        ttl: Duration,
    ) -> StoreResult<Presigned> {
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part as i32)
            .content_length(size as i64)
            .presigned(PresigningConfig::expires_in(ttl).map_err(StoreError::backend)?)
            .await
            .map_err(StoreError::backend)?;
        Ok(presigned(request))
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> StoreResult<Vec<ReceivedPart>> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await
                .map_err(|e| not_found_if(e, "NoSuchUpload", Record::Upload, upload_id))?;
            parts.extend(out.parts().iter().filter_map(|p| {
                Some(ReceivedPart {
                    number: u32::try_from(p.part_number()?).ok()?,
                    size: p.size().unwrap_or_default().max(0) as u64,
                    etag: p.e_tag().map(str::to_string),
                })
            }));
            match (out.is_truncated(), out.next_part_number_marker()) {
                (Some(true), Some(next)) => marker = Some(next.to_string()),
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[ReceivedPart],
    ) -> StoreResult<()> {
        let completed = parts
            .iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(p.number as i32)
                    .set_e_tag(p.etag.clone())
                    .build()
            })
            .collect();
        self.finish_multipart(key, upload_id, completed).await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()> {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
        match aborted.map_err(|e| not_found_if(e, "NoSuchUpload", Record::Upload, upload_id)) {
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// `NotFound` when S3 answered the error `code` (`NoSuchKey`, `NoSuchUpload`), else a backend
/// failure.
fn not_found_if<E>(e: SdkError<E>, code: &str, what: Record, key: &str) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if e.as_service_error().is_some_and(|s| s.code() == Some(code)) {
        StoreError::not_found(what, key)
    } else {
        sdk_failure(e)
    }
}

fn presigned(request: PresignedRequest) -> Presigned {
    Presigned {
        url: request.uri().to_string(),
        headers: request
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}
