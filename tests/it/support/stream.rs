//! Events in tests: what a test's direct store writes record (`ev`, `draft`), and the
//! table's stream read as Lambda's event source mapping reads it: DynamoDB Local's
//! Streams API (shards from their start, then each shard's next iterator), each batch handed
//! to the events function's handler in Lambda's DynamoDB event shape; a batch that names a
//! failed record is handed again from that record, as Lambda does.

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use base64::Engine;
use depot::delivery::eventbridge::{Bus, handle, records_of};
use depot::store::dynamo::DynamoMetaStore;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub struct StreamPump {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
    /// Where each shard's reading stands (`None`: closed and read to its end).
    iterators: HashMap<String, Option<String>>,
    audit: DynamoMetaStore,
}

impl StreamPump {
    /// The stream of `table` (made by `create_table`, with new and old images).
    pub async fn of(dynamo: &aws_sdk_dynamodb::Client, endpoint: &str, table: &str) -> Self {
        let described = dynamo
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap();
        let arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .expect("the table has a stream")
            .to_string();
        let config = aws_sdk_dynamodbstreams::config::Builder::from(&super::sdk_config())
            .endpoint_url(endpoint)
            .build();
        Self {
            client: aws_sdk_dynamodbstreams::Client::from_conf(config),
            arn,
            iterators: HashMap::new(),
            audit: DynamoMetaStore::new(dynamo.clone(), table),
        }
    }

    /// The next records of every shard, in Lambda's event shape (`Records`); empty when
    /// nothing new has arrived.
    pub async fn next_batch(&mut self) -> Value {
        let stream = self
            .client
            .describe_stream()
            .stream_arn(&self.arn)
            .send()
            .await
            .unwrap();
        let shards = stream
            .stream_description()
            .map(|d| d.shards().to_vec())
            .unwrap_or_default();
        let mut records = Vec::new();
        for shard in shards {
            let id = shard.shard_id().unwrap_or_default().to_string();
            let iterator = match self.iterators.get(&id) {
                Some(None) => continue,
                Some(Some(it)) => it.clone(),
                None => self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.arn)
                    .shard_id(&id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .unwrap()
                    .shard_iterator()
                    .unwrap()
                    .to_string(),
            };
            let out = self
                .client
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
                .unwrap();
            for r in out.records() {
                records.push(record_json(r, &self.arn));
            }
            self.iterators
                .insert(id, out.next_shard_iterator().map(str::to_string));
        }
        json!({ "Records": records })
    }

    /// Hand every new batch to the events function until none is left (a batch that names a
    /// failed record goes again from that record, at most `retries` times in all); how many
    /// events it took.
    pub async fn deliver(&mut self, bus: &Bus, retries: usize) -> usize {
        let mut events = 0;
        let mut retries_left = retries;
        loop {
            let batch = self.next_batch().await;
            let mut records = records_of(&batch);
            if records.is_empty() {
                return events;
            }
            loop {
                let answer = handle(&records, &self.audit, bus, 400 * 86_400).await;
                let failed = answer["batchItemFailures"][0]["itemIdentifier"].as_str();
                let Some(first) = failed else {
                    events += records.iter().filter(|r| r.event.is_some()).count();
                    break;
                };
                assert!(retries_left > 0, "a batch kept failing: {answer}");
                retries_left -= 1;
                let at = records.iter().position(|r| r.sequence == first).unwrap();
                events += records[..at].iter().filter(|r| r.event.is_some()).count();
                records = records.split_off(at);
            }
        }
    }
}

/// One Streams API record as Lambda's DynamoDB event carries it.
fn record_json(r: &aws_sdk_dynamodbstreams::types::Record, arn: &str) -> Value {
    let change = r.dynamodb().expect("a change");
    let image = |i: Option<&HashMap<String, AttributeValue>>| -> Value {
        i.map(|m| Value::Object(m.iter().map(|(k, v)| (k.clone(), av(v))).collect()))
            .unwrap_or(Value::Null)
    };
    let mut dynamodb = Map::new();
    dynamodb.insert("Keys".into(), image(change.keys()));
    if let Some(new) = change.new_image() {
        dynamodb.insert("NewImage".into(), image(Some(new)));
    }
    if let Some(old) = change.old_image() {
        dynamodb.insert("OldImage".into(), image(Some(old)));
    }
    dynamodb.insert("SequenceNumber".into(), json!(change.sequence_number()));
    dynamodb.insert("SizeBytes".into(), json!(change.size_bytes()));
    dynamodb.insert("StreamViewType".into(), json!("NEW_AND_OLD_IMAGES"));
    json!({
        "eventID": r.event_id(),
        "eventName": r.event_name().map(|n| n.as_str()),
        "eventVersion": r.event_version(),
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": arn,
    })
}

/// An attribute value in DynamoDB's JSON (`{"S": ...}`, `{"N": ...}`, ...).
fn av(v: &AttributeValue) -> Value {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": b64(b.as_ref()) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::Ss(ss) => json!({ "SS": ss }),
        AttributeValue::Ns(ns) => json!({ "NS": ns }),
        AttributeValue::Bs(bs) => {
            json!({ "BS": bs.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>() })
        }
        AttributeValue::L(l) => json!({ "L": l.iter().map(av).collect::<Vec<_>>() }),
        AttributeValue::M(m) => {
            json!({ "M": m.iter().map(|(k, v)| (k.clone(), av(v))).collect::<Map<_, _>>() })
        }
        _ => Value::Null,
    }
}

/// An event for a test's direct store write (depot itself its actor).
pub fn ev() -> depot::domain::Event {
    depot::domain::Event::new(
        depot::domain::EventType::SettingsChanged,
        depot::domain::Actor::system(),
        depot::domain::Timestamp::now(),
    )
}

/// A publish's event draft for a test's direct store write.
pub fn draft() -> depot::domain::EventDraft {
    depot::domain::EventDraft::system(depot::domain::Timestamp::now())
}

impl super::TestApp {
    /// The DynamoDB client and table of an AWS app whose table the test made.
    pub fn dynamo_table(&self) -> Option<(&aws_sdk_dynamodb::Client, &str)> {
        match &self.stores {
            super::Stores::Aws {
                table: Some((client, table)),
                ..
            } => Some((client, table.as_str())),
            _ => None,
        }
    }

    /// The table's stream, read as the events function's event source reads it (AWS apps
    /// whose table the test made); `None` on the local store, whose events are written with
    /// their changes and need no delivery to be read back.
    pub async fn event_pump(&self) -> Option<StreamPump> {
        match &self.stores {
            super::Stores::Aws {
                table: Some((client, table)),
                ..
            } => {
                let endpoint = &super::dynamo::DynamoEmulator::shared().endpoint;
                Some(StreamPump::of(client, endpoint, table).await)
            }
            _ => None,
        }
    }
}
