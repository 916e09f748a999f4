//! Sending a file's bytes: a byte range streamed from disk in one PUT, retried while the failure
//! is the network's or the server's, and an upload session's plan (one presigned PUT, or its
//! missing parts a few at a time).

use super::progress::Progress;
use super::{Auth, ClientError, local, refusal, transport};
use crate::wire::{PartsPlan, SentPart, UploadPlan, UploadRequest};
use futures::{StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, ETAG};
use reqwest::{Client, Response};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

/// How many times a request is sent while it fails with a transport error.
const ATTEMPTS: u64 = 3;

/// Sends ranges of one file, counting them in its progress.
#[derive(Clone)]
pub(super) struct FileSender {
    pub client: Client,
    pub file: PathBuf,
    pub progress: Arc<Progress>,
}

impl FileSender {
    /// PUT `size` bytes from `offset` to `url` with `headers` (and the token, to the registry
    /// only); the bytes of a request that fails are taken back from the progress.
    pub(super) async fn put(
        &self,
        url: &str,
        headers: &BTreeMap<String, String>,
        auth: Option<&Auth>,
        offset: u64,
        size: u64,
    ) -> Result<Response, ClientError> {
        let path = &self.file;
        let failed = |e| local(&path.display().to_string(), e);
        let mut file = tokio::fs::File::open(path).await.map_err(failed)?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(failed)?;
        let sent = Arc::new(AtomicU64::new(0));
        let (p, s) = (self.progress.clone(), sent.clone());
        let body = ReaderStream::with_capacity(file.take(size), 256 << 10).inspect_ok(move |c| {
            p.add(c.len() as u64);
            s.fetch_add(c.len() as u64, Ordering::Relaxed);
        });
        let mut request = self
            .client
            .put(url)
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(body));
        for (k, v) in headers {
            // Set by the client from the body and the URL.
            if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("host") {
                request = request.header(k, v);
            }
        }
        if let Some(auth) = auth {
            request = auth.apply(request);
        }
        let result = request.send().await.map_err(transport);
        if !matches!(&result, Ok(r) if r.status().is_success()) {
            self.progress.sub(sent.load(Ordering::Relaxed));
        }
        result
    }

    /// PUT one presigned request's range, with retries; the `ETag` storage answered, if any.
    /// A spent URL (409 from the local store, 412 from S3's write-once condition) means the
    /// bytes arrived already (an earlier attempt whose answer was lost) or the session is
    /// final: the commit that follows tells which.
    async fn put_presigned(
        &self,
        what: &str,
        request: &UploadRequest,
        offset: u64,
        size: u64,
    ) -> Result<Option<String>, ClientError> {
        let sent = with_retries(what, &self.progress, || {
            self.put(&request.url, &request.headers, None, offset, size)
        })
        .await;
        match sent {
            Ok(answer) => Ok(answer
                .headers()
                .get(ETAG)
                .and_then(|e| e.to_str().ok())
                .map(str::to_string)),
            Err(ClientError::Refused {
                status: 409 | 412, ..
            }) => {
                self.progress.add(size);
                self.progress
                    .note(&format!("{what}: the store has these bytes already"));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// A request sent up to [`ATTEMPTS`] times while the failure is the network's or the server's.
pub(super) async fn with_retries<F, Fut>(
    what: &str,
    progress: &Progress,
    mut send: F,
) -> Result<Response, ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Response, ClientError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match send().await {
            Ok(r) if r.status().is_success() => return Ok(r),
            Ok(r) => refusal(r).await,
            Err(e) => e,
        };
        let retry = matches!(error, ClientError::Transport(_)) && attempt < ATTEMPTS;
        if !retry {
            return Err(error);
        }
        progress.note(&format!("{what} failed ({error}); retrying"));
        tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
    }
}

/// Send what a session's plan asks for: the whole file (`size` bytes) in one PUT, or the
/// parts still missing, `jobs` at a time. No plan: nothing is missing. Returns every part of
/// a multipart upload with the `ETag` storage answered for it, when this call sent them all
/// and each answer had one: `complete` then need not ask storage for the list.
pub(super) async fn send_plan(
    sender: &FileSender,
    plan: Option<&UploadPlan>,
    size: u64,
    jobs: usize,
) -> Result<Vec<SentPart>, ClientError> {
    match plan {
        Some(UploadPlan::Single(request)) => {
            sender.put_presigned("upload", request, 0, size).await?;
            Ok(Vec::new())
        }
        Some(UploadPlan::Parts(plan)) => send_parts(sender, plan, size, jobs).await,
        None => Ok(Vec::new()),
    }
}

async fn send_parts(
    sender: &FileSender,
    plan: &PartsPlan,
    size: u64,
    jobs: usize,
) -> Result<Vec<SentPart>, ClientError> {
    if plan.part_size == 0 {
        return Err(ClientError::Transport(
            "the registry's upload plan has parts of 0 bytes".into(),
        ));
    }
    let total = size.div_ceil(plan.part_size).max(1);
    let sends = plan.parts.iter().map(|part| async move {
        let number = part.part_number;
        let offset = part_offset(number, plan.part_size);
        let what = format!("part {number}");
        let etag = sender
            .put_presigned(&what, &part.request, offset, part.size)
            .await?;
        sender
            .progress
            .note(&format!("part {number} of {total} sent"));
        Ok::<_, ClientError>(etag.map(|etag| SentPart {
            part_number: number,
            etag,
        }))
    });
    let sent: Vec<Option<SentPart>> = futures::stream::iter(sends)
        .buffer_unordered(jobs.max(1))
        .try_collect()
        .await?;
    let every = sent.len() as u64 == total && sent.iter().all(Option::is_some);
    Ok(if every {
        sent.into_iter().flatten().collect()
    } else {
        Vec::new()
    })
}

/// Where part `number` (counted from 1) starts in the file.
fn part_offset(number: u32, part_size: u64) -> u64 {
    u64::from(number).saturating_sub(1) * part_size
}

#[cfg(test)]
mod tests {
    use super::super::tests::answer;
    use super::*;

    /// How many times `with_retries` sends when every answer has `status`.
    async fn sends_for(status: u16) -> (u32, ClientError) {
        let progress = Progress::new(1, "test");
        let mut sent = 0;
        let error = with_retries("upload", &progress, || {
            sent += 1;
            let body = format!(r#"{{"message":"{status} from the registry"}}"#);
            std::future::ready(Ok(answer(status, &body)))
        })
        .await
        .unwrap_err();
        (sent, error)
    }

    #[tokio::test]
    async fn a_full_registry_is_not_retried_other_server_errors_are() {
        let (sent, error) = sends_for(507).await;
        assert_eq!(sent, 1);
        assert!(matches!(error, ClientError::StorageFull(_)), "{error}");
        assert_eq!(error.exit_code(), 4);
        assert!(error.to_string().contains("storage is full"), "{error}");
        let (sent, error) = sends_for(503).await;
        assert_eq!(sent, 3);
        assert!(matches!(error, ClientError::Transport(_)), "{error}");
        let (sent, error) = sends_for(403).await;
        assert_eq!(sent, 1);
        assert_eq!(error.exit_code(), 3);
    }

    #[test]
    fn parts_start_where_the_previous_ones_end() {
        assert_eq!(part_offset(1, 8 << 20), 0);
        assert_eq!(part_offset(3, 8 << 20), 16 << 20);
    }
}
