//! The events function on AWS: the table's stream hands it batches of item changes; the
//! changes that carry a new event (`store::dynamo` writes each event into the item of its
//! change) are written to the audit log and put on EventBridge (`source: depot`, `detail-type`:
//! the event's type, `detail`: the event). A batch that fails in part names its first failed
//! record (`batchItemFailures`), so the stream hands that record and the ones after it again:
//! nothing is lost, and an event may arrive twice (receivers drop repeats by `id`). After its
//! retries a batch goes to the dead-letter queue.

use crate::domain::{Event, Timestamp};
use crate::store::dynamo::{DynamoMetaStore, changed_event};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::{Value, json};

/// One record of a stream batch: where it stands in its shard, and the event its change
/// carries, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub sequence: String,
    pub event: Option<Event>,
}

/// The records of a DynamoDB stream event, as Lambda hands them over.
pub fn records_of(lambda_event: &Value) -> Vec<StreamRecord> {
    let image_ev = |record: &Value, image: &str| -> Option<String> {
        record["dynamodb"][image]["ev"]["S"]
            .as_str()
            .map(str::to_string)
    };
    lambda_event["Records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|r| StreamRecord {
                    sequence: r["dynamodb"]["SequenceNumber"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    event: changed_event(
                        image_ev(r, "OldImage").as_deref(),
                        image_ev(r, "NewImage").as_deref(),
                    ),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where events are put: the EventBridge bus.
pub struct Bus {
    pub client: aws_sdk_eventbridge::Client,
    pub name: String,
}

/// Entries one `PutEvents` takes.
const PUT_EVENTS_ENTRIES: usize = 10;

impl Bus {
    /// The client of `sdk`'s configuration, at `endpoint` if given (an emulator), on bus `name`.
    pub fn new(sdk: &aws_config::SdkConfig, endpoint: Option<&str>, name: &str) -> Self {
        let mut config = aws_sdk_eventbridge::config::Builder::from(sdk);
        if let Some(url) = endpoint {
            config = config.endpoint_url(url);
        }
        Self {
            client: aws_sdk_eventbridge::Client::from_conf(config.build()),
            name: name.to_string(),
        }
    }

    /// Put `events` on the bus; for each, whether it was taken. After a call that failed in
    /// part, the rest are not sent (the batch goes again from the first failed one).
    pub async fn put(&self, events: &[&Event]) -> Vec<bool> {
        let mut taken = Vec::with_capacity(events.len());
        for chunk in events.chunks(PUT_EVENTS_ENTRIES) {
            if taken.contains(&false) {
                taken.extend(std::iter::repeat_n(false, chunk.len()));
                continue;
            }
            let entries: Vec<PutEventsRequestEntry> = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .source("depot")
                        .detail_type(e.kind.as_str())
                        .detail(e.to_json())
                        .event_bus_name(&self.name)
                        .time(aws_smithy_time(e.time))
                        .build()
                })
                .collect();
            match self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    let results = out.entries();
                    for i in 0..chunk.len() {
                        let failed = results.get(i).is_none_or(|r| r.error_code().is_some());
                        taken.push(!failed);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %aws_sdk_eventbridge::error::DisplayErrorContext(&e), "PutEvents failed");
                    taken.extend(std::iter::repeat_n(false, chunk.len()));
                }
            }
        }
        taken
    }
}

fn aws_smithy_time(t: Timestamp) -> aws_sdk_eventbridge::primitives::DateTime {
    aws_sdk_eventbridge::primitives::DateTime::from_millis(t.millis())
}

/// Handle one stream batch: audit entries first (kept `keep_seconds`), then the bus. The
/// answer names the first record to hand again (none: all done).
pub async fn handle(
    records: &[StreamRecord],
    audit: &DynamoMetaStore,
    bus: &Bus,
    keep_seconds: i64,
) -> Value {
    // An event twice in one batch (a publish's retried write) goes out once.
    let mut seen = std::collections::HashSet::new();
    let with_events: Vec<(&StreamRecord, &Event)> = records
        .iter()
        .filter_map(|r| r.event.as_ref().map(|e| (r, e)))
        .filter(|(_, e)| seen.insert(e.id.as_str()))
        .collect();
    let events: Vec<Event> = with_events.iter().map(|(_, e)| (*e).clone()).collect();
    if let Err(e) = audit.record_audit(&events, keep_seconds).await {
        tracing::error!(error = %e, "writing audit entries failed; the batch goes again");
        return failures(records.first());
    }
    let refs: Vec<&Event> = events.iter().collect();
    let taken = bus.put(&refs).await;
    let first_failed = with_events
        .iter()
        .zip(&taken)
        .find(|(_, ok)| !**ok)
        .map(|((record, _), _)| *record);
    let now = Timestamp::now().millis();
    let lag = events
        .iter()
        .map(|e| now - e.time.millis())
        .max()
        .unwrap_or(0);
    let delivered = taken.iter().filter(|ok| **ok).count();
    println!(
        "{}",
        crate::metrics::delivery_emf(delivered, taken.len() - delivered, lag.max(0), now)
    );
    failures(first_failed)
}

/// Lambda's partial batch answer: the record to hand again, if any.
fn failures(first: Option<&StreamRecord>) -> Value {
    let failed: Vec<Value> = first
        .map(|r| json!({ "itemIdentifier": r.sequence }))
        .into_iter()
        .collect();
    json!({ "batchItemFailures": failed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, EventType};

    #[test]
    fn records_carry_only_new_events() {
        let a = Event::new(EventType::PackageDeleted, Actor::system(), Timestamp::now());
        let b = Event::new(EventType::TokenCreated, Actor::system(), Timestamp::now());
        let image = |e: &Event| json!({ "PK": {"S": "x"}, "ev": {"S": e.to_json()} });
        let batch = json!({ "Records": [
            { "eventName": "INSERT", "dynamodb": { "SequenceNumber": "1", "NewImage": image(&a) } },
            { "eventName": "MODIFY", "dynamodb": { "SequenceNumber": "2",
                "OldImage": image(&a), "NewImage": image(&a) } },
            { "eventName": "MODIFY", "dynamodb": { "SequenceNumber": "3",
                "OldImage": image(&a), "NewImage": image(&b) } },
            { "eventName": "REMOVE", "dynamodb": { "SequenceNumber": "4", "OldImage": image(&b) } },
        ]});
        let records = records_of(&batch);
        let seqs: Vec<_> = records.iter().map(|r| r.sequence.as_str()).collect();
        assert_eq!(seqs, ["1", "2", "3", "4"]);
        let events: Vec<_> = records.iter().map(|r| r.event.clone()).collect();
        assert_eq!(events, [Some(a), None, Some(b), None]);
    }

    #[test]
    fn a_partial_failure_names_its_first_record() {
        let r = StreamRecord {
            sequence: "42".into(),
            event: None,
        };
        assert_eq!(
            failures(Some(&r)),
            json!({"batchItemFailures": [{"itemIdentifier": "42"}]})
        );
        assert_eq!(failures(None), json!({"batchItemFailures": []}));
    }
}
