//! `UploadSessionStore` on DynamoDB: one item per session; claims and settlements are
//! conditional updates of its state, so a session commits at most once.

use super::items::{STATE, STATE_ATTRIBUTES, session_from, session_item, state_values};
use super::keys::Key;
use super::schema::{n, s};
use super::transaction::ITEM_IS_NEW;
use super::{DynamoMetaStore, conditional_failed};
use crate::domain::{SessionState, Timestamp, UploadSession};
use crate::store::aws::sdk_failure;
use crate::store::{Record, StoreError, StoreResult, UploadSessionStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

impl DynamoMetaStore {
    /// Set a session's state where `condition` holds (with its own `values`); the session
    /// after, or `None` if the condition did not hold.
    async fn set_session_state(
        &self,
        id: &str,
        state: &SessionState,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<Option<UploadSession>> {
        let parts = state.to_parts();
        let mut set = vec!["#st = :kind".to_string()];
        let mut remove = Vec::new();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::session(id).item()))
            .expression_attribute_names("#st", STATE)
            .expression_attribute_values(":kind", s(&parts.kind));
        for (name, value) in STATE_ATTRIBUTES.iter().zip(state_values(&parts)) {
            match value {
                Some(v) => {
                    set.push(format!("{name} = :{name}"));
                    request = request.expression_attribute_values(format!(":{name}"), v);
                }
                None => remove.push(name.to_string()),
            }
        }
        let mut update = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            update.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request
            .update_expression(update)
            .condition_expression(format!("attribute_exists(PK) AND ({condition})"))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
        {
            Ok(out) => out.attributes.map(|item| session_from(&item)).transpose(),
            Err(e) if conditional_failed(&e) => Ok(None),
            Err(e) => Err(sdk_failure(e)),
        }
    }
}

#[async_trait]
impl UploadSessionStore for DynamoMetaStore {
    async fn create_upload_session(&self, u: &UploadSession) -> StoreResult<()> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(session_item(u)))
            .condition_expression(ITEM_IS_NEW)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => {
                Err(StoreError::already_exists(Record::UploadSession, &u.id))
            }
            Err(e) => Err(sdk_failure(e)),
        }
    }

    async fn upload_session(&self, id: &str) -> StoreResult<Option<UploadSession>> {
        self.get(&Key::session(id))
            .await?
            .map(|i| session_from(&i))
            .transpose()
    }

    async fn claim_upload_session(
        &self,
        id: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<UploadSession>> {
        self.set_session_state(
            id,
            &SessionState::Committing { until },
            "#st = :pending OR (#st = :committing AND claim_until < :now)",
            vec![
                (":pending", s("pending")),
                (":committing", s("committing")),
                (":now", n(now.millis())),
            ],
        )
        .await
    }

    async fn settle_upload_session(
        &self,
        id: &str,
        state: &SessionState,
    ) -> StoreResult<Option<UploadSession>> {
        self.set_session_state(
            id,
            state,
            "#st IN (:pending, :committing)",
            vec![(":pending", s("pending")), (":committing", s("committing"))],
        )
        .await
    }
}
