//! Events on DynamoDB: the audit log's entries (written by the events function from the
//! table's stream, one in the event's project partition and one in the instance's), read back
//! newest first; the table's TTL forgets them after the retention time.

use super::DynamoMetaStore;
use super::items::{audit_event_from, audit_item};
use super::keys::{Partition, audit_sk_from, audit_sk_to};
use super::limits::{BATCH_GET_ATTEMPTS, BATCH_GET_BACKOFF};
use super::schema::{Item, s};
use crate::domain::{Event, EventQuery, Timestamp};
use crate::store::aws::sdk_failure;
use crate::store::{EventStore, StoreError, StoreResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use std::ops::ControlFlow;

/// Items one `BatchWriteItem` takes.
const BATCH_WRITE_ITEMS: usize = 25;

impl DynamoMetaStore {
    /// Write the audit entries of `events` (idempotent: an event's entries have fixed keys),
    /// kept `keep_seconds`. An event given twice (a publish's retried write) is written once:
    /// one `BatchWriteItem` may not name a key twice.
    pub async fn record_audit(&self, events: &[Event], keep_seconds: i64) -> StoreResult<()> {
        let mut items: Vec<Item> = Vec::with_capacity(events.len() * 2);
        let mut seen = std::collections::HashSet::new();
        for event in events.iter().filter(|e| seen.insert(e.id.as_str())) {
            items.push(audit_item(event, None, keep_seconds));
            if let Some(project) = &event.project {
                items.push(audit_item(event, Some(project.id), keep_seconds));
            }
        }
        for chunk in items.chunks(BATCH_WRITE_ITEMS) {
            self.batch_put(chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// Put `items` (at most [`BATCH_WRITE_ITEMS`]), again for those DynamoDB left unprocessed.
    async fn batch_put(&self, items: Vec<Item>) -> StoreResult<()> {
        let mut requests: Vec<WriteRequest> = items
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(item)).build();
                put.map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(StoreError::backend)
            })
            .collect::<StoreResult<_>>()?;
        for attempt in 0..BATCH_GET_ATTEMPTS {
            if requests.is_empty() {
                return Ok(());
            }
            if attempt > 0 {
                tokio::time::sleep(BATCH_GET_BACKOFF * attempt).await;
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(sdk_failure)?;
            requests = out
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.table))
                .unwrap_or_default();
        }
        Err(StoreError::Contention {
            what: "audit entries left unprocessed".into(),
            attempts: BATCH_GET_ATTEMPTS,
        })
    }
}

#[async_trait]
impl EventStore for DynamoMetaStore {
    async fn events(&self, query: &EventQuery) -> StoreResult<(Vec<Event>, bool)> {
        let partition = Partition::audit(query.project_id);
        let from = audit_sk_from(query.after.map_or(0, Timestamp::millis));
        let to = audit_sk_to(query.before.map_or(i64::MAX / 1000, Timestamp::millis));
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(&partition.pk))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .scan_index_forward(false);
        let per_page = query.per_page.max(1);
        let skip = query.page.saturating_sub(1) * per_page;
        let (mut seen, mut page) = (0, Vec::new());
        let mut more = false;
        self.for_each_item(request, |item| {
            let event = audit_event_from(&item)?;
            if !query.matches(&event) {
                return Ok(ControlFlow::Continue(()));
            }
            seen += 1;
            if seen > skip + per_page {
                more = true;
                return Ok(ControlFlow::Break(()));
            }
            if seen > skip {
                page.push(event);
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok((page, more))
    }

    /// The table's TTL forgets audit entries (`expires_ttl`, set when they are written).
    async fn forget_events(&self, _before: Timestamp) -> StoreResult<u64> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dynamo::keys::Key;

    #[test]
    fn an_audit_key_sorts_between_its_bounds() {
        let key = Key::audit(Some(1), 1_000, "id");
        assert!(audit_sk_from(1_000) <= key.sk && key.sk <= audit_sk_to(1_000));
        assert!(key.sk < audit_sk_from(1_001));
    }
}
