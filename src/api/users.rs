//! GitLab's user and personal-access-token routes: `GET /user`, users by id or name, an
//! administrator's `POST /users` and `POST /users/:id/personal_access_tokens`, and a user's
//! own tokens (`/personal_access_tokens`, `self` or by id: show, rotate, revoke).

use super::AppState;
use super::extract::{Incoming, integer_param};
use super::pagination::{base_url, paginated};
use super::params::Params;
use crate::auth::Action;
use crate::domain::{Listed, Timestamp};
use crate::registry::{Error, Missing, TokenRef, TokenRequest};
use crate::wire::people::{PersonalAccessTokenEntity, UserBasic, UserEntity};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// `GET /user`.
pub async fn current(
    State(registry): State<AppState>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let principal = incoming.principal(&registry, Action::Read).await?;
    let user = registry.signed_in(&principal).await?;
    let base = base_url(&registry, &incoming.headers);
    Ok(Json(UserEntity::new(&user, &base, user.admin)).into_response())
}

/// `GET /users`: every user (`username` the one of that name, `search` those whose name
/// contains it), paginated.
pub async fn list(State(registry): State<AppState>, incoming: Incoming) -> Result<Response, Error> {
    let principal = incoming.principal(&registry, Action::Read).await?;
    let page = super::projects::page(&incoming)?;
    let base = base_url(&registry, &incoming.headers);
    let users = match incoming.query_value("username") {
        Some(name) => registry
            .find_user(&principal, Err(name))
            .await?
            .into_iter()
            .collect(),
        None => {
            let search = incoming.query_value("search").map(str::to_lowercase);
            let mut users = registry.users(&principal).await?;
            if let Some(search) = search {
                users.retain(|u| u.username.to_lowercase().contains(&search));
            }
            users
        }
    };
    let listed = Listed::page_of(users, page);
    let body: Vec<UserBasic> = listed
        .items
        .iter()
        .map(|u| UserBasic::new(u, &base))
        .collect();
    Ok(paginated(body, &listed, page, &base, &incoming))
}

/// `GET /users/:id`.
pub async fn show(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let principal = incoming.principal(&registry, Action::Read).await?;
    let id = integer_param("id", &id)?;
    let user = registry
        .find_user(&principal, Ok(id))
        .await?
        .ok_or(Error::NotFound(Missing::User))?;
    let base = base_url(&registry, &incoming.headers);
    Ok(Json(UserBasic::new(&user, &base)).into_response())
}

/// `POST /users` (administrators): `username` (GitLab's `name`, `email` and password
/// parameters are taken and not kept: depot users sign in with tokens only), `admin`.
pub async fn create(
    State(registry): State<AppState>,
    incoming: Incoming,
    params: Params,
) -> Result<Response, Error> {
    let principal = incoming.principal(&registry, Action::Write).await?;
    registry.administrator(&principal).await?;
    let username = params.required_string("username")?;
    let admin = params.boolean("admin")?.unwrap_or(false);
    let user = registry.create_user(&principal, &username, admin).await?;
    let base = base_url(&registry, &incoming.headers);
    Ok((
        StatusCode::CREATED,
        Json(UserEntity::new(&user, &base, true)),
    )
        .into_response())
}

/// `POST /users/:id/personal_access_tokens` (administrators): `name`, `scopes`, `expires_at`.
pub async fn create_token(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
    params: Params,
) -> Result<Response, Error> {
    let principal = incoming.principal(&registry, Action::Write).await?;
    registry.administrator(&principal).await?;
    let user_id = integer_param("user_id", &id)?;
    let request = TokenRequest {
        name: params.required_string("name")?,
        scopes: params
            .list("scopes")?
            .ok_or_else(|| crate::registry::invalid("scopes is missing"))?,
        expires_at: params.date("expires_at")?,
    };
    let (token, secret) = registry
        .create_personal_token(&principal, user_id, request)
        .await?;
    let body = PersonalAccessTokenEntity::new(&token, Timestamp::now(), Some(&secret));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `self`, or a token id (Grape's Integer).
fn token_ref(id: &str) -> Result<TokenRef, Error> {
    if id == "self" {
        Ok(TokenRef::Current)
    } else {
        integer_param("id", id).map(TokenRef::Id)
    }
}

/// `GET /personal_access_tokens` (`user_id` for an administrator).
pub async fn list_tokens(
    State(registry): State<AppState>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let principal = incoming.principal(&registry, Action::Read).await?;
    let user_id = match incoming.query_value("user_id") {
        Some(v) => Some(integer_param("user_id", v)?),
        None => None,
    };
    let page = super::projects::page(&incoming)?;
    let now = Timestamp::now();
    let mut tokens = registry.personal_tokens(&principal, user_id).await?;
    if let Some(revoked) = incoming
        .query_value("revoked")
        .and_then(crate::domain::parse_bool)
    {
        tokens.retain(|t| t.revoked == revoked);
    }
    match incoming.query_value("state") {
        None => {}
        Some("active") => tokens.retain(|t| !t.revoked && !t.expired(now)),
        Some("inactive") => tokens.retain(|t| t.revoked || t.expired(now)),
        Some(_) => {
            return Err(crate::registry::invalid(
                "state does not have a valid value",
            ));
        }
    }
    let listed = Listed::page_of(tokens, page);
    let body: Vec<_> = listed
        .items
        .iter()
        .map(|t| PersonalAccessTokenEntity::new(t, now, None))
        .collect();
    let base = base_url(&registry, &incoming.headers);
    Ok(paginated(body, &listed, page, &base, &incoming))
}

/// `GET /personal_access_tokens/:id` (or `self`).
pub async fn show_token(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let which = token_ref(&id)?;
    let principal = incoming.principal(&registry, Action::Read).await?;
    let (_, token) = registry.personal_token(&principal, which).await?;
    Ok(Json(PersonalAccessTokenEntity::new(
        &token,
        Timestamp::now(),
        None,
    ))
    .into_response())
}

/// `POST /personal_access_tokens/:id/rotate` (or `self/rotate`): `expires_at`.
pub async fn rotate_token(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
    params: Params,
) -> Result<Response, Error> {
    let which = token_ref(&id)?;
    let principal = incoming.principal(&registry, Action::Write).await?;
    let (token, secret) = registry
        .rotate_token(&principal, which, params.date("expires_at")?)
        .await?;
    let body = PersonalAccessTokenEntity::new(&token, Timestamp::now(), Some(&secret));
    Ok(Json(body).into_response())
}

/// `DELETE /personal_access_tokens/:id` (or `self`, which any scope may do).
pub async fn revoke_token(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let which = token_ref(&id)?;
    let action = match which {
        TokenRef::Current => Action::Read,
        TokenRef::Id(_) => Action::Write,
    };
    let principal = incoming.principal(&registry, action).await?;
    registry.revoke_personal_token(&principal, which).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
