//! The local store's own presigned URLs (`/-/blob/<key>?…&signature=…`): `GET`/`HEAD` of a
//! blob (ranges included) and `PUT` of a staged upload of an exact size (and SHA-256, when
//! declared). Refused unless the HMAC signature, expiry and method all check out, so these
//! routes need no token, exactly like S3's presigned URLs.

use super::generic::{RangeRequest, header_value, requested_range};
use super::{AppState, query_pairs};
use crate::store::StoreError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;

fn refuse(status: StatusCode, text: &str) -> Response {
    super::error::message(status, text)
}

pub async fn handle(registry: AppState, key: &str, request: Request) -> Response {
    let Some(signer) = registry.blobs().url_signer() else {
        return super::error::route_not_found();
    };
    let now = crate::domain::Timestamp::now().millis() / 1000;
    let method = request.method().clone();
    let grant = match signer.verify(method.as_str(), key, &query_pairs(&request), now) {
        Ok(grant) => grant,
        Err(e) => return refuse(StatusCode::FORBIDDEN, &format!("403 Forbidden - {e}")),
    };
    match method {
        Method::GET | Method::HEAD => {
            download(
                registry,
                key,
                grant.disposition,
                method == Method::HEAD,
                request.headers(),
            )
            .await
        }
        Method::PUT => upload(registry, key, grant.size, grant.sha256, request).await,
        _ => super::error::route_not_found(),
    }
}

async fn download(
    registry: AppState,
    key: &str,
    disposition: Option<String>,
    head: bool,
    headers: &HeaderMap,
) -> Response {
    let size = match registry.blobs().head(key).await {
        Ok(size) => size,
        Err(StoreError::NotFound { .. }) => return refuse(StatusCode::NOT_FOUND, "404 Not found"),
        Err(e) => return crate::registry::Error::Store(e).into_response(),
    };
    let mut out = HeaderMap::new();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(d) = &disposition {
        out.insert(header::CONTENT_DISPOSITION, header_value(d));
    }
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let range = match requested_range(headers, "", size) {
        RangeRequest::Whole => None,
        RangeRequest::Part(r) => Some(r),
        RangeRequest::Unsatisfiable => {
            out.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}")),
            );
            return (StatusCode::RANGE_NOT_SATISFIABLE, out).into_response();
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
    if head {
        return (status, out).into_response();
    }
    match registry.blobs().get(key, range).await {
        Ok(blob) => (status, out, Body::from_stream(blob.stream)).into_response(),
        Err(e) => crate::registry::Error::Store(e).into_response(),
    }
}

/// Store exactly the granted bytes: more than `size` is cut off, fewer or other bytes than
/// declared are removed again and refused.
async fn upload(
    registry: AppState,
    key: &str,
    size: Option<u64>,
    sha256: Option<String>,
    request: Request,
) -> Response {
    let Some(size) = size else {
        return refuse(StatusCode::FORBIDDEN, "403 Forbidden - no size granted");
    };
    let body = request
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let stored = match registry.blobs().put(key, Box::pin(body), Some(size)).await {
        Ok(stored) => stored,
        Err(StoreError::TooLarge) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "400 Bad request - the body is larger than the granted size",
            );
        }
        Err(StoreError::BodyFailed(_)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "400 Bad request - The request body ended early",
            );
        }
        Err(e) => return crate::registry::Error::Store(e).into_response(),
    };
    let wrong_size = stored.size != size;
    let wrong_digest = sha256.as_deref().is_some_and(|d| d != stored.sha256);
    if wrong_size || wrong_digest {
        if let Err(e) = registry.blobs().delete(key).await {
            tracing::error!(error = %e, "could not remove refused upload bytes");
        }
        let what = if wrong_size { "size" } else { "SHA-256" };
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("400 Bad request - the uploaded bytes do not match the declared {what}"),
        );
    }
    let mut out = HeaderMap::new();
    out.insert("x-checksum-sha256", header_value(&stored.sha256));
    (StatusCode::OK, out).into_response()
}
