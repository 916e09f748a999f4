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

fn unauthorized() -> Response {
    let mut r = message(StatusCode::UNAUTHORIZED, "401 Unauthorized");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(BASIC_CHALLENGE),
    );
    r
}

fn invalid_token(description: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({ "error": "invalid_token", "error_description": description })),
    )
        .into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Invalid(params) => error(StatusCode::BAD_REQUEST, &params.to_string()),
            Error::Denied(Denied::Unauthorized) => unauthorized(),
            Error::Denied(Denied::Expired) => invalid_token(
                "Token is expired. You can either do re-authorization or token refresh.",
            ),
            Error::Denied(Denied::Revoked) => {
                invalid_token("Token was revoked. You have to re-authorize from the user.")
            }
            Error::Denied(Denied::InsufficientScope) => (
                StatusCode::FORBIDDEN,
                axum::Json(json!({
                    "error": "insufficient_scope",
                    "error_description":
                        "The request requires higher privileges than provided by the access token.",
                    "scope": "api",
                })),
            )
                .into_response(),
            Error::Denied(Denied::Forbidden) => message(StatusCode::FORBIDDEN, "403 Forbidden"),
            Error::Denied(Denied::ProjectNotFound) => {
                message(StatusCode::NOT_FOUND, "404 Project Not Found")
            }
            Error::NotFound => message(StatusCode::NOT_FOUND, "404 Not found"),
            Error::GroupNotFound => message(StatusCode::NOT_FOUND, "404 Group Not Found"),
            Error::FileNotFound => message(StatusCode::NOT_FOUND, "404 Not Found"),
            Error::PreconditionFailed => {
                message(StatusCode::PRECONDITION_FAILED, "412 Precondition Failed")
            }
            Error::TooLarge => message(
                StatusCode::BAD_REQUEST,
                "400 Bad request - File is too large",
            ),
            Error::Duplicate => message(
                StatusCode::BAD_REQUEST,
                "400 Bad request - Duplicate package is not allowed",
            ),
            Error::BodyFailed(e) => {
                tracing::info!(error = %e, "request body ended early; nothing was stored");
                message(
                    StatusCode::BAD_REQUEST,
                    "400 Bad request - The request body ended early",
                )
            }
            Error::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "500 Internal Server Error",
                )
            }
        }
    }
}
