//! `depot push` and `depot pull`: the client for CI jobs. This module owns what both share: the
//! errors and their exit codes, the token and how it is sent, the target's URL, the HTTP client,
//! and reading the registry's answers (its `wire` bodies, or a refusal) strictly. Small files go
//! by one direct PUT, larger ones through an upload session (`push`, `sessions`, `parts`);
//! downloads are checked before the output file appears (`pull`).

mod parts;
mod progress;
mod pull;
mod pull_all;
mod push;
mod sessions;

pub use pull::{Pulled, pull};
pub use pull_all::{PulledAll, pull_all};
pub use push::{PushOptions, default_state_dir, hash_file, push};

use crate::wire::{ErrorBody, Message};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// What went wrong, with the exit code a script can rely on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A local problem: a missing file, no token, an unwritable output (exit 1).
    #[error("{0}")]
    Local(String),
    /// The registry answered no (auth, validation, duplicate, not found) (exit 3).
    #[error("the registry refused: HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    /// The registry or storage could not be reached, failed, or answered something that is not
    /// what its API promises (exit 4).
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

fn http_client() -> Result<Client, ClientError> {
    Client::builder()
        // Redirects are followed by hand, without the token.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(30))
        .user_agent(concat!("depot/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(transport)
}

/// At most this much of an unexpected body is quoted in an error.
const QUOTED_BODY: usize = 300;

fn quoted(body: &str) -> String {
    body.chars().take(QUOTED_BODY).collect()
}

/// A successful answer's body as the `wire` type `T`; `what` names `T` for the error when the
/// body is something else (a proxy's page, another API), so nothing is silently defaulted.
async fn read_answer<T: DeserializeOwned>(
    response: Response,
    what: &str,
) -> Result<T, ClientError> {
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(transport)?;
    serde_json::from_slice(&body).map_err(|e| {
        ClientError::Transport(format!(
            "the registry's answer (HTTP {status}) is not {what}: {e}: {}",
            quoted(&String::from_utf8_lossy(&body))
        ))
    })
}

/// What a refusal says: GitLab's `{"message"}` or `{"error"}`, else the body itself (storage
/// answers in XML, a proxy in HTML).
fn refusal_text(body: &str) -> String {
    if let Ok(Message { message }) = serde_json::from_str(body) {
        return message;
    }
    if let Ok(ErrorBody { error, .. }) = serde_json::from_str(body) {
        return error;
    }
    quoted(body)
}

/// A refusal from an answer that is not a success.
async fn refusal(response: Response) -> ClientError {
    let status = response.status();
    let message = refusal_text(&response.text().await.unwrap_or_default());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::UploadSessionBody;

    pub(super) fn answer(status: u16, body: &str) -> Response {
        let answer = axum::http::Response::builder()
            .status(status)
            .body(body.to_string())
            .unwrap();
        Response::from(answer)
    }

    #[tokio::test]
    async fn an_answer_that_is_not_the_promised_body_says_what_was_expected() {
        let page = "<html>502 Bad Gateway</html>";
        let error = read_answer::<UploadSessionBody>(answer(200, page), "an upload session")
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::Transport(_)), "{error}");
        assert_eq!(error.exit_code(), 4);
        let text = error.to_string();
        assert!(text.contains("is not an upload session"), "{text}");
        assert!(text.contains(page), "{text}");
        // A session without its id is not a session.
        let no_id = r#"{"state":"pending","size":3,"parts":[]}"#;
        let error = read_answer::<UploadSessionBody>(answer(201, no_id), "an upload session")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("missing field"), "{error}");
    }

    #[tokio::test]
    async fn refusals_carry_gitlabs_message_or_error_or_the_body() {
        let refused = |status, body| async move { refusal(answer(status, body)).await };
        let error = refused(400, r#"{"message":"400 Bad request - Duplicate"}"#).await;
        assert!(
            matches!(&error, ClientError::Refused { status: 400, message } if message == "400 Bad request - Duplicate"),
            "{error}"
        );
        let error = refused(401, r#"{"error":"invalid_token","error_description":"x"}"#).await;
        assert!(
            matches!(&error, ClientError::Refused { status: 401, message } if message == "invalid_token"),
            "{error}"
        );
        let xml = "<Error><Code>AccessDenied</Code></Error>";
        let error = refused(403, xml).await;
        assert!(
            matches!(&error, ClientError::Refused { message, .. } if message == xml),
            "{error}"
        );
        let error = refused(507, r#"{"message":"507 Insufficient Storage"}"#).await;
        assert!(matches!(error, ClientError::StorageFull(_)), "{error}");
        let error = refused(502, "bad gateway").await;
        assert_eq!(error.to_string(), "HTTP 502: bad gateway");
    }
}
