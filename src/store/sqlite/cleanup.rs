//! `CleanupStore` on SQLite: one row per project that has a policy.

use super::events::with_event;
use super::{Cached, SqliteMetaStore, db_err};
use crate::domain::{CleanupPolicy, Event, Timestamp};
use crate::store::{CleanupStore, StoreResult};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

const COLS: &str = "project_id, keep_n_duplicated_package_files, keep_n_latest_versions, \
                    delete_versions_older_than_days, delete_versions_not_downloaded_for_days, \
                    package_name_regex, next_run_at";

fn policy_row(r: &Row) -> rusqlite::Result<CleanupPolicy> {
    let n = |i| r.get::<_, Option<u32>>(i);
    Ok(CleanupPolicy {
        project_id: r.get(0)?,
        keep_n_duplicated_package_files: n(1)?,
        keep_n_latest_versions: n(2)?,
        delete_versions_older_than_days: n(3)?,
        delete_versions_not_downloaded_for_days: n(4)?,
        package_name_regex: r.get(5)?,
        next_run_at: Timestamp::from_millis(r.get(6)?),
    })
}

#[async_trait]
impl CleanupStore for SqliteMetaStore {
    async fn cleanup_policy(&self, project_id: i64) -> StoreResult<Option<CleanupPolicy>> {
        let sql = format!("SELECT {COLS} FROM cleanup_policies WHERE project_id = ?1");
        self.read(move |c| {
            c.query_row_cached(&sql, [project_id], policy_row)
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn set_cleanup_policy(&self, policy: &CleanupPolicy, event: &Event) -> StoreResult<()> {
        let (p, event) = (policy.clone(), event.clone());
        self.call(move |c| with_event(c, &event, |c| {
            c.execute_cached(
                &format!("INSERT OR REPLACE INTO cleanup_policies ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    p.project_id,
                    p.keep_n_duplicated_package_files,
                    p.keep_n_latest_versions,
                    p.delete_versions_older_than_days,
                    p.delete_versions_not_downloaded_for_days,
                    p.package_name_regex,
                    p.next_run_at.millis(),
                ],
            )
            .map_err(db_err)?;
            Ok(())
        }))
        .await
    }

    async fn schedule_cleanup(
        &self,
        project_id: i64,
        ran_at: Timestamp,
        next: Timestamp,
    ) -> StoreResult<bool> {
        self.call(move |c| {
            let moved = c
                .execute_cached(
                    "UPDATE cleanup_policies SET next_run_at = ?3 \
                     WHERE project_id = ?1 AND next_run_at <= ?2",
                    params![project_id, ran_at.millis(), next.millis()],
                )
                .map_err(db_err)?;
            Ok(moved > 0)
        })
        .await
    }

    async fn cleanup_policies(&self) -> StoreResult<Vec<CleanupPolicy>> {
        let sql = format!("SELECT {COLS} FROM cleanup_policies ORDER BY project_id");
        self.read_all(sql, [], policy_row).await
    }
}
