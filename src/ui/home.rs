//! The start page: the groups and projects the viewer can see, with package counts, and a
//! search over package names.

use super::layout::{Frame, answer, page};
use super::session::{base_path, failed, failed_as, viewer};
use crate::api::AppState;
use crate::auth::Principal;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct HomeQuery {
    search: Option<String>,
    page: Option<usize>,
}

/// `GET /`.
pub async fn show(
    State(registry): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HomeQuery>,
) -> Response {
    let signed_in = match viewer(&registry, &headers).await {
        Ok(v) => v,
        Err(e) => return failed(&registry, e),
    };
    let principal = signed_in
        .as_ref()
        .map_or(Principal::Anonymous, |v| v.principal.clone());
    let base = base_path(&registry);
    let frame = Frame {
        base: &base,
        viewer: signed_in.as_ref(),
    };
    let term = query.search.unwrap_or_default();
    let number = query.page.unwrap_or(1).max(1);
    let body = match content(&registry, &principal, &base, (term.trim(), number)).await {
        Ok(body) => body,
        Err(e) => return failed_as(&registry, signed_in.as_ref(), e),
    };
    answer(StatusCode::OK, page(&frame, "Packages", body))
}

async fn content(
    registry: &AppState,
    principal: &Principal,
    base: &str,
    (term, page): (&str, usize),
) -> Result<Markup, crate::registry::Error> {
    let overview = registry.overview(principal, page).await?;
    let (groups, projects) = (&overview.groups, &overview.projects);
    let found = if term.is_empty() {
        None
    } else {
        Some(registry.search_packages(principal, term, 50).await?)
    };
    Ok(html! {
        h1 { "Packages" }
        form.search role="search" method="get" action=(format!("{base}/")) {
            label.skip for="search" { "Search packages by name" }
            input type="search" id="search" name="search" value=(term) placeholder="Search packages by name";
            button type="submit" { "Search" }
        }
        @if let Some(found) = &found {
            h2 { "Packages named like " q { (term) } }
            @if found.is_empty() {
                p.muted { "No package you can see has that name." }
            } @else {
                table {
                    thead { tr { th { "Package" } th { "Version" } th.wide { "Project" } th.wide { "Created" } } }
                    tbody {
                        @for (package, project) in found {
                            tr {
                                td { a href=(format!("{base}/{}/-/packages/{}", project.path_with_namespace, package.id)) { (package.name.as_str()) } }
                                td { (package.version.as_str()) }
                                td.wide { (project.path_with_namespace) }
                                td.wide { (package.created_at.to_date()) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Projects" }
        @if projects.is_empty() {
            p.muted { "No project you can see. " @if matches!(principal, Principal::Anonymous) { "Sign in to see private ones." } }
        } @else {
            table {
                thead { tr { th { "Project" } th.num { "Packages" } th.wide { "Visibility" } } }
                tbody {
                    @for summary in projects {
                        @let project = &summary.seen.project;
                        tr {
                            td { a href=(format!("{base}/{}/-/packages", project.path_with_namespace)) { (project.path_with_namespace) } }
                            td.num { @match summary.packages { Some(n) => (n), None => "10,000+" } }
                            td.wide { (project.visibility.as_str()) }
                        }
                    }
                }
            }
            nav.pages aria-label="Pages" {
                @if page > 1 { a href=(format!("{base}/?page={}", page - 1)) rel="prev" { "Previous" } }
                @if overview.has_next { a href=(format!("{base}/?page={}", page + 1)) rel="next" { "Next" } }
            }
        }
        @if !groups.is_empty() {
            h2 { "Your groups" }
            ul {
                @for (group, owner) in groups {
                    li {
                        (group.path)
                        @if *owner { " · " a href=(format!("{base}/groups/{}/-/settings/packages_and_registries", group.path)) { "Package settings" } }
                    }
                }
            }
        }
    })
}
