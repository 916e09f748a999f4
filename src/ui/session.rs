//! Signing in and out of the web UI, and who is looking: the session cookie (`HttpOnly`,
//! `SameSite=Lax`, `Secure` behind HTTPS, as long-lived as the session), the form token every
//! write carries (the session's own; before sign-in, a cookie the sign-in form repeats).

use super::layout::{Frame, answer, error_page, page};
use crate::api::AppState;
use crate::registry::{Error, SignedIn};
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "depot_session";
const SIGN_IN_COOKIE: &str = "depot_sign_in";

/// The value of cookie `name` in `headers`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The path every UI link starts with: the public URL's path (an API Gateway stage), or none.
pub fn base_path(registry: &AppState) -> String {
    let Some(url) = registry.public_url() else {
        return String::new();
    };
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after_scheme.split_once('/') {
        Some((_, path)) if !path.is_empty() => format!("/{}", path.trim_end_matches('/')),
        _ => String::new(),
    }
}

/// Is the UI reached over HTTPS (cookies are then `Secure`)?
fn over_https(registry: &AppState, headers: &HeaderMap) -> bool {
    registry
        .public_url()
        .is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(
    registry: &AppState,
    headers: &HeaderMap,
    name: &str,
    value: &str,
    max_age: u64,
) -> HeaderValue {
    let secure = if over_https(registry, headers) {
        "; Secure"
    } else {
        ""
    };
    let path = format!("{}/", base_path(registry));
    let text =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Who is looking: the signed-in viewer of the request's session cookie, if any.
pub async fn viewer(registry: &AppState, headers: &HeaderMap) -> Result<Option<SignedIn>, Error> {
    match cookie(headers, SESSION_COOKIE) {
        Some(id) if !id.is_empty() => registry.signed_in_by(id).await,
        _ => Ok(None),
    }
}

/// `GET /-/sign_in`: the form, with a fresh form token in a cookie it must repeat.
pub async fn form(State(registry): State<AppState>, headers: HeaderMap) -> Response {
    let token = hex::encode(rand::random::<[u8; 16]>());
    let mut response = sign_in_page(&registry, &token, None, StatusCode::OK);
    let cookie = set_cookie(&registry, &headers, SIGN_IN_COOKIE, &token, 3600);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

fn sign_in_page(
    registry: &AppState,
    csrf: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let base = base_path(registry);
    let frame = Frame {
        base: &base,
        viewer: None,
    };
    let body = html! {
        h1 { "Sign in" }
        @if let Some(error) = error {
            p.notice.error role="alert" { (error) }
        }
        form method="post" action=(format!("{base}/-/sign_in")) {
            input type="hidden" name="csrf" value=(csrf);
            label for="token" { "Personal access token" }
            input type="password" id="token" name="token" autocomplete="off" required;
            p { button type="submit" { "Sign in" } }
        }
        p.muted {
            "Sign in with a personal access token of the " code { "api" } " scope. "
            "Your administrator makes one with " code { "depot admin token create personal" }
            ", or over the API: "
            code { "POST /api/v4/users/:id/personal_access_tokens" } "."
        }
    };
    answer(status, page(&frame, "Sign in", body))
}

#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
    csrf: String,
}

/// `POST /-/sign_in`: a session for the token's user, or the form again saying why not.
pub async fn sign_in(
    State(registry): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or("");
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return refused_form(&registry);
    }
    match registry.sign_in(&form.token).await {
        Ok((id, ttl)) => {
            let base = base_path(&registry);
            let mut response = Redirect::to(&format!("{base}/")).into_response();
            let cookie = set_cookie(&registry, &headers, SESSION_COOKIE, &id, ttl.as_secs());
            response.headers_mut().append(header::SET_COOKIE, cookie);
            let spent = set_cookie(&registry, &headers, SIGN_IN_COOKIE, "", 0);
            response.headers_mut().append(header::SET_COOKIE, spent);
            response
        }
        Err(Error::Denied(_)) => {
            let why = "That token cannot sign in: it is unknown, revoked, expired, or lacks the api scope.";
            sign_in_page(&registry, expected, Some(why), StatusCode::UNAUTHORIZED)
        }
        Err(e) => failed(&registry, e),
    }
}

/// A form whose token does not match: refused, changing nothing (403).
pub fn refused_form(registry: &AppState) -> Response {
    let base = base_path(registry);
    error_page(
        &Frame {
            base: &base,
            viewer: None,
        },
        StatusCode::FORBIDDEN,
    )
}

/// A use case's failure as an error page (its details are logged, never shown).
pub fn failed(registry: &AppState, e: Error) -> Response {
    failed_as(registry, None, e)
}

/// [`failed`], drawn for `viewer` (signed in: the header says so).
pub fn failed_as(registry: &AppState, viewer: Option<&SignedIn>, e: Error) -> Response {
    let status = e.into_response().status();
    let base = base_path(registry);
    error_page(
        &Frame {
            base: &base,
            viewer,
        },
        status,
    )
}

/// A form that carries only its form token.
#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// `POST /-/sign_out`: the session ends everywhere at once.
pub async fn sign_out(
    State(registry): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let signed_in = match viewer(&registry, &headers).await {
        Ok(v) => v,
        Err(e) => return failed(&registry, e),
    };
    if let Some(viewer) = &signed_in {
        if !viewer.form_token_matches(&form.csrf) {
            return refused_form(&registry);
        }
        let id = cookie(&headers, SESSION_COOKIE).unwrap_or_default();
        if let Err(e) = registry.sign_out(id).await {
            return failed_as(&registry, Some(viewer), e);
        }
    }
    let base = base_path(&registry);
    let mut response = Redirect::to(&format!("{base}/")).into_response();
    let gone = set_cookie(&registry, &headers, SESSION_COOKIE, "", 0);
    response.headers_mut().append(header::SET_COOKIE, gone);
    response
}
