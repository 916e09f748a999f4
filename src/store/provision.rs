//! Bringing an AWS store pair into being outside SAM (`depot admin --store aws init`): the
//! DynamoDB table with the indexes and TTL the template declares, and the bucket, each made
//! only where it is missing. A deployed stack gets both from `template.yaml`; this is for
//! emulators and for `depot serve --store aws` run by hand. On a table that exists, it also
//! writes the mirror items an older build did not (`dynamo::backfill`), and turns on the
//! stream the events function reads where an older build made the table without one.

use super::aws::sdk_failure;
use super::dynamo::DynamoMetaStore;
use super::dynamo::TTL_ATTRIBUTE;
use super::{StoreError, StoreResult};
use aws_sdk_dynamodb::types::TimeToLiveSpecification;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

/// What `init` found and made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Provisioned {
    pub table: String,
    pub table_created: bool,
    pub bucket: String,
    pub bucket_created: bool,
    /// Mirror items written for records an older build stored without them (0 on a new
    /// table; see `dynamo::backfill`).
    #[serde(skip_serializing_if = "is_zero")]
    pub mirrors_written: usize,
    /// The existing table's stream (new and old images) was turned on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream_enabled: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Make `table` (with its indexes and session TTL) and `bucket` where they are missing.
pub async fn provision(
    dynamo: &aws_sdk_dynamodb::Client,
    s3: &aws_sdk_s3::Client,
    table: &str,
    bucket: &str,
) -> StoreResult<Provisioned> {
    let table_created = ensure_table(dynamo, table).await?;
    let stream_enabled = !table_created && ensure_stream(dynamo, table).await?;
    let bucket_created = ensure_bucket(s3, bucket).await?;
    let mirrors_written = if table_created {
        0
    } else {
        DynamoMetaStore::new(dynamo.clone(), table)
            .backfill_mirrors()
            .await?
    };
    Ok(Provisioned {
        table: table.to_string(),
        table_created,
        bucket: bucket.to_string(),
        bucket_created,
        mirrors_written,
        stream_enabled,
    })
}

/// Turn on the stream of new and old images where the table has none; `true` if it did.
async fn ensure_stream(client: &aws_sdk_dynamodb::Client, table: &str) -> StoreResult<bool> {
    use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
    let described = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(sdk_failure)?;
    let spec = described.table().and_then(|t| t.stream_specification());
    if spec.is_some_and(|s| s.stream_enabled()) {
        return Ok(false);
    }
    let stream = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .map_err(StoreError::backend)?;
    client
        .update_table()
        .table_name(table)
        .stream_specification(stream)
        .send()
        .await
        .map_err(sdk_failure)?;
    Ok(true)
}

/// Create `table` unless it exists; `true` if it was created.
async fn ensure_table(client: &aws_sdk_dynamodb::Client, table: &str) -> StoreResult<bool> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => return Ok(false),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) => {}
        Err(e) => return Err(sdk_failure(e)),
    }
    DynamoMetaStore::create_table(client, table).await?;
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
        .map_err(StoreError::backend)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(sdk_failure)?;
    Ok(true)
}

/// Create `bucket` unless it exists (in the client's region); `true` if it was created.
async fn ensure_bucket(client: &aws_sdk_s3::Client, bucket: &str) -> StoreResult<bool> {
    match client.head_bucket().bucket(bucket).send().await {
        Ok(_) => return Ok(false),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {}
        Err(e) => return Err(sdk_failure(e)),
    }
    let mut create = client.create_bucket().bucket(bucket);
    // us-east-1 takes no location constraint; every other region needs its own.
    if let Some(region) = client.config().region().map(|r| r.as_ref().to_string())
        && region != "us-east-1"
    {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    create.send().await.map_err(sdk_failure)?;
    Ok(true)
}
