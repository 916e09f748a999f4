//! What the web UI shows of packages beyond the API's lists: each listed package's file count
//! and size, and one package with its files (hidden ones to those who may publish).

use super::{Error, Missing, ProjectAccess, Registry};
use crate::auth::{Action, Principal};
use crate::domain::{Listed, Package, PackageFile, PackageQuery, PackageStatus};

impl Registry {
    /// A project's list page, as `GET /projects/:id/packages` answers it (`query` parsed
    /// once [`Self::api_project`] let the caller in), each package with how many live files
    /// it holds and their bytes in all.
    pub async fn packages_with_totals(
        &self,
        access: &ProjectAccess,
        query: &PackageQuery,
    ) -> Result<Listed<(Package, (u64, u64))>, Error> {
        let projects = std::slice::from_ref(&access.project);
        Ok(self.meta.list_with_totals(projects, query).await?)
    }

    /// A package of the project and its live files, newest first: a listed package to any
    /// reader, a hidden one to those who may publish there.
    pub async fn package_with_files(
        &self,
        principal: &Principal,
        access: &ProjectAccess,
        package_id: i64,
    ) -> Result<(Package, Vec<PackageFile>), Error> {
        let package = self
            .meta
            .package_by_id(package_id)
            .await?
            .filter(|p| p.project_id == access.project.id)
            .filter(|p| match p.status {
                PackageStatus::Default => true,
                PackageStatus::Hidden => access.may(principal, Action::Write),
                PackageStatus::PendingDestruction => false,
            })
            .ok_or(Error::NotFound(Missing::Package))?;
        let mut files = self.meta.files_of(package.id).await?;
        files.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok((package, files))
    }
}
