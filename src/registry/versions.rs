//! A package version as a whole: its manifest (the newest live file of each name), for
//! `GET /projects/:id/packages/generic/:name/:version` and `depot pull --all`; and `latest`, the
//! version a download or manifest of the version `latest` means ([`crate::domain::latest_order`])
//! unless a version is literally named so.

use super::FileCoordinates;
use super::{Error, Missing, Registry};
use crate::auth::{Action, Principal};
use crate::domain::{
    Package, PackageFile, PackageName, PackageStatus, PackageVersion, Project, ProjectRef,
    latest_order,
};
use std::collections::HashSet;

impl Registry {
    /// The live package (`default` or `hidden`, as downloads find them) and the newest live
    /// file of each of its names, in name order, as `principal` may read them.
    pub async fn manifest(
        &self,
        principal: &Principal,
        project: &ProjectRef,
        name: &PackageName,
        version: &PackageVersion,
    ) -> Result<(Project, Package, Vec<PackageFile>), Error> {
        let project = self
            .authorized_project(principal, project, Action::Read)
            .await?;
        let mut package = self.meta.package_at(project.id, name, version).await?;
        if package.is_none() && version.as_str() == LATEST {
            package = self
                .latest_candidates(&project, name)
                .await?
                .into_iter()
                .next();
        }
        let package = package.ok_or(Error::NotFound(Missing::Package))?;
        let files = newest_of_each_name(self.meta.files_of(package.id).await?);
        Ok((project, package, files))
    }

    /// The newest live file at `at`, whose version is `latest`: the literal version if there is
    /// one (GitLab's meaning), else the file of the highest version holding it
    /// ([`latest_order`]; hidden packages never).
    pub(super) async fn latest_file(
        &self,
        project: &Project,
        at: &FileCoordinates,
    ) -> Result<Option<(Package, PackageFile)>, Error> {
        let literal = self
            .meta
            .package_at(project.id, &at.name, &at.version)
            .await?;
        let candidates = match literal {
            Some(package) => vec![package],
            None => self.latest_candidates(project, &at.name).await?,
        };
        for candidate in candidates {
            let found = self
                .meta
                .newest_file(project.id, &at.name, &candidate.version, &at.file_name)
                .await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The versions of `name` that `latest` may mean, in the order it tries them.
    async fn latest_candidates(
        &self,
        project: &Project,
        name: &PackageName,
    ) -> Result<Vec<Package>, Error> {
        let mut versions = self.meta.versions_of(project.id, name).await?;
        versions.retain(|p| p.status == PackageStatus::Default);
        Ok(latest_order(versions))
    }
}

/// The version a download or manifest means by `latest`, when no version has that name.
pub const LATEST: &str = "latest";

/// The newest file of each name among `files`, in name order.
pub fn newest_of_each_name(mut files: Vec<PackageFile>) -> Vec<PackageFile> {
    files.sort_by(|a, b| a.file_name.cmp(&b.file_name).then(b.id.cmp(&a.id)));
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(f.file_name.clone()));
    files
}
