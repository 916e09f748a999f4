//! The scheduled purge on AWS: runs the cleanup policies that are due, then removes the bytes
//! and records of deleted packages and files,
//! with the same `Registry::purge` that `depot serve` runs in the background. Any event (the
//! template's schedule) starts a run; it stops when nothing is left or its time runs short.

use depot::config::FunctionConfig;
use depot::function_registry;
use depot::registry::PURGE_BATCH;
use depot::telemetry::init_json_logging;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_json_logging();
    let config = FunctionConfig::from_env()?;
    let registry = Arc::new(function_registry(&config).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let registry = registry.clone();
        async move {
            let deadline = event.context.deadline();
            let started = Instant::now();
            // Cleanup policies first: what they delete is purged in the same run. Their failure
            // (logged) does not keep the purge from running.
            let cleaned = registry.run_due_cleanups().await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "cleanup policies failed");
                Default::default()
            });
            let (mut packages, mut files, mut blobs) = (0, 0, 0);
            loop {
                let purged = registry.purge(PURGE_BATCH).await?;
                packages += purged.packages;
                files += purged.files;
                blobs += purged.blobs;
                let left = deadline
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default();
                if purged.packages + purged.files == 0 || left < Duration::from_secs(10) {
                    break;
                }
            }
            let now = depot::domain::Timestamp::now().millis();
            let purged = [packages, files, blobs];
            let cleaned_up = [cleaned.packages, cleaned.files];
            println!("{}", depot::metrics::purge_emf(purged, cleaned_up, now));
            tracing::info!(
                cleaned_packages = cleaned.packages,
                cleaned_files = cleaned.files,
                packages,
                files,
                blobs,
                ms = started.elapsed().as_millis() as u64,
                "purge run"
            );
            Ok::<_, lambda_runtime::Error>(json!({
                "cleaned_up": {"packages": cleaned.packages, "files": cleaned.files},
                "packages": packages, "files": files, "blobs": blobs
            }))
        }
    }))
    .await
}
