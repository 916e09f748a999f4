//! The Packages API: project and group package lists with GitLab's pagination headers, one
//! package, its files, and deletes.

use super::AppState;
use super::entities::{PackageContext, file_entity, package_entity, version_entity};
use super::extract::{Incoming, integer_param, project_ref};
use super::pagination::{base_url, paginated};
use crate::auth::{Action, Principal};
use crate::domain::{
    FileOrder, GroupRef, InvalidParams, PackageQuery, ProjectRef, Timestamp, parse_bool,
};
use crate::registry::{Error, Missing, ProjectAccess};
use crate::wire::PipelineEntity;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

/// Who asks, and the project they may do `action` on: every project route starts here.
pub(super) async fn open_project(
    registry: &AppState,
    incoming: &Incoming,
    project: &ProjectRef,
    action: Action,
) -> Result<(Principal, ProjectAccess), Error> {
    let principal = registry
        .authenticate(incoming.credential.as_ref(), action)
        .await?;
    let access = registry.api_project(&principal, project, action).await?;
    Ok((principal, access))
}

/// `GET /projects/:id/packages`. GitLab checks access before it validates the query: a bad
/// query gets its 400 only once the caller is let in.
pub async fn list_project(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, access) =
        open_project(&registry, &incoming, &project_ref(&id), Action::Read).await?;
    let parsed = PackageQuery::parse(incoming.pairs(), false)?;
    let list = registry
        .project_packages(&principal, access, &parsed)
        .await?;
    let project = &list.projects[0];
    let base = base_url(&registry, &incoming.headers);
    let at = PackageContext {
        project_path: &project.path_with_namespace,
        can_delete: list.deletable.contains(&project.id),
        base: &base,
        in_group_list: false,
    };
    let body: Vec<_> = list
        .listed
        .items
        .iter()
        .map(|p| package_entity(p, &at))
        .collect();
    Ok(paginated(body, &list.listed, parsed.page, &base, &incoming))
}

/// The package query and `exclude_subgroups` of a group list, with every problem named.
fn group_query(incoming: &Incoming) -> Result<(PackageQuery, bool), Error> {
    let parsed = PackageQuery::parse(incoming.pairs(), true);
    let exclude_subgroups = match incoming.query_value("exclude_subgroups") {
        None => Ok(false),
        Some(v) => parse_bool(v).ok_or_else(|| {
            let mut errors = InvalidParams::default();
            errors.push("exclude_subgroups is invalid");
            errors
        }),
    };
    match (parsed, exclude_subgroups) {
        (Ok(p), Ok(e)) => Ok((p, e)),
        (Err(mut a), Err(b)) => {
            a.0.extend(b.0);
            Err(Error::Invalid(a))
        }
        (Err(e), _) | (_, Err(e)) => Err(Error::Invalid(e)),
    }
}

/// `GET /groups/:id/packages`.
pub async fn list_group(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let principal = registry
        .authenticate(incoming.credential.as_ref(), Action::Read)
        .await?;
    let group = GroupRef::parse(&id).ok_or(Error::NotFound(Missing::Group))?;
    // GitLab checks access to the group before it validates the query.
    let group = registry.visible_group(&principal, &group).await?;
    let (parsed, exclude_subgroups) = group_query(&incoming)?;
    let list = registry
        .group_packages(&principal, &group, exclude_subgroups, &parsed)
        .await?;
    let paths: HashMap<i64, &str> = list
        .projects
        .iter()
        .map(|p| (p.id, p.path_with_namespace.as_str()))
        .collect();
    let base = base_url(&registry, &incoming.headers);
    let body: Vec<_> = list
        .listed
        .items
        .iter()
        .map(|p| {
            let at = PackageContext {
                project_path: paths.get(&p.project_id).copied().unwrap_or_default(),
                can_delete: list.deletable.contains(&p.project_id),
                base: &base,
                in_group_list: true,
            };
            package_entity(p, &at)
        })
        .collect();
    Ok(paginated(body, &list.listed, parsed.page, &base, &incoming))
}

/// `GET /projects/:id/packages/:package_id`.
pub async fn show(
    State(registry): State<AppState>,
    Path((id, package_id)): Path<(String, String)>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, access) =
        open_project(&registry, &incoming, &project_ref(&id), Action::Read).await?;
    let package_id = integer_param("package_id", &package_id)?;
    let package = registry.package(&access, package_id).await?;
    let base = base_url(&registry, &incoming.headers);
    let versions = registry.other_versions(&access.project, &package).await?;
    let at = PackageContext {
        project_path: &access.project.path_with_namespace,
        can_delete: access.may(&principal, Action::Delete),
        base: &base,
        in_group_list: false,
    };
    let mut body = package_entity(&package, &at);
    body.versions = Some(versions.iter().map(version_entity).collect());
    Ok(Json(body).into_response())
}

/// `GET /projects/:id/packages/:package_id/package_files`.
pub async fn list_files(
    State(registry): State<AppState>,
    Path((id, package_id)): Path<(String, String)>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (_, access) = open_project(&registry, &incoming, &project_ref(&id), Action::Read).await?;
    let package_id = integer_param("package_id", &package_id)?;
    let order = FileOrder::parse(incoming.pairs())?;
    let listed = registry.package_files(&access, package_id, &order).await?;
    let base = base_url(&registry, &incoming.headers);
    let body: Vec<_> = listed.items.iter().map(file_entity).collect();
    Ok(paginated(body, &listed, order.page, &base, &incoming))
}

/// GitLab's most pipelines per page of a package's pipelines.
const PIPELINES_MAX_PER_PAGE: i64 = 20;

/// `GET /projects/:id/packages/:package_id/pipelines`: the pipelines that built the package.
/// depot runs no pipelines, so the list is empty; access, GitLab's parameter checks (at most 20
/// per page) and the 404 of a missing package are GitLab's.
pub async fn pipelines(
    State(registry): State<AppState>,
    Path((id, package_id)): Path<(String, String)>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (_, access) = open_project(&registry, &incoming, &project_ref(&id), Action::Read).await?;
    let mut errors = InvalidParams::default();
    let package_id = match package_id.parse::<i64>() {
        Ok(id) => Some(id),
        Err(_) => {
            errors.push("package_id is invalid");
            None
        }
    };
    if let Some(page) = incoming.query_value("page")
        && page.parse::<i64>().is_err()
    {
        errors.push("page is invalid");
    }
    if let Some(per_page) = incoming.query_value("per_page") {
        match per_page.parse::<i64>() {
            Err(_) => errors.push("per_page is invalid"),
            Ok(n) if !(1..=PIPELINES_MAX_PER_PAGE).contains(&n) => {
                errors.push("per_page does not have a valid value")
            }
            Ok(_) => {}
        }
    }
    let Some(package_id) = package_id.filter(|_| errors.is_empty()) else {
        return Err(Error::Invalid(errors));
    };
    registry.package(&access, package_id).await?;
    Ok(Json(Vec::<PipelineEntity>::new()).into_response())
}

/// `DELETE /projects/:id/packages/:package_id`: 204, or 412 when `If-Unmodified-Since` is
/// older than the package's last change.
pub async fn delete_package(
    State(registry): State<AppState>,
    Path((id, package_id)): Path<(String, String)>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, access) =
        open_project(&registry, &incoming, &project_ref(&id), Action::Delete).await?;
    let package_id = integer_param("package_id", &package_id)?;
    let since = incoming
        .headers
        .get(header::IF_UNMODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    registry
        .delete_package(&principal, &access, package_id, since)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /projects/:id/packages/:package_id/package_files/:package_file_id`: 204.
pub async fn delete_file(
    State(registry): State<AppState>,
    Path((id, package_id, file_id)): Path<(String, String, String)>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, access) =
        open_project(&registry, &incoming, &project_ref(&id), Action::Delete).await?;
    let package_id = integer_param("package_id", &package_id)?;
    let file_id = integer_param("package_file_id", &file_id)?;
    registry
        .delete_package_file(&principal, &access, package_id, file_id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// An HTTP date (`Tue, 24 Nov 2026 18:00:00 GMT`) or an ISO 8601 instant, as Ruby's
/// `Time.parse` would take it; anything else is ignored, as GitLab ignores it.
fn parse_http_date(value: &str) -> Option<Timestamp> {
    let parsed = chrono::DateTime::parse_from_rfc2822(value.trim())
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(value.trim()))
        .ok()?;
    Some(Timestamp::from_millis(parsed.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        let at = |ms: i64| Some(Timestamp::from_millis(ms));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:01 GMT"), at(1000));
        assert_eq!(parse_http_date("1970-01-01T00:00:02Z"), at(2000));
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
