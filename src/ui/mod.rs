//! The web UI: server-rendered pages (maud templates compiled into the binary) for people
//! browsing the registry, served by the same router as the API, so it works in `depot serve`
//! and through the Lambda alike. Every page works without JavaScript; every response carries a
//! strict Content-Security-Policy (no inline script or style) and refuses to be framed.

mod account;
mod assets;
mod commands;
mod home;
pub mod layout;
mod packages;
mod routes;
pub mod session;
mod settings;
mod tokens;

use crate::api::AppState;
use crate::api::extract::Incoming;
use crate::auth::Principal;
use crate::registry::Error;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use routes::UiRoute;

pub use assets::total_bytes as asset_bytes;

/// What the UI's pages may load: their own stylesheet, script and images, nothing inline,
/// nothing from elsewhere; forms post only here; no page may frame them.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The most a UI form may post: forms are a few fields.
pub const FORM_LIMIT: usize = 64 << 10;

/// The UI's routes (its pages under projects and groups come through [`fallback`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home::show))
        .route("/-/sign_in", get(session::form).post(session::sign_in))
        .route("/-/sign_out", post(session::sign_out))
        .route("/-/assets/{name}", get(assets::serve))
        .route(
            "/-/user_settings/personal_access_tokens",
            get(account::show).post(account::create),
        )
        .route(
            "/-/user_settings/personal_access_tokens/{id}/revoke",
            post(account::revoke),
        )
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
}

/// Every path no route takes: the UI's pages under projects and groups; GitLab's JSON 404 for
/// the API and for anything else but a page read; the UI's 404 page otherwise.
pub async fn fallback(State(registry): State<AppState>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let api = path.starts_with("/api/") || path.starts_with("/-/blob/");
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    let route = if api { None } else { routes::parse(&path) };
    if route.is_none() && (api || !read) {
        return crate::api::error::no_route();
    }
    let (mut parts, body) = request.into_parts();
    let signed_in = match session::viewer(&registry, &parts.headers).await {
        Ok(v) => v,
        Err(e) => return session::failed(&registry, e),
    };
    let base = session::base_path(&registry);
    let frame = layout::Frame {
        base: &base,
        viewer: signed_in.as_ref(),
    };
    let Some(route) = route else {
        return layout::error_page(&frame, StatusCode::NOT_FOUND);
    };
    let Ok(incoming) = Incoming::from_request_parts(&mut parts, &()).await;
    // A form is a few fields: a larger body is refused as it arrives, never held.
    let limited = http_body_util::Limited::new(body, FORM_LIMIT);
    let request = Request::from_parts(parts, axum::body::Body::new(limited));
    let outcome = if read {
        page(&registry, &frame, &incoming, route).await
    } else if incoming.method == Method::POST {
        form(&registry, &frame, request, route).await
    } else {
        return crate::api::error::no_route();
    };
    match outcome {
        Ok(response) => response,
        Err(e) => {
            let status = e.into_response().status();
            layout::error_page(&frame, status)
        }
    }
}

fn principal_of(frame: &layout::Frame<'_>) -> Principal {
    frame
        .viewer
        .map_or(Principal::Anonymous, |v| v.principal.clone())
}

/// A page read.
async fn page(
    registry: &AppState,
    frame: &layout::Frame<'_>,
    incoming: &Incoming,
    route: UiRoute,
) -> Result<Response, Error> {
    let principal = principal_of(frame);
    let api_base = crate::api::pagination::base_url(registry, &incoming.headers);
    match route {
        UiRoute::Packages(project) => {
            packages::list(registry, frame, &principal, incoming, &project).await
        }
        UiRoute::Package(project, id) => {
            packages::show(registry, frame, &principal, &api_base, (&project, id)).await
        }
        UiRoute::Download(project, id, file) => {
            packages::download(registry, &principal, incoming, (&project, id, file)).await
        }
        UiRoute::GroupSettings(group) => settings::show(registry, frame, &principal, &group).await,
        UiRoute::DeployTokens(project) => {
            tokens::deploy(registry, frame, &principal, &project, tokens::Said::Nothing).await
        }
        UiRoute::DeletePackage(..) | UiRoute::DeleteFile(..) | UiRoute::RevokeDeployToken(..) => {
            Ok(crate::api::error::no_route())
        }
    }
}

/// A form posted: refused unless it carries the session's form token.
async fn form(
    registry: &AppState,
    frame: &layout::Frame<'_>,
    request: Request,
    route: UiRoute,
) -> Result<Response, Error> {
    let Some(viewer) = frame.viewer else {
        return Ok(session::refused_form(registry));
    };
    let principal = viewer.principal.clone();
    match route {
        UiRoute::GroupSettings(group) => {
            let Ok(Form(posted)) =
                Form::<settings::SettingsForm>::from_request(request, registry).await
            else {
                return Ok(session::refused_form(registry));
            };
            if !viewer.form_token_matches(&posted.csrf) {
                return Ok(session::refused_form(registry));
            }
            settings::save(registry, frame, &principal, &group, posted).await
        }
        UiRoute::DeployTokens(project) => {
            let form = token_form(request).await;
            if !viewer.form_token_matches(&form.csrf) {
                return Ok(session::refused_form(registry));
            }
            tokens::create_deploy(registry, frame, &principal, &project, form).await
        }
        UiRoute::RevokeDeployToken(project, id) => {
            let form = token_form(request).await;
            if !viewer.form_token_matches(&form.csrf) {
                return Ok(session::refused_form(registry));
            }
            tokens::revoke_deploy(registry, &principal, &project, id).await?;
            let to = format!("{}/{project}/-/settings/repository", frame.base);
            Ok(Redirect::to(&to).into_response())
        }
        UiRoute::DeletePackage(project, id) => {
            delete(registry, frame, request, (&project, id, None)).await
        }
        UiRoute::DeleteFile(project, id, file) => {
            delete(registry, frame, request, (&project, id, Some(file))).await
        }
        _ => Ok(crate::api::error::no_route()),
    }
}

/// A token form's fields (read by hand: checkboxes repeat a name).
async fn token_form(request: Request) -> tokens::TokenForm {
    let body = axum::body::to_bytes(request.into_body(), FORM_LIMIT)
        .await
        .unwrap_or_default();
    tokens::TokenForm::parse(&body)
}

/// A delete form posted: the package or file is gone, and the viewer back where it was listed.
async fn delete(
    registry: &AppState,
    frame: &layout::Frame<'_>,
    request: Request,
    target: (&str, i64, Option<i64>),
) -> Result<Response, Error> {
    let Some(viewer) = frame.viewer else {
        return Ok(session::refused_form(registry));
    };
    let Ok(Form(posted)) = Form::<session::CsrfForm>::from_request(request, registry).await else {
        return Ok(session::refused_form(registry));
    };
    if !viewer.form_token_matches(&posted.csrf) {
        return Ok(session::refused_form(registry));
    }
    let to = packages::delete(registry, &viewer.principal, target).await?;
    Ok(Redirect::to(&format!("{}/{to}", frame.base)).into_response())
}

/// The UI's security headers on every HTML answer.
pub async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if response.headers().contains_key(header::SET_COOKIE) {
        let no_store = HeaderValue::from_static("no-store");
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, no_store);
    }
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
