//! Generic packages: `PUT` (publish) and `GET`/`HEAD` (download) of
//! `/projects/:id/packages/generic/:name/:version/(*dirs/):file_name`, GitLab's contract.

use super::AppState;
use super::bytes::{
    content_disposition, header_value, if_none_match, octet_stream, ranged, unsatisfiable,
};
use super::entities::package_file_record;
use super::extract::Incoming;
use crate::auth::{Action, Denied, Principal};
use crate::domain::{
    FileName, InvalidParams, PackageName, PackageStatus, PackageVersion, ProjectRef, Sha256Hex,
};
use crate::registry::{Declared, Error, FileCoordinates, LATEST, Missing, Registry};
use crate::wire::Message;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;

/// The path parts of a generic-package route, percent-decoded, not yet validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    project: String,
    name: String,
    version: String,
    dirs: Vec<String>,
    file_name: String,
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// A generic-package request path (its project id in one segment) as the raw project id and
/// what follows `packages/generic/`.
pub fn split_generic_path(path: &str) -> Option<(&str, &str)> {
    let (project, rest) = path.strip_prefix("/api/v4/projects/")?.split_once('/')?;
    Some((project, rest.strip_prefix("packages/generic/")?))
}

impl Route {
    /// The project the URL names; a reference that names no project is looked up as a path
    /// and not found (404).
    pub fn project_ref(&self) -> ProjectRef {
        ProjectRef::parse(&self.project).unwrap_or_else(|| ProjectRef::Path(self.project.clone()))
    }

    /// The route of a request `path` (its project id in one segment): what follows
    /// `/api/v4/projects/<id>/packages/generic/`, split.
    pub fn of_path(path: &str) -> Option<Self> {
        let (project, rest) = split_generic_path(path)?;
        Self::parse(project, rest)
    }

    /// `rest` is what follows `packages/generic/`: `name/version/(dirs/)file`. An empty
    /// segment is no route, unless a `.` or `..` segment sent raw (`--path-as-is`) made it,
    /// as a name or version ending in `/../` does: that is a traversal, refused with GitLab's
    /// 400 when the directories are checked.
    pub fn parse(project_raw: &str, rest: &str) -> Option<Self> {
        let segments: Vec<&str> = rest.split('/').collect();
        let n = segments.len();
        let dot = |s: &&str| matches!(decode(s).as_str(), "." | "..");
        let empty_dir = segments
            .get(2..n.saturating_sub(1))
            .is_some_and(|dirs| dirs.contains(&""));
        let traversal = empty_dir && segments.iter().any(dot);
        if n < 3
            || [segments[0], segments[1], segments[n - 1]].contains(&"")
            || (empty_dir && !traversal)
        {
            return None;
        }
        let last = segments.len() - 1;
        Some(Self {
            project: decode(project_raw),
            name: decode(segments[0]),
            version: decode(segments[1]),
            dirs: segments[2..last].iter().map(|s| decode(s)).collect(),
            file_name: decode(segments[last]),
        })
    }
}

pub(super) fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Validate the coordinates (and, on upload, `status` and `select`) with GitLab's messages.
pub fn parse_params(
    route: &Route,
    query: &[(String, String)],
    upload: bool,
) -> Result<(FileCoordinates, Option<PackageStatus>, bool), InvalidParams> {
    let mut errors = InvalidParams::default();
    let name = errors.take(PackageName::parse(&route.name));
    let version = errors.take(PackageVersion::parse(&route.version));
    let dirs = route.dirs.join("/");
    let path = if dirs.is_empty() {
        query_value(query, "path")
    } else {
        Some(dirs.as_str())
    };
    let file_name = errors.take(FileName::parse(path, &route.file_name));
    let mut status = None;
    let mut select = false;
    if upload {
        if let Some(s) = query_value(query, "status") {
            status = PackageStatus::parse_upload(s);
            if status.is_none() {
                errors.push("status does not have a valid value");
            }
        }
        if let Some(s) = query_value(query, "select") {
            select = s == "package_file";
            if !select {
                errors.push("select does not have a valid value");
            }
        }
    }
    match (name, version, file_name) {
        (Some(name), Some(version), Some(file_name)) if errors.is_empty() => {
            let project = route.project_ref();
            Ok((
                FileCoordinates {
                    project,
                    name,
                    version,
                    file_name,
                },
                status,
                select,
            ))
        }
        _ => Err(errors),
    }
}

/// `PUT`: authenticate first (401 before anything else), then validate, then publish.
pub async fn publish(
    State(registry): State<AppState>,
    incoming: Incoming,
    body: Body,
) -> Result<Response, Error> {
    let principal = registry
        .authenticate(incoming.credential.as_ref(), Action::Write)
        .await?;
    if principal == Principal::Anonymous {
        return Err(Denied::Unauthorized.into());
    }
    let Some(route) = Route::of_path(&incoming.path) else {
        return Ok(super::error::no_route());
    };
    let (at, status, select) = parse_params(&route, &incoming.query, true)?;
    let size = incoming
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let declared = Declared {
        size,
        sha256: declared_sha256(&incoming.headers)?,
    };
    let body = body.into_data_stream().map_err(std::io::Error::other);
    let project = at.project.clone();
    let (package, file) = registry
        .publish(&principal, at, status, declared, Box::pin(body))
        .await?;
    if !select {
        return Ok((StatusCode::CREATED, Json(Message::new("201 Created"))).into_response());
    }
    let project_id = match project {
        ProjectRef::Id(id) => id,
        ProjectRef::Path(_) => package.project_id,
    };
    let record = package_file_record(&package, &file, project_id, registry.blob_location());
    Ok((StatusCode::OK, Json(record)).into_response())
}

/// The SHA-256 a publish declares for its bytes: `X-Checksum-SHA256` (hex) or the `sha-256`
/// member of `Content-Digest` (RFC 9530); when both are sent they must agree.
fn declared_sha256(headers: &HeaderMap) -> Result<Option<Sha256Hex>, InvalidParams> {
    let mut errors = InvalidParams::default();
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("").trim());
    let hex = text("x-checksum-sha256").and_then(|v| {
        let parsed = Sha256Hex::parse(v);
        if parsed.is_none() {
            errors.push("X-Checksum-SHA256 is invalid");
        }
        parsed
    });
    let field = text("content-digest").and_then(Sha256Hex::from_content_digest);
    let digest = field.and_then(|parsed| {
        if parsed.is_err() {
            errors.push("Content-Digest is invalid");
        }
        parsed.ok()
    });
    if let (Some(a), Some(b)) = (&hex, &digest)
        && a != b
    {
        errors.push("X-Checksum-SHA256 and Content-Digest differ");
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(hex.or(digest))
}

/// `GET`/`HEAD`: validate first, then authenticate, then serve (with `Range` and `ETag`).
/// `GET …/:file_name/uploads/:id` reads an upload session instead.
pub async fn download(
    State(registry): State<AppState>,
    incoming: Incoming,
) -> Result<Response, Error> {
    if let Some((route, session)) = super::uploads::session_route(&incoming) {
        return super::uploads::show(registry, incoming, route, session).await;
    }
    let Some(route) = Route::of_path(&incoming.path) else {
        return Ok(super::error::no_route());
    };
    let (at, _, _) = parse_params(&route, &incoming.query, false)?;
    let principal = registry
        .authenticate(incoming.credential.as_ref(), Action::Read)
        .await?;
    serve_file(&registry, &incoming, &principal, &at).await
}

/// The newest file at `at` as `principal` may download it (the web UI's downloads too). A
/// file deleted and purged between locating and opening it: the next newest (an older
/// duplicate) may be there; a few tries, then the 404.
pub(crate) async fn serve_file(
    registry: &Registry,
    incoming: &Incoming,
    principal: &Principal,
    at: &FileCoordinates,
) -> Result<Response, Error> {
    let head = incoming.method == Method::HEAD;
    for _ in 1..OVERTAKEN_TRIES {
        match answer(registry, incoming, principal, at, head).await {
            Err(Error::NotFound(Missing::Overtaken)) => continue,
            answered => return answered,
        }
    }
    answer(registry, incoming, principal, at, head).await
}

/// Downloads that locate a file again when it was deleted before its bytes were opened.
const OVERTAKEN_TRIES: usize = 3;

/// The answer to a download of the file at `at` (HEAD: its headers).
async fn answer(
    registry: &Registry,
    incoming: &Incoming,
    principal: &Principal,
    at: &FileCoordinates,
    head: bool,
) -> Result<Response, Error> {
    let latest = at.version.as_str() == LATEST;
    let (package, file) = registry.locate(principal, at, !head).await?;

    let etag = format!("\"{}\"", file.sha256);
    let mut out = HeaderMap::new();
    if latest {
        // Which version `latest` meant, and the URL that names it for good.
        let base = super::pagination::base_url(registry, &incoming.headers);
        let url = super::file_url(&base, package.project_id, &package, &file);
        out.insert(header::CONTENT_LOCATION, header_value(&url));
        out.insert("x-package-version", header_value(package.version.as_str()));
    }
    out.insert(header::ETAG, header_value(&etag));
    out.insert("x-checksum-sha256", header_value(&file.sha256));
    if if_none_match(&incoming.headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    // Large files from object storage: 302 to a presigned URL (it answers ranges too), as
    // GitLab does. HEAD stays inline: it moves no bytes.
    let disposition = content_disposition(file.file_name.as_str());
    if !head && let Some(target) = registry.download_redirect(&file, &disposition).await? {
        out.insert(header::LOCATION, header_value(&target.url));
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok((StatusCode::FOUND, out).into_response());
    }
    octet_stream(&mut out, Some(&disposition));
    let (status, range) = match ranged(&mut out, &incoming.headers, &etag, file.size) {
        Some(answer) => answer,
        None => return Ok(unsatisfiable(out)),
    };
    if head {
        return Ok((status, out).into_response());
    }
    let blob = registry.open(&file, range).await?;
    Ok((status, out, Body::from_stream(blob.stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_split_and_decoded() {
        let r = Route::parse("g%2Fp", "my_pkg/1%2E0/linux/amd64/tool%2Etar.gz").unwrap();
        assert_eq!(r.project, "g/p");
        assert_eq!(r.version, "1.0");
        assert_eq!(r.dirs, vec!["linux", "amd64"]);
        assert_eq!(r.file_name, "tool.tar.gz");
        assert!(Route::parse("1", "pkg/1.0").is_none());
        assert!(Route::parse("1", "pkg//f").is_none());
    }

    #[test]
    fn params_collect_every_error_in_gitlab_order() {
        let route = Route::parse("1", "bad%20name/..1/f~").unwrap();
        let q = vec![
            ("status".to_string(), "gone".to_string()),
            ("select".to_string(), "x".to_string()),
        ];
        let err = parse_params(&route, &q, true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package_name is invalid, package_version is invalid, file_name is invalid, \
             status does not have a valid value, select does not have a valid value"
        );
        // Downloads ignore status and select.
        let ok = Route::parse("1", "pkg/1.0/f.txt").unwrap();
        assert!(parse_params(&ok, &q, false).is_ok());
        let with_path = vec![("path".to_string(), "a/b".to_string())];
        let (at, _, _) = parse_params(&ok, &with_path, false).unwrap();
        assert_eq!(at.file_name.as_str(), "a%2Fb%2Ff.txt");
    }
}
