//! `depot serve --metrics`: the process's counters at `/metrics` in Prometheus's text format,
//! counted as the work is done (on both stores); without the flag, no such route.

use crate::support::{Backend, World};

fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} in\n{text}"))
        .parse()
        .unwrap()
}

async fn the_counters_follow_the_work(backend: Backend) {
    let mut w = World::new(backend).await;
    assert_eq!(w.app.get("/metrics", &[]).await.status.as_u16(), 404);
    w.app.reconfigure(|r| r.with_metrics_endpoint(true));
    let dev = ("PRIVATE-TOKEN", w.token("developer"));
    for (file, body) in [("a.bin", &b"12345"[..]), ("b.bin", &b"123"[..])] {
        let uri = w.url(w.private_id, &format!("pkg/1.0/{file}"));
        let length = body.len().to_string();
        let headers = [dev, ("Content-Length", length.as_str())];
        assert_eq!(w.app.put(&uri, &headers, body).await.status.as_u16(), 201);
    }
    let uri = w.url(w.private_id, "pkg/1.0/a.bin");
    for _ in 0..3 {
        assert_eq!(w.app.get(&uri, &[dev]).await.status.as_u16(), 200);
    }
    assert_eq!(w.app.get(&uri, &[]).await.status.as_u16(), 401);
    let scraped = w.app.get("/metrics", &[]).await;
    assert_eq!(scraped.status.as_u16(), 200);
    assert!(
        scraped
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = scraped.text();
    assert_eq!(value(&text, "depot_publishes_total"), 2.0);
    assert_eq!(value(&text, "depot_published_bytes_total"), 8.0);
    assert_eq!(value(&text, "depot_downloads_total"), 3.0);
    assert_eq!(value(&text, "depot_downloaded_bytes_total"), 15.0);
    assert_eq!(value(&text, "depot_requests_total{status=\"201\"}"), 2.0);
    assert_eq!(value(&text, "depot_requests_total{status=\"200\"}"), 3.0);
    assert_eq!(value(&text, "depot_requests_total{status=\"401\"}"), 1.0);
    assert_eq!(value(&text, "depot_request_duration_seconds_count"), 6.0);
    // Refusals by reason, bodies in, and the time spent on the stores (every request here
    // reads them; the publishes write).
    assert_eq!(
        value(&text, "depot_refused_total{reason=\"unauthenticated\"}"),
        1.0
    );
    assert_eq!(value(&text, "depot_request_bytes_in_total"), 8.0);
    assert!(value(&text, "depot_response_bytes_out_total") >= 15.0);
    assert!(value(&text, "depot_store_calls_total") >= 6.0, "{text}");
    assert!(value(&text, "depot_store_microseconds_total") > 0.0);
}

on_every_backend!(the_counters_follow_the_work);
