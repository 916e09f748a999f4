//! What a process counts of its own work, for operators: requests by status and their time,
//! publishes and downloads with their bytes, upload sessions committed, what the purge removed.
//! `depot serve --metrics` shows them at `/metrics` in Prometheus's text format. Counters are
//! per process and start at zero.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<u16, u64>>,
    request_micros: AtomicU64,
    publishes: AtomicU64,
    published_bytes: AtomicU64,
    downloads: AtomicU64,
    downloaded_bytes: AtomicU64,
    session_commits: AtomicU64,
    purged_packages: AtomicU64,
    purged_files: AtomicU64,
    purged_blobs: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// A request answered with `status`, after `took`.
    pub fn request(&self, status: u16, took: Duration) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests.entry(status).or_default() += 1;
        add(&self.request_micros, took.as_micros() as u64);
    }

    /// A file published (directly or by an upload session's commit) of `bytes`.
    pub fn published(&self, bytes: u64, by_session: bool) {
        add(&self.publishes, 1);
        add(&self.published_bytes, bytes);
        if by_session {
            add(&self.session_commits, 1);
        }
    }

    /// A download of a file of `bytes` (what the file holds, whatever range was asked).
    pub fn downloaded(&self, bytes: u64) {
        add(&self.downloads, 1);
        add(&self.downloaded_bytes, bytes);
    }

    /// What one purge pass removed.
    pub fn purged(&self, packages: usize, files: usize, blobs: usize) {
        add(&self.purged_packages, packages as u64);
        add(&self.purged_files, files as u64);
        add(&self.purged_blobs, blobs as u64);
    }

    /// Prometheus's text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let _ = writeln!(
            out,
            "# HELP depot_requests_total Requests answered, by status."
        );
        let _ = writeln!(out, "# TYPE depot_requests_total counter");
        for (status, n) in &requests {
            let _ = writeln!(out, "depot_requests_total{{status=\"{status}\"}} {n}");
        }
        let total: u64 = requests.values().sum();
        let seconds = self.request_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "# HELP depot_request_duration_seconds Time spent answering."
        );
        let _ = writeln!(out, "# TYPE depot_request_duration_seconds summary");
        let _ = writeln!(out, "depot_request_duration_seconds_sum {seconds}");
        let _ = writeln!(out, "depot_request_duration_seconds_count {total}");
        let counters = [
            ("publishes", "Files published.", &self.publishes),
            (
                "published_bytes",
                "Bytes of files published.",
                &self.published_bytes,
            ),
            ("downloads", "Files downloaded.", &self.downloads),
            (
                "downloaded_bytes",
                "Bytes of files downloaded.",
                &self.downloaded_bytes,
            ),
            (
                "upload_session_commits",
                "Upload sessions committed.",
                &self.session_commits,
            ),
            (
                "purged_packages",
                "Packages the purge removed.",
                &self.purged_packages,
            ),
            (
                "purged_files",
                "Files the purge removed.",
                &self.purged_files,
            ),
            (
                "purged_blobs",
                "Blobs the purge removed.",
                &self.purged_blobs,
            ),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(out, "# HELP depot_{name}_total {help}");
            let _ = writeln!(out, "# TYPE depot_{name}_total counter");
            let _ = writeln!(
                out,
                "depot_{name}_total {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text() {
        let m = Metrics::default();
        m.request(201, Duration::from_millis(5));
        m.request(404, Duration::from_millis(1));
        m.request(201, Duration::from_millis(4));
        m.published(10, false);
        m.published(5, true);
        m.downloaded(10);
        m.purged(1, 2, 2);
        let text = m.render();
        for line in [
            "depot_requests_total{status=\"201\"} 2",
            "depot_requests_total{status=\"404\"} 1",
            "depot_request_duration_seconds_count 3",
            "depot_request_duration_seconds_sum 0.01",
            "depot_publishes_total 2",
            "depot_published_bytes_total 15",
            "depot_upload_session_commits_total 1",
            "depot_downloads_total 1",
            "depot_purged_files_total 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}

/// One request as a CloudWatch Embedded Metric Format line (the Lambda functions print one per
/// request on stdout; CloudWatch turns them into metrics in the `depot` namespace, by
/// `Operation`): a request, its time, and whether it was refused (4xx) or failed (5xx).
pub fn emf_line(operation: &str, status: u16, took: Duration, at_millis: i64) -> String {
    let refused = u8::from((400..500).contains(&status));
    let failed = u8::from(status >= 500);
    serde_json::json!({
        "_aws": {
            "Timestamp": at_millis,
            "CloudWatchMetrics": [{
                "Namespace": "depot",
                "Dimensions": [["Operation"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "Refused", "Unit": "Count"},
                    {"Name": "Failed", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Milliseconds"},
                ],
            }],
        },
        "Operation": operation,
        "Status": status,
        "Requests": 1,
        "Refused": refused,
        "Failed": failed,
        "Latency": took.as_secs_f64() * 1000.0,
    })
    .to_string()
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
mod emf_tests {
    use super::*;

    /// The line is what CloudWatch's EMF specification asks: a `_aws` object with a
    /// timestamp and metric directives whose every dimension and metric name is a
    /// top-level member.
    #[test]
    fn lines_parse_as_embedded_metric_format() {
        let line = emf_line(
            "download",
            404,
            Duration::from_millis(12),
            1_800_000_000_000,
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let aws = &v["_aws"];
        assert!(aws["Timestamp"].is_i64());
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "depot");
        for dimension in directive["Dimensions"][0].as_array().unwrap() {
            assert!(v[dimension.as_str().unwrap()].is_string());
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(v[metric["Name"].as_str().unwrap()].is_number(), "{metric}");
        }
        assert_eq!(
            (v["Refused"].as_u64(), v["Failed"].as_u64()),
            (Some(1), Some(0))
        );
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
