//! The event routes: the audit log (`GET /projects/:id/audit_events`, `GET /audit_events`,
//! GitLab's shape and filters, offset pagination) and webhooks of projects and groups
//! (`GET`/`POST .../hooks`, `GET`/`DELETE .../hooks/:hook_id`, GitLab's project and group
//! hooks with depot's event types).

use super::AppState;
use super::extract::{Incoming, integer_param, invalid};
use super::members::open as open_place;
use super::pagination::{base_url, paginated};
use super::params::Params;
use super::projects::page;
use super::protection::open;
use crate::auth::Action;
use crate::domain::{EventQuery, EventType, Listed, Timestamp};
use crate::registry::{AUDIT_MAX_PER_PAGE, Audited, Error, HookRequest};
use crate::wire::events::{AuditEventEntity, HookEntity};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The audit query a request asks for: `created_after`, `created_before` (ISO 8601 times or
/// dates), depot's `event_name`, and the page.
fn audit_query(incoming: &Incoming) -> Result<(EventQuery, crate::domain::Page), Error> {
    let page = page(incoming)?;
    let time = |name: &str| -> Result<Option<Timestamp>, Error> {
        let Some(text) = incoming.query_value(name).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        Timestamp::parse_iso(text)
            .map(Some)
            .ok_or_else(|| invalid(&format!("{name} is invalid")))
    };
    let kind = match incoming.query_value("event_name") {
        None | Some("") => None,
        Some(name) => Some(
            EventType::parse(name)
                .ok_or_else(|| invalid("event_name does not have a valid value"))?,
        ),
    };
    let per_page = (page.per_page as usize).min(AUDIT_MAX_PER_PAGE);
    let query = EventQuery {
        project_id: None,
        after: time("created_after")?,
        before: time("created_before")?,
        kind,
        page: page.number as usize,
        per_page,
    };
    Ok((query, page))
}

fn audit_page(
    registry: &AppState,
    incoming: &Incoming,
    (entries, more): (Vec<Audited>, bool),
    page: crate::domain::Page,
) -> Response {
    let body: Vec<AuditEventEntity> = entries
        .iter()
        .map(|a| AuditEventEntity::of(&a.event, a.author.as_deref()))
        .collect();
    let listed = Listed {
        items: Vec::<()>::new(),
        total: None,
        has_next: more,
    };
    let base = base_url(registry, &incoming.headers);
    paginated(body, &listed, page, &base, incoming)
}

/// `GET /projects/:id/audit_events`: the project's events, newest first (Maintainers).
pub async fn project_audit(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, access) = open(&registry, &incoming, &id).await?;
    let (query, page) = audit_query(&incoming)?;
    let found = registry
        .project_audit_events(&principal, &access, query)
        .await?;
    Ok(audit_page(&registry, &incoming, found, page))
}

/// `GET /audit_events`: every event, newest first (administrators).
pub async fn instance_audit(
    State(registry): State<AppState>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let principal = incoming.principal(&registry, Action::Read).await?;
    let (query, page) = audit_query(&incoming)?;
    let found = registry.instance_audit_events(&principal, query).await?;
    Ok(audit_page(&registry, &incoming, found, page))
}

/// `GET .../hooks` of a project or group (`GROUP`).
pub async fn list_hooks<const GROUP: bool>(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, place) = open_place::<GROUP>(&registry, &incoming, &id, Action::Read).await?;
    let hooks = registry.hooks(&principal, &place).await?;
    let body: Vec<HookEntity> = hooks.iter().map(|(h, l)| HookEntity::of(h, l)).collect();
    Ok(Json(body).into_response())
}

/// `POST .../hooks`: `url` (required), `token` (the signing secret), `name`, `description`,
/// `enable_ssl_verification`, and depot's `event_types` (default: package events); 201 and
/// the hook.
pub async fn create_hook<const GROUP: bool>(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
    params: Params,
) -> Result<Response, Error> {
    let (principal, place) = open_place::<GROUP>(&registry, &incoming, &id, Action::Write).await?;
    let event_types = match params.list("event_types")? {
        None => None,
        Some(names) => Some(
            names
                .iter()
                .map(|n| EventType::parse(n))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("event_types does not have a valid value"))?,
        ),
    };
    let request = HookRequest {
        url: params.required_string("url")?,
        token: params.string("token")?,
        name: params.string("name")?,
        description: params.string("description")?,
        event_types,
        enable_ssl_verification: params.boolean("enable_ssl_verification")?,
    };
    let hook = registry.create_hook(&principal, &place, request).await?;
    let body = HookEntity::of(&hook, &Default::default());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET .../hooks/:hook_id`: the hook and its delivery log.
pub async fn show_hook<const GROUP: bool>(
    State(registry): State<AppState>,
    Path((id, hook_id)): Path<(String, String)>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, place) = open_place::<GROUP>(&registry, &incoming, &id, Action::Read).await?;
    let hook_id = integer_param("hook_id", &hook_id)?;
    let (hook, log) = registry.hook(&principal, &place, hook_id).await?;
    Ok(Json(HookEntity::of(&hook, &log)).into_response())
}

/// `DELETE .../hooks/:hook_id`: 204.
pub async fn delete_hook<const GROUP: bool>(
    State(registry): State<AppState>,
    Path((id, hook_id)): Path<(String, String)>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, place) = open_place::<GROUP>(&registry, &incoming, &id, Action::Write).await?;
    let hook_id = integer_param("hook_id", &hook_id)?;
    registry.delete_hook(&principal, &place, hook_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
