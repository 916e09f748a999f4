//! Generic packages: `PUT` (publish) and `GET`/`HEAD` (download) of
//! `/projects/:id/packages/generic/:name/:version/(*dirs/):file_name` (SPEC.md §1–6).

use super::{AppState, error, query_pairs};
use crate::auth::{Action, Credential};
use crate::domain::{
    FileName, InvalidParams, Package, PackageFile, PackageName, PackageStatus, PackageVersion,
    ProjectRef,
};
use crate::registry::{Error, FileCoordinates};
use crate::store::BlobLocation;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde_json::json;
use std::ops::Range;

/// The path parts of a generic-package route, percent-decoded, not yet validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    project: String,
    name: String,
    version: String,
    dirs: Vec<String>,
    file_name: String,
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

impl Route {
    /// The project the URL names; a reference that names no project is looked up as a path
    /// and not found (404).
    pub fn project_ref(&self) -> ProjectRef {
        ProjectRef::parse(&self.project).unwrap_or_else(|| ProjectRef::Path(self.project.clone()))
    }

    /// `rest` is what follows `packages/generic/`: `name/version/(dirs/)file`.
    pub fn parse(project_raw: &str, rest: &str) -> Option<Self> {
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.len() < 3 || segments.iter().any(|s| s.is_empty()) {
            return None;
        }
        let last = segments.len() - 1;
        Some(Self {
            project: decode(project_raw),
            name: decode(segments[0]),
            version: decode(segments[1]),
            dirs: segments[2..last].iter().map(|s| decode(s)).collect(),
            file_name: decode(segments[last]),
        })
    }
}

pub async fn handle(
    registry: AppState,
    method: Method,
    route: Route,
    request: Request,
) -> Response {
    let result = match method {
        Method::PUT => upload(registry, route, request).await,
        Method::GET | Method::HEAD => {
            download(registry, method == Method::HEAD, route, request).await
        }
        _ => return error::route_not_found(),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Validate the coordinates (and, on upload, `status` and `select`) with GitLab's messages.
pub(super) fn parse_params(
    route: &Route,
    query: &[(String, String)],
    upload: bool,
) -> Result<(FileCoordinates, Option<PackageStatus>, bool), InvalidParams> {
    let mut errors = InvalidParams::default();
    let name = errors.take(PackageName::parse(&route.name));
    let version = errors.take(PackageVersion::parse(&route.version));
    let dirs = route.dirs.join("/");
    let path = if dirs.is_empty() {
        query_value(query, "path")
    } else {
        Some(dirs.as_str())
    };
    let file_name = errors.take(FileName::parse(path, &route.file_name));
    let mut status = None;
    let mut select = false;
    if upload {
        if let Some(s) = query_value(query, "status") {
            status = PackageStatus::parse_upload(s);
            if status.is_none() {
                errors.push("status does not have a valid value");
            }
        }
        if let Some(s) = query_value(query, "select") {
            select = s == "package_file";
            if !select {
                errors.push("select does not have a valid value");
            }
        }
    }
    match (name, version, file_name) {
        (Some(name), Some(version), Some(file_name)) if errors.is_empty() => {
            let project = route.project_ref();
            Ok((
                FileCoordinates {
                    project,
                    name,
                    version,
                    file_name,
                },
                status,
                select,
            ))
        }
        _ => Err(errors),
    }
}

/// `PUT`: authenticate first (401 before anything else), then validate, then publish.
async fn upload(registry: AppState, route: Route, request: Request) -> Result<Response, Error> {
    let query = query_pairs(&request);
    let credential = Credential::from_request(request.headers(), &query);
    let principal = registry
        .authenticate(credential.as_ref(), Action::Write, false)
        .await?;
    if principal == crate::auth::Principal::Anonymous {
        return Err(Error::Denied(crate::auth::Denied::Unauthorized));
    }
    let (at, status, select) = parse_params(&route, &query, true)?;
    let declared_size = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = request
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let project = at.project.clone();
    let (package, file) = registry
        .publish(&principal, at, status, declared_size, Box::pin(body))
        .await?;
    if !select {
        return Ok((
            StatusCode::CREATED,
            axum::Json(json!({"message": "201 Created"})),
        )
            .into_response());
    }
    let project_id = match project {
        ProjectRef::Id(id) => id,
        ProjectRef::Path(_) => package.project_id,
    };
    let record = package_file_record(
        &package,
        &file,
        project_id,
        file_store_code(registry.blob_location()),
    );
    Ok((StatusCode::OK, axum::Json(record)).into_response())
}

/// GitLab's `file_store` code for where a file's bytes are kept: 1 local, 2 object storage.
pub(super) fn file_store_code(location: BlobLocation) -> i64 {
    match location {
        BlobLocation::Local => 1,
        BlobLocation::ObjectStorage => 2,
    }
}

/// GitLab's package-file entity, as `select=package_file` returns it.
pub(super) fn package_file_record(
    package: &Package,
    file: &PackageFile,
    project_id: i64,
    file_store: i64,
) -> serde_json::Value {
    json!({
        "id": file.id,
        "package_id": file.package_id,
        "created_at": file.created_at,
        "updated_at": file.updated_at,
        "size": file.size,
        "file_store": file_store,
        "file_md5": null,
        "file_sha1": null,
        "file_name": file.file_name.as_str(),
        "file": {
            "url": format!(
                "/api/v4/projects/{project_id}/packages/generic/{}/{}/{}",
                package.name.as_str(),
                package.version.as_str(),
                file.file_name.as_str()
            )
        },
        "file_sha256": file.sha256,
        "verification_retry_at": null,
        "verified_at": null,
        "verification_failure": null,
        "verification_retry_count": null,
        "verification_checksum": null,
        "verification_state": 0,
        "verification_started_at": null,
        "new_file_path": null,
    })
}

/// `GET`/`HEAD`: validate first, then authenticate, then serve (with `Range` and `ETag`).
async fn download(
    registry: AppState,
    head: bool,
    route: Route,
    request: Request,
) -> Result<Response, Error> {
    let query = query_pairs(&request);
    let (at, _, _) = parse_params(&route, &query, false)?;
    let headers = request.headers();
    let credential = Credential::from_request(headers, &query);
    let principal = registry
        .authenticate(credential.as_ref(), Action::Read, true)
        .await?;
    let (_, file) = registry.locate(&principal, &at, !head).await?;

    let etag = format!("\"{}\"", file.sha256);
    let mut out = HeaderMap::new();
    out.insert(header::ETAG, header_value(&etag));
    out.insert("x-checksum-sha256", header_value(&file.sha256));
    if if_none_match(headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    // Large files from object storage: 302 to a presigned URL (it answers ranges too), as
    // GitLab does. HEAD stays inline: it moves no bytes.
    let disposition = content_disposition(file.file_name.as_str());
    if !head && let Some(target) = registry.download_redirect(&file, &disposition).await? {
        out.insert(header::LOCATION, header_value(&target.url));
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok((StatusCode::FOUND, out).into_response());
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    out.insert(header::CONTENT_DISPOSITION, header_value(&disposition));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));

    let range = match requested_range(headers, &etag, file.size) {
        RangeRequest::Whole => None,
        RangeRequest::Part(r) => Some(r),
        RangeRequest::Unsatisfiable => {
            out.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{}", file.size)),
            );
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, out).into_response());
        }
    };
    let status = match &range {
        Some(r) => {
            let content_range = format!("bytes {}-{}/{}", r.start, r.end - 1, file.size);
            out.insert(header::CONTENT_RANGE, header_value(&content_range));
            StatusCode::PARTIAL_CONTENT
        }
        None => StatusCode::OK,
    };
    let length = range.as_ref().map_or(file.size, |r| r.end - r.start);
    out.insert(header::CONTENT_LENGTH, header_value(&length.to_string()));
    if head {
        return Ok((status, out).into_response());
    }
    let blob = registry.open(&file, range).await?;
    Ok((status, out, Body::from_stream(blob.stream)).into_response())
}

pub(super) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
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
pub(super) enum RangeRequest {
    Whole,
    Part(Range<u64>),
    Unsatisfiable,
}

/// One `bytes=` range of a file of `size` bytes. Several ranges, bad syntax or a stale
/// `If-Range` are answered with the whole file, as RFC 9110 allows.
pub(super) fn requested_range(headers: &HeaderMap, etag: &str, size: u64) -> RangeRequest {
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
    fn routes_are_split_and_decoded() {
        let r = Route::parse("g%2Fp", "my_pkg/1%2E0/linux/amd64/tool%2Etar.gz").unwrap();
        assert_eq!(r.project, "g/p");
        assert_eq!(r.version, "1.0");
        assert_eq!(r.dirs, vec!["linux", "amd64"]);
        assert_eq!(r.file_name, "tool.tar.gz");
        assert!(Route::parse("1", "pkg/1.0").is_none());
        assert!(Route::parse("1", "pkg//f").is_none());
    }

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

    #[test]
    fn params_collect_every_error_in_gitlab_order() {
        let route = Route::parse("1", "bad%20name/..1/f~").unwrap();
        let q = vec![
            ("status".to_string(), "gone".to_string()),
            ("select".to_string(), "x".to_string()),
        ];
        let err = parse_params(&route, &q, true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package_name is invalid, package_version is invalid, file_name is invalid, \
             status does not have a valid value, select does not have a valid value"
        );
        // Downloads ignore status and select.
        let ok = Route::parse("1", "pkg/1.0/f.txt").unwrap();
        assert!(parse_params(&ok, &q, false).is_ok());
        let with_path = vec![("path".to_string(), "a/b".to_string())];
        let (at, _, _) = parse_params(&ok, &with_path, false).unwrap();
        assert_eq!(at.file_name.as_str(), "a%2Fb%2Ff.txt");
    }
}
