//! A project's packages in the UI: the list (GitLab's list semantics: hidden and deleted left
//! out, a hidden filter for those who may publish; sortable, filterable, paginated), one
//! package with its files and ready-to-copy commands, downloads, and deletes for maintainers.

use super::commands;
use super::layout::{Frame, answer, page};
use crate::api::extract::Incoming;
use crate::auth::{Action, Principal};
use crate::domain::{PackageFile, PackageQuery, ProjectRef};
use crate::registry::{Error, FileCoordinates, Missing, ProjectAccess, Registry};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

/// Bytes in human units (`4.0 KiB`).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{size:.1} {}", UNITS[unit])
    }
}

/// `GET /<project>/-/packages`.
pub async fn list(
    registry: &Registry,
    frame: &Frame<'_>,
    principal: &Principal,
    incoming: &Incoming,
    project: &str,
) -> Result<Response, Error> {
    let reference = ProjectRef::Path(project.to_string());
    let access = registry
        .api_project(principal, &reference, Action::Read)
        .await?;
    let may_publish = access.may(principal, Action::Write);
    let mut pairs: Vec<(&str, &str)> = incoming.pairs().collect();
    if !may_publish {
        pairs.retain(|(k, _)| *k != "status");
    }
    let query = PackageQuery::parse(pairs, false)?;
    let path = access.project.path_with_namespace.clone();
    let listed = registry.packages_with_totals(&access, &query).await?;
    let base = frame.base;
    let filter = incoming.query_value("package_name").unwrap_or_default();
    let hidden = incoming.query_value("status") == Some("hidden");
    let body = html! {
        h1 { (path) " · Packages" }
        form.search method="get" action=(format!("{base}/{path}/-/packages")) {
            label.skip for="package_name" { "Filter by name" }
            input type="search" id="package_name" name="package_name" value=(filter) placeholder="Filter by name";
            label.skip for="order_by" { "Sort by" }
            select id="order_by" name="order_by" {
                @for (value, label) in [("created_at", "Created"), ("name", "Name"), ("version", "Version")] {
                    option value=(value) selected[incoming.query_value("order_by") == Some(value)] { (label) }
                }
            }
            @if may_publish {
                label.skip for="status" { "Status" }
                select id="status" name="status" {
                    option value="" { "Listed" }
                    option value="hidden" selected[hidden] { "Hidden" }
                }
            }
            button type="submit" { "Show" }
        }
        (package_table(base, &path, &listed.items))
        (pager(base, &path, incoming, listed.has_next, query.page.number))
    };
    Ok(answer(
        StatusCode::OK,
        page(frame, &format!("{path} packages"), body),
    ))
}

fn package_table(
    base: &str,
    path: &str,
    packages: &[(crate::domain::Package, (u64, u64))],
) -> Markup {
    html! {
        @if packages.is_empty() {
            p.muted { "No packages." }
        } @else {
            table {
                thead { tr {
                    th { "Package" } th { "Version" } th.num { "Files" } th.num.wide { "Size" }
                    th.wide { "Created" } th.wide { "Last downloaded" }
                } }
                tbody {
                    @for (package, (files, size)) in packages {
                        tr {
                            td { a href=(format!("{base}/{path}/-/packages/{}", package.id)) { (package.name.as_str()) } }
                            td { (package.version.as_str()) }
                            td.num { (files) }
                            td.num.wide { (human(*size)) }
                            td.wide { (package.created_at.to_date()) }
                            td.wide { @match package.last_downloaded_at { Some(at) => (at.to_date()), None => span.muted { "never" } } }
                        }
                    }
                }
            }
        }
    }
}

/// Previous and next links, keeping the other query parameters.
fn pager(base: &str, path: &str, incoming: &Incoming, has_next: bool, number: u64) -> Markup {
    let link = |page: u64| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in incoming.pairs().filter(|(k, _)| *k != "page") {
            query.append_pair(k, v);
        }
        query.append_pair("page", &page.to_string());
        format!("{base}/{path}/-/packages?{}", query.finish())
    };
    html! {
        nav.pages aria-label="Pages" {
            @if number > 1 { a href=(link(number - 1)) rel="prev" { "Previous" } }
            @if has_next { a href=(link(number + 1)) rel="next" { "Next" } }
        }
    }
}

/// The project a package page names, for `action`.
pub async fn project_for(
    registry: &Registry,
    principal: &Principal,
    project: &str,
    action: Action,
) -> Result<ProjectAccess, Error> {
    let reference = ProjectRef::Path(project.to_string());
    registry.api_project(principal, &reference, action).await
}

/// `GET /<project>/-/packages/<id>`.
pub async fn show(
    registry: &Registry,
    frame: &Frame<'_>,
    principal: &Principal,
    api_base: &str,
    (project, package_id): (&str, i64),
) -> Result<Response, Error> {
    let access = project_for(registry, principal, project, Action::Read).await?;
    let (package, mut files) = registry
        .package_with_files(principal, &access, package_id)
        .await?;
    let more = files.len().saturating_sub(FILES_SHOWN);
    files.truncate(FILES_SHOWN);
    let may_delete = access.may(principal, Action::Delete);
    let base = frame.base;
    let path = &access.project.path_with_namespace;
    let csrf = frame.csrf();
    let newest = newest_of_each_name(&files);
    let body = html! {
        h1 { (package.name.as_str()) " " (package.version.as_str()) }
        p.muted { a href=(format!("{base}/{path}/-/packages")) { (path) } " · created " (package.created_at.to_date()) " · " (package.status.as_str()) }
        h2 { "Files" }
        table {
            thead { tr { th { "File" } th.num { "Size" } th { "SHA-256" } th.wide { "Created" } th { "" } } }
            tbody {
                @for (i, file) in files.iter().enumerate() {
                    tr {
                        td {
                            (file.file_name.display())
                            @if !newest.contains(&file.id) { " " span.muted { "(older duplicate)" } }
                        }
                        td.num { (human(file.size)) }
                        td { code id=(format!("sha-{i}")) { (file.sha256) } button.copy.secondary type="button" data-copy=(format!("sha-{i}")) hidden { "Copy" } }
                        td.wide { (file.created_at.to_date()) }
                        td.actions {
                            @if newest.contains(&file.id) {
                                a href=(format!("{base}/{path}/-/packages/{}/files/{}/download", package.id, file.id)) { "Download" }
                            }
                            @if may_delete {
                                form.inline method="post" action=(format!("{base}/{path}/-/packages/{}/files/{}/delete", package.id, file.id)) data-confirm="Delete this file?" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.danger type="submit" { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if more > 0 { p.muted { (more) " older files are not shown." } }
        (commands::for_package(api_base, &access.project, &package, &files))
        @if may_delete {
            h2 { "Delete" }
            form method="post" action=(format!("{base}/{path}/-/packages/{}/delete", package.id)) data-confirm="Delete this package and all its files?" {
                input type="hidden" name="csrf" value=(csrf);
                button.danger type="submit" { "Delete package" }
            }
        }
    };
    let title = format!("{} {}", package.name.as_str(), package.version.as_str());
    Ok(answer(StatusCode::OK, page(frame, &title, body)))
}

/// Ids of the newest file of each name (what a download of that name serves); `files` are
/// newest first.
fn newest_of_each_name(files: &[PackageFile]) -> std::collections::HashSet<i64> {
    let mut seen = std::collections::HashSet::new();
    files
        .iter()
        .filter(|f| seen.insert(f.file_name.as_str()))
        .map(|f| f.id)
        .collect()
}

/// A package page lists at most this many files (the newest): a page stays small whatever a
/// package holds.
const FILES_SHOWN: usize = 500;

/// `GET /<project>/-/packages/<id>/files/<file id>/download`: the file, as the API serves it.
pub async fn download(
    registry: &Registry,
    principal: &Principal,
    incoming: &Incoming,
    (project, package_id, file_id): (&str, i64, i64),
) -> Result<Response, Error> {
    let access = project_for(registry, principal, project, Action::Read).await?;
    let (package, files) = registry
        .package_with_files(principal, &access, package_id)
        .await?;
    // Only the newest file of a name is downloaded by name: an older duplicate is not offered.
    let newest = newest_of_each_name(&files);
    let file = files
        .into_iter()
        .find(|f| f.id == file_id && newest.contains(&f.id))
        .ok_or(Error::NotFound(Missing::PackageFile))?;
    let at = FileCoordinates {
        project: ProjectRef::Id(access.project.id),
        name: package.name,
        version: package.version,
        file_name: file.file_name,
    };
    crate::api::generic::serve_file(registry, incoming, principal, &at).await
}

/// `POST …/delete` of a package (`file: None`) or one of its files.
pub async fn delete(
    registry: &Registry,
    principal: &Principal,
    (project, package_id, file): (&str, i64, Option<i64>),
) -> Result<String, Error> {
    let access = project_for(registry, principal, project, Action::Delete).await?;
    match file {
        Some(file_id) => {
            registry
                .delete_package_file(principal, &access, package_id, file_id)
                .await?;
            Ok(format!("{project}/-/packages/{package_id}"))
        }
        None => {
            registry
                .delete_package(principal, &access, package_id, None)
                .await?;
            Ok(format!("{project}/-/packages"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(human(0), "0 bytes");
        assert_eq!(human(1023), "1023 bytes");
        assert_eq!(human(4096), "4.0 KiB");
        assert_eq!(human(5 << 30), "5.0 GiB");
    }
}
