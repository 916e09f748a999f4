//! Why a use case did not succeed, in domain terms, and what it did not find.

use crate::auth::Denied;
use crate::domain::InvalidParams;
use crate::store::StoreError;

use super::SignedRefusal;

/// What a use case looked for and did not find (or may not reveal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// A package file to download, or a package by id.
    Package,
    /// A file of a package, by id (the package-files routes).
    PackageFile,
    Group,
    UploadSession,
    /// The blob a signed URL names.
    Blob,
    /// A located file deleted (and its bytes purged) before they were opened: locate again,
    /// an older duplicate may be the newest now.
    Overtaken,
    /// A user by id or name.
    User,
    /// A member of a project or group (the user exists, the membership does not).
    Member,
    /// A token by id (or one the caller may not see).
    Token,
    /// A trust rule by id.
    TrustRule,
    /// A package protection rule by id (in its project).
    ProtectionRule,
    /// A webhook by id (in its project).
    Hook,
    /// Webhooks at all: this store delivers events otherwise (EventBridge on AWS).
    Hooks,
    /// Anything else GitLab's bare `not_found!` answers for (`404 Not Found`).
    Resource,
}

/// Why a use case did not succeed, in domain terms: no status codes and no GitLab wording here
/// (`api::error` is the one place that turns each into GitLab's status and body).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid parameters: {0}")]
    Invalid(InvalidParams),
    #[error("denied: {0:?}")]
    Denied(Denied),
    #[error("{0:?} not found")]
    NotFound(Missing),
    #[error("the resource changed after If-Unmodified-Since")]
    PreconditionFailed,
    #[error("file is too large")]
    TooLarge,
    #[error("duplicate package is not allowed")]
    Duplicate,
    /// Upload sessions need a blob store that can presign URLs and take multipart uploads.
    #[error("this store cannot take uploads by URL")]
    UploadsUnsupported,
    /// A signed URL of the local store refused.
    #[error("signed request refused: {0:?}")]
    Signed(SignedRefusal),
    #[error("the request body ended early: {0}")]
    BodyFailed(std::io::Error),
    #[error("storage: {0}")]
    Store(#[source] StoreError),
    /// The record to create exists already (GitLab's 409 with this message).
    #[error("conflict: {0}")]
    Conflict(String),
    /// GitLab's `bad_request!(reason)`.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// GitLab's model validation failure: `{field: [message]}`.
    #[error("{field} {message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    /// GitLab's 422 of a refused rule: `{"message": {"error": ["<text>"]}}`.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// A package protection rule holds the push or delete back (403).
    #[error("package protected from {0:?}")]
    Protected(crate::domain::Protected),
    /// GitLab's `not_allowed!`.
    #[error("method not allowed")]
    NotAllowed,
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<Denied> for Error {
    fn from(d: Denied) -> Self {
        Error::Denied(d)
    }
}

impl From<InvalidParams> for Error {
    fn from(p: InvalidParams) -> Self {
        Error::Invalid(p)
    }
}

/// One invalid-parameter message (Grape's `{"error": ...}`) as an error.
pub fn invalid(message: &str) -> Error {
    let mut errors = InvalidParams::default();
    errors.push(message);
    Error::Invalid(errors)
}
