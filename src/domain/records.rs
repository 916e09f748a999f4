//! The registry's records: groups, projects, users, memberships, tokens, packages, files.

use super::{ExceptionRegex, RegexRefused, TokenKind, Visibility};
use super::{FileName, MembershipTarget, PackageName, PackageVersion, Role, Scope, Timestamp};
use bytes::Bytes;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: i64,
    /// Full path, `parent/child`.
    pub path: String,
    pub parent_id: Option<i64>,
    pub created_at: Timestamp,
}

/// A group about to be saved: its parent already looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroup {
    pub path: String,
    pub parent_id: Option<i64>,
    pub created_at: Timestamp,
    /// The user who owns it from the start (saved with it, in the same step), if any.
    pub owner: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: i64,
    pub name: String,
    /// `group/sub/name`
    pub path_with_namespace: String,
    pub namespace_id: i64,
    pub visibility: Visibility,
    pub created_at: Timestamp,
}

impl Project {
    /// Full path of the group the project lives in.
    pub fn namespace_path(&self) -> &str {
        self.path_with_namespace
            .rsplit_once('/')
            .map_or("", |(ns, _)| ns)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    /// An administrator: may create users, groups and projects and see everything.
    pub admin: bool,
    pub created_at: Timestamp,
}

/// A user about to be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub username: String,
    pub admin: bool,
    pub created_at: Timestamp,
}

impl NewUser {
    pub fn into_user(self, id: i64) -> User {
        User {
            id,
            username: self.username,
            admin: self.admin,
            created_at: self.created_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub user_id: i64,
    pub target: MembershipTarget,
    pub role: Role,
}

/// What a token lets its holder be, by kind: each kind carries only its own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenGrant {
    /// A user's personal access token, limited to `scopes`.
    Personal { user_id: i64, scopes: Vec<Scope> },
    /// A deploy token of a project, or of every project under a group.
    Deploy {
        target: MembershipTarget,
        scopes: Vec<Scope>,
    },
    /// A CI job's token: acts as `user_id`, in `project_id` only, with the `api` scope.
    Job { user_id: i64, project_id: i64 },
}

/// Who holds a token, as tokens are listed: a user (personal and job tokens) or a project or
/// group (deploy tokens).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TokenOwner {
    User(i64),
    Target(MembershipTarget),
}

/// A token grant as the columns (attributes) stores keep: kind, scopes, user, target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenParts {
    pub kind: TokenKind,
    pub scopes: Vec<Scope>,
    pub user_id: Option<i64>,
    pub target: Option<MembershipTarget>,
}

impl TokenGrant {
    pub fn kind(&self) -> TokenKind {
        match self {
            TokenGrant::Personal { .. } => TokenKind::Personal,
            TokenGrant::Deploy { .. } => TokenKind::Deploy,
            TokenGrant::Job { .. } => TokenKind::Job,
        }
    }

    pub fn owner(&self) -> TokenOwner {
        match self {
            TokenGrant::Personal { user_id, .. } | TokenGrant::Job { user_id, .. } => {
                TokenOwner::User(*user_id)
            }
            TokenGrant::Deploy { target, .. } => TokenOwner::Target(target.clone()),
        }
    }

    /// The scopes the token carries (a job token's are always `api`).
    pub fn scopes(&self) -> Vec<Scope> {
        match self {
            TokenGrant::Personal { scopes, .. } | TokenGrant::Deploy { scopes, .. } => {
                scopes.clone()
            }
            TokenGrant::Job { .. } => vec![Scope::Api],
        }
    }

    /// The stored form.
    pub fn to_parts(&self) -> TokenParts {
        let (user_id, target) = match self {
            TokenGrant::Personal { user_id, .. } => (Some(*user_id), None),
            TokenGrant::Deploy { target, .. } => (None, Some(target.clone())),
            TokenGrant::Job {
                user_id,
                project_id,
            } => (Some(*user_id), Some(MembershipTarget::Project(*project_id))),
        };
        TokenParts {
            kind: self.kind(),
            scopes: self.scopes(),
            user_id,
            target,
        }
    }

    /// Back from [`Self::to_parts`]; `None` when the parts lack what the kind needs.
    pub fn from_parts(parts: TokenParts) -> Option<Self> {
        Some(match parts.kind {
            TokenKind::Personal => TokenGrant::Personal {
                user_id: parts.user_id?,
                scopes: parts.scopes,
            },
            TokenKind::Deploy => TokenGrant::Deploy {
                target: parts.target?,
                scopes: parts.scopes,
            },
            TokenKind::Job => match parts.target? {
                MembershipTarget::Project(project_id) => TokenGrant::Job {
                    user_id: parts.user_id?,
                    project_id,
                },
                MembershipTarget::Group(_) => return None,
            },
        })
    }
}

/// A token as stored: never the secret, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: i64,
    /// What its owner called it (GitLab's `name`; empty for tokens made before names).
    pub name: String,
    pub sha256: [u8; 32],
    pub grant: TokenGrant,
    pub expires_at: Option<Timestamp>,
    pub revoked: bool,
    pub created_at: Timestamp,
    /// When it last authenticated a request, to within [`LAST_USED_RESOLUTION_MS`].
    pub last_used_at: Option<Timestamp>,
}

/// `last_used_at` is written at most this often per token (as GitLab does).
pub const LAST_USED_RESOLUTION_MS: i64 = 60_000;

impl Token {
    pub fn kind(&self) -> TokenKind {
        self.grant.kind()
    }

    /// Is it past its expiry at `now`?
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Should a use at `now` be written down (never used, or last written a while ago)?
    pub fn use_worth_recording(&self, now: Timestamp) -> bool {
        self.last_used_at
            .is_none_or(|at| now.millis() - at.millis() >= LAST_USED_RESOLUTION_MS)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub name: String,
    pub sha256: [u8; 32],
    pub grant: TokenGrant,
    pub expires_at: Option<Timestamp>,
}

impl NewToken {
    /// The token as stored under `id`, created at `now`, not revoked.
    pub fn into_token(self, id: i64, now: Timestamp) -> Token {
        Token {
            id,
            name: self.name,
            sha256: self.sha256,
            grant: self.grant,
            expires_at: self.expires_at,
            revoked: false,
            created_at: now,
            last_used_at: None,
        }
    }
}

/// A group's package settings (from GitLab's namespace package settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSettings {
    pub generic_duplicates_allowed: bool,
    pub generic_duplicate_exception_regex: String,
}

impl Default for GroupSettings {
    fn default() -> Self {
        Self {
            generic_duplicates_allowed: true,
            generic_duplicate_exception_regex: String::new(),
        }
    }
}

impl GroupSettings {
    /// These settings with the toggle and the exception regex changed where given; a regex
    /// GitLab would refuse changes nothing.
    pub fn changed(
        &self,
        duplicates_allowed: Option<bool>,
        exception_regex: Option<&str>,
    ) -> Result<Self, RegexRefused> {
        let mut settings = self.clone();
        if let Some(allowed) = duplicates_allowed {
            settings.generic_duplicates_allowed = allowed;
        }
        if let Some(regex) = exception_regex {
            settings.generic_duplicate_exception_regex =
                ExceptionRegex::parse(regex)?.into_string();
        }
        Ok(settings)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageStatus {
    Default,
    Hidden,
    /// Deleted: invisible at once, bytes purged afterwards.
    PendingDestruction,
}

impl PackageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageStatus::Default => "default",
            PackageStatus::Hidden => "hidden",
            PackageStatus::PendingDestruction => "pending_destruction",
        }
    }

    /// The values a client may ask for on upload (`default`, `hidden`).
    pub fn parse_upload(s: &str) -> Option<Self> {
        match s {
            "default" => Some(PackageStatus::Default),
            "hidden" => Some(PackageStatus::Hidden),
            _ => None,
        }
    }
}

impl FromStr for PackageStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending_destruction" => Ok(PackageStatus::PendingDestruction),
            other => Self::parse_upload(other).ok_or_else(|| format!("unknown status {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub id: i64,
    pub project_id: i64,
    pub name: PackageName,
    pub version: PackageVersion,
    pub status: PackageStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_downloaded_at: Option<Timestamp>,
    /// Downloads counted so far (depot's; flushed from each process at most once a minute).
    pub download_count: u64,
}

/// Downloads of one package counted by a process and not yet written: the package's, and
/// each file's (id, name, count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Downloads {
    pub package: u64,
    pub files: Vec<(i64, FileName, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    pub id: i64,
    pub package_id: i64,
    pub file_name: FileName,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    pub blob_key: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The bytes of a small file the metadata store keeps in its record (its `blob_key` is an
    /// inline key), when the read that found it returned them: the download lookup does, lists
    /// do not.
    pub content: Option<Bytes>,
    /// Downloads of this file counted so far (as the package's).
    pub download_count: u64,
}

/// Everything the store needs to commit one published file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    pub project_id: i64,
    pub name: PackageName,
    pub version: PackageVersion,
    /// Status for a new package; on an existing one, a new status if given.
    pub status: Option<PackageStatus>,
    pub file_name: FileName,
    pub size: u64,
    pub sha256: String,
    pub blob_key: String,
    /// The bytes themselves, for the record to keep, when `blob_key` is an inline key.
    pub content: Option<Bytes>,
    /// Refuse (with `AlreadyExists`) if the package already has a live file of this name.
    pub refuse_duplicate: bool,
    pub now: Timestamp,
    /// The upload session this publish commits, under this claim: settled as committed to the
    /// file in the same step, so that a session is committed exactly when its file is
    /// published. Refused (`Contention`) when the claim is no longer held.
    pub commits: Option<super::SessionClaim>,
    /// Who publishes, when and where: the store makes the event of it.
    pub event: super::EventDraft,
}

impl NewFile {
    /// The package this publish creates, saved under `id`.
    pub fn new_package(&self, id: i64) -> Package {
        Package {
            id,
            project_id: self.project_id,
            name: self.name.clone(),
            version: self.version.clone(),
            status: self.status.unwrap_or(PackageStatus::Default),
            created_at: self.now,
            updated_at: self.now,
            last_downloaded_at: None,
            download_count: 0,
        }
    }

    /// The live `package` this publish adds to, as it becomes: a status given that differs
    /// from its own changes it (and its `updated_at`), as GitLab's upload does; otherwise the
    /// package is left as it is (GitLab does not touch a package when a file is added, and a
    /// write less is a WAL page less for the commit to sync).
    pub fn touch_package(&self, package: Package) -> Package {
        match self.status {
            Some(status) if status != package.status => Package {
                status,
                updated_at: self.now,
                ..package
            },
            _ => package,
        }
    }

    /// The file record this publish adds to package `package_id`, saved under `id`.
    pub fn file_record(&self, id: i64, package_id: i64) -> PackageFile {
        PackageFile {
            id,
            package_id,
            file_name: self.file_name.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            blob_key: self.blob_key.clone(),
            created_at: self.now,
            updated_at: self.now,
            content: self.content.clone(),
            download_count: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_grants_round_trip_through_their_parts() {
        let grants = [
            TokenGrant::Personal {
                user_id: 3,
                scopes: vec![Scope::ReadApi],
            },
            TokenGrant::Deploy {
                target: MembershipTarget::Group("acme".into()),
                scopes: vec![Scope::ReadPackageRegistry, Scope::WritePackageRegistry],
            },
            TokenGrant::Job {
                user_id: 3,
                project_id: 9,
            },
        ];
        for grant in grants {
            assert_eq!(
                TokenGrant::from_parts(grant.to_parts()),
                Some(grant.clone())
            );
        }
        // A job token in a group, or a personal token of nobody, is no token.
        let broken = [
            TokenParts {
                kind: TokenKind::Job,
                scopes: vec![Scope::Api],
                user_id: Some(3),
                target: Some(MembershipTarget::Group("acme".into())),
            },
            TokenParts {
                kind: TokenKind::Personal,
                scopes: vec![Scope::Api],
                user_id: None,
                target: None,
            },
        ];
        for parts in broken {
            assert_eq!(TokenGrant::from_parts(parts.clone()), None, "{parts:?}");
        }
    }

    #[test]
    fn namespace_of_a_project() {
        let p = Project {
            id: 1,
            name: "app".into(),
            path_with_namespace: "demo/sub/app".into(),
            namespace_id: 2,
            visibility: Visibility::Private,
            created_at: Timestamp::from_millis(0),
        };
        assert_eq!(p.namespace_path(), "demo/sub");
    }

    #[test]
    fn statuses() {
        assert_eq!(
            PackageStatus::parse_upload("hidden"),
            Some(PackageStatus::Hidden)
        );
        assert_eq!(PackageStatus::parse_upload("pending_destruction"), None);
        assert_eq!(
            "pending_destruction".parse(),
            Ok(PackageStatus::PendingDestruction)
        );
    }
}
