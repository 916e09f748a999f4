//! Use cases: publish a file (downloads, lists, deletes, settings, upload sessions and signed
//! URLs in the submodules). Handlers call these; these call the stores.
//! Every rule of GitLab's generic packages that is not wire formatting lives here, and nothing
//! here knows HTTP: outcomes are domain values and `Error`.

use crate::auth::{self, Action, Credential, Denied, Principal};
use crate::domain::{
    FileName, GroupSettings, NewFile, Package, PackageFile, PackageName, PackageStatus,
    PackageVersion, Project, ProjectRef, Protected, Timestamp,
};
use crate::store::{
    BlobLocation, BlobStore, ByteStream, MetaStore, Multipart, Presign, new_inline_key,
};
use regex::Regex;
use std::sync::Arc;

mod browse;
mod cleanup;
mod commit;
mod counting;
mod directory;
mod downloads;
mod error;
mod events;
mod grants;
mod inline;
mod lost_answers;
mod members;
mod packages;
mod people;
mod protection;
mod publish;
mod settings;
mod signed;
mod uploads;
mod versions;
mod web;
pub use cleanup::{CleanedUp, CleanupChanges, carry_out, plan_cleanup};
pub use counting::FLUSH_EVERY;
pub use directory::{ProjectRequest, SeenProject};
pub use error::{Error, Missing, invalid};
pub use events::{
    AUDIT_MAX_PER_PAGE, Audited, HookRequest, actor_of, event, project_event, publish_draft,
    settings_event, system_event, token_detail,
};
pub use grants::{DeployTokenRequest, TrustRuleRequest};
pub use inline::DEFAULT_INLINE_FILE_MAX;
pub use members::{Place, PlaceRef, role_of_level};
pub use packages::{PackageList, Purged};
pub use people::{TokenRef, TokenRequest};
pub use protection::{RuleChanges, known_package_type};
pub use publish::{DIGEST_MISMATCH, Declared};
pub use settings::{SettingsRefused, SettingsView};
pub use signed::SignedRefusal;
pub use uploads::{PartTicket, SessionView, UploadPlan, UploadRequest, part_sizes};
pub use versions::LATEST;
pub use web::{DEFAULT_WEB_SESSION_TTL, Overview, ProjectSummary, SignedIn};

/// Where a generic package file lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCoordinates {
    pub project: ProjectRef,
    pub name: PackageName,
    pub version: PackageVersion,
    pub file_name: FileName,
}

/// A project a principal was allowed into, and the memberships that decided it.
pub struct ProjectAccess {
    pub project: Project,
    pub memberships: Arc<Vec<crate::domain::Membership>>,
}

impl ProjectAccess {
    /// May the same principal also do `action` here?
    pub fn may(&self, principal: &Principal, action: Action) -> bool {
        auth::decide(principal, action, &self.project, &self.memberships).is_ok()
    }
}

/// Limits that apply to every publish.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A file of this size or more is refused; 0 means unlimited.
    pub max_file_size: u64,
    /// Files up to this size are kept in their metadata record where the store can (0: never).
    pub inline_file_max: u64,
}

impl Limits {
    /// No size limit; small files inline by default.
    pub fn unlimited() -> Self {
        Self::at_most(0)
    }

    /// Files of `max_file_size` or more refused (0: none); small files inline by default.
    pub fn at_most(max_file_size: u64) -> Self {
        Self {
            max_file_size,
            inline_file_max: DEFAULT_INLINE_FILE_MAX,
        }
    }
}

/// How downloads are served: inline, or (for files above `inline_max`, where the blob store
/// can presign) by a redirect to a URL that lives `presign_ttl`.
#[derive(Debug, Clone, Copy)]
pub struct Downloads {
    pub inline_max: Option<u64>,
    pub presign_ttl: std::time::Duration,
}

/// How long presigned URLs live unless configured: 15 minutes.
pub const DEFAULT_PRESIGN_TTL_SECS: u64 = 900;

/// Part size of large upload sessions unless configured.
pub const DEFAULT_PART_SIZE: u64 = 64 << 20;

/// Packages and files one purge pass handles (`depot serve`'s loop and `lambda-purge`).
pub const PURGE_BATCH: usize = 100;

impl Default for Downloads {
    fn default() -> Self {
        Self {
            inline_max: None,
            presign_ttl: std::time::Duration::from_secs(DEFAULT_PRESIGN_TTL_SECS),
        }
    }
}

/// How the upload handoff cuts large files: declared sizes above `part_size` go to a
/// multipart upload in parts of `part_size` (more when 10,000 parts would not hold the file).
/// A client's `complete` commits staged files up to `commit_inline_max` itself; larger ones
/// (whose hashing would outlast an API Gateway request) are left to the store's upload event
/// and the finalizer, and `complete` answers 202 until then. `None`: always inline. On object
/// storage, a session declaring a SHA-256 and at most `single_max` bytes goes as one PUT that
/// the store checks against the digest as the bytes arrive, straight to its final key: its
/// commit copies and reads back nothing (0: never).
#[derive(Debug, Clone, Copy)]
pub struct Uploads {
    pub part_size: u64,
    pub commit_inline_max: Option<u64>,
    pub single_max: u64,
}

/// Default largest session sent as one checked PUT: S3 takes up to 5 GiB in one PUT, but a
/// lost connection costs the whole PUT again, and parts go several at a time.
pub const DEFAULT_SINGLE_MAX: u64 = 128 << 20;

pub use crate::store::blob::MIN_PART_SIZE;

/// A package's `last_downloaded_at` is kept to the minute: a download within a minute of the
/// last recorded one writes nothing. GitLab reads it in days (cleanup of packages not downloaded
/// for N days), and a hot package would otherwise cost a metadata write per download (a
/// DynamoDB write unit on AWS, a serialized SQLite transaction locally).
pub const DOWNLOAD_MARK_RESOLUTION_MS: i64 = 60_000;

impl Default for Uploads {
    fn default() -> Self {
        Self {
            part_size: DEFAULT_PART_SIZE,
            commit_inline_max: None,
            single_max: DEFAULT_SINGLE_MAX,
        }
    }
}

pub struct Registry {
    meta: Arc<dyn MetaStore>,
    /// Webhooks, where this process delivers them (`depot serve` on SQLite).
    hooks: Option<Arc<dyn crate::store::HookStore>>,
    /// Who is who, through the process's identity cache.
    identities: auth::Identities,
    blobs: Arc<dyn BlobStore>,
    limits: Limits,
    public_url: Option<String>,
    downloads: Downloads,
    /// Downloads counted and not yet written.
    tally: counting::Tally,
    /// What this process counts of its work, and whether `/metrics` shows it.
    metrics: Arc<crate::metrics::Metrics>,
    metrics_endpoint: bool,
    /// Print an Embedded Metric Format line per request (the Lambda functions).
    emf: bool,
    uploads: Uploads,
    /// How long a web UI sign-in lasts.
    web_session_ttl: std::time::Duration,
}

impl Registry {
    pub fn new(meta: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>, limits: Limits) -> Self {
        let cache = Arc::new(auth::IdentityCache::new(auth::IDENTITY_CACHE_TTL));
        Self {
            identities: auth::Identities::new(meta.clone(), cache),
            meta,
            hooks: None,
            blobs,
            limits,
            public_url: None,
            downloads: Downloads::default(),
            tally: counting::Tally::default(),
            metrics: Arc::default(),
            metrics_endpoint: false,
            emf: false,
            uploads: Uploads::default(),
            web_session_ttl: web::DEFAULT_WEB_SESSION_TTL,
        }
    }

    /// Deliver events to webhooks kept in `hooks` (`depot serve` on SQLite).
    pub fn with_hooks(mut self, hooks: Option<Arc<dyn crate::store::HookStore>>) -> Self {
        self.hooks = hooks;
        self
    }

    /// The webhooks' store, where there is one.
    pub fn hook_store_of(&self) -> Option<&Arc<dyn crate::store::HookStore>> {
        self.hooks.as_ref()
    }

    /// Show this process's counters at `/metrics` (`depot serve --metrics`).
    pub fn with_metrics_endpoint(mut self, on: bool) -> Self {
        self.metrics_endpoint = on;
        self
    }

    /// Print a CloudWatch Embedded Metric Format line per request on stdout (the Lambda
    /// functions, whose stdout is CloudWatch Logs).
    pub fn with_emf(mut self, on: bool) -> Self {
        self.emf = on;
        self
    }

    pub fn emf(&self) -> bool {
        self.emf
    }

    /// This process's counters; `None` unless `/metrics` shows them.
    pub fn metrics_shown(&self) -> Option<&crate::metrics::Metrics> {
        self.metrics_endpoint.then_some(self.metrics.as_ref())
    }

    /// This process's counters.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// This process's counters, to share with its background tasks (webhooks).
    pub fn metrics_handle(&self) -> Arc<crate::metrics::Metrics> {
        self.metrics.clone()
    }

    /// Keep identity reads (tokens, projects, memberships, group settings) for `ttl`: a change
    /// made by another process takes effect here within it. Zero keeps nothing.
    pub fn with_identity_ttl(mut self, ttl: std::time::Duration) -> Self {
        let cache = Arc::new(auth::IdentityCache::new(ttl));
        self.identities = auth::Identities::new(self.meta.clone(), cache)
            .with_oidc(self.identities.oidc().clone())
            .with_upstream(self.identities.upstream().cloned());
        self
    }

    /// Verify OIDC ID tokens with `oidc` (tests give it short key lifetimes).
    pub fn with_oidc(mut self, oidc: Arc<auth::oidc::OidcVerifier>) -> Self {
        self.identities = self.identities.with_oidc(oidc);
        self
    }

    /// Accept job tokens of the upstream GitLab `upstream` describes.
    pub fn with_upstream(mut self, upstream: Option<auth::upstream::UpstreamConfig>) -> Self {
        let upstream = upstream.map(|c| Arc::new(auth::upstream::Upstream::new(c)));
        self.identities = self.identities.with_upstream(upstream);
        self
    }

    /// Who vouches for federated callers: the OIDC verifier and the upstream GitLab.
    pub fn identities(&self) -> &auth::Identities {
        &self.identities
    }

    /// Serve files above `downloads.inline_max` by redirect, where the blob store can presign.
    pub fn with_downloads(mut self, downloads: Downloads) -> Self {
        self.downloads = downloads;
        self
    }

    /// The largest file accepted (0 = unlimited).
    pub fn max_file_size(&self) -> u64 {
        self.limits.max_file_size
    }

    /// The limits every publish is held to.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Part size of the upload handoff (at least [`MIN_PART_SIZE`]).
    pub fn with_uploads(mut self, uploads: Uploads) -> Self {
        self.uploads = Uploads {
            part_size: uploads.part_size.max(MIN_PART_SIZE),
            ..uploads
        };
        self
    }

    /// The base URL clients reach the registry at, for links in answers (`Link`,
    /// `delete_api_path`). Without it, links are built from the request's host.
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url.map(|u| u.trim_end_matches('/').to_string());
        self
    }

    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// Provisioning on this registry's records (`depot serve`'s first-start demo data).
    pub fn admin(&self) -> crate::admin::Admin {
        crate::admin::Admin::new(self.meta.clone()).with_cache(self.identities.cache().clone())
    }

    /// The metadata store, for tests and tools that inspect records directly. Handlers never
    /// call it: every request goes through a use case.
    pub fn meta(&self) -> &Arc<dyn MetaStore> {
        &self.meta
    }

    /// The blob store, for tests and tools (see [`Self::meta`]).
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// Who presents `credential`, and may their token do `action` at all (scope check).
    pub async fn authenticate(
        &self,
        credential: Option<&Credential>,
        action: Action,
    ) -> Result<Principal, Error> {
        let principal = auth::authenticate(&self.identities, credential, Timestamp::now()).await?;
        principal.check_scope(action)?;
        Ok(principal)
    }

    /// The project `reference` names, if `principal` may do `action` on it.
    pub async fn authorized_project(
        &self,
        principal: &Principal,
        reference: &ProjectRef,
        action: Action,
    ) -> Result<Project, Error> {
        Ok(self
            .project_access(principal, reference, action)
            .await?
            .project)
    }

    /// As [`Self::authorized_project`], keeping the memberships it read for further decisions
    /// in the same request.
    pub async fn project_access(
        &self,
        principal: &Principal,
        reference: &ProjectRef,
        action: Action,
    ) -> Result<ProjectAccess, Error> {
        let Some(project) = self.project_for(principal, reference).await? else {
            // An anonymous caller learns nothing about which projects exist.
            return Err(match principal {
                Principal::Anonymous if action != Action::Read => Denied::Unauthorized,
                _ => Denied::ProjectNotFound,
            }
            .into());
        };
        let memberships = match principal {
            Principal::User { user_id, .. } => self.identities.memberships_of(*user_id).await?,
            _ => Arc::default(),
        };
        auth::decide(principal, action, &project, &memberships)?;
        Ok(ProjectAccess {
            project,
            memberships,
        })
    }

    /// The project `reference` names, if any (no access decided).
    pub(crate) async fn project_by_ref(
        &self,
        reference: &ProjectRef,
    ) -> Result<Option<Project>, Error> {
        Ok(match reference {
            ProjectRef::Id(id) => self.identities.project_by_id(*id).await?,
            ProjectRef::Path(path) => self.identities.project_by_path(path).await?,
        })
    }

    /// The project `reference` names for `principal` (a GitLab job's own GitLab project is the
    /// depot project it maps to), if any (no access decided).
    pub(crate) async fn project_for(
        &self,
        principal: &Principal,
        reference: &ProjectRef,
    ) -> Result<Option<Project>, Error> {
        let mapped = match principal {
            Principal::Federated(f) => f.project_ref(reference),
            _ => None,
        };
        let reference = mapped.as_ref().unwrap_or(reference);
        Ok(match reference {
            ProjectRef::Id(id) => self.identities.project_by_id(*id).await?,
            ProjectRef::Path(path) => self.identities.project_by_path(path).await?,
        })
    }

    /// Publish one file: check permission, size and the duplicate rule, then keep the bytes
    /// (a small file in its record, a larger one streamed into the blob store while hashing)
    /// and commit the records in one step. On any failure no blob and no record is left.
    pub async fn publish(
        &self,
        principal: &Principal,
        at: FileCoordinates,
        status: Option<PackageStatus>,
        declared: Declared,
        body: ByteStream,
    ) -> Result<(Package, PackageFile), Error> {
        let project = self
            .authorized_project(principal, &at.project, Action::Write)
            .await?;
        self.check_protection(principal, &project, &at.name, Protected::Push)
            .await?;
        let declared_size = declared.size;
        let max = self.limits.max_file_size;
        if max > 0 && declared_size.is_some_and(|size| size >= max) {
            return Err(Error::TooLarge);
        }
        let settings = self.settings_of(project.namespace_id).await?;
        let refuse_duplicate = !duplicates_allowed(&settings, &at.name, &at.version);
        // Refuse early, before any byte is stored; the commit re-checks atomically.
        if refuse_duplicate
            && self
                .meta
                .live_file_exists(project.id, &at.name, &at.version, &at.file_name)
                .await?
        {
            return Err(Error::Duplicate);
        }
        let inline_max = self.inline_file_max();
        let taken = if inline_max > 0 && declared_size.is_none_or(|size| size <= inline_max) {
            inline::take_whole(body, inline_max)
                .await
                .map_err(Error::BodyFailed)?
        } else {
            inline::Taken::Longer(body)
        };
        let (key, stored, content) = match taken {
            inline::Taken::Whole(bytes) => (new_inline_key(), self.metered(&bytes)?, Some(bytes)),
            inline::Taken::Longer(body) => {
                let (key, stored) = self.put_blob(body).await?;
                (key, stored, None)
            }
        };
        if let Some(want) = &declared.sha256
            && want.as_str() != stored.sha256
        {
            self.discard_blob(&key).await;
            return Err(Error::BadRequest(DIGEST_MISMATCH.into()));
        }
        let now = Timestamp::now();
        let new_file = NewFile {
            project_id: project.id,
            name: at.name,
            version: at.version,
            status,
            file_name: at.file_name,
            size: stored.size,
            sha256: stored.sha256,
            blob_key: key,
            content,
            refuse_duplicate,
            event: events::publish_draft(principal, &project, now),
            now,
            commits: None,
        };
        let published = self.commit_publish(new_file).await?;
        self.metrics.published(published.1.size, false);
        Ok(published)
    }

    /// Where the blob store keeps bytes (GitLab reports it as a file's `file_store`).
    pub fn blob_location(&self) -> BlobLocation {
        self.blobs.location()
    }

    /// A group's package settings, with the defaults where none were set.
    pub(crate) async fn settings_of(&self, group_id: i64) -> Result<GroupSettings, Error> {
        Ok(self
            .identities
            .group_settings(group_id)
            .await?
            .unwrap_or_default())
    }

    /// The blob store's presigning, which the upload handoff needs.
    fn presigner(&self) -> Result<&dyn Presign, Error> {
        self.blobs.presign().ok_or(Error::UploadsUnsupported)
    }

    /// The blob store's multipart uploads, which large upload sessions need.
    fn multipart(&self) -> Result<&dyn Multipart, Error> {
        self.blobs.multipart().ok_or(Error::UploadsUnsupported)
    }
}

/// GitLab's duplicate rule: the exception regex, anchored, tested against name and version;
/// allowed = toggle ? !match : match.
pub fn duplicates_allowed(
    settings: &GroupSettings,
    name: &PackageName,
    version: &PackageVersion,
) -> bool {
    let pattern = settings.generic_duplicate_exception_regex.as_str();
    let matched = !pattern.is_empty()
        && match Regex::new(&format!(r"\A(?:{pattern})\z")) {
            Ok(re) => re.is_match(name.as_str()) || re.is_match(version.as_str()),
            Err(e) => {
                tracing::warn!(error = %e, "stored duplicate exception regex does not compile");
                false
            }
        };
    if settings.generic_duplicates_allowed {
        !matched
    } else {
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_rule_table() {
        let s = |allowed: bool, re: &str| GroupSettings {
            generic_duplicates_allowed: allowed,
            generic_duplicate_exception_regex: re.into(),
        };
        let n = |x: &str| PackageName::parse(x).unwrap();
        let v = |x: &str| PackageVersion::parse(x).unwrap();
        let table = [
            (s(true, ""), "foo", "1.0", true),
            (s(false, ""), "foo", "1.0", false),
            (s(true, "foo-.*"), "foo-bar", "1.0", false),
            (s(true, "foo-.*"), "foo", "1.0", true),
            (s(true, "foo"), "foobar", "1.0", true),
            (s(true, ".*-SNAPSHOT"), "pkg", "1.0-SNAPSHOT", false),
            (s(false, "foo-.*"), "foo-bar", "1.0", true),
            (s(false, "foo-.*"), "bar", "1.0", false),
            (s(false, "1\\..*"), "bar", "1.2", true),
        ];
        for (settings, name, version, expected) in table {
            assert_eq!(
                duplicates_allowed(&settings, &n(name), &v(version)),
                expected,
                "{settings:?} {name} {version}"
            );
        }
    }
}
