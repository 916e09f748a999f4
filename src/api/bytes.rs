//! Serving bytes the way downloads need: `Range` (one range, else the whole file), `If-Range`,
//! `If-None-Match`, `Content-Range`/`Content-Length`, and GitLab's `Content-Disposition`. The
//! generic download route and the local store's signed URLs answer alike through here.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::ops::Range;

/// The headers of a byte answer: `application/octet-stream`, accepting ranges, with
/// `disposition` when there is one.
pub fn octet_stream(out: &mut HeaderMap, disposition: Option<&str>) {
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(d) = disposition {
        out.insert(header::CONTENT_DISPOSITION, header_value(d));
    }
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
}

/// The status and range to answer a request for `size` bytes with (setting `Content-Range` and
/// `Content-Length` in `out`); `None` when the range cannot be satisfied (answer
/// [`unsatisfiable`] with `out` then).
pub fn ranged(
    out: &mut HeaderMap,
    request: &HeaderMap,
    etag: &str,
    size: u64,
) -> Option<(StatusCode, Option<Range<u64>>)> {
    let range = match requested_range(request, etag, size) {
        RangeRequest::Whole => None,
        RangeRequest::Part(r) => Some(r),
        RangeRequest::Unsatisfiable => {
            out.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}")),
            );
            return None;
        }
    };
    let status = match &range {
        Some(r) => {
            let content_range = format!("bytes {}-{}/{size}", r.start, r.end - 1);
            out.insert(header::CONTENT_RANGE, header_value(&content_range));
            StatusCode::PARTIAL_CONTENT
        }
        None => StatusCode::OK,
    };
    let length = range.as_ref().map_or(size, |r| r.end - r.start);
    out.insert(header::CONTENT_LENGTH, header_value(&length.to_string()));
    Some((status, range))
}

/// 416, with the `Content-Range` that [`ranged`] put in `out`.
pub fn unsatisfiable(out: HeaderMap) -> Response {
    (StatusCode::RANGE_NOT_SATISFIABLE, out).into_response()
}

pub fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
        })
}

#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    Whole,
    Part(Range<u64>),
    Unsatisfiable,
}

/// One `bytes=` range of a file of `size` bytes. Several ranges, bad syntax or a stale
/// `If-Range` are answered with the whole file, as RFC 9110 allows.
pub fn requested_range(headers: &HeaderMap, etag: &str, size: u64) -> RangeRequest {
    let Some(spec) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeRequest::Whole;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok())
        && if_range.trim() != etag
    {
        return RangeRequest::Whole;
    }
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        (true, false) => match parse(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(n) if size > 0 => RangeRequest::Part(size.saturating_sub(n)..size),
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Whole,
        },
        (false, _) => {
            let Some(start) = parse(first) else {
                return RangeRequest::Whole;
            };
            let end = if last.is_empty() {
                Some(u64::MAX)
            } else {
                parse(last)
            };
            match end {
                None => RangeRequest::Whole,
                Some(end) if end < start => RangeRequest::Whole,
                Some(_) if start >= size => RangeRequest::Unsatisfiable,
                Some(end) => RangeRequest::Part(start..end.saturating_add(1).min(size)),
            }
        }
        (true, true) => RangeRequest::Whole,
    }
}

/// `attachment; filename="X"; filename*=UTF-8''X`, escaped the way Rails escapes both forms.
pub fn content_disposition(file_name: &str) -> String {
    let escape = |keep: &dyn Fn(u8) -> bool| {
        let mut out = String::new();
        for b in file_name.bytes() {
            if keep(b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    let traditional =
        escape(&|b| b == b' ' || b.is_ascii_alphanumeric() || b"!#$+.^_`|~-".contains(&b));
    let rfc5987 = escape(&|b| b.is_ascii_alphanumeric() || b"!#$&+.^_`|~-".contains(&b));
    format!("attachment; filename=\"{traditional}\"; filename*=UTF-8''{rfc5987}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_escapes_like_rails() {
        assert_eq!(
            content_disposition("file.txt"),
            "attachment; filename=\"file.txt\"; filename*=UTF-8''file.txt"
        );
        assert_eq!(
            content_disposition("linux%2Famd64%2Ftool.tar.gz"),
            "attachment; filename=\"linux%252Famd64%252Ftool.tar.gz\"; filename*=UTF-8''linux%252Famd64%252Ftool.tar.gz"
        );
        assert_eq!(
            content_disposition("my~file@1"),
            "attachment; filename=\"my~file%401\"; filename*=UTF-8''my~file%401"
        );
    }

    #[test]
    fn ranges() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
            m
        };
        let e = "\"x\"";
        use RangeRequest::*;
        let table = [
            ("bytes=0-3", 10, Part(0..4)),
            ("bytes=5-", 10, Part(5..10)),
            ("bytes=-3", 10, Part(7..10)),
            ("bytes=-30", 10, Part(0..10)),
            ("bytes=8-100", 10, Part(8..10)),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=3-1", 10, Whole),
            ("bytes=0-1,4-5", 10, Whole),
            ("items=0-1", 10, Whole),
            ("bytes=x-1", 10, Whole),
        ];
        for (spec, size, expected) in table {
            assert_eq!(
                requested_range(&h(spec), e, size),
                expected,
                "{spec} of {size}"
            );
        }
        let mut stale = h("bytes=0-1");
        stale.insert(header::IF_RANGE, HeaderValue::from_static("\"other\""));
        assert_eq!(requested_range(&stale, e, 10), Whole);
        assert_eq!(requested_range(&HeaderMap::new(), e, 10), Whole);
    }
}
