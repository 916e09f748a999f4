//! A project's packages for an operator: `depot admin downloads <project>` (the downloads
//! counted of each package and file, as the Packages API's `download_count` fields show them)
//! and `depot admin cleanup <project> [--dry-run]` (its cleanup policy, now).

use super::{Admin, AdminError, Result};
use crate::domain::{CleanupPlan, CleanupPolicy, Package, PackageFile, PackageQuery, Timestamp};
use crate::registry::{CleanedUp, carry_out, plan_cleanup};

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

impl Admin {
    /// `depot admin cleanup <project> [--dry-run]`: what the project's cleanup policy takes
    /// now, and (unless a dry run) take it, as a scheduled run would.
    pub async fn cleanup(
        &self,
        path: &str,
        dry_run: bool,
    ) -> Result<(CleanupPlan, Option<CleanedUp>)> {
        let project = self
            .find_project(path)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("project {path:?}")))?;
        let policy = self
            .meta
            .cleanup_policy(project.id)
            .await
            .map_err(AdminError::Store)?
            .unwrap_or_else(|| CleanupPolicy::off(project.id, Timestamp::now()));
        let failed = |e: crate::registry::Error| AdminError::Invalid(e.to_string());
        let plan = plan_cleanup(self.meta.as_ref(), &project, &policy)
            .await
            .map_err(failed)?;
        if dry_run {
            return Ok((plan, None));
        }
        let done = carry_out(self.meta.as_ref(), &project, &plan)
            .await
            .map_err(failed)?;
        Ok((plan, Some(done)))
    }
}
