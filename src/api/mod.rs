//! The HTTP surface: one axum `Router` (the same in `depot serve` and, later, in Lambda).
//! Handlers are thin: parse the request, call `Registry`, format GitLab's answer.

mod blobs;
pub mod error;
mod generic;
mod graphql;
mod packages;
mod uploads;

use crate::registry::Registry;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::any;
use std::sync::Arc;
use std::time::Instant;

pub type AppState = Arc<Registry>;

/// All routes under `/api/v4`, answering GitLab's 404 body for anything else.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/api/v4/projects/{*rest}", any(projects))
        .route("/api/v4/groups/{*rest}", any(groups))
        .route("/api/graphql", any(graphql_endpoint))
        .route("/-/blob/{*key}", any(signed_blob))
        .fallback(|| async { error::route_not_found() })
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn(log_request))
        .with_state(registry)
}

/// Routes whose project id may contain `/` (a decoded `%2F`): matched by hand on the raw path.
async fn projects(
    State(registry): State<AppState>,
    method: Method,
    uri: Uri,
    request: Request,
) -> Response {
    let raw = uri
        .path()
        .strip_prefix("/api/v4/projects/")
        .unwrap_or_default();
    let Some((project, rest)) = split_project(raw) else {
        return error::route_not_found();
    };
    if let Some(generic) = rest.strip_prefix("packages/generic/") {
        if let Some((file_part, upload)) = uploads::UploadRoute::split(&method, generic)
            && let Some(route) = generic::Route::parse(project, file_part)
        {
            return uploads::handle(registry, route, upload, request).await;
        }
        if let Some(route) = generic::Route::parse(project, generic) {
            return generic::handle(registry, method, route, request).await;
        }
    }
    if let Some(after) = rest.strip_prefix("packages")
        && let Some(route) = packages::ProjectRoute::parse(after)
        && (after.is_empty() || after.starts_with('/'))
    {
        return packages::handle_project(registry, project, route, request).await;
    }
    error::route_not_found()
}

/// `/groups/:id/packages`, where the id may be a path with decoded slashes.
async fn groups(State(registry): State<AppState>, uri: Uri, request: Request) -> Response {
    let raw = uri
        .path()
        .strip_prefix("/api/v4/groups/")
        .unwrap_or_default();
    match raw.trim_end_matches('/').strip_suffix("/packages") {
        Some(group) if !group.is_empty() => packages::handle_group(registry, group, request).await,
        _ => error::route_not_found(),
    }
}

/// The local store's presigned URLs.
async fn signed_blob(State(registry): State<AppState>, uri: Uri, request: Request) -> Response {
    let key = uri
        .path()
        .strip_prefix(crate::store::signing::SIGNED_PATH_PREFIX)
        .unwrap_or_default()
        .to_string();
    blobs::handle(registry, &key, request).await
}

/// `/api/graphql`.
async fn graphql_endpoint(State(registry): State<AppState>, request: Request) -> Response {
    static SCHEMA: std::sync::OnceLock<graphql::DepotSchema> = std::sync::OnceLock::new();
    graphql::handle(registry, SCHEMA.get_or_init(graphql::schema), request).await
}

/// The query string's pairs, decoded.
fn query_pairs(request: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// Split `<id>/<rest>`. A numeric or `%2F`-encoded id is one segment; an id whose slashes
/// arrived decoded runs up to the `packages` segment.
fn split_project(raw: &str) -> Option<(&str, &str)> {
    let first = raw.split('/').next()?;
    let encoded = first.contains("%2F") || first.contains("%2f");
    if encoded || first.bytes().all(|b| b.is_ascii_digit()) {
        return Some((first, raw.get(first.len() + 1..)?));
    }
    let at = raw
        .find("/packages/")
        .or_else(|| raw.strip_suffix("/packages").map(str::len))?;
    Some((&raw[..at], &raw[at + 1..]))
}

/// One line per request: method, path (never the query: it may carry a token), status, time.
async fn log_request(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::split_project;

    #[test]
    fn project_ids_in_every_form() {
        let cases = [
            (
                "24/packages/generic/a/1/f",
                Some(("24", "packages/generic/a/1/f")),
            ),
            (
                "g%2Fp/packages/generic/a/1/f",
                Some(("g%2Fp", "packages/generic/a/1/f")),
            ),
            ("g%2fsub%2fp/packages", Some(("g%2fsub%2fp", "packages"))),
            (
                "g/sub/p/packages/generic/a/1/f",
                Some(("g/sub/p", "packages/generic/a/1/f")),
            ),
            ("g/p/other", None),
            ("g/sub/p/packages", Some(("g/sub/p", "packages"))),
            (
                "g/p/packages/7/package_files",
                Some(("g/p", "packages/7/package_files")),
            ),
            ("24", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(split_project(raw), expected, "{raw}");
        }
    }
}
