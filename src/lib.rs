//! depot: a GitLab-compatible generic package registry, serverless on AWS or one local process.
//!
//! Three layers, one direction: `api` (HTTP: routes, extractors, GitLab's status and body) calls
//! `registry` (use cases: decide, build records, apply defaults and rules), which calls `store`
//! (load and save). `domain` is below all three; `wire` holds the JSON bodies the API and its
//! clients share. This file wires a registry for `depot serve` and the Lambda functions alike.

pub mod admin;
pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod finalizer;
pub mod metrics;
pub mod registry;
pub mod store;
pub mod telemetry;
pub mod ui;
pub mod wire;

pub use api::router;
pub use registry::{DEFAULT_INLINE_FILE_MAX, Downloads, Limits, Registry, Uploads};

use config::{AwsPatience, Endpoints, StoreConfig, TransferConfig};
use std::path::Path;
use std::sync::Arc;
use store::dynamo::DynamoMetaStore;
use store::fs::FsBlobStore;
use store::s3::S3BlobStore;
use store::sqlite::SqliteMetaStore;
use store::{BlobStore, MetaStore, StoreError};

/// The embedded metadata store of a data directory (created if missing).
pub fn local_meta(data_dir: &Path) -> Result<Arc<dyn MetaStore>, StoreError> {
    store::private::create_dir_all(data_dir).map_err(StoreError::backend)?;
    Ok(Arc::new(SqliteMetaStore::open(&config::database_path(
        data_dir,
    ))?))
}

/// The webhooks of a data directory's embedded store (`depot admin hooks`).
pub fn local_hooks(data_dir: &Path) -> Result<Arc<dyn store::HookStore>, StoreError> {
    store::private::create_dir_all(data_dir).map_err(StoreError::backend)?;
    Ok(Arc::new(SqliteMetaStore::open(&config::database_path(
        data_dir,
    ))?))
}

/// A registry on the embedded stores of `data_dir`: SQLite metadata and blobs on disk.
pub fn local_registry(data_dir: &Path, limits: Limits) -> Result<Registry, StoreError> {
    store::private::create_dir_all(data_dir).map_err(StoreError::backend)?;
    let meta = Arc::new(SqliteMetaStore::open(&config::database_path(data_dir))?);
    let signer = store::signing::UrlSigner::load_or_create(&data_dir.join("signing.key"))
        .map_err(StoreError::backend)?;
    let blobs: Arc<dyn BlobStore> = Arc::new(
        FsBlobStore::open(data_dir)
            .map_err(StoreError::backend)?
            .with_signer(signer),
    );
    let hooks: Arc<dyn store::HookStore> = meta.clone();
    Ok(Registry::new(meta, blobs, limits).with_hooks(Some(hooks)))
}

/// The AWS configuration of the environment, loaded once (credentials, region, endpoints).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

fn dynamo_meta(
    sdk: &aws_config::SdkConfig,
    table: &str,
    endpoints: &Endpoints,
    patience: &AwsPatience,
) -> DynamoMetaStore {
    let client = DynamoMetaStore::client_from(sdk, endpoints.dynamodb.as_deref(), patience);
    DynamoMetaStore::new(client, table)
}

/// The metadata store `config` names; AWS clients are built here, once.
pub async fn meta_store(config: &StoreConfig) -> Result<Arc<dyn MetaStore>, StoreError> {
    match config {
        StoreConfig::Local { data_dir } => local_meta(data_dir),
        StoreConfig::Aws {
            table,
            endpoints,
            patience,
            ..
        } => Ok(Arc::new(dynamo_meta(
            &sdk_config().await,
            table,
            endpoints,
            patience,
        ))),
    }
}

/// Make the AWS store pair `config` names where it is missing (`depot admin init`): what was
/// found and made. A local store is made by opening it: its metadata store is opened (created
/// and migrated) and `None` returned.
pub async fn provision_store(
    config: &StoreConfig,
) -> Result<Option<store::provision::Provisioned>, StoreError> {
    match config {
        StoreConfig::Local { data_dir } => local_meta(data_dir).map(|_| None),
        StoreConfig::Aws {
            table,
            bucket,
            endpoints,
            patience,
        } => {
            let sdk = sdk_config().await;
            let dynamo =
                DynamoMetaStore::client_from(&sdk, endpoints.dynamodb.as_deref(), patience);
            let s3 = S3BlobStore::client_from(&sdk, endpoints.s3.as_deref(), patience);
            store::provision::provision(&dynamo, &s3, table, bucket)
                .await
                .map(Some)
        }
    }
}

/// How a registry serves, besides where its stores are: what `depot serve` and the Lambda
/// functions configure.
#[derive(Debug, Clone)]
pub struct Serving {
    pub transfers: TransferConfig,
    /// Base URL for links in answers; unset (or empty), links use the request's host.
    pub public_url: Option<String>,
    /// `complete` commits staged files up to this size itself; larger ones are left to the
    /// finalizer. `None`: always inline (`depot serve`, which has no finalizer).
    pub commit_inline_max: Option<u64>,
    /// Who else may vouch for callers (an upstream GitLab).
    pub identity: config::IdentityConfig,
    /// Show the process's counters at `/metrics` (`depot serve --metrics`).
    pub metrics_endpoint: bool,
}

/// The registry on the store pair `store`, serving as `serving` says: the one place a registry
/// is wired, for `depot serve` and every Lambda function. AWS clients are built here, once.
pub async fn registry(store: &StoreConfig, serving: &Serving) -> Result<Registry, StoreError> {
    let transfers = &serving.transfers;
    let upstream = serving
        .identity
        .upstream()
        .map_err(StoreError::Misconfigured)?;
    let registry = match store {
        StoreConfig::Local { data_dir } => local_registry(data_dir, transfers.limits())?,
        StoreConfig::Aws {
            table,
            bucket,
            endpoints,
            patience,
        } => {
            let sdk = sdk_config().await;
            let s3 = S3BlobStore::client_from(&sdk, endpoints.s3.as_deref(), patience);
            Registry::new(
                Arc::new(dynamo_meta(&sdk, table, endpoints, patience)),
                Arc::new(S3BlobStore::new(s3, bucket)),
                transfers.limits(),
            )
        }
    };
    Ok(registry
        .with_public_url(serving.public_url.clone().filter(|u| !u.is_empty()))
        .with_downloads(transfers.downloads())
        .with_identity_ttl(transfers.identity_cache)
        .with_upstream(upstream)
        .with_web_session_ttl(serving.identity.web_session_lifetime)
        .with_metrics_endpoint(serving.metrics_endpoint)
        .with_uploads(Uploads {
            commit_inline_max: serving.commit_inline_max,
            ..transfers.uploads()
        }))
}

/// The registry a Lambda function serves, configured from its environment (every function of
/// the template builds it the same way).
pub async fn function_registry(config: &config::FunctionConfig) -> Result<Registry, StoreError> {
    let store = config.store.config().map_err(StoreError::Misconfigured)?;
    let serving = Serving {
        transfers: config.transfers.clone(),
        public_url: config.public_url.clone(),
        commit_inline_max: Some(config.commit_inline_max),
        identity: config.identity.clone(),
        metrics_endpoint: false,
    };
    Ok(registry(&store, &serving).await?.with_emf(true))
}
