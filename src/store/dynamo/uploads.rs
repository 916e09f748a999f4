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

/// The attribute naming the claim that holds a committing session (written by the claim
/// only): a claim whose answer was lost knows the session is its own by reading it back.
const CLAIM_TOKEN: &str = "claim_token";

/// The update expression setting a session's state (`#st` its kind; its attributes set, or
/// removed where the state has none) and `also` (one more attribute), with the values it names.
pub(super) fn state_update(
    state: &SessionState,
    also: Option<(&str, AttributeValue)>,
) -> (String, Vec<(String, AttributeValue)>) {
    let parts = state.to_parts();
    let mut set = vec!["#st = :kind".to_string()];
    let mut values = vec![(":kind".to_string(), s(&parts.kind))];
    if let Some((name, value)) = also {
        set.push(format!("{name} = :{name}"));
        values.push((format!(":{name}"), value));
    }
    let mut remove = Vec::new();
    for (name, value) in STATE_ATTRIBUTES.iter().zip(state_values(&parts)) {
        match value {
            Some(v) => {
                set.push(format!("{name} = :{name}"));
                values.push((format!(":{name}"), v));
            }
            None => remove.push(name.to_string()),
        }
    }
    let mut update = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        update.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    (update, values)
}

impl DynamoMetaStore {
    /// Set a session's state where `condition` holds (with its own `values`), and `also` (one
    /// more attribute) when given; the session after, or `None` if the condition did not hold.
    async fn set_session_state(
        &self,
        id: &str,
        state: &SessionState,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        also: Option<(&str, AttributeValue)>,
    ) -> StoreResult<Option<UploadSession>> {
        let (update, state_values) = state_update(state, also);
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::session(id).item()))
            .expression_attribute_names("#st", STATE);
        for (name, value) in state_values {
            request = request.expression_attribute_values(name, value);
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

    /// Session `id`, if it is committing under the claim `token`.
    async fn claimed_by(&self, id: &str, token: &str) -> StoreResult<Option<UploadSession>> {
        let Some(item) = self.get(&Key::session(id)).await? else {
            return Ok(None);
        };
        let ours = item
            .get(CLAIM_TOKEN)
            .and_then(|v| v.as_s().ok())
            .is_some_and(|t| t == token);
        let session = session_from(&item)?;
        Ok((ours && matches!(session.state, SessionState::Committing { .. })).then_some(session))
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
        // The claim is named by a token of its own, so that when its answer is lost (the SDK
        // then retries into the condition, or gives up) reading the session back tells
        // whether the claim took.
        let token = hex::encode(rand::random::<[u8; 16]>());
        let claimed = self
            .set_session_state(
                id,
                &SessionState::Committing { until },
                "#st = :pending OR (#st = :committing AND claim_until < :now)",
                vec![
                    (":pending", s("pending")),
                    (":committing", s("committing")),
                    (":now", n(now.millis())),
                ],
                Some((CLAIM_TOKEN, s(&token))),
            )
            .await;
        match claimed {
            Ok(Some(session)) => Ok(Some(session)),
            Ok(None) => self.claimed_by(id, &token).await,
            Err(e) if e.is_transient() => match self.claimed_by(id, &token).await {
                Ok(Some(session)) => Ok(Some(session)),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
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
            None,
        )
        .await
    }
}
