//! GitLab's error statuses and bodies for every `registry::Error`; internal details are logged
//! here and never sent to the client.

use crate::auth::Denied;
use crate::domain::{Protected, Refusal};
use crate::registry::{Error, Missing, SignedRefusal};
use crate::store::StoreError;
use crate::wire::{ErrorAnswer, ErrorBody, FieldErrors, Message};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub const BASIC_CHALLENGE: &str = "Basic realm=\"GitLab Packages Registry\"";

/// Seconds a client is asked to wait (`Retry-After`) before trying a request again that
/// failed because the storage service was unavailable for a moment.
pub const RETRY_AFTER_SECONDS: u32 = 2;

/// `{"message": ...}` with a status.
pub fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(Message::new(text))).into_response()
}

/// The answer to a path no route matches (or a method no route of the path takes).
pub fn no_route() -> Response {
    (StatusCode::NOT_FOUND, Json(ErrorBody::new("404 Not Found"))).into_response()
}

/// [`no_route`] as the router's fallback handler.
pub async fn route_not_found() -> Response {
    no_route()
}

/// The status and message of an upload session refused for `reason` (`declared` bytes were
/// announced), as the request that failed would have been answered: a refusal that is also a
/// request's error takes that error's answer, and its message (or error) text.
pub fn refusal(reason: Refusal, declared: u64) -> (StatusCode, String) {
    let bad = |text: &str| (StatusCode::BAD_REQUEST, format!("400 Bad request - {text}"));
    let as_error = match reason {
        Refusal::Expired => return bad("the upload session expired"),
        Refusal::SizeMismatch => {
            return bad(&format!(
                "the upload does not have the {declared} bytes declared"
            ));
        }
        Refusal::DigestMismatch => return bad(crate::registry::DIGEST_MISMATCH),
        Refusal::TooLarge => Error::TooLarge,
        Refusal::Duplicate => Error::Duplicate,
        Refusal::Unauthorized => Denied::Unauthorized.into(),
        Refusal::TokenExpired => Denied::Expired.into(),
        Refusal::TokenRevoked => Denied::Revoked.into(),
        Refusal::InsufficientScope => Denied::InsufficientScope.into(),
        Refusal::Forbidden => Denied::Forbidden.into(),
        Refusal::ProjectNotFound => Denied::ProjectNotFound.into(),
        Refusal::Protected => Error::Protected(Protected::Push),
    };
    let (status, answer) = gitlab_answer(&as_error);
    let text = match answer {
        ErrorAnswer::Message(m) => m.message,
        ErrorAnswer::Error(e) => e.error,
        ErrorAnswer::Fields(f) => f.to_string(),
    };
    (status, text)
}

/// The answer to a refused signed request of the local store.
fn signed_refusal(refusal: &SignedRefusal) -> (StatusCode, ErrorAnswer) {
    let (status, text) = match refusal {
        SignedRefusal::BadSignature(why) => {
            (StatusCode::FORBIDDEN, format!("403 Forbidden - {why}"))
        }
        SignedRefusal::NoSizeGranted => (
            StatusCode::FORBIDDEN,
            "403 Forbidden - no size granted".into(),
        ),
        SignedRefusal::LargerThanGranted => (
            StatusCode::BAD_REQUEST,
            "400 Bad request - the body is larger than the granted size".into(),
        ),
        SignedRefusal::SizeMismatch | SignedRefusal::DigestMismatch => {
            let what = if *refusal == SignedRefusal::SizeMismatch {
                "size"
            } else {
                "SHA-256"
            };
            (
                StatusCode::BAD_REQUEST,
                format!("400 Bad request - the uploaded bytes do not match the declared {what}"),
            )
        }
        SignedRefusal::Spent => (
            StatusCode::CONFLICT,
            "409 Conflict - this upload URL is spent: its bytes arrived already, or its session \
             was committed or aborted"
                .into(),
        ),
    };
    (status, ErrorAnswer::Message(Message::new(text)))
}

/// GitLab's status and JSON body for `e`. Internal details never reach the body.
pub fn gitlab_answer(e: &Error) -> (StatusCode, ErrorAnswer) {
    let message =
        |status: StatusCode, text: &str| (status, ErrorAnswer::Message(Message::new(text)));
    let error =
        |status: StatusCode, error: &str, description: Option<&str>, scope: Option<&str>| {
            let body = ErrorBody {
                error: error.into(),
                error_description: description.map(str::to_string),
                scope: scope.map(str::to_string),
            };
            (status, ErrorAnswer::Error(body))
        };
    let invalid_token =
        |text: &str| error(StatusCode::UNAUTHORIZED, "invalid_token", Some(text), None);
    let bad_request = |text: &str| {
        message(
            StatusCode::BAD_REQUEST,
            &format!("400 Bad request - {text}"),
        )
    };
    match e {
        Error::Invalid(params) => error(StatusCode::BAD_REQUEST, &params.to_string(), None, None),
        Error::Denied(Denied::Unauthorized) => {
            message(StatusCode::UNAUTHORIZED, "401 Unauthorized")
        }
        Error::Denied(Denied::Expired) => {
            invalid_token("Token is expired. You can either do re-authorization or token refresh.")
        }
        Error::Denied(Denied::Revoked) => {
            invalid_token("Token was revoked. You have to re-authorize from the user.")
        }
        Error::Denied(Denied::InsufficientScope) => error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            Some("The request requires higher privileges than provided by the access token."),
            Some("api"),
        ),
        Error::Denied(Denied::Forbidden) => message(StatusCode::FORBIDDEN, "403 Forbidden"),
        Error::Denied(Denied::JobTokenNotAllowed { from, to }) => message(
            StatusCode::FORBIDDEN,
            &format!(
                "403 Forbidden - Authentication by CI/CD job token not allowed from {from} to {to}."
            ),
        ),
        Error::Denied(Denied::ProjectNotFound) => {
            message(StatusCode::NOT_FOUND, "404 Project Not Found")
        }
        Error::Denied(Denied::VouchUnavailable) => unavailable(),
        Error::NotFound(
            Missing::Package | Missing::UploadSession | Missing::Blob | Missing::Overtaken,
        ) => message(StatusCode::NOT_FOUND, "404 Not found"),
        // A package file route's own 404 (GitLab's `not_found!`), worded differently.
        Error::NotFound(Missing::PackageFile | Missing::Resource) => {
            message(StatusCode::NOT_FOUND, "404 Not Found")
        }
        Error::NotFound(Missing::Group) => message(StatusCode::NOT_FOUND, "404 Group Not Found"),
        Error::NotFound(Missing::Hook) => message(StatusCode::NOT_FOUND, "404 Hook Not Found"),
        Error::NotFound(Missing::Hooks) => message(
            StatusCode::NOT_FOUND,
            "404 Not Found - this registry delivers events to EventBridge: attach a rule there",
        ),
        Error::NotFound(
            Missing::User
            | Missing::Member
            | Missing::Token
            | Missing::TrustRule
            | Missing::ProtectionRule,
        )
        | Error::Conflict(_)
        | Error::BadRequest(_)
        | Error::Validation { .. }
        | Error::NotAllowed => people_answer(e),
        Error::PreconditionFailed => {
            message(StatusCode::PRECONDITION_FAILED, "412 Precondition Failed")
        }
        Error::Unprocessable(text) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorAnswer::Fields(FieldErrors::new("error", text)),
        ),
        Error::Protected(Protected::Push) => {
            message(StatusCode::FORBIDDEN, "403 Forbidden - Package protected.")
        }
        Error::Protected(Protected::Delete) => message(
            StatusCode::FORBIDDEN,
            "403 Forbidden - Package is deletion protected.",
        ),
        Error::TooLarge => bad_request("File is too large"),
        Error::Duplicate => bad_request("Duplicate package is not allowed"),
        Error::UploadsUnsupported => bad_request("this store cannot take uploads by URL"),
        Error::BodyFailed(_) => bad_request("The request body ended early"),
        Error::Signed(refusal) => signed_refusal(refusal),
        Error::Store(StoreError::Full(_)) => {
            message(StatusCode::INSUFFICIENT_STORAGE, "507 Insufficient Storage")
        }
        // Throttled, timed out or failing on the service's side: the client may try again.
        Error::Store(e) if e.is_transient() => unavailable(),
        Error::Store(_) => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 Internal Server Error",
        ),
    }
}

/// 503: the client may try again (`Retry-After` is added).
fn unavailable() -> (StatusCode, ErrorAnswer) {
    let body = ErrorAnswer::Message(Message::new("503 Service Unavailable"));
    (StatusCode::SERVICE_UNAVAILABLE, body)
}

/// The answers of the people APIs' own errors (users, tokens, members).
fn people_answer(e: &Error) -> (StatusCode, ErrorAnswer) {
    let message = |status, text: &str| (status, ErrorAnswer::Message(Message::new(text)));
    match e {
        Error::NotFound(Missing::User) => message(StatusCode::NOT_FOUND, "404 User Not Found"),
        Error::Conflict(text) => message(StatusCode::CONFLICT, text),
        Error::BadRequest(reason) if reason.is_empty() => {
            message(StatusCode::BAD_REQUEST, "400 Bad request")
        }
        Error::BadRequest(reason) => message(
            StatusCode::BAD_REQUEST,
            &format!("400 Bad request - {reason}"),
        ),
        Error::Validation { field, message } => {
            let fields = FieldErrors::new(field, message);
            (StatusCode::BAD_REQUEST, ErrorAnswer::Fields(fields))
        }
        Error::NotAllowed => message(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed"),
        _ => message(StatusCode::NOT_FOUND, "404 Not found"),
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match &self {
            Error::BodyFailed(e) => {
                tracing::info!(error = %e, "request body ended early; nothing was stored");
            }
            Error::Store(e) if e.is_transient() => {
                tracing::warn!(error = %e, "storage unavailable; the client is asked to retry");
            }
            Error::Store(e) => tracing::error!(error = %e, "storage failure"),
            _ => {}
        }
        let (status, body) = gitlab_answer(&self);
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(self, Error::Denied(Denied::Unauthorized)) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(BASIC_CHALLENGE),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_session_is_worded_as_its_request_would_be() {
        let cases = [
            (
                Refusal::Duplicate,
                400,
                "400 Bad request - Duplicate package is not allowed",
            ),
            (
                Refusal::TooLarge,
                400,
                "400 Bad request - File is too large",
            ),
            (Refusal::Unauthorized, 401, "401 Unauthorized"),
            (Refusal::TokenExpired, 401, "invalid_token"),
            (Refusal::TokenRevoked, 401, "invalid_token"),
            (Refusal::InsufficientScope, 403, "insufficient_scope"),
            (Refusal::Forbidden, 403, "403 Forbidden"),
            (Refusal::ProjectNotFound, 404, "404 Project Not Found"),
            (
                Refusal::Expired,
                400,
                "400 Bad request - the upload session expired",
            ),
            (
                Refusal::SizeMismatch,
                400,
                "400 Bad request - the upload does not have the 5 bytes declared",
            ),
        ];
        for (reason, status, text) in cases {
            assert_eq!(
                refusal(reason, 5),
                (StatusCode::from_u16(status).unwrap(), text.into())
            );
        }
    }

    #[test]
    fn an_unavailable_store_is_503_with_retry_after() {
        let cases = [
            StoreError::Unavailable {
                operation: "TransactWriteItems".into(),
                source: "throttled".into(),
            },
            StoreError::Contention {
                what: "publish kept conflicting".into(),
                attempts: 8,
            },
        ];
        for e in cases {
            let error = Error::Store(e);
            assert_eq!(
                gitlab_answer(&error),
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorAnswer::Message(Message::new("503 Service Unavailable"))
                )
            );
            let response = error.into_response();
            assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        }
    }

    #[test]
    fn a_full_disk_is_507_and_other_store_failures_500() {
        let full = Error::Store(StoreError::backend(std::io::Error::from_raw_os_error(28)));
        assert_eq!(
            gitlab_answer(&full),
            (
                StatusCode::INSUFFICIENT_STORAGE,
                ErrorAnswer::Message(Message::new("507 Insufficient Storage"))
            )
        );
        let broken = Error::Store(StoreError::backend(std::io::Error::from_raw_os_error(5)));
        assert_eq!(
            gitlab_answer(&broken),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorAnswer::Message(Message::new("500 Internal Server Error"))
            )
        );
    }
}
