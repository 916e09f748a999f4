//! Use cases of GitLab's Packages API: list a project's or a group's packages, show one
//! package and its files. Visibility rules live here; handlers only format.

use super::events::project_event;
use super::{Error, Missing, ProjectAccess, Registry};
use crate::auth::{self, Action, Denied, Principal};
use crate::domain::{
    EventType, FileOrder, Group, GroupRef, Listed, Membership, Package, PackageFile, PackageQuery,
    PackageStatus, Project, ProjectRef, Protected, Timestamp, Visibility,
};
use crate::store::{StoreError, is_inline_key};
use futures::{StreamExt, TryStreamExt};
use std::sync::Arc;

/// A package list, the projects its packages belong to, and those of them the caller may
/// delete packages in (for `delete_api_path`).
pub struct PackageList {
    pub listed: Listed<Package>,
    pub projects: Vec<Project>,
    pub deletable: Vec<i64>,
}

impl Registry {
    async fn memberships(&self, principal: &Principal) -> Result<Arc<Vec<Membership>>, Error> {
        Ok(match principal {
            Principal::User { user_id, .. } => self.identities.memberships_of(*user_id).await?,
            _ => Arc::default(),
        })
    }

    /// The project of a Packages API request. Unlike the generic routes (which ask anonymous
    /// callers to authenticate), GitLab answers an anonymous caller here as one who cannot see
    /// a private project (404) and may not change a public one (403).
    pub async fn api_project(
        &self,
        principal: &Principal,
        reference: &ProjectRef,
        action: Action,
    ) -> Result<ProjectAccess, Error> {
        match self.project_access(principal, reference, action).await {
            Err(Error::Denied(Denied::Unauthorized)) if *principal == Principal::Anonymous => {
                let project = match action {
                    Action::Read => None,
                    Action::Write | Action::Delete => self.project_by_ref(reference).await?,
                };
                Err(Error::Denied(match project {
                    Some(p) if p.visibility == Visibility::Public => Denied::Forbidden,
                    _ => Denied::ProjectNotFound,
                }))
            }
            // A CI job's token that cannot see the project is told where it may not go, as
            // GitLab tells it (403), when the project exists.
            Err(Error::Denied(Denied::ProjectNotFound)) => {
                let Principal::User {
                    job_project: Some(source),
                    ..
                } = principal
                else {
                    return Err(Denied::ProjectNotFound.into());
                };
                let target = self.project_by_ref(reference).await?;
                let source = self.meta.project_by_id(*source).await?;
                Err(match (source, target) {
                    (Some(from), Some(to)) => Denied::JobTokenNotAllowed {
                        from: from.name,
                        to: to.name,
                    },
                    _ => Denied::ProjectNotFound,
                }
                .into())
            }
            other => other,
        }
    }

    /// `GET /projects/:id/packages`. `query` is parsed by the caller after
    /// [`Self::api_project`] let it in: GitLab checks access before it validates a query.
    pub async fn project_packages(
        &self,
        principal: &Principal,
        access: ProjectAccess,
        query: &PackageQuery,
    ) -> Result<PackageList, Error> {
        let deletable = if access.may(principal, Action::Delete) {
            vec![access.project.id]
        } else {
            Vec::new()
        };
        let projects = vec![access.project];
        let listed = self.meta.list_packages(&projects, query).await?;
        Ok(PackageList {
            listed,
            projects,
            deletable,
        })
    }

    /// `GET /groups/:id/packages`: packages of the group's projects (and its subgroups' unless
    /// `exclude_subgroups`) that `principal` may read. `group` comes from [`Self::visible_group`].
    pub async fn group_packages(
        &self,
        principal: &Principal,
        group: &Group,
        exclude_subgroups: bool,
        query: &PackageQuery,
    ) -> Result<PackageList, Error> {
        let memberships = self.memberships(principal).await?;
        let projects: Vec<Project> = self
            .meta
            .projects_in_group(group, !exclude_subgroups)
            .await?
            .into_iter()
            .filter(|p| auth::decide(principal, Action::Read, p, &memberships).is_ok())
            .collect();
        let deletable = projects
            .iter()
            .filter(|p| auth::decide(principal, Action::Delete, p, &memberships).is_ok())
            .map(|p| p.id)
            .collect();
        let listed = self.meta.list_packages(&projects, query).await?;
        Ok(PackageList {
            listed,
            projects,
            deletable,
        })
    }

    /// The group `reference` names, if `principal` can see it: a member of it (or of a group
    /// above it), or anyone who may read one of its projects. `GroupNotFound` otherwise.
    pub async fn visible_group(
        &self,
        principal: &Principal,
        reference: &GroupRef,
    ) -> Result<Group, Error> {
        let group = match reference {
            GroupRef::Id(id) => self.meta.group_by_id(*id).await?,
            GroupRef::Path(path) => self.meta.group_by_path(path).await?,
        }
        .ok_or(Error::NotFound(Missing::Group))?;
        let memberships = self.memberships(principal).await?;
        let member = match principal {
            Principal::Anonymous => false,
            Principal::User { job_project, .. } => {
                job_project.is_none()
                    && memberships
                        .iter()
                        .any(|m| m.target.covers_group(&group.path))
            }
            Principal::Deploy { target, .. } => target.covers_group(&group.path),
            Principal::Federated(federated) => federated.covers_group(&group.path),
        };
        if member {
            return Ok(group);
        }
        let projects = self.meta.projects_in_group(&group, true).await?;
        if projects
            .iter()
            .any(|p| auth::decide(principal, Action::Read, p, &memberships).is_ok())
        {
            Ok(group)
        } else {
            Err(Error::NotFound(Missing::Group))
        }
    }

    /// `GET /projects/:id/packages/:package_id`: a package of the project that lists show
    /// (status `default`); hidden and deleted packages are not found.
    pub async fn package(&self, access: &ProjectAccess, package_id: i64) -> Result<Package, Error> {
        self.meta
            .package_by_id(package_id)
            .await?
            .filter(|p| p.project_id == access.project.id && p.status == PackageStatus::Default)
            .ok_or(Error::NotFound(Missing::Package))
    }

    /// The other versions of `package`'s name in its project (the single-package answer's
    /// `versions`), newest version last; at most one page of 100.
    pub async fn other_versions(
        &self,
        project: &Project,
        package: &Package,
    ) -> Result<Vec<Package>, Error> {
        let mut query = PackageQuery::parse(
            [
                ("package_name", package.name.as_str()),
                ("order_by", "version"),
                ("per_page", "100"),
            ],
            false,
        )
        .map_err(Error::Invalid)?;
        // The name is matched as one word, not split on spaces (names have none).
        query.name_words = vec![package.name.as_str().to_lowercase()];
        let listed = self
            .meta
            .list_packages(std::slice::from_ref(project), &query)
            .await?;
        Ok(listed
            .items
            .into_iter()
            .filter(|p| p.name == package.name && p.id != package.id)
            .collect())
    }

    /// `GET /projects/:id/packages/:package_id/package_files`.
    pub async fn package_files(
        &self,
        access: &ProjectAccess,
        package_id: i64,
        order: &FileOrder,
    ) -> Result<Listed<PackageFile>, Error> {
        let package = self.package(access, package_id).await?;
        // A package's files are read whole: one package holds few files, and GitLab's file
        // orders (id, created_at, file_name) are then applied the same way for every store.
        let files = self.meta.files_of(package.id).await?;
        Ok(order.apply(files))
    }
}

/// Blob deletes one purge pass keeps in flight.
const BLOB_DELETES_IN_FLIGHT: usize = 16;

/// What one purge pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub packages: usize,
    pub files: usize,
    pub blobs: usize,
}

impl Registry {
    /// `DELETE /projects/:id/packages/:package_id`: Maintainer or a write deploy token. With
    /// `if_unmodified_since`, a package changed after that instant is kept (412).
    pub async fn delete_package(
        &self,
        principal: &Principal,
        access: &ProjectAccess,
        package_id: i64,
        if_unmodified_since: Option<Timestamp>,
    ) -> Result<(), Error> {
        let package = self.package(access, package_id).await?;
        self.check_protection(principal, &access.project, &package.name, Protected::Delete)
            .await?;
        if let Some(since) = if_unmodified_since
            && package.updated_at > since
        {
            return Err(Error::PreconditionFailed);
        }
        let event = project_event(EventType::PackageDeleted, principal, &access.project)
            .of_package(&package);
        match self
            .meta
            .delete_package(&package, Timestamp::now(), &event)
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound { .. }) => Err(Error::NotFound(Missing::Package)),
            // The answer may have been lost after the delete took effect.
            Err(e) if e.is_transient() && self.package_deleted(package.id).await => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// `DELETE /projects/:id/packages/:package_id/package_files/:file_id`.
    pub async fn delete_package_file(
        &self,
        principal: &Principal,
        access: &ProjectAccess,
        package_id: i64,
        file_id: i64,
    ) -> Result<(), Error> {
        let package = self.package(access, package_id).await?;
        self.check_protection(principal, &access.project, &package.name, Protected::Delete)
            .await?;
        let file = self
            .meta
            .files_of(package.id)
            .await?
            .into_iter()
            .find(|f| f.id == file_id)
            .ok_or(Error::NotFound(Missing::PackageFile))?;
        let event = project_event(EventType::FileDeleted, principal, &access.project)
            .of_package(&package)
            .of_file(&file);
        match self
            .meta
            .delete_file(&package, &file, Timestamp::now(), &event)
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound { .. }) => Err(Error::NotFound(Missing::PackageFile)),
            // The answer may have been lost after the delete took effect.
            Err(e) if e.is_transient() && self.file_deleted(package.id, file.id).await => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove the bytes and records of what was deleted, up to `limit` packages and `limit`
    /// files per pass. The same code runs in `depot serve` (a background task) and on AWS (a
    /// scheduled function). Blobs are deleted before their records, so a pass that stops
    /// halfway leaves records the next pass finishes (a blob already gone is no error); a blob
    /// another record still names is kept. The store is asked about the whole pass at once and
    /// forgets it at once: asked per file, a purge waiting its turn behind every request fell
    /// ever further behind sustained deletes (`make soak` filled the disk).
    pub async fn purge(&self, limit: usize) -> Result<Purged, Error> {
        let (packages, loose) = self.meta.doomed(limit).await?;
        let package_ids: Vec<i64> = packages.iter().map(|p| p.id).collect();
        // Files of a package purged now go with it.
        let mut files: Vec<PackageFile> = loose
            .into_iter()
            .filter(|f| !package_ids.contains(&f.package_id))
            .collect();
        let loose = files.len();
        files.extend(self.meta.all_files_of_packages(&package_ids).await?);
        // A small file's bytes are its record's own: no other record can name them.
        let blob_files: Vec<PackageFile> = files
            .iter()
            .filter(|f| !is_inline_key(&f.blob_key))
            .cloned()
            .collect();
        let shared = self.meta.shared_blobs(&blob_files).await?;
        let mut purged = Purged {
            packages: packages.len(),
            files: files.len(),
            blobs: 0,
        };
        // A blob other records name too goes one record at a time, so that of several doomed
        // records sharing it, the last one forgotten takes it.
        for file in files.iter().filter(|f| shared.contains(&f.id)) {
            purged.blobs += self.purge_file(file).await?;
        }
        // An inline file's bytes go with its record: only blobs are deleted here.
        let unshared: Vec<String> = blob_files
            .iter()
            .filter(|f| !shared.contains(&f.id))
            .map(|f| f.blob_key.clone())
            .collect();
        let deleted: Vec<()> = futures::stream::iter(unshared)
            .map(|key| {
                let blobs = self.blobs.clone();
                async move { blobs.delete(&key).await }
            })
            .buffer_unordered(BLOB_DELETES_IN_FLIGHT)
            .try_collect()
            .await?;
        purged.blobs += deleted.len();
        let forget: Vec<PackageFile> = files[..loose]
            .iter()
            .filter(|f| !shared.contains(&f.id))
            .cloned()
            .collect();
        let packages = self.without_late_files(packages, &files).await?;
        purged.packages = packages.len();
        self.meta.forget(&packages, &forget).await?;
        if purged != Purged::default() {
            self.metrics
                .purged(purged.packages, purged.files, purged.blobs);
            tracing::info!(
                packages = purged.packages,
                files = purged.files,
                blobs = purged.blobs,
                "purged deleted packages and files"
            );
        }
        Ok(purged)
    }

    /// `packages` less those holding a file not among `files`: one published into the package
    /// while it was being deleted may land after the pass listed its files (the DynamoDB store
    /// publishes without a transaction), and the package waits for the next pass, which lists
    /// it again, rather than leave that file and its blob behind.
    async fn without_late_files(
        &self,
        packages: Vec<Package>,
        files: &[PackageFile],
    ) -> Result<Vec<Package>, Error> {
        let ids: Vec<i64> = packages.iter().map(|p| p.id).collect();
        let known: std::collections::HashSet<i64> = files.iter().map(|f| f.id).collect();
        let late: std::collections::HashSet<i64> = self
            .meta
            .all_files_of_packages(&ids)
            .await?
            .into_iter()
            .filter(|f| !known.contains(&f.id))
            .map(|f| f.package_id)
            .collect();
        Ok(packages
            .into_iter()
            .filter(|p| !late.contains(&p.id))
            .collect())
    }

    /// Delete a doomed file's blob (unless another record names it) and then its record; 1 if a
    /// blob went.
    async fn purge_file(&self, file: &PackageFile) -> Result<usize, Error> {
        let shared = self.meta.blob_shared(file).await?;
        if !shared {
            self.blobs.delete(&file.blob_key).await?;
        }
        self.meta.forget_file(file).await?;
        tracing::info!(
            file_id = file.id,
            blob_deleted = !shared,
            "purged a deleted file"
        );
        Ok(usize::from(!shared))
    }
}
