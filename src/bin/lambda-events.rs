//! The events function on AWS: fed by the table's stream, it writes each new event to the
//! audit log and puts it on EventBridge (`depot::delivery::eventbridge`), naming the first
//! record of a batch that failed so the stream hands it again; batches that keep failing go to
//! the dead-letter queue the template attaches.

use depot::config::{FunctionConfig, StoreConfig};
use depot::delivery::eventbridge::{Bus, handle, records_of};
use depot::store::dynamo::DynamoMetaStore;
use depot::telemetry::init_json_logging;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_json_logging();
    let config = FunctionConfig::from_env()?;
    let StoreConfig::Aws {
        table,
        endpoints,
        patience,
        ..
    } = config.store.config()?
    else {
        return Err("the events function needs the aws store (DEPOT_STORE=aws)".into());
    };
    let sdk = depot::sdk_config().await;
    let client = DynamoMetaStore::client_from(&sdk, endpoints.dynamodb.as_deref(), &patience);
    let audit = Arc::new(DynamoMetaStore::new(client, &table));
    let events = config.events.clone();
    let bus = Arc::new(Bus::new(
        &sdk,
        events.eventbridge_endpoint.as_deref(),
        &events.event_bus,
    ));
    let keep = events.keep_seconds();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (audit, bus) = (audit.clone(), bus.clone());
        async move {
            let records = records_of(&event.payload);
            Ok::<_, lambda_runtime::Error>(handle(&records, &audit, &bus, keep).await)
        }
    }))
    .await
}
