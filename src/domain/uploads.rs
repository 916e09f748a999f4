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
    /// Refused at commit with GitLab's status and message (final).
    Refused { status: u16, message: String },
    /// Abandoned by the client (final).
    Aborted,
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

    /// The state's fields as stored: (kind, package id, file id, status, message, until).
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
            SessionState::Refused { status, message } => {
                parts.status = Some(i64::from(*status));
                parts.message = Some(message.clone());
            }
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
                status: u16::try_from(parts.status?).ok()?,
                message: parts.message?,
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
    pub status: Option<i64>,
    pub message: Option<String>,
    pub until: Option<i64>,
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
                status: 400,
                message: "400 Bad request - Duplicate package is not allowed".into(),
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
