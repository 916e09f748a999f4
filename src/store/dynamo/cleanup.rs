//! `CleanupStore` on DynamoDB: each project's policy an item of one partition, so the
//! scheduled runs find every policy with one Query (there are as many as projects with one).

use super::items::with_event;
use super::keys::{Key, Partition};
use super::schema::{Fields, Item, ItemWriter, n};
use super::{DynamoMetaStore, conditional_failed};
use crate::domain::{CleanupPolicy, Event, Timestamp};
use crate::store::aws::sdk_failure;
use crate::store::{CleanupStore, StoreResult};
use async_trait::async_trait;

fn policy_item(p: &CleanupPolicy) -> Item {
    let n = |v: Option<u32>| v.map(i64::from);
    ItemWriter::new(&Key::cleanup_policy(p.project_id))
        .n("project_id", p.project_id)
        .opt_n(
            "keep_n_duplicated_package_files",
            n(p.keep_n_duplicated_package_files),
        )
        .opt_n("keep_n_latest_versions", n(p.keep_n_latest_versions))
        .opt_n(
            "delete_versions_older_than_days",
            n(p.delete_versions_older_than_days),
        )
        .opt_n(
            "delete_versions_not_downloaded_for_days",
            n(p.delete_versions_not_downloaded_for_days),
        )
        .opt_s("package_name_regex", p.package_name_regex.clone())
        .n("next_run_at", p.next_run_at.millis())
        .build()
}

fn policy_from(item: &Item) -> StoreResult<CleanupPolicy> {
    let f = Fields::of(item)?;
    let n = |name: &str| f.opt_n(name).and_then(|v| u32::try_from(v).ok());
    Ok(CleanupPolicy {
        project_id: f.n("project_id")?,
        keep_n_duplicated_package_files: n("keep_n_duplicated_package_files"),
        keep_n_latest_versions: n("keep_n_latest_versions"),
        delete_versions_older_than_days: n("delete_versions_older_than_days"),
        delete_versions_not_downloaded_for_days: n("delete_versions_not_downloaded_for_days"),
        package_name_regex: f.opt_s("package_name_regex"),
        next_run_at: Timestamp::from_millis(f.n("next_run_at")?),
    })
}

#[async_trait]
impl CleanupStore for DynamoMetaStore {
    async fn cleanup_policy(&self, project_id: i64) -> StoreResult<Option<CleanupPolicy>> {
        let item = self.get(&Key::cleanup_policy(project_id)).await?;
        item.map(|i| policy_from(&i)).transpose()
    }

    async fn set_cleanup_policy(&self, policy: &CleanupPolicy, event: &Event) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(with_event(policy_item(policy), event)))
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(())
    }

    async fn schedule_cleanup(
        &self,
        project_id: i64,
        ran_at: Timestamp,
        next: Timestamp,
    ) -> StoreResult<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::cleanup_policy(project_id).item()))
            .update_expression("SET next_run_at = :next")
            .condition_expression("next_run_at <= :ran")
            .expression_attribute_values(":next", n(next.millis()))
            .expression_attribute_values(":ran", n(ran_at.millis()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(sdk_failure(e)),
        }
    }

    async fn cleanup_policies(&self) -> StoreResult<Vec<CleanupPolicy>> {
        let request = self.query(&Partition::cleanup_policies());
        self.query_all(request)
            .await?
            .iter()
            .map(policy_from)
            .collect()
    }
}
