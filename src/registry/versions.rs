//! A package version as a whole: its manifest (the newest live file of each name), for
//! `GET /projects/:id/packages/generic/:name/:version` and `depot pull --all`.

use super::{Error, Missing, Registry};
use crate::auth::{Action, Principal};
use crate::domain::{Package, PackageFile, PackageName, PackageVersion, Project, ProjectRef};
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
        let package = self
            .meta
            .package_at(project.id, name, version)
            .await?
            .ok_or(Error::NotFound(Missing::Package))?;
        let files = newest_of_each_name(self.meta.files_of(package.id).await?);
        Ok((project, package, files))
    }
}

/// The newest file of each name among `files`, in name order.
pub fn newest_of_each_name(mut files: Vec<PackageFile>) -> Vec<PackageFile> {
    files.sort_by(|a, b| a.file_name.cmp(&b.file_name).then(b.id.cmp(&a.id)));
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(f.file_name.clone()));
    files
}
