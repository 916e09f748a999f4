//! `MetaStore` on one DynamoDB table (on-demand): the store, its client, the table's
//! definition (`create_table`, [`INDEXES`]) and the low-level reads every part shares.
//!
//! | file | owns |
//! |---|---|
//! | `keys` | every `PK`/`SK` and index key, and the layout table |
//! | `schema` | the `schema` attribute, the rule for changing items, item writer and reader |
//! | `items/` | encode/decode pairs for every record |
//! | `transaction` | write transactions whose items are known by role |
//! | `limits` | DynamoDB's limits, retry counts and waits |
//! | `identity`, `settings`, `packages`, `lists`, `purge`, `uploads` | one trait (part) each |
//!
//! Every lookup is a `GetItem` or a `Query` on a key; nothing here scans. Publishing is one
//! `TransactWriteItems` (package put-or-update + file + name guard), so two concurrent uploads
//! can neither create two packages nor both win a refused duplicate.

mod backfill;
mod cleanup;
mod events;
mod identity;
mod ids;
mod items;
mod keys;
mod limits;
mod lists;
mod packages;
mod protection;
mod publish;
mod purge;
mod schema;
mod settings;
mod transaction;
mod trust;
mod uploads;
mod web;

pub use items::{TTL_ATTRIBUTE, changed_event};

use super::aws::{StoreTiming, dynamodb_timeouts, retry_config, sdk_failure};
use super::{StoreError, StoreResult};
use crate::config::AwsPatience;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, ReturnValue, ScalarAttributeType,
    StreamSpecification, StreamViewType, TableStatus,
};
use keys::{BY_CREATED, BY_NAME, BY_VERSION, Counter, Key, LIST_PK, NS_PK, NS_SK, Partition};
use limits::{BATCH_GET_ATTEMPTS, BATCH_GET_BACKOFF, BATCH_GET_KEYS};
use schema::{Fields, Item, SCHEMA, SCHEMA_VERSION, n, s};
use std::collections::HashMap;
use std::ops::ControlFlow;

pub struct DynamoMetaStore {
    client: Client,
    table: String,
    /// The id slot this process holds (`ids`).
    id_slot: tokio::sync::Mutex<ids::IdSlot>,
}

/// The list indexes (one per order) and the namespace index.
const BY_CREATED_INDEX: &str = "by_created";
const BY_NAME_INDEX: &str = "by_name";
const BY_VERSION_INDEX: &str = "by_version";
const BY_NAMESPACE_INDEX: &str = "by_namespace";

/// What the list indexes project besides their keys: what the name and version filters read.
const LIST_PROJECTION: &[&str] = &[items::NAME_LC, "version"];

/// The global secondary indexes, as `create_table` and `template.yaml` declare them:
/// (name, partition key, sort key, attributes projected besides the keys; `None` = all).
/// The list indexes project only what their filters read, so updating a package's other
/// attributes never writes to them.
pub const INDEXES: [(&str, &str, &str, Option<&[&str]>); 4] = [
    (BY_CREATED_INDEX, LIST_PK, BY_CREATED, Some(LIST_PROJECTION)),
    (BY_NAME_INDEX, LIST_PK, BY_NAME, Some(LIST_PROJECTION)),
    (BY_VERSION_INDEX, LIST_PK, BY_VERSION, Some(LIST_PROJECTION)),
    (BY_NAMESPACE_INDEX, NS_PK, NS_SK, None),
];

/// Did a single (non-transactional) write fail its condition?
fn conditional_failed<E>(e: &SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

impl DynamoMetaStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            id_slot: Default::default(),
        }
    }

    /// A DynamoDB client from the environment's AWS configuration (`AWS_ENDPOINT_URL_DYNAMODB`
    /// or `endpoint` for emulators), waiting and retrying as `patience` says.
    pub fn client_from(
        sdk: &aws_config::SdkConfig,
        endpoint: Option<&str>,
        patience: &AwsPatience,
    ) -> Client {
        let mut config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .retry_config(retry_config(patience))
            .timeout_config(dynamodb_timeouts(patience))
            .interceptor(StoreTiming);
        if let Some(url) = endpoint {
            config = config.endpoint_url(url);
        }
        Client::from_conf(config.build())
    }

    /// Create the table (as the SAM template does) and wait until it is ACTIVE. For tests and
    /// for `depot admin` against an emulator; deployed stacks get the table from the template.
    pub async fn create_table(client: &Client, table: &str) -> StoreResult<()> {
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(StoreError::backend)
        };
        let mut create = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(keys::PK, KeyType::Hash)?)
            .key_schema(key(keys::SK, KeyType::Range)?)
            // The stream the events function reads (`events`): each change's old and new item.
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .map_err(StoreError::backend)?,
            );
        let mut attributes = vec![keys::PK, keys::SK];
        for (name, pk, sk, included) in INDEXES {
            let projection = match included {
                Some(attrs) => Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .set_non_key_attributes(Some(attrs.iter().map(|a| a.to_string()).collect())),
                None => Projection::builder().projection_type(ProjectionType::All),
            };
            create = create.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(name)
                    .key_schema(key(pk, KeyType::Hash)?)
                    .key_schema(key(sk, KeyType::Range)?)
                    .projection(projection.build())
                    .build()
                    .map_err(StoreError::backend)?,
            );
            for a in [pk, sk] {
                if !attributes.contains(&a) {
                    attributes.push(a);
                }
            }
        }
        for a in attributes {
            let definition = AttributeDefinition::builder()
                .attribute_name(a)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(StoreError::backend)?;
            create = create.attribute_definitions(definition);
        }
        create.send().await.map_err(sdk_failure)?;
        Self::wait_until_active(client, table).await
    }

    async fn wait_until_active(client: &Client, table: &str) -> StoreResult<()> {
        for _ in 0..limits::TABLE_ACTIVE_POLLS {
            let out = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(sdk_failure)?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(limits::TABLE_ACTIVE_POLL_INTERVAL).await;
        }
        Err(StoreError::Misconfigured(format!(
            "table {table} did not become ACTIVE"
        )))
    }

    /// The item at `key` (a strongly consistent read).
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        self.get_with(key, true).await
    }

    /// The item at `key`, read eventually consistently (half the read units) and, only when
    /// that finds nothing, strongly: for records that, once written, change seldom and whose
    /// staleness the caller bounds anyway (who is who, behind the identity cache). A record
    /// written a moment ago is found all the same.
    async fn get_cheaply(&self, key: &Key) -> StoreResult<Option<Item>> {
        match self.get_with(key, false).await? {
            Some(item) => Ok(Some(item)),
            None => self.get(key).await,
        }
    }

    async fn get_with(&self, key: &Key, consistent: bool) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(out.item)
    }

    /// The next id of `entity` (1, 2, ...), from an atomic counter.
    async fn counter_id(&self, entity: Counter) -> StoreResult<i64> {
        let key = Key::counter(entity);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .update_expression("ADD #v :one SET #schema = if_not_exists(#schema, :schema)")
            .expression_attribute_names("#v", "value")
            .expression_attribute_names("#schema", SCHEMA)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":schema", n(SCHEMA_VERSION))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(sdk_failure)?;
        let values = out.attributes.unwrap_or_default();
        Fields::returned(&values, &key)?.n("value")
    }

    /// A strongly consistent Query of `partition` (the caller may add a limit, an order or a
    /// projection).
    fn query(&self, partition: &Partition) -> QueryFluentBuilder {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(&partition.pk))
            .consistent_read(true);
        match &partition.sk_prefix {
            Some(prefix) => request
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":prefix", s(prefix)),
            None => request.key_condition_expression("PK = :pk"),
        }
    }

    /// Hand each item `request` (a Query) finds to `visit`, following `LastEvaluatedKey` page
    /// after page, until the items run out or `visit` says to stop.
    async fn for_each_item(
        &self,
        request: QueryFluentBuilder,
        mut visit: impl FnMut(Item) -> StoreResult<ControlFlow<()>>,
    ) -> StoreResult<()> {
        let mut start = None;
        loop {
            let page = request
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_failure)?;
            for item in page.items.unwrap_or_default() {
                if visit(item)?.is_break() {
                    return Ok(());
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(());
            }
        }
    }

    /// Every item `request` (a Query) finds.
    async fn query_all(&self, request: QueryFluentBuilder) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        self.for_each_item(request, |item| {
            items.push(item);
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(items)
    }

    /// The items at `keys` (at most [`BATCH_GET_KEYS`]), in the order of `keys`; missing ones
    /// are left out. Strongly consistent, as [`Self::batch_get_with`] reads with `true`.
    async fn batch_get(&self, keys: Vec<Key>) -> StoreResult<Vec<Item>> {
        self.batch_get_with(keys, true).await
    }

    /// [`Self::batch_get`], eventually consistent (half the units) unless `consistent`.
    async fn batch_get_with(&self, keys: Vec<Key>, consistent: bool) -> StoreResult<Vec<Item>> {
        debug_assert!(keys.len() <= BATCH_GET_KEYS, "too many keys for one batch");
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut found: HashMap<Key, Item> = HashMap::new();
        let mut pending: Vec<Item> = keys.iter().map(Key::item).collect();
        let mut backoff = BATCH_GET_BACKOFF;
        for _ in 0..BATCH_GET_ATTEMPTS {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(consistent)
                .build()
                .map_err(StoreError::backend)?;
            let mut out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(sdk_failure)?;
            let items = out.responses.as_mut().and_then(|r| r.remove(&self.table));
            for item in items.unwrap_or_default() {
                found.insert(Key::of(&item)?, item);
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(keys.iter().filter_map(|k| found.remove(k)).collect());
            }
            // Throttled: back off before asking for the rest.
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        Err(StoreError::Contention {
            what: "DynamoDB left keys of a batch read unprocessed".into(),
            attempts: BATCH_GET_ATTEMPTS,
        })
    }
}
