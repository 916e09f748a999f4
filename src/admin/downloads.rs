//! `depot admin downloads <project>`: a project's packages with the downloads counted of each
//! and of each file (what the Packages API's `download_count` fields show), for an operator.

use super::{Admin, AdminError, Result};
use crate::domain::{Package, PackageFile, PackageQuery};

/// Packages listed at most (newest first).
const LISTED: &str = "100";

impl Admin {
    /// The live packages of project `path`, newest first (at most 100), each with its files.
    pub async fn downloads(&self, path: &str) -> Result<Vec<(Package, Vec<PackageFile>)>> {
        let project = self
            .find_project(path)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("project {path:?}")))?;
        let query = PackageQuery::parse([("per_page", LISTED)], false)
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        let listed = self
            .meta
            .list_packages(std::slice::from_ref(&project), &query)
            .await
            .map_err(AdminError::Store)?;
        let mut out = Vec::with_capacity(listed.items.len());
        for package in listed.items {
            let mut files = self
                .meta
                .files_of(package.id)
                .await
                .map_err(AdminError::Store)?;
            files.sort_by(|a, b| a.file_name.cmp(&b.file_name).then(a.id.cmp(&b.id)));
            out.push((package, files));
        }
        Ok(out)
    }
}
