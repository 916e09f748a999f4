//! The HTTP surface: one axum `Router` (the same in `depot serve` and in the Lambda function),
//! its route table written as GitLab's API documentation lists the routes. Handlers are thin:
//! typed extractors parse the request, `Registry` decides, `error` and the `wire` types shape
//! GitLab's answer.

mod blobs;
mod bytes;
mod cleanup;
mod entities;
pub mod error;
mod events;
pub(crate) mod extract;
pub(crate) mod generic;
mod graphql;
mod manifest;
mod members;
mod packages;
pub(crate) mod pagination;
mod params;
mod project_path;
mod projects;
mod protection;
mod uploads;
mod users;

use crate::registry::Registry;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use std::sync::Arc;
use std::time::Instant;

pub use cleanup::preview as cleanup_preview;
pub use manifest::file_url;

pub type AppState = Arc<Registry>;

/// The request parsers at the HTTP edge, for the fuzz targets under `fuzz/`: not an API.
#[doc(hidden)]
pub mod edge {
    pub use super::bytes::{
        RangeRequest, content_disposition, if_none_match, ranged, requested_range,
    };
    pub use super::extract::Incoming;
    pub use super::generic::{Route, parse_params, split_generic_path};
    pub use super::pagination::pagination_headers;
    pub use super::project_path::reencoded_uri;
}

/// Every route, and GitLab's 404 body for anything else (including a known path asked with
/// another method, as GitLab's API answers it).
pub fn router(registry: Arc<Registry>) -> Router {
    let routes = Router::new()
        .route(
            "/api/v4/projects/{id}/packages/generic/{package_name}/{package_version}/{*file_path}",
            put(generic::publish)
                .get(generic::download)
                .head(generic::download)
                .post(uploads::post)
                .delete(uploads::abort),
        )
        .route(
            "/api/v4/projects/{id}/packages/generic/{package_name}/{package_version}",
            get(manifest::manifest),
        )
        .route(
            "/api/v4/projects/{id}/packages/cleanup_policy",
            get(cleanup::show).put(cleanup::update),
        )
        .route(
            "/api/v4/projects/{id}/packages/cleanup_policy/preview",
            get(cleanup::show_preview),
        )
        .route(
            "/api/v4/projects/{id}/packages/protection/rules",
            get(protection::list).post(protection::create),
        )
        .route(
            "/api/v4/projects/{id}/packages/protection/rules/{rule_id}",
            patch(protection::update).delete(protection::delete),
        )
        .route("/metrics", get(show_metrics))
        .route("/api/v4/audit_events", get(events::instance_audit))
        .route(
            "/api/v4/projects/{id}/audit_events",
            get(events::project_audit),
        )
        .route(
            "/api/v4/projects/{id}/packages",
            get(packages::list_project),
        )
        .route(
            "/api/v4/projects/{id}/packages/{package_id}",
            get(packages::show).delete(packages::delete_package),
        )
        .route(
            "/api/v4/projects/{id}/packages/{package_id}/package_files",
            get(packages::list_files),
        )
        .route(
            "/api/v4/projects/{id}/packages/{package_id}/pipelines",
            get(packages::pipelines),
        )
        .route(
            "/api/v4/projects/{id}/packages/{package_id}/package_files/{package_file_id}",
            delete(packages::delete_file),
        )
        .route("/api/v4/groups/{id}/packages", get(packages::list_group))
        .route("/api/graphql", get(graphql::execute).post(graphql::execute))
        .route("/api/v4/user", get(users::current))
        .route("/api/v4/users", get(users::list).post(users::create))
        .route("/api/v4/users/{id}", get(users::show))
        .route(
            "/api/v4/users/{id}/personal_access_tokens",
            post(users::create_token),
        )
        .route("/api/v4/personal_access_tokens", get(users::list_tokens))
        .route(
            "/api/v4/personal_access_tokens/{id}",
            get(users::show_token).delete(users::revoke_token),
        )
        .route(
            "/api/v4/personal_access_tokens/{id}/rotate",
            post(users::rotate_token),
        )
        .route(
            "/api/v4/projects",
            get(projects::list).post(projects::create),
        )
        .route("/api/v4/projects/{id}", get(projects::show))
        .route(
            "/api/v4/groups",
            get(projects::list_groups).post(projects::create_group),
        )
        .route("/api/v4/groups/{id}", get(projects::show_group))
        .merge(people_routes::<false>("projects"))
        .merge(people_routes::<true>("groups"))
        .merge(crate::ui::routes())
        .route(
            "/-/blob/{*key}",
            get(blobs::download)
                .head(blobs::download)
                .put(blobs::upload)
                .fallback(blobs::other_method),
        )
        .fallback(crate::ui::fallback)
        .method_not_allowed_fallback(error::route_not_found)
        .layer(DefaultBodyLimit::disable())
        .with_state(registry.clone());
    // The project or group id is put back into one segment before routing: API Gateway hands
    // `%2F` over decoded.
    Router::new()
        .fallback_service(project_path::reencoded(routes))
        .layer(middleware::from_fn(crate::ui::secure_headers))
        .layer(middleware::from_fn(refuse_malformed))
        .layer(middleware::from_fn(close_after_refused_body))
        .layer(middleware::from_fn_with_state(registry, log_request))
}

/// Members, deploy tokens and trust rules under `/api/v4/<kind>/{id}` (`GROUP`: groups).
fn people_routes<const GROUP: bool>(kind: &str) -> Router<AppState> {
    let at = |rest: &str| format!("/api/v4/{kind}/{{id}}/{rest}");
    Router::new()
        .route(
            &at("members"),
            get(members::list::<GROUP, false>).post(members::add::<GROUP>),
        )
        .route(&at("members/all"), get(members::list::<GROUP, true>))
        .route(
            &at("members/all/{user_id}"),
            get(members::show::<GROUP, true>),
        )
        .route(
            &at("members/{user_id}"),
            get(members::show::<GROUP, false>)
                .put(members::update::<GROUP>)
                .delete(members::remove::<GROUP>),
        )
        .route(
            &at("deploy_tokens"),
            get(members::list_deploy_tokens::<GROUP>).post(members::create_deploy_token::<GROUP>),
        )
        .route(
            &at("deploy_tokens/{token_id}"),
            get(members::show_deploy_token::<GROUP>).delete(members::revoke_deploy_token::<GROUP>),
        )
        .route(
            &at("trust_rules"),
            get(members::list_trust_rules::<GROUP>).post(members::add_trust_rule::<GROUP>),
        )
        .route(
            &at("trust_rules/{rule_id}"),
            delete(members::remove_trust_rule::<GROUP>),
        )
        .route(
            &at("hooks"),
            get(events::list_hooks::<GROUP>).post(events::create_hook::<GROUP>),
        )
        .route(
            &at("hooks/{hook_id}"),
            get(events::show_hook::<GROUP>).delete(events::delete_hook::<GROUP>),
        )
}

/// GitLab's answer to a URL whose path or query decodes to invalid UTF-8 (its
/// `HandleMalformedStrings` middleware): 400, `text/plain`, `Bad Request`, before any route.
async fn refuse_malformed(request: Request, next: Next) -> Response {
    if malformed(request.uri()) {
        let text = [(header::CONTENT_TYPE, "text/plain")];
        return (StatusCode::BAD_REQUEST, text, "Bad Request").into_response();
    }
    next.run(request).await
}

/// `GET /metrics`: the process's counters in Prometheus's text format, when `--metrics` is on;
/// else no route.
async fn show_metrics(axum::extract::State(registry): axum::extract::State<AppState>) -> Response {
    match registry.metrics_shown() {
        Some(metrics) => {
            let text = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
            (StatusCode::OK, text, metrics.render()).into_response()
        }
        None => error::no_route(),
    }
}

/// Does the path or the query of `uri` percent-decode to invalid UTF-8?
fn malformed(uri: &Uri) -> bool {
    let invalid = |s: &str| {
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(s).collect();
        std::str::from_utf8(&bytes).is_err()
    };
    invalid(uri.path()) || uri.query().is_some_and(invalid)
}

/// A request refused before its body was read leaves that body on the connection, which the
/// server then closes: say so (`Connection: close`), or a client that keeps connections
/// (`requests.Session`, python-gitlab) sends its next request into a closed socket.
async fn close_after_refused_body(request: Request, next: Next) -> Response {
    let has_body = declares_body(request.headers());
    let mut response = next.run(request).await;
    let refused = response.status().is_client_error() || response.status().is_server_error();
    if has_body && refused {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The `Content-Length` `headers` declare (0 when none).
fn declared_length(headers: &axum::http::HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Does a request with `headers` carry a body (a non-zero `Content-Length`, or chunks)?
pub fn declares_body(headers: &axum::http::HeaderMap) -> bool {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    declared.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

/// One line per request: method, path (never the query: it may carry a token), status, time;
/// every line logged while it is served carries its id (a `request` span), and so does the
/// answer (`X-Request-Id`).
async fn log_request(
    axum::extract::State(registry): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    use tracing::Instrument;
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let id = request_id(&request);
    let info = crate::telemetry::RequestInfo {
        id: id.clone(),
        address: client_address(&request),
        store: Default::default(),
    };
    let clock = info.store.clone();
    let bytes_in = declared_length(request.headers());
    let started = Instant::now();
    let span = tracing::info_span!("request", request_id = %id);
    let served = next.run(request).instrument(span.clone());
    let mut response = crate::telemetry::serving(info, served).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    let (store_calls, store_time) = clock.read();
    let served = crate::metrics::Served {
        operation: crate::metrics::operation_of(method.as_str(), &path),
        status,
        took,
        bytes_in,
        bytes_out: declared_length(response.headers()),
        store_calls,
        store_time,
    };
    registry.metrics().request(&served);
    if registry.emf() {
        let now = crate::domain::Timestamp::now().millis();
        println!("{}", crate::metrics::emf_line(&served, now));
    }
    span.in_scope(|| {
        tracing::info!(
            %method,
            %path,
            status = response.status().as_u16(),
            ms = took.as_secs_f64() * 1000.0,
            "request"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The client's address: API Gateway's `sourceIp`, else the connection's peer.
fn client_address(request: &Request) -> Option<String> {
    use lambda_http::request::RequestContext;
    match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
        _ => request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|peer| peer.0.ip().to_string()),
    }
}

/// The id of a request: API Gateway's (from the Lambda event's request context), else the
/// client's `X-Request-Id` if it is a short plain token, else a new one.
fn request_id(request: &Request) -> String {
    use lambda_http::request::RequestContext;
    let gateway = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        Some(RequestContext::ApiGatewayV1(context)) => context.request_id.clone(),
        _ => None,
    };
    let plain = |id: &&str| {
        !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.=+/".contains(&b))
    };
    let given = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(plain)
        .map(str::to_string);
    gateway
        .or(given)
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `percent_decoding` fuzz target (fuzz/regressions/percent_decoding/): a
    /// project id that is not UTF-8 was answered with axum's own wording, not GitLab's.
    #[test]
    fn urls_that_are_not_utf8_are_malformed() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        for bad in [
            "/api/v4/projects/%E2%41%AC/packages/generic/pkg/1.0/f",
            "/api/v4/projects/7/packages?package_name=%C0",
            "/-/blob/%FF",
        ] {
            assert!(malformed(&uri(bad)), "{bad}");
        }
        for good in [
            "/api/v4/projects/%E2%82%AC/packages",
            "/api/v4/projects/g%2Fp/packages?package_name=caf%C3%A9&sort=desc",
            "/api/graphql?query=%7B%7D",
        ] {
            assert!(!malformed(&uri(good)), "{good}");
        }
    }
}
