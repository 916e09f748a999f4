//! What a process counts of its own work, for operators: requests by status and their time,
//! refusals by reason, bytes in and out, time waiting for the stores, publishes and downloads
//! with their bytes, upload sessions committed, what the purge removed, webhook deliveries and
//! their lag. `depot serve --metrics` shows them at `/metrics` in Prometheus's text format;
//! the Lambda functions print the same per request as EMF lines (`emf`). Counters are per
//! process and start at zero.

mod emf;
pub use emf::{
    Served, delivery_emf, emf_line, operation_of, purge_emf, refusal_reason, sessions_emf,
};

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<u16, u64>>,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    request_micros: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    store_calls: AtomicU64,
    store_micros: AtomicU64,
    deliveries: Mutex<BTreeMap<&'static str, u64>>,
    /// Milliseconds between the last delivered event's change and its delivery.
    delivery_lag_ms: AtomicU64,
    publishes: AtomicU64,
    published_bytes: AtomicU64,
    downloads: AtomicU64,
    downloaded_bytes: AtomicU64,
    session_commits: AtomicU64,
    purged_packages: AtomicU64,
    purged_files: AtomicU64,
    purged_blobs: AtomicU64,
}

/// A metric family's `# HELP` and `# TYPE` lines (`name` without the `depot_` prefix).
fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP depot_{name} {help}");
    let _ = writeln!(out, "# TYPE depot_{name} {kind}");
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// A request answered.
    pub fn request(&self, served: &Served) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests.entry(served.status).or_default() += 1;
        drop(requests);
        if let Some(reason) = refusal_reason(served.status) {
            let mut refusals = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
            *refusals.entry(reason).or_default() += 1;
        }
        add(&self.request_micros, served.took.as_micros() as u64);
        add(&self.bytes_in, served.bytes_in);
        add(&self.bytes_out, served.bytes_out);
        add(&self.store_calls, served.store_calls);
        add(&self.store_micros, served.store_time.as_micros() as u64);
    }

    /// A webhook delivery tried: `outcome` is `delivered`, `refused` (to be tried again) or
    /// `failed` (given up); `lag` from the change to a delivery.
    pub fn delivery(&self, outcome: &'static str, lag: Option<Duration>) {
        let mut deliveries = self.deliveries.lock().unwrap_or_else(|p| p.into_inner());
        *deliveries.entry(outcome).or_default() += 1;
        if let Some(lag) = lag {
            self.delivery_lag_ms
                .store(lag.as_millis() as u64, Ordering::Relaxed);
        }
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
        header(
            &mut out,
            "requests_total",
            "Requests answered, by status.",
            "counter",
        );
        for (status, n) in &requests {
            let _ = writeln!(out, "depot_requests_total{{status=\"{status}\"}} {n}");
        }
        let total: u64 = requests.values().sum();
        let seconds = self.request_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let about = "Time spent answering.";
        header(&mut out, "request_duration_seconds", about, "summary");
        let _ = writeln!(out, "depot_request_duration_seconds_sum {seconds}");
        let _ = writeln!(out, "depot_request_duration_seconds_count {total}");
        self.render_labelled(&mut out);
        let counters = [
            (
                "request_bytes_in",
                "Bytes of request bodies declared.",
                &self.bytes_in,
            ),
            (
                "response_bytes_out",
                "Bytes of answers declared.",
                &self.bytes_out,
            ),
            (
                "store_calls",
                "Calls made to the stores.",
                &self.store_calls,
            ),
            (
                "store_microseconds",
                "Time spent waiting for the stores.",
                &self.store_micros,
            ),
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
            header(&mut out, &format!("{name}_total"), help, "counter");
            let _ = writeln!(
                out,
                "depot_{name}_total {}",
                counter.load(Ordering::Relaxed)
            );
        }
        let lag = self.delivery_lag_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let about = "From the last delivered event's change to its delivery.";
        header(&mut out, "event_delivery_lag_seconds", about, "gauge");
        let _ = writeln!(out, "depot_event_delivery_lag_seconds {lag}");
        out
    }

    /// Refusals by reason and webhook deliveries by outcome.
    fn render_labelled(&self, out: &mut String) {
        let series = [
            (
                "refused",
                "Requests refused (4xx), by reason.",
                "reason",
                &self.refusals,
            ),
            (
                "webhook_deliveries",
                "Webhook deliveries tried, by outcome.",
                "outcome",
                &self.deliveries,
            ),
        ];
        for (name, help, label, counts) in series {
            let counts = counts.lock().unwrap_or_else(|p| p.into_inner()).clone();
            header(out, &format!("{name}_total"), help, "counter");
            for (value, n) in counts {
                let _ = writeln!(out, "depot_{name}_total{{{label}=\"{value}\"}} {n}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text() {
        let m = Metrics::default();
        let served = |status, ms| Served {
            operation: "publish",
            status,
            took: Duration::from_millis(ms),
            bytes_in: 7,
            bytes_out: 0,
            store_calls: 2,
            store_time: Duration::from_millis(1),
        };
        m.request(&served(201, 5));
        m.request(&served(404, 1));
        m.request(&served(201, 4));
        m.delivery("refused", None);
        m.delivery("delivered", Some(Duration::from_millis(1500)));
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
            "depot_refused_total{reason=\"not_found\"} 1",
            "depot_request_bytes_in_total 21",
            "depot_store_calls_total 6",
            "depot_store_microseconds_total 3000",
            "depot_webhook_deliveries_total{outcome=\"delivered\"} 1",
            "depot_webhook_deliveries_total{outcome=\"refused\"} 1",
            "depot_event_delivery_lag_seconds 1.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
