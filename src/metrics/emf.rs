//! CloudWatch Embedded Metric Format lines: one per request from the API function (namespace
//! `depot`, by `Operation`, refusals also by `Reason`), and one per run from the events and
//! purge functions. CloudWatch turns each line on a function's stdout into metrics.

use serde_json::{Value, json};
use std::time::Duration;

/// One request, for its metrics: what it was, how it ended, its bytes, and the time it spent
/// waiting for the stores.
#[derive(Debug, Clone)]
pub struct Served {
    pub operation: &'static str,
    pub status: u16,
    pub took: Duration,
    /// The request body's declared length.
    pub bytes_in: u64,
    /// The answer's declared length (a streamed answer declares none: 0).
    pub bytes_out: u64,
    pub store_calls: u64,
    pub store_time: Duration,
}

/// Why a request was refused, in a word (`None` unless it was: 4xx).
pub fn refusal_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "invalid",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        412 => "precondition_failed",
        413 => "too_large",
        416 => "range_not_satisfiable",
        422 => "unprocessable",
        429 => "throttled",
        _ if (400..500).contains(&status) => "other",
        _ => return None,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One request as an EMF line.
pub fn emf_line(s: &Served, at_millis: i64) -> String {
    let ok = (200..400).contains(&s.status);
    let metrics = json!([
        {"Name": "Requests", "Unit": "Count"},
        {"Name": "Refused", "Unit": "Count"},
        {"Name": "Failed", "Unit": "Count"},
        {"Name": "Latency", "Unit": "Milliseconds"},
        {"Name": "StoreLatency", "Unit": "Milliseconds"},
        {"Name": "StoreCalls", "Unit": "Count"},
        {"Name": "BytesIn", "Unit": "Bytes"},
        {"Name": "BytesOut", "Unit": "Bytes"},
        {"Name": "Published", "Unit": "Count"},
        {"Name": "Downloaded", "Unit": "Count"},
    ]);
    let mut directives = vec![json!({
        "Namespace": "depot",
        "Dimensions": [["Operation"]],
        "Metrics": metrics,
    })];
    let reason = refusal_reason(s.status);
    if reason.is_some() {
        directives.push(json!({
            "Namespace": "depot",
            "Dimensions": [["Reason"]],
            "Metrics": [{"Name": "Refused", "Unit": "Count"}],
        }));
    }
    let mut line = json!({
        "_aws": {"Timestamp": at_millis, "CloudWatchMetrics": directives},
        "Operation": s.operation,
        "Status": s.status,
        "Requests": 1,
        "Refused": u8::from(reason.is_some()),
        "Failed": u8::from(s.status >= 500),
        "Latency": ms(s.took),
        "StoreLatency": ms(s.store_time),
        "StoreCalls": s.store_calls,
        "BytesIn": s.bytes_in,
        "BytesOut": s.bytes_out,
        "Published": u8::from(ok && s.operation == "publish"),
        "Downloaded": u8::from(ok && s.operation == "download"),
    });
    if let Some(reason) = reason {
        line["Reason"] = json!(reason);
    }
    line.to_string()
}

/// A line of `metrics` (name, unit, value) without dimensions, at `at_millis`.
fn plain(metrics: &[(&str, &str, Value)], at_millis: i64) -> String {
    let names: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut line = json!({
        "_aws": {"Timestamp": at_millis, "CloudWatchMetrics": [
            {"Namespace": "depot", "Dimensions": [[]], "Metrics": names}
        ]},
    });
    for (name, _, value) in metrics {
        line[*name] = value.clone();
    }
    line.to_string()
}

/// The events function's line: events delivered and failed, and the lag of the oldest.
pub fn delivery_emf(delivered: usize, failed: usize, lag_ms: i64, at_millis: i64) -> String {
    plain(
        &[
            ("EventsDelivered", "Count", json!(delivered)),
            ("EventsFailed", "Count", json!(failed)),
            ("EventDeliveryLag", "Milliseconds", json!(lag_ms)),
        ],
        at_millis,
    )
}

/// The finalizer's line: upload sessions its run committed and refused.
pub fn sessions_emf(committed: usize, refused: usize, at_millis: i64) -> String {
    plain(
        &[
            ("SessionsCommitted", "Count", json!(committed)),
            ("SessionsRefused", "Count", json!(refused)),
        ],
        at_millis,
    )
}

/// The purge function's line: what one run removed, and what cleanup policies deleted.
pub fn purge_emf(purged: [usize; 3], cleaned: [usize; 2], at_millis: i64) -> String {
    plain(
        &[
            ("PurgedPackages", "Count", json!(purged[0])),
            ("PurgedFiles", "Count", json!(purged[1])),
            ("PurgedBlobs", "Count", json!(purged[2])),
            ("CleanedUpPackages", "Count", json!(cleaned[0])),
            ("CleanedUpFiles", "Count", json!(cleaned[1])),
        ],
        at_millis,
    )
}

/// What a request was, for its metrics: a few words, never a path's names.
pub fn operation_of(method: &str, path: &str) -> &'static str {
    let generic = path.contains("/packages/generic/");
    match (method, generic) {
        ("PUT", true) => "publish",
        ("GET" | "HEAD", true) if path.ends_with("/uploads") || path.contains("/uploads/") => {
            "upload_session"
        }
        ("POST" | "DELETE", true) => "upload_session",
        ("GET" | "HEAD", true) => "download",
        _ if path.starts_with("/api/v4/") && path.contains("/packages") => "packages_api",
        _ if path.starts_with("/api/") => "api",
        _ => "web",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `line` is what CloudWatch's EMF specification asks: a `_aws` object with a timestamp
    /// and metric directives whose every dimension and metric name is a top-level member.
    pub(crate) fn assert_emf(line: &str) -> Value {
        let v: Value = serde_json::from_str(line).unwrap();
        let aws = &v["_aws"];
        assert!(aws["Timestamp"].is_i64());
        for directive in aws["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(directive["Namespace"], "depot");
            for set in directive["Dimensions"].as_array().unwrap() {
                for dimension in set.as_array().unwrap() {
                    assert!(v[dimension.as_str().unwrap()].is_string(), "{dimension}");
                }
            }
            for metric in directive["Metrics"].as_array().unwrap() {
                assert!(v[metric["Name"].as_str().unwrap()].is_number(), "{metric}");
            }
        }
        v
    }

    #[test]
    fn lines_parse_as_embedded_metric_format() {
        let served = Served {
            operation: "download",
            status: 404,
            took: Duration::from_millis(12),
            bytes_in: 0,
            bytes_out: 27,
            store_calls: 2,
            store_time: Duration::from_millis(3),
        };
        let v = assert_emf(&emf_line(&served, 1_800_000_000_000));
        assert_eq!(
            (v["Refused"].as_u64(), v["Failed"].as_u64()),
            (Some(1), Some(0))
        );
        assert_eq!(v["Reason"], "not_found");
        assert_eq!(v["StoreLatency"], 3.0);
        assert_eq!(v["Downloaded"], 0);
        let ok = Served {
            status: 200,
            ..served
        };
        let v = assert_emf(&emf_line(&ok, 1_800_000_000_000));
        assert!(v.get("Reason").is_none());
        assert_eq!(v["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(), 1);
        assert_eq!(v["Downloaded"], 1);
        assert_emf(&delivery_emf(3, 1, 250, 1));
        assert_emf(&sessions_emf(2, 0, 1));
        let purge = assert_emf(&purge_emf([1, 2, 3], [4, 5], 1));
        assert_eq!(purge["PurgedBlobs"], 3);
        assert_eq!(
            operation_of("PUT", "/api/v4/projects/1/packages/generic/p/1/f"),
            "publish"
        );
        assert_eq!(
            operation_of("GET", "/api/v4/projects/1/packages/generic/p/1/f"),
            "download"
        );
        assert_eq!(
            operation_of("GET", "/api/v4/projects/1/packages"),
            "packages_api"
        );
        assert_eq!(operation_of("GET", "/demo/app/-/packages"), "web");
    }
}
