//! What events add per publish on AWS, beyond the publish's own writes (which carry the event
//! in an attribute, measured with the publish): the release `lambda-events` fed the table's
//! stream as Lambda's event source mapping feeds it (only records whose new image carries an
//! event, as the template's filter passes them), writing the audit log through the counting
//! proxy and putting the events on a loopback EventBridge stand-in. Two cases: one event per
//! invocation (a quiet registry), and every event waiting in one batch (a busy one).

use super::lambda::{Function, Lambda, runtime_api};
use super::proxy::{Call, Calls};
use super::report::{price, spread};
use super::support::receiver::EventBus;
use super::support::stream::StreamPump;
use serde_json::{Value, json};

/// One case's invocations.
pub struct EventsRun {
    pub name: &'static str,
    /// Stream records the filter passed (a later write of an item that carries an event
    /// passes too, and is no new event).
    pub records: usize,
    pub invocations: usize,
    pub billed_ms: Vec<f64>,
    pub calls: Vec<Call>,
    pub put_events: usize,
}

/// The records of a stream batch that the template's filter passes (a new image with `ev`).
fn passed(batch: &Value) -> Vec<Value> {
    let records = batch["Records"].as_array().cloned().unwrap_or_default();
    records
        .into_iter()
        .filter(|r| r["dynamodb"]["NewImage"]["ev"]["S"].is_string())
        .collect()
}

/// Deliver the events on the table's stream so far through the function: the first
/// `single` one record per invocation, the rest in batches of up to 100.
pub async fn measure(
    calls: &Calls,
    env: &[(&'static str, String)],
    pump: &mut StreamPump,
    single: usize,
) -> Vec<EventsRun> {
    let bus = EventBus::start().await;
    let mut env = env.to_vec();
    env.push(("DEPOT_EVENTBRIDGE_ENDPOINT", bus.url.clone()));
    env.push(("DEPOT_EVENT_BUS", "depot-bench".into()));
    let (runtime, queue, ready) = runtime_api().await;
    let _function = Function::spawn_binary("lambda-events", "EventsFunction", &runtime, &env);
    ready.await.unwrap();
    let mut lambda = Lambda { queue, count: 0 };
    let records = passed(&pump.next_batch().await);
    let (alone, together) = records.split_at(single.min(records.len()));
    let mut runs = Vec::new();
    for (name, batches) in [
        (
            "one event per invocation",
            alone.chunks(1).collect::<Vec<_>>(),
        ),
        ("batches of up to 100", together.chunks(100).collect()),
    ] {
        calls.take();
        let before = bus.entries().len();
        let mut billed = Vec::new();
        for batch in &batches {
            let (answer, took) = lambda.invoke_raw(json!({ "Records": batch })).await;
            assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
            billed.push((took.as_secs_f64() * 1000.0).ceil());
        }
        runs.push(EventsRun {
            name,
            records: batches.iter().map(|b| b.len()).sum(),
            invocations: batches.len(),
            billed_ms: billed,
            calls: calls.take(),
            put_events: bus.entries().len() - before,
        });
    }
    runs
}

/// The section of BENCHMARKS.md: each case's figures per event, and dollars per million.
pub fn report(runs: &[EventsRun]) {
    let memory_mb = super::memory_mb("EventsFunction");
    println!("### Events per publish\n");
    println!(
        "Every publish records one event, in an `ev` attribute of the item it writes anyway \
         (its bytes are in the publish's write units above). The events function then reads \
         the table's stream (free for a Lambda trigger), writes the audit log (an entry in the \
         project's partition and one in the instance's: `BatchWriteItem`) and puts the event \
         on EventBridge (${:.2} per million events). Measured with the release `lambda-events` \
         at {memory_mb:.0} MB fed the stream of this run's table by a local Lambda Runtime API, \
         DynamoDB Local behind the counting proxy, and a loopback EventBridge stand-in. The \
         first events of the run (two of setting up, then publishes) went one per invocation, \
         as on a quiet registry; the rest waited in one batch, as on a busy one. Costs are per \
         event put; the setup's events are the instance's only (one audit entry, not two).\n",
        price::EVENTBRIDGE_EVENT * 1e6
    );
    println!(
        "| case | records passed | events put | invocations | WRU per event | billed ms per invocation, median (min-max) | $ per million publishes |"
    );
    println!("|---|---|---|---|---|---|---|");
    for run in runs {
        let events = run.put_events.max(1) as f64;
        let wru: f64 = run.calls.iter().map(|c| c.write_units).sum::<f64>() / events;
        let ms: f64 = run.billed_ms.iter().sum();
        let gb_s = ms / 1000.0 * memory_mb / 1024.0 * price::LAMBDA_ARM_GB_SECOND;
        let dollars = (run.invocations as f64 * price::LAMBDA_REQUEST + gb_s) / events
            + wru * price::DYNAMO_WRU
            + price::EVENTBRIDGE_EVENT;
        println!(
            "| {} | {} | {} | {} | {:.1} | {} | {:.3} |",
            run.name,
            run.records,
            run.put_events,
            run.invocations,
            wru,
            spread(&run.billed_ms, 0),
            dollars * 1e6
        );
    }
    println!();
}
