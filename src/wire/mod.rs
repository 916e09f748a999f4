//! The JSON bodies of depot's HTTP API as serde types: the handlers send them, `depot push` /
//! `depot pull` and the tests read them back. Field order is GitLab's (bodies keep it), and
//! names are GitLab's own where GitLab has the field.

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `{"message": "..."}`: GitLab's answer to a publish, and its error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub message: String,
}

impl Message {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            message: text.into(),
        }
    }
}

/// `{"error": "..."}` (with an OAuth-style description for token errors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl ErrorBody {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            error: text.into(),
            error_description: None,
            scope: None,
        }
    }
}

/// GitLab's model validation failure: `{"message": {"<field>": ["<message>", ...]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldErrors {
    pub message: BTreeMap<String, Vec<String>>,
}

impl FieldErrors {
    pub fn new(field: &str, message: &str) -> Self {
        Self {
            message: BTreeMap::from([(field.to_string(), vec![message.to_string()])]),
        }
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .message
            .iter()
            .map(|(field, messages)| format!("{field} {}", messages.join(", ")))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

/// Any error body GitLab answers with: `{"message"}` (a text, or fields' messages) or
/// `{"error", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorAnswer {
    Message(Message),
    Error(ErrorBody),
    Fields(FieldErrors),
}

impl ErrorAnswer {
    /// The text a person should read: the message, or the error's description (else the error).
    pub fn text(&self) -> &str {
        match self {
            ErrorAnswer::Message(m) => &m.message,
            ErrorAnswer::Error(e) => e.error_description.as_deref().unwrap_or(&e.error),
            ErrorAnswer::Fields(_) => "invalid fields",
        }
    }
}

/// Where a package file downloads from (GitLab's `file.url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileUrl {
    pub url: String,
}

/// GitLab's package-file record, as a publish with `select=package_file` (and a committed upload
/// session) returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageFileRecord {
    pub id: i64,
    pub package_id: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub size: u64,
    /// 1 local storage, 2 object storage.
    pub file_store: i64,
    pub file_md5: Option<String>,
    pub file_sha1: Option<String>,
    pub file_name: String,
    pub file: FileUrl,
    pub file_sha256: String,
    pub verification_retry_at: Option<Timestamp>,
    pub verified_at: Option<Timestamp>,
    pub verification_failure: Option<String>,
    pub verification_retry_count: Option<i64>,
    pub verification_checksum: Option<String>,
    pub verification_state: i64,
    pub verification_started_at: Option<Timestamp>,
    pub new_file_path: Option<String>,
}

/// A package's links: the web page (shown for `default` packages) and the delete route (for
/// callers who may delete).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageLinks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_api_path: Option<String>,
}

/// Another version of the same package, listed with one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageVersionEntity {
    pub id: i64,
    pub version: String,
    pub created_at: Timestamp,
    pub tags: Vec<String>,
}

/// GitLab's package entity (`API::Entities::Package`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageEntity {
    pub id: i64,
    pub name: String,
    pub version: String,
    pub package_type: String,
    pub status: String,
    pub _links: PackageLinks,
    pub created_at: Timestamp,
    pub last_downloaded_at: Option<Timestamp>,
    /// depot's: downloads counted (GitLab keeps none).
    pub download_count: u64,
    /// Group lists only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_path: Option<String>,
    pub tags: Vec<String>,
    /// One package only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<PackageVersionEntity>>,
}

/// GitLab's package-file entity (`API::Entities::PackageFile`), as the file lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageFileEntity {
    pub id: i64,
    pub package_id: i64,
    pub created_at: Timestamp,
    pub file_name: String,
    pub size: u64,
    pub file_md5: Option<String>,
    pub file_sha1: Option<String>,
    pub file_sha256: String,
    /// depot's: downloads of this file counted.
    pub download_count: u64,
}

/// A pipeline that built a package (GitLab's `API::Entities::Package::Pipeline`). depot runs
/// no pipelines, so its lists of them are empty; the type says what GitLab would list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineEntity {
    pub id: i64,
    pub iid: i64,
    pub project_id: i64,
    pub sha: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub status: String,
    pub source: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub web_url: String,
}

/// `POST …/:file_name/uploads`: open an upload session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenUpload {
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `default` or `hidden`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A request the client sends itself, with exactly these headers (they are signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRequest {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

/// One part still to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRequest {
    #[serde(flatten)]
    pub request: UploadRequest,
    pub part_number: u32,
    pub size: u64,
}

/// The multipart upload plan: every part still to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartsPlan {
    pub method: String,
    pub part_size: u64,
    pub parts: Vec<PartRequest>,
}

/// How to send the bytes still missing: one PUT, or parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UploadPlan {
    Parts(PartsPlan),
    Single(UploadRequest),
}

/// `POST …/uploads/:id/complete`'s optional body: each part as storage acknowledged it (the
/// `ETag` its `PUT` answered), so the commit need not ask storage to list the parts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteBody {
    #[serde(default)]
    pub parts: Vec<SentPart>,
}

/// A part the client sent, and the `ETag` storage answered for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentPart {
    pub part_number: u32,
    pub etag: String,
}

/// A part the store holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedPart {
    pub part_number: u32,
    pub size: u64,
}

/// An upload session as its routes answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadSessionBody {
    pub id: String,
    /// `pending`, `committing`, `committed`, `refused` or `aborted`.
    pub state: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub part_size: Option<u64>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub parts: Vec<ReceivedPart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadPlan>,
    /// Committed sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_file: Option<PackageFileRecord>,
    /// Refused sessions: GitLab's error message for the refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What `depot admin` prints: one JSON line per command, the record it made.
pub mod events;
pub mod people;

/// A project's cleanup policy (`GET|PUT /projects/:id/packages/cleanup_policy`, depot's; GitLab
/// keeps `keep_n_duplicated_package_files` and `next_run_at` in GraphQL only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupPolicyEntity {
    pub project_id: i64,
    pub keep_n_duplicated_package_files: String,
    pub keep_n_latest_versions: Option<u32>,
    pub delete_versions_older_than_days: Option<u32>,
    pub delete_versions_not_downloaded_for_days: Option<u32>,
    pub package_name_regex: Option<String>,
    pub next_run_at: Timestamp,
}

/// What a cleanup run would take now (`GET …/cleanup_policy/preview`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupPreview {
    pub packages: Vec<CleanupPackage>,
    pub package_files: Vec<CleanupFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupPackage {
    pub id: i64,
    pub name: String,
    pub version: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupFile {
    pub id: i64,
    pub package_id: i64,
    pub file_name: String,
    pub reason: String,
}

/// A package protection rule as GitLab's API shows it (`API::Entities::Projects::Packages::
/// Protection::Rule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectionRuleEntity {
    pub id: i64,
    pub project_id: i64,
    pub package_name_pattern: String,
    pub package_type: String,
    pub minimum_access_level_for_delete: Option<String>,
    pub minimum_access_level_for_push: Option<String>,
}

/// `GET /projects/:id/packages/generic/:name/:version` (depot's; GitLab has no such route): the
/// version's newest live file of each name, in name order, each with where to download it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageManifest {
    pub project_id: i64,
    pub package_id: i64,
    pub package_name: String,
    pub package_version: String,
    pub status: String,
    pub files: Vec<ManifestFile>,
}

/// One file of a [`PackageManifest`]: `path` is its name with its directories (`dir/f.bin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub created_at: Timestamp,
    pub download_url: String,
}

pub mod admin {
    use crate::domain::{Group, GroupSettings, Membership, MembershipTarget, Project, Timestamp};
    use crate::domain::{Token, User};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct GroupCreated {
        pub id: i64,
        pub full_path: String,
        pub parent_id: Option<i64>,
    }

    impl From<&Group> for GroupCreated {
        fn from(g: &Group) -> Self {
            Self {
                id: g.id,
                full_path: g.path.clone(),
                parent_id: g.parent_id,
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ProjectCreated {
        pub id: i64,
        pub name: String,
        pub path_with_namespace: String,
        pub visibility: String,
    }

    impl From<&Project> for ProjectCreated {
        fn from(p: &Project) -> Self {
            Self {
                id: p.id,
                name: p.name.clone(),
                path_with_namespace: p.path_with_namespace.clone(),
                visibility: p.visibility.as_str().to_string(),
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct UserCreated {
        pub id: i64,
        pub username: String,
        /// Shown only for an administrator.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub is_admin: bool,
    }

    impl From<&User> for UserCreated {
        fn from(u: &User) -> Self {
            Self {
                id: u.id,
                username: u.username.clone(),
                is_admin: u.admin,
            }
        }
    }

    /// A membership, named as the operator named it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct MemberAdded {
        pub user: String,
        pub source: String,
        /// `group` or `project`.
        pub source_type: String,
        pub role: String,
        pub access_level: i64,
    }

    impl MemberAdded {
        pub fn new(user: &str, source: &str, m: &Membership) -> Self {
            let source_type = match m.target {
                MembershipTarget::Group(_) => "group",
                MembershipTarget::Project(_) => "project",
            };
            Self {
                user: user.to_string(),
                source: source.to_string(),
                source_type: source_type.into(),
                role: m.role.as_str().to_string(),
                access_level: m.role.access_level(),
            }
        }
    }

    /// A token just made, with its secret: the only time it is ever shown.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct TokenCreated {
        pub id: i64,
        pub kind: String,
        pub token: String,
        pub scopes: Vec<String>,
        pub expires_at: Option<Timestamp>,
    }

    impl TokenCreated {
        pub fn new(t: &Token, secret: &str) -> Self {
            Self {
                id: t.id,
                kind: t.kind().as_str().to_string(),
                token: secret.to_string(),
                scopes: t
                    .grant
                    .scopes()
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect(),
                expires_at: t.expires_at,
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct TokenRevoked {
        pub id: i64,
        pub kind: String,
        pub revoked: bool,
    }

    impl From<&Token> for TokenRevoked {
        fn from(t: &Token) -> Self {
            Self {
                id: t.id,
                kind: t.kind().as_str().to_string(),
                revoked: t.revoked,
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct SettingsSet {
        pub group: String,
        pub generic_duplicates_allowed: bool,
        pub generic_duplicate_exception_regex: String,
    }

    impl SettingsSet {
        pub fn new(group: &Group, s: &GroupSettings) -> Self {
            Self {
                group: group.path.clone(),
                generic_duplicates_allowed: s.generic_duplicates_allowed,
                generic_duplicate_exception_regex: s.generic_duplicate_exception_regex.clone(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_read_back_as_what_they_are() {
        let single = UploadRequest {
            method: "PUT".into(),
            url: "http://h/x".into(),
            headers: BTreeMap::from([("content-length".into(), "3".into())]),
        };
        let parts = PartsPlan {
            method: "PUT".into(),
            part_size: 5,
            parts: vec![PartRequest {
                request: single.clone(),
                part_number: 1,
                size: 5,
            }],
        };
        for plan in [UploadPlan::Single(single), UploadPlan::Parts(parts)] {
            let json = serde_json::to_string(&plan).unwrap();
            assert_eq!(serde_json::from_str::<UploadPlan>(&json).unwrap(), plan);
        }
    }
}
