//! depot: a GitLab-compatible generic package registry, serverless on AWS or one local process.
//!
//! `router(registry)` is the whole HTTP surface; `Registry` holds the use cases; the stores sit
//! behind the `BlobStore` and `MetaStore` traits.

pub mod admin;
pub mod api;
pub mod auth;
pub mod config;
pub mod domain;
pub mod registry;
pub mod store;

pub use api::router;
pub use registry::{Limits, Registry};

use std::path::Path;
use std::sync::Arc;
use store::fs::FsBlobStore;
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
    let blobs: Arc<dyn BlobStore> =
        Arc::new(FsBlobStore::open(data_dir).map_err(StoreError::backend)?);
    Ok(Registry::new(meta, blobs, limits))
}
