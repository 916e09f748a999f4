//! depot: a GitLab-compatible generic package registry, serverless on AWS or one local process.
//!
//! `router(registry)` is the whole HTTP surface; `Registry` holds the use cases; the stores sit
//! behind the `BlobStore` and `MetaStore` traits.

pub mod admin;
pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod domain;
pub mod finalizer;
pub mod registry;
pub mod store;
pub mod wire;

pub use api::router;
pub use registry::{Downloads, Limits, Registry, Uploads};

use config::{StoreConfig, StoreKind};
use std::path::Path;
use std::sync::Arc;
use store::dynamo::DynamoMetaStore;
use store::fs::FsBlobStore;
use store::s3::S3BlobStore;
use store::sqlite::SqliteMetaStore;
use store::{BlobStore, MetaStore, StoreError};

/// The embedded metadata store of a data directory (created if missing).
pub fn local_meta(data_dir: &Path) -> Result<Arc<dyn MetaStore>, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(StoreError::backend)?;
    Ok(Arc::new(SqliteMetaStore::open(&config::database_path(
        data_dir,
    ))?))
}

/// A registry on the embedded stores of `data_dir`: SQLite metadata and blobs on disk.
pub fn local_registry(data_dir: &Path, limits: Limits) -> Result<Registry, StoreError> {
    let meta = local_meta(data_dir)?;
    let signer = store::signing::UrlSigner::load_or_create(&data_dir.join("signing.key"))
        .map_err(StoreError::backend)?;
    let blobs: Arc<dyn BlobStore> = Arc::new(
        FsBlobStore::open(data_dir)
            .map_err(StoreError::backend)?
            .with_signer(signer),
    );
    Ok(Registry::new(meta, blobs, limits))
}

fn required<'a>(value: &'a Option<String>, flag: &str) -> Result<&'a str, StoreError> {
    value
        .as_deref()
        .ok_or_else(|| StoreError::Misconfigured(format!("the aws store needs {flag}")))
}

/// The AWS configuration of the environment, loaded once (credentials, region, endpoints).
async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// The DynamoDB metadata store `config` names, on the environment's AWS configuration.
fn dynamo_meta(
    config: &StoreConfig,
    sdk: &aws_config::SdkConfig,
) -> Result<DynamoMetaStore, StoreError> {
    let table = required(&config.table, "--table (DEPOT_TABLE)")?;
    let client = DynamoMetaStore::client_from(sdk, config.dynamodb_endpoint.as_deref());
    Ok(DynamoMetaStore::new(client, table))
}

/// The metadata store `config` names; AWS clients are built here, once.
pub async fn meta_store(config: &StoreConfig) -> Result<Arc<dyn MetaStore>, StoreError> {
    match config.kind {
        StoreKind::Local => local_meta(&config.data_dir),
        StoreKind::Aws => Ok(Arc::new(dynamo_meta(config, &sdk_config().await)?)),
    }
}

/// The registry a Lambda function serves, configured from its environment (every function of
/// the template builds it the same way).
pub async fn function_registry(config: &config::FunctionConfig) -> Result<Registry, StoreError> {
    let transfers = &config.transfers;
    Ok(registry(&config.store, transfers.limits())
        .await?
        .with_public_url(config.public_url.clone().filter(|u| !u.is_empty()))
        .with_downloads(transfers.downloads())
        .with_uploads(Uploads {
            commit_inline_max: Some(config.commit_inline_max),
            ..transfers.uploads()
        }))
}

/// A registry on the store pair `config` names; AWS clients are built here, once.
pub async fn registry(config: &StoreConfig, limits: Limits) -> Result<Registry, StoreError> {
    match config.kind {
        StoreKind::Local => local_registry(&config.data_dir, limits),
        StoreKind::Aws => {
            let bucket = required(&config.bucket, "--bucket (DEPOT_BUCKET)")?;
            let sdk = sdk_config().await;
            let meta = dynamo_meta(config, &sdk)?;
            let s3 = S3BlobStore::client_from(&sdk, config.s3_endpoint.as_deref());
            Ok(Registry::new(
                Arc::new(meta),
                Arc::new(S3BlobStore::new(s3, bucket)),
                limits,
            ))
        }
    }
}
