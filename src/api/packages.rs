//! The Packages API (SPEC.md §7): project and group package lists with GitLab's pagination
//! headers, one package, its files.

use super::{AppState, query_pairs};
use crate::auth::{Action, Credential, Principal};
use crate::domain::{
    FileOrder, GroupRef, InvalidParams, Listed, Package, PackageFile, PackageQuery, PackageStatus,
    Page, ProjectRef, Timestamp, parse_bool,
};
use crate::registry::{Error, ProjectAccess};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;

/// What follows `/projects/:id/packages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRoute {
    List,
    Package(String),
    Files(String),
    File(String, String),
}

impl ProjectRoute {
    /// `rest` is what follows `packages` (empty, `/7`, `/7/package_files`).
    pub fn parse(rest: &str) -> Option<Self> {
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            [] => Some(ProjectRoute::List),
            [id] => Some(ProjectRoute::Package(id.to_string())),
            [id, "package_files"] => Some(ProjectRoute::Files(id.to_string())),
            [id, "package_files", file] => {
                Some(ProjectRoute::File(id.to_string(), file.to_string()))
            }
            _ => None,
        }
    }
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// A project reference as the URL gave it; one that names no project is looked up as a path
/// and not found.
fn project_ref(raw: &str) -> ProjectRef {
    let decoded = decode(raw);
    ProjectRef::parse(&decoded).unwrap_or(ProjectRef::Path(decoded))
}

/// Grape's Integer coercion of a path parameter.
fn integer_param(name: &str, value: &str) -> Result<i64, Error> {
    value.parse::<i64>().map_err(|_| {
        let mut errors = InvalidParams::default();
        errors.push(format!("{name} is invalid"));
        Error::Invalid(errors)
    })
}

/// What these handlers read of a request (they take no body), so no `&Request` is held
/// across an await.
struct Incoming {
    method: Method,
    path: String,
    headers: HeaderMap,
    query: Vec<(String, String)>,
}

impl Incoming {
    fn of(request: &Request) -> Self {
        Self {
            method: request.method().clone(),
            path: request.uri().path().to_string(),
            headers: request.headers().clone(),
            query: query_pairs(request),
        }
    }
}

async fn principal(
    registry: &AppState,
    request: &Incoming,
    action: Action,
) -> Result<Principal, Error> {
    let credential = Credential::from_request(&request.headers, &request.query);
    registry
        .authenticate(credential.as_ref(), action, request.method == Method::GET)
        .await
}

/// Who asks, and the project they may do `action` on: every project route starts here.
async fn open_project(
    registry: &AppState,
    request: &Incoming,
    project_raw: &str,
    action: Action,
) -> Result<(Principal, ProjectAccess), Error> {
    let principal = principal(registry, request, action).await?;
    let access = registry
        .api_project(&principal, &project_ref(project_raw), action)
        .await?;
    Ok((principal, access))
}

/// `/projects/:id/packages...`
pub async fn handle_project(
    registry: AppState,
    project_raw: &str,
    route: ProjectRoute,
    request: Request,
) -> Response {
    let request = Incoming::of(&request);
    let result = match (request.method.clone(), route) {
        (Method::GET, ProjectRoute::List) => list_project(registry, project_raw, request).await,
        (Method::GET, ProjectRoute::Package(id)) => {
            show_package(registry, project_raw, &id, request).await
        }
        (Method::GET, ProjectRoute::Files(id)) => {
            list_files(registry, project_raw, &id, request).await
        }
        (Method::DELETE, ProjectRoute::Package(id)) => {
            delete_package(registry, project_raw, &id, request).await
        }
        (Method::DELETE, ProjectRoute::File(id, file)) => {
            delete_file(registry, project_raw, &id, &file, request).await
        }
        _ => return super::error::route_not_found(),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `/groups/:id/packages`
pub async fn handle_group(registry: AppState, group_raw: &str, request: Request) -> Response {
    let request = Incoming::of(&request);
    if request.method != Method::GET {
        return super::error::route_not_found();
    }
    list_group(registry, group_raw, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

fn pairs(query: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    query.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// GitLab checks access before it validates the query: a bad query gets its 400 only once the
/// caller is let in.
async fn list_project(
    registry: AppState,
    project_raw: &str,
    request: Incoming,
) -> Result<Response, Error> {
    let (principal, access) = open_project(&registry, &request, project_raw, Action::Read).await?;
    let parsed = PackageQuery::parse(pairs(&request.query), false)?;
    let list = registry
        .project_packages(&principal, access, &parsed)
        .await?;
    let project = &list.projects[0];
    let can_delete = list.deletable.contains(&project.id);
    let base = base_url(&registry, &request.headers);
    let body: Vec<Value> = list
        .listed
        .items
        .iter()
        .map(|p| package_json(p, &project.path_with_namespace, can_delete, &base, None))
        .collect();
    Ok(paginated(body, &list.listed, parsed.page, &base, &request))
}

async fn list_group(
    registry: AppState,
    group_raw: &str,
    request: Incoming,
) -> Result<Response, Error> {
    let principal = principal(&registry, &request, Action::Read).await?;
    let group = GroupRef::parse(&decode(group_raw)).ok_or(Error::GroupNotFound)?;
    // GitLab checks access to the group before it validates the query.
    let group = registry.visible_group(&principal, &group).await?;
    let parsed = PackageQuery::parse(pairs(&request.query), true);
    let exclude_subgroups = match pairs(&request.query).find(|(k, _)| *k == "exclude_subgroups") {
        None => Ok(false),
        Some((_, v)) => parse_bool(v).ok_or_else(|| {
            let mut errors = InvalidParams::default();
            errors.push("exclude_subgroups is invalid");
            errors
        }),
    };
    let (parsed, exclude_subgroups) = match (parsed, exclude_subgroups) {
        (Ok(p), Ok(e)) => (p, e),
        (Err(mut a), Err(b)) => {
            a.0.extend(b.0);
            return Err(Error::Invalid(a));
        }
        (Err(e), _) | (_, Err(e)) => return Err(Error::Invalid(e)),
    };
    let list = registry
        .group_packages(&principal, &group, exclude_subgroups, &parsed)
        .await?;
    let paths: HashMap<i64, &str> = list
        .projects
        .iter()
        .map(|p| (p.id, p.path_with_namespace.as_str()))
        .collect();
    let base = base_url(&registry, &request.headers);
    let body: Vec<Value> = list
        .listed
        .items
        .iter()
        .map(|p| {
            let path = paths.get(&p.project_id).copied().unwrap_or_default();
            let can_delete = list.deletable.contains(&p.project_id);
            package_json(p, path, can_delete, &base, Some(p.project_id))
        })
        .collect();
    Ok(paginated(body, &list.listed, parsed.page, &base, &request))
}

async fn show_package(
    registry: AppState,
    project_raw: &str,
    package_id: &str,
    request: Incoming,
) -> Result<Response, Error> {
    let (principal, access) = open_project(&registry, &request, project_raw, Action::Read).await?;
    let package_id = integer_param("package_id", package_id)?;
    let package = registry.package(&access, package_id).await?;
    let can_delete = access.may(&principal, Action::Delete);
    let base = base_url(&registry, &request.headers);
    let versions = registry.other_versions(&access.project, &package).await?;
    let mut body = package_json(
        &package,
        &access.project.path_with_namespace,
        can_delete,
        &base,
        None,
    );
    body["versions"] = versions
        .iter()
        .map(|v| {
            json!({
                "id": v.id,
                "version": v.version.as_str(),
                "created_at": v.created_at,
                "tags": [],
            })
        })
        .collect();
    Ok(axum::Json(body).into_response())
}

async fn list_files(
    registry: AppState,
    project_raw: &str,
    package_id: &str,
    request: Incoming,
) -> Result<Response, Error> {
    let (_, access) = open_project(&registry, &request, project_raw, Action::Read).await?;
    let package_id = integer_param("package_id", package_id)?;
    let order = FileOrder::parse(pairs(&request.query))?;
    let listed = registry.package_files(&access, package_id, &order).await?;
    let base = base_url(&registry, &request.headers);
    let body: Vec<Value> = listed.items.iter().map(file_json).collect();
    Ok(paginated(body, &listed, order.page, &base, &request))
}

/// `DELETE /projects/:id/packages/:package_id`: 204, or 412 when `If-Unmodified-Since` is
/// older than the package's last change.
async fn delete_package(
    registry: AppState,
    project_raw: &str,
    package_id: &str,
    request: Incoming,
) -> Result<Response, Error> {
    let (_, access) = open_project(&registry, &request, project_raw, Action::Delete).await?;
    let package_id = integer_param("package_id", package_id)?;
    let since = request
        .headers
        .get(header::IF_UNMODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    registry.delete_package(&access, package_id, since).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /projects/:id/packages/:package_id/package_files/:package_file_id`: 204.
async fn delete_file(
    registry: AppState,
    project_raw: &str,
    package_id: &str,
    file_id: &str,
    request: Incoming,
) -> Result<Response, Error> {
    let (_, access) = open_project(&registry, &request, project_raw, Action::Delete).await?;
    let package_id = integer_param("package_id", package_id)?;
    let file_id = integer_param("package_file_id", file_id)?;
    registry
        .delete_package_file(&access, package_id, file_id)
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

/// GitLab's package entity (`API::Entities::Package`).
fn package_json(
    package: &Package,
    project_path: &str,
    can_delete: bool,
    base: &str,
    group_project: Option<i64>,
) -> Value {
    let mut links = serde_json::Map::new();
    if package.status == PackageStatus::Default {
        links.insert(
            "web_path".into(),
            json!(format!("/{project_path}/-/packages/{}", package.id)),
        );
    }
    if can_delete {
        links.insert(
            "delete_api_path".into(),
            json!(format!(
                "{base}/api/v4/projects/{}/packages/{}",
                package.project_id, package.id
            )),
        );
    }
    let mut body = json!({
        "id": package.id,
        "name": package.name.as_str(),
        "version": package.version.as_str(),
        "package_type": "generic",
        "status": package.status.as_str(),
        "_links": links,
        "created_at": package.created_at,
        "last_downloaded_at": package.last_downloaded_at,
    });
    if let Some(project_id) = group_project {
        body["project_id"] = json!(project_id);
        body["project_path"] = json!(project_path);
    }
    body["tags"] = json!([]);
    body
}

/// GitLab's package-file entity (`API::Entities::PackageFile`).
fn file_json(file: &PackageFile) -> Value {
    json!({
        "id": file.id,
        "package_id": file.package_id,
        "created_at": file.created_at,
        "file_name": file.file_name.as_str(),
        "size": file.size,
        "file_md5": null,
        "file_sha1": null,
        "file_sha256": file.sha256,
    })
}

/// The URL clients reach us at: the configured public URL, else the request's own host.
pub(super) fn base_url(registry: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = registry.public_url() {
        return url.to_string();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
    };
    let scheme = header("x-forwarded-proto").unwrap_or_else(|| "http".into());
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .unwrap_or_else(|| "localhost".into());
    format!("{scheme}://{host}")
}

/// A JSON array with GitLab's offset-pagination headers (`X-Per-Page`, `X-Page`,
/// `X-Next-Page`, `X-Prev-Page`, `Link`, and `X-Total`/`X-Total-Pages` when counted).
fn paginated<T>(
    body: Vec<Value>,
    listed: &Listed<T>,
    page: Page,
    base: &str,
    request: &Incoming,
) -> Response {
    let mut response = axum::Json(Value::Array(body)).into_response();
    for (name, value) in pagination_headers(listed, page, base, request) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

fn pagination_headers<T>(
    listed: &Listed<T>,
    page: Page,
    base: &str,
    request: &Incoming,
) -> Vec<(&'static str, String)> {
    let total_pages = listed
        .total
        .map(|total| total.div_ceil(page.per_page).max(1));
    // Kaminari: a page past the last has neither a next nor a previous page.
    let out_of_range = total_pages.is_some_and(|last| page.number > last);
    let next = (listed.has_next && !out_of_range).then(|| page.number + 1);
    let prev = (page.number > 1 && !out_of_range).then(|| page.number - 1);
    let link = |number: u64, rel: &str| {
        format!(
            "<{}>; rel=\"{rel}\"",
            page_url(base, request, number, page.per_page)
        )
    };
    let mut links = Vec::new();
    if let Some(p) = prev {
        links.push(link(p, "prev"));
    }
    if let Some(n) = next {
        links.push(link(n, "next"));
    }
    links.push(link(1, "first"));
    if let Some(last) = total_pages {
        links.push(link(last, "last"));
    }
    let show = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let mut headers = vec![
        ("x-per-page", page.per_page.to_string()),
        ("x-page", page.number.to_string()),
        ("x-next-page", show(next)),
        ("x-prev-page", show(prev)),
        (header::LINK.as_str(), links.join(", ")),
    ];
    if let (Some(total), Some(pages)) = (listed.total, total_pages) {
        headers.push(("x-total", total.to_string()));
        headers.push(("x-total-pages", pages.to_string()));
    }
    headers
}

/// This request's URL at another page: its own query (minus any token, which must never be
/// echoed) with `page` and `per_page` set, keys sorted as Rails' `to_query` sorts them.
fn page_url(base: &str, request: &Incoming, number: u64, per_page: u64) -> String {
    let mut params: Vec<(String, String)> = request
        .query
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "page" | "per_page" | "private_token" | "job_token"
            )
        })
        .cloned()
        .collect();
    params.push(("page".into(), number.to_string()));
    params.push(("per_page".into(), per_page.to_string()));
    params.sort();
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{base}{}?{query}", request.path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn request(uri: &str) -> Request {
        Request::builder().uri(uri).body(Body::empty()).unwrap()
    }

    fn listed(total: Option<u64>, has_next: bool) -> Listed<()> {
        Listed {
            items: Vec::new(),
            total,
            has_next,
        }
    }

    fn headers(
        listed: &Listed<()>,
        number: u64,
        per_page: u64,
        uri: &str,
    ) -> Vec<(&'static str, String)> {
        pagination_headers(
            listed,
            Page { number, per_page },
            "http://r",
            &Incoming::of(&request(uri)),
        )
    }

    #[test]
    fn routes() {
        assert_eq!(ProjectRoute::parse(""), Some(ProjectRoute::List));
        assert_eq!(
            ProjectRoute::parse("/7"),
            Some(ProjectRoute::Package("7".into()))
        );
        assert_eq!(
            ProjectRoute::parse("/7/package_files"),
            Some(ProjectRoute::Files("7".into()))
        );
        assert_eq!(ProjectRoute::parse("/7/other"), None);
        assert_eq!(
            ProjectRoute::parse("/7/package_files/9"),
            Some(ProjectRoute::File("7".into(), "9".into()))
        );
    }

    #[test]
    fn http_dates() {
        let at = |ms: i64| Some(Timestamp::from_millis(ms));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:01 GMT"), at(1000));
        assert_eq!(parse_http_date("1970-01-01T00:00:02Z"), at(2000));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn middle_page_has_every_link() {
        let h = headers(
            &listed(Some(45), true),
            2,
            20,
            "/api/v4/projects/5/packages?sort=desc&private_token=secret&page=2",
        );
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-page"), Some("2"));
        assert_eq!(get("x-per-page"), Some("20"));
        assert_eq!(get("x-next-page"), Some("3"));
        assert_eq!(get("x-prev-page"), Some("1"));
        assert_eq!(get("x-total"), Some("45"));
        assert_eq!(get("x-total-pages"), Some("3"));
        let url =
            |p: u64| format!("http://r/api/v4/projects/5/packages?page={p}&per_page=20&sort=desc");
        assert_eq!(
            get("link").unwrap(),
            format!(
                "<{}>; rel=\"prev\", <{}>; rel=\"next\", <{}>; rel=\"first\", <{}>; rel=\"last\"",
                url(1),
                url(3),
                url(1),
                url(3)
            )
        );
    }

    #[test]
    fn empty_last_and_uncounted_lists() {
        let h = headers(&listed(Some(0), false), 1, 20, "/x");
        let get =
            |h: &[(&str, String)], n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
        assert_eq!(get(&h, "x-total").as_deref(), Some("0"));
        assert_eq!(get(&h, "x-total-pages").as_deref(), Some("1"));
        assert_eq!(get(&h, "x-next-page").as_deref(), Some(""));
        assert_eq!(get(&h, "x-prev-page").as_deref(), Some(""));
        // Past the last page: no next, no prev.
        let h = headers(&listed(Some(5), false), 4, 2, "/x");
        assert_eq!(get(&h, "x-prev-page").as_deref(), Some(""));
        assert!(!get(&h, "link").unwrap().contains("rel=\"prev\""));
        // Over the count limit: no totals and no last link, but next is known.
        let h = headers(&listed(None, true), 1, 100, "/x");
        assert_eq!(get(&h, "x-total"), None);
        assert_eq!(get(&h, "x-next-page").as_deref(), Some("2"));
        assert!(!get(&h, "link").unwrap().contains("rel=\"last\""));
    }
}
