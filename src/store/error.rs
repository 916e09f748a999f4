//! What a store can answer instead of a value: errors that say what was looked for and which
//! kind of failure it was, so callers (the registry, `depot admin`) can word each for their
//! audience.

use super::blob::Declared;
use std::fmt;

/// The kind of record or object an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    Group,
    Project,
    User,
    Membership,
    Token,
    TrustRule,
    ProtectionRule,
    CleanupPolicy,
    Settings,
    Package,
    File,
    UploadSession,
    Hook,
    Blob,
    /// A part of a multipart upload.
    Upload,
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Record::Group => "group",
            Record::Project => "project",
            Record::User => "user",
            Record::Membership => "membership",
            Record::Token => "token",
            Record::Hook => "hook",
            Record::TrustRule => "trust rule",
            Record::ProtectionRule => "package protection rule",
            Record::CleanupPolicy => "cleanup policy",
            Record::Settings => "settings",
            Record::Package => "package",
            Record::File => "package file",
            Record::UploadSession => "upload session",
            Record::Blob => "blob",
            Record::Upload => "multipart upload",
        })
    }
}

/// Errors every store speaks, whatever is behind it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Nothing is stored under `key`.
    #[error("{what} {key:?} not found")]
    NotFound { what: Record, key: String },
    /// Something is stored under `key` already (or, for a publish, a live file of that name).
    #[error("{what} {key:?} already exists")]
    AlreadyExists { what: Record, key: String },
    /// The body grew past the allowed size while it was being stored.
    #[error("body exceeds the size limit")]
    TooLarge,
    /// The body was not what its writer declared (its size or its SHA-256); nothing was kept.
    #[error("the body's {} is not the declared one", match .0 { Declared::Size => "size", Declared::Sha256 => "SHA-256" })]
    NotAsDeclared(Declared),
    /// The body stream failed (client went away); nothing was kept.
    #[error("body stream failed: {0}")]
    BodyFailed(std::io::Error),
    /// The caller asked for something the store cannot do as asked (a parent group that does
    /// not exist, an empty range, a malformed key). Nothing changed.
    #[error("{0}")]
    Rejected(String),
    /// Stored data that does not decode: written by a bug or changed by hand. `key` names the
    /// stored item or row.
    #[error("corrupt record {key}: {detail}")]
    Corrupt { key: String, detail: String },
    /// A write kept losing races (or being throttled) and the store gave up; trying again
    /// later may work.
    #[error("gave up after {attempts} attempts: {what}")]
    Contention { what: String, attempts: u32 },
    /// The store is not set up as depot needs (a table missing or not active, no URL signer).
    #[error("the store is misconfigured: {0}")]
    Misconfigured(String),
    /// The disk (or the user's quota) is full: nothing was kept, and trying again will fail the
    /// same way until space is freed.
    #[error("storage is full: {0}")]
    Full(Box<dyn std::error::Error + Send + Sync>),
    /// The service behind the store throttled, failed on its side, timed out or dropped the
    /// connection, and kept doing so through the client's retries: trying again later may
    /// work. The request `operation` names may or may not have taken effect.
    #[error("{operation} failed, the service is unavailable: {source}")]
    Unavailable {
        operation: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("storage backend: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// A backend failure; `Full` when it is (or wraps) an I/O error saying the disk or the
    /// quota is full.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        if is_storage_full(&e) {
            StoreError::Full(Box::new(e))
        } else {
            StoreError::Backend(Box::new(e))
        }
    }

    pub fn not_found(what: Record, key: impl fmt::Display) -> Self {
        StoreError::NotFound {
            what,
            key: key.to_string(),
        }
    }

    pub fn already_exists(what: Record, key: impl fmt::Display) -> Self {
        StoreError::AlreadyExists {
            what,
            key: key.to_string(),
        }
    }

    pub fn corrupt(key: impl fmt::Display, detail: impl fmt::Display) -> Self {
        StoreError::Corrupt {
            key: key.to_string(),
            detail: detail.to_string(),
        }
    }

    /// A publish refused because the claim on the upload session it commits is no longer
    /// held (another committer may have taken over).
    pub fn claim_lost(session_id: &str) -> Self {
        StoreError::Contention {
            what: format!("upload session {session_id}: the commit's claim is no longer held"),
            attempts: 1,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    pub fn is_already_exists(&self) -> bool {
        matches!(self, StoreError::AlreadyExists { .. })
    }

    /// Is this a failure that trying again later may cure (the service unavailable, or a
    /// write that kept losing races)?
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Contention { .. }
        )
    }
}

/// True when `e`, or an error it wraps, is ENOSPC or EDQUOT.
fn is_storage_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{QuotaExceeded, StorageFull};
            if matches!(io.kind(), StorageFull | QuotaExceeded) {
                return true;
            }
        }
        next = e.source();
    }
    false
}

pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_apart_from_other_failures() {
        use std::io::Write;
        // The kernel's own ENOSPC: every write to /dev/full fails with it.
        let mut full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let enospc = full.write_all(&[0u8; 4096]).unwrap_err();
        assert_eq!(enospc.raw_os_error(), Some(28), "{enospc}");
        assert!(matches!(StoreError::backend(enospc), StoreError::Full(_)));
        let quota = std::io::Error::from(std::io::ErrorKind::QuotaExceeded);
        assert!(matches!(StoreError::backend(quota), StoreError::Full(_)));
        // Wrapped, as a failed persist of a temporary file wraps it.
        #[derive(Debug, thiserror::Error)]
        #[error("persisting failed")]
        struct Wrapper(#[source] std::io::Error);
        let wrapped = Wrapper(std::io::Error::from_raw_os_error(28));
        assert!(matches!(StoreError::backend(wrapped), StoreError::Full(_)));
        // Anything else stays a plain backend failure.
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(matches!(
            StoreError::backend(denied),
            StoreError::Backend(_)
        ));
    }

    #[test]
    fn errors_say_what_was_looked_for() {
        let e = StoreError::not_found(Record::Project, "acme/tools");
        assert_eq!(e.to_string(), "project \"acme/tools\" not found");
        assert!(e.is_not_found() && !e.is_already_exists());
        let e = StoreError::corrupt("TOKENID#7/TOKEN", "scopes do not parse");
        assert_eq!(
            e.to_string(),
            "corrupt record TOKENID#7/TOKEN: scopes do not parse"
        );
    }
}
