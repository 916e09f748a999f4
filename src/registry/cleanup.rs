//! Cleanup policies: a project's Maintainers set one, preview what it would take, and the
//! purge schedule (the background task of `depot serve`, the scheduled function on AWS) runs
//! each policy when it is due, every 12 hours. A run deletes as a person would: packages and
//! files become pending destruction, and the purge removes their bytes.

use super::events::{project_event, system_event};
use super::{Error, ProjectAccess, Registry};
use crate::auth::Principal;
use crate::domain::{
    CLEANUP_EVERY_SECONDS, CleanupPlan, CleanupPolicy, CleanupReason, EventType, Package,
    PackageQuery, Project, Timestamp, cleanup_plan,
};
use crate::store::{MetaStore, StoreError};

/// What a request changes of a policy: `Some(None)` turns a rule off.
#[derive(Debug, Clone, Default)]
pub struct CleanupChanges {
    pub keep_n_duplicated_package_files: Option<Option<u32>>,
    pub keep_n_latest_versions: Option<Option<u32>>,
    pub delete_versions_older_than_days: Option<Option<u32>>,
    pub delete_versions_not_downloaded_for_days: Option<Option<u32>>,
    pub package_name_regex: Option<Option<String>>,
}

/// What the scheduled runs took away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanedUp {
    pub packages: usize,
    pub files: usize,
}

/// Live packages a plan looks at, at most, per project and run.
const PACKAGES_LOOKED_AT: u64 = 10_000;

impl Registry {
    /// `GET /projects/:id/packages/cleanup_policy`: the policy, or one that takes nothing.
    pub async fn cleanup_policy(
        &self,
        principal: &Principal,
        access: &ProjectAccess,
    ) -> Result<CleanupPolicy, Error> {
        Self::manages_rules(principal, access)?;
        let project_id = access.project.id;
        let set = self.meta.cleanup_policy(project_id).await?;
        Ok(set.unwrap_or_else(|| CleanupPolicy::off(project_id, Timestamp::now())))
    }

    /// `PUT /projects/:id/packages/cleanup_policy`: the fields given; it runs at the next
    /// pass of the purge, then every 12 hours.
    pub async fn set_cleanup_policy(
        &self,
        principal: &Principal,
        access: &ProjectAccess,
        changes: CleanupChanges,
    ) -> Result<CleanupPolicy, Error> {
        let old = self.cleanup_policy(principal, access).await?;
        if let Some(Some(re)) = &changes.package_name_regex {
            regex::Regex::new(re).map_err(|_| Error::Validation {
                field: "package_name_regex",
                message: "is an invalid regexp".into(),
            })?;
        }
        let policy = CleanupPolicy {
            keep_n_duplicated_package_files: changes
                .keep_n_duplicated_package_files
                .unwrap_or(old.keep_n_duplicated_package_files),
            keep_n_latest_versions: changes
                .keep_n_latest_versions
                .unwrap_or(old.keep_n_latest_versions),
            delete_versions_older_than_days: changes
                .delete_versions_older_than_days
                .unwrap_or(old.delete_versions_older_than_days),
            delete_versions_not_downloaded_for_days: changes
                .delete_versions_not_downloaded_for_days
                .unwrap_or(old.delete_versions_not_downloaded_for_days),
            package_name_regex: changes.package_name_regex.unwrap_or(old.package_name_regex),
            next_run_at: Timestamp::now(),
            ..old
        };
        let event = project_event(EventType::CleanupPolicyChanged, principal, &access.project)
            .with_detail(policy_detail(&policy));
        self.meta.set_cleanup_policy(&policy, &event).await?;
        Ok(policy)
    }

    /// `GET /projects/:id/packages/cleanup_policy/preview`: what a run would take now.
    pub async fn preview_cleanup(
        &self,
        principal: &Principal,
        access: &ProjectAccess,
    ) -> Result<CleanupPlan, Error> {
        let policy = self.cleanup_policy(principal, access).await?;
        plan_cleanup(self.meta.as_ref(), &access.project, &policy).await
    }

    /// Run every policy that is due (the purge schedule calls it); each runs again in 12
    /// hours. A project whose run fails is logged and passed over until then, so it never
    /// holds the others back.
    pub async fn run_due_cleanups(&self) -> Result<CleanedUp, Error> {
        let now = Timestamp::now();
        let mut total = CleanedUp::default();
        for policy in self.meta.cleanup_policies().await? {
            if policy.next_run_at > now || !policy.is_active() {
                continue;
            }
            match self.run_cleanup(&policy).await {
                Ok(done) => {
                    total.packages += done.packages;
                    total.files += done.files;
                }
                Err(e) => {
                    let project_id = policy.project_id;
                    tracing::error!(project_id, error = %e, "cleanup policy failed; next in 12 hours");
                }
            }
            // Only if still due: a change saved during the run keeps its own next run (the
            // next pass).
            let next = now.plus_seconds(CLEANUP_EVERY_SECONDS);
            self.meta
                .schedule_cleanup(policy.project_id, now, next)
                .await?;
        }
        Ok(total)
    }

    async fn run_cleanup(&self, policy: &CleanupPolicy) -> Result<CleanedUp, Error> {
        let Some(project) = self.meta.project_by_id(policy.project_id).await? else {
            return Ok(CleanedUp::default());
        };
        let plan = plan_cleanup(self.meta.as_ref(), &project, policy).await?;
        carry_out(self.meta.as_ref(), &project, &plan).await
    }
}

/// What `policy` takes from `project` now (the same for a preview, a run and `depot admin
/// cleanup`).
pub async fn plan_cleanup(
    meta: &dyn MetaStore,
    project: &Project,
    policy: &CleanupPolicy,
) -> Result<CleanupPlan, Error> {
    if !policy.is_active() {
        return Ok(CleanupPlan::default());
    }
    let mut packages = Vec::new();
    for package in live_packages(meta, project).await? {
        let files = match policy.keep_n_duplicated_package_files {
            Some(_) => meta.files_of(package.id).await?,
            None => Vec::new(),
        };
        packages.push((package, files));
    }
    let rules = meta.protection_rules(project.id).await?;
    let regex = match &policy.package_name_regex {
        Some(re) => {
            Some(regex::Regex::new(re).map_err(|e| StoreError::corrupt("package_name_regex", e))?)
        }
        None => None,
    };
    Ok(cleanup_plan(
        policy,
        &packages,
        |name| rules.iter().any(|r| r.covers(name)),
        |name| regex.as_ref().is_none_or(|re| re.is_match(name.as_str())),
        Timestamp::now(),
    ))
}

/// A project's live packages, listed and hidden (at most [`PACKAGES_LOOKED_AT`]).
async fn live_packages(meta: &dyn MetaStore, project: &Project) -> Result<Vec<Package>, Error> {
    let mut all = Vec::new();
    for status in ["default", "hidden"] {
        for page in 1.. {
            let page_text = page.to_string();
            let pairs = [
                ("per_page", "100"),
                ("page", page_text.as_str()),
                ("status", status),
            ];
            let query = PackageQuery::parse(pairs, false)?;
            let listed = meta
                .list_packages(std::slice::from_ref(project), &query)
                .await?;
            all.extend(listed.items);
            if !listed.has_next || all.len() as u64 >= PACKAGES_LOOKED_AT {
                break;
            }
        }
    }
    Ok(all)
}

/// Take what `plan` names in `project`, as deletes do (a package or file gone meanwhile is
/// skipped); depot itself is the events' actor, the policy's rule their reason.
pub async fn carry_out(
    meta: &dyn MetaStore,
    project: &Project,
    plan: &CleanupPlan,
) -> Result<CleanedUp, Error> {
    let now = Timestamp::now();
    let mut done = CleanedUp::default();
    let event = |kind, package: &Package, reason: CleanupReason| {
        system_event(kind)
            .in_project(project)
            .of_package(package)
            .with_detail(serde_json::json!({ "cleanup_policy": reason.as_str() }))
    };
    for (package, reason) in &plan.packages {
        let event = event(EventType::PackageDeleted, package, *reason);
        if gone_or_done(meta.delete_package(package, now, &event).await)? {
            done.packages += 1;
        }
    }
    for (package, file, reason) in &plan.files {
        let event = event(EventType::FileDeleted, package, *reason).of_file(file);
        if gone_or_done(meta.delete_file(package, file, now, &event).await)? {
            done.files += 1;
        }
    }
    Ok(done)
}

/// `true` if the delete took effect; a record already gone is no error.
fn gone_or_done(result: Result<(), StoreError>) -> Result<bool, Error> {
    match result {
        Ok(()) => Ok(true),
        Err(StoreError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A policy as an event's `detail` tells it.
fn policy_detail(policy: &CleanupPolicy) -> serde_json::Value {
    serde_json::json!({
        "keep_n_duplicated_package_files": policy.keep_n_duplicated_package_files,
        "keep_n_latest_versions": policy.keep_n_latest_versions,
        "delete_versions_older_than_days": policy.delete_versions_older_than_days,
        "delete_versions_not_downloaded_for_days": policy.delete_versions_not_downloaded_for_days,
        "package_name_regex": policy.package_name_regex,
    })
}
