//! What the web UI shows of packages beyond the API's lists: each listed package's file count
//! and size, and one package with its files (hidden ones to those who may publish).

use super::{Error, Missing, ProjectAccess, Registry};
use crate::auth::{Action, Principal};
use crate::domain::{Package, PackageFile, PackageStatus};

impl Registry {
    /// How many live files each of `packages` holds, and their bytes in all.
    pub async fn file_totals(&self, packages: &[Package]) -> Result<Vec<(u64, u64)>, Error> {
        let ids: Vec<i64> = packages.iter().map(|p| p.id).collect();
        Ok(self.meta.file_totals(&ids).await?)
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
