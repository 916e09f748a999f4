//! GitLab's error statuses and bodies for every `registry::Error`; internal details are logged
//! here and never sent to the client.

use crate::auth::Denied;
use crate::domain::Refusal;
use crate::registry::Error;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub const BASIC_CHALLENGE: &str = "Basic realm=\"GitLab Packages Registry\"";

/// `{"message": ...}` with a status.
pub fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

/// `{"error": ...}` with a status.
pub fn error(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "error": text }))).into_response()
}

/// The body for an unmatched route.
pub fn route_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "404 Not Found")
}

/// The status and message of an upload session refused for `reason` (`declared` bytes were
/// announced), as the request that failed would have been answered.
pub fn refusal(reason: Refusal, declared: u64) -> (StatusCode, String) {
    let bad = |text: &str| (StatusCode::BAD_REQUEST, format!("400 Bad request - {text}"));
    match reason {
        Refusal::Expired => bad("the upload session expired"),
        Refusal::SizeMismatch => bad(&format!(
            "the upload does not have the {declared} bytes declared"
        )),
        Refusal::DigestMismatch => bad("the uploaded bytes do not match the declared SHA-256"),
        Refusal::TooLarge => bad("File is too large"),
        Refusal::Duplicate => bad("Duplicate package is not allowed"),
        Refusal::Unauthorized => (StatusCode::UNAUTHORIZED, "401 Unauthorized".into()),
        Refusal::TokenExpired | Refusal::TokenRevoked => {
            (StatusCode::UNAUTHORIZED, "invalid_token".into())
        }
        Refusal::InsufficientScope => (StatusCode::FORBIDDEN, "insufficient_scope".into()),
        Refusal::Forbidden => (StatusCode::FORBIDDEN, "403 Forbidden".into()),
        Refusal::ProjectNotFound => (StatusCode::NOT_FOUND, "404 Project Not Found".into()),
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match &self {
            Error::BodyFailed(e) => {
                tracing::info!(error = %e, "request body ended early; nothing was stored");
            }
            Error::Store(e) => tracing::error!(error = %e, "storage failure"),
            _ => {}
        }
        let (status, body) = self.gitlab_answer();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(self, Error::Denied(Denied::Unauthorized)) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(BASIC_CHALLENGE),
            );
        }
        response
    }
}
