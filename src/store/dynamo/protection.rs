//! `ProtectionStore` on DynamoDB: each rule is an item in its project's partition (a project's
//! rules are one Query), written together with the claim of its package type and pattern, so
//! two rules never share them.

use super::DynamoMetaStore;
use super::items::{protection_pattern_item, protection_rule_from, protection_rule_item};
use super::keys::{Counter, Key, Partition};
use super::transaction::Condition;
use crate::domain::ProtectionRule;
use crate::store::{ProtectionStore, Record, StoreError, StoreResult};
use async_trait::async_trait;

/// The items of a rule's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Rule,
    /// The claim of its type and pattern: its condition fails when another rule holds it.
    Pattern,
    OldPattern,
}

fn pattern_key(rule: &ProtectionRule) -> Key {
    Key::protection_pattern(
        rule.project_id,
        &rule.package_type,
        &rule.package_name_pattern,
    )
}

fn taken(rule: &ProtectionRule) -> StoreError {
    StoreError::already_exists(Record::ProtectionRule, &rule.package_name_pattern)
}

impl DynamoMetaStore {
    async fn protection_rule(&self, project_id: i64, id: i64) -> StoreResult<ProtectionRule> {
        let item = self
            .get(&Key::protection_rule(project_id, id))
            .await?
            .ok_or_else(|| StoreError::not_found(Record::ProtectionRule, id))?;
        protection_rule_from(&item)
    }
}

#[async_trait]
impl ProtectionStore for DynamoMetaStore {
    async fn protection_rules(&self, project_id: i64) -> StoreResult<Vec<ProtectionRule>> {
        let request = self.query(&Partition::protection_rules(project_id));
        self.query_all(request)
            .await?
            .iter()
            .map(protection_rule_from)
            .collect()
    }

    async fn create_protection_rule(&self, rule: ProtectionRule) -> StoreResult<ProtectionRule> {
        let rule = ProtectionRule {
            id: self.next_id(Counter::ProtectionRule).await?,
            ..rule
        };
        let mut tx = self.transaction();
        let new = || Some(Condition::item_is_new());
        tx.put(Write::Rule, protection_rule_item(&rule), new())?;
        tx.put(Write::Pattern, protection_pattern_item(&rule), new())?;
        match self.run(tx).await? {
            Ok(()) => Ok(rule),
            Err(c) if c.failed(Write::Pattern) => Err(taken(&rule)),
            Err(c) => Err(c.into_error()),
        }
    }

    async fn update_protection_rule(&self, rule: &ProtectionRule) -> StoreResult<()> {
        let old = self.protection_rule(rule.project_id, rule.id).await?;
        let unchanged = Condition::new("attribute_exists(PK)");
        let mut tx = self.transaction();
        tx.put(Write::Rule, protection_rule_item(rule), Some(unchanged))?;
        if pattern_key(&old) != pattern_key(rule) {
            tx.delete(Write::OldPattern, &pattern_key(&old), None)?;
            let new = Some(Condition::item_is_new());
            tx.put(Write::Pattern, protection_pattern_item(rule), new)?;
        }
        match self.run(tx).await? {
            Ok(()) => Ok(()),
            Err(c) if c.failed(Write::Pattern) => Err(taken(rule)),
            Err(c) if c.failed(Write::Rule) => {
                Err(StoreError::not_found(Record::ProtectionRule, rule.id))
            }
            Err(c) => Err(c.into_error()),
        }
    }

    async fn delete_protection_rule(&self, project_id: i64, id: i64) -> StoreResult<()> {
        let rule = self.protection_rule(project_id, id).await?;
        let mut tx = self.transaction();
        let exists = Condition::new("attribute_exists(PK)");
        tx.delete(
            Write::Rule,
            &Key::protection_rule(project_id, id),
            Some(exists),
        )?;
        tx.delete(Write::Pattern, &pattern_key(&rule), None)?;
        match self.run(tx).await? {
            Ok(()) => Ok(()),
            Err(c) if c.failed(Write::Rule) => {
                Err(StoreError::not_found(Record::ProtectionRule, id))
            }
            Err(c) => Err(c.into_error()),
        }
    }
}
