//! GitLab's projects and groups routes: what the caller may see (listed with GitLab's
//! pagination headers), one project or group, and making them.

use super::AppState;
use super::extract::{Incoming, integer_param, project_ref};
use super::pagination::{base_url, paginated};
use super::params::Params;
use crate::auth::Action;
use crate::domain::{GroupRef, InvalidParams, Listed, Page, parse_bool};
use crate::registry::{Error, Missing, ProjectRequest, SeenProject};
use crate::wire::people::{GroupEntity, PermissionsEntity, ProjectEntity};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// `page` and `per_page` of a list route.
pub(super) fn page(incoming: &Incoming) -> Result<Page, Error> {
    let mut errors = InvalidParams::default();
    let page = Page::parse(
        incoming.query_value("page"),
        incoming.query_value("per_page"),
        &mut errors,
    );
    if errors.0.is_empty() {
        Ok(page)
    } else {
        Err(Error::Invalid(errors))
    }
}

fn entity(seen: &SeenProject, base: &str) -> ProjectEntity {
    let permissions = seen
        .roles
        .map(|(project, group)| PermissionsEntity::new(project, group));
    ProjectEntity::new(&seen.project, &seen.group, base, permissions)
}

/// `GET /projects` (`membership`, `search`, pagination).
pub async fn list(State(registry): State<AppState>, incoming: Incoming) -> Result<Response, Error> {
    let principal = incoming.principal(&registry, Action::Read).await?;
    let page = page(&incoming)?;
    let membership = incoming.query_value("membership").and_then(parse_bool) == Some(true);
    let search = incoming.query_value("search").map(str::to_lowercase);
    let seen: Vec<SeenProject> = registry
        .visible_projects(&principal)
        .await?
        .into_iter()
        .filter(|p| !membership || p.roles.is_some_and(|(a, b)| a.or(b).is_some()))
        .filter(|p| {
            search
                .as_deref()
                .is_none_or(|s| p.project.path_with_namespace.to_lowercase().contains(s))
        })
        .collect();
    let base = base_url(&registry, &incoming.headers);
    let listed = Listed::page_of(seen, page);
    let body: Vec<_> = listed.items.iter().map(|p| entity(p, &base)).collect();
    Ok(paginated(body, &listed, page, &base, &incoming))
}

/// `GET /projects/:id`.
pub async fn show(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let principal = incoming.principal(&registry, Action::Read).await?;
    let seen = registry
        .visible_project(&principal, &project_ref(&id))
        .await?;
    let base = base_url(&registry, &incoming.headers);
    Ok(Json(entity(&seen, &base)).into_response())
}

/// `POST /projects`: `name` or `path`, `namespace_id` (depot has no personal namespaces: a
/// project lives in a group), `visibility`.
pub async fn create(
    State(registry): State<AppState>,
    incoming: Incoming,
    params: Params,
) -> Result<Response, Error> {
    let principal = incoming.principal(&registry, Action::Write).await?;
    registry.signed_in(&principal).await?;
    let path = match (params.string("path")?, params.string("name")?) {
        (Some(path), _) if !path.is_empty() => path,
        (_, Some(name)) if !name.is_empty() => name,
        _ => {
            return Err(crate::registry::invalid(
                "name, path are missing, at least one parameter must be provided",
            ));
        }
    };
    let request = ProjectRequest {
        path,
        namespace_id: params.integer("namespace_id")?,
        visibility: params.string("visibility")?,
    };
    let seen = registry.create_project(&principal, request).await?;
    let base = base_url(&registry, &incoming.headers);
    Ok((StatusCode::CREATED, Json(entity(&seen, &base))).into_response())
}

/// `GET /groups`: the groups the caller belongs to.
pub async fn list_groups(
    State(registry): State<AppState>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let principal = incoming.principal(&registry, Action::Read).await?;
    let page = page(&incoming)?;
    let base = base_url(&registry, &incoming.headers);
    let listed = Listed::page_of(registry.member_groups(&principal).await?, page);
    let body: Vec<_> = listed
        .items
        .iter()
        .map(|g| GroupEntity::new(g, &base))
        .collect();
    Ok(paginated(body, &listed, page, &base, &incoming))
}

/// A group with the projects in it the caller may read (GitLab's `GroupDetail`).
#[derive(serde::Serialize)]
struct GroupDetail {
    #[serde(flatten)]
    group: GroupEntity,
    projects: Vec<ProjectEntity>,
    shared_projects: Vec<ProjectEntity>,
}

impl GroupDetail {
    /// `group` with the projects in it the caller may read (none shared into it: depot does
    /// not share projects between groups).
    fn new(group: &crate::domain::Group, projects: &[SeenProject], base: &str) -> Self {
        Self {
            group: GroupEntity::new(group, base),
            projects: projects.iter().map(|p| entity(p, base)).collect(),
            shared_projects: Vec::new(),
        }
    }
}

/// `GET /groups/:id`.
pub async fn show_group(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let principal = incoming.principal(&registry, Action::Read).await?;
    let reference = GroupRef::parse(&id).ok_or(Error::NotFound(Missing::Group))?;
    let (group, projects) = registry.group_with_projects(&principal, &reference).await?;
    let base = base_url(&registry, &incoming.headers);
    Ok(Json(GroupDetail::new(&group, &projects, &base)).into_response())
}

/// `POST /groups`: `path` (or `name`), `parent_id`.
pub async fn create_group(
    State(registry): State<AppState>,
    incoming: Incoming,
    params: Params,
) -> Result<Response, Error> {
    let principal = incoming.principal(&registry, Action::Write).await?;
    registry.signed_in(&principal).await?;
    let path = params.required_string("path")?;
    params.required_string("name")?;
    let parent_id = match params.string("parent_id")? {
        Some(id) if !id.is_empty() => Some(integer_param("parent_id", &id)?),
        _ => None,
    };
    let group = registry.create_group(&principal, &path, parent_id).await?;
    let base = base_url(&registry, &incoming.headers);
    let body = GroupDetail::new(&group, &[], &base);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
