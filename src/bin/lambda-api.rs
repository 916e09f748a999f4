//! The AWS Lambda entry point: the same router as `depot serve`, behind API Gateway, on the
//! stores `DEPOT_STORE`/`DEPOT_TABLE`/`DEPOT_BUCKET` name. SDK clients are built once, here.

use depot::config::FunctionConfig;
use depot::telemetry::init_json_logging;
use depot::{function_registry, router};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_json_logging();
    let config = FunctionConfig::from_env()?;
    let registry = function_registry(&config).await?;
    lambda_http::run(router(Arc::new(registry))).await
}
