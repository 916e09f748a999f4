//! `ProtectionStore` on DynamoDB: each rule is an item in its project's partition (a project's
//! rules are one Query), written together with the claim of its package type and pattern, so
//! two rules never share them.

use super::DynamoMetaStore;
use super::items::{
    event_item, protection_pattern_item, protection_rule_from, protection_rule_item,
};
use super::keys::{Counter, Key, Partition};
use super::limits::TRANSACTION_ATTEMPTS;
use super::schema::{n, s};
use super::transaction::Condition;
use crate::domain::{Event, ProtectionRule};
use crate::store::{ProtectionStore, Record, StoreError, StoreResult};
use async_trait::async_trait;

/// The items of a rule's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Rule,
    /// The claim of its type and pattern: its condition fails when another rule holds it.
    Pattern,
    OldPattern,
    /// The item that carries the change's event.
    Event,
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

    async fn create_protection_rule(
        &self,
        rule: ProtectionRule,
        event: &Event,
    ) -> StoreResult<ProtectionRule> {
        let rule = ProtectionRule {
            id: self.next_id(Counter::ProtectionRule).await?,
            ..rule
        };
        let mut tx = self.transaction();
        let event = event.clone().with_detail_field("rule_id", rule.id);
        tx.put(Write::Event, event_item(&event), None)?;
        let new = || Some(Condition::item_is_new());
        tx.put(Write::Rule, protection_rule_item(&rule), new())?;
        tx.put(Write::Pattern, protection_pattern_item(&rule), new())?;
        match self.run(tx).await? {
            Ok(()) => Ok(rule),
            Err(c) if c.failed(Write::Pattern) => Err(taken(&rule)),
            Err(c) => Err(c.into_error()),
        }
    }

    async fn update_protection_rule(
        &self,
        rule: &ProtectionRule,
        event: &Event,
    ) -> StoreResult<()> {
        // Against the rule as read: a change made meanwhile sends us round again, so no
        // pattern claim is ever left without its rule.
        for _ in 0..TRANSACTION_ATTEMPTS {
            let old = self.protection_rule(rule.project_id, rule.id).await?;
            let mut tx = self.transaction();
            tx.put(Write::Event, event_item(event), None)?;
            tx.put(Write::Rule, protection_rule_item(rule), Some(as_read(&old)))?;
            if pattern_key(&old) != pattern_key(rule) {
                tx.delete(
                    Write::OldPattern,
                    &pattern_key(&old),
                    Some(claimed_by(&old)),
                )?;
                let new = Some(Condition::item_is_new());
                tx.put(Write::Pattern, protection_pattern_item(rule), new)?;
            }
            match self.run(tx).await? {
                Ok(()) => return Ok(()),
                Err(c) if c.failed(Write::Pattern) => return Err(taken(rule)),
                Err(c) if c.failed(Write::Rule) || c.failed(Write::OldPattern) => continue,
                Err(c) => return Err(c.into_error()),
            }
        }
        Err(contended())
    }

    async fn delete_protection_rule(
        &self,
        project_id: i64,
        id: i64,
        event: &Event,
    ) -> StoreResult<()> {
        for _ in 0..TRANSACTION_ATTEMPTS {
            let rule = self.protection_rule(project_id, id).await?;
            let mut tx = self.transaction();
            tx.put(Write::Event, event_item(event), None)?;
            let key = Key::protection_rule(project_id, id);
            tx.delete(Write::Rule, &key, Some(as_read(&rule)))?;
            tx.delete(Write::Pattern, &pattern_key(&rule), Some(claimed_by(&rule)))?;
            match self.run(tx).await? {
                Ok(()) => return Ok(()),
                Err(c) if c.failed(Write::Rule) || c.failed(Write::Pattern) => continue,
                Err(c) => return Err(c.into_error()),
            }
        }
        Err(contended())
    }
}

/// The rule still has the type and pattern it was read with.
fn as_read(rule: &ProtectionRule) -> Condition {
    Condition::new("package_name_pattern = :p AND package_type = :t")
        .value(":p", s(&rule.package_name_pattern))
        .value(":t", s(&rule.package_type))
}

/// A pattern claim is `rule`'s.
fn claimed_by(rule: &ProtectionRule) -> Condition {
    Condition::new("rule_id = :r").value(":r", n(rule.id))
}

fn contended() -> StoreError {
    StoreError::Contention {
        what: "a protection rule kept changing under the write".into(),
        attempts: TRANSACTION_ATTEMPTS,
    }
}
