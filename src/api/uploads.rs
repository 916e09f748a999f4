//! The upload handoff's HTTP surface (a depot extension of GitLab's generic API, described in
//! `infra/openapi.yaml`): `POST …/:file_name/uploads` opens a session, `GET …/uploads/:id`
//! reads it, `POST …/uploads/:id/complete` commits it, `DELETE …/uploads/:id` aborts it.
//! They share the generic file route (a file path may hold directories), so the suffix after
//! the file's path picks the action.

use super::AppState;
use super::entities::package_file_record;
use super::extract::{Incoming, invalid};
use super::generic::{Route, parse_params, split_generic_path};
use super::pagination::base_url;
use crate::auth::{Action, Denied, Principal};
use crate::domain::{PackageStatus, SessionState};
use crate::registry::{Error, SessionView, UploadPlan, UploadRequest};
use crate::store::{Presigned, ReceivedPart};
use crate::wire::{self, PartRequest, PartsPlan, UploadSessionBody};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// Which upload route a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadRoute {
    Open,
    Show(String),
    Complete(String),
    Abort(String),
}

fn session_id(segment: &str) -> Option<String> {
    (segment.len() == 32 && segment.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| segment.to_ascii_lowercase())
}

impl UploadRoute {
    /// Split `rest` (what follows `packages/generic/`) into the file's part and the upload
    /// route, by method and suffix.
    pub fn split<'a>(method: &Method, rest: &'a str) -> Option<(&'a str, Self)> {
        let segments: Vec<&str> = rest.split('/').collect();
        let n = segments.len();
        let upto = |k: usize| {
            let cut: usize = segments[..n - k].iter().map(|s| s.len() + 1).sum::<usize>() - 1;
            &rest[..cut]
        };
        match (method, segments.as_slice()) {
            (&Method::POST, [.., "uploads"]) if n > 3 => Some((upto(1), UploadRoute::Open)),
            (&Method::POST, [.., "uploads", id, "complete"]) if n > 5 => {
                Some((upto(3), UploadRoute::Complete(session_id(id)?)))
            }
            (&Method::GET, [.., "uploads", id]) if n > 4 => {
                Some((upto(2), UploadRoute::Show(session_id(id)?)))
            }
            (&Method::DELETE, [.., "uploads", id]) if n > 4 => {
                Some((upto(2), UploadRoute::Abort(session_id(id)?)))
            }
            _ => None,
        }
    }
}

/// The file route and upload route a request's path names, if it is an upload route.
fn upload_route(incoming: &Incoming) -> Option<(Route, UploadRoute)> {
    let (project, generic) = split_generic_path(&incoming.path)?;
    let (file_part, upload) = UploadRoute::split(&incoming.method, generic)?;
    Some((Route::parse(project, file_part)?, upload))
}

/// `GET …/uploads/:id`: the file route and session it names.
pub fn session_route(incoming: &Incoming) -> Option<(Route, String)> {
    match upload_route(incoming)? {
        (route, UploadRoute::Show(id)) => Some((route, id)),
        _ => None,
    }
}

/// Authenticated writers only: every upload route writes.
async fn writer(registry: &AppState, incoming: &Incoming) -> Result<Principal, Error> {
    let principal = registry
        .authenticate(incoming.credential.as_ref(), Action::Write)
        .await?;
    if principal == Principal::Anonymous {
        return Err(Denied::Unauthorized.into());
    }
    Ok(principal)
}

/// `GET …/uploads/:id`.
pub async fn show(
    registry: AppState,
    incoming: Incoming,
    route: Route,
    id: String,
) -> Result<Response, Error> {
    let principal = writer(&registry, &incoming).await?;
    let (at, _, _) = parse_params(&route, &incoming.query, false)?;
    let view = registry.upload_session(&principal, &at, &id).await?;
    Ok(answer(&registry, &view, &incoming).into_response())
}

/// `POST …/uploads` (open) and `POST …/uploads/:id/complete`.
pub async fn post(
    State(registry): State<AppState>,
    incoming: Incoming,
    body: Body,
) -> Result<Response, Error> {
    let Some((route, upload)) = upload_route(&incoming) else {
        return Ok(super::error::no_route());
    };
    let principal = writer(&registry, &incoming).await?;
    match upload {
        UploadRoute::Open => {
            let body = axum::body::to_bytes(body, 64 << 10)
                .await
                .map_err(|_| invalid("the request body is not a JSON object"))?;
            open(&registry, &principal, &route, &incoming, &body).await
        }
        UploadRoute::Complete(id) => {
            let (at, _, _) = parse_params(&route, &incoming.query, false)?;
            let told = sent_parts(body).await?;
            let view = registry
                .complete_upload(Some((&principal, &at)), &id, &told)
                .await?;
            Ok(answer(&registry, &view, &incoming).into_response())
        }
        UploadRoute::Show(_) | UploadRoute::Abort(_) => Ok(super::error::no_route()),
    }
}

/// The parts a `complete` body tells of (none without a body), as the store's parts: the
/// sizes are the plan's, which the signed part URLs enforce.
async fn sent_parts(body: Body) -> Result<Vec<ReceivedPart>, Error> {
    const REFUSED: &str = "the request body is not {\"parts\": [{\"part_number\", \"etag\"}]}";
    // 10,000 parts of about 60 bytes each.
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|_| invalid(REFUSED))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let told: wire::CompleteBody = serde_json::from_slice(&body).map_err(|_| invalid(REFUSED))?;
    Ok(told
        .parts
        .into_iter()
        .map(|p| ReceivedPart {
            number: p.part_number,
            size: 0,
            etag: Some(p.etag),
        })
        .collect())
}

/// `DELETE …/uploads/:id`.
pub async fn abort(
    State(registry): State<AppState>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let Some((route, UploadRoute::Abort(id))) = upload_route(&incoming) else {
        return Ok(super::error::no_route());
    };
    let principal = writer(&registry, &incoming).await?;
    let (at, _, _) = parse_params(&route, &incoming.query, false)?;
    let view = registry.abort_upload(&principal, &at, &id).await?;
    Ok(answer(&registry, &view, &incoming).into_response())
}

/// `POST …/uploads` with `{"size": N, "sha256": "…", "status": "default|hidden"}`.
async fn open(
    registry: &AppState,
    principal: &Principal,
    route: &Route,
    incoming: &Incoming,
    body: &[u8],
) -> Result<Response, Error> {
    let (at, _, _) = parse_params(route, &incoming.query, false)?;
    let declared = parse_open(body)?;
    let view = registry.open_upload(principal, at, declared).await?;
    let (_, body) = answer(registry, &view, incoming);
    Ok((StatusCode::CREATED, body).into_response())
}

/// The declared size, digest and status ([`wire::OpenUpload`]), with every problem named as GitLab
/// names a bad parameter.
fn parse_open(body: &[u8]) -> Result<UploadRequest, Error> {
    let not_object = || invalid("the request body is not a JSON object");
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| not_object())?;
    if !value.is_object() {
        return Err(not_object());
    }
    let mut errors = crate::domain::InvalidParams::default();
    let field_error = |name: &str| value.get(name).is_some_and(|v| !v.is_null());
    let size = value.get("size").and_then(serde_json::Value::as_u64);
    if size.is_none() {
        errors.push("size is missing or invalid");
    }
    let declared = value.get("sha256").and_then(serde_json::Value::as_str);
    let sha256 = match declared.map(crate::domain::Sha256Hex::parse) {
        Some(Some(digest)) => Some(digest.as_str().to_string()),
        _ if field_error("sha256") => {
            errors.push("sha256 is invalid");
            None
        }
        _ => None,
    };
    let status = match value.get("status").and_then(serde_json::Value::as_str) {
        Some(s) => PackageStatus::parse_upload(s),
        None => None,
    };
    if status.is_none() && field_error("status") {
        errors.push("status does not have a valid value");
    }
    match size {
        Some(size) if errors.is_empty() => Ok(UploadRequest {
            size,
            sha256,
            status,
        }),
        _ => Err(Error::Invalid(errors)),
    }
}

/// A presigned request as the client sends it, its URL made absolute (the local store's are
/// paths).
fn upload_request(request: &Presigned, base: &str) -> wire::UploadRequest {
    let url = if request.url.starts_with('/') {
        format!("{base}{}", request.url)
    } else {
        request.url.clone()
    };
    wire::UploadRequest {
        method: "PUT".into(),
        url,
        headers: request.headers.iter().cloned().collect(),
    }
}

/// A session as its routes answer it: committed with the package-file record (200); refused
/// with GitLab's status and message; pending or committing (202) with the parts received and
/// (while pending) fresh requests for what is missing; aborted (200).
fn answer(
    registry: &AppState,
    view: &SessionView,
    incoming: &Incoming,
) -> (StatusCode, Json<UploadSessionBody>) {
    let session = &view.session;
    let base = base_url(registry, &incoming.headers);
    let upload = view.plan.as_ref().map(|plan| match plan {
        UploadPlan::Single(request) => wire::UploadPlan::Single(upload_request(request, &base)),
        UploadPlan::Parts(parts) => wire::UploadPlan::Parts(PartsPlan {
            method: "PUT".into(),
            part_size: session.part_size,
            parts: parts
                .iter()
                .map(|p| PartRequest {
                    request: upload_request(&p.request, &base),
                    part_number: p.number,
                    size: p.size,
                })
                .collect(),
        }),
    });
    let mut body = UploadSessionBody {
        id: session.id.clone(),
        state: session.state.kind().to_string(),
        size: session.size,
        sha256: session.sha256.clone(),
        part_size: session.multipart_id.as_ref().map(|_| session.part_size),
        expires_at: session.expires_at,
        created_at: session.created_at,
        parts: view
            .received
            .iter()
            .map(|p| wire::ReceivedPart {
                part_number: p.number,
                size: p.size,
            })
            .collect(),
        upload,
        package_file: None,
        message: None,
    };
    let status = match &session.state {
        SessionState::Committed { .. } => {
            body.package_file = view.published.as_ref().map(|(package, file)| {
                package_file_record(package, file, session.project_id, registry.blob_location())
            });
            StatusCode::OK
        }
        SessionState::Refused { reason } => {
            // GitLab's error message, beside the session's fields.
            let (status, message) = super::error::refusal(*reason, session.size);
            body.message = Some(message);
            status
        }
        SessionState::Pending | SessionState::Committing { .. } => StatusCode::ACCEPTED,
        SessionState::Aborted => StatusCode::OK,
    };
    (status, Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_bodies_are_checked_field_by_field() {
        let ok = parse_open(br#"{"size": 3, "sha256": "AB", "status": "hidden"}"#);
        assert!(matches!(ok, Err(Error::Invalid(e)) if e.to_string() == "sha256 is invalid"));
        let ok = parse_open(br#"{"size": 3, "status": "hidden"}"#).unwrap();
        assert_eq!((ok.size, ok.status), (3, Some(PackageStatus::Hidden)));
        let bad = parse_open(br#"{"status": "gone"}"#).unwrap_err();
        assert_eq!(
            bad.to_string(),
            "invalid parameters: size is missing or invalid, status does not have a valid value"
        );
        assert!(parse_open(b"[1]").is_err() && parse_open(b"nope").is_err());
    }
}
