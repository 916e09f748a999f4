//! `depot pull`: download a package file, following a redirect to storage without the token,
//! into a partial file beside the output that becomes the output only once its SHA-256 matches
//! the registry's `X-Checksum-SHA256`.

use super::progress::Progress;
use super::{Auth, ClientError, Target, http_client, local, refusal, transport};
use futures::StreamExt;
use reqwest::header::LOCATION;
use reqwest::{Client, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// What `depot pull` prints: where the verified file is, its size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pulled {
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

/// Removes a partial download unless it was kept.
struct Partial {
    path: PathBuf,
    keep: bool,
}

impl Partial {
    /// A new name beside `out`, hidden, that no other pull picks.
    fn beside(out: &Path) -> Self {
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "download".into());
        let suffix = hex::encode(rand::random::<[u8; 4]>());
        Self {
            path: dir.join(format!(".{name}.depot-partial-{suffix}")),
            keep: false,
        }
    }

    fn failed(&self, e: impl std::fmt::Display) -> ClientError {
        local(&self.path.display().to_string(), e)
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Download `target` to `out`, checked against the registry's SHA-256; nothing is left at
/// `out` (or beside it) unless the bytes match.
pub async fn pull(target: &Target, auth: Option<&Auth>, out: &Path) -> Result<Pulled, ClientError> {
    let client = http_client()?;
    let (response, expected) = fetch(&client, target, auth).await?;
    let mut partial = Partial::beside(out);
    let file = tokio::fs::File::create(&partial.path)
        .await
        .map_err(|e| partial.failed(e))?;
    let total = response.content_length().unwrap_or(0);
    let progress = Progress::new(total, &format!("downloading {}", target.file_name));
    let (size, actual) = save(response, file, &partial, &progress).await?;
    progress.finish();
    if actual != expected {
        return Err(ClientError::Integrity(format!(
            "the download's SHA-256 is {actual}, but the registry recorded {expected}; nothing was written"
        )));
    }
    tokio::fs::rename(&partial.path, out)
        .await
        .map_err(|e| local(&out.display().to_string(), e))?;
    partial.keep = true;
    Ok(Pulled {
        file: out.display().to_string(),
        size,
        sha256: actual,
    })
}

/// The answer carrying the bytes (the registry's, or storage's after its redirect) and the
/// SHA-256 the registry recorded for them.
async fn fetch(
    client: &Client,
    target: &Target,
    auth: Option<&Auth>,
) -> Result<(Response, String), ClientError> {
    let mut request = client.get(target.file_url());
    if let Some(auth) = auth {
        request = auth.apply(request);
    }
    let first = request.send().await.map_err(transport)?;
    let checksum = first
        .headers()
        .get("x-checksum-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let response = if first.status().is_redirection() {
        let location = first
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Transport("a redirect without Location".into()))?
            .to_string();
        // Storage's presigned URL: no token goes there.
        client.get(location).send().await.map_err(transport)?
    } else {
        first
    };
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let Some(expected) = checksum else {
        return Err(ClientError::Integrity(
            "the registry sent no X-Checksum-SHA256 to verify the download against".into(),
        ));
    };
    Ok((response, expected))
}

/// Stream the body into `file` (at `partial`), hashing it: its size and SHA-256 (hex).
async fn save(
    response: Response,
    file: tokio::fs::File,
    partial: &Partial,
    progress: &Progress,
) -> Result<(u64, String), ClientError> {
    let mut writer = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(transport)?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        writer
            .write_all(&chunk)
            .await
            .map_err(|e| partial.failed(e))?;
        progress.add(chunk.len() as u64);
    }
    writer.flush().await.map_err(|e| partial.failed(e))?;
    Ok((size, hex::encode(hasher.finalize())))
}
