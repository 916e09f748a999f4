//! GitLab's error statuses and bodies for every `registry::Error`; internal details are logged
//! here and never sent to the client.

use crate::auth::Denied;
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
