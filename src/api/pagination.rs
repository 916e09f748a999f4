//! GitLab's offset pagination for lists: `X-Per-Page`, `X-Page`, `X-Next-Page`, `X-Prev-Page`,
//! `X-Total`/`X-Total-Pages` while counted, and a `Link` header built from the URL clients reach
//! depot at.

use super::extract::Incoming;
use crate::domain::{Listed, Page};
use crate::registry::Registry;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The URL clients reach us at: the configured public URL, else the request's own host.
pub fn base_url(registry: &Registry, headers: &HeaderMap) -> String {
    if let Some(url) = registry.public_url() {
        return url.to_string();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
    };
    let scheme = header("x-forwarded-proto").unwrap_or_else(|| "http".into());
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .unwrap_or_else(|| "localhost".into());
    format!("{scheme}://{host}")
}

/// A JSON array with GitLab's offset-pagination headers (`X-Per-Page`, `X-Page`,
/// `X-Next-Page`, `X-Prev-Page`, `Link`, and `X-Total`/`X-Total-Pages` when counted).
pub fn paginated<T, B: serde::Serialize>(
    body: Vec<B>,
    listed: &Listed<T>,
    page: Page,
    base: &str,
    request: &Incoming,
) -> Response {
    let mut response = axum::Json(body).into_response();
    for (name, value) in pagination_headers(listed, page, base, request) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

pub fn pagination_headers<T>(
    listed: &Listed<T>,
    page: Page,
    base: &str,
    request: &Incoming,
) -> Vec<(&'static str, String)> {
    let total_pages = listed
        .total
        .map(|total| total.div_ceil(page.per_page).max(1));
    // Kaminari: a page past the last has neither a next nor a previous page.
    let out_of_range = total_pages.is_some_and(|last| page.number > last);
    let next = (listed.has_next && !out_of_range).then(|| page.number + 1);
    let prev = (page.number > 1 && !out_of_range).then(|| page.number - 1);
    let link = |number: u64, rel: &str| {
        format!(
            "<{}>; rel=\"{rel}\"",
            page_url(base, request, number, page.per_page)
        )
    };
    let mut links = Vec::new();
    if let Some(p) = prev {
        links.push(link(p, "prev"));
    }
    if let Some(n) = next {
        links.push(link(n, "next"));
    }
    links.push(link(1, "first"));
    if let Some(last) = total_pages {
        links.push(link(last, "last"));
    }
    let show = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let mut headers = vec![
        ("x-per-page", page.per_page.to_string()),
        ("x-page", page.number.to_string()),
        ("x-next-page", show(next)),
        ("x-prev-page", show(prev)),
        (header::LINK.as_str(), links.join(", ")),
    ];
    if let (Some(total), Some(pages)) = (listed.total, total_pages) {
        headers.push(("x-total", total.to_string()));
        headers.push(("x-total-pages", pages.to_string()));
    }
    headers
}

/// This request's URL at another page: its own query (minus any token, which must never be
/// echoed) with `page` and `per_page` set, keys sorted as Rails' `to_query` sorts them.
fn page_url(base: &str, request: &Incoming, number: u64, per_page: u64) -> String {
    let mut params: Vec<(String, String)> = request
        .query
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "page" | "per_page" | "private_token" | "job_token"
            )
        })
        .cloned()
        .collect();
    params.push(("page".into(), number.to_string()));
    params.push(("per_page".into(), per_page.to_string()));
    params.sort();
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{base}{}?{query}", request.arrived_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::FromRequestParts;

    fn incoming(uri: &str) -> Incoming {
        let request = axum::http::Request::builder().uri(uri).body(()).unwrap();
        let (mut parts, ()) = request.into_parts();
        let ready = Incoming::from_request_parts(&mut parts, &());
        futures::executor::block_on(ready).unwrap_or_else(|never| match never {})
    }

    fn listed(total: Option<u64>, has_next: bool) -> Listed<()> {
        Listed {
            items: Vec::new(),
            total,
            has_next,
        }
    }

    fn headers(
        listed: &Listed<()>,
        number: u64,
        per_page: u64,
        uri: &str,
    ) -> Vec<(&'static str, String)> {
        pagination_headers(
            listed,
            Page { number, per_page },
            "http://r",
            &incoming(uri),
        )
    }

    #[test]
    fn middle_page_has_every_link() {
        let h = headers(
            &listed(Some(45), true),
            2,
            20,
            "/api/v4/projects/5/packages?sort=desc&private_token=secret&page=2",
        );
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-page"), Some("2"));
        assert_eq!(get("x-per-page"), Some("20"));
        assert_eq!(get("x-next-page"), Some("3"));
        assert_eq!(get("x-prev-page"), Some("1"));
        assert_eq!(get("x-total"), Some("45"));
        assert_eq!(get("x-total-pages"), Some("3"));
        let url =
            |p: u64| format!("http://r/api/v4/projects/5/packages?page={p}&per_page=20&sort=desc");
        assert_eq!(
            get("link").unwrap(),
            format!(
                "<{}>; rel=\"prev\", <{}>; rel=\"next\", <{}>; rel=\"first\", <{}>; rel=\"last\"",
                url(1),
                url(3),
                url(1),
                url(3)
            )
        );
    }

    #[test]
    fn empty_last_and_uncounted_lists() {
        let h = headers(&listed(Some(0), false), 1, 20, "/x");
        let get =
            |h: &[(&str, String)], n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
        assert_eq!(get(&h, "x-total").as_deref(), Some("0"));
        assert_eq!(get(&h, "x-total-pages").as_deref(), Some("1"));
        assert_eq!(get(&h, "x-next-page").as_deref(), Some(""));
        assert_eq!(get(&h, "x-prev-page").as_deref(), Some(""));
        // Past the last page: no next, no prev.
        let h = headers(&listed(Some(5), false), 4, 2, "/x");
        assert_eq!(get(&h, "x-prev-page").as_deref(), Some(""));
        assert!(!get(&h, "link").unwrap().contains("rel=\"prev\""));
        // Over the count limit: no totals and no last link, but next is known.
        let h = headers(&listed(None, true), 1, 100, "/x");
        assert_eq!(get(&h, "x-total"), None);
        assert_eq!(get(&h, "x-next-page").as_deref(), Some("2"));
        assert!(!get(&h, "link").unwrap().contains("rel=\"last\""));
    }
}
