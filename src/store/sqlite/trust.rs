//! `TrustStore` on SQLite: trust rules, found by target (listing) and by issuer.

use super::events::record;
use super::rows::{TRUST_COLS, trust_row};
use super::{Cached, SqliteMetaStore, db_err};
use crate::domain::{Event, MembershipTarget, NewTrustRule, Scope, TrustRule};
use crate::store::{Record, StoreError, StoreResult, TrustStore};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

#[async_trait]
impl TrustStore for SqliteMetaStore {
    async fn create_trust_rule(&self, rule: NewTrustRule, event: &Event) -> StoreResult<TrustRule> {
        let event = event.clone();
        self.call(move |c| {
            let (kind, value) = rule.target.to_parts();
            let tx = c.transaction().map_err(db_err)?;
            tx.execute_cached(
                "INSERT INTO trust_rules (target_kind, target, issuer, audience, conditions, \
                 access_level, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    kind,
                    value,
                    rule.issuer,
                    rule.audience,
                    TrustRule::conditions_json(&rule.conditions),
                    rule.role.access_level(),
                    Scope::join(&rule.scopes),
                    rule.created_at.millis(),
                ],
            )
            .map_err(db_err)?;
            let id = tx.last_insert_rowid();
            record(&tx, &event.with_detail_field("rule_id", id))?;
            tx.commit().map_err(db_err)?;
            Ok(rule.into_rule(id))
        })
        .await
    }

    async fn trust_rules_of(&self, target: &MembershipTarget) -> StoreResult<Vec<TrustRule>> {
        let (kind, value) = target.to_parts();
        let sql = format!(
            "SELECT {TRUST_COLS} FROM trust_rules WHERE target_kind = ?1 AND target = ?2 \
             ORDER BY id"
        );
        self.read_all(sql, (kind, value), trust_row).await
    }

    async fn trust_rules_for_issuer(&self, issuer: &str) -> StoreResult<Vec<TrustRule>> {
        let sql = format!("SELECT {TRUST_COLS} FROM trust_rules WHERE issuer = ?1 ORDER BY id");
        self.read_all(sql, [issuer.to_string()], trust_row).await
    }

    async fn remove_trust_rule(&self, id: i64, event: &Event) -> StoreResult<TrustRule> {
        let event = event.clone();
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            let rule = tx
                .query_row_cached(
                    &format!("SELECT {TRUST_COLS} FROM trust_rules WHERE id = ?1"),
                    [id],
                    trust_row,
                )
                .optional()
                .map_err(db_err)?
                .ok_or_else(|| StoreError::not_found(Record::TrustRule, id))?;
            tx.execute_cached("DELETE FROM trust_rules WHERE id = ?1", [id])
                .map_err(db_err)?;
            record(&tx, &event)?;
            tx.commit().map_err(db_err)?;
            Ok(rule)
        })
        .await
    }
}
