//! Upload sessions of the presigned handoff (large files): where the file will live, what the
//! client declared, where the bytes are staged, and the session's state. A session commits at
//! most once: a committer first *claims* it (pending → committing, with a lease that lapses if
//! the committer dies), then *settles* it (committed, refused or aborted, all final).

use super::{FileName, PackageName, PackageStatus, PackageVersion, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// Waiting for the bytes and a commit.
    Pending,
    /// A committer holds the session until `until`; after that another may claim it.
    Committing { until: Timestamp },
    /// Published as this package file (final).
    Committed { package_id: i64, file_id: i64 },
    /// Refused at commit, for `reason` (final).
    Refused { reason: Refusal },
    /// Abandoned by the client (final).
    Aborted,
}

/// A committer's hold on an upload session, as its claim left it: the lease's end names the
/// claim. A publish that commits the session is refused once the claim is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaim {
    pub session_id: String,
    pub until: Timestamp,
}

impl SessionState {
    pub fn kind(&self) -> &'static str {
        match self {
            SessionState::Pending => "pending",
            SessionState::Committing { .. } => "committing",
            SessionState::Committed { .. } => "committed",
            SessionState::Refused { .. } => "refused",
            SessionState::Aborted => "aborted",
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self,
            SessionState::Committed { .. } | SessionState::Refused { .. } | SessionState::Aborted
        )
    }

    /// The state's fields as stored: (kind, package id, file id, reason, until).
    pub fn to_parts(&self) -> StateParts {
        let mut parts = StateParts {
            kind: self.kind().to_string(),
            ..StateParts::default()
        };
        match self {
            SessionState::Committing { until } => parts.until = Some(until.millis()),
            SessionState::Committed {
                package_id,
                file_id,
            } => {
                parts.package_id = Some(*package_id);
                parts.file_id = Some(*file_id);
            }
            SessionState::Refused { reason } => parts.reason = Some(reason.code().to_string()),
            SessionState::Pending | SessionState::Aborted => {}
        }
        parts
    }

    /// The state stored as `parts`; `None` if they do not make one.
    pub fn from_parts(parts: StateParts) -> Option<Self> {
        Some(match parts.kind.as_str() {
            "pending" => SessionState::Pending,
            "committing" => SessionState::Committing {
                until: Timestamp::from_millis(parts.until?),
            },
            "committed" => SessionState::Committed {
                package_id: parts.package_id?,
                file_id: parts.file_id?,
            },
            "refused" => SessionState::Refused {
                reason: match parts.legacy_status {
                    Some(status) => Refusal::from_legacy(status, parts.reason.as_deref()?)?,
                    None => Refusal::from_code(parts.reason.as_deref()?)?,
                },
            },
            "aborted" => SessionState::Aborted,
            _ => return None,
        })
    }
}

/// A session state flattened into the columns (or attributes) stores keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateParts {
    pub kind: String,
    pub package_id: Option<i64>,
    pub file_id: Option<i64>,
    /// A refusal's [`Refusal::code`]; or, with `legacy_status`, the message a session refused
    /// before reasons were stored carried.
    pub reason: Option<String>,
    /// The HTTP status such an older refused session stored (never written now).
    pub legacy_status: Option<i64>,
    pub until: Option<i64>,
}

/// Why a session was refused at commit. Stored as its code; the API words it for clients, so
/// rewording an answer never touches stored data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The session ran out of time before its bytes were committed.
    Expired,
    /// The bytes received are not the size declared at open.
    SizeMismatch,
    /// The bytes received do not hash to the SHA-256 declared at open.
    DigestMismatch,
    /// The file is at or above the registry's size limit.
    TooLarge,
    /// The group refuses duplicates and the file exists.
    Duplicate,
    /// The opener's credential no longer authenticates.
    Unauthorized,
    TokenExpired,
    TokenRevoked,
    /// The opener's token lacks the scope to write.
    InsufficientScope,
    /// The opener may no longer write to the project.
    Forbidden,
    /// The project is gone (or no longer visible to the opener).
    ProjectNotFound,
    /// A package protection rule made since the session opened holds the opener back.
    Protected,
}

impl Refusal {
    const CODES: [(Refusal, &'static str); 12] = [
        (Refusal::Expired, "expired"),
        (Refusal::SizeMismatch, "size_mismatch"),
        (Refusal::DigestMismatch, "digest_mismatch"),
        (Refusal::TooLarge, "too_large"),
        (Refusal::Duplicate, "duplicate"),
        (Refusal::Unauthorized, "unauthorized"),
        (Refusal::TokenExpired, "token_expired"),
        (Refusal::TokenRevoked, "token_revoked"),
        (Refusal::InsufficientScope, "insufficient_scope"),
        (Refusal::Forbidden, "forbidden"),
        (Refusal::ProjectNotFound, "project_not_found"),
        (Refusal::Protected, "protected"),
    ];

    /// The stable name a store keeps.
    pub fn code(self) -> &'static str {
        Self::CODES
            .iter()
            .find(|(r, _)| *r == self)
            .map_or("", |(_, code)| code)
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::CODES
            .iter()
            .find(|(_, c)| *c == code)
            .map(|(r, _)| *r)
    }

    /// The reason behind a refusal stored, before reasons were, as GitLab's status and message.
    pub fn from_legacy(status: i64, message: &str) -> Option<Self> {
        let has = |text: &str| message.contains(text);
        Some(match status {
            400 if has("expired") => Refusal::Expired,
            400 if has("SHA-256") => Refusal::DigestMismatch,
            400 if has("declared") => Refusal::SizeMismatch,
            400 if has("too large") => Refusal::TooLarge,
            400 if has("Duplicate") => Refusal::Duplicate,
            401 if has("Unauthorized") => Refusal::Unauthorized,
            // GitLab's invalid_token body has no `message`; only its `error` was kept.
            401 => Refusal::TokenRevoked,
            403 if has("insufficient_scope") => Refusal::InsufficientScope,
            403 => Refusal::Forbidden,
            404 => Refusal::ProjectNotFound,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    /// Random, unguessable (32 hex digits).
    pub id: String,
    pub project_id: i64,
    pub name: PackageName,
    pub version: PackageVersion,
    pub file_name: FileName,
    /// `status` the upload asked for (`default`/`hidden`).
    pub package_status: Option<PackageStatus>,
    /// Declared size in bytes.
    pub size: u64,
    /// Declared lower-case hex SHA-256, if any.
    pub sha256: Option<String>,
    /// Where the bytes are staged (`uploads/<id>`).
    pub staged_key: String,
    /// The object store's multipart upload id, when the bytes come in parts.
    pub multipart_id: Option<String>,
    /// Size of each part (the last may be smaller); 0 for a single PUT.
    pub part_size: u64,
    /// The token that opened the session: its rights are checked again at commit.
    pub token_id: Option<i64>,
    /// Who another service vouched for when opening it (a CI job's OIDC ID token, an upstream
    /// GitLab's job token), as `auth` writes it down: checked again at commit instead of a
    /// token.
    pub delegation: Option<String>,
    pub state: SessionState,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl UploadSession {
    /// A fresh random session id.
    pub fn new_id() -> String {
        hex::encode(rand::random::<[u8; 16]>())
    }

    /// Number of parts of a multipart session (0 for a single PUT).
    pub fn part_count(&self) -> u64 {
        if self.part_size == 0 {
            0
        } else {
            self.size.div_ceil(self.part_size).max(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_parts() {
        let states = [
            SessionState::Pending,
            SessionState::Committing {
                until: Timestamp::from_millis(5),
            },
            SessionState::Committed {
                package_id: 1,
                file_id: 2,
            },
            SessionState::Refused {
                reason: Refusal::Duplicate,
            },
            SessionState::Refused {
                reason: Refusal::TokenRevoked,
            },
            SessionState::Aborted,
        ];
        for state in states {
            assert_eq!(
                SessionState::from_parts(state.to_parts()),
                Some(state.clone())
            );
        }
        let broken = StateParts {
            kind: "committed".into(),
            ..StateParts::default()
        };
        assert_eq!(SessionState::from_parts(broken), None);
        assert!(SessionState::Aborted.is_final() && !SessionState::Pending.is_final());
    }

    #[test]
    fn refusals_have_stable_codes_and_older_ones_still_read() {
        for (reason, code) in Refusal::CODES {
            assert_eq!(reason.code(), code);
            assert_eq!(Refusal::from_code(code), Some(reason));
        }
        let legacy = |status, message: &str| {
            SessionState::from_parts(StateParts {
                kind: "refused".into(),
                reason: Some(message.into()),
                legacy_status: Some(status),
                ..StateParts::default()
            })
        };
        let refused = |reason| Some(SessionState::Refused { reason });
        let cases = [
            (
                400,
                "400 Bad request - Duplicate package is not allowed",
                Refusal::Duplicate,
            ),
            (
                400,
                "400 Bad request - File is too large",
                Refusal::TooLarge,
            ),
            (
                400,
                "400 Bad request - the upload session expired",
                Refusal::Expired,
            ),
            (
                400,
                "400 Bad request - the uploaded bytes do not match the declared SHA-256",
                Refusal::DigestMismatch,
            ),
            (
                400,
                "400 Bad request - the upload has 3 bytes, not the 4 declared",
                Refusal::SizeMismatch,
            ),
            (401, "401 Unauthorized", Refusal::Unauthorized),
            (403, "403 Forbidden", Refusal::Forbidden),
            (404, "404 Project Not Found", Refusal::ProjectNotFound),
        ];
        for (status, message, reason) in cases {
            assert_eq!(legacy(status, message), refused(reason), "{message}");
        }
        assert_eq!(legacy(500, "500 Internal Server Error"), None);
    }

    #[test]
    fn parts_cover_the_declared_size() {
        let mut s = UploadSession {
            id: UploadSession::new_id(),
            project_id: 1,
            name: PackageName::parse("p").unwrap(),
            version: PackageVersion::parse("1").unwrap(),
            file_name: FileName::parse(None, "f").unwrap(),
            package_status: None,
            size: 20 << 20,
            sha256: None,
            staged_key: "uploads/x".into(),
            multipart_id: None,
            part_size: 8 << 20,
            token_id: None,
            delegation: None,
            state: SessionState::Pending,
            created_at: Timestamp::from_millis(0),
            expires_at: Timestamp::from_millis(1),
        };
        assert_eq!(s.part_count(), 3);
        s.part_size = 0;
        assert_eq!(s.part_count(), 0);
        assert_eq!(s.id.len(), 32);
    }
}
