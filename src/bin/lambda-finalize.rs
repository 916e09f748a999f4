//! The upload finalizer on AWS: S3 `ObjectCreated` events on `uploads/` commit the session whose
//! bytes arrived (idempotent with the client's `complete`), through `depot::finalizer`.

use depot::config::FunctionConfig;
use depot::finalizer::{S3Event, on_s3_event};
use depot::function_registry;
use depot::telemetry::init_json_logging;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::{Value, json};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_json_logging();
    let config = FunctionConfig::from_env()?;
    let registry = Arc::new(function_registry(&config).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| {
        let registry = registry.clone();
        async move {
            let records = on_s3_event(&registry, &event.payload).await?;
            let state = |s: &str| records.iter().filter(|r| r["state"] == s).count();
            let now = depot::domain::Timestamp::now().millis();
            let line = depot::metrics::sessions_emf(state("committed"), state("refused"), now);
            println!("{line}");
            Ok::<Value, lambda_runtime::Error>(json!({ "records": records }))
        }
    }))
    .await
}
