//! Pagination parameters. The input is `<route> <total> <has_next>?<query>`: the query string
//! of a list request; the route (`p` a project's packages, `g` a group's, `f` a package's
//! files, `l` its pipelines, anything else none) it is also sent to through the app; the count
//! (`-` when uncounted) and whether more rows follow, for the pagination headers.
//!
//! Checks: an accepted query's page is 1-based and its `per_page` within GitLab's 1..=100;
//! the headers agree with the page, name the neighbouring pages, are valid header values and
//! never echo a token; through the app, never a 5xx, and a 200 carries `X-Page`/`X-Per-Page`
//! within bounds (the pipelines list allows at most 20 per page).

#![no_main]

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::{HeaderValue, Method, Request};
use depot::api::edge::{Incoming, pagination_headers};
use depot::domain::{Listed, MAX_PER_PAGE, PackageQuery, Page};
use depot_fuzz::{PROJECT, app};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (head, query) = text.split_once('?').unwrap_or(("", &text));
    let mut words = head.split(' ');
    let route = words.next().unwrap_or_default();
    let total = words.next().and_then(|t| t.parse::<u64>().ok());
    let has_next = words.next() == Some("1");
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let borrowed = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let for_group = route == "g";
    let Ok(parsed) = PackageQuery::parse(borrowed, for_group) else {
        through_app(route, query);
        return;
    };
    let page = parsed.page;
    assert!(page.number >= 1, "{page:?}");
    assert!((1..=MAX_PER_PAGE).contains(&page.per_page), "{page:?}");
    let _ = page.offset();
    headers(page, total, has_next, query);
    through_app(route, query);
});

fn headers(page: Page, total: Option<u64>, has_next: bool, query: &str) {
    let uri = format!("/api/v4/projects/{PROJECT}/packages?{query}");
    let Ok(request) = Request::builder().uri(uri).body(()) else {
        return;
    };
    let (mut parts, ()) = request.into_parts();
    let incoming = Incoming::from_request_parts(&mut parts, &());
    let incoming = now_or_never(incoming).unwrap_or_else(|never| match never {});
    let listed = Listed::<()> {
        items: Vec::new(),
        total,
        has_next,
    };
    let headers = pagination_headers(&listed, page, "http://depot.test", &incoming);
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("x-page"), Some(page.number.to_string()));
    assert_eq!(get("x-per-page"), Some(page.per_page.to_string()));
    let number = |name: &str| get(name).and_then(|v| v.parse::<u64>().ok());
    if let Some(next) = number("x-next-page") {
        assert_eq!(next, page.number + 1);
    }
    if let Some(prev) = number("x-prev-page") {
        assert_eq!(prev, page.number - 1);
    }
    for (name, value) in &headers {
        assert!(HeaderValue::from_str(value).is_ok(), "{name}: {value:?}");
    }
    let link = get("link").expect("a Link header");
    for url in link.split(", ") {
        let url = url.split_once('>').map_or(url, |(u, _)| u);
        let query = url.split_once('?').map_or("", |(_, q)| q);
        for (key, _) in form_urlencoded::parse(query.as_bytes()) {
            assert!(key != "private_token" && key != "job_token", "{link}");
        }
    }
}

/// Drive a future that never waits.
fn now_or_never<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("the extractor waited"),
    }
}

fn through_app(route: &str, query: &str) {
    let path = match route {
        "p" => format!("/api/v4/projects/{PROJECT}/packages"),
        "g" => "/api/v4/groups/demo/packages".to_string(),
        "f" => format!("/api/v4/projects/{PROJECT}/packages/1/package_files"),
        "l" => format!("/api/v4/projects/{PROJECT}/packages/1/pipelines"),
        _ => return,
    };
    let app = app();
    let Ok(request) = app
        .authorized(Method::GET, &format!("{path}?{query}"))
        .body(Body::empty())
    else {
        return;
    };
    let answer = app.send(request);
    answer.check(&Method::GET);
    if !answer.status.is_success() {
        return;
    }
    let header = |name: &str| {
        answer
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let most = if route == "l" { 20 } else { MAX_PER_PAGE };
    if route == "l" {
        let per_page = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "per_page");
        if let Some((_, v)) = per_page {
            let n = v
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("accepted {v:?}"));
            assert!((1..=most).contains(&n), "accepted per_page={n}");
        }
        return;
    }
    let per_page = header("x-per-page").expect("X-Per-Page");
    assert!((1..=most).contains(&per_page), "X-Per-Page {per_page}");
    assert!(header("x-page").expect("X-Page") >= 1);
}
