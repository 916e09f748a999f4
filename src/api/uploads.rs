//! The upload handoff's HTTP surface (a depot extension of GitLab's generic API, described in
//! `infra/openapi.yaml`): `POST …/:file_name/uploads` opens a session, `GET …/uploads/:id`
//! reads it, `POST …/uploads/:id/complete` commits it, `DELETE …/uploads/:id` aborts it.

use super::generic::{Route, file_store_code, package_file_record, parse_params};
use super::packages::base_url;
use super::{AppState, query_pairs};
use crate::auth::{Action, Credential, Principal};
use crate::domain::{InvalidParams, PackageStatus, ProjectRef, SessionState, UploadSession};
use crate::registry::{Error, SessionView, UploadPlan, UploadRequest};
use crate::store::Presigned;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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

pub async fn handle(
    registry: AppState,
    route: Route,
    upload: UploadRoute,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let query = query_pairs(&request);
    let credential = Credential::from_request(&headers, &query);
    let result = async {
        let principal = registry
            .authenticate(credential.as_ref(), Action::Write, false)
            .await?;
        if principal == Principal::Anonymous {
            return Err(Error::Denied(crate::auth::Denied::Unauthorized));
        }
        let base = base_url(&registry, &headers);
        match upload {
            UploadRoute::Open => open(&registry, &principal, &route, &query, request, &base).await,
            UploadRoute::Show(id) => {
                let project = project_of(&route);
                let view = registry.upload_session(&principal, &project, &id).await?;
                respond(answer(&registry, &view, &base).await?)
            }
            UploadRoute::Complete(id) => {
                let project = project_of(&route);
                let view = registry
                    .complete_upload(Some((&principal, &project)), &id)
                    .await?;
                respond(answer(&registry, &view, &base).await?)
            }
            UploadRoute::Abort(id) => {
                let project = project_of(&route);
                let view = registry.abort_upload(&principal, &project, &id).await?;
                respond(answer(&registry, &view, &base).await?)
            }
        }
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

fn respond((status, body): (StatusCode, Value)) -> Result<Response, Error> {
    Ok((status, axum::Json(body)).into_response())
}

fn project_of(route: &Route) -> ProjectRef {
    route.project_ref()
}

/// `POST …/uploads` with `{"size": N, "sha256": "…", "status": "default|hidden"}`.
async fn open(
    registry: &AppState,
    principal: &Principal,
    route: &Route,
    query: &[(String, String)],
    request: Request,
    base: &str,
) -> Result<Response, Error> {
    let (at, _, _) = parse_params(route, query, false)?;
    let body = axum::body::to_bytes(request.into_body(), 64 << 10)
        .await
        .map_err(|_| invalid("the request body is not a JSON object"))?;
    let declared: Value = serde_json::from_slice(&body)
        .map_err(|_| invalid("the request body is not a JSON object"))?;
    let mut errors = InvalidParams::default();
    let size = declared.get("size").and_then(Value::as_u64);
    if size.is_none() {
        errors.push("size is missing or invalid");
    }
    let sha256 = match declared.get("sha256") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(s.to_ascii_lowercase())
        }
        Some(_) => {
            errors.push("sha256 is invalid");
            None
        }
    };
    let status = match declared.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let parsed = PackageStatus::parse_upload(s);
            if parsed.is_none() {
                errors.push("status does not have a valid value");
            }
            parsed
        }
        Some(_) => {
            errors.push("status does not have a valid value");
            None
        }
    };
    let Some(size) = size.filter(|_| errors.is_empty()) else {
        return Err(Error::Invalid(errors));
    };
    let view = registry
        .open_upload(
            principal,
            at,
            UploadRequest {
                size,
                sha256,
                status,
            },
        )
        .await?;
    let (_, body) = answer(registry, &view, base).await?;
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// A presigned request as JSON, its URL made absolute (the local store's are paths).
fn request_json(request: &Presigned, base: &str) -> serde_json::Map<String, Value> {
    let url = if request.url.starts_with('/') {
        format!("{base}{}", request.url)
    } else {
        request.url.clone()
    };
    let headers: serde_json::Map<String, Value> = request
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut out = serde_json::Map::new();
    out.insert("method".into(), json!("PUT"));
    out.insert("url".into(), json!(url));
    out.insert("headers".into(), Value::Object(headers));
    out
}

fn invalid(message: &str) -> Error {
    let mut errors = InvalidParams::default();
    errors.push(message);
    Error::Invalid(errors)
}

fn session_json(s: &UploadSession) -> Value {
    json!({
        "id": s.id,
        "state": s.state.kind(),
        "size": s.size,
        "sha256": s.sha256,
        "part_size": s.multipart_id.as_ref().map(|_| s.part_size),
        "expires_at": s.expires_at,
        "created_at": s.created_at,
    })
}

/// A session as its routes answer it: committed with the package-file record (200); refused
/// with GitLab's status and error body; pending or committing (202) with the parts received
/// and (while pending) fresh requests for what is missing; aborted (200).
async fn answer(
    registry: &AppState,
    view: &SessionView,
    base: &str,
) -> Result<(StatusCode, Value), Error> {
    let session = &view.session;
    let mut body = session_json(session);
    body["parts"] = view
        .received
        .iter()
        .map(|p| json!({"part_number": p.number, "size": p.size}))
        .collect();
    match &view.plan {
        Some(UploadPlan::Single(request)) => {
            body["upload"] = Value::Object(request_json(request, base));
        }
        Some(UploadPlan::Parts(parts)) => {
            let parts: Vec<Value> = parts
                .iter()
                .map(|p| {
                    let mut part = request_json(&p.request, base);
                    part.insert("part_number".into(), json!(p.number));
                    part.insert("size".into(), json!(p.size));
                    Value::Object(part)
                })
                .collect();
            body["upload"] =
                json!({"method": "PUT", "part_size": session.part_size, "parts": parts});
        }
        None => {}
    }
    let status = match &session.state {
        SessionState::Committed {
            package_id,
            file_id,
        } => {
            let package = registry.meta().package_by_id(*package_id).await?;
            let file = registry
                .meta()
                .all_files_of(*package_id)
                .await?
                .into_iter()
                .find(|f| f.id == *file_id);
            if let (Some(package), Some(file)) = (package, file) {
                body["package_file"] = package_file_record(
                    &package,
                    &file,
                    session.project_id,
                    file_store_code(registry.blob_location()),
                );
            }
            StatusCode::OK
        }
        SessionState::Refused { reason } => {
            // GitLab's error message, beside the session's fields.
            let (status, message) = super::error::refusal(*reason, session.size);
            body["message"] = json!(message);
            status
        }
        SessionState::Pending | SessionState::Committing { .. } => StatusCode::ACCEPTED,
        SessionState::Aborted => StatusCode::OK,
    };
    Ok((status, body))
}
