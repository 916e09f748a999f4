//! One file's upload sessions at one target: resuming the remembered one, opening a new one
//! (remembered in `upload-<digest>.json` for `--resume`), and committing it, waiting while the
//! registry commits. Every answer is read as a `wire::UploadSessionBody`.

use super::{Auth, ClientError, Target, read_answer, refusal, transport};
use crate::wire::{CompleteBody, OpenUpload, PackageFileRecord, SentPart, UploadSessionBody};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a commit is waited for before the push gives up (and `--resume` can wait again).
const COMMIT_WAIT: Duration = Duration::from_secs(30 * 60);
/// How often a committing session is read again.
const COMMIT_POLL: Duration = Duration::from_secs(1);

const SESSION: &str = "an upload session";

/// What is remembered of an open session, for `--resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Remembered {
    id: String,
    /// The local file, for a person reading the state directory.
    file: String,
}

/// Where the session for these bytes at `target` is remembered: one name per target, size and
/// digest, so a changed file never resumes another's session.
fn state_file(dir: &Path, target: &Target, size: u64, sha256: &str) -> PathBuf {
    let key = format!(
        "{}\n{}\n{}\n{}\n{:?}\n{}\n{size}\n{sha256}",
        target.url, target.project, target.package, target.version, target.path, target.file_name
    );
    let digest = hex::encode(&Sha256::digest(key.as_bytes())[..12]);
    dir.join(format!("upload-{digest}.json"))
}

/// A remembered session as the registry shows it now.
#[expect(clippy::large_enum_variant, reason = "one per push, moved once")]
pub(super) enum Resumed {
    /// It was committed meanwhile: the push is done.
    Committed(PackageFileRecord),
    /// It still takes bytes.
    Open(UploadSessionBody),
}

pub(super) struct Sessions<'a> {
    client: &'a Client,
    auth: &'a Auth,
    /// `…/:file_name/uploads`.
    uploads: String,
    state: PathBuf,
}

impl<'a> Sessions<'a> {
    pub(super) fn new(
        client: &'a Client,
        auth: &'a Auth,
        target: &Target,
        state_dir: &Path,
        size: u64,
        sha256: &str,
    ) -> Self {
        Self {
            client,
            auth,
            uploads: format!("{}/uploads", target.file_url()),
            state: state_file(state_dir, target, size, sha256),
        }
    }

    async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        self.auth.apply(request).send().await.map_err(transport)
    }

    async fn show(&self, id: &str) -> Result<Response, ClientError> {
        self.send(self.client.get(format!("{}/{id}", self.uploads)))
            .await
    }

    /// The remembered session, if there is one the registry still shows as committed or taking
    /// bytes; otherwise a new one is opened.
    pub(super) async fn resume(&self) -> Result<Option<Resumed>, ClientError> {
        let Some(saved) = std::fs::read_to_string(&self.state)
            .ok()
            .and_then(|text| serde_json::from_str::<Remembered>(&text).ok())
        else {
            return Ok(None);
        };
        let response = self.show(&saved.id).await?;
        if !matches!(response.status(), StatusCode::OK | StatusCode::ACCEPTED) {
            return Ok(None);
        }
        let shown: UploadSessionBody = read_answer(response, SESSION).await?;
        Ok(match shown.state.as_str() {
            "committed" => Some(Resumed::Committed(self.committed(shown)?)),
            "pending" | "committing" => {
                eprintln!(
                    "depot: resuming upload session {} ({} part(s) already received)",
                    shown.id,
                    shown.parts.len()
                );
                Some(Resumed::Open(shown))
            }
            _ => None,
        })
    }

    /// Open a session for `declared` bytes of `file` and remember it.
    pub(super) async fn open(
        &self,
        declared: &OpenUpload,
        file: &Path,
    ) -> Result<UploadSessionBody, ClientError> {
        let response = self
            .send(self.client.post(&self.uploads).json(declared))
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(refusal(response).await);
        }
        let opened: UploadSessionBody = read_answer(response, SESSION).await?;
        self.remember(&Remembered {
            id: opened.id.clone(),
            file: file.display().to_string(),
        });
        Ok(opened)
    }

    /// Failing to remember only costs `--resume`, so it is a warning.
    fn remember(&self, session: &Remembered) {
        if let Some(parent) = self.state.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let written = serde_json::to_string(session)
            .map_err(std::io::Error::other)
            .and_then(|text| std::fs::write(&self.state, text));
        if let Err(e) = written {
            eprintln!("depot: cannot remember the session for --resume: {e}");
        }
    }

    fn forget(&self) {
        let _ = std::fs::remove_file(&self.state);
    }

    /// A committed session's package-file record; the session is forgotten.
    fn committed(&self, shown: UploadSessionBody) -> Result<PackageFileRecord, ClientError> {
        self.forget();
        shown.package_file.ok_or_else(|| {
            ClientError::Transport(format!(
                "upload session {} is committed, but the answer has no package_file",
                shown.id
            ))
        })
    }

    /// Commit session `id`, telling of the parts `sent` (if any: every part, with the `ETag`
    /// storage answered), then read it while the registry is still committing.
    pub(super) async fn commit(
        &self,
        id: &str,
        sent: Vec<SentPart>,
    ) -> Result<PackageFileRecord, ClientError> {
        let complete = self.client.post(format!("{}/{id}/complete", self.uploads));
        let complete = match sent.is_empty() {
            true => complete,
            false => complete.json(&CompleteBody { parts: sent }),
        };
        let mut response = self.send(complete).await?;
        let deadline = tokio::time::Instant::now() + COMMIT_WAIT;
        loop {
            if !matches!(response.status(), StatusCode::OK | StatusCode::ACCEPTED) {
                let error = refusal(response).await;
                if matches!(error, ClientError::Refused { .. }) {
                    self.forget();
                }
                return Err(error);
            }
            let shown: UploadSessionBody = read_answer(response, SESSION).await?;
            match shown.state.as_str() {
                "committed" => return self.committed(shown),
                "aborted" => {
                    self.forget();
                    return Err(ClientError::Refused {
                        status: 409,
                        message: format!("upload session {id} was aborted"),
                    });
                }
                _ if shown.upload.is_some() => {
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
            tokio::time::sleep(COMMIT_POLL).await;
            response = self.show(id).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            url: "http://127.0.0.1:8080".into(),
            project: "demo/app".into(),
            package: "big".into(),
            version: "1.0".into(),
            path: None,
            file_name: "data.bin".into(),
        }
    }

    #[test]
    fn the_resume_file_keeps_its_name_and_format() {
        // Sessions remembered by an earlier depot are still found and read.
        let path = state_file(Path::new("/s"), &target(), 3, "ab");
        assert_eq!(path, Path::new("/s/upload-3cca8d0714870ad585f14f83.json"));
        let mut other = target();
        other.path = Some("dir".into());
        assert_ne!(state_file(Path::new("/s"), &other, 3, "ab"), path);
        assert_ne!(state_file(Path::new("/s"), &target(), 4, "ab"), path);
        let saved = r#"{"id":"0123456789abcdef0123456789abcdef","file":"/tmp/data.bin"}"#;
        let read: Remembered = serde_json::from_str(saved).unwrap();
        assert_eq!(read.id, "0123456789abcdef0123456789abcdef");
        assert_eq!(serde_json::to_string(&read).unwrap(), saved);
    }
}
