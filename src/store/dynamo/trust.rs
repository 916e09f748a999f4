//! `TrustStore` on DynamoDB: each rule is three items written and removed together, under its
//! target (listing), its issuer (authenticating a token of that issuer is one Query) and its id.

use super::DynamoMetaStore;
use super::items::{event_item, trust_rule_from, trust_rule_item};
use super::keys::{Counter, Key, Partition};
use super::transaction::Condition;
use crate::domain::{Event, MembershipTarget, NewTrustRule, TrustRule};
use crate::store::{Record, StoreError, StoreResult, TrustStore};
use async_trait::async_trait;

impl DynamoMetaStore {
    async fn rules_in(&self, partition: &Partition) -> StoreResult<Vec<TrustRule>> {
        let request = self.query(partition);
        self.query_all(request)
            .await?
            .iter()
            .map(trust_rule_from)
            .collect()
    }
}

/// The three keys of a rule.
fn keys_of(rule: &TrustRule) -> [Key; 3] {
    [
        Key::trust_rule_id(rule.id),
        Key::trust_rule(&rule.target, rule.id),
        Key::issuer_rule(&rule.issuer, rule.id),
    ]
}

#[async_trait]
impl TrustStore for DynamoMetaStore {
    async fn create_trust_rule(&self, rule: NewTrustRule, event: &Event) -> StoreResult<TrustRule> {
        let rule = rule.into_rule(self.next_id(Counter::TrustRule).await?);
        let mut tx = self.transaction();
        let event = event.clone().with_detail_field("rule_id", rule.id);
        tx.put((), event_item(&event), None)?;
        for key in keys_of(&rule) {
            tx.put(
                (),
                trust_rule_item(&key, &rule),
                Some(Condition::item_is_new()),
            )?;
        }
        self.run(tx).await?.map_err(|c| c.into_error())?;
        Ok(rule)
    }

    async fn trust_rules_of(&self, target: &MembershipTarget) -> StoreResult<Vec<TrustRule>> {
        self.rules_in(&Partition::trust_rules(target)).await
    }

    async fn trust_rules_for_issuer(&self, issuer: &str) -> StoreResult<Vec<TrustRule>> {
        self.rules_in(&Partition::issuer_rules(issuer)).await
    }

    async fn remove_trust_rule(&self, id: i64, event: &Event) -> StoreResult<TrustRule> {
        let item = self
            .get(&Key::trust_rule_id(id))
            .await?
            .ok_or_else(|| StoreError::not_found(Record::TrustRule, id))?;
        let rule = trust_rule_from(&item)?;
        let mut tx = self.transaction();
        tx.put((), event_item(event), None)?;
        for key in keys_of(&rule) {
            tx.delete((), &key, None)?;
        }
        self.run(tx).await?.map_err(|c| c.into_error())?;
        Ok(rule)
    }
}
