//! `ProtectionStore` on SQLite: a project's package protection rules, one row each, the
//! pattern unique per project and package type.

use super::events::{record, with_event};
use super::{Cached, SqliteMetaStore, db_err, exists_as};
use crate::domain::{Event, ProtectLevel, ProtectionRule};
use crate::store::{ProtectionStore, Record, StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::{Row, params};

const COLS: &str = "id, project_id, package_name_pattern, package_type, push_level, delete_level";

fn rule_row(r: &Row) -> rusqlite::Result<ProtectionRule> {
    Ok(ProtectionRule {
        id: r.get(0)?,
        project_id: r.get(1)?,
        package_name_pattern: r.get(2)?,
        package_type: r.get(3)?,
        minimum_access_level_for_push: r
            .get::<_, Option<i64>>(4)?
            .and_then(ProtectLevel::from_access_level),
        minimum_access_level_for_delete: r
            .get::<_, Option<i64>>(5)?
            .and_then(ProtectLevel::from_access_level),
    })
}

/// Run `sql` (an insert or an update) with the rule's columns as `?1` project, `?2` pattern,
/// `?3` type, `?4`/`?5` levels and `?6` id; a pattern the project has already is taken.
fn save(c: &rusqlite::Connection, sql: &str, rule: &ProtectionRule) -> StoreResult<usize> {
    let level = |l: Option<ProtectLevel>| l.map(ProtectLevel::access_level);
    c.execute_cached(
        sql,
        params![
            rule.project_id,
            rule.package_name_pattern,
            rule.package_type,
            level(rule.minimum_access_level_for_push),
            level(rule.minimum_access_level_for_delete),
            rule.id,
        ],
    )
    .map_err(exists_as(
        Record::ProtectionRule,
        &rule.package_name_pattern,
    ))
}

#[async_trait]
impl ProtectionStore for SqliteMetaStore {
    async fn protection_rules(&self, project_id: i64) -> StoreResult<Vec<ProtectionRule>> {
        let sql = format!(
            "SELECT {COLS} FROM package_protection_rules WHERE project_id = ?1 ORDER BY id"
        );
        self.read_all(sql, [project_id], rule_row).await
    }

    async fn create_protection_rule(
        &self,
        rule: ProtectionRule,
        event: &Event,
    ) -> StoreResult<ProtectionRule> {
        let event = event.clone();
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            save(
                &tx,
                "INSERT INTO package_protection_rules (project_id, package_name_pattern, \
                 package_type, push_level, delete_level, id) VALUES (?1, ?2, ?3, ?4, ?5, NULLIF(?6, 0))",
                // A new id: the one the rule may carry is not used.
                &ProtectionRule { id: 0, ..rule.clone() },
            )?;
            let id = tx.last_insert_rowid();
            record(&tx, &event.with_detail_field("rule_id", id))?;
            tx.commit().map_err(db_err)?;
            Ok(ProtectionRule { id, ..rule })
        })
        .await
    }

    async fn update_protection_rule(
        &self,
        rule: &ProtectionRule,
        event: &Event,
    ) -> StoreResult<()> {
        let (rule, event) = (rule.clone(), event.clone());
        self.call(move |c| {
            with_event(c, &event, |c| {
                let changed = save(
                    c,
                    "UPDATE package_protection_rules SET package_name_pattern = ?2, \
                 package_type = ?3, push_level = ?4, delete_level = ?5 \
                 WHERE id = ?6 AND project_id = ?1",
                    &rule,
                )?;
                match changed {
                    0 => Err(StoreError::not_found(Record::ProtectionRule, rule.id)),
                    _ => Ok(()),
                }
            })
        })
        .await
    }

    async fn delete_protection_rule(
        &self,
        project_id: i64,
        id: i64,
        event: &Event,
    ) -> StoreResult<()> {
        let event = event.clone();
        self.call(move |c| {
            with_event(c, &event, |c| {
                let removed = c
                    .execute_cached(
                        "DELETE FROM package_protection_rules WHERE id = ?1 AND project_id = ?2",
                        params![id, project_id],
                    )
                    .map_err(db_err)?;
                match removed {
                    0 => Err(StoreError::not_found(Record::ProtectionRule, id)),
                    _ => Ok(()),
                }
            })
        })
        .await
    }
}
