//! GitLab's members and deploy-token routes, and depot's trust-rule routes, on projects and
//! groups alike (`GROUP` says which a route is under): one handler per route, the place looked
//! up first (a place the caller may not see is 404), then the registry decides.

use super::AppState;
use super::extract::{Incoming, integer_param, project_ref};
use super::pagination::{base_url, paginated};
use super::params::Params;
use crate::auth::{Action, Principal};
use crate::domain::{ClaimCondition, GroupRef, Listed, Role, Scope, Timestamp};
use crate::registry::{
    DeployTokenRequest, Error, Missing, Place, PlaceRef, TrustRuleRequest, invalid,
};
use crate::wire::people::{DeployTokenEntity, MemberEntity, TrustRuleEntity};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The caller (signed in: these routes are not for anonymous callers) and the place `id`
/// names under a project (`GROUP = false`) or group route.
pub(super) async fn open<const GROUP: bool>(
    registry: &AppState,
    incoming: &Incoming,
    id: &str,
    action: Action,
) -> Result<(Principal, Place), Error> {
    let principal = registry
        .authenticate(incoming.credential.as_ref(), action)
        .await?;
    let at = if GROUP {
        PlaceRef::Group(GroupRef::parse(id).ok_or(Error::NotFound(Missing::Group))?)
    } else {
        PlaceRef::Project(project_ref(id))
    };
    let place = registry.place(&principal, &at).await?;
    Ok((principal, place))
}

fn members_body(
    registry: &AppState,
    incoming: &Incoming,
    members: &[(crate::domain::User, Role)],
) -> Vec<MemberEntity> {
    let base = base_url(registry, &incoming.headers);
    members
        .iter()
        .map(|(u, r)| MemberEntity::new(u, *r, &base))
        .collect()
}

/// `GET .../members` and `.../members/all`.
pub async fn list<const GROUP: bool, const ALL: bool>(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (_, place) = open::<GROUP>(&registry, &incoming, &id, Action::Read).await?;
    let page = super::projects::page(&incoming)?;
    let listed = Listed::page_of(registry.members(&place, ALL).await?, page);
    let body = members_body(&registry, &incoming, &listed.items);
    let base = base_url(&registry, &incoming.headers);
    Ok(paginated(body, &listed, page, &base, &incoming))
}

/// `GET .../members/:user_id` and `.../members/all/:user_id`.
pub async fn show<const GROUP: bool, const ALL: bool>(
    State(registry): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (_, place) = open::<GROUP>(&registry, &incoming, &id, Action::Read).await?;
    let user_id = integer_param("user_id", &user_id)?;
    let member = registry.member(&place, user_id, ALL).await?;
    let body = members_body(&registry, &incoming, &[member]).remove(0);
    Ok(Json(body).into_response())
}

/// `POST .../members`: `user_id` or `username`, `access_level`.
pub async fn add<const GROUP: bool>(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
    params: Params,
) -> Result<Response, Error> {
    let (principal, place) = open::<GROUP>(&registry, &incoming, &id, Action::Write).await?;
    let level = params.required_integer("access_level")?;
    let who = match (params.integer("user_id")?, params.string("username")?) {
        (Some(_), Some(_)) => return Err(invalid("user_id, username are mutually exclusive")),
        (Some(id), None) => Ok(id),
        (None, Some(name)) => Err(name),
        (None, None) => {
            return Err(invalid(
                "user_id, username are missing, at least one parameter must be provided",
            ));
        }
    };
    let member = registry.add_member(&principal, &place, who, level).await?;
    let body = members_body(&registry, &incoming, &[member]).remove(0);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `PUT .../members/:user_id`: `access_level`.
pub async fn update<const GROUP: bool>(
    State(registry): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
    incoming: Incoming,
    params: Params,
) -> Result<Response, Error> {
    let (principal, place) = open::<GROUP>(&registry, &incoming, &id, Action::Write).await?;
    let user_id = integer_param("user_id", &user_id)?;
    let level = params.required_integer("access_level")?;
    let member = registry
        .update_member(&principal, &place, user_id, level)
        .await?;
    let body = members_body(&registry, &incoming, &[member]).remove(0);
    Ok(Json(body).into_response())
}

/// `DELETE .../members/:user_id`.
pub async fn remove<const GROUP: bool>(
    State(registry): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, place) = open::<GROUP>(&registry, &incoming, &id, Action::Write).await?;
    let user_id = integer_param("user_id", &user_id)?;
    registry.remove_member(&principal, &place, user_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET .../deploy_tokens`.
pub async fn list_deploy_tokens<const GROUP: bool>(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, place) = open::<GROUP>(&registry, &incoming, &id, Action::Read).await?;
    let page = super::projects::page(&incoming)?;
    let now = Timestamp::now();
    let listed = Listed::page_of(registry.deploy_tokens(&principal, &place).await?, page);
    let body: Vec<_> = listed
        .items
        .iter()
        .map(|t| DeployTokenEntity::new(t, now, None))
        .collect();
    let base = base_url(&registry, &incoming.headers);
    Ok(paginated(body, &listed, page, &base, &incoming))
}

/// `GET .../deploy_tokens/:token_id`.
pub async fn show_deploy_token<const GROUP: bool>(
    State(registry): State<AppState>,
    Path((id, token_id)): Path<(String, String)>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, place) = open::<GROUP>(&registry, &incoming, &id, Action::Read).await?;
    let token_id = integer_param("token_id", &token_id)?;
    let token = registry.deploy_token(&principal, &place, token_id).await?;
    Ok(Json(DeployTokenEntity::new(&token, Timestamp::now(), None)).into_response())
}

/// `POST .../deploy_tokens`: `name`, `scopes`, `expires_at` (GitLab's `username` is taken
/// and not kept: a deploy token's username is always `gitlab+deploy-token-<id>`).
pub async fn create_deploy_token<const GROUP: bool>(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
    params: Params,
) -> Result<Response, Error> {
    let (principal, place) = open::<GROUP>(&registry, &incoming, &id, Action::Write).await?;
    let request = DeployTokenRequest {
        name: params.required_string("name")?,
        scopes: params
            .list("scopes")?
            .ok_or_else(|| invalid("scopes is missing"))?,
        expires_at: params.date("expires_at")?,
    };
    let (token, secret) = registry
        .create_deploy_token(&principal, &place, request)
        .await?;
    let body = DeployTokenEntity::new(&token, Timestamp::now(), Some(&secret));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE .../deploy_tokens/:token_id`.
pub async fn revoke_deploy_token<const GROUP: bool>(
    State(registry): State<AppState>,
    Path((id, token_id)): Path<(String, String)>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, place) = open::<GROUP>(&registry, &incoming, &id, Action::Write).await?;
    let token_id = integer_param("token_id", &token_id)?;
    registry
        .revoke_deploy_token(&principal, &place, token_id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET .../trust_rules` (depot's own route).
pub async fn list_trust_rules<const GROUP: bool>(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, place) = open::<GROUP>(&registry, &incoming, &id, Action::Read).await?;
    let rules = registry.trust_rules(&principal, &place).await?;
    let body: Vec<_> = rules.iter().map(TrustRuleEntity::from).collect();
    Ok(Json(body).into_response())
}

/// `POST .../trust_rules`: `issuer`, `audience`, `conditions` (an object of claim to pattern,
/// or `claim=pattern` strings), `access_level` (30 unless given), `scopes` (`api` unless given).
pub async fn add_trust_rule<const GROUP: bool>(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
    params: Params,
) -> Result<Response, Error> {
    let (principal, place) = open::<GROUP>(&registry, &incoming, &id, Action::Write).await?;
    let scopes = params.list("scopes")?.unwrap_or_else(|| vec!["api".into()]);
    let request = TrustRuleRequest {
        issuer: params.required_string("issuer")?,
        audience: params.required_string("audience")?,
        conditions: conditions(&params)?,
        role: crate::registry::role_of_level(params.integer("access_level")?.unwrap_or(30))?,
        scopes: Scope::parse_list(&scopes.join(","))
            .map_err(|_| invalid("scopes does not have a valid value"))?,
    };
    let rule = registry.add_trust_rule(&principal, &place, request).await?;
    Ok((StatusCode::CREATED, Json(TrustRuleEntity::from(&rule))).into_response())
}

/// A rule's conditions: a JSON object (claim to pattern), or `claim=pattern` strings.
fn conditions(params: &Params) -> Result<Vec<ClaimCondition>, Error> {
    let bad = |e: String| invalid(&format!("conditions are invalid: {e}"));
    if let Some(object) = params.object("conditions") {
        return object
            .iter()
            .map(|(claim, pattern)| match pattern {
                serde_json::Value::String(p) => ClaimCondition::parse(&format!("{claim}={p}")),
                _ => Err(format!("the pattern of {claim:?} is not a string")),
            })
            .collect::<Result<_, _>>()
            .map_err(bad);
    }
    params
        .list("conditions")?
        .unwrap_or_default()
        .iter()
        .map(|c| ClaimCondition::parse(c))
        .collect::<Result<_, _>>()
        .map_err(bad)
}

/// `DELETE .../trust_rules/:rule_id`.
pub async fn remove_trust_rule<const GROUP: bool>(
    State(registry): State<AppState>,
    Path((id, rule_id)): Path<(String, String)>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, place) = open::<GROUP>(&registry, &incoming, &id, Action::Write).await?;
    let rule_id = integer_param("rule_id", &rule_id)?;
    registry
        .remove_trust_rule(&principal, &place, rule_id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
