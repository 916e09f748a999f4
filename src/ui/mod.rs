//! The web UI: server-rendered pages (maud templates compiled into the binary) for people
//! browsing the registry, served by the same router as the API, so it works in `depot serve`
//! and through the Lambda alike. Every page works without JavaScript; every response carries a
//! strict Content-Security-Policy (no inline script or style) and refuses to be framed.

mod assets;
mod home;
pub mod layout;
pub mod session;

use crate::api::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

pub use assets::total_bytes as asset_bytes;

/// What the UI's pages may load: their own stylesheet, script and images, nothing inline,
/// nothing from elsewhere; forms post only here; no page may frame them.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The UI's routes (its pages under projects and groups come through [`fallback`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home::show))
        .route("/-/sign_in", get(session::form).post(session::sign_in))
        .route("/-/sign_out", post(session::sign_out))
        .route("/-/assets/{name}", get(assets::serve))
}

/// Every path no route takes: GitLab's JSON 404 for the API and for anything but a page
/// read; the UI's 404 page otherwise.
pub async fn fallback(State(registry): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    let page_read = matches!(*request.method(), Method::GET | Method::HEAD);
    if !page_read || path.starts_with("/api/") || path.starts_with("/-/blob/") {
        return crate::api::error::no_route();
    }
    let signed_in = session::viewer(&registry, request.headers())
        .await
        .ok()
        .flatten();
    let base = session::base_path(&registry);
    let frame = layout::Frame {
        base: &base,
        viewer: signed_in.as_ref(),
    };
    layout::error_page(&frame, StatusCode::NOT_FOUND)
}

/// The UI's security headers on every HTML answer.
pub async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        let headers = response.headers_mut();
        let csp = HeaderValue::from_static(CONTENT_SECURITY_POLICY);
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
