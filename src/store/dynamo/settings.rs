//! `SettingsStore` on DynamoDB: a group's package settings are attributes of its item, absent
//! until first set.

use super::items::{EVENT, settings_attributes, settings_from};
use super::keys::Key;
use super::schema::s;
use super::{DynamoMetaStore, conditional_failed};
use crate::domain::{Event, GroupSettings};
use crate::store::aws::sdk_failure;
use crate::store::{Record, SettingsStore, StoreError, StoreResult};
use async_trait::async_trait;

#[async_trait]
impl SettingsStore for DynamoMetaStore {
    async fn group_settings(&self, group_id: i64) -> StoreResult<Option<GroupSettings>> {
        let key = Key::group(group_id);
        let item = self
            .get(&key)
            .await?
            .ok_or_else(|| StoreError::not_found(Record::Group, &key.pk))?;
        settings_from(&item)
    }

    async fn set_group_settings(
        &self,
        group_id: i64,
        settings: &GroupSettings,
        event: &Event,
    ) -> StoreResult<GroupSettings> {
        let key = Key::group(group_id);
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .condition_expression("attribute_exists(PK)");
        let mut set = vec![format!("{EVENT} = :ev")];
        request = request.expression_attribute_values(":ev", s(event.to_json()));
        for (i, (name, value)) in settings_attributes(settings).into_iter().enumerate() {
            set.push(format!("{name} = :v{i}"));
            request = request.expression_attribute_values(format!(":v{i}"), value);
        }
        request
            .update_expression(format!("SET {}", set.join(", ")))
            .send()
            .await
            .map_err(|e| {
                if conditional_failed(&e) {
                    StoreError::not_found(Record::Group, &key.pk)
                } else {
                    sdk_failure(e)
                }
            })?;
        Ok(settings.clone())
    }
}
