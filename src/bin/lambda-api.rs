//! The AWS Lambda entry point: the same router as `depot serve`, behind API Gateway, on the
//! stores `DEPOT_STORE`/`DEPOT_TABLE`/`DEPOT_BUCKET` name. SDK clients are built once, here.

use depot::config::{FunctionConfig, init_json_logging};
use depot::{Limits, registry, router};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_json_logging();
    let config = FunctionConfig::from_env()?;
    let limits = Limits {
        max_file_size: config.max_file_size,
    };
    let registry = registry(&config.store, limits)
        .await?
        .with_public_url(config.public_url.filter(|u| !u.is_empty()))
        .with_downloads(depot::config::downloads(
            config.inline_download_max,
            config.presign_ttl,
        ))
        .with_uploads(depot::Uploads {
            commit_inline_max: Some(config.commit_inline_max),
            ..depot::config::uploads(config.upload_part_size)
        });
    lambda_http::run(router(Arc::new(registry))).await
}
