//! `depot push` and `depot pull`: the client for CI jobs. Small files go by one direct PUT (the
//! GitLab API); larger ones through an upload session (parallel parts straight to storage,
//! resumable); downloads follow the redirect to storage without the token and are checked
//! against `X-Checksum-SHA256` before the output file appears. Bodies stream from and to disk,
//! so memory stays bounded whatever the file size.

use futures::{StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, LOCATION};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

/// What went wrong, with the exit code a script can rely on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A local problem: a missing file, no token, an unwritable output (exit 1).
    #[error("{0}")]
    Local(String),
    /// The registry answered no (auth, validation, duplicate, not found) (exit 3).
    #[error("the registry refused: HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    /// The registry or storage could not be reached, or failed (exit 4).
    #[error("{0}")]
    Transport(String),
    /// The registry's storage is full (HTTP 507): not retried, since it fails the same way
    /// until space is freed (exit 4).
    #[error("the registry's storage is full: HTTP 507: {0}")]
    StorageFull(String),
    /// The bytes did not match their SHA-256 (exit 5).
    #[error("{0}")]
    Integrity(String),
}

impl ClientError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Local(_) => 1,
            ClientError::Refused { .. } => 3,
            ClientError::Transport(_) | ClientError::StorageFull(_) => 4,
            ClientError::Integrity(_) => 5,
        }
    }
}

fn transport(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

fn local(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Local(format!("{what}: {e}"))
}

/// The token and how it is sent: `--token` or `DEPOT_TOKEN` as `PRIVATE-TOKEN`, or a CI job's
/// `CI_JOB_TOKEN` as `JOB-TOKEN`.
#[derive(Clone)]
pub enum Auth {
    Private(String),
    Job(String),
}

impl Auth {
    /// The first of `--token`, `DEPOT_TOKEN`, `CI_JOB_TOKEN` that is set.
    pub fn resolve(flag: Option<String>) -> Option<Auth> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        flag.filter(|t| !t.is_empty())
            .or_else(|| env("DEPOT_TOKEN"))
            .map(Auth::Private)
            .or_else(|| env("CI_JOB_TOKEN").map(Auth::Job))
    }

    fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        match self {
            Auth::Private(t) => request.header("PRIVATE-TOKEN", t),
            Auth::Job(t) => request.header("JOB-TOKEN", t),
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Private(_) => "Auth::Private(..)",
            Auth::Job(_) => "Auth::Job(..)",
        })
    }
}

/// Where a package file lives.
#[derive(Debug, Clone)]
pub struct Target {
    /// The registry's base URL (without `/api/v4`).
    pub url: String,
    /// Numeric id or full path.
    pub project: String,
    pub package: String,
    pub version: String,
    /// Directories before the file name, if any.
    pub path: Option<String>,
    pub file_name: String,
}

impl Target {
    fn file_url(&self) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let mut file = String::new();
        if let Some(dir) = self.path.as_deref().map(|p| p.trim_matches('/'))
            && !dir.is_empty()
        {
            file.push_str(dir);
            file.push('/');
        }
        file.push_str(&self.file_name);
        format!(
            "{}/api/v4/projects/{}/packages/generic/{}/{}/{}",
            self.url.trim_end_matches('/'),
            enc(&self.project),
            self.package,
            self.version,
            file
        )
    }
}

/// How `push` works.
#[derive(Debug, Clone)]
pub struct PushOptions {
    pub hidden: bool,
    /// Continue the interrupted session of this file, if there is one.
    pub resume: bool,
    /// Parts sent at once.
    pub jobs: usize,
    /// Files up to this size go by one direct PUT.
    pub direct_max: u64,
    /// Where open sessions are remembered for `--resume`.
    pub state_dir: PathBuf,
}

/// The default place for session state: `$DEPOT_STATE_DIR`, else `$XDG_STATE_HOME/depot`,
/// else `~/.local/state/depot`, else the temp dir.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DEPOT_STATE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("depot");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".local/state/depot");
    }
    std::env::temp_dir().join("depot-state")
}

/// Bytes moved so far: a bar on a terminal, plain lines (every part, or every 10%) otherwise.
struct Progress {
    total: u64,
    done: AtomicU64,
    bar: Option<indicatif::ProgressBar>,
    last_tenth: AtomicU64,
}

impl Progress {
    fn new(total: u64, what: &str) -> Arc<Self> {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(what.to_string());
            bar
        });
        if bar.is_none() {
            eprintln!("depot: {what} {}", human(total));
        }
        Arc::new(Self {
            total,
            done: AtomicU64::new(0),
            bar,
            last_tenth: AtomicU64::new(0),
        })
    }

    fn add(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let tenth = (done * 10).checked_div(self.total).unwrap_or(10);
                if self.last_tenth.fetch_max(tenth, Ordering::Relaxed) < tenth {
                    eprintln!(
                        "depot: {} of {} ({}%)",
                        human(done),
                        human(self.total),
                        tenth * 10
                    );
                }
            }
        }
    }

    fn sub(&self, n: u64) {
        self.done.fetch_sub(n, Ordering::Relaxed);
    }

    fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("depot: {line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn http_client() -> Result<Client, ClientError> {
    Client::builder()
        // Redirects are followed by hand, without the token.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(30))
        .user_agent(concat!("depot/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(transport)
}

/// A refusal from an answer that is not a success: GitLab's `message` or `error`.
async fn refusal(response: Response) -> ClientError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("error"))
                .map(|m| m.as_str().map(str::to_string).unwrap_or(m.to_string()))
        })
        .unwrap_or_else(|| body.chars().take(300).collect());
    if status == StatusCode::INSUFFICIENT_STORAGE {
        ClientError::StorageFull(message)
    } else if status.is_server_error() {
        ClientError::Transport(format!("HTTP {}: {message}", status.as_u16()))
    } else {
        ClientError::Refused {
            status: status.as_u16(),
            message,
        }
    }
}

/// SHA-256 (hex) and size of a file, streamed.
pub async fn hash_file(path: &Path) -> Result<(String, u64), ClientError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| local(&path.display().to_string(), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| local(&path.display().to_string(), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// PUT `size` bytes of `path` from `offset` to `url` with `headers`, streamed from disk.
#[allow(clippy::too_many_arguments)]
async fn put_range(
    client: &Client,
    url: &str,
    headers: &[(String, String)],
    auth: Option<&Auth>,
    path: &Path,
    offset: u64,
    size: u64,
    progress: &Arc<Progress>,
) -> Result<Response, ClientError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| local(&path.display().to_string(), e))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| local(&path.display().to_string(), e))?;
    let sent = Arc::new(AtomicU64::new(0));
    let (p, s) = (progress.clone(), sent.clone());
    let body = ReaderStream::with_capacity(file.take(size), 256 << 10).inspect_ok(move |chunk| {
        p.add(chunk.len() as u64);
        s.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    });
    let mut request = client
        .put(url)
        .header(CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(body));
    for (k, v) in headers {
        if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("host") {
            request = request.header(k, v);
        }
    }
    if let Some(auth) = auth {
        request = auth.apply(request);
    }
    let result = request.send().await.map_err(transport);
    if !matches!(&result, Ok(r) if r.status().is_success()) {
        progress.sub(sent.load(Ordering::Relaxed));
    }
    result
}

/// One presigned request from a session's JSON.
fn request_of(v: &Value) -> Result<(String, Vec<(String, String)>), ClientError> {
    let url = v["url"]
        .as_str()
        .ok_or_else(|| ClientError::Transport(format!("no URL in the session answer: {v}")))?
        .to_string();
    let headers = v["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok((url, headers))
}

/// A request sent up to 3 times while the failure is the network's or the server's.
async fn with_retries<F, Fut>(
    what: &str,
    progress: &Progress,
    mut send: F,
) -> Result<(), ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Response, ClientError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => refusal(r).await,
            Err(e) => e,
        };
        let retry = matches!(error, ClientError::Transport(_)) && attempt < 3;
        if !retry {
            return Err(error);
        }
        progress.note(&format!("{what} failed ({error}); retrying"));
        tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
    }
}

/// What is remembered of an open session, for `--resume`.
fn state_file(dir: &Path, target: &Target, size: u64, sha256: &str) -> PathBuf {
    let key = format!(
        "{}\n{}\n{}\n{}\n{:?}\n{}\n{size}\n{sha256}",
        target.url, target.project, target.package, target.version, target.path, target.file_name
    );
    let digest = hex::encode(&Sha256::digest(key.as_bytes())[..12]);
    dir.join(format!("upload-{digest}.json"))
}

/// Publish `file` at `target`. The package file record (GitLab's JSON) on success.
pub async fn push(
    file: &Path,
    target: &Target,
    auth: &Auth,
    options: &PushOptions,
) -> Result<Value, ClientError> {
    let client = http_client()?;
    let size = tokio::fs::metadata(file)
        .await
        .map_err(|e| local(&file.display().to_string(), e))?
        .len();
    let file_url = target.file_url();
    if size <= options.direct_max && !options.resume {
        let progress = Progress::new(size, &format!("uploading {}", target.file_name));
        let mut url = format!("{file_url}?select=package_file");
        if options.hidden {
            url.push_str("&status=hidden");
        }
        let response = put_range(&client, &url, &[], Some(auth), file, 0, size, &progress).await?;
        progress.finish();
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        return response.json().await.map_err(transport);
    }

    let (sha256, hashed_size) = hash_file(file).await?;
    if hashed_size != size {
        return Err(ClientError::Local(format!(
            "{} changed while it was read",
            file.display()
        )));
    }
    let state = state_file(&options.state_dir, target, size, &sha256);
    let uploads = format!("{file_url}/uploads");
    // Resume the remembered session while it can still take bytes.
    let mut session: Option<Value> = None;
    if options.resume
        && let Ok(saved) = std::fs::read_to_string(&state)
        && let Ok(saved) = serde_json::from_str::<Value>(&saved)
        && let Some(id) = saved["id"].as_str()
    {
        let response = auth
            .apply(client.get(format!("{uploads}/{id}")))
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if status == StatusCode::OK || status == StatusCode::ACCEPTED {
            let shown: Value = response.json().await.map_err(transport)?;
            match shown["state"].as_str() {
                Some("committed") => {
                    let _ = std::fs::remove_file(&state);
                    return Ok(shown["package_file"].clone());
                }
                Some("pending") | Some("committing") => {
                    eprintln!(
                        "depot: resuming upload session {id} ({} part(s) already received)",
                        shown["parts"].as_array().map_or(0, Vec::len)
                    );
                    session = Some(shown);
                }
                _ => {}
            }
        }
    }
    let session = match session {
        Some(s) => s,
        None => {
            let mut declared = json!({"size": size, "sha256": sha256});
            if options.hidden {
                declared["status"] = json!("hidden");
            }
            let response = auth
                .apply(client.post(&uploads))
                .json(&declared)
                .send()
                .await
                .map_err(transport)?;
            if response.status() != StatusCode::CREATED {
                return Err(refusal(response).await);
            }
            let opened: Value = response.json().await.map_err(transport)?;
            if let Some(parent) = state.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let remembered = json!({"id": opened["id"], "file": file.display().to_string()});
            if let Err(e) = std::fs::write(&state, remembered.to_string()) {
                eprintln!("depot: cannot remember the session for --resume: {e}");
            }
            opened
        }
    };
    let id = session["id"].as_str().unwrap_or_default().to_string();

    // Send what is missing.
    let progress = Progress::new(size, &format!("uploading {}", target.file_name));
    let received: u64 = session["parts"]
        .as_array()
        .map(|parts| parts.iter().filter_map(|p| p["size"].as_u64()).sum())
        .unwrap_or(0);
    progress.add(received.min(size));
    let upload = &session["upload"];
    if let Some(parts) = upload["parts"].as_array() {
        let part_size = upload["part_size"]
            .as_u64()
            .or_else(|| session["part_size"].as_u64())
            .unwrap_or(size.max(1));
        let total = size.div_ceil(part_size.max(1)).max(1);
        let mut sends = Vec::new();
        for part in parts {
            let number = part["part_number"].as_u64().unwrap_or(0);
            let part_len = part["size"].as_u64().unwrap_or(0);
            let (url, headers) = request_of(part)?;
            let (client, progress) = (client.clone(), progress.clone());
            let file = file.to_path_buf();
            sends.push(async move {
                let offset = (number.max(1) - 1) * part_size;
                with_retries(&format!("part {number}"), &progress, || {
                    put_range(
                        &client, &url, &headers, None, &file, offset, part_len, &progress,
                    )
                })
                .await?;
                progress.note(&format!("part {number} of {total} sent"));
                Ok::<_, ClientError>(())
            });
        }
        futures::stream::iter(sends)
            .buffer_unordered(options.jobs.max(1))
            .try_collect::<Vec<_>>()
            .await?;
    } else if upload.is_object() {
        let (url, headers) = request_of(upload)?;
        with_retries("upload", &progress, || {
            put_range(&client, &url, &headers, None, file, 0, size, &progress)
        })
        .await?;
    }
    progress.finish();

    // Commit, then wait while it is in progress.
    let mut response = auth
        .apply(client.post(format!("{uploads}/{id}/complete")))
        .send()
        .await
        .map_err(transport)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30 * 60);
    loop {
        let status = response.status();
        if !(status == StatusCode::OK || status == StatusCode::ACCEPTED) {
            let error = refusal(response).await;
            if matches!(error, ClientError::Refused { .. }) {
                let _ = std::fs::remove_file(&state);
            }
            return Err(error);
        }
        let shown: Value = response.json().await.map_err(transport)?;
        match shown["state"].as_str() {
            Some("committed") => {
                let _ = std::fs::remove_file(&state);
                return Ok(shown["package_file"].clone());
            }
            Some("aborted") => {
                let _ = std::fs::remove_file(&state);
                return Err(ClientError::Refused {
                    status: 409,
                    message: format!("upload session {id} was aborted"),
                });
            }
            _ if shown.get("upload").is_some() => {
                return Err(ClientError::Transport(format!(
                    "upload session {id} is still missing bytes; run again with --resume"
                )));
            }
            _ => {}
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ClientError::Transport(format!(
                "upload session {id} was not committed in time; run again with --resume"
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        response = auth
            .apply(client.get(format!("{uploads}/{id}")))
            .send()
            .await
            .map_err(transport)?;
    }
}

/// Removes a partial download unless it was kept.
struct Partial {
    path: PathBuf,
    keep: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Download `target` to `out`, checked against the registry's SHA-256; nothing is left at
/// `out` (or beside it) unless the bytes match. `{"file", "size", "sha256"}` on success.
pub async fn pull(target: &Target, auth: Option<&Auth>, out: &Path) -> Result<Value, ClientError> {
    let client = http_client()?;
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
    let total = response.content_length().unwrap_or(0);
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    let mut partial = Partial {
        path: dir.join(format!(
            ".{name}.depot-partial-{}",
            hex::encode(rand::random::<[u8; 4]>())
        )),
        keep: false,
    };
    let mut writer = tokio::io::BufWriter::with_capacity(
        1 << 20,
        tokio::fs::File::create(&partial.path)
            .await
            .map_err(|e| local(&partial.path.display().to_string(), e))?,
    );
    let progress = Progress::new(total, &format!("downloading {}", target.file_name));
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
            .map_err(|e| local(&partial.path.display().to_string(), e))?;
        progress.add(chunk.len() as u64);
    }
    progress.finish();
    writer
        .flush()
        .await
        .map_err(|e| local(&partial.path.display().to_string(), e))?;
    drop(writer);
    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        return Err(ClientError::Integrity(format!(
            "the download's SHA-256 is {actual}, but the registry recorded {expected}; nothing was written"
        )));
    }
    tokio::fs::rename(&partial.path, out)
        .await
        .map_err(|e| local(&out.display().to_string(), e))?;
    partial.keep = true;
    Ok(json!({"file": out.display().to_string(), "size": size, "sha256": actual}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many times `with_retries` sends when every answer has `status`.
    async fn sends_for(status: u16) -> (u32, ClientError) {
        let progress = Progress::new(1, "test");
        let mut sent = 0;
        let error = with_retries("upload", &progress, || {
            sent += 1;
            let answer = axum::http::Response::builder()
                .status(status)
                .body(format!(r#"{{"message":"{status} from the registry"}}"#))
                .unwrap();
            std::future::ready(Ok(Response::from(answer)))
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
}
