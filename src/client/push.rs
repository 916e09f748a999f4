//! `depot push`: a file up to `--direct-max` goes by one direct PUT (GitLab's API, answered with
//! the package-file record); a larger one, or any `--resume`, through an upload session whose
//! missing bytes go straight to storage before it is committed.

use super::parts::{FileSender, send_plan};
use super::progress::Progress;
use super::sessions::{Resumed, Sessions};
use super::{Auth, ClientError, Target, http_client, local, read_answer, refusal};
use crate::wire::{OpenUpload, PackageFileRecord, SentPart, UploadSessionBody};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;

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

/// SHA-256 (hex) and size of a file, streamed.
pub async fn hash_file(path: &Path) -> Result<(String, u64), ClientError> {
    let failed = |e| local(&path.display().to_string(), e);
    let mut file = tokio::fs::File::open(path).await.map_err(failed)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).await.map_err(failed)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Publish `file` at `target`: the package-file record on success.
pub async fn push(
    file: &Path,
    target: &Target,
    auth: &Auth,
    options: &PushOptions,
) -> Result<PackageFileRecord, ClientError> {
    let client = http_client()?;
    let size = tokio::fs::metadata(file)
        .await
        .map_err(|e| local(&file.display().to_string(), e))?
        .len();
    let sender = |progress| FileSender {
        client: client.clone(),
        file: file.to_path_buf(),
        progress,
    };
    let uploading = format!("uploading {}", target.file_name);
    if size <= options.direct_max && !options.resume {
        let sender = sender(Progress::new(size, &uploading));
        return put_direct(&sender, target, auth, size, options.hidden).await;
    }
    let sha256 = hash_unchanged(file, size).await?;
    let sessions = Sessions::new(&client, auth, target, &options.state_dir, size, &sha256);
    let session = match open_or_resume(&sessions, file, size, &sha256, options).await? {
        Resumed::Committed(record) => return Ok(record),
        Resumed::Open(session) => session,
    };
    let sender = sender(Progress::new(size, &uploading));
    let sent = send_missing(&sender, &session, size, options.jobs).await?;
    sessions.commit(&session.id, sent).await
}

/// One PUT to the GitLab route, asking for the package-file record back.
async fn put_direct(
    sender: &FileSender,
    target: &Target,
    auth: &Auth,
    size: u64,
    hidden: bool,
) -> Result<PackageFileRecord, ClientError> {
    let mut url = format!("{}?select=package_file", target.file_url());
    if hidden {
        url.push_str("&status=hidden");
    }
    let response = sender
        .put(&url, &BTreeMap::new(), Some(auth), 0, size)
        .await?;
    sender.progress.finish();
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    read_answer(response, "a package-file record").await
}

/// The file's SHA-256, refused if the file changed size since it was measured.
async fn hash_unchanged(file: &Path, size: u64) -> Result<String, ClientError> {
    let (sha256, hashed_size) = hash_file(file).await?;
    if hashed_size != size {
        return Err(ClientError::Local(format!(
            "{} changed while it was read",
            file.display()
        )));
    }
    Ok(sha256)
}

/// With `--resume`, the remembered session while it can still take bytes (or its record, if it
/// was committed meanwhile); otherwise a new session for these bytes.
async fn open_or_resume(
    sessions: &Sessions<'_>,
    file: &Path,
    size: u64,
    sha256: &str,
    options: &PushOptions,
) -> Result<Resumed, ClientError> {
    if options.resume
        && let Some(resumed) = sessions.resume().await?
    {
        return Ok(resumed);
    }
    let declared = OpenUpload {
        size,
        sha256: Some(sha256.to_string()),
        status: options.hidden.then(|| "hidden".to_string()),
    };
    Ok(Resumed::Open(sessions.open(&declared, file).await?))
}

/// Send the bytes `session` still lacks; what it already holds counts as done. Returns the
/// parts sent with their `ETag`s when they are all of them (see [`send_plan`]).
async fn send_missing(
    sender: &FileSender,
    session: &UploadSessionBody,
    size: u64,
    jobs: usize,
) -> Result<Vec<SentPart>, ClientError> {
    let received: u64 = session.parts.iter().map(|p| p.size).sum();
    sender.progress.add(received.min(size));
    let sent = send_plan(sender, session.upload.as_ref(), size, jobs).await?;
    sender.progress.finish();
    Ok(sent)
}
