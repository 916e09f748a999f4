//! Use cases of the Packages API (SPEC.md §7): list a project's or a group's packages, show one
//! package and its files. Visibility rules live here; handlers only format.

use super::{Error, Registry};
use crate::auth::{self, Action, Denied, Principal};
use crate::domain::{
    FileOrder, Group, GroupRef, Listed, Membership, Package, PackageFile, PackageQuery,
    PackageStatus, Project, ProjectRef,
};

/// A package list and the projects its packages belong to.
pub struct PackageList {
    pub listed: Listed<Package>,
    pub projects: Vec<Project>,
}

impl Registry {
    async fn memberships(&self, principal: &Principal) -> Result<Vec<Membership>, Error> {
        Ok(match principal {
            Principal::User { user_id, .. } => self.meta.memberships_of(*user_id).await?,
            _ => Vec::new(),
        })
    }

    /// May `principal` do `action` on `project`? (For showing links such as
    /// `delete_api_path`, never for refusing.)
    pub async fn may(&self, principal: &Principal, action: Action, project: &Project) -> bool {
        match self.memberships(principal).await {
            Ok(memberships) => auth::decide(principal, action, project, &memberships).is_ok(),
            Err(_) => false,
        }
    }

    /// The project of a Packages API request. Unlike the generic routes (which ask anonymous
    /// callers to authenticate), GitLab answers an anonymous read of a private project here
    /// with 404, as for any project the caller cannot see.
    pub async fn api_project(
        &self,
        principal: &Principal,
        reference: &ProjectRef,
        action: Action,
    ) -> Result<Project, Error> {
        match self.authorized_project(principal, reference, action).await {
            Err(Error::Denied(Denied::Unauthorized))
                if *principal == Principal::Anonymous && action == Action::Read =>
            {
                Err(Error::Denied(Denied::ProjectNotFound))
            }
            other => other,
        }
    }

    /// `GET /projects/:id/packages`.
    pub async fn project_packages(
        &self,
        principal: &Principal,
        project: &ProjectRef,
        query: &PackageQuery,
    ) -> Result<PackageList, Error> {
        let project = self.api_project(principal, project, Action::Read).await?;
        let projects = vec![project];
        let listed = self.meta.list_packages(&projects, query).await?;
        Ok(PackageList { listed, projects })
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
        let listed = self.meta.list_packages(&projects, query).await?;
        Ok(PackageList { listed, projects })
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
        .ok_or(Error::GroupNotFound)?;
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
            Err(Error::GroupNotFound)
        }
    }

    /// `GET /projects/:id/packages/:package_id`: a package of the project that lists show
    /// (status `default`); hidden and deleted packages are not found.
    pub async fn package(
        &self,
        principal: &Principal,
        project: &ProjectRef,
        package_id: i64,
        action: Action,
    ) -> Result<(Project, Package), Error> {
        let project = self.api_project(principal, project, action).await?;
        let package = self
            .meta
            .package_by_id(package_id)
            .await?
            .filter(|p| p.project_id == project.id && p.status == PackageStatus::Default)
            .ok_or(Error::NotFound)?;
        Ok((project, package))
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
        principal: &Principal,
        project: &ProjectRef,
        package_id: i64,
        order: &FileOrder,
    ) -> Result<Listed<PackageFile>, Error> {
        let (_, package) = self
            .package(principal, project, package_id, Action::Read)
            .await?;
        // A package's files are read whole: one package holds few files, and GitLab's file
        // orders (id, created_at, file_name) are then applied the same way for every store.
        let files = self.meta.files_of(package.id).await?;
        Ok(order.apply(files))
    }
}
