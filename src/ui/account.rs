//! The viewer's own pages (`/-/user_settings/...`): the glue between their routes and the
//! token views, with the sign-in and form-token checks every write makes.

use super::layout::{Frame, error_page};
use super::session::{base_path, failed, refused_form, viewer};
use super::tokens;
use crate::api::AppState;
use crate::registry::{Error, SignedIn};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

/// The signed-in viewer, or the answer for one who is not (the sign-in page).
async fn signed_in(registry: &AppState, headers: &HeaderMap) -> Result<SignedIn, Response> {
    match viewer(registry, headers).await {
        Ok(Some(v)) => Ok(v),
        Ok(None) => {
            Err(Redirect::to(&format!("{}/-/sign_in", base_path(registry))).into_response())
        }
        Err(e) => Err(failed(registry, e)),
    }
}

fn outcome(registry: &AppState, viewer: &SignedIn, result: Result<Response, Error>) -> Response {
    match result {
        Ok(r) => r,
        Err(e) => {
            let base = base_path(registry);
            let frame = Frame {
                base: &base,
                viewer: Some(viewer),
            };
            error_page(&frame, e.into_response().status())
        }
    }
}

/// `GET /-/user_settings/personal_access_tokens`.
pub async fn show(State(registry): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match signed_in(&registry, &headers).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let base = base_path(&registry);
    let frame = Frame {
        base: &base,
        viewer: Some(&viewer),
    };
    let result =
        tokens::personal(&registry, &frame, &viewer.principal, tokens::Said::Nothing).await;
    outcome(&registry, &viewer, result)
}

/// `POST /-/user_settings/personal_access_tokens`: a token of the viewer's own.
pub async fn create(State(registry): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let viewer = match signed_in(&registry, &headers).await {
        Ok(v) => v,
        Err(_) => return refused_form(&registry),
    };
    let form = tokens::TokenForm::parse(&body);
    if !viewer.form_token_matches(&form.csrf) {
        return refused_form(&registry);
    }
    let base = base_path(&registry);
    let frame = Frame {
        base: &base,
        viewer: Some(&viewer),
    };
    let result = tokens::create_personal(&registry, &frame, &viewer.principal, form).await;
    outcome(&registry, &viewer, result)
}

/// `POST /-/user_settings/personal_access_tokens/:id/revoke`.
pub async fn revoke(
    State(registry): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let viewer = match signed_in(&registry, &headers).await {
        Ok(v) => v,
        Err(_) => return refused_form(&registry),
    };
    let form = tokens::TokenForm::parse(&body);
    if !viewer.form_token_matches(&form.csrf) {
        return refused_form(&registry);
    }
    let result = tokens::revoke_personal(&registry, &viewer.principal, id)
        .await
        .map(|()| {
            let to = format!(
                "{}/-/user_settings/personal_access_tokens",
                base_path(&registry)
            );
            Redirect::to(&to).into_response()
        });
    outcome(&registry, &viewer, result)
}
