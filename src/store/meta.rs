//! The metadata seam, cut by kind of record: identity (groups, projects, users, memberships,
//! tokens), trust rules, settings, packages (packages, files, lists, deletes), the purge of
//! deleted ones, upload sessions, and events (`events`). Every write a user makes saves its
//! [`Event`] in the same atomic step. Stores load and save records; the registry decides
//! (defaults, status rules, who may). `MetaStore` is every part at once, what a backend
//! implements in full.

use super::error::StoreResult;
use crate::domain::{
    CleanupPolicy, Downloads, Event, FileName, Group, GroupSettings, Listed, Membership,
    MembershipTarget, NewFile, NewGroup, NewToken, NewTrustRule, NewUser, Package, PackageFile,
    PackageName, PackageQuery, PackageVersion, Project, ProtectionRule, Role, SessionState,
    Timestamp, Token, TokenOwner, TrustRule, UploadSession, User, VersionRef, Visibility,
    WebSession,
};
use async_trait::async_trait;
use std::collections::HashSet;

/// Who is who: groups, projects, users, memberships and tokens.
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// True when nothing was ever provisioned (first start).
    async fn is_empty(&self) -> StoreResult<bool>;

    /// Save a new group (its parent, looked up by the caller, exists: groups are never
    /// removed), and `event` (placed in the group); `AlreadyExists` if its path is taken.
    async fn create_group(&self, group: NewGroup, event: &Event) -> StoreResult<Group>;
    async fn group_by_path(&self, path: &str) -> StoreResult<Option<Group>>;
    async fn group_by_id(&self, id: i64) -> StoreResult<Option<Group>>;

    /// Save a new project, and `event` (placed in the project).
    async fn create_project(
        &self,
        group: &Group,
        name: &str,
        visibility: Visibility,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<Project>;
    async fn project_by_id(&self, id: i64) -> StoreResult<Option<Project>>;
    async fn project_by_path(&self, path: &str) -> StoreResult<Option<Project>>;
    /// The projects directly in `group` and, with `subgroups`, in every group below it.
    async fn projects_in_group(&self, group: &Group, subgroups: bool) -> StoreResult<Vec<Project>>;

    /// Every group, by id (few: they are made by people, not by traffic).
    async fn groups(&self) -> StoreResult<Vec<Group>>;
    /// Every project, by id.
    async fn projects(&self) -> StoreResult<Vec<Project>>;

    /// Save a new user, and `event` (its `detail` given the user's id); `AlreadyExists` if the
    /// username is taken.
    async fn create_user(&self, user: NewUser, event: &Event) -> StoreResult<User>;
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>>;
    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>>;
    /// Every user, by id.
    async fn users(&self) -> StoreResult<Vec<User>>;

    /// Add a membership, or change the role of an existing one.
    async fn set_membership(
        &self,
        user_id: i64,
        target: &MembershipTarget,
        role: Role,
        event: &Event,
    ) -> StoreResult<Membership>;
    async fn memberships_of(&self, user_id: i64) -> StoreResult<Vec<Membership>>;
    /// The direct members of a project or group (not those inherited from groups above), by
    /// user id.
    async fn members_of(&self, target: &MembershipTarget) -> StoreResult<Vec<Membership>>;
    /// Remove a membership; `NotFound` if there is none.
    async fn remove_membership(
        &self,
        user_id: i64,
        target: &MembershipTarget,
        event: &Event,
    ) -> StoreResult<()>;

    /// Save a new token, and `event` (its `detail` given the token's id).
    async fn create_token(
        &self,
        token: NewToken,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<Token>;
    async fn token_by_sha256(&self, sha256: &[u8; 32]) -> StoreResult<Option<Token>>;
    async fn token_by_id(&self, id: i64) -> StoreResult<Option<Token>>;
    /// `NotFound` for an unknown id.
    async fn revoke_token(&self, id: i64, event: &Event) -> StoreResult<Token>;
    /// Revoke token `old` and save `new` in its place, both or neither: `NotFound` when `old`
    /// is unknown or revoked already (two rotations of one token make one successor).
    async fn replace_token(
        &self,
        old: i64,
        new: NewToken,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<Token>;
    /// Every token `owner` holds (a user's personal and job tokens, a project's or group's
    /// deploy tokens), revoked ones too, by id.
    async fn tokens_of(&self, owner: &TokenOwner) -> StoreResult<Vec<Token>>;
    /// Write down that `token` authenticated a request at `at` (callers write at most once per
    /// [`crate::domain::LAST_USED_RESOLUTION_MS`]).
    async fn record_token_use(&self, token: &Token, at: Timestamp) -> StoreResult<()>;
}

/// Trust rules of trusted publishing (OIDC).
#[async_trait]
pub trait TrustStore: Send + Sync + 'static {
    /// Save a new rule, and `event` (its `detail` given the rule's id).
    async fn create_trust_rule(&self, rule: NewTrustRule, event: &Event) -> StoreResult<TrustRule>;
    /// The rules of a project or group, by id.
    async fn trust_rules_of(&self, target: &MembershipTarget) -> StoreResult<Vec<TrustRule>>;
    /// Every rule naming `issuer`, whatever its target, by id: what a token of that issuer
    /// is checked against.
    async fn trust_rules_for_issuer(&self, issuer: &str) -> StoreResult<Vec<TrustRule>>;
    /// Remove a rule; `NotFound` for an unknown id.
    async fn remove_trust_rule(&self, id: i64, event: &Event) -> StoreResult<TrustRule>;
}

/// Package protection rules of projects.
#[async_trait]
pub trait ProtectionStore: Send + Sync + 'static {
    /// A project's rules, by id.
    async fn protection_rules(&self, project_id: i64) -> StoreResult<Vec<ProtectionRule>>;
    /// Save a new rule under a new id (`rule.id` is not used); `AlreadyExists` when the
    /// project has a rule of the same type and pattern.
    async fn create_protection_rule(
        &self,
        rule: ProtectionRule,
        event: &Event,
    ) -> StoreResult<ProtectionRule>;
    /// Replace the rule of that id in its project: `NotFound` if there is none,
    /// `AlreadyExists` if another rule has the type and pattern.
    async fn update_protection_rule(&self, rule: &ProtectionRule, event: &Event)
    -> StoreResult<()>;
    /// Remove a project's rule; `NotFound` if there is none.
    async fn delete_protection_rule(
        &self,
        project_id: i64,
        id: i64,
        event: &Event,
    ) -> StoreResult<()>;
}

/// Cleanup policies of projects.
#[async_trait]
pub trait CleanupStore: Send + Sync + 'static {
    /// A project's policy as set; `None` when never set.
    async fn cleanup_policy(&self, project_id: i64) -> StoreResult<Option<CleanupPolicy>>;
    /// Set a project's policy (replacing any).
    async fn set_cleanup_policy(&self, policy: &CleanupPolicy, event: &Event) -> StoreResult<()>;
    /// Every policy set, of every project: what the scheduled runs go through.
    async fn cleanup_policies(&self) -> StoreResult<Vec<CleanupPolicy>>;
    /// Move a policy's next run to `next`, only if it was due by `ran_at` (a change saved
    /// since then set its own, and keeps it); whether it moved.
    async fn schedule_cleanup(
        &self,
        project_id: i64,
        ran_at: Timestamp,
        next: Timestamp,
    ) -> StoreResult<bool>;
}

/// Package settings of groups.
#[async_trait]
pub trait SettingsStore: Send + Sync + 'static {
    /// Settings of a group as stored; `None` when never set (the registry applies the
    /// defaults). `NotFound` for an unknown group.
    async fn group_settings(&self, group_id: i64) -> StoreResult<Option<GroupSettings>>;
    async fn set_group_settings(
        &self,
        group_id: i64,
        settings: &GroupSettings,
        event: &Event,
    ) -> StoreResult<GroupSettings>;
}

/// Packages and their files: publish, find, list, delete.
#[async_trait]
pub trait PackageStore: Send + Sync + 'static {
    /// Does the live package (project, name, version) have a live file named `file_name`?
    async fn live_file_exists(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
        file_name: &FileName,
    ) -> StoreResult<bool>;

    /// The largest file whose bytes this store keeps in the file's record ([`NewFile::content`]),
    /// returned by [`Self::newest_file`]. 0 (the default): it keeps none.
    fn inline_file_max(&self) -> u64 {
        0
    }

    /// Atomically find-or-create the package and add the file, with the event
    /// ([`crate::domain::Event::published`]) of [`NewFile::event`]. With `refuse_duplicate` and a
    /// live file of the same name already there: `AlreadyExists`, and nothing changes. The
    /// file's blob key is its own (no other record names it): the registry makes a new one for
    /// every upload, and the DynamoDB store counts on it (it writes no blob reference).
    async fn publish(&self, file: NewFile) -> StoreResult<(Package, PackageFile)>;

    /// The newest live file `file_name` of the package (project, name, version), with its
    /// package, when the package is `default` or `hidden`; with its bytes when the record
    /// keeps them.
    async fn newest_file(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
        file_name: &FileName,
    ) -> StoreResult<Option<(Package, PackageFile)>>;

    /// The live package (project, name, version), `default` or `hidden`.
    async fn package_at(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
    ) -> StoreResult<Option<Package>>;

    /// The versions of `name` in the project that `latest` chooses from, in no particular
    /// order: its live packages, maybe with some a moment deleted or hidden (the caller checks
    /// the one it picks). With `best`, at least the `best` highest of each kind of version
    /// ([`crate::domain::RankClass`]; pre-releases may be left out while there are others),
    /// or all of a kind that has fewer; without, all.
    async fn versions_of(
        &self,
        project_id: i64,
        name: &PackageName,
        best: Option<usize>,
    ) -> StoreResult<Vec<VersionRef>>;

    /// Record downloads: the package's `last_downloaded_at` set to `at`, and `counted` added
    /// to its count and its files' (a package or file gone meanwhile is skipped).
    async fn record_downloads(
        &self,
        package: &Package,
        at: Timestamp,
        counted: &Downloads,
    ) -> StoreResult<()>;

    /// A package by id, whatever its status (callers decide what is visible).
    async fn package_by_id(&self, id: i64) -> StoreResult<Option<Package>>;

    /// One page of the packages of `projects` that match `query` ([`PackageQuery::matches`]),
    /// in its order (ties broken by creation, then id; `project_path` lists each
    /// project's packages newest id first in both directions, as GitLab does), counted up to
    /// [`crate::domain::COUNT_LIMIT`].
    async fn list_packages(
        &self,
        projects: &[Project],
        query: &PackageQuery,
    ) -> StoreResult<Listed<Package>>;

    /// The live files of a package, in no particular order, each with its downloads counted
    /// (a file found otherwise, as by [`Self::newest_file`], need not carry its count).
    async fn files_of(&self, package_id: i64) -> StoreResult<Vec<PackageFile>>;

    /// How many live files each of `package_ids` holds and their bytes in all (a list page's
    /// rows in the web UI). By default one package after another.
    async fn file_totals(&self, package_ids: &[i64]) -> StoreResult<Vec<(u64, u64)>> {
        let mut totals = Vec::with_capacity(package_ids.len());
        for &id in package_ids {
            let files = self.files_of(id).await?;
            totals.push((files.len() as u64, files.iter().map(|f| f.size).sum()));
        }
        Ok(totals)
    }

    /// A page as [`Self::list_packages`] answers it, each package with its live files' count
    /// and bytes (the web UI's rows): by default the page, then [`Self::file_totals`].
    async fn list_with_totals(
        &self,
        projects: &[Project],
        query: &PackageQuery,
    ) -> StoreResult<Listed<(Package, (u64, u64))>> {
        let listed = self.list_packages(projects, query).await?;
        let ids: Vec<i64> = listed.items.iter().map(|p| p.id).collect();
        let mut totals = self.file_totals(&ids).await?.into_iter();
        Ok(listed.map(|p| (p, totals.next().unwrap_or_default())))
    }

    /// Mark a live package pending destruction: it leaves lists and downloads at once, and
    /// its name and version are free for a new package. `NotFound` if it is not live.
    async fn delete_package(
        &self,
        package: &Package,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<()>;

    /// Mark one live file pending destruction (gone from downloads and file lists at once; its
    /// name no longer counts as a duplicate unless another live file has it). `NotFound` if it
    /// is not live.
    async fn delete_file(
        &self,
        package: &Package,
        file: &PackageFile,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<()>;
}

/// What deletes left behind, and forgetting it once its bytes are gone.
#[async_trait]
pub trait PurgeStore: Send + Sync + 'static {
    /// Up to `limit` packages pending destruction and up to `limit` files pending destruction
    /// (of live packages), for the purge.
    async fn doomed(&self, limit: usize) -> StoreResult<(Vec<Package>, Vec<PackageFile>)>;

    /// Every file record of a package, whatever its status (for the purge).
    async fn all_files_of(&self, package_id: i64) -> StoreResult<Vec<PackageFile>>;

    /// Does a file record other than `file` point at its blob? Records are counted until they
    /// are forgotten, so a blob is kept while any record, live or doomed, still names it.
    /// Publishes no longer share blobs ([`PackageStore::publish`]); this keeps the purge safe
    /// for records written by builds that let them (DynamoDB: their blob references).
    async fn blob_shared(&self, file: &PackageFile) -> StoreResult<bool>;

    /// Remove a purged file's record for good.
    async fn forget_file(&self, file: &PackageFile) -> StoreResult<()>;

    /// Remove a purged package's record (and whatever it still holds) for good.
    async fn forget_package(&self, package: &Package) -> StoreResult<()>;

    /// [`Self::all_files_of`] for many packages: the purge asks once per pass, not once per
    /// package (a store whose every call waits its turn behind the requests would otherwise
    /// fall behind the deletes). By default one package after another.
    async fn all_files_of_packages(&self, package_ids: &[i64]) -> StoreResult<Vec<PackageFile>> {
        let mut files = Vec::new();
        for &id in package_ids {
            files.extend(self.all_files_of(id).await?);
        }
        Ok(files)
    }

    /// [`Self::blob_shared`] for many files: the ids of those whose blob a record other than
    /// itself names. By default one file after another.
    async fn shared_blobs(&self, files: &[PackageFile]) -> StoreResult<HashSet<i64>> {
        let mut shared = HashSet::new();
        for file in files {
            if self.blob_shared(file).await? {
                shared.insert(file.id);
            }
        }
        Ok(shared)
    }

    /// Forget purged `files` and `packages` (with whatever they still hold) for good. By
    /// default one record after another, files first.
    async fn forget(&self, packages: &[Package], files: &[PackageFile]) -> StoreResult<()> {
        for file in files {
            self.forget_file(file).await?;
        }
        for package in packages {
            self.forget_package(package).await?;
        }
        Ok(())
    }
}

/// Upload sessions of the large-file handoff.
#[async_trait]
pub trait UploadSessionStore: Send + Sync + 'static {
    /// Record a new upload session; `AlreadyExists` if its id is taken.
    async fn create_upload_session(&self, session: &UploadSession) -> StoreResult<()>;

    async fn upload_session(&self, id: &str) -> StoreResult<Option<UploadSession>>;

    /// Claim a session for committing until `until`: from `Pending`, or from a `Committing`
    /// whose lease lapsed before `now`. `None` (and no change) when someone else holds it or
    /// it is settled; callers then read it again.
    async fn claim_upload_session(
        &self,
        id: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<UploadSession>>;

    /// Give a session its final `state` (committed, refused, aborted) unless it is settled
    /// already; `None` (and no change) in that case.
    async fn settle_upload_session(
        &self,
        id: &str,
        state: &SessionState,
    ) -> StoreResult<Option<UploadSession>>;
}

/// Signed-in sessions of the web UI, by the hash of their id.
#[async_trait]
pub trait WebSessionStore: Send + Sync + 'static {
    async fn create_web_session(&self, session: &WebSession) -> StoreResult<()>;
    /// The session, whatever its expiry (callers decide; stores drop expired ones in time).
    async fn web_session(&self, sha256: &[u8; 32]) -> StoreResult<Option<WebSession>>;
    /// Sign out: the session is gone (nothing happens for an unknown one).
    async fn delete_web_session(&self, sha256: &[u8; 32]) -> StoreResult<()>;
}

/// Every kind of record: what a metadata backend implements, and what the registry holds.
/// Every implementation passes the same conformance suite.
pub trait MetaStore:
    IdentityStore
    + TrustStore
    + ProtectionStore
    + CleanupStore
    + SettingsStore
    + PackageStore
    + PurgeStore
    + UploadSessionStore
    + WebSessionStore
    + super::EventStore
{
}

impl<T> MetaStore for T where
    T: IdentityStore
        + TrustStore
        + ProtectionStore
        + CleanupStore
        + SettingsStore
        + PackageStore
        + PurgeStore
        + UploadSessionStore
        + WebSessionStore
        + super::EventStore
{
}
