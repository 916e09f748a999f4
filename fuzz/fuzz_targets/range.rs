//! `Range` and `If-Range` (and `If-None-Match`, `Content-Disposition`) as downloads read them.
//! The input is lines: the file's size, the `Range` value, then optionally `If-Range` and
//! `If-None-Match`; the file's ETag is `"etag"`.
//!
//! Checks: a part lies within the file and is not empty; a stale `If-Range` or a range that is
//! not `bytes=` is the whole file; a plain `bytes=A-B` is exactly that part; the headers
//! `ranged` sets agree with the range; a `Content-Disposition` is always a valid header value.

#![no_main]

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use depot::api::edge::{RangeRequest, content_disposition, if_none_match, ranged, requested_range};
use libfuzzer_sys::fuzz_target;

const ETAG: &str = "\"etag\"";

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let size_line = lines.next().unwrap_or_default();
    let size = std::str::from_utf8(size_line)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(data.len() as u64);
    let mut headers = HeaderMap::new();
    for name in [header::RANGE, header::IF_RANGE, header::IF_NONE_MATCH] {
        if let Some(value) = lines.next().and_then(|l| HeaderValue::from_bytes(l).ok()) {
            headers.insert(name, value);
        }
    }
    let range = requested_range(&headers, ETAG, size);
    range_invariants(&headers, &range, size);
    answer_headers(&headers, &range, size);
    let _ = if_none_match(&headers, ETAG);
    let name = String::from_utf8_lossy(size_line);
    let disposition = content_disposition(&name);
    assert!(
        HeaderValue::from_str(&disposition).is_ok(),
        "{disposition:?} is no header value"
    );
});

fn text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn range_invariants(headers: &HeaderMap, range: &RangeRequest, size: u64) {
    if let RangeRequest::Part(r) = range {
        assert!(r.start < r.end && r.end <= size, "{r:?} of {size}");
    }
    let Some(spec) = text(headers, header::RANGE) else {
        assert_eq!(*range, RangeRequest::Whole, "no Range");
        return;
    };
    let stale = text(headers, header::IF_RANGE).is_some_and(|v| v.trim() != ETAG);
    if stale || !spec.trim().starts_with("bytes=") {
        assert_eq!(*range, RangeRequest::Whole, "{spec:?}");
    }
    // The plain form, read independently: `bytes=A-B` with digits only.
    let plain = spec.strip_prefix("bytes=").and_then(|s| s.split_once('-'));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((a, b)) = plain.filter(|(a, b)| !stale && digits(a) && digits(b))
        && let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>())
    {
        let expected = if b < a {
            RangeRequest::Whole
        } else if a >= size {
            RangeRequest::Unsatisfiable
        } else {
            RangeRequest::Part(a..b.saturating_add(1).min(size))
        };
        assert_eq!(*range, expected, "{spec:?} of {size}");
    }
}

fn answer_headers(request: &HeaderMap, range: &RangeRequest, size: u64) {
    let mut out = HeaderMap::new();
    let answer = ranged(&mut out, request, ETAG, size);
    let get = |name| text(&out, name).map(str::to_owned);
    match (range, answer) {
        (RangeRequest::Unsatisfiable, None) => {
            assert_eq!(get(header::CONTENT_RANGE), Some(format!("bytes */{size}")));
        }
        (RangeRequest::Whole, Some((StatusCode::OK, None))) => {
            assert_eq!(get(header::CONTENT_LENGTH), Some(size.to_string()));
            assert_eq!(get(header::CONTENT_RANGE), None);
        }
        (RangeRequest::Part(r), Some((StatusCode::PARTIAL_CONTENT, Some(part)))) => {
            assert_eq!(*r, part);
            let content_range = format!("bytes {}-{}/{size}", r.start, r.end - 1);
            assert_eq!(get(header::CONTENT_RANGE), Some(content_range));
            assert_eq!(
                get(header::CONTENT_LENGTH),
                Some((r.end - r.start).to_string())
            );
        }
        (range, answer) => panic!("ranged answered {answer:?} for {range:?}"),
    }
}
