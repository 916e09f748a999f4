//! The keys of what a project keeps about its packages' lifecycle: its package protection
//! rules (and the claim of each rule's pattern), its cleanup policy (one partition holds every
//! project's), and the rank entries `latest` reads, per package name.

use super::{Key, Partition, padded};
use crate::domain::{PackageName, RankClass};

const PROTECTION_RULE: &str = "PROTECTRULE#";
const CLEANUP_POLICIES: &str = "CLEANUP";
const VERSION_RANK: &str = "RANK#";

impl Key {
    /// A project's cleanup policy, in the one partition of every policy (the scheduled runs
    /// list them with one Query).
    pub fn cleanup_policy(project_id: i64) -> Self {
        Key::new(CLEANUP_POLICIES, padded(project_id))
    }

    /// A version's entry in its name's rank (`latest`): sorted as `latest` ranks versions of
    /// one kind (names hold no `#`).
    pub fn version_rank(project_id: i64, name: &PackageName, sort_key: &str) -> Self {
        Key::new(
            format!("PROJECT#{project_id}"),
            format!("{VERSION_RANK}{}#{sort_key}", name.as_str()),
        )
    }

    /// A project's package protection rule.
    pub fn protection_rule(project_id: i64, id: i64) -> Self {
        Key::new(
            format!("PROJECT#{project_id}"),
            format!("{PROTECTION_RULE}{}", padded(id)),
        )
    }

    /// The claim of a package type and name pattern by one rule of the project: rules are
    /// unique by both. The pattern by its SHA-256, so the key stays short whatever it holds.
    pub fn protection_pattern(project_id: i64, package_type: &str, pattern: &str) -> Self {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(pattern.as_bytes()));
        Key::new(
            format!("PROJECT#{project_id}"),
            format!("PROTECTED#{package_type}#{digest}"),
        )
    }
}

impl Partition {
    /// The rank entries of one name's versions ([`Key::version_rank`]): of one kind, or all.
    pub fn version_ranks(project_id: i64, name: &PackageName, class: Option<RankClass>) -> Self {
        let prefix = format!(
            "{VERSION_RANK}{}#{}",
            name.as_str(),
            class.map_or("", RankClass::prefix)
        );
        Partition::new(format!("PROJECT#{project_id}"), Some(prefix))
    }

    /// Every project's cleanup policy.
    pub fn cleanup_policies() -> Self {
        Partition::new(CLEANUP_POLICIES, None)
    }

    /// A project's package protection rules, by id.
    pub fn protection_rules(project_id: i64) -> Self {
        Partition::new(
            format!("PROJECT#{project_id}"),
            Some(PROTECTION_RULE.into()),
        )
    }
}
