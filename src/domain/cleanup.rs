//! A project's cleanup policy and what it takes away: GitLab's `keep_n_duplicated_package_files`
//! (the newest N files of each name in a package), and depot's version rules: keep the N most
//! recent versions of each package name, remove versions older than D days or not downloaded
//! for D days, those three limited to names matching a regex if one is set. Protected packages
//! are never touched. [`cleanup_plan`] is pure: the dry run and the real run share it.

use super::{Package, PackageFile, PackageName, Timestamp};
use std::collections::HashMap;

/// GitLab's values of `keep_n_duplicated_package_files` (`all`: keep every file).
pub const KEEP_N_DUPLICATED_VALUES: [&str; 7] = ["all", "1", "10", "20", "30", "40", "50"];

/// How often a policy runs (GitLab's fixed cadence).
pub const CLEANUP_EVERY_SECONDS: i64 = 12 * 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub project_id: i64,
    /// `None`: `all`, keep every duplicate.
    pub keep_n_duplicated_package_files: Option<u32>,
    pub keep_n_latest_versions: Option<u32>,
    pub delete_versions_older_than_days: Option<u32>,
    pub delete_versions_not_downloaded_for_days: Option<u32>,
    /// Limits the version rules to names it matches (anywhere in the name, as GitLab's
    /// regexes of package settings do).
    pub package_name_regex: Option<String>,
    pub next_run_at: Timestamp,
}

impl CleanupPolicy {
    /// A project's policy before any is set: nothing removed.
    pub fn off(project_id: i64, now: Timestamp) -> Self {
        Self {
            project_id,
            keep_n_duplicated_package_files: None,
            keep_n_latest_versions: None,
            delete_versions_older_than_days: None,
            delete_versions_not_downloaded_for_days: None,
            package_name_regex: None,
            next_run_at: now,
        }
    }

    /// Does it remove anything at all?
    pub fn is_active(&self) -> bool {
        self.keep_n_duplicated_package_files.is_some() || self.has_version_rules()
    }

    fn has_version_rules(&self) -> bool {
        self.keep_n_latest_versions.is_some()
            || self.delete_versions_older_than_days.is_some()
            || self.delete_versions_not_downloaded_for_days.is_some()
    }

    /// `keep_n_duplicated_package_files` as GitLab writes it.
    pub fn keep_n_duplicated_text(&self) -> String {
        self.keep_n_duplicated_package_files
            .map_or("all".to_string(), |n| n.to_string())
    }
}

/// Why something goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupReason {
    KeepNLatestVersions,
    OlderThan,
    NotDownloaded,
    DuplicatedFile,
}

impl CleanupReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupReason::KeepNLatestVersions => "keep_n_latest_versions",
            CleanupReason::OlderThan => "delete_versions_older_than_days",
            CleanupReason::NotDownloaded => "delete_versions_not_downloaded_for_days",
            CleanupReason::DuplicatedFile => "keep_n_duplicated_package_files",
        }
    }
}

/// What a run removes: whole versions, and older duplicate files of the versions it keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupPlan {
    pub packages: Vec<(Package, CleanupReason)>,
    pub files: Vec<(Package, PackageFile, CleanupReason)>,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The plan of `policy` over a project's live `packages` (each with its live files; files are
/// needed only for the duplicates rule), at `now`. `protected`: names no run may touch.
/// `name_matches`: the policy's regex (or everything).
pub fn cleanup_plan(
    policy: &CleanupPolicy,
    packages: &[(Package, Vec<PackageFile>)],
    protected: impl Fn(&PackageName) -> bool,
    name_matches: impl Fn(&PackageName) -> bool,
    now: Timestamp,
) -> CleanupPlan {
    let mut out = CleanupPlan::default();
    let touchable: Vec<&(Package, Vec<PackageFile>)> = packages
        .iter()
        .filter(|(p, _)| !protected(&p.name))
        .collect();
    let mut by_name: HashMap<&str, Vec<&Package>> = HashMap::new();
    for (package, _) in &touchable {
        by_name
            .entry(package.name.as_str())
            .or_default()
            .push(package);
    }
    let days_ago = |days: u32| now.millis() - i64::from(days) * DAY_MS;
    for versions in by_name.values_mut() {
        if !name_matches(&versions[0].name) || !policy.has_version_rules() {
            continue;
        }
        versions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        for (rank, package) in versions.iter().enumerate() {
            let last_use = package.last_downloaded_at.unwrap_or(package.created_at);
            let reason = if policy
                .keep_n_latest_versions
                .is_some_and(|n| rank >= n as usize)
            {
                Some(CleanupReason::KeepNLatestVersions)
            } else if policy
                .delete_versions_older_than_days
                .is_some_and(|d| package.created_at.millis() < days_ago(d))
            {
                Some(CleanupReason::OlderThan)
            } else if policy
                .delete_versions_not_downloaded_for_days
                .is_some_and(|d| last_use.millis() < days_ago(d))
            {
                Some(CleanupReason::NotDownloaded)
            } else {
                None
            };
            if let Some(reason) = reason {
                out.packages.push(((*package).clone(), reason));
            }
        }
    }
    if let Some(keep) = policy.keep_n_duplicated_package_files {
        for (package, files) in touchable {
            if out.packages.iter().any(|(p, _)| p.id == package.id) {
                continue;
            }
            for file in older_duplicates(files, keep as usize) {
                let reason = CleanupReason::DuplicatedFile;
                out.files.push((package.clone(), file.clone(), reason));
            }
        }
    }
    out.packages.sort_by_key(|(p, _)| p.id);
    out.files.sort_by_key(|(_, f, _)| f.id);
    out
}

/// The files of each name beyond the newest `keep`.
fn older_duplicates(files: &[PackageFile], keep: usize) -> Vec<&PackageFile> {
    let mut by_name: HashMap<&str, Vec<&PackageFile>> = HashMap::new();
    for file in files {
        by_name
            .entry(file.file_name.as_str())
            .or_default()
            .push(file);
    }
    let mut older = Vec::new();
    for mut same in by_name.into_values() {
        same.sort_by_key(|f| std::cmp::Reverse(f.id));
        older.extend(same.into_iter().skip(keep));
    }
    older
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FileName, PackageStatus, PackageVersion};

    fn day(n: i64) -> Timestamp {
        Timestamp::from_millis(1_800_000_000_000 + n * DAY_MS)
    }

    fn package(id: i64, name: &str, created: i64, downloaded: Option<i64>) -> Package {
        Package {
            id,
            project_id: 1,
            name: PackageName::parse(name).unwrap(),
            version: PackageVersion::parse(&format!("1.{id}")).unwrap(),
            status: PackageStatus::Default,
            created_at: day(created),
            updated_at: day(created),
            last_downloaded_at: downloaded.map(day),
            download_count: 0,
        }
    }

    fn file(id: i64, package_id: i64, name: &str) -> PackageFile {
        PackageFile {
            id,
            package_id,
            file_name: FileName::parse(None, name).unwrap(),
            size: 1,
            sha256: "00".repeat(32),
            blob_key: String::new(),
            created_at: day(0),
            updated_at: day(0),
            content: None,
            download_count: 0,
        }
    }

    fn ids(plan: &CleanupPlan) -> (Vec<(i64, &str)>, Vec<i64>) {
        (
            plan.packages
                .iter()
                .map(|(p, r)| (p.id, r.as_str()))
                .collect(),
            plan.files.iter().map(|(_, f, _)| f.id).collect(),
        )
    }

    #[test]
    fn each_rule_takes_what_it_names() {
        let packages = vec![
            (package(1, "app", 0, None), vec![]),
            (package(2, "app", 10, Some(29)), vec![]),
            (package(3, "app", 20, None), vec![]),
            (
                package(4, "app", 25, Some(30)),
                vec![file(1, 4, "a"), file(2, 4, "a"), file(3, 4, "b")],
            ),
            (package(5, "keep-me", 0, None), vec![]),
            (
                package(6, "guarded", 0, None),
                vec![file(4, 6, "a"), file(5, 6, "a")],
            ),
        ];
        let mut policy = CleanupPolicy::off(1, day(0));
        let now = day(30);
        let everything = |_: &PackageName| true;
        let guarded = |n: &PackageName| n.as_str() == "guarded";
        assert_eq!(
            cleanup_plan(&policy, &packages, guarded, everything, now),
            CleanupPlan::default()
        );
        policy.keep_n_latest_versions = Some(2);
        let only_app = |n: &PackageName| n.as_str().starts_with("app");
        assert_eq!(
            ids(&cleanup_plan(&policy, &packages, guarded, only_app, now)).0,
            [(1, "keep_n_latest_versions"), (2, "keep_n_latest_versions")]
        );
        policy.keep_n_latest_versions = None;
        policy.delete_versions_older_than_days = Some(15);
        assert_eq!(
            ids(&cleanup_plan(&policy, &packages, guarded, only_app, now)).0,
            [
                (1, "delete_versions_older_than_days"),
                (2, "delete_versions_older_than_days")
            ]
        );
        policy.delete_versions_older_than_days = None;
        policy.delete_versions_not_downloaded_for_days = Some(5);
        // Downloaded a day ago (2) is kept; never downloaded counts from creation.
        assert_eq!(
            ids(&cleanup_plan(&policy, &packages, guarded, only_app, now)).0,
            [
                (1, "delete_versions_not_downloaded_for_days"),
                (3, "delete_versions_not_downloaded_for_days")
            ]
        );
        policy.delete_versions_not_downloaded_for_days = None;
        policy.keep_n_duplicated_package_files = Some(1);
        // The older `a` of package 4; the protected package's duplicates stay.
        assert_eq!(
            ids(&cleanup_plan(&policy, &packages, guarded, only_app, now)),
            (vec![], vec![1])
        );
    }
}
