//! The local store's own presigned URLs (`/-/blob/<key>?…&signature=…`): `GET`/`HEAD` of a
//! blob (ranges included) and `PUT` of a staged upload of an exact size (and SHA-256, when
//! declared). The registry checks the signature, expiry and method; these routes need no
//! token, exactly like S3's presigned URLs.

use super::AppState;
use super::bytes::{header_value, octet_stream, ranged, unsatisfiable};
use super::extract::Incoming;
use crate::registry::Error;
use crate::store::signing::Grant;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;

/// What the signed request for `key` may do; `None` where this registry signs no URLs of its
/// own (S3's are S3's to check), which is no route at all.
fn grant(registry: &AppState, key: &str, incoming: &Incoming) -> Result<Option<Grant>, Error> {
    if !registry.serves_signed_urls() {
        return Ok(None);
    }
    registry
        .verify_signed(incoming.method.as_str(), key, &incoming.query)
        .map(Some)
}

/// `GET`/`HEAD /-/blob/<key>`.
pub async fn download(
    State(registry): State<AppState>,
    Path(key): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let Some(grant) = grant(&registry, &key, &incoming)? else {
        return Ok(super::error::no_route());
    };
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
    let Some(grant) = grant(&registry, &key, &incoming)? else {
        return Ok(super::error::no_route());
    };
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
    // A grant is for one method: this one is refused (403) unless no URLs are signed here.
    grant(&registry, &key, &incoming)?;
    Ok(super::error::no_route())
}
