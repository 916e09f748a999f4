//! The local store's own presigned URLs (`/-/blob/<key>?…&signature=…`): `GET`/`HEAD` of a
//! blob (ranges included) and `PUT` of a staged upload of an exact size (and SHA-256, when
//! declared). The registry checks the signature, expiry and method; these routes need no
//! token, exactly like S3's presigned URLs.

use super::AppState;
use super::bytes::{header_value, octet_stream, ranged, unsatisfiable};
use super::extract::Incoming;
use crate::registry::Error;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;

/// `GET`/`HEAD /-/blob/<key>`.
pub async fn download(
    State(registry): State<AppState>,
    Path(key): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    if !registry.serves_signed_urls() {
        return Ok(super::error::no_route());
    }
    let grant = registry.verify_signed(incoming.method.as_str(), &key, &incoming.query)?;
    let size = registry.signed_size(&key).await?;
    let mut out = HeaderMap::new();
    octet_stream(&mut out, grant.disposition.as_deref());
    let (status, range) = match ranged(&mut out, &incoming.headers, "", size) {
        Some(answer) => answer,
        None => return Ok(unsatisfiable(out)),
    };
    if incoming.method == Method::HEAD {
        return Ok((status, out).into_response());
    }
    let blob = registry.signed_read(&key, range).await?;
    Ok((status, out, Body::from_stream(blob.stream)).into_response())
}

/// `PUT /-/blob/<key>`: exactly the granted bytes, or nothing kept.
pub async fn upload(
    State(registry): State<AppState>,
    Path(key): Path<String>,
    incoming: Incoming,
    body: Body,
) -> Result<Response, Error> {
    if !registry.serves_signed_urls() {
        return Ok(super::error::no_route());
    }
    let grant = registry.verify_signed(incoming.method.as_str(), &key, &incoming.query)?;
    let body = body.into_data_stream().map_err(std::io::Error::other);
    let stored = registry.signed_write(&grant, Box::pin(body)).await?;
    let mut out = HeaderMap::new();
    out.insert("x-checksum-sha256", header_value(&stored.sha256));
    Ok((StatusCode::OK, out).into_response())
}

/// Any other method: refused by the signature check (a grant is for one method), as S3 refuses
/// a presigned URL used with another method.
pub async fn other_method(
    State(registry): State<AppState>,
    Path(key): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    if !registry.serves_signed_urls() {
        return Ok(super::error::no_route());
    }
    registry.verify_signed(incoming.method.as_str(), &key, &incoming.query)?;
    Ok(super::error::no_route())
}
