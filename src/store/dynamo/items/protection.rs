//! Items of package protection rules: the rule under its project, and the claim of its package
//! type and pattern that keeps rules unique.

use crate::domain::{ProtectLevel, ProtectionRule};
use crate::store::StoreResult;
use crate::store::dynamo::keys::Key;
use crate::store::dynamo::schema::{Fields, Item, ItemWriter};

pub fn protection_rule_item(rule: &ProtectionRule) -> Item {
    ItemWriter::new(&Key::protection_rule(rule.project_id, rule.id))
        .n("id", rule.id)
        .n("project_id", rule.project_id)
        .s("package_name_pattern", &rule.package_name_pattern)
        .s("package_type", &rule.package_type)
        .opt_n(
            "push_level",
            rule.minimum_access_level_for_push
                .map(ProtectLevel::access_level),
        )
        .opt_n(
            "delete_level",
            rule.minimum_access_level_for_delete
                .map(ProtectLevel::access_level),
        )
        .build()
}

pub fn protection_rule_from(item: &Item) -> StoreResult<ProtectionRule> {
    let f = Fields::of(item)?;
    let level = |name: &str| match f.opt_n(name) {
        None => Ok(None),
        Some(n) => ProtectLevel::from_access_level(n)
            .map(Some)
            .ok_or_else(|| f.corrupt(format!("{name} {n}"))),
    };
    Ok(ProtectionRule {
        id: f.n("id")?,
        project_id: f.n("project_id")?,
        package_name_pattern: f.s("package_name_pattern")?,
        package_type: f.s("package_type")?,
        minimum_access_level_for_push: level("push_level")?,
        minimum_access_level_for_delete: level("delete_level")?,
    })
}

/// The claim of the rule's package type and pattern.
pub fn protection_pattern_item(rule: &ProtectionRule) -> Item {
    let key = Key::protection_pattern(
        rule.project_id,
        &rule.package_type,
        &rule.package_name_pattern,
    );
    ItemWriter::new(&key).n("rule_id", rule.id).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip() {
        let rule = ProtectionRule {
            id: 7,
            project_id: 3,
            package_name_pattern: "tool-*".into(),
            package_type: "generic".into(),
            minimum_access_level_for_push: Some(ProtectLevel::Admin),
            minimum_access_level_for_delete: None,
        };
        assert_eq!(
            protection_rule_from(&protection_rule_item(&rule)).unwrap(),
            rule
        );
    }
}
